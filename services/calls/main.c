/* ncc-calls: call events from the cloud PBX, the call state machine, screen pop, transcripts,
 * recordings. main stays thin: the frame (ncc/service.h) does configuration, database, bus and
 * health; the service adds its handlers. */
#include "ncc/masters_cache.h"
#include "ncc/service.h"

extern const ncc_migration_t ncc_sql_calls[];

/* Departments (transfer targets, screen pop), kept live from ncc-directory (R5). */
static void *s_create(ncc_service_t *service)
{
    static const char *const kinds[] = {"departments", NULL};
    return ncc_masters_cache_new(service, kinds);
}

static void s_destroy(void **state_p)
{
    ncc_masters_cache_t *cache = *state_p;
    ncc_masters_cache_destroy(&cache);
    *state_p = NULL;
}

int main(int argc, char **argv)
{
    const ncc_service_options_t options = {
        .name = "calls", .migrations = ncc_sql_calls, .create = s_create, .destroy = s_destroy};
    return ncc_service_main(&options, argc, argv);
}
