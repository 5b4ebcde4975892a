/* The prediction distributions of drift profiles: how a model's outputs are summarised when it
 * is trained, and counted in the same bins when new data is checked. */
#ifndef PST_APP_DRIFT_DRIFTFIT_H
#define PST_APP_DRIFT_DRIFTFIT_H

#include "common/drift/profile.h"
#include "worker/model/model.h"

/* What the outputs mean. A binary classifier is profiled by p(class 1) (numeric), a multiclass
 * one by its predicted class (categorical, named as pst_drift_class_text names it), a
 * regression by its predicted value (numeric). */
typedef struct pst_drift_outputs {
    pst_task_t task;
    int n_classes;
    const char *const *class_names; // (n_classes) or NULL
    const double *class_values;     // (n_classes) or NULL
} pst_drift_outputs_t;

/* Fits d on the outputs out (n, n_out) of n rows. */
int pst_driftfit_outputs(pst_drift_dist_t *d, const pst_drift_outputs_t *o, const float *out,
                         int n_out, size_t n, pst_err_t *err);

/* Adds the outputs of n rows to counts (d->n_bins), in d's bins or categories. */
void pst_driftfit_count_outputs(const pst_drift_dist_t *d, const pst_drift_outputs_t *o,
                                const float *out, int n_out, size_t n, uint64_t *counts);

/* Completes a profile at the end of training: the model's predictions on the validation rows
 * (the training rows when there are none), predicted in batches of batch rows. */
int pst_driftfit_predictions(pst_drift_profile_t *p, pst_model_t *model, const pst_dataset_t *train,
                             const pst_dataset_t *val, int batch, pst_err_t *err);

#endif
