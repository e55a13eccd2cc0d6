/* masters_csv: the CSV side of the masters. Import files come as UTF-8 (with
 * or without a BOM) or Shift_JIS from Excel, detected by ncc/csv.h; the
 * header must be the kind's columns exactly; every value is checked and
 * every bad line listed. Exports are UTF-8 with a BOM (or Shift_JIS), CRLF,
 * with the formula defence; the importer takes its own exports back. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "masters.h"
#include "ncc/csv.h"

#define S_MAX_RECORDS 200000 /* rows of one import (the bus caps the file at ~4 MiB) */
#define S_MAX_FIELDS  64     /* more fields in a row end the reading (a row error below) */

/* A value the export guarded against formulas ('=..., '+81-...) is read back
 * without the guard (docs/csv.md, the formula defence). */
static const char *s_unguard(const char *value)
{
    if (value[0] == '\'' && value[1] && strchr("=+-@\t\r", value[1]))
        return value + 1;
    return value;
}

/* The expected header, "code,name,...", into buf. */
static void s_header_text(const masters_kind_t *kind, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < kind->n_columns && used < len; i++)
        used +=
            (size_t)snprintf(buf + used, len - used, "%s%s", i ? "," : "", kind->columns[i].name);
}

/* Checks the header record. NULL when it is right, else what is wrong. */
static const char *s_header_check(const masters_kind_t *kind, ncc_csv_reader_t *reader, char *why,
                                  size_t len)
{
    size_t n = ncc_csv_reader_count(reader);
    for (size_t i = 0; i < kind->n_columns; i++) {
        const char *name = i < n ? ncc_csv_reader_field(reader, i, NULL) : NULL;
        if (!name) {
            snprintf(why, len, "column %zu (%s) is missing", i + 1, kind->columns[i].name);
            return why;
        }
        if (strcmp(name, kind->columns[i].name) != 0) {
            snprintf(why, len, "column %zu must be %s", i + 1, kind->columns[i].name);
            return why;
        }
    }
    if (n > kind->n_columns) {
        snprintf(why, len, "there are %zu columns, %zu expected", n, kind->n_columns);
        return why;
    }
    return NULL;
}

/* True when every field of the record is empty (a row Excel left blank). */
static bool s_blank(ncc_csv_reader_t *reader)
{
    size_t n = ncc_csv_reader_count(reader);
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        ncc_csv_reader_field(reader, i, &len);
        if (len > 0)
            return false;
    }
    return true;
}

