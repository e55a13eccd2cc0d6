/* bus_curve: ZeroMQ CURVE on the bus sockets (ncc/bus.h, docs/bus.md
 * "Encryption between machines").
 *
 * One process-wide configuration, guarded by a mutex because civetweb worker
 * threads make their own DEALERs: each bus socket reads it when it is made
 * (ncc_bus_curve_apply, before bind or connect) and keeps what it got. Keys
 * are checked once, up front, so that no socket option can fail later (CZMQ
 * asserts on a rejected option), and so that a partial or malformed
 * configuration stops the process instead of leaving it on plain TCP: after a
 * failed configuration no bus socket can be made at all.
 *
 * Client authentication (NCC_BUS_CURVE_ALLOWED_CLIENTS) is CZMQ's zauth actor,
 * the ZAP handler (RFC 27) of the process's ZeroMQ context, given an
 * in-memory certificate store holding the allowed public keys. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_internal.h"
#include "ncc/bus.h"

#define S_KEY_TEXT   40 /* Z85 characters of a 32-byte key */
#define S_KEY_BYTES  32
#define S_ZAP_DOMAIN "ncc"

const ncc_config_entry_t ncc_bus_curve_config[] = {
    {"NCC_BUS_CURVE_SECRET_KEY", NCC_CONFIG_STRING, NULL,
     offsetof(ncc_bus_curve_settings_t, secret_key), 0, 0, false, true,
     "the deployment's CURVE server secret key (Z85, 40 characters; ncc-curve-keygen --server), "
     "needed by every daemon that binds bus sockets (a client-only program may hold a client key "
     "of its own). Every NCC_BUS_CURVE_* unset: the bus is plain TCP (loopback deployments); "
     "partly set or malformed: the daemon does not start"},
    {"NCC_BUS_CURVE_PUBLIC_KEY", NCC_CONFIG_STRING, NULL,
     offsetof(ncc_bus_curve_settings_t, public_key), 0, 0, false, false,
     "the public key of NCC_BUS_CURVE_SECRET_KEY (checked against it; derived when unset)"},
    {"NCC_BUS_CURVE_SERVER_KEY", NCC_CONFIG_STRING, NULL,
     offsetof(ncc_bus_curve_settings_t, server_key), 0, 0, false, false,
     "the public key of the server keypair: set, the bus uses CURVE and clients connect with it "
     "(a client-only program without a secret key gets a keypair generated at start)"},
    {"NCC_BUS_CURVE_ALLOWED_CLIENTS", NCC_CONFIG_STRING, NULL,
     offsetof(ncc_bus_curve_settings_t, allowed_clients), 0, 0, false, false,
     "comma-separated client public keys the servers admit (ZAP), besides the server keypair's "
     "own; unset: any client may connect (traffic still encrypted)"},
    {NULL, 0, NULL, 0, 0, 0, false, false, NULL},
};

/* The configuration in force. */
typedef struct {
    bool enabled;                    /* CURVE on */
    bool serves;                     /* secret_key is the server keypair's */
    size_t allowed_count;            /* keys admitted by the ZAP handler */
    char secret_key[S_KEY_TEXT + 1]; /* this process's keypair (configured or generated) */
    char public_key[S_KEY_TEXT + 1]; /* its public half */
    char server_key[S_KEY_TEXT + 1]; /* the servers' public key */
} s_curve_t;

typedef enum {
    S_UNSET,  /* nothing configured yet: the next socket reads the environment */
    S_READY,  /* s_curve holds a checked configuration (maybe plaintext) */
    S_FAILED, /* the last configuration failed: no bus socket may be made */
} s_state_t;

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static s_state_t s_state = S_UNSET;
static s_curve_t s_curve;
static int s_last_rc;            /* result of the configuration in force */
static char s_last_err[256];     /* its message ("" on success) */
static zactor_t *s_auth;         /* zauth, when allowed clients are configured */
static bool s_atexit_registered; /* s_at_exit registered */

static bool s_given(const char *text)
{
    return text && *text;
}

/* True when `text` is a 40-character Z85 key; its bytes into out. */
static bool s_key_decode(const char *text, uint8_t out[S_KEY_BYTES])
{
    return strlen(text) == S_KEY_TEXT && zmq_z85_decode(out, text) != NULL;
}

static void s_wipe(void *data, size_t len)
{
    explicit_bzero(data, len);
}

/* Checks the allowed-client list and, when store is not NULL, inserts each
 * key into it. 0 or -EINVAL (message in err), -ENOMEM. */
