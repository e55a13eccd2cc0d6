/* The record form setting of ncc-directory (R3, R38; docs/record-form.md),
 * end to end: the real ncc-directory and ncc-gateway (from NCC_TEST_BIN_DIR)
 * against a database of this test's own on the cluster NCC_DATABASE_URL
 * points at (scripts/pg.sh fresh), with a bus actor key, data keys and the
 * first administrator made here. Requests go through the gateway's plain
 * listener with libcurl, as the administrator, an operator, a supervisor
 * and staff: the default form, a change with its new version, history and
 * audit entry, a stale version, every rule of the definition with the path
 * it names, the roles, a daemon reading it on the bus, and the
 * RecordFormChanged event reaching a subscriber. */
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <ctype.h>
#include <curl/curl.h>
#include <czmq.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "ncc.pb-c.h"
#include "ncc/bus.h"
#include "ncc/crypto.h"
#include "ncc/log.h"
#include "ncc/service.h"
#include "ncc_test.h"
#include "settings.pb-c.h"

#define READY_TIMEOUT_MS 30000
#define ADMIN_PASSWORD   "Kuyakusho-Test-Pass-42"
#define ADMIN_TOTP       "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
#define USER_PASSWORD    "Madoguchi-Pass-2027"
#define FORM_PATH        "/api/v1/settings/record-form"
#define HISTORY_PATH     "/api/v1/settings/record-form/history"

/* ---- the database of one test --------------------------------------------------- */

static ncct_database_t s_db;

/* The first column of the first row as a long, as the owner (or the
 * application role). */
static long s_long_as(const char *url, const char *sql)
{
    PGconn *conn = PQconnectdb(url);
    cr_assert_eq(PQstatus(conn), CONNECTION_OK, "%s", PQerrorMessage(conn));
    PGresult *res = PQexec(conn, sql);
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(conn));
    cr_assert_gt(PQntuples(res), 0, "%s: no row", sql);
    long value = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    PQfinish(conn);
    return value;
}

static long s_owner_long(const char *sql)
{
    return s_long_as(s_db.owner_url, sql);
}

/* Runs `sql` as the application role (the daemons' role); true when it worked. */
static bool s_app_runs(const char *sql)
{
    PGconn *conn = PQconnectdb(s_db.url);
    cr_assert_eq(PQstatus(conn), CONNECTION_OK, "%s", PQerrorMessage(conn));
    PGresult *res = PQexec(conn, sql);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
    PQclear(res);
    PQfinish(conn);
    return ok;
}

/* ---- daemons ------------------------------------------------------------------------------ */

typedef struct {
    const char *program;
    pid_t pid;
    char log[160];
    int rpc, pub, health; /* bus and health ports */
    int http;             /* gateway: plain listener */
} daemon_t;

static daemon_t s_directory, s_gateway;
static int s_dead_port; /* where nothing listens: every service not under test */

static void s_dump(const daemon_t *d)
{
    char *log = ncct_read_file(d->log);
    cr_log_error("---- %s log (%s) ----\n%s", d->program, d->log, log ? log : "(none)");
    free(log);
}

/* The environment common to the daemons: database, and every service's RPC
 * and PUB (the directory; nothing elsewhere). */
static size_t s_common_env(char (*text)[600], const char **env, size_t n)
{
    snprintf(text[0], sizeof text[0], "NCC_DATABASE_URL=%s", s_db.url);
    snprintf(text[1], sizeof text[1], "NCC_DATABASE_OWNER_URL=%s", s_db.owner_url);
    env[n++] = text[0];
    env[n++] = text[1];
    size_t t = 2;
    for (size_t i = 0; ncc_service_names[i]; i++) {
        char upper[32];
        snprintf(upper, sizeof upper, "%s", ncc_service_names[i]);
        for (char *p = upper; *p; p++)
            *p = (char)toupper((unsigned char)*p);
        bool directory = strcmp(ncc_service_names[i], "directory") == 0;
        snprintf(text[t], sizeof text[t], "NCC_%s_RPC=tcp://127.0.0.1:%d", upper,
                 directory ? s_directory.rpc : s_dead_port);
        env[n++] = text[t++];
        snprintf(text[t], sizeof text[t], "NCC_%s_PUB=tcp://127.0.0.1:%d", upper,
                 directory ? s_directory.pub : s_dead_port);
        env[n++] = text[t++];
    }
    env[n++] = "NCC_CONFIG_FILE=";
    env[n++] = "NCC_LOG_LEVEL=info";
    return n;
}

static void s_wait_ready(daemon_t *d)
{
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/readyz", d->health);
    if (!ncct_wait_status(url, 200, READY_TIMEOUT_MS)) {
        s_dump(d);
        cr_assert_fail("%s did not become ready", d->program);
    }
}

static void s_start_directory(void)
{
    daemon_t *d = &s_directory;
    static char text[40][600];
    const char *env[64];
    size_t n = s_common_env(text, env, 0);
    size_t k = 20;
    snprintf(text[k], sizeof text[k], "NCC_DIRECTORY_RPC_BIND=tcp://127.0.0.1:%d", d->rpc);
    env[n++] = text[k++];
    snprintf(text[k], sizeof text[k], "NCC_DIRECTORY_PUB_BIND=tcp://127.0.0.1:%d", d->pub);
    env[n++] = text[k++];
    snprintf(text[k], sizeof text[k], "NCC_DIRECTORY_HEALTH_LISTEN=127.0.0.1:%d", d->health);
    env[n++] = text[k++];
    env[n++] = "NCC_ARGON2_MEMORY_KIB=1024";
    env[n++] = "NCC_BOOTSTRAP_ADMIN_LOGIN=admin";
    env[n++] = "NCC_BOOTSTRAP_ADMIN_PASSWORD=" ADMIN_PASSWORD;
    env[n++] = "NCC_BOOTSTRAP_ADMIN_TOTP_SECRET=" ADMIN_TOTP;
    env[n] = NULL;
    d->program = "ncc-directory";
    snprintf(d->log, sizeof d->log, "/tmp/ncc-test-record-form-directory-%d.log", (int)getpid());
    unlink(d->log);
    d->pid = ncct_spawn(d->program, env, d->log);
    cr_assert_gt(d->pid, 0);
    s_wait_ready(d);
}

