/* records: interaction records through the API (docs/history.md): create,
 * read, change with optimistic locking, list with filters, any-field sort,
 * paging and the keyword search, and the caller's recent records for the
 * screen pop. Roles: operators create and change their own records (and
 * those without an operator), supervisors and administrators every record,
 * ward staff read; ncc-calls (system) reads the caller's history. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "history.h"
#include "ncc/roles.h"

#define S_TEXT_MAX       10000 /* inquiry, response, summary: characters */
#define S_SHORT_MAX      100   /* operator_name, transfer_to */
#define S_CALLER_MAX     32
#define S_PER_PAGE       50
#define S_PER_PAGE_MAX   500
#define S_DEEPEST        100000 /* page * per_page at most */
#define S_CALLER_LIMIT   5
#define S_CALLER_MAX_LIM 50
#define S_FAQ_MAX_NUMBER 99999999
#define S_INDEX_WAIT_MS  500 /* a list waits this long for the index to catch up */

static const char *const s_channels[] = {"phone", "sms", "form", "chat", "line", "visit", NULL};
/* The statuses a list can filter by (the search index's; docs/history.md). */
static const char *const s_statuses[] = {"open", "in_progress", "closed", NULL};

static bool s_in(const char *const *list, const char *value)
{
    for (size_t i = 0; value && list[i]; i++)
        if (strcmp(list[i], value) == 0)
            return true;
    return false;
}

static bool s_empty(const char *text)
{
    return !text || !*text;
}

/* ---- the values of a record being saved -------------------------------------------------- */

typedef struct {
    const char *call_id, *channel, *ended_at, *reception_type, *department_id, *handling_type;
    const char *category, *inquiry, *response, *transfer_to, *summary, *status, *caller_number;
    char started_at[40], ended_buf[40];
    int64_t started_unix, ended_unix;
    bool has_ended;
    int64_t operator_id;
    int64_t faq_ids[3];
    size_t n_faq_ids;
} s_draft_t;

/* A time field: "" (when may_empty) empties; else RFC 3339 with an offset. */
static bool s_time_field(const char *field, const char *text, bool may_empty, char out[40],
                         int64_t *ret_unix, bool *ret_set, ncc_reply_t *reply)
{
    if (s_empty(text)) {
        if (!may_empty) {
            ncc_reply_error(reply, 422, "invalid_field", field, "%s is required", field);
            return false;
        }
        *ret_set = false;
        return true;
    }
    if (history_time_parse(text, 0, out, ret_unix, NULL) < 0) {
        ncc_reply_error(reply, 422, "invalid_field", field,
                        "%s must be an RFC 3339 time with an offset (2027-04-01T09:00:00+09:00)",
                        field);
        return false;
    }
    *ret_set = true;
    return true;
}

static bool s_faq_ids(s_draft_t *d, const int64_t *ids, size_t n, ncc_reply_t *reply)
{
    if (n > 3) {
        ncc_reply_error(reply, 422, "invalid_field", "faq_ids", "at most 3 FAQ numbers");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (ids[i] <= 0 || ids[i] > S_FAQ_MAX_NUMBER) {
            ncc_reply_error(reply, 422, "invalid_field", "faq_ids",
                            "an FAQ number is between 1 and %d", S_FAQ_MAX_NUMBER);
            return false;
        }
        for (size_t j = 0; j < i; j++)
            if (ids[j] == ids[i]) {
                ncc_reply_error(reply, 422, "invalid_field", "faq_ids",
                                "FAQ %" PRId64 " is given twice", ids[i]);
                return false;
            }
        d->faq_ids[i] = ids[i];
    }
    d->n_faq_ids = n;
    return true;
}

/* Every rule on the record as it would be saved (`current`: as it is, for
 * updates; NULL for a new one). Answers 422 naming the field and returns
 * false on the first broken rule. */
static bool s_check(history_t *self, const s_draft_t *d, const Ncc__History__Record *current,
                    bool user_made, ncc_reply_t *reply)
{
    char err[200];
    if (s_empty(d->channel) || !s_in(s_channels, d->channel)) {
        ncc_reply_error(reply, 422, "invalid_field", "channel",
                        s_empty(d->channel) ? "channel is required (phone, sms, form, chat, line "
                                              "or visit)"
                                            : "channel must be phone, sms, form, chat, line or "
                                              "visit");
        return false;
    }
    if (s_empty(d->status) || !history_code_ok(d->status)) {
        ncc_reply_error(reply, 422, "invalid_field", "status",
                        "status is a status code of the record form (open, in_progress, closed "
                        "by default)");
        return false;
    }
    if (d->has_ended && d->ended_unix < d->started_unix) {
        ncc_reply_error(reply, 422, "invalid_field", "ended_at", "ended_at is before started_at");
        return false;
    }
    if (!s_empty(d->call_id) && !history_call_id_ok(d->call_id)) {
        ncc_reply_error(reply, 422, "invalid_field", "call_id",
                        "call_id is 1 to 128 of A-Z a-z 0-9 . _ : @ -");
        return false;
    }
    static const struct {
        const char *field, *kind;
        size_t offset;
        size_t current_offset;
    } codes[] = {
        {"reception_type", "reception-types", offsetof(s_draft_t, reception_type),
         offsetof(Ncc__History__Record, reception_type)},
        {"department_id", "departments", offsetof(s_draft_t, department_id),
         offsetof(Ncc__History__Record, department_id)},
        {"handling_type", "handling-types", offsetof(s_draft_t, handling_type),
         offsetof(Ncc__History__Record, handling_type)},
        {"category", "categories", offsetof(s_draft_t, category),
         offsetof(Ncc__History__Record, category)},
    };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *code = *(const char *const *)((const char *)d + codes[i].offset);
        const char *was =
            current ? *(const char *const *)((const char *)current + codes[i].current_offset)
                    : NULL;
        if (!history_code_known(self, codes[i].kind, codes[i].field, code, was, err, sizeof err)) {
            ncc_reply_error(reply, 422, "invalid_field", codes[i].field, "%s", err);
            return false;
        }
    }
    static const struct {
        const char *field;
        size_t offset, max;
        bool multiline;
    } texts[] = {
        {"inquiry", offsetof(s_draft_t, inquiry), S_TEXT_MAX, true},
        {"response", offsetof(s_draft_t, response), S_TEXT_MAX, true},
        {"summary", offsetof(s_draft_t, summary), S_TEXT_MAX, true},
        {"transfer_to", offsetof(s_draft_t, transfer_to), S_SHORT_MAX, false},
        {"caller_number", offsetof(s_draft_t, caller_number), S_CALLER_MAX, false},
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        const char *text = *(const char *const *)((const char *)d + texts[i].offset);
        if (text && !history_text_ok(text, texts[i].max, texts[i].multiline)) {
            ncc_reply_error(reply, 422, "invalid_field", texts[i].field,
                            "%s: at most %zu characters%s", texts[i].field, texts[i].max,
                            texts[i].multiline ? ", without control characters other than line "
                                                 "breaks and tabs"
                                               : " on one line");
            return false;
        }
    }
    char digits[40];
    if (!s_empty(d->caller_number) &&
        !history_caller_digits(d->caller_number, digits, sizeof digits)) {
        ncc_reply_error(reply, 422, "invalid_field", "caller_number",
                        "caller_number holds no digit");
        return false;
    }
    /* Required: what a person typed must say what was asked; a closed record
     * also what was answered. */
    if (user_made && !current && s_empty(d->inquiry)) {
        ncc_reply_error(reply, 422, "invalid_field", "inquiry", "inquiry is required");
        return false;
    }
    if (strcmp(d->status, "closed") == 0) {
        if (s_empty(d->inquiry)) {
            ncc_reply_error(reply, 422, "invalid_field", "inquiry",
                            "inquiry is required to close a record");
            return false;
        }
        if (s_empty(d->response)) {
            ncc_reply_error(reply, 422, "invalid_field", "response",
                            "response is required to close a record");
            return false;
        }
    }
    return true;
}

