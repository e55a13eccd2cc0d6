/* ncc-calls: call events from the cloud PBX, the call state machine, screen pop, transcripts,
 * recordings. main stays thin: the frame (ncc/service.h) does configuration, database, bus and
 * health; the service adds its handlers. */
#include "ncc/service.h"

extern const ncc_migration_t ncc_sql_calls[];

int main(int argc, char **argv)
{
    const ncc_service_options_t options = {.name = "calls", .migrations = ncc_sql_calls};
    return ncc_service_main(&options, argc, argv);
}
