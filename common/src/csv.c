/* csv: RFC 4180 reader and writer with UTF-8 / CP932 detection (see ncc/csv.h
 * and docs/csv.md). Nothing here logs.
 *
 * The reader has two layers. The line layer hands out one physical line at a
 * time (content and terminator), already checked and converted to UTF-8; it
 * owns the raw input window, the encoding decision and the line numbers. The
 * record layer is a small state machine over those lines; a quoted field
 * carries its state from one line to the next, so every byte is looked at once
 * and a record never needs the input after it. */
#include "ncc/csv.h"

#include <errno.h>
#include <iconv.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_READ_CHUNK (64 * 1024) /* bytes asked of a stream at a time */
#define S_SINK_CHUNK (64 * 1024) /* writer output handed to the sink at a time */
#define S_NO_ICONV   ((iconv_t)-1)

static const uint8_t s_bom[3] = {0xef, 0xbb, 0xbf};

/* ---- small helpers ------------------------------------------------------------ */

/* Grows *buf (capacity *cap) to hold at least `need` bytes. 0 or -ENOMEM. */
static int s_reserve(void **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t size = *cap ? *cap : 256;
    while (size < need) {
        if (size > SIZE_MAX / 2) {
            size = need;
            break;
        }
        size *= 2;
    }
    void *grown = realloc(*buf, size);
    if (!grown)
        return -ENOMEM;
    *buf = grown;
    *cap = size;
    return 0;
}

static void s_error_set(ncc_csv_error_t *err, const char *code, size_t line, size_t column,
                        const char *fmt, va_list args)
{
    if (!err)
        return;
    size_t used = 0;

    memset(err, 0, sizeof *err);
    snprintf(err->code, sizeof err->code, "%s", code);
    err->line = line;
    err->column = column;
    if (line > 0 && column > 0)
        used = (size_t)snprintf(err->message, sizeof err->message, "line %zu, column %zu: ", line,
                                column);
    else if (line > 0)
        used = (size_t)snprintf(err->message, sizeof err->message, "line %zu: ", line);
    if (used < sizeof err->message)
        vsnprintf(err->message + used, sizeof err->message - used, fmt, args);
}

/* ---- UTF-8 -------------------------------------------------------------------- */

typedef struct {
    size_t bad;     /* offset of the first byte that is not valid UTF-8 (or NUL); len if none */
    bool nonascii;  /* a byte >= 0x80 before `bad` */
    bool long_char; /* a character of 3 or 4 bytes before `bad` */
} s_utf8_scan_t;

/* Strict UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF);
 * a NUL byte counts as invalid unless nul_ok. */
static void s_utf8_scan(const uint8_t *s, size_t len, bool nul_ok, s_utf8_scan_t *ret)
{
    size_t i = 0;

    ret->nonascii = false;
    ret->long_char = false;
    while (i < len) {
        uint8_t c = s[i];
        if (c < 0x80 && (c != 0 || nul_ok)) {
            i++;
            continue;
        }
        size_t n;
        uint8_t lo = 0x80, hi = 0xbf; /* range of the second byte */
        if (c >= 0xc2 && c <= 0xdf)
            n = 2;
        else if (c >= 0xe0 && c <= 0xef)
            n = 3;
        else if (c >= 0xf0 && c <= 0xf4)
            n = 4;
        else
            break; /* NUL, continuation byte, C0/C1, F5..FF */
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
        else if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
        if (len - i < n || s[i + 1] < lo || s[i + 1] > hi)
            break;
        size_t k = 2;
        while (k < n && s[i + k] >= 0x80 && s[i + k] <= 0xbf)
            k++;
        if (k < n)
            break;
        ret->nonascii = true;
        if (n >= 3)
            ret->long_char = true;
        i += n;
    }
    ret->bad = i;
}

/* 1-based character column of byte `offset` in UTF-8 text (bytes before it that
 * are not continuation bytes, plus one). */
static size_t s_column(const uint8_t *s, size_t offset)
{
    size_t column = 1;
    for (size_t i = 0; i < offset; i++)
        if ((s[i] & 0xc0) != 0x80)
            column++;
    return column;
}

/* Bytes of the UTF-8 character starting with `lead` (1 for a stray byte). */
static size_t s_utf8_len(uint8_t lead)
{
    if (lead >= 0xf0)
        return 4;
    if (lead >= 0xe0)
        return 3;
    if (lead >= 0xc0)
        return 2;
    return 1;
}

/* ---- CP932 -> UTF-8 ---------------------------------------------------------- */

/* Converts `len` bytes of CP932 with `cd` into *out (capacity *cap), length in
 * *ret_len. 0; -EILSEQ with *ret_column (1-based character of the bad byte;
 * a NUL byte counts as bad unless nul_ok) when it does not convert cleanly;
 * -ENOMEM. */
static int s_cp932_to_utf8(iconv_t cd, const uint8_t *in, size_t len, bool nul_ok, uint8_t **out,
                           size_t *cap, size_t *ret_len, size_t *ret_column)
{
    const uint8_t *nul = nul_ok ? NULL : memchr(in, 0, len);
    size_t convert_len = nul ? (size_t)(nul - in) : len;

    /* Every CP932 character is 1 or 2 bytes and becomes at most 3 bytes of UTF-8. */
    if (len > (SIZE_MAX - 8) / 3 || s_reserve((void **)out, cap, 3 * len + 8) != 0)
        return -ENOMEM;
    iconv(cd, NULL, NULL, NULL, NULL);
    char *src = (char *)in;
    size_t src_left = convert_len;
    char *dst = (char *)*out;
    size_t dst_left = *cap;
    size_t rc = iconv(cd, &src, &src_left, &dst, &dst_left);
    size_t produced = *cap - dst_left;
    if (rc == (size_t)-1 || nul) {
        /* EILSEQ, or EINVAL for a lead byte at the end of the line; E2BIG
         * cannot happen with 3 * len. */
        *ret_column = s_column(*out, produced);
        return -EILSEQ;
    }
    /* CP932 is stateless, so there is nothing to flush; a zero-length
     * conversion leaves *out as it is. */
    *ret_len = produced;
    return 0;
}

/* ---- reader: the line layer -------------------------------------------------------- */

