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
    GW_ROUTE_CREATED = 1u << 0,   /* success answers 201 Created (POST that creates) */
    GW_ROUTE_PUBLIC = 1u << 1,    /* no session needed (health, public FAQ, webhooks) */
    GW_ROUTE_OPEN = 1u << 2,      /* reachable from any address, outside the staff allow-list
                                     (public resident routes, signed webhooks, health); only
                                     with GW_ROUTE_PUBLIC */
    GW_ROUTE_AUDIT = 1u << 3,     /* reads personal data, changes or exports: every answer (and
                                     every refused attempt of a signed-in user) is written to the
                                     audit log under `action`; no audit, no answer (503) */
    GW_ROUTE_USER_SYNC = 1u << 4, /* the reply is an ncc.directory.User just changed: that
                                     user's sessions take its login, name and roles, and end
                                     when it is retired or its password was set */
    GW_ROUTE_RAW_BODY = 1u << 5,  /* the body is not JSON (a CSV file, text/csv or text/plain):
                                     it goes as sent into the request's string or bytes field
                                     raw->field; query and path params fill the rest */
    GW_ROUTE_CSV_REPLY = 1u << 6, /* the answer is a file, not JSON: the reply's string or bytes
                                     field raw->field is the body, as text/csv with the charset
                                     of the reply's `encoding` field (utf-8, shift_jis) and an
                                     attachment named by its `filename` field */
    GW_ROUTE_SIGNED = 1u << 7,    /* a machine's request (the PBX), signed with
                                     NCC_PBX_WEBHOOK_SECRET in X-NCC-Signature instead of a
                                     session (with GW_ROUTE_PUBLIC | GW_ROUTE_OPEN); sent to
                                     the service as actor "pbx", role system */
    GW_ROUTE_CLIENT_ADDRESS = 1u << 8, /* public route: the bus envelope carries the client's
                                          address (actor_address, no actor), so the service can
                                          limit per address (residents' FAQ votes) */
    GW_ROUTE_CSV_STREAM = 1u << 9,     /* with GW_ROUTE_CSV_REPLY: the file is asked page by page
                                          (the request's `cursor`, the reply's `cursor` and `done`)
                                          and written as it comes, chunked, never whole in memory
                                          (export.h); audited before the first byte */
};

/* What a GW_ROUTE_RAW_BODY or GW_ROUTE_CSV_REPLY route needs beyond a line. */
typedef struct {
    const char *field;     /* the request field the body goes into (RAW_BODY), or the reply
                              field that is the answer (CSV_REPLY) */
    size_t max_body_bytes; /* RAW_BODY: this route's body limit (0: NCC_MAX_BODY_BYTES) */
    int timeout_ms;        /* this route's bus timeout (0: NCC_BUS_TIMEOUT_MS) */
} gw_route_raw_t;

/* Special endpoints that are not one bus request (e.g. the health fan-out). */
typedef enum {
    GW_ROUTE_GENERIC = 0, /* JSON -> request_type -> service -> reply as JSON */
    GW_ROUTE_HEALTH,      /* HealthRequest to every service at once -> HealthSummary */
    GW_ROUTE_LOGIN,       /* POST /api/v1/session: Authenticate, then a new session */
    GW_ROUTE_LOGOUT,      /* DELETE /api/v1/session: ends this session */
    GW_ROUTE_LOGOUT_ALL,  /* DELETE /api/v1/sessions: ends every session of the user */
    GW_ROUTE_ME,          /* GET /api/v1/me: the user (GetUser) and the CSRF token */
    GW_ROUTE_STREAM,      /* GET /api/v1/stream: the push stream (push.h) */
    GW_ROUTE_FILE,        /* a file in parts from the service (a recording: file.h) */
} gw_route_kind_t;

typedef struct {
    const char *method;       /* "GET", "POST", "PUT", "PATCH", "DELETE" */
    const char *pattern;      /* "/api/v1/records/{id}": literal segments and {name} */
    const char *service;      /* "history", or "{name}": the service named by that path param */
    const char *request_type; /* protobuf full name, "ncc.Ping"; NULL for special kinds */
    unsigned roles;         /* NCC_ROLE_* mask allowed (ncc/roles.h), checked against the session */
    unsigned flags;         /* GW_ROUTE_* */
    gw_route_kind_t kind;   /* GW_ROUTE_GENERIC for nearly every route */
    const char *action;     /* audit action ("user.update") with GW_ROUTE_AUDIT, else NULL */
    const char *self_field; /* request field set to the signed-in user's id, over anything
                               the client sent ("user_id"), or NULL */
    const gw_route_raw_t *raw; /* GW_ROUTE_RAW_BODY / GW_ROUTE_CSV_REPLY routes, else NULL */
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
 * method and pattern, a route that is not public admits some role,
 * GW_ROUTE_OPEN only on public routes, an action (a-z 0-9 . _) exactly on
 * GW_ROUTE_AUDIT routes, a self_field only on routes with a session, every
 * route under /api/v1/public/ or /api/v1/pbx/ public and open, and `raw`
 * (with a field) exactly on routes with one of GW_ROUTE_RAW_BODY (POST, PUT,
 * PATCH only) and GW_ROUTE_CSV_REPLY. 0, or
 * -EINVAL with the offending line index in *ret_line. Run at start so a bad
 * line fails loudly. */
int gw_routes_check(const gw_route_t *table, size_t *ret_line);

#endif