/* The record form setting's rules (form.c) on the record as it would be saved: `c` as it
 * is (NULL for a new one), `extra`/`extra_was` its x_ values after and before. */
static bool s_form_check(history_t *self, const s_draft_t *d, const Ncc__History__Record *c,
                         const cJSON *extra, const cJSON *extra_was, ncc_reply_t *reply)
{
    char faq[96] = "", faq_was[96] = "";
    for (size_t i = 0, used = 0; i < d->n_faq_ids; i++)
        used += (size_t)snprintf(faq + used, sizeof faq - used, "%s%" PRId64, i ? " " : "",
                                 d->faq_ids[i]);
    for (size_t i = 0, used = 0; c && i < c->n_faq_ids; i++)
        used += (size_t)snprintf(faq_was + used, sizeof faq_was - used, "%s%" PRId64, i ? " " : "",
                                 c->faq_ids[i]);
#define S_WAS(member) (c ? (c->member ? c->member : "") : NULL)
    const history_form_value_t values[] = {
        {"channel", d->channel, S_WAS(channel)},
        {"started_at", d->started_at, S_WAS(started_at)},
        {"ended_at", d->has_ended ? d->ended_buf : "", S_WAS(ended_at)},
        {"reception_type", d->reception_type, S_WAS(reception_type)},
        {"department_id", d->department_id, S_WAS(department_id)},
        {"handling_type", d->handling_type, S_WAS(handling_type)},
        {"category", d->category, S_WAS(category)},
        {"inquiry", d->inquiry, S_WAS(inquiry)},
        {"response", d->response, S_WAS(response)},
        {"transfer_to", d->transfer_to, S_WAS(transfer_to)},
        {"faq_ids", faq, c ? faq_was : NULL},
    };
#undef S_WAS
    const history_form_input_t in = {
        .values = values,
        .n_values = sizeof values / sizeof values[0],
        .extra = extra,
        .extra_was = extra_was,
        .status = d->status,
        .status_was = c ? (c->status ? c->status : "") : NULL,
    };
    return history_form_check(self, &in, reply);
}

/* The numeric user id of the actor, 0 for a daemon or none. */
static int64_t s_actor_user(const ncc_actor_t *actor)
{
    int64_t id = 0;
    return history_parse_id(actor->id, &id) ? id : 0;
}

/* ---- create ------------------------------------------------------------------------------------
 */

/* ---- sending a record twice: the idempotency key ------------------------------------------- */

