/* mask: replaces Japanese personal data in a text by typed placeholders
 * ([氏名], [電話番号] ...) before any summarizer or outside service sees it
 * (R22), and reports where each entity was. Names come from MeCab (IPA
 * dictionary 人名 tags) and their context (様, さん, お名前は); addresses
 * from MeCab's 地域 tags down to 丁目/番地/号, building and room; digit runs
 * (ASCII, full-width, kanji or spoken: ゼロキュウゼロ) become phone numbers,
 * postal codes, マイナンバー (check digit), card numbers (Luhn), bank
 * accounts, insurance and pension numbers by their shape and the words
 * before them; birth dates in Western and Japanese eras; e-mail addresses.
 * docs/summary.md has the rules and the measured precision and recall.
 *
 * Library code: it does not log. One mask_t per thread (MeCab's tagger). */
#ifndef SUMMARY_MASK_H
#define SUMMARY_MASK_H

#include <stddef.h>

typedef enum {
    MASK_NAME,
    MASK_ADDRESS,
    MASK_PHONE,
    MASK_EMAIL,
    MASK_POSTAL,
    MASK_MY_NUMBER,
    MASK_BIRTH_DATE,
    MASK_BANK_ACCOUNT,
    MASK_CARD,
    MASK_INSURANCE,
    MASK_PENSION,
    MASK_TYPE_COUNT
} mask_type_t;

typedef struct {
    mask_type_t type;
    size_t start, end; /* [start, end) in Unicode code points of the input */
} mask_entity_t;

typedef struct mask mask_t;

/* A masker with its own MeCab tagger (the system dictionary, IPA), or NULL
 * when MeCab cannot start. */
mask_t *mask_new(void);
void mask_destroy(mask_t **self_p);

/* Masks `text` (UTF-8, `len` bytes). On success writes the masked text
 * (caller frees), the entities in text order (caller frees; NULL when none)
 * and their count. 0, -EILSEQ for invalid UTF-8 or a NUL byte, -ENOMEM. */
int mask_text(mask_t *self, const char *text, size_t len, char **ret_masked,
              mask_entity_t **ret_entities, size_t *ret_count);

/* "name", "address", "phone", "email", "postal_code", "my_number",
 * "birth_date", "bank_account", "card_number", "insurance_number",
 * "pension_number" (borrowed); NULL for an unknown type. */
const char *mask_type_name(mask_type_t type);

/* The placeholder of a type ("[氏名]"), borrowed. */
const char *mask_placeholder(mask_type_t type);

/* The type named `name` (as mask_type_name, or the placeholder without its
 * brackets: "氏名"), or -1. */
int mask_type_parse(const char *name);

/* True when the 12 digits pass the マイナンバー check digit. */
int mask_my_number_ok(const char *digits);

/* True when the digits pass the Luhn check. */
int mask_luhn_ok(const char *digits);

#endif
