/* mask: Japanese personal data to typed placeholders (mask.h). The text is
 * decoded to code points and normalised one code point to one (NFKC through
 * utf8proc where it gives a single code point: full-width digits and
 * letters, half-width kana; dashes to '-'), so spans found in the
 * normalised copy are spans of the input. Candidates are collected by kind,
 * most specific first; a candidate that overlaps an accepted one is dropped. */
#include "mask.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mecab.h>
#include <utf8proc.h>

#define S_DIGITS_MAX 24 /* longest digit run read */
#define S_CONTEXT    16 /* code points looked at before a number */

struct mask {
    mecab_t *mecab; /* owned */
};

static const char *const s_names[MASK_TYPE_COUNT] = {
    "name",        "address",          "phone",         "email",
    "postal_code", "my_number",        "birth_date",    "bank_account",
    "card_number", "insurance_number", "pension_number"};
static const char *const s_placeholders[MASK_TYPE_COUNT] = {
    "[氏名]",     "[住所]",     "[電話番号]",   "[メール]",     "[郵便番号]", "[マイナンバー]",
    "[生年月日]", "[口座番号]", "[カード番号]", "[保険証番号]", "[年金番号]"};

const char *mask_type_name(mask_type_t type)
{
    return (unsigned)type < MASK_TYPE_COUNT ? s_names[type] : NULL;
}

const char *mask_placeholder(mask_type_t type)
{
    return (unsigned)type < MASK_TYPE_COUNT ? s_placeholders[type] : "[個人情報]";
}

int mask_type_parse(const char *name)
{
    for (int i = 0; name && i < MASK_TYPE_COUNT; i++) {
        size_t n = strlen(s_placeholders[i]) - 2;
        if (strcmp(name, s_names[i]) == 0 ||
            (strlen(name) == n && memcmp(name, s_placeholders[i] + 1, n) == 0))
            return i;
    }
    return -1;
}

int mask_my_number_ok(const char *digits)
{
    if (strlen(digits) != 12 || strspn(digits, "0123456789") != 12)
        return 0;
    int sum = 0;
    for (int n = 1; n <= 11; n++) {
        int p = digits[11 - n] - '0';
        int q = n <= 6 ? n + 1 : n - 5;
        sum += p * q;
    }
    int rem = sum % 11;
    int check = rem <= 1 ? 0 : 11 - rem;
    return check == digits[11] - '0';
}

int mask_luhn_ok(const char *digits)
{
    size_t len = strlen(digits);
    if (len < 12 || strspn(digits, "0123456789") != len)
        return 0;
    int sum = 0;
    for (size_t i = 0; i < len; i++) {
        int d = digits[len - 1 - i] - '0';
        if (i % 2 == 1) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        sum += d;
    }
    return sum % 10 == 0;
}

mask_t *mask_new(void)
{
    mask_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->mecab = mecab_new2("");
    if (!self->mecab) {
        free(self);
        return NULL;
    }
    return self;
}

void mask_destroy(mask_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    mecab_destroy((*self_p)->mecab);
    free(*self_p);
    *self_p = NULL;
}

/* ---- the text as code points --------------------------------------------------------------- */

typedef struct {
    int32_t *orig;   /* the input's code points */
    int32_t *norm;   /* normalised, one for one */
    size_t *offset;  /* byte offset of code point i in the input (n + 1 entries) */
    size_t n;        /* code points */
    char *utf8;      /* the normalised text as UTF-8 (for MeCab) */
    size_t *byte_cp; /* utf8 byte offset -> code point index (utf8 length + 1 entries) */
    size_t utf8_len;
    mask_entity_t *found; /* accepted entities */
    size_t found_n, found_cap;
} s_text_t;

static void s_text_free(s_text_t *t)
{
    free(t->orig);
    free(t->norm);
    free(t->offset);
    free(t->utf8);
    free(t->byte_cp);
    free(t->found);
}

static bool s_is_dash(int32_t c)
{
    return c == '-' || (c >= 0x2010 && c <= 0x2015) || c == 0x2212 || c == 0xFF0D || c == 0xFE63 ||
           c == 0x30FC || c == 0xFF70;
}

static int32_t s_normalise(int32_t c)
{
    if (c >= 0xFF01 && c <= 0xFF5E)
        return c - 0xFEE0;
    if (c == 0x3000)
        return ' ';
    if (s_is_dash(c) && c != 0x30FC && c != 0xFF70)
        return '-';
    if (c < 0x80)
        return c;
    utf8proc_int32_t out[4];
    int rc;
    utf8proc_ssize_t n =
        utf8proc_decompose_char(c, out, 4, UTF8PROC_COMPAT | UTF8PROC_COMPOSE, &rc);
    if (n == 1)
        return out[0];
    return c;
}

