/* bus_subscriber: the receiving side of the events (ncc/bus.h, docs/bus.md; the outbox
 * and the publisher are in bus_events.c).
 *
 *   subscriber  SUB on the publisher's PUB endpoints, everything it sends,
 *               and a cursor per publisher in inbox_cursor. seq == cursor+1
 *               is applied when it matches a registered prefix, else stepped
 *               over (in memory, stored with the next applied event or
 *               heartbeat); seq <= cursor is a duplicate; seq > cursor+1, or
 *               a heartbeat ahead of the cursor, means something was missed:
 *               replay from cursor+1, applying the matching events and
 *               stepping the cursor over the others.
 *
 * Each application runs in one transaction that locks the cursor row and
 * re-checks seq > cursor, so copies of a subscribing service sharing the
 * cursor apply each event once. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_internal.h"
#include "ncc/bus.h"
#include "ncc/log.h"
#include "ncc/metrics.h"
#include "ncc/registry.h"

/* The subscriber's replay requests wait this long. */
#define S_REPLAY_TIMEOUT_MS 1000
/* After a failed replay or handler, no automatic catch-up for this long. */
#define S_RETRY_US (1000 * 1000)
/* A publisher that does not answer replays is asked again after 1, 2, 4 ... 30 s; the replay
 * waits at most S_REPLAY_CONNECT_MS for a connection to it. A replay blocks the subscribing
 * daemon: one to a daemon that is down stalled it a second every two before. */
#define S_RETRY_MAX_US      (30 * 1000 * 1000)
#define S_REPLAY_CONNECT_MS 50
/* A catch-up returns to the service's loop after this long (and goes on from its next turn:
 * ncc_subscriber_behind), so a daemon far behind still answers its requests meanwhile. */
#define S_CATCH_UP_SLICE_US (50 * 1000)
/* Messages read per ncc_subscriber_process call. */
#define S_MAX_BATCH 1000

/* ---- subscriber --------------------------------------------------------- */

typedef struct {
    char *prefix;    /* type prefix, owned */
    ncc_event_fn fn; /* the handler */
    void *arg;       /* borrowed, passed to fn */
} s_handler_t;

struct ncc_subscriber {
    ncc_db_t *db;             /* borrowed; used from the owner's thread */
    char *publisher;          /* the publishing service's name, owned */
    char *cursor_key;         /* its row in inbox_cursor (the publisher's name), owned */
    char *seed_key;           /* a missing cursor starts near this row's (NULL: at 0), owned */
    zsock_t *sub;             /* SUB connected to every pub endpoint */
    ncc_rpc_client_t *replay; /* to the publisher's RPC endpoints, owned */
    s_handler_t *handlers;    /* registrations, owned array */
    size_t handler_count;     /* entries in handlers */
    uint64_t cursor;          /* last applied seq, as last read or written */
    bool cursor_unsaved;      /* cursor stepped over events of no interest, not yet stored */
    int64_t heard_us;         /* monotonic: when the publisher was last heard (0: never) */
    int64_t backoff_us;       /* wait before the next replay after failed ones (0: none failed) */
    bool cursor_loaded;       /* cursor was read from inbox_cursor */
    bool blocked;             /* a handler failed: wait for the next catch-up */
    bool behind;              /* a catch-up stopped at its time slice with more to fetch */
    uint32_t ask;             /* events asked per replay (fewer while slices cut batches) */
    int64_t retry_after_us;   /* monotonic: no automatic catch-up before */
    uint64_t reported_behind; /* last_seq last warned about as behind the cursor */
};

static int s_connect_one(void *arg, const char *endpoint)
{
    return zsock_connect((zsock_t *)arg, "%s", endpoint) == 0 ? 0 : -EINVAL;
}

