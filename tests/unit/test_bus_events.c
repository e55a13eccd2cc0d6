/* Tests for the event half of ncc/bus.h against a real PostgreSQL
 * (NCC_DATABASE_URL): the outbox publishes in order with seq 1..n, rolled
 * back events never appear and uncommitted ones leave no gap, replay, late
 * subscribers, missed events recovered on a heartbeat or a gap, duplicates
 * and copies sharing a cursor applied once, failed handlers retried in order,
 * pruning. Each test has its own schema, migrated with ncc_db_migrate.
 *
 * Topology, as in production with two copies of the publishing service:
 * the test thread holds publisher "main" (PUB + flush + heartbeat) and the
 * subscribers; a second thread holds another copy of the publisher serving
 * ncc.EventReplayRequest on its ROUTER, with its own connection. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ncc/bus.h"
#include "ncc/db.h"
#include "ncc/log.h"
#include "ncc/metrics.h"

#define SERVICE "testpub"

static char schema[64];      /* this test's schema */
static const char *url;      /* NCC_DATABASE_URL */
static ncc_db_t *db_write;   /* adds events, inspects tables */
static ncc_db_t *db_pub;     /* the main publisher's connection */
static ncc_publisher_t *pub; /* main publisher: PUB bound, flushes */

/* The copy serving replays in its own thread. */
static struct {
    ncc_db_t *db;
    ncc_publisher_t *publisher;
    ncc_rpc_server_t *server;
    pthread_t thread;
    atomic_bool stop;
} replay;

/* What the test handler does. */
static struct {
    uint64_t fail_seq; /* fail this seq ... */
    int fail_times;    /* ... this many times */
    int calls;         /* handler calls, failed ones included */
} handler;

static ncc_db_t *s_connect(void)
{
    ncc_db_t *db = ncc_db_new(url, schema);
    cr_assert_not_null(db);
    cr_assert_eq(ncc_db_connect(db), 0, "connect: %s", ncc_db_error(db));
    return db;
}

static void *s_replay_run(void *arg)
{
    zpoller_t *poller = zpoller_new(ncc_rpc_server_socket(replay.server), NULL);
    zpoller_set_nonstop(poller, true);
    while (!atomic_load(&replay.stop)) {
        if (zpoller_wait(poller, 20))
            ncc_rpc_server_process(replay.server);
    }
    zpoller_destroy(&poller);
    return NULL;
}

static void setup(void)
{
    ncc_log_init("test_bus_events", NCC_LOG_ERROR);
    url = getenv("NCC_DATABASE_URL");
    cr_assert(url && *url, "NCC_DATABASE_URL is not set (. var/env after scripts/pg.sh start)");
    snprintf(schema, sizeof schema, "test_bus_events_%d", (int)getpid());
    static const ncc_migration_t none[] = {{NULL, NULL}};
    db_write = s_connect();
    cr_assert_eq(ncc_db_migrate(db_write, schema, none), 0, "migrate: %s", ncc_db_error(db_write));
    cr_assert_eq(ncc_db_run(db_write,
                            "create table applied (seq bigint not null, message text not null)", 0,
                            NULL),
                 0);
    db_pub = s_connect();
    pub = ncc_publisher_new(db_pub, SERVICE, "tcp://127.0.0.1:*");
    cr_assert_not_null(pub);

    replay.db = s_connect();
    replay.publisher = ncc_publisher_new(replay.db, SERVICE, "tcp://127.0.0.1:*");
    replay.server = ncc_rpc_server_new("tcp://127.0.0.1:*", SERVICE);
    cr_assert_not_null(replay.publisher);
    cr_assert_not_null(replay.server);
    cr_assert_eq(ncc_publisher_serve_replay(replay.publisher, replay.server), 0);
    cr_assert_eq(ncc_publisher_serve_replay(replay.publisher, replay.server), -EEXIST);
    atomic_store(&replay.stop, false);
    cr_assert_eq(pthread_create(&replay.thread, NULL, s_replay_run, NULL), 0);
}

static void teardown(void)
{
    atomic_store(&replay.stop, true);
    pthread_join(replay.thread, NULL);
    ncc_rpc_server_destroy(&replay.server);
    ncc_publisher_destroy(&replay.publisher);
    ncc_db_destroy(&replay.db);
    ncc_publisher_destroy(&pub);
    ncc_db_destroy(&db_pub);
    ncc_db_rollback(db_write);
    char sql[128];
    snprintf(sql, sizeof sql, "drop schema if exists %s cascade", schema);
    ncc_db_run(db_write, sql, 0, NULL);
    ncc_db_destroy(&db_write);
}

TestSuite(bus_events, .init = setup, .fini = teardown, .timeout = 60);

/* Adds one event (Ping, or Pong when `pong`) carrying `text`, in its own
 * transaction on db. */
static void s_add(ncc_db_t *db, const char *text, bool pong)
{
    cr_assert_eq(ncc_db_begin(db), 0);
    ncc_ctx_t ctx = {.trace_id = "trace-events", .actor_id = "u9"};
    if (pong) {
        Ncc__Pong message = NCC__PONG__INIT;
        message.message = (char *)text;
        cr_assert_eq(ncc_outbox_add(db, &ctx, &message.base), 0);
    } else {
        Ncc__Ping message = NCC__PING__INIT;
        message.message = (char *)text;
        cr_assert_eq(ncc_outbox_add(db, &ctx, &message.base), 0);
    }
    cr_assert_eq(ncc_db_commit(db), 0);
}

