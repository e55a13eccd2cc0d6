/* db: PostgreSQL access through libpq, parameterised queries only, and the
 * migration runner. A connection belongs to one thread. Library code here does
 * not log errors it returns; the caller logs once. */
#ifndef NCC_DB_H
#define NCC_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <libpq-fe.h>

typedef struct ncc_db ncc_db_t;

/* One migration: file name ("001_init.sql") and its SQL text. Tables of these
 * are generated from the .sql files in <dir>/sql by scripts/gen-sql.sh as
 * ncc_sql_<name>[] (ending with {NULL, NULL}) and ncc_sql_<name>_count. */
typedef struct {
    const char *name;
    const char *sql;
} ncc_migration_t;

/* The migrations every service schema gets first (bus outbox, inbox cursors). */
extern const ncc_migration_t ncc_sql_common[];
extern const size_t ncc_sql_common_count;

/* Creates a handle; does not connect. `conninfo` is a libpq string or URI
 * (copied); connect_timeout defaults to 3 s and client_encoding to UTF8 unless
 * it names them. `schema` (copied, may be NULL) becomes the search_path of
 * every connection ("<schema>, public"). NULL on allocation failure. */
ncc_db_t *ncc_db_new(const char *conninfo, const char *schema);
void ncc_db_destroy(ncc_db_t **self_p);

/* Connects (or reconnects); 0 or -ECONNREFUSED with the reason in
 * ncc_db_error(). Never blocks longer than the connect_timeout (3 s default). */
int ncc_db_connect(ncc_db_t *self);

/* True when connected and the server answers. Cheap: checks the socket, and
 * runs "SELECT 1" at most once per second. */
bool ncc_db_ready(ncc_db_t *self);

/* The last error text (borrowed, valid until the next call). Holds the
 * server's primary message only, never its DETAIL (which may quote row values). */
const char *ncc_db_error(ncc_db_t *self);

/* The SQLSTATE of the last failure ("23505"), "08006" when the connection was
 * lost, or "" when the last call succeeded or the error had no code. Borrowed. */
const char *ncc_db_sqlstate(ncc_db_t *self);

/* The underlying connection (borrowed) or NULL when not connected. */
PGconn *ncc_db_conn(ncc_db_t *self);

/* Runs `sql` (one statement, PQexecParams) with text parameters $1..$n
 * (NULL = SQL NULL). Returns the result (caller PQclear()s) when it is
 * PGRES_COMMAND_OK or PGRES_TUPLES_OK; otherwise NULL with ncc_db_error() set
 * and the SQLSTATE (as ncc_db_sqlstate) in ret_sqlstate (6 bytes incl. NUL;
 * may be NULL; "" on success). Connects when not connected.
 * Outside a transaction, a lost connection is reconnected once: the statement
 * is sent again only when it cannot have run (the connection was already
 * broken, or the server reports it terminated the session, SQLSTATE 57P*);
 * when the outcome is unknown it fails with "08006" and the next call uses the
 * new connection. Inside a transaction nothing is retried: the caller rolls
 * back (ncc_db_rollback) and starts again. */
PGresult *ncc_db_exec(ncc_db_t *self, const char *sql, int nparams, const char *const *params,
                      char *ret_sqlstate);

/* As ncc_db_exec for a command whose rows are not needed: 0 or -EIO. */
int ncc_db_run(ncc_db_t *self, const char *sql, int nparams, const char *const *params);

/* Transactions: 0 or -EIO (ncc_db_error and ncc_db_sqlstate say why).
 * begin: -EBUSY when one is already open. commit: -EINVAL when none is open;
 * -EIO when the server rolled the transaction back instead (a serialization
 * failure "40001", or "25P02" after an earlier failed statement); the
 * transaction is over either way. rollback keeps the last error readable. */
int ncc_db_begin(ncc_db_t *self);
int ncc_db_commit(ncc_db_t *self);
void ncc_db_rollback(ncc_db_t *self); /* safe when no transaction is open */
bool ncc_db_in_transaction(ncc_db_t *self);

/* Creates `schema` if needed and applies, in order, first ncc_sql_common then
 * `migrations` (ending with {NULL, NULL}; NULL = none), each once, each in its
 * own transaction with search_path "<schema>, public", under
 * pg_advisory_lock(hashtext('ncc.migrate.' || schema)) so that copies starting
 * together do not race. Applied names are recorded in
 * <schema>.schema_migrations ("common/001_bus.sql" for the common ones).
 * Stops at the first failure, whose transaction is rolled back, with the file
 * named in ncc_db_error(). Migration files must not COMMIT themselves.
 * 0, -EBUSY inside a transaction, -ECONNREFUSED, or -EIO. */
int ncc_db_migrate(ncc_db_t *self, const char *schema, const ncc_migration_t *migrations);

/* Run as the owner of `schema` after migrating: grants the application role
 * `role` usage of the schema, all DML on its tables except those whose comment
 * contains "ncc:append-only" (SELECT and INSERT only: the audit log), and its
 * sequences. So the role the daemons run as cannot rewrite history.
 * 0, -EINVAL or -EIO. */
int ncc_db_grant_app(ncc_db_t *self, const char *schema, const char *role);

/* What a daemon does at start: when owner_conninfo is set (and not empty),
 * connects as the schema owner, migrates and grants the role `self` is
 * connected as (ncc_db_grant_app); otherwise migrates through `self`. `self`
 * must be connected. Errors land in ncc_db_error(self). 0 or a negative errno. */
int ncc_db_migrate_with_owner(ncc_db_t *self, const char *owner_conninfo, const char *schema,
                              const ncc_migration_t *migrations);

#endif
