/* ncc-gateway's sessions, CSRF, roles, IP allow-list and audit (R9, R15, R17,
 * R18, R21, the IPA list), end to end: the real ncc-directory and the real
 * ncc-gateway (from NCC_TEST_BIN_DIR) against a database of this test's own
 * on the cluster NCC_DATABASE_URL points at (scripts/pg.sh fresh), with a
 * bus actor key, data keys and a first administrator made here. Every
 * request goes over HTTPS (or the plain listener, to see the cookie without
 * Secure) through libcurl, and every claim is checked from the outside:
 * cookie flags, a new session at each sign-in, sign-out, sign-out
 * everywhere, idle and absolute timeouts, CSRF and Origin, every role
 * against every administrator route, the address allow-list and trusted
 * proxies, and the audit log (entries, fail closed, the chain holds). */
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ncc/crypto.h"
#include "ncc/log.h"
#include "ncc/service.h"
#include "ncc_test.h"

#define READY_TIMEOUT_MS 30000

#define ADMIN_LOGIN    "admin"
#define ADMIN_PASSWORD "Kuyakusho-Test-Pass-42"
#define ADMIN_TOTP     "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
#define USER_PASSWORD  "Madoguchi-7-Soudan!"

/* ---- the database of one test --------------------------------------------------- */

static ncct_database_t s_db; /* its name, the application role's and the owner's URLs */

static void s_fresh_database(void)
{
    cr_assert(ncct_database_fresh(&s_db, "test_gateway_auth"),
              "scripts/pg.sh fresh failed (the test makes its own database on the cluster of "
              "NCC_DATABASE_URL: scripts/pg.sh start; . var/env)");
}

static void s_drop_database(void)
{
    ncct_database_drop(&s_db);
}

/* Runs one statement as the schema owner, asserting success. */
static void s_owner_sql(const char *sql)
{
    PGconn *conn = PQconnectdb(s_db.owner_url);
    cr_assert_eq(PQstatus(conn), CONNECTION_OK, "%s", PQerrorMessage(conn));
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    cr_assert(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(conn));
    PQclear(res);
    PQfinish(conn);
}

/* The first column of the first row as a long (as the owner). */
static long s_owner_long(const char *sql)
{
    PGconn *conn = PQconnectdb(s_db.owner_url);
    cr_assert_eq(PQstatus(conn), CONNECTION_OK, "%s", PQerrorMessage(conn));
    PGresult *res = PQexec(conn, sql);
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(conn));
    long value = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    PQfinish(conn);
    return value;
}

/* ---- daemons -------------------------------------------------------------------------- */

typedef struct {
    pid_t pid;
    char log[160];
    int https_port, http_port, health_port;
    char cert[160];
} daemon_t;

static daemon_t s_directory;
static char s_directory_rpc[64];
#define MAX_GATEWAYS 3
static daemon_t s_gateways[MAX_GATEWAYS];

static char *s_log_of(const daemon_t *d)
{
    return ncct_read_file(d->log);
}

static void s_dump(const daemon_t *d, const char *what)
{
    char *log = s_log_of(d);
    cr_log_error("---- %s log (%s) ----\n%s", what, d->log, log ? log : "(none)");
    free(log);
}

static void s_start_directory(void)
{
    daemon_t *d = &s_directory;
    int rpc = ncct_free_port(), pub = ncct_free_port(), health = ncct_free_port();
    cr_assert(rpc > 0 && pub > 0 && health > 0);
    snprintf(s_directory_rpc, sizeof s_directory_rpc, "tcp://127.0.0.1:%d", rpc);
    snprintf(d->log, sizeof d->log, "/tmp/ncc-test-gwauth-directory-%d.log", (int)getpid());
    unlink(d->log);
    static char env_text[8][600];
    snprintf(env_text[0], sizeof env_text[0], "NCC_DIRECTORY_RPC_BIND=%s", s_directory_rpc);
    snprintf(env_text[1], sizeof env_text[1], "NCC_DIRECTORY_PUB_BIND=tcp://127.0.0.1:%d", pub);
    snprintf(env_text[2], sizeof env_text[2], "NCC_DIRECTORY_HEALTH_LISTEN=127.0.0.1:%d", health);
    snprintf(env_text[3], sizeof env_text[3], "NCC_DATABASE_URL=%s", s_db.url);
    snprintf(env_text[4], sizeof env_text[4], "NCC_DATABASE_OWNER_URL=%s", s_db.owner_url);
    const char *env[] = {env_text[0],
                         env_text[1],
                         env_text[2],
                         env_text[3],
                         env_text[4],
                         "NCC_CONFIG_FILE=",
                         "NCC_LOG_LEVEL=info",
                         "NCC_ARGON2_MEMORY_KIB=1024",
                         "NCC_LOGIN_ADDRESS_MAX_FAILURES=1000",
                         "NCC_BOOTSTRAP_ADMIN_LOGIN=" ADMIN_LOGIN,
                         "NCC_BOOTSTRAP_ADMIN_PASSWORD=" ADMIN_PASSWORD,
                         "NCC_BOOTSTRAP_ADMIN_TOTP_SECRET=" ADMIN_TOTP,
                         NULL};
    d->pid = ncct_spawn("ncc-directory", env, d->log);
    cr_assert_gt(d->pid, 0);
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/readyz", health);
    if (!ncct_wait_status(url, 200, READY_TIMEOUT_MS)) {
        s_dump(d, "ncc-directory");
        cr_assert_fail("ncc-directory did not become ready");
    }
    /* The first administrator is made just after the database is ready. */
    long long deadline = ncct_now_ms() + READY_TIMEOUT_MS;
    while (s_owner_long("SELECT count(*) FROM directory.users") == 0) {
        cr_assert_lt(ncct_now_ms(), deadline, "no administrator was created");
        usleep(50 * 1000);
    }
}

/* Starts gateway `slot` with the common settings plus `extra` ("NAME=value",
 * NULL-terminated; later entries win). Waits for /readyz when `wait`. */
