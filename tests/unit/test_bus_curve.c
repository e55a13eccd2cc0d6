/* Tests for the bus's CURVE encryption (ncc/bus.h, docs/bus.md "Encryption
 * between machines"): a CURVE server refuses plaintext clients and clients
 * with the wrong server key, talks to clients with the right one (their own
 * keypair or one generated per process), PUB/SUB delivers under CURVE, the
 * ZAP handler (zauth) admits only listed client keys, partial or malformed
 * keys are refused (and then no bus socket can be made at all, also through
 * the environment and the service frame), and the bytes on the wire, recorded
 * by a small TCP relay, hold a known marker without CURVE and not with it.
 *
 * The configuration is process-wide and read when a socket is made, so a test
 * configures the server side, makes the server, configures the client side
 * and makes the client; Criterion runs each test in its own process. */
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ncc/bus.h"
#include "ncc/db.h"
#include "ncc/log.h"
#include "ncc/service.h"
#include "ncc_test.h"

#define MARKER "ncc-curve-wire-marker-5d2c9e"

typedef struct {
    char public_key[41];
    char secret_key[41];
} keypair_t;

static keypair_t server_keys; /* the deployment's server keypair */
static keypair_t client_a;    /* a client with its own keypair (listed) */
static keypair_t client_b;    /* another client (never listed) */
static keypair_t wrong;       /* a server keypair nobody runs */

static const char *const curve_env[] = {"NCC_BUS_CURVE_SECRET_KEY", "NCC_BUS_CURVE_PUBLIC_KEY",
                                        "NCC_BUS_CURVE_SERVER_KEY", "NCC_BUS_CURVE_ALLOWED_CLIENTS",
                                        NULL};

static void s_keypair(keypair_t *pair)
{
    cr_assert_eq(zmq_curve_keypair(pair->public_key, pair->secret_key), 0);
}

static void setup(void)
{
    ncc_log_init("test_bus_curve", NCC_LOG_ERROR);
    for (size_t i = 0; curve_env[i]; i++)
        unsetenv(curve_env[i]);
    cr_assert(zmq_has("curve"), "libzmq without CURVE");
    s_keypair(&server_keys);
    s_keypair(&client_a);
    s_keypair(&client_b);
    s_keypair(&wrong);
}

static void teardown(void)
{
    ncc_bus_curve_shutdown();
}

TestSuite(bus_curve, .init = setup, .fini = teardown, .timeout = 60);

/* ---- configurations --------------------------------------------------------- */

static void s_configure(const char *secret, const char *public, const char *server,
                        const char *allowed)
{
    ncc_bus_curve_settings_t settings = {
        .secret_key = (char *)secret,
        .public_key = (char *)public,
        .server_key = (char *)server,
        .allowed_clients = (char *)allowed,
    };
    char err[256] = "";
    cr_assert_eq(ncc_bus_curve_configure(&settings, err, sizeof err), 0, "configure: %s", err);
}

/* A daemon: the server keypair, optionally with a list of admitted clients. */
static void s_as_server(const char *allowed)
{
    s_configure(server_keys.secret_key, server_keys.public_key, server_keys.public_key, allowed);
    ncc_bus_curve_status_t status;
    ncc_bus_curve_status(&status);
    cr_assert(status.enabled && status.serves);
}

/* A client process: its own keypair (or NULL: one generated) and a server key. */
static void s_as_client(const keypair_t *own, const char *server_key)
{
    s_configure(own ? own->secret_key : NULL, own ? own->public_key : NULL, server_key, NULL);
    ncc_bus_curve_status_t status;
    ncc_bus_curve_status(&status);
    cr_assert(status.enabled);
    cr_assert_not(status.serves);
    if (own)
        cr_assert_str_eq(status.public_key, own->public_key);
    else
        cr_assert_eq(strlen(status.public_key), 40);
}

static void s_as_plaintext(void)
{
    char err[256] = "";
    cr_assert_eq(ncc_bus_curve_configure(NULL, err, sizeof err), 0);
    ncc_bus_curve_status_t status;
    ncc_bus_curve_status(&status);
    cr_assert_not(status.enabled);
}

/* ---- a server in a thread ---------------------------------------------------- */

