/* push: the browser push stream (push.h, docs/push.md). */
#include "push.h"

#include <civetweb.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ncc.pb-c.h"
#include "ncc/bus.h"
#include "ncc/log.h"
#include "ncc/metrics.h"
#include "ncc/roles.h"

#define S_QUEUE_MAX 256       /* pushes waiting for one slow stream; older ones are dropped */
#define S_DATA_MAX  (1 << 20) /* largest push accepted */
#define S_LISTEN_MS 250       /* the listener looks at the stop flag this often */

/* One open stream. */
typedef struct s_stream {
    int64_t user_id;
    unsigned roles;
    char *queue[S_QUEUE_MAX]; /* SSE frames, owned */
    size_t head, count;
    uint64_t dropped; /* frames lost to a full queue (told to the client) */
    pthread_cond_t cond;
    struct s_stream *next;
} s_stream_t;

struct gw_push {
    pthread_mutex_t lock; /* guards streams, stopping and every stream's queue */
    s_stream_t *streams;
    int n_streams;
    bool stopping;
    atomic_bool quit; /* the listener ends */
    atomic_uint_fast64_t delivered;
    int keepalive_ms;
    ncc_listener_t *listener;
    pthread_t thread;
    bool started;
};

/* An SSE event name: [a-z0-9._]{1,64}. */
static bool s_event_ok(const char *event)
{
    size_t len = event ? strlen(event) : 0;
    if (len == 0 || len > 64)
        return false;
    return strspn(event, "abcdefghijklmnopqrstuvwxyz0123456789._") == len;
}

/* An SSE id: printable ASCII without spaces, at most 64. */
static bool s_id_ok(const char *id)
{
    size_t len = strlen(id);
    if (len > 64)
        return false;
    for (const char *p = id; *p; p++)
        if (*p <= ' ' || *p > '~')
            return false;
    return true;
}

/* The frame "id: ..\nevent: ..\ndata: line\n...\n\n" (caller frees); each
 * line of data becomes a data: line, so no text can end the frame early. */
static char *s_frame(const Ncc__Push *push)
{
    const char *data = push->data ? push->data : "{}";
    size_t lines = 1;
    for (const char *p = data; *p; p++)
        lines += *p == '\n' || *p == '\r';
    size_t cap = strlen(data) + lines * 8 + 160;
    char *frame = malloc(cap);
    if (!frame)
        return NULL;
    size_t n = 0;
    if (push->id && *push->id)
        n += (size_t)snprintf(frame + n, cap - n, "id: %s\n", push->id);
    n += (size_t)snprintf(frame + n, cap - n, "event: %s\n", push->event);
    const char *p = data;
    for (;;) {
        size_t len = strcspn(p, "\r\n");
        n += (size_t)snprintf(frame + n, cap - n, "data: %.*s\n", (int)len, p);
        p += len;
        if (!*p)
            break;
        p += (p[0] == '\r' && p[1] == '\n') ? 2 : 1;
    }
    snprintf(frame + n, cap - n, "\n");
    return frame;
}

static bool s_wants(const s_stream_t *stream, const Ncc__Push *push, unsigned roles)
{
    if (stream->roles & roles)
        return true;
    for (size_t i = 0; i < push->n_user_ids; i++)
        if (push->user_ids[i] == stream->user_id)
            return true;
    return false;
}

static void s_deliver(gw_push_t *self, const Ncc__Push *push)
{
    unsigned roles = push->roles && *push->roles ? ncc_roles_parse(push->roles) : 0;
    char *frame = s_frame(push);
    if (!frame)
        return;
    pthread_mutex_lock(&self->lock);
    for (s_stream_t *stream = self->streams; stream; stream = stream->next) {
        if (!s_wants(stream, push, roles))
            continue;
        char *copy = strdup(frame);
        if (!copy)
            continue;
        if (stream->count == S_QUEUE_MAX) {
            free(stream->queue[stream->head]);
            stream->head = (stream->head + 1) % S_QUEUE_MAX;
            stream->count--;
            stream->dropped++;
        }
        stream->queue[(stream->head + stream->count) % S_QUEUE_MAX] = copy;
        stream->count++;
        pthread_cond_signal(&stream->cond);
    }
    pthread_mutex_unlock(&self->lock);
    free(frame);
}

