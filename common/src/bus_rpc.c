/* bus_rpc: requests and replies between daemons (ncc/bus.h, docs/bus.md).
 *
 * Framing, the same in both directions:
 *
 *     DEALER (client) sends     [type][envelope]
 *     ROUTER (server) receives  [routing id][type][envelope]
 *     ROUTER (server) sends     [routing id][type][envelope]
 *     DEALER (client) receives  [type][envelope]
 *
 * `type` is the full protobuf name of the payload ("ncc.Ping"; "ncc.Error"
 * for a failed request) and must equal envelope.type; `envelope` is a packed
 * Ncc__Envelope whose payload is the packed message. There is no empty
 * delimiter frame (no REQ/REP peers): the routing id is the only frame ZeroMQ
 * adds, and only the ROUTER sees it. A reply carries the request's
 * request_id and trace_id and no actor.
 *
 * Anything else (a wrong frame count, an envelope that does not unpack, a type
 * frame that differs from envelope.type, a request without request_id, a
 * payload that does not unpack as the registered type) is logged
 * (bus.malformed), counted (ncc_bus_malformed_total) and dropped without a
 * reply; the server goes on. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_internal.h"
#include "ncc/bus.h"
#include "ncc/crypto.h"
#include "ncc/log.h"
#include "ncc/metrics.h"

/* ZeroMQ heartbeats on client connections, so a request is not routed to a
 * copy of a service that vanished without closing its TCP connection. */
#define S_HEARTBEAT_IVL_MS     1000
#define S_HEARTBEAT_TIMEOUT_MS 3000

/* The reply a handler gives is checked against this, leaving room for the
 * envelope around it. */
#define S_MAX_REPLY (NCC_BUS_MAX_MESSAGE - 4096)

/* Requests handled per ncc_rpc_server_process call, so one busy socket does
 * not starve the rest of the loop. */
#define S_MAX_BATCH 1000

/* ---- client ------------------------------------------------------------- */

struct ncc_rpc_client {
    zsock_t *dealer;     /* DEALER connected to every endpoint */
    zpoller_t *poller;   /* waits on dealer */
    uint64_t dropped;    /* replies dropped: late, unknown request id or malformed */
    int send_timeout_ms; /* waiting for a connected peer at most this long; < 0: the call's */
};

static int s_connect_one(void *arg, const char *endpoint)
{
    return zsock_connect((zsock_t *)arg, "%s", endpoint) == 0 ? 0 : -EINVAL;
}

void ncc_rpc_client_set_send_timeout(ncc_rpc_client_t *self, int ms)
{
    if (self)
        self->send_timeout_ms = ms;
}

ncc_rpc_client_t *ncc_rpc_client_new(const char *endpoints)
{
    ncc_rpc_client_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->send_timeout_ms = -1;
    self->dealer = zsock_new(ZMQ_DEALER);
    if (!self->dealer)
        goto fail;
    zsock_set_linger(self->dealer, 0);
    /* Queue only to connected peers: a request for a service that is down
     * waits (up to its timeout) for a connection instead of sitting in a
     * queue for a peer that may never come. */
    zsock_set_immediate(self->dealer, 1);
    zsock_set_maxmsgsize(self->dealer, NCC_BUS_MAX_MESSAGE);
    zsock_set_heartbeat_ivl(self->dealer, S_HEARTBEAT_IVL_MS);
    zsock_set_heartbeat_timeout(self->dealer, S_HEARTBEAT_TIMEOUT_MS);
    /* Before connecting: a CURVE client, or none at all, never plaintext
     * after a failed configuration. */
    if (ncc_bus_curve_apply(self->dealer, false) < 0)
        goto fail;
    if (ncc_bus_endpoints_each(endpoints, s_connect_one, self->dealer) < 0)
        goto fail;
    self->poller = zpoller_new(self->dealer, NULL);
    if (!self->poller)
        goto fail;
    /* A SIGTERM must not cut a call short: the caller drains. */
    zpoller_set_nonstop(self->poller, true);
    return self;
fail:
    ncc_rpc_client_destroy(&self);
    return NULL;
}

void ncc_rpc_client_destroy(ncc_rpc_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ncc_rpc_client_t *self = *self_p;
    zpoller_destroy(&self->poller);
    zsock_destroy(&self->dealer);
    free(self);
    *self_p = NULL;
}

uint64_t ncc_rpc_client_dropped(ncc_rpc_client_t *self)
{
    return self ? self->dropped : 0;
}

/* Milliseconds left until deadline_us (monotonic), rounded up; 0 when past. */
static int s_remaining_ms(int64_t deadline_us)
{
    int64_t left = deadline_us - zclock_usecs();
    if (left <= 0)
        return 0;
    return (int)((left + 999) / 1000);
}

