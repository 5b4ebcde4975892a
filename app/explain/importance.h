/* Global permutation importance: how much a metric worsens when one input column's values are
 * shuffled across the rows, repeated with fresh shuffles. */
#ifndef PST_APP_EXPLAIN_IMPORTANCE_H
#define PST_APP_EXPLAIN_IMPORTANCE_H

#include <stdint.h>

#include "app/explain/explainer.h"

typedef enum {
    PST_IMPORTANCE_AUTO = 0, /* log_loss for classification, mse for regression */
    PST_IMPORTANCE_ACCURACY,
    PST_IMPORTANCE_LOG_LOSS,
    PST_IMPORTANCE_MSE,
} pst_importance_metric_t;

int pst_importance_metric_parse(const char *name, pst_importance_metric_t *out);
const char *pst_importance_metric_name(pst_importance_metric_t metric);

typedef struct pst_importance {
    pst_importance_metric_t metric; /* resolved, never AUTO */
    double base;                    /* the metric on the rows as they are */
    int n_groups, repeats;
    double *drops;      // (n_groups, repeats) worsening of the metric: permuted - base for a loss,
                        // base - permuted for accuracy; positive = the column matters
    double *mean, *std; // (n_groups) over the repeats (population std, as scikit-learn)
    int *order;         // (n_groups) groups by decreasing mean
} pst_importance_t;

/* Shuffles each group of ex's labelled rows `repeats` times (a group's features move together,
 * so a one-hot column stays one value), from a generator seeded with seed: the same seed gives
 * the same figures. metric AUTO picks by task; accuracy and log_loss need a classifier, mse a
 * regression. Fills *imp (pst_importance_fini). */
int pst_importance_compute(const pst_explainer_t *ex, pst_importance_metric_t metric, int repeats,
                           uint64_t seed, pst_importance_t *imp, pst_err_t *err);
void pst_importance_fini(pst_importance_t *imp);

#endif
