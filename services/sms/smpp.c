/* smpp: the SMPP 3.4 provider (libsmpp34 packs and unpacks the PDUs). One TCP
 * connection to the SMSC, bound as transceiver (or transmitter), kept alive
 * with enquire_link; submit_sm per part (GSM-7 or UCS-2, a concatenation UDH
 * when there are several), at most NCC_SMS_SMPP_WINDOW waiting for their
 * submit_sm_resp; deliver_sm receipts matched by receipted_message_id (or the
 * "id:" of the receipt text), with what an orphan receipt is matched by
 * (source_addr, "text:", "submit date:"), each answered once the sender has
 * stored it; throttling (ESME_RTHROTTLED, ESME_RMSGQFUL) pauses sending for a
 * second and retries the message; a part that went out and whose answer was
 * lost (the connection dropped, no answer in 10 s) makes its message
 * uncertain, never retried here; a lost connection is made again with
 * exponential back-off. Runs on the sender thread only. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <libsmpp34/smpp34.h>
#include <libsmpp34/smpp34_structs.h>
#include <libsmpp34/smpp34_params.h>

#include "ncc/log.h"
#include "provider.h"
#include "text.h"

#define S_PDU_MAX        4096
#define S_SUBMIT_TIMEOUT 10000 /* ms without submit_sm_resp: the part failed (retry) */

typedef enum { S_DOWN, S_BINDING, S_BOUND } s_state_t;

typedef struct {
    int64_t id;
    int parts, answered;
    bool failed, retry, uncertain;
    char error[160];
    char **ids; /* one per part */
    bool used;
} s_msg_t;

typedef struct {
    uint32_t seq;
    int msg; /* index in msgs */
    int part;
    int64_t sent_ms;
    bool written; /* the whole submit_sm went to the socket */
    bool used;
} s_pending_t;

typedef struct {
    sms_provider_t base;
    const sms_settings_t *st;
    sms_provider_events_t events;
    int fd;
    s_state_t state;
    uint32_t seq;
    uint8_t rbuf[S_PDU_MAX * 4];
    size_t rlen;
    int64_t next_connect_ms, backoff_ms;
    int64_t last_heard_ms, last_enquire_ms, bind_sent_ms;
    int64_t throttled_until_ms;
    uint8_t ref; /* concatenation reference */
    s_msg_t *msgs;
    int n_msgs;
    s_pending_t *pending;
    int n_pending, window;
    uint32_t *acks; /* deliver_sm read and not answered yet (sequence numbers) */
    int n_acks, cap_acks;
    bool broken; /* an answer could not be written: disconnect at the next poll */
} s_smpp_t;

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t s_next_seq(s_smpp_t *self)
{
    self->seq = self->seq >= 0x7FFFFFFF ? 1 : self->seq + 1;
    return self->seq;
}

/* Sends one packed PDU. 0 or -EIO (the caller disconnects). */
static int s_send_pdu(s_smpp_t *self, void *pdu)
{
    uint8_t buf[S_PDU_MAX];
    int len = 0;
    if (smpp34_pack2(buf, sizeof buf, &len, pdu) != 0) {
        ncc_error("smpp.pack_failed", "%s", smpp34_strerror);
        return -EINVAL;
    }
    for (int off = 0; off < len;) {
        ssize_t n = send(self->fd, buf + off, (size_t)(len - off), MSG_NOSIGNAL);
        if (n <= 0)
            return -EIO;
        off += (int)n;
    }
    return 0;
}

static void s_msg_done(s_smpp_t *self, int m)
{
    s_msg_t *msg = &self->msgs[m];
    if (msg->failed)
        self->events.on_result(self->events.arg, msg->id, -EIO, msg->retry,
                               msg->retry && msg->uncertain, msg->error, msg->ids, msg->parts);
    else
        self->events.on_result(self->events.arg, msg->id, 0, false, false, "", msg->ids,
                               msg->parts);
    for (int i = 0; i < msg->parts; i++)
        free(msg->ids[i]);
    free(msg->ids);
    memset(msg, 0, sizeof *msg);
}

