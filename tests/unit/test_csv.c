/* Tests for ncc/csv.h: RFC 4180 edge cases as a table (read from a buffer and
 * from streams in small pieces, which must agree), line numbers across quoted
 * line breaks, errors with line and column, limits, the BOM, CRLF / LF / CR,
 * Shift_JIS (CP932) detection with real CP932 bytes, mixed and invalid
 * encodings, and the writer: quoting, round trips, the formula defence, CP932
 * output and streaming to a sink. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ncc/csv.h"

/* CP932 bytes (checked with `iconv -f UTF-8 -t CP932`), one character per
 * string so that no hex escape runs into the next character. */
#define SJ_JUMIN                                                                                   \
    "\x8f\x5a"                                                                                     \
    "\x96\xaf"                                                                                     \
    "\x95\x5b" /* 住民票 (票 ends in '[') */
#define SJ_NAKANO                                                                                  \
    "\x92\x86"                                                                                     \
    "\x96\xec"                                                                                     \
    "\x8b\xe6" /* 中野区 */
#define SJ_AIU                                                                                     \
    "\xb1"                                                                                         \
    "\xb2"                                                                                         \
    "\xb3"                  /* ｱｲｳ, half-width katakana */
#define SJ_MARU1 "\x87\x40" /* ①, NEC special characters */
#define SJ_TAKA  "\xfb\xfc" /* 髙, IBM extension */
#define SJ_SO    "\x83\x5c" /* ソ: the trail byte is '\' */
#define SJ_HYO   "\x95\x5c" /* 表: the trail byte is '\' */
#define SJ_TILDE "\x81\x60" /* ～ (and 〜 is written as it) */
#define SJ_BANGO                                                                                   \
    "\x94\xd4"                                                                                     \
    "\x8d\x86" /* 番号 */
#define SJ_SHIMEI                                                                                  \
    "\x8e\x81"                                                                                     \
    "\x96\xbc" /* 氏名 */
#define SJ_JUSHO                                                                                   \
    "\x8f\x5a"                                                                                     \
    "\x8f\x8a" /* 住所 */
#define SJ_TESU                                                                                    \
    "\xc3"                                                                                         \
    "\xbd" /* ﾃｽ: also UTF-8 for "ý" */

/* ---- helpers ------------------------------------------------------------------- */

/* A growing string. */
typedef struct {
    char *text;
    size_t len;
} s_str_t;

static void s_add(s_str_t *s, const char *bytes, size_t n)
{
    s->text = realloc(s->text, s->len + n + 1);
    cr_assert_not_null(s->text);
    memcpy(s->text + s->len, bytes, n);
    s->len += n;
    s->text[s->len] = '\0';
}

static void s_addf(s_str_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_addf(s_str_t *s, const char *fmt, ...)
{
    char buf[256];
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, args);
    va_end(args);
    cr_assert(n >= 0 && (size_t)n < sizeof buf);
    s_add(s, buf, (size_t)n);
}

/* A source handing out `chunk` bytes at a time, or failing after `fail_after`. */
typedef struct {
    const char *data;
    size_t len;
    size_t pos;
    size_t chunk;
    size_t fail_after; /* 0: never */
} s_source_t;

static ssize_t s_source_read(void *arg, void *buf, size_t len)
{
    s_source_t *src = arg;
    if (src->fail_after > 0 && src->pos >= src->fail_after)
        return -EIO;
    size_t n = src->len - src->pos;
    if (n > src->chunk)
        n = src->chunk;
    if (n > len)
        n = len;
    memcpy(buf, src->data + src->pos, n);
    src->pos += n;
    return (ssize_t)n;
}

/* Every record as "L<line>:[field][field]\n", then "rc=<n> <code> <line>:<column>"
 * for the end (rc 0) or the error. Caller frees. */
static char *s_render(ncc_csv_reader_t *reader)
{
    s_str_t out = {0};
    int rc;
    while ((rc = ncc_csv_reader_next(reader)) == 1) {
        s_addf(&out, "L%zu:", ncc_csv_reader_line(reader));
        cr_assert_geq(ncc_csv_reader_count(reader), 1);
        for (size_t i = 0; i < ncc_csv_reader_count(reader); i++) {
            size_t len = 0;
            const char *field = ncc_csv_reader_field(reader, i, &len);
            cr_assert_not_null(field);
            cr_assert_eq(strlen(field), len, "no NUL inside a field");
            s_add(&out, "[", 1);
            s_add(&out, field, len);
            s_add(&out, "]", 1);
        }
        cr_assert_null(ncc_csv_reader_field(reader, ncc_csv_reader_count(reader), NULL));
        s_add(&out, "\n", 1);
    }
    const ncc_csv_error_t *err = ncc_csv_reader_error(reader);
    s_addf(&out, "rc=%d %s %zu:%zu", rc, err->code, err->line, err->column);
    if (rc < 0) {
        cr_assert_neq(err->message[0], '\0');
        cr_assert_eq(ncc_csv_reader_next(reader), rc, "errors are final");
        cr_assert_eq(ncc_csv_reader_count(reader), 0);
    } else {
        cr_assert_eq(ncc_csv_reader_next(reader), 0, "the end stays the end");
    }
    return out.text;
}

