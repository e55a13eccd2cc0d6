/* ncc-faq (R8, R36, R40-R43, R49, R50; docs/faq.md), end to end: the real
 * ncc-directory, ncc-faq and ncc-gateway (from NCC_TEST_BIN_DIR) against a
 * database of this test's own, started through tests/support/ncc_system.h.
 * Requests go through the gateway's plain listener with libcurl as the
 * administrator, a supervisor, an operator and a resident (no session):
 * create, versions, approval, roles, CSV import (Shift_JIS, wrong header,
 * bad rows: nothing applied) and export, Japanese search (readings, width,
 * kana, 1-character words, typos, synonyms, numbers), bad queries, the
 * zero-hit report, suggestions, the public API and votes (one per browser, a
 * flood refused), and learning from operators' clicks (bad input, roles, the
 * list and its removal, the search effect, a second copy that follows), and
 * department reviewers (所管課の確認者: who may approve, the staff
 * reviewer's queue, bad lists refused). */
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <iconv.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "faq.pb-c.h"
#include "ncc/bus.h"
#include "ncc/log.h"
#include "ncc_system.h"
#include "ncc_test.h"

#define USER_PASSWORD "Madoguchi-Pass-2027"
#define FAQ_LONG      20001

/* ---- the system: ncc-directory, ncc-faq and the gateway (tests/support/ncc_system.h) ---- */

static ncct_system_t s_sys;
#define s_db (s_sys.db)

typedef ncct_session_t session_t;
typedef ncct_resp_t resp_t;

static void setup(void)
{
    ncc_log_init("test_faq", NCC_LOG_ERROR);
    ncct_system_init(&s_sys, "test_faq");
    ncct_system_start(&s_sys, "directory", NULL);
    const char *const faq_env[] = {"NCC_FAQ_VOTES_PER_MINUTE=5", NULL};
    ncct_system_start(&s_sys, "faq", faq_env);
    ncct_system_start_gateway(&s_sys, NULL);
}

static ncc_rpc_client_t *s_copy_client; /* a second ncc-faq copy's bus (learning test) */

static void teardown(void)
{
    ncc_rpc_client_destroy(&s_copy_client);
    ncct_system_teardown(&s_sys);
}

TestSuite(faq, .init = setup, .fini = teardown, .timeout = 300);

static void s_stop_all(void)
{
    ncct_system_stop_all(&s_sys);
}

static long s_owner_long(const char *sql)
{
    return ncct_owner_long(&s_sys, sql);
}

/* Runs `sql` as the application role (the daemons' role); true when it worked. */
static bool s_app_runs(const char *sql)
{
    PGconn *conn = PQconnectdb(s_db.url);
    cr_assert_eq(PQstatus(conn), CONNECTION_OK, "%s", PQerrorMessage(conn));
    PGresult *res = PQexec(conn, sql);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
    PQclear(res);
    PQfinish(conn);
    return ok;
}

/* ---- HTTP ---------------------------------------------------------------------------------- */

/* One request as `session` (NULL: without one) with any body and one extra
 * header line (or NULL). */
static resp_t s_request_as(const session_t *session, const char *method, const char *path,
                           const char *body, size_t body_len, const char *content_type,
                           const char *extra_header)
{
    const char *const headers[] = {extra_header, NULL};
    return ncct_request_raw(&s_sys, session, method, path, body, body_len, content_type,
                            extra_header ? headers : NULL);
}

static resp_t s_request(const session_t *session, const char *method, const char *path,
                        const char *body)
{
    return ncct_request(&s_sys, session, method, path, body, NULL);
}

static void s_free(resp_t *resp)
{
    ncct_resp_free(resp);
}

static const char *s_str(const cJSON *object, const char *name)
{
    return ncct_str(object, name);
}

static long s_num(const cJSON *object, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, name);
    cr_assert(cJSON_IsNumber(item), "no number %s", name);
    return (long)item->valuedouble;
}

/* Asserts the status (and error code when not NULL); returns the response. */
static resp_t s_expect(resp_t resp, long status, const char *code, const char *what)
{
    ncct_expect(&resp, status, code, what);
    return resp;
}

static void s_check(resp_t resp, long status, const char *code, const char *what)
{
    resp = s_expect(resp, status, code, what);
    s_free(&resp);
}

/* The value of header `name` (caller frees), or NULL. */
static char *s_header(const resp_t *resp, const char *name)
{
    return ncct_header(resp, name);
}

static session_t s_admin;

static void s_admin_login(void)
{
    ncct_login_admin(&s_sys, &s_admin);
}

/* A user with `role`, signed in. */
static void s_user(session_t *session, const char *login, const char *role)
{
    char roles[40];
    snprintf(roles, sizeof roles, "[\"%s\"]", role);
    ncct_create_user(&s_sys, &s_admin, login, roles, NULL, USER_PASSWORD);
    ncct_login(&s_sys, session, login, USER_PASSWORD, NULL);
}

/* ---- helpers of the FAQ tests ---------------------------------------------------------------- */

#define FAQ_HEADER "number,question,answer,department_code,category,visibility,keywords,status"

static session_t s_super, s_op;

/* Signs in the administrator, a supervisor and an operator. */
static void s_people(void)
{
    s_admin_login();
    s_user(&s_super, "super1", "supervisor");
    s_user(&s_op, "op1", "operator");
}

static resp_t s_csv_import(const char *csv, size_t len, const char *query)
{
    char path[128];
    snprintf(path, sizeof path, "/api/v1/faqs/import%s", query ? query : "");
    return s_request_as(&s_super, "POST", path, csv, len, "text/csv", NULL);
}

/* GET /api/v1/faqs?q=<q escaped><extra> as `session`. */
static resp_t s_search(const session_t *session, const char *q, const char *extra)
{
    CURL *curl = curl_easy_init();
    char *escaped = curl_easy_escape(curl, q, (int)strlen(q));
    char path[8192];
    snprintf(path, sizeof path, "/api/v1/faqs?q=%s%s", escaped, extra ? extra : "");
    curl_free(escaped);
    curl_easy_cleanup(curl);
    return s_request(session, "GET", path, NULL);
}

/* The number of the first hit of a search (0 when none). */
static long s_first_number(const session_t *session, const char *q)
{
    resp_t resp = s_expect(s_search(session, q, NULL), 200, NULL, q);
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(resp.json, "items");
    long number = cJSON_GetArraySize(items) > 0 ? s_num(cJSON_GetArrayItem(items, 0), "number") : 0;
    s_free(&resp);
    return number;
}

/* True when a search's first page holds FAQ `number`. */
static bool s_finds(const session_t *session, const char *q, long number)
{
    resp_t resp = s_expect(s_search(session, q, NULL), 200, NULL, q);
    bool found = false;
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(resp.json, "items"))
    {
        found |= s_num(item, "number") == number;
    }
    s_free(&resp);
    return found;
}

/* The score of FAQ `number` in a search's first page, 0 when absent. */
static double s_score_of(const session_t *session, const char *q, long number)
{
    resp_t resp = s_expect(s_search(session, q, NULL), 200, NULL, q);
    double score = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(resp.json, "items"))
    {
        if (s_num(item, "number") == number)
            score = cJSON_GetObjectItemCaseSensitive(item, "score")->valuedouble;
    }
    s_free(&resp);
    return score;
}

