/* ncc-history (R20, R29, R31-R35, R48; docs/history.md), end to end: the
 * real ncc-directory, ncc-calls, ncc-history and ncc-gateway (from
 * NCC_TEST_BIN_DIR) against a database of this test's own
 * (tests/support/ncc_system.h). Requests go through the gateway as the
 * administrator, operators, a supervisor and staff; calls come as signed PBX
 * webhooks, so the records made from calls come from ncc-calls' real
 * CallStateChanged events. Covered: every field and rule of a record, the
 * receipt number per fiscal year, roles, optimistic locking, the audit of
 * reads; the list's filters, sorts, paging and the Japanese keyword search
 * (1- and 2-character words, width and kana folded, within a second of the
 * commit); records from calls, idempotent, and the caller's history for the
 * screen pop; the streamed CSV export (UTF-8 with BOM, Shift_JIS, many
 * pages) and the all-or-nothing import; the retention purge (dry run, audit)
 * and the contract-end erase. */
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <iconv.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "history.pb-c.h"
#include "ncc/bus.h"
#include "ncc/log.h"
#include "ncc_system.h"
#include "ncc_test.h"

#define PASSWORD "Madoguchi-Pass-2027"

static ncct_system_t s_sys;
static ncct_session_t s_admin, s_op1, s_op2, s_sup, s_staff;
static int64_t s_op1_id;

/* ---- set-up ------------------------------------------------------------------------------ */

static void s_master(const char *path, const char *body)
{
    ncct_resp_t r = ncct_request(&s_sys, &s_admin, "POST", path, body, NULL);
    ncct_expect(&r, 201, NULL, path);
    ncct_resp_free(&r);
}

/* The system with masters and users; history started with extra_env. */
static void s_start(const char *const *history_env)
{
    ncct_system_start(&s_sys, "directory", NULL);
    ncct_system_start_gateway(&s_sys, NULL);
    ncct_login_admin(&s_sys, &s_admin);
    s_master("/api/v1/departments", "{\"code\":\"D01\",\"name\":\"市民課\"}");
    s_master("/api/v1/departments", "{\"code\":\"D02\",\"name\":\"税務課\"}");
    s_master("/api/v1/departments", "{\"code\":\"D09\",\"name\":\"旧課\",\"active\":false}");
    s_master("/api/v1/categories", "{\"code\":\"C01\",\"name\":\"証明書\"}");
    s_master("/api/v1/reception-types", "{\"code\":\"R01\",\"name\":\"問い合わせ\"}");
    s_master("/api/v1/handling-types", "{\"code\":\"H01\",\"name\":\"回答済み\"}");
    s_op1_id = ncct_create_user(&s_sys, &s_admin, "op1", "[\"operator\"]", "2001", PASSWORD);
    ncct_create_user(&s_sys, &s_admin, "op2", "[\"operator\"]", "2002", PASSWORD);
    ncct_create_user(&s_sys, &s_admin, "sup1", "[\"supervisor\"]", NULL, PASSWORD);
    ncct_create_user(&s_sys, &s_admin, "staff1", "[\"staff\"]", NULL, PASSWORD);
    ncct_login(&s_sys, &s_op1, "op1", PASSWORD, NULL);
    ncct_login(&s_sys, &s_op2, "op2", PASSWORD, NULL);
    ncct_login(&s_sys, &s_sup, "sup1", PASSWORD, NULL);
    ncct_login(&s_sys, &s_staff, "staff1", PASSWORD, NULL);
    ncct_system_start(&s_sys, "calls", NULL);
    ncct_system_start(&s_sys, "history", history_env);
}

static void setup(void)
{
    ncc_log_init("test_history", NCC_LOG_ERROR);
    ncct_system_init(&s_sys, "test_history");
}

static void teardown(void)
{
    ncct_system_teardown(&s_sys);
}

TestSuite(history, .init = setup, .fini = teardown, .timeout = 300);

/* ---- helpers ----------------------------------------------------------------------------- */

static ncct_resp_t s_req(const ncct_session_t *who, const char *method, const char *path,
                         const char *body)
{
    return ncct_request(&s_sys, who, method, path, body, NULL);
}

/* Asserts the status (and the error's field when given), frees the answer. */
static void s_check(ncct_resp_t r, long status, const char *field, const char *what)
{
    ncct_expect(&r, status, NULL, what);
    if (field) {
        const cJSON *error = cJSON_GetObjectItemCaseSensitive(r.json, "error");
        const char *got = ncct_str(error, "field");
        cr_assert(got && strcmp(got, field) == 0, "%s: field %s expected: %s", what, field, r.body);
    }
    ncct_resp_free(&r);
}

static double s_num(const cJSON *object, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, name);
    cr_assert(cJSON_IsNumber(item), "no number %s", name);
    return item->valuedouble;
}

/* Creates a record as `who`; returns its id (and its version through *ret_version). */
static int64_t s_create(const ncct_session_t *who, const char *json)
{
    ncct_resp_t r = s_req(who, "POST", "/api/v1/records", json);
    ncct_expect(&r, 201, NULL, json);
    int64_t id = (int64_t)s_num(r.json, "id");
    ncct_resp_free(&r);
    return id;
}

static long s_count(const char *sql)
{
    return ncct_owner_long(&s_sys, sql);
}

/* GET a list; asserts 200; the caller frees. */
static ncct_resp_t s_list(const ncct_session_t *who, const char *query)
{
    char path[512];
    snprintf(path, sizeof path, "/api/v1/records%s", query);
    ncct_resp_t r = s_req(who, "GET", path, NULL);
    ncct_expect(&r, 200, NULL, path);
    return r;
}

static long s_total(const char *query)
{
    ncct_resp_t r = s_list(&s_sup, query);
    long total = (long)s_num(r.json, "total");
    ncct_resp_free(&r);
    return total;
}

/* Waits until the search `query` answers `total` (the index follows the
 * outbox); returns the milliseconds it took, -1 on time-out. */
static long long s_wait_total(const char *query, long total, int timeout_ms)
{
    long long start = ncct_now_ms();
    while (ncct_now_ms() - start < timeout_ms) {
        if (s_total(query) == total)
            return ncct_now_ms() - start;
        usleep(20 * 1000);
    }
    return -1;
}

