/* ncc-summary end to end (issue 7; R22, R30, R37; docs/summary.md): real
 * ncc-directory, ncc-calls, ncc-summary and ncc-gateway on a database of the
 * test's own. Text posted to /api/v1/summaries is masked before it is
 * summarised; a call's transcript, sent as the PBX sends it, gives the
 * operator running summaries and emotion scores, supervisors an alert on
 * rising anger, and at hang-up a final summary that is stored and published
 * for ncc-history. An LLM that hangs still leaves the operator a summary. */
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <civetweb.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ncc/log.h"
#include "ncc_system.h"

#define OPERATOR_PASSWORD   "Operator-Pass-0001"
#define SUPERVISOR_PASSWORD "Supervisor-Pass-0001"

static ncct_system_t s_sys;
static ncct_session_t s_admin;

static void s_start(const char *const *summary_env)
{
    ncct_system_start(&s_sys, "directory", NULL);
    ncct_system_start(&s_sys, "calls", NULL);
    ncct_system_start(&s_sys, "summary", summary_env);
    ncct_system_start_gateway(&s_sys, (const char *[]){"NCC_PUSH_KEEPALIVE_MS=500", NULL});
    ncct_login_admin(&s_sys, &s_admin);
}

static void setup(void)
{
    ncc_log_init("test_summary", NCC_LOG_ERROR);
    ncct_system_init(&s_sys, "test_summary");
}

static void teardown(void)
{
    ncct_system_teardown(&s_sys);
}

TestSuite(summary, .init = setup, .fini = teardown, .timeout = 180);

/* ---- a browser's push stream (tests/support/ncc_system.h) ---------------------------------- */

typedef ncct_stream_t stream_t;
#define s_stream_open(s, session) ncct_stream_open(&s_sys, (s), (session))
#define s_stream_wait             ncct_stream_wait
#define s_stream_events           ncct_stream_events
#define s_stream_close            ncct_stream_close

/* ---- the PBX -------------------------------------------------------------------------------- */

static void s_event(const char *event_id, const char *type, const char *call_id,
                    const char *occurred_at, const char *extra)
{
    char body[1024];
    snprintf(body, sizeof body,
             "{\"event_id\":\"%s\",\"type\":\"%s\",\"call_id\":\"%s\",\"occurred_at\":\"%s\","
             "\"from\":\"090-1234-5678\",\"to\":\"03-3228-1111\"%s%s}",
             event_id, type, call_id, occurred_at, extra ? "," : "", extra ? extra : "");
    ncct_resp_t resp =
        ncct_signed_post(&s_sys, "/api/v1/pbx/events", body, NCCT_PBX_SECRET, (int64_t)time(NULL));
    ncct_expect(&resp, 200, NULL, body);
    ncct_resp_free(&resp);
}

static void s_transcript(const char *call_id, const char *segments_json)
{
    char path[128], body[8192];
    snprintf(path, sizeof path, "/api/v1/calls/%s/transcript", call_id);
    snprintf(body, sizeof body, "{\"segments\":%s}", segments_json);
    ncct_resp_t resp = ncct_signed_post(&s_sys, path, body, NCCT_PBX_SECRET, (int64_t)time(NULL));
    ncct_expect(&resp, 200, NULL, body);
    ncct_resp_free(&resp);
}

static long s_count(const char *sql)
{
    return ncct_owner_long(&s_sys, sql);
}

/* Invented people only. */
static const char *const s_originals[] = {"山田花子", "090-8765-4321", "中野区中野四丁目8番1号",
                                          "昭和50年1月1日"};

static void s_no_originals(const char *text, const char *what)
{
    for (size_t i = 0; i < sizeof s_originals / sizeof s_originals[0]; i++)
        cr_assert_null(strstr(text, s_originals[i]), "%s holds %s: %s", what, s_originals[i], text);
}

/* ---- tests ------------------------------------------------------------------------------------
 */

