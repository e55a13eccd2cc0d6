/* Tests for ncc/webhook.h: X-NCC-Signature against vectors computed
 * independently with Python's hmac module (pinned below), the 5-minute
 * tolerance both ways, secret rotation, strict parsing of malformed headers and
 * tampering with the body, t or the signature. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ncc/webhook.h"

/* The vectors, computed with:
 *   python3 -c 'import hmac,hashlib; print(hmac.new(SECRET.encode(),
 *       (str(T) + ".").encode() + BODY, hashlib.sha256).hexdigest())' */
#define SECRET     "whsec_test_secret"
#define NEW_SECRET "whsec_new_secret"
#define T          1700000000LL
#define BODY                                                                                       \
    "{\"event_id\":\"e-1\",\"type\":\"ringing\",\"call_id\":\"c-1\",\"occurred_at\":\"2024-04-"    \
    "01T09:00:00+09:00\",\"from\":\"0312345678\",\"to\":\"0333891111\"}"
#define SIG_A                                                                                      \
    "a4c24228fc52fe20eb56b5e6bf03147a60f7f00f61c52681655823242360b70d" /* SECRET, T, BODY */
#define SIG_B                                                                                      \
    "858f5b03d88645c1b7a93fe8bd783f293c643cbf38069d36e28f92f9fcb8461a" /* NEW_SECRET, T, BODY */
#define SIG_EMPTY                                                                                  \
    "316b9ab98c15bfa039d243f3196acee619cf29749a91a634e6a8154e2f7b6727" /* SECRET, T, "" */
#define T_JP 1712000000LL
#define BODY_JP                                                                                    \
    "{\"segments\":[{\"seq\":1,\"speaker\":\"caller\",\"start_ms\":0,\"end_ms\":1500,\"text\":"    \
    "\"住民票の写しがほしいです\"}]}"
#define SIG_JP "bc69467c78088b5dc8c0bd9b0dc99b0c9e2000c2f2b85f242558d40b0e00c157"
#define SIG_Z  "b3a0faba9028a72310b4195217a6ec49b3f98ce83a44c8d88194ce9a6e75b75a" /* "k", 0, "x" */

static const char *const one_secret[] = {SECRET};

static int s_verify(const char *header, const char *body, int64_t now)
{
    return ncc_webhook_verify(header, body, strlen(body), one_secret, 1, now,
                              NCC_WEBHOOK_TOLERANCE_S);
}

Test(webhook, signatures_match_the_python_vectors)
{
    char out[NCC_WEBHOOK_SIGNATURE_SIZE];

    cr_assert_eq(ncc_webhook_signature(SECRET, T, BODY, strlen(BODY), out), 0);
    cr_assert_str_eq(out, SIG_A);
    cr_assert_eq(ncc_webhook_signature(NEW_SECRET, T, BODY, strlen(BODY), out), 0);
    cr_assert_str_eq(out, SIG_B);
    cr_assert_eq(ncc_webhook_signature(SECRET, T, NULL, 0, out), 0);
    cr_assert_str_eq(out, SIG_EMPTY);
    cr_assert_eq(ncc_webhook_signature(SECRET, T_JP, BODY_JP, strlen(BODY_JP), out), 0);
    cr_assert_str_eq(out, SIG_JP);
    cr_assert_eq(ncc_webhook_signature("k", 0, "x", 1, out), 0);
    cr_assert_str_eq(out, SIG_Z);
}

