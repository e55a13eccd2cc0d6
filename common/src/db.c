/* db: a libpq connection with its search_path, parameterised statements,
 * transactions, one careful reconnect, and the migration runner.
 * Nothing here logs an error it returns; server notices are passed to the log
 * (debug, or warn for WARNING) so libpq never prints them on stderr. */
#include "ncc/db.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ncc/log.h"
#include "ncc/metrics.h"

#define S_ERROR_MAX 1024
/* SQLSTATEs used when the server gave none. */
#define S_STATE_CONNECTION_LOST "08006"
#define S_STATE_CANNOT_CONNECT  "08001"

struct ncc_db {
    char *conninfo;           /* libpq string or URI, owned */
    char *schema;             /* search_path schema, owned; NULL = server default */
    PGconn *conn;             /* owned; NULL when never connected */
    bool in_tx;               /* a transaction is open (or was, when the connection died in it) */
    bool no_reconnect;        /* set while migrate holds its session-level advisory lock */
    bool lost;                /* the server said FATAL on the idle session: it is closing */
    int64_t ready_checked_ms; /* monotonic time of the last SELECT 1 in ncc_db_ready */
    bool ready_ok;            /* its outcome */
    char sqlstate[6];         /* last failure's SQLSTATE, "" when none */
    char error[S_ERROR_MAX];  /* last error text, "" when none */
};

/* True when the connection cannot be used (never made, broken, or closing). */
static bool s_broken(ncc_db_t *self)
{
    return !self->conn || self->lost || PQstatus(self->conn) == CONNECTION_BAD;
}

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_clear_error(ncc_db_t *self)
{
    self->error[0] = '\0';
    self->sqlstate[0] = '\0';
}

/* Copies text into the error buffer on one line: libpq's "\n\t" continuation
 * lines become spaces and the trailing newline goes. */
static void s_set_error_text(ncc_db_t *self, const char *prefix, const char *text)
{
    size_t n = 0;
    for (const char *p = prefix ? prefix : ""; *p && n + 1 < sizeof self->error; p++)
        self->error[n++] = *p;
    bool space = false;
    for (const char *p = text ? text : ""; *p && n + 1 < sizeof self->error; p++) {
        if (*p == '\n' || *p == '\t' || *p == '\r') {
            space = n > 0;
            continue;
        }
        if (space) {
            self->error[n++] = ' ';
            space = false;
            if (n + 1 >= sizeof self->error)
                break;
        }
        self->error[n++] = *p;
    }
    self->error[n] = '\0';
}

static void s_set_error(ncc_db_t *self, const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void s_set_error(ncc_db_t *self, const char *sqlstate, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(self->error, sizeof self->error, fmt, ap);
    va_end(ap);
    snprintf(self->sqlstate, sizeof self->sqlstate, "%s", sqlstate ? sqlstate : "");
}

/* Records why `res` (may be NULL) failed: the server's primary message and
 * SQLSTATE, or libpq's own message. */
static void s_set_result_error(ncc_db_t *self, const PGresult *res, const char *prefix)
{
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (primary) {
        s_set_error_text(self, prefix, primary);
    } else if (res && PQresultStatus(res) != PGRES_FATAL_ERROR &&
               PQresultStatus(res) != PGRES_NONFATAL_ERROR) {
        char text[96];
        snprintf(text, sizeof text, "unexpected result %s", PQresStatus(PQresultStatus(res)));
        s_set_error_text(self, prefix, text);
    } else {
        const char *msg = self->conn ? PQerrorMessage(self->conn) : "";
        s_set_error_text(self, prefix, msg[0] ? msg : "statement failed");
    }
    if (state)
        snprintf(self->sqlstate, sizeof self->sqlstate, "%s", state);
    else if (s_broken(self))
        snprintf(self->sqlstate, sizeof self->sqlstate, "%s", S_STATE_CONNECTION_LOST);
    else
        self->sqlstate[0] = '\0';
}

/* Server NOTICE/WARNING messages: to the log, not libpq's stderr default.
 * libpq also hands over here an error that arrives while no statement runs:
 * a FATAL one (pg_terminate_backend, server shutdown) means the session is
 * closing, which s_poll_idle turns into a reconnect before the next statement. */
static void s_notice(void *arg, const PGresult *res)
{
    ncc_db_t *self = arg;
    const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    bool fatal = severity && (strcmp(severity, "FATAL") == 0 || strcmp(severity, "PANIC") == 0);
    bool warning = fatal || (severity && strcmp(severity, "WARNING") == 0);
    if (fatal)
        self->lost = true;
    ncc_log(warning ? NCC_LOG_WARN : NCC_LOG_DEBUG, "db.notice", "%s: %s",
            severity ? severity : "NOTICE", primary ? primary : "");
}

/* Finishes whatever a COPY statement started, so the connection is usable. */
static void s_drain(PGconn *conn, PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COPY_IN) {
        PQputCopyEnd(conn, "COPY is not supported through ncc_db_exec");
    } else if (st == PGRES_COPY_OUT) {
        char *row = NULL;
        while (PQgetCopyData(conn, &row, 0) > 0) {
            PQfreemem(row);
            row = NULL;
        }
    } else if (st != PGRES_COPY_BOTH) {
        return;
    }
    PGresult *next;
    while ((next = PQgetResult(conn)) != NULL)
        PQclear(next);
}

