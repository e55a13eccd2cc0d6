/* Injection attacks on the running system (IPA: SQL injection, OS command
 * injection, HTTP header injection, mail header injection, eval injection):
 * every text a client can send — query parameters, JSON fields, path
 * params, headers — carries the classic payloads, and each answer must be
 * safe (a refusal or data, never a 5xx, a leaked SQL error, an extra row,
 * an injected header) with the database intact. docs/security.md maps these
 * tests to the IPA list. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ncc_test.h"
#include "security.h"

/* SQL payloads: quotes, comments, stacked statements, UNION, dollar quoting,
 * backslashes, LIKE wildcards, a time delay (blind injection). */
static const char *const sql_payloads[] = {
    "' OR '1'='1",
    "' OR 1=1 --",
    "admin'--",
    "'; DROP TABLE directory.users; --",
    "1; DROP TABLE auth.sessions",
    "' UNION SELECT login, password_hash, NULL FROM directory.users --",
    "$$; DROP TABLE directory.audit_log; $$",
    "\\'; SELECT pg_sleep(5); --",
    "%' AND pg_sleep(5) IS NULL AND '%'='",
    "\\\\\\",
    "\"; DROP TABLE x; --",
    "1) OR (1=1",
    "E'\\x27 OR 1=1",
    "%",
    "_",
    "%*",
    "中野' OR 'あ'='あ",
};
#define N_SQL (sizeof sql_payloads / sizeof sql_payloads[0])

/* Words that only a leaked database or C error would put in an answer. */
static const char *const leak_words[] = {
    "syntax error", "SQLSTATE", "ERROR:", "pg_",   "relation \"", "postgres",
    "libpq",        "$argon2",  ".c:",    "stack", "Sanitizer",
};

/* An answer to an attack: no 5xx, and a refusal that leaks nothing (a 2xx
 * holds data, which may well contain the payloads stored earlier). */
static void s_expect_safe(const sec_resp_t *resp, const char *what)
{
    cr_assert(resp->status >= 200 && resp->status < 500, "%s: status %ld: %s", what, resp->status,
              resp->body);
    if (resp->status < 300)
        return;
    cr_assert_not_null(sec_error_code(resp), "%s: not the API's error shape: %s", what, resp->body);
    for (size_t i = 0; i < sizeof leak_words / sizeof leak_words[0]; i++)
        cr_assert(!sec_contains_nocase(resp->body, leak_words[i]),
                  "%s: the answer leaks \"%s\": %s", what, leak_words[i], resp->body);
}

/* A digest of every user the security tests did not make (their logins
 * start "sec-"): what an injection would change or delete. */
static char *s_other_users_digest(void)
{
    char *digest =
        sec_db_text("SELECT md5(coalesce(string_agg(concat_ws('|', id, login, name, password_hash, "
                    "array_to_string(roles, ','), active, version), E'\\n' ORDER BY id), '')) "
                    "FROM directory.users WHERE lower(login) NOT LIKE 'sec-%'",
                    NULL, NULL, NULL);
    cr_assert_not_null(digest);
    return digest;
}

/* How many users this process made (sec_unique_login puts the pid in). */
static long s_own_users(void)
{
    char pattern[48];
    snprintf(pattern, sizeof pattern, "sec-%%-%d-%%", (int)getpid());
    return sec_db_long("SELECT count(*) FROM directory.users WHERE login LIKE $1", pattern, NULL,
                       NULL);
}

static long s_audit_total(void)
{
    return sec_db_long("SELECT count(*) FROM directory.audit_log", NULL, NULL, NULL);
}

static void s_expect_tables_intact(void)
{
    static const char *const tables[] = {"directory.users", "directory.audit_log", "auth.sessions"};
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++)
        cr_assert_eq(
            sec_db_long("SELECT (to_regclass($1) IS NOT NULL)::int", tables[i], NULL, NULL), 1,
            "%s is gone", tables[i]);
}

static void s_expect_audit_chain_holds(const sec_session_t *admin)
{
    sec_resp_t resp =
        sec_http(&(sec_req_t){.path = "/api/v1/audit/verify", .cookie = admin->cookie});
    cr_assert_eq(resp.status, 200, "audit verify: %ld %s", resp.status, resp.body);
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(resp.json, "ok")), "the chain broke: %s", resp.body);
    sec_free(&resp);
}

/* True when every user in `items` has `text` (case-insensitively) in its
 * login or name: what `q` promises, with % and _ taken literally. */
static bool s_every_user_matches(const cJSON *items, const char *text)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, items)
    {
        if (!sec_contains_nocase(sec_str(item, "login"), text) &&
            !sec_contains_nocase(sec_str(item, "name"), text))
            return false;
    }
    return true;
}

