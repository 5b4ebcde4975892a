/* Report section of cv: each figure of the folds' epochs as one line per fold, the mean over the
 * folds drawn thick, from the history each task keeps in report.json (app/plan/history.h). */
#include "app/report/report_parts.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "app/report/svgplot.h"

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
