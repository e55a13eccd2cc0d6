/* recording: the recordings of calls (R22-R24). recording_ready queues the
 * PBX's URL (encrypted: it may hold a token); a fetch thread of each ncc-calls
 * copy takes due ones (FOR UPDATE SKIP LOCKED, with a lease so a crashed copy's
 * work is taken again), fetches them with libcurl (http(s) only, at most
 * NCC_RECORDING_MAX_BYTES, within NCC_RECORDING_FETCH_TIMEOUT_MS, audio only)
 * and keeps them encrypted in 1 MiB parts. GetRecordingPart serves a part to
 * supervisors, administrators and the call's operator; a timer deletes them
 * after NCC_RECORDING_RETENTION_DAYS. */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "calls.h"
#include "ncc/crypto.h"
#include "ncc/db.h"
#include "ncc/log.h"
#include "ncc/roles.h"

#define S_PART_BYTES    (1024 * 1024)
#define S_MAX_ATTEMPTS  3
#define S_LEASE_EXTRA_S 60 /* a fetch not finished by its timeout plus this is taken again */

struct calls_fetcher {
    calls_t *calls;
    char *db_url;
    pthread_t thread;
    bool started;
    atomic_bool stop;
    pthread_mutex_t lock;
    pthread_cond_t cond;
};

/* ---- queueing (in the event's transaction) ---------------------------------------------- */

int calls_recording_queue(calls_t *self, const char *call_id, const char *url)
{
    char *url_enc = ncc_encrypt(self->keyring, CALLS_URL_CONTEXT, url, strlen(url));
    if (!url_enc)
        return -EIO;
    const char *params[] = {call_id, url_enc};
    int rc = ncc_db_run(self->db,
                        "INSERT INTO recordings (call_id, url_enc) VALUES ($1, $2) ON CONFLICT "
                        "(call_id) DO UPDATE SET url_enc = excluded.url_enc, status = 'pending', "
                        "attempts = 0, next_attempt_at = now(), error = '' WHERE "
                        "recordings.status IN ('failed', 'pending')",
                        2, params);
    free(url_enc);
    if (rc == 0 && self->fetcher) {
        pthread_mutex_lock(&self->fetcher->lock);
        pthread_cond_signal(&self->fetcher->cond);
        pthread_mutex_unlock(&self->fetcher->lock);
    }
    return rc < 0 ? -EIO : 0;
}

/* ---- fetching ------------------------------------------------------------------------------ */

typedef struct {
    unsigned char *data;
    size_t len, cap, max;
    bool too_large;
} s_body_t;

static size_t s_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
    s_body_t *body = arg;
    size_t n = size * nmemb;
    if (body->len + n > body->max) {
        body->too_large = true;
        return 0; /* aborts the transfer */
    }
    if (body->len + n > body->cap) {
        size_t cap = body->cap ? body->cap * 2 : 65536;
        while (cap < body->len + n)
            cap *= 2;
        unsigned char *grown = realloc(body->data, cap);
        if (!grown)
            return 0;
        body->data = grown;
        body->cap = cap;
    }
    memcpy(body->data + body->len, ptr, n);
    body->len += n;
    return n;
}

/* The kind of audio the bytes start with, or NULL: WAV, MP3, Ogg, FLAC, AMR,
 * MP4/M4A. */
static const char *s_audio_kind(const unsigned char *d, size_t len)
{
    if (len >= 12 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WAVE", 4) == 0)
        return "wav";
    if (len >= 3 && memcmp(d, "ID3", 3) == 0)
        return "mp3";
    if (len >= 2 && d[0] == 0xFF && (d[1] & 0xE0) == 0xE0)
        return "mp3";
    if (len >= 4 && memcmp(d, "OggS", 4) == 0)
        return "ogg";
    if (len >= 4 && memcmp(d, "fLaC", 4) == 0)
        return "flac";
    if (len >= 6 && memcmp(d, "#!AMR", 5) == 0)
        return "amr";
    if (len >= 12 && memcmp(d + 4, "ftyp", 4) == 0)
        return "m4a";
    return NULL;
}

/* Fetches url. 0 with body and content type; else a sentence in why and
 * whether trying again may help (*ret_retry). */
static int s_fetch(const calls_settings_t *settings, const char *url, s_body_t *body,
                   char *content_type, size_t ct_len, char *why, size_t why_len, bool *ret_retry)
{
    *ret_retry = false;
    CURL *curl = curl_easy_init();
    if (!curl) {
        snprintf(why, why_len, "libcurl could not start");
        *ret_retry = true;
        return -EIO;
    }
    body->max = (size_t)settings->recording_max_bytes;
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 3L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)settings->recording_timeout_ms);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 15L);
    curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)settings->recording_max_bytes);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, s_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "ncc-calls (recording fetch)");
    CURLcode code = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    const char *ct = NULL;
    curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &ct);
    snprintf(content_type, ct_len, "%s", ct ? ct : "");
    curl_easy_cleanup(curl);
    if (body->too_large || code == CURLE_FILESIZE_EXCEEDED) {
        snprintf(why, why_len, "the recording is larger than %d bytes (NCC_RECORDING_MAX_BYTES)",
                 settings->recording_max_bytes);
        return -EFBIG;
    }
    if (code != CURLE_OK) {
        snprintf(why, why_len, "fetch failed: %s", curl_easy_strerror(code));
        *ret_retry = code != CURLE_UNSUPPORTED_PROTOCOL && code != CURLE_URL_MALFORMAT;
        return -EIO;
    }
    if (status != 200) {
        snprintf(why, why_len, "the PBX answered HTTP %ld", status);
        *ret_retry = status >= 500 || status == 429;
        return -EIO;
    }
    bool audio_type = strncasecmp(content_type, "audio/", 6) == 0 ||
                      strncasecmp(content_type, "application/octet-stream", 24) == 0;
    if (!audio_type || !s_audio_kind(body->data, body->len)) {
        snprintf(why, why_len, "not audio (Content-Type \"%.60s\", %zu bytes)", content_type,
                 body->len);
        return -EPROTO;
    }
    return 0;
}

