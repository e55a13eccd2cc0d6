/* history: the service object, the helpers the handler files share
 * (history.h): records as messages, the insert with its receipt number, the
 * caller's number sealed, times, texts and codes checked. */
#include "history.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "directory.pb-c.h"
#include "ncc/crypto.h"
#include "ncc/roles.h"

#define S_FLUSH_TICK_MS   50
#define S_NAME_TTL_US     (10LL * 60 * 1000000) /* operator names are asked again after this */
#define S_NAME_TIMEOUT_MS 1000

/* ---- the service object --------------------------------------------------------------- */

static void s_flush_tick(void *arg)
{
    history_t *self = arg;
    if (self->flush_pending) {
        self->flush_pending = false;
        history_flush(self);
    }
}

/* The index starts once the schema is migrated (its thread reads the tables). */
static void s_on_ready(void *arg)
{
    history_t *self = arg;
    if (self->search)
        return;
    const char *url = getenv("NCC_DATABASE_URL");
    self->search = history_search_new(url ? url : "", self->settings->index_poll_ms);
    if (!self->search)
        ncc_error("search.start_failed", "the search index cannot start: searches use the "
                                         "database (slower, no width or kana folding)");
}

static void s_purge_tick(void *arg)
{
    history_retention_tick(arg);
}

history_t *history_new(ncc_service_t *service, history_settings_t *settings)
{
    history_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->service = service;
    self->db = ncc_service_db(service);
    self->settings = settings;
    static const char *const kinds[] = {"departments", "categories", "reception-types",
                                        "handling-types", NULL};
    self->masters = ncc_masters_cache_new(service, kinds);
    self->operator_names = zhashx_new();
    if (!self->masters || !self->operator_names) {
        ncc_error("history.start_failed", "the masters cache, names or search index cannot start");
        goto fail;
    }
    zhashx_set_destructor(self->operator_names, (zhashx_destructor_fn *)zstr_free);
    if (ncc_service_encrypted_column(service, "records", "id", "caller_number",
                                     HISTORY_CALLER_CONTEXT) < 0 ||
        history_records_register(self) < 0 || history_calls_register(self) < 0 ||
        history_transfer_register(self) < 0 || history_retention_register(self) < 0 ||
        history_form_register(self) < 0 || history_summary_register(self) < 0 ||
        ncc_service_every(service, S_FLUSH_TICK_MS, s_flush_tick, self) < 0 ||
        ncc_service_every(service, 1000, s_purge_tick, self) < 0) {
        ncc_error("history.start_failed", "handlers could not be registered");
        goto fail;
    }
    ncc_service_on_ready(service, s_on_ready, self);
    if (!ncc_service_keyring(service))
        ncc_warn(
            "history.no_data_keys",
            "NCC_DATA_KEYS is not set: callers' numbers cannot be stored (records of calls are "
            "kept without them)");
    return self;
fail:
    history_destroy(&self);
    return NULL;
}

void history_destroy(history_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    history_t *self = *self_p;
    history_transfer_stop(self);
    history_search_destroy(&self->search);
    ncc_masters_cache_destroy(&self->masters);
    zhashx_destroy(&self->operator_names);
    history_form_clear(self);
    free(self);
    *self_p = NULL;
}

void history_reply_db_error(history_t *self, ncc_reply_t *reply, const char *what)
{
    ncc_reply_db_error(self->db, reply, what);
}

void history_flush(history_t *self)
{
    if (ncc_publisher_flush(ncc_service_publisher(self->service)) < 0)
        ncc_warn("outbox.flush_failed", "%s (the periodic flush will retry)",
                 ncc_db_error(self->db));
    history_search_wake(self->search);
}

/* ---- records as messages ---------------------------------------------------------------- */