static daemon_t *s_start_gateway(int slot, const char *const *extra, bool wait)
{
    daemon_t *d = &s_gateways[slot];
    d->https_port = ncct_free_port();
    d->http_port = ncct_free_port();
    d->health_port = ncct_free_port();
    cr_assert(d->https_port > 0 && d->http_port > 0 && d->health_port > 0);
    snprintf(d->log, sizeof d->log, "/tmp/ncc-test-gwauth-gateway%d-%d.log", slot, (int)getpid());
    snprintf(d->cert, sizeof d->cert, "/tmp/ncc-test-gwauth-gateway%d-%d.pem", slot, (int)getpid());
    unlink(d->log);
    unlink(d->cert);

    /* Texts made here (t of them) and the environment (n entries). */
    static char env_text[MAX_GATEWAYS][24][600];
    char(*text)[600] = env_text[slot];
    const char *env[48];
    size_t n = 0, t = 0;
#define S_ADD(...)                                                                                 \
    do {                                                                                           \
        cr_assert_lt(t, 24);                                                                       \
        snprintf(text[t], sizeof text[t], __VA_ARGS__);                                            \
        env[n++] = text[t++];                                                                      \
    } while (0)
    S_ADD("NCC_HTTPS_PORT=%d", d->https_port);
    S_ADD("NCC_HTTP_LISTEN=127.0.0.1:%d", d->http_port);
    S_ADD("NCC_GATEWAY_HEALTH_LISTEN=127.0.0.1:%d", d->health_port);
    S_ADD("NCC_TLS_CERT=%s", d->cert);
    S_ADD("NCC_DATABASE_URL=%s", s_db.url);
    S_ADD("NCC_DATABASE_OWNER_URL=%s", s_db.owner_url);
    env[n++] = "NCC_HTTPS_LISTEN=";
    env[n++] = "NCC_CONFIG_FILE=";
    env[n++] = "NCC_WEB_ROOT=gateway/web";
    env[n++] = "NCC_LOG_LEVEL=info";
    env[n++] = "NCC_BUS_TIMEOUT_MS=5000";
    env[n++] = "NCC_GATEWAY_HEALTH_TIMEOUT_MS=300";
    env[n++] = "NCC_SESSION_IDLE_MINUTES=";
    env[n++] = "NCC_SESSION_IDLE_SECONDS=";
    env[n++] = "NCC_SESSION_MAX_HOURS=";
    env[n++] = "NCC_SESSION_MAX_SECONDS=";
    env[n++] = "NCC_STAFF_ALLOW_CIDRS=";
    env[n++] = "NCC_TRUSTED_PROXIES=";
    for (size_t i = 0; ncc_service_names[i]; i++) {
        char upper[32];
        snprintf(upper, sizeof upper, "%s", ncc_service_names[i]);
        for (char *p = upper; *p; p++)
            *p = (char)toupper((unsigned char)*p);
        if (strcmp(ncc_service_names[i], "directory") == 0)
            S_ADD("NCC_%s_RPC=%s", upper, s_directory_rpc);
        else /* nobody listens there: the service is down */
            S_ADD("NCC_%s_RPC=tcp://127.0.0.1:%d", upper, ncct_free_port());
    }
#undef S_ADD
    for (size_t i = 0; extra && extra[i] && n + 1 < sizeof env / sizeof env[0]; i++)
        env[n++] = extra[i];
    env[n] = NULL;
    d->pid = ncct_spawn("ncc-gateway", env, d->log);
    cr_assert_gt(d->pid, 0);
    if (wait) {
        char url[96];
        snprintf(url, sizeof url, "http://127.0.0.1:%d/readyz", d->health_port);
        if (!ncct_wait_status(url, 200, READY_TIMEOUT_MS)) {
            s_dump(d, "ncc-gateway");
            cr_assert_fail("ncc-gateway did not become ready");
        }
    }
    return d;
}

/* SIGTERM, exit 0, no sanitizer report. */
static void s_stop(daemon_t *d, const char *what)
{
    if (d->pid <= 0)
        return;
    kill(d->pid, SIGTERM);
    int status = ncct_wait_exit(d->pid, 20000);
    if (status == -1)
        ncct_kill(d->pid);
    d->pid = 0;
    char *log = s_log_of(d);
    bool clean = log && !strstr(log, "Sanitizer") && !strstr(log, "runtime error:");
    free(log);
    if (!clean)
        s_dump(d, what);
    cr_assert_neq(status, -1, "%s did not stop on SIGTERM", what);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: exit status %d", what, status);
    cr_assert(clean, "sanitizer report in %s", d->log);
    unlink(d->log);
    unlink(d->cert);
}

static void setup(void)
{
    ncc_log_init("test_gateway_auth", NCC_LOG_ERROR);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    cr_assert_eq(access("gateway/web/index.html", R_OK), 0,
                 "run from the repository root (gateway/web/index.html)");
    char key[64], data_key[80];
    ncct_random_key(key);
    setenv("NCC_BUS_ACTOR_KEY", key, 1);
    ncct_random_key(key);
    snprintf(data_key, sizeof data_key, "t1:%s", key);
    setenv("NCC_DATA_KEYS", data_key, 1);
    ncct_random_key(key);
    setenv("NCC_BLIND_INDEX_KEY", key, 1);
    s_fresh_database();
    s_start_directory();
}

static void teardown(void)
{
    for (int i = 0; i < MAX_GATEWAYS; i++) {
        if (s_gateways[i].pid > 0)
            ncct_kill(s_gateways[i].pid);
        s_gateways[i].pid = 0;
    }
    if (s_directory.pid > 0)
        ncct_kill(s_directory.pid);
    s_directory.pid = 0;
    s_drop_database();
    curl_global_cleanup();
}

TestSuite(gateway_auth, .init = setup, .fini = teardown, .timeout = 180);

/* ---- HTTP ------------------------------------------------------------------------------ */

typedef struct {
    const daemon_t *gw;        /* default: gateway 0 */
    const char *method;        /* default GET */
    const char *path;          /* "/api/v1/..." */
    const char *body;          /* JSON, or NULL */
    const char *cookie;        /* session cookie value to send, or NULL */
    const char *raw_cookie;    /* a whole Cookie header value instead */
    const char *csrf;          /* X-CSRF-Token, or NULL */
    const char *origin;        /* Origin, or NULL */
    const char *forwarded_for; /* X-Forwarded-For, or NULL */
    bool plain;                /* the plain HTTP listener */
} req_t;

typedef struct {
    long status;
    char *body;    /* never NULL */
    char *headers; /* never NULL */
    cJSON *json;   /* the body parsed, or NULL */
} resp_t;