static long s_total(const session_t *session, const char *path)
{
    resp_t resp = s_expect(s_request(session, "GET", path, NULL), 200, NULL, path);
    long total = s_num(resp.json, "total");
    s_free(&resp);
    return total;
}

/* A small FAQ as CSV: numbers 101.. (published, public unless said). */
static const char s_sample[] = FAQ_HEADER
    "\r\n"
    "101,住民票の写しを取りたい,区民課の窓口かコンビニで取れます。本人確認書類をお持ちください。,,,"
    "public,,published\r\n"
    "102,市民税の納付方法,口座振替、納付書、スマートフォン決済で納められます。,,,public,,"
    "published\r\n"
    "103,マイナンバーカードの申請,申請書を郵送するかスマートフォンで申請できます。,,,public,,"
    "published\r\n"
    "104,粗大ごみの出し方,粗大ごみ受付センターに申し込んでください。,,,internal,,published\r\n"
    "105,印鑑登録をしたい,登録する印鑑と本人確認書類を持って窓口へ。,,,public,,draft\r\n";

static void s_import_sample(void)
{
    resp_t resp =
        s_expect(s_csv_import(s_sample, sizeof s_sample - 1, NULL), 200, NULL, "import sample");
    cr_assert_eq(s_num(resp.json, "create"), 5, "%s", resp.body);
    s_free(&resp);
}

/* ---- the FAQ itself: versions, approval, roles, bad fields ------------------------------------
 */

Test(faq, lifecycle_versions_approval_and_roles)
{
    s_people();
    /* an operator may not write */
    s_check(s_request(&s_op, "POST", "/api/v1/faqs", "{\"question\":\"q\",\"answer\":\"a\"}"), 403,
            "forbidden", "operator creates");
    resp_t resp =
        s_expect(s_request(&s_super, "POST", "/api/v1/faqs",
                           "{\"question\":\"転入届の出し方\",\"answer\":\"14日以内に窓口へ。\","
                           "\"visibility\":\"public\",\"keywords\":\"引っ越し 転入\"}"),
                 201, NULL, "create");
    long id = s_num(resp.json, "id"), number = s_num(resp.json, "number");
    cr_assert_str_eq(s_str(resp.json, "status"), "draft");
    cr_assert_eq(s_num(resp.json, "version"), 1);
    cr_assert_str_eq(s_str(resp.json, "updated_by"), "super1");
    cr_assert_gt(number, 0);
    s_free(&resp);
    char path[128], body[512];
    snprintf(path, sizeof path, "/api/v1/faqs/%ld", id);
    /* a draft is not the operators' */
    s_check(s_request(&s_op, "GET", path, NULL), 404, "not_found", "operator reads a draft");
    cr_assert_eq(s_total(&s_op, "/api/v1/faqs"), 0);
    /* bad fields: nothing changes */
    s_check(s_request(&s_super, "PATCH", path, "{\"version\":1,\"question\":\"\"}"), 422,
            "invalid_field", "empty question");
    s_check(s_request(&s_super, "PATCH", path, "{\"version\":1,\"question\":\"a\\u0007b\"}"), 422,
            "invalid_field", "control character");
    s_check(s_request(&s_super, "PATCH", path, "{\"version\":1,\"status\":\"published\"}"), 422,
            "invalid_field", "published by PATCH");
    s_check(s_request(&s_super, "PATCH", path, "{\"version\":1,\"visibility\":\"everyone\"}"), 422,
            "invalid_field", "visibility");
    s_check(s_request(&s_super, "PATCH", path, "{\"question\":\"x\"}"), 422, "invalid_field",
            "no version");
    char *long_answer = malloc(FAQ_LONG + 64);
    cr_assert_not_null(long_answer);
    int n = snprintf(long_answer, 64, "{\"version\":1,\"answer\":\"");
    memset(long_answer + n, 'a', FAQ_LONG);
    snprintf(long_answer + n + FAQ_LONG, 8, "\"}");
    s_check(s_request(&s_super, "PATCH", path, long_answer), 422, "invalid_field",
            "answer too long");
    free(long_answer);
    /* review, then a stale version, then approval */
    s_check(s_request(&s_super, "PATCH", path, "{\"version\":1,\"status\":\"review\"}"), 200, NULL,
            "to review");
    s_check(s_request(&s_super, "PATCH", path, "{\"version\":1,\"answer\":\"x\"}"), 409, "conflict",
            "stale version");
    snprintf(body, sizeof body, "%s/approve", path);
    s_check(s_request(&s_op, "POST", body, "{\"version\":2}"), 403, "forbidden",
            "operator approves");
    resp = s_expect(s_request(&s_admin, "POST", body, "{\"version\":2}"), 200, NULL, "approve");
    cr_assert_str_eq(s_str(resp.json, "status"), "published");
    cr_assert_str_eq(s_str(resp.json, "approved_by"), "admin");
    cr_assert_not_null(s_str(resp.json, "approved_at"));
    cr_assert_eq(s_num(resp.json, "version"), 3);
    s_free(&resp);
    s_check(s_request(&s_admin, "POST", body, "{\"version\":3}"), 409, "conflict", "approve twice");
    /* now the operators' */
    s_check(s_request(&s_op, "GET", path, NULL), 200, NULL, "operator reads");
    cr_assert_eq(s_total(&s_op, "/api/v1/faqs"), 1);
    /* an edit of a published FAQ goes back to review and loses the approval */
    resp = s_expect(s_request(&s_super, "PATCH", path, "{\"version\":3,\"answer\":\"14日以内。\"}"),
                    200, NULL, "edit published");
    cr_assert_str_eq(s_str(resp.json, "status"), "review");
    cr_assert_null(s_str(resp.json, "approved_by"));
    s_free(&resp);
    cr_assert_eq(s_total(&s_op, "/api/v1/faqs"), 0);
    /* every version, newest first, with who and when */
    snprintf(body, sizeof body, "%s/versions", path);
    resp = s_expect(s_request(&s_super, "GET", body, NULL), 200, NULL, "versions");
    cr_assert_eq(s_num(resp.json, "total"), 4, "%s", resp.body);
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(resp.json, "items");
    cr_assert_str_eq(s_str(cJSON_GetArrayItem(items, 0), "op"), "updated");
    cr_assert_str_eq(s_str(cJSON_GetArrayItem(items, 0), "answer"), "14日以内。");
    cr_assert_str_eq(s_str(cJSON_GetArrayItem(items, 1), "op"), "approved");
    cr_assert_str_eq(s_str(cJSON_GetArrayItem(items, 1), "actor_login"), "admin");
    cr_assert_str_eq(s_str(cJSON_GetArrayItem(items, 3), "op"), "created");
    cr_assert_not_null(s_str(cJSON_GetArrayItem(items, 3), "at"));
    s_free(&resp);
    /* versions cannot be rewritten by the daemons' role */
    cr_assert(!s_app_runs("UPDATE faq.faq_versions SET answer = 'forged'"));
    /* a number is never given twice; delete keeps the history */
    snprintf(body, sizeof body, "{\"number\":%ld,\"question\":\"q\",\"answer\":\"a\"}", number);
    s_check(s_request(&s_super, "POST", "/api/v1/faqs", body), 409, "conflict", "number taken");
    snprintf(body, sizeof body, "%s?version=4", path);
    s_check(s_request(&s_super, "DELETE", body, NULL), 200, NULL, "delete");
    s_check(s_request(&s_super, "GET", path, NULL), 404, "not_found", "deleted");
    cr_assert_eq(s_owner_long("SELECT count(*) FROM faq.faq_versions WHERE op = 'deleted'"), 1);
    resp = s_expect(s_request(&s_super, "POST", "/api/v1/faqs",
                              "{\"question\":\"次の質問\",\"answer\":\"答え\"}"),
                    201, NULL, "next");
    cr_assert_gt(s_num(resp.json, "number"), number, "a deleted number is not reused");
    s_free(&resp);
    s_stop_all();
}

