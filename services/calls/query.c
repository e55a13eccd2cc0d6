/* query: GET /api/v1/calls and GET /api/v1/calls/{call_id} (with the
 * transcript). Operators see the calls they answered; supervisors, admins and
 * ward staff every call. The caller's number and the transcript are
 * decrypted here for the answer (the gateway audits these reads). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calls.h"
#include "ncc/crypto.h"
#include "ncc/roles.h"
#include "ncc/time.h"

#define S_COLUMNS                                                                                  \
    "call_id, state, from_enc, to_number, agent_extension, coalesce(operator_id, 0), "             \
    "operator_name, transfer_to, " CALLS_RFC3339("ringing_at") ", " CALLS_RFC3339(                 \
        "answered_at") ", " CALLS_RFC3339("ended_at") ", coalesce(extract(epoch FROM "             \
                                                      "(ended_at - answered_at))::int, 0), "       \
                                                      "version"

/* Fills call from row r (strings borrowed from res or *ret_from, which the
 * caller frees). */
static void s_fill(calls_t *self, PGresult *res, int r, Ncc__Calls__Call *call, char **ret_from)
{
    ncc__calls__call__init(call);
#define S_TEXT(i) (PQgetisnull(res, r, i) ? NULL : PQgetvalue(res, r, i))
    call->call_id = S_TEXT(0);
    call->state = S_TEXT(1);
    *ret_from = S_TEXT(2) && self->keyring
                    ? ncc_decrypt(self->keyring, CALLS_FROM_CONTEXT, S_TEXT(2), NULL)
                    : NULL;
    call->from_number = *ret_from;
    call->to_number = S_TEXT(3);
    call->agent_extension = S_TEXT(4);
    call->has_operator_id = true;
    call->operator_id = strtoll(PQgetvalue(res, r, 5), NULL, 10);
    call->operator_name = S_TEXT(6);
    call->transfer_to = S_TEXT(7);
    call->ringing_at = S_TEXT(8);
    call->answered_at = S_TEXT(9);
    call->ended_at = S_TEXT(10);
    call->has_talk_seconds = true;
    call->talk_seconds = (int32_t)strtol(PQgetvalue(res, r, 11), NULL, 10);
    call->has_version = true;
    call->version = strtoll(PQgetvalue(res, r, 12), NULL, 10);
#undef S_TEXT
}

/* Operators only see their own calls: the actor's id, or NULL for roles that
 * see every call. */
static const char *s_own(const ncc_request_t *request)
{
    ncc_actor_t actor = ncc_request_actor(request);
    if (actor.roles & (NCC_ROLE_SUPERVISOR | NCC_ROLE_ADMIN | NCC_ROLE_STAFF | NCC_ROLE_SYSTEM))
        return NULL;
    return actor.id;
}

static void s_on_list(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    calls_t *self = arg;
    const Ncc__Calls__ListCalls *m = (const Ncc__Calls__ListCalls *)request->message;
    const char *state = m->state && *m->state ? m->state : NULL;
    if (state && strcmp(state, "active") != 0 && strcmp(state, "ended") != 0) {
        ncc_reply_error(reply, 422, "invalid_field", "state", "state is active or ended");
        return;
    }
    const char *fields[] = {"from", "to"};
    const char *values[] = {m->from && *m->from ? m->from : NULL, m->to && *m->to ? m->to : NULL};
    for (size_t i = 0; i < 2; i++) {
        if (values[i] && !ncc_rfc3339_valid(values[i])) {
            ncc_reply_error(reply, 422, "invalid_field", fields[i],
                            "%s is an RFC 3339 time with an offset", fields[i]);
            return;
        }
    }
    int per_page = m->has_per_page ? m->per_page : 50;
    int page = m->has_page ? m->page : 1;
    if (per_page < 1 || per_page > 500 || page < 1 || page > 1000000) {
        ncc_reply_error(reply, 422, "invalid_field",
                        per_page < 1 || per_page > 500 ? "per_page" : "page",
                        "per_page is 1 to 500, page 1 or more");
        return;
    }
    char limit[16], offset[24];
    snprintf(limit, sizeof limit, "%d", per_page);
    snprintf(offset, sizeof offset, "%" PRId64, (int64_t)(page - 1) * per_page);
    const char *params[] = {state, values[0], values[1], s_own(request), limit, offset};
    PGresult *res = ncc_db_exec(
        self->db,
        "SELECT " S_COLUMNS ", count(*) OVER () FROM calls WHERE ($1::text IS NULL OR ($1 = "
        "'active') = (state IN ('ringing', 'answered', 'transferred'))) AND ($2::timestamptz IS "
        "NULL OR ringing_at >= $2::timestamptz) AND ($3::timestamptz IS NULL OR ringing_at < "
        "$3::timestamptz) AND ($4::bigint IS NULL OR operator_id = $4::bigint) ORDER BY "
        "ringing_at DESC, id DESC LIMIT $5::int OFFSET $6::bigint",
        6, params, NULL);
    if (!res) {
        calls_reply_db_error(self, reply, "list calls");
        return;
    }
    int n = PQntuples(res);
    Ncc__Calls__Call *calls = calloc((size_t)n + 1, sizeof *calls);
    Ncc__Calls__Call **ptrs = calloc((size_t)n + 1, sizeof *ptrs);
    char **froms = calloc((size_t)n + 1, sizeof *froms);
    if (!calls || !ptrs || !froms) {
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
    } else {
        for (int i = 0; i < n; i++) {
            s_fill(self, res, i, &calls[i], &froms[i]);
            ptrs[i] = &calls[i];
        }
        Ncc__Calls__CallList list = NCC__CALLS__CALL_LIST__INIT;
        list.n_items = (size_t)n;
        list.items = ptrs;
        list.has_total = true;
        list.total = n ? strtoll(PQgetvalue(res, 0, 13), NULL, 10) : 0;
        ncc_reply_message(reply, &list.base);
    }
    for (int i = 0; froms && i < n; i++)
        free(froms[i]);
    free(froms);
    free(ptrs);
    free(calls);
    PQclear(res);
}

