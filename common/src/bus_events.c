/* bus_events: events that are never lost (ncc/bus.h, docs/bus.md).
 *
 *   outbox      ncc_outbox_add writes the event into the service's outbox table
 *               in the caller's transaction, so it exists iff the change does.
 *   publisher   ncc_publisher_flush, under pg_advisory_xact_lock shared by every
 *               copy of the service, numbers the committed unnumbered rows
 *               last_seq+1.. (outbox_state), commits, then sends each on PUB as
 *               [type][envelope] with envelope.publisher and envelope.seq set.
 *               Numbers are given only to committed rows, in a transaction that
 *               either commits all of them or none: the sequence has no gaps.
 *               It also answers ncc.EventReplayRequest from the outbox and
 *               publishes ncc.Heartbeat{last_seq}.
 *
 * The subscribers are in bus_subscriber.c. */
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

/* Rows numbered per flush transaction. */
#define S_FLUSH_BATCH 500
/* Events per replay reply: at most this many whatever the subscriber asks. */
#define S_REPLAY_MAX 1000
/* Rows deleted per ncc_publisher_prune call. */
#define S_PRUNE_BATCH 10000

int ncc_bus_result_u64(PGresult *res, int row, int column, uint64_t *ret_value)
{
    if (PQntuples(res) <= row || PQgetisnull(res, row, column))
        return -EIO;
    return ncc_bus_parse_u64(PQgetvalue(res, row, column), ret_value) == 0 ? 0 : -EIO;
}

int ncc_bus_query_u64(ncc_db_t *db, const char *sql, int nparams, const char *const *params,
                      uint64_t *ret_value)
{
    PGresult *res = ncc_db_exec(db, sql, nparams, params, NULL);
    if (!res)
        return -EIO;
    int rc = ncc_bus_result_u64(res, 0, 0, ret_value);
    PQclear(res);
    return rc;
}

/* ---- outbox ------------------------------------------------------------- */

int ncc_outbox_add(ncc_db_t *db, const ncc_ctx_t *ctx, const ProtobufCMessage *event)
{
    char fresh_trace[33];
    if (!db || !event)
        return -EINVAL;
    size_t len = protobuf_c_message_get_packed_size(event);
    if (len > NCC_BUS_MAX_EVENT)
        return -EMSGSIZE;
    uint8_t *packed = malloc(len + 1);
    if (!packed)
        return -ENOMEM;
    protobuf_c_message_pack(event, packed);
    char *hex = ncc_bus_hex_encode(packed, len);
    free(packed);
    if (!hex)
        return -ENOMEM;
    const char *params[] = {
        event->descriptor->name,
        ncc_bus_trace_for(ctx, fresh_trace),
        ctx ? ctx->actor_id : NULL,
        hex,
    };
    int rc = ncc_db_run(db,
                        "insert into outbox (type, trace_id, actor_id, payload)"
                        " values ($1, $2, $3, decode($4, 'hex'))",
                        4, params);
    free(hex);
    return rc < 0 ? -EIO : 0;
}

/* ---- publisher ---------------------------------------------------------- */

struct ncc_publisher {
    ncc_db_t *db;   /* borrowed; used from the owner's thread */
    char *service;  /* publisher name in envelopes and the lock key, owned */
    zsock_t *pub;   /* PUB bound to every endpoint */
    char *endpoint; /* first endpoint as bound (port resolved), owned */
};

static int s_bind_one(void *arg, const char *endpoint)
{
    ncc_publisher_t *self = arg;
    if (zsock_bind(self->pub, "%s", endpoint) < 0)
        return -EADDRINUSE;
    if (!self->endpoint) {
        self->endpoint = zsock_last_endpoint(self->pub);
        if (!self->endpoint)
            return -ENOMEM;
    }
    return 0;
}

