/* Tests for the summarizers and the emotion scores of ncc-summary
 * (services/summary/summarizer.h, emotion.h): the extractive summary's three
 * parts and length; the openai summarizer against a local Chat Completions
 * server in this process (civetweb) that records every request: it gets
 * masked text only, "store": false and the key; a hanging, failing, garbage
 * or leaking answer falls back to the extractive summary in bounded time. */
#include <criterion/criterion.h>
#include <civetweb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../services/summary/emotion.h"
#include "../../services/summary/mask.h"
#include "../../services/summary/summarizer.h"
#include "ncc_test.h"

/* An invented call (no real person). */
static const char *const s_call[][2] = {
    {"operator", "お電話ありがとうございます。中野区役所です。"},
    {"caller",
     "もしもし、田中太郎と申します。住民票の写しを取りたいんですが、どうすればいいですか。"},
    {"operator", "ご本人確認のため、お名前とお電話番号をお願いします。"},
    {"caller", "電話番号は090-1234-5678で、住所は中野区中野四丁目8番1号です。"},
    {"operator", "住民票の写しは、マイナンバーカードがあればコンビニで取得できます。"},
    {"operator", "窓口の場合は本人確認書類をお持ちのうえ戸籍住民課へお越しください。"},
    {"caller", "わかりました、ありがとうございます。"},
};
#define S_CALL_N (sizeof s_call / sizeof s_call[0])
static const char *const s_originals[] = {"田中太郎", "090-1234-5678", "中野区中野四丁目8番1号"};

static mask_t *s_mask;
static summary_segment_t s_segments[S_CALL_N];
static char *s_masked[S_CALL_N];

static void setup(void)
{
    s_mask = mask_new();
    cr_assert_not_null(s_mask);
    for (size_t i = 0; i < S_CALL_N; i++) {
        mask_entity_t *e = NULL;
        size_t n = 0;
        cr_assert_eq(mask_text(s_mask, s_call[i][1], strlen(s_call[i][1]), &s_masked[i], &e, &n),
                     0);
        free(e);
        s_segments[i] = (summary_segment_t){s_call[i][0], s_masked[i]};
    }
}

static void teardown(void)
{
    for (size_t i = 0; i < S_CALL_N; i++)
        free(s_masked[i]);
    mask_destroy(&s_mask);
}

TestSuite(summarizer, .init = setup, .fini = teardown, .timeout = 60);

static long s_chars(const char *text)
{
    long n = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        n += (*p & 0xC0) != 0x80;
    return n;
}

Test(summarizer, extractive_gives_request_answer_and_result_within_the_length)
{
    summarizer_config_t config = {.kind = "extractive", .max_chars = 200};
    summarizer_t *s = summarizer_new(&config);
    cr_assert_not_null(s);
    char *summary = NULL;
    const char *used = NULL, *reason = NULL;
    cr_assert_eq(summarizer_run(s, s_segments, S_CALL_N, NULL, 0, false, &summary, &used, &reason),
                 0);
    printf("extractive:\n%s\n", summary);
    cr_assert_str_eq(used, "extractive");
    cr_assert_null(reason);
    cr_assert(strstr(summary, "用件: ") && strstr(summary, "\n回答: ") &&
                  strstr(summary, "\n結果: "),
              "%s", summary);
    cr_assert(strstr(summary, "住民票の写し"), "the request is about 住民票: %s", summary);
    cr_assert(strstr(summary, "コンビニ") || strstr(summary, "窓口"), "%s", summary);
    cr_assert(strstr(summary, "解決"), "the caller was satisfied: %s", summary);
    cr_assert_leq(s_chars(summary), 215, "%ld characters", s_chars(summary));
    for (size_t i = 0; i < 3; i++)
        cr_assert_null(strstr(summary, s_originals[i]));
    free(summary);
    /* a transfer is the result */
    summary_segment_t transfer[] = {
        {"caller", "国民健康保険の保険料の減免について聞きたいのですが。"},
        {"operator", "担当の保険医療課におつなぎしますので少々お待ちください。"}};
    cr_assert_eq(summarizer_run(s, transfer, 2, NULL, 0, false, &summary, &used, &reason), 0);
    cr_assert(strstr(summary, "保険医療課へ転送"), "%s", summary);
    free(summary);
    /* nothing to summarise still answers */
    cr_assert_eq(summarizer_run(s, NULL, 0, NULL, 0, false, &summary, &used, &reason), 0);
    cr_assert(strstr(summary, "用件: "), "%s", summary);
    free(summary);
    summarizer_destroy(&s);
    summarizer_destroy(&s);
}

