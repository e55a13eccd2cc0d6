/* Tests for the generic JSON <-> protobuf converter (common/src/json.c), on the
 * messages of proto/test_types.proto. Round trips are checked three ways:
 * the JSON text written back, the C struct, and the packed protobuf (JSON ->
 * message -> wire -> message -> JSON gives the same text). Leaks are left to
 * LeakSanitizer (run under SANITIZE=address). */
#include <criterion/criterion.h>

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ncc/json.h"
#include "test_types.pb-c.h"

/* Criterion runs each test in a forked worker, and a LeakSanitizer report
 * there does not fail the run: check after every test and crash on a leak
 * (the weak symbol is NULL in builds without the sanitizer). */
int __lsan_do_recoverable_leak_check(void) __attribute__((weak));

static void s_check_leaks(void)
{
    if (__lsan_do_recoverable_leak_check && __lsan_do_recoverable_leak_check() != 0)
        abort();
}

TestSuite(json, .fini = s_check_leaks);

#define S_SCALARS    (&ncc__test__scalars__descriptor)
#define S_REPEATED   (&ncc__test__repeated__descriptor)
#define S_NODE       (&ncc__test__node__descriptor)
#define S_CHOICE     (&ncc__test__choice__descriptor)
#define S_DEFAULTS   (&ncc__test__defaults__descriptor)
#define S_REQUIRED   (&ncc__test__required__descriptor)
#define S_TRANSCRIPT (&ncc__test__transcript__descriptor)

/* Parses text that must be accepted; caller frees. */
static ProtobufCMessage *s_parse(const ProtobufCMessageDescriptor *desc, const char *text,
                                 unsigned flags)
{
    ProtobufCMessage *m = NULL;
    ncc_json_error_t err;
    int rc = ncc_json_parse_pb(desc, text, strlen(text), flags, &m, &err);

    cr_assert_eq(rc, 0, "%s: rc %d %s %s (%s)", text, rc, err.code, err.field, err.message);
    cr_assert_not_null(m);
    cr_assert_eq(m->descriptor, desc);
    return m;
}

/* Writes m and compares with `expected`. */
static void s_assert_json(const ProtobufCMessage *m, const char *expected)
{
    char *text = ncc_pb_to_json_text(m);

    cr_assert_not_null(text);
    cr_assert_str_eq(text, expected);
    free(text);
}

/* Packs m and unpacks it again, so the JSON reader must have filled the
 * struct (has_ flags, counts, oneof cases) the way protobuf-c expects. */
static ProtobufCMessage *s_through_wire(const ProtobufCMessage *m)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len + 1);

    cr_assert_not_null(buf);
    cr_assert_eq(protobuf_c_message_pack(m, buf), len);
    ProtobufCMessage *copy = protobuf_c_message_unpack(m->descriptor, NULL, len, buf);
    free(buf);
    cr_assert_not_null(copy);
    return copy;
}

/* JSON `in` -> message -> JSON must give `out` (NULL: `in` again), also after
 * a trip through the wire format, and `out` must read back to the same. */
static void s_round_trip(const ProtobufCMessageDescriptor *desc, const char *in, unsigned flags,
                         const char *out)
{
    const char *expected = out ? out : in;
    ProtobufCMessage *m = s_parse(desc, in, flags);
    s_assert_json(m, expected);

    ProtobufCMessage *wire = s_through_wire(m);
    s_assert_json(wire, expected);

    ProtobufCMessage *again = s_parse(desc, expected, 0);
    s_assert_json(again, expected);

    protobuf_c_message_free_unpacked(again, NULL);
    protobuf_c_message_free_unpacked(wire, NULL);
    protobuf_c_message_free_unpacked(m, NULL);
}

/* Text that must be refused with `code` at `field`. */
static void s_expect_error(const ProtobufCMessageDescriptor *desc, const char *text, unsigned flags,
                           const char *code, const char *field)
{
    ProtobufCMessage *m = NULL;
    ncc_json_error_t err;
    int rc = ncc_json_parse_pb(desc, text, strlen(text), flags, &m, &err);

    cr_assert_eq(rc, -EINVAL, "%s: rc %d", text, rc);
    cr_assert_null(m, "%s: a message was returned", text);
    cr_assert_str_eq(err.code, code, "%s: code %s (%s)", text, err.code, err.message);
    cr_assert_str_eq(err.field, field, "%s: field %s (%s)", text, err.field, err.message);
    cr_assert_gt(strlen(err.message), 0);
}

/* --- every scalar type ------------------------------------------------------- */

Test(json, scalars_round_trip_every_type)
{
    const char *text = "{\"i32\":-2147483648,\"s32\":-7,\"sf32\":2147483647,"
                       "\"i64\":\"-9223372036854775808\",\"s64\":9007199254740991,"
                       "\"sf64\":-9007199254740991,\"u32\":4294967295,\"f32\":7,"
                       "\"u64\":\"18446744073709551615\",\"f64\":9007199254740991,"
                       "\"flt\":0.1,\"dbl\":-2.5e-300,\"flag\":true,\"color\":\"NEGATIVE\","
                       "\"text\":\"受付 ✓\",\"data\":\"AAEC/w==\"}";
    s_round_trip(S_SCALARS, text, 0, NULL);

    Ncc__Test__Scalars *s = (Ncc__Test__Scalars *)s_parse(S_SCALARS, text, 0);
    cr_assert(s->has_i32 && s->i32 == INT32_MIN);
    cr_assert(s->has_s32 && s->s32 == -7);
    cr_assert(s->has_sf32 && s->sf32 == INT32_MAX);
    cr_assert(s->has_i64 && s->i64 == INT64_MIN);
    cr_assert(s->has_s64 && s->s64 == INT64_C(9007199254740991));
    cr_assert(s->has_sf64 && s->sf64 == -INT64_C(9007199254740991));
    cr_assert(s->has_u32 && s->u32 == UINT32_MAX);
    cr_assert(s->has_f32 && s->f32 == 7);
    cr_assert(s->has_u64 && s->u64 == UINT64_MAX);
    cr_assert(s->has_f64 && s->f64 == UINT64_C(9007199254740991));
    cr_assert(s->has_flt && s->flt == 0.1f);
    cr_assert(s->has_dbl && s->dbl == -2.5e-300);
    cr_assert(s->has_flag && s->flag);
    cr_assert(s->has_color && s->color == NCC__TEST__COLOR__NEGATIVE);
    cr_assert_str_eq(s->text, "受付 ✓");
    cr_assert(s->has_data && s->data.len == 4);
    cr_assert_eq(memcmp(s->data.data, "\x00\x01\x02\xff", 4), 0);
    protobuf_c_message_free_unpacked(&s->base, NULL);
}

