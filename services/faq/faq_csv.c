/* faq_csv: the whole FAQ as CSV (R4): import (all or nothing, every problem
 * listed with its line, UTF-8 or Shift_JIS detected by common/src/csv.c)
 * and export (UTF-8 with a BOM, or Shift_JIS). The header is API.md's:
 * number,question,answer,department_code,category,visibility,keywords,status. */
#include "faq.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ncc/csv.h"
#include "ncc/roles.h"

#define S_EDITORS    (NCC_ROLE_SUPERVISOR | NCC_ROLE_ADMIN)
#define S_COLUMNS    8
#define S_MAX_ERRORS 1000

static const char *const s_header[S_COLUMNS] = {"number",          "question", "answer",
                                                "department_code", "category", "visibility",
                                                "keywords",        "status"};
#define S_HEADER_TEXT "number,question,answer,department_code,category,visibility,keywords,status"

/* ---- a growable text ------------------------------------------------------------------------ */

typedef struct {
    char *data;
    size_t len, cap;
    bool failed;
} s_buf_t;

static void s_put(s_buf_t *b, const char *text, size_t len)
{
    if (b->failed)
        return;
    if (b->len + len + 1 > b->cap) {
        size_t cap = (b->cap + len + 1) * 2;
        char *grown = realloc(b->data, cap);
        if (!grown) {
            b->failed = true;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, text, len);
    b->len += len;
    b->data[b->len] = '\0';
}

/* Appends one element of a PostgreSQL array literal (NULL: SQL NULL). */
static void s_array_add(s_buf_t *b, const char *value)
{
    s_put(b, b->len > 1 ? "," : "", b->len > 1 ? 1 : 0);
    if (!value) {
        s_put(b, "NULL", 4);
        return;
    }
    s_put(b, "\"", 1);
    for (const char *p = value; *p; p++) {
        if (*p == '"' || *p == '\\')
            s_put(b, "\\", 1);
        s_put(b, p, 1);
    }
    s_put(b, "\"", 1);
}

/* ---- import -----------------------------------------------------------------------------------
 */

typedef struct {
    int64_t line;
    int64_t number; /* 0: to be given */
    char *fields[S_COLUMNS];
    int64_t department_id;
} s_row_t;

typedef struct {
    Ncc__Faq__CsvError *items;
    size_t n, total;
} s_errors_t;

static void s_error(s_errors_t *errors, int64_t line, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void s_error(s_errors_t *errors, int64_t line, const char *field, const char *fmt, ...)
{
    errors->total++;
    if (errors->n >= S_MAX_ERRORS)
        return;
    Ncc__Faq__CsvError *e = &errors->items[errors->n++];
    ncc__faq__csv_error__init(e);
    e->has_line = true;
    e->line = line;
    e->field = field ? strdup(field) : NULL;
    char message[240];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    e->message = strdup(message);
}

static void s_errors_free(s_errors_t *errors)
{
    for (size_t i = 0; i < errors->n; i++) {
        free(errors->items[i].field);
        free(errors->items[i].message);
    }
    free(errors->items);
}

static void s_rows_free(s_row_t *rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (int f = 0; f < S_COLUMNS; f++)
            free(rows[i].fields[f]);
    free(rows);
}

/* The export's formula guard undone: '= '+ '- '@ lose the quote. */
static char *s_field_copy(const char *value)
{
    if (value[0] == '\'' &&
        (value[1] == '=' || value[1] == '+' || value[1] == '-' || value[1] == '@'))
        value++;
    /* trim blanks around */
    while (*value == ' ' || *value == '\t')
        value++;
    size_t len = strlen(value);
    while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t'))
        len--;
    return strndup(value, len);
}

static void s_reply_refused(ncc_reply_t *reply, int status, const char *code, const char *message,
                            s_errors_t *errors)
{
    Ncc__Faq__ImportResult result = NCC__FAQ__IMPORT_RESULT__INIT;
    Ncc__Faq__ApiError error = NCC__FAQ__API_ERROR__INIT;
    error.code = (char *)code;
    error.message = (char *)message;
    result.has_http_status = true;
    result.http_status = status;
    result.error = &error;
    Ncc__Faq__CsvError **ptrs = NULL;
    if (errors && errors->n) {
        ptrs = calloc(errors->n, sizeof *ptrs);
        for (size_t i = 0; ptrs && i < errors->n; i++)
            ptrs[i] = &errors->items[i];
        result.errors = ptrs;
        result.n_errors = ptrs ? errors->n : 0;
        result.has_errors_total = true;
        result.errors_total = (int64_t)errors->total;
    }
    ncc_reply_message(reply, &result.base);
    free(ptrs);
}

static bool s_is_status(const char *s)
{
    return strcmp(s, "draft") == 0 || strcmp(s, "review") == 0 || strcmp(s, "published") == 0 ||
           strcmp(s, "archived") == 0;
}

/* Checks one row; problems go to `errors`. */
static void s_check_row(faq_t *self, s_row_t *row, s_errors_t *errors)
{
    const char *why;
    const char *number = row->fields[0];
    if (*number) {
        char *end = NULL;
        long long n = strtoll(number, &end, 10);
        if (!end || *end || n <= 0 || n > 999999999 || number[0] == '+' || number[0] == '-')
            s_error(errors, row->line, "number", "number must be a whole number 1 to 999999999");
        else
            row->number = n;
    }
    char *norm = faq_normalize(row->fields[1]);
    if (!norm || !*norm)
        s_error(errors, row->line, "question", "a question is required");
    else if ((why = faq_text_problem(row->fields[1], FAQ_QUESTION_MAX, false)))
        s_error(errors, row->line, "question", "question %s (at most %d characters)", why,
                FAQ_QUESTION_MAX);
    free(norm);
    if (!*row->fields[2])
        s_error(errors, row->line, "answer", "an answer is required");
    else if ((why = faq_text_problem(row->fields[2], FAQ_ANSWER_MAX, true)))
        s_error(errors, row->line, "answer", "answer %s (at most %d characters)", why,
                FAQ_ANSWER_MAX);
    if (*row->fields[3] && faq_department_id(self, row->fields[3], &row->department_id) < 0)
        s_error(errors, row->line, "department_code", "no department has the code %.32s",
                row->fields[3]);
    if ((why = faq_text_problem(row->fields[4], FAQ_CATEGORY_MAX, false)))
        s_error(errors, row->line, "category", "category %s", why);
    if (*row->fields[5] && strcmp(row->fields[5], "public") != 0 &&
        strcmp(row->fields[5], "internal") != 0)
        s_error(errors, row->line, "visibility", "visibility must be public or internal");
    if ((why = faq_text_problem(row->fields[6], FAQ_KEYWORDS_MAX, false)))
        s_error(errors, row->line, "keywords", "keywords %s", why);
    if (*row->fields[7] && !s_is_status(row->fields[7]))
        s_error(errors, row->line, "status", "status must be draft, review, published or archived");
}

static int s_number_compare(const void *a, const void *b)
{
    const s_row_t *x = *(const s_row_t *const *)a, *y = *(const s_row_t *const *)b;
    if (x->number != y->number)
        return x->number < y->number ? -1 : 1;
    return x->line < y->line ? -1 : x->line > y->line;
}

static void s_on_import(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    faq_t *self = arg;
    const Ncc__Faq__ImportFaqs *m = (const Ncc__Faq__ImportFaqs *)request->message;
    s_errors_t errors = {.items = calloc(S_MAX_ERRORS, sizeof(Ncc__Faq__CsvError))};
    s_row_t *rows = NULL;
    size_t n_rows = 0, cap_rows = 0;
    ncc_csv_reader_t *csv = NULL;
    s_buf_t arrays[S_COLUMNS + 2];
    memset(arrays, 0, sizeof arrays);
    if (!errors.items) {
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        return;
    }
    if (!m->has_csv || m->csv.len == 0) {
        s_reply_refused(reply, 400, "invalid_header",
                        "the file is empty: the first line must be " S_HEADER_TEXT, NULL);
        goto out;
    }
    csv = ncc_csv_reader_new(m->csv.data, m->csv.len, NULL);
    if (!csv) {
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        goto out;
    }
    int rc = ncc_csv_reader_next(csv);
    bool header_ok = rc == 1 && ncc_csv_reader_count(csv) == S_COLUMNS;
    for (size_t i = 0; header_ok && i < S_COLUMNS; i++)
        header_ok = strcmp(ncc_csv_reader_field(csv, i, NULL), s_header[i]) == 0;
    if (rc < 0) {
        const ncc_csv_error_t *e = ncc_csv_reader_error(csv);
        s_error(&errors, (int64_t)e->line, NULL, "%s", e->message);
        s_reply_refused(reply, 422, "invalid_csv", "the file cannot be read: nothing was imported",
                        &errors);
        goto out;
    }
    if (!header_ok) {
        s_reply_refused(reply, 400, "invalid_header",
                        "the first line must be exactly " S_HEADER_TEXT, NULL);
        goto out;
    }
    for (;;) {
        rc = ncc_csv_reader_next(csv);
        if (rc == 0)
            break;
        if (rc < 0) {
            const ncc_csv_error_t *e = ncc_csv_reader_error(csv);
            s_error(&errors, (int64_t)e->line, NULL, "%s", e->message);
            break;
        }
        size_t count = ncc_csv_reader_count(csv);
        int64_t line = (int64_t)ncc_csv_reader_line(csv);
        bool empty = true;
        for (size_t i = 0; i < count && empty; i++)
            empty = ncc_csv_reader_field(csv, i, NULL)[0] == '\0';
        if (empty)
            continue;
        if (count != S_COLUMNS) {
            s_error(&errors, line, NULL, "the line has %zu fields; %d are expected", count,
                    S_COLUMNS);
            continue;
        }
        if (n_rows == cap_rows) {
            size_t cap = cap_rows ? cap_rows * 2 : 256;
            s_row_t *grown = realloc(rows, cap * sizeof *grown);
            if (!grown) {
                ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
                goto out;
            }
            rows = grown;
            cap_rows = cap;
        }
        s_row_t *row = &rows[n_rows++];
        memset(row, 0, sizeof *row);
        row->line = line;
        for (size_t i = 0; i < S_COLUMNS; i++) {
            row->fields[i] = s_field_copy(ncc_csv_reader_field(csv, i, NULL));
            if (!row->fields[i]) {
                ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
                goto out;
            }
        }
        s_check_row(self, row, &errors);
    }
    /* a number twice in the file */
    if (n_rows > 1) {
        s_row_t **sorted = calloc(n_rows, sizeof *sorted);
        if (!sorted) {
            ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < n_rows; i++)
            sorted[i] = &rows[i];
        qsort(sorted, n_rows, sizeof *sorted, s_number_compare);
        for (size_t i = 1; i < n_rows; i++)
            if (sorted[i]->number > 0 && sorted[i]->number == sorted[i - 1]->number)
                s_error(&errors, sorted[i]->line, "number",
                        "the number %" PRId64 " is also on line %" PRId64, sorted[i]->number,
                        sorted[i - 1]->line);
        free(sorted);
    }
    if (errors.total > 0) {
        char message[160];
        snprintf(message, sizeof message, "%zu problem%s found in the file: nothing was imported",
                 errors.total, errors.total == 1 ? "" : "s");
        s_reply_refused(reply, 422, "invalid_csv", message, &errors);
        goto out;
    }
    ncc_csv_encoding_t encoding = ncc_csv_reader_encoding(csv);
    char login[80];
    faq_actor_login(self, request, login, sizeof login);

    if (ncc_db_begin(self->db) < 0) {
        faq_reply_db_error(self, reply, "begin");
        goto out;
    }
    /* one importer at a time gives the numbers */
    if (ncc_db_run(self->db, "LOCK TABLE faqs IN SHARE ROW EXCLUSIVE MODE", 0, NULL) < 0) {
        faq_reply_db_error(self, reply, "lock");
        goto out;
    }
    PGresult *max = ncc_db_exec(self->db,
                                "SELECT greatest(coalesce(max(number), 0), (SELECT last_value "
                                "FROM faq_numbers)) FROM faqs",
                                0, NULL, NULL);
    if (!max) {
        faq_reply_db_error(self, reply, "import");
        goto out;
    }
    int64_t next = strtoll(PQgetvalue(max, 0, 0), NULL, 10);
    PQclear(max);
    for (size_t i = 0; i < n_rows; i++)
        if (rows[i].number > next)
            next = rows[i].number;
    for (size_t c = 0; c < S_COLUMNS + 2; c++)
        s_put(&arrays[c], "{", 1);
    for (size_t i = 0; i < n_rows; i++) {
        s_row_t *row = &rows[i];
        if (row->number == 0)
            row->number = ++next;
        char number[24], dep[24];
        snprintf(number, sizeof number, "%" PRId64, row->number);
        snprintf(dep, sizeof dep, "%" PRId64, row->department_id);
        s_array_add(&arrays[0], number);
        for (size_t c = 1; c < S_COLUMNS; c++) {
            const char *value = row->fields[c];
            if (c == 5 && !*value)
                value = "internal";
            if (c == 7 && !*value)
                value = "draft";
            s_array_add(&arrays[c], value);
        }
        s_array_add(&arrays[S_COLUMNS], dep);
    }
    bool failed = false;
    for (size_t c = 0; c < S_COLUMNS + 2; c++) {
        s_put(&arrays[c], "}", 1);
        failed |= arrays[c].failed;
    }
    if (failed) {
        ncc_db_rollback(self->db);
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        goto out;
    }
    char total_text[24];
    snprintf(total_text, sizeof total_text, "%zu", n_rows);
    const char *params[] = {arrays[0].data, arrays[1].data, arrays[2].data, arrays[3].data,
                            arrays[4].data, arrays[5].data, arrays[6].data, arrays[7].data,
                            arrays[8].data, login};
    PGresult *res = ncc_db_exec(
        self->db,
        "WITH rows AS (SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], "
        "$5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[]) AS r(number, question, "
        "answer, department_code, category, visibility, keywords, status, department_id)) "
        "INSERT INTO faqs AS f (number, question, answer, department_code, category, visibility, "
        "keywords, status, department_id, updated_by, approved_by, approved_at) SELECT number, "
        "question, answer, department_code, category, visibility, keywords, status, "
        "nullif(department_id, 0), $10, CASE WHEN status = 'published' THEN $10 END, CASE WHEN "
        "status = 'published' THEN now() END FROM rows ON CONFLICT (number) DO UPDATE SET "
        "question = EXCLUDED.question, answer = EXCLUDED.answer, department_code = "
        "EXCLUDED.department_code, category = EXCLUDED.category, visibility = "
        "EXCLUDED.visibility, keywords = EXCLUDED.keywords, status = EXCLUDED.status, "
        "department_id = EXCLUDED.department_id, updated_by = $10, updated_at = now(), version = "
        "f.version + 1, approved_by = EXCLUDED.approved_by, approved_at = EXCLUDED.approved_at "
        "WHERE (f.question, f.answer, f.department_code, f.category, f.visibility, f.keywords, "
        "f.status) IS DISTINCT FROM (EXCLUDED.question, EXCLUDED.answer, "
        "EXCLUDED.department_code, EXCLUDED.category, EXCLUDED.visibility, EXCLUDED.keywords, "
        "EXCLUDED.status) RETURNING f.id, (xmax = 0)",
        10, params, NULL);
    if (!res) {
        faq_reply_db_error(self, reply, "import");
        goto out;
    }
    int64_t created = 0, updated = 0;
    s_buf_t ids = {0};
    s_put(&ids, "{", 1);
    for (int i = 0; i < PQntuples(res); i++) {
        if (PQgetvalue(res, i, 1)[0] == 't')
            created++;
        else
            updated++;
        s_array_add(&ids, PQgetvalue(res, i, 0));
    }
    s_put(&ids, "}", 1);
    PQclear(res);
    ncc_actor_t actor = ncc_request_actor(request);
    const char *vparams[] = {ids.data ? ids.data : "{}", actor.id ? actor.id : "", login};
    int vrc = ids.failed || faq_numbers_follow(self) < 0
                  ? -ENOMEM
                  : ncc_db_run(self->db,
                               "INSERT INTO faq_versions (faq_id, version, number, "
                               "question, answer, department_code, category, visibility, "
                               "keywords, status, op, actor_id, actor_login) SELECT id, "
                               "version, number, question, answer, department_code, "
                               "category, visibility, keywords, status, 'imported', $2, $3 "
                               "FROM faqs WHERE id = ANY($1::bigint[])",
                               3, vparams);
    free(ids.data);
    Ncc__Faq__FaqChanged event = NCC__FAQ__FAQ_CHANGED__INIT;
    event.op = "imported";
    ncc_ctx_t ctx = ncc_request_ctx(request);
    if (vrc < 0 ||
        (!m->preview && (created + updated) > 0 &&
         (ncc_outbox_add(self->db, &ctx, &event.base) < 0 || faq_touch_index(self) < 0))) {
        faq_reply_db_error(self, reply, "import");
        goto out;
    }
    if (m->has_preview && m->preview) {
        ncc_db_rollback(self->db);
    } else {
        if (ncc_db_commit(self->db) < 0) {
            faq_reply_db_error(self, reply, "commit");
            goto out;
        }
        ncc_publisher_flush(ncc_service_publisher(self->service));
        if (created + updated > 0) {
            int irc = faq_index_rebuild(self);
            if (irc < 0)
                ncc_error("faq.index_failed", "the search index could not be rebuilt: %s",
                          strerror(-irc));
        }
    }
    Ncc__Faq__ImportResult result = NCC__FAQ__IMPORT_RESULT__INIT;
    result.has_preview = result.has_create = result.has_update = result.has_unchanged = true;
    result.has_rows = true;
    result.preview = m->has_preview && m->preview;
    result.create = created;
    result.update = updated;
    result.unchanged = (int64_t)n_rows - created - updated;
    result.rows = (int64_t)n_rows;
    result.encoding = encoding == NCC_CSV_CP932 ? "shift_jis" : "utf-8";
    ncc_reply_message(reply, &result.base);
out:
    for (size_t c = 0; c < S_COLUMNS + 2; c++)
        free(arrays[c].data);
    ncc_csv_reader_destroy(&csv);
    s_rows_free(rows, n_rows);
    s_errors_free(&errors);
}

/* ---- export -----------------------------------------------------------------------------------
 */

static void s_on_export(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    faq_t *self = arg;
    const Ncc__Faq__ExportFaqs *m = (const Ncc__Faq__ExportFaqs *)request->message;
    bool sjis = false;
    if (m->encoding && *m->encoding) {
        if (strcmp(m->encoding, "shift_jis") == 0 || strcmp(m->encoding, "sjis") == 0 ||
            strcmp(m->encoding, "cp932") == 0)
            sjis = true;
        else if (strcmp(m->encoding, "utf-8") != 0 && strcmp(m->encoding, "utf8") != 0) {
            ncc_reply_error(reply, 422, "invalid_field", "encoding",
                            "encoding must be utf-8 or shift_jis");
            return;
        }
    }
    const char *params[] = {m->status && *m->status ? m->status : NULL,
                            m->visibility && *m->visibility ? m->visibility : NULL};
    PGresult *res = ncc_db_exec(self->db,
                                "SELECT number, question, answer, department_code, category, "
                                "visibility, keywords, status FROM faqs WHERE ($1::text IS NULL "
                                "OR status = $1) AND ($2::text IS NULL OR visibility = $2) ORDER "
                                "BY number",
                                2, params, NULL);
    if (!res) {
        faq_reply_db_error(self, reply, "export");
        return;
    }
    ncc_csv_writer_t *w = ncc_csv_writer_new(
        sjis ? (NCC_CSV_WRITE_CP932 | NCC_CSV_WRITE_CP932_REPLACE) : NCC_CSV_WRITE_BOM, NULL, NULL);
    if (!w) {
        PQclear(res);
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        return;
    }
    int rc = ncc_csv_writer_row(w, s_header, S_COLUMNS);
    for (int i = 0; rc == 0 && i < PQntuples(res); i++) {
        const char *values[S_COLUMNS];
        for (int c = 0; c < S_COLUMNS; c++)
            values[c] = PQgetvalue(res, i, c);
        rc = ncc_csv_writer_row(w, values, S_COLUMNS);
    }
    int rows = PQntuples(res);
    PQclear(res);
    size_t len = 0;
    char *data = rc == 0 ? ncc_csv_writer_take(w, &len) : NULL;
    ncc_csv_writer_destroy(&w);
    if (!data) {
        ncc_reply_error(reply, 500, "internal", NULL, "the export failed");
        return;
    }
    Ncc__Faq__CsvFile file = NCC__FAQ__CSV_FILE__INIT;
    file.has_csv = file.has_rows = true;
    file.csv.data = (uint8_t *)data;
    file.csv.len = len;
    file.encoding = sjis ? "shift_jis" : "utf-8";
    file.filename = "faqs.csv";
    file.rows = rows;
    ncc_reply_message(reply, &file.base);
    free(data);
}

void faq_csv_register(faq_t *self)
{
    ncc_service_on(self->service, &ncc__faq__import_faqs__descriptor, S_EDITORS, s_on_import, self);
    ncc_service_on(self->service, &ncc__faq__export_faqs__descriptor, S_EDITORS, s_on_export, self);
}
