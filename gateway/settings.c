/* settings: the gateway's configuration table (see settings.h). The table is
 * data, in the manner of Redis's config.c; only the per-service RPC entries
 * are built at start, because their names come from ncc_service_names. */
#include "settings.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ncc/service.h"

#define S_FIELD(name) offsetof(gw_settings_values_t, name)

/* The fixed part of the table. */
static const ncc_config_entry_t s_fixed[] = {
    {"NCC_HTTPS_LISTEN", NCC_CONFIG_STRING, NULL, S_FIELD(https_listen), 0, 0, false, false,
     "HTTPS listener in civetweb form (\"127.0.0.1:8443s\"; several comma-separated); "
     "default 127.0.0.1:<NCC_HTTPS_PORT>s"},
    {"NCC_HTTPS_PORT", NCC_CONFIG_INT, "8443", S_FIELD(https_port), 1, 65535, false, false,
     "HTTPS port on 127.0.0.1, used when NCC_HTTPS_LISTEN is unset"},
    {"NCC_HTTP_LISTEN", NCC_CONFIG_STRING, NULL, S_FIELD(http_listen), 0, 0, false, false,
     "plain HTTP listener serving the same API and pages, for a TLS edge (nginx) in front; "
     "keep it on loopback or a private network; unset = none"},
    {"NCC_GATEWAY_THREADS", NCC_CONFIG_INT, "64", S_FIELD(threads), 2, 1024, false, false,
     "worker threads per listener (one per open connection; each open push stream holds one)"},
    {"NCC_MAX_BODY_BYTES", NCC_CONFIG_INT, "1048576", S_FIELD(max_body_bytes), 1024,
     64 * 1024 * 1024, true, false, "largest request body accepted (larger: 413)"},
    {"NCC_BUS_TIMEOUT_MS", NCC_CONFIG_INT, "3000", S_FIELD(bus_timeout_ms), 10, 600000, true, false,
     "how long the gateway waits for a service's reply (then 503)"},
    {"NCC_GATEWAY_HEALTH_TIMEOUT_MS", NCC_CONFIG_INT, "1000", S_FIELD(health_timeout_ms), 10, 60000,
     true, false, "how long GET /api/v1/health waits for the services (asked at once)"},
    {"NCC_GATEWAY_KEEP_ALIVE_MS", NCC_CONFIG_INT, "5000", S_FIELD(keep_alive_ms), 0, 600000, false,
     false, "how long an idle kept-alive connection holds its worker thread"},
    {"NCC_GATEWAY_REQUEST_TIMEOUT_MS", NCC_CONFIG_INT, "30000", S_FIELD(request_timeout_ms), 1000,
     600000, false, false, "longest time to read a request or write a response"},
    {"NCC_HSTS_MAX_AGE", NCC_CONFIG_INT, "31536000", S_FIELD(hsts_max_age), 0, 2147483647, false,
     false, "Strict-Transport-Security max-age on TLS responses (seconds)"},
    {"NCC_TLS_CERT", NCC_CONFIG_STRING, "var/tls/gateway.pem", S_FIELD(tls_cert), 0, 0, false,
     false, "PEM file with the private key and certificate (self-signed one made when missing)"},
    {"NCC_WEB_ROOT", NCC_CONFIG_STRING, "gateway/web", S_FIELD(web_root), 0, 0, false, false,
     "folder of the browser client's static files"},
    {"NCC_GATEWAY_HEALTH_LISTEN", NCC_CONFIG_STRING, "127.0.0.1:9190", S_FIELD(health_listen), 0, 0,
     false, false, "address:port of the gateway's own /healthz, /readyz and /metrics"},
    {"NCC_LOG_LEVEL", NCC_CONFIG_LOGLEVEL, "info", S_FIELD(log_level), 0, 0, true, false,
     "debug, info, warn or error"},
    {"NCC_DATABASE_URL", NCC_CONFIG_STRING, "postgresql://ncc@127.0.0.1:5433/ncc",
     S_FIELD(database_url), 0, 0, false, true,
     "PostgreSQL connection holding the sessions (schema auth)"},
    {"NCC_DATABASE_OWNER_URL", NCC_CONFIG_STRING, NULL, S_FIELD(database_owner_url), 0, 0, false,
     true, "the schema owner's connection, used only to migrate schema auth"},
    {"NCC_DB_RETRY_MAX_MS", NCC_CONFIG_INT, "5000", S_FIELD(db_retry_max_ms), 100, 600000, false,
     false, "longest wait between database connection attempts at start"},
    {"NCC_SESSION_IDLE_MINUTES", NCC_CONFIG_INT, "30", S_FIELD(session_idle_minutes), 1, 1440, true,
     false, "a session unused this long ends (idle timeout)"},
    {"NCC_SESSION_IDLE_SECONDS", NCC_CONFIG_INT, "0", S_FIELD(session_idle_seconds), 0, 86400, true,
     false, "the idle timeout in seconds; 0 = NCC_SESSION_IDLE_MINUTES"},
    {"NCC_SESSION_MAX_HOURS", NCC_CONFIG_INT, "12", S_FIELD(session_max_hours), 1, 720, true, false,
     "a session ends this long after sign-in, used or not (absolute timeout)"},
    {"NCC_SESSION_MAX_SECONDS", NCC_CONFIG_INT, "0", S_FIELD(session_max_seconds), 0, 2592000, true,
     false, "the absolute timeout in seconds; 0 = NCC_SESSION_MAX_HOURS"},
    {"NCC_STAFF_ALLOW_CIDRS", NCC_CONFIG_STRING, "127.0.0.0/8,::1/128", S_FIELD(staff_allow_cidrs),
     0, 0, false, false,
     "client networks (IPv4/IPv6 CIDR, comma-separated) allowed to reach the staff API "
     "(every /api/v1 route but the public ones)"},
    {"NCC_TRUSTED_PROXIES", NCC_CONFIG_STRING, NULL, S_FIELD(trusted_proxies), 0, 0, false, false,
     "peers (CIDR list) whose last X-Forwarded-For entry is taken as the client address "
     "(the TLS edge); unset = none"},
    {"NCC_PUSH_KEEPALIVE_MS", NCC_CONFIG_INT, "15000", S_FIELD(push_keepalive_ms), 100, 600000,
     false, false,
     "push stream (GET /api/v1/stream): a comment this often on a quiet stream, and the "
     "session looked at"},
    {"NCC_PBX_WEBHOOK_SECRET", NCC_CONFIG_STRING, NULL, S_FIELD(pbx_webhook_secret), 0, 0, false,
     true,
     "the secret that signs the PBX's requests (X-NCC-Signature, API.md); several, "
     "comma-separated, while it rotates; unset = the PBX routes answer 503"},
};

