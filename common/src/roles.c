/* roles: role names <-> bits (see ncc/roles.h). */
#include "ncc/roles.h"

#include <errno.h>
#include <string.h>

typedef struct {
    const char *name; /* lowercase, as in ../shared/API.md and the envelope */
    unsigned bit;     /* one NCC_ROLE_* bit */
} s_role_entry_t;

static const s_role_entry_t s_roles[] = {
    {"operator", NCC_ROLE_OPERATOR}, {"supervisor", NCC_ROLE_SUPERVISOR}, {"admin", NCC_ROLE_ADMIN},
    {"staff", NCC_ROLE_STAFF},       {"system", NCC_ROLE_SYSTEM},
};

#define S_ROLE_COUNT (sizeof s_roles / sizeof s_roles[0])

static bool s_is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* The role of text[0..len) once blanks around it are dropped; 0 if unknown. */
static unsigned s_parse_span(const char *text, size_t len)
{
    while (len > 0 && s_is_blank(text[0])) {
        text++;
        len--;
    }
    while (len > 0 && s_is_blank(text[len - 1]))
        len--;
    for (size_t i = 0; i < S_ROLE_COUNT; i++) {
        if (strlen(s_roles[i].name) == len && memcmp(s_roles[i].name, text, len) == 0)
            return s_roles[i].bit;
    }
    return 0;
}

unsigned ncc_role_parse(const char *name)
{
    if (!name)
        return 0;
    return s_parse_span(name, strlen(name));
}

unsigned ncc_roles_parse(const char *list)
{
    if (!list || !*list)
        return 0;
    unsigned mask = 0;
    const char *start = list;
    for (;;) {
        const char *comma = strchr(start, ',');
        size_t len = comma ? (size_t)(comma - start) : strlen(start);
        unsigned bit = s_parse_span(start, len);
        if (!bit)
            return 0;
        mask |= bit;
        if (!comma)
            break;
        start = comma + 1;
    }
    return mask;
}

const char *ncc_role_name(unsigned role)
{
    for (size_t i = 0; i < S_ROLE_COUNT; i++) {
        if (s_roles[i].bit == role)
            return s_roles[i].name;
    }
    return NULL;
}

int ncc_roles_format(unsigned mask, char *out, size_t outlen)
{
    if (!out || (mask & ~(unsigned)NCC_ROLES_ALL))
        return -EINVAL;
    if (outlen == 0)
        return -ENOSPC;
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < S_ROLE_COUNT; i++) {
        if (!(mask & s_roles[i].bit))
            continue;
        size_t len = strlen(s_roles[i].name);
        size_t need = len + (used > 0 ? 1 : 0);
        if (used + need + 1 > outlen) {
            out[0] = '\0';
            return -ENOSPC;
        }
        if (used > 0)
            out[used++] = ',';
        memcpy(out + used, s_roles[i].name, len);
        used += len;
        out[used] = '\0';
    }
    return (int)used;
}
