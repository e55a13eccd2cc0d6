/* tls: self-signed certificate generation (OpenSSL 3 API) and the SSL_CTX
 * settings of the HTTPS listener (see tls.h). */
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define S_VALID_DAYS 825

/* Creates every missing folder of `dir` with mode 0700. 0 or -errno. */
static int s_mkdir_p(const char *dir)
{
    char path[4096];
    int n = snprintf(path, sizeof path, "%s", dir);
    if (n < 0 || (size_t)n >= sizeof path)
        return -ENAMETOOLONG;
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

static int s_add_extension(X509 *cert, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return -EPROTO;
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -EPROTO;
}

/* A random positive 127-bit serial number. */
static int s_set_serial(X509 *cert)
{
    unsigned char bytes[16];
    if (RAND_bytes(bytes, sizeof bytes) != 1)
        return -EPROTO;
    bytes[0] &= 0x7f;
    BIGNUM *bn = BN_bin2bn(bytes, sizeof bytes, NULL);
    int rc = -EPROTO;
    if (bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)))
        rc = 0;
    BN_free(bn);
    return rc;
}

/* A new key and self-signed certificate; both caller-owned on success. */
static int s_make_certificate(EVP_PKEY **ret_key, X509 **ret_cert)
{
    int rc = -EPROTO;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = X509_new();
    if (!key || !cert)
        goto out;
    if (!X509_set_version(cert, 2) || s_set_serial(cert) < 0)
        goto out;
    if (!X509_gmtime_adj(X509_getm_notBefore(cert), -3600) ||
        !X509_time_adj_ex(X509_getm_notAfter(cert), S_VALID_DAYS, 0, NULL))
        goto out;
    X509_NAME *name = X509_get_subject_name(cert);
    if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                    (const unsigned char *)"ncc (self-signed)", -1, -1, 0) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost",
                                    -1, -1, 0) ||
        !X509_set_issuer_name(cert, name) || !X509_set_pubkey(cert, key))
        goto out;
    if (s_add_extension(cert, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
        s_add_extension(cert, NID_key_usage, "critical,digitalSignature") < 0 ||
        s_add_extension(cert, NID_ext_key_usage, "serverAuth") < 0 ||
        s_add_extension(cert, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1") < 0 ||
        s_add_extension(cert, NID_subject_key_identifier, "hash") < 0)
        goto out;
    if (X509_sign(cert, key, EVP_sha256()) <= 0)
        goto out;
    *ret_key = key;
    *ret_cert = cert;
    key = NULL;
    cert = NULL;
    rc = 0;
out:
    EVP_PKEY_free(key);
    X509_free(cert);
    return rc;
}

int gw_tls_ensure_certificate(const char *path, bool *ret_created)
{
    int rc = -EPROTO;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    FILE *file = NULL;
    char *dir_copy = NULL;
    char tmp[4096] = "";

    *ret_created = false;
    if (access(path, F_OK) == 0)
        return 0;
    if (errno != ENOENT)
        return -errno;

    dir_copy = strdup(path);
    if (!dir_copy) {
        rc = -ENOMEM;
        goto out;
    }
    rc = s_mkdir_p(dirname(dir_copy));
    if (rc < 0)
        goto out;
    int n = snprintf(tmp, sizeof tmp, "%s.XXXXXX", path);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        tmp[0] = '\0';
        rc = -ENAMETOOLONG;
        goto out;
    }
    rc = s_make_certificate(&key, &cert);
    if (rc < 0)
        goto out;

    /* mkstemp creates the file 0600; written whole, then linked into place
     * so that a reader never sees half a file and a concurrent start keeps
     * whichever certificate came first. */
    int fd = mkstemp(tmp);
    if (fd < 0) {
        rc = -errno;
        tmp[0] = '\0';
        goto out;
    }
    file = fdopen(fd, "w");
    if (!file) {
        rc = -errno;
        close(fd);
        goto out;
    }
    if (!PEM_write_PrivateKey(file, key, NULL, NULL, 0, NULL, NULL) ||
        !PEM_write_X509(file, cert)) {
        rc = -EPROTO;
        goto out;
    }
    if (fflush(file) != 0 || fsync(fileno(file)) != 0) {
        rc = -errno;
        goto out;
    }
    if (link(tmp, path) < 0) {
        rc = errno == EEXIST ? 0 : -errno;
        goto out;
    }
    *ret_created = true;
    rc = 0;
out:
    if (file)
        fclose(file);
    if (tmp[0])
        unlink(tmp);
    free(dir_copy);
    EVP_PKEY_free(key);
    X509_free(cert);
    return rc;
}

bool gw_tls_file_too_open(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0;
}

int gw_tls_init_ctx(void *ssl_ctx, void *user_data)
{
    SSL_CTX *ctx = ssl_ctx;
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION))
        return -1;
    if (!SSL_CTX_set_cipher_list(ctx, GW_TLS_CIPHERS))
        return -1;
    if (!SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384"))
        return -1;
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    return 0;
}