ncc_publisher_t *ncc_publisher_new(ncc_db_t *db, const char *service, const char *endpoints)
{
    if (!db || !service || !*service)
        return NULL;
    ncc_publisher_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->db = db;
    self->service = strdup(service);
    self->pub = zsock_new(ZMQ_PUB);
    if (!self->service || !self->pub)
        goto fail;
    zsock_set_maxmsgsize(self->pub, NCC_BUS_MAX_MESSAGE);
    /* Unsent events are not lost: subscribers replay them from the outbox. */
    zsock_set_linger(self->pub, 0);
    if (ncc_bus_curve_apply(self->pub, true) < 0)
        goto fail;
    if (ncc_bus_endpoints_each(endpoints, s_bind_one, self) < 0)
        goto fail;
    return self;
fail:
    ncc_publisher_destroy(&self);
    return NULL;
}

void ncc_publisher_destroy(ncc_publisher_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ncc_publisher_t *self = *self_p;
    zsock_destroy(&self->pub);
    free(self->endpoint);
    free(self->service);
    free(self);
    *self_p = NULL;
}

const char *ncc_publisher_endpoint(ncc_publisher_t *self)
{
    return self->endpoint;
}

/* Fills `event` from row `row` of a result whose columns are seq, type,
 * trace_id, actor_id, hex payload, created_at (us). The strings point into
 * res; *ret_payload is allocated (caller frees). 0 or -EIO / -ENOMEM. */
static int s_row_event(ncc_publisher_t *self, PGresult *res, int row, Ncc__Envelope *event,
                       uint8_t **ret_payload)
{
    uint64_t seq = 0;
    uint64_t created = 0;
    if (ncc_bus_result_u64(res, row, 0, &seq) < 0 || PQgetisnull(res, row, 4))
        return -EIO;
    uint8_t *payload = NULL;
    size_t len = 0;
    int rc = ncc_bus_hex_decode(PQgetvalue(res, row, 4), &payload, &len);
    if (rc < 0)
        return rc == -ENOMEM ? rc : -EIO;
    *event = (Ncc__Envelope)NCC__ENVELOPE__INIT;
    event->type = PQgetvalue(res, row, 1);
    event->trace_id = PQgetisnull(res, row, 2) ? NULL : PQgetvalue(res, row, 2);
    event->actor_id = PQgetisnull(res, row, 3) ? NULL : PQgetvalue(res, row, 3);
    event->publisher = self->service;
    event->has_seq = true;
    event->seq = seq;
    event->has_sent_at_us = true;
    event->sent_at_us =
        ncc_bus_result_u64(res, row, 5, &created) == 0 ? (int64_t)created : ncc_bus_now_us();
    event->has_payload = true;
    event->payload.len = len;
    event->payload.data = payload;
    *ret_payload = payload;
    return 0;
}

/* Numbers up to S_FLUSH_BATCH committed rows in one transaction. 0 with the
 * numbered rows in *ret_rows (caller PQclears; ordered by seq), or -EIO. */
static int s_number_batch(ncc_publisher_t *self, PGresult **ret_rows)
{
    ncc_db_t *db = self->db;
    PGresult *rows = NULL;
    int rc = -EIO;
    char last_text[24];
    char batch_text[16];
    uint64_t last = 0;

    if (ncc_db_begin(db) < 0)
        return -EIO;
    const char *lock_params[] = {self->service};
    if (ncc_db_run(db, "select pg_advisory_xact_lock(hashtext($1::text || '.outbox'))", 1,
                   lock_params) < 0)
        goto out;
    if (ncc_bus_query_u64(db, "select last_seq from outbox_state where id = 1", 0, NULL, &last) < 0)
        goto out;
    snprintf(last_text, sizeof last_text, "%" PRIu64, last);
    snprintf(batch_text, sizeof batch_text, "%d", S_FLUSH_BATCH);
    const char *number_params[] = {last_text, batch_text};
    rows = ncc_db_exec(db,
                       "with pending as ("
                       "  select id, row_number() over (order by id) as n from outbox"
                       "  where seq is null order by id limit $2::int),"
                       " numbered as ("
                       "  update outbox o set seq = $1::bigint + p.n, published_at = now()"
                       "  from pending p where o.id = p.id"
                       "  returning o.seq, o.type, o.trace_id, o.actor_id, o.payload, o.created_at)"
                       " select seq, type, trace_id, actor_id, encode(payload, 'hex'),"
                       "  (extract(epoch from created_at) * 1000000)::bigint"
                       " from numbered order by seq",
                       2, number_params, NULL);
    if (!rows)
        goto out;
    if (PQntuples(rows) > 0) {
        snprintf(last_text, sizeof last_text, "%" PRIu64, last + (uint64_t)PQntuples(rows));
        const char *state_params[] = {last_text};
        if (ncc_db_run(db, "update outbox_state set last_seq = $1::bigint where id = 1", 1,
                       state_params) < 0)
            goto out;
    }
    if (ncc_db_commit(db) < 0)
        goto out;
    *ret_rows = rows;
    rows = NULL;
    rc = 0;
out:
    if (rc < 0)
        ncc_db_rollback(db);
    PQclear(rows);
    return rc;
}