Test(json, absent_fields_are_not_written)
{
    s_round_trip(S_SCALARS, "{}", 0, NULL);
    s_round_trip(S_SCALARS, "{\"i32\":0,\"flag\":false,\"text\":\"\",\"data\":\"\"}", 0, NULL);
    /* null means absent */
    s_round_trip(S_SCALARS, "{\"i32\":null,\"text\":null,\"color\":null,\"u64\":5}", 0,
                 "{\"u64\":5}");

    Ncc__Test__Scalars *s = (Ncc__Test__Scalars *)s_parse(S_SCALARS, "{\"text\":null}", 0);
    cr_assert_null(s->text);
    cr_assert_not(s->has_i32);
    protobuf_c_message_free_unpacked(&s->base, NULL);
}

Test(json, proto2_defaults_are_not_written_when_absent)
{
    Ncc__Test__Defaults *d = (Ncc__Test__Defaults *)s_parse(S_DEFAULTS, "{}", 0);
    cr_assert_eq(d->count, 7);
    cr_assert_str_eq(d->label, "none");
    cr_assert_not(d->has_count);
    s_assert_json(&d->base, "{}");
    protobuf_c_message_free_unpacked(&d->base, NULL);

    /* Given explicitly, even equal to the default, they are present. */
    s_round_trip(S_DEFAULTS,
                 "{\"count\":7,\"label\":\"none\",\"data\":\"eHk=\",\"color\":\"GREEN\","
                 "\"enabled\":false}",
                 0, NULL);
}

Test(json, int32_ranges)
{
    s_round_trip(S_SCALARS, "{\"i32\":2147483647,\"s32\":-2147483648,\"sf32\":-1}", 0, NULL);
    s_expect_error(S_SCALARS, "{\"i32\":2147483648}", 0, "invalid_field", "i32");
    s_expect_error(S_SCALARS, "{\"s32\":-2147483649}", 0, "invalid_field", "s32");
    s_expect_error(S_SCALARS, "{\"sf32\":1e20}", 0, "invalid_field", "sf32");
    s_expect_error(S_SCALARS, "{\"i32\":1.5}", 0, "invalid_field", "i32");
    s_expect_error(S_SCALARS, "{\"i32\":\"12\"}", 0, "invalid_field", "i32");
    s_expect_error(S_SCALARS, "{\"i32\":true}", 0, "invalid_field", "i32");
    s_expect_error(S_SCALARS, "{\"i32\":[1]}", 0, "invalid_field", "i32");
    s_expect_error(S_SCALARS, "{\"i32\":{}}", 0, "invalid_field", "i32");
    /* an exponent that still makes an integer is an integer */
    s_round_trip(S_SCALARS, "{\"i32\":1e3}", 0, "{\"i32\":1000}");
}

Test(json, uint32_ranges)
{
    s_round_trip(S_SCALARS, "{\"u32\":4294967295,\"f32\":0}", 0, NULL);
    s_expect_error(S_SCALARS, "{\"u32\":4294967296}", 0, "invalid_field", "u32");
    s_expect_error(S_SCALARS, "{\"f32\":-1}", 0, "invalid_field", "f32");
    s_expect_error(S_SCALARS, "{\"u32\":0.5}", 0, "invalid_field", "u32");
    s_expect_error(S_SCALARS, "{\"u32\":1e20}", 0, "invalid_field", "u32");
    s_expect_error(S_SCALARS, "{\"u32\":\"1\"}", 0, "invalid_field", "u32");
}

Test(json, int64_boundaries)
{
    /* 2^53 - 1 is the last integer written as a number */
    s_round_trip(S_SCALARS, "{\"i64\":9007199254740991,\"s64\":-9007199254740991}", 0, NULL);
    s_round_trip(S_SCALARS, "{\"i64\":\"9007199254740992\",\"s64\":\"-9007199254740992\"}", 0,
                 NULL);
    s_round_trip(S_SCALARS, "{\"i64\":\"9223372036854775807\",\"sf64\":\"-9223372036854775808\"}",
                 0, NULL);
    /* microseconds since the epoch keep every digit */
    s_round_trip(S_SCALARS, "{\"i64\":1700000000123457,\"u64\":1000000000000000}", 0, NULL);
    /* small values given as strings come back as numbers */
    s_round_trip(S_SCALARS, "{\"i64\":\"-42\",\"u64\":\"0\"}", 0, "{\"i64\":-42,\"u64\":0}");
    /* beyond 2^53 - 1 a number cannot be exact: it must be a string */
    s_expect_error(S_SCALARS, "{\"i64\":9007199254740992}", 0, "invalid_field", "i64");
    s_expect_error(S_SCALARS, "{\"i64\":9007199254740993}", 0, "invalid_field", "i64");
    s_expect_error(S_SCALARS, "{\"i64\":\"9223372036854775808\"}", 0, "invalid_field", "i64");
    s_expect_error(S_SCALARS, "{\"i64\":\"-9223372036854775809\"}", 0, "invalid_field", "i64");
    s_expect_error(S_SCALARS, "{\"i64\":\"99999999999999999999999\"}", 0, "invalid_field", "i64");
    s_expect_error(S_SCALARS, "{\"i64\":\"12a\"}", 0, "invalid_field", "i64");
    s_expect_error(S_SCALARS, "{\"i64\":\" 12\"}", 0, "invalid_field", "i64");
    s_expect_error(S_SCALARS, "{\"i64\":\"+12\"}", 0, "invalid_field", "i64");
    s_expect_error(S_SCALARS, "{\"i64\":\"\"}", 0, "invalid_field", "i64");
    s_expect_error(S_SCALARS, "{\"i64\":\"1.0\"}", 0, "invalid_field", "i64");
    s_expect_error(S_SCALARS, "{\"s64\":1.5}", 0, "invalid_field", "s64");

    Ncc__Test__Scalars *s = (Ncc__Test__Scalars *)s_parse(
        S_SCALARS, "{\"i64\":\"9223372036854775807\",\"sf64\":\"-9223372036854775808\"}", 0);
    cr_assert_eq(s->i64, INT64_MAX);
    cr_assert_eq(s->sf64, INT64_MIN);
    protobuf_c_message_free_unpacked(&s->base, NULL);
}

