/* ncc_system: the whole of ncc for one Criterion test (ncc_system.h). */
#include "ncc_system.h"

#include <criterion/criterion.h>
#include <ctype.h>
#include <curl/curl.h>
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
#include "ncc/service.h"
#include "ncc/webhook.h"

#define S_READY_TIMEOUT_MS 30000

/* ---- set-up -------------------------------------------------------------------------------- */

static void s_ports(ncct_daemon_t *d)
{
    d->rpc = ncct_free_port();
    d->pub = ncct_free_port();
    d->health = ncct_free_port();
    d->http = ncct_free_port();
    cr_assert(d->rpc > 0 && d->pub > 0 && d->health > 0 && d->http > 0);
}

void ncct_system_init(ncct_system_t *sys, const char *tag)
{
    memset(sys, 0, sizeof *sys);
    snprintf(sys->tag, sizeof sys->tag, "%s", tag);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    cr_assert_eq(access("gateway/web/index.html", R_OK), 0,
                 "run from the repository root (gateway/web/index.html)");
    char key[64], data_key[80];
    ncct_random_key(key);
    setenv("NCC_BUS_ACTOR_KEY", key, 1);
    cr_assert_eq(ncc_actor_key_from_env(), 0);
    ncct_random_key(key);
    snprintf(data_key, sizeof data_key, "t1:%s", key);
    setenv("NCC_DATA_KEYS", data_key, 1);
    ncct_random_key(key);
    setenv("NCC_BLIND_INDEX_KEY", key, 1);
    for (size_t i = 0; ncc_service_names[i] && i < NCCT_MAX_SERVICES; i++)
        s_ports(&sys->services[i]);
    s_ports(&sys->gateway);
    cr_assert(ncct_database_fresh(&sys->db, tag),
              "scripts/pg.sh fresh failed (the test makes its own database on the cluster of "
              "NCC_DATABASE_URL: scripts/pg.sh start; . var/env)");
}

ncct_daemon_t *ncct_service(ncct_system_t *sys, const char *service)
{
    for (size_t i = 0; ncc_service_names[i] && i < NCCT_MAX_SERVICES; i++)
        if (strcmp(ncc_service_names[i], service) == 0)
            return &sys->services[i];
    cr_assert_fail("no service %s", service);
    return NULL;
}

/* The environment every daemon gets: database, and each service's RPC and
 * PUB ports (a service not started answers nothing there, as a dead one). */
static size_t s_common_env(ncct_system_t *sys, char (*text)[600], const char **env)
{
    size_t n = 0, t = 0;
    snprintf(text[t], sizeof text[t], "NCC_DATABASE_URL=%s", sys->db.url);
    env[n++] = text[t++];
    snprintf(text[t], sizeof text[t], "NCC_DATABASE_OWNER_URL=%s", sys->db.owner_url);
    env[n++] = text[t++];
    for (size_t i = 0; ncc_service_names[i] && i < NCCT_MAX_SERVICES; i++) {
        char upper[32];
        snprintf(upper, sizeof upper, "%s", ncc_service_names[i]);
        for (char *p = upper; *p; p++)
            *p = (char)toupper((unsigned char)*p);
        const ncct_daemon_t *d = &sys->services[i];
        snprintf(text[t], sizeof text[t], "NCC_%s_RPC=tcp://127.0.0.1:%d", upper, d->rpc);
        env[n++] = text[t++];
        snprintf(text[t], sizeof text[t], "NCC_%s_PUB=tcp://127.0.0.1:%d", upper, d->pub);
        env[n++] = text[t++];
    }
    env[n++] = "NCC_CONFIG_FILE=";
    env[n++] = "NCC_LOG_LEVEL=info";
    env[n++] = "NCC_ARGON2_MEMORY_KIB=1024";
    env[n++] = "NCC_EVENT_CATCH_UP_MS=500";
    return n;
}

static void s_dump(const ncct_daemon_t *d)
{
    char *log = ncct_read_file(d->log);
    cr_log_error("---- %s log (%s) ----\n%s", d->program, d->log, log ? log : "(none)");
    free(log);
}

