/* draft: resident-facing answer drafts from published public FAQs (R49).
 * draft_choose() picks the FAQs (already found by ncc-faq's search) whose
 * words cover the question; draft_extractive() composes an answer from their
 * sentences, each part followed by its citation （FAQ n）; draft_citations()
 * reads the FAQ numbers a text cites (to check an LLM's draft). Library code:
 * nothing here logs. The request itself (ncc.summary.DraftAnswer) is in
 * draft.c too (summary_draft_register, summary.h). docs/summary.md. */
#ifndef SUMMARY_DRAFT_H
#define SUMMARY_DRAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t number;       /* FAQ番号 */
    const char *question; /* borrowed */
    const char *answer;   /* borrowed */
    const char *keywords; /* borrowed, may be NULL */
} draft_faq_t;

typedef struct draft draft_t;

/* A drafter (its own MeCab tagger), or NULL. */
draft_t *draft_new(void);
void draft_destroy(draft_t **self_p);

/* Writes into ret_chosen (room for `max`) the indexes of the FAQs, in the
 * order given, that answer the (masked) question: most of its content words
 * are in the FAQ, at least one of them in its question or keywords. Returns
 * how many (0: none fits). */
size_t draft_choose(draft_t *self, const char *question, const draft_faq_t *faqs, size_t count,
                    size_t *ret_chosen, size_t max);

/* An answer from the chosen FAQs' sentences (the first of each answer and
 * those sharing words with the question), each FAQ's part ending in
 * （FAQ n）, at most about max_chars characters. Caller frees; NULL when out
 * of memory. */
char *draft_extractive(draft_t *self, const char *question, const draft_faq_t *faqs,
                       const size_t *chosen, size_t n_chosen, int max_chars);

/* The FAQ numbers `text` cites ("FAQ 12", "ＦＡＱ１２", "FAQ番号12", "FAQ 12、34"),
 * at most `max` written into ret_numbers. Returns how many citations were
 * found (may exceed max). */
size_t draft_citations(const char *text, int64_t *ret_numbers, size_t max);

#endif
