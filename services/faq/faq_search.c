/* faq_search: the in-memory BM25F index of the FAQ and its ranking
 * (faq_search.h, docs/faq.md); the terms come from faq_analysis.c. */
#include "faq_search.h"

#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faq_analysis.h"

enum { S_FIELD_QUESTION, S_FIELD_ANSWER, S_FIELD_KEYWORDS, S_FIELDS };

/* ---- the index ---------------------------------------------------------------------------- */

/* A posting whose question holds the term (the query-question cosine). */
typedef struct {
    uint32_t doc;
    uint32_t tf; /* the term's count in the question */
} s_qposting_t;

/* A term and its postings, in the order of the FAQs (columns: doc[j],
 * tf[j], impact[j] are posting j). A search reads doc[] and impact[] only:
 * one multiply-add per posting on two contiguous arrays. */
typedef struct {
    uint32_t *doc;            /* the FAQs holding it, ascending */
    uint16_t (*tf)[S_FIELDS]; /* its count per field in each */
    float *impact;            /* BM25F of each posting (s_impacts): tfw / (k1 + tfw) */
    s_qposting_t *q_items;    /* the postings in questions (faq_index_finish) */
    uint32_t n, cap;
    uint32_t n_ready; /* postings of the FAQs searched (impact[], q_items) */
    uint32_t n_q;
    uint32_t seq; /* order of creation: ties among the feedback's candidates */
    /* s_feedback's marks: in the query of search `query_mark`, candidate
     * `slot` of search `slot_mark` (faq_index.mark) */
    uint32_t query_mark, slot_mark, slot;
    int kind;
    double idf;   /* over whole FAQs (BM25F); set by faq_index_finish */
    double idf_q; /* over the questions only (the query-question cosine) */
} s_term_t;

/* One term of a document (its forward index, for feedback and the
 * query-question cosine). */
typedef struct {
    s_term_t *term;
    uint16_t tf[S_FIELDS];
    uint8_t kind;  /* term->kind (the feedback reads it without going to the term) */
    bool feedback; /* a word of more than one FAQ: the feedback may add it */
} s_fwd_t;

typedef struct {
    int64_t id, number, department_id;
    char status;     /* d r p a */
    char visibility; /* p i */
    char *category;
    uint32_t len[FAQ_KINDS][S_FIELDS];   /* terms of each kind per field */
    float inv_norm[FAQ_KINDS][S_FIELDS]; /* 1 / BM25's length normalisation (by finish) */
    s_fwd_t *fwd;                        /* its distinct terms (after faq_index_finish) */
    uint32_t n_fwd;
    double q_norm; /* length of the question's weighted term vector */
} s_doc_t;

/* What the filters read of an FAQ, dense (a search over many FAQs reads
 * them for most of them; s_doc_t is 184 bytes). */
typedef struct {
    int64_t department_id;
    uint32_t category; /* index in faq_index.categories */
    char status, visibility;
} s_meta_t;

/* An FAQ found by a key (its number, its id): arrays of these sorted by key. */
typedef struct {
    int64_t key;
    uint32_t doc;
} s_keyed_t;

/* A query's filters, compiled once per search (s_doc_passes). */
typedef struct {
    bool on;            /* some filter is set */
    char status[2];     /* 0 or the state a hit must have (the reader's, the query's) */
    char visibility[2]; /* the same for the visibility */
    bool by_category;
    uint32_t category;     /* its index (UINT32_MAX: no FAQ has it) */
    int64_t department_id; /* 0: any */
} s_filter_t;

/* The working arrays of a search, one entry per FAQ, kept from one search
 * to the next (the index is used from one thread; zero outside a search). */
typedef struct {
    double *score;    /* BM25F */
    double *dot;      /* the query's dot product with the question */
    double *combined; /* the score ranked (s_combine) */
    double *learned;  /* the cosine with words that led to it (s_learned) */
    uint8_t *passes;  /* the filters `passes_for` let it through (s_collect) */
    s_filter_t passes_for;
    bool passes_ok; /* passes[] is that of passes_for (most searches have the same filters) */
    size_t cap;
} s_scratch_t;

struct faq_index {
    faq_analyzer_t *analyzer; /* borrowed */
    zhashx_t *terms;          /* "k:term" -> s_term_t */
    s_doc_t *docs;
    size_t n_docs, cap_docs;
    double avg_len[FAQ_KINDS][S_FIELDS];
    faq_search_params_t params;
    char ***synonyms; /* groups of normalised words, each NULL-terminated */
    size_t n_synonyms;
    /* by faq_index_finish, what searches read: */
    size_t n_ready;       /* FAQs searched (those added before it) */
    bool unready;         /* it ran out of memory: searches fail */
    s_meta_t *meta;       /* [n_ready] */
    int64_t *ids;         /* [n_ready] docs[i].id */
    double *inv_q_norm;   /* [n_ready] 1 / docs[i].q_norm, 0 without a question vector */
    s_keyed_t *numbers;   /* [n_ready] by number */
    zhashx_t *categories; /* category -> its index + 1 */
    s_scratch_t scratch;
    uint32_t n_terms; /* terms created (s_term_t.seq) */
    uint32_t mark;    /* searches with feedback (s_term_t's marks) */
    /* learned from operators (faq_index_add_click): words that led staff to
     * an FAQ, each a small query vector of its own */
    zhashx_t *click_terms; /* "k:term" -> s_cterm_t */
    zhashx_t *click_keys;  /* "doc:normalised words" -> click index + 1 */
    struct s_click *clicks;
    size_t n_clicks, cap_clicks;
    bool click_norms_stale; /* the vectors' lengths need the idf of a finished index */
    double *click_dot;      /* scratch of one search: dot product per click */
    s_keyed_t *doc_ids;     /* every FAQ added, by id (s_doc_of) */
    size_t n_doc_ids;
    bool finished;
    /* while adding: */
    int field;
    bool failed;
};

faq_search_params_t faq_search_params_default(void)
{
    faq_search_params_t p = {
        .k1 = 1.2,
        .b = 0.75,
        .field_weight = {1.0, 1.0, 2.0},
        .kind_weight = {1.0, 0.5, 0.3, 0.2, 0.1},
        .synonym_weight = 0.8,
        .min_fraction = 0.05,
        .qq_weight = 1.0,
        .prf_docs = 5,
        .prf_terms = 20,
        .prf_weight = 0.2,
        .click_weight = 1.5,
        .click_min = 0.1,
    };
    return p;
}

static void s_term_destroy(void **item)
{
    s_term_t *term = *item;
    if (term) {
        free(term->doc);
        free(term->tf);
        free(term->impact);
        free(term->q_items);
        free(term);
    }
    *item = NULL;
}

