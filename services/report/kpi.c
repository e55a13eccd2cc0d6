/* kpi: periods, groupings and the figures of docs/kpi.md, from report's own
 * tables (facts.c). One scan of the period's contacts answers every group and
 * the total (GROUPING SETS). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ncc/time.h"
#include "report.h"

const char *const report_groups[] = {"hour",     "day",      "month",   "department",
                                     "category", "operator", "channel", NULL};
const char *const report_group_ja[] = {"時間帯別",     "日別",     "月別",       "担当課別",
                                       "カテゴリー別", "受付者別", "チャネル別", NULL};
const char *const report_group_key_ja[] = {"時間帯",     "日付",   "月",       "担当課",
                                           "カテゴリー", "受付者", "チャネル", NULL};

/* Each group's key column (contacts c) and how it is shown. */
static const char *const s_group_sql[] = {
    "c.hour", "c.day", "c.month", "c.department", "c.category", "c.operator_id", "c.channel",
};
static const char *const s_group_text[] = {
    "lpad(k::text, 2, '0')",
    "to_char(k, 'YYYY-MM-DD')",
    "(k / 100)::text || '-' || lpad((k % 100)::text, 2, '0')",
    "k",
    "k",
    "k::text",
    "k",
};

int report_group_index(const char *group)
{
    if (!group || !*group)
        return 1;
    for (int i = 0; report_groups[i]; i++)
        if (strcmp(group, report_groups[i]) == 0)
            return i;
    return -1;
}

/* ---- periods --------------------------------------------------------------------------------- */

static bool s_date(const char *text, int *y, int *m, int *d)
{
    if (!text || strlen(text) != 10 || text[4] != '-' || text[7] != '-')
        return false;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (text[i] < '0' || text[i] > '9'))
            return false;
    *y = atoi(text);
    *m = atoi(text + 5);
    *d = atoi(text + 8);
    if (*m < 1 || *m > 12 || *d < 1 || *d > 31 || *y < 1970 || *y > 9999)
        return false;
    struct tm tm = {.tm_year = *y - 1900, .tm_mon = *m - 1, .tm_mday = *d, .tm_hour = 12};
    time_t t = timegm(&tm);
    struct tm back;
    gmtime_r(&t, &back);
    return back.tm_mday == *d && back.tm_mon == *m - 1; /* no 2027-02-30 */
}

/* `text` (a date or RFC 3339) as an RFC 3339 time into out; `end`: a date
 * means the next day's start. */
static bool s_bound(const char *text, bool end, char out[40])
{
    int y, m, d;
    if (s_date(text, &y, &m, &d)) {
        struct tm tm = {
            .tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d + (end ? 1 : 0), .tm_hour = 12};
        time_t t = timegm(&tm);
        gmtime_r(&t, &tm);
        strftime(out, 40, "%Y-%m-%dT00:00:00+09:00", &tm);
        return true;
    }
    if (text && strlen(text) < 40 && ncc_rfc3339_valid(text)) {
        snprintf(out, 40, "%s", text);
        return true;
    }
    return false;
}

