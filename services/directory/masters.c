/* masters: the bus handlers of the masters, one set for every kind of the
 * table in masters_kinds.c (R4): List, Get, Create, Update, Delete, Import,
 * Export; the history (R8); the full fetch for daemons' caches and the
 * propagation check (R5). Every change runs in one transaction under the
 * masters lock, with its history and its MasterChanged event; a change with
 * effective_at is stored for later (masters_schedule.c). */
#include "masters.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "masters.pb-c.h"
#include "ncc/json.h"
#include "ncc/roles.h"

#define S_PER_PAGE_DEFAULT  50
#define S_PER_PAGE_MAX      500
#define S_PAGE_MAX          1000000
#define S_Q_MAX_BYTES       200
#define S_STATUS_TIMEOUT_MS 250 /* GetCacheStatus of one service (propagation) */
#define S_SCHEDULED_ERRORS  5   /* errors quoted in a failed scheduled import */
#define S_REFERRERS_NAMED   5   /* entries named in a "referenced" refusal */

/* What a handler of one kind gets as its argument. */
typedef struct {
    directory_t *dir;
    const masters_kind_t *kind;
} s_binding_t;

/* ---- shared helpers --------------------------------------------------------------------- */

int masters_refuse(masters_outcome_t *out, int status, const char *code, const char *field,
                   const char *fmt, ...)
{
    out->status = status;
    snprintf(out->code, sizeof out->code, "%s", code);
    out->field = field;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->message, sizeof out->message, fmt, ap);
    va_end(ap);
    return 0;
}

masters_actor_t masters_actor_of(directory_t *dir, const ncc_request_t *request, char *login_buf,
                                 size_t login_len)
{
    ncc_actor_t actor = ncc_request_actor(request);
    login_buf[0] = '\0';
    int64_t user_id;
    if (directory_parse_id(actor.id, &user_id)) {
        const char *params[] = {actor.id};
        PGresult *res =
            ncc_db_exec(dir->db, "SELECT login FROM users WHERE id = $1::bigint", 1, params, NULL);
        if (res && PQntuples(res) == 1)
            snprintf(login_buf, login_len, "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    const Ncc__Envelope *envelope = request->envelope;
    masters_actor_t out = {
        .id = actor.id,
        .login = login_buf,
        .role = envelope->actor_role ? envelope->actor_role : "",
        .address = actor.address,
        .trace_id = actor.trace_id,
    };
    return out;
}

void masters_reply_json(ncc_reply_t *reply, const ProtobufCMessageDescriptor *desc,
                        const cJSON *json)
{
    ProtobufCMessage *message = NULL;
    ncc_json_error_t err;
    if (ncc_json_to_pb(desc, json, 0, &message, &err) < 0) {
        ncc_error("masters.reply_failed", "%s does not convert: %s (%s)", desc->name, err.message,
                  err.field);
        ncc_reply_error(reply, 500, "internal", NULL, "internal error");
        return;
    }
    ncc_reply_message(reply, message);
    protobuf_c_message_free_unpacked(message, NULL);
}

int masters_query_json(directory_t *dir, const char *sql, int nparams, const char *const *params,
                       cJSON **ret_json)
{
    PGresult *res = ncc_db_exec(dir->db, sql, nparams, params, NULL);
    if (!res)
        return -EIO;
    int rc = 0;
    if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0)) {
        cJSON *json = cJSON_Parse(PQgetvalue(res, 0, 0));
        rc = json ? 1 : -ENOMEM;
        *ret_json = json;
    }
    PQclear(res);
    return rc;
}

/* The answer for an outcome that is a refusal. */
static void s_reply_refusal(ncc_reply_t *reply, const masters_outcome_t *out)
{
    ncc_reply_error(reply, out->status, out->code, out->field, "%s", out->message);
}

/* Answers a database failure, or out of memory. */
static void s_reply_failure(directory_t *dir, ncc_reply_t *reply, int rc, const char *what)
{
    if (rc == -ENOMEM) {
        ncc_db_rollback(dir->db);
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        return;
    }
    directory_reply_db_error(dir, reply, what);
}

/* Answers the entry `id` of `kind` as its item (read after the commit). */
static void s_reply_item(directory_t *dir, ncc_reply_t *reply, const masters_kind_t *kind,
                         int64_t id)
{
    char id_text[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, id);
    const char *params[] = {id_text};
    masters_buf_t sql = {0};
    masters_sql_get(&sql, kind);
    cJSON *json = NULL;
    int rc = sql.failed ? -ENOMEM : masters_query_json(dir, sql.data, 1, params, &json);
    masters_buf_free(&sql);
    if (rc == 0)
        ncc_reply_error(reply, 404, "not_found", "id", "no %s %" PRId64, kind->label, id);
    else if (rc < 0)
        s_reply_failure(dir, reply, rc, "read master");
    else
        masters_reply_json(reply, kind->item, json);
    cJSON_Delete(json);
}

/* A JSON value as the text masters_value_check takes, into buf: NULL for
 * absent or null; *ret_bad for a type no column takes. */
static const char *s_value_text(const cJSON *item, char *buf, size_t len, bool *ret_bad)
{
    *ret_bad = false;
    if (!item || cJSON_IsNull(item))
        return NULL;
    if (cJSON_IsString(item))
        return item->valuestring;
    if (cJSON_IsBool(item))
        return cJSON_IsTrue(item) ? "true" : "false";
    if (cJSON_IsNumber(item)) {
        snprintf(buf, len, "%.17g", item->valuedouble);
        return buf;
    }
    if (cJSON_IsRaw(item) && item->valuestring) {
        snprintf(buf, len, "%s", item->valuestring);
        return buf;
    }
    if (cJSON_IsArray(item)) {
        size_t used = 0;
        buf[0] = '\0';
        const cJSON *element;
        cJSON_ArrayForEach(element, item)
        {
            if (!cJSON_IsString(element) || used + strlen(element->valuestring) + 2 > len) {
                *ret_bad = true;
                return NULL;
            }
            used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? " " : "",
                                     element->valuestring);
        }
        return buf;
    }
    *ret_bad = true;
    return NULL;
}

/* Checks every column of `source` (for each column: `patch`'s value when it
 * has one, else `base`'s; either may be NULL) into values[] (bufs hold the
 * canonical texts). 0, or a refusal in out (422 naming the field). */
static int s_values(const masters_kind_t *kind, const cJSON *patch, const cJSON *base,
                    const char *values[MASTERS_MAX_COLUMNS], char (*bufs)[256],
                    masters_outcome_t *out)
{
    for (size_t i = 0; i < kind->n_columns; i++) {
        const masters_column_t *column = &kind->columns[i];
        const cJSON *item = patch ? cJSON_GetObjectItemCaseSensitive(patch, column->name) : NULL;
        if (!item && base)
            item = cJSON_GetObjectItemCaseSensitive(base, column->name);
        char text[256];
        bool bad = false;
        const char *in = s_value_text(item, text, sizeof text, &bad);
        const char *why =
            bad ? "this type of value is not accepted"
                : masters_value_check(column, in, bufs[i], sizeof bufs[i], &values[i]);
        if (why) {
            masters_refuse(out, 422, "invalid_field", column->name, "%s: %s", column->name, why);
            return -EINVAL;
        }
    }
    return 0;
}

