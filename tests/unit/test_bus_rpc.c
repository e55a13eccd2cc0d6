/* Tests for the RPC half of ncc/bus.h: round trip with trace propagation,
 * time-outs and late replies, malformed input dropped and counted while the
 * server goes on, unknown types, handlers that do not answer, and load spread
 * over two servers. Each server runs in its own thread, polling its own
 * ROUTER; each test binds its own tcp://127.0.0.1:* endpoints. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ncc/bus.h"
#include "ncc/log.h"
#include "ncc/metrics.h"

/* A server in a thread. */
typedef struct {
    ncc_rpc_server_t *server; /* made by the test, polled by the thread */
    pthread_t thread;         /* polls until stop */
    atomic_bool stop;         /* set by the test */
    atomic_int handled;       /* Ping handler calls */
    char name[16];            /* answered in Pong.service */
    char seen_trace[64];      /* the log trace id while the last handler ran */
} server_t;

static void s_on_ping(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    server_t *s = arg;
    const Ncc__Ping *ping = (const Ncc__Ping *)request->message;
    const char *text = ping->message ? ping->message : "";
    snprintf(s->seen_trace, sizeof s->seen_trace, "%s", ncc_log_trace() ? ncc_log_trace() : "");
    atomic_fetch_add(&s->handled, 1);
    if (strncmp(text, "slow:", 5) == 0)
        usleep((useconds_t)strtol(text + 5, NULL, 10) * 1000);
    if (strcmp(text, "silent") == 0)
        return;
    Ncc__Pong pong = NCC__PONG__INIT;
    pong.message = (char *)text;
    pong.service = s->name;
    ncc_reply_message(reply, &pong.base);
    /* Only the first answer counts. */
    ncc_reply_error(reply, 500, "internal", NULL, "second answer");
}

static void *s_server_run(void *arg)
{
    server_t *s = arg;
    zpoller_t *poller = zpoller_new(ncc_rpc_server_socket(s->server), NULL);
    zpoller_set_nonstop(poller, true);
    while (!atomic_load(&s->stop)) {
        if (zpoller_wait(poller, 20))
            ncc_rpc_server_process(s->server);
    }
    zpoller_destroy(&poller);
    return NULL;
}

static void server_start(server_t *s, const char *name)
{
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->server = ncc_rpc_server_new("tcp://127.0.0.1:*", name);
    cr_assert_not_null(s->server);
    cr_assert_eq(ncc_rpc_server_on(s->server, &ncc__ping__descriptor, s_on_ping, s), 0);
    cr_assert_eq(ncc_rpc_server_on(s->server, &ncc__ping__descriptor, s_on_ping, s), -EEXIST);
    cr_assert_eq(pthread_create(&s->thread, NULL, s_server_run, s), 0);
}

static void server_stop(server_t *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
    ncc_rpc_server_destroy(&s->server);
    cr_assert_null(s->server);
}

static void setup(void)
{
    ncc_log_init("test_bus_rpc", NCC_LOG_WARN);
}

TestSuite(bus_rpc, .init = setup, .timeout = 60);

/* Pings `text` and returns the Pong's message (caller frees) or NULL. */
static char *s_ping(ncc_rpc_client_t *client, const char *text, int timeout_ms, int *ret_rc)
{
    Ncc__Ping ping = NCC__PING__INIT;
    ping.message = (char *)text;
    ProtobufCMessage *answer = NULL;
    Ncc__Error *error = NULL;
    int rc = ncc_rpc_call_typed(client, NULL, &ping.base, &ncc__pong__descriptor, timeout_ms,
                                &answer, &error);
    if (ret_rc)
        *ret_rc = rc;
    if (error)
        ncc__error__free_unpacked(error, NULL);
    if (rc < 0)
        return NULL;
    char *copy = strdup(((Ncc__Pong *)answer)->message);
    protobuf_c_message_free_unpacked(answer, NULL);
    return copy;
}