Test(summarizer, emotion_scores_follow_the_lexicon_and_rules)
{
    cr_assert_gt(emotion_lexicon_size(), 50);
    emotion_t angry = emotion_score("何度も電話しているのに、本当にいい加減にしてください！");
    emotion_t calm = emotion_score("住民票の写しを1通お願いします。");
    emotion_t lost = emotion_score("どうすればいいのか全然わからないんです??");
    emotion_t glad = emotion_score("丁寧に教えていただいて助かりました、ありがとうございます。");
    cr_assert_gt(angry.anger, 0.8, "%f", angry.anger);
    cr_assert_lt(calm.anger + calm.confusion + calm.satisfaction, 0.01);
    cr_assert_gt(lost.confusion, 0.7, "%f", lost.confusion);
    cr_assert_gt(glad.satisfaction, 0.8);
    cr_assert_str_eq(emotion_label(&angry), "anger");
    cr_assert_str_eq(emotion_label(&calm), "neutral");
    cr_assert_str_eq(emotion_label(&lost), "confusion");
    cr_assert_str_eq(emotion_label(&glad), "satisfaction");
    /* rising anger shows in the call's score */
    emotion_t call = {0, 0, 0};
    emotion_fold(&call, &calm, 0);
    emotion_fold(&call, &angry, 1);
    double once = call.anger;
    emotion_fold(&call, &angry, 2);
    cr_assert_gt(call.anger, once);
    cr_assert_gt(call.anger, 0.5);
}

/* ---- a Chat Completions server ------------------------------------------------------------- */

typedef struct {
    pthread_mutex_t lock;
    char *bodies; /* every request body and auth header, appended */
    size_t len;
    int requests;
} s_recorder_t;

static s_recorder_t s_rec = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void s_record(const char *text, size_t len)
{
    pthread_mutex_lock(&s_rec.lock);
    char *grown = realloc(s_rec.bodies, s_rec.len + len + 2);
    if (grown) {
        memcpy(grown + s_rec.len, text, len);
        s_rec.len += len;
        grown[s_rec.len++] = '\n';
        grown[s_rec.len] = '\0';
        s_rec.bodies = grown;
    }
    pthread_mutex_unlock(&s_rec.lock);
}

static int s_llm(struct mg_connection *conn, void *arg)
{
    (void)arg;
    char *body = calloc(1, 65536); /* civetweb's threads have small stacks */
    int len = body ? mg_read(conn, body, 65535) : -1;
    if (!body)
        return 500;
    body[len > 0 ? len : 0] = '\0';
    s_record(body, strlen(body));
    const char *auth = mg_get_header(conn, "Authorization");
    s_record(auth ? auth : "(no auth)", strlen(auth ? auth : "(no auth)"));
    pthread_mutex_lock(&s_rec.lock);
    s_rec.requests++;
    pthread_mutex_unlock(&s_rec.lock);
    const char *answer = NULL;
    int status = 200;
    if (strstr(body, "\"model\":\"hang\"")) {
        usleep(3000 * 1000);
        answer = "{}";
    } else if (strstr(body, "\"model\":\"garbage\"")) {
        answer = "<html>not json";
    } else if (strstr(body, "\"model\":\"empty\"")) {
        answer = "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"\"}}]}";
    } else if (strstr(body, "\"model\":\"fail\"")) {
        status = 500;
        answer = "{\"error\":{\"message\":\"overloaded\"}}";
    } else if (strstr(body, "\"model\":\"leak\"")) {
        answer = "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"用件: "
                 "田中太郎様の住民票\"}}]}";
    } else {
        answer = "{\"id\":\"c1\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,"
                 "\"message\":{\"role\":\"assistant\",\"content\":\"用件: "
                 "[氏名]様が住民票の写しを希望\\n"
                 "回答: コンビニ交付と窓口を案内\\n結果: 解決\"},\"finish_reason\":\"stop\"}]}";
    }
    mg_printf(conn,
              "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
              "Connection: close\r\n\r\n%s",
              status, status == 200 ? "OK" : "Error", strlen(answer), answer);
    free(body);
    return status;
}