/* The receipt ids of a list answer, comma-separated, into out. */
static void s_receipts(const cJSON *list, char *out, size_t len)
{
    out[0] = '\0';
    const cJSON *item;
    size_t used = 0;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(list, "items")) used +=
        (size_t)snprintf(out + used, len - used, "%s%s", used ? "," : "",
                         ncct_str(item, "receipt_id"));
}

/* ---- records ------------------------------------------------------------------------------ */

Test(history, records_keep_every_field_and_refuse_bad_input)
{
    s_start(NULL);
    /* Missing or wrong fields: 422 naming the field, nothing stored. */
    struct {
        const char *body, *field;
    } bad[] = {
        {"{\"inquiry\":\"x\"}", "channel"},
        {"{\"channel\":\"fax\",\"inquiry\":\"x\"}", "channel"},
        {"{\"channel\":\"visit\"}", "inquiry"},
        {"{\"channel\":\"visit\",\"inquiry\":\"x\",\"status\":\"done\"}", "status"},
        {"{\"channel\":\"visit\",\"inquiry\":\"x\",\"status\":\"closed\"}", "response"},
        {"{\"channel\":\"visit\",\"inquiry\":\"x\",\"department_id\":\"NOPE\"}", "department_id"},
        {"{\"channel\":\"visit\",\"inquiry\":\"x\",\"department_id\":\"D09\"}", "department_id"},
        {"{\"channel\":\"visit\",\"inquiry\":\"x\",\"category\":\"C99\"}", "category"},
        {"{\"channel\":\"visit\",\"inquiry\":\"x\",\"reception_type\":\"R9\"}", "reception_type"},
        {"{\"channel\":\"visit\",\"inquiry\":\"x\",\"handling_type\":\"H9\"}", "handling_type"},
        {"{\"channel\":\"visit\",\"inquiry\":\"x\",\"faq_ids\":[1,2,3,4]}", "faq_ids"},
        {"{\"channel\":\"visit\",\"inquiry\":\"x\",\"faq_ids\":[5,5]}", "faq_ids"},
        {"{\"channel\":\"visit\",\"inquiry\":\"x\",\"started_at\":\"2027-04-01 09:00\"}",
         "started_at"},
        {"{\"channel\":\"visit\",\"inquiry\":\"x\",\"started_at\":\"2027-02-30T09:00:00+09:00\"}",
         "started_at"},
        {"{\"channel\":\"visit\",\"inquiry\":\"x\",\"started_at\":\"2027-04-01T10:00:00+09:00\","
         "\"ended_at\":\"2027-04-01T09:00:00+09:00\"}",
         "ended_at"},
        {"{\"channel\":\"visit\",\"inquiry\":\"x\",\"caller_number\":\"abc\"}", "caller_number"},
        {"{\"channel\":\"visit\",\"inquiry\":\"x\",\"call_id\":\"a b\"}", "call_id"},
        {"{\"channel\":\"visit\",\"inquiry\":\"x\",\"transfer_to\":\"a\\nb\"}", "transfer_to"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        s_check(s_req(&s_op1, "POST", "/api/v1/records", bad[i].body), 422, bad[i].field,
                bad[i].body);
    s_check(s_req(&s_op1, "POST", "/api/v1/records", "{\"channel\":\"visit\",\"nope\":1}"), 400,
            "nope", "unknown field");
    s_check(s_req(&s_staff, "POST", "/api/v1/records", "{\"channel\":\"visit\",\"inquiry\":\"x\"}"),
            403, NULL, "staff cannot create");
    s_check(s_req(&s_op1, "POST", "/api/v1/records",
                  "{\"channel\":\"visit\",\"inquiry\":\"x\",\"operator_id\":999}"),
            403, "operator_id", "operators create as themselves");
    cr_assert_eq(s_count("SELECT count(*) FROM history.records"), 0, "nothing stored");

    /* Every field; the receipt number follows the fiscal year (April-March). */
    ncct_resp_t r = s_req(&s_op1, "POST", "/api/v1/records",
                          "{\"channel\":\"phone\",\"call_id\":\"CALL-9\",\"started_at\":\"2027-04-"
                          "01T09:00:00+09:00\","
                          "\"ended_at\":\"2027-04-01T09:05:00+09:00\",\"reception_type\":\"R01\","
                          "\"department_id\":\"D01\",\"handling_type\":\"H01\",\"faq_ids\":[12,34],"
                          "\"category\":\"C01\",\"inquiry\":\"印鑑登録の手続きを知りたい\","
                          "\"response\":\"窓口で登録できますと案内\",\"transfer_to\":\"T001\","
                          "\"summary\":\"印鑑登録の案内\",\"status\":\"in_progress\","
                          "\"caller_number\":\"090-1111-2222\"}");
    ncct_expect(&r, 201, NULL, "create with every field");
    const cJSON *rec = r.json;
    int64_t id = (int64_t)s_num(rec, "id");
    cr_assert_str_eq(ncct_str(rec, "receipt_id"), "R2027-000001");
    cr_assert_eq(s_num(rec, "fiscal_year"), 2027);
    cr_assert_eq((int64_t)s_num(rec, "operator_id"), s_op1_id);
    cr_assert_str_eq(ncct_str(rec, "operator_name"), "op1");
    cr_assert_str_eq(ncct_str(rec, "started_at"), "2027-04-01T09:00:00+09:00");
    cr_assert_str_eq(ncct_str(rec, "ended_at"), "2027-04-01T09:05:00+09:00");
    cr_assert_null(cJSON_GetObjectItemCaseSensitive(rec, "wrapup_ended_at"));
    cr_assert_str_eq(ncct_str(rec, "caller_number"), "090-1111-2222");
    cr_assert_str_eq(ncct_str(rec, "status"), "in_progress");
    cr_assert_str_eq(ncct_str(rec, "channel"), "phone");
    cr_assert_str_eq(ncct_str(rec, "department_id"), "D01");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(rec, "faq_ids")), 2);
    cr_assert_eq(s_num(rec, "version"), 1);
    ncct_resp_free(&r);
    /* At rest the caller's number is ciphertext with a blind index. */
    cr_assert_eq(s_count("SELECT count(*) FROM history.records WHERE caller_number LIKE 'v1:%' "
                         "AND caller_number NOT LIKE '%1111%' AND length(caller_number_bidx) = 64"),
                 1);
    s_check(s_req(&s_op1, "POST", "/api/v1/records",
                  "{\"channel\":\"phone\",\"call_id\":\"CALL-9\",\"inquiry\":\"again\"}"),
            409, "call_id", "one record per call");
    int64_t march = s_create(&s_op1, "{\"channel\":\"visit\",\"inquiry\":\"年度末\","
                                     "\"started_at\":\"2027-03-31T23:59:00+09:00\"}");
    int64_t april = s_create(&s_op1, "{\"channel\":\"form\",\"inquiry\":\"新年度\","
                                     "\"started_at\":\"2027-04-01T00:00:00+09:00\"}");
    char path[96];
    snprintf(path, sizeof path, "/api/v1/records/%lld", (long long)march);
    r = s_req(&s_staff, "GET", path, NULL);
    ncct_expect(&r, 200, NULL, "staff reads");
    cr_assert_str_eq(ncct_str(r.json, "receipt_id"), "R2026-000001");
    ncct_resp_free(&r);
    snprintf(path, sizeof path, "/api/v1/records/%lld", (long long)april);
    r = s_req(&s_op2, "GET", path, NULL);
    cr_assert_str_eq(ncct_str(r.json, "receipt_id"), "R2027-000002");
    ncct_resp_free(&r);
    s_check(s_req(&s_op1, "GET", "/api/v1/records/999999", NULL), 404, NULL, "no such record");
    s_check(s_req(NULL, "GET", "/api/v1/records/1", NULL), 401, NULL, "no session");
    /* Reads of records are audited. */
    cr_assert_geq(s_count("SELECT count(*) FROM directory.audit_log WHERE action = 'record.read'"),
                  2);

    /* Changes: only the fields sent; the version must be the one read. */
    snprintf(path, sizeof path, "/api/v1/records/%lld", (long long)id);
    r = s_req(&s_op1, "PATCH", path,
              "{\"version\":1,\"summary\":\"要約\",\"transfer_to\":\"\",\"clear_faq_ids\":true}");
    ncct_expect(&r, 200, NULL, "patch");
    cr_assert_eq(s_num(r.json, "version"), 2);
    cr_assert_str_eq(ncct_str(r.json, "summary"), "要約");
    cr_assert_str_eq(ncct_str(r.json, "transfer_to"), "");
    cr_assert_str_eq(ncct_str(r.json, "inquiry"), "印鑑登録の手続きを知りたい");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r.json, "faq_ids")), 0);
    ncct_resp_free(&r);
    r = s_req(&s_op1, "PATCH", path, "{\"version\":1,\"summary\":\"古い版からの上書き\"}");
    ncct_expect(&r, 409, "conflict", "stale version");
    const cJSON *current = cJSON_GetObjectItemCaseSensitive(r.json, "current");
    cr_assert_eq(s_num(current, "version"), 2, "%s", r.body);
    cr_assert_str_eq(ncct_str(current, "summary"), "要約");
    ncct_resp_free(&r);
    cr_assert_eq(s_count("SELECT count(*) FROM history.records WHERE summary = '要約'"), 1,
                 "nothing lost");
    s_check(s_req(&s_op1, "PATCH", path, "{\"summary\":\"x\"}"), 422, "version", "no version");
    s_check(s_req(&s_op1, "PATCH", path, "{\"version\":2,\"response\":\"\",\"status\":\"closed\"}"),
            422, "response", "closing needs a response");
    s_check(s_req(&s_op2, "PATCH", path, "{\"version\":2,\"summary\":\"他人\"}"), 403, NULL,
            "another operator's record");
    s_check(s_req(&s_staff, "PATCH", path, "{\"version\":2,\"summary\":\"x\"}"), 403, NULL,
            "staff read only");
    s_check(s_req(&s_op1, "PATCH", path, "{\"version\":2,\"operator_id\":1}"), 403, "operator_id",
            "operators do not reassign");
    r = s_req(&s_op1, "PATCH", path, "{\"version\":2,\"status\":\"closed\"}");
    ncct_expect(&r, 200, NULL, "close");
    cr_assert_not_null(ncct_str(r.json, "wrapup_ended_at"), "wrap-up end set when closed");
    ncct_resp_free(&r);
    r = s_req(&s_sup, "PATCH", path,
              "{\"version\":3,\"status\":\"in_progress\",\"department_id\":\"D02\"}");
    ncct_expect(&r, 200, NULL, "supervisor reopens (closed -> in_progress, the default form)");
    cr_assert_null(cJSON_GetObjectItemCaseSensitive(r.json, "wrapup_ended_at"));
    cr_assert_eq(s_num(r.json, "version"), 4);
    ncct_resp_free(&r);
    /* Every change went out as an event. */
    cr_assert_geq(s_count("SELECT count(*) FROM history.outbox WHERE type = "
                          "'ncc.history.RecordChanged'"),
                  6);

    /* Sent twice with the same idempotency key (a retry after a time-out or a 503): one
     * record, the same answer; another user's same key is theirs; a bad key is refused. */
    const char *keyed = "{\"channel\":\"visit\",\"inquiry\":\"再送の確認\","
                        "\"idempotency_key\":\"desk-retry-0001\"}";
    int64_t first = s_create(&s_op1, keyed);
    r = s_req(&s_op1, "POST", "/api/v1/records", keyed);
    cr_assert(r.status == 200 || r.status == 201, "the same key again: %ld %s", r.status, r.body);
    cr_assert_eq((int64_t)s_num(r.json, "id"), first, "the same key answers the same record");
    ncct_resp_free(&r);
    cr_assert_eq(s_count("SELECT count(*) FROM history.records WHERE inquiry = '再送の確認'"), 1);
    int64_t other = s_create(&s_op2, keyed);
    cr_assert_neq(other, first, "a key belongs to its user");
    s_check(s_req(&s_op1, "POST", "/api/v1/records",
                  "{\"channel\":\"visit\",\"inquiry\":\"x\",\"idempotency_key\":\"short\"}"),
            422, "idempotency_key", "a bad key");
    ncct_system_stop_all(&s_sys);
}