/* Tracks whether the server has a transaction open after a statement. When the
 * connection is gone the state is unknown and the flag is kept as it was. */
static void s_track_transaction(ncc_db_t *self)
{
    if (!self->conn || PQstatus(self->conn) != CONNECTION_OK)
        return;
    PGTransactionStatusType ts = PQtransactionStatus(self->conn);
    self->in_tx = ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR || ts == PQTRANS_ACTIVE;
}

ncc_db_t *ncc_db_new(const char *conninfo, const char *schema)
{
    ncc_db_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->conninfo = strdup(conninfo ? conninfo : "");
    if (!self->conninfo)
        goto fail;
    if (schema && schema[0]) {
        self->schema = strdup(schema);
        if (!self->schema)
            goto fail;
    }
    return self;
fail:
    ncc_db_destroy(&self);
    return NULL;
}

void ncc_db_destroy(ncc_db_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ncc_db_t *self = *self_p;
    if (self->conn)
        PQfinish(self->conn);
    free(self->conninfo);
    free(self->schema);
    free(self);
    *self_p = NULL;
}

/* Runs a statement without parameters on the raw connection; 0 or -EIO with
 * the error recorded under `prefix`. No reconnect. */
static int s_run_raw(ncc_db_t *self, const char *sql, const char *prefix)
{
    PGresult *res = PQexecParams(self->conn, sql, 0, NULL, NULL, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    int rc = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        s_set_result_error(self, res, prefix);
        rc = -EIO;
    }
    PQclear(res);
    return rc;
}

/* "SET search_path TO <schema>, public" (or SET LOCAL), identifier quoted.
 * Caller frees. NULL on allocation failure. */
static char *s_search_path_sql(PGconn *conn, const char *schema, bool local)
{
    char *ident = PQescapeIdentifier(conn, schema, strlen(schema));
    if (!ident)
        return NULL;
    const char *fmt =
        local ? "SET LOCAL search_path TO %s, public" : "SET search_path TO %s, public";
    size_t len = strlen(fmt) + strlen(ident) + 1;
    char *sql = malloc(len);
    if (sql)
        snprintf(sql, len, fmt, ident);
    PQfreemem(ident);
    return sql;
}

