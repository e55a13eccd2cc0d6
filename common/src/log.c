/* log: JSON lines on stdout. Each line is built in memory and handed to the
 * kernel with one write(), so lines from different threads never interleave.
 * Strings are escaped so that any input (control characters, invalid UTF-8)
 * still gives one valid JSON object per line. */
#include "ncc/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define S_SERVICE_MAX 64
#define S_TRACE_MAX   128
/* Messages up to this size are formatted on the stack. */
#define S_MSG_STACK 1024

/* Minimum level; read without a lock on every call. */
static atomic_int s_level = NCC_LOG_INFO;
/* Service name, replaced by ncc_log_init (SIGHUP), read under s_lock. */
static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static char s_service[S_SERVICE_MAX];
/* This thread's trace id; "" when none. */
static _Thread_local char s_trace[S_TRACE_MAX];

static const char *const s_level_names[] = {"debug", "info", "warn", "error"};

/* A growable line buffer. On allocation failure `failed` is set and further
 * appends are ignored; the caller then writes nothing. */
typedef struct {
    char *data;  /* owned */
    size_t len;  /* bytes used */
    size_t cap;  /* bytes allocated */
    bool failed; /* an allocation failed */
} s_buf_t;

static void s_buf_reserve(s_buf_t *buf, size_t extra)
{
    if (buf->failed || buf->len + extra <= buf->cap)
        return;
    size_t cap = buf->cap ? buf->cap : 256;
    while (cap < buf->len + extra)
        cap *= 2;
    char *data = realloc(buf->data, cap);
    if (!data) {
        buf->failed = true;
        return;
    }
    buf->data = data;
    buf->cap = cap;
}

static void s_buf_add(s_buf_t *buf, const char *bytes, size_t len)
{
    s_buf_reserve(buf, len);
    if (buf->failed)
        return;
    memcpy(buf->data + buf->len, bytes, len);
    buf->len += len;
}

static void s_buf_adds(s_buf_t *buf, const char *text)
{
    s_buf_add(buf, text, strlen(text));
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when the bytes there
 * are not valid UTF-8 (overlong forms, surrogates and code points above
 * U+10FFFF are invalid, as in RFC 3629). */
static size_t s_utf8_valid(const unsigned char *s, size_t left, uint32_t *ret_cp)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t cp, min;
    if (c < 0x80) {
        *ret_cp = c;
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        n = 2, cp = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3, cp = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (left < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    *ret_cp = cp;
    return n;
}

/* Appends `text` (len bytes) as a JSON string, quotes included. Invalid UTF-8
 * bytes become U+FFFD; U+2028 and U+2029 are escaped for JavaScript readers. */
static void s_buf_add_json(s_buf_t *buf, const char *text, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    s_buf_add(buf, "\"", 1);
    while (i < len) {
        /* Copy the longest run that needs no escaping in one go. */
        size_t run = i;
        while (run < len && s[run] >= 0x20 && s[run] < 0x7f && s[run] != '"' && s[run] != '\\')
            run++;
        if (run > i) {
            s_buf_add(buf, text + i, run - i);
            i = run;
            continue;
        }
        unsigned char c = s[i];
        uint32_t cp = 0;
        size_t n;
        switch (c) {
        case '"':
            s_buf_add(buf, "\\\"", 2);
            i++;
            continue;
        case '\\':
            s_buf_add(buf, "\\\\", 2);
            i++;
            continue;
        case '\n':
            s_buf_add(buf, "\\n", 2);
            i++;
            continue;
        case '\r':
            s_buf_add(buf, "\\r", 2);
            i++;
            continue;
        case '\t':
            s_buf_add(buf, "\\t", 2);
            i++;
            continue;
        default:
            break;
        }
        if (c < 0x20 || c == 0x7f) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf]};
            s_buf_add(buf, esc, sizeof esc);
            i++;
            continue;
        }
        n = s_utf8_valid(s + i, len - i, &cp);
        if (n == 0) {
            s_buf_add(buf, "\\ufffd", 6);
            i++;
        } else if (cp == 0x2028 || cp == 0x2029) {
            s_buf_add(buf, cp == 0x2028 ? "\\u2028" : "\\u2029", 6);
            i += n;
        } else {
            s_buf_add(buf, text + i, n);
            i += n;
        }
    }
    s_buf_add(buf, "\"", 1);
}

/* RFC 3339 local time with milliseconds and the numeric offset:
 * 2027-04-01T09:30:00.123+09:00. */
