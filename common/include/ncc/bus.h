/* bus: requests and events between daemons over ZeroMQ, every message a
 * protobuf inside an Ncc__Envelope (proto/ncc.proto), framed as
 * [type frame][packed envelope frame]. See docs/bus.md.
 *
 *   RPC:    callers hold a DEALER connected to every copy of a service; the
 *           service binds a ROUTER. Each request carries a request id; the
 *           caller waits at most its timeout and then gets -ETIMEDOUT, never
 *           a hang. A late reply is recognised by its id and dropped.
 *   Events: a service writes an event into its own outbox table in the same
 *           transaction as the change (ncc_outbox_add); the publisher gives
 *           committed rows a gapless per-publisher sequence number and
 *           publishes them on PUB. Subscribers SUB by type prefix, keep a
 *           cursor per publisher in their own schema, and ask the publisher
 *           to replay (ncc.EventReplayRequest over RPC) when they start or see
 *           a gap, so no event is lost; handlers run once per event.
 *
 * Between machines the sockets can be encrypted with ZeroMQ CURVE keys from
 * configuration (ncc_bus_curve_configure); without keys, plain TCP.
 *
 * Sockets belong to the thread that made them. Library code does not log the
 * errors it returns. */
#ifndef NCC_BUS_H
#define NCC_BUS_H

#include <stdbool.h>
#include <stdint.h>
#include <czmq.h>
#include <protobuf-c/protobuf-c.h>
#include "ncc.pb-c.h"
#include "ncc/config.h"
#include "ncc/db.h"

/* Largest frame any bound socket accepts (ZMQ_MAXMSGSIZE). */
#define NCC_BUS_MAX_MESSAGE (4 * 1024 * 1024)

/* Who asks, and the trace the request belongs to. All borrowed; any may be NULL
 * (as may the ctx pointer). A NULL trace id takes the trace of the request
 * this thread is handling (ncc_log_trace), else a fresh one. */
typedef struct {
    const char *trace_id;
    const char *actor_id;
    const char *actor_role;    /* comma-separated roles, e.g. "operator,supervisor" */
    const char *actor_address; /* the user's address, for the audit log */
} ncc_ctx_t;

/* Fills buf (>= 33 bytes) with 32 random hex characters (request / trace ids). */
void ncc_bus_random_id(char *buf);

/* Microseconds since the Unix epoch. */
int64_t ncc_bus_now_us(void);

/* ---- CURVE encryption (docs/bus.md "Encryption between machines") ------- */

/* The bus's CURVE keys as text: Z85 (40 characters, zmq_curve_keypair), as
 * read from the environment. One server keypair serves the whole deployment:
 * servers (ROUTER, PUB) use `secret_key` as their CURVE secret; clients
 * (DEALER, SUB) connect with curve_serverkey = `server_key` and a keypair of
 * their own (`secret_key`/`public_key`, or one generated per process when
 * neither is set). A daemon holding the server secret key is a client with
 * that same keypair. Strings owned by the struct when filled by
 * ncc_config_load (ncc_config_free frees them), else borrowed. */
typedef struct {
    char *secret_key;      /* NCC_BUS_CURVE_SECRET_KEY: this process's secret key */
    char *public_key;      /* NCC_BUS_CURVE_PUBLIC_KEY: its public key (derived when unset) */
    char *server_key;      /* NCC_BUS_CURVE_SERVER_KEY: the public key of every server */
    char *allowed_clients; /* NCC_BUS_CURVE_ALLOWED_CLIENTS: comma list of client public keys */
} ncc_bus_curve_settings_t;

/* Their settings table (ncc/config.h; offsets into ncc_bus_curve_settings_t),
 * ending with an entry whose env is NULL. The service frame appends it to its
 * own table, so --help and docs/configuration.md list these variables. */
extern const ncc_config_entry_t ncc_bus_curve_config[];

/* Checks `settings` and makes them the CURVE configuration of every bus
 * socket this process makes afterwards (sockets already made keep theirs).
 * NULL, or nothing set: plaintext TCP as before. With
 * `allowed_clients` and the server secret key, starts a ZAP handler (CZMQ
 * zauth) that admits only those client keys plus the server keypair's own
 * (the daemons talking to each other). 0; -EINVAL with a message naming the
 * variable in err (never any key text) when the keys are partial or
 * malformed, -ENOTSUP when libzmq lacks CURVE, -ENOMEM. After a failure no bus
 * socket can be made until a configuration succeeds: never a silent fallback
 * to plaintext. Thread-safe. */