static void s_start_gateway(void)
{
    daemon_t *d = &s_gateway;
    static char text[40][600];
    const char *env[64];
    size_t n = s_common_env(text, env, 0);
    size_t k = 20;
    snprintf(text[k], sizeof text[k], "NCC_HTTP_LISTEN=127.0.0.1:%d", d->http);
    env[n++] = text[k++];
    snprintf(text[k], sizeof text[k], "NCC_HTTPS_PORT=%d", ncct_free_port());
    env[n++] = text[k++];
    snprintf(text[k], sizeof text[k], "NCC_GATEWAY_HEALTH_LISTEN=127.0.0.1:%d", d->health);
    env[n++] = text[k++];
    snprintf(text[k], sizeof text[k], "NCC_TLS_CERT=/tmp/ncc-test-record-form-gw-%d.pem",
             (int)getpid());
    env[n++] = text[k++];
    env[n++] = "NCC_HTTPS_LISTEN=";
    env[n++] = "NCC_WEB_ROOT=gateway/web";
    env[n++] = "NCC_BUS_TIMEOUT_MS=10000";
    env[n++] = "NCC_STAFF_ALLOW_CIDRS=";
    env[n++] = "NCC_TRUSTED_PROXIES=";
    env[n] = NULL;
    d->program = "ncc-gateway";
    snprintf(d->log, sizeof d->log, "/tmp/ncc-test-record-form-gateway-%d.log", (int)getpid());
    unlink(d->log);
    d->pid = ncct_spawn("ncc-gateway", env, d->log);
    cr_assert_gt(d->pid, 0);
    s_wait_ready(d);
}

/* SIGTERM, exit 0, no sanitizer report. */
static void s_stop(daemon_t *d)
{
    if (d->pid <= 0)
        return;
    kill(d->pid, SIGTERM);
    int status = ncct_wait_exit(d->pid, 20000);
    if (status == -1)
        ncct_kill(d->pid);
    d->pid = 0;
    char *log = ncct_read_file(d->log);
    bool clean = log && !strstr(log, "Sanitizer") && !strstr(log, "runtime error:");
    free(log);
    if (!clean)
        s_dump(d);
    cr_assert_neq(status, -1, "%s did not stop on SIGTERM", d->program);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: exit status %d", d->program,
              status);
    cr_assert(clean, "sanitizer report in %s", d->log);
    unlink(d->log);
}

static void s_stop_all(void)
{
    s_stop(&s_gateway);
    s_stop(&s_directory);
}

/* A fresh base64 key of 32 bytes. */
static void s_random_key(char out[64])
{
    unsigned char raw[32];
    cr_assert_eq(RAND_bytes(raw, sizeof raw), 1);
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = 0;
    for (size_t i = 0; i < 30; i += 3) {
        unsigned v = (unsigned)raw[i] << 16 | (unsigned)raw[i + 1] << 8 | raw[i + 2];
        out[n++] = alphabet[(v >> 18) & 63];
        out[n++] = alphabet[(v >> 12) & 63];
        out[n++] = alphabet[(v >> 6) & 63];
        out[n++] = alphabet[v & 63];
    }
    unsigned v = (unsigned)raw[30] << 16 | (unsigned)raw[31] << 8;
    out[n++] = alphabet[(v >> 18) & 63];
    out[n++] = alphabet[(v >> 12) & 63];
    out[n++] = alphabet[(v >> 6) & 63];
    out[n++] = '=';
    out[n] = '\0';
}

static void s_ports(daemon_t *d)
{
    d->rpc = ncct_free_port();
    d->pub = ncct_free_port();
    d->health = ncct_free_port();
    d->http = ncct_free_port();
    cr_assert(d->rpc > 0 && d->pub > 0 && d->health > 0 && d->http > 0);
}

static void setup(void)
{
    ncc_log_init("test_record_form", NCC_LOG_ERROR);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    cr_assert_eq(access("gateway/web/index.html", R_OK), 0,
                 "run from the repository root (gateway/web/index.html)");
    char key[64], data_key[80];
    s_random_key(key);
    setenv("NCC_BUS_ACTOR_KEY", key, 1);
    cr_assert_eq(ncc_actor_key_from_env(), 0);
    s_random_key(key);
    snprintf(data_key, sizeof data_key, "t1:%s", key);
    setenv("NCC_DATA_KEYS", data_key, 1);
    s_random_key(key);
    setenv("NCC_BLIND_INDEX_KEY", key, 1);
    s_dead_port = ncct_free_port();
    s_ports(&s_directory);
    s_ports(&s_gateway);
    cr_assert(ncct_database_fresh(&s_db, "test_record_form"),
              "scripts/pg.sh fresh failed (the test makes its own database on the cluster of "
              "NCC_DATABASE_URL: scripts/pg.sh start; . var/env)");
    s_start_directory();
    long long deadline = ncct_now_ms() + READY_TIMEOUT_MS;
    while (s_owner_long("SELECT count(*) FROM directory.users") == 0) {
        cr_assert_lt(ncct_now_ms(), deadline, "no administrator was created");
        usleep(50 * 1000);
    }
    s_start_gateway();
}

static void teardown(void)
{
    daemon_t *all[] = {&s_gateway, &s_directory};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (all[i]->pid > 0)
            ncct_kill(all[i]->pid);
        all[i]->pid = 0;
    }
    char cert[96];
    snprintf(cert, sizeof cert, "/tmp/ncc-test-record-form-gw-%d.pem", (int)getpid());
    unlink(cert);
    ncct_database_drop(&s_db);
    curl_global_cleanup();
}

TestSuite(record_form, .init = setup, .fini = teardown, .timeout = 240);

/* ---- HTTP ---------------------------------------------------------------------------------- */

typedef struct {
    char cookie[80];
    char csrf[80];
} session_t;

typedef struct {
    long status;
    char *body; /* never NULL */
    size_t len;
    char *headers; /* never NULL */
    cJSON *json;   /* the body parsed, or NULL */
} resp_t;

typedef struct {
    char *data;
    size_t len;
} buf_t;

static size_t s_collect(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    buf_t *buf = userdata;
    size_t n = size * nmemb;
    char *grown = realloc(buf->data, buf->len + n + 1);
    if (!grown)
        return 0;
    memcpy(grown + buf->len, ptr, n);
    buf->len += n;
    grown[buf->len] = '\0';
    buf->data = grown;
    return n;
}

