/* auth: client address, Origin and CSRF checks, the session cookie, the
 * session endpoints and the gateway's audit entries (auth.h). */
#include "auth.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "directory.pb-c.h"
#include "ncc/crypto.h"
#include "ncc/json.h"
#include "ncc/log.h"
#include "ncc/roles.h"

/* The gateway's own actor on the bus (sign-in, audit entries). */
#define S_ACTOR_ID   "svc:gateway"
#define S_ACTOR_ROLE "system"

/* Longest audit target (ncc-directory takes 256 bytes). */
#define S_TARGET_MAX 200

/* ---- the client ----------------------------------------------------------------- */

void gw_auth_client(gw_request_t *req, const gw_cidr_list_t *trusted_proxies)
{
    const struct mg_request_info *info = req->info;
    req->address[0] = '\0';
    req->secure = info->is_ssl != 0;
    if (!gw_cidr_list_contains(trusted_proxies, info->remote_addr)) {
        if (!gw_address_normalise(info->remote_addr, req->address, sizeof req->address))
            req->address[0] = '\0';
        return;
    }
    /* The edge replaces X-Forwarded-For with the address it saw; the last
     * entry is the one the trusted proxy wrote in any case. */
    const char *forwarded = mg_get_header(req->conn, "X-Forwarded-For");
    if (forwarded) {
        const char *last = strrchr(forwarded, ',');
        last = last ? last + 1 : forwarded;
        while (*last == ' ' || *last == '\t')
            last++;
        char entry[GW_ADDRESS_MAX];
        size_t len = strcspn(last, " \t");
        if (len > 0 && len < sizeof entry && last[len + strspn(last + len, " \t")] == '\0') {
            memcpy(entry, last, len);
            entry[len] = '\0';
            if (!gw_address_normalise(entry, req->address, sizeof req->address))
                req->address[0] = '\0';
        }
    }
    const char *proto = mg_get_header(req->conn, "X-Forwarded-Proto");
    req->secure = req->secure || (proto && strcasecmp(proto, "https") == 0);
}

bool gw_auth_changes_state(const char *method)
{
    return strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
           strcmp(method, "PATCH") == 0 || strcmp(method, "DELETE") == 0;
}

bool gw_auth_origin_ok(const gw_request_t *req)
{
    const char *origin = mg_get_header(req->conn, "Origin");
    if (!origin)
        return true;
    const char *host = mg_get_header(req->conn, "Host");
    if (!host || !*host)
        return false;
    char expected[320];
    int n = snprintf(expected, sizeof expected, "%s://%s", req->secure ? "https" : "http", host);
    return n > 0 && (size_t)n < sizeof expected && strcasecmp(origin, expected) == 0;
}

bool gw_auth_csrf_ok(const gw_request_t *req)
{
    const char *token = mg_get_header(req->conn, "X-CSRF-Token");
    return req->has_session && token && ncc_secure_equals(token, req->session.csrf_token);
}

bool gw_auth_cookie(const gw_request_t *req, char *buf, size_t len)
{
    const char *cookies = mg_get_header(req->conn, "Cookie");
    if (!cookies || mg_get_cookie(cookies, GW_SESSION_COOKIE, buf, len) < 0)
        return false;
    return gw_session_token_valid(buf);
}

int gw_auth_session(gw_api_t *api, gw_request_t *req)
{
    char cookie[80];
    req->has_session = false;
    if (!gw_auth_cookie(req, cookie, sizeof cookie))
        return -ENOENT;
    gw_sessions_t *sessions = gw_api_sessions(api);
    if (!gw_sessions_ready(sessions))
        return -EAGAIN;
    ncc_db_t *db = gw_api_db(api, req);
    if (!db)
        return -EIO;
    int rc = gw_session_find(sessions, db, cookie, &req->session);
    OPENSSL_cleanse(cookie, sizeof cookie);
    if (rc == -EIO)
        ncc_error("session.db_error", "session look-up failed: %s", ncc_db_error(db));
    if (rc == 0)
        req->has_session = true;
    return rc;
}

