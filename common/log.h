/* Leveled logging to stderr, the only output common/ produces. */
#ifndef PST_LOG_H
#define PST_LOG_H

typedef enum {
    PST_LOG_DEBUG,
    PST_LOG_INFO,
    PST_LOG_WARN,
    PST_LOG_ERROR,
    PST_LOG_QUIET
} pst_log_level_t;

void pst_log_set_level(pst_log_level_t level);
/* A short tag printed before every line, e.g. "rank 2 worker". */
void pst_log_set_tag(const char *tag);
void pst_log(pst_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define pst_debug(...) pst_log(PST_LOG_DEBUG, __VA_ARGS__)
#define pst_info(...) pst_log(PST_LOG_INFO, __VA_ARGS__)
#define pst_warn(...) pst_log(PST_LOG_WARN, __VA_ARGS__)
#define pst_error(...) pst_log(PST_LOG_ERROR, __VA_ARGS__)

#endif