/* True when every audit entry fits the actor / action filter as documented. */
static bool s_every_entry_matches(const cJSON *items, const char *field, const char *value)
{
    const cJSON *item;
    size_t len = strlen(value);
    bool prefix = len > 0 && value[len - 1] == '*';
    cJSON_ArrayForEach(item, items)
    {
        if (strcmp(field, "actor") == 0) {
            const char *login = sec_str(item, "actor_login"), *id = sec_str(item, "actor_id");
            if (!(login && strcmp(login, value) == 0) && !(id && strcmp(id, value) == 0))
                return false;
        } else if (strcmp(field, "action") == 0) {
            const char *action = sec_str(item, "action");
            if (!action ||
                (prefix ? strncmp(action, value, len - 1) != 0 : strcmp(action, value) != 0))
                return false;
        }
    }
    return true;
}

/* GET path?field=value as `session`: safe, quick (no pg_sleep ran), and on
 * 200 only rows the filter allows. */
static void s_attack_filter(const sec_session_t *session, const char *path, const char *field,
                            const char *value)
{
    char *encoded = sec_url_encode(value), *url = NULL;
    cr_assert(asprintf(&url, "%s?%s=%s&per_page=500", path, field, encoded) > 0);
    long long started = ncct_now_ms();
    sec_resp_t resp = sec_http(&(sec_req_t){.path = url, .cookie = session->cookie});
    long long took = ncct_now_ms() - started;
    s_expect_safe(&resp, url);
    cr_assert_lt(took, 4000, "%s took %lld ms: did pg_sleep run?", url, took);
    cr_assert(resp.status == 200 || resp.status == 400 || resp.status == 422, "%s: status %ld: %s",
              url, resp.status, resp.body);
    if (resp.status == 200) {
        const cJSON *items = cJSON_GetObjectItem(resp.json, "items");
        cr_assert(cJSON_IsArray(items) || !items, "%s: %s", url, resp.body);
        if (strcmp(field, "q") == 0)
            cr_assert(s_every_user_matches(items, value), "%s: rows that do not match: %s", url,
                      resp.body);
        else if (strcmp(field, "actor") == 0 || strcmp(field, "action") == 0)
            cr_assert(s_every_entry_matches(items, field, value), "%s: rows that do not match: %s",
                      url, resp.body);
        else if (strcmp(field, "role") == 0)
            cr_assert_eq(cJSON_GetArraySize(items), 0, "%s: a role that does not exist: %s", url,
                         resp.body);
    }
    sec_free(&resp);
    free(url);
    free(encoded);
}

