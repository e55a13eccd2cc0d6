/* ncc-report end to end (issue 9; R29, R33, R39; docs/kpi.md): real
 * ncc-directory, ncc-calls, ncc-history, ncc-faq, ncc-report and ncc-gateway
 * on a database of the test's own. Calls come through the signed PBX
 * webhook, records through the API, FAQ searches as an operator makes them;
 * the figures are checked exactly, again after every event was delivered a
 * second time (a restart from a cursor of 0: duplicates and older versions
 * arriving after newer ones), as CSV and as XLSX; the live figures reach a
 * supervisor's stream; the batch writes whole files or nothing, with its
 * exit codes; bad input gets 400. */
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ncc/log.h"
#include "ncc_system.h"

#define PASSWORD "Report-Test-Pass-01"

static ncct_system_t s_sys;
static ncct_session_t s_admin, s_op1, s_sup, s_staff;

static void setup(void)
{
    ncc_log_init("test_report", NCC_LOG_ERROR);
    ncct_system_init(&s_sys, "test_report");
}

static void teardown(void)
{
    ncct_system_teardown(&s_sys);
}

TestSuite(report, .init = setup, .fini = teardown, .timeout = 300);

/* ---- helpers ------------------------------------------------------------------------------ */

static void s_master(const char *path, const char *body)
{
    ncct_resp_t r = ncct_request(&s_sys, &s_admin, "POST", path, body, NULL);
    ncct_expect(&r, 201, NULL, path);
    ncct_resp_free(&r);
}

static void s_start(void)
{
    ncct_system_start(&s_sys, "directory", NULL);
    ncct_system_start_gateway(&s_sys, (const char *[]){"NCC_PUSH_KEEPALIVE_MS=500", NULL});
    ncct_login_admin(&s_sys, &s_admin);
    s_master("/api/v1/departments", "{\"code\":\"D01\",\"name\":\"市民課\"}");
    s_master("/api/v1/departments", "{\"code\":\"D02\",\"name\":\"税務課\"}");
    s_master("/api/v1/categories", "{\"code\":\"C01\",\"name\":\"証明書\"}");
    ncct_create_user(&s_sys, &s_admin, "op1", "[\"operator\"]", "2001", PASSWORD);
    ncct_create_user(&s_sys, &s_admin, "sup1", "[\"supervisor\"]", NULL, PASSWORD);
    ncct_create_user(&s_sys, &s_admin, "staff1", "[\"staff\"]", NULL, PASSWORD);
    ncct_login(&s_sys, &s_op1, "op1", PASSWORD, NULL);
    ncct_login(&s_sys, &s_sup, "sup1", PASSWORD, NULL);
    ncct_login(&s_sys, &s_staff, "staff1", PASSWORD, NULL);
    ncct_system_start(&s_sys, "calls", NULL);
    ncct_system_start(&s_sys, "history", NULL);
    ncct_system_start(&s_sys, "faq", (const char *[]){"NCC_FAQ_INDEX_CHECK_MS=200", NULL});
    ncct_system_start(&s_sys, "sms",
                      (const char *[]){"NCC_SMS_PROVIDER=none",
                                       "NCC_SMS_SURVEY_BASE_URL=https://ward.example", NULL});
    ncct_system_start(&s_sys, "report", NULL);
}

/* A satisfaction survey about record `record_id`, answered by the resident. */
static void s_survey(int64_t record_id, const char *form)
{
    ncct_resp_t r = ncct_request(&s_sys, &s_admin, "POST", "/api/v1/sms-templates",
                                 "{\"name\":\"アンケート\",\"body\":\"ご意見をお聞かせください。"
                                 "{survey_url}\"}",
                                 NULL);
    ncct_expect(&r, 201, NULL, "template");
    long long template_id = (long long)cJSON_GetObjectItemCaseSensitive(r.json, "id")->valuedouble;
    ncct_resp_free(&r);
    char body[256];
    snprintf(body, sizeof body,
             "{\"to\":\"090-7777-1234\",\"template_id\":%lld,\"variables\":[],"
             "\"idempotency_key\":\"sv-%lld\",\"record_id\":%lld}",
             template_id, (long long)record_id, (long long)record_id);
    r = ncct_request(&s_sys, &s_op1, "POST", "/api/v1/sms", body, NULL);
    ncct_expect(&r, 201, NULL, body);
    char path[100];
    snprintf(path, sizeof path, "/api/v1/sms/%lld",
             (long long)cJSON_GetObjectItemCaseSensitive(r.json, "id")->valuedouble);
    ncct_resp_free(&r);
    r = ncct_request(&s_sys, &s_admin, "GET", path, NULL, NULL);
    ncct_expect(&r, 200, NULL, path);
    const char *text = ncct_str(r.json, "body");
    const char *p = text ? strstr(text, "/s/") : NULL;
    cr_assert_not_null(p, "%s", r.body);
    snprintf(path, sizeof path, "/s/%.64s", p + 3);
    ncct_resp_free(&r);
    r = ncct_request_raw(&s_sys, NULL, "POST", path, form, strlen(form),
                         "application/x-www-form-urlencoded", NULL);
    cr_assert_eq(r.status, 303, "%s", r.body);
    ncct_resp_free(&r);
}