static int s_text_init(s_text_t *t, const char *text, size_t len)
{
    memset(t, 0, sizeof *t);
    t->orig = malloc((len + 1) * sizeof *t->orig);
    t->norm = malloc((len + 1) * sizeof *t->norm);
    t->offset = malloc((len + 1) * sizeof *t->offset);
    t->utf8 = malloc(len * 4 + 1);
    t->byte_cp = malloc((len * 4 + 1) * sizeof *t->byte_cp);
    if (!t->orig || !t->norm || !t->offset || !t->utf8 || !t->byte_cp)
        return -ENOMEM;
    size_t pos = 0;
    while (pos < len) {
        utf8proc_int32_t c;
        utf8proc_ssize_t step = utf8proc_iterate((const utf8proc_uint8_t *)text + pos,
                                                 (utf8proc_ssize_t)(len - pos), &c);
        if (step <= 0 || c == 0)
            return -EILSEQ;
        t->offset[t->n] = pos;
        t->orig[t->n] = c;
        t->norm[t->n] = s_normalise(c);
        t->n++;
        pos += (size_t)step;
    }
    t->offset[t->n] = len;
    for (size_t i = 0; i < t->n; i++) {
        utf8proc_ssize_t w =
            utf8proc_encode_char(t->norm[i], (utf8proc_uint8_t *)t->utf8 + t->utf8_len);
        for (utf8proc_ssize_t k = 0; k < w; k++)
            t->byte_cp[t->utf8_len + (size_t)k] = i;
        t->utf8_len += (size_t)w;
    }
    t->byte_cp[t->utf8_len] = t->n;
    t->utf8[t->utf8_len] = '\0';
    return 0;
}

/* Whether [start, end) is free of accepted entities. */
static bool s_free(const s_text_t *t, size_t start, size_t end)
{
    for (size_t i = 0; i < t->found_n; i++)
        if (start < t->found[i].end && t->found[i].start < end)
            return false;
    return true;
}

static int s_accept(s_text_t *t, mask_type_t type, size_t start, size_t end)
{
    if (end <= start || !s_free(t, start, end))
        return 0;
    if (t->found_n == t->found_cap) {
        size_t cap = t->found_cap ? t->found_cap * 2 : 16;
        mask_entity_t *grown = realloc(t->found, cap * sizeof *grown);
        if (!grown)
            return -ENOMEM;
        t->found = grown;
        t->found_cap = cap;
    }
    t->found[t->found_n++] = (mask_entity_t){type, start, end};
    return 0;
}

/* Whether the normalised text at i starts with `word` (UTF-8). */
static bool s_at(const s_text_t *t, size_t i, const char *word)
{
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)word;
    while (*p) {
        utf8proc_int32_t c;
        utf8proc_ssize_t step = utf8proc_iterate(p, -1, &c);
        if (step <= 0 || i >= t->n || t->norm[i] != c)
            return false;
        p += step;
        i++;
    }
    return true;
}

static size_t s_cp_len(const char *word)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)word; *p; p++)
        n += (*p & 0xC0) != 0x80;
    return n;
}

/* The position just after the last occurrence of one of `words` in the
 * S_CONTEXT code points before `pos` (stopping at a sentence end), or 0 when
 * none; *ret_index is the word's index. */
static size_t s_context(const s_text_t *t, size_t pos, const char *const *words, size_t count,
                        size_t window, size_t *ret_index)
{
    size_t from = pos > window ? pos - window : 0;
    for (size_t i = pos; i > from; i--) {
        int32_t c = t->norm[i - 1];
        if (c == 0x3002 || c == '.' || c == '?' || c == '!' || c == '\n') {
            from = i;
            break;
        }
    }
    size_t best = 0;
    for (size_t i = from; i < pos; i++)
        for (size_t w = 0; w < count; w++)
            if (s_at(t, i, words[w]) && i + s_cp_len(words[w]) > best) {
                best = i + s_cp_len(words[w]);
                *ret_index = w;
            }
    return best;
}

/* ---- e-mail ------------------------------------------------------------------------------------
 */

static bool s_email_local(int32_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '%' || c == '+' || c == '-';
}

static bool s_email_domain(int32_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-';
}

static int s_find_email(s_text_t *t)
{
    for (size_t i = 0; i < t->n; i++) {
        size_t at_len = t->norm[i] == '@' ? 1 : s_at(t, i, "アットマーク") ? 6 : 0;
        if (!at_len)
            continue;
        size_t start = i;
        while (start > 0 && (s_email_local(t->norm[start - 1]) || t->norm[start - 1] == ' ') &&
               i - start < 64)
            start--;
        while (start < i && t->norm[start] == ' ')
            start++;
        size_t end = i + at_len;
        while (end < t->n && t->norm[end] == ' ')
            end++;
        size_t domain = end;
        bool dot = false;
        while (end < t->n && s_email_domain(t->norm[end]) && end - domain < 255) {
            dot = dot || (t->norm[end] == '.' && end > domain);
            end++;
        }
        while (end > domain && t->norm[end - 1] == '.')
            end--;
        if (start < i && dot && s_accept(t, MASK_EMAIL, start, end) < 0)
            return -ENOMEM;
    }
    return 0;
}

