/* Access control and races on the running system (IPA: access control and
 * authorisation flaws, race conditions): every role and no session against
 * every administrator route, with path and header tricks, audited as
 * denied and with nothing changed; no way to one's own higher role; and
 * concurrent requests that must not both win (one version edited twice, one
 * login created twice, one TOTP code used twice). docs/security.md maps
 * these tests to the IPA list. */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ncc/crypto.h"
#include "ncc/roles.h"
#include "ncc_test.h"
#include "security.h"

/* The user's row as the database holds it: what an escalation would change. */
static char *s_user_row(long id)
{
    char text[24];
    snprintf(text, sizeof text, "%ld", id);
    char *row = sec_db_text("SELECT concat_ws('|', login, name, array_to_string(roles, ','), "
                            "active, version, password_hash) FROM directory.users "
                            "WHERE id = $1::bigint",
                            text, NULL, NULL);
    cr_assert_not_null(row, "no user %ld", id);
    return row;
}

typedef struct {
    const char *method;
    char path[96];
    char body[512];
    bool audited; /* the route audits its refusals (docs/gateway.md, Audit) */
} s_route_t;

/* Every administrator route, aimed at `victim`, plus the attacker's own row. */
static size_t s_admin_routes(const sec_session_t *attacker, long victim, long victim_version,
                             s_route_t out[10])
{
    char login[72], password[64];
    sec_unique_login("esc-new", login, sizeof login);
    sec_new_password(password);
    size_t n = 0;
    out[n] = (s_route_t){.method = "GET", .path = "/api/v1/users", .audited = true};
    n++;
    out[n] = (s_route_t){.method = "POST", .path = "/api/v1/users", .audited = true};
    snprintf(out[n].body, sizeof out[n].body,
             "{\"login\":\"%s\",\"name\":\"x\",\"roles\":[\"admin\"],\"password\":\"%s\"}", login,
             password);
    n++;
    out[n] = (s_route_t){.method = "GET", .audited = true};
    snprintf(out[n].path, sizeof out[n].path, "/api/v1/users/%ld", victim);
    n++;
    out[n] = (s_route_t){.method = "PATCH", .audited = true};
    snprintf(out[n].path, sizeof out[n].path, "/api/v1/users/%ld", victim);
    snprintf(out[n].body, sizeof out[n].body,
             "{\"version\":%ld,\"roles\":[\"admin\"],\"password\":\"%s\"}", victim_version,
             password);
    n++;
    out[n] = (s_route_t){.method = "DELETE", .audited = true};
    snprintf(out[n].path, sizeof out[n].path, "/api/v1/users/%ld", victim);
    n++;
    if (attacker) {
        /* One's own row: more roles, another password, retirement. */
        out[n] = (s_route_t){.method = "PATCH", .audited = true};
        snprintf(out[n].path, sizeof out[n].path, "/api/v1/users/%ld", attacker->user_id);
        snprintf(out[n].body, sizeof out[n].body, "{\"version\":%ld,\"roles\":[\"admin\",\"%s\"]}",
                 attacker->version, attacker->role);
        n++;
        out[n] = (s_route_t){.method = "GET", .audited = true};
        snprintf(out[n].path, sizeof out[n].path, "/api/v1/users/%ld", attacker->user_id);
        n++;
    }
    return n;
}

/* Denied audit entries of `login` (read by the administrator). */
static int s_denied_entries(const sec_session_t *admin, const char *login)
{
    char path[160];
    snprintf(path, sizeof path, "/api/v1/audit?actor=%s&per_page=500", login);
    sec_resp_t resp = sec_http(&(sec_req_t){.path = path, .cookie = admin->cookie});
    cr_assert_eq(resp.status, 200, "%ld %s", resp.status, resp.body);
    int denied = 0;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, cJSON_GetObjectItem(resp.json, "items"))
    {
        const char *outcome = sec_str(entry, "outcome");
        denied += outcome && strcmp(outcome, "denied") == 0;
    }
    sec_free(&resp);
    return denied;
}

