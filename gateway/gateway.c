/* gateway: listeners, certificate, health server and signals (gateway.h). */
#include "gateway.h"

#include <civetweb.h>
#include <czmq.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "public.h"
#include "survey.h"
#include "http.h"
#include "ncc/crypto.h"
#include "ncc/health.h"
#include "ncc/log.h"
#include "ncc/version.h"
#include "routes.h"
#include "session.h"
#include "tls.h"

struct gw {
    gw_settings_t *settings;    /* borrowed; reloaded on SIGHUP */
    gw_sessions_t *sessions;    /* the session store and its maintenance thread */
    gw_api_t *api;              /* the /api/v1 handler's state */
    struct mg_context *https;   /* TLS listener */
    struct mg_context *http;    /* plain listener behind a TLS edge, or NULL */
    ncc_health_t *health;       /* /healthz /readyz /metrics on its own port */
    bool library;               /* mg_init_library called */
    sigset_t signals;           /* SIGTERM, SIGINT, SIGHUP: received by gw_run */
    pthread_mutex_t ready_lock; /* guards the three flags below and /readyz */
    bool listening;             /* the listeners are up */
    bool sessions_ready;        /* the sessions' schema is migrated */
    bool stopping;              /* SIGTERM: not ready any more */
};

/* /readyz: ready once the listeners are up and the sessions can be used,
 * until the stop. */
static void s_update_ready(gw_t *self)
{
    pthread_mutex_lock(&self->ready_lock);
    const char *reason = self->stopping          ? "stopping"
                         : !self->listening      ? "starting"
                         : !self->sessions_ready ? "sessions database unavailable"
                                                 : NULL;
    if (self->health)
        ncc_health_set_ready(self->health, reason == NULL, reason);
    pthread_mutex_unlock(&self->ready_lock);
}

/* From the session store's maintenance thread. */
static void s_sessions_ready(void *arg)
{
    gw_t *self = arg;
    pthread_mutex_lock(&self->ready_lock);
    self->sessions_ready = true;
    pthread_mutex_unlock(&self->ready_lock);
    s_update_ready(self);
}

/* ---- civetweb callbacks ---------------------------------------------------- */

/* True when the path could make civetweb's "add the trailing slash" redirect
 * point at another host (//host, \\host, encoded slashes) or make nginx and
 * civetweb disagree about the route (backslashes). */
static bool s_path_is_ambiguous(const struct mg_request_info *info)
{
    const char *target = info->request_uri; /* as sent, still %-encoded */
    const char *decoded = info->local_uri_raw;
    if (!target || !decoded || !info->local_uri)
        return true;
    if (strchr(target, '\\') || strchr(decoded, '\\') || strstr(target, "//") ||
        strstr(decoded, "//"))
        return true;
    for (const char *p = target; (p = strchr(p, '%')) != NULL; p++) {
        if ((p[1] == '2' && (p[2] == 'f' || p[2] == 'F')) ||
            (p[1] == '5' && (p[2] == 'c' || p[2] == 'C')))
            return true;
    }
    return false;
}

static int s_begin_request(struct mg_connection *conn)
{
    gw_http_begin(conn);
    const struct mg_request_info *info = mg_get_request_info(conn);
    if (s_path_is_ambiguous(info)) {
        gw_http_send_error(conn, 400, "invalid_path", NULL,
                           "the path holds an encoded or doubled slash or a backslash");
        return 400; /* answered: civetweb sends nothing more */
    }
    /* Outside the API only reading is allowed: no PUT, DELETE or WebDAV on files. */
    bool api = strncmp(info->local_uri, "/api/", 5) == 0;
    if (!api && strcmp(info->request_method, "GET") != 0 &&
        strcmp(info->request_method, "HEAD") != 0 && strncmp(info->local_uri, "/s/", 3) != 0 &&
        strcmp(info->local_uri, "/faq") != 0 && strncmp(info->local_uri, "/faq/", 5) != 0) {
        gw_http_send_error(conn, 405, "method_not_allowed", NULL,
                           "only GET and HEAD are allowed here");
        return 405;
    }
    return 0; /* civetweb goes on: handlers, then static files */
}

static void s_end_request(const struct mg_connection *conn, int status)
{
    gw_http_end(conn, status);
}

