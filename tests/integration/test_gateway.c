/* ncc-gateway, end to end over real HTTPS: each test starts its own gateway
 * process (from NCC_TEST_BIN_DIR) on ports of its own, with the directory
 * service played by a ROUTER in this process (ncc_rpc_server_new, answering
 * Ping and HealthRequest) and every other service pointing at a port where
 * nothing listens. Checks the JSON <-> protobuf round trip, the API.md error
 * shape, limits, the health fan-out, static files and traversal, TLS
 * versions, keep-alive, the self-signed certificate, SIGHUP and SIGTERM. */
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <ctype.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ncc/bus.h"
#include "ncc/log.h"
#include "ncc/service.h"
#include "ncc_test.h"

#define START_TIMEOUT_MS 20000

/* The gateway's Content-Security-Policy: same origin only, no inline script,
 * no framing, no plugins, no <base> or foreign form targets. */
#define S_CSP                                                                                      \
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; "            \
    "object-src 'none'"
#define BUS_TIMEOUT_MS 500
#define MAX_BODY       (1024 * 1024)

/* ---- the directory service, played by this process ----------------------- */

static struct {
    pthread_t thread;
    atomic_bool stop;
    pthread_mutex_t lock;
    pthread_cond_t ready_cond;
    bool ready;
    char endpoint[128];  /* where the ROUTER bound */
    char seen_trace[80]; /* trace id of the last Ping */
    atomic_int pings;    /* Pings handled */
} s_dir = {.lock = PTHREAD_MUTEX_INITIALIZER, .ready_cond = PTHREAD_COND_INITIALIZER};

static void s_on_ping(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    const Ncc__Ping *ping = (const Ncc__Ping *)request->message;
    pthread_mutex_lock(&s_dir.lock);
    snprintf(s_dir.seen_trace, sizeof s_dir.seen_trace, "%s",
             request->envelope->trace_id ? request->envelope->trace_id : "");
    pthread_mutex_unlock(&s_dir.lock);
    atomic_fetch_add(&s_dir.pings, 1);
    if (ping->message && strcmp(ping->message, "slow") == 0)
        usleep(300 * 1000);
    if (ping->message && strcmp(ping->message, "refuse") == 0) {
        ncc_reply_error(reply, 409, "conflict", "message", "refused on purpose");
        return;
    }
    Ncc__Pong pong = NCC__PONG__INIT;
    pong.message = ping->message ? ping->message : "";
    pong.service = "directory";
    pong.instance = "test";
    ncc_reply_message(reply, &pong.base);
}

static void s_on_health(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    Ncc__HealthReply health = NCC__HEALTH_REPLY__INIT;
    health.service = "directory";
    health.instance = "test";
    health.has_ready = health.has_database = health.has_bus = true;
    health.ready = health.database = health.bus = true;
    health.version = "test-version";
    ncc_reply_message(reply, &health.base);
}

/* The ROUTER is made, polled and destroyed in this thread (its owner). */
static void *s_directory_run(void *arg)
{
    ncc_rpc_server_t *server = ncc_rpc_server_new("tcp://127.0.0.1:*", "directory");
    zpoller_t *poller = NULL;
    if (server && ncc_rpc_server_on(server, &ncc__ping__descriptor, s_on_ping, NULL) == 0 &&
        ncc_rpc_server_on(server, &ncc__health_request__descriptor, s_on_health, NULL) == 0)
        poller = zpoller_new(ncc_rpc_server_socket(server), NULL);
    pthread_mutex_lock(&s_dir.lock);
    if (poller)
        snprintf(s_dir.endpoint, sizeof s_dir.endpoint, "%s", ncc_rpc_server_endpoint(server));
    s_dir.ready = true;
    pthread_cond_signal(&s_dir.ready_cond);
    pthread_mutex_unlock(&s_dir.lock);
    if (poller) {
        zpoller_set_nonstop(poller, true);
        while (!atomic_load(&s_dir.stop)) {
            if (zpoller_wait(poller, 20))
                ncc_rpc_server_process(server);
        }
    }
    zpoller_destroy(&poller);
    ncc_rpc_server_destroy(&server);
    return NULL;
}

/* ---- the gateway under test -------------------------------------------------- */

static struct {
    char dir[64]; /* temporary folder: certificate, config file, log */
    char cert[128];
    char config[128];
    char log[128];
    int https_port, http_port, health_port;
    pid_t pid;
} s_gw;

