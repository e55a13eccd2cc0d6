/* file: answers made of parts on the bus (file.h). */
#include "file.h"

#include <civetweb.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "calls.pb-c.h"
#include "ncc/log.h"

/* Asks part `part` of the recording; 0 with *ret_part, or the status of the
 * error answer already sent (> 0; only before the first byte). */
static int s_part(gw_api_t *api, gw_request_t *req, const char *call_id, int part,
                  Ncc__Calls__RecordingPart **ret_part, bool answer_errors)
{
    Ncc__Calls__GetRecordingPart get = NCC__CALLS__GET_RECORDING_PART__INIT;
    get.call_id = (char *)call_id;
    get.has_part = true;
    get.part = part;
    ncc_ctx_t ctx = gw_auth_user_ctx(req);
    Ncc__Envelope *reply = NULL;
    int rc = gw_api_rpc(api, req, "calls", &ctx, &get.base, &reply);
    if (rc < 0)
        return answer_errors ? gw_http_send_error(req->conn, 503, "service_unavailable", NULL,
                                                  "the calls service did not answer")
                             : 503;
    int status = 0;
    if (!reply->type || strcmp(reply->type, ncc__calls__recording_part__descriptor.name) != 0) {
        status = answer_errors ? gw_api_send_error_reply(req, "calls", reply) : 502;
    } else {
        *ret_part = ncc__calls__recording_part__unpack(
            NULL, reply->has_payload ? reply->payload.len : 0, reply->payload.data);
        if (!*ret_part)
            status = answer_errors ? gw_http_send_error(req->conn, 502, "bad_gateway", NULL,
                                                        "the calls service answered garbage")
                                   : 502;
    }
    ncc__envelope__free_unpacked(reply, NULL);
    return status;
}

int gw_file_serve(gw_api_t *api, gw_request_t *req)
{
    const gw_route_t *route = req->match->route;
    bool audited = route->flags & GW_ROUTE_AUDIT;
    char call_id[160];
    if (!gw_route_param(req->match, "call_id", call_id, sizeof call_id))
        return gw_http_send_error(req->conn, 404, "not_found", "call_id", "no such call");
    Ncc__Calls__RecordingPart *part = NULL;
    int status = s_part(api, req, call_id, 0, &part, true);
    if (status > 0) {
        if (audited && gw_auth_audit(api, req, status, req->thread->error_code) < 0)
            ncc_error("audit.failed", "a refused %s was not audited", route->action);
        return status;
    }
    /* Audited before the first byte: no audit, no answer. */
    if (audited && gw_auth_audit(api, req, 200, "") < 0) {
        ncc__calls__recording_part__free_unpacked(part, NULL);
        return gw_http_send_error(req->conn, 503, "service_unavailable", NULL,
                                  "the access could not be audited");
    }
    char disposition[256];
    snprintf(disposition, sizeof disposition, "attachment; filename=\"%s\"",
             part->filename ? part->filename : "recording.bin");
    int parts = part->parts;
    if (gw_http_start_file(req->conn,
                           part->content_type && *part->content_type ? part->content_type
                                                                     : "application/octet-stream",
                           part->bytes, disposition) < 0) {
        ncc__calls__recording_part__free_unpacked(part, NULL);
        return 200;
    }
    bool ok = true;
    for (int n = 0; ok; n++) {
        if (n > 0) {
            part = NULL;
            if (s_part(api, req, call_id, n, &part, false) > 0) {
                ncc_warn("file.part_failed", "%s part %d of %d: the answer is cut", call_id, n,
                         parts);
                break; /* headers are sent: the client sees a short body */
            }
        }
        ok = mg_write(req->conn, part->data.data, part->data.len) == (int)part->data.len;
        ncc__calls__recording_part__free_unpacked(part, NULL);
        if (n + 1 >= parts)
            break;
    }
    return 200;
}
