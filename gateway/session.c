/* session: the session store and its maintenance thread (session.h). */
#include "session.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "ncc/crypto.h"
#include "ncc/log.h"
#include "ncc/roles.h"

#define S_RETRY_FIRST_MS 250
#define S_PURGE_MS       60000
#define S_TOUCH_MAX_S    60.0
#define S_USER_AGENT_MAX 256

extern const ncc_migration_t ncc_sql_gateway[];

struct gw_sessions {
    char *database_url; /* owned */
    char *owner_url;    /* owned; NULL = migrate through database_url */
    int retry_max_ms;   /* back-off ceiling */
    atomic_int idle_s;  /* idle timeout (reloadable) */
    atomic_int max_s;   /* absolute timeout (reloadable) */
    atomic_bool ready;  /* the schema is migrated */
    gw_sessions_ready_fn on_ready;
    void *on_ready_arg;
    pthread_t thread; /* maintenance */
    bool threaded;    /* thread started (joined by destroy) */
    pthread_mutex_t lock;
    pthread_cond_t wake; /* signalled by destroy */
    bool stopping;       /* under lock */
};

/* ---- maintenance thread -------------------------------------------------------- */

/* Waits up to ms or until destroy; true when stopping. */
static bool s_sleep(gw_sessions_t *self, int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&self->lock);
    while (!self->stopping) {
        if (pthread_cond_timedwait(&self->wake, &self->lock, &until) == ETIMEDOUT)
            break;
    }
    bool stopping = self->stopping;
    pthread_mutex_unlock(&self->lock);
    return stopping;
}

static int s_migrate(gw_sessions_t *self, ncc_db_t *db)
{
    int rc = ncc_db_connect(db);
    if (rc == 0)
        rc = ncc_db_migrate_with_owner(db, self->owner_url, GW_SESSION_SCHEMA, ncc_sql_gateway);
    return rc;
}

static void s_purge(gw_sessions_t *self, ncc_db_t *db)
{
    char idle[16];
    snprintf(idle, sizeof idle, "%d", atomic_load(&self->idle_s));
    const char *params[] = {idle};
    PGresult *res = ncc_db_exec(db,
                                "DELETE FROM sessions WHERE expires_at <= now() "
                                "OR last_seen_at < now() - make_interval(secs => $1::int)",
                                1, params, NULL);
    if (!res) {
        ncc_warn("session.purge_failed", "%s", ncc_db_error(db));
        return;
    }
    const char *count = PQcmdTuples(res);
    if (count[0] && strcmp(count, "0") != 0)
        ncc_info("session.purged", "%s ended sessions removed", count);
    PQclear(res);
}

static void *s_run(void *arg)
{
    gw_sessions_t *self = arg;
    ncc_db_t *db = ncc_db_new(self->database_url, GW_SESSION_SCHEMA);
    int retry_ms = S_RETRY_FIRST_MS;
    if (!db) {
        ncc_error("session.setup_failed", "out of memory: sessions are unavailable");
        return NULL;
    }
    /* Connect and migrate, with back-off, until done or stopped. */
    while (!atomic_load(&self->ready)) {
        if (s_migrate(self, db) == 0) {
            ncc_info("db.migrated", "schema %s is current", GW_SESSION_SCHEMA);
            atomic_store(&self->ready, true);
            if (self->on_ready)
                self->on_ready(self->on_ready_arg);
            break;
        }
        ncc_warn("db.unavailable", "sessions unavailable, retrying in %d ms: %s", retry_ms,
                 ncc_db_error(db));
        if (s_sleep(self, retry_ms))
            goto out;
        retry_ms = retry_ms * 2 > self->retry_max_ms ? self->retry_max_ms : retry_ms * 2;
    }
    /* Then the periodic clean-up. */
    for (;;) {
        s_purge(self, db);
        if (s_sleep(self, S_PURGE_MS))
            break;
    }
out:
    ncc_db_destroy(&db);
    return NULL;
}

/* ---- life cycle ------------------------------------------------------------------- */

gw_sessions_t *gw_sessions_new(const gw_sessions_options_t *options)
{
    gw_sessions_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    pthread_mutex_init(&self->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&self->wake, &attr);
    pthread_condattr_destroy(&attr);
    self->database_url = strdup(options->database_url ? options->database_url : "");
    if (options->owner_url && *options->owner_url)
        self->owner_url = strdup(options->owner_url);
    if (!self->database_url || (options->owner_url && *options->owner_url && !self->owner_url))
        goto fail;
    self->retry_max_ms = options->retry_max_ms > 0 ? options->retry_max_ms : 5000;
    gw_sessions_set_limits(self, options->idle_s, options->max_s);
    self->on_ready = options->on_ready;
    self->on_ready_arg = options->on_ready_arg;
    if (pthread_create(&self->thread, NULL, s_run, self) != 0)
        goto fail;
    self->threaded = true;
    return self;
fail:
    gw_sessions_destroy(&self);
    return NULL;
}

