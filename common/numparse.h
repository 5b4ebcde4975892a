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

/* The plain decimal at the start of s[0..len) ([sign] digits [. digits] [e|E [sign] digits],
 * at least one digit) when it converts exactly without strtod: at most 19 digits whose value
 * m * 10^e has m <= 2^53, |e| <= 22 and a magnitude within float range. m and 10^|e| are then
 * exact doubles, so one multiply or divide rounds once, to the value strtod returns (Clinger's
 * fast path). Returns the bytes taken with *out set, or 0 when the text is not such a number
 * (strtod must decide). When the byte after those taken is a blank or a delimiter (or there is
 * none), strtod takes the same bytes and returns the same value; otherwise ("0x1", "1e")
 * strtod must decide. Inline: the readers call it for every cell. */
static inline size_t pst_scan_decimal(const char *s, size_t len, double *out)
{
    size_t i = (len > 0 && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
    uint64_t m = 0;
    size_t first = i;
    while (i < len && (unsigned)(s[i] - '0') < 10)
        m = m * 10 + (uint64_t)(s[i++] - '0');
    size_t n_digits = i - first;
    int exp10 = 0;
    if (i < len && s[i] == '.') {
        size_t frac = ++i;
        while (i < len && (unsigned)(s[i] - '0') < 10)
            m = m * 10 + (uint64_t)(s[i++] - '0');
        exp10 = -(int)(i - frac);
        n_digits += i - frac;
    }
    if (n_digits == 0 || n_digits > 19 || m > ((uint64_t)1 << 53))
        return 0;
    if (i + 1 < len && (s[i] == 'e' || s[i] == 'E')) {
        size_t k = i + 1;
        int exp_neg = s[k] == '-', e = 0;
        k += (s[k] == '-' || s[k] == '+');
        size_t exp_first = k;
        while (k < len && (unsigned)(s[k] - '0') < 10 && k - exp_first < 4)
            e = e * 10 + (s[k++] - '0');
        if (k < len && (unsigned)(s[k] - '0') < 10)
            return 0; /* a longer exponent: strtod's call */
        if (k > exp_first) {
            i = k;
            exp10 += exp_neg ? -e : e;
        }
    }
    if (exp10 < -22 || exp10 > 22)
        return 0;
    double v =
        exp10 >= 0 ? (double)m * pst_pow10_exact[exp10] : (double)m / pst_pow10_exact[-exp10];
    if (v > 3.40282346638528859811704183484516925e+38) /* FLT_MAX: strtod's call, then refused */
        return 0;
    *out = s[0] == '-' ? -v : v;
    return i;
}

/* A data field s[0..len): a number filling it exactly and within float range. s[len] must not
 * continue a number (a delimiter, blank, newline or NUL follows every field). A leading space
 * or tab is refused. Plain decimals take pst_scan_decimal's exact path; anything else (longer,
 * hex, inf, a malformed field) goes through strtod, with the same results.
 * PST_OK with *out set; PST_EFORMAT when the field is not one number; PST_ENUMERIC when it is
 * inf, nan or beyond float range. Inline: the readers call it for every cell of a file. */
static inline int pst_parse_float_field(const char *s, size_t len, double *out)
{
    double v;
    if (len > 0 && pst_scan_decimal(s, len, &v) == len) {
        *out = v;
        return PST_OK;
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
