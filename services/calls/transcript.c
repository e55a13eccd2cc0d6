/* transcript: POST /api/v1/calls/{call_id}/transcript (signed, as the PBX's
 * events): speech-to-text segments of a call (R26), stored encrypted, each
 * seq once, pushed live to the operator of the call (transcript.segment);
 * and GET /api/v1/calls/transcripts/tokens.csv: the transcripts as one row
 * per MeCab token for text mining (KH Coder, Excel). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mecab.h>

#include "calls.h"
#include "ncc/crypto.h"
#include "ncc/csv.h"
#include "ncc/log.h"
#include "ncc/roles.h"
#include "ncc/time.h"

#define S_SEGMENTS_MAX   200
#define S_TEXT_MAX_CHARS 4000
#define S_EXPORT_MAX     (3 * 1024 * 1024) /* one bus message, less room */

/* Characters of well-formed UTF-8 without control characters, or -1. */
static long s_chars(const char *text)
{
    long n = 0;
    const unsigned char *p = (const unsigned char *)text;
    while (*p) {
        unsigned char c = *p;
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (len == 0 || (len == 1 && (c < 0x20 || c == 0x7f)))
            return -1;
        for (size_t i = 1; i < len; i++)
            if ((p[i] & 0xC0) != 0x80)
                return -1;
        p += len;
        n++;
    }
    return n;
}

static const char *s_check(const Ncc__Calls__TranscriptSegment *s, const char **ret_field)
{
    *ret_field = "segments";
    if (!s->has_seq || s->seq < 0)
        return "each segment has a seq of 0 or more";
    if (!s->speaker || (strcmp(s->speaker, "caller") != 0 && strcmp(s->speaker, "operator") != 0))
        return "speaker is caller or operator";
    if (!s->has_start_ms || !s->has_end_ms || s->start_ms < 0 || s->end_ms < s->start_ms)
        return "start_ms and end_ms are given, 0 <= start_ms <= end_ms";
    long chars = s->text ? s_chars(s->text) : -1;
    if (chars < 1 || chars > S_TEXT_MAX_CHARS)
        return "text is 1 to 4000 characters of UTF-8 without control characters";
    return NULL;
}

/* ncc.calls.TranscriptAdded with the new segments (indexes in m->segments). */
static int s_publish_added(calls_t *self, const ncc_ctx_t *ctx, const Ncc__Calls__AddTranscript *m,
                           const size_t *index, int n, int64_t operator_id)
{
    Ncc__Calls__TranscriptSegment *segments[S_SEGMENTS_MAX];
    for (int i = 0; i < n; i++)
        segments[i] = m->segments[index[i]];
    Ncc__Calls__TranscriptAdded event = NCC__CALLS__TRANSCRIPT_ADDED__INIT;
    event.call_id = m->call_id;
    event.has_operator_id = true;
    event.operator_id = operator_id;
    event.n_segments = (size_t)n;
    event.segments = segments;
    return ncc_outbox_add(self->db, ctx, &event.base) < 0 ? -EIO : 0;
}

