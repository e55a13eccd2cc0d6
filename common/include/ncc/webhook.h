/* webhook: the signature of machine-to-machine calls (the PBX events and the
 * STT transcripts, API.md), the scheme Stripe uses:
 *
 *   X-NCC-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]
 *
 * where each v1 is lowercase or uppercase hex of HMAC-SHA256(secret, "<t>." body)
 * with <t> exactly as it appears in the header and body the raw request body.
 * Several v1 entries may be sent (the sender signs with the old and the new
 * secret while a secret rotates); one that matches any of the receiver's
 * secrets is enough. Other keys (e.g. "v0=") are ignored.
 *
 * Parsing is strict: items separated by ',' without spaces; each item is
 * key=value with key [a-z0-9_]+ and a non-empty value of visible ASCII; exactly
 * one t of 1 to 18 digits; 1 to NCC_WEBHOOK_MAX_SIGNATURES v1 values of
 * exactly 64 hex characters; at most NCC_WEBHOOK_HEADER_MAX bytes. OpenSSL 3;
 * nothing here logs. API.md has the contract. */
#ifndef NCC_WEBHOOK_H
#define NCC_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#define NCC_WEBHOOK_HEADER_NAME     "X-NCC-Signature"
#define NCC_WEBHOOK_HEADER_MAX      1024 /* longest header value accepted */
#define NCC_WEBHOOK_MAX_SIGNATURES  8    /* most v1 entries accepted */
#define NCC_WEBHOOK_TOLERANCE_S     300  /* API.md: 5 minutes either way */
#define NCC_WEBHOOK_SIGNATURE_SIZE  65   /* 64 hex characters and a NUL */
#define NCC_WEBHOOK_HEADER_SIZE_MIN 89   /* "t=" 18 digits ",v1=" 64 hex NUL */

/* Checks the header value `header` (NUL-terminated, e.g. from
 * mg_get_header(conn, NCC_WEBHOOK_HEADER_NAME)) against `len` bytes of body
 * (may be NULL when len is 0), with `count` secrets (NUL-terminated, non-empty;
 * borrowed), at unix time `now`, refusing a t more than `tolerance_s` seconds
 * from now either way. Returns
 *   0          a v1 matches one of the secrets;
 *   -EBADMSG   the header is missing (NULL), too long or malformed;
 *   -ESTALE    t is more than tolerance_s seconds before or after now;
 *   -EACCES    no v1 matches any secret (wrong secret, tampered body or t);
 *   -EINVAL    no secret, an empty or NULL secret, a negative tolerance;
 *   -EIO       OpenSSL failed.
 * The checks run in that order: the header, then the time, then the
 * signatures, each compared in constant time (CRYPTO_memcmp) with every
 * secret, without stopping at the first match. */
int ncc_webhook_verify(const char *header, const void *body, size_t len, const char *const *secrets,
                       size_t count, int64_t now, int64_t tolerance_s);

/* The lowercase hex HMAC-SHA256(secret, "<t>." body) into
 * out[NCC_WEBHOOK_SIGNATURE_SIZE]: one v1 value. 0, -EINVAL (NULL or empty
 * secret, t negative or above 18 digits, NULL body with len > 0), -EIO. */
int ncc_webhook_signature(const char *secret, int64_t t, const void *body, size_t len,
                          char out[NCC_WEBHOOK_SIGNATURE_SIZE]);

/* A whole header value "t=<t>,v1=<hex>" into out (outlen bytes, at least
 * NCC_WEBHOOK_HEADER_SIZE_MIN suffices), for the PBX simulator and tests.
 * 0, -ENOSPC when out is too small, or the errors of ncc_webhook_signature. */
int ncc_webhook_sign(const char *secret, int64_t t, const void *body, size_t len, char *out,
                     size_t outlen);

#endif
