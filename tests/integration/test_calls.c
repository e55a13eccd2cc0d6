/* ncc-calls end to end (issue 5, R1, R26, R28; docs/pbx-integration.md,
 * docs/push.md): real ncc-directory, ncc-calls and ncc-gateway on a database
 * of the test's own. The PBX's webhooks are signed as a PBX signs them; an
 * operator's browser is a Server-Sent Events client on /api/v1/stream. */
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

#include <libpq-fe.h>
#include <strings.h>

#include "ncc/log.h"
#include "ncc/webhook.h"
#include "ncc_system.h"

#define OPERATOR_PASSWORD "Operator-Pass-0001"

static ncct_system_t s_sys;
static ncct_session_t s_admin;

static void setup(void)
{
    ncc_log_init("test_calls", NCC_LOG_ERROR);
    ncct_system_init(&s_sys, "test_calls");
    ncct_system_start(&s_sys, "directory", NULL);
    ncct_system_start(&s_sys, "calls",
                      (const char *[]){"NCC_RECORDING_MAX_BYTES=4000000",
                                       "NCC_RECORDING_PURGE_MS=200",
                                       "NCC_RECORDING_RETENTION_DAYS=1", NULL});
    ncct_system_start_gateway(&s_sys, (const char *[]){"NCC_PUSH_KEEPALIVE_MS=500", NULL});
    ncct_login_admin(&s_sys, &s_admin);
}

static void teardown(void)
{
    ncct_system_teardown(&s_sys);
}

TestSuite(calls, .init = setup, .fini = teardown, .timeout = 180);

/* ---- a browser's push stream (tests/support/ncc_system.h) ---------------------------------- */

typedef ncct_stream_t stream_t;
#define s_stream_open(s, session) ncct_stream_open(&s_sys, (s), (session))
#define s_stream_wait             ncct_stream_wait
#define s_stream_text             ncct_stream_text
#define s_stream_close            ncct_stream_close

/* ---- the PBX ------------------------------------------------------------------------------ */

/* One event, signed now; asserts the status and returns the answer. */
static ncct_resp_t s_event(const char *event_id, const char *type, const char *call_id,
                           const char *occurred_at, const char *extra, long status)
{
    char body[1024];
    snprintf(body, sizeof body,
             "{\"event_id\":\"%s\",\"type\":\"%s\",\"call_id\":\"%s\",\"occurred_at\":\"%s\","
             "\"from\":\"090-1234-5678\",\"to\":\"03-3228-1111\"%s%s}",
             event_id, type, call_id, occurred_at, extra ? "," : "", extra ? extra : "");
    ncct_resp_t resp =
        ncct_signed_post(&s_sys, "/api/v1/pbx/events", body, NCCT_PBX_SECRET, (int64_t)time(NULL));
    ncct_expect(&resp, status, NULL, body);
    return resp;
}

static void s_event_state(const char *event_id, const char *type, const char *call_id,
                          const char *occurred_at, const char *extra, const char *state)
{
    ncct_resp_t resp = s_event(event_id, type, call_id, occurred_at, extra, 200);
    cr_assert_str_eq(ncct_str(resp.json, "state"), state, "%s: %s", event_id, resp.body);
    ncct_resp_free(&resp);
}

static long s_count(const char *sql)
{
    return ncct_owner_long(&s_sys, sql);
}

/* ---- tests -------------------------------------------------------------------------------- */

