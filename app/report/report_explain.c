/* The report's importance section: importance.csv, written into a run directory by
 * `pstrain explain`, as a table and a plot of each column's mean worsening with its spread. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/report/report_parts.h"
#include "app/report/svgplot.h"
#include "common/atomicfile.h"

#define MAX_SHOWN 40

typedef struct imp_row {
    char column[128];
    char metric[16];
    double mean, std;
} imp_row_t;

/* One CSV field at *p (quoted or not) into buf; *p moves past its comma. */
static void next_field(const char **p, char *buf, size_t cap)
{
    size_t n = 0;
    const char *s = *p;
    bool quoted = *s == '"';
    for (s += quoted; *s && *s != '\n' && (quoted || *s != ','); s++) {
        if (quoted && *s == '"') {
            if (s[1] != '"') {
                quoted = false;
                continue;
            }
            s++;
        }
        if (n + 1 < cap)
            buf[n++] = *s;
    }
    buf[n] = '\0';
    *p = *s == ',' ? s + 1 : s;
}

/* Rows of importance.csv (rank,column,metric,mean_drop,std_drop,...), at most MAX_SHOWN. */
static int parse_rows(const char *text, imp_row_t *rows)
{
    const char *line = strchr(text, '\n');
    int n = 0;
    while (line && line[1] && n < MAX_SHOWN) {
        const char *p = line + 1;
        char field[128];
        imp_row_t *r = &rows[n];
        next_field(&p, field, sizeof field); /* rank */
        next_field(&p, r->column, sizeof r->column);
        next_field(&p, r->metric, sizeof r->metric);
        next_field(&p, field, sizeof field);
        r->mean = strtod(field, NULL);
        next_field(&p, field, sizeof field);
        r->std = strtod(field, NULL);
        if (isfinite(r->mean) && isfinite(r->std))
            n++;
        line = strchr(p, '\n');
    }
    return n;
}

static void plot_rows(FILE *out, const imp_row_t *rows, int n)
{
    double *x = calloc((size_t)n, sizeof(double)), *y = calloc((size_t)n * 3, sizeof(double));
    const char **ticks = calloc((size_t)n, sizeof *ticks);
    if (x && y && ticks) {
        for (int i = 0; i < n; i++) {
            x[i] = i;
            y[i] = rows[i].mean;
            y[n + i] = rows[i].mean - rows[i].std;
            y[2 * n + i] = rows[i].mean + rows[i].std;
            ticks[i] = rows[i].column;
        }
        pst_svg_series_t s[3] = {
            {.name = "mean", .x = x, .y = y, .n = n, .points = true, .dashed = false},
            {.name = "mean - std", .x = x, .y = y + n, .n = n, .points = false, .dashed = true},
            {.name = "mean + std",
             .x = x,
             .y = y + 2 * n,
             .n = n,
             .points = false,
             .dashed = true}};
        char ylabel[48];
        snprintf(ylabel, sizeof ylabel, "%s worsening", rows[0].metric);
        pst_svg_axes_t ax = {.title = "Permutation importance",
                             .xlabel = "input column",
                             .ylabel = ylabel,
                             .mark_x = NAN,
                             .xticks = ticks,
                             .n_xticks = n};
        fputs("<div class=\"plots\">\n", out);
        pst_svg_plot(out, &ax, s, 3);
        fputs("</div>\n", out);
    }
    free(x);
    free(y);
    free(ticks);
}

void pst_report_importance(FILE *out, const pst_report_run_t *run)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/importance.csv", run->dir);
    unsigned char *text = NULL;
    size_t len = 0;
    if (pst_read_file(path, (size_t)1 << 24, &text, &len, NULL) != PST_OK)
        return; /* no explanation in this run directory */
    imp_row_t *rows = calloc(MAX_SHOWN, sizeof *rows);
    int n = rows ? parse_rows((const char *)text, rows) : 0;
    if (n > 0) {
        fprintf(out,
                "<h3>Permutation importance</h3>\n<p class=\"note\">importance.csv "
                "(pstrain explain): worsening of %s when a column is shuffled",
                rows[0].metric);
        fputs(n == MAX_SHOWN ? ", the first 40 columns</p>\n" : "</p>\n", out);
        fputs("<table><thead><tr><th>column</th><th>mean</th><th>std</th></tr></thead><tbody>\n",
              out);
        for (int i = 0; i < n; i++) {
            fputs("<tr><td>", out);
            pst_html_escape(out, rows[i].column);
            fputs("</td>", out);
            pst_report_cell(out, rows[i].mean);
            pst_report_cell(out, rows[i].std);
            fputs("</tr>\n", out);
        }
        fputs("</tbody></table>\n", out);
        plot_rows(out, rows, n);
    }
    free(rows);
    free(text);
}