/* One JSON request as `session` (NULL: without one). */
static resp_t s_request(const session_t *session, const char *method, const char *path,
                        const char *body)
{
    CURL *curl = curl_easy_init();
    cr_assert_not_null(curl);
    buf_t body_buf = {0}, headers = {0};
    struct curl_slist *list = NULL;
    char url[2048], line[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", s_gateway.http, path);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, s_collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body_buf);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, s_collect);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &headers);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        list = curl_slist_append(list, "Content-Type: application/json");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    }
    if (session && session->cookie[0]) {
        snprintf(line, sizeof line, "Cookie: ncc_session=%s", session->cookie);
        list = curl_slist_append(list, line);
        snprintf(line, sizeof line, "X-CSRF-Token: %s", session->csrf);
        list = curl_slist_append(list, line);
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    CURLcode code = curl_easy_perform(curl);
    resp_t out = {0};
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out.status);
    curl_slist_free_all(list);
    curl_easy_cleanup(curl);
    cr_assert_eq(code, CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(code));
    out.body = body_buf.data ? body_buf.data : strdup("");
    out.len = body_buf.len;
    out.headers = headers.data ? headers.data : strdup("");
    out.json = cJSON_ParseWithLength(out.body, out.len);
    return out;
}

static void s_free(resp_t *resp)
{
    free(resp->body);
    free(resp->headers);
    cJSON_Delete(resp->json);
    memset(resp, 0, sizeof *resp);
}

static const char *s_str(const cJSON *object, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, name);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

static long s_num(const cJSON *object, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, name);
    cr_assert(cJSON_IsNumber(item), "no number %s", name);
    return (long)item->valuedouble;
}

static const cJSON *s_error(const resp_t *resp)
{
    return cJSON_GetObjectItemCaseSensitive(resp->json, "error");
}

/* Asserts the status (and error code when not NULL); returns the response. */
static resp_t s_expect(resp_t resp, long status, const char *code, const char *what)
{
    cr_assert_eq(resp.status, status, "%s: status %ld (expected %ld): %s", what, resp.status,
                 status, resp.body);
    if (code) {
        const char *got = s_str(s_error(&resp), "code");
        cr_assert(got && strcmp(got, code) == 0, "%s: code %s (expected %s): %s", what,
                  got ? got : "(none)", code, resp.body);
    }
    return resp;
}

static void s_check(resp_t resp, long status, const char *code, const char *what)
{
    resp = s_expect(resp, status, code, what);
    s_free(&resp);
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

/* Signs in; `totp` for the administrator. */
static void s_sign_in(session_t *session, const char *login, const char *password, bool totp)
{
    char body[320], code[7] = "";
    if (totp)
        cr_assert_eq(ncc_totp_code(ADMIN_TOTP, (int64_t)time(NULL), code), 0);
    snprintf(body, sizeof body, "{\"login\":\"%s\",\"password\":\"%s\"%s%s%s}", login, password,
             totp ? ",\"totp\":\"" : "", code, totp ? "\"" : "");
    memset(session, 0, sizeof *session);
    resp_t resp = s_expect(s_request(NULL, "POST", "/api/v1/session", body), 200, NULL, "sign-in");
    char *set_cookie = s_header(&resp, "Set-Cookie");
    cr_assert_not_null(set_cookie);
    size_t len = strcspn(set_cookie + 12, ";");
    cr_assert_lt(len, sizeof session->cookie);
    memcpy(session->cookie, set_cookie + 12, len);
    free(set_cookie);
    snprintf(session->csrf, sizeof session->csrf, "%s", s_str(resp.json, "csrf_token"));
    s_free(&resp);
}

static session_t s_admin;

static void s_admin_login(void)
{
    s_sign_in(&s_admin, "admin", ADMIN_PASSWORD, true);
}

/* A user with `role`, signed in. */
static void s_user(session_t *session, const char *login, const char *role)
{
    char body[400];
    snprintf(body, sizeof body,
             "{\"login\":\"%s\",\"name\":\"%s\",\"roles\":[\"%s\"],\"password\":\"%s\"}", login,
             login, role, USER_PASSWORD);
    s_check(s_request(&s_admin, "POST", "/api/v1/users", body), 201, NULL, "create user");
    s_sign_in(session, login, USER_PASSWORD, false);
}

/* ---- the form ------------------------------------------------------------------------------ */

/* The current form as the administrator reads it (caller deletes). */
static cJSON *s_form(void)
{
    resp_t resp = s_expect(s_request(&s_admin, "GET", FORM_PATH, NULL), 200, NULL, "read");
    cJSON *form = resp.json;
    resp.json = NULL;
    s_free(&resp);
    return form;
}

/* The field `name` of a definition, or NULL. */
static cJSON *s_field(const cJSON *definition, const char *name)
{
    cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(definition, "fields"))
    {
        if (s_str(item, "name") && strcmp(s_str(item, "name"), name) == 0)
            return item;
    }
    return NULL;
}

static cJSON *s_status(const cJSON *definition, const char *code)
{
    cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(definition, "statuses"))
    {
        if (s_str(item, "code") && strcmp(s_str(item, "code"), code) == 0)
            return item;
    }
    return NULL;
}

static bool s_bool(const cJSON *object, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, name);
    cr_assert(cJSON_IsBool(item), "no boolean %s", name);
    return cJSON_IsTrue(item);
}

static void s_set(cJSON *object, const char *name, cJSON *value)
{
    if (cJSON_GetObjectItemCaseSensitive(object, name))
        cJSON_ReplaceItemInObjectCaseSensitive(object, name, value);
    else
        cJSON_AddItemToObject(object, name, value);
}

/* The body of a PUT: {"version", "definition"}. Caller frees. */
static char *s_put_body(long version, const cJSON *definition)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddNumberToObject(body, "version", (double)version);
    cJSON_AddItemToObject(body, "definition", cJSON_Duplicate(definition, true));
    char *text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    return text;
}

static resp_t s_put(const session_t *session, long version, const cJSON *definition)
{
    char *body = s_put_body(version, definition);
    resp_t resp = s_request(session, "PUT", FORM_PATH, body);
    free(body);
    return resp;
}

/* The definition of a read form. */
static cJSON *s_definition(const cJSON *form)
{
    cJSON *definition = cJSON_GetObjectItemCaseSensitive(form, "definition");
    cr_assert(cJSON_IsObject(definition), "no definition");
    return definition;
}

/* ---- tests ---------------------------------------------------------------------------------- */

