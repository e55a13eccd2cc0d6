/* service: the frame every ncc daemon runs in (see ncc/service.h).
 *
 * One thread, one zloop. The loop owns the RPC ROUTER, the event PUB, every
 * SUB and the database connection. Periodic work (database reconnects,
 * outbox flush, heartbeats, subscriber catch-up, key-rotation steps, signals)
 * runs from timers, in the manner of Redis's serverCron. The bus's CURVE keys
 * and the data keyring are read once, at start. */
#include "ncc/service.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ncc/crypto.h"
#include "ncc/health.h"
#include "ncc/metrics.h"
#include "ncc/roles.h"
#include "ncc/rotation.h"
#include "ncc/version.h"

#define S_MAX_HANDLERS      256
#define S_MAX_SUBSCRIBERS   16
#define S_MAX_TIMERS        32
#define S_MAX_CLIENTS       16
#define S_DB_RETRY_FIRST_MS 100
#define S_CRON_MS           100
#define S_ACTOR_MAX_SKEW_S  300 /* clocks must be synchronised (docs/operations.md) */

const char *const ncc_service_names[] = {
    "directory", "calls", "history", "faq", "sms", "summary", "report", NULL,
};

/* The settings every daemon shares; env names are made per service. */
typedef struct {
    char *database_url;             /* NCC_DATABASE_URL */
    char *database_owner_url;       /* NCC_DATABASE_OWNER_URL: migrations, if set */
    ncc_log_level_t log_level;      /* NCC_LOG_LEVEL */
    char *rpc_bind;                 /* NCC_<NAME>_RPC_BIND */
    char *pub_bind;                 /* NCC_<NAME>_PUB_BIND */
    char *health_listen;            /* NCC_<NAME>_HEALTH_LISTEN */
    int db_retry_max_ms;            /* NCC_DB_RETRY_MAX_MS: ceiling of the reconnect back-off */
    int flush_ms;                   /* NCC_OUTBOX_FLUSH_MS: safety-net outbox flush period */
    int catch_up_ms;                /* NCC_EVENT_CATCH_UP_MS: subscriber catch-up period */
    int outbox_retention_hours;     /* NCC_OUTBOX_RETENTION_HOURS: events kept for replay */
    int rotation_interval_s;        /* NCC_KEY_ROTATION_INTERVAL_S: period of re-encryption steps */
    int rotation_batch;             /* NCC_KEY_ROTATION_BATCH: rows per step */
    ncc_bus_curve_settings_t curve; /* NCC_BUS_CURVE_*: ncc_bus_curve_config */
} s_settings_t;

/* One registered handler, wrapped so that requests are refused with 503
 * while the database is not ready. */
typedef struct {
    ncc_service_t *service; /* back pointer */
    ncc_rpc_handler_fn fn;  /* the service's handler */
    unsigned roles;         /* ncc/roles.h mask admitted; 0 = anyone */
    void *arg;              /* its argument */
} s_handler_t;

typedef struct {
    ncc_service_timer_fn fn; /* called every interval_ms once ready */
    void *arg;
    int interval_ms;
    int id; /* zloop timer id, or -1 before ready */
} s_timer_t;

typedef struct {
    char *name; /* service name */
    ncc_rpc_client_t *client;
} s_client_t;

typedef struct {
    char *publisher; /* service name */
    bool each_copy;  /* a cursor of this copy's own (ncc_service_subscribe_each_copy) */
    ncc_subscriber_t *subscriber;
    int continue_timer; /* zloop timer continuing a catch-up cut at its slice; -1: none */
} s_subscription_t;

struct ncc_service {
    char *name;                    /* "history" */
    char *upper;                   /* "HISTORY" */
    char instance[96];             /* host:pid */
    char actor_id[64];             /* "svc:<name>": the daemon acting for itself */
    int64_t started_at_us;         /* for Pong and uptime */
    ncc_service_options_t options; /* copy of the caller's options */
    ncc_config_entry_t *table;     /* common settings table (env names owned) */
    s_settings_t settings;         /* filled from table */
    ncc_db_t *db;                  /* the service's connection */
    ncc_rpc_server_t *server;      /* ROUTER */
    ncc_publisher_t *publisher;    /* PUB + outbox */
    ncc_health_t *health;          /* /healthz /readyz /metrics */
    ncc_keyring_t *keyring;        /* NCC_DATA_KEYS, or NULL when unset */
    ncc_rotation_t *rotation;      /* re-encryption of the encrypted columns, or NULL */
    zloop_t *loop;                 /* the one loop */
    bool db_ready;                 /* connected and migrated */
    bool migrated;                 /* migrations applied once */
    int db_retry_ms;               /* current back-off */
    int64_t db_next_try_us;        /* when to try again */
    int64_t last_flush_us, last_catch_up_us, last_heartbeat_us, last_check_us, last_prune_us;
    int64_t last_rotation_us;
    s_handler_t handlers[S_MAX_HANDLERS];
    size_t handler_count;
    s_timer_t timers[S_MAX_TIMERS];
    size_t timer_count;
    s_client_t clients[S_MAX_CLIENTS];
    size_t client_count;
    s_subscription_t subscriptions[S_MAX_SUBSCRIBERS];
    size_t subscription_count;
    struct {
        ncc_service_ready_fn fn;
        void *arg;
    } ready[4]; /* on-ready hooks, in registration order, each run once */
    size_t n_ready;
};

