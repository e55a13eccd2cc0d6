/* survey: the residents' satisfaction survey pages and the SMS provider's
 * signed status callbacks (survey.h, docs/sms.md). Plain HTML, escaped, no
 * script or inline style (the CSP forbids them), one style sheet. */
#include "survey.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth.h"
#include "ncc/json.h"
#include "ncc/log.h"
#include "ncc/webhook.h"
#include "page.h"
#include "sms.pb-c.h"

#define S_HTML          "text/html; charset=utf-8"
#define S_MAX_SECRETS   4
#define S_SECRET_MAX    256
#define S_RECEIPT_BYTES 16384
#define S_ANSWER_BYTES  8192

static struct {
    char values[S_MAX_SECRETS][S_SECRET_MAX];
    size_t count;
    bool read;
} s_secrets;

static void s_read_secrets(void)
{
    if (s_secrets.read)
        return;
    s_secrets.read = true;
    const char *list = getenv("NCC_SMS_RECEIPT_SECRET");
    for (const char *p = list; p && *p && s_secrets.count < S_MAX_SECRETS;) {
        size_t len = strcspn(p, ",");
        if (len > 0 && len < S_SECRET_MAX) {
            memcpy(s_secrets.values[s_secrets.count], p, len);
            s_secrets.values[s_secrets.count++][len] = '\0';
        }
        p += len + (p[len] == ',');
    }
    if (s_secrets.count == 0)
        ncc_warn("sms.receipts_off", "NCC_SMS_RECEIPT_SECRET is not set: the SMS provider's "
                                     "receipts are refused (503)");
}

/* ---- pages ------------------------------------------------------------------------------ */

static void s_head(gw_page_t *p)
{
    gw_page_puts(p, "<!DOCTYPE html>\n<html lang=\"ja\">\n<head>\n<meta charset=\"utf-8\">\n"
                    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                    "<meta name=\"robots\" content=\"noindex\">\n"
                    "<title>アンケート | 中野区コンタクトセンター</title>\n"
                    "<link rel=\"stylesheet\" href=\"/css/survey.css\">\n</head>\n<body>\n"
                    "<header><p>中野区コンタクトセンター アンケート</p></header>\n<main>\n");
}

static int s_message_page(struct mg_connection *conn, int status, const char *cls,
                          const char *message)
{
    gw_page_t p = {0};
    s_head(&p);
    gw_page_puts(&p, "<p class=\"");
    gw_page_puts(&p, cls);
    gw_page_puts(&p, "\" role=\"");
    gw_page_puts(&p, status < 400 ? "status" : "alert");
    gw_page_puts(&p, "\">");
    gw_page_text(&p, message, GW_PAGE_NL_KEEP);
    gw_page_puts(&p, "</p>\n");
    return gw_page_send(conn, status, &p, NULL, NULL);
}

static int s_form_page(struct mg_connection *conn, const char *token, int status, const char *error)
{
    gw_page_t p = {0};
    s_head(&p);
    gw_page_puts(
        &p, "<h1>お問い合わせについてのアンケート</h1>\n"
            "<p>"
            "先日はお問い合わせありがとうございました。よろしければ3つの質問にお答えください（1"
            "分ほどです）。</p>\n");
    if (error) {
        gw_page_puts(&p, "<p class=\"error\" role=\"alert\">");
        gw_page_text(&p, error, GW_PAGE_NL_KEEP);
        gw_page_puts(&p, "</p>\n");
    }
    gw_page_puts(&p, "<form method=\"post\" action=\"/s/");
    gw_page_text(&p, token, GW_PAGE_NL_KEEP);
    gw_page_puts(&p, "\">\n<fieldset>\n<legend>1. 対応の満足度</legend>\n");
    static const char *const labels[] = {"",         "1 とても不満", "2 不満",
                                         "3 ふつう", "4 満足",       "5 とても満足"};
    for (int i = 5; i >= 1; i--) {
        char line[200];
        snprintf(line, sizeof line,
                 "<label><input type=\"radio\" name=\"satisfaction\" value=\"%d\" required>%s"
                 "</label>\n",
                 i, labels[i]);
        gw_page_puts(&p, line);
    }
    gw_page_puts(&p,
                 "</fieldset>\n<fieldset>\n<legend>2. お困りごとは解決しましたか</legend>\n"
                 "<label><input type=\"radio\" name=\"resolved\" value=\"yes\" required>解決した"
                 "</label>\n"
                 "<label><input type=\"radio\" name=\"resolved\" value=\"no\">解決していない"
                 "</label>\n</fieldset>\n"
                 "<label for=\"comment\">3. ご意見・ご感想（任意、1000文字まで）</label>\n"
                 "<textarea id=\"comment\" name=\"comment\" maxlength=\"1000\"></textarea>\n"
                 "<p><button type=\"submit\">送信する</button></p>\n</form>\n"
                 "<p>回答は1回のみです。個人を特定する情報は書かないでください。</p>\n");
    return gw_page_send(conn, status, &p, NULL, NULL);
}

