/* ncc-history: interaction records (応対履歴): search, export, retention.
 * main stays thin: the frame (ncc/service.h) does configuration, database,
 * bus and health; history.c adds the service (docs/history.md). */
#include <malloc.h>
#include <stddef.h>

#include "history.h"
#include "ncc/service.h"

extern const ncc_migration_t ncc_sql_history[];

/* The history's settings; docs/history.md explains them. */
static const ncc_config_entry_t s_config[] = {
    {"NCC_HISTORY_RETENTION_FISCAL_YEARS", NCC_CONFIG_INT, "0",
     offsetof(history_settings_t, retention_fiscal_years), 0, 100, true, false,
     "fiscal years of records kept, the current one included (R34); older ones are purged by "
     "the hourly job; 0 keeps every year"},
    {"NCC_HISTORY_INDEX_POLL_MS", NCC_CONFIG_INT, "100",
     offsetof(history_settings_t, index_poll_ms), 10, 10000, false, false,
     "how often the search index looks for changes made by other copies, ms"},
    {"NCC_HISTORY_PURGE_CHECK_S", NCC_CONFIG_INT, "3600",
     offsetof(history_settings_t, purge_check_s), 1, 86400, true, false,
     "how often the retention job looks for fiscal years to purge, seconds"},
    {NULL, 0, NULL, 0, 0, 0, false, false, NULL},
};

static history_settings_t s_settings;

static void *s_create(ncc_service_t *service)
{
    return history_new(service, &s_settings);
}

static void s_destroy(void **state_p)
{
    history_t *self = *state_p;
    history_destroy(&self);
    *state_p = NULL;
}

int main(int argc, char **argv)
{
    /* Export pages and replies are buffers of a few MiB made again for every
     * page: keep them on the heap rather than fresh mmap()s (page faults). */
    mallopt(M_MMAP_THRESHOLD, 16 * 1024 * 1024);
    const ncc_service_options_t options = {
        .name = "history",
        .migrations = ncc_sql_history,
        .config = s_config,
        .config_target = &s_settings,
        .create = s_create,
        .destroy = s_destroy,
    };
    return ncc_service_main(&options, argc, argv);
}
