/* fuzz_csv: libFuzzer target for the CSV reader, the encoding detection and
 * the writer (common/src/csv.c).
 *
 * Input: one selector byte, then CSV bytes.
 *   selector & 3:         reader encoding (0 and 3 AUTO, 1 UTF-8, 2 CP932);
 *   selector & 4:         small limits (64-byte fields, 8 fields, 64 records,
 *                         128-byte lines) instead of the defaults;
 *   (selector >> 3) & 3:  stream piece size (1, 3, 17 or 4096 bytes);
 *   selector & 0x20:      the writer encodes CP932;
 *   selector & 0x40:      the writer's formula defence is off;
 *   selector & 0x80:      BOM (UTF-8) or replacement (CP932).
 * Properties checked (abort() on violation, so libFuzzer reports a crash):
 *   - every record has 1..max_fields fields of valid UTF-8 without NUL, each
 *     at most max_field_bytes, with line numbers that never go backwards;
 *   - an error is -EINVAL, -E2BIG or -EILSEQ with a known code, a line and a
 *     message, and stays;
 *   - the same input read as a stream in pieces gives exactly the same
 *     records and error;
 *   - with AUTO and default limits: ncc_csv_detect_encoding agrees with the
 *     reader (same encoding, or the same encoding error), and the text from
 *     ncc_csv_to_utf8 read as UTF-8 gives the same records and error;
 *   - the records written by the writer and read back give the same fields,
 *     after the formula defence ("'" in front) and, for CP932, after a
 *     character-by-character CP932 round trip done here with iconv;
 *   - no leaks (LeakSanitizer) and no undefined behaviour (UBSan).
 * Build and run: `make BUILD=build/fuzz fuzz` (fuzz/module.mk). */
#include <errno.h>
#include <iconv.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ncc/csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_csv: %s:%d: %s\n", __FILE__, __LINE__, #cond);                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* ---- a growable byte string ----------------------------------------------------- */

typedef struct {
    char *text;
    size_t len;
} s_buf_t;

static void s_put(s_buf_t *b, const void *bytes, size_t n)
{
    char *grown = realloc(b->text, b->len + n + 1);
    CHECK(grown);
    b->text = grown;
    memcpy(b->text + b->len, bytes, n);
    b->len += n;
    b->text[b->len] = '\0';
}

static void s_put_size(s_buf_t *b, size_t v)
{
    s_put(b, &v, sizeof v);
}

/* ---- records ------------------------------------------------------------------- */

/* All records of a reader: fields as (length, bytes), then the end. */
typedef struct {
    s_buf_t dump;      /* everything, for comparing two readers */
    char **fields;     /* every field of every record, in order (owned) */
    size_t nfields;    /* entries in fields */
    size_t *row_sizes; /* fields per record (owned) */
    size_t nrows;
    int rc;                /* the final result */
    ncc_csv_error_t error; /* the final error */
    ncc_csv_encoding_t encoding;
} s_result_t;

static void s_result_free(s_result_t *r)
{
    for (size_t i = 0; i < r->nfields; i++)
        free(r->fields[i]);
    free(r->fields);
    free(r->row_sizes);
    free(r->dump.text);
    memset(r, 0, sizeof *r);
}

/* Independent strict UTF-8 check (RFC 3629 table 3-7). */
static bool s_valid_utf8(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        uint32_t cp;
        size_t k;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            k = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            k = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i <= k)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
        if (cp < min[k] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += k + 1;
    }
    return true;
}

static bool s_known_code(const char *code)
{
    static const char *const codes[] = {
        "unterminated_quote", "stray_quote",      "text_after_quote",
        "field_too_long",     "too_many_fields",  "too_many_records",
        "line_too_long",      "invalid_encoding", "mixed_encoding"};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (strcmp(code, codes[i]) == 0)
            return true;
    return false;
}

