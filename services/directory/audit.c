/* audit: the audit log on the bus (R17): daemons append (AuditAppend),
 * supervisors and administrators search and verify the hash chain. The
 * chain itself is audit_chain.c, shared with the ncc-audit tool. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_chain.h"
#include "directory.h"
#include "ncc/roles.h"

#define S_PER_PAGE_DEFAULT 50
#define S_PER_PAGE_MAX     500
#define S_PAGE_MAX         1000000

// clang-format off
#define S_ENTRY_COLUMNS \
    "seq, " DIRECTORY_RFC3339_US("at") ", actor_id, actor_login, actor_role, address, " \
    "action, target, outcome, detail, hash"
// clang-format on

/* Fills `entry` from row `row` of S_ENTRY_COLUMNS (strings borrowed). */
static void s_entry_from_row(const PGresult *res, int row, Ncc__Directory__AuditEntry *entry)
{
    ncc__directory__audit_entry__init(entry);
    entry->has_seq = true;
    entry->seq = strtoll(PQgetvalue(res, row, 0), NULL, 10);
    entry->at = PQgetvalue(res, row, 1);
    entry->actor_id = PQgetvalue(res, row, 2);
    entry->actor_login = PQgetvalue(res, row, 3);
    entry->actor_role = PQgetvalue(res, row, 4);
    entry->address = PQgetvalue(res, row, 5);
    entry->action = PQgetvalue(res, row, 6);
    entry->target = PQgetvalue(res, row, 7);
    entry->outcome = PQgetvalue(res, row, 8);
    entry->detail = PQgetvalue(res, row, 9);
    entry->hash = PQgetvalue(res, row, 10);
}

/* An action name: 1 to 64 of [a-z0-9._-]. */
static bool s_action_ok(const char *action)
{
    size_t len = action ? strlen(action) : 0;
    if (len == 0 || len > 64)
        return false;
    for (const char *p = action; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' ||
              *p == '-'))
            return false;
    return true;
}

/* ---- AuditAppend ----------------------------------------------------------------- */

static void s_on_append(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    directory_t *self = arg;
    const Ncc__Directory__AuditAppend *m = (const Ncc__Directory__AuditAppend *)request->message;
    if (!s_action_ok(m->action)) {
        ncc_reply_error(reply, 422, "invalid_field", "action",
                        "action must be 1 to 64 of a-z 0-9 . _ -");
        return;
    }
    const struct {
        const char *value, *field;
        size_t max;
    } texts[] = {
        {m->target, "target", 256},           {m->outcome, "outcome", 32},
        {m->detail, "detail", 4096},          {m->actor_id, "actor_id", 128},
        {m->actor_login, "actor_login", 128}, {m->actor_role, "actor_role", 128},
        {m->address, "address", 128},
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        if (!directory_text_ok(texts[i].value, texts[i].max)) {
            ncc_reply_error(reply, 422, "invalid_field", texts[i].field,
                            "%s must be UTF-8 text of at most %zu bytes", texts[i].field,
                            texts[i].max);
            return;
        }
    }
    const Ncc__Envelope *envelope = request->envelope;
    directory_audit_t entry = {
        .actor_id = m->actor_id ? m->actor_id : envelope->actor_id,
        .actor_login = m->actor_login,
        .actor_role = m->actor_role ? m->actor_role : envelope->actor_role,
        .address = m->address ? m->address : envelope->actor_address,
        .action = m->action,
        .target = m->target,
        .outcome = m->outcome,
        .detail = m->detail,
    };
    if (ncc_db_begin(self->db) < 0 || directory_audit(self, &entry) < 0) {
        directory_reply_db_error(self, reply, "append audit entry");
        return;
    }
    /* Our own entry is the tail while the chain lock is held. */
    PGresult *res = ncc_db_exec(self->db,
                                "SELECT " S_ENTRY_COLUMNS " FROM audit_log "
                                "ORDER BY seq DESC LIMIT 1",
                                0, NULL, NULL);
    if (!res) {
        directory_reply_db_error(self, reply, "append audit entry");
        return;
    }
    if (ncc_db_commit(self->db) < 0) {
        PQclear(res);
        directory_reply_db_error(self, reply, "append audit entry");
        return;
    }
    Ncc__Directory__AuditEntry reply_entry;
    s_entry_from_row(res, 0, &reply_entry);
    ncc_reply_message(reply, &reply_entry.base);
    PQclear(res);
}

