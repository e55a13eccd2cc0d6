/* Tests for ncc/health.h: a real civetweb server on 127.0.0.1:0 fetched with
 * libcurl: /healthz, /readyz in both states, /metrics after observations,
 * 404, 405, HEAD, a port already in use, and nothing written to stderr. */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "ncc/health.h"
#include "ncc/log.h"
#include "ncc/metrics.h"

typedef struct {
    long status;
    char *body; /* NUL-terminated, owned */
    size_t len;
    char content_type[128]; /* Content-Type header value */
    char allow[64];         /* Allow header value */
} response_t;

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    response_t *r = arg;
    size_t n = size * nmemb;
    char *grown = realloc(r->body, r->len + n + 1);
    cr_assert_not_null(grown);
    r->body = grown;
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

/* Copies the value of header `name` from the raw line into out. */
static void header_value(const char *line, size_t len, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);
    if (len <= nlen + 1 || strncasecmp(line, name, nlen) != 0 || line[nlen] != ':')
        return;
    const char *v = line + nlen + 1;
    const char *end = line + len;
    while (v < end && *v == ' ')
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n'))
        end--;
    snprintf(out, cap, "%.*s", (int)(end - v), v);
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    response_t *r = arg;
    size_t n = size * nmemb;
    header_value(data, n, "Content-Type", r->content_type, sizeof r->content_type);
    header_value(data, n, "Allow", r->allow, sizeof r->allow);
    return n;
}

static response_t fetch(ncc_health_t *health, const char *method, const char *path)
{
    response_t r;
    memset(&r, 0, sizeof r);
    r.body = calloc(1, 1);
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", ncc_health_port(health), path);
    CURL *curl = curl_easy_init();
    cr_assert_not_null(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "x=1");
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    }
    CURLcode rc = curl_easy_perform(curl);
    cr_assert_eq(rc, CURLE_OK, "%s %s: %s", method, url, curl_easy_strerror(rc));
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_cleanup(curl);
    return r;
}

static ncc_health_t *health;
static char stderr_path[] = "/tmp/test_health_stderr_XXXXXX";
static int saved_stderr = -1;

/* stderr goes to a file for the whole test, to prove nothing is printed. */
static void setup(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    ncc_log_init("health-test", NCC_LOG_INFO);
    int fd = mkstemp(stderr_path);
    cr_assert_geq(fd, 0);
    saved_stderr = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
    ncc_health_options_t options = {.service = "health-test", .listen = "127.0.0.1:0"};
    health = ncc_health_new(&options);
    cr_assert_not_null(health);
    cr_assert_gt(ncc_health_port(health), 0);
}

static void teardown(void)
{
    ncc_health_destroy(&health);
    cr_assert_null(health);
    curl_global_cleanup();
    fflush(stderr);
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    FILE *f = fopen(stderr_path, "r");
    char text[512] = "";
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[n] = '\0';
    if (f)
        fclose(f);
    unlink(stderr_path);
    cr_assert_eq(n, 0, "written to stderr: %s", text);
}

TestSuite(health, .init = setup, .fini = teardown);

Test(health, healthz_answers_ok)
{
    response_t r = fetch(health, "GET", "/healthz");
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "ok");
    cr_assert_not_null(strstr(r.content_type, "text/plain"));
    free(r.body);

    r = fetch(health, "GET", "/healthz?probe=1");
    cr_assert_eq(r.status, 200, "a query string does not change the path");
    free(r.body);
}

Test(health, readyz_follows_the_owner)
{
    response_t r = fetch(health, "GET", "/readyz");
    cr_assert_eq(r.status, 503, "not ready until the owner says so");
    cr_assert_str_eq(r.body, "starting");
    free(r.body);

    ncc_health_set_ready(health, true, NULL);
    r = fetch(health, "GET", "/readyz");
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "ready");
    free(r.body);

    ncc_health_set_ready(health, false, "database unreachable");
    r = fetch(health, "GET", "/readyz");
    cr_assert_eq(r.status, 503);
    cr_assert_str_eq(r.body, "database unreachable");
    free(r.body);

    r = fetch(health, "GET", "/healthz");
    cr_assert_eq(r.status, 200, "alive while not ready");
    free(r.body);
}