/* ---- the bus ------------------------------------------------------------------------------ */

/* One request to ncc-sms. 0 with *ret_message (caller frees), or the status
 * of the Error reply (>= 400, its code into code), or 503. */
static int s_call(gw_api_t *api, gw_request_t *req, const ncc_ctx_t *ctx,
                  const ProtobufCMessage *request, const ProtobufCMessageDescriptor *reply_type,
                  ProtobufCMessage **ret_message, Ncc__Envelope **ret_error)
{
    *ret_message = NULL;
    Ncc__Envelope *reply = NULL;
    if (gw_api_rpc(api, req, "sms", ctx, request, &reply) < 0)
        return 503;
    int rc;
    if (reply->type && strcmp(reply->type, ncc__error__descriptor.name) == 0) {
        Ncc__Error *error = ncc__error__unpack(NULL, reply->payload.len, reply->payload.data);
        rc = error && error->has_status && error->status >= 400 ? error->status : 502;
        if (error)
            ncc__error__free_unpacked(error, NULL);
        if (ret_error) {
            *ret_error = reply;
            return rc;
        }
    } else if (reply->type && strcmp(reply->type, reply_type->name) == 0) {
        *ret_message =
            protobuf_c_message_unpack(reply_type, NULL, reply->payload.len, reply->payload.data);
        rc = *ret_message ? 0 : 502;
    } else {
        rc = 502;
    }
    ncc__envelope__free_unpacked(reply, NULL);
    return rc;
}

/* ---- /s/{token} ----------------------------------------------------------------------------- */

static int s_show(gw_api_t *api, gw_request_t *req, const char *token)
{
    Ncc__Sms__GetSurvey m = NCC__SMS__GET_SURVEY__INIT;
    m.token = (char *)token;
    ncc_ctx_t ctx = {.trace_id = req->thread->trace_id, .actor_address = req->address};
    ProtobufCMessage *answer = NULL;
    int rc = s_call(api, req, &ctx, &m.base, &ncc__sms__survey__descriptor, &answer, NULL);
    if (rc == 404)
        return s_message_page(
            req->conn, 404, "error",
            "このアンケートは見つかりませんでした。SMSのリンクをもう一度ご確認ください。");
    if (rc != 0)
        return s_message_page(req->conn, 503, "error",
                              "ただいま表示できません。しばらくしてからもう一度お試しください。");
    const Ncc__Sms__Survey *survey = (const Ncc__Sms__Survey *)answer;
    int status;
    if (strcmp(survey->state, "answered") == 0)
        status = s_message_page(req->conn, 200, "thanks",
                                "ご回答ありがとうございました。今後の参考にさせていただきます。");
    else if (strcmp(survey->state, "expired") == 0)
        status =
            s_message_page(req->conn, 410, "error",
                           "このアンケートの回答期限は過ぎました。ご協力ありがとうございました。");
    else
        status = s_form_page(req->conn, token, 200, NULL);
    protobuf_c_message_free_unpacked(answer, NULL);
    return status;
}