static char *s_value(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

/* The x_ values of the stored object into rec (in jsonb's order of the keys). */
static void s_extra_from_text(history_record_t *rec, const char *text)
{
    cJSON *json = cJSON_Parse(text);
    if (!cJSON_IsObject(json)) {
        cJSON_Delete(json);
        return;
    }
    size_t n = (size_t)cJSON_GetArraySize(json);
    rec->extra = json;
    if (n == 0)
        return;
    rec->extra_items = calloc(n, sizeof *rec->extra_items);
    rec->extra_ptrs = calloc(n, sizeof *rec->extra_ptrs);
    if (!rec->extra_items || !rec->extra_ptrs)
        return;
    size_t k = 0;
    cJSON *item;
    cJSON_ArrayForEach(item, json)
    {
        if (!cJSON_IsString(item) || !item->string)
            continue; /* ncc-history stores text only */
        Ncc__History__RecordValue *v = &rec->extra_items[k];
        ncc__history__record_value__init(v);
        v->name = item->string;
        v->value = item->valuestring;
        rec->extra_ptrs[k++] = v;
    }
    rec->msg.n_extra = k;
    rec->msg.extra = rec->extra_ptrs;
}

void history_record_from_row(history_t *self, const PGresult *res, int row, history_record_t *rec)
{
    memset(rec, 0, sizeof *rec);
    Ncc__History__Record *m = &rec->msg;
    ncc__history__record__init(m);
    m->has_id = true;
    m->id = strtoll(PQgetvalue(res, row, 0), NULL, 10);
    m->receipt_id = s_value(res, row, 1);
    m->call_id = s_value(res, row, 2);
    m->channel = s_value(res, row, 3);
    m->has_operator_id = true;
    m->operator_id = strtoll(PQgetvalue(res, row, 4), NULL, 10);
    m->operator_name = s_value(res, row, 5);
    static const int time_columns[5] = {6, 7, 8, 19, 20};
    char **time_fields[5] = {&m->started_at, &m->ended_at, &m->wrapup_ended_at, &m->created_at,
                             &m->updated_at};
    for (int i = 0; i < 5; i++) {
        const char *us = s_value(res, row, time_columns[i]);
        if (!us)
            continue;
        int64_t value = strtoll(us, NULL, 10);
        if (i == 0)
            rec->started_us = value;
        history_time_format(value, rec->times[i]);
        *time_fields[i] = rec->times[i];
    }
    m->reception_type = s_value(res, row, 9);
    m->department_id = s_value(res, row, 10);
    m->handling_type = s_value(res, row, 11);
    const char *faq = PQgetvalue(res, row, 12);
    for (char *end = NULL; *faq && m->n_faq_ids < 3; faq = end) {
        long long v = strtoll(faq, &end, 10);
        if (end == faq)
            break;
        rec->faq_ids[m->n_faq_ids++] = v;
    }
    m->faq_ids = rec->faq_ids;
    m->category = s_value(res, row, 13);
    m->inquiry = s_value(res, row, 14);
    m->response = s_value(res, row, 15);
    m->transfer_to = s_value(res, row, 16);
    m->summary = s_value(res, row, 17);
    m->status = s_value(res, row, 18);
    m->has_version = true;
    m->version = strtoll(PQgetvalue(res, row, 21), NULL, 10);
    const char *cipher = s_value(res, row, 22);
    if (cipher) {
        const ncc_keyring_t *keys = ncc_service_keyring(self->service);
        rec->caller_number = keys ? ncc_decrypt(keys, HISTORY_CALLER_CONTEXT, cipher, NULL) : NULL;
        if (!rec->caller_number)
            ncc_warn("history.undecryptable",
                     "record %" PRId64 ": the caller's number does not decrypt (key missing, "
                     "tampered or corrupted): left out",
                     m->id);
        m->caller_number = rec->caller_number;
    }
    m->has_fiscal_year = true;
    m->fiscal_year = (int32_t)strtol(PQgetvalue(res, row, 23), NULL, 10);
    int extra_col = PQfnumber(res, "record_extra");
    if (extra_col >= 0 && !PQgetisnull(res, row, extra_col))
        s_extra_from_text(rec, PQgetvalue(res, row, extra_col));
}

void history_time_format(int64_t unix_us, char out[32])
{
    /* floor division: times before 1970 round down too */
    int64_t seconds = unix_us / 1000000 - (unix_us % 1000000 < 0 ? 1 : 0);
    time_t t = (time_t)(seconds + 9 * 3600);
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        out[0] = '\0';
        return;
    }
    /* Written by hand: five times a row, this was a large share of an export's time in
     * snprintf. Years outside 0..9999 (never in a record) are clamped to keep 25 bytes. */
    int year = tm.tm_year + 1900;
    year = year < 0 ? 0 : year > 9999 ? 9999 : year;
    const int parts[6] = {year, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec};
    char *p = out;
    for (int i = 0; i < 6; i++) {
        int v = parts[i];
        if (i == 0) {
            *p++ = (char)('0' + v / 1000);
            *p++ = (char)('0' + v / 100 % 10);
        }
        *p++ = (char)('0' + v / 10 % 10);
        *p++ = (char)('0' + v % 10);
        *p++ = "--T::+"[i];
    }
    memcpy(p, "09:00", 6);
}