Test(json, uint64_boundaries)
{
    s_round_trip(S_SCALARS, "{\"u64\":9007199254740991,\"f64\":\"9007199254740992\"}", 0, NULL);
    s_round_trip(S_SCALARS, "{\"u64\":\"18446744073709551615\"}", 0, NULL);
    s_round_trip(S_SCALARS, "{\"u64\":\"-0\"}", 0, "{\"u64\":0}");
    s_expect_error(S_SCALARS, "{\"u64\":\"18446744073709551616\"}", 0, "invalid_field", "u64");
    s_expect_error(S_SCALARS, "{\"u64\":\"-1\"}", 0, "invalid_field", "u64");
    s_expect_error(S_SCALARS, "{\"f64\":-1}", 0, "invalid_field", "f64");
    s_expect_error(S_SCALARS, "{\"u64\":18446744073709551615}", 0, "invalid_field", "u64");
}

Test(json, float_and_double)
{
    s_round_trip(S_SCALARS, "{\"flt\":0.1,\"dbl\":0.1}", 0, NULL);
    s_round_trip(S_SCALARS, "{\"flt\":-3.4028235e+38,\"dbl\":1.7976931348623157e+308}", 0, NULL);
    s_round_trip(S_SCALARS, "{\"flt\":1e-45,\"dbl\":5e-324}", 0,
                 "{\"flt\":1e-45,\"dbl\":4.94065645841247e-324}");
    s_round_trip(S_SCALARS, "{\"flt\":16777216,\"dbl\":-0.5}", 0, NULL);
    /* 16 and 17 significant digits survive (cJSON alone prints 15) */
    s_round_trip(S_SCALARS, "{\"flt\":0.3,\"dbl\":0.30000000000000004}", 0, NULL);
    s_round_trip(S_SCALARS, "{\"dbl\":1.2345678901234567e-200}", 0, NULL);
    s_round_trip(S_SCALARS, "{\"dbl\":123456789012345680}", 0, "{\"dbl\":1.2345678901234568e+17}");
    s_expect_error(S_SCALARS, "{\"flt\":3.5e38}", 0, "invalid_field", "flt");
    s_expect_error(S_SCALARS, "{\"dbl\":1e999}", 0, "invalid_field", "dbl");
    s_expect_error(S_SCALARS, "{\"dbl\":\"1.5\"}", 0, "invalid_field", "dbl");
    s_expect_error(S_SCALARS, "{\"dbl\":false}", 0, "invalid_field", "dbl");

    /* NaN and infinities: accepted as protobuf's strings, written as null */
    Ncc__Test__Scalars *s =
        (Ncc__Test__Scalars *)s_parse(S_SCALARS, "{\"flt\":\"NaN\",\"dbl\":\"-Infinity\"}", 0);
    cr_assert(s->has_flt && isnan(s->flt));
    cr_assert(s->has_dbl && isinf(s->dbl) && s->dbl < 0);
    s_assert_json(&s->base, "{\"flt\":null,\"dbl\":null}");
    protobuf_c_message_free_unpacked(&s->base, NULL);

    s = (Ncc__Test__Scalars *)s_parse(S_SCALARS, "{\"dbl\":\"Infinity\"}", 0);
    cr_assert(isinf(s->dbl) && s->dbl > 0);
    protobuf_c_message_free_unpacked(&s->base, NULL);
}

Test(json, bool_values)
{
    s_round_trip(S_SCALARS, "{\"flag\":false}", 0, NULL);
    s_round_trip(S_SCALARS, "{\"flag\":true}", 0, NULL);
    s_expect_error(S_SCALARS, "{\"flag\":1}", 0, "invalid_field", "flag");
    s_expect_error(S_SCALARS, "{\"flag\":\"true\"}", 0, "invalid_field", "flag");
}

Test(json, enum_by_name_and_number)
{
    s_round_trip(S_SCALARS, "{\"color\":\"RED\"}", 0, NULL);
    s_round_trip(S_SCALARS, "{\"color\":2}", 0, "{\"color\":\"GREEN\"}");
    s_round_trip(S_SCALARS, "{\"color\":-5}", 0, "{\"color\":\"NEGATIVE\"}");
    s_round_trip(S_SCALARS, "{\"color\":\"COLOR_UNSPECIFIED\"}", 0, NULL);
    s_expect_error(S_SCALARS, "{\"color\":\"PURPLE\"}", 0, "invalid_field", "color");
    s_expect_error(S_SCALARS, "{\"color\":\"red\"}", 0, "invalid_field", "color");
    s_expect_error(S_SCALARS, "{\"color\":7}", 0, "invalid_field", "color");
    s_expect_error(S_SCALARS, "{\"color\":1.5}", 0, "invalid_field", "color");
    s_expect_error(S_SCALARS, "{\"color\":\"2\"}", 0, "invalid_field", "color");
    s_expect_error(S_SCALARS, "{\"color\":true}", 0, "invalid_field", "color");

    /* A number the enum does not declare (say, from a newer peer on the bus)
     * is written as the number. */
    Ncc__Test__Scalars s = NCC__TEST__SCALARS__INIT;
    s.has_color = 1;
    s.color = (Ncc__Test__Color)42;
    s_assert_json(&s.base, "{\"color\":42}");
}

