/* summarizer: the configured summarizer with the extractive one as its
 * fallback (summarizer.h). */
#include "summarizer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct summarizer {
    summarizer_config_t config; /* strings owned */
    bool openai;
    extractive_t *extractive; /* owned */
};

static char *s_dup(const char *text)
{
    return strdup(text ? text : "");
}

summarizer_t *summarizer_new(const summarizer_config_t *config)
{
    summarizer_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->openai = config->kind && strcmp(config->kind, "openai") == 0;
    self->config = *config;
    self->config.kind = s_dup(self->openai ? "openai" : "extractive");
    self->config.base_url = s_dup(config->base_url);
    self->config.model = s_dup(config->model);
    self->config.api_key = s_dup(config->api_key);
    if (self->config.max_chars <= 0)
        self->config.max_chars = 200;
    if (self->config.timeout_ms <= 0)
        self->config.timeout_ms = 8000;
    self->extractive = extractive_new();
    if (!self->extractive || !self->config.kind || !self->config.base_url || !self->config.model ||
        !self->config.api_key ||
        (self->openai && (!*self->config.base_url || !*self->config.model))) {
        summarizer_destroy(&self);
        return NULL;
    }
    return self;
}

void summarizer_destroy(summarizer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    summarizer_t *self = *self_p;
    extractive_destroy(&self->extractive);
    free((char *)self->config.kind);
    free((char *)self->config.base_url);
    free((char *)self->config.model);
    if (self->config.api_key)
        explicit_bzero((char *)self->config.api_key, strlen(self->config.api_key));
    free((char *)self->config.api_key);
    free(self);
    *self_p = NULL;
}

const summarizer_config_t *summarizer_config(const summarizer_t *self)
{
    return &self->config;
}

/* Cuts text to at most max characters (UTF-8 safe), in place. */
static void s_cut(char *text, int max)
{
    int n = 0;
    unsigned char *p = (unsigned char *)text;
    while (*p) {
        if ((*p & 0xC0) != 0x80 && n++ == max) {
            *p = '\0';
            return;
        }
        p++;
    }
}

int summarizer_run(summarizer_t *self, const summary_segment_t *segments, size_t count,
                   const char *const *originals, size_t n_originals, bool embedded_only,
                   char **ret_summary, const char **ret_used, const char **ret_reason)
{
    *ret_reason = NULL;
    if (self->openai && !embedded_only) {
        const char *reason = NULL;
        char *summary = openai_summarize(&self->config, segments, count, &reason);
        for (size_t i = 0; summary && i < n_originals; i++) {
            if (originals[i] && strlen(originals[i]) >= 2 && strstr(summary, originals[i])) {
                free(summary);
                summary = NULL;
                reason = "leaked_entity";
            }
        }
        if (summary) {
            s_cut(summary, self->config.max_chars * 2);
            *ret_summary = summary;
            *ret_used = "openai";
            return 0;
        }
        *ret_reason = reason ? reason : "failed";
    }
    char *summary = extractive_summarize(self->extractive, segments, count, self->config.max_chars);
    if (!summary)
        return -ENOMEM;
    *ret_summary = summary;
    *ret_used = "extractive";
    return 0;
}