/* What a line is, before the encoding is decided. */
typedef enum {
    S_LINE_ASCII,   /* nothing but ASCII: either encoding */
    S_LINE_UTF8,    /* valid UTF-8 with a long character, or valid UTF-8 and not CP932 */
    S_LINE_CP932,   /* not UTF-8, converts from CP932 */
    S_LINE_EITHER,  /* 2-byte UTF-8 characters only, and valid CP932 too */
    S_LINE_NEITHER, /* invalid in both */
} s_line_kind_t;

typedef struct {
    size_t content; /* bytes before the terminator, as read */
    size_t term;    /* terminator bytes: 0 (end of input), 1 (CR or LF) or 2 (CRLF) */
} s_span_t;

typedef struct {
    const uint8_t *text; /* the content as UTF-8 (borrowed: the window or the reader's conv) */
    size_t len;          /* bytes of text */
    const uint8_t *term; /* the terminator as read (ASCII), term_len bytes */
    size_t term_len;
    size_t number; /* physical line number */
} s_line_t;

struct ncc_csv_reader {
    ncc_csv_options_t options;   /* limits with the defaults filled in */
    const uint8_t *mem;          /* buffer mode: the input (borrowed); NULL for a stream */
    ncc_csv_read_fn read;        /* stream mode: the source */
    void *read_arg;              /* borrowed argument of read */
    int fd;                      /* ncc_csv_reader_new_fd: the fd (borrowed) */
    FILE *file;                  /* ncc_csv_reader_new_file: the FILE (borrowed) */
    uint8_t *win;                /* stream mode: bytes read, not yet consumed (owned) */
    size_t win_cap;              /* bytes allocated at win */
    size_t pos;                  /* first unconsumed byte (in mem or win) */
    size_t end;                  /* bytes available (mem length, or filled in win) */
    bool eof;                    /* nothing more to read (always true in buffer mode) */
    bool started;                /* the byte order mark has been looked for */
    ncc_csv_encoding_t encoding; /* decided encoding; NCC_CSV_AUTO while undecided */
    bool forced;                 /* the encoding came from the options */
    bool bom;                    /* the input started with a UTF-8 BOM */
    size_t decided_line;         /* the line that decided the encoding (0: BOM or options) */
    iconv_t cd;                  /* CP932 -> UTF-8, S_NO_ICONV until needed */
    uint8_t *conv;               /* one line converted to UTF-8 (owned) */
    size_t conv_cap;
    uint8_t *scratch; /* conversions made only to classify a line (owned) */
    size_t scratch_cap;
    size_t next_line;   /* physical number of the next line to hand out */
    char *data;         /* fields of the current record, each NUL-terminated (owned) */
    size_t data_len;    /* bytes used at data */
    size_t data_cap;    /* bytes allocated at data */
    size_t *offsets;    /* start of each field in data (owned) */
    size_t count;       /* fields in the current record */
    size_t offsets_cap; /* bytes allocated at offsets */
    size_t record_line; /* line where the current record starts */
    size_t records;     /* records returned */
    int rc;             /* a final error, or 0 */
    ncc_csv_error_t error;
};

