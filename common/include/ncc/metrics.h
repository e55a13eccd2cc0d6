/* metrics: process-wide counters, gauges and one latency histogram, rendered
 * in the Prometheus text format on /metrics. Lock-free (C11 atomics): any
 * thread may count. */
#ifndef NCC_METRICS_H
#define NCC_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    NCC_METRIC_REQUESTS,         /* ncc_requests_total: RPC or HTTP requests handled */
    NCC_METRIC_ERRORS,           /* ncc_errors_total: requests answered with an error */
    NCC_METRIC_BUS_IN,           /* ncc_bus_messages_in_total */
    NCC_METRIC_BUS_OUT,          /* ncc_bus_messages_out_total */
    NCC_METRIC_BUS_MALFORMED,    /* ncc_bus_malformed_total: dropped frames / envelopes */
    NCC_METRIC_BUS_TIMEOUTS,     /* ncc_bus_timeouts_total: RPC calls that timed out */
    NCC_METRIC_EVENTS_PUBLISHED, /* ncc_events_published_total */
    NCC_METRIC_EVENTS_APPLIED,   /* ncc_events_applied_total */
    NCC_METRIC_EVENTS_REPLAYED,  /* ncc_events_replayed_total */
    NCC_METRIC_DB_ERRORS,        /* ncc_db_errors_total: failed statements (db.c counts them) */
    NCC_METRIC_ROWS_REENCRYPTED, /* ncc_rows_reencrypted_total: values moved to the current key */
    NCC_METRIC_ROWS_REENCRYPT_SKIPPED, /* ncc_rows_reencrypt_skipped_total: did not decrypt */
    NCC_METRIC_SIGNATURES_REFUSED,     /* ncc_signatures_refused_total: signed requests refused */
    NCC_METRIC_PUSHES_SENT,            /* ncc_pushes_sent_total: push events written to streams */
    NCC_METRIC_COUNTER_COUNT
} ncc_metric_counter_t;

typedef enum {
    NCC_METRIC_OUTBOX_DEPTH, /* ncc_outbox_depth: unpublished outbox rows */
    NCC_METRIC_READY,        /* ncc_ready: 1 when ready */
    NCC_METRIC_PUSH_STREAMS, /* ncc_push_streams: open push streams (gateway) */
    NCC_METRIC_GAUGE_COUNT
} ncc_metric_gauge_t;

void ncc_metrics_add(ncc_metric_counter_t counter, uint64_t n);
#define ncc_metrics_inc(counter) ncc_metrics_add(counter, 1)
void ncc_metrics_set(ncc_metric_gauge_t gauge, int64_t value);
uint64_t ncc_metrics_get(ncc_metric_counter_t counter);

/* Records one request's latency in ncc_request_duration_seconds. */
void ncc_metrics_observe(double seconds);

/* The Prometheus text for everything above, labelled service="<service>".
 * Caller frees. NULL on allocation failure. */
char *ncc_metrics_render(const char *service);

#endif