void history_record_clear(history_record_t *rec)
{
    cJSON_Delete(rec->extra);
    free(rec->extra_items);
    free(rec->extra_ptrs);
    if (rec->caller_number) {
        size_t len = strlen(rec->caller_number);
        memset(rec->caller_number, 0, len);
        free(rec->caller_number);
    }
    memset(rec, 0, sizeof *rec);
}

int history_record_load(history_t *self, int64_t id, bool lock, PGresult **ret_res,
                        history_record_t *rec)
{
    char id_text[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, id);
    const char *params[] = {id_text};
    PGresult *res = ncc_db_exec(self->db,
                                lock ? "SELECT " HISTORY_RECORD_COLUMNS_EXTRA
                                       " FROM records WHERE id = $1::bigint FOR UPDATE"
                                     : "SELECT " HISTORY_RECORD_COLUMNS_EXTRA
                                       " FROM records WHERE id = $1::bigint",
                                1, params, NULL);
    if (!res)
        return -EIO;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return -ENOENT;
    }
    history_record_from_row(self, res, 0, rec);
    *ret_res = res;
    return 0;
}

int history_record_changed(history_t *self, const ncc_ctx_t *ctx, const history_record_t *rec,
                           const char *change, const char *source)
{
    const Ncc__History__Record *m = &rec->msg;
    Ncc__History__RecordChanged event = NCC__HISTORY__RECORD_CHANGED__INIT;
    event.has_record_id = true;
    event.record_id = m->id;
    event.receipt_id = m->receipt_id;
    event.change = (char *)change;
    event.has_version = true;
    event.version = m->version;
    event.status = m->status;
    event.call_id = m->call_id;
    event.channel = m->channel;
    event.has_operator_id = true;
    event.operator_id = m->operator_id;
    event.started_at = m->started_at;
    event.ended_at = m->ended_at;
    event.wrapup_ended_at = m->wrapup_ended_at;
    event.department_id = m->department_id;
    event.category = m->category;
    event.has_fiscal_year = true;
    event.fiscal_year = m->fiscal_year;
    event.transfer_to = m->transfer_to; /* for ncc-report (docs/kpi.md) */
    event.n_faq_ids = m->n_faq_ids;
    event.faq_ids = m->faq_ids;
    event.source = (char *)source;
    return ncc_outbox_add(self->db, ctx, &event.base);
}

/* ---- the caller's number ------------------------------------------------------------------ */

bool history_caller_digits(const char *number, char *out, size_t len)
{
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)number;
    bool plus = false;
    while (*p == ' ')
        p++;
    if (*p == '+') {
        plus = true;
        p++;
    }
    for (; *p && n + 1 < len; p++) {
        if (*p >= '0' && *p <= '9') {
            out[n++] = (char)*p;
        } else if (p[0] == 0xEF && p[1] == 0xBC && p[2] >= 0x90 && p[2] <= 0x99) {
            out[n++] = (char)('0' + (p[2] - 0x90)); /* full-width digit U+FF10..FF19 */
            p += 2;
        }
    }
    out[n] = '\0';
    if (plus && n > 2 && out[0] == '8' && out[1] == '1') {
        /* +81 3 1234 5678 is 03 1234 5678 in Japan */
        memmove(out + 1, out + 2, n - 1);
        out[0] = '0';
    }
    return n > 0;
}

int history_caller_seal(history_t *self, const char *number, char **ret_cipher, char bidx[65])
{
    char digits[64];
    if (!history_caller_digits(number, digits, sizeof digits))
        return -EINVAL;
    const ncc_keyring_t *keys = ncc_service_keyring(self->service);
    if (!keys)
        return -ENOKEY;
    if (ncc_blind_index(keys, HISTORY_CALLER_CONTEXT, digits, bidx) < 0)
        return -ENOKEY;
    *ret_cipher = ncc_encrypt(keys, HISTORY_CALLER_CONTEXT, number, strlen(number));
    return *ret_cipher ? 0 : -EIO;
}

