/* pstrain embed: argv of the projector export, run by app/embed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/console.h"
#include "app/embed.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "common/numparse.h"

void pst_usage_embed(FILE *out)
{
    fprintf(out,
            "usage: pstrain embed MODEL DATA --layer N [--out DIR] [--set KEY=VALUE]...\n\n"
            "Runs every row of DATA (read and preprocessed as the model's training data was)\n"
            "through the model's layers 0..N and writes the output of layer N, with each row's\n"
            "label and the model's prediction, as TensorBoard projector files: tensors.tsv (a\n"
            "row of values per data row), metadata.tsv (label, predicted) and\n"
            "projector_config.pbtxt. Open them with TensorBoard's projector (tensorboard\n"
            "--logdir DIR), or load the two TSV files into projector.tensorflow.org.\n"
            "'pstrain info MODEL' lists the layers.\n\n"
            "options:\n"
            "  --layer N        0-based index of the layer whose output is the embedding\n"
            "  --out DIR        where the files go (default: MODEL's directory/projector)\n"
            "  --set KEY=VALUE  a data.* key for reading DATA (repeatable)\n");
}

static int parse_layer(void *ctx, const char *name, const char *value)
{
    long v;
    if (pst_parse_long(value, 0, 100000, &v) != PST_OK) {
        pst_app_error("embed: %s '%s' is not a layer index", name, value);
        return 2;
    }
    *(int *)ctx = (int)v;
    return 0;
}

int pst_cmd_embed(int argc, char **argv)
{
    pst_embed_opts_t o = {.layer = -1};
    const pst_args_opt_t opts[] = {{"--layer", NULL, NULL, parse_layer}, {NULL}};
    pst_args_spec_t spec = {.usage = pst_usage_embed,
                            .common = PST_ARGS_SET | PST_ARGS_OUT,
                            .opts = opts,
                            .ctx = &o.layer,
                            .first = 1,
                            .max_positional = 2,
                            .unknown = "embed: unknown or incomplete option '%s' (see 'pstrain "
                                       "embed --help')",
                            .unexpected = "embed: unexpected argument '%s'"};
    pst_args_t a;
    int parsed = pst_args_parse(&a, &spec, argc, argv);
    if (parsed != PST_ARGS_RUN)
        return pst_args_status(parsed);
    if (a.n_positional < 2 || o.layer < 0) {
        pst_app_error("embed: needs MODEL, DATA and --layer N (see 'pstrain embed --help')");
        return 2;
    }
    o.model = a.positional[0];
    o.data = a.positional[1];
    o.out = a.out;
    memcpy(o.sets, a.sets, (size_t)a.n_sets * sizeof a.sets[0]);
    o.n_sets = a.n_sets;
    return pst_embed_run(&o);
}
