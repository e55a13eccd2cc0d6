/* ncc-directory: masters: departments (所管課), phone book, categories, users and roles.
 * main stays thin: the frame (ncc/service.h) does configuration, database,
 * bus and health; the service adds its handlers. */
#include "ncc/service.h"

extern const ncc_migration_t ncc_sql_directory[];

int main(int argc, char **argv)
{
    const ncc_service_options_t options = {.name = "directory", .migrations = ncc_sql_directory};
    return ncc_service_main(&options, argc, argv);
}