/* ---- users: what an import of users also does -------------------------------------------------
 */

/* After a users change set: at least one active administrator remains (409
 * otherwise, in out), each changed user is announced (UserChanged, for
 * `request`'s actor, or the daemon's when NULL) and the import is audited. */
static int s_users_after(directory_t *dir, const ncc_request_t *request,
                         const masters_actor_t *actor, masters_outcome_t *out)
{
    PGresult *res = ncc_db_exec(dir->db,
                                "SELECT EXISTS (SELECT 1 FROM users WHERE active AND 'admin' = "
                                "ANY (roles))",
                                0, NULL, NULL);
    if (!res)
        return -EIO;
    bool admin = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (!admin)
        return masters_refuse(out, 409, "conflict", "roles",
                              "at least one active administrator must remain: nothing was "
                              "imported");
    char change[24];
    snprintf(change, sizeof change, "%" PRId64, out->change_id);
    const char *params[] = {change};
    res = ncc_db_exec(dir->db,
                      "SELECT u.id, h.op FROM master_history h JOIN users u ON lower(u.login) = "
                      "lower(h.code) WHERE h.change_id = $1::bigint ORDER BY h.id",
                      1, params, NULL);
    if (!res)
        return -EIO;
    int rc = 0;
    for (int i = 0; rc == 0 && i < PQntuples(res); i++) {
        const char *op = PQgetvalue(res, i, 1);
        const char *change_name = strcmp(op, "created") == 0   ? "created"
                                  : strcmp(op, "retired") == 0 ? "retired"
                                                               : "updated";
        rc = directory_user_changed(dir, request, strtoll(PQgetvalue(res, i, 0), NULL, 10),
                                    change_name);
    }
    PQclear(res);
    if (rc < 0)
        return rc;
    char detail[160];
    snprintf(detail, sizeof detail,
             "change %" PRId64 ": %" PRId64 " created, %" PRId64 " updated, %" PRId64 " retired",
             out->change_id, out->created, out->updated, out->retired);
    directory_audit_t entry = {
        .actor_id = actor->id,
        .actor_login = actor->login && *actor->login ? actor->login : NULL,
        .actor_role = actor->role,
        .address = actor->address,
        .action = "user.imported",
        .target = "users",
        .outcome = "success",
        .detail = detail,
    };
    return directory_audit(dir, &entry);
}

/* ---- operations (also run by the scheduler) ------------------------------------------------- */

int masters_op_create(const masters_op_t *op, const cJSON *fields, masters_outcome_t *out)
{
    const masters_kind_t *kind = op->kind;
    const char *values[MASTERS_MAX_COLUMNS];
    char bufs[MASTERS_MAX_COLUMNS][256];
    if (s_values(kind, fields, NULL, values, bufs, out) < 0)
        return 0;
    masters_batch_t batch = {.kind = kind,
                             .mode = MASTERS_BATCH_CREATE,
                             .op = "create",
                             .source = op->source,
                             .actor = op->actor,
                             .scheduled_id = op->scheduled_id,
                             .effective_at = op->effective_at};
    masters_batch_add_row(&batch, 0, values);
    int rc = masters_batch_run(op->dir, &batch, out);
    masters_batch_free(&batch);
    return rc;
}

/* Reads entry `id` for a change: its values (JSON), key and version, the row
 * locked. 1, 0 when there is none, -EIO / -ENOMEM. */
static int s_read_for_change(directory_t *dir, const masters_kind_t *kind, int64_t id,
                             cJSON **ret_values, char *key, size_t key_len, int64_t *ret_version)
{
    char id_text[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, id);
    const char *params[] = {id_text};
    masters_buf_t sql = {0};
    masters_sql_for_change(&sql, kind);
    if (sql.failed) {
        masters_buf_free(&sql);
        return -ENOMEM;
    }
    PGresult *res = ncc_db_exec(dir->db, sql.data, 1, params, NULL);
    masters_buf_free(&sql);
    if (!res)
        return -EIO;
    int rc = 0;
    if (PQntuples(res) == 1) {
        *ret_values = cJSON_Parse(PQgetvalue(res, 0, 0));
        snprintf(key, key_len, "%s", PQgetvalue(res, 0, 1));
        *ret_version = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
        rc = *ret_values ? 1 : -ENOMEM;
    }
    PQclear(res);
    return rc;
}

int masters_op_update(const masters_op_t *op, int64_t id, int64_t version, const cJSON *fields,
                      masters_outcome_t *out)
{
    const masters_kind_t *kind = op->kind;
    cJSON *current = NULL;
    char key[128];
    int64_t current_version = 0;
    int rc = s_read_for_change(op->dir, kind, id, &current, key, sizeof key, &current_version);
    if (rc <= 0)
        return rc < 0
                   ? rc
                   : masters_refuse(out, 404, "not_found", "id", "no %s %" PRId64, kind->label, id);
    if (version >= 0 && version != current_version) {
        cJSON_Delete(current);
        return masters_refuse(out, 409, "conflict", "version",
                              "the %s was changed meanwhile (version %" PRId64
                              " is current): read it again",
                              kind->label, current_version);
    }
    const char *values[MASTERS_MAX_COLUMNS];
    char bufs[MASTERS_MAX_COLUMNS][256];
    rc = 0;
    if (s_values(kind, fields, current, values, bufs, out) == 0) {
        if (strcmp(values[0], key) != 0) {
            masters_refuse(out, 422, "invalid_field", masters_key(kind)->name,
                           "the %s of an entry cannot change: create a new entry and retire "
                           "this one",
                           masters_key(kind)->name);
        } else {
            masters_batch_t batch = {.kind = kind,
                                     .mode = MASTERS_BATCH_UPDATE,
                                     .op = "update",
                                     .source = op->source,
                                     .actor = op->actor,
                                     .scheduled_id = op->scheduled_id,
                                     .effective_at = op->effective_at};
            masters_batch_add_row(&batch, 0, values);
            rc = masters_batch_run(op->dir, &batch, out);
            masters_batch_free(&batch);
        }
    }
    cJSON_Delete(current);
    return rc;
}

/* The entries that refer to entry `code` of `kind`, as a sentence into buf.
 * 1 when there are some, 0, -EIO. */