static int s_fail(ncc_csv_reader_t *self, int rc, const char *code, size_t line, size_t column,
                  const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int s_fail(ncc_csv_reader_t *self, int rc, const char *code, size_t line, size_t column,
                  const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    s_error_set(&self->error, code, line, column, fmt, args);
    va_end(args);
    self->rc = rc;
    return rc;
}

static const uint8_t *s_base(const ncc_csv_reader_t *self)
{
    return self->mem ? self->mem : self->win;
}

/* Reads another chunk into the window (compacting it first). 1 when bytes
 * came, 0 at the end of the input, or the read error. */
static int s_read_more(ncc_csv_reader_t *self)
{
    if (self->eof)
        return 0;
    if (self->pos > 0) {
        memmove(self->win, self->win + self->pos, self->end - self->pos);
        self->end -= self->pos;
        self->pos = 0;
    }
    if (self->end > SIZE_MAX - S_READ_CHUNK ||
        s_reserve((void **)&self->win, &self->win_cap, self->end + S_READ_CHUNK) != 0)
        return s_fail(self, -ENOMEM, "out_of_memory", 0, 0, "out of memory");
    for (;;) {
        ssize_t n = self->read(self->read_arg, self->win + self->end, self->win_cap - self->end);
        if (n > 0 && (size_t)n <= self->win_cap - self->end) {
            self->end += (size_t)n;
            return 1;
        }
        if (n == 0) {
            self->eof = true;
            return 0;
        }
        int rc = n < 0 && n >= -4095 ? (int)n : -EIO;
        if (rc == -EINTR)
            continue;
        return s_fail(self, rc, "read_error", self->next_line, 0, "the input could not be read");
    }
}

/* Finds the line that starts `rel` bytes after pos, reading as needed (which
 * may move the window: keep offsets relative to pos). 1 with *ret_span, 0 when
 * the input ends at rel, or a negative errno (the error is set with `number`). */
static int s_find_line(ncc_csv_reader_t *self, size_t rel, size_t number, s_span_t *ret_span)
{
    size_t scanned = 0; /* bytes after rel known to hold no CR or LF */

    for (;;) {
        const uint8_t *start = s_base(self) + self->pos + rel;
        size_t avail = self->end - self->pos - rel;
        size_t max = self->options.max_line_bytes;
        size_t i = scanned;
        while (i < avail && i <= max && start[i] != '\r' && start[i] != '\n')
            i++;
        if (i < avail && i <= max) {
            /* A CR as the last byte read: the next one tells CR from CRLF. */
            bool need_more = start[i] == '\r' && i + 1 == avail && !self->eof;
            if (!need_more) {
                ret_span->content = i;
                ret_span->term = start[i] == '\r' && i + 1 < avail && start[i + 1] == '\n' ? 2 : 1;
                return 1;
            }
            scanned = i;
        } else {
            scanned = avail;
            if (avail > max)
                return s_fail(self, -E2BIG, "line_too_long", number, 0,
                              "the line is longer than %zu bytes", max);
            if (self->eof) {
                if (avail == 0)
                    return 0;
                ret_span->content = avail;
                ret_span->term = 0;
                return 1;
            }
        }
        int rc = s_read_more(self);
        if (rc < 0)
            return rc;
    }
}

static int s_open_iconv(ncc_csv_reader_t *self)
{
    if (self->cd != S_NO_ICONV)
        return 0;
    self->cd = iconv_open("UTF-8", "CP932");
    if (self->cd == S_NO_ICONV)
        return s_fail(self, -ENOTSUP, "invalid_encoding", 0, 0, "iconv cannot convert CP932");
    return 0;
}

/* The kind of `len` raw bytes (see s_line_kind_t). 0 or -ENOMEM / -ENOTSUP. */
static int s_classify(ncc_csv_reader_t *self, const uint8_t *raw, size_t len,
                      s_line_kind_t *ret_kind)
{
    s_utf8_scan_t scan;
    size_t ignored_len, ignored_column;

    /* A NUL byte does not tell the encoding; it is refused once decoded. */
    s_utf8_scan(raw, len, true, &scan);
    bool utf8 = scan.bad == len;
    if (utf8 && !scan.nonascii) {
        *ret_kind = S_LINE_ASCII;
        return 0;
    }
    if (utf8 && scan.long_char) {
        *ret_kind = S_LINE_UTF8;
        return 0;
    }
    int rc = s_open_iconv(self);
    if (rc < 0)
        return rc;
    rc = s_cp932_to_utf8(self->cd, raw, len, true, &self->scratch, &self->scratch_cap, &ignored_len,
                         &ignored_column);
    if (rc == -ENOMEM)
        return s_fail(self, rc, "out_of_memory", 0, 0, "out of memory");
    bool cp932 = rc == 0;
    if (utf8)
        *ret_kind = cp932 ? S_LINE_EITHER : S_LINE_UTF8;
    else
        *ret_kind = cp932 ? S_LINE_CP932 : S_LINE_NEITHER;
    return 0;
}

static void s_decide(ncc_csv_reader_t *self, ncc_csv_encoding_t encoding, size_t line)
{
    self->encoding = encoding;
    self->decided_line = line;
}

/* Undecided, and the line at pos (`first`, numbered `number`) is EITHER: looks
 * at the following lines, at most max_line_bytes of them in all, for one that
 * decides. UTF-8 when none does. 0 or a negative errno. */
static int s_look_ahead(ncc_csv_reader_t *self, s_span_t first, size_t number)
{
    size_t rel = first.content + first.term;
    size_t line = number + 1;

    while (first.term > 0) {
        s_span_t span;
        int rc = s_find_line(self, rel, line, &span);
        if (rc < 0) {
            if (rc != -E2BIG)
                return rc;
            /* A line too long ends the look-ahead; the error comes when the
             * reader gets there. */
            self->rc = 0;
            memset(&self->error, 0, sizeof self->error);
            break;
        }
        if (rc == 0 || rel + span.content + span.term > self->options.max_line_bytes)
            break;
        s_line_kind_t kind;
        rc = s_classify(self, s_base(self) + self->pos + rel, span.content, &kind);
        if (rc < 0)
            return rc;
        if (kind == S_LINE_UTF8) {
            s_decide(self, NCC_CSV_UTF8, line);
            return 0;
        }
        if (kind == S_LINE_CP932) {
            s_decide(self, NCC_CSV_CP932, line);
            return 0;
        }
        if (kind == S_LINE_NEITHER)
            break;
        rel += span.content + span.term;
        if (span.term == 0)
            break;
        line++;
    }
    s_decide(self, NCC_CSV_UTF8, number);
    return 0;
}

/* "line 3" or "the byte order mark", for mixed_encoding messages. */
static void s_decided_by(const ncc_csv_reader_t *self, char *out, size_t size)
{
    if (self->decided_line > 0)
        snprintf(out, size, "line %zu", self->decided_line);
    else if (self->bom)
        snprintf(out, size, "the byte order mark");
    else
        snprintf(out, size, "the import settings");
}

/* Checks (and for CP932 converts) the content of a line once the encoding is
 * known. 0 with ret->text and ret->len, or -EILSEQ / -ENOMEM / -ENOTSUP. */
static int s_decode(ncc_csv_reader_t *self, const uint8_t *raw, size_t len, s_line_t *ret)
{
    char by[48];
    s_utf8_scan_t scan;
    int rc;

    s_decided_by(self, by, sizeof by);
    if (self->encoding == NCC_CSV_UTF8) {
        s_utf8_scan(raw, len, false, &scan);
        if (scan.bad == len) {
            ret->text = raw;
            ret->len = len;
            return 0;
        }
        size_t column = s_column(raw, scan.bad);
        if (raw[scan.bad] == 0)
            return s_fail(self, -EILSEQ, "invalid_encoding", ret->number, column, "a NUL byte");
        if (!self->forced) {
            size_t ignored_len, ignored_column;
            rc = s_open_iconv(self);
            if (rc < 0)
                return rc;
            rc = s_cp932_to_utf8(self->cd, raw, len, true, &self->scratch, &self->scratch_cap,
                                 &ignored_len, &ignored_column);
            if (rc == -ENOMEM)
                return s_fail(self, rc, "out_of_memory", 0, 0, "out of memory");
            if (rc == 0)
                return s_fail(self, -EILSEQ, "mixed_encoding", ret->number, 0,
                              "the line is Shift_JIS (CP932) but %s was UTF-8", by);
        }
        return s_fail(self, -EILSEQ, "invalid_encoding", ret->number, column, "not valid UTF-8");
    }

    size_t column = 0;
    rc = s_open_iconv(self);
    if (rc < 0)
        return rc;
    rc = s_cp932_to_utf8(self->cd, raw, len, false, &self->conv, &self->conv_cap, &ret->len,
                         &column);
    if (rc == -ENOMEM)
        return s_fail(self, rc, "out_of_memory", 0, 0, "out of memory");
    if (rc < 0) {
        if (memchr(raw, 0, len))
            return s_fail(self, -EILSEQ, "invalid_encoding", ret->number, column, "a NUL byte");
        return s_fail(self, -EILSEQ, "invalid_encoding", ret->number, column,
                      "not valid Shift_JIS (CP932)");
    }
    if (!self->forced) {
        s_utf8_scan(raw, len, true, &scan);
        if (scan.bad == len && scan.long_char)
            return s_fail(self, -EILSEQ, "mixed_encoding", ret->number, 0,
                          "the line is UTF-8 but %s was Shift_JIS (CP932)", by);
    }
    ret->text = self->conv;
    return 0;
}

/* Skips the byte order mark at the very start: every one of them, as a tool
 * that adds a BOM to a file that already has one leaves two. 0 or a negative
 * errno. */
static int s_start(ncc_csv_reader_t *self)
{
    self->started = true;
    for (;;) {
        while (self->end - self->pos < sizeof s_bom && !self->eof) {
            int rc = s_read_more(self);
            if (rc < 0)
                return rc;
        }
        if (self->end - self->pos < sizeof s_bom ||
            memcmp(s_base(self) + self->pos, s_bom, sizeof s_bom) != 0)
            return 0;
        if (self->encoding == NCC_CSV_CP932)
            return s_fail(self, -EILSEQ, "invalid_encoding", 1, 1,
                          "a UTF-8 byte order mark in Shift_JIS (CP932) input");
        self->pos += sizeof s_bom;
        self->bom = true;
        s_decide(self, NCC_CSV_UTF8, 0);
    }
}

/* The next physical line, decoded. 1 with *ret (valid until s_consume), 0 at
 * the end of the input, or a negative errno with the error set. Call
 * s_consume(self, ret) when done with it. */
static int s_next_line(ncc_csv_reader_t *self, s_line_t *ret, size_t *ret_raw_len)
{
    int rc;

    if (!self->started && (rc = s_start(self)) < 0)
        return rc;
    s_span_t span;
    ret->number = self->next_line;
    rc = s_find_line(self, 0, ret->number, &span);
    if (rc <= 0) {
        if (rc == 0 && self->encoding == NCC_CSV_AUTO)
            s_decide(self, NCC_CSV_UTF8, 0);
        return rc;
    }
    if (self->encoding == NCC_CSV_AUTO) {
        s_line_kind_t kind;
        rc = s_classify(self, s_base(self) + self->pos, span.content, &kind);
        if (rc < 0)
            return rc;
        switch (kind) {
        case S_LINE_ASCII:
            break;
        case S_LINE_UTF8:
        case S_LINE_NEITHER: /* refused below either way */
            s_decide(self, NCC_CSV_UTF8, ret->number);
            break;
        case S_LINE_CP932:
            s_decide(self, NCC_CSV_CP932, ret->number);
            break;
        case S_LINE_EITHER:
            rc = s_look_ahead(self, span, ret->number);
            if (rc < 0)
                return rc;
            break;
        }
    }
    const uint8_t *raw = s_base(self) + self->pos;
    if (self->encoding == NCC_CSV_AUTO) {
        const uint8_t *nul = memchr(raw, 0, span.content);
        if (nul)
            return s_fail(self, -EILSEQ, "invalid_encoding", ret->number, (size_t)(nul - raw) + 1,
                          "a NUL byte");
        ret->text = raw; /* ASCII */
        ret->len = span.content;
    } else if ((rc = s_decode(self, raw, span.content, ret)) < 0) {
        return rc;
    }
    ret->term = raw + span.content;
    ret->term_len = span.term;
    *ret_raw_len = span.content + span.term;
    return 1;
}

static void s_consume(ncc_csv_reader_t *self, size_t raw_len)
{
    self->pos += raw_len;
    self->next_line++;
}

/* ---- reader: the record layer ------------------------------------------------------ */

typedef enum {
    S_FIELD_START, /* at the start of a field */
    S_UNQUOTED,    /* inside an unquoted field */
    S_QUOTED,      /* inside a quoted field */
    S_QUOTE_SEEN,  /* a quote inside a quoted field: "" or the end of the field */
} s_state_t;

typedef struct {
    s_state_t state;
    size_t field_start;  /* offset of the current field in data */
    size_t field_line;   /* where the current field starts */
    size_t field_column; /* (1-based character) */
    size_t column_at;    /* byte offset in the current line that `column` describes */
    size_t column;       /* character column of byte column_at */
} s_parse_t;

/* The column of byte i of the current line; i never goes backwards within a
 * line, so a whole line costs one pass. */
static size_t s_parse_column(s_parse_t *parse, const uint8_t *text, size_t i)
{
    while (parse->column_at < i) {
        if ((text[parse->column_at] & 0xc0) != 0x80)
            parse->column++;
        parse->column_at++;
    }
    return parse->column;
}

static int s_oom(ncc_csv_reader_t *self)
{
    return s_fail(self, -ENOMEM, "out_of_memory", 0, 0, "out of memory");
}

/* Appends n bytes to the current field; the limit is checked against the
 * field so far. `line`/`text`/`at` say where the bytes are, for the error. */
static int s_append(ncc_csv_reader_t *self, const s_parse_t *parse, const void *bytes, size_t n,
                    const s_line_t *line, size_t at)
{
    size_t have = self->data_len - parse->field_start;
    size_t max = self->options.max_field_bytes;

    if (n > max || have > max - n) {
        size_t cut = max >= have ? max - have : 0; /* bytes that still fit */
        size_t first = at + cut < line->len ? at + cut : line->len;
        while (first > 0 && first < line->len && (line->text[first] & 0xc0) == 0x80)
            first--; /* the character that does not fit, from its first byte */
        size_t column = s_column(line->text, first);
        return s_fail(self, -E2BIG, "field_too_long", line->number, column,
                      "field %zu is longer than %zu bytes", self->count + 1, max);
    }
    if (s_reserve((void **)&self->data, &self->data_cap, self->data_len + n + 1) != 0)
        return s_oom(self);
    memcpy(self->data + self->data_len, bytes, n);
    self->data_len += n;
    return 0;
}

/* Ends the current field (NUL-terminates it). */
static int s_end_field(ncc_csv_reader_t *self, s_parse_t *parse)
{
    if (self->count >= self->options.max_fields)
        return s_fail(self, -E2BIG, "too_many_fields", parse->field_line, parse->field_column,
                      "the record has more than %zu fields", self->options.max_fields);
    if (s_reserve((void **)&self->data, &self->data_cap, self->data_len + 1) != 0 ||
        s_reserve((void **)&self->offsets, &self->offsets_cap,
                  (self->count + 1) * sizeof *self->offsets) != 0)
        return s_oom(self);
    self->offsets[self->count++] = parse->field_start;
    self->data[self->data_len++] = '\0';
    parse->state = S_FIELD_START;
    parse->field_start = self->data_len;
    return 0;
}

/* Runs the state machine over one line's content. 1 when the record ended on
 * this line, 0 when it goes on (inside quotes), or a negative errno. */
static int s_parse_line(ncc_csv_reader_t *self, s_parse_t *parse, const s_line_t *line)
{
    const uint8_t *text = line->text;
    size_t len = line->len;
    size_t i = 0;
    int rc;

    parse->column_at = 0;
    parse->column = 1;
    while (i < len) {
        switch (parse->state) {
        case S_FIELD_START:
            parse->field_line = line->number;
            parse->field_column = s_parse_column(parse, text, i);
            if (text[i] == '"') {
                parse->state = S_QUOTED;
                i++;
            } else if (text[i] == ',') {
                if ((rc = s_end_field(self, parse)) < 0)
                    return rc;
                i++;
            } else {
                parse->state = S_UNQUOTED;
            }
            break;
        case S_UNQUOTED: {
            size_t j = i;
            while (j < len && text[j] != ',' && text[j] != '"')
                j++;
            if ((rc = s_append(self, parse, text + i, j - i, line, i)) < 0)
                return rc;
            i = j;
            if (i < len && text[i] == '"')
                return s_fail(self, -EINVAL, "stray_quote", line->number, s_column(text, i),
                              "a quote inside an unquoted field (quote the whole field and "
                              "double the quote)");
            if (i < len) {
                if ((rc = s_end_field(self, parse)) < 0)
                    return rc;
                i++;
            }
            break;
        }
        case S_QUOTED: {
            const uint8_t *quote = memchr(text + i, '"', len - i);
            size_t j = quote ? (size_t)(quote - text) : len;
            if ((rc = s_append(self, parse, text + i, j - i, line, i)) < 0)
                return rc;
            i = j;
            if (quote) {
                parse->state = S_QUOTE_SEEN;
                i++;
            }
            break;
        }
        case S_QUOTE_SEEN:
            if (text[i] == '"') {
                if ((rc = s_append(self, parse, "\"", 1, line, i)) < 0)
                    return rc;
                parse->state = S_QUOTED;
                i++;
            } else if (text[i] == ',') {
                if ((rc = s_end_field(self, parse)) < 0)
                    return rc;
                i++;
            } else {
                return s_fail(self, -EINVAL, "text_after_quote", line->number, s_column(text, i),
                              "text after the closing quote of a field (double a quote "
                              "inside a quoted field)");
            }
            break;
        }
    }
    if (parse->state == S_QUOTED) {
        /* The line end belongs to the field, as it was written. */
        if (line->term_len > 0 &&
            (rc = s_append(self, parse, line->term, line->term_len, line, len)) < 0)
            return rc;
        return 0;
    }
    if (parse->state == S_FIELD_START) {
        parse->field_line = line->number;
        parse->field_column = s_parse_column(parse, text, len);
    }
    if ((rc = s_end_field(self, parse)) < 0)
        return rc;
    return 1;
}

/* One record into self->data and self->offsets; see ncc_csv_reader_next. */
static int s_next_record(ncc_csv_reader_t *self)
{
    self->count = 0;
    self->data_len = 0;
    self->record_line = 0;

    s_parse_t parse = {.state = S_FIELD_START};
    bool in_record = false;
    for (;;) {
        s_line_t line;
        size_t raw_len = 0;
        int rc = s_next_line(self, &line, &raw_len);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            if (!in_record)
                return 0;
            /* Only a quoted field can still be open at the end of the input;
             * its start is where the opening quote is. */
            return s_fail(self, -EINVAL, "unterminated_quote", parse.field_line, parse.field_column,
                          "the quoted field starting here has no closing quote");
        }
        if (!in_record) {
            if (line.len == 0) {
                s_consume(self, raw_len); /* a blank line */
                continue;
            }
            in_record = true;
            self->record_line = line.number;
        }
        rc = s_parse_line(self, &parse, &line);
        if (rc < 0)
            return rc;
        s_consume(self, raw_len);
        if (rc == 1)
            break;
    }
    if (self->records >= self->options.max_records)
        return s_fail(self, -E2BIG, "too_many_records", self->record_line, 0,
                      "more than %zu records", self->options.max_records);
    self->records++;
    return 1;
}

