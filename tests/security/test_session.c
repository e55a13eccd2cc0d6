/* Sessions, CSRF, caching and redirects on the running system (IPA: session
 * management flaws, CSRF, caching of secrets, open redirect): a planted
 * cookie is never the session after sign-in, a copied cookie dies with the
 * sign-out, cookie flags and entropy, state changes need the session's
 * CSRF token and the site's own Origin, every API answer is no-store, and
 * no redirect leaves the site. docs/security.md maps these tests to the IPA
 * list. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>
#include <openssl/sha.h>

#include "security.h"

static void s_random_hex(char out[65])
{
    unsigned char raw[32];
    cr_assert_eq(RAND_bytes(raw, sizeof raw), 1);
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

static void s_sha256_hex(const char *text, char out[65])
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)text, strlen(text), digest);
    for (size_t i = 0; i < sizeof digest; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

static bool s_is_hex64(const char *text)
{
    return text && strlen(text) == 64 && strspn(text, "0123456789abcdef") == 64;
}

/* Rows of auth.sessions whose id_hash is `value`. */
static long s_session_rows(const char *value)
{
    return sec_db_long("SELECT count(*) FROM auth.sessions WHERE id_hash = $1", value, NULL, NULL);
}

/* DELETE path with the session (and its CSRF token when `with_csrf`). */
static long s_delete(const char *path, const sec_session_t *s, bool with_csrf,
                     char **ret_set_cookie)
{
    sec_resp_t resp = sec_http(&(sec_req_t){
        .method = "DELETE", .path = path, .cookie = s->cookie, .csrf = with_csrf ? s->csrf : NULL});
    long status = resp.status;
    if (ret_set_cookie)
        *ret_set_cookie = sec_header(&resp, "Set-Cookie");
    sec_free(&resp);
    return status;
}

/* ---- session management ---------------------------------------------------------------- */

Test(session, a_planted_or_presented_cookie_is_never_the_session_after_sign_in, .timeout = 60)
{
    sec_session_t admin, op, other, after;
    sec_admin(&admin);
    sec_user(&admin, "operator", "fix", &op);
    sec_user(&admin, "staff", "fix", &other);

    /* A value the attacker made up and planted in the victim's browser. */
    char planted[65];
    s_random_hex(planted);
    cr_assert_eq(sec_sign_in(op.login, op.password, NULL, planted, &after), 200);
    cr_assert_str_neq(after.cookie, planted, "the planted cookie became the session");
    sec_session_t planted_session = {0};
    snprintf(planted_session.cookie, sizeof planted_session.cookie, "%s", planted);
    cr_assert_eq(sec_me(&planted_session), 401);
    cr_assert_eq(sec_me(&after), 200);

    /* A live session (the attacker's own) presented at someone's sign-in ends. */
    sec_session_t victim;
    cr_assert_eq(sec_sign_in(op.login, op.password, NULL, other.cookie, &victim), 200);
    cr_assert_str_neq(victim.cookie, other.cookie);
    cr_assert_eq(sec_me(&other), 401, "the session presented at sign-in still works");
    cr_assert_eq(sec_me(&victim), 200);
}

Test(session, a_copied_cookie_is_dead_after_sign_out, .timeout = 60)
{
    sec_session_t admin, op;
    sec_admin(&admin);
    sec_user(&admin, "operator", "steal", &op);
    sec_session_t stolen = op; /* what an attacker copied from the victim */
    char hash[65];
    s_sha256_hex(op.cookie, hash);
    cr_assert_eq(s_session_rows(hash), 1);

    char *set_cookie = NULL;
    cr_assert_eq(s_delete("/api/v1/session", &op, true, &set_cookie), 204);
    cr_assert_not_null(set_cookie, "sign-out clears the cookie");
    cr_assert(strncmp(set_cookie, "ncc_session=;", 13) == 0 && strstr(set_cookie, "Max-Age=0"),
              "%s", set_cookie);
    free(set_cookie);

    cr_assert_eq(sec_me(&stolen), 401, "the copied cookie still works after sign-out");
    cr_assert_eq(s_delete("/api/v1/session", &stolen, true, NULL), 401);
    sec_resp_t resp = sec_http(&(sec_req_t){.method = "POST",
                                            .path = "/api/v1/me/password",
                                            .body = "{\"current_password\":\"x\","
                                                    "\"new_password\":\"Another-Pass-42!\"}",
                                            .cookie = stolen.cookie,
                                            .csrf = stolen.csrf});
    cr_assert_eq(resp.status, 401, "%ld %s", resp.status, resp.body);
    sec_free(&resp);
    cr_assert_eq(s_session_rows(hash), 0, "the session row is gone");
}

