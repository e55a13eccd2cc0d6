/* json: the generic converter between JSON (cJSON) and protobuf-c messages.
 * Everything is driven by ProtobufCMessageDescriptor / ProtobufCFieldDescriptor,
 * so a new .proto message needs no code here. Rules: ncc/json.h, docs/json.md.
 *
 * Reading builds the message in place, and every allocation is stored in the
 * message (with its count or oneof case) the moment it is made, so that
 * protobuf_c_message_free_unpacked() frees a half-built message completely:
 * on any error we free the top-level message and nothing leaks. */
#include "ncc/json.h"

#include <assert.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The largest integer that a double (and JavaScript) holds exactly together
 * with its neighbours: 2^53 - 1. Beyond it int64/uint64 travel as strings. */
#define S_MAX_SAFE_INTEGER   9007199254740991.0
#define S_MAX_SAFE_INTEGER_I INT64_C(9007199254740991)

/* JSON text nesting (objects plus arrays) refused before cJSON parses it:
 * one message level is an object and, for a repeated field, an array. */
#define S_MAX_JSON_NESTING (2 * NCC_JSON_MAX_DEPTH)

/* A member of a message at a byte offset taken from its field descriptor. */
#define S_MEMBER(type, message, offset)  (*(type *)((char *)(message) + (offset)))
#define S_CMEMBER(type, message, offset) (*(const type *)((const char *)(message) + (offset)))

/* State of one JSON -> protobuf conversion. */
typedef struct {
    unsigned flags;        /* NCC_JSON_* */
    ncc_json_error_t *err; /* where the failure is described (never NULL) */
    char path[512];        /* dotted path of the value being read */
    size_t path_len;       /* strlen(path) */
} s_reader_t;

/* --- UTF-8 ---------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at p (n bytes available), or 0:
 * no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t s_utf8_sequence(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return n >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return 0;
        if (c == 0xE0 && p[1] < 0xA0)
            return 0;
        if (c == 0xED && p[1] >= 0xA0)
            return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && p[1] < 0x90)
            return 0;
        if (c == 0xF4 && p[1] >= 0x90)
            return 0;
        return 4;
    }
    return 0;
}

static bool s_utf8_is_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        size_t step = s_utf8_sequence(p + i, len - i);
        if (step == 0)
            return false;
        i += step;
    }
    return true;
}

/* Copies src into dst (size > 0), cut at a character boundary if too long. */
static void s_copy_utf8(char *dst, size_t size, const char *src)
{
    size_t len = strlen(src);

    if (len >= size) {
        len = size - 1;
        while (len > 0 && ((unsigned char)src[len] & 0xC0) == 0x80)
            len--;
    }
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* --- base64 (RFC 4648) ------------------------------------------------------ */

static const char s_base64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard alphabet with padding. Caller frees. */
static char *s_base64_encode(const uint8_t *data, size_t len)
{
    if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
        return NULL;
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (!out)
        return NULL;

    char *o = out;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        *o++ = s_base64_alphabet[v >> 18 & 63];
        *o++ = s_base64_alphabet[v >> 12 & 63];
        *o++ = s_base64_alphabet[v >> 6 & 63];
        *o++ = s_base64_alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)data[i] << 16;
        *o++ = s_base64_alphabet[v >> 18 & 63];
        *o++ = s_base64_alphabet[v >> 12 & 63];
        *o++ = '=';
        *o++ = '=';
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8;
        *o++ = s_base64_alphabet[v >> 18 & 63];
        *o++ = s_base64_alphabet[v >> 12 & 63];
        *o++ = s_base64_alphabet[v >> 6 & 63];
        *o++ = '=';
    }
    *o = '\0';
    return out;
}

/* The 6-bit value of a base64 character (standard or URL-safe), or -1. */
static int s_base64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* Decodes standard or URL-safe base64, padded or not, no whitespace.
 * 0 with *ret_data (caller frees; NULL when empty) and *ret_len, -EINVAL for
 * bad input, -ENOMEM. */
static int s_base64_decode(const char *text, size_t len, uint8_t **ret_data, size_t *ret_len)
{
    size_t n = len;

    if (n > 0 && n % 4 == 0 && text[n - 1] == '=') {
        n--;
        if (text[n - 1] == '=')
            n--;
    }
    if (n % 4 == 1)
        return -EINVAL;

    size_t out_len = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    uint8_t *out = NULL;
    if (out_len > 0) {
        out = malloc(out_len);
        if (!out)
            return -ENOMEM;
    }

    size_t o = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = s_base64_value((unsigned char)text[i]);
        if (v < 0) {
            free(out);
            return -EINVAL;
        }
        acc = (acc << 6 | (uint32_t)v) & 0xFFFFFF;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    assert(o == out_len);
    *ret_data = out;
    *ret_len = out_len;
    return 0;
}

