/* facts: the services' events folded into report's own tables (docs/kpi.md
 * "Where the figures come from"). Each handler runs in the subscriber's
 * transaction (the cursor moves with it, so an event is applied once), and is
 * idempotent on its own too:
 *
 *   ncc.calls.CallStateChanged: the call's contact row takes the event's
 *     times when its version is newer than the one applied (a late, older
 *     event changes nothing; a transfer, once seen, stays);
 *   ncc.history.RecordChanged: the record's facts (department, category,
 *     channel, wrap-up end, transfer) on its call's row, or on a row of its
 *     own when it has no call; an older version changes nothing;
 *   ncc.sms.SurveyAnswered: one row per message (the first answer);
 *   ncc.faq.FaqSearched: one row per search id. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calls.pb-c.h"
#include "faq.pb-c.h"
#include "history.pb-c.h"
#include "ncc/log.h"
#include "ncc/time.h"
#include "report.h"
#include "sms.pb-c.h"

static bool s_id_ok(const char *id)
{
    size_t len = id ? strlen(id) : 0;
    return len > 0 && len <= 128 &&
           strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") == len;
}

/* An event's time as a parameter: the text when it is RFC 3339, else NULL. */
static const char *s_time(const char *text)
{
    return text && *text && ncc_rfc3339_valid(text) ? text : NULL;
}

/* A short code as a parameter ("" when absent or unreasonable). */
static const char *s_code(const char *text)
{
    if (!text)
        return "";
    size_t len = strlen(text);
    if (len > 100)
        return "";
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return "";
    return text;
}

/* ---- calls ------------------------------------------------------------------------------ */

static int s_on_call(void *arg, ncc_db_t *db, const Ncc__Envelope *event,
                     const ProtobufCMessage *message)
{
    report_t *self = arg;
    const Ncc__Calls__CallStateChanged *m = (const Ncc__Calls__CallStateChanged *)message;
    (void)event;
    if (!s_id_ok(m->call_id)) {
        ncc_warn("facts.bad_event", "a CallStateChanged without a usable call_id: skipped");
        return 0;
    }
    const char *state = m->state ? m->state : "";
    bool transferred = strcmp(state, "transferred") == 0 || (m->transfer_to && *m->transfer_to);
    char version[24], operator_id[24];
    snprintf(version, sizeof version, "%" PRId64, m->has_version ? m->version : 0);
    snprintf(operator_id, sizeof operator_id, "%" PRId64,
             m->has_operator_id && m->operator_id > 0 ? m->operator_id : 0);
    const char *ringing = s_time(m->ringing_at), *answered = s_time(m->answered_at),
               *ended = s_time(m->ended_at);
    if (!ringing && !answered && !ended)
        ringing = s_time(m->occurred_at); /* at least when it was seen */
    const char *params[] = {
        m->call_id,  version,
        ringing,     answered,
        ended,       transferred ? "true" : "false",
        operator_id, s_code(m->operator_name),
    };
    /* the newer version's times replace the older's; the fold upstream keeps
     * the earliest ringing and answer and the latest end, so the newest
     * snapshot is the best one */
    PGresult *res = ncc_db_exec(
        db,
        "INSERT INTO contacts AS c (key, is_call, call_version, ringing_at, answered_at, "
        "ended_at, call_transferred, operator_id, operator_name, at) "
        "VALUES ($1, true, $2::bigint, $3::timestamptz, $4::timestamptz, $5::timestamptz, "
        "$6::boolean, $7::bigint, $8, coalesce($3::timestamptz, $4::timestamptz, "
        "$5::timestamptz)) "
        "ON CONFLICT (key) DO UPDATE SET is_call = true, "
        "call_transferred = c.call_transferred OR excluded.call_transferred, "
        "ringing_at = CASE WHEN excluded.call_version > c.call_version THEN "
        "coalesce(excluded.ringing_at, c.ringing_at) ELSE coalesce(c.ringing_at, "
        "excluded.ringing_at) END, "
        "answered_at = CASE WHEN excluded.call_version > c.call_version THEN "
        "coalesce(excluded.answered_at, c.answered_at) ELSE coalesce(c.answered_at, "
        "excluded.answered_at) END, "
        "ended_at = CASE WHEN excluded.call_version > c.call_version THEN "
        "coalesce(excluded.ended_at, c.ended_at) ELSE coalesce(c.ended_at, excluded.ended_at) "
        "END, "
        "operator_id = CASE WHEN excluded.operator_id <> 0 AND (excluded.call_version > "
        "c.call_version OR c.operator_id = 0) THEN excluded.operator_id ELSE c.operator_id END, "
        "operator_name = CASE WHEN excluded.operator_name <> '' AND (excluded.call_version > "
        "c.call_version OR c.operator_name = '') THEN excluded.operator_name ELSE "
        "c.operator_name END, "
        "call_version = greatest(c.call_version, excluded.call_version), updated_at = now()",
        8, params, NULL);
    if (!res)
        return -EIO;
    PQclear(res);
    if (ncc_db_run(db,
                   "UPDATE contacts SET abandoned = ended_at IS NOT NULL AND answered_at IS NULL, "
                   "at = coalesce(ringing_at, answered_at, record_started_at, ended_at, at) "
                   "WHERE key = $1",
                   1, params) < 0)
        return -EIO;
    self->live_dirty = true;
    return 0;
}

