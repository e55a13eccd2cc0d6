/* ncc-sms end to end (issue 8, R44; docs/sms.md): real ncc-directory, ncc-sms
 * and ncc-gateway on a database of the test's own, with a local SMSC (SMPP
 * 3.4, tests/support/sms_smsc.c) or a local server in the Twilio Messages API
 * form (tests/support/sms_twilio.c) as the carrier. */
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ncc/log.h"
#include "ncc/webhook.h"
#include "ncc_system.h"
#include "sms_smsc.h"
#include "sms_twilio.h"

#define OPERATOR_PASSWORD "Operator-Pass-0001"
#define RECEIPT_SECRET    "sms-receipt-secret-0123456789"

static ncct_system_t s_sys;
static ncct_session_t s_admin, s_op;
static ncct_smsc_t *s_smsc;
static ncct_twilio_t *s_twilio;

/* Starts the system with ncc-sms's extra settings (NULL-terminated). */
static void s_start(const char *const *sms_env)
{
    ncct_system_start(&s_sys, "directory", NULL);
    ncct_system_start(&s_sys, "sms", sms_env);
    char secret[100];
    snprintf(secret, sizeof secret, "NCC_SMS_RECEIPT_SECRET=%s", RECEIPT_SECRET);
    ncct_system_start_gateway(&s_sys, (const char *[]){secret, NULL});
    ncct_login_admin(&s_sys, &s_admin);
    ncct_create_user(&s_sys, &s_admin, "op1", "[\"operator\"]", "2001", OPERATOR_PASSWORD);
    ncct_login(&s_sys, &s_op, "op1", OPERATOR_PASSWORD, NULL);
}

/* ncc-sms's settings of the last s_start_smpp (for further copies). */
static const char *s_sms_env[32];
static char s_port_env[64];

/* With the SMSC: settings for ncc-sms to use it, plus `extra`. */
static void s_start_smpp(const ncct_smsc_options_t *options, const char *const *extra)
{
    s_smsc = ncct_smsc_start(options);
    cr_assert_not_null(s_smsc);
    snprintf(s_port_env, sizeof s_port_env, "NCC_SMS_SMPP_PORT=%d", ncct_smsc_port(s_smsc));
    const char *base[] = {"NCC_SMS_PROVIDER=smpp",
                          "NCC_SMS_SMPP_HOST=127.0.0.1",
                          s_port_env,
                          "NCC_SMS_SMPP_SYSTEM_ID=ncc",
                          "NCC_SMS_SMPP_PASSWORD=pw",
                          "NCC_SMS_QUIET_START=0",
                          "NCC_SMS_QUIET_END=0",
                          "NCC_SMS_RETRY_BASE_MS=100",
                          "NCC_SMS_SMPP_RECONNECT_MAX_MS=500"};
    size_t n = 0;
    for (size_t i = 0; i < sizeof base / sizeof base[0]; i++)
        s_sms_env[n++] = base[i];
    for (size_t i = 0; extra && extra[i] && n < 31; i++)
        s_sms_env[n++] = extra[i];
    s_sms_env[n] = NULL;
    s_start(s_sms_env);
}

static void setup(void)
{
    ncc_log_init("test_sms", NCC_LOG_ERROR);
    ncct_system_init(&s_sys, "test_sms");
}

static void teardown(void)
{
    ncct_system_teardown(&s_sys);
    ncct_smsc_stop(&s_smsc);
    ncct_twilio_stop(&s_twilio);
}

TestSuite(sms, .init = setup, .fini = teardown, .timeout = 180);

/* ---- helpers --------------------------------------------------------------------------------- */

static long s_count(const char *sql)
{
    return ncct_owner_long(&s_sys, sql);
}

static int64_t s_int(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : -1;
}

static int64_t s_template(const char *name, const char *body)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "body", body);
    char *text = cJSON_PrintUnformatted(o);
    ncct_resp_t r = ncct_request(&s_sys, &s_admin, "POST", "/api/v1/sms-templates", text, NULL);
    ncct_expect(&r, 201, NULL, text);
    int64_t id = s_int(r.json, "id");
    ncct_resp_free(&r);
    free(text);
    cJSON_Delete(o);
    return id;
}

/* POST /api/v1/sms; `vars` is the JSON array text of variables. */
static ncct_resp_t s_send(const ncct_session_t *who, const char *to, int64_t template_id,
                          const char *vars, const char *key, const char *extra)
{
    char body[8192];
    snprintf(body, sizeof body,
             "{\"to\":\"%s\",\"template_id\":%lld,\"variables\":%s,\"idempotency_key\":\"%s\"%s%s}",
             to, (long long)template_id, vars ? vars : "[]", key, extra ? "," : "",
             extra ? extra : "");
    return ncct_request(&s_sys, who, "POST", "/api/v1/sms", body, NULL);
}

static int64_t s_send_ok(const char *to, int64_t template_id, const char *vars, const char *key,
                         const char *extra)
{
    ncct_resp_t r = s_send(&s_op, to, template_id, vars, key, extra);
    ncct_expect(&r, 201, NULL, key);
    /* Stored first: queued (the sender of another copy may already have sent it). */
    const char *status = ncct_str(r.json, "status");
    cr_assert(status && (strcmp(status, "queued") == 0 || strcmp(status, "sent") == 0), "%s",
              r.body);
    int64_t id = s_int(r.json, "id");
    ncct_resp_free(&r);
    return id;
}

