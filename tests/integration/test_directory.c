/* ncc-directory against a real PostgreSQL, over the real bus: the first
 * administrator, user management, the password policy, sign-in (same answer
 * for an unknown login and a wrong password, lock-out, per-address limit,
 * TOTP for administrators, replay), roles and actor proofs on every
 * handler, and the hash-chained audit log (verification, an edit made by
 * the database owner, the application role's missing UPDATE/DELETE).
 *
 * Each test gets its own empty database (scripts/pg.sh fresh, on the cluster
 * NCC_DATABASE_URL points at, with the owner / application role split) and
 * its own daemon on its own ports, and drops the database at the end. The
 * test process holds a fresh NCC_BUS_ACTOR_KEY and NCC_DATA_KEYS, passed on
 * to the daemons, so requests are signed as the ncc_ctx_t says. */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "directory.pb-c.h"
#include "ncc/bus.h"
#include "ncc/crypto.h"
#include "ncc/log.h"
#include "ncc_test.h"

#define READY_TIMEOUT_MS 30000
#define CALL_TIMEOUT_MS  15000

#define ADMIN_PASSWORD "Kuyakusho-Test-Pass-42"
#define ADMIN_TOTP     "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
#define USER_PASSWORD  "Madoguchi-7-Soudan!"

/* ---- the database of one test --------------------------------------------------- */

static ncct_database_t s_db; /* its name, the application role's and the owner's URLs */

static void s_fresh_database(void)
{
    cr_assert(ncct_database_fresh(&s_db, "test_directory"),
              "scripts/pg.sh fresh failed (the test makes its own database on the cluster of "
              "NCC_DATABASE_URL: scripts/pg.sh start; . var/env)");
}

static void s_drop_database(void)
{
    ncct_database_drop(&s_db);
}

/* Runs one statement on `url`; returns the result (caller PQclear) or NULL
 * with the SQLSTATE in state[6]. */
static PGresult *s_sql(const char *url, const char *sql, char state[6])
{
    PGconn *conn = PQconnectdb(url);
    cr_assert_eq(PQstatus(conn), CONNECTION_OK, "%s", PQerrorMessage(conn));
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    if (state)
        state[0] = '\0';
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (state)
            snprintf(state, 6, "%s", code ? code : "");
        PQclear(res);
        res = NULL;
    }
    PQfinish(conn);
    return res;
}

/* The first column of the first row as a long, asserting success. */
static long s_sql_long(const char *url, const char *sql)
{
    PGresult *res = s_sql(url, sql, NULL);
    cr_assert_not_null(res, "%s failed", sql);
    cr_assert_gt(PQntuples(res), 0, "%s: no row", sql);
    long value = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return value;
}

/* ---- daemons ------------------------------------------------------------------------ */

typedef struct {
    char rpc[64];
    char health_url[96];
    char log_path[160];
    char env_rpc[96], env_pub[96], env_health[96];
    pid_t pid;
    ncc_rpc_client_t *client;
} daemon_t;

static daemon_t s_daemons[2];

static void s_daemon_start(daemon_t *d, const char *tag, const char *const *extra)
{
    int rpc = ncct_free_port(), pub = ncct_free_port(), health = ncct_free_port();
    cr_assert(rpc > 0 && pub > 0 && health > 0);
    snprintf(d->rpc, sizeof d->rpc, "tcp://127.0.0.1:%d", rpc);
    snprintf(d->health_url, sizeof d->health_url, "http://127.0.0.1:%d", health);
    snprintf(d->env_rpc, sizeof d->env_rpc, "NCC_DIRECTORY_RPC_BIND=tcp://127.0.0.1:%d", rpc);
    snprintf(d->env_pub, sizeof d->env_pub, "NCC_DIRECTORY_PUB_BIND=tcp://127.0.0.1:%d", pub);
    snprintf(d->env_health, sizeof d->env_health, "NCC_DIRECTORY_HEALTH_LISTEN=127.0.0.1:%d",
             health);
    snprintf(d->log_path, sizeof d->log_path, "/tmp/ncc-test-directory-%s-%d.log", tag,
             (int)getpid());
    unlink(d->log_path);

    static char env_db[600], env_owner[600];
    snprintf(env_db, sizeof env_db, "NCC_DATABASE_URL=%s", s_db.url);
    snprintf(env_owner, sizeof env_owner, "NCC_DATABASE_OWNER_URL=%s", s_db.owner_url);
    const char *env[32] = {
        d->env_rpc,
        d->env_pub,
        d->env_health,
        env_db,
        env_owner,
        "NCC_CONFIG_FILE=",
        "NCC_LOG_LEVEL=info",
        "NCC_ARGON2_MEMORY_KIB=256",
        "NCC_BOOTSTRAP_ADMIN_LOGIN=admin",
        "NCC_BOOTSTRAP_ADMIN_PASSWORD=" ADMIN_PASSWORD,
        "NCC_BOOTSTRAP_ADMIN_TOTP_SECRET=" ADMIN_TOTP,
        /* The documented defaults, whatever the caller's environment says. */
        "NCC_ARGON2_ITERATIONS=3",
        "NCC_LOGIN_ACCOUNT_MAX_FAILURES=5",
        "NCC_LOGIN_ACCOUNT_WINDOW_S=900",
        "NCC_LOGIN_LOCK_S=900",
        "NCC_LOGIN_ADDRESS_MAX_FAILURES=20",
        "NCC_LOGIN_ADDRESS_WINDOW_S=900",
    };
    size_t n = 17;
    for (size_t i = 0; extra && extra[i] && n < 31; i++)
        env[n++] = extra[i]; /* later entries win */
    env[n] = NULL;
    d->pid = ncct_spawn("ncc-directory", env, d->log_path);
    cr_assert_gt(d->pid, 0);
    d->client = ncc_rpc_client_new(d->rpc);
    cr_assert_not_null(d->client);
}

static void s_daemon_wait_ready(daemon_t *d)
{
    char url[160];
    snprintf(url, sizeof url, "%s/readyz", d->health_url);
    bool ready = ncct_wait_status(url, 200, READY_TIMEOUT_MS);
    if (!ready) {
        char *log = ncct_read_file(d->log_path);
        cr_log_error("daemon log:\n%s", log ? log : "(none)");
        free(log);
    }
    cr_assert(ready, "ncc-directory did not become ready");
}

static bool s_log_contains(const daemon_t *d, const char *needle)
{
    char *log = ncct_read_file(d->log_path);
    bool found = log && strstr(log, needle);
    free(log);
    return found;
}

/* SIGTERM, wait, and check the log holds no sanitizer report. */
static void s_daemon_stop(daemon_t *d)
{
    ncc_rpc_client_destroy(&d->client);
    if (d->pid <= 0)
        return;
    kill(d->pid, SIGTERM);
    int status = ncct_wait_exit(d->pid, 15000);
    if (status == -1)
        ncct_kill(d->pid);
    d->pid = 0;
    cr_assert_neq(status, -1, "ncc-directory did not stop on SIGTERM");
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status %d", status);
    cr_assert_not(s_log_contains(d, "Sanitizer"), "sanitizer report in %s", d->log_path);
    cr_assert_not(s_log_contains(d, "runtime error:"), "UBSan report in %s", d->log_path);
}