/* The test's "now", fixed at its start, so that offsets between events are exact. */
static time_t s_base;

/* s_base + offset seconds as RFC 3339 in UTC */
static void s_at(char out[40], long offset)
{
    time_t t = s_base + offset;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 40, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void s_pbx(const char *event_id, const char *type, const char *call_id, long offset,
                  const char *extra, bool duplicate)
{
    char at[40], body[1024];
    s_at(at, offset);
    snprintf(body, sizeof body,
             "{\"event_id\":\"%s\",\"type\":\"%s\",\"call_id\":\"%s\",\"occurred_at\":\"%s\","
             "\"from\":\"090-1111-2222\",\"to\":\"03-3228-1111\"%s%s}",
             event_id, type, call_id, at, extra ? "," : "", extra ? extra : "");
    ncct_resp_t r =
        ncct_signed_post(&s_sys, "/api/v1/pbx/events", body, NCCT_PBX_SECRET, (int64_t)time(NULL));
    ncct_expect(&r, 200, NULL, body);
    const cJSON *dup = cJSON_GetObjectItemCaseSensitive(r.json, "duplicate");
    cr_assert_eq(cJSON_IsTrue(dup), duplicate, "%s: %s", body, r.body);
    ncct_resp_free(&r);
}

static double s_num(const cJSON *object, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, name);
    cr_assert(cJSON_IsNumber(item), "no number %s in %s", name, cJSON_PrintUnformatted(object));
    return item->valuedouble;
}

static bool s_wait_sql(const char *sql, long want, int timeout_ms)
{
    long long end = ncct_now_ms() + timeout_ms;
    while (ncct_now_ms() < end) {
        if (ncct_owner_long(&s_sys, sql) == want)
            return true;
        usleep(50 * 1000);
    }
    return false;
}

static char s_from[40], s_to[40];

static ncct_resp_t s_kpi(const ncct_session_t *who, const char *group)
{
    char path[256];
    snprintf(path, sizeof path, "/api/v1/reports/kpi?from=%s&to=%s&group=%s", s_from, s_to, group);
    return ncct_request(&s_sys, who, "GET", path, NULL, NULL);
}

/* The row of `key` in a KPI answer, or NULL. */
static const cJSON *s_row(const cJSON *kpi, const char *key)
{
    const cJSON *row;
    cJSON_ArrayForEach(row, cJSON_GetObjectItemCaseSensitive(kpi, "rows"))
    {
        const char *k = ncct_str(row, "key");
        if (k && strcmp(k, key) == 0)
            return row;
    }
    return NULL;
}

/* The record the calls feed made for `call_id`: its id and version. */
static int64_t s_record_of(const char *call_id, int64_t *ret_version)
{
    char path[160];
    snprintf(path, sizeof path, "/api/v1/records?call_id=%s", call_id);
    long long end = ncct_now_ms() + 10000;
    while (ncct_now_ms() < end) {
        ncct_resp_t r = ncct_request(&s_sys, &s_sup, "GET", path, NULL, NULL);
        ncct_expect(&r, 200, NULL, path);
        const cJSON *item =
            cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r.json, "items"), 0);
        if (item) {
            int64_t id = (int64_t)s_num(item, "id");
            *ret_version = (int64_t)s_num(item, "version");
            ncct_resp_free(&r);
            return id;
        }
        ncct_resp_free(&r);
        usleep(50 * 1000);
    }
    cr_assert_fail("no record of call %s", call_id);
    return 0;
}

/* ---- the figures --------------------------------------------------------------------------- */