/* Waits until message id has `status`; returns the last answer's status. */
static char *s_wait_status(int64_t id, const char *status, int timeout_ms)
{
    char path[64], last[32] = "";
    snprintf(path, sizeof path, "/api/v1/sms/%lld", (long long)id);
    long long deadline = ncct_now_ms() + timeout_ms;
    for (;;) {
        ncct_resp_t r = ncct_request(&s_sys, &s_admin, "GET", path, NULL, NULL);
        ncct_expect(&r, 200, NULL, path);
        snprintf(last, sizeof last, "%s", ncct_str(r.json, "status"));
        ncct_resp_free(&r);
        if (strcmp(last, status) == 0 || ncct_now_ms() > deadline)
            return strdup(last);
        usleep(50 * 1000);
    }
}

static void s_expect_status(int64_t id, const char *status, int timeout_ms)
{
    char *last = s_wait_status(id, status, timeout_ms);
    cr_assert_str_eq(last, status, "message %lld", (long long)id);
    free(last);
}

/* ---- templates, counting ----------------------------------------------------------------------
 */

Test(sms, templates_are_edited_by_administrators_with_history_and_previews_count_parts)
{
    s_start((const char *[]){"NCC_SMS_PROVIDER=none", NULL});
    int64_t id = s_template("手続き案内", "{name}様 手続きのご案内です。{url}");
    /* The same name again, a broken variable, an operator: refused. */
    ncct_resp_t r = ncct_request(&s_sys, &s_admin, "POST", "/api/v1/sms-templates",
                                 "{\"name\":\"手続き案内\",\"body\":\"x\"}", NULL);
    ncct_expect(&r, 409, "conflict", "same name");
    ncct_resp_free(&r);
    r = ncct_request(&s_sys, &s_admin, "POST", "/api/v1/sms-templates",
                     "{\"name\":\"bad\",\"body\":\"{Name} さん\"}", NULL);
    ncct_expect(&r, 422, "invalid_field", "bad variable");
    ncct_resp_free(&r);
    r = ncct_request(&s_sys, &s_op, "POST", "/api/v1/sms-templates",
                     "{\"name\":\"op\",\"body\":\"x\"}", NULL);
    ncct_expect(&r, 403, NULL, "operator creates");
    ncct_resp_free(&r);
    /* Edit: the version read, else 409; two versions in the history. */
    char path[80], body[200];
    snprintf(path, sizeof path, "/api/v1/sms-templates/%lld", (long long)id);
    r = ncct_request(&s_sys, &s_admin, "PATCH", path,
                     "{\"version\":7,\"body\":\"{name}様 {url} 中野区\"}", NULL);
    ncct_expect(&r, 409, "conflict", "stale version");
    ncct_resp_free(&r);
    r = ncct_request(&s_sys, &s_admin, "PATCH", path,
                     "{\"version\":1,\"body\":\"{name}様 {url} 中野区\"}", NULL);
    ncct_expect(&r, 200, NULL, "patch");
    cr_assert_eq(s_int(r.json, "version"), 2);
    cJSON *vars = cJSON_GetObjectItemCaseSensitive(r.json, "variables");
    cr_assert_eq(cJSON_GetArraySize(vars), 2, "%s", r.body);
    ncct_resp_free(&r);
    snprintf(path, sizeof path, "/api/v1/sms-templates/%lld/history", (long long)id);
    r = ncct_request(&s_sys, &s_op, "GET", path, NULL, NULL);
    ncct_expect(&r, 200, NULL, "history");
    cJSON *items = cJSON_GetObjectItemCaseSensitive(r.json, "items");
    cr_assert_eq(cJSON_GetArraySize(items), 2, "%s", r.body);
    cr_assert(strstr(r.body, "中野区") && strstr(r.body, "手続きのご案内"), "%s", r.body);
    ncct_resp_free(&r);

    /* Preview: 70 Japanese characters are one part, 71 two (67 per part). */
    struct {
        int n;
        const char *unit, *encoding;
        int parts;
    } cases[] = {{70, "あ", "ucs2", 1},
                 {71, "あ", "ucs2", 2},
                 {160, "a", "gsm7", 1},
                 {161, "a", "gsm7", 2},
                 {269, "あ", "ucs2", 5}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[2000] = "";
        for (int k = 0; k < cases[i].n; k++)
            strcat(text, cases[i].unit);
        snprintf(body, sizeof body,
                 "{\"body\":\"{v}\",\"variables\":[{\"name\":\"v\",\"value\":\"");
        char *req = malloc(strlen(body) + strlen(text) + 10);
        sprintf(req, "%s%s\"}]}", body, text);
        r = ncct_request(&s_sys, &s_op, "POST", "/api/v1/sms/preview", req, NULL);
        ncct_expect(&r, 200, NULL, "preview");
        cJSON *count = cJSON_GetObjectItemCaseSensitive(r.json, "count");
        cr_assert_str_eq(ncct_str(count, "encoding"), cases[i].encoding);
        cr_assert_eq(s_int(count, "parts"), cases[i].parts, "%d x %s: %s", cases[i].n,
                     cases[i].unit, r.body);
        cr_assert_eq(s_int(count, "part_limit"), 4);
        cr_assert_eq(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(count, "within_limit")),
                     cases[i].parts <= 4);
        ncct_resp_free(&r);
        free(req);
    }
    /* A template's preview lists what is missing. */
    snprintf(body, sizeof body,
             "{\"template_id\":%lld,\"variables\":[{\"name\":\"name\",\"value\":\"中野\"}]}",
             (long long)id);
    r = ncct_request(&s_sys, &s_op, "POST", "/api/v1/sms/preview", body, NULL);
    ncct_expect(&r, 200, NULL, "preview template");
    cr_assert_str_eq(ncct_str(r.json, "text"), "中野様  中野区");
    cr_assert(strstr(r.body, "\"missing\":[\"url\"]"), "%s", r.body);
    ncct_resp_free(&r);
    ncct_system_stop_all(&s_sys);
}

/* ---- sending through SMPP -----------------------------------------------------------------------
 */