static int s_referrers(directory_t *dir, const masters_kind_t *kind, const char *code, char *buf,
                       size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (const masters_kind_t *k = masters_kinds; k->name; k++) {
        for (size_t i = 0; i < k->n_columns; i++) {
            const masters_column_t *column = &k->columns[i];
            if ((column->type != MASTERS_REF && column->type != MASTERS_CODES) ||
                strcmp(column->ref, kind->name) != 0)
                continue;
            masters_buf_t sql = {0};
            masters_sql_referrers(&sql, k, column, S_REFERRERS_NAMED);
            const char *params[] = {code};
            PGresult *res = sql.failed ? NULL : ncc_db_exec(dir->db, sql.data, 1, params, NULL);
            masters_buf_free(&sql);
            if (!res)
                return -EIO;
            if (!PQgetisnull(res, 0, 0)) {
                long n = strtol(PQgetvalue(res, 0, 1), NULL, 10);
                long more = n - S_REFERRERS_NAMED;
                used += (size_t)snprintf(buf + used, used < len ? len - used : 0, "%s%s %s (%s)",
                                         used ? "; " : "", k->label, PQgetvalue(res, 0, 0),
                                         column->name);
                if (more > 0 && used < len)
                    used += (size_t)snprintf(buf + used, len - used, " and %ld more", more);
            }
            PQclear(res);
        }
    }
    return used > 0 ? 1 : 0;
}

int masters_op_delete(const masters_op_t *op, int64_t id, int64_t version, masters_outcome_t *out)
{
    directory_t *dir = op->dir;
    const masters_kind_t *kind = op->kind;
    cJSON *current = NULL;
    char key[128], referrers[600];
    int64_t current_version = 0;
    int rc = s_read_for_change(dir, kind, id, &current, key, sizeof key, &current_version);
    if (rc <= 0)
        return rc < 0
                   ? rc
                   : masters_refuse(out, 404, "not_found", "id", "no %s %" PRId64, kind->label, id);
    if (version >= 0 && version != current_version) {
        cJSON_Delete(current);
        return masters_refuse(out, 409, "conflict", "version",
                              "the %s was changed meanwhile (version %" PRId64
                              " is current): read it again",
                              kind->label, current_version);
    }
    rc = s_referrers(dir, kind, key, referrers, sizeof referrers);
    if (rc != 0) {
        cJSON_Delete(current);
        if (rc < 0)
            return rc;
        return masters_refuse(out, 409, "referenced", "id",
                              "the %s %s is referenced by %s: retire it instead (active: false)",
                              kind->label, key, referrers);
    }
    char id_text[24], change[24], scheduled[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, id);
    masters_buf_t sql = {0};
    masters_sql_delete(&sql, kind);
    const char *id_param[] = {id_text};
    PGresult *res = sql.failed ? NULL : ncc_db_exec(dir->db, sql.data, 1, id_param, NULL);
    masters_buf_free(&sql);
    rc = -EIO;
    if (!res || PQntuples(res) != 1)
        goto out;
    rc = masters_change_set(dir, kind, "delete", op->source, &op->actor, op->scheduled_id,
                            op->effective_at, 1, &out->change_id);
    if (rc < 0)
        goto out;
    snprintf(change, sizeof change, "%" PRId64, out->change_id);
    snprintf(scheduled, sizeof scheduled, "%" PRId64, op->scheduled_id);
    const char *params[] = {change,
                            kind->name,
                            key,
                            PQgetvalue(res, 0, 0),
                            op->actor.id ? op->actor.id : "",
                            op->actor.login ? op->actor.login : "",
                            op->source,
                            op->scheduled_id > 0 ? scheduled : NULL};
    rc = -EIO;
    if (ncc_db_run(dir->db,
                   "INSERT INTO master_history (change_id, kind, code, op, before, after, "
                   "actor_id, actor_login, source, scheduled_id) VALUES ($1::bigint, $2, $3, "
                   "'deleted', $4::jsonb, NULL, $5, $6, $7, $8::bigint)",
                   8, params) < 0)
        goto out;
    if (ncc_db_run(dir->db, "SET CONSTRAINTS ALL IMMEDIATE", 0, NULL) < 0) {
        if (strcmp(ncc_db_sqlstate(dir->db), "23503") == 0)
            rc = masters_refuse(out, 409, "referenced", "id",
                                "the %s %s is referenced: retire it instead (active: false)",
                                kind->label, key);
        goto out;
    }
    rc = masters_event(dir, kind, key, out->change_id, "delete", 1, NULL, &op->actor);
    if (rc == 0) {
        out->entry_id = id;
        out->entry = current;
        current = NULL;
    }
out:
    PQclear(res);
    cJSON_Delete(current);
    return rc;
}

int masters_op_import(const masters_op_t *op, const char *csv, size_t len, bool replace,
                      masters_outcome_t *out)
{
    masters_batch_t batch = {.kind = op->kind,
                             .mode = MASTERS_BATCH_IMPORT,
                             .op = "import",
                             .source = op->source,
                             .replace = replace,
                             .actor = op->actor,
                             .scheduled_id = op->scheduled_id,
                             .effective_at = op->effective_at};
    const char *encoding = NULL;
    int rc = masters_csv_read(op->kind, (const uint8_t *)csv, len, &batch, out, NULL, &encoding);
    if (rc == 0)
        rc = masters_batch_run(op->dir, &batch, out);
    if (rc == -EINVAL)
        rc = 0; /* the refusal is in out */
    if (rc == 0 && out->status == 0 && out->change_id > 0 && strcmp(op->kind->name, "users") == 0)
        rc = s_users_after(op->dir, NULL, &op->actor, out);
    /* The first errors go into the message: it is all a failed scheduled
     * import keeps. */
    masters_errors_sort(&batch.errors);
    size_t used = strlen(out->message);
    for (size_t i = 0; i < batch.errors.count && i < S_SCHEDULED_ERRORS; i++) {
        const masters_error_t *e = &batch.errors.items[i];
        if (used < sizeof out->message)
            used += (size_t)snprintf(out->message + used, sizeof out->message - used,
                                     "; line %zu%s%s: %s", e->line, e->field ? " " : "",
                                     e->field ? e->field : "", e->message);
    }
    masters_batch_free(&batch);
    return rc;
}

/* ---- request fields ----------------------------------------------------------------------- */

static const char *s_string(const cJSON *request, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(request, name);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

/* An int64 field (written as a number, or a string beyond 2^53). */
static bool s_int64(const cJSON *request, const char *name, int64_t *ret_value)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(request, name);
    if (cJSON_IsNumber(item)) {
        *ret_value = (int64_t)item->valuedouble;
        return true;
    }
    if ((cJSON_IsString(item) || cJSON_IsRaw(item)) && item->valuestring) {
        *ret_value = strtoll(item->valuestring, NULL, 10);
        return true;
    }
    return false;
}

/* The request's column fields only (a copy the caller deletes), or NULL. */
static cJSON *s_fields(const masters_kind_t *kind, const cJSON *request)
{
    cJSON *fields = cJSON_CreateObject();
    if (!fields)
        return NULL;
    for (size_t i = 0; i < kind->n_columns; i++) {
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(request, kind->columns[i].name);
        if (!item)
            continue;
        cJSON *copy = cJSON_Duplicate(item, true);
        if (!copy || !cJSON_AddItemToObject(fields, kind->columns[i].name, copy)) {
            cJSON_Delete(copy);
            cJSON_Delete(fields);
            return NULL;
        }
    }
    return fields;
}

