/* faq_search: the FAQ search of ncc-faq (R41-R43, docs/faq.md).
 *
 * Analysis (faq_analyzer_t): text is normalised in one place with utf8proc
 * (NFKC and case folding: full/half width, ｶﾅ, ＡＢＣ) and katakana folded to
 * hiragana; MeCab with the IPA dictionary splits it into morphemes and gives
 * each its base form and its reading. One text gives terms of five kinds:
 *   w  content words (base forms) and compound nouns (住民票),
 *   r  their readings in hiragana (じゅうみんひょう),
 *   b  character bigrams inside runs of content words (partial words, typos),
 *   y  bigrams of the readings (a word typed in kana, homophone typos),
 *   u  single kanji (1-character queries).
 *
 * The index (faq_index_t) is in memory: term -> postings with the count per
 * field (question, answer, keywords), and each FAQ's words and question
 * terms. Ranking is BM25F per kind of term, the kinds weighted, plus the
 * cosine between the query and the FAQ's question (idf over the questions),
 * then pseudo-relevance feedback (words of the best FAQs added to the query,
 * BM25F counted again); synonym groups expand a query. An index is built
 * whole (faq_index_add for each FAQ, then faq_index_finish) and replaced
 * whole; it is used from one thread. */
#ifndef FAQ_SEARCH_H
#define FAQ_SEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct faq_analyzer faq_analyzer_t;
typedef struct faq_index faq_index_t;

/* MeCab on `dicdir` (NULL or "": the system's mecabrc). NULL when MeCab
 * cannot start (no dictionary). */
faq_analyzer_t *faq_analyzer_new(const char *dicdir);
void faq_analyzer_destroy(faq_analyzer_t **self_p);

/* The normalised form of `text` (NFKC, case folded, katakana as hiragana,
 * control characters dropped, blanks squeezed): caller frees; NULL when
 * `text` is not UTF-8 or out of memory. */
char *faq_normalize(const char *text);

/* The text's terms as "kind:term" separated by spaces (tests, debugging);
 * caller frees. */
char *faq_analyzer_terms(faq_analyzer_t *self, const char *text);

/* One FAQ as the index sees it (strings borrowed during faq_index_add). */
typedef struct {
    int64_t id;
    int64_t number;
    const char *question;
    const char *answer;
    const char *keywords;
    const char *status;     /* draft | review | published | archived */
    const char *visibility; /* public | internal */
    const char *category;
    int64_t department_id; /* 0: none */
} faq_doc_t;

/* Ranking parameters (defaults in faq_search_params_default). */
typedef struct {
    double k1;
    double b;
    double field_weight[3]; /* question, answer, keywords */
    double kind_weight[5];  /* w, r, b, y, u */
    double synonym_weight;  /* terms that come from a synonym group */
    double min_fraction;    /* hits below this fraction of the best score are dropped */
    double qq_weight;       /* query-question cosine added to the normalised BM25F score */
    int prf_docs;           /* pseudo-relevance feedback: top documents read (0: off) */
    int prf_terms;          /* terms added from them */
    double prf_weight;      /* weight of an added term (relative to a query term) */
    double click_weight;    /* learned words: their cosine with the query, scaled as qq_weight */
    double click_min;       /* learned words less similar to the query than this are ignored */
} faq_search_params_t;

faq_search_params_t faq_search_params_default(void);

/* An empty index using `analyzer` (borrowed, must outlive it). */
faq_index_t *faq_index_new(faq_analyzer_t *analyzer);
void faq_index_destroy(faq_index_t **self_p);
/* Adds one FAQ. 0 or -ENOMEM. */
int faq_index_add(faq_index_t *self, const faq_doc_t *doc);
/* Computes the length statistics; call once after the last add. */
void faq_index_finish(faq_index_t *self);
size_t faq_index_size(const faq_index_t *self);
void faq_index_set_params(faq_index_t *self, const faq_search_params_t *params);

/* Synonym groups: `groups` is an array of `count` arrays of words, each
 * ending with NULL (copied). A query holding a word of a group also looks
 * for the group's other words. 0 or -ENOMEM. */
int faq_index_set_synonyms(faq_index_t *self, const char *const *const *groups, size_t count);

/* Learned from operators (docs/faq.md "Learning from operators"): the words
 * `q` led `users` different staff users to FAQ `faq_id` (opened from the
 * results or used in a record). The same words for the same FAQ add up. A
 * query close to words that led to an FAQ raises that FAQ. Works before and
 * after faq_index_finish (a live index takes clicks as they come). 0,
 * -ENOENT (the FAQ is not in the index), -EINVAL (q not UTF-8 or without
 * terms), -ENOMEM. */
int faq_index_add_click(faq_index_t *self, int64_t faq_id, const char *q, int users);

typedef struct {
    const char *q;          /* the words (required, UTF-8) */
    const char *status;     /* NULL: any */
    const char *visibility; /* NULL: any */
    const char *category;   /* NULL: any */
    int64_t department_id;  /* 0: any */
    bool published_only;    /* operators, staff, residents */
    bool public_only;       /* residents */
    size_t top;             /* only the best `top` hits need to be in order (0: all) */
} faq_query_t;

typedef struct {
    int64_t id;
    double score;
} faq_hit_t;

/* Ranks the FAQs for `query`: *ret_hits (caller frees; NULL when none) holds
 * every hit, best first (ties: lower id first), *ret_count of them; with
 * query->top, only the first `top` are in order (the rest follow unordered). A
 * `q` that is an FAQ number (digits, also full width, optionally after "#"
 * or "No.") puts that FAQ first. 0, -EINVAL (q not UTF-8), -ENOMEM. */
int faq_index_search(faq_index_t *self, const faq_query_t *query, faq_hit_t **ret_hits,
                     size_t *ret_count);

#endif