static void s_dump_log(void)
{
    char *log = ncct_read_file(s_gw.log);
    if (log)
        fprintf(stderr, "---- gateway log ----\n%s---------------------\n", log);
    free(log);
}

static void s_setup(void)
{
    ncc_log_init("test_gateway", NCC_LOG_WARN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    cr_assert_eq(access("gateway/web/index.html", R_OK), 0,
                 "run from the repository root (gateway/web/index.html)");

    cr_assert_eq(pthread_create(&s_dir.thread, NULL, s_directory_run, NULL), 0);
    pthread_mutex_lock(&s_dir.lock);
    while (!s_dir.ready)
        pthread_cond_wait(&s_dir.ready_cond, &s_dir.lock);
    pthread_mutex_unlock(&s_dir.lock);
    cr_assert(s_dir.endpoint[0], "the test ROUTER could not bind");

    snprintf(s_gw.dir, sizeof s_gw.dir, "/tmp/ncc-test-gateway-XXXXXX");
    cr_assert_not_null(mkdtemp(s_gw.dir));
    snprintf(s_gw.cert, sizeof s_gw.cert, "%s/tls/gateway.pem", s_gw.dir);
    snprintf(s_gw.config, sizeof s_gw.config, "%s/gateway.env", s_gw.dir);
    snprintf(s_gw.log, sizeof s_gw.log, "%s/gateway.log", s_gw.dir);
    FILE *config = fopen(s_gw.config, "w");
    cr_assert_not_null(config);
    fclose(config);

    s_gw.https_port = ncct_free_port();
    s_gw.http_port = ncct_free_port();
    s_gw.health_port = ncct_free_port();
    cr_assert(s_gw.https_port > 0 && s_gw.http_port > 0 && s_gw.health_port > 0);

    /* Ordinary settings, then one NCC_<SERVICE>_RPC per service. */
    static char env_text[32][256];
    const char *env[40];
    size_t n = 0;
    snprintf(env_text[n], sizeof env_text[n], "NCC_HTTPS_PORT=%d", s_gw.https_port);
    env[n] = env_text[n], n++;
    snprintf(env_text[n], sizeof env_text[n], "NCC_HTTP_LISTEN=127.0.0.1:%d", s_gw.http_port);
    env[n] = env_text[n], n++;
    snprintf(env_text[n], sizeof env_text[n], "NCC_GATEWAY_HEALTH_LISTEN=127.0.0.1:%d",
             s_gw.health_port);
    env[n] = env_text[n], n++;
    snprintf(env_text[n], sizeof env_text[n], "NCC_TLS_CERT=%s", s_gw.cert);
    env[n] = env_text[n], n++;
    snprintf(env_text[n], sizeof env_text[n], "NCC_CONFIG_FILE=%s", s_gw.config);
    env[n] = env_text[n], n++;
    snprintf(env_text[n], sizeof env_text[n], "NCC_BUS_TIMEOUT_MS=%d", BUS_TIMEOUT_MS);
    env[n] = env_text[n], n++;
    snprintf(env_text[n], sizeof env_text[n], "NCC_GATEWAY_HEALTH_TIMEOUT_MS=%d", BUS_TIMEOUT_MS);
    env[n] = env_text[n], n++;
    env[n++] = "NCC_HTTPS_LISTEN=";
    env[n++] = "NCC_WEB_ROOT=gateway/web";
    env[n++] = "NCC_MAX_BODY_BYTES=1048576";
    env[n++] = "NCC_LOG_LEVEL=info";
    for (size_t i = 0; ncc_service_names[i]; i++) {
        char upper[32];
        snprintf(upper, sizeof upper, "%s", ncc_service_names[i]);
        for (char *p = upper; *p; p++)
            *p = (char)toupper((unsigned char)*p);
        if (strcmp(ncc_service_names[i], "directory") == 0)
            snprintf(env_text[n], sizeof env_text[n], "NCC_%s_RPC=%s", upper, s_dir.endpoint);
        else /* a port nobody listens on: the service is down */
            snprintf(env_text[n], sizeof env_text[n], "NCC_%s_RPC=tcp://127.0.0.1:%d", upper,
                     ncct_free_port());
        env[n] = env_text[n], n++;
    }
    env[n] = NULL;

    s_gw.pid = ncct_spawn("ncc-gateway", env, s_gw.log);
    cr_assert(s_gw.pid > 0);
    char url[96];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/healthz", s_gw.https_port);
    if (!ncct_wait_status(url, 200, START_TIMEOUT_MS)) {
        s_dump_log();
        cr_assert_fail("the gateway did not answer %s (binary in %s)", url, ncct_bin_dir());
    }
}

static void s_remove_tree(const char *path)
{
    DIR *dir = opendir(path);
    if (dir) {
        struct dirent *entry;
        while ((entry = readdir(dir))) {
            if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
                continue;
            char child[512];
            snprintf(child, sizeof child, "%s/%s", path, entry->d_name);
            s_remove_tree(child);
        }
        closedir(dir);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static void s_teardown(void)
{
    if (s_gw.pid > 0) {
        kill(s_gw.pid, SIGTERM);
        if (ncct_wait_exit(s_gw.pid, 15000) == -1)
            ncct_kill(s_gw.pid);
        s_gw.pid = 0;
    }
    atomic_store(&s_dir.stop, true);
    pthread_join(s_dir.thread, NULL);
    if (s_gw.dir[0])
        s_remove_tree(s_gw.dir);
    curl_global_cleanup();
}

TestSuite(gateway, .init = s_setup, .fini = s_teardown, .timeout = 120);

/* ---- HTTP client --------------------------------------------------------------- */

typedef struct {
    const char *method;       /* default GET */
    const char *path;         /* "/api/v1/..." */
    const char *body;         /* NULL: none */
    size_t body_len;          /* 0: strlen(body) */
    const char *content_type; /* default application/json when there is a body */
    const char *request_id;   /* X-Request-Id to send */
    bool plain;               /* the plain HTTP listener instead of HTTPS */
    long ssl_version;         /* CURLOPT_SSLVERSION, 0 = default */
    const char *ciphers;      /* CURLOPT_SSL_CIPHER_LIST */
    CURL *handle;             /* reuse this handle (keep-alive); NULL = a fresh one */
} req_t;

typedef struct {
    CURLcode code;
    long status;
    char *body; /* NUL-terminated, never NULL after s_request */
    size_t len;
    char *headers; /* the raw header block */
    long connects; /* CURLINFO_NUM_CONNECTS */
    long long ms;  /* wall time */
} resp_t;

static void s_request(const req_t *r, resp_t *out)
{
    memset(out, 0, sizeof *out);
    CURL *curl = r->handle ? r->handle : curl_easy_init();
    cr_assert_not_null(curl);
    ncct_buffer_t body = {0}, headers = {0};
    struct curl_slist *list = NULL;
    char url[4096], line[256];
    snprintf(url, sizeof url, "%s://127.0.0.1:%d%s", r->plain ? "http" : "https",
             r->plain ? s_gw.http_port : s_gw.https_port, r->path);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 15000L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, ncct_curl_collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, ncct_curl_collect);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &headers);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, r->method ? r->method : "GET");
    if (r->ssl_version)
        curl_easy_setopt(curl, CURLOPT_SSLVERSION, r->ssl_version);
    if (r->ciphers)
        curl_easy_setopt(curl, CURLOPT_SSL_CIPHER_LIST, r->ciphers);
    if (r->body) {
        snprintf(line, sizeof line, "Content-Type: %s",
                 r->content_type ? r->content_type : "application/json");
        list = curl_slist_append(list, line);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(r->body_len ? r->body_len : strlen(r->body)));
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, r->body);
    } else {
        curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, r->method ? r->method : "GET");
    }
    if (r->request_id) {
        snprintf(line, sizeof line, "X-Request-Id: %s", r->request_id);
        list = curl_slist_append(list, line);
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);

    long long started = ncct_now_ms();
    out->code = curl_easy_perform(curl);
    out->ms = ncct_now_ms() - started;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out->status);
    curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &out->connects);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(list);
    if (!r->handle)
        curl_easy_cleanup(curl);
    out->body = body.data ? body.data : strdup("");
    out->len = body.len;
    out->headers = headers.data ? headers.data : strdup("");
}