int ncc_publisher_flush(ncc_publisher_t *self)
{
    int published = 0;
    if (!self)
        return -EINVAL;
    if (ncc_db_in_transaction(self->db))
        return -EBUSY;
    for (;;) {
        /* The common case, nothing to do, costs one indexed query. */
        uint64_t pending = 0;
        if (ncc_bus_query_u64(
                self->db, "select count(*) from (select 1 from outbox where seq is null limit 1) p",
                0, NULL, &pending) < 0)
            return published > 0 ? published : -EIO;
        if (pending == 0)
            break;

        PGresult *rows = NULL;
        if (s_number_batch(self, &rows) < 0)
            return published > 0 ? published : -EIO;
        int count = PQntuples(rows);
        for (int i = 0; i < count; i++) {
            Ncc__Envelope event;
            uint8_t *payload = NULL;
            if (s_row_event(self, rows, i, &event, &payload) < 0)
                continue; /* numbered and stored: subscribers will replay it */
            if (ncc_bus_send(self->pub, NULL, &event, ZFRAME_DONTWAIT) == 0)
                ncc_metrics_inc(NCC_METRIC_EVENTS_PUBLISHED);
            free(payload);
        }
        PQclear(rows);
        published += count;
        if (count < S_FLUSH_BATCH)
            break;
    }
    return published;
}

int ncc_publisher_heartbeat(ncc_publisher_t *self)
{
    uint64_t last = 0;
    if (!self)
        return -EINVAL;
    if (ncc_bus_query_u64(self->db, "select last_seq from outbox_state where id = 1", 0, NULL,
                          &last) < 0)
        return -EIO;
    Ncc__Heartbeat heartbeat = NCC__HEARTBEAT__INIT;
    heartbeat.has_last_seq = true;
    heartbeat.last_seq = last;
    uint8_t payload[16];
    size_t len = ncc__heartbeat__pack(&heartbeat, payload);

    Ncc__Envelope envelope = NCC__ENVELOPE__INIT;
    envelope.type = (char *)NCC_BUS_HEARTBEAT_TYPE;
    envelope.publisher = self->service;
    envelope.has_sent_at_us = true;
    envelope.sent_at_us = ncc_bus_now_us();
    envelope.has_payload = true;
    envelope.payload.len = len;
    envelope.payload.data = payload;
    return ncc_bus_send(self->pub, NULL, &envelope, ZFRAME_DONTWAIT) == 0 ? 0 : -EIO;
}

int64_t ncc_publisher_depth(ncc_publisher_t *self)
{
    uint64_t depth = 0;
    if (!self)
        return -EINVAL;
    if (ncc_bus_query_u64(self->db, "select count(*) from outbox where seq is null", 0, NULL,
                          &depth) < 0)
        return -EIO;
    ncc_metrics_set(NCC_METRIC_OUTBOX_DEPTH, (int64_t)depth);
    return (int64_t)depth;
}

int64_t ncc_publisher_prune(ncc_publisher_t *self, int64_t older_than_seconds)
{
    char age[24];
    char batch[16];
    if (!self || older_than_seconds < 0)
        return -EINVAL;
    snprintf(age, sizeof age, "%" PRId64, older_than_seconds);
    snprintf(batch, sizeof batch, "%d", S_PRUNE_BATCH);
    const char *params[] = {age, batch};
    PGresult *res = ncc_db_exec(self->db,
                                "delete from outbox where id in ("
                                " select id from outbox where seq is not null"
                                " and published_at < now() - make_interval(secs => $1::bigint)"
                                " order by id limit $2::int)",
                                2, params, NULL);
    if (!res)
        return -EIO;
    uint64_t deleted = 0;
    int rc = ncc_bus_parse_u64(PQcmdTuples(res), &deleted);
    PQclear(res);
    return rc < 0 ? -EIO : (int64_t)deleted;
}