static resp_t s_http(const req_t *r)
{
    const daemon_t *gw = r->gw ? r->gw : &s_gateways[0];
    CURL *curl = curl_easy_init();
    cr_assert_not_null(curl);
    ncct_buffer_t body = {0}, headers = {0};
    struct curl_slist *list = NULL;
    char url[1024], line[1024];
    snprintf(url, sizeof url, "%s://127.0.0.1:%d%s", r->plain ? "http" : "https",
             r->plain ? gw->http_port : gw->https_port, r->path);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 20000L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, ncct_curl_collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, ncct_curl_collect);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &headers);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, r->method ? r->method : "GET");
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "test_gateway_auth");
    if (r->body) {
        list = curl_slist_append(list, "Content-Type: application/json");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(r->body));
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, r->body);
    }
    if (r->cookie || r->raw_cookie) {
        if (r->raw_cookie)
            snprintf(line, sizeof line, "Cookie: %s", r->raw_cookie);
        else
            snprintf(line, sizeof line, "Cookie: ncc_session=%s", r->cookie);
        list = curl_slist_append(list, line);
    }
    if (r->csrf) {
        snprintf(line, sizeof line, "X-CSRF-Token: %s", r->csrf);
        list = curl_slist_append(list, line);
    }
    if (r->origin) {
        snprintf(line, sizeof line, "Origin: %s", r->origin);
        list = curl_slist_append(list, line);
    }
    if (r->forwarded_for) {
        snprintf(line, sizeof line, "X-Forwarded-For: %s", r->forwarded_for);
        list = curl_slist_append(list, line);
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    CURLcode code = curl_easy_perform(curl);
    resp_t out = {0};
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out.status);
    curl_slist_free_all(list);
    curl_easy_cleanup(curl);
    cr_assert_eq(code, CURLE_OK, "%s %s: %s", r->method ? r->method : "GET", r->path,
                 curl_easy_strerror(code));
    out.body = body.data ? body.data : strdup("");
    out.headers = headers.data ? headers.data : strdup("");
    out.json = cJSON_Parse(out.body);
    return out;
}

static void s_free(resp_t *resp)
{
    free(resp->body);
    free(resp->headers);
    cJSON_Delete(resp->json);
    memset(resp, 0, sizeof *resp);
}

/* The value of header `name` (caller frees), or NULL. */
static char *s_header(const resp_t *resp, const char *name)
{
    size_t name_len = strlen(name);
    for (const char *line = resp->headers; line && *line;) {
        const char *end = strstr(line, "\r\n");
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > name_len && strncasecmp(line, name, name_len) == 0 && line[name_len] == ':') {
            const char *value = line + name_len + 1;
            while (*value == ' ')
                value++;
            return strndup(value, len - (size_t)(value - line));
        }
        line = end ? end + 2 : NULL;
    }
    return NULL;
}

static const char *s_str(const cJSON *object, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, name);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

static const char *s_error_code(const resp_t *resp)
{
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(resp->json, "error");
    return s_str(error, "code");
}

/* Asserts `status` (and the error code, when code is not NULL), then frees. */
static void s_expect(resp_t resp, long status, const char *code, const char *what)
{
    cr_assert_eq(resp.status, status, "%s: status %ld (expected %ld): %s", what, resp.status,
                 status, resp.body);
    if (code) {
        const char *got = s_error_code(&resp);
        cr_assert(got && strcmp(got, code) == 0, "%s: code %s (expected %s): %s", what,
                  got ? got : "(none)", code, resp.body);
    }
    s_free(&resp);
}

/* ---- sessions -------------------------------------------------------------------------- */

typedef struct {
    char cookie[80];
    char csrf[80];
    char set_cookie[256]; /* the whole Set-Cookie header */
    long user_id;
} session_t;

/* Signs in; on 200 fills *out from Set-Cookie and the body. Returns the status. */
static long s_login_as(const daemon_t *gw, const char *login, const char *password,
                       const char *totp, const char *presented_cookie, bool plain, session_t *out)
{
    char body[512];
    if (totp)
        snprintf(body, sizeof body, "{\"login\":\"%s\",\"password\":\"%s\",\"totp\":\"%s\"}", login,
                 password, totp);
    else
        snprintf(body, sizeof body, "{\"login\":\"%s\",\"password\":\"%s\"}", login, password);
    resp_t resp = s_http(&(req_t){.gw = gw,
                                  .method = "POST",
                                  .path = "/api/v1/session",
                                  .body = body,
                                  .cookie = presented_cookie,
                                  .plain = plain});
    long status = resp.status;
    memset(out, 0, sizeof *out);
    char *set_cookie = s_header(&resp, "Set-Cookie");
    if (status == 200) {
        cr_assert_not_null(set_cookie, "sign-in without Set-Cookie:\n%s", resp.headers);
        snprintf(out->set_cookie, sizeof out->set_cookie, "%s", set_cookie);
        cr_assert_eq(strncmp(set_cookie, "ncc_session=", 12), 0, "%s", set_cookie);
        size_t len = strcspn(set_cookie + 12, ";");
        cr_assert_lt(len, sizeof out->cookie);
        memcpy(out->cookie, set_cookie + 12, len);
        const char *csrf = s_str(resp.json, "csrf_token");
        cr_assert_not_null(csrf, "no csrf_token: %s", resp.body);
        snprintf(out->csrf, sizeof out->csrf, "%s", csrf);
        const cJSON *user = cJSON_GetObjectItemCaseSensitive(resp.json, "user");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(user, "id");
        cr_assert(cJSON_IsNumber(id), "no user id: %s", resp.body);
        out->user_id = (long)id->valuedouble;
        cr_assert_str_eq(s_str(user, "login"), login);
        cr_assert_null(cJSON_GetObjectItemCaseSensitive(user, "password"));
    } else {
        cr_assert_null(set_cookie, "a failed sign-in set a cookie: %s", set_cookie);
    }
    free(set_cookie);
    s_free(&resp);
    return status;
}

static void s_login(const daemon_t *gw, const char *login, session_t *out)
{
    long status = s_login_as(gw, login, USER_PASSWORD, NULL, NULL, false, out);
    cr_assert_eq(status, 200, "sign-in of %s: %ld", login, status);
}

/* The administrator signs in with the TOTP code of step now + step_offset:
 * each time step is accepted once, so a second sign-in in the same test
 * takes the next one. */
static void s_admin_login(const daemon_t *gw, int step_offset, session_t *out)
{
    char code[7];
    cr_assert_eq(ncc_totp_code(ADMIN_TOTP, (int64_t)time(NULL) + 30 * step_offset, code), 0);
    long status = s_login_as(gw, ADMIN_LOGIN, ADMIN_PASSWORD, code, NULL, false, out);
    cr_assert_eq(status, 200, "administrator sign-in: %ld", status);
}