static void setup(void)
{
    ncc_log_init("test_directory", NCC_LOG_ERROR);
    char key[64], data_key[80];
    ncct_random_key(key);
    setenv("NCC_BUS_ACTOR_KEY", key, 1);
    ncct_random_key(key);
    snprintf(data_key, sizeof data_key, "t1:%s", key);
    setenv("NCC_DATA_KEYS", data_key, 1);
    cr_assert_eq(ncc_actor_key_from_env(), 0);
    s_fresh_database();
}

static void teardown(void)
{
    for (size_t i = 0; i < 2; i++) {
        ncc_rpc_client_destroy(&s_daemons[i].client);
        if (s_daemons[i].pid > 0) {
            ncct_kill(s_daemons[i].pid);
            s_daemons[i].pid = 0;
        }
    }
    s_drop_database();
}

TestSuite(directory, .init = setup, .fini = teardown, .timeout = 180);

/* ---- requests ------------------------------------------------------------------------- */

static const ncc_ctx_t s_system = {
    .actor_id = "svc:gateway", .actor_role = "system", .actor_address = "192.0.2.10"};

/* The bootstrap administrator, acting through the gateway. */
static char s_admin_id[24];
static ncc_ctx_t s_admin = {.actor_role = "admin", .actor_address = "192.0.2.20"};

static void s_use_admin(void)
{
    long id = s_sql_long(s_db.owner_url, "SELECT id FROM directory.users WHERE login = 'admin'");
    snprintf(s_admin_id, sizeof s_admin_id, "%ld", id);
    s_admin.actor_id = s_admin_id;
}

/* Waits until the daemon has created the first administrator. */
static void s_wait_admin(void)
{
    long long deadline = ncct_now_ms() + READY_TIMEOUT_MS;
    while (ncct_now_ms() < deadline) {
        PGresult *res = s_sql(s_db.owner_url, "SELECT count(*) FROM directory.users", NULL);
        long count = res ? strtol(PQgetvalue(res, 0, 0), NULL, 10) : 0;
        PQclear(res);
        if (count > 0)
            return;
        usleep(50 * 1000);
    }
    cr_assert_fail("no administrator was created");
}

/* Starts the one daemon of a test and waits for the first administrator. */
static daemon_t *s_start(const char *tag, const char *const *extra)
{
    daemon_t *d = &s_daemons[0];
    s_daemon_start(d, tag, extra);
    s_daemon_wait_ready(d);
    s_wait_admin();
    s_use_admin();
    return d;
}

/* Calls and expects `reply_type`; returns the reply (caller frees). */
static void *s_ok(daemon_t *d, const ncc_ctx_t *ctx, const ProtobufCMessage *request,
                  const ProtobufCMessageDescriptor *reply_type)
{
    ProtobufCMessage *reply = NULL;
    Ncc__Error *error = NULL;
    int rc =
        ncc_rpc_call_typed(d->client, ctx, request, reply_type, CALL_TIMEOUT_MS, &reply, &error);
    cr_assert_eq(rc, 0, "%s failed: rc %d, error %d %s: %s", request->descriptor->name, rc,
                 error ? error->status : 0, error && error->code ? error->code : "",
                 error && error->message ? error->message : "");
    return reply;
}

/* Calls and expects an Error with `status` and `code`; returns it (caller
 * frees with ncc__error__free_unpacked). */
static Ncc__Error *s_error(daemon_t *d, const ncc_ctx_t *ctx, const ProtobufCMessage *request,
                           const ProtobufCMessageDescriptor *reply_type, int status,
                           const char *code)
{
    ProtobufCMessage *reply = NULL;
    Ncc__Error *error = NULL;
    int rc =
        ncc_rpc_call_typed(d->client, ctx, request, reply_type, CALL_TIMEOUT_MS, &reply, &error);
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
    cr_assert_eq(rc, -EPROTO, "%s: expected error %d %s, got rc %d", request->descriptor->name,
                 status, code, rc);
    cr_assert_not_null(error);
    cr_assert_eq(error->status, status, "%s: status %d (%s: %s), expected %d",
                 request->descriptor->name, error->status, error->code ? error->code : "",
                 error->message ? error->message : "", status);
    cr_assert_str_eq(error->code, code, "%s: code %s (%s)", request->descriptor->name, error->code,
                     error->message ? error->message : "");
    return error;
}

static void s_expect_error(daemon_t *d, const ncc_ctx_t *ctx, const ProtobufCMessage *request,
                           const ProtobufCMessageDescriptor *reply_type, int status,
                           const char *code)
{
    Ncc__Error *error = s_error(d, ctx, request, reply_type, status, code);
    ncc__error__free_unpacked(error, NULL);
}

static Ncc__Directory__User *s_create_user(daemon_t *d, const char *login, const char *role,
                                           const char *password, const char *totp_secret)
{
    Ncc__Directory__CreateUser create = NCC__DIRECTORY__CREATE_USER__INIT;
    char *roles[] = {(char *)role};
    create.login = (char *)login;
    create.name = "山田 花子";
    create.roles = roles;
    create.n_roles = 1;
    create.password = (char *)password;
    create.totp_secret = (char *)totp_secret;
    return s_ok(d, &s_admin, &create.base, &ncc__directory__user__descriptor);
}

static ncc_ctx_t s_from(const char *address)
{
    ncc_ctx_t ctx = s_system;
    ctx.actor_address = address;
    return ctx;
}

static Ncc__Directory__AuthResult *s_login_ok(daemon_t *d, const char *address, const char *login,
                                              const char *password, const char *totp)
{
    Ncc__Directory__Authenticate auth = NCC__DIRECTORY__AUTHENTICATE__INIT;
    auth.login = (char *)login;
    auth.password = (char *)password;
    auth.totp = (char *)totp;
    ncc_ctx_t ctx = s_from(address);
    return s_ok(d, &ctx, &auth.base, &ncc__directory__auth_result__descriptor);
}

static Ncc__Error *s_login_error(daemon_t *d, const char *address, const char *login,
                                 const char *password, const char *totp, int status,
                                 const char *code)
{
    Ncc__Directory__Authenticate auth = NCC__DIRECTORY__AUTHENTICATE__INIT;
    auth.login = (char *)login;
    auth.password = (char *)password;
    auth.totp = (char *)totp;
    ncc_ctx_t ctx = s_from(address);
    return s_error(d, &ctx, &auth.base, &ncc__directory__auth_result__descriptor, status, code);
}

static void s_login_fails(daemon_t *d, const char *address, const char *login, const char *password,
                          const char *totp, int status, const char *code)
{
    ncc__error__free_unpacked(s_login_error(d, address, login, password, totp, status, code), NULL);
}

static Ncc__Directory__AuditList *s_audit(daemon_t *d, const char *actor, const char *action)
{
    Ncc__Directory__AuditSearch search = NCC__DIRECTORY__AUDIT_SEARCH__INIT;
    search.actor = (char *)actor;
    search.action = (char *)action;
    search.has_per_page = true;
    search.per_page = 500;
    return s_ok(d, &s_admin, &search.base, &ncc__directory__audit_list__descriptor);
}

