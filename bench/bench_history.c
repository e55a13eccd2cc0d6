/* bench_history: the measuring half of `make bench-history` (bench/bench_history.sh
 * prepares the data and the daemons; docs/history.md "Figures").
 *
 *   bench_history search RPC RUNS FROM TO WORD...   ncc-history's search over the bus
 *   bench_history trgm PGURL RUNS FROM TO WORD...   the same question to PostgreSQL + pg_trgm
 *   bench_history fresh RPC SAMPLES                 commit -> searchable delay
 *   bench_history export RPC FISCAL_YEAR            the export's pages over the bus alone
 *
 * search and trgm ask, for each word, the newest 50 records holding it with
 * the number of matches (what GET /api/v1/records?q=WORD&sort=-started_at
 * answers), RUNS times without a filter and RUNS times with the period
 * FROM..TO, and print one line per word and filter:
 *   <kind> <word> <none|period> <total> <p50 ms> <p95 ms> <p99 ms> <max ms>
 * fresh creates a record holding a new word (CreateRecord, as a supervisor)
 * and asks for that word until it is found, SAMPLES times:
 *   fresh <samples> <p50 ms> <p95 ms> <max ms>
 * Bus requests are signed with NCC_BUS_ACTOR_KEY (the daemons' key). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "history.pb-c.h"
#include "ncc/bus.h"
#include "ncc/crypto.h"
#include "ncc/log.h"

#define S_TIMEOUT_MS 30000

static double s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The q-th quantile (nearest rank) of n sorted values. */
static double s_quantile(const double *sorted, int n, double q)
{
    int rank = (int)(q * n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return sorted[rank - 1];
}

static void s_print(const char *kind, const char *word, const char *filter, long long total,
                    double *ms, int n)
{
    qsort(ms, (size_t)n, sizeof *ms, s_cmp_double);
    printf("%s\t%s\t%s\t%lld\t%.2f\t%.2f\t%.2f\t%.2f\n", kind, word, filter, total,
           s_quantile(ms, n, 0.50), s_quantile(ms, n, 0.95), s_quantile(ms, n, 0.99), ms[n - 1]);
    fflush(stdout);
}

static const ncc_ctx_t s_ctx = {.actor_id = "1", .actor_role = "supervisor"};

/* One ListRecords; returns its total or -1. */
static long long s_list(ncc_rpc_client_t *client, const char *word, const char *from,
                        const char *to, int per_page)
{
    Ncc__History__ListRecords list = NCC__HISTORY__LIST_RECORDS__INIT;
    list.q = (char *)word;
    list.sort = "-started_at";
    list.has_per_page = true;
    list.per_page = per_page;
    list.from = (char *)from;
    list.to = (char *)to;
    ProtobufCMessage *answer = NULL;
    Ncc__Error *error = NULL;
    int rc = ncc_rpc_call_typed(client, &s_ctx, &list.base, &ncc__history__record_list__descriptor,
                                S_TIMEOUT_MS, &answer, &error);
    if (rc < 0) {
        fprintf(stderr, "bench_history: ListRecords %s: %s%s%s\n", word, strerror(-rc),
                error && error->message ? ": " : "", error && error->message ? error->message : "");
        if (error)
            ncc__error__free_unpacked(error, NULL);
        return -1;
    }
    long long total = ((Ncc__History__RecordList *)answer)->total;
    protobuf_c_message_free_unpacked(answer, NULL);
    return total;
}

static int s_search(const char *endpoint, int runs, const char *from, const char *to, char **words,
                    int n_words)
{
    ncc_rpc_client_t *client = ncc_rpc_client_new(endpoint);
    double *ms = calloc((size_t)runs, sizeof *ms);
    if (!client || !ms)
        return 1;
    for (int w = 0; w < n_words; w++) {
        for (int f = 0; f < 2; f++) {
            const char *a = f ? from : NULL, *b = f ? to : NULL;
            long long total = 0;
            for (int i = 0; i < 3; i++) /* warm-up */
                total = s_list(client, words[w], a, b, 50);
            for (int i = 0; i < runs; i++) {
                double start = s_now_ms();
                total = s_list(client, words[w], a, b, 50);
                ms[i] = s_now_ms() - start;
                if (total < 0)
                    return 1;
            }
            s_print("search", words[w], f ? "period" : "none", total, ms, runs);
        }
    }
    free(ms);
    ncc_rpc_client_destroy(&client);
    return 0;
}

static int s_trgm(const char *url, int runs, const char *from, const char *to, char **words,
                  int n_words)
{
    PGconn *conn = PQconnectdb(url);
    double *ms = calloc((size_t)runs, sizeof *ms);
    if (PQstatus(conn) != CONNECTION_OK || !ms) {
        fprintf(stderr, "bench_history: %s\n", PQerrorMessage(conn));
        return 1;
    }
    /* The same question: the newest 50 holding the word, and how many hold it. */
    static const char *const sql[2] = {
        "SELECT id, count(*) OVER () FROM history.records "
        "WHERE (inquiry || ' ' || response || ' ' || summary) LIKE $1 "
        "ORDER BY started_at DESC, id DESC LIMIT 50",
        "SELECT id, count(*) OVER () FROM history.records "
        "WHERE (inquiry || ' ' || response || ' ' || summary) LIKE $1 "
        "AND started_at >= $2::timestamptz AND started_at < $3::timestamptz + interval '1 day' "
        "ORDER BY started_at DESC, id DESC LIMIT 50",
    };
    for (int w = 0; w < n_words; w++) {
        char pattern[256];
        snprintf(pattern, sizeof pattern, "%%%s%%", words[w]);
        for (int f = 0; f < 2; f++) {
            const char *params[] = {pattern, from, to};
            long long total = 0;
            for (int i = 0; i < runs + 1; i++) { /* the first run warms the cache */
                double start = s_now_ms();
                PGresult *res = PQexecParams(conn, sql[f], f ? 3 : 1, NULL, params, NULL, NULL, 0);
                double took = s_now_ms() - start;
                if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                    fprintf(stderr, "bench_history: %s\n", PQerrorMessage(conn));
                    return 1;
                }
                total = PQntuples(res) ? strtoll(PQgetvalue(res, 0, 1), NULL, 10) : 0;
                PQclear(res);
                if (i > 0)
                    ms[i - 1] = took;
            }
            s_print("trgm", words[w], f ? "period" : "none", total, ms, runs);
        }
    }
    free(ms);
    PQfinish(conn);
    return 0;
}

