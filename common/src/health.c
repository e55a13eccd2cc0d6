/* health: /healthz, /readyz and /metrics on a small civetweb server (two
 * worker threads, no document root). The owning loop publishes readiness with
 * ncc_health_set_ready; the HTTP threads read it under a mutex. */
#include "ncc/health.h"

#include <civetweb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ncc/log.h"

#define S_REASON_MAX 256

struct ncc_health {
    struct mg_context *ctx;    /* owned; the server */
    char *service;             /* owned; the label on /metrics */
    int port;                  /* the port bound (first listening port) */
    pthread_mutex_t lock;      /* guards ready and reason */
    bool ready;                /* published by the owning loop */
    char reason[S_REASON_MAX]; /* why not ready */
};

/* mg_init_library / mg_exit_library are not thread-safe; they count users. */
static pthread_mutex_t s_library_lock = PTHREAD_MUTEX_INITIALIZER;

/* civetweb's own messages (bind failures, socket errors) go to our log
 * instead of stderr. */
static int s_log_message(const struct mg_connection *conn, const char *message)
{
    size_t len = strlen(message);
    while (len > 0 && (message[len - 1] == '\n' || message[len - 1] == '\r'))
        len--;
    ncc_warn("health.civetweb", "%.*s", (int)len, message);
    return 1; /* handled: civetweb prints nothing */
}

static void s_respond(struct mg_connection *conn, int status, const char *content_type,
                      const char *body, bool head, bool allow_header)
{
    char length[32];
    size_t len = body ? strlen(body) : 0;
    snprintf(length, sizeof length, "%zu", len);
    mg_response_header_start(conn, status);
    mg_response_header_add(conn, "Content-Type", content_type, -1);
    mg_response_header_add(conn, "Content-Length", length, -1);
    mg_response_header_add(conn, "Cache-Control", "no-store", -1);
    if (allow_header)
        mg_response_header_add(conn, "Allow", "GET, HEAD", -1);
    mg_response_header_send(conn);
    if (!head && len > 0)
        mg_write(conn, body, len);
}

#define S_TEXT "text/plain; charset=utf-8"

/* Every request comes here: civetweb serves nothing itself. */
static int s_begin_request(struct mg_connection *conn)
{
    ncc_health_t *self = mg_get_user_data(mg_get_context(conn));
    const struct mg_request_info *info = mg_get_request_info(conn);
    const char *uri = info->local_uri ? info->local_uri : "";
    const char *method = info->request_method ? info->request_method : "";
    bool is_get = strcmp(method, "GET") == 0;
    bool head = strcmp(method, "HEAD") == 0;

    enum { HEALTHZ, READYZ, METRICS, OTHER } path = OTHER;
    if (strcmp(uri, "/healthz") == 0)
        path = HEALTHZ;
    else if (strcmp(uri, "/readyz") == 0)
        path = READYZ;
    else if (strcmp(uri, "/metrics") == 0)
        path = METRICS;

    if (path == OTHER) {
        s_respond(conn, 404, S_TEXT, "not found", head, false);
        return 404;
    }
    if (!is_get && !head) {
        s_respond(conn, 405, S_TEXT, "method not allowed", false, true);
        return 405;
    }
    switch (path) {
    case HEALTHZ:
        s_respond(conn, 200, S_TEXT, "ok", head, false);
        return 200;
    case READYZ: {
        char reason[S_REASON_MAX];
        pthread_mutex_lock(&self->lock);
        bool ready = self->ready;
        memcpy(reason, self->reason, sizeof reason);
        pthread_mutex_unlock(&self->lock);
        if (ready) {
            s_respond(conn, 200, S_TEXT, "ready", head, false);
            return 200;
        }
        s_respond(conn, 503, S_TEXT, reason[0] ? reason : "not ready", head, false);
        return 503;
    }
    case METRICS: {
        char *text = ncc_metrics_render(self->service);
        if (!text) {
            s_respond(conn, 500, S_TEXT, "out of memory", head, false);
            return 500;
        }
        s_respond(conn, 200, "text/plain; version=0.0.4; charset=utf-8", text, head, false);
        free(text);
        return 200;
    }
    case OTHER:
        break;
    }
    return 0; /* not reached */
}

ncc_health_t *ncc_health_new(const ncc_health_options_t *options)
{
    if (!options || !options->listen)
        return NULL;
    ncc_health_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    pthread_mutex_init(&self->lock, NULL);
    snprintf(self->reason, sizeof self->reason, "starting");
    self->service = strdup(options->service ? options->service : "");
    if (!self->service)
        goto fail;

    pthread_mutex_lock(&s_library_lock);
    mg_init_library(0);
    pthread_mutex_unlock(&s_library_lock);

    struct mg_callbacks callbacks;
    memset(&callbacks, 0, sizeof callbacks);
    callbacks.begin_request = s_begin_request;
    callbacks.log_message = s_log_message;
    const char *config[] = {
        "listening_ports", options->listen,     "num_threads", "2", "request_timeout_ms",
        "10000",           "enable_keep_alive", "no",          NULL};
    self->ctx = mg_start(&callbacks, self, config);
    if (!self->ctx)
        goto fail_library;

    struct mg_server_port ports[4];
    memset(ports, 0, sizeof ports);
    int n = mg_get_server_ports(self->ctx, 4, ports);
    if (n < 1)
        goto fail_server;
    self->port = ports[0].port;
    ncc_metrics_set(NCC_METRIC_READY, 0);
    return self;

fail_server:
    mg_stop(self->ctx);
    self->ctx = NULL;
fail_library:
    pthread_mutex_lock(&s_library_lock);
    mg_exit_library();
    pthread_mutex_unlock(&s_library_lock);
fail:
    pthread_mutex_destroy(&self->lock);
    free(self->service);
    free(self);
    return NULL;
}

void ncc_health_destroy(ncc_health_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ncc_health_t *self = *self_p;
    if (self->ctx) {
        mg_stop(self->ctx); /* joins the worker threads */
        pthread_mutex_lock(&s_library_lock);
        mg_exit_library();
        pthread_mutex_unlock(&s_library_lock);
    }
    pthread_mutex_destroy(&self->lock);
    free(self->service);
    free(self);
    *self_p = NULL;
}

void ncc_health_set_ready(ncc_health_t *self, bool ready, const char *reason)
{
    pthread_mutex_lock(&self->lock);
    self->ready = ready;
    snprintf(self->reason, sizeof self->reason, "%s", ready ? "" : reason ? reason : "not ready");
    pthread_mutex_unlock(&self->lock);
    ncc_metrics_set(NCC_METRIC_READY, ready ? 1 : 0);
}

int ncc_health_port(ncc_health_t *self)
{
    return self->port;
}