/* ---- search (R41-R43) ---------------------------------------------------------------------------
 */

Test(faq, japanese_search_synonyms_zero_hits_and_suggestions)
{
    s_people();
    s_import_sample();
    /* readings, width, kana, 1-character words, typos, numbers */
    cr_assert_eq(s_first_number(&s_op, "じゅうみんひょう"), 101, "reading in hiragana");
    cr_assert_eq(s_first_number(&s_op, "ｼﾞｭｳﾐﾝﾋｮｳ"), 101, "half-width katakana reading");
    cr_assert_eq(s_first_number(&s_op, "住民票"), 101, "the word");
    cr_assert_eq(s_first_number(&s_op, "住民表"), 101, "a typo (homophone)");
    cr_assert_eq(s_first_number(&s_op, "税"), 102, "one character");
    cr_assert_eq(s_first_number(&s_op, "ﾏｲﾅﾝﾊﾞｰ"), 103, "half width");
    cr_assert_eq(s_first_number(&s_op, "まいなんばー"), 103, "hiragana for katakana");
    cr_assert_eq(s_first_number(&s_op, "１０２"), 102, "a full-width FAQ number");
    cr_assert_eq(s_first_number(&s_op, "102"), 102, "an FAQ number");
    /* the operator sees published FAQs only; the supervisor the draft too */
    cr_assert(!s_finds(&s_op, "印鑑登録", 105), "a draft is not the operators'");
    cr_assert_eq(s_first_number(&s_super, "印鑑登録"), 105, "supervisors see drafts");
    cr_assert_eq(s_first_number(&s_op, "粗大ごみ"), 104, "internal FAQs are the operators'");
    /* filters */
    resp_t resp = s_expect(s_search(&s_super, "申請", "&status=draft"), 200, NULL, "filter");
    cr_assert_eq(s_num(resp.json, "total"), 0, "%s", resp.body);
    s_free(&resp);
    /* synonyms: before the group 個人番号 matches 103 only weakly (a shared
     * reading bigram); with it, as strongly as マイナンバー does */
    double before = s_score_of(&s_op, "個人番号", 103);
    s_check(s_request(&s_op, "PUT", "/api/v1/faq-synonyms",
                      "{\"groups\":[{\"words\":[\"マイナンバー\",\"個人番号\"]}]}"),
            403, "forbidden", "operator edits synonyms");
    s_check(s_request(&s_super, "PUT", "/api/v1/faq-synonyms",
                      "{\"groups\":[{\"words\":[\"ひとつだけ\"]}]}"),
            422, "invalid_field", "a group of one word");
    resp = s_expect(s_request(&s_super, "PUT", "/api/v1/faq-synonyms",
                              "{\"groups\":[{\"words\":[\"マイナンバー\",\"個人番号\"]}]}"),
                    200, NULL, "synonyms");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(resp.json, "groups")), 1);
    s_free(&resp);
    cr_assert_eq(s_first_number(&s_op, "個人番号"), 103, "a synonym");
    double after = s_score_of(&s_op, "個人番号", 103);
    cr_assert_gt(after, before * 2, "the synonym did not count (%f then %f)", before, after);
    resp = s_expect(s_request(&s_op, "GET", "/api/v1/faq-synonyms", NULL), 200, NULL, "read");
    cr_assert(strstr(resp.body, "個人番号"), "%s", resp.body);
    s_free(&resp);
    /* bad queries: a clear error, nothing breaks */
    char *huge = malloc(1002);
    cr_assert_not_null(huge);
    memset(huge, 'a', 1001);
    huge[1001] = '\0';
    s_check(s_search(&s_op, huge, NULL), 422, "invalid_field", "over 1000 characters");
    free(huge);
    s_check(s_search(&s_op, "住民\x01票", NULL), 422, "invalid_field", "control character");
    s_check(s_search(&s_op, "住民\xff", NULL), 400, NULL, "not UTF-8");
    resp = s_expect(s_search(&s_op, "", NULL), 200, NULL, "empty q lists");
    cr_assert_eq(s_num(resp.json, "total"), 4, "published ones, internal too: %s", resp.body);
    s_free(&resp);
    /* zero hits are logged and reported */
    resp = s_expect(s_search(&s_op, "ＸＹＺＺＹ", NULL), 200, NULL, "no hit");
    cr_assert_eq(s_num(resp.json, "total"), 0, "%s", resp.body);
    s_free(&resp);
    s_check(s_search(&s_op, "xyzzy", NULL), 200, NULL, "again (the same once normalised)");
    s_check(s_request(&s_op, "GET", "/api/v1/faqs/zero-hits", NULL), 403, "forbidden",
            "operators do not read the report");
    resp =
        s_expect(s_request(&s_super, "GET", "/api/v1/faqs/zero-hits", NULL), 200, NULL, "report");
    const cJSON *first =
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(resp.json, "items"), 0);
    cr_assert_not_null(first, "%s", resp.body);
    cr_assert_str_eq(s_str(first, "q"), "xyzzy");
    cr_assert_eq(s_num(first, "count"), 2);
    s_free(&resp);
    /* suggestions from conversation text */
    resp = s_expect(s_request(&s_op, "POST", "/api/v1/faqs/suggest",
                              "{\"text\":\"もしもし、引っ越したので住民票の写しが欲しいんですけど、"
                              "どこで取れますか\"}"),
                    200, NULL, "suggest");
    first = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(resp.json, "items"), 0);
    cr_assert_not_null(first, "%s", resp.body);
    cr_assert_eq(s_num(first, "number"), 101);
    cr_assert_leq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(resp.json, "items")), 3);
    s_free(&resp);
    s_check(s_request(&s_op, "POST", "/api/v1/faqs/suggest", "{\"text\":\"  \"}"), 422,
            "invalid_field", "empty text");
    s_stop_all();
}

/* ---- CSV (R4) ----------------------------------------------------------------------------------
 */

/* `utf8` converted to CP932 (caller frees). */
static char *s_to_sjis(const char *utf8, size_t *ret_len)
{
    iconv_t cd = iconv_open("CP932", "UTF-8");
    cr_assert_neq(cd, (iconv_t)-1);
    size_t in_left = strlen(utf8), out_cap = in_left * 2 + 16, out_left = out_cap;
    char *out = malloc(out_cap), *in = (char *)utf8, *o = out;
    cr_assert_neq(iconv(cd, &in, &in_left, &o, &out_left), (size_t)-1);
    iconv_close(cd);
    *ret_len = out_cap - out_left;
    return out;
}

