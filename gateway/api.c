/* api: the generic /api/v1 handler, the health fan-out and /healthz (api.h). */
#include "api.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth.h"
#include "directory.pb-c.h"
#include "export.h"
#include "file.h"
#include "http.h"
#include "ncc/bus.h"
#include "ncc/json.h"
#include "ncc/log.h"
#include "ncc/metrics.h"
#include "ncc/registry.h"
#include "ncc/roles.h"
#include "ncc/service.h"
#include "ncc/webhook.h"
#include "push.h"
#include "routes.h"

struct gw_api {
    gw_sessions_t *sessions;               /* borrowed: the session store */
    const gw_cidr_list_t *staff_allow;     /* borrowed from the settings: NCC_STAFF_ALLOW_CIDRS */
    const gw_cidr_list_t *trusted_proxies; /* borrowed from the settings: NCC_TRUSTED_PROXIES */
    size_t service_count;                  /* services known (ncc_service_names) */
    const char *names[GW_MAX_SERVICES];    /* borrowed from ncc_service_names */
    char *endpoints[GW_MAX_SERVICES];      /* owned copies of NCC_<SERVICE>_RPC */
    atomic_int max_body_bytes;             /* NCC_MAX_BODY_BYTES (reloadable) */
    atomic_int bus_timeout_ms;             /* NCC_BUS_TIMEOUT_MS (reloadable) */
    atomic_int health_timeout_ms;          /* NCC_GATEWAY_HEALTH_TIMEOUT_MS (reloadable) */
    atomic_int in_flight;                  /* API requests being handled */
    atomic_bool draining;                  /* SIGTERM: refuse new API requests */
    char *pbx_secrets[4];                  /* NCC_PBX_WEBHOOK_SECRET, split at commas */
    size_t n_pbx_secrets;
    gw_push_t *push; /* GET /api/v1/stream */
};

static int64_t s_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* NCC_PBX_WEBHOOK_SECRET "a,b" into self->pbx_secrets (owned copies). */
static int s_split_secrets(gw_api_t *self, const char *list, char *err, size_t errlen)
{
    const size_t max = sizeof self->pbx_secrets / sizeof self->pbx_secrets[0];
    for (const char *p = list; p && *p;) {
        size_t len = strcspn(p, ",");
        if (len == 0 || self->n_pbx_secrets == max) {
            snprintf(err, errlen,
                     "NCC_PBX_WEBHOOK_SECRET: at most %zu non-empty secrets, comma-separated", max);
            return -EINVAL;
        }
        self->pbx_secrets[self->n_pbx_secrets] = strndup(p, len);
        if (!self->pbx_secrets[self->n_pbx_secrets++]) {
            snprintf(err, errlen, "out of memory");
            return -ENOMEM;
        }
        p += len + (p[len] == ',');
    }
    return 0;
}

gw_api_t *gw_api_new(const gw_settings_t *settings, gw_sessions_t *sessions, char *err,
                     size_t errlen)
{
    gw_api_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->sessions = sessions;
    if (s_split_secrets(self, settings->values.pbx_webhook_secret, err, errlen) < 0)
        goto fail;
    self->push = gw_push_new(settings, err, errlen);
    if (!self->push)
        goto fail;
    self->staff_allow = settings->staff_allow;
    self->trusted_proxies = settings->trusted_proxies;
    self->service_count = settings->service_count;
    for (size_t i = 0; i < self->service_count; i++) {
        self->names[i] = ncc_service_names[i];
        self->endpoints[i] = strdup(settings->values.rpc[i]);
        if (!self->endpoints[i]) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        /* A malformed endpoint list fails now, not on the first request. */
        ncc_rpc_client_t *probe = ncc_rpc_client_new(self->endpoints[i]);
        if (!probe) {
            snprintf(err, errlen, "the RPC endpoints of %s are malformed: \"%s\"", self->names[i],
                     self->endpoints[i]);
            goto fail;
        }
        ncc_rpc_client_destroy(&probe);
    }
    gw_api_set_limits(self, &settings->values);
    return self;
fail:
    gw_api_destroy(&self);
    return NULL;
}

void gw_api_destroy(gw_api_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gw_api_t *self = *self_p;
    gw_push_destroy(&self->push);
    for (size_t i = 0; i < GW_MAX_SERVICES; i++)
        free(self->endpoints[i]);
    for (size_t i = 0; i < self->n_pbx_secrets; i++)
        free(self->pbx_secrets[i]);
    free(self);
    *self_p = NULL;
}

void gw_api_set_limits(gw_api_t *self, const gw_settings_values_t *values)
{
    atomic_store(&self->max_body_bytes, values->max_body_bytes);
    atomic_store(&self->bus_timeout_ms, values->bus_timeout_ms);
    atomic_store(&self->health_timeout_ms, values->health_timeout_ms);
}

static int s_service_index(const gw_api_t *self, const char *name)
{
    for (size_t i = 0; i < self->service_count; i++)
        if (strcmp(self->names[i], name) == 0)
            return (int)i;
    return -1;
}

/* ---- request building ------------------------------------------------------- */

static bool s_method_has_body(const char *method)
{
    return strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
           strcmp(method, "PATCH") == 0;
}

/* "application/json", optionally followed by parameters (charset). */
static bool s_is_json_type(const char *content_type)
{
    static const char json[] = "application/json";
    if (!content_type || strncasecmp(content_type, json, sizeof json - 1) != 0)
        return false;
    char next = content_type[sizeof json - 1];
    return next == '\0' || next == ';' || next == ' ';
}

/* Adds one query pair to `query`: a key given twice becomes an array. */
static int s_query_add(cJSON *query, const char *key, const char *value)
{
    cJSON *item = cJSON_CreateString(value);
    if (!item)
        return -ENOMEM;
    cJSON *existing = cJSON_GetObjectItemCaseSensitive(query, key);
    if (!existing) {
        cJSON_AddItemToObject(query, key, item);
        return 0;
    }
    if (!cJSON_IsArray(existing)) {
        cJSON *array = cJSON_CreateArray();
        if (!array) {
            cJSON_Delete(item);
            return -ENOMEM;
        }
        cJSON_AddItemToArray(array, cJSON_Duplicate(existing, true));
        cJSON_ReplaceItemInObjectCaseSensitive(query, key, array);
        existing = array;
    }
    cJSON_AddItemToArray(existing, item);
    return 0;
}

