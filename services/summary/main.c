/* ncc-summary: personal-data masking, call summaries, sentiment.
 * main stays thin: the frame (ncc/service.h) does configuration, database,
 * bus and health; the service adds its handlers. */
#include "ncc/service.h"

extern const ncc_migration_t ncc_sql_summary[];

int main(int argc, char **argv)
{
    const ncc_service_options_t options = {.name = "summary", .migrations = ncc_sql_summary};
    return ncc_service_main(&options, argc, argv);
}