Test(record_form, the_default_form_is_read_by_every_role_and_by_daemons)
{
    s_admin_login();
    session_t op, staff, sup;
    s_user(&op, "op1", "operator");
    s_user(&staff, "staff1", "staff");
    s_user(&sup, "sup1", "supervisor");

    /* The operator desk renders from it: the fields of API.md in order. */
    resp_t resp = s_expect(s_request(&op, "GET", FORM_PATH, NULL), 200, NULL, "operator reads");
    cr_assert_eq(s_num(resp.json, "version"), 1);
    const cJSON *def = s_definition(resp.json);
    const cJSON *inquiry = s_field(def, "inquiry");
    cr_assert_not_null(inquiry, "%s", resp.body);
    cr_assert_str_eq(s_str(inquiry, "label_ja"), "受付内容");
    cr_assert_str_eq(s_str(inquiry, "label_en"), "Inquiry");
    cr_assert_str_eq(s_str(inquiry, "type"), "textarea");
    cr_assert(s_bool(inquiry, "required") && s_bool(inquiry, "visible"));
    static const struct {
        const char *name, *label, *list;
    } lists[] = {{"reception_type", "受付区分", "reception-types"},
                 {"handling_type", "対応区分", "handling-types"},
                 {"category", "カテゴリー", "categories"},
                 {"department_id", "問い合わせ受付区分", "departments"},
                 {"transfer_to", "転送先", "directory"}};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        const cJSON *field = s_field(def, lists[i].name);
        cr_assert_not_null(field, "%s", lists[i].name);
        cr_assert_str_eq(s_str(field, "type"), "choice");
        cr_assert_str_eq(s_str(field, "label_ja"), lists[i].label);
        cr_assert_str_eq(s_str(field, "choices"), lists[i].list);
    }
    cr_assert_str_eq(s_str(s_field(def, "faq_ids"), "type"), "faq_ids");
    cr_assert_str_eq(s_str(s_field(def, "response"), "label_ja"), "対応内容");
    cr_assert(s_bool(s_field(def, "started_at"), "required"));
    /* Statuses: 未対応 -> 対応中 -> 完了. */
    const cJSON *open = s_status(def, "open");
    cr_assert_not_null(open);
    cr_assert_str_eq(s_str(open, "label_ja"), "未対応");
    cr_assert(s_bool(open, "initial") && !s_bool(open, "final"));
    cr_assert_str_eq(s_str(s_status(def, "in_progress"), "label_ja"), "対応中");
    const cJSON *closed = s_status(def, "closed");
    cr_assert(s_bool(closed, "final") && !s_bool(closed, "initial"));
    cr_assert_str_eq(s_str(closed, "label_ja"), "完了");
    /* The default passes its own rules: written back unchanged, nothing changes. */
    resp_t same = s_expect(s_put(&s_admin, 1, def), 200, NULL, "the default written back");
    cr_assert_eq(s_num(same.json, "version"), 1, "%s", same.body);
    s_free(&same);
    s_free(&resp);
    cr_assert_eq(s_owner_long("SELECT count(*) FROM directory.record_form_history"), 0);

    /* Staff and supervisors read it too; without a session nobody does. */
    s_check(s_request(&staff, "GET", FORM_PATH, NULL), 200, NULL, "staff reads");
    s_check(s_request(&sup, "GET", FORM_PATH, NULL), 200, NULL, "supervisor reads");
    s_check(s_request(NULL, "GET", FORM_PATH, NULL), 401, NULL, "no session");

    /* A daemon (ncc-history) reads it on the bus; it cannot change it. */
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", s_directory.rpc);
    ncc_rpc_client_t *client = ncc_rpc_client_new(endpoint);
    cr_assert_not_null(client);
    ncc_ctx_t system = {.actor_id = "svc:history", .actor_role = "system"};
    Ncc__Directory__GetRecordForm get = NCC__DIRECTORY__GET_RECORD_FORM__INIT;
    ProtobufCMessage *answer = NULL;
    Ncc__Error *error = NULL;
    cr_assert_eq(ncc_rpc_call_typed(client, &system, &get.base,
                                    &ncc__directory__record_form__descriptor, 10000, &answer,
                                    &error),
                 0);
    Ncc__Directory__RecordForm *form = (Ncc__Directory__RecordForm *)answer;
    cr_assert_eq(form->version, 1);
    cr_assert_not_null(form->definition);
    cr_assert_geq(form->definition->n_fields, 15);
    cr_assert_eq(form->definition->n_statuses, 3);
    protobuf_c_message_free_unpacked(answer, NULL);
    Ncc__Directory__UpdateRecordForm update = NCC__DIRECTORY__UPDATE_RECORD_FORM__INIT;
    update.has_version = true;
    update.version = 1;
    cr_assert_eq(ncc_rpc_call_typed(client, &system, &update.base,
                                    &ncc__directory__record_form__descriptor, 10000, &answer,
                                    &error),
                 -EPROTO);
    cr_assert_not_null(error);
    cr_assert_eq(error->status, 403);
    ncc__error__free_unpacked(error, NULL);
    ncc_rpc_client_destroy(&client);
    s_stop_all();
}