int ncc_csv_reader_next(ncc_csv_reader_t *self)
{
    if (!self)
        return -EINVAL;
    if (self->rc < 0)
        return self->rc;
    int rc = s_next_record(self);
    if (rc < 0)
        self->count = 0; /* no half record after an error */
    return rc;
}

/* ---- reader: construction and accessors -------------------------------------------- */

static ncc_csv_reader_t *s_reader_new(const ncc_csv_options_t *options)
{
    ncc_csv_reader_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    if (options)
        self->options = *options;
    if (self->options.max_field_bytes == 0)
        self->options.max_field_bytes = NCC_CSV_DEFAULT_MAX_FIELD_BYTES;
    if (self->options.max_fields == 0)
        self->options.max_fields = NCC_CSV_DEFAULT_MAX_FIELDS;
    if (self->options.max_records == 0)
        self->options.max_records = NCC_CSV_DEFAULT_MAX_RECORDS;
    if (self->options.max_line_bytes == 0)
        self->options.max_line_bytes = NCC_CSV_DEFAULT_MAX_LINE_BYTES;
    self->fd = -1;
    self->cd = S_NO_ICONV;
    self->next_line = 1;
    if (self->options.encoding == NCC_CSV_UTF8 || self->options.encoding == NCC_CSV_CP932) {
        self->encoding = self->options.encoding;
        self->forced = true;
    } else {
        self->options.encoding = NCC_CSV_AUTO;
    }
    return self;
}