int ncc_db_connect(ncc_db_t *self)
{
    if (self->conn) {
        PQfinish(self->conn);
        self->conn = NULL;
    }
    self->in_tx = false;
    self->lost = false;
    self->ready_checked_ms = 0;
    s_clear_error(self);

    /* Keywords before "dbname" are defaults that the conninfo may override;
     * expand_dbname makes libpq read "dbname" as the full string or URI. */
    const char *const keys[] = {"connect_timeout", "client_encoding", "fallback_application_name",
                                "dbname", NULL};
    const char *const values[] = {"3", "UTF8", program_invocation_short_name, self->conninfo, NULL};
    PGconn *conn = PQconnectdbParams(keys, values, 1);
    if (!conn) {
        s_set_error(self, S_STATE_CANNOT_CONNECT, "out of memory");
        return -ECONNREFUSED;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        s_set_error_text(self, "", PQerrorMessage(conn));
        snprintf(self->sqlstate, sizeof self->sqlstate, "%s", S_STATE_CANNOT_CONNECT);
        PQfinish(conn);
        return -ECONNREFUSED;
    }
    PQsetNoticeReceiver(conn, s_notice, self);
    self->conn = conn;
    if (self->schema) {
        char *sql = s_search_path_sql(conn, self->schema, false);
        int rc = sql ? s_run_raw(self, sql, "set search_path: ") : -ENOMEM;
        free(sql);
        if (rc < 0) {
            if (rc == -ENOMEM)
                s_set_error(self, S_STATE_CANNOT_CONNECT, "set search_path: out of memory");
            PQfinish(self->conn);
            self->conn = NULL;
            return -ECONNREFUSED;
        }
    }
    return 0;
}

/* Reads whatever arrived on an idle connection's socket, without blocking.
 * A session the server terminated shows up as a FATAL message followed by
 * EOF; reading the EOF marks the connection CONNECTION_BAD. Notifications
 * stay queued for PQnotifies. */
static void s_poll_idle(ncc_db_t *self)
{
    if (!self->conn || PQstatus(self->conn) != CONNECTION_OK ||
        PQtransactionStatus(self->conn) != PQTRANS_IDLE)
        return;
    for (int i = 0; i < 8; i++) {
        struct pollfd pfd = {.fd = PQsocket(self->conn), .events = POLLIN};
        if (pfd.fd < 0 || poll(&pfd, 1, 0) <= 0)
            break;
        if (!PQconsumeInput(self->conn))
            return; /* EOF or error: the connection is now bad */
    }
    /* Parses what was read: a FATAL error reaches s_notice and sets lost. */
    PQisBusy(self->conn);
}

bool ncc_db_ready(ncc_db_t *self)
{
    if (!self->conn || PQstatus(self->conn) != CONNECTION_OK)
        return false;
    PGTransactionStatusType ts = PQtransactionStatus(self->conn);
    if (ts != PQTRANS_IDLE)
        return true; /* busy in a transaction: it answered a moment ago */
    s_poll_idle(self);
    if (s_broken(self))
        return false;
    int64_t now = s_now_ms();
    if (self->ready_checked_ms && now - self->ready_checked_ms < 1000)
        return self->ready_ok;
    PGresult *res = PQexecParams(self->conn, "SELECT 1", 0, NULL, NULL, NULL, NULL, 0);
    self->ready_ok = PQresultStatus(res) == PGRES_TUPLES_OK;
    if (!self->ready_ok)
        s_set_result_error(self, res, "");
    PQclear(res);
    self->ready_checked_ms = now;
    return self->ready_ok && !s_broken(self);
}

const char *ncc_db_error(ncc_db_t *self)
{
    return self->error;
}

const char *ncc_db_sqlstate(ncc_db_t *self)
{
    return self->sqlstate;
}

PGconn *ncc_db_conn(ncc_db_t *self)
{
    return self->conn;
}

