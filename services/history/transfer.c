/* transfer: records as CSV (R20, R33, R34; docs/history.md "CSV"). The
 * export answers one page at a time (the gateway streams the pages, so the
 * file is never whole in memory anywhere); the import takes a whole file of
 * records typed offline and creates all of them or none, listing every bad
 * row with its line. */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "history.h"
#include "ncc/csv.h"
#include "ncc/roles.h"

#define S_PAGE_ROWS      2000
#define S_PAGE_ROWS_MAX  5000
#define S_PAGE_BYTES     (2 * 1024 * 1024) /* a page stops growing past this (bus messages: 4 MiB) */
#define S_ERRORS_KEPT    1000
#define S_IMPORT_ROWS    100000
#define S_RECEIPTS_SHOWN 100

/* The columns of the file, in order (the API field names). */
static const char *const s_columns[] = {
    "receipt_id",    "call_id",  "channel",         "operator_id",    "operator_name",
    "started_at",    "ended_at", "wrapup_ended_at", "reception_type", "department_id",
    "handling_type", "faq_ids",  "category",        "inquiry",        "response",
    "transfer_to",   "summary",  "status",          "caller_number",  "created_at",
    "updated_at",
};
#define S_COLUMNS (sizeof s_columns / sizeof s_columns[0])
enum {
    C_RECEIPT,
    C_CALL,
    C_CHANNEL,
    C_OPERATOR_ID,
    C_OPERATOR_NAME,
    C_STARTED,
    C_ENDED,
    C_WRAPUP,
    C_RECEPTION,
    C_DEPARTMENT,
    C_HANDLING,
    C_FAQ,
    C_CATEGORY,
    C_INQUIRY,
    C_RESPONSE,
    C_TRANSFER,
    C_SUMMARY,
    C_STATUS,
    C_CALLER,
    C_CREATED,
    C_UPDATED
};

/* ---- export -------------------------------------------------------------------------------- */

/* The x_ columns of an export: at most this many, each a name of at most 32 bytes. */
#define S_EXTRA_MAX 64

typedef struct {
    char list[S_EXTRA_MAX * 34]; /* "x_a,x_b", as stored in exports.extra_columns */
    const char *names[S_EXTRA_MAX];
    size_t n;
} s_extra_t;

/* Splits x->list into x->names. */
static void s_extra_split(s_extra_t *x)
{
    x->n = 0;
    for (char *p = x->list; *p && x->n < S_EXTRA_MAX;) {
        x->names[x->n++] = p;
        char *comma = strchr(p, ',');
        if (!comma)
            break;
        *comma = '\0';
        p = comma + 1;
    }
}

/* Writes one record as a row (the built-in columns, then the x_ ones). */
static int s_write_row(ncc_csv_writer_t *w, const history_record_t *rec, const s_extra_t *x)
{
    const Ncc__History__Record *m = &rec->msg;
    char operator_id[24], faq[80] = "";
    snprintf(operator_id, sizeof operator_id, "%" PRId64, m->operator_id);
    size_t used = 0;
    for (size_t i = 0; i < m->n_faq_ids; i++)
        used += (size_t)snprintf(faq + used, sizeof faq - used, "%s%" PRId64, i ? " " : "",
                                 m->faq_ids[i]);
    const char *values[S_COLUMNS + S_EXTRA_MAX] = {
        m->receipt_id,    m->call_id,  m->channel,         operator_id,       m->operator_name,
        m->started_at,    m->ended_at, m->wrapup_ended_at, m->reception_type, m->department_id,
        m->handling_type, faq,         m->category,        m->inquiry,        m->response,
        m->transfer_to,   m->summary,  m->status,          m->caller_number,  m->created_at,
        m->updated_at,
    };
    for (size_t i = 0; i < x->n; i++) {
        const cJSON *v =
            rec->extra ? cJSON_GetObjectItemCaseSensitive(rec->extra, x->names[i]) : NULL;
        values[S_COLUMNS + i] = cJSON_IsString(v) ? v->valuestring : "";
    }
    return ncc_csv_writer_row(w, values, S_COLUMNS + x->n);
}

/* cursor "<export id>:<started_at us>:<record id>:<rows so far>". */
static bool s_cursor_parse(const char *text, int64_t *ret_export, int64_t *ret_started,
                           int64_t *ret_id, int64_t *ret_rows)
{
    char tail;
    long long e, s, i, r;
    if (sscanf(text, "%lld:%lld:%lld:%lld%c", &e, &s, &i, &r, &tail) != 4 || e < 0 || i < 0 ||
        r < 0)
        return false;
    *ret_export = e;
    *ret_started = s;
    *ret_id = i;
    *ret_rows = r;
    return true;
}

static bool s_filtered(const history_filter_t *f)
{
    return f->q || f->has_from || f->has_to || f->status_mask || f->channel_mask ||
           f->department_id || f->category || f->reception_type || f->handling_type || f->call_id ||
           f->has_operator || f->fiscal_year;
}

/* ---- the export's SQL pages, asked one ahead ---------------------------------------------- */

/* The SQL of a page without words into sql and params (bufs holds the numbers): the filter,
 * after the cursor when has_after, page_rows + 1 rows (the extra one says whether more
 * follow). Returns the number of parameters. */
