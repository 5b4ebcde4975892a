/* pstrain drift: load the model, compare, print the table, write the JSON, choose the status. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/console.h"
#include "app/drift/driftcheck.h"
#include "app/rundir.h"
#include "common/atomicfile.h"
#include "common/drift/profile.h"
#include "worker/model/ensemble.h"
#include "worker/model/sparsefile.h"

/* The model's stored configuration with the --set overrides. */
static int model_config(const pst_modelfile_t *mf, const pst_drift_opts_t *o, pst_config_t *cfg,
                        pst_err_t *err)
{
    pst_config_init(cfg);
    int rc = mf->config_yaml ? pst_config_load_string(cfg, mf->config_yaml, o->model, err) : 0;
    for (int i = 0; i < o->n_sets && rc == PST_OK; i++)
        rc = pst_config_set(cfg, o->sets[i], err);
    return rc;
}

/* A single dense model file with a profile, or an error saying why not. */
static int load_profiled(pst_modelfile_t *mf, const char *path, pst_err_t *err)
{
    memset(mf, 0, sizeof *mf);
    bool sparse = false, ensemble = false;
    int rc = pst_sparsefile_probe(path, &sparse, err);
    if (rc == PST_OK && !sparse)
        rc = pst_ensemble_probe(path, &ensemble, err);
    if (rc == PST_OK && (sparse || ensemble))
        return pst_drift_no_profile(path, err);
    if (rc == PST_OK)
        rc = pst_modelfile_load(mf, path, err);
    if (rc == PST_OK && mf->drift == NULL)
        rc = pst_drift_no_profile(path, err);
    return rc;
}

static void print_row(const pst_drift_row_t *r, int rank)
{
    char where[16] = "";
    if (rank > 0)
        snprintf(where, sizeof where, "%d", rank);
    printf("%5s  %-24.24s %-11s %8.4f  ", where, r->name, r->numeric ? "numeric" : "categorical",
           r->psi);
    if (r->numeric)
        printf("%6.4f %9.3g  %8s %4s %9s", r->ks, r->ks_p, "", "", "");
    else
        printf("%6s %9s  %8.2f %4d %9.3g", "", "", r->chi2, r->df, r->chi2_p);
    printf("  %-8s %s\n", pst_drift_severity_name(r->severity), r->flagged ? "yes" : "");
}

static void print_result(const pst_drift_result_t *r, const pst_drift_opts_t *o)
{
    printf("drift of %s (%zu rows) against the training distributions of %s\n", o->data, r->n_rows,
           o->model);
    printf("PSI: < %.2f stable, %.2f-%.2f moderate, > %.2f major; flagged: PSI > %g\n",
           PST_DRIFT_PSI_MODERATE, PST_DRIFT_PSI_MODERATE, PST_DRIFT_PSI_MAJOR, PST_DRIFT_PSI_MAJOR,
           r->threshold);
    if (r->n_rows < 100)
        printf("note: %zu rows: with so few, PSI and KS vary widely between samples of the same "
               "data\n",
               r->n_rows);
    printf("KS: largest gap of the two cumulative shares at the training quantile edges (the "
           "exact KS is at most\none bin's share above it); p asymptotic. Categorical: Pearson "
           "chi-square, p from its df.\n\n");
    printf("%5s  %-24s %-11s %8s  %6s %9s  %8s %4s %9s  %-8s %s\n", "rank", "name", "kind", "psi",
           "ks", "ks_p", "chi2", "df", "chi2_p", "severity", "flagged");
    for (size_t j = 0; j < r->n_inputs; j++)
        print_row(&r->inputs[j], (int)j + 1);
    if (r->has_prediction || r->has_label)
        printf("\n");
    if (r->has_prediction)
        print_row(&r->prediction, 0);
    if (r->has_label)
        print_row(&r->label, 0);
    printf("\nflagged %zu of %zu inputs", r->n_flagged, r->n_inputs);
    for (size_t j = 0, shown = 0; j < r->n_inputs && shown < 10; j++)
        if (r->inputs[j].flagged)
            printf("%s%s", shown++ ? ", " : ": ", r->inputs[j].name);
    printf("\n");
    if (r->n_unprofiled)
        printf("%zu inputs beyond the first %d are not profiled and not checked\n", r->n_unprofiled,
               PST_DRIFT_MAX_FEATURES);
    if (r->has_prediction)
        printf("prediction drift: psi %.4f (%s)\n", r->prediction.psi,
               pst_drift_severity_name(r->prediction.severity));
    if (r->has_label)
        printf("label drift: psi %.4f (%s)\n", r->label.psi,
               pst_drift_severity_name(r->label.severity));
    else
        printf("label drift: not checked (%s)\n",
               r->has_prediction ? "no labels in the data" : "no label distribution stored");
}

