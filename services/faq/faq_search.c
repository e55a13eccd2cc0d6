/* faq_search: normalisation (utf8proc), analysis (MeCab, IPA dictionary) and
 * the in-memory BM25F index of the FAQ (faq_search.h, docs/faq.md). */
#include "faq_search.h"

#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <mecab.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

enum { S_KIND_W, S_KIND_R, S_KIND_B, S_KIND_Y, S_KIND_U, S_KINDS };
enum { S_FIELD_QUESTION, S_FIELD_ANSWER, S_FIELD_KEYWORDS, S_FIELDS };
static const char s_kind_char[S_KINDS] = {'w', 'r', 'b', 'y', 'u'};

#define S_MAX_TERM_BYTES 96 /* longer words (URLs, runs of symbols) are not indexed */
#define S_MAX_CHUNK      64 /* code points kept of one run of content words */

struct faq_analyzer {
    mecab_t *mecab; /* one tagger, used from one thread */
};

faq_analyzer_t *faq_analyzer_new(const char *dicdir)
{
    faq_analyzer_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    char arg[600];
    if (dicdir && *dicdir)
        snprintf(arg, sizeof arg, "-d %s", dicdir);
    else
        arg[0] = '\0';
    self->mecab = mecab_new2(arg);
    if (!self->mecab) {
        free(self);
        return NULL;
    }
    return self;
}

void faq_analyzer_destroy(faq_analyzer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    faq_analyzer_t *self = *self_p;
    if (self->mecab)
        mecab_destroy(self->mecab);
    free(self);
    *self_p = NULL;
}

/* ---- normalisation ------------------------------------------------------------------------ */

static bool s_is_blank(utf8proc_int32_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0x3000;
}

/* NFKC + case folding + default ignorables dropped, control characters as
 * blanks, blanks squeezed and trimmed; katakana folded to hiragana when
 * `fold_kana`. Caller frees; NULL when not UTF-8 or out of memory. */
static char *s_normalize(const char *text, bool fold_kana)
{
    utf8proc_uint8_t *mapped = NULL;
    utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)text, 0, &mapped,
                                      UTF8PROC_NULLTERM | UTF8PROC_STABLE | UTF8PROC_COMPOSE |
                                          UTF8PROC_COMPAT | UTF8PROC_CASEFOLD | UTF8PROC_IGNORE);
    if (n < 0)
        return NULL;
    char *out = malloc((size_t)n + 1);
    if (!out) {
        free(mapped);
        return NULL;
    }
    size_t o = 0;
    bool blank = true; /* drops leading blanks */
    for (utf8proc_ssize_t i = 0; i < n;) {
        utf8proc_int32_t c;
        utf8proc_ssize_t len = utf8proc_iterate(mapped + i, n - i, &c);
        if (len <= 0)
            break;
        i += len;
        if (c < 0x20 || (c >= 0x7f && c < 0xa0) || s_is_blank(c)) {
            if (!blank)
                out[o++] = ' ';
            blank = true;
            continue;
        }
        blank = false;
        if (fold_kana) {
            if (c >= 0x30a1 && c <= 0x30f6)
                c -= 0x60;
            else if (c == 0x30fd || c == 0x30fe)
                c -= 0x60;
        }
        o += (size_t)utf8proc_encode_char(c, (utf8proc_uint8_t *)out + o);
    }
    while (o > 0 && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
    free(mapped);
    return out;
}

char *faq_normalize(const char *text)
{
    return s_normalize(text ? text : "", true);
}

/* Katakana folded to hiragana in a normalised string (in place: the same length). */
static void s_fold_kana(char *text)
{
    unsigned char *p = (unsigned char *)text;
    while (*p) {
        /* katakana U+30A1..U+30F6 are E3 82 A1..E3 83 B6; hiragana E3 81 81..E3 82 96 */
        if (p[0] == 0xe3 && (p[1] == 0x82 || p[1] == 0x83) && p[2]) {
            unsigned c = 0x3000u | ((unsigned)(p[1] & 0x0f) << 6) | (p[2] & 0x3f);
            if ((c >= 0x30a1 && c <= 0x30f6) || c == 0x30fd || c == 0x30fe) {
                c -= 0x60;
                p[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3f));
                p[2] = (unsigned char)(0x80 | (c & 0x3f));
            }
            p += 3;
            continue;
        }
        p++;
    }
}

static bool s_is_kana(utf8proc_int32_t c)
{
    return (c >= 0x3041 && c <= 0x309f) || (c >= 0x30a0 && c <= 0x30ff) || c == 0x30fc;
}