PGresult *ncc_db_exec(ncc_db_t *self, const char *sql, int nparams, const char *const *params,
                      char *ret_sqlstate)
{
    PGresult *result = NULL;
    if (ret_sqlstate)
        ret_sqlstate[0] = '\0';
    s_clear_error(self);
    bool may_reconnect = !self->in_tx && !self->no_reconnect;

    s_poll_idle(self); /* finds a connection that died while idle, before sending */
    if (s_broken(self)) {
        if (!may_reconnect && self->conn) {
            s_set_error(self, S_STATE_CONNECTION_LOST, "%s",
                        self->in_tx ? "connection lost inside a transaction: roll back and retry"
                                    : "connection lost while migrating");
            goto out;
        }
        if (ncc_db_connect(self) < 0)
            goto out;
    }

    for (int attempt = 0;; attempt++) {
        PGresult *res = PQexecParams(self->conn, sql, nparams, NULL, params, NULL, NULL, 0);
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
            s_track_transaction(self);
            result = res;
            goto out;
        }
        s_set_result_error(self, res, "");
        if (res)
            s_drain(self->conn, res);
        PQclear(res);
        if (!s_broken(self)) {
            s_track_transaction(self);
            goto out;
        }
        if (!may_reconnect || attempt > 0)
            goto out;
        /* The session is gone. The statement surely did not take effect only
         * when the server says it terminated the session (57P01..57P05): the
         * implicit transaction around the statement was rolled back. */
        bool resend = strncmp(self->sqlstate, "57P", 3) == 0;
        char saved_error[S_ERROR_MAX];
        memcpy(saved_error, self->error, sizeof saved_error);
        if (ncc_db_connect(self) < 0)
            goto out;
        if (!resend) {
            memcpy(self->error, saved_error, sizeof saved_error);
            snprintf(self->sqlstate, sizeof self->sqlstate, "%s", S_STATE_CONNECTION_LOST);
            goto out;
        }
    }
out:
    if (!result) {
        ncc_metrics_inc(NCC_METRIC_DB_ERRORS);
        if (ret_sqlstate)
            memcpy(ret_sqlstate, self->sqlstate, sizeof self->sqlstate);
    }
    return result;
}

int ncc_db_run(ncc_db_t *self, const char *sql, int nparams, const char *const *params)
{
    PGresult *res = ncc_db_exec(self, sql, nparams, params, NULL);
    if (!res)
        return -EIO;
    PQclear(res);
    return 0;
}

int ncc_db_begin(ncc_db_t *self)
{
    if (self->in_tx) {
        s_set_error(self, "25001", "a transaction is already open");
        return -EBUSY;
    }
    return ncc_db_run(self, "BEGIN", 0, NULL);
}

int ncc_db_commit(ncc_db_t *self)
{
    if (!self->in_tx) {
        s_set_error(self, "25P01", "commit without a transaction");
        return -EINVAL;
    }
    PGresult *res = ncc_db_exec(self, "COMMIT", 0, NULL, NULL);
    /* Whatever happened, this transaction is over. */
    self->in_tx = false;
    if (!res)
        return -EIO;
    /* COMMIT of a failed transaction "succeeds" with the tag ROLLBACK. */
    bool rolled_back = strcmp(PQcmdStatus(res), "COMMIT") != 0;
    PQclear(res);
    if (rolled_back) {
        s_set_error(self, "25P02", "transaction rolled back: an earlier statement failed");
        ncc_metrics_inc(NCC_METRIC_DB_ERRORS);
        return -EIO;
    }
    return 0;
}

void ncc_db_rollback(ncc_db_t *self)
{
    /* Runs on the raw connection so the error of the statement that made the
     * caller roll back stays readable in ncc_db_error(). */
    if (self->conn && PQstatus(self->conn) == CONNECTION_OK &&
        PQtransactionStatus(self->conn) != PQTRANS_IDLE) {
        PGresult *res = PQexecParams(self->conn, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0);
        PQclear(res);
    }
    self->in_tx = false;
}

bool ncc_db_in_transaction(ncc_db_t *self)
{
    return self->in_tx;
}

/* ---- migrations ----------------------------------------------------------- */

/* The 1-based line of the character at 1-based position `pos` in `sql`
 * (positions count characters, not bytes). 0 when out of range. */
static int s_line_of(const char *sql, long pos)
{
    int line = 1;
    long chars = 0;
    for (const unsigned char *p = (const unsigned char *)sql; *p; p++) {
        if ((*p & 0xc0) == 0x80)
            continue; /* UTF-8 continuation byte */
        if (++chars == pos)
            return line;
        if (*p == '\n')
            line++;
    }
    return 0;
}

