/* security: helpers of the tests in tests/security (security.h). Linked into
 * every tests/security/test_* program by tests/security/libs.mk. */
#include "security.h"

#include "ncc_test.h"

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>
#include <openssl/sha.h>

#include "ncc/crypto.h"

/* ---- HTTP ------------------------------------------------------------------------- */

const char *sec_gateway(void)
{
    static char url[256];
    const char *given = getenv("NCC_TEST_GATEWAY_URL");
    cr_assert(given && *given,
              "NCC_TEST_GATEWAY_URL is not set: scripts/test.sh starts the system and sets it");
    cr_assert_lt(strlen(given), sizeof url);
    snprintf(url, sizeof url, "%s", given);
    size_t len = strlen(url);
    while (len > 0 && url[len - 1] == '/')
        url[--len] = '\0';
    return url;
}

/* Only the headers of the last answer are kept (a 100 Continue comes first). */
static size_t s_collect_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    ncct_buffer_t *buf = userdata;
    if (size * nmemb >= 5 && strncmp(ptr, "HTTP/", 5) == 0)
        buf->len = 0;
    return ncct_curl_collect(ptr, size, nmemb, userdata);
}

sec_resp_t sec_http(const sec_req_t *r)
{
    static bool initialised;
    if (!initialised) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        initialised = true;
    }
    CURL *curl = curl_easy_init();
    cr_assert_not_null(curl);
    ncct_buffer_t body = {0}, headers = {0};
    struct curl_slist *list = NULL;
    char *url = NULL, line[1024];
    cr_assert(asprintf(&url, "%s%s", sec_gateway(), r->path) > 0);
    const char *method = r->method ? r->method : "GET";
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, ncct_curl_collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, s_collect_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &headers);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "ncc-security-test");
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    else
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    list = curl_slist_append(list, "Expect:");
    if (r->body) {
        snprintf(line, sizeof line, "Content-Type: %s",
                 r->content_type ? r->content_type : "application/json");
        list = curl_slist_append(list, line);
        size_t len = r->body_len ? r->body_len : strlen(r->body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, r->body);
    }
    if (r->raw_cookie) {
        snprintf(line, sizeof line, "Cookie: %s", r->raw_cookie);
        list = curl_slist_append(list, line);
    } else if (r->cookie) {
        snprintf(line, sizeof line, "Cookie: ncc_session=%s", r->cookie);
        list = curl_slist_append(list, line);
    }
    if (r->csrf) {
        snprintf(line, sizeof line, "X-CSRF-Token: %s", r->csrf);
        list = curl_slist_append(list, line);
    }
    if (r->origin) {
        snprintf(line, sizeof line, "Origin: %s", r->origin);
        list = curl_slist_append(list, line);
    }
    if (r->host) {
        snprintf(line, sizeof line, "Host: %s", r->host);
        list = curl_slist_append(list, line);
    }
    for (size_t i = 0; r->headers && r->headers[i]; i++)
        list = curl_slist_append(list, r->headers[i]);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    CURLcode code = curl_easy_perform(curl);
    sec_resp_t out = {.status = -1};
    if (code == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out.status);
    curl_slist_free_all(list);
    curl_easy_cleanup(curl);
    free(url);
    out.body = body.data ? body.data : strdup("");
    out.len = body.data ? body.len : 0;
    out.headers = headers.data ? headers.data : strdup("");
    cr_assert(out.body && out.headers);
    out.json = cJSON_ParseWithLength(out.body, out.len);
    return out;
}

void sec_free(sec_resp_t *resp)
{
    free(resp->body);
    free(resp->headers);
    cJSON_Delete(resp->json);
    memset(resp, 0, sizeof *resp);
}

/* Calls back for each header line named `name`; stops when fn returns false. */
static void s_each_header(const sec_resp_t *resp, const char *name,
                          bool (*fn)(const char *value, size_t len, void *arg), void *arg)
{
    size_t name_len = strlen(name);
    for (const char *line = resp->headers; line && *line;) {
        const char *end = strstr(line, "\r\n");
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > name_len && strncasecmp(line, name, name_len) == 0 && line[name_len] == ':') {
            const char *value = line + name_len + 1;
            while (*value == ' ' || *value == '\t')
                value++;
            if (!fn(value, len - (size_t)(value - line), arg))
                return;
        }
        line = end ? end + 2 : NULL;
    }
}

