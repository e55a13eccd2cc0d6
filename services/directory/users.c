/* users: user management on the bus (R4, R9, R18, R27): list, read, create,
 * update (PATCH with optimistic versions), retire, and the look-up by phone
 * extension the calls daemon uses for the screen pop. Every change is
 * audited and announced (ncc.directory.UserChanged) in its own transaction. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "directory.h"
#include "masters.h"
#include "ncc/roles.h"

#define S_PER_PAGE_DEFAULT 50
#define S_PER_PAGE_MAX     500
#define S_PAGE_MAX         1000000
#define S_NAME_MAX_BYTES   200
#define S_EXTENSION_MAX    32

/* A login: 1 to 64 of [A-Za-z0-9._@-]. */
static bool s_login_ok(const char *login)
{
    size_t len = login ? strlen(login) : 0;
    if (len == 0 || len > 64)
        return false;
    for (const char *p = login; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '@' || c == '-'))
            return false;
    }
    return true;
}

/* A phone extension: 1 to 32 of [0-9*#+-]. */
static bool s_extension_ok(const char *extension)
{
    size_t len = strlen(extension);
    if (len == 0 || len > S_EXTENSION_MAX)
        return false;
    for (const char *p = extension; *p; p++)
        if (!((*p >= '0' && *p <= '9') || *p == '*' || *p == '#' || *p == '+' || *p == '-'))
            return false;
    return true;
}

/* Skill codes as given ("tax, pension") checked and made canonical ("tax
 * pension") into out, each naming a skill (retired ones too). False after
 * answering 422 (or 503 when the database fails). */
static bool s_skills_ok(directory_t *self, ncc_reply_t *reply, const char *in, char *out,
                        size_t len)
{
    const masters_column_t *column = masters_column_find(masters_kind_find("users"), "skills");
    const char *value = NULL;
    const char *why =
        column ? masters_value_check(column, in, out, len, &value) : "no skills column";
    if (why) {
        ncc_reply_error(reply, 422, "invalid_field", "skills", "%s", why);
        return false;
    }
    if (value != out)
        snprintf(out, len, "%s", value ? value : "");
    const char *params[] = {out};
    PGresult *res =
        ncc_db_exec(self->db,
                    "SELECT c FROM unnest(string_to_array(nullif($1, ''), ' ')) c "
                    "WHERE NOT EXISTS (SELECT 1 FROM skills s WHERE s.code = c) LIMIT 1",
                    1, params, NULL);
    if (!res) {
        directory_reply_db_error(self, reply, "check skills");
        return false;
    }
    bool ok = PQntuples(res) == 0;
    if (!ok)
        ncc_reply_error(reply, 422, "invalid_field", "skills", "no skill has the code %s",
                        PQgetvalue(res, 0, 0));
    PQclear(res);
    return ok;
}

/* LIKE pattern matching `text` anywhere, with \ % _ escaped. Caller frees. */
static char *s_like_anywhere(const char *text)
{
    size_t len = strlen(text);
    char *pattern = malloc(2 * len + 3);
    if (!pattern)
        return NULL;
    size_t n = 0;
    pattern[n++] = '%';
    for (const char *p = text; *p; p++) {
        if (*p == '\\' || *p == '%' || *p == '_')
            pattern[n++] = '\\';
        pattern[n++] = *p;
    }
    pattern[n++] = '%';
    pattern[n] = '\0';
    return pattern;
}

/* Answers 409 for a unique violation (naming the field) or the db error. */
static void s_reply_write_error(directory_t *self, ncc_reply_t *reply, const char *what)
{
    if (strcmp(ncc_db_sqlstate(self->db), "23505") == 0) {
        bool login = strstr(ncc_db_error(self->db), "users_login_key") != NULL;
        ncc_db_rollback(self->db);
        if (login)
            ncc_reply_error(reply, 409, "conflict", "login", "this login is already taken");
        else
            ncc_reply_error(reply, 409, "conflict", "extension",
                            "this extension belongs to another active user");
        return;
    }
    directory_reply_db_error(self, reply, what);
}

/* Inside the transaction: refuses a change that would leave no active
 * administrator. 1 when one remains, 0 when none would, -EIO. */
