/* pstrain eval, predict and info: argv of applying or describing a saved model, run by
 * app/score. */
#include <stdio.h>
#include <string.h>

#include "app/console.h"
#include "app/cost.h"
#include "app/score.h"
#include "cli/args.h"
#include "cli/cli.h"

void pst_usage_eval(FILE *out)
{
    fprintf(out, "usage: pstrain eval MODEL DATA [--set KEY=VALUE]... [--json FILE]\n\n"
                 "Scores MODEL (a model.pst from a run directory, or an ensemble) on the labelled "
                 "rows of DATA and\n"
                 "prints its metrics: accuracy, precision, recall, F1, specificity, log-loss and\n"
                 "the confusion matrix for classifiers; MSE, MAE and R^2 for regression.\n"
                 "A CSV file is matched to the model's input columns by name (order does not\n"
                 "matter, other columns are ignored and listed once, a missing one is an error\n"
                 "naming it) and streamed. Other data is read as the training data was\n"
                 "(data.format, data.target, ... from the configuration stored in MODEL); --set\n"
                 "overrides those keys, e.g.\n"
                 "--set data.test_labels=FILE for IDX labels.\n"
                 "A sparse model (model.type sparse_lr, fm, wide_deep) reads DATA with the format\n"
                 "and hashing stored in MODEL, streamed in chunks, and prints rows, ROC-AUC,\n"
                 "log-loss and calibration; --set does not apply to it.\n\n"
                 "options:\n"
                 "  --set KEY=VALUE  override a data.* key for reading DATA\n"
                 "  --json FILE      also write the metrics as JSON to FILE\n");
}

void pst_usage_predict(FILE *out)
{
    fprintf(out,
            "usage: pstrain predict MODEL DATA [-o FILE] [--id COL] [--set KEY=VALUE]...\n\n"
            "Writes MODEL's prediction for every row of DATA as CSV: a header, then per row\n"
            "the predicted label (in the data's own label values, text labels included)\n"
            "followed by one probability column per class, or the predicted value for\n"
            "regression. A CSV file is matched to the model's input columns by name: their\n"
            "order does not matter, other columns are ignored (and listed once), a missing one\n"
            "is an error naming it; no target column is needed, and the file is streamed in\n"
            "chunks. Other formats (and ensembles) are read as the training data was.\n"
            "A sparse model writes one click probability per row of DATA instead, in input\n"
            "order, one per line and no header (DATA streamed through the model's hashing).\n\n"
            "options:\n"
            "  -o FILE          write to FILE (atomically) instead of standard output\n"
            "  --id COL         copy column COL of DATA to the output's first column\n"
            "                   (default: data.id_column of the model's configuration)\n"
            "  --set KEY=VALUE  override a data.* key for reading DATA\n");
}

void pst_usage_info(FILE *out)
{
    fprintf(out, "usage: pstrain info MODEL [--params]\n"
                 "       pstrain info --cost MODEL [--data DATA]\n\n"
                 "Describes a model file: task, classes, layer stack, parameter count and a\n"
                 "checksum of the parameters; for an ensemble its method, voting, weights and\n"
                 "each member. --params also prints every parameter, one per line (%%.9g, exact\n"
                 "for float32), to compare models. A sparse model shows its type, input\n"
                 "hashing, nonzero rows, bias or deep stack, file size and a checksum of its\n"
                 "rows; --params prints each row as KEY VALUES... (then the deep parameters).\n"
                 "--cost measures a dense model as float and as int8 (quantised in memory when\n"
                 "the file is float, its activations calibrated on the timed rows): parameters,\n"
                 "bytes of the file, FLOPs per row, single-row latency p50/p99 and throughput\n"
                 "in batches of 256, on the first 2048 rows of DATA (read as the training data\n"
                 "was) or, without --data, on 256 rows of N(0, 1) values; and the share of zero\n"
                 "weights (a pruned model). Run it pinned to one core for stable figures.\n");
}

/* MODEL DATA [--set KEY=VALUE]... and -o FILE (predict) or --json FILE (eval). */
static int parse_apply_args(pst_score_opts_t *o, int argc, char **argv, bool predict)
{
    memset(o, 0, sizeof *o);
    const pst_args_opt_t eval_opts[] = {{"--json", .text = &o->json}, {NULL}};
    const pst_args_opt_t predict_opts[] = {
        {"-o", .text = &o->out}, {"--id", .text = &o->id}, {NULL}};
    pst_args_spec_t spec = {.usage = predict ? pst_usage_predict : pst_usage_eval,
                            .common = PST_ARGS_SET,
                            .opts = predict ? predict_opts : eval_opts,
                            .first = 1,
                            .max_positional = 2,
                            .unknown = "unknown or incomplete option '%s'",
                            .unexpected = "unexpected argument '%s'"};
    pst_args_t a;
    int parsed = pst_args_parse(&a, &spec, argc, argv);
    if (parsed != PST_ARGS_RUN)
        return parsed;
    if (a.n_positional < 2) {
        spec.usage(stderr);
        return 2;
    }
    o->model = a.positional[0];
    o->data = a.positional[1];
    memcpy(o->sets, a.sets, (size_t)a.n_sets * sizeof a.sets[0]);
    o->n_sets = a.n_sets;
    return PST_ARGS_RUN;
}

int pst_cmd_eval(int argc, char **argv)
{
    pst_score_opts_t o;
    int parsed = parse_apply_args(&o, argc, argv, false);
    return parsed == PST_ARGS_RUN ? pst_score_eval(&o) : pst_args_status(parsed);
}

int pst_cmd_predict(int argc, char **argv)
{
    pst_score_opts_t o;
    int parsed = parse_apply_args(&o, argc, argv, true);
    return parsed == PST_ARGS_RUN ? pst_score_predict(&o) : pst_args_status(parsed);
}

static int info_cost(const char *model, const char *data, bool cost, bool params)
{
    if (params || !cost) {
        pst_app_error("info: %s", params ? "--cost and --params do not go together"
                                         : "--data goes with --cost");
        return 2;
    }
    pst_cost_opts_t o = {.model = model, .data = data};
    pst_err_t err = {0};
    if (pst_cost_report(&o, stdout, &err) != PST_OK) {
        pst_app_error("%s", err.msg);
        return 1;
    }
    return 0;
}

int pst_cmd_info(int argc, char **argv)
{
    bool params = false, cost = false;
    const char *data = NULL;
    const pst_args_opt_t opts[] = {{"--params", .flag = &params},
                                   {"--cost", .flag = &cost},
                                   {"--data", .text = &data},
                                   {NULL}};
    pst_args_spec_t spec = {.usage = pst_usage_info,
                            .opts = opts,
                            .first = 1,
                            .max_positional = 1,
                            .unknown = "info: unexpected argument '%s'"};
    pst_args_t a;
    int parsed = pst_args_parse(&a, &spec, argc, argv);
    if (parsed != PST_ARGS_RUN)
        return pst_args_status(parsed);
    if (a.n_positional < 1) {
        pst_usage_info(stderr);
        return 2;
    }
    if (cost || data)
        return info_cost(a.positional[0], data, cost, params);
    return pst_score_info(a.positional[0], params);
}