Test(summary, posted_text_is_masked_then_summarised_and_bad_text_is_refused)
{
    s_start((const char *[]){"NCC_SUMMARY_TEXT_MAX_CHARS=2000", NULL});
    ncct_create_user(&s_sys, &s_admin, "op1", "[\"operator\"]", "2001", OPERATOR_PASSWORD);
    ncct_session_t op1;
    ncct_login(&s_sys, &op1, "op1", OPERATOR_PASSWORD, NULL);
    const char *body =
        "{\"text\":\"山田花子です。生年月日は昭和50年1月1日、住所は中野区中野四丁目8番1号、"
        "電話は090-8765-4321です。住民票の写しを取りたいんですが、どうすればいいですか。"
        "マイナンバーカードがあればコンビニで取得できます。わかりました、ありがとうございます。\"}";
    ncct_resp_t r = ncct_request(&s_sys, &op1, "POST", "/api/v1/summaries", body, NULL);
    ncct_expect(&r, 200, NULL, "summarise");
    const char *masked = ncct_str(r.json, "masked_text");
    const char *summary = ncct_str(r.json, "summary");
    cr_assert(masked && summary, "%s", r.body);
    s_no_originals(r.body, "the answer");
    cr_assert(
        strstr(masked, "[氏名]です。生年月日は[生年月日]、住所は[住所]、電話は[電話番号]です"),
        "%s", masked);
    cr_assert(strstr(summary, "用件: 住民票の写し"), "%s", summary);
    cr_assert_str_eq(ncct_str(r.json, "summarizer"), "extractive");
    cJSON *entities = cJSON_GetObjectItemCaseSensitive(r.json, "entities");
    cr_assert_eq(cJSON_GetArraySize(entities), 4, "%s", r.body);
    cJSON *first = cJSON_GetArrayItem(entities, 0);
    cr_assert_str_eq(ncct_str(first, "type"), "name");
    cr_assert_eq(cJSON_GetObjectItemCaseSensitive(first, "start")->valueint, 0);
    cr_assert_eq(cJSON_GetObjectItemCaseSensitive(first, "end")->valueint, 4);
    cJSON *sentiment = cJSON_GetObjectItemCaseSensitive(r.json, "sentiment");
    cr_assert_str_eq(ncct_str(sentiment, "label"), "satisfaction", "%s", r.body);
    ncct_resp_free(&r);

    /* bad input: a clear error each, and the daemon goes on */
    r = ncct_request(&s_sys, &op1, "POST", "/api/v1/summaries", "{\"text\":\"  \"}", NULL);
    ncct_expect(&r, 422, "invalid_field", "blank");
    ncct_resp_free(&r);
    r = ncct_request(&s_sys, &op1, "POST", "/api/v1/summaries", "{}", NULL);
    ncct_expect(&r, 422, "invalid_field", "no text");
    ncct_resp_free(&r);
    char *big = malloc(2001 * 3 + 32);
    strcpy(big, "{\"text\":\"");
    for (int i = 0; i < 2001; i++)
        strcat(big, "あ");
    strcat(big, "\"}");
    r = ncct_request(&s_sys, &op1, "POST", "/api/v1/summaries", big, NULL);
    ncct_expect(&r, 413, "too_large", "2001 characters");
    ncct_resp_free(&r);
    free(big);
    const char bad_utf8[] = "{\"text\":\"\xe3\x81\xff\xfe\"}";
    r = ncct_request_raw(&s_sys, &op1, "POST", "/api/v1/summaries", bad_utf8, sizeof bad_utf8 - 1,
                         "application/json", NULL);
    cr_assert(r.status == 400 || r.status == 422, "invalid UTF-8: %ld %s", r.status, r.body);
    ncct_resp_free(&r);
    r = ncct_request(&s_sys, NULL, "POST", "/api/v1/summaries", body, NULL);
    ncct_expect(&r, 401, NULL, "no session");
    ncct_resp_free(&r);
    r = ncct_request(&s_sys, &op1, "POST", "/api/v1/summaries", "{\"text\":\"こんにちは\"}", NULL);
    ncct_expect(&r, 200, NULL, "still answering");
    ncct_resp_free(&r);
    ncct_system_stop_all(&s_sys);
}

