/* realtime: ncc-summary following the calls (R30, R36, R37).
 *
 * ncc.calls.TranscriptAdded: each new segment is masked at once (only the
 * masked text is stored), scored for emotion, and the call's scores moved;
 * the operator gets emotion.updated, supervisors emotion.alert when the
 * caller's anger crosses NCC_SUMMARY_ANGER_ALERT. The call becomes due for a
 * running summary NCC_SUMMARY_DEBOUNCE_MS after the first segment not yet
 * summarised (a burst of segments gives one summary).
 * ncc.calls.CallStateChanged ended/abandoned: the final summary is due.
 * The timer (NCC_SUMMARY_TICK_MS) makes what is due: running summaries by
 * the extractive summarizer with FAQ suggestions from ncc-faq
 * (summary.updated, faq.suggested), final ones by the configured summarizer,
 * stored and published as ncc.summary.CallSummary for ncc-history. Rows are
 * taken FOR UPDATE SKIP LOCKED, so copies of the service share the work. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calls.pb-c.h"
#include "faq.pb-c.h"
#include "ncc/log.h"
#include "ncc/push.h"
#include "ncc/roles.h"
#include "summary.h"
#include "summary.pb-c.h"

#define S_DUE_BATCH       4
#define S_FAQ_TEXT_BYTES  6000 /* the end of the conversation sent to ncc-faq */
#define S_FAQ_QUIET_S     10   /* after ncc-faq did not answer */
#define S_FAQ_SUGGESTIONS 3

static char *s_store(summary_t *self, const char *masked)
{
    return self->keyring
               ? ncc_encrypt(self->keyring, SUMMARY_MASKED_CONTEXT, masked, strlen(masked))
               : strdup(masked);
}

static char *s_load(summary_t *self, const char *stored)
{
    return self->keyring ? ncc_decrypt(self->keyring, SUMMARY_MASKED_CONTEXT, stored, NULL)
                         : strdup(stored);
}

static void s_num(char *buf, size_t len, double value)
{
    snprintf(buf, len, "%.4f", value);
}

/* ---- transcript segments ----------------------------------------------------------------------
 */

