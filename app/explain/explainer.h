/* The explained function: a saved model (or ensemble) and the rows of a data file, with the input
 * columns grouped as a person names them, and the model's output evaluated on altered rows. */
#ifndef PST_APP_EXPLAIN_EXPLAINER_H
#define PST_APP_EXPLAIN_EXPLAINER_H

#include <stdbool.h>
#include <stddef.h>

#include "common/data/dataset.h"
#include "common/err.h"
#include "worker/model/ensemble.h"
#include "worker/model/model.h"
#include "worker/model/modelfile.h"

/* Rows live in "input space": for a single model its features before the model's own scaling
 * (a CSV model's encoded columns), for an ensemble the raw columns every member reads. A group
 * is one named input (a CSV column: all its one-hot features together; else one feature), the
 * unit that permutation importance shuffles and attributions are reported for. */
typedef struct pst_explainer {
    const pst_modelfile_t *mf;  /* single model, or NULL */
    const pst_ensemble_t *ens;  /* ensemble, or NULL */
    const pst_modelfile_t *ref; /* task and classes: mf or the first member */
    pst_model_t *model;         /* single model, built for PST_EXPLAIN_BATCH rows */
    pst_dataset_t *data;        /* (n_rows, width) dense input-space rows and their labels */
    bool labelled;
    int n_groups;
    size_t *group_offset, *group_width; // (n_groups) features [offset, offset + width)
    char **group_names;                 // (n_groups)
    int *input_group;                   // (model inputs) group of each model input; single model
    int n_classes;                      /* output columns of probabilities (1 for regression) */
} pst_explainer_t;

#define PST_EXPLAIN_BATCH 256

/* Explains mf (borrowed, must outlive ex) on data (taken: ex owns it from now on, also on
 * failure): a raw CSV table is encoded with mf's encoder. Fails naming the mismatch when data
 * does not fit the model. */
int pst_explainer_init_model(pst_explainer_t *ex, const pst_modelfile_t *mf, pst_dataset_t *data,
                             bool labelled, pst_err_t *err);
/* The same for an ensemble (borrowed): data stays raw, each member encodes it its own way. */
int pst_explainer_init_ensemble(pst_explainer_t *ex, const pst_ensemble_t *ens, pst_dataset_t *data,
                                bool labelled, pst_err_t *err);
void pst_explainer_fini(pst_explainer_t *ex);

/* Class probabilities (n, n_classes), or the value (n, 1) for regression, of input-space rows
 * x (n, width): what permutation importance scores. */
int pst_explainer_predict(const pst_explainer_t *ex, const float *x, size_t n, float *out,
                          pst_err_t *err);

/* The explained output of each row x (n, width) for class cls[i] (NULL: class 0 / the value):
 * for a single model a weighted sum of its logits (the input of its trailing sigmoid or softmax,
 * pst_explainer_logit_weights), or its value; an ensemble's probability or value. */
int pst_explainer_output(const pst_explainer_t *ex, const float *x, size_t n, const int *cls,
                         double *out, pst_err_t *err);

/* The weights c (model outputs) of the logits a single model's explained output sums for class
 * k: the log-odds of class 1 for a binary model (one sigmoid unit: c = 1; two softmax units:
 * c = (-1, 1)), logit k of a multi-class model, the value of a regression. */
void pst_explainer_logit_weights(const pst_explainer_t *ex, int k, float *c);

/* Input-space rows x (n, width) as the layer stack sees them: (n, model inputs) in *z (caller
 * frees). Single model only. */
int pst_explainer_to_model(const pst_explainer_t *ex, const float *x, size_t n, float **z,
                           pst_err_t *err);

/* The class explained for each row: for a multi-class model the predicted one, for a binary
 * model class 1, 0 for regression. cls (n rows of ex->data). */
int pst_explainer_classes(const pst_explainer_t *ex, int *cls, pst_err_t *err);

/* Name of the quantity pst_explainer_output returns ("log-odds", "logit", "probability",
 * "value"). */
const char *pst_explainer_output_name(const pst_explainer_t *ex);

#endif