static int s_admin_remains(directory_t *self)
{
    PGresult *res = ncc_db_exec(self->db,
                                "SELECT EXISTS (SELECT 1 FROM users "
                                "WHERE active AND 'admin' = ANY (roles))",
                                0, NULL, NULL);
    if (!res)
        return -EIO;
    int rc = PQgetvalue(res, 0, 0)[0] == 't' ? 1 : 0;
    PQclear(res);
    return rc;
}

/* Checks a TOTP secret from a request and encrypts it into *ret_cipher
 * (caller frees). false after answering the error. */
static bool s_totp_cipher(directory_t *self, ncc_reply_t *reply, const char *input,
                          char **ret_cipher)
{
    char secret[136];
    if (!directory_totp_secret_normalise(input, secret, sizeof secret)) {
        ncc_reply_error(reply, 422, "invalid_field", "totp_secret",
                        "the TOTP secret must be base32 (RFC 4648) of at least 16 characters");
        return false;
    }
    if (!self->keyring) {
        OPENSSL_cleanse(secret, sizeof secret);
        ncc_reply_error(reply, 503, "service_unavailable", "totp_secret",
                        "TOTP secrets cannot be stored: NCC_DATA_KEYS is not configured");
        return false;
    }
    *ret_cipher = ncc_encrypt(self->keyring, DIRECTORY_TOTP_CONTEXT, secret, strlen(secret));
    OPENSSL_cleanse(secret, sizeof secret);
    if (!*ret_cipher) {
        ncc_reply_error(reply, 500, "internal", NULL, "could not encrypt the TOTP secret");
        return false;
    }
    return true;
}

/* ---- ListUsers --------------------------------------------------------------- */

static void s_on_list(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    directory_t *self = arg;
    const Ncc__Directory__ListUsers *m = (const Ncc__Directory__ListUsers *)request->message;
    PGresult *count_res = NULL, *res = NULL;
    char *pattern = NULL;
    Ncc__Directory__User *users = NULL;
    Ncc__Directory__User **items = NULL;
    char *(*roles)[4] = NULL;

    int page = m->has_page ? m->page : 1;
    int per_page = m->has_per_page ? m->per_page : S_PER_PAGE_DEFAULT;
    if (page < 1 || page > S_PAGE_MAX) {
        ncc_reply_error(reply, 422, "invalid_field", "page", "page must be at least 1");
        return;
    }
    if (per_page < 1 || per_page > S_PER_PAGE_MAX) {
        ncc_reply_error(reply, 422, "invalid_field", "per_page",
                        "per_page must be between 1 and 500");
        return;
    }
    const char *role = m->role ? m->role : "";
    if (*role) {
        char array[64], list[64];
        char *one[] = {(char *)role};
        if (!directory_roles_format(one, 1, array, sizeof array, list, sizeof list)) {
            ncc_reply_error(reply, 422, "invalid_field", "role",
                            "role must be operator, supervisor, admin or staff");
            return;
        }
    }
    if (!directory_text_ok(m->q, 200)) {
        ncc_reply_error(reply, 422, "invalid_field", "q", "q must be UTF-8 text (200 bytes)");
        return;
    }
    pattern = s_like_anywhere(m->q ? m->q : "");
    if (!pattern) {
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        return;
    }
    char limit[16], offset[24];
    snprintf(limit, sizeof limit, "%d", per_page);
    snprintf(offset, sizeof offset, "%lld", (long long)(page - 1) * per_page);
    const char *active = m->has_active ? (m->active ? "true" : "false") : "";
    const char *params[] = {pattern, role, active, limit, offset};
#define S_LIST_WHERE                                                                               \
    " FROM users WHERE (login ILIKE $1 OR name ILIKE $1) "                                         \
    "AND ($2 = '' OR $2 = ANY (roles)) AND ($3 = '' OR active = ($3)::boolean)"
    count_res = ncc_db_exec(self->db, "SELECT count(*)" S_LIST_WHERE, 3, params, NULL);
    if (!count_res) {
        directory_reply_db_error(self, reply, "count users");
        goto out;
    }
    res = ncc_db_exec(self->db,
                      "SELECT " DIRECTORY_USER_COLUMNS S_LIST_WHERE
                      " ORDER BY lower(login) LIMIT $4::int OFFSET $5::bigint",
                      5, params, NULL);
    if (!res) {
        directory_reply_db_error(self, reply, "list users");
        goto out;
    }
#undef S_LIST_WHERE
    int rows = PQntuples(res);
    users = calloc((size_t)rows + 1, sizeof *users);
    items = calloc((size_t)rows + 1, sizeof *items);
    roles = calloc((size_t)rows + 1, sizeof *roles);
    if (!users || !items || !roles) {
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        goto out;
    }
    for (int i = 0; i < rows; i++) {
        directory_user_from_row(res, i, &users[i], roles[i]);
        items[i] = &users[i];
    }
    Ncc__Directory__UserList list = NCC__DIRECTORY__USER_LIST__INIT;
    list.n_items = (size_t)rows;
    list.items = items;
    list.has_total = true;
    list.total = strtoll(PQgetvalue(count_res, 0, 0), NULL, 10);
    ncc_reply_message(reply, &list.base);
out:
    PQclear(count_res);
    PQclear(res);
    free(pattern);
    free(users);
    free(items);
    free(roles);
}

