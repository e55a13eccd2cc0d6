/* ncc-faq: operator and public FAQ, Japanese search, versions and approval.
 * main stays thin: the frame (ncc/service.h) does configuration, database,
 * bus and health; the service adds its handlers. */
#include "ncc/service.h"

extern const ncc_migration_t ncc_sql_faq[];

int main(int argc, char **argv)
{
    const ncc_service_options_t options = {.name = "faq", .migrations = ncc_sql_faq};
    return ncc_service_main(&options, argc, argv);
}
