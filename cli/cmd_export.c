/* pstrain export: argv of writing a saved model as ONNX, run by app/export. */
#include <stdio.h>

#include "app/console.h"
#include "app/export.h"
#include "cli/args.h"
#include "cli/cli.h"

void pst_usage_export(FILE *out)
{
    fprintf(out,
            "usage: pstrain export MODEL -o FILE.onnx\n\n"
            "Writes MODEL (a dense model.pst: linear, logistic or softmax regression, an\n"
            "MLP, a convolutional or a recurrent network) as one ONNX graph (opset 13, IR\n"
            "version 7) that turns raw rows into predictions: the model's fitted\n"
            "preprocessing (pixel scaling, imputation of missing values, standard or min-max\n"
            "scaling, the feature subset) as ONNX operators, then its layers, every kind:\n"
            "Gemm, Conv, MaxPool, AveragePool, GlobalAveragePool, BatchNormalization with\n"
            "the running statistics, LSTM, GRU and the activations; dropout is the identity\n"
            "at inference. An image model takes its images as flat rows (N, C*H*W),\n"
            "reshaped inside the graph; a windowed model (data.window) one window per row,\n"
            "(N, window * step columns), the steps in time order. An ensemble file (bag,\n"
            "stack) becomes every member's graph, then the soft or hard vote or the meta\n"
            "model.\n"
            "The file is written atomically.\n\n"
            "inputs, when every column is a number or a boolean:\n"
            "  input          float (N, n_inputs): a row's feature columns in the training\n"
            "                 file's order, the target left out, as read; NaN for missing,\n"
            "                 a boolean as 1 or 0\n"
            "inputs, when a CSV model has a categorical column: one per column, named after it\n"
            "  numeric column     float (N, 1): the number, NaN when missing\n"
            "  boolean column     float (N, 1): 1 (true/yes/t/y) or 0, NaN when missing\n"
            "  categorical column string (N, 1): the text as read, \"\" when missing; a value\n"
            "                     not seen in training goes to the \"other\" slot (one-hot)\n"
            "                     or code 0 (ordinal)\n"
            "  The fitted one-hot and ordinal encodings and outlier clipping are operators in\n"
            "  the graph. A hashed categorical column (data.high_cardinality: hash) or an\n"
            "  expanded date column (data.dates: expand) has no ONNX form: such a model is\n"
            "  refused naming the column (retrain with data.dates: drop, or one-hot/ordinal).\n"
            "outputs (classification):\n"
            "  label          int64 (N) the predicted class in the data's label values\n"
            "                 (double (N) when a label value is not an integer, string (N)\n"
            "                 for text labels)\n"
            "  probabilities  float (N, n_classes) one column per class, in label order\n"
            "outputs (regression):\n"
            "  value          float (N, 1) the predicted value\n\n"
            "They match 'pstrain predict MODEL DATA'. The file's metadata holds feature_names\n"
            "(a JSON array of the input's columns), target, task and, for an ensemble, its\n"
            "method. A sparse model (sparse_lr, fm, wide_deep) is refused.\n\n"
            "options:\n"
            "  -o FILE  the ONNX file to write (required)\n");
}

int pst_cmd_export(int argc, char **argv)
{
    pst_export_opts_t o = {0};
    const pst_args_opt_t opts[] = {{"-o", .text = &o.out}, {NULL}};
    pst_args_spec_t spec = {.usage = pst_usage_export,
                            .opts = opts,
                            .first = 1,
                            .max_positional = 1,
                            .unknown = "export: unknown or incomplete option '%s'",
                            .unexpected = "export: unexpected argument '%s'"};
    pst_args_t a;
    int parsed = pst_args_parse(&a, &spec, argc, argv);
    if (parsed != PST_ARGS_RUN)
        return pst_args_status(parsed);
    if (a.n_positional < 1 || !o.out) {
        pst_app_error("export: %s", a.n_positional < 1 ? "MODEL is missing" : "-o FILE is missing");
        pst_usage_export(stderr);
        return 2;
    }
    o.model = a.positional[0];
    pst_err_t err = {0};
    int rc = pst_export_onnx(&o, &err);
    if (rc != PST_OK) {
        pst_app_error("%s", err.msg[0] ? err.msg : pst_strerror(rc));
        return 1;
    }
    return 0;
}