static void *s_listen(void *arg)
{
    gw_push_t *self = arg;
    while (!atomic_load(&self->quit)) {
        Ncc__Envelope *event = NULL;
        int rc = ncc_listener_recv(self->listener, S_LISTEN_MS, &event);
        if (rc <= 0)
            continue;
        size_t len = event->has_payload ? event->payload.len : 0;
        Ncc__Push *push = strcmp(event->type, ncc__push__descriptor.name) == 0 && len <= S_DATA_MAX
                              ? ncc__push__unpack(NULL, len, event->payload.data)
                              : NULL;
        if (!push) {
            ncc_warn("push.malformed", "an event %s from %s is not a push", event->type,
                     event->publisher ? event->publisher : "?");
        } else if (!s_event_ok(push->event) || (push->id && !s_id_ok(push->id))) {
            ncc_warn("push.malformed", "a push from %s has a bad event name or id",
                     event->publisher ? event->publisher : "?");
        } else {
            s_deliver(self, push);
        }
        if (push)
            ncc__push__free_unpacked(push, NULL);
        ncc__envelope__free_unpacked(event, NULL);
    }
    return NULL;
}

gw_push_t *gw_push_new(const gw_settings_t *settings, char *err, size_t errlen)
{
    gw_push_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&self->lock, NULL);
    self->keepalive_ms = settings->values.push_keepalive_ms;
    /* Every service's PUB endpoints, as one list. */
    size_t cap = 1;
    for (size_t i = 0; i < settings->service_count; i++)
        cap += strlen(settings->values.pub[i]) + 1;
    char *endpoints = calloc(1, cap);
    if (!endpoints) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < settings->service_count; i++) {
        if (!*settings->values.pub[i])
            continue;
        if (*endpoints)
            strcat(endpoints, ",");
        strcat(endpoints, settings->values.pub[i]);
    }
    self->listener = ncc_listener_new(endpoints, ncc__push__descriptor.name);
    if (!self->listener) {
        snprintf(err, errlen, "the services' PUB endpoints are malformed: \"%s\"", endpoints);
        free(endpoints);
        goto fail;
    }
    free(endpoints);
    if (pthread_create(&self->thread, NULL, s_listen, self) != 0) {
        snprintf(err, errlen, "cannot start the push listener");
        goto fail;
    }
    self->started = true;
    return self;
fail:
    gw_push_destroy(&self);
    return NULL;
}

void gw_push_stop(gw_push_t *self)
{
    if (!self)
        return;
    pthread_mutex_lock(&self->lock);
    self->stopping = true;
    for (s_stream_t *stream = self->streams; stream; stream = stream->next)
        pthread_cond_signal(&stream->cond);
    pthread_mutex_unlock(&self->lock);
}