/* --- errors and the field path ---------------------------------------------- */

/* Appends `text` to the path, after a '.' when `dotted` and not at the start. */
static size_t s_path_push(s_reader_t *r, bool dotted, const char *text)
{
    size_t saved = r->path_len;
    size_t room = sizeof(r->path) - r->path_len;
    int n = snprintf(r->path + r->path_len, room, "%s%s", dotted && saved > 0 ? "." : "", text);

    if (n < 0)
        r->path[r->path_len] = '\0';
    else
        r->path_len += (size_t)n < room ? (size_t)n : room - 1;
    return saved;
}

static size_t s_path_push_index(s_reader_t *r, size_t index)
{
    char text[32];

    snprintf(text, sizeof text, "[%zu]", index);
    return s_path_push(r, false, text);
}

static void s_path_pop(s_reader_t *r, size_t saved)
{
    r->path_len = saved;
    r->path[saved] = '\0';
}

/* Fills r->err (code, path, sentence) and returns rc. */
__attribute__((format(printf, 4, 5))) static int s_fail(s_reader_t *r, int rc, const char *code,
                                                        const char *format, ...)
{
    char what[256];
    char text[sizeof r->path + sizeof what + 4];
    va_list ap;

    va_start(ap, format);
    vsnprintf(what, sizeof what, format, ap);
    va_end(ap);
    if (r->path_len > 0)
        snprintf(text, sizeof text, "%s: %s", r->path, what);
    else
        snprintf(text, sizeof text, "%s", what);

    s_copy_utf8(r->err->code, sizeof r->err->code, code);
    s_copy_utf8(r->err->field, sizeof r->err->field, r->path);
    s_copy_utf8(r->err->message, sizeof r->err->message, text);
    return rc;
}

static int s_fail_nomem(s_reader_t *r)
{
    return s_fail(r, -ENOMEM, "out_of_memory", "out of memory");
}

/* A key that is safe to show in the path: printable UTF-8, else "?". */
static const char *s_printable_key(const char *key)
{
    if (!key || !s_utf8_is_valid(key, strlen(key)))
        return "?";
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        if (*p < 0x20 || *p == 0x7F)
            return "?";
    return key;
}

/* --- scalars from JSON ------------------------------------------------------- */

/* Parses "-?[0-9]+" exactly: 0, -EINVAL (not that shape) or -ERANGE (over 2^64 - 1). */
static int s_parse_decimal(const char *s, bool *ret_negative, uint64_t *ret_magnitude)
{
    bool negative = false;
    uint64_t value = 0;

    if (*s == '-') {
        negative = true;
        s++;
    }
    if (*s == '\0')
        return -EINVAL;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -EINVAL;
        unsigned digit = (unsigned)(*s - '0');
        if (value > (UINT64_MAX - digit) / 10)
            return -ERANGE;
        value = value * 10 + digit;
    }
    *ret_negative = negative;
    *ret_magnitude = value;
    return 0;
}

/* True if s is a JSON number: -?digits(.digits)?([eE][+-]?digits)? (leading
 * zeros allowed, for query strings). */
static bool s_is_number_text(const char *s)
{
    if (*s == '-')
        s++;
    if (*s < '0' || *s > '9')
        return false;
    while (*s >= '0' && *s <= '9')
        s++;
    if (*s == '.') {
        s++;
        if (*s < '0' || *s > '9')
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (*s < '0' || *s > '9')
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return *s == '\0';
}

/* A signed integer in [min, max] from a JSON number or, for 64-bit fields
 * (`wide`) and under NCC_JSON_STRINGS_AS_SCALARS, a decimal string. */
static int s_read_signed(s_reader_t *r, const cJSON *v, bool wide, int64_t min, int64_t max,
                         const char *type_name, int64_t *ret)
{
    int64_t x;

    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (!isfinite(d) || floor(d) != d)
            return s_fail(r, -EINVAL, "invalid_field", "expected an integer");
        if (fabs(d) > S_MAX_SAFE_INTEGER) {
            if (wide)
                return s_fail(r, -EINVAL, "invalid_field",
                              "integers beyond 2^53 - 1 must be given as decimal strings");
            return s_fail(r, -EINVAL, "invalid_field", "out of range for %s", type_name);
        }
        x = (int64_t)d;
    } else if (cJSON_IsString(v) && (wide || (r->flags & NCC_JSON_STRINGS_AS_SCALARS))) {
        bool negative;
        uint64_t magnitude;
        int rc = s_parse_decimal(v->valuestring, &negative, &magnitude);
        if (rc == -EINVAL)
            return s_fail(r, -EINVAL, "invalid_field", "expected an integer");
        if (rc < 0)
            return s_fail(r, -EINVAL, "invalid_field", "out of range for %s", type_name);
        if (negative) {
            if (magnitude > (uint64_t)INT64_MAX + 1)
                return s_fail(r, -EINVAL, "invalid_field", "out of range for %s", type_name);
            x = magnitude == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)magnitude;
        } else {
            if (magnitude > (uint64_t)INT64_MAX)
                return s_fail(r, -EINVAL, "invalid_field", "out of range for %s", type_name);
            x = (int64_t)magnitude;
        }
    } else {
        return s_fail(r, -EINVAL, "invalid_field", "expected an integer");
    }
    if (x < min || x > max)
        return s_fail(r, -EINVAL, "invalid_field", "out of range for %s", type_name);
    *ret = x;
    return 0;
}

