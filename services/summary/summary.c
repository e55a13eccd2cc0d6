/* summary: the service object, POST /api/v1/summaries (ncc.summary.Summarize)
 * and GET /api/v1/calls/{call_id}/summary (ncc.summary.GetCallSummary). */
#include "summary.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mecab.h>

#include "ncc/log.h"
#include "ncc/roles.h"
#include "summary.pb-c.h"

cJSON *summary_emotion_json(const emotion_t *e)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddNumberToObject(o, "anger", round(e->anger * 1000) / 1000);
    cJSON_AddNumberToObject(o, "confusion", round(e->confusion * 1000) / 1000);
    cJSON_AddNumberToObject(o, "satisfaction", round(e->satisfaction * 1000) / 1000);
    cJSON_AddStringToObject(o, "label", emotion_label(e));
    return o;
}

int summary_make(summary_t *self, const summary_segment_t *segments, size_t count,
                 const char *const *originals, size_t n_originals, bool embedded_only,
                 char **ret_summary, const char **ret_used, bool *ret_fallback)
{
    const char *reason = NULL;
    char *summary = NULL;
    *ret_fallback = false;
    int rc = summarizer_run(self->summarizer, segments, count, originals, n_originals,
                            embedded_only, &summary, ret_used, &reason);
    if (rc < 0)
        return rc;
    if (strcmp(*ret_used, "openai") == 0) {
        /* what came back is masked again: an entity in it is one the model made up or
         * recovered, and it is not kept */
        char *masked = NULL;
        mask_entity_t *entities = NULL;
        size_t n = 0;
        if (mask_text(self->mask, summary, strlen(summary), &masked, &entities, &n) < 0 || n > 0) {
            reason = "unmasked_entity";
            free(summary);
            summary = NULL;
        }
        free(masked);
        free(entities);
        if (!summary && (rc = summarizer_run(self->summarizer, segments, count, NULL, 0, true,
                                             &summary, ret_used, &(const char *){NULL})) < 0)
            return rc;
    }
    if (reason) {
        *ret_fallback = true;
        ncc_warn("summary.fallback", "the %s summarizer failed (%s): the extractive one answered",
                 self->settings->summarizer, reason);
    }
    *ret_summary = summary;
    return 0;
}

/* ---- POST /api/v1/summaries ----------------------------------------------------------------- */

static long s_chars(const char *text)
{
    long n = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        n += (*p & 0xC0) != 0x80;
    return n;
}

static bool s_blank(const char *text)
{
    for (const char *p = text; *p; p++)
        if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t' && strncmp(p, "　", 3) != 0)
            return false;
        else if (strncmp(p, "　", 3) == 0)
            p += 2;
    return true;
}

