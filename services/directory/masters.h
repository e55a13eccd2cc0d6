/* masters: departments (所管課), the phone book, categories, the record
 * choice lists, FAQ classes, and users' CSV, kept by one mechanism driven by
 * a table of kinds (masters_kinds.c): list, get, create, update, delete
 * (refused while referenced; retire instead), CSV import and export, the
 * change history (R8), changes scheduled for a date, and the MasterChanged
 * event that keeps other daemons' caches live (R5). docs/masters.md.
 *
 *   masters_kinds.c     the table of kinds (data) and the value checks
 *   masters_batch.c     one change set: rows -> checks -> diff -> apply + history;
 *                       every SQL text made from the kind table
 *   masters_csv.c       CSV rows in, CSV files out
 *   masters_schedule.c  scheduled changes: store, list, cancel, apply when due
 *   masters.c           the bus handlers and the operations they share
 *
 * Shared by those files only. */
#ifndef MASTERS_H
#define MASTERS_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "directory.h"

/* ---- kinds (masters_kinds.c) ------------------------------------------------ */

typedef enum {
    MASTERS_TEXT,      /* free text, "" when empty */
    MASTERS_CODE,      /* the key: 1..max of A-Z a-z 0-9 . _ - */
    MASTERS_REF,       /* the code of an entry of kind `ref`, SQL NULL when empty */
    MASTERS_PHONE,     /* 0-9 + - ( ) # * and spaces, "" when empty */
    MASTERS_INT,       /* an integer in [-1000000, 1000000], 0 when empty */
    MASTERS_BOOL,      /* true|false (also 1|0, yes|no); true when empty */
    MASTERS_LOGIN,     /* users: the key, 1..64 of A-Z a-z 0-9 . _ @ - (any case) */
    MASTERS_ROLES,     /* users: operator supervisor admin staff, space- or comma-separated */
    MASTERS_EXTENSION, /* users: 0-9 * # + -, SQL NULL when empty */
    MASTERS_CODES,     /* codes of entries of kind `ref`, space- or comma-separated; stored
                          once each, in the order given, joined by one space; "" when empty */
    MASTERS_DAYS,      /* days of the week: mon tue wed thu fri sat sun (or 月 火 水 木 金 土
                          日); stored in week order joined by one space; "" when empty (every
                          day) */
    MASTERS_HOURS,     /* a time of day range HH:MM-HH:MM, start before end, end at most
                          24:00; "" when empty (all day) */
    MASTERS_WORD,      /* one of the words in `ref` (space-separated); the first when empty */
} masters_type_t;

typedef struct {
    const char *name;    /* JSON field, CSV column and SQL column */
    masters_type_t type; /* shape and SQL type */
    bool required;       /* must not be empty */
    unsigned max_chars;  /* longest value in characters (code points) */
    const char *ref;     /* MASTERS_REF, MASTERS_CODES: the kind it names an entry of;
                            MASTERS_WORD: the words allowed, space-separated */
    bool search;         /* List's q looks into it */
    bool filter;         /* List takes it as an exact filter (its request has the field) */
    bool unique;         /* unique among active entries, besides the key */
} masters_column_t;

/* One kind of master. The first column is the key (code, or login), the
 * last is `active`. */
typedef struct {
    const char *name;                /* "departments": URL segment, history kind, CSV name */
    const char *label;               /* "department": in messages */
    const char *table;               /* SQL table in the directory schema */
    bool nocase_key;                 /* keys compare case-insensitively (users' logins) */
    bool crud;                       /* List/Get/Create/Update/Delete here (users: users.c) */
    const masters_column_t *columns; /* key first, active last */
    size_t n_columns;
    /* The bus messages of the kind (NULL: not offered). */
    const ProtobufCMessageDescriptor *item, *list;
    const ProtobufCMessageDescriptor *list_request, *get_request, *create_request, *update_request,
        *delete_request, *import_request, *export_request;
} masters_kind_t;

/* Every kind, ending with one whose name is NULL. */
extern const masters_kind_t masters_kinds[];

/* The kind called `name`, or NULL. */
const masters_kind_t *masters_kind_find(const char *name);

/* The column `name` of `kind`, or NULL. */
const masters_column_t *masters_column_find(const masters_kind_t *kind, const char *name);

/* The key column (code or login). */
static inline const masters_column_t *masters_key(const masters_kind_t *kind)
{
    return &kind->columns[0];
}

