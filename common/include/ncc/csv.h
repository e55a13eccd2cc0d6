/* csv: RFC 4180 CSV for the imports (masters, FAQ, offline records) and the
 * exports, with the encodings Excel on Japanese Windows uses. Nothing here
 * logs; errors come back as -errno plus an ncc_csv_error_t naming the line.
 * See docs/csv.md.
 *
 * Reading: one record at a time from a memory buffer (borrowed, not copied)
 * or from a stream (a read callback, an fd or a FILE *), so the whole parse is
 * never held in memory: the reader keeps one record, one physical line and, for
 * streams, a read-ahead window.
 *   - fields separated by ',', records by CRLF, LF or a lone CR;
 *   - quoted fields with "" for a quote and CR/LF kept as they are inside;
 *   - strict: a quote inside an unquoted field, text after a closing quote or
 *     an unterminated quote are errors with line and column;
 *   - a UTF-8 byte order mark at the start is skipped (two or more too);
 *     blank lines are skipped (write a single empty field as "");
 *   - line numbers are physical lines (1-based) counting every CRLF, LF or CR,
 *     also those inside quotes; columns count characters (code points) in the
 *     physical line, 1-based;
 *   - every field comes out as NUL-terminated UTF-8 without NUL bytes.
 *
 * Encodings (NCC_CSV_AUTO): a UTF-8 BOM means UTF-8. Otherwise the first line
 * that tells decides: a line that is valid UTF-8 and holds a character of 3 or
 * more bytes (all Japanese text does), or that is valid UTF-8 but not CP932,
 * means UTF-8; a line that is not valid UTF-8 but converts cleanly from CP932
 * (glibc iconv "CP932") means CP932. Lines of ASCII only, or of 2-byte UTF-8
 * characters that are also valid CP932 (e.g. "ﾃｽ" in CP932, bytes C3 BD, which
 * read as "ý" in UTF-8), do not decide: the reader looks ahead (at most
 * max_line_bytes) for a line that does, and takes UTF-8 if none does. After
 * the decision, a line in the other encoding is -EILSEQ "mixed_encoding", a
 * line in neither is -EILSEQ "invalid_encoding"; both name the line. A NUL
 * byte is never accepted. Output is always UTF-8. */
#ifndef NCC_CSV_H
#define NCC_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

typedef enum {
    NCC_CSV_AUTO = 0,  /* detect (see above); readers only */
    NCC_CSV_UTF8 = 1,  /* UTF-8, with or without a BOM */
    NCC_CSV_CP932 = 2, /* Shift_JIS as Microsoft extends it (NEC and IBM extensions) */
} ncc_csv_encoding_t;

/* Default limits (used for a 0 in ncc_csv_options_t). */
#define NCC_CSV_DEFAULT_MAX_FIELD_BYTES (128u * 1024u)  /* one field, as UTF-8 */
#define NCC_CSV_DEFAULT_MAX_FIELDS      256u            /* fields per record */
#define NCC_CSV_DEFAULT_MAX_RECORDS     1000000u        /* records per input */
#define NCC_CSV_DEFAULT_MAX_LINE_BYTES  (1024u * 1024u) /* one physical line, as read */

/* What went wrong and where, for an import's error list. Messages are
 * sentences for people; they name lines, columns and limits but never echo
 * the data. */
typedef struct {
    char code[24];     /* "unterminated_quote", "stray_quote", "text_after_quote",
                          "field_too_long", "too_many_fields", "too_many_records",
                          "line_too_long", "invalid_encoding", "mixed_encoding", "read_error",
                          "out_of_memory"; "" when there is no error */
    size_t line;       /* physical line, 1-based (writer: row, 1-based); 0 if none */
    size_t column;     /* character in that line, 1-based (writer: field, 1-based); 0 if none */
    char message[200]; /* e.g. "line 12, column 7: a quote inside an unquoted field" */
} ncc_csv_error_t;

/* ---- reader ------------------------------------------------------------------- */

typedef struct {
    ncc_csv_encoding_t encoding; /* NCC_CSV_AUTO (0) detects */
    size_t max_field_bytes;      /* longer field: -E2BIG "field_too_long" */
    size_t max_fields;           /* more fields in a record: -E2BIG "too_many_fields" */
    size_t max_records;          /* more records: -E2BIG "too_many_records" */
    size_t max_line_bytes;       /* longer physical line: -E2BIG "line_too_long" */
} ncc_csv_options_t;

typedef struct ncc_csv_reader ncc_csv_reader_t;