static int s_answer(gw_api_t *api, gw_request_t *req, const char *token)
{
    struct mg_connection *conn = req->conn;
    if (!gw_auth_origin_ok(req))
        return s_message_page(conn, 403, "error", "このページからは送信できません。");
    char *body = NULL;
    size_t len = 0;
    if (gw_http_read_body(conn, S_ANSWER_BYTES, &body, &len) < 0) {
        mg_disable_connection_keep_alive(conn);
        return s_message_page(conn, 413, "error", "送信内容が長すぎます。");
    }
    char satisfaction[8] = "", resolved[8] = "", comment[4100] = "";
    mg_get_var(body, len, "satisfaction", satisfaction, sizeof satisfaction);
    mg_get_var(body, len, "resolved", resolved, sizeof resolved);
    int n = mg_get_var(body, len, "comment", comment, sizeof comment);
    free(body);
    if (n == -3)
        return s_form_page(conn, token, 422, "ご意見は1000文字までです。");
    long sat = strtol(satisfaction, NULL, 10);
    bool yes = strcmp(resolved, "yes") == 0, no = strcmp(resolved, "no") == 0;
    if (sat < 1 || sat > 5 || strlen(satisfaction) != 1 || (!yes && !no))
        return s_form_page(conn, token, 422, "1と2の質問にお答えください。");
    Ncc__Sms__AnswerSurvey m = NCC__SMS__ANSWER_SURVEY__INIT;
    m.token = (char *)token;
    m.has_satisfaction = m.has_resolved = true;
    m.satisfaction = (int32_t)sat;
    m.resolved = yes;
    m.comment = comment;
    ncc_ctx_t ctx = {.trace_id = req->thread->trace_id, .actor_address = req->address};
    ProtobufCMessage *answer = NULL;
    int rc = s_call(api, req, &ctx, &m.base, &ncc__sms__survey__descriptor, &answer, NULL);
    protobuf_c_message_free_unpacked(answer, NULL);
    switch (rc) {
    case 0: {
        char location[100];
        snprintf(location, sizeof location, "/s/%s", token);
        return gw_http_send(conn, 303, S_HTML, "", 0, "Location", location);
    }
    case 404:
        return s_message_page(conn, 404, "error", "このアンケートは見つかりませんでした。");
    case 409:
        return s_message_page(
            conn, 409, "error",
            "このアンケートにはすでに回答いただいています（回答は1回のみです）。");
    case 410:
        return s_message_page(conn, 410, "error", "このアンケートの回答期限は過ぎました。");
    case 422:
        return s_form_page(conn, token, 422, "ご意見が長すぎるか、使えない文字が含まれています。");
    default:
        return s_message_page(
            conn, 503, "error",
            "ただいま受け付けられません。しばらくしてからもう一度お試しください。");
    }
}

static int s_survey(struct mg_connection *conn, void *cbdata)
{
    gw_api_t *api = cbdata;
    gw_request_t req = {
        .conn = conn, .info = mg_get_request_info(conn), .thread = gw_thread_of(conn)};
    if (!req.thread)
        return gw_http_send_error(conn, 500, "internal", NULL, "worker thread not initialised");
    gw_auth_client(&req, gw_api_trusted_proxies(api));
    const char *path = req.info->local_uri;
    const char *method = req.info->request_method;
    /* /s/<64 hex>: anything else is no survey (and never reaches the service). */
    const char *token = strncmp(path, "/s/", 3) == 0 ? path + 3 : "";
    if (strlen(token) != 64 || strspn(token, "0123456789abcdef") != 64)
        return s_message_page(
            conn, 404, "error",
            "このアンケートは見つかりませんでした。SMSのリンクをもう一度ご確認ください。");
    if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)
        return s_show(api, &req, token);
    if (strcmp(method, "POST") == 0)
        return s_answer(api, &req, token);
    return gw_http_send(conn, 405, S_HTML, "", 0, "Allow", "GET, HEAD, POST");
}

/* ---- POST /api/v1/sms/receipts ------------------------------------------------------------ */

static bool s_is_form(const char *content_type)
{
    return content_type && strncasecmp(content_type, "application/x-www-form-urlencoded", 33) == 0;
}

