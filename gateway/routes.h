/* routes: the /api/v1 route table. Every endpoint is one line of data
 * (gw_routes in routes.c): method, path pattern with {params}, the service
 * that answers, the protobuf request type, the roles allowed and flags. The
 * API handler (api.c) treats every line the same way; see docs/gateway.md. */
#ifndef GW_ROUTES_H
#define GW_ROUTES_H

#include <stdbool.h>
#include <stddef.h>

#include "ncc/roles.h"

/* Route flags. */
enum {
    GW_ROUTE_CREATED = 1u << 0, /* success answers 201 Created (POST that creates) */
    GW_ROUTE_PUBLIC = 1u << 1,  /* no session needed (health, public FAQ, webhooks) */
};

/* Special endpoints that are not one bus request (e.g. the health fan-out). */
typedef enum {
    GW_ROUTE_GENERIC = 0, /* JSON -> request_type -> service -> reply as JSON */
    GW_ROUTE_HEALTH,      /* HealthRequest to every service at once -> HealthSummary */
} gw_route_kind_t;

typedef struct {
    const char *method;       /* "GET", "POST", "PUT", "PATCH", "DELETE" */
    const char *pattern;      /* "/api/v1/records/{id}": literal segments and {name} */
    const char *service;      /* "history", or "{name}": the service named by that path param */
    const char *request_type; /* protobuf full name, "ncc.Ping"; NULL for special kinds */
    unsigned roles;       /* NCC_ROLE_* mask allowed (ncc/roles.h); enforced once sessions exist */
    unsigned flags;       /* GW_ROUTE_* */
    gw_route_kind_t kind; /* GW_ROUTE_GENERIC for nearly every route */
} gw_route_t;

/* The table, ending with a line whose method is NULL. */
extern const gw_route_t gw_routes[];

#define GW_ROUTE_MAX_PARAMS 8

/* A path parameter: name and value point into the pattern and the path. */
typedef struct {
    const char *name; /* borrowed from the pattern, name_len bytes */
    size_t name_len;
    const char *value; /* borrowed from the path, value_len bytes (never empty) */
    size_t value_len;
} gw_route_param_t;

typedef struct {
    const gw_route_t *route;
    gw_route_param_t params[GW_ROUTE_MAX_PARAMS];
    size_t param_count;
} gw_route_match_t;

/* Finds the route for `method` and `path` (no query string) in `table`.
 * 0 with *ret_match filled (pointing into table and path);
 * -ENOENT when no pattern matches the path (404);
 * -EOPNOTSUPP when a pattern matches but not with this method (405): `allow`
 * (allow_len bytes, may be NULL) then lists the methods that would, as for
 * the Allow header. */
int gw_routes_find(const gw_route_t *table, const char *method, const char *path,
                   gw_route_match_t *ret_match, char *allow, size_t allow_len);

/* The value of path parameter `name` copied into buf (NUL-terminated), or
 * NULL when the match has none or it does not fit. */
const char *gw_route_param(const gw_route_match_t *match, const char *name, char *buf, size_t len);

/* Checks a table: patterns start with "/api/v1/", params are well formed and
 * unique, a "{name}" service names a param of its pattern, no two lines share
 * method and pattern. 0, or -EINVAL with the offending line index in
 * *ret_line. Run at start so a bad line fails loudly. */
int gw_routes_check(const gw_route_t *table, size_t *ret_line);

#endif
