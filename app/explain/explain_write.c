/* CSV and HTML outputs of explanations, written through memory then atomically. */
#include "app/explain/explain_write.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/report/svgplot.h"
#include "app/score_csv.h"
#include "common/atomicfile.h"

typedef void (*write_fn)(FILE *f, const void *ctx);

static int write_through_memory(const char *path, write_fn fn, const void *ctx, pst_err_t *err)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    if (!mem)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    fn(mem, ctx);
    int rc = fclose(mem) == 0 ? pst_write_file_atomic(path, buf, len, err)
                              : pst_err_set(err, PST_ENOMEM, "out of memory");
    free(buf);
    return rc;
}

/* A CSV field, quoted when it holds a comma, quote or line break. */
static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

typedef struct imp_ctx {
    const pst_explainer_t *ex;
    const pst_importance_t *imp;
} imp_ctx_t;

static void importance_csv(FILE *f, const void *ctx)
{
    const imp_ctx_t *c = ctx;
    const pst_importance_t *imp = c->imp;
    fputs("rank,column,metric,mean_drop,std_drop", f);
    for (int r = 0; r < imp->repeats; r++)
        fprintf(f, ",drop_%d", r + 1);
    fputc('\n', f);
    for (int i = 0; i < imp->n_groups; i++) {
        int g = imp->order[i];
        fprintf(f, "%d,", i + 1);
        csv_field(f, c->ex->group_names[g]);
        fprintf(f, ",%s,%.9g,%.9g", pst_importance_metric_name(imp->metric), imp->mean[g],
                imp->std[g]);
        for (int r = 0; r < imp->repeats; r++)
            fprintf(f, ",%.9g", imp->drops[(size_t)g * (size_t)imp->repeats + (size_t)r]);
        fputc('\n', f);
    }
}

int pst_explain_write_importance(const char *path, const pst_explainer_t *ex,
                                 const pst_importance_t *imp, pst_err_t *err)
{
    imp_ctx_t c = {ex, imp};
    return write_through_memory(path, importance_csv, &c, err);
}

typedef struct attr_ctx {
    const pst_explainer_t *ex;
    const pst_attributions_t *at;
    const char *id_name;
    char *const *ids;
} attr_ctx_t;

static void attributions_csv(FILE *f, const void *ctx)
{
    const attr_ctx_t *c = ctx;
    const pst_attributions_t *at = c->at;
    fputs("row,", f);
    if (c->ids) {
        csv_field(f, c->id_name);
        fputc(',', f);
    }
    fputs("class,output,baseline", f);
    for (int g = 0; g < at->n_groups; g++) {
        fputc(',', f);
        csv_field(f, c->ex->group_names[g]);
    }
    fputc('\n', f);
    for (size_t i = 0; i < at->n_rows; i++) {
        fprintf(f, "%zu,", i + 1);
        if (c->ids) {
            csv_field(f, c->ids[i] ? c->ids[i] : "");
            fputc(',', f);
        }
        if (c->ex->ref->task == PST_TASK_CLASSIFICATION)
            pst_score_write_label(f, c->ex->ref, at->cls[i]);
        fprintf(f, ",%.9g,%.9g", at->fx[i], at->fbase[i]);
        for (int g = 0; g < at->n_groups; g++)
            fprintf(f, ",%.9g", at->phi[i * (size_t)at->n_groups + (size_t)g]);
        fputc('\n', f);
    }
}

int pst_explain_write_attributions(const char *path, const pst_explainer_t *ex,
                                   const pst_attributions_t *at, const char *id_name,
                                   char *const *ids, pst_err_t *err)
{
    attr_ctx_t c = {ex, at, id_name, ids};
    return write_through_memory(path, attributions_csv, &c, err);
}

typedef struct html_ctx {
    const pst_explainer_t *ex;
    const pst_importance_t *imp;
    const pst_attributions_t *at;
} html_ctx_t;