Test(summary, a_call_gets_running_summaries_emotion_alerts_and_a_final_summary)
{
    s_start((const char *[]){"NCC_SUMMARY_DEBOUNCE_MS=300", "NCC_SUMMARY_FAQ_TIMEOUT_MS=100",
                             "NCC_SUMMARY_ANGER_ALERT=50", NULL});
    int64_t op1_id =
        ncct_create_user(&s_sys, &s_admin, "op1", "[\"operator\"]", "2001", OPERATOR_PASSWORD);
    ncct_create_user(&s_sys, &s_admin, "op2", "[\"operator\"]", "2002", OPERATOR_PASSWORD);
    ncct_create_user(&s_sys, &s_admin, "sup1", "[\"supervisor\"]", "3001", SUPERVISOR_PASSWORD);
    ncct_session_t op1, op2, sup1;
    ncct_login(&s_sys, &op1, "op1", OPERATOR_PASSWORD, NULL);
    ncct_login(&s_sys, &op2, "op2", OPERATOR_PASSWORD, NULL);
    ncct_login(&s_sys, &sup1, "sup1", SUPERVISOR_PASSWORD, NULL);
    stream_t operator, supervisor;
    s_stream_open(&operator, & op1);
    s_stream_open(&supervisor, &sup1);
    cr_assert(s_stream_wait(&operator, ": connected", 5000));
    cr_assert(s_stream_wait(&supervisor, ": connected", 5000));

    s_event("s1", "ringing", "C-S1", "2027-04-05T10:00:00+09:00", NULL);
    s_event("s2", "answered", "C-S1", "2027-04-05T10:00:05+09:00", "\"agent_extension\":\"2001\"");
    s_transcript("C-S1",
                 "[{\"seq\":0,\"speaker\":\"operator\",\"start_ms\":0,\"end_ms\":2000,\"text\":"
                 "\"お電話ありがとうございます。中野区役所です。\"},"
                 "{\"seq\":1,\"speaker\":\"caller\",\"start_ms\":2100,\"end_ms\":6000,\"text\":"
                 "\"山田花子と申します。住所は中野区中野四丁目8番1号、電話は090-8765-4321です。\"},"
                 "{\"seq\":2,\"speaker\":\"caller\",\"start_ms\":6100,\"end_ms\":9000,\"text\":"
                 "\"児童手当の申請をしたいんですが、どうすればいいですか。\"}]");
    cr_assert(s_stream_wait(&operator, "event: emotion.updated", 5000), "no emotion.updated");
    cr_assert(s_stream_wait(&operator, "event: summary.updated", 5000), "no running summary");
    char *running = s_stream_events(&operator, "summary.updated");
    cr_assert(strstr(running, "\"final\":false") && strstr(running, "児童手当"), "%s", running);
    s_no_originals(running, "the running summary");
    free(running);

    /* the caller gets angry: supervisors are alerted, once */
    s_transcript("C-S1",
                 "[{\"seq\":3,\"speaker\":\"operator\",\"start_ms\":9100,\"end_ms\":12000,\"text\":"
                 "\"子ども家庭支援課の窓口で申請書を出してください。\"},"
                 "{\"seq\":4,\"speaker\":\"caller\",\"start_ms\":12100,\"end_ms\":15000,\"text\":"
                 "\"何度も電話しているのに、本当にいい加減にしてください！話にならない！\"}]");
    s_transcript("C-S1", "[{\"seq\":5,\"speaker\":\"caller\",\"start_ms\":15100,\"end_ms\":16000,"
                         "\"text\":\"もういい、責任者を出して！\"}]");
    /* one angry segment moves the call's score part of the way; the second crosses */
    cr_assert(s_stream_wait(&supervisor, "event: emotion.alert", 5000), "no alert");
    char *alerts = s_stream_events(&supervisor, "emotion.alert");
    cr_assert(strstr(alerts, "\"call_id\":\"C-S1\""), "%s", alerts);
    cr_assert_null(strstr(strstr(alerts, "C-S1") + 1, "C-S1"), "one alert: %s", alerts);
    free(alerts);

    /* hang-up: the final summary, stored and published, within a second */
    long long ended = ncct_now_ms();
    s_event("s3", "ended", "C-S1", "2027-04-05T10:05:00+09:00", NULL);
    cr_assert(s_stream_wait(&operator, "\"final\":true", 5000), "no final summary");
    long long took = ncct_now_ms() - ended;
    cr_log_info("end of call -> final summary pushed: %lld ms", took);
    printf("end of call -> final summary pushed: %lld ms\n", took);
    cr_expect_lt(took, 1000, "final summary after %lld ms", took);
    cr_assert_eq(s_count("SELECT count(*) FROM summary.outbox WHERE type = "
                         "'ncc.summary.CallSummary'"),
                 1);
    cr_assert_eq(s_count("SELECT count(*) FROM summary.calls WHERE call_id = 'C-S1' AND final AND "
                         "alerted AND segments = 6 AND entities >= 3"),
                 1);
    /* only masked text is stored, and it is encrypted */
    cr_assert_eq(s_count("SELECT count(*) FROM summary.segments WHERE masked LIKE 'v1:%'"), 6);
    cr_assert_eq(s_count("SELECT count(*) FROM summary.calls WHERE summary LIKE '%山田%' OR "
                         "summary LIKE '%8765%'"),
                 0);

    ncct_resp_t r = ncct_request(&s_sys, &op1, "GET", "/api/v1/calls/C-S1/summary", NULL, NULL);
    ncct_expect(&r, 200, NULL, "the operator's summary");
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r.json, "final")), "%s", r.body);
    cr_assert(strstr(ncct_str(r.json, "summary"), "用件: "), "%s", r.body);
    cr_assert_eq((int64_t)cJSON_GetObjectItemCaseSensitive(r.json, "operator_id")->valuedouble,
                 op1_id);
    cJSON *sentiment = cJSON_GetObjectItemCaseSensitive(r.json, "sentiment");
    cr_assert_str_eq(ncct_str(sentiment, "label"), "anger", "%s", r.body);
    s_no_originals(r.body, "GET summary");
    ncct_resp_free(&r);
    r = ncct_request(&s_sys, &op2, "GET", "/api/v1/calls/C-S1/summary", NULL, NULL);
    ncct_expect(&r, 404, "not_found", "another operator's call");
    ncct_resp_free(&r);
    r = ncct_request(&s_sys, &sup1, "GET", "/api/v1/calls/C-S1/summary", NULL, NULL);
    ncct_expect(&r, 200, NULL, "a supervisor");
    ncct_resp_free(&r);
    r = ncct_request(&s_sys, &sup1, "GET", "/api/v1/calls/NO-SUCH/summary", NULL, NULL);
    ncct_expect(&r, 404, "not_found", "unknown call");
    ncct_resp_free(&r);

    char *finals = s_stream_events(&operator, "summary.updated");
    s_no_originals(finals, "the summaries pushed");
    free(finals);
    s_stream_close(&operator);
    s_stream_close(&supervisor);
    ncct_system_stop_all(&s_sys);
}