ncc_ctx_t gw_auth_user_ctx(const gw_request_t *req)
{
    ncc_ctx_t ctx = {
        .trace_id = req->thread->trace_id,
        .actor_id = req->session.user_id_text,
        .actor_role = req->session.roles_text,
        .actor_address = req->address,
    };
    return ctx;
}

/* The context of the gateway itself, acting from the client's address. */
static ncc_ctx_t s_gateway_ctx(const gw_request_t *req)
{
    ncc_ctx_t ctx = {
        .trace_id = req->thread->trace_id,
        .actor_id = S_ACTOR_ID,
        .actor_role = S_ACTOR_ROLE,
        .actor_address = req->address,
    };
    return ctx;
}

/* The answer to a bus request that got no reply. */
static int s_send_bus_failure(gw_request_t *req, int rc)
{
    if (rc == -EMSGSIZE)
        return gw_http_send_error(req->conn, 413, "too_large", NULL, "the request is too large");
    return gw_http_send_error(req->conn, 503, "service_unavailable", NULL,
                              "the directory service did not answer");
}

/* True when the envelope carries a message of type `desc`. */
static bool s_reply_is(const Ncc__Envelope *reply, const ProtobufCMessageDescriptor *desc)
{
    return reply->type && strcmp(reply->type, desc->name) == 0;
}

static bool s_reply_is_error(const Ncc__Envelope *reply)
{
    return s_reply_is(reply, &ncc__error__descriptor);
}

/* {"user": <user>, "csrf_token": token} with `status` and an optional extra
 * header. Returns the status. */
static int s_send_user(gw_request_t *req, int status, const Ncc__Directory__User *user,
                       const char *csrf_token, const char *extra_name, const char *extra_value)
{
    char *text = NULL;
    cJSON *root = cJSON_CreateObject();
    cJSON *user_json = ncc_pb_to_json(&user->base);
    if (root && user_json) {
        cJSON_AddItemToObject(root, "user", user_json);
        user_json = NULL;
        if (cJSON_AddStringToObject(root, "csrf_token", csrf_token))
            text = cJSON_PrintUnformatted(root);
    }
    cJSON_Delete(user_json);
    cJSON_Delete(root);
    if (!text)
        return gw_http_send_error(req->conn, 500, "internal", NULL, "out of memory");
    gw_http_send(req->conn, status, GW_JSON_TYPE, text, strlen(text), extra_name, extra_value);
    OPENSSL_cleanse(text, strlen(text));
    free(text);
    return status;
}

/* A Set-Cookie value: the session cookie, or its removal when value is NULL. */
static void s_cookie_header(const gw_request_t *req, const char *value, char *out, size_t len)
{
    snprintf(out, len, "%s=%s; Path=/;%s HttpOnly; SameSite=Strict%s", GW_SESSION_COOKIE,
             value ? value : "", value ? "" : " Max-Age=0;", req->secure ? "; Secure" : "");
}

/* ---- audit ---------------------------------------------------------------------- */

/* Text the audit log accepts: printable ASCII ('?' for anything else), at
 * most len - 1 bytes. */
static void s_clean_text(const char *text, char *out, size_t len)
{
    size_t n = 0;
    for (const char *p = text ? text : ""; *p && n + 1 < len; p++)
        out[n++] = (*p >= 0x20 && *p <= 0x7e) ? *p : '?';
    out[n] = '\0';
}

int gw_auth_audit(gw_api_t *api, gw_request_t *req, int status, const char *code)
{
    const gw_route_t *route = req->match->route;
    char target[S_TARGET_MAX], clean_code[48], detail[96];
    s_clean_text(req->info->local_uri, target, sizeof target);
    s_clean_text(code, clean_code, sizeof clean_code);
    snprintf(detail, sizeof detail, "%s %d%s%s", req->info->request_method, status,
             clean_code[0] ? " " : "", clean_code);
    Ncc__Directory__AuditAppend entry = NCC__DIRECTORY__AUDIT_APPEND__INIT;
    entry.action = (char *)route->action;
    entry.target = target;
    entry.outcome = status >= 200 && status < 300      ? "ok"
                    : (status == 401 || status == 403) ? "denied"
                                                       : "error";
    entry.detail = detail;
    entry.actor_id = req->session.user_id_text;
    entry.actor_login = req->session.login;
    entry.actor_role = req->session.roles_text;
    entry.address = req->address;
    ncc_ctx_t ctx = s_gateway_ctx(req);
    Ncc__Envelope *reply = NULL;
    int rc = gw_api_rpc(api, req, "directory", &ctx, &entry.base, &reply);
    if (rc < 0)
        return rc;
    rc = s_reply_is(reply, &ncc__directory__audit_entry__descriptor) ? 0 : -EPROTO;
    ncc__envelope__free_unpacked(reply, NULL);
    return rc;
}

