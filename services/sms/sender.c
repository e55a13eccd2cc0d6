/* sender: the thread that works the queue (one per ncc-sms copy, with its own
 * database connection). It takes due messages (FOR UPDATE SKIP LOCKED, under
 * a lease so that a crashed copy's messages are taken again), honours the
 * opt-out list, quiet hours (urgent messages excepted), the per-number and
 * the global rate limits, submits them through the provider, records the
 * outcome (retry with exponential back-off, or a final status), applies
 * delivery receipts, and expires what waited too long. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include "ncc/crypto.h"
#include "ncc/log.h"
#include "provider.h"
#include "sms.h"

struct sms_sender {
    sms_t *sms;
    char *db_url;
    ncc_db_t *db; /* the thread's own connection */
    sms_provider_t *provider;
    pthread_t thread;
    bool started;
    atomic_bool stop;
    int wake[2];   /* pipe: a new message was queued */
    double tokens; /* global rate: parts that may go now */
    int64_t tokens_at_ms;
    int64_t housekeeping_at_ms;
};

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Quiet hours now (Asia/Tokyo, UTC+9 without daylight saving). */
static bool s_quiet(const sms_settings_t *st)
{
    if (st->quiet_start == st->quiet_end)
        return false;
    time_t t = time(NULL) + 9 * 3600;
    struct tm tm;
    gmtime_r(&t, &tm);
    int h = tm.tm_hour;
    if (st->quiet_start < st->quiet_end)
        return h >= st->quiet_start && h < st->quiet_end;
    return h >= st->quiet_start || h < st->quiet_end;
}

static void s_db_warn(struct sms_sender *self, const char *what)
{
    ncc_warn("sms.sender_db", "%s: %s", what, ncc_db_error(self->db));
    ncc_db_rollback(self->db);
}

/* The outcomes of one round (the submits' answers and the receipts that one
 * poll read) are written in one transaction: one commit for many messages.
 * A failed statement rolls the round back; its messages stay leased and are
 * taken again when the lease runs out (docs/sms.md, "Delivery guarantees"). */
static bool s_batch_begin(struct sms_sender *self)
{
    if (ncc_db_in_transaction(self->db))
        return true;
    if (ncc_db_begin(self->db) < 0) {
        s_db_warn(self, "begin");
        return false;
    }
    return true;
}

static void s_batch_commit(struct sms_sender *self)
{
    if (ncc_db_in_transaction(self->db) && ncc_db_commit(self->db) < 0)
        s_db_warn(self, "commit");
}

/* ---- outcomes (provider callbacks) -------------------------------------------------------- */

