/* export: streamed CSV answers, page by page over the bus (export.h). */
#include "export.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "ncc/json.h"
#include "ncc/log.h"
#include "ncc/registry.h"

#define S_MAX_PAGES 1000000 /* a runaway service cannot keep a worker forever */

/* ---- message fields by name ------------------------------------------------------------ */

static const ProtobufCFieldDescriptor *s_field(const ProtobufCMessage *m, const char *name,
                                               ProtobufCType type)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
    return f && f->type == type && f->label != PROTOBUF_C_LABEL_REPEATED ? f : NULL;
}

static bool s_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    if (f->label != PROTOBUF_C_LABEL_OPTIONAL || f->type == PROTOBUF_C_TYPE_STRING ||
        f->type == PROTOBUF_C_TYPE_MESSAGE)
        return true;
    return *(const protobuf_c_boolean *)((const char *)m + f->quantifier_offset);
}

static const char *s_string(const ProtobufCMessage *m, const char *name)
{
    const ProtobufCFieldDescriptor *f = s_field(m, name, PROTOBUF_C_TYPE_STRING);
    return f ? *(const char *const *)((const char *)m + f->offset) : NULL;
}

static bool s_bytes(const ProtobufCMessage *m, const char *name, const uint8_t **ret_data,
                    size_t *ret_len)
{
    const ProtobufCFieldDescriptor *f = s_field(m, name, PROTOBUF_C_TYPE_BYTES);
    if (!f || !s_present(m, f))
        return false;
    const ProtobufCBinaryData *data = (const void *)((const char *)m + f->offset);
    *ret_data = data->data;
    *ret_len = data->len;
    return true;
}

static bool s_bool(const ProtobufCMessage *m, const char *name)
{
    const ProtobufCFieldDescriptor *f = s_field(m, name, PROTOBUF_C_TYPE_BOOL);
    return f && s_present(m, f) && *(const protobuf_c_boolean *)((const char *)m + f->offset);
}

static bool s_int64(const ProtobufCMessage *m, const char *name, int64_t *ret)
{
    const ProtobufCFieldDescriptor *f = s_field(m, name, PROTOBUF_C_TYPE_INT64);
    if (!f || !s_present(m, f))
        return false;
    *ret = *(const int64_t *)((const char *)m + f->offset);
    return true;
}

/* Sets the request's string field `name` to a copy of value. 0 or -ENOMEM/-EINVAL. */
static int s_set_string(ProtobufCMessage *m, const char *name, const char *value)
{
    const ProtobufCFieldDescriptor *f = s_field(m, name, PROTOBUF_C_TYPE_STRING);
    if (!f)
        return -EINVAL;
    char *copy = strdup(value ? value : "");
    if (!copy)
        return -ENOMEM;
    char **slot = (char **)((char *)m + f->offset);
    if (*slot && *slot != (const char *)f->default_value)
        free(*slot);
    *slot = copy;
    return 0;
}

/* ---- the request --------------------------------------------------------------------------- */

/* The query string as a JSON object of strings (a key given twice: an array). */
static cJSON *s_query(const char *query_string)
{
    cJSON *query = cJSON_CreateObject();
    size_t total = query_string ? strlen(query_string) : 0;
    char *key = malloc(total + 1), *value = malloc(total + 1);
    if (!query || !key || !value)
        goto fail;
    for (const char *pair = query_string ? query_string : ""; *pair;) {
        size_t len = strcspn(pair, "&");
        const char *eq = memchr(pair, '=', len);
        size_t key_len = eq ? (size_t)(eq - pair) : len;
        if (key_len > 0) {
            int k = mg_url_decode(pair, (int)key_len, key, (int)total + 1, 1);
            int v =
                eq ? mg_url_decode(eq + 1, (int)(len - key_len - 1), value, (int)total + 1, 1) : 0;
            if (k < 0 || v < 0)
                goto fail;
            value[v] = '\0';
            if (strlen(key) != (size_t)k || strlen(value) != (size_t)v)
                goto fail; /* %00 */
            cJSON *item = cJSON_CreateString(value);
            cJSON *existing = cJSON_GetObjectItemCaseSensitive(query, key);
            if (!item)
                goto fail;
            if (!existing) {
                cJSON_AddItemToObject(query, key, item);
            } else if (cJSON_IsArray(existing)) {
                cJSON_AddItemToArray(existing, item);
            } else {
                cJSON *array = cJSON_CreateArray();
                if (!array) {
                    cJSON_Delete(item);
                    goto fail;
                }
                cJSON_AddItemToArray(array, cJSON_Duplicate(existing, true));
                cJSON_AddItemToArray(array, item);
                cJSON_ReplaceItemInObjectCaseSensitive(query, key, array);
            }
        }
        pair += len;
        if (*pair == '&')
            pair++;
    }
    free(key);
    free(value);
    return query;
fail:
    free(key);
    free(value);
    cJSON_Delete(query);
    return NULL;
}

