/* Tests for ncc/log.h: every line one valid JSON object with the agreed
 * fields, escaping of any byte sequence, thread-local trace ids, the level
 * test before formatting, and no interleaving between threads. stdout is
 * captured through a pipe (dup2) read by a thread. */
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ncc/log.h"

typedef struct {
    int saved_stdout; /* the real fd 1 */
    int read_fd;      /* read end of the pipe */
    pthread_t reader; /* drains the pipe into buf */
    char *buf;        /* everything written, NUL-terminated when stopped */
    size_t len, cap;
} capture_t;

static void *capture_reader(void *arg)
{
    capture_t *c = arg;
    for (;;) {
        if (c->cap - c->len < 4096) {
            c->cap = c->cap ? c->cap * 2 : 65536;
            c->buf = realloc(c->buf, c->cap);
            cr_assert_not_null(c->buf);
        }
        ssize_t n = read(c->read_fd, c->buf + c->len, c->cap - c->len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        c->len += (size_t)n;
    }
    c->buf[c->len] = '\0';
    return NULL;
}

static void capture_start(capture_t *c)
{
    int p[2];
    memset(c, 0, sizeof *c);
    cr_assert_eq(pipe(p), 0);
    fflush(stdout);
    c->saved_stdout = dup(STDOUT_FILENO);
    cr_assert_geq(c->saved_stdout, 0);
    cr_assert_geq(dup2(p[1], STDOUT_FILENO), 0);
    close(p[1]);
    c->read_fd = p[0];
    cr_assert_eq(pthread_create(&c->reader, NULL, capture_reader, c), 0);
}

/* Restores stdout and returns what was written (owned by c). */
static const char *capture_stop(capture_t *c)
{
    fflush(stdout);
    dup2(c->saved_stdout, STDOUT_FILENO); /* closes the last write end: EOF */
    close(c->saved_stdout);
    pthread_join(c->reader, NULL);
    close(c->read_fd);
    return c->buf;
}

/* Splits captured text into parsed lines; every line must be valid JSON and
 * the text must end with a newline. Returns the number of lines. */
static size_t parse_lines(const char *text, cJSON **lines, size_t max)
{
    size_t n = 0;
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        cr_assert_not_null(nl, "last line not terminated: %s", p);
        cr_assert_lt(n, max);
        lines[n] = cJSON_ParseWithLength(p, (size_t)(nl - p));
        cr_assert_not_null(lines[n], "not JSON: %.*s", (int)(nl - p), p);
        cr_assert(cJSON_IsObject(lines[n]));
        n++;
        p = nl + 1;
    }
    return n;
}

static void free_lines(cJSON **lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cJSON_Delete(lines[i]);
}

static const char *field(const cJSON *line, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(line, name);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

Test(log, line_has_the_agreed_fields)
{
    setenv("TZ", "Asia/Tokyo", 1);
    tzset();
    ncc_log_init("testsvc", NCC_LOG_INFO);
    ncc_log_set_trace(NULL);
    capture_t c;
    capture_start(&c);
    ncc_info("test.hello", "hello %d %s", 42, "world");
    const char *text = capture_stop(&c);

    cJSON *lines[4];
    size_t n = parse_lines(text, lines, 4);
    cr_assert_eq(n, 1);
    cJSON *l = lines[0];
    cr_assert_str_eq(field(l, "level"), "info");
    cr_assert_str_eq(field(l, "service"), "testsvc");
    cr_assert_str_eq(field(l, "event"), "test.hello");
    cr_assert_str_eq(field(l, "msg"), "hello 42 world");
    cr_assert_null(cJSON_GetObjectItem(l, "trace_id"), "no trace id was set");
    cr_assert_eq(cJSON_GetArraySize(l), 5);

    const char *ts = field(l, "ts");
    cr_assert_not_null(ts);
    regex_t re;
    cr_assert_eq(regcomp(&re,
                         "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}"
                         "\\+09:00$",
                         REG_EXTENDED),
                 0);
    cr_assert_eq(regexec(&re, ts, 0, NULL, 0), 0, "ts %s is not RFC 3339 with ms and offset", ts);
    regfree(&re);

    /* The timestamp is now, to the second (Asia/Tokyo has no DST). */
    struct tm tm = {0};
    cr_assert_not_null(strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm));
    time_t logged = mktime(&tm);
    cr_assert_leq(labs((long)(time(NULL) - logged)), 2);
    free_lines(lines, n);
    free(c.buf);
}