int ncc_bus_curve_configure(const ncc_bus_curve_settings_t *settings, char *err, size_t errlen);

/* Reads ncc_bus_curve_config from the environment and configures, once per
 * process: later calls (and those after ncc_bus_curve_configure) return the
 * result of the configuration in force, with its message in err. The first
 * bus socket made without any configuration calls this itself (and fails
 * when it fails), so a program that does not use the service frame is
 * covered too; calling it at start gives the clear error early. */
int ncc_bus_curve_from_env(char *err, size_t errlen);

/* What is in force (public information only, for the start-up log). */
typedef struct {
    bool enabled;           /* CURVE on: plaintext otherwise */
    bool serves;            /* this process holds the server secret key */
    size_t allowed_clients; /* client keys admitted by the ZAP handler; 0: any client */
    char public_key[41];    /* this process's public key (Z85), "" when off */
    char server_key[41];    /* the servers' public key (Z85), "" when off */
} ncc_bus_curve_status_t;
void ncc_bus_curve_status(ncc_bus_curve_status_t *ret_status);

/* Stops the ZAP handler, wipes the keys and forgets the configuration (the
 * next socket reads the environment again). For the end of a process or a
 * test; also registered with atexit when a ZAP handler starts. */
void ncc_bus_curve_shutdown(void);

/* ---- RPC client --------------------------------------------------------- */

typedef struct ncc_rpc_client ncc_rpc_client_t;

/* A DEALER connected to each of `endpoints` (comma-separated, copied), a
 * CURVE client when CURVE is configured. NULL when an endpoint is malformed
 * or the CURVE configuration is invalid. */
ncc_rpc_client_t *ncc_rpc_client_new(const char *endpoints);
void ncc_rpc_client_destroy(ncc_rpc_client_t **self_p);

/* A call waits at most `ms` (< its own time-out) for a connected copy of the service
 * before it gives up with -ETIMEDOUT; < 0 (the default): up to the call's time-out. For
 * callers that should not stall on a service that is down (the subscribers' replays). */
void ncc_rpc_client_set_send_timeout(ncc_rpc_client_t *self, int ms);

/* Replies this client dropped: late answers to calls that had timed out,
 * unknown request ids, malformed messages. */
uint64_t ncc_rpc_client_dropped(ncc_rpc_client_t *self);

/* Sends `request` and waits up to timeout_ms for the matching reply.
 * 0: *ret_reply is the reply envelope (caller frees with
 *    ncc__envelope__free_unpacked(e, NULL)); its type is the reply message's
 *    name or "ncc.Error" (payload Ncc__Error).
 * -ETIMEDOUT: no copy connected or no reply in time. -EINVAL: bad arguments.
 * -EMSGSIZE: request larger than NCC_BUS_MAX_MESSAGE. -EIO: socket failure. */
int ncc_rpc_call(ncc_rpc_client_t *self, const ncc_ctx_t *ctx, const ProtobufCMessage *request,
                 int timeout_ms, Ncc__Envelope **ret_reply);

/* As ncc_rpc_call with an already packed payload of message type `type`. */
int ncc_rpc_call_raw(ncc_rpc_client_t *self, const ncc_ctx_t *ctx, const char *type,
                     const uint8_t *payload, size_t len, int timeout_ms, Ncc__Envelope **ret_reply);

/* Calls and unpacks: 0 with *ret_message of type `reply_type` (caller frees
 * with protobuf_c_message_free_unpacked(m, NULL)); -EPROTO when the service
 * answered an Error (copied into *ret_error when not NULL: caller frees with
 * ncc__error__free_unpacked; it is set to NULL otherwise) or an unexpected
 * type; the errors of ncc_rpc_call. */
int ncc_rpc_call_typed(ncc_rpc_client_t *self, const ncc_ctx_t *ctx,
                       const ProtobufCMessage *request,
                       const ProtobufCMessageDescriptor *reply_type, int timeout_ms,
                       ProtobufCMessage **ret_message, Ncc__Error **ret_error);

/* ---- RPC server --------------------------------------------------------- */

typedef struct ncc_rpc_server ncc_rpc_server_t;
typedef struct ncc_reply ncc_reply_t;

typedef struct {
    const Ncc__Envelope *envelope;   /* borrowed: type, ids, actor */
    const ProtobufCMessage *message; /* borrowed: the unpacked payload */
} ncc_request_t;

/* A handler answers with exactly one ncc_reply_message or ncc_reply_error;
 * one that answers neither makes the server reply 500 "internal". */
typedef void (*ncc_rpc_handler_fn)(void *arg, const ncc_request_t *request, ncc_reply_t *reply);

