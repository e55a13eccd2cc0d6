/* events: POST /api/v1/pbx/events (the gateway checks the signature and sends
 * ncc.calls.PbxEvent as actor "pbx"). Each event is taken once by its id and
 * folded into the call's row whatever the order it comes in: the earliest
 * ringing and answer, the latest transfer and end. Each state the fold
 * reaches is published as ncc.calls.CallStateChanged, and the answering
 * operator's browser gets the screen pop (call.answered) with the caller's
 * recent records, all through the outbox in the transaction of the change. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calls.h"
#include "directory.pb-c.h"
#include "ncc/bus.h"
#include "ncc/crypto.h"
#include "ncc/json.h"
#include "ncc/log.h"
#include "ncc/registry.h"
#include "ncc/roles.h"
#include "ncc/time.h"

#define S_POP_RECORDS 5 /* the caller's records shown in the pop */

/* ---- checks ---------------------------------------------------------------------------- */

static bool s_all_of(const char *text, const char *allowed, size_t max)
{
    size_t len = strlen(text);
    return len <= max && strspn(text, allowed) == len;
}

static bool s_number_ok(const char *number)
{
    return s_all_of(number, "0123456789+-()#* ", 32);
}

static bool s_printable(const char *text, size_t max)
{
    size_t len = strlen(text);
    if (len > max)
        return false;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

static const char *s_str(const char *text)
{
    return text ? text : "";
}

/* 422 naming the field when the event is malformed; NULL when it is fine. */
static const char *s_check(const Ncc__Calls__PbxEvent *m, const char **ret_field)
{
    static const char *const types[] = {"ringing", "answered", "transferred", "ended",
                                        "recording_ready"};
    bool type_ok = false;
    for (size_t i = 0; m->type && i < sizeof types / sizeof types[0]; i++)
        type_ok = type_ok || strcmp(m->type, types[i]) == 0;
    struct {
        bool bad;
        const char *field, *why;
    } checks[] = {
        {!m->event_id || !calls_id_ok(m->event_id), "event_id",
         "event_id is required: 1 to 128 of A-Z a-z 0-9 . _ : -"},
        {!type_ok, "type", "type is one of ringing, answered, transferred, ended, recording_ready"},
        {!m->call_id || !calls_id_ok(m->call_id), "call_id",
         "call_id is required: 1 to 128 of A-Z a-z 0-9 . _ : -"},
        {!m->occurred_at || !ncc_rfc3339_valid(m->occurred_at), "occurred_at",
         "occurred_at is required: RFC 3339 with an offset (2027-04-01T09:00:00+09:00)"},
        {m->from && !s_number_ok(m->from), "from",
         "from is a phone number: at most 32 of 0-9 + - ( ) # * and spaces"},
        {m->to && !s_number_ok(m->to), "to",
         "to is a phone number: at most 32 of 0-9 + - ( ) # * and spaces"},
        {m->agent_extension && !s_all_of(m->agent_extension, "0123456789*#+-", 32),
         "agent_extension", "agent_extension is at most 32 of 0-9 * # + -"},
        {m->transfer_to && !s_printable(m->transfer_to, 64), "transfer_to",
         "transfer_to is at most 64 characters without control characters"},
        {m->type && strcmp(m->type, "recording_ready") == 0 &&
             (!m->recording_url || !*m->recording_url),
         "recording_url", "recording_ready needs recording_url"},
        {m->recording_url && (!s_printable(m->recording_url, 2048) ||
                              (strncmp(m->recording_url, "https://", 8) != 0 &&
                               strncmp(m->recording_url, "http://", 7) != 0)),
         "recording_url", "recording_url is an http(s) URL of at most 2048 characters"},
    };
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        if (checks[i].bad) {
            *ret_field = checks[i].field;
            return checks[i].why;
        }
    }
    return NULL;
}

/* ---- who answered, and the caller's records --------------------------------------------- */

typedef struct {
    int64_t id;
    char login[136];
    char name[520];
} s_operator_t;