void gw_sessions_destroy(gw_sessions_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gw_sessions_t *self = *self_p;
    if (self->threaded) {
        pthread_mutex_lock(&self->lock);
        self->stopping = true;
        pthread_cond_broadcast(&self->wake);
        pthread_mutex_unlock(&self->lock);
        pthread_join(self->thread, NULL);
    }
    pthread_cond_destroy(&self->wake);
    pthread_mutex_destroy(&self->lock);
    if (self->database_url)
        OPENSSL_cleanse(self->database_url, strlen(self->database_url));
    if (self->owner_url)
        OPENSSL_cleanse(self->owner_url, strlen(self->owner_url));
    free(self->database_url);
    free(self->owner_url);
    free(self);
    *self_p = NULL;
}

bool gw_sessions_ready(gw_sessions_t *self)
{
    return self && atomic_load(&self->ready);
}

void gw_sessions_set_limits(gw_sessions_t *self, int idle_s, int max_s)
{
    atomic_store(&self->idle_s, idle_s > 0 ? idle_s : 1800);
    atomic_store(&self->max_s, max_s > 0 ? max_s : 43200);
}

ncc_db_t *gw_sessions_db_new(gw_sessions_t *self)
{
    return ncc_db_new(self->database_url, GW_SESSION_SCHEMA);
}

/* ---- sessions ----------------------------------------------------------------------- */

