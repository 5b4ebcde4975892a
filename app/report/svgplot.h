/* Inline SVG charts for the HTML report: line and point plots on shared axes, and heat maps.
 * Everything is drawn into the caller's stream as self-contained <svg> elements (no scripts, no
 * external references), so a report opens offline in any browser. */
#ifndef PST_APP_REPORT_SVGPLOT_H
#define PST_APP_REPORT_SVGPLOT_H

#include <stdbool.h>
#include <stdio.h>

typedef struct pst_svg_series {
    const char *name; /* legend text */
    const double *x, *y;
    int n;              /* points; non-finite ones are skipped */
    bool points;        /* markers only (a scatter), else a line with markers */
    bool dashed;        /* a second line of the same run (validation beside training) */
    const char *colour; /* NULL: the palette's colour of the series' place */
    bool emphasis;      /* a thick line (a mean among its parts) */
    bool bare;          /* a line without markers (curves of many points) */
} pst_svg_series_t;

typedef struct pst_svg_axes {
    const char *title, *xlabel, *ylabel;
    double mark_x;             /* a vertical marker at this x (NaN: none) */
    const char *mark_label;    /* its caption */
    const char *const *xticks; /* categorical x: names of x = 0, 1, ... (NULL: numeric) */
    int n_xticks;
} pst_svg_axes_t;

/* Draws the series on one pair of axes scaled to all of them, with a legend. */
void pst_svg_plot(FILE *out, const pst_svg_axes_t *axes, const pst_svg_series_t *series,
                  int n_series);

/* A k x k heat map of m (row-major; rows: true class, columns: predicted) with each cell's
 * count, shaded by its share of its row; names label the classes. */
void pst_svg_heatmap(FILE *out, const char *title, const double *m, int k,
                     const char *const *names);

/* Writes text with &, <, > and " escaped. */
void pst_html_escape(FILE *out, const char *text);

#endif