/* Stores the fetched audio in parts, in one transaction. */
static int s_store(calls_t *calls, ncc_db_t *db, const char *call_id, const s_body_t *body,
                   const char *content_type)
{
    char sha[65], bytes[24], parts_text[16];
    ncc_sha256_hex(body->data, body->len, sha);
    int parts = (int)((body->len + S_PART_BYTES - 1) / S_PART_BYTES);
    snprintf(bytes, sizeof bytes, "%zu", body->len);
    snprintf(parts_text, sizeof parts_text, "%d", parts);
    if (ncc_db_begin(db) < 0 || ncc_db_run(db, "DELETE FROM recording_chunks WHERE call_id = $1", 1,
                                           (const char *[]){call_id}) < 0)
        goto fail;
    for (int n = 0; n < parts; n++) {
        size_t off = (size_t)n * S_PART_BYTES;
        size_t len = body->len - off < S_PART_BYTES ? body->len - off : S_PART_BYTES;
        char *enc = ncc_encrypt(calls->keyring, CALLS_AUDIO_CONTEXT, body->data + off, len);
        char n_text[16];
        snprintf(n_text, sizeof n_text, "%d", n);
        int rc = enc ? ncc_db_run(db,
                                  "INSERT INTO recording_chunks (call_id, n, data_enc) VALUES "
                                  "($1, $2::int, $3)",
                                  3, (const char *[]){call_id, n_text, enc})
                     : -1;
        free(enc);
        if (rc < 0)
            goto fail;
    }
    char ct[128];
    snprintf(ct, sizeof ct, "%.*s", (int)strcspn(content_type, ";"), content_type);
    if (ncc_db_run(db,
                   "UPDATE recordings SET status = 'stored', stored_at = now(), bytes = "
                   "$2::bigint, parts = $3::int, sha256 = $4, content_type = $5, error = '' "
                   "WHERE call_id = $1",
                   5, (const char *[]){call_id, bytes, parts_text, sha, ct}) < 0 ||
        ncc_db_commit(db) < 0)
        goto fail;
    return 0;
fail:
    ncc_error("recording.store_failed", "%s: %s", call_id, ncc_db_error(db));
    ncc_db_rollback(db);
    return -EIO;
}

