/* pstrain explain: argv of explaining a saved model on a data file, run by app/explain. */
#include <stdio.h>
#include <string.h>

#include "app/console.h"
#include "app/explain/explain.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "common/numparse.h"

void pst_usage_explain(FILE *out)
{
    fprintf(out,
            "usage: pstrain explain MODEL DATA [-o DIR] [--repeats N] [--rows N]\n"
            "                       [--method auto|ig|linear|kernel_shap] [--background N]\n"
            "                       [--seed S] [--steps N] [--coalitions N]\n"
            "                       [--metric auto|accuracy|log_loss|mse] [--id COL]\n"
            "                       [--set KEY=VALUE]...\n\n"
            "Explains MODEL (a dense model.pst or an ensemble file) on the rows of DATA, read\n"
            "as eval reads them (without labels: attributions only). Inputs are the model's\n"
            "named columns (a CSV column with all its one-hot features) or its features.\n"
            "Permutation importance: each column shuffled --repeats times over all rows; the\n"
            "worsening of the metric (log-loss for classifiers and mse for regression by\n"
            "default, or the drop in accuracy), its mean and standard deviation, in\n"
            "importance.csv and printed most important first.\n"
            "Attributions of the first --rows rows, one column per input, in attributions.csv\n"
            "(with the id column when the data has one): linear gives the exact\n"
            "w_i (x_i - baseline_i) of a one-layer model, ig integrated gradients through\n"
            "the layers, both of the logit (a binary model's log-odds, a regression's value)\n"
            "from the training mean the model file holds (else the mean of --background rows);\n"
            "kernel_shap the Shapley values over --background rows drawn from DATA, for any\n"
            "model or ensemble (of an ensemble's probability). auto: linear, ig or\n"
            "kernel_shap by model. The worst completeness error (|sum - (f(x) - f(base))|)\n"
            "is printed. explain.html plots both; a report.html in DIR is written again with\n"
            "the importance.\n\n"
            "options:\n"
            "  -o DIR            write the files into DIR (default: MODEL's directory)\n"
            "  --repeats N       shuffles per column (default 5)\n"
            "  --rows N          rows to attribute, 0 = all (default 100)\n"
            "  --method M        attribution method (default auto)\n"
            "  --background N    background rows (default 50)\n"
            "  --seed S          seed of the shuffles and the background (default 1)\n"
            "  --steps N         ig: points on the path, 1..256 (default 50)\n"
            "  --coalitions N    kernel_shap: most coalitions per row; all when 2^M - 2 fit\n"
            "                    (default 2048)\n"
            "  --metric M        permutation importance metric (default auto)\n"
            "  --id COL          copy column COL of DATA (default: data.id_column)\n"
            "  --set KEY=VALUE   override a data.* key for reading DATA\n");
}

typedef struct cli_ctx {
    pst_explain_opts_t *o;
} cli_ctx_t;

static int parse_count(void *ctx, const char *name, const char *value)
{
    pst_explain_opts_t *o = ((cli_ctx_t *)ctx)->o;
    long v;
    long min = strcmp(name, "--rows") == 0 ? 0 : 1;
    /* bounds that keep every buffer modest: the shuffles, background rows and coalitions are
     * held in memory at once */
    long max = strcmp(name, "--rows") == 0         ? 100000000
               : strcmp(name, "--coalitions") == 0 ? 1000000
               : strcmp(name, "--steps") == 0      ? 256
                                                   : 100000;
    if (pst_parse_long(value, min, max, &v) != PST_OK) {
        pst_app_error("explain: %s '%s' is not a whole number in %ld..%ld", name, value, min, max);
        return 2;
    }
    if (strcmp(name, "--repeats") == 0)
        o->repeats = (int)v;
    else if (strcmp(name, "--rows") == 0)
        o->attr.rows = (size_t)v;
    else if (strcmp(name, "--background") == 0)
        o->attr.background = (int)v;
    else if (strcmp(name, "--steps") == 0)
        o->attr.steps = (int)v;
    else
        o->attr.coalitions = (int)v;
    return 0;
}

static int parse_seed(void *ctx, const char *name, const char *value)
{
    if (pst_parse_u64(value, &((cli_ctx_t *)ctx)->o->attr.seed) != PST_OK) {
        pst_app_error("explain: %s '%s' is not a whole number", name, value);
        return 2;
    }
    return 0;
}

static int parse_method(void *ctx, const char *name, const char *value)
{
    if (pst_attr_method_parse(value, &((cli_ctx_t *)ctx)->o->attr.method) != PST_OK) {
        pst_app_error("explain: unknown %s '%s' (auto, ig, linear or kernel_shap)", name, value);
        return 2;
    }
    return 0;
}

static int parse_metric(void *ctx, const char *name, const char *value)
{
    if (pst_importance_metric_parse(value, &((cli_ctx_t *)ctx)->o->metric) != PST_OK) {
        pst_app_error("explain: unknown %s '%s' (auto, accuracy, log_loss or mse)", name, value);
        return 2;
    }
    return 0;
}

int pst_cmd_explain(int argc, char **argv)
{
    pst_explain_opts_t o;
    pst_explain_opts_defaults(&o);
    cli_ctx_t ctx = {&o};
    const pst_args_opt_t opts[] = {{"-o", .text = &o.out_dir},
                                   {"--id", .text = &o.id},
                                   {"--repeats", .parse = parse_count},
                                   {"--rows", .parse = parse_count},
                                   {"--background", .parse = parse_count},
                                   {"--steps", .parse = parse_count},
                                   {"--coalitions", .parse = parse_count},
                                   {"--seed", .parse = parse_seed},
                                   {"--method", .parse = parse_method},
                                   {"--metric", .parse = parse_metric},
                                   {NULL}};
    pst_args_spec_t spec = {.usage = pst_usage_explain,
                            .common = PST_ARGS_SET,
                            .opts = opts,
                            .ctx = &ctx,
                            .first = 1,
                            .max_positional = 2,
                            .unknown = "explain: unknown or incomplete option '%s'",
                            .unexpected = "explain: unexpected argument '%s'"};
    pst_args_t a;
    int parsed = pst_args_parse(&a, &spec, argc, argv);
    if (parsed != PST_ARGS_RUN)
        return pst_args_status(parsed);
    if (a.n_positional < 2) {
        pst_usage_explain(stderr);
        return 2;
    }
    o.model = a.positional[0];
    o.data = a.positional[1];
    memcpy(o.sets, a.sets, (size_t)a.n_sets * sizeof a.sets[0]);
    o.n_sets = a.n_sets;
    return pst_explain_run(&o);
}