typedef struct {
    ncc_rpc_server_t *server; /* made by the test, polled by the thread */
    pthread_t thread;
    atomic_bool stop;
    atomic_int handled; /* Ping handler calls */
} server_t;

static void s_on_ping(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    server_t *s = arg;
    const Ncc__Ping *ping = (const Ncc__Ping *)request->message;
    atomic_fetch_add(&s->handled, 1);
    Ncc__Pong pong = NCC__PONG__INIT;
    pong.message = ping->message ? ping->message : "";
    pong.service = "curve";
    ncc_reply_message(reply, &pong.base);
}

static void *s_server_run(void *arg)
{
    server_t *s = arg;
    zpoller_t *poller = zpoller_new(ncc_rpc_server_socket(s->server), NULL);
    zpoller_set_nonstop(poller, true);
    while (!atomic_load(&s->stop)) {
        if (zpoller_wait(poller, 20))
            ncc_rpc_server_process(s->server);
    }
    zpoller_destroy(&poller);
    return NULL;
}

/* Starts a server on `endpoint` with the configuration in force. */
static void server_start(server_t *s, const char *endpoint)
{
    memset(s, 0, sizeof *s);
    s->server = ncc_rpc_server_new(endpoint, "curve");
    cr_assert_not_null(s->server);
    cr_assert_eq(ncc_rpc_server_on(s->server, &ncc__ping__descriptor, s_on_ping, s), 0);
    cr_assert_eq(pthread_create(&s->thread, NULL, s_server_run, s), 0);
}

static void server_stop(server_t *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
    ncc_rpc_server_destroy(&s->server);
}

/* Pings `text`: 0 with the echo checked, or the call's error. */
static int s_ping(ncc_rpc_client_t *client, const char *text, int timeout_ms)
{
    Ncc__Ping ping = NCC__PING__INIT;
    ping.message = (char *)text;
    ProtobufCMessage *answer = NULL;
    Ncc__Error *error = NULL;
    int rc = ncc_rpc_call_typed(client, NULL, &ping.base, &ncc__pong__descriptor, timeout_ms,
                                &answer, &error);
    if (error)
        ncc__error__free_unpacked(error, NULL);
    if (rc == 0) {
        cr_assert_str_eq(((Ncc__Pong *)answer)->message, text);
        protobuf_c_message_free_unpacked(answer, NULL);
    }
    return rc;
}

/* ---- requests ------------------------------------------------------------------ */

Test(bus_curve, plaintext_client_gets_nothing_from_a_curve_server)
{
    server_t s;
    s_as_server(NULL);
    server_start(&s, "tcp://127.0.0.1:*");

    s_as_plaintext();
    ncc_rpc_client_t *client = ncc_rpc_client_new(ncc_rpc_server_endpoint(s.server));
    cr_assert_not_null(client);
    cr_assert_eq(s_ping(client, "hello", 1000), -ETIMEDOUT);
    cr_assert_eq(atomic_load(&s.handled), 0, "a plaintext request reached the handler");

    ncc_rpc_client_destroy(&client);
    server_stop(&s);
}

Test(bus_curve, right_server_key_round_trips)
{
    server_t s;
    s_as_server(NULL);
    server_start(&s, "tcp://127.0.0.1:*");
    const char *endpoint = ncc_rpc_server_endpoint(s.server);

    /* Another daemon: a client with the server keypair. */
    ncc_rpc_client_t *daemon = ncc_rpc_client_new(endpoint);
    cr_assert_not_null(daemon);
    cr_assert_eq(s_ping(daemon, "from a daemon", 3000), 0);

    /* A client with a keypair of its own. */
    s_as_client(&client_a, server_keys.public_key);
    ncc_rpc_client_t *own = ncc_rpc_client_new(endpoint);
    cr_assert_not_null(own);
    cr_assert_eq(s_ping(own, "from client a", 3000), 0);

    /* A client with none: one is generated for the process. */
    s_as_client(NULL, server_keys.public_key);
    ncc_rpc_client_t *generated = ncc_rpc_client_new(endpoint);
    cr_assert_not_null(generated);
    cr_assert_eq(s_ping(generated, "from a generated keypair", 3000), 0);
    cr_assert_eq(atomic_load(&s.handled), 3);

    ncc_rpc_client_destroy(&generated);
    ncc_rpc_client_destroy(&own);
    ncc_rpc_client_destroy(&daemon);
    server_stop(&s);
}