static int s_log_message(const struct mg_connection *conn, const char *message)
{
    size_t len = strlen(message);
    while (len > 0 && (message[len - 1] == '\n' || message[len - 1] == '\r'))
        len--;
    ncc_warn("http.civetweb", "%.*s", (int)len, message);
    return 1;
}

/* Worker threads (type 1) get their own state; the master and timer threads
 * handle no requests. */
static void *s_init_thread(const struct mg_context *ctx, int thread_type)
{
    if (thread_type != 1)
        return NULL;
    gw_thread_t *thread = gw_thread_new();
    if (!thread)
        ncc_error("http.thread_init", "out of memory: this worker will answer 500");
    return thread;
}

static void s_exit_thread(const struct mg_context *ctx, int thread_type, void *thread_pointer)
{
    gw_thread_t *thread = thread_pointer;
    gw_thread_destroy(&thread);
}

/* ---- listeners ------------------------------------------------------------------- */

/* True when every item of a listening_ports list is on loopback. */
static bool s_loopback_only(const char *ports)
{
    const char *item = ports;
    while (*item) {
        while (*item == ' ')
            item++;
        bool loop = strncmp(item, "127.", 4) == 0 || strncmp(item, "localhost:", 10) == 0 ||
                    strncmp(item, "[::1]", 5) == 0;
        if (!loop)
            return false;
        item += strcspn(item, ",");
        if (*item == ',')
            item++;
    }
    return true;
}

static struct mg_context *s_start_listener(gw_t *self, const char *ports, bool tls)
{
    static const struct mg_callbacks callbacks = {
        .begin_request = s_begin_request,
        .end_request = s_end_request,
        .log_message = s_log_message,
        .init_ssl = gw_tls_init_ctx,
        .init_thread = s_init_thread,
        .exit_thread = s_exit_thread,
    };
    const gw_settings_values_t *v = &self->settings->values;
    char threads[16], keep_alive[16], request_timeout[16], hsts[16];
    snprintf(threads, sizeof threads, "%d", v->threads);
    snprintf(keep_alive, sizeof keep_alive, "%d", v->keep_alive_ms);
    snprintf(request_timeout, sizeof request_timeout, "%d", v->request_timeout_ms);
    snprintf(hsts, sizeof hsts, "%d", v->hsts_max_age);

    /* clang-format off */
    const char *options[64] = {
        "listening_ports",          ports,
        "num_threads",              threads,
        "enable_keep_alive",        "yes",
        "keep_alive_timeout_ms",    keep_alive,
        "request_timeout_ms",       request_timeout,
        "tcp_nodelay",              "1",
        "document_root",            v->web_root,
        "index_files",              "index.html",
        "enable_directory_listing", "no",
        /* Static files only: no CGI, no server-side includes. */
        "cgi_pattern",              "",
        "ssi_pattern",              "",
        /* No CORS: the client is served from this origin. */
        "access_control_allow_origin",  "",
        "access_control_allow_methods", "",
        "access_control_allow_headers", "",
        "additional_header",        GW_SECURITY_HEADERS,
        /* Revalidate (ETag / Last-Modified) so a new client is seen at once. */
        "static_file_cache_control", "no-cache",
    };
    /* clang-format on */
    size_t n = 0;
    while (options[n])
        n++;
    if (tls) {
        options[n++] = "ssl_certificate";
        options[n++] = v->tls_cert;
        options[n++] = "ssl_protocol_version";
        options[n++] = GW_TLS_PROTOCOL_VERSION;
        options[n++] = "ssl_cipher_list";
        options[n++] = GW_TLS_CIPHERS;
        if (v->hsts_max_age > 0) {
            options[n++] = "strict_transport_security_max_age";
            options[n++] = hsts;
        }
    }
    options[n] = NULL;

    char error_text[256] = "";
    unsigned error_code = 0;
    struct mg_init_data init = {
        .callbacks = &callbacks, .user_data = self, .configuration_options = options};
    struct mg_error_data error = {
        .code = &error_code, .text = error_text, .text_buffer_size = sizeof error_text};
    struct mg_context *ctx = mg_start2(&init, &error);
    if (!ctx) {
        ncc_error("http.listen_failed", "cannot serve %s on %s: %s", tls ? "HTTPS" : "HTTP", ports,
                  error_text[0] ? error_text : "unknown error");
        return NULL;
    }
    mg_set_request_handler(ctx, "/api/v1", gw_api_handle, self->api);
    mg_set_request_handler(ctx, "/healthz", gw_api_healthz, self->api);
    mg_set_request_handler(ctx, "/faq", gw_public_faq, self->api);
    gw_survey_register(ctx, self->api);
    return ctx;
}