static volatile sig_atomic_t s_stop_requested;
static volatile sig_atomic_t s_reload_requested;

static void s_on_signal(int signum)
{
    if (signum == SIGHUP)
        s_reload_requested = 1;
    else
        s_stop_requested = 1;
}

static int s_service_index(const char *name)
{
    for (int i = 0; ncc_service_names[i]; i++)
        if (strcmp(ncc_service_names[i], name) == 0)
            return i;
    return -1;
}

int ncc_service_default_endpoint(const char *name, const char *kind, char *buf, size_t len)
{
    int index = s_service_index(name);
    if (index < 0)
        return -ENOENT;
    int n;
    if (strcmp(kind, "rpc") == 0)
        n = snprintf(buf, len, "tcp://127.0.0.1:%d", 7100 + index);
    else if (strcmp(kind, "pub") == 0)
        n = snprintf(buf, len, "tcp://127.0.0.1:%d", 7200 + index);
    else if (strcmp(kind, "health") == 0)
        n = snprintf(buf, len, "127.0.0.1:%d", 9100 + index);
    else
        return -EINVAL;
    return (n < 0 || (size_t)n >= len) ? -ENOSPC : 0;
}

static char *s_upper(const char *name)
{
    char *upper = strdup(name);
    if (!upper)
        return NULL;
    for (char *p = upper; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    return upper;
}

/* The endpoint list other daemons use to reach `service` (kind "rpc"|"pub"):
 * NCC_<NAME>_<KIND> or the default. Caller frees. */
static char *s_peer_endpoints(const char *service, const char *kind)
{
    char *upper = s_upper(service);
    char *kind_upper = s_upper(kind);
    char *result = NULL;
    if (!upper || !kind_upper)
        goto out;
    char env[96];
    snprintf(env, sizeof env, "NCC_%s_%s", upper, kind_upper);
    const char *value = getenv(env);
    if (value && *value) {
        result = strdup(value);
    } else {
        char buf[128];
        if (ncc_service_default_endpoint(service, kind, buf, sizeof buf) == 0)
            result = strdup(buf);
    }
out:
    free(upper);
    free(kind_upper);
    return result;
}

/* Builds the common settings table with this service's variable names. */
static ncc_config_entry_t *s_table_new(const char *name, const char *upper)
{
    char rpc[128], pub[128], health[128];
    if (ncc_service_default_endpoint(name, "rpc", rpc, sizeof rpc) < 0) {
        /* A service outside the port table (tests, tools) binds ephemeral ports. */
        snprintf(rpc, sizeof rpc, "tcp://127.0.0.1:*");
        snprintf(pub, sizeof pub, "tcp://127.0.0.1:*");
        snprintf(health, sizeof health, "127.0.0.1:0");
    } else {
        ncc_service_default_endpoint(name, "pub", pub, sizeof pub);
        ncc_service_default_endpoint(name, "health", health, sizeof health);
    }
    const ncc_config_entry_t model[] = {
        {"NCC_DATABASE_URL", NCC_CONFIG_STRING, "postgresql://ncc@127.0.0.1:5433/ncc",
         offsetof(s_settings_t, database_url), 0, 0, false, true,
         "PostgreSQL connection (libpq URI or key=value)"},
        {"NCC_DATABASE_OWNER_URL", NCC_CONFIG_STRING, NULL,
         offsetof(s_settings_t, database_owner_url), 0, 0, false, true,
         "the schema owner's connection, used only to migrate; the daemon then runs as the "
         "NCC_DATABASE_URL role with DML only (and no UPDATE/DELETE on append-only tables)"},
        {"NCC_LOG_LEVEL", NCC_CONFIG_LOGLEVEL, "info", offsetof(s_settings_t, log_level), 0, 0,
         true, false, "debug, info, warn or error"},
        {"NCC_%s_RPC_BIND", NCC_CONFIG_STRING, rpc, offsetof(s_settings_t, rpc_bind), 0, 0, false,
         false, "where this daemon's ROUTER binds (comma-separated ZeroMQ endpoints)"},
        {"NCC_%s_PUB_BIND", NCC_CONFIG_STRING, pub, offsetof(s_settings_t, pub_bind), 0, 0, false,
         false, "where this daemon's event PUB binds"},
        {"NCC_%s_HEALTH_LISTEN", NCC_CONFIG_STRING, health, offsetof(s_settings_t, health_listen),
         0, 0, false, false, "address:port of /healthz, /readyz and /metrics"},
        {"NCC_DB_RETRY_MAX_MS", NCC_CONFIG_INT, "5000", offsetof(s_settings_t, db_retry_max_ms),
         100, 600000, true, false, "longest wait between database reconnect attempts"},
        {"NCC_OUTBOX_FLUSH_MS", NCC_CONFIG_INT, "500", offsetof(s_settings_t, flush_ms), 10, 60000,
         true, false, "period of the safety-net outbox flush"},
        {"NCC_EVENT_CATCH_UP_MS", NCC_CONFIG_INT, "2000", offsetof(s_settings_t, catch_up_ms), 100,
         600000, true, false,
         "period of the subscriber's check for a due catch-up (replay after a failure or a silent "
         "publisher)"},
        {"NCC_OUTBOX_RETENTION_HOURS", NCC_CONFIG_INT, "336",
         offsetof(s_settings_t, outbox_retention_hours), 1, 87600, true, false,
         "how long published events stay replayable (a subscriber down longer loses them)"},
        {"NCC_KEY_ROTATION_INTERVAL_S", NCC_CONFIG_INT, "60",
         offsetof(s_settings_t, rotation_interval_s), 1, 86400, true, false,
         "period of the background re-encryption of values under an older NCC_DATA_KEYS key "
         "(docs/security-crypto.md)"},
        {"NCC_KEY_ROTATION_BATCH", NCC_CONFIG_INT, "200", offsetof(s_settings_t, rotation_batch), 1,
         10000, true, false, "rows re-encrypted per period, in one transaction per column"},
    };
    size_t n_model = sizeof model / sizeof model[0];
    size_t n_curve = 0;
    while (ncc_bus_curve_config[n_curve].env)
        n_curve++;
    /* The common entries, then the bus's CURVE ones, then the terminator. */
    ncc_config_entry_t *table = calloc(n_model + n_curve + 1, sizeof *table);
    if (!table)
        return NULL;
    for (size_t i = 0; i < n_model + n_curve; i++) {
        char env[128];
        if (i < n_model) {
            table[i] = model[i];
            snprintf(env, sizeof env, model[i].env, upper);
        } else {
            table[i] = ncc_bus_curve_config[i - n_model];
            table[i].offset += offsetof(s_settings_t, curve);
            snprintf(env, sizeof env, "%s", table[i].env);
        }
        const char *default_value = table[i].default_value;
        table[i].env = strdup(env);
        table[i].default_value = default_value ? strdup(default_value) : NULL;
        if (!table[i].env || (default_value && !table[i].default_value)) {
            free((char *)table[i].env);
            free((char *)table[i].default_value);
            table[i].env = NULL; /* terminate for the cleanup below */
            goto fail;
        }
    }
    return table;
fail:
    for (size_t i = 0; table[i].env; i++) {
        free((char *)table[i].env);
        free((char *)table[i].default_value);
    }
    free(table);
    return NULL;
}

static void s_table_destroy(ncc_config_entry_t **table_p)
{
    ncc_config_entry_t *table = *table_p;
    if (!table)
        return;
    for (size_t i = 0; table[i].env; i++) {
        free((char *)table[i].env);
        free((char *)table[i].default_value);
    }
    free(table);
    *table_p = NULL;
}

/* ---- built-in handlers ---------------------------------------------------- */

static void s_on_ping(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    ncc_service_t *self = arg;
    const Ncc__Ping *ping = (const Ncc__Ping *)request->message;
    Ncc__Pong pong = NCC__PONG__INIT;
    pong.message = ping->message;
    pong.service = self->name;
    pong.instance = self->instance;
    pong.has_started_at_us = true;
    pong.started_at_us = self->started_at_us;
    ncc_reply_message(reply, &pong.base);
}

static void s_on_health(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    ncc_service_t *self = arg;
    Ncc__HealthReply health = NCC__HEALTH_REPLY__INIT;
    health.service = self->name;
    health.instance = self->instance;
    health.has_ready = health.has_database = health.has_bus = true;
    health.ready = self->db_ready;
    health.database = self->db_ready;
    health.bus = true; /* we are answering on it */
    health.version = NCC_VERSION;
    health.has_uptime_s = true;
    health.uptime_s = (ncc_bus_now_us() - self->started_at_us) / 1000000;
    if (self->db_ready) {
        int64_t depth = ncc_publisher_depth(self->publisher);
        if (depth >= 0) {
            health.has_outbox_depth = true;
            health.outbox_depth = (uint64_t)depth;
        }
    }
    ncc_reply_message(reply, &health.base);
}

/* Wraps every service handler: no database, no work (503, the caller retries). */
static void s_dispatch(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    s_handler_t *handler = arg;
    const Ncc__Envelope *envelope = request->envelope;
    if (handler->roles) {
        if (ncc_actor_key_present() && !ncc_actor_verify(envelope, S_ACTOR_MAX_SKEW_S)) {
            ncc_warn("bus.invalid_actor", "refused %s: actor proof missing or invalid",
                     envelope->type);
            ncc_reply_error(reply, 401, "invalid_actor", NULL, "the request's actor is not proven");
            return;
        }
        unsigned roles = ncc_roles_parse(envelope->actor_role ? envelope->actor_role : "");
        if (!(roles & handler->roles)) {
            ncc_reply_error(reply, 403, "forbidden", NULL, "role not allowed for %s",
                            envelope->type);
            return;
        }
    }
    if (!handler->service->db_ready) {
        ncc_reply_error(reply, 503, "service_unavailable", NULL,
                        "%s is not ready (database unreachable)", handler->service->name);
        return;
    }
    handler->fn(handler->arg, request, reply);
}

/* ---- readiness and periodic work ----------------------------------------- */

static void s_set_ready(ncc_service_t *self, bool ready, const char *reason)
{
    if (self->db_ready != ready)
        ncc_info(ready ? "service.ready" : "service.not_ready", "%s", reason ? reason : "ready");
    self->db_ready = ready;
    ncc_health_set_ready(self->health, ready, reason);
}

static void s_start_timers(ncc_service_t *self);

static int s_timer_fire(zloop_t *loop, int timer_id, void *arg)
{
    s_timer_t *timer = arg;
    timer->fn(timer->arg);
    return 0;
}

static int s_migrate(ncc_service_t *self)
{
    int rc = ncc_db_migrate_with_owner(self->db, self->settings.database_owner_url, self->name,
                                       self->options.migrations);
    if (rc < 0)
        ncc_error("db.migrate_failed", "%s", ncc_db_error(self->db));
    return rc;
}

/* Connects and migrates; on failure backs off exponentially. */
static void s_try_database(ncc_service_t *self, int64_t now)
{
    if (now < self->db_next_try_us)
        return;
    int rc = ncc_db_connect(self->db);
    if (rc == 0 && !self->migrated) {
        rc = s_migrate(self);
        if (rc == 0) {
            self->migrated = true;
            ncc_info("db.migrated", "schema %s is current", self->name);
        }
    }
    if (rc == 0) {
        self->db_retry_ms = S_DB_RETRY_FIRST_MS;
        s_set_ready(self, true, NULL);
        for (size_t i = 0; i < self->n_ready; i++)
            self->ready[i].fn(self->ready[i].arg);
        self->n_ready = 0; /* once */
        s_start_timers(self);
        return;
    }
    ncc_metrics_inc(NCC_METRIC_DB_ERRORS);
    ncc_warn("db.unavailable", "retrying in %d ms: %s", self->db_retry_ms, ncc_db_error(self->db));
    self->db_next_try_us = now + (int64_t)self->db_retry_ms * 1000;
    self->db_retry_ms *= 2;
    if (self->db_retry_ms > self->settings.db_retry_max_ms)
        self->db_retry_ms = self->settings.db_retry_max_ms;
}

/* The NCC_CONFIG_FILE values into the environment (ncc/config.h). */
static int s_load_config_file(void)
{
    char err[256];
    int rc = ncc_config_load_file(err, sizeof err);
    if (rc < 0)
        ncc_error("config.file_invalid", "%s", err);
    return rc;
}

static void s_reload(ncc_service_t *self)
{
    char err[256];
    if (s_load_config_file() < 0) {
        ncc_error("config.reload_failed",
                  "configuration file unreadable (running configuration kept)");
        return;
    }
    if (ncc_config_reload(self->table, &self->settings, err, sizeof err) < 0) {
        ncc_error("config.reload_failed", "%s (running configuration kept)", err);
        return;
    }
    if (self->options.config &&
        ncc_config_reload(self->options.config, self->options.config_target, err, sizeof err) < 0) {
        ncc_error("config.reload_failed", "%s (running configuration kept)", err);
        return;
    }
    ncc_log_init(self->name, self->settings.log_level);
    ncc_info("config.reloaded", "configuration reloaded (log level %s)",
             (const char *[]){"debug", "info", "warn", "error"}[self->settings.log_level]);
}

/* A catch-up far behind works in slices (ncc_subscriber_behind): the next slice runs from a
 * timer of its own 1 ms later, so the requests waiting meanwhile are answered in between
 * (before, a daemon 28,000 events behind answered nothing for a minute: tests/chaos). */
static int s_continue(zloop_t *loop, int timer_id, void *arg);

static void s_continue_later(zloop_t *loop, s_subscription_t *subscription)
{
    if (subscription->continue_timer < 0 && ncc_subscriber_behind(subscription->subscriber))
        subscription->continue_timer = zloop_timer(loop, 1, 1, s_continue, subscription);
}

static int s_continue(zloop_t *loop, int timer_id, void *arg)
{
    s_subscription_t *subscription = arg;
    subscription->continue_timer = -1;
    ncc_subscriber_catch_up(subscription->subscriber);
    s_continue_later(loop, subscription);
    return 0;
}

/* The cron: signals, database health, outbox, heartbeats, catch-up. */
static int s_cron(zloop_t *loop, int timer_id, void *arg)
{
    ncc_service_t *self = arg;
    if (s_stop_requested)
        return -1; /* ends zloop_start: ncc_service_run drains */
    if (s_reload_requested) {
        s_reload_requested = 0;
        s_reload(self);
    }
    int64_t now = ncc_bus_now_us();
    if (!self->db_ready) {
        s_try_database(self, now);
        return 0;
    }
    if (now - self->last_check_us >= 1000000) {
        self->last_check_us = now;
        if (!ncc_db_ready(self->db)) {
            s_set_ready(self, false, "database unreachable");
            self->db_next_try_us = 0;
            return 0;
        }
        ncc_publisher_depth(self->publisher); /* refreshes the ncc_outbox_depth gauge */
    }
    if (now - self->last_flush_us >= (int64_t)self->settings.flush_ms * 1000) {
        self->last_flush_us = now;
        if (ncc_publisher_flush(self->publisher) < 0)
            ncc_warn("outbox.flush_failed", "%s", ncc_db_error(self->db));
    }
    if (now - self->last_heartbeat_us >= 1000000) {
        self->last_heartbeat_us = now;
        ncc_publisher_heartbeat(self->publisher);
    }
    if (now - self->last_prune_us >= (int64_t)3600 * 1000000) {
        self->last_prune_us = now;
        if (ncc_publisher_prune(self->publisher,
                                (int64_t)self->settings.outbox_retention_hours * 3600) < 0)
            ncc_warn("outbox.prune_failed", "%s", ncc_db_error(self->db));
    }
    if (now - self->last_catch_up_us >= (int64_t)self->settings.catch_up_ms * 1000) {
        self->last_catch_up_us = now;
        for (size_t i = 0; i < self->subscription_count; i++) {
            ncc_subscriber_tick(self->subscriptions[i].subscriber);
            s_continue_later(self->loop, &self->subscriptions[i]);
        }
    }
    if (self->rotation &&
        now - self->last_rotation_us >= (int64_t)self->settings.rotation_interval_s * 1000000) {
        self->last_rotation_us = now;
        ncc_rotation_stats_t stats;
        if (ncc_rotation_step(self->rotation, self->settings.rotation_batch, &stats) < 0)
            ncc_warn("rotation.failed", "re-encryption step rolled back, retried later: %s",
                     ncc_db_error(self->db));
    }
    return 0;
}

static int s_on_rpc(zloop_t *loop, zsock_t *reader, void *arg)
{
    ncc_service_t *self = arg;
    ncc_rpc_server_process(self->server);
    return s_stop_requested ? -1 : 0;
}

static int s_on_event(zloop_t *loop, zsock_t *reader, void *arg)
{
    s_subscription_t *subscription = arg;
    ncc_subscriber_process(subscription->subscriber);
    s_continue_later(loop, subscription);
    return 0;
}

static void s_start_timers(ncc_service_t *self)
{
    for (size_t i = 0; i < self->timer_count; i++) {
        s_timer_t *timer = &self->timers[i];
        if (timer->id < 0)
            timer->id = zloop_timer(self->loop, (size_t)timer->interval_ms, 0, s_timer_fire, timer);
    }
}

/* ---- life cycle ------------------------------------------------------------ */

/* Makes the NCC_BUS_CURVE_* settings the bus's, before any socket exists, and
 * says at start whether the bus is encrypted. A daemon binds ROUTER and PUB,
 * so with CURVE on it must hold the server secret key. 0 or -EINVAL (logged). */
static int s_curve_setup(ncc_service_t *self)
{
    char err[256];
    ncc_bus_curve_settings_t *curve = &self->settings.curve;
    int rc = ncc_bus_curve_configure(curve, err, sizeof err);
    /* The frame needs the secret no longer: the bus holds its own copy. */
    if (curve->secret_key) {
        explicit_bzero(curve->secret_key, strlen(curve->secret_key));
        free(curve->secret_key);
        curve->secret_key = NULL;
    }
    if (rc < 0) {
        ncc_error("config.invalid", "%s", err);
        return -EINVAL;
    }
    ncc_bus_curve_status_t status;
    ncc_bus_curve_status(&status);
    if (!status.enabled) {
        ncc_info("bus.plaintext", "bus traffic is not encrypted (NCC_BUS_CURVE_* unset): keep "
                                  "the bus on loopback or a private network");
        return 0;
    }
    if (!status.serves) {
        ncc_error("config.invalid",
                  "ncc-%s binds bus sockets, so NCC_BUS_CURVE_SECRET_KEY must be the server "
                  "secret key (the one whose public key is NCC_BUS_CURVE_SERVER_KEY)",
                  self->name);
        return -EINVAL;
    }
    if (status.allowed_clients > 0)
        ncc_info("bus.curve",
                 "bus encrypted with CURVE (server key %s); %zu client key(s) "
                 "admitted besides the server keypair",
                 status.server_key, status.allowed_clients);
    else
        ncc_info("bus.curve", "bus encrypted with CURVE (server key %s); any client key admitted",
                 status.server_key);
    return 0;
}

ncc_service_t *ncc_service_new(const ncc_service_options_t *options, int argc, char **argv)
{
    ncc_service_t *self = NULL;
    char err[256];
    if (!options || !options->name)
        return NULL;

    self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->options = *options;
    self->name = strdup(options->name);
    self->upper = s_upper(options->name);
    if (!self->name || !self->upper)
        goto fail;
    self->table = s_table_new(self->name, self->upper);
    if (!self->table)
        goto fail;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            char program[64];
            snprintf(program, sizeof program, "ncc-%s", self->name);
            ncc_config_print_help(program, self->table);
            if (options->config)
                ncc_config_print_help(program, options->config);
            exit(0);
        }
    }

    ncc_log_init(self->name, NCC_LOG_INFO);
    if (s_load_config_file() < 0)
        goto fail;
    if (ncc_config_load(self->table, &self->settings, err, sizeof err) < 0 ||
        (options->config &&
         ncc_config_load(options->config, options->config_target, err, sizeof err) < 0)) {
        ncc_error("config.invalid", "%s", err);
        goto fail;
    }
    ncc_log_init(self->name, self->settings.log_level);

    char host[64] = "localhost";
    gethostname(host, sizeof host - 1);
    snprintf(self->instance, sizeof self->instance, "%s:%d", host, (int)getpid());
    snprintf(self->actor_id, sizeof self->actor_id, "svc:%s", self->name);
    int key_rc = ncc_actor_key_from_env();
    if (key_rc == -EINVAL) {
        ncc_error("config.invalid", "NCC_BUS_ACTOR_KEY must be 32 bytes in base64");
        goto fail;
    }
    if (key_rc == -ENOKEY)
        ncc_warn("bus.actor_key_missing",
                 "NCC_BUS_ACTOR_KEY is not set: actors on the bus are NOT verified");
    if (s_curve_setup(self) < 0)
        goto fail;
    const char *data_keys = getenv("NCC_DATA_KEYS");
    if (data_keys && *data_keys) {
        self->keyring = ncc_keyring_from_env(err, sizeof err);
        if (!self->keyring) {
            ncc_error("config.invalid", "data keys: %s", err);
            goto fail;
        }
    }
    self->started_at_us = ncc_bus_now_us();
    self->db_retry_ms = S_DB_RETRY_FIRST_MS;

    /* Our signal handling, not CZMQ's: SIGTERM drains, SIGHUP reloads. */
    zsys_handler_set(NULL);
    struct sigaction action = {0};
    action.sa_handler = s_on_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGHUP, &action, NULL);
    signal(SIGPIPE, SIG_IGN);

    self->db = ncc_db_new(self->settings.database_url, self->name);
    if (!self->db)
        goto fail;
    self->server = ncc_rpc_server_new(self->settings.rpc_bind, self->name);
    if (!self->server) {
        ncc_error("bus.bind_failed", "cannot bind RPC on %s", self->settings.rpc_bind);
        goto fail;
    }
    self->publisher = ncc_publisher_new(self->db, self->name, self->settings.pub_bind);
    if (!self->publisher) {
        ncc_error("bus.bind_failed", "cannot bind PUB on %s", self->settings.pub_bind);
        goto fail;
    }
    ncc_health_options_t health_options = {.service = self->name,
                                           .listen = self->settings.health_listen};
    self->health = ncc_health_new(&health_options);
    if (!self->health) {
        ncc_error("health.bind_failed", "cannot serve health on %s", self->settings.health_listen);
        goto fail;
    }
    ncc_health_set_ready(self->health, false, "starting: database not connected yet");

    if (ncc_rpc_server_on(self->server, &ncc__ping__descriptor, s_on_ping, self) < 0 ||
        ncc_rpc_server_on(self->server, &ncc__health_request__descriptor, s_on_health, self) < 0 ||
        ncc_service_on(self, &ncc__event_replay_request__descriptor, NCC_ROLE_SYSTEM,
                       ncc_publisher_on_replay, self->publisher) < 0)
        goto fail;

    self->loop = zloop_new();
    if (!self->loop)
        goto fail;
    zloop_set_nonstop(self->loop, true);
    if (zloop_reader(self->loop, ncc_rpc_server_socket(self->server), s_on_rpc, self) < 0 ||
        zloop_timer(self->loop, S_CRON_MS, 0, s_cron, self) < 0)
        goto fail;

    ncc_info("service.start", "ncc-%s %s starting: rpc %s, pub %s, health %s", self->name,
             NCC_VERSION, ncc_rpc_server_endpoint(self->server), self->settings.pub_bind,
             self->settings.health_listen);
    return self;
