/* Typed tables, the part the CSV reader shares with table.c: a column's cells as string codes. */
#ifndef PST_COMMON_DATA_TABLE_INTERNAL_H
#define PST_COMMON_DATA_TABLE_INTERNAL_H

#include "common/data/strtab.h"
#include "common/data/table.h"

/* A column as read: each row's cell as a code in cells. */
typedef struct pst_table_cells {
    const char *path;
    const pst_strtab_t *cells; /* the column's distinct cells */
    const uint32_t *codes;     // row i's code is codes[i * stride]
    size_t stride;
    const size_t *lines; // (n_rows) line of each row
    size_t n_rows;
} pst_table_cells_t;

/* The type the distinct cells suggest: numeric when every non-missing one is a number (or none
 * is left), else boolean, else date when all are of that kind, else categorical. */
pst_col_type_t pst_table_detect(const pst_strtab_t *cells);

/* Writes every row's value of column col (its name and type set) to x[i * x_stride], and for a
 * categorical column fills col->vocab. Errors name FILE:LINE, the column and the cell. */
int pst_table_fill_column(pst_table_col_t *col, const pst_table_cells_t *in, float *x,
                          size_t x_stride, pst_err_t *err);

#endif
