/* gateway: the ncc-gateway process object. Owns the HTTPS listener (and the
 * optional plain HTTP one for a TLS edge in front), each a civetweb context
 * serving gateway/web and the /api/v1 handler, the certificate, the session
 * store (schema auth, session.h) and its own health server. It is not an
 * ncc_service_t: it has no ROUTER and no event loop of its own; civetweb's
 * worker threads do the work and the main thread only waits for signals. */
#ifndef GW_GATEWAY_H
#define GW_GATEWAY_H

#include "settings.h"

typedef struct gw gw_t;

/* Starts serving (certificate made if missing, listeners bound, health up).
 * `settings` is borrowed and must outlive the gateway (SIGHUP reloads it).
 * Blocks SIGTERM, SIGINT and SIGHUP in the calling thread, which must be the
 * only thread so far, so that gw_run receives them. NULL after logging why. */
gw_t *gw_new(gw_settings_t *settings);

/* Stops the listeners (in-flight requests finish) and frees. NULL-safe. */
void gw_destroy(gw_t **self_p);

/* Waits for signals: SIGHUP reloads the reloadable settings, SIGTERM or
 * SIGINT return. Returns the process exit code (0). */
int gw_run(gw_t *self);

#endif