Test(log, utc_offset_and_negative_offset)
{
    ncc_log_init("testsvc", NCC_LOG_INFO);
    const char *zones[] = {"UTC0", "America/Sao_Paulo"};
    const char *suffix[] = {"+00:00", "-03:00"};
    for (int i = 0; i < 2; i++) {
        setenv("TZ", zones[i], 1);
        tzset();
        capture_t c;
        capture_start(&c);
        ncc_info("test.tz", "x");
        const char *text = capture_stop(&c);
        cJSON *lines[2];
        size_t n = parse_lines(text, lines, 2);
        cr_assert_eq(n, 1);
        const char *ts = field(lines[0], "ts");
        size_t len = strlen(ts);
        cr_assert_str_eq(ts + len - 6, suffix[i], "ts %s in %s", ts, zones[i]);
        free_lines(lines, n);
        free(c.buf);
    }
}

static void *log_from_other_thread(void *arg)
{
    (void)arg;
    ncc_info("test.other", "from another thread");
    ncc_log_set_trace("other-thread-trace");
    ncc_info("test.other", "with its own trace");
    return NULL;
}

Test(log, trace_id_is_per_thread)
{
    ncc_log_init("testsvc", NCC_LOG_INFO);
    capture_t c;
    capture_start(&c);
    ncc_log_set_trace("0123456789abcdef0123456789abcdef");
    cr_assert_str_eq(ncc_log_trace(), "0123456789abcdef0123456789abcdef");
    pthread_t t;
    pthread_create(&t, NULL, log_from_other_thread, NULL);
    pthread_join(t, NULL);
    ncc_info("test.main", "main thread");
    ncc_log_set_trace(NULL);
    cr_assert_null(ncc_log_trace());
    ncc_info("test.main", "cleared");
    const char *text = capture_stop(&c);

    cJSON *lines[8];
    size_t n = parse_lines(text, lines, 8);
    cr_assert_eq(n, 4);
    cr_assert_null(cJSON_GetObjectItem(lines[0], "trace_id"), "other thread inherits nothing");
    cr_assert_str_eq(field(lines[1], "trace_id"), "other-thread-trace");
    cr_assert_str_eq(field(lines[2], "trace_id"), "0123456789abcdef0123456789abcdef");
    cr_assert_str_eq(field(lines[2], "msg"), "main thread");
    cr_assert_null(cJSON_GetObjectItem(lines[3], "trace_id"));
    free_lines(lines, n);
    free(c.buf);
}

Test(log, escapes_any_bytes_into_valid_json)
{
    ncc_log_init("svc \"quoted\"\n", NCC_LOG_DEBUG);
    ncc_log_set_trace("tr\"ace\\");
    struct {
        const char *in;
        const char *out; /* after JSON decoding */
    } cases[] = {
        {"plain", "plain"},
        {"quote \" backslash \\ slash /", "quote \" backslash \\ slash /"},
        {"nl\ncr\rtab\tbs\bff\f", "nl\ncr\rtab\tbs\bff\f"},
        {"ctl \x01\x1f\x7f end", "ctl \x01\x1f\x7f end"},
        {"日本語 印鑑 税 😀", "日本語 印鑑 税 😀"},
        {"bad \xff byte", "bad \xef\xbf\xbd byte"},
        {"cut \xe6\x97", "cut \xef\xbf\xbd\xef\xbf\xbd"},
        {"overlong \xc0\xaf", "overlong \xef\xbf\xbd\xef\xbf\xbd"},
        {"surrogate \xed\xa0\x80", "surrogate \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"too big \xf4\x90\x80\x80", "too big \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"line sep \xe2\x80\xa8 para \xe2\x80\xa9", "line sep \xe2\x80\xa8 para \xe2\x80\xa9"},
    };
    size_t count = sizeof cases / sizeof cases[0];
    capture_t c;
    capture_start(&c);
    for (size_t i = 0; i < count; i++)
        ncc_info(cases[i].in, "%s", cases[i].in);
    const char *text = capture_stop(&c);
    ncc_log_set_trace(NULL);

    /* Raw output: one line per call, no raw control bytes at all. */
    for (const char *p = text; *p; p++)
        cr_assert((unsigned char)*p >= 0x20 || *p == '\n', "raw control byte 0x%02x", *p);
    cJSON *lines[16];
    size_t n = parse_lines(text, lines, 16);
    cr_assert_eq(n, count);
    for (size_t i = 0; i < count; i++) {
        cr_assert_str_eq(field(lines[i], "msg"), cases[i].out, "case %zu", i);
        cr_assert_str_eq(field(lines[i], "event"), cases[i].out, "case %zu", i);
        cr_assert_str_eq(field(lines[i], "service"), "svc \"quoted\"\n");
        cr_assert_str_eq(field(lines[i], "trace_id"), "tr\"ace\\");
    }
    cr_assert_not_null(strstr(text, "\\u2028"), "U+2028 is escaped for JavaScript readers");
    free_lines(lines, n);
    free(c.buf);
}

static int side_effects;

static int count_call(void)
{
    return ++side_effects;
}