int report_period_parse(ncc_db_t *db, const char *from, const char *to, int max_days,
                        report_period_t *ret, const char **ret_field, char *err, size_t errlen)
{
    memset(ret, 0, sizeof *ret);
    /* defaults: this month so far, in Tokyo */
    time_t now = time(NULL) + 9 * 3600;
    struct tm tm;
    gmtime_r(&now, &tm);
    char today[16], first[16];
    strftime(today, sizeof today, "%Y-%m-%d", &tm);
    strftime(first, sizeof first, "%Y-%m-01", &tm);
    const char *f = from && *from ? from : first, *t = to && *to ? to : today;
    if (!s_bound(f, false, ret->from)) {
        *ret_field = "from";
        snprintf(err, errlen, "from is a date (2027-04-01) or an RFC 3339 time");
        return -EINVAL;
    }
    if (!s_bound(t, true, ret->to)) {
        *ret_field = "to";
        snprintf(err, errlen, "to is a date (2027-04-30) or an RFC 3339 time");
        return -EINVAL;
    }
    char max_text[16];
    snprintf(max_text, sizeof max_text, "%d", max_days);
    char sqlstate[6] = "";
    PGresult *res = ncc_db_exec(
        db,
        "SELECT $2::timestamptz > $1::timestamptz, $2::timestamptz - $1::timestamptz <= "
        "make_interval(days => $3::int), to_char($1::timestamptz AT TIME ZONE 'Asia/Tokyo', "
        "'YYYY-MM-DD'), to_char(($2::timestamptz - interval '1 microsecond') AT TIME ZONE "
        "'Asia/Tokyo', 'YYYY-MM-DD'), ($1::timestamptz AT TIME ZONE 'Asia/Tokyo')::time = '00:00' "
        "AND ($2::timestamptz AT TIME ZONE 'Asia/Tokyo')::time = '00:00'",
        3, (const char *[]){ret->from, ret->to, max_text}, sqlstate);
    if (!res) {
        if (strncmp(sqlstate, "22", 2) == 0) {
            *ret_field = "from";
            snprintf(err, errlen, "from or to is not a time that exists");
            return -EINVAL;
        }
        return -EIO;
    }
    bool ordered = PQgetvalue(res, 0, 0)[0] == 't', short_enough = PQgetvalue(res, 0, 1)[0] == 't';
    snprintf(ret->name, sizeof ret->name, "%s_%s", PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3));
    snprintf(ret->first_day, sizeof ret->first_day, "%s", PQgetvalue(res, 0, 2));
    snprintf(ret->last_day, sizeof ret->last_day, "%s", PQgetvalue(res, 0, 3));
    ret->whole_days = PQgetvalue(res, 0, 4)[0] == 't';
    PQclear(res);
    if (!ordered) {
        *ret_field = "to";
        snprintf(err, errlen, "the period is reversed or empty: to must come after from");
        return -EINVAL;
    }
    if (!short_enough) {
        *ret_field = "to";
        snprintf(err, errlen, "the period is longer than %d days", max_days);
        return -EINVAL;
    }
    return 0;
}

/* ---- the figures ------------------------------------------------------------------------------
 */

/* One scan of the period, one row per group: key, name, offered, calls_offered, answered,
 * abandoned, within, wait sum and count, talk sum and count, acw sum and count, handle sum,
 * transferred, one_stop. The total is added up from the groups (kpi.md: means are sums over
 * counts), so the scan is a plain hash aggregate. */
#define S_KPI_SQL                                                                                  \
    "SELECT %s, name, offered, calls_offered, answered, abandoned, within, wait_sum, wait_n, "     \
    "talk_sum, talk_n, acw_sum, acw_n, handle_sum, transferred, one_stop, surveys, score FROM ("   \
    "SELECT %s AS k, max(c.operator_name) AS name, count(*) AS offered, count(*) FILTER (WHERE "   \
    "c.is_call) AS calls_offered, count(*) FILTER (WHERE c.answered) AS answered, count(*) "       \
    "FILTER "                                                                                      \
    "(WHERE c.is_call AND c.abandoned) AS abandoned, count(*) FILTER (WHERE c.wait_s <= "          \
    "$3::int) AS within, sum(c.wait_s) AS wait_sum, count(c.wait_s) AS wait_n, sum(c.talk_s) AS "  \
    "talk_sum, count(c.talk_s) AS talk_n, sum(c.acw_s) AS acw_sum, count(c.acw_s) AS acw_n, "      \
    "sum(c.talk_s + coalesce(c.acw_s, 0)) AS handle_sum, count(*) FILTER (WHERE c.transferred) "   \
    "AS "                                                                                          \
    "transferred, count(*) FILTER (WHERE c.answered AND NOT c.transferred) AS one_stop, "          \
    "sum(c.survey_n) AS surveys, sum(c.survey_total) AS score "                                    \
    "FROM contacts c WHERE c.at >= $1::timestamptz AND c.at < $2::timestamptz GROUP BY 1) g "      \
    "ORDER BY k"

