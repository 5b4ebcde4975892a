/* Number parsing shared by the config, the sweep files and every text data reader. */
#include "common/numparse.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "common/err.h"

int pst_parse_double(const char *text, unsigned flags, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    bool range_error = errno == ERANGE, converted = end != text;
    if (flags & PST_NUM_TRAILING_SPACE)
        while (*end && isspace((unsigned char)*end))
            end++;
    if (!converted || *end != '\0') /* a blank text converts nothing: no number */
        return PST_EINVAL;
    if ((flags & PST_NUM_FINITE) && (range_error || !isfinite(v)))
        return PST_EINVAL;
    *out = v;
    return PST_OK;
}

int pst_parse_long(const char *text, long min, long max, long *out)
{
    double v;
    if (pst_parse_double(text, PST_NUM_FINITE | PST_NUM_TRAILING_SPACE, &v) != PST_OK)
        return PST_EINVAL;
    if (v != floor(v))
        return PST_EFORMAT;
    if (v < (double)min || v > (double)max)
        return PST_ERANGE;
    *out = (long)v;
    return PST_OK;
}

int pst_parse_decimal(const char *text, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (text[0] == '\0' || *end != '\0' || errno != 0)
        return PST_EINVAL;
    *out = v;
    return PST_OK;
}

int pst_parse_u64(const char *text, uint64_t *out)
{
    if (text[0] < '0' || text[0] > '9')
        return PST_EINVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (*end != '\0' || errno != 0 || v > UINT64_MAX)
        return PST_EINVAL;
    *out = (uint64_t)v;
    return PST_OK;
}

const double pst_pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                    1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                    1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

int pst_parse_float_field_general(const char *s, size_t len, double *out)
{
    if (len == 0 || s[0] == ' ' || s[0] == '\t')
        return PST_EFORMAT;
    char *stop;
    double v = strtod(s, &stop);
    if (stop != s + len)
        return PST_EFORMAT;
    if (!isfinite(v) || fabs(v) > FLT_MAX)
        return PST_ENUMERIC;
    *out = v;
    return PST_OK;
}
