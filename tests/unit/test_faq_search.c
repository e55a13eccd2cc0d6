/* The FAQ search (services/faq/faq_search.c, docs/faq.md "Search") against a
 * straightforward reference computed here: the index rebuilt from the
 * analyser's terms (faq_analyzer_terms) into plain arrays, and every score
 * summed as docs/faq.md says (BM25F per kind of term over three fields, the
 * query-question cosine, pseudo-relevance feedback, the floor, filters,
 * synonyms, FAQ numbers), without the search's precomputed impacts, shared
 * working arrays or one-pass selections. Generated FAQs (a skewed
 * vocabulary: frequent and rare words, near ties; ids not in the order
 * added; states, visibilities, categories, departments), random queries
 * (words, sentences, one kanji, readings, unknown words, numbers) with pages
 * of 1-50 and the whole list, with and without filters, under several
 * parameter sets: the same hits, the best `top` in the same order, scores
 * within 1e-6 relative. Learned words (faq_index_add_click) are checked
 * only as far as the filters go. Needs MeCab's IPA dictionary
 * (NCC_FAQ_MECAB_DICDIR, else /var/lib/mecab/dic/ipadic-utf8).
 *
 * The model as the reference computes it: a posting's BM25F part is
 * weight(kind, query weight, idf) * tfw / (k1 + tfw), tfw the sum over the
 * fields of field_weight * tf * inv_norm with inv_norm = 1 / (1 - b + b *
 * len / avg_len) held as a float, and tfw / (k1 + tfw) held as a float (the
 * index stores it so); ties among the feedback's words go to the word the
 * index met first. */
#include <criterion/criterion.h>
#include <czmq.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../services/faq/faq_search.h"

#define S_DOCS   2500
#define S_FIELDS 3
#define S_KINDS  5
enum { K_W, K_R, K_B, K_Y, K_U };

/* ---- generated FAQs --------------------------------------------------------------------- */

static const char *const s_words[] = {
    "住民票",     "印鑑登録",     "証明書",   "転入",     "転出",       "届出",     "マイナンバー",
    "カード",     "国民健康保険", "保険料",   "納付",     "口座振替",   "児童手当", "保育所",
    "申請",       "窓口",         "手続き",   "必要",     "書類",       "本人確認", "代理人",
    "委任状",     "手数料",       "郵送",     "コンビニ", "交付",       "市役所",   "支所",
    "ごみ",       "粗大ごみ",     "収集",     "分別",     "リサイクル", "犬",       "登録",
    "予防接種",   "健康診断",     "がん検診", "子ども",   "医療費",     "助成",     "税金",
    "固定資産税", "軽自動車税",   "住民税",   "課税",     "証明",       "図書館",   "利用",
    "駐輪場",     "公園",         "道路",     "水道",     "下水道",     "料金",     "引っ越し",
    "結婚",       "出生",         "死亡",     "戸籍",     "謄本",       "抄本",     "パスポート",
};
#define S_N_WORDS (sizeof s_words / sizeof s_words[0])
static const char *const s_joins[] = {"の", "を", "は", "と", "で", "に"};

static uint64_t s_rng;

static uint32_t s_rand(void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return (uint32_t)(s_rng >> 11);
}

/* A word, the first ones far more often (about Zipf). */
static const char *s_word(void)
{
    double u = (double)(s_rand() % 1000000) / 1000000.0;
    size_t i = (size_t)((double)S_N_WORDS * u * u * u);
    return s_words[i < S_N_WORDS ? i : S_N_WORDS - 1];
}

static void s_sentence(char *buf, size_t cap, int words, const char *end)
{
    size_t at = 0;
    buf[0] = '\0';
    for (int i = 0; i < words; i++)
        at += (size_t)snprintf(buf + at, cap - at, "%s%s", s_word(),
                               i + 1 < words ? s_joins[s_rand() % 6] : end);
}

static const char *const s_status[] = {"published", "published", "draft", "review", "archived"};
static const char *const s_category[] = {"", "届出", "税", "福祉"};

/* ---- the reference ------------------------------------------------------------------------ */

typedef struct {
    int kind;
    uint32_t seq; /* the order the index met it */
    uint32_t *doc;
    uint16_t (*tf)[S_FIELDS];
    size_t n, cap;
    double idf, idf_q;
} r_term_t;