Test(faq, csv_import_export_all_or_nothing)
{
    s_people();
    s_check(s_request(&s_admin, "POST", "/api/v1/departments",
                      "{\"code\":\"D02\",\"name\":\"戸籍住民課\"}"),
            201, NULL, "department");
    /* Shift_JIS as Excel saves it, with a department of the directory (its
     * change reaches ncc-faq's copy of the masters within milliseconds) */
    const char *text =
        FAQ_HEADER "\r\n"
                   "1,戸籍謄本の取り方,本籍地の区役所で。髙橋さんも可。,D02,戸籍,public,戸籍 "
                   "謄本,published\r\n"
                   ",住所変更の届出,14日以内に届け出てください。,,,internal,,review\r\n";
    size_t len = 0;
    char *sjis = s_to_sjis(text, &len);
    resp_t resp = {0};
    for (int i = 0; i < 100; i++) {
        resp = s_csv_import(sjis, len, NULL);
        if (resp.status == 200)
            break;
        s_free(&resp);
        usleep(50 * 1000);
    }
    free(sjis);
    resp = s_expect(resp, 200, NULL, "Shift_JIS import");
    cr_assert_eq(s_num(resp.json, "create"), 2, "%s", resp.body);
    cr_assert_str_eq(s_str(resp.json, "encoding"), "shift_jis");
    s_free(&resp);
    resp = s_expect(s_search(&s_op, "戸籍謄本", NULL), 200, NULL, "imported");
    const cJSON *first =
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(resp.json, "items"), 0);
    cr_assert_str_eq(s_str(first, "answer"), "本籍地の区役所で。髙橋さんも可。");
    cr_assert_str_eq(s_str(first, "department_code"), "D02");
    cr_assert_str_eq(s_str(first, "department_name"), "戸籍住民課");
    cr_assert_gt(s_num(first, "department_id"), 0);
    cr_assert_str_eq(s_str(first, "approved_by"), "super1");
    s_free(&resp);
    /* export, then the same file back: nothing changes */
    resp =
        s_expect(s_request(&s_super, "GET", "/api/v1/faqs/export.csv", NULL), 200, NULL, "export");
    cr_assert(resp.len > 3 && memcmp(resp.body, "\xEF\xBB\xBF" FAQ_HEADER "\r\n",
                                     3 + strlen(FAQ_HEADER) + 2) == 0,
              "%s", resp.body);
    cr_assert(strstr(resp.body, "\r\n2,住所変更の届出,"), "the next number was given: %s",
              resp.body);
    s_check(s_request(&s_op, "GET", "/api/v1/faqs/export.csv", NULL), 403, "forbidden",
            "operator exports");
    resp_t again = s_expect(s_csv_import(resp.body, resp.len, NULL), 200, NULL, "round trip");
    cr_assert_eq(s_num(again.json, "unchanged"), 2, "%s", again.body);
    cr_assert_eq(s_num(again.json, "create") + s_num(again.json, "update"), 0);
    s_free(&again);
    s_free(&resp);
    long versions = s_owner_long("SELECT count(*) FROM faq.faq_versions");
    /* a wrong header */
    const char bad_header[] = "no,question,answer\r\n1,a,b\r\n";
    s_check(s_csv_import(bad_header, sizeof bad_header - 1, NULL), 400, "invalid_header",
            "wrong header");
    s_check(s_csv_import("", 0, NULL), 400, "invalid_header", "empty file");
    /* bad rows: every problem with its line, nothing applied */
    const char bad_rows[] = FAQ_HEADER "\r\n"
                                       "10,良い行,答え,,,public,,published\r\n"
                                       "11,,答えだけ,,,public,,published\r\n"
                                       "12,公開範囲が変,答え,,,everyone,,published\r\n"
                                       "10,番号が重複,答え,,,public,,published\r\n"
                                       "13,課がない,答え,NOPE,,public,,published\r\n"
                                       "14,列が足りない\r\n"
                                       "x,番号が変,答え,,,public,,published\r\n";
    resp =
        s_expect(s_csv_import(bad_rows, sizeof bad_rows - 1, NULL), 422, "invalid_csv", "bad rows");
    cr_assert_eq(s_num(resp.json, "errors_total"), 6, "%s", resp.body);
    const cJSON *errors = cJSON_GetObjectItemCaseSensitive(resp.json, "errors");
    bool lines[10] = {false};
    const cJSON *e;
    cJSON_ArrayForEach(e, errors)
    {
        long line = s_num(e, "line");
        cr_assert(line >= 2 && line <= 8, "%s", resp.body);
        lines[line] = true;
    }
    cr_assert(lines[3] && lines[4] && lines[5] && lines[6] && lines[7] && lines[8] && !lines[2],
              "%s", resp.body);
    s_free(&resp);
    cr_assert_eq(s_owner_long("SELECT count(*) FROM faq.faqs"), 2, "nothing was applied");
    cr_assert_eq(s_owner_long("SELECT count(*) FROM faq.faq_versions"), versions);
    /* a preview changes nothing */
    const char one[] = FAQ_HEADER "\r\n20,新しい質問,答え,,,public,,draft\r\n";
    resp = s_expect(s_csv_import(one, sizeof one - 1, "?preview=1"), 200, NULL, "preview");
    cr_assert_eq(s_num(resp.json, "create"), 1);
    s_free(&resp);
    cr_assert_eq(s_owner_long("SELECT count(*) FROM faq.faqs"), 2, "a preview writes nothing");
    s_stop_all();
}

/* ---- residents (R50) ------------------------------------------------------------------------- */