/* Reads up to `len` bytes into buf: the count, 0 at the end, or -errno. */
typedef ssize_t (*ncc_csv_read_fn)(void *arg, void *buf, size_t len);

/* A reader over `len` bytes at `data` (borrowed: must outlive the reader).
 * `options` may be NULL (all defaults; copied). NULL only when out of memory. */
ncc_csv_reader_t *ncc_csv_reader_new(const void *data, size_t len,
                                     const ncc_csv_options_t *options);

/* A reader pulling from `read` (called with `arg`, borrowed) in chunks. NULL
 * only when out of memory or `read` is NULL. */
ncc_csv_reader_t *ncc_csv_reader_new_stream(ncc_csv_read_fn read, void *arg,
                                            const ncc_csv_options_t *options);

/* A reader over an open fd (borrowed, not closed; EINTR retried). */
ncc_csv_reader_t *ncc_csv_reader_new_fd(int fd, const ncc_csv_options_t *options);

/* A reader over an open FILE * (borrowed, not closed). */
ncc_csv_reader_t *ncc_csv_reader_new_file(FILE *file, const ncc_csv_options_t *options);

/* Frees the reader and its current record. Accepts NULL; nulls *self_p. */
void ncc_csv_reader_destroy(ncc_csv_reader_t **self_p);

/* Reads the next record: 1 when there is one, 0 at the end of the input, or
 *   -EINVAL  malformed CSV (unterminated_quote, stray_quote, text_after_quote),
 *   -E2BIG   a limit (field_too_long, too_many_fields, too_many_records, line_too_long),
 *   -EILSEQ  encoding (invalid_encoding, mixed_encoding; a NUL byte is invalid),
 *   -ENOMEM, or the read callback's error (read_error),
 * with ncc_csv_reader_error() filled. Errors are final: every later call
 * returns the same one. The previous record's fields are invalid afterwards. */
int ncc_csv_reader_next(ncc_csv_reader_t *self);

/* Fields in the current record (at least 1), 0 when there is none. */
size_t ncc_csv_reader_count(const ncc_csv_reader_t *self);

/* Field `index` (0-based) of the current record: NUL-terminated UTF-8 with
 * *ret_len bytes (ret_len may be NULL), borrowed until the next call to
 * ncc_csv_reader_next or destroy; NULL when index >= count. */
const char *ncc_csv_reader_field(const ncc_csv_reader_t *self, size_t index, size_t *ret_len);

/* The physical line (1-based) where the current record starts; 0 if none. */
size_t ncc_csv_reader_line(const ncc_csv_reader_t *self);

/* Records returned so far (the current one is number ncc_csv_reader_records). */
size_t ncc_csv_reader_records(const ncc_csv_reader_t *self);

/* The encoding of the input: NCC_CSV_AUTO while undecided (nothing but ASCII
 * so far), then NCC_CSV_UTF8 or NCC_CSV_CP932. */
ncc_csv_encoding_t ncc_csv_reader_encoding(const ncc_csv_reader_t *self);

/* The last error (borrowed; code "" when there is none). */
const ncc_csv_error_t *ncc_csv_reader_error(const ncc_csv_reader_t *self);

/* ---- encodings of a whole input ----------------------------------------------- */

/* Decides the encoding of `len` bytes as NCC_CSV_AUTO readers do (see the top
 * of this file; ASCII only and empty input are UTF-8). 0 with *ret_encoding
 * (NCC_CSV_UTF8 or NCC_CSV_CP932), or -EILSEQ with err (may be NULL) naming
 * the first bad line and column, -ENOMEM, -EINVAL on NULL arguments. The
 * whole input is checked, without CSV parsing and without copying it. */
int ncc_csv_detect_encoding(const void *data, size_t len, ncc_csv_encoding_t *ret_encoding,
                            ncc_csv_error_t *err);

/* The whole input as UTF-8 without a BOM (caller frees; NUL-terminated,
 * *ret_len bytes without the NUL, ret_len may be NULL), from `from`
 * (NCC_CSV_AUTO detects). Line ends are kept as they are. Errors as
 * ncc_csv_detect_encoding; *ret_text is written only on success. */
int ncc_csv_to_utf8(const void *data, size_t len, ncc_csv_encoding_t from, char **ret_text,
                    size_t *ret_len, ncc_csv_error_t *err);

/* ---- writer ------------------------------------------------------------------- */

