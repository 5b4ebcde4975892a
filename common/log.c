/* Leveled logging to stderr. The level and tag are process-wide settings made once at start-up. */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static pst_log_level_t log_level = PST_LOG_INFO;
static char log_tag[64];

void pst_log_set_level(pst_log_level_t level)
{
    log_level = level;
}

void pst_log_set_tag(const char *tag)
{
    snprintf(log_tag, sizeof log_tag, "%s", tag ? tag : "");
}

void pst_log(pst_log_level_t level, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warning", "error"};
    if (level < log_level || level >= PST_LOG_QUIET)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (log_tag[0])
        fprintf(stderr, "pstrain[%s] %s: %s\n", log_tag, names[level], line);
    else
        fprintf(stderr, "pstrain %s: %s\n", names[level], line);
}