Test(session, cookie_flags_length_and_storage, .timeout = 60)
{
    sec_session_t admin, op;
    sec_admin(&admin);
    sec_user(&admin, "staff", "flags", &op);
    char cookies[5][80], tokens[5][80];
    for (int i = 0; i < 5; i++) {
        sec_session_t s;
        cr_assert_eq(sec_sign_in(op.login, op.password, NULL, NULL, &s), 200);
        const char *h = s.set_cookie;
        cr_assert(strstr(h, "; HttpOnly"), "no HttpOnly: %s", h);
        cr_assert(strstr(h, "; Secure"), "no Secure over TLS: %s", h);
        cr_assert(strstr(h, "; SameSite=Strict"), "not SameSite=Strict: %s", h);
        cr_assert(strstr(h, "; Path=/"), "%s", h);
        cr_assert(!sec_contains_nocase(h, "Domain="), "a Domain widens the cookie: %s", h);
        cr_assert(!sec_contains_nocase(h, "Expires=") && !sec_contains_nocase(h, "Max-Age="),
                  "a persistent cookie: %s", h);
        /* 256 random bits as 64 hex characters, and a CSRF token of its own. */
        cr_assert(s_is_hex64(s.cookie), "cookie value %s", s.cookie);
        cr_assert(s_is_hex64(s.csrf), "CSRF token %s", s.csrf);
        cr_assert_str_neq(s.cookie, s.csrf);
        /* Only the SHA-256 of the cookie is stored. */
        char hash[65];
        s_sha256_hex(s.cookie, hash);
        cr_assert_eq(s_session_rows(hash), 1);
        cr_assert_eq(s_session_rows(s.cookie), 0, "the cookie value is stored as it is");
        snprintf(cookies[i], sizeof cookies[i], "%s", s.cookie);
        snprintf(tokens[i], sizeof tokens[i], "%s", s.csrf);
        /* The stored hash itself is no cookie (a copy of the table lets nobody in). */
        sec_session_t from_table = {0};
        snprintf(from_table.cookie, sizeof from_table.cookie, "%s", hash);
        cr_assert_eq(sec_me(&from_table), 401);
    }
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++) {
            cr_assert_str_neq(cookies[i], cookies[j]);
            cr_assert_str_neq(tokens[i], tokens[j]);
        }
}

Test(session, sign_out_everywhere_and_retirement_end_every_session, .timeout = 60)
{
    sec_session_t admin, op, s[3];
    sec_admin(&admin);
    sec_user(&admin, "operator", "all", &op);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(sec_sign_in(op.login, op.password, NULL, NULL, &s[i]), 200);
    sec_resp_t resp = sec_http(&(sec_req_t){
        .method = "DELETE", .path = "/api/v1/sessions", .cookie = s[1].cookie, .csrf = s[1].csrf});
    cr_assert_eq(resp.status, 200, "%ld %s", resp.status, resp.body);
    cr_assert_eq(sec_num(resp.json, "ended"), 4, "%s", resp.body);
    sec_free(&resp);
    cr_assert_eq(sec_me(&op), 401);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(sec_me(&s[i]), 401, "session %d survived sign-out everywhere", i);

    /* An administrator retires a user: that user's sessions end at once. */
    sec_session_t staff;
    sec_user(&admin, "staff", "retire", &staff);
    char path[64];
    snprintf(path, sizeof path, "/api/v1/users/%ld", staff.user_id);
    resp = sec_http(
        &(sec_req_t){.method = "DELETE", .path = path, .cookie = admin.cookie, .csrf = admin.csrf});
    cr_assert_eq(resp.status, 200, "%ld %s", resp.status, resp.body);
    sec_free(&resp);
    cr_assert_eq(sec_me(&staff), 401, "a retired user is still signed in");
}

