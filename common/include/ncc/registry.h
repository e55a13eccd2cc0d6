/* registry: every protobuf message type ncc knows, by its full name.
 * The table is generated from proto/ (scripts/gen-registry.sh). */
#ifndef NCC_REGISTRY_H
#define NCC_REGISTRY_H

#include <protobuf-c/protobuf-c.h>

/* NULL-terminated, generated. */
extern const ProtobufCMessageDescriptor *const ncc_registry_messages[];

/* The descriptor whose full name is `type_name` ("ncc.Ping"), or NULL. */
const ProtobufCMessageDescriptor *ncc_registry_find(const char *type_name);

#endif