static int s_page_sql(const history_filter_t *f, bool extra, bool has_after, int64_t after_started,
                      int64_t after_id, int page_rows, char *sql, size_t len, char (*bufs)[24],
                      const char **params)
{
    char where[2300];
    int np = 0;
    history_filter_sql(f, where, sizeof where, params, &np);
    if (has_after) {
        snprintf(bufs[0], 24, "%" PRId64, after_started);
        snprintf(bufs[1], 24, "%" PRId64, after_id);
        params[np++] = bufs[0];
        params[np++] = bufs[1];
        size_t used = strlen(where);
        snprintf(where + used, sizeof where - used,
                 " AND (started_at, id) > ('epoch'::timestamptz + $%d::bigint * "
                 "interval '1 microsecond', $%d::bigint)",
                 np - 1, np);
    }
    snprintf(bufs[2], 24, "%d", page_rows + 1);
    params[np++] = bufs[2];
    /* The rows themselves, in one statement (the index on started_at, id); the started_at
     * microseconds are the last column, for the cursor. */
    snprintf(sql, len,
             "SELECT %s, " HISTORY_US(
                 "started_at") " FROM records WHERE %s ORDER BY started_at, id LIMIT $%d::int",
             extra ? HISTORY_RECORD_COLUMNS_EXTRA : HISTORY_RECORD_COLUMNS, where, np);
    return np;
}

/* The query as one text: what a prefetched result must match. Caller frees. */
static char *s_query_key(const char *sql, const char *const *params, int np)
{
    size_t len = strlen(sql) + 2;
    for (int i = 0; i < np; i++)
        len += strlen(params[i] ? params[i] : "") + 2;
    char *key = malloc(len);
    if (!key)
        return NULL;
    size_t used = (size_t)snprintf(key, len, "%s", sql);
    for (int i = 0; i < np; i++)
        used += (size_t)snprintf(key + used, len - used, "\x1f%s", params[i] ? params[i] : "");
    return key;
}

/* Forgets the query in flight on the export connection (reads its result away). */
static void s_prefetch_drop(history_t *self)
{
    PGconn *conn = self->export_db ? ncc_db_conn(self->export_db) : NULL;
    if (self->prefetch_key && conn) {
        PGresult *res;
        while ((res = PQgetResult(conn)))
            PQclear(res);
    }
    free(self->prefetch_key);
    self->prefetch_key = NULL;
}

/* Sends the query on the export connection without waiting (made on first use). */
static void s_prefetch(history_t *self, const char *sql, const char *const *params, int np)
{
    s_prefetch_drop(self);
    if (!self->export_db) {
        const char *url = getenv("NCC_DATABASE_URL");
        self->export_db = ncc_db_new(url ? url : "", "history");
    }
    if (!self->export_db || (!ncc_db_ready(self->export_db) && ncc_db_connect(self->export_db) < 0))
        return; /* no prefetch: the next page is asked as usual */
    PGconn *conn = ncc_db_conn(self->export_db);
    if (!conn || PQsendQueryParams(conn, sql, np, NULL, params, NULL, NULL, 0) != 1)
        return;
    self->prefetch_key = s_query_key(sql, params, np);
    if (!self->prefetch_key)
        s_prefetch_drop(self);
}

/* The result of the query in flight when it is this one (caller PQclear()s), else NULL
 * (and the one in flight is forgotten). */
static PGresult *s_prefetched(history_t *self, const char *sql, const char *const *params, int np)
{
    if (!self->prefetch_key)
        return NULL;
    char *key = s_query_key(sql, params, np);
    bool same = key && strcmp(key, self->prefetch_key) == 0;
    free(key);
    if (!same) {
        s_prefetch_drop(self);
        return NULL;
    }
    PGconn *conn = ncc_db_conn(self->export_db);
    PGresult *res, *out = NULL;
    while ((res = PQgetResult(conn))) {
        if (!out && PQresultStatus(res) == PGRES_TUPLES_OK)
            out = res;
        else
            PQclear(res);
    }
    free(self->prefetch_key);
    self->prefetch_key = NULL;
    return out; /* NULL on an error: the page is asked again as usual */
}

void history_transfer_stop(history_t *self)
{
    s_prefetch_drop(self);
    ncc_db_destroy(&self->export_db);
}

typedef struct {
    ncc_csv_writer_t *w;
    size_t rows;
    int64_t last_started, last_id;
} s_page_t;

/* Appends `name` to x->list unless it is listed already, is not an x_ column name (at most 32
 * bytes, no comma) or the list is full; x->n counts the names listed. */
static void s_extra_add(s_extra_t *x, const char *name)
{
    size_t len = strlen(name), used = strlen(x->list);
    if (x->n == S_EXTRA_MAX || len > 32 || strncmp(name, "x_", 2) != 0 || strchr(name, ','))
        return;
    for (const char *p = x->list; *p;) {
        size_t n = strcspn(p, ",");
        if (n == len && strncmp(p, name, len) == 0)
            return;
        p += p[n] ? n + 1 : n;
    }
    snprintf(x->list + used, sizeof x->list - used, "%s%s", used ? "," : "", name);
    x->n++;
}

/* The x_ columns of export `export_id` into x. With the first page: the record form's fields
 * of the ward's own, in the form's order, then any other x_ name the exported records hold
 * (a field since removed from the form keeps its values in the file), stored with the
 * export; later pages read them back. 0 or -EIO. */