/* ---- records ---------------------------------------------------------------------------- */

/* Takes record `id`'s facts off the contact `key` it was on. */
static int s_detach(ncc_db_t *db, const char *key, const char *id)
{
    if (strncmp(key, "r:", 2) == 0)
        return ncc_db_run(db, "DELETE FROM contacts WHERE key = $1", 1, (const char *[]){key});
    return ncc_db_run(db,
                      "UPDATE contacts SET record_id = NULL, record_version = 0, "
                      "record_started_at = NULL, record_ended_at = NULL, wrapup_ended_at = NULL, "
                      "record_transferred = false, record_status = '', department = '', "
                      "category = '', survey_n = 0, survey_total = 0, updated_at = now() "
                      "WHERE key = $1 AND record_id = $2::bigint",
                      2, (const char *[]){key, id});
}

static int s_on_record(void *arg, ncc_db_t *db, const Ncc__Envelope *event,
                       const ProtobufCMessage *message)
{
    report_t *self = arg;
    const Ncc__History__RecordChanged *m = (const Ncc__History__RecordChanged *)message;
    (void)event;
    if (!m->has_record_id || m->record_id <= 0) {
        ncc_warn("facts.bad_event", "a RecordChanged without a record id: skipped");
        return 0;
    }
    char id[24], version[24], operator_id[24], key[160];
    snprintf(id, sizeof id, "%" PRId64, m->record_id);
    snprintf(version, sizeof version, "%" PRId64, m->has_version ? m->version : 0);
    snprintf(operator_id, sizeof operator_id, "%" PRId64,
             m->has_operator_id && m->operator_id > 0 ? m->operator_id : 0);
    bool has_call = m->call_id && *m->call_id && s_id_ok(m->call_id);
    snprintf(key, sizeof key, "%s%s", has_call ? "" : "r:", has_call ? m->call_id : id);

    PGresult *res = ncc_db_exec(db,
                                "SELECT version, contact_key, faq_numbers::text, started_at FROM "
                                "records WHERE record_id = $1::bigint FOR UPDATE",
                                1, (const char *[]){id}, NULL);
    if (!res)
        return -EIO;
    if (PQntuples(res) == 1) {
        int64_t applied = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        if (m->has_version && m->version < applied) {
            PQclear(res);
            return 0; /* a late, older version */
        }
        if (strcmp(PQgetvalue(res, 0, 1), key) != 0 &&
            s_detach(db, PQgetvalue(res, 0, 1), id) < 0) {
            PQclear(res);
            return -EIO;
        }
        /* the record's old FAQ numbers leave the usage counts (the new ones come back below) */
        const char *old[] = {PQgetvalue(res, 0, 2),
                             PQgetisnull(res, 0, 3) ? NULL : PQgetvalue(res, 0, 3)};
        if (old[1] && ncc_db_run(db,
                                 "UPDATE faq_usage SET used = used - 1 WHERE day = "
                                 "($2::timestamptz AT TIME ZONE 'Asia/Tokyo')::date AND number = "
                                 "ANY($1::bigint[])",
                                 2, old) < 0) {
            PQclear(res);
            return -EIO;
        }
    }
    PQclear(res);

    /* FAQ numbers as an array literal */
    char faqs[24 * 8 + 4];
    size_t at = 0;
    faqs[at++] = '{';
    for (size_t i = 0; i < m->n_faq_ids && i < 8; i++)
        at += (size_t)snprintf(faqs + at, sizeof faqs - at, "%s%" PRId64, i ? "," : "",
                               m->faq_ids[i]);
    snprintf(faqs + at, sizeof faqs - at, "}");
    const char *channel = m->channel && *m->channel ? s_code(m->channel) : "";
    const char *params[] = {
        key,
        id,
        version,
        s_time(m->started_at),
        s_time(m->ended_at),
        s_time(m->wrapup_ended_at),
        m->transfer_to && *m->transfer_to ? "true" : "false",
        s_code(m->status),
        *channel ? channel : "phone",
        s_code(m->department_id),
        s_code(m->category),
        operator_id,
        faqs,
    };
    /* the lowest record id owns a call's record columns */
    res = ncc_db_exec(
        db,
        "INSERT INTO contacts AS c (key, is_call, at, record_id, record_version, "
        "record_started_at, record_ended_at, wrapup_ended_at, record_transferred, record_status, "
        "channel, department, category, operator_id, survey_n, survey_total) "
        "SELECT $1, false, $4::timestamptz, $2::bigint, $3::bigint, $4::timestamptz, "
        "$5::timestamptz, $6::timestamptz, $7::boolean, $8, $9, $10, $11, $12::bigint, "
        "count(*), coalesce(sum(satisfaction), 0) FROM surveys WHERE record_id = $2::bigint "
        "ON CONFLICT (key) DO UPDATE SET record_id = excluded.record_id, "
        "record_version = excluded.record_version, record_started_at = "
        "excluded.record_started_at, record_ended_at = excluded.record_ended_at, "
        "wrapup_ended_at = excluded.wrapup_ended_at, record_transferred = "
        "excluded.record_transferred, record_status = excluded.record_status, "
        "channel = excluded.channel, department = excluded.department, "
        "category = excluded.category, survey_n = excluded.survey_n, "
        "survey_total = excluded.survey_total, "
        "operator_id = CASE WHEN c.operator_id = 0 OR NOT c.is_call THEN excluded.operator_id "
        "ELSE c.operator_id END, "
        "at = coalesce(c.ringing_at, c.answered_at, excluded.record_started_at, c.ended_at, c.at), "
        "updated_at = now() "
        "WHERE c.record_id IS NULL OR c.record_id >= excluded.record_id",
        12, params, NULL);
    if (!res)
        return -EIO;
    PQclear(res);
    const char *rec_params[] = {id, version, key, faqs, s_time(m->started_at)};
    if (ncc_db_run(db,
                   "INSERT INTO records (record_id, version, contact_key, faq_numbers, started_at) "
                   "VALUES ($1::bigint, $2::bigint, $3, $4::bigint[], $5::timestamptz) "
                   "ON CONFLICT (record_id) DO UPDATE SET version = excluded.version, "
                   "contact_key = excluded.contact_key, faq_numbers = excluded.faq_numbers, "
                   "started_at = excluded.started_at",
                   5, rec_params) < 0)
        return -EIO;
    if (rec_params[4] && m->n_faq_ids > 0 &&
        ncc_db_run(db,
                   "INSERT INTO faq_usage AS u (day, number, used) SELECT DISTINCT "
                   "($2::timestamptz AT TIME ZONE 'Asia/Tokyo')::date, n, 1 FROM "
                   "unnest($1::bigint[]) AS n ON CONFLICT (day, number) DO UPDATE SET used = "
                   "u.used + 1",
                   2, (const char *[]){faqs, rec_params[4]}) < 0)
        return -EIO;
    self->live_dirty = true;
    return 0;
}