/* The active user at `extension` (ncc-directory), or id 0. */
static void s_operator(calls_t *self, const char *extension, s_operator_t *out)
{
    memset(out, 0, sizeof *out);
    if (!extension || !*extension)
        return;
    ncc_rpc_client_t *client = ncc_service_client(self->service, "directory");
    Ncc__Directory__FindByExtension find = NCC__DIRECTORY__FIND_BY_EXTENSION__INIT;
    find.extension = (char *)extension;
    ncc_ctx_t ctx = ncc_service_ctx(self->service);
    ProtobufCMessage *reply = NULL;
    Ncc__Error *error = NULL;
    int rc = client
                 ? ncc_rpc_call_typed(client, &ctx, &find.base, &ncc__directory__user__descriptor,
                                      CALLS_LOOKUP_TIMEOUT_MS, &reply, &error)
                 : -ENOENT;
    if (rc == 0) {
        const Ncc__Directory__User *user = (const Ncc__Directory__User *)reply;
        out->id = user->id;
        snprintf(out->login, sizeof out->login, "%s", s_str(user->login));
        snprintf(out->name, sizeof out->name, "%s", s_str(user->name));
    } else if (!(error && error->status == 404)) {
        ncc_warn("calls.operator_unknown", "extension %s: the directory did not answer (%d)",
                 extension, rc);
    }
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
    if (error)
        ncc__error__free_unpacked(error, NULL);
}

/* The caller's recent records from ncc-history (ncc.history.CallerHistory),
 * as JSON (caller deletes), or NULL when history cannot say (the pop goes
 * without them). The request is made from its name, so ncc-calls does not
 * depend on history's messages at build time. */
static cJSON *s_caller_records(calls_t *self, const char *number)
{
    const ProtobufCMessageDescriptor *desc = ncc_registry_find("ncc.history.CallerHistory");
    ncc_rpc_client_t *client = ncc_service_client(self->service, "history");
    if (!desc || !client || !number || !*number)
        return NULL;
    /* After a time-out, the pops go without records for a while rather than
     * each waiting for a history that does not answer. */
    int64_t now = ncc_bus_now_us();
    if (now < self->history_quiet_until_us)
        return NULL;
    cJSON *json = cJSON_CreateObject();
    cJSON_AddStringToObject(json, "caller_number", number);
    cJSON_AddNumberToObject(json, "limit", S_POP_RECORDS);
    ProtobufCMessage *request = NULL;
    ncc_json_error_t err;
    int rc = ncc_json_to_pb(desc, json, 0, &request, &err);
    cJSON_Delete(json);
    if (rc < 0)
        return NULL;
    ncc_ctx_t ctx = ncc_service_ctx(self->service);
    Ncc__Envelope *reply = NULL;
    rc = ncc_rpc_call(client, &ctx, request, CALLS_LOOKUP_TIMEOUT_MS, &reply);
    protobuf_c_message_free_unpacked(request, NULL);
    if (rc < 0) {
        self->history_quiet_until_us = now + CALLS_HISTORY_QUIET_S * 1000000LL;
        ncc_warn("calls.history_unavailable",
                 "caller history: no answer (%d); pops go without records for %d s", rc,
                 CALLS_HISTORY_QUIET_S);
        return NULL;
    }
    cJSON *out = NULL;
    const ProtobufCMessageDescriptor *reply_desc =
        reply->type ? ncc_registry_find(reply->type) : NULL;
    if (reply_desc && reply_desc != &ncc__error__descriptor) {
        ProtobufCMessage *message = protobuf_c_message_unpack(
            reply_desc, NULL, reply->has_payload ? reply->payload.len : 0, reply->payload.data);
        if (message) {
            out = ncc_pb_to_json(message);
            protobuf_c_message_free_unpacked(message, NULL);
        }
    }
    ncc__envelope__free_unpacked(reply, NULL);
    return out;
}

/* ---- the fold ------------------------------------------------------------------------------ */

/* The call's columns as the statements below return them. */
#define S_CALL_COLUMNS                                                                             \
    "state, from_enc, to_number, agent_extension, coalesce(operator_id, 0), operator_login, "      \
    "operator_name, transfer_to, " CALLS_RFC3339("ringing_at") ", " CALLS_RFC3339(                 \
        "answered_at") ", " CALLS_RFC3339("transferred_at") ", " CALLS_RFC3339("ended_at") ", "    \
                                                                                           "versi" \
                                                                                           "on"

enum {
    C_STATE,
    C_FROM,
    C_TO,
    C_EXT,
    C_OP_ID,
    C_OP_LOGIN,
    C_OP_NAME,
    C_TRANSFER,
    C_RINGING,
    C_ANSWERED,
    C_TRANSFERRED,
    C_ENDED,
    C_VERSION
};

static const char *s_col(PGresult *res, int col)
{
    return PQgetisnull(res, 0, col) ? NULL : PQgetvalue(res, 0, col);
}

