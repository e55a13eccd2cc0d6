/* The service frame, shown on a real daemon (ncc-directory) against the real
 * PostgreSQL: start, migrate, Ping and Health on the bus, health endpoints,
 * waiting for a database that is not there yet, malformed bus input, SIGHUP
 * reload and SIGTERM drain. Each test starts its own copy on its own ports. */
#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ncc/bus.h"
#include "ncc_test.h"

#define READY_TIMEOUT_MS 20000

typedef struct {
    char rpc[64];        /* tcp://127.0.0.1:<port> */
    char health_url[96]; /* http://127.0.0.1:<port> */
    char log_path[128];
    char env_rpc[96], env_pub[96], env_health[96];
    pid_t pid;
} daemon_t;

static void s_daemon_ports(daemon_t *d, const char *tag)
{
    int rpc = ncct_free_port(), pub = ncct_free_port(), health = ncct_free_port();
    cr_assert(rpc > 0 && pub > 0 && health > 0);
    snprintf(d->rpc, sizeof d->rpc, "tcp://127.0.0.1:%d", rpc);
    snprintf(d->health_url, sizeof d->health_url, "http://127.0.0.1:%d", health);
    snprintf(d->env_rpc, sizeof d->env_rpc, "NCC_DIRECTORY_RPC_BIND=tcp://127.0.0.1:%d", rpc);
    snprintf(d->env_pub, sizeof d->env_pub, "NCC_DIRECTORY_PUB_BIND=tcp://127.0.0.1:%d", pub);
    snprintf(d->env_health, sizeof d->env_health, "NCC_DIRECTORY_HEALTH_LISTEN=127.0.0.1:%d",
             health);
    snprintf(d->log_path, sizeof d->log_path, "/tmp/ncc-test-service-%s-%d.log", tag,
             (int)getpid());
    unlink(d->log_path);
}

static void s_daemon_start(daemon_t *d, const char *const *extra)
{
    const char *env[16] = {d->env_rpc, d->env_pub, d->env_health};
    size_t n = 3;
    for (size_t i = 0; extra && extra[i] && n < 15; i++)
        env[n++] = extra[i];
    env[n] = NULL;
    d->pid = ncct_spawn("ncc-directory", env, d->log_path);
    cr_assert(d->pid > 0);
}

static bool s_wait_ready(daemon_t *d, int timeout_ms)
{
    char url[128];
    snprintf(url, sizeof url, "%s/readyz", d->health_url);
    return ncct_wait_status(url, 200, timeout_ms);
}

static bool s_log_contains(daemon_t *d, const char *needle, int timeout_ms)
{
    long long deadline = ncct_now_ms() + timeout_ms;
    do {
        char *log = ncct_read_file(d->log_path);
        bool found = log && strstr(log, needle);
        free(log);
        if (found)
            return true;
        usleep(50 * 1000);
    } while (ncct_now_ms() < deadline);
    return false;
}

static Ncc__Pong *s_ping(const char *endpoint, const char *text)
{
    ncc_rpc_client_t *client = ncc_rpc_client_new(endpoint);
    cr_assert_not_null(client);
    Ncc__Ping ping = NCC__PING__INIT;
    ping.message = (char *)text;
    ProtobufCMessage *reply = NULL;
    int rc =
        ncc_rpc_call_typed(client, NULL, &ping.base, &ncc__pong__descriptor, 5000, &reply, NULL);
    ncc_rpc_client_destroy(&client);
    return rc == 0 ? (Ncc__Pong *)reply : NULL;
}

static void s_stop(daemon_t *d)
{
    if (d->pid > 0) {
        kill(d->pid, SIGTERM);
        if (ncct_wait_exit(d->pid, 10000) < 0)
            ncct_kill(d->pid);
        d->pid = 0;
    }
}

static const char *s_database_url(void)
{
    const char *url = getenv("NCC_DATABASE_URL");
    cr_assert_not_null(url, "NCC_DATABASE_URL must be set (scripts/pg.sh start; . var/env)");
    return url;
}