static void s_on_result(void *arg, int64_t id, int rc, bool retry, const char *error,
                        char *const *provider_ids, int n)
{
    struct sms_sender *self = arg;
    const sms_settings_t *st = self->sms->settings;
    const char *provider = self->provider->name;
    char id_text[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, id);
    if (!s_batch_begin(self))
        return;
    if (rc == 0) {
        for (int i = 0; i < n; i++) {
            char n_text[16];
            snprintf(n_text, sizeof n_text, "%d", i);
            /* An id the provider gave before to another part (a carrier that
             * reuses ids after a restart) now names this part. */
            if (ncc_db_run(self->db,
                           "WITH reused AS (DELETE FROM parts WHERE provider = $3 AND "
                           "provider_id = $4 AND NOT (message_id = $1::bigint AND n = $2::int)) "
                           "INSERT INTO parts (message_id, n, provider, provider_id) VALUES "
                           "($1::bigint, $2::int, $3, $4) ON CONFLICT (message_id, n) DO UPDATE "
                           "SET provider = excluded.provider, provider_id = excluded.provider_id, "
                           "status = 'sent'",
                           4, (const char *[]){id_text, n_text, provider, provider_ids[i]}) < 0)
                goto fail;
        }
        int moved = sms_set_status(self->db, id, "sent", "");
        if (moved < 0)
            goto fail;
        /* Receipts that came before we knew the ids. */
        for (int i = 0; moved && i < n; i++) {
            PGresult *res = ncc_db_exec(self->db,
                                        "UPDATE receipts SET applied = true WHERE provider = $1 "
                                        "AND provider_id = $2 AND NOT applied RETURNING status, "
                                        "error",
                                        2, (const char *[]){provider, provider_ids[i]}, NULL);
            if (!res)
                goto fail;
            for (int r = 0; r < PQntuples(res); r++) {
                if (sms_apply_receipt(self->db, provider, provider_ids[i], PQgetvalue(res, r, 0),
                                      PQgetvalue(res, r, 1)) < 0) {
                    PQclear(res);
                    goto fail;
                }
            }
            PQclear(res);
        }
    } else {
        PGresult *res = ncc_db_exec(self->db,
                                    "SELECT attempts FROM messages WHERE id = $1::bigint AND "
                                    "status = 'queued' FOR UPDATE",
                                    1, (const char *[]){id_text}, NULL);
        if (!res)
            goto fail;
        int attempts = PQntuples(res) ? atoi(PQgetvalue(res, 0, 0)) : -1;
        PQclear(res);
        if (attempts < 0)
            return; /* no longer queued (opted out meanwhile): nothing to record */
        if (retry && attempts < st->max_attempts) {
            int64_t delay = st->retry_base_ms;
            for (int i = 1; i < attempts && delay < st->retry_max_ms; i++)
                delay *= 2;
            if (delay > st->retry_max_ms)
                delay = st->retry_max_ms;
            char delay_text[24];
            snprintf(delay_text, sizeof delay_text, "%" PRId64, delay);
            ncc_info("sms.retry", "message %" PRId64 " attempt %d: %s; again in %" PRId64 " ms", id,
                     attempts, error, delay);
            if (ncc_db_run(self->db,
                           "UPDATE messages SET lease_until = NULL, error = $2, next_attempt_at = "
                           "now() + make_interval(secs => $3::double precision / 1000) WHERE id = "
                           "$1::bigint",
                           3, (const char *[]){id_text, error, delay_text}) < 0 ||
                ncc_db_run(self->db,
                           "INSERT INTO message_events (message_id, status, detail) VALUES "
                           "($1::bigint, 'queued', $2)",
                           2, (const char *[]){id_text, error}) < 0)
                goto fail;
        } else {
            ncc_warn("sms.failed", "message %" PRId64 " after %d attempt(s): %s", id, attempts,
                     error);
            if (sms_set_status(self->db, id, "failed", error) < 0)
                goto fail;
        }
    }
    return;
fail:
    s_db_warn(self, "result");
}

static void s_on_receipt(void *arg, const char *provider_id, const char *status, const char *error)
{
    struct sms_sender *self = arg;
    const char *provider = self->provider->name;
    if (!s_batch_begin(self))
        return;
    PGresult *res =
        ncc_db_exec(self->db,
                    "INSERT INTO receipts (provider, provider_id, status, error) VALUES "
                    "($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1",
                    4, (const char *[]){provider, provider_id, status, error}, NULL);
    if (!res)
        goto fail;
    bool fresh = PQntuples(res) > 0;
    PQclear(res);
    if (fresh) {
        int rc = sms_apply_receipt(self->db, provider, provider_id, status, error);
        if (rc < 0)
            goto fail;
        if (rc == 1 && ncc_db_run(self->db,
                                  "UPDATE receipts SET applied = true WHERE provider = $1 AND "
                                  "provider_id = $2 AND status = $3",
                                  3, (const char *[]){provider, provider_id, status}) < 0)
            goto fail;
    } else {
        ncc_info("sms.receipt_duplicate", "receipt %s %s taken before", provider_id, status);
    }
    return;
fail:
    s_db_warn(self, "receipt");
}

/* ---- the queue ------------------------------------------------------------------------------ */

/* Expired messages and sent ones whose receipt never came. */
static void s_housekeeping(struct sms_sender *self)
{
    char timeout[16];
    snprintf(timeout, sizeof timeout, "%d", self->sms->settings->receipt_timeout_s);
    static const char *const sql[2] = {
        "SELECT id FROM messages WHERE status = 'queued' AND expires_at < now() AND (lease_until "
        "IS NULL OR lease_until < now()) ORDER BY id LIMIT 500 FOR UPDATE SKIP LOCKED",
        "SELECT id FROM messages WHERE status = 'sent' AND sent_at < now() - make_interval(secs "
        "=> $1::int) ORDER BY id LIMIT 500 FOR UPDATE SKIP LOCKED",
    };
    static const char *const why[2] = {"not sent before it expired", "no delivery receipt came"};
    for (int k = 0; k < 2; k++) {
        if (ncc_db_begin(self->db) < 0) {
            s_db_warn(self, "expiry");
            return;
        }
        PGresult *res = ncc_db_exec(self->db, sql[k], k, (const char *[]){timeout}, NULL);
        if (!res) {
            s_db_warn(self, "expiry");
            return;
        }
        int n = PQntuples(res);
        for (int i = 0; i < n; i++) {
            if (sms_set_status(self->db, strtoll(PQgetvalue(res, i, 0), NULL, 10), "expired",
                               why[k]) < 0) {
                PQclear(res);
                s_db_warn(self, "expiry");
                return;
            }
        }
        PQclear(res);
        if (ncc_db_commit(self->db) < 0) {
            s_db_warn(self, "expiry");
            return;
        }
        if (n > 0)
            ncc_info("sms.expired", "%d message(s): %s", n, why[k]);
    }
}