/* ---- the insert ---------------------------------------------------------------------------- */

static const char *s_nonempty(const char *text)
{
    return text && *text ? text : NULL;
}

/* "{1,2,3}" for a bigint[] parameter. */
static void s_faq_array(const int64_t *ids, size_t n, char *out, size_t len)
{
    size_t used = (size_t)snprintf(out, len, "{");
    for (size_t i = 0; i < n && used < len; i++)
        used += (size_t)snprintf(out + used, len - used, "%s%" PRId64, i ? "," : "", ids[i]);
    if (used < len)
        snprintf(out + used, len - used, "}");
}

int history_insert(history_t *self, const history_new_record_t *r, int64_t *ret_id)
{
    char *cipher = NULL, bidx[65] = "";
    if (s_nonempty(r->caller_number)) {
        int rc = history_caller_seal(self, r->caller_number, &cipher, bidx);
        if (rc == -ENOKEY)
            return rc;
        if (rc < 0 && rc != -EINVAL)
            return -EIO;
    }
    char faq[96], operator_id[24], call_version[24];
    s_faq_array(r->faq_ids, r->n_faq_ids, faq, sizeof faq);
    snprintf(operator_id, sizeof operator_id, "%" PRId64, r->operator_id);
    snprintf(call_version, sizeof call_version, "%" PRId64, r->call_version);
    const char *status = s_nonempty(r->status) ? r->status : "open";
    bool wrapup_now = r->wrapup_now && (r->status_final || strcmp(status, "closed") == 0);
    /* A summary given with a new record is a person's (the API, the CSV import): ncc-summary
     * never overwrites it. */
    const char *summary_source = s_nonempty(r->summary) ? "user" : "";
    const char *params[] = {
        r->started_at,
        s_nonempty(r->call_id),
        r->channel,
        operator_id,
        r->operator_name ? r->operator_name : "",
        s_nonempty(r->ended_at),
        s_nonempty(r->wrapup_ended_at),
        wrapup_now ? "t" : "f",
        r->reception_type ? r->reception_type : "",
        r->department_id ? r->department_id : "",
        r->handling_type ? r->handling_type : "",
        faq,
        r->category ? r->category : "",
        r->inquiry ? r->inquiry : "",
        r->response ? r->response : "",
        r->transfer_to ? r->transfer_to : "",
        r->summary ? r->summary : "",
        status,
        cipher,
        bidx[0] ? bidx : NULL,
        r->source ? r->source : "api",
        call_version,
        s_nonempty(r->receipt_id),
        s_nonempty(r->extra) ? r->extra : "{}",
        summary_source,
    };
    /* The receipt number: the fiscal year's counter moves by one (its row
     * lock orders concurrent creators), or past a number given. */
    // clang-format off
    static const char sql[] =
        "WITH n AS ("
        "  INSERT INTO receipt_counters AS c (fiscal_year, last_number)"
        "  VALUES (fiscal_year_of($1::timestamptz),"
        "          CASE WHEN $23::text IS NULL THEN 1"
        "               ELSE substring($23::text from '-([0-9]+)$')::bigint END)"
        "  ON CONFLICT (fiscal_year) DO UPDATE SET last_number ="
        "    CASE WHEN $23::text IS NULL THEN c.last_number + 1"
        "         ELSE greatest(c.last_number, excluded.last_number) END"
        "  RETURNING fiscal_year, last_number)"
        " INSERT INTO records (receipt_id, started_at, call_id, channel, operator_id, operator_name,"
        "   ended_at, wrapup_ended_at, reception_type, department_id, handling_type, faq_ids,"
        "   category, inquiry, response, transfer_to, summary, status, caller_number,"
        "   caller_number_bidx, source, call_version, extra, summary_source)"
        " SELECT coalesce($23::text, 'R' || n.fiscal_year || '-' ||"
        "          lpad(n.last_number::text, greatest(6, length(n.last_number::text)), '0')),"
        "   $1::timestamptz, $2, $3, $4::bigint, $5, $6::timestamptz,"
        "   CASE WHEN $8::boolean THEN now() ELSE $7::timestamptz END,"
        "   $9, $10, $11, $12::bigint[], $13, $14, $15, $16, $17, $18, $19, $20, $21, $22::bigint,"
        "   $24::jsonb, $25"
        " FROM n RETURNING id";
    // clang-format on
    char state[6] = "";
    PGresult *res =
        ncc_db_exec(self->db, sql, (int)(sizeof params / sizeof params[0]), params, state);
    free(cipher);
    if (!res)
        return strcmp(state, "23505") == 0 ? -EEXIST : -EIO;
    *ret_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return 0;
}

