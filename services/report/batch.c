/* batch: `ncc-report --batch daily|monthly --period YYYY-MM[-DD] --out FILE`
 * for cron or a Kubernetes CronJob (docs/kpi.md "Batch runs"). The file
 * (.csv or .xlsx by its extension) is written to a temporary file beside it
 * and renamed into place, so FILE is either the whole report or untouched;
 * the same period over the same facts gives the same figures. Every run that
 * reached the database is recorded in report.runs with the file it wrote.
 * Exit codes: 0 written, 2 bad arguments, 3 the file cannot be written,
 * 4 the database is unreachable or failed. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ncc/db.h"
#include "report.h"

extern const ncc_migration_t ncc_sql_report[];

bool report_batch_wanted(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--batch") == 0 || strncmp(argv[i], "--batch=", 8) == 0)
            return true;
    return false;
}

static int s_usage(const char *why)
{
    fprintf(
        stderr,
        "ncc-report: %s\n"
        "usage: ncc-report --batch daily|monthly --period YYYY-MM-DD|YYYY-MM --out FILE.csv|.xlsx\n"
        "exit codes: 0 written, 2 bad arguments, 3 cannot write the file, 4 database\n",
        why);
    return REPORT_EXIT_USAGE;
}

static bool s_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* The first and last day of the period, or false. */
static bool s_period_days(const char *kind, const char *period, char from[16], char to[16])
{
    size_t len = strlen(period);
    if (strcmp(kind, "daily") == 0) {
        if (len != 10 || period[4] != '-' || period[7] != '-' || !s_digits(period, 4) ||
            !s_digits(period + 5, 2) || !s_digits(period + 8, 2))
            return false;
        memcpy(from, period, 11);
        memcpy(to, period, 11);
        return true;
    }
    if (len != 7 || period[4] != '-' || !s_digits(period, 4) || !s_digits(period + 5, 2))
        return false;
    int y = atoi(period), m = atoi(period + 5);
    if (m < 1 || m > 12 || y < 1970)
        return false;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = m, .tm_mday = 0, .tm_hour = 12};
    timegm(&tm); /* day 0 of the next month: the last day of this one */
    snprintf(from, 16, "%04d-%02d-01", y % 10000, m % 100);
    snprintf(to, 16, "%04d-%02d-%02d", y % 10000, m % 100, tm.tm_mday % 100);
    return true;
}

static bool s_ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

/* Writes all of data to fd: 0 or -errno. */
static int s_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int s_read_file(const char *path, uint8_t **ret_data, size_t *ret_len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    struct stat st;
    int rc = -EIO;
    if (fstat(fileno(f), &st) == 0) {
        uint8_t *data = malloc((size_t)st.st_size + 1);
        if (data && fread(data, 1, (size_t)st.st_size, f) == (size_t)st.st_size) {
            *ret_data = data;
            *ret_len = (size_t)st.st_size;
            rc = 0;
        } else {
            free(data);
        }
    }
    fclose(f);
    return rc;
}

