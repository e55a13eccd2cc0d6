/* http: the provider for cloud SMS services in the widely copied form of
 * Twilio's Messages API: POST <NCC_SMS_HTTP_URL> (…/Accounts/{AccountSid}/
 * Messages.json) as application/x-www-form-urlencoded with To, From, Body and
 * StatusCallback, HTTP basic auth (account, token); 201 with a JSON {"sid",
 * "status"}; errors as {"code", "message"}. 429 and 5xx are retried (sending
 * pauses for Retry-After, at most 10 s), other 4xx fail the message; a
 * request that went out and got no answer (a time-out, a dropped connection)
 * makes the message uncertain (docs/sms.md, "Delivery guarantees"). The
 * service splits long texts itself, so one message is one part here.
 * Receipts come back as status callbacks at POST /api/v1/sms/receipts
 * (gateway/survey.c checks their signature, api.c applies them). */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ncc/log.h"
#include "provider.h"

typedef struct {
    sms_provider_t base;
    const sms_settings_t *st;
    sms_provider_events_t events;
    CURL *curl;
    int64_t paused_until_ms;
} s_http_t;

typedef struct {
    char *data;
    size_t len;
} s_buf_t;

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t s_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
    s_buf_t *b = arg;
    size_t n = size * nmemb;
    if (b->len + n > 65536)
        return 0;
    char *grown = realloc(b->data, b->len + n + 1);
    if (!grown)
        return 0;
    memcpy(grown + b->len, ptr, n);
    b->len += n;
    grown[b->len] = '\0';
    b->data = grown;
    return n;
}

static int s_capacity(sms_provider_t *base)
{
    s_http_t *self = (s_http_t *)base;
    return s_now_ms() >= self->paused_until_ms ? 1 : 0;
}

static int s_outstanding(sms_provider_t *base)
{
    (void)base;
    return 0;
}

/* name=value& (URL-encoded) onto form. */
static void s_field(CURL *curl, s_buf_t *form, const char *name, const char *value)
{
    char *enc = curl_easy_escape(curl, value, 0);
    size_t need = strlen(name) + (enc ? strlen(enc) : 0) + 3;
    char *grown = realloc(form->data, form->len + need + 1);
    if (grown && enc) {
        form->data = grown;
        form->len += (size_t)snprintf(grown + form->len, need + 1, "%s%s=%s", form->len ? "&" : "",
                                      name, enc);
    }
    curl_free(enc);
}