Test(health, metrics_show_counters_and_histogram)
{
    ncc_metrics_add(NCC_METRIC_REQUESTS, 3);
    ncc_metrics_inc(NCC_METRIC_ERRORS);
    ncc_metrics_set(NCC_METRIC_OUTBOX_DEPTH, 17);
    ncc_health_set_ready(health, true, NULL);
    ncc_metrics_observe(0.003);
    ncc_metrics_observe(0.003);
    ncc_metrics_observe(0.2);
    ncc_metrics_observe(10);

    response_t r = fetch(health, "GET", "/metrics");
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
    const char *expect[] = {
        "# HELP ncc_requests_total ",
        "# TYPE ncc_requests_total counter\n",
        "\nncc_requests_total{service=\"health-test\"} 3\n",
        "\nncc_errors_total{service=\"health-test\"} 1\n",
        "\nncc_bus_timeouts_total{service=\"health-test\"} 0\n",
        "# TYPE ncc_outbox_depth gauge\n",
        "\nncc_outbox_depth{service=\"health-test\"} 17\n",
        "\nncc_ready{service=\"health-test\"} 1\n",
        "# TYPE ncc_request_duration_seconds histogram\n",
        "\nncc_request_duration_seconds_bucket{service=\"health-test\",le=\"0.0005\"} 0\n",
        "\nncc_request_duration_seconds_bucket{service=\"health-test\",le=\"0.0025\"} 0\n",
        "\nncc_request_duration_seconds_bucket{service=\"health-test\",le=\"0.005\"} 2\n",
        "\nncc_request_duration_seconds_bucket{service=\"health-test\",le=\"0.1\"} 2\n",
        "\nncc_request_duration_seconds_bucket{service=\"health-test\",le=\"0.25\"} 3\n",
        "\nncc_request_duration_seconds_bucket{service=\"health-test\",le=\"5\"} 3\n",
        "\nncc_request_duration_seconds_bucket{service=\"health-test\",le=\"+Inf\"} 4\n",
        "\nncc_request_duration_seconds_sum{service=\"health-test\"} 10.206000000\n",
        "\nncc_request_duration_seconds_count{service=\"health-test\"} 4\n",
    };
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
        cr_assert_not_null(strstr(r.body, expect[i]), "missing %s in:\n%s", expect[i], r.body);
    cr_assert_eq(r.body[r.len - 1], '\n');
    free(r.body);
}

Test(health, unknown_path_is_404_and_other_methods_405)
{
    response_t r = fetch(health, "GET", "/nope");
    cr_assert_eq(r.status, 404);
    free(r.body);
    r = fetch(health, "GET", "/");
    cr_assert_eq(r.status, 404);
    free(r.body);
    r = fetch(health, "GET", "/healthz/extra");
    cr_assert_eq(r.status, 404);
    free(r.body);

    const char *methods[] = {"POST", "PUT", "DELETE"};
    for (size_t i = 0; i < 3; i++) {
        r = fetch(health, methods[i], "/healthz");
        cr_assert_eq(r.status, 405, "%s", methods[i]);
        cr_assert_str_eq(r.allow, "GET, HEAD");
        free(r.body);
    }
    r = fetch(health, "POST", "/metrics");
    cr_assert_eq(r.status, 405);
    free(r.body);

    r = fetch(health, "HEAD", "/readyz");
    cr_assert_eq(r.status, 503);
    cr_assert_eq(r.len, 0, "HEAD has no body");
    free(r.body);
}

Test(health, port_in_use_gives_null)
{
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", ncc_health_port(health));
    ncc_health_options_t options = {.service = "second", .listen = listen};
    fflush(stdout);
    int saved_stdout = dup(STDOUT_FILENO);
    int null = open("/dev/null", O_WRONLY);
    dup2(null, STDOUT_FILENO); /* civetweb's reason is logged on stdout */
    close(null);
    ncc_health_t *second = ncc_health_new(&options);
    dup2(saved_stdout, STDOUT_FILENO);
    close(saved_stdout);
    cr_assert_null(second);

    response_t r = fetch(health, "GET", "/healthz");
    cr_assert_eq(r.status, 200, "the first server is unharmed");
    free(r.body);
}
