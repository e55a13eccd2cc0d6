/* fuzz_webhook: libFuzzer target for the X-NCC-Signature parser and checker
 * (common/src/webhook.c).
 *
 * Input: 8 bytes of t (little-endian, reduced to 0..10^12), then a header
 * value up to the first '\n', then the body (everything after it).
 * Properties checked (abort() on violation, so libFuzzer reports a crash):
 *   - verify never crashes and answers 0, -EBADMSG, -ESTALE or -EACCES;
 *   - when it answers 0, the header's t is within the tolerance of now and
 *     the header holds the signature computed here with OpenSSL's one-shot
 *     HMAC() for one of the secrets (an independent implementation);
 *   - sign then verify accepts; another secret, another body, another t or a
 *     time outside the tolerance are refused with the right reason;
 *   - the fuzzed header placed between a good t and a good v1 gives 0 or
 *     -EBADMSG, never a wrong acceptance reason;
 *   - no leaks (LeakSanitizer) and no undefined behaviour (UBSan).
 * Build and run: `make BUILD=build/fuzz fuzz` (fuzz/module.mk). */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ncc/webhook.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_webhook: %s:%d: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static const char *const s_secrets[] = {"whsec_fuzz_one", "whsec_fuzz_two"};

/* The t=... item of a header, found independently of the library: the
 * digits after "t=" at the start or after a comma. -1 when there is none. */
static int64_t s_header_t(const char *header, const char **ret_digits, size_t *ret_len)
{
    for (const char *p = header; p; p = strchr(p, ',')) {
        if (*p == ',')
            p++;
        if (p[0] == 't' && p[1] == '=') {
            size_t n = strspn(p + 2, "0123456789");
            if (n == 0 || n > 18)
                return -1;
            *ret_digits = p + 2;
            *ret_len = n;
            return strtoll(p + 2, NULL, 10);
        }
    }
    return -1;
}

/* Lowercase hex HMAC-SHA256(secret, digits "." body) with the one-shot API. */
static void s_expected_hex(const char *secret, const char *digits, size_t digits_len,
                           const uint8_t *body, size_t len, char out[65])
{
    size_t total = digits_len + 1 + len;
    uint8_t *message = malloc(total + 1);
    uint8_t mac[32];
    unsigned int mac_len = 0;
    CHECK(message);
    memcpy(message, digits, digits_len);
    message[digits_len] = '.';
    if (len > 0)
        memcpy(message + digits_len + 1, body, len);
    CHECK(HMAC(EVP_sha256(), secret, (int)strlen(secret), message, total, mac, &mac_len));
    CHECK(mac_len == 32);
    for (size_t i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", mac[i]);
    free(message);
}

/* Case-insensitive search of the 64 hex characters in the header. */
static bool s_holds(const char *header, const char hex[65])
{
    for (const char *p = header; *p; p++)
        if (strncasecmp(p, hex, 64) == 0)
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8)
        return 0;
    uint64_t raw = 0;
    memcpy(&raw, data, 8);
    int64_t t = (int64_t)(raw % 1000000000000ULL);
    const uint8_t *rest = data + 8;
    size_t rest_len = size - 8;
    const uint8_t *newline = memchr(rest, '\n', rest_len);
    size_t header_len = newline ? (size_t)(newline - rest) : rest_len;
    const uint8_t *body = newline ? newline + 1 : rest + rest_len;
    size_t body_len = (size_t)(rest + rest_len - body);

    char *header = malloc(header_len + 1);
    CHECK(header);
    memcpy(header, rest, header_len);
    header[header_len] = '\0'; /* a NUL inside ends the header early, as in C */

    /* 1. The fuzzed header as it is. */
    int rc = ncc_webhook_verify(header, body, body_len, s_secrets, 2, t, NCC_WEBHOOK_TOLERANCE_S);
    CHECK(rc == 0 || rc == -EBADMSG || rc == -ESTALE || rc == -EACCES);
    if (rc == 0) {
        const char *digits = NULL;
        size_t digits_len = 0;
        int64_t header_t = s_header_t(header, &digits, &digits_len);
        CHECK(header_t >= 0);
        CHECK(header_t - t <= NCC_WEBHOOK_TOLERANCE_S && t - header_t <= NCC_WEBHOOK_TOLERANCE_S);
        char one[65], two[65];
        s_expected_hex(s_secrets[0], digits, digits_len, body, body_len, one);
        s_expected_hex(s_secrets[1], digits, digits_len, body, body_len, two);
        CHECK(s_holds(header, one) || s_holds(header, two));
    }

    /* 2. Sign, then verify, and the refusals. */
    char signed_header[NCC_WEBHOOK_HEADER_SIZE_MIN];
    CHECK(ncc_webhook_sign(s_secrets[1], t, body, body_len, signed_header, sizeof signed_header) ==
          0);
    CHECK(ncc_webhook_verify(signed_header, body, body_len, s_secrets, 2, t, 300) == 0);
    CHECK(ncc_webhook_verify(signed_header, body, body_len, s_secrets, 1, t, 300) == -EACCES);
    CHECK(ncc_webhook_verify(signed_header, body, body_len, s_secrets, 2, t + 301, 300) == -ESTALE);
    CHECK(ncc_webhook_verify(signed_header, body, body_len, s_secrets, 2, t - 301, 300) == -ESTALE);
    if (body_len > 0) {
        uint8_t *tampered = malloc(body_len);
        CHECK(tampered);
        memcpy(tampered, body, body_len);
        tampered[body_len / 2] ^= 0x20;
        CHECK(ncc_webhook_verify(signed_header, tampered, body_len, s_secrets, 2, t, 300) ==
              -EACCES);
        CHECK(ncc_webhook_verify(signed_header, body, body_len - 1, s_secrets, 2, t, 300) ==
              -EACCES);
        free(tampered);
    }
    char other_t[NCC_WEBHOOK_HEADER_SIZE_MIN];
    CHECK(ncc_webhook_sign(s_secrets[1], t + 1, body, body_len, other_t, sizeof other_t) == 0);
    /* other_t's signature under this t: not valid. */
    char swapped[NCC_WEBHOOK_HEADER_SIZE_MIN + 8];
    snprintf(swapped, sizeof swapped, "t=%" PRId64 "%s", t, strchr(other_t, ','));
    CHECK(ncc_webhook_verify(swapped, body, body_len, s_secrets, 2, t, 300) == -EACCES);

    /* 3. The fuzzed header between a good t and a good v1: it can only make
     * the header malformed (a second t, a bad v1, too long, bad syntax). */
    const char *v1 = strchr(signed_header, ',') + 1;
    size_t wrapped_size = header_len + 128;
    char *wrapped = malloc(wrapped_size);
    CHECK(wrapped);
    snprintf(wrapped, wrapped_size, "t=%" PRId64 ",%s,%s", t, header, v1);
    rc = ncc_webhook_verify(wrapped, body, body_len, s_secrets, 2, t, 300);
    CHECK(rc == 0 || rc == -EBADMSG);
    free(wrapped);
    free(header);
    return 0;
}
