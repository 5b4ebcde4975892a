/* Typed CSV data in jobs: options from the configuration, encoding of split parts, checks. */
#include "app/tabular.h"

#include <string.h>

void pst_tabular_table_opts(const pst_config_t *cfg, pst_table_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->categorical = (const char *const *)cfg->data.categorical.items;
    o->n_categorical = cfg->data.categorical.n;
    o->numeric = (const char *const *)cfg->data.as_numeric.items;
    o->n_numeric = cfg->data.as_numeric.n;
    o->features = (const char *const *)cfg->data.features.items;
    o->n_features = cfg->data.features.n;
    o->drop = (const char *const *)cfg->data.drop_columns.items;
    o->n_drop = cfg->data.drop_columns.n;
    o->drop_dates = strcmp(cfg->data.dates, "drop") == 0;
    o->id_column = cfg->data.id_column;
}

void pst_tabular_encoder_opts(const pst_config_t *cfg, pst_encoder_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->max_categories = (size_t)cfg->data.max_categories;
    const char *hc = cfg->data.high_cardinality;
    o->beyond = strcmp(hc, "hash") == 0      ? PST_ENC_HASH
                : strcmp(hc, "ordinal") == 0 ? PST_ENC_ORDINAL
                                             : PST_ENC_ONEHOT;
    o->hash_slots = (size_t)cfg->data.hash_slots;
    const char *out = cfg->data.outliers;
    o->outliers = strcmp(out, "clip_iqr") == 0      ? PST_OUTLIERS_CLIP_IQR
                  : strcmp(out, "clip_zscore") == 0 ? PST_OUTLIERS_CLIP_ZSCORE
                                                    : PST_OUTLIERS_NONE;
    o->outlier_threshold = cfg->data.outlier_threshold;
    o->hash_seed = (uint64_t)cfg->data.hash_seed;
}

int pst_tabular_check_training(const pst_dataset_t *d, const char *path, pst_err_t *err)
{
    if (d->n_rows < 2)
        return pst_err_set(err, PST_EFORMAT, "%s: %zu data row; training needs two or more", path,
                           d->n_rows);
    if (d->task != PST_TASK_CLASSIFICATION || d->n_classes >= 2)
        return PST_OK;
    char label[64] = "?";
    if (d->class_names && d->n_classes == 1)
        snprintf(label, sizeof label, "'%.60s'", d->class_names[0]);
    else if (d->class_values && d->n_classes == 1)
        snprintf(label, sizeof label, "%g", d->class_values[0]);
    return pst_err_set(err, PST_EFORMAT,
                       "%s: target '%s' has a single class (%s): classification needs two or more",
                       path, d->target_name ? d->target_name : "target", label);
}

int pst_tabular_encode(const pst_config_t *cfg, pst_dataset_t **parts, int n_parts,
                       const size_t *rows, size_t n_rows, pst_encoder_t **enc, pst_err_t *err)
{
    *enc = NULL;
    if (parts[0]->table == NULL)
        return PST_OK;
    pst_encoder_opts_t opts;
    pst_tabular_encoder_opts(cfg, &opts);
    int rc = pst_encoder_fit(parts[0], rows, rows ? n_rows : parts[0]->n_rows, &opts, enc, err);
    for (int i = 0; i < n_parts && rc == PST_OK; i++) {
        pst_dataset_t *encoded;
        if (parts[i] == NULL || parts[i]->table == NULL)
            continue;
        if ((rc = pst_encoder_apply(*enc, parts[i], &encoded, err)) == PST_OK) {
            pst_dataset_swap(parts[i], encoded);
            pst_dataset_destroy(&encoded);
        }
    }
    if (rc != PST_OK)
        pst_encoder_destroy(enc);
    return rc;
}
