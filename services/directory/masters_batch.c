/* masters_batch: one change set of one kind, set-based in PostgreSQL, and
 * every other statement made from the kind table (reviewed here as one
 * place: tests/security/test_injection.c). The
 * rows (from a CSV file, or the one row of a create or update) are copied
 * into a temporary table, checked there (duplicate keys, references, unique
 * columns, cycles of parents), compared with the kind's table (create,
 * update, unchanged; retire with replace), and applied with one statement
 * per action, each writing its history rows in the same statement. An
 * import of 10,000 rows is a handful of statements. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "masters.h"
#include "ncc/json.h"

#define S_PREVIEW_ROWS 100
#define S_COPY_CHUNK   (1 << 20)
#define S_ANALYZE_ROWS 200 /* analyse the temporary table from this many rows */

/* ---- rows -------------------------------------------------------------------------- */

/* A value in COPY text format: \N for NULL; backslash, tab, CR and LF escaped. */
static void s_copy_value(masters_buf_t *buf, const char *value)
{
    if (!value) {
        masters_buf_addn(buf, "\\N", 2);
        return;
    }
    const char *start = value;
    for (const char *p = value; *p; p++) {
        const char *escape = *p == '\\'   ? "\\\\"
                             : *p == '\t' ? "\\t"
                             : *p == '\n' ? "\\n"
                             : *p == '\r' ? "\\r"
                                          : NULL;
        if (!escape)
            continue;
        masters_buf_addn(buf, start, (size_t)(p - start));
        masters_buf_addn(buf, escape, 2);
        start = p + 1;
    }
    masters_buf_addn(buf, start, strlen(start));
}

void masters_batch_add_row(masters_batch_t *batch, size_t line, const char *const *values)
{
    masters_buf_add(&batch->copy, "%zu", line);
    for (size_t i = 0; i < batch->kind->n_columns; i++) {
        masters_buf_addn(&batch->copy, "\t", 1);
        s_copy_value(&batch->copy, values[i]);
    }
    masters_buf_addn(&batch->copy, "\n", 1);
    batch->rows++;
}

void masters_batch_free(masters_batch_t *batch)
{
    masters_buf_free(&batch->copy);
    masters_errors_free(&batch->errors);
}

void masters_outcome_free(masters_outcome_t *out)
{
    cJSON_Delete(out->rows);
    cJSON_Delete(out->entry);
    out->rows = NULL;
    out->entry = NULL;
}

/* ---- change sets and events ----------------------------------------------------------- */

int masters_lock(directory_t *dir)
{
    return ncc_db_run(dir->db, "SELECT pg_advisory_xact_lock(hashtext('ncc.directory.masters'))", 0,
                      NULL) < 0
               ? -EIO
               : 0;
}

int masters_change_set(directory_t *dir, const masters_kind_t *kind, const char *op,
                       const char *source, const masters_actor_t *actor, int64_t scheduled_id,
                       const char *effective_at, int64_t entries, int64_t *ret_id)
{
    char scheduled[24], count[24];
    snprintf(scheduled, sizeof scheduled, "%" PRId64, scheduled_id);
    snprintf(count, sizeof count, "%" PRId64, entries);
    const char *params[] = {kind->name,
                            op,
                            source,
                            actor->id ? actor->id : "",
                            actor->login ? actor->login : "",
                            actor->role ? actor->role : "",
                            actor->address ? actor->address : "",
                            scheduled_id > 0 ? scheduled : NULL,
                            count,
                            effective_at};
    PGresult *res = ncc_db_exec(dir->db,
                                "INSERT INTO master_changes (kind, op, source, actor_id, "
                                "actor_login, actor_role, address, scheduled_id, entries, "
                                "effective_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::bigint, "
                                "$9::integer, coalesce($10::timestamptz, now())) RETURNING id",
                                10, params, NULL);
    if (!res)
        return -EIO;
    *ret_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return 0;
}

