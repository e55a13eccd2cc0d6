/* bare_civetweb: the ceiling for the gateway benchmark. A civetweb server with
 * the gateway's thread count and keep-alive, and one handler on
 * /api/v1/services/{service}/ping that reads the request body and answers a
 * fixed JSON body (by default the gateway's own answer, captured by
 * bench/gateway.sh), with no session, no bus and no JSON conversion.
 *
 *   bare_civetweb --listen 127.0.0.1:28081,127.0.0.1:28444s --threads 16
 *                 [--cert combined.pem] [--body-file reply.json]
 *                 [--option name=value]...
 *
 * --option passes any other civetweb setting, so the bench can mirror the
 * gateway's. TLS goes through the gateway's OpenSSL 3 shim
 * (gateway/tls_compat.c, linked in by bench/module.mk), as in the gateway.
 * Runs until SIGTERM or SIGINT. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <civetweb.h>

#include "../gateway/tls.h" /* gw_tls_compat_active: the OpenSSL 3 shim */

#define S_MAX_OPTIONS 64
#define S_MAX_BODY    (64 * 1024)

static char *s_body;
static size_t s_body_len;

/* Reads the whole request body (as a handler of the gateway must), then
 * answers the fixed body. */
static int s_on_ping(struct mg_connection *conn, void *cbdata)
{
    const struct mg_request_info *info = mg_get_request_info(conn);
    char buf[4096];
    long long total = 0;
    int n;
    if (strcmp(info->request_method, "POST") != 0) {
        mg_send_http_error(conn, 405, "POST only");
        return 405;
    }
    while ((n = mg_read(conn, buf, sizeof buf)) > 0) {
        total += n;
        if (total > S_MAX_BODY) {
            mg_send_http_error(conn, 413, "too large");
            return 413;
        }
    }
    if (total == 0) {
        mg_send_http_error(conn, 400, "empty body");
        return 400;
    }
    mg_send_http_ok(conn, "application/json", (long long)s_body_len);
    mg_write(conn, s_body, s_body_len);
    return 200;
}

/* Reads `path` into s_body. 0 or -errno. */
static int s_load_body(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    s_body = malloc(S_MAX_BODY);
    int rc = -ENOMEM;
    if (s_body) {
        s_body_len = fread(s_body, 1, S_MAX_BODY, f);
        rc = ferror(f) ? -EIO : 0;
    }
    fclose(f);
    /* Trailing newlines are not part of the JSON the gateway answered. */
    while (rc == 0 && s_body_len > 0 &&
           (s_body[s_body_len - 1] == '\n' || s_body[s_body_len - 1] == '\r'))
        s_body_len--;
    return rc;
}

static void s_usage(void)
{
    fprintf(stderr, "usage: bare_civetweb --listen PORTS [--threads N] [--cert PEM]\n"
                    "                     [--body-file FILE] [--option name=value]...\n");
}

int main(int argc, char **argv)
{
    const char *options[2 * S_MAX_OPTIONS + 1];
    char *owned[S_MAX_OPTIONS]; /* name copies made for --option */
    int count = 0, owned_count = 0, rc = 1;
    const char *listen = NULL, *threads = "16", *cert = NULL, *body_file = NULL;
    struct mg_context *ctx = NULL;

    for (int i = 1; i < argc; i++) {
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (!value) {
            s_usage();
            return 2;
        }
        if (strcmp(argv[i], "--listen") == 0) {
            listen = value;
        } else if (strcmp(argv[i], "--threads") == 0) {
            threads = value;
        } else if (strcmp(argv[i], "--cert") == 0) {
            cert = value;
        } else if (strcmp(argv[i], "--body-file") == 0) {
            body_file = value;
        } else if (strcmp(argv[i], "--option") == 0) {
            const char *eq = strchr(value, '=');
            if (!eq || count + 2 >= 2 * S_MAX_OPTIONS - 8) {
                s_usage();
                goto out;
            }
            char *name = strndup(value, (size_t)(eq - value));
            if (!name)
                goto out;
            owned[owned_count++] = name;
            options[count++] = name;
            options[count++] = eq + 1;
        } else {
            s_usage();
            return 2;
        }
        i++;
    }
    if (!listen) {
        s_usage();
        return 2;
    }
    if (body_file) {
        int err = s_load_body(body_file);
        if (err < 0) {
            fprintf(stderr, "bare_civetweb: %s: %s\n", body_file, strerror(-err));
            goto out;
        }
    } else {
        s_body = strdup("{\"message\":\"ping from wrk\",\"service\":\"directory\"}");
        if (!s_body)
            goto out;
        s_body_len = strlen(s_body);
    }
    options[count++] = "listening_ports";
    options[count++] = listen;
    options[count++] = "num_threads";
    options[count++] = threads;
    options[count++] = "enable_keep_alive";
    options[count++] = "yes";
    if (cert) {
        options[count++] = "ssl_certificate";
        options[count++] = cert;
    }
    options[count] = NULL;

    if (cert && !mg_check_feature(MG_FEATURES_TLS)) {
        fprintf(stderr, "bare_civetweb: this civetweb has no TLS\n");
        goto out;
    }
    if (cert && !gw_tls_compat_active()) {
        fprintf(stderr, "bare_civetweb: civetweb cannot reach OpenSSL 3 (link with "
                        "gateway/tls_compat.c and GATEWAY_LDFLAGS, as bench/module.mk does)\n");
        goto out;
    }
    mg_init_library(cert ? MG_FEATURES_TLS : 0);
    signal(SIGPIPE, SIG_IGN);

    /* Block the stop signals before civetweb starts its threads, so that
     * they inherit the mask and sigwait below receives them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    struct mg_callbacks callbacks;
    memset(&callbacks, 0, sizeof callbacks);
    ctx = mg_start(&callbacks, NULL, options);
    if (!ctx) {
        fprintf(stderr, "bare_civetweb: cannot listen on %s\n", listen);
        goto out_library;
    }
    mg_set_request_handler(ctx, "/api/v1/services/*/ping", s_on_ping, NULL);
    printf("bare_civetweb: listening on %s, %s threads, body %zu bytes\n", listen, threads,
           s_body_len);
    fflush(stdout);
    int signum = 0;
    sigwait(&stop, &signum);
    mg_stop(ctx);
    rc = 0;
out_library:
    mg_exit_library();
out:
    for (int i = 0; i < owned_count; i++)
        free(owned[i]);
    free(s_body);
    return rc;
}
