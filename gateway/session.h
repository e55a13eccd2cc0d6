/* session: the gateway's sessions in PostgreSQL (schema auth, table
 * sessions; gateway/sql/). A session is named by a 256-bit random cookie
 * value of which only the SHA-256 is stored; it ends after an idle time
 * and, used or not, an absolute time after sign-in.
 *
 * gw_sessions_t is the store's shared part: settings, readiness, and one
 * maintenance thread with its own connection that connects and migrates at
 * start (retrying with back-off while the database is down) and then purges
 * ended sessions every minute. The other functions run on a civetweb worker
 * with that worker's own ncc_db_t (a connection belongs to one thread). */
#ifndef GW_SESSION_H
#define GW_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ncc/db.h"

/* The schema the gateway owns. */
#define GW_SESSION_SCHEMA "auth"

/* Name of the session cookie. */
#define GW_SESSION_COOKIE "ncc_session"

/* A cookie value and a CSRF token: 64 lower-case hex characters. */
#define GW_SESSION_TOKEN_LEN 64

typedef struct gw_sessions gw_sessions_t;

/* One session as a request sees it. */
typedef struct {
    char id_hash[65];      /* SHA-256 hex of the cookie value */
    int64_t user_id;       /* the directory's user id */
    char user_id_text[24]; /* the same in decimal (envelope actor_id) */
    char login[136];       /* the user's login */
    char name[520];        /* the user's display name */
    unsigned roles;        /* NCC_ROLE_* mask */
    char roles_text[64];   /* the same as ncc_roles_format writes it (envelope actor_role) */
    char csrf_token[65];   /* X-CSRF-Token must equal this */
} gw_session_t;

/* Called once, from the maintenance thread, when the schema is migrated. */
typedef void (*gw_sessions_ready_fn)(void *arg);

typedef struct {
    const char *database_url; /* copied */
    const char *owner_url;    /* copied; NULL or "": migrate through database_url */
    int retry_max_ms;         /* ceiling of the connection back-off */
    int idle_s;               /* idle timeout */
    int max_s;                /* absolute timeout */
    gw_sessions_ready_fn on_ready;
    void *on_ready_arg;
} gw_sessions_options_t;

/* Starts the maintenance thread. NULL on allocation or thread failure. */
gw_sessions_t *gw_sessions_new(const gw_sessions_options_t *options);

/* Stops the maintenance thread (waiting for a connection attempt in
 * progress, at most its connect timeout) and frees. NULL-safe. */
void gw_sessions_destroy(gw_sessions_t **self_p);

/* True once the schema is migrated (sessions can be used). */
bool gw_sessions_ready(gw_sessions_t *self);

/* SIGHUP: new timeouts, used from the next request on. */
void gw_sessions_set_limits(gw_sessions_t *self, int idle_s, int max_s);

/* A connection handle for the calling worker thread (not yet connected:
 * ncc_db_exec connects on first use). Caller destroys. NULL on allocation
 * failure. */
ncc_db_t *gw_sessions_db_new(gw_sessions_t *self);

/* True for a well-formed cookie value or CSRF token (64 lower-case hex). */
bool gw_session_token_valid(const char *value);

/* The session named by `cookie` into *ret_session. 0; -ENOENT when there is
 * none, the value is malformed, or it has ended (an ended row is deleted);
 * -EIO when the database fails. last_seen_at is written at most once per
 * min(60 s, idle timeout / 4), so that it costs no write per request. */
int gw_session_find(gw_sessions_t *self, ncc_db_t *db, const char *cookie,
                    gw_session_t *ret_session);

/* Whether the session `id_hash` is still alive (not ended, not idle past the
 * timeout), without counting as activity (an open push stream does not keep
 * a session alive). 1, 0, or -EIO. */
int gw_session_alive(gw_sessions_t *self, ncc_db_t *db, const char *id_hash);

/* The user a new session is for (strings borrowed). */
typedef struct {
    int64_t user_id;
    const char *login;
    const char *name;
    unsigned roles;
    const char *address;    /* the client's address */
    const char *user_agent; /* as sent; kept as printable ASCII, at most 256 bytes */
} gw_session_user_t;

/* Creates a session with a new random cookie value (written into
 * cookie_out) and CSRF token; *ret_session describes it. 0, -EIO (database)
 * or -EPROTO (no randomness). */
int gw_session_create(gw_sessions_t *self, ncc_db_t *db, const gw_session_user_t *user,
                      char cookie_out[GW_SESSION_TOKEN_LEN + 1], gw_session_t *ret_session);

/* Ends the session named by its id hash. 0 or -EIO. */
int gw_session_delete(ncc_db_t *db, const char *id_hash);

/* Ends the session named by a cookie value (a malformed one names none). 0 or -EIO. */
int gw_session_delete_cookie(ncc_db_t *db, const char *cookie);

/* Ends every session of `user_id` except the one whose id hash is
 * `keep_id_hash` (NULL: all). The number ended, or -EIO. */
int64_t gw_session_delete_user(ncc_db_t *db, int64_t user_id, const char *keep_id_hash);

/* The user's sessions take a new login, name and roles (after an
 * administrator changed them). 0 or -EIO. */
int gw_session_update_user(ncc_db_t *db, int64_t user_id, const char *login, const char *name,
                           unsigned roles);

#endif
