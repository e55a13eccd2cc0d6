/* password: policy and Argon2id hashing (password.h). */
#include "password.h"

#include <argon2.h>
#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_SALT_BYTES 16
#define S_HASH_BYTES 32

/* The most common passwords of the published breach lists (lower case). A
 * password is refused when it is one of these, or one of these with digits or
 * symbols before or after it. Most are short: the length rule catches them
 * first; the rest are the long ones people reach for. */
static const char *const s_common[] = {
    "password",
    "123456",
    "123456789",
    "12345678",
    "12345",
    "qwerty",
    "abc123",
    "password1",
    "111111",
    "1234567",
    "1234567890",
    "123123",
    "000000",
    "iloveyou",
    "1q2w3e4r",
    "qwertyuiop",
    "123321",
    "monkey",
    "dragon",
    "654321",
    "1qaz2wsx",
    "letmein",
    "welcome",
    "admin",
    "administrator",
    "sunshine",
    "princess",
    "football",
    "baseball",
    "master",
    "shadow",
    "superman",
    "trustno1",
    "passw0rd",
    "p@ssw0rd",
    "p@ssword",
    "qwerty123",
    "zaq12wsx",
    "starwars",
    "whatever",
    "computer",
    "changeme",
    "default",
    "secret",
    "login",
    "guest",
    "pokemon",
    "nakano",
    "tokyo",
    "japan",
    "passwordpassword",
    "qwertyqwerty",
    "123456789012",
    "1qaz2wsx3edc",
    "1q2w3e4r5t6y",
    "qwertyuiopasdfgh",
    "asdfghjkl",
    "zxcvbnm",
    "aaaaaaaaaaaa",
    "abcdefghijkl",
    NULL,
};

typedef enum {
    S_CLASS_LOWER = 1 << 0,
    S_CLASS_UPPER = 1 << 1,
    S_CLASS_DIGIT = 1 << 2,
    S_CLASS_SYMBOL = 1 << 3, /* ASCII punctuation and space */
    S_CLASS_OTHER = 1 << 4,  /* beyond ASCII (kana, kanji, ...) */
} s_class_t;

/* Decodes one UTF-8 sequence at s: its code point in *cp and its length, or
 * 0 when the bytes are not well-formed UTF-8 (overlong, surrogate, > U+10FFFF). */
static size_t s_utf8_next(const unsigned char *s, unsigned long *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t len;
    unsigned long min;
    if ((s[0] & 0xE0) == 0xC0) {
        len = 2;
        min = 0x80;
        *cp = s[0] & 0x1F;
    } else if ((s[0] & 0xF0) == 0xE0) {
        len = 3;
        min = 0x800;
        *cp = s[0] & 0x0F;
    } else if ((s[0] & 0xF8) == 0xF0) {
        len = 4;
        min = 0x10000;
        *cp = s[0] & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        *cp = (*cp << 6) | (s[i] & 0x3F);
    }
    if (*cp < min || *cp > 0x10FFFF || (*cp >= 0xD800 && *cp <= 0xDFFF))
        return 0;
    return len;
}

static unsigned s_class_of(unsigned long cp)
{
    if (cp >= 0x80)
        return S_CLASS_OTHER;
    if (cp >= 'a' && cp <= 'z')
        return S_CLASS_LOWER;
    if (cp >= 'A' && cp <= 'Z')
        return S_CLASS_UPPER;
    if (cp >= '0' && cp <= '9')
        return S_CLASS_DIGIT;
    return S_CLASS_SYMBOL;
}

static bool s_in_common_list(const char *lower, size_t len)
{
    for (size_t i = 0; s_common[i]; i++)
        if (strlen(s_common[i]) == len && memcmp(s_common[i], lower, len) == 0)
            return true;
    return false;
}

/* True for a common password, as it is or with non-letters around it. */
static bool s_is_common(const char *password)
{
    size_t len = strlen(password);
    char *lower = malloc(len + 1);
    if (!lower)
        return false;
    for (size_t i = 0; i <= len; i++)
        lower[i] = (char)tolower((unsigned char)password[i]);
    bool common = s_in_common_list(lower, len);
    /* The letters in the middle: "Password2024!" -> "password". */
    size_t start = 0, end = len;
    while (start < end && !isalpha((unsigned char)lower[start]))
        start++;
    while (end > start && !isalpha((unsigned char)lower[end - 1]))
        end--;
    if (!common && end > start && (start > 0 || end < len))
        common = s_in_common_list(lower + start, end - start);
    OPENSSL_cleanse(lower, len);
    free(lower);
    return common;
}

const char *password_policy_check(const char *password, const char *login)
{
    if (!password || !*password)
        return "a password is required";
    size_t bytes = strlen(password);
    if (bytes > PASSWORD_MAX_BYTES)
        return "the password is too long (at most 1024 bytes)";

    size_t chars = 0;
    unsigned classes = 0;
    unsigned long first = 0;
    bool all_same = true;
    for (const unsigned char *p = (const unsigned char *)password; *p;) {
        unsigned long cp;
        size_t n = s_utf8_next(p, &cp);
        if (n == 0)
            return "the password is not valid UTF-8";
        if (cp < 0x20 || cp == 0x7F)
            return "the password must not contain control characters";
        if (chars == 0)
            first = cp;
        else if (cp != first)
            all_same = false;
        classes |= s_class_of(cp);
        chars++;
        p += n;
    }
    if (chars < PASSWORD_MIN_CHARS)
        return "the password must have at least 12 characters";
    if (all_same)
        return "the password must not be one character repeated";
    if ((classes & (classes - 1)) == 0)
        return "the password must mix at least two kinds of characters "
               "(lower case, upper case, digits, symbols, Japanese)";
    if (login && strlen(login) >= 3 && strcasestr(password, login))
        return "the password must not contain the login";
    if (s_is_common(password))
        return "the password is one of the most common passwords";
    return NULL;
}

char *password_hash(const char *password, const password_cost_t *cost)
{
    uint8_t salt[S_SALT_BYTES];
    if (!password || RAND_bytes(salt, sizeof salt) != 1)
        return NULL;
    size_t len = argon2_encodedlen(cost->iterations, cost->memory_kib, cost->parallelism,
                                   S_SALT_BYTES, S_HASH_BYTES, Argon2_id);
    char *encoded = malloc(len);
    if (!encoded)
        return NULL;
    int rc = argon2id_hash_encoded(cost->iterations, cost->memory_kib, cost->parallelism, password,
                                   strlen(password), salt, sizeof salt, S_HASH_BYTES, encoded, len);
    if (rc != ARGON2_OK) {
        free(encoded);
        return NULL;
    }
    return encoded;
}

bool password_verify(const char *encoded, const char *password)
{
    if (!encoded || !password || strncmp(encoded, "$argon2id$", 10) != 0)
        return false;
    return argon2id_verify(encoded, password, strlen(password)) == ARGON2_OK;
}

bool password_needs_rehash(const char *encoded, const password_cost_t *cost)
{
    char prefix[96];
    snprintf(prefix, sizeof prefix, "$argon2id$v=%d$m=%u,t=%u,p=%u$", ARGON2_VERSION_NUMBER,
             cost->memory_kib, cost->iterations, cost->parallelism);
    return !encoded || strncmp(encoded, prefix, strlen(prefix)) != 0;
}
