/* text: what an SMS text is made of, without I/O: Japanese mobile numbers to
 * E.164, templates with {variables}, and the character and part count of the
 * two alphabets (GSM 03.38 7-bit: 160 in one part, 153 per concatenated part,
 * extension characters twice; UCS-2: 70 and 67, as the phone counts UTF-16
 * units), and the encodings the SMPP provider sends. docs/sms.md. */
#ifndef SMS_TEXT_H
#define SMS_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMS_E164_MAX       16 /* "+81" 10 digits, NUL */
#define SMS_VAR_NAME_MAX   40
#define SMS_VAR_VALUE_MAX  500
#define SMS_BODY_MAX_BYTES 8000

/* A Japanese mobile number ("090-1234-5678", "09012345678", "+81 90 1234
 * 5678", "+81(0)90...", full-width digits) as E.164 ("+819012345678") into
 * out. 0; -EINVAL when it is not a phone number (*ret_why says why, static
 * text); -EPERM for a landline, an IP phone (050), a free dial or another
 * number that is not a mobile (070, 080, 090). */
int sms_number_e164(const char *text, char out[SMS_E164_MAX], const char **ret_why);

/* The count of a UTF-8 text. */
typedef struct {
    bool gsm7;      /* every character in the GSM 7-bit alphabet (and its extension) */
    int characters; /* septets (GSM-7) or UTF-16 units (UCS-2) */
    int parts;      /* 1 up to the limit, 0 for an empty text */
    int per_part;   /* 160/153 or 70/67 */
    int remaining;  /* characters left in the last part */
} sms_count_t;

/* Counts text. -EILSEQ when it is not valid UTF-8. */
int sms_count(const char *text, sms_count_t *ret_count);

/* True for a variable name: 1 to SMS_VAR_NAME_MAX of [a-z0-9_]. */
bool sms_var_name_ok(const char *name, size_t len);

/* The variables of a template body ({name}), in order, each once, into
 * names (a NULL-terminated array of strdup'ed names; caller frees with
 * sms_strv_free). 0 or -ENOMEM. */
int sms_template_variables(const char *body, char ***ret_names);
void sms_strv_free(char **v);

/* Renders body with the values (names[i] -> values[i], n pairs; borrowed).
 * Returns the text (caller frees) and the names with no value in
 * *ret_missing (caller frees with sms_strv_free; NULL when none; ret_missing
 * may be NULL); a missing variable renders as "". NULL on -ENOMEM. */
char *sms_template_render(const char *body, const char *const *names, const char *const *values,
                          size_t n, char ***ret_missing);

/* One part as the SMPP provider sends it: data_coding, the short_message
 * bytes (a UDH first when concatenated) and their length. */
typedef struct {
    uint8_t data_coding; /* 0x00 GSM default alphabet (one septet per octet), 0x08 UCS-2 */
    uint8_t esm_class;   /* 0x40 when a UDH leads */
    uint8_t bytes[160];
    int len;
    int text_offset, text_len; /* the part's characters: bytes of the UTF-8 text split */
} sms_part_t;

/* Splits text into its parts (count as sms_count; UCS-2 never splits a
 * surrogate pair, GSM-7 never an escape) with a concatenation UDH (8-bit
 * reference `ref`) when there are several. *ret_parts (caller frees) and
 * *ret_n. -EILSEQ, -ENOMEM, -E2BIG above 255 parts. */
int sms_text_parts(const char *text, uint8_t ref, sms_part_t **ret_parts, int *ret_n);

#endif
