/* Typed CSV cells: one parser per type, shared by the table reader and the encoder. */
#include "common/data/cells.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/numparse.h"

const char *const pst_date_part_names[PST_DATE_PARTS] = {"_year", "_month", "_dow", "_doy"};

const char *pst_col_type_name(pst_col_type_t type)
{
    static const char *names[] = {"numeric", "categorical", "boolean", "date"};
    return (unsigned)type < 4 ? names[type] : "unknown";
}

/* Typed cells ignore blanks around the value (a quoted " 1.5 " is the number 1.5). */
static void trim(const char **s, size_t *len)
{
    while (*len > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
        (*len)--;
}

static bool word_is(const char *s, size_t len, const char *word)
{
    return len == strlen(word) && strncasecmp(s, word, len) == 0;
}

bool pst_cell_is_missing(const char *s, size_t len)
{
    trim(&s, &len);
    return len == 0 || word_is(s, len, "na") || word_is(s, len, "nan") || word_is(s, len, "n/a") ||
           word_is(s, len, "?");
}

bool pst_cell_number(const char *s, size_t len, double *value, bool *finite_float)
{
    trim(&s, &len);
    double v;
    int rc = pst_parse_float_field(s, len, &v);
    if (rc == PST_OK) {
        *value = v;
        *finite_float = true;
        return true;
    }
    if (rc == PST_EFORMAT || len == 0 || len > 400)
        return false;
    /* A number, but infinite or beyond float range: still a number for type detection. */
    char text[401];
    memcpy(text, s, len);
    text[len] = '\0';
    char *end;
    v = strtod(text, &end);
    if (end == text || *end != '\0')
        return false;
    *value = v;
    *finite_float = false;
    return true;
}

bool pst_cell_boolean(const char *s, size_t len, double *value)
{
    static const char *yes[] = {"true", "yes", "t", "y"}, *no[] = {"false", "no", "f", "n"};
    trim(&s, &len);
    for (int i = 0; i < 4; i++) {
        if (word_is(s, len, yes[i]) || word_is(s, len, no[i])) {
            *value = word_is(s, len, yes[i]) ? 1.0 : 0.0;
            return true;
        }
    }
    return false;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (Howard Hinnant's
 * days_from_civil). */
static long days_from_civil(long y, unsigned m, unsigned d)
{
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long)doe - 719468;
}

static bool leap(long y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned month_days(long y, unsigned m)
{
    static const unsigned days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap(y) ? 29 : days[m - 1];
}

/* n digits at s as a number, or -1. */
static long digits(const char *s, size_t n)
{
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* A time after the date: "HH:MM", "HH:MM:SS" and anything after (fractions, a zone). */
static bool time_ok(const char *s, size_t len)
{
    if (len < 5 || s[2] != ':')
        return false;
    long h = digits(s, 2), m = digits(s + 3, 2);
    return h >= 0 && h <= 24 && m >= 0 && m <= 59;
}

bool pst_cell_date(const char *s, size_t len, long *days)
{
    trim(&s, &len);
    if (len < 10 || (s[4] != '-' && s[4] != '/') || s[7] != s[4])
        return false;
    long y = digits(s, 4), m = digits(s + 5, 2), d = digits(s + 8, 2);
    if (y < 0 || m < 1 || m > 12 || d < 1 || d > (long)month_days(y, (unsigned)m))
        return false;
    if (len > 10 && !((s[10] == 'T' || s[10] == ' ') && time_ok(s + 11, len - 11)))
        return false;
    *days = days_from_civil(y, (unsigned)m, (unsigned)d);
    return true;
}

/* y-m-d of a day count (Howard Hinnant's civil_from_days). */
static void civil_from_days(long z, long *y, unsigned *m, unsigned *d)
{
    z += 719468;
    long era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (long)yoe + era * 400 + (*m <= 2);
}

/* Beyond about 270,000 years either way a day count is no date: it is expanded as a missing one
 * (converting it to long could overflow, which is undefined). */
#define PST_DATE_MAX_DAYS 1e8

void pst_date_expand(double days, float out[PST_DATE_PARTS])
{
    if (!(fabs(days) <= PST_DATE_MAX_DAYS)) {
        for (int i = 0; i < PST_DATE_PARTS; i++)
            out[i] = NAN;
        return;
    }
    long z = (long)days, y;
    unsigned m, d;
    civil_from_days(z, &y, &m, &d);
    long dow = ((z % 7) + 7 + 3) % 7; /* 1970-01-01 was a Thursday (3 when Monday is 0) */
    out[0] = (float)y;
    out[1] = (float)m;
    out[2] = (float)dow;
    out[3] = (float)(z - days_from_civil(y, 1, 1) + 1);
}