static bool s_key_ok(const char *key)
{
    size_t len = key ? strlen(key) : 0;
    if (len < 8 || len > 100)
        return false;
    for (const char *p = key; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-'))
            return false;
    return true;
}

/* The record the actor's key made, answered as the create answers it: 1 when answered,
 * 0 when the key made none (yet), -1 when the database failed (answered). */
static int s_reply_keyed(history_t *self, const char *actor_id, const char *key, ncc_reply_t *reply)
{
    const char *params[] = {actor_id, key};
    PGresult *res = ncc_db_exec(self->db,
                                "SELECT record_id FROM record_requests WHERE actor_id = $1 AND "
                                "key = $2",
                                2, params, NULL);
    if (!res) {
        history_reply_db_error(self, reply, "create record: key");
        return -1;
    }
    int64_t id = PQntuples(res) == 1 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    PQclear(res);
    if (id == 0)
        return 0;
    history_record_t rec;
    int rc = history_record_load(self, id, false, &res, &rec);
    if (rc == -ENOENT)
        return 0;
    if (rc < 0) {
        history_reply_db_error(self, reply, "create record: the keyed record");
        return -1;
    }
    ncc_reply_message(reply, &rec.msg.base);
    history_record_clear(&rec);
    PQclear(res);
    return 1;
}

static void s_on_create(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    history_t *self = arg;
    const Ncc__History__CreateRecord *m = (const Ncc__History__CreateRecord *)request->message;
    ncc_actor_t actor = ncc_request_actor(request);
    bool oversight = actor.roles & (NCC_ROLE_SUPERVISOR | NCC_ROLE_ADMIN);
    int64_t me = s_actor_user(&actor);

    s_draft_t d = {
        .call_id = m->call_id,
        .channel = m->channel,
        .reception_type = m->reception_type,
        .department_id = m->department_id,
        .handling_type = m->handling_type,
        .category = m->category,
        .inquiry = m->inquiry,
        .response = m->response,
        .transfer_to = m->transfer_to,
        .summary = m->summary,
        .status = m->status ? m->status : history_form_initial(self),
        .caller_number = m->caller_number,
    };
    if (m->has_operator_id && m->operator_id != me && !oversight) {
        ncc_reply_error(reply, 403, "forbidden", "operator_id",
                        "operators create records as themselves");
        return;
    }
    if (m->has_operator_id && m->operator_id < 0) {
        ncc_reply_error(reply, 422, "invalid_field", "operator_id", "operator_id is a user id");
        return;
    }
    const char *key = s_empty(m->idempotency_key) ? NULL : m->idempotency_key;
    if (key && !s_key_ok(key)) {
        ncc_reply_error(reply, 422, "invalid_field", "idempotency_key",
                        "idempotency_key is 8 to 100 of A-Z a-z 0-9 _ -");
        return;
    }
    const char *actor_id = actor.id ? actor.id : "";
    if (key && s_reply_keyed(self, actor_id, key, reply) != 0)
        return; /* the record this key made (or the database's error) */
    d.operator_id = m->has_operator_id ? m->operator_id : me;
    bool set = false;
    if (s_empty(m->started_at)) {
        char now[40];
        time_t t = time(NULL) + 9 * 3600;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%S+09:00", &tm);
        history_time_parse(now, 0, d.started_at, &d.started_unix, NULL);
    } else if (!s_time_field("started_at", m->started_at, false, d.started_at, &d.started_unix,
                             &set, reply)) {
        return;
    }
    if (!s_time_field("ended_at", m->ended_at, true, d.ended_buf, &d.ended_unix, &d.has_ended,
                      reply))
        return;
    if (!s_faq_ids(&d, m->faq_ids, m->n_faq_ids, reply) || !s_check(self, &d, NULL, true, reply))
        return;
    cJSON *extra = NULL;
    if (!history_form_extra(self, m->extra, m->n_extra, NULL, &extra, reply))
        return;
    bool form_ok = s_form_check(self, &d, NULL, extra, NULL, reply);
    char *extra_text = form_ok ? cJSON_PrintUnformatted(extra) : NULL;
    cJSON_Delete(extra);
    if (!form_ok)
        return;
    if (!extra_text) {
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        return;
    }

    char name[128] = "";
    history_operator_name(self, d.operator_id, name, sizeof name);
    history_new_record_t r = {
        .started_at = d.started_at,
        .call_id = d.call_id,
        .channel = d.channel,
        .operator_id = d.operator_id,
        .operator_name = name,
        .ended_at = d.has_ended ? d.ended_buf : NULL,
        .wrapup_now = true,
        .reception_type = d.reception_type,
        .department_id = d.department_id,
        .handling_type = d.handling_type,
        .faq_ids = d.faq_ids,
        .n_faq_ids = d.n_faq_ids,
        .category = d.category,
        .inquiry = d.inquiry,
        .response = d.response,
        .transfer_to = d.transfer_to,
        .summary = d.summary,
        .status = d.status,
        .caller_number = d.caller_number,
        .extra = extra_text,
        .status_final = history_form_final(self, d.status),
        .source = "api",
    };
    int64_t id = 0;
    PGresult *res = NULL;
    history_record_t rec = {0};
    if (ncc_db_begin(self->db) < 0) {
        free(extra_text);
        history_reply_db_error(self, reply, "create record: begin");
        return;
    }
    int rc = history_insert(self, &r, &id);
    free(extra_text);
    /* A final summary of the call that came before its record. */
    if (rc == 0 && history_summary_apply_pending(self, self->db, id, d.call_id) < 0)
        rc = -EIO;
    if (rc == 0 && key) {
        char id_text[24];
        snprintf(id_text, sizeof id_text, "%" PRId64, id);
        const char *params[] = {actor_id, key, id_text};
        if (ncc_db_run(self->db,
                       "INSERT INTO record_requests (actor_id, key, record_id) VALUES ($1, $2, "
                       "$3::bigint)",
                       3, params) < 0) {
            if (strcmp(ncc_db_sqlstate(self->db), "23505") != 0) {
                history_reply_db_error(self, reply, "create record: key"); /* rolls back */
                return;
            }
            /* The same key at the same moment from another request: its record. */
            ncc_db_rollback(self->db);
            if (s_reply_keyed(self, actor_id, key, reply) == 0)
                ncc_reply_error(reply, 409, "conflict", "idempotency_key",
                                "another request with this idempotency_key is being stored: "
                                "send it again");
            return;
        }
    }
    if (rc == -EEXIST) {
        ncc_db_rollback(self->db);
        ncc_reply_error(reply, 409, "conflict", "call_id", "a record of the call %s exists already",
                        d.call_id ? d.call_id : "");
        return;
    }
    if (rc == -ENOKEY) {
        ncc_db_rollback(self->db);
        ncc_reply_error(reply, 503, "service_unavailable", "caller_number",
                        "callers' numbers cannot be stored: the data keys are not configured");
        return;
    }
    ncc_ctx_t ctx = ncc_request_ctx(request);
    if (rc < 0 || history_record_load(self, id, false, &res, &rec) < 0 ||
        history_record_changed(self, &ctx, &rec, "created", "api") < 0 ||
        ncc_db_commit(self->db) < 0) {
        history_record_clear(&rec);
        if (res)
            PQclear(res);
        history_reply_db_error(self, reply, "create record");
        return;
    }
    history_flush(self);
    ncc_reply_message(reply, &rec.msg.base);
    history_record_clear(&rec);
    PQclear(res);
}

/* ---- read --------------------------------------------------------------------------------------
 */

static void s_on_get(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    history_t *self = arg;
    const Ncc__History__GetRecord *m = (const Ncc__History__GetRecord *)request->message;
    if (!m->has_id || m->id <= 0) {
        ncc_reply_error(reply, 422, "invalid_field", "id", "id is a positive number");
        return;
    }
    PGresult *res = NULL;
    history_record_t rec;
    int rc = history_record_load(self, m->id, false, &res, &rec);
    if (rc == -ENOENT) {
        ncc_reply_error(reply, 404, "not_found", "id", "no record %" PRId64, m->id);
        return;
    }
    if (rc < 0) {
        history_reply_db_error(self, reply, "read record");
        return;
    }
    ncc_reply_message(reply, &rec.msg.base);
    history_record_clear(&rec);
    PQclear(res);
}

/* ---- change ------------------------------------------------------------------------------------
 */

/* One "col = $n" of an UPDATE. */
typedef struct {
    char sql[1024];
    size_t len;
    const char *params[32];
    int n;
} s_set_t;

static void s_set(s_set_t *set, const char *column, const char *cast, const char *value)
{
    set->params[set->n++] = value;
    set->len += (size_t)snprintf(set->sql + set->len, sizeof set->sql - set->len, "%s%s = $%d%s",
                                 set->len ? ", " : "", column, set->n, cast);
}

static void s_set_raw(s_set_t *set, const char *text)
{
    set->len += (size_t)snprintf(set->sql + set->len, sizeof set->sql - set->len, "%s%s",
                                 set->len ? ", " : "", text);
}

/* Answers RecordConflict (409) with the record as it is. */
static void s_reply_conflict(const history_record_t *current, int64_t given, ncc_reply_t *reply)
{
    Ncc__Directory__ApiError error = NCC__DIRECTORY__API_ERROR__INIT;
    char message[160];
    snprintf(message, sizeof message,
             "the record changed since it was read (version %" PRId64 ", now %" PRId64
             "): nothing was saved; merge with `current` and save again",
             given, current->msg.version);
    error.code = "conflict";
    error.message = message;
    error.field = "version";
    Ncc__History__RecordConflict conflict = NCC__HISTORY__RECORD_CONFLICT__INIT;
    conflict.has_http_status = true;
    conflict.http_status = 409;
    conflict.error = &error;
    conflict.current = (Ncc__History__Record *)&current->msg;
    ncc_reply_message(reply, &conflict.base);
}

static void s_on_update(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    history_t *self = arg;
    const Ncc__History__UpdateRecord *m = (const Ncc__History__UpdateRecord *)request->message;
    ncc_actor_t actor = ncc_request_actor(request);
    bool oversight = actor.roles & (NCC_ROLE_SUPERVISOR | NCC_ROLE_ADMIN);
    int64_t me = s_actor_user(&actor);
    if (!m->has_id || m->id <= 0) {
        ncc_reply_error(reply, 422, "invalid_field", "id", "id is a positive number");
        return;
    }
    if (!m->has_version) {
        ncc_reply_error(reply, 422, "invalid_field", "version",
                        "version is required: the version you read");
        return;
    }
    if (m->has_operator_id && !oversight) {
        ncc_reply_error(reply, 403, "forbidden", "operator_id",
                        "only supervisors and administrators change the operator");
        return;
    }
    if (m->n_faq_ids > 0 && m->has_clear_faq_ids && m->clear_faq_ids) {
        ncc_reply_error(reply, 422, "invalid_field", "clear_faq_ids",
                        "give faq_ids or clear_faq_ids, not both");
        return;
    }
    PGresult *res = NULL, *after_res = NULL;
    history_record_t cur = {0}, after = {0};
    cJSON *extra = NULL;
    char *extra_text = NULL;
    if (ncc_db_begin(self->db) < 0) {
        history_reply_db_error(self, reply, "update record: begin");
        return;
    }
    int rc = history_record_load(self, m->id, true, &res, &cur);
    if (rc == -ENOENT) {
        ncc_db_rollback(self->db);
        ncc_reply_error(reply, 404, "not_found", "id", "no record %" PRId64, m->id);
        return;
    }
    if (rc < 0) {
        history_reply_db_error(self, reply, "update record: read");
        return;
    }
    const Ncc__History__Record *c = &cur.msg;
    if (!oversight && c->operator_id != 0 && c->operator_id != me) {
        ncc_db_rollback(self->db);
        ncc_reply_error(reply, 403, "forbidden", NULL,
                        "operators change their own records (this one is %s's)",
                        c->operator_name ? c->operator_name : "another operator's");
        goto out;
    }
    if (m->version != c->version) {
        ncc_db_rollback(self->db);
        s_reply_conflict(&cur, m->version, reply);
        goto out;
    }

    /* The record as it would be. */
    s_draft_t d = {
        .call_id = m->call_id ? m->call_id : c->call_id,
        .channel = m->channel ? m->channel : c->channel,
        .reception_type = m->reception_type ? m->reception_type : c->reception_type,
        .department_id = m->department_id ? m->department_id : c->department_id,
        .handling_type = m->handling_type ? m->handling_type : c->handling_type,
        .category = m->category ? m->category : c->category,
        .inquiry = m->inquiry ? m->inquiry : c->inquiry,
        .response = m->response ? m->response : c->response,
        .transfer_to = m->transfer_to ? m->transfer_to : c->transfer_to,
        .summary = m->summary ? m->summary : c->summary,
        .status = m->status ? m->status : c->status,
        .caller_number = m->caller_number ? m->caller_number : NULL,
        .operator_id = m->has_operator_id ? m->operator_id : c->operator_id,
    };
    bool set = false;
    if (!s_time_field("started_at", m->started_at ? m->started_at : c->started_at, false,
                      d.started_at, &d.started_unix, &set, reply))
        goto rollback;
    const char *ended = m->ended_at ? m->ended_at : c->ended_at;
    if (!s_time_field("ended_at", ended, true, d.ended_buf, &d.ended_unix, &d.has_ended, reply))
        goto rollback;
    if (m->n_faq_ids > 0) {
        if (!s_faq_ids(&d, m->faq_ids, m->n_faq_ids, reply))
            goto rollback;
    } else if (!(m->has_clear_faq_ids && m->clear_faq_ids)) {
        s_faq_ids(&d, c->faq_ids, c->n_faq_ids, reply);
    }
    if (m->has_operator_id && m->operator_id < 0) {
        ncc_reply_error(reply, 422, "invalid_field", "operator_id", "operator_id is a user id");
        goto rollback;
    }
    if (!s_check(self, &d, c, true, reply))
        goto rollback;
    if (!history_form_extra(self, m->extra, m->n_extra, cur.extra, &extra, reply) ||
        !s_form_check(self, &d, c, extra, cur.extra, reply))
        goto rollback;

    s_set_t set_sql = {0};
    char id_text[24], operator_text[24], name[128] = "", faq[96];
    snprintf(id_text, sizeof id_text, "%" PRId64, m->id);
    set_sql.params[set_sql.n++] = id_text;
    if (m->call_id)
        s_set(&set_sql, "call_id", "", s_empty(m->call_id) ? NULL : m->call_id);
    if (m->channel)
        s_set(&set_sql, "channel", "", m->channel);
    if (m->has_operator_id && m->operator_id != c->operator_id) {
        snprintf(operator_text, sizeof operator_text, "%" PRId64, m->operator_id);
        history_operator_name(self, m->operator_id, name, sizeof name);
        s_set(&set_sql, "operator_id", "::bigint", operator_text);
        s_set(&set_sql, "operator_name", "", name);
    }
    if (m->started_at)
        s_set(&set_sql, "started_at", "::timestamptz", d.started_at);
    if (m->ended_at)
        s_set(&set_sql, "ended_at", "::timestamptz", d.has_ended ? d.ended_buf : NULL);
    static const struct {
        const char *column;
        size_t offset;
    } plain[] = {
        {"reception_type", offsetof(Ncc__History__UpdateRecord, reception_type)},
        {"department_id", offsetof(Ncc__History__UpdateRecord, department_id)},
        {"handling_type", offsetof(Ncc__History__UpdateRecord, handling_type)},
        {"category", offsetof(Ncc__History__UpdateRecord, category)},
        {"inquiry", offsetof(Ncc__History__UpdateRecord, inquiry)},
        {"response", offsetof(Ncc__History__UpdateRecord, response)},
        {"transfer_to", offsetof(Ncc__History__UpdateRecord, transfer_to)},
        {"summary", offsetof(Ncc__History__UpdateRecord, summary)},
        {"status", offsetof(Ncc__History__UpdateRecord, status)},
    };
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        const char *value = *(const char *const *)((const char *)m + plain[i].offset);
        if (value)
            s_set(&set_sql, plain[i].column, "", value);
    }
    /* A summary a person writes is theirs: ncc-summary no longer replaces it (emptied, the
     * next final summary may fill it). */
    if (m->summary && strcmp(m->summary, c->summary ? c->summary : "") != 0)
        s_set_raw(&set_sql, *m->summary ? "summary_source = 'user'" : "summary_source = ''");
    if (m->n_extra > 0) {
        extra_text = cJSON_PrintUnformatted(extra);
        if (!extra_text) {
            ncc_db_rollback(self->db);
            ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
            goto out;
        }
        s_set(&set_sql, "extra", "::jsonb", extra_text);
    }
    if (m->n_faq_ids > 0 || (m->has_clear_faq_ids && m->clear_faq_ids)) {
        size_t used = (size_t)snprintf(faq, sizeof faq, "{");
        for (size_t i = 0; i < d.n_faq_ids; i++)
            used += (size_t)snprintf(faq + used, sizeof faq - used, "%s%" PRId64, i ? "," : "",
                                     d.faq_ids[i]);
        snprintf(faq + used, sizeof faq - used, "}");
        s_set(&set_sql, "faq_ids", "::bigint[]", faq);
    }
    char *cipher = NULL, bidx[65] = "";
    if (m->caller_number) {
        if (!s_empty(m->caller_number)) {
            int sealed = history_caller_seal(self, m->caller_number, &cipher, bidx);
            if (sealed < 0) {
                ncc_db_rollback(self->db);
                if (sealed == -ENOKEY)
                    ncc_reply_error(reply, 503, "service_unavailable", "caller_number",
                                    "callers' numbers cannot be stored: the data keys are not "
                                    "configured");
                else
                    ncc_reply_error(reply, 500, "internal", NULL, "internal error");
                goto out;
            }
        }
        s_set(&set_sql, "caller_number", "", cipher);
        s_set(&set_sql, "caller_number_bidx", "", bidx[0] ? bidx : NULL);
    }
    /* 後処理終了: when the record enters a final status of the form; reopening clears it. */
    bool was_closed = history_form_final(self, c->status);
    bool closed = history_form_final(self, d.status);
    if (closed && !was_closed)
        s_set_raw(&set_sql, "wrapup_ended_at = now()");
    else if (!closed && was_closed)
        s_set_raw(&set_sql, "wrapup_ended_at = NULL");
    s_set_raw(&set_sql, "version = version + 1, updated_at = now()");

    char sql[1200];
    snprintf(sql, sizeof sql, "UPDATE records SET %s WHERE id = $1::bigint", set_sql.sql);
    char state[6] = "";
    PGresult *done = ncc_db_exec(self->db, sql, set_sql.n, set_sql.params, state);
    free(cipher);
    if (!done) {
        if (strcmp(state, "23505") == 0) {
            ncc_db_rollback(self->db);
            ncc_reply_error(reply, 409, "conflict", "call_id",
                            "another record belongs to the call %s", d.call_id);
            goto out;
        }
        history_reply_db_error(self, reply, "update record");
        goto out;
    }
    PQclear(done);
    ncc_ctx_t ctx = ncc_request_ctx(request);
    if (history_record_load(self, m->id, false, &after_res, &after) < 0 ||
        history_record_changed(self, &ctx, &after, "updated", "api") < 0 ||
        ncc_db_commit(self->db) < 0) {
        history_reply_db_error(self, reply, "update record: finish");
        goto out;
    }
    history_flush(self);
    ncc_reply_message(reply, &after.msg.base);
    goto out;
rollback:
    ncc_db_rollback(self->db);
out:
    cJSON_Delete(extra);
    free(extra_text);
    history_record_clear(&cur);
    history_record_clear(&after);
    if (res)
        PQclear(res);
    if (after_res)
        PQclear(after_res);
}