/* Entries of `list` with `outcome` (and `detail` when not NULL). */
static size_t s_count(const Ncc__Directory__AuditList *list, const char *action,
                      const char *outcome, const char *detail)
{
    size_t n = 0;
    for (size_t i = 0; i < list->n_items; i++) {
        const Ncc__Directory__AuditEntry *e = list->items[i];
        if (strcmp(e->action, action) == 0 && strcmp(e->outcome, outcome) == 0 &&
            (!detail || strcmp(e->detail, detail) == 0))
            n++;
    }
    return n;
}

static Ncc__Directory__AuditVerifyResult *s_verify(daemon_t *d, int64_t anchor_seq,
                                                   const char *anchor_hash)
{
    Ncc__Directory__AuditVerify verify = NCC__DIRECTORY__AUDIT_VERIFY__INIT;
    if (anchor_seq > 0) {
        verify.has_anchor_seq = true;
        verify.anchor_seq = anchor_seq;
        verify.anchor_hash = (char *)anchor_hash;
    }
    return s_ok(d, &s_admin, &verify.base, &ncc__directory__audit_verify_result__descriptor);
}

static void s_totp_now(const char *secret, char code[7])
{
    cr_assert_eq(ncc_totp_code(secret, (int64_t)time(NULL), code), 0);
}

/* ---- the first administrator ------------------------------------------------------------ */

Test(directory, bootstrap_creates_the_admin_once_with_generated_credentials)
{
    /* Nothing configured: both copies start together on an empty database. */
    const char *generated[] = {
        "NCC_BOOTSTRAP_ADMIN_PASSWORD=", "NCC_BOOTSTRAP_ADMIN_TOTP_SECRET=", NULL};
    s_daemon_start(&s_daemons[0], "boot-a", generated);
    s_daemon_start(&s_daemons[1], "boot-b", generated);
    s_daemon_wait_ready(&s_daemons[0]);
    s_daemon_wait_ready(&s_daemons[1]);
    s_wait_admin();
    usleep(500 * 1000);

    cr_assert_eq(s_sql_long(s_db.owner_url, "SELECT count(*) FROM directory.users"), 1);
    PGresult *res = s_sql(s_db.owner_url,
                          "SELECT login, roles::text, password_hash, totp_secret "
                          "FROM directory.users",
                          NULL);
    cr_assert_not_null(res);
    cr_assert_str_eq(PQgetvalue(res, 0, 0), "admin");
    cr_assert_str_eq(PQgetvalue(res, 0, 1), "{admin}");
    cr_assert_eq(strncmp(PQgetvalue(res, 0, 2), "$argon2id$", 10), 0, "not Argon2id");
    cr_assert_eq(strncmp(PQgetvalue(res, 0, 3), "v1:", 3), 0, "TOTP secret not encrypted");
    PQclear(res);

    /* Exactly one copy announced it, with the generated values, once. */
    bool a = s_log_contains(&s_daemons[0], "\"bootstrap.admin_created\"");
    bool b = s_log_contains(&s_daemons[1], "\"bootstrap.admin_created\"");
    cr_assert(a != b, "bootstrap announced by %s", a ? "both copies" : "neither copy");
    daemon_t *creator = a ? &s_daemons[0] : &s_daemons[1];
    char *log = ncct_read_file(creator->log_path);
    cr_assert_not_null(log);
    char password[64] = "", secret[64] = "";
    const char *p = strstr(log, "password: ");
    const char *s = strstr(log, "TOTP secret: ");
    cr_assert(p && s, "generated values not printed");
    sscanf(p + 10, "%63[^;]", password);
    sscanf(s + 13, "%63[A-Z2-7]", secret);
    cr_assert(strstr(log, "SHOWN ONLY THIS ONCE"));
    free(log);
    cr_assert_geq(strlen(password), 12);
    cr_assert_geq(strlen(secret), 16);

    /* The printed values work: the administrator signs in with them. */
    char code[7];
    s_totp_now(secret, code);
    Ncc__Directory__AuthResult *result = s_login_ok(creator, "192.0.2.1", "admin", password, code);
    cr_assert_str_eq(result->user->login, "admin");
    cr_assert_null(result->user->password, "a password came back");
    cr_assert_null(result->user->totp_secret, "a TOTP secret came back");
    protobuf_c_message_free_unpacked(&result->base, NULL);

    /* A restart creates nothing and prints nothing. */
    s_daemon_stop(&s_daemons[0]);
    s_daemon_stop(&s_daemons[1]);
    s_daemon_start(&s_daemons[0], "boot-c", generated);
    s_daemon_wait_ready(&s_daemons[0]);
    usleep(300 * 1000);
    cr_assert_not(s_log_contains(&s_daemons[0], "bootstrap.admin_created"));
    cr_assert_eq(s_sql_long(s_db.owner_url, "SELECT count(*) FROM directory.users"), 1);
    cr_assert_eq(s_sql_long(s_db.owner_url, "SELECT count(*) FROM directory.audit_log "
                                            "WHERE action = 'user.created'"),
                 1);
    s_daemon_stop(&s_daemons[0]);
}

/* ---- user management ---------------------------------------------------------------------- */