/* As s_read_signed for unsigned fields, in [0, max]. */
static int s_read_unsigned(s_reader_t *r, const cJSON *v, bool wide, uint64_t max,
                           const char *type_name, uint64_t *ret)
{
    uint64_t x;

    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (!isfinite(d) || floor(d) != d)
            return s_fail(r, -EINVAL, "invalid_field", "expected an integer");
        if (d < 0)
            return s_fail(r, -EINVAL, "invalid_field", "out of range for %s", type_name);
        if (d > S_MAX_SAFE_INTEGER) {
            if (wide)
                return s_fail(r, -EINVAL, "invalid_field",
                              "integers beyond 2^53 - 1 must be given as decimal strings");
            return s_fail(r, -EINVAL, "invalid_field", "out of range for %s", type_name);
        }
        x = (uint64_t)d;
    } else if (cJSON_IsString(v) && (wide || (r->flags & NCC_JSON_STRINGS_AS_SCALARS))) {
        bool negative;
        int rc = s_parse_decimal(v->valuestring, &negative, &x);
        if (rc == -EINVAL)
            return s_fail(r, -EINVAL, "invalid_field", "expected an integer");
        if (rc < 0 || (negative && x != 0))
            return s_fail(r, -EINVAL, "invalid_field", "out of range for %s", type_name);
    } else {
        return s_fail(r, -EINVAL, "invalid_field", "expected an integer");
    }
    if (x > max)
        return s_fail(r, -EINVAL, "invalid_field", "out of range for %s", type_name);
    *ret = x;
    return 0;
}

/* A double from a JSON number, "NaN"/"Infinity"/"-Infinity" (as protobuf's
 * JSON mapping allows) or, under NCC_JSON_STRINGS_AS_SCALARS, a number in a
 * string. A JSON number too large for a double (1e999) is out of range. */
static int s_read_double(s_reader_t *r, const cJSON *v, double *ret)
{
    double d;

    if (cJSON_IsNumber(v)) {
        d = v->valuedouble;
        if (!isfinite(d))
            return s_fail(r, -EINVAL, "invalid_field", "out of range for double");
    } else if (cJSON_IsString(v)) {
        const char *s = v->valuestring;
        if (strcmp(s, "NaN") == 0) {
            d = NAN;
        } else if (strcmp(s, "Infinity") == 0) {
            d = INFINITY;
        } else if (strcmp(s, "-Infinity") == 0) {
            d = -INFINITY;
        } else if ((r->flags & NCC_JSON_STRINGS_AS_SCALARS) && s_is_number_text(s)) {
            char *end = NULL;
            d = strtod(s, &end);
            if (!end || *end != '\0')
                return s_fail(r, -EINVAL, "invalid_field", "expected a number");
            if (!isfinite(d))
                return s_fail(r, -EINVAL, "invalid_field", "out of range for double");
        } else {
            return s_fail(r, -EINVAL, "invalid_field", "expected a number");
        }
    } else {
        return s_fail(r, -EINVAL, "invalid_field", "expected a number");
    }
    *ret = d;
    return 0;
}

static int s_read_bool(s_reader_t *r, const cJSON *v, protobuf_c_boolean *ret)
{
    if (cJSON_IsBool(v)) {
        *ret = cJSON_IsTrue(v) ? 1 : 0;
        return 0;
    }
    if (cJSON_IsString(v) && (r->flags & NCC_JSON_STRINGS_AS_SCALARS)) {
        const char *s = v->valuestring;
        if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0) {
            *ret = 1;
            return 0;
        }
        if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0) {
            *ret = 0;
            return 0;
        }
    }
    return s_fail(r, -EINVAL, "invalid_field", "expected true or false");
}

