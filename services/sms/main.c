/* ncc-sms: SMS to residents, templates, providers, delivery receipts, surveys.
 * main stays thin: the frame (ncc/service.h) does configuration, database,
 * bus and health; sms.c adds the service. Settings: docs/sms.md. */
#include <stddef.h>

#include "ncc/service.h"
#include "sms.h"

extern const ncc_migration_t ncc_sql_sms[];

#define S_INT(env, def, field, min, max, reload, help)                                             \
    {                                                                                              \
        env, NCC_CONFIG_INT, def, offsetof(sms_settings_t, field), min, max, reload, false, help   \
    }
#define S_STR(env, def, field, secret, help)                                                       \
    {                                                                                              \
        env, NCC_CONFIG_STRING, def, offsetof(sms_settings_t, field), 0, 0, false, secret, help    \
    }

static const ncc_config_entry_t s_config[] = {
    S_STR("NCC_SMS_PROVIDER", "none", provider, false,
          "how SMS leave: smpp (SMPP 3.4), http (Twilio Messages API form) or none (they wait)"),
    S_INT("NCC_SMS_MAX_PARTS", "4", max_parts, 1, 10, true,
          "the carrier's limit on concatenated parts; longer texts are refused"),
    S_INT("NCC_SMS_OPERATOR_PER_MINUTE", "20", operator_per_minute, 1, 100000, true,
          "SMS one user may queue per minute (more answer 429)"),
    S_INT("NCC_SMS_PER_NUMBER_PER_HOUR", "5", per_number_per_hour, 1, 100000, true,
          "SMS sent to one number per hour; more wait"),
    S_INT("NCC_SMS_RATE_PER_SECOND", "50", global_per_second, 1, 100000, true,
          "parts this copy submits per second at most"),
    S_INT("NCC_SMS_QUIET_START", "21", quiet_start, 0, 24, true,
          "hour (Asia/Tokyo) from which non-urgent SMS wait (equal to the end: no quiet hours)"),
    S_INT("NCC_SMS_QUIET_END", "8", quiet_end, 0, 24, true, "hour at which quiet hours end"),
    S_INT("NCC_SMS_EXPIRY_S", "86400", expiry_s, 1, 2592000, true,
          "a message not sent this long after it was queued expires"),
    S_INT("NCC_SMS_RECEIPT_TIMEOUT_S", "172800", receipt_timeout_s, 1, 2592000, true,
          "a sent message without a delivery receipt this long ends expired"),
    S_INT("NCC_SMS_MAX_ATTEMPTS", "6", max_attempts, 1, 100, true,
          "attempts before a message fails"),
    S_INT("NCC_SMS_RETRY_BASE_MS", "2000", retry_base_ms, 10, 3600000, true,
          "back-off after the first failed attempt, doubled after each"),
    S_INT("NCC_SMS_RETRY_MAX_MS", "600000", retry_max_ms, 10, 86400000, true,
          "longest back-off between attempts"),
    S_INT("NCC_SMS_CHECK_MS", "1000", check_ms, 10, 60000, false,
          "how often the sender looks for due messages (a new one wakes it at once)"),
    S_INT("NCC_SMS_LEASE_S", "60", lease_s, 1, 3600, false,
          "a message taken by a copy that died is taken again after this"),
    S_INT("NCC_SMS_UNCERTAIN_WAIT_S", "172800", uncertain_wait_s, 1, 2592000, true,
          "a submit whose answer was lost (connection dropped, copy died) waits this long for "
          "its delivery receipt; without one it ends expired, outcome unknown"),
    S_INT("NCC_SMS_UNCERTAIN_RESUBMIT", "0", uncertain_resubmit, 0, 1, true,
          "1: an uncertain submit with no receipt after NCC_SMS_UNCERTAIN_WAIT_S is submitted "
          "again (the resident may get it twice); 0: it ends expired"),
    S_INT("NCC_SMS_SURVEY_DAYS", "14", survey_days, 1, 365, true,
          "a survey link ({survey_url}) can be answered for this many days"),
    S_STR("NCC_SMS_SURVEY_BASE_URL", "https://127.0.0.1:8443", survey_base_url, false,
          "the public address the survey link starts with (…/s/<token>)"),
    S_STR("NCC_SMS_SENDER", "NakanoWard", sender_id, false,
          "the sender (source address): alphanumeric or a number"),
    S_STR("NCC_SMS_SMPP_HOST", NULL, smpp_host, false, "the SMSC's host (provider smpp)"),
    S_INT("NCC_SMS_SMPP_PORT", "2775", smpp_port, 1, 65535, false, "the SMSC's port"),
    S_STR("NCC_SMS_SMPP_SYSTEM_ID", "ncc", smpp_system_id, false, "system_id of the bind"),
    S_STR("NCC_SMS_SMPP_PASSWORD", NULL, smpp_password, true, "password of the bind (secret)"),
    S_INT("NCC_SMS_SMPP_WINDOW", "10", smpp_window, 1, 1000, false,
          "submit_sm waiting for their response at most"),
    S_INT("NCC_SMS_SMPP_ENQUIRE_S", "30", smpp_enquire_s, 1, 3600, false,
          "enquire_link period; silence for three periods reconnects"),
    S_INT("NCC_SMS_SMPP_RECONNECT_MAX_MS", "30000", smpp_reconnect_max_ms, 100, 600000, false,
          "longest wait between reconnection attempts (back-off from 100 ms)"),
    S_INT("NCC_SMS_SMPP_TRANSCEIVER", "1", smpp_transceiver, 0, 1, false,
          "1: bind_transceiver (receipts on the same connection), 0: bind_transmitter"),
    S_STR("NCC_SMS_HTTP_URL", NULL, http_url, false,
          "provider http: the Messages resource, …/2010-04-01/Accounts/<sid>/Messages.json"),
    S_STR("NCC_SMS_HTTP_ACCOUNT", NULL, http_account, false, "provider http: basic-auth user"),
    S_STR("NCC_SMS_HTTP_TOKEN", NULL, http_token, true,
          "provider http: basic-auth password (secret)"),
    S_STR("NCC_SMS_HTTP_CALLBACK_URL", NULL, http_callback_url, false,
          "provider http: StatusCallback, https://<gateway>/api/v1/sms/receipts"),
    S_INT("NCC_SMS_HTTP_TIMEOUT_MS", "10000", http_timeout_ms, 100, 120000, false,
          "provider http: longest request"),
    {NULL, 0, NULL, 0, 0, 0, false, false, NULL},
};

static sms_settings_t s_settings;

static void *s_create(ncc_service_t *service)
{
    return sms_new(service, &s_settings);
}

static void s_destroy(void **state_p)
{
    sms_t *self = *state_p;
    sms_destroy(&self);
    *state_p = NULL;
}

int main(int argc, char **argv)
{
    const ncc_service_options_t options = {
        .name = "sms",
        .migrations = ncc_sql_sms,
        .config = s_config,
        .config_target = &s_settings,
        .create = s_create,
        .destroy = s_destroy,
    };
    return ncc_service_main(&options, argc, argv);
}
