/* calls_feed: the record of a call, made from ncc-calls' CallStateChanged
 * events (R31; docs/history.md "Records from calls"). Events come through
 * the calls outbox (replayed on a gap, each applied once, in order); this
 * handler is idempotent on its own too (unique call_id, the call's version):
 *
 *   answered (or any later state that carries answered_at): the record of
 *     the call is made if there is none: receipt id, operator, channel,
 *     started_at = answered_at, call id, the caller's number (encrypted,
 *     blind-indexed), the record form's initial status (open by default), and a final
 *     summary of the call that arrived before (summary_feed.c);
 *   transferred: transfer_to, unless the operator wrote one already;
 *   ended: ended_at, unless set already;
 *   ringing, abandoned (a call that ended unanswered): no record.
 *
 * What the call brings never overwrites what a person typed, so these
 * changes do not move the record's version: an operator's form opened before
 * the call ended still saves. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calls.pb-c.h"
#include "history.h"

static bool s_is(const char *a, const char *b)
{
    return a && strcmp(a, b) == 0;
}

/* A time of the event in canonical form into out, or false (logged). */
static bool s_time(const char *call_id, const char *what, const char *text, char out[40])
{
    if (!text || !*text)
        return false;
    if (history_time_parse(text, 0, out, NULL, NULL) == 0)
        return true;
    ncc_warn("calls_feed.bad_time", "call %s: %s is not an RFC 3339 time: ignored", call_id, what);
    return false;
}