/* The request as JSON (caller deletes), or NULL after answering 500. */
static cJSON *s_request_json(const ncc_request_t *request, ncc_reply_t *reply)
{
    cJSON *json = ncc_pb_to_json(request->message);
    if (!json)
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
    return json;
}

/* effective_at of a request: 0 when absent (change now), 1 when valid (the
 * canonical time in out), -1 after answering the error. */
static int s_when(directory_t *dir, const cJSON *request, ncc_reply_t *reply, char *out, size_t len)
{
    const char *text = s_string(request, "effective_at");
    if (!text || !*text)
        return 0; /* absent or empty: now */
    const char *why = NULL;
    int rc = masters_effective_at(dir, text, out, len, &why);
    if (rc < 0) {
        directory_reply_db_error(dir, reply, "check effective_at");
        return -1;
    }
    if (rc == 0) {
        ncc_reply_error(reply, 422, "invalid_field", "effective_at", "%s", why);
        return -1;
    }
    return 1;
}

/* ---- List and Export: filters and order ----------------------------------------------------- */

#define S_MAX_PARAMS 16

typedef struct {
    masters_buf_t where;              /* SQL after WHERE */
    const char *params[S_MAX_PARAMS]; /* $1.. */
    int n;
    char *pattern;       /* owned: the q pattern */
    masters_buf_t order; /* SQL after ORDER BY */
} s_query_t;

static void s_query_free(s_query_t *q)
{
    masters_buf_free(&q->where);
    masters_buf_free(&q->order);
    free(q->pattern);
}

/* LIKE pattern matching `text` anywhere, with \ % _ escaped. Caller frees. */
static char *s_like_anywhere(const char *text)
{
    size_t len = strlen(text);
    char *pattern = malloc(2 * len + 3);
    if (!pattern)
        return NULL;
    size_t n = 0;
    pattern[n++] = '%';
    for (const char *p = text; *p; p++) {
        if (*p == '\\' || *p == '%' || *p == '_')
            pattern[n++] = '\\';
        pattern[n++] = *p;
    }
    pattern[n++] = '%';
    pattern[n] = '\0';
    return pattern;
}

/* q, active, the kind's filters and sort into q. 0, or -1 after answering. */
static int s_query(const masters_kind_t *kind, const cJSON *request, s_query_t *q,
                   ncc_reply_t *reply)
{
    masters_buf_add(&q->where, "true");
    const char *text = s_string(request, "q");
    if (text && *text) {
        if (!directory_text_ok(text, S_Q_MAX_BYTES)) {
            ncc_reply_error(reply, 422, "invalid_field", "q",
                            "q must be text of at most 200 bytes");
            return -1;
        }
        q->pattern = s_like_anywhere(text);
        if (!q->pattern) {
            ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
            return -1;
        }
        q->params[q->n++] = q->pattern;
        masters_buf_add(&q->where, " AND (false");
        for (size_t i = 0; i < kind->n_columns; i++)
            if (kind->columns[i].search)
                masters_buf_add(&q->where, " OR t.%s ILIKE $%d", kind->columns[i].name, q->n);
        masters_buf_add(&q->where, ")");
    }
    const cJSON *active = cJSON_GetObjectItemCaseSensitive(request, "active");
    if (cJSON_IsBool(active))
        masters_buf_add(&q->where, " AND t.active = %s", cJSON_IsTrue(active) ? "true" : "false");
    for (size_t i = 0; i < kind->n_columns && q->n < S_MAX_PARAMS; i++) {
        const masters_column_t *column = &kind->columns[i];
        const char *value = column->filter ? s_string(request, column->name) : NULL;
        if (!value)
            continue;
        if (!*value) {
            masters_buf_add(&q->where, " AND t.%s IS NULL", column->name);
            continue;
        }
        q->params[q->n++] = value;
        masters_buf_add(&q->where, " AND t.%s = $%d", column->name, q->n);
    }
    const char *sort = s_string(request, "sort");
    const char *name = sort && *sort ? sort + (sort[0] == '-') : masters_key(kind)->name;
    bool known = masters_column_find(kind, name) || strcmp(name, "id") == 0 ||
                 strcmp(name, "created_at") == 0 || strcmp(name, "updated_at") == 0;
    if (!known) {
        ncc_reply_error(reply, 422, "invalid_field", "sort",
                        "sort must name a field of the %s, with - in front for descending",
                        kind->label);
        return -1;
    }
    masters_buf_add(&q->order, "t.%s%s, t.id", name, sort && sort[0] == '-' ? " DESC" : "");
    if (q->where.failed || q->order.failed) {
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        return -1;
    }
    return 0;
}

/* ---- handlers ------------------------------------------------------------------------------ */

static void s_on_list(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    const s_binding_t *b = arg;
    directory_t *dir = b->dir;
    const masters_kind_t *kind = b->kind;
    s_query_t q = {0};
    masters_buf_t sql = {0};
    cJSON *json = NULL;
    cJSON *req = s_request_json(request, reply);
    if (!req)
        return;
    int64_t page = 1, per_page = S_PER_PAGE_DEFAULT;
    s_int64(req, "page", &page);
    s_int64(req, "per_page", &per_page);
    if (page < 1 || page > S_PAGE_MAX) {
        ncc_reply_error(reply, 422, "invalid_field", "page", "page must be at least 1");
        goto out;
    }
    if (per_page < 1 || per_page > S_PER_PAGE_MAX) {
        ncc_reply_error(reply, 422, "invalid_field", "per_page",
                        "per_page must be between 1 and 500");
        goto out;
    }
    if (s_query(kind, req, &q, reply) < 0)
        goto out;
    char limit[24], offset[24];
    snprintf(limit, sizeof limit, "%" PRId64, per_page);
    snprintf(offset, sizeof offset, "%" PRId64, (page - 1) * per_page);
    q.params[q.n] = limit;
    q.params[q.n + 1] = offset;
    masters_sql_list(&sql, kind, q.where.data, q.order.data, q.n + 1);
    int rc = sql.failed ? -ENOMEM : masters_query_json(dir, sql.data, q.n + 2, q.params, &json);
    if (rc <= 0)
        s_reply_failure(dir, reply, rc == 0 ? -EIO : rc, "list masters");
    else
        masters_reply_json(reply, kind->list, json);
out:
    cJSON_Delete(json);
    cJSON_Delete(req);
    masters_buf_free(&sql);
    s_query_free(&q);
}

static void s_on_get(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    const s_binding_t *b = arg;
    cJSON *req = s_request_json(request, reply);
    if (!req)
        return;
    int64_t id = 0;
    if (!s_int64(req, "id", &id) || id <= 0)
        ncc_reply_error(reply, 422, "invalid_field", "id", "id is required");
    else
        s_reply_item(b->dir, reply, b->kind, id);
    cJSON_Delete(req);
}

/* Opens the transaction of a change and takes the masters lock. 0, or -1
 * after answering. */