int ncc_rpc_call_raw(ncc_rpc_client_t *self, const ncc_ctx_t *ctx, const char *type,
                     const uint8_t *payload, size_t len, int timeout_ms, Ncc__Envelope **ret_reply)
{
    static const uint8_t empty[1];
    char request_id[33];
    char fresh_trace[33];
    char shown[65];

    if (!self || !type || !*type || strlen(type) > NCC_BUS_MAX_TYPE || (!payload && len > 0) ||
        timeout_ms < 0 || !ret_reply)
        return -EINVAL;

    ncc_bus_random_id(request_id);
    Ncc__Envelope request = NCC__ENVELOPE__INIT;
    request.type = (char *)type;
    request.request_id = request_id;
    request.trace_id = (char *)ncc_bus_trace_for(ctx, fresh_trace);
    request.has_sent_at_us = true;
    request.sent_at_us = ncc_bus_now_us();
    if (ctx && ctx->actor_id)
        request.actor_id = (char *)ctx->actor_id;
    if (ctx && ctx->actor_role)
        request.actor_role = (char *)ctx->actor_role;
    if (ctx && ctx->actor_address)
        request.actor_address = (char *)ctx->actor_address;
    request.payload.len = len;
    request.payload.data = (uint8_t *)(payload ? payload : empty);
    request.has_timeout_ms = true;
    request.timeout_ms = timeout_ms;
    request.has_payload = true;
    /* With a bus actor key, every request proves who it acts for. */
    if (ncc_actor_key_present() && ncc_actor_sign(&request) < 0)
        return -EIO;

    int64_t deadline = zclock_usecs() + (int64_t)timeout_ms * 1000;
    /* With ZMQ_IMMEDIATE the send blocks until some copy is connected. */
    zsock_set_sndtimeo(self->dealer,
                       self->send_timeout_ms >= 0 && self->send_timeout_ms < timeout_ms
                           ? self->send_timeout_ms
                           : timeout_ms);
    int rc = ncc_bus_send(self->dealer, NULL, &request, 0);
    free(request.actor_proof.data);
    if (rc == -EAGAIN)
        goto timeout;
    if (rc < 0)
        return rc;

    for (;;) {
        int wait_ms = s_remaining_ms(deadline);
        if (wait_ms == 0)
            goto timeout;
        if (!zpoller_wait(self->poller, wait_ms)) {
            if (zpoller_expired(self->poller))
                goto timeout;
            return -EIO;
        }
        zmsg_t *msg = zmsg_recv(self->dealer);
        if (!msg)
            return -EIO;
        ncc_metrics_inc(NCC_METRIC_BUS_IN);
        Ncc__Envelope *reply = NULL;
        if (ncc_bus_parse(&msg, false, "rpc client", NULL, &reply) < 0) {
            self->dropped++;
            continue;
        }
        if (!reply->request_id || strcmp(reply->request_id, request_id) != 0) {
            /* The answer to an earlier call that timed out. */
            self->dropped++;
            ncc_debug("bus.late_reply", "dropped a %s reply to another request",
                      ncc_bus_printable(reply->type, shown));
            ncc__envelope__free_unpacked(reply, NULL);
            continue;
        }
        *ret_reply = reply;
        return 0;
    }
timeout:
    ncc_metrics_inc(NCC_METRIC_BUS_TIMEOUTS);
    return -ETIMEDOUT;
}

int ncc_rpc_call(ncc_rpc_client_t *self, const ncc_ctx_t *ctx, const ProtobufCMessage *request,
                 int timeout_ms, Ncc__Envelope **ret_reply)
{
    if (!request)
        return -EINVAL;
    size_t len = protobuf_c_message_get_packed_size(request);
    if (len > NCC_BUS_MAX_MESSAGE)
        return -EMSGSIZE;
    uint8_t *payload = malloc(len + 1);
    if (!payload)
        return -ENOMEM;
    protobuf_c_message_pack(request, payload);
    int rc =
        ncc_rpc_call_raw(self, ctx, request->descriptor->name, payload, len, timeout_ms, ret_reply);
    free(payload);
    return rc;
}