static void s_free(resp_t *resp)
{
    free(resp->body);
    free(resp->headers);
    memset(resp, 0, sizeof *resp);
}

/* The value of header `name` in the response (caller frees), or NULL. */
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

static void s_assert_header(const resp_t *resp, const char *name, const char *expected)
{
    char *value = s_header(resp, name);
    cr_assert_not_null(value, "no %s header in:\n%s", name, resp->headers);
    cr_assert_str_eq(value, expected, "%s: %s", name, value);
    free(value);
}

/* Asserts {"error":{"code": code, "message": ..., "field": field?}}. */
static void s_assert_error(const resp_t *resp, long status, const char *code, const char *field)
{
    cr_assert_eq(resp->status, status, "status %ld (expected %ld): %s", resp->status, status,
                 resp->body);
    s_assert_header(resp, "Content-Type", "application/json; charset=utf-8");
    cJSON *root = cJSON_Parse(resp->body);
    cr_assert_not_null(root, "not JSON: %s", resp->body);
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(root, "error");
    cr_assert(cJSON_IsObject(error), "no error object: %s", resp->body);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(error, "code");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(error, "message");
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(error, "field");
    cr_assert(cJSON_IsString(c) && cJSON_IsString(m), "code/message missing: %s", resp->body);
    cr_assert_str_eq(c->valuestring, code, "code %s: %s", c->valuestring, resp->body);
    if (field) {
        cr_assert(cJSON_IsString(f), "no field: %s", resp->body);
        cr_assert_str_eq(f->valuestring, field);
    }
    cJSON_Delete(root);
}

