/* settings: the gateway's configuration, one declarative table of environment
 * variables (ncc/config.h) plus the values derived from it (the HTTPS listener,
 * the RPC endpoints of every service). docs/gateway.md lists every variable. */
#ifndef GW_SETTINGS_H
#define GW_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>

#include "cidr.h"
#include "ncc/config.h"
#include "ncc/log.h"

/* Services the gateway can reach (ncc_service_names holds fewer). */
#define GW_MAX_SERVICES 16

typedef struct {
    char *https_listen;        /* NCC_HTTPS_LISTEN: civetweb listening_ports, "s" = TLS; or NULL */
    int https_port;            /* NCC_HTTPS_PORT: 127.0.0.1:<port>s when https_listen is unset */
    char *http_listen;         /* NCC_HTTP_LISTEN: plain HTTP (behind a TLS edge), or NULL */
    int threads;               /* NCC_GATEWAY_THREADS: civetweb workers per listener */
    int max_body_bytes;        /* NCC_MAX_BODY_BYTES: larger request bodies get 413 */
    int bus_timeout_ms;        /* NCC_BUS_TIMEOUT_MS: how long one RPC may take */
    int health_timeout_ms;     /* NCC_GATEWAY_HEALTH_TIMEOUT_MS: per service in /api/v1/health */
    int keep_alive_ms;         /* NCC_GATEWAY_KEEP_ALIVE_MS: idle time of a kept-alive connection */
    int request_timeout_ms;    /* NCC_GATEWAY_REQUEST_TIMEOUT_MS: slowest request read/write */
    int hsts_max_age;          /* NCC_HSTS_MAX_AGE: Strict-Transport-Security max-age (s) */
    char *tls_cert;            /* NCC_TLS_CERT: PEM with key and certificate */
    char *web_root;            /* NCC_WEB_ROOT: static files */
    char *health_listen;       /* NCC_GATEWAY_HEALTH_LISTEN: /healthz /readyz /metrics */
    ncc_log_level_t log_level; /* NCC_LOG_LEVEL */
    char *rpc[GW_MAX_SERVICES]; /* NCC_<SERVICE>_RPC, index as ncc_service_names */
    char *pub[GW_MAX_SERVICES]; /* NCC_<SERVICE>_PUB: their events (the push stream) */
    char *database_url;         /* NCC_DATABASE_URL: sessions (schema auth) */
    char *database_owner_url;   /* NCC_DATABASE_OWNER_URL: migrations, when set */
    int db_retry_max_ms;        /* NCC_DB_RETRY_MAX_MS: ceiling of the reconnect back-off */
    int session_idle_minutes;   /* NCC_SESSION_IDLE_MINUTES */
    int session_idle_seconds;   /* NCC_SESSION_IDLE_SECONDS: wins when > 0 */
    int session_max_hours;      /* NCC_SESSION_MAX_HOURS */
    int session_max_seconds;    /* NCC_SESSION_MAX_SECONDS: wins when > 0 */
    char *staff_allow_cidrs;    /* NCC_STAFF_ALLOW_CIDRS: who may reach the staff API */
    char *trusted_proxies;      /* NCC_TRUSTED_PROXIES: peers whose X-Forwarded-For counts */
    char *pbx_webhook_secret;   /* NCC_PBX_WEBHOOK_SECRET: signs the PBX's requests (secret) */
    int push_keepalive_ms;      /* NCC_PUSH_KEEPALIVE_MS: quiet push streams get a comment */
} gw_settings_values_t;

typedef struct {
    gw_settings_values_t values;     /* filled from table */
    ncc_config_entry_t *table;       /* owned: names of the per-service entries are built */
    size_t service_count;            /* entries of ncc_service_names used in values.rpc */
    char https_effective[160];       /* the HTTPS listening_ports actually used */
    gw_cidr_list_t *staff_allow;     /* parsed staff_allow_cidrs (not reloaded) */
    gw_cidr_list_t *trusted_proxies; /* parsed trusted_proxies (not reloaded) */
} gw_settings_t;

/* Reads NCC_CONFIG_FILE (if set) and the environment into *self (zeroed by
 * the caller). 0; 1 when argv asked for --help (printed, nothing loaded);
 * -EINVAL with a sentence in err; -ENOMEM. Always call gw_settings_free. */
int gw_settings_load(gw_settings_t *self, int argc, char **argv, char *err, size_t errlen);

/* SIGHUP: re-reads NCC_CONFIG_FILE and the environment; only the entries
 * marked reloadable change (log level, limits, timeouts). On a bad value the
 * running settings stay as they were and -EINVAL is returned with err set. */
int gw_settings_reload(gw_settings_t *self, char *err, size_t errlen);

void gw_settings_free(gw_settings_t *self);

/* The session timeouts in seconds: NCC_SESSION_IDLE_SECONDS when set, else
 * the minutes; NCC_SESSION_MAX_SECONDS when set, else the hours. */
int gw_settings_idle_s(const gw_settings_values_t *values);
int gw_settings_max_s(const gw_settings_values_t *values);

/* The settings as one loggable line (secrets hidden). Caller frees. */
char *gw_settings_describe(const gw_settings_t *self);

#endif