Test(bus_curve, wrong_server_key_times_out)
{
    server_t s;
    s_as_server(NULL);
    server_start(&s, "tcp://127.0.0.1:*");

    s_as_client(&client_a, wrong.public_key);
    ncc_rpc_client_t *client = ncc_rpc_client_new(ncc_rpc_server_endpoint(s.server));
    cr_assert_not_null(client);
    cr_assert_eq(s_ping(client, "hello", 1000), -ETIMEDOUT);
    cr_assert_eq(atomic_load(&s.handled), 0);

    ncc_rpc_client_destroy(&client);
    server_stop(&s);
}

/* The client's configuration is read when it is made, and the ZAP handler
 * runs for the process once the server side is configured: so the client is
 * made first, connecting to a port the server binds next. */
static int s_call_through_zap(const keypair_t *client_keys, const char *allowed)
{
    int port = ncct_free_port();
    cr_assert_gt(port, 0);
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);

    s_as_client(client_keys, server_keys.public_key);
    ncc_rpc_client_t *client = ncc_rpc_client_new(endpoint);
    cr_assert_not_null(client);

    server_t s;
    s_as_server(allowed);
    ncc_bus_curve_status_t status;
    ncc_bus_curve_status(&status);
    cr_assert_eq(status.allowed_clients, 1);
    server_start(&s, endpoint);

    int rc = s_ping(client, "through zap", 2000);
    int handled = atomic_load(&s.handled);
    cr_assert_eq(handled, rc == 0 ? 1 : 0);

    /* The daemons themselves (the server keypair) are always admitted. */
    ncc_rpc_client_t *daemon = ncc_rpc_client_new(endpoint);
    cr_assert_not_null(daemon);
    cr_assert_eq(s_ping(daemon, "daemon through zap", 3000), 0);

    ncc_rpc_client_destroy(&daemon);
    ncc_rpc_client_destroy(&client);
    server_stop(&s);
    return rc;
}

Test(bus_curve, listed_client_is_admitted)
{
    cr_assert_eq(s_call_through_zap(&client_a, client_a.public_key), 0);
}

Test(bus_curve, unlisted_client_is_refused)
{
    cr_assert_eq(s_call_through_zap(&client_b, client_a.public_key), -ETIMEDOUT);
}

/* ---- the wire ---------------------------------------------------------------------- */

#define RELAY_PAIRS 8

/* A TCP relay in a thread: accepts on its own port, connects each client to
 * the real server, forwards both ways and records every byte. */
typedef struct {
    int listen_fd;
    int port;        /* where clients connect */
    int target_port; /* the real server */
    pthread_t thread;
    atomic_bool stop;
    char *bytes; /* everything relayed, both directions; read after relay_stop */
    size_t len;
    size_t cap;
} relay_t;

static void s_record(relay_t *r, const char *data, size_t n)
{
    if (r->len + n > r->cap) {
        size_t cap = (r->len + n) * 2;
        char *bytes = realloc(r->bytes, cap);
        cr_assert_not_null(bytes);
        r->bytes = bytes;
        r->cap = cap;
    }
    memcpy(r->bytes + r->len, data, n);
    r->len += n;
}

static bool s_write_all(int fd, const char *data, size_t n)
{
    while (n > 0) {
        ssize_t done = write(fd, data, n);
        if (done < 0 && errno == EINTR)
            continue;
        if (done <= 0)
            return false;
        data += done;
        n -= (size_t)done;
    }
    return true;
}