static cJSON *row_json(const pst_drift_row_t *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", r->name);
    cJSON_AddStringToObject(o, "kind", r->numeric ? "numeric" : "categorical");
    pst_json_add_number(o, "psi", r->psi);
    if (r->numeric) {
        pst_json_add_number(o, "ks", r->ks);
        pst_json_add_number(o, "ks_upper", r->ks_upper);
        pst_json_add_number(o, "ks_p", r->ks_p);
        pst_json_add_number(o, "missing_train", (double)r->missing_ref);
        pst_json_add_number(o, "missing", (double)r->missing_cur);
    } else {
        pst_json_add_number(o, "chi2", r->chi2);
        pst_json_add_number(o, "df", r->df);
        pst_json_add_number(o, "chi2_p", r->chi2_p);
    }
    pst_json_add_number(o, "rows_train", (double)r->n_ref);
    pst_json_add_number(o, "rows", (double)r->n_cur);
    cJSON_AddStringToObject(o, "severity", pst_drift_severity_name(r->severity));
    cJSON_AddBoolToObject(o, "flagged", r->flagged);
    return o;
}

static int write_json(const pst_drift_result_t *r, const pst_drift_opts_t *o, pst_err_t *err)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "model", o->model);
    cJSON_AddStringToObject(doc, "data", o->data);
    pst_json_add_number(doc, "rows", (double)r->n_rows);
    pst_json_add_number(doc, "threshold", r->threshold);
    pst_json_add_number(doc, "psi_moderate", PST_DRIFT_PSI_MODERATE);
    pst_json_add_number(doc, "psi_major", PST_DRIFT_PSI_MAJOR);
    pst_json_add_number(doc, "flagged", (double)r->n_flagged);
    pst_json_add_number(doc, "unprofiled_inputs", (double)r->n_unprofiled);
    cJSON *inputs = cJSON_AddArrayToObject(doc, "inputs");
    for (size_t j = 0; j < r->n_inputs; j++)
        cJSON_AddItemToArray(inputs, row_json(&r->inputs[j]));
    cJSON_AddItemToObject(doc, "prediction",
                          r->has_prediction ? row_json(&r->prediction) : cJSON_CreateNull());
    cJSON_AddItemToObject(doc, "label", r->has_label ? row_json(&r->label) : cJSON_CreateNull());
    char *text = cJSON_Print(doc);
    cJSON_Delete(doc);
    int rc = text ? pst_write_file_atomic(o->json, text, strlen(text), err)
                  : pst_err_set(err, PST_ENOMEM, "out of memory");
    free(text);
    return rc;
}

static pst_drift_severity_t worst(const pst_drift_result_t *r)
{
    pst_drift_severity_t w = PST_DRIFT_STABLE;
    for (size_t j = 0; j < r->n_inputs; j++)
        w = r->inputs[j].severity > w ? r->inputs[j].severity : w;
    if (r->has_prediction && r->prediction.severity > w)
        w = r->prediction.severity;
    if (r->has_label && r->label.severity > w)
        w = r->label.severity;
    return w;
}

int pst_drift_run(const pst_drift_opts_t *o)
{
    pst_err_t err = {0};
    pst_modelfile_t mf;
    pst_config_t cfg;
    pst_drift_result_t r = {0};
    int rc = load_profiled(&mf, o->model, &err);
    bool have_cfg = rc == PST_OK;
    if (rc == PST_OK)
        rc = model_config(&mf, o, &cfg, &err);
    if (rc == PST_OK)
        rc = pst_drift_compare(&mf, &cfg, o->data, o->threshold, &r, &err);
    if (rc == PST_OK)
        print_result(&r, o);
    if (rc == PST_OK && o->json)
        rc = write_json(&r, o, &err);
    int status = rc != PST_OK                                      ? 1
                 : o->fail_on >= 0 && (int)worst(&r) >= o->fail_on ? PST_DRIFT_EXIT_FOUND
                                                                   : 0;
    if (rc != PST_OK)
        pst_app_error("%s", err.msg[0] ? err.msg : pst_strerror(rc));
    pst_drift_result_fini(&r);
    if (have_cfg)
        pst_config_fini(&cfg);
    pst_modelfile_fini(&mf);
    return status;
}