/* An enum from its value name or its number; only declared values. */
static int s_read_enum(s_reader_t *r, const ProtobufCEnumDescriptor *ed, const cJSON *v,
                       int32_t *ret)
{
    const ProtobufCEnumValue *value = NULL;

    if (cJSON_IsString(v)) {
        value = protobuf_c_enum_descriptor_get_value_by_name(ed, v->valuestring);
        if (!value && (r->flags & NCC_JSON_STRINGS_AS_SCALARS)) {
            bool negative;
            uint64_t magnitude;
            if (s_parse_decimal(v->valuestring, &negative, &magnitude) == 0 &&
                magnitude <= (uint64_t)INT32_MAX)
                value = protobuf_c_enum_descriptor_get_value(ed, negative ? -(int)magnitude
                                                                          : (int)magnitude);
        }
    } else if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (isfinite(d) && floor(d) == d && d >= INT32_MIN && d <= INT32_MAX)
            value = protobuf_c_enum_descriptor_get_value(ed, (int)d);
    } else {
        return s_fail(r, -EINVAL, "invalid_field", "expected a value name of %s", ed->name);
    }
    if (!value)
        return s_fail(r, -EINVAL, "invalid_field", "not a value of %s", ed->name);
    *ret = value->value;
    return 0;
}

static int s_read_string(s_reader_t *r, const cJSON *v, char **ret)
{
    if (!cJSON_IsString(v))
        return s_fail(r, -EINVAL, "invalid_field", "expected a string");

    size_t len = strlen(v->valuestring);
    if (!s_utf8_is_valid(v->valuestring, len))
        return s_fail(r, -EINVAL, "invalid_field", "not valid UTF-8");
    char *copy = malloc(len + 1);
    if (!copy)
        return s_fail_nomem(r);
    memcpy(copy, v->valuestring, len + 1);
    *ret = copy;
    return 0;
}

static int s_read_bytes(s_reader_t *r, const cJSON *v, ProtobufCBinaryData *ret)
{
    uint8_t *data = NULL;
    size_t len = 0;

    if (!cJSON_IsString(v))
        return s_fail(r, -EINVAL, "invalid_field", "expected a base64 string");
    int rc = s_base64_decode(v->valuestring, strlen(v->valuestring), &data, &len);
    if (rc == -ENOMEM)
        return s_fail_nomem(r);
    if (rc < 0)
        return s_fail(r, -EINVAL, "invalid_field", "not valid base64");
    ret->data = data;
    ret->len = len;
    return 0;
}

/* --- messages from JSON ------------------------------------------------------- */

static int s_read_message(s_reader_t *r, const ProtobufCMessageDescriptor *desc,
                          const cJSON *object, int depth, ProtobufCMessage **ret);

/* Bytes one element of a repeated field takes in its array. */
static size_t s_element_size(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int32_t);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return sizeof(int64_t);
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 0;
}

/* Reads one value of `field` into `slot` (the member or an array element).
 * The slot is written only on success. */
static int s_read_value(s_reader_t *r, const ProtobufCFieldDescriptor *field, const cJSON *v,
                        void *slot, int depth)
{
    int64_t i = 0;
    uint64_t u = 0;
    double d = 0;
    int rc;

    switch (field->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        rc = s_read_signed(r, v, false, INT32_MIN, INT32_MAX, "int32", &i);
        if (rc == 0)
            *(int32_t *)slot = (int32_t)i;
        return rc;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        rc = s_read_signed(r, v, true, INT64_MIN, INT64_MAX, "int64", &i);
        if (rc == 0)
            *(int64_t *)slot = i;
        return rc;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        rc = s_read_unsigned(r, v, false, UINT32_MAX, "uint32", &u);
        if (rc == 0)
            *(uint32_t *)slot = (uint32_t)u;
        return rc;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        rc = s_read_unsigned(r, v, true, UINT64_MAX, "uint64", &u);
        if (rc == 0)
            *(uint64_t *)slot = u;
        return rc;
    case PROTOBUF_C_TYPE_FLOAT:
        rc = s_read_double(r, v, &d);
        /* Values up to half a unit beyond FLT_MAX still round to FLT_MAX
         * (and the shortest text for FLT_MAX, 3.4028235e+38, is beyond it). */
        if (rc == 0 && isfinite(d) && fabs(d) >= (double)FLT_MAX + 0x1p103)
            rc = s_fail(r, -EINVAL, "invalid_field", "out of range for float");
        if (rc == 0)
            *(float *)slot = (float)d;
        return rc;
    case PROTOBUF_C_TYPE_DOUBLE:
        rc = s_read_double(r, v, &d);
        if (rc == 0)
            *(double *)slot = d;
        return rc;
    case PROTOBUF_C_TYPE_BOOL:
        return s_read_bool(r, v, (protobuf_c_boolean *)slot);
    case PROTOBUF_C_TYPE_ENUM:
        return s_read_enum(r, field->descriptor, v, (int32_t *)slot);
    case PROTOBUF_C_TYPE_STRING:
        return s_read_string(r, v, (char **)slot);
    case PROTOBUF_C_TYPE_BYTES:
        return s_read_bytes(r, v, (ProtobufCBinaryData *)slot);
    case PROTOBUF_C_TYPE_MESSAGE:
        return s_read_message(r, field->descriptor, v, depth + 1, (ProtobufCMessage **)slot);
    }
    return s_fail(r, -EINVAL, "invalid_field", "unsupported field type");
}