Test(directory, users_are_created_listed_updated_and_retired)
{
    daemon_t *d = s_start("users", NULL);

    Ncc__Directory__CreateUser create = NCC__DIRECTORY__CREATE_USER__INIT;
    char *roles[] = {"operator", "supervisor"};
    create.login = "sato.op";
    create.name = "佐藤 一郎";
    create.roles = roles;
    create.n_roles = 2;
    create.extension = "2101";
    create.password = USER_PASSWORD;
    Ncc__Directory__User *user = s_ok(d, &s_admin, &create.base, &ncc__directory__user__descriptor);
    cr_assert(user->has_id && user->id > 0);
    cr_assert_str_eq(user->login, "sato.op");
    cr_assert_str_eq(user->name, "佐藤 一郎");
    cr_assert_eq(user->n_roles, 2);
    cr_assert_str_eq(user->roles[0], "operator");
    cr_assert_str_eq(user->roles[1], "supervisor");
    cr_assert_str_eq(user->extension, "2101");
    cr_assert(user->has_active && user->active);
    cr_assert(user->has_totp_enabled && !user->totp_enabled);
    cr_assert_null(user->password);
    cr_assert_eq(user->version, 1);
    cr_assert_not_null(user->created_at);
    cr_assert(strstr(user->created_at, "+09:00"), "not Asia/Tokyo RFC 3339: %s", user->created_at);
    int64_t id = user->id;
    protobuf_c_message_free_unpacked(&user->base, NULL);

    /* The same login again (any case) is a conflict, as is the same extension. */
    create.login = "SATO.OP";
    s_expect_error(d, &s_admin, &create.base, &ncc__directory__user__descriptor, 409, "conflict");
    create.login = "suzuki.op";
    s_expect_error(d, &s_admin, &create.base, &ncc__directory__user__descriptor, 409, "conflict");

    /* List, search, filter. */
    Ncc__Directory__ListUsers list_req = NCC__DIRECTORY__LIST_USERS__INIT;
    list_req.q = "sato";
    Ncc__Directory__UserList *list =
        s_ok(d, &s_admin, &list_req.base, &ncc__directory__user_list__descriptor);
    cr_assert_eq(list->total, 1);
    cr_assert_eq(list->n_items, 1);
    cr_assert_eq(list->items[0]->id, id);
    protobuf_c_message_free_unpacked(&list->base, NULL);
    list_req.q = NULL;
    list_req.role = "admin";
    list = s_ok(d, &s_admin, &list_req.base, &ncc__directory__user_list__descriptor);
    cr_assert_eq(list->total, 1);
    cr_assert_str_eq(list->items[0]->login, "admin");
    protobuf_c_message_free_unpacked(&list->base, NULL);
    list_req.role = "root";
    s_expect_error(d, &s_admin, &list_req.base, &ncc__directory__user_list__descriptor, 422,
                   "invalid_field");

    /* PATCH: only the name changes; the version moves on. */
    Ncc__Directory__UpdateUser update = NCC__DIRECTORY__UPDATE_USER__INIT;
    update.has_id = update.has_version = true;
    update.id = id;
    update.version = 1;
    update.name = "佐藤 一郎 (応対)";
    user = s_ok(d, &s_admin, &update.base, &ncc__directory__user__descriptor);
    cr_assert_str_eq(user->name, "佐藤 一郎 (応対)");
    cr_assert_str_eq(user->extension, "2101");
    cr_assert_eq(user->n_roles, 2);
    cr_assert_eq(user->version, 2);
    protobuf_c_message_free_unpacked(&user->base, NULL);

    /* The same edit on the old version: 409. */
    update.name = "someone else's edit";
    Ncc__Error *error =
        s_error(d, &s_admin, &update.base, &ncc__directory__user__descriptor, 409, "conflict");
    cr_assert_str_eq(error->field, "version");
    ncc__error__free_unpacked(error, NULL);

    /* The calls daemon finds the operator by extension. */
    Ncc__Directory__FindByExtension find = NCC__DIRECTORY__FIND_BY_EXTENSION__INIT;
    find.extension = "2101";
    user = s_ok(d, &s_system, &find.base, &ncc__directory__user__descriptor);
    cr_assert_eq(user->id, id);
    protobuf_c_message_free_unpacked(&user->base, NULL);

    /* Retire: kept, inactive, no longer at the extension. */
    Ncc__Directory__DeleteUser retire = NCC__DIRECTORY__DELETE_USER__INIT;
    retire.has_id = true;
    retire.id = id;
    user = s_ok(d, &s_admin, &retire.base, &ncc__directory__user__descriptor);
    cr_assert(user->has_active && !user->active);
    protobuf_c_message_free_unpacked(&user->base, NULL);
    s_expect_error(d, &s_system, &find.base, &ncc__directory__user__descriptor, 404, "not_found");
    list_req.role = NULL;
    list_req.has_active = true;
    list_req.active = true;
    list = s_ok(d, &s_admin, &list_req.base, &ncc__directory__user_list__descriptor);
    cr_assert_eq(list->total, 1, "only the administrator is active");
    protobuf_c_message_free_unpacked(&list->base, NULL);
    cr_assert_eq(s_sql_long(s_db.owner_url, "SELECT count(*) FROM directory.users"), 2);

    /* The last active administrator cannot be retired. */
    retire.id = strtoll(s_admin_id, NULL, 10);
    s_expect_error(d, &s_admin, &retire.base, &ncc__directory__user__descriptor, 409, "conflict");

    /* Every change is audited with the acting administrator, and announced. */
    Ncc__Directory__AuditList *audit = s_audit(d, "admin", "user.*");
    cr_assert_eq(s_count(audit, "user.created", "success", NULL), 1);
    cr_assert_eq(s_count(audit, "user.updated", "success", "changed: name"), 1);
    cr_assert_eq(s_count(audit, "user.retired", "success", NULL), 1);
    for (size_t i = 0; i < audit->n_items; i++) {
        cr_assert_str_eq(audit->items[i]->actor_id, s_admin_id);
        cr_assert_str_eq(audit->items[i]->address, "192.0.2.20");
        cr_assert_eq(strlen(audit->items[i]->hash), 64);
    }
    protobuf_c_message_free_unpacked(&audit->base, NULL);
    cr_assert_eq(s_sql_long(s_db.owner_url, "SELECT count(*) FROM directory.outbox "
                                            "WHERE type = 'ncc.directory.UserChanged'"),
                 4, "bootstrap, create, update, retire");
    s_daemon_stop(d);
}

Test(directory, the_password_policy_names_the_field)
{
    daemon_t *d = s_start("policy", NULL);
    const char *weak[] = {
        "Short-1",           /* fewer than 12 characters */
        "xx-tanaka.op-2025", /* holds the login */
        "aaaaaaaaaaaaaaaa",  /* one character */
        "abcdefghijklmnop",  /* one kind of character */
        "Password2024!",     /* a common password dressed up */
        "P@ssw0rd",          /* common (and short) */
    };
    const char *messages[sizeof weak / sizeof weak[0]];
    for (size_t i = 0; i < sizeof weak / sizeof weak[0]; i++) {
        Ncc__Directory__CreateUser create = NCC__DIRECTORY__CREATE_USER__INIT;
        char *roles[] = {"operator"};
        create.login = "tanaka.op";
        create.name = "田中";
        create.roles = roles;
        create.n_roles = 1;
        create.password = (char *)weak[i];
        Ncc__Error *error = s_error(d, &s_admin, &create.base, &ncc__directory__user__descriptor,
                                    422, "invalid_field");
        cr_assert_str_eq(error->field, "password", "password %zu", i);
        cr_assert_null(strstr(error->message, weak[i]), "the message quotes the password");
        messages[i] = strdup(error->message);
        ncc__error__free_unpacked(error, NULL);
    }
    cr_assert(strstr(messages[0], "12"), "%s", messages[0]);
    cr_assert(strstr(messages[1], "login"), "%s", messages[1]);
    cr_assert(strstr(messages[4], "common"), "%s", messages[4]);
    for (size_t i = 0; i < sizeof weak / sizeof weak[0]; i++)
        free((char *)messages[i]);
    cr_assert_eq(s_sql_long(s_db.owner_url, "SELECT count(*) FROM directory.users"), 1);

    /* A good one passes; a weak new password is refused the same way. */
    Ncc__Directory__User *user = s_create_user(d, "tanaka.op", "operator", USER_PASSWORD, NULL);
    char user_id[24];
    snprintf(user_id, sizeof user_id, "%" PRId64, user->id);
    Ncc__Directory__ChangePassword change = NCC__DIRECTORY__CHANGE_PASSWORD__INIT;
    change.has_user_id = true;
    change.user_id = user->id;
    change.current_password = USER_PASSWORD;
    change.new_password = "tanaka.op-Tanaka.op-1";
    ncc_ctx_t own = {.actor_id = user_id, .actor_role = "operator", .actor_address = "192.0.2.5"};
    Ncc__Error *error =
        s_error(d, &own, &change.base, &ncc__directory__user__descriptor, 422, "invalid_field");
    cr_assert_str_eq(error->field, "new_password");
    ncc__error__free_unpacked(error, NULL);

    /* The user changes their own password, with the current one. */
    change.new_password = "Kuyakusho-Soudan-2026?";
    Ncc__Directory__User *changed = s_ok(d, &own, &change.base, &ncc__directory__user__descriptor);
    cr_assert_eq(changed->version, user->version + 1);
    protobuf_c_message_free_unpacked(&changed->base, NULL);
    s_login_fails(d, "192.0.2.5", "tanaka.op", USER_PASSWORD, NULL, 401, "invalid_credentials");
    Ncc__Directory__AuthResult *result =
        s_login_ok(d, "192.0.2.5", "tanaka.op", "Kuyakusho-Soudan-2026?", NULL);
    protobuf_c_message_free_unpacked(&result->base, NULL);
    protobuf_c_message_free_unpacked(&user->base, NULL);
    s_daemon_stop(d);
}