/* GET /api/v1/me with the session: the status. */
static long s_me(const daemon_t *gw, const session_t *session)
{
    resp_t resp = s_http(&(req_t){.gw = gw, .path = "/api/v1/me", .cookie = session->cookie});
    long status = resp.status;
    if (status == 200)
        cr_assert_str_eq(s_str(resp.json, "csrf_token"), session->csrf);
    s_free(&resp);
    return status;
}

/* The administrator creates a user holding `role`; returns its id. */
static long s_create_user(const session_t *admin, const char *login, const char *role)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"login\":\"%s\",\"name\":\"試験 %s\",\"roles\":[\"%s\"],\"password\":\"%s\"}",
             login, login, role, USER_PASSWORD);
    resp_t resp = s_http(&(req_t){.method = "POST",
                                  .path = "/api/v1/users",
                                  .body = body,
                                  .cookie = admin->cookie,
                                  .csrf = admin->csrf});
    cr_assert_eq(resp.status, 201, "create %s: %ld %s", login, resp.status, resp.body);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(resp.json, "id");
    cr_assert(cJSON_IsNumber(id));
    long value = (long)id->valuedouble;
    s_free(&resp);
    return value;
}

/* How many users have exactly this login (as the database holds them). */
static long s_users_named(const char *login)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM directory.users WHERE login = '%s'", login);
    return s_owner_long(sql);
}

/* Audit entries matching action/outcome/actor_login (any may be NULL), read
 * through GET /api/v1/audit as `reader`. */
static int s_audit_count(const session_t *reader, const char *action, const char *outcome,
                         const char *actor_login, const char *address)
{
    char path[256];
    snprintf(path, sizeof path, "/api/v1/audit?per_page=500%s%s", action ? "&action=" : "",
             action ? action : "");
    resp_t resp = s_http(&(req_t){.path = path, .cookie = reader->cookie});
    cr_assert_eq(resp.status, 200, "audit search: %ld %s", resp.status, resp.body);
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(resp.json, "items");
    cr_assert(cJSON_IsArray(items), "%s", resp.body);
    int count = 0;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, items)
    {
        const char *o = s_str(entry, "outcome"), *l = s_str(entry, "actor_login"),
                   *a = s_str(entry, "address");
        if (outcome && (!o || strcmp(o, outcome) != 0))
            continue;
        if (actor_login && (!l || strcmp(l, actor_login) != 0))
            continue;
        if (address && (!a || strcmp(a, address) != 0))
            continue;
        count++;
    }
    s_free(&resp);
    return count;
}

/* ---- tests ------------------------------------------------------------------------------- */

Test(gateway_auth, sign_in_sets_a_flagged_cookie_and_a_new_session_each_time)
{
    daemon_t *gw = s_start_gateway(0, NULL, true);
    session_t admin, op1, op2, plain;
    s_admin_login(gw, 0, &admin);

    /* HTTPS: HttpOnly, SameSite=Strict, Secure, Path=/; 256 bits of hex. */
    cr_assert(strstr(admin.set_cookie, "; HttpOnly"), "%s", admin.set_cookie);
    cr_assert(strstr(admin.set_cookie, "; SameSite=Strict"), "%s", admin.set_cookie);
    cr_assert(strstr(admin.set_cookie, "; Secure"), "%s", admin.set_cookie);
    cr_assert(strstr(admin.set_cookie, "; Path=/"), "%s", admin.set_cookie);
    cr_assert_eq(strlen(admin.cookie), 64, "%s", admin.cookie);
    cr_assert_eq(strspn(admin.cookie, "0123456789abcdef"), 64);
    cr_assert_eq(strlen(admin.csrf), 64);
    cr_assert_str_neq(admin.cookie, admin.csrf);
    /* The database holds only the SHA-256 of the cookie value. */
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM auth.sessions WHERE id_hash = '%s'",
             admin.cookie);
    cr_assert_eq(s_owner_long(sql), 0, "the cookie value is stored as it is");
    char hash[65];
    ncc_sha256_hex(admin.cookie, 64, hash);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM auth.sessions WHERE id_hash = '%s'", hash);
    cr_assert_eq(s_owner_long(sql), 1);

    /* The answer to a sign-in is not cached. */
    resp_t resp = s_http(&(req_t){.path = "/api/v1/me", .cookie = admin.cookie});
    cr_assert_eq(resp.status, 200, "%s", resp.body);
    char *cache = s_header(&resp, "Cache-Control");
    cr_assert(cache && strcmp(cache, "no-store") == 0, "%s", cache ? cache : "(none)");
    free(cache);
    const cJSON *user = cJSON_GetObjectItemCaseSensitive(resp.json, "user");
    cr_assert_str_eq(s_str(user, "login"), ADMIN_LOGIN);
    s_free(&resp);

    /* Health: a signed-in user sees each service's detail (anonymous: not). */
    resp = s_http(&(req_t){.path = "/api/v1/health", .cookie = admin.cookie});
    cr_assert(strstr(resp.body, "\"detail\":{\"service\":\"directory\""), "%s", resp.body);
    s_free(&resp);
    resp = s_http(&(req_t){.path = "/api/v1/health"});
    cr_assert_null(strstr(resp.body, "\"detail\""), "%s", resp.body);
    s_free(&resp);

    s_create_user(&admin, "op1", "operator");

    /* Fixation: the session the client came with ends; the new one differs. */
    s_login(gw, "op1", &op1);
    cr_assert_eq(s_login_as(gw, "op1", USER_PASSWORD, NULL, op1.cookie, false, &op2), 200);
    cr_assert_str_neq(op1.cookie, op2.cookie, "the same session id after a new sign-in");
    cr_assert_str_neq(op1.csrf, op2.csrf);
    cr_assert_eq(s_me(gw, &op1), 401, "the session presented at sign-in still works");
    cr_assert_eq(s_me(gw, &op2), 200);
    /* A value the client chose is never taken over. */
    const char planted[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    session_t after;
    cr_assert_eq(s_login_as(gw, "op1", USER_PASSWORD, NULL, planted, false, &after), 200);
    cr_assert_str_neq(after.cookie, planted);
    session_t forged = {0};
    snprintf(forged.cookie, sizeof forged.cookie, "%s", planted);
    cr_assert_eq(s_me(gw, &forged), 401);

    /* Plain HTTP (behind a TLS edge that did not say https): no Secure. */
    cr_assert_eq(s_login_as(gw, "op1", USER_PASSWORD, NULL, NULL, true, &plain), 200);
    cr_assert(strstr(plain.set_cookie, "; HttpOnly"), "%s", plain.set_cookie);
    cr_assert(strstr(plain.set_cookie, "; SameSite=Strict"), "%s", plain.set_cookie);
    cr_assert_null(strstr(plain.set_cookie, "Secure"), "%s", plain.set_cookie);

    /* A wrong password: the directory's 401 passes through, and no cookie. */
    session_t none;
    cr_assert_eq(s_login_as(gw, "op1", "wrong-password-1!", NULL, NULL, false, &none), 401);
    resp = s_http(&(req_t){.method = "POST",
                           .path = "/api/v1/session",
                           .body = "{\"login\":\"op1\",\"password\":\"nope-nope-1!\"}"});
    s_expect(resp, 401, "invalid_credentials", "wrong password");
    /* Without a session every staff route is 401. */
    s_expect(s_http(&(req_t){.path = "/api/v1/users"}), 401, "unauthenticated", "no cookie");
    s_expect(s_http(&(req_t){.path = "/api/v1/me", .raw_cookie = "ncc_session=../../etc"}), 401,
             "unauthenticated", "malformed cookie");
    s_stop(gw, "ncc-gateway");
}

