/* password: the password policy of ncc (R18) and Argon2id hashing
 * (libargon2, PHC string format). Nothing here logs. */
#ifndef DIRECTORY_PASSWORD_H
#define DIRECTORY_PASSWORD_H

#include <stdbool.h>
#include <stdint.h>

#define PASSWORD_MIN_CHARS 12   /* Unicode code points */
#define PASSWORD_MAX_BYTES 1024 /* longer input is refused, never hashed */

/* Argon2id cost: t (iterations), m (KiB), p (lanes). */
typedef struct {
    uint32_t iterations;
    uint32_t memory_kib;
    uint32_t parallelism;
} password_cost_t;

/* NULL when `password` may be used by the user `login` (may be NULL), else a
 * sentence for people saying why not (static; never quotes the password):
 * fewer than PASSWORD_MIN_CHARS characters, more than PASSWORD_MAX_BYTES
 * bytes, not UTF-8, one character repeated, one kind of character only, the
 * login inside it, or one of the most common passwords (also with digits or
 * symbols around it: "Password2024!"). */
const char *password_policy_check(const char *password, const char *login);

/* An Argon2id hash of `password` with a fresh random salt, in the PHC string
 * format (caller frees). NULL on failure (bad cost, out of memory). */
char *password_hash(const char *password, const password_cost_t *cost);

/* True when `password` matches `encoded` (an Argon2id PHC string). False on
 * mismatch and on a malformed hash. Takes the time the hash's cost says. */
bool password_verify(const char *encoded, const char *password);

/* True when `encoded` was made with another cost than `cost` (it is then
 * hashed again at the next successful sign-in). */
bool password_needs_rehash(const char *encoded, const password_cost_t *cost);

#endif