static void s_on_summarize(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    summary_t *self = arg;
    const Ncc__Summary__Summarize *m = (const Ncc__Summary__Summarize *)request->message;
    if (!m->text || s_blank(m->text)) {
        ncc_reply_error(reply, 422, "invalid_field", "text", "text is required");
        return;
    }
    long chars = s_chars(m->text);
    if (chars > self->settings->text_max_chars) {
        ncc_reply_error(reply, 413, "too_large", "text", "text is at most %d characters (%ld sent)",
                        self->settings->text_max_chars, chars);
        return;
    }
    char *masked = NULL;
    mask_entity_t *entities = NULL;
    size_t n = 0;
    int rc = mask_text(self->mask, m->text, strlen(m->text), &masked, &entities, &n);
    if (rc == -EILSEQ) {
        ncc_reply_error(reply, 422, "invalid_field", "text", "text is not valid UTF-8");
        return;
    }
    if (rc < 0) {
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        return;
    }
    /* the originals of the entities, to refuse a summary that repeats one */
    char **originals = calloc(n + 1, sizeof *originals);
    Ncc__Summary__Entity *items = calloc(n + 1, sizeof *items);
    Ncc__Summary__Entity **ptrs = calloc(n + 1, sizeof *ptrs);
    char *summary = NULL;
    if (!originals || !items || !ptrs)
        goto nomem;
    {
        /* code point -> byte offsets of the text */
        size_t cp = 0, byte = 0, len = strlen(m->text);
        size_t e = 0;
        size_t *starts = calloc(n + 1, sizeof *starts), *ends = calloc(n + 1, sizeof *ends);
        if (!starts || !ends) {
            free(starts);
            free(ends);
            goto nomem;
        }
        for (; byte <= len; byte++) {
            if (byte < len && ((unsigned char)m->text[byte] & 0xC0) == 0x80)
                continue;
            for (e = 0; e < n; e++) {
                if (entities[e].start == cp)
                    starts[e] = byte;
                if (entities[e].end == cp)
                    ends[e] = byte;
            }
            cp++;
        }
        for (e = 0; e < n; e++)
            originals[e] = strndup(m->text + starts[e], ends[e] - starts[e]);
        free(starts);
        free(ends);
    }
    summary_segment_t segment = {NULL, masked};
    const char *used = NULL;
    bool fallback = false;
    if (summary_make(self, &segment, 1, (const char *const *)originals, n, false, &summary, &used,
                     &fallback) < 0)
        goto nomem;
    emotion_t emotion = emotion_score(masked);
    Ncc__Summary__Sentiment sentiment = NCC__SUMMARY__SENTIMENT__INIT;
    sentiment.has_anger = sentiment.has_confusion = sentiment.has_satisfaction = true;
    sentiment.anger = round(emotion.anger * 1000) / 1000;
    sentiment.confusion = round(emotion.confusion * 1000) / 1000;
    sentiment.satisfaction = round(emotion.satisfaction * 1000) / 1000;
    sentiment.label = (char *)emotion_label(&emotion);
    Ncc__Summary__SummaryResult result = NCC__SUMMARY__SUMMARY_RESULT__INIT;
    result.masked_text = masked;
    result.summary = summary;
    result.sentiment = &sentiment;
    result.summarizer = (char *)used;
    result.has_fallback = true;
    result.fallback = fallback;
    for (size_t e = 0; e < n; e++) {
        ncc__summary__entity__init(&items[e]);
        items[e].type = (char *)mask_type_name(entities[e].type);
        items[e].has_start = items[e].has_end = true;
        items[e].start = (int32_t)entities[e].start;
        items[e].end = (int32_t)entities[e].end;
        ptrs[e] = &items[e];
    }
    result.n_entities = n;
    result.entities = ptrs;
    ncc_reply_message(reply, &result.base);
    goto out;
nomem:
    ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
out:
    for (size_t e = 0; originals && e < n; e++)
        free(originals[e]);
    free(originals);
    free(items);
    free(ptrs);
    free(summary);
    free(masked);
    free(entities);
}

/* ---- GET /api/v1/calls/{call_id}/summary ----------------------------------------------------- */