Test(sql_injection, every_filter_and_field_treats_payloads_as_data, .timeout = 300)
{
    sec_session_t admin, supervisor, op;
    sec_admin(&admin);
    sec_user(&admin, "supervisor", "sqli", &supervisor);
    sec_user(&admin, "operator", "sqli", &op);
    char *others_before = s_other_users_digest();
    long own_before = s_own_users();
    long audit_before = s_audit_total();
    long created = 0;

    /* Query parameters of every list route. */
    static const char *const user_filters[] = {"q", "role", "active", "page", "per_page"};
    static const char *const audit_filters[] = {"from", "to", "actor", "action", "page"};
    for (size_t p = 0; p < N_SQL; p++) {
        for (size_t f = 0; f < sizeof user_filters / sizeof user_filters[0]; f++)
            s_attack_filter(&admin, "/api/v1/users", user_filters[f], sql_payloads[p]);
        for (size_t f = 0; f < sizeof audit_filters / sizeof audit_filters[0]; f++)
            s_attack_filter(&supervisor, "/api/v1/audit", audit_filters[f], sql_payloads[p]);
        s_attack_filter(&admin, "/api/v1/audit/verify", "anchor_hash", sql_payloads[p]);
        s_attack_filter(&admin, "/api/v1/audit/verify", "anchor_seq", sql_payloads[p]);
    }

    /* JSON fields of a new user: a name is data and comes back byte for byte;
     * login, extension, roles and TOTP secret are refused by their rules. */
    for (size_t p = 0; p < N_SQL; p++) {
        const char *payload = sql_payloads[p];
        char login[72], password[64], *qpayload = sec_json_quote(payload), *body = NULL;
        sec_unique_login("sqli-name", login, sizeof login);
        sec_new_password(password);
        cr_assert(asprintf(&body,
                           "{\"login\":\"%s\",\"name\":%s,\"roles\":[\"staff\"],"
                           "\"password\":\"%s\"}",
                           login, qpayload, password) > 0);
        sec_resp_t resp = sec_http(&(sec_req_t){.method = "POST",
                                                .path = "/api/v1/users",
                                                .body = body,
                                                .cookie = admin.cookie,
                                                .csrf = admin.csrf});
        s_expect_safe(&resp, body);
        cr_assert_eq(resp.status, 201, "a name is data: %s -> %ld %s", body, resp.status,
                     resp.body);
        created++;
        long id = sec_num(resp.json, "id");
        long version = sec_num(resp.json, "version");
        sec_free(&resp);
        free(body);

        char path[64];
        snprintf(path, sizeof path, "/api/v1/users/%ld", id);
        resp = sec_http(&(sec_req_t){.path = path, .cookie = admin.cookie});
        cr_assert_eq(resp.status, 200);
        cr_assert_str_eq(sec_str(resp.json, "name"), payload);
        sec_free(&resp);
        char *stored = sec_db_text("SELECT name FROM directory.users WHERE id = $1::bigint",
                                   path + 14, NULL, NULL);
        cr_assert_str_eq(stored, payload, "the database holds what was sent");
        free(stored);

        /* The same payload through PATCH (name) and as the other fields. */
        cr_assert(asprintf(&body, "{\"version\":%ld,\"name\":%s}", version, qpayload) > 0);
        resp = sec_http(&(sec_req_t){.method = "PATCH",
                                     .path = path,
                                     .body = body,
                                     .cookie = admin.cookie,
                                     .csrf = admin.csrf});
        s_expect_safe(&resp, body);
        cr_assert_eq(resp.status, 200, "%s: %ld %s", body, resp.status, resp.body);
        cr_assert_str_eq(sec_str(resp.json, "name"), payload);
        sec_free(&resp);
        free(body);

        /* %1$s the payload, %2$s a fresh login, %3$s a valid password. */
        static const char *const refused[] = {
            "{\"login\":%1$s,\"name\":\"x\",\"roles\":[\"staff\"],\"password\":\"%3$s\"}",
            "{\"login\":\"%2$s\",\"name\":\"x\",\"roles\":[%1$s],\"password\":\"%3$s\"}",
            "{\"login\":\"%2$s\",\"name\":\"x\",\"roles\":[\"staff\"],\"extension\":%1$s,"
            "\"password\":\"%3$s\"}",
            "{\"login\":\"%2$s\",\"name\":\"x\",\"roles\":[\"staff\"],\"totp_secret\":%1$s,"
            "\"password\":\"%3$s\"}",
        };
        /* "_" is a valid login (A-Z a-z 0-9 . _ @ -), not an attack: not sent as one. */
        bool valid_login = strspn(payload, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                           "0123456789._@-") == strlen(payload);
        for (size_t r = 0; r < sizeof refused / sizeof refused[0]; r++) {
            if (r == 0 && valid_login)
                continue;
            char unique[72];
            sec_unique_login("sqli-f", unique, sizeof unique);
            char *fields = NULL;
            cr_assert(asprintf(&fields, refused[r], qpayload, unique, password) > 0);
            resp = sec_http(&(sec_req_t){.method = "POST",
                                         .path = "/api/v1/users",
                                         .body = fields,
                                         .cookie = admin.cookie,
                                         .csrf = admin.csrf});
            s_expect_safe(&resp, fields);
            cr_assert(resp.status == 400 || resp.status == 422, "%s: %ld %s", fields, resp.status,
                      resp.body);
            sec_free(&resp);
            free(fields);
        }
        free(qpayload);
    }

    /* Path params: an id or a service name that is not one. */
    for (size_t p = 0; p < N_SQL; p++) {
        char *encoded = sec_url_encode(sql_payloads[p]), *path = NULL;
        static const char *const methods[] = {"GET", "PATCH", "DELETE"};
        cr_assert(asprintf(&path, "/api/v1/users/1%s", encoded) > 0);
        for (size_t m = 0; m < 3; m++) {
            sec_resp_t resp = sec_http(&(sec_req_t){.method = methods[m],
                                                    .path = path,
                                                    .body = m == 1 ? "{\"version\":1}" : NULL,
                                                    .cookie = admin.cookie,
                                                    .csrf = admin.csrf});
            s_expect_safe(&resp, path);
            cr_assert(resp.status == 400 || resp.status == 404 || resp.status == 422,
                      "%s %s: %ld %s", methods[m], path, resp.status, resp.body);
            sec_free(&resp);
        }
        free(path);
        cr_assert(asprintf(&path, "/api/v1/services/directory%s/ping", encoded) > 0);
        sec_resp_t resp = sec_http(&(sec_req_t){.path = path});
        s_expect_safe(&resp, path);
        /* The gateway refuses backslashes and encoded slashes in paths (400: nginx and
         * civetweb would disagree about them); otherwise the name is unknown (404). */
        cr_assert(resp.status == 400 || resp.status == 404, "%s: %ld", path, resp.status);
        sec_free(&resp);
        free(path);
        free(encoded);
    }

    /* A NUL byte, a very long value, a NUL inside JSON. */
    sec_resp_t resp = sec_http(
        &(sec_req_t){.path = "/api/v1/users?q=a%00%27%20OR%201%3D1", .cookie = admin.cookie});
    s_expect_safe(&resp, "q with %00");
    cr_assert_eq(resp.status, 400, "%ld %s", resp.status, resp.body);
    sec_free(&resp);
    char *longq = malloc(3001);
    memset(longq, 'A', 3000);
    longq[3000] = '\0';
    memcpy(longq + 2980, "' OR '1'='1", 11);
    s_attack_filter(&admin, "/api/v1/users", "q", longq);
    s_attack_filter(&supervisor, "/api/v1/audit", "actor", longq);
    size_t big = 100000;
    char *body = malloc(big + 200);
    char login[72];
    sec_unique_login("sqli-long", login, sizeof login);
    int n = snprintf(body, 200,
                     "{\"login\":\"%s\",\"roles\":[\"staff\"],\"password\":\"%s\","
                     "\"name\":\"",
                     login, "Sec-long-Pass-9!");
    memset(body + n, 'x', big);
    memcpy(body + n + big - 20, "' OR '1'='1", 11);
    snprintf(body + n + big, 200, "\"}");
    resp = sec_http(&(sec_req_t){.method = "POST",
                                 .path = "/api/v1/users",
                                 .body = body,
                                 .cookie = admin.cookie,
                                 .csrf = admin.csrf});
    s_expect_safe(&resp, "a 100 kB name");
    cr_assert(resp.status == 413 || resp.status == 422 || resp.status == 400, "%ld %s", resp.status,
              resp.body);
    sec_free(&resp);
    free(body);
    free(longq);
    resp = sec_http(&(sec_req_t){.method = "POST",
                                 .path = "/api/v1/users",
                                 .body = "{\"login\":\"nul\\u0000' OR 1=1\",\"name\":\"x\"}",
                                 .cookie = admin.cookie,
                                 .csrf = admin.csrf});
    s_expect_safe(&resp, "\\u0000 in JSON");
    cr_assert(resp.status == 400 || resp.status == 422, "%ld %s", resp.status, resp.body);
    sec_free(&resp);

    /* Sign-in and the password change: one deliberate failure each (the
     * per-address throttle allows 20 per 15 minutes for the whole run). */
    sec_session_t ignored;
    long status = sec_sign_in("' OR '1'='1' --", "' OR '1'='1", NULL, NULL, &ignored);
    cr_assert_eq(status, 401, "a sign-in by SQL: %ld", status);
    char *change = NULL;
    cr_assert(asprintf(&change,
                       "{\"current_password\":\"' OR '1'='1\",\"new_password\":\"x'); DROP TABLE "
                       "directory.users; --Aa1\"}") > 0);
    resp = sec_http(&(sec_req_t){.method = "POST",
                                 .path = "/api/v1/me/password",
                                 .body = change,
                                 .cookie = op.cookie,
                                 .csrf = op.csrf});
    s_expect_safe(&resp, change);
    cr_assert(resp.status == 401 || resp.status == 422, "%ld %s", resp.status, resp.body);
    sec_free(&resp);
    free(change);
    cr_assert_eq(sec_sign_in(op.login, op.password, NULL, NULL, &ignored), 200,
                 "the operator's password is unchanged");

    /* The data is intact: only the users made here were added, the audit
     * log only grew, and its chain holds. */
    s_expect_tables_intact();
    char *others_after = s_other_users_digest();
    cr_assert_str_eq(others_after, others_before, "users this test did not make have changed");
    free(others_after);
    free(others_before);
    cr_assert_eq(s_own_users(), own_before + created, "only the %ld users made here were added",
                 created);
    cr_assert_geq(s_audit_total(), audit_before);
    s_expect_audit_chain_holds(&admin);
}

