/* sender: the thread that works the queue (one per ncc-sms copy, with its own
 * database connection). It takes due messages (FOR UPDATE SKIP LOCKED, under
 * a lease so that a crashed copy's messages are looked at again), honours the
 * opt-out list, quiet hours (urgent messages excepted), the per-number and
 * the global rate limits, commits them as 'submitting' and then submits them
 * through the provider, records the outcome (retry with exponential
 * back-off, a final status, or uncertain when the answer was lost), applies
 * delivery receipts, reconciles uncertain messages from orphan receipts, and
 * expires what waited too long (docs/sms.md, "Delivery guarantees"). */
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
#include "text.h"

/* How far a receipt's submit date (the SMSC's clock, to the minute) may be
 * from the time the submit went out, in seconds, for an orphan match. */
#define S_SUBMIT_DATE_BEFORE 300
#define S_SUBMIT_DATE_AFTER  360
/* The characters of a part an Appendix B receipt repeats ("text:"). */
#define S_RECEIPT_TEXT_CHARS 20

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
    bool round_failed; /* a statement failed since the last commit: receipts are not answered */
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
    self->round_failed = true;
}

/* The outcomes of one round (the submits' answers and the receipts that one
 * poll read) are written in one transaction: one commit for many messages.
 * A failed statement rolls the round back; its messages stay leased and are
 * looked at again when the lease runs out (docs/sms.md, "Delivery
 * guarantees"), its receipts are not answered (the carrier sends them again). */
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

/* Commits the round and lets the provider answer the receipts it stored.
 * false when the commit failed. */
static bool s_batch_commit(struct sms_sender *self)
{
    bool ok = true;
    if (ncc_db_in_transaction(self->db) && ncc_db_commit(self->db) < 0) {
        s_db_warn(self, "commit");
        ok = false;
    }
    bool stored = ok && !self->round_failed;
    self->round_failed = false;
    if (self->provider)
        self->provider->acknowledge(self->provider, stored);
    return ok;
}

/* ---- parts and receipts --------------------------------------------------------------------- */

/* Stores the provider ids of message id_text's parts (n of them; NULL: not
 * known), in the round's transaction. 0 or -EIO. */
static int s_store_parts(struct sms_sender *self, const char *id_text, char *const *ids, int n)
{
    const char *provider = self->provider->name;
    for (int i = 0; ids && i < n; i++) {
        if (!ids[i])
            continue;
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
                       "status = CASE WHEN parts.provider_id = excluded.provider_id THEN "
                       "parts.status ELSE 'sent' END",
                       4, (const char *[]){id_text, n_text, provider, ids[i]}) < 0)
            return -EIO;
    }
    return 0;
}

/* Applies the receipts that came for provider_id before it was known. 0 or -EIO. */
static int s_apply_waiting(struct sms_sender *self, const char *provider_id)
{
    const char *provider = self->provider->name;
    PGresult *res = ncc_db_exec(self->db,
                                "UPDATE receipts SET applied = true WHERE provider = $1 "
                                "AND provider_id = $2 AND NOT applied RETURNING status, "
                                "error",
                                2, (const char *[]){provider, provider_id}, NULL);
    if (!res)
        return -EIO;
    for (int r = 0; r < PQntuples(res); r++) {
        if (sms_apply_receipt(self->db, provider, provider_id, PQgetvalue(res, r, 0),
                              PQgetvalue(res, r, 1)) < 0) {
            PQclear(res);
            return -EIO;
        }
    }
    PQclear(res);
    return 0;
}

/* The blind index of a receipt text (its bytes as hex) into out. 0 or -errno. */
static int s_text_index(const ncc_keyring_t *keyring, const uint8_t *bytes, size_t len,
                        char out[65])
{
    char hex[2 * 96 + 1];
    if (len > 96)
        len = 96;
    for (size_t i = 0; i < len; i++)
        snprintf(hex + 2 * i, 3, "%02x", bytes[i]);
    hex[2 * len] = '\0';
    return ncc_blind_index(keyring, SMS_RECEIPT_TEXT_INDEX, hex, out);
}

