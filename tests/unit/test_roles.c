/* Tests for ncc/roles.h: role names, lists to masks, masks back to lists. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "ncc/roles.h"

Test(roles, each_name_parses_to_its_bit_and_back)
{
    static const struct {
        const char *name;
        unsigned bit;
    } roles[] = {
        {"operator", NCC_ROLE_OPERATOR}, {"supervisor", NCC_ROLE_SUPERVISOR},
        {"admin", NCC_ROLE_ADMIN},       {"staff", NCC_ROLE_STAFF},
        {"system", NCC_ROLE_SYSTEM},
    };
    unsigned all = 0;
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
        cr_assert_eq(ncc_role_parse(roles[i].name), roles[i].bit, "%s", roles[i].name);
        cr_assert_str_eq(ncc_role_name(roles[i].bit), roles[i].name);
        cr_assert_eq(ncc_roles_parse(roles[i].name), roles[i].bit);
        all |= roles[i].bit;
    }
    cr_assert_eq(all, NCC_ROLES_ALL);
    cr_assert_eq(NCC_ROLES_ALL & ~NCC_ROLES_USERS, NCC_ROLE_SYSTEM);
}

Test(roles, unknown_names_are_zero)
{
    const char *unknown[] = {"",          " ",    "boss",      "Operator",   "ADMIN",
                             "operators", "oper", "operator,", "admin staff"};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        cr_assert_eq(ncc_role_parse(unknown[i]), 0, "\"%s\"", unknown[i]);
    cr_assert_eq(ncc_role_parse(NULL), 0);
    cr_assert_eq(ncc_role_parse(" \tadmin "), NCC_ROLE_ADMIN, "blanks around are fine");

    cr_assert_null(ncc_role_name(0));
    cr_assert_null(ncc_role_name(NCC_ROLE_OPERATOR | NCC_ROLE_ADMIN));
    cr_assert_null(ncc_role_name(1u << 5));
}

Test(roles, lists_parse_to_masks)
{
    cr_assert_eq(ncc_roles_parse("operator,supervisor"), NCC_ROLE_OPERATOR | NCC_ROLE_SUPERVISOR);
    cr_assert_eq(ncc_roles_parse(" admin , staff\t"), NCC_ROLE_ADMIN | NCC_ROLE_STAFF);
    cr_assert_eq(ncc_roles_parse("operator,operator"), NCC_ROLE_OPERATOR, "repeats are harmless");
    cr_assert_eq(ncc_roles_parse("operator,supervisor,admin,staff"), NCC_ROLES_USERS);
    cr_assert_eq(ncc_roles_parse("operator,supervisor,admin,staff,system"), NCC_ROLES_ALL);

    /* One unknown or empty name spoils the whole list: nothing is granted. */
    const char *bad[] = {"",          "operator,boss",   "boss,operator",  "operator,",
                         ",operator", "operator,,admin", "operator;admin", "operator admin",
                         " , "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(ncc_roles_parse(bad[i]), 0, "\"%s\"", bad[i]);
    cr_assert_eq(ncc_roles_parse(NULL), 0);
}

Test(roles, masks_format_and_round_trip)
{
    char out[64];
    cr_assert_eq(ncc_roles_format(NCC_ROLE_ADMIN | NCC_ROLE_OPERATOR, out, sizeof out),
                 (int)strlen("operator,admin"));
    cr_assert_str_eq(out, "operator,admin");
    cr_assert_eq(ncc_roles_format(0, out, sizeof out), 0);
    cr_assert_str_eq(out, "");
    for (unsigned mask = 1; mask <= NCC_ROLES_ALL; mask++) {
        cr_assert_geq(ncc_roles_format(mask, out, sizeof out), 0);
        cr_assert_eq(ncc_roles_parse(out), mask, "%u -> %s", mask, out);
    }
    cr_assert_eq(ncc_roles_format(1u << 5, out, sizeof out), -EINVAL);
    cr_assert_eq(ncc_roles_format(NCC_ROLE_OPERATOR, NULL, 0), -EINVAL);
    cr_assert_eq(ncc_roles_format(NCC_ROLE_OPERATOR, out, 8), -ENOSPC, "needs 9 bytes");
    cr_assert_str_eq(out, "");
    cr_assert_eq(ncc_roles_format(NCC_ROLE_OPERATOR, out, 9), 8);
    cr_assert_str_eq(out, "operator");
}