int masters_event(directory_t *dir, const masters_kind_t *kind, const char *code, int64_t change_id,
                  const char *op, int64_t count, const char *entry_json,
                  const masters_actor_t *actor)
{
    char id_text[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, change_id);
    const char *params[] = {id_text};
    ProtobufCMessage *entry = NULL;
    if (entry_json && ncc_json_parse_pb(&ncc__directory__master_values__descriptor, entry_json,
                                        strlen(entry_json), 0, &entry, NULL) < 0)
        return -EIO;
    PGresult *res = ncc_db_exec(
        dir->db,
        "SELECT " DIRECTORY_RFC3339("effective_at") " FROM master_changes WHERE id = $1::bigint", 1,
        params, NULL);
    int rc = -EIO;
    if (res && PQntuples(res) == 1) {
        Ncc__Directory__MasterChanged event = NCC__DIRECTORY__MASTER_CHANGED__INIT;
        event.kind = (char *)kind->name;
        event.code = (char *)code;
        event.has_change_id = true;
        event.change_id = change_id;
        event.effective_at = PQgetvalue(res, 0, 0);
        event.op = (char *)op;
        event.has_count = true;
        event.count = count;
        event.entry = (Ncc__Directory__MasterValues *)entry;
        ncc_ctx_t ctx = {.trace_id = actor->trace_id && *actor->trace_id ? actor->trace_id : NULL,
                         .actor_id = actor->id,
                         .actor_role = actor->role,
                         .actor_address = actor->address};
        rc = ncc_outbox_add(dir->db, &ctx, &event.base) < 0 ? -EIO : 0;
    }
    PQclear(res);
    protobuf_c_message_free_unpacked(entry, NULL);
    return rc;
}

/* ---- the temporary table ------------------------------------------------------------------ */

static int s_run(directory_t *dir, const masters_buf_t *sql)
{
    if (sql->failed)
        return -ENOMEM;
    return ncc_db_run(dir->db, sql->data, 0, NULL) < 0 ? -EIO : 0;
}

/* masters_rows: line, the kind's columns, and what the comparison finds. */
static int s_create_rows_table(directory_t *dir, const masters_kind_t *kind)
{
    masters_buf_t sql = {0};
    masters_buf_add(&sql, "CREATE TEMP TABLE masters_rows (line integer NOT NULL");
    for (size_t i = 0; i < kind->n_columns; i++)
        masters_buf_add(&sql, ", %s %s", kind->columns[i].name,
                        masters_sql_type(&kind->columns[i]));
    masters_buf_add(&sql, ", target_id bigint, action text) ON COMMIT DROP");
    int rc = ncc_db_run(dir->db, "DROP TABLE IF EXISTS pg_temp.masters_rows", 0, NULL) < 0
                 ? -EIO
                 : s_run(dir, &sql);
    masters_buf_free(&sql);
    return rc;
}

/* COPY of the rows into masters_rows, on the raw connection. */
static int s_copy_rows(directory_t *dir, const masters_batch_t *batch)
{
    const masters_kind_t *kind = batch->kind;
    PGconn *conn = ncc_db_conn(dir->db);
    if (!conn)
        return -EIO;
    masters_buf_t sql = {0};
    masters_buf_add(&sql, "COPY masters_rows (line");
    for (size_t i = 0; i < kind->n_columns; i++)
        masters_buf_add(&sql, ", %s", kind->columns[i].name);
    masters_buf_add(&sql, ") FROM STDIN");
    if (sql.failed) {
        masters_buf_free(&sql);
        return -ENOMEM;
    }
    int rc = -EIO;
    PGresult *res = PQexec(conn, sql.data);
    masters_buf_free(&sql);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        ncc_error("masters.copy_failed", "COPY did not start: %s", PQerrorMessage(conn));
        PQclear(res);
        return -EIO;
    }
    PQclear(res);
    bool sent = true;
    for (size_t off = 0; sent && off < batch->copy.len; off += S_COPY_CHUNK) {
        size_t n = batch->copy.len - off < S_COPY_CHUNK ? batch->copy.len - off : S_COPY_CHUNK;
        sent = PQputCopyData(conn, batch->copy.data + off, (int)n) == 1;
    }
    if (PQputCopyEnd(conn, sent ? NULL : "sending failed") != 1)
        sent = false;
    while ((res = PQgetResult(conn)) != NULL) {
        if (PQresultStatus(res) == PGRES_COMMAND_OK && sent)
            rc = 0;
        else
            ncc_error("masters.copy_failed", "COPY failed: %s", PQresultErrorMessage(res));
        PQclear(res);
    }
    return rc;
}

/* ---- checks ------------------------------------------------------------------------------------
 */

/* Runs a check whose rows are (line, text): one error per row, on `field`,
 * saying before + text + after. 0 or -EIO. */
static int s_check(directory_t *dir, masters_batch_t *batch, const masters_buf_t *sql,
                   const char *field, const char *before, const char *after)
{
    if (sql->failed)
        return -ENOMEM;
    PGresult *res = ncc_db_exec(dir->db, sql->data, 0, NULL, NULL);
    if (!res)
        return -EIO;
    for (int i = 0; i < PQntuples(res); i++) {
        size_t line = (size_t)strtoull(PQgetvalue(res, i, 0), NULL, 10);
        masters_errors_add(&batch->errors, line, field, "%s%s%s", before, PQgetvalue(res, i, 1),
                           after);
    }
    PQclear(res);
    return 0;
}