/* ---- AuditSearch ------------------------------------------------------------------- */

/* True when `text` (may be NULL) casts to timestamptz; -EIO on a db failure. */
static int s_time_ok(directory_t *self, const char *text)
{
    if (!text || !*text)
        return 1;
    if (!directory_text_ok(text, 64))
        return 0;
    const char *params[] = {text};
    PGresult *res = ncc_db_exec(self->db, "SELECT $1::timestamptz", 1, params, NULL);
    if (res) {
        PQclear(res);
        return 1;
    }
    return strncmp(ncc_db_sqlstate(self->db), "22", 2) == 0 ? 0 : -EIO;
}

static void s_on_search(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    directory_t *self = arg;
    const Ncc__Directory__AuditSearch *m = (const Ncc__Directory__AuditSearch *)request->message;
    PGresult *count_res = NULL, *res = NULL;
    Ncc__Directory__AuditEntry *entries = NULL;
    Ncc__Directory__AuditEntry **items = NULL;
    char *action_pattern = NULL;

    int page = m->has_page ? m->page : 1;
    int per_page = m->has_per_page ? m->per_page : S_PER_PAGE_DEFAULT;
    if (page < 1 || page > S_PAGE_MAX) {
        ncc_reply_error(reply, 422, "invalid_field", "page", "page must be at least 1");
        return;
    }
    if (per_page < 1 || per_page > S_PER_PAGE_MAX) {
        ncc_reply_error(reply, 422, "invalid_field", "per_page",
                        "per_page must be between 1 and 500");
        return;
    }
    const char *fields[] = {"from", "to"};
    const char *values[] = {m->from, m->to};
    for (int i = 0; i < 2; i++) {
        int ok = s_time_ok(self, values[i]);
        if (ok < 0) {
            directory_reply_db_error(self, reply, "search audit log");
            return;
        }
        if (!ok) {
            ncc_reply_error(reply, 422, "invalid_field", fields[i], "%s must be an RFC 3339 time",
                            fields[i]);
            return;
        }
    }
    if (!directory_text_ok(m->actor, 128)) {
        ncc_reply_error(reply, 422, "invalid_field", "actor", "actor must be UTF-8 text");
        return;
    }
    /* action: exact, or a prefix when it ends with '*'. */
    const char *action = m->action ? m->action : "";
    size_t action_len = strlen(action);
    bool prefix = action_len > 0 && action[action_len - 1] == '*';
    action_pattern = strdup(action);
    if (!action_pattern) {
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        return;
    }
    if (prefix)
        action_pattern[action_len - 1] = '\0';
    if (*action_pattern && !s_action_ok(action_pattern)) {
        ncc_reply_error(reply, 422, "invalid_field", "action",
                        "action must be a-z 0-9 . _ - (a trailing * matches a prefix)");
        goto out;
    }
    char limit[16], offset[24];
    snprintf(limit, sizeof limit, "%d", per_page);
    snprintf(offset, sizeof offset, "%lld", (long long)(page - 1) * per_page);
    const char *params[] = {(m->from && *m->from) ? m->from : NULL,
                            (m->to && *m->to) ? m->to : NULL,
                            m->actor ? m->actor : "",
                            action_pattern,
                            prefix ? "t" : "f",
                            limit,
                            offset};
#define S_SEARCH_WHERE                                                                             \
    " FROM audit_log WHERE ($1::timestamptz IS NULL OR at >= $1::timestamptz) "                    \
    "AND ($2::timestamptz IS NULL OR at < $2::timestamptz) "                                       \
    "AND ($3 = '' OR actor_login = $3 OR actor_id = $3) "                                          \
    "AND ($4 = '' OR CASE WHEN $5::boolean THEN left(action, length($4)) = $4 "                    \
    "                     ELSE action = $4 END)"
    count_res = ncc_db_exec(self->db, "SELECT count(*)" S_SEARCH_WHERE, 5, params, NULL);
    if (!count_res) {
        directory_reply_db_error(self, reply, "search audit log");
        goto out;
    }
    res = ncc_db_exec(self->db,
                      "SELECT " S_ENTRY_COLUMNS S_SEARCH_WHERE
                      " ORDER BY seq DESC LIMIT $6::int OFFSET $7::bigint",
                      7, params, NULL);
#undef S_SEARCH_WHERE
    if (!res) {
        directory_reply_db_error(self, reply, "search audit log");
        goto out;
    }
    int rows = PQntuples(res);
    entries = calloc((size_t)rows + 1, sizeof *entries);
    items = calloc((size_t)rows + 1, sizeof *items);
    if (!entries || !items) {
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        goto out;
    }
    for (int i = 0; i < rows; i++) {
        s_entry_from_row(res, i, &entries[i]);
        items[i] = &entries[i];
    }
    Ncc__Directory__AuditList list = NCC__DIRECTORY__AUDIT_LIST__INIT;
    list.n_items = (size_t)rows;
    list.items = items;
    list.has_total = true;
    list.total = strtoll(PQgetvalue(count_res, 0, 0), NULL, 10);
    ncc_reply_message(reply, &list.base);
out:
    PQclear(count_res);
    PQclear(res);
    free(entries);
    free(items);
    free(action_pattern);
}