/* Every query of the daemons is parameterised ($1, $2 ... through
 * PQexecParams): no SQL text is ever formatted with a value. The only SQL
 * built with printf names identifiers that come from the code, escaped or
 * checked there; a new file that formats SQL has to be reviewed and added
 * here. No daemon escapes literals itself (PQescapeLiteral and friends). */
typedef struct {
    int files;
    char found[2048];
} s_sql_scan_t;

static bool s_sql_literal_is_formatted(const char *literal, size_t len)
{
    static const char *const keywords[] = {"SELECT ", "INSERT ",   "UPDATE ", "DELETE ",
                                           "CREATE ", "ALTER ",    "GRANT ",  "SET ",
                                           "DROP ",   "TRUNCATE ", "WHERE ",  "VALUES"};
    bool sql = false;
    for (size_t i = 0; !sql && i < sizeof keywords / sizeof keywords[0]; i++)
        sql = memmem(literal, len, keywords[i], strlen(keywords[i])) != NULL;
    if (!sql)
        return false;
    for (size_t i = 0; i + 1 <= len; i++) {
        if (literal[i] != '%')
            continue;
        if (i + 1 == len)
            return true; /* "...%" PRId64 */
        char c = literal[i + 1];
        if (c == 's' || c == 'd' || c == 'l' || c == 'u' || c == 'z' || c == '.' || c == '*' ||
            (c >= '0' && c <= '9'))
            return true;
    }
    return false;
}