/* ---- an LLM that hangs ------------------------------------------------------------------------
 */

static atomic_int s_llm_requests;
static atomic_int
    s_llm_leaks; /* requests that held personal data (asserted on the test's thread) */

static int s_hanging_llm(struct mg_connection *conn, void *arg)
{
    (void)arg;
    char *body = calloc(1, 65536); /* civetweb's threads have small stacks */
    int len = body ? mg_read(conn, body, 65535) : -1;
    if (!body)
        return 500;
    body[len > 0 ? len : 0] = '\0';
    atomic_fetch_add(&s_llm_requests, 1);
    /* it must never see personal data */
    if (strstr(body, "山田花子") || strstr(body, "8765-4321"))
        atomic_fetch_add(&s_llm_leaks, 1);
    free(body);
    usleep(2500 * 1000);
    mg_printf(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
    return 200;
}

Test(summary, an_llm_that_hangs_still_leaves_a_summary)
{
    int port = ncct_free_port();
    char ports[32], url[96];
    snprintf(ports, sizeof ports, "127.0.0.1:%d", port);
    snprintf(url, sizeof url, "NCC_SUMMARY_OPENAI_BASE_URL=http://127.0.0.1:%d/v1", port);
    const char *options[] = {"listening_ports", ports, "num_threads", "4", NULL};
    struct mg_callbacks callbacks = {0};
    struct mg_context *llm = mg_start(&callbacks, NULL, options);
    cr_assert_not_null(llm);
    mg_set_request_handler(llm, "/v1/chat/completions", s_hanging_llm, NULL);
    s_start((const char *[]){"NCC_SUMMARY_SUMMARIZER=openai", url, "NCC_SUMMARY_OPENAI_MODEL=test",
                             "NCC_SUMMARY_OPENAI_API_KEY=sk-not-a-real-key",
                             "NCC_SUMMARY_OPENAI_TIMEOUT_MS=700", NULL});
    ncct_create_user(&s_sys, &s_admin, "op1", "[\"operator\"]", "2001", OPERATOR_PASSWORD);
    ncct_session_t op1;
    ncct_login(&s_sys, &op1, "op1", OPERATOR_PASSWORD, NULL);
    long long start = ncct_now_ms();
    ncct_resp_t r = ncct_request(&s_sys, &op1, "POST", "/api/v1/summaries",
                                 "{\"text\":\"山田花子です。電話は090-8765-4321です。住民票の写しを"
                                 "取りたいのですが。\"}",
                                 NULL);
    long long took = ncct_now_ms() - start;
    ncct_expect(&r, 200, NULL, "summary with a hanging LLM");
    cr_assert_str_eq(ncct_str(r.json, "summarizer"), "extractive", "%s", r.body);
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r.json, "fallback")), "%s", r.body);
    cr_assert(strstr(ncct_str(r.json, "summary"), "住民票"), "%s", r.body);
    cr_assert_lt(took, 2000, "bounded by the time-out: %lld ms", took);
    cr_assert_eq(atomic_load(&s_llm_requests), 1);
    cr_assert_eq(atomic_load(&s_llm_leaks), 0, "the LLM was sent personal data");
    ncct_resp_free(&r);
    /* the fallback is logged, the key never */
    char *log = ncct_read_file(ncct_service(&s_sys, "summary")->log);
    cr_assert_not_null(log);
    cr_assert_null(strstr(log, "sk-not-a-real-key"));
    cr_assert(strstr(log, "summary.fallback"), "the fallback is logged");
    free(log);
    ncct_system_stop_all(&s_sys);
    mg_stop(llm);
}