/* Records the run (content may be NULL). 0 or -EIO. */
static int s_record(ncc_db_t *db, const char *kind, const char *period, const char *format,
                    const char *out, int exit_code, const char *error, const uint8_t *content,
                    size_t len, const char *started_at)
{
    char code[8], bytes[24], sha[2 * EVP_MAX_MD_SIZE + 1] = "";
    snprintf(code, sizeof code, "%d", exit_code);
    snprintf(bytes, sizeof bytes, "%zu", len);
    if (content) {
        unsigned char digest[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        if (EVP_Digest(content, len, digest, &n, EVP_sha256(), NULL) == 1)
            for (unsigned int i = 0; i < n; i++)
                snprintf(sha + 2 * i, 3, "%02x", digest[i]);
    }
    const char *values[] = {kind,      period, format, out, exit_code == 0 ? "ok" : "failed",
                            code,      error,  bytes,  sha, (const char *)content,
                            started_at};
    int lengths[11] = {0};
    int formats[11] = {0};
    lengths[9] = (int)len;
    formats[9] = 1; /* binary */
    PGconn *conn = ncc_db_conn(db);
    if (!conn)
        return -EIO;
    PGresult *res = PQexecParams(
        conn,
        "INSERT INTO runs (kind, period, format, out, status, exit_code, error, bytes, sha256, "
        "content, started_at) VALUES ($1, $2, $3, $4, $5, $6::int, $7, $8::bigint, $9, $10, "
        "$11::timestamptz)",
        11, NULL, values, lengths, formats, 0);
    int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -EIO;
    if (rc < 0)
        fprintf(stderr, "ncc-report: the run was not recorded: %s", PQerrorMessage(conn));
    PQclear(res);
    return rc;
}

int report_batch_main(int argc, char **argv, const report_settings_t *settings)
{
    const char *kind = NULL, *period = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char **slot = NULL;
        const char *arg = argv[i];
        const char *names[] = {"--batch", "--period", "--out"};
        const char **slots[] = {&kind, &period, &out};
        for (int k = 0; k < 3; k++) {
            size_t n = strlen(names[k]);
            if (strcmp(arg, names[k]) == 0) {
                if (i + 1 >= argc)
                    return s_usage("an option lacks its value");
                slot = slots[k];
                *slot = argv[++i];
            } else if (strncmp(arg, names[k], n) == 0 && arg[n] == '=') {
                slot = slots[k];
                *slot = arg + n + 1;
            }
        }
        if (!slot)
            return s_usage("unknown argument");
    }
    if (!kind || (strcmp(kind, "daily") != 0 && strcmp(kind, "monthly") != 0))
        return s_usage("--batch is daily or monthly");
    char from[16], to[16];
    if (!period || !s_period_days(kind, period, from, to))
        return s_usage(strcmp(kind, "daily") == 0 ? "--period is YYYY-MM-DD for daily"
                                                  : "--period is YYYY-MM for monthly");
    if (!out || !*out)
        return s_usage("--out FILE is needed");
    bool xlsx = s_ends_with(out, ".xlsx");
    if (!xlsx && !s_ends_with(out, ".csv"))
        return s_usage("--out names a .csv or a .xlsx file");
    const char *format = xlsx ? "xlsx" : "csv";

    time_t started = time(NULL);
    struct tm tm;
    gmtime_r(&started, &tm);
    char started_at[40];
    strftime(started_at, sizeof started_at, "%Y-%m-%dT%H:%M:%SZ", &tm);

    const char *url = getenv("NCC_DATABASE_URL");
    if (!url || !*url) {
        fprintf(stderr, "ncc-report: NCC_DATABASE_URL is not set\n");
        return REPORT_EXIT_DATABASE;
    }
    ncc_db_t *db = ncc_db_new(url, "report");
    int code = REPORT_EXIT_DATABASE;
    char *tmp = NULL;
    uint8_t *content = NULL;
    size_t len = 0;
    char error[300] = "";
    /* without the owner's URL, a schema the daemon made already will do */
    const char *owner = getenv("NCC_DATABASE_OWNER_URL");
    if (!db || ncc_db_connect(db) < 0 ||
        (ncc_db_migrate_with_owner(db, owner, "report", ncc_sql_report) < 0 &&
         ((owner && *owner) ||
          ncc_db_run(db, "SELECT 1 FROM contacts, runs, faq_usage LIMIT 0", 0, NULL) < 0))) {
        fprintf(stderr, "ncc-report: the database: %s\n", db ? ncc_db_error(db) : "out of memory");
        ncc_db_destroy(&db);
        return REPORT_EXIT_DATABASE;
    }
    report_period_t p;
    const char *field = NULL;
    int rc = report_period_parse(db, from, to, 62, &p, &field, error, sizeof error);
    if (rc == -EINVAL) {
        ncc_db_destroy(&db);
        return s_usage(error);
    }
    if (rc < 0) {
        snprintf(error, sizeof error, "the database: %s", ncc_db_error(db));
        goto done;
    }

    /* the temporary file beside the target, so the rename is atomic */
    char *copy = strdup(out);
    const char *dir = copy ? dirname(copy) : ".";
    const char *base = strrchr(out, '/') ? strrchr(out, '/') + 1 : out;
    if (asprintf(&tmp, "%s/.%s.XXXXXX", dir, base) < 0)
        tmp = NULL;
    free(copy);
    int fd = tmp ? mkstemp(tmp) : -1;
    if (fd < 0) {
        snprintf(error, sizeof error, "cannot create a file in the directory of %s: %s", out,
                 strerror(errno));
        free(tmp);
        tmp = NULL;
        code = REPORT_EXIT_WRITE;
        goto done;
    }
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0644 & ~mask);
    if (xlsx) {
        close(fd);
        rc = report_xlsx(db, &p, settings->service_level_seconds, NULL, tmp);
        if (rc == 0)
            rc = s_read_file(tmp, &content, &len) < 0 ? -EACCES : 0;
    } else {
        report_table_t table;
        rc = report_table_load(db, &p, strcmp(kind, "daily") == 0 ? 0 : 1,
                               settings->service_level_seconds, &table);
        if (rc == 0) {
            char *data = NULL;
            rc = report_csv(&table, false, &data, &len) < 0 ? -ENOMEM : 0;
            content = (uint8_t *)data;
            report_table_clear(&table);
        }
        if (rc == 0 && (s_write_all(fd, content, len) < 0 || fsync(fd) < 0))
            rc = -EACCES;
        if (close(fd) < 0 && rc == 0)
            rc = -EACCES;
    }
    if (rc == -EIO) {
        snprintf(error, sizeof error, "the database: %s", ncc_db_error(db));
        code = REPORT_EXIT_DATABASE;
        goto done;
    }
    if (rc < 0) {
        snprintf(error, sizeof error, "cannot write %s", out);
        code = rc == -ENOMEM ? REPORT_EXIT_DATABASE : REPORT_EXIT_WRITE;
        goto done;
    }
    if (rename(tmp, out) < 0) {
        snprintf(error, sizeof error, "cannot write %s: %s", out, strerror(errno));
        code = REPORT_EXIT_WRITE;
        goto done;
    }
    free(tmp);
    tmp = NULL;
    code = REPORT_EXIT_OK;
done:
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    if (code != REPORT_EXIT_OK)
        fprintf(stderr, "ncc-report: %s\n", error);
    if (code != REPORT_EXIT_DATABASE &&
        s_record(db, kind, period, format, out, code, error, code == 0 ? content : NULL,
                 code == 0 ? len : 0, started_at) < 0 &&
        code == REPORT_EXIT_OK)
        code = REPORT_EXIT_DATABASE;
    if (code == REPORT_EXIT_OK)
        printf("ncc-report: %s report of %s written to %s (%zu bytes)\n", kind, period, out, len);
    free(content);
    ncc_db_destroy(&db);
    return code;
}