Test(gateway_auth, sign_out_and_sign_out_everywhere)
{
    daemon_t *gw = s_start_gateway(0, NULL, true);
    session_t admin, a, b, c;
    s_admin_login(gw, 0, &admin);
    long op_id = s_create_user(&admin, "op2", "operator");
    s_login(gw, "op2", &a);
    s_login(gw, "op2", &b);

    /* Sign-out is state-changing: without the CSRF token nothing happens. */
    s_expect(s_http(&(req_t){.method = "DELETE", .path = "/api/v1/session", .cookie = a.cookie}),
             403, "csrf_failed", "sign-out without CSRF");
    cr_assert_eq(s_me(gw, &a), 200);

    resp_t resp = s_http(&(req_t){
        .method = "DELETE", .path = "/api/v1/session", .cookie = a.cookie, .csrf = a.csrf});
    cr_assert_eq(resp.status, 204, "%ld %s", resp.status, resp.body);
    char *cleared = s_header(&resp, "Set-Cookie");
    cr_assert(cleared && strncmp(cleared, "ncc_session=;", 13) == 0 &&
                  strstr(cleared, "Max-Age=0") && strstr(cleared, "HttpOnly"),
              "%s", cleared ? cleared : "(no Set-Cookie)");
    free(cleared);
    s_free(&resp);
    cr_assert_eq(s_me(gw, &a), 401, "the cookie still works after sign-out");
    cr_assert_eq(s_me(gw, &b), 200, "sign-out ended another session");

    /* Sign-out everywhere: every session of the user, this one included. */
    s_login(gw, "op2", &c);
    resp = s_http(&(req_t){
        .method = "DELETE", .path = "/api/v1/sessions", .cookie = b.cookie, .csrf = b.csrf});
    cr_assert_eq(resp.status, 200, "%ld %s", resp.status, resp.body);
    const cJSON *ended = cJSON_GetObjectItemCaseSensitive(resp.json, "ended");
    cr_assert(cJSON_IsNumber(ended) && ended->valuedouble == 2, "%s", resp.body);
    s_free(&resp);
    cr_assert_eq(s_me(gw, &b), 401);
    cr_assert_eq(s_me(gw, &c), 401, "sign-out everywhere left another session");
    cr_assert_eq(s_me(gw, &admin), 200, "another user's session ended");

    /* A password change ends the user's other sessions, not this one; the
     * user_id sent is ignored: it is always the signed-in user's. */
    s_login(gw, "op2", &a);
    s_login(gw, "op2", &b);
    char body[256];
    snprintf(body, sizeof body,
             "{\"user_id\":%ld,\"current_password\":\"%s\",\"new_password\":\"Atarashii-9-Pass!\"}",
             admin.user_id, USER_PASSWORD);
    resp = s_http(&(req_t){.method = "POST",
                           .path = "/api/v1/me/password",
                           .body = body,
                           .cookie = a.cookie,
                           .csrf = a.csrf});
    cr_assert_eq(resp.status, 200, "%ld %s", resp.status, resp.body);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(resp.json, "id");
    cr_assert(cJSON_IsNumber(id) && (long)id->valuedouble == op_id, "%s", resp.body);
    s_free(&resp);
    cr_assert_eq(s_me(gw, &a), 200);
    cr_assert_eq(s_me(gw, &b), 401, "a password change left another session alive");
    cr_assert_eq(s_login_as(gw, ADMIN_LOGIN, ADMIN_PASSWORD, NULL, NULL, false, &c), 401,
                 "sign-in without TOTP");
    session_t again;
    cr_assert_eq(s_login_as(gw, "op2", "Atarashii-9-Pass!", NULL, NULL, false, &again), 200);

    /* An administrator retiring the user ends every session of it. */
    snprintf(body, sizeof body, "/api/v1/users/%ld", op_id);
    s_expect(s_http(&(req_t){
                 .method = "DELETE", .path = body, .cookie = admin.cookie, .csrf = admin.csrf}),
             200, NULL, "retire op2");
    cr_assert_eq(s_me(gw, &a), 401, "a retired user's session still works");
    cr_assert_eq(s_me(gw, &again), 401);

    cr_assert_geq(s_audit_count(&admin, "session.logout", "ok", "op2", "127.0.0.1"), 1);
    cr_assert_geq(s_audit_count(&admin, "session.logout_all", "ok", "op2", NULL), 1);
    cr_assert_geq(s_audit_count(&admin, "password.change", "ok", "op2", NULL), 1);
    s_stop(gw, "ncc-gateway");
}

/* Sleeps until `ms` after `since` (ncct_now_ms). */
static void s_sleep_until(long long since, long long ms)
{
    long long left = since + ms - ncct_now_ms();
    if (left > 0)
        usleep((useconds_t)left * 1000);
}

