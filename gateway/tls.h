/* tls: the gateway's certificate and TLS settings. A missing certificate file
 * is replaced by a self-signed one for 127.0.0.1 / localhost (development and
 * first start); production points NCC_TLS_CERT at a real one. */
#ifndef GW_TLS_H
#define GW_TLS_H

#include <stdbool.h>

/* TLS 1.2 cipher suites offered (TLS 1.3 uses OpenSSL's AEAD defaults). */
#define GW_TLS_CIPHERS                                                                             \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* civetweb's ssl_protocol_version for "TLS 1.2 and newer". */
#define GW_TLS_PROTOCOL_VERSION "4"

/* Makes sure `path` holds a key and certificate. When the file does not exist,
 * writes a new self-signed EC P-256 certificate (825 days, SAN localhost,
 * 127.0.0.1, ::1) with mode 0600, creating its folder (0700) if needed, and
 * sets *ret_created. 0; -EACCES/-EIO/... from the file system; -EPROTO when
 * OpenSSL fails. An existing file is left alone (not parsed here: civetweb
 * reports a bad one when it starts). */
int gw_tls_ensure_certificate(const char *path, bool *ret_created);

/* True when the file can be read by group or others (worth a warning). */
bool gw_tls_file_too_open(const char *path);

/* True when civetweb's run-time loading of OpenSSL resolves to the OpenSSL 3
 * the gateway is linked with, including the SSL_get_peer_certificate shim
 * (tls_compat.c). False means the first TLS connection would crash. */
bool gw_tls_compat_active(void);

/* civetweb's init_ssl callback: pins the protocol floor to TLS 1.2, the
 * cipher list and groups, and turns off renegotiation, compression and
 * session tickets, on top of the options civetweb was given. Returns 0 so
 * that civetweb loads the certificate itself, -1 on failure. */
int gw_tls_init_ctx(void *ssl_ctx, void *user_data);

#endif