/* One part answered (ok, or failed with a reason; `uncertain`: the SMSC may
 * have taken it). */
static void s_part_answered(s_smpp_t *self, int p, const char *provider_id, bool ok, bool retry,
                            bool uncertain, const char *error)
{
    s_pending_t *pend = &self->pending[p];
    s_msg_t *msg = &self->msgs[pend->msg];
    if (uncertain)
        msg->uncertain = true;
    if (ok) {
        msg->ids[pend->part] = strdup(provider_id);
    } else if (!msg->failed) {
        msg->failed = true;
        msg->retry = retry;
        snprintf(msg->error, sizeof msg->error, "%s", error);
    } else {
        msg->retry = msg->retry && retry;
    }
    msg->answered++;
    int m = pend->msg;
    pend->used = false;
    self->n_pending--;
    if (msg->answered == msg->parts)
        s_msg_done(self, m);
}

static void s_disconnect(s_smpp_t *self, const char *why)
{
    if (self->fd >= 0) {
        close(self->fd);
        self->fd = -1;
        ncc_warn("smpp.disconnected", "%s; connecting again in %" PRId64 " ms", why,
                 self->backoff_ms);
    }
    self->state = S_DOWN;
    self->rlen = 0;
    self->next_connect_ms = s_now_ms() + self->backoff_ms;
    self->backoff_ms = self->backoff_ms * 2 > self->st->smpp_reconnect_max_ms
                           ? self->st->smpp_reconnect_max_ms
                           : self->backoff_ms * 2;
    /* deliver_sm not answered yet: the SMSC sends them again. */
    self->n_acks = 0;
    /* What went out and waits for an answer is uncertain: the SMSC may or may
     * not have taken it (docs/sms.md, "Delivery guarantees"); a part that
     * never went out is retried. */
    for (int p = 0; p < self->window; p++)
        if (self->pending[p].used)
            s_part_answered(self, p, NULL, false, true, self->pending[p].written,
                            self->pending[p].written
                                ? "the SMSC connection was lost after the submit_sm"
                                : "the SMSC connection was lost");
}