/* The query string as a JSON object of strings (arrays for repeated keys)
 * into *ret_query (caller deletes). 0; -EINVAL when a decoded key or value
 * holds a NUL byte (%00), which a C string would silently cut; -ENOMEM. */
static int s_query_object(const char *query_string, cJSON **ret_query)
{
    int rc = -ENOMEM;
    char *key = NULL, *value = NULL;
    cJSON *query = cJSON_CreateObject();
    if (!query)
        goto out;
    size_t total = query_string ? strlen(query_string) : 0;
    key = malloc(total + 1);
    value = malloc(total + 1);
    if (!key || !value)
        goto out;
    for (const char *pair = query_string ? query_string : ""; *pair;) {
        size_t len = strcspn(pair, "&");
        const char *eq = memchr(pair, '=', len);
        size_t key_len = eq ? (size_t)(eq - pair) : len;
        if (key_len > 0) {
            int k = mg_url_decode(pair, (int)key_len, key, (int)total + 1, 1);
            int v =
                eq ? mg_url_decode(eq + 1, (int)(len - key_len - 1), value, (int)total + 1, 1) : 0;
            if (k < 0 || v < 0)
                goto out;
            value[v] = '\0';
            if (strlen(key) != (size_t)k || strlen(value) != (size_t)v) {
                rc = -EINVAL;
                goto out;
            }
            if (k > 0 && s_query_add(query, key, value) < 0)
                goto out;
        }
        pair += len;
        if (*pair == '&')
            pair++;
    }
    *ret_query = query;
    query = NULL;
    rc = 0;
out:
    free(key);
    free(value);
    cJSON_Delete(query);
    return rc;
}

/* ---- responses ---------------------------------------------------------------- */

static int s_send_json_error(struct mg_connection *conn, const ncc_json_error_t *err)
{
    int status = strcmp(err->code, "out_of_memory") == 0 ? 500 : 400;
    return gw_http_send_error(conn, status, err->code[0] ? err->code : "invalid_json", err->field,
                              "%s", err->message[0] ? err->message : "invalid request");
}

static int s_send_message(struct mg_connection *conn, int status, const ProtobufCMessage *message)
{
    char *text = ncc_pb_to_json_text(message);
    if (!text)
        return gw_http_send_error(conn, 500, "internal", NULL, "the reply cannot be written");
    gw_http_send(conn, status, GW_JSON_TYPE, text, strlen(text), NULL, NULL);
    free(text);
    return status;
}

/* The field `name` of a message when it is a set string or bytes (borrowed
 * into *ret_data, *ret_len); false otherwise. */
static bool s_message_text(const ProtobufCMessage *message, const char *name,
                           const uint8_t **ret_data, size_t *ret_len)
{
    const ProtobufCFieldDescriptor *field =
        protobuf_c_message_descriptor_get_field_by_name(message->descriptor, name);
    if (!field || field->label == PROTOBUF_C_LABEL_REPEATED)
        return false;
    const void *slot = (const char *)message + field->offset;
    if (field->type == PROTOBUF_C_TYPE_STRING) {
        const char *text = *(const char *const *)slot;
        if (!text)
            return false;
        *ret_data = (const uint8_t *)text;
        *ret_len = strlen(text);
        return true;
    }
    if (field->type == PROTOBUF_C_TYPE_BYTES) {
        const ProtobufCBinaryData *data = slot;
        *ret_data = data->data;
        *ret_len = data->len;
        return true;
    }
    return false;
}

/* A reply message that says its own HTTP status (an int32 field
 * http_status, 400..599, as ncc.directory.ImportResult does for a refused
 * file): the message as JSON without that field, with that status, so an
 * answer can carry more than {"error"} (the import's line-numbered errors).
 * 0 when the message has no such status. */
static int s_send_rich_error(struct mg_connection *conn, const ProtobufCMessage *message)
{
    const ProtobufCFieldDescriptor *field =
        protobuf_c_message_descriptor_get_field_by_name(message->descriptor, "http_status");
    if (!field || field->type != PROTOBUF_C_TYPE_INT32 ||
        field->label != PROTOBUF_C_LABEL_OPTIONAL ||
        !*(const protobuf_c_boolean *)((const char *)message + field->quantifier_offset))
        return 0;
    int status = *(const int32_t *)((const char *)message + field->offset);
    if (status < 400 || status > 599)
        return 0;
    cJSON *json = ncc_pb_to_json(message);
    char *text = NULL;
    if (json) {
        cJSON_DeleteItemFromObjectCaseSensitive(json, "http_status");
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(json, "error"), "code");
        gw_thread_t *thread = gw_thread_of(conn);
        if (thread && cJSON_IsString(code))
            snprintf(thread->error_code, sizeof thread->error_code, "%s", code->valuestring);
        text = cJSON_PrintUnformatted(json);
        cJSON_Delete(json);
    }
    if (!text)
        return gw_http_send_error(conn, 500, "internal", NULL, "the reply cannot be written");
    gw_http_send(conn, status, GW_JSON_TYPE, text, strlen(text), NULL, NULL);
    free(text);
    return status;
}

/* GW_ROUTE_CSV_REPLY: the reply's raw field as a text/csv attachment. */
static int s_send_file(struct mg_connection *conn, const gw_route_t *route,
                       const ProtobufCMessage *message)
{
    const uint8_t *data = NULL, *encoding = NULL, *name = NULL;
    size_t len = 0, encoding_len = 0, name_len = 0;
    if (!s_message_text(message, route->raw->field, &data, &len)) {
        ncc_error("api.bad_route", "%s %s: the reply has no field %s", route->method,
                  route->pattern, route->raw->field);
        return gw_http_send_error(conn, 502, "bad_gateway", NULL, "the answer holds no file");
    }
    bool sjis = s_message_text(message, "encoding", &encoding, &encoding_len) &&
                encoding_len == 9 && memcmp(encoding, "shift_jis", 9) == 0;
    /* The file name as given when it is plain: [A-Za-z0-9._-], else a default. */
    char filename[80] = "export.csv";
    if (s_message_text(message, "filename", &name, &name_len) && name_len > 0 &&
        name_len < sizeof filename && name[0] != '.') {
        bool plain = true;
        for (size_t i = 0; i < name_len; i++)
            plain =
                plain && (isalnum(name[i]) || name[i] == '.' || name[i] == '_' || name[i] == '-');
        if (plain) {
            memcpy(filename, name, name_len);
            filename[name_len] = '\0';
        }
    }
    char disposition[128];
    snprintf(disposition, sizeof disposition, "attachment; filename=\"%s\"", filename);
    const char *type = sjis ? "text/csv; charset=shift_jis" : "text/csv; charset=utf-8";
    size_t name_chars = strlen(filename);
    if (name_chars > 5 && strcmp(filename + name_chars - 5, ".xlsx") == 0) /* reports (kpi.md) */
        type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
    return gw_http_send(conn, 200, type, (const char *)data, len, "Content-Disposition",
                        disposition);
}