/* ---- filters ------------------------------------------------------------------------------------
 */

/* A repeated list of names into a mask and a text[] literal. */
static bool s_names(const char *field, char **values, size_t n, const char *const *known,
                    unsigned (*bit)(const char *), unsigned *ret_mask, char *array, size_t len,
                    ncc_reply_t *reply)
{
    size_t used = 0;
    *ret_mask = 0;
    array[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (!s_in(known, values[i])) {
            ncc_reply_error(reply, 422, "invalid_field", field, "%s: unknown value", field);
            return false;
        }
        *ret_mask |= bit(values[i]);
        used += (size_t)snprintf(array + used, len - used, "%s%s", i ? "," : "{", values[i]);
    }
    if (n)
        snprintf(array + used, len - used, "}");
    return true;
}

bool history_filter_parse(const history_filter_input_t *in, history_filter_t *f, ncc_reply_t *reply)
{
    memset(f, 0, sizeof *f);
    if (in->q) {
        const char *p = in->q;
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        if (*p) {
            if (!history_text_ok(in->q, 200, false)) {
                ncc_reply_error(reply, 422, "invalid_field", "q",
                                "q: at most 200 characters on one line");
                return false;
            }
            f->q = in->q;
        }
    }
    bool date = false;
    if (!s_empty(in->from)) {
        int64_t unix_s;
        if (history_time_parse(in->from, HISTORY_TIME_DATE, f->from, &unix_s, &date) < 0) {
            ncc_reply_error(reply, 422, "invalid_field", "from",
                            "from is a date (2027-04-01) or an RFC 3339 time");
            return false;
        }
        f->has_from = true;
        f->from_us = unix_s * 1000000;
    }
    if (!s_empty(in->to)) {
        int64_t unix_s;
        if (history_time_parse(in->to, HISTORY_TIME_DATE, f->to, &unix_s, &date) < 0) {
            ncc_reply_error(reply, 422, "invalid_field", "to",
                            "to is a date (2027-04-30) or an RFC 3339 time");
            return false;
        }
        f->has_to = true;
        f->to_is_date = date;
        f->to_us = date ? (unix_s + 86400) * 1000000 - 1 : unix_s * 1000000 + 999999;
    }
    if (!s_names("status", in->status, in->n_status, s_statuses, history_status_bit,
                 &f->status_mask, f->status_array, sizeof f->status_array, reply) ||
        !s_names("channel", in->channel, in->n_channel, s_channels, history_channel_bit,
                 &f->channel_mask, f->channel_array, sizeof f->channel_array, reply))
        return false;
    static const struct {
        const char *field;
        size_t in_offset, out_offset;
    } codes[] = {
        {"department_id", offsetof(history_filter_input_t, department_id),
         offsetof(history_filter_t, department_id)},
        {"category", offsetof(history_filter_input_t, category),
         offsetof(history_filter_t, category)},
        {"reception_type", offsetof(history_filter_input_t, reception_type),
         offsetof(history_filter_t, reception_type)},
        {"handling_type", offsetof(history_filter_input_t, handling_type),
         offsetof(history_filter_t, handling_type)},
    };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *code = *(const char *const *)((const char *)in + codes[i].in_offset);
        if (s_empty(code))
            continue;
        if (!history_code_ok(code)) {
            ncc_reply_error(reply, 422, "invalid_field", codes[i].field,
                            "%s: a code is 1 to 32 of A-Z a-z 0-9 . _ -", codes[i].field);
            return false;
        }
        *(const char **)((char *)f + codes[i].out_offset) = code;
    }
    if (!s_empty(in->call_id)) {
        if (!history_call_id_ok(in->call_id)) {
            ncc_reply_error(reply, 422, "invalid_field", "call_id",
                            "call_id is 1 to 128 of A-Z a-z 0-9 . _ : @ -");
            return false;
        }
        f->call_id = in->call_id;
    }
    f->has_operator = in->has_operator;
    f->operator_id = in->operator_id;
    if (in->has_fiscal_year) {
        if (in->fiscal_year < 2000 || in->fiscal_year > 9998) {
            ncc_reply_error(reply, 422, "invalid_field", "fiscal_year",
                            "fiscal_year is a year such as 2027");
            return false;
        }
        f->fiscal_year = in->fiscal_year;
    }
    return true;
}

