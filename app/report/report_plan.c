/* Report sections of plans: cv folds, bag members, stack bases, sweep trials. */
#include "app/report/report_parts.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "app/report/svgplot.h"
#include "common/numparse.h"

#define MAX_ITEMS 1024

/* The task's headline figure: bag members are scored on test (then out of bag). */
static double task_metric(const cJSON *t, const char *key)
{
    double v = pst_report_num(t, key, NULL);
    if (!isfinite(v))
        v = pst_report_num(t, "test", key, NULL);
    return v;
}

/* The metric a plan's tasks all have: accuracy for classification, else mse. */
static const char *plan_metric(const cJSON *tasks)
{
    const cJSON *t = cJSON_GetArrayItem(tasks, 0);
    return isfinite(task_metric(t, "accuracy")) ? "accuracy" : "mse";
}

/* The tasks as a table and their metric as points, one per task, with extra's value (the
 * ensemble's, or NaN) as a last point named extra_name. */
static void tasks_section(FILE *out, const cJSON *tasks, const char *label, const char *title,
                          double extra, const char *extra_name)
{
    int n = cJSON_GetArraySize(tasks);
    if (n == 0 || n > MAX_ITEMS)
        return;
    const char *metric = plan_metric(tasks);
    const char *cols[] = {"accuracy", "f1_macro", "roc_auc", "log_loss",
                          "mse",      "r2",       "epochs",  "fit_seconds"};
    fprintf(out, "<h3>%s</h3>\n<table class=\"sortable\"><thead><tr><th>%s</th>", title, label);
    for (int c = 0; c < 8; c++)
        fprintf(out, "<th>%s</th>", cols[c]);
    fputs("</tr></thead><tbody>\n", out);
    double *x = calloc((size_t)n + 1, sizeof *x), *y = calloc((size_t)n + 1, sizeof *y);
    char(*names)[32] = calloc((size_t)n + 1, sizeof *names);
    const char **ticks = calloc((size_t)n + 1, sizeof *ticks);
    for (int i = 0; i < n; i++) {
        const cJSON *t = cJSON_GetArrayItem(tasks, i);
        fprintf(out, "<tr><td>%s %d</td>", label, i + 1);
        for (int c = 0; c < 8; c++)
            pst_report_cell(out, task_metric(t, cols[c]));
        fputs("</tr>\n", out);
        if (x && y && names && ticks) {
            x[i] = i;
            y[i] = task_metric(t, metric);
            snprintf(names[i], sizeof names[i], "%d", i + 1);
            ticks[i] = names[i];
        }
    }
    fputs("</tbody></table>\n", out);
    if (x && y && names && ticks) {
        int m = n;
        pst_svg_series_t s[2] = {{.name = label, .x = x, .y = y, .n = n, .points = true}};
        int ns = 1;
        if (isfinite(extra)) {
            x[n] = n;
            y[n] = extra;
            snprintf(names[n], sizeof names[n], "%s", extra_name);
            ticks[n] = names[n];
            s[1] = (pst_svg_series_t){
                .name = extra_name, .x = x + n, .y = y + n, .n = 1, .points = true};
            ns = 2;
            m = n + 1;
        }
        char t[96];
        snprintf(t, sizeof t, "%s per %s", metric, label);
        pst_svg_axes_t ax = {.title = t,
                             .xlabel = label,
                             .ylabel = metric,
                             .mark_x = NAN,
                             .xticks = ticks,
                             .n_xticks = m};
        fputs("<div class=\"plots\">\n", out);
        pst_svg_plot(out, &ax, s, ns);
        fputs("</div>\n", out);
    }
    free(x);
    free(y);
    free(names);
    free(ticks);
}

/* cv's mean +- std per metric. */
static void cv_summary(FILE *out, const cJSON *cv)
{
    fputs("<table><thead><tr><th>metric</th><th>mean</th><th>std</th><th>min</th><th>max</th>"
          "</tr></thead><tbody>\n",
          out);
    for (const cJSON *m = cv->child; m; m = m->next) {
        const cJSON *vals = cJSON_GetObjectItem(m, "values");
        if (!cJSON_IsObject(m) || !cJSON_IsNumber(cJSON_GetObjectItem(m, "mean")))
            continue;
        double lo = INFINITY, hi = -INFINITY;
        const cJSON *v;
        cJSON_ArrayForEach(v, vals)
        {
            if (cJSON_IsNumber(v)) {
                lo = fmin(lo, v->valuedouble);
                hi = fmax(hi, v->valuedouble);
            }
        }
        fputs("<tr><td>", out);
        pst_html_escape(out, m->string);
        fputs("</td>", out);
        pst_report_cell(out, pst_report_num(m, "mean", NULL));
        pst_report_cell(out, pst_report_num(m, "std", NULL));
        pst_report_cell(out, lo);
        pst_report_cell(out, hi);
        fputs("</tr>\n", out);
    }
    fputs("</tbody></table>\n", out);
}

/* Whether a lower objective is better (losses and errors). */
static bool lower_better(const char *metric)
{
    return strstr(metric, "loss") || strstr(metric, "mse") || strstr(metric, "mae");
}

static const cJSON *const *sorted_trials(const cJSON *trials, bool lower, int *n)
{
    *n = cJSON_GetArraySize(trials);
    const cJSON **t = calloc((size_t)*n + 1, sizeof *t);
    if (!t)
        return NULL;
    for (int i = 0; i < *n; i++)
        t[i] = cJSON_GetArrayItem(trials, i);
    for (int i = 1; i < *n; i++) /* insertion sort, best first, unfinished last */
        for (int j = i; j > 0; j--) {
            double a = pst_report_num(t[j - 1], "final", NULL),
                   b = pst_report_num(t[j], "final", NULL);
            bool swap = !isfinite(a) ? isfinite(b) : isfinite(b) && (lower ? b < a : b > a);
            if (!swap)
                break;
            const cJSON *tmp = t[j];
            t[j] = t[j - 1];
            t[j - 1] = tmp;
        }
    return t;
}