Test(record_form, an_admin_change_gets_a_new_version_history_and_audit)
{
    s_admin_login();
    cJSON *form = s_form();
    cJSON *def = s_definition(form);
    /* A label, a required flag, a field hidden, one moved, one of our own. */
    s_set(s_field(def, "inquiry"), "label_ja", cJSON_CreateString("お問い合わせ内容"));
    s_set(s_field(def, "response"), "required", cJSON_CreateTrue());
    s_set(s_field(def, "wrapup_ended_at"), "visible", cJSON_CreateFalse());
    cJSON *custom = cJSON_Parse("{\"name\":\"x_ward_area\",\"label_ja\":\"地域\",\"label_en\":"
                                "\"Area\",\"type\":\"choice\",\"options\":[{\"code\":\"north\","
                                "\"label_ja\":\"北部\",\"label_en\":\"North\"},{\"code\":"
                                "\"south\",\"label_ja\":\"南部\"}]}");
    cJSON_InsertItemInArray(cJSON_GetObjectItemCaseSensitive(def, "fields"), 0, custom);
    s_set(s_status(def, "in_progress"), "label_en", cJSON_CreateString("Working"));

    resp_t resp = s_expect(s_put(&s_admin, 1, def), 200, NULL, "change");
    cr_assert_eq(s_num(resp.json, "version"), 2, "%s", resp.body);
    cr_assert_str_eq(s_str(resp.json, "updated_by"), "admin");
    cr_assert_not_null(s_str(resp.json, "updated_at"));
    const cJSON *saved = s_definition(resp.json);
    cr_assert_str_eq(s_str(s_field(saved, "inquiry"), "label_ja"), "お問い合わせ内容");
    cr_assert(s_bool(s_field(saved, "response"), "required"));
    cr_assert(!s_bool(s_field(saved, "wrapup_ended_at"), "visible"));
    const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(saved, "fields"), 0);
    cr_assert_str_eq(s_str(first, "name"), "x_ward_area", "the order is kept");
    /* Flags left out are stored explicitly. */
    cr_assert(!s_bool(first, "required") && s_bool(first, "visible"));
    s_free(&resp);

    /* Everyone reads the new version. */
    cJSON *again = s_form();
    cr_assert_eq(s_num(again, "version"), 2);
    cr_assert_str_eq(s_str(s_field(s_definition(again), "inquiry"), "label_ja"),
                     "お問い合わせ内容");
    cr_assert_str_eq(s_str(s_status(s_definition(again), "in_progress"), "label_en"), "Working");
    cJSON_Delete(again);

    /* The history: who, when, before and after. */
    resp = s_expect(s_request(&s_admin, "GET", HISTORY_PATH, NULL), 200, NULL, "history");
    cr_assert_eq(s_num(resp.json, "total"), 1, "%s", resp.body);
    const cJSON *entry =
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(resp.json, "items"), 0);
    cr_assert_eq(s_num(entry, "version"), 2);
    cr_assert_str_eq(s_str(entry, "actor_login"), "admin");
    cr_assert_str_eq(s_str(entry, "actor_id"), "1");
    cr_assert_not_null(s_str(entry, "at"));
    const cJSON *before = cJSON_GetObjectItemCaseSensitive(entry, "before");
    const cJSON *after = cJSON_GetObjectItemCaseSensitive(entry, "after");
    cr_assert_str_eq(s_str(s_field(before, "inquiry"), "label_ja"), "受付内容");
    cr_assert_str_eq(s_str(s_field(after, "inquiry"), "label_ja"), "お問い合わせ内容");
    cr_assert_null(s_field(before, "x_ward_area"));
    cr_assert_not_null(s_field(after, "x_ward_area"));
    s_free(&resp);

    /* A second change, then two entries, newest first, paged. */
    s_set(s_field(def, "inquiry"), "label_ja", cJSON_CreateString("受付内容"));
    s_check(s_put(&s_admin, 2, def), 200, NULL, "second change");
    resp = s_expect(s_request(&s_admin, "GET", HISTORY_PATH "?per_page=1&page=1", NULL), 200, NULL,
                    "history page 1");
    cr_assert_eq(s_num(resp.json, "total"), 2);
    entry = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(resp.json, "items"), 0);
    cr_assert_eq(s_num(entry, "version"), 3);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(resp.json, "items")), 1);
    s_free(&resp);
    s_check(s_request(&s_admin, "GET", HISTORY_PATH "?per_page=101", NULL), 422, "invalid_field",
            "per_page too large");

    /* The history is append-only for the daemons' database role. */
    cr_assert(!s_app_runs("UPDATE directory.record_form_history SET actor_login = 'x'"));
    cr_assert(!s_app_runs("DELETE FROM directory.record_form_history"));
    cr_assert(s_app_runs("SELECT count(*) FROM directory.record_form_history"));
    cr_assert_eq(s_owner_long("SELECT count(*) FROM directory.record_form_history"), 2);

    /* Each change is in the audit log; so is the history read. */
    resp = s_expect(s_request(&s_admin, "GET", "/api/v1/audit?action=record_form.update", NULL),
                    200, NULL, "audit");
    cr_assert_eq(s_num(resp.json, "total"), 2, "%s", resp.body);
    entry = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(resp.json, "items"), 0);
    cr_assert_str_eq(s_str(entry, "outcome"), "ok");
    cr_assert_str_eq(s_str(entry, "actor_login"), "admin");
    s_free(&resp);
    cr_assert_geq(s_owner_long("SELECT count(*) FROM directory.audit_log WHERE action = "
                               "'record_form.history'"),
                  2);
    cJSON_Delete(form);
    s_stop_all();
}

Test(record_form, a_stale_version_is_a_conflict)
{
    s_admin_login();
    cJSON *form = s_form();
    cJSON *def = s_definition(form);
    s_set(s_field(def, "response"), "label_ja", cJSON_CreateString("回答内容"));
    s_check(s_put(&s_admin, 1, def), 200, NULL, "first change");
    /* Another administrator still holds version 1. */
    s_set(s_field(def, "response"), "label_ja", cJSON_CreateString("対応の内容"));
    resp_t resp = s_expect(s_put(&s_admin, 1, def), 409, "conflict", "stale version");
    cr_assert_str_eq(s_str(s_error(&resp), "field"), "version");
    s_free(&resp);
    cJSON *now = s_form();
    cr_assert_eq(s_num(now, "version"), 2);
    cr_assert_str_eq(s_str(s_field(s_definition(now), "response"), "label_ja"), "回答内容");
    cJSON_Delete(now);
    cr_assert_eq(s_owner_long("SELECT count(*) FROM directory.record_form_history"), 1);
    /* No version at all: 422. */
    char *body = cJSON_PrintUnformatted(def);
    char wrapped[16384];
    snprintf(wrapped, sizeof wrapped, "{\"definition\":%s}", body);
    free(body);
    resp = s_expect(s_request(&s_admin, "PUT", FORM_PATH, wrapped), 422, "invalid_field",
                    "no version");
    cr_assert_str_eq(s_str(s_error(&resp), "field"), "version");
    s_free(&resp);
    resp = s_expect(s_request(&s_admin, "PUT", FORM_PATH, "{\"version\":2}"), 422, "invalid_field",
                    "no definition");
    cr_assert_str_eq(s_str(s_error(&resp), "field"), "definition");
    s_free(&resp);
    cJSON_Delete(form);
    s_stop_all();
}

/* Broken definitions: each e_*() breaks one rule of the default. */

static cJSON *s_fields(cJSON *def)
{
    return cJSON_GetObjectItemCaseSensitive(def, "fields");
}

static cJSON *s_statuses(cJSON *def)
{
    return cJSON_GetObjectItemCaseSensitive(def, "statuses");
}

/* Index of field `name` in the default (asserted by the cases' paths). */
static int s_index(cJSON *def, const char *name)
{
    int i = 0;
    cJSON *item;
    cJSON_ArrayForEach(item, s_fields(def))
    {
        if (strcmp(s_str(item, "name"), name) == 0)
            return i;
        i++;
    }
    cr_assert_fail("no field %s", name);
    return -1;
}