faq_index_t *faq_index_new(faq_analyzer_t *analyzer)
{
    faq_index_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->analyzer = analyzer;
    self->terms = zhashx_new();
    if (!self->terms) {
        free(self);
        return NULL;
    }
    zhashx_set_destructor(self->terms, s_term_destroy);
    self->params = faq_search_params_default();
    return self;
}

static void s_synonyms_free(faq_index_t *self)
{
    for (size_t i = 0; i < self->n_synonyms; i++) {
        for (char **w = self->synonyms[i]; w && *w; w++)
            free(*w);
        free(self->synonyms[i]);
    }
    free(self->synonyms);
    self->synonyms = NULL;
    self->n_synonyms = 0;
}

static void s_scratch_free(s_scratch_t *scratch)
{
    free(scratch->score);
    free(scratch->dot);
    free(scratch->combined);
    free(scratch->learned);
    free(scratch->passes);
    memset(scratch, 0, sizeof *scratch);
}

/* The dense arrays of faq_index_finish freed. */
static void s_ready_free(faq_index_t *self)
{
    free(self->meta);
    free(self->ids);
    free(self->inv_q_norm);
    free(self->numbers);
    self->meta = NULL;
    self->ids = NULL;
    self->inv_q_norm = NULL;
    self->numbers = NULL;
    zhashx_destroy(&self->categories);
    s_scratch_free(&self->scratch);
    self->n_ready = 0;
}

static void s_clicks_free(faq_index_t *self);

void faq_index_destroy(faq_index_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    faq_index_t *self = *self_p;
    zhashx_destroy(&self->terms);
    s_clicks_free(self);
    for (size_t i = 0; i < self->n_docs; i++) {
        free(self->docs[i].category);
        free(self->docs[i].fwd);
    }
    free(self->docs);
    s_ready_free(self);
    s_synonyms_free(self);
    free(self);
    *self_p = NULL;
}

size_t faq_index_size(const faq_index_t *self)
{
    return self ? self->n_docs : 0;
}

/* The weight of a term in the query-question cosine: its kind's weight
 * times its idf among the questions (a word common in questions, such as
 * 手続き or 知りたい, tells little about which question is meant). */
static double s_term_weight(const faq_index_t *self, const s_term_t *t)
{
    int kind = t->kind == FAQ_KIND_U ? FAQ_KIND_W : t->kind;
    return self->params.kind_weight[kind] * t->idf_q;
}

/* Each document's question vector length (the cosine's denominator) and
 * its BM25 length normalisation per kind and field. */
static void s_question_norms(faq_index_t *self)
{
    const faq_search_params_t *p = &self->params;
    for (size_t i = 0; i < self->n_docs; i++) {
        s_doc_t *d = &self->docs[i];
        for (int k = 0; k < FAQ_KINDS; k++)
            for (int f = 0; f < S_FIELDS; f++)
                d->inv_norm[k][f] =
                    (float)(1.0 / (1.0 - p->b + p->b * (double)d->len[k][f] / self->avg_len[k][f]));
        double sum = 0;
        for (uint32_t j = 0; j < d->n_fwd; j++) {
            const s_fwd_t *f = &d->fwd[j];
            if (!f->tf[S_FIELD_QUESTION] || f->kind == FAQ_KIND_U)
                continue;
            double w = s_term_weight(self, f->term) * (1.0 + log((double)f->tf[S_FIELD_QUESTION]));
            sum += w * w;
        }
        d->q_norm = sqrt(sum);
        if (i < self->n_ready && self->inv_q_norm)
            self->inv_q_norm[i] = d->q_norm > 0 ? 1.0 / d->q_norm : 0;
    }
}

/* BM25F's saturated term frequency of one posting: the field counts
 * weighted and length-normalised (tfw), then tfw / (k1 + tfw). A search
 * multiplies it by the term's weight (kind, query weight, idf); it is
 * stored as a float (relative error under 1e-7). */
static float s_impact(const faq_search_params_t *p, const s_doc_t *d, int kind,
                      const uint16_t tf[S_FIELDS])
{
    double tfw = 0;
    for (int f = 0; f < S_FIELDS; f++)
        if (tf[f])
            tfw += p->field_weight[f] * (double)tf[f] * d->inv_norm[kind][f];
    return tfw > 0 ? (float)(tfw / (p->k1 + tfw)) : 0.0f;
}

/* Every posting's impact (after the length normalisation and on each
 * change of the parameters). */
static void s_impacts(faq_index_t *self)
{
    const faq_search_params_t *p = &self->params;
    for (s_term_t *t = zhashx_first(self->terms); t; t = zhashx_next(self->terms))
        for (uint32_t j = 0; j < t->n_ready && t->impact; j++)
            t->impact[j] = s_impact(p, &self->docs[t->doc[j]], t->kind, t->tf[j]);
}

void faq_index_set_params(faq_index_t *self, const faq_search_params_t *params)
{
    self->params = *params;
    s_question_norms(self);
    s_impacts(self);
    self->click_norms_stale = true;
}

static void s_index_emit(void *arg, int kind, const char *term, size_t len)
{
    faq_index_t *self = arg;
    if (len == 0 || len + 3 > FAQ_MAX_TERM_BYTES + 3)
        return;
    char key[FAQ_MAX_TERM_BYTES + 4];
    key[0] = faq_kind_char[kind];
    key[1] = ':';
    memcpy(key + 2, term, len);
    key[len + 2] = '\0';
    uint32_t doc = (uint32_t)(self->n_docs - 1);
    s_doc_t *d = &self->docs[doc];
    d->len[kind][self->field]++;
    s_term_t *t = zhashx_lookup(self->terms, key);
    if (!t) {
        t = calloc(1, sizeof *t);
        if (!t || zhashx_insert(self->terms, key, t) != 0) {
            free(t);
            self->failed = true;
            return;
        }
        t->kind = kind;
        t->seq = self->n_terms++;
    }
    if (t->n > 0 && t->doc[t->n - 1] == doc) {
        uint16_t *tf = &t->tf[t->n - 1][self->field];
        if (*tf < UINT16_MAX)
            (*tf)++;
        return;
    }
    if (t->n == t->cap) {
        uint32_t cap = t->cap ? t->cap * 2 : 4;
        uint32_t *docs = realloc(t->doc, cap * sizeof *docs);
        if (docs)
            t->doc = docs;
        uint16_t(*tfs)[S_FIELDS] = docs ? realloc(t->tf, cap * sizeof *tfs) : NULL;
        if (!tfs) {
            self->failed = true;
            return;
        }
        t->tf = tfs;
        t->cap = cap;
    }
    t->doc[t->n] = doc;
    memset(t->tf[t->n], 0, sizeof t->tf[t->n]);
    t->tf[t->n][self->field] = 1;
    t->n++;
}

