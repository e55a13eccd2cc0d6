/* sms_twilio: the Twilio-form test server (sms_twilio.h). */
#include "sms_twilio.h"

#include <civetweb.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ncc/crypto.h"
#include "ncc/webhook.h"
#include "ncc_test.h"

#define S_QUEUE 4096

typedef struct {
    char sid[40], status[16], url[300], error[8];
    long long due_ms;
    bool used;
} s_callback_t;

struct ncct_twilio {
    ncct_twilio_options_t opt;
    char *account, *token, *secret, *suffix;
    struct mg_context *ctx;
    char url[256], path[200];
    pthread_mutex_t lock;
    pthread_t thread;
    atomic_bool stop;
    int fail_n, fail_status;
    int accepted, refused, callbacks;
    s_callback_t *queue;
    char last_to[64], *last_body;
};

static long long s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int s_json(struct mg_connection *conn, int status, const char *body, const char *extra)
{
    mg_printf(conn,
              "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n%s"
              "Connection: close\r\n\r\n%s",
              status, status == 201 ? "Created" : "Error", strlen(body), extra ? extra : "", body);
    return status;
}

static void s_enqueue(ncct_twilio_t *self, const char *sid, const char *status, const char *url,
                      const char *error, int delay_ms)
{
    for (int i = 0; i < S_QUEUE; i++) {
        s_callback_t *c = &self->queue[i];
        if (c->used)
            continue;
        c->used = true;
        snprintf(c->sid, sizeof c->sid, "%s", sid);
        snprintf(c->status, sizeof c->status, "%s", status);
        snprintf(c->url, sizeof c->url, "%s", url);
        snprintf(c->error, sizeof c->error, "%s", error);
        c->due_ms = s_now_ms() + delay_ms;
        return;
    }
}

static bool s_auth_ok(ncct_twilio_t *self, struct mg_connection *conn)
{
    const char *h = mg_get_header(conn, "Authorization");
    if (!h || strncmp(h, "Basic ", 6) != 0)
        return false;
    unsigned char decoded[300];
    int n = EVP_DecodeBlock(decoded, (const unsigned char *)h + 6, (int)strlen(h + 6));
    if (n <= 0)
        return false;
    while (n > 0 && decoded[n - 1] == '\0')
        n--;
    decoded[n] = '\0';
    char expected[300];
    snprintf(expected, sizeof expected, "%s:%s", self->account, self->token);
    return strcmp((const char *)decoded, expected) == 0;
}

static int s_handle(struct mg_connection *conn, void *cbdata)
{
    ncct_twilio_t *self = cbdata;
    const struct mg_request_info *info = mg_get_request_info(conn);
    if (strcmp(info->request_method, "POST") != 0 || strcmp(info->local_uri, self->path) != 0)
        return s_json(conn, 404, "{\"code\":20404,\"message\":\"not found\",\"status\":404}", NULL);
    char body[8192];
    int len = mg_read(conn, body, sizeof body - 1);
    body[len > 0 ? len : 0] = '\0';
    pthread_mutex_lock(&self->lock);
    if (self->fail_n > 0) {
        self->fail_n--;
        self->refused++;
        int status = self->fail_status;
        pthread_mutex_unlock(&self->lock);
        return status == 429 ? s_json(conn, 429,
                                      "{\"code\":20429,\"message\":\"Too Many Requests\","
                                      "\"status\":429}",
                                      "Retry-After: 1\r\n")
                             : s_json(conn, status,
                                      "{\"code\":20500,\"message\":\"Internal Server Error\","
                                      "\"status\":500}",
                                      NULL);
    }
    if (!s_auth_ok(self, conn)) {
        self->refused++;
        pthread_mutex_unlock(&self->lock);
        return s_json(conn, 401, "{\"code\":20003,\"message\":\"Authenticate\",\"status\":401}",
                      NULL);
    }
    char to[64] = "", text[4096] = "", callback[300] = "";
    mg_get_var(body, (size_t)(len > 0 ? len : 0), "To", to, sizeof to);
    mg_get_var(body, (size_t)(len > 0 ? len : 0), "Body", text, sizeof text);
    mg_get_var(body, (size_t)(len > 0 ? len : 0), "StatusCallback", callback, sizeof callback);
    if (!to[0] || !text[0]) {
        self->refused++;
        pthread_mutex_unlock(&self->lock);
        return s_json(conn, 400,
                      "{\"code\":21604,\"message\":\"A 'To' phone number and a 'Body' are "
                      "required.\",\"status\":400}",
                      NULL);
    }
    char hex[33], sid[40];
    ncc_random_hex(16, hex);
    snprintf(sid, sizeof sid, "SM%s", hex);
    self->accepted++;
    snprintf(self->last_to, sizeof self->last_to, "%s", to);
    free(self->last_body);
    self->last_body = strdup(text);
    size_t tl = strlen(to), sl = self->suffix ? strlen(self->suffix) : 0;
    bool undelivered = sl && tl >= sl && strcmp(to + tl - sl, self->suffix) == 0;
    if (callback[0]) {
        s_enqueue(self, sid, "sent", callback, "", self->opt.callback_delay_ms / 2);
        s_enqueue(self, sid, undelivered ? "undelivered" : "delivered", callback,
                  undelivered ? "30003" : "", self->opt.callback_delay_ms);
    }
    pthread_mutex_unlock(&self->lock);
    char answer[512];
    snprintf(answer, sizeof answer,
             "{\"sid\":\"%s\",\"account_sid\":\"%s\",\"to\":\"%s\",\"status\":\"queued\","
             "\"num_segments\":\"1\",\"error_code\":null}",
             sid, self->account, to);
    return s_json(conn, 201, answer, NULL);
}