static void s_on_add(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    calls_t *self = arg;
    const Ncc__Calls__AddTranscript *m = (const Ncc__Calls__AddTranscript *)request->message;
    if (!m->call_id || !calls_id_ok(m->call_id)) {
        ncc_reply_error(reply, 422, "invalid_field", "call_id",
                        "call_id is 1 to 128 of A-Z a-z 0-9 . _ : -");
        return;
    }
    if (m->n_segments == 0 || m->n_segments > S_SEGMENTS_MAX) {
        ncc_reply_error(reply, 422, "invalid_field", "segments", "send 1 to 200 segments");
        return;
    }
    for (size_t i = 0; i < m->n_segments; i++) {
        const char *field = NULL;
        const char *why = s_check(m->segments[i], &field);
        if (why) {
            ncc_reply_error(reply, 422, "invalid_field", field, "segment %zu: %s", i, why);
            return;
        }
    }
    if (!self->keyring) {
        ncc_reply_error(reply, 503, "service_unavailable", NULL,
                        "no data keys (NCC_DATA_KEYS): transcripts cannot be stored");
        return;
    }
    ncc_ctx_t ctx = ncc_request_ctx(request);
    const char *call_params[] = {m->call_id};
    cJSON *pushed = NULL;
    int accepted = 0;
    size_t accepted_seqs[S_SEGMENTS_MAX]; /* indexes in m->segments of the new ones */
    if (ncc_db_begin(self->db) < 0)
        goto db_error;
    PGresult *res = ncc_db_exec(self->db,
                                "SELECT coalesce(operator_id, 0) FROM calls WHERE call_id = $1 "
                                "FOR SHARE",
                                1, call_params, NULL);
    if (!res)
        goto db_error;
    if (PQntuples(res) == 0) {
        PQclear(res);
        ncc_db_rollback(self->db);
        ncc_reply_error(reply, 404, "not_found", "call_id", "no call %s", m->call_id);
        return;
    }
    int64_t operator_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    pushed = cJSON_CreateArray();
    for (size_t i = 0; i < m->n_segments; i++) {
        const Ncc__Calls__TranscriptSegment *s = m->segments[i];
        char *enc = ncc_encrypt(self->keyring, CALLS_TEXT_CONTEXT, s->text, strlen(s->text));
        if (!enc) {
            ncc_db_rollback(self->db);
            cJSON_Delete(pushed);
            ncc_reply_error(reply, 500, "internal", NULL, "could not encrypt the transcript");
            return;
        }
        char seq[16], start[16], end[16];
        snprintf(seq, sizeof seq, "%d", s->seq);
        snprintf(start, sizeof start, "%d", s->start_ms);
        snprintf(end, sizeof end, "%d", s->end_ms);
        const char *params[] = {m->call_id, seq, s->speaker, start, end, enc};
        res = ncc_db_exec(self->db,
                          "INSERT INTO transcript_segments (call_id, seq, speaker, start_ms, "
                          "end_ms, text_enc) VALUES ($1, $2::int, $3, $4::int, $5::int, $6) ON "
                          "CONFLICT (call_id, seq) DO NOTHING RETURNING 1",
                          6, params, NULL);
        free(enc);
        if (!res)
            goto db_error;
        if (PQntuples(res) > 0) {
            accepted_seqs[accepted] = i;
            accepted++;
            cJSON *item = cJSON_CreateObject();
            cJSON_AddNumberToObject(item, "seq", s->seq);
            cJSON_AddStringToObject(item, "speaker", s->speaker);
            cJSON_AddNumberToObject(item, "start_ms", s->start_ms);
            cJSON_AddNumberToObject(item, "end_ms", s->end_ms);
            cJSON_AddStringToObject(item, "text", s->text);
            cJSON_AddItemToArray(pushed, item);
        }
        PQclear(res);
    }
    if (accepted > 0 && s_publish_added(self, &ctx, m, accepted_seqs, accepted, operator_id) < 0)
        goto db_error;
    if (accepted > 0 && operator_id > 0) {
        cJSON *data = cJSON_CreateObject();
        cJSON_AddStringToObject(data, "call_id", m->call_id);
        cJSON_AddItemToObject(data, "segments", pushed);
        pushed = NULL;
        int rc = calls_push(self, &ctx, operator_id, NULL, "transcript.segment", data);
        cJSON_Delete(data);
        if (rc < 0)
            goto db_error;
    }
    if (ncc_db_commit(self->db) < 0)
        goto db_error;
    cJSON_Delete(pushed);
    calls_flush(self);
    Ncc__Calls__TranscriptAck ack = NCC__CALLS__TRANSCRIPT_ACK__INIT;
    ack.call_id = m->call_id;
    ack.has_accepted = ack.has_duplicates = true;
    ack.accepted = accepted;
    ack.duplicates = (int32_t)m->n_segments - accepted;
    ncc_reply_message(reply, &ack.base);
    return;
db_error:
    cJSON_Delete(pushed);
    calls_reply_db_error(self, reply, "transcript");
}

/* ---- tokens for text mining ------------------------------------------------------------ */

/* Field i (0-based) of a MeCab IPA feature string "名詞,一般,*,...,原形,読み,発音"
 * into buf. */
static const char *s_feature(const char *feature, int index, char *buf, size_t len)
{
    const char *p = feature;
    for (int i = 0; i < index && p; i++) {
        p = strchr(p, ',');
        if (p)
            p++;
    }
    if (!p) {
        buf[0] = '\0';
        return buf;
    }
    size_t n = strcspn(p, ",");
    if (n >= len)
        n = len - 1;
    memcpy(buf, p, n);
    buf[n] = '\0';
    return buf;
}