ncc_csv_reader_t *ncc_csv_reader_new(const void *data, size_t len, const ncc_csv_options_t *options)
{
    static const uint8_t empty[1];
    ncc_csv_reader_t *self = s_reader_new(options);
    if (!self)
        return NULL;
    self->mem = data && len > 0 ? data : empty;
    self->end = data ? len : 0;
    self->eof = true;
    return self;
}

ncc_csv_reader_t *ncc_csv_reader_new_stream(ncc_csv_read_fn read, void *arg,
                                            const ncc_csv_options_t *options)
{
    if (!read)
        return NULL;
    ncc_csv_reader_t *self = s_reader_new(options);
    if (!self)
        return NULL;
    self->read = read;
    self->read_arg = arg;
    return self;
}

static ssize_t s_read_fd(void *arg, void *buf, size_t len)
{
    const ncc_csv_reader_t *self = arg;
    for (;;) {
        ssize_t n = read(self->fd, buf, len);
        if (n >= 0)
            return n;
        if (errno != EINTR)
            return -errno;
    }
}

static ssize_t s_read_file(void *arg, void *buf, size_t len)
{
    const ncc_csv_reader_t *self = arg;
    size_t n = fread(buf, 1, len, self->file);
    if (n == 0 && ferror(self->file))
        return -EIO;
    return (ssize_t)n;
}