Test(access_control, every_role_and_no_session_are_refused_every_admin_route, .timeout = 120)
{
    sec_session_t admin, victim;
    sec_admin(&admin);
    sec_user(&admin, "staff", "victim", &victim);
    char *victim_before = s_user_row(victim.user_id);
    char *admin_before = s_user_row(admin.user_id);

    static const char *const roles[] = {"operator", "supervisor", "staff"};
    /* Headers a naive gateway might believe. */
    static const char *const forged[] = {
        "X-Roles: admin",          "X-User-Role: admin",         "X-Actor-Role: admin",
        "X-Forwarded-User: admin", "X-Forwarded-For: 127.0.0.1", NULL};
    for (size_t r = 0; r < 3; r++) {
        sec_session_t attacker;
        sec_user(&admin, roles[r], "esc", &attacker);
        char *own_before = s_user_row(attacker.user_id);
        s_route_t routes[10];
        size_t n = s_admin_routes(&attacker, victim.user_id, victim.version, routes);
        int audited = 0;
        for (size_t i = 0; i < n; i++) {
            sec_resp_t resp =
                sec_http(&(sec_req_t){.method = routes[i].method,
                                      .path = routes[i].path,
                                      .body = routes[i].body[0] ? routes[i].body : NULL,
                                      .cookie = attacker.cookie,
                                      .csrf = attacker.csrf,
                                      .headers = forged});
            cr_assert_eq(resp.status, 403, "%s %s %s: %ld %s", roles[r], routes[i].method,
                         routes[i].path, resp.status, resp.body);
            cr_assert_str_eq(sec_error_code(&resp), "forbidden");
            cr_assert_null(cJSON_GetObjectItem(resp.json, "items"));
            audited += routes[i].audited;
            sec_free(&resp);
        }
        /* The audit log: a supervisor may read it, the others may not. */
        bool reader = strcmp(roles[r], "supervisor") == 0;
        static const char *const audit_paths[] = {"/api/v1/audit", "/api/v1/audit/verify"};
        for (size_t i = 0; i < 2; i++) {
            sec_resp_t resp = sec_http(
                &(sec_req_t){.path = audit_paths[i], .cookie = attacker.cookie, .headers = forged});
            cr_assert_eq(resp.status, reader ? 200 : 403, "%s GET %s: %ld %s", roles[r],
                         audit_paths[i], resp.status, resp.body);
            audited += !reader && i == 0;
            sec_free(&resp);
        }
        /* Path spellings that must not reach the list with another check. */
        static const char *const spellings[] = {
            "/api/v1//users",
            "/api/v1/users/",
            "/api/v1/./users",
            "/api/v1/x/../users",
            "/api/v1/%75sers",
            "/API/V1/USERS",
            "/api/v1/users%2f",
            "/api/v1/users;x=1",
            "/api/v1/users?role=admin&q=",
            "/api/v1/users/%2e%2e/users",
        };
        for (size_t i = 0; i < sizeof spellings / sizeof spellings[0]; i++) {
            sec_resp_t resp =
                sec_http(&(sec_req_t){.path = spellings[i], .cookie = attacker.cookie});
            cr_assert(resp.status == 403 || resp.status == 404 || resp.status == 400 ||
                          resp.status == 405,
                      "%s GET %s: %ld %s", roles[r], spellings[i], resp.status, resp.body);
            cr_assert_null(cJSON_GetObjectItem(resp.json, "items"), "%s: %s", spellings[i],
                           resp.body);
            sec_free(&resp);
        }
        /* Nothing changed, and each refusal is in the audit log as denied. */
        char *own_after = s_user_row(attacker.user_id);
        cr_assert_str_eq(own_after, own_before, "%s changed its own row", roles[r]);
        free(own_after);
        free(own_before);
        cr_assert_geq(s_denied_entries(&admin, attacker.login), audited,
                      "%s: fewer denied entries than refused audited requests", roles[r]);
    }

    /* No session at all: 401 everywhere, nothing audited as a user. */
    s_route_t routes[10];
    size_t n = s_admin_routes(NULL, victim.user_id, victim.version, routes);
    for (size_t i = 0; i < n; i++) {
        sec_resp_t resp = sec_http(&(sec_req_t){.method = routes[i].method,
                                                .path = routes[i].path,
                                                .body = routes[i].body[0] ? routes[i].body : NULL,
                                                .headers = forged});
        cr_assert_eq(resp.status, 401, "no session %s %s: %ld %s", routes[i].method, routes[i].path,
                     resp.status, resp.body);
        sec_free(&resp);
    }
    for (size_t i = 0; i < 2; i++) {
        sec_resp_t resp = sec_http(
            &(sec_req_t){.path = i ? "/api/v1/audit/verify" : "/api/v1/audit", .headers = forged});
        cr_assert_eq(resp.status, 401, "%ld %s", resp.status, resp.body);
        sec_free(&resp);
    }

    char *victim_after = s_user_row(victim.user_id);
    cr_assert_str_eq(victim_after, victim_before, "the victim's row changed");
    char *admin_after = s_user_row(admin.user_id);
    cr_assert_str_eq(admin_after, admin_before, "the administrator's row changed");
    /* None of the users the attackers tried to create exists. */
    char pattern[48];
    snprintf(pattern, sizeof pattern, "sec-esc-new-%d-%%", (int)getpid());
    cr_assert_eq(sec_db_long("SELECT count(*) FROM directory.users WHERE login LIKE $1", pattern,
                             NULL, NULL),
                 0, "an attacker created a user");
    free(victim_after);
    free(victim_before);
    free(admin_after);
    free(admin_before);
}