/* ---- digit runs -------------------------------------------------------------------------------
 */

typedef struct {
    const char *word; /* katakana only: hiragana に, ご, さん are particles and honorifics */
    char digit;
} s_spoken_t;

/* Longest first where one is a prefix of another. */
static const s_spoken_t s_spoken[] = {
    {"ゼロ", '0'}, {"レイ", '0'},   {"マル", '0'},   {"イチ", '1'}, {"ニー", '2'}, {"ニ", '2'},
    {"サン", '3'}, {"ヨン", '4'},   {"ゴー", '5'},   {"ゴ", '5'},   {"ロク", '6'}, {"ナナ", '7'},
    {"ハチ", '8'}, {"キュウ", '9'}, {"キュー", '9'}, {"キュ", '9'},
};

/* A digit at i: its value into *ret_digit and its length, or 0. */
static size_t s_digit_at(const s_text_t *t, size_t i, char *ret_digit, bool *ret_spoken)
{
    int32_t c = t->norm[i];
    if (c >= '0' && c <= '9') {
        *ret_digit = (char)c;
        return 1;
    }
    static const int32_t kanji[] = {0x3007, 0x4E00, 0x4E8C, 0x4E09, 0x56DB,
                                    0x4E94, 0x516D, 0x4E03, 0x516B, 0x4E5D};
    for (int d = 0; d < 10; d++)
        if (c == kanji[d]) {
            *ret_digit = (char)('0' + d);
            return 1;
        }
    if (c == 0x96F6) { /* 零 */
        *ret_digit = '0';
        return 1;
    }
    for (size_t s = 0; s < sizeof s_spoken / sizeof s_spoken[0]; s++) {
        const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s_spoken[s].word;
        size_t k = i;
        bool match = true;
        while (*p && match) {
            utf8proc_int32_t w;
            p += utf8proc_iterate(p, -1, &w);
            match = k < t->n && t->norm[k] == w;
            k++;
        }
        if (match) {
            *ret_digit = s_spoken[s].digit;
            *ret_spoken = true;
            return k - i;
        }
    }
    return 0;
}

static bool s_separator(int32_t c)
{
    return c == '-' || c == ' ' || c == 0x3001 || c == ',' || c == '(' || c == ')' ||
           c == 0x306E /* の */ || c == 0x30FB || c == 0x30FC || c == 0xFF70 || c == '.' ||
           c == '/';
}

typedef struct {
    size_t start, end; /* code points */
    char digits[S_DIGITS_MAX + 1];
    size_t count;
    int groups[8]; /* digits per group, between separators */
    size_t n_groups;
    bool spoken;
    bool plus; /* "+81..." */
    bool kanji_only;
} s_run_t;

/* Reads the digit run starting at i (a digit must be there). */
static size_t s_read_run(const s_text_t *t, size_t i, s_run_t *run)
{
    memset(run, 0, sizeof *run);
    run->start = i;
    run->plus = i > 0 && t->norm[i - 1] == '+';
    if (run->plus)
        run->start = i - 1;
    run->kanji_only = true;
    size_t pos = i;
    run->n_groups = 1;
    int last_kind = -1; /* 0 written, 1 spoken */
    for (;;) {
        char digit;
        bool spoken = false;
        size_t step = s_digit_at(t, pos, &digit, &spoken);
        if (!step || (last_kind >= 0 && last_kind != (int)spoken && pos == run->end))
            break;
        last_kind = spoken;
        run->spoken = run->spoken || spoken;
        if (t->norm[pos] < 0x80 || step > 1)
            run->kanji_only = false;
        if (run->count < S_DIGITS_MAX)
            run->digits[run->count++] = digit;
        if (run->n_groups <= 8)
            run->groups[run->n_groups - 1]++;
        pos += step;
        run->end = pos;
        /* up to two separators, then a digit must follow */
        size_t sep = 0;
        while (sep < 2 && pos + sep < t->n && s_separator(t->norm[pos + sep]))
            sep++;
        char next;
        bool next_spoken = false;
        if (sep > 0 && pos + sep < t->n && s_digit_at(t, pos + sep, &next, &next_spoken)) {
            pos += sep;
            if (run->n_groups < 8)
                run->n_groups++;
            continue;
        }
        if (sep > 0)
            break;
    }
    run->digits[run->count] = '\0';
    return run->end;
}

enum { K_PHONE, K_POSTAL, K_MY_NUMBER, K_CARD, K_BANK, K_INSURANCE, K_PENSION };

static const char *const s_number_words[] = {
    "電話",       "携帯",     "連絡先", "TEL",          "Tel",      "tel",        "FAX",
    "ファックス", "郵便番号", "〒",     "マイナンバー", "個人番号", "カード",     "口座",
    "普通",       "当座",     "保険証", "被保険者",     "記号",     "保険者番号", "年金"};
