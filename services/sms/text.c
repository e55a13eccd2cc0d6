/* text: numbers, templates, counting and parts (text.h). */
#include "text.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- numbers ------------------------------------------------------------------------- */

int sms_number_e164(const char *text, char out[SMS_E164_MAX], const char **ret_why)
{
    const char *why_dummy;
    const char **why = ret_why ? ret_why : &why_dummy;
    char digits[32];
    size_t n = 0;
    bool plus = false;
    if (!text || !*text) {
        *why = "the number is empty";
        return -EINVAL;
    }
    const unsigned char *p = (const unsigned char *)text;
    while (*p) {
        unsigned c = *p;
        if (c >= '0' && c <= '9') {
            if (n + 1 >= sizeof digits)
                goto malformed;
            digits[n++] = (char)c;
            p++;
        } else if (c == '+' && n == 0 && !plus) {
            plus = true;
            p++;
        } else if (c == ' ' || c == '-' || c == '(' || c == ')' || c == '.') {
            p++;
        } else if (p[0] == 0xEF && p[1] == 0xBC && p[2] >= 0x90 && p[2] <= 0x99) {
            /* full-width digit */
            if (n + 1 >= sizeof digits)
                goto malformed;
            digits[n++] = (char)('0' + (p[2] - 0x90));
            p += 3;
        } else if (p[0] == 0xEF && p[1] == 0xBC && (p[2] == 0x8B || p[2] == 0x8D) && n == 0 &&
                   !plus && p[2] == 0x8B) {
            plus = true; /* full-width plus */
            p += 3;
        } else if ((p[0] == 0xEF && p[1] == 0xBC && p[2] == 0x8D) ||
                   (p[0] == 0xE2 && p[1] == 0x88 && p[2] == 0x92) ||
                   (p[0] == 0xE3 && p[1] == 0x83 && p[2] == 0xBC) ||
                   (p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x80)) {
            p += 3; /* full-width hyphen, minus sign, long vowel mark, ideographic space */
        } else {
            goto malformed;
        }
    }
    digits[n] = '\0';
    /* The national form: 0 + 9 or 10 digits. */
    const char *national;
    char buf[32];
    if (plus) {
        if (strncmp(digits, "81", 2) != 0) {
            *why = "only Japanese numbers (+81) are accepted";
            return -EPERM;
        }
        /* +81 90..., or +81 (0)90... */
        const char *rest = digits + 2;
        if (rest[0] == '0')
            rest++;
        buf[0] = '0';
        strncpy(buf + 1, rest, sizeof buf - 2);
        buf[sizeof buf - 1] = '\0';
        national = buf;
    } else {
        national = digits;
    }
    size_t len = strlen(national);
    if (national[0] != '0' || len < 10 || len > 11)
        goto malformed;
    bool mobile = len == 11 && national[2] == '0' &&
                  (national[1] == '7' || national[1] == '8' || national[1] == '9');
    if (!mobile) {
        *why = strncmp(national, "050", 3) == 0 ? "an IP phone (050) cannot receive SMS"
               : strncmp(national, "0120", 4) == 0 || strncmp(national, "0800", 4) == 0
                   ? "a free-dial number cannot receive SMS"
                   : "a landline cannot receive SMS: give a mobile number (070, 080, 090)";
        return -EPERM;
    }
    out[0] = '+';
    out[1] = '8';
    out[2] = '1';
    memcpy(out + 3, national + 1, 10);
    out[13] = '\0';
    return 0;
malformed:
    *why = "not a phone number (digits, spaces and hyphens; 090-1234-5678 or +81 90 1234 5678)";
    return -EINVAL;
}

/* ---- UTF-8 ---------------------------------------------------------------------------- */