Test(service, starts_migrates_answers_and_drains_on_sigterm, .timeout = 60)
{
    daemon_t d = {0};
    s_daemon_ports(&d, "start");
    s_daemon_start(&d, NULL);
    cr_assert(s_wait_ready(&d, READY_TIMEOUT_MS), "ncc-directory did not become ready");

    char url[160], *body = NULL;
    snprintf(url, sizeof url, "%s/healthz", d.health_url);
    cr_assert_eq(ncct_http("GET", url, NULL, &body), 200);
    free(body);

    Ncc__Pong *pong = s_ping(d.rpc, "こんにちは");
    cr_assert_not_null(pong, "no Pong from the daemon");
    cr_assert_str_eq(pong->message, "こんにちは");
    cr_assert_str_eq(pong->service, "directory");
    ncc__pong__free_unpacked(pong, NULL);

    /* The schema exists and the common migration is recorded in it. */
    PGconn *conn = PQconnectdb(s_database_url());
    cr_assert_eq(PQstatus(conn), CONNECTION_OK);
    PGresult *res = PQexec(conn, "SELECT count(*) FROM directory.schema_migrations "
                                 "WHERE name LIKE 'common/%'");
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQerrorMessage(conn));
    cr_assert_gt(atoi(PQgetvalue(res, 0, 0)), 0);
    PQclear(res);
    PQfinish(conn);

    /* Metrics are served in the Prometheus text format. */
    snprintf(url, sizeof url, "%s/metrics", d.health_url);
    cr_assert_eq(ncct_http("GET", url, NULL, &body), 200);
    cr_assert_not_null(strstr(body, "ncc_requests_total"));
    cr_assert_not_null(strstr(body, "ncc_request_duration_seconds_bucket"));
    cr_assert_not_null(strstr(body, "ncc_outbox_depth"));
    free(body);

    kill(d.pid, SIGTERM);
    int status = ncct_wait_exit(d.pid, 10000);
    d.pid = 0;
    cr_assert_neq(status, -1, "did not exit within 10 s of SIGTERM");
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status %d", status);
    cr_assert(s_log_contains(&d, "\"service.stop\"", 0));
}

/* A one-connection-at-a-time TCP forwarder to the real PostgreSQL, switched
 * on late, so a daemon can start before its database is reachable. */
typedef struct {
    int listen_fd;
    int target_port;
    char target_host[64];
} forwarder_t;

static void *s_pump(void *arg)
{
    int *fds = arg;
    struct pollfd p[2] = {{.fd = fds[0], .events = POLLIN}, {.fd = fds[1], .events = POLLIN}};
    char buf[16384];
    for (;;) {
        if (poll(p, 2, -1) <= 0)
            break;
        int from = (p[0].revents & (POLLIN | POLLHUP)) ? 0 : 1;
        ssize_t n = read(p[from].fd, buf, sizeof buf);
        if (n <= 0 || write(p[1 - from].fd, buf, (size_t)n) != n)
            break;
    }
    close(fds[0]);
    close(fds[1]);
    free(fds);
    return NULL;
}

static void *s_forward(void *arg)
{
    forwarder_t *f = arg;
    for (;;) {
        int client = accept(f->listen_fd, NULL, NULL);
        if (client < 0)
            return NULL;
        int upstream = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in addr = {.sin_family = AF_INET,
                                   .sin_port = htons((uint16_t)f->target_port),
                                   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (connect(upstream, (struct sockaddr *)&addr, sizeof addr) < 0) {
            close(client);
            close(upstream);
            continue;
        }
        int *fds = malloc(2 * sizeof(int));
        fds[0] = client;
        fds[1] = upstream;
        pthread_t thread;
        pthread_create(&thread, NULL, s_pump, fds);
        pthread_detach(thread);
    }
}

Test(service, waits_for_its_database_and_reports_not_ready, .timeout = 90)
{
    /* The real database's parameters, with the port replaced by one where
     * nothing listens yet. */
    char *err = NULL;
    PQconninfoOption *options = PQconninfoParse(s_database_url(), &err);
    cr_assert_not_null(options, "%s", err ? err : "");
    int proxy_port = ncct_free_port();
    int real_port = 5432;
    char conninfo[512] = "";
    for (PQconninfoOption *o = options; o->keyword; o++) {
        if (!o->val)
            continue;
        if (strcmp(o->keyword, "port") == 0) {
            real_port = atoi(o->val);
            continue;
        }
        if (strcmp(o->keyword, "host") == 0 || strcmp(o->keyword, "hostaddr") == 0)
            continue;
        size_t len = strlen(conninfo);
        snprintf(conninfo + len, sizeof conninfo - len, "%s='%s' ", o->keyword, o->val);
    }
    PQconninfoFree(options);
    char env_db[640];
    snprintf(env_db, sizeof env_db, "NCC_DATABASE_URL=%shost=127.0.0.1 port=%d", conninfo,
             proxy_port);

    daemon_t d = {0};
    s_daemon_ports(&d, "nodb");
    const char *extra[] = {env_db, "NCC_DB_RETRY_MAX_MS=300", NULL};
    s_daemon_start(&d, extra);

    /* Alive, answering on the bus, but not ready. */
    char url[160], *body = NULL;
    snprintf(url, sizeof url, "%s/healthz", d.health_url);
    cr_assert(ncct_wait_status(url, 200, READY_TIMEOUT_MS), "health port never answered");
    usleep(1000 * 1000);
    snprintf(url, sizeof url, "%s/readyz", d.health_url);
    cr_assert_eq(ncct_http("GET", url, NULL, &body), 503);
    cr_assert_not_null(strstr(body, "database"), "readyz body: %s", body);
    free(body);
    Ncc__Pong *pong = s_ping(d.rpc, "still here");
    cr_assert_not_null(pong, "the bus must answer while the database is down");
    ncc__pong__free_unpacked(pong, NULL);
    cr_assert(s_log_contains(&d, "\"db.unavailable\"", 0), "no retry logged");

    /* The database appears: the daemon becomes ready on its own. */
    forwarder_t f = {.target_port = real_port};
    f.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(f.listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)proxy_port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(f.listen_fd, (struct sockaddr *)&addr, sizeof addr), 0);
    cr_assert_eq(listen(f.listen_fd, 16), 0);
    pthread_t thread;
    pthread_create(&thread, NULL, s_forward, &f);
    pthread_detach(thread);

    cr_assert(s_wait_ready(&d, READY_TIMEOUT_MS), "did not become ready once the database came");
    s_stop(&d);
    shutdown(f.listen_fd, SHUT_RDWR);
    close(f.listen_fd);
}