bool gw_session_token_valid(const char *value)
{
    if (!value || strlen(value) != GW_SESSION_TOKEN_LEN)
        return false;
    for (const char *p = value; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

/* Copies at most len-1 bytes of text, NUL-terminated, not cutting a UTF-8
 * sequence in two. */
static void s_copy(char *out, size_t len, const char *text)
{
    size_t n = strlen(text);
    if (n >= len) {
        n = len - 1;
        while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(out, text, n);
    out[n] = '\0';
}

static void s_fill(gw_session_t *session, const char *id_hash, int64_t user_id, const char *login,
                   const char *name, unsigned roles, const char *csrf)
{
    memset(session, 0, sizeof *session);
    snprintf(session->id_hash, sizeof session->id_hash, "%s", id_hash);
    session->user_id = user_id;
    snprintf(session->user_id_text, sizeof session->user_id_text, "%" PRId64, user_id);
    s_copy(session->login, sizeof session->login, login);
    s_copy(session->name, sizeof session->name, name);
    session->roles = roles;
    if (ncc_roles_format(roles, session->roles_text, sizeof session->roles_text) < 0)
        session->roles_text[0] = '\0';
    snprintf(session->csrf_token, sizeof session->csrf_token, "%s", csrf);
}

int gw_session_find(gw_sessions_t *self, ncc_db_t *db, const char *cookie,
                    gw_session_t *ret_session)
{
    if (!gw_session_token_valid(cookie))
        return -ENOENT;
    char id_hash[65], idle[32], touch[32];
    ncc_sha256_hex(cookie, GW_SESSION_TOKEN_LEN, id_hash);
    int idle_s = atomic_load(&self->idle_s);
    double touch_s = idle_s / 4.0 < S_TOUCH_MAX_S ? idle_s / 4.0 : S_TOUCH_MAX_S;
    snprintf(idle, sizeof idle, "%d", idle_s);
    snprintf(touch, sizeof touch, "%.3f", touch_s);
    const char *params[] = {id_hash, idle, touch};
    PGresult *res = ncc_db_exec(
        db,
        "SELECT user_id, login, name, roles, csrf_token, "
        "last_seen_at >= now() - make_interval(secs => $2::int) AND expires_at > now(), "
        "last_seen_at < now() - make_interval(secs => $3::double precision) "
        "FROM sessions WHERE id_hash = $1",
        3, params, NULL);
    if (!res)
        return -EIO;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return -ENOENT;
    }
    bool alive = PQgetvalue(res, 0, 5)[0] == 't';
    bool stale = PQgetvalue(res, 0, 6)[0] == 't';
    unsigned roles = ncc_roles_parse(PQgetvalue(res, 0, 3)) & NCC_ROLES_USERS;
    if (alive)
        s_fill(ret_session, id_hash, strtoll(PQgetvalue(res, 0, 0), NULL, 10),
               PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2), roles, PQgetvalue(res, 0, 4));
    PQclear(res);
    const char *key[] = {id_hash};
    if (!alive) {
        if (ncc_db_run(db, "DELETE FROM sessions WHERE id_hash = $1", 1, key) < 0)
            return -EIO;
        return -ENOENT;
    }
    if (stale &&
        ncc_db_run(db, "UPDATE sessions SET last_seen_at = now() WHERE id_hash = $1", 1, key) < 0)
        return -EIO;
    return 0;
}

int gw_session_alive(gw_sessions_t *self, ncc_db_t *db, const char *id_hash)
{
    char idle[32];
    snprintf(idle, sizeof idle, "%d", atomic_load(&self->idle_s));
    const char *params[] = {id_hash, idle};
    PGresult *res = ncc_db_exec(db,
                                "SELECT 1 FROM sessions WHERE id_hash = $1 AND last_seen_at >= "
                                "now() - make_interval(secs => $2::int) AND expires_at > now()",
                                2, params, NULL);
    if (!res)
        return -EIO;
    int alive = PQntuples(res) > 0;
    PQclear(res);
    return alive;
}

/* The user agent as printable ASCII, at most S_USER_AGENT_MAX bytes. */
static void s_clean_agent(const char *agent, char out[S_USER_AGENT_MAX + 1])
{
    size_t n = 0;
    for (const char *p = agent ? agent : ""; *p && n < S_USER_AGENT_MAX; p++)
        out[n++] = (*p >= 0x20 && *p <= 0x7e) ? *p : '?';
    out[n] = '\0';
}

int gw_session_create(gw_sessions_t *self, ncc_db_t *db, const gw_session_user_t *user,
                      char cookie_out[GW_SESSION_TOKEN_LEN + 1], gw_session_t *ret_session)
{
    char cookie[GW_SESSION_TOKEN_LEN + 1], csrf[GW_SESSION_TOKEN_LEN + 1], id_hash[65];
    char user_id[24], roles[64], max[16], agent[S_USER_AGENT_MAX + 1];
    int rc = -EPROTO;
    if (ncc_random_hex(GW_SESSION_TOKEN_LEN / 2, cookie) < 0 ||
        ncc_random_hex(GW_SESSION_TOKEN_LEN / 2, csrf) < 0)
        goto out;
    ncc_sha256_hex(cookie, GW_SESSION_TOKEN_LEN, id_hash);
    if (!id_hash[0])
        goto out;
    snprintf(user_id, sizeof user_id, "%" PRId64, user->user_id);
    if (ncc_roles_format(user->roles, roles, sizeof roles) < 0)
        roles[0] = '\0';
    snprintf(max, sizeof max, "%d", atomic_load(&self->max_s));
    s_clean_agent(user->user_agent, agent);
    const char *params[] = {
        id_hash, user_id, user->login ? user->login : "",     user->name ? user->name : "",
        roles,   csrf,    user->address ? user->address : "", agent,
        max};
    rc = -EIO;
    if (ncc_db_run(db,
                   "INSERT INTO sessions (id_hash, user_id, login, name, roles, csrf_token, "
                   "address, user_agent, expires_at) VALUES ($1, $2::bigint, $3, $4, $5, $6, $7, "
                   "$8, now() + make_interval(secs => $9::int))",
                   9, params) < 0)
        goto out;
    s_fill(ret_session, id_hash, user->user_id, params[2], params[3], user->roles, csrf);
    memcpy(cookie_out, cookie, sizeof cookie);
    rc = 0;
out:
    OPENSSL_cleanse(cookie, sizeof cookie);
    OPENSSL_cleanse(csrf, sizeof csrf);
    return rc;
}

int gw_session_delete(ncc_db_t *db, const char *id_hash)
{
    const char *params[] = {id_hash};
    return ncc_db_run(db, "DELETE FROM sessions WHERE id_hash = $1", 1, params) < 0 ? -EIO : 0;
}

int gw_session_delete_cookie(ncc_db_t *db, const char *cookie)
{
    if (!gw_session_token_valid(cookie))
        return 0;
    char id_hash[65];
    ncc_sha256_hex(cookie, GW_SESSION_TOKEN_LEN, id_hash);
    return gw_session_delete(db, id_hash);
}

int64_t gw_session_delete_user(ncc_db_t *db, int64_t user_id, const char *keep_id_hash)
{
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, user_id);
    const char *params[] = {id, keep_id_hash ? keep_id_hash : ""};
    PGresult *res = ncc_db_exec(
        db, "DELETE FROM sessions WHERE user_id = $1::bigint AND id_hash <> $2", 2, params, NULL);
    if (!res)
        return -EIO;
    int64_t count = strtoll(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return count;
}

int gw_session_update_user(ncc_db_t *db, int64_t user_id, const char *login, const char *name,
                           unsigned roles)
{
    char id[24], roles_text[64];
    snprintf(id, sizeof id, "%" PRId64, user_id);
    if (ncc_roles_format(roles, roles_text, sizeof roles_text) < 0)
        return -EIO;
    const char *params[] = {id, login ? login : "", name ? name : "", roles_text};
    return ncc_db_run(db,
                      "UPDATE sessions SET login = $2, name = $3, roles = $4 "
                      "WHERE user_id = $1::bigint",
                      4, params) < 0
               ? -EIO
               : 0;
}