static const int s_number_kinds[] = {
    K_PHONE, K_PHONE,  K_PHONE,     K_PHONE,     K_PHONE,     K_PHONE,     K_PHONE,
    K_PHONE, K_POSTAL, K_POSTAL,    K_MY_NUMBER, K_MY_NUMBER, K_CARD,      K_BANK,
    K_BANK,  K_BANK,   K_INSURANCE, K_INSURANCE, K_INSURANCE, K_INSURANCE, K_PENSION};

/* The type of a digit run, or -1 when it is not personal data. */
static int s_classify(const s_text_t *t, const s_run_t *run)
{
    size_t n = run->count;
    size_t word = 0;
    size_t ctx = s_context(t, run->start, s_number_words,
                           sizeof s_number_words / sizeof s_number_words[0], S_CONTEXT, &word);
    int kind = ctx ? s_number_kinds[word] : -1;
    if (n < 4 && kind != K_INSURANCE)
        return -1;
    bool phone_shape = (run->digits[0] == '0' && (n == 10 || n == 11)) ||
                       (run->plus && strncmp(run->digits, "81", 2) == 0 && n >= 11 && n <= 12);
    if (kind == K_POSTAL && n == 7)
        return MASK_POSTAL;
    if (kind == K_MY_NUMBER && n == 12)
        return MASK_MY_NUMBER;
    if (kind == K_CARD && n >= 13 && n <= 19)
        return MASK_CARD;
    if (kind == K_BANK && n >= 6 && n <= 8)
        return MASK_BANK_ACCOUNT;
    if (kind == K_INSURANCE && n >= 2 && n <= 16)
        return MASK_INSURANCE;
    if (kind == K_PENSION && n >= 10 && n <= 10)
        return MASK_PENSION;
    if (phone_shape)
        return MASK_PHONE;
    if (kind == K_PHONE && n >= 8 && n <= 11)
        return MASK_PHONE;
    if (n == 12 && mask_my_number_ok(run->digits))
        return MASK_MY_NUMBER;
    if (n >= 13 && n <= 19 && mask_luhn_ok(run->digits))
        return MASK_CARD;
    if (n == 7 && run->n_groups == 2 && run->groups[0] == 3 && run->groups[1] == 4 && !run->spoken)
        return MASK_POSTAL;
    return -1;
}

static int s_find_numbers(s_text_t *t)
{
    for (size_t i = 0; i < t->n;) {
        char digit;
        bool spoken = false;
        if (!s_digit_at(t, i, &digit, &spoken)) {
            i++;
            continue;
        }
        /* not in the middle of a word or a larger ASCII token */
        s_run_t run;
        size_t end = s_read_run(t, i, &run);
        int type = run.count >= 2 && !(run.kanji_only && run.n_groups == 1 && run.count < 10)
                       ? s_classify(t, &run)
                       : -1;
        if (type >= 0 && s_accept(t, (mask_type_t)type, run.start, run.end) < 0)
            return -ENOMEM;
        i = end > i ? end : i + 1;
    }
    return 0;
}

/* ---- birth dates ------------------------------------------------------------------------------
 */

/* A number at i (ASCII digits or kanji numerals such as 五十, 三十一, 元):
 * its value and the code points read, or 0. */
static size_t s_number_at(const s_text_t *t, size_t i, int *ret_value)
{
    size_t k = i;
    int value = 0;
    while (k < t->n && t->norm[k] >= '0' && t->norm[k] <= '9' && k - i < 4)
        value = value * 10 + (t->norm[k++] - '0');
    if (k > i) {
        *ret_value = value;
        return k - i;
    }
    if (t->norm[i] == 0x5143) { /* 元 (the first year of an era) */
        *ret_value = 1;
        return 1;
    }
    static const int32_t kanji[] = {0x3007, 0x4E00, 0x4E8C, 0x4E09, 0x56DB,
                                    0x4E94, 0x516D, 0x4E03, 0x516B, 0x4E5D};
    int current = 0, total = 0;
    bool any = false;
    for (; k < t->n && k - i < 8; k++) {
        int d = -1;
        for (int j = 0; j < 10; j++)
            if (t->norm[k] == kanji[j])
                d = j;
        if (d >= 0) {
            current = current * 10 + d;
            any = true;
        } else if (t->norm[k] == 0x5341) { /* 十 */
            total += (current ? current : 1) * 10;
            current = 0;
            any = true;
        } else if (t->norm[k] == 0x767E) { /* 百 */
            total += (current ? current : 1) * 100;
            current = 0;
            any = true;
        } else {
            break;
        }
    }
    if (!any)
        return 0;
    *ret_value = total + current;
    return k - i;
}

static size_t s_skip_spaces(const s_text_t *t, size_t i)
{
    while (i < t->n && t->norm[i] == ' ')
        i++;
    return i;
}

static const char *const s_eras[] = {"明治", "大正", "昭和", "平成", "令和"};

/* A date at i: Y年M月D日 (era or Western), Y/M/D, Y-M-D, Y.M.D; or a year
 * followed by 生まれ. Its end and whether it names an era before 令和. */
