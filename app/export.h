/* Exporting a saved model to a foreign format: ONNX, for the dense models (linear, logistic and
 * softmax regression, MLPs, convolutional and recurrent networks) and their ensembles, with their
 * fitted preprocessing. */
#ifndef PST_APP_EXPORT_H
#define PST_APP_EXPORT_H

#include "common/err.h"

typedef struct pst_export_opts {
    const char *model; /* model.pst from a run directory: a model or an ensemble file */
    const char *out;   /* the .onnx file, written atomically */
} pst_export_opts_t;

/* Writes opts->model as one ONNX graph turning raw rows into predictions (the interface is
 * worker/model/onnxmodel.h's). A sparse model (sparse_lr, fm, wide_deep) is refused with
 * PST_EINVAL and a message saying why; nothing is written on failure. */
int pst_export_onnx(const pst_export_opts_t *opts, pst_err_t *err);

#endif
