/* service: the frame every ncc daemon runs in, so a service only adds its own
 * logic. ncc_service_new reads the common configuration, connects to
 * PostgreSQL (retrying with back-off, not ready meanwhile), applies the
 * service's migrations, binds the RPC ROUTER and the event PUB, starts the
 * health server, and answers ncc.Ping, ncc.HealthRequest and
 * ncc.EventReplayRequest. ncc_service_run owns one zloop: SIGTERM drains and
 * returns 0, SIGHUP reloads the configuration.
 *
 * Settings (NAME is the service name in capitals, defaults in
 * docs/configuration.md): NCC_DATABASE_URL, NCC_LOG_LEVEL,
 * NCC_<NAME>_RPC_BIND, NCC_<NAME>_PUB_BIND, NCC_<NAME>_HEALTH_LISTEN, and for
 * each service it talks to NCC_<OTHER>_RPC and NCC_<OTHER>_PUB; the bus's
 * NCC_BUS_CURVE_* keys (ncc/bus.h) and the data keys (NCC_DATA_KEYS,
 * ncc/crypto.h) with NCC_KEY_ROTATION_INTERVAL_S and NCC_KEY_ROTATION_BATCH. */
#ifndef NCC_SERVICE_H
#define NCC_SERVICE_H

#include "ncc/bus.h"
#include "ncc/config.h"
#include "ncc/crypto.h"
#include "ncc/db.h"
#include "ncc/log.h"

typedef struct ncc_service ncc_service_t;

typedef struct {
    const char *name;                  /* "history": schema, log and metric name */
    const ncc_migration_t *migrations; /* ncc_sql_<name>, NULL-terminated */
    const ncc_config_entry_t *config;  /* the service's own settings, or NULL */
    void *config_target;               /* filled from `config` */
    /* The service's own object: made after the frame (handlers registered
     * here), destroyed before it. Either may be NULL. */
    void *(*create)(ncc_service_t *service);
    void (*destroy)(void **state_p);
} ncc_service_options_t;

/* The whole life of a daemon: new, create, run, destroy. Returns the exit code. */
int ncc_service_main(const ncc_service_options_t *options, int argc, char **argv);

/* The services of ncc, in port order (index i listens on 7100+i, 7200+i, 9100+i). */
extern const char *const ncc_service_names[];

/* Default endpoints for service `name`, written into buf: kind is "rpc",
 * "pub" or "health". -ENOENT for an unknown service. */
int ncc_service_default_endpoint(const char *name, const char *kind, char *buf, size_t len);

/* Reads settings (argv: --help prints them), logs start-up, binds sockets and
 * the health port. NULL (after logging why) on bad configuration or a port in
 * use; the database may still be down: the loop keeps retrying. */
ncc_service_t *ncc_service_new(const ncc_service_options_t *options, int argc, char **argv);
void ncc_service_destroy(ncc_service_t **self_p);

/* Registers an RPC handler (before ncc_service_run) for actors holding one of
 * `roles` (ncc/roles.h mask). When NCC_BUS_ACTOR_KEY is set, the request must
 * carry a valid actor proof (ncc/crypto.h) whose roles intersect `roles`:
 * otherwise it is refused with 401 "invalid_actor" or 403 "forbidden" before
 * fn runs. roles == 0 admits any caller (only for messages that reveal and
 * change nothing). While the database is down, requests get 503. 0 or -EEXIST. */
int ncc_service_on(ncc_service_t *self, const ProtobufCMessageDescriptor *type, unsigned roles,
                   ncc_rpc_handler_fn fn, void *arg);

/* The actor of a request as the envelope states it (verified by the frame
 * when a key is set). Strings borrowed from the envelope; "" when absent. */
typedef struct {
    const char *id;      /* user id, or "svc:<name>" for a daemon */
    unsigned roles;      /* ncc/roles.h mask parsed from actor_role */
    const char *address; /* the user's address as the gateway saw it */
    const char *trace_id;
} ncc_actor_t;
ncc_actor_t ncc_request_actor(const ncc_request_t *request);