/* A part of an uncertain message that has no provider id yet. */
typedef struct {
    int64_t id;
    int n, total;
    int64_t submitted; /* unix seconds */
    char utf8[65];     /* text index of its first 20 characters as UTF-8 */
    char raw[65];      /* text index of its first 20 octets as sent (GSM-7 septets, UCS-2) */
    bool taken;
} s_candidate_t;

/* The candidates of one uncertain message (body the decrypted text) onto
 * *cands. 0 or -ENOMEM. */
static int s_candidates_add(const ncc_keyring_t *keyring, int64_t id, const char *body,
                            int64_t submitted, const char *known, s_candidate_t **cands, int *n,
                            int *cap)
{
    sms_part_t *parts = NULL;
    int count = 0;
    if (sms_text_parts(body, 0, &parts, &count) < 0)
        return 0; /* cannot be split: it could not have been sent */
    for (int i = 0; i < count; i++) {
        char token[16];
        snprintf(token, sizeof token, ",%d,", i);
        if (strstr(known, token))
            continue;
        if (*n == *cap) {
            int grown_cap = *cap ? *cap * 2 : 16;
            s_candidate_t *grown = realloc(*cands, (size_t)grown_cap * sizeof *grown);
            if (!grown) {
                free(parts);
                return -ENOMEM;
            }
            *cands = grown;
            *cap = grown_cap;
        }
        s_candidate_t *c = &(*cands)[(*n)++];
        memset(c, 0, sizeof *c);
        c->id = id;
        c->n = i;
        c->total = count;
        c->submitted = submitted;
        /* The first 20 code points of the part's characters. */
        const unsigned char *p = (const unsigned char *)body + parts[i].text_offset;
        const unsigned char *end = p + parts[i].text_len;
        int chars = 0;
        while (p < end && chars < S_RECEIPT_TEXT_CHARS) {
            p++;
            while (p < end && (*p & 0xC0) == 0x80)
                p++;
            chars++;
        }
        size_t utf8_len = (size_t)(p - ((const unsigned char *)body + parts[i].text_offset));
        int skip = parts[i].esm_class & 0x40 ? 6 : 0;
        size_t raw_len = (size_t)(parts[i].len - skip);
        if (raw_len > S_RECEIPT_TEXT_CHARS)
            raw_len = S_RECEIPT_TEXT_CHARS;
        if (s_text_index(keyring, (const uint8_t *)body + parts[i].text_offset, utf8_len, c->utf8) <
                0 ||
            s_text_index(keyring, parts[i].bytes + skip, raw_len, c->raw) < 0) {
            (*n)--;
            continue;
        }
    }
    free(parts);
    return 0;
}

/* Adopts the carrier's id for part c and applies its receipt. 0 or -EIO. */
static int s_adopt(struct sms_sender *self, const s_candidate_t *c, const char *provider_id,
                   const char *status, const char *error)
{
    const char *provider = self->provider->name;
    char id_text[24], n_text[16], detail[300];
    snprintf(id_text, sizeof id_text, "%" PRId64, c->id);
    snprintf(n_text, sizeof n_text, "%d", c->n);
    snprintf(detail, sizeof detail,
             "reconciled: part %d of %d is the carrier's message %.80s (its receipt matched the "
             "destination, the text and the submit date); not sent again",
             c->n + 1, c->total, provider_id);
    if (ncc_db_run(self->db,
                   "WITH reused AS (DELETE FROM parts WHERE provider = $3 AND provider_id = $4 "
                   "AND NOT (message_id = $1::bigint AND n = $2::int)) INSERT INTO parts "
                   "(message_id, n, provider, provider_id) VALUES ($1::bigint, $2::int, $3, $4) "
                   "ON CONFLICT (message_id, n) DO NOTHING",
                   4, (const char *[]){id_text, n_text, provider, provider_id}) < 0)
        return -EIO;
    int moved = sms_set_status(self->db, c->id, "sent", detail);
    if (moved < 0)
        return -EIO;
    if (moved == 0 && ncc_db_run(self->db,
                                 "INSERT INTO message_events (message_id, status, detail) "
                                 "SELECT id, status, $2 FROM messages WHERE id = $1::bigint",
                                 2, (const char *[]){id_text, detail}) < 0)
        return -EIO;
    if (sms_apply_receipt(self->db, provider, provider_id, status, error) < 0 ||
        ncc_db_run(self->db,
                   "UPDATE receipts SET applied = true WHERE provider = $1 AND provider_id = $2 "
                   "AND status = $3",
                   3, (const char *[]){provider, provider_id, status}) < 0)
        return -EIO;
    ncc_info("sms.reconciled", "message %" PRId64 " part %d/%d: the carrier's %s (%s)", c->id,
             c->n + 1, c->total, provider_id, status);
    return 0;
}