static size_t s_date_at(const s_text_t *t, size_t i, int *ret_era, int *ret_year, bool *ret_full)
{
    size_t k = i;
    *ret_era = -1;
    for (int e = 0; e < 5; e++)
        if (s_at(t, i, s_eras[e])) {
            *ret_era = e;
            k = s_skip_spaces(t, i + 2);
        }
    if (*ret_era < 0 && k < t->n && strchr("MTSHR", (int)(t->norm[k] < 0x80 ? t->norm[k] : 0)) &&
        t->norm[k] != 0 && k + 1 < t->n && t->norm[k + 1] >= '0' && t->norm[k + 1] <= '9' &&
        (k == 0 || !s_email_domain(t->norm[k - 1]))) {
        *ret_era = (int)(strchr("MTSHR", (int)t->norm[k]) - "MTSHR");
        k++;
    }
    int year = 0, month = 0, day = 0;
    size_t step = s_number_at(t, k, &year);
    if (!step)
        return 0;
    if (*ret_era < 0 && (year < 1900 || year > 2100 || step != 4))
        return 0;
    k += step;
    k = s_skip_spaces(t, k);
    int32_t sep = k < t->n ? t->norm[k] : 0;
    bool kanji = sep == 0x5E74; /* 年 */
    if (!kanji && sep != '/' && sep != '-' && sep != '.')
        return 0;
    if (kanji && *ret_era >= 0 && k + 2 < t->n && s_at(t, k + 1, "度"))
        return 0; /* 令和7年度: a fiscal year */
    k = s_skip_spaces(t, k + 1);
    *ret_year = year;
    *ret_full = false;
    size_t year_end = k;
    step = s_number_at(t, k, &month);
    if (!step || month < 1 || month > 12) {
        /* a year only: a birth date when 生まれ follows */
        if (kanji && s_at(t, year_end, "生まれ"))
            return year_end;
        return 0;
    }
    k += step;
    k = s_skip_spaces(t, k);
    if (k >= t->n || t->norm[k] != (kanji ? 0x6708 /* 月 */ : sep))
        return 0;
    k = s_skip_spaces(t, k + 1);
    step = s_number_at(t, k, &day);
    if (!step || day < 1 || day > 31)
        return 0;
    k += step;
    if (kanji) {
        k = s_skip_spaces(t, k);
        if (k >= t->n || t->norm[k] != 0x65E5) /* 日 */
            return 0;
        k++;
    }
    *ret_full = true;
    return k;
}

static const char *const s_birth_words[] = {"生年月日", "生まれ", "誕生日", "誕生"};

static int s_find_dates(s_text_t *t)
{
    for (size_t i = 0; i < t->n; i++) {
        int era, year;
        bool full;
        size_t end = s_date_at(t, i, &era, &year, &full);
        if (!end)
            continue;
        size_t word = 0;
        bool before = s_context(t, i, s_birth_words, 4, 12, &word) > 0;
        bool after = false;
        for (size_t k = end; k < end + 4 && k < t->n && !after; k++)
            after = s_at(t, k, "生まれ") || s_at(t, k, "生") || s_at(t, k, "の誕生");
        bool birth =
            before || after || (full && era >= 0 && era <= 3) || (full && era < 0 && year < 2005);
        if (birth && s_accept(t, MASK_BIRTH_DATE, i, end) < 0)
            return -ENOMEM;
        if (birth)
            i = end - 1;
    }
    return 0;
}

/* ---- MeCab: addresses and names -------------------------------------------------------------- */

typedef struct {
    size_t start, end;                /* code points */
    char pos[24], sub1[24], sub2[24]; /* 名詞, 固有名詞, 人名 */
    bool unknown;
    char surface[64];
} s_token_t;

static void s_field(const char *feature, int index, char *buf, size_t len)
{
    const char *p = feature;
    for (int i = 0; i < index && p; i++) {
        p = strchr(p, ',');
        if (p)
            p++;
    }
    size_t n = p ? strcspn(p, ",") : 0;
    if (n >= len)
        n = len - 1;
    if (n)
        memcpy(buf, p, n);
    buf[n] = '\0';
}