static void s_collect(ncc_csv_reader_t *reader, const ncc_csv_options_t *o, s_result_t *r)
{
    size_t last_line = 0;
    size_t max_fields = o && o->max_fields ? o->max_fields : NCC_CSV_DEFAULT_MAX_FIELDS;
    size_t max_bytes =
        o && o->max_field_bytes ? o->max_field_bytes : NCC_CSV_DEFAULT_MAX_FIELD_BYTES;
    int rc;

    CHECK(reader);
    while ((rc = ncc_csv_reader_next(reader)) == 1) {
        size_t count = ncc_csv_reader_count(reader);
        size_t line = ncc_csv_reader_line(reader);
        CHECK(count >= 1 && count <= max_fields);
        CHECK(line > last_line);
        last_line = line;
        s_put_size(&r->dump, line);
        s_put_size(&r->dump, count);
        r->row_sizes = realloc(r->row_sizes, (r->nrows + 1) * sizeof *r->row_sizes);
        r->fields = realloc(r->fields, (r->nfields + count) * sizeof *r->fields);
        CHECK(r->row_sizes && r->fields);
        r->row_sizes[r->nrows++] = count;
        for (size_t i = 0; i < count; i++) {
            size_t len = 0;
            const char *field = ncc_csv_reader_field(reader, i, &len);
            CHECK(field && strlen(field) == len && len <= max_bytes);
            CHECK(s_valid_utf8((const uint8_t *)field, len));
            s_put_size(&r->dump, len);
            s_put(&r->dump, field, len);
            r->fields[r->nfields] = malloc(len + 1);
            CHECK(r->fields[r->nfields]);
            memcpy(r->fields[r->nfields++], field, len + 1);
        }
        CHECK(ncc_csv_reader_field(reader, count, NULL) == NULL);
    }
    const ncc_csv_error_t *err = ncc_csv_reader_error(reader);
    r->rc = rc;
    r->error = *err;
    r->encoding = ncc_csv_reader_encoding(reader);
    if (rc == 0) {
        CHECK(err->code[0] == '\0');
        CHECK(r->encoding == NCC_CSV_UTF8 || r->encoding == NCC_CSV_CP932);
    } else {
        CHECK(rc == -EINVAL || rc == -E2BIG || rc == -EILSEQ);
        CHECK(s_known_code(err->code) && err->message[0] != '\0' && err->line >= 1);
        CHECK(ncc_csv_reader_next(reader) == rc);
        CHECK(ncc_csv_reader_count(reader) == 0);
    }
    s_put(&r->dump, &rc, sizeof rc);
    s_put(&r->dump, err, sizeof *err);
}

/* ---- streams -------------------------------------------------------------------- */

typedef struct {
    const uint8_t *data;
    size_t len;
    size_t pos;
    size_t piece;
} s_source_t;

static ssize_t s_source_read(void *arg, void *buf, size_t len)
{
    s_source_t *src = arg;
    size_t n = src->len - src->pos;
    if (n > src->piece)
        n = src->piece;
    if (n > len)
        n = len;
    memcpy(buf, src->data + src->pos, n);
    src->pos += n;
    return (ssize_t)n;
}

/* ---- the expected writer output ---------------------------------------------------- */

/* The field as the writer should make it, read back: CP932 round trip (each
 * character on its own; '?' for one CP932 lacks with `replace`), then the
 * formula defence. False when a character is not CP932 and !replace. */