ncc_subscriber_t *ncc_subscriber_new(ncc_db_t *db, const char *publisher, const char *pub_endpoints,
                                     const char *rpc_endpoints)
{
    if (!db || !publisher || !*publisher)
        return NULL;
    ncc_subscriber_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->db = db;
    self->publisher = strdup(publisher);
    self->cursor_key = strdup(publisher);
    self->sub = zsock_new(ZMQ_SUB);
    if (!self->publisher || !self->cursor_key || !self->sub)
        goto fail;
    zsock_set_maxmsgsize(self->sub, NCC_BUS_MAX_MESSAGE);
    zsock_set_linger(self->sub, 0);
    /* Everything the publisher sends, not only the handlers' prefixes: its events are
     * numbered in one sequence, so an event of another type filtered out by the socket
     * looked like a lost one and cost a replay request (which, with the publisher
     * waiting on this service, stalled both until a time-out). */
    zsock_set_subscribe(self->sub, "");
    if (ncc_bus_curve_apply(self->sub, false) < 0)
        goto fail;
    if (ncc_bus_endpoints_each(pub_endpoints, s_connect_one, self->sub) < 0)
        goto fail;
    self->replay = ncc_rpc_client_new(rpc_endpoints);
    if (!self->replay)
        goto fail;
    ncc_rpc_client_set_send_timeout(self->replay, S_REPLAY_CONNECT_MS);
    return self;
fail:
    ncc_subscriber_destroy(&self);
    return NULL;
}

void ncc_subscriber_destroy(ncc_subscriber_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ncc_subscriber_t *self = *self_p;
    ncc_rpc_client_destroy(&self->replay);
    zsock_destroy(&self->sub);
    for (size_t i = 0; i < self->handler_count; i++)
        free(self->handlers[i].prefix);
    free(self->handlers);
    free(self->publisher);
    free(self->cursor_key);
    free(self->seed_key);
    free(self);
    *self_p = NULL;
}

int ncc_subscriber_on(ncc_subscriber_t *self, const char *prefix, ncc_event_fn fn, void *arg)
{
    if (!self || !prefix || !fn)
        return -EINVAL;
    s_handler_t *handlers =
        realloc(self->handlers, (self->handler_count + 1) * sizeof *self->handlers);
    if (!handlers)
        return -ENOMEM;
    self->handlers = handlers;
    char *copy = strdup(prefix);
    if (!copy)
        return -ENOMEM;
    handlers[self->handler_count++] = (s_handler_t){.prefix = copy, .fn = fn, .arg = arg};
    return 0;
}

zsock_t *ncc_subscriber_socket(ncc_subscriber_t *self)
{
    return self->sub;
}

uint64_t ncc_subscriber_cursor(ncc_subscriber_t *self)
{
    return self->cursor;
}

static bool s_matches(ncc_subscriber_t *self, const char *type)
{
    for (size_t i = 0; i < self->handler_count; i++)
        if (strncmp(type, self->handlers[i].prefix, strlen(self->handlers[i].prefix)) == 0)
            return true;
    return false;
}

int ncc_subscriber_set_cursor_key(ncc_subscriber_t *self, const char *key, const char *seed_key)
{
    if (!self || !key || !*key || self->cursor_loaded)
        return -EINVAL;
    char *k = strdup(key), *seed = seed_key ? strdup(seed_key) : NULL;
    if (!k || (seed_key && !seed)) {
        free(k);
        free(seed);
        return -ENOMEM;
    }
    free(self->cursor_key);
    free(self->seed_key);
    self->cursor_key = k;
    self->seed_key = seed;
    return 0;
}

/* The last_seq of row `key` of inbox_cursor into *ret (0 when absent, *ret_found false).
 * 0 or a negative errno. */
static int s_read_cursor(ncc_subscriber_t *self, const char *key, uint64_t *ret, bool *ret_found)
{
    const char *params[] = {key};
    PGresult *res = ncc_db_exec(self->db, "select last_seq from inbox_cursor where publisher = $1",
                                1, params, NULL);
    if (!res)
        return -EIO;
    *ret = 0;
    *ret_found = PQntuples(res) == 1;
    int rc = *ret_found ? ncc_bus_result_u64(res, 0, 0, ret) : 0;
    PQclear(res);
    return rc;
}