/* ---- list and search ------------------------------------------------------------------------ */

Test(history, list_filters_sorts_pages_and_searches_japanese)
{
    s_start(NULL);
    static const char *const records[] = {
        "{\"channel\":\"phone\",\"inquiry\":\"印鑑登録証をなくした\",\"department_id\":\"D01\","
        "\"started_at\":\"2027-04-02T09:00:00+09:00\"}",
        "{\"channel\":\"visit\",\"inquiry\":\"住民税の納付書が届かない\",\"department_id\":\"D02\","
        "\"started_at\":\"2027-04-03T09:00:00+09:00\",\"status\":\"in_progress\"}",
        "{\"channel\":\"phone\",\"inquiry\":\"ハンコはどこで作れるか\",\"response\":\"案内した\","
        "\"status\":\"closed\",\"started_at\":\"2027-04-04T09:00:00+09:00\"}",
        "{\"channel\":\"form\",\"inquiry\":\"ﾏｲﾅﾝﾊﾞｰｶｰﾄﾞの更新\",\"summary\":\"ＡＢＣ手続\","
        "\"started_at\":\"2027-05-10T09:00:00+09:00\"}",
        "{\"channel\":\"chat\",\"inquiry\":\"粗大ごみの出し方\",\"response\":\"税とは関係ない\","
        "\"started_at\":\"2027-06-01T09:00:00+09:00\"}",
    };
    for (size_t i = 0; i < sizeof records / sizeof records[0]; i++)
        s_create(&s_op1, records[i]);
    /* Searchable within a second of the commit. */
    long long ms = s_wait_total("?q=%E5%8D%B0%E9%91%91", 1, 1000); /* 印鑑 */
    cr_assert_geq(ms, 0, "印鑑 not found within 1 s");
    cr_assert_eq(s_total("?q=%E7%A8%8E"), 2, "税: one character, inquiry and response");
    cr_assert_eq(s_total("?q=%E3%81%AF%E3%82%93%E3%81%93"), 1, "はんこ finds ハンコ");
    cr_assert_eq(s_total("?q=%E3%83%9E%E3%82%A4%E3%83%8A%E3%83%B3%E3%83%90%E3%83%BC"), 1,
                 "マイナンバー finds half-width ﾏｲﾅﾝﾊﾞｰ");
    cr_assert_eq(s_total("?q=abc"), 1, "abc finds ＡＢＣ");
    cr_assert_eq(s_total("?q=%E4%BD%8F%E6%B0%91%E7%A8%8E%20%E7%B4%8D%E4%BB%98"), 1,
                 "two words: 住民税 納付");
    cr_assert_eq(s_total("?q=%E4%BD%8F%E6%B0%91%E7%A8%8E%20%E7%B2%97%E5%A4%A7"), 0,
                 "two words that are not in one record");
    cr_assert_eq(s_total("?q=%E7%A8%8E&department_id=D02"), 1, "words and a filter");
    cr_assert_eq(s_total("?q=%E7%A8%8E&status=open&status=in_progress"), 2, "statuses OR");
    cr_assert_eq(s_total("?q=%E7%A8%8E&to=2027-04-30"), 1, "words and a period");
    /* Ranking: a word in the inquiry comes before one in the response. */
    ncct_resp_t r = s_list(&s_sup, "?q=%E7%A8%8E");
    char order[256];
    s_receipts(r.json, order, sizeof order);
    cr_assert_str_eq(ncct_str(r.json, "search"), "index");
    const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r.json, "items"), 0);
    cr_assert(strstr(ncct_str(first, "inquiry"), "住民税"), "relevance first: %s", order);
    ncct_resp_free(&r);

    /* Filters without words (the database). */
    cr_assert_eq(s_total(""), 5);
    cr_assert_eq(s_total("?channel=phone"), 2);
    cr_assert_eq(s_total("?channel=phone&channel=form"), 3);
    cr_assert_eq(s_total("?status=closed"), 1);
    cr_assert_eq(s_total("?department_id=D01"), 1);
    cr_assert_eq(s_total("?from=2027-04-03&to=2027-04-04"), 2, "dates: whole days");
    cr_assert_eq(s_total("?from=2027-04-03T12:00:00%2B09:00"), 3);
    char query[96];
    snprintf(query, sizeof query, "?operator_id=%lld", (long long)s_op1_id);
    cr_assert_eq(s_total(query), 5);
    cr_assert_eq(s_total("?fiscal_year=2027"), 5);
    /* Any field sorts, both ways; pages. */
    r = s_list(&s_sup, "?sort=started_at&per_page=2&page=2");
    s_receipts(r.json, order, sizeof order);
    cr_assert_str_eq(order, "R2027-000003,R2027-000004");
    cr_assert_eq(s_num(r.json, "total"), 5);
    ncct_resp_free(&r);
    r = s_list(&s_sup, "?sort=-started_at&per_page=2");
    s_receipts(r.json, order, sizeof order);
    cr_assert_str_eq(order, "R2027-000005,R2027-000004");
    ncct_resp_free(&r);
    r = s_list(&s_sup, "?sort=-inquiry");
    s_receipts(r.json, order, sizeof order);
    cr_assert_str_eq(order, "R2027-000004,R2027-000005,R2027-000001,R2027-000002,R2027-000003",
                     "%s", order);
    ncct_resp_free(&r);
    r = s_list(&s_sup, "?q=%E7%A8%8E&sort=-receipt_id");
    s_receipts(r.json, order, sizeof order);
    cr_assert_str_eq(order, "R2027-000005,R2027-000002", "words sorted by another field");
    ncct_resp_free(&r);
    r = s_list(&s_sup, "?q=%E7%A8%8E&sort=-department_id");
    s_receipts(r.json, order, sizeof order);
    cr_assert_str_eq(order, "R2027-000002,R2027-000005");
    ncct_resp_free(&r);
    /* Bad input. */
    s_check(s_req(&s_sup, "GET", "/api/v1/records?sort=nope", NULL), 422, "sort", "bad sort");
    s_check(s_req(&s_sup, "GET", "/api/v1/records?sort=relevance", NULL), 422, "sort",
            "relevance without words");
    s_check(s_req(&s_sup, "GET", "/api/v1/records?per_page=501", NULL), 422, "per_page", "big");
    s_check(s_req(&s_sup, "GET", "/api/v1/records?page=0", NULL), 422, "page", "page 0");
    s_check(s_req(&s_sup, "GET", "/api/v1/records?status=gone", NULL), 422, "status", "status");
    s_check(s_req(&s_sup, "GET", "/api/v1/records?from=yesterday", NULL), 422, "from", "from");
    s_check(s_req(&s_sup, "GET", "/api/v1/records?department_id=a%20b", NULL), 422, "department_id",
            "code");
    cr_assert_eq(s_total("?q=%E3%80%81%E3%80%82"), 5, "punctuation only: no words");
    cr_assert_geq(s_count("SELECT count(*) FROM directory.audit_log WHERE action = 'record.list'"),
                  20, "lists are audited");
    ncct_system_stop_all(&s_sys);
}