static int s_receipts(struct mg_connection *conn, void *cbdata)
{
    gw_api_t *api = cbdata;
    gw_request_t req = {
        .conn = conn, .info = mg_get_request_info(conn), .thread = gw_thread_of(conn)};
    if (!req.thread)
        return gw_http_send_error(conn, 500, "internal", NULL, "worker thread not initialised");
    gw_auth_client(&req, gw_api_trusted_proxies(api));
    if (strcmp(req.info->request_method, "POST") != 0) {
        static const char body[] = "{\"error\":{\"code\":\"method_not_allowed\","
                                   "\"message\":\"this endpoint does not take that method\"}}";
        return gw_http_send(conn, 405, GW_JSON_TYPE, body, sizeof body - 1, "Allow", "POST");
    }
    if (s_secrets.count == 0)
        return gw_http_send_error(conn, 503, "service_unavailable", NULL,
                                  "the SMS receipts are off: NCC_SMS_RECEIPT_SECRET is not set");
    char *body = NULL;
    size_t len = 0;
    int rc = gw_http_read_body(conn, S_RECEIPT_BYTES, &body, &len);
    if (rc < 0) {
        mg_disable_connection_keep_alive(conn);
        return rc == -EFBIG
                   ? gw_http_send_error(conn, 413, "too_large", NULL,
                                        "the request body is larger than %d bytes", S_RECEIPT_BYTES)
                   : gw_http_send_error(conn, 400, "invalid_body", NULL,
                                        "the request body could not be read");
    }
    const char *secrets[S_MAX_SECRETS];
    for (size_t i = 0; i < s_secrets.count; i++)
        secrets[i] = s_secrets.values[i];
    rc = ncc_webhook_verify(mg_get_header(conn, NCC_WEBHOOK_HEADER_NAME), body, len, secrets,
                            s_secrets.count, (int64_t)time(NULL), NCC_WEBHOOK_TOLERANCE_S);
    if (rc < 0) {
        const char *why = rc == -EBADMSG  ? "the X-NCC-Signature header is missing or malformed"
                          : rc == -ESTALE ? "the signature's time is more than 5 minutes away"
                                          : "the signature does not match";
        ncc_warn("auth.signature_refused", "POST /api/v1/sms/receipts from %s: %s",
                 req.address[0] ? req.address : "an unknown address", why);
        free(body);
        return gw_http_send_error(conn, rc == -EIO ? 500 : 401,
                                  rc == -EIO ? "internal" : "invalid_signature", NULL, "%s", why);
    }
    char sid[80] = "", state[40] = "", code[40] = "";
    if (s_is_form(mg_get_header(conn, "Content-Type"))) {
        mg_get_var(body, len, "MessageSid", sid, sizeof sid);
        mg_get_var(body, len, "MessageStatus", state, sizeof state);
        mg_get_var(body, len, "ErrorCode", code, sizeof code);
    } else {
        cJSON *json = cJSON_ParseWithLength(body, len);
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(json, "message_sid");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(json, "message_status");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(json, "error_code");
        if (cJSON_IsString(s))
            snprintf(sid, sizeof sid, "%s", s->valuestring);
        if (cJSON_IsString(t))
            snprintf(state, sizeof state, "%s", t->valuestring);
        if (cJSON_IsString(c))
            snprintf(code, sizeof code, "%s", c->valuestring);
        bool parsed = json != NULL;
        cJSON_Delete(json);
        if (!parsed) {
            free(body);
            return gw_http_send_error(conn, 400, "invalid_json", NULL,
                                      "the body is neither a form nor JSON");
        }
    }
    free(body);
    Ncc__Sms__Receipt m = NCC__SMS__RECEIPT__INIT;
    m.message_sid = sid;
    m.message_status = state;
    m.error_code = code;
    ncc_ctx_t ctx = {.trace_id = req.thread->trace_id,
                     .actor_id = "sms-provider",
                     .actor_role = "system",
                     .actor_address = req.address};
    ProtobufCMessage *answer = NULL;
    Ncc__Envelope *error = NULL;
    rc = s_call(api, &req, &ctx, &m.base, &ncc__sms__receipt_ack__descriptor, &answer, &error);
    if (error) {
        int status = gw_api_send_error_reply(&req, "sms", error);
        ncc__envelope__free_unpacked(error, NULL);
        return status;
    }
    if (rc != 0)
        return gw_http_send_error(conn, 503, "service_unavailable", NULL,
                                  "the sms service did not answer");
    char *text = ncc_pb_to_json_text(answer);
    protobuf_c_message_free_unpacked(answer, NULL);
    if (!text)
        return gw_http_send_error(conn, 500, "internal", NULL, "out of memory");
    int status = gw_http_send(conn, 200, GW_JSON_TYPE, text, strlen(text), NULL, NULL);
    free(text);
    return status;
}

void gw_survey_register(struct mg_context *ctx, gw_api_t *api)
{
    s_read_secrets();
    mg_set_request_handler(ctx, "/s", s_survey, api);
    mg_set_request_handler(ctx, "/api/v1/sms/receipts", s_receipts, api);
}