typedef struct {
    r_term_t *term;
    uint16_t tf[S_FIELDS];
} r_fwd_t;

typedef struct {
    int64_t id, number, department_id;
    char status, visibility;
    char category[32];
    uint32_t len[S_KINDS][S_FIELDS];
    r_fwd_t *fwd;
    size_t n_fwd, cap_fwd;
    double q_norm;
} r_doc_t;

static faq_analyzer_t *s_an;
static faq_index_t *s_index;
static zhashx_t *r_terms; /* "k:term" -> r_term_t */
static uint32_t r_n_terms;
static r_doc_t r_docs[S_DOCS];
static size_t r_n_docs;
static double r_avg[S_KINDS][S_FIELDS];
static faq_search_params_t r_params;
static char **r_synonyms[4]; /* normalised words, NULL-terminated */
static size_t r_n_synonyms;
static double s_worst;  /* the largest relative difference of a score seen */
static int32_t *r_slot; /* by term seq: its candidate in r_feedback, or -1 */

static int s_kind(char c)
{
    return c == 'w' ? K_W : c == 'r' ? K_R : c == 'b' ? K_B : c == 'y' ? K_Y : K_U;
}

/* Calls fn(arg, kind, key) for each term of `text` ("k:term"), in order. */
static void s_terms(const char *text, void (*fn)(void *, int, const char *), void *arg)
{
    char *all = faq_analyzer_terms(s_an, text);
    cr_assert_not_null(all);
    char *save = NULL;
    for (char *tok = strtok_r(all, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        size_t len = strlen(tok);
        if (len < 3 || len - 2 > 96) /* the index keeps terms of 1-96 bytes */
            continue;
        fn(arg, s_kind(tok[0]), tok);
    }
    free(all);
}

typedef struct {
    size_t doc;
    int field;
} r_adding_t;

static void r_add_term(void *arg, int kind, const char *key)
{
    const r_adding_t *a = arg;
    r_doc_t *d = &r_docs[a->doc];
    d->len[kind][a->field]++;
    r_term_t *t = zhashx_lookup(r_terms, key);
    if (!t) {
        t = calloc(1, sizeof *t);
        t->kind = kind;
        t->seq = r_n_terms++;
        zhashx_insert(r_terms, key, t);
    }
    if (t->n > 0 && t->doc[t->n - 1] == a->doc) {
        t->tf[t->n - 1][a->field]++;
        return;
    }
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 8;
        t->doc = realloc(t->doc, t->cap * sizeof *t->doc);
        t->tf = realloc(t->tf, t->cap * sizeof *t->tf);
    }
    t->doc[t->n] = (uint32_t)a->doc;
    memset(t->tf[t->n], 0, sizeof t->tf[t->n]);
    t->tf[t->n][a->field] = 1;
    t->n++;
}

static void r_add(const faq_doc_t *doc)
{
    r_doc_t *d = &r_docs[r_n_docs];
    d->id = doc->id;
    d->number = doc->number;
    d->department_id = doc->department_id;
    d->status = doc->status[0];
    d->visibility = doc->visibility[0];
    snprintf(d->category, sizeof d->category, "%s", doc->category);
    const char *fields[S_FIELDS] = {doc->question, doc->answer, doc->keywords};
    for (int f = 0; f < S_FIELDS; f++) {
        if (!*fields[f])
            continue;
        r_adding_t a = {.doc = r_n_docs, .field = f};
        s_terms(fields[f], r_add_term, &a);
    }
    r_n_docs++;
}

/* A term's weight in the query-question cosine. */
static double r_term_weight(const r_term_t *t)
{
    return r_params.kind_weight[t->kind == K_U ? K_W : t->kind] * t->idf_q;
}