static int s_extra_columns(history_t *self, const history_filter_t *f, bool first,
                           int64_t export_id, s_extra_t *x)
{
    char id_text[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, export_id);
    x->list[0] = '\0';
    if (!first) {
        const char *params[] = {id_text};
        PGresult *res = ncc_db_exec(
            self->db, "SELECT extra_columns FROM exports WHERE id = $1::bigint", 1, params, NULL);
        if (!res)
            return -EIO;
        if (PQntuples(res) == 1)
            snprintf(x->list, sizeof x->list, "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        s_extra_split(x);
        return 0;
    }
    x->n = 0;
    const Ncc__Directory__RecordFormDefinition *def = history_form(self);
    for (size_t i = 0; def && i < def->n_fields; i++)
        if (def->fields[i]->name)
            s_extra_add(x, def->fields[i]->name);
    char where[2300], sql[2600];
    const char *params[32];
    int np = 0;
    history_filter_sql(f, where, sizeof where, params, &np);
    snprintf(sql, sizeof sql,
             "SELECT DISTINCT k FROM records, jsonb_object_keys(extra) k WHERE %s AND "
             "extra <> '{}'::jsonb ORDER BY 1 LIMIT %d",
             where, S_EXTRA_MAX);
    PGresult *res = ncc_db_exec(self->db, sql, np, params, NULL);
    if (!res)
        return -EIO;
    for (int r = 0; r < PQntuples(res); r++)
        s_extra_add(x, PQgetvalue(res, r, 0));
    PQclear(res);
    const char *update[] = {id_text, x->list};
    res = ncc_db_exec(self->db, "UPDATE exports SET extra_columns = $2 WHERE id = $1::bigint", 2,
                      update, NULL);
    if (!res)
        return -EIO;
    PQclear(res);
    s_extra_split(x);
    return 0;
}

static void s_on_export(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    history_t *self = arg;
    const Ncc__History__ExportRecords *m = (const Ncc__History__ExportRecords *)request->message;
    history_filter_input_t in = HISTORY_FILTER_INPUT_OF(m);
    history_filter_t f;
    if (!history_filter_parse(&in, &f, reply))
        return;
    bool sjis = false;
    if (m->encoding && *m->encoding) {
        sjis = strcmp(m->encoding, "shift_jis") == 0;
        if (!sjis && strcmp(m->encoding, "utf-8") != 0) {
            ncc_reply_error(reply, 422, "invalid_field", "encoding",
                            "encoding is utf-8 or shift_jis");
            return;
        }
    }
    int32_t page_rows = m->has_page_rows ? m->page_rows : S_PAGE_ROWS;
    if (page_rows < 1 || page_rows > S_PAGE_ROWS_MAX) {
        ncc_reply_error(reply, 422, "invalid_field", "page_rows", "page_rows is 1 to %d",
                        S_PAGE_ROWS_MAX);
        return;
    }
    int64_t export_id = 0, after_started = 0, after_id = 0;
    bool first = !m->cursor || !*m->cursor;
    int64_t rows_before = 0;
    if (!first && !s_cursor_parse(m->cursor, &export_id, &after_started, &after_id, &rows_before)) {
        ncc_reply_error(reply, 422, "invalid_field", "cursor", "cursor: as the last page gave it");
        return;
    }
    bool filtered = s_filtered(&f);
    ncc_actor_t actor = ncc_request_actor(request);
    if (first) {
        /* The export's row: what an erase later checks against. */
        const char *params[] = {actor.id, filtered ? "t" : "f"};
        PGresult *res = ncc_db_exec(
            self->db,
            "INSERT INTO exports (actor_id, filtered, records_at_start, last_change_at_start) "
            "SELECT $1, $2::boolean, count(*), max(updated_at) FROM records RETURNING id",
            2, params, NULL);
        if (!res) {
            history_reply_db_error(self, reply, "export: start");
            return;
        }
        export_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
    }
    /* The x_ columns: chosen with the first page, then read back so every page has them. */
    s_extra_t x = {.n = 0};
    if (s_extra_columns(self, &f, first, export_id, &x) < 0) {
        history_reply_db_error(self, reply, "export: columns");
        return;
    }

    /* The ids of this page, in started_at, id order. */
    int64_t *ids = NULL, total = 0;
    size_t n = 0;
    bool done = false;
    PGresult *page_res = NULL; /* the rows, when the database chose them */
    if (f.q) {
        history_query_t query;
        history_filter_query(&f, &query);
        int64_t *only = NULL;
        size_t n_only = 0;
        if (f.call_id && history_ids_of_call(self, f.call_id, &only, &n_only) < 0) {
            history_reply_db_error(self, reply, "export: call");
            return;
        }
        query.only_ids = f.call_id ? only : NULL;
        query.n_only_ids = n_only;
        query.sort = HISTORY_SORT_STARTED_AT;
        query.descending = false;
        query.limit = (size_t)page_rows;
        query.has_after = !first;
        query.after_started_us = after_started;
        query.after_id = after_id;
        int rc =
            self->search ? history_search_run(self->search, &query, &ids, &n, &total) : -EAGAIN;
        free(only);
        if (rc == -EAGAIN) {
            ncc_reply_error(reply, 503, "service_unavailable", "q",
                            "the search index is being built: export with words in a moment, "
                            "or without words now");
            return;
        }
        if (rc == -ENODATA) {
            f.q = NULL;
        } else if (rc < 0) {
            ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
            return;
        } else {
            done = total <= page_rows;
        }
    }
    if (!f.q) {
        char sql[2600], bufs[3][24];
        const char *params[32];
        int np = s_page_sql(&f, x.n > 0, !first, after_started, after_id, page_rows, sql,
                            sizeof sql, bufs, params);
        page_res = s_prefetched(self, sql, params, np);
        if (!page_res)
            page_res = ncc_db_exec(self->db, sql, np, params, NULL);
        if (!page_res) {
            history_reply_db_error(self, reply, "export: page");
            return;
        }
        int rows = PQntuples(page_res);
        done = rows <= page_rows;
        n = (size_t)(rows > page_rows ? page_rows : rows);
        if (!done && n > 0) {
            /* The next page is asked of PostgreSQL now, on the export connection, while this
             * one is written and travels (the gateway asks for it next). */
            int64_t next_started =
                strtoll(PQgetvalue(page_res, (int)n - 1, PQnfields(page_res) - 1), NULL, 10);
            int64_t next_id = strtoll(PQgetvalue(page_res, (int)n - 1, 0), NULL, 10);
            np = s_page_sql(&f, x.n > 0, true, next_started, next_id, page_rows, sql, sizeof sql,
                            bufs, params);
            s_prefetch(self, sql, params, np);
        }
    }

    /* The page as CSV. */
    unsigned flags =
        sjis ? NCC_CSV_WRITE_CP932 | NCC_CSV_WRITE_CP932_REPLACE : (first ? NCC_CSV_WRITE_BOM : 0);
    s_page_t page = {.w = ncc_csv_writer_new(flags, NULL, NULL)};
    history_record_t *recs = calloc(n ? n : 1, sizeof *recs);
    PGresult *rows_res = NULL;
    size_t count = 0;
    if (!page.w || !recs) {
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        goto out;
    }
    const char *header[S_COLUMNS + S_EXTRA_MAX];
    memcpy(header, s_columns, sizeof s_columns);
    for (size_t i = 0; i < x.n; i++)
        header[S_COLUMNS + i] = x.names[i];
    if (first && ncc_csv_writer_row(page.w, header, S_COLUMNS + x.n) < 0) {
        ncc_reply_error(reply, 500, "internal", NULL, "the header cannot be written");
        goto out;
    }
    if (page_res) {
        rows_res = page_res;
        page_res = NULL;
        for (count = 0; count < n; count++)
            history_record_from_row(self, rows_res, (int)count, &recs[count]);
    } else if (n > 0 && history_records_by_ids(self, ids, n, &rows_res, recs, &count) < 0) {
        history_reply_db_error(self, reply, "export: rows");
        goto out;
    }
    size_t written = 0, len = 0;
    for (size_t i = 0; i < count; i++) {
        if (s_write_row(page.w, &recs[i], &x) < 0) {
            ncc_reply_error(reply, 500, "internal", NULL, "a row cannot be written");
            goto out;
        }
        written++;
        page.last_started = recs[i].started_us;
        page.last_id = recs[i].msg.id;
        if (ncc_csv_writer_data(page.w, &len) && len > S_PAGE_BYTES && i + 1 < count) {
            done = false; /* the rest comes in the next page */
            break;
        }
    }
    if (written == 0 && n > 0 && count == 0 && ids) {
        /* every id of the page vanished since: move past them */
        page.last_started = after_started;
        page.last_id = ids[n - 1];
    }
    if (done) {
        /* The export read to its end: its row count, for an erase. */
        char rows_text[24], id_text[24];
        snprintf(rows_text, sizeof rows_text, "%" PRId64, rows_before + (int64_t)written);
        snprintf(id_text, sizeof id_text, "%" PRId64, export_id);
        const char *params[] = {id_text, rows_text};
        PGresult *res = ncc_db_exec(self->db,
                                    "UPDATE exports SET rows = $2::bigint, finished_at = now() "
                                    "WHERE id = $1::bigint",
                                    2, params, NULL);
        if (!res) {
            history_reply_db_error(self, reply, "export: finish");
            goto out;
        }
        PQclear(res);
    }
    char cursor[120] = "";
    if (!done)
        snprintf(cursor, sizeof cursor, "%" PRId64 ":%" PRId64 ":%" PRId64 ":%" PRId64, export_id,
                 written ? page.last_started : after_started,
                 written ? page.last_id : (n && ids ? ids[n - 1] : after_id),
                 rows_before + (int64_t)written);
    const char *data = ncc_csv_writer_data(page.w, &len);
    Ncc__History__ExportPage answer = NCC__HISTORY__EXPORT_PAGE__INIT;
    answer.has_csv = true;
    answer.csv.data = (uint8_t *)data;
    answer.csv.len = len;
    answer.cursor = cursor;
    answer.has_done = true;
    answer.done = done;
    answer.has_rows = true;
    answer.rows = (int64_t)written;
    answer.encoding = sjis ? "shift_jis" : "utf-8";
    answer.filename = "records.csv";
    if (!filtered) {
        answer.has_export_id = true;
        answer.export_id = export_id;
    }
    ncc_reply_message(reply, &answer.base);
out:
    for (size_t i = 0; recs && i < count; i++)
        history_record_clear(&recs[i]);
    free(recs);
    free(ids);
    if (rows_res)
        PQclear(rows_res);
    if (page_res)
        PQclear(page_res);
    ncc_csv_writer_destroy(&page.w);
}

/* ---- import -------------------------------------------------------------------------------- */

typedef struct {
    size_t line;
    char *v[S_COLUMNS]; /* owned copies, the formula guard taken off */
    char *extra;        /* owned: the x_ values as a JSON object text ("{}" for none) */
    char started[40], ended[40], wrapup[40];
    int64_t operator_id;
    int64_t faq_ids[3];
    size_t n_faq_ids;
} s_row_t;

typedef struct {
    Ncc__Directory__CsvError *items; /* S_ERRORS_KEPT */
    char (*messages)[240];
    size_t count, total;
} s_errors_t;

static void s_error(s_errors_t *e, size_t line, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void s_error(s_errors_t *e, size_t line, const char *field, const char *fmt, ...)
{
    e->total++;
    if (e->count == S_ERRORS_KEPT)
        return;
    Ncc__Directory__CsvError *item = &e->items[e->count];
    ncc__directory__csv_error__init(item);
    item->has_line = true;
    item->line = (int64_t)line;
    item->field = (char *)field;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->messages[e->count], sizeof e->messages[0], fmt, ap);
    va_end(ap);
    item->message = e->messages[e->count];
    e->count++;
}

/* A value as the export's formula guard left it: "'=x" is "=x". */
static char *s_unguard(const char *value)
{
    if (value[0] == '\'' && (value[1] == '=' || value[1] == '+' || value[1] == '-' ||
                             value[1] == '@' || value[1] == '\t' || value[1] == '\r'))
        value++;
    return strdup(value);
}

/* "R2027-000123": R, the fiscal year, -, at least 6 digits. */
static bool s_receipt_ok(const char *text, int *ret_year)
{
    if (text[0] != 'R' || strlen(text) < 12 || strlen(text) > 20 || text[5] != '-')
        return false;
    for (size_t i = 1; text[i]; i++)
        if (i != 5 && (text[i] < '0' || text[i] > '9'))
            return false;
    *ret_year =
        (text[1] - '0') * 1000 + (text[2] - '0') * 100 + (text[3] - '0') * 10 + (text[4] - '0');
    return true;
}

static int s_fiscal_year_of(int64_t unix_s)
{
    time_t t = (time_t)unix_s + 9 * 3600;
    struct tm tm;
    gmtime_r(&t, &tm);
    return tm.tm_mon >= 3 ? tm.tm_year + 1900 : tm.tm_year + 1899;
}

/* Checks one row; problems go to e. */
static void s_check_row(history_t *self, s_row_t *row, s_errors_t *e)
{
    char **v = row->v, err[200];
    size_t line = row->line;
    int64_t started_unix = 0, ended_unix = 0;
    bool has_started = false;
    if (!*v[C_STARTED]) {
        s_error(e, line, "started_at", "a value is required");
    } else if (history_time_parse(v[C_STARTED], HISTORY_TIME_LOCAL, row->started, &started_unix,
                                  NULL) < 0) {
        s_error(e, line, "started_at",
                "not a time (2027-04-01T09:00:00+09:00, 2027-04-01 09:00 or 2027/4/1 9:00)");
    } else {
        has_started = true;
    }
    if (*v[C_ENDED] &&
        history_time_parse(v[C_ENDED], HISTORY_TIME_LOCAL, row->ended, &ended_unix, NULL) < 0)
        s_error(e, line, "ended_at", "not a time");
    else if (*v[C_ENDED] && has_started && ended_unix < started_unix)
        s_error(e, line, "ended_at", "before started_at");
    if (*v[C_WRAPUP] &&
        history_time_parse(v[C_WRAPUP], HISTORY_TIME_LOCAL, row->wrapup, NULL, NULL) < 0)
        s_error(e, line, "wrapup_ended_at", "not a time");
    int year = 0;
    if (*v[C_RECEIPT]) {
        if (!s_receipt_ok(v[C_RECEIPT], &year))
            s_error(e, line, "receipt_id",
                    "a receipt id is R, the fiscal year, - and 6 digits "
                    "(R2027-000123), or empty for a new one");
        else if (has_started && year != s_fiscal_year_of(started_unix))
            s_error(e, line, "receipt_id", "it belongs to fiscal year %d, started_at to %d", year,
                    s_fiscal_year_of(started_unix));
    }
    if (*v[C_CALL] && !history_call_id_ok(v[C_CALL]))
        s_error(e, line, "call_id", "1 to 128 of A-Z a-z 0-9 . _ : @ -");
    if (!*v[C_CHANNEL])
        s_error(e, line, "channel", "a value is required (phone, sms, form, chat, line, visit)");
    else if (!history_channel_bit(v[C_CHANNEL]))
        s_error(e, line, "channel", "phone, sms, form, chat, line or visit");
    if (*v[C_STATUS] && !history_status_bit(v[C_STATUS]))
        s_error(e, line, "status", "open, in_progress or closed (empty: open)");
    if (*v[C_OPERATOR_ID] && !history_parse_id(v[C_OPERATOR_ID], &row->operator_id) &&
        strcmp(v[C_OPERATOR_ID], "0") != 0)
        s_error(e, line, "operator_id", "a user id (a number), or empty");
    if (!history_text_ok(v[C_OPERATOR_NAME], 100, false))
        s_error(e, line, "operator_name", "at most 100 characters on one line");
    static const struct {
        int col;
        const char *kind;
    } codes[] = {{C_RECEPTION, "reception-types"},
                 {C_DEPARTMENT, "departments"},
                 {C_HANDLING, "handling-types"},
                 {C_CATEGORY, "categories"}};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *code = v[codes[i].col];
        /* Retired codes pass: an old record keeps the code it was given. */
        if (!history_code_known(self, codes[i].kind, s_columns[codes[i].col], code, code, err,
                                sizeof err))
            s_error(e, line, s_columns[codes[i].col], "%s", err);
    }
    for (const char *p = v[C_FAQ]; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        char *end = NULL;
        long long id = strtoll(p, &end, 10);
        if (end == p || id <= 0 || id > 99999999 || (*end && *end != ' ' && *end != ',')) {
            s_error(e, line, "faq_ids", "FAQ numbers separated by spaces");
            break;
        }
        if (row->n_faq_ids == 3) {
            s_error(e, line, "faq_ids", "at most 3 FAQ numbers");
            break;
        }
        row->faq_ids[row->n_faq_ids++] = id;
        p = end;
    }
    static const struct {
        int col;
        size_t max;
        bool multiline;
    } texts[] = {{C_INQUIRY, 10000, true},
                 {C_RESPONSE, 10000, true},
                 {C_SUMMARY, 10000, true},
                 {C_TRANSFER, 100, false},
                 {C_CALLER, 32, false}};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        if (!history_text_ok(v[texts[i].col], texts[i].max, texts[i].multiline))
            s_error(e, line, s_columns[texts[i].col], "at most %zu characters%s", texts[i].max,
                    texts[i].multiline ? "" : " on one line");
    char digits[40];
    if (*v[C_CALLER] && !history_caller_digits(v[C_CALLER], digits, sizeof digits))
        s_error(e, line, "caller_number", "a phone number has digits");
    if (!*v[C_INQUIRY])
        s_error(e, line, "inquiry", "a value is required");
    if (strcmp(v[C_STATUS], "closed") == 0 && !*v[C_RESPONSE])
        s_error(e, line, "response", "a closed record needs a response");
}

