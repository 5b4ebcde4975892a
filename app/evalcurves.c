/* ROC, precision-recall and reliability curves into report.json, and test_predictions.csv. */
#include "app/evalcurves.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "app/rundir.h"
#include "common/atomicfile.h"
#include "common/eval/curves.h"

static cJSON *numbers(const double *v, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(a, isfinite(v[i]) ? cJSON_CreateNumber(v[i]) : cJSON_CreateNull());
    return a;
}

static void add_curve(cJSON *obj, const char *name, const char *xn, const char *yn,
                      const pst_curve_t *c)
{
    cJSON *o = cJSON_AddObjectToObject(obj, name);
    cJSON_AddItemToObject(o, xn, numbers(c->x, c->n));
    cJSON_AddItemToObject(o, yn, numbers(c->y, c->n));
}

/* Column c of the outputs as the score of class c, and whether each row is of class c. */
static void class_column(size_t n, const float *out, int n_out, const float *labels, int c,
                         float *score, float *hit)
{
    for (size_t i = 0; i < n; i++) {
        score[i] = n_out == 1 ? (c == 1 ? out[i] : 1.0f - out[i]) : out[i * (size_t)n_out + c];
        hit[i] = labels[i] == (float)c ? 1.0f : 0.0f;
    }
}

/* Each class against the rest (binary: class 1 only) into "classes"; the curves stay in cc. */
static int class_curves(cJSON *curves, int k, size_t n, const float *out, int n_out,
                        const float *labels, pst_class_curves_t *cc, float *score, float *hit,
                        pst_err_t *err)
{
    cJSON *classes = cJSON_AddArrayToObject(curves, "classes");
    int first = k == 2 ? 1 : 0;
    for (int c = first; c < k; c++) {
        class_column(n, out, n_out, labels, c, score, hit);
        int rc = pst_class_curves_compute(&cc[c - first], score, hit, n, err);
        if (rc != PST_OK)
            return rc;
        const pst_class_curves_t *cur = &cc[c - first];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "class", c);
        cJSON_AddNumberToObject(o, "positives", (double)cur->n_pos);
        pst_json_add_number(o, "auc", cur->auc);
        pst_json_add_number(o, "average_precision", cur->average_precision);
        cJSON_AddItemToArray(classes, o);
    }
    return PST_OK;
}

/* The macro average of several classes: mean AUC and AP, mean curves on a grid. */
static int macro_curves(cJSON *curves, pst_class_curves_t *cc, int k, pst_err_t *err)
{
    pst_curve_t *roc = calloc((size_t)k, sizeof *roc), *pr = calloc((size_t)k, sizeof *pr);
    double auc = 0, ap = 0;
    int used = 0;
    for (int c = 0; roc && pr && c < k; c++) {
        roc[c] = cc[c].roc;
        pr[c] = cc[c].pr;
        if (isfinite(cc[c].auc)) {
            auc += cc[c].auc;
            ap += cc[c].average_precision;
            used++;
        }
    }
    pst_curve_t mroc = {0}, mpr = {0};
    int rc = roc && pr ? PST_OK : pst_err_set(err, PST_ENOMEM, "out of memory");
    if (rc == PST_OK)
        rc = pst_roc_mean(roc, k, PST_EVALCURVES_GRID, &mroc, err);
    if (rc == PST_OK)
        rc = pst_pr_mean(pr, k, PST_EVALCURVES_GRID, &mpr, err);
    if (rc == PST_OK) {
        cJSON *m = cJSON_AddObjectToObject(curves, "macro");
        pst_json_add_number(m, "auc", used ? auc / used : NAN);
        pst_json_add_number(m, "average_precision", used ? ap / used : NAN);
        add_curve(m, "roc", "fpr", "tpr", &mroc);
        add_curve(m, "pr", "recall", "precision", &mpr);
    }
    pst_curve_fini(&mroc);
    pst_curve_fini(&mpr);
    free(roc);
    free(pr);
    return rc;
}

/* Thins each class's curves and adds them to its entry; whether any point was dropped. */
static bool add_class_points(cJSON *curves, pst_class_curves_t *cc, int n_cc)
{
    bool thinned = false;
    cJSON *classes = cJSON_GetObjectItem(curves, "classes");
    for (int c = 0; c < n_cc; c++) {
        thinned |= pst_curve_thin(&cc[c].roc, PST_EVALCURVES_MAX_POINTS);
        thinned |= pst_curve_thin(&cc[c].pr, PST_EVALCURVES_MAX_POINTS);
        cJSON *o = cJSON_GetArrayItem(classes, c);
        add_curve(o, "roc", "fpr", "tpr", &cc[c].roc);
        add_curve(o, "pr", "recall", "precision", &cc[c].pr);
    }
    return thinned;
}

