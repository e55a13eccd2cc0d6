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