/* Reads the cursor from inbox_cursor (0 when absent; near the seed row's when there is
 * one). 0 or -EIO. */
static int s_load_cursor(ncc_subscriber_t *self)
{
    uint64_t cursor = 0;
    bool found = false;
    int rc = s_read_cursor(self, self->cursor_key, &cursor, &found);
    if (rc == 0 && !found && self->seed_key && !self->cursor_loaded) {
        /* A new copy's own cursor: where the copies' shared one is, less a margin (its
         * handlers drop what they have seen; its state was loaded whole at start). */
        rc = s_read_cursor(self, self->seed_key, &cursor, &found);
        cursor = cursor > NCC_SUBSCRIBER_SEED_MARGIN ? cursor - NCC_SUBSCRIBER_SEED_MARGIN : 0;
    }
    if (rc < 0)
        return rc;
    /* The cursor only moves forward; another copy may have moved it. */
    if (cursor > self->cursor || !self->cursor_loaded)
        self->cursor = cursor;
    self->cursor_loaded = true;
    return 0;
}

/* Moves the cursor to at least `seq` without applying anything: every event
 * up to seq is known to be handled or of no interest. 0 or -EIO. */
static int s_advance(ncc_subscriber_t *self, uint64_t seq)
{
    char seq_text[24];
    uint64_t cursor = 0;
    snprintf(seq_text, sizeof seq_text, "%" PRIu64, seq);
    const char *params[] = {self->cursor_key, seq_text};
    if (ncc_bus_query_u64(self->db,
                          "insert into inbox_cursor (publisher, last_seq) values ($1, $2::bigint)"
                          " on conflict (publisher) do update"
                          " set last_seq = greatest(inbox_cursor.last_seq, excluded.last_seq)"
                          " returning last_seq",
                          2, params, &cursor) < 0)
        return -EIO;
    self->cursor = cursor;
    self->cursor_unsaved = false;
    return 0;
}

/* Calls the matching handlers for `event` (whose payload unpacked as
 * `message`) in one transaction with the cursor row locked. 1 when applied,
 * 0 when another copy had applied it, a negative errno when a handler or the
 * database failed (rolled back; the subscriber is blocked). */
static int s_apply(ncc_subscriber_t *self, const Ncc__Envelope *event,
                   const ProtobufCMessage *message)
{
    ncc_db_t *db = self->db;
    char seq_text[24];
    char *saved_trace = NULL;
    uint64_t cursor = 0;
    bool handler_failed = false;
    int rc = -EIO;

    snprintf(seq_text, sizeof seq_text, "%" PRIu64, event->seq);
    const char *params[] = {self->cursor_key, seq_text};
    if (ncc_db_begin(db) < 0)
        goto out;
    if (ncc_db_run(db,
                   "insert into inbox_cursor (publisher, last_seq) values ($1, 0)"
                   " on conflict (publisher) do nothing",
                   1, params) < 0)
        goto out;
    if (ncc_bus_query_u64(db, "select last_seq from inbox_cursor where publisher = $1 for update",
                          1, params, &cursor) < 0)
        goto out;
    if (cursor >= event->seq) {
        /* Another copy of this service applied it meanwhile. */
        rc = ncc_db_commit(db) < 0 ? -EIO : 0;
        if (rc == 0 && cursor > self->cursor)
            self->cursor = cursor;
        goto out;
    }

    if (ncc_log_trace())
        saved_trace = strdup(ncc_log_trace());
    ncc_log_set_trace(event->trace_id);
    rc = 0;
    for (size_t i = 0; i < self->handler_count && rc >= 0; i++) {
        const s_handler_t *handler = &self->handlers[i];
        if (strncmp(event->type, handler->prefix, strlen(handler->prefix)) == 0)
            rc = handler->fn(handler->arg, db, event, message);
    }
    if (rc < 0) {
        handler_failed = true;
        ncc_warn("bus.event_failed", "%s event %" PRIu64 " (%s) failed: %s; retrying later",
                 self->publisher, event->seq, event->type, strerror(-rc));
        ncc_log_set_trace(saved_trace);
        goto out;
    }
    ncc_log_set_trace(saved_trace);
    rc = -EIO;
    if (ncc_db_run(db, "update inbox_cursor set last_seq = $2::bigint where publisher = $1", 2,
                   params) < 0)
        goto out;
    if (ncc_db_commit(db) < 0)
        goto out;
    self->cursor = event->seq;
    self->cursor_unsaved = false;
    ncc_metrics_inc(NCC_METRIC_EVENTS_APPLIED);
    rc = 1;
out:
    if (rc < 0) {
        if (!handler_failed)
            ncc_warn("bus.event_failed",
                     "%s event %" PRIu64 " (%s) not applied: database: %s; retrying later",
                     self->publisher, event->seq, event->type, ncc_db_error(db));
        ncc_db_rollback(db);
        self->blocked = true;
        self->retry_after_us = zclock_usecs() + S_RETRY_US;
    }
    free(saved_trace);
    return rc;
}

