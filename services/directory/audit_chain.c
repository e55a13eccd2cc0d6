/* audit_chain: append to and verify the hash-chained audit log (audit_chain.h). */
#include "audit_chain.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ncc/crypto.h"

#define S_VERIFY_BATCH 1000
/* One lock for the chain, shared by every copy of the daemon. */
#define S_LOCK_SQL "SELECT pg_advisory_xact_lock(hashtext('ncc.directory.audit_chain'))"

static const char *s_or_empty(const char *text)
{
    return text ? text : "";
}

/* Appends "<len>:<bytes>\n" at *pos (the buffer was sized by s_field_size). */
static void s_put_field(char *buf, size_t *pos, const char *text)
{
    size_t len = strlen(text);
    int n = snprintf(buf + *pos, 24, "%zu:", len);
    *pos += (size_t)n;
    memcpy(buf + *pos, text, len);
    *pos += len;
    buf[(*pos)++] = '\n';
}

static size_t s_field_size(const char *text)
{
    return 21 + 1 + strlen(text) + 1; /* digits of a size_t, ':', bytes, '\n' */
}

void audit_chain_hash(const char *prev_hash, const audit_chain_entry_t *entry, char out[65])
{
    char seq[24], at[24];
    snprintf(seq, sizeof seq, "%" PRId64, entry->seq);
    snprintf(at, sizeof at, "%" PRId64, entry->at_us);
    const char *fields[] = {seq,
                            at,
                            s_or_empty(entry->actor_id),
                            s_or_empty(entry->actor_login),
                            s_or_empty(entry->actor_role),
                            s_or_empty(entry->address),
                            s_or_empty(entry->action),
                            s_or_empty(entry->target),
                            s_or_empty(entry->outcome),
                            s_or_empty(entry->detail)};
    size_t n_fields = sizeof fields / sizeof fields[0];
    size_t size = strlen(prev_hash) + 1;
    for (size_t i = 0; i < n_fields; i++)
        size += s_field_size(fields[i]);

    char *buf = malloc(size);
    if (!buf) {
        /* Cannot happen for entries of bounded size; never return a hash
         * that could pass for a real one. */
        memset(out, 'x', 64);
        out[64] = '\0';
        return;
    }
    size_t pos = strlen(prev_hash);
    memcpy(buf, prev_hash, pos);
    buf[pos++] = '\n';
    for (size_t i = 0; i < n_fields; i++)
        s_put_field(buf, &pos, fields[i]);
    ncc_sha256_hex(buf, pos, out);
    free(buf);
}

