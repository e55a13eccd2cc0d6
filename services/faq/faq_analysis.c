/* faq_analysis: normalisation (utf8proc) and analysis (MeCab, IPA dictionary)
 * of the FAQ search: text to terms of five kinds (faq_analysis.h,
 * docs/faq.md "Search"). The index that ranks them is faq_search.c. */
#include "faq_analysis.h"

#include <errno.h>
#include <mecab.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

const char faq_kind_char[FAQ_KINDS] = {'w', 'r', 'b', 'y', 'u'};

#define S_MAX_CHUNK 64 /* code points kept of one run of content words */

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

static void s_chunk_flush(s_chunk_t *chunk, int kind, faq_emit_fn emit, void *arg)
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
    char surface[FAQ_MAX_TERM_BYTES];
    size_t surface_len;
    char reading[FAQ_MAX_TERM_BYTES];
    size_t reading_len;
    bool reading_ok; /* every part had a reading */
    int parts;
} s_compound_t;

static void s_compound_flush(s_compound_t *compound, faq_emit_fn emit, void *arg)
{
    if (compound->parts >= 2) {
        emit(arg, FAQ_KIND_W, compound->surface, compound->surface_len);
        if (compound->reading_ok && compound->reading_len > 0)
            emit(arg, FAQ_KIND_R, compound->reading, compound->reading_len);
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
    char base[FAQ_MAX_TERM_BYTES], reading[FAQ_MAX_TERM_BYTES];
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
int faq_analyze(faq_analyzer_t *self, const char *text, bool query, faq_emit_fn emit, void *arg)
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
            emit(arg, FAQ_KIND_U, norm + i, (size_t)step);
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
            s_chunk_flush(&chunk, FAQ_KIND_Y, emit, arg);
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
        char surface[FAQ_MAX_TERM_BYTES];
        size_t surface_len = node->length;
        if (surface_len == 0 || surface_len >= sizeof surface || !s_is_content(&f, unknown) ||
            (surface_len == 1 && norm[0] && node->surface[0] == ' ')) {
            s_chunk_flush(&surfaces, FAQ_KIND_B, emit, arg);
            s_chunk_flush(&readings, FAQ_KIND_Y, emit, arg);
            s_compound_flush(&compound, emit, arg);
            continue;
        }
        memcpy(surface, node->surface, surface_len);
        surface[surface_len] = '\0';
        s_fold_kana(surface);
        const char *base = f.base[0] ? f.base : surface;
        char word[FAQ_MAX_TERM_BYTES];
        snprintf(word, sizeof word, "%s", base);
        s_fold_kana(word);
        emit(arg, FAQ_KIND_W, word, strlen(word));
        char reading[FAQ_MAX_TERM_BYTES] = "";
        if (f.reading[0]) {
            snprintf(reading, sizeof reading, "%s", f.reading);
            s_fold_kana(reading);
        } else if (s_all_kana(surface, surface_len)) {
            snprintf(reading, sizeof reading, "%s", surface);
        }
        if (reading[0] && strcmp(reading, word) != 0)
            emit(arg, FAQ_KIND_R, reading, strlen(reading));
        s_chunk_add(&surfaces, surface, surface_len);
        /* readings of the surface as written (conjugated forms) */
        if (reading[0])
            s_chunk_add(&readings, reading, strlen(reading));
        else
            s_chunk_flush(&readings, FAQ_KIND_Y, emit, arg);
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
    s_chunk_flush(&surfaces, FAQ_KIND_B, emit, arg);
    s_chunk_flush(&readings, FAQ_KIND_Y, emit, arg);
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
    out->buf[out->len++] = faq_kind_char[kind];
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
    if (faq_analyze(self, text, true, s_terms_emit, &out) < 0) {
        free(out.buf);
        return NULL;
    }
    return out.buf;
}