static void s_scan_sql(const char *path, const char *text, void *arg)
{
    s_sql_scan_t *scan = arg;
    scan->files++;
    static const char *const allowed[][2] = {
        {"common/src/db.c", "PQescapeIdentifier"},       /* schema names from the code */
        {"common/src/rotation.c", "s_identifier_valid"}, /* table and column names, quoted */
        /* Table and column names from the static kinds of masters_kinds.c; the
         * rows go in by COPY (escaped) and parameters. */
        {"services/directory/masters_batch.c", "kind->columns["},
        /* Sort columns from the static s_sorts table, SET columns named in the
         * code (s_set), placeholders and numbers; every value a parameter. */
        {"services/history/records.c", "s_sorts[which].sql"},
        /* The WHERE made by history_filter_sql (placeholders and numbers). */
        {"services/history/transfer.c", "history_filter_sql("},
        /* The grouping's column and its text form from the static tables s_group_sql,
         * s_group_text, s_cache_key and s_cache_order, indexed by a checked enum; every
         * value (period, service level) a parameter. */
        {"services/report/kpi.c", "s_group_sql[group]"},
    };
    for (const char *p = text; *p; p++) {
        if (p[0] == '/' && p[1] == '/') {
            p = strchr(p, '\n');
            if (!p)
                break;
            continue;
        }
        if (p[0] == '/' && p[1] == '*') {
            p = strstr(p + 2, "*/");
            if (!p)
                break;
            p++;
            continue;
        }
        if (*p == '\'' && p[1]) {
            p += p[1] == '\\' ? 3 : 2;
            continue;
        }
        if (*p != '"')
            continue;
        const char *start = ++p;
        while (*p && *p != '"')
            p += (*p == '\\' && p[1]) ? 2 : 1;
        if (!s_sql_literal_is_formatted(start, (size_t)(p - start)))
            continue;
        bool ok = false;
        for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
            ok = ok || (strcmp(path, allowed[i][0]) == 0 && strstr(text, allowed[i][1]));
        if (!ok) {
            size_t used = strlen(scan->found);
            int shown = (int)(p - start) < 60 ? (int)(p - start) : 60;
            snprintf(scan->found + used, sizeof scan->found - used, "%s: \"%.*s\"; ", path, shown,
                     start);
        }
        if (!*p)
            break;
    }
    static const char *const escapes[] = {"PQescapeLiteral", "PQescapeString",
                                          "PQescapeStringConn"};
    for (size_t i = 0; i < sizeof escapes / sizeof escapes[0]; i++) {
        if (strstr(text, escapes[i])) {
            size_t used = strlen(scan->found);
            snprintf(scan->found + used, sizeof scan->found - used, "%s: %s; ", path, escapes[i]);
        }
    }
}

Test(sql_injection, daemon_sql_is_parameterised_never_formatted_with_values)
{
    static const char *const c_files[] = {".c", ".h", NULL};
    static const char *const dirs[] = {"gateway", "services", "common/src", "tools"};
    s_sql_scan_t scan = {0};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
        sec_walk(dirs[i], c_files, s_scan_sql, &scan);
    cr_assert_gt(scan.files, 20);
    cr_assert_str_empty(scan.found, "SQL formatted with printf outside the reviewed files: %s",
                        scan.found);
}

/* ---- OS command injection --------------------------------------------------------------- */