static int s_submit(sms_provider_t *base, int64_t id, const char *e164, const char *text)
{
    s_http_t *self = (s_http_t *)base;
    const sms_settings_t *st = self->st;
    s_buf_t form = {0}, body = {0};
    curl_easy_reset(self->curl);
    s_field(self->curl, &form, "To", e164);
    s_field(self->curl, &form, "From", st->sender_id ? st->sender_id : "");
    s_field(self->curl, &form, "Body", text);
    if (st->http_callback_url && *st->http_callback_url)
        s_field(self->curl, &form, "StatusCallback", st->http_callback_url);
    if (!form.data)
        return -ENOMEM;
    curl_easy_setopt(self->curl, CURLOPT_URL, st->http_url);
    curl_easy_setopt(self->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(self->curl, CURLOPT_POSTFIELDS, form.data);
    curl_easy_setopt(self->curl, CURLOPT_POSTFIELDSIZE, (long)form.len);
    curl_easy_setopt(self->curl, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(self->curl, CURLOPT_USERNAME, st->http_account ? st->http_account : "");
    curl_easy_setopt(self->curl, CURLOPT_PASSWORD, st->http_token ? st->http_token : "");
    curl_easy_setopt(self->curl, CURLOPT_TIMEOUT_MS, (long)st->http_timeout_ms);
    curl_easy_setopt(self->curl, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
    curl_easy_setopt(self->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(self->curl, CURLOPT_WRITEFUNCTION, s_write);
    curl_easy_setopt(self->curl, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(self->curl, CURLOPT_USERAGENT, "ncc-sms");
    CURLcode code = curl_easy_perform(self->curl);
    long status = 0;
    curl_easy_getinfo(self->curl, CURLINFO_RESPONSE_CODE, &status);
    curl_off_t retry_after = 0;
    curl_easy_getinfo(self->curl, CURLINFO_RETRY_AFTER, &retry_after);
    long request_size = 0;
    curl_easy_getinfo(self->curl, CURLINFO_REQUEST_SIZE, &request_size);
    free(form.data);
    cJSON *json = body.data ? cJSON_Parse(body.data) : NULL;
    free(body.data);
    const cJSON *sid = cJSON_GetObjectItemCaseSensitive(json, "sid");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(json, "message");
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(json, "code");
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(json, "status");
    char error[200];
    if (code != CURLE_OK) {
        /* Nothing sent (no connection): retried; sent and unanswered: uncertain. */
        bool uncertain = request_size > 0;
        snprintf(error, sizeof error, "%s: %s",
                 uncertain ? "the provider did not answer the request"
                           : "the provider could not be reached",
                 curl_easy_strerror(code));
        self->paused_until_ms = s_now_ms() + 1000;
        self->events.on_result(self->events.arg, id, -EIO, true, uncertain, error, NULL, 0);
    } else if ((status == 200 || status == 201) && cJSON_IsString(sid) && *sid->valuestring &&
               !(cJSON_IsString(state) && (strcmp(state->valuestring, "failed") == 0 ||
                                           strcmp(state->valuestring, "undelivered") == 0))) {
        char *ids[1] = {sid->valuestring};
        self->events.on_result(self->events.arg, id, 0, false, false, "", ids, 1);
    } else {
        bool retry = status == 429 || status >= 500;
        if (retry) {
            int64_t pause = retry_after > 0 ? (int64_t)retry_after * 1000 : 1000;
            self->paused_until_ms = s_now_ms() + (pause > 10000 ? 10000 : pause);
        }
        char code_text[32] = "";
        if (cJSON_IsNumber(err))
            snprintf(code_text, sizeof code_text, " code %d", err->valueint);
        snprintf(error, sizeof error, "the provider answered HTTP %ld%s%s%.100s", status, code_text,
                 cJSON_IsString(msg) ? ": " : "", cJSON_IsString(msg) ? msg->valuestring : "");
        self->events.on_result(self->events.arg, id, -EIO, retry, false, error, NULL, 0);
    }
    cJSON_Delete(json);
    return 0;
}

static void s_poll(sms_provider_t *base, int timeout_ms, int wake_fd)
{
    (void)base;
    struct pollfd fd = {.fd = wake_fd, .events = POLLIN};
    poll(&fd, wake_fd >= 0 ? 1 : 0, timeout_ms);
}

/* Receipts come through the API (api.c), not here. */
static void s_acknowledge(sms_provider_t *base, bool stored)
{
    (void)base;
    (void)stored;
}

static void s_destroy(sms_provider_t **base_p)
{
    s_http_t *self = (s_http_t *)*base_p;
    if (!self)
        return;
    curl_easy_cleanup(self->curl);
    free(self);
    *base_p = NULL;
}

sms_provider_t *sms_http_new(const sms_settings_t *settings, const sms_provider_events_t *events)
{
    if (!settings->http_url || strncmp(settings->http_url, "http", 4) != 0) {
        ncc_error("config.invalid", "NCC_SMS_PROVIDER=http needs NCC_SMS_HTTP_URL");
        return NULL;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    s_http_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->base = (sms_provider_t){.name = "http",
                                  .capacity = s_capacity,
                                  .submit = s_submit,
                                  .poll = s_poll,
                                  .outstanding = s_outstanding,
                                  .acknowledge = s_acknowledge,
                                  .destroy = s_destroy};
    self->st = settings;
    self->events = *events;
    self->curl = curl_easy_init();
    if (!self->curl) {
        free(self);
        return NULL;
    }
    return &self->base;
}
