/* health: the small HTTP server every daemon runs on its own port for
 * /healthz (alive), /readyz (database and bus reachable) and /metrics
 * (Prometheus text format). Built on civetweb with two worker threads. */
#ifndef NCC_HEALTH_H
#define NCC_HEALTH_H

#include <stdbool.h>
#include "ncc/metrics.h"

typedef struct ncc_health ncc_health_t;

/* The reason a daemon is not ready, or NULL when it is. Called from a civetweb
 * thread: it must only read state that the owning loop publishes atomically
 * (see ncc_health_set_ready). */
typedef struct {
    const char *service; /* copied */
    const char *listen;  /* civetweb listening_ports form, e.g. "127.0.0.1:9102"; copied */
} ncc_health_options_t;

/* Starts serving. NULL when the port cannot be bound. */
ncc_health_t *ncc_health_new(const ncc_health_options_t *options);
void ncc_health_destroy(ncc_health_t **self_p);

/* Published by the owning loop; read by the HTTP threads. `reason` is copied
 * ("database unreachable"); NULL when ready. */
void ncc_health_set_ready(ncc_health_t *self, bool ready, const char *reason);

/* The port actually bound (when "0" was asked). */
int ncc_health_port(ncc_health_t *self);

#endif