Test(json, strings_must_be_utf8)
{
    s_round_trip(S_SCALARS, "{\"text\":\"印鑑登録 ﾊﾝｶｸ 😀 café\"}", 0, NULL);
    s_expect_error(S_SCALARS, "{\"text\":\"lone \xc3 continuation\"}", 0, "invalid_field", "text");
    s_round_trip(S_SCALARS, "{\"text\":\"\\u3042\\ud83d\\ude00\\n\\\"\"}", 0,
                 "{\"text\":\"あ😀\\n\\\"\"}");
    s_expect_error(S_SCALARS, "{\"text\":\"bad \xff byte\"}", 0, "invalid_field", "text");
    s_expect_error(S_SCALARS, "{\"text\":\"overlong \xc0\xaf\"}", 0, "invalid_field", "text");
    s_expect_error(S_SCALARS, "{\"text\":\"surrogate \xed\xa0\x80\"}", 0, "invalid_field", "text");
    s_expect_error(S_SCALARS, "{\"text\":\"cut \xe3\x81\"}", 0, "invalid_field", "text");
    s_expect_error(S_SCALARS, "{\"text\":\"too big \xf4\x90\x80\x80\"}", 0, "invalid_field",
                   "text");
    s_expect_error(S_SCALARS, "{\"text\":12}", 0, "invalid_field", "text");
    /* a C string would end at \u0000: refused rather than truncated */
    s_expect_error(S_SCALARS, "{\"text\":\"admin\\u0000x\"}", 0, "invalid_json", "");
}

Test(json, output_of_null_pointers_in_arrays)
{
    /* not produced by protobuf-c itself, but a hand-built message may hold them */
    Ncc__Test__Repeated r = NCC__TEST__REPEATED__INIT;
    char *texts[] = {"a", NULL};
    Ncc__Test__Scalars *items[] = {NULL};
    r.n_text = 2;
    r.text = texts;
    r.n_items = 1;
    r.items = items;
    s_assert_json(&r.base, "{\"i32\":[],\"s32\":[],\"sf32\":[],\"i64\":[],\"s64\":[],\"sf64\":[],"
                           "\"u32\":[],\"f32\":[],\"u64\":[],\"f64\":[],\"flt\":[],\"dbl\":[],"
                           "\"flag\":[],\"color\":[],\"text\":[\"a\",null],\"data\":[],"
                           "\"items\":[null]}");
}

Test(json, output_replaces_invalid_utf8)
{
    Ncc__Test__Scalars s = NCC__TEST__SCALARS__INIT;
    char text[] = "a\xff"
                  "b\xe3\x81";
    s.text = text;
    s_assert_json(&s.base, "{\"text\":\"a\xef\xbf\xbd"
                           "b\xef\xbf\xbd\xef\xbf\xbd\"}");
}

Test(json, bytes_base64)
{
    s_round_trip(S_SCALARS, "{\"data\":\"aGVsbG8=\"}", 0, NULL);
    s_round_trip(S_SCALARS, "{\"data\":\"aGVsbG8\"}", 0, "{\"data\":\"aGVsbG8=\"}");
    s_round_trip(S_SCALARS, "{\"data\":\"aGk=\"}", 0, NULL);
    s_round_trip(S_SCALARS, "{\"data\":\"-_8=\"}", 0, "{\"data\":\"+/8=\"}");
    s_round_trip(S_SCALARS, "{\"data\":\"\"}", 0, NULL);

    Ncc__Test__Scalars *s = (Ncc__Test__Scalars *)s_parse(S_SCALARS, "{\"data\":\"aGVsbG8=\"}", 0);
    cr_assert(s->has_data);
    cr_assert_eq(s->data.len, 5);
    cr_assert_eq(memcmp(s->data.data, "hello", 5), 0);
    protobuf_c_message_free_unpacked(&s->base, NULL);

    s_expect_error(S_SCALARS, "{\"data\":\"a\"}", 0, "invalid_field", "data");
    s_expect_error(S_SCALARS, "{\"data\":\"aGVs bG8=\"}", 0, "invalid_field", "data");
    s_expect_error(S_SCALARS, "{\"data\":\"aG=s\"}", 0, "invalid_field", "data");
    s_expect_error(S_SCALARS, "{\"data\":\"====\"}", 0, "invalid_field", "data");
    s_expect_error(S_SCALARS, "{\"data\":[1,2]}", 0, "invalid_field", "data");
}

/* --- repeated, nested, oneof ---------------------------------------------------- */

