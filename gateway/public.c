/* public: the residents' FAQ pages (R50, docs/faq.md): /faq (search box and
 * list), /faq/{number} (one FAQ with its view count and the helpful / not
 * helpful votes) and POST /faq/{number}/vote (a plain form, so a page works
 * without JavaScript on an old phone). Plain HTML, escaped, no inline script
 * or style (the CSP forbids them), one small style sheet. Published public
 * FAQs only: ncc-faq's public messages decide. The voter is a random id the
 * browser keeps in a cookie; ncc-faq counts one vote per voter and FAQ and
 * limits votes per address. */
#include "public.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "faq.pb-c.h"
#include "ncc/crypto.h"
#include "page.h"

#define S_HTML      "text/html; charset=utf-8"
#define S_PER_PAGE  20
#define S_VOTER     "ncc_faq_voter"
#define S_QUERY_MAX 1000

static void s_head(gw_page_t *p, const char *title)
{
    gw_page_puts(p, "<!DOCTYPE html>\n<html lang=\"ja\">\n<head>\n<meta charset=\"utf-8\">\n"
                    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                    "<title>");
    gw_page_text(p, title, GW_PAGE_NL_SPACE);
    gw_page_addf(
        p, "</title>\n<link rel=\"stylesheet\" href=\"/css/faq-public.css\">\n</head>\n<body>\n"
           "<header><p class=\"site\"><a href=\"/faq\">よくある質問（FAQ）</a></p></header>\n"
           "<main>\n");
}

static void s_search_form(gw_page_t *p, const char *q)
{
    gw_page_addf(p,
                 "<form action=\"/faq\" method=\"get\" role=\"search\">\n"
                 "<label for=\"q\">キーワードまたはFAQ番号</label>\n"
                 "<input id=\"q\" name=\"q\" type=\"search\" maxlength=\"%d\" value=\"",
                 S_QUERY_MAX);
    gw_page_text(p, q, GW_PAGE_NL_SPACE);
    gw_page_puts(p, "\">\n<button type=\"submit\">検索</button>\n</form>\n");
}

static int s_error_page(struct mg_connection *conn, int status, const char *message)
{
    gw_page_t p = {0};
    s_head(&p, "よくある質問");
    gw_page_puts(&p, "<p class=\"error\" role=\"alert\">");
    gw_page_text(&p, message, GW_PAGE_NL_SPACE);
    gw_page_puts(&p, "</p>\n<p><a href=\"/faq\">よくある質問の一覧へ</a></p>\n");
    return gw_page_send(conn, status, &p, NULL, NULL);
}

/* One request to ncc-faq from the resident's address. 0 with *ret_message
 * (caller frees), or the status of the Error reply (>= 400), or -errno. */