int ncc_rpc_call_typed(ncc_rpc_client_t *self, const ncc_ctx_t *ctx,
                       const ProtobufCMessage *request,
                       const ProtobufCMessageDescriptor *reply_type, int timeout_ms,
                       ProtobufCMessage **ret_message, Ncc__Error **ret_error)
{
    Ncc__Envelope *reply = NULL;
    char shown[65];
    if (!reply_type || !ret_message)
        return -EINVAL;
    if (ret_error)
        *ret_error = NULL;
    int rc = ncc_rpc_call(self, ctx, request, timeout_ms, &reply);
    if (rc < 0)
        return rc;

    size_t len = 0;
    const uint8_t *data = ncc_bus_payload(reply, &len);
    rc = -EPROTO;
    if (strcmp(reply->type, ncc__error__descriptor.name) == 0) {
        Ncc__Error *error = ncc__error__unpack(NULL, len, data);
        if (!error)
            ncc_bus_malformed("rpc client", "ncc.Error payload does not unpack");
        else if (ret_error)
            *ret_error = error;
        else
            ncc__error__free_unpacked(error, NULL);
    } else if (strcmp(reply->type, reply_type->name) == 0) {
        ProtobufCMessage *message = protobuf_c_message_unpack(reply_type, NULL, len, data);
        if (message) {
            *ret_message = message;
            rc = 0;
        } else {
            ncc_bus_malformed("rpc client", "%s reply payload does not unpack",
                              ncc_bus_printable(reply->type, shown));
        }
    }
    ncc__envelope__free_unpacked(reply, NULL);
    return rc;
}

/* ---- server ------------------------------------------------------------- */

typedef struct {
    const ProtobufCMessageDescriptor *type; /* static descriptor */
    ncc_rpc_handler_fn fn;                  /* the handler */
    void *arg;                              /* borrowed, passed to fn */
} s_route_t;

struct ncc_rpc_server {
    zsock_t *router;    /* ROUTER bound to every endpoint */
    char *service;      /* name for logs, owned */
    char *endpoint;     /* first endpoint as bound (port resolved), owned */
    s_route_t *routes;  /* handlers by message type, owned array */
    size_t route_count; /* entries in routes */
};

struct ncc_reply {
    const char *type; /* descriptor name of the answer (static), NULL until answered */
    uint8_t *payload; /* packed answer, owned */
    size_t len;       /* bytes in payload */
    bool is_error;    /* the answer is an ncc.Error */
};

static int s_bind_one(void *arg, const char *endpoint)
{
    ncc_rpc_server_t *self = arg;
    if (zsock_bind(self->router, "%s", endpoint) < 0)
        return -EADDRINUSE;
    if (!self->endpoint) {
        self->endpoint = zsock_last_endpoint(self->router);
        if (!self->endpoint)
            return -ENOMEM;
    }
    return 0;
}

ncc_rpc_server_t *ncc_rpc_server_new(const char *endpoints, const char *service)
{
    ncc_rpc_server_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->service = strdup(service ? service : "ncc");
    self->router = zsock_new(ZMQ_ROUTER);
    if (!self->service || !self->router)
        goto fail;
    zsock_set_maxmsgsize(self->router, NCC_BUS_MAX_MESSAGE);
    /* Replies still queued at shutdown get a moment to leave. */
    zsock_set_linger(self->router, 200);
    if (ncc_bus_curve_apply(self->router, true) < 0)
        goto fail;
    if (ncc_bus_endpoints_each(endpoints, s_bind_one, self) < 0)
        goto fail;
    return self;
fail:
    ncc_rpc_server_destroy(&self);
    return NULL;
}

void ncc_rpc_server_destroy(ncc_rpc_server_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ncc_rpc_server_t *self = *self_p;
    zsock_destroy(&self->router);
    free(self->routes);
    free(self->endpoint);
    free(self->service);
    free(self);
    *self_p = NULL;
}

const char *ncc_rpc_server_endpoint(ncc_rpc_server_t *self)
{
    return self->endpoint;
}

zsock_t *ncc_rpc_server_socket(ncc_rpc_server_t *self)
{
    return self->router;
}

static const s_route_t *s_route_find(ncc_rpc_server_t *self, const char *type)
{
    for (size_t i = 0; i < self->route_count; i++)
        if (strcmp(self->routes[i].type->name, type) == 0)
            return &self->routes[i];
    return NULL;
}

int ncc_rpc_server_on(ncc_rpc_server_t *self, const ProtobufCMessageDescriptor *type,
                      ncc_rpc_handler_fn fn, void *arg)
{
    if (!self || !type || !fn)
        return -EINVAL;
    if (s_route_find(self, type->name))
        return -EEXIST;
    s_route_t *routes = realloc(self->routes, (self->route_count + 1) * sizeof *routes);
    if (!routes)
        return -ENOMEM;
    routes[self->route_count++] = (s_route_t){.type = type, .fn = fn, .arg = arg};
    self->routes = routes;
    return 0;
}

void ncc_reply_message(ncc_reply_t *reply, const ProtobufCMessage *message)
{
    if (!reply || !message || reply->type)
        return; /* the first answer counts */
    size_t len = protobuf_c_message_get_packed_size(message);
    if (len > S_MAX_REPLY) {
        ncc_reply_error(reply, 500, "internal", NULL, "reply of %zu bytes is too large", len);
        return;
    }
    uint8_t *payload = malloc(len + 1);
    if (!payload)
        return; /* unanswered: the server answers 500 */
    protobuf_c_message_pack(message, payload);
    reply->type = message->descriptor->name;
    reply->payload = payload;
    reply->len = len;
    reply->is_error = message->descriptor == &ncc__error__descriptor;
}

