/* faq_data.h: what bench/faq's in-process tools (faq_eval, faq_ab) share:
 * reading the evaluation data where it is, the clock, and the FAQs as
 * bench/bench_faq.sh puts them into ncc (the corpus, then generated FAQs up
 * to FAQ_EVAL_LARGE). Header-only: each tool is one program built on its
 * own (faq_ab.sh compiles faq_ab.c by itself). */
#ifndef BENCH_FAQ_DATA_H
#define BENCH_FAQ_DATA_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../services/faq/faq_search.h"

/* The whole file `dir`/`name` (exits 2 when it cannot be read). */
static char *faq_data_read(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len)
        exit(2);
    buf[len] = '\0';
    fclose(f);
    return buf;
}

/* Milliseconds of the monotonic clock. */
static double faq_data_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int faq_data_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef void (*faq_data_add_fn)(void *arg, const faq_doc_t *doc);

/* Gives `add` every FAQ of the corpus (corpus_qa.jsonl's text, left as it
 * is): number = id = corpus id + 1, published, public; `cut` ("A|B", may
 * be NULL) ends the answers before those markers. Then, up to `large` FAQs
 * in all, generated ones as bench/bench_faq.sh writes them in SQL: FAQ g
 * pairs the question of corpus FAQ g % c with the answer of (7g + g / c) %
 * c (the corpus in number order), numbers from 1,000,000; with `mixed`, one
 * in ten is a draft and one in three internal (for filtered searches).
 * Returns the number of FAQs given. */
static size_t faq_data_load(const char *corpus, const char *cut, size_t large, bool mixed,
                            faq_data_add_fn add, void *arg)
{
    enum { KEPT = 4096 };
    cJSON **kept = calloc(KEPT, sizeof *kept); /* the corpus by number, for `large` */
    char *text = strdup(corpus);
    if (!kept || !text)
        exit(2);
    size_t n_kept = 0, docs = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        if (!o)
            continue;
        long id = strtol(cJSON_GetObjectItem(o, "id")->valuestring, NULL, 10);
        char *answer = cJSON_GetObjectItem(o, "Answer")->valuestring;
        for (const char *c = cut; c && *c;) {
            const char *bar = strchr(c, '|');
            char pat[128];
            size_t len = bar ? (size_t)(bar - c) : strlen(c);
            snprintf(pat, sizeof pat, "%.*s", (int)len, c);
            char *at = strstr(answer, pat);
            if (at)
                *at = 0;
            c = bar ? bar + 1 : NULL;
        }
        faq_doc_t doc = {.id = id + 1,
                         .number = id + 1,
                         .question = cJSON_GetObjectItem(o, "Question")->valuestring,
                         .answer = answer,
                         .keywords = "",
                         .status = "published",
                         .visibility = "public"};
        add(arg, &doc);
        docs++;
        if (large && n_kept < KEPT)
            kept[n_kept++] = o;
        else
            cJSON_Delete(o);
    }
    for (size_t g = 1; n_kept > 0 && docs < large; g++, docs++) {
        const cJSON *qo = kept[g % n_kept], *ao = kept[(g * 7 + g / n_kept) % n_kept];
        faq_doc_t doc = {.id = (int64_t)(1000000 + g),
                         .number = (int64_t)(1000000 + g),
                         .question = cJSON_GetObjectItem(qo, "Question")->valuestring,
                         .answer = cJSON_GetObjectItem(ao, "Answer")->valuestring,
                         .keywords = "",
                         .status = mixed && g % 10 == 0 ? "draft" : "published",
                         .visibility = mixed && g % 3 == 0 ? "internal" : "public"};
        add(arg, &doc);
    }
    for (size_t i = 0; i < n_kept; i++)
        cJSON_Delete(kept[i]);
    free(kept);
    free(text);
    return docs;
}

#endif