/* ---- the whole route table ---------------------------------------------------------------- */

typedef struct {
    char method[8];
    char pattern[128];
    unsigned roles;    /* NCC_ROLE_* bits the line admits */
    bool public_route; /* GW_ROUTE_PUBLIC: no session needed */
} s_table_route_t;

/* The NCC_ROLE_* bits (and whether GW_ROUTE_PUBLIC appears) of an expression
 * of the route table, following the file's own #defines (S_ADMIN ...). */
static unsigned s_eval_roles(const char *text, const char *expr, size_t len, int depth,
                             bool *ret_public)
{
    static const struct {
        const char *name;
        unsigned bits;
    } names[] = {{"NCC_ROLES_USERS", NCC_ROLES_USERS},
                 {"NCC_ROLE_OPERATOR", NCC_ROLE_OPERATOR},
                 {"NCC_ROLE_SUPERVISOR", NCC_ROLE_SUPERVISOR},
                 {"NCC_ROLE_ADMIN", NCC_ROLE_ADMIN},
                 {"NCC_ROLE_STAFF", NCC_ROLE_STAFF}};
    unsigned bits = 0;
    for (size_t i = 0; i < len;) {
        if (!((expr[i] >= 'A' && expr[i] <= 'Z') || expr[i] == '_')) {
            i++;
            continue;
        }
        size_t start = i;
        while (i < len && ((expr[i] >= 'A' && expr[i] <= 'Z') || expr[i] == '_' ||
                           (expr[i] >= '0' && expr[i] <= '9')))
            i++;
        char token[64];
        snprintf(token, sizeof token, "%.*s", (int)(i - start), expr + start);
        bool known = false;
        for (size_t n = 0; n < sizeof names / sizeof names[0]; n++)
            if (strcmp(token, names[n].name) == 0) {
                bits |= names[n].bits;
                known = true;
            }
        if (strcmp(token, "GW_ROUTE_PUBLIC") == 0 && ret_public)
            *ret_public = true;
        if (known || depth > 4)
            continue;
        /* A local #define: "#define S_ADMIN     NCC_ROLE_ADMIN". */
        char define[96];
        snprintf(define, sizeof define, "#define %s ", token);
        const char *d = strstr(text, define);
        if (d) {
            d += strlen(define);
            bits |= s_eval_roles(text, d, strcspn(d, "\n"), depth + 1, ret_public);
        }
    }
    return bits;
}