/* The next code point of s (advances *s); -1 on malformed input. */
static long s_next(const unsigned char **s)
{
    const unsigned char *p = *s;
    unsigned c = p[0];
    long cp;
    int extra;
    if (c < 0x80) {
        *s = p + 1;
        return c;
    } else if ((c & 0xE0) == 0xC0) {
        cp = c & 0x1F;
        extra = 1;
    } else if ((c & 0xF0) == 0xE0) {
        cp = c & 0x0F;
        extra = 2;
    } else if ((c & 0xF8) == 0xF0) {
        cp = c & 0x07;
        extra = 3;
    } else {
        return -1;
    }
    for (int i = 1; i <= extra; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return -1;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    static const long min[] = {0, 0x80, 0x800, 0x10000};
    if (cp < min[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
    *s = p + extra + 1;
    return cp;
}

/* GSM 03.38 default alphabet, by septet. */
static const uint16_t s_gsm[128] = {
    '@',   0xA3, '$',  0xA5,  0xE8, 0xE9,  0xF9,  0xEC,  0xF2,  0xC7,  '\n',  0xD8,  0xF8,
    '\r',  0xC5, 0xE5, 0x394, '_',  0x3A6, 0x393, 0x39B, 0x3A9, 0x3A0, 0x3A8, 0x3A3, 0x398,
    0x39E, 0x1B, 0xC6, 0xE6,  0xDF, 0xC9,  ' ',   '!',   '"',   '#',   0xA4,  '%',   '&',
    '\'',  '(',  ')',  '*',   '+',  ',',   '-',   '.',   '/',   '0',   '1',   '2',   '3',
    '4',   '5',  '6',  '7',   '8',  '9',   ':',   ';',   '<',   '=',   '>',   '?',   0xA1,
    'A',   'B',  'C',  'D',   'E',  'F',   'G',   'H',   'I',   'J',   'K',   'L',   'M',
    'N',   'O',  'P',  'Q',   'R',  'S',   'T',   'U',   'V',   'W',   'X',   'Y',   'Z',
    0xC4,  0xD6, 0xD1, 0xDC,  0xA7, 0xBF,  'a',   'b',   'c',   'd',   'e',   'f',   'g',
    'h',   'i',  'j',  'k',   'l',  'm',   'n',   'o',   'p',   'q',   'r',   's',   't',
    'u',   'v',  'w',  'x',   'y',  'z',   0xE4,  0xF6,  0xF1,  0xFC,  0xE0,
};

/* The extension table (after the escape 0x1B). */
static const struct {
    uint16_t cp;
    uint8_t septet;
} s_gsm_ext[] = {{0x0C, 0x0A}, {'^', 0x14}, {'{', 0x28}, {'}', 0x29}, {'\\', 0x2F},
                 {'[', 0x3C},  {'~', 0x3D}, {']', 0x3E}, {'|', 0x40}, {0x20AC, 0x65}};

/* The septet of cp: 0..127 basic, 0x100|s extension, -1 not in GSM-7. */
static int s_gsm_septet(long cp)
{
    if (cp == 0x1B)
        return -1;
    for (int i = 0; i < 128; i++)
        if (s_gsm[i] == cp)
            return i;
    for (size_t i = 0; i < sizeof s_gsm_ext / sizeof s_gsm_ext[0]; i++)
        if (s_gsm_ext[i].cp == cp)
            return 0x100 | s_gsm_ext[i].septet;
    return -1;
}

int sms_count(const char *text, sms_count_t *ret_count)
{
    sms_count_t c = {.gsm7 = true};
    int septets = 0, units = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p;) {
        long cp = s_next(&p);
        if (cp < 0)
            return -EILSEQ;
        int s = c.gsm7 ? s_gsm_septet(cp) : -1;
        if (s < 0)
            c.gsm7 = false;
        else
            septets += s & 0x100 ? 2 : 1;
        units += cp > 0xFFFF ? 2 : 1;
    }
    int single = c.gsm7 ? 160 : 70, multi = c.gsm7 ? 153 : 67;
    c.characters = c.gsm7 ? septets : units;
    if (c.characters == 0) {
        c.parts = 0;
        c.per_part = single;
        c.remaining = single;
    } else if (c.characters <= single) {
        c.parts = 1;
        c.per_part = single;
        c.remaining = single - c.characters;
    } else {
        c.parts = (c.characters + multi - 1) / multi;
        c.per_part = multi;
        c.remaining = c.parts * multi - c.characters;
    }
    *ret_count = c;
    return 0;
}

/* ---- templates ------------------------------------------------------------------------ */

bool sms_var_name_ok(const char *name, size_t len)
{
    if (len == 0 || len > SMS_VAR_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

void sms_strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

/* Adds a copy of name[0..len) to *v (n entries) unless present. */
static int s_strv_add(char ***v, size_t *n, const char *name, size_t len)
{
    for (size_t i = 0; i < *n; i++)
        if (strlen((*v)[i]) == len && memcmp((*v)[i], name, len) == 0)
            return 0;
    char **grown = realloc(*v, (*n + 2) * sizeof *grown);
    if (!grown)
        return -ENOMEM;
    *v = grown;
    grown[*n] = strndup(name, len);
    if (!grown[*n])
        return -ENOMEM;
    grown[++*n] = NULL;
    return 0;
}

/* At p a "{name}": its length (name) and where the name starts, else 0. */
static size_t s_var_at(const char *p, const char **ret_name)
{
    if (*p != '{')
        return 0;
    const char *end = strchr(p + 1, '}');
    if (!end || !sms_var_name_ok(p + 1, (size_t)(end - p - 1)))
        return 0;
    *ret_name = p + 1;
    return (size_t)(end - p - 1);
}

int sms_template_variables(const char *body, char ***ret_names)
{
    char **v = calloc(1, sizeof *v);
    size_t n = 0;
    if (!v)
        return -ENOMEM;
    for (const char *p = body; *p; p++) {
        const char *name;
        size_t len = s_var_at(p, &name);
        if (len == 0)
            continue;
        if (s_strv_add(&v, &n, name, len) < 0) {
            sms_strv_free(v);
            return -ENOMEM;
        }
        p += len + 1;
    }
    *ret_names = v;
    return 0;
}

char *sms_template_render(const char *body, const char *const *names, const char *const *values,
                          size_t n, char ***ret_missing)
{
    size_t cap = strlen(body) + 1;
    for (size_t i = 0; i < n; i++)
        cap += strlen(values[i]) * 4; /* a variable used several times */
    cap += 64;
    char *out = malloc(cap);
    char **missing = NULL;
    size_t n_missing = 0, len = 0;
    if (!out)
        return NULL;
    for (const char *p = body; *p;) {
        const char *name;
        size_t nlen = s_var_at(p, &name);
        const char *add = p;
        size_t alen = 1;
        if (nlen > 0) {
            add = "";
            alen = 0;
            bool found = false;
            for (size_t i = 0; i < n && !found; i++) {
                if (strlen(names[i]) == nlen && memcmp(names[i], name, nlen) == 0) {
                    add = values[i];
                    alen = strlen(add);
                    found = true;
                }
            }
            if (!found && s_strv_add(&missing, &n_missing, name, nlen) < 0)
                goto fail;
            p += nlen + 2;
        } else {
            p++;
        }
        if (len + alen + 1 > cap) {
            cap = (len + alen + 1) * 2;
            char *grown = realloc(out, cap);
            if (!grown)
                goto fail;
            out = grown;
        }
        memcpy(out + len, add, alen);
        len += alen;
    }
    out[len] = '\0';
    if (ret_missing)
        *ret_missing = missing;
    else
        sms_strv_free(missing);
    return out;
fail:
    free(out);
    sms_strv_free(missing);
    return NULL;
}

/* ---- parts ---------------------------------------------------------------------------- */

int sms_text_parts(const char *text, uint8_t ref, sms_part_t **ret_parts, int *ret_n)
{
    sms_count_t count;
    if (sms_count(text, &count) < 0)
        return -EILSEQ;
    if (count.parts > 255)
        return -E2BIG;
    int total = count.parts ? count.parts : 1;
    /* An escape pair kept whole at a boundary may need one part more than
     * the count says: room for it, and the UDH totals fixed at the end. */
    int cap = total + 2;
    sms_part_t *parts = calloc((size_t)cap, sizeof *parts);
    if (!parts)
        return -ENOMEM;
    bool udh = total > 1;
    int n = 0;
    const unsigned char *p = (const unsigned char *)text;
    while (n < cap) {
        sms_part_t *part = &parts[n];
        part->data_coding = count.gsm7 ? 0x00 : 0x08;
        part->esm_class = udh ? 0x40 : 0x00;
        if (udh) {
            const uint8_t h[6] = {0x05, 0x00, 0x03, ref, (uint8_t)total, (uint8_t)(n + 1)};
            memcpy(part->bytes, h, 6);
            part->len = 6;
        }
        int room = count.per_part; /* septets or UTF-16 units */
        int used = 0;
        part->text_offset = (int)(p - (const unsigned char *)text);
        while (*p) {
            const unsigned char *save = p;
            long cp = s_next(&p);
            if (count.gsm7) {
                int s = s_gsm_septet(cp);
                int need = s & 0x100 ? 2 : 1;
                if (used + need > room) {
                    p = save;
                    break;
                }
                if (s & 0x100)
                    part->bytes[part->len++] = 0x1B;
                part->bytes[part->len++] = (uint8_t)(s & 0x7F);
                used += need;
            } else {
                int need = cp > 0xFFFF ? 2 : 1;
                if (used + need > room) {
                    p = save;
                    break;
                }
                if (cp > 0xFFFF) {
                    long v = cp - 0x10000;
                    unsigned hi = 0xD800 + (unsigned)(v >> 10), lo = 0xDC00 + (unsigned)(v & 0x3FF);
                    part->bytes[part->len++] = (uint8_t)(hi >> 8);
                    part->bytes[part->len++] = (uint8_t)hi;
                    part->bytes[part->len++] = (uint8_t)(lo >> 8);
                    part->bytes[part->len++] = (uint8_t)lo;
                } else {
                    part->bytes[part->len++] = (uint8_t)(cp >> 8);
                    part->bytes[part->len++] = (uint8_t)cp;
                }
                used += need;
            }
        }
        part->text_len = (int)(p - (const unsigned char *)text) - part->text_offset;
        n++;
        if (!*p)
            break;
    }
    if (*p || n > 255) {
        free(parts);
        return -E2BIG;
    }
    for (int i = 0; udh && i < n; i++)
        parts[i].bytes[4] = (uint8_t)n;
    *ret_parts = parts;
    *ret_n = n;
    return 0;
}
