/* bench_sms: the client of bench/bench_sms.sh and bench/bench_sms_fault.sh.
 * Sends COUNT SMS through the gateway (POST /api/v1/sms as a signed-in
 * user: the cookie file curl wrote at sign-in and the CSRF token), from
 * THREADS threads, at most RATE per second in all (0: as fast as accepted).
 * Message i goes to its own number 090-<8 digits of i> with the variable
 * n = "<PREFIX>-<i>" and the idempotency key "<PREFIX>-<i>"; a request that
 * fails (the gateway answers 503 while ncc-sms is down, a time-out, a
 * connection refused) is sent again with the same key until it is accepted,
 * so each message is stored exactly once however often it is asked.
 *
 *   bench_sms API_URL COOKIE_FILE CSRF TEMPLATE_ID COUNT THREADS RATE PREFIX
 *
 * Prints one line: accepted, retries, seconds, requests/s, accept latency
 * p50/p99 (ms). */
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *s_api, *s_cookies, *s_csrf, *s_prefix;
static long s_template, s_count;
static double s_rate;
static atomic_long s_next, s_accepted, s_retries;
static double *s_latency_ms;
static double s_start;

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t s_discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p, (void)arg;
    return size * n;
}

static void *s_run(void *arg)
{
    (void)arg;
    CURL *curl = curl_easy_init();
    char url[512], csrf[300];
    snprintf(url, sizeof url, "%s/sms", s_api);
    snprintf(csrf, sizeof csrf, "X-CSRF-Token: %s", s_csrf);
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    headers = curl_slist_append(headers, csrf);
    for (;;) {
        long i = atomic_fetch_add(&s_next, 1);
        if (i >= s_count)
            break;
        if (s_rate > 0) {
            double due = s_start + (double)i / s_rate;
            double wait = due - s_now();
            if (wait > 0)
                usleep((useconds_t)(wait * 1e6));
        }
        char body[512];
        snprintf(body, sizeof body,
                 "{\"to\":\"090%08ld\",\"template_id\":%ld,\"variables\":[{\"name\":\"n\","
                 "\"value\":\"%s-%ld\"}],\"idempotency_key\":\"%s-%ld\"}",
                 i, s_template, s_prefix, i, s_prefix, i);
        double t0 = s_now();
        for (int attempt = 0;; attempt++) {
            curl_easy_reset(curl);
            curl_easy_setopt(curl, CURLOPT_URL, url);
            curl_easy_setopt(curl, CURLOPT_COOKIEFILE, s_cookies);
            curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
            curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
            curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, s_discard);
            curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
            long status = 0;
            if (curl_easy_perform(curl) == CURLE_OK)
                curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
            if (status == 201)
                break;
            if (status >= 400 && status < 500 && status != 429) {
                fprintf(stderr, "bench_sms: message %ld refused with %ld\n", i, status);
                exit(1);
            }
            atomic_fetch_add(&s_retries, 1);
            usleep((useconds_t)(attempt < 10 ? 50000 * (attempt + 1) : 500000));
        }
        s_latency_ms[i] = (s_now() - t0) * 1000;
        atomic_fetch_add(&s_accepted, 1);
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return NULL;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc != 9) {
        fprintf(stderr,
                "usage: %s API_URL COOKIE_FILE CSRF TEMPLATE_ID COUNT THREADS RATE "
                "PREFIX\n",
                argv[0]);
        return 2;
    }
    s_api = argv[1];
    s_cookies = argv[2];
    s_csrf = argv[3];
    s_template = atol(argv[4]);
    s_count = atol(argv[5]);
    int threads = atoi(argv[6]);
    s_rate = atof(argv[7]);
    s_prefix = argv[8];
    if (s_count < 1 || threads < 1 || threads > 256)
        return 2;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    s_latency_ms = calloc((size_t)s_count, sizeof *s_latency_ms);
    pthread_t *t = calloc((size_t)threads, sizeof *t);
    s_start = s_now();
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, s_run, NULL);
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    double seconds = s_now() - s_start;
    qsort(s_latency_ms, (size_t)s_count, sizeof *s_latency_ms, s_cmp);
    printf("accepted %ld retries %ld seconds %.2f per_second %.1f accept_p50_ms %.1f "
           "accept_p99_ms %.1f\n",
           atomic_load(&s_accepted), atomic_load(&s_retries), seconds, (double)s_count / seconds,
           s_latency_ms[s_count / 2], s_latency_ms[(long)((double)s_count * 0.99)]);
    free(t);
    free(s_latency_ms);
    curl_global_cleanup();
    return atomic_load(&s_accepted) == s_count ? 0 : 1;
}