static bool s_is_kanji(utf8proc_int32_t c)
{
    return (c >= 0x4e00 && c <= 0x9fff) || (c >= 0x3400 && c <= 0x4dbf) || c == 0x3005 ||
           (c >= 0xf900 && c <= 0xfaff);
}

/* ---- analysis ----------------------------------------------------------------------------- */

typedef void (*s_emit_fn)(void *arg, int kind, const char *term, size_t len);

/* A run of code points (for bigrams). */
typedef struct {
    utf8proc_int32_t c[S_MAX_CHUNK];
    size_t n;
} s_chunk_t;

static void s_chunk_add(s_chunk_t *chunk, const char *text, size_t len)
{
    for (size_t i = 0; i < len && chunk->n < S_MAX_CHUNK;) {
        utf8proc_int32_t c;
        utf8proc_ssize_t step =
            utf8proc_iterate((const utf8proc_uint8_t *)text + i, (utf8proc_ssize_t)(len - i), &c);
        if (step <= 0)
            break;
        i += (size_t)step;
        chunk->c[chunk->n++] = c;
    }
}

static void s_chunk_flush(s_chunk_t *chunk, int kind, s_emit_fn emit, void *arg)
{
    char buf[16];
    if (chunk->n == 1) {
        size_t len = (size_t)utf8proc_encode_char(chunk->c[0], (utf8proc_uint8_t *)buf);
        emit(arg, kind, buf, len);
    }
    for (size_t i = 0; i + 1 < chunk->n; i++) {
        size_t len = (size_t)utf8proc_encode_char(chunk->c[i], (utf8proc_uint8_t *)buf);
        len += (size_t)utf8proc_encode_char(chunk->c[i + 1], (utf8proc_uint8_t *)buf + len);
        emit(arg, kind, buf, len);
    }
    chunk->n = 0;
}

/* A compound noun being collected (surface and reading). */
typedef struct {
    char surface[S_MAX_TERM_BYTES];
    size_t surface_len;
    char reading[S_MAX_TERM_BYTES];
    size_t reading_len;
    bool reading_ok; /* every part had a reading */
    int parts;
} s_compound_t;

static void s_compound_flush(s_compound_t *compound, s_emit_fn emit, void *arg)
{
    if (compound->parts >= 2) {
        emit(arg, S_KIND_W, compound->surface, compound->surface_len);
        if (compound->reading_ok && compound->reading_len > 0)
            emit(arg, S_KIND_R, compound->reading, compound->reading_len);
    }
    compound->surface_len = compound->reading_len = 0;
    compound->reading_ok = true;
    compound->parts = 0;
}

static void s_append(char *buf, size_t *len, size_t cap, const char *text, size_t text_len,
                     bool *ok)
{
    if (*len + text_len >= cap) {
        if (ok)
            *ok = false;
        return;
    }
    memcpy(buf + *len, text, text_len);
    *len += text_len;
}

/* The fields of a MeCab feature string (IPA: pos1,pos2,pos3,pos4,ctype,cform,base,reading,pron). */
typedef struct {
    char pos1[32], pos2[32];
    char base[S_MAX_TERM_BYTES], reading[S_MAX_TERM_BYTES];
} s_feature_t;

static void s_feature_parse(const char *feature, s_feature_t *f)
{
    memset(f, 0, sizeof *f);
    const char *p = feature;
    for (int i = 0; i < 9 && p; i++) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char *dst = NULL;
        size_t cap = 0;
        if (i == 0)
            dst = f->pos1, cap = sizeof f->pos1;
        else if (i == 1)
            dst = f->pos2, cap = sizeof f->pos2;
        else if (i == 6)
            dst = f->base, cap = sizeof f->base;
        else if (i == 7)
            dst = f->reading, cap = sizeof f->reading;
        if (dst && len < cap && !(len == 1 && p[0] == '*')) {
            memcpy(dst, p, len);
            dst[len] = '\0';
        }
        p = comma ? comma + 1 : NULL;
    }
}

/* Content words carry the meaning: nouns (not pronouns or dependent nouns),
 * independent verbs and adjectives, adverbs, prefixes, unknown words. */
static bool s_is_content(const s_feature_t *f, bool unknown)
{
    if (unknown)
        return true;
    if (strcmp(f->pos1, "名詞") == 0)
        return strcmp(f->pos2, "非自立") != 0 && strcmp(f->pos2, "代名詞") != 0;
    if (strcmp(f->pos1, "動詞") == 0 || strcmp(f->pos1, "形容詞") == 0)
        return strcmp(f->pos2, "自立") == 0;
    return strcmp(f->pos1, "副詞") == 0 || strcmp(f->pos1, "接頭詞") == 0;
}