static int s_on_transcript(void *arg, ncc_db_t *db, const Ncc__Envelope *event,
                           const ProtobufCMessage *message)
{
    summary_t *self = arg;
    const Ncc__Calls__TranscriptAdded *m = (const Ncc__Calls__TranscriptAdded *)message;
    if (!m->call_id || !*m->call_id || m->n_segments == 0)
        return 0;
    char operator_id[24];
    snprintf(operator_id, sizeof operator_id, "%" PRId64, m->has_operator_id ? m->operator_id : 0);
    const char *p_call[] = {m->call_id, operator_id};
    PGresult *res = ncc_db_exec(
        db,
        "INSERT INTO calls (call_id, operator_id) VALUES ($1, $2::bigint) ON CONFLICT (call_id) "
        "DO UPDATE SET operator_id = CASE WHEN $2::bigint > 0 THEN $2::bigint ELSE "
        "calls.operator_id END RETURNING anger, confusion, satisfaction, caller_segments, alerted, "
        "operator_id, ended_seen_at IS NOT NULL",
        2, p_call, NULL);
    if (!res)
        return -EIO;
    emotion_t call = {strtod(PQgetvalue(res, 0, 0), NULL), strtod(PQgetvalue(res, 0, 1), NULL),
                      strtod(PQgetvalue(res, 0, 2), NULL)};
    int caller_segments = (int)strtol(PQgetvalue(res, 0, 3), NULL, 10);
    bool alerted = PQgetvalue(res, 0, 4)[0] == 't';
    int64_t operator= strtoll(PQgetvalue(res, 0, 5), NULL, 10);
    bool ended = PQgetvalue(res, 0, 6)[0] == 't';
    PQclear(res);
    double before = call.anger;
    int added = 0, entities = 0, rc = 0;
    cJSON *scores = cJSON_CreateArray();
    for (size_t i = 0; rc == 0 && i < m->n_segments; i++) {
        const Ncc__Calls__TranscriptSegment *s = m->segments[i];
        if (!s->text || !s->speaker)
            continue;
        char *masked = NULL;
        mask_entity_t *found = NULL;
        size_t n = 0;
        if (mask_text(self->mask, s->text, strlen(s->text), &masked, &found, &n) < 0) {
            ncc_warn("summary.segment_skipped", "call %s seq %d: text that cannot be masked",
                     m->call_id, s->seq);
            continue;
        }
        free(found);
        emotion_t e = emotion_score(masked);
        char *stored = s_store(self, masked);
        free(masked);
        if (!stored) {
            rc = -ENOMEM;
            break;
        }
        char seq[16], ents[16], anger[24], confusion[24], satisfaction[24];
        snprintf(seq, sizeof seq, "%d", s->seq);
        snprintf(ents, sizeof ents, "%zu", n);
        s_num(anger, sizeof anger, e.anger);
        s_num(confusion, sizeof confusion, e.confusion);
        s_num(satisfaction, sizeof satisfaction, e.satisfaction);
        const char *params[] = {m->call_id, seq,   s->speaker, stored,
                                ents,       anger, confusion,  satisfaction};
        res =
            ncc_db_exec(db,
                        "INSERT INTO segments (call_id, seq, speaker, masked, entities, anger, "
                        "confusion, satisfaction) VALUES ($1, $2::int, $3, $4, $5::int, $6::real, "
                        "$7::real, $8::real) ON CONFLICT (call_id, seq) DO NOTHING RETURNING 1",
                        8, params, NULL);
        free(stored);
        if (!res) {
            rc = -EIO;
            break;
        }
        bool inserted = PQntuples(res) > 0;
        PQclear(res);
        if (!inserted)
            continue;
        added++;
        entities += (int)n;
        if (strcmp(s->speaker, "caller") == 0)
            emotion_fold(&call, &e, caller_segments++);
        cJSON *item = summary_emotion_json(&e);
        cJSON_AddNumberToObject(item, "seq", s->seq);
        cJSON_AddStringToObject(item, "speaker", s->speaker);
        cJSON_AddItemToArray(scores, item);
    }
    double threshold = self->settings->anger_alert / 100.0;
    bool alert = !alerted && call.anger >= threshold && before < threshold;
    if (rc == 0 && added > 0) {
        char debounce[16], n_added[16], n_ents[16], anger[24], confusion[24], satisfaction[24],
            callers[16];
        snprintf(debounce, sizeof debounce, "%d", self->settings->debounce_ms);
        snprintf(n_added, sizeof n_added, "%d", added);
        snprintf(n_ents, sizeof n_ents, "%d", entities);
        snprintf(callers, sizeof callers, "%d", caller_segments);
        s_num(anger, sizeof anger, call.anger);
        s_num(confusion, sizeof confusion, call.confusion);
        s_num(satisfaction, sizeof satisfaction, call.satisfaction);
        const char *params[] = {m->call_id,
                                debounce,
                                n_added,
                                n_ents,
                                anger,
                                confusion,
                                satisfaction,
                                callers,
                                alert ? "true" : "false",
                                ended ? "true" : "false"};
        rc = ncc_db_run(db,
                        "UPDATE calls SET due_at = coalesce(due_at, now() + make_interval(secs => "
                        "$2::int / 1000.0)), segments = segments + $3::int, entities = entities + "
                        "$4::int, anger = $5::real, confusion = $6::real, satisfaction = $7::real, "
                        "caller_segments = $8::int, alerted = alerted OR $9::boolean, final_due = "
                        "final_due OR $10::boolean, updated_at = now() WHERE call_id = $1",
                        10, params);
    }
    ncc_ctx_t ctx = ncc_service_ctx(self->service);
    if (rc == 0 && added > 0 && operator> 0) {
        cJSON *data = cJSON_CreateObject();
        cJSON_AddStringToObject(data, "call_id", m->call_id);
        cJSON_AddItemToObject(data, "segments", scores);
        scores = NULL;
        cJSON_AddItemToObject(data, "call", summary_emotion_json(&call));
        rc = ncc_push_add(db, &ctx, operator, NULL, "emotion.updated", data);
        cJSON_Delete(data);
    }
    if (rc == 0 && alert) {
        cJSON *data = cJSON_CreateObject();
        cJSON_AddStringToObject(data, "call_id", m->call_id);
        cJSON_AddNumberToObject(data, "operator_id", (double)operator);
        cJSON_AddItemToObject(data, "call", summary_emotion_json(&call));
        rc = ncc_push_add(db, &ctx, 0, "supervisor", "emotion.alert", data);
        cJSON_Delete(data);
        ncc_info("summary.anger_alert", "call %s: the caller's anger rose to %.2f", m->call_id,
                 call.anger);
    }
    cJSON_Delete(scores);
    (void)event;
    return rc;
}