Test(json, repeated_every_type)
{
    const char *text =
        "{\"i32\":[1,-2],\"s32\":[-3],\"sf32\":[4],\"i64\":[\"-9223372036854775808\",5],"
        "\"s64\":[6],\"sf64\":[-7],\"u32\":[8],\"f32\":[9],\"u64\":[\"18446744073709551615\"],"
        "\"f64\":[10,11],\"flt\":[1.5,null],\"dbl\":[2.25],\"flag\":[true,false],"
        "\"color\":[\"RED\",\"NEGATIVE\"],\"text\":[\"a\",\"\",\"受付\"],"
        "\"data\":[\"AA==\",\"\"],\"items\":[{\"i32\":1},{},{\"text\":\"x\"}]}";
    /* null inside a float array is refused on input */
    s_expect_error(S_REPEATED, text, 0, "invalid_field", "flt[1]");

    const char *ok =
        "{\"i32\":[1,-2],\"s32\":[-3],\"sf32\":[4],\"i64\":[\"-9223372036854775808\",5],"
        "\"s64\":[6],\"sf64\":[-7],\"u32\":[8],\"f32\":[9],\"u64\":[\"18446744073709551615\"],"
        "\"f64\":[10,11],\"flt\":[1.5,0.1],\"dbl\":[2.25],\"flag\":[true,false],"
        "\"color\":[\"RED\",\"NEGATIVE\"],\"text\":[\"a\",\"\",\"受付\"],"
        "\"data\":[\"AA==\",\"\"],\"items\":[{\"i32\":1},{},{\"text\":\"x\"}]}";
    s_round_trip(S_REPEATED, ok, 0, NULL);

    Ncc__Test__Repeated *r = (Ncc__Test__Repeated *)s_parse(S_REPEATED, ok, 0);
    cr_assert_eq(r->n_i32, 2);
    cr_assert_eq(r->i32[1], -2);
    cr_assert_eq(r->n_text, 3);
    cr_assert_str_eq(r->text[2], "受付");
    cr_assert_eq(r->n_items, 3);
    cr_assert_str_eq(r->items[2]->text, "x");
    cr_assert_eq(r->n_data, 2);
    cr_assert_eq(r->data[1].len, 0);
    protobuf_c_message_free_unpacked(&r->base, NULL);

    /* empty arrays are written as [] (a list answer always has its items) */
    s_round_trip(
        S_REPEATED, "{\"i32\":[],\"items\":[]}", 0,
        "{\"i32\":[],\"s32\":[],\"sf32\":[],\"i64\":[],\"s64\":[],\"sf64\":[],\"u32\":[],\"f32\":[]"
        ",\"u64\":[],\"f64\":[],\"flt\":[],\"dbl\":[],\"flag\":[],\"color\":[],\"text\":[],"
        "\"data\":[],\"items\":[]}");
}

Test(json, repeated_errors_carry_the_index)
{
    s_expect_error(S_REPEATED, "{\"i32\":[1,2,\"x\"]}", 0, "invalid_field", "i32[2]");
    s_expect_error(S_REPEATED, "{\"text\":[\"a\",null]}", 0, "invalid_field", "text[1]");
    s_expect_error(S_REPEATED, "{\"i32\":5}", 0, "invalid_field", "i32");
    s_expect_error(S_REPEATED, "{\"items\":[{},{\"color\":\"BLUE\"}]}", 0, "invalid_field",
                   "items[1].color");
    s_expect_error(S_REPEATED, "{\"items\":[{},[]]}", 0, "invalid_field", "items[1]");
}

Test(json, nested_messages)
{
    const char *text = "{\"name\":\"root\",\"child\":{\"name\":\"a\",\"child\":{\"name\":\"b\","
                       "\"scalars\":{\"i32\":3}}},\"children\":[{\"name\":\"c\"},{\"children\":"
                       "[{\"name\":\"d\"}]}]}";
    s_round_trip(S_NODE, text, 0,
                 "{\"name\":\"root\",\"child\":{\"name\":\"a\",\"child\":{\"name\":\"b\","
                 "\"children\":[],\"scalars\":{\"i32\":3}},\"children\":[]},\"children\":"
                 "[{\"name\":\"c\",\"children\":[]},{\"children\":[{\"name\":\"d\","
                 "\"children\":[]}]}]}");

    Ncc__Test__Node *n = (Ncc__Test__Node *)s_parse(S_NODE, text, 0);
    cr_assert_str_eq(n->child->child->name, "b");
    cr_assert_eq(n->child->child->scalars->i32, 3);
    cr_assert_str_eq(n->children[1]->children[0]->name, "d");
    protobuf_c_message_free_unpacked(&n->base, NULL);

    s_expect_error(S_NODE, "{\"child\":{\"child\":{\"scalars\":{\"u32\":-1}}}}", 0, "invalid_field",
                   "child.child.scalars.u32");
    s_expect_error(S_NODE, "{\"child\":\"x\"}", 0, "invalid_field", "child");
}

Test(json, oneof_sets_the_case)
{
    s_round_trip(S_CHOICE, "{\"text\":\"hi\",\"note\":\"n\"}", 0, NULL);
    s_round_trip(S_CHOICE, "{\"number\":0}", 0, NULL);
    s_round_trip(S_CHOICE, "{\"scalars\":{\"text\":\"deep\"}}", 0, NULL);
    s_round_trip(S_CHOICE, "{\"blob\":\"AQI=\"}", 0, NULL);
    s_round_trip(S_CHOICE, "{\"color\":\"RED\"}", 0, NULL);
    s_round_trip(S_CHOICE, "{\"ratio\":0.25}", 0, NULL);
    s_round_trip(S_CHOICE, "{\"text\":null,\"number\":4}", 0, "{\"number\":4}");

    Ncc__Test__Choice *c = (Ncc__Test__Choice *)s_parse(S_CHOICE, "{\"scalars\":{\"i32\":1}}", 0);
    cr_assert_eq(c->value_case, NCC__TEST__CHOICE__VALUE_SCALARS);
    cr_assert_eq(c->scalars->i32, 1);
    protobuf_c_message_free_unpacked(&c->base, NULL);

    c = (Ncc__Test__Choice *)s_parse(S_CHOICE, "{\"text\":\"x\"}", 0);
    cr_assert_eq(c->value_case, NCC__TEST__CHOICE__VALUE_TEXT);
    cr_assert_str_eq(c->text, "x");
    protobuf_c_message_free_unpacked(&c->base, NULL);

    c = (Ncc__Test__Choice *)s_parse(S_CHOICE, "{\"note\":\"only\"}", 0);
    cr_assert_eq(c->value_case, NCC__TEST__CHOICE__VALUE__NOT_SET);
    protobuf_c_message_free_unpacked(&c->base, NULL);

    /* two members of one oneof: the second is refused (and the first, a
     * malloc'd string, is freed) */
    s_expect_error(S_CHOICE, "{\"text\":\"a\",\"number\":1}", 0, "invalid_field", "number");
    s_expect_error(S_CHOICE, "{\"scalars\":{},\"blob\":\"AA==\"}", 0, "invalid_field", "blob");
    s_expect_error(S_CHOICE, "{\"text\":\"a\",\"scalars\":{\"i32\":\"x\"}}", 0, "invalid_field",
                   "scalars");
    s_expect_error(S_CHOICE, "{\"scalars\":{\"i32\":\"x\"}}", 0, "invalid_field", "scalars.i32");
}

