/* summarizer: call summaries behind one interface, chosen by configuration
 * (NCC_SUMMARY_SUMMARIZER): `extractive` (built in, MeCab scoring, no
 * network) or `openai` (any OpenAI-compatible Chat Completions endpoint).
 * Every summarizer is given MASKED text only (mask.h runs first). The
 * `openai` one falls back to `extractive` when it fails, hangs past its
 * time-out, answers garbage, or answers with one of the entities' original
 * text. Library code: failures are reported in ret_reason, not logged. */
#ifndef SUMMARY_SUMMARIZER_H
#define SUMMARY_SUMMARIZER_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *speaker; /* "caller", "operator", or NULL when unknown */
    const char *text;    /* masked */
} summary_segment_t;

typedef struct {
    const char *kind;     /* "extractive" (default) or "openai" */
    const char *base_url; /* openai: "https://host/v1" (…/chat/completions is added) */
    const char *model;
    const char *api_key; /* borrowed; never logged; may be NULL (local servers) */
    int timeout_ms;      /* the whole request */
    int max_chars;       /* the longest summary kept */
} summarizer_config_t;

typedef struct summarizer summarizer_t;

/* A summarizer for `config` (strings copied), or NULL (MeCab missing, no
 * memory, or an openai configuration without base URL or model). */
summarizer_t *summarizer_new(const summarizer_config_t *config);
void summarizer_destroy(summarizer_t **self_p);

/* Summarizes the segments. `originals` are the original texts of the
 * entities that were masked (a summary containing one is refused). With
 * `embedded_only` the extractive summarizer answers whatever is configured
 * (running summaries while the call goes on).
 * Writes the summary (caller frees), the name of the summarizer that made it
 * (borrowed) and, when the configured one failed, why (borrowed static text,
 * else NULL). 0 or -ENOMEM. */
int summarizer_run(summarizer_t *self, const summary_segment_t *segments, size_t count,
                   const char *const *originals, size_t n_originals, bool embedded_only,
                   char **ret_summary, const char **ret_used, const char **ret_reason);

/* ---- the two implementations (summarizer.c chooses) -------------------------------------- */

typedef struct extractive extractive_t;
extractive_t *extractive_new(void);
void extractive_destroy(extractive_t **self_p);
/* 用件 / 回答 / 結果 in at most about max_chars characters (caller frees), or NULL. */
char *extractive_summarize(extractive_t *self, const summary_segment_t *segments, size_t count,
                           int max_chars);

/* The content of the first choice of a Chat Completions answer (caller
 * frees), or NULL with *ret_reason set: "unreachable", "timeout", "http_status",
 * "too_large", "not_json", "no_content", "bad_text". */
char *openai_summarize(const summarizer_config_t *config, const summary_segment_t *segments,
                       size_t count, const char **ret_reason);

/* One Chat Completions exchange: a system message and a user message (both
 * masked by the caller); the content of the answer's first choice (caller
 * frees) or NULL with *ret_reason set as for openai_summarize. */
char *openai_chat(const summarizer_config_t *config, const char *system_prompt,
                  const char *user_text, const char **ret_reason);

/* The configuration the summarizer was made with (borrowed; strings owned by
 * the summarizer). */
const summarizer_config_t *summarizer_config(const summarizer_t *self);

#endif
