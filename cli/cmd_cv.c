/* pstrain cv: argv of a cross-validation, run by app/plan/cv. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/console.h"
#include "app/plan/cv.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "common/numparse.h"

void pst_usage_cv(FILE *out)
{
    fprintf(out,
            "usage: pstrain cv CONFIG [--folds K] [--stratified] [--repeats R]\n"
            "                  [--group-column C] [--set KEY=VALUE]... [--out DIR]\n\n"
            "Cross-validates the model CONFIG describes on data.train: the rows are cut into K\n"
            "folds (R times with different shuffles) and one model per fold trains on the other\n"
            "folds and is scored on its own. Preprocessing and train.imbalance handling are\n"
            "fitted on each fold's training rows only. Under mpirun the folds are shared out to\n"
            "worker groups (cluster.groups).\n\n"
            "options:\n"
            "  --folds K          folds per repeat (default 5)\n"
            "  --stratified       keep each class's share in every fold\n"
            "  --repeats R        repeat with R different shuffles (default 1)\n"
            "  --group-column C   rows sharing a value of feature column C stay in one fold (the\n"
            "                     column is not used as a feature)\n"
            "  --set KEY=VALUE    override a configuration key\n"
            "  --out DIR          run directory (default runs/NAME-YYYYMMDD-HHMMSS, NAME the\n"
            "                     config's name); an existing non-empty DIR is refused\n"
            "  --force            write into an existing --out DIR all the same\n\n"
            "Writes report.json (cv.<metric>.mean/std over folds, every fold's metrics, fit and\n"
            "score times), metrics.jsonl (a line per fold) and oof_predictions.csv (each row's\n"
            "prediction by the model that did not train on it).\n");
}

/* --folds K and --repeats R: whole decimal numbers; anything else reads as 0, which the checks
 * after parsing refuse. */
static int parse_count(void *ctx, const char *name, const char *value)
{
    pst_cv_opts_t *o = ctx;
    long v;
    if (pst_parse_decimal(value, &v) != PST_OK || v < 0 || v > INT_MAX)
        v = 0;
    *(strcmp(name, "--folds") == 0 ? &o->folds : &o->repeats) = (int)v;
    return 0;
}

static int parse_cv_args(pst_cv_opts_t *o, int argc, char **argv)
{
    *o = (pst_cv_opts_t){.folds = 5, .repeats = 1};
    const pst_args_opt_t opts[] = {{"--folds", .parse = parse_count},
                                   {"--repeats", .parse = parse_count},
                                   {"--stratified", .flag = &o->stratified},
                                   {"--group-column", .text = &o->group_column},
                                   {NULL}};
    pst_args_spec_t spec = {.usage = pst_usage_cv,
                            .common = PST_ARGS_SET | PST_ARGS_OUT | PST_ARGS_QUIET,
                            .opts = opts,
                            .ctx = o,
                            .first = 1,
                            .max_positional = 1,
                            .unknown =
                                "cv: unknown or incomplete option '%s' (see 'pstrain cv --help')"};
    pst_args_t a;
    int parsed = pst_args_parse(&a, &spec, argc, argv);
    if (parsed != PST_ARGS_RUN)
        return parsed;
    if (pst_args_to_plan(&a, &o->plan, "cv: no CONFIG file given (see 'pstrain cv --help')"))
        return 2;
    if (o->folds < 2 || o->repeats < 1) {
        pst_app_error("cv: --folds must be at least 2 and --repeats at least 1");
        return 2;
    }
    return PST_ARGS_RUN;
}

int pst_cmd_cv(int argc, char **argv)
{
    pst_cv_opts_t o;
    int parsed = parse_cv_args(&o, argc, argv);
    return parsed == PST_ARGS_RUN ? pst_cv_run(&o) : pst_args_status(parsed);
}
