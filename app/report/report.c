/* The report page: curves of every run on shared axes, then each run's own sections. */
#include "app/report/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/report/report_parts.h"
#include "app/report/report_png.h"
#include "app/report/svgplot.h"
#include "common/atomicfile.h"

#define MAX_KEYS 64

static const char *const style =
    "<style>body{font-family:sans-serif;margin:24px;color:#222;max-width:1400px}"
    "h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ccc;margin-top:32px}"
    "h3{font-size:15px}table{border-collapse:collapse;margin:8px 0}"
    "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;font-size:13px}"
    "th{background:#f3f3f3;cursor:pointer}td:first-child,th:first-child{text-align:left}"
    ".plots{display:flex;flex-wrap:wrap;gap:12px}.note{color:#666;font-size:13px}</style>\n";

/* Sorting a table by a clicked header: a few lines of plain script, no framework. */
static const char *const sort_script =
    "<script>document.querySelectorAll('table.sortable th').forEach(function(th,i){"
    "th.onclick=function(){var t=th.closest('table'),b=t.tBodies[0],"
    "r=Array.from(b.rows),d=th.dataset.d=th.dataset.d==='a'?'d':'a';"
    "r.sort(function(x,y){var p=x.cells[i].textContent,q=y.cells[i].textContent,"
    "m=parseFloat(p),n=parseFloat(q),c=isNaN(m)||isNaN(n)?p.localeCompare(q):m-n;"
    "return d==='a'?c:-c});r.forEach(function(e){b.appendChild(e)})}})</script>\n";

/* The epoch a restoring early stop went back to, or NaN. */
static double restored_epoch(const pst_report_run_t *run)
{
    double best = pst_report_num(run->report, "train", "best_epoch", NULL);
    double ran = pst_report_num(run->report, "train", "epochs", NULL);
    return best > 0 && best < ran ? best : NAN;
}

/* The curve keys of all runs, in first-seen order; the loss pair and timing keys left out. */
static int curve_keys(const pst_report_run_t *runs, int n, const char **keys)
{
    int k = 0;
    for (int r = 0; r < n; r++) {
        const char *axis = pst_report_run_axis(&runs[r]);
        const cJSON *l;
        cJSON_ArrayForEach(l, runs[r].lines)
        {
            if (!axis || cJSON_GetObjectItem(l, "task") || cJSON_GetObjectItem(l, "step"))
                continue;
            for (const cJSON *it = l->child; it && k < MAX_KEYS; it = it->next) {
                const char *s = it->string;
                if (!cJSON_IsNumber(it) || strcmp(s, axis) == 0 || strcmp(s, "seconds") == 0 ||
                    strcmp(s, "train_loss") == 0 || strcmp(s, "val_loss") == 0 || strstr(s, "_raw"))
                    continue;
                bool seen = false;
                for (int i = 0; i < k && !seen; i++)
                    seen = strcmp(keys[i], s) == 0;
                if (!seen)
                    keys[k++] = s;
            }
        }
    }
    return k;
}

/* One plot of key over the runs' axis (the loss plot: train_loss solid, val_loss dashed). */
static void curve_plot(FILE *out, const pst_report_run_t *runs, int n, const char *key)
{
    bool loss = key == NULL;
    pst_svg_series_t series[2 * PST_REPORT_MAX_RUNS];
    double *bufs[4 * PST_REPORT_MAX_RUNS];
    char names[2 * PST_REPORT_MAX_RUNS][160];
    int ns = 0, nb = 0;
    const char *axis = NULL;
    for (int r = 0; r < n; r++) {
        const char *ks[2] = {loss ? "train_loss" : key, loss ? "val_loss" : NULL};
        axis = axis ? axis : pst_report_run_axis(&runs[r]);
        for (int j = 0; j < 2 && ks[j]; j++) {
            double *x, *y;
            int m = pst_report_run_series(&runs[r], ks[j], &x, &y);
            if (m == 0)
                continue;
            bufs[nb++] = x;
            bufs[nb++] = y;
            snprintf(names[ns], sizeof names[ns], "%s%s%s", n > 1 ? runs[r].name : "",
                     n > 1 ? " " : "", ks[j]);
            series[ns] =
                (pst_svg_series_t){.name = names[ns], .x = x, .y = y, .n = m, .dashed = j == 1};
            ns++;
        }
    }
    if (ns > 0) {
        double mark = n == 1 ? restored_epoch(&runs[0]) : NAN;
        char caption[64];
        snprintf(caption, sizeof caption, "restored epoch %.0f", mark);
        pst_svg_axes_t ax = {.title = loss ? "Loss" : key,
                             .xlabel = axis,
                             .ylabel = loss ? "loss" : key,
                             .mark_x = loss || strncmp(key ? key : "", "val_", 4) == 0 ? mark : NAN,
                             .mark_label = caption};
        pst_svg_plot(out, &ax, series, ns);
    }
    for (int i = 0; i < nb; i++)
        free(bufs[i]);
}