static void s_wait_ready(ncct_daemon_t *d)
{
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/readyz", d->health);
    if (!ncct_wait_status(url, 200, S_READY_TIMEOUT_MS)) {
        s_dump(d);
        cr_assert_fail("%s did not become ready", d->program);
    }
}

static void s_add_extra(const char **env, size_t *n, const char *const *extra)
{
    for (size_t i = 0; extra && extra[i]; i++)
        env[(*n)++] = extra[i];
    env[*n] = NULL;
}

/* Starts daemon d as ncc-<service>, copy `copy` (0: the first). */
static void s_start_daemon(ncct_system_t *sys, ncct_daemon_t *d, const char *service, size_t copy,
                           const char *const *extra_env)
{
    static char programs[NCCT_MAX_SERVICES + 4][32];
    static size_t n_programs;
    char *program = programs[n_programs++ % (NCCT_MAX_SERVICES + 4)];
    snprintf(program, 32, "ncc-%s", service);
    d->program = program;
    char text[48][600];
    const char *env[96];
    size_t n = s_common_env(sys, text, env);
    size_t k = 40;
    char upper[32];
    snprintf(upper, sizeof upper, "%s", service);
    for (char *p = upper; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    snprintf(text[k], sizeof text[k], "NCC_%s_RPC_BIND=tcp://127.0.0.1:%d", upper, d->rpc);
    env[n++] = text[k++];
    snprintf(text[k], sizeof text[k], "NCC_%s_PUB_BIND=tcp://127.0.0.1:%d", upper, d->pub);
    env[n++] = text[k++];
    snprintf(text[k], sizeof text[k], "NCC_%s_HEALTH_LISTEN=127.0.0.1:%d", upper, d->health);
    env[n++] = text[k++];
    env[n++] = "NCC_BOOTSTRAP_ADMIN_LOGIN=admin";
    env[n++] = "NCC_BOOTSTRAP_ADMIN_PASSWORD=" NCCT_ADMIN_PASSWORD;
    env[n++] = "NCC_BOOTSTRAP_ADMIN_TOTP_SECRET=" NCCT_ADMIN_TOTP;
    s_add_extra(env, &n, extra_env);
    snprintf(d->log, sizeof d->log, "/tmp/ncc-%s-%s-%zu-%d.log", sys->tag, service, copy,
             (int)getpid());
    unlink(d->log);
    d->pid = ncct_spawn(d->program, env, d->log);
    cr_assert_gt(d->pid, 0);
    s_wait_ready(d);
}

void ncct_system_start(ncct_system_t *sys, const char *service, const char *const *extra_env)
{
    s_start_daemon(sys, ncct_service(sys, service), service, 0, extra_env);
    if (strcmp(service, "directory") == 0) {
        long long deadline = ncct_now_ms() + S_READY_TIMEOUT_MS;
        while (ncct_owner_long(sys, "SELECT count(*) FROM directory.users") == 0) {
            cr_assert_lt(ncct_now_ms(), deadline, "no administrator was created");
            usleep(50 * 1000);
        }
    }
}

ncct_daemon_t *ncct_system_start_copy(ncct_system_t *sys, const char *service,
                                      const char *const *extra_env)
{
    cr_assert_lt(sys->n_copies, sizeof sys->copies / sizeof sys->copies[0], "too many copies");
    ncct_daemon_t *d = &sys->copies[sys->n_copies++];
    s_ports(d);
    s_start_daemon(sys, d, service, sys->n_copies, extra_env);
    return d;
}

void ncct_system_start_gateway(ncct_system_t *sys, const char *const *extra_env)
{
    ncct_daemon_t *d = &sys->gateway;
    d->program = "ncc-gateway";
    char text[48][600];
    const char *env[96];
    size_t n = s_common_env(sys, text, env);
    size_t k = 40;
    snprintf(text[k], sizeof text[k], "NCC_HTTP_LISTEN=127.0.0.1:%d", d->http);
    env[n++] = text[k++];
    snprintf(text[k], sizeof text[k], "NCC_HTTPS_PORT=%d", ncct_free_port());
    env[n++] = text[k++];
    snprintf(text[k], sizeof text[k], "NCC_GATEWAY_HEALTH_LISTEN=127.0.0.1:%d", d->health);
    env[n++] = text[k++];
    snprintf(text[k], sizeof text[k], "NCC_TLS_CERT=/tmp/ncc-%s-gw-%d.pem", sys->tag,
             (int)getpid());
    env[n++] = text[k++];
    env[n++] = "NCC_HTTPS_LISTEN=";
    env[n++] = "NCC_WEB_ROOT=gateway/web";
    env[n++] = "NCC_BUS_TIMEOUT_MS=10000";
    env[n++] = "NCC_STAFF_ALLOW_CIDRS=";
    env[n++] = "NCC_TRUSTED_PROXIES=";
    env[n++] = "NCC_PBX_WEBHOOK_SECRET=" NCCT_PBX_SECRET;
    s_add_extra(env, &n, extra_env);
    snprintf(d->log, sizeof d->log, "/tmp/ncc-%s-gateway-%d.log", sys->tag, (int)getpid());
    unlink(d->log);
    d->pid = ncct_spawn("ncc-gateway", env, d->log);
    cr_assert_gt(d->pid, 0);
    s_wait_ready(d);
}

void ncct_daemon_stop(ncct_daemon_t *d)
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
    if (!clean || status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        s_dump(d);
    cr_assert_neq(status, -1, "%s did not stop on SIGTERM", d->program);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: exit status %d", d->program,
              status);
    cr_assert(clean, "sanitizer report in %s", d->log);
    unlink(d->log);
}

