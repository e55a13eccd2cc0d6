/* history: the ncc-history service object (interaction records, 応対履歴;
 * docs/history.md). main.c builds it through the service frame; its
 * handlers live in records.c (create, read, change, list, the caller's
 * history), calls_feed.c (records made from ncc-calls' CallStateChanged),
 * transfer.c (CSV export pages and import) and retention.c (purge, erase);
 * search.c is the keyword index. This header is shared by those files only. */
#ifndef HISTORY_H
#define HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <czmq.h>

#include "history.pb-c.h"
#include "ncc/json.h"
#include "ncc/masters_cache.h"
#include "settings.pb-c.h"
#include "ncc/service.h"
#include "search.h"

/* The service's own settings (NCC_* variables, table in main.c). */
typedef struct {
    int retention_fiscal_years; /* NCC_HISTORY_RETENTION_FISCAL_YEARS: 0 keeps every year */
    int index_poll_ms;          /* NCC_HISTORY_INDEX_POLL_MS */
    int purge_check_s;          /* NCC_HISTORY_PURGE_CHECK_S: how often the purge job looks */
} history_settings_t;

typedef struct {
    ncc_service_t *service;       /* borrowed: the frame */
    ncc_db_t *db;                 /* borrowed from the frame, loop thread only */
    history_settings_t *settings; /* borrowed: filled (and reloaded) by the frame */
    ncc_masters_cache_t *masters; /* owned: departments, categories, reception and handling types */
    history_search_t *search;     /* owned: the keyword index and its thread */
    zhashx_t *operator_names;     /* owned: user id text -> s_name_t (records.c) */
    bool flush_pending;           /* events were added by a subscriber handler */
    int64_t last_purge_check_us;  /* the purge job's last look */
    bool keys_warned;             /* "no data keys" was logged */
    ncc_db_t *export_db;          /* owned: the export's second connection (pages asked ahead) */
    char *prefetch_key;           /* owned: the query in flight on it, or NULL */
    /* The record form setting (form.c): the newest one seen from ncc-directory, else the
     * built-in default (the directory's version 1). */
    Ncc__Directory__RecordFormDefinition *form;         /* owned: from the directory, or NULL */
    Ncc__Directory__RecordFormDefinition *form_default; /* owned: the built-in default */
    int64_t form_version;                               /* of `form`; 0: none yet */
    int64_t form_next_try_us;                           /* the next GetRecordForm while none */
    int form_retry_s;                                   /* its back-off */
} history_t;

/* Encryption and blind-index context of the caller's number. */
#define HISTORY_CALLER_CONTEXT "history.records.caller_number"

history_t *history_new(ncc_service_t *service, history_settings_t *settings);
void history_destroy(history_t **self_p);

/* Handler registration, one per file. 0 or a negative errno. */
int history_records_register(history_t *self);
int history_calls_register(history_t *self);
int history_transfer_register(history_t *self);
int history_retention_register(history_t *self);
int history_form_register(history_t *self);
int history_summary_register(history_t *self);

/* ---- the record form setting (form.c) --------------------------------------------------- */

/* The definition records are checked against: the newest from ncc-directory, or the
 * built-in default while none was had. Borrowed until the next event. */
const Ncc__Directory__RecordFormDefinition *history_form(history_t *self);

/* Frees the definitions (history_destroy). */
void history_form_clear(history_t *self);

/* The setting's initial status ("open" when it has none). */
const char *history_form_initial(history_t *self);

/* True when `status` is final in the setting ("closed" for a status it does not know). */
bool history_form_final(history_t *self, const char *status);

/* The x_ values of a record being saved: `given` (the request's, checked here by name,
 * type and length) applied over `base` (the stored object, or NULL for a new record):
 * "" removes a value. *ret_merged is a new object (caller cJSON_Delete()s). False after
 * answering 422 naming the field (an x_ field the form lacks, a bad value). */
bool history_form_extra(history_t *self, Ncc__History__RecordValue *const *given, size_t n,
                        const cJSON *base, cJSON **ret_merged, ncc_reply_t *reply);

/* True when `name` is a field of the ward's own (x_...) in the record form. */
bool history_form_has_extra(history_t *self, const char *name);

