/* pstrain bag: argv of a bagging ensemble, run by app/plan/bag. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/console.h"
#include "app/plan/bag.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "common/numparse.h"

void pst_usage_bag(FILE *out)
{
    fprintf(out,
            "usage: pstrain bag CONFIG [--members M] [--max-samples F] [--max-features F]\n"
            "                   [--voting soft|hard] [--set KEY=VALUE]... [--out DIR]\n\n"
            "Trains M copies of the model CONFIG describes, each on its own bootstrap sample of\n"
            "the training rows (drawn with replacement) and optionally on a random subset of the\n"
            "feature columns, and combines them by voting. data.train is split as 'pstrain\n"
            "train' splits it; the validation share joins the training rows. Preprocessing is\n"
            "fitted on each member's own sample. Under mpirun the members are shared out to\n"
            "worker groups (cluster.groups).\n\n"
            "options:\n"
            "  --members M        ensemble size (default 10)\n"
            "  --max-samples F    each sample draws round(F * rows) rows, F in (0, 1] (default 1)\n"
            "  --max-features F   each member sees max(1, round(F * features)) columns drawn\n"
            "                     without replacement, F in (0, 1] (default 1: all)\n"
            "  --voting V         soft: average the members' probabilities (regression: their\n"
            "                     outputs); hard: weighted majority of their predicted classes\n"
            "                     (default soft)\n"
            "  --set KEY=VALUE    override a configuration key\n"
            "  --out DIR          run directory (default runs/NAME-YYYYMMDD-HHMMSS); an existing\n"
            "                     non-empty DIR is refused\n"
            "  --force            write into an existing --out DIR all the same\n\n"
            "Writes report.json (bag.test: the ensemble's test metrics; bag.member_mean: the\n"
            "members' mean test metrics; bag.oob_accuracy: each training row scored by the\n"
            "members that did not draw it, soft-voted; bag.members[i]), metrics.jsonl (a line\n"
            "per member), test_predictions.csv and model.pst, an ensemble file that 'pstrain\n"
            "eval' and 'pstrain predict' apply like a model.\n");
}

/* A fraction in (0, 1], or -1. */
static double parse_fraction(const char *text)
{
    double v;
    return pst_parse_double(text, 0, &v) == PST_OK && v > 0 && v <= 1 ? v : -1;
}

static int parse_members(void *ctx, const char *name, const char *value)
{
    long m;
    bool ok = pst_parse_decimal(value, &m) == PST_OK && m > 0 && m <= 10000;
    ((pst_bag_opts_t *)ctx)->members = ok ? (int)m : -1;
    return 0;
}

/* --max-samples F and --max-features F. */
static int parse_share(void *ctx, const char *name, const char *value)
{
    pst_bag_opts_t *o = ctx;
    *(strcmp(name, "--max-samples") == 0 ? &o->max_samples : &o->max_features) =
        parse_fraction(value);
    return 0;
}

static int parse_voting(void *ctx, const char *name, const char *value)
{
    if (pst_voting_parse(value, &((pst_bag_opts_t *)ctx)->voting) == PST_OK)
        return 0;
    pst_app_error("bag: --voting takes soft or hard, not '%s'", value);
    return 2;
}

static int check_bag_opts(const pst_bag_opts_t *o)
{
    if (o->members < 1 || o->members > 10000) {
        pst_app_error("bag: --members must be an integer from 1 to 10000");
        return 2;
    }
    if (o->max_samples < 0 || o->max_features < 0) {
        pst_app_error("bag: --max-samples and --max-features take a fraction in (0, 1]");
        return 2;
    }
    return PST_ARGS_RUN;
}

static int parse_bag_args(pst_bag_opts_t *o, int argc, char **argv)
{
    *o = (pst_bag_opts_t){.members = 10, .max_samples = 1.0, .max_features = 1.0};
    static const pst_args_opt_t opts[] = {{"--members", .parse = parse_members},
                                          {"--max-samples", .parse = parse_share},
                                          {"--max-features", .parse = parse_share},
                                          {"--voting", .parse = parse_voting},
                                          {NULL}};
    pst_args_spec_t spec = {
        .usage = pst_usage_bag,
        .common = PST_ARGS_SET | PST_ARGS_OUT | PST_ARGS_QUIET,
        .opts = opts,
        .ctx = o,
        .first = 1,
        .max_positional = 1,
        .unknown = "bag: unknown or incomplete option '%s' (see 'pstrain bag --help')"};
    pst_args_t a;
    int parsed = pst_args_parse(&a, &spec, argc, argv);
    if (parsed != PST_ARGS_RUN)
        return parsed;
    if (pst_args_to_plan(&a, &o->plan, "bag: no CONFIG file given (see 'pstrain bag --help')"))
        return 2;
    return check_bag_opts(o);
}

int pst_cmd_bag(int argc, char **argv)
{
    pst_bag_opts_t o;
    int parsed = parse_bag_args(&o, argc, argv);
    return parsed == PST_ARGS_RUN ? pst_bag_run(&o) : pst_args_status(parsed);
}