/* ---- FAQ suggestions (R36) --------------------------------------------------------------------
 */

Test(summary, the_operator_gets_faq_suggestions_from_the_masked_conversation)
{
    ncct_system_start(&s_sys, "directory", NULL);
    ncct_system_start(&s_sys, "calls", NULL);
    ncct_system_start(&s_sys, "faq", NULL);
    ncct_system_start(&s_sys, "summary", (const char *[]){"NCC_SUMMARY_DEBOUNCE_MS=200", NULL});
    ncct_system_start_gateway(&s_sys, (const char *[]){"NCC_PUSH_KEEPALIVE_MS=500", NULL});
    ncct_login_admin(&s_sys, &s_admin);
    ncct_resp_t r = ncct_request(&s_sys, &s_admin, "POST", "/api/v1/faqs",
                                 "{\"question\":\"児童手当の申請方法を知りたい\",\"answer\":"
                                 "\"子ども家庭支援課の窓口か電子申請で申請できます。\","
                                 "\"keywords\":\"児童手当 申請\"}",
                                 NULL);
    ncct_expect(&r, 201, NULL, "create an FAQ");
    int id = cJSON_GetObjectItemCaseSensitive(r.json, "id")->valueint;
    int number = cJSON_GetObjectItemCaseSensitive(r.json, "number")->valueint;
    ncct_resp_free(&r);
    char path[96];
    snprintf(path, sizeof path, "/api/v1/faqs/%d/approve", id);
    r = ncct_request(&s_sys, &s_admin, "POST", path, "{\"version\":1}", NULL);
    ncct_expect(&r, 200, NULL, "approve it");
    ncct_resp_free(&r);
    ncct_create_user(&s_sys, &s_admin, "op1", "[\"operator\"]", "2001", OPERATOR_PASSWORD);
    ncct_session_t op1;
    ncct_login(&s_sys, &op1, "op1", OPERATOR_PASSWORD, NULL);
    stream_t operator;
    s_stream_open(&operator, & op1);
    cr_assert(s_stream_wait(&operator, ": connected", 5000));
    s_event("f1", "ringing", "C-F1", "2027-04-05T10:00:00+09:00", NULL);
    s_event("f2", "answered", "C-F1", "2027-04-05T10:00:05+09:00", "\"agent_extension\":\"2001\"");
    s_transcript("C-F1",
                 "[{\"seq\":0,\"speaker\":\"caller\",\"start_ms\":0,\"end_ms\":4000,\"text\":"
                 "\"山田花子です。児童手当の申請をしたいんですが、どうすればいいですか。\"}]");
    cr_assert(s_stream_wait(&operator, "event: faq.suggested", 8000), "no faq.suggested");
    char *faqs = s_stream_events(&operator, "faq.suggested");
    char want[64];
    snprintf(want, sizeof want, "\"number\":%d", number);
    cr_assert(strstr(faqs, want) && strstr(faqs, "児童手当の申請方法"), "%s", faqs);
    free(faqs);
    r = ncct_request(&s_sys, &op1, "GET", "/api/v1/calls/C-F1/summary", NULL, NULL);
    ncct_expect(&r, 200, NULL, "the running summary with its FAQs");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r.json, "faqs")), 1, "%s",
                 r.body);
    ncct_resp_free(&r);
    s_stream_close(&operator);
    ncct_system_stop_all(&s_sys);
}

/* ---- answer drafts for residents (R49) ---------------------------------------------------------
 */

/* An FAQ made by the administrator, approved (published) when `publish`; its number. */
static int s_faq(const char *question, const char *answer, const char *keywords,
                 const char *visibility, bool publish)
{
    char body[2048];
    snprintf(body, sizeof body,
             "{\"question\":\"%s\",\"answer\":\"%s\",\"keywords\":\"%s\",\"visibility\":\"%s\"}",
             question, answer, keywords, visibility);
    ncct_resp_t r = ncct_request(&s_sys, &s_admin, "POST", "/api/v1/faqs", body, NULL);
    ncct_expect(&r, 201, NULL, body);
    int id = cJSON_GetObjectItemCaseSensitive(r.json, "id")->valueint;
    int number = cJSON_GetObjectItemCaseSensitive(r.json, "number")->valueint;
    ncct_resp_free(&r);
    if (publish) {
        char path[96];
        snprintf(path, sizeof path, "/api/v1/faqs/%d/approve", id);
        r = ncct_request(&s_sys, &s_admin, "POST", path, "{\"version\":1}", NULL);
        ncct_expect(&r, 200, NULL, "approve");
        ncct_resp_free(&r);
    }
    return number;
}