Test(calls, the_answering_operator_gets_the_pop_and_events_fold_in_any_order)
{
    ncct_create_user(&s_sys, &s_admin, "op1", "[\"operator\"]", "2001", OPERATOR_PASSWORD);
    ncct_session_t op1;
    ncct_login(&s_sys, &op1, "op1", OPERATOR_PASSWORD, NULL);
    stream_t stream;
    s_stream_open(&stream, &op1);
    cr_assert(s_stream_wait(&stream, ": connected", 5000), "the stream did not open");

    s_event_state("e1", "ringing", "C-1", "2027-04-05T10:00:00+09:00", NULL, "ringing");
    long long sent = ncct_now_ms();
    s_event_state("e2", "answered", "C-1", "2027-04-05T10:00:05+09:00",
                  "\"agent_extension\":\"2001\"", "answered");
    cr_assert(s_stream_wait(&stream, "event: call.answered", 5000), "no pop");
    long long popped = ncct_now_ms();
    char *text = s_stream_text(&stream);
    cr_assert(strstr(text, "\"call_id\":\"C-1\"") && strstr(text, "090-1234-5678"), "%s", text);
    free(text);
    cr_log_info("pop after %lld ms (informational; figures come from bench/)", popped - sent);

    /* The same event again: taken once. */
    ncct_resp_t resp = s_event("e2", "answered", "C-1", "2027-04-05T10:00:05+09:00",
                               "\"agent_extension\":\"2001\"", 200);
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(resp.json, "duplicate")), "%s",
              resp.body);
    ncct_resp_free(&resp);
    cr_assert_eq(s_count("SELECT count(*) FROM calls.call_events WHERE call_id = 'C-1'"), 2);

    s_event_state("e3", "transferred", "C-1", "2027-04-05T10:03:00+09:00",
                  "\"transfer_to\":\"T001\"", "transferred");
    s_event_state("e4", "ended", "C-1", "2027-04-05T10:04:00+09:00", NULL, "ended");
    cr_assert(s_stream_wait(&stream, "event: call.ended", 5000), "no call.ended");

    /* Out of order: the end first (abandoned so far), then the answer that
     * happened before it: the call ends answered, by op1. */
    s_event_state("f3", "ended", "C-2", "2027-04-05T11:05:00+09:00", NULL, "abandoned");
    s_event_state("f1", "ringing", "C-2", "2027-04-05T11:00:00+09:00", NULL, "abandoned");
    s_event_state("f2", "answered", "C-2", "2027-04-05T11:00:10+09:00",
                  "\"agent_extension\":\"2001\"", "ended");
    resp = ncct_request(&s_sys, &s_admin, "GET", "/api/v1/calls/C-2", NULL, NULL);
    ncct_expect(&resp, 200, NULL, "get C-2");
    cr_assert_str_eq(ncct_str(resp.json, "state"), "ended");
    cr_assert_str_eq(ncct_str(resp.json, "operator_name"), "op1");
    cr_assert_str_eq(ncct_str(resp.json, "from_number"), "090-1234-5678");
    cr_assert_str_eq(ncct_str(resp.json, "answered_at"), "2027-04-05T11:00:10.000+09:00");
    cr_assert_str_eq(ncct_str(resp.json, "ringing_at"), "2027-04-05T11:00:00.000+09:00");
    cJSON *talk = cJSON_GetObjectItemCaseSensitive(resp.json, "talk_seconds");
    cr_assert_eq((int)talk->valuedouble, 290);
    ncct_resp_free(&resp);

    /* What the other services hear: each state once, in order. */
    cr_assert_eq(s_count("SELECT count(*) FROM calls.outbox WHERE type = "
                         "'ncc.calls.CallStateChanged'"),
                 4 + 4,
                 "C-1: ringing answered transferred ended; C-2: ringing abandoned answered ended");
    /* The caller's number is not stored in the clear. */
    cr_assert_eq(s_count("SELECT count(*) FROM calls.calls WHERE from_enc LIKE 'v1:%' AND "
                         "from_enc NOT LIKE '%1234%' AND length(from_index) = 64"),
                 2);
    /* The list: the operator's own and every call for the supervisor. */
    resp = ncct_request(&s_sys, &op1, "GET", "/api/v1/calls?state=ended", NULL, NULL);
    ncct_expect(&resp, 200, NULL, "list");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(resp.json, "items")), 2, "%s",
                 resp.body);
    ncct_resp_free(&resp);
    s_stream_close(&stream);
    ncct_system_stop_all(&s_sys);
}

