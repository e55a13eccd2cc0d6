/* summary: the state of ncc-summary and what its files share.
 * summary.c answers POST /api/v1/summaries and GET /api/v1/calls/{id}/summary;
 * realtime.c follows ncc-calls' transcripts and hang-ups: masked segments,
 * emotion, debounced running summaries, FAQ suggestions, the final summary
 * (ncc.summary.CallSummary for ncc-history); draft.c drafts answers to
 * residents from published public FAQs. docs/summary.md. */
#ifndef SUMMARY_H
#define SUMMARY_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "draft.h"
#include "emotion.h"
#include "mask.h"
#include "ncc/service.h"
#include "summarizer.h"

#define SUMMARY_MASKED_CONTEXT "summary.masked"

typedef struct {
    char *summarizer;      /* NCC_SUMMARY_SUMMARIZER: extractive | openai */
    char *openai_base_url; /* NCC_SUMMARY_OPENAI_BASE_URL */
    char *openai_model;    /* NCC_SUMMARY_OPENAI_MODEL */
    char *openai_api_key;  /* NCC_SUMMARY_OPENAI_API_KEY (secret) */
    int openai_timeout_ms; /* NCC_SUMMARY_OPENAI_TIMEOUT_MS */
    int max_chars;         /* NCC_SUMMARY_MAX_CHARS: the summary's length */
    int text_max_chars;    /* NCC_SUMMARY_TEXT_MAX_CHARS: POST /api/v1/summaries */
    int debounce_ms;       /* NCC_SUMMARY_DEBOUNCE_MS: running summary at most this often */
    int tick_ms;           /* NCC_SUMMARY_TICK_MS: how often due summaries are looked for */
    int anger_alert;       /* NCC_SUMMARY_ANGER_ALERT: percent; crossing it alerts supervisors */
    int faq_timeout_ms;    /* NCC_SUMMARY_FAQ_TIMEOUT_MS: SuggestFaqs time limit */
} summary_settings_t;

typedef struct {
    ncc_service_t *service;       /* borrowed */
    ncc_db_t *db;                 /* borrowed */
    const ncc_keyring_t *keyring; /* borrowed, NULL without NCC_DATA_KEYS */
    const summary_settings_t *settings;
    mask_t *mask;               /* owned */
    summarizer_t *summarizer;   /* owned */
    draft_t *draft;             /* owned: answer drafts (draft.c) */
    int64_t faq_quiet_until_us; /* no FAQ suggestions asked before (the FAQ service is down) */
} summary_t;

summary_t *summary_new(ncc_service_t *service, const summary_settings_t *settings);
void summary_destroy(summary_t **self_p);

int summary_realtime_register(summary_t *self);

/* Answers ncc.summary.DraftAnswer (draft.c; R49). 0 or -errno. */
int summary_draft_register(summary_t *self);

/* A summary of masked segments with the configured summarizer, its answer
 * checked again by the masker (an entity in it: extractive instead).
 * `originals` as summarizer_run. Caller frees *ret_summary. 0 or -ENOMEM. */
int summary_make(summary_t *self, const summary_segment_t *segments, size_t count,
                 const char *const *originals, size_t n_originals, bool embedded_only,
                 char **ret_summary, const char **ret_used, bool *ret_fallback);

/* {anger, confusion, satisfaction, label} as a new JSON object (caller
 * deletes), or NULL. */
cJSON *summary_emotion_json(const emotion_t *e);

#endif
