/* Tests for ncc/crypto.h: AES-256-GCM round trips and tampering, key rotation,
 * strict keyrings whose errors never show a key, blind indexes, TOTP against
 * the RFC 6238 vectors, the bus actor proof, and tokens. */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "ncc/crypto.h"

/* Fixed test keys (never used outside tests): K1 = bytes 1..32, K2 = 101..132,
 * K3 = 32 x 0xa5, KB = 200..231, KA = 50..81. */
#define K1 "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="
#define K2 "ZWZnaGlqa2xtbm9wcXJzdHV2d3h5ent8fX5/gIGCg4Q="
#define K3 "paWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaU="
#define KB "yMnKy8zNzs/Q0dLT1NXW19jZ2tvc3d7f4OHi4+Tl5uc="
#define KA "MjM0NTY3ODk6Ozw9Pj9AQUJDREVGR0hJSktMTU5PUFE="

/* RFC 6238 Appendix B: the ASCII secret "12345678901234567890" in base32. */
#define RFC_SECRET "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

#define CONTEXT "history.records.inquiry"

static ncc_keyring_t *s_keyring(const char *data_keys, const char *blind)
{
    char err[256] = "";
    ncc_keyring_t *keyring = ncc_keyring_new(data_keys, blind, err, sizeof err);
    cr_assert_not_null(keyring, "keyring: %s", err);
    return keyring;
}

/* The bytes after "v1:<id>:" (caller frees). */
static uint8_t *s_raw(const char *ciphertext, size_t *ret_len)
{
    const char *body = strchr(ciphertext + 3, ':');
    cr_assert_not_null(body);
    body++;
    size_t len = strlen(body);
    uint8_t *raw = malloc(len / 4 * 3 + 1);
    int n = EVP_DecodeBlock(raw, (const unsigned char *)body, (int)len);
    cr_assert_geq(n, 0);
    size_t pad = (len > 0 && body[len - 1] == '=') + (len > 1 && body[len - 2] == '=');
    *ret_len = (size_t)n - pad;
    return raw;
}

/* "v1:<id>:" + base64(raw) (caller frees). */
static char *s_text(const char *id, const uint8_t *raw, size_t len)
{
    size_t size = 3 + strlen(id) + 1 + (len + 2) / 3 * 4 + 1;
    char *text = malloc(size);
    int prefix = snprintf(text, size, "v1:%s:", id);
    EVP_EncodeBlock((unsigned char *)text + prefix, raw, (int)len);
    return text;
}

/* ---- encryption --------------------------------------------------------------- */

Test(crypto, round_trips_empty_japanese_binary_and_one_mebibyte)
{
    ncc_keyring_t *keyring = s_keyring("k1:" K1, NULL);
    const char *japanese = "中野区役所 住民税の申告について、電話番号は03-1234-5678です。";
    const uint8_t binary[] = {0x00, 0xff, 0x00, 0x7f, 0x80};
    size_t big_len = 1 << 20;
    uint8_t *big = malloc(big_len);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (uint8_t)(i * 31 + (i >> 8));

    struct {
        const void *data;
        size_t len;
    } cases[] = {{"", 0}, {japanese, strlen(japanese)}, {binary, sizeof binary}, {big, big_len}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *ciphertext = ncc_encrypt(keyring, CONTEXT, cases[i].data, cases[i].len);
        cr_assert_not_null(ciphertext, "case %zu", i);
        cr_assert_eq(strncmp(ciphertext, "v1:k1:", 6), 0, "%.20s", ciphertext);
        size_t raw_len = 0;
        uint8_t *raw = s_raw(ciphertext, &raw_len);
        cr_assert_eq(raw_len, 12 + cases[i].len + 16, "nonce | ciphertext | tag");
        if (cases[i].len > 0)
            cr_assert_neq(memcmp(raw + 12, cases[i].data, cases[i].len), 0, "not plaintext");
        free(raw);

        size_t len = 99;
        char *plain = ncc_decrypt(keyring, CONTEXT, ciphertext, &len);
        cr_assert_not_null(plain, "case %zu", i);
        cr_assert_eq(len, cases[i].len);
        cr_assert_eq(memcmp(plain, cases[i].data, len), 0);
        cr_assert_eq(plain[len], '\0', "NUL-terminated");
        free(plain);
        free(ciphertext);
    }
    char *ciphertext = ncc_encrypt(keyring, NULL, japanese, strlen(japanese));
    char *plain = ncc_decrypt(keyring, "", ciphertext, NULL);
    cr_assert_str_eq(plain, japanese, "NULL context is the same as \"\"");
    free(plain);
    free(ciphertext);
    free(big);
    ncc_keyring_destroy(&keyring);
    cr_assert_null(keyring);
    ncc_keyring_destroy(&keyring);
}

