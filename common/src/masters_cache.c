/* masters_cache: live copies of ncc-directory's masters in any daemon (see
 * ncc/masters_cache.h). Entries are kept one by one (packed and unpacked
 * again, so each is freed on its own) in a CZMQ hash per kind. */
#include "ncc/masters_cache.h"

#include <czmq.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "masters.pb-c.h"
#include "ncc/log.h"
#include "ncc/roles.h"

#define S_MAX_KINDS        8
#define S_LOAD_TICK_MS     1000
#define S_FETCH_TIMEOUT_MS 1000
#define S_RETRY_MAX_S      30 /* longest wait between loads while the directory is down */

typedef struct {
    char *name;            /* owned: the kind ("departments") */
    zhashx_t *entries;     /* code -> Ncc__Directory__MasterValues * (owned), NULL until loaded */
    int64_t change_id;     /* newest change set applied */
    int64_t applied_at_us; /* when it was applied (Unix microseconds) */
    int64_t next_load_us;  /* the tick loads again from then (back-off while it fails) */
    int retry_s;           /* the current back-off */
} s_kind_t;

struct ncc_masters_cache {
    ncc_service_t *service; /* borrowed: the frame */
    s_kind_t kinds[S_MAX_KINDS];
    size_t kind_count;
    ncc_masters_cache_fn on_change; /* the daemon's hook, or NULL */
    void *on_change_arg;
};

static void s_entry_free(void **item_p)
{
    if (*item_p)
        protobuf_c_message_free_unpacked(*item_p, NULL);
    *item_p = NULL;
}

/* A copy of `entry` of its own (caller frees), or NULL. */
static Ncc__Directory__MasterValues *s_entry_copy(const Ncc__Directory__MasterValues *entry)
{
    size_t len = protobuf_c_message_get_packed_size(&entry->base);
    uint8_t *packed = malloc(len ? len : 1);
    if (!packed)
        return NULL;
    protobuf_c_message_pack(&entry->base, packed);
    Ncc__Directory__MasterValues *copy = ncc__directory__master_values__unpack(NULL, len, packed);
    free(packed);
    return copy;
}

static const char *s_entry_key(const Ncc__Directory__MasterValues *entry)
{
    return entry->code ? entry->code : entry->login;
}

static s_kind_t *s_kind(const ncc_masters_cache_t *self, const char *name)
{
    for (size_t i = 0; name && i < self->kind_count; i++)
        if (strcmp(self->kinds[i].name, name) == 0)
            return (s_kind_t *)&self->kinds[i];
    return NULL;
}

static void s_applied(ncc_masters_cache_t *self, s_kind_t *kind, int64_t change_id)
{
    if (change_id > kind->change_id)
        kind->change_id = change_id;
    kind->applied_at_us = ncc_bus_now_us();
    if (self->on_change)
        self->on_change(self->on_change_arg, kind->name, kind->change_id);
}

/* Loads the whole kind from the directory. 0, -ETIMEDOUT (down), -EPROTO
 * (refused), -ENOMEM. */
static int s_load(ncc_masters_cache_t *self, s_kind_t *kind)
{
    ncc_rpc_client_t *client = ncc_service_client(self->service, "directory");
    if (!client)
        return -ENOMEM;
    Ncc__Directory__MasterFetch fetch = NCC__DIRECTORY__MASTER_FETCH__INIT;
    fetch.kind = kind->name;
    ncc_ctx_t ctx = ncc_service_ctx(self->service);
    ProtobufCMessage *answer = NULL;
    Ncc__Error *error = NULL;
    int rc =
        ncc_rpc_call_typed(client, &ctx, &fetch.base, &ncc__directory__master_snapshot__descriptor,
                           S_FETCH_TIMEOUT_MS, &answer, &error);
    if (rc < 0) {
        ncc_warn("masters_cache.load_failed", "%s from ncc-directory: %s%s%s", kind->name,
                 strerror(-rc), error && error->message ? ": " : "",
                 error && error->message ? error->message : "");
        if (error)
            ncc__error__free_unpacked(error, NULL);
        return rc;
    }
    Ncc__Directory__MasterSnapshot *snapshot = (Ncc__Directory__MasterSnapshot *)answer;
    zhashx_t *entries = zhashx_new();
    rc = entries ? 0 : -ENOMEM;
    if (entries)
        zhashx_set_destructor(entries, s_entry_free);
    for (size_t i = 0; rc == 0 && i < snapshot->n_items; i++) {
        const char *key = s_entry_key(snapshot->items[i]);
        Ncc__Directory__MasterValues *copy = key ? s_entry_copy(snapshot->items[i]) : NULL;
        if (!key)
            continue;
        if (!copy)
            rc = -ENOMEM;
        else
            zhashx_update(entries, key, copy);
    }
    if (rc == 0) {
        zhashx_destroy(&kind->entries);
        kind->entries = entries;
        entries = NULL;
        ncc_info("masters_cache.loaded", "%s: %zu entries, change %lld", kind->name,
                 zhashx_size(kind->entries), (long long)snapshot->change_id);
        s_applied(self, kind, snapshot->change_id);
    }
    zhashx_destroy(&entries);
    protobuf_c_message_free_unpacked(answer, NULL);
    return rc;
}

/* ncc.directory.MasterChanged: in the subscriber's transaction, which we do
 * not use; an error has the event delivered again later. */
