/* ncc-directory: masters: departments (所管課), phone book, categories, users
 * and roles, sign-in and the audit log. main stays thin: the frame
 * (ncc/service.h) does configuration, database, bus and health; directory.c
 * adds the service. */
#include <stddef.h>

#include "directory.h"
#include "ncc/service.h"

extern const ncc_migration_t ncc_sql_directory[];

/* The directory's settings; docs/directory.md explains them. */
static const ncc_config_entry_t s_config[] = {
    {"NCC_ARGON2_MEMORY_KIB", NCC_CONFIG_INT, "65536",
     offsetof(directory_settings_t, argon2_memory_kib), 64, 4194304, true, false,
     "Argon2id memory cost of password hashes in KiB (tests may lower it)"},
    {"NCC_ARGON2_ITERATIONS", NCC_CONFIG_INT, "3",
     offsetof(directory_settings_t, argon2_iterations), 1, 100, true, false,
     "Argon2id time cost (passes over the memory)"},
    {"NCC_LOGIN_ACCOUNT_MAX_FAILURES", NCC_CONFIG_INT, "5",
     offsetof(directory_settings_t, login_account_max_failures), 0, 1000, true, false,
     "failed sign-ins of one account within the window that lock it (0: never)"},
    {"NCC_LOGIN_ACCOUNT_WINDOW_S", NCC_CONFIG_INT, "900",
     offsetof(directory_settings_t, login_account_window_s), 1, 86400 * 7, true, false,
     "window of the per-account failure count, seconds"},
    {"NCC_LOGIN_LOCK_S", NCC_CONFIG_INT, "900", offsetof(directory_settings_t, login_lock_s), 1,
     86400 * 7, true, false, "how long a locked account stays locked, seconds"},
    {"NCC_LOGIN_ADDRESS_MAX_FAILURES", NCC_CONFIG_INT, "20",
     offsetof(directory_settings_t, login_address_max_failures), 0, 100000, true, false,
     "failed sign-ins from one address within the window before it gets 429 (0: no limit)"},
    {"NCC_LOGIN_ADDRESS_WINDOW_S", NCC_CONFIG_INT, "900",
     offsetof(directory_settings_t, login_address_window_s), 1, 86400 * 7, true, false,
     "window of the per-address failure count, seconds"},
    {"NCC_BOOTSTRAP_ADMIN_LOGIN", NCC_CONFIG_STRING, "admin",
     offsetof(directory_settings_t, bootstrap_login), 0, 0, false, false,
     "login of the administrator created on an empty database"},
    {"NCC_BOOTSTRAP_ADMIN_PASSWORD", NCC_CONFIG_STRING, NULL,
     offsetof(directory_settings_t, bootstrap_password), 0, 0, false, true,
     "its password (unset: generated and printed once)"},
    {"NCC_BOOTSTRAP_ADMIN_TOTP_SECRET", NCC_CONFIG_STRING, NULL,
     offsetof(directory_settings_t, bootstrap_totp_secret), 0, 0, false, true,
     "its TOTP secret, base32 (unset: generated and printed once)"},
    {NULL, 0, NULL, 0, 0, 0, false, false, NULL},
};

static directory_settings_t s_settings;

static void *s_create(ncc_service_t *service)
{
    return directory_new(service, &s_settings);
}

static void s_destroy(void **state_p)
{
    directory_t *self = *state_p;
    directory_destroy(&self);
    *state_p = NULL;
}

int main(int argc, char **argv)
{
    const ncc_service_options_t options = {
        .name = "directory",
        .migrations = ncc_sql_directory,
        .config = s_config,
        .config_target = &s_settings,
        .create = s_create,
        .destroy = s_destroy,
    };
    return ncc_service_main(&options, argc, argv);
}