/* Takes up to `max` due messages (one statement, committed: their leases
 * hold even if this copy dies) and submits them. Returns how many. */
static int s_send_batch(struct sms_sender *self, bool quiet, int max)
{
    const sms_settings_t *st = self->sms->settings;
    const ncc_keyring_t *keyring = self->sms->keyring;
    char lease[16], limit[16], max_text[16];
    snprintf(lease, sizeof lease, "%d", st->lease_s);
    snprintf(limit, sizeof limit, "%d", st->per_number_per_hour);
    snprintf(max_text, sizeof max_text, "%d", max);
    s_batch_commit(self);
    PGresult *res = ncc_db_exec(
        self->db,
        "UPDATE messages m SET lease_until = now() + make_interval(secs => $1::int), attempts = "
        "m.attempts + 1, provider = $3 WHERE m.id IN (SELECT id FROM messages WHERE status = "
        "'queued' AND next_attempt_at <= now() AND expires_at > now() AND (lease_until IS NULL OR "
        "lease_until < now()) AND (urgent OR NOT $2::boolean) ORDER BY urgent DESC, "
        "next_attempt_at, id LIMIT $5::int FOR UPDATE SKIP LOCKED) RETURNING m.id, m.to_enc, "
        "m.to_index, m.body_enc, m.parts, EXISTS (SELECT 1 FROM opt_outs o WHERE o.to_index = "
        "m.to_index), (SELECT count(*) FROM messages x WHERE x.to_index = m.to_index AND x.id <> "
        "m.id AND x.sent_at > now() - interval '1 hour') >= $4::int",
        5, (const char *[]){lease, quiet ? "true" : "false", self->provider->name, limit, max_text},
        NULL);
    if (!res) {
        s_db_warn(self, "claim");
        return 0;
    }
    int n = PQntuples(res);
    for (int r = 0; r < n; r++) {
        int64_t id = strtoll(PQgetvalue(res, r, 0), NULL, 10);
        char id_text[24];
        snprintf(id_text, sizeof id_text, "%" PRId64, id);
        bool opted_out = PQgetvalue(res, r, 5)[0] == 't';
        bool over_limit = PQgetvalue(res, r, 6)[0] == 't';
        int parts = atoi(PQgetvalue(res, r, 4));
        char *to = ncc_decrypt(keyring, SMS_TO_CONTEXT, PQgetvalue(res, r, 1), NULL);
        char *text = ncc_decrypt(keyring, SMS_BODY_CONTEXT, PQgetvalue(res, r, 3), NULL);
        if (opted_out || !to || !text) {
            const char *why = opted_out ? "opted out" : "the stored message does not decrypt";
            if (!opted_out)
                ncc_error("sms.undecryptable", "message %" PRId64 ": %s", id, why);
            if (s_batch_begin(self) && sms_set_status(self->db, id, "failed", why) < 0)
                s_db_warn(self, "opt-out");
        } else if (over_limit) {
            /* Not an attempt: it waits until the number's hour has room. */
            if (s_batch_begin(self) &&
                ncc_db_run(self->db,
                           "UPDATE messages SET lease_until = NULL, attempts = attempts - 1, "
                           "next_attempt_at = now() + interval '1 minute', error = 'per-number "
                           "rate limit (NCC_SMS_PER_NUMBER_PER_HOUR)' WHERE id = $1::bigint",
                           1, (const char *[]){id_text}) < 0)
                s_db_warn(self, "postpone");
        } else {
            self->tokens -= parts;
            int rc = self->provider->submit(self->provider, id, to, text);
            /* Not taken (the window is full, the connection just dropped): back to
             * the queue, not counted as an attempt. */
            if (rc < 0 && s_batch_begin(self) &&
                ncc_db_run(self->db,
                           "UPDATE messages SET lease_until = NULL, attempts = attempts - 1 "
                           "WHERE id = $1::bigint",
                           1, (const char *[]){id_text}) < 0)
                s_db_warn(self, "release");
        }
        free(to);
        free(text);
    }
    PQclear(res);
    return n;
}

