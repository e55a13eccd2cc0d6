/* directory: the service object, the first administrator (bootstrap), the
 * periodic clean-up and the helpers the handler files share (directory.h). */
#include "directory.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "audit_chain.h"
#include "ncc/roles.h"

#define S_MAINTENANCE_MS      30000
#define S_FAILURES_KEPT_MIN_S 86400 /* login_failures rows live at least a day */

/* Every role a user may hold, in the order they are stored and shown. */
static const char *const s_role_names[] = {"operator", "supervisor", "admin", "staff"};
#define S_ROLE_COUNT 4

password_cost_t directory_password_cost(const directory_t *self)
{
    password_cost_t cost = {
        .iterations = (uint32_t)self->settings->argon2_iterations,
        .memory_kib = (uint32_t)self->settings->argon2_memory_kib,
        .parallelism = 1,
    };
    return cost;
}

const char *directory_dummy_hash(directory_t *self)
{
    password_cost_t cost = directory_password_cost(self);
    if (self->dummy_hash && memcmp(&cost, &self->dummy_cost, sizeof cost) == 0)
        return self->dummy_hash;
    char random[33];
    if (ncc_random_hex(16, random) < 0)
        return self->dummy_hash;
    char *hash = password_hash(random, &cost);
    OPENSSL_cleanse(random, sizeof random);
    if (!hash)
        return self->dummy_hash; /* keep the old one rather than none */
    free(self->dummy_hash);
    self->dummy_hash = hash;
    self->dummy_cost = cost;
    return hash;
}

void directory_reply_db_error(directory_t *self, ncc_reply_t *reply, const char *what)
{
    ncc_reply_db_error(self->db, reply, what);
}

/* ---- users as messages ----------------------------------------------------- */

/* Splits "operator,admin" into static role names. Returns the count. */
static size_t s_roles_split(const char *list, char *roles[4])
{
    size_t n = 0;
    for (size_t i = 0; i < S_ROLE_COUNT; i++) {
        size_t len = strlen(s_role_names[i]);
        for (const char *p = list; *p;) {
            const char *comma = strchr(p, ',');
            size_t token = comma ? (size_t)(comma - p) : strlen(p);
            if (token == len && memcmp(p, s_role_names[i], len) == 0) {
                roles[n++] = (char *)s_role_names[i];
                break;
            }
            p += token + (comma ? 1 : 0);
        }
    }
    return n;
}

void directory_user_from_row(const PGresult *res, int row, Ncc__Directory__User *user,
                             char *roles[4])
{
    ncc__directory__user__init(user);
    user->has_id = true;
    user->id = strtoll(PQgetvalue(res, row, 0), NULL, 10);
    user->login = PQgetvalue(res, row, 1);
    user->name = PQgetvalue(res, row, 2);
    user->n_roles = s_roles_split(PQgetvalue(res, row, 3), roles);
    user->roles = roles;
    if (!PQgetisnull(res, row, 4))
        user->extension = PQgetvalue(res, row, 4);
    user->has_totp_enabled = true;
    user->totp_enabled = PQgetvalue(res, row, 5)[0] == 't';
    user->has_active = true;
    user->active = PQgetvalue(res, row, 6)[0] == 't';
    if (!PQgetisnull(res, row, 7))
        user->locked_until = PQgetvalue(res, row, 7);
    user->created_at = PQgetvalue(res, row, 8);
    user->updated_at = PQgetvalue(res, row, 9);
    user->has_version = true;
    user->version = strtoll(PQgetvalue(res, row, 10), NULL, 10);
    user->skills = PQgetvalue(res, row, 11);
}