/* The objective against one hyperparameter: numbers on a numeric axis, others as categories. */
static void param_plot(FILE *out, const cJSON *const *t, int n, const char *param,
                       const char *metric)
{
    double *x = calloc((size_t)n + 1, sizeof *x), *y = calloc((size_t)n + 1, sizeof *y);
    const char **cats = calloc((size_t)n + 1, sizeof *cats);
    int n_cats = 0;
    bool numeric = true;
    for (int i = 0; i < n && x && y && cats; i++) {
        const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(t[i], "params"), param);
        double d;
        if (!cJSON_IsString(v) || pst_parse_double(v->valuestring, PST_NUM_FINITE, &d) != PST_OK)
            numeric = false;
    }
    for (int i = 0; i < n && x && y && cats; i++) {
        const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(t[i], "params"), param);
        const char *text = cJSON_IsString(v) ? v->valuestring : "";
        y[i] = pst_report_num(t[i], "final", NULL);
        if (numeric) {
            pst_parse_double(text, PST_NUM_FINITE, &x[i]);
            continue;
        }
        int c = 0;
        while (c < n_cats && strcmp(cats[c], text) != 0)
            c++;
        if (c == n_cats)
            cats[n_cats++] = text;
        x[i] = c;
    }
    if (x && y && cats) {
        pst_svg_series_t s = {.name = "trials", .x = x, .y = y, .n = n, .points = true};
        char title[160];
        snprintf(title, sizeof title, "%s against %s", metric, param);
        pst_svg_axes_t ax = {.title = title,
                             .xlabel = param,
                             .ylabel = metric,
                             .mark_x = NAN,
                             .xticks = numeric ? NULL : cats,
                             .n_xticks = numeric ? 0 : n_cats};
        pst_svg_plot(out, &ax, &s, 1);
    }
    free(x);
    free(y);
    free(cats);
}

static void sweep_section(FILE *out, const pst_report_run_t *run)
{
    const cJSON *trials = cJSON_GetObjectItem(run->sweep, "trials");
    const cJSON *sw = run->report ? cJSON_GetObjectItem(run->report, "sweep") : NULL;
    const cJSON *metric_j = sw ? cJSON_GetObjectItem(sw, "metric") : NULL;
    const char *metric = cJSON_IsString(metric_j) ? metric_j->valuestring : "objective";
    int n;
    const cJSON *const *t = trials ? sorted_trials(trials, lower_better(metric), &n) : NULL;
    if (!t || n == 0) {
        free((void *)t);
        return;
    }
    const cJSON *params = cJSON_GetObjectItem(t[0], "params");
    fprintf(out,
            "<h3>Trials, best %s first</h3>\n<table class=\"sortable\"><thead><tr>"
            "<th>trial</th><th>",
            lower_better(metric) ? "(lowest)" : "(highest)");
    pst_html_escape(out, metric);
    fputs("</th><th>state</th><th>epochs</th>", out);
    for (const cJSON *p = params ? params->child : NULL; p; p = p->next) {
        fputs("<th>", out);
        pst_html_escape(out, p->string);
        fputs("</th>", out);
    }
    fputs("</tr></thead><tbody>\n", out);
    for (int i = 0; i < n; i++) {
        const cJSON *state = cJSON_GetObjectItem(t[i], "state");
        fprintf(out, "<tr><td>%.0f</td>", pst_report_num(t[i], "trial", NULL));
        pst_report_cell(out, pst_report_num(t[i], "final", NULL));
        fputs("<td>", out);
        pst_html_escape(out, cJSON_IsString(state) ? state->valuestring : "");
        fputs("</td>", out);
        pst_report_cell(out, pst_report_num(t[i], "epochs_spent", NULL));
        for (const cJSON *p = params ? params->child : NULL; p; p = p->next) {
            const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(t[i], "params"), p->string);
            fputs("<td>", out);
            pst_html_escape(out, cJSON_IsString(v) ? v->valuestring : "");
            fputs("</td>", out);
        }
        fputs("</tr>\n", out);
    }
    fputs("</tbody></table>\n<div class=\"plots\">\n", out);
    for (const cJSON *p = params ? params->child : NULL; p; p = p->next)
        param_plot(out, t, n, p->string, metric);
    fputs("</div>\n", out);
    free((void *)t);
}

void pst_report_plan(FILE *out, const pst_report_run_t *run)
{
    const cJSON *r = run->report;
    const cJSON *tasks = r ? cJSON_GetObjectItem(r, "tasks") : NULL;
    const cJSON *cmd = r ? cJSON_GetObjectItem(r, "command") : NULL;
    const char *c = cJSON_IsString(cmd) ? cmd->valuestring : "";
    if (strcmp(c, "cv") == 0) {
        tasks_section(out, tasks, "fold", "Folds", NAN, NULL);
        cv_summary(out, cJSON_GetObjectItem(r, "cv"));
        pst_report_fold_curves(out, tasks);
        pst_report_fold_roc(out, tasks);
    } else if (strcmp(c, "bag") == 0) {
        const cJSON *bag = cJSON_GetObjectItem(r, "bag");
        double ens = pst_report_num(bag, "test", plan_metric(tasks), NULL);
        tasks_section(out, tasks, "member", "Members against the ensemble", ens, "ensemble");
    } else if (strcmp(c, "stack") == 0) {
        tasks_section(out, tasks, "base", "Base models", NAN, NULL);
    } else if (strcmp(c, "sweep") == 0) {
        sweep_section(out, run);
    }
}