/* ---- checks -------------------------------------------------------------------------------- */

/* n digits at *p (exactly n when exact, else 1..n) into *ret; moves *p. */
static bool s_digits(const char **p, int n, bool exact, int *ret)
{
    int v = 0, k = 0;
    while (k < n && (*p)[k] >= '0' && (*p)[k] <= '9') {
        v = v * 10 + ((*p)[k] - '0');
        k++;
    }
    if (k == 0 || (exact && k != n))
        return false;
    *p += k;
    *ret = v;
    return true;
}

static int s_days_in_month(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

int history_time_parse(const char *text, unsigned flags, char out[40], int64_t *ret_unix,
                       bool *ret_date_only)
{
    if (!text)
        return -EINVAL;
    const char *p = text;
    bool local = flags & HISTORY_TIME_LOCAL;
    int year, month, day, hour = 0, minute = 0, second = 0, off = 9 * 60;
    int frac = 0, frac_digits = 0;
    if (!s_digits(&p, 4, true, &year) || (*p != '-' && !(local && *p == '/')))
        return -EINVAL;
    char sep = *p++;
    bool strict = sep == '-' && !local;
    if (!s_digits(&p, 2, strict, &month) || *p++ != sep || !s_digits(&p, 2, strict, &day))
        return -EINVAL;
    bool date_only = *p == '\0';
    if (date_only && !(flags & HISTORY_TIME_DATE))
        return -EINVAL;
    if (!date_only) {
        if (*p != 'T' && *p != ' ')
            return -EINVAL;
        p++;
        if (!s_digits(&p, 2, !local, &hour) || *p++ != ':' || !s_digits(&p, 2, true, &minute))
            return -EINVAL;
        if (*p == ':') {
            p++;
            if (!s_digits(&p, 2, true, &second))
                return -EINVAL;
            if (*p == '.') {
                p++;
                while (*p >= '0' && *p <= '9' && frac_digits < 6) {
                    frac = frac * 10 + (*p++ - '0');
                    frac_digits++;
                }
                if (frac_digits == 0 || (*p >= '0' && *p <= '9'))
                    return -EINVAL;
            }
        }
        if (*p == 'Z' || *p == 'z') {
            off = 0;
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1, oh, om;
            if (!s_digits(&p, 2, true, &oh) || *p++ != ':' || !s_digits(&p, 2, true, &om) ||
                oh > 14 || om > 59)
                return -EINVAL;
            off = sign * (oh * 60 + om);
        } else if (!local) {
            return -EINVAL; /* RFC 3339 needs the offset */
        }
        if (*p != '\0')
            return -EINVAL;
    }
    if (year < 1900 || year > 9999 || month < 1 || month > 12 || day < 1 ||
        day > s_days_in_month(year, month) || hour > 23 || minute > 59 || second > 59)
        return -EINVAL;
    while (frac_digits > 0 && frac_digits < 6) {
        frac *= 10;
        frac_digits++;
    }
    char offset[8];
    snprintf(offset, sizeof offset, "%c%02d:%02d", off < 0 ? '-' : '+', abs(off) / 60,
             abs(off) % 60);
    if (frac)
        snprintf(out, 40, "%04d-%02d-%02dT%02d:%02d:%02d.%06d%s", year, month, day, hour, minute,
                 second, frac, offset);
    else
        snprintf(out, 40, "%04d-%02d-%02dT%02d:%02d:%02d%s", year, month, day, hour, minute, second,
                 offset);
    if (ret_unix) {
        struct tm tm = {.tm_year = year - 1900,
                        .tm_mon = month - 1,
                        .tm_mday = day,
                        .tm_hour = hour,
                        .tm_min = minute,
                        .tm_sec = second};
        *ret_unix = (int64_t)timegm(&tm) - (int64_t)off * 60;
    }
    if (ret_date_only)
        *ret_date_only = date_only;
    return 0;
}

bool history_text_ok(const char *text, size_t max_chars, bool multiline)
{
    size_t chars = 0;
    const unsigned char *p = (const unsigned char *)text;
    while (*p) {
        unsigned char c = *p;
        size_t len = c < 0x80             ? 1
                     : (c & 0xE0) == 0xC0 ? 2
                     : (c & 0xF0) == 0xE0 ? 3
                     : (c & 0xF8) == 0xF0 ? 4
                                          : 0;
        if (len == 0)
            return false;
        for (size_t i = 1; i < len; i++)
            if ((p[i] & 0xC0) != 0x80)
                return false;
        if (c < 0x20 || c == 0x7F) {
            if (!(multiline && (c == '\n' || c == '\r' || c == '\t')))
                return false;
        }
        if (len == 2 && p[0] == 0xC2 && p[1] < 0xA0)
            return false; /* C1 controls */
        p += len;
        if (++chars > max_chars)
            return false;
    }
    return true;
}

bool history_code_ok(const char *code)
{
    size_t len = code ? strlen(code) : 0;
    if (len < 1 || len > 32)
        return false;
    for (const char *p = code; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-'))
            return false;
    return true;
}

bool history_call_id_ok(const char *id)
{
    size_t len = id ? strlen(id) : 0;
    if (len < 1 || len > 128)
        return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == ':' || *p == '@' || *p == '-'))
            return false;
    return true;
}