/* ---- answers ------------------------------------------------------------------------------- */

/* An error answer, audited when the route is (its status is returned). */
static int s_audited(gw_api_t *api, gw_request_t *req, int status)
{
    if ((req->match->route->flags & GW_ROUTE_AUDIT) && req->has_session) {
        int rc = gw_auth_audit(api, req, status, req->thread->error_code);
        if (rc < 0)
            ncc_error("audit.append_failed", "%s by user %s, status %d: not audited: %s",
                      req->match->route->action, req->session.user_id_text, status, strerror(-rc));
    }
    return status;
}

/* The headers of the file (chunked). 0 or -EIO. */
static int s_start(struct mg_connection *conn, gw_thread_t *thread, const ProtobufCMessage *page)
{
    const char *encoding = s_string(page, "encoding");
    bool sjis = encoding && strcmp(encoding, "shift_jis") == 0;
    const char *name = s_string(page, "filename");
    char filename[80] = "export.csv";
    size_t name_len = name ? strlen(name) : 0;
    if (name_len > 0 && name_len < sizeof filename && name[0] != '.') {
        bool plain = true;
        for (size_t i = 0; i < name_len; i++)
            plain = plain && (isalnum((unsigned char)name[i]) || name[i] == '.' || name[i] == '_' ||
                              name[i] == '-');
        if (plain)
            snprintf(filename, sizeof filename, "%s", name);
    }
    char disposition[128], export_id[24];
    snprintf(disposition, sizeof disposition, "attachment; filename=\"%s\"", filename);
    int64_t id = 0;
    mg_response_header_start(conn, 200);
    mg_response_header_add(conn, "Content-Type",
                           sjis ? "text/csv; charset=shift_jis" : "text/csv; charset=utf-8", -1);
    mg_response_header_add(conn, "Content-Disposition", disposition, -1);
    mg_response_header_add(conn, "Transfer-Encoding", "chunked", -1);
    mg_response_header_add(conn, "X-Accel-Buffering", "no", -1);
    gw_http_common_headers(conn); /* no-store, security headers, HSTS, X-Request-Id */
    if (s_int64(page, "export_id", &id) && id > 0) {
        snprintf(export_id, sizeof export_id, "%lld", (long long)id);
        mg_response_header_add(conn, "X-NCC-Export-Id", export_id, -1);
    }
    return mg_response_header_send(conn) < 0 ? -EIO : 0;
}