Test(calls, bad_webhooks_are_refused_counted_and_store_nothing)
{
    const char *good = "{\"event_id\":\"x1\",\"type\":\"ringing\",\"call_id\":\"C-9\","
                       "\"occurred_at\":\"2027-04-05T10:00:00+09:00\"}";
    int64_t now = (int64_t)time(NULL);
    ncct_resp_t resp = ncct_request(&s_sys, NULL, "POST", "/api/v1/pbx/events", good, NULL);
    ncct_expect(&resp, 401, "invalid_signature", "unsigned");
    ncct_resp_free(&resp);
    resp = ncct_signed_post(&s_sys, "/api/v1/pbx/events", good, "not-the-secret", now);
    ncct_expect(&resp, 401, "invalid_signature", "wrong secret");
    ncct_resp_free(&resp);
    resp = ncct_signed_post(&s_sys, "/api/v1/pbx/events", good, NCCT_PBX_SECRET, now - 301);
    ncct_expect(&resp, 401, "invalid_signature", "stale");
    ncct_resp_free(&resp);
    /* A signature of another body (replayed header on a changed event). */
    {
        char header[160], line[200];
        cr_assert_eq(
            ncc_webhook_sign(NCCT_PBX_SECRET, now, good, strlen(good), header, sizeof header), 0);
        snprintf(line, sizeof line, "X-NCC-Signature: %s", header);
        const char *tampered = "{\"event_id\":\"x1\",\"type\":\"ended\",\"call_id\":\"C-9\","
                               "\"occurred_at\":\"2027-04-05T10:00:00+09:00\"}";
        resp = ncct_request(&s_sys, NULL, "POST", "/api/v1/pbx/events", tampered,
                            (const char *[]){line, NULL});
        ncct_expect(&resp, 401, "invalid_signature", "tampered");
        ncct_resp_free(&resp);
    }
    static const struct {
        const char *body, *field;
        long status;
    } bad[] = {
        {"{\"event_id\":", NULL, 400},
        {"[1,2]", NULL, 400},
        {"{\"type\":\"ringing\",\"call_id\":\"C-9\",\"occurred_at\":\"2027-04-05T10:00:00Z\"}",
         "event_id", 422},
        {"{\"event_id\":\"x2\",\"type\":\"hold\",\"call_id\":\"C-9\",\"occurred_at\":\"2027-04-"
         "05T10:00:00Z\"}",
         "type", 422},
        {"{\"event_id\":\"x2\",\"type\":\"ringing\",\"call_id\":\"C 9\",\"occurred_at\":\"2027-"
         "04-05T10:00:00Z\"}",
         "call_id", 422},
        {"{\"event_id\":\"x2\",\"type\":\"ringing\",\"call_id\":\"C-9\",\"occurred_at\":"
         "\"yesterday\"}",
         "occurred_at", 422},
        {"{\"event_id\":\"x2\",\"type\":\"ringing\",\"call_id\":\"C-9\",\"occurred_at\":\"2027-04-"
         "05T10:00:00Z\",\"from\":\"<script>\"}",
         "from", 422},
        {"{\"event_id\":\"x2\",\"type\":\"ringing\",\"call_id\":\"C-9\",\"occurred_at\":\"2027-04-"
         "05T10:00:00Z\",\"unknown\":1}",
         NULL, 400},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        resp = ncct_signed_post(&s_sys, "/api/v1/pbx/events", bad[i].body, NCCT_PBX_SECRET, now);
        ncct_expect(&resp, bad[i].status, NULL, bad[i].body);
        if (bad[i].field) {
            const char *field =
                ncct_str(cJSON_GetObjectItemCaseSensitive(resp.json, "error"), "field");
            cr_assert(field && strcmp(field, bad[i].field) == 0, "%s: %s", bad[i].body, resp.body);
        }
        ncct_resp_free(&resp);
    }
    cr_assert_eq(s_count("SELECT count(*) FROM calls.calls"), 0);
    cr_assert_eq(s_count("SELECT count(*) FROM calls.call_events"), 0);
    /* Counted on the gateway's /metrics. */
    char url[96], *metrics = NULL;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", s_sys.gateway.health);
    cr_assert_eq(ncct_http("GET", url, NULL, &metrics), 200);
    const char *line = strstr(metrics, "ncc_signatures_refused_total{");
    cr_assert_not_null(line, "%s", metrics);
    long refused = strtol(strchr(line, '}') + 1, NULL, 10);
    cr_assert_geq(refused, 4, "%s", line);
    free(metrics);
    /* A transcript for a call that does not exist. */
    resp = ncct_signed_post(&s_sys, "/api/v1/calls/NOPE/transcript",
                            "{\"segments\":[{\"seq\":0,\"speaker\":\"caller\",\"start_ms\":0,"
                            "\"end_ms\":10,\"text\":\"もしもし\"}]}",
                            NCCT_PBX_SECRET, now);
    ncct_expect(&resp, 404, "not_found", "unknown call");
    ncct_resp_free(&resp);
    ncct_system_stop_all(&s_sys);
}