/* An ncc.Error reply envelope in the API.md shape with its status (502 when
 * it does not unpack). */
static int s_send_error_envelope(struct mg_connection *conn, const char *service,
                                 const Ncc__Envelope *reply)
{
    size_t len = reply->has_payload ? reply->payload.len : 0;
    const uint8_t *data = reply->has_payload ? reply->payload.data : NULL;
    Ncc__Error *error = reply->type && strcmp(reply->type, ncc__error__descriptor.name) == 0
                            ? ncc__error__unpack(NULL, len, data)
                            : NULL;
    if (!error) {
        ncc_warn("api.bad_reply", "%s sent an answer that is not a readable ncc.Error", service);
        return gw_http_send_error(conn, 502, "bad_gateway", NULL,
                                  "the %s service sent an unreadable answer", service);
    }
    int status =
        error->has_status && error->status >= 400 && error->status <= 599 ? error->status : 500;
    int rc = gw_http_send_error(conn, status, error->code ? error->code : "internal", error->field,
                                "%s", error->message ? error->message : "");
    ncc__error__free_unpacked(error, NULL);
    return rc;
}

/* The service's reply envelope as the HTTP answer. */
static int s_send_reply(struct mg_connection *conn, const gw_route_t *route, const char *service,
                        const Ncc__Envelope *reply)
{
    size_t len = reply->has_payload ? reply->payload.len : 0;
    const uint8_t *data = reply->has_payload ? reply->payload.data : NULL;
    if (reply->type && strcmp(reply->type, ncc__error__descriptor.name) == 0)
        return s_send_error_envelope(conn, service, reply);
    const ProtobufCMessageDescriptor *desc = reply->type ? ncc_registry_find(reply->type) : NULL;
    ProtobufCMessage *message = desc ? protobuf_c_message_unpack(desc, NULL, len, data) : NULL;
    if (!message) {
        ncc_warn("api.bad_reply", "%s sent a reply of unknown or unreadable type", service);
        return gw_http_send_error(conn, 502, "bad_gateway", NULL,
                                  "the %s service sent an unreadable answer", service);
    }
    int rc = s_send_rich_error(conn, message);
    if (rc == 0 && (route->flags & GW_ROUTE_CSV_REPLY))
        rc = s_send_file(conn, route, message);
    else if (rc == 0)
        rc = s_send_message(conn, (route->flags & GW_ROUTE_CREATED) ? 201 : 200, message);
    protobuf_c_message_free_unpacked(message, NULL);
    return rc;
}

/* ---- the generic route ---------------------------------------------------------- */

/* Reads, checks and parses the body of a POST/PUT/PATCH. On success
 * *ret_object is the body (an object; caller deletes), and *ret_strict, when
 * ret_strict is not NULL, the body alone converted without lenience (caller
 * frees; NULL for an empty body). Otherwise the error response has been sent
 * and its status is returned (> 0). */
static int s_read_json_body(gw_api_t *self, gw_request_t *req,
                            const ProtobufCMessageDescriptor *desc, cJSON **ret_object,
                            ProtobufCMessage **ret_strict)
{
    struct mg_connection *conn = req->conn;
    char *body = NULL;
    size_t len = 0;
    int status;
    ncc_json_error_t err;
    size_t max = (size_t)atomic_load(&self->max_body_bytes);

    int rc = 0;
    if (req->body) {
        /* Read (and checked) already: a signed request. */
        body = req->body;
        len = req->body_len;
        req->body = NULL;
    } else {
        rc = gw_http_read_body(conn, max, &body, &len);
    }
    if (rc == -EFBIG) {
        /* The rest of the body is not read: this connection cannot be reused. */
        mg_disable_connection_keep_alive(conn);
        return gw_http_send_error(conn, 413, "too_large", NULL,
                                  "the request body is larger than %zu bytes", max);
    }
    if (rc < 0) {
        mg_disable_connection_keep_alive(conn);
        return gw_http_send_error(conn, rc == -ENOMEM ? 500 : 400, "invalid_body", NULL,
                                  "the request body could not be read");
    }
    if (len == 0) {
        free(body);
        *ret_object = cJSON_CreateObject();
        if (ret_strict)
            *ret_strict = NULL;
        return *ret_object ? 0 : gw_http_send_error(conn, 500, "internal", NULL, "out of memory");
    }
    if (!s_is_json_type(mg_get_header(conn, "Content-Type"))) {
        status = gw_http_send_error(conn, 415, "unsupported_media_type", NULL,
                                    "the body must be sent as application/json");
        goto out;
    }
    /* The body alone, strictly: JSON syntax, an object, known fields, exact types. */
    ProtobufCMessage *strict = NULL;
    if (ncc_json_parse_pb(desc, body, len, 0, &strict, &err) < 0) {
        status = s_send_json_error(conn, &err);
        goto out;
    }
    *ret_object = cJSON_ParseWithLength(body, len);
    if (!*ret_object) {
        protobuf_c_message_free_unpacked(strict, NULL);
        status = gw_http_send_error(conn, 500, "internal", NULL, "out of memory");
        goto out;
    }
    if (ret_strict)
        *ret_strict = strict;
    else
        protobuf_c_message_free_unpacked(strict, NULL);
    status = 0;
out:
    free(body);
    return status;
}

/* "text/csv" or "text/plain", optionally followed by parameters (charset). */
static bool s_is_text_type(const char *content_type)
{
    static const char *const types[] = {"text/csv", "text/plain"};
    for (size_t i = 0; content_type && i < sizeof types / sizeof types[0]; i++) {
        size_t n = strlen(types[i]);
        if (strncasecmp(content_type, types[i], n) == 0 &&
            (content_type[n] == '\0' || content_type[n] == ';' || content_type[n] == ' '))
            return true;
    }
    return false;
}