Test(session, malformed_and_forged_cookies_are_no_session, .timeout = 60)
{
    sec_session_t admin;
    sec_admin(&admin);
    char upper[80];
    snprintf(upper, sizeof upper, "%s", admin.cookie);
    for (char *p = upper; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    char short_cookie[80], long_cookie[90];
    snprintf(short_cookie, sizeof short_cookie, "%.63s", admin.cookie);
    snprintf(long_cookie, sizeof long_cookie, "%s0", admin.cookie);
    const char *cookies[] = {
        "ncc_session=",
        "ncc_session=' OR '1'='1",
        "ncc_session=1; DROP TABLE auth.sessions",
        "ncc_session=%00",
        "ncc_session=../../../../etc/passwd",
        "ncc_session=" /* + short */,
        "ncc_session=" /* + long */,
        "ncc_session=" /* + upper case */,
        "ncc_session_x=" /* + the real value under another name */,
    };
    char text[4][160];
    snprintf(text[0], sizeof text[0], "ncc_session=%s", short_cookie);
    snprintf(text[1], sizeof text[1], "ncc_session=%s", long_cookie);
    snprintf(text[2], sizeof text[2], "ncc_session=%s", upper);
    snprintf(text[3], sizeof text[3], "ncc_session_x=%s", admin.cookie);
    cookies[5] = text[0];
    cookies[6] = text[1];
    cookies[7] = text[2];
    cookies[8] = text[3];
    for (size_t i = 0; i < sizeof cookies / sizeof cookies[0]; i++) {
        sec_resp_t resp = sec_http(&(sec_req_t){.path = "/api/v1/me", .raw_cookie = cookies[i]});
        cr_assert_eq(resp.status, 401, "Cookie: %s -> %ld %s", cookies[i], resp.status, resp.body);
        sec_free(&resp);
    }
    cr_assert_eq(
        sec_db_long("SELECT (to_regclass('auth.sessions') IS NOT NULL)::int", NULL, NULL, NULL), 1);
    cr_assert_eq(sec_me(&admin), 200, "the real session is unharmed");
}

/* ---- CSRF --------------------------------------------------------------------------------- */

Test(csrf, state_changes_need_the_session_token_and_the_site_origin, .timeout = 90)
{
    sec_session_t admin, op, op2;
    sec_admin(&admin);
    sec_user(&admin, "operator", "csrf", &op);
    cr_assert_eq(sec_sign_in(op.login, op.password, NULL, NULL, &op2), 200);
    char wrong[65];
    s_random_hex(wrong);
    char own_origin[300];
    snprintf(own_origin, sizeof own_origin, "%s", sec_gateway());
    char new_password[64], *body = NULL;
    sec_new_password(new_password);
    cr_assert(asprintf(&body, "{\"current_password\":\"%s\",\"new_password\":\"%s\"}", op.password,
                       new_password) > 0);

    typedef struct {
        const char *what;
        const char *csrf;
        const char *origin;
        const char *content_type;
        long status;
        const char *code;
    } attempt_t;
    const attempt_t attempts[] = {
        {"no token", NULL, NULL, NULL, 403, "csrf_failed"},
        {"a wrong token", wrong, NULL, NULL, 403, "csrf_failed"},
        {"another session's token", op2.csrf, NULL, NULL, 403, "csrf_failed"},
        {"the cookie as token", op.cookie, NULL, NULL, 403, "csrf_failed"},
        {"a foreign Origin", op.csrf, "https://evil.example", NULL, 403, "origin_mismatch"},
        {"Origin null", op.csrf, "null", NULL, 403, "origin_mismatch"},
        {"the site over http", op.csrf, "http://127.0.0.1:8443", NULL, 403, "origin_mismatch"},
        {"a form post (no token)", NULL, NULL, "application/x-www-form-urlencoded", 403,
         "csrf_failed"},
        {"a text/plain post (no token)", NULL, NULL, "text/plain", 403, "csrf_failed"},
    };
    for (size_t i = 0; i < sizeof attempts / sizeof attempts[0]; i++) {
        const attempt_t *a = &attempts[i];
        sec_resp_t resp = sec_http(&(sec_req_t){.method = "POST",
                                                .path = "/api/v1/me/password",
                                                .body = body,
                                                .content_type = a->content_type,
                                                .cookie = op.cookie,
                                                .csrf = a->csrf,
                                                .origin = a->origin});
        cr_assert_eq(resp.status, a->status, "%s: %ld %s", a->what, resp.status, resp.body);
        cr_assert_str_eq(sec_error_code(&resp), a->code, "%s: %s", a->what, resp.body);
        sec_free(&resp);
    }
    /* With the token the same request would pass: the refusals were CSRF's,
     * and nothing changed meanwhile (the old password still signs in). */
    sec_session_t check;
    cr_assert_eq(sec_sign_in(op.login, op.password, NULL, NULL, &check), 200);
    sec_resp_t resp = sec_http(&(sec_req_t){.method = "POST",
                                            .path = "/api/v1/me/password",
                                            .body = "{}",
                                            .content_type = "text/plain",
                                            .cookie = op.cookie,
                                            .csrf = op.csrf,
                                            .origin = own_origin});
    cr_assert_eq(resp.status, 415, "a body that is not JSON: %ld %s", resp.status, resp.body);
    sec_free(&resp);
    free(body);

    /* An administrator's POST without the token creates nobody. */
    char login[72], password[64], *create = NULL;
    sec_unique_login("csrf-new", login, sizeof login);
    sec_new_password(password);
    cr_assert(
        asprintf(&create,
                 "{\"login\":\"%s\",\"name\":\"x\",\"roles\":[\"admin\"],\"password\":\"%s\"}",
                 login, password) > 0);
    resp = sec_http(&(sec_req_t){
        .method = "POST", .path = "/api/v1/users", .body = create, .cookie = admin.cookie});
    cr_assert_eq(resp.status, 403, "%ld %s", resp.status, resp.body);
    sec_free(&resp);
    resp = sec_http(&(sec_req_t){.method = "POST",
                                 .path = "/api/v1/users",
                                 .body = create,
                                 .cookie = admin.cookie,
                                 .csrf = admin.csrf,
                                 .origin = "https://evil.example"});
    cr_assert_eq(resp.status, 403, "%ld %s", resp.status, resp.body);
    sec_free(&resp);
    free(create);
    cr_assert_eq(sec_db_long("SELECT count(*) FROM directory.users WHERE lower(login) = lower($1)",
                             login, NULL, NULL),
                 0, "a user was created without the CSRF token");

    /* Sign-out without the token does not sign out. */
    cr_assert_eq(s_delete("/api/v1/session", &op2, false, NULL), 403);
    cr_assert_eq(s_delete("/api/v1/sessions", &op2, false, NULL), 403);
    cr_assert_eq(sec_me(&op2), 200);

    /* Login CSRF: a sign-in posted from another site is refused, without a cookie. */
    char *sign_in = NULL;
    cr_assert(asprintf(&sign_in, "{\"login\":\"%s\",\"password\":\"%s\"}", op.login, op.password) >
              0);
    resp = sec_http(&(sec_req_t){.method = "POST",
                                 .path = "/api/v1/session",
                                 .body = sign_in,
                                 .origin = "https://evil.example"});
    cr_assert_eq(resp.status, 403, "%ld %s", resp.status, resp.body);
    cr_assert_str_eq(sec_error_code(&resp), "origin_mismatch");
    cr_assert_eq(sec_header_count(&resp, "Set-Cookie"), 0);
    sec_free(&resp);
    free(sign_in);

    /* The refusals of the signed-in operator are in the audit log as denied. */
    char path[160];
    snprintf(path, sizeof path, "/api/v1/audit?actor=%s&action=password.change&per_page=500",
             op.login);
    resp = sec_http(&(sec_req_t){.path = path, .cookie = admin.cookie});
    cr_assert_eq(resp.status, 200, "%ld %s", resp.status, resp.body);
    int denied = 0;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, cJSON_GetObjectItem(resp.json, "items"))
    {
        const char *outcome = sec_str(entry, "outcome");
        denied += outcome && strcmp(outcome, "denied") == 0;
    }
    cr_assert_geq(denied, 9, "refused attempts audited as denied: %d: %s", denied, resp.body);
    sec_free(&resp);
}