/* What to do with an event the subscriber has in hand, in sequence. */
typedef enum {
    S_EVENT_APPLY, /* matching, payload unpacked: *ret_message is set */
    S_EVENT_SKIP,  /* not of interest, or unusable: step the cursor over it */
} s_event_kind_t;

static s_event_kind_t s_classify(ncc_subscriber_t *self, const Ncc__Envelope *event,
                                 ProtobufCMessage **ret_message)
{
    char shown[65];
    if (!s_matches(self, event->type))
        return S_EVENT_SKIP;
    /* A matching event that cannot be read never will be (a replay returns
     * the same bytes): skip it rather than stop the stream behind it. */
    const ProtobufCMessageDescriptor *type = ncc_registry_find(event->type);
    if (!type) {
        ncc_bus_malformed(self->publisher, "event %" PRIu64 " of unknown type %s skipped",
                          event->seq, ncc_bus_printable(event->type, shown));
        return S_EVENT_SKIP;
    }
    size_t len = 0;
    const uint8_t *data = ncc_bus_payload(event, &len);
    ProtobufCMessage *message = protobuf_c_message_unpack(type, NULL, len, data);
    if (!message) {
        ncc_bus_malformed(self->publisher, "event %" PRIu64 " %s does not unpack; skipped",
                          event->seq, type->name);
        return S_EVENT_SKIP;
    }
    *ret_message = message;
    return S_EVENT_APPLY;
}

/* Handles the next event in sequence (seq == cursor+1, or, in a replay,
 * with every event between the cursor and seq known to be skippable).
 * 1 applied, 0 skipped or already applied, negative errno on failure. */
static int s_deliver(ncc_subscriber_t *self, const Ncc__Envelope *event)
{
    ProtobufCMessage *message = NULL;
    if (s_classify(self, event, &message) == S_EVENT_SKIP) {
        /* Stepped over in memory: stored with the next applied event or the next heartbeat
         * (after a restart, a replay steps over it again). A write per event of no interest
         * cost as much as applying one. */
        self->cursor = event->seq;
        self->cursor_unsaved = true;
        return 0;
    }
    int rc = s_apply(self, event, message);
    protobuf_c_message_free_unpacked(message, NULL);
    return rc;
}

/* Asks the publisher for everything after the cursor until caught up with
 * the last_seq it reports. With `known`, `target` is a sequence number
 * already announced (heartbeat, event): nothing is asked when the cursor has
 * reached it. Returns events applied, or a negative errno when none were and
 * something failed. */
