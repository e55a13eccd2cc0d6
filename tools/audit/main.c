/* ncc-audit: checks the audit log's hash chain (R17) straight from
 * PostgreSQL, without any ncc daemon: the same walk as the AuditVerify
 * request (services/directory/audit_chain.c).
 *
 *   ncc-audit verify [--anchor SEQ:HASH]
 *
 * Connects with NCC_DATABASE_URL (a read-only role is enough) to the schema
 * NCC_AUDIT_SCHEMA (default "directory"). Prints the number of entries and
 * the last seq and hash: keep that line outside the database (a ticket, a
 * printed report, another machine), and give it back later as --anchor to
 * detect a log that was rewritten and re-chained since.
 * Exit status: 0 the chain holds, 1 it does not, 2 usage, 3 database error. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_chain.h"
#include "ncc/db.h"
#include "ncc/log.h"

static int s_usage(FILE *out)
{
    fputs("usage: ncc-audit verify [--anchor SEQ:HASH]\n"
          "  Walks the audit log's hash chain and reports the first altered, missing or\n"
          "  re-chained entry. NCC_DATABASE_URL: the database; NCC_AUDIT_SCHEMA: its\n"
          "  schema (default directory). --anchor: a seq and the hash an earlier run\n"
          "  printed for it. Exit status 0 holds, 1 broken, 2 usage, 3 database error.\n",
          out);
    return 2;
}

/* "SEQ:HASH" -> seq, hash (64 lower-case hex). false when malformed. */
static bool s_parse_anchor(const char *text, int64_t *ret_seq, char hash[65])
{
    const char *colon = strchr(text, ':');
    if (!colon || colon == text || strlen(colon + 1) != 64)
        return false;
    int64_t seq = 0;
    for (const char *p = text; p < colon; p++) {
        if (*p < '0' || *p > '9' || seq > (INT64_MAX - 9) / 10)
            return false;
        seq = seq * 10 + (*p - '0');
    }
    for (const char *p = colon + 1; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    if (seq <= 0)
        return false;
    *ret_seq = seq;
    memcpy(hash, colon + 1, 65);
    return true;
}

int main(int argc, char **argv)
{
    int64_t anchor_seq = 0;
    char anchor_hash[65] = "";
    if (argc < 2)
        return s_usage(stderr);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        s_usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "verify") != 0)
        return s_usage(stderr);
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--anchor") == 0 && i + 1 < argc) {
            if (!s_parse_anchor(argv[++i], &anchor_seq, anchor_hash)) {
                fprintf(stderr, "ncc-audit: --anchor takes SEQ:HASH (HASH: 64 hex digits)\n");
                return 2;
            }
        } else {
            return s_usage(stderr);
        }
    }
    const char *url = getenv("NCC_DATABASE_URL");
    const char *schema = getenv("NCC_AUDIT_SCHEMA");
    if (!url || !*url) {
        fprintf(stderr, "ncc-audit: NCC_DATABASE_URL is not set\n");
        return 2;
    }
    if (!schema || !*schema)
        schema = "directory";

    ncc_log_init("audit", NCC_LOG_ERROR); /* server notices stay quiet */
    int status = 3;
    ncc_db_t *db = ncc_db_new(url, schema);
    if (!db) {
        fprintf(stderr, "ncc-audit: out of memory\n");
        return 3;
    }
    if (ncc_db_connect(db) < 0) {
        fprintf(stderr, "ncc-audit: cannot connect: %s\n", ncc_db_error(db));
        goto out;
    }
    audit_chain_report_t report;
    if (audit_chain_verify(db, anchor_seq, anchor_seq ? anchor_hash : NULL, &report) < 0) {
        fprintf(stderr, "ncc-audit: %s\n", ncc_db_error(db));
        goto out;
    }
    if (report.ok) {
        printf("audit chain OK: %s\n", report.message);
        printf("entries=%" PRId64 " last_seq=%" PRId64 " last_hash=%s\n", report.entries,
               report.last_seq, report.last_hash);
        if (report.last_seq > 0)
            printf("keep this anchor outside the database: %" PRId64 ":%s\n", report.last_seq,
                   report.last_hash);
        status = 0;
    } else {
        printf("audit chain BROKEN at seq %" PRId64 ": %s\n", report.first_bad_seq, report.message);
        printf("entries=%" PRId64 " first_bad_seq=%" PRId64 "\n", report.entries,
               report.first_bad_seq);
        status = 1;
    }
out:
    ncc_db_destroy(&db);
    return status;
}