static const char *s_json_string(const cJSON *object, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, name);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

/* ---- the API -------------------------------------------------------------------------- */

Test(gateway, ping_round_trip_get_and_post)
{
    resp_t resp;
    s_request(&(req_t){.path = "/api/v1/services/directory/ping?message=hello%20world",
                       .request_id = "0123456789abcdef0123"},
              &resp);
    cr_assert_eq(resp.status, 200, "%ld %s", resp.status, resp.body);
    s_assert_header(&resp, "Content-Type", "application/json; charset=utf-8");
    s_assert_header(&resp, "Cache-Control", "no-store");
    s_assert_header(&resp, "X-Request-Id", "0123456789abcdef0123");
    cJSON *pong = cJSON_Parse(resp.body);
    cr_assert_not_null(pong);
    cr_assert_str_eq(s_json_string(pong, "message"), "hello world");
    cr_assert_str_eq(s_json_string(pong, "service"), "directory");
    cJSON_Delete(pong);
    /* The request id travelled on the bus as the trace id. */
    pthread_mutex_lock(&s_dir.lock);
    cr_assert_str_eq(s_dir.seen_trace, "0123456789abcdef0123");
    pthread_mutex_unlock(&s_dir.lock);
    s_free(&resp);

    s_request(&(req_t){.method = "POST",
                       .path = "/api/v1/services/directory/ping",
                       .body = "{\"message\": \"こんにちは\"}",
                       .request_id = "not a valid id!"},
              &resp);
    cr_assert_eq(resp.status, 200, "%ld %s", resp.status, resp.body);
    pong = cJSON_Parse(resp.body);
    cr_assert_str_eq(s_json_string(pong, "message"), "こんにちは");
    cJSON_Delete(pong);
    /* An invalid incoming id is replaced by a fresh one. */
    char *id = s_header(&resp, "X-Request-Id");
    cr_assert_not_null(id);
    cr_assert_eq(strlen(id), 32);
    cr_assert_str_neq(id, "not a valid id!");
    free(id);
    s_free(&resp);
    cr_assert_eq(atomic_load(&s_dir.pings), 2);
}

Test(gateway, service_error_keeps_its_status_and_shape)
{
    resp_t resp;
    s_request(&(req_t){.path = "/api/v1/services/directory/ping?message=refuse"}, &resp);
    s_assert_error(&resp, 409, "conflict", "message");
    s_free(&resp);
}