static int s_on_state(void *arg, ncc_db_t *db, const Ncc__Envelope *event,
                      const ProtobufCMessage *message)
{
    (void)arg;
    (void)event;
    const Ncc__Calls__CallStateChanged *m = (const Ncc__Calls__CallStateChanged *)message;
    if (!m->call_id || !m->state)
        return 0;
    bool end = strcmp(m->state, "ended") == 0 || strcmp(m->state, "abandoned") == 0;
    char operator_id[24];
    snprintf(operator_id, sizeof operator_id, "%" PRId64, m->has_operator_id ? m->operator_id : 0);
    const char *params[] = {m->call_id, operator_id, end ? "true" : "false"};
    /* a call without transcript has no summary: only calls we know of change */
    return ncc_db_run(db,
                      "UPDATE calls SET operator_id = CASE WHEN $2::bigint > 0 THEN $2::bigint "
                      "ELSE operator_id END, final_due = final_due OR $3::boolean, ended_seen_at = "
                      "CASE WHEN $3::boolean THEN coalesce(ended_seen_at, now()) ELSE "
                      "ended_seen_at END WHERE call_id = $1",
                      3, params);
}

/* ---- FAQ suggestions ----------------------------------------------------------------------------
 */

/* The top FAQs for the end of the masked conversation as a JSON array (caller
 * deletes), or NULL when ncc-faq did not answer. */
static cJSON *s_suggest(summary_t *self, const char *call_id, const char *text)
{
    if (ncc_bus_now_us() < self->faq_quiet_until_us)
        return NULL;
    ncc_rpc_client_t *client = ncc_service_client(self->service, "faq");
    if (!client)
        return NULL;
    size_t len = strlen(text);
    const char *start = len > S_FAQ_TEXT_BYTES ? text + len - S_FAQ_TEXT_BYTES : text;
    while (((unsigned char)*start & 0xC0) == 0x80)
        start++;
    Ncc__Faq__SuggestFaqs ask = NCC__FAQ__SUGGEST_FAQS__INIT;
    ask.text = (char *)start;
    ask.call_id = (char *)call_id;
    ask.has_limit = true;
    ask.limit = S_FAQ_SUGGESTIONS;
    ncc_ctx_t ctx = ncc_service_ctx(self->service);
    ProtobufCMessage *answer = NULL;
    Ncc__Error *error = NULL;
    int rc = ncc_rpc_call_typed(client, &ctx, &ask.base, &ncc__faq__faq_list__descriptor,
                                self->settings->faq_timeout_ms, &answer, &error);
    if (rc < 0) {
        if (rc == -ETIMEDOUT)
            self->faq_quiet_until_us = ncc_bus_now_us() + S_FAQ_QUIET_S * 1000000LL;
        ncc_warn("summary.faq_failed", "SuggestFaqs for call %s: %s%s%s", call_id, strerror(-rc),
                 error && error->code ? ": " : "", error && error->code ? error->code : "");
        if (error)
            ncc__error__free_unpacked(error, NULL);
        return NULL;
    }
    const Ncc__Faq__FaqList *list = (const Ncc__Faq__FaqList *)answer;
    cJSON *items = cJSON_CreateArray();
    for (size_t i = 0; items && i < list->n_items && i < S_FAQ_SUGGESTIONS; i++) {
        cJSON *item = cJSON_CreateObject();
        cJSON_AddNumberToObject(item, "id", (double)list->items[i]->id);
        cJSON_AddNumberToObject(item, "number", (double)list->items[i]->number);
        cJSON_AddStringToObject(item, "question",
                                list->items[i]->question ? list->items[i]->question : "");
        cJSON_AddItemToArray(items, item);
    }
    protobuf_c_message_free_unpacked(answer, NULL);
    return items;
}