/* ---- sign-in ------------------------------------------------------------------------------ */

static long long s_time_login_failure(daemon_t *d, const char *login)
{
    long long start = ncct_now_ms();
    s_login_fails(d, "192.0.2.77", login, "Wrong-Password-123", NULL, 401, "invalid_credentials");
    return ncct_now_ms() - start;
}

Test(directory, sign_in_works_and_unknown_login_answers_like_a_wrong_password)
{
    /* A realistic Argon2 cost (16 MiB) so that skipping it would show. */
    const char *extra[] = {"NCC_ARGON2_MEMORY_KIB=16384", NULL};
    daemon_t *d = s_start("signin", extra);
    Ncc__Directory__User *user = s_create_user(d, "kato.op", "operator", USER_PASSWORD, NULL);

    Ncc__Directory__AuthResult *result =
        s_login_ok(d, "192.0.2.30", "Kato.OP", USER_PASSWORD, NULL);
    cr_assert_not_null(result->user);
    cr_assert_eq(result->user->id, user->id);
    cr_assert_str_eq(result->user->roles[0], "operator");
    protobuf_c_message_free_unpacked(&result->base, NULL);

    Ncc__Error *wrong = s_login_error(d, "192.0.2.30", "kato.op", "Not-The-Password-9", NULL, 401,
                                      "invalid_credentials");
    Ncc__Error *unknown = s_login_error(d, "192.0.2.30", "nobody.here", USER_PASSWORD, NULL, 401,
                                        "invalid_credentials");
    cr_assert_str_eq(wrong->message, unknown->message, "the answers differ");
    cr_assert_eq(wrong->field, unknown->field);
    ncc__error__free_unpacked(wrong, NULL);
    ncc__error__free_unpacked(unknown, NULL);

    /* Similar time: the unknown login pays for one Argon2id verification too. */
    long long known_ms = 0, unknown_ms = 0;
    for (int i = 0; i < 2; i++) {
        known_ms += s_time_login_failure(d, "kato.op");
        unknown_ms += s_time_login_failure(d, "ghost.user");
    }
    cr_log_info("wrong password %lld ms, unknown login %lld ms", known_ms, unknown_ms);
    cr_assert_gt(unknown_ms * 2, known_ms, "unknown login answered much faster (%lld vs %lld ms)",
                 unknown_ms, known_ms);

    /* A retired user cannot sign in, with the same answer. */
    Ncc__Directory__DeleteUser retire = NCC__DIRECTORY__DELETE_USER__INIT;
    retire.has_id = true;
    retire.id = user->id;
    Ncc__Directory__User *retired =
        s_ok(d, &s_admin, &retire.base, &ncc__directory__user__descriptor);
    protobuf_c_message_free_unpacked(&retired->base, NULL);
    s_login_fails(d, "192.0.2.31", "kato.op", USER_PASSWORD, NULL, 401, "invalid_credentials");

    /* All of it is in the audit log, with the caller's address. */
    Ncc__Directory__AuditList *audit = s_audit(d, "kato.op", "login");
    cr_assert_eq(s_count(audit, "login", "success", NULL), 1);
    cr_assert_eq(s_count(audit, "login", "failure", "wrong_password"), 3);
    cr_assert_eq(s_count(audit, "login", "failure", "inactive"), 1);
    cr_assert_str_eq(audit->items[0]->address, "192.0.2.31");
    protobuf_c_message_free_unpacked(&audit->base, NULL);
    audit = s_audit(d, "nobody.here", "login");
    cr_assert_eq(s_count(audit, "login", "failure", "unknown_login"), 1);
    protobuf_c_message_free_unpacked(&audit->base, NULL);
    protobuf_c_message_free_unpacked(&user->base, NULL);
    s_daemon_stop(d);
}

Test(directory, five_failures_lock_the_account_for_a_while)
{
    daemon_t *d = s_start("lockout", NULL);
    Ncc__Directory__User *user = s_create_user(d, "ito.op", "operator", USER_PASSWORD, NULL);

    for (int i = 0; i < 4; i++)
        s_login_fails(d, "192.0.2.40", "ito.op", "Guess-Number-1234", NULL, 401,
                      "invalid_credentials");
    /* The fifth failure locks: from then on even the right password gets 423. */
    Ncc__Error *error =
        s_login_error(d, "192.0.2.41", "ito.op", "Guess-Number-5678", NULL, 423, "account_locked");
    cr_assert(strstr(error->message, "+09:00"), "no end time: %s", error->message);
    ncc__error__free_unpacked(error, NULL);
    s_login_fails(d, "192.0.2.42", "ito.op", USER_PASSWORD, NULL, 423, "account_locked");
    long remaining = s_sql_long(s_db.owner_url, "SELECT extract(epoch FROM locked_until - now()) "
                                                "FROM directory.users WHERE login = 'ito.op'");
    cr_assert(remaining > 800 && remaining <= 900, "locked for %ld s, expected 15 minutes",
              remaining);

    Ncc__Directory__AuditList *audit = s_audit(d, "ito.op", NULL);
    cr_assert_eq(s_count(audit, "login", "failure", "wrong_password"), 5);
    cr_assert_eq(s_count(audit, "account.locked", "success", NULL), 1);
    cr_assert_eq(s_count(audit, "login", "failure", "account_locked"), 1);
    protobuf_c_message_free_unpacked(&audit->base, NULL);
    Ncc__Directory__GetUser get = NCC__DIRECTORY__GET_USER__INIT;
    get.has_id = true;
    get.id = user->id;
    Ncc__Directory__User *read = s_ok(d, &s_admin, &get.base, &ncc__directory__user__descriptor);
    cr_assert_not_null(read->locked_until);

    /* An administrator unlocks it. */
    Ncc__Directory__UpdateUser update = NCC__DIRECTORY__UPDATE_USER__INIT;
    update.has_id = update.has_version = update.has_unlock = true;
    update.id = user->id;
    update.version = read->version;
    update.unlock = true;
    protobuf_c_message_free_unpacked(&read->base, NULL);
    read = s_ok(d, &s_admin, &update.base, &ncc__directory__user__descriptor);
    cr_assert_null(read->locked_until);
    protobuf_c_message_free_unpacked(&read->base, NULL);
    Ncc__Directory__AuthResult *result = s_login_ok(d, "192.0.2.42", "ito.op", USER_PASSWORD, NULL);
    protobuf_c_message_free_unpacked(&result->base, NULL);
    audit = s_audit(d, "admin", "account.unlocked");
    cr_assert_eq(audit->total, 1);
    protobuf_c_message_free_unpacked(&audit->base, NULL);
    protobuf_c_message_free_unpacked(&user->base, NULL);
    s_daemon_stop(d);
}

