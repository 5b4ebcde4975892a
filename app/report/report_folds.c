/* Report section of cv: each figure of the folds' epochs as one line per fold, the mean over the
 * folds drawn thick, from the history each task keeps in report.json (app/plan/history.h). */
#include "app/report/report_parts.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "app/report/svgplot.h"
#include "common/eval/curves.h"

#define MAX_FOLDS 20 /* lines a plot holds legibly; more folds show only their mean */
#define MAX_EPOCHS 100000

/* The numbers of array a (null: NaN) into v (n entries at most); the count read. */
static int read_into(const cJSON *a, double *v, int n)
{
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, a)
    {
        if (i >= n)
            break;
        v[i++] = cJSON_IsNumber(it) ? it->valuedouble : NAN;
    }
    return i;
}

typedef struct fold_line {
    double *x, *y;
    int n;
} fold_line_t;

/* The mean over the folds at each epoch 1..max of any fold (folds that stopped early leave it);
 * mx and my hold MAX_EPOCHS entries. */
static int fold_mean(const fold_line_t *lines, int n_lines, double *mx, double *my)
{
    int max = 0;
    for (int e = 0; e < MAX_EPOCHS; e++)
        mx[e] = my[e] = 0; /* mx counts, my sums, until the division below */
    for (int f = 0; f < n_lines; f++)
        for (int i = 0; i < lines[f].n; i++) {
            double x = lines[f].x[i], y = lines[f].y[i];
            if (!(x >= 1 && x <= MAX_EPOCHS) || x != floor(x) || !isfinite(y))
                continue;
            int e = (int)x;
            mx[e - 1] += 1;
            my[e - 1] += y;
            max = e > max ? e : max;
        }
    for (int e = 1; e <= max; e++) {
        my[e - 1] = mx[e - 1] > 0 ? my[e - 1] / mx[e - 1] : NAN;
        mx[e - 1] = e;
    }
    return max;
}

/* One plot of key: a line per fold, and their mean. */
static void key_plot(FILE *out, const cJSON *tasks, const char *key)
{
    int n_tasks = cJSON_GetArraySize(tasks), drawn = 0;
    fold_line_t *lines = calloc((size_t)n_tasks + 1, sizeof *lines);
    pst_svg_series_t *s = calloc((size_t)n_tasks + 2, sizeof *s);
    char(*names)[32] = calloc((size_t)n_tasks + 1, sizeof *names);
    double *mx = malloc(MAX_EPOCHS * sizeof *mx), *my = malloc(MAX_EPOCHS * sizeof *my);
    bool any = false;
    for (int t = 0; lines && s && names && mx && my && t < n_tasks; t++) {
        const cJSON *h = cJSON_GetObjectItem(cJSON_GetArrayItem(tasks, t), "history");
        const cJSON *xa = cJSON_GetObjectItem(h, "epoch"), *ya = cJSON_GetObjectItem(h, key);
        int n = cJSON_GetArraySize(xa);
        if (n == 0 || n != cJSON_GetArraySize(ya) || n > MAX_EPOCHS)
            continue;
        fold_line_t *l = &lines[t];
        l->x = malloc((size_t)n * sizeof *l->x);
        l->y = malloc((size_t)n * sizeof *l->y);
        if (!l->x || !l->y)
            continue;
        l->n = read_into(xa, l->x, n);
        read_into(ya, l->y, n);
        for (int i = 0; i < n; i++)
            any = any || isfinite(l->y[i]);
        if (n_tasks <= MAX_FOLDS) {
            snprintf(names[drawn], sizeof names[drawn], "fold %d", t + 1);
            s[drawn] = (pst_svg_series_t){.name = names[drawn], .x = l->x, .y = l->y, .n = n};
            drawn++;
        }
    }
    if (any) {
        int m = fold_mean(lines, n_tasks, mx, my);
        s[drawn++] = (pst_svg_series_t){
            .name = "mean", .x = mx, .y = my, .n = m, .colour = "#000", .emphasis = true};
        char title[96];
        snprintf(title, sizeof title, "%s per fold", key);
        pst_svg_axes_t ax = {.title = title, .xlabel = "epoch", .ylabel = key, .mark_x = NAN};
        pst_svg_plot(out, &ax, s, drawn);
    }
    for (int t = 0; lines && t < n_tasks; t++) {
        free(lines[t].x);
        free(lines[t].y);
    }
    free(lines);
    free(s);
    free(names);
    free(mx);
    free(my);
}

void pst_report_fold_curves(FILE *out, const cJSON *tasks)
{
    const cJSON *h = cJSON_GetObjectItem(cJSON_GetArrayItem(tasks, 0), "history");
    if (!cJSON_IsObject(h) || cJSON_GetArraySize(tasks) < 1)
        return;
    fputs("<h3>Epochs of each fold</h3>\n<p class=\"note\">One line per fold; the thick line is "
          "their mean, at each epoch over the folds still training then.</p>\n"
          "<div class=\"plots\">\n",
          out);
    for (const cJSON *k = h->child; k; k = k->next)
        if (strcmp(k->string, "epoch") != 0 && strcmp(k->string, "lr") != 0)
            key_plot(out, tasks, k->string);
    fputs("</div>\n", out);
}