Test(sms, an_sms_is_stored_first_sent_once_over_smpp_and_delivered)
{
    ncct_smsc_options_t o = {.system_id = "ncc", .password = "pw", .receipt_delay_ms = 50};
    s_start_smpp(&o, NULL);
    int64_t tid = s_template("案内", "{name}様 {url} をご覧ください。中野区");
    const char *vars = "[{\"name\":\"name\",\"value\":\"中野太郎\"},{\"name\":\"url\",\"value\":"
                       "\"https://city.example/t/1\"}]";
    int64_t id = s_send_ok("090-1234-5678", tid, vars, "call-1-sms-1", "\"record_id\":42");
    /* The same request again: the same message, nothing sent twice. */
    ncct_resp_t r = s_send(&s_op, "090-1234-5678", tid, vars, "call-1-sms-1", "\"record_id\":42");
    ncct_expect(&r, 201, NULL, "same key");
    cr_assert_eq(s_int(r.json, "id"), id);
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r.json, "duplicate")), "%s", r.body);
    ncct_resp_free(&r);
    /* The same key for something else: a conflict. */
    r = s_send(&s_op, "090-1234-0000", tid, vars, "call-1-sms-1", NULL);
    ncct_expect(&r, 409, "idempotency_conflict", "same key, other number");
    ncct_resp_free(&r);
    s_expect_status(id, "delivered", 10000);
    int parts = 0, coding = -1;
    char *text = ncct_smsc_last_text(s_smsc, "819012345678", &parts, &coding);
    cr_assert_not_null(text, "the SMSC got nothing for 819012345678");
    cr_assert_str_eq(text, "中野太郎様 https://city.example/t/1 をご覧ください。中野区");
    cr_assert_eq(parts, 1);
    cr_assert_eq(coding, 8, "UCS-2");
    free(text);
    cr_assert_eq(ncct_smsc_submits(s_smsc), 1, "sent once");

    /* A long text: concatenated parts with a UDH, reassembled by the SMSC. */
    char long_vars[2000] = "[{\"name\":\"name\",\"value\":\"";
    for (int i = 0; i < 100; i++)
        strcat(long_vars, "区");
    strcat(long_vars, "\"},{\"name\":\"url\",\"value\":\"u\"}]");
    int64_t id2 = s_send_ok("+81 80 1111 2222", tid, long_vars, "call-1-sms-2", "\"record_id\":42");
    s_expect_status(id2, "delivered", 10000);
    text = ncct_smsc_last_text(s_smsc, "818011112222", &parts, &coding);
    cr_assert_not_null(text);
    cr_assert_eq(parts, 2, "118 UCS-2 characters are two parts");
    cr_assert(strstr(text, "区区区") && strstr(text, "中野区"), "%s", text);
    free(text);

    /* The record's history: both, with their lifecycle. */
    r = ncct_request(&s_sys, &s_op, "GET", "/api/v1/sms?record_id=42", NULL, NULL);
    ncct_expect(&r, 200, NULL, "list by record");
    cr_assert_eq(s_int(r.json, "total"), 2, "%s", r.body);
    cr_assert(strstr(r.body, "+819012345678"), "the destination is shown to staff: %s", r.body);
    ncct_resp_free(&r);
    char path[64];
    snprintf(path, sizeof path, "/api/v1/sms/%lld", (long long)id);
    r = ncct_request(&s_sys, &s_op, "GET", path, NULL, NULL);
    cJSON *history = cJSON_GetObjectItemCaseSensitive(r.json, "history");
    cr_assert_eq(cJSON_GetArraySize(history), 3, "queued, sent, delivered: %s", r.body);
    cr_assert_str_eq(ncct_str(cJSON_GetArrayItem(history, 2), "status"), "delivered");
    ncct_resp_free(&r);
    /* At rest: the destination and the text are ciphertext; one final event each. */
    cr_assert_eq(s_count("SELECT count(*) FROM sms.messages WHERE to_enc LIKE 'v1:%' AND to_enc "
                         "NOT LIKE '%12345678%' AND body_enc NOT LIKE '%中野%' AND "
                         "length(to_index) = 64"),
                 2);
    cr_assert_eq(s_count("SELECT count(*) FROM sms.message_events WHERE final"), 2);
    cr_assert_eq(s_count("SELECT count(*) FROM sms.outbox WHERE type = "
                         "'ncc.sms.SmsStatusChanged'"),
                 6, "queued, sent, delivered for each");
    ncct_system_stop_all(&s_sys);
}