Test(gateway_auth, idle_and_absolute_timeouts)
{
    /* Margins of at least a second everywhere: the machine may be busy. */
    const char *extra[] = {"NCC_SESSION_IDLE_SECONDS=4", "NCC_SESSION_MAX_SECONDS=7", NULL};
    daemon_t *gw = s_start_gateway(0, extra, true);
    session_t admin, s;
    s_admin_login(gw, 0, &admin);
    s_create_user(&admin, "op3", "operator");

    /* Idle: used within 4 s it lives on (past 4 s after sign-in); unused
     * for longer it ends. */
    long long start = ncct_now_ms();
    s_login(gw, "op3", &s);
    s_sleep_until(start, 2000);
    cr_assert_eq(s_me(gw, &s), 200);
    long long last = ncct_now_ms();
    s_sleep_until(start, 5000);
    cr_assert_lt(ncct_now_ms() - last, 3500, "the machine is too slow for this test");
    cr_assert_eq(s_me(gw, &s), 200, "activity did not keep the session alive");
    last = ncct_now_ms();
    s_sleep_until(last, 5200);
    cr_assert_eq(s_me(gw, &s), 401, "the idle timeout did not end the session");

    /* Absolute: used every second it still ends 7 s after sign-in. */
    start = ncct_now_ms();
    s_login(gw, "op3", &s);
    for (int second = 1; second <= 5; second++) {
        s_sleep_until(start, second * 1000LL);
        cr_assert_eq(s_me(gw, &s), 200, "ended early, after %d s", second);
        last = ncct_now_ms();
    }
    s_sleep_until(start, 8000);
    cr_assert_lt(ncct_now_ms() - last, 3500, "the machine is too slow for this test");
    cr_assert_eq(s_me(gw, &s), 401, "the absolute timeout did not end the session");
    s_stop(gw, "ncc-gateway");
}

Test(gateway_auth, csrf_and_origin_are_checked_and_nothing_changes)
{
    daemon_t *gw = s_start_gateway(0, NULL, true);
    session_t admin, other;
    s_admin_login(gw, 0, &admin);
    long id = s_create_user(&admin, "op4", "operator");
    s_login(gw, "op4", &other);
    const char body[] = "{\"login\":\"csrf1\",\"name\":\"x\",\"roles\":[\"staff\"],"
                        "\"password\":\"" USER_PASSWORD "\"}";

    s_expect(s_http(&(req_t){
                 .method = "POST", .path = "/api/v1/users", .body = body, .cookie = admin.cookie}),
             403, "csrf_failed", "no token");
    s_expect(s_http(&(req_t){.method = "POST",
                             .path = "/api/v1/users",
                             .body = body,
                             .cookie = admin.cookie,
                             .csrf = other.csrf}),
             403, "csrf_failed", "another session's token");
    s_expect(s_http(&(req_t){.method = "POST",
                             .path = "/api/v1/users",
                             .body = body,
                             .cookie = admin.cookie,
                             .csrf = ""}),
             403, "csrf_failed", "empty token");
    cr_assert_eq(s_users_named("csrf1"), 0, "a request without the CSRF token made a user");

    /* Origin: another site is refused even with the right token. */
    char path[64], own_origin[64];
    snprintf(path, sizeof path, "/api/v1/users/%ld", id);
    snprintf(own_origin, sizeof own_origin, "https://127.0.0.1:%d", gw->https_port);
    s_expect(s_http(&(req_t){.method = "PATCH",
                             .path = path,
                             .body = "{\"version\":1,\"name\":\"Changed\"}",
                             .cookie = admin.cookie,
                             .csrf = admin.csrf,
                             .origin = "https://evil.example"}),
             403, "origin_mismatch", "foreign origin");
    s_expect(s_http(&(req_t){.method = "PATCH",
                             .path = path,
                             .body = "{\"version\":1,\"name\":\"Changed\"}",
                             .cookie = admin.cookie,
                             .csrf = admin.csrf,
                             .origin = "null"}),
             403, "origin_mismatch", "null origin");
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM directory.users WHERE id = %ld AND name = "
             "'Changed'",
             id);
    cr_assert_eq(s_owner_long(sql), 0, "a cross-origin request changed the user");
    s_expect(s_http(&(req_t){.method = "PATCH",
                             .path = path,
                             .body = "{\"version\":1,\"name\":\"Changed\"}",
                             .cookie = admin.cookie,
                             .csrf = admin.csrf,
                             .origin = own_origin}),
             200, NULL, "same origin");
    cr_assert_eq(s_owner_long(sql), 1);
    /* Sign-in from another origin (login CSRF) is refused too. */
    s_expect(s_http(&(req_t){.method = "POST",
                             .path = "/api/v1/session",
                             .body = "{\"login\":\"op4\",\"password\":\"" USER_PASSWORD "\"}",
                             .origin = "https://evil.example"}),
             403, "origin_mismatch", "cross-origin sign-in");
    /* A GET needs no token. */
    s_expect(s_http(&(req_t){.path = path, .cookie = admin.cookie}), 200, NULL, "GET user");
    cr_assert_geq(s_audit_count(&admin, "user.create", "denied", ADMIN_LOGIN, NULL), 3);
    cr_assert_geq(s_audit_count(&admin, "user.update", "denied", ADMIN_LOGIN, NULL), 2);
    s_stop(gw, "ncc-gateway");
}

