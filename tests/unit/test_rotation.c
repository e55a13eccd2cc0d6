/* Tests for ncc/rotation.h against a real PostgreSQL (NCC_DATABASE_URL): rows
 * encrypted under k1 end up under k2 (keyring "k2,k1") and decrypt to the same
 * plaintext with k2 alone; a row changed by another transaction while a step
 * runs keeps that change (and is rotated by a later pass); values that do not
 * decrypt are skipped, logged and counted without stopping the others; the
 * batch limit holds, also across columns; bad registrations are refused; and
 * the service frame runs the steps from its cron for a column registered
 * with ncc_service_encrypted_column, counted on /metrics. Each test has its
 * own schema. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ncc/crypto.h"
#include "ncc/db.h"
#include "ncc/log.h"
#include "ncc/metrics.h"
#include "ncc/rotation.h"
#include "ncc/service.h"
#include "ncc_test.h"

/* Fixed test keys (never used outside tests). */
#define K1 "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="
#define K2 "ZWZnaGlqa2xtbm9wcXJzdHV2d3h5ent8fX5/gIGCg4Q="
#define K9 "paWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaU="

#define CONTEXT       "test.secrets.value"
#define OTHER_CONTEXT "test.secrets.other"

static char schema[64];
static const char *url;
static ncc_db_t *db;              /* the rotation's connection */
static ncc_db_t *db_test;         /* writes and inspects */
static ncc_keyring_t *old_keys;   /* k1 only: what wrote the rows */
static ncc_keyring_t *new_keys;   /* k2 first, k1 still readable */
static ncc_keyring_t *only_k2;    /* proves the values no longer need k1 */
static ncc_keyring_t *other_keys; /* k9: a key the rotation does not hold */

static ncc_keyring_t *s_keyring(const char *data_keys)
{
    char err[256] = "";
    ncc_keyring_t *keyring = ncc_keyring_new(data_keys, NULL, err, sizeof err);
    cr_assert_not_null(keyring, "keyring: %s", err);
    return keyring;
}

static ncc_db_t *s_connect(void)
{
    ncc_db_t *handle = ncc_db_new(url, schema);
    cr_assert_not_null(handle);
    cr_assert_eq(ncc_db_connect(handle), 0, "connect: %s", ncc_db_error(handle));
    return handle;
}

static void setup(void)
{
    ncc_log_init("test_rotation", NCC_LOG_ERROR);
    url = getenv("NCC_DATABASE_URL");
    cr_assert(url && *url, "NCC_DATABASE_URL is not set (. var/env after scripts/pg.sh start)");
    snprintf(schema, sizeof schema, "test_rotation_%d", (int)getpid());
    static const ncc_migration_t migrations[] = {
        {"001_secrets.sql", "create table secrets (id bigserial primary key, value text, "
                            "other text, note text not null default '')"},
        {NULL, NULL},
    };
    db_test = s_connect();
    cr_assert_eq(ncc_db_migrate(db_test, schema, migrations), 0, "migrate: %s",
                 ncc_db_error(db_test));
    db = s_connect();
    old_keys = s_keyring("k1:" K1);
    new_keys = s_keyring("k2:" K2 ",k1:" K1);
    only_k2 = s_keyring("k2:" K2);
    other_keys = s_keyring("k9:" K9);
}

static void teardown(void)
{
    ncc_db_destroy(&db);
    ncc_db_rollback(db_test);
    char sql[128];
    snprintf(sql, sizeof sql, "drop schema if exists %s cascade", schema);
    ncc_db_run(db_test, sql, 0, NULL);
    ncc_db_destroy(&db_test);
    ncc_keyring_destroy(&old_keys);
    ncc_keyring_destroy(&new_keys);
    ncc_keyring_destroy(&only_k2);
    ncc_keyring_destroy(&other_keys);
}

TestSuite(rotation, .init = setup, .fini = teardown, .timeout = 60);

/* Inserts a row whose `value` (and `other`, when not NULL) are the given
 * texts as stored; returns its id. */