static void s_add_custom(cJSON *def, const char *json)
{
    cJSON_AddItemToArray(s_fields(def), cJSON_Parse(json));
}

static void e_unknown_name(cJSON *def)
{
    s_set(cJSON_GetArrayItem(s_fields(def), 2), "name", cJSON_CreateString("colour"));
}
static void e_status_as_field(cJSON *def)
{
    s_set(cJSON_GetArrayItem(s_fields(def), 2), "name", cJSON_CreateString("status"));
}
static void e_duplicate(cJSON *def)
{
    s_set(cJSON_GetArrayItem(s_fields(def), 3), "name", cJSON_CreateString("receipt_id"));
}
static void e_bad_type(cJSON *def)
{
    s_add_custom(def, "{\"name\":\"x_a\",\"label_ja\":\"A\",\"type\":\"checkbox\"}");
}
static void e_builtin_type(cJSON *def)
{
    s_set(s_field(def, "inquiry"), "type", cJSON_CreateString("number"));
}
static void e_choice_without_list(cJSON *def)
{
    s_add_custom(def, "{\"name\":\"x_a\",\"label_ja\":\"A\",\"type\":\"choice\"}");
}
static void e_unknown_list(cJSON *def)
{
    s_add_custom(def, "{\"name\":\"x_a\",\"label_ja\":\"A\",\"type\":\"choice\",\"choices\":"
                      "\"users\"}");
}
static void e_builtin_other_list(cJSON *def)
{
    s_set(s_field(def, "reception_type"), "choices", cJSON_CreateString("categories"));
}
static void e_list_and_options(cJSON *def)
{
    s_add_custom(def, "{\"name\":\"x_a\",\"label_ja\":\"A\",\"type\":\"choice\",\"choices\":"
                      "\"categories\",\"options\":[{\"code\":\"a\",\"label_ja\":\"A\"}]}");
}
static void e_list_on_text(cJSON *def)
{
    s_add_custom(def, "{\"name\":\"x_a\",\"label_ja\":\"A\",\"type\":\"text\",\"choices\":"
                      "\"categories\"}");
}
static void e_bad_option_code(cJSON *def)
{
    s_add_custom(def, "{\"name\":\"x_a\",\"label_ja\":\"A\",\"type\":\"choice\",\"options\":[{"
                      "\"code\":\"ok\",\"label_ja\":\"A\"},{\"code\":\"no good\",\"label_ja\":"
                      "\"B\"}]}");
}
static void e_unknown_channel(cJSON *def)
{
    cJSON *options = cJSON_GetObjectItemCaseSensitive(s_field(def, "channel"), "options");
    s_set(cJSON_GetArrayItem(options, 1), "code", cJSON_CreateString("fax"));
}
static void e_inquiry_hidden(cJSON *def)
{
    s_set(s_field(def, "inquiry"), "visible", cJSON_CreateFalse());
}
static void e_inquiry_optional(cJSON *def)
{
    s_set(s_field(def, "inquiry"), "required", cJSON_CreateFalse());
}
static void e_inquiry_removed(cJSON *def)
{
    cJSON_DeleteItemFromArray(s_fields(def), s_index(def, "inquiry"));
}
static void e_started_at_hidden(cJSON *def)
{
    s_set(s_field(def, "started_at"), "visible", cJSON_CreateFalse());
}
static void e_system_required(cJSON *def)
{
    s_set(s_field(def, "receipt_id"), "required", cJSON_CreateTrue());
}
static void e_required_hidden(cJSON *def)
{
    s_add_custom(def, "{\"name\":\"x_a\",\"label_ja\":\"A\",\"type\":\"text\",\"required\":true,"
                      "\"visible\":false}");
}
static void e_bad_custom_name(cJSON *def)
{
    s_add_custom(def, "{\"name\":\"x_Bad\",\"label_ja\":\"A\",\"type\":\"text\"}");
}
static void e_long_label(cJSON *def)
{
    char label[61 * 3 + 1];
    for (int i = 0; i < 61; i++)
        memcpy(label + 3 * i, "あ", 3); /* 61 characters: one too many */
    label[61 * 3] = '\0';
    s_set(s_field(def, "response"), "label_ja", cJSON_CreateString(label));
}
static void e_no_label(cJSON *def)
{
    s_set(s_field(def, "response"), "label_ja", cJSON_CreateString(""));
}
static void e_max_length_on_choice(cJSON *def)
{
    s_set(s_field(def, "category"), "max_length", cJSON_CreateNumber(10));
}
static void e_max_length_zero(cJSON *def)
{
    s_set(s_field(def, "response"), "max_length", cJSON_CreateNumber(0));
}
static void e_too_many_fields(cJSON *def)
{
    for (int i = 0; i < 50; i++) {
        char json[128];
        snprintf(json, sizeof json, "{\"name\":\"x_f%d\",\"label_ja\":\"F\",\"type\":\"text\"}", i);
        s_add_custom(def, json);
    }
}
static void e_two_initial(cJSON *def)
{
    s_set(s_status(def, "in_progress"), "initial", cJSON_CreateTrue());
}
static void e_no_initial(cJSON *def)
{
    s_set(s_status(def, "open"), "initial", cJSON_CreateFalse());
}
static void e_no_final(cJSON *def)
{
    s_set(s_status(def, "closed"), "final", cJSON_CreateFalse());
}
static void e_unknown_next(cJSON *def)
{
    cJSON *next = cJSON_GetObjectItemCaseSensitive(s_status(def, "open"), "next");
    cJSON_ReplaceItemInArray(next, 1, cJSON_CreateString("done"));
}
static void e_next_itself(cJSON *def)
{
    cJSON *next = cJSON_GetObjectItemCaseSensitive(s_status(def, "closed"), "next");
    cJSON_ReplaceItemInArray(next, 0, cJSON_CreateString("closed"));
}
static void e_dead_end(cJSON *def)
{
    s_set(s_status(def, "in_progress"), "next", cJSON_CreateArray());
}
static void e_unreachable(cJSON *def)
{
    cJSON_AddItemToArray(s_statuses(def),
                         cJSON_Parse("{\"code\":\"waiting\",\"label_ja\":\"保留\",\"next\":["
                                     "\"closed\"]}"));
}
static void e_bad_status_code(cJSON *def)
{
    cJSON_AddItemToArray(s_statuses(def),
                         cJSON_Parse("{\"code\":\"Done!\",\"label_ja\":\"済\",\"next\":["
                                     "\"closed\"]}"));
}
static void e_duplicate_status(cJSON *def)
{
    cJSON_AddItemToArray(s_statuses(def),
                         cJSON_Parse("{\"code\":\"open\",\"label_ja\":\"再\",\"next\":["
                                     "\"closed\"]}"));
}
static void e_no_statuses(cJSON *def)
{
    s_set(def, "statuses", cJSON_CreateArray());
}