static void s_on_get(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    summary_t *self = arg;
    const Ncc__Summary__GetCallSummary *m = (const Ncc__Summary__GetCallSummary *)request->message;
    size_t len = m->call_id ? strlen(m->call_id) : 0;
    if (len == 0 || len > 128 ||
        strspn(m->call_id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") !=
            len) {
        ncc_reply_error(reply, 422, "invalid_field", "call_id",
                        "call_id is 1 to 128 of A-Z a-z 0-9 . _ : -");
        return;
    }
    const char *params[] = {m->call_id};
    PGresult *res = ncc_db_exec(
        self->db,
        "SELECT operator_id, summary, final, summarizer, anger, confusion, satisfaction, segments, "
        "entities, to_char(updated_at AT TIME ZONE 'Asia/Tokyo', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"+09:00\"'), faqs FROM calls WHERE call_id = $1",
        1, params, NULL);
    if (!res) {
        ncc_error("db.error", "call summary: %s", ncc_db_error(self->db));
        ncc_reply_error(reply, 503, "service_unavailable", NULL, "the database is unreachable");
        return;
    }
    ncc_actor_t actor = ncc_request_actor(request);
    bool oversight =
        actor.roles & (NCC_ROLE_SUPERVISOR | NCC_ROLE_ADMIN | NCC_ROLE_STAFF | NCC_ROLE_SYSTEM);
    if (PQntuples(res) == 0 ||
        (!oversight && strcmp(PQgetvalue(res, 0, 0), actor.id ? actor.id : "") != 0)) {
        PQclear(res);
        ncc_reply_error(reply, 404, "not_found", "call_id", "no summary of call %s", m->call_id);
        return;
    }
    Ncc__Summary__Sentiment sentiment = NCC__SUMMARY__SENTIMENT__INIT;
    emotion_t e = {strtod(PQgetvalue(res, 0, 4), NULL), strtod(PQgetvalue(res, 0, 5), NULL),
                   strtod(PQgetvalue(res, 0, 6), NULL)};
    sentiment.has_anger = sentiment.has_confusion = sentiment.has_satisfaction = true;
    sentiment.anger = e.anger;
    sentiment.confusion = e.confusion;
    sentiment.satisfaction = e.satisfaction;
    sentiment.label = (char *)emotion_label(&e);
    Ncc__Summary__CallSummaryView view = NCC__SUMMARY__CALL_SUMMARY_VIEW__INIT;
    view.call_id = m->call_id;
    view.has_operator_id = view.has_final = view.has_segments = view.has_entities = true;
    view.operator_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    view.summary = PQgetvalue(res, 0, 1);
    view.final = PQgetvalue(res, 0, 2)[0] == 't';
    view.summarizer = PQgetvalue(res, 0, 3);
    view.sentiment = &sentiment;
    view.segments = (int32_t)strtol(PQgetvalue(res, 0, 7), NULL, 10);
    view.entities = (int32_t)strtol(PQgetvalue(res, 0, 8), NULL, 10);
    view.updated_at = PQgetvalue(res, 0, 9);
    cJSON *faqs = cJSON_Parse(PQgetvalue(res, 0, 10));
    int n_faqs = cJSON_IsArray(faqs) ? cJSON_GetArraySize(faqs) : 0;
    Ncc__Summary__FaqSuggestion items[10], *ptrs[10];
    size_t k = 0;
    for (int i = 0; i < n_faqs && k < 10; i++) {
        cJSON *f = cJSON_GetArrayItem(faqs, i);
        cJSON *id = cJSON_GetObjectItemCaseSensitive(f, "id");
        cJSON *number = cJSON_GetObjectItemCaseSensitive(f, "number");
        cJSON *question = cJSON_GetObjectItemCaseSensitive(f, "question");
        ncc__summary__faq_suggestion__init(&items[k]);
        items[k].has_id = items[k].has_number = true;
        items[k].id = cJSON_IsNumber(id) ? (int64_t)id->valuedouble : 0;
        items[k].number = cJSON_IsNumber(number) ? (int64_t)number->valuedouble : 0;
        items[k].question = cJSON_IsString(question) ? question->valuestring : "";
        ptrs[k] = &items[k];
        k++;
    }
    view.n_faqs = k;
    view.faqs = ptrs;
    ncc_reply_message(reply, &view.base);
    cJSON_Delete(faqs);
    PQclear(res);
}

/* ---- the service ------------------------------------------------------------------------------
 */

summary_t *summary_new(ncc_service_t *service, const summary_settings_t *settings)
{
    summary_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->service = service;
    self->db = ncc_service_db(service);
    self->keyring = ncc_service_keyring(service);
    self->settings = settings;
    self->mask = mask_new();
    summarizer_config_t config = {
        .kind = settings->summarizer,
        .base_url = settings->openai_base_url,
        .model = settings->openai_model,
        .api_key = settings->openai_api_key,
        .timeout_ms = settings->openai_timeout_ms,
        .max_chars = settings->max_chars,
    };
    bool openai = settings->summarizer && strcmp(settings->summarizer, "openai") == 0;
    if (settings->summarizer && !openai && strcmp(settings->summarizer, "extractive") != 0) {
        ncc_error("config.invalid", "NCC_SUMMARY_SUMMARIZER is extractive or openai");
        summary_destroy(&self);
        return NULL;
    }
    if (openai && (!settings->openai_base_url || !*settings->openai_base_url ||
                   !settings->openai_model || !*settings->openai_model)) {
        ncc_error("config.invalid", "NCC_SUMMARY_SUMMARIZER=openai needs "
                                    "NCC_SUMMARY_OPENAI_BASE_URL and NCC_SUMMARY_OPENAI_MODEL");
        summary_destroy(&self);
        return NULL;
    }
    if (!self->mask) {
        ncc_error("summary.mecab_failed", "MeCab with its IPA dictionary is needed: %s",
                  mecab_strerror(NULL));
        summary_destroy(&self);
        return NULL;
    }
    self->summarizer = summarizer_new(&config);
    if (!self->summarizer ||
        ncc_service_on(service, &ncc__summary__summarize__descriptor, NCC_ROLES_ALL, s_on_summarize,
                       self) < 0 ||
        ncc_service_on(service, &ncc__summary__get_call_summary__descriptor, NCC_ROLES_ALL,
                       s_on_get, self) < 0 ||
        summary_realtime_register(self) < 0 || summary_draft_register(self) < 0) {
        ncc_error("summary.setup_failed", "cannot set up the summarizer or the handlers");
        summary_destroy(&self);
        return NULL;
    }
    ncc_info("summary.summarizer", "summaries by %s%s%s", openai ? "openai at " : "extractive",
             openai ? settings->openai_base_url : "", openai ? "" : " (built in)");
    if (!self->keyring)
        ncc_warn("summary.no_keys",
                 "NCC_DATA_KEYS is unset: masked segments are stored as they are");
    return self;
}

void summary_destroy(summary_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    summary_t *self = *self_p;
    summarizer_destroy(&self->summarizer);
    draft_destroy(&self->draft);
    mask_destroy(&self->mask);
    free(self);
    *self_p = NULL;
}