bool history_code_known(history_t *self, const char *kind, const char *field, const char *code,
                        const char *current, char *err, size_t errlen)
{
    if (!code || !*code)
        return true;
    if (!history_code_ok(code)) {
        snprintf(err, errlen, "%s: a code is 1 to 32 of A-Z a-z 0-9 . _ -", field);
        return false;
    }
    const Ncc__Directory__MasterValues *entry = ncc_masters_cache_find(self->masters, kind, code);
    if (!entry) {
        snprintf(err, errlen, "%s: no entry of %s has the code %s%s", field, kind, code,
                 ncc_masters_cache_count(self->masters, kind) == 0
                     ? " (the masters are not loaded yet, or the list is empty)"
                     : "");
        return false;
    }
    if (entry->has_active && !entry->active && (!current || strcmp(current, code) != 0)) {
        snprintf(err, errlen, "%s: %s is retired and cannot be chosen any more", field, code);
        return false;
    }
    return true;
}

bool history_parse_id(const char *text, int64_t *ret_id)
{
    if (!text || !*text)
        return false;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || *end || v <= 0)
        return false;
    *ret_id = v;
    return true;
}

/* ---- operator names -------------------------------------------------------------------------- */

void history_operator_name(history_t *self, int64_t id, char *out, size_t len)
{
    out[0] = '\0';
    if (id <= 0)
        return;
    char key[24];
    snprintf(key, sizeof key, "%" PRId64, id);
    int64_t now = ncc_bus_now_us();
    /* Entries are "<fetched at us> <name>". */
    const char *cached = zhashx_lookup(self->operator_names, key);
    if (cached) {
        char *rest = NULL;
        long long at = strtoll(cached, &rest, 10);
        if (now - at < S_NAME_TTL_US && rest && *rest == ' ') {
            snprintf(out, len, "%s", rest + 1);
            return;
        }
    }
    ncc_rpc_client_t *client = ncc_service_client(self->service, "directory");
    Ncc__Directory__GetUser get = NCC__DIRECTORY__GET_USER__INIT;
    get.has_id = true;
    get.id = id;
    ncc_ctx_t ctx = ncc_service_ctx(self->service);
    ProtobufCMessage *answer = NULL;
    Ncc__Error *error = NULL;
    int rc = client ? ncc_rpc_call_typed(client, &ctx, &get.base, &ncc__directory__user__descriptor,
                                         S_NAME_TIMEOUT_MS, &answer, &error)
                    : -ENOMEM;
    if (error)
        ncc__error__free_unpacked(error, NULL);
    if (rc < 0) {
        if (cached) /* keep the old name rather than none */
            snprintf(out, len, "%s", strchr(cached, ' ') ? strchr(cached, ' ') + 1 : "");
        return;
    }
    const Ncc__Directory__User *user = (const Ncc__Directory__User *)answer;
    snprintf(out, len, "%s", user->name ? user->name : "");
    char *entry = zsys_sprintf("%" PRId64 " %s", now, out);
    if (entry)
        zhashx_update(self->operator_names, key, entry);
    protobuf_c_message_free_unpacked(answer, NULL);
}