/* Answers EventReplayRequest{from_seq, max} with the numbered events from
 * from_seq on, in order, and last_seq. */
void ncc_publisher_on_replay(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    ncc_publisher_t *self = arg;
    const Ncc__EventReplayRequest *ask = (const Ncc__EventReplayRequest *)request->message;
    PGresult *rows = NULL;
    Ncc__Envelope *events = NULL;
    Ncc__Envelope **pointers = NULL;
    uint8_t **payloads = NULL;
    int count = 0;
    uint64_t last = 0;
    char from_text[24];
    char last_text[24];
    char max_text[16];

    uint64_t from = ask->has_from_seq && ask->from_seq > 0 ? ask->from_seq : 1;
    uint32_t max = ask->has_max && ask->max > 0 ? ask->max : NCC_BUS_REPLAY_ASK;
    if (max > S_REPLAY_MAX)
        max = S_REPLAY_MAX;
    if (from > INT64_MAX) {
        ncc_reply_error(reply, 400, "invalid_field", "from_seq", "from_seq out of range");
        return;
    }
    /* last_seq first, and events only up to it, so the reply is consistent
     * even when a flush commits in between. */
    if (ncc_bus_query_u64(self->db, "select last_seq from outbox_state where id = 1", 0, NULL,
                          &last) < 0)
        goto unavailable;
    snprintf(from_text, sizeof from_text, "%" PRIu64, from);
    snprintf(last_text, sizeof last_text, "%" PRIu64, last);
    snprintf(max_text, sizeof max_text, "%" PRIu32, max);
    const char *params[] = {from_text, last_text, max_text};
    rows = ncc_db_exec(self->db,
                       "select seq, type, trace_id, actor_id, encode(payload, 'hex'),"
                       " (extract(epoch from created_at) * 1000000)::bigint"
                       " from outbox where seq between $1::bigint and $2::bigint"
                       " order by seq limit $3::int",
                       3, params, NULL);
    if (!rows)
        goto unavailable;

    int total = PQntuples(rows);
    events = calloc((size_t)total + 1, sizeof *events);
    pointers = calloc((size_t)total + 1, sizeof *pointers);
    payloads = calloc((size_t)total + 1, sizeof *payloads);
    if (!events || !pointers || !payloads) {
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        goto out;
    }
    /* Stop before the reply outgrows a message; at least one event always
     * fits, as the outbox refuses events above NCC_BUS_MAX_EVENT. */
    size_t size = 64;
    for (int i = 0; i < total; i++) {
        if (s_row_event(self, rows, i, &events[count], &payloads[count]) < 0) {
            ncc_reply_error(reply, 500, "internal", NULL, "unreadable outbox row");
            goto out;
        }
        size += ncc__envelope__get_packed_size(&events[count]) + 16;
        if (count > 0 && size > NCC_BUS_MAX_MESSAGE - 64 * 1024) {
            free(payloads[count]);
            payloads[count] = NULL;
            break;
        }
        pointers[count] = &events[count];
        count++;
    }
    Ncc__EventReplayReply answer = NCC__EVENT_REPLAY_REPLY__INIT;
    answer.n_events = (size_t)count;
    answer.events = pointers;
    answer.has_last_seq = true;
    answer.last_seq = last;
    ncc_reply_message(reply, &answer.base);
    goto out;
unavailable:
    ncc_reply_error(reply, 503, "service_unavailable", NULL, "outbox unavailable");
out:
    if (payloads)
        for (int i = 0; i <= count; i++)
            free(payloads[i]);
    free(payloads);
    free(pointers);
    free(events);
    PQclear(rows);
}

int ncc_publisher_serve_replay(ncc_publisher_t *self, ncc_rpc_server_t *server)
{
    return ncc_rpc_server_on(server, &ncc__event_replay_request__descriptor,
                             ncc_publisher_on_replay, self);
}
