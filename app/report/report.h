/* `pstrain report`: one self-contained HTML page (inline SVG, no network) of one or more run
 * directories: curves from metrics.jsonl on shared axes, final metrics, confusion matrices and
 * per-class tables from report.json, the per-fold, per-member or per-trial tables of cv, bag,
 * stack and sweep runs, federated rounds and a distributed run's communication figures. */
#ifndef PST_APP_REPORT_REPORT_H
#define PST_APP_REPORT_REPORT_H

#include "common/err.h"

#define PST_REPORT_MAX_RUNS 16

typedef struct pst_report_opts {
    const char *dirs[PST_REPORT_MAX_RUNS];
    int n_dirs;
    const char *out;     /* the HTML file; NULL: DIR/report.html of the first directory */
    const char *png_dir; /* also every plot as a PNG file in this directory (NULL: none) */
    int *n_png;          /* gets the number of PNG files written (may be NULL) */
} pst_report_opts_t;

/* Reads every directory (report.json and/or metrics.jsonl; a directory with neither, or a file
 * that does not parse, is an error naming it) and writes the page atomically, then with png_dir
 * each of its plots as a PNG (app/report/report_png.h; refused before anything is written in a
 * build without librsvg). *written (may be NULL) gets the path written, up to cap bytes. */
int pst_report_write(const pst_report_opts_t *opts, char *written, size_t cap, pst_err_t *err);

#endif