static int s_parse_allowed(const char *list, zcertstore_t *store, size_t *ret_count, char *err,
                           size_t errlen)
{
    static const uint8_t no_secret[S_KEY_BYTES];
    size_t count = 0;
    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        const char *stop = end;
        while (stop > p && (stop[-1] == ' ' || stop[-1] == '\t'))
            stop--;
        count++;
        char key[S_KEY_TEXT + 1];
        uint8_t bytes[S_KEY_BYTES];
        size_t len = (size_t)(stop - p);
        if (len != S_KEY_TEXT) {
            snprintf(err, errlen,
                     "NCC_BUS_CURVE_ALLOWED_CLIENTS: entry %zu is not a CURVE public key "
                     "(40 Z85 characters)",
                     count);
            return -EINVAL;
        }
        memcpy(key, p, len);
        key[len] = '\0';
        if (!s_key_decode(key, bytes)) {
            snprintf(err, errlen,
                     "NCC_BUS_CURVE_ALLOWED_CLIENTS: entry %zu is not a CURVE public key "
                     "(40 Z85 characters)",
                     count);
            return -EINVAL;
        }
        if (store) {
            zcert_t *cert = zcert_new_from(bytes, no_secret);
            if (!cert)
                return -ENOMEM;
            zcertstore_insert(store, &cert);
        }
        if (!*end)
            break;
        p = end + 1;
    }
    *ret_count = count;
    return 0;
}

/* Checks `settings` into *curve and, when a ZAP handler is needed, a
 * certificate store of the admitted keys in *ret_store (caller owns). */
static int s_parse(const ncc_bus_curve_settings_t *settings, s_curve_t *curve,
                   zcertstore_t **ret_store, char *err, size_t errlen)
{
    uint8_t bytes[S_KEY_BYTES];
    zcertstore_t *store = NULL;
    int rc = -EINVAL;
    memset(curve, 0, sizeof *curve);
    *ret_store = NULL;

    const char *secret = settings ? settings->secret_key : NULL;
    const char *public = settings ? settings->public_key : NULL;
    const char *server = settings ? settings->server_key : NULL;
    const char *allowed = settings ? settings->allowed_clients : NULL;
    if (!s_given(secret) && !s_given(public) && !s_given(server) && !s_given(allowed))
        return 0; /* plaintext */

    if (!s_given(server)) {
        snprintf(err, errlen,
                 "%s is set but NCC_BUS_CURVE_SERVER_KEY is not: set the server key too, or "
                 "unset every NCC_BUS_CURVE_* variable for plain TCP",
                 s_given(secret)   ? "NCC_BUS_CURVE_SECRET_KEY"
                 : s_given(public) ? "NCC_BUS_CURVE_PUBLIC_KEY"
                                   : "NCC_BUS_CURVE_ALLOWED_CLIENTS");
        goto out;
    }
    if (!s_key_decode(server, bytes)) {
        snprintf(err, errlen, "NCC_BUS_CURVE_SERVER_KEY is not a CURVE key (40 Z85 characters)");
        goto out;
    }
    if (s_given(public) && !s_given(secret)) {
        snprintf(err, errlen,
                 "NCC_BUS_CURVE_PUBLIC_KEY is set but NCC_BUS_CURVE_SECRET_KEY is not");
        goto out;
    }
    if (!zmq_has("curve")) {
        snprintf(err, errlen, "this libzmq was built without CURVE support");
        rc = -ENOTSUP;
        goto out;
    }
    memcpy(curve->server_key, server, S_KEY_TEXT + 1);
    if (s_given(secret)) {
        if (!s_key_decode(secret, bytes)) {
            snprintf(err, errlen,
                     "NCC_BUS_CURVE_SECRET_KEY is not a CURVE key (40 Z85 characters)");
            goto out;
        }
        memcpy(curve->secret_key, secret, S_KEY_TEXT + 1);
        if (zmq_curve_public(curve->public_key, curve->secret_key) != 0) {
            snprintf(err, errlen, "cannot derive the public key of NCC_BUS_CURVE_SECRET_KEY");
            goto out;
        }
        if (s_given(public) && strcmp(public, curve->public_key) != 0) {
            snprintf(err, errlen,
                     "NCC_BUS_CURVE_PUBLIC_KEY is not the public key of "
                     "NCC_BUS_CURVE_SECRET_KEY");
            goto out;
        }
        curve->serves = strcmp(curve->public_key, curve->server_key) == 0;
    } else if (zmq_curve_keypair(curve->public_key, curve->secret_key) != 0) {
        snprintf(err, errlen, "cannot generate a CURVE keypair: %s", zmq_strerror(zmq_errno()));
        goto out;
    }
    /* The list is checked everywhere (one environment file may serve every
     * daemon) but only a process holding the server key runs the handler. */
    if (s_given(allowed)) {
        size_t count = 0;
        rc = s_parse_allowed(allowed, NULL, &count, err, errlen);
        if (rc < 0)
            goto out;
        if (curve->serves) {
            rc = -ENOMEM;
            store = zcertstore_new(NULL);
            if (!store)
                goto out;
            rc = s_parse_allowed(allowed, store, &count, err, errlen);
            if (rc < 0)
                goto out;
            /* The daemons are clients of each other with the server keypair. */
            uint8_t server_bytes[S_KEY_BYTES];
            static const uint8_t no_secret[S_KEY_BYTES];
            s_key_decode(curve->server_key, server_bytes);
            zcert_t *own = zcert_new_from(server_bytes, no_secret);
            rc = -ENOMEM;
            if (!own)
                goto out;
            zcertstore_insert(store, &own);
            curve->allowed_count = count;
        }
    }
    curve->enabled = true;
    *ret_store = store;
    store = NULL;
    rc = 0;
out:
    zcertstore_destroy(&store);
    if (rc < 0)
        s_wipe(curve, sizeof *curve);
    s_wipe(bytes, sizeof bytes);
    return rc;
}