/* Applies one migration unless `record` is already in schema_migrations. */
static int s_migrate_one(ncc_db_t *self, const char *ident, const char *schema, const char *record,
                         const char *sql)
{
    int rc = -EIO;
    char *check = NULL, *insert = NULL, *search_path = NULL;
    PGresult *res = NULL;
    const char *params[] = {record};

    if (asprintf(&check, "SELECT 1 FROM %s.schema_migrations WHERE name = $1", ident) < 0)
        check = NULL;
    if (asprintf(&insert, "INSERT INTO %s.schema_migrations (name) VALUES ($1)", ident) < 0)
        insert = NULL;
    search_path = s_search_path_sql(self->conn, schema, true);
    if (!check || !insert || !search_path) {
        s_set_error(self, "", "migration %s: out of memory", record);
        rc = -ENOMEM;
        goto out;
    }

    res = ncc_db_exec(self, check, 1, params, NULL);
    if (!res)
        goto out;
    bool applied = PQntuples(res) > 0;
    PQclear(res);
    res = NULL;
    if (applied) {
        rc = 0;
        goto out;
    }

    if (ncc_db_begin(self) < 0 || ncc_db_run(self, search_path, 0, NULL) < 0)
        goto fail;
    /* A migration file holds several statements: PQexec is the one libpq call
     * that runs a script. Its text comes from the binary, never from input. */
    res = PQexec(self->conn, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        const char *pos = res ? PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION) : NULL;
        int line = pos ? s_line_of(sql, strtol(pos, NULL, 10)) : 0;
        char prefix[256];
        snprintf(prefix, sizeof prefix, "migration %s failed: ", record);
        s_set_result_error(self, res, prefix);
        if (line > 0) {
            size_t n = strlen(self->error);
            snprintf(self->error + n, sizeof self->error - n, " (line %d)", line);
        }
        if (res)
            s_drain(self->conn, res);
        goto fail;
    }
    PQclear(res);
    res = NULL;
    if (ncc_db_run(self, insert, 1, params) < 0)
        goto fail;
    if (ncc_db_commit(self) < 0)
        goto fail;
    rc = 0;
    goto out;
fail:
    if (strncmp(self->error, "migration ", 10) != 0) {
        char text[S_ERROR_MAX];
        snprintf(text, sizeof text, "migration %.200s failed: %.780s", record, self->error);
        memcpy(self->error, text, sizeof text);
    }
    ncc_db_rollback(self);
    ncc_metrics_inc(NCC_METRIC_DB_ERRORS);
out:
    PQclear(res);
    free(check);
    free(insert);
    free(search_path);
    return rc;
}

int ncc_db_migrate(ncc_db_t *self, const char *schema, const ncc_migration_t *migrations)
{
    int rc = -EIO;
    bool locked = false;
    char *ident = NULL, *sql = NULL;
    const char *params[] = {schema};

    s_clear_error(self);
    if (!schema || !schema[0]) {
        s_set_error(self, "", "migrate: no schema");
        return -EINVAL;
    }
    if (self->in_tx) {
        s_set_error(self, "25001", "migrate: a transaction is open");
        return -EBUSY;
    }
    s_poll_idle(self);
    if (s_broken(self)) {
        rc = ncc_db_connect(self);
        if (rc < 0)
            return rc;
        rc = -EIO;
    }
    ident = PQescapeIdentifier(self->conn, schema, strlen(schema));
    if (!ident) {
        s_set_error(self, "", "migrate: %s", PQerrorMessage(self->conn));
        goto out;
    }

    /* The lock is held by the session: a reconnect would silently drop it. */
    self->no_reconnect = true;
    if (ncc_db_run(self, "SELECT pg_advisory_lock(hashtext('ncc.migrate.' || $1))", 1, params) < 0)
        goto out;
    locked = true;

    if (asprintf(&sql, "CREATE SCHEMA IF NOT EXISTS %s", ident) < 0) {
        sql = NULL;
        goto out;
    }
    if (ncc_db_run(self, sql, 0, NULL) < 0)
        goto out;
    free(sql);
    if (asprintf(&sql,
                 "CREATE TABLE IF NOT EXISTS %s.schema_migrations ("
                 "name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
                 ident) < 0) {
        sql = NULL;
        goto out;
    }
    if (ncc_db_run(self, sql, 0, NULL) < 0)
        goto out;

    for (size_t i = 0; i < ncc_sql_common_count && ncc_sql_common[i].name; i++) {
        char record[256];
        snprintf(record, sizeof record, "common/%s", ncc_sql_common[i].name);
        rc = s_migrate_one(self, ident, schema, record, ncc_sql_common[i].sql);
        if (rc < 0)
            goto out;
    }
    for (const ncc_migration_t *m = migrations; m && m->name; m++) {
        rc = s_migrate_one(self, ident, schema, m->name, m->sql);
        if (rc < 0)
            goto out;
    }
    rc = 0;
out:
    if (rc == -EIO && !self->error[0])
        s_set_error(self, "", "migrate %s: out of memory", schema);
    if (locked && self->conn && PQstatus(self->conn) == CONNECTION_OK) {
        /* On the raw connection, so the error above stays readable. */
        ncc_db_rollback(self);
        PGresult *res =
            PQexecParams(self->conn, "SELECT pg_advisory_unlock(hashtext('ncc.migrate.' || $1))", 1,
                         NULL, params, NULL, NULL, 0);
        PQclear(res);
    }
    self->no_reconnect = false;
    free(sql);
    PQfreemem(ident);
    return rc;
}

