/* ncc-summary: personal-data masking, call summaries, emotion, FAQ
 * suggestions (docs/summary.md). main stays thin: the frame (ncc/service.h)
 * does configuration, database, bus and health; summary.c adds the service. */
#include <stddef.h>

#include "ncc/service.h"
#include "summary.h"

extern const ncc_migration_t ncc_sql_summary[];

#define S_FIELD(f) offsetof(summary_settings_t, f)

static const ncc_config_entry_t s_config[] = {
    {"NCC_SUMMARY_SUMMARIZER", NCC_CONFIG_STRING, "extractive", S_FIELD(summarizer), 0, 0, false,
     false, "extractive (built in, no network) or openai (an OpenAI-compatible endpoint)"},
    {"NCC_SUMMARY_OPENAI_BASE_URL", NCC_CONFIG_STRING, NULL, S_FIELD(openai_base_url), 0, 0, false,
     false, "openai: the API's base URL, e.g. https://host/v1 (/chat/completions is added)"},
    {"NCC_SUMMARY_OPENAI_MODEL", NCC_CONFIG_STRING, NULL, S_FIELD(openai_model), 0, 0, false, false,
     "openai: the model (or Azure deployment) name"},
    {"NCC_SUMMARY_OPENAI_API_KEY", NCC_CONFIG_STRING, NULL, S_FIELD(openai_api_key), 0, 0, false,
     true, "openai: the API key (sent as Bearer and api-key); never logged"},
    {"NCC_SUMMARY_OPENAI_TIMEOUT_MS", NCC_CONFIG_INT, "8000", S_FIELD(openai_timeout_ms), 100,
     120000, false, false, "openai: longest request; then the extractive summary is used"},
    {"NCC_SUMMARY_MAX_CHARS", NCC_CONFIG_INT, "200", S_FIELD(max_chars), 60, 2000, false, false,
     "about how long a summary is, characters"},
    {"NCC_SUMMARY_TEXT_MAX_CHARS", NCC_CONFIG_INT, "20000", S_FIELD(text_max_chars), 1, 1000000,
     false, false, "POST /api/v1/summaries: longest text, characters (longer: 413)"},
    {"NCC_SUMMARY_DEBOUNCE_MS", NCC_CONFIG_INT, "2000", S_FIELD(debounce_ms), 0, 600000, false,
     false, "a call's running summary is made at most this long after new segments"},
    {"NCC_SUMMARY_TICK_MS", NCC_CONFIG_INT, "100", S_FIELD(tick_ms), 10, 60000, false, false,
     "how often due running and final summaries are looked for"},
    {"NCC_SUMMARY_ANGER_ALERT", NCC_CONFIG_INT, "60", S_FIELD(anger_alert), 1, 100, false, false,
     "percent: supervisors get emotion.alert when a caller's anger rises past it (R37)"},
    {"NCC_SUMMARY_FAQ_TIMEOUT_MS", NCC_CONFIG_INT, "500", S_FIELD(faq_timeout_ms), 50, 10000, false,
     false, "time limit of an FAQ suggestion request to ncc-faq (R36)"},
    {NULL, 0, NULL, 0, 0, 0, false, false, NULL},
};

static summary_settings_t s_settings;

static void *s_create(ncc_service_t *service)
{
    return summary_new(service, &s_settings);
}

static void s_destroy(void **state_p)
{
    summary_t *self = *state_p;
    summary_destroy(&self);
    *state_p = NULL;
}

int main(int argc, char **argv)
{
    const ncc_service_options_t options = {
        .name = "summary",
        .migrations = ncc_sql_summary,
        .config = s_config,
        .config_target = &s_settings,
        .create = s_create,
        .destroy = s_destroy,
    };
    return ncc_service_main(&options, argc, argv);
}