int faq_index_add(faq_index_t *self, const faq_doc_t *doc)
{
    if (self->n_docs == self->cap_docs) {
        size_t cap = self->cap_docs ? self->cap_docs * 2 : 256;
        s_doc_t *grown = realloc(self->docs, cap * sizeof *grown);
        if (!grown)
            return -ENOMEM;
        self->docs = grown;
        self->cap_docs = cap;
    }
    s_doc_t *d = &self->docs[self->n_docs++];
    memset(d, 0, sizeof *d);
    d->id = doc->id;
    d->number = doc->number;
    d->department_id = doc->department_id;
    d->status = doc->status ? doc->status[0] : 'd';
    d->visibility = doc->visibility ? doc->visibility[0] : 'i';
    d->category = strdup(doc->category ? doc->category : "");
    if (!d->category) {
        self->n_docs--;
        return -ENOMEM;
    }
    const char *fields[S_FIELDS] = {doc->question, doc->answer, doc->keywords};
    self->failed = false;
    for (int f = 0; f < S_FIELDS; f++) {
        if (!fields[f] || !*fields[f])
            continue;
        self->field = f;
        faq_analyze(self->analyzer, fields[f], false, s_index_emit, self);
    }
    return self->failed ? -ENOMEM : 0;
}

/* Kept in the forward index: words (kind w) anywhere, any term of the question. */
static bool s_forward(const s_term_t *t, const uint16_t tf[S_FIELDS])
{
    return t->kind == FAQ_KIND_W || tf[S_FIELD_QUESTION] > 0;
}

static int s_keyed_compare(const void *a, const void *b)
{
    const s_keyed_t *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->doc < y->doc ? -1 : x->doc > y->doc;
}

/* The first of the n sorted entries whose key is not below `key` (n when none). */
static size_t s_keyed_first(const s_keyed_t *keyed, size_t n, int64_t key)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (keyed[mid].key < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* What searches read, for the FAQs added so far: each FAQ's filter fields
 * and id (dense), its question norm, the FAQs by number, the categories,
 * each term's postings in questions and room for its impacts. false when
 * out of memory. */
static bool s_ready(faq_index_t *self)
{
    s_ready_free(self);
    size_t n = self->n_docs;
    self->n_ready = n;
    self->meta = calloc(n + 1, sizeof *self->meta);
    self->ids = calloc(n + 1, sizeof *self->ids);
    self->inv_q_norm = calloc(n + 1, sizeof *self->inv_q_norm);
    self->numbers = calloc(n + 1, sizeof *self->numbers);
    self->categories = zhashx_new();
    if (!self->meta || !self->ids || !self->inv_q_norm || !self->numbers || !self->categories)
        return false;
    uint32_t n_categories = 0;
    for (size_t i = 0; i < n; i++) {
        const s_doc_t *d = &self->docs[i];
        uintptr_t at = (uintptr_t)zhashx_lookup(self->categories, d->category);
        if (!at) {
            at = ++n_categories;
            if (zhashx_insert(self->categories, d->category, (void *)at) != 0)
                return false;
        }
        self->ids[i] = d->id;
        self->meta[i] = (s_meta_t){.department_id = d->department_id,
                                   .category = (uint32_t)(at - 1),
                                   .status = d->status,
                                   .visibility = d->visibility};
        self->numbers[i] = (s_keyed_t){.key = d->number, .doc = (uint32_t)i};
    }
    qsort(self->numbers, n, sizeof *self->numbers, s_keyed_compare);
    bool ok = true;
    for (s_term_t *t = zhashx_first(self->terms); t; t = zhashx_next(self->terms)) {
        if (t->cap > t->n && t->n > 0) {
            /* the room left for more FAQs given back (both or neither) */
            uint32_t *docs = malloc(t->n * sizeof *docs);
            uint16_t(*tfs)[S_FIELDS] = malloc(t->n * sizeof *tfs);
            if (docs && tfs) {
                memcpy(docs, t->doc, t->n * sizeof *docs);
                memcpy(tfs, t->tf, t->n * sizeof *tfs);
                free(t->doc);
                free(t->tf);
                t->doc = docs;
                t->tf = tfs;
                t->cap = t->n;
            } else {
                free(docs);
                free(tfs);
            }
        }
        free(t->impact);
        free(t->q_items);
        t->q_items = NULL;
        t->n_ready = t->n_q = 0;
        t->impact = t->n ? malloc(t->n * sizeof *t->impact) : NULL;
        if (t->n && !t->impact) {
            ok = false;
            continue;
        }
        t->n_ready = t->n;
        uint32_t n_q = 0;
        for (uint32_t j = 0; j < t->n; j++)
            n_q += t->tf[j][S_FIELD_QUESTION] > 0;
        if (!n_q)
            continue;
        t->q_items = malloc(n_q * sizeof *t->q_items);
        if (!t->q_items) {
            ok = false;
            continue;
        }
        for (uint32_t j = 0; j < t->n; j++)
            if (t->tf[j][S_FIELD_QUESTION])
                t->q_items[t->n_q++] =
                    (s_qposting_t){.doc = t->doc[j], .tf = t->tf[j][S_FIELD_QUESTION]};
    }
    return ok;
}

void faq_index_finish(faq_index_t *self)
{
    for (int k = 0; k < FAQ_KINDS; k++)
        for (int f = 0; f < S_FIELDS; f++) {
            double sum = 0;
            for (size_t i = 0; i < self->n_docs; i++)
                sum += self->docs[i].len[k][f];
            self->avg_len[k][f] = self->n_docs && sum > 0 ? sum / (double)self->n_docs : 1.0;
        }
    /* idf of every term, and the forward index: each document's words and
     * the terms of its question (what feedback and the cosine read) */
    double n_docs = (double)self->n_docs;
    for (s_term_t *t = zhashx_first(self->terms); t; t = zhashx_next(self->terms)) {
        double df = t->n;
        t->idf = log(1.0 + (n_docs - df + 0.5) / (df + 0.5));
        double dfq = 0;
        for (uint32_t j = 0; j < t->n; j++)
            dfq += t->tf[j][S_FIELD_QUESTION] > 0;
        t->idf_q = log(1.0 + (n_docs - dfq + 0.5) / (dfq + 0.5));
        for (uint32_t j = 0; j < t->n; j++)
            if (s_forward(t, t->tf[j]))
                self->docs[t->doc[j]].n_fwd++;
    }
    for (size_t i = 0; i < self->n_docs; i++) {
        s_doc_t *d = &self->docs[i];
        free(d->fwd);
        d->fwd = d->n_fwd ? calloc(d->n_fwd, sizeof *d->fwd) : NULL;
        if (!d->fwd)
            d->n_fwd = 0;
        d->n_fwd = 0; /* filled below */
    }
    for (s_term_t *t = zhashx_first(self->terms); t; t = zhashx_next(self->terms)) {
        for (uint32_t j = 0; j < t->n; j++) {
            s_doc_t *d = &self->docs[t->doc[j]];
            if (!d->fwd || !s_forward(t, t->tf[j]))
                continue;
            s_fwd_t *f = &d->fwd[d->n_fwd++];
            f->term = t;
            memcpy(f->tf, t->tf[j], sizeof f->tf);
            f->kind = (uint8_t)t->kind;
            f->feedback = t->kind == FAQ_KIND_W && t->n >= 2;
        }
    }
    self->unready = !s_ready(self);
    s_question_norms(self);
    s_impacts(self);
    self->finished = true;
    self->click_norms_stale = true;
}

int faq_index_set_synonyms(faq_index_t *self, const char *const *const *groups, size_t count)
{
    s_synonyms_free(self);
    if (count == 0)
        return 0;
    self->synonyms = calloc(count, sizeof *self->synonyms);
    if (!self->synonyms)
        return -ENOMEM;
    for (size_t i = 0; i < count; i++) {
        size_t n = 0;
        while (groups[i][n])
            n++;
        char **words = calloc(n + 1, sizeof *words);
        if (!words)
            return -ENOMEM;
        self->synonyms[self->n_synonyms++] = words;
        for (size_t j = 0; j < n; j++) {
            words[j] = faq_normalize(groups[i][j]);
            if (!words[j])
                return -ENOMEM;
        }
    }
    return 0;
}

/* ---- search ------------------------------------------------------------------------------- */

typedef struct {
    char key[FAQ_MAX_TERM_BYTES + 4];
    int kind;
    double weight;
    s_term_t *term; /* in the index, or NULL */
} s_qterm_t;

typedef struct {
    s_qterm_t *items;
    size_t n, cap;
    zhashx_t *seen; /* key -> index + 1 */
    double weight;  /* of the terms being added */
    bool failed;
} s_query_terms_t;

static void s_query_emit(void *arg, int kind, const char *term, size_t len)
{
    s_query_terms_t *q = arg;
    if (len == 0 || len > FAQ_MAX_TERM_BYTES)
        return;
    char key[FAQ_MAX_TERM_BYTES + 4];
    key[0] = faq_kind_char[kind];
    key[1] = ':';
    memcpy(key + 2, term, len);
    key[len + 2] = '\0';
    uintptr_t at = (uintptr_t)zhashx_lookup(q->seen, key);
    if (at) {
        if (q->items[at - 1].weight < q->weight)
            q->items[at - 1].weight = q->weight;
        return;
    }
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 32;
        s_qterm_t *grown = realloc(q->items, cap * sizeof *grown);
        if (!grown) {
            q->failed = true;
            return;
        }
        q->items = grown;
        q->cap = cap;
    }
    s_qterm_t *t = &q->items[q->n++];
    memcpy(t->key, key, len + 3);
    t->kind = kind;
    t->weight = q->weight;
    zhashx_insert(q->seen, key, (void *)(uintptr_t)q->n);
}

