/* log: one JSON object per line on stdout, with the service name and the trace
 * id of the request being handled (thread-local). The level is tested before
 * anything is formatted. */
#ifndef NCC_LOG_H
#define NCC_LOG_H

#include <stdbool.h>

typedef enum {
    NCC_LOG_DEBUG = 0,
    NCC_LOG_INFO = 1,
    NCC_LOG_WARN = 2,
    NCC_LOG_ERROR = 3,
} ncc_log_level_t;

/* Sets the service name (copied) and minimum level. Safe to call again (SIGHUP). */
void ncc_log_init(const char *service, ncc_log_level_t level);

/* Parses "debug|info|warn|error"; returns -EINVAL for anything else. */
int ncc_log_level_parse(const char *text, ncc_log_level_t *ret_level);

/* The trace id attached to this thread's log lines until changed (copied; NULL clears). */
void ncc_log_set_trace(const char *trace_id);
const char *ncc_log_trace(void);

bool ncc_log_enabled(ncc_log_level_t level);

/* Writes {"ts","level","service","trace_id","event","msg"}; `event` is a short
 * machine-readable name ("db.connect_failed"), msg a printf-style text. */
void ncc_log_write(ncc_log_level_t level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define ncc_log(level, event, ...)                                                                 \
    do {                                                                                           \
        if (ncc_log_enabled(level))                                                                \
            ncc_log_write(level, event, __VA_ARGS__);                                              \
    } while (0)
#define ncc_debug(event, ...) ncc_log(NCC_LOG_DEBUG, event, __VA_ARGS__)
#define ncc_info(event, ...)  ncc_log(NCC_LOG_INFO, event, __VA_ARGS__)
#define ncc_warn(event, ...)  ncc_log(NCC_LOG_WARN, event, __VA_ARGS__)
#define ncc_error(event, ...) ncc_log(NCC_LOG_ERROR, event, __VA_ARGS__)

#endif