void directory_reply_user(directory_t *self, ncc_reply_t *reply, int64_t id)
{
    char id_text[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, id);
    const char *params[] = {id_text};
    PGresult *res =
        ncc_db_exec(self->db, "SELECT " DIRECTORY_USER_COLUMNS " FROM users WHERE id = $1::bigint",
                    1, params, NULL);
    if (!res) {
        directory_reply_db_error(self, reply, "read user");
        return;
    }
    if (PQntuples(res) == 0) {
        ncc_reply_error(reply, 404, "not_found", "id", "no user %" PRId64, id);
    } else {
        Ncc__Directory__User user;
        char *roles[4];
        directory_user_from_row(res, 0, &user, roles);
        ncc_reply_message(reply, &user.base);
    }
    PQclear(res);
}

bool directory_roles_format(char *const *roles, size_t n_roles, char *array_out, size_t array_len,
                            char *list_out, size_t list_len)
{
    bool wanted[S_ROLE_COUNT] = {false};
    if (n_roles == 0)
        return false;
    for (size_t i = 0; i < n_roles; i++) {
        size_t k = 0;
        while (k < S_ROLE_COUNT && (!roles[i] || strcmp(roles[i], s_role_names[k]) != 0))
            k++;
        if (k == S_ROLE_COUNT)
            return false;
        wanted[k] = true;
    }
    size_t a = 0, l = 0;
    a += (size_t)snprintf(array_out, array_len, "{");
    list_out[0] = '\0';
    for (size_t k = 0; k < S_ROLE_COUNT; k++) {
        if (!wanted[k])
            continue;
        bool first = l == 0;
        a += (size_t)snprintf(array_out + a, array_len - a, "%s%s", first ? "" : ",",
                              s_role_names[k]);
        l +=
            (size_t)snprintf(list_out + l, list_len - l, "%s%s", first ? "" : ",", s_role_names[k]);
    }
    snprintf(array_out + a, array_len - a, "}");
    return true;
}

/* ---- audit and events ---------------------------------------------------- */