static bool s_is_noun(const s_feature_t *f, bool unknown)
{
    return unknown || strcmp(f->pos1, "名詞") == 0 || strcmp(f->pos1, "接頭詞") == 0;
}

static bool s_all_kana(const char *text, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len;) {
        utf8proc_int32_t c;
        utf8proc_ssize_t step =
            utf8proc_iterate((const utf8proc_uint8_t *)text + i, (utf8proc_ssize_t)(len - i), &c);
        if (step <= 0 || !s_is_kana(c))
            return false;
        i += (size_t)step;
    }
    return true;
}

/* Emits the terms of `text`. `query`: a text made only of kana also gives
 * the reading bigrams of the whole (a word typed by its reading, which MeCab
 * may split wrongly). 0, -EINVAL (not UTF-8), -ENOMEM. */
static int s_analyze(faq_analyzer_t *self, const char *text, bool query, s_emit_fn emit, void *arg)
{
    char *norm = s_normalize(text, false);
    if (!norm)
        return -EINVAL;
    size_t norm_len = strlen(norm);
    /* single kanji */
    for (size_t i = 0; i < norm_len;) {
        utf8proc_int32_t c;
        utf8proc_ssize_t step = utf8proc_iterate((const utf8proc_uint8_t *)norm + i,
                                                 (utf8proc_ssize_t)(norm_len - i), &c);
        if (step <= 0)
            break;
        if (s_is_kanji(c))
            emit(arg, S_KIND_U, norm + i, (size_t)step);
        i += (size_t)step;
    }
    if (query) {
        char *folded = strdup(norm);
        if (!folded) {
            free(norm);
            return -ENOMEM;
        }
        s_fold_kana(folded);
        size_t len = strlen(folded);
        if (s_all_kana(folded, len)) {
            s_chunk_t chunk = {.n = 0};
            s_chunk_add(&chunk, folded, len);
            s_chunk_flush(&chunk, S_KIND_Y, emit, arg);
        }
        free(folded);
    }
    const mecab_node_t *node = mecab_sparse_tonode(self->mecab, norm);
    s_chunk_t surfaces = {.n = 0}, readings = {.n = 0};
    s_compound_t compound = {.reading_ok = true};
    for (; node; node = node->next) {
        if (node->stat == MECAB_BOS_NODE || node->stat == MECAB_EOS_NODE)
            continue;
        bool unknown = node->stat == MECAB_UNK_NODE;
        s_feature_t f;
        s_feature_parse(node->feature, &f);
        char surface[S_MAX_TERM_BYTES];
        size_t surface_len = node->length;
        if (surface_len == 0 || surface_len >= sizeof surface || !s_is_content(&f, unknown) ||
            (surface_len == 1 && norm[0] && node->surface[0] == ' ')) {
            s_chunk_flush(&surfaces, S_KIND_B, emit, arg);
            s_chunk_flush(&readings, S_KIND_Y, emit, arg);
            s_compound_flush(&compound, emit, arg);
            continue;
        }
        memcpy(surface, node->surface, surface_len);
        surface[surface_len] = '\0';
        s_fold_kana(surface);
        const char *base = f.base[0] ? f.base : surface;
        char word[S_MAX_TERM_BYTES];
        snprintf(word, sizeof word, "%s", base);
        s_fold_kana(word);
        emit(arg, S_KIND_W, word, strlen(word));
        char reading[S_MAX_TERM_BYTES] = "";
        if (f.reading[0]) {
            snprintf(reading, sizeof reading, "%s", f.reading);
            s_fold_kana(reading);
        } else if (s_all_kana(surface, surface_len)) {
            snprintf(reading, sizeof reading, "%s", surface);
        }
        if (reading[0] && strcmp(reading, word) != 0)
            emit(arg, S_KIND_R, reading, strlen(reading));
        s_chunk_add(&surfaces, surface, surface_len);
        /* readings of the surface as written (conjugated forms) */
        if (reading[0])
            s_chunk_add(&readings, reading, strlen(reading));
        else
            s_chunk_flush(&readings, S_KIND_Y, emit, arg);
        if (s_is_noun(&f, unknown)) {
            s_append(compound.surface, &compound.surface_len, sizeof compound.surface, surface,
                     surface_len, NULL);
            if (reading[0])
                s_append(compound.reading, &compound.reading_len, sizeof compound.reading, reading,
                         strlen(reading), &compound.reading_ok);
            else
                compound.reading_ok = false;
            compound.parts++;
        } else {
            s_compound_flush(&compound, emit, arg);
        }
    }
    s_chunk_flush(&surfaces, S_KIND_B, emit, arg);
    s_chunk_flush(&readings, S_KIND_Y, emit, arg);
    s_compound_flush(&compound, emit, arg);
    free(norm);
    return 0;
}

