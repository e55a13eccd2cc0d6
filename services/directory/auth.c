/* auth: sign-in (Authenticate) and password changes (R18, 別添5 14(3)).
 *
 * Sign-in, in order: the per-address throttle (429), the account lock-out
 * (423), the password (an unknown login is checked against a dummy hash so
 * it costs the same time and gets the same 401 as a wrong password), the
 * account being active, then TOTP: required for administrators and for
 * anyone enrolled, with each time step accepted once. Every outcome is
 * audited in the transaction that records it; failures that count feed
 * both throttles, and the failure that reaches the account limit locks the
 * account (audited "account.locked"). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "directory.h"
#include "ncc/roles.h"

#define S_LOGIN_MAX_BYTES 64

/* What sign-in knows about the account. */
typedef struct {
    bool found;
    int64_t id;
    char id_text[24];
    char login[80];
    char roles[64]; /* "operator,admin" */
    bool active;
    bool locked;
    char locked_until[40];
    char *password_hash; /* owned */
    char *totp_cipher;   /* owned; NULL = not enrolled */
} s_account_t;

static void s_account_clear(s_account_t *account)
{
    free(account->password_hash);
    free(account->totp_cipher);
    memset(account, 0, sizeof *account);
}

static bool s_has_role(const char *roles, const char *role)
{
    size_t len = strlen(role);
    for (const char *p = roles; *p;) {
        const char *comma = strchr(p, ',');
        size_t token = comma ? (size_t)(comma - p) : strlen(p);
        if (token == len && memcmp(p, role, len) == 0)
            return true;
        p += token + (comma ? 1 : 0);
    }
    return false;
}

/* What s_account_load reads, in this order. */
#define S_ACCOUNT_COLUMNS                                                                          \
    "id, login, array_to_string(roles, ','), active, password_hash, totp_secret, "                 \
    "coalesce(locked_until > now(), false), " DIRECTORY_LOCKED_UNTIL_TEXT

/* Reads the account by login (case-insensitive) or by id (login NULL).
 * 0 (account->found tells), or -EIO. */
static int s_account_load(directory_t *self, const char *login, int64_t id, s_account_t *account)
{
    memset(account, 0, sizeof *account);
    char id_text[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, id);
    const char *params[] = {login ? login : id_text};
    PGresult *res =
        ncc_db_exec(self->db,
                    login ? "SELECT " S_ACCOUNT_COLUMNS " FROM users WHERE lower(login) = lower($1)"
                          : "SELECT " S_ACCOUNT_COLUMNS " FROM users WHERE id = $1::bigint",
                    1, params, NULL);
    if (!res)
        return -EIO;
    int rc = 0;
    if (PQntuples(res) == 1) {
        account->found = true;
        account->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        snprintf(account->id_text, sizeof account->id_text, "%" PRId64, account->id);
        snprintf(account->login, sizeof account->login, "%s", PQgetvalue(res, 0, 1));
        snprintf(account->roles, sizeof account->roles, "%s", PQgetvalue(res, 0, 2));
        account->active = PQgetvalue(res, 0, 3)[0] == 't';
        if (!PQgetisnull(res, 0, 4))
            account->password_hash = strdup(PQgetvalue(res, 0, 4));
        if (!PQgetisnull(res, 0, 5))
            account->totp_cipher = strdup(PQgetvalue(res, 0, 5));
        account->locked = PQgetvalue(res, 0, 6)[0] == 't';
        snprintf(account->locked_until, sizeof account->locked_until, "%s", PQgetvalue(res, 0, 7));
        if ((!PQgetisnull(res, 0, 4) && !account->password_hash) ||
            (!PQgetisnull(res, 0, 5) && !account->totp_cipher))
            rc = -ENOMEM;
    }
    PQclear(res);
    if (rc < 0)
        s_account_clear(account);
    return rc;
}

/* Who an audit entry about a sign-in names: the account when known, else the
 * login that was typed; the address is the caller's (from the envelope). */
static directory_audit_t s_login_audit(const ncc_request_t *request, const s_account_t *account,
                                       const char *typed_login)
{
    const char *address = request->envelope->actor_address;
    directory_audit_t entry = {
        .actor_id = account && account->found ? account->id_text : "",
        .actor_login = account && account->found ? account->login : typed_login,
        .actor_role = account && account->found ? account->roles : "",
        .address = address ? address : "",
        .action = "login",
    };
    return entry;
}

typedef enum {
    S_FAILURE_NOT_COUNTED = 0, /* audited only */
    S_FAILURE_COUNTED = 1,     /* feeds both throttles */
} s_failure_kind_t;