Test(json, required_fields)
{
    s_round_trip(S_REQUIRED, "{\"id\":0,\"name\":\"\"}", 0, NULL);
    s_round_trip(S_REQUIRED, "{\"name\":\"n\",\"id\":3,\"extra\":4}", 0,
                 "{\"id\":3,\"name\":\"n\",\"extra\":4}");
    s_expect_error(S_REQUIRED, "{\"id\":1}", 0, "invalid_field", "name");
    s_expect_error(S_REQUIRED, "{\"name\":\"n\"}", 0, "invalid_field", "id");
    s_expect_error(S_REQUIRED, "{\"id\":null,\"name\":\"n\"}", 0, "invalid_field", "id");
}

/* --- errors ----------------------------------------------------------------------- */

Test(json, error_paths_name_the_field)
{
    const char *bad_text = "{\"call_id\":\"c1\",\"segments\":[{\"seq\":1,\"text\":\"ok\"},"
                           "{\"seq\":2},{\"seq\":3,\"text\":\"\xff\"}]}";
    ProtobufCMessage *m = NULL;
    ncc_json_error_t err;
    int rc = ncc_json_parse_pb(S_TRANSCRIPT, bad_text, strlen(bad_text), 0, &m, &err);
    cr_assert_eq(rc, -EINVAL);
    cr_assert_null(m);
    cr_assert_str_eq(err.code, "invalid_field");
    cr_assert_str_eq(err.field, "segments[2].text");
    cr_assert_not_null(strstr(err.message, "segments[2].text"), "%s", err.message);
    cr_assert_not_null(strstr(err.message, "UTF-8"), "%s", err.message);

    s_expect_error(S_TRANSCRIPT, "{\"segments\":[{},{\"seq\":\"x\"}]}", 0, "invalid_field",
                   "segments[1].seq");
    s_expect_error(S_TRANSCRIPT, "{\"segments\":[{\"seq\":1,\"bogus\":2}]}", 0, "unknown_field",
                   "segments[0].bogus");
    s_expect_error(S_TRANSCRIPT, "{\"call_id\":\"a\",\"call_id\":\"b\"}", 0, "invalid_field",
                   "call_id");
    s_expect_error(S_TRANSCRIPT, "{\"segments\":{}}", 0, "invalid_field", "segments");
}

Test(json, unknown_fields)
{
    s_expect_error(S_SCALARS, "{\"i32\":1,\"nope\":2}", 0, "unknown_field", "nope");
    /* field names are the proto names, case-sensitive */
    s_expect_error(S_SCALARS, "{\"I32\":1}", 0, "unknown_field", "I32");
    /* an unprintable key is not echoed */
    s_expect_error(S_SCALARS, "{\"a\\u0001b\":1}", 0, "unknown_field", "?");
    s_expect_error(S_SCALARS, "{\"\xff\":1}", 0, "unknown_field", "?");

    s_round_trip(S_SCALARS, "{\"i32\":1,\"nope\":{\"deep\":[1,{\"x\":null}]},\"z\":\"\xff\"}",
                 NCC_JSON_IGNORE_UNKNOWN, "{\"i32\":1}");
    s_round_trip(S_TRANSCRIPT, "{\"segments\":[{\"seq\":1,\"bogus\":2}]}", NCC_JSON_IGNORE_UNKNOWN,
                 "{\"segments\":[{\"seq\":1}]}");
}

Test(json, invalid_json)
{
    s_expect_error(S_SCALARS, "{\"i32\":", 0, "invalid_json", "");
    s_expect_error(S_SCALARS, "{\"i32\":1}}", 0, "invalid_json", "");
    s_expect_error(S_SCALARS, "{\"i32\":1} x", 0, "invalid_json", "");
    s_expect_error(S_SCALARS, "[1,2]", 0, "invalid_json", "");
    s_expect_error(S_SCALARS, "\"text\"", 0, "invalid_json", "");
    s_expect_error(S_SCALARS, "{'i32':1}", 0, "invalid_json", "");
    s_expect_error(S_SCALARS, "", 0, "invalid_json", "");

    /* text is taken by length: a NUL inside is refused, bytes past len unread */
    ProtobufCMessage *m = NULL;
    ncc_json_error_t err;
    cr_assert_eq(ncc_json_parse_pb(S_SCALARS, "{}\0{}", 5, 0, &m, &err), -EINVAL);
    cr_assert_str_eq(err.code, "invalid_json");
    cr_assert_eq(ncc_json_parse_pb(S_SCALARS, "{\"i32\":12}garbage", 10, 0, &m, &err), 0);
    cr_assert_eq(((Ncc__Test__Scalars *)m)->i32, 12);
    protobuf_c_message_free_unpacked(m, NULL);

    /* whitespace around the object is fine; a NULL err is allowed */
    m = NULL;
    cr_assert_eq(ncc_json_parse_pb(S_SCALARS, " \n{ }\r\n", 7, 0, &m, NULL), 0);
    protobuf_c_message_free_unpacked(m, NULL);
    cr_assert_eq(ncc_json_parse_pb(S_SCALARS, "nope", 4, 0, &m, NULL), -EINVAL);
}