int masters_csv_read(const masters_kind_t *kind, const uint8_t *data, size_t len,
                     masters_batch_t *batch, masters_outcome_t *out, char **ret_utf8,
                     const char **ret_encoding)
{
    char expected[256], why[160];
    char *text = NULL;
    size_t text_len = 0;
    ncc_csv_reader_t *reader = NULL;
    ncc_csv_error_t err;
    ncc_csv_encoding_t encoding = NCC_CSV_UTF8;
    const char **values = NULL;
    char(*bufs)[256] = NULL;
    int rc;

    s_header_text(kind, expected, sizeof expected);
    *ret_encoding = "utf-8";
    rc = ncc_csv_detect_encoding(data ? data : (const uint8_t *)"", len, &encoding, &err);
    if (rc == 0)
        rc = ncc_csv_to_utf8(data ? data : (const uint8_t *)"", len, encoding, &text, &text_len,
                             &err);
    if (rc == -EILSEQ) {
        masters_errors_add(&batch->errors, err.line, NULL, "%s", err.message);
        masters_refuse(
            out, 422, "invalid_csv", NULL, "the file must be UTF-8 or Shift_JIS throughout (%s)",
            strcmp(err.code, "mixed_encoding") == 0 ? "it mixes both" : "a line is in neither");
        return -EINVAL;
    }
    if (rc < 0)
        return rc == -ENOMEM ? -ENOMEM : -EINVAL;
    *ret_encoding = encoding == NCC_CSV_CP932 ? "shift_jis" : "utf-8";

    ncc_csv_options_t options = {
        .encoding = NCC_CSV_UTF8, .max_fields = S_MAX_FIELDS, .max_records = S_MAX_RECORDS};
    reader = ncc_csv_reader_new(text, text_len, &options);
    values = calloc(kind->n_columns, sizeof *values);
    bufs = calloc(kind->n_columns, sizeof *bufs);
    if (!reader || !values || !bufs) {
        rc = -ENOMEM;
        goto out;
    }
    rc = ncc_csv_reader_next(reader);
    if (rc == 0) {
        masters_refuse(out, 400, "invalid_header", NULL,
                       "the file is empty: its first line must be the header %s", expected);
        rc = -EINVAL;
        goto out;
    }
    if (rc < 0) {
        const ncc_csv_error_t *e = ncc_csv_reader_error(reader);
        masters_errors_add(&batch->errors, e->line, NULL, "%s", e->message);
        masters_refuse(out, 422, "invalid_csv", NULL, "the file is not well-formed CSV");
        rc = -EINVAL;
        goto out;
    }
    if (s_header_check(kind, reader, why, sizeof why)) {
        masters_refuse(out, 400, "invalid_header", "header", "the header must be exactly %s (%s)",
                       expected, why);
        rc = -EINVAL;
        goto out;
    }

    while ((rc = ncc_csv_reader_next(reader)) == 1) {
        size_t line = ncc_csv_reader_line(reader);
        size_t n = ncc_csv_reader_count(reader);
        if (s_blank(reader))
            continue;
        if (n != kind->n_columns) {
            masters_errors_add(&batch->errors, line, NULL, "%zu fields where the header has %zu", n,
                               kind->n_columns);
            continue;
        }
        bool ok = true;
        for (size_t i = 0; i < n; i++) {
            const masters_column_t *column = &kind->columns[i];
            const char *raw = s_unguard(ncc_csv_reader_field(reader, i, NULL));
            const char *problem =
                masters_value_check(column, raw, bufs[i], sizeof bufs[i], &values[i]);
            if (problem) {
                masters_errors_add(&batch->errors, line, column->name, "%s", problem);
                ok = false;
            }
        }
        if (ok)
            masters_batch_add_row(batch, line, values);
    }
    if (rc < 0) {
        /* Unreadable from here on (a quote left open, a limit): listed too. */
        const ncc_csv_error_t *e = ncc_csv_reader_error(reader);
        if (rc == -ENOMEM)
            goto out;
        masters_errors_add(&batch->errors, e->line, NULL, "%s", e->message);
    }
    if (batch->copy.failed || batch->errors.failed) {
        rc = -ENOMEM;
        goto out;
    }
    rc = 0;
    if (ret_utf8) {
        *ret_utf8 = text;
        text = NULL;
    }
out:
    ncc_csv_reader_destroy(&reader);
    free(values);
    free(bufs);
    free(text);
    return rc;
}

/* ---- export ---------------------------------------------------------------------------------- */

int masters_csv_export(directory_t *dir, const masters_kind_t *kind, const char *where, int nparams,
                       const char *const *params, const char *order, bool cp932, char **ret_csv,
                       size_t *ret_len, size_t *ret_rows)
{
    masters_buf_t sql = {0};
    ncc_csv_writer_t *writer = NULL;
    PGresult *res = NULL;
    const char **fields = NULL;
    int rc = -ENOMEM;

    masters_sql_export(&sql, kind, where, order);
    if (sql.failed)
        goto out;
    res = ncc_db_exec(dir->db, sql.data, nparams, params, NULL);
    if (!res) {
        rc = -EIO;
        goto out;
    }
    unsigned flags = cp932 ? NCC_CSV_WRITE_CP932 | NCC_CSV_WRITE_CP932_REPLACE : NCC_CSV_WRITE_BOM;
    writer = ncc_csv_writer_new(flags, NULL, NULL);
    fields = calloc(kind->n_columns, sizeof *fields);
    if (!writer || !fields)
        goto out;
    for (size_t i = 0; i < kind->n_columns; i++)
        fields[i] = kind->columns[i].name;
    if (ncc_csv_writer_row(writer, fields, kind->n_columns) < 0)
        goto out;
    int rows = PQntuples(res);
    for (int r = 0; r < rows; r++) {
        for (size_t i = 0; i < kind->n_columns; i++)
            fields[i] = PQgetvalue(res, r, (int)i);
        if (ncc_csv_writer_row(writer, fields, kind->n_columns) < 0) {
            rc = -EIO; /* stored text that is not UTF-8: cannot happen */
            goto out;
        }
    }
    size_t len = 0;
    char *csv = ncc_csv_writer_take(writer, &len);
    if (!csv)
        goto out;
    *ret_csv = csv;
    *ret_len = len;
    *ret_rows = (size_t)rows;
    rc = 0;
out:
    masters_buf_free(&sql);
    ncc_csv_writer_destroy(&writer);
    PQclear(res);
    free(fields);
    return rc;
}
