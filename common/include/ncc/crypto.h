/* crypto: personal data at rest (AES-256-GCM under rotating key ids), HMAC
 * blind indexes for equality look-ups, TOTP (RFC 6238), the actor proof that
 * binds a bus request to the user the gateway authenticated, and random
 * tokens. OpenSSL 3 only; nothing here logs. See docs/security-crypto.md.
 *
 * Keys come from the environment, never from the repository:
 *   NCC_DATA_KEYS        "id:base64(32 bytes),id2:base64(32 bytes)"; the
 *                        first encrypts, all decrypt (rotation: put the new
 *                        key first, re-encrypt in the background, then drop
 *                        the old one).
 *   NCC_BLIND_INDEX_KEY  base64(32 bytes): HMAC key of the blind indexes; it
 *                        does not rotate with the data keys (the indexes would
 *                        all change).
 *   NCC_BUS_ACTOR_KEY    base64(32 bytes): signs the actor in bus envelopes.
 * base64 is the standard alphabet with its '=' padding (`openssl rand -base64
 * 32`), nothing else: no whitespace, no URL alphabet. */
#ifndef NCC_CRYPTO_H
#define NCC_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ncc.pb-c.h"

typedef struct ncc_keyring ncc_keyring_t;

/* Longest key id. */
#define NCC_KEY_ID_MAX 32

/* Parses NCC_DATA_KEYS-style text (copied) plus the blind-index key (base64,
 * may be NULL or "": blind indexes then fail with -ENOKEY). NULL with a
 * message in err (err may be NULL; never any key material in it) when
 * malformed: no key at all, an empty entry, an entry without "id:", a key that
 * is not base64 or not 32 bytes, an empty or repeated id, an id longer than
 * NCC_KEY_ID_MAX or with characters other than [A-Za-z0-9_-]. */
ncc_keyring_t *ncc_keyring_new(const char *data_keys, const char *blind_index_key, char *err,
                               size_t errlen);

/* From NCC_DATA_KEYS and NCC_BLIND_INDEX_KEY (empty counts as unset). */
ncc_keyring_t *ncc_keyring_from_env(char *err, size_t errlen);

/* Wipes the key material (OPENSSL_cleanse) and frees. Accepts NULL. */
void ncc_keyring_destroy(ncc_keyring_t **self_p);

/* The id of the key that encrypts (borrowed). */
const char *ncc_keyring_current_id(const ncc_keyring_t *self);

/* Encrypts len bytes into text "v1:<key id>:<base64(12-byte nonce | ciphertext |
 * 16-byte tag)>" (caller frees) with a fresh random nonce. `context` (may be
 * NULL, same as "") is bound as associated data: e.g. "history.records.inquiry",
 * so a value copied into another column does not decrypt. NULL on failure. */
char *ncc_encrypt(const ncc_keyring_t *self, const char *context, const void *plaintext,
                  size_t len);

/* Decrypts text from ncc_encrypt into a NUL-terminated buffer (caller frees,
 * *ret_len without the NUL, ret_len may be NULL). NULL when the key id is
 * unknown, the text malformed, or the tag does not verify (tampering, another
 * context). */
char *ncc_decrypt(const ncc_keyring_t *self, const char *context, const char *ciphertext,
                  size_t *ret_len);

/* True when `ciphertext` starts "v1:<id>:" with an id other than the current
 * one (the background rotation re-encrypts these); false for the current id
 * and for text that is not ncc ciphertext. */
bool ncc_crypto_needs_rotation(const ncc_keyring_t *self, const char *ciphertext);

/* Blind index: hex HMAC-SHA256(blind key, context || 0x00 || value), 64
 * lowercase chars + NUL into out[65], for equality look-ups of encrypted
 * columns. `context` (NULL same as "") separates columns. The value is used as
 * given: normalising it (phone numbers to digits, NFKC, case) is the caller's
 * job, and must be the same at write and at look-up. 0, -ENOKEY without a
 * blind-index key, -EINVAL on NULL arguments, -EIO when OpenSSL fails. */
int ncc_blind_index(const ncc_keyring_t *self, const char *context, const char *value,
                    char out[65]);

/* ---- TOTP (RFC 6238: HMAC-SHA1, 30 s steps, 6 digits) --------------------- */

/* Secrets are base32 (RFC 4648), case-insensitive, '=' padding and spaces
 * optional, 1 to 80 bytes once decoded (at most 128 base32 characters). */

/* A new random 20-byte secret in base32 (32 chars + NUL into out[33]). 0 or -EIO. */
int ncc_totp_new_secret(char out[33]);

/* The code for unix time `now` (for tests and enrolment). -EINVAL on bad base32
 * or a negative time. */
int ncc_totp_code(const char *base32_secret, int64_t now, char out[7]);

/* The same with `digits` (6 to 8) digits into out (digits + 1 bytes, outlen):
 * the RFC 6238 Appendix B vectors have 8. 0, -EINVAL, -ENOSPC, -EIO. */
int ncc_totp_code_digits(const char *base32_secret, int64_t now, int digits, char *out,
                         size_t outlen);

/* Checks the 6-digit `code` against the steps now-1, now, now+1. Returns the
 * matched time step (> 0) so the caller can refuse a step already used
 * (replay: store the last step accepted per user and require a larger one), 0
 * when the code does not match (or is not 6 digits), -EINVAL on a malformed
 * secret. Every step is computed and compared in constant time. */
int64_t ncc_totp_verify(const char *base32_secret, const char *code, int64_t now);

/* ---- actor proof on the bus -------------------------------------------------- */

/* Sets the process-wide bus actor key (32 bytes, copied; thread-safe). NULL
 * clears it (and wipes the old one). -EINVAL (key unchanged) when len is not 32. */
int ncc_actor_key_set(const uint8_t *key, size_t len);

/* From NCC_BUS_ACTOR_KEY (base64). 0, -ENOKEY when unset or empty, -EINVAL
 * when malformed (the key is then left unchanged). */
int ncc_actor_key_from_env(void);

bool ncc_actor_key_present(void);

/* Fills envelope->actor_proof (malloc'ed; freed with the envelope; an earlier
 * proof is freed and replaced) with the 32 bytes of
 * HMAC-SHA256(key, "ncc-actor-v2\n" type "\n" request_id "\n" actor_id "\n"
 * actor_role "\n" actor_address "\n" sent_at_us "\n" sha256_hex(payload)),
 * sent_at_us in decimal, an absent payload hashed as empty;
 * absent fields count as "". 0, -ENOKEY without a key, -EINVAL when a field
 * holds '\n' (the fields could then be shifted), -ENOMEM, -EIO. */
int ncc_actor_sign(Ncc__Envelope *envelope);

/* True when the proof verifies under the key (constant-time comparison) and
 * sent_at_us is present and within max_skew_s of now, either way. False
 * without a key, without a proof, or when a field holds '\n'. */
bool ncc_actor_verify(const Ncc__Envelope *envelope, int max_skew_s);

/* ---- tokens ------------------------------------------------------------------- */

/* `bytes` random bytes (<= 64) as lowercase hex into out (2*bytes+1). 0, -EINVAL or -EIO. */
int ncc_random_hex(size_t bytes, char *out);

/* Constant-time equality of two NUL-terminated strings (the time depends on
 * the lengths only). False when either is NULL. */
bool ncc_secure_equals(const char *a, const char *b);

/* SHA-256 of len bytes as lowercase hex into out[65] ("" if OpenSSL fails). */
void ncc_sha256_hex(const void *data, size_t len, char out[65]);

#endif