Test(sms, bad_requests_are_refused_clearly_and_store_nothing)
{
    s_start((const char *[]){"NCC_SMS_PROVIDER=none", "NCC_SMS_OPERATOR_PER_MINUTE=3",
                             "NCC_SMS_MAX_PARTS=2", NULL});
    int64_t tid = s_template("t", "{name}様 お知らせです");
    const char *vars = "[{\"name\":\"name\",\"value\":\"区民\"}]";
    struct {
        const char *to;
        const char *vars;
        int64_t template_id;
        const char *key;
        long status;
        const char *code;
    } cases[] = {
        {"03-3228-1111", vars, tid, "k1", 422, "not_mobile"},
        {"050-1234-5678", vars, tid, "k2", 422, "not_mobile"},
        {"+1 415 555 0100", vars, tid, "k3", 422, "not_mobile"},
        {"090-12ab-5678", vars, tid, "k4", 422, "invalid_field"},
        {"090-1234-5678", vars, 9999, "k5", 422, "unknown_template"},
        {"090-1234-5678", "[]", tid, "k6", 422, "missing_variables"},
        {"090-1234-5678",
         "[{\"name\":\"name\",\"value\":\"a\"},{\"name\":\"nme\",\"value\":\"b\"}]", tid, "k7", 422,
         "invalid_field"},
        {"090-1234-5678", vars, tid, "bad key!", 422, "invalid_field"},
        {"090-1234-5678", vars, tid, "", 422, "invalid_field"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ncct_resp_t r =
            s_send(&s_op, cases[i].to, cases[i].template_id, cases[i].vars, cases[i].key, NULL);
        ncct_expect(&r, cases[i].status, cases[i].code, cases[i].key);
        cr_assert(strstr(r.body, "\"message\""), "%s", r.body);
        ncct_resp_free(&r);
    }
    /* A body over the part limit (2 parts of 67). */
    char big[3000] = "[{\"name\":\"name\",\"value\":\"";
    for (int i = 0; i < 140; i++)
        strcat(big, "あ");
    strcat(big, "\"}]");
    ncct_resp_t r = s_send(&s_op, "090-1234-5678", tid, big, "k8", NULL);
    ncct_expect(&r, 422, "too_long", "over the part limit");
    ncct_resp_free(&r);
    /* Ward staff read only. */
    ncct_create_user(&s_sys, &s_admin, "staff1", "[\"staff\"]", "3001", OPERATOR_PASSWORD);
    ncct_session_t staff;
    ncct_login(&s_sys, &staff, "staff1", OPERATOR_PASSWORD, NULL);
    r = s_send(&staff, "090-1234-5678", tid, vars, "k9", NULL);
    ncct_expect(&r, 403, NULL, "staff sends");
    ncct_resp_free(&r);
    cr_assert_eq(s_count("SELECT count(*) FROM sms.messages"), 0, "nothing stored");
    /* A flood from one operator: the 4th in a minute is refused. */
    for (int i = 0; i < 3; i++) {
        char key[16];
        snprintf(key, sizeof key, "f%d", i);
        s_send_ok("090-1234-5678", tid, vars, key, NULL);
    }
    r = s_send(&s_op, "090-1234-5678", tid, vars, "f3", NULL);
    ncct_expect(&r, 429, "rate_limited", "flood");
    ncct_resp_free(&r);
    /* ... but a repeat of an earlier request still answers that message. */
    r = s_send(&s_op, "090-1234-5678", tid, vars, "f1", NULL);
    ncct_expect(&r, 201, NULL, "repeat during a flood");
    ncct_resp_free(&r);
    cr_assert_eq(s_count("SELECT count(*) FROM sms.messages"), 3);
    ncct_system_stop_all(&s_sys);
}

Test(sms, opt_outs_quiet_hours_and_expiry_are_honoured)
{
    ncct_smsc_options_t o = {.receipt_delay_ms = 10};
    /* Quiet all day, messages expire after 3 s. */
    s_start_smpp(&o, (const char *[]){"NCC_SMS_QUIET_START=0", "NCC_SMS_QUIET_END=24",
                                      "NCC_SMS_EXPIRY_S=3", NULL});
    int64_t tid = s_template("t", "お知らせ {x}");
    const char *vars = "[{\"name\":\"x\",\"value\":\"1\"}]";
    int64_t quiet = s_send_ok("090-1111-0001", tid, vars, "q1", NULL);
    int64_t urgent = s_send_ok("090-1111-0002", tid, vars, "q2", "\"urgent\":true");
    int64_t later = s_send_ok("090-1111-0003", tid, vars, "q3", NULL);
    s_expect_status(urgent, "delivered", 10000);
    /* Opt-out: the queued message to that number fails, a new one is refused. */
    ncct_resp_t r = ncct_request(&s_sys, &s_op, "POST", "/api/v1/sms/opt-outs",
                                 "{\"to\":\"09011110003\",\"reason\":\"電話で依頼\"}", NULL);
    ncct_expect(&r, 200, NULL, "opt out");
    cr_assert_eq(s_int(r.json, "cancelled"), 1, "%s", r.body);
    ncct_resp_free(&r);
    s_expect_status(later, "failed", 1000);
    r = s_send(&s_op, "+819011110003", tid, vars, "q4", "\"urgent\":true");
    ncct_expect(&r, 422, "opted_out", "opted out");
    ncct_resp_free(&r);
    /* The quiet one never went, and expired. */
    s_expect_status(quiet, "expired", 10000);
    cr_assert_eq(ncct_smsc_submits(s_smsc), 1, "only the urgent one was sent");
    cr_assert_eq(s_count("SELECT count(*) FROM sms.opt_outs WHERE to_enc LIKE 'v1:%'"), 1);
    ncct_system_stop_all(&s_sys);
}

Test(sms, smpp_throttling_disconnects_refused_binds_and_duplicate_receipts)
{
    ncct_smsc_options_t o = {.receipt_delay_ms = 200,
                             .throttle_every = 4,
                             .undeliverable_suffix = "9999",
                             .duplicate_receipts = true};
    /* A submit written as the SMSC drops the connection may or may not have
     * been taken: uncertain; here it goes again when no receipt came in 2 s. */
    s_start_smpp(&o,
                 (const char *[]){"NCC_SMS_SMPP_ENQUIRE_S=1", "NCC_SMS_RATE_PER_SECOND=20",
                                  "NCC_SMS_OPERATOR_PER_MINUTE=1000", "NCC_SMS_UNCERTAIN_WAIT_S=2",
                                  "NCC_SMS_UNCERTAIN_RESUBMIT=1", NULL});
    int64_t tid = s_template("t", "Notice {x}");
    int64_t ids[30];
    for (int i = 0; i < 30; i++) {
        char key[16], to[32], vars[64];
        snprintf(key, sizeof key, "m%d", i);
        snprintf(to, sizeof to, "0901234%04d", i == 7 ? 9999 : i);
        snprintf(vars, sizeof vars, "[{\"name\":\"x\",\"value\":\"%d\"}]", i);
        ids[i] = s_send_ok(to, tid, vars, key, "\"urgent\":false");
        if (i == 10)
            ncct_smsc_drop_connections(s_smsc);
        if (i == 15)
            ncct_smsc_refuse_binds(s_smsc, true);
        if (i == 17)
            ncct_smsc_drop_connections(s_smsc);
        if (i == 22)
            ncct_smsc_refuse_binds(s_smsc, false);
    }
    for (int i = 0; i < 30; i++)
        s_expect_status(ids[i], i == 7 ? "failed" : "delivered", 30000);
    cr_assert_gt(ncct_smsc_throttled(s_smsc), 0, "the SMSC throttled");
    cr_assert_geq(ncct_smsc_binds(s_smsc), 2, "reconnected after the drops");
    cr_assert_gt(ncct_smsc_enquires(s_smsc), 0, "enquire_link was sent");
    /* Each message ended once; receipts came twice and were taken once. */
    cr_assert_eq(s_count("SELECT count(*) FROM sms.message_events WHERE final"), 30);
    cr_assert_eq(s_count("SELECT count(DISTINCT message_id) FROM sms.message_events WHERE final"),
                 30);
    cr_assert_eq(s_count("SELECT count(*) FROM sms.messages WHERE status = 'delivered'"), 29);
    cr_assert_geq(ncct_smsc_receipts(s_smsc), 2 * 30, "every receipt was sent twice");
    cr_assert_geq(s_count("SELECT count(*) FROM sms.receipts"), 30);
    cr_assert_gt(s_count("SELECT count(*) FROM sms.messages WHERE attempts > 1"), 0,
                 "some messages needed another attempt");
    cr_assert_gt(s_count("SELECT count(*) FROM sms.message_events WHERE status = 'queued' AND "
                         "detail LIKE '%throttled%'"),
                 0, "throttled parts were retried");
    ncct_system_stop_all(&s_sys);
}

Test(sms, two_copies_share_the_queue_and_send_each_message_once)
{
    ncct_smsc_options_t o = {.receipt_delay_ms = 20};
    s_start_smpp(&o, (const char *[]){"NCC_SMS_OPERATOR_PER_MINUTE=1000",
                                      "NCC_SMS_RATE_PER_SECOND=25", NULL});
    ncct_system_start_copy(&s_sys, "sms", s_sms_env);
    int64_t tid = s_template("t", "Notice {x}");
    int64_t ids[60];
    for (int i = 0; i < 60; i++) {
        char key[16], to[32], vars[64];
        snprintf(key, sizeof key, "c%d", i);
        snprintf(to, sizeof to, "0807777%04d", i);
        snprintf(vars, sizeof vars, "[{\"name\":\"x\",\"value\":\"%d\"}]", i);
        ids[i] = s_send_ok(to, tid, vars, key, NULL);
    }
    for (int i = 0; i < 60; i++)
        s_expect_status(ids[i], "delivered", 20000);
    cr_assert_eq(ncct_smsc_binds(s_smsc), 2, "both copies bound");
    cr_assert_eq(ncct_smsc_submits(s_smsc), 60, "each message submitted once by one copy");
    cr_assert_eq(s_count("SELECT count(*) FROM sms.message_events WHERE final"), 60);
    ncct_system_stop_all(&s_sys);
}

/* ---- answers lost: uncertain submits, orphan receipts -------------------------------------------
 */

/* Waits until `sql` counts `want`; asserts it. */
static void s_wait_count(const char *sql, long want, int timeout_ms, const char *what)
{
    long long deadline = ncct_now_ms() + timeout_ms;
    long got = s_count(sql);
    while (got != want && ncct_now_ms() < deadline) {
        usleep(50 * 1000);
        got = s_count(sql);
    }
    cr_assert_eq(got, want, "%s: %ld, not %ld", what, got, want);
}

static void s_wait_submits(int want, int timeout_ms)
{
    long long deadline = ncct_now_ms() + timeout_ms;
    while (ncct_smsc_submits(s_smsc) < want && ncct_now_ms() < deadline)
        usleep(20 * 1000);
    cr_assert_eq(ncct_smsc_submits(s_smsc), want, "parts the SMSC accepted");
}

/* GET /api/v1/sms/{id}: the error and the history's details, joined. */
static char *s_history_text(int64_t id)
{
    char path[64];
    snprintf(path, sizeof path, "/api/v1/sms/%lld", (long long)id);
    ncct_resp_t r = ncct_request(&s_sys, &s_admin, "GET", path, NULL, NULL);
    ncct_expect(&r, 200, NULL, path);
    char *text = strdup(r.body);
    ncct_resp_free(&r);
    return text;
}

Test(sms, an_answer_lost_with_a_killed_copy_is_reconciled_from_the_receipt_never_submitted_twice)
{
    char dir[96], store[128];
    snprintf(dir, sizeof dir, "/tmp/ncc-test-smsc-%d", (int)getpid());
    snprintf(store, sizeof store, "%s/smsc-store.log", dir);
    unlink(store);
    ncct_smsc_options_t o = {
        .system_id = "ncc", .password = "pw", .receipt_delay_ms = 20, .data_dir = dir};
    s_start_smpp(&o, (const char *[]){"NCC_SMS_LEASE_S=1", NULL});
    /* The SMSC takes and stores the submits, and its answers are lost. */
    ncct_smsc_set_withhold(s_smsc, true);
    int64_t tid = s_template("t", "{x}: 中野区役所からのお知らせです。");
    int64_t a = s_send_ok("090-2222-0001", tid, "[{\"name\":\"x\",\"value\":\"A1\"}]", "u1", NULL);
    char long_vars[1200] = "[{\"name\":\"x\",\"value\":\"";
    for (int i = 0; i < 60; i++)
        strcat(long_vars, "区");
    strcat(long_vars, "\"}]");
    int64_t b = s_send_ok("090-2222-0002", tid, long_vars, "u2", NULL); /* two parts */
    s_wait_submits(3, 10000);
    cr_assert_eq(s_count("SELECT count(*) FROM sms.messages WHERE submit_state = 'submitting' AND "
                         "status = 'queued'"),
                 2, "committed as submitting before they went out");
    /* ncc-sms dies before any answer; the SMSC crashes too (its store stays). */
    ncct_daemon_t *sms = ncct_service(&s_sys, "sms");
    ncct_kill(sms->pid);
    sms->pid = 0;
    int port = ncct_smsc_port(s_smsc);
    ncct_smsc_stop(&s_smsc);
    ncct_system_start(&s_sys, "sms", s_sms_env);
    /* The lease runs out: uncertain, not taken again. */
    s_wait_count("SELECT count(*) FROM sms.messages WHERE submit_state = 'uncertain' AND "
                 "uncertain_at IS NOT NULL AND status = 'queued'",
                 2, 10000, "uncertain messages");
    char *history = s_history_text(a);
    cr_assert(strstr(history, "送信結果不明") && strstr(history, "not sent again"), "%s", history);
    free(history);
    /* The SMSC starts again from its store and sends the receipts it owes:
     * ids ncc-sms never learnt, matched by destination, text and date. */
    o.port = port;
    s_smsc = ncct_smsc_start(&o);
    cr_assert_not_null(s_smsc);
    cr_assert_eq(ncct_smsc_restored(s_smsc), 3, "the SMSC kept the three parts it accepted");
    s_expect_status(a, "delivered", 15000);
    s_expect_status(b, "delivered", 15000);
    cr_assert_eq(ncct_smsc_submits(s_smsc), 0, "nothing was submitted a second time");
    cr_assert_eq(s_count("SELECT count(*) FROM sms.parts"), 3, "each part took the SMSC's id");
    cr_assert_eq(s_count("SELECT count(DISTINCT message_id) FROM sms.message_events WHERE detail "
                         "LIKE 'reconciled:%'"),
                 2);
    cr_assert_eq(s_count("SELECT count(*) FROM sms.receipts WHERE applied"), 3);
    cr_assert_eq(s_count("SELECT count(*) FROM sms.message_events WHERE final"), 2);
    history = s_history_text(b);
    cr_assert(strstr(history, "part 2 of 2") && strstr(history, "送信結果不明"), "%s", history);
    free(history);
    cr_assert_eq(s_count("SELECT count(*) FROM sms.messages WHERE error = ''"), 2,
                 "delivered: the reason of the wait is no longer the message's error");
    ncct_system_stop_all(&s_sys);
    ncct_smsc_stop(&s_smsc);
    unlink(store);
    rmdir(dir);
}

Test(sms,
     an_uncertain_message_without_a_receipt_expires_with_the_reason_and_forged_receipts_do_nothing)
{
    ncct_smsc_options_t o = {.receipt_delay_ms = 20};
    s_start_smpp(&o, (const char *[]){"NCC_SMS_UNCERTAIN_WAIT_S=2", NULL});
    ncct_smsc_set_withhold(s_smsc, true);
    int64_t tid = s_template("t", "{x}: 中野区からのお知らせです。");
    int64_t id = s_send_ok("090-3333-0001", tid, "[{\"name\":\"x\",\"value\":\"U1\"}]", "w1", NULL);
    s_wait_submits(1, 10000);
    /* The connection drops before the answer: uncertain at once. */
    ncct_smsc_drop_connections(s_smsc);
    s_wait_count("SELECT count(*) FROM sms.messages WHERE submit_state = 'uncertain'", 1, 5000,
                 "uncertain");
    /* Orphan receipts that are not its own: the same text to another number,
     * another text to its number. Kept, applied to nothing. */
    long receipts = s_count("SELECT count(*) FROM sms.receipts");
    /* (bound again first: a receipt is only sent over a bound session) */
    for (long long until = ncct_now_ms() + 15000;
         ncct_smsc_binds(s_smsc) < 2 && ncct_now_ms() < until;)
        usleep(20 * 1000);
    ncct_smsc_inject_receipt(s_smsc, "forged1", "819033330002", "U1: 中野区からのお知らせです。",
                             "DELIVRD");
    ncct_smsc_inject_receipt(s_smsc, "forged2", "819033330001", "U2: 中野区からのお知らせです。",
                             "DELIVRD");
    s_wait_count("SELECT count(*) FROM sms.receipts WHERE provider_id LIKE 'forged%' AND NOT "
                 "applied AND to_index IS NOT NULL",
                 2, 10000, "forged receipts kept unapplied");
    cr_assert_eq(s_count("SELECT count(*) FROM sms.receipts"), receipts + 2);
    s_expect_status(id, "expired", 10000);
    char *history = s_history_text(id);
    cr_assert(strstr(history, "\"status\":\"expired\"") && strstr(history, "送信結果不明") &&
                  strstr(history, "may or may not have arrived"),
              "%s", history);
    cr_assert(!strstr(history, "reconciled"), "%s", history);
    free(history);
    cr_assert_geq(ncct_smsc_binds(s_smsc), 2, "bound again after the drop");
    cr_assert_eq(ncct_smsc_submits(s_smsc), 1, "never submitted twice");
    cr_assert_eq(s_count("SELECT count(*) FROM sms.parts"), 0);
    cr_assert_eq(s_count("SELECT count(*) FROM sms.message_events WHERE final"), 1);
    cr_assert_eq(s_count("SELECT count(*) FROM sms.receipts WHERE applied"), 0);
    ncct_system_stop_all(&s_sys);
}

/* ---- the HTTP provider and its signed receipts -------------------------------------------------
 */

static ncct_resp_t s_receipt(const char *form, const char *secret, int64_t t)
{
    char sig[200], header[260];
    cr_assert_eq(ncc_webhook_sign(secret, t, form, strlen(form), sig, sizeof sig), 0);
    snprintf(header, sizeof header, "%s: %s", NCC_WEBHOOK_HEADER_NAME, sig);
    return ncct_request_raw(&s_sys, NULL, "POST", "/api/v1/sms/receipts", form, strlen(form),
                            "application/x-www-form-urlencoded", (const char *[]){header, NULL});
}

Test(sms, http_provider_retries_throttling_and_takes_signed_receipts_once)
{
    ncct_twilio_options_t o = {.account = "AC0123456789abcdef",
                               .token = "tok-secret",
                               .callback_secret = RECEIPT_SECRET,
                               .undeliverable_suffix = "0000",
                               .callback_delay_ms = 100};
    s_twilio = ncct_twilio_start(&o);
    cr_assert_not_null(s_twilio);
    char url[300], callback[200];
    snprintf(url, sizeof url, "NCC_SMS_HTTP_URL=%s", ncct_twilio_url(s_twilio));
    snprintf(callback, sizeof callback,
             "NCC_SMS_HTTP_CALLBACK_URL=http://127.0.0.1:%d/api/v1/sms/receipts",
             s_sys.gateway.http);
    s_start((const char *[]){"NCC_SMS_PROVIDER=http", url, callback,
                             "NCC_SMS_HTTP_ACCOUNT=AC0123456789abcdef",
                             "NCC_SMS_HTTP_TOKEN=tok-secret", "NCC_SMS_QUIET_START=0",
                             "NCC_SMS_QUIET_END=0", "NCC_SMS_RETRY_BASE_MS=100", NULL});
    int64_t tid = s_template("t", "{x}: ご案内");
    /* Throttled twice (429), then accepted: one message, delivered. */
    ncct_twilio_fail_next(s_twilio, 2, 429);
    int64_t a = s_send_ok("090-5555-1234", tid, "[{\"name\":\"x\",\"value\":\"A\"}]", "h1", NULL);
    s_expect_status(a, "delivered", 15000);
    char *body = ncct_twilio_last_body(s_twilio, "+819055551234");
    cr_assert_not_null(body);
    cr_assert_str_eq(body, "A: ご案内");
    free(body);
    cr_assert_eq(ncct_twilio_accepted(s_twilio), 1);
    cr_assert_eq(ncct_twilio_refused(s_twilio), 2);
    /* A server error, then an undeliverable number: failed by its receipt. */
    ncct_twilio_fail_next(s_twilio, 1, 500);
    int64_t b = s_send_ok("090-5555-0000", tid, "[{\"name\":\"x\",\"value\":\"B\"}]", "h2", NULL);
    s_expect_status(b, "failed", 15000);
    char path[64];
    snprintf(path, sizeof path, "/api/v1/sms/%lld", (long long)b);
    ncct_resp_t r = ncct_request(&s_sys, &s_admin, "GET", path, NULL, NULL);
    cr_assert(strstr(ncct_str(r.json, "error"), "30003"), "%s", r.body);
    ncct_resp_free(&r);

    /* Receipts: forged, stale and unsigned ones are refused and store nothing. */
    cr_assert_eq(s_count("SELECT count(*) FROM sms.parts WHERE provider = 'http'"), 2);
    const char *receipts_sql = "SELECT count(*) FROM sms.receipts";
    const char *finals_sql = "SELECT count(*) FROM sms.message_events WHERE final";
    long receipts = s_count(receipts_sql), finals = s_count(finals_sql);
    char form[200];
    snprintf(form, sizeof form, "MessageSid=SMforged&MessageStatus=delivered");
    r = s_receipt(form, "not-the-secret", (int64_t)time(NULL));
    ncct_expect(&r, 401, "invalid_signature", "forged");
    ncct_resp_free(&r);
    r = s_receipt(form, RECEIPT_SECRET, (int64_t)time(NULL) - 400);
    ncct_expect(&r, 401, "invalid_signature", "stale");
    ncct_resp_free(&r);
    r = ncct_request_raw(&s_sys, NULL, "POST", "/api/v1/sms/receipts", form, strlen(form),
                         "application/x-www-form-urlencoded", NULL);
    ncct_expect(&r, 401, "invalid_signature", "unsigned");
    ncct_resp_free(&r);
    cr_assert_eq(s_count(receipts_sql), receipts, "nothing stored from refused receipts");
    /* A genuine receipt replayed is taken once. */
    snprintf(form, sizeof form, "MessageSid=SMunknown0001&MessageStatus=delivered");
    r = s_receipt(form, RECEIPT_SECRET, (int64_t)time(NULL));
    ncct_expect(&r, 200, NULL, "unknown sid: kept for later");
    cr_assert_eq(s_int(r.json, "id"), 0, "%s", r.body);
    ncct_resp_free(&r);
    r = s_receipt(form, RECEIPT_SECRET, (int64_t)time(NULL));
    ncct_expect(&r, 200, NULL, "the same receipt again");
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r.json, "duplicate")), "%s", r.body);
    ncct_resp_free(&r);
    snprintf(form, sizeof form, "MessageSid=SM%%27%%3B&MessageStatus=delivered");
    r = s_receipt(form, RECEIPT_SECRET, (int64_t)time(NULL));
    ncct_expect(&r, 422, "invalid_field", "malformed sid");
    ncct_resp_free(&r);
    snprintf(form, sizeof form, "MessageSid=SMx1&MessageStatus=teleported");
    r = s_receipt(form, RECEIPT_SECRET, (int64_t)time(NULL));
    ncct_expect(&r, 422, "invalid_field", "unknown status");
    ncct_resp_free(&r);
    cr_assert_eq(s_count(finals_sql), finals, "no message changed twice");
    /* The peer's own callbacks were all answered 2xx, duplicates included. */
    cr_assert_geq(ncct_twilio_callbacks(s_twilio), 4);
    ncct_system_stop_all(&s_sys);
}

