/* Per-row attributions: how much each input column moved a row's output away from a baseline.
 * Every method is checked for completeness: a row's attributions sum to f(x) - f(baseline). */
#ifndef PST_APP_EXPLAIN_ATTRIBUTIONS_H
#define PST_APP_EXPLAIN_ATTRIBUTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "app/explain/explainer.h"

typedef enum {
    PST_ATTR_AUTO = 0,    /* linear for a one-layer model, ig for a deeper one, kernel_shap for
                             an ensemble */
    PST_ATTR_IG,          /* integrated gradients along the line from the baseline */
    PST_ATTR_LINEAR,      /* exact: w_i (z_i - baseline_i) */
    PST_ATTR_KERNEL_SHAP, /* model-agnostic: Shapley values over background rows */
} pst_attr_method_t;

int pst_attr_method_parse(const char *name, pst_attr_method_t *out);
const char *pst_attr_method_name(pst_attr_method_t method);

typedef struct pst_attr_opts {
    pst_attr_method_t method;
    size_t rows;            /* explain the first rows of the data (0: all) */
    int background;         /* rows drawn from the data as background (kernel_shap), and for the
                               baseline mean when baseline is NULL */
    int steps;              /* ig: points on the path, 1..PST_EXPLAIN_BATCH */
    int coalitions;         /* kernel_shap: most coalitions evaluated; all 2^M - 2 when they fit */
    const double *baseline; /* ig, linear: the baseline as the layer stack sees it (model
                               inputs), or NULL: the mean of the background rows */
    uint64_t seed;
} pst_attr_opts_t;

typedef struct pst_attributions {
    pst_attr_method_t method; /* resolved, never AUTO */
    size_t n_rows;
    int n_groups;
    double *phi;        // (n_rows, n_groups)
    double *fx, *fbase; // (n_rows) explained output at the row and at the baseline
    int *cls;           // (n_rows) class explained
    double worst_error; /* max over rows of |sum phi - (fx - fbase)| */
    bool exhaustive;    /* kernel_shap: every coalition was evaluated (exact Shapley values) */
} pst_attributions_t;

/* Resolves AUTO for ex: the method, or an error saying why a method does not apply. */
int pst_attr_resolve(const pst_explainer_t *ex, pst_attr_method_t *method, pst_err_t *err);

/* Attributions of the first opts->rows rows of ex by opts->method; fills *at (fini). */
int pst_attributions_compute(const pst_explainer_t *ex, const pst_attr_opts_t *opts,
                             pst_attributions_t *at, pst_err_t *err);
void pst_attributions_fini(pst_attributions_t *at);

/* Internal to the module's files: background rows drawn from ex's data (b, width); caller frees. */
float *pst_attr_background(const pst_explainer_t *ex, int b, uint64_t seed, pst_err_t *err);
/* Kernel SHAP of the rows into at (allocated by the caller). */
int pst_attr_kernel_shap(const pst_explainer_t *ex, const pst_attr_opts_t *opts,
                         pst_attributions_t *at, pst_err_t *err);

#endif