typedef struct {
    char *buf;
    size_t len, cap;
} s_text_t;

static void s_terms_emit(void *arg, int kind, const char *term, size_t len)
{
    s_text_t *out = arg;
    if (out->len + len + 4 > out->cap) {
        size_t cap = (out->cap + len + 4) * 2;
        char *grown = realloc(out->buf, cap);
        if (!grown)
            return;
        out->buf = grown;
        out->cap = cap;
    }
    if (out->len)
        out->buf[out->len++] = ' ';
    out->buf[out->len++] = s_kind_char[kind];
    out->buf[out->len++] = ':';
    memcpy(out->buf + out->len, term, len);
    out->len += len;
    out->buf[out->len] = '\0';
}

char *faq_analyzer_terms(faq_analyzer_t *self, const char *text)
{
    s_text_t out = {.buf = calloc(1, 64), .cap = 64};
    if (!out.buf)
        return NULL;
    if (s_analyze(self, text, true, s_terms_emit, &out) < 0) {
        free(out.buf);
        return NULL;
    }
    return out.buf;
}

/* ---- the index ---------------------------------------------------------------------------- */

typedef struct {
    uint32_t doc;
    uint16_t tf[S_FIELDS];
} s_posting_t;

typedef struct {
    s_posting_t *items;
    uint32_t n, cap;
    int kind;
    double idf;   /* over whole FAQs (BM25F); set by faq_index_finish */
    double idf_q; /* over the questions only (the query-question cosine) */
} s_term_t;

/* One term of a document (its forward index, for feedback and the
 * query-question cosine). */
typedef struct {
    s_term_t *term;
    uint16_t tf[S_FIELDS];
} s_fwd_t;

typedef struct {
    int64_t id, number, department_id;
    char status;     /* d r p a */
    char visibility; /* p i */
    char *category;
    uint32_t len[S_KINDS][S_FIELDS];   /* terms of each kind per field */
    float inv_norm[S_KINDS][S_FIELDS]; /* 1 / BM25's length normalisation (by finish) */
    s_fwd_t *fwd;                      /* its distinct terms (after faq_index_finish) */
    uint32_t n_fwd;
    double q_norm; /* length of the question's weighted term vector */
} s_doc_t;

struct faq_index {
    faq_analyzer_t *analyzer; /* borrowed */
    zhashx_t *terms;          /* "k:term" -> s_term_t */
    s_doc_t *docs;
    size_t n_docs, cap_docs;
    double avg_len[S_KINDS][S_FIELDS];
    faq_search_params_t params;
    char ***synonyms; /* groups of normalised words, each NULL-terminated */
    size_t n_synonyms;
    /* learned from operators (faq_index_add_click): words that led staff to
     * an FAQ, each a small query vector of its own */
    zhashx_t *click_terms; /* "k:term" -> s_cterm_t */
    zhashx_t *click_keys;  /* "doc:normalised words" -> click index + 1 */
    struct s_click *clicks;
    size_t n_clicks, cap_clicks;
    bool click_norms_stale; /* the vectors' lengths need the idf of a finished index */
    double *click_dot;      /* scratch of one search: dot product per click */
    int64_t *doc_ids;       /* sorted (id << 32 | doc) for finding an FAQ by id */
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
        free(term->items);
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
    int kind = t->kind == S_KIND_U ? S_KIND_W : t->kind;
    return self->params.kind_weight[kind] * t->idf_q;
}

/* Each document's question vector length (the cosine's denominator) and
 * its BM25 length normalisation per kind and field. */
static void s_question_norms(faq_index_t *self)
{
    const faq_search_params_t *p = &self->params;
    for (size_t i = 0; i < self->n_docs; i++) {
        s_doc_t *d = &self->docs[i];
        for (int k = 0; k < S_KINDS; k++)
            for (int f = 0; f < S_FIELDS; f++)
                d->inv_norm[k][f] =
                    (float)(1.0 / (1.0 - p->b + p->b * (double)d->len[k][f] / self->avg_len[k][f]));
        double sum = 0;
        for (uint32_t j = 0; j < d->n_fwd; j++) {
            const s_fwd_t *f = &d->fwd[j];
            if (!f->tf[S_FIELD_QUESTION] || f->term->kind == S_KIND_U)
                continue;
            double w = s_term_weight(self, f->term) * (1.0 + log((double)f->tf[S_FIELD_QUESTION]));
            sum += w * w;
        }
        d->q_norm = sqrt(sum);
    }
}