/* Takes one due recording and fetches it. True when there was one. */
static bool s_fetch_one(struct calls_fetcher *self, ncc_db_t *db)
{
    const calls_settings_t *settings = self->calls->settings;
    char lease[24];
    snprintf(lease, sizeof lease, "%d", settings->recording_timeout_ms / 1000 + S_LEASE_EXTRA_S);
    PGresult *res = ncc_db_exec(
        db,
        "UPDATE recordings r SET status = 'fetching', attempts = r.attempts + 1, "
        "next_attempt_at = now() + make_interval(secs => $1::int) WHERE r.call_id = (SELECT "
        "call_id FROM recordings WHERE status IN ('pending', 'fetching') AND next_attempt_at <= "
        "now() ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING r.call_id, "
        "r.url_enc, r.attempts",
        1, (const char *[]){lease}, NULL);
    if (!res) {
        ncc_warn("recording.claim_failed", "%s", ncc_db_error(db));
        return false;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        return false;
    }
    char call_id[160];
    snprintf(call_id, sizeof call_id, "%s", PQgetvalue(res, 0, 0));
    int attempts = (int)strtol(PQgetvalue(res, 0, 2), NULL, 10);
    char *url = ncc_decrypt(self->calls->keyring, CALLS_URL_CONTEXT, PQgetvalue(res, 0, 1), NULL);
    PQclear(res);

    s_body_t body = {0};
    char content_type[160] = "", why[240] = "the URL does not decrypt";
    bool retry = false;
    int rc = url ? s_fetch(settings, url, &body, content_type, sizeof content_type, why, sizeof why,
                           &retry)
                 : -EIO;
    free(url);
    if (rc == 0 && s_store(self->calls, db, call_id, &body, content_type) == 0) {
        ncc_info("recording.stored", "%s: %zu bytes of %s", call_id, body.len, content_type);
    } else {
        if (rc == 0) {
            snprintf(why, sizeof why, "could not store it");
            retry = true;
        }
        bool again = retry && attempts < S_MAX_ATTEMPTS;
        char delay[16];
        snprintf(delay, sizeof delay, "%d", 30 * attempts);
        ncc_warn("recording.fetch_failed", "%s (attempt %d%s): %s", call_id, attempts,
                 again ? ", will try again" : "", why);
        ncc_db_run(db,
                   "UPDATE recordings SET status = $2, error = $3, next_attempt_at = now() + "
                   "make_interval(secs => $4::int) WHERE call_id = $1",
                   4, (const char *[]){call_id, again ? "pending" : "failed", why, delay});
    }
    free(body.data);
    return true;
}

static void *s_fetcher_run(void *arg)
{
    struct calls_fetcher *self = arg;
    ncc_db_t *db = ncc_db_new(self->db_url, "calls");
    while (!atomic_load(&self->stop)) {
        if (db && s_fetch_one(self, db))
            continue;
        pthread_mutex_lock(&self->lock);
        if (!atomic_load(&self->stop)) {
            struct timespec deadline;
            clock_gettime(CLOCK_REALTIME, &deadline);
            int ms = self->calls->settings->recording_check_ms;
            deadline.tv_sec += ms / 1000;
            deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
            if (deadline.tv_nsec >= 1000000000L) {
                deadline.tv_sec++;
                deadline.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&self->cond, &self->lock, &deadline);
        }
        pthread_mutex_unlock(&self->lock);
    }
    ncc_db_destroy(&db);
    return NULL;
}

/* ---- serving ------------------------------------------------------------------------------- */

static const char *s_extension(const char *content_type)
{
    static const struct {
        const char *type, *ext;
    } known[] = {{"audio/wav", "wav"},  {"audio/x-wav", "wav"}, {"audio/wave", "wav"},
                 {"audio/mpeg", "mp3"}, {"audio/ogg", "ogg"},   {"audio/flac", "flac"},
                 {"audio/amr", "amr"},  {"audio/mp4", "m4a"}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcasecmp(content_type, known[i].type) == 0)
            return known[i].ext;
    return "bin";
}

static void s_on_part(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    calls_t *self = arg;
    const Ncc__Calls__GetRecordingPart *m = (const Ncc__Calls__GetRecordingPart *)request->message;
    if (!m->call_id || !calls_id_ok(m->call_id)) {
        ncc_reply_error(reply, 422, "invalid_field", "call_id", "call_id is malformed");
        return;
    }
    int part = m->has_part ? m->part : 0;
    ncc_actor_t actor = ncc_request_actor(request);
    const char *own =
        (actor.roles & (NCC_ROLE_SUPERVISOR | NCC_ROLE_ADMIN | NCC_ROLE_SYSTEM)) ? NULL : actor.id;
    char part_text[16];
    snprintf(part_text, sizeof part_text, "%d", part);
    PGresult *res = ncc_db_exec(
        self->db,
        "SELECT r.status, r.content_type, r.bytes, r.parts, r.error, k.data_enc FROM recordings r "
        "JOIN calls c ON c.call_id = r.call_id LEFT JOIN recording_chunks k ON k.call_id = "
        "r.call_id AND k.n = $2::int WHERE r.call_id = $1 AND ($3::bigint IS NULL OR "
        "c.operator_id = $3::bigint)",
        3, (const char *[]){m->call_id, part_text, own}, NULL);
    if (!res) {
        calls_reply_db_error(self, reply, "recording");
        return;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        ncc_reply_error(reply, 404, "not_found", "call_id", "no recording of call %s", m->call_id);
        return;
    }
    const char *status = PQgetvalue(res, 0, 0);
    if (strcmp(status, "stored") != 0) {
        ncc_reply_error(reply, strcmp(status, "deleted") == 0 ? 410 : 404,
                        strcmp(status, "deleted") == 0 ? "gone" : "not_found", "call_id",
                        "the recording is %s%s%s", status, *PQgetvalue(res, 0, 4) ? ": " : "",
                        PQgetvalue(res, 0, 4));
        PQclear(res);
        return;
    }
    int parts = (int)strtol(PQgetvalue(res, 0, 3), NULL, 10);
    if (part < 0 || part >= parts || PQgetisnull(res, 0, 5)) {
        PQclear(res);
        ncc_reply_error(reply, 422, "invalid_field", "part", "part is 0 to %d", parts - 1);
        return;
    }
    size_t len = 0;
    char *data = ncc_decrypt(self->keyring, CALLS_AUDIO_CONTEXT, PQgetvalue(res, 0, 5), &len);
    if (!data) {
        PQclear(res);
        ncc_reply_error(reply, 500, "internal", NULL, "the recording does not decrypt");
        return;
    }
    char filename[200];
    snprintf(filename, sizeof filename, "%s.%s", m->call_id, s_extension(PQgetvalue(res, 0, 1)));
    Ncc__Calls__RecordingPart out = NCC__CALLS__RECORDING_PART__INIT;
    out.call_id = m->call_id;
    out.content_type = PQgetvalue(res, 0, 1);
    out.has_bytes = out.has_part = out.has_parts = out.has_data = true;
    out.bytes = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    out.part = part;
    out.parts = parts;
    out.data.data = (uint8_t *)data;
    out.data.len = len;
    out.filename = filename;
    ncc_reply_message(reply, &out.base);
    free(data);
    PQclear(res);
}