/* One x_ value of a CSV import row (not empty): the field must be in the record form, the
 * value is checked as a save checks it (type, length, choices) and written canonical into
 * out. False with the reason in err. */
bool history_form_import_value(history_t *self, const char *name, const char *value, char *out,
                               size_t len, char *err, size_t errlen);

/* One built-in field of a record being saved: its value as text ("" or NULL: empty) and
 * as stored before (NULL for a new record). */
typedef struct {
    const char *name, *value, *was;
} history_form_value_t;

typedef struct {
    const history_form_value_t *values; /* the built-ins */
    size_t n_values;
    const cJSON *extra;     /* the x_ values as they would be stored */
    const cJSON *extra_was; /* as stored; NULL for a new record */
    const char *status;
    const char *status_was; /* NULL for a new record */
} history_form_input_t;

/* The setting's rules on a record a user saves: the status known and reached by a
 * transition it allows (a new record: the initial status or one of its `next`), every
 * required visible field filled, values of choice fields in their list, text within
 * max_length. False after answering 422 naming the field. */
bool history_form_check(history_t *self, const history_form_input_t *in, ncc_reply_t *reply);

/* ---- final call summaries (summary_feed.c) ---------------------------------------------- */

/* Inside the caller's transaction, after record `id` of call `call_id` was made: applies
 * a CallSummary that arrived before it (and forgets it). 1 when applied, 0, -EIO. */
int history_summary_apply_pending(history_t *self, ncc_db_t *db, int64_t id, const char *call_id);

/* Drops the export's prefetch and its connection (transfer.c; before destroy). */
void history_transfer_stop(history_t *self);

/* The purge job (retention.c), from the service timer. */
void history_retention_tick(history_t *self);

/* ---- shared helpers (history.c) --------------------------------------------------------- */

/* Logs the database failure once, rolls back, answers 503 (connection lost) or 500. */
void history_reply_db_error(history_t *self, ncc_reply_t *reply, const char *what);

/* After a commit that added events: publishes them and wakes the index. */
void history_flush(history_t *self);

/* SQL fragments, kept readable (clang-format would split the strings). */
// clang-format off

/* A timestamptz column as RFC 3339 in Asia/Tokyo (no daylight saving: +09:00). */
#define HISTORY_RFC3339(col) \
    "to_char(" col " AT TIME ZONE 'Asia/Tokyo', 'YYYY-MM-DD\"T\"HH24:MI:SS\"+09:00\"')"

/* A timestamptz column as Unix microseconds (formatted in C: to_char costs
 * the export more than everything else it asks of PostgreSQL). */
#define HISTORY_US(col) "(date_part('epoch', " col ") * 1000000)::bigint"

/* The columns of a record, in the order history_record_from_row reads them. */
#define HISTORY_RECORD_COLUMNS \
    "id, receipt_id, call_id, channel, operator_id, operator_name, " \
    HISTORY_US("started_at") ", " HISTORY_US("ended_at") ", " \
    HISTORY_US("wrapup_ended_at") ", reception_type, department_id, handling_type, " \
    "array_to_string(faq_ids, ' '), category, inquiry, response, transfer_to, summary, status, " \
    HISTORY_US("created_at") ", " HISTORY_US("updated_at") ", version, caller_number, " \
    "fiscal_year"

/* The same with the x_ values (history_record_from_row reads the column by its name). */
#define HISTORY_RECORD_COLUMNS_EXTRA HISTORY_RECORD_COLUMNS ", extra::text AS record_extra"

// clang-format on

/* A record read from the database, as a message. */
typedef struct {
    Ncc__History__Record msg; /* strings borrowed from the PGresult, but caller_number */
    int64_t faq_ids[3];
    char *caller_number; /* owned: decrypted, or NULL */
    int64_t started_us;  /* started_at in Unix microseconds (export cursors) */
    char times[5][32];   /* started, ended, wrap-up, created, updated as RFC 3339 */
    cJSON *extra;        /* owned: the x_ values ({} or NULL when not read) */
    Ncc__History__RecordValue *extra_items; /* owned: msg.extra's, strings in `extra` */
    Ncc__History__RecordValue **extra_ptrs; /* owned */
} history_record_t;

