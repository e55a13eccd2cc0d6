/* cidr: lists of IPv4 and IPv6 networks in CIDR notation ("10.0.0.0/8,
 * ::1/128"), parsed strictly at start, and the test whether a client address
 * falls in one (the staff allow-list, R21, and the trusted proxies). An
 * IPv4-mapped IPv6 address (::ffff:10.1.2.3) counts as the IPv4 address. */
#ifndef GW_CIDR_H
#define GW_CIDR_H

#include <stdbool.h>
#include <stddef.h>

/* Longest address text, with room for an IPv6 address. */
#define GW_ADDRESS_MAX 64

typedef struct gw_cidr_list gw_cidr_list_t;

/* Parses a comma-separated list; spaces around entries are allowed, NULL or
 * "" gives an empty list. An entry is an address with an optional /prefix
 * (0-32 for IPv4, 0-128 for IPv6; without one the address alone). Refused:
 * an empty entry, anything inet_pton does not read (no zone ids, no short
 * IPv4 forms), a prefix that is not plain decimal or too long, bits set
 * beyond the prefix ("10.0.0.1/8"), an IPv4-mapped IPv6 network. NULL with a
 * sentence naming the entry in err; NULL with "out of memory" otherwise. */
gw_cidr_list_t *gw_cidr_list_new(const char *text, char *err, size_t errlen);
void gw_cidr_list_destroy(gw_cidr_list_t **self_p);

/* Networks in the list. */
size_t gw_cidr_list_count(const gw_cidr_list_t *self);

/* True when `address` (text) lies in one of the networks. False for NULL,
 * "", text that is not an address, or an empty list. */
bool gw_cidr_list_contains(const gw_cidr_list_t *self, const char *address);

/* The canonical text of an address (inet_ntop; IPv4-mapped IPv6 as IPv4)
 * into out (len >= GW_ADDRESS_MAX). False when `text` is not an address. */
bool gw_address_normalise(const char *text, char *out, size_t len);

#endif
