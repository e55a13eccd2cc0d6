/* webhook: X-NCC-Signature, HMAC-SHA256 over "<t>." and the raw body (the
 * Stripe scheme; see ncc/webhook.h). OpenSSL 3 only; nothing here logs.
 * Every path that fails inside OpenSSL clears the thread's OpenSSL error
 * queue, as common/src/crypto.c does. */
#include "ncc/webhook.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#define S_MAC_LEN  32 /* SHA-256 */
#define S_T_DIGITS 18 /* longest t: fits int64_t with room */
#define S_SIG_HEX  64
#define S_MAX_T    999999999999999999LL

typedef struct {
    const char *t;                                       /* t's digits in the header (borrowed) */
    size_t t_len;                                        /* digits in t */
    int64_t t_value;                                     /* t as a number */
    uint8_t sigs[NCC_WEBHOOK_MAX_SIGNATURES][S_MAC_LEN]; /* the v1 values, decoded */
    size_t nsigs;                                        /* entries in sigs */
} s_header_t;

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

static bool s_key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/* Parses the header strictly (see ncc/webhook.h). 0 or -EBADMSG. */
static int s_parse(const char *header, s_header_t *ret)
{
    size_t len = strnlen(header, NCC_WEBHOOK_HEADER_MAX + 1);
    const char *p = header, *end = header + len;
    bool have_t = false;

    if (len == 0 || len > NCC_WEBHOOK_HEADER_MAX)
        return -EBADMSG;
    memset(ret, 0, sizeof *ret);
    for (;;) {
        const char *item_end = memchr(p, ',', (size_t)(end - p));
        if (!item_end)
            item_end = end;
        const char *eq = memchr(p, '=', (size_t)(item_end - p));
        if (!eq || eq == p || eq + 1 == item_end)
            return -EBADMSG; /* no '=', empty key or empty value */
        for (const char *k = p; k < eq; k++)
            if (!s_key_char(*k))
                return -EBADMSG;
        const char *value = eq + 1;
        size_t value_len = (size_t)(item_end - value);
        for (size_t i = 0; i < value_len; i++)
            if (value[i] <= ' ' || value[i] > '~')
                return -EBADMSG; /* spaces, controls, non-ASCII */

        size_t key_len = (size_t)(eq - p);
        if (key_len == 1 && p[0] == 't') {
            if (have_t || value_len > S_T_DIGITS)
                return -EBADMSG;
            int64_t t = 0;
            for (size_t i = 0; i < value_len; i++) {
                if (value[i] < '0' || value[i] > '9')
                    return -EBADMSG;
                t = t * 10 + (value[i] - '0');
            }
            ret->t = value;
            ret->t_len = value_len;
            ret->t_value = t;
            have_t = true;
        } else if (key_len == 2 && p[0] == 'v' && p[1] == '1') {
            if (value_len != S_SIG_HEX || ret->nsigs == NCC_WEBHOOK_MAX_SIGNATURES)
                return -EBADMSG;
            for (size_t i = 0; i < S_MAC_LEN; i++) {
                int hi = s_hex_value(value[2 * i]), lo = s_hex_value(value[2 * i + 1]);
                if (hi < 0 || lo < 0)
                    return -EBADMSG;
                ret->sigs[ret->nsigs][i] = (uint8_t)(hi << 4 | lo);
            }
            ret->nsigs++;
        }
        /* Any other key is ignored (room for later schemes). */
        if (item_end == end)
            break;
        p = item_end + 1;
        if (p == end)
            return -EBADMSG; /* a trailing comma */
    }
    return have_t && ret->nsigs > 0 ? 0 : -EBADMSG;
}

