/* masters_schedule: changes scheduled for a date (the April reorganisation):
 * stored with the request that made them, listed, cancelled, and applied by
 * a timer in every copy of ncc-directory once due, each in one transaction
 * with its history and event. One copy applies at a time (an advisory lock,
 * so changes due together apply in order) and takes the row FOR UPDATE SKIP
 * LOCKED, so no change is applied twice. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "masters.h"
#include "ncc/roles.h"

#define S_TICK_MS        1000
#define S_PER_TICK       50 /* changes applied per tick at most */
#define S_PER_PAGE_MAX   500
#define S_PER_PAGE       50
#define S_ERROR_MAX_TEXT 2000

// clang-format off
#define S_SCHEDULED_JSON \
    "jsonb_build_object('id', s.id, 'kind', s.kind, 'op', s.op, 'code', s.code, " \
    "'target_id', s.target_id, 'effective_at', " DIRECTORY_RFC3339("s.effective_at") ", " \
    "'status', s.status, 'changes', CASE WHEN s.op IN ('create', 'update') THEN s.payload END, " \
    "'rows', s.rows, 'replace', CASE WHEN s.op = 'import' THEN " \
    "coalesce((s.payload->>'replace')::boolean, false) END, 'created_by', " \
    "nullif(s.created_by_login, ''), 'created_at', " DIRECTORY_RFC3339("s.created_at") ", " \
    "'applied_at', " DIRECTORY_RFC3339("s.applied_at") ", 'change_id', s.change_id, " \
    "'error', s.error)"
// clang-format on

/* ---- effective_at ------------------------------------------------------------------ */

static bool s_digits(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return false;
    return true;
}

/* YYYY-MM-DD, or YYYY-MM-DDTHH:MM[:SS[.f...]] with Z or +HH:MM / -HH:MM. */
static bool s_shape_ok(const char *t)
{
    size_t len = strlen(t);
    if (len < 10 || !s_digits(t, 4) || t[4] != '-' || !s_digits(t + 5, 2) || t[7] != '-' ||
        !s_digits(t + 8, 2))
        return false;
    if (len == 10)
        return true;
    const char *p = t + 10;
    if ((*p != 'T' && *p != 't' && *p != ' ') || !s_digits(p + 1, 2) || p[3] != ':' ||
        !s_digits(p + 4, 2))
        return false;
    p += 6;
    if (*p == ':') {
        if (!s_digits(p + 1, 2))
            return false;
        p += 3;
        if (*p == '.') {
            size_t n = 0;
            while (p[1 + n] >= '0' && p[1 + n] <= '9')
                n++;
            if (n == 0 || n > 9)
                return false;
            p += 1 + n;
        }
    }
    if ((*p == 'Z' || *p == 'z') && p[1] == '\0')
        return true;
    return (*p == '+' || *p == '-') && s_digits(p + 1, 2) && p[3] == ':' && s_digits(p + 4, 2) &&
           p[6] == '\0';
}