Test(calls, transcripts_are_stored_encrypted_pushed_live_and_exported_as_tokens)
{
    ncct_create_user(&s_sys, &s_admin, "op1", "[\"operator\"]", "2001", OPERATOR_PASSWORD);
    ncct_create_user(&s_sys, &s_admin, "op2", "[\"operator\"]", "2002", "Operator-Pass-0002");
    ncct_session_t op1, op2;
    ncct_login(&s_sys, &op1, "op1", OPERATOR_PASSWORD, NULL);
    ncct_login(&s_sys, &op2, "op2", "Operator-Pass-0002", NULL);
    stream_t stream;
    s_stream_open(&stream, &op1);
    cr_assert(s_stream_wait(&stream, ": connected", 5000));
    s_event_state("t1", "answered", "C-7", "2027-04-05T10:00:05+09:00",
                  "\"agent_extension\":\"2001\"", "answered");

    const char *segments =
        "{\"segments\":[{\"seq\":0,\"speaker\":\"caller\",\"start_ms\":0,\"end_ms\":2500,"
        "\"text\":\"住民票の写しを取りたいのですが\"},{\"seq\":1,\"speaker\":\"operator\","
        "\"start_ms\":2600,\"end_ms\":5000,\"text\":\"本人確認書類をお持ちください\"}]}";
    int64_t now = (int64_t)time(NULL);
    ncct_resp_t resp =
        ncct_signed_post(&s_sys, "/api/v1/calls/C-7/transcript", segments, NCCT_PBX_SECRET, now);
    ncct_expect(&resp, 200, NULL, "transcript");
    cr_assert_eq((int)cJSON_GetObjectItemCaseSensitive(resp.json, "accepted")->valuedouble, 2);
    ncct_resp_free(&resp);
    cr_assert(s_stream_wait(&stream, "event: transcript.segment", 5000), "not pushed");
    cr_assert(s_stream_wait(&stream, "住民票の写し", 1000));
    resp = ncct_signed_post(&s_sys, "/api/v1/calls/C-7/transcript", segments, NCCT_PBX_SECRET, now);
    ncct_expect(&resp, 200, NULL, "again");
    cr_assert_eq((int)cJSON_GetObjectItemCaseSensitive(resp.json, "duplicates")->valuedouble, 2);
    ncct_resp_free(&resp);
    resp = ncct_signed_post(&s_sys, "/api/v1/calls/C-7/transcript",
                            "{\"segments\":[{\"seq\":5,\"speaker\":\"robot\",\"start_ms\":0,"
                            "\"end_ms\":1,\"text\":\"x\"}]}",
                            NCCT_PBX_SECRET, now);
    ncct_expect(&resp, 422, "invalid_field", "bad speaker");
    ncct_resp_free(&resp);
    /* The new segments are published once for the services that follow the
     * conversation (ncc-summary). */
    cr_assert_eq(s_count("SELECT count(*) FROM calls.outbox WHERE type = "
                         "'ncc.calls.TranscriptAdded'"),
                 1);
    /* Encrypted at rest. */
    cr_assert_eq(s_count("SELECT count(*) FROM calls.transcript_segments WHERE text_enc LIKE "
                         "'v1:%' AND text_enc NOT LIKE '%住民票%'"),
                 2);
    /* Read back by the operator of the call; another operator sees nothing. */
    resp = ncct_request(&s_sys, &op1, "GET", "/api/v1/calls/C-7", NULL, NULL);
    ncct_expect(&resp, 200, NULL, "get C-7");
    const cJSON *transcript = cJSON_GetObjectItemCaseSensitive(resp.json, "transcript");
    cr_assert_eq(cJSON_GetArraySize(transcript), 2);
    cr_assert_str_eq(ncct_str(cJSON_GetArrayItem(transcript, 1), "text"),
                     "本人確認書類をお持ちください");
    ncct_resp_free(&resp);
    resp = ncct_request(&s_sys, &op2, "GET", "/api/v1/calls/C-7", NULL, NULL);
    ncct_expect(&resp, 404, "not_found", "another operator's call");
    ncct_resp_free(&resp);
    /* Tokens for text mining: one row per MeCab token, with base form and
     * part of speech; operators may not export. */
    resp = ncct_request(&s_sys, &s_admin, "GET", "/api/v1/calls/transcripts/tokens.csv?call_id=C-7",
                        NULL, NULL);
    ncct_expect(&resp, 200, NULL, "tokens");
    cr_assert(strstr(resp.body, "call_id,call_started_at,seq,speaker,start_ms,token_index,"
                                "surface,base_form,reading,pos,pos_detail\r\n"),
              "%s", resp.body);
    cr_assert(strstr(resp.body, ",住民,住民,ジュウミン,名詞,") ||
                  strstr(resp.body, ",住民票,住民票,"),
              "%s", resp.body);
    cr_assert(strstr(resp.body, ",取り,取る,トリ,動詞,自立\r\n"), "%s", resp.body);
    ncct_resp_free(&resp);
    resp = ncct_request(&s_sys, &op1, "GET", "/api/v1/calls/transcripts/tokens.csv", NULL, NULL);
    ncct_expect(&resp, 403, "forbidden", "operator export");
    ncct_resp_free(&resp);
    s_stream_close(&stream);
    ncct_system_stop_all(&s_sys);
}