/* One text value from a query on db_write. Caller frees. */
static char *s_text(const char *sql)
{
    PGresult *res = ncc_db_exec(db_write, sql, 0, NULL, NULL);
    cr_assert_not_null(res, "%s: %s", sql, ncc_db_error(db_write));
    char *text = strdup(PQgetisnull(res, 0, 0) ? "" : PQgetvalue(res, 0, 0));
    PQclear(res);
    return text;
}

static long s_number(const char *sql)
{
    char *text = s_text(sql);
    long value = strtol(text, NULL, 10);
    free(text);
    return value;
}

/* The messages applied, in order, comma-separated (caller frees). */
static char *s_applied(void)
{
    return s_text("select string_agg(message, ',' order by seq) from applied");
}

static long s_applied_count(void)
{
    return s_number("select count(*) from applied");
}

/* The test handler: records the event in `applied` inside the delivery
 * transaction, or fails as told. */
static int s_on_ping(void *arg, ncc_db_t *db, const Ncc__Envelope *event,
                     const ProtobufCMessage *message)
{
    handler.calls++;
    cr_assert_str_eq(event->type, "ncc.Ping");
    cr_assert_str_eq(event->publisher, SERVICE);
    cr_assert_str_eq(ncc_log_trace(), "trace-events");
    cr_assert(ncc_db_in_transaction(db));
    const Ncc__Ping *ping = (const Ncc__Ping *)message;
    char seq[24];
    snprintf(seq, sizeof seq, "%llu", (unsigned long long)event->seq);
    const char *params[] = {seq, ping->message};
    if (ncc_db_run(db, "insert into applied (seq, message) values ($1, $2)", 2, params) < 0)
        return -EIO;
    if (event->seq == handler.fail_seq && handler.fail_times > 0) {
        handler.fail_times--;
        return -EAGAIN; /* after the insert: it must be rolled back */
    }
    return 0;
}

/* A subscriber to SERVICE's Ping events on `pub_endpoints`, replaying from
 * the replay thread, with its own connection (destroy *ret_db after it). */
static ncc_subscriber_t *s_subscriber(const char *pub_endpoints, ncc_db_t **ret_db)
{
    *ret_db = s_connect();
    ncc_subscriber_t *sub =
        ncc_subscriber_new(*ret_db, SERVICE, pub_endpoints, ncc_rpc_server_endpoint(replay.server));
    cr_assert_not_null(sub);
    cr_assert_eq(ncc_subscriber_on(sub, "ncc.Ping", s_on_ping, NULL), 0);
    return sub;
}

/* Publishes heartbeats until `sub` has one waiting, so its SUB socket is
 * connected and subscribed (PUB drops what it sends before that). */
static void s_wait_connected(ncc_subscriber_t *sub)
{
    zpoller_t *poller = zpoller_new(ncc_subscriber_socket(sub), NULL);
    bool ready = false;
    for (int i = 0; i < 100 && !ready; i++) {
        cr_assert_eq(ncc_publisher_heartbeat(pub), 0);
        ready = zpoller_wait(poller, 50) != NULL;
    }
    zpoller_destroy(&poller);
    cr_assert(ready, "the subscriber never connected");
    usleep(50 * 1000);
}

/* Lets the subscribers process until `want` rows are applied or timeout_ms
 * passes; with `beat`, the main publisher sends a heartbeat every 100 ms.
 * Returns the rows applied. */
static long s_pump(ncc_subscriber_t *const *subs, int n, bool beat, long want, int timeout_ms)
{
    zpoller_t *poller = zpoller_new(NULL);
    for (int i = 0; i < n; i++)
        zpoller_add(poller, ncc_subscriber_socket(subs[i]));
    int64_t deadline = zclock_mono() + timeout_ms;
    int64_t next_beat = 0;
    long applied = s_applied_count();
    while (applied < want && zclock_mono() < deadline) {
        if (beat && zclock_mono() >= next_beat) {
            cr_assert_eq(ncc_publisher_heartbeat(pub), 0);
            next_beat = zclock_mono() + 100;
        }
        zpoller_wait(poller, 20);
        for (int i = 0; i < n; i++)
            ncc_subscriber_process(subs[i]);
        applied = s_applied_count();
    }
    zpoller_destroy(&poller);
    return applied;
}

