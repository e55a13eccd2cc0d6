/* api: the /api/v1 handler. One generic path for every route of the table
 * (routes.c): path params + query string + JSON body -> the route's protobuf
 * request -> the route's service over the bus -> the reply as JSON, or the
 * service's ncc.Error in the API.md error shape. Plus the health fan-out and
 * /healthz. Requests run on civetweb worker threads; each thread has its own
 * DEALER per service (gw_thread_t). */
#ifndef GW_API_H
#define GW_API_H

#include <civetweb.h>
#include <protobuf-c/protobuf-c.h>

#include "http.h"
#include "ncc/bus.h"
#include "session.h"
#include "settings.h"

typedef struct gw_api gw_api_t;

/* Copies what it needs from settings (service endpoints, limits); the
 * address lists of `settings` and `sessions` are borrowed and must outlive
 * the api. NULL on allocation failure or when an endpoint list is malformed
 * (err says which). */
gw_api_t *gw_api_new(const gw_settings_t *settings, gw_sessions_t *sessions, char *err,
                     size_t errlen);
void gw_api_destroy(gw_api_t **self_p);

/* SIGHUP: new limits, read by the worker threads from the next request on. */
void gw_api_set_limits(gw_api_t *self, const gw_settings_values_t *values);

/* SIGTERM: from now on new API requests get 503 (and their connection is
 * closed); waits up to timeout_ms for the API requests in flight to finish.
 * civetweb's mg_stop abandons responses that are still being written, so the
 * gateway drains here first. Returns how many were still running. */
int gw_api_drain(gw_api_t *self, int timeout_ms);

/* The longest an API request can take: the bus or health timeout (ms). */
int gw_api_longest_request_ms(gw_api_t *self);

/* ---- for the session handlers (auth.c) ------------------------------------ */

/* One bus request to `service` from the calling worker (its own DEALER),
 * with the bus timeout. 0 with *ret_reply (caller frees with
 * ncc__envelope__free_unpacked); -ENOENT for an unknown service; the errors
 * of ncc_rpc_call. Nothing is sent to the client. */
int gw_api_rpc(gw_api_t *self, gw_request_t *req, const char *service, const ncc_ctx_t *ctx,
               const ProtobufCMessage *request, Ncc__Envelope **ret_reply);

/* The worker's connection to the sessions' database (made on first use), or
 * NULL on allocation failure. */
ncc_db_t *gw_api_db(gw_api_t *self, gw_request_t *req);

gw_sessions_t *gw_api_sessions(gw_api_t *self);

/* NCC_TRUSTED_PROXIES (borrowed), for handlers outside /api/v1 (public.c). */
const gw_cidr_list_t *gw_api_trusted_proxies(gw_api_t *self);

/* Reads the body of a POST/PUT/PATCH strictly as a `desc` message (an empty
 * body is an empty message). 0 with *ret_message (caller frees), or the
 * status of the error answer sent (> 0). */
int gw_api_read_message(gw_api_t *self, gw_request_t *req, const ProtobufCMessageDescriptor *desc,
                        ProtobufCMessage **ret_message);

/* Answers an ncc.Error reply envelope in the API.md shape (its status), or
 * 502 when the reply is not one. Returns the status. */
int gw_api_send_error_reply(gw_request_t *req, const char *service, const Ncc__Envelope *reply);

/* civetweb request handlers; cbdata is the gw_api_t. */
int gw_api_handle(struct mg_connection *conn, void *cbdata);  /* /api/v1 and below */
int gw_api_healthz(struct mg_connection *conn, void *cbdata); /* /healthz: alive */

#endif