static int s_tokens(mask_t *self, s_text_t *t, s_token_t **ret, size_t *ret_n)
{
    *ret = NULL;
    *ret_n = 0;
    const mecab_node_t *node = mecab_sparse_tonode2(self->mecab, t->utf8, t->utf8_len);
    if (!node)
        return -ENOMEM;
    size_t cap = 64, n = 0;
    s_token_t *tokens = malloc(cap * sizeof *tokens);
    if (!tokens)
        return -ENOMEM;
    for (; node; node = node->next) {
        if (node->stat == MECAB_BOS_NODE || node->stat == MECAB_EOS_NODE || node->length == 0)
            continue;
        if (n == cap) {
            cap *= 2;
            s_token_t *grown = realloc(tokens, cap * sizeof *grown);
            if (!grown) {
                free(tokens);
                return -ENOMEM;
            }
            tokens = grown;
        }
        s_token_t *tok = &tokens[n++];
        size_t byte = (size_t)(node->surface - t->utf8);
        tok->start = t->byte_cp[byte];
        tok->end = t->byte_cp[byte + node->length];
        s_field(node->feature, 0, tok->pos, sizeof tok->pos);
        s_field(node->feature, 1, tok->sub1, sizeof tok->sub1);
        s_field(node->feature, 2, tok->sub2, sizeof tok->sub2);
        tok->unknown = node->stat == MECAB_UNK_NODE;
        size_t len = node->length < sizeof tok->surface ? node->length : sizeof tok->surface - 1;
        memcpy(tok->surface, node->surface, len);
        tok->surface[len] = '\0';
    }
    *ret = tokens;
    *ret_n = n;
    return 0;
}

static bool s_is(const s_token_t *tok, const char *pos, const char *sub1, const char *sub2)
{
    return strcmp(tok->pos, pos) == 0 && (!sub1 || strcmp(tok->sub1, sub1) == 0) &&
           (!sub2 || strcmp(tok->sub2, sub2) == 0);
}

static bool s_is_number(const s_token_t *tok)
{
    return s_is(tok, "名詞", "数", NULL);
}

static bool s_in(const char *word, const char *const *list)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(word, list[i]) == 0)
            return true;
    return false;
}

static const char *const s_street_suffixes[] = {"丁目", "番地", "番", "号", "丁", "番街", NULL};
static const char *const s_building_words[] = {
    "マンション", "ハイツ", "コーポ", "ビル", "荘",   "アパート", "レジデンス",
    "パレス",     "タワー", "ヒルズ", "団地", "住宅", "コート",   "メゾン",
    "ハイム",     "ハウス", "号室",   "室",   "階",   "号棟",     "棟",
    "F",          "館",     "寮",     NULL};
static const char *const s_not_place[] = {
    "住所", "現住所", "所在地", "住まい", "自宅",   "実家", "場所",   "番号", "電話",
    "方",   "こちら", "そちら", "あちら", "区役所", "役所", "市役所", "窓口", NULL};

/* Whether the token can be part of a place name to the left of a street part. */
static bool s_place_token(const s_token_t *tok)
{
    if (s_in(tok->surface, s_not_place))
        return false;
    if (s_is(tok, "名詞", "固有名詞", NULL) || s_is(tok, "名詞", "接尾", "地域") ||
        s_is_number(tok))
        return true;
    if (s_is(tok, "名詞", "一般", NULL) && !tok->unknown) {
        /* kanji place parts such as 本町, 南台 */
        utf8proc_int32_t c;
        utf8proc_iterate((const utf8proc_uint8_t *)tok->surface, -1, &c);
        return c >= 0x4E00 && c <= 0x9FFF;
    }
    return false;
}

static bool s_hyphen(const s_token_t *tok)
{
    return strcmp(tok->surface, "-") == 0 || strcmp(tok->surface, "の") == 0 ||
           strcmp(tok->surface, "ー") == 0;
}

static int s_find_addresses(s_text_t *t, const s_token_t *tok, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        /* the anchor: a number with a street suffix, or number-number */
        bool street = s_is_number(&tok[i]) &&
                      (s_in(tok[i + 1].surface, s_street_suffixes) ||
                       (i + 2 < n && s_hyphen(&tok[i + 1]) && strcmp(tok[i + 1].surface, "の") &&
                        s_is_number(&tok[i + 2])));
        if (!street)
            continue;
        /* left: the place names before it (there must be one) */
        size_t first = i;
        while (first > 0 && i - first < 12 && s_place_token(&tok[first - 1]) &&
               tok[first - 1].end == tok[first].start)
            first--;
        bool place = false;
        for (size_t k = first; k < i; k++)
            place = place || s_is(&tok[k], "名詞", "固有名詞", "地域") ||
                    s_is(&tok[k], "名詞", "接尾", "地域") || !s_is_number(&tok[k]);
        if (!place)
            continue;
        /* right: numbers, suffixes, hyphens, then building and room */
        size_t last = i, k = i + 1;
        while (k < n && k - i < 24) {
            const s_token_t *x = &tok[k];
            if (x->start != tok[k - 1].end &&
                !(x->start == tok[k - 1].end + 1 && t->norm[tok[k - 1].end] == ' '))
                break;
            if (s_is_number(x) || s_in(x->surface, s_street_suffixes) ||
                s_in(x->surface, s_building_words)) {
                last = k;
            } else if (s_hyphen(x) && k + 1 < n && s_is_number(&tok[k + 1])) {
                /* joins numbers */
            } else if ((s_is(x, "名詞", NULL, NULL) && !s_is(x, "名詞", "固有名詞", "人名") &&
                        !s_is(x, "名詞", "サ変接続", NULL) && !s_is(x, "名詞", "代名詞", NULL) &&
                        !s_in(x->surface, s_not_place)) ||
                       x->unknown) {
                /* a building name: kept only if a number or building word follows */
            } else {
                break;
            }
            k++;
        }
        if (s_accept(t, MASK_ADDRESS, tok[first].start, tok[last].end) < 0)
            return -ENOMEM;
        while (i + 1 < n && tok[i + 1].end <= tok[last].end)
            i++;
    }
    return 0;
}