static size_t s_discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p, (void)arg;
    return size * n;
}

static void *s_run(void *arg)
{
    ncct_twilio_t *self = arg;
    CURL *curl = curl_easy_init();
    while (!atomic_load(&self->stop)) {
        s_callback_t due = {0};
        pthread_mutex_lock(&self->lock);
        long long now = s_now_ms();
        for (int i = 0; i < S_QUEUE && !due.used; i++) {
            if (self->queue[i].used && self->queue[i].due_ms <= now) {
                due = self->queue[i];
                self->queue[i].used = false;
            }
        }
        pthread_mutex_unlock(&self->lock);
        if (!due.used) {
            usleep(5000);
            continue;
        }
        char form[300];
        snprintf(form, sizeof form, "MessageSid=%s&MessageStatus=%s&AccountSid=%s%s%s", due.sid,
                 due.status, self->account, due.error[0] ? "&ErrorCode=" : "", due.error);
        char sig[200], header[260];
        ncc_webhook_sign(self->secret, (int64_t)time(NULL), form, strlen(form), sig, sizeof sig);
        snprintf(header, sizeof header, "%s: %s", NCC_WEBHOOK_HEADER_NAME, sig);
        struct curl_slist *headers = curl_slist_append(NULL, header);
        headers = curl_slist_append(headers, "Content-Type: application/x-www-form-urlencoded");
        curl_easy_reset(curl);
        curl_easy_setopt(curl, CURLOPT_URL, due.url);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, form);
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, s_discard);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
        long status = 0;
        if (curl_easy_perform(curl) == CURLE_OK)
            curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        curl_slist_free_all(headers);
        pthread_mutex_lock(&self->lock);
        if (status >= 200 && status < 300)
            self->callbacks++;
        pthread_mutex_unlock(&self->lock);
    }
    curl_easy_cleanup(curl);
    return NULL;
}

ncct_twilio_t *ncct_twilio_start(const ncct_twilio_options_t *options)
{
    ncct_twilio_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->opt = *options;
    self->account = strdup(options->account);
    self->token = strdup(options->token);
    self->secret = strdup(options->callback_secret);
    self->suffix = options->undeliverable_suffix ? strdup(options->undeliverable_suffix) : NULL;
    self->queue = calloc(S_QUEUE, sizeof *self->queue);
    pthread_mutex_init(&self->lock, NULL);
    int port = ncct_free_port();
    char ports[32];
    snprintf(ports, sizeof ports, "127.0.0.1:%d", port);
    const char *opts[] = {"listening_ports", ports, "num_threads", "4", NULL};
    self->ctx = mg_start(NULL, NULL, opts);
    if (!self->ctx) {
        ncct_twilio_stop(&self);
        return NULL;
    }
    snprintf(self->path, sizeof self->path, "/2010-04-01/Accounts/%s/Messages.json", self->account);
    snprintf(self->url, sizeof self->url, "http://127.0.0.1:%d%s", port, self->path);
    mg_set_request_handler(self->ctx, "/2010-04-01", s_handle, self);
    pthread_create(&self->thread, NULL, s_run, self);
    return self;
}

void ncct_twilio_stop(ncct_twilio_t **self_p)
{
    ncct_twilio_t *self = self_p ? *self_p : NULL;
    if (!self)
        return;
    if (self->ctx) {
        mg_stop(self->ctx);
        atomic_store(&self->stop, true);
        pthread_join(self->thread, NULL);
    }
    pthread_mutex_destroy(&self->lock);
    free(self->queue);
    free(self->account);
    free(self->token);
    free(self->secret);
    free(self->suffix);
    free(self->last_body);
    free(self);
    *self_p = NULL;
}

const char *ncct_twilio_url(ncct_twilio_t *self)
{
    return self->url;
}

void ncct_twilio_fail_next(ncct_twilio_t *self, int n, int status)
{
    pthread_mutex_lock(&self->lock);
    self->fail_n = n;
    self->fail_status = status;
    pthread_mutex_unlock(&self->lock);
}

#define S_GETTER(name, field)                                                                      \
    int ncct_twilio_##name(ncct_twilio_t *self)                                                    \
    {                                                                                              \
        pthread_mutex_lock(&self->lock);                                                           \
        int v = self->field;                                                                       \
        pthread_mutex_unlock(&self->lock);                                                         \
        return v;                                                                                  \
    }
S_GETTER(accepted, accepted)
S_GETTER(refused, refused)
S_GETTER(callbacks, callbacks)

char *ncct_twilio_last_body(ncct_twilio_t *self, const char *to)
{
    pthread_mutex_lock(&self->lock);
    char *body = strcmp(self->last_to, to) == 0 && self->last_body ? strdup(self->last_body) : NULL;
    pthread_mutex_unlock(&self->lock);
    return body;
}
