/* metrics: process-wide counters, gauges and the request latency histogram,
 * all C11 atomics so any thread may count without a lock. Rendered in the
 * Prometheus text exposition format 0.0.4. */
#include "ncc/metrics.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
    const char *name; /* metric name */
    const char *help; /* HELP text */
} s_meta_t;

static const s_meta_t s_counter_meta[NCC_METRIC_COUNTER_COUNT] = {
    [NCC_METRIC_REQUESTS] = {"ncc_requests_total", "RPC or HTTP requests handled."},
    [NCC_METRIC_ERRORS] = {"ncc_errors_total", "Requests answered with an error."},
    [NCC_METRIC_BUS_IN] = {"ncc_bus_messages_in_total", "Bus messages received."},
    [NCC_METRIC_BUS_OUT] = {"ncc_bus_messages_out_total", "Bus messages sent."},
    [NCC_METRIC_BUS_MALFORMED] = {"ncc_bus_malformed_total",
                                  "Bus frames or envelopes dropped as malformed."},
    [NCC_METRIC_BUS_TIMEOUTS] = {"ncc_bus_timeouts_total", "RPC calls that timed out."},
    [NCC_METRIC_EVENTS_PUBLISHED] = {"ncc_events_published_total", "Events published."},
    [NCC_METRIC_EVENTS_APPLIED] = {"ncc_events_applied_total", "Events applied by subscribers."},
    [NCC_METRIC_EVENTS_REPLAYED] = {"ncc_events_replayed_total",
                                    "Events received through a replay."},
    [NCC_METRIC_DB_ERRORS] = {"ncc_db_errors_total", "Failed database statements."},
    [NCC_METRIC_ROWS_REENCRYPTED] = {"ncc_rows_reencrypted_total",
                                     "Encrypted values re-encrypted under the current data key."},
    [NCC_METRIC_SIGNATURES_REFUSED] = {"ncc_signatures_refused_total",
                                       "Signed machine requests (webhooks) refused."},
    [NCC_METRIC_PUSHES_SENT] = {"ncc_pushes_sent_total", "Push events written to streams."},
    [NCC_METRIC_ROWS_REENCRYPT_SKIPPED] = {"ncc_rows_reencrypt_skipped_total",
                                           "Encrypted values the key rotation could not decrypt."},
};

static const s_meta_t s_gauge_meta[NCC_METRIC_GAUGE_COUNT] = {
    [NCC_METRIC_OUTBOX_DEPTH] = {"ncc_outbox_depth", "Outbox rows not yet published."},
    [NCC_METRIC_READY] = {"ncc_ready", "1 when the daemon is ready, else 0."},
    [NCC_METRIC_PUSH_STREAMS] = {"ncc_push_streams", "Open push streams (gateway)."},
};

/* Upper bounds of the histogram buckets in seconds; +Inf is implicit. */
static const double s_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                  0.1,    0.25,  0.5,    1,     2.5,  5};
#define S_BUCKETS   (sizeof s_bounds / sizeof s_bounds[0] + 1)
#define S_HISTOGRAM "ncc_request_duration_seconds"

static _Atomic uint64_t s_counters[NCC_METRIC_COUNTER_COUNT];
static _Atomic int64_t s_gauges[NCC_METRIC_GAUGE_COUNT];
/* Per bucket (not cumulative); the last one is +Inf. */
static _Atomic uint64_t s_buckets[S_BUCKETS];
/* Sum of all observations in nanoseconds (584 years before it wraps). */
static _Atomic uint64_t s_sum_ns;

void ncc_metrics_add(ncc_metric_counter_t counter, uint64_t n)
{
    if ((unsigned)counter >= NCC_METRIC_COUNTER_COUNT)
        return;
    atomic_fetch_add_explicit(&s_counters[counter], n, memory_order_relaxed);
}