/* A repeated field from an array (or, under NCC_JSON_STRINGS_AS_SCALARS, a
 * single scalar). The array and its count are stored in the message before
 * the elements are read, so a failure leaves a freeable message. */
static int s_read_repeated(s_reader_t *r, const ProtobufCFieldDescriptor *field,
                           ProtobufCMessage *message, const cJSON *v, int depth)
{
    size_t element_size = s_element_size(field->type);
    size_t n = 0;
    bool single = false;

    if (cJSON_IsArray(v)) {
        for (const cJSON *item = v->child; item; item = item->next)
            n++;
    } else if ((r->flags & NCC_JSON_STRINGS_AS_SCALARS) && !cJSON_IsObject(v) &&
               field->type != PROTOBUF_C_TYPE_MESSAGE) {
        n = 1;
        single = true;
    } else {
        return s_fail(r, -EINVAL, "invalid_field", "expected an array");
    }
    if (n == 0)
        return 0;

    char *array = calloc(n, element_size);
    if (!array)
        return s_fail_nomem(r);
    S_MEMBER(void *, message, field->offset) = array;
    S_MEMBER(size_t, message, field->quantifier_offset) = n;

    if (single)
        return s_read_value(r, field, v, array, depth);

    size_t index = 0;
    for (const cJSON *item = v->child; item; item = item->next, index++) {
        size_t saved = s_path_push_index(r, index);
        int rc;
        if (cJSON_IsNull(item))
            rc = s_fail(r, -EINVAL, "invalid_field", "null is not allowed in an array");
        else
            rc = s_read_value(r, field, item, array + index * element_size, depth);
        s_path_pop(r, saved);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int s_read_field(s_reader_t *r, const ProtobufCFieldDescriptor *field,
                        ProtobufCMessage *message, const cJSON *v, int depth)
{
    void *slot = (char *)message + field->offset;
    int rc;

    if (field->label == PROTOBUF_C_LABEL_REPEATED)
        return s_read_repeated(r, field, message, v, depth);

    if (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t *oneof_case = &S_MEMBER(uint32_t, message, field->quantifier_offset);
        /* The same field twice was refused by the caller, so any case set
         * here is another member of this oneof. */
        if (*oneof_case != 0)
            return s_fail(r, -EINVAL, "invalid_field", "only one field of a oneof may be set");
        rc = s_read_value(r, field, v, slot, depth);
        if (rc == 0)
            *oneof_case = field->id;
        return rc;
    }

    rc = s_read_value(r, field, v, slot, depth);
    if (rc == 0 && field->label == PROTOBUF_C_LABEL_OPTIONAL &&
        field->type != PROTOBUF_C_TYPE_STRING && field->type != PROTOBUF_C_TYPE_MESSAGE)
        S_MEMBER(protobuf_c_boolean, message, field->quantifier_offset) = 1;
    return rc;
}

/* What a message's fields have seen in the JSON object. */
enum { S_UNSEEN = 0, S_SEEN_NULL = 1, S_SEEN_VALUE = 2 };

/* A new message of type `desc` from a JSON object; *ret written only on success. */
static int s_read_message(s_reader_t *r, const ProtobufCMessageDescriptor *desc,
                          const cJSON *object, int depth, ProtobufCMessage **ret)
{
    ProtobufCMessage *message = NULL;
    unsigned char *seen = NULL;
    int rc;

    if (depth > NCC_JSON_MAX_DEPTH)
        return s_fail(r, -EINVAL, "too_deep", "messages nested deeper than %d", NCC_JSON_MAX_DEPTH);
    if (!cJSON_IsObject(object))
        return s_fail(r, -EINVAL, "invalid_field", "expected an object");

    message = malloc(desc->sizeof_message);
    if (!message)
        return s_fail_nomem(r);
    protobuf_c_message_init(desc, message);
    seen = calloc(desc->n_fields + 1, 1);
    if (!seen) {
        rc = s_fail_nomem(r);
        goto out;
    }

    for (const cJSON *item = object->child; item; item = item->next) {
        const ProtobufCFieldDescriptor *field =
            item->string ? protobuf_c_message_descriptor_get_field_by_name(desc, item->string)
                         : NULL;
        if (!field) {
            if (r->flags & NCC_JSON_IGNORE_UNKNOWN)
                continue;
            s_path_push(r, true, s_printable_key(item->string));
            rc = s_fail(r, -EINVAL, "unknown_field", "unknown field");
            goto out;
        }

        size_t index = (size_t)(field - desc->fields);
        size_t saved = s_path_push(r, true, field->name);
        if (seen[index] != S_UNSEEN) {
            rc = s_fail(r, -EINVAL, "invalid_field", "given more than once");
        } else if (cJSON_IsNull(item)) {
            seen[index] = S_SEEN_NULL;
            rc = 0;
        } else {
            seen[index] = S_SEEN_VALUE;
            rc = s_read_field(r, field, message, item, depth);
        }
        s_path_pop(r, saved);
        if (rc < 0)
            goto out;
    }

    for (unsigned i = 0; i < desc->n_fields; i++) {
        if (desc->fields[i].label == PROTOBUF_C_LABEL_REQUIRED && seen[i] != S_SEEN_VALUE) {
            size_t saved = s_path_push(r, true, desc->fields[i].name);
            rc = s_fail(r, -EINVAL, "invalid_field", "required field missing");
            s_path_pop(r, saved);
            goto out;
        }
    }

    *ret = message;
    message = NULL;
    rc = 0;
out:
    free(seen);
    protobuf_c_message_free_unpacked(message, NULL);
    return rc;
}

/* Refuses, before cJSON's recursive parser sees it, text nested deeper than
 * S_MAX_JSON_NESTING and strings holding \u0000 (a C string would silently
 * end there). The text's syntax is left to cJSON. */
static int s_prescan(s_reader_t *r, const char *text, size_t len)
{
    size_t depth = 0;
    bool in_string = false;

    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\') {
                if (len - i >= 6 && text[i + 1] == 'u' && memcmp(text + i + 2, "0000", 4) == 0)
                    return s_fail(r, -EINVAL, "invalid_json", "\\u0000 is not allowed");
                i++;
            } else if (c == '"') {
                in_string = false;
            }
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (++depth > S_MAX_JSON_NESTING)
                return s_fail(r, -EINVAL, "too_deep", "JSON nested deeper than %d levels",
                              S_MAX_JSON_NESTING);
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
    }
    return 0;
}