typedef struct {
    int public_faq;   /* 住民票: public, published */
    int child_faq;    /* 児童手当: public, published */
    int internal_faq; /* 印鑑登録: internal, published */
    int draft_faq;    /* 犬の登録: public, not yet approved */
} s_faqs_t;

static s_faqs_t s_draft_setup(const char *const *summary_env, ncct_session_t *op1)
{
    ncct_system_start(&s_sys, "directory", NULL);
    ncct_system_start(&s_sys, "faq", NULL);
    ncct_system_start(&s_sys, "summary", summary_env);
    ncct_system_start_gateway(&s_sys, NULL);
    ncct_login_admin(&s_sys, &s_admin);
    s_faqs_t f;
    f.public_faq = s_faq("住民票の写しを取りたい",
                         "住民票の写しは、区民課の窓口か、マイナンバーカードがあればコンビニで取得"
                         "できます。手数料は1通300円です。\\n窓口では本人確認書類をお持ちください"
                         "。郵送での請求もできます。",
                         "住民票 写し コンビニ交付", "public", true);
    f.child_faq =
        s_faq("児童手当の申請方法を知りたい", "子ども家庭支援課の窓口か電子申請で申請できます。",
              "児童手当 申請", "public", true);
    f.internal_faq = s_faq("印鑑登録証をなくした",
                           "内部手順: 廃止届を受け付け、台帳の登録番号を職員が確認する。",
                           "印鑑登録証 紛失", "internal", true);
    f.draft_faq =
        s_faq("犬の登録をしたい", "生活衛生課で登録できます。", "犬 登録 狂犬病", "public", false);
    ncct_create_user(&s_sys, &s_admin, "op1", "[\"operator\"]", "2001", OPERATOR_PASSWORD);
    ncct_login(&s_sys, op1, "op1", OPERATOR_PASSWORD, NULL);
    return f;
}

/* The draft of a question: the whole answer (caller frees with ncct_resp_free). */
static ncct_resp_t s_draft(ncct_session_t *session, const char *question)
{
    char body[2048];
    snprintf(body, sizeof body, "{\"question\":\"%s\"}", question);
    ncct_resp_t r = ncct_request(&s_sys, session, "POST", "/api/v1/answers/draft", body, NULL);
    ncct_expect(&r, 200, NULL, body);
    return r;
}

/* The draft cites exactly the FAQ `number`, in its text and in faq_numbers. */
static void s_cites_only(const ncct_resp_t *r, int number)
{
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(r->json, "refused")), "%s", r->body);
    cJSON *numbers = cJSON_GetObjectItemCaseSensitive(r->json, "faq_numbers");
    cr_assert_eq(cJSON_GetArraySize(numbers), 1, "%s", r->body);
    cr_assert_eq(cJSON_GetArrayItem(numbers, 0)->valueint, number, "%s", r->body);
    const char *draft = ncct_str(r->json, "draft");
    char citation[32];
    snprintf(citation, sizeof citation, "（FAQ %d）", number);
    cr_assert(draft && strstr(draft, citation), "%s", r->body);
    /* no other "FAQ n" in the text */
    for (const char *p = strstr(draft, "FAQ "); p; p = strstr(p + 4, "FAQ "))
        cr_assert_eq(atoi(p + 4), number, "a citation of another FAQ: %s", draft);
    cJSON *faqs = cJSON_GetObjectItemCaseSensitive(r->json, "faqs");
    cr_assert_eq(cJSON_GetArraySize(faqs), 1, "%s", r->body);
    cr_assert_eq(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(faqs, 0), "number")->valueint,
                 number);
}

static void s_refused(const ncct_resp_t *r)
{
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r->json, "refused")), "%s", r->body);
    cr_assert_str_eq(ncct_str(r->json, "draft"), "", "%s", r->body);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r->json, "faq_numbers")), 0,
                 "%s", r->body);
    cr_assert(ncct_str(r->json, "message") && *ncct_str(r->json, "message"), "%s", r->body);
}

static const char s_resident_question[] =
    "山田花子と申します。電話は090-8765-4321です。住民票の写しはどこで取れますか。";