static int s_catch_up(ncc_subscriber_t *self, bool known, uint64_t target)
{
    int applied = 0;
    int rc = 0;
    char shown[65];

    self->blocked = false;
    self->behind = false;
    if (s_load_cursor(self) < 0)
        return -EIO;
    if (known && self->cursor >= target)
        return 0;

    int64_t slice_end = zclock_usecs() + S_CATCH_UP_SLICE_US;
    bool sliced = false;
    int in_slice = 0; /* events applied in this slice */
    for (;;) {
        uint64_t before = self->cursor;
        Ncc__EventReplayRequest ask = NCC__EVENT_REPLAY_REQUEST__INIT;
        ask.has_from_seq = true;
        ask.from_seq = before + 1;
        ask.has_max = true;
        ask.max = self->ask ? self->ask : NCC_BUS_REPLAY_ASK;
        ProtobufCMessage *answer = NULL;
        Ncc__Error *error = NULL;
        /* Replays carry personal data: only daemons may ask (role "system"). */
        static const ncc_ctx_t system_ctx = {.actor_id = "svc:subscriber", .actor_role = "system"};
        rc = ncc_rpc_call_typed(self->replay, &system_ctx, &ask.base,
                                &ncc__event_replay_reply__descriptor, S_REPLAY_TIMEOUT_MS, &answer,
                                &error);
        if (rc < 0) {
            if (error) {
                ncc_warn("bus.replay_failed", "%s refused a replay: %d %s", self->publisher,
                         error->status, ncc_bus_printable(error->code, shown));
                ncc__error__free_unpacked(error, NULL);
            }
            self->backoff_us = self->backoff_us ? self->backoff_us * 2 : S_RETRY_US;
            if (self->backoff_us > S_RETRY_MAX_US)
                self->backoff_us = S_RETRY_MAX_US;
            self->retry_after_us = zclock_usecs() + self->backoff_us;
            break;
        }
        self->backoff_us = 0;
        Ncc__EventReplayReply *reply = (Ncc__EventReplayReply *)answer;
        uint64_t last = reply->has_last_seq ? reply->last_seq : 0;
        uint64_t skip_to = 0; /* the cursor may move here without applying */
        uint64_t expected = before + 1;
        for (size_t i = 0; i < reply->n_events; i++) {
            const Ncc__Envelope *event = reply->events[i];
            if (!event->has_seq || !event->type || event->seq < expected)
                continue;
            if (event->publisher && strcmp(event->publisher, self->publisher) != 0) {
                ncc_bus_malformed(self->publisher, "replay returned an event of %s",
                                  ncc_bus_printable(event->publisher, shown));
                continue;
            }
            if (event->seq > expected)
                ncc_error("bus.events_lost",
                          "%s events %" PRIu64 "..%" PRIu64
                          " were pruned from its outbox before this service applied them",
                          self->publisher, expected, event->seq - 1);
            expected = event->seq + 1;
            if (event->seq <= self->cursor)
                continue; /* another copy applied it: the cursor jumped */
            ncc_metrics_inc(NCC_METRIC_EVENTS_REPLAYED);
            ProtobufCMessage *message = NULL;
            if (s_classify(self, event, &message) == S_EVENT_SKIP) {
                skip_to = event->seq;
                continue;
            }
            /* Everything between the cursor and this event is skippable. */
            rc = s_apply(self, event, message);
            protobuf_c_message_free_unpacked(message, NULL);
            if (rc < 0)
                break;
            applied += rc;
            in_slice++;
            if (zclock_usecs() >= slice_end && i + 1 < reply->n_events) {
                /* The rest of this batch is asked again next turn; ask for about what a
                 * slice applies, so little is fetched twice. */
                sliced = true;
                uint32_t fit = (uint32_t)in_slice + (uint32_t)in_slice / 2;
                self->ask = fit < 32 ? 32 : fit > NCC_BUS_REPLAY_ASK ? NCC_BUS_REPLAY_ASK : fit;
                break;
            }
        }
        if (rc >= 0 && reply->n_events == 0 && last > self->cursor) {
            ncc_error("bus.events_lost",
                      "%s events %" PRIu64 "..%" PRIu64
                      " were pruned from its outbox before this service applied them",
                      self->publisher, self->cursor + 1, last);
            skip_to = last;
        }
        if (last < self->cursor && self->reported_behind != last) {
            self->reported_behind = last;
            ncc_warn("bus.publisher_behind",
                     "%s reports last_seq %" PRIu64 " below this service's cursor %" PRIu64
                     " (was its outbox reset?)",
                     self->publisher, last, self->cursor);
        }
        int failed = rc;
        if (skip_to > self->cursor && s_advance(self, skip_to) < 0 && failed >= 0)
            failed = -EIO;
        protobuf_c_message_free_unpacked(answer, NULL);
        rc = failed;
        if (!sliced && self->ask && self->ask < NCC_BUS_REPLAY_ASK)
            self->ask = self->ask * 2 > NCC_BUS_REPLAY_ASK ? NCC_BUS_REPLAY_ASK : self->ask * 2;
        if (rc < 0 || self->cursor >= last || self->cursor == before)
            break;
        if (sliced || zclock_usecs() >= slice_end) {
            self->behind = true;
            break;
        }
    }
    if (rc < 0 && applied == 0)
        return rc;
    return applied;
}

