/* provider: one interface for the ways an SMS leaves ncc, chosen by
 * NCC_SMS_PROVIDER: "smpp" (SMPP 3.4 to a carrier or aggregator, smpp.c),
 * "http" (the Twilio Messages API form, http.c) or "none" (nothing is sent;
 * messages wait). A provider belongs to the sender thread: every call and
 * every callback happens on it. */
#ifndef SMS_PROVIDER_H
#define SMS_PROVIDER_H

#include <stdbool.h>
#include <stdint.h>

#include "sms.h"

/* A delivery receipt as the provider read it. Strings and bytes are borrowed
 * for the call. */
typedef struct {
    const char *provider_id; /* the provider's message id (never empty) */
    const char *status;      /* delivered | failed | expired */
    const char *error;       /* the provider's words ("UNDELIV err:001"), may be "" */
    /* What an orphan receipt (an id that names no known part) is matched by:
     * the receipt's source address, which is the original destination, as
     * E.164 ("" when not a Japanese mobile number); the bytes of its text:
     * field (the first 20 characters of the part, SMPP 3.4 Appendix B; NULL
     * when it had none); its submit date "YYMMDDhhmm" ("" when not given). */
    const char *destination;
    const uint8_t *text;
    size_t text_len;
    const char *submit_date;
} sms_receipt_t;

/* What a provider tells the sender. Strings are borrowed for the call. */
typedef struct {
    /* The outcome of submit(id): rc 0 with the provider's ids of its parts
     * (n of them), or rc < 0 with `retry` (a temporary failure: throttled,
     * 5xx) and a sentence in `error`. `uncertain` (with retry): a part went
     * out and its answer was lost (the connection dropped after the submit,
     * no answer in time); provider_ids then has the n parts' ids, NULL for
     * the ones not known. */
    void (*on_result)(void *arg, int64_t id, int rc, bool retry, bool uncertain, const char *error,
                      char *const *provider_ids, int n);
    /* A delivery receipt. */
    void (*on_receipt)(void *arg, const sms_receipt_t *receipt);
    void *arg;
} sms_provider_events_t;

typedef struct sms_provider sms_provider_t;
struct sms_provider {
    const char *name; /* "smpp", "http": stored with each part */
    /* Parts that may be submitted now; 0 while not connected or throttled. */
    int (*capacity)(sms_provider_t *self);
    /* Starts sending `text` to `e164` as message `id`: 0 when taken (the
     * result comes through on_result, maybe before this returns), -errno
     * when not taken (nothing is called). */
    int (*submit)(sms_provider_t *self, int64_t id, const char *e164, const char *text);
    /* Does the I/O that is due, waiting at most timeout_ms or until wake_fd
     * (the sender's wake pipe, -1 for none) is readable (not read here). */
    void (*poll)(sms_provider_t *self, int timeout_ms, int wake_fd);
    /* Submits still waiting for their answer. */
    int (*outstanding)(sms_provider_t *self);
    /* The sender committed what the receipts read since the last call
     * produced (`stored`), or could not: the provider answers them now
     * (SMPP deliver_sm_resp), or leaves them unanswered so that the carrier
     * sends them again. */
    void (*acknowledge)(sms_provider_t *self, bool stored);
    void (*destroy)(sms_provider_t **self_p);
};

sms_provider_t *sms_smpp_new(const sms_settings_t *settings, const sms_provider_events_t *events);
sms_provider_t *sms_http_new(const sms_settings_t *settings, const sms_provider_events_t *events);

#endif
