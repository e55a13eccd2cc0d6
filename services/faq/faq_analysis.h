/* faq_analysis: how the FAQ search reads text (faq_analysis.c; the public
 * part, faq_analyzer_* and faq_normalize, is declared in faq_search.h).
 * Used by the index (faq_search.c) only. */
#ifndef FAQ_ANALYSIS_H
#define FAQ_ANALYSIS_H

#include <stdbool.h>
#include <stddef.h>

#include "faq_search.h"

/* The kinds of term (docs/faq.md "Search"): words and compounds, their
 * readings, character bigrams, reading bigrams, single kanji. */
enum { FAQ_KIND_W, FAQ_KIND_R, FAQ_KIND_B, FAQ_KIND_Y, FAQ_KIND_U, FAQ_KINDS };
/* Each kind's letter in a term's key ("w:住民票"). */
extern const char faq_kind_char[FAQ_KINDS];

#define FAQ_MAX_TERM_BYTES 96 /* longer words (URLs, runs of symbols) are not indexed */

typedef void (*faq_emit_fn)(void *arg, int kind, const char *term, size_t len);

/* Emits the terms of `text`. `query`: a text made only of kana also gives
 * the reading bigrams of the whole. 0, -EINVAL (not UTF-8), -ENOMEM. */
int faq_analyze(faq_analyzer_t *self, const char *text, bool query, faq_emit_fn emit, void *arg);

#endif
