/* Criteo-style TSV: format detection and the hash layout from configuration. */
#include "app/sparse/sparse_tsv.h"

#include <string.h>

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

bool pst_click_is_tsv(const pst_config_t *cfg, const char *path)
{
    if (strcmp(cfg->data.format, "criteo") == 0)
        return true;
    return strcmp(cfg->data.format, "auto") == 0 &&
           (ends_with(path, ".tsv") || ends_with(path, ".tsv.gz"));
}

int pst_click_hash_spec(const pst_config_t *cfg, bool field_keys, pst_hash_spec_t *out,
                        pst_err_t *err)
{
    const char *mode = cfg->data.numeric;
    *out = (pst_hash_spec_t){.n_numeric = (size_t)cfg->data.numeric_columns,
                             .n_categorical = (size_t)cfg->data.categorical_columns,
                             .bits = (int)cfg->data.hash_bits,
                             .seed = (uint64_t)cfg->data.hash_seed,
                             .numeric = strcmp(mode, "bucket") == 0  ? PST_NUMERIC_BUCKET
                                        : strcmp(mode, "value") == 0 ? PST_NUMERIC_VALUE
                                                                     : PST_NUMERIC_LOG,
                             .field_keys = field_keys};
    int rc = pst_hash_spec_check(out, err);
    return rc != PST_OK ? pst_err_prefix(err, rc,
                                         "data.numeric_columns, categorical_columns, "
                                         "hash_bits: ")
                        : PST_OK;
}