Test(bus_events, published_in_order_with_seq_1_to_n)
{
    zsock_t *raw = zsock_new(ZMQ_SUB);
    zsock_set_subscribe(raw, "");
    cr_assert_eq(zsock_connect(raw, "%s", ncc_publisher_endpoint(pub)), 0);
    zpoller_t *poller = zpoller_new(raw, NULL);
    bool ready = false;
    for (int i = 0; i < 100 && !ready; i++) {
        cr_assert_eq(ncc_publisher_heartbeat(pub), 0);
        ready = zpoller_wait(poller, 50) != NULL;
    }
    cr_assert(ready);

    cr_assert_eq(ncc_publisher_depth(pub), 0);
    for (int i = 1; i <= 10; i++) {
        char text[16];
        snprintf(text, sizeof text, "e%d", i);
        s_add(db_write, text, i % 3 == 0);
    }
    cr_assert_eq(ncc_publisher_depth(pub), 10);
    uint64_t published = ncc_metrics_get(NCC_METRIC_EVENTS_PUBLISHED);
    cr_assert_eq(ncc_publisher_flush(pub), 10);
    cr_assert_eq(ncc_metrics_get(NCC_METRIC_EVENTS_PUBLISHED), published + 10);
    cr_assert_eq(ncc_publisher_depth(pub), 0);
    cr_assert_eq(ncc_publisher_flush(pub), 0);
    cr_assert_eq(s_number("select last_seq from outbox_state"), 10);

    uint64_t expected = 1;
    while (expected <= 10) {
        cr_assert_not_null(zpoller_wait(poller, 2000), "event %llu never came",
                           (unsigned long long)expected);
        zmsg_t *msg = zmsg_recv(raw);
        cr_assert_eq(zmsg_size(msg), 2);
        char *type = zmsg_popstr(msg);
        zframe_t *body = zmsg_pop(msg);
        Ncc__Envelope *event = ncc__envelope__unpack(NULL, zframe_size(body), zframe_data(body));
        cr_assert_not_null(event);
        cr_assert_str_eq(type, event->type);
        if (strcmp(type, "ncc.Heartbeat") != 0) {
            cr_assert_str_eq(event->publisher, SERVICE);
            cr_assert(event->has_seq);
            cr_assert_eq(event->seq, expected);
            cr_assert_str_eq(event->trace_id, "trace-events");
            cr_assert_str_eq(event->actor_id, "u9");
            cr_assert_str_eq(type, expected % 3 == 0 ? "ncc.Pong" : "ncc.Ping");
            /* Pong and Ping both carry `message` as field 1. */
            Ncc__Ping *ping = ncc__ping__unpack(NULL, event->payload.len, event->payload.data);
            cr_assert_not_null(ping);
            char text[16];
            snprintf(text, sizeof text, "e%llu", (unsigned long long)expected);
            cr_assert_str_eq(ping->message, text);
            ncc__ping__free_unpacked(ping, NULL);
            expected++;
        }
        ncc__envelope__free_unpacked(event, NULL);
        zframe_destroy(&body);
        free(type);
        zmsg_destroy(&msg);
    }
    zpoller_destroy(&poller);
    zsock_destroy(&raw);
}

/* Asks the replay thread directly. */
static Ncc__EventReplayReply *s_replay(uint64_t from, uint32_t max)
{
    ncc_rpc_client_t *client = ncc_rpc_client_new(ncc_rpc_server_endpoint(replay.server));
    Ncc__EventReplayRequest ask = NCC__EVENT_REPLAY_REQUEST__INIT;
    ask.has_from_seq = true;
    ask.from_seq = from;
    ask.has_max = max > 0;
    ask.max = max;
    ProtobufCMessage *answer = NULL;
    cr_assert_eq(ncc_rpc_call_typed(client, NULL, &ask.base, &ncc__event_replay_reply__descriptor,
                                    3000, &answer, NULL),
                 0);
    ncc_rpc_client_destroy(&client);
    return (Ncc__EventReplayReply *)answer;
}

static void s_assert_event(const Ncc__Envelope *event, uint64_t seq, const char *text)
{
    cr_assert_eq(event->seq, seq);
    cr_assert_str_eq(event->publisher, SERVICE);
    Ncc__Ping *ping = ncc__ping__unpack(NULL, event->payload.len, event->payload.data);
    cr_assert_not_null(ping);
    cr_assert_str_eq(ping->message, text);
    ncc__ping__free_unpacked(ping, NULL);
}

Test(bus_events, rolled_back_never_appears_and_uncommitted_leaves_no_gap)
{
    cr_assert_eq(ncc_db_begin(db_write), 0);
    Ncc__Ping ghost = NCC__PING__INIT;
    ghost.message = "ghost";
    cr_assert_eq(ncc_outbox_add(db_write, NULL, &ghost.base), 0);
    ncc_db_rollback(db_write);

    /* An open transaction has added an event (lower id) but not committed. */
    ncc_db_t *slow = s_connect();
    cr_assert_eq(ncc_db_begin(slow), 0);
    Ncc__Ping late = NCC__PING__INIT;
    late.message = "late";
    cr_assert_eq(ncc_outbox_add(slow, NULL, &late.base), 0);
    cr_assert_eq(ncc_publisher_flush(pub), 0);

    s_add(db_write, "first", false);
    cr_assert_eq(ncc_publisher_flush(pub), 1);
    cr_assert_eq(ncc_publisher_depth(pub), 0);
    cr_assert_eq(ncc_db_commit(slow), 0);
    cr_assert_eq(ncc_publisher_depth(pub), 1);
    /* The flush refuses to run inside a transaction of its connection. */
    cr_assert_eq(ncc_db_begin(db_pub), 0);
    cr_assert_eq(ncc_publisher_flush(pub), -EBUSY);
    ncc_db_rollback(db_pub);
    cr_assert_eq(ncc_publisher_flush(pub), 1);
    ncc_db_destroy(&slow);

    cr_assert_eq(s_number("select count(*) from outbox"), 2);
    cr_assert_eq(s_number("select count(*) from outbox where seq is null"), 0);

    Ncc__EventReplayReply *reply = s_replay(1, 0);
    cr_assert_eq(reply->last_seq, 2);
    cr_assert_eq(reply->n_events, 2);
    s_assert_event(reply->events[0], 1, "first");
    s_assert_event(reply->events[1], 2, "late");
    cr_assert_str_eq(reply->events[0]->type, "ncc.Ping");
    protobuf_c_message_free_unpacked(&reply->base, NULL);

    reply = s_replay(2, 0);
    cr_assert_eq(reply->n_events, 1);
    s_assert_event(reply->events[0], 2, "late");
    protobuf_c_message_free_unpacked(&reply->base, NULL);

    reply = s_replay(1, 1);
    cr_assert_eq(reply->n_events, 1);
    cr_assert_eq(reply->last_seq, 2);
    protobuf_c_message_free_unpacked(&reply->base, NULL);

    reply = s_replay(3, 0);
    cr_assert_eq(reply->n_events, 0);
    cr_assert_eq(reply->last_seq, 2);
    protobuf_c_message_free_unpacked(&reply->base, NULL);
}