Test(record_form, every_rule_is_checked_and_names_the_field)
{
    s_admin_login();
    cJSON *form = s_form();
    const cJSON *def0 = s_definition(form);
    char path[128];
    /* The default's positions (the paths below follow them). */
    cr_assert_eq(s_index((cJSON *)def0, "receipt_id"), 0);
    int inquiry = s_index((cJSON *)def0, "inquiry");
    int n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(def0, "fields"));
    char p_custom[64], p_inquiry[64], p_started[64], p_reception[64], p_channel[64], p_response[64],
        p_category[64];
    snprintf(p_custom, sizeof p_custom, "definition.fields[%d]", n);
    snprintf(p_inquiry, sizeof p_inquiry, "definition.fields[%d]", inquiry);
    snprintf(p_started, sizeof p_started, "definition.fields[%d]",
             s_index((cJSON *)def0, "started_at"));
    snprintf(p_reception, sizeof p_reception, "definition.fields[%d]",
             s_index((cJSON *)def0, "reception_type"));
    snprintf(p_channel, sizeof p_channel, "definition.fields[%d]",
             s_index((cJSON *)def0, "channel"));
    snprintf(p_response, sizeof p_response, "definition.fields[%d]",
             s_index((cJSON *)def0, "response"));
    snprintf(p_category, sizeof p_category, "definition.fields[%d]",
             s_index((cJSON *)def0, "category"));
    struct {
        const char *what;
        void (*edit)(cJSON *def);
        const char *base, *suffix;
    } cases[] = {
        {"an unknown name", e_unknown_name, "definition.fields[2]", ".name"},
        {"status as a field", e_status_as_field, "definition.fields[2]", ".name"},
        {"a name twice", e_duplicate, "definition.fields[3]", ".name"},
        {"an unknown type", e_bad_type, p_custom, ".type"},
        {"a built-in's type changed", e_builtin_type, p_inquiry, ".type"},
        {"a choice without a list", e_choice_without_list, p_custom, ".choices"},
        {"an unknown list", e_unknown_list, p_custom, ".choices"},
        {"a built-in's list changed", e_builtin_other_list, p_reception, ".choices"},
        {"a list and options", e_list_and_options, p_custom, ".options"},
        {"a list on a text field", e_list_on_text, p_custom, ".choices"},
        {"a bad option code", e_bad_option_code, p_custom, ".options[1].code"},
        {"a channel API.md lacks", e_unknown_channel, p_channel, ".options[1].code"},
        {"inquiry hidden", e_inquiry_hidden, p_inquiry, ".visible"},
        {"inquiry optional", e_inquiry_optional, p_inquiry, ".required"},
        {"inquiry removed", e_inquiry_removed, "definition.fields", ""},
        {"started_at hidden", e_started_at_hidden, p_started, ".visible"},
        {"a system field required", e_system_required, "definition.fields[0]", ".required"},
        {"required but hidden", e_required_hidden, p_custom, ".visible"},
        {"a bad custom name", e_bad_custom_name, p_custom, ".name"},
        {"a label too long", e_long_label, p_response, ".label_ja"},
        {"no label", e_no_label, p_response, ".label_ja"},
        {"max_length on a choice", e_max_length_on_choice, p_category, ".max_length"},
        {"max_length 0", e_max_length_zero, p_response, ".max_length"},
        {"61 fields or more", e_too_many_fields, "definition.fields", ""},
        {"two initial statuses", e_two_initial, "definition.statuses[1]", ".initial"},
        {"no initial status", e_no_initial, "definition.statuses", ""},
        {"no final status", e_no_final, "definition.statuses", ""},
        {"next names no status", e_unknown_next, "definition.statuses[0]", ".next[1]"},
        {"next names itself", e_next_itself, "definition.statuses[2]", ".next[0]"},
        {"a dead end", e_dead_end, "definition.statuses[1]", ".next"},
        {"an unreachable status", e_unreachable, "definition.statuses[3]", ""},
        {"a bad status code", e_bad_status_code, "definition.statuses[3]", ".code"},
        {"a status code twice", e_duplicate_status, "definition.statuses[3]", ".code"},
        {"no statuses", e_no_statuses, "definition.statuses", ""},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        cJSON *def = cJSON_Duplicate(def0, true);
        cases[c].edit(def);
        snprintf(path, sizeof path, "%s%s", cases[c].base, cases[c].suffix);
        resp_t resp = s_expect(s_put(&s_admin, 1, def), 422, "invalid_field", cases[c].what);
        const char *field = s_str(s_error(&resp), "field");
        cr_assert(field && strcmp(field, path) == 0, "%s: field %s (expected %s): %s",
                  cases[c].what, field ? field : "(none)", path, resp.body);
        /* The list holds it too, with a sentence naming the path. */
        const cJSON *errors = cJSON_GetObjectItemCaseSensitive(resp.json, "errors");
        cr_assert_geq(cJSON_GetArraySize(errors), 1, "%s: %s", cases[c].what, resp.body);
        const char *message = s_str(cJSON_GetArrayItem(errors, 0), "message");
        cr_assert(message && strstr(message, path), "%s: %s", cases[c].what, resp.body);
        s_free(&resp);
        cJSON_Delete(def);
    }
    /* Several problems at once are all listed. */
    cJSON *def = cJSON_Duplicate(def0, true);
    e_inquiry_hidden(def);
    e_no_final(def);
    e_bad_type(def);
    resp_t resp = s_expect(s_put(&s_admin, 1, def), 422, "invalid_field", "three problems");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(resp.json, "errors")), 3, "%s",
                 resp.body);
    s_free(&resp);
    cJSON_Delete(def);
    /* What the JSON itself gets wrong the gateway refuses (400, docs/json.md), with
     * paths of the same form. */
    def = cJSON_Duplicate(def0, true);
    cJSON_AddStringToObject(cJSON_GetArrayItem(s_fields(def), 1), "colour", "red");
    resp = s_expect(s_put(&s_admin, 1, def), 400, "unknown_field", "an unknown member");
    cr_assert_str_eq(s_str(s_error(&resp), "field"), "definition.fields[1].colour");
    s_free(&resp);
    cJSON_Delete(def);
    def = cJSON_Duplicate(def0, true);
    s_set(cJSON_GetArrayItem(s_fields(def), 1), "required", cJSON_CreateString("yes"));
    resp = s_expect(s_put(&s_admin, 1, def), 400, "invalid_field", "a string for a flag");
    cr_assert_str_eq(s_str(s_error(&resp), "field"), "definition.fields[1].required");
    s_free(&resp);
    cJSON_Delete(def);

    /* Nothing was changed by any of them. */
    cJSON *now = s_form();
    cr_assert_eq(s_num(now, "version"), 1);
    cJSON_Delete(now);
    cr_assert_eq(s_owner_long("SELECT count(*) FROM directory.record_form_history"), 0);
    cr_assert_eq(s_owner_long("SELECT version FROM directory.record_form"), 1);
    cJSON_Delete(form);
    s_stop_all();
}