Test(gateway_auth, every_role_is_refused_every_admin_route_and_audited)
{
    daemon_t *gw = s_start_gateway(0, NULL, true);
    session_t admin;
    s_admin_login(gw, 0, &admin);
    static const struct {
        const char *login, *role;
    } users[] = {{"op5", "operator"}, {"staff5", "staff"}, {"sup5", "supervisor"}};
    static const struct {
        const char *method, *path, *body, *action;
    } routes[] = {
        {"GET", "/api/v1/users", NULL, "user.list"},
        {"POST", "/api/v1/users",
         "{\"login\":\"evil5\",\"name\":\"x\",\"roles\":[\"admin\"],\"password\":\"" USER_PASSWORD
         "\"}",
         "user.create"},
        {"GET", "/api/v1/users/1", NULL, "user.read"},
        {"PATCH", "/api/v1/users/1", "{\"version\":1,\"roles\":[\"staff\"]}", "user.update"},
        {"DELETE", "/api/v1/users/1", NULL, "user.delete"},
    };
    long ids[3];
    for (size_t u = 0; u < 3; u++)
        ids[u] = s_create_user(&admin, users[u].login, users[u].role);
    for (size_t u = 0; u < 3; u++) {
        session_t s;
        s_login(gw, users[u].login, &s);
        for (size_t r = 0; r < sizeof routes / sizeof routes[0]; r++) {
            resp_t resp = s_http(&(req_t){.method = routes[r].method,
                                          .path = routes[r].path,
                                          .body = routes[r].body,
                                          .cookie = s.cookie,
                                          .csrf = s.csrf});
            char what[128];
            snprintf(what, sizeof what, "%s %s as %s", routes[r].method, routes[r].path,
                     users[u].role);
            s_expect(resp, 403, "forbidden", what);
        }
        /* The audit log: supervisors may read it, operators and staff not. */
        resp_t resp = s_http(&(req_t){.path = "/api/v1/audit", .cookie = s.cookie});
        if (strcmp(users[u].role, "supervisor") == 0)
            s_expect(resp, 200, NULL, "supervisor reads the audit log");
        else
            s_expect(resp, 403, "forbidden", "audit log read by operator/staff");
    }
    /* Nothing changed: the administrator is still an active administrator. */
    cr_assert_eq(s_owner_long("SELECT count(*) FROM directory.users WHERE id = 1 AND active "
                              "AND roles = '{admin}'"),
                 1);
    cr_assert_eq(s_users_named("evil5"), 0);
    /* Each refusal is in the audit log as denied, under the user who tried. */
    for (size_t u = 0; u < 3; u++)
        for (size_t r = 0; r < sizeof routes / sizeof routes[0]; r++)
            cr_assert_eq(
                s_audit_count(&admin, routes[r].action, "denied", users[u].login, "127.0.0.1"), 1,
                "%s by %s not audited as denied", routes[r].action, users[u].login);
    cr_assert_eq(s_audit_count(&admin, "audit.search", "denied", "op5", NULL), 1);
    cr_assert_eq(s_audit_count(&admin, "audit.search", "denied", "staff5", NULL), 1);

    /* A role given by an administrator reaches the user's open session. */
    session_t op;
    s_login(gw, "op5", &op);
    char path[64], body[96];
    snprintf(path, sizeof path, "/api/v1/users/%ld", ids[0]);
    snprintf(body, sizeof body, "{\"version\":1,\"roles\":[\"operator\",\"supervisor\"]}");
    s_expect(s_http(&(req_t){.method = "PATCH",
                             .path = path,
                             .body = body,
                             .cookie = admin.cookie,
                             .csrf = admin.csrf}),
             200, NULL, "give op5 the supervisor role");
    s_expect(s_http(&(req_t){.path = "/api/v1/audit", .cookie = op.cookie}), 200, NULL,
             "op5 as supervisor");
    s_stop(gw, "ncc-gateway");
}

Test(gateway_auth, the_allow_list_guards_the_staff_api_only)
{
    /* Gateway 0: only 10.0.0.0/8 may use the staff API (the test is 127.0.0.1). */
    const char *narrow[] = {"NCC_STAFF_ALLOW_CIDRS=10.0.0.0/8, 2001:db8::/32", NULL};
    daemon_t *gw = s_start_gateway(0, narrow, true);
    s_expect(s_http(&(req_t){.gw = gw, .path = "/api/v1/users"}), 403, "address_not_allowed",
             "staff API");
    s_expect(s_http(&(req_t){.gw = gw,
                             .method = "POST",
                             .path = "/api/v1/session",
                             .body = "{\"login\":\"admin\",\"password\":\"x\"}"}),
             403, "address_not_allowed", "sign-in");
    s_expect(s_http(&(req_t){.gw = gw, .path = "/api/v1/services/directory/ping"}), 403,
             "address_not_allowed", "ping");
    s_expect(s_http(&(req_t){.gw = gw, .path = "/api/v1/no/such/thing"}), 403,
             "address_not_allowed", "unknown path");
    /* A forged X-Forwarded-For counts only from a trusted proxy. */
    s_expect(s_http(&(req_t){.gw = gw, .path = "/api/v1/users", .forwarded_for = "10.1.2.3"}), 403,
             "address_not_allowed", "forged X-Forwarded-For");
    /* Health and the static pages stay open. */
    resp_t resp = s_http(&(req_t){.gw = gw, .path = "/api/v1/health"});
    cr_assert(resp.status == 200 || resp.status == 503, "%ld %s", resp.status, resp.body);
    cr_assert_not_null(cJSON_GetObjectItemCaseSensitive(resp.json, "services"), "%s", resp.body);
    const cJSON *services = cJSON_GetObjectItemCaseSensitive(resp.json, "services");
    const cJSON *service;
    cJSON_ArrayForEach(service, services)
    {
        cr_assert_null(cJSON_GetObjectItemCaseSensitive(service, "detail"),
                       "anonymous health shows instance details: %s", resp.body);
    }
    s_free(&resp);
    s_expect(s_http(&(req_t){.gw = gw, .path = "/"}), 200, NULL, "index");
    s_expect(s_http(&(req_t){.gw = gw, .path = "/index.html"}), 200, NULL, "index.html");
    s_expect(s_http(&(req_t){.gw = gw, .path = "/healthz"}), 200, NULL, "healthz");

    /* Gateway 1: the same list behind a trusted proxy (the test plays it). */
    const char *proxied[] = {"NCC_STAFF_ALLOW_CIDRS=10.0.0.0/8", "NCC_TRUSTED_PROXIES=127.0.0.1/32",
                             NULL};
    daemon_t *edge = s_start_gateway(1, proxied, true);
    s_expect(s_http(&(req_t){.gw = edge,
                             .path = "/api/v1/services/directory/ping",
                             .forwarded_for = "10.1.2.3"}),
             200, NULL, "allowed client behind the proxy");
    s_expect(s_http(&(req_t){.gw = edge,
                             .path = "/api/v1/services/directory/ping",
                             .forwarded_for = "10.9.9.9, 192.0.2.1"}),
             403, "address_not_allowed", "the last entry is the client");
    s_expect(s_http(&(req_t){.gw = edge, .path = "/api/v1/services/directory/ping"}), 403,
             "address_not_allowed", "no X-Forwarded-For from the proxy");
    s_expect(s_http(&(req_t){.gw = edge,
                             .path = "/api/v1/services/directory/ping",
                             .forwarded_for = "not-an-address"}),
             403, "address_not_allowed", "garbage X-Forwarded-For");
    /* The address behind the proxy is the one audited. */
    session_t op;
    char code[7];
    cr_assert_eq(ncc_totp_code(ADMIN_TOTP, (int64_t)time(NULL), code), 0);
    char body[256];
    snprintf(body, sizeof body, "{\"login\":\"admin\",\"password\":\"%s\",\"totp\":\"%s\"}",
             ADMIN_PASSWORD, code);
    resp = s_http(&(req_t){.gw = edge,
                           .method = "POST",
                           .path = "/api/v1/session",
                           .body = body,
                           .forwarded_for = "10.20.30.40"});
    cr_assert_eq(resp.status, 200, "%ld %s", resp.status, resp.body);
    char *set_cookie = s_header(&resp, "Set-Cookie");
    cr_assert_not_null(set_cookie);
    memset(&op, 0, sizeof op);
    memcpy(op.cookie, set_cookie + 12, 64);
    free(set_cookie);
    s_free(&resp);
    char path[128];
    snprintf(path, sizeof path, "/api/v1/audit?action=login&per_page=50");
    resp = s_http(
        &(req_t){.gw = edge, .path = path, .cookie = op.cookie, .forwarded_for = "10.20.30.40"});
    cr_assert_eq(resp.status, 200, "%ld %s", resp.status, resp.body);
    cr_assert(strstr(resp.body, "\"address\":\"10.20.30.40\""), "%s", resp.body);
    s_free(&resp);
    s_stop(edge, "ncc-gateway (proxied)");
    s_stop(gw, "ncc-gateway (narrow)");
}

