/* crypto: AES-256-GCM for personal data at rest under rotating key ids, HMAC
 * blind indexes, TOTP (RFC 6238), the bus actor proof and random tokens (see
 * ncc/crypto.h and docs/security-crypto.md). OpenSSL 3 only; nothing here
 * logs, and no error text ever holds key material.
 *
 * Every path that fails inside OpenSSL clears the thread's OpenSSL error queue,
 * so a stale entry cannot confuse a later SSL_get_error() in the gateway. */
#include "ncc/crypto.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#define S_KEY_LEN        32 /* AES-256, HMAC-SHA256 keys */
#define S_NONCE_LEN      12 /* GCM's natural IV size */
#define S_TAG_LEN        16 /* full GCM tag */
#define S_FORMAT         "v1:"
#define S_SHA256_LEN     32
#define S_SHA1_LEN       20
#define S_TOTP_STEP_S    30
#define S_TOTP_DIGITS    6
#define S_TOTP_SECRET    20              /* bytes of a new secret (RFC 4226 recommends 160 bits) */
#define S_TOTP_KEY_MAX   80              /* longest secret accepted, decoded (128 base32 chars) */
#define S_OPENSSL_CHUNK  (1 << 30)       /* OpenSSL lengths are int: feed it in pieces */
#define S_B64_RAW_CHUNK  (3 * (1 << 24)) /* bytes per EVP_EncodeBlock call (multiple of 3) */
#define S_B64_TEXT_CHUNK (4 * (1 << 24)) /* chars per EVP_DecodeBlock call (multiple of 4) */

typedef struct {
    char id[NCC_KEY_ID_MAX + 1]; /* [A-Za-z0-9_-]{1,32} */
    uint8_t key[S_KEY_LEN];      /* AES-256-GCM key */
} s_data_key_t;

struct ncc_keyring {
    s_data_key_t *keys;           /* keys[0] encrypts, every one decrypts (owned) */
    size_t count;                 /* entries in keys */
    size_t capacity;              /* entries allocated (all wiped on destroy) */
    uint8_t blind_key[S_KEY_LEN]; /* HMAC-SHA256 key of the blind indexes */
    bool has_blind_key;           /* blind_key was given */
};

typedef struct {
    const void *data; /* borrowed */
    size_t len;
} s_part_t;

/* ---- small helpers ------------------------------------------------------------ */

static void s_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void s_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list args;
    va_start(args, fmt);
    vsnprintf(err, errlen, fmt, args);
    va_end(args);
}

static void s_hex(const uint8_t *data, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 0x0f];
    }
    out[2 * len] = '\0';
}

static bool s_id_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

static bool s_valid_id(const char *id, size_t len)
{
    if (len == 0 || len > NCC_KEY_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!s_id_char(id[i]))
            return false;
    }
    return true;
}

/* HMAC with `digest` ("SHA256", "SHA1") over the concatenated parts into out
 * (outsize bytes, which must be the digest size). 0 or -EIO. */
static int s_hmac(const char *digest, const uint8_t *key, size_t keylen, const s_part_t *parts,
                  size_t count, uint8_t *out, size_t outsize)
{
    int rc = -EIO;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = NULL;
    if (!mac)
        goto out;
    ctx = EVP_MAC_CTX_new(mac);
    if (!ctx)
        goto out;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)digest, 0),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_MAC_init(ctx, key, keylen, params) != 1)
        goto out;
    for (size_t i = 0; i < count; i++) {
        if (parts[i].len > 0 && EVP_MAC_update(ctx, parts[i].data, parts[i].len) != 1)
            goto out;
    }
    size_t written = 0;
    if (EVP_MAC_final(ctx, out, &written, outsize) != 1 || written != outsize)
        goto out;
    rc = 0;
out:
    if (rc < 0)
        ERR_clear_error();
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return rc;
}

/* ---- base64 (standard alphabet, '=' padding, nothing else) -------------------- */

