/* Number parsing: whole-text numbers for configs and sweeps, and fast fields for data readers. */
#ifndef PST_COMMON_NUMPARSE_H
#define PST_COMMON_NUMPARSE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Policy bits of pst_parse_double. */
enum {
    PST_NUM_FINITE = 1,         /* reject inf, nan, and overflow or underflow (ERANGE) */
    PST_NUM_TRAILING_SPACE = 2, /* whitespace may follow the number */
};

/* Parses all of the NUL-terminated text as one strtod number (leading whitespace, a sign,
 * decimal or hex digits and an exponent, as strtod takes them). PST_OK with *out set, or
 * PST_EINVAL when text is empty or blank, has anything after the number (beyond whitespace when
 * PST_NUM_TRAILING_SPACE), or breaks the PST_NUM_FINITE policy. */
int pst_parse_double(const char *text, unsigned flags, double *out);

/* A whole number written as a finite real ("12", "1.2e1", " 12 "; see pst_parse_double with
 * PST_NUM_FINITE | PST_NUM_TRAILING_SPACE) within [min, max]. PST_OK with *out set; PST_EINVAL
 * when not a number, PST_EFORMAT when not whole, PST_ERANGE when outside [min, max]. */
int pst_parse_long(const char *text, long min, long max, long *out);

/* A decimal integer filling all of the text, as strtol(text, 10) takes it, that fits a long.
 * PST_OK with *out set, else PST_EINVAL. */
int pst_parse_decimal(const char *text, long *out);

/* Decimal digits filling all of the text (no sign, no blanks) that fit a uint64_t. PST_OK with
 * *out set, else PST_EINVAL. */
int pst_parse_u64(const char *text, uint64_t *out);

/* The strtod path of pst_parse_float_field (any field, with the same results); not for direct
 * use. */
int pst_parse_float_field_general(const char *s, size_t len, double *out);

/* 10^0 .. 10^22: the powers of ten a double holds exactly. */
extern const double pst_pow10_exact[23];

/* A data field s[0..len): a number filling it exactly and within float range. s[len] must not
 * continue a number (a delimiter, blank, newline or NUL follows every field). A leading space
 * or tab is refused. Plain decimals ([sign] digits [. digits] [e|E [sign] digits]) of at most
 * 19 digits whose value m * 10^e has m < 2^53 and |e| <= 22 skip strtod: m and 10^|e| are exact
 * doubles, so one multiply or divide rounds once, to the value strtod returns (Clinger's fast
 * path). Anything else (longer, hex, inf, a malformed field) goes through strtod.
 * PST_OK with *out set; PST_EFORMAT when the field is not one number; PST_ENUMERIC when it is
 * inf, nan or beyond float range. Inline: the readers call it for every cell of a file. */
static inline int pst_parse_float_field(const char *s, size_t len, double *out)
{
    size_t i = (len > 0 && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
    uint64_t m = 0;
    size_t first = i;
    while (i < len && (unsigned)(s[i] - '0') < 10)
        m = m * 10 + (uint64_t)(s[i++] - '0');
    size_t n_digits = i - first;
    int scale = 0;
    if (i < len && s[i] == '.') {
        size_t frac = ++i;
        while (i < len && (unsigned)(s[i] - '0') < 10)
            m = m * 10 + (uint64_t)(s[i++] - '0');
        scale = (int)(i - frac);
        n_digits += i - frac;
    }
    int exp10 = 0;
    if (i < len && (s[i] == 'e' || s[i] == 'E') && i + 1 < len) {
        size_t k = i + 1;
        int exp_neg = s[k] == '-';
        k += (s[k] == '-' || s[k] == '+');
        size_t exp_first = k;
        while (k < len && k - exp_first < 4 && (unsigned)(s[k] - '0') < 10)
            exp10 = exp10 * 10 + (s[k++] - '0');
        if (k > exp_first)
            i = k;
        exp10 = exp_neg ? -exp10 : exp10;
    }
    exp10 -= scale;
    if (i == len && n_digits > 0 && n_digits <= 19 && m <= ((uint64_t)1 << 53) && exp10 >= -22 &&
        exp10 <= 22) {
        double v =
            exp10 >= 0 ? (double)m * pst_pow10_exact[exp10] : (double)m / pst_pow10_exact[-exp10];
        if (v <= 3.40282346638528859811704183484516925e+38) { /* FLT_MAX */
            *out = s[0] == '-' ? -v : v;
            return PST_OK;
        }
    }
    return pst_parse_float_field_general(s, len, out);
}

/* The run of decimal digits at the start of s[0..len): returns its length and sets *out to its
 * value, saturated at UINT32_MAX + 1 so that larger values still compare as too large. Inline:
 * every LIBSVM entry's index goes through it. */
static inline size_t pst_parse_digits_u32(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
        if (v <= UINT32_MAX)
            v = v * 10 + (uint64_t)(s[i] - '0');
    *out = v > UINT32_MAX ? (uint64_t)UINT32_MAX + 1 : v;
    return i;
}

#endif