Test(calls, a_stream_needs_a_session_and_ends_with_it)
{
    ncct_resp_t resp = ncct_request(&s_sys, NULL, "GET", "/api/v1/stream", NULL, NULL);
    ncct_expect(&resp, 401, "unauthenticated", "no session");
    ncct_resp_free(&resp);
    ncct_create_user(&s_sys, &s_admin, "op1", "[\"operator\"]", "2001", OPERATOR_PASSWORD);
    ncct_session_t op1;
    ncct_login(&s_sys, &op1, "op1", OPERATOR_PASSWORD, NULL);
    stream_t stream;
    s_stream_open(&stream, &op1);
    cr_assert(s_stream_wait(&stream, ": connected", 5000));
    /* Quiet streams get keepalives (NCC_PUSH_KEEPALIVE_MS=500 here). */
    cr_assert(s_stream_wait(&stream, ": keepalive", 3000));
    resp = ncct_request(&s_sys, &op1, "DELETE", "/api/v1/session", NULL, NULL);
    ncct_expect(&resp, 204, NULL, "logout");
    ncct_resp_free(&resp);
    cr_assert(s_stream_wait(&stream, "event: session.ended", 3000),
              "the stream outlived its session");
    s_stream_close(&stream);
    ncct_system_stop_all(&s_sys);
}

/* ---- recordings (R22-R24) ------------------------------------------------------------------ */

#define REC_BYTES  3100000 /* three parts of 1 MiB and a rest */
#define HUGE_BYTES 5000000 /* over NCC_RECORDING_MAX_BYTES=4000000 */

static unsigned char *s_wav; /* REC_BYTES of WAV: header and a tone */

static void s_make_wav(void)
{
    s_wav = malloc(REC_BYTES);
    cr_assert_not_null(s_wav);
    memcpy(s_wav, "RIFF", 4);
    uint32_t size = REC_BYTES - 8;
    memcpy(s_wav + 4, &size, 4);
    memcpy(s_wav + 8, "WAVEfmt ", 8);
    for (size_t i = 16; i < REC_BYTES; i++)
        s_wav[i] = (unsigned char)(i * 7 % 251);
}

