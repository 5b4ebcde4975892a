/* pstrain drift: argv of comparing a data file with a model's training distributions, run by
 * app/drift. */
#include <stdio.h>
#include <string.h>

#include "app/console.h"
#include "app/drift/driftcheck.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "common/numparse.h"

void pst_usage_drift(FILE *out)
{
    fprintf(out,
            "usage: pstrain drift MODEL DATA [--json FILE] [--threshold PSI] "
            "[--fail-on SEVERITY] [--set KEY=VALUE]...\n\n"
            "Compares DATA with the training distributions stored in MODEL (a dense model\n"
            "trained with train.drift_profile: true, the default) and prints, per input, sorted\n"
            "by PSI: the population stability index, and for numeric inputs the two-sample\n"
            "Kolmogorov-Smirnov statistic with its p-value, for categorical ones the chi-square\n"
            "and its p-value; then the drift of the model's predictions and, when DATA has the\n"
            "target column, of the labels. A CSV model reads DATA's raw columns by name (before\n"
            "encoding); other models the features before scaling.\n\n"
            "Severity by PSI: below 0.1 stable, 0.1 to 0.25 moderate, above 0.25 major.\n"
            "Numeric PSI uses the training deciles; KS is measured at the 19 training quantile\n"
            "edges (the exact statistic is at most one bin's share above it) and its p-value\n"
            "is the asymptotic Kolmogorov one.\n\n"
            "options:\n"
            "  --json FILE        also write the comparison as JSON to FILE\n"
            "  --threshold PSI    flag inputs whose PSI is above PSI (default 0.25)\n"
            "  --fail-on SEVERITY exit with status 3 when an input, the predictions or the\n"
            "                     labels reach SEVERITY (moderate or major)\n"
            "  --set KEY=VALUE    override a data.* key for reading DATA\n\n"
            "exit status: 0 compared, 1 failure, 2 usage error, 3 drift reached --fail-on\n");
}

typedef struct drift_args {
    pst_drift_opts_t *o;
} drift_args_t;

static int parse_threshold(void *ctx, const char *name, const char *value)
{
    drift_args_t *a = ctx;
    double v;
    if (pst_parse_double(value, PST_NUM_FINITE, &v) != PST_OK || v < 0 || v > 1e6) {
        pst_app_error("%s: '%s' is not a PSI between 0 and 1e6", name, value);
        return 2;
    }
    a->o->threshold = v;
    return 0;
}

static int parse_fail_on(void *ctx, const char *name, const char *value)
{
    drift_args_t *a = ctx;
    int s = pst_drift_severity_parse(value);
    if (s <= PST_DRIFT_STABLE) {
        pst_app_error("%s: '%s' is not a severity (moderate or major)", name, value);
        return 2;
    }
    a->o->fail_on = s;
    return 0;
}

int pst_cmd_drift(int argc, char **argv)
{
    pst_drift_opts_t o = {.threshold = PST_DRIFT_PSI_MAJOR, .fail_on = -1};
    drift_args_t ctx = {&o};
    const pst_args_opt_t opts[] = {{"--json", .text = &o.json},
                                   {"--threshold", .parse = parse_threshold},
                                   {"--fail-on", .parse = parse_fail_on},
                                   {NULL}};
    pst_args_spec_t spec = {.usage = pst_usage_drift,
                            .common = PST_ARGS_SET,
                            .opts = opts,
                            .ctx = &ctx,
                            .first = 1,
                            .max_positional = 2,
                            .unknown = "drift: unknown or incomplete option '%s'",
                            .unexpected = "drift: unexpected argument '%s'"};
    pst_args_t a;
    int parsed = pst_args_parse(&a, &spec, argc, argv);
    if (parsed != PST_ARGS_RUN)
        return pst_args_status(parsed);
    if (a.n_positional < 2) {
        pst_usage_drift(stderr);
        return 2;
    }
    o.model = a.positional[0];
    o.data = a.positional[1];
    memcpy(o.sets, a.sets, (size_t)a.n_sets * sizeof a.sets[0]);
    o.n_sets = a.n_sets;
    return pst_drift_run(&o);
}