static int s_b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* base64 of len bytes (caller frees), or NULL. */
static char *s_b64_encode(const uint8_t *data, size_t len)
{
    if (len > (SIZE_MAX / 4 - 1) * 3)
        return NULL;
    size_t text_len = (len + 2) / 3 * 4;
    char *text = malloc(text_len + 1);
    if (!text)
        return NULL;
    size_t done = 0;
    size_t written = 0;
    while (done < len) {
        size_t chunk = len - done < S_B64_RAW_CHUNK ? len - done : S_B64_RAW_CHUNK;
        int n = EVP_EncodeBlock((unsigned char *)text + written, data + done, (int)chunk);
        written += (size_t)n;
        done += chunk;
    }
    text[written] = '\0';
    return text;
}

/* Decodes text[0..len), which must be canonical padded base64 (length a
 * multiple of 4, '=' only at the end, unused bits zero), into a malloc'ed
 * buffer (caller frees; wipe it if it held a key). NULL when malformed. */
static uint8_t *s_b64_decode(const char *text, size_t len, size_t *ret_len)
{
    if (len == 0 || len % 4 != 0)
        return NULL;
    size_t pad = 0;
    if (text[len - 1] == '=')
        pad = text[len - 2] == '=' ? 2 : 1;
    for (size_t i = 0; i < len - pad; i++) {
        if (s_b64_value(text[i]) < 0)
            return NULL;
    }
    /* The bits of the last character that fall into the padding must be
     * zero, so that one byte string has exactly one encoding. */
    if (pad > 0 && (s_b64_value(text[len - pad - 1]) & (pad == 2 ? 0x0f : 0x03)) != 0)
        return NULL;

    uint8_t *out = malloc(len / 4 * 3 + 1);
    if (!out)
        return NULL;
    for (size_t done = 0; done < len;) {
        size_t chunk = len - done < S_B64_TEXT_CHUNK ? len - done : S_B64_TEXT_CHUNK;
        if (EVP_DecodeBlock(out + done / 4 * 3, (const unsigned char *)text + done, (int)chunk) <
            0) {
            ERR_clear_error();
            free(out);
            return NULL;
        }
        done += chunk;
    }
    *ret_len = len / 4 * 3 - pad;
    return out;
}

/* Decodes a 32-byte key from base64 into key. 0, -EINVAL (not base64) or
 * -ERANGE (another size, *ret_size says which). */
static int s_decode_key(const char *text, size_t len, uint8_t key[S_KEY_LEN], size_t *ret_size)
{
    size_t size = 0;
    uint8_t *raw = s_b64_decode(text, len, &size);
    if (!raw)
        return -EINVAL;
    int rc = -ERANGE;
    if (size == S_KEY_LEN) {
        memcpy(key, raw, S_KEY_LEN);
        rc = 0;
    }
    *ret_size = size;
    OPENSSL_cleanse(raw, size);
    free(raw);
    return rc;
}

/* ---- keyring -------------------------------------------------------------------- */

/* Parses one "id:base64" entry (text[0..len), entry number `index`) into
 * self->keys[self->count]. Error texts name the entry by number, and by id
 * only once the id is known to be a valid id (at most 32 characters: never a
 * whole key). */
static int s_parse_entry(ncc_keyring_t *self, const char *label, size_t index, const char *text,
                         size_t len, char *err, size_t errlen)
{
    if (len == 0) {
        s_err(err, errlen, "%s: entry %zu is empty (expected \"id:base64,...\")", label, index);
        return -EINVAL;
    }
    const char *colon = memchr(text, ':', len);
    if (!colon) {
        s_err(err, errlen, "%s: entry %zu has no \"id:\" before its key", label, index);
        return -EINVAL;
    }
    size_t id_len = (size_t)(colon - text);
    if (!s_valid_id(text, id_len)) {
        s_err(err, errlen,
              "%s: entry %zu: the key id must be 1 to %d characters of A-Z a-z 0-9 _ -", label,
              index, NCC_KEY_ID_MAX);
        return -EINVAL;
    }
    s_data_key_t *entry = &self->keys[self->count];
    memcpy(entry->id, text, id_len);
    entry->id[id_len] = '\0';
    for (size_t i = 0; i < self->count; i++) {
        if (strcmp(self->keys[i].id, entry->id) == 0) {
            s_err(err, errlen, "%s: key id \"%s\" is given twice", label, entry->id);
            return -EINVAL;
        }
    }
    const char *key_text = colon + 1;
    size_t key_len = len - id_len - 1;
    if (key_len == 0) {
        s_err(err, errlen, "%s: key \"%s\" is empty", label, entry->id);
        return -EINVAL;
    }
    size_t size = 0;
    int rc = s_decode_key(key_text, key_len, entry->key, &size);
    if (rc == -EINVAL) {
        s_err(err, errlen, "%s: key \"%s\" is not base64 (standard alphabet with '=' padding)",
              label, entry->id);
        return rc;
    }
    if (rc < 0) {
        s_err(err, errlen, "%s: key \"%s\" is %zu bytes, expected %d", label, entry->id, size,
              S_KEY_LEN);
        return rc;
    }
    self->count++;
    return 0;
}