int directory_audit(directory_t *self, const directory_audit_t *entry)
{
    char login_buf[80] = "";
    const char *login = entry->actor_login;
    int64_t actor_user;
    if (!login && entry->actor_id && directory_parse_id(entry->actor_id, &actor_user)) {
        const char *params[] = {entry->actor_id};
        PGresult *res =
            ncc_db_exec(self->db, "SELECT login FROM users WHERE id = $1::bigint", 1, params, NULL);
        if (!res)
            return -EIO;
        if (PQntuples(res) > 0)
            snprintf(login_buf, sizeof login_buf, "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        login = login_buf;
    }
    audit_chain_entry_t chained = {
        .actor_id = entry->actor_id,
        .actor_login = login,
        .actor_role = entry->actor_role,
        .address = entry->address,
        .action = entry->action,
        .target = entry->target,
        .outcome = entry->outcome,
        .detail = entry->detail,
    };
    return audit_chain_append(self->db, &chained, NULL, NULL) < 0 ? -EIO : 0;
}

int directory_audit_request(directory_t *self, const ncc_request_t *request, const char *action,
                            const char *target, const char *outcome, const char *detail)
{
    const Ncc__Envelope *envelope = request->envelope;
    directory_audit_t entry = {
        .actor_id = envelope->actor_id,
        .actor_role = envelope->actor_role,
        .address = envelope->actor_address,
        .action = action,
        .target = target,
        .outcome = outcome,
        .detail = detail,
    };
    return directory_audit(self, &entry);
}

int directory_user_changed(directory_t *self, const ncc_request_t *request, int64_t id,
                           const char *change)
{
    char id_text[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, id);
    const char *params[] = {id_text};
    PGresult *res = ncc_db_exec(self->db,
                                "SELECT login, array_to_string(roles, ','), active, version "
                                "FROM users WHERE id = $1::bigint",
                                1, params, NULL);
    if (!res)
        return -EIO;
    int rc = -EIO;
    if (PQntuples(res) == 1) {
        Ncc__Directory__UserChanged event = NCC__DIRECTORY__USER_CHANGED__INIT;
        char *roles[4];
        event.has_user_id = true;
        event.user_id = id;
        event.login = PQgetvalue(res, 0, 0);
        event.n_roles = s_roles_split(PQgetvalue(res, 0, 1), roles);
        event.roles = roles;
        event.has_active = true;
        event.active = PQgetvalue(res, 0, 2)[0] == 't';
        event.has_version = true;
        event.version = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
        event.change = (char *)change;
        ncc_ctx_t ctx = request ? ncc_request_ctx(request) : ncc_service_ctx(self->service);
        rc = ncc_outbox_add(self->db, &ctx, &event.base) < 0 ? -EIO : 0;
    }
    PQclear(res);
    return rc;
}

void directory_flush(directory_t *self)
{
    if (ncc_publisher_flush(ncc_service_publisher(self->service)) < 0)
        ncc_warn("outbox.flush_failed", "%s (the periodic flush will retry)",
                 ncc_db_error(self->db));
}

/* ---- small validators ------------------------------------------------------ */

bool directory_totp_secret_normalise(const char *input, char *out, size_t len)
{
    size_t n = 0;
    if (!input)
        return false;
    for (const char *p = input; *p; p++) {
        char c = *p;
        if (c == ' ' || c == '-' || c == '=')
            continue;
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (!((c >= 'A' && c <= 'Z') || (c >= '2' && c <= '7')) || n + 1 >= len)
            return false;
        out[n++] = c;
    }
    out[n] = '\0';
    char code[7];
    return n >= 16 && n <= 128 && ncc_totp_code(out, 0, code) == 0;
}

bool directory_text_ok(const char *text, size_t max_bytes)
{
    if (!text)
        return true;
    const unsigned char *p = (const unsigned char *)text;
    size_t bytes = 0;
    while (*p) {
        size_t len;
        unsigned long cp, min;
        if (*p < 0x80) {
            if (*p < 0x20 || *p == 0x7F)
                return false;
            len = 1;
            cp = *p;
            min = 0;
        } else if ((*p & 0xE0) == 0xC0) {
            len = 2;
            cp = *p & 0x1F;
            min = 0x80;
        } else if ((*p & 0xF0) == 0xE0) {
            len = 3;
            cp = *p & 0x0F;
            min = 0x800;
        } else if ((*p & 0xF8) == 0xF0) {
            len = 4;
            cp = *p & 0x07;
            min = 0x10000;
        } else {
            return false;
        }
        for (size_t i = 1; i < len; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        p += len;
        bytes += len;
        if (bytes > max_bytes)
            return false;
    }
    return true;
}

bool directory_parse_id(const char *text, int64_t *ret_id)
{
    if (!text || *text < '1' || *text > '9')
        return false;
    int64_t value = 0;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9' || value > (INT64_MAX - (*p - '0')) / 10)
            return false;
        value = value * 10 + (*p - '0');
    }
    *ret_id = value;
    return true;
}

/* ---- bootstrap: the first administrator -------------------------------------- */

/* Creates the first administrator when there is no user at all. Returns 0
 * when done (created, or not needed, or impossible until the configuration
 * changes: logged), -EIO when the database failed (tried again later). */
static int s_bootstrap(directory_t *self)
{
    const directory_settings_t *settings = self->settings;
    const char *login = settings->bootstrap_login ? settings->bootstrap_login : "admin";
    char generated_password[33] = "", secret[136] = "";
    char *hash = NULL, *secret_cipher = NULL;
    int rc = -EIO;

    PGresult *res = ncc_db_exec(self->db, "SELECT EXISTS (SELECT 1 FROM users)", 0, NULL, NULL);
    if (!res)
        goto db_error;
    bool any = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (any) {
        rc = 0;
        goto out;
    }

    rc = 0; /* from here, a configuration problem is logged and not retried */
    if (!self->keyring) {
        ncc_error("bootstrap.no_data_keys",
                  "no user exists, but NCC_DATA_KEYS is not set: the administrator's TOTP "
                  "secret must be stored encrypted; set NCC_DATA_KEYS and restart");
        goto out;
    }
    if (!directory_text_ok(login, 64) || !*login) {
        ncc_error("bootstrap.invalid_login", "NCC_BOOTSTRAP_ADMIN_LOGIN is not a valid login");
        goto out;
    }
    const char *password = settings->bootstrap_password;
    if (password) {
        const char *why = password_policy_check(password, login);
        if (why) {
            ncc_error("bootstrap.weak_password",
                      "NCC_BOOTSTRAP_ADMIN_PASSWORD is refused (%s): no administrator created",
                      why);
            goto out;
        }
    } else {
        /* 32 hex characters: 128 bits; hex mixes digits and letters. */
        do {
            if (ncc_random_hex(16, generated_password) < 0)
                goto out;
        } while (password_policy_check(generated_password, login));
        password = generated_password;
    }
    if (settings->bootstrap_totp_secret) {
        if (!directory_totp_secret_normalise(settings->bootstrap_totp_secret, secret,
                                             sizeof secret)) {
            ncc_error("bootstrap.invalid_totp_secret",
                      "NCC_BOOTSTRAP_ADMIN_TOTP_SECRET is not base32 of at least 16 characters: "
                      "no administrator created");
            goto out;
        }
    } else if (ncc_totp_new_secret(secret) < 0) {
        goto out;
    }
    password_cost_t cost = directory_password_cost(self);
    hash = password_hash(password, &cost);
    secret_cipher = ncc_encrypt(self->keyring, DIRECTORY_TOTP_CONTEXT, secret, strlen(secret));
    if (!hash || !secret_cipher) {
        ncc_error("bootstrap.failed", "could not hash the password or encrypt the TOTP secret");
        goto out;
    }

    /* Copies starting together: one takes the lock and creates, the others
     * then see a user and stop (the unique login is the second wall). */
    rc = -EIO;
    if (ncc_db_begin(self->db) < 0 ||
        ncc_db_run(self->db, "SELECT pg_advisory_xact_lock(hashtext('ncc.directory.bootstrap'))", 0,
                   NULL) < 0)
        goto db_error;
    res = ncc_db_exec(self->db, "SELECT EXISTS (SELECT 1 FROM users)", 0, NULL, NULL);
    if (!res)
        goto db_error;
    any = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (any) {
        ncc_db_rollback(self->db);
        rc = 0;
        goto out;
    }
    const char *params[] = {login, hash, secret_cipher};
    res = ncc_db_exec(self->db,
                      "INSERT INTO users (login, name, roles, password_hash, totp_secret, "
                      "password_changed_at) "
                      "VALUES ($1, 'Administrator', '{admin}', $2, $3, now()) RETURNING id",
                      3, params, NULL);
    if (!res)
        goto db_error;
    int64_t id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    char target[32];
    snprintf(target, sizeof target, "user:%" PRId64, id);
    ncc_ctx_t ctx = ncc_service_ctx(self->service);
    directory_audit_t entry = {
        .actor_id = ctx.actor_id,
        .actor_login = "",
        .actor_role = ctx.actor_role,
        .action = "user.created",
        .target = target,
        .outcome = "success",
        .detail = "first administrator (bootstrap)",
    };
    if (directory_audit(self, &entry) < 0 ||
        directory_user_changed(self, NULL, id, "created") < 0 || ncc_db_commit(self->db) < 0)
        goto db_error;
    directory_flush(self);
    rc = 0;

    /* Generated values are shown once, here, and never again. */
    ncc_log_level_t level = ncc_log_enabled(NCC_LOG_WARN) ? NCC_LOG_WARN : NCC_LOG_ERROR;
    ncc_log_write(level, "bootstrap.admin_created",
                  "administrator \"%s\" created (user %" PRId64
                  "); password: %s; TOTP secret: %s%s",
                  login, id, generated_password[0] ? generated_password : "(as configured)",
                  settings->bootstrap_totp_secret ? "(as configured)" : secret,
                  (generated_password[0] || !settings->bootstrap_totp_secret)
                      ? " -- GENERATED VALUES ARE SHOWN ONLY THIS ONCE: store them now"
                      : "");
    goto out;

db_error:
    ncc_error("bootstrap.db_error", "%s (will retry)", ncc_db_error(self->db));
    ncc_db_rollback(self->db);
    rc = -EIO;
out:
    OPENSSL_cleanse(generated_password, sizeof generated_password);
    OPENSSL_cleanse(secret, sizeof secret);
    free(hash);
    free(secret_cipher);
    return rc;
}

static void s_on_ready(void *arg)
{
    directory_t *self = arg;
    if (s_bootstrap(self) == 0)
        self->bootstrap_done = true;
}

/* Every S_MAINTENANCE_MS: a bootstrap that met a database error, and the
 * pruning of failed sign-ins older than every throttle window. */
static void s_maintenance(void *arg)
{
    directory_t *self = arg;
    if (!self->bootstrap_done && s_bootstrap(self) == 0)
        self->bootstrap_done = true;
    const directory_settings_t *settings = self->settings;
    int keep = settings->login_account_window_s;
    if (settings->login_address_window_s > keep)
        keep = settings->login_address_window_s;
    if (keep < S_FAILURES_KEPT_MIN_S)
        keep = S_FAILURES_KEPT_MIN_S;
    char keep_text[16];
    snprintf(keep_text, sizeof keep_text, "%d", keep);
    const char *params[] = {keep_text};
    if (ncc_db_run(self->db,
                   "DELETE FROM login_failures WHERE at < now() - make_interval(secs => $1::int)",
                   1, params) < 0)
        ncc_warn("directory.prune_failed", "%s", ncc_db_error(self->db));
}

/* ---- life cycle ------------------------------------------------------------- */

directory_t *directory_new(ncc_service_t *service, directory_settings_t *settings)
{
    directory_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->service = service;
    self->db = ncc_service_db(service);
    self->settings = settings;

    const char *keys = getenv("NCC_DATA_KEYS");
    if (keys && *keys) {
        char err[256] = "";
        self->keyring = ncc_keyring_from_env(err, sizeof err);
        if (!self->keyring) {
            ncc_error("config.invalid", "NCC_DATA_KEYS: %s", err);
            goto fail;
        }
    } else {
        ncc_warn("crypto.no_data_keys", "NCC_DATA_KEYS is not set: TOTP secrets cannot be "
                                        "stored or read, so administrators cannot sign in");
    }
    if (!directory_dummy_hash(self)) {
        ncc_error("directory.argon2_failed", "cannot hash with Argon2id (m=%d KiB, t=%d)",
                  settings->argon2_memory_kib, settings->argon2_iterations);
        goto fail;
    }
    if (directory_users_register(self) < 0 || directory_auth_register(self) < 0 ||
        directory_audit_register(self) < 0 || directory_masters_register(self) < 0 ||
        directory_routing_register(self) < 0 ||
        ncc_service_encrypted_column(service, "users", "id", "totp_secret",
                                     DIRECTORY_TOTP_CONTEXT) < 0 ||
        ncc_service_every(service, S_MAINTENANCE_MS, s_maintenance, self) < 0 ||
        directory_record_form_register(self) < 0) {
        ncc_error("directory.setup_failed", "cannot register the handlers");
        goto fail;
    }
    ncc_service_on_ready(service, s_on_ready, self);
    return self;
fail:
    directory_destroy(&self);
    return NULL;
}

void directory_destroy(directory_t **self_p)
{
    directory_t *self = *self_p;
    if (!self)
        return;
    ncc_keyring_destroy(&self->keyring);
    free(self->dummy_hash);
    free(self);
    *self_p = NULL;
}
