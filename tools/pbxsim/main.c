/* ncc-pbxsim: a PBX as docs/pbx-integration.md describes it, for tests,
 * benchmarks and PBX vendors. Sends whole calls to ncc's webhooks, signed:
 * ringing, answered (by one of the given extensions), transcript segments,
 * ended; a share of the calls is abandoned (no answer). With --stream it
 * also holds the operators' push streams open and times each screen pop
 * (the answered webhook sent -> call.answered on that operator's stream).
 *
 *   ncc-pbxsim --url http://127.0.0.1:8080 --secret S --calls 50000
 *              --concurrency 16 --extensions 2001,2002 [--segments 4]
 *              [--abandon-every 10] [--run ID] [--stream COOKIE ...]
 *              [--rate CALLS_PER_S] [--retry SECONDS]
 *
 * Without --rate every worker starts its next call as soon as its last one is
 * done (the most the system takes); with --rate calls start on a fixed
 * schedule (call n at n / rate seconds), so latencies are those of a system
 * under that offered load rather than of a saturated one.
 *
 * With --retry, a request that fails (no answer, or 5xx / 429) is sent again with the same
 * event_id, freshly signed, every 200 ms for up to SECONDS, as docs/pbx-integration.md asks of
 * a PBX (at-least-once delivery); "retries" counts the repeats and "errors" only what still
 * failed at the end (the chaos test, tests/chaos/chaos.sh, relies on it).
 *
 * Prints one JSON object: calls, events, seconds, calls_per_s, webhook
 * latency p50/p95/p99/max (ms), errors by status, pops seen and their
 * p50/p99 (ms). Exit 0 when every request got a 2xx. */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ncc/webhook.h"

typedef struct {
    const char *url;
    const char *secret;
    long calls;
    int concurrency;
    char **extensions;
    int n_extensions;
    int segments;
    int abandon_every;
    char run[40];
    char **cookies;
    int n_cookies;
    double rate;    /* calls started per second; 0: as fast as the workers go */
    double retry_s; /* resend a failed request for this long (0: never) */
} s_options_t;

static s_options_t s_opt = {.calls = 100, .concurrency = 4, .segments = 2, .abandon_every = 10};
static atomic_long s_next_call;
static atomic_long s_errors, s_events, s_retries;
static atomic_long s_status_counts[6]; /* 1xx..5xx, other */
static double *s_latency;              /* ms per request, s_n_latency slots */
static atomic_long s_n_latency;
static long s_latency_cap;
static double *s_answer_sent; /* per call: when its answered webhook was sent (ms, monotonic) */
static double *s_pop_at;      /* per call: when its pop arrived on a stream */
static atomic_bool s_stop_streams;
static double s_started_ms; /* when the first call was due (monotonic ms) */

static double s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static size_t s_discard(char *ptr, size_t size, size_t nmemb, void *arg)
{
    (void)ptr, (void)arg;
    return size * nmemb;
}

/* POSTs body to path, signed; records latency and status. */
static void s_post(CURL *curl, const char *path, const char *body)
{
    char url[512], header[200], line[240];
    snprintf(url, sizeof url, "%s%s", s_opt.url, path);
    if (ncc_webhook_sign(s_opt.secret, (int64_t)time(NULL), body, strlen(body), header,
                         sizeof header) < 0) {
        atomic_fetch_add(&s_errors, 1);
        return;
    }
    snprintf(line, sizeof line, "X-NCC-Signature: %s", header);
    struct curl_slist *list = curl_slist_append(NULL, "Content-Type: application/json");
    list = curl_slist_append(list, line);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    double start = s_now_ms();
    CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    /* --retry: the same event again (signed anew) while it fails and time remains. */
    while (s_opt.retry_s > 0 && (rc != CURLE_OK || status >= 500 || status == 429) &&
           s_now_ms() - start < s_opt.retry_s * 1000.0) {
        atomic_fetch_add(&s_retries, 1);
        usleep(200 * 1000);
        curl_slist_free_all(list);
        if (ncc_webhook_sign(s_opt.secret, (int64_t)time(NULL), body, strlen(body), header,
                             sizeof header) < 0)
            break;
        snprintf(line, sizeof line, "X-NCC-Signature: %s", header);
        list = curl_slist_append(NULL, "Content-Type: application/json");
        list = curl_slist_append(list, line);
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
        rc = curl_easy_perform(curl);
        status = 0;
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    }
    double took = s_now_ms() - start;
    curl_slist_free_all(list);
    atomic_fetch_add(&s_events, 1);
    long slot = atomic_fetch_add(&s_n_latency, 1);
    if (slot < s_latency_cap)
        s_latency[slot] = took;
    int bucket = rc == CURLE_OK && status >= 100 && status < 600 ? (int)(status / 100) - 1 : 5;
    atomic_fetch_add(&s_status_counts[bucket], 1);
    if (rc != CURLE_OK || status < 200 || status >= 300) {
        if (atomic_fetch_add(&s_errors, 1) < 5)
            fprintf(stderr, "pbxsim: %s: %s %ld\n", path,
                    rc == CURLE_OK ? "status" : curl_easy_strerror(rc), status);
    }
}