int ncc_json_to_pb(const ProtobufCMessageDescriptor *desc, const cJSON *json, unsigned flags,
                   ProtobufCMessage **ret_message, ncc_json_error_t *err)
{
    ncc_json_error_t scratch;
    s_reader_t r = {.flags = flags, .err = err ? err : &scratch};
    ProtobufCMessage *message = NULL;

    assert(desc && desc->magic == PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC);
    assert(ret_message);
    memset(r.err, 0, sizeof *r.err);

    if (!cJSON_IsObject(json))
        return s_fail(&r, -EINVAL, "invalid_json", "expected a JSON object");
    int rc = s_read_message(&r, desc, json, 1, &message);
    if (rc < 0)
        return rc;
    *ret_message = message;
    return 0;
}

int ncc_json_parse_pb(const ProtobufCMessageDescriptor *desc, const char *text, size_t len,
                      unsigned flags, ProtobufCMessage **ret_message, ncc_json_error_t *err)
{
    ncc_json_error_t scratch;
    s_reader_t r = {.flags = flags, .err = err ? err : &scratch};
    cJSON *json = NULL;
    char *copy = NULL;
    int rc;

    assert(desc && ret_message);
    memset(r.err, 0, sizeof *r.err);

    if (!text || len == 0)
        return s_fail(&r, -EINVAL, "invalid_json", "empty body");
    if (memchr(text, '\0', len))
        return s_fail(&r, -EINVAL, "invalid_json", "NUL byte in JSON text");
    rc = s_prescan(&r, text, len);
    if (rc < 0)
        return rc;

    /* cJSON reads a NUL-terminated copy, so it can never read past `len`,
     * and require_null_terminated refuses trailing garbage. */
    copy = malloc(len + 1);
    if (!copy)
        return s_fail_nomem(&r);
    memcpy(copy, text, len);
    copy[len] = '\0';
    const char *end = NULL;
    json = cJSON_ParseWithOpts(copy, &end, 1);
    if (!json) {
        size_t at = end && end >= copy && end <= copy + len ? (size_t)(end - copy) : 0;
        rc = s_fail(&r, -EINVAL, "invalid_json", "malformed JSON near byte %zu", at);
        goto out;
    }
    rc = ncc_json_to_pb(desc, json, flags, ret_message, r.err);
out:
    cJSON_Delete(json);
    free(copy);
    return rc;
}

/* --- protobuf to JSON --------------------------------------------------------- */

static cJSON *s_write_message(const ProtobufCMessage *message, int depth);