fail:
    ncc_service_destroy(&self);
    return NULL;
}

void ncc_service_destroy(ncc_service_t **self_p)
{
    ncc_service_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->subscription_count; i++) {
        ncc_subscriber_destroy(&self->subscriptions[i].subscriber);
        free(self->subscriptions[i].publisher);
    }
    for (size_t i = 0; i < self->client_count; i++) {
        ncc_rpc_client_destroy(&self->clients[i].client);
        free(self->clients[i].name);
    }
    zloop_destroy(&self->loop);
    ncc_health_destroy(&self->health);
    ncc_publisher_destroy(&self->publisher);
    ncc_rpc_server_destroy(&self->server);
    ncc_rotation_destroy(&self->rotation);
    ncc_keyring_destroy(&self->keyring);
    ncc_db_destroy(&self->db);
    ncc_bus_curve_shutdown();
    if (self->table) {
        ncc_config_free(self->table, &self->settings);
        s_table_destroy(&self->table);
    }
    if (self->options.config)
        ncc_config_free(self->options.config, self->options.config_target);
    free(self->name);
    free(self->upper);
    free(self);
    *self_p = NULL;
}

int ncc_service_on(ncc_service_t *self, const ProtobufCMessageDescriptor *type, unsigned roles,
                   ncc_rpc_handler_fn fn, void *arg)
{
    if (self->handler_count >= S_MAX_HANDLERS)
        return -ENOSPC;
    s_handler_t *handler = &self->handlers[self->handler_count];
    handler->service = self;
    handler->fn = fn;
    handler->arg = arg;
    handler->roles = roles;
    int rc = ncc_rpc_server_on(self->server, type, s_dispatch, handler);
    if (rc == 0)
        self->handler_count++;
    return rc;
}

