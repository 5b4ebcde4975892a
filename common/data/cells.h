/* Typed CSV cells: missing markers, numbers, booleans and dates, parsed one way for training and
 * for scoring so that both see the same values. */
#ifndef PST_COMMON_DATA_CELLS_H
#define PST_COMMON_DATA_CELLS_H

#include <stdbool.h>
#include <stddef.h>

/* Column types of a table. Values are stored in model files: append only. */
typedef enum {
    PST_COL_NUMERIC = 0,
    PST_COL_CATEGORICAL = 1, /* text: each distinct value is a category */
    PST_COL_BOOLEAN = 2,     /* true/false, yes/no, t/f, y/n (any case): 1 or 0 */
    PST_COL_DATE = 3         /* YYYY-MM-DD, YYYY/MM/DD, optionally followed by a time */
} pst_col_type_t;

/* "numeric", "categorical", "boolean", "date". */
const char *pst_col_type_name(pst_col_type_t type);

/* Empty, "NA", "NaN", "N/A" (any case) or "?": a missing cell. */
bool pst_cell_is_missing(const char *s, size_t len);

/* A number as strtod reads it, filling the text; *finite_float says whether it fits a float. */
bool pst_cell_number(const char *s, size_t len, double *value, bool *finite_float);

/* A boolean word: true with *value 1 or 0. */
bool pst_cell_boolean(const char *s, size_t len, double *value);

/* A date (ISO 8601 "YYYY-MM-DD" with an optional "T" or " " and a time, or "YYYY/MM/DD"):
 * true with *days since 1970-01-01 (the time of day is ignored). Rejects impossible dates. */
bool pst_cell_date(const char *s, size_t len, long *days);

/* Features a date expands into, in this order. */
#define PST_DATE_PARTS 4
/* Year, month (1-12), day of week (0 = Monday .. 6 = Sunday) and day of year (1-366) of a
 * day count as pst_cell_date returns it; NaN days, and counts beyond 1e8 days either way, give
 * four NaNs. */
void pst_date_expand(double days, float out[PST_DATE_PARTS]);
/* Suffix of each part's feature name: "_year", "_month", "_dow", "_doy". */
extern const char *const pst_date_part_names[PST_DATE_PARTS];

#endif