static int s_begin(directory_t *dir, ncc_reply_t *reply)
{
    if (ncc_db_begin(dir->db) < 0 || masters_lock(dir) < 0) {
        directory_reply_db_error(dir, reply, "masters change");
        return -1;
    }
    return 0;
}

/* Ends a change: rolls back a refusal (answered), commits and publishes a
 * success (answering with `answer_id`'s item unless the caller answers).
 * Returns true when committed. */
static bool s_finish(directory_t *dir, ncc_reply_t *reply, int rc, const masters_outcome_t *out)
{
    if (rc < 0) {
        s_reply_failure(dir, reply, rc, "masters change");
        return false;
    }
    if (out->status) {
        ncc_db_rollback(dir->db);
        s_reply_refusal(reply, out);
        return false;
    }
    if (ncc_db_commit(dir->db) < 0) {
        directory_reply_db_error(dir, reply, "masters change");
        return false;
    }
    directory_flush(dir);
    return true;
}

/* Stores a scheduled change and answers it. */
static void s_schedule(directory_t *dir, ncc_reply_t *reply, const masters_kind_t *kind,
                       const char *op, const char *code, int64_t target_id, const cJSON *fields,
                       const char *when, const masters_actor_t *actor)
{
    int64_t id = 0;
    if (ncc_db_begin(dir->db) < 0 ||
        masters_schedule_store(dir, kind, op, code, target_id, fields, NULL, 0, false, when, actor,
                               &id) < 0 ||
        ncc_db_commit(dir->db) < 0) {
        directory_reply_db_error(dir, reply, "schedule a change");
        return;
    }
    masters_schedule_reply(dir, reply, id);
}

static void s_on_create(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    const s_binding_t *b = arg;
    directory_t *dir = b->dir;
    const masters_kind_t *kind = b->kind;
    char login[80], when[48];
    masters_outcome_t out = {0};
    cJSON *fields = NULL;
    cJSON *req = s_request_json(request, reply);
    if (!req)
        return;
    fields = s_fields(kind, req);
    if (!fields) {
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        goto out;
    }
    int scheduled = s_when(dir, req, reply, when, sizeof when);
    if (scheduled < 0)
        goto out;
    masters_actor_t actor = masters_actor_of(dir, request, login, sizeof login);
    if (scheduled) {
        /* The values are checked now; references and duplicates when it applies. */
        const char *values[MASTERS_MAX_COLUMNS];
        char bufs[MASTERS_MAX_COLUMNS][256];
        if (s_values(kind, fields, NULL, values, bufs, &out) < 0)
            s_reply_refusal(reply, &out);
        else
            s_schedule(dir, reply, kind, "create", values[0], 0, fields, when, &actor);
        goto out;
    }
    if (s_begin(dir, reply) < 0)
        goto out;
    masters_op_t op = {.dir = dir, .kind = kind, .actor = actor, .source = "api"};
    int rc = masters_op_create(&op, fields, &out);
    if (s_finish(dir, reply, rc, &out))
        s_reply_item(dir, reply, kind, out.entry_id);
out:
    masters_outcome_free(&out);
    cJSON_Delete(fields);
    cJSON_Delete(req);
}

static void s_on_update(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    const s_binding_t *b = arg;
    directory_t *dir = b->dir;
    const masters_kind_t *kind = b->kind;
    char login[80], when[48], key[128];
    masters_outcome_t out = {0};
    cJSON *fields = NULL, *current = NULL;
    cJSON *req = s_request_json(request, reply);
    if (!req)
        return;
    int64_t id = 0, version = 0;
    if (!s_int64(req, "id", &id) || id <= 0) {
        ncc_reply_error(reply, 422, "invalid_field", "id", "id is required");
        goto out;
    }
    if (!s_int64(req, "version", &version)) {
        ncc_reply_error(reply, 422, "invalid_field", "version",
                        "version is required (the version you read)");
        goto out;
    }
    fields = s_fields(kind, req);
    if (!fields) {
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        goto out;
    }
    int scheduled = s_when(dir, req, reply, when, sizeof when);
    if (scheduled < 0)
        goto out;
    masters_actor_t actor = masters_actor_of(dir, request, login, sizeof login);
    if (scheduled) {
        /* The entry and its version are checked now, the values too. */
        int64_t current_version = 0;
        int rc = s_read_for_change(dir, kind, id, &current, key, sizeof key, &current_version);
        const char *values[MASTERS_MAX_COLUMNS];
        char bufs[MASTERS_MAX_COLUMNS][256];
        if (rc < 0)
            s_reply_failure(dir, reply, rc, "read master");
        else if (rc == 0)
            ncc_reply_error(reply, 404, "not_found", "id", "no %s %" PRId64, kind->label, id);
        else if (version != current_version)
            ncc_reply_error(reply, 409, "conflict", "version",
                            "the %s was changed meanwhile (version %" PRId64
                            " is current): read it again",
                            kind->label, current_version);
        else if (s_values(kind, fields, current, values, bufs, &out) < 0)
            s_reply_refusal(reply, &out);
        else if (strcmp(values[0], key) != 0)
            ncc_reply_error(reply, 422, "invalid_field", masters_key(kind)->name,
                            "the %s of an entry cannot change", masters_key(kind)->name);
        else
            s_schedule(dir, reply, kind, "update", key, id, fields, when, &actor);
        goto out;
    }
    if (s_begin(dir, reply) < 0)
        goto out;
    masters_op_t op = {.dir = dir, .kind = kind, .actor = actor, .source = "api"};
    int rc = masters_op_update(&op, id, version, fields, &out);
    if (s_finish(dir, reply, rc, &out))
        s_reply_item(dir, reply, kind, id);
out:
    masters_outcome_free(&out);
    cJSON_Delete(current);
    cJSON_Delete(fields);
    cJSON_Delete(req);
}

static void s_on_delete(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    const s_binding_t *b = arg;
    directory_t *dir = b->dir;
    const masters_kind_t *kind = b->kind;
    char login[80], when[48], key[128];
    masters_outcome_t out = {0};
    cJSON *current = NULL;
    cJSON *req = s_request_json(request, reply);
    if (!req)
        return;
    int64_t id = 0, version = -1;
    if (!s_int64(req, "id", &id) || id <= 0) {
        ncc_reply_error(reply, 422, "invalid_field", "id", "id is required");
        goto out;
    }
    s_int64(req, "version", &version);
    int scheduled = s_when(dir, req, reply, when, sizeof when);
    if (scheduled < 0)
        goto out;
    masters_actor_t actor = masters_actor_of(dir, request, login, sizeof login);
    if (scheduled) {
        /* References are checked when it applies: a reorganisation may
         * move them away first. */
        int64_t current_version = 0;
        int rc = s_read_for_change(dir, kind, id, &current, key, sizeof key, &current_version);
        if (rc < 0)
            s_reply_failure(dir, reply, rc, "read master");
        else if (rc == 0)
            ncc_reply_error(reply, 404, "not_found", "id", "no %s %" PRId64, kind->label, id);
        else if (version >= 0 && version != current_version)
            ncc_reply_error(reply, 409, "conflict", "version",
                            "the %s was changed meanwhile (version %" PRId64
                            " is current): read it again",
                            kind->label, current_version);
        else
            s_schedule(dir, reply, kind, "delete", key, id, NULL, when, &actor);
        goto out;
    }
    if (s_begin(dir, reply) < 0)
        goto out;
    masters_op_t op = {.dir = dir, .kind = kind, .actor = actor, .source = "api"};
    int rc = masters_op_delete(&op, id, version, &out);
    if (s_finish(dir, reply, rc, &out))
        masters_reply_json(reply, kind->item, out.entry);
out:
    masters_outcome_free(&out);
    cJSON_Delete(current);
    cJSON_Delete(req);
}