void history_filter_sql(const history_filter_t *f, char *where, size_t len, const char **params,
                        int *n)
{
    size_t used = (size_t)snprintf(where, len, "true");
#define S_COND(fmt, value)                                                                         \
    do {                                                                                           \
        params[(*n)++] = (value);                                                                  \
        used += (size_t)snprintf(where + used, len - used, " AND " fmt, *n);                       \
    } while (0)
    if (f->has_from)
        S_COND("started_at >= $%d::timestamptz", f->from);
    if (f->has_to && f->to_is_date)
        S_COND("started_at < $%d::timestamptz + interval '1 day'", f->to);
    else if (f->has_to)
        S_COND("started_at <= $%d::timestamptz", f->to);
    if (f->status_array[0])
        S_COND("status = ANY($%d::text[])", f->status_array);
    if (f->channel_array[0])
        S_COND("channel = ANY($%d::text[])", f->channel_array);
    if (f->department_id)
        S_COND("department_id = $%d", f->department_id);
    if (f->category)
        S_COND("category = $%d", f->category);
    if (f->reception_type)
        S_COND("reception_type = $%d", f->reception_type);
    if (f->handling_type)
        S_COND("handling_type = $%d", f->handling_type);
    if (f->call_id)
        S_COND("call_id = $%d", f->call_id);
#undef S_COND
    /* Numbers are written into the text (they are numbers, not input text). */
    if (f->has_operator)
        used += (size_t)snprintf(where + used, len - used, " AND operator_id = %" PRId64,
                                 f->operator_id);
    /* A fiscal year as the range of started_at it covers (the index on
     * started_at, id serves it, in the order lists and exports read). */
    if (f->fiscal_year)
        snprintf(where + used, len - used,
                 " AND started_at >= '%04d-04-01T00:00:00+09:00'::timestamptz"
                 " AND started_at < '%04d-04-01T00:00:00+09:00'::timestamptz",
                 f->fiscal_year, f->fiscal_year + 1);
}