/* ---- surveys ----------------------------------------------------------------------------------
 */

/* The token in the SMS text of message id (as GET /api/v1/sms/{id} shows it). */
static void s_token_of(int64_t id, char token[65])
{
    char path[64];
    snprintf(path, sizeof path, "/api/v1/sms/%lld", (long long)id);
    ncct_resp_t r = ncct_request(&s_sys, &s_admin, "GET", path, NULL, NULL);
    ncct_expect(&r, 200, NULL, path);
    const char *body = ncct_str(r.json, "body");
    const char *p = body ? strstr(body, "/s/") : NULL;
    cr_assert_not_null(p, "%s", r.body);
    snprintf(token, 65, "%.64s", p + 3);
    ncct_resp_free(&r);
}

static ncct_resp_t s_answer(const char *token, const char *form)
{
    char path[100];
    snprintf(path, sizeof path, "/s/%s", token);
    return ncct_request_raw(&s_sys, NULL, "POST", path, form, strlen(form),
                            "application/x-www-form-urlencoded", NULL);
}

Test(sms, a_survey_link_is_answered_once_and_linked_to_the_record)
{
    s_start((const char *[]){"NCC_SMS_PROVIDER=none",
                             "NCC_SMS_SURVEY_BASE_URL=https://ward.example", NULL});
    int64_t tid =
        s_template("アンケート", "本日はお問い合わせありがとうございました。{survey_url}");
    int64_t id = s_send_ok("090-7777-1234", tid, "[]", "sv1", "\"record_id\":77");
    char token[65];
    s_token_of(id, token);
    cr_assert_eq(strlen(token), 64);
    cr_assert_eq(s_count("SELECT count(*) FROM sms.surveys WHERE token_hash = "
                         "encode(sha256(convert_to(token_hash, 'UTF8')), 'hex')"),
                 0, "the token itself is not stored");
    char path[100];
    snprintf(path, sizeof path, "/s/%s", token);
    ncct_resp_t r = ncct_request(&s_sys, NULL, "GET", path, NULL, NULL);
    ncct_expect(&r, 200, NULL, "survey page");
    cr_assert(strstr(r.body, "name=\"satisfaction\"") && strstr(r.body, "name=\"resolved\"") &&
                  strstr(r.body, "<textarea") && strstr(r.body, "viewport"),
              "%s", r.body);
    ncct_resp_free(&r);
    /* Bad answers: the form again with a message. */
    r = s_answer(token, "satisfaction=9&resolved=yes");
    ncct_expect(&r, 422, NULL, "satisfaction 9");
    ncct_resp_free(&r);
    r = s_answer(token, "satisfaction=4&resolved=yes&comment=%E4%B8%81%E5%AF%A7%3Cb%3E");
    cr_assert_eq(r.status, 303, "%s", r.body);
    ncct_resp_free(&r);
    r = s_answer(token, "satisfaction=1&resolved=no");
    ncct_expect(&r, 409, NULL, "second answer");
    ncct_resp_free(&r);
    cr_assert_eq(s_count("SELECT count(*) FROM sms.outbox WHERE type = 'ncc.sms.SurveyAnswered'"),
                 1, "one answer, one event for the reports");
    r = ncct_request(&s_sys, NULL, "GET", path, NULL, NULL);
    cr_assert(strstr(r.body, "ありがとうございました"), "%s", r.body);
    ncct_resp_free(&r);
    /* Guessed or malformed tokens. */
    char guessed[100];
    snprintf(guessed, sizeof guessed, "/s/%.63s%c", token, token[63] == '0' ? '1' : '0');
    r = ncct_request(&s_sys, NULL, "GET", guessed, NULL, NULL);
    ncct_expect(&r, 404, NULL, "guessed");
    ncct_resp_free(&r);
    r = ncct_request(&s_sys, NULL, "GET", "/s/../etc/passwd", NULL, NULL);
    cr_assert_eq(r.status, 404);
    ncct_resp_free(&r);
    /* The answer is on the record's SMS. */
    r = ncct_request(&s_sys, &s_op, "GET", "/api/v1/sms?record_id=77", NULL, NULL);
    cJSON *survey = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r.json, "items"), 0), "survey");
    cr_assert_not_null(survey, "%s", r.body);
    cr_assert_str_eq(ncct_str(survey, "state"), "answered");
    cr_assert_eq(s_int(survey, "satisfaction"), 4);
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(survey, "resolved")));
    cr_assert_str_eq(ncct_str(survey, "comment"), "丁寧<b>");
    ncct_resp_free(&r);
    /* An expired one. */
    int64_t id2 = s_send_ok("090-7777-1235", tid, "[]", "sv2", NULL);
    s_token_of(id2, token);
    char sql[200];
    snprintf(sql, sizeof sql,
             "WITH u AS (UPDATE sms.surveys SET expires_at = now() - interval '1 s' WHERE "
             "message_id = %lld RETURNING 1) SELECT count(*) FROM u",
             (long long)id2);
    cr_assert_eq(s_count(sql), 1);
    r = s_answer(token, "satisfaction=5&resolved=yes");
    ncct_expect(&r, 410, NULL, "expired");
    ncct_resp_free(&r);
    ncct_system_stop_all(&s_sys);
}