/* ---- retention ------------------------------------------------------------------------------ */

static void s_purge(void *arg)
{
    calls_t *self = arg;
    if (self->settings->recording_retention_days <= 0 || !ncc_db_ready(self->db))
        return;
    char days[16];
    snprintf(days, sizeof days, "%d", self->settings->recording_retention_days);
    PGresult *res = ncc_db_exec(
        self->db,
        "WITH gone AS (UPDATE recordings SET status = 'deleted', deleted_at = now(), parts = 0, "
        "url_enc = NULL WHERE status = 'stored' AND stored_at < now() - make_interval(days => "
        "$1::int) RETURNING call_id), chunks AS (DELETE FROM recording_chunks k USING gone g "
        "WHERE k.call_id = g.call_id) SELECT count(*) FROM gone",
        1, (const char *[]){days}, NULL);
    if (!res) {
        ncc_error("recording.purge_failed", "%s", ncc_db_error(self->db));
        return;
    }
    long n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    if (n > 0)
        ncc_info("recording.purged", "%ld recordings older than %d days deleted", n,
                 self->settings->recording_retention_days);
}

/* ---- life ---------------------------------------------------------------------------------- */

/* Once the database is migrated: the fetch thread starts. */
static void s_start_fetcher(void *arg)
{
    calls_t *self = arg;
    if (self->fetcher || !self->keyring)
        return; /* started already (a reconnect), or nothing can be stored */
    struct calls_fetcher *fetcher = calloc(1, sizeof *fetcher);
    if (!fetcher) {
        ncc_error("recording.no_fetcher", "out of memory: recordings are not fetched");
        return;
    }
    fetcher->calls = self;
    fetcher->db_url = strdup(ncc_service_database_url(self->service));
    pthread_mutex_init(&fetcher->lock, NULL);
    pthread_cond_init(&fetcher->cond, NULL);
    if (!fetcher->db_url || pthread_create(&fetcher->thread, NULL, s_fetcher_run, fetcher) != 0) {
        ncc_error("recording.no_fetcher", "cannot start the fetch thread: recordings wait");
        free(fetcher->db_url);
        pthread_cond_destroy(&fetcher->cond);
        pthread_mutex_destroy(&fetcher->lock);
        free(fetcher);
        return;
    }
    fetcher->started = true;
    self->fetcher = fetcher;
}

int calls_recording_register(calls_t *self)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (ncc_service_on(self->service, &ncc__calls__get_recording_part__descriptor,
                       NCC_ROLES_USERS | NCC_ROLE_SYSTEM, s_on_part, self) < 0 ||
        ncc_service_every(self->service, self->settings->recording_purge_ms, s_purge, self) < 0)
        return -EINVAL;
    ncc_service_on_ready(self->service, s_start_fetcher, self);
    return 0;
}

void calls_recording_stop(calls_t *self)
{
    struct calls_fetcher *fetcher = self->fetcher;
    if (!fetcher)
        return;
    pthread_mutex_lock(&fetcher->lock);
    atomic_store(&fetcher->stop, true);
    pthread_cond_signal(&fetcher->cond);
    pthread_mutex_unlock(&fetcher->lock);
    if (fetcher->started)
        pthread_join(fetcher->thread, NULL);
    pthread_cond_destroy(&fetcher->cond);
    pthread_mutex_destroy(&fetcher->lock);
    free(fetcher->db_url);
    free(fetcher);
    self->fetcher = NULL;
}
