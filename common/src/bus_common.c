/* bus_common: what the RPC and event halves of the bus share: random ids,
 * clocks, the [type][envelope] framing (pack straight into a frame, check on
 * receipt), endpoint lists and hex for bytea. See docs/bus.md. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "bus_internal.h"
#include "ncc/bus.h"
#include "ncc/log.h"
#include "ncc/metrics.h"

#define S_MAX_ENDPOINT 256

static const char s_hex_digits[] = "0123456789abcdef";

void ncc_bus_random_id(char *buf)
{
    uint8_t bytes[16];
    size_t have = 0;
    while (have < sizeof bytes) {
        ssize_t n = getrandom(bytes + have, sizeof bytes - have, 0);
        if (n > 0) {
            have += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        /* No kernel entropy source: ids only need to be unique, not secret. */
        static _Thread_local uint64_t counter;
        uint64_t mix = (uint64_t)ncc_bus_now_us() ^ ((uint64_t)(uintptr_t)&counter << 16) ^
                       (++counter * 0x9e3779b97f4a7c15ULL);
        for (; have < sizeof bytes; have++) {
            mix ^= mix >> 33;
            mix *= 0xff51afd7ed558ccdULL;
            bytes[have] = (uint8_t)mix;
        }
    }
    for (size_t i = 0; i < sizeof bytes; i++) {
        buf[2 * i] = s_hex_digits[bytes[i] >> 4];
        buf[2 * i + 1] = s_hex_digits[bytes[i] & 0x0f];
    }
    buf[2 * sizeof bytes] = '\0';
}

int64_t ncc_bus_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int ncc_bus_endpoints_each(const char *endpoints, int (*fn)(void *arg, const char *endpoint),
                           void *arg)
{
    if (!endpoints)
        return -EINVAL;
    int count = 0;
    const char *p = endpoints;
    while (*p) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        const char *a = p;
        const char *b = end;
        while (a < b && isspace((unsigned char)*a))
            a++;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        if (b > a) {
            char item[S_MAX_ENDPOINT];
            size_t len = (size_t)(b - a);
            if (len >= sizeof item)
                return -EINVAL;
            memcpy(item, a, len);
            item[len] = '\0';
            int rc = fn(arg, item);
            if (rc < 0)
                return rc;
            count++;
        }
        p = *end ? end + 1 : end;
    }
    return count > 0 ? 0 : -EINVAL;
}

const char *ncc_bus_trace_for(const ncc_ctx_t *ctx, char *buf)
{
    if (ctx && ctx->trace_id && *ctx->trace_id)
        return ctx->trace_id;
    const char *current = ncc_log_trace();
    if (current && *current)
        return current;
    ncc_bus_random_id(buf);
    return buf;
}

void ncc_bus_malformed(const char *where, const char *fmt, ...)
{
    ncc_metrics_inc(NCC_METRIC_BUS_MALFORMED);
    if (!ncc_log_enabled(NCC_LOG_WARN))
        return;
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    ncc_warn("bus.malformed", "%s: dropped a message: %s", where, reason);
}

const char *ncc_bus_printable(const char *text, char *buf)
{
    size_t i = 0;
    if (text) {
        for (; text[i] && i < 64; i++) {
            unsigned char c = (unsigned char)text[i];
            buf[i] = (isalnum(c) || c == '.' || c == '_' || c == '-') && c < 0x80 ? (char)c : '?';
        }
    }
    buf[i] = '\0';
    return buf;
}

const uint8_t *ncc_bus_payload(const Ncc__Envelope *envelope, size_t *ret_len)
{
    static const uint8_t empty[1];
    if (envelope->has_payload && envelope->payload.len > 0 && envelope->payload.data) {
        *ret_len = envelope->payload.len;
        return envelope->payload.data;
    }
    *ret_len = 0;
    return empty;
}