Test(webhook, sign_writes_the_header_and_verify_accepts_it)
{
    char header[NCC_WEBHOOK_HEADER_SIZE_MIN];

    cr_assert_eq(ncc_webhook_sign(SECRET, T, BODY, strlen(BODY), header, sizeof header), 0);
    cr_assert_str_eq(header, "t=1700000000,v1=" SIG_A);
    cr_assert_eq(s_verify(header, BODY, T), 0);
    cr_assert_eq(s_verify("t=1712000000,v1=" SIG_JP, BODY_JP, T_JP), 0);
    /* Uppercase hex is the same signature. */
    char upper[sizeof header];
    snprintf(upper, sizeof upper, "%s", header);
    for (char *p = upper + strlen("t=1700000000,v1="); *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    cr_assert_eq(s_verify(upper, BODY, T), 0);
    /* The largest t (18 digits) still signs; the buffer must be big enough. */
    cr_assert_eq(ncc_webhook_sign(SECRET, 999999999999999999LL, "", 0, header, sizeof header), 0);
    cr_assert_eq(ncc_webhook_sign(SECRET, T, BODY, strlen(BODY), header, 20), -ENOSPC);
    cr_assert_str_eq(header, "");
    cr_assert_eq(ncc_webhook_sign(SECRET, -1, BODY, strlen(BODY), header, sizeof header), -EINVAL);
    cr_assert_eq(ncc_webhook_sign("", T, BODY, strlen(BODY), header, sizeof header), -EINVAL);
}

Test(webhook, the_tolerance_holds_both_ways)
{
    const char *header = "t=1700000000,v1=" SIG_A;

    cr_assert_eq(s_verify(header, BODY, T + 300), 0, "exactly 5 minutes late");
    cr_assert_eq(s_verify(header, BODY, T - 300), 0, "exactly 5 minutes early");
    cr_assert_eq(s_verify(header, BODY, T + 301), -ESTALE, "one second too late");
    cr_assert_eq(s_verify(header, BODY, T - 301), -ESTALE, "one second too early (clock skew)");
    cr_assert_eq(s_verify(header, BODY, 0), -ESTALE);
    cr_assert_eq(s_verify(header, BODY, INT64_MAX), -ESTALE);
    cr_assert_eq(s_verify(header, BODY, INT64_MIN), -ESTALE);
    cr_assert_eq(ncc_webhook_verify(header, BODY, strlen(BODY), one_secret, 1, T + 10, 5), -ESTALE,
                 "a caller's own tolerance");
    cr_assert_eq(ncc_webhook_verify(header, BODY, strlen(BODY), one_secret, 1, T, 0), 0);
    /* The time is checked before the signature: a stale request with a wrong
     * signature says stale. */
    cr_assert_eq(s_verify("t=1700000000,v1=" SIG_B, BODY, T + 1000), -ESTALE);
}

Test(webhook, rotation_accepts_either_secret_and_either_signature)
{
    const char *both_secrets[] = {NEW_SECRET, SECRET};
    const char *const new_only[] = {NEW_SECRET};
    size_t len = strlen(BODY);

    /* The sender signs with both while rotating. */
    const char *two = "t=1700000000,v1=" SIG_B ",v1=" SIG_A;
    cr_assert_eq(ncc_webhook_verify(two, BODY, len, one_secret, 1, T, 300), 0);
    cr_assert_eq(ncc_webhook_verify(two, BODY, len, new_only, 1, T, 300), 0);
    cr_assert_eq(ncc_webhook_verify(two, BODY, len, both_secrets, 2, T, 300), 0);
    /* The receiver holds both while the sender still uses the old one. */
    const char *old_signed = "t=1700000000,v1=" SIG_A;
    cr_assert_eq(ncc_webhook_verify(old_signed, BODY, len, both_secrets, 2, T, 300), 0);
    cr_assert_eq(ncc_webhook_verify(old_signed, BODY, len, new_only, 1, T, 300), -EACCES);
    /* Once the old secret is gone, a header with only garbage besides fails. */
    const char *wrong_pair = "t=1700000000,v1=" SIG_EMPTY
                             ",v1=0000000000000000000000000000000000000000000000000000000000000000";
    cr_assert_eq(ncc_webhook_verify(wrong_pair, BODY, len, both_secrets, 2, T, 300), -EACCES);
    /* Unknown keys are ignored, wherever they are. */
    cr_assert_eq(s_verify("v0=abc,t=1700000000,scheme_2=x=y,v1=" SIG_A, BODY, T), 0);
    cr_assert_eq(s_verify("v1=" SIG_A ",t=1700000000", BODY, T), 0, "any order");
}

Test(webhook, tampering_is_refused)
{
    char body[sizeof BODY];
    const char *header = "t=1700000000,v1=" SIG_A;

    cr_assert_eq(s_verify(header, BODY, T), 0);
    /* One flipped bit anywhere in the body. */
    for (size_t i = 0; i < strlen(BODY); i += 7) {
        memcpy(body, BODY, sizeof body);
        body[i] ^= 0x01;
        cr_assert_eq(s_verify(header, body, T), -EACCES, "byte %zu", i);
    }
    /* A body cut short, or with a byte added. */
    cr_assert_eq(ncc_webhook_verify(header, BODY, strlen(BODY) - 1, one_secret, 1, T, 300),
                 -EACCES);
    cr_assert_eq(s_verify(header, BODY " ", T), -EACCES);
    /* Another t with the same signature (a replay with a fresh time). */
    cr_assert_eq(s_verify("t=1700000001,v1=" SIG_A, BODY, T), -EACCES);
    /* A leading zero changes the signed text "<t>." even though the number is
     * the same. */
    cr_assert_eq(s_verify("t=01700000000,v1=" SIG_A, BODY, T), -EACCES);
    /* One hex digit of the signature changed. */
    cr_assert_eq(
        s_verify("t=1700000000,v1=b4c24228fc52fe20eb56b5e6bf03147a60f7f00f61c52681655823242360b70d",
                 BODY, T),
        -EACCES);
    /* The wrong secret. */
    const char *const other[] = {"whsec_other"};
    cr_assert_eq(ncc_webhook_verify(header, BODY, strlen(BODY), other, 1, T, 300), -EACCES);
    /* The empty-body signature does not verify a body. */
    cr_assert_eq(s_verify("t=1700000000,v1=" SIG_EMPTY, BODY, T), -EACCES);
    cr_assert_eq(ncc_webhook_verify("t=1700000000,v1=" SIG_EMPTY, NULL, 0, one_secret, 1, T, 300),
                 0);
}

Test(webhook, malformed_headers_are_refused)
{
    char too_long[NCC_WEBHOOK_HEADER_MAX + 64];
    char nine[1024];
    const char *v1 = "v1=" SIG_A;

    /* Valid, then padded with an unknown key to one byte over the cap. */
    int n = snprintf(too_long, sizeof too_long, "t=1700000000,%s,x=", v1);
    memset(too_long + n, 'a', NCC_WEBHOOK_HEADER_MAX + 1 - (size_t)n);
    too_long[NCC_WEBHOOK_HEADER_MAX + 1] = '\0';
    cr_assert_eq(strlen(too_long), NCC_WEBHOOK_HEADER_MAX + 1);
    /* Nine v1 entries: one more than accepted. */
    size_t used = (size_t)snprintf(nine, sizeof nine, "t=1700000000");
    for (int i = 0; i < NCC_WEBHOOK_MAX_SIGNATURES + 1; i++)
        used += (size_t)snprintf(nine + used, sizeof nine - used, ",%s", v1);

    const char *malformed[] = {
        "",
        "t=1700000000",                        /* no v1 */
        "v1=" SIG_A,                           /* no t */
        "t=1700000000,t=1700000000,v1=" SIG_A, /* two t */
        "t=,v1=" SIG_A,                        /* empty t */
        "t=-1700000000,v1=" SIG_A,             /* a sign */
        "t=+1700000000,v1=" SIG_A,             /* a sign */
        "t=1700000000.5,v1=" SIG_A,            /* a fraction */
        "t=1.7e9,v1=" SIG_A,                   /* an exponent */
        "t=0x6553f100,v1=" SIG_A,              /* hex */
        "t=1234567890123456789,v1=" SIG_A,     /* 19 digits */
        "t=1700000000, v1=" SIG_A,             /* a space after the comma */
        " t=1700000000,v1=" SIG_A,             /* a leading space */
        "t=1700000000,v1=" SIG_A " ",          /* a trailing space */
        "t = 1700000000,v1=" SIG_A,            /* spaces around = */
        "t=1700000000;v1=" SIG_A,              /* ; instead of , */
        "t=1700000000,v1=" SIG_A ",",          /* a trailing comma */
        ",t=1700000000,v1=" SIG_A,             /* a leading comma */
        "t=1700000000,,v1=" SIG_A,             /* an empty item */
        "t=1700000000,v1",                     /* no = */
        "t=1700000000,v1=",                    /* empty v1 */
        "t=1700000000,=" SIG_A,                /* empty key */
        "t=1700000000,V1=" SIG_A,              /* key case: V1 is unknown, so no v1 */
        "T=1700000000,v1=" SIG_A,              /* key case: no t */
        "t=1700000000,v1="
        "a4c24228fc52fe20eb56b5e6bf03147a60f7f00f61c52681655823242360b70", /* 63 */
        "t=1700000000,v1="
        "a4c24228fc52fe20eb56b5e6bf03147a60f7f00f61c52681655823242360b70d0", /* 65 */
        "t=1700000000,v1="
        "g4c24228fc52fe20eb56b5e6bf03147a60f7f00f61c52681655823242360b70d", /* not hex
                                                                             */
        "t=1700000000,v1="
        "a4c24228fc52fe20eb56b5e6bf03147a60f7f00f61c52681655823242360b70\xc3\xa9", /* UTF-8
                                                                                    */
        "t=1700000000,v1=" SIG_A "\t",      /* a control character */
        "t=1700000000,x=\x7f,v1=" SIG_A,    /* DEL in an unknown value */
        "t=1700000000,v1=" SIG_A "\n",      /* header injection */
        "t=1700000000,ünknown=1,v1=" SIG_A, /* a key outside [a-z0-9_] */
        too_long,
        nine,
    };
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++)
        cr_assert_eq(s_verify(malformed[i], BODY, T), -EBADMSG, "case %zu: \"%s\"", i,
                     malformed[i]);
    cr_assert_eq(s_verify(NULL, BODY, T), -EBADMSG, "no header at all");

    /* Exactly at the cap it is still read (and the padding ignored). */
    too_long[NCC_WEBHOOK_HEADER_MAX] = '\0';
    cr_assert_eq(s_verify(too_long, BODY, T), 0);
    /* Eight v1 entries are accepted. */
    nine[strlen(nine) - strlen(v1) - 1] = '\0';
    cr_assert_eq(s_verify(nine, BODY, T), 0);
}

Test(webhook, bad_arguments_are_einval)
{
    const char *header = "t=1700000000,v1=" SIG_A;
    const char *const empty[] = {""};
    const char *const with_null[] = {SECRET, NULL};

    cr_assert_eq(ncc_webhook_verify(header, BODY, strlen(BODY), NULL, 0, T, 300), -EINVAL);
    cr_assert_eq(ncc_webhook_verify(header, BODY, strlen(BODY), one_secret, 0, T, 300), -EINVAL);
    cr_assert_eq(ncc_webhook_verify(header, BODY, strlen(BODY), empty, 1, T, 300), -EINVAL);
    cr_assert_eq(ncc_webhook_verify(header, BODY, strlen(BODY), with_null, 2, T, 300), -EINVAL);
    cr_assert_eq(ncc_webhook_verify(header, BODY, strlen(BODY), one_secret, 1, T, -1), -EINVAL);
    cr_assert_eq(ncc_webhook_verify(header, NULL, 5, one_secret, 1, T, 300), -EINVAL);
}