/* The FAQ number a query names, or -1: digits (after NFKC), optionally after
 * "#", "no", "no." or "faq". */
static int64_t s_query_number(const char *norm)
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

static size_t s_code_points(const char *text)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if ((*p & 0xc0) != 0x80)
            n++;
    return n;
}

static s_filter_t s_filter(const faq_index_t *self, const faq_query_t *query)
{
    s_filter_t f = {.on = false};
    if (query->published_only || query->public_only)
        f.status[0] = 'p';
    if (query->status && *query->status)
        f.status[1] = query->status[0];
    if (query->public_only)
        f.visibility[0] = 'p';
    if (query->visibility && *query->visibility)
        f.visibility[1] = query->visibility[0];
    if (query->category && *query->category) {
        f.by_category = true;
        uintptr_t at =
            self->categories ? (uintptr_t)zhashx_lookup(self->categories, query->category) : 0;
        f.category = at ? (uint32_t)(at - 1) : UINT32_MAX;
    }
    if (query->department_id > 0)
        f.department_id = query->department_id;
    f.on = f.status[0] || f.status[1] || f.visibility[0] || f.visibility[1] || f.by_category ||
           f.department_id;
    return f;
}

static bool s_filter_equal(const s_filter_t *a, const s_filter_t *b)
{
    return a->on == b->on && a->status[0] == b->status[0] && a->status[1] == b->status[1] &&
           a->visibility[0] == b->visibility[0] && a->visibility[1] == b->visibility[1] &&
           a->by_category == b->by_category && (!a->by_category || a->category == b->category) &&
           a->department_id == b->department_id;
}

static bool s_doc_passes(const s_meta_t *m, const s_filter_t *f)
{
    if (!f->on)
        return true;
    for (int i = 0; i < 2; i++) {
        if (f->status[i] && m->status != f->status[i])
            return false;
        if (f->visibility[i] && m->visibility != f->visibility[i])
            return false;
    }
    if (f->by_category && m->category != f->category)
        return false;
    return !f->department_id || m->department_id == f->department_id;
}