/* The same key twice in the rows. */
static int s_check_duplicates(directory_t *dir, masters_batch_t *batch)
{
    const masters_kind_t *kind = batch->kind;
    masters_buf_t sql = {0};
    masters_buf_add(&sql, "SELECT line, first::text FROM (SELECT r.line, min(r.line) OVER "
                          "(PARTITION BY ");
    masters_sql_key(&sql, kind, "r");
    masters_buf_add(&sql, ") AS first FROM masters_rows r) d WHERE line <> first ORDER BY line");
    char before[64];
    snprintf(before, sizeof before, "this %s is also on line ", masters_key(kind)->name);
    int rc = s_check(dir, batch, &sql, masters_key(kind)->name, before, "");
    masters_buf_free(&sql);
    return rc;
}

/* A unique column (users' extensions): twice among the active rows, or held
 * by an active entry the rows do not change. */
static int s_check_unique(directory_t *dir, masters_batch_t *batch, const masters_column_t *column)
{
    const masters_kind_t *kind = batch->kind;
    const char *c = column->name;
    masters_buf_t sql = {0};
    masters_buf_add(&sql,
                    "SELECT line, first::text FROM (SELECT r.line, min(r.line) OVER (PARTITION "
                    "BY r.%s) AS first FROM masters_rows r WHERE r.%s IS NOT NULL AND r.active) "
                    "d WHERE line <> first ORDER BY line",
                    c, c);
    char before[96];
    snprintf(before, sizeof before, "this %s is also on line ", c);
    int rc = s_check(dir, batch, &sql, column->name, before, "");
    masters_buf_free(&sql);
    if (rc < 0)
        return rc;
    masters_buf_add(&sql,
                    "SELECT r.line, t.%s FROM masters_rows r JOIN %s t ON t.%s = r.%s AND "
                    "t.active WHERE r.active AND ",
                    masters_key(kind)->name, kind->table, c, c);
    masters_sql_key(&sql, kind, "t");
    masters_buf_add(&sql, " <> ");
    masters_sql_key(&sql, kind, "r");
    masters_buf_add(&sql, " AND NOT EXISTS (SELECT 1 FROM masters_rows o WHERE ");
    masters_sql_key(&sql, kind, "o");
    masters_buf_add(&sql, " = ");
    masters_sql_key(&sql, kind, "t");
    masters_buf_add(&sql, ") ORDER BY r.line");
    snprintf(before, sizeof before, "this %s belongs to the active %s ", c, kind->label);
    rc = s_check(dir, batch, &sql, column->name, before, "");
    masters_buf_free(&sql);
    return rc;
}

/* A list of codes (skills): each must name an entry of its kind, in the
 * table or (same kind) among the rows. */
static int s_check_codes(directory_t *dir, masters_batch_t *batch, const masters_column_t *column)
{
    const masters_kind_t *target = masters_kind_find(column->ref);
    const char *c = column->name;
    if (!target)
        return -EINVAL;
    masters_buf_t sql = {0};
    masters_buf_add(&sql,
                    "SELECT r.line, l.code FROM masters_rows r CROSS JOIN LATERAL "
                    "unnest(string_to_array(nullif(r.%s, ''), ' ')) AS l(code) WHERE NOT EXISTS "
                    "(SELECT 1 FROM %s x WHERE x.%s = l.code)",
                    c, target->table, masters_key(target)->name);
    if (target == batch->kind)
        masters_buf_add(&sql, " AND NOT EXISTS (SELECT 1 FROM masters_rows o WHERE o.%s = l.code)",
                        masters_key(target)->name);
    masters_buf_add(&sql, " ORDER BY r.line");
    char before[96];
    snprintf(before, sizeof before, "no %s has the code ", target->label);
    int rc = s_check(dir, batch, &sql, c, before, "");
    masters_buf_free(&sql);
    return rc;
}

/* A reference column: the code must name an entry of its kind, in the table
 * or (same kind) among the rows; and not the row itself, nor make a cycle. */