/* The reliability table: binary on p(class 1), several classes on the top class. */
static int calibration(cJSON *curves, int k, size_t n, const float *out, int n_out,
                       const float *labels, float *conf, float *hit, pst_err_t *err)
{
    for (size_t i = 0; i < n; i++) {
        if (k == 2) {
            conf[i] = n_out == 1 ? out[i] : out[i * (size_t)n_out + 1];
            hit[i] = labels[i] == 1.0f;
            continue;
        }
        const float *row = out + i * (size_t)n_out;
        int best = 0;
        for (int c = 1; c < n_out; c++)
            best = row[c] > row[best] ? c : best;
        conf[i] = row[best];
        hit[i] = labels[i] == (float)best;
    }
    pst_calibration_t cal;
    int rc = pst_calibration_compute(&cal, conf, hit, n, PST_EVALCURVES_BINS, err);
    if (rc != PST_OK)
        return rc;
    cJSON *o = cJSON_AddObjectToObject(curves, "calibration");
    cJSON_AddStringToObject(o, "of", k == 2 ? "p(class 1)" : "top-class probability");
    cJSON_AddItemToObject(o, "mean_pred", numbers(cal.mean_pred, cal.n_bins));
    cJSON_AddItemToObject(o, "observed", numbers(cal.observed, cal.n_bins));
    cJSON *count = cJSON_AddArrayToObject(o, "count");
    for (int b = 0; b < cal.n_bins; b++)
        cJSON_AddItemToArray(count, cJSON_CreateNumber((double)cal.count[b]));
    double brier =
        k == 2 ? pst_brier_score(conf, 1, labels, n) : pst_brier_score(out, n_out, labels, n);
    pst_json_add_number(o, "brier", brier);
    pst_json_add_number(o, "ece", cal.ece);
    pst_calibration_fini(&cal);
    return PST_OK;
}

int pst_evalcurves_add(cJSON *obj, int n_classes, size_t n, const float *out, int n_out,
                       const float *labels, pst_err_t *err)
{
    int k = n_classes;
    if (k < 2 || n == 0 || (n_out != k && !(k == 2 && n_out == 1)))
        return PST_OK;
    int n_cc = k == 2 ? 1 : k;
    float *score = malloc(n * sizeof *score), *hit = malloc(n * sizeof *hit);
    pst_class_curves_t *cc = calloc((size_t)n_cc, sizeof *cc);
    cJSON *curves = cJSON_CreateObject();
    int rc = score && hit && cc ? PST_OK : pst_err_set(err, PST_ENOMEM, "out of memory");
    if (rc == PST_OK)
        rc = class_curves(curves, k, n, out, n_out, labels, cc, score, hit, err);
    if (rc == PST_OK && k > 2)
        rc = macro_curves(curves, cc, k, err);
    if (rc == PST_OK) {
        cJSON_AddNumberToObject(curves, "max_points", PST_EVALCURVES_MAX_POINTS);
        cJSON_AddBoolToObject(curves, "thinned", add_class_points(curves, cc, n_cc));
        rc = calibration(curves, k, n, out, n_out, labels, score, hit, err);
    }
    if (rc == PST_OK)
        cJSON_AddItemToObject(obj, "curves", curves);
    else
        cJSON_Delete(curves);
    for (int c = 0; cc && c < n_cc; c++)
        pst_class_curves_fini(&cc[c]);
    free(cc);
    free(score);
    free(hit);
    return rc;
}

int pst_evalcurves_write_predictions(const char *path, size_t n, const float *out, int n_out,
                                     const float *labels, bool classification, size_t max_rows,
                                     pst_err_t *err)
{
    if (max_rows == 0)
        return PST_OK;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    if (!classification)
        fputs("target,prediction", f);
    else if (n_out == 1)
        fputs("label,p1", f);
    else
        for (int c = 0; c < n_out; c++)
            fprintf(f, "%sp%d", c ? "," : "label,", c);
    fputc('\n', f);
    for (size_t i = 0; i < n && i < max_rows; i++) {
        fprintf(f, "%.9g", labels[i]);
        for (int c = 0; c < n_out; c++)
            fprintf(f, ",%.9g", out[i * (size_t)n_out + c]);
        fputc('\n', f);
    }
    fclose(f);
    int rc = buf ? pst_write_file_atomic(path, buf, len, err)
                 : pst_err_set(err, PST_ENOMEM, "out of memory");
    free(buf);
    return rc;
}