Test(bus_events, late_subscriber_catches_up_skipping_other_types)
{
    s_add(db_write, "e1", false);
    s_add(db_write, "x1", true);
    s_add(db_write, "e2", false);
    s_add(db_write, "x2", true);
    s_add(db_write, "x3", true);
    s_add(db_write, "e3", false);
    s_add(db_write, "x4", true);
    cr_assert_eq(ncc_publisher_flush(pub), 7);

    ncc_db_t *db = NULL;
    ncc_subscriber_t *sub = s_subscriber(ncc_publisher_endpoint(pub), &db);
    cr_assert_eq(ncc_subscriber_cursor(sub), 0);
    cr_assert_eq(ncc_subscriber_catch_up(sub), 3);
    char *applied = s_applied();
    cr_assert_str_eq(applied, "e1,e2,e3");
    free(applied);
    /* The cursor stepped over the Pong events too. */
    cr_assert_eq(ncc_subscriber_cursor(sub), 7);
    cr_assert_eq(s_number("select last_seq from inbox_cursor where publisher = 'testpub'"), 7);
    cr_assert_eq(ncc_subscriber_catch_up(sub), 0);
    cr_assert_eq(handler.calls, 3);

    /* A new copy of the subscriber starts from the stored cursor. */
    ncc_db_t *db2 = NULL;
    ncc_subscriber_t *again = s_subscriber(ncc_publisher_endpoint(pub), &db2);
    cr_assert_eq(ncc_subscriber_catch_up(again), 0);
    cr_assert_eq(ncc_subscriber_cursor(again), 7);
    cr_assert_eq(handler.calls, 3);
    ncc_subscriber_destroy(&again);
    ncc_db_destroy(&db2);
    ncc_subscriber_destroy(&sub);
    cr_assert_null(sub);
    ncc_db_destroy(&db);
}

/* A subscriber far behind catches up in slices of about 50 ms (ncc_subscriber_behind), so
 * the daemon's loop answers requests between them; slice after slice, every event is applied
 * once and in order. */
Test(bus_events, a_long_catch_up_comes_back_to_the_loop_between_slices)
{
    enum { N = 700 }; /* more than one replay (500) */
    for (int i = 1; i <= N; i++) {
        char text[16];
        snprintf(text, sizeof text, "e%d", i);
        s_add(db_write, text, false);
    }
    int numbered = 0, rc;
    while ((rc = ncc_publisher_flush(pub)) > 0)
        numbered += rc;
    cr_assert_eq(numbered, N);

    ncc_db_t *db = NULL;
    ncc_subscriber_t *sub = s_subscriber(ncc_publisher_endpoint(pub), &db);
    int64_t started = zclock_mono();
    cr_assert_gt(ncc_subscriber_catch_up(sub), 0);
    int64_t first = zclock_mono() - started;
    cr_assert(ncc_subscriber_behind(sub), "one call stops at its slice (%" PRId64 " ms)", first);
    cr_assert_lt(ncc_subscriber_cursor(sub), N);
    int calls = 1;
    while (ncc_subscriber_behind(sub) && calls < 10 * N) {
        cr_assert_geq(ncc_subscriber_catch_up(sub), 0);
        calls++;
    }
    cr_assert_not(ncc_subscriber_behind(sub));
    cr_assert_eq(ncc_subscriber_cursor(sub), N);
    cr_assert_eq(s_applied_count(), N);
    cr_assert_eq(s_number("select count(*) from applied where message <> 'e' || seq"), 0,
                 "each event as published");
    cr_assert_eq(handler.calls, N, "each once");
    ncc_subscriber_destroy(&sub);
    ncc_db_destroy(&db);
}

