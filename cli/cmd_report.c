/* pstrain report: argv of the HTML report, written by app/report. */
#include <stdio.h>
#include <string.h>

#include "app/console.h"
#include "app/report/report.h"
#include "cli/args.h"
#include "cli/cli.h"

void pst_usage_report(FILE *out)
{
    fprintf(out,
            "usage: pstrain report RUNDIR... [-o report.html] [--png DIR]\n\n"
            "Writes one self-contained HTML page (inline SVG plots, no network, no external\n"
            "files) about one or more run directories: the loss, metric, learning-rate and\n"
            "throughput curves of metrics.jsonl (the epoch early stopping restored is marked),\n"
            "final validation and test metrics, the confusion matrix as a heat map and the\n"
            "per-class table, a classifier's ROC and precision-recall curves (each class\n"
            "against the rest, with their macro average) and its reliability plot with the\n"
            "Brier score and ECE; for cv the folds, their spread and a line per fold of each\n"
            "epoch figure with their mean, for bag the members against the ensemble, for\n"
            "sweep the trials sorted by the objective and the objective against each\n"
            "hyperparameter, for fed the rounds and the sites taking part, and the\n"
            "communication figures of a run under mpirun. Several directories share the\n"
            "curves' axes, so runs compare at a glance.\n\n"
            "options:\n"
            "  -o, --out FILE   the page (default RUNDIR/report.html of the first directory)\n"
            "  --png DIR        also each plot as a PNG file in DIR (01-loss.png, ...), the\n"
            "                   page's own SVG rendered by librsvg at twice its size; refused\n"
            "                   when pstrain was built without librsvg\n");
}

static int run_report(int argc, char **argv)
{
    pst_report_opts_t o = {0};
    for (int i = 1; i < argc; i++) {
        if (pst_is_help(argv[i])) {
            pst_usage_report(stdout);
            return 0;
        }
        if (strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--out") == 0) {
            if (i + 1 >= argc) {
                pst_app_error("report: %s needs a file name", argv[i]);
                return 2;
            }
            o.out = argv[++i];
        } else if (strcmp(argv[i], "--png") == 0) {
            if (i + 1 >= argc) {
                pst_app_error("report: --png needs a directory");
                return 2;
            }
            o.png_dir = argv[++i];
        } else if (argv[i][0] == '-') {
            pst_app_error("report: unknown option '%s' (see 'pstrain report --help')", argv[i]);
            return 2;
        } else if (o.n_dirs >= PST_REPORT_MAX_RUNS) {
            pst_app_error("report: at most %d run directories", PST_REPORT_MAX_RUNS);
            return 2;
        } else {
            o.dirs[o.n_dirs++] = argv[i];
        }
    }
    if (o.n_dirs == 0) {
        pst_app_error("report: no run directory given (see 'pstrain report --help')");
        return 2;
    }
    pst_err_t err = {0};
    char path[1200];
    int n_png = 0;
    o.n_png = &n_png;
    int rc = pst_report_write(&o, path, sizeof path, &err);
    if (rc != PST_OK) {
        pst_app_error("%s", err.msg[0] ? err.msg : pst_strerror(rc));
        return 1;
    }
    printf("report: %s\n", path);
    if (o.png_dir)
        printf("png: %d plot%s in %s\n", n_png, n_png == 1 ? "" : "s", o.png_dir);
    return 0;
}

int pst_cmd_report(int argc, char **argv)
{
    return run_report(argc, argv);
}