static int s_subscribe(ncc_service_t *self, const char *publisher, bool each_copy,
                       const char *prefix, ncc_event_fn fn, void *arg)
{
    s_subscription_t *subscription = NULL;
    for (size_t i = 0; i < self->subscription_count; i++)
        if (strcmp(self->subscriptions[i].publisher, publisher) == 0 &&
            self->subscriptions[i].each_copy == each_copy)
            subscription = &self->subscriptions[i];
    if (!subscription) {
        if (self->subscription_count >= S_MAX_SUBSCRIBERS)
            return -ENOSPC;
        char *pub = s_peer_endpoints(publisher, "pub");
        char *rpc = s_peer_endpoints(publisher, "rpc");
        ncc_subscriber_t *subscriber =
            (pub && rpc) ? ncc_subscriber_new(self->db, publisher, pub, rpc) : NULL;
        free(pub);
        free(rpc);
        if (!subscriber)
            return -EINVAL;
        if (each_copy) {
            char host[128] = "", key[512];
            gethostname(host, sizeof host - 1);
            /* the endpoint actually bound: copies on one host differ by their port */
            const char *bound = self->server ? ncc_rpc_server_endpoint(self->server) : NULL;
            snprintf(key, sizeof key, "%s@%s:%s", publisher, host,
                     bound                     ? bound
                     : self->settings.rpc_bind ? self->settings.rpc_bind
                                               : "");
            if (ncc_subscriber_set_cursor_key(subscriber, key, publisher) < 0) {
                ncc_subscriber_destroy(&subscriber);
                return -ENOMEM;
            }
        }
        subscription = &self->subscriptions[self->subscription_count];
        subscription->publisher = strdup(publisher);
        subscription->each_copy = each_copy;
        subscription->subscriber = subscriber;
        subscription->continue_timer = -1;
        if (!subscription->publisher) {
            ncc_subscriber_destroy(&subscription->subscriber);
            return -ENOMEM;
        }
        self->subscription_count++;
        if (zloop_reader(self->loop, ncc_subscriber_socket(subscriber), s_on_event, subscription) <
            0)
            return -EIO;
    }
    return ncc_subscriber_on(subscription->subscriber, prefix, fn, arg);
}

