/* http: response helpers, request ids, body reading, access log (http.h). */
#include "http.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ncc/log.h"
#include "ncc/metrics.h"

/* Written once before any listener starts, read-only afterwards. */
static int s_hsts_max_age;

static int64_t s_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

gw_thread_t *gw_thread_new(void)
{
    return calloc(1, sizeof(gw_thread_t));
}

static void s_hold_clear(gw_thread_t *thread)
{
    free(thread->hold.content_type);
    free(thread->hold.body);
    free(thread->hold.extra_name);
    free(thread->hold.extra_value);
    memset(&thread->hold, 0, sizeof thread->hold);
}

void gw_thread_destroy(gw_thread_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gw_thread_t *self = *self_p;
    for (size_t i = 0; i < GW_MAX_SERVICES; i++)
        ncc_rpc_client_destroy(&self->clients[i]);
    ncc_db_destroy(&self->db);
    s_hold_clear(self);
    free(self);
    *self_p = NULL;
}

gw_thread_t *gw_thread_of(const struct mg_connection *conn)
{
    return mg_get_thread_pointer(conn);
}

void gw_http_configure(int hsts_max_age)
{
    s_hsts_max_age = hsts_max_age;
}

bool gw_http_request_id_valid(const char *text)
{
    if (!text)
        return false;
    size_t len = strlen(text);
    if (len < 8 || len > 64)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        bool ok =
            (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

void gw_http_begin(struct mg_connection *conn)
{
    gw_thread_t *thread = gw_thread_of(conn);
    if (!thread)
        return;
    thread->started_us = s_now_us();
    thread->error_code[0] = '\0';
    s_hold_clear(thread);
    const char *given = mg_get_header(conn, "X-Request-Id");
    if (gw_http_request_id_valid(given))
        snprintf(thread->trace_id, sizeof thread->trace_id, "%s", given);
    else
        ncc_bus_random_id(thread->trace_id);
    ncc_log_set_trace(thread->trace_id);
}

void gw_http_end(const struct mg_connection *conn, int status)
{
    gw_thread_t *thread = gw_thread_of(conn);
    const struct mg_request_info *info = mg_get_request_info(conn);
    double seconds = thread ? (double)(s_now_us() - thread->started_us) / 1e6 : 0.0;
    ncc_metrics_inc(NCC_METRIC_REQUESTS);
    if (status >= 400 || status <= 0)
        ncc_metrics_inc(NCC_METRIC_ERRORS);
    ncc_metrics_observe(seconds);
    ncc_info("http.request", "%s %s %d %.1f ms",
             info && info->request_method ? info->request_method : "-",
             info && info->local_uri ? info->local_uri : "-", status, seconds * 1000.0);
    ncc_log_set_trace(NULL);
}

/* Keeps a copy of the answer in the thread. Returns status, or 500 after
 * sending a plain error when the copy cannot be made. */
static int s_hold(struct mg_connection *conn, gw_thread_t *thread, int status,
                  const char *content_type, const char *body, size_t len, const char *extra_name,
                  const char *extra_value)
{
    s_hold_clear(thread);
    thread->hold.active = true;
    thread->hold.status = status;
    thread->hold.content_type = strdup(content_type ? content_type : GW_JSON_TYPE);
    thread->hold.body = malloc(len + 1);
    thread->hold.extra_name = extra_name ? strdup(extra_name) : NULL;
    thread->hold.extra_value = extra_name ? strdup(extra_value ? extra_value : "") : NULL;
    if (!thread->hold.content_type || !thread->hold.body ||
        (extra_name && (!thread->hold.extra_name || !thread->hold.extra_value))) {
        s_hold_clear(thread);
        static const char fallback[] =
            "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
        return gw_http_send(conn, 500, GW_JSON_TYPE, fallback, sizeof fallback - 1, NULL, NULL);
    }
    if (len)
        memcpy(thread->hold.body, body, len);
    thread->hold.body[len] = '\0';
    thread->hold.len = len;
    thread->hold.held = true;
    return status;
}

void gw_http_hold(struct mg_connection *conn)
{
    gw_thread_t *thread = gw_thread_of(conn);
    if (!thread)
        return;
    s_hold_clear(thread);
    thread->hold.active = true;
}

int gw_http_flush(struct mg_connection *conn)
{
    gw_thread_t *thread = gw_thread_of(conn);
    if (!thread || !thread->hold.held) {
        if (thread)
            s_hold_clear(thread);
        return 0;
    }
    thread->hold.active = false;
    int status =
        gw_http_send(conn, thread->hold.status, thread->hold.content_type, thread->hold.body,
                     thread->hold.len, thread->hold.extra_name, thread->hold.extra_value);
    s_hold_clear(thread);
    return status;
}

void gw_http_drop(struct mg_connection *conn)
{
    gw_thread_t *thread = gw_thread_of(conn);
    if (thread)
        s_hold_clear(thread);
}

int gw_http_held_status(const struct mg_connection *conn)
{
    gw_thread_t *thread = gw_thread_of(conn);
    return thread && thread->hold.held ? thread->hold.status : 0;
}

void gw_http_common_headers(struct mg_connection *conn)
{
    const struct mg_request_info *info = mg_get_request_info(conn);
    gw_thread_t *thread = gw_thread_of(conn);
    mg_response_header_add(conn, "Cache-Control", "no-store", -1);
    mg_response_header_add_lines(conn, GW_SECURITY_HEADERS);
    if (info->is_ssl && s_hsts_max_age > 0) {
        char hsts[48];
        snprintf(hsts, sizeof hsts, "max-age=%d", s_hsts_max_age);
        mg_response_header_add(conn, "Strict-Transport-Security", hsts, -1);
    }
    if (thread && thread->trace_id[0])
        mg_response_header_add(conn, "X-Request-Id", thread->trace_id, -1);
}

int gw_http_start_stream(struct mg_connection *conn, const char *content_type)
{
    mg_response_header_start(conn, 200);
    mg_response_header_add(conn, "Content-Type", content_type, -1);
    mg_response_header_add(conn, "X-Accel-Buffering", "no", -1);
    gw_http_common_headers(conn);
    return mg_response_header_send(conn) < 0 ? -EIO : 0;
}

int gw_http_start_file(struct mg_connection *conn, const char *content_type, int64_t length,
                       const char *disposition)
{
    char text[32];
    snprintf(text, sizeof text, "%lld", (long long)length);
    mg_response_header_start(conn, 200);
    mg_response_header_add(conn, "Content-Type", content_type, -1);
    mg_response_header_add(conn, "Content-Length", text, -1);
    mg_response_header_add(conn, "Content-Disposition", disposition, -1);
    gw_http_common_headers(conn);
    return mg_response_header_send(conn) < 0 ? -EIO : 0;
}

int gw_http_send(struct mg_connection *conn, int status, const char *content_type, const char *body,
                 size_t len, const char *extra_name, const char *extra_value)
{
    const struct mg_request_info *info = mg_get_request_info(conn);
    gw_thread_t *thread = gw_thread_of(conn);
    if (thread && thread->hold.active)
        return s_hold(conn, thread, status, content_type, body, len, extra_name, extra_value);
    char length[32];
    snprintf(length, sizeof length, "%zu", len);
    if (status == 204)
        len = 0;

    mg_response_header_start(conn, status);
    if (status != 204) {
        mg_response_header_add(conn, "Content-Type", content_type, -1);
        mg_response_header_add(conn, "Content-Length", length, -1);
    }
    gw_http_common_headers(conn);
    if (extra_name)
        mg_response_header_add(conn, extra_name, extra_value, -1);
    mg_response_header_send(conn);
    if (len > 0 && strcmp(info->request_method, "HEAD") != 0)
        mg_write(conn, body, len);
    return status;
}

int gw_http_send_error(struct mg_connection *conn, int status, const char *code, const char *field,
                       const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    gw_thread_t *thread = gw_thread_of(conn);
    if (thread)
        snprintf(thread->error_code, sizeof thread->error_code, "%s", code);

    char *text = NULL;
    cJSON *root = cJSON_CreateObject();
    cJSON *error = root ? cJSON_AddObjectToObject(root, "error") : NULL;
    if (error && cJSON_AddStringToObject(error, "code", code) &&
        cJSON_AddStringToObject(error, "message", message) &&
        (!field || !*field || cJSON_AddStringToObject(error, "field", field)))
        text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text) {
        static const char fallback[] =
            "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
        return gw_http_send(conn, 500, GW_JSON_TYPE, fallback, sizeof fallback - 1, NULL, NULL);
    }
    gw_http_send(conn, status, GW_JSON_TYPE, text, strlen(text), NULL, NULL);
    free(text);
    return status;
}

int gw_http_read_body(struct mg_connection *conn, size_t max, char **ret_body, size_t *ret_len)
{
    const struct mg_request_info *info = mg_get_request_info(conn);
    if (info->content_length > 0 && (unsigned long long)info->content_length > max)
        return -EFBIG;
    size_t cap = info->content_length > 0 ? (size_t)info->content_length + 1 : 4096;
    size_t len = 0;
    char *body = malloc(cap);
    if (!body)
        return -ENOMEM;
    for (;;) {
        if (len + 1 >= cap) {
            size_t grown_cap = cap * 2 > max + 2 ? max + 2 : cap * 2;
            char *grown = grown_cap > cap ? realloc(body, grown_cap) : NULL;
            if (!grown) {
                free(body);
                return grown_cap > cap ? -ENOMEM : -EFBIG;
            }
            body = grown;
            cap = grown_cap;
        }
        int n = mg_read(conn, body + len, cap - len - 1);
        if (n < 0) {
            free(body);
            return -EIO;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > max) {
            free(body);
            return -EFBIG;
        }
    }
    body[len] = '\0';
    *ret_body = body;
    *ret_len = len;
    return 0;
}