/* The x_ values of the row the reader is on (columns S_COLUMNS...) into row->extra, each
 * checked as a save checks it; problems go to e. False only when out of memory. */
static bool s_row_extra(history_t *self, ncc_csv_reader_t *r, s_row_t *row,
                        const char *const *names, size_t n_names, s_errors_t *e)
{
    cJSON *object = cJSON_CreateObject();
    if (!object)
        return false;
    for (size_t i = 0; i < n_names; i++) {
        char *value = s_unguard(ncc_csv_reader_field(r, S_COLUMNS + i, NULL));
        if (!value) {
            cJSON_Delete(object);
            return false;
        }
        static char canonical[40010];
        char err[240];
        if (*value) {
            if (!history_form_import_value(self, names[i], value, canonical, sizeof canonical, err,
                                           sizeof err))
                s_error(e, row->line, names[i], "%s", err);
            else if (!cJSON_AddStringToObject(object, names[i], canonical)) {
                free(value);
                cJSON_Delete(object);
                return false;
            }
        }
        free(value);
    }
    row->extra = cJSON_PrintUnformatted(object);
    cJSON_Delete(object);
    return row->extra != NULL;
}

static void s_rows_free(s_row_t *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++) {
        for (size_t c = 0; c < S_COLUMNS; c++)
            free(rows[i].v[c]);
        free(rows[i].extra);
    }
    free(rows);
}

