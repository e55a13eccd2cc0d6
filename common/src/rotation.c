/* rotation: background re-encryption after a data-key rotation (see
 * ncc/rotation.h and docs/security-crypto.md "Rotation").
 *
 * Per column, a pass walks the rows whose value does not start with
 * "v1:<current id>:" in id order, a batch at a time, remembering the last id
 * seen, so values that never decrypt cannot hold up the ones behind them.
 * Each batch is one transaction: SELECT the next rows, then for each one
 * decrypt, encrypt under the current key and
 *     UPDATE t SET col = <new> WHERE id = <id> AND col = <old>
 * which under READ COMMITTED re-checks the row as it is when the UPDATE runs:
 * a value another transaction changed after the SELECT (or is changing: the
 * UPDATE waits for it) is left as that transaction wrote it. */
#include "ncc/rotation.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ncc/log.h"
#include "ncc/metrics.h"

#define S_MAX_BATCH    10000
#define S_MAX_IDENT    63
#define S_REST_US      (3600LL * 1000000) /* after a pass with nothing to do */
#define S_LOCK_TIMEOUT "2s" /* a row lock held longer fails the batch, retried later */

typedef struct {
    char *table;              /* SQL identifier, owned */
    char *column;             /* SQL identifier, owned */
    char *context;            /* associated data of ncc_encrypt, owned */
    char *select_first;       /* the first batch of a pass, owned */
    char *select_next;        /* later batches: id > $2, owned */
    char *update;             /* the guarded UPDATE, owned */
    char *cursor;             /* text of the last id of this pass, NULL at its start; owned */
    int64_t pass_reencrypted; /* counts of the pass under way */
    int64_t pass_skipped;
    int64_t rest_until_us; /* monotonic: no pass before (0: none) */
} s_column_t;

struct ncc_rotation {
    ncc_db_t *db;                    /* borrowed */
    const ncc_keyring_t *keyring;    /* borrowed */
    s_column_t *columns;             /* owned array */
    size_t column_count;             /* entries in columns */
    char prefix[NCC_KEY_ID_MAX + 8]; /* "v1:<current id>:" */
};

