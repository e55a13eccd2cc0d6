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

#include "cidr.h"
#include "ncc/bus.h"
#include "ncc/db.h"
#include "routes.h"
#include "session.h"
#include "settings.h"

#define GW_JSON_TYPE "application/json; charset=utf-8"

/* Headers on every response, API or static (CRLF-separated, as civetweb's
 * additional_header option takes them). */
#define GW_SECURITY_HEADERS                                                                        \
    "X-Content-Type-Options: nosniff\r\n"                                                          \
    "X-Frame-Options: DENY\r\n"                                                                    \
    "Referrer-Policy: no-referrer\r\n"                                                             \
    "Content-Security-Policy: default-src 'self'; base-uri 'none'; form-action 'self'; "           \
    "frame-ancestors 'none'; object-src 'none'"

/* One civetweb worker thread's own state (made by init_thread, freed by
 * exit_thread, reached with mg_get_thread_pointer). Its sockets are used by
 * this thread only. */
typedef struct {
    ncc_rpc_client_t *clients[GW_MAX_SERVICES]; /* one DEALER per service, made on first use */
    ncc_db_t *db;        /* the sessions' database, made on first use (session.h) */
    char trace_id[65];   /* of the request being handled */
    int64_t started_us;  /* when that request began (monotonic) */
    char error_code[48]; /* code of the error answer of this request ("" if none yet) */
    struct {
        bool active; /* gw_http_send keeps the answer instead of sending it */
        bool held;   /* an answer is kept */
        int status;
        char *content_type, *body, *extra_name, *extra_value; /* owned copies */
        size_t len;
    } hold; /* an answer waiting for its audit entry (gw_http_hold) */
} gw_thread_t;

/* One /api/v1 request as the handlers see it (on the worker's stack). */
typedef struct {
    struct mg_connection *conn;         /* borrowed */
    const struct mg_request_info *info; /* borrowed */
    gw_thread_t *thread;                /* the worker's state */
    const gw_route_match_t *match;      /* the route, NULL before the lookup */
    char address[GW_ADDRESS_MAX];       /* the client's address; "" when unknown */
    bool secure;                        /* https as the client sees it (TLS here or at the edge) */
    bool has_session;                   /* session below is filled */
    gw_session_t session;               /* the signed-in user */
    const char *machine;                /* a signed machine request (GW_ROUTE_SIGNED): its actor
                                           id ("pbx"), acting as role system; else NULL */
    char *body;                         /* the body already read (signed requests; owned by
                                           the reader), or NULL: read it when needed */
    size_t body_len;
} gw_request_t;

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
 * optional extra header (name NULL for none). A 204 has no body and no
 * Content-Type. Returns `status` (the value a civetweb handler returns).
 * While the thread holds answers (gw_http_hold) the response is kept, not
 * sent (a second one replaces the first). */
int gw_http_send(struct mg_connection *conn, int status, const char *content_type, const char *body,
                 size_t len, const char *extra_name, const char *extra_value);

/* Adds the headers of every answer (between mg_response_header_start and
 * _send): Cache-Control: no-store, the security headers, HSTS under TLS,
 * X-Request-Id. */
void gw_http_common_headers(struct mg_connection *conn);

/* Starts a 200 answer of unknown length (the push stream): the headers of
 * gw_http_send without Content-Length, and X-Accel-Buffering: no for the
 * TLS edge. The body follows with mg_write. 0 or -EIO. */
int gw_http_start_stream(struct mg_connection *conn, const char *content_type);

/* Starts a 200 answer that is a file of `length` bytes (Content-Length,
 * Content-Disposition, no-store and the security headers). 0 or -EIO. */
int gw_http_start_file(struct mg_connection *conn, const char *content_type, int64_t length,
                       const char *disposition);

/* {"error":{"code","message","field"?}} with `status`. field may be NULL or "". */
int gw_http_send_error(struct mg_connection *conn, int status, const char *code, const char *field,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* From now on this request's answer is kept, not sent, until gw_http_flush
 * sends it or gw_http_drop forgets it: an audited route answers only once its
 * audit entry is written. */
void gw_http_hold(struct mg_connection *conn);

/* Sends the kept answer (if any) and stops holding. Returns its status (0
 * when none was kept). */
int gw_http_flush(struct mg_connection *conn);

/* Forgets the kept answer and stops holding. */
void gw_http_drop(struct mg_connection *conn);

/* The status of the kept answer, 0 when none. */
int gw_http_held_status(const struct mg_connection *conn);

/* Reads the request body, at most max bytes, into a NUL-terminated buffer
 * (caller frees; never NULL on success, "" for no body).
 * 0; -EFBIG when the body is (or announces to be) larger than max;
 * -EIO when the connection fails mid-body; -ENOMEM. */
int gw_http_read_body(struct mg_connection *conn, size_t max, char **ret_body, size_t *ret_len);

#endif