static void r_finish(void)
{
    double n = (double)r_n_docs;
    for (int k = 0; k < S_KINDS; k++)
        for (int f = 0; f < S_FIELDS; f++) {
            double sum = 0;
            for (size_t i = 0; i < r_n_docs; i++)
                sum += r_docs[i].len[k][f];
            r_avg[k][f] = sum > 0 ? sum / n : 1.0;
        }
    for (r_term_t *t = zhashx_first(r_terms); t; t = zhashx_next(r_terms)) {
        double df = (double)t->n, dfq = 0;
        for (size_t j = 0; j < t->n; j++)
            dfq += t->tf[j][0] > 0;
        t->idf = log(1.0 + (n - df + 0.5) / (df + 0.5));
        t->idf_q = log(1.0 + (n - dfq + 0.5) / (dfq + 0.5));
        /* the forward index: words anywhere, any term of the question */
        for (size_t j = 0; j < t->n; j++) {
            if (t->kind != K_W && !t->tf[j][0])
                continue;
            r_doc_t *d = &r_docs[t->doc[j]];
            if (d->n_fwd == d->cap_fwd) {
                d->cap_fwd = d->cap_fwd ? d->cap_fwd * 2 : 16;
                d->fwd = realloc(d->fwd, d->cap_fwd * sizeof *d->fwd);
            }
            d->fwd[d->n_fwd].term = t;
            memcpy(d->fwd[d->n_fwd].tf, t->tf[j], sizeof t->tf[j]);
            d->n_fwd++;
        }
    }
}

/* What depends on the parameters: each question's vector length. */
static void r_set_params(const faq_search_params_t *p)
{
    r_params = *p;
    for (size_t i = 0; i < r_n_docs; i++) {
        r_doc_t *d = &r_docs[i];
        double sum = 0;
        for (size_t j = 0; j < d->n_fwd; j++) {
            const r_fwd_t *f = &d->fwd[j];
            if (!f->tf[0] || f->term->kind == K_U)
                continue;
            double w = r_term_weight(f->term) * (1.0 + log((double)f->tf[0]));
            sum += w * w;
        }
        d->q_norm = sqrt(sum);
    }
}

/* BM25F's saturated term frequency of posting j of t (see the top). */
static double r_impact(const r_term_t *t, size_t j)
{
    const r_doc_t *d = &r_docs[t->doc[j]];
    double tfw = 0;
    for (int f = 0; f < S_FIELDS; f++) {
        float inv_norm =
            (float)(1.0 / (1.0 - r_params.b +
                           r_params.b * (double)d->len[t->kind][f] / r_avg[t->kind][f]));
        if (t->tf[j][f])
            tfw += r_params.field_weight[f] * (double)t->tf[j][f] * inv_norm;
    }
    return tfw > 0 ? (double)(float)(tfw / (r_params.k1 + tfw)) : 0;
}

static bool r_passes(const r_doc_t *d, const faq_query_t *q)
{
    if ((q->published_only || q->public_only) && d->status != 'p')
        return false;
    if (q->public_only && d->visibility != 'p')
        return false;
    if (q->status && *q->status && d->status != q->status[0])
        return false;
    if (q->visibility && *q->visibility && d->visibility != q->visibility[0])
        return false;
    if (q->category && *q->category && strcmp(d->category, q->category) != 0)
        return false;
    return q->department_id <= 0 || d->department_id == q->department_id;
}

typedef struct {
    char key[104];
    int kind;
    double weight;
    r_term_t *term;
} r_qterm_t;

typedef struct {
    r_qterm_t items[1024];
    size_t n;
    double weight;
} r_query_t;

static void r_query_term(void *arg, int kind, const char *key)
{
    r_query_t *q = arg;
    for (size_t i = 0; i < q->n; i++)
        if (strcmp(q->items[i].key, key) == 0) {
            if (q->items[i].weight < q->weight)
                q->items[i].weight = q->weight;
            return;
        }
    cr_assert_lt(q->n, 1024);
    r_qterm_t *t = &q->items[q->n++];
    snprintf(t->key, sizeof t->key, "%s", key);
    t->kind = kind;
    t->weight = q->weight;
    t->term = zhashx_lookup(r_terms, key);
}

