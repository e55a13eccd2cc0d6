/* bench_sms_smsc: the test SMSC (tests/support/sms_smsc.c) as a process of its
 * own, for bench/bench_sms.sh and bench/bench_sms_fault.sh, which start it,
 * kill it (SIGKILL) and start it again. Every accepted part is appended to
 * the log file ("<message id> <destination> <text>") before its
 * submit_sm_resp is sent, so a part the SMSC took is in the log even when it
 * dies right after. With DATA_DIR it stores and forwards as a carrier's SMSC
 * does: each accepted part is fsync'ed to DATA_DIR/smsc-store.log before its
 * submit_sm_resp, and a start on the same DATA_DIR sends the receipts of the
 * parts accepted before and not yet answered by the ESME.
 *
 *   bench_sms_smsc PORT LOG_FILE [RECEIPT_DELAY_MS [DATA_DIR]]
 *
 * Runs until SIGTERM or SIGINT. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "sms_smsc.h"

static volatile sig_atomic_t s_stop;

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s PORT LOG_FILE [RECEIPT_DELAY_MS [DATA_DIR]]\n", argv[0]);
        return 2;
    }
    ncct_smsc_options_t options = {.port = atoi(argv[1]),
                                   .log_path = argv[2],
                                   .receipt_delay_ms = argc > 3 ? atoi(argv[3]) : 20,
                                   .data_dir = argc > 4 && argv[4][0] ? argv[4] : NULL};
    ncct_smsc_t *smsc = ncct_smsc_start(&options);
    if (!smsc) {
        fprintf(stderr, "bench_sms_smsc: cannot listen on 127.0.0.1:%s\n", argv[1]);
        return 1;
    }
    signal(SIGTERM, s_on_signal);
    signal(SIGINT, s_on_signal);
    while (!s_stop)
        usleep(100 * 1000);
    fprintf(stderr,
            "bench_sms_smsc: %d binds, %d parts accepted, %d receipts sent, %d parts restored\n",
            ncct_smsc_binds(smsc), ncct_smsc_submits(smsc), ncct_smsc_receipts(smsc),
            ncct_smsc_restored(smsc));
    ncct_smsc_stop(&smsc);
    return 0;
}
