/* directory: the ncc-directory service object (users, roles, sign-in, the
 * audit log). main.c builds it through the service frame; its handlers live
 * in users.c (user management), auth.c (sign-in, passwords) and audit.c (the
 * audit log). This header is shared by those files only. */
#ifndef DIRECTORY_H
#define DIRECTORY_H

#include <stdbool.h>
#include <stdint.h>

#include "directory.pb-c.h"
#include "routing.pb-c.h"
#include "ncc/crypto.h"
#include "ncc/service.h"
#include "password.h"

/* The directory's own settings (NCC_* variables, table in main.c). */
typedef struct {
    int argon2_memory_kib;          /* NCC_ARGON2_MEMORY_KIB */
    int argon2_iterations;          /* NCC_ARGON2_ITERATIONS */
    int login_account_max_failures; /* NCC_LOGIN_ACCOUNT_MAX_FAILURES */
    int login_account_window_s;     /* NCC_LOGIN_ACCOUNT_WINDOW_S */
    int login_lock_s;               /* NCC_LOGIN_LOCK_S */
    int login_address_max_failures; /* NCC_LOGIN_ADDRESS_MAX_FAILURES */
    int login_address_window_s;     /* NCC_LOGIN_ADDRESS_WINDOW_S */
    char *bootstrap_login;          /* NCC_BOOTSTRAP_ADMIN_LOGIN */
    char *bootstrap_password;       /* NCC_BOOTSTRAP_ADMIN_PASSWORD (secret) */
    char *bootstrap_totp_secret;    /* NCC_BOOTSTRAP_ADMIN_TOTP_SECRET (secret) */
} directory_settings_t;

typedef struct {
    ncc_service_t *service;         /* borrowed: the frame */
    ncc_db_t *db;                   /* borrowed from the frame, loop thread only */
    directory_settings_t *settings; /* borrowed: filled (and reloaded) by the frame */
    ncc_keyring_t *keyring;         /* owned; NULL without NCC_DATA_KEYS (no TOTP then) */
    char *dummy_hash;               /* owned: verified for unknown logins (same time) */
    password_cost_t dummy_cost;     /* the cost dummy_hash was made with */
    bool bootstrap_done;            /* the first administrator exists (or cannot be made) */
} directory_t;

/* The TOTP secret's encryption context (bound as associated data). */
#define DIRECTORY_TOTP_CONTEXT "directory.users.totp_secret"

/* Builds the service object on `service` and registers every handler.
 * NULL (after logging why) on failure. */
directory_t *directory_new(ncc_service_t *service, directory_settings_t *settings);
void directory_destroy(directory_t **self_p);

/* Handler registration, one per file. 0 or a negative errno. */
int directory_users_register(directory_t *self);
int directory_auth_register(directory_t *self);
int directory_audit_register(directory_t *self);
int directory_masters_register(directory_t *self); /* masters.c (masters.h) */
/* record_form.c: the record form setting (docs/record-form.md) */
int directory_record_form_register(directory_t *self);
int directory_routing_register(directory_t *self); /* routing.c: what the PBX reads (R25) */

/* ---- shared helpers (directory.c) ------------------------------------------- */

/* The current Argon2id cost from the settings. */
password_cost_t directory_password_cost(const directory_t *self);

/* A hash of a random password at the current cost (borrowed; remade when the
 * cost changes), so an unknown login costs the same time as a known one. */
const char *directory_dummy_hash(directory_t *self);

/* Logs the database failure once and answers 503 (connection lost) or 500. */
void directory_reply_db_error(directory_t *self, ncc_reply_t *reply, const char *what);

/* SQL fragments, kept readable (clang-format would split the strings). */
// clang-format off

/* A timestamptz column as RFC 3339 in Asia/Tokyo (no daylight saving: +09:00). */
#define DIRECTORY_RFC3339(col) \
    "to_char(" col " AT TIME ZONE 'Asia/Tokyo', 'YYYY-MM-DD\"T\"HH24:MI:SS\"+09:00\"')"

/* The same with microseconds (audit entries). */
#define DIRECTORY_RFC3339_US(col) \
    "to_char(" col " AT TIME ZONE 'Asia/Tokyo', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+09:00\"')"

/* locked_until as RFC 3339 (NULL when not locked). */
#define DIRECTORY_LOCKED_UNTIL_TEXT DIRECTORY_RFC3339("locked_until")

/* Columns of a user row, in the order directory_user_from_row reads them. */
#define DIRECTORY_USER_COLUMNS \
    "id, login, name, array_to_string(roles, ','), extension, totp_secret IS NOT NULL, " \
    "active, CASE WHEN locked_until > now() THEN " DIRECTORY_RFC3339("locked_until") " END, " \
    DIRECTORY_RFC3339("created_at") ", " DIRECTORY_RFC3339("updated_at") ", version, skills"

// clang-format on

/* Fills `user` from row `row` of DIRECTORY_USER_COLUMNS. Strings are borrowed
 * from `res`; user->roles points into roles[4] (static role names). */
void directory_user_from_row(const PGresult *res, int row, Ncc__Directory__User *user,
                             char *roles[4]);

/* Answers the user `id` as a User message (not inside a transaction: read
 * after commit). 404 when there is none. */
void directory_reply_user(directory_t *self, ncc_reply_t *reply, int64_t id);

/* Roles as a comma list for SQL/audit from names; false when one is unknown
 * or none is given. Writes "{operator,admin}" (a text[] literal) into
 * array_out and "operator,admin" into list_out. */
bool directory_roles_format(char *const *roles, size_t n_roles, char *array_out, size_t array_len,
                            char *list_out, size_t list_len);

/* One audit entry; strings borrowed, NULL counts as "". */
typedef struct {
    const char *actor_id;
    const char *actor_login; /* NULL: looked up from a numeric actor_id */
    const char *actor_role;
    const char *address;
    const char *action;
    const char *target;
    const char *outcome;
    const char *detail;
} directory_audit_t;

/* Inside the caller's transaction: appends `entry` to the chained audit log.
 * 0 or -EIO (the caller rolls back). */
int directory_audit(directory_t *self, const directory_audit_t *entry);

/* As directory_audit with the actor of `request` (id, roles, address). */
int directory_audit_request(directory_t *self, const ncc_request_t *request, const char *action,
                            const char *target, const char *outcome, const char *detail);

/* Inside the caller's transaction: adds ncc.directory.UserChanged for user
 * `id` (as it is now in the transaction) to the outbox, sent for `request`'s
 * actor (NULL: the daemon itself). 0 or -EIO. */
int directory_user_changed(directory_t *self, const ncc_request_t *request, int64_t id,
                           const char *change);

/* After a commit that added events: publishes them now. */
void directory_flush(directory_t *self);

/* A TOTP secret as typed (spaces, lower case, '=' padding allowed) made
 * canonical (upper-case base32, no padding) into out[len]; false when it is
 * not base32 of at least 16 characters (80 bits). */
bool directory_totp_secret_normalise(const char *input, char *out, size_t len);

/* True for well-formed UTF-8 without control characters, at most max_bytes. */
bool directory_text_ok(const char *text, size_t max_bytes);

/* "123" -> 123; false unless the whole string is a positive decimal int64. */
bool directory_parse_id(const char *text, int64_t *ret_id);

#endif
