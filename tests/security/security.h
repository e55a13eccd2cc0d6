/* security: helpers of the tests in tests/security, which attack the running
 * system (scripts/test.sh starts it; docs/security.md): HTTP through libcurl
 * with full control of the method, the raw path, the headers and cookies;
 * the administrator's session, signed in once per test run with TOTP and
 * shared by every test through a private file; users of each role made
 * through the API; read-only SQL on the system's database; the source tree.
 *
 * Environment (scripts/test.sh sets all of it): NCC_TEST_GATEWAY_URL,
 * NCC_BOOTSTRAP_ADMIN_LOGIN / _PASSWORD / _TOTP_SECRET, NCC_DATABASE_URL
 * (NCC_DATABASE_OWNER_URL preferred for reading when set), NCC_SOURCE_DIR.
 * A missing setting fails the test (never skips it).
 *
 * Every function asserts what it needs with cr_assert: call them from a test. */
#ifndef NCC_SECURITY_H
#define NCC_SECURITY_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

/* ---- HTTP ------------------------------------------------------------------------- */

typedef struct {
    const char *method;         /* default GET */
    const char *path;           /* sent exactly as written (no dot-segment squashing) */
    const char *body;           /* or NULL */
    size_t body_len;            /* 0: strlen(body) */
    const char *content_type;   /* with a body; default application/json */
    const char *cookie;         /* ncc_session value to send, or NULL */
    const char *raw_cookie;     /* a whole Cookie header value instead */
    const char *csrf;           /* X-CSRF-Token, or NULL */
    const char *origin;         /* Origin, or NULL */
    const char *const *headers; /* more "Name: value" lines, NULL-terminated, or NULL */
    const char *host;           /* Host header instead of the URL's, or NULL */
} sec_req_t;

typedef struct {
    long status;   /* -1 when no HTTP answer came (connection refused or cut) */
    char *body;    /* never NULL */
    size_t len;    /* of body */
    char *headers; /* the raw header block, never NULL */
    cJSON *json;   /* the body parsed, or NULL */
} sec_resp_t;

/* NCC_TEST_GATEWAY_URL without a trailing slash (borrowed). */
const char *sec_gateway(void);

/* One request; the answer (free with sec_free). Does not assert the status. */
sec_resp_t sec_http(const sec_req_t *request);

void sec_free(sec_resp_t *response);

/* The first value of header `name` (caller frees), or NULL. */
char *sec_header(const sec_resp_t *response, const char *name);

/* How many header lines are named `name`. */
int sec_header_count(const sec_resp_t *response, const char *name);

/* error.code of an API error body, or NULL (borrowed). */
const char *sec_error_code(const sec_resp_t *response);

/* A string member of a JSON object, or NULL (borrowed). */
const char *sec_str(const cJSON *object, const char *name);

/* A number member of a JSON object, or -1. */
long sec_num(const cJSON *object, const char *name);

/* True when `text` contains `needle`, ignoring ASCII case. */
bool sec_contains_nocase(const char *text, const char *needle);

/* Percent-encodes every byte but [A-Za-z0-9._~-] (caller frees). */
char *sec_url_encode(const char *text);

/* `text` as a JSON string literal, quotes included (caller frees). */
char *sec_json_quote(const char *text);

/* ---- sessions and users -------------------------------------------------------------- */

typedef struct {
    char cookie[80];
    char csrf[80];
    char set_cookie[256]; /* the whole Set-Cookie header of the sign-in */
    long user_id;
    long version; /* the user's version at sign-in or creation */
    char login[72];
    char password[64];
    char role[16];
} sec_session_t;

/* POST /api/v1/session; on 200 fills *out (cookie, CSRF token, user id);
 * `presented_cookie` is sent along (NULL: none). Returns the status. */
long sec_sign_in(const char *login, const char *password, const char *totp,
                 const char *presented_cookie, sec_session_t *out);

/* The administrator's session: one sign-in with TOTP per test run, kept in
 * a private file (mode 0600) and checked with GET /api/v1/me before reuse.
 * Its TOTP step is reserved the way tests/e2e/lib.mjs reserveTotp does, so
 * the browser tests never meet a replayed code. Never sign this session out. */
void sec_admin(sec_session_t *out);

/* A login unique to this run: "sec-<tag>-<pid>-<time><random><n>" (letters,
 * digits, '-'); every user the security tests make has one. */
void sec_unique_login(const char *tag, char *out, size_t len);

/* A password the directory accepts (12+ characters, several kinds). */
void sec_new_password(char out[64]);

/* The administrator creates a user holding `role` (a unique login tagged with
 * `tag`), who then signs in: *out is that user's session. */
void sec_user(const sec_session_t *admin, const char *role, const char *tag, sec_session_t *out);

/* GET /api/v1/me with `session`: the status. */
long sec_me(const sec_session_t *session);

/* ---- the database (read only) -------------------------------------------------------- */

/* The first column of the first row of `sql` with up to 3 text parameters
 * ($1..$3; NULL ends the list) as a long. */
long sec_db_long(const char *sql, const char *p1, const char *p2, const char *p3);

/* The same as text (caller frees; NULL for SQL NULL or no row). */
char *sec_db_text(const char *sql, const char *p1, const char *p2, const char *p3);

/* ---- the source tree ---------------------------------------------------------------- */

/* NCC_SOURCE_DIR (borrowed). */
const char *sec_source_dir(void);

/* Calls fn(relative path, contents) for every regular file under
 * NCC_SOURCE_DIR/dir whose name ends with one of `suffixes` (NULL-terminated;
 * NULL: every file). Returns how many files were seen. */
typedef void (*sec_file_fn)(const char *path, const char *text, void *arg);
int sec_walk(const char *dir, const char *const *suffixes, sec_file_fn fn, void *arg);

/* `text` with C comments and string/char literals blanked (caller frees),
 * so that a search for a call finds only code. */
char *sec_c_code_only(const char *text);

#endif