/* The total, as every check of the figures expects it. */
static void s_check_total(const cJSON *total, const char *when)
{
    cr_assert_eq(s_num(total, "offered"), 4, "%s", when);
    cr_assert_eq(s_num(total, "calls_offered"), 3, "%s", when);
    cr_assert_eq(s_num(total, "answered"), 3, "%s", when);
    cr_assert_eq(s_num(total, "abandoned"), 1, "%s", when);
    cr_assert_float_eq(s_num(total, "abandon_rate"), 0.3333, 1e-9, "%s", when);
    cr_assert_eq(s_num(total, "answered_within_sl"), 1, "%s", when);
    cr_assert_float_eq(s_num(total, "service_level"), 0.3333, 1e-9, "%s", when);
    cr_assert_float_eq(s_num(total, "asa_seconds"), 20.0, 1e-9, "%s", when);
    cr_assert_eq(s_num(total, "talk_seconds_total"), 720, "%s", when);
    cr_assert_float_eq(s_num(total, "talk_seconds"), 240.0, 1e-9, "%s", when);
    /* after-call work: C1 closed now (ended 590 s ago), the visit closed now (ended 60 s ago) */
    double acw = s_num(total, "acw_seconds"), aht = s_num(total, "aht_seconds");
    cr_assert(acw >= 325 && acw <= 360, "%s: acw %f", when, acw);
    cr_assert(aht >= 456 && aht <= 480, "%s: aht %f", when, aht);
    cr_assert_eq(s_num(total, "transferred"), 1, "%s", when);
    cr_assert_eq(s_num(total, "one_stop"), 2, "%s", when);
    cr_assert_float_eq(s_num(total, "one_stop_rate"), 0.6667, 1e-9, "%s", when);
    cr_assert_eq(s_num(total, "surveys"), 1, "%s", when);
    cr_assert_float_eq(s_num(total, "satisfaction"), 4.0, 1e-9, "%s", when);
}