static int s_call(gw_api_t *api, gw_request_t *req, const ProtobufCMessage *request,
                  const ProtobufCMessageDescriptor *reply_type, ProtobufCMessage **ret_message)
{
    *ret_message = NULL;
    ncc_ctx_t ctx = {.trace_id = req->thread->trace_id, .actor_address = req->address};
    Ncc__Envelope *reply = NULL;
    int rc = gw_api_rpc(api, req, "faq", &ctx, request, &reply);
    if (rc < 0)
        return rc;
    if (reply->type && strcmp(reply->type, ncc__error__descriptor.name) == 0) {
        Ncc__Error *error = ncc__error__unpack(NULL, reply->payload.len, reply->payload.data);
        rc = error && error->has_status && error->status >= 400 ? error->status : 502;
        if (error)
            ncc__error__free_unpacked(error, NULL);
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

static int s_bus_failure(struct mg_connection *conn, int rc)
{
    if (rc == 404)
        return s_error_page(conn, 404, "このFAQは見つかりませんでした。");
    if (rc == 422)
        return s_error_page(conn, 422,
                            "検索語が長すぎるか、使えない文字が含まれています（1000文字まで）。");
    if (rc == 429)
        return s_error_page(conn, 429,
                            "操作が多すぎます。しばらくしてからもう一度お試しください。");
    return s_error_page(conn, 503,
                        "ただいま表示できません。しばらくしてからもう一度お試しください。");
}

/* The voter id from the cookie into buf, or "". */
static void s_voter(struct mg_connection *conn, char *buf, size_t len)
{
    buf[0] = '\0';
    const char *cookies = mg_get_header(conn, "Cookie");
    if (!cookies || mg_get_cookie(cookies, S_VOTER, buf, len) <= 0)
        buf[0] = '\0';
}

/* GET /faq?q=&page= */
static int s_list(gw_api_t *api, gw_request_t *req)
{
    struct mg_connection *conn = req->conn;
    const char *qs = req->info->query_string;
    char q[S_QUERY_MAX * 4 + 8] = "", page_text[16] = "";
    if (qs) {
        int n = mg_get_var(qs, strlen(qs), "q", q, sizeof q);
        if (n == -3)
            return s_bus_failure(conn, 422);
        if (n < 0)
            q[0] = '\0';
        if (mg_get_var(qs, strlen(qs), "page", page_text, sizeof page_text) < 0)
            page_text[0] = '\0';
    }
    long page = strtol(page_text, NULL, 10);
    if (page < 1 || page > 10000)
        page = 1;
    Ncc__Faq__PublicListFaqs m = NCC__FAQ__PUBLIC_LIST_FAQS__INIT;
    m.q = q;
    m.has_page = m.has_per_page = true;
    m.page = (int32_t)page;
    m.per_page = S_PER_PAGE;
    ProtobufCMessage *answer = NULL;
    int rc = s_call(api, req, &m.base, &ncc__faq__faq_list__descriptor, &answer);
    if (rc != 0)
        return s_bus_failure(conn, rc);
    const Ncc__Faq__FaqList *list = (const Ncc__Faq__FaqList *)answer;
    gw_page_t p = {0};
    s_head(&p, q[0] ? "検索結果 | よくある質問" : "よくある質問");
    gw_page_puts(&p, "<h1>よくある質問</h1>\n");
    s_search_form(&p, q);
    if (q[0]) {
        gw_page_puts(&p, "<p class=\"count\" role=\"status\">「");
        gw_page_text(&p, q, GW_PAGE_NL_SPACE);
        gw_page_addf(&p, "」の検索結果: %" PRId64 "件</p>\n", list->total);
    } else {
        gw_page_addf(&p, "<p class=\"count\">%" PRId64 "件のよくある質問</p>\n", list->total);
    }
    if (list->n_items == 0 && q[0])
        gw_page_puts(&p, "<p>見つかりませんでした。別の言葉でお試しください。</p>\n");
    gw_page_puts(&p, "<ol class=\"faqs\">\n");
    for (size_t i = 0; i < list->n_items; i++) {
        gw_page_addf(&p, "<li><a href=\"/faq/%" PRId64 "\">", list->items[i]->number);
        gw_page_text(&p, list->items[i]->question, GW_PAGE_NL_SPACE);
        gw_page_addf(&p, "</a> <span class=\"number\">No.%" PRId64 "</span></li>\n",
                     list->items[i]->number);
    }
    gw_page_add(&p, "</ol>\n", 6);
    int64_t pages = (list->total + S_PER_PAGE - 1) / S_PER_PAGE;
    if (pages > 1) {
        char *escaped = NULL;
        if (q[0]) {
            size_t cap = strlen(q) * 3 + 1;
            escaped = malloc(cap);
            if (escaped)
                mg_url_encode(q, escaped, cap);
        }
        gw_page_puts(&p, "<nav class=\"pages\" aria-label=\"ページ\">");
        if (page > 1)
            gw_page_addf(&p, "<a href=\"/faq?page=%ld%s%s\">前へ</a> ", page - 1,
                         escaped ? "&amp;q=" : "", escaped ? escaped : "");
        gw_page_addf(&p, "%ld / %" PRId64, page, pages);
        if (page < pages)
            gw_page_addf(&p, " <a href=\"/faq?page=%ld%s%s\">次へ</a>", page + 1,
                         escaped ? "&amp;q=" : "", escaped ? escaped : "");
        gw_page_add(&p, "</nav>\n", 7);
        free(escaped);
    }
    protobuf_c_message_free_unpacked(answer, NULL);
    return gw_page_send(conn, 200, &p, NULL, NULL);
}

/* GET /faq/{number}: counts a view; gives the browser a voter id. */
static int s_show(gw_api_t *api, gw_request_t *req, int64_t number)
{
    struct mg_connection *conn = req->conn;
    Ncc__Faq__PublicGetFaq m = NCC__FAQ__PUBLIC_GET_FAQ__INIT;
    m.has_number = m.has_count_view = true;
    m.number = number;
    m.count_view = true;
    ProtobufCMessage *answer = NULL;
    int rc = s_call(api, req, &m.base, &ncc__faq__faq__descriptor, &answer);
    if (rc != 0)
        return s_bus_failure(conn, rc);
    const Ncc__Faq__Faq *faq = (const Ncc__Faq__Faq *)answer;
    gw_page_t p = {0};
    s_head(&p, faq->question);
    gw_page_addf(&p, "<article>\n<p class=\"number\">FAQ No.%" PRId64 "</p>\n<h1>", faq->number);
    gw_page_text(&p, faq->question, GW_PAGE_NL_SPACE);
    gw_page_puts(&p, "</h1>\n<div class=\"answer\">\n");
    gw_page_text(&p, faq->answer, GW_PAGE_NL_BR);
    gw_page_add(&p, "\n</div>\n", 8);
    if (faq->department_name) {
        gw_page_puts(&p, "<p class=\"department\">担当: ");
        gw_page_text(&p, faq->department_name, GW_PAGE_NL_SPACE);
        gw_page_add(&p, "</p>\n", 5);
    }
    gw_page_addf(&p, "<p class=\"views\">閲覧数 %" PRId64 "回</p>\n</article>\n", faq->views);
    const char *qs = req->info->query_string;
    char voted[16] = "";
    if (qs && mg_get_var(qs, strlen(qs), "voted", voted, sizeof voted) < 0)
        voted[0] = '\0';
    if (strcmp(voted, "1") == 0)
        gw_page_puts(&p,
                     "<p class=\"thanks\" role=\"status\">ご回答ありがとうございました。</p>\n");
    else if (strcmp(voted, "0") == 0)
        gw_page_puts(
            &p,
            "<p class=\"thanks\" role=\"status\">このFAQにはすでに回答いただいています。</p>\n");
    gw_page_addf(&p,
                 "<section class=\"vote\" aria-labelledby=\"vote-title\">\n"
                 "<h2 id=\"vote-title\">この情報は役に立ちましたか</h2>\n"
                 "<form method=\"post\" action=\"/faq/%" PRId64 "/vote\">"
                 "<input type=\"hidden\" name=\"helpful\" value=\"1\">"
                 "<button type=\"submit\">役に立った（%" PRId64 "）</button></form>\n",
                 faq->number, faq->helpful);
    gw_page_addf(&p,
                 "<form method=\"post\" action=\"/faq/%" PRId64 "/vote\">"
                 "<input type=\"hidden\" name=\"helpful\" value=\"0\">"
                 "<button type=\"submit\">役に立たなかった（%" PRId64
                 "）</button></form>\n</section>\n",
                 faq->number, faq->not_helpful);
    gw_page_puts(&p, "<p><a href=\"/faq\">よくある質問の一覧へ</a></p>\n");
    protobuf_c_message_free_unpacked(answer, NULL);
    char voter[80];
    s_voter(conn, voter, sizeof voter);
    if (voter[0])
        return gw_page_send(conn, 200, &p, NULL, NULL);
    char id[33], cookie[160];
    if (ncc_random_hex(16, id) < 0)
        return gw_page_send(conn, 200, &p, NULL, NULL);
    snprintf(cookie, sizeof cookie,
             S_VOTER "=%s; Path=/faq; Max-Age=31536000; HttpOnly; "
                     "SameSite=Lax%s",
             id, req->secure ? "; Secure" : "");
    return gw_page_send(conn, 200, &p, "Set-Cookie", cookie);
}

/* POST /faq/{number}/vote (helpful=1|0), then back to the page. */
static int s_vote(gw_api_t *api, gw_request_t *req, int64_t number)
{
    struct mg_connection *conn = req->conn;
    if (!gw_auth_origin_ok(req))
        return s_error_page(conn, 403, "このページからは送信できません。");
    char body[256];
    int n = mg_read(conn, body, sizeof body - 1);
    body[n > 0 ? n : 0] = '\0';
    char helpful[8] = "";
    if (mg_get_var(body, strlen(body), "helpful", helpful, sizeof helpful) < 0 ||
        (strcmp(helpful, "1") != 0 && strcmp(helpful, "0") != 0))
        return s_error_page(conn, 400, "送信内容が正しくありません。");
    char voter[80];
    s_voter(conn, voter, sizeof voter);
    if (!voter[0])
        return s_error_page(conn, 400,
                            "評価にはCookieが必要です。ページを開き直してからお試しください。");
    Ncc__Faq__PublicFeedback m = NCC__FAQ__PUBLIC_FEEDBACK__INIT;
    m.has_number = m.has_helpful = true;
    m.number = number;
    m.helpful = helpful[0] == '1';
    m.voter = voter;
    ProtobufCMessage *answer = NULL;
    int rc = s_call(api, req, &m.base, &ncc__faq__feedback_result__descriptor, &answer);
    if (rc != 0)
        return s_bus_failure(conn, rc);
    bool accepted = ((const Ncc__Faq__FeedbackResult *)answer)->accepted;
    protobuf_c_message_free_unpacked(answer, NULL);
    char location[64];
    snprintf(location, sizeof location, "/faq/%" PRId64 "?voted=%d", number, accepted ? 1 : 0);
    return gw_http_send(conn, 303, S_HTML, "", 0, "Location", location);
}

/* "123" -> 123; -1 when not a number. */
static int64_t s_number(const char *text, size_t len)
{
    if (len == 0 || len > 12)
        return -1;
    int64_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -1;
        n = n * 10 + (text[i] - '0');
    }
    return n > 0 ? n : -1;
}

int gw_public_faq(struct mg_connection *conn, void *cbdata)
{
    gw_api_t *api = cbdata;
    gw_request_t req = {
        .conn = conn, .info = mg_get_request_info(conn), .thread = gw_thread_of(conn)};
    if (!req.thread)
        return gw_http_send_error(conn, 500, "internal", NULL, "worker thread not initialised");
    gw_auth_client(&req, gw_api_trusted_proxies(api));
    const char *method = req.info->request_method;
    const char *path = req.info->local_uri;
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (strcmp(path, "/faq") == 0 || strcmp(path, "/faq/") == 0) {
        if (!get)
            return gw_http_send(conn, 405, S_HTML, "", 0, "Allow", "GET, HEAD");
        return s_list(api, &req);
    }
    const char *rest = path + 5; /* after "/faq/" */
    const char *slash = strchr(rest, '/');
    int64_t number = s_number(rest, slash ? (size_t)(slash - rest) : strlen(rest));
    if (number < 0 || strncmp(path, "/faq/", 5) != 0)
        return s_error_page(conn, 404, "このページは見つかりませんでした。");
    if (!slash) {
        if (!get)
            return gw_http_send(conn, 405, S_HTML, "", 0, "Allow", "GET, HEAD");
        return s_show(api, &req, number);
    }
    if (strcmp(slash, "/vote") == 0) {
        if (strcmp(method, "POST") != 0)
            return gw_http_send(conn, 405, S_HTML, "", 0, "Allow", "POST");
        return s_vote(api, &req, number);
    }
    return s_error_page(conn, 404, "このページは見つかりませんでした。");
}