static int s_on_call_state(void *arg, ncc_db_t *db, const Ncc__Envelope *event,
                           const ProtobufCMessage *message)
{
    history_t *self = arg;
    const Ncc__Calls__CallStateChanged *m = (const Ncc__Calls__CallStateChanged *)message;
    (void)event;
    if (!m->call_id || !history_call_id_ok(m->call_id)) {
        ncc_warn("calls_feed.bad_event", "a CallStateChanged without a usable call_id: skipped");
        return 0;
    }
    const char *state = m->state ? m->state : "";
    if (!s_is(state, "answered") && !s_is(state, "transferred") && !s_is(state, "ended"))
        return 0; /* ringing, abandoned: no interaction took place */
    char answered[40], ended[40];
    bool has_answered = s_time(m->call_id, "answered_at", m->answered_at, answered);
    if (!has_answered && s_is(state, "answered"))
        has_answered = s_time(m->call_id, "occurred_at", m->occurred_at, answered);
    bool has_ended =
        s_is(state, "ended") && (s_time(m->call_id, "ended_at", m->ended_at, ended) ||
                                 s_time(m->call_id, "occurred_at", m->occurred_at, ended));
    const char *transfer = s_is(state, "transferred") && m->transfer_to && *m->transfer_to &&
                                   history_text_ok(m->transfer_to, 100, false)
                               ? m->transfer_to
                               : NULL;
    int64_t version = m->has_version ? m->version : 0;

    const char *params[] = {m->call_id};
    PGresult *res = ncc_db_exec(db,
                                "SELECT id, call_version, ended_at IS NULL, transfer_to = '', "
                                "operator_id, caller_number IS NULL FROM records "
                                "WHERE call_id = $1 FOR UPDATE",
                                1, params, NULL);
    if (!res)
        return -EIO;
    int64_t id = 0;
    const char *change = "updated";
    char *cipher = NULL, bidx[65] = "";
    int rc = 0;
    bool has_caller =
        m->from_number && *m->from_number && history_text_ok(m->from_number, 32, false);
    if (PQntuples(res) == 0) {
        PQclear(res);
        if (!has_answered)
            return 0; /* ended or transferred without being answered: no record */
        char name[128] = "";
        const char *operator_name = m->operator_name;
        int64_t operator_id = m->has_operator_id && m->operator_id > 0 ? m->operator_id : 0;
        if ((!operator_name || !*operator_name) && operator_id)
            history_operator_name(self, operator_id, name, sizeof name);
        const char *channel = m->channel && *m->channel ? m->channel : "phone";
        if (history_channel_bit(channel) == 0)
            channel = "phone";
        history_new_record_t r = {
            .started_at = answered,
            .call_id = m->call_id,
            .channel = channel,
            .operator_id = operator_id,
            .operator_name =
                operator_name && *operator_name && history_text_ok(operator_name, 100, false)
                    ? operator_name
                    : name,
            .ended_at = has_ended ? ended : NULL,
            .transfer_to = transfer,
            .status = history_form_initial(self), /* the record form's (docs/record-form.md) */
            .caller_number = has_caller ? m->from_number : NULL,
            .source = "call",
            .call_version = version,
        };
        rc = history_insert(self, &r, &id);
        if (rc == -ENOKEY) {
            if (!self->keys_warned)
                ncc_warn("calls_feed.no_keys", "NCC_DATA_KEYS is not set: records of calls are "
                                               "made without the caller's number");
            self->keys_warned = true;
            r.caller_number = NULL;
            rc = history_insert(self, &r, &id);
        }
        if (rc < 0)
            return -EIO;
        /* A final summary of the call that came before its record (summary_feed.c). */
        if (history_summary_apply_pending(self, db, id, m->call_id) < 0)
            return -EIO;
        change = "created";
    } else {
        id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        int64_t applied = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        bool no_end = PQgetvalue(res, 0, 2)[0] == 't';
        bool no_transfer = PQgetvalue(res, 0, 3)[0] == 't';
        int64_t operator_id = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
        bool no_caller = PQgetvalue(res, 0, 5)[0] == 't';
        PQclear(res);
        if (version && version <= applied)
            return 0; /* this version of the call was applied already */
        bool set_end = has_ended && no_end, set_transfer = transfer && no_transfer;
        bool set_operator = operator_id == 0 && m->has_operator_id && m->operator_id > 0;
        bool set_caller = no_caller && has_caller &&
                          history_caller_seal(self, m->from_number, &cipher, bidx) == 0;
        char id_text[24], version_text[24], operator_text[24], name[128] = "";
        snprintf(id_text, sizeof id_text, "%" PRId64, id);
        snprintf(version_text, sizeof version_text, "%" PRId64, version);
        snprintf(operator_text, sizeof operator_text, "%" PRId64,
                 set_operator ? m->operator_id : 0);
        if (set_operator) {
            if (m->operator_name && history_text_ok(m->operator_name, 100, false))
                snprintf(name, sizeof name, "%s", m->operator_name);
            else
                history_operator_name(self, m->operator_id, name, sizeof name);
        }
        const char *up[] = {
            id_text,
            version_text,
            set_end ? ended : NULL,
            set_transfer ? transfer : NULL,
            set_operator ? operator_text : NULL,
            name,
            set_caller ? cipher : NULL,
            set_caller ? bidx : NULL,
        };
        PGresult *done = ncc_db_exec(
            db,
            "UPDATE records SET call_version = greatest(call_version, $2::bigint), "
            "ended_at = coalesce($3::timestamptz, ended_at), "
            "transfer_to = coalesce($4, transfer_to), "
            "operator_id = coalesce($5::bigint, operator_id), "
            "operator_name = CASE WHEN $5::bigint IS NULL THEN operator_name ELSE $6 END, "
            "caller_number = coalesce($7, caller_number), "
            "caller_number_bidx = coalesce($8, caller_number_bidx), "
            "updated_at = CASE WHEN $3::timestamptz IS NULL AND $4::text IS NULL AND "
            "$5::bigint IS NULL AND $7::text IS NULL THEN updated_at ELSE now() END "
            "WHERE id = $1::bigint",
            8, up, NULL);
        free(cipher);
        if (!done)
            return -EIO;
        PQclear(done);
        if (!set_end && !set_transfer && !set_operator && !set_caller)
            return 0; /* nothing a reader would see changed */
    }
    PGresult *rec_res = NULL;
    history_record_t rec = {0};
    ncc_ctx_t ctx = ncc_service_ctx(self->service);
    if (history_record_load(self, id, false, &rec_res, &rec) < 0 ||
        history_record_changed(self, &ctx, &rec, change, "call") < 0)
        rc = -EIO;
    history_record_clear(&rec);
    if (rec_res)
        PQclear(rec_res);
    if (rc == 0)
        self->flush_pending = true;
    return rc;
}

int history_calls_register(history_t *self)
{
    return ncc_service_subscribe(self->service, "calls", "ncc.calls.CallStateChanged",
                                 s_on_call_state, self);
}