Test(directory, twenty_failures_from_one_address_get_429)
{
    daemon_t *d = s_start("address", NULL);
    Ncc__Directory__User *user = s_create_user(d, "kimura.op", "operator", USER_PASSWORD, NULL);
    /* Different unknown logins: no account lock, only the address counts. */
    for (int i = 0; i < 20; i++) {
        char login[32];
        snprintf(login, sizeof login, "spray%02d", i);
        s_login_fails(d, "203.0.113.9", login, "Spray-Password-2024", NULL, 401,
                      "invalid_credentials");
    }
    s_login_fails(d, "203.0.113.9", "kimura.op", USER_PASSWORD, NULL, 429, "too_many_attempts");
    /* Another address is not affected. */
    Ncc__Directory__AuthResult *result =
        s_login_ok(d, "203.0.113.10", "kimura.op", USER_PASSWORD, NULL);
    protobuf_c_message_free_unpacked(&result->base, NULL);
    cr_assert_eq(s_sql_long(s_db.owner_url,
                            "SELECT count(*) FROM directory.audit_log "
                            "WHERE action = 'login' AND detail = 'too_many_attempts' "
                            "AND address = '203.0.113.9'"),
                 1);
    protobuf_c_message_free_unpacked(&user->base, NULL);
    s_daemon_stop(d);
}

Test(directory, administrators_need_totp_and_a_code_works_once)
{
    daemon_t *d = s_start("totp", NULL);

    /* An administrator without a TOTP secret cannot sign in at all. */
    Ncc__Directory__User *bare = s_create_user(d, "nakamura.adm", "admin", USER_PASSWORD, NULL);
    cr_assert_not(bare->totp_enabled);
    Ncc__Error *error =
        s_login_error(d, "192.0.2.50", "nakamura.adm", USER_PASSWORD, NULL, 401, "totp_required");
    cr_assert(strstr(error->message, "enrol"), "%s", error->message);
    ncc__error__free_unpacked(error, NULL);

    /* Enrolled (secret stored encrypted), the code is required and checked. */
    Ncc__Directory__UpdateUser update = NCC__DIRECTORY__UPDATE_USER__INIT;
    update.has_id = update.has_version = true;
    update.id = bare->id;
    update.version = bare->version;
    update.totp_secret = "gezd gnbv gy3t qojq gezd gnbv gy3t qojq";
    Ncc__Directory__User *enrolled =
        s_ok(d, &s_admin, &update.base, &ncc__directory__user__descriptor);
    cr_assert(enrolled->totp_enabled);
    cr_assert_null(enrolled->totp_secret, "the secret came back");
    protobuf_c_message_free_unpacked(&enrolled->base, NULL);
    PGresult *res =
        s_sql(s_db.owner_url,
              "SELECT totp_secret FROM directory.users WHERE login = 'nakamura.adm'", NULL);
    cr_assert_not_null(res);
    cr_assert_eq(strncmp(PQgetvalue(res, 0, 0), "v1:", 3), 0);
    cr_assert_null(strstr(PQgetvalue(res, 0, 0), "GEZDGNBV"), "stored in clear");
    PQclear(res);

    /* Password first, then the code: asking for it is not a failed attempt. */
    for (int i = 0; i < 6; i++)
        s_login_fails(d, "192.0.2.50", "nakamura.adm", USER_PASSWORD, NULL, 401, "totp_required");
    char code[7];
    s_totp_now("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", code);
    char wrong[16];
    snprintf(wrong, sizeof wrong, "%06ld", (strtol(code, NULL, 10) + 500000) % 1000000);
    s_login_fails(d, "192.0.2.50", "nakamura.adm", USER_PASSWORD, wrong, 401, "invalid_totp");
    /* The right password, the right code: in. */
    Ncc__Directory__AuthResult *result =
        s_login_ok(d, "192.0.2.50", "nakamura.adm", USER_PASSWORD, code);
    cr_assert_str_eq(result->user->login, "nakamura.adm");
    protobuf_c_message_free_unpacked(&result->base, NULL);
    /* The same code again is a replay. */
    error =
        s_login_error(d, "192.0.2.51", "nakamura.adm", USER_PASSWORD, code, 401, "invalid_totp");
    cr_assert(strstr(error->message, "already used"), "%s", error->message);
    ncc__error__free_unpacked(error, NULL);

    /* The bootstrap administrator signs in with the configured secret. */
    s_totp_now(ADMIN_TOTP, code);
    result = s_login_ok(d, "192.0.2.52", "admin", ADMIN_PASSWORD, code);
    protobuf_c_message_free_unpacked(&result->base, NULL);

    Ncc__Directory__AuditList *audit = s_audit(d, "nakamura.adm", "login");
    cr_assert_eq(s_count(audit, "login", "failure", "totp_required"), 1);
    cr_assert_eq(s_count(audit, "login", "failure", "totp_missing"), 6);
    cr_assert_eq(s_count(audit, "login", "failure", "invalid_totp"), 1);
    cr_assert_eq(s_count(audit, "login", "failure", "totp_replay"), 1);
    cr_assert_eq(s_count(audit, "login", "success", "password and TOTP"), 1);
    protobuf_c_message_free_unpacked(&audit->base, NULL);
    protobuf_c_message_free_unpacked(&bare->base, NULL);
    s_daemon_stop(d);
}

/* ---- roles and actor proofs ------------------------------------------------------------------ */