enum {
    /* Start with a UTF-8 byte order mark: Excel needs it to open a UTF-8 CSV
     * as UTF-8 (ignored with NCC_CSV_WRITE_CP932). */
    NCC_CSV_WRITE_BOM = 1u << 0,
    /* Encode as CP932 (for Excel on Japanese Windows without a BOM). A
     * character CP932 lacks is -EILSEQ naming the row and field. */
    NCC_CSV_WRITE_CP932 = 1u << 1,
    /* With NCC_CSV_WRITE_CP932: write '?' for a character CP932 lacks. */
    NCC_CSV_WRITE_CP932_REPLACE = 1u << 2,
    /* Turn off the formula defence (for machine-to-machine CSV only). */
    NCC_CSV_WRITE_NO_FORMULA_GUARD = 1u << 3,
};

typedef struct ncc_csv_writer ncc_csv_writer_t;

/* Receives `len` bytes of output: 0 or -errno (the writer then stops). */
typedef int (*ncc_csv_sink_fn)(void *arg, const void *data, size_t len);

/* A writer with NCC_CSV_WRITE_* flags. With `sink` NULL it appends to its own
 * growable buffer (ncc_csv_writer_data, ncc_csv_writer_take); otherwise it
 * hands rows to sink(arg, ...) in pieces of about 64 KiB (call
 * ncc_csv_writer_flush at the end). Rows end in CRLF. A field is quoted when
 * it holds a comma, a quote, CR or LF, starts or ends with a space or a tab,
 * starts with U+FEFF (a reader would skip it as a byte order mark), or is the
 * only field of its row and empty. The formula defence (on unless
 * NCC_CSV_WRITE_NO_FORMULA_GUARD) puts a ' before a field starting with = + -
 * @ TAB or CR, unless the field is a plain number ([+-]?digits[.digits]).
 * NULL when out of memory or when iconv lacks CP932. */
ncc_csv_writer_t *ncc_csv_writer_new(unsigned flags, ncc_csv_sink_fn sink, void *arg);

/* Frees the writer and any output not taken (nothing is flushed). Accepts
 * NULL; nulls *self_p. */
void ncc_csv_writer_destroy(ncc_csv_writer_t **self_p);

/* Adds a field of `len` bytes of UTF-8 (value may be NULL when len is 0) to
 * the current row. 0; -EINVAL when it holds a NUL byte, -EILSEQ when it is
 * not UTF-8 or (CP932 without replacement) holds a character CP932 lacks,
 * with ncc_csv_writer_error naming the row and field; the row is then left
 * as it was and the writer can go on. -ENOMEM; a sink's earlier error. */
int ncc_csv_writer_field(ncc_csv_writer_t *self, const char *value, size_t len);

/* As ncc_csv_writer_field with a NUL-terminated value (NULL counts as ""). */
int ncc_csv_writer_field_str(ncc_csv_writer_t *self, const char *value);

/* Ends the current row (CRLF). -EINVAL when it has no field; -ENOMEM; the
 * sink's error (final). */
int ncc_csv_writer_end_row(ncc_csv_writer_t *self);

/* Adds `count` NUL-terminated fields (NULL counts as "") and ends the row;
 * on a field error nothing of the row is kept. Errors as above. */
int ncc_csv_writer_row(ncc_csv_writer_t *self, const char *const *values, size_t count);

/* Sink mode: hands everything buffered to the sink. 0 or the sink's error.
 * Buffer mode: 0. */
int ncc_csv_writer_flush(ncc_csv_writer_t *self);

/* Buffer mode: the output so far (borrowed until the next call on the
 * writer; not NUL-terminated), *ret_len bytes. NULL in sink mode. */
const char *ncc_csv_writer_data(const ncc_csv_writer_t *self, size_t *ret_len);

/* Buffer mode: the output so far, NUL-terminated (caller frees; *ret_len
 * without the NUL, ret_len may be NULL); the writer's buffer is then empty
 * and writing goes on. NULL in sink mode or when out of memory. */
char *ncc_csv_writer_take(ncc_csv_writer_t *self, size_t *ret_len);

/* Rows ended so far. */
size_t ncc_csv_writer_rows(const ncc_csv_writer_t *self);

/* The last field error (borrowed; code "" when there is none): code
 * "invalid_encoding", "unrepresentable", "nul_byte", "empty_row", "sink_error"
 * or "out_of_memory"; line = row, column = field, both 1-based. */
const ncc_csv_error_t *ncc_csv_writer_error(const ncc_csv_writer_t *self);

#endif