/* HMAC-SHA256(secret, t "." body) into out. 0 or -EIO. */
static int s_mac(const char *secret, const char *t, size_t t_len, const void *body, size_t len,
                 uint8_t out[S_MAC_LEN])
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = NULL;
    size_t written = 0;
    int rc = -EIO;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};

    if (!mac || !(ctx = EVP_MAC_CTX_new(mac)))
        goto out;
    if (EVP_MAC_init(ctx, (const unsigned char *)secret, strlen(secret), params) != 1 ||
        EVP_MAC_update(ctx, (const unsigned char *)t, t_len) != 1 ||
        EVP_MAC_update(ctx, (const unsigned char *)".", 1) != 1 ||
        (len > 0 && EVP_MAC_update(ctx, body, len) != 1) ||
        EVP_MAC_final(ctx, out, &written, S_MAC_LEN) != 1 || written != S_MAC_LEN)
        goto out;
    rc = 0;
out:
    if (rc < 0)
        ERR_clear_error();
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return rc;
}

int ncc_webhook_verify(const char *header, const void *body, size_t len, const char *const *secrets,
                       size_t count, int64_t now, int64_t tolerance_s)
{
    s_header_t parsed;
    uint8_t mac[S_MAC_LEN];
    int matched = 0;

    if (!secrets || count == 0 || tolerance_s < 0 || (!body && len > 0))
        return -EINVAL;
    for (size_t i = 0; i < count; i++)
        if (!secrets[i] || secrets[i][0] == '\0')
            return -EINVAL;
    if (!header || s_parse(header, &parsed) < 0)
        return -EBADMSG;
    /* |now - t| > tolerance, without overflow for any now. */
    if ((now >= parsed.t_value &&
         (uint64_t)now - (uint64_t)parsed.t_value > (uint64_t)tolerance_s) ||
        (now < parsed.t_value && (uint64_t)parsed.t_value - (uint64_t)now > (uint64_t)tolerance_s))
        return -ESTALE;
    for (size_t i = 0; i < count; i++) {
        if (s_mac(secrets[i], parsed.t, parsed.t_len, body, len, mac) < 0) {
            OPENSSL_cleanse(mac, sizeof mac);
            return -EIO;
        }
        for (size_t k = 0; k < parsed.nsigs; k++)
            matched |= CRYPTO_memcmp(mac, parsed.sigs[k], S_MAC_LEN) == 0;
    }
    OPENSSL_cleanse(mac, sizeof mac);
    return matched ? 0 : -EACCES;
}

int ncc_webhook_signature(const char *secret, int64_t t, const void *body, size_t len,
                          char out[NCC_WEBHOOK_SIGNATURE_SIZE])
{
    static const char hex[] = "0123456789abcdef";
    char digits[S_T_DIGITS + 2];
    uint8_t mac[S_MAC_LEN];

    if (!secret || secret[0] == '\0' || t < 0 || t > S_MAX_T || (!body && len > 0) || !out)
        return -EINVAL;
    int n = snprintf(digits, sizeof digits, "%" PRId64, t);
    if (n < 0 || (size_t)n >= sizeof digits)
        return -EINVAL;
    if (s_mac(secret, digits, (size_t)n, body, len, mac) < 0)
        return -EIO;
    for (size_t i = 0; i < S_MAC_LEN; i++) {
        out[2 * i] = hex[mac[i] >> 4];
        out[2 * i + 1] = hex[mac[i] & 15];
    }
    out[S_SIG_HEX] = '\0';
    OPENSSL_cleanse(mac, sizeof mac);
    return 0;
}

int ncc_webhook_sign(const char *secret, int64_t t, const void *body, size_t len, char *out,
                     size_t outlen)
{
    char signature[NCC_WEBHOOK_SIGNATURE_SIZE];

    if (!out)
        return -EINVAL;
    int rc = ncc_webhook_signature(secret, t, body, len, signature);
    if (rc < 0)
        return rc;
    int n = snprintf(out, outlen, "t=%" PRId64 ",v1=%s", t, signature);
    if (n < 0 || (size_t)n >= outlen) {
        if (outlen > 0)
            out[0] = '\0';
        return -ENOSPC;
    }
    return 0;
}