static void *s_run(void *arg)
{
    struct sms_sender *self = arg;
    const sms_settings_t *st = self->sms->settings;
    self->db = ncc_db_new(self->db_url, "sms");
    self->tokens_at_ms = s_now_ms();
    self->tokens = st->global_per_second;
    while (!atomic_load(&self->stop)) {
        int64_t now = s_now_ms();
        if (now >= self->housekeeping_at_ms) {
            s_batch_commit(self);
            s_housekeeping(self);
            self->housekeeping_at_ms = now + 1000;
        }
        /* Refill the global bucket (at most one second's worth). */
        self->tokens += (double)(now - self->tokens_at_ms) * st->global_per_second / 1000.0;
        if (self->tokens > st->global_per_second)
            self->tokens = st->global_per_second;
        self->tokens_at_ms = now;
        bool quiet = s_quiet(st);
        int sent = 0;
        int room = self->provider->capacity(self->provider);
        if (room > (int)self->tokens)
            room = (int)self->tokens;
        if (room > 100)
            room = 100;
        if (room > 0)
            sent = s_send_batch(self, quiet, room);
        char drain[64];
        bool busy = sent > 0 || read(self->wake[0], drain, sizeof drain) > 0;
        self->provider->poll(self->provider, busy ? 0 : (self->tokens < 1 ? 5 : st->check_ms),
                             self->wake[0]);
        s_batch_commit(self);
    }
    /* Drain: answers to what was submitted (at most 2 s). */
    int64_t until = s_now_ms() + 2000;
    while (self->provider->outstanding(self->provider) > 0 && s_now_ms() < until) {
        self->provider->poll(self->provider, 50, -1);
        s_batch_commit(self);
    }
    self->provider->destroy(&self->provider);
    ncc_db_destroy(&self->db);
    return NULL;
}

static void s_start(void *arg)
{
    sms_t *sms = arg;
    const sms_settings_t *st = sms->settings;
    if (sms->sender || !sms->keyring || strcmp(st->provider, "none") == 0)
        return;
    struct sms_sender *self = calloc(1, sizeof *self);
    if (!self) {
        ncc_error("sms.no_sender", "out of memory: SMS wait in the queue");
        return;
    }
    self->sms = sms;
    self->db_url = strdup(ncc_service_database_url(sms->service));
    self->wake[0] = self->wake[1] = -1;
    if (pipe2(self->wake, O_NONBLOCK | O_CLOEXEC) < 0)
        self->wake[0] = self->wake[1] = -1;
    sms_provider_events_t events = {
        .on_result = s_on_result, .on_receipt = s_on_receipt, .arg = self};
    if (strcmp(st->provider, "smpp") == 0)
        self->provider = sms_smpp_new(st, &events);
    else if (strcmp(st->provider, "http") == 0)
        self->provider = sms_http_new(st, &events);
    if (!self->db_url || !self->provider || pthread_create(&self->thread, NULL, s_run, self) != 0) {
        ncc_error("sms.no_sender", "cannot start the %s provider: SMS wait in the queue",
                  st->provider);
        if (self->provider)
            self->provider->destroy(&self->provider);
        if (self->wake[0] >= 0) {
            close(self->wake[0]);
            close(self->wake[1]);
        }
        free(self->db_url);
        free(self);
        return;
    }
    self->started = true;
    sms->sender = self;
    ncc_info("sms.sender", "provider %s", st->provider);
}

int sms_sender_register(sms_t *self)
{
    const char *p = self->settings->provider;
    if (strcmp(p, "smpp") != 0 && strcmp(p, "http") != 0 && strcmp(p, "none") != 0) {
        ncc_error("config.invalid", "NCC_SMS_PROVIDER is smpp, http or none");
        return -EINVAL;
    }
    ncc_service_on_ready(self->service, s_start, self);
    return 0;
}

void sms_sender_wake(sms_t *self)
{
    if (self->sender && self->sender->wake[1] >= 0) {
        ssize_t n = write(self->sender->wake[1], "w", 1);
        (void)n; /* a full pipe already wakes it */
    }
}

void sms_sender_stop(sms_t *self)
{
    struct sms_sender *sender = self->sender;
    if (!sender)
        return;
    atomic_store(&sender->stop, true);
    if (sender->wake[1] >= 0) {
        ssize_t n = write(sender->wake[1], "s", 1);
        (void)n;
    }
    if (sender->started)
        pthread_join(sender->thread, NULL);
    if (sender->wake[0] >= 0) {
        close(sender->wake[0]);
        close(sender->wake[1]);
    }
    free(sender->db_url);
    free(sender);
    self->sender = NULL;
}