/* GW_ROUTE_RAW_BODY: reads the body as sent, within the route's limit, into
 * *ret_body (caller frees). 0, or the status of the error answer sent. */
static int s_read_raw_body(gw_api_t *self, struct mg_connection *conn, const gw_route_t *route,
                           char **ret_body, size_t *ret_len)
{
    size_t max = route->raw->max_body_bytes ? route->raw->max_body_bytes
                                            : (size_t)atomic_load(&self->max_body_bytes);
    char *body = NULL;
    size_t len = 0;
    int rc = gw_http_read_body(conn, max, &body, &len);
    if (rc == -EFBIG) {
        mg_disable_connection_keep_alive(conn);
        return gw_http_send_error(conn, 413, "too_large", NULL,
                                  "the file is larger than %zu bytes: split it", max);
    }
    if (rc < 0) {
        mg_disable_connection_keep_alive(conn);
        return gw_http_send_error(conn, rc == -ENOMEM ? 500 : 400, "invalid_body", NULL,
                                  "the request body could not be read");
    }
    if (len > 0 && !s_is_text_type(mg_get_header(conn, "Content-Type"))) {
        free(body);
        return gw_http_send_error(conn, 415, "unsupported_media_type", NULL,
                                  "the body must be sent as text/csv");
    }
    *ret_body = body;
    *ret_len = len;
    return 0;
}

/* Puts the body (taken: *body_p is nulled) into the request's string or
 * bytes field `name`. 0; -EINVAL when the field is missing or of another
 * type, or a string body holds a NUL byte. */
static int s_set_raw_field(ProtobufCMessage *request, const char *name, char **body_p, size_t len)
{
    const ProtobufCFieldDescriptor *field =
        protobuf_c_message_descriptor_get_field_by_name(request->descriptor, name);
    if (!field || field->label == PROTOBUF_C_LABEL_REPEATED)
        return -EINVAL;
    void *slot = (char *)request + field->offset;
    if (field->type == PROTOBUF_C_TYPE_BYTES) {
        ProtobufCBinaryData *data = slot;
        free(data->data);
        data->data = (uint8_t *)*body_p;
        data->len = len;
        if (field->label == PROTOBUF_C_LABEL_OPTIONAL)
            *(protobuf_c_boolean *)((char *)request + field->quantifier_offset) = 1;
    } else if (field->type == PROTOBUF_C_TYPE_STRING && !memchr(*body_p, '\0', len)) {
        char **text = slot;
        if (*text != field->default_value)
            free(*text);
        *text = *body_p;
    } else {
        return -EINVAL;
    }
    *body_p = NULL;
    return 0;
}

/* Query pairs and path params into `object` (the body or {}). A query key
 * that the body also has is refused; path params win over both. 0 or the
 * status of the error response sent. */
static int s_merge_params(struct mg_connection *conn, cJSON *object, const cJSON *query,
                          const gw_route_match_t *match, const char *skip_param,
                          const char *self_field, const char *self_value)
{
    for (const cJSON *item = query->child; item; item = item->next) {
        if (cJSON_GetObjectItemCaseSensitive(object, item->string))
            return gw_http_send_error(conn, 400, "invalid_field", item->string,
                                      "given both in the query string and in the body");
        cJSON *copy = cJSON_Duplicate(item, true);
        if (!copy)
            return gw_http_send_error(conn, 500, "internal", NULL, "out of memory");
        cJSON_AddItemToObject(object, item->string, copy);
    }
    for (size_t i = 0; i < match->param_count; i++) {
        const gw_route_param_t *param = &match->params[i];
        char name[64];
        if (param->name_len >= sizeof name)
            continue;
        memcpy(name, param->name, param->name_len);
        name[param->name_len] = '\0';
        if (skip_param && strcmp(name, skip_param) == 0)
            continue;
        char *value = strndup(param->value, param->value_len);
        cJSON *item = value ? cJSON_CreateString(value) : NULL;
        free(value);
        if (!item)
            return gw_http_send_error(conn, 500, "internal", NULL, "out of memory");
        if (cJSON_GetObjectItemCaseSensitive(object, name))
            cJSON_ReplaceItemInObjectCaseSensitive(object, name, item);
        else
            cJSON_AddItemToObject(object, name, item);
    }
    /* The signed-in user's own id, whatever the client sent. */
    if (self_field) {
        cJSON *item = cJSON_CreateString(self_value);
        if (!item)
            return gw_http_send_error(conn, 500, "internal", NULL, "out of memory");
        if (cJSON_GetObjectItemCaseSensitive(object, self_field))
            cJSON_ReplaceItemInObjectCaseSensitive(object, self_field, item);
        else
            cJSON_AddItemToObject(object, self_field, item);
    }
    return 0;
}

/* One bus request on the worker's own DEALER for service `index`, waiting
 * timeout_ms (0: NCC_BUS_TIMEOUT_MS). */
static int s_rpc_index(gw_api_t *self, gw_thread_t *thread, int index, const ncc_ctx_t *ctx,
                       const ProtobufCMessage *request, int timeout_ms, Ncc__Envelope **ret_reply)
{
    const char *service = self->names[index];
    if (!thread->clients[index]) {
        thread->clients[index] = ncc_rpc_client_new(self->endpoints[index]);
        if (!thread->clients[index])
            return -EIO;
    }
    int rc =
        ncc_rpc_call(thread->clients[index], ctx, request,
                     timeout_ms > 0 ? timeout_ms : atomic_load(&self->bus_timeout_ms), ret_reply);
    if (rc < 0 && rc != -ETIMEDOUT && rc != -EMSGSIZE) {
        /* A socket in trouble is replaced on the next request. */
        ncc_warn("api.bus_error", "%s: %s", service, strerror(-rc));
        ncc_rpc_client_destroy(&thread->clients[index]);
    }
    return rc;
}

int gw_api_rpc(gw_api_t *self, gw_request_t *req, const char *service, const ncc_ctx_t *ctx,
               const ProtobufCMessage *request, Ncc__Envelope **ret_reply)
{
    int index = s_service_index(self, service);
    if (index < 0)
        return -ENOENT;
    return s_rpc_index(self, req->thread, index, ctx, request, 0, ret_reply);
}

ncc_db_t *gw_api_db(gw_api_t *self, gw_request_t *req)
{
    if (!req->thread->db)
        req->thread->db = gw_sessions_db_new(self->sessions);
    return req->thread->db;
}