void history_filter_query(const history_filter_t *f, history_query_t *query)
{
    memset(query, 0, sizeof *query);
    query->q = f->q;
    query->has_from = f->has_from;
    query->from_us = f->from_us;
    query->has_to = f->has_to;
    query->to_us = f->to_us;
    query->status_mask = f->status_mask;
    query->channel_mask = f->channel_mask;
    query->department_id = f->department_id;
    query->category = f->category;
    query->reception_type = f->reception_type;
    query->handling_type = f->handling_type;
    query->has_operator = f->has_operator;
    query->operator_id = f->operator_id;
    query->fiscal_year = f->fiscal_year;
}

int history_ids_of_call(history_t *self, const char *call_id, int64_t **ret_ids, size_t *ret_n)
{
    const char *params[] = {call_id};
    PGresult *res =
        ncc_db_exec(self->db, "SELECT id FROM records WHERE call_id = $1", 1, params, NULL);
    if (!res)
        return -EIO;
    int n = PQntuples(res);
    int64_t *ids = malloc((size_t)(n ? n : 1) * sizeof *ids);
    if (!ids) {
        PQclear(res);
        return -ENOMEM;
    }
    for (int i = 0; i < n; i++)
        ids[i] = strtoll(PQgetvalue(res, i, 0), NULL, 10);
    PQclear(res);
    *ret_ids = ids;
    *ret_n = (size_t)n;
    return 0;
}

/* "{1,2,3}" of ids (caller frees). */
static char *s_id_array(const int64_t *ids, size_t n)
{
    size_t cap = n * 21 + 3, used = 0;
    char *text = malloc(cap);
    if (!text)
        return NULL;
    used += (size_t)snprintf(text, cap, "{");
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(text + used, cap - used, "%s%" PRId64, i ? "," : "", ids[i]);
    snprintf(text + used, cap - used, "}");
    return text;
}

int history_records_by_ids(history_t *self, const int64_t *ids, size_t n_ids, PGresult **ret_res,
                           history_record_t *recs, size_t *ret_count)
{
    char *array = s_id_array(ids, n_ids);
    if (!array)
        return -ENOMEM;
    const char *params[] = {array};
    /* In the order asked; ids no longer there drop out of the join. */
    PGresult *res = ncc_db_exec(self->db,
                                "SELECT " HISTORY_RECORD_COLUMNS_EXTRA
                                " FROM unnest($1::bigint[]) WITH ORDINALITY AS asked(id, n)"
                                " JOIN records USING (id) ORDER BY asked.n",
                                1, params, NULL);
    free(array);
    if (!res)
        return -EIO;
    int rows = PQntuples(res);
    for (int r = 0; r < rows && (size_t)r < n_ids; r++)
        history_record_from_row(self, res, r, &recs[r]);
    *ret_res = res;
    *ret_count = (size_t)(rows < (int)n_ids ? rows : (int)n_ids);
    return 0;
}

/* ---- list
 * ----------------------------------------------------------------------------------------- */

/* Sortable fields: the API name, its SQL, and what the index can sort by. */
static const struct {
    const char *name, *sql;
    history_sort_t index;
} s_sorts[] = {
    {"id", "id", HISTORY_SORT_ID},
    {"receipt_id", "receipt_id", HISTORY_SORT_NONE},
    {"call_id", "call_id", HISTORY_SORT_NONE},
    {"channel", "channel", HISTORY_SORT_CHANNEL},
    {"operator_id", "operator_id", HISTORY_SORT_OPERATOR_ID},
    {"operator_name", "operator_name", HISTORY_SORT_NONE},
    {"started_at", "started_at", HISTORY_SORT_STARTED_AT},
    {"ended_at", "ended_at", HISTORY_SORT_NONE},
    {"wrapup_ended_at", "wrapup_ended_at", HISTORY_SORT_NONE},
    {"reception_type", "reception_type", HISTORY_SORT_RECEPTION_TYPE},
    {"department_id", "department_id", HISTORY_SORT_DEPARTMENT_ID},
    {"handling_type", "handling_type", HISTORY_SORT_HANDLING_TYPE},
    {"faq_ids", "faq_ids", HISTORY_SORT_NONE},
    {"category", "category", HISTORY_SORT_CATEGORY},
    {"inquiry", "inquiry", HISTORY_SORT_NONE},
    {"response", "response", HISTORY_SORT_NONE},
    {"transfer_to", "transfer_to", HISTORY_SORT_NONE},
    {"summary", "summary", HISTORY_SORT_NONE},
    {"status", "status", HISTORY_SORT_STATUS},
    {"created_at", "created_at", HISTORY_SORT_NONE},
    {"updated_at", "updated_at", HISTORY_SORT_NONE},
    {"version", "version", HISTORY_SORT_NONE},
    {"fiscal_year", "fiscal_year", HISTORY_SORT_FISCAL_YEAR},
    {"relevance", NULL, HISTORY_SORT_RELEVANCE},
};