static const char *const s_lines[] = {
    "住民票の写しを取りたいのですが",       "本人確認書類をお持ちください",
    "印鑑証明はどこで取れますか",           "マイナンバーカードの更新について",
    "国民健康保険の手続きを教えてください", "税の証明書が必要です",
    "粗大ごみの出し方を知りたい",           "引っ越しの届出はいつまでですか",
};

static void *s_worker(void *arg)
{
    (void)arg;
    CURL *curl = curl_easy_init();
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, s_discard);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 30000L);
    char body[8192], path[256], call_id[96], when[40];
    for (;;) {
        long n = atomic_fetch_add(&s_next_call, 1);
        if (n >= s_opt.calls)
            break;
        if (s_opt.rate > 0) {
            double due = s_started_ms + (double)n * 1000.0 / s_opt.rate, wait = due - s_now_ms();
            if (wait > 0) {
                struct timespec ts = {
                    (time_t)(wait / 1000.0),
                    (long)((wait - (double)(time_t)(wait / 1000.0) * 1000.0) * 1e6)};
                nanosleep(&ts, NULL);
            }
        }
        snprintf(call_id, sizeof call_id, "sim-%s-%ld", s_opt.run, n);
        /* A day of calls from 08:30, one every 1.2 s of simulated time. */
        time_t base = 1806537600 + (time_t)(n * 12 / 10);
        struct tm tm;
        gmtime_r(&base, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        const char *from_fmt = "090-%04ld-%04ld";
        char from[32];
        snprintf(from, sizeof from, from_fmt, (n / 10000) % 10000, n % 10000);
        snprintf(body, sizeof body,
                 "{\"event_id\":\"%s-r\",\"type\":\"ringing\",\"call_id\":\"%s\",\"occurred_at\":"
                 "\"%s\",\"from\":\"%s\",\"to\":\"03-3228-1111\"}",
                 call_id, call_id, when, from);
        s_post(curl, "/api/v1/pbx/events", body);
        bool abandon =
            s_opt.abandon_every > 0 && n % s_opt.abandon_every == s_opt.abandon_every - 1;
        if (!abandon) {
            const char *ext = s_opt.extensions[n % s_opt.n_extensions];
            snprintf(body, sizeof body,
                     "{\"event_id\":\"%s-a\",\"type\":\"answered\",\"call_id\":\"%s\","
                     "\"occurred_at\":\"%s\",\"from\":\"%s\",\"to\":\"03-3228-1111\","
                     "\"agent_extension\":\"%s\"}",
                     call_id, call_id, when, from, ext);
            s_answer_sent[n] = s_now_ms();
            s_post(curl, "/api/v1/pbx/events", body);
            if (s_opt.segments > 0) {
                size_t o = (size_t)snprintf(body, sizeof body, "{\"segments\":[");
                for (int i = 0; i < s_opt.segments && o < sizeof body - 512; i++)
                    o += (size_t)snprintf(
                        body + o, sizeof body - o,
                        "%s{\"seq\":%d,\"speaker\":\"%s\",\"start_ms\":%d,\"end_ms\":%d,"
                        "\"text\":\"%s\"}",
                        i ? "," : "", i, i % 2 ? "operator" : "caller", i * 3000, i * 3000 + 2500,
                        s_lines[(n + i) % (sizeof s_lines / sizeof s_lines[0])]);
                snprintf(body + o, sizeof body - o, "]}");
                snprintf(path, sizeof path, "/api/v1/calls/%s/transcript", call_id);
                s_post(curl, path, body);
            }
        }
        time_t end = base + 180;
        gmtime_r(&end, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        snprintf(body, sizeof body,
                 "{\"event_id\":\"%s-e\",\"type\":\"ended\",\"call_id\":\"%s\",\"occurred_at\":"
                 "\"%s\"}",
                 call_id, call_id, when);
        s_post(curl, "/api/v1/pbx/events", body);
    }
    curl_easy_cleanup(curl);
    return NULL;
}

/* ---- the operators' streams ---------------------------------------------------------------- */

typedef struct {
    const char *cookie;
    char line[4096];
    size_t len;
    bool answered; /* the current event is call.answered */
} s_stream_t;

static void s_stream_line(s_stream_t *s)
{
    s->line[s->len] = '\0';
    if (strncmp(s->line, "event: ", 7) == 0) {
        s->answered = strcmp(s->line + 7, "call.answered") == 0;
    } else if (s->answered && strncmp(s->line, "data: ", 6) == 0) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "\"call_id\":\"sim-%s-", s_opt.run);
        const char *p = strstr(s->line, prefix);
        if (p) {
            long n = strtol(p + strlen(prefix), NULL, 10);
            if (n >= 0 && n < s_opt.calls && s_pop_at[n] == 0)
                s_pop_at[n] = s_now_ms();
        }
    } else if (s->len == 0) {
        s->answered = false;
    }
    s->len = 0;
}