/* ---- records from calls ---------------------------------------------------------------------- */

static void s_pbx(const char *event_id, const char *type, const char *call_id, const char *at,
                  const char *extra)
{
    char body[768];
    snprintf(body, sizeof body,
             "{\"event_id\":\"%s\",\"type\":\"%s\",\"call_id\":\"%s\",\"occurred_at\":\"%s\","
             "\"from\":\"090-1234-5678\",\"to\":\"03-3228-1111\"%s%s}",
             event_id, type, call_id, at, extra ? "," : "", extra ? extra : "");
    ncct_resp_t r =
        ncct_signed_post(&s_sys, "/api/v1/pbx/events", body, NCCT_PBX_SECRET, (int64_t)time(NULL));
    ncct_expect(&r, 200, NULL, body);
    ncct_resp_free(&r);
}

static bool s_wait_count(const char *sql, long want, int timeout_ms)
{
    long long deadline = ncct_now_ms() + timeout_ms;
    while (ncct_now_ms() < deadline) {
        if (s_count(sql) == want)
            return true;
        usleep(20 * 1000);
    }
    return false;
}

Test(history, calls_make_one_record_each_and_feed_the_screen_pop)
{
    s_start(NULL);
    s_pbx("a1", "ringing", "C-1", "2027-04-05T10:00:00+09:00", NULL);
    s_pbx("a2", "answered", "C-1", "2027-04-05T10:00:05+09:00", "\"agent_extension\":\"2001\"");
    cr_assert(s_wait_count("SELECT count(*) FROM history.records WHERE call_id = 'C-1'", 1, 5000),
              "no record from the answered call");
    ncct_resp_t r = s_list(&s_op1, "?call_id=C-1");
    const cJSON *rec = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r.json, "items"), 0);
    cr_assert_not_null(rec, "%s", r.body);
    cr_assert_str_eq(ncct_str(rec, "channel"), "phone");
    cr_assert_str_eq(ncct_str(rec, "status"), "open");
    cr_assert_str_eq(ncct_str(rec, "started_at"), "2027-04-05T10:00:05+09:00");
    cr_assert_str_eq(ncct_str(rec, "operator_name"), "op1");
    cr_assert_eq((int64_t)s_num(rec, "operator_id"), s_op1_id);
    cr_assert_str_eq(ncct_str(rec, "caller_number"), "090-1234-5678");
    cr_assert_str_eq(ncct_str(rec, "receipt_id"), "R2027-000001");
    int64_t id = (int64_t)s_num(rec, "id");
    int version = (int)s_num(rec, "version");
    ncct_resp_free(&r);

    /* The operator types while the call goes on; the call's end does not make
     * the form's version stale. */
    s_pbx("a3", "transferred", "C-1", "2027-04-05T10:03:00+09:00", "\"transfer_to\":\"T001\"");
    s_pbx("a4", "ended", "C-1", "2027-04-05T10:04:00+09:00", NULL);
    s_pbx("a4", "ended", "C-1", "2027-04-05T10:04:00+09:00", NULL); /* the PBX sends again */
    cr_assert(s_wait_count("SELECT count(*) FROM history.records WHERE call_id = 'C-1' AND "
                           "ended_at IS NOT NULL AND transfer_to = 'T001'",
                           1, 5000),
              "end and transfer not applied");
    char path[96], body[256];
    snprintf(path, sizeof path, "/api/v1/records/%lld", (long long)id);
    snprintf(body, sizeof body,
             "{\"version\":%d,\"inquiry\":\"児童手当の申請\",\"response\":\"必要書類を案内\","
             "\"status\":\"closed\"}",
             version);
    r = s_req(&s_op1, "PATCH", path, body);
    ncct_expect(&r, 200, NULL, "saved after the call ended");
    cr_assert_str_eq(ncct_str(r.json, "ended_at"), "2027-04-05T10:04:00+09:00");
    cr_assert_str_eq(ncct_str(r.json, "transfer_to"), "T001");
    cr_assert_not_null(ncct_str(r.json, "wrapup_ended_at"));
    ncct_resp_free(&r);
    cr_assert_eq(s_count("SELECT count(*) FROM history.records"), 1, "one record per call");

    /* An abandoned call makes no record. */
    s_pbx("b1", "ringing", "C-2", "2027-04-05T11:00:00+09:00", NULL);
    s_pbx("b2", "ended", "C-2", "2027-04-05T11:00:30+09:00", NULL);
    /* A second call from the same number: its pop holds the first record. */
    s_pbx("c1", "ringing", "C-3", "2027-04-06T09:00:00+09:00", NULL);
    s_pbx("c2", "answered", "C-3", "2027-04-06T09:00:04+09:00", "\"agent_extension\":\"2002\"");
    cr_assert(s_wait_count("SELECT count(*) FROM history.records", 2, 5000));
    cr_assert_eq(s_count("SELECT count(*) FROM history.records WHERE call_id = 'C-2'"), 0,
                 "abandoned: no record");

    /* CallerHistory on the bus as ncc-calls asks it: newest first, by digits. */
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", ncct_service(&s_sys, "history")->rpc);
    ncc_rpc_client_t *client = ncc_rpc_client_new(endpoint);
    cr_assert_not_null(client);
    ncc_ctx_t system = {.actor_id = "svc:calls", .actor_role = "system"};
    Ncc__History__CallerHistory ask = NCC__HISTORY__CALLER_HISTORY__INIT;
    ask.caller_number = "+81 90 1234 5678";
    ask.has_limit = true;
    ask.limit = 5;
    ProtobufCMessage *answer = NULL;
    Ncc__Error *error = NULL;
    cr_assert_eq(ncc_rpc_call_typed(client, &system, &ask.base,
                                    &ncc__history__record_list__descriptor, 10000, &answer, &error),
                 0);
    Ncc__History__RecordList *list = (Ncc__History__RecordList *)answer;
    cr_assert_eq(list->n_items, 2);
    cr_assert_eq(list->total, 2);
    cr_assert_str_eq(list->items[0]->call_id, "C-3", "newest first");
    cr_assert_str_eq(list->items[1]->inquiry, "児童手当の申請");
    protobuf_c_message_free_unpacked(answer, NULL);
    ask.caller_number = "03-0000-0000";
    cr_assert_eq(ncc_rpc_call_typed(client, &system, &ask.base,
                                    &ncc__history__record_list__descriptor, 10000, &answer, &error),
                 0);
    cr_assert_eq(((Ncc__History__RecordList *)answer)->n_items, 0);
    protobuf_c_message_free_unpacked(answer, NULL);
    ask.caller_number = "no digits";
    cr_assert_eq(ncc_rpc_call_typed(client, &system, &ask.base,
                                    &ncc__history__record_list__descriptor, 10000, &answer, &error),
                 -EPROTO);
    cr_assert_eq(error->status, 422);
    ncc__error__free_unpacked(error, NULL);
    error = NULL;
    /* A caller without a role may not ask. */
    ncc_ctx_t nobody = {.actor_id = "x"};
    ask.caller_number = "090-1234-5678";
    cr_assert_eq(ncc_rpc_call_typed(client, &nobody, &ask.base,
                                    &ncc__history__record_list__descriptor, 10000, &answer, &error),
                 -EPROTO);
    cr_assert_geq(error->status, 401);
    ncc__error__free_unpacked(error, NULL);
    ncc_rpc_client_destroy(&client);
    ncct_system_stop_all(&s_sys);
}

