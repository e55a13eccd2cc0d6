/* bench_bus: round-trip latency and throughput of the ncc bus (ncc_rpc_client
 * calling ncc_rpc_server with ncc.Ping, answered by ncc.Pong) against raw
 * libzmq DEALER/ROUTER sockets carrying the very same frames, in one process,
 * over tcp://127.0.0.1 and ipc://. The server runs in its own thread, clients
 * in others. docs/performance.md explains the method and the figures.
 *
 * The raw side sends byte-for-byte what the bus sends: before measuring, one
 * bus call goes through a capturing proxy that records the request frames the
 * bus client wrote and the reply frames the bus server answered. The raw
 * client then replays the request frames and the raw server answers the reply
 * frames without parsing anything; the difference between the two is what the
 * bus code costs (envelope, ids, packing, unpacking, dispatch, polling).
 *
 * Figures, each repeated (--latency-reps, --reps; the medians are reported):
 *   latency      one call at a time from one client thread: p50, p99
 *   sync         --threads client threads, each one call at a time
 *   pipelined    one raw DEALER keeping --window requests in flight, sent to
 *                the bus server (its capacity: the bus client is synchronous,
 *                so it cannot pipeline) and to the raw server (the ceiling)
 *
 * Output: a human table on stdout; with --details FILE one TSV line per
 * repetition; with --summary FILE lines "area figure value unit goal status"
 * that bench/run.sh gathers into its summary. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>
#include "ncc/bus.h"
#include "ncc/crypto.h"
#include "ncc/log.h"

#define S_MESSAGE     "ping from bench_bus"
#define S_TIMEOUT_MS  5000
#define S_MAX_FRAMES  4
#define S_FRAME_BYTES 4096
#define S_MAX_THREADS 64
#define S_SYNC_WARMUP 200
#define S_PIPE_WARMUP 5000
#define S_POLL_MS     50
#define S_GOAL_RATIO  1.5
#define S_GOAL_RATE   50000.0
#define S_MAX_REPS    50

/* ---- settings ------------------------------------------------------------- */

typedef struct {
    bool tcp;            /* measure tcp://127.0.0.1 */
    bool ipc;            /* measure ipc:// */
    int warmup;          /* latency: calls before timing */
    int calls;           /* latency: timed calls per repetition */
    int reps;            /* repetitions of the throughput figures */
    int latency_reps;    /* repetitions of the latency figures */
    unsigned tests;      /* S_TEST_* to run */
    const char *label;   /* added to the figure names ("1 core"), or NULL */
    int threads;         /* sync throughput: client threads */
    int window;          /* pipelined: requests in flight */
    int duration_ms;     /* throughput: timed window per repetition */
    const char *details; /* per-repetition TSV, or NULL */
    const char *summary; /* summary TSV (appended), or NULL */
} s_options_t;

#define S_TEST_LATENCY   1u
#define S_TEST_SYNC      2u
#define S_TEST_PIPELINED 4u

/* ---- small helpers -------------------------------------------------------- */

static int64_t s_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t s_clock_ns(clockid_t clock)
{
    struct timespec ts;
    if (clock_gettime(clock, &ts) < 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void s_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* CPU time every process on the machine has used (user, nice, system, irq,
 * softirq from /proc/stat), or 0 when it cannot be read. */
static int64_t s_machine_busy_ns(void)
{
    unsigned long long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0;
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return 0;
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &system, &idle,
                   &iowait, &irq, &softirq);
    fclose(f);
    if (n != 7)
        return 0;
    long hz = sysconf(_SC_CLK_TCK);
    return (int64_t)((user + nice + system + irq + softirq) * (1000000000ULL / (unsigned)hz));
}

/* What the rest of the machine (the other engineers' work on the shared
 * cores) used while a figure was measured. */
typedef struct {
    int64_t wall;    /* monotonic ns at the start */
    int64_t process; /* this process's CPU ns at the start */
    int64_t machine; /* the machine's busy CPU ns at the start */
} s_usage_t;

static void s_usage_begin(s_usage_t *usage)
{
    usage->wall = s_now_ns();
    usage->process = s_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    usage->machine = s_machine_busy_ns();
}

/* Cores used by other processes since s_usage_begin (never negative). */
static double s_usage_others(const s_usage_t *usage)
{
    int64_t wall = s_now_ns() - usage->wall;
    int64_t process = s_clock_ns(CLOCK_PROCESS_CPUTIME_ID) - usage->process;
    int64_t machine = s_machine_busy_ns() - usage->machine;
    double others = wall > 0 ? (double)(machine - process) / (double)wall : 0;
    return others > 0 ? others : 0;
}

static int s_compare_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int s_compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (0 < q <= 1) of sorted samples, nearest-rank. */
static int64_t s_quantile(const int64_t *sorted, size_t n, double q)
{
    size_t rank = (size_t)(q * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return sorted[rank - 1];
}

/* Median of n values (sorts them in place). */
static double s_median(double *values, int n)
{
    qsort(values, (size_t)n, sizeof *values, s_compare_double);
    if (n % 2)
        return values[n / 2];
    return (values[n / 2 - 1] + values[n / 2]) / 2;
}

static int s_parse_int(const char *text, int min, int max, int *ret_value)
{
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno || end == text || *end || value < min || value > max)
        return -EINVAL;
    *ret_value = (int)value;
    return 0;
}

/* ---- captured frames ------------------------------------------------------ */

/* A multipart message kept as bytes (without the ROUTER routing frame). */
typedef struct {
    int count;                                 /* frames used */
    size_t size[S_MAX_FRAMES];                 /* bytes in each frame */
    uint8_t data[S_MAX_FRAMES][S_FRAME_BYTES]; /* the frames */
} s_frames_t;

/* Sends every frame of `frames` on sock (copied by libzmq). 0 or -errno. */
static int s_frames_send(void *sock, const s_frames_t *frames)
{
    for (int i = 0; i < frames->count; i++) {
        int flags = i + 1 < frames->count ? ZMQ_SNDMORE : 0;
        if (zmq_send(sock, frames->data[i], frames->size[i], flags) < 0)
            return -zmq_errno();
    }
    return 0;
}

/* Receives one multipart message into `frames` (routing frame included when
 * the socket is a ROUTER: the caller knows). 0 or -errno. */
static int s_frames_recv(void *sock, s_frames_t *frames)
{
    frames->count = 0;
    int more = 1;
    while (more) {
        if (frames->count == S_MAX_FRAMES)
            return -EMSGSIZE;
        int n = zmq_recv(sock, frames->data[frames->count], S_FRAME_BYTES, 0);
        if (n < 0)
            return -zmq_errno();
        if (n > S_FRAME_BYTES)
            return -EMSGSIZE;
        frames->size[frames->count++] = (size_t)n;
        size_t len = sizeof more;
        if (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &len) < 0)
            return -zmq_errno();
    }
    return 0;
}