/* The masked text without placeholders (they are not words to search for). */
static void s_strip_placeholders(char *text)
{
    for (char *p = strchr(text, '['); p; p = strchr(p, '[')) {
        char *close = strchr(p, ']');
        if (!close || close - p > 24)
            break;
        memset(p, ' ', (size_t)(close - p + 1));
    }
}

static bool s_utf8_ok(const char *text)
{
    const unsigned char *p = (const unsigned char *)text;
    while (*p) {
        unsigned char c = *p;
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (len == 0)
            return false;
        for (size_t i = 1; i < len; i++)
            if ((p[i] & 0xC0) != 0x80)
                return false;
        p += len;
    }
    return true;
}

/* ---- due summaries -------------------------------------------------------------------------- */

/* Makes the summary of one call (its row locked by the caller's transaction). */
static int s_summarise(summary_t *self, const char *call_id, int64_t operator, bool final,
                       const char *old_faqs)
{
    const char *params[] = {call_id};
    PGresult *res = ncc_db_exec(self->db,
                                "SELECT speaker, masked FROM segments WHERE call_id = $1 ORDER BY "
                                "seq",
                                1, params, NULL);
    if (!res)
        return -EIO;
    int rows = PQntuples(res);
    summary_segment_t *segments = calloc((size_t)rows + 1, sizeof *segments);
    char **texts = calloc((size_t)rows + 1, sizeof *texts);
    size_t n = 0, total = 0;
    int rc = segments && texts ? 0 : -ENOMEM;
    for (int r = 0; rc == 0 && r < rows; r++) {
        texts[n] = s_load(self, PQgetvalue(res, r, 1));
        if (!texts[n])
            continue;
        segments[n].speaker = strcmp(PQgetvalue(res, r, 0), "caller") == 0 ? "caller" : "operator";
        segments[n].text = texts[n];
        total += strlen(texts[n]) + 1;
        n++;
    }
    PQclear(res);
    char *summary = NULL, *conversation = NULL;
    cJSON *faqs = NULL;
    const char *used = "extractive";
    bool fallback = false;
    if (rc == 0)
        rc = summary_make(self, segments, n, NULL, 0, !final, &summary, &used, &fallback);
    if (rc == 0 && !final && n > 0) {
        conversation = malloc(total + 1);
        if (conversation) {
            size_t w = 0;
            for (size_t i = 0; i < n; i++)
                w += (size_t)sprintf(conversation + w, "%s\n", texts[i]);
            s_strip_placeholders(conversation);
            faqs = s_suggest(self, call_id, conversation);
        }
    }
    if (rc == 0 && summary && !s_utf8_ok(summary)) {
        char hex[200] = "";
        for (size_t i = 0; summary[i] && i < 90; i++)
            snprintf(hex + 2 * i, 3, "%02x", (unsigned char)summary[i]);
        ncc_error("summary.bad_text", "call %s: the summary is not UTF-8 (%s)", call_id, hex);
        rc = -EILSEQ;
    }
    char *faqs_text = faqs ? cJSON_PrintUnformatted(faqs) : NULL;
    bool faqs_changed = faqs_text && cJSON_GetArraySize(faqs) > 0 && strcmp(faqs_text, old_faqs);
    int64_t version = 0;
    if (rc == 0) {
        const char *p[] = {call_id, summary, used, final ? "true" : "false",
                           faqs_changed ? faqs_text : NULL};
        res = ncc_db_exec(self->db,
                          "UPDATE calls SET summary = $2, summarizer = $3, final = final OR "
                          "$4::boolean, final_due = final_due AND NOT $4::boolean, due_at = NULL, "
                          "faqs = coalesce($5, faqs), version = version + CASE WHEN $4::boolean "
                          "THEN 1 ELSE 0 END, updated_at = now() WHERE call_id = $1 RETURNING "
                          "version, anger, confusion, satisfaction",
                          5, p, NULL);
        rc = res ? 0 : -EIO;
    }
    ncc_ctx_t ctx = ncc_service_ctx(self->service);
    emotion_t e = {0, 0, 0};
    if (rc == 0 && PQntuples(res) > 0) {
        version = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        e = (emotion_t){strtod(PQgetvalue(res, 0, 1), NULL), strtod(PQgetvalue(res, 0, 2), NULL),
                        strtod(PQgetvalue(res, 0, 3), NULL)};
    }
    if (res)
        PQclear(res);
    if (rc == 0 && final) {
        Ncc__Summary__Sentiment sentiment = NCC__SUMMARY__SENTIMENT__INIT;
        sentiment.has_anger = sentiment.has_confusion = sentiment.has_satisfaction = true;
        sentiment.anger = e.anger;
        sentiment.confusion = e.confusion;
        sentiment.satisfaction = e.satisfaction;
        sentiment.label = (char *)emotion_label(&e);
        Ncc__Summary__CallSummary out = NCC__SUMMARY__CALL_SUMMARY__INIT;
        out.call_id = (char *)call_id;
        out.has_operator_id = out.has_version = true;
        out.operator_id = operator;
        out.summary = summary;
        out.summarizer = (char *)used;
        out.sentiment = &sentiment;
        out.version = version;
        rc = ncc_outbox_add(self->db, &ctx, &out.base) < 0 ? -EIO : 0;
    }
    if (rc == 0 && operator> 0) {
        cJSON *data = cJSON_CreateObject();
        cJSON_AddStringToObject(data, "call_id", call_id);
        cJSON_AddStringToObject(data, "summary", summary);
        cJSON_AddBoolToObject(data, "final", final);
        cJSON_AddStringToObject(data, "summarizer", used);
        cJSON_AddItemToObject(data, "sentiment", summary_emotion_json(&e));
        rc = ncc_push_add(self->db, &ctx, operator, NULL, "summary.updated", data);
        cJSON_Delete(data);
    }
    if (rc == 0 && operator> 0 && faqs_changed) {
        cJSON *data = cJSON_CreateObject();
        cJSON_AddStringToObject(data, "call_id", call_id);
        cJSON_AddItemToObject(data, "faqs", faqs);
        faqs = NULL;
        rc = ncc_push_add(self->db, &ctx, operator, NULL, "faq.suggested", data);
        cJSON_Delete(data);
    }
    cJSON_Delete(faqs);
    free(faqs_text);
    free(conversation);
    free(summary);
    for (size_t i = 0; texts && i < n; i++)
        free(texts[i]);
    free(texts);
    free(segments);
    return rc;
}

