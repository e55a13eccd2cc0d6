/* ncc-history: interaction records (応対履歴): search, export, retention.
 * main stays thin: the frame (ncc/service.h) does configuration, database,
 * bus and health; the service adds its handlers. */
#include "ncc/service.h"

extern const ncc_migration_t ncc_sql_history[];

int main(int argc, char **argv)
{
    const ncc_service_options_t options = {.name = "history", .migrations = ncc_sql_history};
    return ncc_service_main(&options, argc, argv);
}