/* The SQL type of a column ("text", "boolean", "integer", "text[]"). */
const char *masters_sql_type(const masters_column_t *column);

/* Checks one value given for `column` (from CSV or JSON, as text; NULL is
 * empty) and makes it canonical: NULL when it is fine, with *ret_value the
 * value to store (borrowed from `in`, from buf[len] or static; NULL for SQL
 * NULL); otherwise a sentence saying what is wrong (static). */
const char *masters_value_check(const masters_column_t *column, const char *in, char *buf,
                                size_t len, const char **ret_value);

/* ---- text buffers (masters_kinds.c) ------------------------------------------ */

/* A growing NUL-terminated text; `failed` once an allocation failed. */
typedef struct {
    char *data;
    size_t len, cap;
    bool failed;
} masters_buf_t;

void masters_buf_add(masters_buf_t *buf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void masters_buf_addn(masters_buf_t *buf, const char *text, size_t len);
void masters_buf_free(masters_buf_t *buf);

/* SQL fragments of a kind, appended to buf. Identifiers come from the kind
 * table, never from a request. */

/* The key of alias's row: "a.code", or "lower(a.login)". */
void masters_sql_key(masters_buf_t *buf, const masters_kind_t *kind, const char *alias);

/* jsonb_build_object('id', a.id, <columns>, 'version', a.version): the
 * entry as MasterValues. */
void masters_sql_values(masters_buf_t *buf, const masters_kind_t *kind, const char *alias);

/* The same plus created_at and updated_at (RFC 3339): the kind's item. */
void masters_sql_item(masters_buf_t *buf, const masters_kind_t *kind, const char *alias);

/* ---- errors -------------------------------------------------------------------- */

#define MASTERS_ERRORS_KEPT 1000 /* errors listed; more are only counted */
#define MASTERS_MAX_COLUMNS 12   /* columns of a kind at most */

typedef struct {
    size_t line;       /* CSV line, 0 for a request */
    size_t seq;        /* order of addition (sorting keeps it within a line) */
    const char *field; /* static (a column name), or NULL */
    char message[240];
} masters_error_t;

typedef struct {
    masters_error_t *items;
    size_t count, cap; /* kept */
    size_t total;      /* found */
    bool failed;       /* out of memory */
} masters_errors_t;

void masters_errors_add(masters_errors_t *errors, size_t line, const char *field, const char *fmt,
                        ...) __attribute__((format(printf, 4, 5)));
void masters_errors_sort(masters_errors_t *errors);
void masters_errors_free(masters_errors_t *errors);

/* ---- one change set (masters_batch.c) --------------------------------------------- */

/* Who makes a change (strings borrowed). */
typedef struct {
    const char *id;      /* user id, or "svc:directory" */
    const char *login;   /* resolved from the id when it is a user's */
    const char *role;    /* comma list */
    const char *address; /* the user's address */
    const char *trace_id;
} masters_actor_t;

typedef enum {
    MASTERS_BATCH_IMPORT, /* any rows: created or updated by key */
    MASTERS_BATCH_CREATE, /* one row whose key must be new (409 otherwise) */
    MASTERS_BATCH_UPDATE, /* one row whose key must exist */
} masters_batch_mode_t;

typedef struct {
    const masters_kind_t *kind;
    masters_batch_mode_t mode;
    const char *op;           /* create | update | import: change set and event */
    const char *source;       /* api | import | scheduled */
    bool preview;             /* compute what would change, apply nothing */
    bool replace;             /* import: retire the active entries the rows lack */
    masters_actor_t actor;    /* who */
    int64_t scheduled_id;     /* the scheduled change being applied, or 0 */
    const char *effective_at; /* when it takes effect (RFC 3339), NULL: now */
    masters_buf_t copy;       /* the rows as COPY text: line, then the columns */
    size_t rows;              /* rows in copy */
    masters_errors_t errors;  /* errors found in the rows, then by the checks */
} masters_batch_t;

/* What a change set did, or why it was refused. */
typedef struct {
    int status;        /* 0 done; else the HTTP status of the refusal */
    char code[32];     /* API.md error code ("invalid_csv", "conflict", ...) */
    const char *field; /* static, or NULL */
    char message[400]; /* for people */
    int64_t created, updated, unchanged, retired;
    int64_t change_id; /* the change set written, 0 when nothing changed */
    int64_t entry_id;  /* create, update, delete: the entry */
    cJSON *rows;       /* preview: the first 100 changes (owned), or NULL */
    cJSON *entry;      /* delete: the entry as it was, as the kind's item (owned) */
} masters_outcome_t;

/* Appends one row to batch->copy: `line`, then values[n_columns] (canonical,
 * NULL for SQL NULL). */
void masters_batch_add_row(masters_batch_t *batch, size_t line, const char *const *values);

/* Runs the change set inside the caller's open transaction (which holds the
 * masters lock, masters_lock): loads the rows, checks them (keys, references,
 * uniqueness, cycles), compares them with the table, and unless
 * batch->preview applies them with their history, the change set and the
 * MasterChanged event (in the outbox). 0 (also when refused: out->status and
 * batch->errors say why; the caller rolls back), or -EIO on a database
 * failure (ncc_db_error). out->rows is the caller's to free. */
int masters_batch_run(directory_t *dir, masters_batch_t *batch, masters_outcome_t *out);

void masters_batch_free(masters_batch_t *batch);
void masters_outcome_free(masters_outcome_t *out);

/* Inside a transaction: serialises every change of the masters (so change
 * ids commit in order). 0 or -EIO. */
int masters_lock(directory_t *dir);

/* Inside a transaction: writes a change set (master_changes) and returns
 * its id in *ret_id. 0 or -EIO. */
int masters_change_set(directory_t *dir, const masters_kind_t *kind, const char *op,
                       const char *source, const masters_actor_t *actor, int64_t scheduled_id,
                       const char *effective_at, int64_t entries, int64_t *ret_id);

/* Inside a transaction: adds ncc.directory.MasterChanged to the outbox for
 * change set `change_id`: code and entry_json (the entry's values as JSON
 * text, NULL after a delete) for a single change, both NULL after an
 * import. 0 or -EIO. */
int masters_event(directory_t *dir, const masters_kind_t *kind, const char *code, int64_t change_id,
                  const char *op, int64_t count, const char *entry_json,
                  const masters_actor_t *actor);

/* Statements of a kind for the handlers, appended to sql (masters_batch.c,
 * where all SQL made from the kind table is built). */
/* The entry $1 as the kind's item (JSON text). */
void masters_sql_get(masters_buf_t *sql, const masters_kind_t *kind);
/* The entry $1 locked: item (JSON text), key, version. */
void masters_sql_for_change(masters_buf_t *sql, const masters_kind_t *kind);
/* Entries of `kind` whose `column` is $1: the first `limit` keys and their count. */
void masters_sql_referrers(masters_buf_t *sql, const masters_kind_t *kind,
                           const masters_column_t *column, int limit);
/* Deletes the entry $1, returning its values (JSON text). */
void masters_sql_delete(masters_buf_t *sql, const masters_kind_t *kind);
/* {"items", "total"} of the entries matching `where`, ordered by `order`,
 * with LIMIT $limit_param and OFFSET $limit_param+1. */
void masters_sql_list(masters_buf_t *sql, const masters_kind_t *kind, const char *where,
                      const char *order, int limit_param);
/* MasterSnapshot of kind $1 (JSON text). */
void masters_sql_fetch(masters_buf_t *sql, const masters_kind_t *kind);
/* The CSV columns, as text, of the entries matching `where`. */
void masters_sql_export(masters_buf_t *sql, const masters_kind_t *kind, const char *where,
                        const char *order);

/* ---- CSV (masters_csv.c) -------------------------------------------------------------- */

/* Reads an import file (`len` bytes as sent: UTF-8, with or without a BOM, or
 * Shift_JIS) into batch (rows, and the errors of single values). On a file
 * that cannot be read at all (encoding, CSV syntax, wrong header) fills
 * out->status (400 or 422) and returns -EINVAL; otherwise 0 (check
 * batch->errors). *ret_utf8 (may be NULL) gets the file as UTF-8 (caller
 * frees) and *ret_encoding "utf-8" or "shift_jis". -ENOMEM. */
int masters_csv_read(const masters_kind_t *kind, const uint8_t *data, size_t len,
                     masters_batch_t *batch, masters_outcome_t *out, char **ret_utf8,
                     const char **ret_encoding);

/* The entries of `kind` matching `where` (SQL after WHERE, params $1..) as a
 * CSV file: the header of column names, then one row per entry ordered by
 * `order`. 0 with *ret_csv (caller frees) and *ret_rows, -EIO (database),
 * -ENOMEM. cp932: Shift_JIS (unrepresentable characters become '?'), else
 * UTF-8 with a BOM. */
int masters_csv_export(directory_t *dir, const masters_kind_t *kind, const char *where, int nparams,
                       const char *const *params, const char *order, bool cp932, char **ret_csv,
                       size_t *ret_len, size_t *ret_rows);

/* ---- scheduled changes (masters_schedule.c) --------------------------------------------- */

/* Checks an effective_at as given (RFC 3339 with an offset, or a date meaning
 * 00:00 Asia/Tokyo) and that it lies ahead. 1 with the canonical RFC 3339 in
 * out[len]; 0 with *ret_why (static) when it is malformed or not in the
 * future; -EIO. */
int masters_effective_at(directory_t *dir, const char *text, char *out, size_t len,
                         const char **ret_why);

/* Stores a change for later, inside the caller's transaction. `fields` (may
 * be NULL) is the JSON of the fields given; `csv` the UTF-8 file (import).
 * *ret_id gets the new id. 0 or -EIO. */
int masters_schedule_store(directory_t *dir, const masters_kind_t *kind, const char *op,
                           const char *code, int64_t target_id, const cJSON *fields,
                           const char *csv, int64_t rows, bool replace, const char *effective_at,
                           const masters_actor_t *actor, int64_t *ret_id);

/* Answers the ScheduledChange `id` (read after the commit). */
void masters_schedule_reply(directory_t *dir, ncc_reply_t *reply, int64_t id);

/* The ScheduledChange `id` as JSON into *ret_json: as masters_query_json. */
int masters_schedule_json(directory_t *dir, int64_t id, cJSON **ret_json);

/* Registers ListScheduledChanges, CancelScheduledChange and the timer that
 * applies due changes. 0 or a negative errno. */
int masters_schedule_register(directory_t *dir);

/* ---- operations (masters.c), shared with the scheduler ---------------------------------- */

/* One operation on one kind, by `actor`, inside a transaction the caller
 * opened and holds the masters lock in. */
typedef struct {
    directory_t *dir;
    const masters_kind_t *kind;
    masters_actor_t actor;
    const char *source;       /* api | scheduled */
    int64_t scheduled_id;     /* 0, or the scheduled change */
    const char *effective_at; /* the scheduled time (RFC 3339), NULL: now */
} masters_op_t;

/* The fields (a JSON object of column values) as a new entry. */
int masters_op_create(const masters_op_t *op, const cJSON *fields, masters_outcome_t *out);

/* PATCH entry `id` with `fields`; version < 0: not checked. */
int masters_op_update(const masters_op_t *op, int64_t id, int64_t version, const cJSON *fields,
                      masters_outcome_t *out);

/* Deletes entry `id` unless something refers to it (409 "referenced"). */
int masters_op_delete(const masters_op_t *op, int64_t id, int64_t version, masters_outcome_t *out);

/* Imports a UTF-8 CSV file (as stored by the scheduler). */
int masters_op_import(const masters_op_t *op, const char *csv, size_t len, bool replace,
                      masters_outcome_t *out);

/* Sets out to a refusal. Returns 0 (what the operations return then). */
int masters_refuse(masters_outcome_t *out, int status, const char *code, const char *field,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* The actor of a request, with the user's login looked up (login_buf holds
 * it). */
masters_actor_t masters_actor_of(directory_t *dir, const ncc_request_t *request, char *login_buf,
                                 size_t login_len);

/* A JSON text reply: converts `json` to a `desc` message and answers it
 * (500 when it does not convert). */
void masters_reply_json(ncc_reply_t *reply, const ProtobufCMessageDescriptor *desc,
                        const cJSON *json);

/* Runs `sql` (one row of one text column holding JSON) and parses it into
 * *ret_json (caller deletes). 1; 0 when there is no row (or it is NULL);
 * -EIO (ncc_db_error); -ENOMEM (or unparsable). */
int masters_query_json(directory_t *dir, const char *sql, int nparams, const char *const *params,
                       cJSON **ret_json);

/* Registers the masters' handlers (directory_new). 0 or a negative errno. */
int directory_masters_register(directory_t *self);

#endif