/* Matches the orphan receipts to destination to_index (receipts whose id
 * names no known part) to the parts without an id of the uncertain messages
 * to it: the receipt's text: must be the part's first 20 characters (as
 * UTF-8 or as the octets sent) and its submit date near the submit; a
 * receipt without text matches only when one part is possible. In the
 * caller's transaction; messages another copy holds are left for the next
 * sweep. 0 or -EIO. */
static int s_reconcile(struct sms_sender *self, const char *to_index)
{
    const char *provider = self->provider->name;
    const ncc_keyring_t *keyring = self->sms->keyring;
    PGresult *receipts = ncc_db_exec(
        self->db,
        "SELECT provider_id, status, error, coalesce(text_index, ''), coalesce(extract(epoch "
        "FROM submit_at)::bigint, 0) FROM receipts WHERE provider = $1 AND to_index = $2 AND "
        "NOT applied ORDER BY received_at, provider_id, status LIMIT 200",
        2, (const char *[]){provider, to_index}, NULL);
    if (!receipts)
        return -EIO;
    if (PQntuples(receipts) == 0) {
        PQclear(receipts);
        return 0;
    }
    /* Lock first, then read (the parts known as of the lock). */
    PGresult *locked = ncc_db_exec(
        self->db,
        "SELECT id FROM messages WHERE to_index = $1 AND uncertain_at IS NOT NULL AND status IN "
        "('queued', 'sent') AND submit_state <> 'submitting' ORDER BY id LIMIT 50 FOR UPDATE SKIP "
        "LOCKED",
        1, (const char *[]){to_index}, NULL);
    if (!locked) {
        PQclear(receipts);
        return -EIO;
    }
    int n_locked = PQntuples(locked);
    PQclear(locked);
    PGresult *msgs = n_locked == 0
                         ? NULL
                         : ncc_db_exec(self->db,
                                       "SELECT m.id, m.body_enc, coalesce(extract(epoch FROM "
                                       "m.submitted_at)::bigint, 0), ',' || coalesce((SELECT "
                                       "string_agg(p.n::text, ',') FROM parts p WHERE "
                                       "p.message_id = m.id), '') || ',' FROM messages m WHERE "
                                       "m.to_index = $1 AND m.uncertain_at IS NOT NULL AND "
                                       "m.status IN ('queued', 'sent') AND m.submit_state <> "
                                       "'submitting' ORDER BY m.submitted_at, m.id LIMIT 50",
                                       1, (const char *[]){to_index}, NULL);
    if (n_locked > 0 && !msgs) {
        PQclear(receipts);
        return -EIO;
    }
    int rc = 0;
    s_candidate_t *cands = NULL;
    int n_cands = 0, cap = 0;
    for (int m = 0; msgs && m < PQntuples(msgs); m++) {
        char *body = ncc_decrypt(keyring, SMS_BODY_CONTEXT, PQgetvalue(msgs, m, 1), NULL);
        if (!body)
            continue;
        int added = s_candidates_add(keyring, strtoll(PQgetvalue(msgs, m, 0), NULL, 10), body,
                                     strtoll(PQgetvalue(msgs, m, 2), NULL, 10),
                                     PQgetvalue(msgs, m, 3), &cands, &n_cands, &cap);
        free(body);
        if (added < 0)
            break;
    }
    for (int r = 0; rc == 0 && r < PQntuples(receipts); r++) {
        const char *provider_id = PQgetvalue(receipts, r, 0);
        const char *status = PQgetvalue(receipts, r, 1);
        const char *error = PQgetvalue(receipts, r, 2);
        const char *text_index = PQgetvalue(receipts, r, 3);
        int64_t submit_at = strtoll(PQgetvalue(receipts, r, 4), NULL, 10);
        /* Another receipt of the same id may have been adopted just now. */
        int known = sms_apply_receipt(self->db, provider, provider_id, status, error);
        if (known < 0) {
            rc = -EIO;
            break;
        }
        if (known == 1) {
            if (ncc_db_run(self->db,
                           "UPDATE receipts SET applied = true WHERE provider = $1 AND "
                           "provider_id = $2 AND status = $3",
                           3, (const char *[]){provider, provider_id, status}) < 0)
                rc = -EIO;
            continue;
        }
        int pick = -1, possible = 0;
        for (int c = 0; c < n_cands; c++) {
            s_candidate_t *cand = &cands[c];
            if (cand->taken)
                continue;
            if (submit_at > 0 && (cand->submitted < submit_at - S_SUBMIT_DATE_BEFORE ||
                                  cand->submitted > submit_at + S_SUBMIT_DATE_AFTER))
                continue;
            possible++;
            if (text_index[0] && pick < 0 &&
                (strcmp(text_index, cand->utf8) == 0 || strcmp(text_index, cand->raw) == 0))
                pick = c;
            if (!text_index[0] && pick < 0)
                pick = c;
        }
        if (pick < 0 || (!text_index[0] && possible != 1))
            continue; /* matches nothing (yet): kept */
        cands[pick].taken = true;
        if (s_adopt(self, &cands[pick], provider_id, status, error) < 0)
            rc = -EIO;
    }
    free(cands);
    PQclear(msgs);
    PQclear(receipts);
    return rc;
}

