/* health: the small HTTP server every daemon runs on its own port for
 * /healthz (alive), /readyz (database and bus reachable) and /metrics
 * (Prometheus text format). Built on civetweb with two worker threads. */
#ifndef NCC_HEALTH_H
#define NCC_HEALTH_H

#include <stdbool.h>
#include "ncc/metrics.h"

typedef struct ncc_health ncc_health_t;

/* GET /healthz    200 "ok" while the process serves at all;
 * GET /readyz     200 "ready", or 503 with the reason as the body;
 * GET /metrics    ncc_metrics_render(service), text/plain; version=0.0.4.
 * HEAD is answered like GET without a body; other methods get 405 (with
 * Allow), other paths 404. civetweb's own messages go to ncc_log. */
typedef struct {
    const char *service; /* copied */
    const char *listen;  /* civetweb listening_ports form, e.g. "127.0.0.1:9102"; copied */
} ncc_health_options_t;

/* Starts serving (not ready, reason "starting", until ncc_health_set_ready).
 * NULL when the port cannot be bound (civetweb's reason is logged as
 * "health.civetweb"). */
ncc_health_t *ncc_health_new(const ncc_health_options_t *options);
void ncc_health_destroy(ncc_health_t **self_p);

/* Published by the owning loop; read by the HTTP threads (under a mutex).
 * `reason` is copied ("database unreachable"); ignored when ready. Also sets
 * the ncc_ready gauge. */
void ncc_health_set_ready(ncc_health_t *self, bool ready, const char *reason);

/* The port actually bound (when "0" was asked). */
int ncc_health_port(ncc_health_t *self);

#endif
