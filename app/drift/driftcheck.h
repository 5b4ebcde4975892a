/* pstrain drift: a data file against the training distributions a model file keeps, as a table
 * of per-input PSI, Kolmogorov-Smirnov and chi-square figures sorted by severity, with the
 * drift of the model's predictions and of the labels. */
#ifndef PST_APP_DRIFT_DRIFTCHECK_H
#define PST_APP_DRIFT_DRIFTCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "app/mpi/cluster.h"
#include "common/drift/driftstat.h"
#include "worker/model/modelfile.h"

/* One distribution compared. Numeric rows have KS figures, categorical ones chi-square. */
typedef struct pst_drift_row {
    const char *name; /* borrowed from the profile */
    const char *role; /* "input", "prediction" or "label" */
    bool numeric;
    double psi;
    double ks, ks_upper, ks_p; /* numeric: KS at the training quantile edges, its bound, p */
    double chi2, chi2_p;       /* categorical */
    int df;
    uint64_t n_ref, n_cur;             /* rows counted (not missing) */
    uint64_t missing_ref, missing_cur; /* numeric: missing cells */
    pst_drift_severity_t severity;
    bool flagged; /* psi above the threshold */
} pst_drift_row_t;

typedef struct pst_drift_result {
    pst_drift_row_t *inputs; // (n_inputs) sorted by PSI, largest first
    size_t n_inputs;
    size_t n_unprofiled; /* model inputs beyond the profile's cap */
    bool has_prediction, has_label;
    pst_drift_row_t prediction, label;
    size_t n_rows;    /* rows of the data file */
    double threshold; /* PSI above which a row is flagged */
    size_t n_flagged; /* inputs flagged */
} pst_drift_result_t;

void pst_drift_result_fini(pst_drift_result_t *r);

/* Compares data with mf's profile (mf must hold one; cfg its configuration for reading data).
 * Fills r (release with pst_drift_result_fini). */
int pst_drift_compare(const pst_modelfile_t *mf, const pst_config_t *cfg, const char *data,
                      double threshold, pst_drift_result_t *r, pst_err_t *err);

/* Prints one line saying what training distributions mf keeps ("none" without a profile), for
 * pstrain info; indent prefixes it. */
void pst_drift_describe(const pst_modelfile_t *mf, const char *indent);

/* The error for a model file without a profile, naming path. */
int pst_drift_no_profile(const char *path, pst_err_t *err);

typedef struct pst_drift_opts {
    const char *model, *data;
    const char *sets[PST_MAX_SETS]; /* data.* overrides for reading data */
    int n_sets;
    const char *json; /* also write the result as JSON here, or NULL */
    double threshold; /* flag inputs whose PSI is above this */
    int fail_on;      /* a pst_drift_severity_t: exit 3 when any row reaches it; -1: never */
} pst_drift_opts_t;

/* Exit status of a drift run whose worst input, prediction or label row has severity worst. */
#define PST_DRIFT_EXIT_FOUND 3

/* Prints the comparison (and writes opts->json). Returns the process exit status: 0, 1 on a
 * failure (reported on stderr), PST_DRIFT_EXIT_FOUND when drift reaches opts->fail_on. */
int pst_drift_run(const pst_drift_opts_t *opts);

#endif