static void s_on_get(void *arg, const ncc_request_t *request, ncc_reply_t *reply)
{
    calls_t *self = arg;
    const Ncc__Calls__GetCall *m = (const Ncc__Calls__GetCall *)request->message;
    if (!m->call_id || !calls_id_ok(m->call_id)) {
        ncc_reply_error(reply, 422, "invalid_field", "call_id", "call_id is malformed");
        return;
    }
    const char *own = s_own(request);
    const char *params[] = {m->call_id, own};
    PGresult *res = ncc_db_exec(self->db,
                                "SELECT " S_COLUMNS " FROM calls WHERE call_id = $1 AND "
                                "($2::bigint IS NULL OR operator_id = $2::bigint)",
                                2, params, NULL);
    if (!res) {
        calls_reply_db_error(self, reply, "get call");
        return;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        ncc_reply_error(reply, 404, "not_found", "call_id", "no call %s", m->call_id);
        return;
    }
    PGresult *segs = ncc_db_exec(self->db,
                                 "SELECT seq, speaker, start_ms, end_ms, text_enc FROM "
                                 "transcript_segments WHERE call_id = $1 ORDER BY seq",
                                 1, params, NULL);
    if (!segs) {
        PQclear(res);
        calls_reply_db_error(self, reply, "get call transcript");
        return;
    }
    Ncc__Calls__Call call;
    char *from = NULL;
    s_fill(self, res, 0, &call, &from);
    int n = PQntuples(segs);
    Ncc__Calls__TranscriptSegment *items = calloc((size_t)n + 1, sizeof *items);
    Ncc__Calls__TranscriptSegment **ptrs = calloc((size_t)n + 1, sizeof *ptrs);
    char **texts = calloc((size_t)n + 1, sizeof *texts);
    if (!items || !ptrs || !texts) {
        ncc_reply_error(reply, 500, "internal", NULL, "out of memory");
    } else {
        for (int i = 0; i < n; i++) {
            Ncc__Calls__TranscriptSegment *s = &items[i];
            ncc__calls__transcript_segment__init(s);
            s->has_seq = s->has_start_ms = s->has_end_ms = true;
            s->seq = (int32_t)strtol(PQgetvalue(segs, i, 0), NULL, 10);
            s->speaker = PQgetvalue(segs, i, 1);
            s->start_ms = (int32_t)strtol(PQgetvalue(segs, i, 2), NULL, 10);
            s->end_ms = (int32_t)strtol(PQgetvalue(segs, i, 3), NULL, 10);
            texts[i] = self->keyring ? ncc_decrypt(self->keyring, CALLS_TEXT_CONTEXT,
                                                   PQgetvalue(segs, i, 4), NULL)
                                     : NULL;
            s->text = texts[i] ? texts[i] : "";
            ptrs[i] = s;
        }
        call.n_transcript = (size_t)n;
        call.transcript = ptrs;
        ncc_reply_message(reply, &call.base);
    }
    for (int i = 0; texts && i < n; i++)
        free(texts[i]);
    free(texts);
    free(ptrs);
    free(items);
    free(from);
    PQclear(segs);
    PQclear(res);
}

int calls_query_register(calls_t *self)
{
    const unsigned roles = NCC_ROLES_USERS | NCC_ROLE_SYSTEM;
    if (ncc_service_on(self->service, &ncc__calls__list_calls__descriptor, roles, s_on_list, self) <
            0 ||
        ncc_service_on(self->service, &ncc__calls__get_call__descriptor, roles, s_on_get, self) < 0)
        return -EINVAL;
    return 0;
}