Test(gateway, health_asks_every_service_at_once)
{
    resp_t resp;
    s_request(&(req_t){.path = "/api/v1/health"}, &resp);
    cr_assert_eq(resp.status, 503, "%ld %s", resp.status, resp.body);
    /* Six services down for BUS_TIMEOUT_MS each: asked one after the other
     * that would take 3 s. */
    cr_assert_lt(resp.ms, 2500, "health took %lld ms", resp.ms);
    cJSON *root = cJSON_Parse(resp.body);
    cr_assert_not_null(root, "%s", resp.body);
    cr_assert_str_eq(s_json_string(root, "status"), "degraded");
    const cJSON *services = cJSON_GetObjectItemCaseSensitive(root, "services");
    cr_assert_eq(cJSON_GetArraySize(services), 7, "%s", resp.body);
    int up = 0, down = 0;
    const cJSON *service;
    cJSON_ArrayForEach(service, services)
    {
        const char *name = s_json_string(service, "name");
        const char *status = s_json_string(service, "status");
        cr_assert_not_null(name);
        cr_assert_not_null(status);
        cr_assert(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(service, "latency_ms")));
        if (strcmp(name, "directory") == 0) {
            cr_assert_str_eq(status, "up");
            /* Anonymous callers get statuses only: no instance names or
             * versions (signed-in users see them: test_gateway_auth.c). */
            cr_assert_null(cJSON_GetObjectItemCaseSensitive(service, "detail"), "%s", resp.body);
            up++;
        } else {
            cr_assert_str_eq(status, "down", "%s is %s", name, status);
            down++;
        }
    }
    cr_assert_eq(up, 1);
    cr_assert_eq(down, 6);
    cJSON_Delete(root);
    s_free(&resp);
}

Test(gateway, malformed_json_is_400)
{
    resp_t resp;
    s_request(&(req_t){.method = "POST",
                       .path = "/api/v1/services/directory/ping",
                       .body = "{\"message\": "},
              &resp);
    s_assert_error(&resp, 400, "invalid_json", NULL);
    s_free(&resp);
    /* A body that is JSON but not an object. */
    s_request(&(req_t){.method = "POST",
                       .path = "/api/v1/services/directory/ping",
                       .body = "[\"message\"]"},
              &resp);
    s_assert_error(&resp, 400, "invalid_json", NULL);
    s_free(&resp);
    /* Not sent as JSON at all (a form post). */
    s_request(&(req_t){.method = "POST",
                       .path = "/api/v1/services/directory/ping",
                       .body = "message=hi",
                       .content_type = "application/x-www-form-urlencoded"},
              &resp);
    s_assert_error(&resp, 415, "unsupported_media_type", NULL);
    s_free(&resp);
    cr_assert_eq(atomic_load(&s_dir.pings), 0, "a bad request reached the service");
}

Test(gateway, unknown_field_is_400_with_field)
{
    resp_t resp;
    s_request(&(req_t){.method = "POST",
                       .path = "/api/v1/services/directory/ping",
                       .body = "{\"message\": \"hi\", \"bogus\": 1}"},
              &resp);
    s_assert_error(&resp, 400, "unknown_field", "bogus");
    s_free(&resp);
    /* The same through the query string. */
    s_request(&(req_t){.path = "/api/v1/services/directory/ping?bogus=1"}, &resp);
    s_assert_error(&resp, 400, "unknown_field", "bogus");
    s_free(&resp);
}

Test(gateway, wrong_type_is_400_with_field)
{
    resp_t resp;
    s_request(&(req_t){.method = "POST",
                       .path = "/api/v1/services/directory/ping",
                       .body = "{\"message\": 42}"},
              &resp);
    s_assert_error(&resp, 400, "invalid_field", "message");
    s_free(&resp);
    /* One value given both in the query and the body. */
    s_request(&(req_t){.method = "POST",
                       .path = "/api/v1/services/directory/ping?message=a",
                       .body = "{\"message\": \"b\"}"},
              &resp);
    s_assert_error(&resp, 400, "invalid_field", "message");
    s_free(&resp);
    /* A scalar field given twice in the query. */
    s_request(&(req_t){.path = "/api/v1/services/directory/ping?message=a&message=b"}, &resp);
    s_assert_error(&resp, 400, "invalid_field", "message");
    s_free(&resp);
    /* %00 would cut the value short in C: refused, not truncated. */
    s_request(&(req_t){.path = "/api/v1/services/directory/ping?message=a%00b"}, &resp);
    s_assert_error(&resp, 400, "invalid_query", NULL);
    s_free(&resp);
    cr_assert_eq(atomic_load(&s_dir.pings), 0, "a bad request reached the service");
}

