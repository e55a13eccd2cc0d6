/* push: ncc.Push through the outbox (ncc/push.h). */
#include "ncc/push.h"

#include <errno.h>
#include <stdlib.h>

int ncc_push_add(ncc_db_t *db, const ncc_ctx_t *ctx, int64_t user_id, const char *roles,
                 const char *event, const cJSON *data)
{
    char *text = cJSON_PrintUnformatted(data);
    if (!text)
        return -ENOMEM;
    char id[33];
    ncc_bus_random_id(id);
    Ncc__Push push = NCC__PUSH__INIT;
    int64_t users[1] = {user_id};
    if (user_id > 0) {
        push.n_user_ids = 1;
        push.user_ids = users;
    }
    push.roles = (char *)roles;
    push.event = (char *)event;
    push.data = text;
    push.id = id;
    int rc = ncc_outbox_add(db, ctx, &push.base) < 0 ? -EIO : 0;
    free(text);
    return rc;
}