int ncc_service_subscribe(ncc_service_t *self, const char *publisher, const char *prefix,
                          ncc_event_fn fn, void *arg)
{
    return s_subscribe(self, publisher, false, prefix, fn, arg);
}

int ncc_service_subscribe_each_copy(ncc_service_t *self, const char *publisher, const char *prefix,
                                    ncc_event_fn fn, void *arg)
{
    return s_subscribe(self, publisher, true, prefix, fn, arg);
}

int ncc_service_every(ncc_service_t *self, int interval_ms, ncc_service_timer_fn fn, void *arg)
{
    if (self->timer_count >= S_MAX_TIMERS || interval_ms <= 0)
        return -EINVAL;
    s_timer_t *timer = &self->timers[self->timer_count++];
    timer->fn = fn;
    timer->arg = arg;
    timer->interval_ms = interval_ms;
    timer->id = -1;
    if (self->db_ready)
        s_start_timers(self);
    return 0;
}

void ncc_service_on_ready(ncc_service_t *self, ncc_service_ready_fn fn, void *arg)
{
    if (!fn || self->n_ready == sizeof self->ready / sizeof self->ready[0]) {
        ncc_error("service.too_many_ready_hooks", "an on-ready hook was not registered");
        return;
    }
    self->ready[self->n_ready].fn = fn;
    self->ready[self->n_ready].arg = arg;
    self->n_ready++;
}

