/* Drift comparison: the counts of a data file against a model's profile, row by row. */
#include "app/drift/driftcheck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/drift/driftscan.h"
#include "common/drift/profile.h"

void pst_drift_result_fini(pst_drift_result_t *r)
{
    free(r->inputs);
    memset(r, 0, sizeof *r);
}

int pst_drift_no_profile(const char *path, pst_err_t *err)
{
    return pst_err_set(err, PST_ENOTFOUND,
                       "%s holds no training distributions (a model file written before drift "
                       "profiles, an ensemble, a sparse model, or trained with "
                       "train.drift_profile: false): train it again to check drift",
                       path);
}

void pst_drift_describe(const pst_modelfile_t *mf, const char *indent)
{
    const pst_drift_profile_t *p = mf->drift;
    if (p == NULL) {
        printf("%sdrift profile: none (pstrain drift cannot check this model)\n", indent);
        return;
    }
    size_t categorical = 0;
    for (size_t j = 0; j < p->n_features; j++)
        categorical += p->features[j].kind == PST_DRIFT_CATEGORICAL;
    printf("%sdrift profile: %zu of %zu inputs (%zu numeric, %zu categorical)", indent,
           p->n_features, p->n_inputs, p->n_features - categorical, categorical);
    if (p->has_prediction)
        printf(", predictions on the %s rows",
               p->prediction_rows ? p->prediction_rows : "training");
    printf("%s\n", p->has_label ? ", labels" : "");
}

static pst_drift_row_t compare_dist(const pst_drift_dist_t *d, const uint64_t *cur,
                                    uint64_t missing_cur, const char *role, double threshold)
{
    pst_drift_row_t row = {.name = d->name,
                           .role = role,
                           .numeric = d->kind == PST_DRIFT_NUMERIC,
                           .n_ref = pst_drift_dist_total(d),
                           .missing_ref = d->n_missing,
                           .missing_cur = missing_cur,
                           .ks_p = 1,
                           .chi2_p = 1};
    for (size_t k = 0; k < d->n_bins; k++)
        row.n_cur += cur[k];
    if (row.numeric) {
        row.psi = pst_drift_psi(d->counts, cur, d->n_bins, PST_DRIFT_PSI_GROUPS);
        row.ks = pst_drift_ks(d->counts, cur, d->n_bins, &row.ks_upper);
        row.ks_p = pst_drift_ks_pvalue(row.ks, row.n_ref, row.n_cur);
    } else {
        row.psi = pst_drift_psi(d->counts, cur, d->n_bins, 0);
        row.chi2 = pst_drift_chi2(d->counts, cur, d->n_bins, &row.df);
        row.chi2_p = pst_drift_chi2_pvalue(row.chi2, row.df);
    }
    row.severity = pst_drift_severity(row.psi);
    row.flagged = row.psi > threshold;
    return row;
}

static int by_psi(const void *a, const void *b)
{
    const pst_drift_row_t *x = a, *y = b;
    if (x->psi != y->psi)
        return x->psi < y->psi ? 1 : -1;
    return strcmp(x->name, y->name);
}

int pst_drift_compare(const pst_modelfile_t *mf, const pst_config_t *cfg, const char *data,
                      double threshold, pst_drift_result_t *r, pst_err_t *err)
{
    memset(r, 0, sizeof *r);
    const pst_drift_profile_t *p = mf->drift;
    if (p == NULL)
        return pst_err_set(err, PST_ENOTFOUND, "the model holds no training distributions");
    pst_drift_counts_t c;
    int rc = pst_drift_scan(mf, cfg, data, &c, err);
    if (rc != PST_OK)
        return rc;
    if (c.n_rows == 0) {
        pst_drift_counts_fini(&c);
        return pst_err_set(err, PST_EFORMAT, "%s: no data rows to compare", data);
    }
    if (!(r->inputs = calloc(p->n_features ? p->n_features : 1, sizeof *r->inputs))) {
        pst_drift_counts_fini(&c);
        return pst_err_set(err, PST_ENOMEM, "drift: out of memory");
    }
    r->threshold = threshold;
    r->n_rows = c.n_rows;
    r->n_inputs = p->n_features;
    r->n_unprofiled = p->n_inputs - p->n_features;
    for (size_t j = 0; j < p->n_features; j++) {
        r->inputs[j] =
            compare_dist(&p->features[j], c.features[j], c.feature_missing[j], "input", threshold);
        r->n_flagged += r->inputs[j].flagged;
    }
    qsort(r->inputs, r->n_inputs, sizeof *r->inputs, by_psi);
    if ((r->has_prediction = p->has_prediction))
        r->prediction = compare_dist(&p->prediction, c.prediction, 0, "prediction", threshold);
    if ((r->has_label = p->has_label && c.has_labels))
        r->label = compare_dist(&p->label, c.label, 0, "label", threshold);
    pst_drift_counts_fini(&c);
    return PST_OK;
}