static int s_check_reference(directory_t *dir, masters_batch_t *batch,
                             const masters_column_t *column)
{
    const masters_kind_t *kind = batch->kind;
    const masters_kind_t *target = masters_kind_find(column->ref);
    const char *c = column->name;
    if (!target)
        return -EINVAL;
    bool self = target == kind;
    masters_buf_t sql = {0};
    masters_buf_add(&sql,
                    "SELECT r.line, r.%s FROM masters_rows r WHERE r.%s IS NOT NULL AND NOT "
                    "EXISTS (SELECT 1 FROM %s x WHERE x.%s = r.%s)",
                    c, c, target->table, masters_key(target)->name, c);
    if (self)
        masters_buf_add(&sql, " AND NOT EXISTS (SELECT 1 FROM masters_rows o WHERE o.%s = r.%s)",
                        masters_key(kind)->name, c);
    masters_buf_add(&sql, " ORDER BY r.line");
    char before[96];
    snprintf(before, sizeof before, "no %s has the code ", target->label);
    int rc = s_check(dir, batch, &sql, c, before, "");
    masters_buf_free(&sql);
    if (rc < 0 || !self)
        return rc;

    /* Its own parent, or a cycle of parents over the table as the rows
     * would leave it: walk up from each row; reaching the row again is a
     * cycle. UNION (not ALL) keeps the walk finite. */
    const char *key = masters_key(kind)->name;
    masters_buf_add(&sql, "SELECT line, %s FROM masters_rows r WHERE r.%s = r.%s ORDER BY line",
                    key, c, key);
    snprintf(before, sizeof before, "an entry cannot be its own %s: ", c);
    rc = s_check(dir, batch, &sql, c, before, "");
    masters_buf_free(&sql);
    if (rc < 0)
        return rc;
    masters_buf_add(&sql,
                    "WITH RECURSIVE m AS (SELECT t.%s AS code, t.%s AS up FROM %s t WHERE NOT "
                    "EXISTS (SELECT 1 FROM masters_rows r WHERE r.%s = t.%s) UNION ALL SELECT "
                    "r.%s, r.%s FROM masters_rows r), walk (start, cur) AS (SELECT r.%s, r.%s "
                    "FROM masters_rows r WHERE r.%s IS NOT NULL AND r.%s <> r.%s UNION SELECT "
                    "w.start, m.up FROM walk w JOIN m ON m.code = w.cur WHERE m.up IS NOT NULL) "
                    "SELECT r.line, r.%s FROM masters_rows r WHERE EXISTS (SELECT 1 FROM walk w "
                    "WHERE w.start = r.%s AND w.cur = r.%s) ORDER BY r.line",
                    key, c, kind->table, key, key, key, c, key, c, c, c, key, key, key, key);
    snprintf(before, sizeof before, "%s would make a cycle: ", c);
    rc = s_check(dir, batch, &sql, c, before, " would be under itself");
    masters_buf_free(&sql);
    return rc;
}

/* ---- comparison -------------------------------------------------------------------------------
 */

/* Marks each row create, update or unchanged, and counts. */
static int s_compare(directory_t *dir, masters_batch_t *batch, masters_outcome_t *out)
{
    const masters_kind_t *kind = batch->kind;
    masters_buf_t sql = {0};
    masters_buf_add(&sql, "UPDATE masters_rows r SET target_id = t.id, action = CASE WHEN ROW(");
    for (size_t i = 0; i < kind->n_columns; i++)
        masters_buf_add(&sql, "%st.%s", i ? ", " : "", kind->columns[i].name);
    masters_buf_add(&sql, ") IS NOT DISTINCT FROM ROW(");
    for (size_t i = 0; i < kind->n_columns; i++)
        masters_buf_add(&sql, "%sr.%s", i ? ", " : "", kind->columns[i].name);
    masters_buf_add(&sql, ") THEN 'unchanged' ELSE 'update' END FROM %s t WHERE ", kind->table);
    masters_sql_key(&sql, kind, "t");
    masters_buf_add(&sql, " = ");
    masters_sql_key(&sql, kind, "r");
    int rc = s_run(dir, &sql);
    masters_buf_free(&sql);
    if (rc < 0 ||
        ncc_db_run(dir->db, "UPDATE masters_rows SET action = 'create' WHERE action IS NULL", 0,
                   NULL) < 0)
        return rc < 0 ? rc : -EIO;

    masters_buf_add(&sql,
                    "SELECT count(*) FILTER (WHERE action = 'create'), count(*) FILTER (WHERE "
                    "action = 'update'), count(*) FILTER (WHERE action = 'unchanged'), ");
    if (batch->replace) {
        masters_buf_add(&sql,
                        "(SELECT count(*) FROM %s t WHERE t.active AND NOT EXISTS (SELECT 1 "
                        "FROM masters_rows o WHERE ",
                        kind->table);
        masters_sql_key(&sql, kind, "o");
        masters_buf_add(&sql, " = ");
        masters_sql_key(&sql, kind, "t");
        masters_buf_add(&sql, "))");
    } else {
        masters_buf_add(&sql, "0");
    }
    masters_buf_add(&sql, " FROM masters_rows");
    if (sql.failed) {
        masters_buf_free(&sql);
        return -ENOMEM;
    }
    PGresult *res = ncc_db_exec(dir->db, sql.data, 0, NULL, NULL);
    masters_buf_free(&sql);
    if (!res)
        return -EIO;
    out->created = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    out->updated = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    out->unchanged = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    out->retired = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
    PQclear(res);
    return 0;
}