gw_sessions_t *gw_api_sessions(gw_api_t *self)
{
    return self->sessions;
}

const gw_cidr_list_t *gw_api_trusted_proxies(gw_api_t *self)
{
    return self->trusted_proxies;
}

int gw_api_read_message(gw_api_t *self, gw_request_t *req, const ProtobufCMessageDescriptor *desc,
                        ProtobufCMessage **ret_message)
{
    cJSON *object = NULL;
    ProtobufCMessage *strict = NULL;
    int status = s_read_json_body(self, req, desc, &object, &strict);
    cJSON_Delete(object);
    if (status > 0)
        return status;
    if (!strict) {
        static const uint8_t empty[1];
        strict = protobuf_c_message_unpack(desc, NULL, 0, empty);
        if (!strict)
            return gw_http_send_error(req->conn, 500, "internal", NULL, "out of memory");
    }
    *ret_message = strict;
    return 0;
}

int gw_api_send_error_reply(gw_request_t *req, const char *service, const Ncc__Envelope *reply)
{
    return s_send_error_envelope(req->conn, service, reply);
}

/* GW_ROUTE_USER_SYNC: the reply is the user as changed; bring that user's
 * sessions in step. The user's sessions end (but the caller's own) when the
 * request set a password, and all of them when the user is retired;
 * otherwise they take the user's login, name and roles. */
static void s_user_sync(gw_api_t *self, gw_request_t *req, const cJSON *object,
                        const Ncc__Envelope *reply)
{
    if (!reply->type || strcmp(reply->type, ncc__directory__user__descriptor.name) != 0)
        return;
    Ncc__Directory__User *user =
        ncc__directory__user__unpack(NULL, reply->has_payload ? reply->payload.len : 0,
                                     reply->has_payload ? reply->payload.data : NULL);
    ncc_db_t *db = gw_api_db(self, req);
    if (!user || !user->has_id || !db) {
        ncc_error("session.sync_failed", "the changed user could not be read");
        goto out;
    }
    bool password = cJSON_GetObjectItemCaseSensitive(object, "password") ||
                    cJSON_GetObjectItemCaseSensitive(object, "new_password");
    bool retired = user->has_active && !user->active;
    int rc = 0;
    if (retired || password) {
        int64_t ended = gw_session_delete_user(db, user->id, retired ? NULL : req->session.id_hash);
        rc = ended < 0 ? -EIO : 0;
        if (ended > 0)
            ncc_info("session.ended_for_user", "%lld sessions of user %lld ended (%s)",
                     (long long)ended, (long long)user->id, retired ? "retired" : "password set");
    } else {
        unsigned roles = 0;
        for (size_t i = 0; i < user->n_roles; i++)
            roles |= ncc_role_parse(user->roles[i]) & NCC_ROLES_USERS;
        rc = gw_session_update_user(db, user->id, user->login, user->name, roles);
    }
    if (rc < 0)
        ncc_error("session.sync_failed", "sessions of user %lld not brought in step: %s",
                  (long long)user->id, ncc_db_error(db));
out:
    if (user)
        ncc__directory__user__free_unpacked(user, NULL);
}

static int s_generic(gw_api_t *self, gw_request_t *req)
{
    struct mg_connection *conn = req->conn;
    const gw_route_match_t *match = req->match;
    const gw_route_t *route = match->route;
    const struct mg_request_info *info = req->info;
    cJSON *object = NULL, *query = NULL;
    ProtobufCMessage *request = NULL;
    Ncc__Envelope *reply = NULL;
    ncc_json_error_t err;
    char *raw = NULL; /* GW_ROUTE_RAW_BODY: the body as sent */
    size_t raw_len = 0;
    int status;

    /* The service: fixed, or named by a path param ("{service}"). */
    char service_buf[64], param_name[64] = "";
    const char *service = route->service;
    if (service[0] == '{') {
        size_t len = strlen(service);
        snprintf(param_name, sizeof param_name, "%.*s", (int)(len - 2), service + 1);
        service = gw_route_param(match, param_name, service_buf, sizeof service_buf);
    }
    int index = service ? s_service_index(self, service) : -1;
    if (index < 0)
        return gw_http_send_error(conn, 404, "not_found", param_name, "no such service");

    const ProtobufCMessageDescriptor *desc = ncc_registry_find(route->request_type);
    if (!desc) {
        ncc_error("api.bad_route", "%s %s: unknown request type %s", route->method, route->pattern,
                  route->request_type);
        return gw_http_send_error(conn, 500, "internal", NULL, "this endpoint is misconfigured");
    }

    bool raw_body = route->flags & GW_ROUTE_RAW_BODY;
    bool has_params = (info->query_string && *info->query_string) ||
                      match->param_count > (param_name[0] ? 1u : 0u) || route->self_field ||
                      raw_body;
    if (raw_body) {
        status = s_read_raw_body(self, conn, route, &raw, &raw_len);
        if (status > 0)
            goto out;
        object = cJSON_CreateObject();
        if (!object) {
            status = gw_http_send_error(conn, 500, "internal", NULL, "out of memory");
            goto out;
        }
    } else if (s_method_has_body(info->request_method)) {
        ProtobufCMessage *strict = NULL;
        status = s_read_json_body(self, req, desc, &object, has_params ? NULL : &strict);
        if (status > 0)
            goto out;
        if (!has_params) {
            /* The body is the whole request: it is already converted. */
            static const uint8_t empty[1];
            request = strict ? strict : protobuf_c_message_unpack(desc, NULL, 0, empty);
            if (!request) {
                status = gw_http_send_error(conn, 500, "internal", NULL, "out of memory");
                goto out;
            }
        }
    } else {
        object = cJSON_CreateObject();
        if (!object) {
            status = gw_http_send_error(conn, 500, "internal", NULL, "out of memory");
            goto out;
        }
    }

    if (!request) {
        int rc = s_query_object(info->query_string, &query);
        if (rc < 0) {
            status = rc == -EINVAL
                         ? gw_http_send_error(conn, 400, "invalid_query", NULL,
                                              "the query string holds a NUL byte")
                         : gw_http_send_error(conn, 500, "internal", NULL, "out of memory");
            goto out;
        }
        status = s_merge_params(conn, object, query, match, param_name[0] ? param_name : NULL,
                                route->self_field, req->session.user_id_text);
        if (status > 0)
            goto out;
        if (ncc_json_to_pb(desc, object, NCC_JSON_STRINGS_AS_SCALARS, &request, &err) < 0) {
            status = s_send_json_error(conn, &err);
            goto out;
        }
    }
    if (raw_body && s_set_raw_field(request, route->raw->field, &raw, raw_len) < 0) {
        status =
            memchr(raw, '\0', raw_len)
                ? gw_http_send_error(conn, 400, "invalid_body", NULL, "the body holds a NUL byte")
                : gw_http_send_error(conn, 500, "internal", NULL, "this endpoint is misconfigured");
        goto out;
    }

    /* Public routes carry no actor; the others act for the signed-in user. */
    ncc_ctx_t ctx = {.trace_id = req->thread->trace_id};
    if (req->has_session)
        ctx = gw_auth_user_ctx(req);
    else if (req->machine)
        ctx = (ncc_ctx_t){.trace_id = req->thread->trace_id,
                          .actor_id = req->machine,
                          .actor_role = "system",
                          .actor_address = req->address};
    else if (route->flags & GW_ROUTE_CLIENT_ADDRESS)
        ctx.actor_address = req->address;
    int timeout_ms = route->raw ? route->raw->timeout_ms : 0;
    int rc = s_rpc_index(self, req->thread, index, &ctx, request, timeout_ms, &reply);
    if (rc == -EMSGSIZE) {
        status = gw_http_send_error(conn, 413, "too_large", NULL, "the request is too large");
        goto out;
    }
    if (rc < 0) {
        status = gw_http_send_error(conn, 503, "service_unavailable", NULL,
                                    "the %s service did not answer within %d ms", service,
                                    atomic_load(&self->bus_timeout_ms));
        goto out;
    }
    bool failed = reply->type && strcmp(reply->type, ncc__error__descriptor.name) == 0;
    if (!failed && (route->flags & GW_ROUTE_USER_SYNC) && req->has_session)
        s_user_sync(self, req, object, reply);
    status = s_send_reply(conn, route, service, reply);
out:
    if (reply)
        ncc__envelope__free_unpacked(reply, NULL);
    if (request)
        protobuf_c_message_free_unpacked(request, NULL);
    cJSON_Delete(object);
    cJSON_Delete(query);
    free(raw);
    return status;
}