/* The lines of gw_routes in gateway/routes.c. */
static size_t s_read_route_table(s_table_route_t *out, size_t max)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/gateway/routes.c", sec_source_dir());
    char *text = ncct_read_file(path);
    cr_assert_not_null(text, "%s", path);
    const char *p = strstr(text, "gw_routes[] = {");
    cr_assert_not_null(p, "no route table in %s", path);
    size_t n = 0;
    for (p = strchr(p, '\n'); p && n < max; p = strchr(p + 1, '\n')) {
        const char *line = p + 1;
        while (*line == ' ')
            line++;
        if (strncmp(line, "{NULL", 5) == 0)
            break;
        if (strncmp(line, "{\"", 2) != 0)
            continue;
        /* Fields: method, pattern, service, type, roles, flags, ... */
        const char *fields[6];
        size_t lens[6];
        const char *q = line + 1;
        for (int f = 0; f < 6; f++) {
            while (*q == ' ')
                q++;
            fields[f] = q;
            bool quoted = *q == '"';
            if (quoted)
                q = strchr(q + 1, '"') + 1;
            q += strcspn(q, ",\n");
            lens[f] = (size_t)(q - fields[f]);
            if (*q == ',')
                q++;
        }
        s_table_route_t *r = &out[n];
        memset(r, 0, sizeof *r);
        cr_assert(fields[0][0] == '"' && fields[1][0] == '"', "a route line: %.80s", line);
        snprintf(r->method, sizeof r->method, "%.*s", (int)lens[0] - 2, fields[0] + 1);
        snprintf(r->pattern, sizeof r->pattern, "%.*s", (int)lens[1] - 2, fields[1] + 1);
        r->roles = s_eval_roles(text, fields[4], lens[4], 0, NULL);
        s_eval_roles(text, fields[5], lens[5], 0, &r->public_route);
        n++;
    }
    free(text);
    return n;
}

/* The table itself is the list of what each role may call: every line that
 * does not admit a role answers that role 403, and 401 without a session,
 * whatever the route (new routes are covered as they are added). */
Test(access_control, every_route_of_the_table_refuses_the_roles_it_does_not_list, .timeout = 120)
{
    sec_session_t admin, users[3];
    sec_admin(&admin);
    static const char *const roles[] = {"operator", "supervisor", "staff"};
    static const unsigned bits[] = {NCC_ROLE_OPERATOR, NCC_ROLE_SUPERVISOR, NCC_ROLE_STAFF};
    for (int i = 0; i < 3; i++)
        sec_user(&admin, roles[i], "table", &users[i]);
    s_table_route_t table[128];
    size_t n = s_read_route_table(table, 128);
    cr_assert_geq(n, 10, "only %zu routes read from gateway/routes.c", n);
    int refusals = 0;
    for (size_t t = 0; t < n; t++) {
        const s_table_route_t *r = &table[t];
        if (r->public_route)
            continue;
        /* {id} and the like: the administrator's own id (a real target). */
        char path[256] = "";
        for (const char *p = r->pattern; *p;) {
            size_t used = strlen(path);
            if (*p == '{') {
                snprintf(path + used, sizeof path - used, "%ld", admin.user_id);
                p = strchr(p, '}') + 1;
            } else {
                path[used] = *p++;
                path[used + 1] = '\0';
            }
        }
        bool body = strcmp(r->method, "POST") == 0 || strcmp(r->method, "PUT") == 0 ||
                    strcmp(r->method, "PATCH") == 0;
        for (int i = 0; i < 3; i++) {
            if (r->roles & bits[i])
                continue;
            sec_resp_t resp = sec_http(&(sec_req_t){.method = r->method,
                                                    .path = path,
                                                    .body = body ? "{}" : NULL,
                                                    .cookie = users[i].cookie,
                                                    .csrf = users[i].csrf});
            cr_assert_eq(resp.status, 403, "%s %s %s: %ld %s", roles[i], r->method, path,
                         resp.status, resp.body);
            sec_free(&resp);
            refusals++;
        }
        sec_resp_t resp =
            sec_http(&(sec_req_t){.method = r->method, .path = path, .body = body ? "{}" : NULL});
        cr_assert_eq(resp.status, 401, "no session %s %s: %ld %s", r->method, path, resp.status,
                     resp.body);
        sec_free(&resp);
    }
    cr_assert_geq(refusals, 15, "only %d refusals tried", refusals);
}