/* Message id's submit went out and its answer was lost (`cause`): it is
 * uncertain, never taken again; the parts whose ids are known (ids, n) are
 * stored; it waits for its receipts. In the caller's transaction. 1 marked,
 * 0 no longer queued, -EIO. */
static int s_mark_uncertain(struct sms_sender *self, int64_t id, const char *cause,
                            char *const *ids, int n)
{
    const sms_settings_t *st = self->sms->settings;
    char id_text[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, id);
    PGresult *res = ncc_db_exec(self->db,
                                "SELECT submit_state, to_index FROM messages WHERE id = "
                                "$1::bigint AND status = 'queued' FOR UPDATE",
                                1, (const char *[]){id_text}, NULL);
    if (!res)
        return -EIO;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return 0;
    }
    bool already = strcmp(PQgetvalue(res, 0, 0), "uncertain") == 0;
    char to_index[80];
    snprintf(to_index, sizeof to_index, "%s", PQgetvalue(res, 0, 1));
    PQclear(res);
    char detail[400];
    snprintf(detail, sizeof detail,
             "送信結果不明 (outcome unknown): %s; waiting up to %d s for the carrier's delivery "
             "receipt, %s",
             cause, st->uncertain_wait_s,
             st->uncertain_resubmit ? "then sent again (NCC_SMS_UNCERTAIN_RESUBMIT=1)"
                                    : "not sent again");
    if (s_store_parts(self, id_text, ids, n) < 0 ||
        ncc_db_run(self->db,
                   "UPDATE messages SET submit_state = 'uncertain', uncertain_at = "
                   "coalesce(uncertain_at, now()), lease_until = NULL, error = $2 WHERE id = "
                   "$1::bigint",
                   2, (const char *[]){id_text, detail}) < 0 ||
        (!already && ncc_db_run(self->db,
                                "INSERT INTO message_events (message_id, status, detail) VALUES "
                                "($1::bigint, 'queued', $2)",
                                2, (const char *[]){id_text, detail}) < 0))
        return -EIO;
    for (int i = 0; ids && i < n; i++)
        if (ids[i] && s_apply_waiting(self, ids[i]) < 0)
            return -EIO;
    if (!already)
        ncc_warn("sms.uncertain", "message %" PRId64 ": %s", id, cause);
    return s_reconcile(self, to_index) < 0 ? -EIO : 1;
}