void faq_index_set_params(faq_index_t *self, const faq_search_params_t *params)
{
    self->params = *params;
    s_question_norms(self);
    self->click_norms_stale = true;
}

static void s_index_emit(void *arg, int kind, const char *term, size_t len)
{
    faq_index_t *self = arg;
    if (len == 0 || len + 3 > S_MAX_TERM_BYTES + 3)
        return;
    char key[S_MAX_TERM_BYTES + 4];
    key[0] = s_kind_char[kind];
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
    }
    if (t->n > 0 && t->items[t->n - 1].doc == doc) {
        uint16_t *tf = &t->items[t->n - 1].tf[self->field];
        if (*tf < UINT16_MAX)
            (*tf)++;
        return;
    }
    if (t->n == t->cap) {
        uint32_t cap = t->cap ? t->cap * 2 : 4;
        s_posting_t *grown = realloc(t->items, cap * sizeof *grown);
        if (!grown) {
            self->failed = true;
            return;
        }
        t->items = grown;
        t->cap = cap;
    }
    s_posting_t *p = &t->items[t->n++];
    memset(p, 0, sizeof *p);
    p->doc = doc;
    p->tf[self->field] = 1;
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
        s_analyze(self->analyzer, fields[f], false, s_index_emit, self);
    }
    return self->failed ? -ENOMEM : 0;
}

/* Kept in the forward index: words (kind w) anywhere, any term of the question. */
static bool s_forward(const s_term_t *t, const s_posting_t *post)
{
    return t->kind == S_KIND_W || post->tf[S_FIELD_QUESTION] > 0;
}

void faq_index_finish(faq_index_t *self)
{
    for (int k = 0; k < S_KINDS; k++)
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
            dfq += t->items[j].tf[S_FIELD_QUESTION] > 0;
        t->idf_q = log(1.0 + (n_docs - dfq + 0.5) / (dfq + 0.5));
        for (uint32_t j = 0; j < t->n; j++)
            if (s_forward(t, &t->items[j]))
                self->docs[t->items[j].doc].n_fwd++;
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
            s_doc_t *d = &self->docs[t->items[j].doc];
            if (!d->fwd || !s_forward(t, &t->items[j]))
                continue;
            s_fwd_t *f = &d->fwd[d->n_fwd++];
            f->term = t;
            memcpy(f->tf, t->items[j].tf, sizeof f->tf);
        }
    }
    s_question_norms(self);
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
    char key[S_MAX_TERM_BYTES + 4];
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
    if (len == 0 || len > S_MAX_TERM_BYTES)
        return;
    char key[S_MAX_TERM_BYTES + 4];
    key[0] = s_kind_char[kind];
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

static bool s_doc_passes(const s_doc_t *d, const faq_query_t *query)
{
    if ((query->published_only || query->public_only) && d->status != 'p')
        return false;
    if (query->public_only && d->visibility != 'p')
        return false;
    if (query->status && *query->status && d->status != query->status[0])
        return false;
    if (query->visibility && *query->visibility && d->visibility != query->visibility[0])
        return false;
    if (query->category && *query->category && strcmp(d->category, query->category) != 0)
        return false;
    if (query->department_id > 0 && d->department_id != query->department_id)
        return false;
    return true;
}