/* ---- caching of secrets ------------------------------------------------------------------- */

static void s_expect_no_store(const sec_resp_t *resp, const char *what)
{
    char *cache = sec_header(resp, "Cache-Control");
    cr_assert(cache && strstr(cache, "no-store"), "%s (%ld): Cache-Control %s\n%s", what,
              resp->status, cache ? cache : "(none)", resp->headers);
    cr_assert(!sec_contains_nocase(cache, "public"), "%s: %s", what, cache);
    free(cache);
}

Test(caching, every_api_answer_is_no_store, .timeout = 60)
{
    sec_session_t admin, op;
    sec_admin(&admin);
    sec_user(&admin, "supervisor", "cache", &op);
    char user_path[64], *sign_in = NULL;
    snprintf(user_path, sizeof user_path, "/api/v1/users/%ld", op.user_id);
    cr_assert(asprintf(&sign_in, "{\"login\":\"%s\",\"password\":\"%s\"}", op.login, op.password) >
              0);

    typedef struct {
        const char *method, *path, *body;
        const sec_session_t *as;
        long status;
    } call_t;
    char patch[64];
    snprintf(patch, sizeof patch, "{\"version\":%ld,\"name\":\"cache test\"}", op.version);
    const call_t calls[] = {
        {"POST", "/api/v1/session", sign_in, NULL, 200},
        {"GET", "/api/v1/me", NULL, &op, 200},
        {"GET", "/api/v1/me", NULL, NULL, 401},
        {"GET", "/api/v1/users", NULL, &admin, 200},
        {"GET", user_path, NULL, &admin, 200},
        {"PATCH", user_path, patch, &admin, 200},
        {"GET", "/api/v1/audit", NULL, &op, 200},
        {"GET", "/api/v1/audit/verify", NULL, &op, 200},
        {"GET", "/api/v1/users", NULL, &op, 403},
        {"GET", "/api/v1/health", NULL, NULL, 200},
        {"GET", "/api/v1/no-such-route", NULL, &op, 404},
        {"PUT", "/api/v1/me", NULL, &op, 405},
        {"DELETE", "/api/v1/sessions", NULL, &op, 200},
    };
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        const call_t *c = &calls[i];
        sec_resp_t resp = sec_http(&(sec_req_t){.method = c->method,
                                                .path = c->path,
                                                .body = c->body,
                                                .cookie = c->as ? c->as->cookie : NULL,
                                                .csrf = c->as ? c->as->csrf : NULL});
        char what[160];
        snprintf(what, sizeof what, "%s %s", c->method, c->path);
        cr_assert_eq(resp.status, c->status, "%s: %ld %s", what, resp.status, resp.body);
        s_expect_no_store(&resp, what);
        sec_free(&resp);
    }
    free(sign_in);
}

