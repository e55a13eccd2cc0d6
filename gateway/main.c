/* ncc-gateway: the HTTPS front of ncc. Settings, gateway, wait, tear down. */
#include "gateway.h"
#include "ncc/log.h"

int main(int argc, char **argv)
{
    gw_settings_t settings = {0};
    char err[512];

    ncc_log_init("gateway", NCC_LOG_INFO);
    int rc = gw_settings_load(&settings, argc, argv, err, sizeof err);
    if (rc != 0) {
        if (rc < 0)
            ncc_error("config.invalid", "%s", err);
        gw_settings_free(&settings);
        return rc > 0 ? 0 : 1;
    }
    ncc_log_init("gateway", settings.values.log_level);

    gw_t *gateway = gw_new(&settings);
    int status = gateway ? gw_run(gateway) : 1;
    gw_destroy(&gateway);
    ncc_info("gateway.stopped", "exit %d", status);
    gw_settings_free(&settings);
    return status;
}
