/* ncc-curve-keygen: prints a new ZeroMQ CURVE keypair (zmq_curve_keypair, Z85)
 * as NCC_BUS_CURVE_* settings, for the bus between machines (docs/bus.md
 * "Encryption between machines").
 *
 *   ncc-curve-keygen            NCC_BUS_CURVE_SECRET_KEY=... and _PUBLIC_KEY=...
 *   ncc-curve-keygen --server   the same plus NCC_BUS_CURVE_SERVER_KEY=<public>:
 *                               the deployment's server keypair
 *   --export                    as `export NAME='value'` lines for a shell
 *
 * Without --export the lines suit NCC_CONFIG_FILE and environment files (the
 * value verbatim: Z85 uses characters a shell would interpret, so quote it
 * there). The secret goes to stdout only: redirect it to a file of mode 600
 * or straight into the secret store. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

static void s_usage(FILE *out)
{
    fputs("Usage: ncc-curve-keygen [--server] [--export]\n"
          "Prints a new ZeroMQ CURVE keypair (Z85) as NCC_BUS_CURVE_SECRET_KEY and\n"
          "NCC_BUS_CURVE_PUBLIC_KEY lines; --server adds NCC_BUS_CURVE_SERVER_KEY (the\n"
          "public key every client needs); --export prints shell `export` lines.\n",
          out);
}

static void s_print(bool export, const char *name, const char *value)
{
    if (export)
        printf("export %s='%s'\n", name, value);
    else
        printf("%s=%s\n", name, value);
}

int main(int argc, char **argv)
{
    bool server = false;
    bool export = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--server") == 0) {
            server = true;
        } else if (strcmp(argv[i], "--export") == 0) {
            export = true;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            s_usage(stdout);
            return 0;
        } else {
            s_usage(stderr);
            return 2;
        }
    }
    if (!zmq_has("curve")) {
        fputs("ncc-curve-keygen: this libzmq was built without CURVE support\n", stderr);
        return 1;
    }
    char public_key[41];
    char secret_key[41];
    if (zmq_curve_keypair(public_key, secret_key) != 0) {
        fprintf(stderr, "ncc-curve-keygen: %s\n", zmq_strerror(zmq_errno()));
        return 1;
    }
    s_print(export, "NCC_BUS_CURVE_SECRET_KEY", secret_key);
    s_print(export, "NCC_BUS_CURVE_PUBLIC_KEY", public_key);
    if (server)
        s_print(export, "NCC_BUS_CURVE_SERVER_KEY", public_key);
    explicit_bzero(secret_key, sizeof secret_key);
    return fflush(stdout) == 0 ? 0 : 1;
}
