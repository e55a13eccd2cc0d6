/* ncc-sms's text functions (services/sms/text.h): Japanese mobile numbers to
 * E.164, landlines refused; templates; GSM-7 and UCS-2 counts (160/153,
 * 70/67); the parts the SMPP provider sends, with their UDH. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../services/sms/text.h"

Test(sms_text, mobile_numbers_become_e164_and_landlines_are_refused)
{
    static const char *const good[] = {"090-1234-5678",      "09012345678",
                                       "+81 90 1234 5678",   "+81-90-1234-5678",
                                       "+81(0)90-1234-5678", "０９０－１２３４－５６７８",
                                       "070 1234 5678",      "080.1234.5678"};
    static const char *const e164[] = {"+819012345678", "+819012345678", "+819012345678",
                                       "+819012345678", "+819012345678", "+819012345678",
                                       "+817012345678", "+818012345678"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char out[SMS_E164_MAX];
        const char *why = NULL;
        cr_assert_eq(sms_number_e164(good[i], out, &why), 0, "%s: %s", good[i], why);
        cr_assert_str_eq(out, e164[i], "%s", good[i]);
    }
    static const char *const landline[] = {"03-3228-1111",  "0332281111",   "+81 3 3228 1111",
                                           "050-1234-5678", "0120-123-456", "+1 415 555 0100",
                                           "060-1234-5678", "0901234567"};
    for (size_t i = 0; i < sizeof landline / sizeof landline[0]; i++) {
        char out[SMS_E164_MAX];
        const char *why = NULL;
        int rc = sms_number_e164(landline[i], out, &why);
        cr_assert(rc == -EPERM || rc == -EINVAL, "%s accepted", landline[i]);
        cr_assert_not_null(why);
    }
    char out[SMS_E164_MAX];
    const char *why = NULL;
    cr_assert_eq(sms_number_e164("03-3228-1111", out, &why), -EPERM);
    cr_assert(strstr(why, "landline"), "%s", why);
    cr_assert_eq(sms_number_e164("090-abcd-5678", out, &why), -EINVAL);
    cr_assert_eq(sms_number_e164("", out, &why), -EINVAL);
    cr_assert_eq(sms_number_e164("090123456789012", out, &why), -EINVAL);
}

static sms_count_t s_count(const char *text)
{
    sms_count_t c;
    cr_assert_eq(sms_count(text, &c), 0, "%s", text);
    return c;
}

static char *s_repeat(const char *unit, int n)
{
    size_t len = strlen(unit);
    char *out = calloc(1, len * (size_t)n + 1);
    for (int i = 0; i < n; i++)
        memcpy(out + len * (size_t)i, unit, len);
    return out;
}

Test(sms_text, counts_gsm7_and_ucs2_parts_as_phones_do)
{
    struct {
        const char *unit;
        int n;
        bool gsm7;
        int characters, parts;
    } cases[] = {
        {"a", 160, true, 160, 1},   {"a", 161, true, 161, 2}, {"a", 306, true, 306, 2},
        {"a", 307, true, 307, 3},   {"€", 80, true, 160, 1},  {"€", 81, true, 162, 2},
        {"あ", 70, false, 70, 1},   {"あ", 71, false, 71, 2}, {"あ", 134, false, 134, 2},
        {"あ", 135, false, 135, 3}, {"a", 0, true, 0, 0},     {"😀", 35, false, 70, 1},
        {"😀", 36, false, 72, 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *text = s_repeat(cases[i].unit, cases[i].n);
        sms_count_t c = s_count(text);
        cr_assert_eq(c.gsm7, cases[i].gsm7, "%s x%d", cases[i].unit, cases[i].n);
        cr_assert_eq(c.characters, cases[i].characters, "%s x%d", cases[i].unit, cases[i].n);
        cr_assert_eq(c.parts, cases[i].parts, "%s x%d", cases[i].unit, cases[i].n);
        free(text);
    }
    /* One Japanese character makes the whole text UCS-2. */
    char *text = s_repeat("a", 100);
    char *mixed = calloc(1, 200);
    strcpy(mixed, text);
    strcat(mixed, "区");
    cr_assert_eq(s_count(mixed).gsm7, false);
    cr_assert_eq(s_count(mixed).parts, 2, "101 UCS-2 characters are two parts");
    free(text);
    free(mixed);
    sms_count_t c;
    cr_assert_eq(sms_count("\xff\xfe", &c), -EILSEQ);
}

Test(sms_text, templates_list_and_render_their_variables)
{
    char **names = NULL;
    cr_assert_eq(sms_template_variables("{name}様 手続きは {url} へ。{name}様 {Bad} {x", &names),
                 0);
    cr_assert_str_eq(names[0], "name");
    cr_assert_str_eq(names[1], "url");
    cr_assert_null(names[2], "{Bad} and {x are not variables");
    sms_strv_free(names);
    const char *keys[] = {"name", "url"};
    const char *values[] = {"中野", "https://x/y"};
    char **missing = NULL;
    char *out = sms_template_render("{name}様 {url} {when}", keys, values, 2, &missing);
    cr_assert_str_eq(out, "中野様 https://x/y ");
    cr_assert_str_eq(missing[0], "when");
    cr_assert_null(missing[1]);
    free(out);
    sms_strv_free(missing);
    cr_assert(sms_var_name_ok("survey_url", 10));
    cr_assert_not(sms_var_name_ok("Survey", 6));
    cr_assert_not(sms_var_name_ok("", 0));
}

Test(sms_text, parts_carry_a_udh_and_never_split_a_character)
{
    sms_part_t *parts = NULL;
    int n = 0;
    char *text = s_repeat("あ", 140);
    cr_assert_eq(sms_text_parts(text, 7, &parts, &n), 0);
    cr_assert_eq(n, 3);
    for (int i = 0; i < n; i++) {
        cr_assert_eq(parts[i].data_coding, 0x08);
        cr_assert_eq(parts[i].esm_class, 0x40);
        const unsigned char udh[6] = {5, 0, 3, 7, 3, (unsigned char)(i + 1)};
        cr_assert_arr_eq(parts[i].bytes, udh, 6);
    }
    cr_assert_eq(parts[0].len, 6 + 134);
    cr_assert_eq(parts[2].len, 6 + 12);
    cr_assert_eq(parts[0].bytes[6], 0x30);
    cr_assert_eq(parts[0].bytes[7], 0x42, "あ is U+3042, big-endian");
    free(parts);
    free(text);
    /* A surrogate pair at a boundary moves to the next part. */
    char *emoji = calloc(1, 300);
    strcpy(emoji, "aa");
    for (int i = 0; i < 35; i++)
        strcat(emoji, "😀");
    cr_assert_eq(sms_text_parts(emoji, 1, &parts, &n), 0);
    cr_assert_eq(n, 2, "72 units");
    cr_assert_eq(parts[0].len, 6 + 4 + 32 * 4, "66 units: the 33rd emoji does not fit in 67");
    cr_assert_eq(parts[1].len, 6 + 3 * 4);
    free(parts);
    free(emoji);
    /* One GSM-7 part, unpacked septets, an escape for the euro sign. */
    cr_assert_eq(sms_text_parts("Hi €5", 0, &parts, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(parts[0].esm_class, 0);
    const unsigned char gsm[] = {'H', 'i', ' ', 0x1B, 0x65, '5'};
    cr_assert_eq(parts[0].len, 6);
    cr_assert_arr_eq(parts[0].bytes, gsm, 6);
    free(parts);
}