/* Replaces the locale's decimal point, which printf used, with '.'. */
static void s_dot_decimal_point(char *text)
{
    const struct lconv *lc = localeconv();
    char point = lc && lc->decimal_point && lc->decimal_point[0] ? lc->decimal_point[0] : '.';

    if (point == '.')
        return;
    for (char *p = text; *p; p++)
        if (*p == point)
            *p = '.';
}

/* A JSON number that prints exactly. cJSON 1.7.15 prints a number with
 * "%1.15g" whenever that reads back within an epsilon, so values needing 16
 * or 17 digits (2^53 - 1, microsecond timestamps, 0.30000000000000004) would
 * lose digits. Those become raw items holding the shortest exact text; every
 * other number stays a plain cJSON number. */
static cJSON *s_create_number(double d)
{
    char text[64];

    snprintf(text, sizeof text, "%1.15g", d);
    if (strtod(text, NULL) == d)
        return cJSON_CreateNumber(d);
    for (int precision = 16; precision <= 17; precision++) {
        snprintf(text, sizeof text, "%.*g", precision, d);
        if (strtod(text, NULL) == d)
            break;
    }
    s_dot_decimal_point(text);
    return cJSON_CreateRaw(text);
}

/* An integer written with all its digits: a cJSON number while cJSON prints
 * it that way (below 10^15), else a raw item ("1000000000000000", not
 * "1e+15"). `text` is its decimal form. */
static cJSON *s_create_integer(double d, const char *text)
{
    char printed[64];

    snprintf(printed, sizeof printed, "%1.15g", d);
    if (strcmp(printed, text) == 0)
        return cJSON_CreateNumber(d);
    return cJSON_CreateRaw(text);
}

static cJSON *s_write_int64(int64_t v)
{
    char text[24];

    snprintf(text, sizeof text, "%" PRId64, v);
    if (v >= -S_MAX_SAFE_INTEGER_I && v <= S_MAX_SAFE_INTEGER_I)
        return s_create_integer((double)v, text);
    return cJSON_CreateString(text);
}

static cJSON *s_write_uint64(uint64_t v)
{
    char text[24];

    snprintf(text, sizeof text, "%" PRIu64, v);
    if (v <= (uint64_t)S_MAX_SAFE_INTEGER_I)
        return s_create_integer((double)v, text);
    return cJSON_CreateString(text);
}

/* A float as the double with the fewest decimal digits that reads back as
 * the same float (0.1f is written 0.1, not 0.10000000149011612). */
static cJSON *s_write_float(float f)
{
    char text[48];

    if (!isfinite(f))
        return cJSON_CreateNull();
    for (int precision = 1; precision <= 9; precision++) {
        snprintf(text, sizeof text, "%.*g", precision, (double)f);
        double d = strtod(text, NULL);
        if ((float)d == f)
            return s_create_number(d);
    }
    return s_create_number((double)f);
}

static cJSON *s_write_double(double d)
{
    return isfinite(d) ? s_create_number(d) : cJSON_CreateNull();
}

/* The value's name, or its number when the enum does not declare it. */
static cJSON *s_write_enum(const ProtobufCEnumDescriptor *ed, int32_t v)
{
    const ProtobufCEnumValue *value = protobuf_c_enum_descriptor_get_value(ed, v);

    return value ? cJSON_CreateString(value->name) : cJSON_CreateNumber(v);
}

/* A string; bytes that are not UTF-8 (possible in a message unpacked from the
 * bus) become U+FFFD so the output is always valid JSON text. */
static cJSON *s_write_string(const char *s)
{
    if (!s)
        return cJSON_CreateNull();

    size_t len = strlen(s);
    if (s_utf8_is_valid(s, len))
        return cJSON_CreateString(s);

    char *fixed = malloc(len * 3 + 1);
    if (!fixed)
        return NULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t step = s_utf8_sequence(p + i, len - i);
        if (step == 0) {
            memcpy(fixed + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        } else {
            memcpy(fixed + o, p + i, step);
            o += step;
            i += step;
        }
    }
    fixed[o] = '\0';
    cJSON *item = cJSON_CreateString(fixed);
    free(fixed);
    return item;
}

static cJSON *s_write_bytes(const ProtobufCBinaryData *b)
{
    char *text = s_base64_encode(b->data, b->data ? b->len : 0);
    if (!text)
        return NULL;
    cJSON *item = cJSON_CreateString(text);
    free(text);
    return item;
}

