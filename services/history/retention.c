/* retention: records are kept by fiscal year (R34; docs/history.md
 * "Retention"). PurgeRecords removes the fiscal years past the retention
 * (with a dry run that only counts); the hourly job does the same by itself
 * when NCC_HISTORY_RETENTION_FISCAL_YEARS is set, writing its own audit
 * entry through ncc-directory; EraseRecords is the contract-end erase, which
 * requires a complete export taken since the last change. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "directory.pb-c.h"
#include "history.h"
#include "ncc/roles.h"

#define S_AUDIT_TIMEOUT_MS 2000

/* The current fiscal year (database clock, Asia/Tokyo), or 0. */
static int s_current_year(history_t *self)
{
    PGresult *res = ncc_db_exec(self->db, "SELECT fiscal_year_of(now())", 0, NULL, NULL);
    if (!res)
        return 0;
    int year = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return year;
}

/* Deletes the records of fiscal years before `oldest_kept` inside the
 * caller's transaction, with the RecordsPurged event. Returns the count or -EIO. */
static int64_t s_delete_before(history_t *self, const ncc_ctx_t *ctx, int oldest_kept)
{
    char year[16];
    snprintf(year, sizeof year, "%d", oldest_kept);
    const char *params[] = {year};
    PGresult *res =
        ncc_db_exec(self->db, "DELETE FROM records WHERE fiscal_year < $1::int", 1, params, NULL);
    if (!res)
        return -EIO;
    int64_t count = strtoll(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    if (count == 0)
        return 0;
    Ncc__History__RecordsPurged event = NCC__HISTORY__RECORDS_PURGED__INIT;
    event.has_before_fiscal_year = true;
    event.before_fiscal_year = oldest_kept;
    event.has_count = true;
    event.count = count;
    return ncc_outbox_add(self->db, ctx, &event.base) < 0 ? -EIO : count;
}

static void s_on_purge(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    history_t *self = arg;
    const Ncc__History__PurgeRecords *m = (const Ncc__History__PurgeRecords *)request->message;
    bool dry_run = m->has_dry_run && m->dry_run;
    int keep =
        m->has_keep_fiscal_years ? m->keep_fiscal_years : self->settings->retention_fiscal_years;
    if (m->has_keep_fiscal_years && (keep < 1 || keep > 100)) {
        ncc_reply_error(reply, 422, "invalid_field", "keep_fiscal_years",
                        "keep_fiscal_years is 1 to 100 (the current fiscal year counts)");
        return;
    }
    if (keep == 0 && !dry_run) {
        ncc_reply_error(reply, 422, "invalid_field", "keep_fiscal_years",
                        "no retention is configured (NCC_HISTORY_RETENTION_FISCAL_YEARS is 0): "
                        "give keep_fiscal_years");
        return;
    }
    if (ncc_db_begin(self->db) < 0) {
        history_reply_db_error(self, reply, "purge: begin");
        return;
    }
    int current = s_current_year(self);
    int oldest_kept = keep > 0 ? current - keep + 1 : 0;
    PGresult *res = ncc_db_exec(self->db,
                                "SELECT fiscal_year, count(*) FROM records GROUP BY fiscal_year "
                                "ORDER BY fiscal_year",
                                0, NULL, NULL);
    if (!current || !res) {
        if (res)
            PQclear(res);
        history_reply_db_error(self, reply, "purge: count");
        return;
    }
    int rows = PQntuples(res);
    Ncc__History__FiscalYearCount *items = calloc((size_t)(rows ? rows : 1), sizeof *items);
    Ncc__History__FiscalYearCount **ptrs = calloc((size_t)(rows ? rows : 1), sizeof *ptrs);
    int64_t would = 0;
    for (int i = 0; items && ptrs && i < rows; i++) {
        ncc__history__fiscal_year_count__init(&items[i]);
        items[i].has_fiscal_year = items[i].has_records = true;
        items[i].fiscal_year = (int32_t)strtol(PQgetvalue(res, i, 0), NULL, 10);
        items[i].records = strtoll(PQgetvalue(res, i, 1), NULL, 10);
        if (items[i].fiscal_year < oldest_kept)
            would += items[i].records;
        ptrs[i] = &items[i];
    }
    PQclear(res);
    if (!items || !ptrs) {
        ncc_db_rollback(self->db);
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
        goto out;
    }
    int64_t purged = would;
    if (!dry_run && would > 0) {
        ncc_ctx_t ctx = ncc_request_ctx(request);
        purged = s_delete_before(self, &ctx, oldest_kept);
        if (purged < 0 || ncc_db_commit(self->db) < 0) {
            history_reply_db_error(self, reply, "purge");
            goto out;
        }
        history_flush(self);
        ncc_info("history.purged", "%" PRId64 " records of fiscal years before %d removed (by %s)",
                 purged, oldest_kept, ncc_request_actor(request).id);
    } else {
        ncc_db_rollback(self->db);
    }
    Ncc__History__PurgeResult result = NCC__HISTORY__PURGE_RESULT__INIT;
    result.has_dry_run = result.has_keep_fiscal_years = result.has_oldest_kept = true;
    result.dry_run = dry_run;
    result.keep_fiscal_years = keep;
    result.oldest_kept = oldest_kept;
    result.n_fiscal_years = (size_t)rows;
    result.fiscal_years = ptrs;
    result.has_purged = true;
    result.purged = purged;
    ncc_reply_message(reply, &result.base);
out:
    free(items);
    free(ptrs);
}

/* One audit entry through ncc-directory, as the daemon. 0 or a negative errno. */
static int s_audit(history_t *self, const char *action, const char *target, const char *detail)
{
    ncc_rpc_client_t *client = ncc_service_client(self->service, "directory");
    if (!client)
        return -ENOMEM;
    Ncc__Directory__AuditAppend append = NCC__DIRECTORY__AUDIT_APPEND__INIT;
    append.action = (char *)action;
    append.target = (char *)target;
    append.outcome = "success";
    append.detail = (char *)detail;
    ncc_ctx_t ctx = ncc_service_ctx(self->service);
    Ncc__Envelope *reply = NULL;
    int rc = ncc_rpc_call(client, &ctx, &append.base, S_AUDIT_TIMEOUT_MS, &reply);
    if (rc == 0 && reply->type && strcmp(reply->type, ncc__error__descriptor.name) == 0)
        rc = -EPROTO;
    if (reply)
        ncc__envelope__free_unpacked(reply, NULL);
    return rc;
}

void history_retention_tick(history_t *self)
{
    int keep = self->settings->retention_fiscal_years;
    int64_t now = ncc_bus_now_us();
    if (keep <= 0 ||
        now - self->last_purge_check_us < (int64_t)self->settings->purge_check_s * 1000000)
        return;
    self->last_purge_check_us = now;
    if (ncc_db_begin(self->db) < 0)
        return;
    /* One copy at a time; the others find the work done. */
    PGresult *res = ncc_db_exec(
        self->db, "SELECT pg_try_advisory_xact_lock(hashtext('history.purge'))", 0, NULL, NULL);
    bool mine = res && PQgetvalue(res, 0, 0)[0] == 't';
    if (res)
        PQclear(res);
    int current = mine ? s_current_year(self) : 0;
    if (!current) {
        ncc_db_rollback(self->db);
        return;
    }
    int oldest_kept = current - keep + 1;
    ncc_ctx_t ctx = ncc_service_ctx(self->service);
    int64_t purged = s_delete_before(self, &ctx, oldest_kept);
    if (purged <= 0) {
        if (purged < 0)
            ncc_warn("history.purge_failed", "%s", ncc_db_error(self->db));
        ncc_db_rollback(self->db);
        return;
    }
    /* No audit entry, no purge: the entry is written before the commit. */
    char target[48], detail[160];
    snprintf(target, sizeof target, "records:fiscal_year<%d", oldest_kept);
    snprintf(detail, sizeof detail,
             "%" PRId64 " records of fiscal years before %d removed by the retention job "
             "(NCC_HISTORY_RETENTION_FISCAL_YEARS=%d)",
             purged, oldest_kept, keep);
    int rc = s_audit(self, "record.purge", target, detail);
    if (rc < 0) {
        ncc_warn("history.purge_deferred",
                 "the audit entry cannot be written (%s): the purge "
                 "waits for the next check",
                 strerror(-rc));
        ncc_db_rollback(self->db);
        return;
    }
    if (ncc_db_commit(self->db) < 0) {
        ncc_warn("history.purge_failed", "%s", ncc_db_error(self->db));
        return;
    }
    history_flush(self);
    ncc_info("history.purged", "%s", detail);
}

/* ---- the contract-end erase ---------------------------------------------------------------- */

static void s_on_erase(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    history_t *self = arg;
    const Ncc__History__EraseRecords *m = (const Ncc__History__EraseRecords *)request->message;
    if (!m->confirm || strcmp(m->confirm, "erase") != 0) {
        ncc_reply_error(reply, 422, "invalid_field", "confirm",
                        "confirm must be \"erase\": every record is deleted for good");
        return;
    }
    if (!m->has_export_id || m->export_id <= 0) {
        ncc_reply_error(reply, 422, "invalid_field", "export_id",
                        "export_id is required: export every record first (GET "
                        "/api/v1/records/export.csv, its X-NCC-Export-Id header)");
        return;
    }
    if (ncc_db_begin(self->db) < 0) {
        history_reply_db_error(self, reply, "erase: begin");
        return;
    }
    /* Nothing may change between the check and the delete. */
    char id_text[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, m->export_id);
    const char *params[] = {id_text};
    PGresult *lock = ncc_db_exec(self->db, "LOCK TABLE records IN EXCLUSIVE MODE", 0, NULL, NULL);
    if (!lock) {
        history_reply_db_error(self, reply, "erase: lock");
        return;
    }
    PQclear(lock);
    PGresult *res = ncc_db_exec(
        self->db,
        "SELECT e.filtered, e.finished_at IS NOT NULL, e.rows, e.records_at_start, "
        "(SELECT count(*) FROM records), "
        "e.last_change_at_start IS NOT DISTINCT FROM (SELECT max(updated_at) FROM records) "
        "FROM exports e WHERE e.id = $1::bigint",
        1, params, NULL);
    if (!res) {
        history_reply_db_error(self, reply, "erase: check");
        return;
    }
    const char *refusal = NULL;
    int64_t rows = 0, now_count = 0;
    if (PQntuples(res) == 0) {
        PQclear(res);
        ncc_db_rollback(self->db);
        ncc_reply_error(reply, 404, "not_found", "export_id", "no export %" PRId64, m->export_id);
        return;
    }
    rows = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    int64_t at_start = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
    now_count = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
    if (PQgetvalue(res, 0, 0)[0] == 't')
        refusal = "that export was filtered: export every record (no filter, no words)";
    else if (PQgetvalue(res, 0, 1)[0] != 't')
        refusal = "that export was not read to its end";
    else if (rows != at_start)
        refusal = "that export does not hold every record it began with";
    else if (now_count != at_start || PQgetvalue(res, 0, 5)[0] != 't')
        refusal = "records changed since that export: export again";
    PQclear(res);
    if (refusal) {
        ncc_db_rollback(self->db);
        ncc_reply_error(reply, 409, "conflict", "export_id", "%s", refusal);
        return;
    }
    res = ncc_db_exec(self->db, "DELETE FROM records", 0, NULL, NULL);
    int64_t erased = res ? strtoll(PQcmdTuples(res), NULL, 10) : -1;
    if (res)
        PQclear(res);
    Ncc__History__RecordsPurged event = NCC__HISTORY__RECORDS_PURGED__INIT;
    event.has_count = event.has_erased = true;
    event.count = erased;
    event.erased = true;
    ncc_ctx_t ctx = ncc_request_ctx(request);
    if (erased < 0 || ncc_db_run(self->db, "DELETE FROM receipt_counters", 0, NULL) < 0 ||
        ncc_outbox_add(self->db, &ctx, &event.base) < 0 || ncc_db_commit(self->db) < 0) {
        history_reply_db_error(self, reply, "erase");
        return;
    }
    history_flush(self);
    ncc_warn("history.erased", "every record (%" PRId64 ") erased after export %" PRId64 " (by %s)",
             erased, m->export_id, ncc_request_actor(request).id);
    Ncc__History__EraseResult result = NCC__HISTORY__ERASE_RESULT__INIT;
    result.has_erased = result.has_export_id = result.has_exported_rows = true;
    result.erased = erased;
    result.export_id = m->export_id;
    result.exported_rows = rows;
    ncc_reply_message(reply, &result.base);
}

int history_retention_register(history_t *self)
{
    if (ncc_service_on(self->service, &ncc__history__purge_records__descriptor, NCC_ROLE_ADMIN,
                       s_on_purge, self) < 0 ||
        ncc_service_on(self->service, &ncc__history__erase_records__descriptor, NCC_ROLE_ADMIN,
                       s_on_erase, self) < 0)
        return -EEXIST;
    return 0;
}
