/* api: the /api/v1 handler. One generic path for every route of the table
 * (routes.c): path params + query string + JSON body -> the route's protobuf
 * request -> the route's service over the bus -> the reply as JSON, or the
 * service's ncc.Error in the API.md error shape. Plus the health fan-out and
 * /healthz. Requests run on civetweb worker threads; each thread has its own
 * DEALER per service (gw_thread_t). */
#ifndef GW_API_H
#define GW_API_H

#include <civetweb.h>

#include "settings.h"

typedef struct gw_api gw_api_t;

/* Copies what it needs from settings (service endpoints, limits). NULL on
 * allocation failure or when an endpoint list is malformed (err says which). */
gw_api_t *gw_api_new(const gw_settings_t *settings, char *err, size_t errlen);
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

/* civetweb request handlers; cbdata is the gw_api_t. */
int gw_api_handle(struct mg_connection *conn, void *cbdata);  /* /api/v1 and below */
int gw_api_healthz(struct mg_connection *conn, void *cbdata); /* /healthz: alive */

#endif