Test(faq, public_api_votes_and_flood)
{
    s_people();
    s_import_sample();
    session_t nobody = {0};
    /* published public FAQs only, without a session */
    resp_t resp =
        s_expect(s_request(&nobody, "GET", "/api/v1/public/faqs", NULL), 200, NULL, "public list");
    cr_assert_eq(s_num(resp.json, "total"), 3, "%s", resp.body);
    cr_assert_null(strstr(resp.body, "粗大ごみ"), "internal FAQ shown: %s", resp.body);
    cr_assert_null(strstr(resp.body, "approved_by"), "%s", resp.body);
    s_free(&resp);
    resp = s_expect(s_request(&nobody, "GET",
                              "/api/v1/public/faqs?q=%E7%B2%97%E5%A4%A7%E3%81%94%E3%81%BF", NULL),
                    200, NULL, "internal by search");
    cr_assert_eq(s_num(resp.json, "total"), 0, "%s", resp.body);
    s_free(&resp);
    s_check(s_request(&nobody, "GET", "/api/v1/public/faqs/104", NULL), 404, "not_found",
            "internal FAQ");
    s_check(s_request(&nobody, "GET", "/api/v1/public/faqs/105", NULL), 404, "not_found", "draft");
    s_check(s_request(&nobody, "GET", "/api/v1/faqs", NULL), 401, "unauthenticated",
            "the staff API");
    /* votes: one per browser and FAQ */
    const char *path = "/api/v1/public/faqs/101/feedback";
    resp = s_expect(s_request(&nobody, "POST", path,
                              "{\"helpful\":true,\"voter\":\"browser-aaaaaaaaaaaaaaaa\"}"),
                    200, NULL, "vote");
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(resp.json, "accepted")));
    cr_assert_eq(s_num(resp.json, "helpful"), 1);
    s_free(&resp);
    resp = s_expect(s_request(&nobody, "POST", path,
                              "{\"helpful\":false,\"voter\":\"browser-aaaaaaaaaaaaaaaa\"}"),
                    200, NULL, "vote again");
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(resp.json, "accepted")));
    cr_assert_eq(s_num(resp.json, "helpful"), 1);
    cr_assert_eq(s_num(resp.json, "not_helpful"), 0);
    s_free(&resp);
    s_check(s_request(&nobody, "POST", path, "{\"helpful\":true,\"voter\":\"x\"}"), 422,
            "invalid_field", "bad voter");
    s_check(s_request(&nobody, "POST", path, "{\"voter\":\"browser-bbbbbbbbbbbbbbbb\"}"), 422,
            "invalid_field", "no helpful");
    s_check(s_request(&nobody, "POST", "/api/v1/public/faqs/104/feedback",
                      "{\"helpful\":true,\"voter\":\"browser-cccccccccccccccc\"}"),
            404, "not_found", "vote on an internal FAQ");
    /* a flood from one address: NCC_FAQ_VOTES_PER_MINUTE=5, 3 used above (the
     * refused bodies do not count) */
    long refused = 0;
    for (int i = 0; i < 10; i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"helpful\":true,\"voter\":\"flood-%016d\"}", i);
        resp = s_request(&nobody, "POST", path, body);
        if (resp.status == 429)
            refused++;
        else
            cr_assert_eq(resp.status, 200, "%s", resp.body);
        s_free(&resp);
    }
    cr_assert_eq(refused, 8, "the flood was not limited (%ld refused)", refused);
    cr_assert_leq(s_owner_long("SELECT helpful FROM faq.faqs WHERE number = 101"), 3);
    /* the HTML pages: an answer's HTML is shown as text */
    const char html_row[] =
        FAQ_HEADER "\r\n"
                   "201,ごみの日,<b>月曜</b><script>alert(1)</script>,,,public,,published\r\n";
    s_check(s_csv_import(html_row, sizeof html_row - 1, NULL), 200, NULL, "html row");
    resp = s_expect(s_request(&nobody, "GET", "/faq", NULL), 200, NULL, "/faq");
    char *type = s_header(&resp, "Content-Type");
    cr_assert(type && strstr(type, "text/html"), "%s", type ? type : "(none)");
    free(type);
    cr_assert(strstr(resp.body, "住民票の写しを取りたい") && strstr(resp.body, "role=\"search\""),
              "%s", resp.body);
    cr_assert_null(strstr(resp.body, "粗大ごみ"), "internal FAQ on the public page");
    s_free(&resp);
    resp = s_expect(
        s_request(&nobody, "GET", "/faq?q=%E3%81%98%E3%82%85%E3%81%86%E3%81%BF%E3%82%93", NULL),
        200, NULL, "/faq?q=");
    cr_assert(strstr(resp.body, "/faq/101"), "%s", resp.body);
    s_free(&resp);
    resp = s_expect(s_request(&nobody, "GET", "/faq/201", NULL), 200, NULL, "/faq/201");
    cr_assert(strstr(resp.body, "&lt;script&gt;alert(1)&lt;/script&gt;"), "%s", resp.body);
    cr_assert_null(strstr(resp.body, "<script>"), "HTML of an answer ran");
    cr_assert(strstr(resp.body, "閲覧数 1回"), "%s", resp.body);
    char *cookie = s_header(&resp, "Set-Cookie");
    cr_assert(cookie && strncmp(cookie, "ncc_faq_voter=", 14) == 0, "%s", cookie ? cookie : "-");
    char voter_cookie[128];
    snprintf(voter_cookie, sizeof voter_cookie, "Cookie: %.*s", (int)strcspn(cookie, ";"), cookie);
    free(cookie);
    s_free(&resp);
    resp = s_expect(s_request(&nobody, "GET", "/faq/201", NULL), 200, NULL, "again");
    cr_assert(strstr(resp.body, "閲覧数 2回"), "views are counted: %s", resp.body);
    s_free(&resp);
    /* ... and stored within a second or two (counted in memory, written once a second) */
    long stored = 0;
    for (int i = 0; i < 100 && stored != 2; i++) {
        stored = s_owner_long("SELECT views FROM faq.faqs WHERE number = 201");
        if (stored != 2)
            usleep(50 * 1000);
    }
    cr_assert_eq(stored, 2, "the views were not stored");
    s_check(s_request(&nobody, "GET", "/faq/104", NULL), 404, NULL, "internal FAQ page");
    s_check(s_request(&nobody, "GET", "/faq/abc", NULL), 404, NULL, "not a number");
    /* the vote form (after a minute's worth of the flood, the limit holds) */
    resp = s_request_as(&nobody, "POST", "/faq/201/vote", "helpful=1", 9,
                        "application/x-www-form-urlencoded", voter_cookie);
    cr_assert_eq(resp.status, 429, "the address is still limited: %ld", resp.status);
    s_free(&resp);
    s_stop_all();
}

/* ---- learning from operators (docs/faq.md "Learning from operators") ------------------------ */

/* POST /api/v1/faqs/{id}/clicks {"q": q} as `session`. */
static resp_t s_click(const session_t *session, long id, const char *q)
{
    char path[96];
    snprintf(path, sizeof path, "/api/v1/faqs/%ld/clicks", id);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "q", q);
    char *text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    resp_t resp = s_request(session, "POST", path, text);
    free(text);
    return resp;
}

/* DELETE /api/v1/faqs/{id}/clicks?q=<q escaped> as `session`. */
static resp_t s_unclick(const session_t *session, long id, const char *q)
{
    CURL *curl = curl_easy_init();
    char *escaped = curl_easy_escape(curl, q, (int)strlen(q));
    char path[4096];
    snprintf(path, sizeof path, "/api/v1/faqs/%ld/clicks?q=%s", id, escaped);
    curl_free(escaped);
    curl_easy_cleanup(curl);
    return s_request(session, "DELETE", path, NULL);
}

/* True when a search of `q` on one ncc-faq copy, asked over the bus (the
 * gateway talks to the first copy only), finds FAQ `number`. */
static bool s_copy_finds(ncc_rpc_client_t *client, const char *q, long number)
{
    Ncc__Faq__ListFaqs ask = NCC__FAQ__LIST_FAQS__INIT;
    ask.q = (char *)q;
    ask.has_log = true;
    ask.log = false;
    ncc_ctx_t ctx = {.actor_id = "svc:test", .actor_role = "system"};
    ProtobufCMessage *answer = NULL;
    Ncc__Error *error = NULL;
    int rc = ncc_rpc_call_typed(client, &ctx, &ask.base, &ncc__faq__faq_list__descriptor, 5000,
                                &answer, &error);
    cr_assert_eq(rc, 0, "the second copy did not answer (%d) %s", rc,
                 error && error->message ? error->message : "");
    const Ncc__Faq__FaqList *list = (const Ncc__Faq__FaqList *)answer;
    bool found = false;
    for (size_t i = 0; i < list->n_items; i++)
        found |= list->items[i]->number == number;
    protobuf_c_message_free_unpacked(answer, NULL);
    return found;
}

/* Waits up to timeout_ms until the copy finds (or no longer finds) `number`
 * for `q`; true when it came to that. */