Test(service, malformed_bus_input_is_counted_and_dropped, .timeout = 60)
{
    daemon_t d = {0};
    s_daemon_ports(&d, "malformed");
    s_daemon_start(&d, NULL);
    cr_assert(s_wait_ready(&d, READY_TIMEOUT_MS));

    zsock_t *raw = zsock_new_dealer(d.rpc);
    cr_assert_not_null(raw);
    zstr_send(raw, "garbage");                                      /* one frame */
    zstr_sendx(raw, "ncc.Ping", "\xff\xff\xff not protobuf", NULL); /* bad envelope */
    zstr_sendx(raw, "", "ncc.Ping", "\x0a\xff", NULL);              /* truncated */
    zstr_sendx(raw, "", "", "", "", NULL);                          /* empty frames */
    usleep(300 * 1000);
    zsock_destroy(&raw);

    Ncc__Pong *pong = s_ping(d.rpc, "after garbage");
    cr_assert_not_null(pong, "the daemon must go on after malformed input");
    ncc__pong__free_unpacked(pong, NULL);

    char url[160], *body = NULL;
    snprintf(url, sizeof url, "%s/metrics", d.health_url);
    cr_assert_eq(ncct_http("GET", url, NULL, &body), 200);
    const char *line = strstr(body, "\nncc_bus_malformed_total");
    cr_assert_not_null(line, "%s", body);
    const char *value = strchr(line + 1, ' ');
    cr_assert_not_null(value);
    cr_assert_geq(atol(value + 1), 3, "malformed counter: %.80s", line + 1);
    free(body);
    s_stop(&d);
}

Test(service, sighup_reloads_the_configuration_file, .timeout = 60)
{
    char path[128];
    snprintf(path, sizeof path, "/tmp/ncc-test-service-%d.env", (int)getpid());
    FILE *file = fopen(path, "w");
    cr_assert_not_null(file);
    fputs("# test configuration\nNCC_LOG_LEVEL=info\n", file);
    fclose(file);

    char env_file[192];
    snprintf(env_file, sizeof env_file, "NCC_CONFIG_FILE=%s", path);
    daemon_t d = {0};
    s_daemon_ports(&d, "reload");
    const char *extra[] = {env_file, NULL};
    s_daemon_start(&d, extra);
    cr_assert(s_wait_ready(&d, READY_TIMEOUT_MS));

    file = fopen(path, "w");
    fputs("NCC_LOG_LEVEL=debug\n", file);
    fclose(file);
    kill(d.pid, SIGHUP);
    cr_assert(s_log_contains(&d, "log level debug", 5000), "reload not applied");

    /* A bad value is refused and the daemon keeps running as it was. */
    file = fopen(path, "w");
    fputs("NCC_LOG_LEVEL=loud\n", file);
    fclose(file);
    kill(d.pid, SIGHUP);
    cr_assert(s_log_contains(&d, "\"config.reload_failed\"", 5000), "bad value not reported");
    Ncc__Pong *pong = s_ping(d.rpc, "x");
    cr_assert_not_null(pong);
    ncc__pong__free_unpacked(pong, NULL);
    s_stop(&d);
    unlink(path);
}