/* ---- CSV ----------------------------------------------------------------------------------------
 */

#define CSV_HEADER                                                                                 \
    "receipt_id,call_id,channel,operator_id,operator_name,started_at,ended_at,wrapup_ended_at,"    \
    "reception_type,department_id,handling_type,faq_ids,category,inquiry,response,transfer_to,"    \
    "summary,status,caller_number,created_at,updated_at"

static size_t s_lines(const char *text)
{
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, "\r\n")); p += 2)
        n++;
    return n;
}

Test(history, csv_export_streams_and_import_is_all_or_nothing)
{
    s_start(NULL);
    for (int i = 0; i < 7; i++) {
        char body[256];
        snprintf(body, sizeof body,
                 "{\"channel\":\"phone\",\"inquiry\":\"印鑑 %d, \\\"引用\\\"\\n二行目\","
                 "\"started_at\":\"2027-04-%02dT09:00:00+09:00\",\"caller_number\":\"+81-3-1234-"
                 "000%d\"}",
                 i, i + 1, i);
        s_create(&s_op1, body);
    }
    /* Many small pages, streamed: every row once, in order. */
    ncct_resp_t r = s_req(&s_sup, "GET", "/api/v1/records/export.csv?page_rows=2", NULL);
    ncct_expect(&r, 200, NULL, "export");
    char *te = ncct_header(&r, "Transfer-Encoding"), *ct = ncct_header(&r, "Content-Type");
    char *export_id = ncct_header(&r, "X-NCC-Export-Id");
    cr_assert(te && strcmp(te, "chunked") == 0, "chunked: %s", te ? te : "(none)");
    cr_assert_str_eq(ct, "text/csv; charset=utf-8");
    cr_assert_not_null(export_id);
    free(te);
    free(ct);
    cr_assert(r.len > 3 &&
                  memcmp(r.body, "\xEF\xBB\xBF" CSV_HEADER "\r\n", 3 + strlen(CSV_HEADER) + 2) == 0,
              "BOM and header: %.80s", r.body);
    cr_assert(strstr(r.body, "\"印鑑 0, \"\"引用\"\"\n二行目\""), "RFC 4180 quoting");
    cr_assert(strstr(r.body, "'+81-3-1234-0000"), "formula guard on +81");
    cr_assert_eq(s_lines(r.body), 1 + 7, "header and 7 records (the LF inside a field stays LF)");
    const char *a = strstr(r.body, "R2027-000001"), *b = strstr(r.body, "R2027-000007");
    cr_assert(a && b && a < b, "in started_at order");
    cr_assert_null(strstr(a + 1, "R2027-000001,"), "no row twice");
    char *utf8_copy = strdup(r.body);
    ncct_resp_free(&r);
    cr_assert_geq(s_count("SELECT count(*) FROM directory.audit_log WHERE action = "
                          "'record.export'"),
                  1, "exports are audited");
    cr_assert_eq(s_count("SELECT count(*) FROM history.exports WHERE finished_at IS NOT NULL AND "
                         "rows = 7"),
                 1);

    /* Shift_JIS on request. */
    r = s_req(&s_sup, "GET", "/api/v1/records/export.csv?encoding=shift_jis&q=%E5%8D%B0%E9%91%91",
              NULL);
    ncct_expect(&r, 200, NULL, "export sjis");
    ct = ncct_header(&r, "Content-Type");
    cr_assert_str_eq(ct, "text/csv; charset=shift_jis");
    free(ct);
    cr_assert_null(ncct_header(&r, "X-NCC-Export-Id"), "a filtered export cannot erase");
    iconv_t cd = iconv_open("UTF-8", "CP932");
    char out[16384], *in = r.body, *o = out;
    size_t in_left = r.len, out_left = sizeof out - 1;
    cr_assert_neq(iconv(cd, &in, &in_left, &o, &out_left), (size_t)-1, "valid CP932");
    *o = '\0';
    iconv_close(cd);
    cr_assert(strncmp(out, CSV_HEADER, strlen(CSV_HEADER)) == 0, "no BOM in Shift_JIS");
    cr_assert(strstr(out, "印鑑 6"));
    ncct_resp_free(&r);
    s_check(s_req(&s_sup, "GET", "/api/v1/records/export.csv?encoding=latin1", NULL), 422,
            "encoding", "bad encoding");
    s_check(s_req(&s_op1, "GET", "/api/v1/records/export.csv", NULL), 403, NULL,
            "operators do not export");
    r = s_req(&s_staff, "GET", "/api/v1/records/export.csv", NULL);
    ncct_expect(&r, 200, NULL, "staff export (EBPM)");
    ncct_resp_free(&r);

    /* Import: a bad file changes nothing and lists every problem by line. */
    const char *bad = CSV_HEADER "\r\n"
                                 ",,visit,,,2027-04-10 10:00,,,,,,,,来庁の相談,,,,open,,,\r\n"
                                 ",,fax,,,2027-04-10 11:00,,,,,,,,x,,,,open,,,\r\n"
                                 ",,visit,,,2027/4/10 12:00,,,,NOPE,,,,,,,,closed,,,\r\n"
                                 ",,visit,,,yesterday,,,,,,1 2 3 4,,x,,,,,,,\r\n"
                                 "R2027-000001,,visit,,,2027-04-10 13:00,,,,,,,,x,,,,,,,\r\n";
    r = ncct_request_raw(&s_sys, &s_sup, "POST", "/api/v1/records/import", bad, strlen(bad),
                         "text/csv", NULL);
    ncct_expect(&r, 422, "invalid_csv", "bad import");
    const cJSON *errors = cJSON_GetObjectItemCaseSensitive(r.json, "errors");
    char seen[512] = "";
    size_t used = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, errors) used += (size_t)snprintf(
        seen + used, sizeof seen - used, "%d:%s ", (int)s_num(e, "line"), ncct_str(e, "field"));
    cr_assert(strstr(seen, "3:channel") && strstr(seen, "4:department_id") &&
                  strstr(seen, "4:inquiry") && strstr(seen, "4:response") &&
                  strstr(seen, "5:started_at") && strstr(seen, "5:faq_ids") &&
                  strstr(seen, "6:receipt_id"),
              "errors: %s", seen);
    ncct_resp_free(&r);
    cr_assert_eq(s_count("SELECT count(*) FROM history.records"), 7, "nothing imported");
    r = ncct_request_raw(&s_sys, &s_sup, "POST", "/api/v1/records/import", "a,b\r\n1,2\r\n", 10,
                         "text/csv", NULL);
    ncct_expect(&r, 400, "invalid_header", "wrong header");
    ncct_resp_free(&r);

    /* A good file: Excel's forms of time, Shift_JIS, all rows at once. */
    const char *good_utf8 = CSV_HEADER "\r\n"
                                       ",,visit,,,2027/4/10 10:00,,,,D01,,12,,来庁で転入届の相談,"
                                       "案内済み,,,closed,,,\r\n"
                                       ",,form,,,2026-12-01T09:00:00+09:00,,,,,,,,フォームから,,,,"
                                       "open,090-9999-0000,,\r\n";
    iconv_t to_sjis = iconv_open("CP932", "UTF-8");
    char sjis[2048], *sin = (char *)good_utf8, *sout = sjis;
    size_t sin_left = strlen(good_utf8), sout_left = sizeof sjis;
    cr_assert_neq(iconv(to_sjis, &sin, &sin_left, &sout, &sout_left), (size_t)-1);
    iconv_close(to_sjis);
    size_t sjis_len = sizeof sjis - sout_left;
    r = ncct_request_raw(&s_sys, &s_sup, "POST", "/api/v1/records/import?preview=1", sjis, sjis_len,
                         "text/csv", NULL);
    ncct_expect(&r, 200, NULL, "preview");
    cr_assert_eq(s_num(r.json, "created"), 2);
    ncct_resp_free(&r);
    cr_assert_eq(s_count("SELECT count(*) FROM history.records"), 7, "a preview writes nothing");
    r = ncct_request_raw(&s_sys, &s_sup, "POST", "/api/v1/records/import", sjis, sjis_len,
                         "text/csv", NULL);
    ncct_expect(&r, 200, NULL, "import");
    cr_assert_str_eq(ncct_str(r.json, "encoding"), "shift_jis");
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(r.json, "receipt_ids");
    cr_assert_str_eq(cJSON_GetArrayItem(ids, 0)->valuestring, "R2027-000008");
    cr_assert_str_eq(cJSON_GetArrayItem(ids, 1)->valuestring, "R2026-000001");
    ncct_resp_free(&r);
    cr_assert_eq(s_count("SELECT count(*) FROM history.records WHERE source = 'import' AND "
                         "wrapup_ended_at IS NULL"),
                 2);
    cr_assert_geq(s_wait_total("?q=%E8%BB%A2%E5%85%A5", 1, 1000), 0, "imported and searchable");

    /* An export imports back unchanged in its content (round trip of one row). */
    char *line = strstr(utf8_copy, "\r\nR2027-000003,");
    cr_assert_not_null(line);
    char *end = strstr(line + 2, "\r\nR2027-000004,");
    cr_assert_not_null(end);
    char round[4096];
    int n =
        snprintf(round, sizeof round, CSV_HEADER "\r\n%.*s\r\n", (int)(end - line - 2), line + 2);
    /* change its receipt id to a free one of the same fiscal year */
    memcpy(strstr(round, "R2027-000003"), "R2027-000500", 12);
    r = ncct_request_raw(&s_sys, &s_sup, "POST", "/api/v1/records/import", round, (size_t)n,
                         "text/csv", NULL);
    ncct_expect(&r, 200, NULL, "round trip");
    ncct_resp_free(&r);
    cr_assert_eq(s_count("SELECT count(*) FROM history.records r1 JOIN history.records r2 ON "
                         "r1.receipt_id = 'R2027-000003' AND r2.receipt_id = 'R2027-000500' AND "
                         "r1.inquiry = r2.inquiry AND r1.started_at = r2.started_at"),
                 1, "same content");
    /* The counter moved past the number given. */
    s_create(
        &s_op1,
        "{\"channel\":\"visit\",\"inquiry\":\"次\",\"started_at\":\"2027-05-01T09:00:00+09:00\"}");
    cr_assert_eq(s_count("SELECT count(*) FROM history.records WHERE receipt_id = 'R2027-000501'"),
                 1);
    free(utf8_copy);
    free(export_id);
    ncct_system_stop_all(&s_sys);
}

