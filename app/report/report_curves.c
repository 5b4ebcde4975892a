/* Report section: ROC, precision-recall and reliability plots of a classifier's evaluation, drawn
 * from the curves report.json keeps beside the metrics (app/evalcurves.h). */
#include "app/report/report_parts.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "app/report/svgplot.h"

#define MAX_DRAWN 10 /* classes drawn one by one; more show only their macro average */

/* The numbers of a JSON array (null: NaN) into *v (caller frees); the count. */
static int read_numbers(const cJSON *a, double **v)
{
    int n = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : 0;
    *v = n > 0 ? malloc((size_t)n * sizeof **v) : NULL;
    if (!*v)
        return 0;
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, a)(*v)[i++] = cJSON_IsNumber(it) ? it->valuedouble : NAN;
    return n;
}

/* The series of one curve object {xn: [...], yn: [...]}; bufs collects what to free. */
static bool curve_series(const cJSON *obj, const char *xn, const char *yn, pst_svg_series_t *s,
                         double **bufs, int *nb)
{
    double *x, *y;
    int n = read_numbers(cJSON_GetObjectItem(obj, xn), &x);
    int m = read_numbers(cJSON_GetObjectItem(obj, yn), &y);
    bufs[(*nb)++] = x;
    bufs[(*nb)++] = y;
    if (n == 0 || n != m)
        return false;
    *s = (pst_svg_series_t){.x = x, .y = y, .n = n, .bare = true};
    return true;
}

typedef struct curve_kind {
    const char *key, *xn, *yn, *title, *xlabel, *ylabel, *figure, *figure_key;
} curve_kind_t;

static const curve_kind_t roc_kind = {
    "roc", "fpr", "tpr", "ROC curve", "false positive rate", "true positive rate", "AUC", "auc"};
static const curve_kind_t pr_kind = {"pr",     "recall",    "precision", "Precision-recall curve",
                                     "recall", "precision", "AP",        "average_precision"};

/* One plot: each class's curve, the macro average (several classes) and the chance line.
 * auc is the run's own reported ROC-AUC of a binary task (NaN: take the curves'). */
static void class_plot(FILE *out, const cJSON *curves, const curve_kind_t *kind, const char *what,
                       double auc)
{
    const cJSON *classes = cJSON_GetObjectItem(curves, "classes");
    const cJSON *macro = cJSON_GetObjectItem(curves, "macro");
    int k = cJSON_GetArraySize(classes);
    pst_svg_series_t s[MAX_DRAWN + 2];
    char names[MAX_DRAWN + 2][64];
    double *bufs[2 * (MAX_DRAWN + 2)];
    int ns = 0, nb = 0;
    for (int c = 0; c < k && c < MAX_DRAWN && k <= MAX_DRAWN; c++) {
        const cJSON *cl = cJSON_GetArrayItem(classes, c);
        if (!curve_series(cJSON_GetObjectItem(cl, kind->key), kind->xn, kind->yn, &s[ns], bufs,
                          &nb))
            continue;
        double fig = pst_report_num(cl, kind->figure_key, NULL);
        if (k == 1 && strcmp(kind->key, "roc") == 0 && isfinite(auc))
            fig = auc;
        snprintf(names[ns], sizeof names[ns], "class %.0f %s %.4f",
                 pst_report_num(cl, "class", NULL), kind->figure, fig);
        s[ns].name = names[ns];
        ns++;
    }
    if (macro && curve_series(cJSON_GetObjectItem(macro, kind->key), kind->xn, kind->yn, &s[ns],
                              bufs, &nb)) {
        snprintf(names[ns], sizeof names[ns], "macro %s %.4f", kind->figure,
                 pst_report_num(macro, kind->figure_key, NULL));
        s[ns].name = names[ns];
        s[ns].colour = "#000";
        s[ns].emphasis = true;
        ns++;
    }
    static const double diag[2] = {0, 1};
    if (ns > 0 && strcmp(kind->key, "roc") == 0)
        s[ns++] = (pst_svg_series_t){.name = "chance",
                                     .x = diag,
                                     .y = diag,
                                     .n = 2,
                                     .dashed = true,
                                     .colour = "#999",
                                     .bare = true};
    if (ns > 0) {
        char title[96];
        snprintf(title, sizeof title, "%s (%s)", kind->title, what);
        pst_svg_axes_t ax = {
            .title = title, .xlabel = kind->xlabel, .ylabel = kind->ylabel, .mark_x = NAN};
        pst_svg_plot(out, &ax, s, ns);
    }
    for (int i = 0; i < nb; i++)
        free(bufs[i]);
}

/* The reliability plot: observed rate against mean confidence per non-empty bin. */
static void reliability_plot(FILE *out, const cJSON *cal, const char *what)
{
    double *x, *y;
    int n = read_numbers(cJSON_GetObjectItem(cal, "mean_pred"), &x);
    int m = read_numbers(cJSON_GetObjectItem(cal, "observed"), &y);
    if (n > 0 && n == m) {
        const cJSON *of = cJSON_GetObjectItem(cal, "of");
        static const double diag[2] = {0, 1};
        pst_svg_series_t s[2] = {
            {.name = "observed", .x = x, .y = y, .n = n},
            {.name = "perfectly calibrated",
             .x = diag,
             .y = diag,
             .n = 2,
             .dashed = true,
             .colour = "#999",
             .bare = true},
        };
        char title[128], xlabel[96];
        snprintf(title, sizeof title, "Reliability (%s): Brier %.4f, ECE %.4f", what,
                 pst_report_num(cal, "brier", NULL), pst_report_num(cal, "ece", NULL));
        snprintf(xlabel, sizeof xlabel, "mean predicted %s",
                 cJSON_IsString(of) ? of->valuestring : "probability");
        pst_svg_axes_t ax = {
            .title = title, .xlabel = xlabel, .ylabel = "observed frequency", .mark_x = NAN};
        pst_svg_plot(out, &ax, s, 2);
    }
    free(x);
    free(y);
}