static bool s_take_first(const char *value, size_t len, void *arg)
{
    *(char **)arg = strndup(value, len);
    return false;
}

char *sec_header(const sec_resp_t *resp, const char *name)
{
    char *value = NULL;
    s_each_header(resp, name, s_take_first, &value);
    return value;
}

static bool s_count(const char *value, size_t len, void *arg)
{
    (*(int *)arg)++;
    return true;
}

int sec_header_count(const sec_resp_t *resp, const char *name)
{
    int n = 0;
    s_each_header(resp, name, s_count, &n);
    return n;
}

const char *sec_str(const cJSON *object, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, name);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

long sec_num(const cJSON *object, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, name);
    return cJSON_IsNumber(item) ? (long)item->valuedouble : -1;
}

const char *sec_error_code(const sec_resp_t *resp)
{
    return sec_str(cJSON_GetObjectItemCaseSensitive(resp->json, "error"), "code");
}

bool sec_contains_nocase(const char *text, const char *needle)
{
    return text && needle && strcasestr(text, needle) != NULL;
}

char *sec_url_encode(const char *text)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len = strlen(text);
    char *out = malloc(3 * len + 1);
    cr_assert_not_null(out);
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        unsigned char c = *p;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '.' || c == '_' || c == '~' || c == '-') {
            out[n++] = (char)c;
        } else {
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    out[n] = '\0';
    return out;
}

char *sec_json_quote(const char *text)
{
    cJSON *item = cJSON_CreateString(text);
    cr_assert_not_null(item);
    char *out = cJSON_PrintUnformatted(item);
    cJSON_Delete(item);
    cr_assert_not_null(out);
    return out;
}

/* ---- sessions and users -------------------------------------------------------------- */

long sec_sign_in(const char *login, const char *password, const char *totp,
                 const char *presented_cookie, sec_session_t *out)
{
    char *qlogin = sec_json_quote(login), *qpassword = sec_json_quote(password);
    char *body = NULL;
    if (totp)
        cr_assert(asprintf(&body, "{\"login\":%s,\"password\":%s,\"totp\":\"%s\"}", qlogin,
                           qpassword, totp) > 0);
    else
        cr_assert(asprintf(&body, "{\"login\":%s,\"password\":%s}", qlogin, qpassword) > 0);
    free(qlogin);
    free(qpassword);
    sec_resp_t resp = sec_http(&(sec_req_t){
        .method = "POST", .path = "/api/v1/session", .body = body, .cookie = presented_cookie});
    free(body);
    long status = resp.status;
    memset(out, 0, sizeof *out);
    char *set_cookie = sec_header(&resp, "Set-Cookie");
    if (status == 200) {
        cr_assert_not_null(set_cookie, "sign-in without Set-Cookie:\n%s", resp.headers);
        snprintf(out->set_cookie, sizeof out->set_cookie, "%s", set_cookie);
        cr_assert_eq(strncmp(set_cookie, "ncc_session=", 12), 0, "%s", set_cookie);
        size_t len = strcspn(set_cookie + 12, ";");
        cr_assert_lt(len, sizeof out->cookie);
        memcpy(out->cookie, set_cookie + 12, len);
        const char *csrf = sec_str(resp.json, "csrf_token");
        cr_assert_not_null(csrf, "no csrf_token: %s", resp.body);
        snprintf(out->csrf, sizeof out->csrf, "%s", csrf);
        const cJSON *user = cJSON_GetObjectItemCaseSensitive(resp.json, "user");
        out->user_id = sec_num(user, "id");
        out->version = sec_num(user, "version");
        cr_assert_gt(out->user_id, 0, "no user id: %s", resp.body);
        snprintf(out->login, sizeof out->login, "%s", login);
        snprintf(out->password, sizeof out->password, "%s", password);
    } else {
        cr_assert_null(set_cookie, "a refused sign-in (%ld) set a cookie: %s", status, set_cookie);
    }
    free(set_cookie);
    sec_free(&resp);
    return status;
}