/* ---- GET /api/v1/health: every service asked at once ---------------------------------- */

/* One service's health probe, run on its own short-lived thread with its own
 * DEALER (sockets are never shared between threads). */
typedef struct {
    const char *name;      /* borrowed: service name */
    const char *endpoints; /* borrowed: its RPC endpoints */
    const char *trace_id;  /* borrowed: the HTTP request's trace */
    int timeout_ms;
    int rc;               /* ncc_rpc_call's result */
    Ncc__Envelope *reply; /* owned when rc == 0 */
    int64_t latency_us;
    pthread_t thread;
    bool threaded; /* joined at the end when true */
} s_probe_t;

static void *s_probe_run(void *arg)
{
    s_probe_t *probe = arg;
    int64_t started = s_now_us();
    ncc_rpc_client_t *client = ncc_rpc_client_new(probe->endpoints);
    probe->rc = -EINVAL;
    if (client) {
        Ncc__HealthRequest request = NCC__HEALTH_REQUEST__INIT;
        ncc_ctx_t ctx = {.trace_id = probe->trace_id};
        probe->rc = ncc_rpc_call(client, &ctx, &request.base, probe->timeout_ms, &probe->reply);
    }
    ncc_rpc_client_destroy(&client);
    probe->latency_us = s_now_us() - started;
    return NULL;
}

/* The status of one probe; *ret_detail (caller frees) when the service sent
 * its HealthReply. */
static const char *s_probe_status(const s_probe_t *probe, Ncc__HealthReply **ret_detail)
{
    *ret_detail = NULL;
    if (probe->rc < 0 || !probe->reply || !probe->reply->type)
        return "down";
    const Ncc__Envelope *reply = probe->reply;
    size_t len = reply->has_payload ? reply->payload.len : 0;
    const uint8_t *data = reply->has_payload ? reply->payload.data : NULL;
    if (strcmp(reply->type, ncc__health_reply__descriptor.name) != 0)
        return "not_ready"; /* it answers, with an error */
    Ncc__HealthReply *detail = ncc__health_reply__unpack(NULL, len, data);
    if (!detail)
        return "not_ready";
    *ret_detail = detail;
    return detail->has_ready && detail->ready ? "up" : "not_ready";
}

/* With `detail` (a signed-in caller) each service's HealthReply (instance,
 * version, ...) is included; anonymous callers get the statuses only. */
static int s_health(gw_api_t *self, struct mg_connection *conn, gw_thread_t *thread, bool detail)
{
    size_t n = self->service_count;
    s_probe_t probes[GW_MAX_SERVICES];
    Ncc__ServiceHealth items[GW_MAX_SERVICES];
    Ncc__ServiceHealth *item_ptrs[GW_MAX_SERVICES];
    Ncc__HealthReply *details[GW_MAX_SERVICES] = {0};
    int timeout_ms = atomic_load(&self->health_timeout_ms);

    memset(probes, 0, sizeof probes);
    for (size_t i = 0; i < n; i++) {
        probes[i].name = self->names[i];
        probes[i].endpoints = self->endpoints[i];
        probes[i].trace_id = thread->trace_id;
        probes[i].timeout_ms = timeout_ms;
        probes[i].threaded = pthread_create(&probes[i].thread, NULL, s_probe_run, &probes[i]) == 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (probes[i].threaded)
            pthread_join(probes[i].thread, NULL);
        else
            s_probe_run(&probes[i]); /* no thread to spare: ask in turn */
    }

    bool all_up = true;
    for (size_t i = 0; i < n; i++) {
        Ncc__ServiceHealth *item = &items[i];
        ncc__service_health__init(item);
        item->name = (char *)probes[i].name;
        item->status = (char *)s_probe_status(&probes[i], &details[i]);
        item->detail = detail ? details[i] : NULL;
        item->has_latency_ms = true;
        item->latency_ms = (int32_t)((probes[i].latency_us + 500) / 1000);
        item_ptrs[i] = item;
        all_up = all_up && strcmp(item->status, "up") == 0;
    }
    Ncc__HealthSummary summary = NCC__HEALTH_SUMMARY__INIT;
    summary.status = all_up ? "ok" : "degraded";
    summary.n_services = n;
    summary.services = item_ptrs;
    int status = s_send_message(conn, all_up ? 200 : 503, &summary.base);

    for (size_t i = 0; i < n; i++) {
        if (details[i])
            ncc__health_reply__free_unpacked(details[i], NULL);
        if (probes[i].reply)
            ncc__envelope__free_unpacked(probes[i].reply, NULL);
    }
    return status;
}

