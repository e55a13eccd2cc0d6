/* audit_chain: the hash chain of the audit log (R17), shared by ncc-directory
 * (which appends and verifies) and the ncc-audit tool (which verifies from
 * outside the daemon).
 *
 * Entry n is stored with
 *   hash_n = sha256_hex(hash_{n-1} "\n" canonical(entry_n))
 * where hash_0 is AUDIT_CHAIN_GENESIS and canonical() writes, in this order,
 * seq, at (integer microseconds since the Unix epoch), actor_id, actor_login,
 * actor_role, address, action, target, outcome, detail, each as
 * "<decimal byte length>:<bytes>\n" (so no field can run into the next).
 * seq is gapless: append assigns it under pg_advisory_xact_lock, so
 * concurrent writers (several copies of the daemon) queue rather than fork
 * the chain. Nothing here logs; errors are returned. */
#ifndef DIRECTORY_AUDIT_CHAIN_H
#define DIRECTORY_AUDIT_CHAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "ncc/db.h"

#define AUDIT_CHAIN_GENESIS "0000000000000000000000000000000000000000000000000000000000000000"

/* The hashed fields of one entry; strings borrowed, NULL counts as "". */
typedef struct {
    int64_t seq;
    int64_t at_us; /* microseconds since the Unix epoch */
    const char *actor_id;
    const char *actor_login;
    const char *actor_role;
    const char *address;
    const char *action;
    const char *target;
    const char *outcome;
    const char *detail;
} audit_chain_entry_t;

/* hash of `entry` chained after prev_hash (64 hex chars) into out[65]. */
void audit_chain_hash(const char *prev_hash, const audit_chain_entry_t *entry, char out[65]);

/* Inside the caller's open transaction on `db` (search_path holding the
 * directory schema): takes the chain's transaction lock, reads the tail,
 * stamps the entry with the database clock and the next seq, and inserts it.
 * entry->seq and entry->at_us are ignored on input. On success writes the
 * seq and hash given (ret_seq, ret_hash may be NULL). 0, -EINVAL outside a
 * transaction, or -EIO (ncc_db_error says why; the caller rolls back). */
int audit_chain_append(ncc_db_t *db, const audit_chain_entry_t *entry, int64_t *ret_seq,
                       char ret_hash[65]);

typedef struct {
    bool ok;               /* the whole chain holds (and the anchor, if given) */
    int64_t entries;       /* entries walked */
    int64_t first_bad_seq; /* 0 when ok: the first seq that is wrong or missing */
    int64_t last_seq;      /* the last seq walked (0 for an empty log) */
    char last_hash[65];    /* its hash (the genesis value for an empty log) */
    char message[256];     /* what was found, for people */
} audit_chain_report_t;

/* Walks the chain from seq 1 in batches (never the whole log in memory),
 * recomputing every hash: reports an edited field, a deleted row (a gap in
 * seq) and a row whose hash does not follow its predecessor. With
 * anchor_seq > 0, the entry at anchor_seq must also carry anchor_hash (a
 * value kept outside the database), which catches a re-chained tail.
 * Entries appended while it runs are walked too. Must run outside a
 * transaction. 0 with *ret_report filled (ok or not), or -EIO when the
 * database failed (ncc_db_error). */
int audit_chain_verify(ncc_db_t *db, int64_t anchor_seq, const char *anchor_hash,
                       audit_chain_report_t *ret_report);

#endif