void ncc_metrics_set(ncc_metric_gauge_t gauge, int64_t value)
{
    if ((unsigned)gauge >= NCC_METRIC_GAUGE_COUNT)
        return;
    atomic_store_explicit(&s_gauges[gauge], value, memory_order_relaxed);
}

uint64_t ncc_metrics_get(ncc_metric_counter_t counter)
{
    if ((unsigned)counter >= NCC_METRIC_COUNTER_COUNT)
        return 0;
    return atomic_load_explicit(&s_counters[counter], memory_order_relaxed);
}

void ncc_metrics_observe(double seconds)
{
    if (!(seconds >= 0)) /* negative or NaN: a clock step, not a latency */
        seconds = 0;
    size_t i = 0;
    while (i < S_BUCKETS - 1 && seconds > s_bounds[i])
        i++;
    atomic_fetch_add_explicit(&s_buckets[i], 1, memory_order_relaxed);
    double ns = seconds * 1e9;
    uint64_t add = ns >= 1.8e19 ? UINT64_MAX / 2 : (uint64_t)llround(ns);
    atomic_fetch_add_explicit(&s_sum_ns, add, memory_order_relaxed);
}

/* Writes the label value with Prometheus escaping (\\, \", \n). */
static void s_label_value(FILE *out, const char *value)
{
    for (const char *p = value; *p; p++) {
        if (*p == '\\')
            fputs("\\\\", out);
        else if (*p == '"')
            fputs("\\\"", out);
        else if (*p == '\n')
            fputs("\\n", out);
        else
            fputc(*p, out);
    }
}

static void s_header(FILE *out, const char *name, const char *help, const char *type)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void s_sample_start(FILE *out, const char *name, const char *suffix, const char *service)
{
    fprintf(out, "%s%s{service=\"", name, suffix);
    s_label_value(out, service);
    fputc('"', out);
}

char *ncc_metrics_render(const char *service)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out)
        return NULL;
    if (!service)
        service = "";

    for (int i = 0; i < NCC_METRIC_COUNTER_COUNT; i++) {
        const s_meta_t *m = &s_counter_meta[i];
        s_header(out, m->name, m->help, "counter");
        s_sample_start(out, m->name, "", service);
        fprintf(out, "} %llu\n",
                (unsigned long long)atomic_load_explicit(&s_counters[i], memory_order_relaxed));
    }
    for (int i = 0; i < NCC_METRIC_GAUGE_COUNT; i++) {
        const s_meta_t *m = &s_gauge_meta[i];
        s_header(out, m->name, m->help, "gauge");
        s_sample_start(out, m->name, "", service);
        fprintf(out, "} %lld\n",
                (long long)atomic_load_explicit(&s_gauges[i], memory_order_relaxed));
    }

    s_header(out, S_HISTOGRAM, "Time taken to handle one request, in seconds.", "histogram");
    uint64_t cumulative = 0;
    for (size_t i = 0; i < S_BUCKETS; i++) {
        cumulative += atomic_load_explicit(&s_buckets[i], memory_order_relaxed);
        s_sample_start(out, S_HISTOGRAM, "_bucket", service);
        if (i < S_BUCKETS - 1)
            fprintf(out, ",le=\"%g\"} %llu\n", s_bounds[i], (unsigned long long)cumulative);
        else
            fprintf(out, ",le=\"+Inf\"} %llu\n", (unsigned long long)cumulative);
    }
    uint64_t sum_ns = atomic_load_explicit(&s_sum_ns, memory_order_relaxed);
    s_sample_start(out, S_HISTOGRAM, "_sum", service);
    fprintf(out, "} %.9f\n", (double)sum_ns / 1e9);
    /* _count from the same reads as the buckets, so +Inf == _count always. */
    s_sample_start(out, S_HISTOGRAM, "_count", service);
    fprintf(out, "} %llu\n", (unsigned long long)cumulative);

    if (fclose(out) != 0) {
        free(text);
        return NULL;
    }
    return text;
}