static long s_insert_raw(const char *value, const char *other)
{
    const char *params[] = {value, other};
    PGresult *res =
        ncc_db_exec(db_test, "insert into secrets (value, other) values ($1, $2) returning id", 2,
                    params, NULL);
    cr_assert_not_null(res, "insert: %s", ncc_db_error(db_test));
    long id = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return id;
}

static char *s_encrypt(const ncc_keyring_t *keyring, const char *context, const char *plain)
{
    char *cipher = ncc_encrypt(keyring, context, plain, strlen(plain));
    cr_assert_not_null(cipher);
    return cipher;
}

/* Inserts `plain` encrypted under k1 into value (and other, when given). */
static long s_insert(const char *plain, const char *other_plain)
{
    char *value = s_encrypt(old_keys, CONTEXT, plain);
    char *other = other_plain ? s_encrypt(old_keys, OTHER_CONTEXT, other_plain) : NULL;
    long id = s_insert_raw(value, other);
    free(value);
    free(other);
    return id;
}

/* The stored text of `column` of row `id` (caller frees; NULL for SQL NULL). */
static char *s_stored(const char *column, long id)
{
    char sql[128], id_text[24];
    snprintf(sql, sizeof sql, "select %s from secrets where id = $1", column);
    snprintf(id_text, sizeof id_text, "%ld", id);
    const char *params[] = {id_text};
    PGresult *res = ncc_db_exec(db_test, sql, 1, params, NULL);
    cr_assert_not_null(res);
    cr_assert_eq(PQntuples(res), 1);
    char *text = PQgetisnull(res, 0, 0) ? NULL : strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return text;
}

static long s_count(const char *sql)
{
    PGresult *res = ncc_db_exec(db_test, sql, 0, NULL, NULL);
    cr_assert_not_null(res, "%s: %s", sql, ncc_db_error(db_test));
    long n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return n;
}

/* Asserts row `id`'s value is under k2 and decrypts, with k2 alone, to `plain`. */
static void s_assert_under_k2(const char *column, const char *context, long id, const char *plain)
{
    char *stored = s_stored(column, id);
    cr_assert_not_null(stored);
    cr_assert(strncmp(stored, "v1:k2:", 6) == 0, "row %ld %s not under k2", id, column);
    char *back = ncc_decrypt(only_k2, context, stored, NULL);
    cr_assert_not_null(back, "row %ld does not decrypt with k2 alone", id);
    cr_assert_str_eq(back, plain);
    free(back);
    free(stored);
}

static ncc_rotation_t *s_rotation(bool both_columns)
{
    ncc_rotation_t *rotation = ncc_rotation_new(db, new_keys);
    cr_assert_not_null(rotation);
    cr_assert_eq(ncc_rotation_add(rotation, "secrets", "id", "value", CONTEXT), 0);
    if (both_columns)
        cr_assert_eq(ncc_rotation_add(rotation, "secrets", "id", "other", OTHER_CONTEXT), 0);
    return rotation;
}

/* Steps until the rotation rests; returns the summed stats. */
static ncc_rotation_stats_t s_run(ncc_rotation_t *rotation, int batch)
{
    ncc_rotation_stats_t total = {0};
    for (int i = 0; i < 100 && !ncc_rotation_idle(rotation); i++) {
        ncc_rotation_stats_t stats;
        cr_assert_eq(ncc_rotation_step(rotation, batch, &stats), 0, "step: %s", ncc_db_error(db));
        cr_assert_leq(stats.examined, batch);
        total.reencrypted += stats.reencrypted;
        total.skipped += stats.skipped;
        total.changed += stats.changed;
        total.examined += stats.examined;
    }
    cr_assert(ncc_rotation_idle(rotation), "the rotation never finished");
    return total;
}

