/* time: the shape of the times the API takes. */
#ifndef NCC_TIME_H
#define NCC_TIME_H

#include <stdbool.h>

/* True for an RFC 3339 date-time with an offset, as the API takes it:
 * 2027-04-01T09:00:00+09:00, ...Z, seconds optional, a fraction of 1 to 9
 * digits; the fields in range (month 1-12, day 1-31, hour 0-23, minute and
 * second 0-59, offset hours 0-23). PostgreSQL checks the calendar (no 2/30)
 * where the value is stored. */
bool ncc_rfc3339_valid(const char *text);

#endif