void ncct_system_stop_all(ncct_system_t *sys)
{
    ncct_daemon_stop(&sys->gateway);
    for (size_t i = 0; i < sys->n_copies; i++)
        ncct_daemon_stop(&sys->copies[i]);
    for (size_t i = 0; i < NCCT_MAX_SERVICES; i++)
        ncct_daemon_stop(&sys->services[i]);
}

void ncct_system_teardown(ncct_system_t *sys)
{
    ncct_daemon_t *gateway = &sys->gateway;
    if (gateway->pid > 0)
        ncct_kill(gateway->pid);
    gateway->pid = 0;
    for (size_t i = 0; i < NCCT_MAX_SERVICES; i++) {
        if (sys->services[i].pid > 0)
            ncct_kill(sys->services[i].pid);
        sys->services[i].pid = 0;
    }
    for (size_t i = 0; i < sys->n_copies; i++) {
        if (sys->copies[i].pid > 0)
            ncct_kill(sys->copies[i].pid);
        sys->copies[i].pid = 0;
    }
    char cert[160];
    snprintf(cert, sizeof cert, "/tmp/ncc-%s-gw-%d.pem", sys->tag, (int)getpid());
    unlink(cert);
    ncct_database_drop(&sys->db);
    curl_global_cleanup();
}

/* ---- HTTP ------------------------------------------------------------------------------------ */

static ncct_resp_t s_perform(ncct_system_t *sys, const ncct_session_t *session, const char *method,
                             const char *path, const char *body, size_t len,
                             const char *content_type, const char *const *headers)
{
    CURL *curl = curl_easy_init();
    cr_assert_not_null(curl);
    ncct_buffer_t body_buf = {0}, header_buf = {0};
    struct curl_slist *list = NULL;
    char url[2048], line[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", sys->gateway.http, path);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, ncct_curl_collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body_buf);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, ncct_curl_collect);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &header_buf);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        snprintf(line, sizeof line, "Content-Type: %s",
                 content_type ? content_type : "application/json");
        list = curl_slist_append(list, line);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    }
    if (session && session->cookie[0]) {
        snprintf(line, sizeof line, "Cookie: ncc_session=%s", session->cookie);
        list = curl_slist_append(list, line);
        snprintf(line, sizeof line, "X-CSRF-Token: %s", session->csrf);
        list = curl_slist_append(list, line);
    }
    for (size_t i = 0; headers && headers[i]; i++)
        list = curl_slist_append(list, headers[i]);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    CURLcode code = curl_easy_perform(curl);
    ncct_resp_t out = {0};
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out.status);
    curl_slist_free_all(list);
    curl_easy_cleanup(curl);
    cr_assert_eq(code, CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(code));
    out.body = body_buf.data ? body_buf.data : strdup("");
    out.len = body_buf.len;
    out.headers = header_buf.data ? header_buf.data : strdup("");
    out.json = cJSON_ParseWithLength(out.body, out.len);
    return out;
}

