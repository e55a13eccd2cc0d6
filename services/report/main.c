/* ncc-report: KPIs, live figures, batch reports in CSV and XLSX.
 * main stays thin: the frame (ncc/service.h) does configuration, database,
 * bus and health; the service adds its handlers. */
#include "ncc/service.h"

extern const ncc_migration_t ncc_sql_report[];

int main(int argc, char **argv)
{
    const ncc_service_options_t options = {.name = "report", .migrations = ncc_sql_report};
    return ncc_service_main(&options, argc, argv);
}