long sec_me(const sec_session_t *session)
{
    sec_resp_t resp = sec_http(&(sec_req_t){.path = "/api/v1/me", .cookie = session->cookie});
    long status = resp.status;
    sec_free(&resp);
    return status;
}

static void s_sha256_hex(const char *text, char out[65])
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)text, strlen(text), digest);
    for (size_t i = 0; i < sizeof digest; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

static const char *s_tmpdir(void)
{
    const char *dir = getenv("TMPDIR");
    return dir && *dir ? dir : "/tmp";
}

/* The TOTP code of a step no other test has taken: the same files as
 * tests/e2e/lib.mjs reserveTotp ($TMPDIR/ncc-e2e-totp/<sha256(secret)[:16]>-<step>,
 * created exclusively), never in a step's last 3 seconds. */
static void s_reserve_totp(const char *secret, char code[7])
{
    char dir[512], id[65], path[600];
    snprintf(dir, sizeof dir, "%s/ncc-e2e-totp", s_tmpdir());
    if (mkdir(dir, 0777) < 0)
        cr_assert_eq(errno, EEXIST, "mkdir %s: %s", dir, strerror(errno));
    s_sha256_hex(secret, id);
    id[16] = '\0';
    for (int attempt = 0; attempt < 20; attempt++) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        double seconds = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
        int64_t step = (int64_t)(seconds / 30.0);
        double left = (double)(step + 1) * 30.0 - seconds;
        if (left >= 3.0) {
            snprintf(path, sizeof path, "%s/%s-%lld", dir, id, (long long)step);
            int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0666);
            if (fd >= 0) {
                close(fd);
                cr_assert_eq(ncc_totp_code(secret, step * 30, code), 0);
                return;
            }
            cr_assert_eq(errno, EEXIST, "%s: %s", path, strerror(errno));
        }
        usleep((useconds_t)((left + 0.3) * 1e6));
    }
    cr_assert_fail("no TOTP step could be reserved in 10 minutes");
}

static const char *s_env(const char *name, const char *fallback)
{
    const char *value = getenv(name);
    if (value && *value)
        return value;
    cr_assert_not_null(fallback, "%s is not set (scripts/test.sh sets it)", name);
    return fallback;
}

/* True when the session still works and belongs to an administrator. */
static bool s_admin_alive(const sec_session_t *s)
{
    sec_resp_t resp = sec_http(&(sec_req_t){.path = "/api/v1/me", .cookie = s->cookie});
    bool ok = false;
    if (resp.status == 200) {
        const cJSON *roles =
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItem(resp.json, "user"), "roles");
        const cJSON *role;
        cJSON_ArrayForEach(role, roles) ok =
            ok || (cJSON_IsString(role) && strcmp(role->valuestring, "admin") == 0);
        const char *csrf = sec_str(resp.json, "csrf_token");
        ok = ok && csrf && strcmp(csrf, s->csrf) == 0;
    }
    sec_free(&resp);
    return ok;
}

void sec_admin(sec_session_t *out)
{
    const char *login = s_env("NCC_BOOTSTRAP_ADMIN_LOGIN", "admin");
    const char *password = s_env("NCC_BOOTSTRAP_ADMIN_PASSWORD", NULL);
    const char *secret = s_env("NCC_BOOTSTRAP_ADMIN_TOTP_SECRET", NULL);

    char dir[512], path[700], key[1024], id[65];
    snprintf(dir, sizeof dir, "%s/ncc-security-%u", s_tmpdir(), (unsigned)getuid());
    if (mkdir(dir, 0700) < 0)
        cr_assert_eq(errno, EEXIST, "mkdir %s: %s", dir, strerror(errno));
    struct stat st;
    cr_assert_eq(stat(dir, &st), 0);
    cr_assert(st.st_uid == getuid() && (st.st_mode & 077) == 0, "%s must be private", dir);
    snprintf(key, sizeof key, "%s\n%s\n%s", sec_gateway(), login, password);
    s_sha256_hex(key, id);
    id[16] = '\0';
    snprintf(path, sizeof path, "%s/admin-%s", dir, id);

    /* One process at a time signs in; the others wait and reuse its session. */
    int fd = open(path, O_RDWR | O_CREAT, 0600);
    cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
    cr_assert_eq(flock(fd, LOCK_EX), 0);
    char saved[256] = "";
    ssize_t n = pread(fd, saved, sizeof saved - 1, 0);
    saved[n > 0 ? n : 0] = '\0';
    memset(out, 0, sizeof *out);
    if (sscanf(saved, "%79s %79s %ld", out->cookie, out->csrf, &out->user_id) == 3 &&
        s_admin_alive(out)) {
        snprintf(out->login, sizeof out->login, "%s", login);
        snprintf(out->password, sizeof out->password, "%s", password);
        snprintf(out->role, sizeof out->role, "admin");
        flock(fd, LOCK_UN);
        close(fd);
        return;
    }
    long status = 0;
    for (int attempt = 0; attempt < 2 && status != 200; attempt++) {
        char code[7];
        s_reserve_totp(secret, code);
        status = sec_sign_in(login, password, code, NULL, out);
    }
    cr_assert_eq(status, 200, "the administrator (%s) could not sign in: %ld", login, status);
    snprintf(out->role, sizeof out->role, "admin");
    char line[256];
    int len = snprintf(line, sizeof line, "%s %s %ld\n", out->cookie, out->csrf, out->user_id);
    cr_assert(ftruncate(fd, 0) == 0 && pwrite(fd, line, (size_t)len, 0) == len);
    flock(fd, LOCK_UN);
    close(fd);
}