Test(bus_rpc, round_trip_carries_trace_and_no_actor)
{
    server_t s;
    server_start(&s, "alpha");
    uint64_t requests = ncc_metrics_get(NCC_METRIC_REQUESTS);
    uint64_t out = ncc_metrics_get(NCC_METRIC_BUS_OUT);
    ncc_rpc_client_t *client = ncc_rpc_client_new(ncc_rpc_server_endpoint(s.server));
    cr_assert_not_null(client);

    Ncc__Ping ping = NCC__PING__INIT;
    ping.message = "hello";
    ncc_ctx_t ctx = {.trace_id = "trace-round-trip", .actor_id = "u1", .actor_role = "operator"};
    Ncc__Envelope *reply = NULL;
    cr_assert_eq(ncc_rpc_call(client, &ctx, &ping.base, 2000, &reply), 0);
    cr_assert_str_eq(reply->type, "ncc.Pong");
    cr_assert_str_eq(reply->trace_id, "trace-round-trip");
    cr_assert_not_null(reply->request_id);
    cr_assert_eq(strlen(reply->request_id), 32);
    cr_assert_null(reply->actor_id);
    cr_assert_null(reply->actor_role);
    Ncc__Pong *pong = ncc__pong__unpack(NULL, reply->payload.len, reply->payload.data);
    cr_assert_not_null(pong);
    cr_assert_str_eq(pong->message, "hello");
    cr_assert_str_eq(pong->service, "alpha");
    ncc__pong__free_unpacked(pong, NULL);
    ncc__envelope__free_unpacked(reply, NULL);
    /* The handler ran with the request's trace id in its log context. */
    cr_assert_str_eq(s.seen_trace, "trace-round-trip");

    /* Without a ctx, the calling thread's trace is carried on. */
    ncc_log_set_trace("outer-trace");
    cr_assert_eq(ncc_rpc_call(client, NULL, &ping.base, 2000, &reply), 0);
    cr_assert_str_eq(reply->trace_id, "outer-trace");
    ncc__envelope__free_unpacked(reply, NULL);
    ncc_log_set_trace(NULL);
    cr_assert_eq(ncc_rpc_call(client, NULL, &ping.base, 2000, &reply), 0);
    cr_assert_eq(strlen(reply->trace_id), 32);
    ncc__envelope__free_unpacked(reply, NULL);

    cr_assert_eq(ncc_metrics_get(NCC_METRIC_REQUESTS), requests + 3);
    /* Three requests and three replies; the server thread counts its send
     * after the client may already have its reply. */
    int64_t deadline = zclock_mono() + 2000;
    while (ncc_metrics_get(NCC_METRIC_BUS_OUT) < out + 6 && zclock_mono() < deadline)
        usleep(1000);
    cr_assert_eq(ncc_metrics_get(NCC_METRIC_BUS_OUT), out + 6);
    ncc_rpc_client_destroy(&client);
    cr_assert_null(client);
    ncc_rpc_client_destroy(&client);
    server_stop(&s);
}

Test(bus_rpc, timeout_then_late_reply_is_ignored)
{
    server_t s;
    server_start(&s, "slowpoke");
    ncc_rpc_client_t *client = ncc_rpc_client_new(ncc_rpc_server_endpoint(s.server));
    cr_assert_not_null(client);
    /* Warm up, so the connection exists before timing anything. */
    int rc = 0;
    char *text = s_ping(client, "warm", 2000, &rc);
    cr_assert_str_eq(text, "warm");
    free(text);

    uint64_t timeouts = ncc_metrics_get(NCC_METRIC_BUS_TIMEOUTS);
    int64_t started = zclock_mono();
    text = s_ping(client, "slow:500", 150, &rc);
    int64_t took = zclock_mono() - started;
    cr_assert_null(text);
    cr_assert_eq(rc, -ETIMEDOUT);
    cr_assert_geq(took, 145);
    cr_assert_lt(took, 150 + 200, "timed out after %lld ms", (long long)took);
    cr_assert_eq(ncc_metrics_get(NCC_METRIC_BUS_TIMEOUTS), timeouts + 1);
    cr_assert_eq(ncc_rpc_client_dropped(client), 0);

    /* The next call first meets the late "slow:500" reply, drops it, and
     * returns its own. */
    text = s_ping(client, "next", 3000, &rc);
    cr_assert_eq(rc, 0);
    cr_assert_str_eq(text, "next");
    free(text);
    cr_assert_eq(ncc_rpc_client_dropped(client), 1);
    ncc_rpc_client_destroy(&client);
    server_stop(&s);
}

