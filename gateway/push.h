/* push: the browser push stream, GET /api/v1/stream (Server-Sent Events;
 * docs/push.md). Services publish ncc.Push events (the screen pop, live
 * transcripts, ...); one listener thread per gateway takes them from every
 * service's PUB endpoints and hands each to the open streams of the users it
 * names. Each open stream is one civetweb worker waiting on its queue. */
#ifndef GW_PUSH_H
#define GW_PUSH_H

#include <stdint.h>

#include "http.h"
#include "session.h"
#include "settings.h"

typedef struct gw_push gw_push_t;

/* Starts the listener on the PUB endpoints of every service in `settings`.
 * NULL with a sentence in err. */
gw_push_t *gw_push_new(const gw_settings_t *settings, char *err, size_t errlen);

/* Ends every open stream and refuses new ones (the gateway is stopping). */
void gw_push_stop(gw_push_t *self);

/* Stops the listener and frees (every stream must have ended). */
void gw_push_destroy(gw_push_t **self_p);

/* Serves the stream of the signed-in request until the client goes, its
 * session ends (checked every NCC_PUSH_CHECK_MS without counting as activity),
 * or gw_push_stop. `db` is the worker's sessions connection. Returns the HTTP
 * status for the log. */
int gw_push_serve(gw_push_t *self, gw_sessions_t *sessions, ncc_db_t *db, gw_request_t *req);

/* Open streams now, and pushes delivered to a stream since the start. */
int gw_push_streams(gw_push_t *self);
uint64_t gw_push_delivered(gw_push_t *self);

#endif