Test(rotation, rows_under_k1_end_under_k2_with_the_same_plaintext)
{
    long ids[25];
    char plain[25][32];
    for (int i = 0; i < 25; i++) {
        snprintf(plain[i], sizeof plain[i], "JBSWY3DPEHPK3PX%d", i);
        ids[i] = s_insert(plain[i], NULL);
    }
    long empty = s_insert_raw(NULL, NULL);
    char *current = s_encrypt(new_keys, CONTEXT, "already current");
    long already = s_insert_raw(current, NULL);
    uint64_t counted = ncc_metrics_get(NCC_METRIC_ROWS_REENCRYPTED);

    ncc_rotation_t *rotation = s_rotation(false);
    ncc_rotation_stats_t total = s_run(rotation, 10);
    cr_assert_eq(total.reencrypted, 25);
    cr_assert_eq(total.skipped, 0);
    cr_assert_eq(total.changed, 0);
    cr_assert_eq(ncc_metrics_get(NCC_METRIC_ROWS_REENCRYPTED) - counted, 25);
    for (int i = 0; i < 25; i++)
        s_assert_under_k2("value", CONTEXT, ids[i], plain[i]);
    cr_assert_eq(s_count("select count(*) from secrets where value like 'v1:k1:%'"), 0);
    /* NULL stays NULL; a value already under k2 is not rewritten. */
    cr_assert_null(s_stored("value", empty));
    char *after = s_stored("value", already);
    cr_assert_str_eq(after, current);
    free(after);
    free(current);

    /* Resting: a further step reads nothing. */
    ncc_rotation_stats_t stats;
    cr_assert_eq(ncc_rotation_step(rotation, 10, &stats), 0);
    cr_assert_eq(stats.examined, 0);
    ncc_rotation_destroy(&rotation);
    cr_assert_null(rotation);
}

Test(rotation, batch_limit_holds_also_across_columns)
{
    long ids[10];
    for (int i = 0; i < 10; i++)
        ids[i] = s_insert("one value", NULL);
    ncc_rotation_t *rotation = s_rotation(false);
    ncc_rotation_stats_t stats;
    for (int round = 1; round <= 3; round++) {
        cr_assert_eq(ncc_rotation_step(rotation, 3, &stats), 0);
        cr_assert_eq(stats.reencrypted, 3);
        cr_assert_eq(stats.examined, 3);
        cr_assert_eq(s_count("select count(*) from secrets where value like 'v1:k2:%'"), 3 * round);
    }
    /* In id order: the first nine moved, the tenth not yet. */
    s_assert_under_k2("value", CONTEXT, ids[8], "one value");
    char *last = s_stored("value", ids[9]);
    cr_assert(strncmp(last, "v1:k1:", 6) == 0);
    free(last);
    ncc_rotation_destroy(&rotation);

    /* Two columns: what the first leaves of the budget goes to the second. */
    cr_assert_eq(ncc_db_run(db_test, "delete from secrets", 0, NULL), 0);
    for (int i = 0; i < 4; i++)
        s_insert("first column", "second column");
    rotation = s_rotation(true);
    cr_assert_eq(ncc_rotation_step(rotation, 5, &stats), 0);
    cr_assert_eq(stats.reencrypted, 5);
    cr_assert_eq(s_count("select count(*) from secrets where value like 'v1:k2:%'"), 4);
    cr_assert_eq(s_count("select count(*) from secrets where other like 'v1:k2:%'"), 1);
    ncc_rotation_stats_t total = s_run(rotation, 5);
    cr_assert_eq(total.reencrypted, 3);
    cr_assert_eq(s_count("select count(*) from secrets where other like 'v1:k2:%'"), 4);
    ncc_rotation_destroy(&rotation);
}

/* A step in a thread (no Criterion assertions there). */
typedef struct {
    ncc_rotation_t *rotation;
    ncc_rotation_stats_t stats;
    int rc;
} stepper_t;

static void *s_step_run(void *arg)
{
    stepper_t *stepper = arg;
    stepper->rc = ncc_rotation_step(stepper->rotation, 10, &stepper->stats);
    return NULL;
}