/* ---- open redirect ------------------------------------------------------------------------ */

/* True when a browser that follows `location` (the value of a Location
 * header) would leave this site: an absolute or scheme-relative URL, or a
 * path starting with two slashes or a slash and a backslash. */
static bool s_leaves_the_site(const char *location)
{
    if (!location)
        return false;
    while (*location == ' ' || *location == '\t')
        location++;
    if (location[0] == '/' && (location[1] == '/' || location[1] == '\\'))
        return true;
    if (location[0] == '\\')
        return true;
    const char *colon = strchr(location, ':');
    const char *slash = strchr(location, '/');
    return colon && (!slash || colon < slash);
}

typedef struct {
    int files;
    char found[2048];
} s_scan_t;

/* Sinks that could send the browser to another site, and the sources a
 * redirect parameter would come from. The client navigates only by
 * location.hash / location.replace('#/...') inside its own page. */
static void s_scan_navigation(const char *path, const char *text, void *arg)
{
    s_scan_t *scan = arg;
    static const char *const sinks[] = {
        "location.href",
        "location.assign",
        "window.open",
        "window.location",
        "document.location",
        "location.search",
        "location.pathname",
        "http-equiv",
        "URLSearchParams(location",
        "next=",
        "redirect",
        "returnTo",
        "document.referrer",
        "location.protocol",
        "location.host",
    };
    scan->files++;
    for (size_t i = 0; i < sizeof sinks / sizeof sinks[0]; i++) {
        if (strstr(text, sinks[i])) {
            size_t used = strlen(scan->found);
            snprintf(scan->found + used, sizeof scan->found - used, "%s: %s; ", path, sinks[i]);
        }
    }
    /* location.replace() is the router's: only in app.js. */
    if (strstr(text, "location.replace(") && strcmp(path, "gateway/web/js/app.js") != 0) {
        size_t used = strlen(scan->found);
        snprintf(scan->found + used, sizeof scan->found - used, "%s: location.replace; ", path);
    }
}