/* The context to pass to ncc_rpc_call / ncc_outbox_add when acting for the
 * same actor (e.g. a service calling another on the user's behalf). */
ncc_ctx_t ncc_request_ctx(const ncc_request_t *request);

/* The context of the daemon itself (actor "svc:<name>", role "system"). */
ncc_ctx_t ncc_service_ctx(ncc_service_t *self);

/* Subscribes to `publisher`'s events whose type starts with `prefix`. */
int ncc_service_subscribe(ncc_service_t *self, const char *publisher, const char *prefix,
                          ncc_event_fn fn, void *arg);

/* As ncc_service_subscribe, but every copy of this service applies every event (a cursor
 * per copy, "<publisher>@<host>:<rpc bind>"; ncc_subscriber_set_cursor_key): for handlers
 * that keep another service's data in memory (the masters cache, the record form). Such
 * handlers must accept an event they have already seen. */
int ncc_service_subscribe_each_copy(ncc_service_t *self, const char *publisher, const char *prefix,
                                    ncc_event_fn fn, void *arg);

/* Runs fn(arg) every interval_ms on the loop (after the database is ready). */
typedef void (*ncc_service_timer_fn)(void *arg);
int ncc_service_every(ncc_service_t *self, int interval_ms, ncc_service_timer_fn fn, void *arg);

/* Called on the loop once the database is connected and migrated; up to four
 * hooks, run in the order registered. */
typedef void (*ncc_service_ready_fn)(void *arg);
void ncc_service_on_ready(ncc_service_t *self, ncc_service_ready_fn fn, void *arg);

/* Borrowed handles, valid for the life of the service, loop thread only. */
ncc_db_t *ncc_service_db(ncc_service_t *self);
/* NCC_DATABASE_URL as configured (borrowed): for a thread of the service's
 * own that needs a connection of its own (ncc_db_new(url, name)). */
const char *ncc_service_database_url(ncc_service_t *self);
ncc_publisher_t *ncc_service_publisher(ncc_service_t *self);

/* Answers a handler whose database work failed: logs `what` with the error and its
 * SQLSTATE (db.error), rolls back, and answers 503 service_unavailable when the database
 * is unreachable (SQLSTATE class 08, 57P), else 500 internal. */
void ncc_reply_db_error(ncc_db_t *db, ncc_reply_t *reply, const char *what);
const char *ncc_service_name(ncc_service_t *self);

/* The data keyring (ncc/crypto.h), loaded once at start from NCC_DATA_KEYS
 * and NCC_BLIND_INDEX_KEY (a malformed one stops the daemon); NULL when
 * NCC_DATA_KEYS is unset. Borrowed, valid for the life of the service. */
const ncc_keyring_t *ncc_service_keyring(ncc_service_t *self);

/* Registers an encrypted column (before ncc_service_run; strings copied) for
 * the background re-encryption after a key rotation (ncc/rotation.h,
 * docs/security-crypto.md): every NCC_KEY_ROTATION_INTERVAL_S once the
 * database is ready, the frame re-encrypts at most NCC_KEY_ROTATION_BATCH
 * values not under the current key. `table` (unqualified, in the service's
 * schema), `id_column` (its primary key) and `column` are plain identifiers;
 * `context` is the one the values are encrypted with. Without a keyring
 * nothing is registered (and 0 returned). 0, -EINVAL, -EEXIST, -ENOMEM. */
int ncc_service_encrypted_column(ncc_service_t *self, const char *table, const char *id_column,
                                 const char *column, const char *context);

/* A client to another service (made on first use, kept). NULL for an unknown name. */
ncc_rpc_client_t *ncc_service_client(ncc_service_t *self, const char *service);

/* Blocks until SIGTERM/SIGINT. Returns the process exit code (0 after a clean drain). */
int ncc_service_run(ncc_service_t *self);

#endif