/* ImportResult for an outcome. */
static cJSON *s_import_result(const masters_kind_t *kind, const masters_batch_t *batch,
                              const masters_outcome_t *out, const char *encoding)
{
    cJSON *result = cJSON_CreateObject();
    if (!result)
        return NULL;
    if (out->status) {
        cJSON_AddNumberToObject(result, "http_status", out->status);
        cJSON *error = cJSON_AddObjectToObject(result, "error");
        cJSON_AddStringToObject(error, "code", out->code);
        cJSON_AddStringToObject(error, "message", out->message);
        if (out->field)
            cJSON_AddStringToObject(error, "field", out->field);
        if (batch->errors.count > 0) {
            cJSON *errors = cJSON_AddArrayToObject(result, "errors");
            for (size_t i = 0; i < batch->errors.count; i++) {
                const masters_error_t *e = &batch->errors.items[i];
                cJSON *item = cJSON_CreateObject();
                cJSON_AddNumberToObject(item, "line", (double)e->line);
                if (e->field)
                    cJSON_AddStringToObject(item, "field", e->field);
                cJSON_AddStringToObject(item, "message", e->message);
                cJSON_AddItemToArray(errors, item);
            }
            cJSON_AddNumberToObject(result, "errors_total", (double)batch->errors.total);
        }
        return result;
    }
    cJSON_AddStringToObject(result, "kind", kind->name);
    cJSON_AddBoolToObject(result, "preview", batch->preview);
    cJSON_AddNumberToObject(result, "create", (double)out->created);
    cJSON_AddNumberToObject(result, "update", (double)out->updated);
    cJSON_AddNumberToObject(result, "unchanged", (double)out->unchanged);
    cJSON_AddNumberToObject(result, "delete", 0);
    cJSON_AddNumberToObject(result, "retire", (double)out->retired);
    if (out->rows && cJSON_GetArraySize(out->rows) > 0)
        cJSON_AddItemReferenceToObject(result, "rows", out->rows);
    if (out->change_id > 0)
        cJSON_AddNumberToObject(result, "change_id", (double)out->change_id);
    if (encoding)
        cJSON_AddStringToObject(result, "encoding", encoding);
    return result;
}

/* Answers an import: its outcome, or (scheduled) the change stored for later. */
static void s_reply_import(ncc_reply_t *reply, const masters_kind_t *kind,
                           const masters_batch_t *batch, const masters_outcome_t *out,
                           const char *encoding, cJSON *scheduled)
{
    cJSON *result = NULL;
    if (scheduled) {
        result = cJSON_CreateObject();
        if (result) {
            cJSON_AddStringToObject(result, "kind", kind->name);
            cJSON_AddBoolToObject(result, "preview", false);
            cJSON_AddStringToObject(result, "encoding", encoding ? encoding : "utf-8");
            cJSON_AddItemReferenceToObject(result, "scheduled", scheduled);
        }
    } else {
        result = s_import_result(kind, batch, out, encoding);
    }
    if (!result)
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
    else
        masters_reply_json(reply, &ncc__directory__import_result__descriptor, result);
    cJSON_Delete(result);
}

/* The bytes field `name` of a message, by reflection. */
static bool s_bytes(const ProtobufCMessage *message, const char *name, const uint8_t **ret_data,
                    size_t *ret_len)
{
    const ProtobufCFieldDescriptor *field =
        protobuf_c_message_descriptor_get_field_by_name(message->descriptor, name);
    if (!field || field->type != PROTOBUF_C_TYPE_BYTES || field->label != PROTOBUF_C_LABEL_OPTIONAL)
        return false;
    const ProtobufCBinaryData *data =
        (const ProtobufCBinaryData *)((const char *)message + field->offset);
    *ret_data = data->data;
    *ret_len = data->len;
    return true;
}

static void s_on_import(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    const s_binding_t *b = arg;
    directory_t *dir = b->dir;
    const masters_kind_t *kind = b->kind;
    char login[80], when[48];
    char *utf8 = NULL;
    const char *encoding = NULL;
    cJSON *scheduled_json = NULL;
    masters_outcome_t out = {0};
    masters_batch_t batch = {
        .kind = kind, .mode = MASTERS_BATCH_IMPORT, .op = "import", .source = "import"};
    cJSON *req = s_request_json(request, reply);
    if (!req)
        return;
    const uint8_t *data = NULL;
    size_t len = 0;
    s_bytes(request->message, "csv", &data, &len);
    batch.preview = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "preview"));
    batch.replace = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "replace"));
    int scheduled = batch.preview ? 0 : s_when(dir, req, reply, when, sizeof when);
    if (scheduled < 0)
        goto out;
    batch.actor = masters_actor_of(dir, request, login, sizeof login);

    int rc = masters_csv_read(kind, data, len, &batch, &out, scheduled ? &utf8 : NULL, &encoding);
    if (rc == -EINVAL) {
        s_reply_import(reply, kind, &batch, &out, encoding, NULL);
        goto out;
    }
    if (rc < 0) {
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        goto out;
    }
    if (scheduled && batch.errors.total > 0) {
        masters_errors_sort(&batch.errors);
        masters_refuse(&out, 422, "invalid_csv", NULL,
                       "%zu problem%s found in the file: nothing was scheduled", batch.errors.total,
                       batch.errors.total == 1 ? "" : "s");
        s_reply_import(reply, kind, &batch, &out, encoding, NULL);
        goto out;
    }
    if (scheduled) {
        /* The rows are checked now; references and duplicates against the
         * tables when it applies. */
        int64_t id = 0;
        if (ncc_db_begin(dir->db) < 0 ||
            masters_schedule_store(dir, kind, "import", NULL, 0, NULL, utf8, (int64_t)batch.rows,
                                   batch.replace, when, &batch.actor, &id) < 0 ||
            ncc_db_commit(dir->db) < 0 || masters_schedule_json(dir, id, &scheduled_json) <= 0) {
            directory_reply_db_error(dir, reply, "schedule an import");
            goto out;
        }
        s_reply_import(reply, kind, &batch, &out, encoding, scheduled_json);
        goto out;
    }
    if (batch.preview ? ncc_db_begin(dir->db) < 0 : s_begin(dir, reply) < 0) {
        if (batch.preview)
            directory_reply_db_error(dir, reply, "import preview");
        goto out;
    }
    /* With bad values already found, the checks below still run on the
     * other rows, so one answer lists every problem; then it is refused. */
    rc = masters_batch_run(dir, &batch, &out);
    if (rc == 0 && out.status == 0 && !batch.preview && out.change_id > 0 &&
        strcmp(kind->name, "users") == 0)
        rc = s_users_after(dir, request, &batch.actor, &out);
    if (rc < 0) {
        s_reply_failure(dir, reply, rc, "import");
        goto out;
    }
    if (out.status || batch.preview) {
        ncc_db_rollback(dir->db);
        s_reply_import(reply, kind, &batch, &out, encoding, NULL);
        goto out;
    }
    if (ncc_db_commit(dir->db) < 0) {
        directory_reply_db_error(dir, reply, "import");
        goto out;
    }
    directory_flush(dir);
    ncc_info("masters.imported",
             "%s: %" PRId64 " created, %" PRId64 " updated, %" PRId64 " unchanged, %" PRId64
             " retired (change set %" PRId64 ")",
             kind->name, out.created, out.updated, out.unchanged, out.retired, out.change_id);
    s_reply_import(reply, kind, &batch, &out, encoding, NULL);
