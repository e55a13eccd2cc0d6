/* fuzz_json: libFuzzer target for the JSON <-> protobuf converter (common/src/json.c).
 *
 * Input: one selector byte, then JSON text.
 *   selector < 0x80: the message type is ncc.test.Everything (every field type,
 *                    repeated, nested, recursive, oneof, defaults, required);
 *   selector >= 0x80: a type from the registry, ((selector >> 2) & 31) % count;
 *   selector & 3:    the flags (NCC_JSON_STRINGS_AS_SCALARS, NCC_JSON_IGNORE_UNKNOWN).
 * Properties checked (abort() on violation, so libFuzzer reports a crash):
 *   - a refusal returns -EINVAL with a known error code and no message;
 *   - an accepted message is written back as JSON;
 *   - JSON -> message -> protobuf wire -> message -> JSON gives the same text;
 *   - that text reads back (without flags) and writes the same text again,
 *     unless it holds a null (NaN and infinities are written as null);
 *   - no leaks (LeakSanitizer) and no undefined behaviour (UBSan).
 * Build and run: fuzz/README.md. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ncc/json.h"
#include "ncc/registry.h"
#include "test_types.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const ProtobufCMessageDescriptor *s_pick_type(uint8_t selector)
{
    size_t count = 0;

    if (selector < 0x80)
        return &ncc__test__everything__descriptor;
    while (ncc_registry_messages[count])
        count++;
    return ncc_registry_messages[((size_t)(selector >> 2) & 31) % count];
}

static bool s_known_code(const char *code)
{
    static const char *const codes[] = {"invalid_json", "unknown_field", "invalid_field",
                                        "too_deep", "out_of_memory"};

    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (strcmp(code, codes[i]) == 0)
            return true;
    return false;
}

/* The message packed and unpacked again; aborts if protobuf-c refuses it. */
static ProtobufCMessage *s_through_wire(const ProtobufCMessage *m)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len + 1);

    if (!buf)
        abort();
    if (protobuf_c_message_pack(m, buf) != len)
        abort();
    ProtobufCMessage *copy = protobuf_c_message_unpack(m->descriptor, NULL, len, buf);
    free(buf);
    if (!copy)
        abort();
    return copy;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;

    const ProtobufCMessageDescriptor *desc = s_pick_type(data[0]);
    unsigned flags = data[0] & 3;
    ProtobufCMessage *m = NULL;
    ncc_json_error_t err;
    int rc = ncc_json_parse_pb(desc, (const char *)data + 1, size - 1, flags, &m, &err);

    if (rc != 0) {
        if (rc != -EINVAL || m || !s_known_code(err.code) || err.message[0] == '\0')
            abort();
        return 0;
    }

    char *text = ncc_pb_to_json_text(m);
    if (!text)
        abort();

    ProtobufCMessage *wire = s_through_wire(m);
    char *wire_text = ncc_pb_to_json_text(wire);
    if (!wire_text || strcmp(text, wire_text) != 0)
        abort();

    if (!strstr(text, "null")) {
        ProtobufCMessage *again = NULL;
        if (ncc_json_parse_pb(desc, text, strlen(text), 0, &again, &err) != 0)
            abort();
        char *again_text = ncc_pb_to_json_text(again);
        if (!again_text || strcmp(text, again_text) != 0)
            abort();
        free(again_text);
        protobuf_c_message_free_unpacked(again, NULL);
    }

    free(wire_text);
    protobuf_c_message_free_unpacked(wire, NULL);
    free(text);
    protobuf_c_message_free_unpacked(m, NULL);
    return 0;
}
