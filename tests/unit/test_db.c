/* Tests for ncc/db.h against the real PostgreSQL named by NCC_DATABASE_URL
 * (`scripts/pg.sh start; . var/env`). Each test works in its own schema,
 * test_db_<pid>, dropped at the end. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ncc/db.h"
#include "ncc/log.h"

static char schema[64];
static const char *url;
static ncc_db_t *db;

static void setup(void)
{
    ncc_log_init("test_db", NCC_LOG_ERROR); /* the expected FATAL notices stay quiet */
    url = getenv("NCC_DATABASE_URL");
    cr_assert(url && url[0], "NCC_DATABASE_URL is not set: run scripts/pg.sh start; . var/env");
    snprintf(schema, sizeof schema, "test_db_%ld", (long)getpid());
    db = ncc_db_new(url, schema);
    cr_assert_not_null(db);
    cr_assert_eq(ncc_db_connect(db), 0, "connect: %s", ncc_db_error(db));
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE SCHEMA %s", schema);
    cr_assert_eq(ncc_db_run(db, sql, 0, NULL), 0, "%s", ncc_db_error(db));
}

/* Drops `name` (and everything in it) through a fresh connection. */
static void drop_schema(const char *name)
{
    ncc_db_t *admin = ncc_db_new(url, NULL);
    if (!admin || ncc_db_connect(admin) < 0) {
        ncc_db_destroy(&admin);
        return;
    }
    PGconn *conn = ncc_db_conn(admin);
    char *ident = PQescapeIdentifier(conn, name, strlen(name));
    char sql[256];
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", ident);
    PQfreemem(ident);
    ncc_db_run(admin, sql, 0, NULL);
    ncc_db_destroy(&admin);
}

static void teardown(void)
{
    ncc_db_destroy(&db);
    cr_assert_null(db, "destroy nulls the pointer");
    if (url)
        drop_schema(schema);
}

TestSuite(db, .init = setup, .fini = teardown);

/* Runs SQL that must succeed. */
static void must(ncc_db_t *handle, const char *sql)
{
    cr_assert_eq(ncc_db_run(handle, sql, 0, NULL), 0, "%s: %s", sql, ncc_db_error(handle));
}

static long count(ncc_db_t *handle, const char *sql, const char *param)
{
    const char *params[] = {param};
    PGresult *res = ncc_db_exec(handle, sql, param ? 1 : 0, params, NULL);
    cr_assert_not_null(res, "%s: %s", sql, ncc_db_error(handle));
    long n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return n;
}

static int backend_pid(ncc_db_t *handle)
{
    PGconn *conn = ncc_db_conn(handle);
    cr_assert_not_null(conn);
    return PQbackendPID(conn);
}

