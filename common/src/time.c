/* time: the shape of the times the API takes (ncc/time.h). */
#include "ncc/time.h"

#include <string.h>

/* n digits at p as a number, or -1. */
static int s_digits(const char *p, int n)
{
    int value = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        value = value * 10 + (p[i] - '0');
    }
    return value;
}

bool ncc_rfc3339_valid(const char *text)
{
    if (!text || strlen(text) < 17)
        return false;
    int year = s_digits(text, 4), month = s_digits(text + 5, 2), day = s_digits(text + 8, 2);
    int hour = s_digits(text + 11, 2), minute = s_digits(text + 14, 2);
    if (year < 0 || text[4] != '-' || month < 1 || month > 12 || text[7] != '-' || day < 1 ||
        day > 31 || (text[10] != 'T' && text[10] != 't') || hour < 0 || hour > 23 ||
        text[13] != ':' || minute < 0 || minute > 59)
        return false;
    const char *p = text + 16;
    if (*p == ':') {
        int second = s_digits(p + 1, 2);
        if (second < 0 || second > 59)
            return false;
        p += 3;
        if (*p == '.') {
            size_t digits = strspn(++p, "0123456789");
            if (digits == 0 || digits > 9)
                return false;
            p += digits;
        }
    }
    if (strcmp(p, "Z") == 0 || strcmp(p, "z") == 0)
        return true;
    if ((*p != '+' && *p != '-') || strlen(p) != 6 || p[3] != ':')
        return false;
    int off_h = s_digits(p + 1, 2), off_m = s_digits(p + 4, 2);
    return off_h >= 0 && off_h <= 23 && off_m >= 0 && off_m <= 59;
}