/* Unix microseconds as RFC 3339 in Asia/Tokyo, to the second, into out[32]. */
void history_time_format(int64_t unix_us, char out[32]);

/* Fills rec from row `row` of HISTORY_RECORD_COLUMNS (decrypting the caller's
 * number; a value that does not decrypt is logged with the record id and
 * left out). Free with history_record_clear; res must outlive rec. */
void history_record_from_row(history_t *self, const PGresult *res, int row, history_record_t *rec);
void history_record_clear(history_record_t *rec);

/* Reads record `id` (in or out of a transaction; `lock`: FOR UPDATE) into
 * *ret_res (caller PQclear()s) and rec. 0, -ENOENT, -EIO. */
int history_record_load(history_t *self, int64_t id, bool lock, PGresult **ret_res,
                        history_record_t *rec);

/* Inside the caller's transaction: adds ncc.history.RecordChanged for `rec`
 * to the outbox. 0 or -EIO. */
int history_record_changed(history_t *self, const ncc_ctx_t *ctx, const history_record_t *rec,
                           const char *change, const char *source);

/* A new record, for history_insert. Strings borrowed; NULL or "" = empty. */
typedef struct {
    const char *receipt_id; /* NULL: the next number of the fiscal year */
    const char *started_at; /* required: RFC 3339 text */
    const char *call_id;
    const char *channel; /* required */
    int64_t operator_id;
    const char *operator_name;
    const char *ended_at;
    const char *wrapup_ended_at; /* NULL: now() when status is closed and wrapup_now */
    bool wrapup_now;
    const char *reception_type, *department_id, *handling_type, *category;
    const int64_t *faq_ids;
    size_t n_faq_ids;
    const char *inquiry, *response, *transfer_to, *summary;
    const char *status;        /* NULL: open */
    const char *caller_number; /* plain text: encrypted here, with its blind index */
    const char *extra;         /* the x_ values as JSON object text; NULL: {} */
    bool status_final;         /* status is final in the setting (wrap-up end with wrapup_now) */
    const char *source;        /* api | call | import */
    int64_t call_version;
} history_new_record_t;

/* Inside the caller's transaction: inserts the record (a receipt id is
 * given from the fiscal year's counter, or the given one moves the counter
 * past it). 0 with *ret_id; -EEXIST when the call_id or receipt_id is taken
 * (the transaction is then aborted: roll back); -ENOKEY when a caller number
 * is given but no data keys are configured; -EIO. */
int history_insert(history_t *self, const history_new_record_t *record, int64_t *ret_id);

/* The caller's number reduced to what the blind index hashes: its digits
 * (full-width too), "+81" made "0". False when nothing is left. */
bool history_caller_digits(const char *number, char *out, size_t len);

/* Encrypts `number` into *ret_cipher (caller frees) and its blind index into
 * bidx. 0, -ENOKEY (no keys), -EINVAL (no digit), -EIO. */
int history_caller_seal(history_t *self, const char *number, char **ret_cipher, char bidx[65]);

/* ---- checks (history.c) ---------------------------------------------------------------- */

/* Times: "2027-04-01T09:00:00+09:00", "...Z", fractions of a second; with
 * HISTORY_TIME_DATE a date alone ("2027-04-01": 00:00 in Asia/Tokyo), with
 * HISTORY_TIME_LOCAL also no offset (Asia/Tokyo) and Excel's forms
 * ("2027/4/1 9:05", "2027-04-01 09:05:00"). */
enum { HISTORY_TIME_DATE = 1u << 0, HISTORY_TIME_LOCAL = 1u << 1 };

/* Parses `text` into canonical RFC 3339 out[40] and Unix seconds. 0, or
 * -EINVAL when it is not such a time (or out of range); *ret_date_only tells a
 * date (may be NULL). */
int history_time_parse(const char *text, unsigned flags, char out[40], int64_t *ret_unix,
                       bool *ret_date_only);

/* Valid UTF-8 of at most max_chars characters, without control characters
 * (TAB, CR and LF allowed when multiline). */
bool history_text_ok(const char *text, size_t max_chars, bool multiline);

