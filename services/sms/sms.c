/* sms: the service object and the status moves api.c and sender.c share (sms.h). */
#include "sms.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ncc/bus.h"
#include "ncc/log.h"

static bool s_final(const char *status)
{
    return strcmp(status, "delivered") == 0 || strcmp(status, "failed") == 0 ||
           strcmp(status, "expired") == 0;
}

int sms_set_status(ncc_db_t *db, int64_t id, const char *status, const char *detail)
{
    char id_text[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, id);
    bool final = s_final(status);
    /* sent only from queued; a final status from queued or sent, once. */
    PGresult *res = ncc_db_exec(
        db,
        "UPDATE messages SET status = $2, error = CASE WHEN $2 IN ('failed', 'expired') THEN $3 "
        "WHEN $2 IN ('sent', 'delivered') THEN '' ELSE error END, lease_until = NULL, submit_state "
        "= 'idle', sent_at = CASE WHEN $2 = 'sent' THEN now() ELSE "
        "sent_at END, delivered_at = CASE WHEN $2 = 'delivered' THEN now() ELSE delivered_at END, "
        "finished_at = CASE WHEN $4 THEN now() ELSE NULL END WHERE id = $1::bigint AND (status = "
        "'queued' OR (status = 'sent' AND $4)) RETURNING coalesce(record_id, 0), " SMS_RFC3339(
            "now()"),
        4, (const char *[]){id_text, status, detail ? detail : "", final ? "true" : "false"}, NULL);
    if (!res)
        return -EIO;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return 0;
    }
    int64_t record_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    char at[40];
    snprintf(at, sizeof at, "%s", PQgetvalue(res, 0, 1));
    PQclear(res);
    if (ncc_db_run(
            db,
            "INSERT INTO message_events (message_id, status, detail, final) VALUES "
            "($1::bigint, $2, $3, $4::boolean)",
            4,
            (const char *[]){id_text, status, detail ? detail : "", final ? "true" : "false"}) < 0)
        return -EIO;
    Ncc__Sms__SmsStatusChanged event = NCC__SMS__SMS_STATUS_CHANGED__INIT;
    event.has_id = event.has_record_id = true;
    event.id = id;
    event.record_id = record_id;
    event.status = (char *)status;
    event.occurred_at = at;
    event.error = (char *)(detail ? detail : "");
    ncc_ctx_t ctx = {.actor_id = "svc:sms", .actor_role = "system"};
    if (ncc_outbox_add(db, &ctx, &event.base) < 0)
        return -EIO;
    return 1;
}

int sms_apply_receipt(ncc_db_t *db, const char *provider, const char *provider_id,
                      const char *status, const char *error)
{
    /* The part; its message; then the message's status from all its parts. */
    PGresult *res = ncc_db_exec(db,
                                "UPDATE parts SET status = $3 WHERE provider = $1 AND "
                                "provider_id = $2 AND status = 'sent' RETURNING message_id",
                                3, (const char *[]){provider, provider_id, status}, NULL);
    if (!res)
        return -EIO;
    if (PQntuples(res) == 0) {
        PQclear(res);
        /* Not known (yet), or that part had its receipt already. */
        res = ncc_db_exec(db, "SELECT 1 FROM parts WHERE provider = $1 AND provider_id = $2", 2,
                          (const char *[]){provider, provider_id}, NULL);
        if (!res)
            return -EIO;
        int known = PQntuples(res);
        PQclear(res);
        return known ? 1 : 0;
    }
    int64_t id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    char id_text[24];
    snprintf(id_text, sizeof id_text, "%" PRId64, id);
    res = ncc_db_exec(db,
                      "SELECT m.parts, count(*) FILTER (WHERE p.status = 'delivered'), count(*) "
                      "FILTER (WHERE p.status = 'failed'), count(*) FILTER (WHERE p.status = "
                      "'expired') FROM messages m JOIN parts p ON p.message_id = m.id WHERE m.id "
                      "= $1::bigint GROUP BY m.parts",
                      1, (const char *[]){id_text}, NULL);
    if (!res)
        return -EIO;
    int parts = PQntuples(res) ? atoi(PQgetvalue(res, 0, 0)) : 0;
    int delivered = PQntuples(res) ? atoi(PQgetvalue(res, 0, 1)) : 0;
    int failed = PQntuples(res) ? atoi(PQgetvalue(res, 0, 2)) : 0;
    int expired = PQntuples(res) ? atoi(PQgetvalue(res, 0, 3)) : 0;
    PQclear(res);
    const char *next = failed               ? "failed"
                       : expired            ? "expired"
                       : delivered >= parts ? "delivered"
                                            : NULL;
    if (next) {
        char detail[200];
        snprintf(detail, sizeof detail, "%s%s%s", next == NULL ? "" : "receipt",
                 error && *error ? ": " : "", error && *error ? error : "");
        if (sms_set_status(db, id, next, detail) < 0)
            return -EIO;
    }
    return 1;
}

sms_t *sms_new(ncc_service_t *service, const sms_settings_t *settings)
{
    sms_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->service = service;
    self->db = ncc_service_db(service);
    self->keyring = ncc_service_keyring(service);
    self->settings = settings;
    if (sms_api_register(self) < 0 || sms_sender_register(self) < 0 ||
        ncc_service_encrypted_column(service, "messages", "id", "to_enc", SMS_TO_CONTEXT) < 0 ||
        ncc_service_encrypted_column(service, "messages", "id", "body_enc", SMS_BODY_CONTEXT) < 0 ||
        ncc_service_encrypted_column(service, "opt_outs", "to_index", "to_enc",
                                     SMS_OPT_OUT_CONTEXT) < 0) {
        ncc_error("sms.setup_failed", "cannot register the handlers");
        sms_destroy(&self);
        return NULL;
    }
    if (!self->keyring)
        ncc_warn("sms.no_keys", "NCC_DATA_KEYS is unset: SMS are refused (destinations are "
                                "stored encrypted)");
    return self;
}

void sms_destroy(sms_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sms_t *self = *self_p;
    sms_sender_stop(self);
    free(self);
    *self_p = NULL;
}