ncct_resp_t ncct_request(ncct_system_t *sys, const ncct_session_t *session, const char *method,
                         const char *path, const char *body, const char *const *headers)
{
    return s_perform(sys, session, method, path, body, body ? strlen(body) : 0, NULL, headers);
}

ncct_resp_t ncct_request_raw(ncct_system_t *sys, const ncct_session_t *session, const char *method,
                             const char *path, const char *body, size_t len,
                             const char *content_type, const char *const *headers)
{
    return s_perform(sys, session, method, path, body, len, content_type, headers);
}

char *ncct_header(const ncct_resp_t *resp, const char *name)
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

void ncct_resp_free(ncct_resp_t *resp)
{
    free(resp->body);
    free(resp->headers);
    cJSON_Delete(resp->json);
    memset(resp, 0, sizeof *resp);
}

const char *ncct_str(const cJSON *object, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, name);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

void ncct_expect(const ncct_resp_t *resp, long status, const char *code, const char *what)
{
    cr_assert_eq(resp->status, status, "%s: status %ld (expected %ld): %s", what, resp->status,
                 status, resp->body);
    if (code) {
        const char *got = ncct_str(cJSON_GetObjectItemCaseSensitive(resp->json, "error"), "code");
        cr_assert(got && strcmp(got, code) == 0, "%s: code %s (expected %s): %s", what,
                  got ? got : "(none)", code, resp->body);
    }
}

ncct_resp_t ncct_signed_post(ncct_system_t *sys, const char *path, const char *body,
                             const char *secret, int64_t t)
{
    char header[160], line[200];
    cr_assert_eq(ncc_webhook_sign(secret, t, body, strlen(body), header, sizeof header), 0);
    snprintf(line, sizeof line, NCC_WEBHOOK_HEADER_NAME ": %s", header);
    const char *headers[] = {line, NULL};
    return s_perform(sys, NULL, "POST", path, body, strlen(body), NULL, headers);
}

void ncct_login(ncct_system_t *sys, ncct_session_t *out, const char *login, const char *password,
                const char *totp_secret)
{
    char body[512], code[7] = "";
    if (totp_secret)
        cr_assert_eq(ncc_totp_code(totp_secret, (int64_t)time(NULL), code), 0);
    snprintf(body, sizeof body, "{\"login\":\"%s\",\"password\":\"%s\"%s%s%s}", login, password,
             totp_secret ? ",\"totp\":\"" : "", code, totp_secret ? "\"" : "");
    memset(out, 0, sizeof *out);
    ncct_resp_t resp = ncct_request(sys, NULL, "POST", "/api/v1/session", body, NULL);
    ncct_expect(&resp, 200, NULL, "sign-in");
    const char *set_cookie = strcasestr(resp.headers, "Set-Cookie: ncc_session=");
    cr_assert_not_null(set_cookie, "%s", resp.headers);
    set_cookie += strlen("Set-Cookie: ncc_session=");
    size_t len = strcspn(set_cookie, ";\r\n");
    cr_assert_lt(len, sizeof out->cookie);
    memcpy(out->cookie, set_cookie, len);
    snprintf(out->csrf, sizeof out->csrf, "%s", ncct_str(resp.json, "csrf_token"));
    const cJSON *user = cJSON_GetObjectItemCaseSensitive(resp.json, "user");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(user, "id");
    out->user_id = cJSON_IsNumber(id) ? (int64_t)id->valuedouble : 0;
    ncct_resp_free(&resp);
}

void ncct_login_admin(ncct_system_t *sys, ncct_session_t *out)
{
    ncct_login(sys, out, "admin", NCCT_ADMIN_PASSWORD, NCCT_ADMIN_TOTP);
}

