/* Tests for ncc/metrics.h: exact counts from many threads, bucket edges
 * (le is "less than or equal"), label escaping, and the text format. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ncc/metrics.h"

#define THREADS 4
#define ADDS    20000

static void *count_many(void *arg)
{
    (void)arg;
    for (int i = 0; i < ADDS; i++) {
        ncc_metrics_inc(NCC_METRIC_BUS_IN);
        ncc_metrics_observe(0.0001);
    }
    return NULL;
}

Test(metrics, counts_from_many_threads_are_exact)
{
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, count_many, NULL);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    cr_assert_eq(ncc_metrics_get(NCC_METRIC_BUS_IN), (uint64_t)THREADS * ADDS);
    char *text = ncc_metrics_render("m");
    cr_assert_not_null(text);
    char want[128];
    snprintf(want, sizeof want, "ncc_request_duration_seconds_count{service=\"m\"} %d\n",
             THREADS * ADDS);
    cr_assert_not_null(strstr(text, want), "%s", text);
    snprintf(want, sizeof want,
             "ncc_request_duration_seconds_bucket{service=\"m\",le=\"0.0005\"} %d\n",
             THREADS * ADDS);
    cr_assert_not_null(strstr(text, want), "%s", text);
    free(text);
}

Test(metrics, bucket_edges_are_inclusive)
{
    ncc_metrics_observe(0.005);   /* exactly on a bound: that bucket */
    ncc_metrics_observe(0.00501); /* just above: the next one */
    ncc_metrics_observe(-1);      /* a clock step counts as 0 */
    char *text = ncc_metrics_render("m");
    cr_assert_not_null(strstr(text, "le=\"0.0005\"} 1\n"), "%s", text);
    cr_assert_not_null(strstr(text, "le=\"0.0025\"} 1\n"), "%s", text);
    cr_assert_not_null(strstr(text, "le=\"0.005\"} 2\n"), "%s", text);
    cr_assert_not_null(strstr(text, "le=\"0.01\"} 3\n"), "%s", text);
    cr_assert_not_null(strstr(text, "le=\"+Inf\"} 3\n"), "%s", text);
    free(text);
}

Test(metrics, format_is_prometheus_text)
{
    ncc_metrics_set(NCC_METRIC_OUTBOX_DEPTH, -2);
    char *text = ncc_metrics_render("we\"ird\\name\n");
    cr_assert_not_null(text);
    cr_assert_not_null(strstr(text, "ncc_outbox_depth{service=\"we\\\"ird\\\\name\\n\"} -2\n"),
                       "%s", text);
    const char *families[] = {
        "ncc_requests_total",          "ncc_errors_total",         "ncc_bus_messages_in_total",
        "ncc_bus_messages_out_total",  "ncc_bus_malformed_total",  "ncc_bus_timeouts_total",
        "ncc_events_published_total",  "ncc_events_applied_total", "ncc_events_replayed_total",
        "ncc_db_errors_total",         "ncc_outbox_depth",         "ncc_ready",
        "ncc_request_duration_seconds"};
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
        char help[128], type[128];
        snprintf(help, sizeof help, "# HELP %s ", families[i]);
        snprintf(type, sizeof type, "# TYPE %s ", families[i]);
        cr_assert_not_null(strstr(text, help), "no HELP for %s", families[i]);
        cr_assert_not_null(strstr(text, type), "no TYPE for %s", families[i]);
    }
    /* Every line is a comment or `name{labels} value`. */
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        cr_assert_not_null(nl, "unterminated last line");
        if (line[0] != '#') {
            char *brace = memchr(line, '}', (size_t)(nl - line));
            cr_assert_not_null(brace, "%.*s", (int)(nl - line), line);
            cr_assert_eq(brace[1], ' ');
            char *end = NULL;
            strtod(brace + 2, &end);
            cr_assert_eq(end, nl, "value of %.*s", (int)(nl - line), line);
        }
        line = nl + 1;
    }
    free(text);
}