/* ---- surveys and FAQ searches --------------------------------------------------------------- */

static int s_on_survey(void *arg, ncc_db_t *db, const Ncc__Envelope *event,
                       const ProtobufCMessage *message)
{
    const Ncc__Sms__SurveyAnswered *m = (const Ncc__Sms__SurveyAnswered *)message;
    (void)arg;
    (void)event;
    if (!m->has_message_id || m->message_id <= 0 || !m->has_satisfaction || m->satisfaction < 1 ||
        m->satisfaction > 5) {
        ncc_warn("facts.bad_event",
                 "a SurveyAnswered without a message id or a 1-5 score: skipped");
        return 0;
    }
    char id[24], record[24], score[8];
    snprintf(id, sizeof id, "%" PRId64, m->message_id);
    snprintf(record, sizeof record, "%" PRId64, m->has_record_id ? m->record_id : 0);
    snprintf(score, sizeof score, "%d", (int)m->satisfaction);
    const char *params[] = {id, record, score,
                            m->has_resolved ? (m->resolved ? "true" : "false") : NULL,
                            s_time(m->answered_at)};
    /* the contact of the record counts the answer once: only when it is new here */
    PGresult *res =
        ncc_db_exec(db,
                    "WITH s AS (INSERT INTO surveys (message_id, record_id, satisfaction, "
                    "resolved, answered_at) VALUES ($1::bigint, $2::bigint, $3::int, $4::boolean, "
                    "coalesce($5::timestamptz, now())) ON CONFLICT (message_id) DO NOTHING "
                    "RETURNING record_id, satisfaction) UPDATE contacts c SET survey_n = "
                    "c.survey_n + 1, survey_total = c.survey_total + s.satisfaction FROM s WHERE "
                    "s.record_id <> 0 AND c.record_id = s.record_id",
                    5, params, NULL);
    if (!res)
        return -EIO;
    PQclear(res);
    return 0;
}