static int s_fresh(const char *endpoint, int samples)
{
    ncc_rpc_client_t *client = ncc_rpc_client_new(endpoint);
    double *ms = calloc((size_t)samples, sizeof *ms);
    if (!client || !ms)
        return 1;
    for (int i = 0; i < samples; i++) {
        char word[64], inquiry[128];
        /* A word no record holds: latin letters from the pid, the sample and the clock. */
        unsigned long long tag = (unsigned long long)getpid() * 1000003ULL +
                                 (unsigned long long)i * 7919ULL +
                                 (unsigned long long)(s_now_ms() * 1000);
        int k = 0;
        word[k++] = 'z';
        for (; tag && k < 14; tag /= 26)
            word[k++] = (char)('a' + tag % 26);
        word[k] = '\0';
        snprintf(inquiry, sizeof inquiry, "鮮度の確認 %s", word);
        Ncc__History__CreateRecord create = NCC__HISTORY__CREATE_RECORD__INIT;
        create.channel = "visit";
        create.inquiry = inquiry;
        ProtobufCMessage *answer = NULL;
        Ncc__Error *error = NULL;
        int rc = ncc_rpc_call_typed(client, &s_ctx, &create.base, &ncc__history__record__descriptor,
                                    S_TIMEOUT_MS, &answer, &error);
        double committed = s_now_ms(); /* the answer comes after the commit */
        if (rc < 0) {
            fprintf(stderr, "bench_history: CreateRecord: %s%s\n", strerror(-rc),
                    error && error->message ? error->message : "");
            return 1;
        }
        protobuf_c_message_free_unpacked(answer, NULL);
        for (;;) {
            long long total = s_list(client, word, NULL, NULL, 1);
            if (total < 0)
                return 1;
            if (total == 1)
                break;
            if (s_now_ms() - committed > 10000) {
                fprintf(stderr, "bench_history: %s not searchable after 10 s\n", word);
                return 1;
            }
        }
        ms[i] = s_now_ms() - committed;
        usleep(50 * 1000);
    }
    qsort(ms, (size_t)samples, sizeof *ms, s_cmp_double);
    printf("fresh\t%d\t%.2f\t%.2f\t%.2f\n", samples, s_quantile(ms, samples, 0.5),
           s_quantile(ms, samples, 0.95), ms[samples - 1]);
    free(ms);
    ncc_rpc_client_destroy(&client);
    return 0;
}

