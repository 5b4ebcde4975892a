/* pstrain fed: argument parsing, the simulated federated run in this process, and key pairs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/plan.h"
#include "cli/cluster.h"
#include "cli/fed.h"
#include "cli/fedsim.h"
#include "cli/session.h"
#include "common/fedkeys.h"
#include "common/log.h"

void pst_usage_fed(FILE *out)
{
    fprintf(out,
            "usage: pstrain fed simulate CONFIG.yaml [--set KEY=VALUE]... [--out DIR]\n"
            "       pstrain fed keygen PREFIX\n\n"
            "Simulates federated learning in this process: the training rows of data.train are\n"
            "split into fed.sites sites (fed.split iid, or dirichlet with fed.alpha for sites\n"
            "with skewed class mixes). Each of fed.rounds rounds asks ceil(fed.fraction * sites)\n"
            "sites (at least fed.min_sites) to train fed.local_epochs epochs from the global\n"
            "model with the optimizer.* settings; the server combines their updates with\n"
            "fed.aggregator (fedavg, fedprox, fedadam, fedyogi, fedadagrad, median,\n"
            "trimmed_mean, krum, multi_krum). fed.dp.clip > 0 turns on DP-FedAvg, with the\n"
            "spent epsilon reported each round and fed.dp.epsilon_budget stopping the run.\n\n"
            "The run directory holds config.yaml, metrics.jsonl (a line per round: validation\n"
            "loss and metric, sites asked and answered, bytes each way, epsilon), report.json\n"
            "(test metrics of the final global model, totals, a fed section) and model.pst.\n\n"
            "options:\n"
            "  --set KEY=VALUE  override a configuration key (repeatable)\n"
            "  --out DIR        run directory (default runs/NAME-YYYYMMDD-HHMMSS)\n"
            "  -q, --quiet      only errors on stderr\n\n"
            "keygen writes a CURVE key pair: PREFIX.key (public and secret key, mode 0600; keep\n"
            "it on the machine that uses it) and PREFIX.pub (the public key alone, to hand to\n"
            "the other side), and prints the public key. It never overwrites either file.\n\n"
            "examples:\n"
            "  pstrain fed simulate examples/fed_fashion.yaml --set fed.split=dirichlet "
            "--set fed.alpha=0.1\n"
            "  pstrain fed keygen keys/site-a\n");
}

static int parse_fed_args(pst_train_args_t *a, int argc, char **argv)
{
    memset(a, 0, sizeof *a);
    pst_plan_args_t p = {0};
    for (int i = 2; i < argc; i++) {
        if (pst_is_help(argv[i])) {
            pst_usage_fed(stdout);
            return 1;
        }
        int used = pst_plan_common_arg(&p, argc, argv, i);
        if (!used) {
            pst_cli_error("fed: unknown, incomplete or unexpected argument '%s' (see 'pstrain fed "
                          "--help')",
                          argv[i]);
            return 2;
        }
        i += used - 1;
    }
    if (!p.config) {
        pst_cli_error("fed simulate: no CONFIG file given (see 'pstrain fed --help')");
        return 2;
    }
    a->config = p.config;
    a->n_sets = p.n_sets;
    memcpy(a->sets, p.sets, sizeof a->sets);
    a->out = p.out;
    a->quiet = p.quiet;
    return 0;
}

static int simulate(const pst_config_t *cfg, const pst_train_args_t *a)
{
    pst_session_t s;
    pst_err_t err = {0};
    int rc = pst_session_prepare(&s, cfg, true, &err);
    if (rc == PST_OK)
        rc = pst_fedsim_check_config(cfg, s.data.train, &err);
    if (rc == PST_OK)
        rc = pst_session_open_rundir(&s, a->out, &err);
    if (rc == PST_OK)
        rc = pst_fedsim_run(&s, &err);
    if (rc == PST_OK)
        rc = pst_session_finish(&s, &err);
    if (rc != PST_OK)
        pst_cli_error("%s", err.msg[0] ? err.msg : pst_strerror(rc));
    pst_session_fini(&s);
    return rc == PST_OK ? 0 : 1;
}

/* pstrain fed keygen PREFIX */
static int keygen(int argc, char **argv)
{
    if (argc == 3 && pst_is_help(argv[2])) {
        pst_usage_fed(stdout);
        return 0;
    }
    if (argc != 3 || argv[2][0] == '-') {
        pst_cli_error("fed keygen: give one PREFIX (writes PREFIX.key and PREFIX.pub; see "
                      "'pstrain fed --help')");
        return 2;
    }
    pst_fedkey_pair_t kp;
    pst_err_t err = {0};
    int rc = pst_fedkey_generate(&kp, &err);
    if (rc == PST_OK)
        rc = pst_fedkey_write(&kp, argv[2], &err);
    memset(kp.secret_key, 0, sizeof kp.secret_key);
    if (rc != PST_OK) {
        pst_cli_error("fed keygen: %s", err.msg[0] ? err.msg : pst_strerror(rc));
        return 1;
    }
    printf("wrote %s.key (secret, mode 0600) and %s.pub\npublic key: %s\n", argv[2], argv[2],
           kp.public_key);
    return 0;
}

int pst_cmd_fed(int argc, char **argv)
{
    if (argc < 2 || pst_is_help(argv[1])) {
        pst_usage_fed(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "keygen") == 0)
        return keygen(argc, argv);
    if (strcmp(argv[1], "simulate") != 0) {
        pst_cli_error("fed: unknown subcommand '%s' (simulate or keygen; serve and join are not "
                      "built yet)",
                      argv[1]);
        return 2;
    }
    pst_train_args_t a;
    int status = parse_fed_args(&a, argc, argv);
    if (status != 0)
        return status == 1 ? 0 : status;
    pst_config_t cfg;
    pst_err_t err = {0};
    int rc = pst_load_config(&cfg, a.config, a.sets, a.n_sets, &err);
    if (rc == PST_OK)
        rc = pst_config_validate(&cfg, &err);
    if (rc == PST_OK)
        rc = pst_fedsim_check_config(&cfg, NULL, &err);
    if (a.quiet)
        pst_log_set_level(PST_LOG_ERROR);
    if (rc != PST_OK) {
        pst_cli_error("%s", err.msg);
        pst_config_fini(&cfg);
        return 1;
    }
    status = simulate(&cfg, &a);
    pst_config_fini(&cfg);
    return status;
}