/* A fold's curve {xn: [...], yn: [...]} as a pst_curve_t (arrays allocated; NULL when absent). */
static bool fold_curve(const cJSON *obj, const char *xn, const char *yn, pst_curve_t *c)
{
    const cJSON *xa = cJSON_GetObjectItem(obj, xn), *ya = cJSON_GetObjectItem(obj, yn);
    int n = cJSON_GetArraySize(xa);
    memset(c, 0, sizeof *c);
    if (n < 1 || n != cJSON_GetArraySize(ya))
        return false;
    c->x = malloc((size_t)n * sizeof *c->x);
    c->y = malloc((size_t)n * sizeof *c->y);
    if (!c->x || !c->y) {
        pst_curve_fini(c);
        return false;
    }
    c->n = read_into(xa, c->x, n);
    read_into(ya, c->y, n);
    return true;
}

/* One plot of every fold's ROC (roc true) or precision-recall curve: a binary task's class 1, or
 * the macro average of several classes, with the fold's AUC or AP; their mean drawn thick. */
static void fold_curve_plot(FILE *out, const cJSON *tasks, bool roc)
{
    int n = cJSON_GetArraySize(tasks), drawn = 0, used = 0;
    pst_curve_t *c = calloc((size_t)n + 1, sizeof *c);
    pst_svg_series_t *s = calloc((size_t)n + 2, sizeof *s);
    char(*names)[48] = calloc((size_t)n + 1, sizeof *names);
    double sum = 0;
    for (int t = 0; c && s && names && t < n; t++) {
        const cJSON *cur = cJSON_GetObjectItem(cJSON_GetArrayItem(tasks, t), "curves");
        const cJSON *macro = cJSON_GetObjectItem(cur, "macro");
        const cJSON *one =
            macro ? macro : cJSON_GetArrayItem(cJSON_GetObjectItem(cur, "classes"), 0);
        if (!fold_curve(cJSON_GetObjectItem(one, roc ? "roc" : "pr"), roc ? "fpr" : "recall",
                        roc ? "tpr" : "precision", &c[t]))
            continue;
        double fig = pst_report_num(one, roc ? "auc" : "average_precision", NULL);
        sum += fig;
        used++;
        if (n > MAX_FOLDS)
            continue;
        snprintf(names[drawn], sizeof names[drawn], "fold %d %s%s %.4f", t + 1,
                 macro ? "macro " : "", roc ? "AUC" : "AP", fig);
        s[drawn] = (pst_svg_series_t){
            .name = names[drawn], .x = c[t].x, .y = c[t].y, .n = c[t].n, .bare = true};
        drawn++;
    }
    pst_curve_t mean = {0};
    if (used > 0 &&
        (roc ? pst_roc_mean(c, n, 101, &mean, NULL) : pst_pr_mean(c, n, 101, &mean, NULL)) ==
            PST_OK &&
        mean.n > 0) {
        snprintf(names[n], sizeof names[n], "mean %s %.4f", roc ? "AUC" : "AP", sum / used);
        s[drawn++] = (pst_svg_series_t){.name = names[n],
                                        .x = mean.x,
                                        .y = mean.y,
                                        .n = mean.n,
                                        .colour = "#000",
                                        .emphasis = true,
                                        .bare = true};
        static const double diag[2] = {0, 1};
        if (roc)
            s[drawn++] = (pst_svg_series_t){.name = "chance",
                                            .x = diag,
                                            .y = diag,
                                            .n = 2,
                                            .dashed = true,
                                            .colour = "#999",
                                            .bare = true};
        pst_svg_axes_t ax = {.title =
                                 roc ? "ROC curve per fold" : "Precision-recall curve per fold",
                             .xlabel = roc ? "false positive rate" : "recall",
                             .ylabel = roc ? "true positive rate" : "precision",
                             .mark_x = NAN};
        pst_svg_plot(out, &ax, s, drawn);
    }
    pst_curve_fini(&mean);
    for (int t = 0; c && t < n; t++)
        pst_curve_fini(&c[t]);
    free(c);
    free(s);
    free(names);
}

void pst_report_fold_roc(FILE *out, const cJSON *tasks)
{
    if (!cJSON_GetObjectItem(cJSON_GetArrayItem(tasks, 0), "curves"))
        return;
    fputs("<h3>ROC and precision-recall of each fold</h3>\n<p class=\"note\">Each fold's "
          "out-of-fold rows (several classes: their macro average); the thick line is the mean "
          "curve over the folds, its figure the folds' mean.</p>\n<div class=\"plots\">\n",
          out);
    fold_curve_plot(out, tasks, true);
    fold_curve_plot(out, tasks, false);
    fputs("</div>\n", out);
}
