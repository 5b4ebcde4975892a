/* Turns the model.* configuration keys into a layer stack, loss and output fusion. */
#ifndef PST_WORKER_MODEL_MODELSPEC_H
#define PST_WORKER_MODEL_MODELSPEC_H

#include <stdbool.h>

#include "common/config.h"
#include "common/data/dataset.h"
#include "worker/model/loss.h"
#include "worker/model/model.h"

#define PST_MAX_LAYERS 64

typedef struct pst_modelspec {
    pst_layer_spec_t layers[PST_MAX_LAYERS];
    int n_layers;
    pst_loss_kind_t loss;
    bool fused_output; /* cross-entropy taken at the logits of the softmax/sigmoid output */
} pst_modelspec_t;

/* Builds the stack for a task with n_classes classes (0 for regression). Errors name the key. */
int pst_modelspec_build(pst_modelspec_t *spec, const pst_config_t *cfg, pst_task_t task,
                        int n_classes, pst_err_t *err);

/* The hidden stack alone, for a model that appends its own output (wide & deep): model.layers
 * as written, or model.hidden with model.activation and model.dropout (possibly no layer). */
int pst_modelspec_hidden(pst_modelspec_t *spec, const pst_config_t *cfg, pst_err_t *err);

/* Writes layer l as a model.layers entry ("dense:128", "conv2d:32:3:1:1", "relu") into buf of
 * size n (truncated to fit); returns buf. */
const char *pst_layer_spec_format(const pst_layer_spec_t *l, char *buf, size_t n);

#endif