ncc_actor_t ncc_request_actor(const ncc_request_t *request)
{
    const Ncc__Envelope *envelope = request->envelope;
    ncc_actor_t actor = {
        .id = envelope->actor_id ? envelope->actor_id : "",
        .roles = ncc_roles_parse(envelope->actor_role ? envelope->actor_role : ""),
        .address = envelope->actor_address ? envelope->actor_address : "",
        .trace_id = envelope->trace_id ? envelope->trace_id : "",
    };
    return actor;
}

ncc_ctx_t ncc_request_ctx(const ncc_request_t *request)
{
    const Ncc__Envelope *envelope = request->envelope;
    ncc_ctx_t ctx = {.trace_id = envelope->trace_id,
                     .actor_id = envelope->actor_id,
                     .actor_role = envelope->actor_role,
                     .actor_address = envelope->actor_address};
    return ctx;
}

ncc_ctx_t ncc_service_ctx(ncc_service_t *self)
{
    ncc_ctx_t ctx = {.actor_id = self->actor_id, .actor_role = "system"};
    return ctx;
}

ncc_db_t *ncc_service_db(ncc_service_t *self)
{
    return self->db;
}

const char *ncc_service_database_url(ncc_service_t *self)
{
    return self->settings.database_url;
}

const ncc_keyring_t *ncc_service_keyring(ncc_service_t *self)
{
    return self->keyring;
}

