/* config: settings from environment variables, described by one declarative
 * table (name, variable, type, default, field, help) per program, in the
 * manner of Redis's config.c. docs/configuration.md lists every variable. */
#ifndef NCC_CONFIG_H
#define NCC_CONFIG_H

#include <stddef.h>
#include <stdbool.h>

typedef enum {
    NCC_CONFIG_STRING,   /* char * field, owned by the struct (freed by ncc_config_free) */
    NCC_CONFIG_INT,      /* int field; min/max checked */
    NCC_CONFIG_BOOL,     /* bool field; 1/0/true/false/yes/no/on/off */
    NCC_CONFIG_LOGLEVEL, /* ncc_log_level_t field */
} ncc_config_type_t;

typedef struct {
    const char *env;           /* environment variable, e.g. "NCC_HISTORY_RPC_BIND" */
    ncc_config_type_t type;    /* how to parse it */
    const char *default_value; /* text form of the default; NULL = unset / empty */
    size_t offset;             /* offsetof(struct, field) */
    long min, max;             /* NCC_CONFIG_INT bounds */
    bool reloadable;           /* true when SIGHUP may change it without a restart */
    bool secret;               /* never logged */
    const char *help;          /* one line for docs and --help */
} ncc_config_entry_t;

/* Fills `target` from the environment, each entry from its variable or its
 * default (a variable set to the empty string counts as unset). On a bad value
 * writes a message naming the variable into `err` (errlen bytes; the value of
 * a secret entry is never quoted), leaves `target` untouched, and returns
 * -EINVAL; -ENOMEM when a copy cannot be made. `target` must be zeroed or hold
 * a previous load: string fields it holds are freed when replaced.
 * Entries end with one whose env is NULL. NCC_CONFIG_INT with min == max == 0
 * means no bounds beyond those of int. */
int ncc_config_load(const ncc_config_entry_t *table, void *target, char *err, size_t errlen);

/* Reload: as load, but only entries marked reloadable change; a bad value
 * leaves the running configuration as it was. */
int ncc_config_reload(const ncc_config_entry_t *table, void *target, char *err, size_t errlen);

/* Frees the string fields that load allocated. */
void ncc_config_free(const ncc_config_entry_t *table, void *target);

/* Prints the table (variable, default, help) to stdout: `ncc-x --help`. */
void ncc_config_print_help(const char *program, const ncc_config_entry_t *table);

/* The effective settings as one line of text, `VAR=value VAR2="a b"`, for the
 * start-up log; secret entries show as *** (or "" when unset). Caller frees.
 * NULL on allocation failure. */
char *ncc_config_describe(const ncc_config_entry_t *table, const void *target);

/* NCC_CONFIG_FILE, when set, names a file of NCC_NAME=value lines (blank
 * lines and # comments allowed), as systemd's EnvironmentFile: read at start
 * and again on SIGHUP, its values set into the environment (winning over the
 * inherited ones) before ncc_config_load / ncc_config_reload. The process
 * environment cannot be changed from outside, so this is what makes a reload
 * useful. 0 (also when unset), or a negative errno with a message naming the
 * file and line in err. */
int ncc_config_load_file(char *err, size_t errlen);

#endif