static ncc_keyring_t *s_keyring_new(const char *data_keys, const char *blind_index_key,
                                    const char *data_label, const char *blind_label, char *err,
                                    size_t errlen)
{
    ncc_keyring_t *result = NULL;
    ncc_keyring_t *self = NULL;
    s_err(err, errlen, "%s", "");
    if (!data_keys || !*data_keys) {
        s_err(err, errlen, "%s: no key given (expected \"id:base64,...\")", data_label);
        goto out;
    }
    self = calloc(1, sizeof *self);
    if (!self) {
        s_err(err, errlen, "%s: out of memory", data_label);
        goto out;
    }
    size_t entries = 1;
    for (const char *p = data_keys; *p; p++)
        entries += *p == ',';
    self->keys = calloc(entries, sizeof *self->keys);
    self->capacity = self->keys ? entries : 0;
    if (!self->keys) {
        s_err(err, errlen, "%s: out of memory", data_label);
        goto out;
    }
    const char *start = data_keys;
    for (size_t index = 1;; index++) {
        const char *comma = strchr(start, ',');
        size_t len = comma ? (size_t)(comma - start) : strlen(start);
        if (s_parse_entry(self, data_label, index, start, len, err, errlen) < 0)
            goto out;
        if (!comma)
            break;
        start = comma + 1;
    }

    if (blind_index_key && *blind_index_key) {
        size_t size = 0;
        int rc = s_decode_key(blind_index_key, strlen(blind_index_key), self->blind_key, &size);
        if (rc == -EINVAL) {
            s_err(err, errlen, "%s: not base64 (standard alphabet with '=' padding)", blind_label);
            goto out;
        }
        if (rc < 0) {
            s_err(err, errlen, "%s: %zu bytes, expected %d", blind_label, size, S_KEY_LEN);
            goto out;
        }
        self->has_blind_key = true;
    }
    result = self;
    self = NULL;
out:
    ncc_keyring_destroy(&self);
    return result;
}

ncc_keyring_t *ncc_keyring_new(const char *data_keys, const char *blind_index_key, char *err,
                               size_t errlen)
{
    return s_keyring_new(data_keys, blind_index_key, "data keys", "blind index key", err, errlen);
}

ncc_keyring_t *ncc_keyring_from_env(char *err, size_t errlen)
{
    return s_keyring_new(getenv("NCC_DATA_KEYS"), getenv("NCC_BLIND_INDEX_KEY"), "NCC_DATA_KEYS",
                         "NCC_BLIND_INDEX_KEY", err, errlen);
}

void ncc_keyring_destroy(ncc_keyring_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ncc_keyring_t *self = *self_p;
    if (self->keys) {
        OPENSSL_cleanse(self->keys, self->capacity * sizeof *self->keys);
        free(self->keys);
    }
    OPENSSL_cleanse(self, sizeof *self);
    free(self);
    *self_p = NULL;
}

const char *ncc_keyring_current_id(const ncc_keyring_t *self)
{
    return self && self->count > 0 ? self->keys[0].id : NULL;
}