static void s_on_tokens(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    calls_t *self = arg;
    const Ncc__Calls__ExportTranscriptTokens *m =
        (const Ncc__Calls__ExportTranscriptTokens *)request->message;
    bool cp932 = m->encoding && strcmp(m->encoding, "shift_jis") == 0;
    if (m->encoding && *m->encoding && !cp932 && strcmp(m->encoding, "utf-8") != 0) {
        ncc_reply_error(reply, 422, "invalid_field", "encoding", "encoding is utf-8 or shift_jis");
        return;
    }
    const char *fields[] = {"from", "to"};
    const char *values[] = {m->from, m->to};
    for (size_t i = 0; i < 2; i++) {
        if (values[i] && *values[i] && !ncc_rfc3339_valid(values[i])) {
            ncc_reply_error(reply, 422, "invalid_field", fields[i],
                            "%s is an RFC 3339 time with an offset", fields[i]);
            return;
        }
    }
    if (m->call_id && *m->call_id && !calls_id_ok(m->call_id)) {
        ncc_reply_error(reply, 422, "invalid_field", "call_id", "call_id is malformed");
        return;
    }
    if (self->settings->mecab_disabled || !self->keyring) {
        ncc_reply_error(reply, 503, "service_unavailable", NULL,
                        "the token export is off on this machine");
        return;
    }
    if (!self->mecab) {
        self->mecab = mecab_new2("");
        if (!self->mecab) {
            ncc_error("calls.mecab_failed", "MeCab: %s", mecab_strerror(NULL));
            ncc_reply_error(reply, 503, "service_unavailable", NULL, "MeCab is not available");
            return;
        }
    }
    const char *params[] = {m->from && *m->from ? m->from : NULL, m->to && *m->to ? m->to : NULL,
                            m->call_id && *m->call_id ? m->call_id : NULL};
    PGresult *res = ncc_db_exec(
        self->db,
        "SELECT s.call_id, s.seq, s.speaker, s.start_ms, s.text_enc, " CALLS_RFC3339(
            "c.ringing_at") " FROM transcript_segments s JOIN calls c ON c.call_id = s.call_id "
                            "WHERE ($1::timestamptz IS NULL OR c.ringing_at >= $1::timestamptz) "
                            "AND ($2::timestamptz IS NULL OR c.ringing_at < $2::timestamptz) AND "
                            "($3::text IS NULL OR s.call_id = $3) ORDER BY c.ringing_at, "
                            "s.call_id, s.seq",
        3, params, NULL);
    if (!res) {
        calls_reply_db_error(self, reply, "transcript tokens");
        return;
    }
    ncc_csv_writer_t *csv = ncc_csv_writer_new(
        cp932 ? NCC_CSV_WRITE_CP932 | NCC_CSV_WRITE_CP932_REPLACE : NCC_CSV_WRITE_BOM, NULL, NULL);
    if (!csv) {
        PQclear(res);
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        return;
    }
    static const char *const header[] = {
        "call_id", "call_started_at", "seq",     "speaker", "start_ms",  "token_index",
        "surface", "base_form",       "reading", "pos",     "pos_detail"};
    ncc_csv_writer_row(csv, header, sizeof header / sizeof header[0]);
    int64_t rows = 0;
    bool too_large = false;
    for (int r = 0; r < PQntuples(res) && !too_large; r++) {
        char *text = ncc_decrypt(self->keyring, CALLS_TEXT_CONTEXT, PQgetvalue(res, r, 4), NULL);
        if (!text)
            continue;
        const mecab_node_t *node = mecab_sparse_tonode(self->mecab, text);
        int index = 0;
        for (; node; node = node->next) {
            if (node->stat == MECAB_BOS_NODE || node->stat == MECAB_EOS_NODE)
                continue;
            char surface[256], base[256], reading[256], pos[64], detail[64], idx[16];
            size_t n = node->length < sizeof surface ? node->length : sizeof surface - 1;
            memcpy(surface, node->surface, n);
            surface[n] = '\0';
            s_feature(node->feature, 6, base, sizeof base);
            if (strcmp(base, "*") == 0 || !*base)
                snprintf(base, sizeof base, "%s", surface);
            s_feature(node->feature, 7, reading, sizeof reading);
            if (strcmp(reading, "*") == 0)
                reading[0] = '\0';
            s_feature(node->feature, 0, pos, sizeof pos);
            s_feature(node->feature, 1, detail, sizeof detail);
            if (strcmp(detail, "*") == 0)
                detail[0] = '\0';
            snprintf(idx, sizeof idx, "%d", index++);
            const char *row[] = {PQgetvalue(res, r, 0),
                                 PQgetvalue(res, r, 5),
                                 PQgetvalue(res, r, 1),
                                 PQgetvalue(res, r, 2),
                                 PQgetvalue(res, r, 3),
                                 idx,
                                 surface,
                                 base,
                                 reading,
                                 pos,
                                 detail};
            ncc_csv_writer_row(csv, row, sizeof row / sizeof row[0]);
            rows++;
        }
        free(text);
        size_t size = 0;
        ncc_csv_writer_data(csv, &size);
        too_large = size > S_EXPORT_MAX;
    }
    PQclear(res);
    size_t len = 0;
    char *data = too_large ? NULL : ncc_csv_writer_take(csv, &len);
    ncc_csv_writer_destroy(&csv);
    if (too_large || !data) {
        free(data);
        ncc_reply_error(reply, too_large ? 413 : 500, too_large ? "too_large" : "internal", NULL,
                        too_large ? "more than 3 MiB of tokens: narrow the period (from, to)"
                                  : "out of memory");
        return;
    }
    Ncc__Calls__TranscriptTokensFile file = NCC__CALLS__TRANSCRIPT_TOKENS_FILE__INIT;
    file.has_csv = true;
    file.csv.data = (uint8_t *)data;
    file.csv.len = len;
    file.encoding = cp932 ? "shift_jis" : "utf-8";
    file.filename = "transcript-tokens.csv";
    file.has_rows = true;
    file.rows = rows;
    ncc_reply_message(reply, &file.base);
    free(data);
}

int calls_transcript_register(calls_t *self)
{
    if (ncc_service_on(self->service, &ncc__calls__add_transcript__descriptor, NCC_ROLE_SYSTEM,
                       s_on_add, self) < 0 ||
        ncc_service_on(self->service, &ncc__calls__export_transcript_tokens__descriptor,
                       NCC_ROLE_SUPERVISOR | NCC_ROLE_ADMIN, s_on_tokens, self) < 0)
        return -EINVAL;
    return 0;
}