static int s_hit_compare(const void *a, const void *b)
{
    const faq_hit_t *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Moves the worse of a max-heap of hits (by s_hit_compare: the root is the
 * worst) down from `at`. */
static void s_heap_down(faq_hit_t *heap, size_t n, size_t at)
{
    for (;;) {
        size_t worst = at, l = 2 * at + 1, r = l + 1;
        if (l < n && s_hit_compare(&heap[l], &heap[worst]) > 0)
            worst = l;
        if (r < n && s_hit_compare(&heap[r], &heap[worst]) > 0)
            worst = r;
        if (worst == at)
            return;
        faq_hit_t swap = heap[at];
        heap[at] = heap[worst];
        heap[worst] = swap;
        at = worst;
    }
}

/* Puts the best `top` hits first, in order (all of them when top is 0 or
 * not smaller than count): one pass keeps the best `top` in a heap (most
 * hits are only compared with its worst), the hits better than or equal
 * to its worst are moved to the front and sorted; the others follow in no
 * particular order. */
static void s_order(faq_hit_t *hits, size_t count, size_t top)
{
    faq_hit_t *heap = top == 0 || top >= count ? NULL : malloc(top * sizeof *heap);
    if (!heap) {
        qsort(hits, count, sizeof *hits, s_hit_compare);
        return;
    }
    for (size_t i = 0; i < top; i++)
        heap[i] = hits[i];
    for (size_t i = top / 2; i-- > 0;)
        s_heap_down(heap, top, i);
    for (size_t i = top; i < count; i++)
        if (s_hit_compare(&hits[i], &heap[0]) < 0) {
            heap[0] = hits[i];
            s_heap_down(heap, top, 0);
        }
    faq_hit_t worst = heap[0];
    free(heap);
    size_t front = 0;
    for (size_t i = 0; i < count; i++)
        if (s_hit_compare(&hits[i], &worst) < 0) {
            faq_hit_t swap = hits[front];
            hits[front++] = hits[i];
            hits[i] = swap;
        }
    for (size_t i = front; i < count && front < top; i++)
        if (s_hit_compare(&hits[i], &worst) == 0) {
            faq_hit_t swap = hits[front];
            hits[front++] = hits[i];
            hits[i] = swap;
        }
    qsort(hits, front, sizeof *hits, s_hit_compare);
}

/* The working arrays sized for the index (allocated by the first search). */
static bool s_scratch_ready(faq_index_t *self)
{
    s_scratch_t *sc = &self->scratch;
    if (sc->cap >= self->n_ready && sc->score)
        return true;
    s_scratch_free(sc);
    size_t n = self->n_ready + 1;
    sc->score = calloc(n, sizeof *sc->score);
    sc->dot = calloc(n, sizeof *sc->dot);
    sc->combined = calloc(n, sizeof *sc->combined);
    sc->learned = calloc(n, sizeof *sc->learned);
    sc->passes = calloc(n, sizeof *sc->passes);
    if (!sc->score || !sc->dot || !sc->combined || !sc->learned || !sc->passes) {
        s_scratch_free(sc);
        return false;
    }
    sc->cap = self->n_ready;
    return true;
}

/* score[doc[j]] += weight * impact[j] for j < n (the FAQs of one term are
 * distinct: four postings are read before their sums are stored). */
static void s_add_postings(double *restrict score, const uint32_t *restrict doc,
                           const float *restrict impact, uint32_t n, double weight)
{
    uint32_t j = 0;
    for (; j + 4 <= n; j += 4) {
        uint32_t d0 = doc[j], d1 = doc[j + 1], d2 = doc[j + 2], d3 = doc[j + 3];
        double s0 = score[d0] + weight * (double)impact[j];
        double s1 = score[d1] + weight * (double)impact[j + 1];
        double s2 = score[d2] + weight * (double)impact[j + 2];
        double s3 = score[d3] + weight * (double)impact[j + 3];
        score[d0] = s0;
        score[d1] = s1;
        score[d2] = s2;
        score[d3] = s3;
    }
    for (; j < n; j++)
        score[doc[j]] += weight * (double)impact[j];
}

/* Adds the BM25F score of query terms [from, to) to score[] and (dot not
 * NULL) their products with the documents' question vectors to dot[];
 * *q_sum grows by the squares of the query vector. A posting is one
 * multiply-add: its impact (s_impact) times the term's weight. */
static void s_accumulate(faq_index_t *self, const s_query_terms_t *terms, size_t from, size_t to,
                         size_t q_chars, double *score, double *dot, double *q_sum)
{
    const faq_search_params_t *p = &self->params;
    for (size_t i = from; i < to; i++) {
        const s_qterm_t *qt = &terms->items[i];
        if (qt->kind == FAQ_KIND_U && q_chars > 2)
            continue;
        const s_term_t *t = qt->term;
        if (!t || t->n_ready == 0)
            continue;
        double weight = p->kind_weight[qt->kind] * qt->weight * t->idf;
        if (qt->kind == FAQ_KIND_U)
            weight = p->kind_weight[FAQ_KIND_W] * qt->weight * t->idf; /* a short query's kanji */
        double tw = s_term_weight(self, t);
        double qv = qt->kind == FAQ_KIND_U ? 0 : tw * qt->weight;
        *q_sum += qv * qv;
        s_add_postings(score, t->doc, t->impact, t->n_ready, weight);
        if (dot && qv > 0) {
            double c = qv * tw;
            for (uint32_t j = 0; j < t->n_q; j++) {
                const s_qposting_t *q = &t->q_items[j];
                dot[q->doc] += c * (q->tf == 1 ? 1.0 : 1.0 + log((double)q->tf));
            }
        }
    }
}

/* The FAQs the query's filters refuse lose their score (they are not
 * ranked and not read by the feedback; the FAQs the filters let through
 * are worked out once for successive searches with the same filters).
 * Returns the best score left. */
static double s_collect(faq_index_t *self, const s_filter_t *filter)
{
    s_scratch_t *sc = &self->scratch;
    double *score = sc->score;
    size_t n = self->n_ready;
    double best = 0;
    if (!filter->on) {
        for (size_t i = 0; i < n; i++)
            best = score[i] > best ? score[i] : best;
        return best;
    }
    if (!sc->passes_ok || !s_filter_equal(&sc->passes_for, filter)) {
        for (size_t i = 0; i < n; i++)
            sc->passes[i] = s_doc_passes(&self->meta[i], filter);
        sc->passes_for = *filter;
        sc->passes_ok = true;
    }
    const uint8_t *passes = sc->passes;
    for (size_t i = 0; i < n; i++) {
        double v = passes[i] ? score[i] : 0;
        score[i] = v;
        best = v > best ? v : best;
    }
    return best;
}

/* The combined score: BM25F plus the query-question cosine scaled by the
 * best BM25F score (the score keeps BM25F's scale); 0 for an FAQ without
 * a score. */
static void s_combine(const faq_index_t *self, const double *score, const double *dot, double q_sum,
                      double best, double *out)
{
    double q_norm = sqrt(q_sum);
    /* score + qq_weight * best * dot / (|q| |question|) */
    double scale = q_norm > 0 ? self->params.qq_weight * best / q_norm : 0;
    const double *inv = self->inv_q_norm;
    for (size_t i = 0; i < self->n_ready; i++) {
        double c = score[i] + scale * (dot[i] * inv[i]);
        out[i] = score[i] > 0 ? c : 0;
    }
}

/* The scratch zeroed again for the next search. */
static void s_scratch_reset(faq_index_t *self)
{
    s_scratch_t *sc = &self->scratch;
    if (!sc->score)
        return;
    memset(sc->score, 0, self->n_ready * sizeof *sc->score);
    memset(sc->dot, 0, self->n_ready * sizeof *sc->dot);
    memset(sc->combined, 0, self->n_ready * sizeof *sc->combined);
    memset(sc->learned, 0, self->n_ready * sizeof *sc->learned);
}

typedef struct {
    s_term_t *term;
    double weight;
} s_candidate_t;

/* x before y: heavier, then the older term. */
static bool s_candidate_before(const s_candidate_t *x, const s_candidate_t *y)
{
    if (x->weight != y->weight)
        return x->weight > y->weight;
    return x->term->seq < y->term->seq;
}

/* Pseudo-relevance feedback: the words (kind w) that weigh most in the best
 * `prf_docs` documents of the first ranking and are not in the query are
 * added to it, the heaviest at prf_weight. */
static void s_feedback(faq_index_t *self, const double *combined, s_query_terms_t *terms)
{
    const faq_search_params_t *p = &self->params;
    /* the best documents in one pass (ties: the earlier one first) */
    uint32_t top[16];
    double top_score[16];
    int n_top = 0;
    int want = p->prf_docs < 16 ? p->prf_docs : 16;
    for (size_t i = 0; i < self->n_ready && want > 0; i++) {
        double c = combined[i];
        if (!(c > 0) || (n_top == want && !(c > top_score[n_top - 1])))
            continue;
        int at = n_top < want ? n_top++ : n_top - 1;
        while (at > 0 && c > top_score[at - 1]) {
            top[at] = top[at - 1];
            top_score[at] = top_score[at - 1];
            at--;
        }
        top[at] = (uint32_t)i;
        top_score[at] = c;
    }
    size_t cap = 0;
    for (int k = 0; k < n_top; k++)
        cap += self->docs[top[k]].n_fwd;
    int want_terms = p->prf_terms;
    if (cap == 0 || want_terms <= 0)
        return;
    s_candidate_t *cand = calloc(cap + (size_t)want_terms, sizeof *cand);
    if (!cand)
        return;
    s_candidate_t *best = cand + cap; /* the heaviest words not in the query, in order */
    if (++self->mark == 0) {
        /* the marks wrapped around: none may look current */
        for (s_term_t *t = zhashx_first(self->terms); t; t = zhashx_next(self->terms))
            t->query_mark = t->slot_mark = 0;
        self->mark = 1;
    }
    uint32_t mark = self->mark;
    for (size_t j = 0; j < terms->n; j++)
        if (terms->items[j].term)
            terms->items[j].term->query_mark = mark;
    /* the same word from several documents: one candidate, weights summed
     * in the order of the documents */
    size_t n = 0;
    for (int k = 0; k < n_top; k++) {
        const s_doc_t *d = &self->docs[top[k]];
        double length = 0;
        for (uint32_t j = 0; j < d->n_fwd; j++)
            if (d->fwd[j].kind == FAQ_KIND_W)
                for (int f = 0; f < S_FIELDS; f++)
                    length += p->field_weight[f] * d->fwd[j].tf[f];
        if (length <= 0)
            continue;
        for (uint32_t j = 0; j < d->n_fwd; j++) {
            const s_fwd_t *fw = &d->fwd[j];
            if (!fw->feedback)
                continue;
            double tf = 0;
            for (int f = 0; f < S_FIELDS; f++)
                tf += p->field_weight[f] * fw->tf[f];
            /* relevance model: P(w|d) weighted by the document's rank, times idf */
            double weight = tf / length * fw->term->idf / (double)(k + 1);
            s_term_t *t = fw->term;
            if (t->slot_mark == mark) {
                cand[t->slot].weight += weight;
            } else {
                t->slot_mark = mark;
                t->slot = (uint32_t)n;
                cand[n++] = (s_candidate_t){.term = t, .weight = weight};
            }
        }
    }
    /* the heaviest of all (the scale) and the heaviest `prf_terms` not in the query */
    double top_weight = 0;
    int n_best = 0;
    for (size_t i = 0; i < n; i++) {
        const s_candidate_t *c = &cand[i];
        if (c->weight > top_weight)
            top_weight = c->weight;
        if (c->term->query_mark == mark ||
            (n_best == want_terms && !s_candidate_before(c, &best[n_best - 1])))
            continue;
        int at = n_best < want_terms ? n_best++ : n_best - 1;
        while (at > 0 && s_candidate_before(c, &best[at - 1])) {
            best[at] = best[at - 1];
            at--;
        }
        best[at] = *c;
    }
    for (int i = 0; i < n_best && top_weight > 0; i++) {
        if (terms->n == terms->cap) {
            size_t grown_cap = terms->cap ? terms->cap * 2 : 32;
            s_qterm_t *grown = realloc(terms->items, grown_cap * sizeof *grown);
            if (!grown)
                break;
            terms->items = grown;
            terms->cap = grown_cap;
        }
        s_qterm_t *t = &terms->items[terms->n++];
        memset(t, 0, sizeof *t);
        t->kind = FAQ_KIND_W;
        t->term = best[i].term;
        t->weight = p->prf_weight * best[i].weight / top_weight;
    }
    free(cand);
}

static bool s_learned(faq_index_t *self, const s_query_terms_t *terms, size_t n_terms,
                      double *learned);
static void s_learned_add(const faq_index_t *self, const s_filter_t *filter, const double *learned,
                          double scale, double *combined);

int faq_index_search(faq_index_t *self, const faq_query_t *query, faq_hit_t **ret_hits,
                     size_t *ret_count)
{
    *ret_hits = NULL;
    *ret_count = 0;
    char *norm = faq_normalize(query->q);
    if (!norm)
        return -EINVAL;
    int rc = -ENOMEM;
    faq_hit_t *hits = NULL;
    bool scored = false; /* the scratch holds this search's numbers */
    s_query_terms_t terms = {.weight = 1.0};
    terms.seen = zhashx_new();
    if (!terms.seen)
        goto out;
    rc = faq_analyze(self->analyzer, query->q, true, s_query_emit, &terms);
    if (rc < 0)
        goto out;
    /* 1- and 2-character words: single kanji count in full */
    size_t q_chars = s_code_points(norm);
    /* synonyms: a group one of whose words is in the query adds the others */
    terms.weight = self->params.synonym_weight;
    for (size_t g = 0; g < self->n_synonyms; g++) {
        bool hit = false;
        for (char **w = self->synonyms[g]; *w && !hit; w++)
            hit = **w && (strcmp(*w, norm) == 0 || (s_code_points(*w) >= 2 && strstr(norm, *w)));
        if (!hit)
            continue;
        for (char **w = self->synonyms[g]; *w; w++)
            if (!strstr(norm, *w))
                faq_analyze(self->analyzer, *w, true, s_query_emit, &terms);
    }
    rc = -ENOMEM;
    if (terms.failed || self->unready || !s_scratch_ready(self))
        goto out;
    for (size_t i = 0; i < terms.n; i++)
        terms.items[i].term = zhashx_lookup(self->terms, terms.items[i].key);
    s_scratch_t *sc = &self->scratch;
    double *score = sc->score, *dot = sc->dot, *combined = sc->combined, *learned = sc->learned;
    const faq_search_params_t *p = &self->params;
    s_filter_t filter = s_filter(self, query);
    double q_sum = 0;
    size_t first_terms = terms.n;
    scored = true;
    s_accumulate(self, &terms, 0, first_terms, q_chars, score, dot, &q_sum);
    bool learned_any = s_learned(self, &terms, first_terms, learned);
    double best = s_collect(self, &filter);
    s_combine(self, score, dot, q_sum, best, combined);
    /* (every pass below reads all of combined[]: an FAQ the filters refuse
     * stays at 0 there) */
    if (learned_any)
        s_learned_add(self, &filter, learned, best, combined);
    if (p->prf_docs > 0 && p->prf_terms > 0 && p->prf_weight > 0) {
        /* the added words count in BM25F; the cosine stays the one of the words typed */
        s_feedback(self, combined, &terms);
        if (terms.n > first_terms) {
            double ignored = 0;
            s_accumulate(self, &terms, first_terms, terms.n, q_chars, score, NULL, &ignored);
            best = s_collect(self, &filter);
            s_combine(self, score, dot, q_sum, best, combined);
            if (learned_any)
                s_learned_add(self, &filter, learned, best, combined);
        }
    }
    best = 0;
    size_t n = 0;
    for (size_t i = 0; i < self->n_ready; i++) {
        n += combined[i] > 0;
        best = combined[i] > best ? combined[i] : best;
    }
    /* the FAQs the query names by number come first */
    int64_t number = s_query_number(norm);
    size_t named_from = 0, named_to = 0;
    if (number >= 0) {
        named_from = named_to = s_keyed_first(self->numbers, self->n_ready, number);
        while (named_to < self->n_ready && self->numbers[named_to].key == number)
            combined[self->numbers[named_to++].doc] = 0; /* added below */
    }
    hits = malloc((n + (named_to - named_from) + 1) * sizeof *hits);
    if (!hits)
        goto out;
    size_t count = 0;
    double floor = best * p->min_fraction;
    for (size_t i = 0; i < self->n_ready; i++) {
        /* without a branch: over many FAQs about a third are hits, in no pattern */
        hits[count].id = self->ids[i];
        hits[count].score = combined[i];
        count += (size_t)((combined[i] > 0) & (combined[i] >= floor));
    }
    for (size_t i = named_from; i < named_to; i++) {
        uint32_t d = self->numbers[i].doc;
        if (s_doc_passes(&self->meta[d], &filter)) {
            hits[count].id = self->ids[d];
            hits[count].score = best + 1000.0;
            count++;
        }
    }
    s_order(hits, count, query->top);
    if (count == 0) {
        free(hits);
        hits = NULL;
    }
    *ret_hits = hits;
    *ret_count = count;
    hits = NULL;
    rc = 0;
out:
    if (scored)
        s_scratch_reset(self);
    free(hits);
    free(terms.items);
    zhashx_destroy(&terms.seen);
    free(norm);
    return rc;
}

/* ---- learned from operators --------------------------------------------------------------- */

/* Words that led staff to an FAQ (faq_index_add_click): each distinct
 * (FAQ, words) is a small vector of its terms, weighted as the question
 * vectors are (kind times idf among the questions). A query close to such
 * words raises their FAQ: a nearest-neighbour vote of past searches,
 * added to the combined score like the query-question cosine. */
typedef struct s_click {
    uint32_t doc;
    uint32_t users;
    double norm; /* length of its weighted term vector */
} s_click_t;

typedef struct {
    uint32_t click;
    uint32_t tf;
} s_cpost_t;

typedef struct {
    s_term_t *term; /* the same term in the FAQs (its idf), or NULL */
    int kind;
    s_cpost_t *items;
    uint32_t n, cap;
} s_cterm_t;

static void s_cterm_destroy(void **item)
{
    s_cterm_t *t = *item;
    if (t) {
        free(t->items);
        free(t);
    }
    *item = NULL;
}

static void s_clicks_free(faq_index_t *self)
{
    zhashx_destroy(&self->click_terms);
    zhashx_destroy(&self->click_keys);
    free(self->clicks);
    free(self->click_dot);
    free(self->doc_ids);
    self->clicks = NULL;
    self->click_dot = NULL;
    self->doc_ids = NULL;
    self->n_clicks = self->cap_clicks = self->n_doc_ids = 0;
}

/* The weight of a term of learned words or of a query in their cosine: a
 * term no FAQ holds counts as the rarest. */
static double s_click_term_weight(const faq_index_t *self, const s_term_t *term, int kind)
{
    if (term)
        return s_term_weight(self, term);
    double n = (double)self->n_docs;
    return self->params.kind_weight[kind] * log(1.0 + (n + 0.5) / 0.5);
}

static void s_click_norms(faq_index_t *self)
{
    for (size_t c = 0; c < self->n_clicks; c++)
        self->clicks[c].norm = 0;
    for (s_cterm_t *t = zhashx_first(self->click_terms); t; t = zhashx_next(self->click_terms)) {
        double w = s_click_term_weight(self, t->term, t->kind);
        for (uint32_t j = 0; j < t->n; j++) {
            double v = w * (1.0 + log((double)t->items[j].tf));
            self->clicks[t->items[j].click].norm += v * v;
        }
    }
    for (size_t c = 0; c < self->n_clicks; c++)
        self->clicks[c].norm = sqrt(self->clicks[c].norm);
    self->click_norms_stale = false;
}

/* The index of the FAQ `id` in docs[], or -1 (the FAQs by id are sorted
 * again when FAQs were added since the last look). */
static int64_t s_doc_of(faq_index_t *self, int64_t id)
{
    if (self->n_doc_ids != self->n_docs) {
        s_keyed_t *ids = realloc(self->doc_ids, (self->n_docs + 1) * sizeof *ids);
        if (!ids)
            return -1;
        self->doc_ids = ids;
        for (size_t i = 0; i < self->n_docs; i++)
            ids[i] = (s_keyed_t){.key = self->docs[i].id, .doc = (uint32_t)i};
        self->n_doc_ids = self->n_docs;
        qsort(ids, self->n_docs, sizeof *ids, s_keyed_compare);
    }
    size_t at = s_keyed_first(self->doc_ids, self->n_doc_ids, id);
    return at < self->n_doc_ids && self->doc_ids[at].key == id ? (int64_t)self->doc_ids[at].doc
                                                               : -1;
}

int faq_index_add_click(faq_index_t *self, int64_t faq_id, const char *q, int users)
{
    if (!q || users < 1)
        return -EINVAL;
    int64_t doc = s_doc_of(self, faq_id);
    if (doc < 0)
        return -ENOENT;
    char *norm = faq_normalize(q);
    if (!norm)
        return -EINVAL;
    int rc = -ENOMEM;
    s_query_terms_t terms = {.weight = 1.0};
    char *key = NULL;
    terms.seen = zhashx_new();
    if (!self->click_terms) {
        self->click_terms = zhashx_new();
        self->click_keys = zhashx_new();
        if (self->click_terms)
            zhashx_set_destructor(self->click_terms, s_cterm_destroy);
    }
    if (!terms.seen || !self->click_terms || !self->click_keys ||
        asprintf(&key, "%" PRId64 ":%s", doc, norm) < 0) {
        key = NULL;
        goto out;
    }
    uintptr_t known = (uintptr_t)zhashx_lookup(self->click_keys, key);
    if (known) {
        s_click_t *c = &self->clicks[known - 1];
        c->users = c->users + (uint32_t)users < c->users ? UINT32_MAX : c->users + (uint32_t)users;
        rc = 0;
        goto out;
    }
    rc = faq_analyze(self->analyzer, q, true, s_query_emit, &terms);
    if (rc < 0)
        goto out;
    rc = -ENOMEM;
    if (terms.failed)
        goto out;
    size_t useful = 0;
    for (size_t i = 0; i < terms.n; i++)
        useful += terms.items[i].kind != FAQ_KIND_U;
    if (useful == 0) {
        rc = -EINVAL;
        goto out;
    }
    if (self->n_clicks == self->cap_clicks) {
        size_t cap = self->cap_clicks ? self->cap_clicks * 2 : 256;
        s_click_t *grown = realloc(self->clicks, cap * sizeof *grown);
        double *dot = realloc(self->click_dot, cap * sizeof *dot);
        if (grown)
            self->clicks = grown;
        if (dot)
            self->click_dot = dot;
        if (!grown || !dot)
            goto out;
        self->cap_clicks = cap;
    }
    uint32_t click = (uint32_t)self->n_clicks;
    double sum = 0; /* the squares of its vector (each term once: tf 1) */
    size_t i = 0;
    for (; i < terms.n; i++) {
        const s_qterm_t *qt = &terms.items[i];
        if (qt->kind == FAQ_KIND_U)
            continue;
        s_cterm_t *t = zhashx_lookup(self->click_terms, qt->key);
        if (!t) {
            t = calloc(1, sizeof *t);
            if (!t || zhashx_insert(self->click_terms, qt->key, t) != 0) {
                free(t);
                break;
            }
            t->kind = qt->kind;
            t->term = zhashx_lookup(self->terms, qt->key);
        }
        if (t->n == t->cap) {
            uint32_t cap = t->cap ? t->cap * 2 : 4;
            s_cpost_t *grown = realloc(t->items, cap * sizeof *grown);
            if (!grown)
                break;
            t->items = grown;
            t->cap = cap;
        }
        t->items[t->n++] = (s_cpost_t){.click = click, .tf = 1};
        double w = s_click_term_weight(self, t->term, t->kind);
        sum += w * w;
    }
    if (i < terms.n || zhashx_insert(self->click_keys, key, (void *)(uintptr_t)(click + 1)) != 0) {
        /* out of memory: the postings added take the next click's number, so they go */
        for (size_t j = 0; j < i; j++) {
            s_cterm_t *t = zhashx_lookup(self->click_terms, terms.items[j].key);
            if (t && t->n > 0 && t->items[t->n - 1].click == click)
                t->n--;
        }
        goto out;
    }
    /* its length now, unless every length waits for the idf of a finished index */
    self->clicks[click] =
        (s_click_t){.doc = (uint32_t)doc, .users = (uint32_t)users, .norm = sqrt(sum)};
    self->click_dot[click] = 0;
    self->n_clicks++;
    rc = 0;
out:
    free(key);
    free(terms.items);
    zhashx_destroy(&terms.seen);
    free(norm);
    return rc;
}

/* learned[doc]: the best cosine between the query's own terms (the first
 * n_terms, synonyms included, feedback not) and words that led to the FAQ,
 * when at least click_min. True when any FAQ got one. */
static bool s_learned(faq_index_t *self, const s_query_terms_t *terms, size_t n_terms,
                      double *learned)
{
    if (self->n_clicks == 0 || self->params.click_weight <= 0)
        return false;
    if (self->click_norms_stale)
        s_click_norms(self);
    double q_sum = 0;
    for (size_t i = 0; i < n_terms; i++) {
        const s_qterm_t *qt = &terms->items[i];
        if (qt->kind == FAQ_KIND_U)
            continue;
        double qv = s_click_term_weight(self, qt->term, qt->kind) * qt->weight;
        q_sum += qv * qv;
        s_cterm_t *t = zhashx_lookup(self->click_terms, qt->key);
        if (!t)
            continue;
        double w = s_click_term_weight(self, t->term, t->kind);
        for (uint32_t j = 0; j < t->n; j++) {
            double *dot = &self->click_dot[t->items[j].click];
            *dot += qv * w * (1.0 + log((double)t->items[j].tf));
        }
    }
    bool any = false;
    double q_norm = sqrt(q_sum);
    for (size_t i = 0; i < n_terms; i++) {
        s_cterm_t *t = zhashx_lookup(self->click_terms, terms->items[i].key);
        if (!t || terms->items[i].kind == FAQ_KIND_U)
            continue;
        for (uint32_t j = 0; j < t->n; j++) {
            double *dot = &self->click_dot[t->items[j].click];
            if (*dot == 0)
                continue;
            const s_click_t *c = &self->clicks[t->items[j].click];
            double cosine = q_norm > 0 && c->norm > 0 ? *dot / (q_norm * c->norm) : 0;
            *dot = 0;                    /* the scratch is clean again for the next search */
            if (c->doc >= self->n_ready) /* an FAQ added since faq_index_finish */
                continue;
            if (cosine >= self->params.click_min && cosine > learned[c->doc]) {
                learned[c->doc] = cosine;
                any = true;
            }
        }
    }
    return any;
}

/* Adds the learned part to the combined score of the FAQs the filters let
 * through, scaled by the best BM25F score as the query-question cosine is
 * (by 1 when no FAQ holds a word of the query: learned words may be all a
 * query has). */
static void s_learned_add(const faq_index_t *self, const s_filter_t *filter, const double *learned,
                          double scale, double *combined)
{
    if (scale <= 0)
        scale = 1.0;
    for (size_t i = 0; i < self->n_ready; i++)
        if (learned[i] > 0 && s_doc_passes(&self->meta[i], filter))
            combined[i] += self->params.click_weight * scale * learned[i];
}