/* One value of `field` from `slot`; NULL on failure. */
static cJSON *s_write_value(const ProtobufCFieldDescriptor *field, const void *slot, int depth)
{
    const ProtobufCMessage *sub;

    switch (field->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return cJSON_CreateNumber(*(const int32_t *)slot);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return cJSON_CreateNumber(*(const uint32_t *)slot);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return s_write_int64(*(const int64_t *)slot);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return s_write_uint64(*(const uint64_t *)slot);
    case PROTOBUF_C_TYPE_FLOAT:
        return s_write_float(*(const float *)slot);
    case PROTOBUF_C_TYPE_DOUBLE:
        return s_write_double(*(const double *)slot);
    case PROTOBUF_C_TYPE_BOOL:
        return cJSON_CreateBool(*(const protobuf_c_boolean *)slot != 0);
    case PROTOBUF_C_TYPE_ENUM:
        return s_write_enum(field->descriptor, *(const int32_t *)slot);
    case PROTOBUF_C_TYPE_STRING:
        return s_write_string(*(char *const *)slot);
    case PROTOBUF_C_TYPE_BYTES:
        return s_write_bytes((const ProtobufCBinaryData *)slot);
    case PROTOBUF_C_TYPE_MESSAGE:
        sub = *(ProtobufCMessage *const *)slot;
        return sub ? s_write_message(sub, depth + 1) : cJSON_CreateNull();
    }
    return NULL;
}

/* True if the field is to be written: has_ set, pointer non-NULL and not the
 * proto2 default, oneof case selecting it; repeated fields always (an empty
 * list is `[]`, so a client never has to tell "absent" from "none"). */
static bool s_is_present(const ProtobufCMessage *message, const ProtobufCFieldDescriptor *field)
{
    const void *slot = (const char *)message + field->offset;

    if (field->label == PROTOBUF_C_LABEL_REPEATED)
        return true;
    if (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return S_CMEMBER(uint32_t, message, field->quantifier_offset) == field->id;

    bool pointer = field->type == PROTOBUF_C_TYPE_STRING || field->type == PROTOBUF_C_TYPE_MESSAGE;
    switch (field->label) {
    case PROTOBUF_C_LABEL_REQUIRED:
        return !pointer || *(const void *const *)slot != NULL;
    case PROTOBUF_C_LABEL_OPTIONAL:
        if (pointer) {
            const void *p = *(const void *const *)slot;
            return p != NULL && p != field->default_value;
        }
        return S_CMEMBER(protobuf_c_boolean, message, field->quantifier_offset) != 0;
    default:
        /* proto3 implicit presence: written when not the zero value. */
        if (field->type == PROTOBUF_C_TYPE_STRING) {
            const char *s = *(const char *const *)slot;
            return s != NULL && s[0] != '\0';
        }
        if (field->type == PROTOBUF_C_TYPE_MESSAGE)
            return *(const void *const *)slot != NULL;
        if (field->type == PROTOBUF_C_TYPE_BYTES)
            return ((const ProtobufCBinaryData *)slot)->len > 0;
        for (size_t i = 0; i < s_element_size(field->type); i++)
            if (((const unsigned char *)slot)[i] != 0)
                return true;
        return false;
    }
}

static cJSON *s_write_repeated(const ProtobufCMessage *message,
                               const ProtobufCFieldDescriptor *field, int depth)
{
    size_t n = S_CMEMBER(size_t, message, field->quantifier_offset);
    const char *array = S_CMEMBER(char *, message, field->offset);
    size_t element_size = s_element_size(field->type);
    cJSON *list = cJSON_CreateArray();

    if (!list)
        return NULL;
    if (!array)
        n = 0; /* a count without its array: written as none */
    for (size_t i = 0; i < n; i++) {
        cJSON *item = s_write_value(field, array + i * element_size, depth);
        if (!item || !cJSON_AddItemToArray(list, item)) {
            cJSON_Delete(item);
            cJSON_Delete(list);
            return NULL;
        }
    }
    return list;
}

static cJSON *s_write_message(const ProtobufCMessage *message, int depth)
{
    const ProtobufCMessageDescriptor *desc = message->descriptor;

    if (depth > NCC_JSON_MAX_DEPTH)
        return NULL;
    cJSON *object = cJSON_CreateObject();
    if (!object)
        return NULL;
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *field = &desc->fields[i];
        if (!s_is_present(message, field))
            continue;
        cJSON *item = field->label == PROTOBUF_C_LABEL_REPEATED
                          ? s_write_repeated(message, field, depth)
                          : s_write_value(field, (const char *)message + field->offset, depth);
        if (!item || !cJSON_AddItemToObject(object, field->name, item)) {
            cJSON_Delete(item);
            cJSON_Delete(object);
            return NULL;
        }
    }
    return object;
}

cJSON *ncc_pb_to_json(const ProtobufCMessage *message)
{
    if (!message)
        return NULL;
    return s_write_message(message, 1);
}

char *ncc_pb_to_json_text(const ProtobufCMessage *message)
{
    cJSON *json = ncc_pb_to_json(message);
    if (!json)
        return NULL;
    char *text = cJSON_PrintUnformatted(json);
    cJSON_Delete(json);
    return text;
}