Test(directory, roles_and_actor_proofs_are_enforced)
{
    daemon_t *d = s_start("roles", NULL);
    Ncc__Directory__User *op = s_create_user(d, "yamamoto.op", "operator", USER_PASSWORD, NULL);
    Ncc__Directory__User *other = s_create_user(d, "hayashi.op", "operator", USER_PASSWORD, NULL);
    char op_id[24];
    snprintf(op_id, sizeof op_id, "%" PRId64, op->id);
    ncc_ctx_t operator= {
        .actor_id = op_id, .actor_role = "operator", .actor_address = "192.0.2.60"};
    ncc_ctx_t staff = {.actor_id = op_id, .actor_role = "staff"};
    ncc_ctx_t supervisor = {.actor_id = op_id, .actor_role = "supervisor"};

    /* User management is for administrators. */
    Ncc__Directory__CreateUser create = NCC__DIRECTORY__CREATE_USER__INIT;
    char *roles[] = {"admin"};
    create.login = "intruder";
    create.name = "x";
    create.roles = roles;
    create.n_roles = 1;
    create.password = USER_PASSWORD;
    s_expect_error(d, &operator, & create.base, &ncc__directory__user__descriptor, 403,
                   "forbidden");
    s_expect_error(d, &s_system, &create.base, &ncc__directory__user__descriptor, 403, "forbidden");
    Ncc__Directory__ListUsers list = NCC__DIRECTORY__LIST_USERS__INIT;
    s_expect_error(d, &supervisor, &list.base, &ncc__directory__user_list__descriptor, 403,
                   "forbidden");
    /* A user reads themself, not others. */
    Ncc__Directory__GetUser get = NCC__DIRECTORY__GET_USER__INIT;
    get.has_id = true;
    get.id = op->id;
    Ncc__Directory__User *self = s_ok(d, &operator, & get.base, &ncc__directory__user__descriptor);
    protobuf_c_message_free_unpacked(&self->base, NULL);
    get.id = other->id;
    s_expect_error(d, &operator, & get.base, &ncc__directory__user__descriptor, 403, "forbidden");

    /* Sign-in and extension look-up are for daemons only. */
    Ncc__Directory__Authenticate auth = NCC__DIRECTORY__AUTHENTICATE__INIT;
    auth.login = "yamamoto.op";
    auth.password = USER_PASSWORD;
    s_expect_error(d, &operator, & auth.base, &ncc__directory__auth_result__descriptor, 403,
                   "forbidden");
    s_expect_error(d, &s_admin, &auth.base, &ncc__directory__auth_result__descriptor, 403,
                   "forbidden");
    Ncc__Directory__FindByExtension find = NCC__DIRECTORY__FIND_BY_EXTENSION__INIT;
    find.extension = "1";
    s_expect_error(d, &s_admin, &find.base, &ncc__directory__user__descriptor, 403, "forbidden");

    /* The audit log: supervisors and admins search it; staff and operators cannot;
     * only daemons append. */
    Ncc__Directory__AuditSearch search = NCC__DIRECTORY__AUDIT_SEARCH__INIT;
    s_expect_error(d, &staff, &search.base, &ncc__directory__audit_list__descriptor, 403,
                   "forbidden");
    s_expect_error(d, &operator, & search.base, &ncc__directory__audit_list__descriptor, 403,
                   "forbidden");
    Ncc__Directory__AuditList *found =
        s_ok(d, &supervisor, &search.base, &ncc__directory__audit_list__descriptor);
    cr_assert_gt(found->total, 0);
    protobuf_c_message_free_unpacked(&found->base, NULL);
    Ncc__Directory__AuditAppend append = NCC__DIRECTORY__AUDIT_APPEND__INIT;
    append.action = "record.exported";
    s_expect_error(d, &s_admin, &append.base, &ncc__directory__audit_entry__descriptor, 403,
                   "forbidden");

    /* Passwords: one's own, or an administrator's doing. */
    Ncc__Directory__ChangePassword change = NCC__DIRECTORY__CHANGE_PASSWORD__INIT;
    change.has_user_id = true;
    change.user_id = other->id;
    change.new_password = "Hijacked-Password-77";
    s_expect_error(d, &operator, & change.base, &ncc__directory__user__descriptor, 403,
                   "forbidden");
    change.current_password = "Not-My-Password-11";
    change.user_id = op->id;
    s_expect_error(d, &operator, & change.base, &ncc__directory__user__descriptor, 422,
                   "invalid_field");
    change.user_id = other->id;
    change.current_password = NULL;
    Ncc__Directory__User *reset =
        s_ok(d, &s_admin, &change.base, &ncc__directory__user__descriptor);
    protobuf_c_message_free_unpacked(&reset->base, NULL);

    /* A forged actor: signed with another key, or not signed at all. */
    char forged_key[32];
    cr_assert_eq(RAND_bytes((unsigned char *)forged_key, sizeof forged_key), 1);
    cr_assert_eq(ncc_actor_key_set((const uint8_t *)forged_key, sizeof forged_key), 0);
    s_expect_error(d, &s_admin, &list.base, &ncc__directory__user_list__descriptor, 401,
                   "invalid_actor");
    s_expect_error(d, &s_system, &auth.base, &ncc__directory__auth_result__descriptor, 401,
                   "invalid_actor");
    ncc_actor_key_set(NULL, 0);
    s_expect_error(d, &s_admin, &create.base, &ncc__directory__user__descriptor, 401,
                   "invalid_actor");
    cr_assert_eq(ncc_actor_key_from_env(), 0);
    cr_assert_eq(s_sql_long(s_db.owner_url, "SELECT count(*) FROM directory.users "
                                            "WHERE login = 'intruder'"),
                 0);
    protobuf_c_message_free_unpacked(&op->base, NULL);
    protobuf_c_message_free_unpacked(&other->base, NULL);
    s_daemon_stop(d);
}

/* ---- the audit log ------------------------------------------------------------------------------
 */

static void s_owner_sql_ok(const char *sql)
{
    char state[6];
    PGresult *res = s_sql(s_db.owner_url, sql, state);
    cr_assert_not_null(res, "%s: SQLSTATE %s", sql, state);
    PQclear(res);
}

/* Changes the audit log as its owner would have to: with the triggers off. */
static void s_owner_tamper(const char *statement)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "BEGIN; ALTER TABLE directory.audit_log DISABLE TRIGGER audit_log_no_update_delete; "
             "%s; ALTER TABLE directory.audit_log ENABLE TRIGGER audit_log_no_update_delete; "
             "COMMIT",
             statement);
    s_owner_sql_ok(sql);
}

/* The hash of entry `seq` recomputed here from the documented canonical
 * form (docs/directory.md), independently of services/directory/audit_chain.c. */
static void s_check_documented_hash(int64_t seq)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT (extract(epoch from at) * 1000000)::bigint, actor_id, actor_login, "
             "actor_role, address, action, target, outcome, detail, hash, "
             "coalesce((SELECT hash FROM directory.audit_log p WHERE p.seq = a.seq - 1), "
             "repeat('0', 64)) FROM directory.audit_log a WHERE seq = %" PRId64,
             seq);
    PGresult *res = s_sql(s_db.owner_url, sql, NULL);
    cr_assert_not_null(res);
    cr_assert_eq(PQntuples(res), 1);
    char seq_text[24];
    snprintf(seq_text, sizeof seq_text, "%" PRId64, seq);
    const char *fields[] = {seq_text,
                            PQgetvalue(res, 0, 0),
                            PQgetvalue(res, 0, 1),
                            PQgetvalue(res, 0, 2),
                            PQgetvalue(res, 0, 3),
                            PQgetvalue(res, 0, 4),
                            PQgetvalue(res, 0, 5),
                            PQgetvalue(res, 0, 6),
                            PQgetvalue(res, 0, 7),
                            PQgetvalue(res, 0, 8)};
    char canonical[8192];
    size_t n = (size_t)snprintf(canonical, sizeof canonical, "%s\n", PQgetvalue(res, 0, 10));
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        n += (size_t)snprintf(canonical + n, sizeof canonical - n, "%zu:%s\n", strlen(fields[i]),
                              fields[i]);
    cr_assert_lt(n, sizeof canonical);
    char expected[65];
    ncc_sha256_hex(canonical, n, expected);
    cr_assert_str_eq(PQgetvalue(res, 0, 9), expected, "entry %" PRId64 " hash differs from docs",
                     seq);
    PQclear(res);
}

/* Runs ncc-audit (when built) on the test database; returns its exit status. */
static int s_run_ncc_audit(const char *anchor, char *out, size_t len)
{
    char path[512], command[2048];
    snprintf(path, sizeof path, "%s/ncc-audit", ncct_bin_dir());
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    snprintf(command, sizeof command, "NCC_DATABASE_URL='%s' '%s' verify %s%s 2>&1", s_db.url, path,
             anchor ? "--anchor " : "", anchor ? anchor : "");
    FILE *pipe = popen(command, "r");
    cr_assert_not_null(pipe);
    size_t n = fread(out, 1, len - 1, pipe);
    out[n] = '\0';
    int status = pclose(pipe);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -2;
}