static int s_connect_local(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static void *s_relay_run(void *arg)
{
    relay_t *r = arg;
    int pairs[RELAY_PAIRS][2];
    int count = 0;
    char buf[16384];
    while (!atomic_load(&r->stop)) {
        struct pollfd fds[1 + 2 * RELAY_PAIRS];
        fds[0] = (struct pollfd){.fd = r->listen_fd, .events = POLLIN};
        for (int i = 0; i < count; i++) {
            fds[1 + 2 * i] = (struct pollfd){.fd = pairs[i][0], .events = POLLIN};
            fds[2 + 2 * i] = (struct pollfd){.fd = pairs[i][1], .events = POLLIN};
        }
        if (poll(fds, (nfds_t)(1 + 2 * count), 20) <= 0)
            continue;
        for (int i = 0; i < count; i++) {
            for (int side = 0; side < 2; side++) {
                if (!(fds[1 + 2 * i + side].revents & (POLLIN | POLLHUP | POLLERR)))
                    continue;
                if (pairs[i][0] < 0)
                    continue;
                ssize_t n = read(pairs[i][side], buf, sizeof buf);
                if (n > 0) {
                    s_record(r, buf, (size_t)n);
                    if (s_write_all(pairs[i][1 - side], buf, (size_t)n))
                        continue;
                }
                close(pairs[i][0]);
                close(pairs[i][1]);
                pairs[i][0] = pairs[i][1] = -1;
            }
        }
        int kept = 0;
        for (int i = 0; i < count; i++)
            if (pairs[i][0] >= 0) {
                pairs[kept][0] = pairs[i][0];
                pairs[kept][1] = pairs[i][1];
                kept++;
            }
        count = kept;
        if (fds[0].revents & POLLIN) {
            int client = accept(r->listen_fd, NULL, NULL);
            int upstream = client >= 0 ? s_connect_local(r->target_port) : -1;
            if (client >= 0 && upstream >= 0 && count < RELAY_PAIRS) {
                pairs[count][0] = client;
                pairs[count][1] = upstream;
                count++;
            } else {
                if (client >= 0)
                    close(client);
                if (upstream >= 0)
                    close(upstream);
            }
        }
    }
    for (int i = 0; i < count; i++) {
        close(pairs[i][0]);
        close(pairs[i][1]);
    }
    return NULL;
}

/* Relays to the port of `endpoint` ("tcp://127.0.0.1:<port>"). */
static void relay_start(relay_t *r, const char *endpoint)
{
    memset(r, 0, sizeof *r);
    const char *colon = strrchr(endpoint, ':');
    cr_assert_not_null(colon);
    r->target_port = (int)strtol(colon + 1, NULL, 10);
    r->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(r->listen_fd, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    cr_assert_eq(bind(r->listen_fd, (struct sockaddr *)&addr, sizeof addr), 0);
    cr_assert_eq(listen(r->listen_fd, 8), 0);
    cr_assert_eq(getsockname(r->listen_fd, (struct sockaddr *)&addr, &len), 0);
    r->port = ntohs(addr.sin_port);
    cr_assert_eq(pthread_create(&r->thread, NULL, s_relay_run, r), 0);
}

static void relay_stop(relay_t *r)
{
    atomic_store(&r->stop, true);
    pthread_join(r->thread, NULL);
    close(r->listen_fd);
}

/* Round trip of a Ping carrying MARKER through a relay, with the
 * configuration in force on both sides (`curve`: the server one, then a
 * client one). Returns the bytes recorded (caller frees), *ret_len their count. */
static char *s_relayed_round_trip(bool curve, size_t *ret_len)
{
    server_t s;
    if (curve)
        s_as_server(NULL);
    else
        s_as_plaintext();
    server_start(&s, "tcp://127.0.0.1:*");
    relay_t r;
    relay_start(&r, ncc_rpc_server_endpoint(s.server));

    if (curve)
        s_as_client(&client_a, server_keys.public_key);
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", r.port);
    ncc_rpc_client_t *client = ncc_rpc_client_new(endpoint);
    cr_assert_not_null(client);
    cr_assert_eq(s_ping(client, "payload " MARKER " payload", 3000), 0);
    cr_assert_eq(atomic_load(&s.handled), 1);

    ncc_rpc_client_destroy(&client);
    relay_stop(&r);
    server_stop(&s);
    *ret_len = r.len;
    return r.bytes;
}

Test(bus_curve, wire_holds_the_marker_only_without_curve)
{
    size_t len = 0;
    char *bytes = s_relayed_round_trip(false, &len);
    cr_assert_not_null(bytes);
    cr_assert_not_null(memmem(bytes, len, MARKER, strlen(MARKER)),
                       "the relay did not see the plaintext marker: the check is blind");
    free(bytes);

    bytes = s_relayed_round_trip(true, &len);
    cr_assert_not_null(bytes);
    /* Request and reply went through (the handshake alone is ~ 400 bytes). */
    cr_assert_gt(len, 2 * strlen(MARKER) + 400);
    cr_assert_null(memmem(bytes, len, MARKER, strlen(MARKER)),
                   "the marker crossed the wire in clear under CURVE");
    cr_assert_null(memmem(bytes, len, "ncc.Ping", 8), "the type frame crossed in clear");
    free(bytes);
}

/* ---- events -------------------------------------------------------------------------- */

static const char *s_url(void)
{
    const char *url = getenv("NCC_DATABASE_URL");
    cr_assert(url && *url, "NCC_DATABASE_URL is not set (. var/env after scripts/pg.sh start)");
    return url;
}

static ncc_db_t *s_connect(const char *schema)
{
    ncc_db_t *db = ncc_db_new(s_url(), schema);
    cr_assert_not_null(db);
    cr_assert_eq(ncc_db_connect(db), 0, "connect: %s", ncc_db_error(db));
    return db;
}

static int s_on_event(void *arg, ncc_db_t *db, const Ncc__Envelope *event,
                      const ProtobufCMessage *message)
{
    char *seen = arg;
    snprintf(seen, 64, "%s", ((const Ncc__Ping *)message)->message);
    return 0;
}

/* A copy of the publisher answering replays in its own thread. */
typedef struct {
    ncc_db_t *db;
    ncc_publisher_t *publisher;
    ncc_rpc_server_t *server;
    pthread_t thread;
    atomic_bool stop;
} replayer_t;

static void *s_replayer_run(void *arg)
{
    replayer_t *r = arg;
    zpoller_t *poller = zpoller_new(ncc_rpc_server_socket(r->server), NULL);
    zpoller_set_nonstop(poller, true);
    while (!atomic_load(&r->stop)) {
        if (zpoller_wait(poller, 20))
            ncc_rpc_server_process(r->server);
    }
    zpoller_destroy(&poller);
    return NULL;
}

/* Heartbeats until `sub` has something waiting (at most ~2 s): true when it
 * connected, false when nothing ever arrived. */
static bool s_receives(ncc_publisher_t *pub, ncc_subscriber_t *sub)
{
    zpoller_t *poller = zpoller_new(ncc_subscriber_socket(sub), NULL);
    bool ready = false;
    for (int i = 0; i < 40 && !ready; i++) {
        cr_assert_eq(ncc_publisher_heartbeat(pub), 0);
        ready = zpoller_wait(poller, 50) != NULL;
    }
    zpoller_destroy(&poller);
    return ready;
}

Test(bus_curve, pub_sub_delivers_under_curve)
{
    char schema[64];
    snprintf(schema, sizeof schema, "test_bus_curve_%d", (int)getpid());
    static const ncc_migration_t none[] = {{NULL, NULL}};
    ncc_db_t *db = s_connect(schema);
    cr_assert_eq(ncc_db_migrate(db, schema, none), 0, "migrate: %s", ncc_db_error(db));

    s_as_server(NULL);
    ncc_db_t *db_pub = s_connect(schema);
    ncc_publisher_t *pub = ncc_publisher_new(db_pub, "curvepub", "tcp://127.0.0.1:*");
    cr_assert_not_null(pub);
    replayer_t replayer = {.db = s_connect(schema)};
    replayer.publisher = ncc_publisher_new(replayer.db, "curvepub", "tcp://127.0.0.1:*");
    replayer.server = ncc_rpc_server_new("tcp://127.0.0.1:*", "curvepub");
    cr_assert_not_null(replayer.publisher);
    cr_assert_not_null(replayer.server);
    cr_assert_eq(ncc_publisher_serve_replay(replayer.publisher, replayer.server), 0);
    cr_assert_eq(pthread_create(&replayer.thread, NULL, s_replayer_run, &replayer), 0);

    /* A subscriber that has the wrong server key hears nothing. */
    s_as_client(&client_b, wrong.public_key);
    ncc_db_t *db_deaf = s_connect(schema);
    ncc_subscriber_t *deaf = ncc_subscriber_new(db_deaf, "curvepub", ncc_publisher_endpoint(pub),
                                                ncc_rpc_server_endpoint(replayer.server));
    cr_assert_not_null(deaf);
    cr_assert_not(s_receives(pub, deaf), "a SUB with the wrong server key received");

    /* One with the right key gets the event. */
    s_as_client(&client_a, server_keys.public_key);
    ncc_db_t *db_sub = s_connect(schema);
    ncc_subscriber_t *sub = ncc_subscriber_new(db_sub, "curvepub", ncc_publisher_endpoint(pub),
                                               ncc_rpc_server_endpoint(replayer.server));
    cr_assert_not_null(sub);
    char seen[64] = "";
    cr_assert_eq(ncc_subscriber_on(sub, "ncc.Ping", s_on_event, seen), 0);
    cr_assert(s_receives(pub, sub), "the CURVE subscriber never connected");

    cr_assert_eq(ncc_db_begin(db), 0);
    Ncc__Ping ping = NCC__PING__INIT;
    ping.message = "event under curve";
    cr_assert_eq(ncc_outbox_add(db, NULL, &ping.base), 0);
    cr_assert_eq(ncc_db_commit(db), 0);
    cr_assert_eq(ncc_publisher_flush(pub), 1);

    zpoller_t *poller = zpoller_new(ncc_subscriber_socket(sub), NULL);
    for (int i = 0; i < 100 && !*seen; i++) {
        zpoller_wait(poller, 20);
        ncc_subscriber_process(sub);
    }
    zpoller_destroy(&poller);
    cr_assert_str_eq(seen, "event under curve");
    cr_assert_eq(ncc_subscriber_cursor(sub), 1);

    ncc_subscriber_destroy(&sub);
    ncc_db_destroy(&db_sub);
    ncc_subscriber_destroy(&deaf);
    ncc_db_destroy(&db_deaf);
    atomic_store(&replayer.stop, true);
    pthread_join(replayer.thread, NULL);
    ncc_rpc_server_destroy(&replayer.server);
    ncc_publisher_destroy(&replayer.publisher);
    ncc_db_destroy(&replayer.db);
    ncc_publisher_destroy(&pub);
    ncc_db_destroy(&db_pub);
    char sql[128];
    snprintf(sql, sizeof sql, "drop schema if exists %s cascade", schema);
    ncc_db_run(db, sql, 0, NULL);
    ncc_db_destroy(&db);
}

/* ---- configuration ----------------------------------------------------------------- */

/* Configures `settings`, expects -EINVAL with `variable` named in the
 * message and no key text in it; then no bus socket can be made. */
static void s_refused(const ncc_bus_curve_settings_t *settings, const char *variable)
{
    char err[256] = "";
    cr_assert_eq(ncc_bus_curve_configure(settings, err, sizeof err), -EINVAL, "accepted");
    cr_assert_not_null(strstr(err, variable), "'%s' does not name %s", err, variable);
    const char *keys[] = {settings->secret_key, settings->public_key, settings->server_key};
    for (size_t i = 0; i < 3; i++)
        if (keys[i] && strlen(keys[i]) >= 8) {
            char head[9];
            memcpy(head, keys[i], 8);
            head[8] = '\0';
            cr_assert_null(strstr(err, head), "the message quotes a key: %s", err);
        }
    /* Never a silent fallback to plain TCP. */
    ncc_rpc_client_t *client = ncc_rpc_client_new("tcp://127.0.0.1:9");
    cr_assert_null(client);
    ncc_rpc_server_t *server = ncc_rpc_server_new("tcp://127.0.0.1:*", "refused");
    cr_assert_null(server);
    char again[256] = "";
    cr_assert_eq(ncc_bus_curve_from_env(again, sizeof again), -EINVAL);
    cr_assert_str_eq(again, err);
}

Test(bus_curve, partial_or_malformed_keys_are_refused)
{
    ncc_bus_curve_settings_t secret_only = {.secret_key = server_keys.secret_key};
    s_refused(&secret_only, "NCC_BUS_CURVE_SERVER_KEY");
    ncc_bus_curve_settings_t public_only = {.public_key = client_a.public_key,
                                            .server_key = server_keys.public_key};
    s_refused(&public_only, "NCC_BUS_CURVE_SECRET_KEY");
    ncc_bus_curve_settings_t allowed_only = {.allowed_clients = client_a.public_key};
    s_refused(&allowed_only, "NCC_BUS_CURVE_SERVER_KEY");
    ncc_bus_curve_settings_t short_server = {.server_key = "abc"};
    s_refused(&short_server, "NCC_BUS_CURVE_SERVER_KEY");
    char bad[41];
    memcpy(bad, server_keys.secret_key, sizeof bad);
    bad[7] = '"'; /* not in the Z85 alphabet */
    ncc_bus_curve_settings_t bad_secret = {.secret_key = bad, .server_key = server_keys.public_key};
    s_refused(&bad_secret, "NCC_BUS_CURVE_SECRET_KEY");
    ncc_bus_curve_settings_t mismatch = {.secret_key = server_keys.secret_key,
                                         .public_key = client_a.public_key,
                                         .server_key = server_keys.public_key};
    s_refused(&mismatch, "NCC_BUS_CURVE_PUBLIC_KEY");
    char list[128];
    snprintf(list, sizeof list, "%s,not-a-key", client_a.public_key);
    ncc_bus_curve_settings_t bad_list = {.secret_key = server_keys.secret_key,
                                         .server_key = server_keys.public_key,
                                         .allowed_clients = list};
    s_refused(&bad_list, "NCC_BUS_CURVE_ALLOWED_CLIENTS");

    /* A good configuration makes sockets possible again; a client-only one
     * cannot serve. */
    s_as_client(&client_a, server_keys.public_key);
    ncc_rpc_client_t *client = ncc_rpc_client_new("tcp://127.0.0.1:9");
    cr_assert_not_null(client);
    ncc_rpc_client_destroy(&client);
    ncc_rpc_server_t *server = ncc_rpc_server_new("tcp://127.0.0.1:*", "client-only");
    cr_assert_null(server, "a process without the server secret key served");
    /* No keys at all: plain TCP, as on loopback. */
    s_as_plaintext();
    server = ncc_rpc_server_new("tcp://127.0.0.1:*", "plain");
    cr_assert_not_null(server);
    ncc_rpc_server_destroy(&server);
}

Test(bus_curve, environment_is_read_once_by_the_first_socket)
{
    /* A partial environment: the first socket fails, and keeps failing. */
    setenv("NCC_BUS_CURVE_SECRET_KEY", server_keys.secret_key, 1);
    cr_assert_null(ncc_rpc_client_new("tcp://127.0.0.1:9"));
    char err[256] = "";
    cr_assert_eq(ncc_bus_curve_from_env(err, sizeof err), -EINVAL);
    cr_assert_not_null(strstr(err, "NCC_BUS_CURVE_SERVER_KEY"));
    setenv("NCC_BUS_CURVE_SERVER_KEY", server_keys.public_key, 1);
    cr_assert_eq(ncc_bus_curve_from_env(err, sizeof err), -EINVAL, "read twice");

    /* After a shutdown the environment is read again: now complete. */
    ncc_bus_curve_shutdown();
    ncc_rpc_server_t *server = ncc_rpc_server_new("tcp://127.0.0.1:*", "env");
    cr_assert_not_null(server);
    ncc_bus_curve_status_t status;
    ncc_bus_curve_status(&status);
    cr_assert(status.enabled && status.serves);
    cr_assert_str_eq(status.server_key, server_keys.public_key);
    ncc_rpc_server_destroy(&server);
}

Test(bus_curve, service_frame_refuses_to_start_without_the_server_secret)
{
    static const ncc_migration_t none[] = {{NULL, NULL}};
    const ncc_service_options_t options = {.name = "curvetest", .migrations = none};
    char *argv[] = {"ncc-curvetest", NULL};
    setenv("NCC_DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none", 1);

    /* A client-only keypair: the daemon binds ROUTER and PUB, so no. */
    setenv("NCC_BUS_CURVE_SERVER_KEY", server_keys.public_key, 1);
    ncc_service_t *service = ncc_service_new(&options, 1, argv);
    cr_assert_null(service);
    /* Partial: the secret key alone. */
    unsetenv("NCC_BUS_CURVE_SERVER_KEY");
    setenv("NCC_BUS_CURVE_SECRET_KEY", server_keys.secret_key, 1);
    service = ncc_service_new(&options, 1, argv);
    cr_assert_null(service);

    /* The server keypair: it starts, encrypted. */
    setenv("NCC_BUS_CURVE_SERVER_KEY", server_keys.public_key, 1);
    service = ncc_service_new(&options, 1, argv);
    cr_assert_not_null(service);
    ncc_bus_curve_status_t status;
    ncc_bus_curve_status(&status);
    cr_assert(status.enabled && status.serves);
    ncc_service_destroy(&service);
}