int ncc_subscriber_catch_up(ncc_subscriber_t *self)
{
    if (!self)
        return -EINVAL;
    return s_catch_up(self, false, 0);
}

int ncc_subscriber_tick(ncc_subscriber_t *self)
{
    if (!self)
        return -EINVAL;
    int64_t now = zclock_usecs();
    bool due = !self->cursor_loaded || self->blocked || self->behind || self->heard_us == 0 ||
               now - self->heard_us >= NCC_SUBSCRIBER_QUIET_US;
    if (!due || now < self->retry_after_us)
        return 0;
    return s_catch_up(self, false, 0);
}

bool ncc_subscriber_behind(ncc_subscriber_t *self)
{
    return self && self->behind && !self->blocked;
}

/* True when the loop may start a catch-up on its own now. */
static bool s_may_catch_up(ncc_subscriber_t *self)
{
    return zclock_usecs() >= self->retry_after_us;
}

int ncc_subscriber_process(ncc_subscriber_t *self)
{
    int delivered = 0;
    int failure = 0;
    int count = 0;
    char shown[65];

    if (!self)
        return -EINVAL;
    while (count < S_MAX_BATCH && (zsock_events(self->sub) & ZMQ_POLLIN)) {
        zmsg_t *msg = zmsg_recv(self->sub);
        if (!msg)
            break;
        count++;
        ncc_metrics_inc(NCC_METRIC_BUS_IN);
        Ncc__Envelope *event = NULL;
        if (ncc_bus_parse(&msg, false, self->publisher, NULL, &event) < 0)
            continue;
        int rc = 0;
        if (event->publisher && strcmp(event->publisher, self->publisher) == 0)
            self->heard_us = zclock_usecs();
        if (!event->publisher || strcmp(event->publisher, self->publisher) != 0) {
            ncc_bus_malformed(self->publisher, "%s from publisher '%s'",
                              ncc_bus_printable(event->type, shown),
                              ncc_bus_printable(event->publisher, shown));
        } else if (strcmp(event->type, NCC_BUS_HEARTBEAT_TYPE) == 0) {
            size_t len = 0;
            const uint8_t *data = ncc_bus_payload(event, &len);
            Ncc__Heartbeat *heartbeat = ncc__heartbeat__unpack(NULL, len, data);
            if (!heartbeat) {
                ncc_bus_malformed(self->publisher, "heartbeat does not unpack");
            } else {
                uint64_t last = heartbeat->has_last_seq ? heartbeat->last_seq : 0;
                ncc__heartbeat__free_unpacked(heartbeat, NULL);
                if (self->behind)
                    ; /* the loop's continuation goes on with it (ncc_subscriber_behind) */
                else if ((!self->cursor_loaded || last > self->cursor) && s_may_catch_up(self))
                    rc = s_catch_up(self, true, last);
                else if (self->cursor_unsaved && s_advance(self, self->cursor) < 0)
                    rc = -EIO;
            }
        } else if (!event->has_seq || event->seq == 0) {
            ncc_bus_malformed(self->publisher, "%s event without seq",
                              ncc_bus_printable(event->type, shown));
        } else if (self->blocked) {
            /* Waiting to retry a failed event: this one comes again by replay. */
        } else if (!self->cursor_loaded && s_load_cursor(self) < 0) {
            rc = -EIO;
        } else if (event->seq <= self->cursor) {
            ncc_debug("bus.duplicate_event", "%s event %" PRIu64 " already applied",
                      self->publisher, event->seq);
        } else if (event->seq == self->cursor + 1) {
            rc = s_deliver(self, event);
        } else if (!self->behind && s_may_catch_up(self)) {
            /* A gap: missed, or filtered out by prefix. The replay includes
             * this event. (While behind, the loop's continuation fetches it.) */
            rc = s_catch_up(self, true, event->seq);
        }
        ncc__envelope__free_unpacked(event, NULL);
        if (rc > 0)
            delivered += rc;
        else if (rc < 0)
            failure = rc;
        if (self->behind)
            break; /* back to the loop: requests first, then the next slice */
    }
    return delivered > 0 || failure == 0 ? delivered : failure;
}

