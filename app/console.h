/* The program's console: errors the jobs report to the person running them, on stderr. */
#ifndef PST_APP_CONSOLE_H
#define PST_APP_CONSOLE_H

/* Prints "pstrain: error: MESSAGE" and a newline on stderr. */
void pst_app_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