Test(bus_rpc, no_server_times_out)
{
    ncc_rpc_client_t *client = ncc_rpc_client_new("tcp://127.0.0.1:9");
    cr_assert_not_null(client);
    int rc = 0;
    int64_t started = zclock_mono();
    char *text = s_ping(client, "anyone", 200, &rc);
    int64_t took = zclock_mono() - started;
    cr_assert_null(text);
    cr_assert_eq(rc, -ETIMEDOUT);
    cr_assert_lt(took, 200 + 200);
    ncc_rpc_client_destroy(&client);
}

Test(bus_rpc, bad_arguments)
{
    cr_assert_null(ncc_rpc_client_new(NULL));
    cr_assert_null(ncc_rpc_client_new(" , "));
    cr_assert_null(ncc_rpc_client_new("nonsense://x"));
    cr_assert_null(ncc_rpc_server_new("nonsense://x", "x"));
    ncc_rpc_server_t *server = ncc_rpc_server_new("tcp://127.0.0.1:*", "x");
    cr_assert_not_null(server);
    /* The port is taken now. */
    cr_assert_null(ncc_rpc_server_new(ncc_rpc_server_endpoint(server), "y"));
    ncc_rpc_client_t *client = ncc_rpc_client_new(ncc_rpc_server_endpoint(server));
    Ncc__Envelope *reply = NULL;
    cr_assert_eq(ncc_rpc_call_raw(client, NULL, NULL, NULL, 0, 100, &reply), -EINVAL);
    cr_assert_eq(ncc_rpc_call_raw(client, NULL, "ncc.Ping", NULL, 3, 100, &reply), -EINVAL);
    cr_assert_eq(ncc_rpc_call_raw(client, NULL, "ncc.Ping", NULL, 0, -1, &reply), -EINVAL);
    ncc_rpc_client_destroy(&client);
    ncc_rpc_server_destroy(&server);
}

/* Sends frames on a raw DEALER. */
static void s_send_frames(zsock_t *dealer, const void *const *data, const size_t *len, int n)
{
    for (int i = 0; i < n; i++) {
        zframe_t *frame = zframe_new(data[i], len[i]);
        cr_assert_eq(zframe_send(&frame, dealer, i + 1 < n ? ZFRAME_MORE : 0), 0);
    }
}

/* Packs an envelope into a malloc'd buffer. */
static uint8_t *s_pack_envelope(const char *type, const char *request_id, const uint8_t *payload,
                                size_t payload_len, size_t *ret_len)
{
    Ncc__Envelope envelope = NCC__ENVELOPE__INIT;
    envelope.type = (char *)type;
    envelope.request_id = (char *)request_id;
    envelope.has_payload = true;
    envelope.payload.data = (uint8_t *)payload;
    envelope.payload.len = payload_len;
    *ret_len = ncc__envelope__get_packed_size(&envelope);
    uint8_t *buf = malloc(*ret_len + 1);
    ncc__envelope__pack(&envelope, buf);
    return buf;
}