static size_t r_code_points(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

static int64_t r_number(const char *norm)
{
    const char *p = norm;
    if (*p == '#')
        p++;
    else if (strncmp(p, "no.", 3) == 0)
        p += 3;
    else if (strncmp(p, "no", 2) == 0)
        p += 2;
    else if (strncmp(p, "faq", 3) == 0)
        p += 3;
    while (*p == ' ')
        p++;
    if (!*p || strlen(p) > 12)
        return -1;
    for (const char *c = p; *c; c++)
        if (*c < '0' || *c > '9')
            return -1;
    return strtoll(p, NULL, 10);
}

/* BM25F of query terms [from, to) into score (and dot when not NULL). */
static void r_sum(const r_query_t *q, size_t from, size_t to, size_t q_chars, double *score,
                  double *dot, double *q_sum)
{
    const faq_search_params_t *p = &r_params;
    for (size_t i = from; i < to; i++) {
        const r_qterm_t *qt = &q->items[i];
        const r_term_t *t = qt->term;
        if (!t || (qt->kind == K_U && q_chars > 2))
            continue;
        double weight = p->kind_weight[qt->kind == K_U ? K_W : qt->kind] * qt->weight * t->idf;
        double tw = r_term_weight(t);
        double qv = qt->kind == K_U ? 0 : tw * qt->weight;
        *q_sum += qv * qv;
        for (size_t j = 0; j < t->n; j++) {
            score[t->doc[j]] += weight * r_impact(t, j);
            if (dot && qv > 0 && t->tf[j][0])
                dot[t->doc[j]] += qv * tw * (1.0 + log((double)t->tf[j][0]));
        }
    }
}

static void r_combine(const faq_query_t *query, const double *score, const double *dot,
                      double q_sum, double *out)
{
    double best = 0;
    for (size_t i = 0; i < r_n_docs; i++)
        if (r_passes(&r_docs[i], query) && score[i] > best)
            best = score[i];
    for (size_t i = 0; i < r_n_docs; i++) {
        out[i] = 0;
        if (!r_passes(&r_docs[i], query) || score[i] <= 0)
            continue;
        double cosine = 0;
        if (q_sum > 0 && r_docs[i].q_norm > 0)
            cosine = dot[i] / (sqrt(q_sum) * r_docs[i].q_norm);
        out[i] = score[i] + r_params.qq_weight * best * cosine;
    }
}

typedef struct {
    r_term_t *term;
    double weight;
} r_cand_t;

static int r_cand_compare(const void *a, const void *b)
{
    const r_cand_t *x = a, *y = b;
    if (x->weight != y->weight)
        return x->weight < y->weight ? 1 : -1;
    return x->term->seq < y->term->seq ? -1 : 1;
}

/* The feedback's words added to q. */
static void r_feedback(r_query_t *q, const double *combined)
{
    const faq_search_params_t *p = &r_params;
    int top[16], n_top = 0;
    for (int k = 0; k < p->prf_docs && k < 16; k++) {
        int best = -1;
        for (size_t i = 0; i < r_n_docs; i++) {
            bool taken = false;
            for (int j = 0; j < n_top; j++)
                taken |= top[j] == (int)i;
            if (!taken && combined[i] > 0 && (best < 0 || combined[i] > combined[best]))
                best = (int)i;
        }
        if (best < 0)
            break;
        top[n_top++] = best;
    }
    static r_cand_t cand[8192];
    size_t n = 0;
    for (int k = 0; k < n_top; k++) {
        const r_doc_t *d = &r_docs[top[k]];
        double length = 0;
        for (size_t j = 0; j < d->n_fwd; j++)
            if (d->fwd[j].term->kind == K_W)
                for (int f = 0; f < S_FIELDS; f++)
                    length += p->field_weight[f] * d->fwd[j].tf[f];
        if (length <= 0)
            continue;
        for (size_t j = 0; j < d->n_fwd; j++) {
            const r_fwd_t *fw = &d->fwd[j];
            if (fw->term->kind != K_W || fw->term->n < 2)
                continue;
            double tf = 0;
            for (int f = 0; f < S_FIELDS; f++)
                tf += p->field_weight[f] * fw->tf[f];
            double w = tf / length * fw->term->idf / (double)(k + 1);
            int32_t *c = &r_slot[fw->term->seq];
            if (*c < 0) {
                cr_assert_lt(n, 8192);
                *c = (int32_t)n;
                cand[n++] = (r_cand_t){.term = fw->term, .weight = 0};
            }
            cand[*c].weight += w;
        }
    }
    for (size_t i = 0; i < n; i++)
        r_slot[cand[i].term->seq] = -1;
    qsort(cand, n, sizeof *cand, r_cand_compare);
    double top_weight = n ? cand[0].weight : 0;
    int added = 0;
    for (size_t i = 0; i < n && added < p->prf_terms && top_weight > 0; i++) {
        bool in_query = false;
        for (size_t j = 0; j < q->n; j++)
            in_query |= q->items[j].term == cand[i].term;
        if (in_query)
            continue;
        r_qterm_t *t = &q->items[q->n++];
        memset(t, 0, sizeof *t);
        t->kind = K_W;
        t->term = cand[i].term;
        t->weight = p->prf_weight * cand[i].weight / top_weight;
        added++;
    }
}

/* Every hit of `query`, as faq_index_search defines them (unordered). */
static size_t r_search(const faq_query_t *query, faq_hit_t *hits)
{
    char *norm = faq_normalize(query->q);
    cr_assert_not_null(norm);
    static r_query_t q;
    q.n = 0;
    q.weight = 1.0;
    s_terms(query->q, r_query_term, &q);
    size_t q_chars = r_code_points(norm);
    q.weight = r_params.synonym_weight;
    for (size_t g = 0; g < r_n_synonyms; g++) {
        bool hit = false;
        for (char **w = r_synonyms[g]; *w; w++)
            hit |= **w && (strcmp(*w, norm) == 0 || (r_code_points(*w) >= 2 && strstr(norm, *w)));
        for (char **w = r_synonyms[g]; hit && *w; w++)
            if (!strstr(norm, *w))
                s_terms(*w, r_query_term, &q);
    }
    static double score[S_DOCS], dot[S_DOCS], combined[S_DOCS];
    memset(score, 0, sizeof score);
    memset(dot, 0, sizeof dot);
    double q_sum = 0;
    size_t first = q.n;
    r_sum(&q, 0, first, q_chars, score, dot, &q_sum);
    r_combine(query, score, dot, q_sum, combined);
    if (r_params.prf_docs > 0 && r_params.prf_terms > 0 && r_params.prf_weight > 0) {
        r_feedback(&q, combined);
        double ignored = 0;
        r_sum(&q, first, q.n, q_chars, score, NULL, &ignored);
        r_combine(query, score, dot, q_sum, combined);
    }
    double best = 0;
    for (size_t i = 0; i < r_n_docs; i++)
        if (combined[i] > best)
            best = combined[i];
    int64_t number = r_number(norm);
    size_t n = 0;
    for (size_t i = 0; i < r_n_docs; i++) {
        const r_doc_t *d = &r_docs[i];
        if (!r_passes(d, query))
            continue;
        if (number >= 0 && d->number == number)
            hits[n++] = (faq_hit_t){.id = d->id, .score = best + 1000.0};
        else if (combined[i] > 0 && combined[i] >= best * r_params.min_fraction)
            hits[n++] = (faq_hit_t){.id = d->id, .score = combined[i]};
    }
    free(norm);
    return n;
}

/* ---- comparison --------------------------------------------------------------------------- */

static int s_by_rank(const void *a, const void *b)
{
    const faq_hit_t *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int s_by_id(const void *a, const void *b)
{
    const faq_hit_t *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

static void s_params(const faq_search_params_t *p)
{
    faq_index_set_params(s_index, p);
    r_set_params(p);
}

/* Searches `query` and asserts the reference's hits; returns their count. */
static size_t s_compare(const faq_query_t *query)
{
    static faq_hit_t ref[S_DOCS + 1], mine[S_DOCS + 1];
    size_t n_ref = r_search(query, ref);
    faq_hit_t *hits = NULL;
    size_t count = 99;
    cr_assert_eq(faq_index_search(s_index, query, &hits, &count), 0);
    cr_assert_eq(count, n_ref, "q \"%s\" top %zu: %zu hits, the reference %zu", query->q,
                 query->top, count, n_ref);
    cr_assert(count > 0 || hits == NULL);
    qsort(ref, n_ref, sizeof *ref, s_by_rank);
    /* the best `top` first, in order */
    size_t ordered = query->top == 0 || query->top > count ? count : query->top;
    for (size_t i = 0; i < ordered; i++)
        cr_assert_eq(hits[i].id, ref[i].id,
                     "q \"%s\" top %zu: hit %zu is %lld (%.17g), the reference's %lld (%.17g)",
                     query->q, query->top, i, (long long)hits[i].id, hits[i].score,
                     (long long)ref[i].id, ref[i].score);
    /* every hit, with its score */
    if (count)
        memcpy(mine, hits, count * sizeof *hits);
    qsort(mine, count, sizeof *mine, s_by_id);
    qsort(ref, n_ref, sizeof *ref, s_by_id);
    for (size_t i = 0; i < count; i++) {
        cr_assert_eq(mine[i].id, ref[i].id, "q \"%s\": hit %lld, the reference has %lld", query->q,
                     (long long)mine[i].id, (long long)ref[i].id);
        double diff = fabs(mine[i].score - ref[i].score) / fabs(ref[i].score);
        if (diff > s_worst)
            s_worst = diff;
        cr_assert(diff <= 1e-6, "q \"%s\": FAQ %lld scores %.17g, the reference %.17g", query->q,
                  (long long)mine[i].id, mine[i].score, ref[i].score);
    }
    free(hits);
    return count;
}

/* ---- set-up ------------------------------------------------------------------------------- */

static void setup(void)
{
    s_rng = 88172645463325252ull;
    const char *dicdir = getenv("NCC_FAQ_MECAB_DICDIR");
    s_an = faq_analyzer_new(dicdir ? dicdir : "/var/lib/mecab/dic/ipadic-utf8");
    cr_assert_not_null(s_an, "MeCab did not start (IPA dictionary)");
    s_index = faq_index_new(s_an);
    cr_assert_not_null(s_index);
    r_terms = zhashx_new();
    r_n_terms = 0;
    r_n_docs = 0;
    r_n_synonyms = 0;
    memset(r_docs, 0, sizeof r_docs);
    char question[512], answer[2048], keywords[256];
    for (int i = 0; i < S_DOCS; i++) {
        s_sentence(question, sizeof question, 2 + (int)(s_rand() % 4), "はどうすればいいですか。");
        s_sentence(answer, sizeof answer, 4 + (int)(s_rand() % 30), "です。");
        if (i % 5 == 0) /* numbers in the text: a query by number also finds them */
            snprintf(answer + strlen(answer), sizeof answer - strlen(answer), "番号%dと%dも参照。",
                     100 + i, 101 + i);
        /* (a field of kana only would be analysed as a query is: avoided) */
        if (s_rand() % 4 == 0)
            s_sentence(keywords, sizeof keywords, 1 + (int)(s_rand() % 3), "。");
        else
            keywords[0] = '\0';
        faq_doc_t doc = {
            .id = 5000 + (int64_t)((i * 7919) % S_DOCS), /* ids not in the order added */
            .number = 100 + i,
            .question = question,
            .answer = answer,
            .keywords = keywords,
            .status = s_status[s_rand() % 5],
            .visibility = s_rand() % 3 ? "public" : "internal",
            .category = s_category[s_rand() % 4],
            .department_id = (int64_t)(s_rand() % 4),
        };
        cr_assert_eq(faq_index_add(s_index, &doc), 0);
        r_add(&doc);
    }
    faq_index_finish(s_index);
    r_finish();
    r_slot = malloc(r_n_terms * sizeof *r_slot);
    for (uint32_t i = 0; i < r_n_terms; i++)
        r_slot[i] = -1;
    faq_search_params_t p = faq_search_params_default();
    r_set_params(&p);
    cr_assert_eq(faq_index_size(s_index), S_DOCS);
}

static void teardown(void)
{
    faq_index_destroy(&s_index);
    faq_analyzer_destroy(&s_an);
    for (r_term_t *t = zhashx_first(r_terms); t; t = zhashx_next(r_terms)) {
        free(t->doc);
        free(t->tf);
        free(t);
    }
    zhashx_destroy(&r_terms);
    free(r_slot);
    for (size_t i = 0; i < r_n_docs; i++)
        free(r_docs[i].fwd);
    for (size_t g = 0; g < r_n_synonyms; g++) {
        for (char **w = r_synonyms[g]; *w; w++)
            free(*w);
        free(r_synonyms[g]);
    }
}

/* A random query: 1-4 words, sometimes a sentence, one kanji, a word typed
 * by its reading, unknown words or an FAQ number. */
static void s_query_text(char *buf, size_t cap)
{
    switch (s_rand() % 9) {
    case 0:
        s_sentence(buf, cap, 3 + (int)(s_rand() % 5), "を教えてください");
        break;
    case 1:
        snprintf(buf, cap, "%s", s_rand() % 2 ? "税" : "犬");
        break;
    case 2:
        snprintf(buf, cap, "%s", s_rand() % 2 ? "じゅうみんひょう" : "ｺｸﾐﾝｹﾝｺｳﾎｹﾝ");
        break;
    case 3:
        snprintf(buf, cap, "%s 存在しない語", s_word());
        break;
    case 4:
        if (s_rand() % 2)
            snprintf(buf, cap, "#%u", 100 + s_rand() % S_DOCS);
        else
            snprintf(buf, cap, "%s %u", s_word(), 100 + s_rand() % S_DOCS);
        break;
    default: {
        size_t at = 0;
        int n = 1 + (int)(s_rand() % 4);
        for (int i = 0; i < n; i++)
            at += (size_t)snprintf(buf + at, cap - at, "%s%s", i ? " " : "", s_word());
    }
    }
}

static const size_t s_tops[] = {1, 3, 5, 10, 20, 50, 0};

static void s_random_queries(const faq_search_params_t *params, int n, bool filters)
{
    size_t with_many = 0;
    s_params(params);
    for (int i = 0; i < n; i++) {
        char q[512];
        s_query_text(q, sizeof q);
        faq_query_t query = {.q = q, .top = s_tops[s_rand() % 7]};
        if (filters) {
            switch (s_rand() % 6) {
            case 0:
                query.published_only = true;
                break;
            case 1:
                query.public_only = true;
                break;
            case 2:
                query.department_id = 1 + (int64_t)(s_rand() % 3);
                break;
            case 3:
                query.status = s_status[s_rand() % 5];
                query.visibility = s_rand() % 2 ? "public" : "internal";
                break;
            case 4:
                query.category = s_rand() % 5 ? s_category[1 + s_rand() % 3] : "ない分類";
                break;
            default:
                query.published_only = true;
                query.category = s_category[1 + s_rand() % 3];
                query.department_id = 1 + (int64_t)(s_rand() % 3);
                break;
            }
        }
        size_t count = s_compare(&query);
        if (count > (query.top ? query.top : 10))
            with_many++;
    }
    /* the comparison is worth something only if most queries have more hits
     * than the page */
    cr_assert_gt(with_many, (size_t)n / 2, "%zu of %d queries with more hits than asked", with_many,
                 n);
    cr_log_info("largest relative difference of a score: %.3g", s_worst);
}

TestSuite(faq_search, .init = setup, .fini = teardown, .timeout = 120);

Test(faq_search, equals_the_reference_with_feedback)
{
    faq_search_params_t p = faq_search_params_default();
    cr_assert_gt(p.prf_docs, 0);
    s_random_queries(&p, 200, false);
}

Test(faq_search, equals_the_reference_with_filters)
{
    faq_search_params_t p = faq_search_params_default();
    s_random_queries(&p, 200, true);
}

Test(faq_search, equals_the_reference_under_other_parameters)
{
    /* set on the built index: its stored impacts follow */
    faq_search_params_t p = faq_search_params_default();
    p.prf_docs = 0;
    s_random_queries(&p, 40, true);
    p = faq_search_params_default();
    p.qq_weight = 0;
    s_random_queries(&p, 40, false);
    p = faq_search_params_default();
    p.min_fraction = 0; /* every FAQ holding a word is a hit */
    s_random_queries(&p, 30, true);
    p = faq_search_params_default();
    p.k1 = 2.0;
    p.b = 0.3;
    p.field_weight[2] = 3.0;
    p.kind_weight[K_Y] = 0.5;
    p.prf_docs = 10;
    p.prf_terms = 5;
    p.prf_weight = 0.5;
    s_random_queries(&p, 40, false);
    /* the question weighs nothing in BM25F: FAQs with a dot product and no score */
    p = faq_search_params_default();
    p.field_weight[0] = 0;
    s_random_queries(&p, 40, true);
    p = faq_search_params_default();
    s_random_queries(&p, 30, true);
}

Test(faq_search, synonyms_numbers_and_repeated_searches)
{
    const char *group[] = {"ごみ", "廃棄物", NULL};
    const char *group2[] = {"印鑑登録", "はんこ登録", "実印", NULL};
    const char *const *groups[] = {group, group2};
    cr_assert_eq(faq_index_set_synonyms(s_index, groups, 2), 0);
    for (size_t g = 0; g < 2; g++) {
        size_t n = 0;
        while (groups[g][n])
            n++;
        r_synonyms[g] = calloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++)
            r_synonyms[g][i] = faq_normalize(groups[g][i]);
    }
    r_n_synonyms = 2;
    faq_search_params_t p = faq_search_params_default();
    s_params(&p);
    faq_query_t query = {.q = "廃棄物 収集", .top = 10};
    cr_assert_gt(s_compare(&query), 10);
    faq_query_t query2 = {.q = "実印の証明書", .top = 5, .published_only = true};
    cr_assert_gt(s_compare(&query2), 5);
    /* an FAQ number comes first, once (FAQ 150, added 50th, also holds
     * "150" in its answer; the bigrams 15 and 50 find others) */
    faq_query_t named = {.q = "#150", .top = 5};
    faq_hit_t *hits = NULL;
    size_t count = 0;
    cr_assert_eq(faq_index_search(s_index, &named, &hits, &count), 0);
    cr_assert_geq(count, 2);
    cr_assert_eq(hits[0].id, 5000 + (50 * 7919) % S_DOCS);
    for (size_t i = 1; i < count; i++)
        cr_assert_neq(hits[i].id, hits[0].id);
    free(hits);
    s_compare(&named);
    faq_query_t both = {.q = "住民票 150", .top = 3};
    cr_assert_gt(s_compare(&both), 3);
    faq_query_t text = {.q = "No.150", .top = 0, .public_only = true};
    s_compare(&text);
    s_random_queries(&p, 60, true);
    /* a search gives the same answer whatever came before it (its working
     * arrays are shared between searches) */
    faq_query_t a = {.q = "住民票の交付手数料", .top = 0};
    faq_query_t b = {.q = "ごみ 保険料 窓口 税金 証明書", .top = 3, .public_only = true};
    faq_hit_t *first = NULL, *other = NULL, *again = NULL;
    size_t n_first = 0, n_other = 0, n_again = 0;
    cr_assert_eq(faq_index_search(s_index, &a, &first, &n_first), 0);
    cr_assert_eq(faq_index_search(s_index, &b, &other, &n_other), 0);
    cr_assert_eq(faq_index_search(s_index, &a, &again, &n_again), 0);
    cr_assert_gt(n_first, 100);
    cr_assert_eq(n_first, n_again);
    cr_assert_eq(memcmp(first, again, n_first * sizeof *first), 0);
    free(first);
    free(other);
    free(again);
}

Test(faq_search, learned_words_respect_the_filters)
{
    /* words that led staff to a draft raise it for everyone who may see
     * drafts, and change nothing for a reader of published FAQs */
    size_t draft = 0;
    while (draft < r_n_docs && r_docs[draft].status != 'd')
        draft++;
    cr_assert_lt(draft, r_n_docs);
    const char *words = "住民票の郵送の手数料";
    cr_assert_eq(faq_index_add_click(s_index, r_docs[draft].id, words, 3), 0);
    faq_query_t all = {.q = words, .top = 5};
    faq_hit_t *hits = NULL;
    size_t count = 0;
    cr_assert_eq(faq_index_search(s_index, &all, &hits, &count), 0);
    cr_assert_gt(count, 5);
    cr_assert_eq(hits[0].id, r_docs[draft].id);
    free(hits);
    faq_query_t published = {.q = words, .top = 5, .published_only = true};
    cr_assert_gt(s_compare(&published), 5);
    faq_query_t other = {.q = words, .top = 5, .status = "review"};
    s_compare(&other);
}

Test(faq_search, an_empty_index_and_queries_without_terms)
{
    faq_index_t *empty = faq_index_new(s_an);
    cr_assert_not_null(empty);
    faq_index_finish(empty);
    faq_query_t query = {.q = "住民票", .top = 10};
    faq_hit_t *hits = (faq_hit_t *)1;
    size_t count = 7;
    cr_assert_eq(faq_index_search(empty, &query, &hits, &count), 0);
    cr_assert_null(hits);
    cr_assert_eq(count, 0);
    faq_index_destroy(&empty);
    /* words the index does not hold, punctuation only, bad UTF-8 */
    faq_query_t none = {.q = "ｘｙｚｚｙ qwerty", .top = 10};
    cr_assert_eq(s_compare(&none), 0);
    faq_query_t marks = {.q = "、。！？", .top = 10};
    cr_assert_eq(s_compare(&marks), 0);
    faq_query_t bad = {.q = "\xff\xfe", .top = 10};
    cr_assert_eq(faq_index_search(s_index, &bad, &hits, &count), -EINVAL);
}