static bool s_expected(const char *field, size_t len, bool cp932, bool replace, bool guard,
                       iconv_t to, iconv_t from, s_buf_t *out)
{
    s_buf_t encoded = {0};
    s_put(&encoded, "", 0);
    if (cp932) {
        size_t i = 0;
        while (i < len) {
            uint8_t c = (uint8_t)field[i];
            size_t k = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
            char one[8];
            char *src = (char *)field + i, *dst = one;
            size_t src_left = k, dst_left = sizeof one;
            iconv(to, NULL, NULL, NULL, NULL);
            if (iconv(to, &src, &src_left, &dst, &dst_left) == (size_t)-1) {
                if (!replace) {
                    free(encoded.text);
                    return false;
                }
                s_put(&encoded, "?", 1);
            } else {
                s_put(&encoded, one, sizeof one - dst_left);
            }
            i += k;
        }
    } else {
        s_put(&encoded, field, len);
    }
    bool plain = true; /* [+-]?[0-9]+(\.[0-9]+)? */
    {
        const char *s = encoded.text;
        size_t n = encoded.len, i = 0, d;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        for (d = i; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            ;
        if (i == d)
            plain = false;
        if (plain && i < n && s[i] == '.') {
            for (d = ++i; i < n && s[i] >= '0' && s[i] <= '9'; i++)
                ;
            if (i == d)
                plain = false;
        }
        if (i != n)
            plain = false;
    }
    if (guard && encoded.len > 0 && strchr("=+-@\t\r", encoded.text[0]) && !plain)
        s_put(out, "'", 1);
    if (cp932) {
        /* Back to UTF-8, as the reader will. */
        char *back = malloc(3 * encoded.len + 8);
        CHECK(back);
        char *src = encoded.text, *dst = back;
        size_t src_left = encoded.len, dst_left = 3 * encoded.len + 8;
        iconv(from, NULL, NULL, NULL, NULL);
        CHECK(iconv(from, &src, &src_left, &dst, &dst_left) != (size_t)-1);
        s_put(out, back, (size_t)(dst - back));
        free(back);
    } else {
        s_put(out, encoded.text, encoded.len);
    }
    free(encoded.text);
    return true;
}

/* Writes every record, reads the output back and compares. */
static void s_round_trip(const s_result_t *r, uint8_t selector)
{
    bool cp932 = selector & 0x20, guard = !(selector & 0x40), extra = selector & 0x80;
    unsigned flags = (cp932 ? NCC_CSV_WRITE_CP932 : 0) |
                     (guard ? 0 : NCC_CSV_WRITE_NO_FORMULA_GUARD) |
                     (extra ? (cp932 ? NCC_CSV_WRITE_CP932_REPLACE : NCC_CSV_WRITE_BOM) : 0);
    /* Opened once: iconv_open loads a gconv module each time. */
    static iconv_t to = (iconv_t)-1, from = (iconv_t)-1;
    if (to == (iconv_t)-1)
        to = iconv_open("CP932", "UTF-8");
    if (from == (iconv_t)-1)
        from = iconv_open("UTF-8", "CP932");
    CHECK(to != (iconv_t)-1 && from != (iconv_t)-1);
    ncc_csv_writer_t *writer = ncc_csv_writer_new(flags, NULL, NULL);
    CHECK(writer);

    s_buf_t *expected = calloc(r->nfields + 1, sizeof *expected);
    CHECK(expected);
    size_t f = 0;
    for (size_t row = 0; row < r->nrows; row++) {
        for (size_t i = 0; i < r->row_sizes[row]; i++, f++) {
            const char *field = r->fields[f];
            size_t len = strlen(field);
            bool ok = s_expected(field, len, cp932, extra, guard, to, from, &expected[f]);
            int rc = ncc_csv_writer_field(writer, field, len);
            if (ok) {
                CHECK(rc == 0);
            } else {
                /* Not CP932: refused, naming this row and field; write "" instead. */
                const ncc_csv_error_t *err = ncc_csv_writer_error(writer);
                CHECK(rc == -EILSEQ && strcmp(err->code, "unrepresentable") == 0);
                CHECK(err->line == row + 1 && err->column == i + 1);
                CHECK(ncc_csv_writer_field(writer, "", 0) == 0);
                s_put(&expected[f], "", 0);
            }
        }
        CHECK(ncc_csv_writer_end_row(writer) == 0);
    }
    CHECK(ncc_csv_writer_rows(writer) == r->nrows);
    size_t len = 0;
    char *out = ncc_csv_writer_take(writer, &len);
    CHECK(out);
    ncc_csv_writer_destroy(&writer);

    ncc_csv_options_t o = {.encoding = cp932 ? NCC_CSV_CP932 : NCC_CSV_UTF8,
                           .max_field_bytes = SIZE_MAX / 4,
                           .max_fields = SIZE_MAX / 4,
                           .max_records = SIZE_MAX / 4,
                           .max_line_bytes = SIZE_MAX / 4};
    ncc_csv_reader_t *reader = ncc_csv_reader_new(out, len, &o);
    CHECK(reader);
    f = 0;
    for (size_t row = 0; row < r->nrows; row++) {
        CHECK(ncc_csv_reader_next(reader) == 1);
        CHECK(ncc_csv_reader_count(reader) == r->row_sizes[row]);
        for (size_t i = 0; i < r->row_sizes[row]; i++, f++) {
            size_t flen = 0;
            const char *field = ncc_csv_reader_field(reader, i, &flen);
            const char *want = expected[f].text ? expected[f].text : "";
            CHECK(flen == expected[f].len && memcmp(field, want, flen) == 0);
        }
    }
    CHECK(ncc_csv_reader_next(reader) == 0);
    ncc_csv_reader_destroy(&reader);
    for (size_t i = 0; i < r->nfields; i++)
        free(expected[i].text);
    free(expected);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t pieces[] = {1, 3, 17, 4096};
    if (size < 1)
        return 0;
    uint8_t selector = data[0];
    const uint8_t *input = data + 1;
    size_t len = size - 1;
    ncc_csv_options_t o = {0};
    static const ncc_csv_encoding_t encodings[] = {NCC_CSV_AUTO, NCC_CSV_UTF8, NCC_CSV_CP932,
                                                   NCC_CSV_AUTO};
    o.encoding = encodings[selector & 3];
    bool small = selector & 4;
    if (small) {
        o.max_field_bytes = 64;
        o.max_fields = 8;
        o.max_records = 64;
        o.max_line_bytes = 128;
    }

    s_result_t buffer = {0}, stream = {0};
    ncc_csv_reader_t *reader = ncc_csv_reader_new(input, len, &o);
    s_collect(reader, &o, &buffer);
    ncc_csv_reader_destroy(&reader);

    s_source_t src = {.data = input, .len = len, .piece = pieces[(selector >> 3) & 3]};
    reader = ncc_csv_reader_new_stream(s_source_read, &src, &o);
    s_collect(reader, &o, &stream);
    ncc_csv_reader_destroy(&reader);
    CHECK(buffer.dump.len == stream.dump.len &&
          memcmp(buffer.dump.text, stream.dump.text, buffer.dump.len) == 0);
    CHECK(buffer.encoding == stream.encoding);

    if (o.encoding == NCC_CSV_AUTO && !small) {
        ncc_csv_encoding_t detected = NCC_CSV_AUTO;
        ncc_csv_error_t err;
        int rc = ncc_csv_detect_encoding(input, len, &detected, &err);
        CHECK(rc == 0 || rc == -EILSEQ);
        if (buffer.rc == -EILSEQ) {
            CHECK(rc == -EILSEQ && err.line == buffer.error.line &&
                  strcmp(err.code, buffer.error.code) == 0);
        } else if (rc == -EILSEQ) {
            CHECK(buffer.rc < 0 && buffer.error.line <= err.line);
        } else if (buffer.rc == 0) {
            CHECK(detected == buffer.encoding);
        }
        if (rc == 0) {
            char *text = NULL;
            size_t text_len = 0;
            CHECK(ncc_csv_to_utf8(input, len, NCC_CSV_AUTO, &text, &text_len, &err) == 0);
            CHECK(strlen(text) == text_len);
            ncc_csv_options_t utf8 = {.encoding = NCC_CSV_UTF8};
            s_result_t converted = {0};
            reader = ncc_csv_reader_new(text, text_len, &utf8);
            s_collect(reader, &utf8, &converted);
            ncc_csv_reader_destroy(&reader);
            CHECK(converted.dump.len == buffer.dump.len &&
                  memcmp(converted.dump.text, buffer.dump.text, buffer.dump.len) == 0);
            s_result_free(&converted);
            free(text);
        }
    }

    s_round_trip(&buffer, selector);
    s_result_free(&buffer);
    s_result_free(&stream);
    return 0;
}
