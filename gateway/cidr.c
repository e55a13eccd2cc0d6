/* cidr: CIDR lists and address tests (cidr.h). */
#include "cidr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int family;       /* AF_INET or AF_INET6 */
    uint8_t addr[16]; /* network address, 4 or 16 bytes used */
    int prefix;       /* leading bits that must match */
} s_network_t;

struct gw_cidr_list {
    s_network_t *networks; /* owned, count entries */
    size_t count;
};

/* Reads an address into addr; IPv4-mapped IPv6 becomes IPv4. The family, or
 * 0 when the text is not an address. */
static int s_parse_address(const char *text, uint8_t addr[16])
{
    if (inet_pton(AF_INET, text, addr) == 1)
        return AF_INET;
    if (inet_pton(AF_INET6, text, addr) != 1)
        return 0;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(addr, mapped, sizeof mapped) == 0) {
        memmove(addr, addr + 12, 4);
        return AF_INET;
    }
    return AF_INET6;
}

/* True when the first `prefix` bits of a and b are equal. */
static bool s_prefix_equal(const uint8_t *a, const uint8_t *b, int prefix)
{
    int whole = prefix / 8, rest = prefix % 8;
    if (memcmp(a, b, (size_t)whole) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

/* True when no bit beyond `prefix` is set in an address of `bytes` bytes. */
static bool s_host_bits_clear(const uint8_t *addr, size_t bytes, int prefix)
{
    for (size_t bit = (size_t)prefix; bit < bytes * 8; bit++)
        if (addr[bit / 8] & (0x80 >> (bit % 8)))
            return false;
    return true;
}

/* One entry (len bytes at text, already trimmed) into *network. */
static int s_parse_entry(const char *text, size_t len, s_network_t *network, char *err,
                         size_t errlen)
{
    char entry[96];
    if (len == 0) {
        snprintf(err, errlen, "an entry is empty");
        return -EINVAL;
    }
    if (len >= sizeof entry) {
        snprintf(err, errlen, "the entry \"%.40s...\" is too long", text);
        return -EINVAL;
    }
    memcpy(entry, text, len);
    entry[len] = '\0';
    char *slash = strchr(entry, '/');
    if (slash)
        *slash = '\0';
    network->family = s_parse_address(entry, network->addr);
    if (network->family == 0) {
        snprintf(err, errlen, "\"%.*s\" is not an IPv4 or IPv6 address", (int)len, text);
        return -EINVAL;
    }
    if (network->family == AF_INET && strchr(entry, ':')) {
        snprintf(err, errlen, "\"%.*s\": write an IPv4-mapped network as IPv4", (int)len, text);
        return -EINVAL;
    }
    int max = network->family == AF_INET ? 32 : 128;
    network->prefix = max;
    if (slash) {
        const char *digits = slash + 1;
        size_t n = strlen(digits);
        int value = 0;
        bool ok = n >= 1 && n <= 3;
        for (size_t i = 0; ok && i < n; i++) {
            ok = digits[i] >= '0' && digits[i] <= '9';
            value = value * 10 + (digits[i] - '0');
        }
        if (!ok || value > max || (n > 1 && digits[0] == '0')) {
            snprintf(err, errlen, "\"%.*s\": the prefix length must be 0 to %d", (int)len, text,
                     max);
            return -EINVAL;
        }
        network->prefix = value;
    }
    if (!s_host_bits_clear(network->addr, (size_t)max / 8, network->prefix)) {
        snprintf(err, errlen, "\"%.*s\" has bits set beyond its /%d prefix", (int)len, text,
                 network->prefix);
        return -EINVAL;
    }
    return 0;
}

gw_cidr_list_t *gw_cidr_list_new(const char *text, char *err, size_t errlen)
{
    gw_cidr_list_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (!text || !*text)
        return self;
    size_t entries = 1;
    for (const char *p = text; *p; p++)
        entries += *p == ',';
    self->networks = calloc(entries, sizeof *self->networks);
    if (!self->networks) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (const char *item = text;;) {
        size_t len = strcspn(item, ",");
        const char *start = item, *end = item + len;
        while (start < end && (*start == ' ' || *start == '\t'))
            start++;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if (s_parse_entry(start, (size_t)(end - start), &self->networks[self->count], err, errlen) <
            0)
            goto fail;
        self->count++;
        if (item[len] != ',')
            break;
        item += len + 1;
    }
    return self;
fail:
    gw_cidr_list_destroy(&self);
    return NULL;
}

void gw_cidr_list_destroy(gw_cidr_list_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->networks);
    free(*self_p);
    *self_p = NULL;
}

size_t gw_cidr_list_count(const gw_cidr_list_t *self)
{
    return self ? self->count : 0;
}

bool gw_cidr_list_contains(const gw_cidr_list_t *self, const char *address)
{
    uint8_t addr[16];
    if (!self || !address || !*address)
        return false;
    int family = s_parse_address(address, addr);
    if (family == 0)
        return false;
    for (size_t i = 0; i < self->count; i++) {
        const s_network_t *network = &self->networks[i];
        if (network->family == family && s_prefix_equal(network->addr, addr, network->prefix))
            return true;
    }
    return false;
}

bool gw_address_normalise(const char *text, char *out, size_t len)
{
    uint8_t addr[16];
    if (!text || len < GW_ADDRESS_MAX)
        return false;
    int family = s_parse_address(text, addr);
    return family != 0 && inet_ntop(family, addr, out, (socklen_t)len) != NULL;
}