int ncc_service_encrypted_column(ncc_service_t *self, const char *table, const char *id_column,
                                 const char *column, const char *context)
{
    if (!self->keyring)
        return 0; /* nothing can be encrypted, nothing to rotate */
    if (!self->rotation) {
        self->rotation = ncc_rotation_new(self->db, self->keyring);
        if (!self->rotation)
            return -ENOMEM;
    }
    return ncc_rotation_add(self->rotation, table, id_column, column, context);
}

ncc_publisher_t *ncc_service_publisher(ncc_service_t *self)
{
    return self->publisher;
}

const char *ncc_service_name(ncc_service_t *self)
{
    return self->name;
}

ncc_rpc_client_t *ncc_service_client(ncc_service_t *self, const char *service)
{
    for (size_t i = 0; i < self->client_count; i++)
        if (strcmp(self->clients[i].name, service) == 0)
            return self->clients[i].client;
    if (self->client_count >= S_MAX_CLIENTS || s_service_index(service) < 0)
        return NULL;
    char *endpoints = s_peer_endpoints(service, "rpc");
    ncc_rpc_client_t *client = endpoints ? ncc_rpc_client_new(endpoints) : NULL;
    free(endpoints);
    char *name = strdup(service);
    if (!client || !name) {
        ncc_rpc_client_destroy(&client);
        free(name);
        return NULL;
    }
    self->clients[self->client_count].name = name;
    self->clients[self->client_count].client = client;
    self->client_count++;
    return client;
}