/* ---- entry points ---------------------------------------------------------------- */

int gw_api_drain(gw_api_t *self, int timeout_ms)
{
    atomic_store(&self->draining, true);
    gw_push_stop(self->push); /* open streams end now */
    int64_t deadline = s_now_us() + (int64_t)timeout_ms * 1000;
    while (atomic_load(&self->in_flight) > 0 && s_now_us() < deadline) {
        struct timespec pause = {.tv_nsec = 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    return atomic_load(&self->in_flight);
}

int gw_api_longest_request_ms(gw_api_t *self)
{
    int bus = atomic_load(&self->bus_timeout_ms);
    int health = atomic_load(&self->health_timeout_ms);
    return bus > health ? bus : health;
}

/* A refused attempt on an audited route by a signed-in user is audited
 * ("denied"); the refusal stands whether or not the entry is written. */
static int s_refuse(gw_api_t *self, gw_request_t *req, int status, const char *code,
                    const char *message)
{
    const gw_route_t *route = req->match->route;
    ncc_warn("auth.refused", "%s %s by user %s from %s: %s", req->info->request_method,
             req->info->local_uri, req->session.user_id_text, req->address, code);
    if ((route->flags & GW_ROUTE_AUDIT) && req->has_session) {
        int rc = gw_auth_audit(self, req, status, code);
        if (rc < 0)
            ncc_error("audit.append_failed", "refused %s by user %s not audited: %s", route->action,
                      req->session.user_id_text, strerror(-rc));
    }
    return gw_http_send_error(req->conn, status, code, NULL, "%s", message);
}

/* Runs the route's handler. */
static int s_dispatch(gw_api_t *self, gw_request_t *req)
{
    switch (req->match->route->kind) {
    case GW_ROUTE_HEALTH:
        return s_health(self, req->conn, req->thread, req->has_session);
    case GW_ROUTE_LOGIN:
        return gw_auth_login(self, req);
    case GW_ROUTE_LOGOUT:
        return gw_auth_logout(self, req);
    case GW_ROUTE_LOGOUT_ALL:
        return gw_auth_logout_all(self, req);
    case GW_ROUTE_ME:
        return gw_auth_me(self, req);
    case GW_ROUTE_STREAM: {
        ncc_db_t *db = gw_api_db(self, req);
        if (!db)
            return gw_http_send_error(req->conn, 503, "service_unavailable", NULL,
                                      "sessions are unavailable (database)");
        return gw_push_serve(self->push, self->sessions, db, req);
    }
    case GW_ROUTE_FILE:
        return gw_file_serve(self, req); /* audits itself, before the first byte */
    case GW_ROUTE_GENERIC:
    default:
        if (req->match->route->flags & GW_ROUTE_CSV_STREAM)
            return gw_export_stream(self, req); /* pages written as they come (export.h) */
        return s_generic(self, req);
    }
}

/* An audited route: the answer is held until its audit entry is written; no
 * entry, no answer (503 audit_unavailable). Sign-outs audit themselves. */
static int s_dispatch_audited(gw_api_t *self, gw_request_t *req)
{
    const gw_route_t *route = req->match->route;
    if (route->kind == GW_ROUTE_LOGOUT || route->kind == GW_ROUTE_LOGOUT_ALL ||
        route->kind == GW_ROUTE_FILE ||
        (route->flags & GW_ROUTE_CSV_STREAM)) /* streams audit before their first byte */
        return s_dispatch(self, req);
    gw_http_hold(req->conn);
    s_dispatch(self, req);
    int status = gw_http_held_status(req->conn);
    if (status == 0) {
        gw_http_drop(req->conn); /* answered already (out of memory while holding) */
        return 500;
    }
    int rc = gw_auth_audit(self, req, status, req->thread->error_code);
    if (rc < 0) {
        ncc_error("audit.append_failed",
                  "%s %s by user %s (%s) from %s, status %d: %s; "
                  "answered 503 instead",
                  route->action, req->info->local_uri, req->session.user_id_text,
                  req->session.login, req->address, status, strerror(-rc));
        gw_http_drop(req->conn);
        return gw_http_send_error(
            req->conn, 503, "audit_unavailable", NULL,
            "the audit log cannot be written; nothing is answered without it");
    }
    return gw_http_flush(req->conn);
}

/* GW_ROUTE_SIGNED: a machine's request, signed with NCC_PBX_WEBHOOK_SECRET
 * (the scheme of ncc/webhook.h). Requests without a body (GET) sign the
 * request target instead: HMAC over "<t>." followed by the path and, when
 * there is one, "?" and the query string as sent (docs/api.md). */
static int s_dispatch_signed(gw_api_t *self, gw_request_t *req)
{
    struct mg_connection *conn = req->conn;
    const struct mg_request_info *info = req->info;
    if (self->n_pbx_secrets == 0)
        return gw_http_send_error(conn, 503, "service_unavailable", NULL,
                                  "the PBX routes are off: NCC_PBX_WEBHOOK_SECRET is not set");
    /* What is signed: the body as sent, or for a request without one the
     * request target. */
    char target[2048];
    const char *signed_data = target;
    size_t signed_len = 0;
    if (s_method_has_body(info->request_method)) {
        size_t max = (size_t)atomic_load(&self->max_body_bytes);
        int rc = gw_http_read_body(conn, max, &req->body, &req->body_len);
        if (rc < 0) {
            mg_disable_connection_keep_alive(conn);
            return rc == -EFBIG
                       ? gw_http_send_error(conn, 413, "too_large", NULL,
                                            "the request body is larger than %zu bytes", max)
                       : gw_http_send_error(conn, rc == -ENOMEM ? 500 : 400, "invalid_body", NULL,
                                            "the request body could not be read");
        }
        signed_data = req->body;
        signed_len = req->body_len;
    } else {
        int n =
            snprintf(target, sizeof target, "%s%s%s", info->local_uri,
                     info->query_string ? "?" : "", info->query_string ? info->query_string : "");
        if (n < 0 || (size_t)n >= sizeof target)
            return gw_http_send_error(conn, 414, "uri_too_long", NULL,
                                      "the request target is too long");
        signed_len = (size_t)n;
    }
    const char *secrets[sizeof self->pbx_secrets / sizeof self->pbx_secrets[0]];
    for (size_t i = 0; i < self->n_pbx_secrets; i++)
        secrets[i] = self->pbx_secrets[i];
    int rc = ncc_webhook_verify(mg_get_header(conn, NCC_WEBHOOK_HEADER_NAME), signed_data,
                                signed_len, secrets, self->n_pbx_secrets, (int64_t)time(NULL),
                                NCC_WEBHOOK_TOLERANCE_S);
    if (rc < 0) {
        const char *why = rc == -EBADMSG  ? "the X-NCC-Signature header is missing or malformed"
                          : rc == -ESTALE ? "the signature's time is more than 5 minutes away"
                                          : "the signature does not match";
        ncc_warn("auth.signature_refused", "%s %s from %s: %s", info->request_method,
                 info->local_uri, req->address[0] ? req->address : "an unknown address", why);
        ncc_metrics_inc(NCC_METRIC_SIGNATURES_REFUSED);
        free(req->body);
        req->body = NULL;
        return gw_http_send_error(conn, rc == -EIO ? 500 : 401,
                                  rc == -EIO ? "internal" : "invalid_signature", NULL, "%s", why);
    }
    req->machine = "pbx";
    int status = s_dispatch(self, req);
    free(req->body);
    req->body = NULL;
    return status;
}

static int s_handle(gw_api_t *self, struct mg_connection *conn)
{
    gw_request_t req = {.conn = conn, .info = mg_get_request_info(conn)};
    const struct mg_request_info *info = req.info;
    req.thread = gw_thread_of(conn);
    if (!req.thread)
        return gw_http_send_error(conn, 500, "internal", NULL, "worker thread not initialised");
    gw_auth_client(&req, self->trusted_proxies);

    gw_route_match_t match;
    char allow[64];
    int rc = gw_routes_find(gw_routes, info->request_method, info->local_uri, &match, allow,
                            sizeof allow);
    req.match = rc == 0 ? &match : NULL;

    /* R21: the staff API only from the allowed networks; the public
     * resident routes (GW_ROUTE_OPEN) from anywhere. */
    bool open = req.match && (match.route->flags & GW_ROUTE_OPEN);
    if (!open && !gw_cidr_list_contains(self->staff_allow, req.address)) {
        ncc_warn("auth.address_refused", "%s %s from %s: not in NCC_STAFF_ALLOW_CIDRS",
                 info->request_method, info->local_uri,
                 req.address[0] ? req.address : "an unknown address");
        return gw_http_send_error(conn, 403, "address_not_allowed", NULL,
                                  "this address may not use this part of the API");
    }
    if (rc == -EOPNOTSUPP) {
        static const char body[] = "{\"error\":{\"code\":\"method_not_allowed\","
                                   "\"message\":\"this endpoint does not take that method\"}}";
        return gw_http_send(conn, 405, GW_JSON_TYPE, body, sizeof body - 1, "Allow", allow);
    }
    if (rc < 0)
        return gw_http_send_error(conn, 404, "not_found", NULL, "no such endpoint");
    const gw_route_t *route = match.route;
    bool changes = gw_auth_changes_state(info->request_method);

    if (route->flags & GW_ROUTE_SIGNED)
        return s_dispatch_signed(self, &req);
    if (route->flags & GW_ROUTE_PUBLIC) {
        if (changes && !gw_auth_origin_ok(&req))
            return gw_http_send_error(conn, 403, "origin_mismatch", NULL,
                                      "the request comes from another origin");
        /* Health shows its detail to signed-in users only. */
        if (route->kind == GW_ROUTE_HEALTH && gw_auth_session(self, &req) < 0)
            req.has_session = false;
        return s_dispatch(self, &req);
    }

    rc = gw_auth_session(self, &req);
    if (rc == -EAGAIN || rc == -EIO)
        return gw_http_send_error(conn, 503, "service_unavailable", NULL,
                                  "sessions are unavailable (database)");
    if (rc < 0) {
        if (route->flags & GW_ROUTE_AUDIT)
            ncc_warn("auth.unauthenticated", "%s %s from %s: no valid session (%s)",
                     info->request_method, info->local_uri, req.address, route->action);
        return gw_http_send_error(conn, 401, "unauthenticated", NULL,
                                  "sign in first (no session, or it has ended)");
    }
    if (!(req.session.roles & route->roles))
        return s_refuse(self, &req, 403, "forbidden", "your role may not do this");
    if (changes && !gw_auth_origin_ok(&req))
        return s_refuse(self, &req, 403, "origin_mismatch",
                        "the request comes from another origin");
    if (changes && !gw_auth_csrf_ok(&req))
        return s_refuse(self, &req, 403, "csrf_failed",
                        "the X-CSRF-Token header is missing or wrong");
    if (route->flags & GW_ROUTE_AUDIT)
        return s_dispatch_audited(self, &req);
    return s_dispatch(self, &req);
}

int gw_api_handle(struct mg_connection *conn, void *cbdata)
{
    gw_api_t *self = cbdata;
    /* Counted before the draining flag is read: gw_api_drain sets the flag
     * before it reads the count, so every request is either refused here or
     * waited for there. */
    atomic_fetch_add(&self->in_flight, 1);
    int status;
    if (atomic_load(&self->draining)) {
        mg_disable_connection_keep_alive(conn);
        status = gw_http_send_error(conn, 503, "service_unavailable", NULL,
                                    "the gateway is shutting down");
    } else {
        status = s_handle(self, conn);
    }
    atomic_fetch_sub(&self->in_flight, 1);
    return status;
}

int gw_api_healthz(struct mg_connection *conn, void *cbdata)
{
    static const char body[] = "{\"status\":\"ok\"}";
    const struct mg_request_info *info = mg_get_request_info(conn);
    if (strcmp(info->request_method, "GET") != 0 && strcmp(info->request_method, "HEAD") != 0) {
        static const char refused[] = "{\"error\":{\"code\":\"method_not_allowed\","
                                      "\"message\":\"use GET\"}}";
        return gw_http_send(conn, 405, GW_JSON_TYPE, refused, sizeof refused - 1, "Allow",
                            "GET, HEAD");
    }
    return gw_http_send(conn, 200, GW_JSON_TYPE, body, sizeof body - 1, NULL, NULL);
}
