/* ncc_test: helpers for tests that start real daemons (see ncc_test.h). */
#include "ncc_test.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <libpq-fe.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *ncct_bin_dir(void)
{
    const char *dir = getenv("NCC_TEST_BIN_DIR");
    return dir && *dir ? dir : "build/asan/bin";
}

/* Ports are taken from below the kernel's ephemeral range (32768 and up on
 * Linux): a port found free there cannot be taken meanwhile by an outgoing
 * connection of a daemon, which an ephemeral port (bind to 0) could. Each is
 * handed out once per process. */
#define S_PORT_FIRST 20000
#define S_PORT_COUNT 12000

int ncct_free_port(void)
{
    static unsigned char given[S_PORT_COUNT];
    static unsigned seed;
    if (!seed)
        seed = (unsigned)getpid() * 2654435761u ^ (unsigned)time(NULL);
    for (int attempt = 0; attempt < 1000; attempt++) {
        seed = seed * 1103515245u + 12345u;
        int index = (int)((seed >> 8) % S_PORT_COUNT);
        if (given[index])
            continue;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
            return -1;
        struct sockaddr_in addr = {.sin_family = AF_INET,
                                   .sin_port = htons((uint16_t)(S_PORT_FIRST + index)),
                                   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        bool free_port = bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0;
        close(fd);
        if (free_port) {
            given[index] = 1;
            return S_PORT_FIRST + index;
        }
    }
    return -1;
}

pid_t ncct_spawn(const char *program, const char *const *env, const char *log_path)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", ncct_bin_dir(), program);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    for (size_t i = 0; env && env[i]; i++) {
        char *pair = strdup(env[i]);
        char *eq = pair ? strchr(pair, '=') : NULL;
        if (eq) {
            *eq = '\0';
            setenv(pair, eq + 1, 1);
        }
        free(pair);
    }
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        close(fd);
    }
    execl(path, path, (char *)NULL);
    fprintf(stderr, "exec %s: %s\n", path, strerror(errno));
    _exit(127);
}

long long ncct_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ncct_wait_exit(pid_t pid, int timeout_ms)
{
    long long deadline = ncct_now_ms() + timeout_ms;
    int status;
    while (ncct_now_ms() < deadline) {
        pid_t done = waitpid(pid, &status, WNOHANG);
        if (done == pid)
            return status;
        usleep(20 * 1000);
    }
    return -1;
}

void ncct_kill(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

size_t ncct_curl_collect(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    ncct_buffer_t *buffer = userdata;
    size_t n = size * nmemb;
    char *grown = realloc(buffer->data, buffer->len + n + 1);
    if (!grown)
        return 0;
    memcpy(grown + buffer->len, ptr, n);
    buffer->len += n;
    grown[buffer->len] = '\0';
    buffer->data = grown;
    return n;
}

void ncct_random_key(char out[64])
{
    unsigned char raw[32];
    if (RAND_bytes(raw, sizeof raw) != 1)
        abort();
    EVP_EncodeBlock((unsigned char *)out, raw, sizeof raw);
}

long ncct_http(const char *method, const char *url, const char *body, char **ret_body)
{
    CURL *curl = curl_easy_init();
    if (!curl)
        return -1;
    ncct_buffer_t buffer = {0};
    struct curl_slist *headers = NULL;
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, ncct_curl_collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &buffer);
    if (body) {
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    }
    long status = -1;
    if (curl_easy_perform(curl) == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    if (ret_body)
        *ret_body = buffer.data;
    else
        free(buffer.data);
    return status;
}

bool ncct_wait_status(const char *url, long status, int timeout_ms)
{
    long long deadline = ncct_now_ms() + timeout_ms;
    while (ncct_now_ms() < deadline) {
        if (ncct_http("GET", url, NULL, NULL) == status)
            return true;
        usleep(50 * 1000);
    }
    return false;
}

char *ncct_read_file(const char *path)
{
    FILE *file = fopen(path, "rb");
    if (!file)
        return NULL;
    size_t cap = 4096, len = 0;
    char *data = malloc(cap);
    size_t n;
    while (data && (n = fread(data + len, 1, cap - len - 1, file)) > 0) {
        len += n;
        if (cap - len < 2) {
            char *grown = realloc(data, cap * 2);
            if (!grown) {
                free(data);
                data = NULL;
                break;
            }
            data = grown;
            cap *= 2;
        }
    }
    fclose(file);
    if (data)
        data[len] = '\0';
    return data;
}

/* Runs scripts/pg.sh with `args`; the first line that is a URL into out. */
static bool s_pg_sh(const char *args, char *out, size_t len)
{
    const char *top = getenv("NCC_SOURCE_DIR");
    char command[512];
    snprintf(command, sizeof command, "'%s/scripts/pg.sh' %s 2>&1", top && *top ? top : ".", args);
    FILE *pipe = popen(command, "r");
    if (!pipe)
        return false;
    char line[1024];
    bool found = false;
    while (fgets(line, sizeof line, pipe)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!found && strncmp(line, "postgresql://", 13) == 0 && strlen(line) < len) {
            memcpy(out, line, strlen(line) + 1);
            found = true;
        } else if (!found) {
            fprintf(stderr, "pg.sh %s: %s\n", args, line);
        }
    }
    return pclose(pipe) == 0 && found;
}

bool ncct_database_fresh(ncct_database_t *db, const char *prefix)
{
    if (!getenv("NCC_DATABASE_URL")) {
        fprintf(stderr, "NCC_DATABASE_URL must be set (scripts/pg.sh start; . var/env)\n");
        return false;
    }
    snprintf(db->name, sizeof db->name, "%s_%d", prefix, (int)getpid());
    char args[128];
    snprintf(args, sizeof args, "fresh %s", db->name);
    if (!s_pg_sh(args, db->url, sizeof db->url))
        return false;
    snprintf(args, sizeof args, "owner-url %s", db->name);
    return s_pg_sh(args, db->owner_url, sizeof db->owner_url);
}

void ncct_database_drop(ncct_database_t *db)
{
    if (!db->name[0])
        return;
    const char *owner = getenv("NCC_DATABASE_OWNER_URL");
    if (!owner || !*owner)
        owner = getenv("NCC_DATABASE_URL");
    char sql[160];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db->name);
    for (int attempt = 0; owner && attempt < 50; attempt++) {
        PGconn *conn = PQconnectdb(owner);
        bool done = false;
        if (PQstatus(conn) == CONNECTION_OK) {
            PGresult *res = PQexec(conn, sql);
            done = PQresultStatus(res) == PGRES_COMMAND_OK;
            PQclear(res);
        }
        PQfinish(conn);
        if (done)
            break;
        usleep(100 * 1000);
    }
    db->name[0] = '\0';
}