/* A master code: 1 to 32 of A-Z a-z 0-9 . _ - */
bool history_code_ok(const char *code);

/* A call id: 1 to 128 of A-Z a-z 0-9 . _ : @ - */
bool history_call_id_ok(const char *id);

/* Checks `code` of field `field` against the masters cache (kind `kind`):
 * "" passes; an unknown code, or a retired one that differs from `current`,
 * is written into err (a sentence) and false returned. */
bool history_code_known(history_t *self, const char *kind, const char *field, const char *code,
                        const char *current, char *err, size_t errlen);

/* The name of user `id` (ncc-directory, cached for minutes) into out;
 * "" when it cannot be had. */
void history_operator_name(history_t *self, int64_t id, char *out, size_t len);

/* "123" -> 123; false unless the whole string is a positive decimal int64. */
bool history_parse_id(const char *text, int64_t *ret_id);

/* ---- filters of lists and exports (records.c) --------------------------------------------- */

/* The filters of ListRecords and ExportRecords, checked, with what SQL and
 * the index need. Strings borrowed from the request. */
typedef struct {
    const char *q; /* NULL when absent or blank */
    bool has_from, has_to;
    bool to_is_date;        /* `to` was a date: the whole day counts */
    char from[40], to[40];  /* canonical RFC 3339 */
    int64_t from_us, to_us; /* inclusive bounds in Unix microseconds */
    unsigned status_mask, channel_mask;
    char status_array[64], channel_array[64]; /* "{open,closed}" for SQL, "" when none */
    const char *department_id, *category, *reception_type, *handling_type, *call_id;
    bool has_operator;
    int64_t operator_id;
    int fiscal_year; /* 0: any */
} history_filter_t;

/* The raw filter fields of a request (borrowed). */
typedef struct {
    const char *q, *from, *to;
    char **status;
    size_t n_status;
    char **channel;
    size_t n_channel;
    const char *department_id, *category, *reception_type, *handling_type, *call_id;
    bool has_operator;
    int64_t operator_id;
    bool has_fiscal_year;
    int32_t fiscal_year;
} history_filter_input_t;

/* The filter fields of a ListRecords or ExportRecords message `m` (the two carry the same
 * names) as a history_filter_input_t initialiser. */
#define HISTORY_FILTER_INPUT_OF(m)                                                                 \
    {                                                                                              \
        .q = (m)->q, .from = (m)->from, .to = (m)->to, .status = (m)->status,                      \
        .n_status = (m)->n_status, .channel = (m)->channel, .n_channel = (m)->n_channel,           \
        .department_id = (m)->department_id, .category = (m)->category,                            \
        .reception_type = (m)->reception_type, .handling_type = (m)->handling_type,                \
        .call_id = (m)->call_id, .has_operator = (m)->has_operator_id,                             \
        .operator_id = (m)->operator_id, .has_fiscal_year = (m)->has_fiscal_year,                  \
        .fiscal_year = (m)->fiscal_year,                                                           \
    }

/* Checks the input into *f; on a bad value answers 422 naming the field and
 * returns false. */
bool history_filter_parse(const history_filter_input_t *in, history_filter_t *f,
                          ncc_reply_t *reply);

/* The SQL condition of f (without q) into where ("true" when none), its
 * parameters appended to params from *n (at most 12 are added). */
void history_filter_sql(const history_filter_t *f, char *where, size_t len, const char **params,
                        int *n);

/* The index query of f (q, filters; sort and page left to the caller). */
void history_filter_query(const history_filter_t *f, history_query_t *query);

/* The ids of the records with call_id (at most a few), for the index's
 * only_ids. 0 with *ret_ids (caller frees), -EIO. */
int history_ids_of_call(history_t *self, const char *call_id, int64_t **ret_ids, size_t *ret_n);

/* Reads the records of `ids` (in that order; ids no longer there are left
 * out) into *ret_res and recs[] (n_ids entries, caller clears each and
 * PQclear()s). 0 with *ret_count, -EIO. */
int history_records_by_ids(history_t *self, const int64_t *ids, size_t n_ids, PGresult **ret_res,
                           history_record_t *recs, size_t *ret_count);

#endif
