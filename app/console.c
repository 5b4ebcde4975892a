/* Console errors of the jobs: one prefix, one line each, on stderr. */
#include "app/console.h"

#include <stdarg.h>
#include <stdio.h>

void pst_app_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("pstrain: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}
