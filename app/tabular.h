/* Typed CSV data in jobs: the data.* keys as reader and encoder options, encoders fitted on a
 * training part and applied to every part, and the checks a training file must pass. */
#ifndef PST_APP_TABULAR_H
#define PST_APP_TABULAR_H

#include "common/config.h"
#include "common/data/encoder.h"
#include "common/data/table.h"

/* Column selection and types from data.categorical, data.as_numeric, data.features,
 * data.drop_columns, data.dates and data.id_column (views of cfg's strings). */
void pst_tabular_table_opts(const pst_config_t *cfg, pst_table_opts_t *o);

/* Encoding from data.max_categories, data.high_cardinality, data.hash_slots, data.outliers,
 * data.outlier_threshold and data.hash_seed. */
void pst_tabular_encoder_opts(const pst_config_t *cfg, pst_encoder_opts_t *o);

/* A training file must have two rows or more, and a classification target two classes or
 * more; errors name the file and the target. */
int pst_tabular_check_training(const pst_dataset_t *d, const char *path, pst_err_t *err);

/* When parts[0] has typed columns: fits an encoder on rows[0..n_rows) of parts[0] (NULL: all
 * of them) and replaces each of parts[0..n_parts) by its encoding; *enc is the encoder (caller
 * owns), or NULL when parts[0] is plain features (nothing changes). */
int pst_tabular_encode(const pst_config_t *cfg, pst_dataset_t **parts, int n_parts,
                       const size_t *rows, size_t n_rows, pst_encoder_t **enc, pst_err_t *err);

#endif