/* POST /api/v1/me/password is for oneself: a user_id in the body is replaced
 * by the signed-in user's, and no other field (roles) is accepted. */
Test(access_control, the_own_password_route_changes_only_oneself, .timeout = 60)
{
    sec_session_t admin, op;
    sec_admin(&admin);
    sec_user(&admin, "operator", "self", &op);
    char *admin_before = s_user_row(admin.user_id);
    char new_password[64], *body = NULL;
    sec_new_password(new_password);

    cr_assert(
        asprintf(&body,
                 "{\"current_password\":\"%s\",\"new_password\":\"%s\",\"roles\":[\"admin\"]}",
                 op.password, new_password) > 0);
    sec_resp_t resp = sec_http(&(sec_req_t){.method = "POST",
                                            .path = "/api/v1/me/password",
                                            .body = body,
                                            .cookie = op.cookie,
                                            .csrf = op.csrf});
    cr_assert_eq(resp.status, 400, "roles through the password route: %ld %s", resp.status,
                 resp.body);
    sec_free(&resp);
    free(body);

    cr_assert(asprintf(&body,
                       "{\"user_id\":%ld,\"current_password\":\"%s\",\"new_password\":\"%s\"}",
                       admin.user_id, op.password, new_password) > 0);
    resp = sec_http(&(sec_req_t){.method = "POST",
                                 .path = "/api/v1/me/password",
                                 .body = body,
                                 .cookie = op.cookie,
                                 .csrf = op.csrf});
    cr_assert_eq(resp.status, 200, "%ld %s", resp.status, resp.body);
    cr_assert_eq(sec_num(resp.json, "id"), op.user_id, "another user was changed: %s", resp.body);
    sec_free(&resp);
    free(body);
    char *admin_after = s_user_row(admin.user_id);
    cr_assert_str_eq(admin_after, admin_before, "the administrator's password changed");
    free(admin_after);
    free(admin_before);
    sec_session_t again;
    cr_assert_eq(sec_sign_in(op.login, new_password, NULL, NULL, &again), 200,
                 "the operator's own password is the new one");
    resp = sec_http(&(sec_req_t){.path = "/api/v1/me", .cookie = again.cookie});
    cr_assert_eq(resp.status, 200);
    const cJSON *roles = cJSON_GetObjectItem(cJSON_GetObjectItem(resp.json, "user"), "roles");
    cr_assert_eq(cJSON_GetArraySize(roles), 1, "%s", resp.body);
    cr_assert_str_eq(cJSON_GetArrayItem(roles, 0)->valuestring, "operator");
    sec_free(&resp);
}

/* ---- race conditions ----------------------------------------------------------------------- */

typedef struct {
    const char *method;
    const char *path;
    const char *body;
    const sec_session_t *as; /* NULL: no session */
    long status;             /* filled in */
    char *answer;            /* filled in; freed by s_parallel_free */
    size_t answer_len;
} s_call_t;

static size_t s_collect(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    s_call_t *call = userdata;
    size_t n = size * nmemb;
    char *grown = realloc(call->answer, call->answer_len + n + 1);
    if (!grown)
        return 0;
    memcpy(grown + call->answer_len, ptr, n);
    call->answer_len += n;
    grown[call->answer_len] = '\0';
    call->answer = grown;
    return n;
}

/* Sends every call at once (curl multi: one connection each, so the gateway's
 * worker threads take them side by side) and waits for all the answers. */