/* Receives one multipart message and throws it away; 0 when it had
 * `expected_frames` frames and its first frame equals `first` (when given). */
static int s_discard_reply(void *sock, int expected_frames, const uint8_t *first, size_t first_len)
{
    int frames = 0, more = 1, rc = 0;
    while (more) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, sock, 0) < 0) {
            rc = -zmq_errno();
            zmq_msg_close(&msg);
            return rc;
        }
        if (frames == 0 && first &&
            (zmq_msg_size(&msg) != first_len || memcmp(zmq_msg_data(&msg), first, first_len) != 0))
            rc = -EPROTO;
        more = zmq_msg_more(&msg);
        zmq_msg_close(&msg);
        frames++;
    }
    if (rc == 0 && frames != expected_frames)
        rc = -EPROTO;
    return rc;
}

/* ---- servers -------------------------------------------------------------- */

typedef enum { S_BUS, S_RAW } s_kind_t;

/* A server running in its own thread until `stop`. */
typedef struct {
    s_kind_t kind;           /* which server */
    char bind[256];          /* where to bind */
    char endpoint[256];      /* the endpoint bound (ephemeral port resolved) */
    void *zmq_context;       /* raw: the libzmq context (borrowed) */
    const s_frames_t *reply; /* raw: what to answer (borrowed) */
    pthread_t thread;        /* the server thread */
    sem_t ready;             /* posted once bound (or failed) */
    int status;              /* 0 once bound, else -errno */
    atomic_bool stop;        /* asks the thread to return */
    atomic_long errors;      /* requests the server could not answer */
    char instance[64];       /* bus: the instance named in Pong */
    int64_t started_at_us;   /* bus: start time named in Pong */
} s_server_t;

/* The Ping handler of the bus server: what the service frame answers. */
static void s_on_ping(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    s_server_t *self = arg;
    const Ncc__Ping *ping = (const Ncc__Ping *)request->message;
    Ncc__Pong pong = NCC__PONG__INIT;
    pong.message = ping->message;
    pong.service = "bench";
    pong.instance = self->instance;
    pong.has_started_at_us = true;
    pong.started_at_us = self->started_at_us;
    ncc_reply_message(reply, &pong.base);
}

static void *s_bus_server_thread(void *arg)
{
    s_server_t *self = arg;
    ncc_rpc_server_t *server = ncc_rpc_server_new(self->bind, "bench");
    zpoller_t *poller = NULL;
    if (!server) {
        self->status = -EADDRINUSE;
        sem_post(&self->ready);
        return NULL;
    }
    snprintf(self->instance, sizeof self->instance, "bench-%d", (int)getpid());
    self->started_at_us = ncc_bus_now_us();
    if (ncc_rpc_server_on(server, &ncc__ping__descriptor, s_on_ping, self) < 0)
        self->status = -EEXIST;
    poller = zpoller_new(ncc_rpc_server_socket(server), NULL);
    if (!poller)
        self->status = -ENOMEM;
    if (self->status == 0)
        snprintf(self->endpoint, sizeof self->endpoint, "%s", ncc_rpc_server_endpoint(server));
    sem_post(&self->ready);
    while (self->status == 0 && !atomic_load(&self->stop)) {
        if (zpoller_wait(poller, S_POLL_MS))
            ncc_rpc_server_process(server);
        else if (zpoller_terminated(poller))
            break;
    }
    zpoller_destroy(&poller);
    ncc_rpc_server_destroy(&server);
    return NULL;
}

static void *s_raw_server_thread(void *arg)
{
    s_server_t *self = arg;
    void *sock = zmq_socket(self->zmq_context, ZMQ_ROUTER);
    int timeout = S_POLL_MS, linger = 0;
    int64_t max_size = NCC_BUS_MAX_MESSAGE;
    zmq_setsockopt(sock, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &max_size, sizeof max_size);
    if (zmq_bind(sock, self->bind) < 0) {
        self->status = -zmq_errno();
        zmq_close(sock);
        sem_post(&self->ready);
        return NULL;
    }
    size_t len = sizeof self->endpoint;
    zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, self->endpoint, &len);
    sem_post(&self->ready);
    while (!atomic_load(&self->stop)) {
        /* [routing][request frames...] -> [routing][reply frames...] */
        zmq_msg_t routing;
        zmq_msg_init(&routing);
        if (zmq_msg_recv(&routing, sock, 0) < 0) {
            zmq_msg_close(&routing);
            continue; /* EAGAIN: look at stop again */
        }
        int more = zmq_msg_more(&routing);
        while (more) {
            zmq_msg_t part;
            zmq_msg_init(&part);
            if (zmq_msg_recv(&part, sock, 0) < 0)
                more = 0;
            else
                more = zmq_msg_more(&part);
            zmq_msg_close(&part);
        }
        if (zmq_msg_send(&routing, sock, ZMQ_SNDMORE) < 0 || s_frames_send(sock, self->reply) < 0)
            atomic_fetch_add(&self->errors, 1);
        zmq_msg_close(&routing);
    }
    zmq_close(sock);
    return NULL;
}