#define S_FIXED_COUNT (sizeof s_fixed / sizeof s_fixed[0])

static void s_free_table(ncc_config_entry_t **table_p)
{
    ncc_config_entry_t *table = *table_p;
    if (!table)
        return;
    for (size_t i = S_FIXED_COUNT; table[i].env; i++) {
        free((char *)table[i].env);
        free((char *)table[i].default_value);
    }
    free(table);
    *table_p = NULL;
}

/* The fixed entries followed by NCC_<SERVICE>_RPC and NCC_<SERVICE>_PUB for
 * each service. */
static ncc_config_entry_t *s_build_table(size_t *ret_services)
{
    size_t services = 0;
    while (ncc_service_names[services] && services < GW_MAX_SERVICES)
        services++;
    ncc_config_entry_t *table = calloc(S_FIXED_COUNT + 2 * services + 1, sizeof *table);
    if (!table)
        return NULL;
    memcpy(table, s_fixed, sizeof s_fixed);
    for (size_t i = 0; i < services; i++) {
        const char *name = ncc_service_names[i];
        char env[96], endpoint[128];
        int n = snprintf(env, sizeof env, "NCC_%s_RPC", name);
        if (n < 0 || (size_t)n >= sizeof env ||
            ncc_service_default_endpoint(name, "rpc", endpoint, sizeof endpoint) < 0)
            goto fail;
        for (char *p = env; *p; p++)
            *p = (char)toupper((unsigned char)*p);
        ncc_config_entry_t *entry = &table[S_FIXED_COUNT + i];
        entry->env = strdup(env);
        entry->default_value = strdup(endpoint);
        if (!entry->env || !entry->default_value)
            goto fail;
        entry->type = NCC_CONFIG_STRING;
        entry->offset = S_FIELD(rpc) + i * sizeof(char *);
        entry->help = "the service's RPC endpoints (comma-separated ZeroMQ endpoints)";

        n = snprintf(env, sizeof env, "NCC_%s_PUB", name);
        if (n < 0 || (size_t)n >= sizeof env ||
            ncc_service_default_endpoint(name, "pub", endpoint, sizeof endpoint) < 0)
            goto fail;
        for (char *p = env; *p; p++)
            *p = (char)toupper((unsigned char)*p);
        entry = &table[S_FIXED_COUNT + services + i];
        entry->env = strdup(env);
        entry->default_value = strdup(endpoint);
        if (!entry->env || !entry->default_value)
            goto fail;
        entry->type = NCC_CONFIG_STRING;
        entry->offset = S_FIELD(pub) + i * sizeof(char *);
        entry->help = "the service's event endpoints (PUB; the push stream listens to them)";
    }
    *ret_services = services;
    return table;
fail:
    s_free_table(&table);
    return NULL;
}