static bool s_copy_waits_for(ncc_rpc_client_t *client, const char *q, long number, bool found,
                             int timeout_ms)
{
    long long deadline = ncct_now_ms() + timeout_ms;
    while (s_copy_finds(client, q, number) != found) {
        if (ncct_now_ms() > deadline)
            return false;
        usleep(100 * 1000);
    }
    return true;
}

Test(faq, learning_from_operators_clicks)
{
    s_people();
    s_import_sample();
    session_t op2, staff;
    s_user(&op2, "op2", "operator");
    s_user(&staff, "staff1", "staff");
    /* a second copy of ncc-faq, built before any click: it must learn them
     * from the database (NCC_FAQ_INDEX_CHECK_MS, 1 s), not from a rebuild */
    const char *const copy_env[] = {"NCC_FAQ_VOTES_PER_MINUTE=5", NULL};
    ncct_daemon_t *copy = ncct_system_start_copy(&s_sys, "faq", copy_env);
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", copy->rpc);
    s_copy_client = ncc_rpc_client_new(endpoint);
    ncc_rpc_client_t *client = s_copy_client;
    cr_assert_not_null(client);

    long bulky = s_owner_long("SELECT id FROM faq.faqs WHERE number = 104"); /* 粗大ごみの出し方 */
    long draft = s_owner_long("SELECT id FROM faq.faqs WHERE number = 105");
    const char *words = "電子ピアノを捨てたい", *later = "電子ピアノの処分";
    /* the FAQ says nothing of pianos: no search of these words finds it */
    cr_assert(!s_finds(&s_op, words, 104), "104 found before any click");
    cr_assert(!s_finds(&s_op, later, 104), "104 found before any click");
    cr_assert(!s_copy_finds(client, later, 104), "the copy finds 104 already");

    /* bad input: a clear error, nothing stored */
    char path[96];
    snprintf(path, sizeof path, "/api/v1/faqs/%ld/clicks", bulky);
    s_check(s_click(&s_op, bulky, ""), 422, "invalid_field", "empty q");
    s_check(s_click(&s_op, bulky, "  　 "), 422, "invalid_field", "blank q");
    s_check(s_click(&s_op, bulky, "電子\x07ピアノ"), 422, "invalid_field", "control character");
    char *huge = malloc(1002);
    cr_assert_not_null(huge);
    memset(huge, 'a', 1001);
    huge[1001] = '\0';
    s_check(s_click(&s_op, bulky, huge), 422, "invalid_field", "over 1000 characters");
    free(huge);
    s_check(s_request(&s_op, "POST", path, "{}"), 422, "invalid_field", "no q");
    s_check(s_request(&s_op, "POST", path, "{\"q\":\"x\",\"user_id\":1}"), 400, NULL,
            "an unknown field");
    s_check(s_click(&s_op, 999999, words), 404, "not_found", "no such FAQ");
    s_check(s_click(&s_op, draft, words), 404, "not_found", "a draft is not the operators'");
    resp_t resp = s_expect(s_request(&s_op, "POST", path, "{\"q\":\"\"}"), 422, "invalid_field",
                           "the error shape");
    cr_assert_str_eq(s_str(cJSON_GetObjectItemCaseSensitive(resp.json, "error"), "field"), "q");
    s_free(&resp);
    cr_assert_eq(s_owner_long("SELECT count(*) FROM faq.clicks"), 0, "a refused click was stored");

    /* two operators were led to 104 by the same words; a user counts once */
    resp = s_expect(s_click(&s_op, bulky, words), 200, NULL, "click");
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(resp.json, "recorded")), "%s",
              resp.body);
    cr_assert_str_eq(s_str(resp.json, "q"), words, "the words as typed");
    s_free(&resp);
    resp = s_expect(s_click(&s_op, bulky, "電子ﾋﾟｱﾉを捨てたい"), 200, NULL, "the same again");
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(resp.json, "recorded")), "%s",
              resp.body);
    s_free(&resp);
    s_check(s_click(&op2, bulky, words), 200, NULL, "a second operator");
    s_check(s_click(&staff, bulky, "大型家具の回収"), 200, NULL, "ward staff");
    long residents = s_owner_long("SELECT id FROM faq.faqs WHERE number = 101");
    s_check(s_click(&s_super, residents, "転居の証明"), 200, NULL, "a supervisor, another FAQ");
    cr_assert_eq(s_owner_long("SELECT count(*) FROM faq.clicks"), 4);
    cr_assert_eq(s_owner_long("SELECT count(*) FROM directory.audit_log WHERE action = "
                              "'faq_clicks.create' AND outcome = 'ok'"),
                 5, "every answered click is audited");

    /* the list and the removal are for supervisors and administrators */
    snprintf(path, sizeof path, "/api/v1/faqs/%ld/clicks", bulky);
    s_check(s_request(&s_op, "GET", path, NULL), 403, "forbidden", "an operator lists");
    s_check(s_request(&staff, "GET", path, NULL), 403, "forbidden", "staff list");
    s_check(s_unclick(&s_op, bulky, words), 403, "forbidden", "an operator deletes");
    resp = s_expect(s_request(&s_super, "GET", path, NULL), 200, NULL, "list");
    cr_assert_eq(s_num(resp.json, "total"), 2, "%s", resp.body);
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(resp.json, "items");
    const cJSON *first = cJSON_GetArrayItem(items, 0);
    cr_assert_str_eq(s_str(first, "q"), words, "%s", resp.body);
    cr_assert_eq(s_num(first, "users"), 2);
    cr_assert_not_null(s_str(first, "last_at"));
    cr_assert_str_eq(s_str(cJSON_GetArrayItem(items, 1), "q"), "大型家具の回収");
    cr_assert_eq(s_num(cJSON_GetArrayItem(items, 1), "users"), 1);
    s_free(&resp);
    s_check(s_request(&s_super, "GET", "/api/v1/faqs/999999/clicks", NULL), 404, "not_found",
            "list of no FAQ");

    /* the effect: two users' words now find the FAQ, first, for words close
     * to them (faq_index_add_click, the lead's ranking) */
    cr_assert_eq(s_first_number(&s_op, later), 104,
                 "after two users' clicks, %s does not find 104 first (faq_index_add_click)",
                 later);
    /* ... and the second copy finds it too, within its index check, without
     * a rebuild (no revision moved) */
    cr_assert(s_copy_waits_for(client, later, 104, true, 5000),
              "the second copy did not learn the clicks");

    /* removal: refused input, then the words forgotten by every copy */
    s_check(s_unclick(&s_super, bulky, ""), 422, "invalid_field", "delete without q");
    s_check(s_unclick(&s_super, 999999, words), 404, "not_found", "delete on no FAQ");
    resp = s_expect(s_unclick(&s_admin, bulky, words), 200, NULL, "delete");
    cr_assert_eq(s_num(resp.json, "removed"), 2, "%s", resp.body);
    s_free(&resp);
    resp = s_expect(s_unclick(&s_admin, bulky, words), 200, NULL, "delete again");
    cr_assert_eq(s_num(resp.json, "removed"), 0, "%s", resp.body);
    s_free(&resp);
    cr_assert_eq(s_owner_long("SELECT count(*) FROM directory.audit_log WHERE action = "
                              "'faq_clicks.delete' AND outcome = 'ok'"),
                 2, "every removal is audited");
    cr_assert_eq(s_owner_long("SELECT count(*) FROM directory.audit_log WHERE action = "
                              "'faq_clicks.delete' AND outcome = 'denied'"),
                 1, "the operator's attempt is audited");
    cr_assert_eq(s_total(&s_super, path), 1);
    cr_assert(!s_finds(&s_op, later, 104), "the removed words still find 104");
    cr_assert(s_copy_waits_for(client, later, 104, false, 10000),
              "the second copy did not forget the removed words");

    /* clicks older than NCC_FAQ_CLICK_DAYS (365) do not count */
    cr_assert_eq(s_owner_long("WITH u AS (UPDATE faq.clicks SET at = now() - interval '400 days' "
                              "WHERE q = '大型家具の回収' RETURNING 1) SELECT count(*) FROM u"),
                 1);
    cr_assert_eq(s_total(&s_super, path), 0, "an old click is still listed");

    /* an FAQ deleted takes its clicks with it */
    long version = s_owner_long("SELECT version FROM faq.faqs WHERE number = 101");
    char del[96];
    snprintf(del, sizeof del, "/api/v1/faqs/%ld?version=%ld", residents, version);
    s_check(s_request(&s_super, "DELETE", del, NULL), 200, NULL, "delete FAQ 101");
    cr_assert_eq(s_owner_long("SELECT count(*) FROM faq.clicks WHERE q = '転居の証明'"), 0);
    ncc_rpc_client_destroy(&s_copy_client);
    s_stop_all();
}

