/* faq_eval: the FAQ search of ncc-faq (services/faq/faq_search.c) measured
 * in-process on an evaluation set, without daemons: a quick loop for
 * trying analysis and ranking parameters. `make bench-faq` measures the
 * real thing through the gateway (bench/bench_faq.sh).
 *
 *   faq_eval <folder with corpus_qa.jsonl, dev_queries.json, dev_qrels.json>
 *            [k1 b wq wa wk ww wr wb wy]
 *
 * Prints Recall@10, nDCG@10, MRR@10, Hit@1, Hit@5 (grade >= 1 and 2) and
 * the time per query. The data stays where it is (it may not be copied).
 * Environment: FAQ_EVAL_QQ (query-question cosine weight), FAQ_EVAL_PRF
 * ("docs,terms,weight" of the feedback), FAQ_EVAL_CUT ("A|B": answers cut
 * at those markers), FAQ_EVAL_REPEAT (each search timed n times, the fastest
 * kept), FAQ_EVAL_MISSES (list the queries with no relevant FAQ in the top
 * 10, with the first two FAQs found), FAQ_EVAL_CLICK ("weight,min" of learned
 * words), FAQ_EVAL_CLICKS (k-fold cross-validation of learning from clicks,
 * see below), FAQ_EVAL_CLICK_GRADE, FAQ_EVAL_LARGE (n: the index grows to n
 * FAQs with generated ones as bench/bench_faq.sh makes them: FAQ g pairs the
 * question of corpus FAQ g % c with the answer of (7g + g / c) % c, c the
 * corpus size, numbers from 1,000,000; the latency over many FAQs),
 * FAQ_EVAL_DUMP (a file: each query's hit count, a checksum of the hits'
 * ids, the sum of their scores and the top 10 with their scores, to compare
 * two builds' results: bench/faq/compare_dumps.py). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../services/faq/faq_search.h"
#include "faq_data.h"

static void s_add(void *arg, const faq_doc_t *doc)
{
    faq_index_add(arg, doc);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: faq_eval <data folder> [k1 b wq wa wk ww wr wb wy wu]\n");
        return 2;
    }
    faq_analyzer_t *an =
        faq_analyzer_new(getenv("NCC_FAQ_MECAB_DICDIR") ? getenv("NCC_FAQ_MECAB_DICDIR")
                                                        : "/var/lib/mecab/dic/ipadic-utf8");
    if (!an) {
        fprintf(stderr, "MeCab did not start\n");
        return 2;
    }
    faq_search_params_t p = faq_search_params_default();
    double *slots[] = {&p.k1,
                       &p.b,
                       &p.field_weight[0],
                       &p.field_weight[1],
                       &p.field_weight[2],
                       &p.kind_weight[0],
                       &p.kind_weight[1],
                       &p.kind_weight[2],
                       &p.kind_weight[3],
                       &p.kind_weight[4]};
    for (int i = 2; i < argc && i - 2 < 10; i++)
        *slots[i - 2] = strtod(argv[i], NULL);
    if (getenv("FAQ_EVAL_QQ"))
        p.qq_weight = strtod(getenv("FAQ_EVAL_QQ"), NULL);
    if (getenv("FAQ_EVAL_CLICK"))
        sscanf(getenv("FAQ_EVAL_CLICK"), "%lf,%lf", &p.click_weight, &p.click_min);
    if (getenv("FAQ_EVAL_PRF"))
        sscanf(getenv("FAQ_EVAL_PRF"), "%d,%d,%lf", &p.prf_docs, &p.prf_terms, &p.prf_weight);

    char *corpus = faq_data_read(argv[1], "corpus_qa.jsonl");
    char *qtext = faq_data_read(argv[1], "dev_queries.json");
    char *rtext = faq_data_read(argv[1], "dev_qrels.json");
    cJSON *queries = cJSON_Parse(qtext), *qrels = cJSON_Parse(rtext);
    /* FAQ_EVAL_CLICKS=k: k-fold cross-validation of learning from clicks:
     * the queries of the other folds "clicked" their relevant FAQs (grade >=
     * FAQ_EVAL_CLICK_GRADE, default 1); a query never sees its own;
     * FAQ_EVAL_CLICK_NOISE: the share of clicks sent to a random FAQ instead
     * (operators' mistakes) */
    int folds = getenv("FAQ_EVAL_CLICKS") ? atoi(getenv("FAQ_EVAL_CLICKS")) : 0;
    double noise =
        getenv("FAQ_EVAL_CLICK_NOISE") ? strtod(getenv("FAQ_EVAL_CLICK_NOISE"), NULL) : 0;
    unsigned long long noise_state = 42;
    int click_grade = getenv("FAQ_EVAL_CLICK_GRADE") ? atoi(getenv("FAQ_EVAL_CLICK_GRADE")) : 1;
    size_t nq = 0, n_clicks = 0;
    double recall = 0, ndcg = 0, mrr = 0, hit1 = 0, hit5 = 0, hit1s = 0, hit5s = 0;
    size_t strict_queries = 0;
    double *times = calloc((size_t)cJSON_GetArraySize(queries) + 1, sizeof *times);
    double build = 0;
    size_t docs = 0;
    size_t large = getenv("FAQ_EVAL_LARGE") ? strtoul(getenv("FAQ_EVAL_LARGE"), NULL, 10) : 0;
    FILE *dump = getenv("FAQ_EVAL_DUMP") ? fopen(getenv("FAQ_EVAL_DUMP"), "w") : NULL;
    for (int fold = 0; fold < (folds > 1 ? folds : 1); fold++) {
        faq_index_t *index = faq_index_new(an);
        faq_index_set_params(index, &p);
        double t0 = faq_data_now_ms();
        /* FAQ_EVAL_CUT="A|B": answers end before marker A or B (boilerplate experiments) */
        docs = faq_data_load(corpus, getenv("FAQ_EVAL_CUT"), large, false, s_add, index);
        int at = 0;
        const cJSON *q;
        if (folds > 1) {
            cJSON_ArrayForEach(q, queries)
            {
                const cJSON *rel = cJSON_GetObjectItem(qrels, q->string);
                if (rel && at++ % folds != fold) {
                    const cJSON *r;
                    cJSON_ArrayForEach(r, rel)
                    {
                        if (r->valueint < click_grade)
                            continue;
                        long faq = strtol(r->string, NULL, 10) + 1;
                        /* FAQ_EVAL_CLICK_NOISE=p: that share of clicks goes to a random FAQ */
                        noise_state = noise_state * 6364136223846793005ULL + 1442695040888963407ULL;
                        if ((double)(noise_state >> 11) / 9007199254740992.0 < noise)
                            faq = (long)((noise_state >> 20) % docs) + 1;
                        n_clicks += faq_index_add_click(index, faq, q->valuestring, 1) == 0;
                    }
                }
            }
        }
        faq_index_finish(index);
        build += (faq_data_now_ms() - t0) / 1000.0;
        at = 0;
        cJSON_ArrayForEach(q, queries)
        {
            const cJSON *rel = cJSON_GetObjectItem(qrels, q->string);
            if (!rel)
                continue;
            if (folds > 1 && at++ % folds != fold)
                continue;
            faq_query_t query = {.q = q->valuestring, .top = 10};
            faq_hit_t *hits = NULL;
            size_t count = 0;
            /* FAQ_EVAL_REPEAT: the search timed that many times (the fastest kept) */
            int repeat = getenv("FAQ_EVAL_REPEAT") ? atoi(getenv("FAQ_EVAL_REPEAT")) : 1;
            times[nq] = 1e9;
            for (int r = 0; r < (repeat > 0 ? repeat : 1); r++) {
                free(hits);
                hits = NULL;
                double s = faq_data_now_ms();
                faq_index_search(index, &query, &hits, &count);
                double ms = faq_data_now_ms() - s;
                if (ms < times[nq])
                    times[nq] = ms;
            }
            size_t top = count < 10 ? count : 10;
            if (dump) {
                /* the hits as a set (a checksum of the ids) and the sum of their scores */
                uint64_t ids = 0;
                double scores = 0;
                for (size_t i = 0; i < count; i++) {
                    ids += ((uint64_t)hits[i].id * 0x9e3779b97f4a7c15ull) ^
                           ((uint64_t)hits[i].id >> 7);
                    scores += hits[i].score;
                }
                fprintf(dump, "%s\t%zu\t%016llx\t%.17g", q->string, count, (unsigned long long)ids,
                        scores);
                for (size_t i = 0; i < top; i++)
                    fprintf(dump, "\t%lld:%.17g", (long long)hits[i].id, hits[i].score);
                fputc('\n', dump);
            }
            int relevant = 0, strict = 0;
            double ideal[64];
            int n_ideal = 0;
            const cJSON *r;
            cJSON_ArrayForEach(r, rel)
            {
                if (r->valueint >= 1)
                    relevant++;
                if (r->valueint >= 2)
                    strict++;
                if (n_ideal < 64)
                    ideal[n_ideal++] = r->valueint;
            }
            qsort(ideal, (size_t)n_ideal, sizeof ideal[0], faq_data_cmp_double);
            double idcg = 0;
            for (int i = 0; i < n_ideal && i < 10; i++)
                idcg += ideal[n_ideal - 1 - i] / log2(i + 2.0);
            int found = 0;
            double dcg = 0, rr = 0;
            bool h1 = false, h5 = false, h1s = false, h5s = false;
            for (size_t i = 0; i < top; i++) {
                char key[24];
                snprintf(key, sizeof key, "%ld", (long)hits[i].id - 1);
                const cJSON *g = cJSON_GetObjectItem(rel, key);
                int grade = g ? g->valueint : 0;
                if (grade >= 1) {
                    found++;
                    dcg += grade / log2((double)i + 2.0);
                    if (rr == 0)
                        rr = 1.0 / (double)(i + 1);
                    if (i < 1)
                        h1 = true;
                    if (i < 5)
                        h5 = true;
                }
                if (grade >= 2) {
                    if (i < 1)
                        h1s = true;
                    if (i < 5)
                        h5s = true;
                }
            }
            recall += relevant ? (double)found / relevant : 0;
            ndcg += idcg > 0 ? dcg / idcg : 0;
            mrr += rr;
            hit1 += h1;
            hit5 += h5;
            if (strict) {
                strict_queries++;
                hit1s += h1s;
                hit5s += h5s;
            }
            if (getenv("FAQ_EVAL_MISSES") && found == 0)
                printf("miss\t%s\t%s\t%ld\t%ld\t%ld\n", q->string, q->valuestring,
                       count > 0 ? (long)hits[0].id - 1 : -1L,
                       count > 1 ? (long)hits[1].id - 1 : -1L, (long)count);
            free(hits);
            nq++;
        }
        faq_index_destroy(&index);
    }
    if (folds > 1)
        printf("%d folds, %zu clicks learned per fold (grade >= %d, %.0f %% to a random FAQ)\n",
               folds, n_clicks / (size_t)folds, click_grade, noise * 100);
    qsort(times, nq, sizeof *times, faq_data_cmp_double);
    printf("docs %zu (index built in %.2f s), queries %zu\n", docs, build, nq);
    printf("Recall@10 %.3f  nDCG@10 %.3f  MRR@10 %.3f  Hit@1 %.3f  Hit@5 %.3f  "
           "(grade 2: Hit@1 %.3f  Hit@5 %.3f over %zu)\n",
           recall / nq, ndcg / nq, mrr / nq, hit1 / nq, hit5 / nq, hit1s / strict_queries,
           hit5s / strict_queries, strict_queries);
    printf("search p50 %.3f ms  p99 %.3f ms  max %.3f ms\n", times[nq / 2], times[(nq * 99) / 100],
           times[nq - 1]);
    if (dump)
        fclose(dump);
    cJSON_Delete(queries);
    cJSON_Delete(qrels);
    free(times);
    free(qtext);
    free(rtext);
    free(corpus);
    faq_analyzer_destroy(&an);
    return 0;
}