void ncc_reply_error(ncc_reply_t *reply, int status, const char *code, const char *field,
                     const char *fmt, ...)
{
    if (!reply || reply->type)
        return;
    char text[512] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(text, sizeof text, fmt, ap);
        va_end(ap);
    }
    Ncc__Error error = NCC__ERROR__INIT;
    error.has_status = true;
    error.status = status;
    error.code = (char *)(code ? code : "internal");
    error.message = text;
    error.field = (char *)field;
    ncc_reply_message(reply, &error.base);
}

/* Sends `reply` for `request` back through `routing` (taken). */
static void s_send_reply(ncc_rpc_server_t *self, zframe_t **routing_p, const Ncc__Envelope *request,
                         const char *trace_id, const ncc_reply_t *reply)
{
    Ncc__Envelope envelope = NCC__ENVELOPE__INIT;
    envelope.type = (char *)reply->type;
    envelope.request_id = request->request_id;
    envelope.trace_id = (char *)trace_id;
    envelope.has_sent_at_us = true;
    envelope.sent_at_us = ncc_bus_now_us();
    envelope.has_payload = true;
    envelope.payload.len = reply->len;
    envelope.payload.data = reply->payload;
    /* A ROUTER never blocks: a reply to a caller that went away is dropped. */
    int rc = ncc_bus_send(self->router, routing_p, &envelope, ZFRAME_DONTWAIT);
    if (rc < 0)
        ncc_warn("bus.reply_failed", "%s: could not send a %s reply: %s", self->service,
                 reply->type, strerror(-rc));
}

/* Handles one received request; takes msg. */
static void s_handle(ncc_rpc_server_t *self, zmsg_t **msg_p)
{
    zframe_t *routing = NULL;
    Ncc__Envelope *request = NULL;
    ProtobufCMessage *message = NULL;
    ncc_reply_t reply = {0};
    char *saved_trace = NULL;
    char fresh_trace[33];
    char shown[65];
    int64_t started = zclock_usecs();

    if (ncc_bus_parse(msg_p, true, self->service, &routing, &request) < 0)
        goto out;
    if (!request->request_id || !*request->request_id) {
        ncc_bus_malformed(self->service, "%s request without request_id",
                          ncc_bus_printable(request->type, shown));
        goto out;
    }
    const s_route_t *route = s_route_find(self, request->type);
    if (route) {
        size_t len = 0;
        const uint8_t *data = ncc_bus_payload(request, &len);
        message = protobuf_c_message_unpack(route->type, NULL, len, data);
        if (!message) {
            ncc_bus_malformed(self->service, "%s payload of %zu bytes does not unpack",
                              route->type->name, len);
            goto out;
        }
    }

    ncc_metrics_inc(NCC_METRIC_REQUESTS);
    const char *trace_id = request->trace_id && *request->trace_id ? request->trace_id : NULL;
    if (!trace_id) {
        ncc_bus_random_id(fresh_trace);
        trace_id = fresh_trace;
    }
    if (ncc_log_trace())
        saved_trace = strdup(ncc_log_trace());
    ncc_log_set_trace(trace_id);

    if (!route) {
        ncc_reply_error(&reply, 400, "unknown_message", NULL, "%s does not handle %s",
                        self->service, ncc_bus_printable(request->type, shown));
    } else {
        ncc_request_t handed = {.envelope = request, .message = message};
        route->fn(route->arg, &handed, &reply);
        if (!reply.type) {
            ncc_warn("bus.no_reply", "%s: the %s handler did not answer", self->service,
                     route->type->name);
            ncc_reply_error(&reply, 500, "internal", NULL, "internal error");
        }
    }
    if (reply.type) {
        if (reply.is_error)
            ncc_metrics_inc(NCC_METRIC_ERRORS);
        s_send_reply(self, &routing, request, trace_id, &reply);
    }
    ncc_metrics_observe((double)(zclock_usecs() - started) / 1e6);
    ncc_log_set_trace(saved_trace);
out:
    free(saved_trace);
    free(reply.payload);
    if (message)
        protobuf_c_message_free_unpacked(message, NULL);
    if (request)
        ncc__envelope__free_unpacked(request, NULL);
    zframe_destroy(&routing);
    zmsg_destroy(msg_p);
}

int ncc_rpc_server_process(ncc_rpc_server_t *self)
{
    int count = 0;
    while (count < S_MAX_BATCH && (zsock_events(self->router) & ZMQ_POLLIN)) {
        zmsg_t *msg = zmsg_recv(self->router);
        if (!msg)
            break;
        count++;
        ncc_metrics_inc(NCC_METRIC_BUS_IN);
        s_handle(self, &msg);
    }
    return count;
}