/* ---- POST /api/v1/session ------------------------------------------------------------ */

int gw_auth_login(gw_api_t *api, gw_request_t *req)
{
    gw_sessions_t *sessions = gw_api_sessions(api);
    ProtobufCMessage *request = NULL;
    Ncc__Envelope *reply = NULL;
    Ncc__Directory__AuthResult *result = NULL;
    char cookie[GW_SESSION_TOKEN_LEN + 1] = "", old[80] = "", header[192] = "";
    int status;

    /* Before the password is checked, so that a TOTP code is not spent. */
    if (!gw_sessions_ready(sessions))
        return gw_http_send_error(req->conn, 503, "service_unavailable", NULL,
                                  "sign-in is not available yet (sessions database)");
    ncc_db_t *db = gw_api_db(api, req);
    if (!db)
        return gw_http_send_error(req->conn, 500, "internal", NULL, "out of memory");
    status = gw_api_read_message(api, req, &ncc__directory__authenticate__descriptor, &request);
    if (status > 0)
        return status;

    ncc_ctx_t ctx = s_gateway_ctx(req);
    int rc = gw_api_rpc(api, req, "directory", &ctx, request, &reply);
    if (rc < 0) {
        status = s_send_bus_failure(req, rc);
        goto out;
    }
    if (s_reply_is_error(reply)) {
        /* 401 invalid_credentials | totp_required | invalid_totp, 423, 429 ... */
        status = gw_api_send_error_reply(req, "directory", reply);
        goto out;
    }
    if (s_reply_is(reply, &ncc__directory__auth_result__descriptor))
        result =
            ncc__directory__auth_result__unpack(NULL, reply->has_payload ? reply->payload.len : 0,
                                                reply->has_payload ? reply->payload.data : NULL);
    if (!result || !result->user || !result->user->has_id) {
        ncc_warn("api.bad_reply", "directory answered Authenticate with %s",
                 reply->type ? reply->type : "nothing");
        status = gw_http_send_error(req->conn, 502, "bad_gateway", NULL,
                                    "the directory service sent an unreadable answer");
        goto out;
    }
    const Ncc__Directory__User *user = result->user;
    unsigned roles = 0;
    for (size_t i = 0; i < user->n_roles; i++)
        roles |= ncc_role_parse(user->roles[i]) & NCC_ROLES_USERS;

    /* Session fixation: whatever session the client came with ends here. */
    if (gw_auth_cookie(req, old, sizeof old) && gw_session_delete_cookie(db, old) < 0)
        goto db_error;
    gw_session_user_t who = {
        .user_id = user->id,
        .login = user->login,
        .name = user->name,
        .roles = roles,
        .address = req->address,
        .user_agent = mg_get_header(req->conn, "User-Agent"),
    };
    gw_session_t session;
    rc = gw_session_create(sessions, db, &who, cookie, &session);
    if (rc == -EIO)
        goto db_error;
    if (rc < 0) {
        status = gw_http_send_error(req->conn, 500, "internal", NULL, "no session could be made");
        goto out;
    }
    s_cookie_header(req, cookie, header, sizeof header);
    ncc_info("session.created", "user %s (%s) signed in from %s", session.user_id_text,
             session.roles_text, req->address);
    status = s_send_user(req, 200, user, session.csrf_token, "Set-Cookie", header);
    OPENSSL_cleanse(&session, sizeof session);
    goto out;

db_error:
    ncc_error("session.db_error", "sign-in: %s", ncc_db_error(db));
    status = gw_http_send_error(req->conn, 503, "service_unavailable", NULL,
                                "the sessions database is unreachable");
out:
    OPENSSL_cleanse(cookie, sizeof cookie);
    OPENSSL_cleanse(old, sizeof old);
    OPENSSL_cleanse(header, sizeof header);
    if (result)
        ncc__directory__auth_result__free_unpacked(result, NULL);
    if (reply)
        ncc__envelope__free_unpacked(reply, NULL);
    if (request)
        protobuf_c_message_free_unpacked(request, NULL);
    return status;
}