/* Splits "v1:<id>:<body>": 0 with the id span and the body, or -EINVAL. */
static int s_split(const char *text, const char **ret_id, size_t *ret_id_len, const char **ret_body)
{
    size_t prefix = strlen(S_FORMAT);
    if (!text || strncmp(text, S_FORMAT, prefix) != 0)
        return -EINVAL;
    const char *id = text + prefix;
    size_t id_len = 0;
    while (id_len <= NCC_KEY_ID_MAX && s_id_char(id[id_len]))
        id_len++;
    if (id_len == 0 || id_len > NCC_KEY_ID_MAX || id[id_len] != ':')
        return -EINVAL;
    *ret_id = id;
    *ret_id_len = id_len;
    *ret_body = id + id_len + 1;
    return 0;
}

static const s_data_key_t *s_find_key(const ncc_keyring_t *self, const char *id, size_t id_len)
{
    for (size_t i = 0; i < self->count; i++) {
        if (strlen(self->keys[i].id) == id_len && memcmp(self->keys[i].id, id, id_len) == 0)
            return &self->keys[i];
    }
    return NULL;
}

char *ncc_encrypt(const ncc_keyring_t *self, const char *context, const void *plaintext, size_t len)
{
    char *result = NULL;
    uint8_t *raw = NULL;
    char *body = NULL;
    EVP_CIPHER_CTX *ctx = NULL;
    bool openssl_failed = false;

    if (!self || self->count == 0 || (!plaintext && len > 0))
        goto out;
    size_t context_len = context ? strlen(context) : 0;
    if (context_len > INT_MAX || len > SIZE_MAX / 2 - S_NONCE_LEN - S_TAG_LEN)
        goto out;
    const s_data_key_t *key = &self->keys[0];
    size_t raw_len = S_NONCE_LEN + len + S_TAG_LEN;
    raw = malloc(raw_len);
    if (!raw)
        goto out;
    uint8_t *nonce = raw;
    uint8_t *sealed = raw + S_NONCE_LEN;
    uint8_t *tag = sealed + len;

    openssl_failed = true;
    if (RAND_bytes(nonce, S_NONCE_LEN) != 1)
        goto out;
    ctx = EVP_CIPHER_CTX_new();
    if (!ctx || EVP_EncryptInit_ex2(ctx, EVP_aes_256_gcm(), key->key, nonce, NULL) != 1)
        goto out;
    int n = 0;
    if (context_len > 0 &&
        EVP_EncryptUpdate(ctx, NULL, &n, (const unsigned char *)context, (int)context_len) != 1)
        goto out;
    const uint8_t *in = plaintext;
    size_t written = 0;
    for (size_t done = 0; done < len;) {
        size_t chunk = len - done < S_OPENSSL_CHUNK ? len - done : S_OPENSSL_CHUNK;
        if (EVP_EncryptUpdate(ctx, sealed + written, &n, in + done, (int)chunk) != 1)
            goto out;
        written += (size_t)n;
        done += chunk;
    }
    if (EVP_EncryptFinal_ex(ctx, sealed + written, &n) != 1)
        goto out;
    written += (size_t)n;
    if (written != len || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, S_TAG_LEN, tag) != 1)
        goto out;
    openssl_failed = false;

    body = s_b64_encode(raw, raw_len);
    if (!body)
        goto out;
    size_t text_len = strlen(S_FORMAT) + strlen(key->id) + 1 + strlen(body) + 1;
    char *text = malloc(text_len);
    if (!text)
        goto out;
    snprintf(text, text_len, "%s%s:%s", S_FORMAT, key->id, body);
    result = text;
out:
    if (openssl_failed)
        ERR_clear_error();
    EVP_CIPHER_CTX_free(ctx);
    free(raw);
    free(body);
    return result;
}