/* Terminates handle's backend from another connection and waits until it is gone. */
static void terminate_backend(ncc_db_t *handle)
{
    char pid[16];
    snprintf(pid, sizeof pid, "%d", backend_pid(handle));
    ncc_db_t *admin = ncc_db_new(url, NULL);
    cr_assert_eq(ncc_db_connect(admin), 0, "%s", ncc_db_error(admin));
    const char *params[] = {pid};
    PGresult *res = ncc_db_exec(admin, "SELECT pg_terminate_backend($1::int)", 1, params, NULL);
    cr_assert_not_null(res, "%s", ncc_db_error(admin));
    cr_assert_str_eq(PQgetvalue(res, 0, 0), "t");
    PQclear(res);
    for (int i = 0; i < 100; i++) {
        if (count(admin, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int", pid) == 0)
            break;
        usleep(50 * 1000);
    }
    ncc_db_destroy(&admin);
}

Test(db, search_path_is_the_schema)
{
    PGresult *res = ncc_db_exec(db, "SELECT current_schema()", 0, NULL, NULL);
    cr_assert_not_null(res, "%s", ncc_db_error(db));
    cr_assert_str_eq(PQgetvalue(res, 0, 0), schema);
    PQclear(res);
    must(db, "CREATE TABLE here (id int)");
    cr_assert_eq(count(db,
                       "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = "
                       "'here'",
                       schema),
                 1, "unqualified names land in the handle's schema");
}

Test(db, exec_stores_parameters_verbatim)
{
    must(db, "CREATE TABLE t (id int PRIMARY KEY, s text)");
    const char *values[] = {
        "'; DROP TABLE t; --",
        "Robert'); DROP TABLE students;--",
        "$1 $2 \\ \\\\ '' \"",
        "印鑑証明 ｶﾀｶﾅ 😀",
        "E'\\x41'",
        "",
    };
    size_t n = sizeof values / sizeof values[0];
    for (size_t i = 0; i < n; i++) {
        char id[8];
        snprintf(id, sizeof id, "%zu", i);
        const char *params[] = {id, values[i]};
        char state[6] = "xxxxx";
        PGresult *res = ncc_db_exec(db, "INSERT INTO t (id, s) VALUES ($1, $2)", 2, params, state);
        cr_assert_not_null(res, "%s", ncc_db_error(db));
        cr_assert_str_eq(state, "", "sqlstate cleared on success");
        cr_assert_str_eq(PQcmdTuples(res), "1");
        PQclear(res);
    }
    const char *null_params[] = {"99", NULL};
    cr_assert_eq(ncc_db_run(db, "INSERT INTO t (id, s) VALUES ($1, $2)", 2, null_params), 0, "%s",
                 ncc_db_error(db));

    PGresult *res = ncc_db_exec(db, "SELECT id, s FROM t ORDER BY id", 0, NULL, NULL);
    cr_assert_not_null(res, "%s", ncc_db_error(db));
    cr_assert_eq(PQntuples(res), (int)n + 1, "the table survived every value");
    for (size_t i = 0; i < n; i++) {
        cr_assert_not(PQgetisnull(res, (int)i, 1));
        cr_assert_str_eq(PQgetvalue(res, (int)i, 1), values[i], "row %zu", i);
    }
    cr_assert(PQgetisnull(res, (int)n, 1), "a NULL parameter is SQL NULL");
    PQclear(res);
}

Test(db, sqlstate_on_unique_violation)
{
    must(db, "CREATE TABLE u (id int PRIMARY KEY)");
    const char *params[] = {"1"};
    cr_assert_eq(ncc_db_run(db, "INSERT INTO u VALUES ($1)", 1, params), 0);
    char state[6] = "";
    PGresult *res = ncc_db_exec(db, "INSERT INTO u VALUES ($1)", 1, params, state);
    cr_assert_null(res);
    cr_assert_str_eq(state, "23505");
    cr_assert_str_eq(ncc_db_sqlstate(db), "23505");
    cr_assert_not_null(strstr(ncc_db_error(db), "duplicate key"), "%s", ncc_db_error(db));
    cr_assert_null(strstr(ncc_db_error(db), "(id)=(1)"), "DETAIL with row values is left out");
    cr_assert_null(strchr(ncc_db_error(db), '\n'), "one line");

    /* A syntax error has its own code; success clears it. */
    res = ncc_db_exec(db, "SELEC 1", 0, NULL, state);
    cr_assert_null(res);
    cr_assert_str_eq(state, "42601");
    cr_assert_eq(ncc_db_run(db, "SELECT 1", 0, NULL), 0);
    cr_assert_str_eq(ncc_db_sqlstate(db), "");
    cr_assert_str_eq(ncc_db_error(db), "");
}

Test(db, transactions_commit_and_roll_back)
{
    must(db, "CREATE TABLE tx (id int PRIMARY KEY)");
    const char *one[] = {"1"}, *two[] = {"2"};
    cr_assert_not(ncc_db_in_transaction(db));
    cr_assert_eq(ncc_db_begin(db), 0, "%s", ncc_db_error(db));
    cr_assert(ncc_db_in_transaction(db));
    cr_assert_eq(ncc_db_begin(db), -EBUSY);
    cr_assert_eq(ncc_db_run(db, "INSERT INTO tx VALUES ($1)", 1, one), 0);
    cr_assert_eq(ncc_db_commit(db), 0, "%s", ncc_db_error(db));
    cr_assert_not(ncc_db_in_transaction(db));

    cr_assert_eq(ncc_db_begin(db), 0);
    cr_assert_eq(ncc_db_run(db, "INSERT INTO tx VALUES ($1)", 1, two), 0);
    ncc_db_rollback(db);
    cr_assert_not(ncc_db_in_transaction(db));
    ncc_db_rollback(db); /* harmless without a transaction */

    /* A failed statement poisons the transaction: COMMIT reports it. */
    cr_assert_eq(ncc_db_begin(db), 0);
    cr_assert_eq(ncc_db_run(db, "INSERT INTO tx VALUES ($1)", 1, two), 0);
    cr_assert_eq(ncc_db_run(db, "INSERT INTO tx VALUES ($1)", 1, one), -EIO);
    cr_assert_str_eq(ncc_db_sqlstate(db), "23505");
    cr_assert(ncc_db_in_transaction(db));
    cr_assert_eq(ncc_db_commit(db), -EIO, "commit of a failed transaction must fail");
    cr_assert_not(ncc_db_in_transaction(db));
    cr_assert_eq(count(db, "SELECT count(*) FROM tx", NULL), 1);

    /* The error of a failed statement survives the rollback. */
    cr_assert_eq(ncc_db_begin(db), 0);
    cr_assert_eq(ncc_db_run(db, "INSERT INTO tx VALUES ($1)", 1, one), -EIO);
    ncc_db_rollback(db);
    cr_assert_str_eq(ncc_db_sqlstate(db), "23505");
    cr_assert_not_null(strstr(ncc_db_error(db), "duplicate key"));
}

static const ncc_migration_t ordered[] = {
    {"001_log.sql", "CREATE TABLE log (id serial PRIMARY KEY, name text NOT NULL);\n"
                    "INSERT INTO log (name) VALUES ('001');\n"},
    {"002_items.sql", "CREATE TABLE items (id int PRIMARY KEY);\n"
                      "INSERT INTO log (name) VALUES ('002');\n"},
    {"003_items_name.sql", "ALTER TABLE items ADD COLUMN name text;\n"
                           "INSERT INTO items (id, name) VALUES (1, 'one');\n"
                           "INSERT INTO log (name) VALUES ('003');\n"},
    {NULL, NULL},
};

Test(db, migrate_applies_in_order_once)
{
    cr_assert_eq(ncc_db_migrate(db, schema, ordered), 0, "%s", ncc_db_error(db));
    cr_assert_eq(ncc_db_migrate(db, schema, ordered), 0, "second run: %s", ncc_db_error(db));
    /* A copy restarting later with one more migration applies only that one. */
    ncc_migration_t more[5];
    memcpy(more, ordered, sizeof ordered);
    more[3] = (ncc_migration_t){"004_more.sql", "INSERT INTO log (name) VALUES ('004');"};
    more[4] = (ncc_migration_t){NULL, NULL};
    cr_assert_eq(ncc_db_migrate(db, schema, more), 0, "%s", ncc_db_error(db));

    PGresult *res = ncc_db_exec(db, "SELECT name FROM log ORDER BY id", 0, NULL, NULL);
    cr_assert_not_null(res, "%s", ncc_db_error(db));
    cr_assert_eq(PQntuples(res), 4, "each migration ran exactly once");
    const char *expect[] = {"001", "002", "003", "004"};
    for (int i = 0; i < 4; i++)
        cr_assert_str_eq(PQgetvalue(res, i, 0), expect[i]);
    PQclear(res);
    cr_assert_eq(count(db, "SELECT count(*) FROM items", NULL), 1);

    cr_assert_eq(
        count(db, "SELECT count(*) FROM schema_migrations WHERE name NOT LIKE 'common/%'", NULL),
        4);
    cr_assert_eq(
        count(db, "SELECT count(*) FROM schema_migrations WHERE name = '002_items.sql'", NULL), 1);
    cr_assert_eq(
        count(db, "SELECT count(*) FROM schema_migrations WHERE name LIKE 'common/%'", NULL),
        (long)ncc_sql_common_count, "every common migration recorded as common/...");
    for (size_t i = 0; i < ncc_sql_common_count; i++) {
        char record[256];
        snprintf(record, sizeof record, "common/%s", ncc_sql_common[i].name);
        cr_assert_eq(count(db, "SELECT count(*) FROM schema_migrations WHERE name = $1", record), 1,
                     "%s", record);
    }
    cr_assert_eq(count(db,
                       "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = "
                       "pg_backend_pid()",
                       NULL),
                 0, "the advisory lock is released");
}

Test(db, migrate_creates_the_schema)
{
    drop_schema(schema);
    cr_assert_eq(ncc_db_migrate(db, schema, ordered), 0, "%s", ncc_db_error(db));
    cr_assert_eq(count(db, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema), 1);
    cr_assert_eq(count(db,
                       "SELECT count(*) FROM information_schema.columns WHERE table_schema = $1 "
                       "AND table_name = 'schema_migrations' AND column_name IN ('name', "
                       "'applied_at')",
                       schema),
                 2);
}

static const ncc_migration_t failing[] = {
    {"001_ok.sql", "CREATE TABLE ok (id int);"},
    {"002_bad.sql", "CREATE TABLE half (id int);\n"
                    "INSERT INTO half VALUES (1);\n"
                    "SELECT 1 / 0;\n"},
    {"003_never.sql", "CREATE TABLE never (id int);"},
    {NULL, NULL},
};

Test(db, failing_migration_rolls_back_and_names_the_file)
{
    cr_assert_eq(ncc_db_migrate(db, schema, failing), -EIO);
    const char *err = ncc_db_error(db);
    cr_assert_not_null(strstr(err, "002_bad.sql"), "error names the file: %s", err);
    cr_assert_not_null(strstr(err, "division by zero"), "%s", err);
    cr_assert_str_eq(ncc_db_sqlstate(db), "22012");
    cr_assert_not(ncc_db_in_transaction(db));

    cr_assert_eq(count(db,
                       "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = "
                       "'ok'",
                       schema),
                 1, "001 stays applied");
    cr_assert_eq(count(db,
                       "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = "
                       "'half'",
                       schema),
                 0, "002's transaction was rolled back");
    cr_assert_eq(count(db,
                       "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = "
                       "'never'",
                       schema),
                 0, "nothing after the failure runs");
    cr_assert_eq(
        count(db, "SELECT count(*) FROM schema_migrations WHERE name NOT LIKE 'common/%'", NULL),
        1);
    cr_assert_eq(count(db,
                       "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = "
                       "pg_backend_pid()",
                       NULL),
                 0, "the advisory lock is released after a failure");

    /* Another session can take the lock at once. */
    ncc_db_t *other = ncc_db_new(url, NULL);
    cr_assert_eq(ncc_db_connect(other), 0);
    const char *params[] = {schema};
    PGresult *res = ncc_db_exec(
        other, "SELECT pg_try_advisory_lock(hashtext('ncc.migrate.' || $1))", 1, params, NULL);
    cr_assert_not_null(res, "%s", ncc_db_error(other));
    cr_assert_str_eq(PQgetvalue(res, 0, 0), "t");
    PQclear(res);
    ncc_db_destroy(&other);

    /* Fixed, it goes on from 002. */
    ncc_migration_t fixed[4];
    memcpy(fixed, failing, sizeof failing);
    fixed[1].sql = "CREATE TABLE half (id int);";
    cr_assert_eq(ncc_db_migrate(db, schema, fixed), 0, "%s", ncc_db_error(db));
    cr_assert_eq(
        count(db, "SELECT count(*) FROM schema_migrations WHERE name NOT LIKE 'common/%'", NULL),
        3);
}

Test(db, syntax_error_in_a_migration_gives_the_line)
{
    static const ncc_migration_t typo[] = {
        {"001_typo.sql", "-- a comment with 日本語\nCREATE TABLE a (id int);\n\nSELEC 1;\n"},
        {NULL, NULL},
    };
    cr_assert_eq(ncc_db_migrate(db, schema, typo), -EIO);
    const char *err = ncc_db_error(db);
    cr_assert_not_null(strstr(err, "001_typo.sql"), "%s", err);
    cr_assert_not_null(strstr(err, "(line 4)"), "%s", err);
    cr_assert_str_eq(ncc_db_sqlstate(db), "42601");
}

static const ncc_migration_t slow[] = {
    {"001_counter.sql", "CREATE TABLE counter (n int);"},
    {"002_once.sql", "INSERT INTO counter VALUES (1);\nSELECT pg_sleep(0.3);"},
    {"003_twice_fails.sql", "CREATE TABLE once (id int);"},
    {NULL, NULL},
};

#define MIGRATORS 4

typedef struct {
    int rc;
    char error[256];
} migrator_t;

static void *run_migrator(void *arg)
{
    migrator_t *m = arg;
    ncc_db_t *handle = ncc_db_new(url, schema);
    m->rc = ncc_db_migrate(handle, schema, slow);
    snprintf(m->error, sizeof m->error, "%s", ncc_db_error(handle));
    ncc_db_destroy(&handle);
    return NULL;
}

Test(db, concurrent_migrators_do_not_double_apply)
{
    drop_schema(schema); /* they race to create it too */
    pthread_t threads[MIGRATORS];
    migrator_t results[MIGRATORS];
    memset(results, 0, sizeof results);
    for (int i = 0; i < MIGRATORS; i++)
        cr_assert_eq(pthread_create(&threads[i], NULL, run_migrator, &results[i]), 0);
    for (int i = 0; i < MIGRATORS; i++)
        pthread_join(threads[i], NULL);
    for (int i = 0; i < MIGRATORS; i++)
        cr_assert_eq(results[i].rc, 0, "migrator %d: %s", i, results[i].error);
    cr_assert_eq(count(db, "SELECT count(*) FROM counter", NULL), 1, "002 applied once");
    cr_assert_eq(count(db, "SELECT count(*) FROM schema_migrations", NULL),
                 3 + (long)ncc_sql_common_count);
}

Test(db, schema_names_are_quoted)
{
    char odd[64];
    snprintf(odd, sizeof odd, "Test \"Db\"; %ld", (long)getpid());
    ncc_db_t *handle = ncc_db_new(url, odd);
    cr_assert_eq(ncc_db_migrate(handle, odd, ordered), 0, "%s", ncc_db_error(handle));
    PGresult *res =
        ncc_db_exec(handle, "SELECT current_schema(), (SELECT count(*) FROM items)", 0, NULL, NULL);
    cr_assert_not_null(res, "%s", ncc_db_error(handle));
    cr_assert_str_eq(PQgetvalue(res, 0, 0), odd);
    cr_assert_str_eq(PQgetvalue(res, 0, 1), "1");
    PQclear(res);
    ncc_db_destroy(&handle);
    drop_schema(odd);
}

Test(db, reconnects_after_terminate_outside_a_transaction)
{
    int before = backend_pid(db);
    terminate_backend(db);
    PGresult *res = ncc_db_exec(db, "SELECT current_schema()", 0, NULL, NULL);
    cr_assert_not_null(res, "no reconnect: %s", ncc_db_error(db));
    cr_assert_str_eq(PQgetvalue(res, 0, 0), schema, "search_path set again after reconnect");
    PQclear(res);
    cr_assert_neq(backend_pid(db), before, "a new session");

    /* Found dead by ncc_db_ready, then reconnected by the next statement. */
    terminate_backend(db);
    cr_assert_not(ncc_db_ready(db));
    cr_assert_eq(ncc_db_run(db, "SELECT 1", 0, NULL), 0, "%s", ncc_db_error(db));
    cr_assert(ncc_db_ready(db));
}

Test(db, no_silent_reconnect_inside_a_transaction)
{
    must(db, "CREATE TABLE r (id int)");
    cr_assert_eq(ncc_db_begin(db), 0);
    cr_assert_eq(ncc_db_run(db, "INSERT INTO r VALUES (1)", 0, NULL), 0);
    terminate_backend(db);
    char state[6] = "";
    cr_assert_null(ncc_db_exec(db, "INSERT INTO r VALUES (2)", 0, NULL, state));
    cr_assert(strcmp(state, "57P01") == 0 || strcmp(state, "08006") == 0, "state %s", state);
    cr_assert(ncc_db_in_transaction(db), "the caller must see the transaction is lost");
    cr_assert_eq(ncc_db_run(db, "INSERT INTO r VALUES (3)", 0, NULL), -EIO,
                 "no statement runs outside the lost transaction");
    cr_assert_eq(ncc_db_commit(db), -EIO);
    cr_assert_not(ncc_db_in_transaction(db));
    cr_assert_eq(count(db, "SELECT count(*) FROM r", NULL), 0, "nothing of it was committed");
}

Test(db, ready_and_connect_failure)
{
    cr_assert(ncc_db_ready(db));
    ncc_db_t *fresh = ncc_db_new(url, NULL);
    cr_assert_not(ncc_db_ready(fresh), "not connected yet");
    cr_assert_null(ncc_db_conn(fresh));
    ncc_db_destroy(&fresh);

    ncc_db_t *bad = ncc_db_new("postgresql://ncc@127.0.0.1:1/ncc", NULL);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_assert_eq(ncc_db_connect(bad), -ECONNREFUSED);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_assert_lt(t1.tv_sec - t0.tv_sec, 5);
    cr_assert_neq(ncc_db_error(bad)[0], '\0');
    cr_assert_null(strchr(ncc_db_error(bad), '\n'));
    cr_assert_not(ncc_db_ready(bad));
    cr_assert_null(ncc_db_exec(bad, "SELECT 1", 0, NULL, NULL));
    ncc_db_destroy(&bad);
    ncc_db_destroy(&bad); /* idempotent */
}

Test(db, connect_timeout_comes_from_the_url_when_given)
{
    PGresult *res = NULL;
    /* The default: 3 s. */
    PQconninfoOption *opts = PQconninfo(ncc_db_conn(db));
    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (strcmp(o->keyword, "connect_timeout") == 0)
            cr_assert_str_eq(o->val, "3");
        if (strcmp(o->keyword, "client_encoding") == 0)
            cr_assert_str_eq(o->val, "UTF8");
    }
    PQconninfoFree(opts);

    char with[1024];
    snprintf(with, sizeof with, "%s%sconnect_timeout=7", url, strchr(url, '?') ? "&" : "?");
    ncc_db_t *handle = ncc_db_new(with, NULL);
    cr_assert_eq(ncc_db_connect(handle), 0, "%s", ncc_db_error(handle));
    opts = PQconninfo(ncc_db_conn(handle));
    bool seen = false;
    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (strcmp(o->keyword, "connect_timeout") == 0) {
            cr_assert_str_eq(o->val, "7");
            seen = true;
        }
    }
    cr_assert(seen);
    PQconninfoFree(opts);
    PQclear(res);
    ncc_db_destroy(&handle);
}