Test(rotation, a_concurrent_change_wins)
{
    long first = s_insert("first", NULL);
    long middle = s_insert("middle", NULL);
    long last = s_insert("last", NULL);
    char pid[16];
    PGresult *res = ncc_db_exec(db, "select pg_backend_pid()", 0, NULL, NULL);
    cr_assert_not_null(res);
    snprintf(pid, sizeof pid, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);

    /* Another writer changes the middle row (with the old key, as a copy not
     * yet restarted would) and holds its transaction open. */
    char *changed = s_encrypt(old_keys, CONTEXT, "changed meanwhile");
    char middle_id[24];
    snprintf(middle_id, sizeof middle_id, "%ld", middle);
    const char *params[] = {changed, middle_id};
    cr_assert_eq(ncc_db_begin(db_test), 0);
    cr_assert_eq(ncc_db_run(db_test, "update secrets set value = $1 where id = $2", 2, params), 0);

    stepper_t stepper = {.rotation = s_rotation(false)};
    pthread_t thread;
    cr_assert_eq(pthread_create(&thread, NULL, s_step_run, &stepper), 0);
    /* Wait until the step's UPDATE of that row waits for the writer's lock. */
    ncc_db_t *watch = s_connect();
    const char *watch_params[] = {pid};
    bool waiting = false;
    for (int i = 0; i < 300 && !waiting; i++) {
        PGresult *locks =
            ncc_db_exec(watch, "select count(*) from pg_locks where pid = $1::int and not granted",
                        1, watch_params, NULL);
        cr_assert_not_null(locks);
        waiting = strcmp(PQgetvalue(locks, 0, 0), "0") != 0;
        PQclear(locks);
        if (!waiting)
            usleep(5000);
    }
    cr_assert_eq(ncc_db_commit(db_test), 0);
    pthread_join(thread, NULL);
    ncc_db_destroy(&watch);
    cr_assert(waiting, "the step never waited for the row lock");
    cr_assert_eq(stepper.rc, 0, "step: %s", ncc_db_error(db));
    cr_assert_eq(stepper.stats.reencrypted, 2);
    cr_assert_eq(stepper.stats.changed, 1);

    /* The writer's value stands, the others moved. */
    char *stored = s_stored("value", middle);
    cr_assert_str_eq(stored, changed);
    free(stored);
    s_assert_under_k2("value", CONTEXT, first, "first");
    s_assert_under_k2("value", CONTEXT, last, "last");

    /* The next pass picks it up. */
    ncc_rotation_stats_t total = s_run(stepper.rotation, 10);
    cr_assert_eq(total.reencrypted, 1);
    s_assert_under_k2("value", CONTEXT, middle, "changed meanwhile");
    free(changed);
    ncc_rotation_destroy(&stepper.rotation);
}

Test(rotation, values_that_do_not_decrypt_are_skipped_and_counted)
{
    long good[3];
    for (int i = 0; i < 3; i++)
        good[i] = s_insert("good", NULL);
    /* Tampered: one character of the body changed. */
    char *tampered = s_encrypt(old_keys, CONTEXT, "tampered");
    size_t at = strlen(tampered) - 6;
    tampered[at] = tampered[at] == 'A' ? 'B' : 'A';
    long bad[4];
    bad[0] = s_insert_raw(tampered, NULL);
    /* Under a key the keyring does not hold (dropped too early). */
    char *unknown = s_encrypt(other_keys, CONTEXT, "unknown key");
    bad[1] = s_insert_raw(unknown, NULL);
    /* Copied from another column (another context). */
    char *elsewhere = s_encrypt(old_keys, OTHER_CONTEXT, "other context");
    bad[2] = s_insert_raw(elsewhere, NULL);
    /* Not ciphertext at all. */
    bad[3] = s_insert_raw("JBSWY3DPEHPK3PXP", NULL);
    const char *bad_text[] = {tampered, unknown, elsewhere, "JBSWY3DPEHPK3PXP"};
    uint64_t skipped_before = ncc_metrics_get(NCC_METRIC_ROWS_REENCRYPT_SKIPPED);
    uint64_t moved_before = ncc_metrics_get(NCC_METRIC_ROWS_REENCRYPTED);

    ncc_rotation_t *rotation = s_rotation(false);
    ncc_rotation_stats_t stats;
    cr_assert_eq(ncc_rotation_step(rotation, 100, &stats), 0, "step: %s", ncc_db_error(db));
    cr_assert_eq(stats.reencrypted, 3);
    cr_assert_eq(stats.skipped, 4);
    cr_assert_eq(stats.examined, 7);
    cr_assert_eq(ncc_metrics_get(NCC_METRIC_ROWS_REENCRYPT_SKIPPED) - skipped_before, 4);
    cr_assert_eq(ncc_metrics_get(NCC_METRIC_ROWS_REENCRYPTED) - moved_before, 3);
    for (int i = 0; i < 3; i++)
        s_assert_under_k2("value", CONTEXT, good[i], "good");
    for (int i = 0; i < 4; i++) {
        char *stored = s_stored("value", bad[i]);
        cr_assert_str_eq(stored, bad_text[i], "an undecryptable value was rewritten");
        free(stored);
    }
    /* They do not keep the rotation busy: one more pass, then it rests. */
    ncc_rotation_stats_t total = s_run(rotation, 100);
    cr_assert_eq(total.reencrypted, 0);
    cr_assert_eq(total.skipped, 4);
    cr_assert(ncc_rotation_idle(rotation));

    /* With a batch smaller than the bad rows, the good ones behind them still move. */
    ncc_rotation_destroy(&rotation);
    long behind = s_insert("behind the bad ones", NULL);
    rotation = s_rotation(false);
    total = s_run(rotation, 2);
    cr_assert_eq(total.reencrypted, 1);
    s_assert_under_k2("value", CONTEXT, behind, "behind the bad ones");
    ncc_rotation_destroy(&rotation);
    free(tampered);
    free(unknown);
    free(elsewhere);
}