Test(gateway, body_limit_is_413)
{
    /* Exactly the limit passes... */
    size_t len = MAX_BODY;
    char *body = malloc(len + 2);
    cr_assert_not_null(body);
    memcpy(body, "{\"message\":\"", 12);
    memset(body + 12, 'a', len - 14);
    memcpy(body + len - 2, "\"}", 2);
    body[len] = '\0';
    resp_t resp;
    s_request(&(req_t){.method = "POST",
                       .path = "/api/v1/services/directory/ping",
                       .body = body,
                       .body_len = len},
              &resp);
    cr_assert_eq(resp.status, 200, "%ld %.200s", resp.status, resp.body);
    cr_assert_gt(resp.len, len - 100);
    s_free(&resp);
    /* ... one byte more does not. */
    body[len - 1] = ' ';
    body[len] = '}';
    body[len + 1] = '\0';
    s_request(&(req_t){.method = "POST",
                       .path = "/api/v1/services/directory/ping",
                       .body = body,
                       .body_len = len + 1},
              &resp);
    s_assert_error(&resp, 413, "too_large", NULL);
    s_free(&resp);
    free(body);
}

Test(gateway, unknown_route_is_404_and_wrong_method_405)
{
    resp_t resp;
    s_request(&(req_t){.path = "/api/v1/no/such/thing"}, &resp);
    s_assert_error(&resp, 404, "not_found", NULL);
    s_free(&resp);
    s_request(&(req_t){.path = "/api/v1/services/nosuchservice/ping"}, &resp);
    s_assert_error(&resp, 404, "not_found", "service");
    s_free(&resp);
    s_request(&(req_t){.method = "DELETE", .path = "/api/v1/services/directory/ping"}, &resp);
    s_assert_error(&resp, 405, "method_not_allowed", NULL);
    s_assert_header(&resp, "Allow", "GET, POST");
    s_free(&resp);
}

Test(gateway, service_down_is_503_within_timeout)
{
    resp_t resp;
    s_request(&(req_t){.path = "/api/v1/services/calls/ping?message=x"}, &resp);
    s_assert_error(&resp, 503, "service_unavailable", NULL);
    cr_assert_lt(resp.ms, BUS_TIMEOUT_MS + 1000, "503 after %lld ms", resp.ms);
    cr_assert_geq(resp.ms, BUS_TIMEOUT_MS - 50, "503 after only %lld ms", resp.ms);
    s_free(&resp);
}

Test(gateway, security_headers_on_api_and_hsts_only_on_tls)
{
    resp_t resp;
    s_request(&(req_t){.path = "/api/v1/services/directory/ping"}, &resp);
    cr_assert_eq(resp.status, 200);
    s_assert_header(&resp, "X-Content-Type-Options", "nosniff");
    s_assert_header(&resp, "X-Frame-Options", "DENY");
    s_assert_header(&resp, "Referrer-Policy", "no-referrer");
    s_assert_header(&resp, "Content-Security-Policy", S_CSP);
    char *hsts = s_header(&resp, "Strict-Transport-Security");
    cr_assert_not_null(hsts);
    cr_assert(strncmp(hsts, "max-age=", 8) == 0 && atol(hsts + 8) > 0, "%s", hsts);
    free(hsts);
    s_free(&resp);

    /* The plain listener (behind the TLS edge) serves the API, without HSTS. */
    s_request(&(req_t){.path = "/api/v1/services/directory/ping?message=plain", .plain = true},
              &resp);
    cr_assert_eq(resp.status, 200, "%ld %s", resp.status, resp.body);
    s_assert_header(&resp, "X-Frame-Options", "DENY");
    cr_assert_null(s_header(&resp, "Strict-Transport-Security"));
    s_free(&resp);
}

/* ---- static files ------------------------------------------------------------------ */

Test(gateway, static_index_served_with_csp)
{
    resp_t resp;
    s_request(&(req_t){.path = "/"}, &resp);
    cr_assert_eq(resp.status, 200, "%ld", resp.status);
    cr_assert_not_null(strstr(resp.body, "中野区コンタクトセンター"));
    cr_assert_not_null(strstr(resp.body, "js/health.js"));
    cr_assert_null(strstr(resp.body, "<script>"), "no inline script");
    s_assert_header(&resp, "Content-Security-Policy", S_CSP);
    s_assert_header(&resp, "X-Content-Type-Options", "nosniff");
    s_assert_header(&resp, "X-Frame-Options", "DENY");
    char *cors = s_header(&resp, "Access-Control-Allow-Origin");
    cr_assert_null(cors, "no CORS: %s", cors);
    s_free(&resp);

    s_request(&(req_t){.path = "/js/health.js"}, &resp);
    cr_assert_eq(resp.status, 200);
    char *type = s_header(&resp, "Content-Type");
    cr_assert_not_null(type);
    cr_assert_not_null(strstr(type, "javascript"), "%s", type);
    free(type);
    cr_assert_not_null(strstr(resp.body, "/api/v1/health"));
    s_free(&resp);
}