/* ---- DELETE /api/v1/session and /api/v1/sessions ---------------------------------------- */

/* Logs the audit failure of a sign-out: the session has ended all the same
 * (a sign-out must not fail for want of an audit entry). */
static void s_audit_logout(gw_api_t *api, gw_request_t *req, int status)
{
    int rc = gw_auth_audit(api, req, status, "");
    if (rc < 0)
        ncc_error("audit.append_failed", "%s by user %s (%s) from %s at status %d not audited: %s",
                  req->match->route->action, req->session.user_id_text, req->session.login,
                  req->address, status, strerror(-rc));
}

int gw_auth_logout(gw_api_t *api, gw_request_t *req)
{
    ncc_db_t *db = gw_api_db(api, req);
    if (!db || gw_session_delete(db, req->session.id_hash) < 0) {
        ncc_error("session.db_error", "sign-out: %s", db ? ncc_db_error(db) : "out of memory");
        return gw_http_send_error(req->conn, 503, "service_unavailable", NULL,
                                  "the sessions database is unreachable");
    }
    ncc_info("session.ended", "user %s signed out", req->session.user_id_text);
    s_audit_logout(api, req, 204);
    char header[128];
    s_cookie_header(req, NULL, header, sizeof header);
    return gw_http_send(req->conn, 204, GW_JSON_TYPE, "", 0, "Set-Cookie", header);
}

int gw_auth_logout_all(gw_api_t *api, gw_request_t *req)
{
    ncc_db_t *db = gw_api_db(api, req);
    int64_t ended = db ? gw_session_delete_user(db, req->session.user_id, NULL) : -EIO;
    if (ended < 0) {
        ncc_error("session.db_error", "sign-out everywhere: %s",
                  db ? ncc_db_error(db) : "out of memory");
        return gw_http_send_error(req->conn, 503, "service_unavailable", NULL,
                                  "the sessions database is unreachable");
    }
    ncc_info("session.ended_all", "user %s signed out everywhere (%lld sessions)",
             req->session.user_id_text, (long long)ended);
    s_audit_logout(api, req, 200);
    char header[128], body[64];
    s_cookie_header(req, NULL, header, sizeof header);
    int n = snprintf(body, sizeof body, "{\"ended\":%lld}", (long long)ended);
    return gw_http_send(req->conn, 200, GW_JSON_TYPE, body, (size_t)n, "Set-Cookie", header);
}

/* ---- GET /api/v1/me --------------------------------------------------------------------- */

int gw_auth_me(gw_api_t *api, gw_request_t *req)
{
    Ncc__Directory__GetUser get = NCC__DIRECTORY__GET_USER__INIT;
    get.has_id = true;
    get.id = req->session.user_id;
    ncc_ctx_t ctx = gw_auth_user_ctx(req);
    Ncc__Envelope *reply = NULL;
    int rc = gw_api_rpc(api, req, "directory", &ctx, &get.base, &reply);
    if (rc < 0)
        return s_send_bus_failure(req, rc);
    int status;
    Ncc__Directory__User *user = NULL;
    if (s_reply_is_error(reply)) {
        status = gw_api_send_error_reply(req, "directory", reply);
        goto out;
    }
    if (s_reply_is(reply, &ncc__directory__user__descriptor))
        user = ncc__directory__user__unpack(NULL, reply->has_payload ? reply->payload.len : 0,
                                            reply->has_payload ? reply->payload.data : NULL);
    if (!user) {
        status = gw_http_send_error(req->conn, 502, "bad_gateway", NULL,
                                    "the directory service sent an unreadable answer");
        goto out;
    }
    status = s_send_user(req, 200, user, req->session.csrf_token, NULL, NULL);
out:
    if (user)
        ncc__directory__user__free_unpacked(user, NULL);
    ncc__envelope__free_unpacked(reply, NULL);
    return status;
}