/* ---- outcomes (provider callbacks) -------------------------------------------------------- */

static void s_on_result(void *arg, int64_t id, int rc, bool retry, bool uncertain,
                        const char *error, char *const *provider_ids, int n)
{
    struct sms_sender *self = arg;
    const sms_settings_t *st = self->sms->settings;
    char id_text[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, id);
    if (!s_batch_begin(self))
        return;
    if (rc == 0) {
        if (s_store_parts(self, id_text, provider_ids, n) < 0)
            goto fail;
        int moved = sms_set_status(self->db, id, "sent", "");
        if (moved < 0)
            goto fail;
        /* Receipts that came before we knew the ids. */
        for (int i = 0; moved && i < n; i++)
            if (s_apply_waiting(self, provider_ids[i]) < 0)
                goto fail;
    } else if (retry && uncertain) {
        if (s_mark_uncertain(self, id, error, provider_ids, n) < 0)
            goto fail;
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
                           "UPDATE messages SET lease_until = NULL, submit_state = 'idle', error "
                           "= $2, next_attempt_at = now() + make_interval(secs => "
                           "$3::double precision / 1000) WHERE id = $1::bigint",
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

/* A receipt's submit date "YYMMDDhhmm" (Asia/Tokyo) as unix seconds text
 * into out ("" when absent or malformed). */
static void s_submit_date(const char *date, char *out, size_t len)
{
    out[0] = '\0';
    if (!date || strlen(date) != 10 || strspn(date, "0123456789") != 10)
        return;
    int v[5];
    for (int i = 0; i < 5; i++)
        v[i] = (date[2 * i] - '0') * 10 + (date[2 * i + 1] - '0');
    if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 || v[4] > 59)
        return;
    struct tm tm = {.tm_year = 100 + v[0],
                    .tm_mon = v[1] - 1,
                    .tm_mday = v[2],
                    .tm_hour = v[3],
                    .tm_min = v[4]};
    snprintf(out, len, "%lld", (long long)timegm(&tm) - 9 * 3600);
}

static void s_on_receipt(void *arg, const sms_receipt_t *receipt)
{
    struct sms_sender *self = arg;
    const char *provider = self->provider->name;
    const char *provider_id = receipt->provider_id, *status = receipt->status;
    if (!s_batch_begin(self))
        return;
    PGresult *res =
        ncc_db_exec(self->db,
                    "INSERT INTO receipts (provider, provider_id, status, error) VALUES "
                    "($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1",
                    4, (const char *[]){provider, provider_id, status, receipt->error}, NULL);
    if (!res)
        goto fail;
    bool fresh = PQntuples(res) > 0;
    PQclear(res);
    if (!fresh) {
        ncc_info("sms.receipt_duplicate", "receipt %s %s taken before", provider_id, status);
        return;
    }
    int rc = sms_apply_receipt(self->db, provider, provider_id, status, receipt->error);
    if (rc < 0)
        goto fail;
    if (rc == 1) {
        if (ncc_db_run(self->db,
                       "UPDATE receipts SET applied = true WHERE provider = $1 AND "
                       "provider_id = $2 AND status = $3",
                       3, (const char *[]){provider, provider_id, status}) < 0)
            goto fail;
        return;
    }
    /* An orphan: its id names no part we know (yet). Kept with what it can be
     * matched by, as blind indexes (no destination or text in plain). */
    char to_index[65] = "", text_index[65] = "", submit_at[24];
    const ncc_keyring_t *keyring = self->sms->keyring;
    if (receipt->destination && receipt->destination[0] &&
        ncc_blind_index(keyring, SMS_TO_INDEX, receipt->destination, to_index) < 0)
        to_index[0] = '\0';
    if (receipt->text && receipt->text_len > 0 &&
        s_text_index(keyring, receipt->text, receipt->text_len, text_index) < 0)
        text_index[0] = '\0';
    s_submit_date(receipt->submit_date, submit_at, sizeof submit_at);
    if (!to_index[0])
        return; /* kept for its id only */
    if (ncc_db_run(
            self->db,
            "UPDATE receipts SET to_index = $4, text_index = $5, submit_at = CASE WHEN $6 "
            "= '' THEN NULL ELSE to_timestamp($6::double precision) END WHERE provider = "
            "$1 AND provider_id = $2 AND status = $3",
            6,
            (const char *[]){provider, provider_id, status, to_index, text_index, submit_at}) < 0 ||
        s_reconcile(self, to_index) < 0)
        goto fail;
    return;
fail:
    s_db_warn(self, "receipt");
}

/* ---- the queue ------------------------------------------------------------------------------ */

/* One housekeeping step in a transaction of its own: `sql` selects message
 * ids (and their status and attempts), `apply` is done to each. */
typedef int (*s_step_fn)(struct sms_sender *self, PGresult *res, int row);

static void s_step(struct sms_sender *self, const char *what, const char *sql, int nparams,
                   const char *const *params, s_step_fn apply)
{
    if (ncc_db_begin(self->db) < 0) {
        s_db_warn(self, what);
        return;
    }
    PGresult *res = ncc_db_exec(self->db, sql, nparams, params, NULL);
    if (!res) {
        s_db_warn(self, what);
        return;
    }
    int n = PQntuples(res);
    for (int i = 0; i < n; i++) {
        if (apply(self, res, i) < 0) {
            PQclear(res);
            s_db_warn(self, what);
            return;
        }
    }
    PQclear(res);
    if (ncc_db_commit(self->db) < 0) {
        s_db_warn(self, what);
        return;
    }
    if (n > 0)
        ncc_info("sms.housekeeping", "%s: %d", what, n);
}

static int s_expire_unsent(struct sms_sender *self, PGresult *res, int row)
{
    return sms_set_status(self->db, strtoll(PQgetvalue(res, row, 0), NULL, 10), "expired",
                          "not sent before it expired");
}

static int s_expire_no_receipt(struct sms_sender *self, PGresult *res, int row)
{
    return sms_set_status(self->db, strtoll(PQgetvalue(res, row, 0), NULL, 10), "expired",
                          "no delivery receipt came");
}

static int s_stale_submit(struct sms_sender *self, PGresult *res, int row)
{
    return s_mark_uncertain(self, strtoll(PQgetvalue(res, row, 0), NULL, 10),
                            "the copy that submitted it stopped before it recorded the SMSC's "
                            "answer",
                            NULL, 0);
}

/* An uncertain message whose receipt did not come: expired with the reason
 * (or, with NCC_SMS_UNCERTAIN_RESUBMIT=1, queued again). */
static int s_uncertain_done(struct sms_sender *self, PGresult *res, int row)
{
    const sms_settings_t *st = self->sms->settings;
    const char *id_text = PQgetvalue(res, row, 0);
    bool queued = strcmp(PQgetvalue(res, row, 1), "queued") == 0;
    int attempts = atoi(PQgetvalue(res, row, 2));
    if (st->uncertain_resubmit && queued && attempts < st->max_attempts) {
        const char *why = "送信結果不明 (outcome unknown): no receipt came; submitted again "
                          "(NCC_SMS_UNCERTAIN_RESUBMIT=1), the resident may get it twice";
        ncc_warn("sms.resubmit", "message %s: %s", id_text, why);
        return ncc_db_run(self->db,
                          "UPDATE messages SET submit_state = 'idle', uncertain_at = NULL, "
                          "next_attempt_at = now(), error = $2 WHERE id = $1::bigint",
                          2, (const char *[]){id_text, why}) < 0 ||
                       ncc_db_run(self->db, "DELETE FROM parts WHERE message_id = $1::bigint", 1,
                                  (const char *[]){id_text}) < 0 ||
                       ncc_db_run(self->db,
                                  "INSERT INTO message_events (message_id, status, detail) VALUES "
                                  "($1::bigint, 'queued', $2)",
                                  2, (const char *[]){id_text, why}) < 0
                   ? -EIO
                   : 0;
    }
    return sms_set_status(self->db, strtoll(id_text, NULL, 10), "expired",
                          "送信結果不明 (outcome unknown): the carrier's answer to the submit was "
                          "lost and no delivery receipt came; the SMS may or may not have "
                          "arrived, and it was not sent again");
}

static int s_sweep_one(struct sms_sender *self, PGresult *res, int row)
{
    return s_reconcile(self, PQgetvalue(res, row, 0));
}

/* Expired messages and sent ones whose receipt never came; submits whose
 * copy died (uncertain); uncertain ones whose wait is over; orphan receipts
 * matched again (a message another copy held). */
static void s_housekeeping(struct sms_sender *self)
{
    const sms_settings_t *st = self->sms->settings;
    char timeout[16], wait[16];
    snprintf(timeout, sizeof timeout, "%d", st->receipt_timeout_s);
    snprintf(wait, sizeof wait, "%d", st->uncertain_wait_s);
    s_step(self, "not sent before it expired",
           "SELECT id FROM messages WHERE status = 'queued' AND submit_state = 'idle' AND "
           "expires_at < now() AND (lease_until IS NULL OR lease_until < now()) ORDER BY id "
           "LIMIT 500 FOR UPDATE SKIP LOCKED",
           0, NULL, s_expire_unsent);
    s_step(self, "no delivery receipt came",
           "SELECT id FROM messages WHERE status = 'sent' AND sent_at < now() - make_interval(secs "
           "=> $1::int) ORDER BY id LIMIT 500 FOR UPDATE SKIP LOCKED",
           1, (const char *[]){timeout}, s_expire_no_receipt);
    s_step(self, "uncertain: the submitting copy stopped",
           "SELECT id FROM messages WHERE submit_state = 'submitting' AND status = 'queued' AND "
           "lease_until < now() ORDER BY id LIMIT 500 FOR UPDATE SKIP LOCKED",
           0, NULL, s_stale_submit);
    s_step(self, "uncertain, no receipt",
           "SELECT m.id, m.status, m.attempts FROM messages m WHERE m.uncertain_at IS NOT NULL "
           "AND m.status IN ('queued', 'sent') AND m.submit_state <> 'submitting' AND "
           "m.uncertain_at < now() - make_interval(secs => $1::int) AND (SELECT count(*) FROM "
           "parts p WHERE p.message_id = m.id) < m.parts ORDER BY m.id LIMIT 500 FOR UPDATE SKIP "
           "LOCKED",
           1, (const char *[]){wait}, s_uncertain_done);
    s_step(self, "orphan receipts matched",
           "SELECT DISTINCT r.to_index FROM receipts r JOIN messages m ON m.to_index = r.to_index "
           "AND m.uncertain_at IS NOT NULL AND m.status IN ('queued', 'sent') AND "
           "m.submit_state <> 'submitting' WHERE NOT r.applied AND r.to_index IS NOT NULL AND "
           "r.provider = $1 LIMIT 100",
           1, (const char *[]){self->provider->name}, s_sweep_one);
}

/* A message taken to be submitted: its destination and text (owned). */
typedef struct {
    int64_t id;
    char *to, *text;
    int parts;
} s_job_t;

/* Takes up to `max` due messages (one statement, committed: their leases
 * hold even if this copy dies, and those to submit are 'submitting', docs/sms.md
 * "Delivery guarantees") and submits them. Returns how many were taken. */
static int s_send_batch(struct sms_sender *self, bool quiet, int max)
{
    const sms_settings_t *st = self->sms->settings;
    const ncc_keyring_t *keyring = self->sms->keyring;
    char lease[16], limit[16], max_text[16];
    snprintf(lease, sizeof lease, "%d", st->lease_s);
    snprintf(limit, sizeof limit, "%d", st->per_number_per_hour);
    snprintf(max_text, sizeof max_text, "%d", max);
    s_batch_commit(self);
    /* One statement, committed before anything goes out: the messages to submit
     * are 'submitting' (a message whose answer is then lost is known to be
     * uncertain and is never submitted blindly again); the ones opted out or
     * over their number's limit stay idle. */
    PGresult *res = ncc_db_exec(
        self->db,
        "UPDATE messages m SET lease_until = now() + make_interval(secs => $1::int), attempts = "
        "m.attempts + 1, provider = $3, submitted_at = now(), submit_state = CASE WHEN EXISTS "
        "(SELECT 1 FROM opt_outs o WHERE o.to_index = m.to_index) OR (SELECT count(*) FROM "
        "messages x WHERE x.to_index = m.to_index AND x.id <> m.id AND x.sent_at > now() - "
        "interval '1 hour') >= $4::int THEN 'idle' ELSE 'submitting' END WHERE m.id IN (SELECT "
        "id FROM messages WHERE status = 'queued' AND submit_state = 'idle' AND next_attempt_at "
        "<= now() AND expires_at > now() AND (lease_until IS NULL OR lease_until < now()) AND "
        "(urgent OR NOT $2::boolean) ORDER BY urgent DESC, next_attempt_at, id LIMIT $5::int "
        "FOR UPDATE SKIP LOCKED) RETURNING m.id, m.to_enc, m.to_index, m.body_enc, m.parts, "
        "EXISTS (SELECT 1 FROM opt_outs o WHERE o.to_index = m.to_index), (SELECT count(*) FROM "
        "messages x WHERE x.to_index = m.to_index AND x.id <> m.id AND x.sent_at > now() - "
        "interval '1 hour') >= $4::int",
        5, (const char *[]){lease, quiet ? "true" : "false", self->provider->name, limit, max_text},
        NULL);
    if (!res) {
        s_db_warn(self, "claim");
        return 0;
    }
    int n = PQntuples(res);
    s_job_t *jobs = calloc((size_t)n + 1, sizeof *jobs);
    int n_jobs = 0;
    if (!jobs) {
        /* Uncertain once their lease runs out: never sent twice. */
        ncc_error("sms.no_memory", "out of memory: %d message(s) taken and not sent", n);
        PQclear(res);
        return 0;
    }
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
            jobs[n_jobs++] = (s_job_t){.id = id, .to = to, .text = text, .parts = parts};
            to = text = NULL;
        }
        free(to);
        free(text);
    }
    PQclear(res);
    for (int j = 0; j < n_jobs; j++) {
        s_job_t *job = &jobs[j];
        self->tokens -= job->parts;
        int rc = self->provider->submit(self->provider, job->id, job->to, job->text);
        /* Not taken (the window is full, the connection just dropped): nothing
         * went out; back to the queue, not counted as an attempt. */
        char id_text[24];
        snprintf(id_text, sizeof id_text, "%" PRId64, job->id);
        if (rc < 0 && s_batch_begin(self) &&
            ncc_db_run(self->db,
                       "UPDATE messages SET lease_until = NULL, attempts = attempts - 1, "
                       "submit_state = 'idle' WHERE id = $1::bigint AND submit_state = "
                       "'submitting'",
                       1, (const char *[]){id_text}) < 0)
            s_db_warn(self, "release");
        free(job->to);
        free(job->text);
    }
    free(jobs);
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