Test(bus_events, live_events_of_other_types_need_no_replay)
{
    ncc_db_t *db = NULL;
    ncc_subscriber_t *sub = s_subscriber(ncc_publisher_endpoint(pub), &db);
    s_wait_connected(sub);
    cr_assert_eq(s_pump(&sub, 1, false, 1, 100), 0);

    /* Matching and other events interleaved, heard live: the others are stepped over
     * as they come, not taken for gaps (each a replay request to the publisher). */
    uint64_t replayed = ncc_metrics_get(NCC_METRIC_EVENTS_REPLAYED);
    s_add(db_write, "e1", false);
    s_add(db_write, "x1", true);
    s_add(db_write, "x2", true);
    s_add(db_write, "e2", false);
    s_add(db_write, "x3", true);
    cr_assert_eq(ncc_publisher_flush(pub), 5);
    cr_assert_eq(s_pump(&sub, 1, false, 2, 3000), 2);
    s_pump(&sub, 1, false, 3, 200); /* x3 arrives */
    char *applied = s_applied();
    cr_assert_str_eq(applied, "e1,e2");
    free(applied);
    cr_assert_eq(ncc_metrics_get(NCC_METRIC_EVENTS_REPLAYED), replayed);
    cr_assert_eq(ncc_subscriber_cursor(sub), 5);
    /* x3 was stepped over in memory; the heartbeat stores it. */
    cr_assert_eq(s_number("select last_seq from inbox_cursor where publisher = 'testpub'"), 4);
    for (int i = 0; i < 50 && s_number("select last_seq from inbox_cursor where publisher = "
                                       "'testpub'") != 5;
         i++)
        s_pump(&sub, 1, true, 3, 100);
    cr_assert_eq(s_number("select last_seq from inbox_cursor where publisher = 'testpub'"), 5);
    cr_assert_eq(ncc_metrics_get(NCC_METRIC_EVENTS_REPLAYED), replayed);
    cr_assert_eq(handler.calls, 2);

    /* The timer's tick asks no replay of a publisher it hears: an event published where
     * this subscriber does not hear it stays unapplied by the tick ... */
    ncc_db_t *db_other = s_connect();
    ncc_publisher_t *other = ncc_publisher_new(db_other, SERVICE, "tcp://127.0.0.1:*");
    cr_assert_not_null(other);
    s_add(db_write, "e3", false);
    cr_assert_eq(ncc_publisher_flush(other), 1);
    cr_assert_eq(ncc_subscriber_tick(sub), 0);
    cr_assert_eq(handler.calls, 2);
    /* ... while a subscriber that has heard nothing yet replays on its first tick. */
    ncc_db_t *db2 = NULL;
    ncc_subscriber_t *fresh = s_subscriber(ncc_publisher_endpoint(pub), &db2);
    cr_assert_eq(ncc_subscriber_tick(fresh), 1);
    cr_assert_eq(handler.calls, 3);
    cr_assert_eq(ncc_subscriber_cursor(fresh), 6);

    ncc_subscriber_destroy(&fresh);
    ncc_db_destroy(&db2);
    ncc_publisher_destroy(&other);
    ncc_db_destroy(&db_other);
    ncc_subscriber_destroy(&sub);
    ncc_db_destroy(&db);
}

Test(bus_events, missed_events_recovered_on_heartbeat)
{
    ncc_db_t *db = NULL;
    ncc_subscriber_t *sub = s_subscriber(ncc_publisher_endpoint(pub), &db);
    s_wait_connected(sub);
    cr_assert_eq(s_pump(&sub, 1, false, 1, 200), 0);

    /* Another copy of the publisher, whose PUB this subscriber does not
     * hear, numbers and publishes three events. */
    ncc_db_t *db_other = s_connect();
    ncc_publisher_t *other = ncc_publisher_new(db_other, SERVICE, "tcp://127.0.0.1:*");
    cr_assert_not_null(other);
    s_add(db_write, "e1", false);
    s_add(db_write, "e2", false);
    s_add(db_write, "x1", true);
    s_add(db_write, "e3", false);
    cr_assert_eq(ncc_publisher_flush(other), 4);
    cr_assert_eq(s_pump(&sub, 1, false, 3, 300), 0);

    uint64_t replayed = ncc_metrics_get(NCC_METRIC_EVENTS_REPLAYED);
    cr_assert_eq(s_pump(&sub, 1, true, 3, 5000), 3);
    char *applied = s_applied();
    cr_assert_str_eq(applied, "e1,e2,e3");
    free(applied);
    cr_assert_eq(ncc_subscriber_cursor(sub), 4);
    cr_assert_eq(ncc_metrics_get(NCC_METRIC_EVENTS_REPLAYED), replayed + 4);

    ncc_publisher_destroy(&other);
    ncc_db_destroy(&db_other);
    ncc_subscriber_destroy(&sub);
    ncc_db_destroy(&db);
}