void sec_unique_login(const char *tag, char *out, size_t len)
{
    static unsigned counter;
    unsigned char random[3];
    cr_assert_eq(RAND_bytes(random, sizeof random), 1);
    snprintf(out, len, "sec-%s-%d-%lx%02x%02x%02x%u", tag, (int)getpid(), (unsigned long)time(NULL),
             random[0], random[1], random[2], counter++);
}

void sec_new_password(char out[64])
{
    unsigned char random[12];
    cr_assert_eq(RAND_bytes(random, sizeof random), 1);
    int n = snprintf(out, 64, "Sec-");
    for (size_t i = 0; i < sizeof random; i++)
        n += snprintf(out + n, (size_t)(64 - n), "%02x", random[i]);
    snprintf(out + n, (size_t)(64 - n), "-Zk9!");
}

void sec_user(const sec_session_t *admin, const char *role, const char *tag, sec_session_t *out)
{
    char login[72], password[64], *body = NULL;
    sec_unique_login(tag, login, sizeof login);
    sec_new_password(password);
    cr_assert(asprintf(&body,
                       "{\"login\":\"%s\",\"name\":\"試験 %s\",\"roles\":[\"%s\"],"
                       "\"password\":\"%s\"}",
                       login, role, role, password) > 0);
    sec_resp_t resp = sec_http(&(sec_req_t){.method = "POST",
                                            .path = "/api/v1/users",
                                            .body = body,
                                            .cookie = admin->cookie,
                                            .csrf = admin->csrf});
    free(body);
    cr_assert_eq(resp.status, 201, "create %s (%s): %ld %s", login, role, resp.status, resp.body);
    sec_free(&resp);
    long status = sec_sign_in(login, password, NULL, NULL, out);
    cr_assert_eq(status, 200, "sign-in of the new %s %s: %ld", role, login, status);
    snprintf(out->role, sizeof out->role, "%s", role);
}

/* ---- the database ------------------------------------------------------------------- */

static PGresult *s_db_query(PGconn **ret_conn, const char *sql, const char *p1, const char *p2,
                            const char *p3)
{
    const char *url = getenv("NCC_DATABASE_OWNER_URL");
    if (!url || !*url)
        url = getenv("NCC_DATABASE_URL");
    cr_assert(url && *url, "NCC_DATABASE_URL is not set (scripts/test.sh sets it)");
    PGconn *conn = PQconnectdb(url);
    cr_assert_eq(PQstatus(conn), CONNECTION_OK, "database: %s", PQerrorMessage(conn));
    const char *params[3] = {p1, p2, p3};
    int n = !p1 ? 0 : !p2 ? 1 : !p3 ? 2 : 3;
    PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(conn));
    *ret_conn = conn;
    return res;
}

long sec_db_long(const char *sql, const char *p1, const char *p2, const char *p3)
{
    PGconn *conn = NULL;
    PGresult *res = s_db_query(&conn, sql, p1, p2, p3);
    cr_assert_gt(PQntuples(res), 0, "%s: no row", sql);
    long value = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    PQfinish(conn);
    return value;
}