/* ---- GetUser, FindByExtension ------------------------------------------------ */

static void s_on_get(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    directory_t *self = arg;
    const Ncc__Directory__GetUser *m = (const Ncc__Directory__GetUser *)request->message;
    if (!m->has_id || m->id <= 0) {
        ncc_reply_error(reply, 422, "invalid_field", "id", "id is required");
        return;
    }
    ncc_actor_t actor = ncc_request_actor(request);
    int64_t actor_id = 0;
    bool self_read = directory_parse_id(actor.id, &actor_id) && actor_id == m->id;
    if (!self_read && !(actor.roles & (NCC_ROLE_ADMIN | NCC_ROLE_SYSTEM))) {
        ncc_reply_error(reply, 403, "forbidden", NULL, "only administrators may read other users");
        return;
    }
    directory_reply_user(self, reply, m->id);
}

static void s_on_find_by_extension(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    directory_t *self = arg;
    const Ncc__Directory__FindByExtension *m =
        (const Ncc__Directory__FindByExtension *)request->message;
    if (!m->extension || !s_extension_ok(m->extension)) {
        ncc_reply_error(reply, 422, "invalid_field", "extension",
                        "extension must be 1 to 32 of 0-9 * # + -");
        return;
    }
    const char *params[] = {m->extension};
    PGresult *res = ncc_db_exec(
        self->db, "SELECT " DIRECTORY_USER_COLUMNS " FROM users WHERE extension = $1 AND active", 1,
        params, NULL);
    if (!res) {
        directory_reply_db_error(self, reply, "find by extension");
        return;
    }
    if (PQntuples(res) == 0) {
        ncc_reply_error(reply, 404, "not_found", "extension", "no active user at this extension");
    } else {
        Ncc__Directory__User user;
        char *roles[4];
        directory_user_from_row(res, 0, &user, roles);
        ncc_reply_message(reply, &user.base);
    }
    PQclear(res);
}

/* ---- CreateUser ------------------------------------------------------------------ */

