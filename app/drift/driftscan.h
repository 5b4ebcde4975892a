/* Counting a data file in the bins of a model's drift profile: every profiled input (raw CSV
 * columns by name, else the features before scaling), the model's predictions and, when the
 * file has them, the labels. The file is streamed for CSV models; counts are all it keeps. */
#ifndef PST_APP_DRIFT_DRIFTSCAN_H
#define PST_APP_DRIFT_DRIFTSCAN_H

#include <stdbool.h>

#include "common/config.h"
#include "worker/model/modelfile.h"

typedef struct pst_drift_counts {
    size_t n_features;
    uint64_t **features;       // (n_features) each (the profile's n_bins)
    uint64_t *feature_missing; // (n_features) missing numeric cells
    uint64_t *prediction;      // (the prediction distribution's n_bins)
    uint64_t *label;           // (the label distribution's n_bins), counted when has_labels
    bool has_labels;
    size_t n_rows;
} pst_drift_counts_t;

void pst_drift_counts_fini(pst_drift_counts_t *c);

/* Counts the rows of data for mf (which must hold a profile). cfg is the model's configuration
 * (data.* keys for files that are not read by column name). Errors name FILE:LINE and column. */
int pst_drift_scan(const pst_modelfile_t *mf, const pst_config_t *cfg, const char *data,
                   pst_drift_counts_t *out, pst_err_t *err);

#endif