char *sec_db_text(const char *sql, const char *p1, const char *p2, const char *p3)
{
    PGconn *conn = NULL;
    PGresult *res = s_db_query(&conn, sql, p1, p2, p3);
    char *value =
        PQntuples(res) > 0 && !PQgetisnull(res, 0, 0) ? strdup(PQgetvalue(res, 0, 0)) : NULL;
    PQclear(res);
    PQfinish(conn);
    return value;
}

/* ---- the source tree ---------------------------------------------------------------- */

const char *sec_source_dir(void)
{
    const char *dir = getenv("NCC_SOURCE_DIR");
    if (dir && *dir)
        return dir;
    cr_assert_eq(access("gateway/routes.c", R_OK), 0,
                 "NCC_SOURCE_DIR is not set and this is not the repository root");
    return ".";
}

static bool s_has_suffix(const char *name, const char *const *suffixes)
{
    if (!suffixes)
        return true;
    size_t len = strlen(name);
    for (size_t i = 0; suffixes[i]; i++) {
        size_t slen = strlen(suffixes[i]);
        if (len >= slen && strcmp(name + len - slen, suffixes[i]) == 0)
            return true;
    }
    return false;
}

static int s_walk(const char *top, const char *rel, const char *const *suffixes, sec_file_fn fn,
                  void *arg)
{
    char *full = NULL;
    cr_assert(asprintf(&full, "%s/%s", top, rel) > 0);
    DIR *dir = opendir(full);
    free(full);
    if (!dir)
        return 0;
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(dir))) {
        const char *name = entry->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strcmp(name, "node_modules") == 0)
            continue;
        char *child = NULL, *path = NULL;
        cr_assert(asprintf(&child, "%s/%s", rel, name) > 0);
        cr_assert(asprintf(&path, "%s/%s", top, child) > 0);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            count += s_walk(top, child, suffixes, fn, arg);
        } else if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && s_has_suffix(name, suffixes)) {
            if (fn) {
                FILE *file = fopen(path, "rb");
                cr_assert_not_null(file, "%s: %s", path, strerror(errno));
                char *text = malloc((size_t)st.st_size + 1);
                cr_assert_not_null(text);
                size_t got = fread(text, 1, (size_t)st.st_size, file);
                text[got] = '\0';
                fclose(file);
                fn(child, text, arg);
                free(text);
            }
            count++;
        }
        free(child);
        free(path);
    }
    closedir(dir);
    return count;
}

int sec_walk(const char *dir, const char *const *suffixes, sec_file_fn fn, void *arg)
{
    return s_walk(sec_source_dir(), dir, suffixes, fn, arg);
}

char *sec_c_code_only(const char *text)
{
    char *out = strdup(text);
    cr_assert_not_null(out);
    enum { CODE, LINE_COMMENT, BLOCK_COMMENT, STRING, CHAR } state = CODE;
    for (size_t i = 0; out[i]; i++) {
        char c = text[i], next = text[i + 1];
        switch (state) {
        case CODE:
            if (c == '/' && next == '/')
                state = LINE_COMMENT;
            else if (c == '/' && next == '*')
                state = BLOCK_COMMENT;
            else if (c == '"')
                state = STRING;
            else if (c == '\'')
                state = CHAR;
            else
                continue;
            out[i] = ' ';
            break;
        case LINE_COMMENT:
            if (c == '\n')
                state = CODE;
            else
                out[i] = ' ';
            break;
        case BLOCK_COMMENT:
            if (c == '*' && next == '/') {
                out[i] = out[i + 1] = ' ';
                i++;
                state = CODE;
            } else if (c != '\n') {
                out[i] = ' ';
            }
            break;
        case STRING:
        case CHAR:
            if (c == '\\' && next) {
                out[i] = ' ';
                if (next != '\n')
                    out[i + 1] = ' ';
                i++;
            } else if ((state == STRING && c == '"') || (state == CHAR && c == '\'')) {
                out[i] = ' ';
                state = CODE;
            } else if (c != '\n') {
                out[i] = ' ';
            }
            break;
        }
    }
    return out;
}