Test(rotation, bad_arguments_are_refused)
{
    cr_assert_null(ncc_rotation_new(NULL, new_keys));
    cr_assert_null(ncc_rotation_new(db, NULL));
    ncc_rotation_t *rotation = ncc_rotation_new(db, new_keys);
    cr_assert_not_null(rotation);
    cr_assert_eq(ncc_rotation_add(rotation, "secrets; drop table x", "id", "value", CONTEXT),
                 -EINVAL);
    cr_assert_eq(ncc_rotation_add(rotation, "secrets", "ID", "value", CONTEXT), -EINVAL);
    cr_assert_eq(ncc_rotation_add(rotation, "secrets", "id", "id", CONTEXT), -EINVAL);
    cr_assert_eq(ncc_rotation_add(rotation, "", "id", "value", CONTEXT), -EINVAL);
    cr_assert_eq(ncc_rotation_add(rotation, "secrets", "id", "value", CONTEXT), 0);
    cr_assert_eq(ncc_rotation_add(rotation, "secrets", "id", "value", CONTEXT), -EEXIST);
    ncc_rotation_stats_t stats;
    cr_assert_eq(ncc_rotation_step(rotation, 0, &stats), -EINVAL);
    cr_assert_eq(ncc_rotation_step(rotation, 10001, &stats), -EINVAL);
    cr_assert_eq(ncc_db_begin(db), 0);
    cr_assert_eq(ncc_rotation_step(rotation, 10, &stats), -EBUSY);
    ncc_db_rollback(db);
    /* A missing table: -EIO, rolled back, and the next step may try again. */
    ncc_rotation_t *missing = ncc_rotation_new(db, new_keys);
    cr_assert_eq(ncc_rotation_add(missing, "no_such_table", "id", "value", CONTEXT), 0);
    cr_assert_eq(ncc_rotation_step(missing, 10, &stats), -EIO);
    cr_assert_not(ncc_db_in_transaction(db));
    cr_assert_eq(stats.examined, 0);
    ncc_rotation_destroy(&missing);
    ncc_rotation_destroy(&rotation);
    ncc_rotation_destroy(&rotation); /* idempotent */
}

/* ---- the service frame -------------------------------------------------------- */

static const ncc_migration_t frame_migrations[] = {
    {"001_users.sql", "create table users (id bigserial primary key, totp_secret text)"},
    {NULL, NULL},
};

static void *s_frame_create(ncc_service_t *service)
{
    /* What a service does (services/directory/directory.c). */
    if (ncc_service_encrypted_column(service, "users", "id", "totp_secret", CONTEXT) < 0)
        return NULL;
    if (!ncc_service_keyring(service) ||
        strcmp(ncc_keyring_current_id(ncc_service_keyring(service)), "k2") != 0)
        return NULL;
    static int state;
    return &state;
}

static void s_frame_destroy(void **state_p)
{
    *state_p = NULL;
}

static char frame_name[32];