static void s_at_exit(void)
{
    pthread_mutex_lock(&s_lock);
    zactor_destroy(&s_auth);
    pthread_mutex_unlock(&s_lock);
}

/* Makes `settings` the configuration in force. Called with s_lock held. */
static int s_configure_locked(const ncc_bus_curve_settings_t *settings)
{
    s_curve_t curve;
    zcertstore_t *store = NULL;
    char err[sizeof s_last_err] = "";

    zactor_destroy(&s_auth);
    s_wipe(&s_curve, sizeof s_curve);
    int rc = s_parse(settings, &curve, &store, err, sizeof err);
    if (rc == 0 && store) {
        /* zsys first, so its atexit (zsys_shutdown) runs after ours. */
        zsys_init();
        if (!s_atexit_registered && atexit(s_at_exit) == 0)
            s_atexit_registered = true;
        s_auth = zactor_new(zauth, store); /* takes the store */
        if (s_auth) {
            store = NULL;
        } else {
            snprintf(err, sizeof err, "cannot start the ZAP handler (zauth)");
            rc = -ENOMEM;
        }
    }
    zcertstore_destroy(&store);
    if (rc == 0) {
        s_curve = curve;
        s_state = S_READY;
    } else {
        s_state = S_FAILED;
    }
    s_wipe(&curve, sizeof curve);
    s_last_rc = rc;
    snprintf(s_last_err, sizeof s_last_err, "%s", err);
    return rc;
}

static void s_copy_err(char *err, size_t errlen)
{
    if (err && errlen > 0)
        snprintf(err, errlen, "%s", s_last_err);
}

int ncc_bus_curve_configure(const ncc_bus_curve_settings_t *settings, char *err, size_t errlen)
{
    pthread_mutex_lock(&s_lock);
    int rc = s_configure_locked(settings);
    s_copy_err(err, errlen);
    pthread_mutex_unlock(&s_lock);
    return rc;
}

/* Reads the environment when nothing is configured yet. s_lock held. */
static int s_ensure_locked(void)
{
    if (s_state != S_UNSET)
        return s_last_rc;
    ncc_bus_curve_settings_t settings = {0};
    char err[sizeof s_last_err] = "";
    int rc = ncc_config_load(ncc_bus_curve_config, &settings, err, sizeof err);
    if (rc < 0) {
        s_state = S_FAILED;
        s_last_rc = rc;
        snprintf(s_last_err, sizeof s_last_err, "%s", err);
    } else {
        rc = s_configure_locked(&settings);
    }
    if (settings.secret_key)
        s_wipe(settings.secret_key, strlen(settings.secret_key));
    ncc_config_free(ncc_bus_curve_config, &settings);
    return rc;
}

int ncc_bus_curve_from_env(char *err, size_t errlen)
{
    pthread_mutex_lock(&s_lock);
    int rc = s_ensure_locked();
    s_copy_err(err, errlen);
    pthread_mutex_unlock(&s_lock);
    return rc;
}

void ncc_bus_curve_status(ncc_bus_curve_status_t *ret_status)
{
    memset(ret_status, 0, sizeof *ret_status);
    pthread_mutex_lock(&s_lock);
    if (s_state == S_READY && s_curve.enabled) {
        ret_status->enabled = true;
        ret_status->serves = s_curve.serves;
        ret_status->allowed_clients = s_auth ? s_curve.allowed_count : 0;
        memcpy(ret_status->public_key, s_curve.public_key, sizeof ret_status->public_key);
        memcpy(ret_status->server_key, s_curve.server_key, sizeof ret_status->server_key);
    }
    pthread_mutex_unlock(&s_lock);
}

void ncc_bus_curve_shutdown(void)
{
    pthread_mutex_lock(&s_lock);
    zactor_destroy(&s_auth);
    s_wipe(&s_curve, sizeof s_curve);
    s_state = S_UNSET;
    s_last_rc = 0;
    s_last_err[0] = '\0';
    pthread_mutex_unlock(&s_lock);
}

int ncc_bus_curve_apply(zsock_t *sock, bool server)
{
    pthread_mutex_lock(&s_lock);
    int rc = s_ensure_locked();
    if (rc < 0) {
        rc = -EINVAL;
    } else if (s_curve.enabled && server && !s_curve.serves) {
        rc = -ENOKEY;
    } else if (s_curve.enabled && server) {
        zsock_set_zap_domain(sock, S_ZAP_DOMAIN);
        zsock_set_curve_server(sock, 1);
        zsock_set_curve_secretkey(sock, s_curve.secret_key);
    } else if (s_curve.enabled) {
        zsock_set_curve_serverkey(sock, s_curve.server_key);
        zsock_set_curve_publickey(sock, s_curve.public_key);
        zsock_set_curve_secretkey(sock, s_curve.secret_key);
    }
    pthread_mutex_unlock(&s_lock);
    return rc;
}