/* The first S_PREVIEW_ROWS changes, as ImportRow objects, into out->rows. */
static int s_preview_rows(directory_t *dir, masters_batch_t *batch, masters_outcome_t *out)
{
    const masters_kind_t *kind = batch->kind;
    const char *key = masters_key(kind)->name;
    masters_buf_t sql = {0};
    masters_buf_add(&sql,
                    "SELECT coalesce(jsonb_agg(j ORDER BY ord, line), '[]')::text FROM ("
                    "(SELECT 0 AS ord, r.line, jsonb_build_object('line', r.line, 'code', r.%s, "
                    "'action', r.action, 'before', CASE WHEN t.id IS NOT NULL THEN ",
                    key);
    masters_sql_values(&sql, kind, "t");
    masters_buf_add(&sql, " END, 'after', jsonb_build_object('id', t.id");
    for (size_t i = 0; i < kind->n_columns; i++)
        masters_buf_add(&sql, ", '%s', r.%s", kind->columns[i].name, kind->columns[i].name);
    masters_buf_add(&sql,
                    ", 'version', coalesce(t.version + 1, 1))) AS j FROM masters_rows r LEFT "
                    "JOIN %s t ON t.id = r.target_id WHERE r.action <> 'unchanged' ORDER BY "
                    "r.line LIMIT %d)",
                    kind->table, S_PREVIEW_ROWS);
    if (batch->replace) {
        masters_buf_add(&sql,
                        " UNION ALL (SELECT 1, 0, jsonb_build_object('code', t.%s, 'action', "
                        "'retire', 'before', ",
                        key);
        masters_sql_values(&sql, kind, "t");
        masters_buf_add(&sql, ", 'after', ");
        masters_sql_values(&sql, kind, "t");
        masters_buf_add(&sql,
                        " || jsonb_build_object('active', false, 'version', t.version + 1)) "
                        "FROM %s t WHERE t.active AND NOT EXISTS (SELECT 1 FROM masters_rows o "
                        "WHERE ",
                        kind->table);
        masters_sql_key(&sql, kind, "o");
        masters_buf_add(&sql, " = ");
        masters_sql_key(&sql, kind, "t");
        masters_buf_add(&sql, ") ORDER BY t.%s LIMIT %d)", key, S_PREVIEW_ROWS);
    }
    masters_buf_add(&sql, ") p");
    if (sql.failed) {
        masters_buf_free(&sql);
        return -ENOMEM;
    }
    cJSON *rows = NULL;
    int rc = masters_query_json(dir, sql.data, 0, NULL, &rows);
    masters_buf_free(&sql);
    if (rc <= 0)
        return rc < 0 ? rc : -EIO;
    /* Keep the first S_PREVIEW_ROWS of both parts together. */
    while (cJSON_GetArraySize(rows) > S_PREVIEW_ROWS)
        cJSON_DeleteItemFromArray(rows, S_PREVIEW_ROWS);
    out->rows = rows;
    return 0;
}

/* ---- applying ----------------------------------------------------------------------------------
 */

/* Runs one action statement with the history parameters. */
static int s_apply(directory_t *dir, const masters_buf_t *sql, const char *const params[6])
{
    if (sql->failed)
        return -ENOMEM;
    return ncc_db_run(dir->db, sql->data, 6, params) < 0 ? -EIO : 0;
}

#define S_HISTORY_INSERT                                                                           \
    "INSERT INTO master_history (change_id, kind, code, op, before, after, actor_id, "             \
    "actor_login, source, scheduled_id) "