/* A ROUTER bound to each of `endpoints` (comma-separated; "tcp://127.0.0.1:0"
 * style ephemeral ports allowed, see ncc_rpc_server_endpoint). `service` names
 * the server in replies and logs. A CURVE server when CURVE is configured.
 * NULL when binding fails, or when CURVE is configured but invalid or this
 * process does not hold the server secret key. */
ncc_rpc_server_t *ncc_rpc_server_new(const char *endpoints, const char *service);
void ncc_rpc_server_destroy(ncc_rpc_server_t **self_p);

/* The first endpoint actually bound (ephemeral port resolved); borrowed. */
const char *ncc_rpc_server_endpoint(ncc_rpc_server_t *self);

/* Routes requests of `type` to fn(arg, ...). 0, or -EEXIST when taken. */
int ncc_rpc_server_on(ncc_rpc_server_t *self, const ProtobufCMessageDescriptor *type,
                      ncc_rpc_handler_fn fn, void *arg);

/* The socket to poll for input (for zloop / zpoller). */
zsock_t *ncc_rpc_server_socket(ncc_rpc_server_t *self);

/* Handles every request waiting on the socket without blocking. Malformed
 * frames, envelopes or payloads are logged, counted (bus_malformed_total) and
 * dropped; a request of an unknown type gets Error 400 "unknown_message".
 * Returns how many messages were read. */
int ncc_rpc_server_process(ncc_rpc_server_t *self);