Test(bus_events, gap_seen_on_a_live_event_is_filled_by_replay)
{
    ncc_db_t *db = NULL;
    ncc_subscriber_t *sub = s_subscriber(ncc_publisher_endpoint(pub), &db);
    s_wait_connected(sub);
    cr_assert_eq(s_pump(&sub, 1, false, 1, 100), 0);

    ncc_db_t *db_other = s_connect();
    ncc_publisher_t *other = ncc_publisher_new(db_other, SERVICE, "tcp://127.0.0.1:*");
    s_add(db_write, "e1", false);
    s_add(db_write, "e2", false);
    cr_assert_eq(ncc_publisher_flush(other), 2);
    s_add(db_write, "e3", false);
    cr_assert_eq(ncc_publisher_flush(pub), 1);

    /* No heartbeats: only the live seq 3 reveals the gap. */
    cr_assert_eq(s_pump(&sub, 1, false, 3, 3000), 3);
    char *applied = s_applied();
    cr_assert_str_eq(applied, "e1,e2,e3");
    free(applied);
    cr_assert_eq(ncc_subscriber_cursor(sub), 3);

    /* Then in sequence again: applied live. */
    s_add(db_write, "e4", false);
    cr_assert_eq(ncc_publisher_flush(pub), 1);
    cr_assert_eq(s_pump(&sub, 1, false, 4, 3000), 4);
    cr_assert_eq(handler.calls, 4);

    ncc_publisher_destroy(&other);
    ncc_db_destroy(&db_other);
    ncc_subscriber_destroy(&sub);
    ncc_db_destroy(&db);
}

/* Sends a hand-made event (or heartbeat when text is NULL) on a raw PUB. */
static void s_raw_publish(zsock_t *raw, uint64_t seq, const char *text)
{
    uint8_t payload[64];
    size_t len = 0;
    Ncc__Envelope envelope = NCC__ENVELOPE__INIT;
    envelope.publisher = SERVICE;
    if (text) {
        Ncc__Ping ping = NCC__PING__INIT;
        ping.message = (char *)text;
        len = ncc__ping__pack(&ping, payload);
        envelope.type = "ncc.Ping";
        envelope.trace_id = "trace-events";
        envelope.has_seq = true;
        envelope.seq = seq;
    } else {
        Ncc__Heartbeat heartbeat = NCC__HEARTBEAT__INIT;
        heartbeat.has_last_seq = true;
        heartbeat.last_seq = seq;
        len = ncc__heartbeat__pack(&heartbeat, payload);
        envelope.type = "ncc.Heartbeat";
    }
    envelope.has_payload = true;
    envelope.payload.data = payload;
    envelope.payload.len = len;
    zframe_t *type = zframe_from(envelope.type);
    zframe_t *body = zframe_new(NULL, ncc__envelope__get_packed_size(&envelope));
    ncc__envelope__pack(&envelope, zframe_data(body));
    cr_assert_eq(zframe_send(&type, raw, ZFRAME_MORE), 0);
    cr_assert_eq(zframe_send(&body, raw, 0), 0);
}

Test(bus_events, duplicate_delivery_applies_once)
{
    zsock_t *raw = zsock_new(ZMQ_PUB);
    cr_assert_geq(zsock_bind(raw, "tcp://127.0.0.1:*"), 0);
    char *endpoint = zsock_last_endpoint(raw);
    ncc_db_t *db = NULL;
    ncc_subscriber_t *sub = s_subscriber(endpoint, &db);
    zpoller_t *poller = zpoller_new(ncc_subscriber_socket(sub), NULL);
    bool ready = false;
    for (int i = 0; i < 100 && !ready; i++) {
        s_raw_publish(raw, 0, NULL);
        ready = zpoller_wait(poller, 50) != NULL;
    }
    cr_assert(ready);
    usleep(50 * 1000);

    uint64_t applied_metric = ncc_metrics_get(NCC_METRIC_EVENTS_APPLIED);
    s_raw_publish(raw, 1, "e1");
    s_raw_publish(raw, 1, "e1");
    s_raw_publish(raw, 2, "e2");
    s_raw_publish(raw, 1, "e1");
    s_raw_publish(raw, 2, "e2");
    cr_assert_eq(s_pump(&sub, 1, false, 2, 3000), 2);
    /* Give any duplicate a chance to be applied. */
    usleep(100 * 1000);
    ncc_subscriber_process(sub);
    char *applied = s_applied();
    cr_assert_str_eq(applied, "e1,e2");
    free(applied);
    cr_assert_eq(handler.calls, 2);
    cr_assert_eq(ncc_subscriber_cursor(sub), 2);
    cr_assert_eq(ncc_metrics_get(NCC_METRIC_EVENTS_APPLIED), applied_metric + 2);

    /* Malformed events are dropped and counted: no seq, another publisher. */
    uint64_t malformed = ncc_metrics_get(NCC_METRIC_BUS_MALFORMED);
    Ncc__Envelope envelope = NCC__ENVELOPE__INIT;
    envelope.type = "ncc.Ping";
    envelope.publisher = "someone-else";
    envelope.has_seq = true;
    envelope.seq = 3;
    zframe_t *type = zframe_from("ncc.Ping");
    zframe_t *body = zframe_new(NULL, ncc__envelope__get_packed_size(&envelope));
    ncc__envelope__pack(&envelope, zframe_data(body));
    zframe_send(&type, raw, ZFRAME_MORE);
    zframe_send(&body, raw, 0);
    envelope.publisher = SERVICE;
    envelope.has_seq = false;
    type = zframe_from("ncc.Ping");
    body = zframe_new(NULL, ncc__envelope__get_packed_size(&envelope));
    ncc__envelope__pack(&envelope, zframe_data(body));
    zframe_send(&type, raw, ZFRAME_MORE);
    zframe_send(&body, raw, 0);
    int64_t deadline = zclock_mono() + 2000;
    while (ncc_metrics_get(NCC_METRIC_BUS_MALFORMED) < malformed + 2 && zclock_mono() < deadline) {
        zpoller_wait(poller, 20);
        ncc_subscriber_process(sub);
    }
    cr_assert_eq(ncc_metrics_get(NCC_METRIC_BUS_MALFORMED), malformed + 2);
    cr_assert_eq(s_applied_count(), 2);

    zpoller_destroy(&poller);
    ncc_subscriber_destroy(&sub);
    ncc_db_destroy(&db);
    free(endpoint);
    zsock_destroy(&raw);
}

