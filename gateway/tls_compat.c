/* tls_compat: makes Debian bookworm's civetweb 1.15 usable with OpenSSL 3.
 *
 * That civetweb loads OpenSSL at run time: dlopen("libssl.so") and
 * dlopen("libcrypto.so"), then dlsym() of each function it uses, built for
 * the OpenSSL 1.1 API. OpenSSL 3 no longer exports SSL_get_peer_certificate
 * (now a macro for SSL_get1_peer_certificate); civetweb 1.15 treats that
 * symbol as optional, leaves a NULL pointer, and calls it on every TLS
 * connection: the worker thread dies with SIGSEGV (upstream issue
 * civetweb/civetweb#1334; 1.16 refuses to start instead).
 *
 * The fix, confined to those two library names: our dlopen() hands civetweb
 * the handle of the program itself, whose dlsym() finds the OpenSSL functions
 * the gateway is linked with, and finds SSL_get_peer_certificate below. Every
 * other dlopen() goes to the real one unchanged. gateway/module.mk exports
 * both symbols from the executable (-Wl,--export-dynamic-symbol). As a side
 * effect the runtime image needs no libssl-dev symlinks (libssl.so).
 * gw_tls_compat_active() lets the gateway refuse to start if this ever stops
 * being in effect, rather than crash on the first connection. */
#include "tls.h"

#include <dlfcn.h>
#include <string.h>

#include <openssl/ssl.h>

#undef SSL_get_peer_certificate

/* The OpenSSL 1.1 name, with its meaning: a new reference the caller frees. */
X509 *SSL_get_peer_certificate(const SSL *ssl);

X509 *SSL_get_peer_certificate(const SSL *ssl)
{
    return SSL_get1_peer_certificate(ssl);
}

typedef void *(*s_dlopen_fn)(const char *file, int mode);

static bool s_is_openssl_name(const char *file)
{
    return file && (strcmp(file, "libssl.so") == 0 || strcmp(file, "libcrypto.so") == 0);
}

void *dlopen(const char *file, int mode)
{
    /* The next definition in lookup order: libc's (or a sanitizer's wrapper). */
    void *next = dlsym(RTLD_NEXT, "dlopen");
    s_dlopen_fn real;
    if (!next)
        return NULL;
    memcpy(&real, &next, sizeof real);
    return real(s_is_openssl_name(file) ? NULL : file, mode);
}

bool gw_tls_compat_active(void)
{
    void *self = dlopen("libssl.so", RTLD_LAZY);
    if (!self)
        return false;
    bool ok = dlsym(self, "SSL_get_peer_certificate") != NULL && dlsym(self, "SSL_accept") != NULL;
    dlclose(self);
    return ok;
}
