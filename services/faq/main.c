/* ncc-faq: operator and public FAQ, Japanese search, versions and approval.
 * main stays thin: the frame (ncc/service.h) does configuration, database,
 * bus and health; faq.c adds the service (docs/faq.md). */
#include <stddef.h>

#include "faq.h"
#include "ncc/service.h"

extern const ncc_migration_t ncc_sql_faq[];

/* The FAQ service's settings; docs/faq.md explains them. */
static const ncc_config_entry_t s_config[] = {
    {"NCC_FAQ_MECAB_DICDIR", NCC_CONFIG_STRING, "/var/lib/mecab/dic/ipadic-utf8",
     offsetof(faq_settings_t, mecab_dicdir), 0, 0, false, false,
     "MeCab dictionary folder (IPA dictionary, UTF-8); empty: the one mecabrc names"},
    {"NCC_FAQ_VOTES_PER_MINUTE", NCC_CONFIG_INT, "10", offsetof(faq_settings_t, votes_per_minute),
     1, 100000, true, false, "residents' votes accepted per address and minute (each copy)"},
    {"NCC_FAQ_INDEX_CHECK_MS", NCC_CONFIG_INT, "1000", offsetof(faq_settings_t, index_check_ms),
     100, 60000, false, false,
     "how often a copy checks whether another changed the FAQ (then rebuilds its index)"},
    {"NCC_FAQ_CLICK_DAYS", NCC_CONFIG_INT, "365", offsetof(faq_settings_t, click_days), 1, 3650,
     false, false,
     "days a click (the words that led a user to an FAQ) counts in the search; older ones are "
     "not loaded"},
    {NULL, 0, NULL, 0, 0, 0, false, false, NULL},
};

static faq_settings_t s_settings;

static void *s_create(ncc_service_t *service)
{
    return faq_new(service, &s_settings);
}

static void s_destroy(void **state_p)
{
    faq_t *self = *state_p;
    faq_destroy(&self);
    *state_p = NULL;
}

int main(int argc, char **argv)
{
    const ncc_service_options_t options = {
        .name = "faq",
        .migrations = ncc_sql_faq,
        .config = s_config,
        .config_target = &s_settings,
        .create = s_create,
        .destroy = s_destroy,
    };
    return ncc_service_main(&options, argc, argv);
}
