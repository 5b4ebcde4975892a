/* CSV tokenizer (RFC 4180): records of unquoted fields from a file or a buffer, streamed. */
#ifndef PST_COMMON_DATA_CSVTOK_H
#define PST_COMMON_DATA_CSVTOK_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

/* Longest record accepted (bytes of field text): a file without line ends is an error, not an
 * unbounded allocation. */
#define PST_CSVTOK_MAX_RECORD (64u << 20)

/* One record. The arrays and texts belong to the tokenizer and stay valid until the next call. */
typedef struct pst_csv_record {
    size_t n_fields;
    char **fields; // (n_fields) NUL-terminated text: quotes removed, "" read as ", blanks around
                   // an unquoted field trimmed; a quoted field keeps its text exactly
    size_t *lens;  // (n_fields)
    bool *quoted;  // (n_fields) the field was written in quotes
    size_t line;   // 1-based line on which the record starts
} pst_csv_record_t;

typedef struct pst_csvtok pst_csvtok_t;

/* Opens path (plain or gzip) for reading record by record. NULL with err set on failure.
 * Caller owns the result. */
pst_csvtok_t *pst_csvtok_open(const char *path, pst_err_t *err);
/* Reads records from buf[0..len) (not copied: it must outlive the tokenizer); name stands for
 * the file in messages. Caller owns the result. */
pst_csvtok_t *pst_csvtok_new_mem(const char *buf, size_t len, const char *name);
void pst_csvtok_destroy(pst_csvtok_t **self_p);

/* The next record: 1 with *rec set, 0 at the end of input, or a negative code with err naming
 * FILE:LINE (an unterminated quote, text after a closing quote, a record over
 * PST_CSVTOK_MAX_RECORD, a read failure). A UTF-8 byte-order mark at the start is skipped;
 * lines end with LF or CRLF; a quoted field may hold commas, line ends and doubled quotes; blank
 * lines are skipped. */
int pst_csvtok_next(pst_csvtok_t *t, const pst_csv_record_t **rec, pst_err_t *err);

/* The name of the input (its path), as messages use it. */
const char *pst_csvtok_name(const pst_csvtok_t *t);

#endif