Test(report, kpis_from_calls_and_records_exact_after_duplicates_csv_xlsx_and_live)
{
    s_start();
    s_base = time(NULL);
    s_at(s_from, -3600);
    s_at(s_to, 3600);
    int64_t op1_id = s_op1.user_id;

    /* C1: answered in 10 s by op1, 300 s of talk */
    s_pbx("e1", "ringing", "C1", -900, NULL, false);
    s_pbx("e2", "answered", "C1", -890, "\"agent_extension\":\"2001\"", false);
    s_pbx("e3", "ended", "C1", -590, NULL, false);
    /* C2: answered in 30 s, transferred; the transfer arrives late, after the end */
    s_pbx("e4", "ringing", "C2", -800, NULL, false);
    s_pbx("e5", "answered", "C2", -770, "\"agent_extension\":\"2001\"", false);
    s_pbx("e6", "ended", "C2", -470, NULL, false);
    s_pbx("e7", "transferred", "C2", -700, "\"transfer_to\":\"D02\"", false);
    /* C3: abandoned after 45 s */
    s_pbx("e8", "ringing", "C3", -600, NULL, false);
    s_pbx("e9", "ended", "C3", -555, NULL, false);
    /* the PBX sends one twice */
    s_pbx("e3", "ended", "C1", -590, NULL, true);

    /* C1's record: department, category, closed (its wrap-up ends now) */
    int64_t version = 0;
    int64_t rec1 = s_record_of("C1", &version);
    char path[160], body[512];
    snprintf(path, sizeof path, "/api/v1/records/%lld", (long long)rec1);
    snprintf(body, sizeof body,
             "{\"version\":%lld,\"department_id\":\"D01\",\"category\":\"C01\",\"inquiry\":"
             "\"住民票\",\"response\":\"案内済み\",\"status\":\"closed\",\"faq_ids\":[7]}",
             (long long)version);
    ncct_resp_t r = ncct_request(&s_sys, &s_op1, "PATCH", path, body, NULL);
    ncct_expect(&r, 200, NULL, body);
    ncct_resp_free(&r);
    /* a visit: 120 s at the counter, closed now */
    char started[40], ended[40];
    s_at(started, -180);
    s_at(ended, -60);
    snprintf(body, sizeof body,
             "{\"channel\":\"visit\",\"started_at\":\"%s\",\"ended_at\":\"%s\","
             "\"department_id\":\"D02\",\"inquiry\":\"納税証明\",\"response\":\"案内済み\","
             "\"status\":\"closed\","
             "\"faq_ids\":[7,9]}",
             started, ended);
    r = ncct_request(&s_sys, &s_op1, "POST", "/api/v1/records", body, NULL);
    ncct_expect(&r, 201, NULL, body);
    ncct_resp_free(&r);
    /* the resident of C1 answers a survey: 4 of 5, resolved */
    s_survey(rec1, "satisfaction=4&resolved=yes");
    /* an operator's search that finds nothing */
    r = ncct_request(&s_sys, &s_op1, "GET", "/api/v1/faqs?q=%E7%B2%97%E5%A4%A7%E3%81%94%E3%81%BF",
                     NULL, NULL); /* 粗大ごみ */
    ncct_expect(&r, 200, NULL, "faq search");
    ncct_resp_free(&r);

    /* every fact arrived: C2's record exists, the visit, the search */
    cr_assert(
        s_wait_sql("SELECT count(*) FROM report.contacts WHERE record_id IS NOT NULL", 3, 10000),
        "the records reached the report");
    cr_assert(s_wait_sql("SELECT count(*) FROM report.contacts WHERE call_transferred", 1, 10000));
    cr_assert(s_wait_sql("SELECT count(*) FROM report.faq_searches", 1, 10000), "the search");
    cr_assert(s_wait_sql("SELECT count(*) FROM report.surveys", 1, 10000), "the survey");
    cr_assert(s_wait_sql("SELECT count(*) FROM report.contacts WHERE wrapup_ended_at IS NOT NULL",
                         2, 10000));

    r = s_kpi(&s_sup, "channel");
    ncct_expect(&r, 200, NULL, "kpi by channel");
    s_check_total(cJSON_GetObjectItemCaseSensitive(r.json, "total"), "first");
    const cJSON *phone = s_row(r.json, "phone"), *visit = s_row(r.json, "visit");
    cr_assert(phone && visit, "%s", r.body);
    cr_assert_eq(s_num(phone, "offered"), 3);
    cr_assert_eq(s_num(phone, "answered"), 2);
    cr_assert_eq(s_num(phone, "abandoned"), 1);
    cr_assert_float_eq(s_num(phone, "one_stop_rate"), 0.5, 1e-9);
    cr_assert_eq(s_num(visit, "offered"), 1);
    cr_assert_eq(s_num(visit, "talk_seconds_total"), 120);
    cr_assert_eq(s_num(r.json, "faq_zero_hit_searches"), 1, "%s", r.body);
    const cJSON *zero =
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r.json, "zero_hits"), 0);
    cr_assert_str_eq(ncct_str(zero, "query"), "粗大ごみ", "%s", r.body);
    const cJSON *faq =
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r.json, "faq_ranking"), 0);
    cr_assert_eq(s_num(faq, "number"), 7, "%s", r.body);
    cr_assert_eq(s_num(faq, "used"), 2, "%s", r.body);
    const cJSON *sat = cJSON_GetObjectItemCaseSensitive(r.json, "satisfaction");
    cr_assert_eq(s_num(sat, "answers"), 1, "%s", r.body);
    cr_assert_eq(s_num(sat, "resolved"), 1, "%s", r.body);
    cr_assert_eq(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(sat, "by_score"), 3)->valueint,
                 1, "%s", r.body);
    cr_assert_eq(s_num(phone, "surveys"), 1, "%s", r.body);
    char *first_body = strdup(r.body);
    ncct_resp_free(&r);

    /* the same contacts asked as whole days (the days' figures are kept and added up) */
    char days[160], yesterday[16], tomorrow[16];
    time_t tokyo = time(NULL) + 9 * 3600 - 86400, next = tokyo + 2 * 86400;
    strftime(yesterday, sizeof yesterday, "%Y-%m-%d", gmtime(&tokyo));
    strftime(tomorrow, sizeof tomorrow, "%Y-%m-%d", gmtime(&next));
    for (int i = 0; i < 2; i++) { /* computed, then kept */
        snprintf(days, sizeof days, "/api/v1/reports/kpi?from=%s&to=%s&group=channel", yesterday,
                 tomorrow);
        ncct_resp_t d = ncct_request(&s_sys, &s_sup, "GET", days, NULL, NULL);
        ncct_expect(&d, 200, NULL, days);
        s_check_total(cJSON_GetObjectItemCaseSensitive(d.json, "total"), "whole days");
        cr_assert_eq(s_num(s_row(d.json, "phone"), "offered"), 3, "%s", d.body);
        ncct_resp_free(&d);
    }
    cr_assert_gt(ncct_owner_long(&s_sys, "SELECT count(*) FROM report.kpi_days"), 0, "kept");

    /* by operator and by department */
    r = s_kpi(&s_staff, "operator");
    ncct_expect(&r, 200, NULL, "kpi by operator (staff reads)");
    char op_key[24];
    snprintf(op_key, sizeof op_key, "%lld", (long long)op1_id);
    const cJSON *op = s_row(r.json, op_key), *nobody = s_row(r.json, "0");
    cr_assert(op && nobody, "%s", r.body);
    cr_assert_eq(s_num(op, "offered"), 3, "%s", r.body);
    cr_assert_eq(s_num(op, "answered"), 3);
    cr_assert_eq(s_num(nobody, "abandoned"), 1);
    ncct_resp_free(&r);
    r = s_kpi(&s_sup, "department");
    ncct_expect(&r, 200, NULL, "kpi by department");
    cr_assert_eq(s_num(s_row(r.json, "D01"), "offered"), 1, "%s", r.body);
    cr_assert_str_eq(ncct_str(s_row(r.json, "D01"), "label"), "市民課", "%s", r.body);
    cr_assert_eq(s_num(s_row(r.json, "D02"), "offered"), 1, "%s", r.body);
    cr_assert_eq(s_num(s_row(r.json, ""), "offered"), 2, "%s", r.body);
    ncct_resp_free(&r);

    /* every event again, older versions after newer ones: nothing changes */
    ncct_daemon_stop(ncct_service(&s_sys, "report"));
    long calls_seq = ncct_owner_long(
        &s_sys, "SELECT last_seq FROM report.inbox_cursor WHERE publisher = 'calls'");
    long history_seq = ncct_owner_long(
        &s_sys, "SELECT last_seq FROM report.inbox_cursor WHERE publisher = 'history'");
    cr_assert_eq(ncct_owner_long(&s_sys, "WITH u AS (UPDATE report.inbox_cursor SET last_seq = 0 "
                                         "RETURNING 1) SELECT count(*) FROM u"),
                 5); /* calls, history, sms, faq, directory (the names) */
    ncct_system_start(&s_sys, "report", NULL);
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT last_seq FROM report.inbox_cursor WHERE publisher = 'calls'");
    cr_assert(s_wait_sql(sql, calls_seq, 15000), "the calls events were replayed");
    snprintf(sql, sizeof sql,
             "SELECT last_seq FROM report.inbox_cursor WHERE publisher = 'history'");
    cr_assert(s_wait_sql(sql, history_seq, 15000), "the history events were replayed");
    r = s_kpi(&s_sup, "channel");
    ncct_expect(&r, 200, NULL, "kpi after the replay");
    s_check_total(cJSON_GetObjectItemCaseSensitive(r.json, "total"), "after the replay");
    cr_assert_str_eq(r.body, first_body, "the figures changed with duplicates");
    ncct_resp_free(&r);
    free(first_body);

    /* CSV: BOM, Japanese heading, the rows */
    snprintf(path, sizeof path, "/api/v1/reports/export.csv?from=%s&to=%s&group=channel", s_from,
             s_to);
    r = ncct_request(&s_sys, &s_sup, "GET", path, NULL, NULL);
    ncct_expect(&r, 200, NULL, "csv");
    cr_assert(r.len > 3 && memcmp(r.body, "\xEF\xBB\xBF", 3) == 0, "BOM");
    cr_assert(strstr(r.body, "チャネル,名称,入電数,うち電話,応答数,放棄呼数,放棄率(%),SL内応答数,"
                             "サービスレベル(%),平均応答時間ASA(秒),通話時間合計(秒),"
                             "平均通話時間(秒),平均後処理時間(秒),平均処理時間AHT(秒),転送数,"
                             "ワンストップ数,ワンストップ率(%),アンケート回答数,平均満足度\r\n"),
              "%s", r.body);
    cr_assert(strstr(r.body, "\r\nphone,phone,3,3,2,1,33.3,1,33.3,20.0,600,300.0,"), "%s", r.body);
    cr_assert(strstr(r.body, ",1,50.0,1,4.00\r\n"), "phone: one-stop, the survey: %s", r.body);
    cr_assert(strstr(r.body, "\r\nvisit,visit,1,0,1,0,0.0,0,0.0,0.0,120,120.0,"), "%s", r.body);
    cr_assert(strstr(r.body, "\r\n,合計,4,3,3,1,33.3,1,33.3,20.0,720,240.0,"), "%s", r.body);
    char *type = ncct_header(&r, "Content-Type");
    cr_assert(type && strstr(type, "text/csv"), "%s", type ? type : "");
    free(type);
    ncct_resp_free(&r);

    /* XLSX: a zip holding the workbook with the expected sheets */
    snprintf(path, sizeof path, "/api/v1/reports/export.xlsx?from=%s&to=%s", s_from, s_to);
    r = ncct_request(&s_sys, &s_sup, "GET", path, NULL, NULL);
    ncct_expect(&r, 200, NULL, "xlsx");
    cr_assert(r.len > 1000 && memcmp(r.body, "PK\x03\x04", 4) == 0, "a zip (%zu bytes)", r.len);
    type = ncct_header(&r, "Content-Type");
    cr_assert(type && strstr(type, "spreadsheetml"), "%s", type ? type : "");
    free(type);
    char file[] = "/tmp/test_report_XXXXXX";
    int fd = mkstemp(file);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, r.body, r.len), (ssize_t)r.len);
    close(fd);
    ncct_resp_free(&r);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "unzip -p %s xl/workbook.xml", file);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    char xml[8192] = "";
    size_t n = fread(xml, 1, sizeof xml - 1, p);
    xml[n] = '\0';
    cr_assert_eq(pclose(p), 0, "unzip failed");
    static const char *const sheets[] = {"サマリー",   "時間帯別",   "日別",
                                         "月別",       "担当課別",   "カテゴリー別",
                                         "受付者別",   "チャネル別", "FAQ利用ランキング",
                                         "ゼロ件検索", "満足度"};
    for (size_t i = 0; i < sizeof sheets / sizeof sheets[0]; i++) {
        char name[80];
        snprintf(name, sizeof name, "name=\"%s\"", sheets[i]);
        cr_assert(strstr(xml, name), "sheet %s missing: %s", sheets[i], xml);
    }
    snprintf(cmd, sizeof cmd, "unzip -l %s | grep -c 'xl/charts/chart1.xml'", file);
    p = popen(cmd, "r");
    n = fread(xml, 1, sizeof xml - 1, p);
    xml[n] = '\0';
    pclose(p);
    cr_assert_eq(atoi(xml), 1, "the summary's chart");
    unlink(file);

    /* bad input: 400 in the API.md shape; an operator may not read reports */
    struct {
        const char *query, *field;
    } bad[] = {
        {"from=2027-04-02&to=2027-04-01", "to"},
        {"from=2026-01-01&to=2027-03-31", "to"},
        {"from=2027-04-01&to=2027-04-30&group=week", "group"},
        {"from=2027-02-30&to=2027-03-01", "from"},
        {"from=yesterday", "from"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(path, sizeof path, "/api/v1/reports/kpi?%s", bad[i].query);
        r = ncct_request(&s_sys, &s_sup, "GET", path, NULL, NULL);
        ncct_expect(&r, 400, "invalid_field", path);
        const cJSON *error = cJSON_GetObjectItemCaseSensitive(r.json, "error");
        cr_assert_str_eq(ncct_str(error, "field"), bad[i].field, "%s: %s", path, r.body);
        cr_assert(ncct_str(error, "message"), "%s", r.body);
        ncct_resp_free(&r);
    }
    r = ncct_request(&s_sys, &s_sup, "GET",
                     "/api/v1/reports/export.csv?from=2027-04-02&to=2027-04-01", NULL, NULL);
    ncct_expect(&r, 400, "invalid_field", "reversed csv");
    ncct_resp_free(&r);
    r = ncct_request(&s_sys, &s_sup, "GET",
                     "/api/v1/reports/export.xlsx?from=2020-04-01&to=2027-04-01", NULL, NULL);
    ncct_expect(&r, 400, "invalid_field", "too long xlsx");
    ncct_resp_free(&r);
    r = s_kpi(&s_op1, "day");
    ncct_expect(&r, 403, NULL, "operators do not read reports");
    ncct_resp_free(&r);

    /* live: a supervisor's stream sees a new call waiting within a second */
    ncct_stream_t stream;
    ncct_stream_open(&s_sys, &stream, &s_sup);
    cr_assert(ncct_stream_wait(&stream, "event: metrics.live", 3000), "the live figures come");
    long long sent = ncct_now_ms();
    s_pbx("e10", "ringing", "C4", (long)(time(NULL) - s_base), NULL, false);
    cr_assert(ncct_stream_wait(&stream, "\"waiting\":1", 3000), "the waiting call is pushed");
    long long lag = ncct_now_ms() - sent;
    cr_assert_lt(lag, 1000, "push lag %lld ms", lag);
    char *events = ncct_stream_events(&stream, "metrics.live");
    cr_assert(strstr(events, "\"today\":{"), "%s", events);
    free(events);
    ncct_stream_close(&stream);
    r = ncct_request(&s_sys, &s_sup, "GET", "/api/v1/metrics/live", NULL, NULL);
    ncct_expect(&r, 200, NULL, "live");
    cr_assert_eq(s_num(r.json, "waiting"), 1, "%s", r.body);
    cr_assert_eq(s_num(cJSON_GetObjectItemCaseSensitive(r.json, "today"), "offered") >= 5, 1, "%s",
                 r.body);
    ncct_resp_free(&r);
}