/* The answer: the records of `ids` in that order. */
static void s_reply_ids(history_t *self, const int64_t *ids, size_t n, int64_t total,
                        const char *search, ncc_reply_t *reply)
{
    PGresult *res = NULL;
    history_record_t *recs = calloc(n ? n : 1, sizeof *recs);
    Ncc__History__Record **items = calloc(n ? n : 1, sizeof *items);
    size_t count = 0;
    if (!recs || !items) {
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        goto out;
    }
    if (n > 0 && history_records_by_ids(self, ids, n, &res, recs, &count) < 0) {
        history_reply_db_error(self, reply, "list records: rows");
        goto out;
    }
    for (size_t i = 0; i < count; i++)
        items[i] = &recs[i].msg;
    Ncc__History__RecordList list = NCC__HISTORY__RECORD_LIST__INIT;
    list.n_items = count;
    list.items = items;
    list.has_total = true;
    list.total = total;
    list.search = (char *)search;
    ncc_reply_message(reply, &list.base);
out:
    for (size_t i = 0; recs && i < count; i++)
        history_record_clear(&recs[i]);
    free(recs);
    free(items);
    if (res)
        PQclear(res);
}

/* The words of q as ILIKE conditions on the three texts (the database
 * search used while the index is being built: no width or kana folding). */
static int s_like_words(const char *q, char *where, size_t len, const char **params, int *n,
                        char (*words)[220], int max_words)
{
    size_t used = strlen(where);
    int count = 0;
    for (const char *p = q; *p && count < max_words;) {
        while (*p == ' ' || *p == '\t')
            p++;
        size_t wlen = strcspn(p, " \t");
        if (wlen == 0)
            break;
        char *w = words[count];
        size_t k = 0;
        w[k++] = '%';
        for (size_t i = 0; i < wlen && k < 216; i++) {
            if (p[i] == '%' || p[i] == '_' || p[i] == '\\')
                w[k++] = '\\';
            w[k++] = p[i];
        }
        w[k++] = '%';
        w[k] = '\0';
        params[(*n)++] = w;
        used += (size_t)snprintf(where + used, len - used,
                                 " AND (inquiry ILIKE $%d OR response ILIKE $%d OR summary ILIKE "
                                 "$%d)",
                                 *n, *n, *n);
        count++;
        p += wlen;
    }
    return count;
}

static void s_on_list(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    history_t *self = arg;
    const Ncc__History__ListRecords *m = (const Ncc__History__ListRecords *)request->message;
    history_filter_input_t in = HISTORY_FILTER_INPUT_OF(m);
    history_filter_t f;
    if (!history_filter_parse(&in, &f, reply))
        return;
    int32_t page = m->has_page ? m->page : 1, per_page = m->has_per_page ? m->per_page : S_PER_PAGE;
    if (page < 1) {
        ncc_reply_error(reply, 422, "invalid_field", "page", "page starts at 1");
        return;
    }
    if (per_page < 1 || per_page > S_PER_PAGE_MAX) {
        ncc_reply_error(reply, 422, "invalid_field", "per_page", "per_page is 1 to %d",
                        S_PER_PAGE_MAX);
        return;
    }
    if ((int64_t)page * per_page > S_DEEPEST) {
        ncc_reply_error(reply, 422, "invalid_field", "page",
                        "at most %d records deep: narrow the search", S_DEEPEST);
        return;
    }
    /* The sort: a field, "-" for descending; default relevance with q. */
    const char *sort = m->sort && *m->sort ? m->sort : f.q ? "relevance" : "-started_at";
    bool descending = sort[0] == '-';
    const char *sort_name = descending ? sort + 1 : sort;
    size_t which = 0;
    while (which < sizeof s_sorts / sizeof s_sorts[0] && strcmp(s_sorts[which].name, sort_name))
        which++;
    if (which == sizeof s_sorts / sizeof s_sorts[0] ||
        (s_sorts[which].index == HISTORY_SORT_RELEVANCE && (!f.q || descending))) {
        ncc_reply_error(reply, 422, "invalid_field", "sort",
                        "sort is a record field (or relevance, with q), - in front for "
                        "descending");
        return;
    }
    size_t offset = (size_t)(page - 1) * (size_t)per_page;

    /* With words, or a sort the index holds: the index, once it has every change flushed
     * so far (a list then shows what its reader just saved). */
    bool indexed = false;
    if (self->search && (f.q || s_sorts[which].index != HISTORY_SORT_NONE)) {
        if (self->flush_pending) { /* a call's change committed here, not yet numbered */
            self->flush_pending = false;
            history_flush(self);
        }
        PGresult *seq =
            ncc_db_exec(self->db, "SELECT last_seq FROM outbox_state WHERE id = 1", 0, NULL, NULL);
        int64_t last = seq && PQntuples(seq) ? strtoll(PQgetvalue(seq, 0, 0), NULL, 10) : 0;
        if (seq)
            PQclear(seq);
        indexed = seq && history_search_wait(self->search, last, S_INDEX_WAIT_MS);
        indexed = indexed || (f.q && seq); /* words: a second behind at worst is still better */
    }
    if (indexed) {
        history_query_t query;
        history_filter_query(&f, &query);
        int64_t *only = NULL, *ids = NULL, total = 0;
        size_t n_only = 0, n = 0;
        if (f.call_id && history_ids_of_call(self, f.call_id, &only, &n_only) < 0) {
            history_reply_db_error(self, reply, "list records: call");
            return;
        }
        query.only_ids = only;
        query.n_only_ids = n_only;
        query.only_ids = f.call_id ? only : NULL;
        query.sort = s_sorts[which].index;
        query.descending = descending;
        query.offset = offset;
        query.limit = (size_t)per_page;
        int rc =
            self->search ? history_search_run(self->search, &query, &ids, &n, &total) : -EAGAIN;
        free(only);
        if (rc == 0 && query.sort != HISTORY_SORT_NONE) {
            s_reply_ids(self, ids, n, total, "index", reply);
            free(ids);
            return;
        }
        if (rc == 0) {
            /* Matches the index cannot sort: PostgreSQL sorts them. */
            char *array = s_id_array(ids, n);
            free(ids);
            if (!array) {
                ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
                return;
            }
            char sql[512], limit[24], off[24];
            snprintf(limit, sizeof limit, "%d", per_page);
            snprintf(off, sizeof off, "%zu", offset);
            snprintf(sql, sizeof sql,
                     "SELECT id FROM records WHERE id = ANY($1::bigint[]) ORDER BY %s %s, id %s "
                     "LIMIT $2::int OFFSET $3::bigint",
                     s_sorts[which].sql, descending ? "DESC" : "ASC", descending ? "DESC" : "ASC");
            const char *params[] = {array, limit, off};
            PGresult *res = ncc_db_exec(self->db, sql, 3, params, NULL);
            free(array);
            if (!res) {
                history_reply_db_error(self, reply, "list records: sort");
                return;
            }
            size_t rows = (size_t)PQntuples(res);
            int64_t *page_ids = malloc((rows ? rows : 1) * sizeof *page_ids);
            for (size_t i = 0; page_ids && i < rows; i++)
                page_ids[i] = strtoll(PQgetvalue(res, (int)i, 0), NULL, 10);
            PQclear(res);
            if (!page_ids) {
                ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
                return;
            }
            s_reply_ids(self, page_ids, rows, total, "index", reply);
            free(page_ids);
            return;
        }
        if (rc == -ENOMEM) {
            ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
            return;
        }
        if (rc == -ENODATA)
            f.q = NULL; /* no letter or digit: as if no words were given */
        /* -EAGAIN: the index is not built yet; the database answers. */
    }
    const char *answered_by = "database";

    /* Without words (or before the index is built): PostgreSQL. */
    char where[2048], words[8][220];
    const char *params[32];
    int n = 0;
    history_filter_sql(&f, where, sizeof where, params, &n);
    const char *search = answered_by;
    if (f.q)
        s_like_words(f.q, where, sizeof where, params, &n, words, 8);
    if (s_sorts[which].index == HISTORY_SORT_RELEVANCE) {
        which = 6; /* the database has no relevance: newest first */
        descending = true;
    }
    char sql[2600], limit[24], off[24];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM records WHERE %s", where);
    PGresult *res = ncc_db_exec(self->db, sql, n, params, NULL);
    if (!res) {
        history_reply_db_error(self, reply, "list records: count");
        return;
    }
    int64_t total = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    snprintf(limit, sizeof limit, "%d", per_page);
    snprintf(off, sizeof off, "%zu", offset);
    params[n] = limit;
    params[n + 1] = off;
    snprintf(sql, sizeof sql,
             "SELECT id FROM records WHERE %s ORDER BY %s %s, id %s LIMIT $%d::int OFFSET "
             "$%d::bigint",
             where, s_sorts[which].sql, descending ? "DESC NULLS LAST" : "ASC NULLS FIRST",
             descending ? "DESC" : "ASC", n + 1, n + 2);
    res = ncc_db_exec(self->db, sql, n + 2, params, NULL);
    if (!res) {
        history_reply_db_error(self, reply, "list records");
        return;
    }
    size_t rows = (size_t)PQntuples(res);
    int64_t *ids = malloc((rows ? rows : 1) * sizeof *ids);
    for (size_t i = 0; ids && i < rows; i++)
        ids[i] = strtoll(PQgetvalue(res, (int)i, 0), NULL, 10);
    PQclear(res);
    if (!ids) {
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        return;
    }
    s_reply_ids(self, ids, rows, total, search, reply);
    free(ids);
}