/* ---- AuditVerify ------------------------------------------------------------------- */

static bool s_hex64(const char *text)
{
    if (!text || strlen(text) != 64)
        return false;
    for (const char *p = text; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

static void s_on_verify(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    directory_t *self = arg;
    const Ncc__Directory__AuditVerify *m = (const Ncc__Directory__AuditVerify *)request->message;
    int64_t anchor_seq = m->has_anchor_seq ? m->anchor_seq : 0;
    if (anchor_seq < 0 || (anchor_seq > 0 && !s_hex64(m->anchor_hash))) {
        ncc_reply_error(reply, 422, "invalid_field", anchor_seq < 0 ? "anchor_seq" : "anchor_hash",
                        "an anchor is a seq (> 0) and its hash (64 lower-case hex characters)");
        return;
    }
    audit_chain_report_t report;
    if (audit_chain_verify(self->db, anchor_seq, m->anchor_hash, &report) < 0) {
        directory_reply_db_error(self, reply, "verify audit log");
        return;
    }
    if (!report.ok)
        ncc_warn("audit.chain_broken", "audit chain verification failed at seq %" PRId64 ": %s",
                 report.first_bad_seq, report.message);
    Ncc__Directory__AuditVerifyResult result = NCC__DIRECTORY__AUDIT_VERIFY_RESULT__INIT;
    result.has_ok = true;
    result.ok = report.ok;
    result.has_entries = true;
    result.entries = report.entries;
    if (!report.ok) {
        result.has_first_bad_seq = true;
        result.first_bad_seq = report.first_bad_seq;
    }
    result.message = report.message;
    result.has_last_seq = true;
    result.last_seq = report.last_seq;
    result.last_hash = report.last_hash;
    ncc_reply_message(reply, &result.base);
}

int directory_audit_register(directory_t *self)
{
    if (ncc_service_on(self->service, &ncc__directory__audit_append__descriptor, NCC_ROLE_SYSTEM,
                       s_on_append, self) < 0 ||
        ncc_service_on(self->service, &ncc__directory__audit_search__descriptor,
                       NCC_ROLE_SUPERVISOR | NCC_ROLE_ADMIN, s_on_search, self) < 0 ||
        ncc_service_on(self->service, &ncc__directory__audit_verify__descriptor,
                       NCC_ROLE_SUPERVISOR | NCC_ROLE_ADMIN | NCC_ROLE_SYSTEM, s_on_verify,
                       self) < 0)
        return -EINVAL;
    return 0;
}