Test(bus_rpc, malformed_input_is_dropped_and_counted)
{
    server_t s;
    server_start(&s, "sturdy");
    zsock_t *raw = zsock_new(ZMQ_DEALER);
    cr_assert_not_null(raw);
    zsock_set_linger(raw, 0);
    cr_assert_eq(zsock_connect(raw, "%s", ncc_rpc_server_endpoint(s.server)), 0);
    uint64_t malformed = ncc_metrics_get(NCC_METRIC_BUS_MALFORMED);

    Ncc__Ping ping = NCC__PING__INIT;
    ping.message = "after";
    uint8_t ping_bytes[64];
    size_t ping_len = ncc__ping__pack(&ping, ping_bytes);
    const char *type = "ncc.Ping";
    size_t type_len = strlen(type);
    size_t len = 0;

    /* 1: a single frame. */
    s_send_frames(raw, (const void *[]){type}, (size_t[]){type_len}, 1);
    /* 2: an envelope that does not unpack. */
    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff};
    s_send_frames(raw, (const void *[]){type, garbage}, (size_t[]){type_len, sizeof garbage}, 2);
    /* 3: type frame and envelope type differ. */
    uint8_t *mismatch = s_pack_envelope("ncc.Pong", "r3", ping_bytes, ping_len, &len);
    s_send_frames(raw, (const void *[]){type, mismatch}, (size_t[]){type_len, len}, 2);
    free(mismatch);
    /* 4: a payload that is not a Ping (a string field longer than its bytes). */
    static const uint8_t not_ping[] = {0x0a, 0x05, 'a'};
    uint8_t *bad_payload = s_pack_envelope(type, "r4", not_ping, sizeof not_ping, &len);
    s_send_frames(raw, (const void *[]){type, bad_payload}, (size_t[]){type_len, len}, 2);
    free(bad_payload);
    /* 5: three frames. */
    uint8_t *good = s_pack_envelope(type, "r5", ping_bytes, ping_len, &len);
    s_send_frames(raw, (const void *[]){type, good, good}, (size_t[]){type_len, len, len}, 3);
    free(good);
    /* 6: no request id. */
    uint8_t *anonymous = s_pack_envelope(type, NULL, ping_bytes, ping_len, &len);
    s_send_frames(raw, (const void *[]){type, anonymous}, (size_t[]){type_len, len}, 2);
    free(anonymous);
    /* 7: an empty type frame. */
    uint8_t *untyped = s_pack_envelope(type, "r7", ping_bytes, ping_len, &len);
    s_send_frames(raw, (const void *[]){"", untyped}, (size_t[]){0, len}, 2);
    free(untyped);

    /* Then a good request: it is the first and only thing answered. */
    good = s_pack_envelope(type, "ok-1", ping_bytes, ping_len, &len);
    s_send_frames(raw, (const void *[]){type, good}, (size_t[]){type_len, len}, 2);
    free(good);
    zpoller_t *poller = zpoller_new(raw, NULL);
    cr_assert_not_null(zpoller_wait(poller, 3000), "the server stopped answering");
    zmsg_t *msg = zmsg_recv(raw);
    cr_assert_eq(zmsg_size(msg), 2);
    char *reply_type = zmsg_popstr(msg);
    cr_assert_str_eq(reply_type, "ncc.Pong");
    free(reply_type);
    zframe_t *body = zmsg_pop(msg);
    Ncc__Envelope *reply = ncc__envelope__unpack(NULL, zframe_size(body), zframe_data(body));
    cr_assert_not_null(reply);
    cr_assert_str_eq(reply->request_id, "ok-1");
    ncc__envelope__free_unpacked(reply, NULL);
    zframe_destroy(&body);
    zmsg_destroy(&msg);
    cr_assert_null(zpoller_wait(poller, 200), "a malformed request was answered");

    cr_assert_eq(ncc_metrics_get(NCC_METRIC_BUS_MALFORMED), malformed + 7);
    cr_assert_eq(atomic_load(&s.handled), 1);
    zpoller_destroy(&poller);
    zsock_destroy(&raw);
    server_stop(&s);
}