static size_t s_stream_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
    s_stream_t *s = arg;
    size_t n = size * nmemb;
    for (size_t i = 0; i < n; i++) {
        if (ptr[i] == '\n')
            s_stream_line(s);
        else if (s->len + 1 < sizeof s->line)
            s->line[s->len++] = ptr[i];
    }
    return n;
}

static int s_stream_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)arg, (void)a, (void)b, (void)c, (void)d;
    return atomic_load(&s_stop_streams) ? 1 : 0;
}

static void *s_stream(void *arg)
{
    s_stream_t *s = arg;
    CURL *curl = curl_easy_init();
    char url[512], line[256];
    snprintf(url, sizeof url, "%s/api/v1/stream", s_opt.url);
    snprintf(line, sizeof line, "Cookie: ncc_session=%s", s->cookie);
    struct curl_slist *list = curl_slist_append(NULL, line);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, s_stream_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, s_stream_progress);
    curl_easy_perform(curl);
    curl_slist_free_all(list);
    curl_easy_cleanup(curl);
    return NULL;
}

/* ---- figures ------------------------------------------------------------------------------- */

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double s_pct(const double *sorted, long n, double p)
{
    if (n == 0)
        return 0;
    long i = (long)(p * (double)(n - 1) + 0.5);
    return sorted[i < n ? i : n - 1];
}