Test(summary, answer_drafts_cite_published_public_faqs_only_and_refuse_otherwise)
{
    ncct_session_t op1;
    s_faqs_t f = s_draft_setup(NULL, &op1);

    ncct_resp_t r = s_draft(&op1, s_resident_question);
    s_cites_only(&r, f.public_faq);
    const char *draft = ncct_str(r.json, "draft");
    cr_assert(strstr(draft, "コンビニで取得できます"), "from the FAQ's sentences: %s", draft);
    cr_assert_null(strstr(draft, "子ども家庭支援課"), "%s", draft);
    cr_assert_str_eq(ncct_str(r.json, "summarizer"), "extractive");
    cr_assert(strstr(ncct_str(r.json, "masked_question"), "[氏名]"), "%s", r.body);
    s_no_originals(r.body, "the draft's answer");
    ncct_resp_free(&r);

    r = s_draft(&op1, "児童手当の申請はどうすればいいですか");
    s_cites_only(&r, f.child_faq);
    ncct_resp_free(&r);

    /* only an internal FAQ answers: refused, and its text never shows */
    r = s_draft(&op1, "印鑑登録証をなくしてしまいました。どうすればいいですか。");
    s_refused(&r);
    cr_assert_str_eq(ncct_str(r.json, "reason"), "no_matching_faq");
    cr_assert_null(strstr(r.body, "内部手順"), "%s", r.body);
    ncct_resp_free(&r);
    /* a public FAQ not yet published is not used either */
    r = s_draft(&op1, "犬の登録はどこでできますか");
    s_refused(&r);
    ncct_resp_free(&r);
    /* nothing about it at all */
    r = s_draft(&op1, "粗大ごみの出し方を教えてください");
    s_refused(&r);
    ncct_resp_free(&r);
    /* a question of personal data only */
    r = s_draft(&op1, "山田花子です。");
    s_refused(&r);
    ncct_resp_free(&r);

    /* bad input: clear errors */
    r = ncct_request(&s_sys, &op1, "POST", "/api/v1/answers/draft", "{\"question\":\" \"}", NULL);
    ncct_expect(&r, 422, "invalid_field", "blank question");
    ncct_resp_free(&r);
    r = ncct_request(&s_sys, &op1, "POST", "/api/v1/answers/draft", "{}", NULL);
    ncct_expect(&r, 422, "invalid_field", "no question");
    ncct_resp_free(&r);
    r = ncct_request(&s_sys, NULL, "POST", "/api/v1/answers/draft",
                     "{\"question\":\"住民票の写し\"}", NULL);
    ncct_expect(&r, 401, NULL, "no session");
    ncct_resp_free(&r);
    /* staff may draft too */
    ncct_create_user(&s_sys, &s_admin, "staff1", "[\"staff\"]", NULL, OPERATOR_PASSWORD);
    ncct_session_t staff1;
    ncct_login(&s_sys, &staff1, "staff1", OPERATOR_PASSWORD, NULL);
    r = s_draft(&staff1, "住民票の写しをコンビニで取りたい");
    s_cites_only(&r, f.public_faq);
    ncct_resp_free(&r);
    ncct_system_stop_all(&s_sys);
}

/* A Chat Completions server whose answer the test chooses; it records what it was sent. */
enum { S_LLM_CITE, S_LLM_WRONG_NUMBER, S_LLM_GARBAGE, S_LLM_LEAK, S_LLM_REFUSE };
static atomic_int s_llm_mode;
static pthread_mutex_t s_llm_lock = PTHREAD_MUTEX_INITIALIZER;
static char s_llm_seen[65536];

static int s_drafting_llm(struct mg_connection *conn, void *arg)
{
    (void)arg;
    char *body = calloc(1, 65536); /* civetweb's threads have small stacks */
    int len = body ? mg_read(conn, body, 65535) : -1;
    if (!body)
        return 500;
    body[len > 0 ? len : 0] = '\0';
    atomic_fetch_add(&s_llm_requests, 1);
    if (strstr(body, "山田花子") || strstr(body, "8765-4321"))
        atomic_fetch_add(&s_llm_leaks, 1);
    pthread_mutex_lock(&s_llm_lock);
    snprintf(s_llm_seen, sizeof s_llm_seen, "%s", body);
    pthread_mutex_unlock(&s_llm_lock);
    /* the number of the first FAQ it was given ("FAQ 12\n質問: ...") */
    const char *faq = strstr(body, "FAQ ");
    while (faq && (faq[4] < '0' || faq[4] > '9'))
        faq = strstr(faq + 4, "FAQ ");
    int number = faq ? atoi(faq + 4) : 0;
    char content[512], answer[1024];
    switch (atomic_load(&s_llm_mode)) {
    case S_LLM_CITE:
        snprintf(content, sizeof content,
                 "[氏名]様、住民票の写しはマイナンバーカードでコンビニ交付を受けられます（FAQ "
                 "%d）。",
                 number);
        break;
    case S_LLM_WRONG_NUMBER:
        snprintf(content, sizeof content, "住民票の写しは窓口で取れます（FAQ %d）。", number + 777);
        break;
    case S_LLM_LEAK:
        snprintf(content, sizeof content, "山田花子様、住民票の写しは窓口で取れます（FAQ %d）。",
                 number);
        break;
    case S_LLM_REFUSE:
        snprintf(content, sizeof content, "回答できません");
        break;
    default:
        content[0] = '\0';
    }
    if (atomic_load(&s_llm_mode) == S_LLM_GARBAGE)
        snprintf(answer, sizeof answer, "<html>not json");
    else
        snprintf(answer, sizeof answer,
                 "{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
                 "\"%s\"},\"finish_reason\":\"stop\"}]}",
                 content);
    mg_printf(conn,
              "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
              "Connection: close\r\n\r\n%s",
              strlen(answer), answer);
    free(body);
    return 200;
}