static int s_server_start(s_server_t *self, s_kind_t kind, const char *bind, void *zmq_context,
                          const s_frames_t *reply)
{
    memset(self, 0, sizeof *self);
    self->kind = kind;
    snprintf(self->bind, sizeof self->bind, "%s", bind);
    self->zmq_context = zmq_context;
    self->reply = reply;
    atomic_init(&self->stop, false);
    atomic_init(&self->errors, 0);
    sem_init(&self->ready, 0, 0);
    int rc = pthread_create(&self->thread, NULL,
                            kind == S_BUS ? s_bus_server_thread : s_raw_server_thread, self);
    if (rc != 0) {
        sem_destroy(&self->ready);
        return -rc;
    }
    while (sem_wait(&self->ready) < 0 && errno == EINTR)
        ;
    if (self->status < 0) {
        pthread_join(self->thread, NULL);
        sem_destroy(&self->ready);
        return self->status;
    }
    return 0;
}

static void s_server_stop(s_server_t *self)
{
    atomic_store(&self->stop, true);
    pthread_join(self->thread, NULL);
    sem_destroy(&self->ready);
}

/* CPU time the server thread has used so far. */
static int64_t s_server_cpu_ns(s_server_t *self)
{
    clockid_t clock;
    if (pthread_getcpuclockid(self->thread, &clock) != 0)
        return 0;
    return s_clock_ns(clock);
}

/* ---- clients -------------------------------------------------------------- */

/* A synchronous client of one kind; made and used by one thread. */
typedef struct {
    s_kind_t kind;
    ncc_rpc_client_t *bus;     /* S_BUS */
    void *sock;                /* S_RAW: a DEALER */
    const s_frames_t *request; /* S_RAW: what to send (borrowed) */
    const s_frames_t *reply;   /* S_RAW: what the answer looks like (borrowed) */
} s_client_t;

