/* pstrain sweep: argv of a hyperparameter search, run by app/sweep/sweeprun. */
#include <stdio.h>

#include "app/console.h"
#include "app/sweep/sweeprun.h"
#include "cli/args.h"
#include "cli/cli.h"

void pst_usage_sweep(FILE *out)
{
    fprintf(
        out,
        "usage: pstrain sweep SWEEP.yaml [--set KEY=VALUE]... [--out DIR | --resume DIR]\n\n"
        "Searches hyperparameters. SWEEP.yaml names a base training config, a method (grid,\n"
        "random, hyperband, tpe), the metric to optimise (val.accuracy, val.loss,\n"
        "val.f1_macro, ...) and a search space:\n\n"
        "  base: examples/fashion_mlp.yaml\n"
        "  method: hyperband            # grid | random | hyperband (asynchronous halving) | tpe\n"
        "  metric: val.accuracy\n"
        "  trials: 27                   # random, hyperband, tpe\n"
        "  hyperband: {min_epochs: 1, max_epochs: 9, eta: 3}   # or rungs: (any method)\n"
        "  # tpe: {startup_trials: 10, candidates: 24, gamma: 0.1, multivariate: false}\n"
        "  # pruner: median             # or {rule: median, startup_trials: 5}; default asha\n"
        "  # keep_models: 5             # top_models/trial_T.pst of the 5 best (default 1)\n"
        "  space:\n"
        "    optimizer.lr: {log_uniform: [1.0e-4, 1.0e-2]}\n"
        "    model.dropout: {uniform: [0.0, 0.5], grid: 3}\n"
        "    train.batch_size: {int: [32, 256]}\n"
        "    model.hidden: {choice: [\"[128]\", \"[256, 128]\"]}\n"
        "    optimizer.momentum: {uniform: [0.8, 0.99], when: {optimizer.name: [momentum]}}\n\n"
        "Every trial trains on the base config's training split and is scored on its\n"
        "validation split. Hyperband starts each trial at min_epochs and promotes the best\n"
        "1/eta at every rung (retrained to the rung's epochs); the rest stop. rungs: gives any\n"
        "method the same rungs; pruner: median lets a trial go on from a rung when its result\n"
        "is at least the median of those recorded there. tpe proposes each trial from the\n"
        "results so far (a tree-structured Parzen estimator; random for the first\n"
        "startup_trials), seeded: the same seed gives the same trials in a local run. Under\n"
        "mpirun, trials go to worker groups (cluster.groups) as they free up, and each task's\n"
        "model namespace is dropped from the servers when it ends.\n\n"
        "options:\n"
        "  --set KEY=VALUE  override a key of the base config\n"
        "  --out DIR        run directory (default runs/NAME-YYYYMMDD-HHMMSS); an existing\n"
        "                   non-empty DIR is refused (--force writes into it)\n"
        "  --resume DIR     continue an interrupted sweep in DIR without rerunning finished\n"
        "                   trials (the same SWEEP.yaml)\n\n"
        "Writes sweep_results.csv and sweep_results.json (parameters, metric per rung, final\n"
        "metric, epochs, state of every trial), best_config.yaml (ready to train),\n"
        "best_model.pst (the best job's trained model), val_rows.txt (the scored rows of\n"
        "data.train) and report.json (sweep.best, sweep.top, epochs spent; under mpirun\n"
        "cluster.tasks_per_second, each group's idle time, the ranks' peak memory). Each\n"
        "finished job prints a line with the metric, the trial's state and its values; a\n"
        "table of the top trials ends the run.\n");
}

static int parse_sweep_args(pst_sweeprun_opts_t *o, int argc, char **argv)
{
    *o = (pst_sweeprun_opts_t){0};
    pst_args_spec_t spec = {
        .usage = pst_usage_sweep,
        .common = PST_ARGS_SET | PST_ARGS_OUT | PST_ARGS_RESUME | PST_ARGS_QUIET,
        .first = 1,
        .max_positional = 1,
        .unknown = "sweep: unknown or incomplete option '%s' (see 'pstrain sweep --help')"};
    pst_args_t a;
    int parsed = pst_args_parse(&a, &spec, argc, argv);
    if (parsed != PST_ARGS_RUN)
        return parsed;
    pst_args_to_plan(&a, &o->plan, NULL);
    o->plan.config = NULL;
    o->sweep_path = a.positional[0];
    o->resume = a.resume;
    if (!o->sweep_path) {
        pst_app_error("sweep: no SWEEP.yaml given (see 'pstrain sweep --help')");
        return 2;
    }
    if (o->resume && o->plan.out) {
        pst_app_error("sweep: --resume continues in its own directory; drop --out");
        return 2;
    }
    if (o->resume) {
        o->plan.out = o->resume;
        o->plan.force = true; /* resuming writes into the sweep's own directory */
    }
    return PST_ARGS_RUN;
}

int pst_cmd_sweep(int argc, char **argv)
{
    pst_sweeprun_opts_t o;
    int parsed = parse_sweep_args(&o, argc, argv);
    return parsed == PST_ARGS_RUN ? pst_sweeprun_run(&o) : pst_args_status(parsed);
}
