/* The normalisation of ncc-history's search index (services/history/search.h,
 * docs/history.md "Lists and search"): width, case and kana folded, words cut
 * at anything that is not a letter, mark or digit; and its fast path (text of
 * common characters normalised without a library call) giving exactly what
 * utf8proc gives, for every character of the Basic Multilingual Plane. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "../../services/history/search.h"

/* The reference, independent of search.c: utf8proc NFKC with case folding and
 * ignorables removed, katakana folded by the block offset, one space between
 * words (letters, marks, digits). Caller frees. */
static char *s_reference(const char *text)
{
    utf8proc_uint8_t *mapped = NULL;
    utf8proc_ssize_t n = utf8proc_map(
        (const utf8proc_uint8_t *)text, (utf8proc_ssize_t)strlen(text), &mapped,
        UTF8PROC_STABLE | UTF8PROC_COMPAT | UTF8PROC_COMPOSE | UTF8PROC_CASEFOLD | UTF8PROC_IGNORE);
    cr_assert_geq(n, 0);
    char *out = malloc((size_t)n * 2 + 8);
    size_t len = 0;
    bool in_word = false;
    for (utf8proc_ssize_t i = 0; i < n;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(mapped + i, n - i, &cp);
        cr_assert_gt(k, 0);
        i += k;
        utf8proc_category_t c = utf8proc_category(cp);
        if (cp > 0 && c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_NO) {
            if ((cp >= 0x30A1 && cp <= 0x30F6) || cp == 0x30FD || cp == 0x30FE)
                cp -= 0x60;
            len += (size_t)utf8proc_encode_char(cp, (utf8proc_uint8_t *)out + len);
            in_word = true;
        } else if (in_word) {
            out[len++] = ' ';
            in_word = false;
        }
    }
    if (len > 0 && out[len - 1] == ' ')
        len--;
    out[len] = '\0';
    free(mapped);
    return out;
}

Test(history_search, width_case_and_kana_are_folded_and_words_cut)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"ﾊﾝｺ", "はんこ"},
        {"ハンコ", "はんこ"},
        {"ﾏｲﾅﾝﾊﾞｰｶｰﾄﾞ", "まいなんばーかーど"},
        {"ＡＢＣ　ａｂｃ", "abc abc"},
        {"住民税、納付書（再発行）", "住民税 納付書 再発行"},
        {"１２３４", "1234"},
        {"「印鑑」登録！", "印鑑 登録"},
        {"ヴァ", "ゔぁ"},
        {"、。", ""},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = history_search_normalise(cases[i].in);
        cr_assert_not_null(got, "%s", cases[i].in);
        cr_assert_str_eq(got, cases[i].out, "%s", cases[i].in);
        free(got);
    }
    cr_assert_null(history_search_normalise("\xff\xfe"), "not UTF-8");
}

/* Every character U+0001..U+FFFF (surrogates aside), alone and between
 * letters: whether search.c takes its fast path or utf8proc, the result is
 * the reference's. */
Test(history_search, every_character_normalises_as_utf8proc_says, .timeout = 120)
{
    static const char *const contexts[] = {"%s", "x%sy", "あ%sい", "A%s1"};
    size_t checked = 0;
    for (utf8proc_int32_t cp = 1; cp < 0x10000; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF)
            continue;
        char enc[8];
        utf8proc_ssize_t k = utf8proc_encode_char(cp, (utf8proc_uint8_t *)enc);
        enc[k] = '\0';
        for (size_t c = 0; c < sizeof contexts / sizeof contexts[0]; c++) {
            char text[32];
            snprintf(text, sizeof text, contexts[c], enc);
            char *got = history_search_normalise(text), *want = s_reference(text);
            cr_assert_not_null(got);
            cr_assert_str_eq(got, want, "U+%04X in context %zu", (unsigned)cp, c);
            free(got);
            free(want);
            checked++;
        }
    }
    cr_assert_gt(checked, 250000);
}

Test(history_search, status_and_channel_bits_are_distinct)
{
    static const char *const statuses[] = {"open", "in_progress", "closed"};
    static const char *const channels[] = {"phone", "sms", "form", "chat", "line", "visit"};
    unsigned seen = 0;
    for (size_t i = 0; i < 3; i++) {
        unsigned bit = history_status_bit(statuses[i]);
        cr_assert(bit && !(seen & bit), "%s", statuses[i]);
        seen |= bit;
    }
    seen = 0;
    for (size_t i = 0; i < 6; i++) {
        unsigned bit = history_channel_bit(channels[i]);
        cr_assert(bit && !(seen & bit), "%s", channels[i]);
        seen |= bit;
    }
    cr_assert_eq(history_status_bit("done"), 0);
    cr_assert_eq(history_channel_bit(NULL), 0);
}