/* Values of column `col` already in the table: each is an error on its line. */
static int s_taken(history_t *self, s_row_t *rows, size_t n, int col, const char *sql,
                   s_errors_t *e)
{
    size_t cap = 3, used = 0;
    for (size_t i = 0; i < n; i++)
        cap += strlen(rows[i].v[col]) * 2 + 4;
    char *array = malloc(cap);
    if (!array)
        return -ENOMEM;
    used += (size_t)snprintf(array, cap, "{");
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        if (!*rows[i].v[col])
            continue;
        /* codes and receipt ids hold no quote, comma, brace or backslash (checked) */
        used +=
            (size_t)snprintf(array + used, cap - used, "%s\"%s\"", any ? "," : "", rows[i].v[col]);
        any = true;
    }
    snprintf(array + used, cap - used, "}");
    if (!any) {
        free(array);
        return 0;
    }
    const char *params[] = {array};
    PGresult *res = ncc_db_exec(self->db, sql, 1, params, NULL);
    free(array);
    if (!res)
        return -EIO;
    for (int r = 0; r < PQntuples(res); r++) {
        const char *value = PQgetvalue(res, r, 0);
        for (size_t i = 0; i < n; i++)
            if (strcmp(rows[i].v[col], value) == 0)
                s_error(e, rows[i].line, s_columns[col], "%s exists already", value);
    }
    PQclear(res);
    return 0;
}

