/* calls: the state of ncc-calls and the helpers its files share (calls.h). */
#include "calls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mecab.h>

#include "ncc/bus.h"
#include "ncc/log.h"
#include "ncc/push.h"

bool calls_id_ok(const char *id)
{
    size_t len = id ? strlen(id) : 0;
    if (len == 0 || len > 128)
        return false;
    return strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") == len;
}

void calls_number_key(const char *number, char *out, size_t len)
{
    size_t n = 0;
    for (const char *p = number; *p && n + 1 < len; p++)
        if ((*p >= '0' && *p <= '9') || *p == '+')
            out[n++] = *p;
    out[n] = '\0';
}

void calls_reply_db_error(calls_t *self, ncc_reply_t *reply, const char *what)
{
    ncc_reply_db_error(self->db, reply, what);
}

void calls_flush(calls_t *self)
{
    if (ncc_publisher_flush(ncc_service_publisher(self->service)) < 0)
        ncc_warn("outbox.flush_failed", "%s (the periodic flush will retry)",
                 ncc_db_error(self->db));
}

int calls_push(calls_t *self, const ncc_ctx_t *ctx, int64_t user_id, const char *roles,
               const char *event, const cJSON *data)
{
    return ncc_push_add(self->db, ctx, user_id, roles, event, data);
}

calls_t *calls_new(ncc_service_t *service, const calls_settings_t *settings)
{
    calls_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->service = service;
    self->db = ncc_service_db(service);
    self->keyring = ncc_service_keyring(service);
    self->settings = settings;
    static const char *const kinds[] = {"departments", "directory", NULL};
    self->masters = ncc_masters_cache_new(service, kinds);
    if (!self->masters || calls_events_register(self) < 0 || calls_transcript_register(self) < 0 ||
        calls_query_register(self) < 0 || calls_recording_register(self) < 0 ||
        ncc_service_encrypted_column(service, "calls", "id", "from_enc", CALLS_FROM_CONTEXT) < 0) {
        ncc_error("calls.setup_failed", "cannot register the handlers");
        calls_destroy(&self);
        return NULL;
    }
    if (!self->keyring)
        ncc_warn("calls.no_keys", "NCC_DATA_KEYS is unset: calls and transcripts are refused");
    return self;
}

void calls_destroy(calls_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    calls_t *self = *self_p;
    calls_recording_stop(self);
    ncc_masters_cache_destroy(&self->masters);
    if (self->mecab)
        mecab_destroy(self->mecab);
    free(self);
    *self_p = NULL;
}
