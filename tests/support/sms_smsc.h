/* sms_smsc: a small SMSC (SMPP 3.4 server, libsmpp34) for the tests and the
 * benchmarks of ncc-sms. It accepts bind_transceiver/bind_transmitter (with a
 * system_id and password), answers enquire_link, submit_sm (message ids:
 * 8 hex digits random per start, then a counter), reassembles concatenated parts (UDH 00 03) and
 * decodes GSM-7 or UCS-2, and sends a delivery receipt per part as a deliver_sm (esm_class 0x04,
 * source_addr the original destination, receipted_message_id and message_state TLVs, the SMPP 3.4
 * Appendix B text "id:… submit date:… stat:… text:<first 20 characters>") after a delay, again
 * until the ESME answers it (deliver_sm_resp). Store and forward, as a carrier's SMSC: with a
 * data_dir, every accepted part is appended to <data_dir>/smsc-store.log and fsync'ed before its
 * submit_sm_resp goes out (one fsync for what one round read), and a new start on the same
 * data_dir sends the receipts of the parts it had accepted and not had answered. Faults on
 * demand: throttle (ESME_RTHROTTLED), refuse binds, drop every connection, undeliverable numbers,
 * duplicate receipts, withheld answers (accepted, stored, never answered), a receipt of its own
 * making (an orphan). One thread; every function but the getters is called from the test
 * thread. */
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
    const char *data_dir;             /* store and forward (above); NULL: accepted parts are lost
                                         with the process */
} ncct_smsc_options_t;

ncct_smsc_t *ncct_smsc_start(const ncct_smsc_options_t *options);
void ncct_smsc_stop(ncct_smsc_t **self_p);
int ncct_smsc_port(ncct_smsc_t *self);

/* Faults. */
void ncct_smsc_drop_connections(ncct_smsc_t *self); /* closes every session now */
void ncct_smsc_refuse_binds(ncct_smsc_t *self, bool refuse);
void ncct_smsc_set_throttle_every(ncct_smsc_t *self, int every);
/* While on, submit_sm are accepted and stored but never answered (the answer is
 * lost) and their receipts wait; turned off, the receipts go after the delay. */
void ncct_smsc_set_withhold(ncct_smsc_t *self, bool withhold);
/* Sends a receipt as if for a message it accepted: `source_addr` (digits,
 * international), `text` the text: field, stat "DELIVRD", "UNDELIV", … */
void ncct_smsc_inject_receipt(ncct_smsc_t *self, const char *id, const char *source_addr,
                              const char *text, const char *stat);

/* Counters. */
int ncct_smsc_binds(ncct_smsc_t *self);
int ncct_smsc_submits(ncct_smsc_t *self);   /* submit_sm accepted (parts) */
int ncct_smsc_throttled(ncct_smsc_t *self); /* submit_sm answered throttled */
int ncct_smsc_receipts(ncct_smsc_t *self);  /* deliver_sm receipts sent */
int ncct_smsc_enquires(ncct_smsc_t *self);  /* enquire_link received */
int ncct_smsc_messages(ncct_smsc_t *self);  /* whole messages (parts reassembled) */
int ncct_smsc_restored(ncct_smsc_t *self);  /* parts read back from data_dir at start */

/* The text of the last whole message to `dest` (digits as in destination_addr,
 * e.g. "819012345678"), its part count and data_coding; caller frees; NULL
 * when none. */
char *ncct_smsc_last_text(ncct_smsc_t *self, const char *dest, int *ret_parts,
                          int *ret_data_coding);

#endif