Test(gateway_auth, malformed_security_settings_stop_the_gateway)
{
    static const struct {
        const char *setting, *named;
    } bad[] = {
        {"NCC_STAFF_ALLOW_CIDRS=10.0.0.1/8", "NCC_STAFF_ALLOW_CIDRS"},
        {"NCC_STAFF_ALLOW_CIDRS=10.0.0.0/33", "NCC_STAFF_ALLOW_CIDRS"},
        {"NCC_STAFF_ALLOW_CIDRS=10.0.0/8", "NCC_STAFF_ALLOW_CIDRS"},
        {"NCC_STAFF_ALLOW_CIDRS=fe80::1%eth0", "NCC_STAFF_ALLOW_CIDRS"},
        {"NCC_STAFF_ALLOW_CIDRS=10.0.0.0/8,,::1/128", "NCC_STAFF_ALLOW_CIDRS"},
        {"NCC_STAFF_ALLOW_CIDRS=::ffff:10.0.0.0/104", "NCC_STAFF_ALLOW_CIDRS"},
        {"NCC_TRUSTED_PROXIES=172.16.0.0/012", "NCC_TRUSTED_PROXIES"},
        {"NCC_BUS_ACTOR_KEY=not-a-32-byte-key", "NCC_BUS_ACTOR_KEY"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *extra[] = {bad[i].setting, NULL};
        daemon_t *d = s_start_gateway(2, extra, false);
        int status = ncct_wait_exit(d->pid, 20000);
        if (status == -1)
            ncct_kill(d->pid);
        d->pid = 0;
        char *log = s_log_of(d);
        cr_assert(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 1,
                  "%s: the gateway started (status %d)", bad[i].setting, status);
        cr_assert(log && strstr(log, bad[i].named), "%s: %s", bad[i].setting, log);
        free(log);
        unlink(d->log);
        unlink(d->cert);
    }
}

Test(gateway_auth, audit_entries_fail_closed_and_the_chain_holds)
{
    daemon_t *gw = s_start_gateway(0, NULL, true);
    session_t admin, op, none;
    s_admin_login(gw, 0, &admin);
    s_create_user(&admin, "op7", "operator");
    cr_assert_eq(s_login_as(gw, "op7", "wrong-Password-7!", NULL, NULL, false, &none), 401);
    s_login(gw, "op7", &op);
    s_expect(
        s_http(&(req_t){
            .method = "DELETE", .path = "/api/v1/session", .cookie = op.cookie, .csrf = op.csrf}),
        204, NULL, "sign-out");
    s_expect(s_http(&(req_t){.path = "/api/v1/users?q=op7", .cookie = admin.cookie}), 200, NULL,
             "user list");

    /* Signing in and failing to (by ncc-directory), signing out, creating a
     * user and reading personal data (by the gateway), with the address. */
    cr_assert_geq(s_audit_count(&admin, "login", "success", ADMIN_LOGIN, "127.0.0.1"), 1);
    cr_assert_geq(s_audit_count(&admin, "login", "success", "op7", "127.0.0.1"), 1);
    cr_assert_geq(s_audit_count(&admin, "login", "failure", "op7", "127.0.0.1"), 1);
    cr_assert_eq(s_audit_count(&admin, "session.logout", "ok", "op7", "127.0.0.1"), 1);
    cr_assert_eq(s_audit_count(&admin, "user.create", "ok", ADMIN_LOGIN, "127.0.0.1"), 1);
    cr_assert_geq(s_audit_count(&admin, "user.created", "success", ADMIN_LOGIN, NULL), 1);
    cr_assert_eq(s_audit_count(&admin, "user.list", "ok", ADMIN_LOGIN, "127.0.0.1"), 1);
    /* The entry names the path as its target and the status as its detail. */
    resp_t resp =
        s_http(&(req_t){.path = "/api/v1/audit?action=user.list", .cookie = admin.cookie});
    cr_assert_eq(resp.status, 200);
    cr_assert(strstr(resp.body, "\"target\":\"/api/v1/users\""), "%s", resp.body);
    cr_assert(strstr(resp.body, "\"detail\":\"GET 200\""), "%s", resp.body);
    cr_assert(strstr(resp.body, "\"actor_role\":\"admin\""), "%s", resp.body);
    s_free(&resp);

    /* No audit entry, no data: the application role may no longer append. */
    s_owner_sql("REVOKE INSERT ON directory.audit_log FROM ncc");
    resp = s_http(&(req_t){.path = "/api/v1/users", .cookie = admin.cookie});
    cr_assert_eq(resp.status, 503, "%ld %s", resp.status, resp.body);
    cr_assert_str_eq(s_error_code(&resp), "audit_unavailable");
    cr_assert_null(strstr(resp.body, ADMIN_LOGIN), "user data answered without an audit entry");
    s_free(&resp);
    s_owner_sql("GRANT INSERT ON directory.audit_log TO ncc");
    s_expect(s_http(&(req_t){.path = "/api/v1/users", .cookie = admin.cookie}), 200, NULL,
             "user list after the grant");

    resp = s_http(&(req_t){.path = "/api/v1/audit/verify", .cookie = admin.cookie});
    cr_assert_eq(resp.status, 200, "%ld %s", resp.status, resp.body);
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive(resp.json, "ok");
    cr_assert(cJSON_IsTrue(ok), "%s", resp.body);
    s_free(&resp);
    s_stop(gw, "ncc-gateway");
}