int audit_chain_append(ncc_db_t *db, const audit_chain_entry_t *entry, int64_t *ret_seq,
                       char ret_hash[65])
{
    if (!ncc_db_in_transaction(db))
        return -EINVAL;
    if (ncc_db_run(db, S_LOCK_SQL, 0, NULL) < 0)
        return -EIO;

    /* Under the lock, in READ COMMITTED, this statement sees the tail the
     * previous holder committed. The time is taken as text (exact to the
     * microsecond) and as the integer that is hashed. */
    PGresult *res = ncc_db_exec(db,
                                "SELECT c.t::text, (extract(epoch from c.t) * 1000000)::bigint, "
                                "tail.seq, tail.hash "
                                "FROM (SELECT clock_timestamp() AS t) c "
                                "LEFT JOIN LATERAL (SELECT seq, hash FROM audit_log "
                                "                   ORDER BY seq DESC LIMIT 1) tail ON true",
                                0, NULL, NULL);
    if (!res)
        return -EIO;
    audit_chain_entry_t stamped = *entry;
    char at_text[64], prev[65], seq_text[24], hash[65];
    snprintf(at_text, sizeof at_text, "%s", PQgetvalue(res, 0, 0));
    stamped.at_us = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    stamped.seq = PQgetisnull(res, 0, 2) ? 1 : strtoll(PQgetvalue(res, 0, 2), NULL, 10) + 1;
    snprintf(prev, sizeof prev, "%s",
             PQgetisnull(res, 0, 3) ? AUDIT_CHAIN_GENESIS : PQgetvalue(res, 0, 3));
    PQclear(res);

    audit_chain_hash(prev, &stamped, hash);
    snprintf(seq_text, sizeof seq_text, "%" PRId64, stamped.seq);
    const char *params[] = {seq_text,
                            at_text,
                            s_or_empty(stamped.actor_id),
                            s_or_empty(stamped.actor_login),
                            s_or_empty(stamped.actor_role),
                            s_or_empty(stamped.address),
                            s_or_empty(stamped.action),
                            s_or_empty(stamped.target),
                            s_or_empty(stamped.outcome),
                            s_or_empty(stamped.detail),
                            hash};
    if (ncc_db_run(db,
                   "INSERT INTO audit_log (seq, at, actor_id, actor_login, actor_role, address, "
                   "action, target, outcome, detail, hash) "
                   "VALUES ($1, $2::timestamptz, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                   11, params) < 0)
        return -EIO;
    if (ret_seq)
        *ret_seq = stamped.seq;
    if (ret_hash)
        memcpy(ret_hash, hash, 65);
    return 0;
}

static void s_report_bad(audit_chain_report_t *report, int64_t seq, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void s_report_bad(audit_chain_report_t *report, int64_t seq, const char *fmt, ...)
{
    report->ok = false;
    report->first_bad_seq = seq;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(report->message, sizeof report->message, fmt, ap);
    va_end(ap);
}

int audit_chain_verify(ncc_db_t *db, int64_t anchor_seq, const char *anchor_hash,
                       audit_chain_report_t *ret_report)
{
    audit_chain_report_t report = {.ok = true};
    snprintf(report.last_hash, sizeof report.last_hash, "%s", AUDIT_CHAIN_GENESIS);
    bool broken = false;
    bool anchor_seen = false;

    while (!broken) {
        char after[24], limit[16];
        snprintf(after, sizeof after, "%" PRId64, report.last_seq);
        snprintf(limit, sizeof limit, "%d", S_VERIFY_BATCH);
        const char *params[] = {after, limit};
        PGresult *res =
            ncc_db_exec(db,
                        "SELECT seq, (extract(epoch from at) * 1000000)::bigint, actor_id, "
                        "actor_login, actor_role, address, action, target, outcome, detail, hash "
                        "FROM audit_log WHERE seq > $1::bigint "
                        "ORDER BY seq LIMIT $2::int",
                        2, params, NULL);
        if (!res)
            return -EIO;
        int rows = PQntuples(res);
        for (int i = 0; i < rows && !broken; i++) {
            audit_chain_entry_t entry = {
                .seq = strtoll(PQgetvalue(res, i, 0), NULL, 10),
                .at_us = strtoll(PQgetvalue(res, i, 1), NULL, 10),
                .actor_id = PQgetvalue(res, i, 2),
                .actor_login = PQgetvalue(res, i, 3),
                .actor_role = PQgetvalue(res, i, 4),
                .address = PQgetvalue(res, i, 5),
                .action = PQgetvalue(res, i, 6),
                .target = PQgetvalue(res, i, 7),
                .outcome = PQgetvalue(res, i, 8),
                .detail = PQgetvalue(res, i, 9),
            };
            const char *stored = PQgetvalue(res, i, 10);
            char computed[65];
            if (entry.seq != report.last_seq + 1) {
                s_report_bad(&report, report.last_seq + 1,
                             "entry %" PRId64 " is missing (the next entry is %" PRId64 ")",
                             report.last_seq + 1, entry.seq);
                broken = true;
                break;
            }
            audit_chain_hash(report.last_hash, &entry, computed);
            if (!ncc_secure_equals(computed, stored)) {
                s_report_bad(&report, entry.seq,
                             "entry %" PRId64 " does not match its hash: it was altered, or "
                             "its predecessor was",
                             entry.seq);
                broken = true;
                break;
            }
            if (anchor_seq > 0 && entry.seq == anchor_seq) {
                anchor_seen = true;
                if (!anchor_hash || !ncc_secure_equals(stored, anchor_hash)) {
                    s_report_bad(&report, entry.seq,
                                 "entry %" PRId64 " no longer has the hash recorded for it: "
                                 "the chain was rewritten up to there",
                                 entry.seq);
                    broken = true;
                    break;
                }
            }
            report.entries++;
            report.last_seq = entry.seq;
            snprintf(report.last_hash, sizeof report.last_hash, "%s", stored);
        }
        PQclear(res);
        if (rows < S_VERIFY_BATCH)
            break;
    }
    if (!broken && anchor_seq > 0 && !anchor_seen)
        s_report_bad(&report, report.last_seq + 1,
                     "the log ends at entry %" PRId64 " but entry %" PRId64
                     " was recorded earlier: entries were removed from the end",
                     report.last_seq, anchor_seq);
    if (report.ok)
        snprintf(report.message, sizeof report.message, "%" PRId64 " entries, the chain holds%s",
                 report.entries, anchor_seq > 0 ? " and matches the anchor" : "");
    *ret_report = report;
    return 0;
}