Test(gateway, traversal_never_leaves_the_web_root)
{
    static const char *const paths[] = {
        "/../../../../etc/passwd",
        "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/js/..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/..%5c..%5c..%5c..%5cetc%5cpasswd",
        "/%252e%252e/%252e%252e/etc/passwd",
        "/api/v1/../../../../etc/passwd",
        "/js/../../gateway.c",
        "/js/",
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        resp_t resp;
        s_request(&(req_t){.path = paths[i]}, &resp);
        cr_assert(resp.status == 404 || resp.status == 403 || resp.status == 400, "%s answered %ld",
                  paths[i], resp.status);
        cr_assert_null(strstr(resp.body, "root:"), "%s leaked /etc/passwd", paths[i]);
        cr_assert_null(strstr(resp.body, "#include"), "%s leaked a source file", paths[i]);
        s_free(&resp);
    }
}

/* ---- TLS and connections ---------------------------------------------------------- */

Test(gateway, tls_1_1_refused_tls_1_2_accepted)
{
    resp_t resp;
    /* SECLEVEL=0 so that our own client is willing to offer TLS 1.1: the
     * refusal must come from the gateway. */
    s_request(&(req_t){.path = "/healthz",
                       .ssl_version = CURL_SSLVERSION_TLSv1_1 | CURL_SSLVERSION_MAX_TLSv1_1,
                       .ciphers = "DEFAULT:@SECLEVEL=0"},
              &resp);
    cr_assert_neq(resp.code, CURLE_OK, "TLS 1.1 was accepted (status %ld)", resp.status);
    cr_assert_eq(resp.status, 0);
    s_free(&resp);

    s_request(&(req_t){.path = "/healthz",
                       .ssl_version = CURL_SSLVERSION_TLSv1_2 | CURL_SSLVERSION_MAX_TLSv1_2},
              &resp);
    cr_assert_eq(resp.code, CURLE_OK, "TLS 1.2: %s", curl_easy_strerror(resp.code));
    cr_assert_eq(resp.status, 200);
    s_free(&resp);

    s_request(&(req_t){.path = "/healthz",
                       .ssl_version = CURL_SSLVERSION_TLSv1_3 | CURL_SSLVERSION_MAX_TLSv1_3},
              &resp);
    cr_assert_eq(resp.code, CURLE_OK, "TLS 1.3: %s", curl_easy_strerror(resp.code));
    cr_assert_eq(resp.status, 200);
    s_free(&resp);
}

Test(gateway, keep_alive_reuses_the_connection)
{
    CURL *handle = curl_easy_init();
    cr_assert_not_null(handle);
    resp_t resp;
    s_request(&(req_t){.path = "/api/v1/services/directory/ping?message=1", .handle = handle},
              &resp);
    cr_assert_eq(resp.status, 200);
    cr_assert_eq(resp.connects, 1);
    s_free(&resp);
    s_request(&(req_t){.path = "/api/v1/services/directory/ping?message=2", .handle = handle},
              &resp);
    cr_assert_eq(resp.status, 200);
    cr_assert_eq(resp.connects, 0, "a new connection was opened");
    s_free(&resp);
    /* An error answer keeps the connection too. */
    s_request(&(req_t){.path = "/api/v1/nothing", .handle = handle}, &resp);
    cr_assert_eq(resp.status, 404);
    s_free(&resp);
    s_request(&(req_t){.path = "/healthz", .handle = handle}, &resp);
    cr_assert_eq(resp.connects, 0);
    s_free(&resp);
    curl_easy_cleanup(handle);
}