/* Statements that give `role` what the application needs in `schema`, one per
 * row: usage of the schema, all DML on ordinary tables, only SELECT and INSERT
 * on tables whose comment says "ncc:append-only" (the audit log), and the
 * sequences. Built by the server with format(%I), so names are quoted. */
static const char s_grant_sql[] =
    "WITH t AS ("
    "  SELECT n.nspname AS s, c.relname AS r, "
    "         coalesce(obj_description(c.oid, 'pg_class'), '') LIKE '%ncc:append-only%' AS ao "
    "  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "  WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')) "
    "SELECT stmt FROM ("
    "  SELECT 1 AS ord, format('GRANT USAGE ON SCHEMA %I TO %I', $1::text, $2::text) AS stmt "
    "  UNION ALL SELECT 2, format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I.%I TO %I', "
    "                             s, r, $2::text) FROM t WHERE NOT ao "
    "  UNION ALL SELECT 3, format('REVOKE ALL ON %I.%I FROM %I', s, r, $2::text) FROM t WHERE ao "
    "  UNION ALL SELECT 4, format('GRANT SELECT, INSERT ON %I.%I TO %I', s, r, $2::text) "
    "            FROM t WHERE ao "
    "  UNION ALL SELECT 5, format('GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA %I TO "
    "%I', "
    "                             $1::text, $2::text)"
    ") g ORDER BY ord";

int ncc_db_grant_app(ncc_db_t *self, const char *schema, const char *role)
{
    if (!schema || !role || !*role)
        return -EINVAL;
    const char *params[] = {schema, role};
    PGresult *res = ncc_db_exec(self, s_grant_sql, 2, params, NULL);
    if (!res)
        return -EIO;
    int rc = 0;
    for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
        if (s_run_raw(self, PQgetvalue(res, i, 0), "grant") < 0)
            rc = -EIO;
    }
    PQclear(res);
    return rc;
}

int ncc_db_migrate_with_owner(ncc_db_t *self, const char *owner_conninfo, const char *schema,
                              const ncc_migration_t *migrations)
{
    if (!owner_conninfo || !*owner_conninfo)
        return ncc_db_migrate(self, schema, migrations);
    if (!self->conn)
        return -ECONNREFUSED;
    ncc_db_t *owner = ncc_db_new(owner_conninfo, schema);
    if (!owner)
        return -ENOMEM;
    int rc = ncc_db_connect(owner);
    if (rc == 0)
        rc = ncc_db_migrate(owner, schema, migrations);
    if (rc == 0)
        rc = ncc_db_grant_app(owner, schema, PQuser(self->conn));
    if (rc < 0)
        s_set_error(self, ncc_db_sqlstate(owner), "as the schema owner: %s", ncc_db_error(owner));
    ncc_db_destroy(&owner);
    return rc;
}