static int s_apply_all(directory_t *dir, masters_batch_t *batch, int64_t change_id)
{
    const masters_kind_t *kind = batch->kind;
    const char *key = masters_key(kind)->name;
    char change[24], scheduled[24];
    snprintf(change, sizeof change, "%" PRId64, change_id);
    snprintf(scheduled, sizeof scheduled, "%" PRId64, batch->scheduled_id);
    const char *params[6] = {change,
                             kind->name,
                             batch->actor.id ? batch->actor.id : "",
                             batch->actor.login ? batch->actor.login : "",
                             batch->source,
                             batch->scheduled_id > 0 ? scheduled : NULL};
    const char *history_values = "$1::bigint, $2, ";
    const char *history_tail = ", $3, $4, $5, $6::bigint";
    int rc = 0;

    /* Updates: before from the snapshot, after from RETURNING. */
    if (rc == 0) {
        masters_buf_t sql = {0};
        masters_buf_add(&sql, "WITH old AS (SELECT t.id, ");
        masters_sql_values(&sql, kind, "t");
        masters_buf_add(&sql,
                        " AS before FROM %s t JOIN masters_rows r ON r.target_id = t.id AND "
                        "r.action = 'update'), upd AS (UPDATE %s t SET ",
                        kind->table, kind->table);
        for (size_t i = 0; i < kind->n_columns; i++)
            masters_buf_add(&sql, "%s = r.%s, ", kind->columns[i].name, kind->columns[i].name);
        masters_buf_add(&sql,
                        "updated_at = now(), version = t.version + 1 FROM masters_rows r WHERE "
                        "r.action = 'update' AND t.id = r.target_id RETURNING t.id, t.%s AS code, ",
                        key);
        masters_sql_values(&sql, kind, "t");
        masters_buf_add(&sql,
                        " AS after) " S_HISTORY_INSERT
                        "SELECT %supd.code, CASE WHEN (old.before->>'active')::boolean AND NOT "
                        "(upd.after->>'active')::boolean THEN 'retired' ELSE 'updated' END, "
                        "old.before, upd.after%s FROM upd JOIN old USING (id)",
                        history_values, history_tail);
        rc = s_apply(dir, &sql, params);
        masters_buf_free(&sql);
    }
    /* Creations, in the order of the rows. */
    if (rc == 0) {
        masters_buf_t sql = {0};
        masters_buf_add(&sql, "WITH ins AS (INSERT INTO %s AS t (", kind->table);
        for (size_t i = 0; i < kind->n_columns; i++)
            masters_buf_add(&sql, "%s%s", i ? ", " : "", kind->columns[i].name);
        masters_buf_add(&sql, ") SELECT ");
        for (size_t i = 0; i < kind->n_columns; i++)
            masters_buf_add(&sql, "%sr.%s", i ? ", " : "", kind->columns[i].name);
        masters_buf_add(&sql,
                        " FROM masters_rows r WHERE r.action = 'create' ORDER BY r.line "
                        "RETURNING t.%s AS code, ",
                        key);
        masters_sql_values(&sql, kind, "t");
        masters_buf_add(&sql,
                        " AS after) " S_HISTORY_INSERT
                        "SELECT %sins.code, 'created', NULL, ins.after%s FROM ins",
                        history_values, history_tail);
        rc = s_apply(dir, &sql, params);
        masters_buf_free(&sql);
    }
    /* replace: the active entries the rows do not hold are retired. */
    if (rc == 0 && batch->replace) {
        masters_buf_t sql = {0};
        masters_buf_add(&sql, "WITH old AS (SELECT t.id, ");
        masters_sql_values(&sql, kind, "t");
        masters_buf_add(&sql,
                        " AS before FROM %s t WHERE t.active AND NOT EXISTS (SELECT 1 FROM "
                        "masters_rows o WHERE ",
                        kind->table);
        masters_sql_key(&sql, kind, "o");
        masters_buf_add(&sql, " = ");
        masters_sql_key(&sql, kind, "t");
        masters_buf_add(&sql,
                        ")), upd AS (UPDATE %s t SET active = false, updated_at = now(), version "
                        "= t.version + 1 FROM old WHERE t.id = old.id RETURNING t.id, t.%s AS "
                        "code, ",
                        kind->table, key);
        masters_sql_values(&sql, kind, "t");
        masters_buf_add(&sql,
                        " AS after) " S_HISTORY_INSERT
                        "SELECT %supd.code, 'retired', old.before, upd.after%s FROM upd JOIN old "
                        "USING (id)",
                        history_values, history_tail);
        rc = s_apply(dir, &sql, params);
        masters_buf_free(&sql);
    }
    /* The deferred foreign keys now, so a violation is this change set's. */
    if (rc == 0 && ncc_db_run(dir->db, "SET CONSTRAINTS ALL IMMEDIATE", 0, NULL) < 0)
        rc = -EIO;
    return rc;
}