out:
    masters_batch_free(&batch);
    masters_outcome_free(&out);
    cJSON_Delete(scheduled_json);
    cJSON_Delete(req);
    free(utf8);
}

static void s_on_export(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    const s_binding_t *b = arg;
    directory_t *dir = b->dir;
    const masters_kind_t *kind = b->kind;
    s_query_t q = {0};
    char *csv = NULL;
    cJSON *req = s_request_json(request, reply);
    if (!req)
        return;
    const char *encoding = s_string(req, "encoding");
    bool cp932 = false;
    if (encoding && *encoding) {
        if (strcmp(encoding, "shift_jis") == 0 || strcmp(encoding, "sjis") == 0 ||
            strcmp(encoding, "cp932") == 0)
            cp932 = true;
        else if (strcmp(encoding, "utf-8") != 0 && strcmp(encoding, "utf8") != 0) {
            ncc_reply_error(reply, 422, "invalid_field", "encoding",
                            "encoding must be utf-8 or shift_jis");
            goto out;
        }
    }
    if (s_query(kind, req, &q, reply) < 0)
        goto out;
    size_t len = 0, rows = 0;
    int rc = masters_csv_export(dir, kind, q.where.data, q.n, q.params, q.order.data, cp932, &csv,
                                &len, &rows);
    if (rc < 0) {
        s_reply_failure(dir, reply, rc, "export");
        goto out;
    }
    char filename[64];
    snprintf(filename, sizeof filename, "%s.csv", kind->name);
    Ncc__Directory__CsvFile file = NCC__DIRECTORY__CSV_FILE__INIT;
    file.has_csv = true;
    file.csv.data = (uint8_t *)csv;
    file.csv.len = len;
    file.encoding = cp932 ? "shift_jis" : "utf-8";
    file.filename = filename;
    file.has_rows = true;
    file.rows = (int64_t)rows;
    ncc_reply_message(reply, &file.base);
out:
    free(csv);
    s_query_free(&q);
    cJSON_Delete(req);
}

/* ---- history, fetch, propagation ------------------------------------------------------------ */

static void s_on_history(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    directory_t *dir = arg;
    const Ncc__Directory__ListMasterHistory *m =
        (const Ncc__Directory__ListMasterHistory *)request->message;
    const masters_kind_t *kind = masters_kind_find(m->kind);
    if (!kind) {
        ncc_reply_error(reply, 404, "not_found", "kind", "no such kind of master");
        return;
    }
    int page = m->has_page ? m->page : 1;
    int per_page = m->has_per_page ? m->per_page : S_PER_PAGE_DEFAULT;
    if (page < 1 || page > S_PAGE_MAX) {
        ncc_reply_error(reply, 422, "invalid_field", "page", "page must be at least 1");
        return;
    }
    if (per_page < 1 || per_page > S_PER_PAGE_MAX) {
        ncc_reply_error(reply, 422, "invalid_field", "per_page",
                        "per_page must be between 1 and 500");
        return;
    }
    if (!directory_text_ok(m->code, 128)) {
        ncc_reply_error(reply, 422, "invalid_field", "code", "code must be text");
        return;
    }
    char change[24] = "", limit[16], offset[24];
    if (m->has_change_id)
        snprintf(change, sizeof change, "%" PRId64, m->change_id);
    snprintf(limit, sizeof limit, "%d", per_page);
    snprintf(offset, sizeof offset, "%lld", (long long)(page - 1) * per_page);
    const char *params[] = {kind->name, m->code ? m->code : "",
                            change,     limit,
                            offset,     kind->nocase_key ? "true" : "false"};
    // clang-format off
    static const char sql[] =
        "WITH f AS (SELECT * FROM master_history h WHERE h.kind = $1 AND ($2 = '' OR h.code = $2 "
        "OR ($6::boolean AND lower(h.code) = lower($2))) AND ($3 = '' OR h.change_id = "
        "nullif($3, '')::bigint)) SELECT jsonb_build_object('items', coalesce((SELECT "
        "jsonb_agg(j ORDER BY n) FROM (SELECT jsonb_build_object('id', h.id, 'change_id', "
        "h.change_id, 'kind', h.kind, 'code', h.code, 'op', h.op, 'before', h.before, 'after', "
        "h.after, 'actor_id', nullif(h.actor_id, ''), 'actor_login', nullif(h.actor_login, ''), "
        "'at', " DIRECTORY_RFC3339_US("h.at") ", 'source', h.source, 'scheduled_id', "
        "h.scheduled_id) AS j, row_number() OVER (ORDER BY h.id DESC) AS n FROM f h ORDER BY "
        "h.id DESC LIMIT $4::int OFFSET $5::bigint) x), '[]'::jsonb), 'total', (SELECT count(*) "
        "FROM f))::text";
    // clang-format on
    cJSON *json = NULL;
    int rc = masters_query_json(dir, sql, 6, params, &json);
    if (rc <= 0)
        s_reply_failure(dir, reply, rc == 0 ? -EIO : rc, "master history");
    else
        masters_reply_json(reply, &ncc__directory__master_history_list__descriptor, json);
    cJSON_Delete(json);
}

static void s_on_fetch(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    directory_t *dir = arg;
    const Ncc__Directory__MasterFetch *m = (const Ncc__Directory__MasterFetch *)request->message;
    const masters_kind_t *kind = masters_kind_find(m->kind);
    if (!kind) {
        ncc_reply_error(reply, 404, "not_found", "kind", "no such kind of master");
        return;
    }
    if (kind->nocase_key &&
        !(ncc_request_actor(request).roles & (NCC_ROLE_SYSTEM | NCC_ROLE_ADMIN))) {
        ncc_reply_error(reply, 403, "forbidden", "kind", "users are for administrators");
        return;
    }
    masters_buf_t sql = {0};
    masters_sql_fetch(&sql, kind);
    const char *params[] = {kind->name};
    cJSON *json = NULL;
    int rc = sql.failed ? -ENOMEM : masters_query_json(dir, sql.data, 1, params, &json);
    masters_buf_free(&sql);
    if (rc <= 0)
        s_reply_failure(dir, reply, rc == 0 ? -EIO : rc, "master fetch");
    else
        masters_reply_json(reply, &ncc__directory__master_snapshot__descriptor, json);
    cJSON_Delete(json);
}