/* ---- department reviewers (所管課の確認者; docs/faq.md "States") ----------------------------- */

/* Creates a department as the administrator; its id. */
static long s_department(const char *code, const char *name)
{
    char body[256];
    snprintf(body, sizeof body, "{\"code\":\"%s\",\"name\":\"%s\"}", code, name);
    resp_t resp =
        s_expect(s_request(&s_admin, "POST", "/api/v1/departments", body), 201, NULL, "department");
    long id = s_num(resp.json, "id");
    s_free(&resp);
    return id;
}

/* Waits until ncc-faq's copy of the masters holds department `code` (it
 * holds departments: an unknown code is refused; and this one is known). */
static void s_wait_department(const char *code)
{
    char path[128];
    snprintf(path, sizeof path, "/api/v1/faqs?department_code=%s", code);
    for (int i = 0; i < 200; i++) {
        resp_t unknown = s_request(&s_super, "GET", "/api/v1/faqs?department_code=NO-SUCH", NULL);
        resp_t known = s_request(&s_super, "GET", path, NULL);
        bool ready = unknown.status == 422 && known.status == 200;
        s_free(&unknown);
        s_free(&known);
        if (ready)
            return;
        usleep(50 * 1000);
    }
    cr_assert(false, "ncc-faq never learnt the department %s", code);
}

/* An FAQ of department `code` sent for approval by the supervisor; its id. */
static long s_faq_in_review(const char *question, const char *code, long department_id)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"question\":\"%s\",\"answer\":\"所管課の窓口へ。\",\"department_code\":\"%s\","
             "\"status\":\"review\"}",
             question, code);
    resp_t resp = s_expect(s_request(&s_super, "POST", "/api/v1/faqs", body), 201, NULL, question);
    cr_assert_str_eq(s_str(resp.json, "status"), "review");
    cr_assert_eq(s_num(resp.json, "department_id"), department_id, "%s", resp.body);
    long id = s_num(resp.json, "id");
    s_free(&resp);
    return id;
}

/* POST /api/v1/faqs/{id}/approve {"version": version} as `session`. */
static resp_t s_approve(const session_t *session, long id, long version)
{
    char path[96], body[48];
    snprintf(path, sizeof path, "/api/v1/faqs/%ld/approve", id);
    snprintf(body, sizeof body, "{\"version\":%ld}", version);
    return s_request(session, "POST", path, body);
}

static resp_t s_put_reviewers(const session_t *session, const char *department, const char *body)
{
    char path[96];
    snprintf(path, sizeof path, "/api/v1/faq-reviewers/%s", department);
    return s_request(session, "PUT", path, body);
}

/* True when `session`'s approval queue (GET /api/v1/faqs?status=review)
 * holds FAQ `id`; *ret_total its total. */
static bool s_queue_holds(const session_t *session, long id, long *ret_total)
{
    resp_t resp =
        s_expect(s_request(session, "GET", "/api/v1/faqs?status=review", NULL), 200, NULL, "queue");
    bool found = false;
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(resp.json, "items"))
    {
        cr_assert_str_eq(s_str(item, "status"), "review", "%s", resp.body);
        found |= s_num(item, "id") == id;
    }
    *ret_total = s_num(resp.json, "total");
    s_free(&resp);
    return found;
}

