/* pstrain train: argv of a training run, run by app/trainjob. */
#include <stdio.h>
#include <string.h>

#include "app/console.h"
#include "app/trainjob.h"
#include "cli/args.h"
#include "cli/cli.h"

void pst_usage_train(FILE *out)
{
    fprintf(out,
            "usage: pstrain train CONFIG.yaml [--set KEY=VALUE]... [--out DIR] [--resume DIR]\n\n"
            "Trains the model CONFIG describes and writes a run directory holding config.yaml\n"
            "(every key, resolved), metrics.jsonl (a line per epoch), report.json (final\n"
            "metrics and timings) and model.pst (the model, for 'pstrain eval' and 'predict').\n\n"
            "Run plainly it trains in this process. Under mpirun the first cluster.servers ranks\n"
            "become parameter servers and the rest train on their share of the rows:\n"
            "  mpirun -np 3 pstrain train CONFIG --set cluster.servers=1\n\n"
            "options:\n"
            "  --set KEY=VALUE  override a configuration key (repeatable), e.g.\n"
            "                   --set optimizer.lr=0.01 --set model.hidden=[64,32]\n"
            "  --out DIR        run directory (default runs/NAME-YYYYMMDD-HHMMSS); an existing\n"
            "                   non-empty DIR is refused\n"
            "  --force          write into an existing --out DIR all the same\n"
            "  --resume DIR     distributed runs: restart from the last complete checkpoint in\n"
            "                   DIR (the run directory of an earlier run; never created)\n"
            "  --resume auto    with --out DIR: resume DIR's run when it holds a checkpoint,\n"
            "                   else start it there (for a job rerun after a failure)\n"
            "  -q, --quiet      only errors and the final summary\n"
            "  -v, --verbose    also the setup and parameter-server messages (info level)\n"
            "  --progress MODE  per-epoch output: lines, bar, none, or auto (a bar on a\n"
            "                   terminal); the same as --set train.progress=MODE\n\n"
            "'pstrain config' lists every key with its default and meaning.\n");
}

static int parse_train_args(pst_train_args_t *t, int argc, char **argv)
{
    pst_args_spec_t spec = {
        .usage = pst_usage_train,
        .common = PST_ARGS_SET | PST_ARGS_OUT | PST_ARGS_RESUME | PST_ARGS_QUIET,
        .first = 1,
        .max_positional = 1,
        .unknown = "train: unknown or incomplete option '%s' (see 'pstrain train --help')",
        .unexpected = "train: unexpected argument '%s'"};
    pst_args_t a;
    int parsed = pst_args_parse(&a, &spec, argc, argv);
    if (parsed != PST_ARGS_RUN)
        return parsed;
    memset(t, 0, sizeof *t);
    t->config = a.positional[0];
    memcpy(t->sets, a.sets, (size_t)a.n_sets * sizeof a.sets[0]);
    t->n_sets = a.n_sets;
    t->out = a.out;
    t->resume = a.resume;
    t->quiet = a.quiet;
    t->verbose = a.verbose;
    t->force = a.force;
    if (!t->config) {
        pst_app_error("train: no CONFIG file given (see 'pstrain train --help')");
        return 2;
    }
    return PST_ARGS_RUN;
}

int pst_cmd_train(int argc, char **argv)
{
    pst_train_args_t t;
    int parsed = parse_train_args(&t, argc, argv);
    return parsed == PST_ARGS_RUN ? pst_trainjob_run(&t) : pst_args_status(parsed);
}
