/* ncc_test: helpers for tests that start real daemons and talk HTTP to them. */
#ifndef NCC_TEST_H
#define NCC_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Where the daemons under test are: NCC_TEST_BIN_DIR, default "build/asan/bin". */
const char *ncct_bin_dir(void);

/* A TCP port on 127.0.0.1 that was free a moment ago, below the ephemeral
 * range and not handed out before by this process. */
int ncct_free_port(void);

/* Starts `program` (a name in ncct_bin_dir) with the current environment plus
 * `env` (NULL-terminated "KEY=VALUE" strings), stdout and stderr appended to
 * `log_path`. Returns the pid or -1. */
pid_t ncct_spawn(const char *program, const char *const *env, const char *log_path);

/* Waits up to timeout_ms for pid to exit. Returns its wait status, or -1 on
 * time-out (the process is then left running). */
int ncct_wait_exit(pid_t pid, int timeout_ms);

/* Sends SIGKILL and reaps. */
void ncct_kill(pid_t pid);

/* GET (or another method with a body) through libcurl, certificates not
 * verified (self-signed). Returns the HTTP status, or -1 when no answer came.
 * *ret_body (may be NULL) gets the body; caller frees. */
long ncct_http(const char *method, const char *url, const char *body, char **ret_body);

/* Polls url until it answers `status` or timeout_ms passes. */
bool ncct_wait_status(const char *url, long status, int timeout_ms);

/* Reads a whole file (caller frees) or NULL. */
char *ncct_read_file(const char *path);

/* A database of one test's own on the cluster of NCC_DATABASE_URL, made with
 * `scripts/pg.sh fresh` (owned by ncc_owner, used as ncc: the roles of a real
 * deployment). NCC_SOURCE_DIR names the repository (default "."). */
typedef struct {
    char name[64];       /* <prefix>_<pid> */
    char url[512];       /* the application role's URL */
    char owner_url[512]; /* the schema owner's URL */
} ncct_database_t;

/* Creates (or re-creates) <prefix>_<pid>. False, with pg.sh's words on
 * stderr, when NCC_DATABASE_URL is unset or pg.sh fails. */
bool ncct_database_fresh(ncct_database_t *db, const char *prefix);

/* Drops it (WITH FORCE, retried while daemons let go); safe to call twice. */
void ncct_database_drop(ncct_database_t *db);

/* Milliseconds on a monotonic clock. */
long long ncct_now_ms(void);

/* A fresh random 32-byte key in base64 (44 characters), as NCC_DATA_KEYS,
 * NCC_BUS_ACTOR_KEY and NCC_BLIND_INDEX_KEY take them. */
void ncct_random_key(char out[64]);

/* A growing, NUL-terminated buffer for libcurl's write and header callbacks:
 * CURLOPT_WRITEFUNCTION ncct_curl_collect with CURLOPT_WRITEDATA a
 * zero-initialised ncct_buffer_t (free data when done). */
typedef struct {
    char *data;
    size_t len;
} ncct_buffer_t;
size_t ncct_curl_collect(char *ptr, size_t size, size_t nmemb, void *buffer);

#endif