static void s_parallel(s_call_t *calls, size_t n)
{
    CURLM *multi = curl_multi_init();
    cr_assert_not_null(multi);
    CURL *easy[32];
    struct curl_slist *headers[32];
    char *urls[32];
    cr_assert_leq(n, 32);
    for (size_t i = 0; i < n; i++) {
        s_call_t *c = &calls[i];
        easy[i] = curl_easy_init();
        cr_assert_not_null(easy[i]);
        headers[i] = curl_slist_append(NULL, "Content-Type: application/json");
        char line[160];
        if (c->as) {
            snprintf(line, sizeof line, "Cookie: ncc_session=%s", c->as->cookie);
            headers[i] = curl_slist_append(headers[i], line);
            snprintf(line, sizeof line, "X-CSRF-Token: %s", c->as->csrf);
            headers[i] = curl_slist_append(headers[i], line);
        }
        cr_assert(asprintf(&urls[i], "%s%s", sec_gateway(), c->path) > 0);
        curl_easy_setopt(easy[i], CURLOPT_URL, urls[i]);
        curl_easy_setopt(easy[i], CURLOPT_CUSTOMREQUEST, c->method);
        curl_easy_setopt(easy[i], CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(easy[i], CURLOPT_SSL_VERIFYHOST, 0L);
        curl_easy_setopt(easy[i], CURLOPT_TIMEOUT_MS, 30000L);
        curl_easy_setopt(easy[i], CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(easy[i], CURLOPT_HTTPHEADER, headers[i]);
        curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, s_collect);
        curl_easy_setopt(easy[i], CURLOPT_WRITEDATA, c);
        if (c->body)
            curl_easy_setopt(easy[i], CURLOPT_POSTFIELDS, c->body);
        curl_multi_add_handle(multi, easy[i]);
    }
    int running = 1;
    while (running) {
        cr_assert_eq(curl_multi_perform(multi, &running), CURLM_OK);
        if (running)
            curl_multi_poll(multi, NULL, 0, 200, NULL);
    }
    for (size_t i = 0; i < n; i++) {
        calls[i].status = -1;
        curl_easy_getinfo(easy[i], CURLINFO_RESPONSE_CODE, &calls[i].status);
        curl_multi_remove_handle(multi, easy[i]);
        curl_easy_cleanup(easy[i]);
        curl_slist_free_all(headers[i]);
        free(urls[i]);
    }
    curl_multi_cleanup(multi);
}

static void s_parallel_free(s_call_t *calls, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(calls[i].answer);
        calls[i].answer = NULL;
        calls[i].answer_len = 0;
    }
}

Test(race_condition, two_edits_of_one_version_exactly_one_wins, .timeout = 120)
{
    sec_session_t admin, target;
    sec_admin(&admin);
    sec_user(&admin, "staff", "race", &target);
    char path[64];
    snprintf(path, sizeof path, "/api/v1/users/%ld", target.user_id);
    char id[24];
    snprintf(id, sizeof id, "%ld", target.user_id);
    long version = target.version;
    for (int round = 0; round < 5; round++) {
        char body[4][128];
        s_call_t calls[4];
        for (int i = 0; i < 4; i++) {
            snprintf(body[i], sizeof body[i], "{\"version\":%ld,\"name\":\"edit %d of round %d\"}",
                     version, i, round);
            calls[i] = (s_call_t){.method = "PATCH", .path = path, .body = body[i], .as = &admin};
        }
        s_parallel(calls, 4);
        int ok = 0, conflict = 0, winner = -1;
        for (int i = 0; i < 4; i++) {
            if (calls[i].status == 200) {
                ok++;
                winner = i;
            }
            conflict += calls[i].status == 409;
        }
        cr_assert(ok == 1 && conflict == 3, "round %d: %d answered 200, %d 409 (%ld %ld %ld %ld)",
                  round, ok, conflict, calls[0].status, calls[1].status, calls[2].status,
                  calls[3].status);
        char expected[64];
        snprintf(expected, sizeof expected, "edit %d of round %d", winner, round);
        char *name =
            sec_db_text("SELECT name FROM directory.users WHERE id = $1::bigint", id, NULL, NULL);
        cr_assert_str_eq(name, expected, "the stored name is not the winner's");
        free(name);
        long stored = sec_db_long("SELECT version FROM directory.users WHERE id = $1::bigint", id,
                                  NULL, NULL);
        cr_assert_eq(stored, version + 1, "round %d: version %ld after one edit of %ld", round,
                     stored, version);
        version = stored;
        s_parallel_free(calls, 4);
    }
}