int gw_export_stream(gw_api_t *api, gw_request_t *req)
{
    struct mg_connection *conn = req->conn;
    const gw_route_t *route = req->match->route;
    const ProtobufCMessageDescriptor *desc = ncc_registry_find(route->request_type);
    ProtobufCMessage *request = NULL, *page = NULL;
    Ncc__Envelope *reply = NULL;
    cJSON *query = NULL;
    int status;
    if (!desc || !protobuf_c_message_descriptor_get_field_by_name(desc, "cursor")) {
        ncc_error("api.bad_route", "%s %s: %s has no cursor", route->method, route->pattern,
                  route->request_type);
        status = gw_http_send_error(conn, 500, "internal", NULL, "this endpoint is misconfigured");
        return s_audited(api, req, status);
    }
    query = s_query(req->info->query_string);
    if (!query) {
        status = gw_http_send_error(conn, 400, "invalid_query", NULL,
                                    "the query string cannot be read (a NUL byte?)");
        return s_audited(api, req, status);
    }
    ncc_json_error_t err;
    if (cJSON_GetObjectItemCaseSensitive(query, "cursor")) {
        cJSON_Delete(query);
        status = gw_http_send_error(conn, 400, "invalid_field", "cursor",
                                    "the export pages itself: no cursor in the query");
        return s_audited(api, req, status);
    }
    if (ncc_json_to_pb(desc, query, NCC_JSON_STRINGS_AS_SCALARS, &request, &err) < 0) {
        cJSON_Delete(query);
        status = gw_http_send_error(conn, strcmp(err.code, "out_of_memory") == 0 ? 500 : 422,
                                    err.code[0] ? err.code : "invalid_field", err.field, "%s",
                                    err.message);
        return s_audited(api, req, status);
    }
    cJSON_Delete(query);

    ncc_ctx_t ctx = gw_auth_user_ctx(req);
    bool started = false, complete = false;
    const char *failure = NULL;
    long long pages = 0, bytes = 0;
    char *cursor = NULL;
    status = 200;
    mg_disable_connection_keep_alive(conn); /* a cut stream must close the connection */
    for (;;) {
        int rc = gw_api_rpc(api, req, route->service, &ctx, request, &reply);
        if (rc < 0) {
            failure = "no answer";
            if (!started) {
                status = gw_http_send_error(conn, 503, "service_unavailable", NULL,
                                            "the %s service did not answer", route->service);
                status = s_audited(api, req, status);
            }
            break;
        }
        if (reply->type && strcmp(reply->type, ncc__error__descriptor.name) == 0) {
            failure = "an error";
            if (!started)
                status = s_audited(api, req, gw_api_send_error_reply(req, route->service, reply));
            break;
        }
        const ProtobufCMessageDescriptor *page_desc =
            reply->type ? ncc_registry_find(reply->type) : NULL;
        page = page_desc ? protobuf_c_message_unpack(page_desc, NULL,
                                                     reply->has_payload ? reply->payload.len : 0,
                                                     reply->payload.data)
                         : NULL;
        if (!page) {
            failure = "an unreadable page";
            if (!started)
                status = s_audited(api, req,
                                   gw_http_send_error(conn, 502, "bad_gateway", NULL,
                                                      "the %s service sent an unreadable answer",
                                                      route->service));
            break;
        }
        if (!started) {
            /* The first page is in hand: audit, then the headers. */
            if ((route->flags & GW_ROUTE_AUDIT) && gw_auth_audit(api, req, 200, "") < 0) {
                ncc_error("audit.append_failed", "%s by user %s: not audited; answered 503",
                          route->action, req->session.user_id_text);
                status = gw_http_send_error(conn, 503, "audit_unavailable", NULL,
                                            "the audit log cannot be written; nothing is "
                                            "answered without it");
                break;
            }
            if (s_start(conn, req->thread, page) < 0) {
                failure = "the client went away";
                break;
            }
            started = true;
        }
        const uint8_t *data = NULL;
        size_t len = 0;
        if (s_bytes(page, route->raw ? route->raw->field : "csv", &data, &len) && len > 0) {
            if (mg_send_chunk(conn, (const char *)data, (unsigned)len) < 0) {
                failure = "the client went away";
                break;
            }
            bytes += (long long)len;
        }
        pages++;
        if (s_bool(page, "done")) {
            complete = mg_send_chunk(conn, "", 0) >= 0;
            if (!complete)
                failure = "the client went away";
            break;
        }
        const char *next = s_string(page, "cursor");
        if (!next || !*next || (cursor && strcmp(cursor, next) == 0) || pages >= S_MAX_PAGES) {
            failure = "a page without a new cursor";
            break;
        }
        free(cursor);
        cursor = strdup(next);
        if (!cursor || s_set_string(request, "cursor", next) < 0) {
            failure = "out of memory";
            break;
        }
        protobuf_c_message_free_unpacked(page, NULL);
        page = NULL;
        ncc__envelope__free_unpacked(reply, NULL);
        reply = NULL;
    }
    if (started && !complete)
        ncc_warn("export.cut", "%s %s: %s after %lld pages (%lld bytes): the download is cut",
                 route->method, route->pattern, failure ? failure : "a failure", pages, bytes);
    else if (started)
        ncc_info("export.done", "%s %s: %lld pages, %lld bytes", route->method, route->pattern,
                 pages, bytes);
    free(cursor);
    if (page)
        protobuf_c_message_free_unpacked(page, NULL);
    if (reply)
        ncc__envelope__free_unpacked(reply, NULL);
    protobuf_c_message_free_unpacked(request, NULL);
    return status;
}