/* Pages through ExportRecords as the gateway does, without HTTP:
 *   export <rows> <bytes> <ms> <pages> */
static int s_export(const char *endpoint, int fiscal_year)
{
    ncc_rpc_client_t *client = ncc_rpc_client_new(endpoint);
    if (!client)
        return 1;
    Ncc__History__ExportRecords ask = NCC__HISTORY__EXPORT_RECORDS__INIT;
    ask.has_fiscal_year = fiscal_year > 0;
    ask.fiscal_year = fiscal_year;
    char cursor[128] = "";
    long long rows = 0, bytes = 0, pages = 0;
    double start = s_now_ms();
    for (;;) {
        ask.cursor = cursor;
        ProtobufCMessage *answer = NULL;
        Ncc__Error *error = NULL;
        int rc =
            ncc_rpc_call_typed(client, &s_ctx, &ask.base, &ncc__history__export_page__descriptor,
                               S_TIMEOUT_MS, &answer, &error);
        if (rc < 0) {
            fprintf(stderr, "bench_history: ExportRecords: %s\n", strerror(-rc));
            return 1;
        }
        Ncc__History__ExportPage *page = (Ncc__History__ExportPage *)answer;
        rows += page->rows;
        bytes += (long long)page->csv.len;
        pages++;
        bool done = page->done;
        snprintf(cursor, sizeof cursor, "%s", page->cursor ? page->cursor : "");
        protobuf_c_message_free_unpacked(answer, NULL);
        if (done)
            break;
    }
    printf("export\t%lld\t%lld\t%.0f\t%lld\n", rows, bytes, s_now_ms() - start, pages);
    ncc_rpc_client_destroy(&client);
    return 0;
}

int main(int argc, char **argv)
{
    ncc_log_init("bench_history", NCC_LOG_ERROR);
    if (ncc_actor_key_from_env() < 0)
        fprintf(stderr, "bench_history: NCC_BUS_ACTOR_KEY unset: requests go unsigned\n");
    if (argc >= 4 && strcmp(argv[1], "export") == 0)
        return s_export(argv[2], atoi(argv[3]));
    if (argc >= 4 && strcmp(argv[1], "fresh") == 0)
        return s_fresh(argv[2], atoi(argv[3]));
    if (argc >= 7 && (strcmp(argv[1], "search") == 0 || strcmp(argv[1], "trgm") == 0)) {
        int runs = atoi(argv[3]);
        if (runs < 1)
            runs = 1;
        if (strcmp(argv[1], "search") == 0)
            return s_search(argv[2], runs, argv[4], argv[5], argv + 6, argc - 6);
        return s_trgm(argv[2], runs, argv[4], argv[5], argv + 6, argc - 6);
    }
    fprintf(stderr, "usage: bench_history search RPC RUNS FROM TO WORD...\n"
                    "       bench_history trgm PGURL RUNS FROM TO WORD...\n"
                    "       bench_history fresh RPC SAMPLES\n"
                    "       bench_history export RPC FISCAL_YEAR\n");
    return 2;
}
