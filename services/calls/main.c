/* ncc-calls: call events from the cloud PBX, the call state machine, screen pop, transcripts,
 * recordings. main stays thin: the frame (ncc/service.h) does configuration, database, bus and
 * health; calls.c adds the service. */
#include <stddef.h>

#include "calls.h"
#include "ncc/service.h"

extern const ncc_migration_t ncc_sql_calls[];

static const ncc_config_entry_t s_config[] = {
    {"NCC_CALLS_MECAB_DISABLED", NCC_CONFIG_INT, "0", offsetof(calls_settings_t, mecab_disabled), 0,
     1, false, false,
     "1: the transcript token export answers 503 (a machine without MeCab's dictionary)"},
    {"NCC_RECORDING_MAX_BYTES", NCC_CONFIG_INT, "67108864",
     offsetof(calls_settings_t, recording_max_bytes), 1024, 1073741824, true, false,
     "largest recording fetched from the PBX, bytes (larger ones fail)"},
    {"NCC_RECORDING_FETCH_TIMEOUT_MS", NCC_CONFIG_INT, "120000",
     offsetof(calls_settings_t, recording_timeout_ms), 1000, 3600000, true, false,
     "longest fetch of one recording"},
    {"NCC_RECORDING_RETENTION_DAYS", NCC_CONFIG_INT, "365",
     offsetof(calls_settings_t, recording_retention_days), 0, 36500, true, false,
     "recordings are deleted this many days after they were stored (0: kept) (R24)"},
    {"NCC_RECORDING_PURGE_MS", NCC_CONFIG_INT, "60000",
     offsetof(calls_settings_t, recording_purge_ms), 100, 86400000, false, false,
     "how often recordings past their retention are deleted"},
    {"NCC_RECORDING_CHECK_MS", NCC_CONFIG_INT, "5000",
     offsetof(calls_settings_t, recording_check_ms), 50, 600000, false, false,
     "how often the fetcher looks for recordings to fetch (a new one wakes it at once)"},
    {NULL, 0, NULL, 0, 0, 0, false, false, NULL},
};

static calls_settings_t s_settings;

static void *s_create(ncc_service_t *service)
{
    return calls_new(service, &s_settings);
}

static void s_destroy(void **state_p)
{
    calls_t *self = *state_p;
    calls_destroy(&self);
    *state_p = NULL;
}

int main(int argc, char **argv)
{
    const ncc_service_options_t options = {
        .name = "calls",
        .migrations = ncc_sql_calls,
        .config = s_config,
        .config_target = &s_settings,
        .create = s_create,
        .destroy = s_destroy,
    };
    return ncc_service_main(&options, argc, argv);
}