Test(os_command_injection, shell_payloads_in_text_fields_run_nothing, .timeout = 120)
{
    sec_session_t admin, op;
    sec_admin(&admin);
    sec_user(&admin, "operator", "cmdi", &op);
    char marker[4][96];
    for (int i = 0; i < 4; i++) {
        snprintf(marker[i], sizeof marker[i], "/tmp/ncc-pwned-%d-%d", (int)getpid(), i);
        unlink(marker[i]);
    }
    char payloads[8][256];
    snprintf(payloads[0], sizeof payloads[0], "$(touch %s)", marker[0]);
    snprintf(payloads[1], sizeof payloads[1], "`touch %s`", marker[1]);
    snprintf(payloads[2], sizeof payloads[2], "x; touch %s; #", marker[2]);
    snprintf(payloads[3], sizeof payloads[3], "x | touch %s", marker[3]);
    snprintf(payloads[4], sizeof payloads[4], "x && touch %s", marker[0]);
    snprintf(payloads[5], sizeof payloads[5], "x\ntouch %s\n", marker[1]);
    snprintf(payloads[6], sizeof payloads[6], "${IFS}touch${IFS}%s", marker[2]);
    snprintf(payloads[7], sizeof payloads[7], "'\"; touch %s; echo '", marker[3]);

    for (size_t p = 0; p < 8; p++) {
        char *q = sec_json_quote(payloads[p]), *body = NULL, login[72], password[64];
        /* As a name (stored), as a login (refused), as the ping message, in a
         * filter, as the user agent and the request id. */
        sec_unique_login("cmdi", login, sizeof login);
        sec_new_password(password);
        cr_assert(asprintf(&body,
                           "{\"login\":\"%s\",\"name\":%s,\"roles\":[\"staff\"],"
                           "\"password\":\"%s\"}",
                           login, q, password) > 0);
        sec_resp_t resp = sec_http(&(sec_req_t){.method = "POST",
                                                .path = "/api/v1/users",
                                                .body = body,
                                                .cookie = admin.cookie,
                                                .csrf = admin.csrf});
        /* A name with a control character (the newline) is refused; any other is data. */
        bool control = strpbrk(payloads[p], "\n") != NULL;
        cr_assert_eq(resp.status, control ? 422 : 201, "%s: %ld %s", body, resp.status, resp.body);
        if (!control)
            cr_assert_str_eq(sec_str(resp.json, "name"), payloads[p]);
        sec_free(&resp);
        free(body);

        cr_assert(asprintf(&body,
                           "{\"login\":%s,\"name\":\"x\",\"roles\":[\"staff\"],"
                           "\"password\":\"%s\"}",
                           q, password) > 0);
        resp = sec_http(&(sec_req_t){.method = "POST",
                                     .path = "/api/v1/users",
                                     .body = body,
                                     .cookie = admin.cookie,
                                     .csrf = admin.csrf});
        cr_assert_eq(resp.status, 422, "a login with shell characters: %ld %s", resp.status,
                     resp.body);
        sec_free(&resp);
        free(body);

        cr_assert(asprintf(&body, "{\"message\":%s}", q) > 0);
        resp = sec_http(&(sec_req_t){
            .method = "POST", .path = "/api/v1/services/directory/ping", .body = body});
        cr_assert_eq(resp.status, 200, "%ld %s", resp.status, resp.body);
        cr_assert_str_eq(sec_str(resp.json, "message"), payloads[p], "echoed as data");
        sec_free(&resp);
        free(body);

        char *encoded = sec_url_encode(payloads[p]), *path = NULL;
        cr_assert(asprintf(&path, "/api/v1/users?q=%s", encoded) > 0);
        char agent[300];
        snprintf(agent, sizeof agent, "User-Agent: %.*s", (int)strcspn(payloads[p], "\n"),
                 payloads[p]);
        const char *headers[] = {agent, NULL};
        resp = sec_http(&(sec_req_t){.path = path, .cookie = admin.cookie, .headers = headers});
        cr_assert(resp.status == 200 || (control && resp.status == 422), "%s: %ld %s", path,
                  resp.status, resp.body);
        sec_free(&resp);
        free(path);
        free(encoded);
        free(q);
    }
    /* The sign-in stores the user agent: a session made with a shell payload as agent. */
    sec_session_t again;
    cr_assert_eq(sec_sign_in(op.login, op.password, NULL, NULL, &again), 200);

    sleep(1); /* anything started in the background has had time to run */
    for (int i = 0; i < 4; i++) {
        struct stat st;
        cr_assert_neq(stat(marker[i], &st), 0, "%s exists: a shell ran a payload", marker[i]);
    }
}

/* The code of the daemons never starts a program: no shell, no exec, no
 * popen, so no text can ever reach a command line. (Tests and tools may.) */
typedef struct {
    int files;
    char found[2048];
} s_exec_scan_t;

static void s_scan_for_exec(const char *path, const char *text, void *arg)
{
    s_exec_scan_t *scan = arg;
    static const char *const calls[] = {
        "system", "popen",       "execl",     "execle",      "execlp",       "execv", "execve",
        "execvp", "execvpe",     "fexecve",   "posix_spawn", "posix_spawnp", "fork",  "vfork",
        "clone",  "zsys_run_as", "zproc_run", "wordexp",     "dlopen",
    };
    char *code = sec_c_code_only(text);
    scan->files++;
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        size_t len = strlen(calls[i]);
        for (const char *p = strstr(code, calls[i]); p; p = strstr(p + 1, calls[i])) {
            bool word_start =
                p == code || !(p[-1] == '_' || (p[-1] >= 'a' && p[-1] <= 'z') ||
                               (p[-1] >= 'A' && p[-1] <= 'Z') || (p[-1] >= '0' && p[-1] <= '9') ||
                               p[-1] == '.' || p[-1] == '>');
            const char *after = p + len;
            while (*after == ' ' || *after == '\t' || *after == '\n')
                after++;
            if (!word_start || *after != '(')
                continue;
            /* The TLS shim defines and forwards dlopen for libssl (docs/gateway.md, TLS). */
            if (strcmp(calls[i], "dlopen") == 0 && strcmp(path, "gateway/tls_compat.c") == 0)
                continue;
            size_t used = strlen(scan->found);
            snprintf(scan->found + used, sizeof scan->found - used, "%s: %s(); ", path, calls[i]);
        }
    }
    free(code);
}

Test(os_command_injection, no_daemon_source_starts_a_program)
{
    static const char *const c_files[] = {".c", ".h", NULL};
    static const char *const dirs[] = {"gateway", "services", "common/src", "common/include"};
    s_exec_scan_t scan = {0};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
        sec_walk(dirs[i], c_files, s_scan_for_exec, &scan);
    cr_assert_gt(scan.files, 20, "only %d sources found under %s", scan.files, sec_source_dir());
    cr_assert_str_empty(scan.found, "a daemon starts programs: %s", scan.found);
}

/* ---- HTTP header injection ---------------------------------------------------------------- */

