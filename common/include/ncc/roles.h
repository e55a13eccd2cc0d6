/* roles: who may do what (R9). A route or a bus handler names the roles it
 * admits as a mask; the gateway checks it for the session's user and each
 * service checks it again for the actor in the envelope. */
#ifndef NCC_ROLES_H
#define NCC_ROLES_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    NCC_ROLE_OPERATOR = 1 << 0,   /* operators taking calls */
    NCC_ROLE_SUPERVISOR = 1 << 1, /* supervisors watching the floor */
    NCC_ROLE_ADMIN = 1 << 2,      /* administrators keeping the masters */
    NCC_ROLE_STAFF = 1 << 3,      /* ward staff: read only (R27) */
    NCC_ROLE_SYSTEM = 1 << 4,     /* another daemon */
} ncc_role_t;

#define NCC_ROLES_USERS (NCC_ROLE_OPERATOR | NCC_ROLE_SUPERVISOR | NCC_ROLE_ADMIN | NCC_ROLE_STAFF)
#define NCC_ROLES_ALL   (NCC_ROLES_USERS | NCC_ROLE_SYSTEM)

/* "operator" -> NCC_ROLE_OPERATOR; names are lowercase ASCII (operator,
 * supervisor, admin, staff, system), spaces and tabs around the name are
 * ignored; 0 for NULL or an unknown name. */
unsigned ncc_role_parse(const char *name);

/* A comma-separated list ("operator,supervisor", " admin , staff ") -> mask;
 * 0 if any name is unknown or empty ("operator,," is 0), and for NULL or "". */
unsigned ncc_roles_parse(const char *list);

/* The name of one role bit (borrowed), or NULL for 0, several bits or an
 * unknown bit. */
const char *ncc_role_name(unsigned role);

/* The mask as a comma-separated list in bit order ("operator,admin"; "" for 0)
 * into out. The length written, -EINVAL for unknown bits or NULL out, -ENOSPC
 * when outlen is too small. ncc_roles_parse() reads it back. */
int ncc_roles_format(unsigned mask, char *out, size_t outlen);

#endif