/* ---- the whole change set ------------------------------------------------------------------ */

/* Turns the errors found into the refusal in out. */
static void s_refuse_errors(masters_batch_t *batch, masters_outcome_t *out)
{
    masters_errors_sort(&batch->errors);
    const masters_error_t *first = batch->errors.count ? &batch->errors.items[0] : NULL;
    if (batch->mode == MASTERS_BATCH_IMPORT) {
        masters_refuse(out, 422, "invalid_csv", NULL,
                       "%zu problem%s found in the file: nothing was imported", batch->errors.total,
                       batch->errors.total == 1 ? "" : "s");
    } else if (first) {
        masters_refuse(out, 422, "invalid_field", first->field, "%s", first->message);
    }
}

int masters_batch_run(directory_t *dir, masters_batch_t *batch, masters_outcome_t *out)
{
    const masters_kind_t *kind = batch->kind;
    int rc;

    if (batch->copy.failed || batch->errors.failed)
        return -ENOMEM;
    rc = s_create_rows_table(dir, kind);
    if (rc == 0 && batch->rows > 0)
        rc = s_copy_rows(dir, batch);
    if (rc == 0 && batch->rows >= S_ANALYZE_ROWS)
        rc = ncc_db_run(dir->db, "ANALYZE masters_rows", 0, NULL) < 0 ? -EIO : 0;
    if (rc < 0)
        return rc;

    /* Checks across rows and against the tables. */
    rc = s_check_duplicates(dir, batch);
    for (size_t i = 0; rc == 0 && i < kind->n_columns; i++) {
        const masters_column_t *column = &kind->columns[i];
        if (column->type == MASTERS_REF)
            rc = s_check_reference(dir, batch, column);
        else if (column->type == MASTERS_CODES)
            rc = s_check_codes(dir, batch, column);
        else if (column->unique)
            rc = s_check_unique(dir, batch, column);
    }
    if (rc < 0)
        return rc;
    if (batch->errors.total > 0 || batch->errors.failed) {
        s_refuse_errors(batch, out);
        return batch->errors.failed ? -ENOMEM : 0;
    }

    rc = s_compare(dir, batch, out);
    /* The comparison filled target_id and action: the planner must know,
     * or it joins 10,000 rows by nested loops. */
    if (rc == 0 && batch->rows >= S_ANALYZE_ROWS)
        rc = ncc_db_run(dir->db, "ANALYZE masters_rows", 0, NULL) < 0 ? -EIO : 0;
    if (rc < 0)
        return rc;
    if (batch->mode == MASTERS_BATCH_CREATE && out->created != 1)
        return masters_refuse(out, 409, "conflict", masters_key(kind)->name,
                              "a %s with this %s exists already", kind->label,
                              masters_key(kind)->name);
    if (batch->mode == MASTERS_BATCH_UPDATE && out->created != 0)
        return masters_refuse(out, 404, "not_found", "id", "the %s is gone", kind->label);
    if (batch->preview)
        return s_preview_rows(dir, batch, out);

    int64_t entries = out->created + out->updated + out->retired;
    if (entries > 0) {
        rc = masters_change_set(dir, kind, batch->op, batch->source, &batch->actor,
                                batch->scheduled_id, batch->effective_at, entries, &out->change_id);
        if (rc == 0)
            rc = s_apply_all(dir, batch, out->change_id);
        if (rc < 0)
            return rc;
    }
    if (batch->mode != MASTERS_BATCH_IMPORT) {
        /* The one row's entry: its id, and its key and values for the event. */
        masters_buf_t sql = {0};
        masters_buf_add(&sql, "SELECT t.id, t.%s, ", masters_key(kind)->name);
        masters_sql_values(&sql, kind, "t");
        masters_buf_add(&sql, "::text FROM %s t JOIN masters_rows r ON ", kind->table);
        masters_sql_key(&sql, kind, "t");
        masters_buf_add(&sql, " = ");
        masters_sql_key(&sql, kind, "r");
        if (sql.failed) {
            masters_buf_free(&sql);
            return -ENOMEM;
        }
        PGresult *res = ncc_db_exec(dir->db, sql.data, 0, NULL, NULL);
        masters_buf_free(&sql);
        if (!res)
            return -EIO;
        rc = 0;
        if (PQntuples(res) == 1) {
            out->entry_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
            if (out->change_id > 0)
                rc = masters_event(dir, kind, PQgetvalue(res, 0, 1), out->change_id, batch->op,
                                   entries, PQgetvalue(res, 0, 2), &batch->actor);
        }
        PQclear(res);
        return rc;
    }
    return out->change_id > 0 ? masters_event(dir, kind, NULL, out->change_id, batch->op, entries,
                                              NULL, &batch->actor)
                              : 0;
}