Test(json, tree_holds_numbers)
{
    Ncc__Test__Scalars s = NCC__TEST__SCALARS__INIT;
    s.has_i32 = s.has_i64 = s.has_dbl = 1;
    s.i32 = -3;
    s.i64 = INT64_C(1700000000123457);
    s.dbl = 2.5;

    cJSON *json = ncc_pb_to_json(&s.base);
    cr_assert_not_null(json);
    cr_assert(cJSON_IsNumber(cJSON_GetObjectItem(json, "i32")));
    cr_assert_eq(cJSON_GetObjectItem(json, "i32")->valuedouble, -3);
    cr_assert(cJSON_IsNumber(cJSON_GetObjectItem(json, "dbl")));
    /* needs 16 digits: a raw item with the exact text */
    cr_assert(cJSON_IsRaw(cJSON_GetObjectItem(json, "i64")));
    cr_assert_str_eq(cJSON_GetObjectItem(json, "i64")->valuestring, "1700000000123457");
    cJSON_Delete(json);
}

Test(json, to_pb_from_a_tree_checks_the_root)
{
    ProtobufCMessage *m = NULL;
    ncc_json_error_t err;
    cJSON *array = cJSON_CreateArray();

    cr_assert_eq(ncc_json_to_pb(S_SCALARS, array, 0, &m, &err), -EINVAL);
    cr_assert_str_eq(err.code, "invalid_json");
    cr_assert_eq(ncc_json_to_pb(S_SCALARS, NULL, 0, &m, &err), -EINVAL);
    cr_assert_null(m);
    cJSON_Delete(array);
}

/* --- nesting limits --------------------------------------------------------------- */

/* {"child":{"child":...{}...}} with `levels` objects below the top. */
/* {"child":{"child":{...}}} `levels` deep; with_children: as written back,
 * each node with its empty "children":[]. */
static char *s_nested_nodes(int levels, bool with_children)
{
    size_t size = (size_t)levels * 28 + 32;
    char *text = malloc(size);
    size_t o = 0;

    cr_assert_not_null(text);
    text[o++] = '{';
    for (int i = 0; i < levels; i++) {
        memcpy(text + o, "\"child\":{", 9);
        o += 9;
    }
    for (int i = 0; i <= levels; i++) {
        if (with_children) {
            const char *children = i == 0 ? "\"children\":[]" : ",\"children\":[]";
            memcpy(text + o, children, strlen(children));
            o += strlen(children);
        }
        text[o++] = '}';
    }
    text[o] = '\0';
    return text;
}

Test(json, depth_limit_is_32_messages)
{
    char *ok = s_nested_nodes(NCC_JSON_MAX_DEPTH - 1, false);
    char *written = s_nested_nodes(NCC_JSON_MAX_DEPTH - 1, true);
    ProtobufCMessage *m = s_parse(S_NODE, ok, 0);
    s_assert_json(m, written);
    protobuf_c_message_free_unpacked(m, NULL);
    free(ok);
    free(written);

    char *deep = s_nested_nodes(NCC_JSON_MAX_DEPTH, false);
    ncc_json_error_t err;
    m = NULL;
    cr_assert_eq(ncc_json_parse_pb(S_NODE, deep, strlen(deep), 0, &m, &err), -EINVAL);
    cr_assert_null(m);
    cr_assert_str_eq(err.code, "too_deep");
    cr_assert_eq(strncmp(err.field, "child.child.", 12), 0, "%s", err.field);
    free(deep);
}

Test(json, huge_nesting_is_refused_without_recursion)
{
    /* a megabyte of '[' or '{"child":' never reaches a recursive parser */
    size_t n = 1 << 20;
    char *text = malloc(n + 1);
    cr_assert_not_null(text);
    memset(text, '[', n);
    text[n] = '\0';
    s_expect_error(S_NODE, text, 0, "too_deep", "");
    free(text);

    char *nodes = s_nested_nodes(100000, false);
    s_expect_error(S_NODE, nodes, 0, "too_deep", "");
    free(nodes);

    /* a deep tree handed over directly stops at the depth limit */
    cJSON *root = cJSON_CreateObject();
    cJSON *cur = root;
    for (int i = 0; i < 5000; i++) {
        cJSON *child = cJSON_CreateObject();
        cr_assert(cJSON_AddItemToObject(cur, "child", child));
        cur = child;
    }
    ProtobufCMessage *m = NULL;
    ncc_json_error_t err;
    cr_assert_eq(ncc_json_to_pb(S_NODE, root, 0, &m, &err), -EINVAL);
    cr_assert_str_eq(err.code, "too_deep");
    cr_assert_null(m);
    cJSON_Delete(root);
}

Test(json, output_depth_is_limited_too)
{
    Ncc__Test__Node nodes[NCC_JSON_MAX_DEPTH + 1];

    for (int i = 0; i <= NCC_JSON_MAX_DEPTH; i++) {
        ncc__test__node__init(&nodes[i]);
        if (i > 0)
            nodes[i - 1].child = &nodes[i];
    }
    /* 33 levels: refused */
    cr_assert_null(ncc_pb_to_json(&nodes[0].base));
    cr_assert_null(ncc_pb_to_json_text(&nodes[0].base));
    /* 32 levels: written */
    cJSON *json = ncc_pb_to_json(&nodes[1].base);
    cr_assert_not_null(json);
    cJSON_Delete(json);
    cr_assert_null(ncc_pb_to_json(NULL));
}

/* --- flags ------------------------------------------------------------------------ */