int masters_effective_at(directory_t *dir, const char *text, char *out, size_t len,
                         const char **ret_why)
{
    *ret_why = "effective_at must be RFC 3339 with an offset (2027-04-01T09:00:00+09:00) or a "
               "date (2027-04-01, 00:00 in Asia/Tokyo)";
    if (!text || !s_shape_ok(text))
        return 0;
    const char *params[] = {text};
    char state[6] = "";
    PGresult *res = ncc_db_exec(
        dir->db,
        "SELECT " DIRECTORY_RFC3339("t") ", t > now() FROM (SELECT CASE "
                                         "WHEN length($1) = 10 THEN ($1 || 'T00:00:00+09:00') "
                                         "ELSE $1 END::timestamptz AS t) x",
        1, params, state);
    if (!res)
        return strncmp(state, "22", 2) == 0 ? 0 : -EIO;
    bool future = PQgetvalue(res, 0, 1)[0] == 't';
    snprintf(out, len, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    if (!future) {
        *ret_why = "effective_at is not in the future: leave it out to change now";
        return 0;
    }
    return 1;
}

/* ---- storing and reading ---------------------------------------------------------------- */

int masters_schedule_store(directory_t *dir, const masters_kind_t *kind, const char *op,
                           const char *code, int64_t target_id, const cJSON *fields,
                           const char *csv, int64_t rows, bool replace, const char *effective_at,
                           const masters_actor_t *actor, int64_t *ret_id)
{
    char target[24], rows_text[24];
    snprintf(target, sizeof target, "%" PRId64, target_id);
    snprintf(rows_text, sizeof rows_text, "%" PRId64, rows);
    char *payload = NULL;
    if (fields) {
        payload = cJSON_PrintUnformatted(fields);
    } else {
        cJSON *object = cJSON_CreateObject();
        if (object && strcmp(op, "import") == 0)
            cJSON_AddBoolToObject(object, "replace", replace);
        payload = object ? cJSON_PrintUnformatted(object) : NULL;
        cJSON_Delete(object);
    }
    if (!payload)
        return -ENOMEM;
    const char *params[] = {kind->name,
                            op,
                            code,
                            target_id > 0 ? target : NULL,
                            payload,
                            csv,
                            csv ? rows_text : NULL,
                            effective_at,
                            actor->id ? actor->id : "",
                            actor->login ? actor->login : "",
                            actor->role ? actor->role : "",
                            actor->address ? actor->address : ""};
    PGresult *res = ncc_db_exec(dir->db,
                                "INSERT INTO scheduled_changes (kind, op, code, target_id, "
                                "payload, csv, rows, effective_at, created_by_id, "
                                "created_by_login, created_by_role, created_by_address) VALUES "
                                "($1, $2, $3, $4::bigint, $5::jsonb, $6, $7::integer, "
                                "$8::timestamptz, $9, $10, $11, $12) RETURNING id",
                                12, params, NULL);
    free(payload);
    if (!res)
        return -EIO;
    *ret_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return 0;
}

int masters_schedule_json(directory_t *dir, int64_t id, cJSON **ret_json)
{
    char id_text[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, id);
    const char *params[] = {id_text};
    return masters_query_json(dir,
                              "SELECT (" S_SCHEDULED_JSON ")::text FROM scheduled_changes s "
                              "WHERE s.id = $1::bigint",
                              1, params, ret_json);
}

void masters_schedule_reply(directory_t *dir, ncc_reply_t *reply, int64_t id)
{
    cJSON *json = NULL;
    int rc = masters_schedule_json(dir, id, &json);
    if (rc <= 0) {
        if (rc == 0)
            ncc_reply_error(reply, 404, "not_found", "id", "no scheduled change %" PRId64, id);
        else
            directory_reply_db_error(dir, reply, "read scheduled change");
        return;
    }
    masters_reply_json(reply, &ncc__directory__scheduled_change__descriptor, json);
    cJSON_Delete(json);
}

/* ---- ListScheduledChanges, CancelScheduledChange ----------------------------------------------
 */

static void s_on_list(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    directory_t *dir = arg;
    const Ncc__Directory__ListScheduledChanges *m =
        (const Ncc__Directory__ListScheduledChanges *)request->message;
    int page = m->has_page ? m->page : 1;
    int per_page = m->has_per_page ? m->per_page : S_PER_PAGE;
    if (page < 1 || page > 1000000) {
        ncc_reply_error(reply, 422, "invalid_field", "page", "page must be at least 1");
        return;
    }
    if (per_page < 1 || per_page > S_PER_PAGE_MAX) {
        ncc_reply_error(reply, 422, "invalid_field", "per_page",
                        "per_page must be between 1 and 500");
        return;
    }
    const char *kind = m->kind && *m->kind ? m->kind : "";
    if (*kind && !masters_kind_find(kind)) {
        ncc_reply_error(reply, 404, "not_found", "kind", "no such kind of master");
        return;
    }
    const char *status = m->status && *m->status ? m->status : "pending";
    if (strcmp(status, "pending") != 0 && strcmp(status, "applied") != 0 &&
        strcmp(status, "failed") != 0 && strcmp(status, "cancelled") != 0 &&
        strcmp(status, "all") != 0) {
        ncc_reply_error(reply, 422, "invalid_field", "status",
                        "status must be pending, applied, failed, cancelled or all");
        return;
    }
    char limit[16], offset[24];
    snprintf(limit, sizeof limit, "%d", per_page);
    snprintf(offset, sizeof offset, "%lld", (long long)(page - 1) * per_page);
    const char *params[] = {kind, status, limit, offset};
    cJSON *json = NULL;
    int rc = masters_query_json(
        dir,
        "WITH f AS (SELECT * FROM scheduled_changes s WHERE ($1 = '' OR s.kind = $1) AND ($2 = "
        "'all' OR s.status = $2)) SELECT jsonb_build_object('items', coalesce((SELECT "
        "jsonb_agg(j ORDER BY n) FROM (SELECT " S_SCHEDULED_JSON " AS j, row_number() OVER "
        "(ORDER BY s.effective_at, s.id) AS n FROM f s ORDER BY s.effective_at, s.id LIMIT "
        "$3::int OFFSET $4::bigint) x), '[]'::jsonb), 'total', (SELECT count(*) FROM f))::text",
        4, params, &json);
    if (rc <= 0) {
        directory_reply_db_error(dir, reply, "list scheduled changes");
        return;
    }
    masters_reply_json(reply, &ncc__directory__scheduled_change_list__descriptor, json);
    cJSON_Delete(json);
}

static void s_on_cancel(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    directory_t *dir = arg;
    const Ncc__Directory__CancelScheduledChange *m =
        (const Ncc__Directory__CancelScheduledChange *)request->message;
    if (!m->has_id || m->id <= 0) {
        ncc_reply_error(reply, 422, "invalid_field", "id", "id is required");
        return;
    }
    char id_text[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, m->id);
    const char *params[] = {id_text};
    /* A change being applied right now is locked: NOWAIT says so. */
    char state[6] = "";
    if (ncc_db_begin(dir->db) < 0) {
        directory_reply_db_error(dir, reply, "cancel scheduled change");
        return;
    }
    PGresult *res = ncc_db_exec(dir->db,
                                "SELECT status FROM scheduled_changes WHERE id = $1::bigint "
                                "FOR UPDATE NOWAIT",
                                1, params, state);
    if (!res) {
        if (strcmp(state, "55P03") == 0) {
            ncc_db_rollback(dir->db);
            ncc_reply_error(reply, 409, "conflict", "id", "the change is being applied now");
            return;
        }
        directory_reply_db_error(dir, reply, "cancel scheduled change");
        return;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        ncc_db_rollback(dir->db);
        ncc_reply_error(reply, 404, "not_found", "id", "no scheduled change %" PRId64, m->id);
        return;
    }
    bool pending = strcmp(PQgetvalue(res, 0, 0), "pending") == 0;
    PQclear(res);
    if (!pending) {
        ncc_db_rollback(dir->db);
        ncc_reply_error(reply, 409, "conflict", "id",
                        "only a pending change can be cancelled (this one is done with)");
        return;
    }
    char login[80];
    masters_actor_t actor = masters_actor_of(dir, request, login, sizeof login);
    char target[40];
    snprintf(target, sizeof target, "scheduled:%" PRId64, m->id);
    if (ncc_db_run(dir->db,
                   "UPDATE scheduled_changes SET status = 'cancelled', applied_at = now() "
                   "WHERE id = $1::bigint",
                   1, params) < 0 ||
        directory_audit_request(dir, request, "master.schedule_cancelled", target, "success",
                                actor.login ? actor.login : "") < 0 ||
        ncc_db_commit(dir->db) < 0) {
        directory_reply_db_error(dir, reply, "cancel scheduled change");
        return;
    }
    masters_schedule_reply(dir, reply, m->id);
}

/* ---- applying what is due ----------------------------------------------------------------------
 */

/* One due change, taken and applied in the open transaction. 1 when one was
 * applied or failed, 0 when none is due (or another copy is at it), -EIO. */
static int s_apply_one(directory_t *dir)
{
    PGresult *res = NULL;
    cJSON *fields = NULL;
    masters_outcome_t out = {0};
    int rc = -EIO;

    if (ncc_db_begin(dir->db) < 0)
        return -EIO;
    /* One copy at a time, so changes due together apply in their order. */
    res = ncc_db_exec(dir->db,
                      "SELECT pg_try_advisory_xact_lock(hashtext('ncc.directory.scheduler'))", 0,
                      NULL, NULL);
    if (!res)
        goto out;
    bool locked = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    res = NULL;
    if (!locked) {
        rc = 0;
        goto out;
    }
    res = ncc_db_exec(
        dir->db,
        "SELECT id, kind, op, coalesce(target_id, 0), payload::text, csv, "
        "created_by_id, created_by_login, created_by_role, created_by_address, " DIRECTORY_RFC3339(
            "effective_at") " FROM scheduled_changes "
                            "WHERE status = 'pending' AND effective_at <= now() "
                            "ORDER BY effective_at, id LIMIT 1 FOR UPDATE SKIP LOCKED",
        0, NULL, NULL);
    if (!res)
        goto out;
    if (PQntuples(res) == 0) {
        rc = 0;
        goto out;
    }
    int64_t id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    const masters_kind_t *kind = masters_kind_find(PQgetvalue(res, 0, 1));
    const char *op_name = PQgetvalue(res, 0, 2);
    int64_t target = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
    fields = cJSON_Parse(PQgetvalue(res, 0, 4));
    masters_op_t op = {
        .dir = dir,
        .kind = kind,
        .actor = {.id = PQgetvalue(res, 0, 6),
                  .login = PQgetvalue(res, 0, 7),
                  .role = PQgetvalue(res, 0, 8),
                  .address = PQgetvalue(res, 0, 9)},
        .source = "scheduled",
        .scheduled_id = id,
        .effective_at = PQgetvalue(res, 0, 10),
    };
    if (ncc_db_run(dir->db, "SAVEPOINT masters_apply", 0, NULL) < 0)
        goto out;
    int applied = -EINVAL;
    if (!kind || !fields) {
        masters_refuse(&out, 500, "internal", NULL, "the stored change cannot be read");
    } else if (masters_lock(dir) < 0) {
        goto out;
    } else if (strcmp(op_name, "create") == 0) {
        applied = masters_op_create(&op, fields, &out);
    } else if (strcmp(op_name, "update") == 0) {
        applied = masters_op_update(&op, target, -1, fields, &out);
    } else if (strcmp(op_name, "delete") == 0) {
        applied = masters_op_delete(&op, target, -1, &out);
    } else if (strcmp(op_name, "import") == 0) {
        const char *csv = PQgetisnull(res, 0, 5) ? "" : PQgetvalue(res, 0, 5);
        const cJSON *replace = cJSON_GetObjectItemCaseSensitive(fields, "replace");
        applied = masters_op_import(&op, csv, strlen(csv), cJSON_IsTrue(replace), &out);
    }
    if (applied == -EIO)
        goto out;
    char id_text[24], change[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, id);
    snprintf(change, sizeof change, "%" PRId64, out.change_id);
    if (applied == 0 && out.status == 0) {
        const char *params[] = {id_text, out.change_id > 0 ? change : NULL};
        if (ncc_db_run(dir->db,
                       "UPDATE scheduled_changes SET status = 'applied', applied_at = now(), "
                       "change_id = $2::bigint WHERE id = $1::bigint",
                       2, params) < 0)
            goto out;
        ncc_info("masters.scheduled_applied",
                 "scheduled change %" PRId64 " (%s %s) applied: change set %" PRId64, id, op_name,
                 kind ? kind->name : "?", out.change_id);
    } else {
        char error[S_ERROR_MAX_TEXT];
        snprintf(error, sizeof error, "%s%s", out.message[0] ? out.message : "refused",
                 applied == -ENOMEM ? " (out of memory)" : "");
        const char *params[] = {id_text, error};
        if (ncc_db_run(dir->db, "ROLLBACK TO SAVEPOINT masters_apply", 0, NULL) < 0 ||
            ncc_db_run(dir->db,
                       "UPDATE scheduled_changes SET status = 'failed', applied_at = now(), "
                       "error = $2 WHERE id = $1::bigint",
                       2, params) < 0)
            goto out;
        ncc_error("masters.scheduled_failed",
                  "scheduled change %" PRId64 " (%s %s) could not be applied: %s", id, op_name,
                  kind ? kind->name : "?", error);
    }
    PQclear(res);
    res = NULL;
    if (ncc_db_commit(dir->db) < 0)
        goto out;
    directory_flush(dir);
    rc = 1;
out:
    if (rc < 0)
        ncc_warn("masters.scheduler_db_error", "%s (retried at the next tick)",
                 ncc_db_error(dir->db));
    if (rc != 1)
        ncc_db_rollback(dir->db);
    PQclear(res);
    cJSON_Delete(fields);
    masters_outcome_free(&out);
    return rc;
}

static void s_tick(void *arg)
{
    directory_t *dir = arg;
    for (int i = 0; i < S_PER_TICK; i++)
        if (s_apply_one(dir) != 1)
            break;
}

int masters_schedule_register(directory_t *dir)
{
    ncc_service_t *service = dir->service;
    if (ncc_service_on(service, &ncc__directory__list_scheduled_changes__descriptor,
                       NCC_ROLE_ADMIN | NCC_ROLE_SUPERVISOR, s_on_list, dir) < 0 ||
        ncc_service_on(service, &ncc__directory__cancel_scheduled_change__descriptor,
                       NCC_ROLE_ADMIN, s_on_cancel, dir) < 0 ||
        ncc_service_every(service, S_TICK_MS, s_tick, dir) < 0)
        return -EINVAL;
    return 0;
}
