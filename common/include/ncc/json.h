/* json: one generic converter between JSON (cJSON) and protobuf-c messages,
 * driven by the descriptors, so no message has hand-written JSON code.
 * Field names are the proto field names (snake_case, as in API.md).
 * Mapping: strings <-> strings; bool <-> true/false; int32/uint32/enums-as-int,
 * float, double <-> numbers; int64/uint64 <-> numbers (exact up to 2^53, and a
 * decimal string is accepted on input); enums <-> their value name;
 * bytes <-> base64 strings; repeated <-> arrays; messages <-> objects.
 * Absent optional fields are omitted on output and stay absent on input. */
#ifndef NCC_JSON_H
#define NCC_JSON_H

#include <cjson/cJSON.h>
#include <protobuf-c/protobuf-c.h>

/* What went wrong, for the API.md error shape. */
typedef struct {
    char code[32];     /* "invalid_json", "unknown_field", "invalid_field", "too_deep" */
    char field[128];   /* dotted path of the field, e.g. "segments[2].text"; "" if none */
    char message[256]; /* a sentence for people */
} ncc_json_error_t;

enum {
    /* Accept "12", "true" for numeric and bool fields (query strings, path
     * parameters, CSV cells). */
    NCC_JSON_STRINGS_AS_SCALARS = 1 << 0,
    /* Silently skip fields the message does not have (default: error). */
    NCC_JSON_IGNORE_UNKNOWN = 1 << 1,
};

/* Builds a new message of type `desc` from the JSON object `json`.
 * 0 with *ret_message (caller frees: protobuf_c_message_free_unpacked(m, NULL));
 * -EINVAL with *err filled for a wrong type, unknown field, invalid UTF-8 or
 * nesting deeper than 32. */
int ncc_json_to_pb(const ProtobufCMessageDescriptor *desc, const cJSON *json, unsigned flags,
                   ProtobufCMessage **ret_message, ncc_json_error_t *err);

/* As ncc_json_to_pb from text (len bytes, need not be NUL-terminated).
 * Malformed JSON gives -EINVAL with code "invalid_json". */
int ncc_json_parse_pb(const ProtobufCMessageDescriptor *desc, const char *text, size_t len,
                      unsigned flags, ProtobufCMessage **ret_message, ncc_json_error_t *err);

/* The message as a JSON object (caller frees with cJSON_Delete), or NULL on
 * allocation failure. */
cJSON *ncc_pb_to_json(const ProtobufCMessage *message);

/* The message as compact JSON text (caller frees with free()), or NULL. */
char *ncc_pb_to_json_text(const ProtobufCMessage *message);

#endif