/* ---- statements of a kind for the handlers (masters.c, masters_csv.c) --------------------- */

/* Every SQL text made from the kind table is built in this file: table and
 * column names come from masters_kinds.c, never from a request; values go
 * in as parameters ($1 ...) or by COPY. `where` and `order` (List, Export)
 * are made by masters.c from the same names and $N placeholders. */

void masters_sql_get(masters_buf_t *sql, const masters_kind_t *kind)
{
    masters_buf_add(sql, "SELECT ");
    masters_sql_item(sql, kind, "t");
    masters_buf_add(sql, "::text FROM %s t WHERE t.id = $1::bigint", kind->table);
}

void masters_sql_for_change(masters_buf_t *sql, const masters_kind_t *kind)
{
    masters_buf_add(sql, "SELECT (");
    masters_sql_item(sql, kind, "t");
    masters_buf_add(sql, ")::text, t.%s, t.version FROM %s t WHERE t.id = $1::bigint FOR UPDATE",
                    masters_key(kind)->name, kind->table);
}

void masters_sql_referrers(masters_buf_t *sql, const masters_kind_t *kind,
                           const masters_column_t *column, int limit)
{
    char match[160];
    if (column->type == MASTERS_CODES)
        snprintf(match, sizeof match, "$1 = ANY (string_to_array(t.%s, ' '))", column->name);
    else
        snprintf(match, sizeof match, "t.%s = $1", column->name);
    masters_buf_add(sql,
                    "SELECT string_agg(c, ', '), max(n) FROM (SELECT t.%s AS c, count(*) OVER () "
                    "AS n FROM %s t WHERE %s ORDER BY t.%s LIMIT %d) x",
                    masters_key(kind)->name, kind->table, match, masters_key(kind)->name, limit);
}

void masters_sql_delete(masters_buf_t *sql, const masters_kind_t *kind)
{
    masters_buf_add(sql, "DELETE FROM %s t WHERE t.id = $1::bigint RETURNING ", kind->table);
    masters_sql_values(sql, kind, "t");
    masters_buf_add(sql, "::text");
}

void masters_sql_list(masters_buf_t *sql, const masters_kind_t *kind, const char *where,
                      const char *order, int limit_param)
{
    masters_buf_add(sql,
                    "WITH f AS (SELECT * FROM %s t WHERE %s) SELECT jsonb_build_object('items', "
                    "coalesce((SELECT jsonb_agg(j ORDER BY n) FROM (SELECT ",
                    kind->table, where);
    masters_sql_item(sql, kind, "t");
    masters_buf_add(sql,
                    " AS j, row_number() OVER (ORDER BY %s) AS n FROM f t ORDER BY %s LIMIT "
                    "$%d::int OFFSET $%d::bigint) x), '[]'::jsonb), 'total', (SELECT count(*) "
                    "FROM f))::text",
                    order, order, limit_param, limit_param + 1);
}

void masters_sql_fetch(masters_buf_t *sql, const masters_kind_t *kind)
{
    masters_buf_add(sql, "SELECT jsonb_build_object('kind', $1::text, 'change_id', (SELECT "
                         "coalesce(max(id), 0) FROM master_changes WHERE kind = $1), 'items', "
                         "coalesce((SELECT jsonb_agg(");
    masters_sql_values(sql, kind, "t");
    masters_buf_add(sql, " ORDER BY t.id) FROM %s t), '[]'::jsonb))::text", kind->table);
}

void masters_sql_export(masters_buf_t *sql, const masters_kind_t *kind, const char *where,
                        const char *order)
{
    masters_buf_add(sql, "SELECT ");
    for (size_t i = 0; i < kind->n_columns; i++) {
        const masters_column_t *column = &kind->columns[i];
        if (i)
            masters_buf_add(sql, ", ");
        if (column->type == MASTERS_BOOL)
            masters_buf_add(sql, "CASE WHEN t.%s THEN 'true' ELSE 'false' END", column->name);
        else if (column->type == MASTERS_ROLES)
            masters_buf_add(sql, "array_to_string(t.%s, ' ')", column->name);
        else
            masters_buf_add(sql, "coalesce(t.%s::text, '')", column->name);
    }
    masters_buf_add(sql, " FROM %s t WHERE %s ORDER BY %s", kind->table, where, order);
}