static char **s_split(const char *list, int *ret_n)
{
    char *copy = strdup(list);
    int n = 1;
    for (const char *p = list; *p; p++)
        n += *p == ',';
    char **items = calloc((size_t)n, sizeof *items);
    int i = 0;
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok && i < n;
         tok = strtok_r(NULL, ",", &save))
        items[i++] = tok;
    *ret_n = i;
    return items;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"url", required_argument, NULL, 'u'},
        {"secret", required_argument, NULL, 's'},
        {"calls", required_argument, NULL, 'n'},
        {"concurrency", required_argument, NULL, 'c'},
        {"extensions", required_argument, NULL, 'x'},
        {"segments", required_argument, NULL, 'g'},
        {"abandon-every", required_argument, NULL, 'a'},
        {"run", required_argument, NULL, 'r'},
        {"stream", required_argument, NULL, 'S'},
        {"rate", required_argument, NULL, 'R'},
        {"retry", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char *cookies[256];
    int n_cookies = 0;
    snprintf(s_opt.run, sizeof s_opt.run, "%ld", (long)time(NULL));
    for (int c; (c = getopt_long(argc, argv, "", options, NULL)) != -1;) {
        switch (c) {
        case 'u':
            s_opt.url = optarg;
            break;
        case 's':
            s_opt.secret = optarg;
            break;
        case 'n':
            s_opt.calls = strtol(optarg, NULL, 10);
            break;
        case 'c':
            s_opt.concurrency = (int)strtol(optarg, NULL, 10);
            break;
        case 'x':
            s_opt.extensions = s_split(optarg, &s_opt.n_extensions);
            break;
        case 'g':
            s_opt.segments = (int)strtol(optarg, NULL, 10);
            break;
        case 'a':
            s_opt.abandon_every = (int)strtol(optarg, NULL, 10);
            break;
        case 'r':
            snprintf(s_opt.run, sizeof s_opt.run, "%s", optarg);
            break;
        case 'R':
            s_opt.rate = strtod(optarg, NULL);
            break;
        case 'T':
            s_opt.retry_s = strtod(optarg, NULL);
            break;
        case 'S':
            if (n_cookies < 256)
                cookies[n_cookies++] = optarg;
            break;
        default:
            fprintf(stderr, "usage: ncc-pbxsim --url URL --secret SECRET --extensions E1,E2 "
                            "[--calls N] [--concurrency C] [--segments K] [--abandon-every M] "
                            "[--run ID] [--stream COOKIE]... [--rate CALLS_PER_S] "
                            "[--retry SECONDS]\n");
            return c == 'h' ? 0 : 2;
        }
    }
    const char *env_secret = getenv("NCC_PBX_WEBHOOK_SECRET");
    if (!s_opt.secret)
        s_opt.secret = env_secret;
    if (!s_opt.url || !s_opt.secret || !*s_opt.secret || s_opt.n_extensions == 0 ||
        s_opt.calls < 1 || s_opt.concurrency < 1 || s_opt.concurrency > 512 || s_opt.segments < 0 ||
        s_opt.segments > 200) {
        fprintf(stderr, "ncc-pbxsim: --url, --secret (or NCC_PBX_WEBHOOK_SECRET) and "
                        "--extensions are required; calls >= 1, concurrency 1..512, segments "
                        "0..200\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    s_latency_cap = s_opt.calls * 4;
    s_latency = calloc((size_t)s_latency_cap, sizeof *s_latency);
    s_answer_sent = calloc((size_t)s_opt.calls, sizeof *s_answer_sent);
    s_pop_at = calloc((size_t)s_opt.calls, sizeof *s_pop_at);
    if (!s_latency || !s_answer_sent || !s_pop_at) {
        fprintf(stderr, "ncc-pbxsim: out of memory\n");
        return 1;
    }
    pthread_t streams[256];
    s_stream_t stream_state[256];
    for (int i = 0; i < n_cookies; i++) {
        memset(&stream_state[i], 0, sizeof stream_state[i]);
        stream_state[i].cookie = cookies[i];
        pthread_create(&streams[i], NULL, s_stream, &stream_state[i]);
    }
    if (n_cookies > 0)
        usleep(500 * 1000); /* the streams open */

    if (s_opt.retry_s < 0 || s_opt.retry_s > 3600) {
        fprintf(stderr, "ncc-pbxsim: --retry is 0 (never) to 3600 seconds\n");
        return 2;
    }
    if (s_opt.rate < 0 || s_opt.rate > 10000) {
        fprintf(stderr, "ncc-pbxsim: --rate is 0 (as fast as possible) to 10000 calls/s\n");
        return 2;
    }
    double start = s_now_ms();
    s_started_ms = start;
    pthread_t *workers = calloc((size_t)s_opt.concurrency, sizeof *workers);
    for (int i = 0; i < s_opt.concurrency; i++)
        pthread_create(&workers[i], NULL, s_worker, NULL);
    for (int i = 0; i < s_opt.concurrency; i++)
        pthread_join(workers[i], NULL);
    double seconds = (s_now_ms() - start) / 1000.0;
    if (n_cookies > 0) {
        usleep(1000 * 1000); /* the last pops arrive */
        atomic_store(&s_stop_streams, true);
        for (int i = 0; i < n_cookies; i++)
            pthread_join(streams[i], NULL);
    }

    long n = atomic_load(&s_n_latency);
    if (n > s_latency_cap)
        n = s_latency_cap;
    qsort(s_latency, (size_t)n, sizeof *s_latency, s_cmp);
    double *pops = calloc((size_t)s_opt.calls + 1, sizeof *pops);
    long n_pops = 0, answered = 0;
    for (long i = 0; i < s_opt.calls; i++) {
        if (s_answer_sent[i] > 0)
            answered++;
        if (s_answer_sent[i] > 0 && s_pop_at[i] > 0)
            pops[n_pops++] = s_pop_at[i] - s_answer_sent[i];
    }
    qsort(pops, (size_t)n_pops, sizeof *pops, s_cmp);
    printf("{\"run\":\"%s\",\"calls\":%ld,\"answered\":%ld,\"events\":%ld,\"seconds\":%.3f,"
           "\"calls_per_s\":%.1f,\"events_per_s\":%.1f,\"webhook_ms\":{\"p50\":%.2f,\"p95\":%.2f,"
           "\"p99\":%.2f,\"max\":%.2f},\"status\":{\"2xx\":%ld,\"4xx\":%ld,\"5xx\":%ld,"
           "\"failed\":%ld},\"errors\":%ld,\"streams\":%d,\"pops\":%ld,\"pop_ms\":{\"p50\":%.2f,"
           "\"p99\":%.2f,\"max\":%.2f},\"rate\":%.1f,\"retries\":%ld}\n",
           s_opt.run, s_opt.calls, answered, atomic_load(&s_events), seconds,
           (double)s_opt.calls / seconds, (double)atomic_load(&s_events) / seconds,
           s_pct(s_latency, n, 0.50), s_pct(s_latency, n, 0.95), s_pct(s_latency, n, 0.99),
           n ? s_latency[n - 1] : 0.0, atomic_load(&s_status_counts[1]),
           atomic_load(&s_status_counts[3]), atomic_load(&s_status_counts[4]),
           atomic_load(&s_status_counts[5]), atomic_load(&s_errors), n_cookies, n_pops,
           s_pct(pops, n_pops, 0.50), s_pct(pops, n_pops, 0.99), n_pops ? pops[n_pops - 1] : 0.0,
           s_opt.rate, atomic_load(&s_retries));
    free(pops);
    free(workers);
    curl_global_cleanup();
    return atomic_load(&s_errors) == 0 ? 0 : 1;
}
