/* sms_smsc: a small SMSC (SMPP 3.4 server, libsmpp34) for the tests and the
 * benchmarks of ncc-sms. It accepts bind_transceiver/bind_transmitter (with a
 * system_id and password), answers enquire_link, submit_sm (message ids:
 * 8 hex digits random per start, then a counter), reassembles concatenated parts (UDH 00 03) and
 * decodes GSM-7 or UCS-2, and sends a delivery receipt per part as a deliver_sm (esm_class 0x04,
 * receipted_message_id and message_state TLVs, the "id: ... stat:" text) after a delay. Faults on
 * demand: throttle (ESME_RTHROTTLED), refuse binds, drop every connection, undeliverable numbers,
 * duplicate receipts. One thread; every function but the getters is called from the test thread. */
#ifndef NCCT_SMS_SMSC_H
#define NCCT_SMS_SMSC_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ncct_smsc ncct_smsc_t;

typedef struct {
    int port;                         /* 0: an ephemeral one */
    const char *system_id;            /* NULL: any */
    const char *password;             /* NULL: any */
    int receipt_delay_ms;             /* after the submit_sm_resp */
    int throttle_every;               /* every n-th submit_sm answered ESME_RTHROTTLED (0: never) */
    const char *undeliverable_suffix; /* destinations ending so get stat:UNDELIV */
    bool duplicate_receipts;          /* each receipt sent twice */
    const char *log_path;             /* one line per accepted part: "<message id> <dest> <text>" */
} ncct_smsc_options_t;

ncct_smsc_t *ncct_smsc_start(const ncct_smsc_options_t *options);
void ncct_smsc_stop(ncct_smsc_t **self_p);
int ncct_smsc_port(ncct_smsc_t *self);

/* Faults. */
void ncct_smsc_drop_connections(ncct_smsc_t *self); /* closes every session now */
void ncct_smsc_refuse_binds(ncct_smsc_t *self, bool refuse);
void ncct_smsc_set_throttle_every(ncct_smsc_t *self, int every);

/* Counters. */
int ncct_smsc_binds(ncct_smsc_t *self);
int ncct_smsc_submits(ncct_smsc_t *self);   /* submit_sm accepted (parts) */
int ncct_smsc_throttled(ncct_smsc_t *self); /* submit_sm answered throttled */
int ncct_smsc_receipts(ncct_smsc_t *self);  /* deliver_sm receipts sent */
int ncct_smsc_enquires(ncct_smsc_t *self);  /* enquire_link received */
int ncct_smsc_messages(ncct_smsc_t *self);  /* whole messages (parts reassembled) */

/* The text of the last whole message to `dest` (digits as in destination_addr,
 * e.g. "819012345678"), its part count and data_coding; caller frees; NULL
 * when none. */
char *ncct_smsc_last_text(ncct_smsc_t *self, const char *dest, int *ret_parts,
                          int *ret_data_coding);

#endif