/* ---- life cycle ------------------------------------------------------------------ */

static int s_prepare_certificate(const char *path)
{
    bool created = false;
    int rc = gw_tls_ensure_certificate(path, &created);
    if (rc < 0) {
        ncc_error("tls.certificate_failed", "cannot create the certificate %s: %s", path,
                  strerror(-rc));
        return rc;
    }
    if (created)
        ncc_warn("tls.self_signed",
                 "no certificate at %s: wrote a new self-signed one for localhost and 127.0.0.1 "
                 "(set NCC_TLS_CERT for a real one)",
                 path);
    else if (gw_tls_file_too_open(path))
        ncc_warn("tls.key_exposed", "%s holds a private key but is readable by others (chmod 600)",
                 path);
    return 0;
}

gw_t *gw_new(gw_settings_t *settings)
{
    gw_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    pthread_mutex_init(&self->ready_lock, NULL);
    self->settings = settings;
    const gw_settings_values_t *v = &settings->values;
    char err[256];

    /* Signals: every thread started from here on inherits the mask, and
     * gw_run takes them with sigwait; CZMQ must not install its own. */
    zsys_handler_set(NULL);
    sigemptyset(&self->signals);
    sigaddset(&self->signals, SIGTERM);
    sigaddset(&self->signals, SIGINT);
    sigaddset(&self->signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &self->signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    size_t bad_line = 0;
    if (gw_routes_check(gw_routes, &bad_line) < 0) {
        ncc_error("routes.invalid", "route table line %zu (%s %s) is malformed", bad_line,
                  gw_routes[bad_line].method, gw_routes[bad_line].pattern);
        goto fail;
    }
    if (!mg_check_feature(MG_FEATURES_TLS)) {
        ncc_error("tls.unsupported", "this civetweb was built without TLS support");
        goto fail;
    }
    if (!gw_tls_compat_active()) {
        ncc_error("tls.unsupported", "civetweb cannot reach OpenSSL 3 through the gateway's shim "
                                     "(was the executable linked without gateway/module.mk?)");
        goto fail;
    }
    if (s_prepare_certificate(v->tls_cert) < 0)
        goto fail;
    /* Every bus request is signed with the actor it is made for. */
    int key_rc = ncc_actor_key_from_env();
    if (key_rc == -EINVAL) {
        ncc_error("config.invalid", "NCC_BUS_ACTOR_KEY must be 32 bytes in base64");
        goto fail;
    }
    if (key_rc == -ENOKEY)
        ncc_warn("bus.actor_key_missing",
                 "NCC_BUS_ACTOR_KEY is not set: actors on the bus are NOT proven to the services");
    mg_init_library(MG_FEATURES_TLS);
    self->library = true;
    ncc_health_options_t health_options = {.service = "gateway", .listen = v->health_listen};
    self->health = ncc_health_new(&health_options);
    if (!self->health) {
        ncc_error("health.bind_failed", "cannot serve health on %s", v->health_listen);
        goto fail;
    }
    s_update_ready(self);

    gw_sessions_options_t session_options = {
        .database_url = v->database_url,
        .owner_url = v->database_owner_url,
        .retry_max_ms = v->db_retry_max_ms,
        .idle_s = gw_settings_idle_s(v),
        .max_s = gw_settings_max_s(v),
        .on_ready = s_sessions_ready,
        .on_ready_arg = self,
    };
    self->sessions = gw_sessions_new(&session_options);
    if (!self->sessions) {
        ncc_error("session.setup_failed", "cannot start the session store");
        goto fail;
    }
    self->api = gw_api_new(settings, self->sessions, err, sizeof err);
    if (!self->api) {
        ncc_error("config.invalid", "%s", err);
        goto fail;
    }
    gw_http_configure(v->hsts_max_age);

    self->https = s_start_listener(self, settings->https_effective, true);
    if (!self->https)
        goto fail;
    if (v->http_listen) {
        if (!s_loopback_only(v->http_listen))
            ncc_info("http.plain_exposed",
                     "plain HTTP on %s, beyond loopback: only the TLS edge may reach it",
                     v->http_listen);
        self->http = s_start_listener(self, v->http_listen, false);
        if (!self->http)
            goto fail;
    }
    pthread_mutex_lock(&self->ready_lock);
    self->listening = true;
    pthread_mutex_unlock(&self->ready_lock);
    s_update_ready(self);

    char *described = gw_settings_describe(settings);
    ncc_info("gateway.start", "ncc-gateway %s (civetweb %s) on https %s%s%s, health %s; %s",
             NCC_VERSION, mg_version(), settings->https_effective, v->http_listen ? ", http " : "",
             v->http_listen ? v->http_listen : "", v->health_listen, described ? described : "");
    free(described);
    return self;
fail:
    gw_destroy(&self);
    return NULL;
}

static void *s_stop_listener(void *arg)
{
    mg_stop(arg);
    return NULL;
}

/* Under ready_lock, so that the session store's thread never reports to a
 * health server that is going away. */
static void *s_stop_health(void *arg)
{
    gw_t *self = arg;
    pthread_mutex_lock(&self->ready_lock);
    ncc_health_destroy(&self->health);
    pthread_mutex_unlock(&self->ready_lock);
    return NULL;
}

void gw_destroy(gw_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gw_t *self = *self_p;
    /* mg_stop waits for the requests in flight, then joins the workers
     * (whose exit_thread closes their sockets). Each civetweb master thread
     * notices the stop only at its next poll (up to 2 s), so the three
     * servers are stopped side by side rather than one after the other. */
    pthread_t http_stopper, health_stopper;
    bool http_threaded =
        self->http && pthread_create(&http_stopper, NULL, s_stop_listener, self->http) == 0;
    bool health_threaded =
        self->health && pthread_create(&health_stopper, NULL, s_stop_health, self) == 0;
    if (self->https)
        mg_stop(self->https);
    if (http_threaded)
        pthread_join(http_stopper, NULL);
    else if (self->http)
        mg_stop(self->http);
    if (health_threaded)
        pthread_join(health_stopper, NULL);
    else if (self->health)
        s_stop_health(self);
    if (self->library)
        mg_exit_library();
    gw_api_destroy(&self->api);
    /* After the workers, which use it. */
    gw_sessions_destroy(&self->sessions);
    pthread_mutex_destroy(&self->ready_lock);
    free(self);
    *self_p = NULL;
}

static void s_reload(gw_t *self)
{
    char err[256];
    if (gw_settings_reload(self->settings, err, sizeof err) < 0) {
        ncc_error("config.reload_failed", "%s (running configuration kept)", err);
        return;
    }
    const gw_settings_values_t *v = &self->settings->values;
    gw_api_set_limits(self->api, v);
    gw_sessions_set_limits(self->sessions, gw_settings_idle_s(v), gw_settings_max_s(v));
    ncc_log_init("gateway", v->log_level);
    ncc_info("config.reloaded",
             "max body %d bytes, bus timeout %d ms, health timeout %d ms, sessions idle %d s, "
             "at most %d s",
             v->max_body_bytes, v->bus_timeout_ms, v->health_timeout_ms, gw_settings_idle_s(v),
             gw_settings_max_s(v));
}

int gw_run(gw_t *self)
{
    for (;;) {
        int signum = 0;
        if (sigwait(&self->signals, &signum) != 0)
            continue;
        if (signum == SIGHUP) {
            s_reload(self);
            continue;
        }
        ncc_info("gateway.stop", "signal %d: finishing the requests in flight", signum);
        pthread_mutex_lock(&self->ready_lock);
        self->stopping = true;
        pthread_mutex_unlock(&self->ready_lock);
        s_update_ready(self);
        /* A request in flight ends within its bus timeout; a second more for
         * writing the answer. */
        int left = gw_api_drain(self->api, gw_api_longest_request_ms(self->api) + 1000);
        if (left > 0)
            ncc_warn("gateway.drain_incomplete", "%d requests still running at stop", left);
        return 0;
    }
}