static struct mg_context *s_server(int *ret_port)
{
    int port = ncct_free_port();
    char ports[16], threads[] = "4";
    snprintf(ports, sizeof ports, "127.0.0.1:%d", port);
    const char *options[] = {"listening_ports", ports, "num_threads", threads, NULL};
    struct mg_callbacks callbacks = {0};
    struct mg_context *server = mg_start(&callbacks, NULL, options);
    cr_assert_not_null(server);
    mg_set_request_handler(server, "/v1/chat/completions", s_llm, NULL);
    *ret_port = port;
    return server;
}

static char *s_run(int port, const char *model, int timeout_ms, const char **ret_used,
                   const char **ret_reason, long long *ret_ms)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/", port);
    summarizer_config_t config = {.kind = "openai",
                                  .base_url = url,
                                  .model = model,
                                  .api_key = "sk-test-key",
                                  .timeout_ms = timeout_ms,
                                  .max_chars = 200};
    summarizer_t *s = summarizer_new(&config);
    cr_assert_not_null(s);
    char *summary = NULL;
    long long start = ncct_now_ms();
    cr_assert_eq(summarizer_run(s, s_segments, S_CALL_N, s_originals, 3, false, &summary, ret_used,
                                ret_reason),
                 0);
    *ret_ms = ncct_now_ms() - start;
    summarizer_destroy(&s);
    return summary;
}

Test(summarizer, openai_gets_masked_text_only_and_falls_back_when_it_fails)
{
    int port = 0;
    struct mg_context *server = s_server(&port);
    const char *used = NULL, *reason = NULL;
    long long ms = 0;

    char *summary = s_run(port, "ok", 2000, &used, &reason, &ms);
    cr_assert_str_eq(used, "openai");
    cr_assert_null(reason);
    cr_assert(strstr(summary, "[氏名]様が住民票"), "%s", summary);
    free(summary);

    static const struct {
        const char *model, *reason;
    } failures[] = {{"garbage", "not_json"},
                    {"empty", "bad_text"},
                    {"fail", "http_status"},
                    {"leak", "leaked_entity"},
                    {"hang", "timeout"}};
    for (size_t i = 0; i < sizeof failures / sizeof failures[0]; i++) {
        summary = s_run(port, failures[i].model, 500, &used, &reason, &ms);
        cr_assert_str_eq(used, "extractive", "%s", failures[i].model);
        cr_assert_str_eq(reason, failures[i].reason, "%s: %s", failures[i].model, reason);
        cr_assert(strstr(summary, "用件: "), "%s", summary);
        cr_assert_lt(ms, 1500, "%s took %lld ms", failures[i].model, ms);
        free(summary);
    }
    /* nobody listening */
    mg_stop(server);
    summary = s_run(port, "ok", 500, &used, &reason, &ms);
    cr_assert_str_eq(used, "extractive");
    cr_assert_str_eq(reason, "unreachable");
    free(summary);

    /* what the server received: masked text, never an original */
    cr_assert_eq(s_rec.requests, 6);
    cr_assert(strstr(s_rec.bodies, "[氏名]") && strstr(s_rec.bodies, "[電話番号]") &&
                  strstr(s_rec.bodies, "[住所]"),
              "%s", s_rec.bodies);
    for (size_t i = 0; i < 3; i++)
        cr_assert_null(strstr(s_rec.bodies, s_originals[i]), "%s was sent", s_originals[i]);
    cr_assert_null(strstr(s_rec.bodies, "1234-5678"));
    cr_assert(strstr(s_rec.bodies, "\"store\":false"));
    cr_assert(strstr(s_rec.bodies, "Bearer sk-test-key"));
    free(s_rec.bodies);
}

Test(summarizer, openai_needs_its_settings)
{
    summarizer_config_t config = {.kind = "openai", .base_url = "", .model = "m"};
    cr_assert_null(summarizer_new(&config));
    config.base_url = "http://127.0.0.1:1/v1";
    config.model = NULL;
    cr_assert_null(summarizer_new(&config));
}