Test(summary, an_llm_drafts_from_the_faqs_given_and_is_checked)
{
    int port = ncct_free_port();
    char ports[32], url[96];
    snprintf(ports, sizeof ports, "127.0.0.1:%d", port);
    snprintf(url, sizeof url, "NCC_SUMMARY_OPENAI_BASE_URL=http://127.0.0.1:%d/v1", port);
    const char *options[] = {"listening_ports", ports, "num_threads", "4", NULL};
    struct mg_callbacks callbacks = {0};
    struct mg_context *llm = mg_start(&callbacks, NULL, options);
    cr_assert_not_null(llm);
    mg_set_request_handler(llm, "/v1/chat/completions", s_drafting_llm, NULL);
    ncct_session_t op1;
    s_faqs_t f = s_draft_setup((const char *[]){"NCC_SUMMARY_SUMMARIZER=openai", url,
                                                "NCC_SUMMARY_OPENAI_MODEL=test",
                                                "NCC_SUMMARY_OPENAI_TIMEOUT_MS=2000", NULL},
                               &op1);

    /* a good draft: the LLM got the masked question and the public FAQ, nothing else */
    atomic_store(&s_llm_mode, S_LLM_CITE);
    ncct_resp_t r = s_draft(&op1, s_resident_question);
    s_cites_only(&r, f.public_faq);
    cr_assert_str_eq(ncct_str(r.json, "summarizer"), "openai", "%s", r.body);
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(r.json, "fallback")), "%s", r.body);
    cr_assert(strstr(ncct_str(r.json, "draft"), "[氏名]様、"), "%s", r.body);
    ncct_resp_free(&r);
    cr_assert_eq(atomic_load(&s_llm_requests), 1);
    pthread_mutex_lock(&s_llm_lock);
    cr_assert(strstr(s_llm_seen, "[氏名]") && strstr(s_llm_seen, "[電話番号]") &&
                  strstr(s_llm_seen, "コンビニで取得できます"),
              "the LLM's request: %s", s_llm_seen);
    cr_assert_null(strstr(s_llm_seen, "内部手順"), "an internal FAQ was sent: %s", s_llm_seen);
    cr_assert_null(strstr(s_llm_seen, "子ども家庭支援課"), "%s", s_llm_seen);
    pthread_mutex_unlock(&s_llm_lock);

    /* a number it was not given, garbage, or an entity's original: the extractive draft */
    const int bad[] = {S_LLM_WRONG_NUMBER, S_LLM_GARBAGE, S_LLM_LEAK};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        atomic_store(&s_llm_mode, bad[i]);
        r = s_draft(&op1, s_resident_question);
        s_cites_only(&r, f.public_faq);
        cr_assert_str_eq(ncct_str(r.json, "summarizer"), "extractive", "mode %d: %s", bad[i],
                         r.body);
        cr_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r.json, "fallback")), "%s", r.body);
        cr_assert(strstr(ncct_str(r.json, "draft"), "コンビニで取得できます"), "%s", r.body);
        s_no_originals(r.body, "a fallback draft");
        ncct_resp_free(&r);
    }
    /* the LLM finds that the FAQs do not answer: a refusal */
    atomic_store(&s_llm_mode, S_LLM_REFUSE);
    r = s_draft(&op1, s_resident_question);
    s_refused(&r);
    cr_assert_str_eq(ncct_str(r.json, "reason"), "model_refused", "%s", r.body);
    ncct_resp_free(&r);
    int asked = atomic_load(&s_llm_requests);
    cr_assert_eq(asked, 5);
    /* nothing fits: refused without asking the LLM */
    r = s_draft(&op1, "印鑑登録証をなくしてしまいました。");
    s_refused(&r);
    ncct_resp_free(&r);
    cr_assert_eq(atomic_load(&s_llm_requests), asked, "the LLM was asked without an FAQ");
    cr_assert_eq(atomic_load(&s_llm_leaks), 0, "the LLM was sent personal data");
    char *log = ncct_read_file(ncct_service(&s_sys, "summary")->log);
    cr_assert(log && strstr(log, "summary.fallback"), "the fallback is logged");
    free(log);
    ncct_system_stop_all(&s_sys);
    mg_stop(llm);
}