char *ncc_decrypt(const ncc_keyring_t *self, const char *context, const char *ciphertext,
                  size_t *ret_len)
{
    char *result = NULL;
    uint8_t *raw = NULL;
    char *plain = NULL;
    size_t plain_len = 0;
    EVP_CIPHER_CTX *ctx = NULL;
    bool openssl_failed = false;

    const char *id = NULL;
    size_t id_len = 0;
    const char *body = NULL;
    if (!self || s_split(ciphertext, &id, &id_len, &body) < 0)
        goto out;
    const s_data_key_t *key = s_find_key(self, id, id_len);
    if (!key)
        goto out;
    size_t context_len = context ? strlen(context) : 0;
    if (context_len > INT_MAX)
        goto out;
    size_t raw_len = 0;
    raw = s_b64_decode(body, strlen(body), &raw_len);
    if (!raw || raw_len < S_NONCE_LEN + S_TAG_LEN)
        goto out;
    const uint8_t *nonce = raw;
    const uint8_t *sealed = raw + S_NONCE_LEN;
    size_t len = raw_len - S_NONCE_LEN - S_TAG_LEN;
    uint8_t *tag = raw + S_NONCE_LEN + len;
    plain = malloc(len + 1);
    if (!plain)
        goto out;

    openssl_failed = true;
    ctx = EVP_CIPHER_CTX_new();
    if (!ctx || EVP_DecryptInit_ex2(ctx, EVP_aes_256_gcm(), key->key, nonce, NULL) != 1)
        goto out;
    int n = 0;
    if (context_len > 0 &&
        EVP_DecryptUpdate(ctx, NULL, &n, (const unsigned char *)context, (int)context_len) != 1)
        goto out;
    for (size_t done = 0; done < len;) {
        size_t chunk = len - done < S_OPENSSL_CHUNK ? len - done : S_OPENSSL_CHUNK;
        if (EVP_DecryptUpdate(ctx, (unsigned char *)plain + plain_len, &n, sealed + done,
                              (int)chunk) != 1)
            goto out;
        plain_len += (size_t)n;
        done += chunk;
    }
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, S_TAG_LEN, tag) != 1)
        goto out;
    /* The tag is checked here: nothing decrypted leaves before it passes. */
    if (EVP_DecryptFinal_ex(ctx, (unsigned char *)plain + plain_len, &n) != 1)
        goto out;
    plain_len += (size_t)n;
    if (plain_len != len)
        goto out;
    openssl_failed = false;

    plain[plain_len] = '\0';
    if (ret_len)
        *ret_len = plain_len;
    result = plain;
    plain = NULL;
out:
    if (openssl_failed)
        ERR_clear_error();
    if (plain) {
        OPENSSL_cleanse(plain, plain_len);
        free(plain);
    }
    EVP_CIPHER_CTX_free(ctx);
    free(raw);
    return result;
}

bool ncc_crypto_needs_rotation(const ncc_keyring_t *self, const char *ciphertext)
{
    const char *id = NULL;
    size_t id_len = 0;
    const char *body = NULL;
    if (!self || self->count == 0 || s_split(ciphertext, &id, &id_len, &body) < 0)
        return false;
    const char *current = self->keys[0].id;
    return !(strlen(current) == id_len && memcmp(current, id, id_len) == 0);
}

int ncc_blind_index(const ncc_keyring_t *self, const char *context, const char *value, char out[65])
{
    if (!self || !value || !out)
        return -EINVAL;
    if (!self->has_blind_key)
        return -ENOKEY;
    static const uint8_t separator = 0x00;
    s_part_t parts[] = {
        {context ? context : "", context ? strlen(context) : 0},
        {&separator, 1},
        {value, strlen(value)},
    };
    uint8_t mac[S_SHA256_LEN];
    int rc = s_hmac("SHA256", self->blind_key, S_KEY_LEN, parts, 3, mac, sizeof mac);
    if (rc < 0)
        return rc;
    s_hex(mac, sizeof mac, out);
    return 0;
}

/* ---- TOTP --------------------------------------------------------------------- */

/* RFC 4648 base32, case-insensitive, spaces anywhere, '=' padding optional
 * (only at the end). 0 or -EINVAL. */
