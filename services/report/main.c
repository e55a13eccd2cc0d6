/* ncc-report: KPIs, live figures, batch reports in CSV and XLSX (docs/kpi.md).
 * main stays thin: the frame (ncc/service.h) does configuration, database,
 * bus and health; report.c adds the service. `--batch` runs one report and
 * exits (batch.c). */
#include <stddef.h>
#include <stdio.h>

#include "ncc/service.h"
#include "report.h"

extern const ncc_migration_t ncc_sql_report[];

static const ncc_config_entry_t s_config[] = {
    {"NCC_REPORT_SERVICE_LEVEL_SECONDS", NCC_CONFIG_INT, "20",
     offsetof(report_settings_t, service_level_seconds), 1, 3600, true, false,
     "service level: a call answered within this many seconds of ringing counts as in time"},
    {"NCC_REPORT_MAX_DAYS", NCC_CONFIG_INT, "400", offsetof(report_settings_t, max_days), 1, 3660,
     true, false, "the longest period a report may ask, days (longer: 400)"},
    {"NCC_REPORT_LIVE_MS", NCC_CONFIG_INT, "1000", offsetof(report_settings_t, live_ms), 100, 60000,
     false, false, "the supervisors' live figures are pushed this often (metrics.live)"},
    {"NCC_REPORT_LIVE_CHECK_MS", NCC_CONFIG_INT, "200", offsetof(report_settings_t, live_check_ms),
     50, 10000, false, false, "a change of the calls reaches the live figures this soon"},
    {NULL, 0, NULL, 0, 0, 0, false, false, NULL},
};

static report_settings_t s_settings;

static void *s_create(ncc_service_t *service)
{
    return report_new(service, &s_settings);
}

static void s_destroy(void **state_p)
{
    report_t *self = *state_p;
    report_destroy(&self);
    *state_p = NULL;
}

int main(int argc, char **argv)
{
    if (report_batch_wanted(argc, argv)) {
        char err[256];
        if (ncc_config_load(s_config, &s_settings, err, sizeof err) < 0) {
            fprintf(stderr, "ncc-report: %s\n", err);
            return REPORT_EXIT_USAGE;
        }
        int rc = report_batch_main(argc, argv, &s_settings);
        ncc_config_free(s_config, &s_settings);
        return rc;
    }
    const ncc_service_options_t options = {
        .name = "report",
        .migrations = ncc_sql_report,
        .config = s_config,
        .config_target = &s_settings,
        .create = s_create,
        .destroy = s_destroy,
    };
    return ncc_service_main(&options, argc, argv);
}
