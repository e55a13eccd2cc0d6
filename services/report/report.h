/* report: the state of ncc-report and what its files share. facts.c folds the
 * services' events into report's own tables (contacts, records, surveys, FAQ
 * searches); kpi.c turns a period into the figures of docs/kpi.md; files.c
 * writes them as CSV and XLSX; live.c pushes the live figures to supervisors;
 * batch.c is `ncc-report --batch`; report.c registers the handlers. */
#ifndef REPORT_H
#define REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ncc/masters_cache.h"
#include "ncc/service.h"
#include "report.pb-c.h"

typedef struct {
    int service_level_seconds; /* NCC_REPORT_SERVICE_LEVEL_SECONDS */
    int max_days;              /* NCC_REPORT_MAX_DAYS: the longest period asked */
    int live_ms;               /* NCC_REPORT_LIVE_MS: the live push period */
    int live_check_ms;         /* NCC_REPORT_LIVE_CHECK_MS: a change is pushed this soon */
} report_settings_t;

typedef struct {
    ncc_service_t *service; /* borrowed */
    ncc_db_t *db;           /* borrowed: the service's connection */
    const report_settings_t *settings;
    ncc_masters_cache_t *masters; /* departments, categories: their names (owned) */
    bool live_dirty;              /* a call changed since the last live push */
    int64_t live_last_us;         /* when the last live push went */
    char live_last_data[512];     /* what it said (no repeat of the same figures within live_ms) */
} report_t;

report_t *report_new(ncc_service_t *service, const report_settings_t *settings);
void report_destroy(report_t **self_p);

/* facts.c: subscribes to calls, history, sms and faq events. 0 or a negative errno. */
int report_facts_register(report_t *self);
/* live.c: the live timer and GetLiveMetrics. 0 or a negative errno. */
int report_live_register(report_t *self);

/* ---- periods and figures (kpi.c) ---------------------------------------------------------- */

/* The groupings, in the order of the XLSX sheets. */
extern const char *const report_groups[];       /* "hour", "day", ... NULL-terminated */
extern const char *const report_group_ja[];     /* "時間帯別", ... */
extern const char *const report_group_key_ja[]; /* the key column's heading: "時間帯", ... */

typedef struct {
    char from[40];   /* RFC 3339, inclusive */
    char to[40];     /* RFC 3339, exclusive */
    char name[40];   /* for file names: 2027-04-01_2027-04-30 */
    bool whole_days; /* both bounds are 00:00 Asia/Tokyo: the figures of days can be kept */
    char first_day[16], last_day[16]; /* its days (Asia/Tokyo), inclusive */
} report_period_t;

/* Reads from/to as the API takes them (date: 00:00 Asia/Tokyo; `to` date: the
 * whole day; or RFC 3339) and checks them against `db`: 0, or -EINVAL with a
 * sentence in err and the field in *ret_field (to answer 400), -EIO when the
 * database failed. Missing from: the 1st of this month; missing to: today. */
int report_period_parse(ncc_db_t *db, const char *from, const char *to, int max_days,
                        report_period_t *ret, const char **ret_field, char *err, size_t errlen);

/* Index of `group` in report_groups, -1 when unknown; NULL/"" is "day". */
int report_group_index(const char *group);

typedef struct {
    char key[64];
    char label[160];
    int64_t offered, calls_offered, answered, abandoned, within, talk_total, transferred, one_stop,
        surveys;
    double abandon_rate, service_level, asa, talk, acw, aht, one_stop_rate, satisfaction;
} report_row_t;

typedef struct {
    report_period_t period;
    int group; /* index in report_groups */
    int sl_seconds;
    report_row_t *rows; /* owned */
    size_t n_rows;
    report_row_t total;
} report_table_t;

/* The figures of `period` by `group` (index in report_groups); 0 or -EIO. */
int report_table_load(ncc_db_t *db, const report_period_t *period, int group, int sl_seconds,
                      report_table_t *ret);
void report_table_clear(report_table_t *table);
/* Every grouping at once (one scan): ret[i] is the table of report_groups[i]. 0 or -EIO. */
int report_tables_load_all(ncc_db_t *db, const report_period_t *period, int sl_seconds,
                           report_table_t ret[7]);

/* Names the rows of a department or category table after the masters (`masters` may be
 * NULL: the codes stay). */
void report_table_name(report_table_t *table, const ncc_masters_cache_t *masters);

/* FAQ usage, zero-hit searches, satisfaction of a period (owned strings). */
typedef struct {
    int64_t number, used, shown;
    char *question;
} report_faq_t;
typedef struct {
    char *query;
    int64_t count, public_count;
    char *last_at;
} report_zero_t;
typedef struct {
    report_faq_t *faqs;
    size_t n_faqs;
    report_zero_t *zeros;
    size_t n_zeros;
    int64_t searches, zero_searches;
    int64_t answers, by_score[5], resolved;
    double average;
} report_extras_t;

int report_extras_load(ncc_db_t *db, const report_period_t *period, size_t limit,
                       report_extras_t *ret);
void report_extras_clear(report_extras_t *extras);

/* A row as its protobuf message (strings borrowed from row). */
void report_row_to_pb(const report_row_t *row, Ncc__Report__KpiRow *out);

/* ---- files (files.c) ---------------------------------------------------------------------- */

/* The CSV of one table (header in Japanese, a total row last), UTF-8 with a
 * BOM or CP932: *ret_data (caller frees), *ret_len. 0, -ENOMEM, -EILSEQ. */
int report_csv(const report_table_t *table, bool cp932, char **ret_data, size_t *ret_len);

/* The workbook of a period into the file `path` (created): a summary sheet
 * with the totals, the satisfaction and a chart, one sheet per grouping, the
 * FAQ ranking and the zero-hit searches. 0, -EIO (database), -EACCES (the
 * file could not be written). */
int report_xlsx(ncc_db_t *db, const report_period_t *period, int sl_seconds,
                const ncc_masters_cache_t *masters, const char *path);

/* The same workbook as bytes (through a temporary file): caller frees. */
int report_xlsx_bytes(ncc_db_t *db, const report_period_t *period, int sl_seconds,
                      const ncc_masters_cache_t *masters, uint8_t **ret_data, size_t *ret_len);

/* ---- batch (batch.c) ---------------------------------------------------------------------- */

/* Exit codes of `ncc-report --batch` (docs/kpi.md "Batch runs"). */
enum {
    REPORT_EXIT_OK = 0,
    REPORT_EXIT_USAGE = 2,    /* bad arguments */
    REPORT_EXIT_WRITE = 3,    /* the file cannot be written */
    REPORT_EXIT_DATABASE = 4, /* the database is unreachable or failed */
};

/* True when argv asks for a batch run. */
bool report_batch_wanted(int argc, char **argv);
/* The batch run: the process's exit code. */
int report_batch_main(int argc, char **argv, const report_settings_t *settings);

#endif
