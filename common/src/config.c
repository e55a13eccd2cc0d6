/* config: the declarative settings table. Every value is parsed into a staging
 * area first and copied into the target only when all of them are valid, so a
 * bad value (at start or on SIGHUP) never leaves a half-applied configuration. */
#include "ncc/config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ncc/log.h"

/* One parsed value, waiting to be committed. */
typedef struct {
    bool set;              /* this entry takes part (load, or reload of a reloadable entry) */
    char *string;          /* NCC_CONFIG_STRING: owned copy, or NULL */
    int integer;           /* NCC_CONFIG_INT */
    bool boolean;          /* NCC_CONFIG_BOOL */
    ncc_log_level_t level; /* NCC_CONFIG_LOGLEVEL */
} s_value_t;

/* Longest piece of a bad value quoted back in an error message. */
#define S_QUOTE_MAX 64

static void s_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void s_error(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* The value as quoted in an error: `"text"` (cut at S_QUOTE_MAX), or a
 * placeholder for secrets. */
static void s_quote(const ncc_config_entry_t *entry, const char *text, char *out, size_t len)
{
    if (entry->secret)
        snprintf(out, len, "the value");
    else
        snprintf(out, len, "\"%.*s\"%s", S_QUOTE_MAX, text,
                 strlen(text) > S_QUOTE_MAX ? "..." : "");
}

static int s_parse_bool(const char *text, bool *ret)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *ret = true;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *ret = false;
            return 0;
        }
    }
    return -EINVAL;
}

/* Parses `text` (NULL = no value) for `entry` into *value. */
static int s_parse(const ncc_config_entry_t *entry, const char *text, bool from_default,
                   s_value_t *value, char *err, size_t errlen)
{
    char quoted[S_QUOTE_MAX + 16];
    const char *origin = from_default ? "default " : "";
    if (text)
        s_quote(entry, text, quoted, sizeof quoted);

    switch (entry->type) {
    case NCC_CONFIG_STRING:
        if (text) {
            value->string = strdup(text);
            if (!value->string) {
                s_error(err, errlen, "%s: out of memory", entry->env);
                return -ENOMEM;
            }
        }
        return 0;
    case NCC_CONFIG_INT: {
        if (!text) {
            value->integer = 0;
            return 0;
        }
        long min = entry->min, max = entry->max;
        if (min == 0 && max == 0)
            min = INT_MIN, max = INT_MAX;
        if (min < INT_MIN)
            min = INT_MIN;
        if (max > INT_MAX)
            max = INT_MAX;
        char *end = NULL;
        errno = 0;
        long n = strtol(text, &end, 10);
        if (end == text || *end != '\0') {
            s_error(err, errlen, "%s: %s%s is not an integer", entry->env, origin, quoted);
            return -EINVAL;
        }
        if (errno == ERANGE || n < min || n > max) {
            s_error(err, errlen, "%s: %s%s is out of range (%ld..%ld)", entry->env, origin, quoted,
                    min, max);
            return -EINVAL;
        }
        value->integer = (int)n;
        return 0;
    }
    case NCC_CONFIG_BOOL:
        if (!text) {
            value->boolean = false;
            return 0;
        }
        if (s_parse_bool(text, &value->boolean) < 0) {
            s_error(err, errlen, "%s: %s%s is not a boolean (true/false, yes/no, on/off, 1/0)",
                    entry->env, origin, quoted);
            return -EINVAL;
        }
        return 0;
    case NCC_CONFIG_LOGLEVEL:
        if (!text) {
            value->level = NCC_LOG_INFO;
            return 0;
        }
        if (ncc_log_level_parse(text, &value->level) < 0) {
            s_error(err, errlen, "%s: %s%s is not a log level (debug, info, warn, error)",
                    entry->env, origin, quoted);
            return -EINVAL;
        }
        return 0;
    }
    s_error(err, errlen, "%s: unknown setting type %d", entry->env, (int)entry->type);
    return -EINVAL;
}

static void s_commit(const ncc_config_entry_t *entry, void *target, s_value_t *value)
{
    char *field = (char *)target + entry->offset;
    switch (entry->type) {
    case NCC_CONFIG_STRING: {
        char **slot = (char **)field;
        free(*slot);
        *slot = value->string;
        value->string = NULL; /* now owned by the target */
        break;
    }
    case NCC_CONFIG_INT:
        *(int *)field = value->integer;
        break;
    case NCC_CONFIG_BOOL:
        *(bool *)field = value->boolean;
        break;
    case NCC_CONFIG_LOGLEVEL:
        *(ncc_log_level_t *)field = value->level;
        break;
    }
}

