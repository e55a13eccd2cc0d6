/* auth: who is asking and may they (R9, R15, R17, R18, R21; docs/gateway.md).
 * The client's address (the peer, or the last X-Forwarded-For entry of a
 * trusted proxy), the Origin and CSRF checks, the session cookie, the
 * session endpoints (sign-in, sign-out, sign-out everywhere, the current
 * user) and the gateway's audit entries, sent to ncc-directory. The order
 * of the checks is api.c's. */
#ifndef GW_AUTH_H
#define GW_AUTH_H

#include <stdbool.h>

#include "api.h"
#include "cidr.h"
#include "http.h"

/* Fills req->address and req->secure: the peer's address and the TLS flag,
 * or, when the peer is in `trusted_proxies`, the last X-Forwarded-For entry
 * ("" when it is missing or not an address: such a client is refused by
 * the allow-list) and X-Forwarded-Proto == https. */
void gw_auth_client(gw_request_t *req, const gw_cidr_list_t *trusted_proxies);

/* True for POST, PUT, PATCH and DELETE. */
bool gw_auth_changes_state(const char *method);

/* True when the request has no Origin header, or one equal to its own
 * scheme://Host (case-insensitive). */
bool gw_auth_origin_ok(const gw_request_t *req);

/* True when X-CSRF-Token equals the session's token (constant time). */
bool gw_auth_csrf_ok(const gw_request_t *req);

/* The session cookie's value into buf (len >= 80), false when there is none
 * or it is not a well-formed token. */
bool gw_auth_cookie(const gw_request_t *req, char *buf, size_t len);

/* Looks the request's cookie up into req->session (req->has_session).
 * 0; -ENOENT (no session: 401); -EIO (database: 503); -EAGAIN (the sessions
 * are not migrated yet: 503). */
int gw_auth_session(gw_api_t *api, gw_request_t *req);

/* The context of a bus request made for the signed-in user: actor_id the
 * user id, actor_role the roles, actor_address the client's address, the
 * request id as trace. Strings borrowed from req. */
ncc_ctx_t gw_auth_user_ctx(const gw_request_t *req);

/* Writes one audit entry through ncc-directory (AuditAppend as the gateway,
 * naming the signed-in user, the client's address, the route's action and
 * the path) for the answer `status` (error code `code`, may be ""): outcome
 * "ok" (2xx), "denied" (401, 403) or "error". 0 or a negative errno (no
 * entry was written; the caller fails closed). */
int gw_auth_audit(gw_api_t *api, gw_request_t *req, int status, const char *code);

/* The session endpoints (routes.h kinds). Each answers and returns the status. */
int gw_auth_login(gw_api_t *api, gw_request_t *req);
int gw_auth_logout(gw_api_t *api, gw_request_t *req);
int gw_auth_logout_all(gw_api_t *api, gw_request_t *req);
int gw_auth_me(gw_api_t *api, gw_request_t *req);

#endif