/* ---- batch ----------------------------------------------------------------------------------- */

/* Runs ncc-report with `args` (NULL-terminated) and env; the exit code. */
static int s_batch(const char *const *args, const char *database_url)
{
    char program[512];
    snprintf(program, sizeof program, "%s/ncc-report", ncct_bin_dir());
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        setenv("NCC_DATABASE_URL", database_url, 1);
        if (strcmp(database_url, s_sys.db.url) == 0)
            setenv("NCC_DATABASE_OWNER_URL", s_sys.db.owner_url, 1);
        else
            unsetenv("NCC_DATABASE_OWNER_URL");
        const char *argv[12] = {program};
        size_t n = 1;
        for (; args[n - 1] && n < 11; n++)
            argv[n] = args[n - 1];
        argv[n] = NULL;
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execv(program, (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "ncc-report died");
    return WEXITSTATUS(status);
}

static size_t s_entries(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

Test(report, batch_writes_whole_files_idempotently_with_exit_codes)
{
    ncct_system_start(&s_sys, "directory", NULL);
    ncct_system_start_gateway(&s_sys, NULL);
    ncct_login_admin(&s_sys, &s_admin);
    ncct_system_start(&s_sys, "report", NULL);
    /* a month of facts written straight into report's tables (as the benchmark does) */
    cr_assert_eq(
        ncct_owner_long(&s_sys,
                        "WITH i AS (INSERT INTO report.contacts (key, at, is_call, ringing_at, "
                        "answered_at, ended_at, abandoned, operator_id, operator_name, channel) "
                        "SELECT 'B' || g, t, true, t, CASE WHEN g % 5 = 0 THEN NULL ELSE t + "
                        "interval '15 s' END, t + interval '200 s', g % 5 = 0, 1 + g % 3, "
                        "'受付' || (1 + g % 3), 'phone' FROM generate_series(1, 300) g, "
                        "LATERAL (SELECT timestamptz '2026-11-01 09:00+09' + g * interval '2 h') "
                        "x(t) RETURNING 1) SELECT count(*) FROM i"),
        300);
    char dir[] = "/tmp/test_report_batch_XXXXXX";
    cr_assert(mkdtemp(dir));
    char csv[256], csv2[256], xlsx[256];
    snprintf(csv, sizeof csv, "%s/november.csv", dir);
    snprintf(csv2, sizeof csv2, "%s/november-again.csv", dir);
    snprintf(xlsx, sizeof xlsx, "%s/november.xlsx", dir);
    const char *url = s_sys.db.url;

    cr_assert_eq(
        s_batch((const char *[]){"--batch", "monthly", "--period", "2026-11", "--out", csv, NULL},
                url),
        0);
    cr_assert_eq(
        s_batch((const char *[]){"--batch=monthly", "--period=2026-11", "--out", csv2, NULL}, url),
        0);
    char *a = ncct_read_file(csv), *b = ncct_read_file(csv2);
    cr_assert(a && b);
    cr_assert_str_eq(a, b, "the same period twice gives the same file");
    cr_assert(memcmp(a, "\xEF\xBB\xBF日付,名称,入電数", strlen("\xEF\xBB\xBF日付,名称,入電数")) ==
                  0,
              "%s", a);
    /* 300 calls every 2 h from 11-01 11:00: 25 days of November hold 12 a day */
    cr_assert(strstr(a, "\r\n2026-11-02,2026-11-02,12,12,"), "%s", a);
    cr_assert(strstr(a, "\r\n,合計,300,300,240,60,20.0,240,80.0,15.0,44400,185.0,"), "%s", a);
    cr_assert_eq(
        s_batch((const char *[]){"--batch", "monthly", "--period", "2026-11", "--out", xlsx, NULL},
                url),
        0);
    char *x = ncct_read_file(xlsx);
    cr_assert(x && memcmp(x, "PK\x03\x04", 4) == 0, "an xlsx");
    free(x);
    cr_assert_eq(s_entries(dir), 3, "no temporary file left");
    /* the figures of November 2 were kept: one more call that day is counted all the same */
    cr_assert_gt(ncct_owner_long(&s_sys, "SELECT count(*) FROM report.kpi_days WHERE day = "
                                         "'2026-11-02'"),
                 0);
    cr_assert_eq(ncct_owner_long(&s_sys, "WITH i AS (INSERT INTO report.contacts (key, at, "
                                         "is_call, ringing_at) VALUES ('late', '2026-11-02 "
                                         "12:30+09', true, '2026-11-02 12:30+09') RETURNING 1) "
                                         "SELECT count(*) FROM i"),
                 1);
    cr_assert_eq(ncct_owner_long(&s_sys, "SELECT count(*) FROM report.kpi_days WHERE day = "
                                         "'2026-11-02'"),
                 0, "the day is forgotten");
    char csv3[256];
    snprintf(csv3, sizeof csv3, "%s/november-3.csv", dir);
    cr_assert_eq(
        s_batch((const char *[]){"--batch", "monthly", "--period", "2026-11", "--out", csv3, NULL},
                url),
        0);
    char *c3 = ncct_read_file(csv3);
    cr_assert(c3 && strstr(c3, "\r\n2026-11-02,2026-11-02,13,13,"), "%s", c3);
    cr_assert(strstr(c3, "\r\n,合計,301,301,240,60,"), "%s", c3);
    free(c3);
    unlink(csv3);
    cr_assert_eq(ncct_owner_long(&s_sys, "WITH d AS (DELETE FROM report.contacts WHERE key = "
                                         "'late' RETURNING 1) SELECT count(*) FROM d"),
                 1);

    /* bad arguments: 2, nothing written */
    const char *const *usage[] = {
        (const char *[]){"--batch", "weekly", "--period", "2026-11", "--out", csv, NULL},
        (const char *[]){"--batch", "monthly", "--period", "2026-13", "--out", csv, NULL},
        (const char *[]){"--batch", "daily", "--period", "2026-11", "--out", csv, NULL},
        (const char *[]){"--batch", "monthly", "--period", "2026-11", "--out", "x.txt", NULL},
        (const char *[]){"--batch", "monthly", "--period", "2026-11", NULL},
        (const char *[]){"--batch", "monthly", "--period", "2026-11", "--out", csv, "--x", NULL},
    };
    for (size_t i = 0; i < sizeof usage / sizeof usage[0]; i++)
        cr_assert_eq(s_batch(usage[i], url), 2, "usage %zu", i);
    /* a path it may not write: 3, nothing left behind */
    char blocked[300];
    snprintf(blocked, sizeof blocked, "%s/november.csv/inside.csv", dir); /* a file, not a dir */
    cr_assert_eq(s_batch((const char *[]){"--batch", "daily", "--period", "2026-11-02", "--out",
                                          blocked, NULL},
                         url),
                 3);
    cr_assert_eq(s_batch((const char *[]){"--batch", "daily", "--period", "2026-11-02", "--out",
                                          "/proc/ncc-report.csv", NULL},
                         url),
                 3);
    cr_assert_eq(s_entries(dir), 3, "no partial file");
    /* no database: 4 */
    cr_assert_eq(
        s_batch((const char *[]){"--batch", "daily", "--period", "2026-11-02", "--out", csv, NULL},
                "postgresql://ncc@127.0.0.1:1/none?connect_timeout=1"),
        4);
    char *again = ncct_read_file(csv);
    cr_assert_str_eq(again, a, "the file was left as it was");
    free(again);

    /* the runs, newest first, and a past run's file */
    ncct_resp_t r = ncct_request(&s_sys, &s_admin, "GET", "/api/v1/reports/runs", NULL, NULL);
    ncct_expect(&r, 200, NULL, "runs");
    cr_assert_eq(s_num(r.json, "total"), 6, "%s", r.body); /* 4 written, 2 refused paths */
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(r.json, "items");
    const cJSON *failed = cJSON_GetArrayItem(items, 0);
    cr_assert_str_eq(ncct_str(failed, "status"), "failed", "%s", r.body);
    cr_assert_eq(s_num(failed, "exit_code"), 3);
    const cJSON *first = cJSON_GetArrayItem(items, 5);
    cr_assert_str_eq(ncct_str(first, "status"), "ok");
    cr_assert_str_eq(ncct_str(first, "format"), "csv");
    char path[96];
    snprintf(path, sizeof path, "/api/v1/reports/runs/%lld/file", (long long)s_num(first, "id"));
    ncct_resp_free(&r);
    r = ncct_request(&s_sys, &s_admin, "GET", path, NULL, NULL);
    ncct_expect(&r, 200, NULL, path);
    cr_assert_eq(r.len, strlen(a));
    cr_assert(memcmp(r.body, a, r.len) == 0, "the run's file as written");
    ncct_resp_free(&r);
    r = ncct_request(&s_sys, &s_admin, "GET", "/api/v1/reports/runs/999999/file", NULL, NULL);
    ncct_expect(&r, 404, "not_found", "no such run");
    ncct_resp_free(&r);
    free(a);
    free(b);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}