void gw_push_destroy(gw_push_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gw_push_t *self = *self_p;
    gw_push_stop(self);
    atomic_store(&self->quit, true);
    if (self->started)
        pthread_join(self->thread, NULL);
    ncc_listener_destroy(&self->listener);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

int gw_push_streams(gw_push_t *self)
{
    pthread_mutex_lock(&self->lock);
    int n = self->n_streams;
    pthread_mutex_unlock(&self->lock);
    return n;
}

uint64_t gw_push_delivered(gw_push_t *self)
{
    return atomic_load(&self->delivered);
}

static bool s_write(struct mg_connection *conn, const char *text)
{
    size_t len = strlen(text);
    return mg_write(conn, text, len) == (int)len;
}

static int64_t s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_deadline(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

int gw_push_serve(gw_push_t *self, gw_sessions_t *sessions, ncc_db_t *db, gw_request_t *req)
{
    struct mg_connection *conn = req->conn;
    s_stream_t *stream = calloc(1, sizeof *stream);
    if (!stream)
        return gw_http_send_error(conn, 500, "internal", NULL, "out of memory");
    stream->user_id = req->session.user_id;
    stream->roles = req->session.roles;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_cond_init(&stream->cond, &attr);
    pthread_condattr_destroy(&attr);

    pthread_mutex_lock(&self->lock);
    if (self->stopping) {
        pthread_mutex_unlock(&self->lock);
        pthread_cond_destroy(&stream->cond);
        free(stream);
        return gw_http_send_error(conn, 503, "service_unavailable", NULL,
                                  "the gateway is shutting down");
    }
    stream->next = self->streams;
    self->streams = stream;
    self->n_streams++;
    ncc_metrics_set(NCC_METRIC_PUSH_STREAMS, self->n_streams);
    pthread_mutex_unlock(&self->lock);

    bool open = gw_http_start_stream(conn, "text/event-stream; charset=utf-8") == 0 &&
                s_write(conn, "retry: 3000\n: connected\n\n");
    const char *reason = open ? NULL : "client gone";
    int64_t checked = s_mono_ms();
    while (open) {
        pthread_mutex_lock(&self->lock);
        if (stream->count == 0 && !self->stopping) {
            struct timespec deadline;
            s_deadline(&deadline, self->keepalive_ms);
            pthread_cond_timedwait(&stream->cond, &self->lock, &deadline);
        }
        if (self->stopping) {
            pthread_mutex_unlock(&self->lock);
            reason = "gateway stopping";
            break;
        }
        char *frames[S_QUEUE_MAX];
        size_t n = 0;
        uint64_t dropped = stream->dropped;
        stream->dropped = 0;
        while (stream->count > 0) {
            frames[n++] = stream->queue[stream->head];
            stream->head = (stream->head + 1) % S_QUEUE_MAX;
            stream->count--;
        }
        pthread_mutex_unlock(&self->lock);

        /* Every keepalive period the session is looked at (without counting
         * as activity), and a quiet stream gets a comment so that proxies
         * keep it open. */
        int64_t now = s_mono_ms();
        if (now - checked >= self->keepalive_ms) {
            checked = now;
            if (gw_session_alive(sessions, db, req->session.id_hash) == 0) {
                s_write(conn, "event: session.ended\ndata: {}\n\n");
                for (size_t i = 0; i < n; i++)
                    free(frames[i]);
                reason = "session ended";
                break;
            }
        }
        if (n == 0) {
            if (!s_write(conn, ": keepalive\n\n")) {
                reason = "client gone";
                break;
            }
            continue;
        }
        if (dropped > 0) {
            char note[96];
            snprintf(note, sizeof note, "event: push.dropped\ndata: {\"count\":%llu}\n\n",
                     (unsigned long long)dropped);
            open = s_write(conn, note);
        }
        for (size_t i = 0; i < n; i++) {
            if (open && s_write(conn, frames[i])) {
                atomic_fetch_add(&self->delivered, 1);
                ncc_metrics_inc(NCC_METRIC_PUSHES_SENT);
            } else
                open = false;
            free(frames[i]);
        }
        if (!open)
            reason = "client gone";
    }

    pthread_mutex_lock(&self->lock);
    for (s_stream_t **p = &self->streams; *p; p = &(*p)->next) {
        if (*p == stream) {
            *p = stream->next;
            break;
        }
    }
    self->n_streams--;
    ncc_metrics_set(NCC_METRIC_PUSH_STREAMS, self->n_streams);
    while (stream->count > 0) {
        free(stream->queue[stream->head]);
        stream->head = (stream->head + 1) % S_QUEUE_MAX;
        stream->count--;
    }
    pthread_mutex_unlock(&self->lock);
    pthread_cond_destroy(&stream->cond);
    free(stream);
    ncc_debug("push.closed", "stream of user %lld closed: %s", (long long)req->session.user_id,
              reason ? reason : "?");
    return 200;
}