/* True when one item of a civetweb listening_ports list ends in "s" (TLS). */
static bool s_has_tls_port(const char *ports)
{
    const char *item = ports;
    while (*item) {
        size_t len = strcspn(item, ",");
        size_t end = len;
        while (end > 0 && item[end - 1] == ' ')
            end--;
        if (end > 0 && item[end - 1] == 's')
            return true;
        item += len;
        if (*item == ',')
            item++;
    }
    return false;
}

static int s_derive(gw_settings_t *self, char *err, size_t errlen)
{
    const gw_settings_values_t *v = &self->values;
    int n;
    if (v->https_listen)
        n = snprintf(self->https_effective, sizeof self->https_effective, "%s", v->https_listen);
    else
        n = snprintf(self->https_effective, sizeof self->https_effective, "127.0.0.1:%ds",
                     v->https_port);
    if (n < 0 || (size_t)n >= sizeof self->https_effective) {
        snprintf(err, errlen, "NCC_HTTPS_LISTEN is too long");
        return -EINVAL;
    }
    if (!s_has_tls_port(self->https_effective)) {
        snprintf(err, errlen,
                 "NCC_HTTPS_LISTEN \"%s\" has no TLS port (civetweb form: \"127.0.0.1:8443s\")",
                 self->https_effective);
        return -EINVAL;
    }
    char why[200];
    gw_cidr_list_destroy(&self->staff_allow);
    gw_cidr_list_destroy(&self->trusted_proxies);
    self->staff_allow = gw_cidr_list_new(v->staff_allow_cidrs, why, sizeof why);
    if (!self->staff_allow) {
        snprintf(err, errlen, "NCC_STAFF_ALLOW_CIDRS: %s", why);
        return -EINVAL;
    }
    self->trusted_proxies = gw_cidr_list_new(v->trusted_proxies, why, sizeof why);
    if (!self->trusted_proxies) {
        snprintf(err, errlen, "NCC_TRUSTED_PROXIES: %s", why);
        return -EINVAL;
    }
    return 0;
}

int gw_settings_load(gw_settings_t *self, int argc, char **argv, char *err, size_t errlen)
{
    self->table = s_build_table(&self->service_count);
    if (!self->table) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            ncc_config_print_help("ncc-gateway", self->table);
            return 1;
        }
    }
    int rc = ncc_config_load_file(err, errlen);
    if (rc < 0)
        return rc;
    rc = ncc_config_load(self->table, &self->values, err, errlen);
    if (rc < 0)
        return rc;
    return s_derive(self, err, errlen);
}

int gw_settings_reload(gw_settings_t *self, char *err, size_t errlen)
{
    int rc = ncc_config_load_file(err, errlen);
    if (rc < 0)
        return rc;
    return ncc_config_reload(self->table, &self->values, err, errlen);
}

void gw_settings_free(gw_settings_t *self)
{
    if (!self)
        return;
    if (self->table)
        ncc_config_free(self->table, &self->values);
    s_free_table(&self->table);
    gw_cidr_list_destroy(&self->staff_allow);
    gw_cidr_list_destroy(&self->trusted_proxies);
}

int gw_settings_idle_s(const gw_settings_values_t *values)
{
    return values->session_idle_seconds > 0 ? values->session_idle_seconds
                                            : values->session_idle_minutes * 60;
}

int gw_settings_max_s(const gw_settings_values_t *values)
{
    return values->session_max_seconds > 0 ? values->session_max_seconds
                                           : values->session_max_hours * 3600;
}

char *gw_settings_describe(const gw_settings_t *self)
{
    return ncc_config_describe(self->table, &self->values);
}