/* ---- the caller's history (screen pop) ---------------------------------------------------------
 */

static void s_on_caller_history(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    history_t *self = arg;
    const Ncc__History__CallerHistory *m = (const Ncc__History__CallerHistory *)request->message;
    int32_t limit = m->has_limit ? m->limit : S_CALLER_LIMIT;
    if (limit < 1 || limit > S_CALLER_MAX_LIM) {
        ncc_reply_error(reply, 422, "invalid_field", "limit", "limit is 1 to %d", S_CALLER_MAX_LIM);
        return;
    }
    char digits[64], bidx[65];
    if (s_empty(m->caller_number) || !history_text_ok(m->caller_number, S_CALLER_MAX, false) ||
        !history_caller_digits(m->caller_number, digits, sizeof digits)) {
        ncc_reply_error(reply, 422, "invalid_field", "caller_number",
                        "caller_number is a phone number");
        return;
    }
    const ncc_keyring_t *keys = ncc_service_keyring(self->service);
    if (!keys || ncc_blind_index(keys, HISTORY_CALLER_CONTEXT, digits, bidx) < 0) {
        /* No keys: no number was ever stored, so there is no history. */
        Ncc__History__RecordList empty = NCC__HISTORY__RECORD_LIST__INIT;
        empty.has_total = true;
        ncc_reply_message(reply, &empty.base);
        return;
    }
    char limit_text[16];
    snprintf(limit_text, sizeof limit_text, "%d", limit);
    const char *params[] = {bidx, limit_text};
    PGresult *res = ncc_db_exec(self->db,
                                "SELECT id, count(*) OVER () FROM records "
                                "WHERE caller_number_bidx = $1 "
                                "ORDER BY started_at DESC, id DESC LIMIT $2::int",
                                2, params, NULL);
    if (!res) {
        history_reply_db_error(self, reply, "caller history");
        return;
    }
    size_t rows = (size_t)PQntuples(res);
    int64_t ids[S_CALLER_MAX_LIM];
    int64_t total = rows ? strtoll(PQgetvalue(res, 0, 1), NULL, 10) : 0;
    for (size_t i = 0; i < rows; i++)
        ids[i] = strtoll(PQgetvalue(res, (int)i, 0), NULL, 10);
    PQclear(res);
    s_reply_ids(self, ids, rows, total, NULL, reply);
}

int history_records_register(history_t *self)
{
    ncc_service_t *service = self->service;
    unsigned writers = NCC_ROLE_OPERATOR | NCC_ROLE_SUPERVISOR | NCC_ROLE_ADMIN;
    if (ncc_service_on(service, &ncc__history__create_record__descriptor, writers, s_on_create,
                       self) < 0 ||
        ncc_service_on(service, &ncc__history__get_record__descriptor, NCC_ROLES_ALL, s_on_get,
                       self) < 0 ||
        ncc_service_on(service, &ncc__history__update_record__descriptor, writers, s_on_update,
                       self) < 0 ||
        ncc_service_on(service, &ncc__history__list_records__descriptor, NCC_ROLES_ALL, s_on_list,
                       self) < 0 ||
        ncc_service_on(service, &ncc__history__caller_history__descriptor, NCC_ROLES_ALL,
                       s_on_caller_history, self) < 0)
        return -EEXIST;
    return 0;
}
