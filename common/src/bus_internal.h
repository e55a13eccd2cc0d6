/* bus_internal: helpers shared by bus_rpc.c, bus_events.c and bus_subscriber.c (framing,
 * endpoint lists, hex for bytea, CURVE on sockets). Not part of the public contract. */
#ifndef NCC_BUS_INTERNAL_H
#define NCC_BUS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <libpq-fe.h>
#include "ncc/bus.h"
#include "ncc/db.h"

/* The type of the publisher's heartbeat event. */
#define NCC_BUS_HEARTBEAT_TYPE "ncc.Heartbeat"

/* Events per replay reply: what a subscriber asks for (bus_subscriber.c) and a publisher
 * gives when asked for no number (bus_events.c). */
#define NCC_BUS_REPLAY_ASK 500

/* The number in row `row`, column `column` of res (unsigned). 0 or -EIO (absent, NULL or
 * not a number). */
int ncc_bus_result_u64(PGresult *res, int row, int column, uint64_t *ret_value);

/* Runs a one-row, one-number query on db. 0 or -EIO. */
int ncc_bus_query_u64(ncc_db_t *db, const char *sql, int nparams, const char *const *params,
                      uint64_t *ret_value);

/* Longest message type name accepted in a type frame. */
#define NCC_BUS_MAX_TYPE 128

/* Largest event payload the outbox accepts: a replay reply carries at least
 * one event inside an envelope, so leave room for both envelopes. */
#define NCC_BUS_MAX_EVENT (NCC_BUS_MAX_MESSAGE - 64 * 1024)

/* Calls fn(arg, endpoint) for each item of the comma-separated `endpoints`
 * (blanks trimmed, empty items skipped; each item NUL-terminated in a local
 * buffer). Stops at the first negative return and returns it; -EINVAL when
 * the list is NULL, empty or holds an item too long. */
int ncc_bus_endpoints_each(const char *endpoints, int (*fn)(void *arg, const char *endpoint),
                           void *arg);

/* The trace id a message sent on behalf of ctx carries: ctx's, else the
 * trace of the request this thread is handling (ncc_log_trace), else a fresh
 * one written into buf (>= 33 bytes). Borrowed from one of those. */
const char *ncc_bus_trace_for(const ncc_ctx_t *ctx, char *buf);

/* Sends [routing?][type][packed envelope] on sock (routing frame taken; may
 * be NULL). The type frame is envelope->type. flags: ZFRAME_DONTWAIT or 0.
 * 0; -EMSGSIZE when the envelope exceeds NCC_BUS_MAX_MESSAGE; -EAGAIN when
 * the socket would block (no peer, send timeout); -ENOMEM; -EIO. */
int ncc_bus_send(zsock_t *sock, zframe_t **routing_p, const Ncc__Envelope *envelope, int flags);

/* Checks and unpacks one received message, which it destroys: with `routed`
 * (ROUTER side) [routing][type][envelope], else [type][envelope]. The type
 * frame must equal envelope.type. 0 with *ret_envelope (caller frees with
 * ncc__envelope__free_unpacked) and, when routed, *ret_routing (caller
 * destroys); -EBADMSG after logging (bus.malformed) and counting
 * bus_malformed_total. `where` names the receiver in the log. */
int ncc_bus_parse(zmsg_t **msg_p, bool routed, const char *where, zframe_t **ret_routing,
                  Ncc__Envelope **ret_envelope);

/* Logs bus.malformed (warn) with `where` and the reason, and counts it. */
void ncc_bus_malformed(const char *where, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Copies at most 64 bytes of `text` into buf (>= 65 bytes), replacing any
 * byte outside [A-Za-z0-9._-] by '?': peer-supplied names are safe to log. */
const char *ncc_bus_printable(const char *text, char *buf);

/* The payload bytes of an envelope (never NULL, even when empty). */
const uint8_t *ncc_bus_payload(const Ncc__Envelope *envelope, size_t *ret_len);

/* Lower-case hex of data (for bytea parameters): caller frees. NULL on ENOMEM. */
char *ncc_bus_hex_encode(const uint8_t *data, size_t len);

/* Decodes lower/upper-case hex: caller frees *ret_data (never NULL on success,
 * even for ""). -EINVAL on a bad digit or odd length, -ENOMEM. */
int ncc_bus_hex_decode(const char *hex, uint8_t **ret_data, size_t *ret_len);

/* Applies the process's CURVE configuration (ncc_bus_curve_configure, else
 * the environment on first use) to `sock` before it binds (`server`: ROUTER,
 * PUB) or connects (DEALER, SUB). 0 (also when CURVE is off); -EINVAL when
 * the configuration failed; -ENOKEY for a server socket in a process that
 * does not hold the server secret key. */
int ncc_bus_curve_apply(zsock_t *sock, bool server);

/* Strict decimal parse of an unsigned 64-bit number. -EINVAL otherwise. */
int ncc_bus_parse_u64(const char *text, uint64_t *ret_value);

#endif