static void s_on_create(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    directory_t *self = arg;
    const Ncc__Directory__CreateUser *m = (const Ncc__Directory__CreateUser *)request->message;
    char *hash = NULL, *totp = NULL;
    char roles_array[64], roles_list[64];

    if (!s_login_ok(m->login)) {
        ncc_reply_error(reply, 422, "invalid_field", "login",
                        "login must be 1 to 64 of A-Z a-z 0-9 . _ @ -");
        return;
    }
    if (!m->name || !*m->name || !directory_text_ok(m->name, S_NAME_MAX_BYTES)) {
        ncc_reply_error(reply, 422, "invalid_field", "name",
                        "name is required (UTF-8 text, at most 200 bytes)");
        return;
    }
    if (!directory_roles_format(m->roles, m->n_roles, roles_array, sizeof roles_array, roles_list,
                                sizeof roles_list)) {
        ncc_reply_error(reply, 422, "invalid_field", "roles",
                        "roles must hold at least one of operator, supervisor, admin, staff");
        return;
    }
    if (m->extension && *m->extension && !s_extension_ok(m->extension)) {
        ncc_reply_error(reply, 422, "invalid_field", "extension",
                        "extension must be 1 to 32 of 0-9 * # + -");
        return;
    }
    const char *why = password_policy_check(m->password, m->login);
    if (why) {
        ncc_reply_error(reply, 422, "invalid_field", "password", "%s", why);
        return;
    }
    char skills[256];
    if (!s_skills_ok(self, reply, m->skills, skills, sizeof skills))
        return;
    if (m->totp_secret && *m->totp_secret && !s_totp_cipher(self, reply, m->totp_secret, &totp))
        return;
    password_cost_t cost = directory_password_cost(self);
    hash = password_hash(m->password, &cost);
    if (!hash) {
        ncc_reply_error(reply, 500, "internal", NULL, "could not hash the password");
        goto out;
    }

    const char *params[] = {m->login,
                            m->name,
                            roles_array,
                            (m->extension && *m->extension) ? m->extension : NULL,
                            hash,
                            totp,
                            (m->has_active && !m->active) ? "false" : "true",
                            skills};
    if (ncc_db_begin(self->db) < 0) {
        directory_reply_db_error(self, reply, "create user");
        goto out;
    }
    PGresult *res = ncc_db_exec(self->db,
                                "INSERT INTO users (login, name, roles, extension, password_hash, "
                                "totp_secret, active, password_changed_at, skills) "
                                "VALUES ($1, $2, $3::text[], $4, $5, $6, $7::boolean, now(), $8) "
                                "RETURNING id",
                                8, params, NULL);
    if (!res) {
        s_reply_write_error(self, reply, "create user");
        goto out;
    }
    int64_t id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    char target[32], detail[96];
    snprintf(target, sizeof target, "user:%" PRId64, id);
    snprintf(detail, sizeof detail, "roles=%s%s", roles_list, totp ? " totp=enrolled" : "");
    if (directory_audit_request(self, request, "user.created", target, "success", detail) < 0 ||
        directory_user_changed(self, request, id, "created") < 0 || ncc_db_commit(self->db) < 0) {
        directory_reply_db_error(self, reply, "create user");
        goto out;
    }
    directory_flush(self);
    directory_reply_user(self, reply, id);
out:
    free(hash);
    free(totp);
}

/* ---- UpdateUser ------------------------------------------------------------------ */

/* A growing UPDATE statement: "SET a = $2, b = $3::text[]" with its parameters. */
typedef struct {
    char sql[1024];
    size_t len;
    const char *params[16];
    int n;
    char changed[160]; /* names of the fields changed, for the audit entry */
} s_update_t;

/* Appends ", <before>$N<after>" with `value` as parameter N. */
static void s_set_param(s_update_t *u, const char *before, const char *after, const char *value,
                        const char *field)
{
    u->params[u->n++] = value;
    u->len +=
        (size_t)snprintf(u->sql + u->len, sizeof u->sql - u->len, ", %s$%d%s", before, u->n, after);
    size_t l = strlen(u->changed);
    snprintf(u->changed + l, sizeof u->changed - l, "%s%s", l ? "," : "", field);
}

/* Appends ", <expression>" (no parameter). */
static void s_set_expr(s_update_t *u, const char *expression)
{
    u->len += (size_t)snprintf(u->sql + u->len, sizeof u->sql - u->len, ", %s", expression);
}