/* No header an attacker named, and one X-Request-Id of hex digits and '-'. */
static void s_expect_no_injected_header(const sec_resp_t *resp, const char *what)
{
    cr_assert_gt(resp->status, 0, "%s: no answer", what);
    cr_assert_eq(sec_header_count(resp, "X-Injected"), 0, "%s:\n%s", what, resp->headers);
    char *cookie = sec_header(resp, "Set-Cookie");
    cr_assert(!cookie || !strstr(cookie, "pwned"), "%s: injected cookie:\n%s", what, resp->headers);
    free(cookie);
    cr_assert_leq(sec_header_count(resp, "Set-Cookie"), 1, "%s:\n%s", what, resp->headers);
    char *id = sec_header(resp, "X-Request-Id");
    if (id) {
        cr_assert_eq(strspn(id, "0123456789abcdefABCDEF-"), strlen(id), "%s: X-Request-Id %s", what,
                     id);
        free(id);
    }
    /* Each header line is Name: value (no bare line from a split). */
    for (const char *line = strstr(resp->headers, "\r\n"); line && line[2];) {
        line += 2;
        const char *end = strstr(line, "\r\n");
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len == 0)
            break;
        const char *colon = memchr(line, ':', len);
        cr_assert_not_null(colon, "%s: a header line without a name: %.*s", what, (int)len, line);
        line = end;
    }
}

Test(header_injection, crlf_in_request_id_query_path_and_cookie_adds_no_header, .timeout = 60)
{
    sec_session_t admin;
    sec_admin(&admin);
    static const char *const paths[] = {
        "/api/v1/health?x=%0d%0aSet-Cookie:%20pwned=1",
        "/api/v1/%0d%0aSet-Cookie:%20pwned=1",
        "/api/v1/users?q=%0d%0aX-Injected:%20pwned",
        "/api/v1/users/1%0d%0aX-Injected:%20pwned",
        "/api/v1/audit?actor=%0d%0aX-Injected:%20pwned",
        "/%0d%0aSet-Cookie:%20pwned=1",
        "/index.html%0d%0aX-Injected:%20pwned",
        "/js?%0d%0aSet-Cookie:%20pwned=1",
        "/css%0d%0aX-Injected:%20pwned",
        "/%E5%98%8A%E5%98%8DX-Injected:%20pwned",
    };
    static const char *const request_ids[] = {
        "X-Request-Id: abcdef12%0d%0aSet-Cookie: pwned=1",
        "X-Request-Id: abcdef12\r\n X-Injected: pwned",
        "X-Request-Id: abcdef12\tX-Injected: pwned",
        "X-Request-Id: <script>pwned</script>",
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        for (size_t j = 0; j < sizeof request_ids / sizeof request_ids[0]; j++) {
            const char *headers[] = {request_ids[j], NULL};
            sec_resp_t resp = sec_http(
                &(sec_req_t){.path = paths[i], .cookie = admin.cookie, .headers = headers});
            char what[256];
            snprintf(what, sizeof what, "%s with %s", paths[i], request_ids[j]);
            s_expect_no_injected_header(&resp, what);
            cr_assert_lt(resp.status, 500, "%s: %ld", what, resp.status);
            sec_free(&resp);
        }
    }
    /* A cookie value with CRLF is no session and echoes nothing. */
    sec_resp_t resp = sec_http(&(sec_req_t){
        .path = "/api/v1/me", .raw_cookie = "ncc_session=abc%0d%0aSet-Cookie:%20pwned=1"});
    s_expect_no_injected_header(&resp, "cookie");
    cr_assert_eq(resp.status, 401);
    sec_free(&resp);

    /* The audit log writes the path as printable ASCII: a CRLF cannot forge
     * an entry or a log line. */
    resp = sec_http(
        &(sec_req_t){.path = "/api/v1/users/1%0d%0aX-Injected:%20pwned", .cookie = admin.cookie});
    sec_free(&resp);
    char *target = sec_db_text("SELECT target FROM directory.audit_log WHERE target LIKE "
                               "'/api/v1/users/1%X-Injected%' ORDER BY seq DESC LIMIT 1",
                               NULL, NULL, NULL);
    cr_assert_not_null(target, "the refused read is audited with its path");
    cr_assert_null(strpbrk(target, "\r\n"), "a CR or LF in the audit target: %s", target);
    free(target);
}

/* ---- mail header injection ---------------------------------------------------------------- */

/* ncc sends no e-mail (the SMS service will use a provider's HTTP API). A
 * name with CRLF and mail headers is stored and returned as data,
 * JSON-escaped, and never splits an HTTP header either. */
