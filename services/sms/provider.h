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

/* What a provider tells the sender. Strings are borrowed for the call. */
typedef struct {
    /* The outcome of submit(id): rc 0 with the provider's ids of its parts
     * (n of them), or rc < 0 with `retry` (a temporary failure: throttled,
     * connection lost, 5xx) and a sentence in `error`. */
    void (*on_result)(void *arg, int64_t id, int rc, bool retry, const char *error,
                      char *const *provider_ids, int n);
    /* A delivery receipt: status delivered | failed | expired. */
    void (*on_receipt)(void *arg, const char *provider_id, const char *status, const char *error);
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
    void (*destroy)(sms_provider_t **self_p);
};

sms_provider_t *sms_smpp_new(const sms_settings_t *settings, const sms_provider_events_t *events);
sms_provider_t *sms_http_new(const sms_settings_t *settings, const sms_provider_events_t *events);

#endif