/* The sums behind a row's means. */
typedef struct {
    double wait_sum, talk_sum, acw_sum, handle_sum;
    int64_t wait_n, talk_n, acw_n, score;
} s_sums_t;

static double s_num(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? 0 : strtod(PQgetvalue(res, row, col), NULL);
}

static int64_t s_int(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static double s_round(double x, double scale)
{
    return round(x * scale) / scale;
}

static void s_row_label(report_row_t *out, int group, bool total, const char *name)
{
    if (total)
        snprintf(out->label, sizeof out->label, "合計");
    else if (group == 5 && name && *name)
        snprintf(out->label, sizeof out->label, "%s", name);
    else if (group == 5)
        snprintf(out->label, sizeof out->label, "%s",
                 strcmp(out->key, "0") == 0 ? "(未割当)" : out->key);
    else if (!*out->key)
        snprintf(out->label, sizeof out->label, "(未設定)");
    else
        snprintf(out->label, sizeof out->label, "%s", out->key);
}

/* The rates and means of a row from its counts and sums. */
static void s_row_finish(report_row_t *out, const s_sums_t *sums)
{
    out->asa = sums->wait_n ? s_round(sums->wait_sum / (double)sums->wait_n, 10) : 0;
    out->talk_total = (int64_t)llround(sums->talk_sum);
    out->talk = sums->talk_n ? s_round(sums->talk_sum / (double)sums->talk_n, 10) : 0;
    out->acw = sums->acw_n ? s_round(sums->acw_sum / (double)sums->acw_n, 10) : 0;
    out->aht = sums->talk_n ? s_round(sums->handle_sum / (double)sums->talk_n, 10) : 0;
    out->abandon_rate =
        out->calls_offered ? s_round((double)out->abandoned / out->calls_offered, 10000) : 0;
    out->service_level =
        out->calls_offered ? s_round((double)out->within / out->calls_offered, 10000) : 0;
    out->one_stop_rate = out->answered ? s_round((double)out->one_stop / out->answered, 10000) : 0;
    out->satisfaction = out->surveys ? s_round((double)sums->score / out->surveys, 100) : 0;
}

/* Rows [first, first + n) of res, columns from col0 on (key, name, offered ... score, as
 * S_KPI_SQL), as the table of `group` with its total. 0 or -ENOMEM. */
static int s_table_fill(PGresult *res, int first, int n, int col0, int group, report_table_t *ret)
{
    ret->rows = calloc((size_t)n + 1, sizeof *ret->rows);
    s_sums_t *sums = calloc((size_t)n + 1, sizeof *sums);
    if (!ret->rows || !sums) {
        free(sums);
        return -ENOMEM;
    }
    s_sums_t total_sums = {0};
    report_row_t *t = &ret->total;
    for (int i = 0; i < n; i++) {
        int r = first + i, c = col0;
        report_row_t *out = &ret->rows[i];
        s_sums_t *su = &sums[i];
        snprintf(out->key, sizeof out->key, "%s", PQgetvalue(res, r, c));
        s_row_label(out, group, false, PQgetvalue(res, r, c + 1));
        out->offered = s_int(res, r, c + 2);
        out->calls_offered = s_int(res, r, c + 3);
        out->answered = s_int(res, r, c + 4);
        out->abandoned = s_int(res, r, c + 5);
        out->within = s_int(res, r, c + 6);
        su->wait_sum = s_num(res, r, c + 7);
        su->wait_n = s_int(res, r, c + 8);
        su->talk_sum = s_num(res, r, c + 9);
        su->talk_n = s_int(res, r, c + 10);
        su->acw_sum = s_num(res, r, c + 11);
        su->acw_n = s_int(res, r, c + 12);
        su->handle_sum = s_num(res, r, c + 13);
        out->transferred = s_int(res, r, c + 14);
        out->one_stop = s_int(res, r, c + 15);
        out->surveys = s_int(res, r, c + 16);
        su->score = s_int(res, r, c + 17);
        t->surveys += out->surveys;
        total_sums.score += su->score;
        t->offered += out->offered;
        t->calls_offered += out->calls_offered;
        t->answered += out->answered;
        t->abandoned += out->abandoned;
        t->within += out->within;
        t->transferred += out->transferred;
        t->one_stop += out->one_stop;
        total_sums.wait_sum += su->wait_sum;
        total_sums.wait_n += su->wait_n;
        total_sums.talk_sum += su->talk_sum;
        total_sums.talk_n += su->talk_n;
        total_sums.acw_sum += su->acw_sum;
        total_sums.acw_n += su->acw_n;
        total_sums.handle_sum += su->handle_sum;
    }
    ret->n_rows = (size_t)n;
    for (size_t i = 0; i < ret->n_rows; i++)
        s_row_finish(&ret->rows[i], &sums[i]);
    s_row_label(t, group, true, NULL);
    s_row_finish(t, &total_sums);
    free(sums);
    return 0;
}

/* Each group's key as kept (text) and its order. */
static const char *const s_cache_key[] = {
    "lpad(c.hour::text, 2, '0')",
    "to_char(c.day, 'YYYY-MM-DD')",
    "(c.month / 100)::text || '-' || lpad((c.month % 100)::text, 2, '0')",
    "c.department",
    "c.category",
    "c.operator_id::text",
    "c.channel",
};
static const char *const s_cache_order[] = {
    "key", "key", "key", "key", "key", "key::bigint", "key",
};

/* The days of the period not kept yet (as a date[] literal), under a lock that the contacts'
 * triggers wait for, so a change that commits meanwhile forgets the days again after the
 * filling commits (never a stale day kept). */
#define S_MISSING_SQL                                                                              \
    "SELECT coalesce(array_agg(d::date ORDER BY d)::text, '{}') FROM generate_series($1::date, "   \
    "$2::date, interval '1 day') d WHERE NOT EXISTS (SELECT 1 FROM kpi_days k WHERE k.grp = "      \
    "$3::smallint AND k.sl = $4::int AND k.day = d::date)"

/* Those days added up by day and group: a plain query, so PostgreSQL scans in parallel (an
 * INSERT ... SELECT would not); the rows go into kpi_cache by COPY. */
#define S_FILL_SQL                                                                                 \
    "SELECT $2::smallint, $3::int, c.day, %s, max(c.operator_name), count(*), count(*) FILTER "    \
    "(WHERE c.is_call), count(*) FILTER (WHERE c.answered), count(*) FILTER (WHERE c.is_call AND " \
    "c.abandoned), count(*) FILTER (WHERE c.wait_s <= $3::int), sum(c.wait_s), count(c.wait_s), "  \
    "sum(c.talk_s), count(c.talk_s), sum(c.acw_s), count(c.acw_s), sum(c.talk_s + "                \
    "coalesce(c.acw_s, 0)), count(*) FILTER (WHERE c.transferred), count(*) FILTER (WHERE "        \
    "c.answered AND NOT c.transferred), sum(c.survey_n), sum(c.survey_total) FROM contacts c "     \
    "WHERE c.day = ANY($1::date[]) GROUP BY c.day, 4"

/* One value in COPY's text format into buf: \N for NULL, \ and control characters escaped. */
static void s_copy_value(PGresult *res, int row, int col, char *buf, size_t *at, size_t cap)
{
    if (PQgetisnull(res, row, col)) {
        *at += (size_t)snprintf(buf + *at, cap - *at, "\\N");
        return;
    }
    for (const char *p = PQgetvalue(res, row, col); *p && *at + 3 < cap; p++) {
        if (*p == '\\' || *p == '\t' || *p == '\n' || *p == '\r') {
            buf[(*at)++] = '\\';
            buf[(*at)++] = *p == '\t' ? 't' : *p == '\n' ? 'n' : *p == '\r' ? 'r' : '\\';
        } else {
            buf[(*at)++] = *p;
        }
    }
    buf[*at] = '\0';
}

/* Fills kpi_cache and kpi_days for the missing days of the period. 0 or -EIO. */
static int s_fill_days(ncc_db_t *db, const report_period_t *period, int group, const char *grp,
                       const char *sl)
{
    const char *params[] = {period->first_day, period->last_day, grp, sl};
    if (ncc_db_begin(db) < 0)
        return -EIO;
    PGresult *res = NULL;
    if (ncc_db_run(db, "LOCK TABLE kpi_days IN SHARE ROW EXCLUSIVE MODE", 0, NULL) < 0 ||
        !(res = ncc_db_exec(db, S_MISSING_SQL, 4, params, NULL)))
        goto fail;
    char *missing = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    res = NULL;
    if (!missing)
        goto fail;
    if (strcmp(missing, "{}") == 0) {
        free(missing);
        return ncc_db_commit(db) < 0 ? -EIO : 0;
    }
    char sql[4096];
    snprintf(sql, sizeof sql, S_FILL_SQL, s_cache_key[group]);
    const char *fill_params[] = {missing, grp, sl};
    res = ncc_db_exec(db, sql, 3, fill_params, NULL);
    int rc = res ? 0 : -EIO;
    PGconn *conn = ncc_db_conn(db);
    if (rc == 0 && PQntuples(res) > 0) {
        PGresult *copy = PQexec(conn, "COPY kpi_cache FROM STDIN");
        rc = PQresultStatus(copy) == PGRES_COPY_IN ? 0 : -EIO;
        PQclear(copy);
        char line[4096];
        for (int r = 0; rc == 0 && r < PQntuples(res); r++) {
            size_t at = 0;
            for (int c = 0; c < PQnfields(res); c++) {
                if (c)
                    line[at++] = '\t';
                s_copy_value(res, r, c, line, &at, sizeof line - 2);
            }
            line[at++] = '\n';
            if (PQputCopyData(conn, line, (int)at) != 1)
                rc = -EIO;
        }
        if (PQputCopyEnd(conn, rc == 0 ? NULL : "failed") != 1)
            rc = -EIO;
        PGresult *end;
        while ((end = PQgetResult(conn))) {
            if (PQresultStatus(end) != PGRES_COMMAND_OK)
                rc = -EIO;
            PQclear(end);
        }
    }
    if (res)
        PQclear(res);
    res = NULL;
    const char *kept[] = {grp, sl, missing};
    if (rc == 0 && ncc_db_run(db,
                              "INSERT INTO kpi_days (grp, sl, day) SELECT $1::smallint, $2::int, "
                              "unnest($3::date[])",
                              3, kept) < 0)
        rc = -EIO;
    free(missing);
    if (rc == 0 && ncc_db_commit(db) == 0)
        return 0;
fail:
    if (res)
        PQclear(res);
    ncc_db_rollback(db);
    return -EIO;
}

/* The kept days of the period by group, in the columns of S_KPI_SQL. */
#define S_CACHED_SQL                                                                               \
    "SELECT key, max(name), sum(offered), sum(calls_offered), sum(answered), sum(abandoned), "     \
    "sum(within), sum(wait_sum), sum(wait_n), sum(talk_sum), sum(talk_n), sum(acw_sum), "          \
    "sum(acw_n), sum(handle_sum), sum(transferred), sum(one_stop), sum(surveys), sum(score) FROM " \
    "kpi_cache WHERE grp = $3::smallint AND sl = $4::int AND day BETWEEN $1::date AND $2::date "   \
    "GROUP BY key ORDER BY %s"

static int s_table_cached(ncc_db_t *db, const report_period_t *period, int group, int sl_seconds,
                          report_table_t *ret)
{
    char sql[4096], grp[8], sl[16];
    snprintf(grp, sizeof grp, "%d", group);
    snprintf(sl, sizeof sl, "%d", sl_seconds);
    const char *params[] = {period->first_day, period->last_day, grp, sl};
    if (s_fill_days(db, period, group, grp, sl) < 0)
        return -EIO;
    snprintf(sql, sizeof sql, S_CACHED_SQL, s_cache_order[group]);
    PGresult *res = ncc_db_exec(db, sql, 4, params, NULL);
    if (!res)
        return -EIO;
    int rc = s_table_fill(res, 0, PQntuples(res), 0, group, ret);
    PQclear(res);
    return rc;
}

int report_table_load(ncc_db_t *db, const report_period_t *period, int group, int sl_seconds,
                      report_table_t *ret)
{
    memset(ret, 0, sizeof *ret);
    ret->period = *period;
    ret->group = group;
    ret->sl_seconds = sl_seconds;
    /* JIT compiles for longer than these scans take */
    if (ncc_db_run(db, "SET jit = off", 0, NULL) < 0)
        return -EIO;
    if (period->whole_days)
        return s_table_cached(db, period, group, sl_seconds, ret);
    char sql[4096], sl[16];
    snprintf(sql, sizeof sql, S_KPI_SQL, s_group_text[group], s_group_sql[group]);
    snprintf(sl, sizeof sl, "%d", sl_seconds);
    const char *params[] = {period->from, period->to, sl};
    PGresult *res = ncc_db_exec(db, sql, 3, params, NULL);
    if (!res)
        return -EIO;
    int rc = s_table_fill(res, 0, PQntuples(res), 0, group, ret);
    PQclear(res);
    return rc;
}

/* Every grouping in one scan (GROUPING SETS): gi (the group's index), then the columns of
 * S_KPI_SQL. */
#define S_ALL_SQL                                                                                  \
    "SELECT CASE WHEN grouping(c.hour) = 0 THEN 0 WHEN grouping(c.day) = 0 THEN 1 WHEN "           \
    "grouping(c.month) = 0 THEN 2 WHEN grouping(c.department) = 0 THEN 3 WHEN "                    \
    "grouping(c.category) = 0 THEN 4 WHEN grouping(c.operator_id) = 0 THEN 5 ELSE 6 END AS gi, "   \
    "CASE WHEN grouping(c.hour) = 0 THEN lpad(c.hour::text, 2, '0') WHEN grouping(c.day) = 0 "     \
    "THEN to_char(c.day, 'YYYY-MM-DD') WHEN grouping(c.month) = 0 THEN (c.month / 100)::text || "  \
    "'-' || lpad((c.month % 100)::text, 2, '0') WHEN grouping(c.department) = 0 THEN "             \
    "c.department WHEN grouping(c.category) = 0 THEN c.category WHEN grouping(c.operator_id) = 0 " \
    "THEN c.operator_id::text ELSE c.channel END, "                                                \
    "max(c.operator_name), count(*), count(*) FILTER (WHERE c.is_call), count(*) FILTER (WHERE "   \
    "c.answered), count(*) FILTER (WHERE c.is_call AND c.abandoned), count(*) FILTER (WHERE "      \
    "c.wait_s <= $3::int), sum(c.wait_s), count(c.wait_s), sum(c.talk_s), count(c.talk_s), "       \
    "sum(c.acw_s), count(c.acw_s), sum(c.talk_s + coalesce(c.acw_s, 0)), count(*) FILTER (WHERE "  \
    "c.transferred), count(*) FILTER (WHERE c.answered AND NOT c.transferred), sum(c.survey_n), "  \
    "sum(c.survey_total) FROM contacts c WHERE c.at >= $1::timestamptz AND c.at < "                \
    "$2::timestamptz GROUP BY GROUPING SETS ((c.hour), (c.day), (c.month), (c.department), "       \
    "(c.category), (c.operator_id), (c.channel)) ORDER BY 1, c.hour, c.day, c.month, "             \
    "c.department, c.category, c.operator_id, c.channel"

int report_tables_load_all(ncc_db_t *db, const report_period_t *period, int sl_seconds,
                           report_table_t ret[7])
{
    memset(ret, 0, 7 * sizeof *ret);
    if (period->whole_days) { /* each from the kept days */
        for (int g = 0; g < 7; g++) {
            if (report_table_load(db, period, g, sl_seconds, &ret[g]) < 0) {
                for (int i = 0; i < 7; i++)
                    report_table_clear(&ret[i]);
                return -EIO;
            }
        }
        return 0;
    }
    for (int g = 0; g < 7; g++) {
        ret[g].period = *period;
        ret[g].group = g;
        ret[g].sl_seconds = sl_seconds;
        snprintf(ret[g].total.label, sizeof ret[g].total.label, "合計");
    }
    if (ncc_db_run(db, "SET jit = off", 0, NULL) < 0)
        return -EIO;
    char sl[16];
    snprintf(sl, sizeof sl, "%d", sl_seconds);
    const char *params[] = {period->from, period->to, sl};
    PGresult *res = ncc_db_exec(db, S_ALL_SQL, 3, params, NULL);
    if (!res)
        return -EIO;
    int n = PQntuples(res), rc = 0;
    for (int first = 0; rc == 0 && first < n;) {
        int g = (int)s_int(res, first, 0), end = first;
        while (end < n && s_int(res, end, 0) == g)
            end++;
        if (g >= 0 && g < 7)
            rc = s_table_fill(res, first, end - first, 1, g, &ret[g]);
        first = end;
    }
    PQclear(res);
    if (rc < 0)
        for (int g = 0; g < 7; g++)
            report_table_clear(&ret[g]);
    return rc;
}

void report_table_name(report_table_t *table, const ncc_masters_cache_t *masters)
{
    const char *kind = table->group == 3 ? "departments" : table->group == 4 ? "categories" : NULL;
    if (!masters || !kind)
        return;
    for (size_t i = 0; i < table->n_rows; i++) {
        report_row_t *row = &table->rows[i];
        const Ncc__Directory__MasterValues *m =
            *row->key ? ncc_masters_cache_find(masters, kind, row->key) : NULL;
        if (m && m->name && *m->name)
            snprintf(row->label, sizeof row->label, "%s", m->name);
    }
}

void report_table_clear(report_table_t *table)
{
    free(table->rows);
    table->rows = NULL;
    table->n_rows = 0;
}

void report_row_to_pb(const report_row_t *row, Ncc__Report__KpiRow *out)
{
    ncc__report__kpi_row__init(out);
    out->key = (char *)row->key;
    out->label = (char *)row->label;
#define S_SET(field, value)                                                                        \
    do {                                                                                           \
        out->has_##field = true;                                                                   \
        out->field = (value);                                                                      \
    } while (0)
    S_SET(offered, row->offered);
    S_SET(calls_offered, row->calls_offered);
    S_SET(answered, row->answered);
    S_SET(abandoned, row->abandoned);
    S_SET(abandon_rate, row->abandon_rate);
    S_SET(answered_within_sl, row->within);
    S_SET(service_level, row->service_level);
    S_SET(asa_seconds, row->asa);
    S_SET(talk_seconds_total, row->talk_total);
    S_SET(talk_seconds, row->talk);
    S_SET(acw_seconds, row->acw);
    S_SET(aht_seconds, row->aht);
    S_SET(transferred, row->transferred);
    S_SET(one_stop, row->one_stop);
    S_SET(one_stop_rate, row->one_stop_rate);
    S_SET(surveys, row->surveys);
    S_SET(satisfaction, row->satisfaction);
#undef S_SET
}

/* ---- FAQ usage, zero-hit searches, satisfaction ------------------------------------------------
 */

int report_extras_load(ncc_db_t *db, const report_period_t *period, size_t limit,
                       report_extras_t *ret)
{
    memset(ret, 0, sizeof *ret);
    char lim[16];
    snprintf(lim, sizeof lim, "%zu", limit);
    const char *params[] = {period->from, period->to, lim};
    /* the days of the period (Asia/Tokyo): the daily tables' rows to add up */
#define S_DAYS                                                                                     \
    "day >= ($1::timestamptz AT TIME ZONE 'Asia/Tokyo')::date AND day < ($2::timestamptz AT TIME " \
    "ZONE 'Asia/Tokyo' - interval '1 microsecond')::date + 1"
    /* FAQ usage: records citing it (by the record's start), searches showing it */
    PGresult *res = ncc_db_exec(
        db,
        "WITH used AS (SELECT number, sum(used) AS used FROM faq_usage WHERE " S_DAYS
        " GROUP BY number HAVING sum(used) > 0), shown AS (SELECT number, sum(shown) AS shown, "
        "(array_agg(question ORDER BY day DESC))[1] AS question FROM faq_shown_daily WHERE " S_DAYS
        " GROUP BY number) SELECT coalesce(u.number, s.number), coalesce(u.used, 0), "
        "coalesce(s.shown, 0), coalesce(s.question, '') FROM used u FULL JOIN shown s ON "
        "s.number = u.number ORDER BY 2 DESC, 3 DESC, 1 LIMIT $3::int",
        3, params, NULL);
    if (!res)
        return -EIO;
    int n = PQntuples(res);
    ret->faqs = calloc((size_t)n + 1, sizeof *ret->faqs);
    for (int r = 0; ret->faqs && r < n; r++) {
        report_faq_t *f = &ret->faqs[ret->n_faqs++];
        f->number = s_int(res, r, 0);
        f->used = s_int(res, r, 1);
        f->shown = s_int(res, r, 2);
        f->question = strdup(PQgetvalue(res, r, 3));
    }
    PQclear(res);
    res = ncc_db_exec(db,
                      "SELECT query, sum(count), sum(resident), to_char(max(last_at) AT TIME ZONE "
                      "'Asia/Tokyo', 'YYYY-MM-DD\"T\"HH24:MI:SS\"+09:00\"') FROM zero_hit_daily "
                      "WHERE " S_DAYS " GROUP BY query ORDER BY 2 DESC, 1 LIMIT $3::int",
                      3, params, NULL);
    if (!res)
        goto db_error;
    n = PQntuples(res);
    ret->zeros = calloc((size_t)n + 1, sizeof *ret->zeros);
    for (int r = 0; ret->zeros && r < n; r++) {
        report_zero_t *z = &ret->zeros[ret->n_zeros++];
        z->query = strdup(PQgetvalue(res, r, 0));
        z->count = s_int(res, r, 1);
        z->public_count = s_int(res, r, 2);
        z->last_at = strdup(PQgetvalue(res, r, 3));
    }
    PQclear(res);
    res = ncc_db_exec(db,
                      "SELECT coalesce(sum(searches), 0), coalesce(sum(zero), 0) FROM "
                      "search_daily WHERE " S_DAYS,
                      2, params, NULL);
    if (!res)
        goto db_error;
    ret->searches = s_int(res, 0, 0);
    ret->zero_searches = s_int(res, 0, 1);
    PQclear(res);
    res = ncc_db_exec(db,
                      "SELECT count(*), avg(satisfaction), count(*) FILTER (WHERE resolved), "
                      "count(*) FILTER (WHERE satisfaction = 1), count(*) FILTER (WHERE "
                      "satisfaction = 2), count(*) FILTER (WHERE satisfaction = 3), count(*) "
                      "FILTER (WHERE satisfaction = 4), count(*) FILTER (WHERE satisfaction = 5) "
                      "FROM surveys WHERE answered_at >= $1::timestamptz AND answered_at < "
                      "$2::timestamptz",
                      2, params, NULL);
    if (!res)
        goto db_error;
    ret->answers = s_int(res, 0, 0);
    ret->average = s_round(s_num(res, 0, 1), 100);
    ret->resolved = s_int(res, 0, 2);
    for (int i = 0; i < 5; i++)
        ret->by_score[i] = s_int(res, 0, 3 + i);
    PQclear(res);
    return 0;
db_error:
    report_extras_clear(ret);
    return -EIO;
#undef S_DAYS
}

void report_extras_clear(report_extras_t *extras)
{
    for (size_t i = 0; i < extras->n_faqs; i++)
        free(extras->faqs[i].question);
    for (size_t i = 0; i < extras->n_zeros; i++) {
        free(extras->zeros[i].query);
        free(extras->zeros[i].last_at);
    }
    free(extras->faqs);
    free(extras->zeros);
    memset(extras, 0, sizeof *extras);
}
