/* emotion: anger, confusion and satisfaction scores of a conversation
 * (R37) from ncc's own lexicon (services/summary/emotion_lexicon.tsv, built
 * into the binary) and a few rules: intensifiers (本当に, 全然, !) raise
 * anger and confusion found in the same segment; repeated question marks
 * raise confusion. Library code: no logging, no state beyond the lexicon. */
#ifndef SUMMARY_EMOTION_H
#define SUMMARY_EMOTION_H

typedef struct {
    double anger;        /* 0..1 */
    double confusion;    /* 0..1 */
    double satisfaction; /* 0..1 */
} emotion_t;

/* The scores of one text (UTF-8; invalid text scores 0). */
emotion_t emotion_score(const char *text);

/* Folds a caller's segment into the call's scores (a moving average that
 * weighs recent segments most: anger that rises shows). `count` is the
 * number of segments folded before this one. */
void emotion_fold(emotion_t *call, const emotion_t *segment, int count);

/* "anger", "confusion", "satisfaction" (the highest, when at least 0.2) or
 * "neutral". Borrowed. */
const char *emotion_label(const emotion_t *e);

/* The number of lexicon entries (0 if the built-in lexicon did not parse). */
int emotion_lexicon_size(void);

#endif