static int s_on_changed(void *arg, ncc_db_t *db, const Ncc__Envelope *event,
                        const ProtobufCMessage *message)
{
    ncc_masters_cache_t *self = arg;
    const Ncc__Directory__MasterChanged *changed = (const Ncc__Directory__MasterChanged *)message;
    s_kind_t *kind = s_kind(self, changed->kind);
    if (!kind)
        return 0;
    if (!kind->entries)
        return s_load(self, kind) < 0 ? -EAGAIN : 0; /* the load includes this change */
    if (changed->change_id <= kind->change_id)
        return 0; /* already in what we hold (replayed, or loaded since) */
    if (changed->code && changed->entry) {
        Ncc__Directory__MasterValues *copy = s_entry_copy(changed->entry);
        if (!copy)
            return -ENOMEM;
        zhashx_update(kind->entries, changed->code, copy);
    } else if (changed->code && changed->op && strcmp(changed->op, "delete") == 0) {
        zhashx_delete(kind->entries, changed->code);
    } else if (s_load(self, kind) < 0) {
        return -EAGAIN;
    }
    s_applied(self, kind, changed->change_id);
    return 0;
}

/* Every second: loads the kinds not loaded yet (the directory may start
 * after us). A failed load blocks the loop for up to S_FETCH_TIMEOUT_MS, so
 * the next try waits longer each time (1, 2, 4 ... 30 s). */
static void s_tick(void *arg)
{
    ncc_masters_cache_t *self = arg;
    int64_t now = ncc_bus_now_us();
    for (size_t i = 0; i < self->kind_count; i++) {
        s_kind_t *kind = &self->kinds[i];
        if (kind->entries || now < kind->next_load_us)
            continue;
        if (s_load(self, kind) == 0)
            continue;
        kind->retry_s = kind->retry_s ? kind->retry_s * 2 : 1;
        if (kind->retry_s > S_RETRY_MAX_S)
            kind->retry_s = S_RETRY_MAX_S;
        kind->next_load_us = now + (int64_t)kind->retry_s * 1000000;
    }
}

static void s_on_status(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    ncc_masters_cache_t *self = arg;
    const Ncc__Masters__GetCacheStatus *m = (const Ncc__Masters__GetCacheStatus *)request->message;
    s_kind_t *kind = s_kind(self, m->kind);
    if (!kind) {
        ncc_reply_error(reply, 404, "not_found", "kind", "this daemon does not cache that kind");
        return;
    }
    char host[64] = "localhost", instance[96];
    gethostname(host, sizeof host - 1);
    snprintf(instance, sizeof instance, "%s:%d", host, (int)getpid());
    Ncc__Masters__CacheStatus status = NCC__MASTERS__CACHE_STATUS__INIT;
    status.service = (char *)ncc_service_name(self->service);
    status.instance = instance;
    status.kind = kind->name;
    status.has_change_id = true;
    status.change_id = kind->change_id;
    status.has_applied_at_us = kind->applied_at_us > 0;
    status.applied_at_us = kind->applied_at_us;
    status.has_loaded = true;
    status.loaded = kind->entries != NULL;
    status.has_entries = true;
    status.entries = kind->entries ? (int64_t)zhashx_size(kind->entries) : 0;
    ncc_reply_message(reply, &status.base);
}

ncc_masters_cache_t *ncc_masters_cache_new(ncc_service_t *service, const char *const *kinds)
{
    if (!service || !kinds || !kinds[0])
        return NULL;
    ncc_masters_cache_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->service = service;
    for (size_t i = 0; kinds[i]; i++) {
        if (self->kind_count == S_MAX_KINDS)
            goto fail;
        self->kinds[self->kind_count].name = strdup(kinds[i]);
        if (!self->kinds[self->kind_count].name)
            goto fail;
        self->kind_count++;
    }
    if (ncc_service_on(service, &ncc__masters__get_cache_status__descriptor, NCC_ROLES_ALL,
                       s_on_status, self) < 0 ||
        ncc_service_subscribe_each_copy(service, "directory", "ncc.directory.MasterChanged",
                                        s_on_changed, self) < 0 ||
        ncc_service_every(service, S_LOAD_TICK_MS, s_tick, self) < 0) {
        ncc_error("masters_cache.setup_failed", "cannot register the masters cache");
        goto fail;
    }
    return self;
fail:
    ncc_masters_cache_destroy(&self);
    return NULL;
}

void ncc_masters_cache_destroy(ncc_masters_cache_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ncc_masters_cache_t *self = *self_p;
    for (size_t i = 0; i < self->kind_count; i++) {
        free(self->kinds[i].name);
        zhashx_destroy(&self->kinds[i].entries);
    }
    free(self);
    *self_p = NULL;
}

const Ncc__Directory__MasterValues *ncc_masters_cache_find(const ncc_masters_cache_t *self,
                                                           const char *kind, const char *code)
{
    const s_kind_t *k = self ? s_kind(self, kind) : NULL;
    if (!k || !k->entries || !code)
        return NULL;
    return zhashx_lookup(k->entries, code);
}

size_t ncc_masters_cache_count(const ncc_masters_cache_t *self, const char *kind)
{
    const s_kind_t *k = self ? s_kind(self, kind) : NULL;
    return k && k->entries ? zhashx_size(k->entries) : 0;
}

int64_t ncc_masters_cache_change_id(const ncc_masters_cache_t *self, const char *kind)
{
    const s_kind_t *k = self ? s_kind(self, kind) : NULL;
    return k ? k->change_id : 0;
}

void ncc_masters_cache_on_change(ncc_masters_cache_t *self, ncc_masters_cache_fn fn, void *arg)
{
    self->on_change = fn;
    self->on_change_arg = arg;
}