static void write_curves(FILE *out, const pst_report_run_t *runs, int n)
{
    const char *keys[MAX_KEYS];
    int k = curve_keys(runs, n, keys);
    bool any = false;
    for (int r = 0; r < n; r++)
        any = any || pst_report_run_axis(&runs[r]) != NULL;
    if (!any)
        return;
    fprintf(out, "<h2>Curves</h2>\n%s<div class=\"plots\">\n",
            n > 1 ? "<p class=\"note\">Every run on shared axes.</p>\n" : "");
    curve_plot(out, runs, n, NULL);
    for (int i = 0; i < k; i++)
        curve_plot(out, runs, n, keys[i]);
    fputs("</div>\n", out);
}

static void write_run(FILE *out, const pst_report_run_t *run)
{
    const cJSON *cmd = run->report ? cJSON_GetObjectItem(run->report, "command") : NULL;
    fputs("<h2>", out);
    pst_html_escape(out, run->name);
    fputs("</h2>\n<p class=\"note\">", out);
    pst_html_escape(out, run->dir);
    if (cJSON_IsString(cmd)) {
        fputs(" &middot; pstrain ", out);
        pst_html_escape(out, cmd->valuestring);
    }
    fputs("</p>\n", out);
    pst_report_final(out, run);
    pst_report_comm_fed(out, run);
    pst_report_plan(out, run);
    pst_report_importance(out, run);
}

static void write_page(FILE *out, const pst_report_run_t *runs, int n)
{
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>pstrain "
          "report: ",
          out);
    for (int r = 0; r < n; r++) {
        fputs(r ? ", " : "", out);
        pst_html_escape(out, runs[r].name);
    }
    fprintf(out, "</title>\n%s</head><body>\n<h1>pstrain report</h1>\n", style);
    write_curves(out, runs, n);
    for (int r = 0; r < n; r++)
        write_run(out, &runs[r]);
    fprintf(out, "%s</body></html>\n", sort_script);
}

int pst_report_write(const pst_report_opts_t *o, char *written, size_t cap, pst_err_t *err)
{
    if (o->n_dirs < 1 || o->n_dirs > PST_REPORT_MAX_RUNS)
        return pst_err_set(err, PST_EINVAL, "report: between 1 and %d run directories",
                           PST_REPORT_MAX_RUNS);
    if (o->png_dir && !pst_report_png_available())
        return pst_report_png_write(NULL, 0, o->png_dir, o->n_png, err);
    pst_report_run_t runs[PST_REPORT_MAX_RUNS];
    int loaded = 0, rc = PST_OK;
    for (; rc == PST_OK && loaded < o->n_dirs; loaded++) {
        rc = pst_report_run_load(&runs[loaded], o->dirs[loaded], err);
        if (rc == PST_OK)
            rc = pst_report_curves_check(&runs[loaded], err);
    }
    char *page = NULL;
    size_t len = 0;
    if (rc == PST_OK) {
        FILE *out = open_memstream(&page, &len);
        if (!out)
            rc = pst_err_set(err, PST_ENOMEM, "out of memory");
        else {
            write_page(out, runs, o->n_dirs);
            fclose(out);
        }
    }
    char path[1200];
    snprintf(path, sizeof path, "%s", o->out ? o->out : "");
    if (!o->out)
        snprintf(path, sizeof path, "%s/report.html", o->dirs[0]);
    if (rc == PST_OK)
        rc = pst_write_file_atomic(path, page, len, err);
    if (rc == PST_OK && o->png_dir)
        rc = pst_report_png_write(page, len, o->png_dir, o->n_png, err);
    if (rc == PST_OK && written)
        snprintf(written, cap, "%s", path);
    free(page);
    for (int r = 0; r < loaded; r++)
        pst_report_run_fini(&runs[r]);
    return rc;
}