Test(bus_rpc, unknown_type_gets_error_400)
{
    server_t s;
    server_start(&s, "picky");
    ncc_rpc_client_t *client = ncc_rpc_client_new(ncc_rpc_server_endpoint(s.server));
    uint64_t errors = ncc_metrics_get(NCC_METRIC_ERRORS);

    Ncc__Envelope *reply = NULL;
    cr_assert_eq(ncc_rpc_call_raw(client, NULL, "ncc.NoSuchThing", NULL, 0, 2000, &reply), 0);
    cr_assert_str_eq(reply->type, "ncc.Error");
    Ncc__Error *error = ncc__error__unpack(NULL, reply->payload.len, reply->payload.data);
    cr_assert_not_null(error);
    cr_assert_eq(error->status, 400);
    cr_assert_str_eq(error->code, "unknown_message");
    ncc__error__free_unpacked(error, NULL);
    ncc__envelope__free_unpacked(reply, NULL);

    /* A known message the server has no handler for, through call_typed. */
    Ncc__HealthRequest health = NCC__HEALTH_REQUEST__INIT;
    ProtobufCMessage *answer = NULL;
    error = NULL;
    cr_assert_eq(ncc_rpc_call_typed(client, NULL, &health.base, &ncc__health_reply__descriptor,
                                    2000, &answer, &error),
                 -EPROTO);
    cr_assert_null(answer);
    cr_assert_not_null(error);
    cr_assert_eq(error->status, 400);
    cr_assert_str_eq(error->code, "unknown_message");
    ncc__error__free_unpacked(error, NULL);

    /* The wrong reply type expected: -EPROTO without an error. */
    Ncc__Ping ping = NCC__PING__INIT;
    error = NULL;
    cr_assert_eq(ncc_rpc_call_typed(client, NULL, &ping.base, &ncc__health_reply__descriptor, 2000,
                                    &answer, &error),
                 -EPROTO);
    cr_assert_null(error);
    cr_assert_eq(ncc_metrics_get(NCC_METRIC_ERRORS), errors + 2);
    ncc_rpc_client_destroy(&client);
    server_stop(&s);
}

Test(bus_rpc, handler_without_answer_gets_500)
{
    server_t s;
    server_start(&s, "mute");
    ncc_rpc_client_t *client = ncc_rpc_client_new(ncc_rpc_server_endpoint(s.server));
    Ncc__Ping ping = NCC__PING__INIT;
    ping.message = "silent";
    ProtobufCMessage *answer = NULL;
    Ncc__Error *error = NULL;
    cr_assert_eq(
        ncc_rpc_call_typed(client, NULL, &ping.base, &ncc__pong__descriptor, 2000, &answer, &error),
        -EPROTO);
    cr_assert_not_null(error);
    cr_assert_eq(error->status, 500);
    cr_assert_str_eq(error->code, "internal");
    ncc__error__free_unpacked(error, NULL);
    ncc_rpc_client_destroy(&client);
    server_stop(&s);
}

Test(bus_rpc, two_servers_share_the_load)
{
    server_t a, b;
    server_start(&a, "copy-a");
    server_start(&b, "copy-b");
    char endpoints[256];
    snprintf(endpoints, sizeof endpoints, "%s, %s", ncc_rpc_server_endpoint(a.server),
             ncc_rpc_server_endpoint(b.server));
    ncc_rpc_client_t *client = ncc_rpc_client_new(endpoints);
    cr_assert_not_null(client);
    int calls = 0;
    for (; calls < 40; calls++) {
        int rc = 0;
        char *text = s_ping(client, "share", 2000, &rc);
        cr_assert_eq(rc, 0);
        free(text);
    }
    cr_assert_gt(atomic_load(&a.handled), 0);
    cr_assert_gt(atomic_load(&b.handled), 0);
    cr_assert_eq(atomic_load(&a.handled) + atomic_load(&b.handled), calls);
    ncc_rpc_client_destroy(&client);
    server_stop(&a);
    server_stop(&b);
}
