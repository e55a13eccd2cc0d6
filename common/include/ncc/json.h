/* json: one generic converter between JSON (cJSON) and protobuf-c messages,
 * driven by the descriptors, so no message has hand-written JSON code.
 * Field names are the proto field names (snake_case, as in API.md).
 * Mapping (the full table is in docs/json.md):
 *   strings <-> strings (valid UTF-8 only); bool <-> true/false;
 *   int32/uint32 and their sint/fixed forms, float, double <-> numbers;
 *   int64/uint64 <-> numbers while |v| <= 2^53 - 1, decimal strings beyond
 *   (a decimal string is always accepted on input);
 *   enums <-> their value name as in the .proto ("ACTIVE"; a number is accepted);
 *   bytes <-> base64 strings; repeated <-> arrays; messages <-> objects;
 *   oneof members <-> ordinary fields, at most one of them set.
 * Absent optional fields are omitted on output and stay absent on input;
 * JSON null means absent. float/double NaN and infinities are written as null. */
#ifndef NCC_JSON_H
#define NCC_JSON_H

#include <cjson/cJSON.h>
#include <protobuf-c/protobuf-c.h>

/* Deepest message nesting accepted or written; the top-level message is 1. */
#define NCC_JSON_MAX_DEPTH 32

/* What went wrong, for the API.md error shape. */
typedef struct {
    char code[32];     /* "invalid_json", "unknown_field", "invalid_field", "too_deep",
                          "out_of_memory" */
    char field[128];   /* dotted path of the field, e.g. "segments[2].text"; "" if none */
    char message[256]; /* a sentence for people (names the path, never echoes values) */
} ncc_json_error_t;

enum {
    /* Accept "12", "1.5", "true"/"false"/"1"/"0" for numeric and bool fields
     * and a single value for a repeated field (query strings, path
     * parameters, CSV cells). */
    NCC_JSON_STRINGS_AS_SCALARS = 1 << 0,
    /* Silently skip fields the message does not have (default: error). */
    NCC_JSON_IGNORE_UNKNOWN = 1 << 1,
};

/* Builds a new message of type `desc` from the JSON object `json`.
 * 0 with *ret_message (caller frees: protobuf_c_message_free_unpacked(m, NULL));
 * -EINVAL with *err filled for a wrong type, unknown field, invalid UTF-8,
 * a missing required field or nesting deeper than NCC_JSON_MAX_DEPTH;
 * -ENOMEM (code "out_of_memory") when allocation fails.
 * `err` may be NULL. *ret_message is written only on success; nothing leaks
 * on failure. */
int ncc_json_to_pb(const ProtobufCMessageDescriptor *desc, const cJSON *json, unsigned flags,
                   ProtobufCMessage **ret_message, ncc_json_error_t *err);

/* As ncc_json_to_pb from text (len bytes, need not be NUL-terminated).
 * Malformed JSON, trailing garbage, a NUL byte or "\u0000" give -EINVAL with
 * code "invalid_json"; arrays/objects nested deeper than
 * 2 * NCC_JSON_MAX_DEPTH give "too_deep" before any parsing. */
int ncc_json_parse_pb(const ProtobufCMessageDescriptor *desc, const char *text, size_t len,
                      unsigned flags, ProtobufCMessage **ret_message, ncc_json_error_t *err);

/* The message as a JSON object (caller frees with cJSON_Delete), or NULL on
 * allocation failure or nesting deeper than NCC_JSON_MAX_DEPTH. Strings that
 * are not valid UTF-8 are written with U+FFFD in place of the bad bytes.
 * Numbers are cJSON numbers, except those cJSON 1.7 would print inexactly
 * (16 or 17 significant digits, integers from 10^15): those are cJSON_Raw
 * items whose valuestring is the exact number text, so every cJSON_Print*
 * of the tree (or of a tree it is added to) stays exact. */
cJSON *ncc_pb_to_json(const ProtobufCMessage *message);

/* The message as compact JSON text (caller frees with free()), or NULL. */
char *ncc_pb_to_json_text(const ProtobufCMessage *message);

#endif