/* Records a failed attempt in one transaction: the audit entry (`action`,
 * outcome "failure", `reason` as detail), and when counted, the failure row
 * and, on reaching the account limit, the lock-out (and its audit entry).
 * Returns 1 when the account is now locked, 0 otherwise, -EIO. */
static int s_record_failure(directory_t *self, const ncc_request_t *request,
                            const s_account_t *account, const char *typed_login, const char *action,
                            const char *reason, s_failure_kind_t kind)
{
    const directory_settings_t *settings = self->settings;
    const char *address = request->envelope->actor_address ? request->envelope->actor_address : "";
    bool known = account && account->found;
    int locked = 0;

    if (ncc_db_begin(self->db) < 0)
        return -EIO;
    if (known) {
        /* Serialises the failures of one account (the count below). */
        const char *params[] = {account->id_text};
        if (ncc_db_run(self->db, "SELECT 1 FROM users WHERE id = $1::bigint FOR UPDATE", 1,
                       params) < 0)
            goto fail;
    }
    if (kind == S_FAILURE_COUNTED) {
        const char *params[] = {known ? account->id_text : NULL, address, reason};
        if (ncc_db_run(self->db,
                       "INSERT INTO login_failures (user_id, address, reason) "
                       "VALUES ($1::bigint, $2, $3)",
                       3, params) < 0)
            goto fail;
    }
    directory_audit_t entry = s_login_audit(request, account, typed_login);
    char target[32] = "";
    if (known)
        snprintf(target, sizeof target, "user:%s", account->id_text);
    entry.action = action;
    entry.target = target;
    entry.outcome = "failure";
    entry.detail = reason;
    if (directory_audit(self, &entry) < 0)
        goto fail;

    if (kind == S_FAILURE_COUNTED && known && settings->login_account_max_failures > 0) {
        char window[16], lock[16];
        snprintf(window, sizeof window, "%d", settings->login_account_window_s);
        snprintf(lock, sizeof lock, "%d", settings->login_lock_s);
        const char *params[] = {account->id_text, window};
        PGresult *res =
            ncc_db_exec(self->db,
                        "SELECT count(*) FROM login_failures f JOIN users u ON u.id = f.user_id "
                        "WHERE u.id = $1::bigint AND f.at > now() - make_interval(secs => $2::int) "
                        "AND f.at > coalesce(u.failures_reset_at, '-infinity')",
                        2, params, NULL);
        if (!res)
            goto fail;
        long failures = strtol(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        if (failures >= settings->login_account_max_failures) {
            const char *lock_params[] = {account->id_text, lock};
            if (ncc_db_run(
                    self->db,
                    "UPDATE users SET locked_until = now() + make_interval(secs => $2::int), "
                    "failures_reset_at = now() WHERE id = $1::bigint",
                    2, lock_params) < 0)
                goto fail;
            char detail[160];
            snprintf(detail, sizeof detail, "%ld failed sign-ins within %s s: locked for %s s",
                     failures, window, lock);
            entry.action = "account.locked";
            entry.outcome = "success";
            entry.detail = detail;
            if (directory_audit(self, &entry) < 0)
                goto fail;
            locked = 1;
        }
    }
    if (ncc_db_commit(self->db) < 0)
        return -EIO;
    return locked;
fail:
    ncc_db_rollback(self->db);
    return -EIO;
}

/* Answers 423 with the end of the lock-out. */
static void s_reply_locked(directory_t *self, ncc_reply_t *reply, int64_t id)
{
    char id_text[24], until[40] = "";
    snprintf(id_text, sizeof id_text, "%" PRId64, id);
    const char *params[] = {id_text};
    PGresult *res = ncc_db_exec(
        self->db, "SELECT " DIRECTORY_LOCKED_UNTIL_TEXT " FROM users WHERE id = $1::bigint", 1,
        params, NULL);
    if (res && PQntuples(res) == 1)
        snprintf(until, sizeof until, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    ncc_reply_error(reply, 423, "account_locked", NULL,
                    "too many failed sign-ins: the account is locked until %s", until);
}

/* A failure of Authenticate: recorded, then answered with `status`/`code`
 * (or 423 when this failure locked the account). */
static void s_fail(directory_t *self, const ncc_request_t *request, ncc_reply_t *reply,
                   const s_account_t *account, const char *typed_login, const char *reason,
                   s_failure_kind_t kind, int status, const char *code, const char *message)
{
    int locked = s_record_failure(self, request, account, typed_login, "login", reason, kind);
    if (locked < 0) {
        directory_reply_db_error(self, reply, "record failed sign-in");
        return;
    }
    if (locked) {
        ncc_info("auth.account_locked", "account %s locked after repeated failures",
                 account->id_text);
        s_reply_locked(self, reply, account->id);
        return;
    }
    ncc_reply_error(reply, status, code, NULL, "%s", message);
}

#define S_INVALID_CREDENTIALS "the login or the password is wrong"

/* The failures from `address` within the window reach the limit. 1, 0, -EIO. */
static int s_address_throttled(directory_t *self, const char *address)
{
    const directory_settings_t *settings = self->settings;
    if (!*address || settings->login_address_max_failures <= 0)
        return 0;
    char window[16];
    snprintf(window, sizeof window, "%d", settings->login_address_window_s);
    const char *params[] = {address, window};
    PGresult *res = ncc_db_exec(self->db,
                                "SELECT count(*) FROM login_failures WHERE address = $1 "
                                "AND at > now() - make_interval(secs => $2::int)",
                                2, params, NULL);
    if (!res)
        return -EIO;
    long failures = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return failures >= settings->login_address_max_failures ? 1 : 0;
}

/* The success: under the account's row lock, refuse a TOTP step already used
 * (replay) and a lock-out that happened meanwhile; then reset the failures,
 * remember the step, re-hash the password when its cost is outdated, audit.
 * 0 done, 1 replay, 2 locked meanwhile, -EIO. */
static int s_record_success(directory_t *self, const ncc_request_t *request,
                            const s_account_t *account, int64_t step, const char *new_hash)
{
    const char *id_params[] = {account->id_text};
    if (ncc_db_begin(self->db) < 0)
        return -EIO;
    PGresult *res = ncc_db_exec(self->db,
                                "SELECT coalesce(locked_until > now(), false), totp_last_step "
                                "FROM users WHERE id = $1::bigint FOR UPDATE",
                                1, id_params, NULL);
    if (!res)
        goto fail;
    bool locked = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
    int64_t last_step = PQntuples(res) == 1 ? strtoll(PQgetvalue(res, 0, 1), NULL, 10) : 0;
    PQclear(res);
    if (locked) {
        ncc_db_rollback(self->db);
        return 2;
    }
    if (step > 0 && step <= last_step) {
        ncc_db_rollback(self->db);
        return 1;
    }
    char step_text[24];
    snprintf(step_text, sizeof step_text, "%" PRId64, step > 0 ? step : last_step);
    const char *params[] = {account->id_text, step_text, new_hash};
    if (ncc_db_run(self->db,
                   "UPDATE users SET last_login_at = now(), failures_reset_at = now(), "
                   "locked_until = NULL, totp_last_step = $2::bigint, "
                   "password_hash = coalesce($3, password_hash) WHERE id = $1::bigint",
                   3, params) < 0)
        goto fail;
    directory_audit_t entry = s_login_audit(request, account, account->login);
    char target[32];
    snprintf(target, sizeof target, "user:%s", account->id_text);
    entry.target = target;
    entry.outcome = "success";
    entry.detail = step > 0 ? "password and TOTP" : "password";
    if (directory_audit(self, &entry) < 0 || ncc_db_commit(self->db) < 0)
        goto fail;
    return 0;
fail:
    ncc_db_rollback(self->db);
    return -EIO;
}

/* ---- Authenticate --------------------------------------------------------------- */

static void s_on_authenticate(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    directory_t *self = arg;
    const Ncc__Directory__Authenticate *m = (const Ncc__Directory__Authenticate *)request->message;
    const char *address = request->envelope->actor_address ? request->envelope->actor_address : "";
    const char *password = m->password ? m->password : "";
    /* The typed login goes to the audit log: only when it is sane text. */
    bool login_sane = m->login && *m->login && directory_text_ok(m->login, S_LOGIN_MAX_BYTES);
    const char *typed_login = login_sane ? m->login : "(invalid)";
    s_account_t account = {0};
    char *secret = NULL, *new_hash = NULL;

    int throttled = s_address_throttled(self, address);
    if (throttled < 0) {
        directory_reply_db_error(self, reply, "sign-in throttle");
        goto out;
    }
    if (throttled) {
        if (s_record_failure(self, request, NULL, typed_login, "login", "too_many_attempts",
                             S_FAILURE_NOT_COUNTED) < 0) {
            directory_reply_db_error(self, reply, "record refused sign-in");
            goto out;
        }
        ncc_reply_error(reply, 429, "too_many_attempts", NULL,
                        "too many failed sign-ins from this address: try again later");
        goto out;
    }
    if (login_sane && s_account_load(self, m->login, 0, &account) < 0) {
        directory_reply_db_error(self, reply, "sign-in");
        goto out;
    }
    if (account.found && account.locked) {
        if (s_record_failure(self, request, &account, typed_login, "login", "account_locked",
                             S_FAILURE_NOT_COUNTED) < 0) {
            directory_reply_db_error(self, reply, "record refused sign-in");
            goto out;
        }
        ncc_reply_error(reply, 423, "account_locked", NULL,
                        "too many failed sign-ins: the account is locked until %s",
                        account.locked_until);
        goto out;
    }

    /* Always one Argon2id verification, whether the login exists or not. */
    const char *hash = account.password_hash ? account.password_hash : directory_dummy_hash(self);
    bool password_ok = password_verify(hash, password) && account.password_hash != NULL;
    if (!account.found) {
        s_fail(self, request, reply, NULL, typed_login, "unknown_login", S_FAILURE_COUNTED, 401,
               "invalid_credentials", S_INVALID_CREDENTIALS);
        goto out;
    }
    if (!password_ok) {
        s_fail(self, request, reply, &account, typed_login, "wrong_password", S_FAILURE_COUNTED,
               401, "invalid_credentials", S_INVALID_CREDENTIALS);
        goto out;
    }
    if (!account.active) {
        s_fail(self, request, reply, &account, typed_login, "inactive", S_FAILURE_COUNTED, 401,
               "invalid_credentials", S_INVALID_CREDENTIALS);
        goto out;
    }

    int64_t step = 0;
    if (!account.totp_cipher) {
        if (s_has_role(account.roles, "admin")) {
            s_fail(self, request, reply, &account, typed_login, "totp_required",
                   S_FAILURE_NOT_COUNTED, 401, "totp_required",
                   "administrators must sign in with a one-time code (TOTP), and this account "
                   "has none enrolled: ask another administrator to enrol a TOTP secret for it");
            goto out;
        }
    } else {
        if (!self->keyring) {
            ncc_error("auth.no_data_keys",
                      "cannot read the TOTP secret of user %s: "
                      "NCC_DATA_KEYS is not set",
                      account.id_text);
            ncc_reply_error(reply, 503, "service_unavailable", NULL,
                            "sign-in with TOTP is unavailable (no data keys configured)");
            goto out;
        }
        size_t secret_len = 0;
        secret =
            ncc_decrypt(self->keyring, DIRECTORY_TOTP_CONTEXT, account.totp_cipher, &secret_len);
        if (!secret) {
            ncc_error("auth.totp_unreadable",
                      "the TOTP secret of user %s does not decrypt (unknown key id or tampered)",
                      account.id_text);
            ncc_reply_error(reply, 500, "internal", NULL, "internal error");
            goto out;
        }
        bool code_given = m->totp && *m->totp;
        step = code_given ? ncc_totp_verify(secret, m->totp, (int64_t)time(NULL)) : 0;
        OPENSSL_cleanse(secret, secret_len);
        if (!code_given) {
            /* The password was right: ask for the code (step two of the usual
             * sign-in), without counting a failure towards the lock-out. */
            s_fail(self, request, reply, &account, typed_login, "totp_missing",
                   S_FAILURE_NOT_COUNTED, 401, "totp_required",
                   "enter the one-time code (TOTP) from the authenticator app");
            goto out;
        }
        if (step <= 0) {
            s_fail(self, request, reply, &account, typed_login, "invalid_totp", S_FAILURE_COUNTED,
                   401, "invalid_totp",
                   "a valid one-time code (TOTP) from the authenticator app is required");
            goto out;
        }
    }

    password_cost_t cost = directory_password_cost(self);
    if (password_needs_rehash(account.password_hash, &cost))
        new_hash = password_hash(password, &cost); /* NULL: keep the old hash */
    int rc = s_record_success(self, request, &account, step, new_hash);
    if (rc < 0) {
        directory_reply_db_error(self, reply, "record sign-in");
        goto out;
    }
    if (rc == 1) {
        s_fail(self, request, reply, &account, typed_login, "totp_replay", S_FAILURE_COUNTED, 401,
               "invalid_totp", "this one-time code was already used: wait for the next one");
        goto out;
    }
    if (rc == 2) {
        s_reply_locked(self, reply, account.id);
        goto out;
    }

    char id_text[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, account.id);
    const char *params[] = {id_text};
    PGresult *res =
        ncc_db_exec(self->db, "SELECT " DIRECTORY_USER_COLUMNS " FROM users WHERE id = $1::bigint",
                    1, params, NULL);
    if (!res || PQntuples(res) != 1) {
        PQclear(res);
        directory_reply_db_error(self, reply, "read signed-in user");
        goto out;
    }
    Ncc__Directory__User user;
    char *roles[4];
    directory_user_from_row(res, 0, &user, roles);
    Ncc__Directory__AuthResult result = NCC__DIRECTORY__AUTH_RESULT__INIT;
    result.user = &user;
    ncc_reply_message(reply, &result.base);
    PQclear(res);
out:
    free(secret);
    free(new_hash);
    s_account_clear(&account);
}

/* ---- ChangePassword ---------------------------------------------------------------- */

static void s_on_change_password(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    directory_t *self = arg;
    const Ncc__Directory__ChangePassword *m =
        (const Ncc__Directory__ChangePassword *)request->message;
    s_account_t account = {0};
    char *hash = NULL;

    if (!m->has_user_id || m->user_id <= 0) {
        ncc_reply_error(reply, 422, "invalid_field", "user_id", "user_id is required");
        return;
    }
    ncc_actor_t actor = ncc_request_actor(request);
    int64_t actor_id = 0;
    bool own = directory_parse_id(actor.id, &actor_id) && actor_id == m->user_id;
    if (!own && !(actor.roles & NCC_ROLE_ADMIN)) {
        ncc_reply_error(reply, 403, "forbidden", NULL,
                        "only the user themself or an administrator may change a password");
        return;
    }
    if (s_account_load(self, NULL, m->user_id, &account) < 0) {
        directory_reply_db_error(self, reply, "change password");
        goto out;
    }
    if (!account.found) {
        ncc_reply_error(reply, 404, "not_found", "user_id", "no user %" PRId64, m->user_id);
        goto out;
    }
    if (own) {
        /* The user proves they know the current password, within the same
         * throttle as sign-in (a stolen session must not become a guesser). */
        if (account.locked) {
            ncc_reply_error(reply, 423, "account_locked", NULL,
                            "too many failed attempts: the account is locked until %s",
                            account.locked_until);
            goto out;
        }
        if (!m->current_password || !*m->current_password) {
            ncc_reply_error(reply, 422, "invalid_field", "current_password",
                            "the current password is required");
            goto out;
        }
        if (!password_verify(account.password_hash, m->current_password)) {
            int locked =
                s_record_failure(self, request, &account, account.login, "user.password_changed",
                                 "wrong_current_password", S_FAILURE_COUNTED);
            if (locked < 0)
                directory_reply_db_error(self, reply, "record failed password change");
            else if (locked)
                s_reply_locked(self, reply, account.id);
            else
                ncc_reply_error(reply, 422, "invalid_field", "current_password",
                                "the current password is wrong");
            goto out;
        }
    }
    const char *why = password_policy_check(m->new_password, account.login);
    if (why) {
        ncc_reply_error(reply, 422, "invalid_field", "new_password", "%s", why);
        goto out;
    }
    password_cost_t cost = directory_password_cost(self);
    hash = password_hash(m->new_password, &cost);
    if (!hash) {
        ncc_reply_error(reply, 500, "internal", NULL, "could not hash the password");
        goto out;
    }
    const char *params[] = {account.id_text, hash};
    char target[32];
    snprintf(target, sizeof target, "user:%s", account.id_text);
    if (ncc_db_begin(self->db) < 0 ||
        ncc_db_run(self->db,
                   "UPDATE users SET password_hash = $2, password_changed_at = now(), "
                   "updated_at = now(), version = version + 1 WHERE id = $1::bigint",
                   2, params) < 0 ||
        directory_audit_request(self, request, "user.password_changed", target, "success",
                                own ? "by the user" : "by an administrator") < 0 ||
        directory_user_changed(self, request, account.id, "password_changed") < 0 ||
        ncc_db_commit(self->db) < 0) {
        directory_reply_db_error(self, reply, "change password");
        goto out;
    }
    directory_flush(self);
    directory_reply_user(self, reply, account.id);
out:
    free(hash);
    s_account_clear(&account);
}

int directory_auth_register(directory_t *self)
{
    if (ncc_service_on(self->service, &ncc__directory__authenticate__descriptor, NCC_ROLE_SYSTEM,
                       s_on_authenticate, self) < 0 ||
        ncc_service_on(self->service, &ncc__directory__change_password__descriptor, NCC_ROLES_USERS,
                       s_on_change_password, self) < 0)
        return -EINVAL;
    return 0;
}