Test(faq, department_reviewers_approve_their_departments_faqs)
{
    s_people();
    session_t reviewer, staff;
    s_user(&reviewer, "kakunin1", "staff");
    s_user(&staff, "staff2", "staff");
    long welfare = s_department("D10", "福祉課");
    long env = s_department("D11", "環境課");
    s_wait_department("D11");
    char welfare_id[24], path[128];
    snprintf(welfare_id, sizeof welfare_id, "%ld", welfare);

    /* a department without reviewers: supervisors and administrators
     * approve as before; staff may not */
    long plain = s_faq_in_review("資源ごみの日", "D11", env);
    resp_t resp = s_expect(s_approve(&reviewer, plain, 1), 403, "forbidden", "staff, no reviewers");
    cr_assert(strstr(resp.body, "環境課") && strstr(resp.body, "no reviewers"), "%s", resp.body);
    s_free(&resp);
    resp = s_expect(s_approve(&s_super, plain, 1), 200, NULL, "supervisor approves");
    cr_assert_str_eq(s_str(resp.json, "approved_by"), "super1");
    cr_assert_str_eq(s_str(resp.json, "status"), "published");
    s_free(&resp);

    /* only administrators set reviewers; bad input is refused and changes nothing */
    const char *set = "{\"users\":[\"kakunin1\"]}";
    s_check(s_put_reviewers(&s_super, welfare_id, set), 403, "forbidden", "supervisor PUT");
    s_check(s_put_reviewers(&reviewer, welfare_id, set), 403, "forbidden", "staff PUT");
    snprintf(path, sizeof path, "/api/v1/faq-reviewers/%s", welfare_id);
    s_check(s_request(&s_super, "DELETE", path, NULL), 403, "forbidden", "supervisor DELETE");
    s_check(s_put_reviewers(&s_admin, "999999", set), 422, "invalid_field", "unknown department");
    s_check(s_put_reviewers(&s_admin, "0", set), 422, "invalid_field", "department 0");
    s_check(s_put_reviewers(&s_admin, "abc", set), 400, NULL, "department not a number");
    resp = s_expect(s_put_reviewers(&s_admin, welfare_id, "{\"users\":[\"kakunin1\",\"nobody\"]}"),
                    422, "invalid_field", "unknown login");
    cr_assert_str_eq(s_str(cJSON_GetObjectItemCaseSensitive(resp.json, "error"), "field"),
                     "users[1]");
    s_free(&resp);
    s_check(s_put_reviewers(&s_admin, welfare_id, "{}"), 422, "invalid_field", "empty body");
    s_check(s_put_reviewers(&s_admin, welfare_id, "{\"users\":[]}"), 422, "invalid_field",
            "no users");
    s_check(s_put_reviewers(&s_admin, welfare_id, "{\"users\":[\"op1\"]}"), 422, "invalid_field",
            "an operator cannot approve");
    s_check(s_put_reviewers(&s_admin, welfare_id, "{\"users\":[\"kakunin1\",\"KAKUNIN1\"]}"), 422,
            "invalid_field", "a login twice");
    s_check(s_put_reviewers(&s_admin, welfare_id, "{\"users\":[\"a b\"]}"), 422, "invalid_field",
            "not a login");
    s_check(s_put_reviewers(&s_admin, welfare_id, "{\"users\":[1]}"), 400, NULL, "not a string");
    cr_assert_eq(s_owner_long("SELECT count(*) FROM faq.reviewers"), 0, "a refused PUT wrote");

    /* the administrator names a staff user (any case of the login) */
    resp = s_expect(s_put_reviewers(&s_admin, welfare_id, "{\"users\":[\"KAKUNIN1\"]}"), 200, NULL,
                    "set reviewers");
    cr_assert_eq(s_num(resp.json, "department_id"), welfare);
    const cJSON *users = cJSON_GetObjectItemCaseSensitive(resp.json, "users");
    cr_assert_eq(cJSON_GetArraySize(users), 1, "%s", resp.body);
    cr_assert_str_eq(s_str(cJSON_GetArrayItem(users, 0), "login"), "kakunin1");
    cr_assert_eq(s_num(cJSON_GetArrayItem(users, 0), "user_id"), reviewer.user_id);
    cr_assert_str_eq(s_str(cJSON_GetArrayItem(users, 0), "added_by"), "admin");
    cr_assert_not_null(s_str(cJSON_GetArrayItem(users, 0), "added_at"));
    s_free(&resp);
    cr_assert_eq(s_owner_long("SELECT count(*) FROM directory.audit_log WHERE action = "
                              "'faq_reviewers.update' AND outcome = 'ok'"),
                 1, "the change is audited");
    cr_assert_geq(s_owner_long("SELECT count(*) FROM directory.audit_log WHERE action = "
                               "'faq_reviewers.update' AND outcome = 'denied'"),
                  2, "the refused attempts are audited");
    /* staff and supervisors read the lists; operators do not */
    resp = s_expect(s_request(&staff, "GET", "/api/v1/faq-reviewers", NULL), 200, NULL, "list");
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(resp.json, "items");
    cr_assert_eq(cJSON_GetArraySize(items), 1, "%s", resp.body);
    cr_assert_eq(s_num(cJSON_GetArrayItem(items, 0), "department_id"), welfare);
    s_free(&resp);
    snprintf(path, sizeof path, "/api/v1/faq-reviewers?department_id=%ld", env);
    resp = s_expect(s_request(&s_super, "GET", path, NULL), 200, NULL, "one department");
    items = cJSON_GetObjectItemCaseSensitive(resp.json, "items");
    cr_assert_eq(cJSON_GetArraySize(items), 1, "%s", resp.body);
    cr_assert_eq(
        cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(items, 0), "users")),
        0, "%s", resp.body);
    s_free(&resp);
    s_check(s_request(&s_op, "GET", "/api/v1/faq-reviewers", NULL), 403, "forbidden",
            "operator reads reviewers");

    /* an FAQ of that department in review: the reviewer sees it in their
     * queue and reads it; other staff and operators do not */
    long id = s_faq_in_review("介護保険の申請", "D10", welfare);
    snprintf(path, sizeof path, "/api/v1/faqs/%ld", id);
    long total = 0;
    cr_assert(s_queue_holds(&reviewer, id, &total), "not in the reviewer's queue");
    cr_assert_eq(total, 1, "the reviewer's queue holds other departments' FAQs");
    cr_assert(!s_queue_holds(&staff, id, &total), "in another staff user's queue");
    cr_assert_eq(total, 0);
    s_check(s_request(&reviewer, "GET", path, NULL), 200, NULL, "the reviewer reads it");
    s_check(s_request(&staff, "GET", path, NULL), 404, "not_found", "other staff read it");
    s_check(s_request(&s_op, "GET", path, NULL), 404, "not_found", "an operator reads it");
    resp = s_expect(s_request(&reviewer, "GET", "/api/v1/faqs", NULL), 200, NULL, "plain list");
    cr_assert_eq(s_num(resp.json, "total"), 1, "staff list drafts: %s", resp.body); /* plain */
    s_free(&resp);

    /* a supervisor, an administrator and other staff are refused: it stays in review */
    resp = s_expect(s_approve(&s_super, id, 1), 403, "forbidden", "supervisor, not a reviewer");
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(resp.json, "error");
    cr_assert_str_eq(s_str(error, "field"), "department_id");
    cr_assert(strstr(s_str(error, "message"), "福祉課") &&
                  strstr(s_str(error, "message"), "kakunin1"),
              "the refusal names the department and its reviewers: %s", resp.body);
    s_free(&resp);
    s_check(s_approve(&s_admin, id, 1), 403, "forbidden", "administrator, not a reviewer");
    s_check(s_approve(&staff, id, 1), 403, "forbidden", "staff, not a reviewer");
    s_check(s_approve(&s_op, id, 1), 403, "forbidden", "operator");
    resp = s_expect(s_request(&s_super, "GET", path, NULL), 200, NULL, "still in review");
    cr_assert_str_eq(s_str(resp.json, "status"), "review");
    cr_assert_eq(s_num(resp.json, "version"), 1);
    cr_assert_null(s_str(resp.json, "approved_by"));
    s_free(&resp);

    /* the reviewer approves it */
    resp = s_expect(s_approve(&reviewer, id, 1), 200, NULL, "the reviewer approves");
    cr_assert_str_eq(s_str(resp.json, "status"), "published");
    cr_assert_str_eq(s_str(resp.json, "approved_by"), "kakunin1");
    s_free(&resp);
    cr_assert_eq(s_owner_long("SELECT count(*) FROM faq.faq_versions WHERE op = 'approved' AND "
                              "actor_login = 'kakunin1'"),
                 1, "the approval's version names the reviewer");
    cr_assert(!s_queue_holds(&reviewer, id, &total), "a published FAQ in the queue");
    s_check(s_request(&s_op, "GET", path, NULL), 200, NULL, "published: the operators'");

    /* without reviewers again, supervisors approve the department's FAQs and staff may not */
    snprintf(path, sizeof path, "/api/v1/faq-reviewers/%s", welfare_id);
    resp = s_expect(s_request(&s_admin, "DELETE", path, NULL), 200, NULL, "remove reviewers");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(resp.json, "users")), 0);
    s_free(&resp);
    cr_assert_eq(s_owner_long("SELECT count(*) FROM faq.reviewers"), 0);
    long next = s_faq_in_review("障害者手帳の更新", "D10", welfare);
    s_check(s_approve(&reviewer, next, 1), 403, "forbidden", "a former reviewer");
    s_check(s_approve(&s_super, next, 1), 200, NULL, "supervisor, no reviewers again");
    s_stop_all();
}