/* Reads `input` from a buffer; also from a stream in pieces of 1, 2, 3 and
 * 4096 bytes, which must give exactly the same. Caller frees. */
static char *s_read(const char *input, size_t len, const ncc_csv_options_t *options)
{
    ncc_csv_reader_t *reader = ncc_csv_reader_new(input, len, options);
    cr_assert_not_null(reader);
    char *text = s_render(reader);
    ncc_csv_encoding_t encoding = ncc_csv_reader_encoding(reader);
    ncc_csv_reader_destroy(&reader);
    cr_assert_null(reader);

    static const size_t chunks[] = {1, 2, 3, 4096};
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        s_source_t src = {.data = input, .len = len, .chunk = chunks[i]};
        ncc_csv_reader_t *stream = ncc_csv_reader_new_stream(s_source_read, &src, options);
        cr_assert_not_null(stream);
        char *again = s_render(stream);
        cr_assert_str_eq(again, text, "stream in pieces of %zu", chunks[i]);
        cr_assert_eq(ncc_csv_reader_encoding(stream), encoding);
        free(again);
        ncc_csv_reader_destroy(&stream);
    }
    return text;
}

static void s_expect(const char *input, size_t len, const ncc_csv_options_t *options,
                     const char *expected)
{
    char *got = s_read(input, len, options);
    cr_assert_str_eq(got, expected, "input \"%s\": got \"%s\"", input, got);
    free(got);
}

#define EXPECT(input, expected) s_expect(input, sizeof(input) - 1, NULL, expected)

/* ---- RFC 4180 ---------------------------------------------------------------------- */