ncc_csv_reader_t *ncc_csv_reader_new_fd(int fd, const ncc_csv_options_t *options)
{
    if (fd < 0)
        return NULL;
    ncc_csv_reader_t *self = s_reader_new(options);
    if (!self)
        return NULL;
    self->fd = fd;
    self->read = s_read_fd;
    self->read_arg = self;
    return self;
}

ncc_csv_reader_t *ncc_csv_reader_new_file(FILE *file, const ncc_csv_options_t *options)
{
    if (!file)
        return NULL;
    ncc_csv_reader_t *self = s_reader_new(options);
    if (!self)
        return NULL;
    self->file = file;
    self->read = s_read_file;
    self->read_arg = self;
    return self;
}

void ncc_csv_reader_destroy(ncc_csv_reader_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ncc_csv_reader_t *self = *self_p;
    if (self->cd != S_NO_ICONV)
        iconv_close(self->cd);
    free(self->win);
    free(self->conv);
    free(self->scratch);
    free(self->data);
    free(self->offsets);
    free(self);
    *self_p = NULL;
}

size_t ncc_csv_reader_count(const ncc_csv_reader_t *self)
{
    return self ? self->count : 0;
}

const char *ncc_csv_reader_field(const ncc_csv_reader_t *self, size_t index, size_t *ret_len)
{
    if (!self || index >= self->count)
        return NULL;
    size_t start = self->offsets[index];
    size_t next = index + 1 < self->count ? self->offsets[index + 1] : self->data_len;
    if (ret_len)
        *ret_len = next - start - 1;
    return self->data + start;
}

size_t ncc_csv_reader_line(const ncc_csv_reader_t *self)
{
    return self && self->count > 0 ? self->record_line : 0;
}

size_t ncc_csv_reader_records(const ncc_csv_reader_t *self)
{
    return self ? self->records : 0;
}

ncc_csv_encoding_t ncc_csv_reader_encoding(const ncc_csv_reader_t *self)
{
    return self ? self->encoding : NCC_CSV_AUTO;
}

const ncc_csv_error_t *ncc_csv_reader_error(const ncc_csv_reader_t *self)
{
    return self ? &self->error : NULL;
}

/* ---- whole-input encoding ------------------------------------------------------------ */

/* Runs the line layer over the whole input; with `out` non-NULL appends every
 * line as UTF-8 (content and terminator) to *out (capacity *cap, length
 * *ret_len). */
static int s_whole(const void *data, size_t len, ncc_csv_encoding_t from,
                   ncc_csv_encoding_t *ret_encoding, uint8_t **out, size_t *cap, size_t *ret_len,
                   ncc_csv_error_t *err)
{
    ncc_csv_options_t options = {.encoding = from};
    ncc_csv_reader_t *reader = ncc_csv_reader_new(data, len, &options);
    size_t used = 0;
    int rc = -ENOMEM;

    if (!reader)
        goto out;
    for (;;) {
        s_line_t line;
        size_t raw_len = 0;
        rc = s_next_line(reader, &line, &raw_len);
        if (rc <= 0)
            break;
        if (out) {
            size_t n = line.len + line.term_len;
            if (s_reserve((void **)out, cap, used + n + 1) != 0) {
                rc = -ENOMEM;
                break;
            }
            memcpy(*out + used, line.text, line.len);
            memcpy(*out + used + line.len, line.term, line.term_len);
            used += n;
        }
        s_consume(reader, raw_len);
    }
    if (rc == 0) {
        *ret_encoding = reader->encoding;
        if (ret_len)
            *ret_len = used;
    }
out:
    if (err) {
        if (reader && rc < 0 && reader->rc < 0)
            *err = reader->error;
        else if (rc == -ENOMEM)
            *err = (ncc_csv_error_t){.code = "out_of_memory", .message = "out of memory"};
        else
            memset(err, 0, sizeof *err);
    }
    ncc_csv_reader_destroy(&reader);
    return rc;
}

int ncc_csv_detect_encoding(const void *data, size_t len, ncc_csv_encoding_t *ret_encoding,
                            ncc_csv_error_t *err)
{
    if ((!data && len > 0) || !ret_encoding)
        return -EINVAL;
    ncc_csv_encoding_t encoding = NCC_CSV_AUTO;
    int rc = s_whole(data, len, NCC_CSV_AUTO, &encoding, NULL, NULL, NULL, err);
    if (rc == 0)
        *ret_encoding = encoding;
    return rc;
}

int ncc_csv_to_utf8(const void *data, size_t len, ncc_csv_encoding_t from, char **ret_text,
                    size_t *ret_len, ncc_csv_error_t *err)
{
    if ((!data && len > 0) || !ret_text)
        return -EINVAL;
    uint8_t *text = NULL;
    size_t cap = 0, used = 0;
    ncc_csv_encoding_t encoding = NCC_CSV_AUTO;
    int rc = s_whole(data, len, from, &encoding, &text, &cap, &used, err);
    if (rc == 0 && s_reserve((void **)&text, &cap, used + 1) != 0)
        rc = -ENOMEM;
    if (rc < 0) {
        free(text);
        return rc;
    }
    text[used] = '\0';
    *ret_text = (char *)text;
    if (ret_len)
        *ret_len = used;
    return 0;
}

/* ---- writer ------------------------------------------------------------------------ */

