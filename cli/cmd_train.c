/* pstrain train: argument parsing, configuration, then a local or distributed run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "app/console.h"
#include "app/mpi/cluster.h"
#include "app/session.h"
#include "app/sparse/sparse_train.h"
#include "common/log.h"

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
            "  --out DIR        run directory (default runs/NAME-YYYYMMDD-HHMMSS)\n"
            "  --resume DIR     distributed runs: restart from the last complete checkpoint in\n"
            "                   DIR (the checkpoint directory of an earlier run)\n"
            "  -q, --quiet      only errors on stderr\n\n"
            "'pstrain config' lists every key with its default and meaning.\n");
}

static int parse_train_args(pst_train_args_t *a, int argc, char **argv)
{
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        bool has_value = i + 1 < argc;
        if (pst_is_help(arg)) {
            pst_usage_train(stdout);
            return 1;
        } else if (strcmp(arg, "--set") == 0 && has_value) {
            if (a->n_sets >= PST_MAX_SETS) {
                pst_app_error("too many --set options (at most %d)", PST_MAX_SETS);
                return 2;
            }
            a->sets[a->n_sets++] = argv[++i];
        } else if (strncmp(arg, "--set=", 6) == 0 && a->n_sets < PST_MAX_SETS) {
            a->sets[a->n_sets++] = arg + 6;
        } else if (strcmp(arg, "--out") == 0 && has_value) {
            a->out = argv[++i];
        } else if (strcmp(arg, "--resume") == 0 && has_value) {
            a->resume = argv[++i];
        } else if (strcmp(arg, "-q") == 0 || strcmp(arg, "--quiet") == 0) {
            a->quiet = true;
        } else if (arg[0] == '-') {
            pst_app_error("train: unknown or incomplete option '%s' (see 'pstrain train --help')",
                          arg);
            return 2;
        } else if (!a->config) {
            a->config = arg;
        } else {
            pst_app_error("train: unexpected argument '%s'", arg);
            return 2;
        }
    }
    if (!a->config) {
        pst_app_error("train: no CONFIG file given (see 'pstrain train --help')");
        return 2;
    }
    return 0;
}

static int train_local(const pst_config_t *cfg, const pst_train_args_t *a)
{
    if (pst_shardload_is_pattern(cfg->data.train)) {
        pst_app_error("data.train names one file per worker (%s); run under mpirun",
                      PST_WORKER_PATTERN);
        return 2;
    }
    if (a->resume) {
        pst_app_error("--resume restarts a distributed run from its servers' checkpoints; run "
                      "it under mpirun");
        return 2;
    }
    pst_session_t s;
    pst_err_t err = {0};
    pst_train_hooks_t hooks = {0};
    int rc = pst_session_prepare(&s, cfg, true, &err);
    if (rc == PST_OK)
        rc = pst_session_open_rundir(&s, a->out, &err);
    if (rc == PST_OK) {
        pst_session_hooks(&s, &hooks);
        rc = pst_session_train(&s, &hooks, &err);
    }
    if (rc == PST_OK)
        rc = pst_session_finish(&s, &err);
    if (rc != PST_OK)
        pst_app_error("%s", err.msg[0] ? err.msg : pst_strerror(rc));
    pst_session_fini(&s);
    return rc == PST_OK ? 0 : 1;
}

int pst_cmd_train(int argc, char **argv)
{
    pst_train_args_t a;
    int status = parse_train_args(&a, argc, argv);
    if (status != 0)
        return status == 1 ? 0 : status;
    if (a.quiet)
        pst_log_set_level(PST_LOG_ERROR);
    pst_config_t cfg;
    pst_err_t err = {0};
    int rc = pst_load_config(&cfg, a.config, a.sets, a.n_sets, &err);
    if (rc == PST_OK)
        rc = pst_config_validate(&cfg, &err);
    if (a.quiet)
        pst_log_set_level(PST_LOG_ERROR);
    if (rc != PST_OK) {
        if (pst_cluster_is_first_rank())
            pst_app_error("%s", err.msg);
        pst_config_fini(&cfg);
        return 1;
    }
    if (pst_cluster_launched())
        status = pst_cluster_train(&cfg, &a);
    else if (pst_sparse_train_selected(&cfg))
        status = pst_sparse_train_local(&cfg, a.out, a.resume);
    else
        status = train_local(&cfg, &a);
    pst_config_fini(&cfg);
    return status;
}
