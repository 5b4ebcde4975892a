/* From configuration to ready-to-train data: load, split, drop duplicates, fit preprocessing on
 * the training part and apply it everywhere. */
#ifndef PST_APP_PIPELINE_H
#define PST_APP_PIPELINE_H

#include "common/config.h"
#include "common/data/dataset.h"
#include "common/data/encoder.h"
#include "common/data/preprocess.h"

typedef struct pst_pipeline {
    pst_dataset_t *train, *val, *test; /* dense, preprocessed; val/test may be empty, never NULL */
    pst_preproc_t *preproc;
    pst_encoder_t *encoder; /* CSV: fitted on the training part, applied to all; NULL otherwise */
    const char *format;     /* reader used for data.train */
    size_t n_duplicates;    /* rows dropped from train */
    /* Training distributions of the raw inputs and labels (train.drift_profile), or NULL. */
    struct pst_drift_profile *drift;
} pst_pipeline_t;

/* Fills p (release with pst_pipeline_fini). Errors name the file, line or key. */
int pst_pipeline_load(pst_pipeline_t *p, const pst_config_t *cfg, pst_err_t *err);
void pst_pipeline_fini(pst_pipeline_t *p);

/* Spec for loading a labelled file the way data.* describes (used by eval and predict too).
 * class_values/n_class_values map labels to the training classes (NULL: from the file: then
 * path is a training file, checked by pst_tabular_check_training). */
int pst_pipeline_load_file(const pst_config_t *cfg, const char *path, const char *labels_path,
                           const double *class_values, int n_class_values, pst_dataset_t **out,
                           pst_err_t *err);

/* The same for a test file of the training data `like`: its classes (numbers or text names)
 * and its columns' types. */
int pst_pipeline_load_like(const pst_config_t *cfg, const char *path, const char *labels_path,
                           const pst_dataset_t *like, pst_dataset_t **out, pst_err_t *err);

/* The same for a file scored or trained on by a saved model (eval, predict, federated sites):
 * a CSV model's file is read by the names and types of its input columns, as raw columns its
 * encoder then encodes, with its classes (numbers or text names). Without need_target a CSV
 * file may lack the target column (rows to predict). */
struct pst_modelfile;
int pst_pipeline_load_for(const pst_config_t *cfg, const char *path, const char *labels_path,
                          const struct pst_modelfile *mf, bool need_target, pst_dataset_t **out,
                          pst_err_t *err);

#endif