Test(race_condition, concurrent_creates_of_one_login_make_one_user, .timeout = 120)
{
    sec_session_t admin;
    sec_admin(&admin);
    char login[72], password[64];
    sec_unique_login("race-new", login, sizeof login);
    sec_new_password(password);
    enum { N = 8 };
    char body[N][256];
    s_call_t calls[N];
    for (int i = 0; i < N; i++) {
        /* The same login in other cases is the same login. */
        char cased[72];
        snprintf(cased, sizeof cased, "%s", login);
        if (i % 2)
            for (char *p = cased; *p; p++)
                if (*p >= 'a' && *p <= 'z')
                    *p = (char)(*p - 'a' + 'A');
        snprintf(body[i], sizeof body[i],
                 "{\"login\":\"%s\",\"name\":\"race %d\",\"roles\":[\"staff\"],"
                 "\"password\":\"%s\"}",
                 cased, i, password);
        calls[i] =
            (s_call_t){.method = "POST", .path = "/api/v1/users", .body = body[i], .as = &admin};
    }
    s_parallel(calls, N);
    int created = 0, conflict = 0;
    for (int i = 0; i < N; i++) {
        created += calls[i].status == 201;
        conflict += calls[i].status == 409;
    }
    cr_assert(created == 1 && conflict == N - 1, "%d created, %d conflicts", created, conflict);
    cr_assert_eq(sec_db_long("SELECT count(*) FROM directory.users WHERE lower(login) = lower($1)",
                             login, NULL, NULL),
                 1);
    s_parallel_free(calls, N);
}

/* Two sign-ins with one TOTP code at the same moment: the code is spent
 * once (an administrator of this test's own, with its own secret, so that
 * the bootstrap administrator's codes are left alone). */
Test(race_condition, one_totp_code_signs_in_once, .timeout = 120)
{
    sec_session_t admin;
    sec_admin(&admin);
    char login[72], password[64], secret[33];
    sec_unique_login("race-totp", login, sizeof login);
    sec_new_password(password);
    cr_assert_eq(ncc_totp_new_secret(secret), 0);
    char *create = NULL;
    cr_assert(asprintf(&create,
                       "{\"login\":\"%s\",\"name\":\"race\",\"roles\":[\"admin\"],"
                       "\"password\":\"%s\",\"totp_secret\":\"%s\"}",
                       login, password, secret) > 0);
    sec_resp_t resp = sec_http(&(sec_req_t){.method = "POST",
                                            .path = "/api/v1/users",
                                            .body = create,
                                            .cookie = admin.cookie,
                                            .csrf = admin.csrf});
    cr_assert_eq(resp.status, 201, "%ld %s", resp.status, resp.body);
    long id = sec_num(resp.json, "id");
    sec_free(&resp);
    free(create);

    /* Not in the last seconds of a step, so that every copy uses one code. */
    while (30 - time(NULL) % 30 < 5)
        sleep(1);
    char code[7], body[256];
    cr_assert_eq(ncc_totp_code(secret, (int64_t)time(NULL), code), 0);
    snprintf(body, sizeof body, "{\"login\":\"%s\",\"password\":\"%s\",\"totp\":\"%s\"}", login,
             password, code);
    enum { N = 2 }; /* the refused copy counts as a failed sign-in of this address */
    s_call_t calls[N];
    for (int i = 0; i < N; i++)
        calls[i] = (s_call_t){.method = "POST", .path = "/api/v1/session", .body = body};
    s_parallel(calls, N);
    int ok = 0, refused = 0;
    for (int i = 0; i < N; i++) {
        ok += calls[i].status == 200;
        refused +=
            calls[i].status == 401 && calls[i].answer && strstr(calls[i].answer, "invalid_totp");
    }
    cr_assert(ok == 1 && refused == N - 1, "one code signed in %d times (%d refused)", ok, refused);
    s_parallel_free(calls, N);

    /* The spare administrator is retired again. */
    char path[64];
    snprintf(path, sizeof path, "/api/v1/users/%ld", id);
    resp = sec_http(
        &(sec_req_t){.method = "DELETE", .path = path, .cookie = admin.cookie, .csrf = admin.csrf});
    cr_assert_eq(resp.status, 200, "%ld %s", resp.status, resp.body);
    sec_free(&resp);
}