/* The PBX's recording server: /rec.wav (audio), /page.html (not audio),
 * /huge.wav (audio, too large). */
static int s_pbx_files(struct mg_connection *conn, void *cbdata)
{
    (void)cbdata;
    const struct mg_request_info *info = mg_get_request_info(conn);
    if (strcmp(info->local_uri, "/rec.wav") == 0) {
        mg_send_http_ok(conn, "audio/wav", REC_BYTES);
        mg_write(conn, s_wav, REC_BYTES);
    } else if (strcmp(info->local_uri, "/page.html") == 0) {
        static const char page[] = "<html><body>login</body></html>";
        mg_send_http_ok(conn, "text/html", sizeof page - 1);
        mg_write(conn, page, sizeof page - 1);
    } else if (strcmp(info->local_uri, "/huge.wav") == 0) {
        mg_send_http_ok(conn, "audio/wav", HUGE_BYTES);
        for (size_t sent = 0; sent < HUGE_BYTES; sent += 100000)
            if (mg_write(conn, s_wav, 100000) <= 0)
                break;
    } else {
        mg_send_http_error(conn, 404, "%s", "no such file");
    }
    return 200;
}

/* GET the recording as `session`: status, and the body into *ret_body/len. */
static long s_get_recording(const ncct_session_t *session, const char *call_id, char **ret_body,
                            size_t *ret_len, char **ret_headers)
{
    char path[128];
    snprintf(path, sizeof path, "/api/v1/calls/%s/recording", call_id);
    ncct_resp_t resp = ncct_request(&s_sys, session, "GET", path, NULL, NULL);
    long status = resp.status;
    if (ret_body) {
        *ret_body = resp.body;
        *ret_len = resp.len;
        resp.body = NULL;
    }
    if (ret_headers) {
        *ret_headers = resp.headers;
        resp.headers = NULL;
    }
    ncct_resp_free(&resp);
    return status;
}

/* Waits until the recording's status in the database is `status`. */
static bool s_recording_status(const char *call_id, const char *status, int timeout_ms)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM calls.recordings WHERE call_id = '%s' AND status = '%s'",
             call_id, status);
    long long deadline = ncct_now_ms() + timeout_ms;
    while (ncct_now_ms() < deadline) {
        if (s_count(sql) == 1)
            return true;
        usleep(50 * 1000);
    }
    return false;
}