int ncc_bus_send(zsock_t *sock, zframe_t **routing_p, const Ncc__Envelope *envelope, int flags)
{
    zframe_t *routing = routing_p ? *routing_p : NULL;
    zframe_t *type = NULL;
    zframe_t *body = NULL;
    int rc = -ENOMEM;
    if (routing_p)
        *routing_p = NULL;

    size_t size = ncc__envelope__get_packed_size(envelope);
    if (!envelope->type || size > NCC_BUS_MAX_MESSAGE) {
        rc = envelope->type ? -EMSGSIZE : -EINVAL;
        goto out;
    }
    type = zframe_new(envelope->type, strlen(envelope->type));
    body = zframe_new(NULL, size);
    if (!type || !body)
        goto out;
    if (size > 0 && ncc__envelope__pack(envelope, zframe_data(body)) != size) {
        rc = -EIO;
        goto out;
    }

    /* libzmq queues a multipart message atomically: only the first frame can
     * block or fail with EAGAIN; the others follow it. */
    int dontwait = flags & ZFRAME_DONTWAIT;
    if (routing) {
        if (zframe_send(&routing, sock, ZFRAME_MORE | dontwait) != 0) {
            rc = errno == EAGAIN ? -EAGAIN : -EIO;
            goto out;
        }
        dontwait = 0;
    }
    if (zframe_send(&type, sock, ZFRAME_MORE | dontwait) != 0) {
        rc = errno == EAGAIN ? -EAGAIN : -EIO;
        goto out;
    }
    if (zframe_send(&body, sock, 0) != 0) {
        rc = -EIO;
        goto out;
    }
    ncc_metrics_inc(NCC_METRIC_BUS_OUT);
    rc = 0;
out:
    zframe_destroy(&routing);
    zframe_destroy(&type);
    zframe_destroy(&body);
    return rc;
}

int ncc_bus_parse(zmsg_t **msg_p, bool routed, const char *where, zframe_t **ret_routing,
                  Ncc__Envelope **ret_envelope)
{
    zmsg_t *msg = *msg_p;
    zframe_t *routing = NULL;
    Ncc__Envelope *envelope = NULL;
    int rc = -EBADMSG;
    char shown[65];
    *msg_p = NULL;

    size_t want = routed ? 3 : 2;
    if (zmsg_size(msg) != want) {
        ncc_bus_malformed(where, "%zu frames, expected %zu", zmsg_size(msg), want);
        goto out;
    }
    if (routed)
        routing = zmsg_pop(msg);
    zframe_t *type = zmsg_first(msg);
    zframe_t *body = zmsg_next(msg);
    size_t type_len = zframe_size(type);
    if (type_len == 0 || type_len > NCC_BUS_MAX_TYPE) {
        ncc_bus_malformed(where, "type frame of %zu bytes", type_len);
        goto out;
    }
    envelope = ncc__envelope__unpack(NULL, zframe_size(body), zframe_data(body));
    if (!envelope) {
        ncc_bus_malformed(where, "envelope of %zu bytes does not unpack", zframe_size(body));
        goto out;
    }
    if (!envelope->type || strlen(envelope->type) != type_len ||
        memcmp(envelope->type, zframe_data(type), type_len) != 0) {
        ncc_bus_malformed(where, "type frame does not match envelope type '%s'",
                          ncc_bus_printable(envelope->type, shown));
        goto out;
    }
    *ret_envelope = envelope;
    envelope = NULL;
    if (ret_routing) {
        *ret_routing = routing;
        routing = NULL;
    }
    rc = 0;
out:
    if (envelope)
        ncc__envelope__free_unpacked(envelope, NULL);
    zframe_destroy(&routing);
    zmsg_destroy(&msg);
    return rc;
}

char *ncc_bus_hex_encode(const uint8_t *data, size_t len)
{
    char *hex = malloc(2 * len + 1);
    if (!hex)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        hex[2 * i] = s_hex_digits[data[i] >> 4];
        hex[2 * i + 1] = s_hex_digits[data[i] & 0x0f];
    }
    hex[2 * len] = '\0';
    return hex;
}

static int s_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int ncc_bus_hex_decode(const char *hex, uint8_t **ret_data, size_t *ret_len)
{
    size_t hex_len = strlen(hex);
    if (hex_len % 2 != 0)
        return -EINVAL;
    uint8_t *data = malloc(hex_len / 2 + 1);
    if (!data)
        return -ENOMEM;
    for (size_t i = 0; i < hex_len / 2; i++) {
        int hi = s_hex_value(hex[2 * i]);
        int lo = s_hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(data);
            return -EINVAL;
        }
        data[i] = (uint8_t)(hi << 4 | lo);
    }
    *ret_data = data;
    *ret_len = hex_len / 2;
    return 0;
}

int ncc_bus_parse_u64(const char *text, uint64_t *ret_value)
{
    if (!text || !isdigit((unsigned char)*text))
        return -EINVAL;
    errno = 0;
    char *end = NULL;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0')
        return -EINVAL;
    *ret_value = value;
    return 0;
}