/* Replies. `message` is packed at once (not kept). */
void ncc_reply_message(ncc_reply_t *reply, const ProtobufCMessage *message);
void ncc_reply_error(ncc_reply_t *reply, int status, const char *code, const char *field,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* ---- events: outbox, publisher, subscriber ------------------------------ */

/* Inside the caller's open transaction on `db` (whose search_path is the
 * service's schema): stores `event` in the outbox; it is published after the
 * commit by ncc_publisher_flush. 0 or -EIO. */
int ncc_outbox_add(ncc_db_t *db, const ncc_ctx_t *ctx, const ProtobufCMessage *event);

typedef struct ncc_publisher ncc_publisher_t;

/* A PUB bound to `endpoints`, publishing `service`'s outbox. The db handle is
 * borrowed and used from the caller's thread only. A CURVE server as
 * ncc_rpc_server_new. NULL when binding fails (or as ncc_rpc_server_new). */
ncc_publisher_t *ncc_publisher_new(ncc_db_t *db, const char *service, const char *endpoints);
void ncc_publisher_destroy(ncc_publisher_t **self_p);

/* The first endpoint actually bound (ephemeral port resolved); borrowed. */
const char *ncc_publisher_endpoint(ncc_publisher_t *self);

/* Gives committed, unpublished outbox rows their sequence numbers (gapless,
 * under an advisory lock shared by every copy of the service) and publishes
 * them. Returns how many were published, or -EIO. Call after each commit that
 * added events, and from a timer; never inside an open transaction (-EBUSY). */
int ncc_publisher_flush(ncc_publisher_t *self);

/* Publishes ncc.Heartbeat with the last sequence number. 0 or -EIO. */
int ncc_publisher_heartbeat(ncc_publisher_t *self);

/* Outbox rows not yet published (for /metrics), or -EIO. */
int64_t ncc_publisher_depth(ncc_publisher_t *self);

/* Registers the ncc.EventReplayRequest handler on `server` (which must be
 * served from the thread that uses the publisher's db). 0 or -EEXIST. */
int ncc_publisher_serve_replay(ncc_publisher_t *self, ncc_rpc_server_t *server);

/* The replay handler itself (arg: the publisher), for frames that register
 * it behind their own role check (ncc/service.h admits only "system"). */
void ncc_publisher_on_replay(void *arg, const ncc_request_t *request, ncc_reply_t *reply);

/* Deletes published outbox rows older than older_than_seconds (at most 10000
 * per call: call again while it returns that many). A subscriber whose cursor
 * is behind the pruned rows skips them with an error log (bus.events_lost),
 * so keep them longer than any subscriber may stay down. Returns the number
 * deleted, or -EIO. */
int64_t ncc_publisher_prune(ncc_publisher_t *self, int64_t older_than_seconds);

typedef struct ncc_subscriber ncc_subscriber_t;

/* Called once per event, inside a transaction on `db` that also advances the
 * cursor: return 0 to commit, a negative errno to roll back and have the event
 * delivered again later (the subscriber then stops until the next catch-up,
 * so events stay in order). The handler must not commit or roll back itself.
 * `message` is the unpacked payload (borrowed). */
typedef int (*ncc_event_fn)(void *arg, ncc_db_t *db, const Ncc__Envelope *event,
                            const ProtobufCMessage *message);

/* Subscribes to the events of `publisher` (a service name) published on
 * `pub_endpoints`; replays are asked of `rpc_endpoints`. The db handle is
 * borrowed; cursors live in the subscriber's schema (common migration). The
 * SUB is a CURVE client when CURVE is configured; NULL as
 * ncc_rpc_client_new. */
ncc_subscriber_t *ncc_subscriber_new(ncc_db_t *db, const char *publisher, const char *pub_endpoints,
                                     const char *rpc_endpoints);
void ncc_subscriber_destroy(ncc_subscriber_t **self_p);

/* Keeps this subscriber's cursor in row `key` of inbox_cursor instead of the publisher's
 * name, the row every copy of a service shares (so that exactly one copy applies each
 * event). A subscriber with a key of its own per copy has every event applied in this
 * copy: what an in-memory cache of another service's data needs. A missing row starts at
 * row `seed_key`'s cursor less NCC_SUBSCRIBER_SEED_MARGIN (NULL: at 0), so a new copy does
 * not replay the whole outbox. Before the first catch-up only. 0, -EINVAL or -ENOMEM. */
int ncc_subscriber_set_cursor_key(ncc_subscriber_t *self, const char *key, const char *seed_key);
#define NCC_SUBSCRIBER_SEED_MARGIN 1000

/* Delivers events whose type starts with `prefix` to fn ("" for all). When
 * several registrations match, each is called, in registration order, in the
 * same transaction. 0, -EINVAL or -ENOMEM. */
int ncc_subscriber_on(ncc_subscriber_t *self, const char *prefix, ncc_event_fn fn, void *arg);

zsock_t *ncc_subscriber_socket(ncc_subscriber_t *self);

/* Handles what is waiting on the socket without blocking; on a gap or a
 * heartbeat ahead of the cursor, replays from the publisher. Returns the
 * number of events delivered, or a negative errno. */
int ncc_subscriber_process(ncc_subscriber_t *self);

/* Replays everything after the cursor (at start and from a timer; it blocks
 * for at most about a second per replay request). Returns events delivered
 * or a negative errno (-ETIMEDOUT when the publisher is down: try again
 * later; the handler's error when one failed). */
int ncc_subscriber_catch_up(ncc_subscriber_t *self);

/* The service timer's catch-up: replays only when one is due — the cursor not
 * read yet, a failed event waiting for its retry, or nothing heard from the
 * publisher (event or heartbeat) for NCC_SUBSCRIBER_QUIET_US while it may have
 * published. A subscriber that hears the heartbeats catches up on them instead,
 * so an idle or up-to-date subscriber sends no replay requests (each one makes
 * this service wait on the publisher). Returns as ncc_subscriber_catch_up, 0
 * when none was due. */
int ncc_subscriber_tick(ncc_subscriber_t *self);
#define NCC_SUBSCRIBER_QUIET_US (3 * 1000000LL)

/* True when the last catch-up stopped at its time slice (50 ms) with events still to
 * fetch: call ncc_subscriber_catch_up again soon (the service frame does it on its next
 * loop turn), after serving what else is waiting. */
bool ncc_subscriber_behind(ncc_subscriber_t *self);

/* The last sequence number applied for this publisher. */
uint64_t ncc_subscriber_cursor(ncc_subscriber_t *self);

/* ---- listener: events that only matter live ------------------------------ */

/* What a browser push needs: events as they are published, without a cursor,
 * a database or replays (several gateways each see every event; what was
 * published while one was down is gone for it, which is right for a screen
 * pop). Heartbeats are skipped. */
typedef struct ncc_listener ncc_listener_t;

/* A SUB (a CURVE client when CURVE is configured) connected to each of
 * `pub_endpoints` (comma-separated), taking event types that start with
 * `prefix`. NULL on malformed endpoints or no memory. */
ncc_listener_t *ncc_listener_new(const char *pub_endpoints, const char *prefix);
void ncc_listener_destroy(ncc_listener_t **self_p);

/* Waits up to timeout_ms for one event: 1 with *ret_event (caller frees with
 * ncc__envelope__free_unpacked), 0 when none came, -EINTR when interrupted.
 * Malformed messages are logged, counted and skipped. */
int ncc_listener_recv(ncc_listener_t *self, int timeout_ms, Ncc__Envelope **ret_event);

#endif