int ncc_service_run(ncc_service_t *self)
{
    s_try_database(self, ncc_bus_now_us());
    /* zloop_start returns 0 when a signal interrupts its poll (SIGHUP too):
     * go on until a handler ends it (-1) after SIGTERM. */
    while (zloop_start(self->loop) == 0 && !s_stop_requested)
        ;

    /* Drain: answer what already arrived, publish what was committed. */
    ncc_info("service.stopping", "draining");
    ncc_rpc_server_process(self->server);
    /* Close the request socket now, not with the rest a second later: while it stays open
     * the callers' DEALERs keep sending to this copy, nobody reads, and each such request
     * times out (3 s, a 503) instead of going to another copy (tests/chaos/copies.sh). */
    zloop_reader_end(self->loop, ncc_rpc_server_socket(self->server));
    ncc_rpc_server_destroy(&self->server);
    if (self->db_ready && ncc_publisher_flush(self->publisher) < 0)
        ncc_warn("outbox.flush_failed", "at shutdown: %s", ncc_db_error(self->db));
    ncc_info("service.stop", "stopped cleanly");
    return 0;
}

int ncc_service_main(const ncc_service_options_t *options, int argc, char **argv)
{
    ncc_service_t *service = ncc_service_new(options, argc, argv);
    if (!service)
        return 1;
    void *state = NULL;
    if (options->create) {
        state = options->create(service);
        if (!state) {
            ncc_error("service.create_failed", "could not set up ncc-%s", options->name);
            ncc_service_destroy(&service);
            return 1;
        }
    }
    int rc = ncc_service_run(service);
    if (options->destroy)
        options->destroy(&state);
    ncc_service_destroy(&service);
    return rc;
}

void ncc_reply_db_error(ncc_db_t *db, ncc_reply_t *reply, const char *what)
{
    const char *state = ncc_db_sqlstate(db);
    ncc_error("db.error", "%s: %s (SQLSTATE %s)", what, ncc_db_error(db), state);
    ncc_db_rollback(db);
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0)
        ncc_reply_error(reply, 503, "service_unavailable", NULL, "the database is unreachable");
    else
        ncc_reply_error(reply, 500, "internal", NULL, "internal error");
}
