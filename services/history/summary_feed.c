/* summary_feed: the final call summary into the record of its call (R30; docs/history.md
 * "The AI summary"). ncc-summary publishes ncc.summary.CallSummary through its outbox at
 * hang-up (replayed after a gap), idempotent on (call_id, version): a later version
 * replaces an earlier one when a late transcript segment changes the summary.
 *
 *   - the record of call_id gets `summary`, unless a person wrote the summary (through
 *     the API or the CSV import: summary_source 'user'), which is never overwritten;
 *   - only a version newer than the one applied changes it (an older or repeated one
 *     changes nothing);
 *   - a summary whose record does not exist yet (the events of ncc-calls and ncc-summary
 *     come from two publishers, in no fixed order) waits in pending_summaries and is
 *     applied when the record of the call is made (from the call or through the API).
 *
 * Like what a call brings, the summary does not move the record's version (an operator's
 * open form still saves: the desk does not send the summary, a system field). Each change
 * publishes RecordChanged (source "summary"), which also brings the text to the keyword
 * index. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"
#include "summary.pb-c.h"

#define S_SUMMARY_MAX 10000 /* characters, as a record's summary */

/* Applies summary `version` to record `id` (locked by the caller) unless a person wrote
 * its summary or a version as new was applied. 1 when the summary changed, 0, -EIO. */
static int s_apply(ncc_db_t *db, int64_t id, int64_t version, const char *summary)
{
    char id_text[24], version_text[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, id);
    snprintf(version_text, sizeof version_text, "%" PRId64, version);
    const char *params[] = {id_text, version_text, summary};
    PGresult *res = ncc_db_exec(
        db,
        "WITH r AS (SELECT id, summary_source, summary_version FROM records "
        "WHERE id = $1::bigint FOR UPDATE), "
        "u AS (UPDATE records SET "
        "summary = CASE WHEN r.summary_source = 'user' THEN records.summary ELSE $3 END, "
        "summary_source = CASE WHEN r.summary_source = 'user' THEN 'user' ELSE 'summary' END, "
        "summary_version = $2::bigint, "
        "updated_at = CASE WHEN r.summary_source = 'user' THEN records.updated_at ELSE now() END "
        "FROM r WHERE records.id = r.id AND (r.summary_source <> 'summary' "
        "OR r.summary_version < $2::bigint) AND NOT (r.summary_source = 'user' AND "
        "r.summary_version >= $2::bigint) RETURNING r.summary_source) "
        "SELECT summary_source FROM u",
        3, params, NULL);
    if (!res)
        return -EIO;
    int rc = 0;
    if (PQntuples(res) == 1) {
        if (strcmp(PQgetvalue(res, 0, 0), "user") == 0)
            ncc_info("summary_feed.kept_operator_summary",
                     "record %" PRId64 ": the summary was written by a person; CallSummary "
                     "version %" PRId64 " is not applied",
                     id, version);
        else
            rc = 1;
    }
    PQclear(res);
    return rc;
}

int history_summary_apply_pending(history_t *self, ncc_db_t *db, int64_t id, const char *call_id)
{
    (void)self;
    if (!call_id || !*call_id)
        return 0;
    const char *params[] = {call_id};
    PGresult *res = ncc_db_exec(
        db, "DELETE FROM pending_summaries WHERE call_id = $1 RETURNING version, summary", 1,
        params, NULL);
    if (!res)
        return -EIO;
    int rc = 0;
    if (PQntuples(res) == 1)
        rc = s_apply(db, id, strtoll(PQgetvalue(res, 0, 0), NULL, 10), PQgetvalue(res, 0, 1));
    PQclear(res);
    return rc;
}

static int s_on_call_summary(void *arg, ncc_db_t *db, const Ncc__Envelope *event,
                             const ProtobufCMessage *message)
{
    history_t *self = arg;
    const Ncc__Summary__CallSummary *m = (const Ncc__Summary__CallSummary *)message;
    (void)event;
    if (!m->call_id || !history_call_id_ok(m->call_id)) {
        ncc_warn("summary_feed.bad_event", "a CallSummary without a usable call_id: skipped");
        return 0;
    }
    const char *summary = m->summary ? m->summary : "";
    if (!*summary)
        return 0; /* nothing to write */
    if (!history_text_ok(summary, S_SUMMARY_MAX, true)) {
        ncc_warn("summary_feed.bad_summary",
                 "call %s: the summary is not text of at most %d characters: skipped", m->call_id,
                 S_SUMMARY_MAX);
        return 0;
    }
    int64_t version = m->has_version ? m->version : 0;
    char version_text[24];
    snprintf(version_text, sizeof version_text, "%" PRId64, version);
    const char *params[] = {m->call_id, version_text, summary};
    PGresult *res =
        ncc_db_exec(db, "SELECT id FROM records WHERE call_id = $1 FOR UPDATE", 1, params, NULL);
    if (!res)
        return -EIO;
    if (PQntuples(res) == 0) {
        PQclear(res);
        /* Before the record: kept (the newest version) until the record is made. */
        res = ncc_db_exec(db,
                          "INSERT INTO pending_summaries AS p (call_id, version, summary) "
                          "VALUES ($1, $2::bigint, $3) ON CONFLICT (call_id) DO UPDATE SET "
                          "version = excluded.version, summary = excluded.summary, "
                          "received_at = now() WHERE p.version < excluded.version",
                          3, params, NULL);
        if (!res)
            return -EIO;
        PQclear(res);
        /* A call that never gets a record (none answered it) leaves one: kept a month. */
        res = ncc_db_exec(db,
                          "DELETE FROM pending_summaries WHERE received_at < now() - "
                          "interval '31 days'",
                          0, NULL, NULL);
        if (!res)
            return -EIO;
        PQclear(res);
        return 0;
    }
    int64_t id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    int rc = s_apply(db, id, version, summary);
    if (rc <= 0)
        return rc;
    PGresult *rec_res = NULL;
    history_record_t rec = {0};
    ncc_ctx_t ctx = ncc_service_ctx(self->service);
    rc = 0;
    if (history_record_load(self, id, false, &rec_res, &rec) < 0 ||
        history_record_changed(self, &ctx, &rec, "updated", "summary") < 0)
        rc = -EIO;
    history_record_clear(&rec);
    if (rec_res)
        PQclear(rec_res);
    if (rc == 0)
        self->flush_pending = true;
    return rc;
}

int history_summary_register(history_t *self)
{
    return ncc_service_subscribe(self->service, "summary", "ncc.summary.CallSummary",
                                 s_on_call_summary, self);
}