Test(record_form, only_an_administrator_changes_it)
{
    s_admin_login();
    session_t op, sup, staff;
    s_user(&op, "op2", "operator");
    s_user(&sup, "sup2", "supervisor");
    s_user(&staff, "staff2", "staff");
    cJSON *form = s_form();
    cJSON *def = s_definition(form);
    s_set(s_field(def, "inquiry"), "label_ja", cJSON_CreateString("改ざん"));
    s_check(s_put(&op, 1, def), 403, "forbidden", "operator");
    s_check(s_put(&sup, 1, def), 403, "forbidden", "supervisor");
    s_check(s_put(&staff, 1, def), 403, "forbidden", "staff");
    /* The history is for supervisors and administrators. */
    s_check(s_request(&sup, "GET", HISTORY_PATH, NULL), 200, NULL, "supervisor reads history");
    s_check(s_request(&op, "GET", HISTORY_PATH, NULL), 403, "forbidden", "operator history");
    s_check(s_request(&staff, "GET", HISTORY_PATH, NULL), 403, "forbidden", "staff history");
    cJSON *now = s_form();
    cr_assert_eq(s_num(now, "version"), 1);
    cr_assert_str_eq(s_str(s_field(s_definition(now), "inquiry"), "label_ja"), "受付内容");
    cJSON_Delete(now);
    /* The attempts are audited as denied. */
    cr_assert_eq(s_owner_long("SELECT count(*) FROM directory.audit_log WHERE action = "
                              "'record_form.update' AND outcome = 'denied'"),
                 3);
    cJSON_Delete(form);
    s_stop_all();
}

/* The next message on `sub` whose type frame is `type`, within timeout_ms
 * (other types skipped); its envelope (caller frees), or NULL. */
static Ncc__Envelope *s_next_event(zsock_t *sub, const char *type, int timeout_ms)
{
    long long deadline = ncct_now_ms() + timeout_ms;
    while (ncct_now_ms() < deadline) {
        zsock_set_rcvtimeo(sub, (int)(deadline - ncct_now_ms()) + 1);
        zmsg_t *msg = zmsg_recv(sub);
        if (!msg)
            return NULL;
        Ncc__Envelope *envelope = NULL;
        zframe_t *type_frame = zmsg_first(msg);
        zframe_t *body = zmsg_next(msg);
        if (type_frame && body && zframe_streq(type_frame, type))
            envelope = ncc__envelope__unpack(NULL, zframe_size(body), zframe_data(body));
        zmsg_destroy(&msg);
        if (envelope)
            return envelope;
    }
    return NULL;
}

Test(record_form, a_change_reaches_a_subscriber_on_the_bus)
{
    s_admin_login();
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", s_directory.pub);
    zsock_t *sub = zsock_new_sub(endpoint, "ncc.directory.RecordFormChanged");
    cr_assert_not_null(sub);
    zsock_set_subscribe(sub, "ncc.Heartbeat");
    /* Connected once a heartbeat (every second) arrives. */
    Ncc__Envelope *beat = s_next_event(sub, "ncc.Heartbeat", 5000);
    cr_assert_not_null(beat, "no heartbeat from ncc-directory");
    ncc__envelope__free_unpacked(beat, NULL);

    cJSON *form = s_form();
    cJSON *def = s_definition(form);
    s_set(s_field(def, "category"), "label_ja", cJSON_CreateString("分類"));
    s_set(s_field(def, "category"), "required", cJSON_CreateTrue());
    long long sent = ncct_now_ms();
    s_check(s_put(&s_admin, 1, def), 200, NULL, "change");

    Ncc__Envelope *event = s_next_event(sub, "ncc.directory.RecordFormChanged", 5000);
    cr_assert_not_null(event, "no RecordFormChanged within 5 s");
    cr_log_info("RecordFormChanged arrived %lld ms after the request", ncct_now_ms() - sent);
    cr_assert_str_eq(event->type, "ncc.directory.RecordFormChanged");
    cr_assert(event->has_seq && event->seq > 0, "published through the outbox (numbered)");
    cr_assert(event->actor_id && strcmp(event->actor_id, "1") == 0);
    Ncc__Directory__RecordFormChanged *changed =
        ncc__directory__record_form_changed__unpack(NULL, event->payload.len, event->payload.data);
    cr_assert_not_null(changed);
    cr_assert_eq(changed->version, 2);
    cr_assert_str_eq(changed->updated_by, "admin");
    cr_assert_not_null(changed->definition);
    bool found = false;
    for (size_t i = 0; i < changed->definition->n_fields; i++) {
        const Ncc__Directory__RecordFormField *field = changed->definition->fields[i];
        if (strcmp(field->name, "category") == 0) {
            found = true;
            cr_assert_str_eq(field->label_ja, "分類");
            cr_assert(field->has_required && field->required);
        }
    }
    cr_assert(found);
    ncc__directory__record_form_changed__free_unpacked(changed, NULL);
    ncc__envelope__free_unpacked(event, NULL);
    /* The outbox row was written in the transaction of the change. */
    cr_assert_eq(s_owner_long("SELECT count(*) FROM directory.outbox WHERE type = "
                              "'ncc.directory.RecordFormChanged'"),
                 1);
    zsock_destroy(&sub);
    cJSON_Delete(form);
    s_stop_all();
}
