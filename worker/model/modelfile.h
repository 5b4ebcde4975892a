/* The model file: a protobuf pst.Model (magic, version, layer stack, preprocessing, class values,
 * parameters) written atomically, and read back with every field checked. */
#ifndef PST_WORKER_MODEL_MODELFILE_H
#define PST_WORKER_MODEL_MODELFILE_H

#include <stddef.h>
#include <stdint.h>

#include "common/data/dataset.h"
#include "common/data/encoder.h"
#include "common/err.h"
#include "worker/model/loss.h"
#include "worker/model/model.h"
#include "worker/model/quant.h"

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
    float *state; // (n_state) batchnorm running statistics, or NULL
    size_t n_state;
    char *config_yaml;    // resolved training configuration, or NULL
    char *target_name;    // or NULL
    char **feature_names; // (n_inputs) or NULL
    size_t *columns;      // (n_columns) preprocessed columns the model takes, or NULL: all inputs
    int n_columns;
    /* CSV models: the named input columns and how they become the n_inputs features (applied
     * before shift/scale/fill), or NULL (older files, IDX and LIBSVM data). */
    pst_encoder_t *encoder;
    char **class_names; // (n_classes) text class labels, or NULL: class_values are the labels
    /* Training distributions of the inputs (the encoder's named columns, else the n_inputs
     * features), predictions and labels, for drift checks; NULL in older files. */
    struct pst_drift_profile *drift;
    /* An int8 model: its quantised layers, or NULL. params then holds the dequantised weights,
     * and the file stores the int8 weights instead of the floats. */
    pst_quant_t *quant;
} pst_modelfile_t;

/* Inputs of the layer stack: n_columns when the model takes a feature subset, else n_inputs. */
static inline int pst_modelfile_width(const pst_modelfile_t *mf)
{
    return mf->n_columns > 0 ? mf->n_columns : mf->n_inputs;
}

void pst_modelfile_fini(pst_modelfile_t *mf);

/* Writes mf to path via a temporary file, fsync and rename: a crash never leaves half a file. */
int pst_modelfile_save(const pst_modelfile_t *mf, const char *path, pst_err_t *err);
/* Reads and validates a model file; mf is filled and owned by the caller (pst_modelfile_fini). */
int pst_modelfile_load(pst_modelfile_t *mf, const char *path, pst_err_t *err);

/* The serialised pst.Model message of mf in *buf (caller frees), as a file holds it. */
int pst_modelfile_pack(const pst_modelfile_t *mf, uint8_t **buf, size_t *len, pst_err_t *err);
/* Decodes and validates a serialised pst.Model (origin names it in errors), as _load does. */
int pst_modelfile_unpack(pst_modelfile_t *mf, const uint8_t *buf, size_t len, const char *origin,
                         pst_err_t *err);

/* Builds the model described by mf with its parameters, for batches of up to max_batch rows; a
 * quantised mf gives a model whose inference forwards run in int8. */
pst_model_t *pst_modelfile_build(const pst_modelfile_t *mf, int max_batch, pst_err_t *err);

/* Starts model from mf's weights (fine-tuning): the layer kinds must match one for one; every
 * tensor and running statistic is copied when all sizes agree, and all but the output layer's
 * weights and bias (left as they are) when only those differ, e.g. another class count.
 * *kept_output says which. Errors name the first layer that does not fit. */
int pst_modelfile_transfer(const pst_modelfile_t *mf, pst_model_t *model, bool *kept_output,
                           pst_err_t *err);

/* Applies mf's preprocessing to a dense dataset in place and checks every value is finite; a
 * model with columns then keeps only those columns (ds becomes n_columns wide). A raw dataset
 * (ds->table set) is first encoded with mf->encoder (columns matched by name). */
int pst_modelfile_preprocess(const pst_modelfile_t *mf, pst_dataset_t *ds, pst_err_t *err);

#endif