static void s_on_propagation(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    directory_t *dir = arg;
    const Ncc__Directory__MasterPropagation *m =
        (const Ncc__Directory__MasterPropagation *)request->message;
    const masters_kind_t *kind = masters_kind_find(m->kind);
    if (!kind) {
        ncc_reply_error(reply, 404, "not_found", "kind", "no such kind of master");
        return;
    }
    char change_text[24];
    snprintf(change_text, sizeof change_text, "%" PRId64, m->has_change_id ? m->change_id : 0);
    const char *params[] = {kind->name, change_text};
    // clang-format off
    static const char sql[] =
        "SELECT id, (extract(epoch FROM at) * 1000000)::bigint, " DIRECTORY_RFC3339_US("at")
        " FROM master_changes WHERE kind = $1 AND ($2::bigint = 0 OR id = $2::bigint) "
        "ORDER BY id DESC LIMIT 1";
    // clang-format on
    PGresult *res = ncc_db_exec(dir->db, sql, 2, params, NULL);
    if (!res) {
        directory_reply_db_error(dir, reply, "propagation");
        return;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        ncc_reply_error(reply, 404, "not_found", "change_id", "no such change of %s", kind->name);
        return;
    }
    int64_t change_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    int64_t at_us = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    char changed_at[48];
    snprintf(changed_at, sizeof changed_at, "%s", PQgetvalue(res, 0, 2));
    PQclear(res);

    Ncc__Directory__MasterPropagationService items[16];
    Ncc__Directory__MasterPropagationService *item_ptrs[16];
    Ncc__Masters__CacheStatus *statuses[16] = {0};
    char *unanswered[16];
    size_t n = 0, n_unanswered = 0;
    bool complete = true;
    ncc_ctx_t ctx = ncc_service_ctx(dir->service);
    for (size_t i = 0; ncc_service_names[i] && n < 16; i++) {
        const char *name = ncc_service_names[i];
        if (strcmp(name, "directory") == 0)
            continue;
        ncc_rpc_client_t *client = ncc_service_client(dir->service, name);
        if (!client)
            continue;
        Ncc__Masters__GetCacheStatus ask = NCC__MASTERS__GET_CACHE_STATUS__INIT;
        ask.kind = (char *)kind->name;
        ProtobufCMessage *answer = NULL;
        Ncc__Error *error = NULL;
        int rc =
            ncc_rpc_call_typed(client, &ctx, &ask.base, &ncc__masters__cache_status__descriptor,
                               S_STATUS_TIMEOUT_MS, &answer, &error);
        /* An error answer: the service has no cache of this kind (404, or
         * 400 for a daemon without any cache). No answer: unknown. */
        bool answered = rc == 0 || (rc == -EPROTO && error);
        if (error)
            ncc__error__free_unpacked(error, NULL);
        if (!answered)
            unanswered[n_unanswered++] = (char *)name;
        if (rc < 0)
            continue;
        Ncc__Masters__CacheStatus *status = (Ncc__Masters__CacheStatus *)answer;
        statuses[n] = status;
        Ncc__Directory__MasterPropagationService *item = &items[n];
        ncc__directory__master_propagation_service__init(item);
        item->service = status->service ? status->service : (char *)name;
        item->instance = status->instance;
        item->has_change_id = true;
        item->change_id = status->change_id;
        item->has_reached = true;
        item->reached = status->change_id >= change_id;
        if (item->reached && status->has_applied_at_us) {
            item->has_latency_ms = true;
            item->latency_ms = (double)(status->applied_at_us - at_us) / 1000.0;
        }
        complete = complete && item->reached;
        item_ptrs[n] = item;
        n++;
    }
    Ncc__Directory__MasterPropagationResult result =
        NCC__DIRECTORY__MASTER_PROPAGATION_RESULT__INIT;
    result.kind = (char *)kind->name;
    result.has_change_id = true;
    result.change_id = change_id;
    result.changed_at = changed_at;
    result.has_complete = true;
    result.complete = complete && n > 0 && n_unanswered == 0;
    result.n_services = n;
    result.services = item_ptrs;
    result.n_unanswered = n_unanswered;
    result.unanswered = unanswered;
    ncc_reply_message(reply, &result.base);
    for (size_t i = 0; i < n; i++)
        protobuf_c_message_free_unpacked(&statuses[i]->base, NULL);
}

/* ---- registration -----------------------------------------------------------------------------
 */

static s_binding_t s_bindings[16];

int directory_masters_register(directory_t *self)
{
    ncc_service_t *service = self->service;
    size_t n = 0;
    for (const masters_kind_t *kind = masters_kinds; kind->name; kind++) {
        if (n == sizeof s_bindings / sizeof s_bindings[0] || kind->n_columns > MASTERS_MAX_COLUMNS)
            return -ENOSPC;
        s_binding_t *b = &s_bindings[n++];
        b->dir = self;
        b->kind = kind;
        const unsigned read = NCC_ROLES_ALL, admin = NCC_ROLE_ADMIN,
                       oversight = NCC_ROLE_ADMIN | NCC_ROLE_SUPERVISOR;
        const struct {
            const ProtobufCMessageDescriptor *type;
            unsigned roles;
            ncc_rpc_handler_fn fn;
        } handlers[] = {
            {kind->list_request, read, s_on_list},
            {kind->get_request, read, s_on_get},
            {kind->create_request, admin, s_on_create},
            {kind->update_request, admin, s_on_update},
            {kind->delete_request, admin, s_on_delete},
            {kind->import_request, admin, s_on_import},
            {kind->export_request, kind->crud ? oversight : admin, s_on_export},
        };
        for (size_t i = 0; i < sizeof handlers / sizeof handlers[0]; i++)
            if (handlers[i].type &&
                ncc_service_on(service, handlers[i].type, handlers[i].roles, handlers[i].fn, b) < 0)
                return -EINVAL;
    }
    if (ncc_service_on(service, &ncc__directory__list_master_history__descriptor,
                       NCC_ROLE_ADMIN | NCC_ROLE_SUPERVISOR, s_on_history, self) < 0 ||
        ncc_service_on(service, &ncc__directory__master_fetch__descriptor, NCC_ROLES_ALL,
                       s_on_fetch, self) < 0 ||
        ncc_service_on(service, &ncc__directory__master_propagation__descriptor,
                       NCC_ROLE_ADMIN | NCC_ROLE_SUPERVISOR, s_on_propagation, self) < 0)
        return -EINVAL;
    return masters_schedule_register(self);
}