static void *s_frame_run(void *arg)
{
    const ncc_service_options_t options = {.name = frame_name,
                                           .migrations = frame_migrations,
                                           .create = s_frame_create,
                                           .destroy = s_frame_destroy};
    char *argv[] = {"ncc-rotation-test", NULL};
    *(int *)arg = ncc_service_main(&options, 1, argv);
    return NULL;
}

Test(rotation, service_frame_rotates_registered_columns_from_its_cron)
{
    /* The frame's schema is its name: prepare it with rows under k1. */
    snprintf(frame_name, sizeof frame_name, "rotframe%d", (int)getpid());
    ncc_db_t *prep = ncc_db_new(url, frame_name);
    cr_assert_eq(ncc_db_connect(prep), 0);
    cr_assert_eq(ncc_db_migrate(prep, frame_name, frame_migrations), 0, "migrate: %s",
                 ncc_db_error(prep));
    for (int i = 0; i < 5; i++) {
        char *secret = s_encrypt(old_keys, CONTEXT, "JBSWY3DPEHPK3PXP");
        const char *params[] = {secret};
        cr_assert_eq(ncc_db_run(prep, "insert into users (totp_secret) values ($1)", 1, params), 0);
        free(secret);
    }

    int port = ncct_free_port();
    char env[64], listen[32];
    snprintf(env, sizeof env, "NCC_ROTFRAME%d_HEALTH_LISTEN", (int)getpid());
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    setenv(env, listen, 1);
    setenv("NCC_DATA_KEYS", "k2:" K2 ",k1:" K1, 1);
    setenv("NCC_KEY_ROTATION_INTERVAL_S", "1", 1);
    setenv("NCC_KEY_ROTATION_BATCH", "2", 1);
    setenv("NCC_LOG_LEVEL", "warn", 1);
    unsetenv("NCC_DATABASE_OWNER_URL"); /* migrate through the same role as prep */
    unsetenv("NCC_CONFIG_FILE");

    int exit_code = -1;
    pthread_t thread;
    cr_assert_eq(pthread_create(&thread, NULL, s_frame_run, &exit_code), 0);
    /* 5 rows, 2 per second: about three seconds. */
    long left = -1;
    for (int i = 0; i < 100; i++) {
        PGresult *res = ncc_db_exec(
            prep, "select count(*) from users where totp_secret like 'v1:k1:%'", 0, NULL, NULL);
        cr_assert_not_null(res);
        left = strtol(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        if (left == 0)
            break;
        usleep(100 * 1000);
    }
    char url_metrics[64];
    snprintf(url_metrics, sizeof url_metrics, "http://127.0.0.1:%d/metrics", port);
    char *body = NULL;
    long status = ncct_http("GET", url_metrics, NULL, &body);
    kill(getpid(), SIGTERM);
    pthread_join(thread, NULL);
    cr_assert_eq(left, 0, "the frame did not re-encrypt every row");
    cr_assert_eq(exit_code, 0);
    cr_assert_eq(status, 200);
    cr_assert_not_null(body);
    cr_assert_not_null(strstr(body, "ncc_rows_reencrypted_total{service=\""), "%s", body);
    const char *line = strstr(body, "ncc_rows_reencrypted_total{");
    const char *value = strchr(line, ' ');
    cr_assert_not_null(value);
    cr_assert_eq(strtol(value + 1, NULL, 10), 5);
    free(body);

    PGresult *res = ncc_db_exec(prep, "select totp_secret from users", 0, NULL, NULL);
    cr_assert_not_null(res);
    cr_assert_eq(PQntuples(res), 5);
    for (int i = 0; i < PQntuples(res); i++) {
        char *plain = ncc_decrypt(only_k2, CONTEXT, PQgetvalue(res, i, 0), NULL);
        cr_assert_not_null(plain);
        cr_assert_str_eq(plain, "JBSWY3DPEHPK3PXP");
        free(plain);
    }
    PQclear(res);
    char sql[128];
    snprintf(sql, sizeof sql, "drop schema if exists %s cascade", frame_name);
    ncc_db_run(prep, sql, 0, NULL);
    ncc_db_destroy(&prep);
}