/* After sign-in the client goes back to the hash route that was in the
 * address bar (or the user's first page): there is no ?next= or #next. */
Test(open_redirect, the_client_has_no_redirect_parameter_and_no_navigation_sink)
{
    s_scan_t scan = {0};
    static const char *const web_files[] = {".js", ".mjs", ".html", NULL};
    sec_walk("gateway/web", web_files, s_scan_navigation, &scan);
    cr_assert_geq(scan.files, 5);
    cr_assert_str_empty(scan.found, "%s", scan.found);
}

Test(open_redirect, the_page_ignores_redirect_parameters, .timeout = 30)
{
    static const char *const paths[] = {
        "/?next=https://evil.example/",
        "/index.html?next=//evil.example/&redirect=https%3A%2F%2Fevil.example&return_to=/"
        "%2F%2Fevil",
        "/api/v1/session?next=https://evil.example/",
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        sec_resp_t resp = sec_http(&(sec_req_t){.path = paths[i]});
        cr_assert(resp.status < 300 || resp.status >= 400, "%s: %ld", paths[i], resp.status);
        cr_assert_eq(sec_header_count(&resp, "Location"), 0, "%s:\n%s", paths[i], resp.headers);
        cr_assert_eq(sec_header_count(&resp, "Refresh"), 0, "%s:\n%s", paths[i], resp.headers);
        sec_free(&resp);
    }
}

/* civetweb answers a directory without its trailing slash with a 301 to the
 * same path plus '/'. That Location must stay on this site whatever the
 * request looked like: civetweb builds it from the decoded path, so a request
 * for //evil.example/..%2fjs would answer Location: //evil.example/../js/,
 * which a browser follows to https://evil.example/js/. */
Test(open_redirect, redirects_never_leave_the_site, .timeout = 30)
{
    static const char *const paths[] = {
        "/js",
        "/css",
        "/js/views",
        "/js?next=//evil.example/",
        "//evil.example/..%2fjs",
        "/%2fevil.example/..%2fjs",
        "/%2Fevil.example%2F..%2Fcss",
        "/%5cevil.example/..%2fjs",
        "/\\evil.example/..%2fjs",
        "///evil.example/..%2f..%2fjs",
        "/https:%2f%2fevil.example/..%2f..%2fjs",
    };
    char found[4096] = "";
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        for (int host = 0; host < 2; host++) {
            sec_resp_t resp =
                sec_http(&(sec_req_t){.path = paths[i], .host = host ? "evil.example" : NULL});
            char *location = sec_header(&resp, "Location");
            if (s_leaves_the_site(location)) {
                size_t used = strlen(found);
                snprintf(found + used, sizeof found - used, "\n  GET %s%s -> %ld Location: %s",
                         paths[i], host ? " (Host: evil.example)" : "", resp.status, location);
            }
            free(location);
            sec_free(&resp);
        }
    }
    cr_assert_str_empty(found, "open redirects:%s", found);
}