void pst_report_curves(FILE *out, const pst_report_run_t *run)
{
    const cJSON *r = run->report;
    const cJSON *test = r ? cJSON_GetObjectItem(r, "test") : NULL;
    const cJSON *part = test && cJSON_GetObjectItem(test, "curves") ? test
                        : r                                         ? cJSON_GetObjectItem(r, "val")
                                                                    : NULL;
    const cJSON *curves = part ? cJSON_GetObjectItem(part, "curves") : NULL;
    if (!cJSON_IsObject(curves))
        return;
    const char *what = part == test ? "test" : "validation";
    int k = cJSON_GetArraySize(cJSON_GetObjectItem(curves, "classes"));
    fputs("<h3>ROC, precision-recall and reliability</h3>\n", out);
    if (k > MAX_DRAWN)
        fprintf(out, "<p class=\"note\">%d classes: only their macro average is drawn.</p>\n", k);
    if (cJSON_IsTrue(cJSON_GetObjectItem(curves, "thinned")))
        fputs("<p class=\"note\">Curves drawn through a subset of their points; every figure "
              "comes from all rows.</p>\n",
              out);
    fputs("<div class=\"plots\">\n", out);
    class_plot(out, curves, &roc_kind, what, pst_report_num(part, "roc_auc", NULL));
    class_plot(out, curves, &pr_kind, what, NAN);
    reliability_plot(out, cJSON_GetObjectItem(curves, "calibration"), what);
    fputs("</div>\n", out);
}

/* Whether a is an array of numbers and nulls of length n (n < 0: any length, set to it). */
static bool number_array(const cJSON *a, int *n)
{
    if (!cJSON_IsArray(a) || (*n >= 0 && cJSON_GetArraySize(a) != *n))
        return false;
    const cJSON *it;
    cJSON_ArrayForEach(it, a) if (!cJSON_IsNumber(it) && !cJSON_IsNull(it)) return false;
    *n = cJSON_GetArraySize(a);
    return true;
}

/* Checks the pair of arrays of a curve object; the name of the bad one into bad. */
static bool curve_ok(const cJSON *obj, const char *at, const char *key, const char *xn,
                     const char *yn, char *bad, size_t cap)
{
    const cJSON *c = cJSON_GetObjectItem(obj, key);
    int n = -1;
    const char *which = !cJSON_IsObject(c)                              ? ""
                        : !number_array(cJSON_GetObjectItem(c, xn), &n) ? xn
                        : !number_array(cJSON_GetObjectItem(c, yn), &n) ? yn
                                                                        : NULL;
    if (which)
        snprintf(bad, cap, "%s.%s%s%s", at, key, which[0] ? "." : "", which);
    return which == NULL;
}

/* The first malformed entry of one part's curves, named into bad; true when all are sound. */
static bool part_ok(const cJSON *curves, const char *part, char *bad, size_t cap)
{
    char at[128];
    const cJSON *classes = cJSON_GetObjectItem(curves, "classes");
    if (!cJSON_IsArray(classes)) {
        snprintf(bad, cap, "%s.curves.classes", part);
        return false;
    }
    for (int c = 0; c < cJSON_GetArraySize(classes); c++) {
        const cJSON *cl = cJSON_GetArrayItem(classes, c);
        snprintf(at, sizeof at, "%s.curves.classes[%d]", part, c);
        if (!curve_ok(cl, at, "roc", "fpr", "tpr", bad, cap) ||
            !curve_ok(cl, at, "pr", "recall", "precision", bad, cap))
            return false;
    }
    const cJSON *macro = cJSON_GetObjectItem(curves, "macro");
    snprintf(at, sizeof at, "%s.curves.macro", part);
    if (macro && (!curve_ok(macro, at, "roc", "fpr", "tpr", bad, cap) ||
                  !curve_ok(macro, at, "pr", "recall", "precision", bad, cap)))
        return false;
    const cJSON *cal = cJSON_GetObjectItem(curves, "calibration");
    int n = -1;
    const char *keys[] = {"mean_pred", "observed", "count"};
    for (int k = 0; cal && k < 3; k++)
        if (!number_array(cJSON_GetObjectItem(cal, keys[k]), &n)) {
            snprintf(bad, cap, "%s.curves.calibration.%s", part, keys[k]);
            return false;
        }
    return true;
}

int pst_report_curves_check(const pst_report_run_t *run, pst_err_t *err)
{
    const char *parts[] = {"val", "test"};
    for (int p = 0; run->report && p < 2; p++) {
        const cJSON *curves =
            cJSON_GetObjectItem(cJSON_GetObjectItem(run->report, parts[p]), "curves");
        char bad[192];
        if (curves && !part_ok(curves, parts[p], bad, sizeof bad))
            return pst_err_set(err, PST_EFORMAT, "%s/report.json: %s: not an array of numbers",
                               run->dir, bad);
    }
    return PST_OK;
}