static int s_compare_nonce(const void *a, const void *b)
{
    return memcmp(a, b, 12);
}

Test(crypto, nonces_are_unique_across_1000_encryptions)
{
    ncc_keyring_t *keyring = s_keyring("k1:" K1, NULL);
    enum { COUNT = 1000 };
    uint8_t(*nonces)[12] = malloc(COUNT * sizeof *nonces);
    for (size_t i = 0; i < COUNT; i++) {
        char *ciphertext = ncc_encrypt(keyring, CONTEXT, "same", 4);
        size_t len = 0;
        uint8_t *raw = s_raw(ciphertext, &len);
        memcpy(nonces[i], raw, 12);
        free(raw);
        free(ciphertext);
    }
    qsort(nonces, COUNT, sizeof *nonces, s_compare_nonce);
    for (size_t i = 1; i < COUNT; i++)
        cr_assert_neq(memcmp(nonces[i - 1], nonces[i], 12), 0, "nonce repeated");
    free(nonces);
    ncc_keyring_destroy(&keyring);
}

Test(crypto, every_tampering_fails_to_decrypt)
{
    ncc_keyring_t *keyring = s_keyring("k1:" K1 ",k2:" K2, NULL);
    const char *secret = "090-1234-5678";
    char *ciphertext = ncc_encrypt(keyring, CONTEXT, secret, strlen(secret));
    char *plain = ncc_decrypt(keyring, CONTEXT, ciphertext, NULL);
    cr_assert_str_eq(plain, secret, "the untouched text decrypts");
    free(plain);

    /* Every single bit of nonce, ciphertext and tag. */
    size_t len = 0;
    uint8_t *raw = s_raw(ciphertext, &len);
    for (size_t bit = 0; bit < len * 8; bit++) {
        raw[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        char *tampered = s_text("k1", raw, len);
        cr_assert_null(ncc_decrypt(keyring, CONTEXT, tampered, NULL), "bit %zu flipped", bit);
        free(tampered);
        raw[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    /* Truncated: each shorter length, down to no bytes. */
    for (size_t cut = 1; cut <= len; cut++) {
        char *truncated = s_text("k1", raw, len - cut);
        cr_assert_null(ncc_decrypt(keyring, CONTEXT, truncated, NULL), "%zu bytes cut", cut);
        free(truncated);
    }
    /* A byte appended. */
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, raw, len);
    longer[len] = 0;
    char *appended = s_text("k1", longer, len + 1);
    cr_assert_null(ncc_decrypt(keyring, CONTEXT, appended, NULL));
    free(appended);
    free(longer);
    /* Another key id of the same keyring, an unknown one. */
    char *other_key = s_text("k2", raw, len);
    cr_assert_null(ncc_decrypt(keyring, CONTEXT, other_key, NULL));
    free(other_key);
    char *unknown = s_text("k9", raw, len);
    cr_assert_null(ncc_decrypt(keyring, CONTEXT, unknown, NULL));
    free(unknown);
    free(raw);

    /* Wrong context (another column), none, a prefix of the right one. */
    cr_assert_null(ncc_decrypt(keyring, "history.records.answer", ciphertext, NULL));
    cr_assert_null(ncc_decrypt(keyring, NULL, ciphertext, NULL));
    cr_assert_null(ncc_decrypt(keyring, "history.records", ciphertext, NULL));

    /* Text damage: bad base64, missing parts, other versions. */
    size_t text_len = strlen(ciphertext);
    char *damaged = strdup(ciphertext);
    damaged[10] = '!';
    cr_assert_null(ncc_decrypt(keyring, CONTEXT, damaged, NULL), "bad base64");
    memcpy(damaged, ciphertext, text_len + 1);
    damaged[text_len - 1] = '\0';
    cr_assert_null(ncc_decrypt(keyring, CONTEXT, damaged, NULL), "base64 cut short");
    memcpy(damaged, ciphertext, text_len + 1);
    damaged[1] = '2';
    cr_assert_null(ncc_decrypt(keyring, CONTEXT, damaged, NULL), "v2");
    free(damaged);
    const char *junk[] = {"",
                          "v1:",
                          "v1:k1",
                          "v1:k1:",
                          "v1::AAAA",
                          "plain text",
                          "v1:k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
        cr_assert_null(ncc_decrypt(keyring, CONTEXT, junk[i], NULL), "%s", junk[i]);
    cr_assert_null(ncc_decrypt(keyring, CONTEXT, NULL, NULL));

    /* The same id under other key material. */
    ncc_keyring_t *impostor = s_keyring("k1:" K3, NULL);
    cr_assert_null(ncc_decrypt(impostor, CONTEXT, ciphertext, NULL));
    ncc_keyring_destroy(&impostor);

    free(ciphertext);
    ncc_keyring_destroy(&keyring);
}

Test(crypto, non_canonical_base64_is_refused)
{
    ncc_keyring_t *keyring = s_keyring("k1:" K1, NULL);
    /* 1 byte of plaintext: 29 raw bytes, base64 ends in one char + "=". */
    char *ciphertext = ncc_encrypt(keyring, CONTEXT, "x", 1);
    size_t len = strlen(ciphertext);
    cr_assert_eq(ciphertext[len - 1], '=');
    cr_assert_neq(ciphertext[len - 2], '=');
    char *plain = ncc_decrypt(keyring, CONTEXT, ciphertext, NULL);
    cr_assert_str_eq(plain, "x");
    free(plain);
    /* The last char's two low bits fall into the padding; setting one gives
     * another text for the same bytes, which must not be accepted. */
    const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    int value = (int)(strchr(alphabet, ciphertext[len - 2]) - alphabet);
    cr_assert_eq(value & 3, 0);
    ciphertext[len - 2] = alphabet[value | 1];
    cr_assert_null(ncc_decrypt(keyring, CONTEXT, ciphertext, NULL));
    free(ciphertext);
    ncc_keyring_destroy(&keyring);
}

Test(crypto, rotation_decrypts_old_keys_and_flags_them)
{
    ncc_keyring_t *old = s_keyring("k1:" K1, NULL);
    char *under_k1 = ncc_encrypt(old, CONTEXT, "鈴木 花子", strlen("鈴木 花子"));
    cr_assert_not(ncc_crypto_needs_rotation(old, under_k1));

    ncc_keyring_t *rotated = s_keyring("k2:" K2 ",k1:" K1, NULL);
    cr_assert_str_eq(ncc_keyring_current_id(rotated), "k2");
    cr_assert(ncc_crypto_needs_rotation(rotated, under_k1));
    char *plain = ncc_decrypt(rotated, CONTEXT, under_k1, NULL);
    cr_assert_str_eq(plain, "鈴木 花子");

    /* The background job re-encrypts under k2: no longer flagged. */
    char *under_k2 = ncc_encrypt(rotated, CONTEXT, plain, strlen(plain));
    cr_assert_eq(strncmp(under_k2, "v1:k2:", 6), 0);
    cr_assert_not(ncc_crypto_needs_rotation(rotated, under_k2));
    free(plain);

    /* Once k1 is dropped, k1 text no longer decrypts, k2 text does. */
    ncc_keyring_t *k2_only = s_keyring("k2:" K2, NULL);
    cr_assert_null(ncc_decrypt(k2_only, CONTEXT, under_k1, NULL));
    plain = ncc_decrypt(k2_only, CONTEXT, under_k2, NULL);
    cr_assert_str_eq(plain, "鈴木 花子");
    free(plain);

    cr_assert_not(ncc_crypto_needs_rotation(rotated, "not ciphertext"));
    cr_assert_not(ncc_crypto_needs_rotation(rotated, NULL));
    free(under_k1);
    free(under_k2);
    ncc_keyring_destroy(&old);
    ncc_keyring_destroy(&rotated);
    ncc_keyring_destroy(&k2_only);
}

/* True when err holds any 8 consecutive characters of key. */
static bool s_leaks(const char *err, const char *key)
{
    char window[9];
    for (size_t i = 0; i + 8 <= strlen(key); i++) {
        memcpy(window, key + i, 8);
        window[8] = '\0';
        if (strstr(err, window))
            return true;
    }
    return false;
}

Test(crypto, malformed_keyrings_give_clear_errors_without_key_text)
{
    static const struct {
        const char *data_keys;
        const char *blind;
        const char *expected; /* fragment of the error */
    } cases[] = {
        {NULL, NULL, "no key given"},
        {"", NULL, "no key given"},
        {K1, NULL, "entry 1 has no \"id:\""},
        {"k1:" K1 "," K2, NULL, "entry 2 has no \"id:\""},
        {":" K1, NULL, "entry 1: the key id must be"},
        {"k 1:" K1, NULL, "entry 1: the key id must be"},
        {"k1;x:" K1, NULL, "entry 1: the key id must be"},
        {"abcdefghijklmnopqrstuvwxyz0123456:" K1, NULL, "1 to 32 characters"},
        {K1 ":" K2, NULL, "entry 1: the key id must be"},
        {"k1:" K1 ",", NULL, "entry 2 is empty"},
        {",k1:" K1, NULL, "entry 1 is empty"},
        {"k1:" K1 ",,k2:" K2, NULL, "entry 2 is empty"},
        {"k1:" K1 ",k1:" K2, NULL, "key id \"k1\" is given twice"},
        {"k1:", NULL, "key \"k1\" is empty"},
        {"k1:AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA", NULL, "key \"k1\" is not base64"},
        {"k1: " K1, NULL, "key \"k1\" is not base64"},
        {"k1:" K1 " ", NULL, "key \"k1\" is not base64"},
        {"k1:" K1 "\n", NULL, "key \"k1\" is not base64"},
        {"k1:ZWZnaGlqa2xtbm9wcXJzdHV2d3h5ent8fX5_gIGCg4Q=", NULL, "key \"k1\" is not base64"},
        {"k1:" K1 ":" K2, NULL, "key \"k1\" is not base64"},
        {"k1:AAAAAAAAAAAAAAAAAAAAAA==", NULL, "key \"k1\" is 16 bytes, expected 32"},
        {"k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL,
         "key \"k1\" is 33 bytes, expected 32"},
        {"k1:" K1, "AAAAAAAAAAAAAAAAAAAAAA==", "blind index key: 16 bytes, expected 32"},
        {"k1:" K1, KB "x", "blind index key: not base64"},
        {"k1:" K1, "k1:" KB, "blind index key: not base64"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[256] = "";
        ncc_keyring_t *keyring =
            ncc_keyring_new(cases[i].data_keys, cases[i].blind, err, sizeof err);
        cr_assert_null(keyring, "case %zu accepted", i);
        cr_assert(strstr(err, cases[i].expected), "case %zu: \"%s\" lacks \"%s\"", i, err,
                  cases[i].expected);
        cr_assert_not(s_leaks(err, K1) || s_leaks(err, K2) || s_leaks(err, KB),
                      "case %zu: key text in \"%s\"", i, err);
    }
    /* No err buffer at all is fine. */
    cr_assert_null(ncc_keyring_new("k1", NULL, NULL, 0));
    /* Longest id and all its characters are accepted. */
    ncc_keyring_t *keyring = s_keyring("Az09_-abcdefghijklmnopqrstuvwxyz:" K1, KB);
    cr_assert_str_eq(ncc_keyring_current_id(keyring), "Az09_-abcdefghijklmnopqrstuvwxyz");
    ncc_keyring_destroy(&keyring);
}

Test(crypto, keyring_from_environment)
{
    char err[256] = "";
    unsetenv("NCC_DATA_KEYS");
    unsetenv("NCC_BLIND_INDEX_KEY");
    cr_assert_null(ncc_keyring_from_env(err, sizeof err));
    cr_assert(strstr(err, "NCC_DATA_KEYS: no key given"), "%s", err);

    setenv("NCC_DATA_KEYS", "2025a:" K1 ",2024b:" K2, 1);
    setenv("NCC_BLIND_INDEX_KEY", "AAAA", 1);
    cr_assert_null(ncc_keyring_from_env(err, sizeof err));
    cr_assert(strstr(err, "NCC_BLIND_INDEX_KEY: 3 bytes, expected 32"), "%s", err);

    setenv("NCC_BLIND_INDEX_KEY", KB, 1);
    ncc_keyring_t *keyring = ncc_keyring_from_env(err, sizeof err);
    cr_assert_not_null(keyring, "%s", err);
    cr_assert_str_eq(ncc_keyring_current_id(keyring), "2025a");
    char index[65];
    cr_assert_eq(ncc_blind_index(keyring, "c", "v", index), 0);
    ncc_keyring_destroy(&keyring);

    setenv("NCC_BLIND_INDEX_KEY", "", 1); /* empty counts as unset */
    keyring = ncc_keyring_from_env(err, sizeof err);
    cr_assert_not_null(keyring, "%s", err);
    cr_assert_eq(ncc_blind_index(keyring, "c", "v", index), -ENOKEY);
    ncc_keyring_destroy(&keyring);
    unsetenv("NCC_DATA_KEYS");
    unsetenv("NCC_BLIND_INDEX_KEY");
}

/* ---- blind index ---------------------------------------------------------------- */

Test(crypto, blind_index_is_stable_keyed_and_context_separated)
{
    ncc_keyring_t *a = s_keyring("k1:" K1, KB);
    ncc_keyring_t *b = s_keyring("k2:" K2 ",k1:" K1, KB); /* data keys rotated */
    ncc_keyring_t *other = s_keyring("k1:" K1, K3);
    ncc_keyring_t *none = s_keyring("k1:" K1, NULL);
    char x[65], y[65];

    /* Known answer: HMAC-SHA256(KB, "calls.caller_number" 0x00 "0312345678"),
     * computed outside OpenSSL (Python's hmac module). */
    cr_assert_eq(ncc_blind_index(a, "calls.caller_number", "0312345678", x), 0);
    cr_assert_str_eq(x, "e8e32dae0d6b078ac0caff9aeee8821a2a14aeeb95ef44e4265fd8cf343eee66");

    /* Stable across keyrings and data-key rotation. */
    cr_assert_eq(ncc_blind_index(b, "calls.caller_number", "0312345678", y), 0);
    cr_assert_str_eq(x, y);
    /* Another value, another context, another key: another index. */
    cr_assert_eq(ncc_blind_index(a, "calls.caller_number", "0312345679", y), 0);
    cr_assert_str_neq(x, y);
    cr_assert_eq(ncc_blind_index(a, "sms.destination", "0312345678", y), 0);
    cr_assert_str_neq(x, y);
    cr_assert_eq(ncc_blind_index(other, "calls.caller_number", "0312345678", y), 0);
    cr_assert_str_neq(x, y);
    /* The separator keeps "ab"+"c" apart from "a"+"bc". */
    cr_assert_eq(ncc_blind_index(a, "ab", "c", x), 0);
    cr_assert_eq(ncc_blind_index(a, "a", "bc", y), 0);
    cr_assert_str_neq(x, y);
    /* Normalisation is the caller's: a differently written number differs. */
    cr_assert_eq(ncc_blind_index(a, "calls.caller_number", "03-1234-5678", y), 0);
    cr_assert_eq(ncc_blind_index(a, "calls.caller_number", "0312345678", x), 0);
    cr_assert_str_neq(x, y);
    /* 64 lowercase hex characters. */
    cr_assert_eq(strlen(x), 64);
    cr_assert_eq(strspn(x, "0123456789abcdef"), 64);

    cr_assert_eq(ncc_blind_index(none, "c", "v", x), -ENOKEY);
    cr_assert_eq(ncc_blind_index(a, "c", NULL, x), -EINVAL);
    ncc_keyring_destroy(&a);
    ncc_keyring_destroy(&b);
    ncc_keyring_destroy(&other);
    ncc_keyring_destroy(&none);
}

/* ---- TOTP --------------------------------------------------------------------- */

Test(crypto, totp_matches_rfc6238_sha1_vectors)
{
    static const struct {
        int64_t time;
        const char *code8;
        const char *code6;
    } vectors[] = {
        {59, "94287082", "287082"},         {1111111109, "07081804", "081804"},
        {1111111111, "14050471", "050471"}, {1234567890, "89005924", "005924"},
        {2000000000, "69279037", "279037"},
    };
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        char code8[9];
        char code6[7];
        cr_assert_eq(ncc_totp_code_digits(RFC_SECRET, vectors[i].time, 8, code8, sizeof code8), 0);
        cr_assert_str_eq(code8, vectors[i].code8, "t=%" PRId64, vectors[i].time);
        cr_assert_eq(ncc_totp_code(RFC_SECRET, vectors[i].time, code6), 0);
        cr_assert_str_eq(code6, vectors[i].code6, "t=%" PRId64, vectors[i].time);
        cr_assert_eq(ncc_totp_verify(RFC_SECRET, vectors[i].code6, vectors[i].time),
                     vectors[i].time / 30);
    }
    /* The same secret written in lower case, with spaces, with padding. */
    const char *spellings[] = {
        "gezdgnbvgy3tqojqgezdgnbvgy3tqojq", "GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ",
        "gezdgnbvgy3tqojqgezdgnbvgy3tqojq====", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ========"};
    for (size_t i = 0; i < sizeof spellings / sizeof spellings[0]; i++) {
        char code[7];
        cr_assert_eq(ncc_totp_code(spellings[i], 59, code), 0, "%s", spellings[i]);
        cr_assert_str_eq(code, "287082", "%s", spellings[i]);
    }
    char out[9];
    cr_assert_eq(ncc_totp_code_digits(RFC_SECRET, 59, 5, out, sizeof out), -EINVAL);
    cr_assert_eq(ncc_totp_code_digits(RFC_SECRET, 59, 8, out, 8), -ENOSPC);
    cr_assert_eq(ncc_totp_code_digits(RFC_SECRET, -1, 6, out, sizeof out), -EINVAL);
}

Test(crypto, totp_refuses_malformed_base32)
{
    const char *bad[] = {"",
                         "   ",
                         "GEZDGNB1",
                         "GEZDGNB8",
                         "GEZD=GNB",
                         "GEZDGNBVG", /* 9 chars: 1 left over */
                         "GEZ",       /* 3 */
                         "GEZDGN",    /* 6 */
                         "GEZDGNBV-GY3TQOJQ",
                         NULL};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char code[7];
        cr_assert_eq(ncc_totp_code(bad[i], 59, code), -EINVAL, "%s", bad[i] ? bad[i] : "NULL");
        cr_assert_eq(ncc_totp_verify(bad[i], "287082", 59), -EINVAL);
    }
    /* Longer than 80 bytes decoded (130 chars: 81 bytes); 128 chars is the most. */
    char longer[131];
    memset(longer, 'A', 130);
    longer[130] = '\0';
    char code[7];
    cr_assert_eq(ncc_totp_code(longer, 59, code), -EINVAL);
    longer[128] = '\0';
    cr_assert_eq(ncc_totp_code(longer, 59, code), 0);
}

Test(crypto, totp_window_is_one_step_each_way_and_returns_the_step)
{
    const int64_t now = 1700000015; /* step 56666667 */
    const int64_t step = now / 30;
    char code[7];

    cr_assert_eq(ncc_totp_code(RFC_SECRET, now, code), 0);
    cr_assert_eq(ncc_totp_verify(RFC_SECRET, code, now), step);
    cr_assert_eq(ncc_totp_code(RFC_SECRET, now - 30, code), 0);
    cr_assert_eq(ncc_totp_verify(RFC_SECRET, code, now), step - 1, "previous step accepted");
    cr_assert_eq(ncc_totp_code(RFC_SECRET, now + 30, code), 0);
    cr_assert_eq(ncc_totp_verify(RFC_SECRET, code, now), step + 1, "next step accepted");
    cr_assert_eq(ncc_totp_code(RFC_SECRET, now - 60, code), 0);
    cr_assert_eq(ncc_totp_verify(RFC_SECRET, code, now), 0, "two steps old refused");
    cr_assert_eq(ncc_totp_code(RFC_SECRET, now + 60, code), 0);
    cr_assert_eq(ncc_totp_verify(RFC_SECRET, code, now), 0, "two steps ahead refused");

    /* Replay: the same code within its window gives the same step, which the
     * caller compares with the last one it accepted. */
    cr_assert_eq(ncc_totp_code(RFC_SECRET, now, code), 0);
    int64_t first = ncc_totp_verify(RFC_SECRET, code, now);
    int64_t again = ncc_totp_verify(RFC_SECRET, code, now + 20);
    cr_assert_eq(first, again);

    /* Wrong and malformed codes. */
    char wrong[7];
    memcpy(wrong, code, sizeof wrong);
    wrong[5] = wrong[5] == '9' ? '0' : (char)(wrong[5] + 1);
    cr_assert_eq(ncc_totp_verify(RFC_SECRET, wrong, now), 0);
    const char *malformed[] = {"", "12345", "1234567", "12345a", " 12345", NULL};
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++)
        cr_assert_eq(ncc_totp_verify(RFC_SECRET, malformed[i], now), 0);
}

Test(crypto, totp_new_secret_is_random_base32)
{
    char a[33], b[33];
    cr_assert_eq(ncc_totp_new_secret(a), 0);
    cr_assert_eq(ncc_totp_new_secret(b), 0);
    cr_assert_eq(strlen(a), 32);
    cr_assert_eq(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"), 32);
    cr_assert_str_neq(a, b);
    char code[7];
    cr_assert_eq(ncc_totp_code(a, 1700000000, code), 0);
    cr_assert_eq(ncc_totp_verify(a, code, 1700000000), 1700000000 / 30);
}

/* ---- actor proof ------------------------------------------------------------ */

static const uint8_t actor_key[32] = {50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60,
                                      61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71,
                                      72, 73, 74, 75, 76, 77, 78, 79, 80, 81}; /* = KA */

static void s_clear_actor_key(void)
{
    ncc_actor_key_set(NULL, 0);
    unsetenv("NCC_BUS_ACTOR_KEY");
}

static int64_t s_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static Ncc__Envelope s_envelope(int64_t sent_at_us)
{
    Ncc__Envelope envelope = NCC__ENVELOPE__INIT;
    envelope.type = "ncc.Ping";
    envelope.request_id = "req-1";
    envelope.trace_id = "trace-1";
    envelope.actor_id = "user-42";
    envelope.actor_role = "operator";
    envelope.actor_address = "192.0.2.7";
    envelope.has_sent_at_us = true;
    envelope.sent_at_us = sent_at_us;
    return envelope;
}

TestSuite(actor, .init = s_clear_actor_key, .fini = s_clear_actor_key);

Test(actor, proof_is_the_documented_hmac)
{
    cr_assert_eq(ncc_actor_key_set(actor_key, sizeof actor_key), 0);
    Ncc__Envelope envelope = s_envelope(1700000000000000);
    cr_assert_eq(ncc_actor_sign(&envelope), 0);
    cr_assert(envelope.has_actor_proof);
    cr_assert_eq(envelope.actor_proof.len, 32);
    char hex[65];
    for (size_t i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", envelope.actor_proof.data[i]);
    /* HMAC-SHA256(KA, "ncc-actor-v2\nncc.Ping\nreq-1\nuser-42\noperator\n
     * 192.0.2.7\n1700000000000000\n" sha256_hex("")), computed with Python's
     * hmac module (no payload: the hash of the empty string). */
    cr_assert_str_eq(hex, "8537552a4c1cbee9feab37ecbf44d4745c7b895385231adc01ec5c08b4952f6a");
    /* Signing again replaces (and frees) the earlier proof. */
    cr_assert_eq(ncc_actor_sign(&envelope), 0);
    free(envelope.actor_proof.data);
}

Test(actor, valid_proof_verifies_and_survives_packing)
{
    cr_assert_eq(ncc_actor_key_set(actor_key, sizeof actor_key), 0);
    cr_assert(ncc_actor_key_present());
    Ncc__Envelope envelope = s_envelope(s_now_us());
    cr_assert_eq(ncc_actor_sign(&envelope), 0);
    cr_assert(ncc_actor_verify(&envelope, 300));

    /* Through the wire format, as a service receives it. */
    size_t size = ncc__envelope__get_packed_size(&envelope);
    uint8_t *packed = malloc(size);
    ncc__envelope__pack(&envelope, packed);
    Ncc__Envelope *received = ncc__envelope__unpack(NULL, size, packed);
    cr_assert_not_null(received);
    cr_assert(ncc_actor_verify(received, 300));
    /* trace_id and timeout are not part of the proof; the payload is. */
    received->trace_id[0] = 'X';
    cr_assert(ncc_actor_verify(received, 300));
    uint8_t other[] = {0x0a, 0x01, 0x78};
    received->has_payload = true;
    received->payload.data = other;
    received->payload.len = sizeof other;
    cr_assert_not(ncc_actor_verify(received, 300), "a proof must not carry another payload");
    received->has_payload = false;
    received->payload.data = NULL;
    received->payload.len = 0;
    ncc__envelope__free_unpacked(received, NULL);
    free(packed);
    free(envelope.actor_proof.data);
}

Test(actor, changing_any_bound_field_breaks_the_proof)
{
    cr_assert_eq(ncc_actor_key_set(actor_key, sizeof actor_key), 0);
    int64_t now = s_now_us();
    for (int field = 0; field < 7; field++) {
        Ncc__Envelope envelope = s_envelope(now);
        cr_assert_eq(ncc_actor_sign(&envelope), 0);
        switch (field) {
        case 0:
            envelope.type = "ncc.HealthRequest";
            break;
        case 1:
            envelope.request_id = "req-2";
            break;
        case 2:
            envelope.actor_id = "user-1";
            break;
        case 3:
            envelope.actor_role = "admin";
            break;
        case 4:
            envelope.actor_address = "198.51.100.1";
            break;
        case 5:
            envelope.sent_at_us = now + 1;
            break;
        case 6:
            envelope.actor_role = NULL; /* absent is "", not "operator" */
            break;
        }
        cr_assert_not(ncc_actor_verify(&envelope, 300), "field %d changed", field);
        free(envelope.actor_proof.data);
    }
    /* A flipped bit in the proof itself, a short proof, no proof. */
    Ncc__Envelope envelope = s_envelope(now);
    cr_assert_eq(ncc_actor_sign(&envelope), 0);
    envelope.actor_proof.data[31] ^= 1;
    cr_assert_not(ncc_actor_verify(&envelope, 300));
    envelope.actor_proof.data[31] ^= 1;
    envelope.actor_proof.len = 31;
    cr_assert_not(ncc_actor_verify(&envelope, 300));
    envelope.actor_proof.len = 32;
    envelope.has_actor_proof = false;
    cr_assert_not(ncc_actor_verify(&envelope, 300));
    envelope.has_actor_proof = true;
    cr_assert(ncc_actor_verify(&envelope, 300));
    /* Another key. */
    uint8_t other[32] = {0};
    cr_assert_eq(ncc_actor_key_set(other, sizeof other), 0);
    cr_assert_not(ncc_actor_verify(&envelope, 300));
    free(envelope.actor_proof.data);
}

Test(actor, stale_or_future_sent_at_fails)
{
    cr_assert_eq(ncc_actor_key_set(actor_key, sizeof actor_key), 0);
    int64_t now = s_now_us();
    const struct {
        int64_t offset_us;
        bool ok;
    } cases[] = {
        {-200 * 1000000LL, true}, {200 * 1000000LL, true},    {-301 * 1000000LL, false},
        {301 * 1000000LL, false}, {-3600 * 1000000LL, false}, {INT64_MIN / 2, false},
        {INT64_MAX / 2, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Ncc__Envelope envelope = s_envelope(now + cases[i].offset_us);
        cr_assert_eq(ncc_actor_sign(&envelope), 0);
        cr_assert_eq(ncc_actor_verify(&envelope, 300), cases[i].ok, "offset %" PRId64,
                     cases[i].offset_us);
        free(envelope.actor_proof.data);
    }
    Ncc__Envelope envelope = s_envelope(now);
    envelope.has_sent_at_us = false;
    cr_assert_eq(ncc_actor_sign(&envelope), 0);
    cr_assert_not(ncc_actor_verify(&envelope, 300), "no sent_at");
    free(envelope.actor_proof.data);
}

Test(actor, no_key_means_no_signing_and_no_verification)
{
    cr_assert_not(ncc_actor_key_present());
    Ncc__Envelope envelope = s_envelope(s_now_us());
    cr_assert_eq(ncc_actor_sign(&envelope), -ENOKEY);
    cr_assert_not(envelope.has_actor_proof);

    cr_assert_eq(ncc_actor_key_set(actor_key, sizeof actor_key), 0);
    cr_assert_eq(ncc_actor_sign(&envelope), 0);
    cr_assert(ncc_actor_verify(&envelope, 300));
    ncc_actor_key_set(NULL, 0);
    cr_assert_not(ncc_actor_key_present());
    cr_assert_not(ncc_actor_verify(&envelope, 300), "a valid proof, but no key to check it");
    free(envelope.actor_proof.data);

    cr_assert_eq(ncc_actor_key_set(actor_key, 16), -EINVAL);
    cr_assert_not(ncc_actor_key_present(), "a bad key leaves none");
}

Test(actor, key_from_environment)
{
    cr_assert_eq(ncc_actor_key_from_env(), -ENOKEY);
    setenv("NCC_BUS_ACTOR_KEY", "", 1);
    cr_assert_eq(ncc_actor_key_from_env(), -ENOKEY);
    setenv("NCC_BUS_ACTOR_KEY", "AAAAAAAAAAAAAAAAAAAAAA==", 1);
    cr_assert_eq(ncc_actor_key_from_env(), -EINVAL);
    setenv("NCC_BUS_ACTOR_KEY", "not base64!", 1);
    cr_assert_eq(ncc_actor_key_from_env(), -EINVAL);
    cr_assert_not(ncc_actor_key_present());

    setenv("NCC_BUS_ACTOR_KEY", KA, 1);
    cr_assert_eq(ncc_actor_key_from_env(), 0);
    cr_assert(ncc_actor_key_present());
    /* The same key as the bytes: a proof made with one verifies with the other. */
    Ncc__Envelope envelope = s_envelope(s_now_us());
    cr_assert_eq(ncc_actor_sign(&envelope), 0);
    cr_assert_eq(ncc_actor_key_set(actor_key, sizeof actor_key), 0);
    cr_assert(ncc_actor_verify(&envelope, 300));
    free(envelope.actor_proof.data);
}

Test(actor, newline_in_a_field_is_refused)
{
    cr_assert_eq(ncc_actor_key_set(actor_key, sizeof actor_key), 0);
    /* "user-42\noperator" + "" would otherwise sign the same bytes as
     * "user-42" + "operator\n...". */
    Ncc__Envelope envelope = s_envelope(s_now_us());
    envelope.actor_id = "user-42\nadmin";
    cr_assert_eq(ncc_actor_sign(&envelope), -EINVAL);
    cr_assert_not(envelope.has_actor_proof);
    envelope.actor_id = "user-42";
    cr_assert_eq(ncc_actor_sign(&envelope), 0);
    envelope.actor_address = "x\ny";
    cr_assert_not(ncc_actor_verify(&envelope, 300));
    free(envelope.actor_proof.data);
}

/* ---- tokens --------------------------------------------------------------------- */

Test(crypto, tokens_hashes_and_comparisons)
{
    char a[129], b[129];
    cr_assert_eq(ncc_random_hex(64, a), 0);
    cr_assert_eq(ncc_random_hex(64, b), 0);
    cr_assert_eq(strlen(a), 128);
    cr_assert_eq(strspn(a, "0123456789abcdef"), 128);
    cr_assert_str_neq(a, b);
    cr_assert_eq(ncc_random_hex(16, a), 0);
    cr_assert_eq(strlen(a), 32);
    cr_assert_eq(ncc_random_hex(0, a), 0);
    cr_assert_str_eq(a, "");
    cr_assert_eq(ncc_random_hex(65, a), -EINVAL);

    cr_assert(ncc_secure_equals("token", "token"));
    cr_assert(ncc_secure_equals("", ""));
    cr_assert_not(ncc_secure_equals("token", "tokem"));
    cr_assert_not(ncc_secure_equals("token", "token2"));
    cr_assert_not(ncc_secure_equals("token", NULL));
    cr_assert_not(ncc_secure_equals(NULL, NULL));

    char hash[65];
    ncc_sha256_hex("abc", 3, hash);
    cr_assert_str_eq(hash, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    ncc_sha256_hex(NULL, 0, hash);
    cr_assert_str_eq(hash, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}
