/* Tests for ncc/config.h: the declarative table loader (types, defaults,
 * bounds, errors naming the variable, atomic load and reload, help). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ncc/config.h"
#include "ncc/log.h"

typedef struct {
    char *bind;            /* NCC_T_BIND */
    int port;              /* NCC_T_PORT */
    bool tls;              /* NCC_T_TLS */
    ncc_log_level_t level; /* NCC_T_LOG_LEVEL (reloadable) */
    int batch;             /* NCC_T_BATCH (reloadable) */
    char *greeting;        /* NCC_T_GREETING (reloadable) */
    char *secret;          /* NCC_T_SECRET */
    int any;               /* NCC_T_ANY: no bounds */
} settings_t;

static const ncc_config_entry_t table[] = {
    {"NCC_T_BIND", NCC_CONFIG_STRING, "tcp://127.0.0.1:7100", offsetof(settings_t, bind), 0, 0,
     false, false, "Where the RPC socket binds."},
    {"NCC_T_PORT", NCC_CONFIG_INT, "9100", offsetof(settings_t, port), 1, 65535, false, false,
     "Health port."},
    {"NCC_T_TLS", NCC_CONFIG_BOOL, "false", offsetof(settings_t, tls), 0, 0, false, false,
     "Serve TLS."},
    {"NCC_T_LOG_LEVEL", NCC_CONFIG_LOGLEVEL, "info", offsetof(settings_t, level), 0, 0, true, false,
     "Minimum log level."},
    {"NCC_T_BATCH", NCC_CONFIG_INT, "100", offsetof(settings_t, batch), 1, 1000, true, false,
     "Rows per batch."},
    {"NCC_T_GREETING", NCC_CONFIG_STRING, NULL, offsetof(settings_t, greeting), 0, 0, true, false,
     "Text shown to callers."},
    {"NCC_T_SECRET", NCC_CONFIG_STRING, NULL, offsetof(settings_t, secret), 0, 0, false, true,
     "Webhook secret."},
    {"NCC_T_ANY", NCC_CONFIG_INT, "-5", offsetof(settings_t, any), 0, 0, false, false,
     "Any integer."},
    {NULL, 0, NULL, 0, 0, 0, false, false, NULL},
};

static const char *const vars[] = {"NCC_T_BIND",      "NCC_T_PORT",  "NCC_T_TLS",
                                   "NCC_T_LOG_LEVEL", "NCC_T_BATCH", "NCC_T_GREETING",
                                   "NCC_T_SECRET",    "NCC_T_ANY"};

static void clear_env(void)
{
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
}

TestSuite(config, .init = clear_env);