Test(gateway, self_signed_certificate_made_private)
{
    struct stat st;
    cr_assert_eq(stat(s_gw.cert, &st), 0, "no certificate at %s", s_gw.cert);
    cr_assert_eq(st.st_mode & 0777, 0600, "mode %o", st.st_mode & 0777);
    char dir[160];
    snprintf(dir, sizeof dir, "%s/tls", s_gw.dir);
    cr_assert_eq(stat(dir, &st), 0);
    cr_assert_eq(st.st_mode & 0077, 0, "folder mode %o", st.st_mode & 0777);

    FILE *file = fopen(s_gw.cert, "r");
    cr_assert_not_null(file);
    EVP_PKEY *key = PEM_read_PrivateKey(file, NULL, NULL, NULL);
    X509 *cert = PEM_read_X509(file, NULL, NULL, NULL);
    fclose(file);
    cr_assert_not_null(key);
    cr_assert_not_null(cert);
    cr_assert(EVP_PKEY_is_a(key, "EC"));
    cr_assert_eq(X509_check_private_key(cert, key), 1);
    cr_assert_eq(X509_check_host(cert, "localhost", 0, 0, NULL), 1);
    cr_assert_eq(X509_check_ip_asc(cert, "127.0.0.1", 0), 1);
    /* 825 days, give or take the hour of back-dating. */
    int days = 0, seconds = 0;
    cr_assert(ASN1_TIME_diff(&days, &seconds, X509_get0_notBefore(cert), X509_get0_notAfter(cert)));
    cr_assert(days == 825 || days == 824, "valid for %d days", days);
    X509_free(cert);
    EVP_PKEY_free(key);
}

/* ---- signals ---------------------------------------------------------------------- */

Test(gateway, sighup_reloads_the_body_limit)
{
    char body[4000];
    memset(body, ' ', sizeof body - 1);
    memcpy(body, "{\"message\":\"x\"}", 15);
    body[sizeof body - 1] = '\0';
    resp_t resp;
    s_request(&(req_t){.method = "POST", .path = "/api/v1/services/directory/ping", .body = body},
              &resp);
    cr_assert_eq(resp.status, 200, "%ld %s", resp.status, resp.body);
    s_free(&resp);

    FILE *config = fopen(s_gw.config, "w");
    cr_assert_not_null(config);
    fprintf(config, "# written by the test\nNCC_MAX_BODY_BYTES=2048\n");
    fclose(config);
    cr_assert_eq(kill(s_gw.pid, SIGHUP), 0);
    long status = 0;
    for (int i = 0; i < 100 && status != 413; i++) {
        usleep(50 * 1000);
        s_request(
            &(req_t){.method = "POST", .path = "/api/v1/services/directory/ping", .body = body},
            &resp);
        status = resp.status;
        s_free(&resp);
    }
    cr_assert_eq(status, 413, "the new limit was not applied");
    /* Still serving. */
    s_request(&(req_t){.path = "/healthz"}, &resp);
    cr_assert_eq(resp.status, 200);
    s_free(&resp);
}

static void *s_slow_request(void *arg)
{
    resp_t *resp = arg;
    s_request(&(req_t){.path = "/api/v1/services/directory/ping?message=slow"}, resp);
    return NULL;
}

Test(gateway, sigterm_finishes_in_flight_requests_and_exits_zero)
{
    resp_t resp;
    pthread_t thread;
    cr_assert_eq(pthread_create(&thread, NULL, s_slow_request, &resp), 0);
    /* Wait until the slow request has reached the service. */
    for (int i = 0; i < 200 && atomic_load(&s_dir.pings) == 0; i++)
        usleep(5 * 1000);
    cr_assert_eq(atomic_load(&s_dir.pings), 1);
    cr_assert_eq(kill(s_gw.pid, SIGTERM), 0);
    pthread_join(thread, NULL);
    cr_assert_eq(resp.status, 200, "the request in flight got %ld (%s)", resp.status,
                 curl_easy_strerror(resp.code));
    s_free(&resp);

    int status = ncct_wait_exit(s_gw.pid, 15000);
    if (status == -1)
        s_dump_log();
    cr_assert_neq(status, -1, "the gateway did not exit after SIGTERM");
    s_gw.pid = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        s_dump_log();
    cr_assert(WIFEXITED(status), "killed by signal %d", WTERMSIG(status));
    cr_assert_eq(WEXITSTATUS(status), 0, "exit status %d (sanitizer report?)", WEXITSTATUS(status));
}
