/* Error codes to text, and formatting into the caller's message buffer. */
#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *pst_strerror(int rc)
{
    switch (rc) {
    case PST_OK:
        return "success";
    case PST_ENOMEM:
        return "out of memory";
    case PST_EINVAL:
        return "invalid argument";
    case PST_EIO:
        return "input/output error";
    case PST_EFORMAT:
        return "malformed input";
    case PST_EPROTO:
        return "protocol error";
    case PST_ERANGE:
        return "out of range";
    case PST_ENOTFOUND:
        return "not found";
    case PST_ETIMEOUT:
        return "timed out";
    case PST_ESTATE:
        return "invalid state";
    case PST_ENUMERIC:
        return "non-finite number";
    default:
        return "unknown error";
    }
}

int pst_err_set(pst_err_t *err, int code, const char *fmt, ...)
{
    if (err == NULL)
        return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

int pst_err_prefix(pst_err_t *err, int code, const char *fmt, ...)
{
    if (err == NULL)
        return code;
    err->code = code;
    char prefix[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    size_t plen = strlen(prefix), olen = strlen(err->msg);
    if (plen >= sizeof err->msg)
        plen = sizeof err->msg - 1;
    if (plen + olen >= sizeof err->msg)
        olen = sizeof err->msg - 1 - plen;
    memmove(err->msg + plen, err->msg, olen);
    memcpy(err->msg, prefix, plen);
    err->msg[plen + olen] = '\0';
    return code;
}

int pst_err_code(const pst_err_t *err, int fallback)
{
    return err == NULL ? fallback : err->code;
}

void pst_err_clear(pst_err_t *err)
{
    if (err == NULL)
        return;
    err->code = PST_OK;
    err->msg[0] = '\0';
}