Test(config, defaults_apply_when_unset_or_empty)
{
    settings_t s = {0};
    char err[256];
    setenv("NCC_T_BIND", "", 1); /* empty counts as unset */
    cr_assert_eq(ncc_config_load(table, &s, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(s.bind, "tcp://127.0.0.1:7100");
    cr_assert_eq(s.port, 9100);
    cr_assert_eq(s.tls, false);
    cr_assert_eq(s.level, NCC_LOG_INFO);
    cr_assert_eq(s.batch, 100);
    cr_assert_null(s.greeting);
    cr_assert_null(s.secret);
    cr_assert_eq(s.any, -5);
    ncc_config_free(table, &s);
    cr_assert_null(s.bind, "free nulls the fields");
}

Test(config, environment_overrides_defaults)
{
    settings_t s = {0};
    char err[256];
    setenv("NCC_T_BIND", "ipc:///tmp/x", 1);
    setenv("NCC_T_PORT", "65535", 1);
    setenv("NCC_T_TLS", "Yes", 1);
    setenv("NCC_T_LOG_LEVEL", "debug", 1);
    setenv("NCC_T_BATCH", "1", 1);
    setenv("NCC_T_GREETING", "こんにちは", 1);
    setenv("NCC_T_SECRET", "s3cr3t", 1);
    setenv("NCC_T_ANY", "-2147483648", 1);
    cr_assert_eq(ncc_config_load(table, &s, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(s.bind, "ipc:///tmp/x");
    cr_assert_eq(s.port, 65535);
    cr_assert_eq(s.tls, true);
    cr_assert_eq(s.level, NCC_LOG_DEBUG);
    cr_assert_eq(s.batch, 1);
    cr_assert_str_eq(s.greeting, "こんにちは");
    cr_assert_str_eq(s.secret, "s3cr3t");
    cr_assert_eq(s.any, -2147483647 - 1);

    const char *const truths[] = {"1", "true", "TRUE", "yes", "on", "On"};
    const char *const lies[] = {"0", "false", "no", "off", "OFF", "No"};
    for (size_t i = 0; i < 6; i++) {
        setenv("NCC_T_TLS", truths[i], 1);
        cr_assert_eq(ncc_config_load(table, &s, err, sizeof err), 0, "%s", err);
        cr_assert_eq(s.tls, true, "%s", truths[i]);
        setenv("NCC_T_TLS", lies[i], 1);
        cr_assert_eq(ncc_config_load(table, &s, err, sizeof err), 0, "%s", err);
        cr_assert_eq(s.tls, false, "%s", lies[i]);
    }
    ncc_config_free(table, &s);
}

/* Loads with one bad variable: -EINVAL, err names the variable, and the
 * target is exactly as it was. */
static void expect_rejected(const char *var, const char *value, const char *needle)
{
    settings_t s = {0};
    char err[256];
    clear_env();
    cr_assert_eq(ncc_config_load(table, &s, err, sizeof err), 0, "%s", err);
    settings_t before = s;
    setenv("NCC_T_BIND", "tcp://changed:1", 1); /* a good value before the bad one */
    setenv(var, value, 1);
    err[0] = '\0';
    cr_assert_eq(ncc_config_load(table, &s, err, sizeof err), -EINVAL, "%s=%s accepted", var,
                 value);
    cr_assert_not_null(strstr(err, var), "error \"%s\" does not name %s", err, var);
    if (needle)
        cr_assert_not_null(strstr(err, needle), "error \"%s\" lacks \"%s\"", err, needle);
    cr_assert_eq(memcmp(&s, &before, sizeof s), 0, "target changed by a failed load");
    cr_assert_str_eq(s.bind, "tcp://127.0.0.1:7100");
    ncc_config_free(table, &s);
}

Test(config, bad_values_are_rejected_naming_the_variable)
{
    expect_rejected("NCC_T_PORT", "0", "1..65535");
    expect_rejected("NCC_T_PORT", "65536", "1..65535");
    expect_rejected("NCC_T_PORT", "80x", "not an integer");
    expect_rejected("NCC_T_PORT", " ", "not an integer");
    expect_rejected("NCC_T_PORT", "99999999999999999999", "out of range");
    expect_rejected("NCC_T_ANY", "2147483648", "out of range");
    expect_rejected("NCC_T_TLS", "maybe", "not a boolean");
    expect_rejected("NCC_T_LOG_LEVEL", "loud", "not a log level");
    expect_rejected("NCC_T_BATCH", "1001", "1..1000");
}

Test(config, secret_values_are_not_quoted_in_errors)
{
    static const ncc_config_entry_t secret_int[] = {
        {"NCC_T_PIN", NCC_CONFIG_INT, "1", 0, 1, 9999, false, true, "A secret number."},
        {NULL, 0, NULL, 0, 0, 0, false, false, NULL},
    };
    int pin = 0;
    char err[256];
    setenv("NCC_T_PIN", "hunter2", 1);
    cr_assert_eq(ncc_config_load(secret_int, &pin, err, sizeof err), -EINVAL);
    cr_assert_not_null(strstr(err, "NCC_T_PIN"));
    cr_assert_null(strstr(err, "hunter2"), "secret leaked into \"%s\"", err);
    unsetenv("NCC_T_PIN");
}

Test(config, reload_changes_only_reloadable_entries)
{
    settings_t s = {0};
    char err[256];
    cr_assert_eq(ncc_config_load(table, &s, err, sizeof err), 0, "%s", err);
    setenv("NCC_T_BIND", "tcp://elsewhere:1", 1); /* not reloadable */
    setenv("NCC_T_PORT", "1234", 1);              /* not reloadable */
    setenv("NCC_T_LOG_LEVEL", "error", 1);
    setenv("NCC_T_BATCH", "7", 1);
    setenv("NCC_T_GREETING", "hello", 1);
    cr_assert_eq(ncc_config_reload(table, &s, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(s.bind, "tcp://127.0.0.1:7100");
    cr_assert_eq(s.port, 9100);
    cr_assert_eq(s.level, NCC_LOG_ERROR);
    cr_assert_eq(s.batch, 7);
    cr_assert_str_eq(s.greeting, "hello");

    /* A bad non-reloadable value does not block a reload. */
    setenv("NCC_T_PORT", "not a port", 1);
    setenv("NCC_T_GREETING", "again", 1);
    cr_assert_eq(ncc_config_reload(table, &s, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(s.greeting, "again");
    ncc_config_free(table, &s);
}

Test(config, bad_reload_leaves_everything_unchanged)
{
    settings_t s = {0};
    char err[256];
    setenv("NCC_T_GREETING", "first", 1);
    cr_assert_eq(ncc_config_load(table, &s, err, sizeof err), 0, "%s", err);
    char *greeting_before = s.greeting;
    settings_t before = s;

    /* Valid new values for LOG_LEVEL and GREETING, but BATCH is out of range. */
    setenv("NCC_T_LOG_LEVEL", "debug", 1);
    setenv("NCC_T_GREETING", "second", 1);
    setenv("NCC_T_BATCH", "0", 1);
    cr_assert_eq(ncc_config_reload(table, &s, err, sizeof err), -EINVAL);
    cr_assert_not_null(strstr(err, "NCC_T_BATCH"), "%s", err);
    cr_assert_eq(memcmp(&s, &before, sizeof s), 0, "a failed reload changed the target");
    cr_assert_eq(s.greeting, greeting_before);
    cr_assert_str_eq(s.greeting, "first");
    cr_assert_eq(s.level, NCC_LOG_INFO);
    ncc_config_free(table, &s);
}

Test(config, unset_reloadable_string_returns_to_default)
{
    settings_t s = {0};
    char err[256];
    setenv("NCC_T_GREETING", "temporary", 1);
    cr_assert_eq(ncc_config_load(table, &s, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(s.greeting, "temporary");
    unsetenv("NCC_T_GREETING");
    cr_assert_eq(ncc_config_reload(table, &s, err, sizeof err), 0, "%s", err);
    cr_assert_null(s.greeting);
    ncc_config_free(table, &s);
}

Test(config, print_help_lists_every_variable)
{
    char path[] = "/tmp/test_config_help_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    dup2(fd, STDOUT_FILENO);
    ncc_config_print_help("ncc-test", table);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);

    char text[8192];
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    close(fd);
    unlink(path);
    cr_assert_gt(n, 0);
    text[n] = '\0';
    cr_assert_not_null(strstr(text, "ncc-test"));
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        cr_assert_not_null(strstr(text, vars[i]), "%s missing from help", vars[i]);
    cr_assert_not_null(strstr(text, "Health port."));
    cr_assert_not_null(strstr(text, "1..65535"));
    cr_assert_not_null(strstr(text, "default \"9100\""));
    cr_assert_not_null(strstr(text, "reloadable"));
}

Test(config, describe_hides_secrets)
{
    settings_t s = {0};
    char err[256];
    setenv("NCC_T_SECRET", "s3cr3t", 1);
    setenv("NCC_T_GREETING", "two words", 1);
    cr_assert_eq(ncc_config_load(table, &s, err, sizeof err), 0, "%s", err);
    char *text = ncc_config_describe(table, &s);
    cr_assert_not_null(text);
    cr_assert_null(strstr(text, "s3cr3t"), "%s", text);
    cr_assert_not_null(strstr(text, "NCC_T_SECRET=***"), "%s", text);
    cr_assert_not_null(strstr(text, "NCC_T_PORT=9100"), "%s", text);
    cr_assert_not_null(strstr(text, "NCC_T_GREETING=\"two words\""), "%s", text);
    cr_assert_not_null(strstr(text, "NCC_T_LOG_LEVEL=info"), "%s", text);
    free(text);
    ncc_config_free(table, &s);
}
