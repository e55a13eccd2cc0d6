/* masters_cache: a live copy of some kinds of ncc-directory's masters
 * (departments, the phone book, categories, ...) inside any daemon, so a
 * reorganisation reaches every daemon without a restart (R5, docs/masters.md).
 *
 * The cache loads each kind with ncc.directory.MasterFetch once the
 * daemon's database is ready (and again, waiting 1, 2, 4 ... 30 s between
 * tries, until the directory answers; a try blocks the loop for up to 1 s),
 * then follows ncc.directory.MasterChanged through the service
 * frame's subscription (outbox, replay: no change is missed): a single
 * change carries the entry and is applied in place, a deletion removes it,
 * an import reloads the kind. It answers ncc.masters.GetCacheStatus
 * (proto/masters.proto) with the newest change id it has applied and when,
 * so a benchmark or an operator can see a change arrive everywhere.
 *
 * One cache per daemon (it registers the GetCacheStatus handler), made in
 * the service's create hook and used on the loop thread only:
 *
 *     static void *s_create(ncc_service_t *service)
 *     {
 *         static const char *const kinds[] = {"departments", NULL};
 *         return ncc_masters_cache_new(service, kinds);
 *     }
 */
#ifndef NCC_MASTERS_CACHE_H
#define NCC_MASTERS_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "directory.pb-c.h"
#include "ncc/service.h"

typedef struct ncc_masters_cache ncc_masters_cache_t;

/* A cache of the kinds named in `kinds` (NULL-terminated names as in
 * docs/masters.md, copied) for `service` (borrowed; must outlive the cache):
 * subscribes, registers GetCacheStatus and the load timer. Call before
 * ncc_service_run. NULL on bad arguments, allocation failure, or when the
 * handler or subscription cannot be registered (a second cache). */
ncc_masters_cache_t *ncc_masters_cache_new(ncc_service_t *service, const char *const *kinds);

/* Frees the entries. The service keeps pointers to the cache in its handler
 * and subscription: destroy the cache after the loop has stopped (the
 * service's destroy hook). Accepts NULL; nulls *self_p. */
void ncc_masters_cache_destroy(ncc_masters_cache_t **self_p);

/* The entry of `kind` whose code (a user's login) is `code`, retired entries
 * included: borrowed until the cache next changes (on the loop), NULL when
 * the kind is not cached, not loaded yet, or has no such entry. */
const Ncc__Directory__MasterValues *ncc_masters_cache_find(const ncc_masters_cache_t *self,
                                                           const char *kind, const char *code);

/* Entries held of `kind`; 0 before the first load or for a kind not cached. */
size_t ncc_masters_cache_count(const ncc_masters_cache_t *self, const char *kind);

/* The newest change set of `kind` applied (0 before the first load). */
int64_t ncc_masters_cache_change_id(const ncc_masters_cache_t *self, const char *kind);

/* fn(arg, kind, change_id) on the loop after each load or change of a kind
 * (NULL to stop). */
typedef void (*ncc_masters_cache_fn)(void *arg, const char *kind, int64_t change_id);
void ncc_masters_cache_on_change(ncc_masters_cache_t *self, ncc_masters_cache_fn fn, void *arg);

#endif