static int s_apply(const ncc_config_entry_t *table, void *target, bool reload, char *err,
                   size_t errlen)
{
    int rc = -ENOMEM;
    size_t count = 0;
    while (table[count].env)
        count++;
    if (err && errlen)
        err[0] = '\0';
    s_value_t *values = calloc(count ? count : 1, sizeof *values);
    if (!values) {
        s_error(err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < count; i++) {
        const ncc_config_entry_t *entry = &table[i];
        if (reload && !entry->reloadable)
            continue;
        const char *text = getenv(entry->env);
        bool from_default = !text || !text[0];
        if (from_default)
            text = entry->default_value;
        rc = s_parse(entry, text, from_default, &values[i], err, errlen);
        if (rc < 0)
            goto out;
        values[i].set = true;
    }
    /* Everything parsed: nothing below can fail. */
    for (size_t i = 0; i < count; i++) {
        if (values[i].set)
            s_commit(&table[i], target, &values[i]);
    }
    rc = 0;
out:
    if (values) {
        for (size_t i = 0; i < count; i++)
            free(values[i].string);
    }
    free(values);
    return rc;
}

int ncc_config_load(const ncc_config_entry_t *table, void *target, char *err, size_t errlen)
{
    return s_apply(table, target, false, err, errlen);
}

int ncc_config_reload(const ncc_config_entry_t *table, void *target, char *err, size_t errlen)
{
    return s_apply(table, target, true, err, errlen);
}

void ncc_config_free(const ncc_config_entry_t *table, void *target)
{
    if (!table || !target)
        return;
    for (const ncc_config_entry_t *entry = table; entry->env; entry++) {
        if (entry->type != NCC_CONFIG_STRING)
            continue;
        char **slot = (char **)((char *)target + entry->offset);
        free(*slot);
        *slot = NULL;
    }
}

static const char *s_type_name(ncc_config_type_t type)
{
    switch (type) {
    case NCC_CONFIG_STRING:
        return "string";
    case NCC_CONFIG_INT:
        return "integer";
    case NCC_CONFIG_BOOL:
        return "boolean";
    case NCC_CONFIG_LOGLEVEL:
        return "debug|info|warn|error";
    }
    return "?";
}

void ncc_config_print_help(const char *program, const ncc_config_entry_t *table)
{
    printf("Usage: %s [--help]\n\nSettings come from these environment variables:\n",
           program ? program : "ncc");
    for (const ncc_config_entry_t *entry = table; entry && entry->env; entry++) {
        printf("\n  %s  (%s", entry->env, s_type_name(entry->type));
        if (entry->type == NCC_CONFIG_INT && !(entry->min == 0 && entry->max == 0))
            printf(", %ld..%ld", entry->min, entry->max);
        if (entry->default_value)
            printf(", default \"%s\"", entry->default_value);
        else
            printf(", no default");
        if (entry->reloadable)
            printf(", reloadable with SIGHUP");
        if (entry->secret)
            printf(", secret");
        printf(")\n");
        if (entry->help)
            printf("      %s\n", entry->help);
    }
    fflush(stdout);
}

/* Appends `text` to the stream, in double quotes when it is empty or holds
 * spaces, quotes, backslashes or control characters. */
static void s_describe_value(FILE *out, const char *text)
{
    bool plain = text[0] != '\0';
    for (const char *p = text; *p && plain; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= ' ' || c == '"' || c == '\\' || c == 0x7f)
            plain = false;
    }
    if (plain) {
        fputs(text, out);
        return;
    }
    fputc('"', out);
    for (const char *p = text; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < ' ' || c == 0x7f)
            fprintf(out, "\\x%02x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

char *ncc_config_describe(const ncc_config_entry_t *table, const void *target)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out)
        return NULL;
    for (const ncc_config_entry_t *entry = table; entry && entry->env; entry++) {
        const char *field = (const char *)target + entry->offset;
        if (entry != table)
            fputc(' ', out);
        fprintf(out, "%s=", entry->env);
        switch (entry->type) {
        case NCC_CONFIG_STRING: {
            const char *value = *(char *const *)field;
            if (entry->secret && value && value[0])
                fputs("***", out);
            else
                s_describe_value(out, value ? value : "");
            break;
        }
        case NCC_CONFIG_INT:
            if (entry->secret)
                fputs("***", out);
            else
                fprintf(out, "%d", *(const int *)field);
            break;
        case NCC_CONFIG_BOOL:
            fputs(*(const bool *)field ? "true" : "false", out);
            break;
        case NCC_CONFIG_LOGLEVEL: {
            static const char *const names[] = {"debug", "info", "warn", "error"};
            ncc_log_level_t level = *(const ncc_log_level_t *)field;
            fputs((int)level >= 0 && (int)level <= NCC_LOG_ERROR ? names[level] : "?", out);
            break;
        }
        }
    }
    if (fclose(out) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

/* NCC_CONFIG_FILE names an optional file of NCC_NAME=value lines (as
 * systemd's EnvironmentFile), read at start and again on SIGHUP: a process's
 * environment cannot be changed from outside, so this is what makes a reload
 * useful. Values from the file win over the inherited environment. */
int ncc_config_load_file(char *err, size_t errlen)
{
    const char *path = getenv("NCC_CONFIG_FILE");
    if (!path || !*path)
        return 0;
    FILE *file = fopen(path, "r");
    if (!file) {
        int rc = -errno;
        snprintf(err, errlen, "NCC_CONFIG_FILE %s: %s", path, strerror(errno));
        return rc;
    }
    char line[4096];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, file)) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        char *key = line;
        while (*key == ' ' || *key == '\t')
            key++;
        if (*key == '\0' || *key == '#')
            continue;
        char *eq = strchr(key, '=');
        if (!eq || eq == key || strncmp(key, "NCC_", 4) != 0) {
            snprintf(err, errlen, "%s:%d: expected NCC_NAME=value", path, lineno);
            rc = -EINVAL;
            break;
        }
        *eq = '\0';
        if (setenv(key, eq + 1, 1) < 0) {
            rc = -errno;
            break;
        }
    }
    fclose(file);
    return rc;
}
