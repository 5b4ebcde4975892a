/* pstrain stack: argv of a stacking, blending or voting ensemble, run by app/plan/stack. */
#include <stdio.h>
#include <stdlib.h>

#include "app/console.h"
#include "app/plan/stack.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "common/numparse.h"

void pst_usage_stack(FILE *out)
{
    fprintf(
        out,
        "usage: pstrain stack CONFIG --base OVERRIDES --base OVERRIDES [--base ...]\n"
        "                     [--method stacking|blending|soft_vote|hard_vote] [--folds K]\n"
        "                     [--holdout F] [--meta OVERRIDES] [--set KEY=VALUE]... [--out DIR]\n\n"
        "Combines base models, each CONFIG with its own ';'-separated KEY=VALUE overrides\n"
        "(e.g. --base 'model.hidden=[]' --base 'model.hidden=[64];optimizer.lr=0.01').\n"
        "data.train is split as 'pstrain train' splits it; the validation share joins the\n"
        "training rows.\n\n"
        "methods:\n"
        "  stacking   each base's K-fold out-of-fold probabilities on the training rows train\n"
        "             the meta model; the bases then refit on all training rows (default)\n"
        "  blending   the bases train on the training rows less a held-out share; the meta\n"
        "             model trains on their probabilities for the held-out rows\n"
        "  soft_vote  the bases train on all training rows; their probabilities are averaged\n"
        "  hard_vote  likewise, and the majority of their predicted classes wins\n\n"
        "options:\n"
        "  --base OVERRIDES  a base model (at least two; at most %d)\n"
        "  --meta OVERRIDES  the meta model on top of CONFIG and model.hidden=[],\n"
        "                    model.layers=[] (default: logistic regression)\n"
        "  --folds K         stacking folds (default 5)\n"
        "  --holdout F       blending: held-out share of the training rows (default 0.2)\n"
        "  --set KEY=VALUE   override a configuration key of every model\n"
        "  --out DIR         run directory (default runs/NAME-YYYYMMDD-HHMMSS); an existing\n"
        "                    non-empty DIR is refused\n"
        "  --force           write into an existing --out DIR all the same\n\n"
        "Writes report.json (stack.test: the ensemble's test metrics beside\n"
        "stack.bases[i].test), test_predictions.csv and model.pst, an ensemble file that\n"
        "'pstrain eval' and 'pstrain predict' apply like a model.\n",
        PST_STACK_MAX_BASES);
}

static int parse_method(void *ctx, const char *name, const char *value)
{
    if (pst_stack_method_parse(value, &((pst_stack_opts_t *)ctx)->method) == PST_OK)
        return 0;
    pst_app_error("stack: --method takes stacking, blending, soft_vote or hard_vote, not '%s'",
                  value);
    return 2;
}

static int parse_folds(void *ctx, const char *name, const char *value)
{
    long k;
    bool ok = pst_parse_decimal(value, &k) == PST_OK && k >= 2 && k <= 1000;
    ((pst_stack_opts_t *)ctx)->folds = ok ? (int)k : -1;
    return 0;
}

static int parse_holdout(void *ctx, const char *name, const char *value)
{
    double *holdout = &((pst_stack_opts_t *)ctx)->holdout;
    if (pst_parse_double(value, 0, holdout) != PST_OK)
        *holdout = -1;
    return 0;
}

static int parse_base(void *ctx, const char *name, const char *value)
{
    pst_stack_opts_t *o = ctx;
    if (o->n_bases == PST_STACK_MAX_BASES) {
        pst_app_error("stack: at most %d --base models", PST_STACK_MAX_BASES);
        return 2;
    }
    o->base[o->n_bases++] = value;
    return 0;
}

static int check_stack_opts(const pst_stack_opts_t *o)
{
    if (o->n_bases < 2) {
        pst_app_error("stack: give at least two base models with --base (see 'pstrain stack "
                      "--help')");
        return 2;
    }
    if (o->folds < 2) {
        pst_app_error("stack: --folds must be an integer of at least 2");
        return 2;
    }
    if (!(o->holdout > 0 && o->holdout < 1)) {
        pst_app_error("stack: --holdout takes a fraction in (0, 1)");
        return 2;
    }
    return PST_ARGS_RUN;
}

static int parse_stack_args(pst_stack_opts_t *o, int argc, char **argv)
{
    *o = (pst_stack_opts_t){.folds = 5, .holdout = 0.2};
    const pst_args_opt_t opts[] = {
        {"--method", .parse = parse_method},   {"--folds", .parse = parse_folds},
        {"--holdout", .parse = parse_holdout}, {"--base", .parse = parse_base},
        {"--meta", .text = &o->meta},          {NULL}};
    pst_args_spec_t spec = {
        .usage = pst_usage_stack,
        .common = PST_ARGS_SET | PST_ARGS_OUT | PST_ARGS_QUIET,
        .opts = opts,
        .ctx = o,
        .first = 1,
        .max_positional = 1,
        .unknown = "stack: unknown or incomplete option '%s' (see 'pstrain stack --help')"};
    pst_args_t a;
    int parsed = pst_args_parse(&a, &spec, argc, argv);
    if (parsed != PST_ARGS_RUN)
        return parsed;
    if (pst_args_to_plan(&a, &o->plan, "stack: no CONFIG file given (see 'pstrain stack --help')"))
        return 2;
    return check_stack_opts(o);
}

int pst_cmd_stack(int argc, char **argv)
{
    pst_stack_opts_t o;
    int parsed = parse_stack_args(&o, argc, argv);
    return parsed == PST_ARGS_RUN ? pst_stack_run(&o) : pst_args_status(parsed);
}
