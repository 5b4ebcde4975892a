/* Report sections from report.json: final metrics, confusion, per class, comm, fed, plans. */
#include "app/report/report_parts.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "app/report/svgplot.h"

static const char *const headline[] = {"accuracy", "f1_macro", "roc_auc", "log_loss",
                                       "mse",      "mae",      "r2",      "loss"};
#define N_HEADLINE (int)(sizeof headline / sizeof headline[0])

void pst_report_cell(FILE *out, double v)
{
    if (isfinite(v))
        fprintf(out, "<td>%.4g</td>", v);
    else
        fputs("<td></td>", out);
}

/* A row per part (validation, test...) of the headline metrics present in any part. */
static void metrics_table(FILE *out, const cJSON *const *parts, const char *const *names, int n)
{
    bool show[N_HEADLINE] = {0};
    bool any = false;
    for (int k = 0; k < N_HEADLINE; k++)
        for (int p = 0; p < n; p++)
            if (isfinite(pst_report_num(parts[p], headline[k], NULL)))
                show[k] = any = true;
    if (!any)
        return;
    fputs("<table class=\"sortable\"><thead><tr><th></th>", out);
    for (int k = 0; k < N_HEADLINE; k++)
        if (show[k])
            fprintf(out, "<th>%s</th>", headline[k]);
    fputs("</tr></thead><tbody>\n", out);
    for (int p = 0; p < n; p++) {
        if (!parts[p])
            continue;
        fputs("<tr><td>", out);
        pst_html_escape(out, names[p]);
        fputs("</td>", out);
        for (int k = 0; k < N_HEADLINE; k++)
            if (show[k])
                pst_report_cell(out, pst_report_num(parts[p], headline[k], NULL));
        fputs("</tr>\n", out);
    }
    fputs("</tbody></table>\n", out);
}

/* The confusion matrix of part as a heat map, and its per-class table. */
static void confusion(FILE *out, const cJSON *part, const char *what)
{
    const cJSON *conf = part ? cJSON_GetObjectItem(part, "confusion") : NULL;
    int k = cJSON_GetArraySize(conf);
    if (k < 2 || k > 64)
        return;
    double *m = calloc((size_t)(k * k), sizeof *m);
    char(*names)[24] = calloc((size_t)k, sizeof *names);
    const char **name_p = calloc((size_t)k, sizeof *name_p);
    if (m && names && name_p) {
        for (int i = 0; i < k; i++) {
            const cJSON *row = cJSON_GetArrayItem(conf, i);
            for (int j = 0; j < k && j < cJSON_GetArraySize(row); j++)
                m[i * k + j] = cJSON_GetArrayItem(row, j)->valuedouble;
            snprintf(names[i], sizeof names[i], "class %d", i);
            name_p[i] = names[i];
        }
        char title[96];
        snprintf(title, sizeof title, "Confusion matrix (%s)", what);
        fputs("<div class=\"plots\">\n", out);
        pst_svg_heatmap(out, title, m, k, name_p);
        fputs("</div>\n", out);
    }
    const cJSON *per = cJSON_GetObjectItem(part, "per_class");
    const char *cols[] = {"precision", "recall", "f1", "specificity"};
    if (per && name_p) {
        fputs("<table class=\"sortable\"><thead><tr><th>class</th>", out);
        for (int c = 0; c < 4; c++)
            fprintf(out, "<th>%s</th>", cols[c]);
        fputs("<th>rows</th></tr></thead><tbody>\n", out);
        for (int i = 0; i < k; i++) {
            fprintf(out, "<tr><td>%s</td>", names[i]);
            for (int c = 0; c < 4; c++) {
                const cJSON *v = cJSON_GetArrayItem(cJSON_GetObjectItem(per, cols[c]), i);
                pst_report_cell(out, cJSON_IsNumber(v) ? v->valuedouble : NAN);
            }
            double rows = 0;
            for (int j = 0; j < k; j++)
                rows += m ? m[i * k + j] : 0;
            pst_report_cell(out, rows);
            fputs("</tr>\n", out);
        }
        fputs("</tbody></table>\n", out);
    }
    free(m);
    free(names);
    free(name_p);
}

void pst_report_final(FILE *out, const pst_report_run_t *run)
{
    const cJSON *r = run->report;
    if (!r)
        return;
    const cJSON *parts[2] = {cJSON_GetObjectItem(r, "val"), cJSON_GetObjectItem(r, "test")};
    const char *names[2] = {"validation", "test"};
    if (parts[0] || parts[1]) {
        fputs("<h3>Final metrics</h3>\n", out);
        metrics_table(out, parts, names, 2);
    }
    double epochs = pst_report_num(r, "train", "epochs", NULL);
    if (isfinite(epochs)) {
        double best = pst_report_num(r, "train", "best_epoch", NULL);
        fprintf(out,
                "<p>%.0f epoch%s, best epoch %.0f%s; loading %.2fs, training %.2fs, "
                "evaluation %.2fs, %.0f samples/s</p>\n",
                epochs, epochs == 1 ? "" : "s", best,
                best > 0 && best < epochs ? " (its weights restored)" : "",
                pst_report_num(r, "timings", "load_seconds", NULL),
                pst_report_num(r, "train", "seconds", NULL),
                pst_report_num(r, "timings", "eval_seconds", NULL),
                pst_report_num(r, "train", "samples_per_s", NULL));
    }
    const cJSON *part =
        parts[1] && cJSON_GetObjectItem(parts[1], "confusion") ? parts[1] : parts[0];
    confusion(out, part, part == parts[1] ? "test" : "validation");
    pst_report_curves(out, run);
}

/* Every number of obj as a two-column table (nested objects as "key/sub"). */
static void number_rows(FILE *out, const cJSON *obj, const char *prefix)
{
    for (const cJSON *it = obj->child; it; it = it->next) {
        char name[160];
        snprintf(name, sizeof name, "%s%s%s", prefix, prefix[0] ? "/" : "", it->string);
        if (cJSON_IsObject(it)) {
            number_rows(out, it, name);
        } else if (cJSON_IsNumber(it) || cJSON_IsString(it)) {
            fputs("<tr><td>", out);
            pst_html_escape(out, name);
            fputs("</td>", out);
            if (cJSON_IsNumber(it))
                pst_report_cell(out, it->valuedouble);
            else
                fputs("<td>", out), pst_html_escape(out, it->valuestring), fputs("</td>", out);
            fputs("</tr>\n", out);
        }
    }
}

void pst_report_comm_fed(FILE *out, const pst_report_run_t *run)
{
    const char *sections[] = {"comm", "fed"};
    const char *titles[] = {"Communication (parameter servers)", "Federated rounds"};
    for (int s = 0; s < 2; s++) {
        const cJSON *obj = run->report ? cJSON_GetObjectItem(run->report, sections[s]) : NULL;
        if (!cJSON_IsObject(obj))
            continue;
        fprintf(out, "<h3>%s</h3>\n<table><tbody>\n", titles[s]);
        number_rows(out, obj, "");
        fputs("</tbody></table>\n", out);
    }
}
