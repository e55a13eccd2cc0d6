/* ncc_system: the whole of ncc for one Criterion test: a database of the
 * test's own, real daemons (from NCC_TEST_BIN_DIR) on ephemeral ports, the
 * gateway's plain listener, fresh secrets, and HTTP requests as the bootstrap
 * administrator or another user. Every service has its ports from the start;
 * one not started answers nothing there. Failures are Criterion assertions.
 *
 *     static ncct_system_t s_sys;
 *     static void setup(void) { ncct_system_init(&s_sys, "test_calls"); ... }
 *     static void teardown(void) { ncct_system_teardown(&s_sys); }
 *     ...
 *     ncct_system_start(&s_sys, "directory", NULL);
 *     ncct_system_start_gateway(&s_sys, NULL);
 *     ncct_session_t admin;
 *     ncct_login_admin(&s_sys, &admin);
 *     ncct_resp_t r = ncct_request(&s_sys, &admin, "GET", "/api/v1/me", NULL);
 */
#ifndef NCC_SYSTEM_H
#define NCC_SYSTEM_H

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ncc_test.h"

#define NCCT_ADMIN_PASSWORD "Kuyakusho-Test-Pass-42"
#define NCCT_ADMIN_TOTP     "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
#define NCCT_PBX_SECRET     "pbx-test-secret-0123456789"
#define NCCT_MAX_SERVICES   16

typedef struct {
    const char *program; /* "ncc-calls" */
    pid_t pid;           /* 0 when not running */
    char log[200];
    int rpc, pub, health, http;
} ncct_daemon_t;

typedef struct {
    char tag[48];
    ncct_database_t db;
    ncct_daemon_t services[NCCT_MAX_SERVICES]; /* index as ncc_service_names */
    ncct_daemon_t copies[4];                   /* further copies (ncct_system_start_copy) */
    size_t n_copies;
    ncct_daemon_t gateway;
} ncct_system_t;

/* A signed-in user's cookie and CSRF token. */
typedef struct {
    char cookie[80];
    char csrf[80];
    int64_t user_id;
} ncct_session_t;

typedef struct {
    long status;
    char *body; /* never NULL */
    size_t len;
    char *headers; /* never NULL */
    cJSON *json;   /* the body parsed, or NULL */
} ncct_resp_t;

/* Ports, fresh secrets in the environment (NCC_BUS_ACTOR_KEY, NCC_DATA_KEYS,
 * NCC_BLIND_INDEX_KEY) and a fresh database <tag>_<pid>. */
void ncct_system_init(ncct_system_t *sys, const char *tag);

/* Starts ncc-<service> with `extra_env` (NULL-terminated, may be NULL) and
 * waits until it is ready. The directory gets the bootstrap administrator
 * (admin, NCCT_ADMIN_PASSWORD, NCCT_ADMIN_TOTP); the first start of it waits
 * until the administrator exists. */
void ncct_system_start(ncct_system_t *sys, const char *service, const char *const *extra_env);

/* Starts one more copy of ncc-<service> on ports of its own (the other
 * daemons keep talking to the first copy) and waits until it is ready. */
ncct_daemon_t *ncct_system_start_copy(ncct_system_t *sys, const char *service,
                                      const char *const *extra_env);

/* Starts the gateway (plain HTTP on 127.0.0.1, NCC_PBX_WEBHOOK_SECRET =
 * NCCT_PBX_SECRET) and waits until it is ready. */
void ncct_system_start_gateway(ncct_system_t *sys, const char *const *extra_env);

/* SIGTERM to one daemon: it must exit 0 without a sanitizer report. */
void ncct_daemon_stop(ncct_daemon_t *d);

/* The daemon of a service (ncc_service_names). */
ncct_daemon_t *ncct_service(ncct_system_t *sys, const char *service);

/* Every running daemon stopped cleanly (gateway first). */
void ncct_system_stop_all(ncct_system_t *sys);

/* Kills whatever still runs and drops the database (the suite's fini). */
void ncct_system_teardown(ncct_system_t *sys);

/* A request to the gateway. `session` may be NULL (no cookie); `body` NULL
 * for none (JSON otherwise); `headers` NULL-terminated extra header lines. */
ncct_resp_t ncct_request(ncct_system_t *sys, const ncct_session_t *session, const char *method,
                         const char *path, const char *body, const char *const *headers);
void ncct_resp_free(ncct_resp_t *resp);

/* The same with any body: `len` bytes sent as `content_type` (NULL body: none). */
ncct_resp_t ncct_request_raw(ncct_system_t *sys, const ncct_session_t *session, const char *method,
                             const char *path, const char *body, size_t len,
                             const char *content_type, const char *const *headers);

/* The value of header `name` of an answer (caller frees), or NULL. */
char *ncct_header(const ncct_resp_t *resp, const char *name);

/* Asserts the status (and the error code, when not NULL). */
void ncct_expect(const ncct_resp_t *resp, long status, const char *code, const char *what);

/* A POST signed as the PBX signs it (X-NCC-Signature over the body at time
 * t with `secret`). */
ncct_resp_t ncct_signed_post(ncct_system_t *sys, const char *path, const char *body,
                             const char *secret, int64_t t);

/* Signs in (password, and TOTP when totp_secret is not NULL). */
void ncct_login(ncct_system_t *sys, ncct_session_t *out, const char *login, const char *password,
                const char *totp_secret);
void ncct_login_admin(ncct_system_t *sys, ncct_session_t *out);

/* Creates a user as the administrator (roles a JSON array text: "[\"operator\"]")
 * and returns its id. */
int64_t ncct_create_user(ncct_system_t *sys, const ncct_session_t *admin, const char *login,
                         const char *roles_json, const char *extension, const char *password);

/* The first column of the first row of `sql` as a long (as the schema owner). */
long ncct_owner_long(ncct_system_t *sys, const char *sql);

/* A browser's push stream (GET /api/v1/stream) read on a thread of its own. */
typedef struct {
    pthread_t thread;
    pthread_mutex_t lock;
    char *data; /* what arrived, NUL-terminated */
    size_t len;
    atomic_bool stop;
    char url[256], cookie[128];
} ncct_stream_t;

/* Opens the stream of `session` on the gateway. */
void ncct_stream_open(ncct_system_t *sys, ncct_stream_t *s, const ncct_session_t *session);
/* Waits up to timeout_ms for `text` in what arrived. */
bool ncct_stream_wait(ncct_stream_t *s, const char *text, int timeout_ms);
/* What arrived so far (caller frees). */
char *ncct_stream_text(ncct_stream_t *s);
/* The data lines of every `event` that arrived, joined (caller frees). */
char *ncct_stream_events(ncct_stream_t *s, const char *event);
void ncct_stream_close(ncct_stream_t *s);

/* A string member of a JSON object, or NULL. */
const char *ncct_str(const cJSON *object, const char *name);

#endif
