/* sms: the state of ncc-sms and what its files share. api.c answers the
 * requests (templates, preview, send, read, opt-outs, receipts, surveys) on
 * the service's loop; sender.c is a thread with its own database connection
 * that works the queue through one provider (provider.h: smpp.c or
 * http.c). docs/sms.md. */
#ifndef SMS_H
#define SMS_H

#include <stdbool.h>
#include <stdint.h>

#include "ncc/service.h"
#include "sms.pb-c.h"

/* A timestamptz column as RFC 3339 in Asia/Tokyo (SQL text). */
#define SMS_RFC3339(col)                                                                           \
    "to_char(" col " AT TIME ZONE 'Asia/Tokyo', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"+09:00\"')"

/* Encryption contexts (bound as associated data). */
#define SMS_TO_CONTEXT      "sms.to"
#define SMS_TO_INDEX        "sms.to.index"
#define SMS_BODY_CONTEXT    "sms.body"
#define SMS_OPT_OUT_CONTEXT "sms.opt_out"
/* Blind index of an orphan receipt's text: field (receipts.text_index). */
#define SMS_RECEIPT_TEXT_INDEX "sms.receipt.text"

typedef struct {
    char *provider;          /* NCC_SMS_PROVIDER: smpp | http | none */
    int max_parts;           /* NCC_SMS_MAX_PARTS: carrier limit on concatenated parts */
    int operator_per_minute; /* NCC_SMS_OPERATOR_PER_MINUTE: SendSms per user and minute */
    int per_number_per_hour; /* NCC_SMS_PER_NUMBER_PER_HOUR: sends to one number per hour */
    int global_per_second;   /* NCC_SMS_RATE_PER_SECOND: parts per second, this copy */
    int quiet_start;         /* NCC_SMS_QUIET_START: hour (Asia/Tokyo) quiet hours begin */
    int quiet_end;           /* NCC_SMS_QUIET_END: hour they end (equal: no quiet hours) */
    int expiry_s;            /* NCC_SMS_EXPIRY_S: a message not sent by then expires */
    int receipt_timeout_s;   /* NCC_SMS_RECEIPT_TIMEOUT_S: sent without receipt -> expired */
    int max_attempts;        /* NCC_SMS_MAX_ATTEMPTS */
    int retry_base_ms;       /* NCC_SMS_RETRY_BASE_MS: first back-off, doubled each time */
    int retry_max_ms;        /* NCC_SMS_RETRY_MAX_MS */
    int check_ms;            /* NCC_SMS_CHECK_MS: how often the sender looks for work */
    int lease_s;             /* NCC_SMS_LEASE_S: a message taken by a copy that died is taken
                                again after this */
    int uncertain_wait_s;    /* NCC_SMS_UNCERTAIN_WAIT_S: an uncertain submit waits this long
                                for its receipt */
    int uncertain_resubmit;  /* NCC_SMS_UNCERTAIN_RESUBMIT: 1 submits it again after the wait
                                (0: it ends expired, "outcome unknown") */
    int survey_days;         /* NCC_SMS_SURVEY_DAYS: a survey link expires after */
    char *survey_base_url;   /* NCC_SMS_SURVEY_BASE_URL: "https://ward.example" */
    char *sender_id;         /* NCC_SMS_SENDER: source address */
    /* SMPP */
    char *smpp_host;           /* NCC_SMS_SMPP_HOST */
    int smpp_port;             /* NCC_SMS_SMPP_PORT */
    char *smpp_system_id;      /* NCC_SMS_SMPP_SYSTEM_ID */
    char *smpp_password;       /* NCC_SMS_SMPP_PASSWORD (secret) */
    int smpp_window;           /* NCC_SMS_SMPP_WINDOW: submits awaiting their response */
    int smpp_enquire_s;        /* NCC_SMS_SMPP_ENQUIRE_S: enquire_link period */
    int smpp_reconnect_max_ms; /* NCC_SMS_SMPP_RECONNECT_MAX_MS: back-off ceiling */
    int smpp_transceiver;      /* NCC_SMS_SMPP_TRANSCEIVER: 1 bind_transceiver, 0 transmitter */
    /* HTTP (Twilio Messages API form) */
    char *http_url;          /* NCC_SMS_HTTP_URL: .../Accounts/{sid}/Messages.json */
    char *http_account;      /* NCC_SMS_HTTP_ACCOUNT: basic-auth user (Account SID) */
    char *http_token;        /* NCC_SMS_HTTP_TOKEN: basic-auth password (secret) */
    char *http_callback_url; /* NCC_SMS_HTTP_CALLBACK_URL: StatusCallback */
    int http_timeout_ms;     /* NCC_SMS_HTTP_TIMEOUT_MS */
} sms_settings_t;

typedef struct sms_sender sms_sender_t;

typedef struct {
    ncc_service_t *service;       /* borrowed */
    ncc_db_t *db;                 /* borrowed: the service's connection (loop thread) */
    const ncc_keyring_t *keyring; /* borrowed; NULL without NCC_DATA_KEYS */
    const sms_settings_t *settings;
    sms_sender_t *sender; /* the queue's thread (sender.c), owned */
} sms_t;

sms_t *sms_new(ncc_service_t *service, const sms_settings_t *settings);
void sms_destroy(sms_t **self_p);

int sms_api_register(sms_t *self);

/* The sender thread: started once the database is ready. */
int sms_sender_register(sms_t *self);
void sms_sender_stop(sms_t *self);
/* Wakes the sender (a new message is queued). */
void sms_sender_wake(sms_t *self);

/* ---- shared by api.c and sender.c (each with its own connection) ------------------------ */

/* Moves message `id` to `status` (sent, delivered, failed, expired) in the
 * caller's transaction, once: a final status only from queued or sent, with
 * its event row and an ncc.sms.SmsStatusChanged in the outbox; the message's
 * submit state goes back to idle. 1 when it moved, 0 when the message was
 * already past that, -EIO. */
int sms_set_status(ncc_db_t *db, int64_t id, const char *status, const char *detail);

/* Applies a receipt (provider, provider id, status delivered|failed|expired)
 * to its part and the message, in the caller's transaction. 1 applied, 0
 * not known yet (kept for later), -EIO. */
int sms_apply_receipt(ncc_db_t *db, const char *provider, const char *provider_id,
                      const char *status, const char *error);

#endif