static void s_connect(s_smpp_t *self)
{
    const sms_settings_t *st = self->st;
    char port[16];
    snprintf(port, sizeof port, "%d", st->smpp_port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (getaddrinfo(st->smpp_host, port, &hints, &ai) != 0 || !ai) {
        ncc_warn("smpp.resolve_failed", "cannot resolve %s", st->smpp_host);
        s_disconnect(self, "resolve failed");
        return;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {.tv_sec = 2};
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        self->next_connect_ms = s_now_ms() + self->backoff_ms;
        ncc_warn("smpp.connect_failed", "%s:%d: %s; again in %" PRId64 " ms", st->smpp_host,
                 st->smpp_port, strerror(errno), self->backoff_ms);
        self->backoff_ms = self->backoff_ms * 2 > st->smpp_reconnect_max_ms
                               ? st->smpp_reconnect_max_ms
                               : self->backoff_ms * 2;
        return;
    }
    freeaddrinfo(ai);
    self->fd = fd;
    bind_transceiver_t bind;
    memset(&bind, 0, sizeof bind);
    bind.command_id = st->smpp_transceiver ? BIND_TRANSCEIVER : BIND_TRANSMITTER;
    bind.command_status = ESME_ROK;
    bind.sequence_number = s_next_seq(self);
    snprintf((char *)bind.system_id, sizeof bind.system_id, "%s", st->smpp_system_id);
    snprintf((char *)bind.password, sizeof bind.password, "%s",
             st->smpp_password ? st->smpp_password : "");
    snprintf((char *)bind.system_type, sizeof bind.system_type, "ncc");
    bind.interface_version = SMPP_VERSION;
    /* bind_transmitter has the same fields in the same order. */
    if (s_send_pdu(self, &bind) < 0) {
        s_disconnect(self, "bind could not be sent");
        return;
    }
    self->state = S_BINDING;
    self->bind_sent_ms = self->last_heard_ms = s_now_ms();
}

static int s_capacity(sms_provider_t *base)
{
    s_smpp_t *self = (s_smpp_t *)base;
    if (self->state != S_BOUND || self->broken || s_now_ms() < self->throttled_until_ms)
        return 0;
    /* Room for a message of the largest size. */
    int free_slots = self->window - self->n_pending;
    return free_slots >= self->st->max_parts || (free_slots > 0 && self->n_pending == 0)
               ? free_slots
               : 0;
}

static int s_outstanding(sms_provider_t *base)
{
    return ((s_smpp_t *)base)->n_pending;
}

static int s_submit(sms_provider_t *base, int64_t id, const char *e164, const char *text)
{
    s_smpp_t *self = (s_smpp_t *)base;
    if (self->state != S_BOUND || self->broken)
        return -ENOTCONN;
    sms_part_t *parts = NULL;
    int n = 0;
    int rc = sms_text_parts(text, ++self->ref, &parts, &n);
    if (rc < 0) {
        self->events.on_result(self->events.arg, id, rc, false, false, "the text cannot be encoded",
                               NULL, 0);
        return 0;
    }
    if (n > self->window - self->n_pending) {
        free(parts);
        return -EAGAIN;
    }
    int m = 0;
    while (m < self->window && self->msgs[m].used)
        m++;
    if (m == self->window) {
        free(parts);
        return -EAGAIN;
    }
    s_msg_t *msg = &self->msgs[m];
    msg->used = true;
    msg->id = id;
    msg->parts = n;
    msg->ids = calloc((size_t)n, sizeof *msg->ids);
    if (!msg->ids) {
        msg->used = false;
        free(parts);
        return -ENOMEM;
    }
    for (int i = 0; i < n; i++) {
        int p = 0;
        while (self->pending[p].used)
            p++;
        submit_sm_t sm;
        memset(&sm, 0, sizeof sm);
        sm.command_id = SUBMIT_SM;
        sm.command_status = ESME_ROK;
        sm.sequence_number = s_next_seq(self);
        const char *src = self->st->sender_id ? self->st->sender_id : "";
        bool numeric = *src && strspn(src, "+0123456789") == strlen(src);
        sm.source_addr_ton = numeric ? TON_International : TON_Alphanumeric;
        sm.source_addr_npi = numeric ? NPI_ISDN_E163_E164 : NPI_Unknown;
        snprintf((char *)sm.source_addr, sizeof sm.source_addr, "%s",
                 src[0] == '+' ? src + 1 : src);
        sm.dest_addr_ton = TON_International;
        sm.dest_addr_npi = NPI_ISDN_E163_E164;
        snprintf((char *)sm.destination_addr, sizeof sm.destination_addr, "%s", e164 + 1);
        sm.esm_class = parts[i].esm_class;
        sm.registered_delivery = 1; /* a receipt on success and failure */
        sm.data_coding = parts[i].data_coding;
        sm.sm_length = (uint8_t)parts[i].len;
        memcpy(sm.short_message, parts[i].bytes, (size_t)parts[i].len);
        self->pending[p] = (s_pending_t){
            .seq = sm.sequence_number, .msg = m, .part = i, .sent_ms = s_now_ms(), .used = true};
        self->n_pending++;
        int sent = s_send_pdu(self, &sm);
        self->pending[p].written = sent == 0;
        if (sent < 0) {
            /* The parts not sent are not waited for: the message is answered (failed,
             * to retry) once the ones sent so far are. */
            msg->parts = i + 1;
            free(parts);
            s_disconnect(self, "submit_sm could not be sent");
            return 0;
        }
    }
    free(parts);
    return 0;
}

/* The text after "key:" in the fields of a receipt (before its "text:"), up
 * to a space, into out. */
static void s_receipt_field(const char *fields, const char *key, char *out, size_t len)
{
    out[0] = '\0';
    const char *p = strstr(fields, key);
    if (!p)
        return;
    p += strlen(key);
    size_t n = strcspn(p, " ");
    snprintf(out, len, "%.*s", (int)(n < len ? n : len - 1), p);
}

/* deliver_sm read: answered once the sender has stored what it carried. */
static void s_ack_later(s_smpp_t *self, uint32_t seq)
{
    if (self->n_acks == self->cap_acks) {
        int cap = self->cap_acks ? self->cap_acks * 2 : 64;
        uint32_t *grown = realloc(self->acks, (size_t)cap * sizeof *grown);
        if (!grown)
            return; /* not answered: the SMSC sends it again */
        self->acks = grown;
        self->cap_acks = cap;
    }
    self->acks[self->n_acks++] = seq;
}

/* The receipt's source address (the original destination) as E.164 into out
 * ("" when it is not a Japanese mobile number). */
static void s_receipt_destination(const deliver_sm_t *pdu, char out[SMS_E164_MAX])
{
    out[0] = '\0';
    const char *addr = (const char *)pdu->source_addr;
    char text[32];
    size_t len = strnlen(addr, sizeof pdu->source_addr);
    if (len == 0 || len > 20)
        return;
    /* International (TON 1), or unknown with the country code: +<digits>;
     * else the national form (0 + 9 or 10 digits). */
    bool international =
        pdu->source_addr_ton == TON_International || (addr[0] != '0' && addr[0] != '+');
    snprintf(text, sizeof text, "%s%.*s", international && addr[0] != '+' ? "+" : "", (int)len,
             addr);
    if (sms_number_e164(text, out, NULL) < 0)
        out[0] = '\0';
}

static void s_on_deliver(s_smpp_t *self, const uint8_t *buf, int len)
{
    deliver_sm_t pdu;
    memset(&pdu, 0, sizeof pdu);
    if (smpp34_unpack2(&pdu, buf, len) != 0) {
        ncc_warn("smpp.bad_pdu", "deliver_sm does not unpack: %s", smpp34_strerror);
        destroy_tlv(pdu.tlv);
        return;
    }
    s_ack_later(self, pdu.sequence_number);
    if (!(pdu.esm_class & 0x04)) {
        destroy_tlv(pdu.tlv);
        return; /* a mobile-originated message: ncc takes no replies */
    }
    /* The Appendix B text: "id:… sub:… dlvrd:… submit date:… done date:…
     * stat:… err:… text:…", where text: is the last field and may hold any
     * bytes (the first 20 characters of the message). */
    const uint8_t *sm = pdu.short_message;
    size_t sm_len = pdu.sm_length;
    size_t text_at = sm_len;
    for (size_t i = 0; i + 5 <= sm_len; i++) {
        if (memcmp(sm + i, "text:", 5) == 0 || memcmp(sm + i, "Text:", 5) == 0) {
            text_at = i;
            break;
        }
    }
    char fields[256];
    size_t fl = text_at < sizeof fields - 1 ? text_at : sizeof fields - 1;
    for (size_t i = 0; i < fl; i++)
        fields[i] = sm[i] ? (char)sm[i] : ' ';
    fields[fl] = '\0';
    const uint8_t *frag = NULL;
    size_t frag_len = 0;
    if (text_at < sm_len) {
        frag = sm + text_at + 5;
        frag_len = sm_len - text_at - 5;
        while (frag_len > 0 && frag[frag_len - 1] == 0)
            frag_len--;
    }
    char id[80] = "", stat[16] = "", err[16] = "", submitted[16] = "";
    int state = -1;
    for (tlv_t *t = pdu.tlv; t; t = t->next) {
        if (t->tag == TLVID_receipted_message_id)
            snprintf(id, sizeof id, "%.*s", (int)strnlen((const char *)t->value.octet, t->length),
                     (const char *)t->value.octet);
        else if (t->tag == TLVID_message_state)
            state = t->value.val08;
    }
    destroy_tlv(pdu.tlv);
    if (!id[0])
        s_receipt_field(fields, "id:", id, sizeof id);
    s_receipt_field(fields, "stat:", stat, sizeof stat);
    s_receipt_field(fields, "err:", err, sizeof err);
    s_receipt_field(fields, "submit date:", submitted, sizeof submitted);
    if (strlen(submitted) < 10 || strspn(submitted, "0123456789") < 10)
        submitted[0] = '\0';
    else
        submitted[10] = '\0'; /* YYMMDDhhmm (some SMSCs add seconds) */
    /* message_state (SMPP 3.4 5.2.28) wins over the text when both are there. */
    static const char *const states[] = {NULL,      "ENROUTE", "DELIVRD", "EXPIRED", "DELETED",
                                         "UNDELIV", "ACCEPTD", "UNKNOWN", "REJECTD"};
    if (state >= 1 && state <= 8)
        snprintf(stat, sizeof stat, "%s", states[state]);
    const char *status = strcmp(stat, "DELIVRD") == 0   ? "delivered"
                         : strcmp(stat, "EXPIRED") == 0 ? "expired"
                         : strcmp(stat, "UNDELIV") == 0 || strcmp(stat, "REJECTD") == 0 ||
                                 strcmp(stat, "DELETED") == 0 || strcmp(stat, "UNKNOWN") == 0
                             ? "failed"
                             : NULL;
    if (!id[0] || !status) {
        if (!id[0])
            ncc_warn("smpp.receipt_unreadable", "a receipt without a message id");
        return; /* ENROUTE, ACCEPTD: not final */
    }
    char error[40], destination[SMS_E164_MAX];
    snprintf(error, sizeof error, "%s%s%s", stat, err[0] ? " err:" : "", err);
    s_receipt_destination(&pdu, destination);
    sms_receipt_t receipt = {.provider_id = id,
                             .status = status,
                             .error = error,
                             .destination = destination,
                             .text = frag,
                             .text_len = frag_len,
                             .submit_date = submitted};
    self->events.on_receipt(self->events.arg, &receipt);
}

static void s_acknowledge(sms_provider_t *base, bool stored)
{
    s_smpp_t *self = (s_smpp_t *)base;
    int n = self->n_acks;
    self->n_acks = 0;
    /* No disconnect here (its outcomes would reach the sender inside its
     * commit): the next poll makes it. */
    for (int i = 0; stored && i < n && self->fd >= 0 && !self->broken; i++) {
        deliver_sm_resp_t resp;
        memset(&resp, 0, sizeof resp);
        resp.command_id = DELIVER_SM_RESP;
        resp.command_status = ESME_ROK;
        resp.sequence_number = self->acks[i];
        if (s_send_pdu(self, &resp) < 0)
            self->broken = true;
    }
}

/* One whole PDU in buf. */
static void s_handle(s_smpp_t *self, const uint8_t *buf, int len)
{
    uint32_t id = (uint32_t)buf[4] << 24 | (uint32_t)buf[5] << 16 | (uint32_t)buf[6] << 8 | buf[7];
    uint32_t status =
        (uint32_t)buf[8] << 24 | (uint32_t)buf[9] << 16 | (uint32_t)buf[10] << 8 | buf[11];
    uint32_t seq =
        (uint32_t)buf[12] << 24 | (uint32_t)buf[13] << 16 | (uint32_t)buf[14] << 8 | buf[15];
    self->last_heard_ms = s_now_ms();
    switch (id) {
    case BIND_TRANSCEIVER_RESP:
    case BIND_TRANSMITTER_RESP:
        if (status != ESME_ROK) {
            ncc_error("smpp.bind_refused", "the SMSC refused the bind (status 0x%08x)", status);
            s_disconnect(self, "bind refused");
            return;
        }
        self->state = S_BOUND;
        self->backoff_ms = 100;
        self->last_enquire_ms = s_now_ms();
        ncc_info("smpp.bound", "bound to %s:%d as %s", self->st->smpp_host, self->st->smpp_port,
                 self->st->smpp_transceiver ? "transceiver" : "transmitter");
        return;
    case SUBMIT_SM_RESP:
    case GENERIC_NACK: {
        int p = 0;
        while (p < self->window && !(self->pending[p].used && self->pending[p].seq == seq))
            p++;
        if (p == self->window)
            return; /* late: that part was already counted as failed */
        if (id == SUBMIT_SM_RESP && status == ESME_ROK) {
            submit_sm_resp_t resp;
            memset(&resp, 0, sizeof resp);
            if (smpp34_unpack2(&resp, buf, len) != 0 || !resp.message_id[0]) {
                /* Taken, but its id unknown: only its receipt can tell. */
                s_part_answered(self, p, NULL, false, true, true,
                                "submit_sm_resp without a message id");
                return;
            }
            char mid[66];
            snprintf(mid, sizeof mid, "%s", (const char *)resp.message_id);
            s_part_answered(self, p, mid, true, false, false, "");
            return;
        }
        bool throttled = status == ESME_RTHROTTLED || status == ESME_RMSGQFUL;
        bool retry = throttled || status == ESME_RSYSERR || status == ESME_RX_T_APPN ||
                     status == ESME_RSUBMITFAIL || id == GENERIC_NACK;
        if (throttled)
            self->throttled_until_ms = s_now_ms() + 1000;
        char error[100];
        snprintf(error, sizeof error, "the SMSC refused the part (%s 0x%08x%s)",
                 id == GENERIC_NACK ? "generic_nack" : "status", status,
                 throttled ? ": throttled" : "");
        s_part_answered(self, p, NULL, false, retry, false, error);
        return;
    }
    case DELIVER_SM:
        s_on_deliver(self, buf, len);
        return;
    case ENQUIRE_LINK: {
        enquire_link_resp_t resp;
        memset(&resp, 0, sizeof resp);
        resp.command_id = ENQUIRE_LINK_RESP;
        resp.sequence_number = seq;
        if (s_send_pdu(self, &resp) < 0)
            s_disconnect(self, "enquire_link_resp could not be sent");
        return;
    }
    case UNBIND: {
        unbind_resp_t resp;
        memset(&resp, 0, sizeof resp);
        resp.command_id = UNBIND_RESP;
        resp.sequence_number = seq;
        s_send_pdu(self, &resp);
        s_disconnect(self, "the SMSC unbound");
        return;
    }
    default:
        return; /* enquire_link_resp and others: heard */
    }
}

static void s_read(s_smpp_t *self)
{
    ssize_t n = recv(self->fd, self->rbuf + self->rlen, sizeof self->rbuf - self->rlen, 0);
    if (n <= 0) {
        s_disconnect(self, n == 0 ? "the SMSC closed the connection" : "read failed");
        return;
    }
    self->rlen += (size_t)n;
    while (self->fd >= 0 && self->rlen >= 16) {
        uint32_t len = (uint32_t)self->rbuf[0] << 24 | (uint32_t)self->rbuf[1] << 16 |
                       (uint32_t)self->rbuf[2] << 8 | self->rbuf[3];
        if (len < 16 || len > S_PDU_MAX) {
            s_disconnect(self, "a malformed PDU");
            return;
        }
        if (self->rlen < len)
            return;
        s_handle(self, self->rbuf, (int)len);
        if (self->fd < 0)
            return;
        memmove(self->rbuf, self->rbuf + len, self->rlen - len);
        self->rlen -= len;
    }
}

static void s_poll(sms_provider_t *base, int timeout_ms, int wake_fd)
{
    s_smpp_t *self = (s_smpp_t *)base;
    if (self->broken) {
        self->broken = false;
        s_disconnect(self, "deliver_sm_resp could not be sent");
    }
    int64_t now = s_now_ms();
    if (self->state == S_DOWN && now >= self->next_connect_ms)
        s_connect(self);
    int64_t enquire_ms = (int64_t)self->st->smpp_enquire_s * 1000;
    if (self->state == S_BINDING && now - self->bind_sent_ms > 5000)
        s_disconnect(self, "no bind response");
    if (self->state == S_BOUND && now - self->last_enquire_ms >= enquire_ms) {
        enquire_link_t el;
        memset(&el, 0, sizeof el);
        el.command_id = ENQUIRE_LINK;
        el.sequence_number = s_next_seq(self);
        self->last_enquire_ms = now;
        if (s_send_pdu(self, &el) < 0)
            s_disconnect(self, "enquire_link could not be sent");
    }
    if (self->fd >= 0 && now - self->last_heard_ms > 3 * enquire_ms)
        s_disconnect(self, "the SMSC stopped answering enquire_link");
    for (int p = 0; p < self->window; p++)
        if (self->pending[p].used && now - self->pending[p].sent_ms > S_SUBMIT_TIMEOUT)
            s_part_answered(self, p, NULL, false, true, true, "no submit_sm_resp in 10 s");
    struct pollfd fds[2];
    int n = 0;
    if (self->fd >= 0)
        fds[n++] = (struct pollfd){.fd = self->fd, .events = POLLIN};
    if (wake_fd >= 0)
        fds[n++] = (struct pollfd){.fd = wake_fd, .events = POLLIN};
    if (self->state == S_DOWN && self->next_connect_ms - now < timeout_ms)
        timeout_ms = (int)(self->next_connect_ms - now > 0 ? self->next_connect_ms - now : 0);
    if (poll(fds, (nfds_t)n, timeout_ms) > 0 && self->fd >= 0 &&
        (fds[0].revents & (POLLIN | POLLHUP | POLLERR)))
        s_read(self);
}

static void s_destroy(sms_provider_t **base_p)
{
    s_smpp_t *self = (s_smpp_t *)*base_p;
    if (!self)
        return;
    if (self->fd >= 0 && self->state == S_BOUND) {
        unbind_t unbind;
        memset(&unbind, 0, sizeof unbind);
        unbind.command_id = UNBIND;
        unbind.sequence_number = s_next_seq(self);
        s_send_pdu(self, &unbind);
    }
    if (self->fd >= 0)
        close(self->fd);
    self->fd = -1;
    /* Parts never answered: their messages are retried by the next owner (lease). */
    for (int m = 0; m < self->window; m++) {
        for (int i = 0; self->msgs[m].used && i < self->msgs[m].parts; i++)
            free(self->msgs[m].ids[i]);
        free(self->msgs[m].ids);
    }
    free(self->msgs);
    free(self->pending);
    free(self->acks);
    free(self);
    *base_p = NULL;
}

sms_provider_t *sms_smpp_new(const sms_settings_t *settings, const sms_provider_events_t *events)
{
    if (!settings->smpp_host || !*settings->smpp_host || !settings->smpp_system_id) {
        ncc_error("config.invalid", "NCC_SMS_PROVIDER=smpp needs NCC_SMS_SMPP_HOST and "
                                    "NCC_SMS_SMPP_SYSTEM_ID");
        return NULL;
    }
    s_smpp_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->base = (sms_provider_t){.name = "smpp",
                                  .capacity = s_capacity,
                                  .submit = s_submit,
                                  .poll = s_poll,
                                  .outstanding = s_outstanding,
                                  .acknowledge = s_acknowledge,
                                  .destroy = s_destroy};
    self->st = settings;
    self->events = *events;
    self->fd = -1;
    self->window = settings->smpp_window;
    self->backoff_ms = 100;
    self->msgs = calloc((size_t)self->window, sizeof *self->msgs);
    self->pending = calloc((size_t)self->window, sizeof *self->pending);
    if (!self->msgs || !self->pending) {
        free(self->msgs);
        free(self->pending);
        free(self);
        return NULL;
    }
    return &self->base;
}
