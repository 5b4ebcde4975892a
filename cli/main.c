/* pstrain: entry point and subcommand dispatch. */
#include <stdio.h>
#include <string.h>

#include "app/console.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/datagen.h"
#include "cli/fed.h"
#include "cli/quantize.h"
#include "common/config.h"

#define PSTRAIN_VERSION "0.1.0"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    void (*usage)(FILE *out);
    const char *summary;
} command_t;

static const command_t commands[] = {
    {"train", pst_cmd_train, pst_usage_train,
     "train a model from a YAML config (locally, or under mpirun with parameter servers)"},
    {"eval", pst_cmd_eval, pst_usage_eval, "score a saved model on a labelled data file"},
    {"predict", pst_cmd_predict, pst_usage_predict, "write a saved model's predictions as CSV"},
    {"cv", pst_cmd_cv, pst_usage_cv, "k-fold cross-validation (repeated, stratified, grouped)"},
    {"bag", pst_cmd_bag, pst_usage_bag, "bagging ensemble: members on bootstrap samples, voted"},
    {"stack", pst_cmd_stack, pst_usage_stack,
     "stacking, blending or voting ensemble of base models given as overrides"},
    {"sweep", pst_cmd_sweep, pst_usage_sweep, "hyperparameter search: grid, random, hyperband"},
    {"datagen", pst_cmd_datagen, pst_usage_datagen,
     "write synthetic data: click logs drawn from known true weights"},
    {"fed", pst_cmd_fed, pst_usage_fed, "federated rounds over simulated sites of one dataset"},
    {"supervise", pst_cmd_supervise, pst_usage_supervise,
     "rerun a failed job (mpirun ... --resume auto) until it succeeds"},
    {"info", pst_cmd_info, pst_usage_info, "describe a model file (layers, classes, parameters)"},
    {"export", pst_cmd_export, pst_usage_export,
     "write a dense model or ensemble and its preprocessing as ONNX (rows in, predictions out)"},
    {"report", pst_cmd_report, pst_usage_report,
     "an HTML page of run directories: curves, metrics, confusion matrix, folds, trials"},
    {"embed", pst_cmd_embed, pst_usage_embed,
     "a layer's activations over a data file as TensorBoard projector files"},
    {"explain", pst_cmd_explain, pst_usage_explain,
     "permutation importance and per-row attributions of a saved model on a data file"},
    {"drift", pst_cmd_drift, pst_usage_drift,
     "compare a data file with a model's training distributions (PSI, KS, chi-square)"},
    {"quantize", pst_cmd_quantize, pst_usage_quantize,
     "post-training int8 quantisation of a dense model, calibrated on sample rows"},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out)
{
    fprintf(out, "usage: pstrain COMMAND [ARGS...]\n\n"
                 "pstrain trains machine-learning models on one machine or many: under mpirun the\n"
                 "first ranks hold the model in parameter servers and the others train on their\n"
                 "share of the data.\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "  %-9s %s\n", "config", "print every configuration key with its default");
    fprintf(out, "\nexamples:\n"
                 "  pstrain train examples/fashion_mlp.yaml\n"
                 "  mpirun -np 3 pstrain train examples/fashion_mlp.yaml --set cluster.servers=1\n"
                 "  pstrain eval runs/fashion-mlp-*/model.pst data.csv --set data.target=label\n\n"
                 "'pstrain COMMAND --help' explains a command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (pst_is_help(name) || strcmp(name, "help") == 0) {
        if (argc > 2)
            for (size_t i = 0; i < N_COMMANDS; i++)
                if (strcmp(argv[2], commands[i].name) == 0)
                    return commands[i].usage(stdout), 0;
        usage(stdout);
        return 0;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        printf("pstrain %s\n", PSTRAIN_VERSION);
        return 0;
    }
    if (strcmp(name, "config") == 0) {
        pst_config_write_reference(stdout);
        return 0;
    }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(name, commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    pst_app_error("unknown command '%s' (try 'pstrain --help')", name);
    return 2;
}