static int s_client_init(s_client_t *self, s_kind_t kind, const char *endpoint, void *zmq_context,
                         const s_frames_t *request, const s_frames_t *reply)
{
    memset(self, 0, sizeof *self);
    self->kind = kind;
    if (kind == S_BUS) {
        self->bus = ncc_rpc_client_new(endpoint);
        return self->bus ? 0 : -EINVAL;
    }
    self->request = request;
    self->reply = reply;
    self->sock = zmq_socket(zmq_context, ZMQ_DEALER);
    if (!self->sock)
        return -zmq_errno();
    int timeout = S_TIMEOUT_MS, linger = 0;
    zmq_setsockopt(self->sock, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(self->sock, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect(self->sock, endpoint) < 0) {
        int rc = -zmq_errno();
        zmq_close(self->sock);
        self->sock = NULL;
        return rc;
    }
    return 0;
}

static void s_client_fini(s_client_t *self)
{
    ncc_rpc_client_destroy(&self->bus);
    if (self->sock)
        zmq_close(self->sock);
    self->sock = NULL;
}

/* One round trip. The bus client goes through ncc_rpc_call_typed, as a
 * service does: it builds the envelope, packs, sends, waits, unpacks the
 * Pong; the raw client only moves the captured bytes. 0 or -errno. */
static int s_client_call(s_client_t *self)
{
    if (self->kind == S_RAW) {
        int rc = s_frames_send(self->sock, self->request);
        if (rc < 0)
            return rc;
        return s_discard_reply(self->sock, self->reply->count, self->reply->data[0],
                               self->reply->size[0]);
    }
    Ncc__Ping ping = NCC__PING__INIT;
    ping.message = S_MESSAGE;
    ProtobufCMessage *reply = NULL;
    Ncc__Error *error = NULL;
    int rc = ncc_rpc_call_typed(self->bus, NULL, &ping.base, &ncc__pong__descriptor, S_TIMEOUT_MS,
                                &reply, &error);
    if (rc == 0) {
        const Ncc__Pong *pong = (const Ncc__Pong *)reply;
        if (!pong->message || strcmp(pong->message, S_MESSAGE) != 0)
            rc = -EPROTO;
        protobuf_c_message_free_unpacked(reply, NULL);
    }
    if (error)
        ncc__error__free_unpacked(error, NULL);
    return rc;
}

/* ---- capture -------------------------------------------------------------- */

typedef struct {
    char endpoint[256]; /* the capturing proxy */
    int rc;             /* the bus call's result */
} s_capture_call_t;

static void *s_capture_caller(void *arg)
{
    s_capture_call_t *call = arg;
    s_client_t client;
    call->rc = s_client_init(&client, S_BUS, call->endpoint, NULL, NULL, NULL);
    if (call->rc == 0)
        call->rc = s_client_call(&client);
    s_client_fini(&client);
    return NULL;
}

/* Records one bus request and its reply: a bus client calls a ROUTER made
 * here, whose DEALER forwards the frames to the bus server at `server` and
 * brings the answer back. */
static int s_capture(void *zmq_context, const char *transport, const char *server,
                     s_frames_t *ret_request, s_frames_t *ret_reply)
{
    int rc = -EIO;
    char bind[256];
    void *front = zmq_socket(zmq_context, ZMQ_ROUTER);
    void *back = zmq_socket(zmq_context, ZMQ_DEALER);
    pthread_t caller;
    bool caller_started = false;
    s_capture_call_t call = {.rc = -EIO};
    s_frames_t in;
    int timeout = S_TIMEOUT_MS, linger = 0;
    if (!front || !back)
        goto out;
    zmq_setsockopt(front, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(back, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(front, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(back, ZMQ_LINGER, &linger, sizeof linger);
    if (strcmp(transport, "ipc") == 0)
        snprintf(bind, sizeof bind, "ipc:///tmp/ncc-bench-%d-capture", (int)getpid());
    else
        snprintf(bind, sizeof bind, "tcp://127.0.0.1:*");
    if (zmq_bind(front, bind) < 0 || zmq_connect(back, server) < 0)
        goto out;
    size_t len = sizeof call.endpoint;
    zmq_getsockopt(front, ZMQ_LAST_ENDPOINT, call.endpoint, &len);
    if (pthread_create(&caller, NULL, s_capture_caller, &call) != 0)
        goto out;
    caller_started = true;
    /* client -> [routing][frames] -> proxy -> [frames] -> server */
    if (s_frames_recv(front, &in) < 0 || in.count < 2)
        goto out;
    ret_request->count = in.count - 1;
    for (int i = 1; i < in.count; i++) {
        ret_request->size[i - 1] = in.size[i];
        memcpy(ret_request->data[i - 1], in.data[i], in.size[i]);
    }
    if (s_frames_send(back, ret_request) < 0 || s_frames_recv(back, ret_reply) < 0)
        goto out;
    /* server -> [frames] -> proxy -> [routing][frames] -> client */
    if (zmq_send(front, in.data[0], in.size[0], ZMQ_SNDMORE) < 0 ||
        s_frames_send(front, ret_reply) < 0)
        goto out;
    rc = 0;
out:
    if (caller_started) {
        pthread_join(caller, NULL);
        if (rc == 0)
            rc = call.rc;
    }
    if (front)
        zmq_close(front);
    if (back)
        zmq_close(back);
    return rc;
}

/* ---- measurements --------------------------------------------------------- */

typedef struct {
    double p50_us, p99_us, mean_us; /* latency */
} s_latency_t;

/* One client thread, one call at a time: warm-up, then `calls` timed calls. */
static int s_measure_latency(s_kind_t kind, const char *endpoint, void *zmq_context,
                             const s_frames_t *request, const s_frames_t *reply,
                             const s_options_t *options, s_latency_t *ret)
{
    s_client_t client;
    int rc = s_client_init(&client, kind, endpoint, zmq_context, request, reply);
    int64_t *samples = calloc((size_t)options->calls, sizeof *samples);
    if (!samples && rc == 0)
        rc = -ENOMEM;
    if (rc < 0)
        goto out;
    for (int i = 0; i < options->warmup && rc == 0; i++)
        rc = s_client_call(&client);
    for (int i = 0; i < options->calls && rc == 0; i++) {
        int64_t start = s_now_ns();
        rc = s_client_call(&client);
        samples[i] = s_now_ns() - start;
    }
    if (rc < 0)
        goto out;
    qsort(samples, (size_t)options->calls, sizeof *samples, s_compare_i64);
    double sum = 0;
    for (int i = 0; i < options->calls; i++)
        sum += (double)samples[i];
    ret->p50_us = (double)s_quantile(samples, (size_t)options->calls, 0.50) / 1000;
    ret->p99_us = (double)s_quantile(samples, (size_t)options->calls, 0.99) / 1000;
    ret->mean_us = sum / options->calls / 1000;
out:
    s_client_fini(&client);
    free(samples);
    return rc;
}

typedef struct {
    double rate;           /* completed requests per second */
    double server_cpu_us;  /* server thread CPU per request */
    double process_cpu_us; /* whole process CPU per request */
    double server_busy;    /* server thread CPU / wall time */
} s_rate_t;

/* Shared by the client threads of one sync throughput run. */
typedef struct {
    s_kind_t kind;
    const char *endpoint;
    void *zmq_context;
    const s_frames_t *request, *reply;
    pthread_barrier_t start; /* threads + main, after warm-up */
    atomic_bool stop;        /* end of the timed window */
    atomic_long completed;   /* calls finished inside the window */
    atomic_int failed;       /* first error seen, or 0 */
} s_sync_t;

static void *s_sync_thread(void *arg)
{
    s_sync_t *run = arg;
    s_client_t client;
    int rc = s_client_init(&client, run->kind, run->endpoint, run->zmq_context, run->request,
                           run->reply);
    for (int i = 0; i < S_SYNC_WARMUP && rc == 0; i++)
        rc = s_client_call(&client);
    pthread_barrier_wait(&run->start);
    long completed = 0;
    while (rc == 0 && !atomic_load_explicit(&run->stop, memory_order_relaxed)) {
        rc = s_client_call(&client);
        if (rc == 0 && !atomic_load_explicit(&run->stop, memory_order_relaxed))
            completed++;
    }
    if (rc < 0) {
        int expected = 0;
        atomic_compare_exchange_strong(&run->failed, &expected, rc);
    }
    atomic_fetch_add(&run->completed, completed);
    s_client_fini(&client);
    return NULL;
}

/* --threads client threads, each calling one at a time for duration_ms. */
static int s_measure_sync(s_kind_t kind, s_server_t *server, void *zmq_context,
                          const s_frames_t *request, const s_frames_t *reply,
                          const s_options_t *options, s_rate_t *ret)
{
    s_sync_t run = {.kind = kind,
                    .endpoint = server->endpoint,
                    .zmq_context = zmq_context,
                    .request = request,
                    .reply = reply};
    pthread_t threads[S_MAX_THREADS];
    int started = 0;
    atomic_init(&run.stop, false);
    atomic_init(&run.completed, 0);
    atomic_init(&run.failed, 0);
    pthread_barrier_init(&run.start, NULL, (unsigned)options->threads + 1);
    for (; started < options->threads; started++)
        if (pthread_create(&threads[started], NULL, s_sync_thread, &run) != 0)
            break;
    if (started < options->threads) {
        /* Cannot happen at these thread counts; fail loudly rather than hang
         * on the barrier. */
        fprintf(stderr, "bench_bus: cannot start client threads\n");
        exit(1);
    }
    pthread_barrier_wait(&run.start);
    int64_t wall0 = s_now_ns(), server0 = s_server_cpu_ns(server),
            process0 = s_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    s_sleep_ms(options->duration_ms);
    atomic_store(&run.stop, true);
    int64_t wall1 = s_now_ns(), server1 = s_server_cpu_ns(server),
            process1 = s_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&run.start);
    if (atomic_load(&run.failed) < 0)
        return atomic_load(&run.failed);
    double n = (double)atomic_load(&run.completed);
    ret->rate = n / ((double)(wall1 - wall0) / 1e9);
    ret->server_cpu_us = n > 0 ? (double)(server1 - server0) / n / 1000 : 0;
    ret->process_cpu_us = n > 0 ? (double)(process1 - process0) / n / 1000 : 0;
    ret->server_busy = (double)(server1 - server0) / (double)(wall1 - wall0);
    return 0;
}

/* One raw DEALER in this thread keeps `window` copies of the captured
 * request in flight against `server` for duration_ms. Every reply must start
 * with the captured reply's first frame (the type, "ncc.Pong"). */
static int s_measure_pipelined(s_server_t *server, void *zmq_context, const s_frames_t *request,
                               const s_frames_t *reply, const s_options_t *options, s_rate_t *ret)
{
    s_client_t client;
    int rc = s_client_init(&client, S_RAW, server->endpoint, zmq_context, request, reply);
    int in_flight = 0;
    long completed = 0;
    int64_t wall0 = 0, wall1 = 0, server0 = 0, server1 = 0, process0 = 0, process1 = 0;
    if (rc < 0)
        goto out;
    for (; in_flight < options->window && rc == 0; in_flight++)
        rc = s_frames_send(client.sock, request);
    for (long got = 0; rc == 0; got++) {
        rc = s_discard_reply(client.sock, reply->count, reply->data[0], reply->size[0]);
        if (rc < 0)
            break;
        in_flight--;
        if (got == S_PIPE_WARMUP) {
            wall0 = s_now_ns();
            server0 = s_server_cpu_ns(server);
            process0 = s_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
        } else if (got > S_PIPE_WARMUP) {
            completed++;
            if ((completed & 63) == 0 &&
                s_now_ns() - wall0 >= (int64_t)options->duration_ms * 1000000) {
                wall1 = s_now_ns();
                server1 = s_server_cpu_ns(server);
                process1 = s_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
                break;
            }
        }
        rc = s_frames_send(client.sock, request);
        if (rc == 0)
            in_flight++;
    }
    /* Drain what is still in flight so the next run starts from an idle server. */
    while (rc == 0 && in_flight > 0) {
        rc = s_discard_reply(client.sock, reply->count, reply->data[0], reply->size[0]);
        in_flight--;
    }
    if (rc < 0)
        goto out;
    double n = (double)completed;
    ret->rate = n / ((double)(wall1 - wall0) / 1e9);
    ret->server_cpu_us = (double)(server1 - server0) / n / 1000;
    ret->process_cpu_us = (double)(process1 - process0) / n / 1000;
    ret->server_busy = (double)(server1 - server0) / (double)(wall1 - wall0);
out:
    s_client_fini(&client);
    return rc;
}

/* ---- reporting ------------------------------------------------------------ */

static FILE *s_details;
static FILE *s_summary;

static void s_detail(const char *transport, const char *test, const char *kind, int rep,
                     const char *metric, double value)
{
    if (s_details)
        fprintf(s_details, "%s\t%s\t%s\t%d\t%s\t%.3f\n", transport, test, kind, rep, metric, value);
}

/* One summary figure; goal and status may be "" when the figure has no goal. */
static void s_report(const char *figure, double value, const char *unit, const char *goal,
                     const char *status)
{
    printf("  %-48s %12.2f %-8s %-10s %s\n", figure, value, unit, goal, status);
    if (s_summary)
        fprintf(s_summary, "bus\t%s\t%.2f\t%s\t%s\t%s\n", figure, value, unit, goal, status);
}

static const char *s_verdict(bool met)
{
    return met ? "met" : "MISSED";
}

/* ---- one transport -------------------------------------------------------- */

typedef struct {
    double p50[2][S_MAX_REPS], p99[2][S_MAX_REPS], mean[2][S_MAX_REPS]; /* [kind][rep] */
    double p50_ratio[S_MAX_REPS]; /* bus p50 / raw p50 of the same repetition */
    /* cores used by other processes meanwhile, [kind][rep] */
    double lat_others[2][S_MAX_REPS], sync_others[2][S_MAX_REPS], pipe_others[2][S_MAX_REPS];
    double sync_rate[2][S_MAX_REPS], sync_cpu[2][S_MAX_REPS];
    double pipe_rate[2][S_MAX_REPS], pipe_cpu[2][S_MAX_REPS], pipe_busy[2][S_MAX_REPS];
} s_results_t;

static const char *const s_kind_name[] = {"bus", "raw"};

static int s_run_transport(const char *transport, void *zmq_context, const s_options_t *options)
{
    static s_results_t r; /* large: keep it off the stack */
    s_server_t servers[2];
    s_frames_t *request = calloc(1, sizeof *request), *reply = calloc(1, sizeof *reply);
    char bind[2][256];
    int rc = -ENOMEM;
    bool started[2] = {false, false};
    memset(&r, 0, sizeof r);
    if (!request || !reply)
        goto out;
    for (int k = 0; k < 2; k++) {
        if (strcmp(transport, "ipc") == 0)
            snprintf(bind[k], sizeof bind[k], "ipc:///tmp/ncc-bench-%d-%s", (int)getpid(),
                     s_kind_name[k]);
        else
            snprintf(bind[k], sizeof bind[k], "tcp://127.0.0.1:*");
    }
    rc = s_server_start(&servers[S_BUS], S_BUS, bind[S_BUS], NULL, NULL);
    if (rc < 0) {
        fprintf(stderr, "bench_bus: bus server on %s: %s\n", bind[S_BUS], strerror(-rc));
        goto out;
    }
    started[S_BUS] = true;
    rc = s_capture(zmq_context, transport, servers[S_BUS].endpoint, request, reply);
    if (rc < 0) {
        fprintf(stderr, "bench_bus: capturing a bus call over %s failed: %s\n", transport,
                strerror(-rc));
        goto out;
    }
    rc = s_server_start(&servers[S_RAW], S_RAW, bind[S_RAW], zmq_context, reply);
    if (rc < 0) {
        fprintf(stderr, "bench_bus: raw server on %s: %s\n", bind[S_RAW], strerror(-rc));
        goto out;
    }
    started[S_RAW] = true;
    size_t request_bytes = 0, reply_bytes = 0;
    for (int i = 0; i < request->count; i++)
        request_bytes += request->size[i];
    for (int i = 0; i < reply->count; i++)
        reply_bytes += reply->size[i];
    printf("%s: bus server %s, raw server %s\n", transport, servers[S_BUS].endpoint,
           servers[S_RAW].endpoint);
    printf("%s: request %d frames %zu bytes, reply %d frames %zu bytes (same bytes both sides)\n",
           transport, request->count, request_bytes, reply->count, reply_bytes);
    fflush(stdout);

    /* `where` names the figures: the transport, and the label of the run. */
    char where[96];
    if (options->label)
        snprintf(where, sizeof where, "%s %s", transport, options->label);
    else
        snprintf(where, sizeof where, "%s", transport);

    /* The kinds alternate inside each repetition so slow drift (another
     * engineer's build on the shared cores) hits both alike. */
    for (int rep = 0; (options->tests & S_TEST_LATENCY) && rep < options->latency_reps; rep++) {
        for (int k = 0; k < 2; k++) {
            s_latency_t lat = {0};
            s_usage_t usage;
            s_usage_begin(&usage);
            rc = s_measure_latency((s_kind_t)k, servers[k].endpoint, zmq_context, request, reply,
                                   options, &lat);
            r.lat_others[k][rep] = s_usage_others(&usage);
            s_detail(where, "latency", s_kind_name[k], rep, "others_cores", r.lat_others[k][rep]);
            if (rc < 0) {
                fprintf(stderr, "bench_bus: %s %s latency: %s\n", where, s_kind_name[k],
                        strerror(-rc));
                goto out;
            }
            r.p50[k][rep] = lat.p50_us;
            r.p99[k][rep] = lat.p99_us;
            r.mean[k][rep] = lat.mean_us;
            s_detail(where, "latency", s_kind_name[k], rep, "p50_us", lat.p50_us);
            s_detail(where, "latency", s_kind_name[k], rep, "p99_us", lat.p99_us);
            s_detail(where, "latency", s_kind_name[k], rep, "mean_us", lat.mean_us);
        }
        r.p50_ratio[rep] = r.p50[S_BUS][rep] / r.p50[S_RAW][rep];
    }
    for (int rep = 0; (options->tests & S_TEST_SYNC) && rep < options->reps; rep++) {
        for (int k = 0; k < 2; k++) {
            s_rate_t rate = {0};
            s_usage_t usage;
            s_usage_begin(&usage);
            rc = s_measure_sync((s_kind_t)k, &servers[k], zmq_context, request, reply, options,
                                &rate);
            r.sync_others[k][rep] = s_usage_others(&usage);
            s_detail(where, "sync", s_kind_name[k], rep, "others_cores", r.sync_others[k][rep]);
            if (rc < 0) {
                fprintf(stderr, "bench_bus: %s %s sync throughput: %s\n", where, s_kind_name[k],
                        strerror(-rc));
                goto out;
            }
            r.sync_rate[k][rep] = rate.rate;
            r.sync_cpu[k][rep] = rate.server_cpu_us;
            s_detail(where, "sync", s_kind_name[k], rep, "rate", rate.rate);
            s_detail(where, "sync", s_kind_name[k], rep, "server_cpu_us", rate.server_cpu_us);
            s_detail(where, "sync", s_kind_name[k], rep, "process_cpu_us", rate.process_cpu_us);
        }
    }
    for (int rep = 0; (options->tests & S_TEST_PIPELINED) && rep < options->reps; rep++) {
        for (int k = 0; k < 2; k++) {
            s_rate_t rate = {0};
            s_usage_t usage;
            s_usage_begin(&usage);
            rc = s_measure_pipelined(&servers[k], zmq_context, request, reply, options, &rate);
            r.pipe_others[k][rep] = s_usage_others(&usage);
            s_detail(where, "pipelined", s_kind_name[k], rep, "others_cores",
                     r.pipe_others[k][rep]);
            if (rc < 0) {
                fprintf(stderr, "bench_bus: %s pipelined into the %s server: %s\n", where,
                        s_kind_name[k], strerror(-rc));
                goto out;
            }
            r.pipe_rate[k][rep] = rate.rate;
            r.pipe_cpu[k][rep] = rate.server_cpu_us;
            r.pipe_busy[k][rep] = rate.server_busy;
            s_detail(where, "pipelined", s_kind_name[k], rep, "rate", rate.rate);
            s_detail(where, "pipelined", s_kind_name[k], rep, "server_cpu_us", rate.server_cpu_us);
            s_detail(where, "pipelined", s_kind_name[k], rep, "process_cpu_us",
                     rate.process_cpu_us);
            s_detail(where, "pipelined", s_kind_name[k], rep, "server_busy", rate.server_busy);
        }
    }

    /* Medians over the repetitions. */
    char figure[160], goal[32];
    if (options->tests & S_TEST_LATENCY) {
        int n = options->latency_reps;
        double p50[2], p99[2], mean[2];
        for (int k = 0; k < 2; k++) {
            p50[k] = s_median(r.p50[k], n);
            p99[k] = s_median(r.p99[k], n);
            mean[k] = s_median(r.mean[k], n);
        }
        double paired = s_median(r.p50_ratio, n);
        printf("\n%s: latency, one call at a time (medians of %d repetitions)\n", where, n);
        for (int k = 0; k < 2; k++) {
            snprintf(figure, sizeof figure, "%s %s latency p50", where, s_kind_name[k]);
            s_report(figure, p50[k], "us", "", "");
            snprintf(figure, sizeof figure, "%s %s latency p99", where, s_kind_name[k]);
            s_report(figure, p99[k], "us", "", "");
            snprintf(figure, sizeof figure, "%s %s latency mean", where, s_kind_name[k]);
            s_report(figure, mean[k], "us", "", "");
        }
        snprintf(figure, sizeof figure, "%s latency p50 bus/raw", where);
        snprintf(goal, sizeof goal, "<= %.1f", S_GOAL_RATIO);
        s_report(figure, p50[S_BUS] / p50[S_RAW], "x", goal,
                 s_verdict(p50[S_BUS] / p50[S_RAW] <= S_GOAL_RATIO));
        snprintf(figure, sizeof figure, "%s latency p50 bus/raw, median of pairs", where);
        s_report(figure, paired, "x", "", "");
        snprintf(figure, sizeof figure, "%s latency p99 bus/raw", where);
        s_report(figure, p99[S_BUS] / p99[S_RAW], "x", "", "");
        snprintf(figure, sizeof figure, "%s latency: other processes", where);
        s_report(figure, s_median(r.lat_others[S_BUS], n), "cores", "", "");
    }
    if (options->tests & S_TEST_SYNC) {
        int n = options->reps;
        double sync_rate[2], sync_cpu[2];
        for (int k = 0; k < 2; k++) {
            sync_rate[k] = s_median(r.sync_rate[k], n);
            sync_cpu[k] = s_median(r.sync_cpu[k], n);
        }
        printf("\n%s: %d client threads, one call at a time each (medians of %d repetitions)\n",
               where, options->threads, n);
        for (int k = 0; k < 2; k++) {
            snprintf(figure, sizeof figure, "%s %s %d sync clients rate", where, s_kind_name[k],
                     options->threads);
            s_report(figure, sync_rate[k], "req/s", "", "");
            snprintf(figure, sizeof figure, "%s %s %d sync clients server cpu", where,
                     s_kind_name[k], options->threads);
            s_report(figure, sync_cpu[k], "us/req", "", "");
        }
        snprintf(figure, sizeof figure, "%s %d sync clients rate bus/raw", where, options->threads);
        s_report(figure, sync_rate[S_BUS] / sync_rate[S_RAW], "x", "", "");
        snprintf(figure, sizeof figure, "%s sync: other processes", where);
        s_report(figure, s_median(r.sync_others[S_BUS], n), "cores", "", "");
    }
    if (options->tests & S_TEST_PIPELINED) {
        int n = options->reps;
        double pipe_rate[2], pipe_cpu[2], pipe_busy[2];
        for (int k = 0; k < 2; k++) {
            pipe_rate[k] = s_median(r.pipe_rate[k], n);
            pipe_cpu[k] = s_median(r.pipe_cpu[k], n);
            pipe_busy[k] = s_median(r.pipe_busy[k], n);
        }
        printf("\n%s: one raw DEALER, %d requests in flight (medians of %d repetitions)\n", where,
               options->window, n);
        snprintf(goal, sizeof goal, ">= %.0f", S_GOAL_RATE);
        for (int k = 0; k < 2; k++) {
            snprintf(figure, sizeof figure, "%s %s server, pipelined rate", where, s_kind_name[k]);
            s_report(figure, pipe_rate[k], "req/s", k == S_BUS ? goal : "",
                     k == S_BUS ? s_verdict(pipe_rate[k] >= S_GOAL_RATE) : "");
            snprintf(figure, sizeof figure, "%s %s server, pipelined server cpu", where,
                     s_kind_name[k]);
            s_report(figure, pipe_cpu[k], "us/req", "", "");
            snprintf(figure, sizeof figure, "%s %s server, pipelined server thread busy", where,
                     s_kind_name[k]);
            s_report(figure, pipe_busy[k] * 100, "%", "", "");
        }
        snprintf(figure, sizeof figure, "%s pipelined: other processes", where);
        s_report(figure, s_median(r.pipe_others[S_BUS], n), "cores", "", "");
        snprintf(figure, sizeof figure, "%s bus server one-core capacity (1/cpu)", where);
        s_report(figure, 1e6 / pipe_cpu[S_BUS], "req/s", goal,
                 s_verdict(1e6 / pipe_cpu[S_BUS] >= S_GOAL_RATE));
    }
    printf("\n");
    fflush(stdout);
    rc = 0;
out:
    for (int k = 0; k < 2; k++) {
        if (started[k]) {
            s_server_stop(&servers[k]);
            if (atomic_load(&servers[k].errors) > 0) {
                fprintf(stderr, "bench_bus: %s %s server: %ld send errors\n", transport,
                        s_kind_name[k], atomic_load(&servers[k].errors));
                if (rc == 0)
                    rc = -EIO;
            }
        }
    }
    free(request);
    free(reply);
    return rc;
}

/* ---- main ----------------------------------------------------------------- */

static void s_usage(void)
{
    fprintf(stderr, "usage: bench_bus [--transports tcp,ipc] [--tests latency,sync,pipelined]\n"
                    "                 [--warmup N] [--calls N] [--latency-reps N] [--reps N]\n"
                    "                 [--threads N] [--window N] [--duration-ms N]\n"
                    "                 [--label TEXT] [--details FILE] [--summary FILE]\n");
}

int main(int argc, char **argv)
{
    s_options_t options = {.tcp = true,
                           .ipc = true,
                           .warmup = 500,
                           .calls = 5000,
                           .latency_reps = 9,
                           .reps = 5,
                           .tests = S_TEST_LATENCY | S_TEST_SYNC | S_TEST_PIPELINED,
                           .threads = 8,
                           .window = 64,
                           .duration_ms = 500};
    for (int i = 1; i < argc; i++) {
        const char *name = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0;
        if (!value) {
            s_usage();
            return 2;
        }
        if (strcmp(name, "--transports") == 0) {
            options.tcp = strstr(value, "tcp") != NULL;
            options.ipc = strstr(value, "ipc") != NULL;
        } else if (strcmp(name, "--warmup") == 0) {
            rc = s_parse_int(value, 0, 10000000, &options.warmup);
        } else if (strcmp(name, "--calls") == 0) {
            rc = s_parse_int(value, 100, 10000000, &options.calls);
        } else if (strcmp(name, "--tests") == 0) {
            options.tests = (strstr(value, "latency") ? S_TEST_LATENCY : 0) |
                            (strstr(value, "sync") ? S_TEST_SYNC : 0) |
                            (strstr(value, "pipelined") ? S_TEST_PIPELINED : 0);
            rc = options.tests ? 0 : -EINVAL;
        } else if (strcmp(name, "--reps") == 0) {
            rc = s_parse_int(value, 1, S_MAX_REPS, &options.reps);
        } else if (strcmp(name, "--latency-reps") == 0) {
            rc = s_parse_int(value, 1, S_MAX_REPS, &options.latency_reps);
        } else if (strcmp(name, "--label") == 0) {
            options.label = value;
        } else if (strcmp(name, "--threads") == 0) {
            rc = s_parse_int(value, 1, S_MAX_THREADS, &options.threads);
        } else if (strcmp(name, "--window") == 0) {
            rc = s_parse_int(value, 1, 10000, &options.window);
        } else if (strcmp(name, "--duration-ms") == 0) {
            rc = s_parse_int(value, 10, 600000, &options.duration_ms);
        } else if (strcmp(name, "--details") == 0) {
            options.details = value;
        } else if (strcmp(name, "--summary") == 0) {
            options.summary = value;
        } else {
            rc = -EINVAL;
        }
        if (rc < 0) {
            fprintf(stderr, "bench_bus: bad %s %s\n", name, value);
            s_usage();
            return 2;
        }
        i++;
    }
    /* Warnings only: a log line per request would measure the terminal. */
    ncc_log_init("bench_bus", NCC_LOG_WARN);
    /* With NCC_BUS_ACTOR_KEY set, as in a deployment, every request carries
     * its HMAC actor proof (and the raw side the same bytes). */
    const char *actor_key = getenv("NCC_BUS_ACTOR_KEY");
    if (actor_key && *actor_key && ncc_actor_key_from_env() < 0) {
        fprintf(stderr, "bench_bus: NCC_BUS_ACTOR_KEY is malformed (base64 of 32 bytes)\n");
        return 1;
    }
    if (options.details) {
        s_details = fopen(options.details, "w");
        if (!s_details) {
            perror(options.details);
            return 1;
        }
        fprintf(s_details, "transport\ttest\tkind\trep\tmetric\tvalue\n");
    }
    if (options.summary) {
        s_summary = fopen(options.summary, "a");
        if (!s_summary) {
            perror(options.summary);
            return 1;
        }
    }
    int major, minor, patch;
    zmq_version(&major, &minor, &patch);
    printf("bench_bus%s%s: libzmq %d.%d.%d, czmq %d.%d.%d; latency: %d warm-up + %d timed calls "
           "x %d reps; throughput: %d reps of %d ms, %d sync client threads, pipelined window "
           "%d; actor proof %s\n",
           options.label ? " " : "", options.label ? options.label : "", major, minor, patch,
           CZMQ_VERSION_MAJOR, CZMQ_VERSION_MINOR, CZMQ_VERSION_PATCH, options.warmup,
           options.calls, options.latency_reps, options.reps, options.duration_ms, options.threads,
           options.window, ncc_actor_key_present() ? "on (NCC_BUS_ACTOR_KEY)" : "off");
    fflush(stdout);

    /* The raw side gets a context of its own with libzmq's defaults (one I/O
     * thread), as the bus has CZMQ's process-wide one. */
    void *zmq_context = zmq_ctx_new();
    int rc = zmq_context ? 0 : -ENOMEM;
    if (rc == 0 && options.tcp)
        rc = s_run_transport("tcp", zmq_context, &options);
    if (rc == 0 && options.ipc)
        rc = s_run_transport("ipc", zmq_context, &options);
    if (zmq_context)
        zmq_ctx_term(zmq_context);
    if (s_details)
        fclose(s_details);
    if (s_summary)
        fclose(s_summary);
    return rc == 0 ? 0 : 1;
}