static int64_t s_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* printf into a new string (caller frees), NULL on failure. */
static char *s_format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *s_format(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *text = malloc((size_t)n + 1);
    if (!text)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(text, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return text;
}

static bool s_identifier_valid(const char *name)
{
    if (!name || !*name || strlen(name) > S_MAX_IDENT)
        return false;
    if (!((*name >= 'a' && *name <= 'z') || *name == '_'))
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}

static void s_column_free(s_column_t *column)
{
    free(column->table);
    free(column->column);
    free(column->context);
    free(column->select_first);
    free(column->select_next);
    free(column->update);
    free(column->cursor);
    memset(column, 0, sizeof *column);
}

ncc_rotation_t *ncc_rotation_new(ncc_db_t *db, const ncc_keyring_t *keyring)
{
    if (!db || !keyring)
        return NULL;
    ncc_rotation_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->db = db;
    self->keyring = keyring;
    snprintf(self->prefix, sizeof self->prefix, "v1:%s:", ncc_keyring_current_id(keyring));
    return self;
}

void ncc_rotation_destroy(ncc_rotation_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ncc_rotation_t *self = *self_p;
    for (size_t i = 0; i < self->column_count; i++)
        s_column_free(&self->columns[i]);
    free(self->columns);
    free(self);
    *self_p = NULL;
}

int ncc_rotation_add(ncc_rotation_t *self, const char *table, const char *id_column,
                     const char *column, const char *context)
{
    if (!self || !s_identifier_valid(table) || !s_identifier_valid(id_column) ||
        !s_identifier_valid(column) || strcmp(id_column, column) == 0)
        return -EINVAL;
    for (size_t i = 0; i < self->column_count; i++)
        if (strcmp(self->columns[i].table, table) == 0 &&
            strcmp(self->columns[i].column, column) == 0)
            return -EEXIST;
    s_column_t *columns = realloc(self->columns, (self->column_count + 1) * sizeof *columns);
    if (!columns)
        return -ENOMEM;
    self->columns = columns;
    s_column_t added = {
        .table = strdup(table),
        .column = strdup(column),
        .context = strdup(context ? context : ""),
        /* Identifiers are checked above, quoted anyway. $1 the prefix of the
         * current key, $2 the cursor (typed by the comparison with the id),
         * $3 the limit. */
        /* ORDER BY names the table's column through its alias: a bare name
         * would be the first output column, the id as text ("10" < "9"). */
        .select_first = s_format("SELECT r.\"%s\"::text, r.\"%s\" FROM \"%s\" AS r"
                                 " WHERE r.\"%s\" IS NOT NULL AND NOT starts_with(r.\"%s\", $1)"
                                 " ORDER BY r.\"%s\" LIMIT $2::int",
                                 id_column, column, table, column, column, id_column),
        .select_next = s_format("SELECT r.\"%s\"::text, r.\"%s\" FROM \"%s\" AS r"
                                " WHERE r.\"%s\" IS NOT NULL AND NOT starts_with(r.\"%s\", $1)"
                                " AND r.\"%s\" > $3 ORDER BY r.\"%s\" LIMIT $2::int",
                                id_column, column, table, column, column, id_column, id_column),
        .update = s_format("UPDATE \"%s\" SET \"%s\" = $2 WHERE \"%s\" = $1 AND \"%s\" = $3", table,
                           column, id_column, column),
    };
    if (!added.table || !added.column || !added.context || !added.select_first ||
        !added.select_next || !added.update) {
        s_column_free(&added);
        return -ENOMEM;
    }
    self->columns[self->column_count++] = added;
    return 0;
}

/* Re-encrypts one value; the UPDATE's outcome into *stats. 0 or -EIO. */
static int s_rewrite(ncc_rotation_t *self, s_column_t *column, const char *id, const char *old,
                     ncc_rotation_stats_t *stats)
{
    size_t len = 0;
    char *plain = ncc_decrypt(self->keyring, column->context, old, &len);
    if (!plain) {
        /* Tampered, corrupt, another context or a key no longer in the
         * keyring: an operator must look at it. Never the value itself. */
        ncc_warn("rotation.undecryptable",
                 "%s.%s of row %s does not decrypt (key id unknown or value damaged); skipped",
                 column->table, column->column, id);
        stats->skipped++;
        return 0;
    }
    char *fresh = ncc_encrypt(self->keyring, column->context, plain, len);
    explicit_bzero(plain, len);
    free(plain);
    if (!fresh)
        return -EIO;
    const char *params[] = {id, fresh, old};
    PGresult *res = ncc_db_exec(self->db, column->update, 3, params, NULL);
    free(fresh);
    if (!res)
        return -EIO;
    if (strcmp(PQcmdTuples(res), "1") == 0)
        stats->reencrypted++;
    else
        stats->changed++;
    PQclear(res);
    return 0;
}

/* One batch of at most `limit` rows of `column` in its own transaction.
 * Counts into *total only when committed. Returns the rows read, or -EIO. */
static int s_batch(ncc_rotation_t *self, s_column_t *column, int limit, ncc_rotation_stats_t *total)
{
    ncc_rotation_stats_t stats = {0};
    PGresult *rows = NULL;
    char *last = NULL;
    char limit_text[16];
    int rc = -EIO;

    snprintf(limit_text, sizeof limit_text, "%d", limit);
    if (ncc_db_begin(self->db) < 0)
        return -EIO;
    if (ncc_db_run(self->db, "SET LOCAL lock_timeout = '" S_LOCK_TIMEOUT "'", 0, NULL) < 0)
        goto out;
    const char *params[] = {self->prefix, limit_text, column->cursor};
    rows = ncc_db_exec(self->db, column->cursor ? column->select_next : column->select_first,
                       column->cursor ? 3 : 2, params, NULL);
    if (!rows)
        goto out;
    int count = PQntuples(rows);
    for (int i = 0; i < count; i++) {
        const char *id = PQgetvalue(rows, i, 0);
        if (s_rewrite(self, column, id, PQgetvalue(rows, i, 1), &stats) < 0)
            goto out;
        stats.examined++;
    }
    if (count > 0) {
        last = strdup(PQgetvalue(rows, count - 1, 0));
        if (!last)
            goto out;
    }
    if (ncc_db_commit(self->db) < 0)
        goto out;

    total->reencrypted += stats.reencrypted;
    total->skipped += stats.skipped;
    total->changed += stats.changed;
    total->examined += stats.examined;
    column->pass_reencrypted += stats.reencrypted;
    column->pass_skipped += stats.skipped;
    ncc_metrics_add(NCC_METRIC_ROWS_REENCRYPTED, (uint64_t)stats.reencrypted);
    ncc_metrics_add(NCC_METRIC_ROWS_REENCRYPT_SKIPPED, (uint64_t)stats.skipped);
    if (stats.reencrypted > 0)
        ncc_info("rotation.progress",
                 "%s.%s: %lld value(s) re-encrypted under key %s (%lld skipped, %lld changed "
                 "meanwhile)",
                 column->table, column->column, (long long)stats.reencrypted,
                 ncc_keyring_current_id(self->keyring), (long long)stats.skipped,
                 (long long)stats.changed);

    if (count < limit) {
        /* The end of the table: the pass is over. */
        if (column->pass_reencrypted > 0 || column->pass_skipped > 0)
            ncc_info("rotation.pass_done",
                     "%s.%s: every value is under key %s except %lld that do not decrypt "
                     "(this pass re-encrypted %lld)",
                     column->table, column->column, ncc_keyring_current_id(self->keyring),
                     (long long)column->pass_skipped, (long long)column->pass_reencrypted);
        /* Nothing was left to do: rest. Otherwise look again at once, for
         * rows written under an old key while this pass ran. */
        if (column->pass_reencrypted == 0)
            column->rest_until_us = s_now_us() + S_REST_US;
        column->pass_reencrypted = 0;
        column->pass_skipped = 0;
        free(column->cursor);
        column->cursor = NULL;
        free(last);
    } else {
        free(column->cursor);
        column->cursor = last;
    }
    last = NULL;
    rc = count;
out:
    if (rc < 0)
        ncc_db_rollback(self->db);
    free(last);
    PQclear(rows);
    return rc;
}

int ncc_rotation_step(ncc_rotation_t *self, int batch, ncc_rotation_stats_t *ret_stats)
{
    ncc_rotation_stats_t stats = {0};
    int rc = 0;
    if (!self || batch < 1 || batch > S_MAX_BATCH) {
        rc = -EINVAL;
        goto out;
    }
    if (ncc_db_in_transaction(self->db)) {
        rc = -EBUSY;
        goto out;
    }
    int remaining = batch;
    int64_t now = s_now_us();
    for (size_t i = 0; i < self->column_count && remaining > 0; i++) {
        s_column_t *column = &self->columns[i];
        if (column->rest_until_us > now)
            continue;
        column->rest_until_us = 0;
        int read = s_batch(self, column, remaining, &stats);
        if (read < 0) {
            rc = read;
            break;
        }
        /* A batch shorter than asked ended the column's pass: the rest of
         * the budget goes to the next column. */
        remaining -= read;
    }
out:
    if (ret_stats)
        *ret_stats = stats;
    return rc;
}

bool ncc_rotation_idle(ncc_rotation_t *self)
{
    if (!self)
        return true;
    for (size_t i = 0; i < self->column_count; i++)
        if (self->columns[i].rest_until_us == 0)
            return false;
    return true;
}