Test(csv, rfc4180_table)
{
    static const struct {
        const char *input;
        const char *expected;
    } cases[] = {
        {"", "rc=0  0:0"},
        {"a,b,c\r\n", "L1:[a][b][c]\nrc=0  0:0"},
        {"a,b,c", "L1:[a][b][c]\nrc=0  0:0"},
        {"a,b\r\nc,d\r\n", "L1:[a][b]\nL2:[c][d]\nrc=0  0:0"},
        {"a,b\nc,d\n", "L1:[a][b]\nL2:[c][d]\nrc=0  0:0"},
        {"a,b\rc,d\r", "L1:[a][b]\nL2:[c][d]\nrc=0  0:0"},
        {"a\r\nb\nc\rd", "L1:[a]\nL2:[b]\nL3:[c]\nL4:[d]\nrc=0  0:0"},
        {"a\n\rb", "L1:[a]\nL3:[b]\nrc=0  0:0"}, /* LF then CR: two line ends */
        {"\"a,b\",c\r\n", "L1:[a,b][c]\nrc=0  0:0"},
        {"\"a\"\"b\"", "L1:[a\"b]\nrc=0  0:0"},
        {"\"\"", "L1:[]\nrc=0  0:0"},
        {"\"\"\"\"", "L1:[\"]\nrc=0  0:0"},
        {"\"\"\"\"\"\"", "L1:[\"\"]\nrc=0  0:0"},
        {",", "L1:[][]\nrc=0  0:0"},
        {",,\r\n", "L1:[][][]\nrc=0  0:0"},
        {"a,", "L1:[a][]\nrc=0  0:0"},
        {",a", "L1:[][a]\nrc=0  0:0"},
        {"a,\"\"", "L1:[a][]\nrc=0  0:0"},
        {"\"\",\"\"", "L1:[][]\nrc=0  0:0"},
        {"\"l1\r\nl2\",x\r\n", "L1:[l1\r\nl2][x]\nrc=0  0:0"},
        {"\"a\nb\rc\r\n\"", "L1:[a\nb\rc\r\n]\nrc=0  0:0"},
        {"\"a,\"\"b\"\"\r\nc\",d", "L1:[a,\"b\"\r\nc][d]\nrc=0  0:0"},
        {"\r\n\r\na\r\n\r\n", "L3:[a]\nrc=0  0:0"}, /* blank lines are skipped */
        {"\n\n\n", "rc=0  0:0"},
        {" a , b ", "L1:[ a ][ b ]\nrc=0  0:0"}, /* spaces belong to the field */
        {"a\tb;c", "L1:[a\tb;c]\nrc=0  0:0"},    /* only ',' separates */
        {"'=1+1,=2", "L1:['=1+1][=2]\nrc=0  0:0"},
        {"\"x\"\r", "L1:[x]\nrc=0  0:0"},
        {"住民票,中野区\r\n①,髙", "L1:[住民票][中野区]\nL2:[①][髙]\nrc=0  0:0"},
        {"\"住民票\r\n写し\",\"\"\"中野\"\"\"", "L1:[住民票\r\n写し][\"中野\"]\nrc=0  0:0"},
        /* Errors: line and column of the offending character. */
        {"a\"b", "rc=-22 stray_quote 1:2"},
        {" \"ab\"", "rc=-22 stray_quote 1:2"},
        {"a,b\nx\"y,z", "L1:[a][b]\nrc=-22 stray_quote 2:2"},
        {"\"ab\"c", "rc=-22 text_after_quote 1:5"},
        {"\"ab\" ,c", "rc=-22 text_after_quote 1:5"},
        {"\"a\"\"\"b\"", "rc=-22 text_after_quote 1:6"},
        {"住民票,x\"y", "rc=-22 stray_quote 1:6"}, /* columns count characters */
        {"\"", "rc=-22 unterminated_quote 1:1"},
        {"a,b\nc,\"d", "L1:[a][b]\nrc=-22 unterminated_quote 2:3"},
        {"a\n\"open\nmore\r\nstuff\r\n", "L1:[a]\nrc=-22 unterminated_quote 2:1"},
        {"x,\"住民票\r\n", "rc=-22 unterminated_quote 1:3"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        s_expect(cases[i].input, strlen(cases[i].input), NULL, cases[i].expected);
}

Test(csv, line_numbers_follow_physical_lines_inside_quotes)
{
    /* Record 2 starts on line 2 and spans three lines; the next one is on 5. */
    EXPECT("h1,h2\r\n\"multi\r\nline\r\ntext\",x\r\nnext,y\r\n",
           "L1:[h1][h2]\nL2:[multi\r\nline\r\ntext][x]\nL5:[next][y]\nrc=0  0:0");
    /* CR-only and LF-only line ends inside quotes count too, CRLF once. */
    EXPECT("\"a\rb\nc\r\nd\",1\n\n2\r\"\r\",3",
           "L1:[a\rb\nc\r\nd][1]\nL6:[2]\nL7:[\r][3]\nrc=0  0:0");
    /* An error after a multi-line record names its own line. */
    EXPECT("\"a\n\nb\"\nok\nbad\"", "L1:[a\n\nb]\nL4:[ok]\nrc=-22 stray_quote 5:4");
    /* A blank line inside quotes is part of the field, not skipped. */
    EXPECT("\"\n\n\"", "L1:[\n\n]\nrc=0  0:0");
}

Test(csv, limits_are_e2big_with_the_line)
{
    ncc_csv_options_t o = {
        .max_field_bytes = 5, .max_fields = 3, .max_records = 2, .max_line_bytes = 40};

    s_expect("12345,b,c\r\n", 11, &o, "L1:[12345][b][c]\nrc=0  0:0");
    s_expect("a\r\n123456,b\r\n", 13, &o, "L1:[a]\nrc=-7 field_too_long 2:6");
    /* Counted after unescaping: 5 quotes are 5 bytes. */
    s_expect("\"\"\"\"\"\"\"\"\"\"\"\"", 12, &o, "L1:[\"\"\"\"\"]\nrc=0  0:0");
    s_expect("\"\"\"\"\"\"\"\"\"\"\"\"\"\"", 14, &o, "rc=-7 field_too_long 1:13");
    /* UTF-8 bytes: 住民 is 6. */
    s_expect("住民", strlen("住民"), &o, "rc=-7 field_too_long 1:2");
    /* A line break inside quotes counts. */
    s_expect("\"1234\r\n\"", 8, &o, "rc=-7 field_too_long 1:6");
    s_expect("a,b,c,d\r\n", 9, &o, "rc=-7 too_many_fields 1:7");
    s_expect("a,b,c,\r\n", 8, &o, "rc=-7 too_many_fields 1:7");
    s_expect("1\n2\n3\n", 6, &o, "L1:[1]\nL2:[2]\nrc=-7 too_many_records 3:0");
    s_expect("1\n2\n\n\n", 6, &o, "L1:[1]\nL2:[2]\nrc=0  0:0");
    char line[64];
    memset(line, 'x', sizeof line);
    memcpy(line, "a\r\n", 3);
    s_expect(line, 3 + 40, &o, "L1:[a]\nrc=-7 field_too_long 2:6");
    ncc_csv_options_t wide = {.max_line_bytes = 40};
    s_expect(line, 3 + 41, &wide, "L1:[a]\nrc=-7 line_too_long 2:0");
    char *ok = s_read(line, 3 + 40, &wide);
    cr_assert(strstr(ok, "rc=0  0:0"), "%s", ok);
    free(ok);

    /* The defaults are there when the options are 0. */
    size_t big = NCC_CSV_DEFAULT_MAX_FIELD_BYTES + 1;
    char *huge = malloc(big);
    memset(huge, 'y', big);
    ncc_csv_reader_t *reader = ncc_csv_reader_new(huge, big, NULL);
    cr_assert_eq(ncc_csv_reader_next(reader), -E2BIG);
    cr_assert_str_eq(ncc_csv_reader_error(reader)->code, "field_too_long");
    cr_assert_eq(ncc_csv_reader_error(reader)->column, NCC_CSV_DEFAULT_MAX_FIELD_BYTES + 1);
    ncc_csv_reader_destroy(&reader);
    reader = ncc_csv_reader_new(huge, big - 1, NULL);
    cr_assert_eq(ncc_csv_reader_next(reader), 1);
    ncc_csv_reader_destroy(&reader);
    free(huge);
}

Test(csv, byte_order_mark_is_skipped)
{
    EXPECT("\xef\xbb\xbfid,name\r\n1,住民票\r\n", "L1:[id][name]\nL2:[1][住民票]\nrc=0  0:0");
    EXPECT("\xef\xbb\xbf", "rc=0  0:0");
    EXPECT("\xef\xbb\xbf\xef\xbb\xbf"
           "a",
           "L1:[a]\nrc=0  0:0");
    EXPECT("\xef\xbb\xbf\r\nx", "L2:[x]\nrc=0  0:0");
    /* Only at the start: later it is a character of the field. */
    EXPECT("a\n\xef\xbb\xbf"
           "b",
           "L1:[a]\nL2:[\xef\xbb\xbf"
           "b]\nrc=0  0:0");
    /* The BOM means UTF-8: a Shift_JIS line after it is mixed. */
    EXPECT("\xef\xbb\xbfid\r\n" SJ_JUMIN "\r\n", "L1:[id]\nrc=-84 mixed_encoding 2:0");

    ncc_csv_reader_t *reader = ncc_csv_reader_new("\xef\xbb\xbfx", 4, NULL);
    cr_assert_eq(ncc_csv_reader_next(reader), 1);
    cr_assert_eq(ncc_csv_reader_encoding(reader), NCC_CSV_UTF8);
    ncc_csv_reader_destroy(&reader);

    ncc_csv_options_t cp932 = {.encoding = NCC_CSV_CP932};
    s_expect("\xef\xbb\xbfx", 4, &cp932, "rc=-84 invalid_encoding 1:1");
}

/* ---- encodings ---------------------------------------------------------------------- */

#define SJ_FILE                                                                                    \
    SJ_BANGO "," SJ_SHIMEI "," SJ_JUSHO "\r\n"                                                     \
             "1," SJ_JUMIN "," SJ_NAKANO "\r\n"                                                    \
             "2," SJ_AIU "," SJ_MARU1 SJ_TAKA "\r\n"                                               \
             "3,\"" SJ_SO SJ_HYO "\r\n" SJ_TILDE "\",\\\r\n"
#define SJ_FILE_UTF8 "番号,氏名,住所\r\n1,住民票,中野区\r\n2,ｱｲｳ,①髙\r\n3,\"ソ表\r\n～\",\\\r\n"

Test(csv, shift_jis_is_detected_and_converted)
{
    EXPECT(SJ_FILE, "L1:[番号][氏名][住所]\nL2:[1][住民票][中野区]\nL3:[2][ｱｲｳ][①髙]\n"
                    "L4:[3][ソ表\r\n～][\\]\nrc=0  0:0");

    ncc_csv_encoding_t encoding = NCC_CSV_AUTO;
    ncc_csv_error_t err;
    cr_assert_eq(ncc_csv_detect_encoding(SJ_FILE, strlen(SJ_FILE), &encoding, &err), 0);
    cr_assert_eq(encoding, NCC_CSV_CP932);
    cr_assert_str_eq(err.code, "");

    char *text = NULL;
    size_t len = 0;
    cr_assert_eq(ncc_csv_to_utf8(SJ_FILE, strlen(SJ_FILE), NCC_CSV_AUTO, &text, &len, &err), 0);
    cr_assert_str_eq(text, SJ_FILE_UTF8);
    cr_assert_eq(len, strlen(SJ_FILE_UTF8));
    free(text);

    /* The same text as UTF-8 reads the same. */
    cr_assert_eq(ncc_csv_detect_encoding(SJ_FILE_UTF8, strlen(SJ_FILE_UTF8), &encoding, &err), 0);
    cr_assert_eq(encoding, NCC_CSV_UTF8);
    char *a = s_read(SJ_FILE, strlen(SJ_FILE), NULL);
    char *b = s_read(SJ_FILE_UTF8, strlen(SJ_FILE_UTF8), NULL);
    cr_assert_str_eq(a, b);
    free(a);
    free(b);

    /* Each character on its own line, so each one decides. */
    EXPECT(SJ_AIU, "L1:[ｱｲｳ]\nrc=0  0:0");
    EXPECT(SJ_MARU1, "L1:[①]\nrc=0  0:0");
    EXPECT(SJ_TAKA, "L1:[髙]\nrc=0  0:0");
    EXPECT(SJ_SO "," SJ_HYO, "L1:[ソ][表]\nrc=0  0:0");
    /* The encoding is undecided while only ASCII has been read. */
    ncc_csv_reader_t *reader = ncc_csv_reader_new("a\n" SJ_JUMIN, 2 + 6, NULL);
    cr_assert_eq(ncc_csv_reader_next(reader), 1);
    cr_assert_eq(ncc_csv_reader_encoding(reader), NCC_CSV_AUTO);
    cr_assert_eq(ncc_csv_reader_next(reader), 1);
    cr_assert_eq(ncc_csv_reader_encoding(reader), NCC_CSV_CP932);
    cr_assert_eq(ncc_csv_reader_next(reader), 0);
    ncc_csv_reader_destroy(&reader);
    /* A forced encoding is used as it is. */
    ncc_csv_options_t cp932 = {.encoding = NCC_CSV_CP932};
    s_expect(SJ_TESU, 2, &cp932, "L1:[ﾃｽ]\nrc=0  0:0");
    ncc_csv_options_t utf8 = {.encoding = NCC_CSV_UTF8};
    s_expect(SJ_JUMIN, 6, &utf8, "rc=-84 invalid_encoding 1:1");
}

Test(csv, ambiguous_lines_wait_for_a_line_that_decides)
{
    /* "ﾃｽ" in CP932 is the bytes of "ý" in UTF-8: the next line decides. */
    EXPECT(SJ_TESU "\r\n" SJ_JUMIN "\r\n", "L1:[ﾃｽ]\nL2:[住民票]\nrc=0  0:0");
    EXPECT("ý\r\n住民票\r\n", "L1:[ý]\nL2:[住民票]\nrc=0  0:0");
    EXPECT("ý", "L1:[ý]\nrc=0  0:0");
    EXPECT("a,ý\n\"" SJ_TESU "\n\",b\n" SJ_AIU, "L1:[a][ﾃｽ]\nL2:[ﾃｽ\n][b]\nL4:[ｱｲｳ]\nrc=0  0:0");
    /* Beyond the look-ahead (max_line_bytes) it is UTF-8, and the later
     * Shift_JIS line is then mixed. */
    ncc_csv_options_t o = {.max_line_bytes = 16};
    s_expect(SJ_TESU "\n" SJ_TESU "\n" SJ_TESU "\n" SJ_TESU "\n" SJ_TESU "\n" SJ_TESU "\n" SJ_JUMIN,
             6 * 3 + 6, &o,
             "L1:[ý]\nL2:[ý]\nL3:[ý]\nL4:[ý]\nL5:[ý]\nL6:[ý]\nrc=-84 mixed_encoding 7:0");
    s_expect(SJ_TESU "\n" SJ_JUMIN, 3 + 6, &o, "L1:[ﾃｽ]\nL2:[住民票]\nrc=0  0:0");
    /* A line too long ends the look-ahead inside a record, which still comes
     * out whole; the error comes when the reader gets to that line. */
    const char *cut = "x,\"a\n\xc3\xbd\"\nzzzzzzzzzzzzzzzzzzzz";
    s_expect(cut, strlen(cut), &o, "L1:[x][a\ný]\nrc=-7 line_too_long 3:0");
}

Test(csv, mixed_encodings_name_the_first_bad_line)
{
    /* UTF-8 first, then Shift_JIS on line 3: records before it come out. */
    const char *mixed = "id,name\r\n1,住民票\r\n2," SJ_NAKANO "\r\n3,x\r\n";
    s_expect(mixed, strlen(mixed), NULL,
             "L1:[id][name]\nL2:[1][住民票]\nrc=-84 mixed_encoding 3:0");
    ncc_csv_encoding_t encoding = NCC_CSV_AUTO;
    ncc_csv_error_t err;
    cr_assert_eq(ncc_csv_detect_encoding(mixed, strlen(mixed), &encoding, &err), -EILSEQ);
    cr_assert_str_eq(err.code, "mixed_encoding");
    cr_assert_eq(err.line, 3);
    cr_assert(strstr(err.message, "line 2"), "names the line that decided: %s", err.message);
    cr_assert_eq(encoding, NCC_CSV_AUTO, "not written on failure");

    /* Shift_JIS first, then UTF-8 on line 4 (inside a quoted field). */
    const char *other = "1," SJ_JUMIN "\r\n\"2\r\n" SJ_NAKANO "\r\n中野区\"\r\n";
    s_expect(other, strlen(other), NULL, "L1:[1][住民票]\nrc=-84 mixed_encoding 4:0");
    cr_assert_eq(ncc_csv_detect_encoding(other, strlen(other), &encoding, &err), -EILSEQ);
    cr_assert_eq(err.line, 4);
    char *text = (char *)"unchanged";
    cr_assert_eq(ncc_csv_to_utf8(other, strlen(other), NCC_CSV_AUTO, &text, NULL, &err), -EILSEQ);
    cr_assert_str_eq(text, "unchanged");
    cr_assert_str_eq(err.code, "mixed_encoding");
}

Test(csv, invalid_bytes_are_refused_with_line_and_column)
{
    EXPECT("\xff\xfe"
           "a",
           "rc=-84 invalid_encoding 1:1");
    /* A lead byte cut off at the end of a Shift_JIS line. */
    EXPECT(SJ_JUMIN "\nc,\x81", "L1:[住民票]\nrc=-84 invalid_encoding 2:3");
    EXPECT(SJ_JUMIN "\n" SJ_NAKANO "\x80", "L1:[住民票]\nrc=-84 invalid_encoding 2:4");
    /* A UTF-8 surrogate and an overlong form after UTF-8. */
    EXPECT("住民票\nab\xed\xa0\x80", "L1:[住民票]\nrc=-84 invalid_encoding 2:3");
    EXPECT("住民票\n\xe0\x80\x80", "L1:[住民票]\nrc=-84 invalid_encoding 2:1");
    /* An overlong form that happens to be CP932 (縲ｯ) is mixed, not invalid. */
    EXPECT("住民票\n\xe0\x80\xaf", "L1:[住民票]\nrc=-84 mixed_encoding 2:0");
    EXPECT("\xf4\x90\x80\x80", "rc=-84 invalid_encoding 1:1"); /* above U+10FFFF */
    /* NUL bytes, in either encoding and in quotes. */
    s_expect("a,b\x00"
             "c",
             5, NULL, "rc=-84 invalid_encoding 1:4");
    s_expect("住民票,\"\x00\"", 13, NULL, "rc=-84 invalid_encoding 1:6");
    s_expect(SJ_JUMIN ",\x00", 8, NULL, "rc=-84 invalid_encoding 1:5");
    ncc_csv_encoding_t encoding;
    ncc_csv_error_t err;
    cr_assert_eq(ncc_csv_detect_encoding("a\nb\x00", 5, &encoding, &err), -EILSEQ);
    cr_assert_eq(err.line, 2);
    cr_assert_eq(err.column, 2);
    cr_assert_eq(ncc_csv_detect_encoding("plain,ascii\n", 12, &encoding, &err), 0);
    cr_assert_eq(encoding, NCC_CSV_UTF8);
    cr_assert_eq(ncc_csv_detect_encoding("", 0, &encoding, &err), 0);
    cr_assert_eq(encoding, NCC_CSV_UTF8);
    cr_assert_eq(ncc_csv_detect_encoding(NULL, 0, &encoding, NULL), 0);
    cr_assert_eq(ncc_csv_detect_encoding(NULL, 1, &encoding, NULL), -EINVAL);
}

/* ---- sources ----------------------------------------------------------------------- */

Test(csv, reads_from_fd_file_and_reports_read_errors)
{
    const char *input = SJ_FILE;
    char *expected = s_read(input, strlen(input), NULL);

    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    cr_assert_eq(write(fds[1], input, strlen(input)), (ssize_t)strlen(input));
    close(fds[1]);
    ncc_csv_reader_t *reader = ncc_csv_reader_new_fd(fds[0], NULL);
    char *got = s_render(reader);
    cr_assert_str_eq(got, expected);
    free(got);
    ncc_csv_reader_destroy(&reader);
    close(fds[0]);

    FILE *file = fmemopen((void *)input, strlen(input), "r");
    cr_assert_not_null(file);
    reader = ncc_csv_reader_new_file(file, NULL);
    got = s_render(reader);
    cr_assert_str_eq(got, expected);
    free(got);
    ncc_csv_reader_destroy(&reader);
    fclose(file);
    free(expected);

    s_source_t src = {.data = "a,b\r\nc,d\r\ne,f\r\n", .len = 15, .chunk = 2, .fail_after = 7};
    reader = ncc_csv_reader_new_stream(s_source_read, &src, NULL);
    got = s_render(reader);
    cr_assert_str_eq(got, "L1:[a][b]\nrc=-5 read_error 2:0");
    free(got);
    ncc_csv_reader_destroy(&reader);

    cr_assert_null(ncc_csv_reader_new_stream(NULL, NULL, NULL));
    cr_assert_null(ncc_csv_reader_new_fd(-1, NULL));
    cr_assert_null(ncc_csv_reader_new_file(NULL, NULL));
    ncc_csv_reader_destroy(NULL);
    ncc_csv_reader_destroy(&reader);
}

/* ---- writer -------------------------------------------------------------------------- */

/* Writes rows of NULL-terminated field lists; returns the output (caller frees). */
static char *s_write(unsigned flags, const char *const *rows[], size_t nrows, size_t *ret_len)
{
    ncc_csv_writer_t *writer = ncc_csv_writer_new(flags, NULL, NULL);
    cr_assert_not_null(writer);
    for (size_t r = 0; r < nrows; r++) {
        size_t n = 0;
        while (rows[r][n])
            n++;
        cr_assert_eq(ncc_csv_writer_row(writer, rows[r], n), 0, "row %zu: %s", r,
                     ncc_csv_writer_error(writer)->message);
    }
    cr_assert_eq(ncc_csv_writer_rows(writer), nrows);
    char *out = ncc_csv_writer_take(writer, ret_len);
    cr_assert_not_null(out);
    ncc_csv_writer_destroy(&writer);
    cr_assert_null(writer);
    return out;
}

Test(csv, writer_quotes_as_rfc4180_and_reads_back)
{
    const char *r1[] = {"plain", "a,b", "say \"hi\"", "two\r\nlines", "lf\nonly", "cr\ronly", NULL};
    const char *r2[] = {" lead", "trail ", "\tlead tab", "trail tab\t", "in side", "", NULL};
    const char *r3[] = {"", NULL};
    const char *r4[] = {"住民票", "中野区,東京都", "「引用」\"", "ｱｲｳ①髙", NULL};
    const char *r5[] = {"", "", NULL};
    const char *r0[] = {"\xef\xbb\xbf"
                        "bom",
                        "\xef\xbb\xbf", NULL};
    const char *const *rows[] = {r0, r1, r2, r3, r4, r5};
    size_t len = 0;
    char *out = s_write(NCC_CSV_WRITE_NO_FORMULA_GUARD, rows, 6, &len);
    cr_assert_str_eq(out, "\"\xef\xbb\xbf"
                          "bom\",\"\xef\xbb\xbf\"\r\n"
                          "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\r\nlines\",\"lf\nonly\","
                          "\"cr\ronly\"\r\n"
                          "\" lead\",\"trail \",\"\tlead tab\",\"trail tab\t\",in side,\r\n"
                          "\"\"\r\n"
                          "住民票,\"中野区,東京都\",\"「引用」\"\"\",ｱｲｳ①髙\r\n"
                          ",\r\n");
    cr_assert_eq(len, strlen(out));

    /* Reading it back gives the same fields, record by record. */
    ncc_csv_reader_t *reader = ncc_csv_reader_new(out, len, NULL);
    for (size_t r = 0; r < 6; r++) {
        cr_assert_eq(ncc_csv_reader_next(reader), 1, "%s", ncc_csv_reader_error(reader)->message);
        size_t n = 0;
        while (rows[r][n])
            n++;
        cr_assert_eq(ncc_csv_reader_count(reader), n, "row %zu", r);
        for (size_t f = 0; f < n; f++)
            cr_assert_str_eq(ncc_csv_reader_field(reader, f, NULL), rows[r][f]);
    }
    cr_assert_eq(ncc_csv_reader_next(reader), 0);
    ncc_csv_reader_destroy(&reader);
    free(out);
}

Test(csv, writer_defends_against_formulas_by_default)
{
    const char *r1[] = {"=SUM(A1:A9)", "+81-3-1234-5678", "-2+3", "@cmd", "\tx", "\ry", "=1,2",
                        NULL};
    const char *r2[] = {"-5", "+12.50", "0312345678", "a=b", "-", "-.5", "1-2", "－1", NULL};
    const char *const *rows[] = {r1, r2};
    char *out = s_write(0, rows, 2, NULL);
    cr_assert_str_eq(out, "'=SUM(A1:A9),'+81-3-1234-5678,'-2+3,'@cmd,'\tx,\"'\ry\",\"'=1,2\"\r\n"
                          "-5,+12.50,0312345678,a=b,'-,'-.5,1-2,－1\r\n");
    free(out);
    /* Turned off for machine-to-machine files. */
    out = s_write(NCC_CSV_WRITE_NO_FORMULA_GUARD, rows, 1, NULL);
    cr_assert_str_eq(out, "=SUM(A1:A9),+81-3-1234-5678,-2+3,@cmd,\"\tx\",\"\ry\",\"=1,2\"\r\n");
    free(out);
}

Test(csv, writer_bom_and_cp932)
{
    const char *r1[] = {"番号", "氏名", "住所", NULL};
    const char *r2[] = {"1", "住民票", "中野区", NULL};
    const char *r3[] = {"2", "ｱｲｳ", "①髙", NULL};
    const char *r4[] = {"3", "ソ表\r\n〜", "\\", NULL};
    const char *const *rows[] = {r1, r2, r3, r4};
    size_t len = 0;
    char *out = s_write(NCC_CSV_WRITE_BOM, rows, 1, &len);
    cr_assert_str_eq(out, "\xef\xbb\xbf番号,氏名,住所\r\n");
    free(out);

    /* CP932: the exact bytes Excel expects; 〜 (U+301C) becomes 0x8160. */
    out = s_write(NCC_CSV_WRITE_CP932 | NCC_CSV_WRITE_BOM, rows, 4, &len);
    cr_assert_str_eq(out, SJ_FILE);
    cr_assert_eq(len, strlen(SJ_FILE));
    /* Read back: the same fields (〜 comes back as ～, the form CP932 has). */
    char *text = s_read(out, len, NULL);
    cr_assert_str_eq(text, "L1:[番号][氏名][住所]\nL2:[1][住民票][中野区]\nL3:[2][ｱｲｳ][①髙]\n"
                           "L4:[3][ソ表\r\n～][\\]\nrc=0  0:0");
    free(text);
    free(out);

    /* A character CP932 lacks: an error naming row and field; the row stays
     * as it was, so the caller can write something else. */
    ncc_csv_writer_t *writer = ncc_csv_writer_new(NCC_CSV_WRITE_CP932, NULL, NULL);
    cr_assert_eq(ncc_csv_writer_row(writer, r1, 3), 0);
    cr_assert_eq(ncc_csv_writer_field_str(writer, "ok"), 0);
    cr_assert_eq(ncc_csv_writer_field_str(writer, "中"), 0);
    cr_assert_eq(ncc_csv_writer_field_str(writer, "emoji 😀 here"), -EILSEQ);
    const ncc_csv_error_t *err = ncc_csv_writer_error(writer);
    cr_assert_str_eq(err->code, "unrepresentable");
    cr_assert_eq(err->line, 2);
    cr_assert_eq(err->column, 3);
    cr_assert(strstr(err->message, "row 2, field 3"), "%s", err->message);
    cr_assert(strstr(err->message, "character 7"), "%s", err->message);
    cr_assert_eq(ncc_csv_writer_field_str(writer, "€"), -EILSEQ);
    cr_assert_eq(ncc_csv_writer_field_str(writer, "end"), 0);
    cr_assert_eq(ncc_csv_writer_end_row(writer), 0);
    const char *bad_row[] = {"x", "é", "y"};
    cr_assert_eq(ncc_csv_writer_row(writer, bad_row, 3), -EILSEQ);
    cr_assert_eq(ncc_csv_writer_error(writer)->column, 2);
    size_t data_len = 0;
    const char *data = ncc_csv_writer_data(writer, &data_len);
    const char *want = SJ_BANGO "," SJ_SHIMEI "," SJ_JUSHO "\r\nok,\x92\x86,end\r\n";
    cr_assert_eq(data_len, strlen(want));
    cr_assert_eq(memcmp(data, want, data_len), 0);
    ncc_csv_writer_destroy(&writer);

    /* With the replacement flag: '?'. */
    writer = ncc_csv_writer_new(NCC_CSV_WRITE_CP932 | NCC_CSV_WRITE_CP932_REPLACE, NULL, NULL);
    cr_assert_eq(ncc_csv_writer_field_str(writer, "a😀b€é"
                                                  "中"),
                 0);
    cr_assert_eq(ncc_csv_writer_end_row(writer), 0);
    data = ncc_csv_writer_data(writer, &data_len);
    cr_assert_eq(data_len, 9);
    cr_assert_eq(memcmp(data, "a?b??\x92\x86\r\n", 9), 0);
    ncc_csv_writer_destroy(&writer);
}

Test(csv, writer_refuses_bad_input)
{
    ncc_csv_writer_t *writer = ncc_csv_writer_new(0, NULL, NULL);
    cr_assert_eq(ncc_csv_writer_end_row(writer), -EINVAL);
    cr_assert_str_eq(ncc_csv_writer_error(writer)->code, "empty_row");
    cr_assert_eq(ncc_csv_writer_field(writer, "a\0b", 3), -EINVAL);
    cr_assert_str_eq(ncc_csv_writer_error(writer)->code, "nul_byte");
    cr_assert_eq(ncc_csv_writer_field(writer, "\xff", 1), -EILSEQ);
    cr_assert_str_eq(ncc_csv_writer_error(writer)->code, "invalid_encoding");
    cr_assert_eq(ncc_csv_writer_field(writer, "\xe4\xbd", 2), -EILSEQ, "a cut character");
    cr_assert_eq(ncc_csv_writer_field(writer, NULL, 1), -EINVAL);
    cr_assert_eq(ncc_csv_writer_field(writer, NULL, 0), 0);
    cr_assert_eq(ncc_csv_writer_field_str(writer, NULL), 0);
    cr_assert_eq(ncc_csv_writer_end_row(writer), 0);
    size_t len = 0;
    char *out = ncc_csv_writer_take(writer, &len);
    cr_assert_str_eq(out, ",\r\n");
    free(out);
    out = ncc_csv_writer_take(writer, &len);
    cr_assert_str_eq(out, "");
    cr_assert_eq(len, 0);
    free(out);
    cr_assert_null(ncc_csv_writer_data(NULL, NULL));
    ncc_csv_writer_destroy(&writer);
    ncc_csv_writer_destroy(NULL);
}

/* A sink collecting everything, failing once `fail` is set. */
typedef struct {
    s_str_t out;
    size_t calls;
    bool fail;
} s_sink_t;

static int s_sink(void *arg, const void *data, size_t len)
{
    s_sink_t *sink = arg;
    if (sink->fail)
        return -EPIPE;
    sink->calls++;
    s_add(&sink->out, data, len);
    return 0;
}

Test(csv, writer_streams_to_a_sink)
{
    s_sink_t sink = {0};
    ncc_csv_writer_t *writer = ncc_csv_writer_new(NCC_CSV_WRITE_BOM, s_sink, &sink);
    cr_assert_null(ncc_csv_writer_data(writer, NULL));
    cr_assert_null(ncc_csv_writer_take(writer, NULL));
    char field[32];
    for (int i = 0; i < 10000; i++) {
        snprintf(field, sizeof field, "%d", i);
        const char *row[] = {field, "受付内容, \"引用\"", "=1"};
        cr_assert_eq(ncc_csv_writer_row(writer, row, 3), 0);
    }
    cr_assert_gt(sink.calls, 1, "handed over in pieces while writing");
    cr_assert_eq(ncc_csv_writer_flush(writer), 0);

    /* Everything arrived, in order, and reads back. */
    ncc_csv_reader_t *reader = ncc_csv_reader_new(sink.out.text, sink.out.len, NULL);
    for (int i = 0; i < 10000; i++) {
        cr_assert_eq(ncc_csv_reader_next(reader), 1);
        snprintf(field, sizeof field, "%d", i);
        cr_assert_str_eq(ncc_csv_reader_field(reader, 0, NULL), field);
        cr_assert_str_eq(ncc_csv_reader_field(reader, 1, NULL), "受付内容, \"引用\"");
        cr_assert_str_eq(ncc_csv_reader_field(reader, 2, NULL), "'=1");
        cr_assert_eq(ncc_csv_reader_line(reader), (size_t)i + 1);
    }
    cr_assert_eq(ncc_csv_reader_next(reader), 0);
    cr_assert_eq(ncc_csv_reader_records(reader), 10000);
    ncc_csv_reader_destroy(&reader);

    /* A sink error is final. */
    sink.fail = true;
    const char *row[] = {"x"};
    cr_assert_eq(ncc_csv_writer_row(writer, row, 1), 0, "still buffered");
    cr_assert_eq(ncc_csv_writer_flush(writer), -EPIPE);
    cr_assert_str_eq(ncc_csv_writer_error(writer)->code, "sink_error");
    sink.fail = false;
    cr_assert_eq(ncc_csv_writer_field_str(writer, "y"), -EPIPE);
    cr_assert_eq(ncc_csv_writer_end_row(writer), -EPIPE);
    cr_assert_eq(ncc_csv_writer_flush(writer), -EPIPE);
    ncc_csv_writer_destroy(&writer);
    free(sink.out.text);
}