/* ---- listener ------------------------------------------------------------------------ */

struct ncc_listener {
    zsock_t *sub;
    zpoller_t *poller;
};

ncc_listener_t *ncc_listener_new(const char *pub_endpoints, const char *prefix)
{
    if (!pub_endpoints || !prefix)
        return NULL;
    ncc_listener_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->sub = zsock_new(ZMQ_SUB);
    if (!self->sub)
        goto fail;
    zsock_set_maxmsgsize(self->sub, NCC_BUS_MAX_MESSAGE);
    zsock_set_linger(self->sub, 0);
    zsock_set_subscribe(self->sub, prefix);
    if (ncc_bus_curve_apply(self->sub, false) < 0 ||
        ncc_bus_endpoints_each(pub_endpoints, s_connect_one, self->sub) < 0)
        goto fail;
    self->poller = zpoller_new(self->sub, NULL);
    if (!self->poller)
        goto fail;
    return self;
fail:
    ncc_listener_destroy(&self);
    return NULL;
}

void ncc_listener_destroy(ncc_listener_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ncc_listener_t *self = *self_p;
    zpoller_destroy(&self->poller);
    zsock_destroy(&self->sub);
    free(self);
    *self_p = NULL;
}

int ncc_listener_recv(ncc_listener_t *self, int timeout_ms, Ncc__Envelope **ret_event)
{
    *ret_event = NULL;
    int64_t deadline = zclock_mono() + timeout_ms;
    for (;;) {
        int64_t left = deadline - zclock_mono();
        if (left < 0)
            left = 0;
        void *ready = zpoller_wait(self->poller, (int)left);
        if (!ready)
            return zpoller_terminated(self->poller) ? -EINTR : 0;
        zmsg_t *msg = zmsg_recv(self->sub);
        if (!msg)
            return -EINTR;
        Ncc__Envelope *event = NULL;
        if (ncc_bus_parse(&msg, false, "listener", NULL, &event) < 0)
            continue;
        if (event->type && strcmp(event->type, NCC_BUS_HEARTBEAT_TYPE) == 0) {
            ncc__envelope__free_unpacked(event, NULL);
            continue;
        }
        *ret_event = event;
        return 1;
    }
}
