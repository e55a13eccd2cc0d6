/* push: what a service tells a browser (docs/push.md). A push is an
 * ncc.Push added to the service's outbox in the transaction of the change,
 * so nothing is pushed for a change that was rolled back; every gateway
 * delivers it to the streams of the users it names. */
#ifndef NCC_PUSH_H
#define NCC_PUSH_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "ncc/bus.h"
#include "ncc/db.h"

/* Adds an ncc.Push to the outbox of `db` (inside the caller's transaction):
 * `event` ([a-z0-9._]{1,64}) with `data` (a JSON object, not taken) for user
 * `user_id` (0: none) and the users holding `roles` (comma list, NULL: none).
 * 0, -ENOMEM or -EIO. */
int ncc_push_add(ncc_db_t *db, const ncc_ctx_t *ctx, int64_t user_id, const char *roles,
                 const char *event, const cJSON *data);

#endif