static const char *const s_not_names[] = {
    "客",     "お客", "皆",   "奥",   "旦那",   "息子",     "娘",   "担当", "先生",
    "業者",   "係",   "職員", "区長", "皆様",   "みなさん", "主人", "父",   "母",
    "兄",     "姉",   "弟",   "妹",   "家族",   "御",       "お",   "ご",   "方",
    "様",     "さん", "私",   "僕",   "相手",   "本人",     "子",   "子供", "赤ちゃん",
    "利用者", "住民", "区民", "市民", "担当者", "役所",     "マイ", NULL};

static bool s_name_suffix(const s_token_t *tok)
{
    return s_is(tok, "名詞", "接尾", "人名") &&
           (strcmp(tok->surface, "様") == 0 || strcmp(tok->surface, "さん") == 0 ||
            strcmp(tok->surface, "さま") == 0 || strcmp(tok->surface, "氏") == 0 ||
            strcmp(tok->surface, "君") == 0 || strcmp(tok->surface, "くん") == 0 ||
            strcmp(tok->surface, "ちゃん") == 0 || strcmp(tok->surface, "殿") == 0);
}

static bool s_name_part(const s_token_t *tok)
{
    if (s_in(tok->surface, s_not_names))
        return false;
    return s_is(tok, "名詞", "固有名詞", NULL) || s_is(tok, "名詞", "一般", NULL) || tok->unknown;
}

static bool s_katakana_word(const char *word)
{
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)word;
    while (*p) {
        utf8proc_int32_t c;
        utf8proc_ssize_t step = utf8proc_iterate(p, -1, &c);
        if (step <= 0 || c < 0x30A1 || c > 0x30FC)
            return false;
        p += step;
    }
    return true;
}

/* X in "私、X です", "課の X が担当", "X と申します", "X でございます". */
static bool s_intro_name(const s_token_t *tok, size_t n, size_t i, size_t last)
{
    const s_token_t *x = &tok[i];
    if (s_in(x->surface, s_not_names) || s_in(x->surface, s_not_place))
        return false;
    bool proper = s_is(x, "名詞", "固有名詞", NULL) && !s_is(x, "名詞", "固有名詞", "組織");
    bool common = s_is(x, "名詞", "一般", NULL) && !x->unknown && s_cp_len(x->surface) <= 3 &&
                  !s_katakana_word(x->surface);
    if (!proper && !common)
        return false;
    const char *next = last + 1 < n ? tok[last + 1].surface : "";
    const char *next2 = last + 2 < n ? tok[last + 2].surface : "";
    bool introduces = (strcmp(next, "と") == 0 && strncmp(next2, "申し", 6) == 0) ||
                      (strcmp(next, "で") == 0 && strncmp(next2, "ござい", 9) == 0) ||
                      strcmp(next, "です") == 0 ||
                      (strcmp(next, "が") == 0 && strcmp(next2, "担当") == 0);
    if (!introduces)
        return false;
    const char *prev = i > 0 ? tok[i - 1].surface : "";
    const char *prev2 = i > 1 ? tok[i - 2].surface : "";
    bool self = i == 0 || strcmp(prev, "、") == 0 || strcmp(prev, "。") == 0 ||
                strcmp(prev, "私") == 0 || strcmp(prev, "わたくし") == 0 ||
                (strcmp(prev, "の") == 0 &&
                 (strcmp(prev2, "担当") == 0 || (i > 1 && s_is(&tok[i - 2], "名詞", "接尾", NULL) &&
                                                 (strstr(prev2, "課") || strstr(prev2, "係")))));
    if (!self)
        return false;
    /* a common noun only where someone introduces themselves, not "。住民票です" */
    return proper || strcmp(prev, "の") == 0 || strcmp(prev, "私") == 0 ||
           (strcmp(prev, "、") == 0 && i > 1 && strcmp(prev2, "私") == 0) ||
           strcmp(next, "と") == 0;
}