Test(directory, the_audit_chain_verifies_and_reveals_an_owner_edit)
{
    daemon_t *d = s_start("chain", NULL);
    for (int i = 0; i < 5; i++) {
        Ncc__Directory__AuditAppend append = NCC__DIRECTORY__AUDIT_APPEND__INIT;
        char detail[64];
        snprintf(detail, sizeof detail, "export %d: 応対履歴 CSV", i);
        append.action = "record.exported";
        append.target = "records";
        append.outcome = "success";
        append.detail = detail;
        append.actor_id = s_admin_id;
        ncc_ctx_t gateway = s_system;
        gateway.actor_address = "192.0.2.99";
        Ncc__Directory__AuditEntry *entry =
            s_ok(d, &gateway, &append.base, &ncc__directory__audit_entry__descriptor);
        cr_assert_gt(entry->seq, 1);
        cr_assert_str_eq(entry->actor_login, "admin", "the login is looked up");
        cr_assert_str_eq(entry->address, "192.0.2.99");
        cr_assert_eq(strlen(entry->hash), 64);
        protobuf_c_message_free_unpacked(&entry->base, NULL);
    }
    long entries = s_sql_long(s_db.owner_url, "SELECT count(*) FROM directory.audit_log");
    s_check_documented_hash(1);
    s_check_documented_hash(2);
    long seq_max = s_sql_long(s_db.owner_url, "SELECT max(seq) FROM directory.audit_log");
    cr_assert_eq(entries, seq_max, "seq has gaps");

    Ncc__Directory__AuditVerifyResult *result = s_verify(d, 0, NULL);
    cr_assert(result->ok, "%s", result->message);
    cr_assert_eq(result->entries, entries);
    cr_assert_eq(result->last_seq, seq_max);
    cr_assert_eq(strlen(result->last_hash), 64);
    int64_t anchor_seq = result->last_seq;
    char anchor_hash[65];
    snprintf(anchor_hash, sizeof anchor_hash, "%s", result->last_hash);
    protobuf_c_message_free_unpacked(&result->base, NULL);
    char output[2048], anchor[96];
    snprintf(anchor, sizeof anchor, "%" PRId64 ":%s", anchor_seq, anchor_hash);
    int status = s_run_ncc_audit(NULL, output, sizeof output);
    if (status >= 0) {
        cr_assert_eq(status, 0, "ncc-audit: %s", output);
        cr_assert(strstr(output, anchor_hash), "ncc-audit does not print the last hash: %s",
                  output);
    }

    /* The owner edits one field of entry 3 behind the daemon's back. */
    PGresult *res =
        s_sql(s_db.owner_url, "SELECT detail FROM directory.audit_log WHERE seq = 3", NULL);
    cr_assert_not_null(res);
    char original[256];
    snprintf(original, sizeof original, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    s_owner_tamper("UPDATE directory.audit_log SET detail = 'nothing happened' WHERE seq = 3");
    result = s_verify(d, 0, NULL);
    cr_assert_not(result->ok);
    cr_assert(result->has_first_bad_seq);
    cr_assert_eq(result->first_bad_seq, 3, "reported %" PRId64, result->first_bad_seq);
    protobuf_c_message_free_unpacked(&result->base, NULL);
    status = s_run_ncc_audit(NULL, output, sizeof output);
    if (status >= 0) {
        cr_assert_eq(status, 1, "ncc-audit: %s", output);
        cr_assert(strstr(output, "first_bad_seq=3"), "%s", output);
    }

    /* Put back, it holds again; then a deleted entry is a gap. */
    char sql[512];
    char *escaped = NULL;
    {
        PGconn *conn = PQconnectdb(s_db.owner_url);
        escaped = PQescapeLiteral(conn, original, strlen(original));
        PQfinish(conn);
    }
    snprintf(sql, sizeof sql, "UPDATE directory.audit_log SET detail = %s WHERE seq = 3", escaped);
    PQfreemem(escaped);
    s_owner_tamper(sql);
    result = s_verify(d, anchor_seq, anchor_hash);
    cr_assert(result->ok, "%s", result->message);
    protobuf_c_message_free_unpacked(&result->base, NULL);
    s_owner_tamper("DELETE FROM directory.audit_log WHERE seq = 4");
    result = s_verify(d, 0, NULL);
    cr_assert_not(result->ok);
    cr_assert_eq(result->first_bad_seq, 4);
    cr_assert(strstr(result->message, "missing"), "%s", result->message);
    protobuf_c_message_free_unpacked(&result->base, NULL);

    /* Dropping the tail leaves a chain that holds, but not the kept anchor. */
    s_owner_tamper("DELETE FROM directory.audit_log WHERE seq >= 4");
    result = s_verify(d, 0, NULL);
    cr_assert(result->ok, "%s", result->message);
    protobuf_c_message_free_unpacked(&result->base, NULL);
    result = s_verify(d, anchor_seq, anchor_hash);
    cr_assert_not(result->ok, "a removed tail went unnoticed with the anchor");
    protobuf_c_message_free_unpacked(&result->base, NULL);
    status = s_run_ncc_audit(anchor, output, sizeof output);
    if (status >= 0)
        cr_assert_eq(status, 1, "ncc-audit with the anchor: %s", output);
    s_daemon_stop(d);
}

Test(directory, the_application_role_cannot_rewrite_the_audit_log)
{
    daemon_t *d = s_start("grants", NULL);
    cr_assert_str_neq(s_db.url, s_db.owner_url);
    /* What the daemons run as: SELECT and INSERT, nothing more. */
    PGresult *res = s_sql(s_db.url,
                          "SELECT has_table_privilege('directory.audit_log', 'SELECT'), "
                          "has_table_privilege('directory.audit_log', 'INSERT'), "
                          "has_table_privilege('directory.audit_log', 'UPDATE'), "
                          "has_table_privilege('directory.audit_log', 'DELETE'), "
                          "has_table_privilege('directory.audit_log', 'TRUNCATE'), "
                          "has_table_privilege('directory.users', 'UPDATE')",
                          NULL);
    cr_assert_not_null(res);
    cr_assert_str_eq(PQgetvalue(res, 0, 0), "t");
    cr_assert_str_eq(PQgetvalue(res, 0, 1), "t");
    cr_assert_str_eq(PQgetvalue(res, 0, 2), "f", "the application role may UPDATE the audit log");
    cr_assert_str_eq(PQgetvalue(res, 0, 3), "f", "the application role may DELETE the audit log");
    cr_assert_str_eq(PQgetvalue(res, 0, 4), "f");
    cr_assert_str_eq(PQgetvalue(res, 0, 5), "t");
    PQclear(res);
    char state[6];
    cr_assert_null(s_sql(s_db.url, "UPDATE directory.audit_log SET detail = 'x'", state));
    cr_assert_str_eq(state, "42501");
    cr_assert_null(s_sql(s_db.url, "DELETE FROM directory.audit_log", state));
    cr_assert_str_eq(state, "42501");
    /* Even the owner meets the triggers unless it disables them first. */
    cr_assert_null(s_sql(s_db.owner_url, "UPDATE directory.audit_log SET detail = 'x'", state));
    cr_assert_str_eq(state, "P0001");
    cr_assert_null(s_sql(s_db.owner_url, "TRUNCATE directory.audit_log", state));
    cr_assert_str_eq(state, "P0001");
    res = s_sql(s_db.owner_url,
                "SELECT obj_description('directory.audit_log'::regclass, 'pg_class')", NULL);
    cr_assert_not_null(res);
    cr_assert(strstr(PQgetvalue(res, 0, 0), "ncc:append-only"));
    PQclear(res);
    s_daemon_stop(d);
}