static void s_tick(void *arg)
{
    summary_t *self = arg;
    if (ncc_db_begin(self->db) < 0)
        return;
    PGresult *res = ncc_db_exec(
        self->db,
        "SELECT call_id, operator_id, final_due, faqs FROM calls WHERE final_due OR due_at <= "
        "now() ORDER BY final_due DESC, due_at LIMIT 4 FOR UPDATE SKIP LOCKED",
        0, NULL, NULL);
    if (!res) {
        ncc_db_rollback(self->db);
        return;
    }
    int rows = PQntuples(res), rc = 0;
    for (int r = 0; rc == 0 && r < rows; r++)
        rc = s_summarise(self, PQgetvalue(res, r, 0), strtoll(PQgetvalue(res, r, 1), NULL, 10),
                         PQgetvalue(res, r, 2)[0] == 't', PQgetvalue(res, r, 3));
    PQclear(res);
    if (rc < 0 || ncc_db_commit(self->db) < 0) {
        ncc_warn("summary.tick_failed", "%s (retried at the next tick)", ncc_db_error(self->db));
        ncc_db_rollback(self->db);
        return;
    }
    if (rows > 0 && ncc_publisher_flush(ncc_service_publisher(self->service)) < 0)
        ncc_warn("outbox.flush_failed", "%s (the periodic flush will retry)",
                 ncc_db_error(self->db));
}

int summary_realtime_register(summary_t *self)
{
    if (ncc_service_subscribe(self->service, "calls", "ncc.calls.TranscriptAdded", s_on_transcript,
                              self) < 0 ||
        ncc_service_subscribe(self->service, "calls", "ncc.calls.CallStateChanged", s_on_state,
                              self) < 0 ||
        ncc_service_every(self->service, self->settings->tick_ms, s_tick, self) < 0)
        return -EINVAL;
    return 0;
}
