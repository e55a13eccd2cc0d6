/* sms_twilio: a local HTTP server in the form of Twilio's Messages API, for
 * the tests of ncc-sms's http provider. POST
 * /2010-04-01/Accounts/<account>/Messages.json with HTTP basic auth
 * (account, token) and a form (To, From, Body, StatusCallback) answers 201
 * {"sid": "SM<32 hex>", "status": "queued", ...}; bad credentials 401
 * {"code": 20003}, a missing To or Body 400 {"code": 21604}; then it posts
 * the status callbacks (MessageSid, MessageStatus sent, then delivered or
 * undelivered with ErrorCode 30003) to StatusCallback as a form, signed
 * with X-NCC-Signature (ncc/webhook.h) with `callback_secret`. Faults on
 * demand: 429 with Retry-After, 500. */
#ifndef NCCT_SMS_TWILIO_H
#define NCCT_SMS_TWILIO_H

#include <stdbool.h>

typedef struct ncct_twilio ncct_twilio_t;

typedef struct {
    const char *account; /* "AC..." */
    const char *token;
    const char *callback_secret;      /* signs the callbacks */
    const char *undeliverable_suffix; /* To ending so: undelivered */
    int callback_delay_ms;
} ncct_twilio_options_t;

ncct_twilio_t *ncct_twilio_start(const ncct_twilio_options_t *options);
void ncct_twilio_stop(ncct_twilio_t **self_p);

/* "http://127.0.0.1:<port>/2010-04-01/Accounts/<account>/Messages.json" (borrowed). */
const char *ncct_twilio_url(ncct_twilio_t *self);

/* The next `n` requests answer 429 (Retry-After: 1) or 500. */
void ncct_twilio_fail_next(ncct_twilio_t *self, int n, int status);

int ncct_twilio_accepted(ncct_twilio_t *self);  /* 201 answers */
int ncct_twilio_refused(ncct_twilio_t *self);   /* 4xx/5xx answers */
int ncct_twilio_callbacks(ncct_twilio_t *self); /* callbacks the receiver answered 2xx */

/* The Body of the last accepted message to `to` (caller frees), or NULL. */
char *ncct_twilio_last_body(ncct_twilio_t *self, const char *to);

#endif