static void s_timestamp(char *out, size_t len)
{
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    if (!localtime_r(&now.tv_sec, &tm)) {
        snprintf(out, len, "1970-01-01T00:00:00.000+00:00");
        return;
    }
    char date[32];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    /* Offsets are within +-18 h; the modulo keeps the compiler sure of that. */
    int off = (int)(tm.tm_gmtoff % 86400);
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    snprintf(out, len, "%.20s.%03d%c%02d:%02d", date, (int)(now.tv_nsec / 1000000) % 1000, sign,
             off / 3600, (off % 3600) / 60);
}

/* Writes all of buf to fd 1 with as few write() calls as the kernel allows
 * (one, unless a signal interrupts or the pipe is short). */
static void s_write_all(const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDOUT_FILENO, data, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return; /* nowhere left to report it */
        }
        data += n;
        len -= (size_t)n;
    }
}

void ncc_log_init(const char *service, ncc_log_level_t level)
{
    pthread_mutex_lock(&s_lock);
    snprintf(s_service, sizeof s_service, "%s", service ? service : "");
    pthread_mutex_unlock(&s_lock);
    if ((int)level < NCC_LOG_DEBUG || (int)level > NCC_LOG_ERROR)
        level = NCC_LOG_INFO;
    atomic_store_explicit(&s_level, (int)level, memory_order_relaxed);
}

int ncc_log_level_parse(const char *text, ncc_log_level_t *ret_level)
{
    if (!text)
        return -EINVAL;
    for (int i = NCC_LOG_DEBUG; i <= NCC_LOG_ERROR; i++) {
        if (strcasecmp(text, s_level_names[i]) == 0) {
            *ret_level = (ncc_log_level_t)i;
            return 0;
        }
    }
    if (strcasecmp(text, "warning") == 0) {
        *ret_level = NCC_LOG_WARN;
        return 0;
    }
    return -EINVAL;
}

void ncc_log_set_trace(const char *trace_id)
{
    snprintf(s_trace, sizeof s_trace, "%s", trace_id ? trace_id : "");
}

const char *ncc_log_trace(void)
{
    return s_trace[0] ? s_trace : NULL;
}

bool ncc_log_enabled(ncc_log_level_t level)
{
    return (int)level >= atomic_load_explicit(&s_level, memory_order_relaxed);
}

void ncc_log_write(ncc_log_level_t level, const char *event, const char *fmt, ...)
{
    if (!ncc_log_enabled(level))
        return;
    if ((int)level < NCC_LOG_DEBUG || (int)level > NCC_LOG_ERROR)
        level = NCC_LOG_ERROR;

    /* The message: on the stack when it fits, else on the heap. */
    char stack_msg[S_MSG_STACK];
    char *heap_msg = NULL;
    const char *msg = "";
    size_t msg_len = 0;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(stack_msg, sizeof stack_msg, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < sizeof stack_msg) {
            msg = stack_msg;
            msg_len = (size_t)n;
        } else if (n >= 0) {
            heap_msg = malloc((size_t)n + 1);
            if (heap_msg) {
                va_start(ap, fmt);
                vsnprintf(heap_msg, (size_t)n + 1, fmt, ap);
                va_end(ap);
                msg = heap_msg;
                msg_len = (size_t)n;
            } else {
                msg = stack_msg; /* truncated, better than nothing */
                msg_len = strlen(stack_msg);
            }
        }
    }

    char ts[64];
    s_timestamp(ts, sizeof ts);
    char service[S_SERVICE_MAX];
    pthread_mutex_lock(&s_lock);
    memcpy(service, s_service, sizeof service);
    pthread_mutex_unlock(&s_lock);
    if (!service[0])
        snprintf(service, sizeof service, "%s", program_invocation_short_name);

    s_buf_t buf = {0};
    s_buf_reserve(&buf, 160 + msg_len + msg_len / 8);
    s_buf_adds(&buf, "{\"ts\":\"");
    s_buf_adds(&buf, ts);
    s_buf_adds(&buf, "\",\"level\":\"");
    s_buf_adds(&buf, s_level_names[level]);
    s_buf_adds(&buf, "\",\"service\":");
    s_buf_add_json(&buf, service, strlen(service));
    if (s_trace[0]) {
        s_buf_adds(&buf, ",\"trace_id\":");
        s_buf_add_json(&buf, s_trace, strlen(s_trace));
    }
    s_buf_adds(&buf, ",\"event\":");
    s_buf_add_json(&buf, event ? event : "", event ? strlen(event) : 0);
    s_buf_adds(&buf, ",\"msg\":");
    s_buf_add_json(&buf, msg, msg_len);
    s_buf_add(&buf, "}\n", 2);

    if (!buf.failed)
        s_write_all(buf.data, buf.len);
    free(buf.data);
    free(heap_msg);
}