/* ---- the schema owner and the application role ----------------------------- */

static const ncc_migration_t owned[] = {
    {"001_tables.sql", "CREATE TABLE notes (id bigserial PRIMARY KEY, body text);\n"
                       "CREATE TABLE trail (id bigserial PRIMARY KEY, what text);\n"
                       "COMMENT ON TABLE trail IS 'ncc:append-only: the audit trail';\n"},
    {NULL, NULL},
};

/* Migrated by the owner (NCC_DATABASE_OWNER_URL, set by scripts/pg.sh), the
 * application role may change ordinary tables but only add to append-only ones. */
Test(db, app_role_cannot_rewrite_append_only_tables)
{
    const char *owner_url = getenv("NCC_DATABASE_OWNER_URL");
    cr_assert(owner_url && owner_url[0],
              "NCC_DATABASE_OWNER_URL is not set: run scripts/pg.sh start; . var/env");
    char own_schema[64];
    snprintf(own_schema, sizeof own_schema, "test_db_owned_%ld", (long)getpid());
    ncc_db_t *app = ncc_db_new(url, own_schema);
    cr_assert_eq(ncc_db_connect(app), 0, "%s", ncc_db_error(app));
    cr_assert_eq(ncc_db_migrate_with_owner(app, owner_url, own_schema, owned), 0, "%s",
                 ncc_db_error(app));

    /* Ordinary table: full DML. */
    cr_assert_eq(ncc_db_run(app, "INSERT INTO notes (body) VALUES ('a')", 0, NULL), 0, "%s",
                 ncc_db_error(app));
    cr_assert_eq(ncc_db_run(app, "UPDATE notes SET body = 'b'", 0, NULL), 0, "%s",
                 ncc_db_error(app));
    cr_assert_eq(ncc_db_run(app, "DELETE FROM notes", 0, NULL), 0, "%s", ncc_db_error(app));

    /* Append-only table: insert and read, never change or remove. */
    cr_assert_eq(ncc_db_run(app, "INSERT INTO trail (what) VALUES ('login')", 0, NULL), 0, "%s",
                 ncc_db_error(app));
    cr_assert_eq(count(app, "SELECT count(*) FROM trail WHERE what <> $1", "x"), 1);
    cr_assert_eq(ncc_db_run(app, "UPDATE trail SET what = 'forged'", 0, NULL), -EIO);
    cr_assert_str_eq(ncc_db_sqlstate(app), "42501", "insufficient_privilege expected");
    cr_assert_eq(ncc_db_run(app, "DELETE FROM trail", 0, NULL), -EIO);
    cr_assert_str_eq(ncc_db_sqlstate(app), "42501");
    cr_assert_eq(ncc_db_run(app, "TRUNCATE trail", 0, NULL), -EIO);
    /* Nor can it take the table over. */
    cr_assert_eq(ncc_db_run(app, "DROP TABLE trail", 0, NULL), -EIO);
    cr_assert_eq(count(app, "SELECT count(*) FROM trail WHERE what <> $1", "x"), 1);
    ncc_db_destroy(&app);

    ncc_db_t *owner = ncc_db_new(owner_url, NULL);
    cr_assert_eq(ncc_db_connect(owner), 0);
    char sql[160];
    snprintf(sql, sizeof sql, "DROP SCHEMA %s CASCADE", own_schema);
    cr_assert_eq(ncc_db_run(owner, sql, 0, NULL), 0, "%s", ncc_db_error(owner));
    ncc_db_destroy(&owner);
}
