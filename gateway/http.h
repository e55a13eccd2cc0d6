/* http: what every gateway response shares: the per-thread state of a
 * civetweb worker, the request id, security headers, JSON bodies and the
 * API.md error shape, the capped body reader, and the one log line per
 * request. */
#ifndef GW_HTTP_H
#define GW_HTTP_H

#include <civetweb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ncc/bus.h"
#include "settings.h"

#define GW_JSON_TYPE "application/json; charset=utf-8"

/* Headers on every response, API or static (CRLF-separated, as civetweb's
 * additional_header option takes them). */
#define GW_SECURITY_HEADERS                                                                        \
    "X-Content-Type-Options: nosniff\r\n"                                                          \
    "X-Frame-Options: DENY\r\n"                                                                    \
    "Referrer-Policy: no-referrer\r\n"                                                             \
    "Content-Security-Policy: default-src 'self'; frame-ancestors 'none'"

/* One civetweb worker thread's own state (made by init_thread, freed by
 * exit_thread, reached with mg_get_thread_pointer). Its sockets are used by
 * this thread only. */
typedef struct {
    ncc_rpc_client_t *clients[GW_MAX_SERVICES]; /* one DEALER per service, made on first use */
    char trace_id[65];                          /* of the request being handled */
    int64_t started_us;                         /* when that request began (monotonic) */
} gw_thread_t;

gw_thread_t *gw_thread_new(void);
void gw_thread_destroy(gw_thread_t **self_p);

/* The calling worker's state, or NULL (allocation failed at thread start). */
gw_thread_t *gw_thread_of(const struct mg_connection *conn);

/* Set once before the listeners start: the Strict-Transport-Security
 * max-age sent on TLS responses (0 = header not sent). */
void gw_http_configure(int hsts_max_age);

/* True for an incoming X-Request-Id worth keeping: 8 to 64 characters of
 * hex digits and '-'. */
bool gw_http_request_id_valid(const char *text);

/* begin_request: takes the request id (or makes one) and the start time. */
void gw_http_begin(struct mg_connection *conn);

/* end_request: one log line (method, path, status, ms; never the query
 * string), the request counters and the latency histogram. */
void gw_http_end(const struct mg_connection *conn, int status);

/* Sends a complete response with the security headers, X-Request-Id,
 * Cache-Control: no-store, Strict-Transport-Security under TLS, and one
 * optional extra header (name NULL for none). Returns `status` (the value a
 * civetweb handler returns). */
int gw_http_send(struct mg_connection *conn, int status, const char *content_type, const char *body,
                 size_t len, const char *extra_name, const char *extra_value);

/* {"error":{"code","message","field"?}} with `status`. field may be NULL or "". */
int gw_http_send_error(struct mg_connection *conn, int status, const char *code, const char *field,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Reads the request body, at most max bytes, into a NUL-terminated buffer
 * (caller frees; never NULL on success, "" for no body).
 * 0; -EFBIG when the body is (or announces to be) larger than max;
 * -EIO when the connection fails mid-body; -ENOMEM. */
int gw_http_read_body(struct mg_connection *conn, size_t max, char **ret_body, size_t *ret_len);

#endif