struct ncc_csv_writer {
    unsigned flags;       /* NCC_CSV_WRITE_* */
    ncc_csv_sink_fn sink; /* NULL: buffer mode */
    void *sink_arg;       /* borrowed */
    char *out;            /* output not yet handed over (owned) */
    size_t out_len;
    size_t out_cap;
    char *row; /* the current row's fields, encoded, quoted, comma-separated (owned) */
    size_t row_len;
    size_t row_cap;
    size_t row_fields; /* fields in the current row */
    size_t rows;       /* rows ended */
    iconv_t cd;        /* UTF-8 -> CP932, S_NO_ICONV without NCC_CSV_WRITE_CP932 */
    char *enc;         /* one field encoded as CP932 (owned) */
    size_t enc_cap;
    int sink_rc; /* the sink's error: final */
    ncc_csv_error_t error;
};

static int s_wfail(ncc_csv_writer_t *self, int rc, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int s_wfail(ncc_csv_writer_t *self, int rc, const char *code, const char *fmt, ...)
{
    va_list args;
    size_t row = self->rows + 1, field = self->row_fields + 1;

    va_start(args, fmt);
    memset(&self->error, 0, sizeof self->error);
    snprintf(self->error.code, sizeof self->error.code, "%s", code);
    self->error.line = row;
    self->error.column = field;
    int used = snprintf(self->error.message, sizeof self->error.message,
                        "row %zu, field %zu: ", row, field);
    if (used > 0 && (size_t)used < sizeof self->error.message)
        vsnprintf(self->error.message + used, sizeof self->error.message - (size_t)used, fmt, args);
    va_end(args);
    return rc;
}

ncc_csv_writer_t *ncc_csv_writer_new(unsigned flags, ncc_csv_sink_fn sink, void *arg)
{
    ncc_csv_writer_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->flags = flags;
    self->sink = sink;
    self->sink_arg = arg;
    self->cd = S_NO_ICONV;
    if (flags & NCC_CSV_WRITE_CP932) {
        self->cd = iconv_open("CP932", "UTF-8");
        if (self->cd == S_NO_ICONV) {
            free(self);
            return NULL;
        }
    } else if (flags & NCC_CSV_WRITE_BOM) {
        if (s_reserve((void **)&self->out, &self->out_cap, sizeof s_bom) != 0) {
            free(self);
            return NULL;
        }
        memcpy(self->out, s_bom, sizeof s_bom);
        self->out_len = sizeof s_bom;
    }
    return self;
}

void ncc_csv_writer_destroy(ncc_csv_writer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ncc_csv_writer_t *self = *self_p;
    if (self->cd != S_NO_ICONV)
        iconv_close(self->cd);
    free(self->out);
    free(self->row);
    free(self->enc);
    free(self);
    *self_p = NULL;
}

/* Encodes `len` bytes of valid UTF-8 as CP932 into self->enc. 0 with
 * *ret_len, -EILSEQ (error set) or -ENOMEM. */
static int s_to_cp932(ncc_csv_writer_t *self, const char *value, size_t len, size_t *ret_len)
{
    /* CP932 never takes more bytes than UTF-8 for the same character. */
    if (len > SIZE_MAX - 16 || s_reserve((void **)&self->enc, &self->enc_cap, len + 16) != 0)
        return -ENOMEM;
    iconv(self->cd, NULL, NULL, NULL, NULL);
    char *src = (char *)value;
    size_t src_left = len;
    char *dst = self->enc;
    size_t dst_left = self->enc_cap;
    while (src_left > 0) {
        if (iconv(self->cd, &src, &src_left, &dst, &dst_left) != (size_t)-1)
            break;
        if (errno == E2BIG) {
            size_t used = self->enc_cap - dst_left;
            if (s_reserve((void **)&self->enc, &self->enc_cap, self->enc_cap * 2) != 0)
                return -ENOMEM;
            dst = self->enc + used;
            dst_left = self->enc_cap - used;
            continue;
        }
        /* EILSEQ: a character CP932 lacks (the input is valid UTF-8). */
        size_t at = (size_t)(src - value);
        if (!(self->flags & NCC_CSV_WRITE_CP932_REPLACE))
            return s_wfail(self, -EILSEQ, "unrepresentable",
                           "character %zu has no Shift_JIS (CP932) form",
                           s_column((const uint8_t *)value, at));
        if (dst_left == 0) {
            size_t used = self->enc_cap - dst_left;
            if (s_reserve((void **)&self->enc, &self->enc_cap, self->enc_cap * 2) != 0)
                return -ENOMEM;
            dst = self->enc + used;
            dst_left = self->enc_cap - used;
        }
        *dst++ = '?';
        dst_left--;
        size_t skip = s_utf8_len((uint8_t)*src);
        if (skip > src_left)
            skip = src_left;
        src += skip;
        src_left -= skip;
    }
    *ret_len = self->enc_cap - dst_left;
    return 0;
}

/* True for [+-]?[0-9]+(\.[0-9]+)?: a spreadsheet reads it as a number, never
 * as a formula, so the formula defence leaves it alone. */
static bool s_plain_number(const char *s, size_t len)
{
    size_t i = 0;
    if (i < len && (s[i] == '+' || s[i] == '-'))
        i++;
    size_t digits = i;
    while (i < len && s[i] >= '0' && s[i] <= '9')
        i++;
    if (i == digits)
        return false;
    if (i < len && s[i] == '.') {
        size_t fraction = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == fraction)
            return false;
    }
    return i == len;
}

/* The characters that make a spreadsheet read a cell as a formula (OWASP
 * "CSV injection"): = + - @, and TAB and CR, which some strip first. */
static bool s_formula_start(char c)
{
    return c == '=' || c == '+' || c == '-' || c == '@' || c == '\t' || c == '\r';
}

