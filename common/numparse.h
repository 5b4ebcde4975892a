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

/* A data field s[0..len): a number filling it exactly and within float range. s[len] must not
 * continue a number (a delimiter, blank, newline or NUL follows every field). A leading space
 * or tab is refused; plain integers of up to 15 digits with an optional sign skip strtod.
 * PST_OK with *out set; PST_EFORMAT when the field is not one number; PST_ENUMERIC when it is
 * inf, nan or beyond float range. Inline: the readers call it for every cell of a file. */
static inline int pst_parse_float_field(const char *s, size_t len, double *out)
{
    size_t i = (len > 0 && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
    if (len > i && len - i <= 15) { /* at most 15 digits: exact in a double */
        double acc = 0;
        size_t k = i;
        while (k < len && s[k] >= '0' && s[k] <= '9')
            acc = acc * 10 + (s[k++] - '0');
        if (k == len) {
            *out = s[0] == '-' ? -acc : acc;
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
