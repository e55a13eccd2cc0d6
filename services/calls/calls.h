/* calls: the state of ncc-calls and what its files share. The PBX's events
 * (events.c) fold into one row per call, published as
 * ncc.calls.CallStateChanged and pushed to the operator's browser as the
 * screen pop; transcripts (transcript.c) are stored encrypted, pushed live and
 * exported as tokens for text mining; query.c answers people's reads.
 * docs/pbx-integration.md is the PBX vendor's page. */
#ifndef CALLS_H
#define CALLS_H

#include <stdbool.h>
#include <cjson/cJSON.h>
#include <stdint.h>

#include "calls.pb-c.h"
#include "ncc/masters_cache.h"
#include "ncc/service.h"

/* A timestamptz column as RFC 3339 in Asia/Tokyo (SQL text). */
#define CALLS_RFC3339(col)                                                                         \
    "to_char(" col " AT TIME ZONE 'Asia/Tokyo', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"+09:00\"')"

/* Encryption contexts (bound as associated data). */
#define CALLS_FROM_CONTEXT       "calls.from_number"
#define CALLS_FROM_INDEX_CONTEXT "calls.from_number.index"
#define CALLS_TEXT_CONTEXT       "calls.transcript"
#define CALLS_URL_CONTEXT        "calls.recording_url"
#define CALLS_AUDIO_CONTEXT      "calls.recording"

/* Bus time limits of the calls a webhook makes before it answers: the PBX
 * waits for us, and a screen pop later than this is no pop. */
#define CALLS_LOOKUP_TIMEOUT_MS 300
/* After ncc-history did not answer, pops go without the caller's records for
 * this long (the webhook is not slowed by each time-out). */
#define CALLS_HISTORY_QUIET_S 10

typedef struct {
    int mecab_disabled;           /* NCC_CALLS_MECAB_DISABLED (tests without MeCab) */
    int recording_max_bytes;      /* NCC_RECORDING_MAX_BYTES: larger recordings are refused */
    int recording_timeout_ms;     /* NCC_RECORDING_FETCH_TIMEOUT_MS: one fetch at most */
    int recording_retention_days; /* NCC_RECORDING_RETENTION_DAYS: 0 keeps them */
    int recording_purge_ms;       /* NCC_RECORDING_PURGE_MS: how often expired ones are deleted */
    int recording_check_ms;       /* NCC_RECORDING_CHECK_MS: how often the fetcher looks for work */
} calls_settings_t;

typedef struct {
    ncc_service_t *service;       /* borrowed */
    ncc_db_t *db;                 /* borrowed: the service's connection */
    const ncc_keyring_t *keyring; /* borrowed; NULL without NCC_DATA_KEYS */
    ncc_masters_cache_t *masters; /* departments, phone book (owned) */
    const calls_settings_t *settings;
    void *mecab;                    /* mecab_t *, made on first export (transcript.c) */
    struct calls_fetcher *fetcher;  /* the recordings' fetch thread (recording.c) */
    int64_t history_quiet_until_us; /* no caller-history look-up before (events.c) */
} calls_t;

calls_t *calls_new(ncc_service_t *service, const calls_settings_t *settings);
void calls_destroy(calls_t **self_p);

/* The handlers of each file (calls_new calls them). 0 or a negative errno. */
int calls_events_register(calls_t *self);
int calls_transcript_register(calls_t *self);
int calls_query_register(calls_t *self);
int calls_recording_register(calls_t *self); /* also starts the fetch thread */
void calls_recording_stop(calls_t *self);

/* Inside the event's transaction: a recording_ready of `call_id` at `url`
 * is queued for the fetcher (again after a failure; not after it is stored).
 * 0 or -EIO. */
int calls_recording_queue(calls_t *self, const char *call_id, const char *url);

/* A call id or event id: 1-128 of [A-Za-z0-9._:-]. */
bool calls_id_ok(const char *id);

/* The caller's number as its blind-index key: digits and '+' only. */
void calls_number_key(const char *number, char *out, size_t len);

/* Logs the database error, rolls back and answers 503/500. */
void calls_reply_db_error(calls_t *self, ncc_reply_t *reply, const char *what);

/* Publishes committed outbox rows now (the pop must not wait for the timer). */
void calls_flush(calls_t *self);

/* Adds an ncc.Push to the outbox (inside the caller's transaction): `event`
 * with `data` (a JSON object, not taken) for user `user_id` (0: none) and
 * the users holding `roles` (comma list, NULL: none). 0 or -EIO/-ENOMEM. */
int calls_push(calls_t *self, const ncc_ctx_t *ctx, int64_t user_id, const char *roles,
               const char *event, const cJSON *data);

#endif