/* ---- retention
 * ------------------------------------------------------------------------------------ */

Test(history, purge_by_fiscal_year_and_erase_after_a_full_export)
{
    s_start(NULL);
    s_create(&s_sup, "{\"channel\":\"visit\",\"inquiry\":\"古い\",\"started_at\":\"2019-06-01T09:"
                     "00:00+09:00\"}");
    s_create(&s_sup, "{\"channel\":\"visit\",\"inquiry\":\"古い2\",\"started_at\":\"2020-03-31T09:"
                     "00:00+09:00\"}");
    s_create(&s_sup, "{\"channel\":\"visit\",\"inquiry\":\"今年\"}");
    cr_assert_geq(s_wait_total("?q=%E5%8F%A4%E3%81%84", 2, 1000), 0);
    s_check(s_req(&s_sup, "POST", "/api/v1/records/purge", "{\"dry_run\":true}"), 403, NULL,
            "admins only");
    s_check(s_req(&s_admin, "POST", "/api/v1/records/purge", "{}"), 422, "keep_fiscal_years",
            "no retention configured");
    s_check(s_req(&s_admin, "POST", "/api/v1/records/purge", "{\"keep_fiscal_years\":0}"), 422,
            "keep_fiscal_years", "zero");
    ncct_resp_t r = s_req(&s_admin, "POST", "/api/v1/records/purge",
                          "{\"dry_run\":true,\"keep_fiscal_years\":2}");
    ncct_expect(&r, 200, NULL, "dry run");
    cr_assert_eq(s_num(r.json, "purged"), 2);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r.json, "fiscal_years")), 2,
                 "2019 (FY2019 and FY2019) and this year: %s", r.body);
    ncct_resp_free(&r);
    cr_assert_eq(s_count("SELECT count(*) FROM history.records"), 3, "a dry run deletes nothing");
    r = s_req(&s_admin, "POST", "/api/v1/records/purge", "{\"keep_fiscal_years\":2}");
    ncct_expect(&r, 200, NULL, "purge");
    cr_assert_eq(s_num(r.json, "purged"), 2);
    ncct_resp_free(&r);
    cr_assert_eq(s_count("SELECT count(*) FROM history.records"), 1);
    cr_assert_eq(s_count("SELECT count(*) FROM directory.audit_log WHERE action = 'record.purge'"),
                 5, "every purge request audited (the 403 and 422 too)");
    cr_assert_geq(s_wait_total("?q=%E5%8F%A4%E3%81%84", 0, 1000), 0, "purged out of the index");

    /* The erase: only after a complete, unfiltered export taken since the last change. */
    s_check(s_req(&s_admin, "POST", "/api/v1/records/erase", "{\"export_id\":1}"), 422, "confirm",
            "confirm");
    s_check(s_req(&s_admin, "POST", "/api/v1/records/erase", "{\"confirm\":\"erase\"}"), 422,
            "export_id", "no export");
    r = s_req(&s_admin, "GET", "/api/v1/records/export.csv?status=open", NULL);
    ncct_expect(&r, 200, NULL, "filtered export");
    ncct_resp_free(&r);
    long filtered = s_count("SELECT max(id) FROM history.exports");
    char body[128];
    snprintf(body, sizeof body, "{\"confirm\":\"erase\",\"export_id\":%ld}", filtered);
    s_check(s_req(&s_admin, "POST", "/api/v1/records/erase", body), 409, "export_id",
            "a filtered export");
    r = s_req(&s_admin, "GET", "/api/v1/records/export.csv", NULL);
    ncct_expect(&r, 200, NULL, "full export");
    char *export_id = ncct_header(&r, "X-NCC-Export-Id");
    cr_assert_not_null(export_id);
    ncct_resp_free(&r);
    s_create(&s_sup, "{\"channel\":\"visit\",\"inquiry\":\"後から\"}");
    snprintf(body, sizeof body, "{\"confirm\":\"erase\",\"export_id\":%s}", export_id);
    s_check(s_req(&s_admin, "POST", "/api/v1/records/erase", body), 409, "export_id",
            "changed since the export");
    free(export_id);
    r = s_req(&s_admin, "GET", "/api/v1/records/export.csv", NULL);
    export_id = ncct_header(&r, "X-NCC-Export-Id");
    cr_assert_eq(s_lines(r.body), 3, "header and two records");
    ncct_resp_free(&r);
    snprintf(body, sizeof body, "{\"confirm\":\"erase\",\"export_id\":%s}", export_id);
    r = s_req(&s_admin, "POST", "/api/v1/records/erase", body);
    ncct_expect(&r, 200, NULL, "erase");
    cr_assert_eq(s_num(r.json, "erased"), 2);
    ncct_resp_free(&r);
    free(export_id);
    cr_assert_eq(s_count("SELECT count(*) FROM history.records"), 0);
    cr_assert_eq(s_count("SELECT count(*) FROM directory.audit_log WHERE action = 'record.erase' "
                         "AND outcome = 'ok'"),
                 1);
    cr_assert_geq(s_wait_total("?q=%E5%BE%8C%E3%81%8B%E3%82%89", 0, 1000), 0,
                  "erased from the index");
    ncct_system_stop_all(&s_sys);
}

Test(history, the_retention_job_purges_by_itself_with_an_audit_entry)
{
    static const char *const env[] = {"NCC_HISTORY_RETENTION_FISCAL_YEARS=1",
                                      "NCC_HISTORY_PURGE_CHECK_S=1", NULL};
    s_start(env);
    s_create(&s_sup, "{\"channel\":\"visit\",\"inquiry\":\"前年度\",\"started_at\":\"2020-06-01T09:"
                     "00:00+09:00\"}");
    s_create(&s_sup, "{\"channel\":\"visit\",\"inquiry\":\"今年度\"}");
    cr_assert(s_wait_count("SELECT count(*) FROM history.records", 1, 10000),
              "the job did not purge");
    cr_assert(s_wait_count("SELECT count(*) FROM directory.audit_log WHERE action = "
                           "'record.purge' AND actor_id = 'svc:history'",
                           1, 5000),
              "no audit entry of the job");
    ncct_system_stop_all(&s_sys);
}