Test(mail_header_injection, crlf_and_mail_headers_in_a_name_stay_data, .timeout = 60)
{
    sec_session_t admin;
    sec_admin(&admin);
    const char *name = "中野 太郎\r\nBcc: victim@example.com\r\nSubject: pwned\r\n\r\nbody";
    char login[72], password[64], *q = sec_json_quote(name), *body = NULL;
    sec_unique_login("mail", login, sizeof login);
    sec_new_password(password);
    cr_assert(asprintf(&body,
                       "{\"login\":\"%s@example.com\",\"name\":%s,\"roles\":[\"staff\"],"
                       "\"password\":\"%s\"}",
                       login, q, password) > 0);
    sec_resp_t resp = sec_http(&(sec_req_t){.method = "POST",
                                            .path = "/api/v1/users",
                                            .body = body,
                                            .cookie = admin.cookie,
                                            .csrf = admin.csrf});
    free(body);
    free(q);
    /* Control characters in a name may be refused (422) or kept as data (201). */
    cr_assert(resp.status == 201 || resp.status == 422, "%ld %s", resp.status, resp.body);
    s_expect_no_injected_header(&resp, "create");
    cr_assert_eq(sec_header_count(&resp, "Bcc"), 0);
    cr_assert_eq(sec_header_count(&resp, "Subject"), 0);
    if (resp.status == 201) {
        cr_assert(strstr(resp.body, "\\r\\nBcc:"), "CRLF is JSON-escaped: %s", resp.body);
        cr_assert_null(strstr(resp.body, "\r\n"), "a raw CRLF in the JSON: %s", resp.body);
        char path[64];
        snprintf(path, sizeof path, "/api/v1/users/%ld", sec_num(resp.json, "id"));
        sec_free(&resp);
        resp = sec_http(&(sec_req_t){.path = path, .cookie = admin.cookie});
        cr_assert_eq(resp.status, 200);
        cr_assert_str_eq(sec_str(resp.json, "name"), name, "the name is kept as it was sent");
        cr_assert_eq(sec_header_count(&resp, "Bcc"), 0);
        /* Signing in as that user puts the name in the session, not in a header. */
        sec_session_t user;
        char full[96];
        snprintf(full, sizeof full, "%s@example.com", login);
        cr_assert_eq(sec_sign_in(full, password, NULL, NULL, &user), 200);
        cr_assert_null(strstr(user.set_cookie, "Bcc"), "%s", user.set_cookie);
    }
    sec_free(&resp);
}

/* ---- eval injection ------------------------------------------------------------------------ */

typedef struct {
    int files;
    char found[2048];
} s_eval_scan_t;

/* True when p (inside text) starts a word: not preceded by [A-Za-z0-9_$]. */
static bool s_word_start(const char *text, const char *p)
{
    if (p == text)
        return true;
    char c = p[-1];
    return !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '$');
}

static void s_scan_for_eval(const char *path, const char *text, void *arg)
{
    s_eval_scan_t *scan = arg;
    /* Evaluation of text, and the HTML sinks that would let text become script. */
    static const char *const patterns[] = {
        "eval(",
        "eval (",
        "Function(",
        "setTimeout('",
        "setTimeout(\"",
        "setTimeout(`",
        "setInterval('",
        "setInterval(\"",
        "setInterval(`",
        "execScript",
        "javascript:",
        "import(",
        ".innerHTML",
        ".outerHTML",
        ".srcdoc",
        "document.write",
        "insertAdjacentHTML",
        "createContextualFragment",
        "DOMParser",
    };
    scan->files++;
    for (size_t i = 0; i < sizeof patterns / sizeof patterns[0]; i++) {
        for (const char *p = strstr(text, patterns[i]); p; p = strstr(p + 1, patterns[i])) {
            if (patterns[i][0] != '.' && !s_word_start(text, p))
                continue;
            size_t used = strlen(scan->found);
            snprintf(scan->found + used, sizeof scan->found - used, "%s: %s; ", path, patterns[i]);
            break;
        }
    }
}

Test(eval_injection, the_client_never_evaluates_text)
{
    static const char *const web_files[] = {".js", ".mjs", ".html", NULL};
    s_eval_scan_t scan = {0};
    sec_walk("gateway/web", web_files, s_scan_for_eval, &scan);
    cr_assert_geq(scan.files, 5, "only %d client files found", scan.files);
    cr_assert_str_empty(scan.found, "the client evaluates or injects text: %s", scan.found);
}

Test(eval_injection, csp_forbids_eval_and_inline_script_everywhere, .timeout = 60)
{
    static const char *const paths[] = {
        "/",          "/index.html",        "/js/app.js", "/api/v1/health",
        "/api/v1/me", "/no-such-page.html", "/js/"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        sec_resp_t resp = sec_http(&(sec_req_t){.path = paths[i]});
        char *csp = sec_header(&resp, "Content-Security-Policy");
        cr_assert_not_null(csp, "%s: no CSP\n%s", paths[i], resp.headers);
        cr_assert(strstr(csp, "default-src 'self'"), "%s: %s", paths[i], csp);
        cr_assert_null(strstr(csp, "unsafe-eval"), "%s: %s", paths[i], csp);
        cr_assert_null(strstr(csp, "unsafe-inline"), "%s: %s", paths[i], csp);
        cr_assert_null(strstr(csp, "script-src"),
                       "%s: a script-src that could widen default-src: %s", paths[i], csp);
        cr_assert(strstr(csp, "object-src 'none'"), "%s: %s", paths[i], csp);
        cr_assert(strstr(csp, "base-uri 'none'"), "%s: %s", paths[i], csp);
        free(csp);
        sec_free(&resp);
    }
}