/* values (n) against the column names in the order given, as a scatter per series. */
static void bar_plot(FILE *f, const char *title, const char *ylabel, const char *const *names,
                     const pst_svg_series_t *series, int n_series)
{
    pst_svg_axes_t axes = {.title = title,
                           .xlabel = "input column",
                           .ylabel = ylabel,
                           .mark_x = NAN,
                           .xticks = names,
                           .n_xticks = series[0].n};
    pst_svg_plot(f, &axes, series, n_series);
}

static void importance_html(FILE *f, const html_ctx_t *c)
{
    const pst_importance_t *imp = c->imp;
    int n = imp->n_groups;
    const char **names = calloc((size_t)n, sizeof *names);
    double *x = calloc((size_t)n, sizeof(double)), *y = calloc((size_t)n * 3, sizeof(double));
    if (!names || !x || !y)
        goto done;
    for (int i = 0; i < n; i++) {
        int g = imp->order[i];
        names[i] = c->ex->group_names[g];
        x[i] = i;
        y[i] = imp->mean[g];
        y[n + i] = imp->mean[g] - imp->std[g];
        y[2 * n + i] = imp->mean[g] + imp->std[g];
    }
    pst_svg_series_t s[3] = {
        {.name = "mean drop", .x = x, .y = y, .n = n, .points = true, .dashed = false},
        {.name = "mean - std", .x = x, .y = y + n, .n = n, .points = false, .dashed = true},
        {.name = "mean + std", .x = x, .y = y + 2 * n, .n = n, .points = false, .dashed = true}};
    char ylabel[64];
    snprintf(ylabel, sizeof ylabel, "%s worsening", pst_importance_metric_name(imp->metric));
    fprintf(f,
            "<h2>Permutation importance</h2>\n<p>%s on the rows as given: %.6g; each column "
            "shuffled %d times.</p>\n",
            pst_importance_metric_name(imp->metric), imp->base, imp->repeats);
    bar_plot(f, "Permutation importance", ylabel, names, s, 3);
done:
    free(names);
    free(x);
    free(y);
}

static void attributions_html(FILE *f, const html_ctx_t *c)
{
    const pst_attributions_t *at = c->at;
    int n = at->n_groups;
    double *x = calloc((size_t)n, sizeof(double)), *y = calloc((size_t)n, sizeof(double));
    if (!x || !y)
        goto done;
    for (int g = 0; g < n; g++) {
        x[g] = g;
        for (size_t i = 0; i < at->n_rows; i++)
            y[g] += fabs(at->phi[i * (size_t)n + (size_t)g]) / (double)at->n_rows;
    }
    pst_svg_series_t s = {
        .name = "mean |attribution|", .x = x, .y = y, .n = n, .points = true, .dashed = false};
    fprintf(f,
            "<h2>Attributions (%s)</h2>\n<p>%zu rows; completeness: attributions sum to "
            "f(x) - f(baseline) within %.3g.</p>\n",
            pst_attr_method_name(at->method), at->n_rows, at->worst_error);
    bar_plot(f, "Mean absolute attribution", pst_explainer_output_name(c->ex),
             (const char *const *)c->ex->group_names, &s, 1);
done:
    free(x);
    free(y);
}

static void explain_html(FILE *f, const void *ctx)
{
    const html_ctx_t *c = ctx;
    fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>pstrain explain</title>"
          "</head>\n<body style=\"font-family: sans-serif\">\n<h1>Explanations</h1>\n",
          f);
    if (c->imp)
        importance_html(f, c);
    if (c->at)
        attributions_html(f, c);
    fputs("</body></html>\n", f);
}

int pst_explain_write_html(const char *path, const pst_explainer_t *ex, const pst_importance_t *imp,
                           const pst_attributions_t *at, pst_err_t *err)
{
    html_ctx_t c = {ex, imp, at};
    return write_through_memory(path, explain_html, &c, err);
}