static int s_hit_compare(const void *a, const void *b)
{
    const faq_hit_t *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Puts the best `top` hits first, in order (all of them when top is 0 or
 * not smaller than count): a selection (quickselect) then a sort of the
 * few, instead of sorting every hit. */
static void s_order(faq_hit_t *hits, size_t count, size_t top)
{
    if (top == 0 || top >= count) {
        qsort(hits, count, sizeof *hits, s_hit_compare);
        return;
    }
    size_t lo = 0, hi = count - 1;
    while (lo < hi) {
        faq_hit_t pivot = hits[lo + (hi - lo) / 2];
        size_t i = lo, j = hi;
        while (i <= j) {
            while (s_hit_compare(&hits[i], &pivot) < 0)
                i++;
            while (s_hit_compare(&hits[j], &pivot) > 0)
                j--;
            if (i <= j) {
                faq_hit_t swap = hits[i];
                hits[i] = hits[j];
                hits[j] = swap;
                i++;
                if (j == 0)
                    break;
                j--;
            }
        }
        /* [lo, j] <= pivot <= [i, hi] */
        if (top - 1 <= j)
            hi = j;
        else if (top - 1 >= i)
            lo = i;
        else
            break;
    }
    qsort(hits, top, sizeof *hits, s_hit_compare);
}

/* Adds the BM25F score of query terms [from, to) to score[] and (dot not
 * NULL) their products with the documents' question vectors to dot[];
 * *q_sum grows by the squares of the query vector. */
static void s_accumulate(faq_index_t *self, const s_query_terms_t *terms, size_t from, size_t to,
                         size_t q_chars, double *score, double *dot, double *q_sum)
{
    const faq_search_params_t *p = &self->params;
    for (size_t i = from; i < to; i++) {
        const s_qterm_t *qt = &terms->items[i];
        if (qt->kind == S_KIND_U && q_chars > 2)
            continue;
        s_term_t *t = qt->term;
        if (!t || t->n == 0)
            continue;
        double weight = p->kind_weight[qt->kind] * qt->weight * t->idf;
        if (qt->kind == S_KIND_U)
            weight = p->kind_weight[S_KIND_W] * qt->weight * t->idf; /* a short query's kanji */
        double tw = s_term_weight(self, t);
        double qv = qt->kind == S_KIND_U ? 0 : tw * qt->weight;
        *q_sum += qv * qv;
        for (uint32_t j = 0; j < t->n; j++) {
            const s_posting_t *post = &t->items[j];
            const s_doc_t *d = &self->docs[post->doc];
            double tfw = 0;
            for (int f = 0; f < S_FIELDS; f++)
                if (post->tf[f])
                    tfw += p->field_weight[f] * (double)post->tf[f] * d->inv_norm[qt->kind][f];
            score[post->doc] += weight * tfw / (p->k1 + tfw);
            if (dot && qv > 0 && post->tf[S_FIELD_QUESTION])
                dot[post->doc] += qv * tw *
                                  (post->tf[S_FIELD_QUESTION] == 1
                                       ? 1.0
                                       : 1.0 + log((double)post->tf[S_FIELD_QUESTION]));
        }
    }
}

/* The combined score: BM25F plus the query-question cosine scaled by the
 * best BM25F score (the score keeps BM25F's scale). */
static double s_combine(const faq_index_t *self, const faq_query_t *query, const double *score,
                        const double *dot, double q_sum, double *out)
{
    double best = 0;
    for (size_t i = 0; i < self->n_docs; i++)
        if (score[i] > best && s_doc_passes(&self->docs[i], query))
            best = score[i];
    double q_norm = sqrt(q_sum);
    for (size_t i = 0; i < self->n_docs; i++) {
        out[i] = 0;
        if (score[i] <= 0 || best <= 0)
            continue;
        double cosine = 0;
        if (q_norm > 0 && self->docs[i].q_norm > 0)
            cosine = dot[i] / (q_norm * self->docs[i].q_norm);
        out[i] = score[i] + self->params.qq_weight * best * cosine;
    }
    return best;
}

typedef struct {
    s_term_t *term;
    double weight;
} s_candidate_t;

static int s_candidate_compare(const void *a, const void *b)
{
    const s_candidate_t *x = a, *y = b;
    if (x->weight != y->weight)
        return x->weight < y->weight ? 1 : -1;
    return x->term < y->term ? -1 : x->term > y->term;
}

static int s_candidate_by_term(const void *a, const void *b)
{
    const s_candidate_t *x = a, *y = b;
    return x->term < y->term ? -1 : x->term > y->term;
}

/* Pseudo-relevance feedback: the words (kind w) that weigh most in the best
 * `prf_docs` documents of the first ranking and are not in the query are
 * added to it, the heaviest at prf_weight. */
static void s_feedback(faq_index_t *self, const faq_query_t *query, const double *combined,
                       s_query_terms_t *terms)
{
    const faq_search_params_t *p = &self->params;
    int top[16];
    int n_top = 0;
    int want = p->prf_docs < 16 ? p->prf_docs : 16;
    for (int k = 0; k < want; k++) {
        int best = -1;
        for (size_t i = 0; i < self->n_docs; i++) {
            if (combined[i] <= 0 || !s_doc_passes(&self->docs[i], query))
                continue;
            bool taken = false;
            for (int j = 0; j < n_top && !taken; j++)
                taken = top[j] == (int)i;
            if (!taken && (best < 0 || combined[i] > combined[best]))
                best = (int)i;
        }
        if (best < 0)
            break;
        top[n_top++] = best;
    }
    size_t cap = 0;
    for (int k = 0; k < n_top; k++)
        cap += self->docs[top[k]].n_fwd;
    if (cap == 0)
        return;
    s_candidate_t *cand = calloc(cap, sizeof *cand);
    if (!cand)
        return;
    size_t n = 0;
    for (int k = 0; k < n_top; k++) {
        const s_doc_t *d = &self->docs[top[k]];
        double length = 0;
        for (uint32_t j = 0; j < d->n_fwd; j++)
            if (d->fwd[j].term->kind == S_KIND_W)
                for (int f = 0; f < S_FIELDS; f++)
                    length += p->field_weight[f] * d->fwd[j].tf[f];
        if (length <= 0)
            continue;
        for (uint32_t j = 0; j < d->n_fwd; j++) {
            const s_fwd_t *fw = &d->fwd[j];
            if (fw->term->kind != S_KIND_W || fw->term->n < 2)
                continue;
            double tf = 0;
            for (int f = 0; f < S_FIELDS; f++)
                tf += p->field_weight[f] * fw->tf[f];
            /* relevance model: P(w|d) weighted by the document's rank, times idf */
            cand[n].term = fw->term;
            cand[n].weight = tf / length * fw->term->idf / (double)(k + 1);
            n++;
        }
    }
    /* the same word from several documents: one candidate, weights summed */
    qsort(cand, n, sizeof *cand, s_candidate_by_term);
    size_t merged = 0;
    for (size_t i = 0; i < n; i++) {
        if (merged > 0 && cand[merged - 1].term == cand[i].term)
            cand[merged - 1].weight += cand[i].weight;
        else
            cand[merged++] = cand[i];
    }
    n = merged;
    qsort(cand, n, sizeof *cand, s_candidate_compare);
    double top_weight = n ? cand[0].weight : 0;
    int added = 0;
    for (size_t i = 0; i < n && added < p->prf_terms && top_weight > 0; i++) {
        bool in_query = false;
        for (size_t j = 0; j < terms->n && !in_query; j++)
            in_query = terms->items[j].term == cand[i].term;
        if (in_query)
            continue;
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
        t->kind = S_KIND_W;
        t->term = cand[i].term;
        t->weight = p->prf_weight * cand[i].weight / top_weight;
        added++;
    }
    free(cand);
}

static bool s_learned(faq_index_t *self, const s_query_terms_t *terms, size_t n_terms,
                      double *learned);
static void s_learned_add(const faq_index_t *self, const double *learned, double scale,
                          double *combined);

int faq_index_search(faq_index_t *self, const faq_query_t *query, faq_hit_t **ret_hits,
                     size_t *ret_count)
{
    *ret_hits = NULL;
    *ret_count = 0;
    char *norm = faq_normalize(query->q);
    if (!norm)
        return -EINVAL;
    int rc = -ENOMEM;
    double *score = NULL, *dot = NULL, *combined = NULL, *learned = NULL;
    faq_hit_t *hits = NULL;
    s_query_terms_t terms = {.weight = 1.0};
    terms.seen = zhashx_new();
    if (!terms.seen)
        goto out;
    rc = s_analyze(self->analyzer, query->q, true, s_query_emit, &terms);
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
                s_analyze(self->analyzer, *w, true, s_query_emit, &terms);
    }
    rc = -ENOMEM;
    if (terms.failed)
        goto out;
    for (size_t i = 0; i < terms.n; i++)
        terms.items[i].term = zhashx_lookup(self->terms, terms.items[i].key);
    size_t n_docs = self->n_docs ? self->n_docs : 1;
    score = calloc(n_docs, sizeof *score);
    dot = calloc(n_docs, sizeof *dot);
    combined = calloc(n_docs, sizeof *combined);
    learned = calloc(n_docs, sizeof *learned);
    if (!score || !dot || !combined || !learned)
        goto out;
    const faq_search_params_t *p = &self->params;
    double q_sum = 0;
    size_t first_terms = terms.n;
    s_accumulate(self, &terms, 0, first_terms, q_chars, score, dot, &q_sum);
    bool learned_any = s_learned(self, &terms, first_terms, learned);
    double scale = s_combine(self, query, score, dot, q_sum, combined);
    if (learned_any)
        s_learned_add(self, learned, scale, combined);
    if (p->prf_docs > 0 && p->prf_terms > 0 && p->prf_weight > 0) {
        /* the added words count in BM25F; the cosine stays the one of the words typed */
        s_feedback(self, query, combined, &terms);
        double ignored = 0;
        s_accumulate(self, &terms, first_terms, terms.n, q_chars, score, NULL, &ignored);
        scale = s_combine(self, query, score, dot, q_sum, combined);
        if (learned_any)
            s_learned_add(self, learned, scale, combined);
    }
    double best = 0;
    size_t n = 0;
    for (size_t i = 0; i < self->n_docs; i++)
        if (combined[i] > 0 && s_doc_passes(&self->docs[i], query)) {
            n++;
            if (combined[i] > best)
                best = combined[i];
        }
    int64_t number = s_query_number(norm);
    hits = calloc(n + 1, sizeof *hits);
    if (!hits)
        goto out;
    size_t count = 0;
    double floor = best * p->min_fraction;
    for (size_t i = 0; i < self->n_docs; i++) {
        const s_doc_t *d = &self->docs[i];
        bool named = number >= 0 && d->number == number;
        if (named && s_doc_passes(d, query)) {
            hits[count].id = d->id;
            hits[count].score = best + 1000.0;
            count++;
        } else if (combined[i] > 0 && combined[i] >= floor && s_doc_passes(d, query)) {
            hits[count].id = d->id;
            hits[count].score = combined[i];
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
    free(hits);
    free(score);
    free(dot);
    free(combined);
    free(learned);
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

static int s_int64_compare(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The index of the FAQ `id` in docs[], or -1. */
static int64_t s_doc_of(faq_index_t *self, int64_t id)
{
    if (self->n_doc_ids != self->n_docs) {
        int64_t *ids = realloc(self->doc_ids, (self->n_docs + 1) * sizeof *ids);
        if (!ids)
            return -1;
        self->doc_ids = ids;
        for (size_t i = 0; i < self->n_docs; i++)
            ids[i] = (int64_t)((uint64_t)self->docs[i].id << 32 | i);
        self->n_doc_ids = self->n_docs;
        qsort(ids, self->n_docs, sizeof *ids, s_int64_compare);
    }
    size_t lo = 0, hi = self->n_doc_ids;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int64_t at = self->doc_ids[mid] >> 32;
        if (at == id)
            return self->doc_ids[mid] & 0xffffffff;
        if (at < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

int faq_index_add_click(faq_index_t *self, int64_t faq_id, const char *q, int users)
{
    if (!q || users < 1)
        return -EINVAL;
    if (faq_id < 0 || faq_id > UINT32_MAX)
        return -ENOENT;
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
    rc = s_analyze(self->analyzer, q, true, s_query_emit, &terms);
    if (rc < 0)
        goto out;
    rc = -ENOMEM;
    if (terms.failed)
        goto out;
    size_t useful = 0;
    for (size_t i = 0; i < terms.n; i++)
        useful += terms.items[i].kind != S_KIND_U;
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
    for (size_t i = 0; i < terms.n; i++) {
        const s_qterm_t *qt = &terms.items[i];
        if (qt->kind == S_KIND_U)
            continue;
        s_cterm_t *t = zhashx_lookup(self->click_terms, qt->key);
        if (!t) {
            t = calloc(1, sizeof *t);
            if (!t || zhashx_insert(self->click_terms, qt->key, t) != 0) {
                free(t);
                goto out; /* the postings added so far name a click not yet counted: harmless */
            }
            t->kind = qt->kind;
            t->term = zhashx_lookup(self->terms, qt->key);
        }
        if (t->n == t->cap) {
            uint32_t cap = t->cap ? t->cap * 2 : 4;
            s_cpost_t *grown = realloc(t->items, cap * sizeof *grown);
            if (!grown)
                goto out;
            t->items = grown;
            t->cap = cap;
        }
        t->items[t->n++] = (s_cpost_t){.click = click, .tf = 1};
    }
    if (zhashx_insert(self->click_keys, key, (void *)(uintptr_t)(click + 1)) != 0)
        goto out;
    self->clicks[click] = (s_click_t){.doc = (uint32_t)doc, .users = (uint32_t)users};
    self->click_dot[click] = 0;
    self->n_clicks++;
    self->click_norms_stale = true;
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
        if (qt->kind == S_KIND_U)
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
        if (!t || terms->items[i].kind == S_KIND_U)
            continue;
        for (uint32_t j = 0; j < t->n; j++) {
            double *dot = &self->click_dot[t->items[j].click];
            if (*dot == 0)
                continue;
            const s_click_t *c = &self->clicks[t->items[j].click];
            double cosine = q_norm > 0 && c->norm > 0 ? *dot / (q_norm * c->norm) : 0;
            *dot = 0; /* the scratch is clean again for the next search */
            if (cosine >= self->params.click_min && cosine > learned[c->doc]) {
                learned[c->doc] = cosine;
                any = true;
            }
        }
    }
    return any;
}

/* Adds the learned part to the combined score, scaled by the best BM25F
 * score as the query-question cosine is (by 1 when no FAQ holds a word of
 * the query: learned words may be all a query has). */
static void s_learned_add(const faq_index_t *self, const double *learned, double scale,
                          double *combined)
{
    if (scale <= 0)
        scale = 1.0;
    for (size_t i = 0; i < self->n_docs; i++)
        if (learned[i] > 0)
            combined[i] += self->params.click_weight * scale * learned[i];
}