int64_t ncct_create_user(ncct_system_t *sys, const ncct_session_t *admin, const char *login,
                         const char *roles_json, const char *extension, const char *password)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"login\":\"%s\",\"name\":\"%s\",\"roles\":%s,\"extension\":\"%s\","
             "\"password\":\"%s\"}",
             login, login, roles_json, extension ? extension : "", password);
    ncct_resp_t resp = ncct_request(sys, admin, "POST", "/api/v1/users", body, NULL);
    ncct_expect(&resp, 201, NULL, "create user");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(resp.json, "id");
    int64_t out = cJSON_IsNumber(id) ? (int64_t)id->valuedouble : 0;
    ncct_resp_free(&resp);
    return out;
}

long ncct_owner_long(ncct_system_t *sys, const char *sql)
{
    PGconn *conn = PQconnectdb(sys->db.owner_url);
    cr_assert_eq(PQstatus(conn), CONNECTION_OK, "%s", PQerrorMessage(conn));
    PGresult *res = PQexec(conn, sql);
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(conn));
    cr_assert_gt(PQntuples(res), 0, "%s: no row", sql);
    long value = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    PQfinish(conn);
    return value;
}

/* ---- push streams ---------------------------------------------------------------------------- */

static size_t s_stream_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
    ncct_stream_t *s = arg;
    size_t n = size * nmemb;
    pthread_mutex_lock(&s->lock);
    char *grown = realloc(s->data, s->len + n + 1);
    if (grown) {
        memcpy(grown + s->len, ptr, n);
        s->len += n;
        grown[s->len] = '\0';
        s->data = grown;
    }
    pthread_mutex_unlock(&s->lock);
    return grown ? n : 0;
}

static int s_stream_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)a, (void)b, (void)c, (void)d;
    return atomic_load(&((ncct_stream_t *)arg)->stop) ? 1 : 0;
}

static void *s_stream_run(void *arg)
{
    ncct_stream_t *s = arg;
    CURL *curl = curl_easy_init();
    struct curl_slist *list = curl_slist_append(NULL, s->cookie);
    curl_easy_setopt(curl, CURLOPT_URL, s->url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, s_stream_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, s_stream_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, s);
    curl_easy_perform(curl);
    curl_slist_free_all(list);
    curl_easy_cleanup(curl);
    return NULL;
}

void ncct_stream_open(ncct_system_t *sys, ncct_stream_t *s, const ncct_session_t *session)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d/api/v1/stream", sys->gateway.http);
    snprintf(s->cookie, sizeof s->cookie, "Cookie: ncc_session=%s", session->cookie);
    cr_assert_eq(pthread_create(&s->thread, NULL, s_stream_run, s), 0);
}

bool ncct_stream_wait(ncct_stream_t *s, const char *text, int timeout_ms)
{
    long long deadline = ncct_now_ms() + timeout_ms;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        bool found = s->data && strstr(s->data, text);
        pthread_mutex_unlock(&s->lock);
        if (found)
            return true;
        if (ncct_now_ms() > deadline)
            return false;
        usleep(5 * 1000);
    }
}

char *ncct_stream_text(ncct_stream_t *s)
{
    pthread_mutex_lock(&s->lock);
    char *copy = strdup(s->data ? s->data : "");
    pthread_mutex_unlock(&s->lock);
    return copy;
}

char *ncct_stream_events(ncct_stream_t *s, const char *event)
{
    char *copy = ncct_stream_text(s);
    char *out = calloc(1, strlen(copy) + 1);
    char marker[96];
    snprintf(marker, sizeof marker, "event: %s\n", event);
    for (char *p = strstr(copy, marker); p; p = strstr(p + 1, marker)) {
        char *data = strstr(p, "data: ");
        char *end = data ? strstr(data, "\n\n") : NULL;
        if (data && end) {
            strncat(out, data, (size_t)(end - data));
            strcat(out, "\n");
        }
    }
    free(copy);
    return out;
}

void ncct_stream_close(ncct_stream_t *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
    free(s->data);
    pthread_mutex_destroy(&s->lock);
}