static bool s_differs(const char *a, const char *b)
{
    return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

/* The event as it is published (strings borrowed from `row` and `from`). */
static int s_publish(calls_t *self, const ncc_ctx_t *ctx, const char *call_id, const char *state,
                     PGresult *row, const char *from, int64_t version)
{
    Ncc__Calls__CallStateChanged event = NCC__CALLS__CALL_STATE_CHANGED__INIT;
    event.call_id = (char *)call_id;
    event.state = (char *)state;
    const char *occurred = strcmp(state, "answered") == 0      ? s_col(row, C_ANSWERED)
                           : strcmp(state, "transferred") == 0 ? s_col(row, C_TRANSFERRED)
                           : strcmp(state, "ringing") == 0     ? s_col(row, C_RINGING)
                                                               : s_col(row, C_ENDED);
    event.occurred_at = (char *)s_str(occurred);
    event.from_number = (char *)s_str(from);
    event.to_number = (char *)s_str(s_col(row, C_TO));
    event.agent_extension = (char *)s_str(s_col(row, C_EXT));
    event.has_operator_id = true;
    event.operator_id = strtoll(s_col(row, C_OP_ID), NULL, 10);
    event.operator_login = (char *)s_str(s_col(row, C_OP_LOGIN));
    event.operator_name = (char *)s_str(s_col(row, C_OP_NAME));
    event.transfer_to = (char *)s_str(s_col(row, C_TRANSFER));
    event.ringing_at = (char *)s_str(s_col(row, C_RINGING));
    event.answered_at = (char *)s_str(s_col(row, C_ANSWERED));
    event.ended_at = (char *)s_str(s_col(row, C_ENDED));
    event.channel = "phone";
    event.has_version = true;
    event.version = version;
    return ncc_outbox_add(self->db, ctx, &event.base) < 0 ? -EIO : 0;
}

/* The screen pop and the other pushes of a state reached. */
static int s_push(calls_t *self, const ncc_ctx_t *ctx, const char *call_id, const char *state,
                  PGresult *row, const char *from, const cJSON *records)
{
    int64_t operator_id = strtoll(s_col(row, C_OP_ID), NULL, 10);
    cJSON *data = cJSON_CreateObject();
    if (!data)
        return -ENOMEM;
    cJSON_AddStringToObject(data, "call_id", call_id);
    cJSON_AddStringToObject(data, "state", state);
    cJSON_AddStringToObject(data, "to_number", s_str(s_col(row, C_TO)));
    cJSON_AddStringToObject(data, "ringing_at", s_str(s_col(row, C_RINGING)));
    int rc = 0;
    if (strcmp(state, "ringing") == 0) {
        /* The floor: a call is waiting (no caller number). */
        rc = calls_push(self, ctx, 0, "supervisor", "call.ringing", data);
    } else if (operator_id > 0) {
        cJSON_AddStringToObject(data, "from_number", s_str(from));
        cJSON_AddStringToObject(data, "answered_at", s_str(s_col(row, C_ANSWERED)));
        cJSON_AddStringToObject(data, "agent_extension", s_str(s_col(row, C_EXT)));
        cJSON_AddNumberToObject(data, "operator_id", (double)operator_id);
        cJSON_AddStringToObject(data, "operator_name", s_str(s_col(row, C_OP_NAME)));
        const char *event = "call.ended";
        if (strcmp(state, "answered") == 0) {
            event = "call.answered";
            const cJSON *items = cJSON_GetObjectItemCaseSensitive(records, "items");
            cJSON_AddItemToObject(data, "records",
                                  items ? cJSON_Duplicate(items, true) : cJSON_CreateArray());
            cJSON_AddBoolToObject(data, "records_available", records != NULL);
        } else if (strcmp(state, "transferred") == 0) {
            event = "call.transferred";
            cJSON_AddStringToObject(data, "transfer_to", s_str(s_col(row, C_TRANSFER)));
        } else {
            cJSON_AddStringToObject(data, "ended_at", s_str(s_col(row, C_ENDED)));
        }
        rc = calls_push(self, ctx, operator_id, NULL, event, data);
    }
    cJSON_Delete(data);
    return rc;
}

static void s_reply_ack(ncc_reply_t *reply, const char *event_id, const char *call_id,
                        const char *state, bool duplicate)
{
    Ncc__Calls__PbxEventAck ack = NCC__CALLS__PBX_EVENT_ACK__INIT;
    ack.event_id = (char *)event_id;
    ack.call_id = (char *)call_id;
    ack.state = (char *)state;
    ack.has_duplicate = true;
    ack.duplicate = duplicate;
    ncc_reply_message(reply, &ack.base);
}

static void s_on_event(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    calls_t *self = arg;
    const Ncc__Calls__PbxEvent *m = (const Ncc__Calls__PbxEvent *)request->message;
    const char *field = NULL;
    const char *why = s_check(m, &field);
    if (why) {
        ncc_reply_error(reply, 422, "invalid_field", field, "%s", why);
        return;
    }
    if (!self->keyring) {
        ncc_reply_error(reply, 503, "service_unavailable", NULL,
                        "no data keys (NCC_DATA_KEYS): calls cannot be stored");
        return;
    }
    bool answer = strcmp(m->type, "answered") == 0;
    s_operator_t op;
    s_operator(self, answer ? m->agent_extension : NULL, &op);
    cJSON *records = answer ? s_caller_records(self, m->from) : NULL;

    char *from_enc = NULL, from_index[65] = "", key[40];
    const char *from = m->from && *m->from ? m->from : NULL;
    if (from) {
        calls_number_key(from, key, sizeof key);
        from_enc = ncc_encrypt(self->keyring, CALLS_FROM_CONTEXT, from, strlen(from));
        if (!from_enc ||
            ncc_blind_index(self->keyring, CALLS_FROM_INDEX_CONTEXT, key, from_index) < 0) {
            free(from_enc);
            cJSON_Delete(records);
            ncc_reply_error(reply, 500, "internal", NULL, "could not encrypt the caller's number");
            return;
        }
    }

    ncc_ctx_t ctx = ncc_request_ctx(request);
    PGresult *before = NULL, *after = NULL, *res = NULL;
    char *plain_from = NULL;
    if (ncc_db_begin(self->db) < 0)
        goto db_error;
    const char *event_params[] = {m->event_id, m->call_id, m->type, m->occurred_at};
    res = ncc_db_exec(self->db,
                      "INSERT INTO call_events (event_id, call_id, type, occurred_at) VALUES ($1, "
                      "$2, $3, $4::timestamptz) ON CONFLICT (event_id) DO NOTHING RETURNING 1",
                      4, event_params, NULL);
    if (!res)
        goto db_error;
    bool fresh = PQntuples(res) > 0;
    PQclear(res);
    res = NULL;
    const char *call_params[] = {m->call_id};
    if (!fresh) {
        ncc_db_rollback(self->db);
        res = ncc_db_exec(self->db, "SELECT state FROM calls WHERE call_id = $1", 1, call_params,
                          NULL);
        s_reply_ack(reply, m->event_id, m->call_id,
                    res && PQntuples(res) ? PQgetvalue(res, 0, 0) : "", true);
        goto out;
    }
    if (ncc_db_run(self->db,
                   "INSERT INTO calls (call_id, ringing_at) VALUES ($1, $2::timestamptz) ON "
                   "CONFLICT (call_id) DO NOTHING",
                   2, (const char *[]){m->call_id, m->occurred_at}) < 0)
        goto db_error;
    before =
        ncc_db_exec(self->db, "SELECT " S_CALL_COLUMNS " FROM calls WHERE call_id = $1 FOR UPDATE",
                    1, call_params, NULL);
    if (!before || PQntuples(before) != 1)
        goto db_error;

    char op_id[24];
    snprintf(op_id, sizeof op_id, "%" PRId64, op.id);
    const char *fold_params[] = {
        m->call_id,
        m->type,
        m->occurred_at,
        from_enc,
        from ? from_index : NULL,
        s_str(m->to),
        s_str(m->agent_extension),
        op_id,
        op.login,
        op.name,
        s_str(m->transfer_to),
    };
    /* The fold: earliest ringing and answer (the answering operator with it),
     * latest transfer and end; the number and DNIS from whichever event has
     * them first. The state follows from the times. */
    after = ncc_db_exec(
        self->db,
        "WITH e AS (SELECT $3::timestamptz AS at), u AS (UPDATE calls c SET "
        "ringing_at = least(c.ringing_at, e.at), "
        "answered_at = CASE WHEN $2 = 'answered' THEN least(c.answered_at, e.at) ELSE "
        "c.answered_at END, "
        "agent_extension = CASE WHEN $2 = 'answered' AND $7 <> '' AND (c.answered_at IS NULL OR "
        "e.at < c.answered_at) THEN $7 ELSE c.agent_extension END, "
        "operator_id = CASE WHEN $2 = 'answered' AND $7 <> '' AND (c.answered_at IS NULL OR "
        "e.at < c.answered_at) THEN nullif($8::bigint, 0) ELSE c.operator_id END, "
        "operator_login = CASE WHEN $2 = 'answered' AND $7 <> '' AND (c.answered_at IS NULL OR "
        "e.at < c.answered_at) THEN $9 ELSE c.operator_login END, "
        "operator_name = CASE WHEN $2 = 'answered' AND $7 <> '' AND (c.answered_at IS NULL OR "
        "e.at < c.answered_at) THEN $10 ELSE c.operator_name END, "
        "transfer_to = CASE WHEN $2 = 'transferred' AND (c.transferred_at IS NULL OR e.at >= "
        "c.transferred_at) THEN $11 ELSE c.transfer_to END, "
        "transferred_at = CASE WHEN $2 = 'transferred' THEN greatest(c.transferred_at, e.at) "
        "ELSE c.transferred_at END, "
        "ended_at = CASE WHEN $2 = 'ended' THEN greatest(c.ended_at, e.at) ELSE c.ended_at END, "
        "from_enc = coalesce(c.from_enc, $4), from_index = coalesce(c.from_index, $5), "
        "to_number = CASE WHEN c.to_number = '' THEN $6 ELSE c.to_number END, "
        "updated_at = now() FROM e WHERE c.call_id = $1 RETURNING c.id) "
        "SELECT 1 FROM u",
        11, fold_params, NULL);
    if (!after)
        goto db_error;
    PQclear(after);
    after = ncc_db_exec(
        self->db,
        "UPDATE calls SET state = CASE WHEN ended_at IS NOT NULL THEN CASE WHEN "
        "answered_at IS NOT NULL THEN 'ended' ELSE 'abandoned' END WHEN "
        "transferred_at IS NOT NULL THEN 'transferred' WHEN answered_at IS NOT "
        "NULL THEN 'answered' ELSE 'ringing' END WHERE call_id = $1 RETURNING " S_CALL_COLUMNS,
        1, call_params, NULL);
    if (!after || PQntuples(after) != 1)
        goto db_error;

    /* What the event changed, in the order things happen; a call is always
     * reported ringing first, whichever event announced it. */
    const char *reached[4];
    size_t n = 0;
    int64_t version = strtoll(s_col(before, C_VERSION), NULL, 10);
    if (version == 0)
        reached[n++] = "ringing";
    if (!s_col(before, C_ANSWERED) && s_col(after, C_ANSWERED))
        reached[n++] = "answered";
    if (s_differs(s_col(before, C_TRANSFERRED), s_col(after, C_TRANSFERRED)))
        reached[n++] = "transferred";
    const char *state = s_col(after, C_STATE);
    bool final = strcmp(state, "ended") == 0 || strcmp(state, "abandoned") == 0;
    if (final && (s_differs(s_col(before, C_ENDED), s_col(after, C_ENDED)) ||
                  strcmp(s_col(before, C_STATE), state) != 0))
        reached[n++] = state;

    if (from) {
        plain_from = strdup(from);
    } else if (s_col(after, C_FROM)) {
        plain_from = ncc_decrypt(self->keyring, CALLS_FROM_CONTEXT, s_col(after, C_FROM), NULL);
    }
    for (size_t i = 0; i < n; i++) {
        version++;
        if (s_publish(self, &ctx, m->call_id, reached[i], after, plain_from, version) < 0 ||
            s_push(self, &ctx, m->call_id, reached[i], after, plain_from, records) < 0)
            goto db_error;
    }
    if (strcmp(m->type, "recording_ready") == 0 &&
        calls_recording_queue(self, m->call_id, m->recording_url) < 0)
        goto db_error;
    char version_text[24];
    snprintf(version_text, sizeof version_text, "%" PRId64, version);
    if (ncc_db_run(self->db, "UPDATE calls SET version = $2::bigint WHERE call_id = $1", 2,
                   (const char *[]){m->call_id, version_text}) < 0 ||
        ncc_db_commit(self->db) < 0)
        goto db_error;
    calls_flush(self);
    s_reply_ack(reply, m->event_id, m->call_id, state, false);
    goto out;

db_error:
    calls_reply_db_error(self, reply, "pbx event");
out:
    if (res)
        PQclear(res);
    if (before)
        PQclear(before);
    if (after)
        PQclear(after);
    free(from_enc);
    free(plain_from);
    cJSON_Delete(records);
}

int calls_events_register(calls_t *self)
{
    return ncc_service_on(self->service, &ncc__calls__pbx_event__descriptor, NCC_ROLE_SYSTEM,
                          s_on_event, self);
}