Test(calls, recordings_are_fetched_bounded_encrypted_served_and_deleted_in_time)
{
    s_make_wav();
    int port = ncct_free_port();
    char ports[32];
    snprintf(ports, sizeof ports, "127.0.0.1:%d", port);
    const char *options[] = {"listening_ports", ports, "num_threads", "4", NULL};
    struct mg_callbacks callbacks = {0};
    struct mg_context *server = mg_start(&callbacks, NULL, options);
    cr_assert_not_null(server);
    mg_set_request_handler(server, "/", s_pbx_files, NULL);

    ncct_create_user(&s_sys, &s_admin, "op1", "[\"operator\"]", "2001", OPERATOR_PASSWORD);
    ncct_create_user(&s_sys, &s_admin, "op2", "[\"operator\"]", "2002", "Operator-Pass-0002");
    ncct_session_t op1, op2;
    ncct_login(&s_sys, &op1, "op1", OPERATOR_PASSWORD, NULL);
    ncct_login(&s_sys, &op2, "op2", "Operator-Pass-0002", NULL);
    char extra[160];
    const char *calls[] = {"C-R1", "C-R2", "C-R3"};
    const char *files[] = {"rec.wav", "page.html", "huge.wav"};
    for (int i = 0; i < 3; i++) {
        char id[32];
        snprintf(id, sizeof id, "r%d-a", i);
        s_event_state(id, "answered", calls[i], "2027-04-05T10:00:05+09:00",
                      "\"agent_extension\":\"2001\"", "answered");
        snprintf(id, sizeof id, "r%d-r", i);
        snprintf(extra, sizeof extra, "\"recording_url\":\"http://127.0.0.1:%d/%s\"", port,
                 files[i]);
        ncct_resp_t resp =
            s_event(id, "recording_ready", calls[i], "2027-04-05T10:05:00+09:00", extra, 200);
        ncct_resp_free(&resp);
    }
    ncct_resp_t resp =
        s_event("r9", "recording_ready", "C-R1", "2027-04-05T10:05:00+09:00", NULL, 422);
    cr_assert_str_eq(ncct_str(cJSON_GetObjectItemCaseSensitive(resp.json, "error"), "field"),
                     "recording_url");
    ncct_resp_free(&resp);

    /* Fetched, in parts, encrypted, the URL too. */
    cr_assert(s_recording_status("C-R1", "stored", 15000), "C-R1 was not stored");
    cr_assert_eq(s_count("SELECT count(*) FROM calls.recording_chunks WHERE call_id = 'C-R1' AND "
                         "data_enc LIKE 'v1:%'"),
                 3);
    cr_assert_eq(s_count("SELECT count(*) FROM calls.recordings WHERE url_enc LIKE '%127.0.0.1%'"),
                 0);
    /* Served whole to a supervisor's role and the call's operator; not to another. */
    char *body = NULL, *headers = NULL;
    size_t len = 0;
    cr_assert_eq(s_get_recording(&s_admin, "C-R1", &body, &len, &headers), 200);
    cr_assert_eq(len, REC_BYTES);
    cr_assert(memcmp(body, s_wav, REC_BYTES) == 0, "the audio came back changed");
    cr_assert(strcasestr(headers, "Content-Type: audio/wav") &&
                  strstr(headers, "filename=\"C-R1.wav\"") && strcasestr(headers, "no-store"),
              "%s", headers);
    free(body);
    free(headers);
    cr_assert_eq(s_get_recording(&op1, "C-R1", NULL, NULL, NULL), 200);
    cr_assert_eq(s_get_recording(&op2, "C-R1", NULL, NULL, NULL), 404);
    cr_assert_geq(s_count("SELECT count(*) FROM directory.audit_log WHERE action = "
                          "'recording.read'"),
                  2);
    /* Not audio, and too large: refused for good, with the reason. */
    cr_assert(s_recording_status("C-R2", "failed", 15000), "C-R2 did not fail");
    cr_assert(s_recording_status("C-R3", "failed", 15000), "C-R3 did not fail");
    cr_assert_eq(s_count("SELECT count(*) FROM calls.recordings WHERE call_id = 'C-R2' AND error "
                         "LIKE 'not audio%'"),
                 1);
    cr_assert_eq(s_count("SELECT count(*) FROM calls.recordings WHERE call_id = 'C-R3' AND error "
                         "LIKE '%larger than 4000000%'"),
                 1);
    cr_assert_eq(s_count("SELECT count(*) FROM calls.recording_chunks WHERE call_id <> 'C-R1'"), 0);
    body = NULL;
    cr_assert_eq(s_get_recording(&s_admin, "C-R2", &body, &len, NULL), 404);
    cr_assert(strstr(body, "failed"), "%s", body);
    free(body);
    /* Retention (NCC_RECORDING_RETENTION_DAYS=1): an older one is deleted. */
    PGconn *conn = PQconnectdb(s_sys.db.owner_url);
    PGresult *res = PQexec(conn, "UPDATE calls.recordings SET stored_at = now() - interval '2 "
                                 "days' WHERE call_id = 'C-R1'");
    cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "%s", PQerrorMessage(conn));
    PQclear(res);
    PQfinish(conn);
    cr_assert(s_recording_status("C-R1", "deleted", 5000), "not deleted after its retention");
    cr_assert_eq(s_count("SELECT count(*) FROM calls.recording_chunks"), 0);
    cr_assert_eq(s_get_recording(&s_admin, "C-R1", NULL, NULL, NULL), 410);
    mg_stop(server);
    free(s_wav);
    ncct_system_stop_all(&s_sys);
}