Test(log, level_is_tested_before_formatting)
{
    ncc_log_init("testsvc", NCC_LOG_WARN);
    side_effects = 0;
    capture_t c;
    capture_start(&c);
    ncc_debug("test.debug", "%d", count_call());
    ncc_info("test.info", "%d", count_call());
    ncc_log_write(NCC_LOG_INFO, "test.direct", "%d", 1); /* also filtered */
    ncc_warn("test.warn", "%d", count_call());
    ncc_error("test.error", "%d", count_call());
    const char *text = capture_stop(&c);

    cr_assert_eq(side_effects, 2, "arguments of disabled levels must not be evaluated");
    cr_assert(!ncc_log_enabled(NCC_LOG_INFO));
    cr_assert(ncc_log_enabled(NCC_LOG_WARN));
    cJSON *lines[8];
    size_t n = parse_lines(text, lines, 8);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(field(lines[0], "level"), "warn");
    cr_assert_str_eq(field(lines[0], "msg"), "1");
    cr_assert_str_eq(field(lines[1], "level"), "error");
    cr_assert_str_eq(field(lines[1], "msg"), "2");
    free_lines(lines, n);
    free(c.buf);

    /* SIGHUP-style re-init lowers the level. */
    ncc_log_init("testsvc", NCC_LOG_DEBUG);
    cr_assert(ncc_log_enabled(NCC_LOG_DEBUG));
}

Test(log, long_message_is_not_truncated)
{
    ncc_log_init("testsvc", NCC_LOG_INFO);
    size_t len = 20000;
    char *big = malloc(len + 1);
    for (size_t i = 0; i < len; i++)
        big[i] = (char)('a' + i % 26);
    big[len] = '\0';
    capture_t c;
    capture_start(&c);
    ncc_info("test.big", "<%s>", big);
    const char *text = capture_stop(&c);
    cJSON *lines[2];
    size_t n = parse_lines(text, lines, 2);
    cr_assert_eq(n, 1);
    const char *msg = field(lines[0], "msg");
    cr_assert_eq(strlen(msg), len + 2);
    cr_assert_eq(strncmp(msg + 1, big, len), 0);
    free_lines(lines, n);
    free(c.buf);
    free(big);
}

#define THREADS          4
#define LINES_PER_THREAD 250

static void *log_many(void *arg)
{
    int id = (int)(intptr_t)arg;
    char pad[600];
    memset(pad, 'a' + id, sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    for (int i = 0; i < LINES_PER_THREAD; i++)
        ncc_info("test.thread", "%d %d %.*s", id, i, 100 + (i * 7) % 499, pad);
    return NULL;
}

Test(log, threads_do_not_interleave)
{
    ncc_log_init("testsvc", NCC_LOG_INFO);
    capture_t c;
    capture_start(&c);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, log_many, (void *)(intptr_t)i);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    const char *text = capture_stop(&c);

    static cJSON *lines[THREADS * LINES_PER_THREAD + 1];
    size_t n = parse_lines(text, lines, THREADS * LINES_PER_THREAD + 1);
    cr_assert_eq(n, THREADS * LINES_PER_THREAD);
    int next[THREADS] = {0};
    for (size_t i = 0; i < n; i++) {
        const char *msg = field(lines[i], "msg");
        int id = -1, seq = -1, used = 0;
        cr_assert_eq(sscanf(msg, "%d %d %n", &id, &seq, &used), 2);
        cr_assert(id >= 0 && id < THREADS);
        cr_assert_eq(seq, next[id], "thread %d's lines stay in order", id);
        next[id]++;
        const char *pad = msg + used;
        cr_assert_eq(strlen(pad), (size_t)(100 + (seq * 7) % 499));
        for (const char *p = pad; *p; p++)
            cr_assert_eq(*p, 'a' + id, "bytes of another thread inside a line");
    }
    free_lines(lines, n);
    free(c.buf);
}

Test(log, level_parse)
{
    ncc_log_level_t level = NCC_LOG_ERROR;
    cr_assert_eq(ncc_log_level_parse("debug", &level), 0);
    cr_assert_eq(level, NCC_LOG_DEBUG);
    cr_assert_eq(ncc_log_level_parse("INFO", &level), 0);
    cr_assert_eq(level, NCC_LOG_INFO);
    cr_assert_eq(ncc_log_level_parse("warn", &level), 0);
    cr_assert_eq(level, NCC_LOG_WARN);
    cr_assert_eq(ncc_log_level_parse("error", &level), 0);
    cr_assert_eq(level, NCC_LOG_ERROR);
    cr_assert_eq(ncc_log_level_parse("loud", &level), -EINVAL);
    cr_assert_eq(ncc_log_level_parse("", &level), -EINVAL);
    cr_assert_eq(ncc_log_level_parse(NULL, &level), -EINVAL);
    cr_assert_eq(level, NCC_LOG_ERROR, "unchanged on failure");
}