static void s_on_update(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    directory_t *self = arg;
    const Ncc__Directory__UpdateUser *m = (const Ncc__Directory__UpdateUser *)request->message;
    char *hash = NULL, *totp = NULL;
    char roles_array[64], roles_list[64], id_text[24], current_login[80] = "";
    PGresult *res = NULL;

    if (!m->has_id || m->id <= 0) {
        ncc_reply_error(reply, 422, "invalid_field", "id", "id is required");
        return;
    }
    if (!m->has_version) {
        ncc_reply_error(reply, 422, "invalid_field", "version",
                        "version is required (the version you read)");
        return;
    }
    if (m->login && !s_login_ok(m->login)) {
        ncc_reply_error(reply, 422, "invalid_field", "login",
                        "login must be 1 to 64 of A-Z a-z 0-9 . _ @ -");
        return;
    }
    if (m->name && (!*m->name || !directory_text_ok(m->name, S_NAME_MAX_BYTES))) {
        ncc_reply_error(reply, 422, "invalid_field", "name",
                        "name must not be empty (UTF-8 text, at most 200 bytes)");
        return;
    }
    if (m->n_roles > 0 &&
        !directory_roles_format(m->roles, m->n_roles, roles_array, sizeof roles_array, roles_list,
                                sizeof roles_list)) {
        ncc_reply_error(reply, 422, "invalid_field", "roles",
                        "roles must hold at least one of operator, supervisor, admin, staff");
        return;
    }
    if (m->extension && *m->extension && !s_extension_ok(m->extension)) {
        ncc_reply_error(reply, 422, "invalid_field", "extension",
                        "extension must be 1 to 32 of 0-9 * # + -");
        return;
    }
    snprintf(id_text, sizeof id_text, "%" PRId64, m->id);
    const char *id_param[] = {id_text};
    res = ncc_db_exec(self->db, "SELECT login FROM users WHERE id = $1::bigint", 1, id_param, NULL);
    if (!res) {
        directory_reply_db_error(self, reply, "update user");
        return;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        ncc_reply_error(reply, 404, "not_found", "id", "no user %" PRId64, m->id);
        return;
    }
    snprintf(current_login, sizeof current_login, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    res = NULL;

    if (m->password) {
        const char *why = password_policy_check(m->password, m->login ? m->login : current_login);
        if (why) {
            ncc_reply_error(reply, 422, "invalid_field", "password", "%s", why);
            return;
        }
    }
    char skills[256];
    if (m->skills && !s_skills_ok(self, reply, m->skills, skills, sizeof skills))
        return;
    if (m->totp_secret && *m->totp_secret && !s_totp_cipher(self, reply, m->totp_secret, &totp))
        return;
    if (m->password) {
        password_cost_t cost = directory_password_cost(self);
        hash = password_hash(m->password, &cost);
        if (!hash) {
            ncc_reply_error(reply, 500, "internal", NULL, "could not hash the password");
            goto out;
        }
    }

    s_update_t u = {.n = 1};
    u.params[0] = id_text;
    u.len = (size_t)snprintf(u.sql, sizeof u.sql,
                             "UPDATE users SET updated_at = now(), version = version + 1");
    if (m->login)
        s_set_param(&u, "login = ", "", m->login, "login");
    if (m->name)
        s_set_param(&u, "name = ", "", m->name, "name");
    if (m->n_roles > 0)
        s_set_param(&u, "roles = ", "::text[]", roles_array, "roles");
    if (m->extension)
        s_set_param(&u, "extension = nullif(", ", '')", m->extension, "extension");
    if (m->skills)
        s_set_param(&u, "skills = ", "", skills, "skills");
    if (hash) {
        s_set_param(&u, "password_hash = ", "", hash, "password");
        s_set_expr(&u, "password_changed_at = now()");
    }
    if (m->totp_secret) {
        s_set_param(&u, "totp_secret = ", "", totp, "totp_secret");
        s_set_expr(&u, "totp_last_step = 0");
    }
    if (m->has_active)
        s_set_param(&u, "active = ", "::boolean", m->active ? "true" : "false", "active");
    if (m->has_unlock && m->unlock) {
        s_set_expr(&u, "locked_until = NULL, failures_reset_at = now()");
        size_t l = strlen(u.changed);
        snprintf(u.changed + l, sizeof u.changed - l, "%sunlock", l ? "," : "");
    }
    snprintf(u.sql + u.len, sizeof u.sql - u.len, " WHERE id = $1::bigint");

    if (ncc_db_begin(self->db) < 0) {
        directory_reply_db_error(self, reply, "update user");
        goto out;
    }
    res = ncc_db_exec(self->db, "SELECT version FROM users WHERE id = $1::bigint FOR UPDATE", 1,
                      id_param, NULL);
    if (!res) {
        directory_reply_db_error(self, reply, "update user");
        goto out;
    }
    int64_t version = PQntuples(res) ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : -1;
    PQclear(res);
    res = NULL;
    if (version != m->version) {
        ncc_db_rollback(self->db);
        ncc_reply_error(reply, 409, "conflict", "version",
                        "the user was changed meanwhile (version %" PRId64
                        " is current): read it again",
                        version);
        goto out;
    }
    if (ncc_db_run(self->db, u.sql, u.n, u.params) < 0) {
        s_reply_write_error(self, reply, "update user");
        goto out;
    }
    int remains = s_admin_remains(self);
    if (remains < 0) {
        directory_reply_db_error(self, reply, "update user");
        goto out;
    }
    if (remains == 0) {
        ncc_db_rollback(self->db);
        ncc_reply_error(reply, 409, "conflict", m->has_active ? "active" : "roles",
                        "at least one active administrator must remain");
        goto out;
    }
    char target[32], detail[200];
    snprintf(target, sizeof target, "user:%" PRId64, m->id);
    snprintf(detail, sizeof detail, "changed: %s", u.changed[0] ? u.changed : "nothing");
    if (directory_audit_request(self, request, "user.updated", target, "success", detail) < 0 ||
        (m->has_unlock && m->unlock &&
         directory_audit_request(self, request, "account.unlocked", target, "success",
                                 "unlocked by an administrator") < 0) ||
        directory_user_changed(self, request, m->id, "updated") < 0 ||
        ncc_db_commit(self->db) < 0) {
        directory_reply_db_error(self, reply, "update user");
        goto out;
    }
    directory_flush(self);
    directory_reply_user(self, reply, m->id);
out:
    PQclear(res);
    free(hash);
    free(totp);
}

/* ---- DeleteUser: retire ------------------------------------------------------------ */

static void s_on_delete(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    directory_t *self = arg;
    const Ncc__Directory__DeleteUser *m = (const Ncc__Directory__DeleteUser *)request->message;
    if (!m->has_id || m->id <= 0) {
        ncc_reply_error(reply, 422, "invalid_field", "id", "id is required");
        return;
    }
    char id_text[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, m->id);
    const char *params[] = {id_text};
    if (ncc_db_begin(self->db) < 0) {
        directory_reply_db_error(self, reply, "retire user");
        return;
    }
    PGresult *res = ncc_db_exec(self->db,
                                "SELECT version, active FROM users WHERE id = $1::bigint "
                                "FOR UPDATE",
                                1, params, NULL);
    if (!res) {
        directory_reply_db_error(self, reply, "retire user");
        return;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        ncc_db_rollback(self->db);
        ncc_reply_error(reply, 404, "not_found", "id", "no user %" PRId64, m->id);
        return;
    }
    int64_t version = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    bool active = PQgetvalue(res, 0, 1)[0] == 't';
    PQclear(res);
    if (m->has_version && m->version != version) {
        ncc_db_rollback(self->db);
        ncc_reply_error(reply, 409, "conflict", "version",
                        "the user was changed meanwhile (version %" PRId64
                        " is current): read it again",
                        version);
        return;
    }
    if (!active) { /* already retired: nothing changes */
        ncc_db_rollback(self->db);
        directory_reply_user(self, reply, m->id);
        return;
    }
    if (ncc_db_run(self->db,
                   "UPDATE users SET active = false, updated_at = now(), version = version + 1 "
                   "WHERE id = $1::bigint",
                   1, params) < 0) {
        directory_reply_db_error(self, reply, "retire user");
        return;
    }
    int remains = s_admin_remains(self);
    if (remains < 0) {
        directory_reply_db_error(self, reply, "retire user");
        return;
    }
    if (remains == 0) {
        ncc_db_rollback(self->db);
        ncc_reply_error(reply, 409, "conflict", "id",
                        "the last active administrator cannot be retired");
        return;
    }
    char target[32];
    snprintf(target, sizeof target, "user:%" PRId64, m->id);
    if (directory_audit_request(self, request, "user.retired", target, "success", "") < 0 ||
        directory_user_changed(self, request, m->id, "retired") < 0 ||
        ncc_db_commit(self->db) < 0) {
        directory_reply_db_error(self, reply, "retire user");
        return;
    }
    directory_flush(self);
    directory_reply_user(self, reply, m->id);
}

int directory_users_register(directory_t *self)
{
    ncc_service_t *service = self->service;
    if (ncc_service_on(service, &ncc__directory__list_users__descriptor, NCC_ROLE_ADMIN, s_on_list,
                       self) < 0 ||
        ncc_service_on(service, &ncc__directory__get_user__descriptor, NCC_ROLES_ALL, s_on_get,
                       self) < 0 ||
        ncc_service_on(service, &ncc__directory__create_user__descriptor, NCC_ROLE_ADMIN,
                       s_on_create, self) < 0 ||
        ncc_service_on(service, &ncc__directory__update_user__descriptor, NCC_ROLE_ADMIN,
                       s_on_update, self) < 0 ||
        ncc_service_on(service, &ncc__directory__delete_user__descriptor, NCC_ROLE_ADMIN,
                       s_on_delete, self) < 0 ||
        ncc_service_on(service, &ncc__directory__find_by_extension__descriptor, NCC_ROLE_SYSTEM,
                       s_on_find_by_extension, self) < 0)
        return -EINVAL;
    return 0;
}