static void s_reply_refused(ncc_reply_t *reply, int status, s_errors_t *e, const char *encoding,
                            const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void s_reply_refused(ncc_reply_t *reply, int status, s_errors_t *e, const char *encoding,
                            const char *fmt, ...)
{
    char message[240];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    Ncc__Directory__ApiError error = NCC__DIRECTORY__API_ERROR__INIT;
    error.code = status == 400 ? "invalid_header" : "invalid_csv";
    error.message = message;
    Ncc__Directory__CsvError *ptrs[S_ERRORS_KEPT];
    Ncc__History__ImportResult result = NCC__HISTORY__IMPORT_RESULT__INIT;
    result.has_http_status = true;
    result.http_status = status;
    result.error = &error;
    for (size_t i = 0; e && i < e->count; i++)
        ptrs[i] = &e->items[i];
    result.n_errors = e ? e->count : 0;
    result.errors = ptrs;
    result.has_errors_total = e != NULL;
    result.errors_total = e ? (int64_t)e->total : 0;
    result.encoding = (char *)encoding;
    ncc_reply_message(reply, &result.base);
}

static void s_on_import(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    history_t *self = arg;
    const Ncc__History__ImportRecords *m = (const Ncc__History__ImportRecords *)request->message;
    bool preview = m->has_preview && m->preview;
    ncc_csv_options_t options = {
        .max_fields = 64, .max_field_bytes = 64 * 1024, .max_records = S_IMPORT_ROWS + 1};
    ncc_csv_reader_t *r = ncc_csv_reader_new(m->has_csv ? m->csv.data : (const uint8_t *)"",
                                             m->has_csv ? m->csv.len : 0, &options);
    s_errors_t e = {.items = calloc(S_ERRORS_KEPT, sizeof *e.items),
                    .messages = calloc(S_ERRORS_KEPT, sizeof *e.messages)};
    s_row_t *rows = NULL;
    size_t n = 0, cap = 0;
    int64_t *ids = NULL;
    PGresult *res = NULL;
    history_record_t *recs = NULL;
    size_t n_recs = 0;
    char *extra_names[S_EXTRA_MAX] = {NULL};
    size_t n_extra_names = 0;
    if (!r || !e.items || !e.messages) {
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        goto out;
    }
    /* The header: the export's columns, then any x_ columns (fields of the record form). */
    int rc = ncc_csv_reader_next(r);
    size_t width = rc == 1 ? ncc_csv_reader_count(r) : 0;
    bool header_ok = rc == 1 && width >= S_COLUMNS && width <= S_COLUMNS + S_EXTRA_MAX;
    for (size_t c = 0; header_ok && c < S_COLUMNS; c++)
        header_ok = strcmp(ncc_csv_reader_field(r, c, NULL), s_columns[c]) == 0;
    if (rc < 0) {
        ncc_reply_error(reply, 400, "invalid_csv", NULL, "%s", ncc_csv_reader_error(r)->message);
        goto out;
    }
    if (!header_ok) {
        s_reply_refused(reply, 400, NULL, NULL,
                        "the first line must be the export's header: receipt_id,call_id,channel,"
                        "operator_id,operator_name,started_at,ended_at,wrapup_ended_at,"
                        "reception_type,department_id,handling_type,faq_ids,category,inquiry,"
                        "response,transfer_to,summary,status,caller_number,created_at,"
                        "updated_at (then at most %d x_ columns)",
                        S_EXTRA_MAX);
        goto out;
    }
    for (size_t c = S_COLUMNS; c < width; c++) {
        const char *name = ncc_csv_reader_field(r, c, NULL);
        bool twice = false;
        for (size_t d = S_COLUMNS; d < c && !twice; d++)
            twice = strcmp(extra_names[d - S_COLUMNS], name) == 0;
        if (twice || !history_form_has_extra(self, name)) {
            s_reply_refused(reply, 400, NULL, NULL, "column %zu of the header (%.40s): %s", c + 1,
                            name,
                            twice ? "named twice"
                                  : "after the export's columns only x_ fields of the record "
                                    "form may follow");
            goto out;
        }
        extra_names[c - S_COLUMNS] = strdup(name);
        n_extra_names = c - S_COLUMNS + 1;
        if (!extra_names[c - S_COLUMNS]) {
            ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
            goto out;
        }
    }
    while ((rc = ncc_csv_reader_next(r)) == 1) {
        size_t count = ncc_csv_reader_count(r), line = ncc_csv_reader_line(r);
        bool blank = true;
        for (size_t c = 0; c < count && blank; c++)
            blank = ncc_csv_reader_field(r, c, NULL)[0] == '\0';
        if (blank)
            continue; /* left by Excel */
        if (count != width) {
            s_error(&e, line, NULL, "%zu fields, the header has %zu", count, width);
            continue;
        }
        if (n == cap) {
            size_t grown_cap = cap ? cap * 2 : 64;
            s_row_t *grown = realloc(rows, grown_cap * sizeof *grown);
            if (!grown) {
                ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
                goto out;
            }
            rows = grown;
            cap = grown_cap;
        }
        s_row_t *row = &rows[n];
        memset(row, 0, sizeof *row);
        row->line = line;
        bool ok = true;
        for (size_t c = 0; c < S_COLUMNS; c++) {
            row->v[c] = s_unguard(ncc_csv_reader_field(r, c, NULL));
            ok = ok && row->v[c];
        }
        n++;
        if (!ok) {
            ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
            goto out;
        }
        s_check_row(self, row, &e);
        if (!s_row_extra(self, r, row, (const char *const *)extra_names, n_extra_names, &e)) {
            ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
            goto out;
        }
        /* The same receipt id or call twice in the file. */
        for (size_t j = 0; j + 1 < n; j++) {
            if (*row->v[C_RECEIPT] && strcmp(rows[j].v[C_RECEIPT], row->v[C_RECEIPT]) == 0)
                s_error(&e, line, "receipt_id", "this receipt id is also on line %zu",
                        rows[j].line);
            if (*row->v[C_CALL] && strcmp(rows[j].v[C_CALL], row->v[C_CALL]) == 0)
                s_error(&e, line, "call_id", "this call is also on line %zu", rows[j].line);
        }
    }
    const char *encoding = ncc_csv_reader_encoding(r) == NCC_CSV_CP932 ? "shift_jis" : "utf-8";
    if (rc < 0) {
        const ncc_csv_error_t *err = ncc_csv_reader_error(r);
        s_error(&e, err->line, NULL, "%s", err->message);
    }
    if (n == 0 && e.total == 0) {
        s_reply_refused(reply, 400, NULL, encoding, "the file holds no record");
        goto out;
    }
    if (s_taken(self, rows, n, C_RECEIPT,
                "SELECT receipt_id FROM records WHERE receipt_id = ANY($1::text[])", &e) < 0 ||
        s_taken(self, rows, n, C_CALL,
                "SELECT call_id FROM records WHERE call_id = ANY($1::text[])", &e) < 0) {
        history_reply_db_error(self, reply, "import: check");
        goto out;
    }
    if (e.total > 0) {
        s_reply_refused(reply, 422, &e, encoding,
                        "%zu problem%s found in the file: nothing was imported", e.total,
                        e.total == 1 ? "" : "s");
        goto out;
    }

    Ncc__History__ImportResult result = NCC__HISTORY__IMPORT_RESULT__INIT;
    char *receipts[S_RECEIPTS_SHOWN];
    result.has_preview = true;
    result.preview = preview;
    result.has_created = true;
    result.created = (int64_t)n;
    result.encoding = (char *)encoding;
    if (preview) {
        for (size_t i = 0; i < n && i < S_RECEIPTS_SHOWN; i++)
            receipts[i] = *rows[i].v[C_RECEIPT] ? rows[i].v[C_RECEIPT] : "(new)";
        result.n_receipt_ids = n < S_RECEIPTS_SHOWN ? n : S_RECEIPTS_SHOWN;
        result.receipt_ids = receipts;
        ncc_reply_message(reply, &result.base);
        goto out;
    }

    /* All rows in one transaction. */
    ids = malloc(n * sizeof *ids);
    recs = calloc(n, sizeof *recs);
    if (!ids || !recs) {
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        goto out;
    }
    if (ncc_db_begin(self->db) < 0) {
        history_reply_db_error(self, reply, "import: begin");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        s_row_t *row = &rows[i];
        char name[128] = "";
        const char *operator_name = row->v[C_OPERATOR_NAME];
        if (!*operator_name && row->operator_id > 0) {
            history_operator_name(self, row->operator_id, name, sizeof name);
            operator_name = name;
        }
        const char *status = *row->v[C_STATUS] ? row->v[C_STATUS] : "open";
        history_new_record_t rec = {
            .receipt_id = *row->v[C_RECEIPT] ? row->v[C_RECEIPT] : NULL,
            .started_at = row->started,
            .call_id = row->v[C_CALL],
            .channel = row->v[C_CHANNEL],
            .operator_id = row->operator_id,
            .operator_name = operator_name,
            .ended_at = *row->v[C_ENDED] ? row->ended : NULL,
            /* 後処理終了 as written; a closed record without one ended when the call did */
            .wrapup_ended_at = *row->v[C_WRAPUP]                                   ? row->wrapup
                               : strcmp(status, "closed") == 0 && *row->v[C_ENDED] ? row->ended
                                                                                   : NULL,
            .reception_type = row->v[C_RECEPTION],
            .department_id = row->v[C_DEPARTMENT],
            .handling_type = row->v[C_HANDLING],
            .faq_ids = row->faq_ids,
            .n_faq_ids = row->n_faq_ids,
            .category = row->v[C_CATEGORY],
            .inquiry = row->v[C_INQUIRY],
            .response = row->v[C_RESPONSE],
            .transfer_to = row->v[C_TRANSFER],
            .summary = row->v[C_SUMMARY],
            .status = status,
            .caller_number = row->v[C_CALLER],
            .extra = row->extra,
            .source = "import",
        };
        rc = history_insert(self, &rec, &ids[i]);
        if (rc == -ENOKEY) {
            ncc_db_rollback(self->db);
            ncc_reply_error(reply, 503, "service_unavailable", "caller_number",
                            "line %zu: callers' numbers cannot be stored: the data keys are not "
                            "configured; nothing was imported",
                            row->line);
            goto out;
        }
        if (rc < 0) {
            char what[64];
            snprintf(what, sizeof what, "import: line %zu", row->line);
            history_reply_db_error(self, reply, what);
            goto out;
        }
    }
    ncc_ctx_t ctx = ncc_request_ctx(request);
    if (history_records_by_ids(self, ids, n, &res, recs, &n_recs) < 0) {
        history_reply_db_error(self, reply, "import: read back");
        goto out;
    }
    for (size_t i = 0; i < n_recs; i++) {
        if (history_record_changed(self, &ctx, &recs[i], "created", "import") < 0) {
            history_reply_db_error(self, reply, "import: events");
            goto out;
        }
    }
    if (ncc_db_commit(self->db) < 0) {
        history_reply_db_error(self, reply, "import: commit");
        goto out;
    }
    history_flush(self);
    ncc_info("history.imported", "%zu records imported (%s)", n, encoding);
    for (size_t i = 0; i < n_recs && i < S_RECEIPTS_SHOWN; i++)
        receipts[i] = recs[i].msg.receipt_id;
    result.n_receipt_ids = n_recs < S_RECEIPTS_SHOWN ? n_recs : S_RECEIPTS_SHOWN;
    result.receipt_ids = receipts;
    ncc_reply_message(reply, &result.base);
out:
    for (size_t i = 0; recs && i < n_recs; i++)
        history_record_clear(&recs[i]);
    free(recs);
    if (res)
        PQclear(res);
    free(ids);
    s_rows_free(rows, n);
    for (size_t i = 0; i < n_extra_names; i++)
        free(extra_names[i]);
    free(e.items);
    free(e.messages);
    ncc_csv_reader_destroy(&r);
}

int history_transfer_register(history_t *self)
{
    if (ncc_service_on(self->service, &ncc__history__export_records__descriptor,
                       NCC_ROLE_SUPERVISOR | NCC_ROLE_ADMIN | NCC_ROLE_STAFF, s_on_export,
                       self) < 0 ||
        ncc_service_on(self->service, &ncc__history__import_records__descriptor,
                       NCC_ROLE_SUPERVISOR | NCC_ROLE_ADMIN, s_on_import, self) < 0)
        return -EEXIST;
    return 0;
}