static int s_base32_decode(const char *text, uint8_t out[S_TOTP_KEY_MAX], size_t *ret_len)
{
    if (!text)
        return -EINVAL;
    uint32_t buffer = 0;
    int bits = 0;
    size_t chars = 0;
    size_t len = 0;
    bool padding = false;
    for (const char *p = text; *p; p++) {
        char c = *p;
        if (c == ' ')
            continue;
        if (c == '=') {
            padding = true;
            continue;
        }
        if (padding)
            return -EINVAL;
        uint32_t value;
        if (c >= 'A' && c <= 'Z')
            value = (uint32_t)(c - 'A');
        else if (c >= 'a' && c <= 'z')
            value = (uint32_t)(c - 'a');
        else if (c >= '2' && c <= '7')
            value = (uint32_t)(c - '2' + 26);
        else
            return -EINVAL;
        chars++;
        buffer = (buffer << 5) | value;
        bits += 5;
        if (bits >= 8) {
            if (len == S_TOTP_KEY_MAX)
                return -EINVAL;
            bits -= 8;
            out[len++] = (uint8_t)(buffer >> bits);
        }
        buffer &= (1u << bits) - 1;
    }
    /* A base32 group of 8 characters ends after 2, 4, 5, 7 or 8 of them. */
    size_t rest = chars % 8;
    if (len == 0 || rest == 1 || rest == 3 || rest == 6)
        return -EINVAL;
    *ret_len = len;
    return 0;
}

static void s_base32_encode(const uint8_t *data, size_t len, char *out)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    uint32_t buffer = 0;
    int bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        buffer = (buffer << 8) | data[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[n++] = alphabet[(buffer >> bits) & 0x1f];
        }
        buffer &= (1u << bits) - 1;
    }
    if (bits > 0)
        out[n++] = alphabet[(buffer << (5 - bits)) & 0x1f];
    out[n] = '\0';
}

/* RFC 4226 HOTP of `counter` with `digits` digits into out (digits + 1). */
static int s_hotp(const uint8_t *key, size_t keylen, uint64_t counter, int digits, char *out)
{
    uint8_t message[8];
    for (int i = 7; i >= 0; i--) {
        message[i] = (uint8_t)(counter & 0xff);
        counter >>= 8;
    }
    s_part_t part = {message, sizeof message};
    uint8_t mac[S_SHA1_LEN];
    int rc = s_hmac("SHA1", key, keylen, &part, 1, mac, sizeof mac);
    if (rc < 0)
        return rc;
    size_t offset = mac[S_SHA1_LEN - 1] & 0x0f;
    uint32_t binary = ((uint32_t)(mac[offset] & 0x7f) << 24) | ((uint32_t)mac[offset + 1] << 16) |
                      ((uint32_t)mac[offset + 2] << 8) | (uint32_t)mac[offset + 3];
    uint32_t modulus = 1;
    for (int i = 0; i < digits; i++)
        modulus *= 10;
    snprintf(out, (size_t)digits + 1, "%0*" PRIu32, digits, binary % modulus);
    OPENSSL_cleanse(mac, sizeof mac);
    return 0;
}

int ncc_totp_new_secret(char out[33])
{
    uint8_t secret[S_TOTP_SECRET];
    if (!out)
        return -EINVAL;
    if (RAND_bytes(secret, sizeof secret) != 1) {
        ERR_clear_error();
        return -EIO;
    }
    s_base32_encode(secret, sizeof secret, out);
    OPENSSL_cleanse(secret, sizeof secret);
    return 0;
}