Test(bus_events, two_copies_sharing_a_cursor_apply_each_event_once)
{
    ncc_db_t *db_a = NULL, *db_b = NULL;
    ncc_subscriber_t *subs[2];
    subs[0] = s_subscriber(ncc_publisher_endpoint(pub), &db_a);
    subs[1] = s_subscriber(ncc_publisher_endpoint(pub), &db_b);
    s_wait_connected(subs[0]);
    s_wait_connected(subs[1]);
    s_pump(subs, 2, false, 1, 100);

    for (int i = 1; i <= 6; i++) {
        char text[16];
        snprintf(text, sizeof text, "e%d", i);
        s_add(db_write, text, false);
        cr_assert_eq(ncc_publisher_flush(pub), 1);
    }
    cr_assert_eq(s_pump(subs, 2, false, 6, 5000), 6);
    s_pump(subs, 2, true, 7, 300);
    char *applied = s_applied();
    cr_assert_str_eq(applied, "e1,e2,e3,e4,e5,e6");
    free(applied);
    cr_assert_eq(handler.calls, 6);
    cr_assert_eq(s_number("select count(*) - count(distinct seq) from applied"), 0);
    cr_assert_eq(ncc_subscriber_cursor(subs[0]), 6);
    cr_assert_eq(ncc_subscriber_cursor(subs[1]), 6);

    ncc_subscriber_destroy(&subs[0]);
    ncc_subscriber_destroy(&subs[1]);
    ncc_db_destroy(&db_a);
    ncc_db_destroy(&db_b);
}

/* An in-memory cache in each copy (ncc_service_subscribe_each_copy): a cursor row of each
 * copy's own, so both copies apply every event (tests/chaos/copies.sh found a master change
 * reaching one copy only while the copies shared the cursor). */
Test(bus_events, copies_with_cursors_of_their_own_apply_every_event)
{
    ncc_db_t *db_a = NULL, *db_b = NULL;
    ncc_subscriber_t *subs[2];
    subs[0] = s_subscriber(ncc_publisher_endpoint(pub), &db_a);
    subs[1] = s_subscriber(ncc_publisher_endpoint(pub), &db_b);
    cr_assert_eq(ncc_subscriber_set_cursor_key(subs[0], SERVICE "@a", SERVICE), 0);
    cr_assert_eq(ncc_subscriber_set_cursor_key(subs[1], SERVICE "@b", SERVICE), 0);
    s_wait_connected(subs[0]);
    s_wait_connected(subs[1]);
    s_pump(subs, 2, false, 1, 100);

    for (int i = 1; i <= 4; i++) {
        char text[16];
        snprintf(text, sizeof text, "e%d", i);
        s_add(db_write, text, false);
        cr_assert_eq(ncc_publisher_flush(pub), 1);
    }
    cr_assert_eq(s_pump(subs, 2, true, 8, 5000), 8, "every event in each copy");
    cr_assert_eq(s_number("select count(distinct seq) from applied"), 4);
    cr_assert_eq(s_number("select count(*) from applied group by seq having count(*) <> 2"), 0);
    cr_assert_eq(ncc_subscriber_cursor(subs[0]), 4);
    cr_assert_eq(ncc_subscriber_cursor(subs[1]), 4);
    cr_assert_eq(s_number("select count(*) from inbox_cursor where publisher in ('" SERVICE
                          "@a', '" SERVICE "@b') and last_seq = 4"),
                 2, "a cursor row per copy");
    cr_assert_eq(ncc_subscriber_set_cursor_key(subs[0], "x", NULL), -EINVAL,
                 "the key is set before the first catch-up only");

    ncc_subscriber_destroy(&subs[0]);
    ncc_subscriber_destroy(&subs[1]);
    ncc_db_destroy(&db_a);
    ncc_db_destroy(&db_b);
}

Test(bus_events, failed_handler_is_retried_in_order_and_applied_once)
{
    ncc_db_t *db = NULL;
    ncc_subscriber_t *sub = s_subscriber(ncc_publisher_endpoint(pub), &db);
    s_wait_connected(sub);
    s_pump(&sub, 1, false, 1, 100);

    handler.fail_seq = 2;
    handler.fail_times = 1;
    s_add(db_write, "e1", false);
    s_add(db_write, "e2", false);
    s_add(db_write, "e3", false);
    cr_assert_eq(ncc_publisher_flush(pub), 3);

    /* e1 applied, e2 failed (its insert rolled back), e3 held back. */
    cr_assert_eq(s_pump(&sub, 1, false, 3, 500), 1);
    char *applied = s_applied();
    cr_assert_str_eq(applied, "e1");
    free(applied);
    cr_assert_eq(ncc_subscriber_cursor(sub), 1);
    cr_assert_eq(handler.calls, 2);

    /* The next heartbeat after the retry delay replays e2 and e3. */
    cr_assert_eq(s_pump(&sub, 1, true, 3, 5000), 3);
    applied = s_applied();
    cr_assert_str_eq(applied, "e1,e2,e3");
    free(applied);
    cr_assert_eq(handler.calls, 4);
    cr_assert_eq(ncc_subscriber_cursor(sub), 3);

    ncc_subscriber_destroy(&sub);
    ncc_db_destroy(&db);
}

