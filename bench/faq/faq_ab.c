/* faq_ab: two versions of the FAQ search (services/faq/faq_search.c) timed in
 * one process, query by query, on the same FAQs: A is an older version whose
 * functions were renamed a_faq_* (bench/faq/faq_ab.sh builds it from a git
 * revision), B the one being built. Every development query is searched by
 * both in turn (A first on even rounds, B first on odd ones), so the load
 * of a shared machine falls on both alike; per query the median of the
 * rounds is kept. Prints p50 / p90 / p99 / max / mean of each and the
 * queries whose results differ (hit count, the set of hits, the top 10 in
 * order, scores beyond 1e-6 relative).
 *
 *   faq_ab <data folder>    (corpus_qa.jsonl, dev_queries.json)
 *
 * Environment: FAQ_EVAL_LARGE (n: generated FAQs up to n, as faq_eval and
 * bench/bench_faq.sh make them), ROUNDS (3), FILTER (none | published |
 * public: the reader's filter of staff or residents; the generated FAQs are
 * then one in ten a draft and one in three internal). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../services/faq/faq_search.h"
#include "faq_data.h"

faq_analyzer_t *a_faq_analyzer_new(const char *dicdir);
faq_index_t *a_faq_index_new(faq_analyzer_t *analyzer);
int a_faq_index_add(faq_index_t *self, const faq_doc_t *doc);
void a_faq_index_finish(faq_index_t *self);
int a_faq_index_search(faq_index_t *self, const faq_query_t *query, faq_hit_t **ret_hits,
                       size_t *ret_count);

/* Both indexes get every FAQ. */
static void s_add(void *arg, const faq_doc_t *doc)
{
    faq_index_t **both = arg;
    a_faq_index_add(both[0], doc);
    faq_index_add(both[1], doc);
}

static void s_report(const char *name, double *t, size_t n)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += t[i];
    qsort(t, n, sizeof *t, faq_data_cmp_double);
    printf("%s: p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms  mean %.3f ms\n", name, t[n / 2],
           t[n * 9 / 10], t[n * 99 / 100], t[n - 1], sum / (double)n);
}

/* The hits as a set: the sum of a mix of their ids. */
static uint64_t s_id_sum(const faq_hit_t *hits, size_t n)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += ((uint64_t)hits[i].id * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)hits[i].id >> 7);
    return sum;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: faq_ab <data folder>\n");
        return 2;
    }
    const char *dic = getenv("NCC_FAQ_MECAB_DICDIR") ? getenv("NCC_FAQ_MECAB_DICDIR")
                                                     : "/var/lib/mecab/dic/ipadic-utf8";
    faq_analyzer_t *an_a = a_faq_analyzer_new(dic), *an_b = faq_analyzer_new(dic);
    if (!an_a || !an_b) {
        fprintf(stderr, "MeCab did not start\n");
        return 2;
    }
    faq_index_t *ia = a_faq_index_new(an_a), *ib = faq_index_new(an_b);
    size_t large = getenv("FAQ_EVAL_LARGE") ? strtoul(getenv("FAQ_EVAL_LARGE"), NULL, 10) : 0;
    int rounds = getenv("ROUNDS") ? atoi(getenv("ROUNDS")) : 3;
    if (rounds < 1)
        rounds = 1;
    const char *filter = getenv("FILTER") ? getenv("FILTER") : "none";
    char *corpus = faq_data_read(argv[1], "corpus_qa.jsonl");
    double t0 = faq_data_now_ms();
    faq_index_t *both[] = {ia, ib};
    size_t docs = faq_data_load(corpus, NULL, large, true, s_add, both);
    a_faq_index_finish(ia);
    faq_index_finish(ib);
    printf("docs %zu (both indexes built in %.1f s), %d rounds, filter %s\n", docs,
           (faq_data_now_ms() - t0) / 1000, rounds, filter);

    char *qtext = faq_data_read(argv[1], "dev_queries.json");
    cJSON *queries = cJSON_Parse(qtext);
    size_t nq = (size_t)cJSON_GetArraySize(queries);
    double *ta = calloc(nq * (size_t)rounds, sizeof *ta),
           *tb = calloc(nq * (size_t)rounds, sizeof *tb);
    size_t differ = 0;
    double worst = 0;
    for (int r = 0; r < rounds; r++) {
        size_t qi = 0;
        const cJSON *q;
        cJSON_ArrayForEach(q, queries)
        {
            faq_query_t query = {.q = q->valuestring, .top = 10};
            query.published_only = strcmp(filter, "published") == 0;
            query.public_only = strcmp(filter, "public") == 0;
            faq_hit_t *ha = NULL, *hb = NULL;
            size_t ca = 0, cb = 0;
            for (int k = 0; k < 2; k++) {
                bool a_now = (k == 0) == (r % 2 == 0);
                double s = faq_data_now_ms();
                if (a_now)
                    a_faq_index_search(ia, &query, &ha, &ca);
                else
                    faq_index_search(ib, &query, &hb, &cb);
                (a_now ? ta : tb)[qi * (size_t)rounds + (size_t)r] = faq_data_now_ms() - s;
            }
            if (r == 0) {
                bool same = ca == cb && s_id_sum(ha, ca) == s_id_sum(hb, cb);
                for (size_t i = 0; same && i < ca && i < 10; i++) {
                    double d = fabs(ha[i].score - hb[i].score) / fabs(ha[i].score);
                    worst = d > worst ? d : worst;
                    same = ha[i].id == hb[i].id && d <= 1e-6;
                }
                if (!same) {
                    differ++;
                    printf("differ: %s %s (%zu / %zu hits)\n", q->string, q->valuestring, ca, cb);
                }
            }
            free(ha);
            free(hb);
            qi++;
        }
    }
    double *ma = calloc(nq, sizeof *ma), *mb = calloc(nq, sizeof *mb);
    for (size_t i = 0; i < nq; i++) {
        qsort(ta + i * (size_t)rounds, (size_t)rounds, sizeof *ta, faq_data_cmp_double);
        qsort(tb + i * (size_t)rounds, (size_t)rounds, sizeof *tb, faq_data_cmp_double);
        ma[i] = ta[i * (size_t)rounds + (size_t)rounds / 2];
        mb[i] = tb[i * (size_t)rounds + (size_t)rounds / 2];
    }
    printf("queries %zu: %zu differ; largest relative difference of a top-10 score %.3g\n", nq,
           differ, worst);
    s_report("A", ma, nq);
    s_report("B", mb, nq);
    return 0;
}
