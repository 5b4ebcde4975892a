/* Criteo-style TSV in sparse training runs: which files read as hashed TSV, and the hashing the
 * data.* keys describe. */
#ifndef PST_APP_SPARSE_SPARSE_TSV_H
#define PST_APP_SPARSE_SPARSE_TSV_H

#include <stdbool.h>

#include "common/config.h"
#include "common/data/hashing.h"

/* data.format criteo, or data.format auto and a name ending in .tsv or .tsv.gz. */
bool pst_click_is_tsv(const pst_config_t *cfg, const char *path);

/* The hash layout of data.numeric_columns, data.categorical_columns, data.hash_bits,
 * data.hash_seed and data.numeric; field_keys gives every column its own table (wide_deep).
 * Errors name the key. */
int pst_click_hash_spec(const pst_config_t *cfg, bool field_keys, pst_hash_spec_t *out,
                        pst_err_t *err);

#endif