Test(bus_events, replay_after_pruning_skips_lost_events)
{
    s_add(db_write, "e1", false);
    s_add(db_write, "e2", false);
    cr_assert_eq(ncc_publisher_flush(pub), 2);
    s_add(db_write, "pending", false);
    usleep(20 * 1000);
    /* Only published rows go; the unpublished one stays. */
    cr_assert_eq(ncc_publisher_prune(pub, 0), 2);
    cr_assert_eq(s_number("select count(*) from outbox"), 1);
    cr_assert_eq(ncc_publisher_prune(pub, 3600), 0);
    cr_assert_eq(ncc_publisher_flush(pub), 1);

    ncc_db_t *db = NULL;
    ncc_subscriber_t *sub = s_subscriber(ncc_publisher_endpoint(pub), &db);
    cr_assert_eq(ncc_subscriber_catch_up(sub), 1);
    char *applied = s_applied();
    cr_assert_str_eq(applied, "pending");
    free(applied);
    cr_assert_eq(ncc_subscriber_cursor(sub), 3);
    ncc_subscriber_destroy(&sub);
    ncc_db_destroy(&db);
}

Test(bus_events, replay_unreachable_times_out)
{
    ncc_db_t *db = s_connect();
    ncc_subscriber_t *sub =
        ncc_subscriber_new(db, SERVICE, ncc_publisher_endpoint(pub), "tcp://127.0.0.1:9");
    cr_assert_not_null(sub);
    cr_assert_eq(ncc_subscriber_on(sub, "ncc.Ping", s_on_ping, NULL), 0);
    int64_t started = zclock_mono();
    cr_assert_eq(ncc_subscriber_catch_up(sub), -ETIMEDOUT);
    /* No copy of the publisher is connected: the replay gives up after its short wait for a
     * connection (50 ms), not the whole replay time-out (1 s) that stalled the daemon. */
    cr_assert_lt(zclock_mono() - started, 600);
    /* ... and the timer does not ask again at once: it backs off (1, 2, 4 ... 30 s). */
    started = zclock_mono();
    cr_assert_eq(ncc_subscriber_tick(sub), 0);
    cr_assert_lt(zclock_mono() - started, 600);
    cr_assert_null(ncc_subscriber_new(db, SERVICE, "nonsense://", "tcp://127.0.0.1:9"));
    ncc_subscriber_destroy(&sub);
    ncc_db_destroy(&db);
}

/* A copy of the publishing service writing and flushing in its own thread. */
typedef struct {
    pthread_t thread;
    ncc_db_t *db;
    ncc_publisher_t *publisher;
    int flushed;
    int failures;
} writer_t;

static void *s_writer_run(void *arg)
{
    writer_t *w = arg;
    for (int i = 0; i < 40; i++) {
        Ncc__Ping ping = NCC__PING__INIT;
        ping.message = "busy";
        if (ncc_db_begin(w->db) < 0 || ncc_outbox_add(w->db, NULL, &ping.base) < 0 ||
            ncc_db_commit(w->db) < 0) {
            ncc_db_rollback(w->db);
            w->failures++;
        }
        int n = ncc_publisher_flush(w->publisher);
        if (n < 0)
            w->failures++;
        else
            w->flushed += n;
    }
    return NULL;
}

Test(bus_events, copies_flushing_at_once_number_without_gaps)
{
    writer_t writers[3];
    for (int i = 0; i < 3; i++) {
        memset(&writers[i], 0, sizeof writers[i]);
        writers[i].db = s_connect();
        writers[i].publisher = ncc_publisher_new(writers[i].db, SERVICE, "tcp://127.0.0.1:*");
        cr_assert_not_null(writers[i].publisher);
    }
    for (int i = 0; i < 3; i++)
        cr_assert_eq(pthread_create(&writers[i].thread, NULL, s_writer_run, &writers[i]), 0);
    int flushed = 0;
    for (int i = 0; i < 3; i++) {
        pthread_join(writers[i].thread, NULL);
        cr_assert_eq(writers[i].failures, 0);
        flushed += writers[i].flushed;
        ncc_publisher_destroy(&writers[i].publisher);
        ncc_db_destroy(&writers[i].db);
    }
    /* Every event published exactly once, numbered 1..120 without a hole. */
    cr_assert_eq(flushed, 120);
    char *shape = s_text("select count(*) || ' ' || min(seq) || ' ' || max(seq) || ' ' ||"
                         " count(distinct seq) || ' ' || count(seq) from outbox");
    cr_assert_str_eq(shape, "120 1 120 120 120");
    free(shape);
    cr_assert_eq(s_number("select last_seq from outbox_state"), 120);
}