int ncc_csv_writer_field(ncc_csv_writer_t *self, const char *value, size_t len)
{
    if (!self || (!value && len > 0))
        return -EINVAL;
    if (self->sink_rc < 0)
        return self->sink_rc;
    if (len == 0)
        value = "";
    if (memchr(value, 0, len))
        return s_wfail(self, -EINVAL, "nul_byte", "a NUL byte");
    s_utf8_scan_t scan;
    s_utf8_scan((const uint8_t *)value, len, false, &scan);
    if (scan.bad != len)
        return s_wfail(self, -EILSEQ, "invalid_encoding", "not valid UTF-8 at character %zu",
                       s_column((const uint8_t *)value, scan.bad));

    /* Quoting and the formula defence look at the encoded bytes: in CP932 a
     * trail byte is never below 0x40, so the ASCII tests hold there too. */
    const char *bytes = value;
    size_t n = len;
    if (self->flags & NCC_CSV_WRITE_CP932) {
        int rc = s_to_cp932(self, value, len, &n);
        if (rc == -ENOMEM)
            return s_wfail(self, rc, "out_of_memory", "out of memory");
        if (rc < 0)
            return rc;
        bytes = self->enc;
    }
    bool guard = !(self->flags & NCC_CSV_WRITE_NO_FORMULA_GUARD) && n > 0 &&
                 s_formula_start(bytes[0]) && !s_plain_number(bytes, n);
    bool quote = false;
    size_t quotes = 0;
    for (size_t i = 0; i < n; i++) {
        /* bytes >= 0x80 (most of a Japanese text) skip both tests */
        unsigned char c = (unsigned char)bytes[i];
        if (c > ',')
            continue;
        if (c == '"')
            quotes++;
        if (c == '"' || c == ',' || c == '\r' || c == '\n')
            quote = true;
    }
    if (n > 0 && (bytes[n - 1] == ' ' || bytes[n - 1] == '\t'))
        quote = true;
    if (n > 0 && !guard && (bytes[0] == ' ' || bytes[0] == '\t'))
        quote = true;
    /* U+FEFF first would be taken for a byte order mark at the start of a file. */
    if (n >= sizeof s_bom && !guard && memcmp(bytes, s_bom, sizeof s_bom) == 0)
        quote = true;

    size_t need = n + quotes + 4; /* separator, guard, two quotes */
    if (n > (SIZE_MAX - 8 - self->row_len) / 2 ||
        s_reserve((void **)&self->row, &self->row_cap, self->row_len + need) != 0)
        return s_wfail(self, -ENOMEM, "out_of_memory", "out of memory");
    char *p = self->row + self->row_len;
    if (self->row_fields > 0)
        *p++ = ',';
    if (quote)
        *p++ = '"';
    if (guard)
        *p++ = '\'';
    if (quotes == 0) {
        memcpy(p, bytes, n);
        p += n;
    } else {
        for (size_t i = 0; i < n; i++) {
            if (bytes[i] == '"')
                *p++ = '"';
            *p++ = bytes[i];
        }
    }
    if (quote)
        *p++ = '"';
    self->row_len = (size_t)(p - self->row);
    self->row_fields++;
    return 0;
}

int ncc_csv_writer_field_str(ncc_csv_writer_t *self, const char *value)
{
    return ncc_csv_writer_field(self, value ? value : "", value ? strlen(value) : 0);
}

static int s_flush(ncc_csv_writer_t *self)
{
    if (!self->sink || self->out_len == 0)
        return 0;
    int rc = self->sink(self->sink_arg, self->out, self->out_len);
    if (rc < 0) {
        self->sink_rc = rc;
        return s_wfail(self, rc, "sink_error", "the output could not be written");
    }
    self->out_len = 0;
    return 0;
}

int ncc_csv_writer_end_row(ncc_csv_writer_t *self)
{
    if (!self)
        return -EINVAL;
    if (self->sink_rc < 0)
        return self->sink_rc;
    if (self->row_fields == 0)
        return s_wfail(self, -EINVAL, "empty_row", "a row needs at least one field");
    /* A lone empty field is written "" so that the row is not a blank line
     * (which readers skip). */
    bool lone_empty = self->row_fields == 1 && self->row_len == 0;
    size_t n = lone_empty ? 4 : self->row_len + 2;
    if (n > SIZE_MAX - self->out_len ||
        s_reserve((void **)&self->out, &self->out_cap, self->out_len + n) != 0)
        return s_wfail(self, -ENOMEM, "out_of_memory", "out of memory");
    char *p = self->out + self->out_len;
    if (lone_empty) {
        memcpy(p, "\"\"\r\n", 4);
    } else {
        memcpy(p, self->row, self->row_len);
        memcpy(p + self->row_len, "\r\n", 2);
    }
    self->out_len += n;
    self->row_len = 0;
    self->row_fields = 0;
    self->rows++;
    if (self->sink && self->out_len >= S_SINK_CHUNK)
        return s_flush(self);
    return 0;
}

int ncc_csv_writer_row(ncc_csv_writer_t *self, const char *const *values, size_t count)
{
    if (!self || (!values && count > 0))
        return -EINVAL;
    size_t row_len = self->row_len, row_fields = self->row_fields;
    for (size_t i = 0; i < count; i++) {
        int rc = ncc_csv_writer_field_str(self, values[i]);
        if (rc < 0) {
            self->row_len = row_len;
            self->row_fields = row_fields;
            return rc;
        }
    }
    return ncc_csv_writer_end_row(self);
}

int ncc_csv_writer_flush(ncc_csv_writer_t *self)
{
    if (!self)
        return -EINVAL;
    if (self->sink_rc < 0)
        return self->sink_rc;
    return s_flush(self);
}

const char *ncc_csv_writer_data(const ncc_csv_writer_t *self, size_t *ret_len)
{
    if (!self || self->sink)
        return NULL;
    if (ret_len)
        *ret_len = self->out_len;
    return self->out ? self->out : "";
}

char *ncc_csv_writer_take(ncc_csv_writer_t *self, size_t *ret_len)
{
    if (!self || self->sink)
        return NULL;
    if (s_reserve((void **)&self->out, &self->out_cap, self->out_len + 1) != 0)
        return NULL;
    char *text = self->out;
    text[self->out_len] = '\0';
    if (ret_len)
        *ret_len = self->out_len;
    self->out = NULL;
    self->out_len = 0;
    self->out_cap = 0;
    return text;
}

size_t ncc_csv_writer_rows(const ncc_csv_writer_t *self)
{
    return self ? self->rows : 0;
}

const ncc_csv_error_t *ncc_csv_writer_error(const ncc_csv_writer_t *self)
{
    return self ? &self->error : NULL;
}