static int s_find_names(s_text_t *t, const s_token_t *tok, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        bool person =
            s_is(&tok[i], "名詞", "固有名詞", "人名") && !s_in(tok[i].surface, s_not_names);
        size_t end = i;
        if (person) {
            while (end + 1 < n && s_is(&tok[end + 1], "名詞", "固有名詞", "人名") &&
                   tok[end + 1].start <= tok[end].end + 1)
                end++;
        }
        /* a surname and a given name MeCab does not know (山口 さくら) */
        if (person && end == i && s_is(&tok[i], "名詞", "固有名詞", "人名") &&
            strcmp(tok[i].sub2, "人名") == 0 && i + 1 < n && tok[i + 1].start == tok[i].end &&
            (s_is(&tok[i + 1], "名詞", "一般", NULL) || tok[i + 1].unknown) &&
            !s_in(tok[i + 1].surface, s_not_names) &&
            !(i + 2 < n && s_is(&tok[i + 2], "名詞", NULL, NULL) &&
              !s_is(&tok[i + 2], "名詞", "接尾", "人名")))
            end = i + 1;
        /* マイ|ナンバー: a name-like piece of a katakana word */
        if (person && end == i && i + 1 < n && tok[i + 1].start == tok[i].end &&
            s_is(&tok[i + 1], "名詞", NULL, NULL) && !s_is(&tok[i + 1], "名詞", "接尾", NULL) &&
            !s_is(&tok[i + 1], "名詞", "固有名詞", "人名") && s_katakana_word(tok[i].surface))
            person = false;
        /* self-introductions: 私、松本です; 区民課の森が担当します; 加藤と申します */
        if (!person && s_intro_name(tok, n, i, i))
            person = true;
        if (!person && s_is(&tok[i], "名詞", "固有名詞", NULL) && i + 1 < n &&
            tok[i + 1].start == tok[i].end && s_name_part(&tok[i + 1]) &&
            s_intro_name(tok, n, i, i + 1)) {
            person = true;
            end = i + 1;
        }
        /* context: [名詞]{1,3} 様/さん, お名前は X */
        if (!person && s_name_part(&tok[i])) {
            size_t k = i;
            while (k + 1 < n && k - i < 3 && s_name_part(&tok[k + 1]) &&
                   tok[k + 1].start == tok[k].end)
                k++;
            if (k + 1 < n && s_name_suffix(&tok[k + 1])) {
                person = true;
                end = k;
            }
        }
        if (!person && i >= 2 && (s_is(&tok[i], "名詞", NULL, NULL) || tok[i].unknown) &&
            !s_in(tok[i].surface, s_not_names) &&
            (strcmp(tok[i - 1].surface, "は") == 0 || strcmp(tok[i - 1].surface, "が") == 0) &&
            (strcmp(tok[i - 2].surface, "名前") == 0 || strcmp(tok[i - 2].surface, "氏名") == 0 ||
             strcmp(tok[i - 2].surface, "名義") == 0)) {
            person = true;
            end = i;
            while (end + 1 < n && end - i < 3 && s_name_part(&tok[end + 1]))
                end++;
        }
        if (person && s_free(t, tok[i].start, tok[end].end)) {
            if (s_accept(t, MASK_NAME, tok[i].start, tok[end].end) < 0)
                return -ENOMEM;
        }
        i = end;
    }
    return 0;
}

/* ---- the whole ----------------------------------------------------------------------------------
 */

static int s_by_start(const void *a, const void *b)
{
    const mask_entity_t *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

int mask_text(mask_t *self, const char *text, size_t len, char **ret_masked,
              mask_entity_t **ret_entities, size_t *ret_count)
{
    s_text_t t;
    s_token_t *tokens = NULL;
    size_t n_tokens = 0;
    char *masked = NULL;
    int rc = s_text_init(&t, text, len);
    if (rc < 0)
        goto out;
    if ((rc = s_find_email(&t)) < 0 || (rc = s_find_dates(&t)) < 0 || (rc = s_find_numbers(&t)) < 0)
        goto out;
    if (t.n > 0) {
        if ((rc = s_tokens(self, &t, &tokens, &n_tokens)) < 0 ||
            (rc = s_find_addresses(&t, tokens, n_tokens)) < 0 ||
            (rc = s_find_names(&t, tokens, n_tokens)) < 0)
            goto out;
    }
    if (t.found_n > 1)
        qsort(t.found, t.found_n, sizeof *t.found, s_by_start);
    size_t cap = len + 1 + t.found_n * 24;
    masked = malloc(cap);
    if (!masked) {
        rc = -ENOMEM;
        goto out;
    }
    size_t w = 0, cp = 0;
    for (size_t e = 0; e <= t.found_n; e++) {
        size_t stop = e < t.found_n ? t.found[e].start : t.n;
        if (t.offset[stop] > t.offset[cp])
            memcpy(masked + w, text + t.offset[cp], t.offset[stop] - t.offset[cp]);
        w += t.offset[stop] - t.offset[cp];
        if (e < t.found_n) {
            const char *ph = mask_placeholder(t.found[e].type);
            memcpy(masked + w, ph, strlen(ph));
            w += strlen(ph);
            cp = t.found[e].end;
        }
    }
    masked[w] = '\0';
    *ret_masked = masked;
    masked = NULL;
    *ret_count = t.found_n;
    *ret_entities = t.found_n ? t.found : NULL;
    if (t.found_n)
        t.found = NULL;
    rc = 0;
out:
    free(masked);
    free(tokens);
    s_text_free(&t);
    return rc;
}