int ncc_totp_code_digits(const char *base32_secret, int64_t now, int digits, char *out,
                         size_t outlen)
{
    uint8_t key[S_TOTP_KEY_MAX];
    size_t keylen = 0;
    if (!out || digits < 6 || digits > 8 || now < 0)
        return -EINVAL;
    if (outlen < (size_t)digits + 1)
        return -ENOSPC;
    int rc = s_base32_decode(base32_secret, key, &keylen);
    if (rc == 0)
        rc = s_hotp(key, keylen, (uint64_t)(now / S_TOTP_STEP_S), digits, out);
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

int ncc_totp_code(const char *base32_secret, int64_t now, char out[7])
{
    return ncc_totp_code_digits(base32_secret, now, S_TOTP_DIGITS, out, S_TOTP_DIGITS + 1);
}

int64_t ncc_totp_verify(const char *base32_secret, const char *code, int64_t now)
{
    uint8_t key[S_TOTP_KEY_MAX];
    size_t keylen = 0;
    int64_t matched = 0;
    if (s_base32_decode(base32_secret, key, &keylen) < 0)
        return -EINVAL;
    bool well_formed = code && strlen(code) == S_TOTP_DIGITS && now >= 0;
    for (size_t i = 0; well_formed && i < S_TOTP_DIGITS; i++)
        well_formed = code[i] >= '0' && code[i] <= '9';
    if (!well_formed)
        goto out;

    int64_t step = now / S_TOTP_STEP_S;
    /* Every step of the window is computed and compared, whichever matches. */
    for (int64_t candidate = step - 1; candidate <= step + 1; candidate++) {
        char expected[S_TOTP_DIGITS + 1];
        if (candidate < 1)
            continue;
        if (s_hotp(key, keylen, (uint64_t)candidate, S_TOTP_DIGITS, expected) < 0) {
            matched = -EIO;
            goto out;
        }
        if (CRYPTO_memcmp(expected, code, S_TOTP_DIGITS) == 0)
            matched = candidate;
        OPENSSL_cleanse(expected, sizeof expected);
    }
out:
    OPENSSL_cleanse(key, sizeof key);
    return matched;
}

/* ---- actor proof ------------------------------------------------------------ */

static pthread_mutex_t s_actor_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t s_actor_key[S_KEY_LEN]; /* under s_actor_lock */
static bool s_actor_has_key;           /* under s_actor_lock */

int ncc_actor_key_set(const uint8_t *key, size_t len)
{
    if (key && len != S_KEY_LEN)
        return -EINVAL;
    pthread_mutex_lock(&s_actor_lock);
    if (key) {
        memcpy(s_actor_key, key, S_KEY_LEN);
        s_actor_has_key = true;
    } else {
        OPENSSL_cleanse(s_actor_key, sizeof s_actor_key);
        s_actor_has_key = false;
    }
    pthread_mutex_unlock(&s_actor_lock);
    return 0;
}

int ncc_actor_key_from_env(void)
{
    const char *text = getenv("NCC_BUS_ACTOR_KEY");
    if (!text || !*text)
        return -ENOKEY;
    uint8_t key[S_KEY_LEN];
    size_t size = 0;
    int rc = s_decode_key(text, strlen(text), key, &size);
    if (rc == 0)
        rc = ncc_actor_key_set(key, sizeof key);
    OPENSSL_cleanse(key, sizeof key);
    return rc < 0 ? -EINVAL : 0;
}

bool ncc_actor_key_present(void)
{
    pthread_mutex_lock(&s_actor_lock);
    bool present = s_actor_has_key;
    pthread_mutex_unlock(&s_actor_lock);
    return present;
}

/* A copy of the key into key; false when there is none. */
static bool s_actor_key_copy(uint8_t key[S_KEY_LEN])
{
    pthread_mutex_lock(&s_actor_lock);
    bool present = s_actor_has_key;
    if (present)
        memcpy(key, s_actor_key, S_KEY_LEN);
    pthread_mutex_unlock(&s_actor_lock);
    return present;
}

static bool s_field_ok(const char *field)
{
    return !field || !strchr(field, '\n');
}

/* The proof of envelope under key into mac. 0, -EINVAL (a field holds '\n'), -EIO. */
static int s_actor_mac(const Ncc__Envelope *envelope, const uint8_t key[S_KEY_LEN],
                       uint8_t mac[S_SHA256_LEN])
{
    const char *fields[] = {envelope->type, envelope->request_id, envelope->actor_id,
                            envelope->actor_role, envelope->actor_address};
    static const char prefix[] = "ncc-actor-v2\n";
    static const char newline[] = "\n";
    char sent[24] = "";
    if (envelope->has_sent_at_us)
        snprintf(sent, sizeof sent, "%" PRId64, envelope->sent_at_us);

    /* v2 binds the payload too, so a captured proof cannot carry another body. */
    char payload_hash[65];
    ncc_sha256_hex(envelope->has_payload ? envelope->payload.data : (const uint8_t *)"",
                   envelope->has_payload ? envelope->payload.len : 0, payload_hash);

    s_part_t parts[1 + 2 * 5 + 3];
    size_t count = 0;
    parts[count++] = (s_part_t){prefix, sizeof prefix - 1};
    for (size_t i = 0; i < 5; i++) {
        if (!s_field_ok(fields[i]))
            return -EINVAL;
        parts[count++] = (s_part_t){fields[i] ? fields[i] : "", fields[i] ? strlen(fields[i]) : 0};
        parts[count++] = (s_part_t){newline, 1};
    }
    parts[count++] = (s_part_t){sent, strlen(sent)};
    parts[count++] = (s_part_t){newline, 1};
    parts[count++] = (s_part_t){payload_hash, 64};
    return s_hmac("SHA256", key, S_KEY_LEN, parts, count, mac, S_SHA256_LEN);
}

int ncc_actor_sign(Ncc__Envelope *envelope)
{
    uint8_t key[S_KEY_LEN];
    uint8_t mac[S_SHA256_LEN];
    if (!envelope)
        return -EINVAL;
    if (!s_actor_key_copy(key))
        return -ENOKEY;
    int rc = s_actor_mac(envelope, key, mac);
    OPENSSL_cleanse(key, sizeof key);
    if (rc < 0)
        return rc;
    uint8_t *proof = malloc(sizeof mac);
    if (!proof)
        return -ENOMEM;
    memcpy(proof, mac, sizeof mac);
    free(envelope->actor_proof.data);
    envelope->actor_proof.data = proof;
    envelope->actor_proof.len = sizeof mac;
    envelope->has_actor_proof = true;
    return 0;
}

bool ncc_actor_verify(const Ncc__Envelope *envelope, int max_skew_s)
{
    uint8_t key[S_KEY_LEN];
    uint8_t mac[S_SHA256_LEN];
    if (!envelope || max_skew_s < 0 || !envelope->has_sent_at_us || !envelope->has_actor_proof ||
        !envelope->actor_proof.data || envelope->actor_proof.len != S_SHA256_LEN)
        return false;

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    int64_t skew_us = (int64_t)max_skew_s * 1000000;
    if (envelope->sent_at_us < now_us - skew_us || envelope->sent_at_us > now_us + skew_us)
        return false;

    if (!s_actor_key_copy(key))
        return false;
    int rc = s_actor_mac(envelope, key, mac);
    OPENSSL_cleanse(key, sizeof key);
    return rc == 0 && CRYPTO_memcmp(mac, envelope->actor_proof.data, sizeof mac) == 0;
}

/* ---- tokens --------------------------------------------------------------------- */

int ncc_random_hex(size_t bytes, char *out)
{
    uint8_t buffer[64];
    if (!out || bytes > sizeof buffer)
        return -EINVAL;
    if (bytes > 0 && RAND_bytes(buffer, (int)bytes) != 1) {
        ERR_clear_error();
        return -EIO;
    }
    s_hex(buffer, bytes, out);
    OPENSSL_cleanse(buffer, sizeof buffer);
    return 0;
}

bool ncc_secure_equals(const char *a, const char *b)
{
    if (!a || !b)
        return false;
    size_t len = strlen(a);
    if (strlen(b) != len)
        return false;
    return CRYPTO_memcmp(a, b, len) == 0;
}

void ncc_sha256_hex(const void *data, size_t len, char out[65])
{
    uint8_t digest[S_SHA256_LEN];
    unsigned int digest_len = 0;
    out[0] = '\0';
    if (!data && len > 0)
        return;
    if (EVP_Digest(data ? data : "", len, digest, &digest_len, EVP_sha256(), NULL) != 1 ||
        digest_len != sizeof digest) {
        ERR_clear_error();
        return;
    }
    s_hex(digest, sizeof digest, out);
}