/* A text[] literal of `n` strings: each quoted, \ and " escaped. Caller frees. */
static char *s_text_array(char **items, size_t n)
{
    size_t cap = 3;
    for (size_t i = 0; i < n; i++)
        cap += 2 * strlen(items[i] ? items[i] : "") + 3;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t at = 0;
    out[at++] = '{';
    for (size_t i = 0; i < n; i++) {
        if (i)
            out[at++] = ',';
        out[at++] = '"';
        for (const char *p = items[i] ? items[i] : ""; *p; p++) {
            if (*p == '"' || *p == '\\')
                out[at++] = '\\';
            out[at++] = *p;
        }
        out[at++] = '"';
    }
    out[at++] = '}';
    out[at] = '\0';
    return out;
}

static int s_on_faq_searched(void *arg, ncc_db_t *db, const Ncc__Envelope *event,
                             const ProtobufCMessage *message)
{
    const Ncc__Faq__FaqSearched *m = (const Ncc__Faq__FaqSearched *)message;
    (void)arg;
    (void)event;
    if (!s_id_ok(m->search_id)) {
        ncc_warn("facts.bad_event", "a FaqSearched without a search id: skipped");
        return 0;
    }
    size_t n = m->n_shown < 3 ? m->n_shown : 3;
    char shown[24 * 3 + 4];
    size_t at = 0;
    shown[at++] = '{';
    for (size_t i = 0; i < n; i++)
        at += (size_t)snprintf(shown + at, sizeof shown - at, "%s%" PRId64, i ? "," : "",
                               m->shown[i]);
    snprintf(shown + at, sizeof shown - at, "}");
    char *questions[3] = {NULL, NULL, NULL};
    for (size_t i = 0; i < n && i < m->n_shown_questions; i++)
        questions[i] = m->shown_questions[i];
    char *question_array = s_text_array(questions, n);
    char hits[24];
    snprintf(hits, sizeof hits, "%" PRId64, m->has_hits ? m->hits : 0);
    const char *params[] = {
        m->search_id,
        s_time(m->searched_at),
        m->has_resident && m->resident ? "true" : "false",
        hits,
        s_code(m->query_hash),
        m->query && *m->query && (!m->has_hits || m->hits == 0) ? m->query : NULL,
        shown,
        question_array ? question_array : "{}",
    };
    /* the daily counts move only when the search is new here */
    PGresult *res = ncc_db_exec(
        db,
        "INSERT INTO faq_searches (search_id, searched_at, resident, hits, query_hash, query, "
        "shown, shown_questions) VALUES ($1, coalesce($2::timestamptz, now()), $3::boolean, "
        "$4::bigint, $5, left($6, 200), $7::bigint[], $8::text[]) ON CONFLICT (search_id) DO "
        "NOTHING RETURNING (searched_at AT TIME ZONE 'Asia/Tokyo')::date, searched_at, query",
        8, params, NULL);
    int rc = res ? 0 : -EIO;
    if (res && PQntuples(res) == 1) {
        const char *day = PQgetvalue(res, 0, 0), *at_text = PQgetvalue(res, 0, 1);
        const char *query = PQgetisnull(res, 0, 2) ? NULL : PQgetvalue(res, 0, 2);
        bool zero = m->has_hits && m->hits == 0;
        const char *daily[] = {day, zero ? "1" : "0"};
        if (ncc_db_run(db,
                       "INSERT INTO search_daily AS d (day, searches, zero) VALUES ($1::date, 1, "
                       "$2::bigint) ON CONFLICT (day) DO UPDATE SET searches = d.searches + 1, "
                       "zero = d.zero + excluded.zero",
                       2, daily) < 0)
            rc = -EIO;
        const char *zero_params[] = {day, query, params[2], at_text};
        if (rc == 0 && zero && query &&
            ncc_db_run(db,
                       "INSERT INTO zero_hit_daily AS z (day, query, count, resident, last_at) "
                       "VALUES ($1::date, $2, 1, CASE WHEN $3::boolean THEN 1 ELSE 0 END, "
                       "$4::timestamptz) ON CONFLICT (day, query) DO UPDATE SET count = z.count "
                       "+ 1, resident = z.resident + excluded.resident, last_at = "
                       "greatest(z.last_at, excluded.last_at)",
                       4, zero_params) < 0)
            rc = -EIO;
        const char *shown_params[] = {day, shown, question_array ? question_array : "{}"};
        if (rc == 0 && n > 0 &&
            ncc_db_run(db,
                       "INSERT INTO faq_shown_daily AS f (day, number, shown, question) SELECT "
                       "DISTINCT ON (n) $1::date, n, 1, coalesce(q, '') FROM unnest($2::bigint[], "
                       "$3::text[]) AS u(n, q) ON CONFLICT (day, number) DO UPDATE SET shown = "
                       "f.shown + 1, question = excluded.question",
                       3, shown_params) < 0)
            rc = -EIO;
    }
    if (res)
        PQclear(res);
    free(question_array);
    return rc;
}

int report_facts_register(report_t *self)
{
    if (ncc_service_subscribe(self->service, "calls", "ncc.calls.CallStateChanged", s_on_call,
                              self) < 0 ||
        ncc_service_subscribe(self->service, "history", "ncc.history.RecordChanged", s_on_record,
                              self) < 0 ||
        ncc_service_subscribe(self->service, "sms", "ncc.sms.SurveyAnswered", s_on_survey, self) <
            0 ||
        ncc_service_subscribe(self->service, "faq", "ncc.faq.FaqSearched", s_on_faq_searched,
                              self) < 0)
        return -ENOMEM;
    return 0;
}
