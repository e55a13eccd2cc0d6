/* ncc-sms: SMS to residents, templates, providers, delivery receipts, surveys.
 * main stays thin: the frame (ncc/service.h) does configuration, database,
 * bus and health; the service adds its handlers. */
#include "ncc/service.h"

extern const ncc_migration_t ncc_sql_sms[];

int main(int argc, char **argv)
{
    const ncc_service_options_t options = {.name = "sms", .migrations = ncc_sql_sms};
    return ncc_service_main(&options, argc, argv);
}
