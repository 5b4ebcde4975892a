/* The model file: a protobuf pst.Model (magic, version, layer stack, preprocessing, class values,
 * parameters) written atomically, and read back with every field checked. */
#ifndef PST_MODELFILE_H
#define PST_MODELFILE_H

#include <stddef.h>

#include "common/dataset.h"
#include "common/err.h"
#include "worker/loss.h"
#include "worker/model.h"

#define PST_MODELFILE_MAGIC 0x50535431u /* "PST1" */
#define PST_MODELFILE_VERSION 1u

/* Everything needed to turn raw rows into predictions. Arrays are owned by the struct. */
typedef struct pst_modelfile {
    int n_inputs;
    int n_layers;
    pst_layer_spec_t *layers; // (n_layers)
    pst_loss_kind_t loss;
    pst_task_t task;
    int n_classes;
    double *class_values;        // (n_classes) or NULL
    float *shift, *scale, *fill; // (n_inputs) preprocessing, or NULL for none
    float pixel_scale;           // 0: none
    float *params;               // (n_params)
    size_t n_params;
    char *config_yaml;    // resolved training configuration, or NULL
    char *target_name;    // or NULL
    char **feature_names; // (n_inputs) or NULL
} pst_modelfile_t;

void pst_modelfile_fini(pst_modelfile_t *mf);

/* Writes mf to path via a temporary file, fsync and rename: a crash never leaves half a file. */
int pst_modelfile_save(const pst_modelfile_t *mf, const char *path, pst_err_t *err);
/* Reads and validates a model file; mf is filled and owned by the caller (pst_modelfile_fini). */
int pst_modelfile_load(pst_modelfile_t *mf, const char *path, pst_err_t *err);

/* Builds the model described by mf with its parameters, for batches of up to max_batch rows. */
pst_model_t *pst_modelfile_build(const pst_modelfile_t *mf, int max_batch, pst_err_t *err);

/* Applies mf's preprocessing to a dense dataset in place and checks every value is finite. */
int pst_modelfile_preprocess(const pst_modelfile_t *mf, pst_dataset_t *ds, pst_err_t *err);

#endif