Test(json, strings_as_scalars_for_query_strings)
{
    const char *query = "{\"i32\":\"-12\",\"u32\":\"7\",\"i64\":\"9007199254740993\","
                        "\"flt\":\"1.5\",\"dbl\":\"-2e3\",\"flag\":\"true\",\"color\":\"2\","
                        "\"text\":\"12\"}";
    s_round_trip(S_SCALARS, query, NCC_JSON_STRINGS_AS_SCALARS,
                 "{\"i32\":-12,\"i64\":\"9007199254740993\",\"u32\":7,\"flt\":1.5,\"dbl\":-2000,"
                 "\"flag\":true,\"color\":\"GREEN\",\"text\":\"12\"}");
    s_round_trip(S_SCALARS, "{\"flag\":\"0\",\"color\":\"RED\"}", NCC_JSON_STRINGS_AS_SCALARS,
                 "{\"flag\":false,\"color\":\"RED\"}");
    s_round_trip(S_SCALARS, "{\"flag\":\"1\"}", NCC_JSON_STRINGS_AS_SCALARS, "{\"flag\":true}");
    s_round_trip(S_SCALARS, "{\"dbl\":\"-0.5e+2\",\"flt\":\"007.25E-1\"}",
                 NCC_JSON_STRINGS_AS_SCALARS, "{\"flt\":0.725,\"dbl\":-50}");
    /* real JSON values still work */
    s_round_trip(S_SCALARS, "{\"i32\":5,\"flag\":false}", NCC_JSON_STRINGS_AS_SCALARS, NULL);
    /* a single value for a repeated field */
    s_round_trip(
        S_REPEATED, "{\"i32\":\"3\",\"text\":\"a\"}", NCC_JSON_STRINGS_AS_SCALARS,
        "{\"i32\":[3],\"s32\":[],\"sf32\":[],\"i64\":[],\"s64\":[],\"sf64\":[],\"u32\":[],\"f32\":["
        "],\"u64\":[],\"f64\":[],\"flt\":[],\"dbl\":[],\"flag\":[],\"color\":[],\"text\":[\"a\"],"
        "\"data\":[],\"items\":[]}");
    s_round_trip(S_REPEATED, "{\"i32\":[\"3\",\"4\"]}", NCC_JSON_STRINGS_AS_SCALARS,
                 "{\"i32\":[3,4],\"s32\":[],\"sf32\":[],\"i64\":[],\"s64\":[],\"sf64\":[],\"u32\":["
                 "],\"f32\":[],\"u64\":[],\"f64\":[],\"flt\":[],\"dbl\":[],\"flag\":[],\"color\":[]"
                 ",\"text\":[],"
                 "\"data\":[],\"items\":[]}");

    s_expect_error(S_SCALARS, "{\"i32\":\"1.5\"}", NCC_JSON_STRINGS_AS_SCALARS, "invalid_field",
                   "i32");
    s_expect_error(S_SCALARS, "{\"i32\":\"2147483648\"}", NCC_JSON_STRINGS_AS_SCALARS,
                   "invalid_field", "i32");
    s_expect_error(S_SCALARS, "{\"u32\":\"-1\"}", NCC_JSON_STRINGS_AS_SCALARS, "invalid_field",
                   "u32");
    s_expect_error(S_SCALARS, "{\"flag\":\"yes\"}", NCC_JSON_STRINGS_AS_SCALARS, "invalid_field",
                   "flag");
    s_expect_error(S_SCALARS, "{\"dbl\":\"0x10\"}", NCC_JSON_STRINGS_AS_SCALARS, "invalid_field",
                   "dbl");
    s_expect_error(S_SCALARS, "{\"dbl\":\"inf\"}", NCC_JSON_STRINGS_AS_SCALARS, "invalid_field",
                   "dbl");
    s_expect_error(S_SCALARS, "{\"dbl\":\"1.\"}", NCC_JSON_STRINGS_AS_SCALARS, "invalid_field",
                   "dbl");
    s_expect_error(S_SCALARS, "{\"dbl\":\"1e\"}", NCC_JSON_STRINGS_AS_SCALARS, "invalid_field",
                   "dbl");
    s_expect_error(S_SCALARS, "{\"dbl\":\"-\"}", NCC_JSON_STRINGS_AS_SCALARS, "invalid_field",
                   "dbl");
    s_expect_error(S_SCALARS, "{\"dbl\":\"1e999\"}", NCC_JSON_STRINGS_AS_SCALARS, "invalid_field",
                   "dbl");
    s_expect_error(S_SCALARS, "{\"flt\":\"1e39\"}", NCC_JSON_STRINGS_AS_SCALARS, "invalid_field",
                   "flt");
    s_expect_error(S_SCALARS, "{\"color\":\"9\"}", NCC_JSON_STRINGS_AS_SCALARS, "invalid_field",
                   "color");
    s_expect_error(S_REPEATED, "{\"items\":{}}", NCC_JSON_STRINGS_AS_SCALARS, "invalid_field",
                   "items");
}

Test(json, to_pb_from_a_built_tree)
{
    /* what the gateway does with query parameters */
    cJSON *q = cJSON_CreateObject();
    cJSON_AddStringToObject(q, "u64", "18446744073709551615");
    cJSON_AddStringToObject(q, "flag", "false");
    cJSON_AddStringToObject(q, "text", "税");

    ProtobufCMessage *m = NULL;
    ncc_json_error_t err;
    cr_assert_eq(ncc_json_to_pb(S_SCALARS, q, NCC_JSON_STRINGS_AS_SCALARS, &m, &err), 0, "%s",
                 err.message);
    Ncc__Test__Scalars *s = (Ncc__Test__Scalars *)m;
    cr_assert(s->has_u64 && s->u64 == UINT64_MAX);
    cr_assert(s->has_flag && !s->flag);
    cr_assert_str_eq(s->text, "税");
    protobuf_c_message_free_unpacked(m, NULL);
    cJSON_Delete(q);
}

Test(json, error_field_is_cut_at_a_character_boundary)
{
    /* an unknown key longer than the field buffer, made of 3-byte characters */
    char text[1024];
    size_t o = 0;
    text[o++] = '{';
    text[o++] = '"';
    for (int i = 0; i < 100; i++) {
        memcpy(text + o, "あ", 3);
        o += 3;
    }
    memcpy(text + o, "\":1}", 5);

    ProtobufCMessage *m = NULL;
    ncc_json_error_t err;
    cr_assert_eq(ncc_json_parse_pb(S_SCALARS, text, strlen(text), 0, &m, &err), -EINVAL);
    cr_assert_str_eq(err.code, "unknown_field");
    size_t len = strlen(err.field);
    cr_assert_gt(len, 0);
    cr_assert_lt(len, sizeof err.field);
    cr_assert_eq(len % 3, 0, "cut inside a character: %zu bytes", len);
}
