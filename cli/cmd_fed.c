/* pstrain fed: simulate (in this process or under mpirun), serve, join and keygen. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "app/console.h"
#include "app/mpi/cluster.h"
#include "cli/fed.h"
#include "app/fed/fedconf.h"
#include "app/fed/fedjoin.h"
#include "app/fed/fedjoin_mpi.h"
#include "app/fed/fedserve.h"
#include "app/fed/fedsim.h"
#include "app/fed/fedsim_mpi.h"
#include "app/plan/plan.h"
#include "app/session.h"
#include "common/fed/fedkeys.h"
#include "common/log.h"

void pst_usage_fed(FILE *out)
{
    fprintf(
        out,
        "usage: pstrain fed simulate CONFIG.yaml [--set KEY=VALUE]... [--out DIR] [-q]\n"
        "       mpirun -np N pstrain fed simulate CONFIG.yaml [...]\n"
        "       pstrain fed serve CONFIG.yaml [--set KEY=VALUE]... [--out DIR] [-q]\n"
        "       pstrain fed join CONFIG.yaml --server tcp://HOST:PORT [--site ID] [--set ...]\n"
        "                        [--out DIR] [-q]\n"
        "       mpirun -np K pstrain fed join CONFIG.yaml --server tcp://HOST:PORT [...]\n"
        "       pstrain fed keygen PREFIX\n\n"
        "Federated learning: sites that cannot pool their data train one model; each trains on "
        "its\n"
        "own rows and sends only its update (local weights minus global weights). Every round the\n"
        "server asks ceil(fed.fraction * sites) sites (at least fed.min_sites), each trains\n"
        "fed.local_epochs epochs from the global model with the optimizer.* settings, and the\n"
        "server combines the updates with fed.aggregator (fedavg, fedprox, fedadam, fedyogi,\n"
        "fedadagrad, median, trimmed_mean, krum, multi_krum). A round closes when every asked "
        "site\n"
        "answered, or fed.min_responses answered and fed.wait_after_min seconds passed, or at\n"
        "fed.round_timeout; a site silent for fed.heartbeat_timeout no longer holds it. With\n"
        "fed.dp.clip > 0 updates are clipped and noised (DP-FedAvg), the spent epsilon is "
        "reported\n"
        "every round and fed.dp.epsilon_budget stops the run.\n\n"
        "simulate  splits the training rows of data.train into fed.sites sites (fed.split iid, or\n"
        "          dirichlet with fed.alpha). Alone it runs every site in this process; under\n"
        "          mpirun rank 0 serves and the other ranks play the sites over ZeroMQ, through\n"
        "          the same server and site code as a deployment (same results).\n"
        "serve     listens on fed.listen. Its data.* rows are the server's own: they fix the "
        "model's\n"
        "          inputs, classes and preprocessing (sent to every site as the contract), and "
        "score\n"
        "          the global model each round (validation) and at the end (test). Round 1 waits\n"
        "          for fed.sites sites, at most fed.start_timeout seconds. CURVE encryption with\n"
        "          fed.key (the server's key pair) admits only the keys in fed.allowed_keys (a\n"
        "          directory of SITE.pub files, or a file of 'KEY [SITE]' lines); fed.insecure:\n"
        "          true serves plaintext instead. Ctrl-C ends the run after writing its outputs.\n"
        "join      runs one site: data.train is its own data; the model, preprocessing and\n"
        "          training settings come from the server. With CURVE it needs fed.key (its key\n"
        "          pair) and fed.server_key (the server's .pub). A dropped connection is\n"
        "          re-established and the site rejoins at the next round. Its run directory gets\n"
        "          the final model.pst and a report.json (rounds, bytes, metrics on its rows).\n"
        "          Under mpirun the site is one job and still one site to the server: the first\n"
        "          cluster.servers ranks are its parameter servers, the others workers; worker 0\n"
        "          holds the connection and writes the run directory (report.json gains an mpi\n"
        "          section). Each round the W workers train the global weights together, each\n"
        "          on its rank-strided share of data.train with the contract's batch size b,\n"
        "          under BSP: the site trains like one process of batch W*b. The site's own\n"
        "          cluster.* and transport.* keys apply.\n"
        "keygen    writes a CURVE key pair: PREFIX.key (public and secret key, mode 0600; keep it\n"
        "          on the machine that uses it) and PREFIX.pub (hand it to the other side), and\n"
        "          prints the public key. It never overwrites either file.\n\n"
        "The server's run directory holds config.yaml, metrics.jsonl (a line per round: "
        "validation\n"
        "loss and metric, sites asked and answered, bytes each way raw and on the wire, epsilon),\n"
        "report.json (test metrics of the final global model, totals, a fed section) and\n"
        "model.pst. Updates travel in fed.codec (LZ4 over byte-shuffled floats by default;\n"
        "int8lz4 quantises to int8 first), the global weights in fed.down_codec.\n\n"
        "options:\n"
        "  --set KEY=VALUE  override a configuration key (repeatable; 'pstrain config' lists "
        "them)\n"
        "  --out DIR        run directory (default runs/NAME-YYYYMMDD-HHMMSS)\n"
        "  --server URL     join: the server, tcp://HOST:PORT (fed.server)\n"
        "  --site ID        join: this site's id (fed.site; default the host name)\n"
        "  -q, --quiet      only errors on stderr\n\n"
        "examples:\n"
        "  pstrain fed simulate examples/fed_fashion.yaml --set fed.split=dirichlet "
        "--set fed.alpha=0.1\n"
        "  mpirun -np 4 pstrain fed simulate examples/fed_fashion.yaml\n"
        "  pstrain fed keygen keys/server      # on the server\n"
        "  pstrain fed keygen hospital-a       # at the site: hospital-a.pub goes to the server's\n"
        "                                      # keys/allowed/, hospital-a.key stays at the site\n"
        "  pstrain fed serve fed.yaml --set fed.key=keys/server.key "
        "--set fed.allowed_keys=keys/allowed\n"
        "  pstrain fed join fed.yaml --server tcp://fed.example.org:7600 --site hospital-a \\\n"
        "      --set data.train=/data/a.csv --set fed.key=hospital-a.key "
        "--set fed.server_key=server.pub\n"
        "  mpirun -np 5 pstrain fed join fed.yaml --server tcp://fed.example.org:7600 "
        "--site hospital-b \\\n"
        "      --set data.train=/data/b.csv --set fed.key=hospital-b.key "
        "--set fed.server_key=server.pub\n");
}

typedef struct fed_args {
    pst_plan_args_t plan;
    const char *server, *site;
} fed_args_t;

/* Parses the options after `pstrain fed SUBCOMMAND`; 1 for --help, 2 for a usage error. */
static int parse_fed_args(fed_args_t *a, const char *sub, int argc, char **argv)
{
    memset(a, 0, sizeof *a);
    bool join = strcmp(sub, "join") == 0;
    for (int i = 2; i < argc; i++) {
        if (pst_is_help(argv[i])) {
            pst_usage_fed(stdout);
            return 1;
        }
        bool value = i + 1 < argc;
        if (join && value && strcmp(argv[i], "--server") == 0) {
            a->server = argv[++i];
            continue;
        }
        if (join && value && strcmp(argv[i], "--site") == 0) {
            a->site = argv[++i];
            continue;
        }
        int used = pst_plan_common_arg(&a->plan, argc, argv, i);
        if (!used) {
            pst_app_error("fed %s: unknown, incomplete or unexpected argument '%s' (see "
                          "'pstrain fed --help')",
                          sub, argv[i]);
            return 2;
        }
        i += used - 1;
    }
    if (!a->plan.config) {
        pst_app_error("fed %s: no CONFIG file given (see 'pstrain fed --help')", sub);
        return 2;
    }
    return 0;
}

/* ---- simulate ---- */

static int simulate(const pst_config_t *cfg, const fed_args_t *a)
{
    pst_session_t s;
    pst_err_t err = {0};
    int rc = pst_session_prepare(&s, cfg, true, &err);
    if (rc == PST_OK)
        rc = pst_fedsim_check_config(cfg, s.data.train, &err);
    if (rc == PST_OK)
        rc = pst_session_open_rundir(&s, a->plan.out, &err);
    if (rc == PST_OK)
        rc = pst_fedsim_run(&s, &err);
    if (rc == PST_OK)
        rc = pst_session_finish(&s, &err);
    if (rc != PST_OK)
        pst_app_error("%s", err.msg[0] ? err.msg : pst_strerror(rc));
    pst_session_fini(&s);
    return rc == PST_OK ? 0 : 1;
}

/* ---- serve ---- */

static pst_fedserve_t *serving; /* the server a signal stops */

static void on_signal(int sig)
{
    (void)sig;
    if (serving)
        pst_fedserve_stop(serving);
}

/* The server's key pair and the admitted site keys, unless fed.insecure. */
static int server_keys(const pst_config_t *cfg, pst_fedkey_pair_t *kp, pst_fedkey_list_t *allowed,
                       pst_err_t *err)
{
    if (cfg->fed.insecure) {
        pst_warn("fed.insecure: serving plaintext; updates and the model travel unencrypted and "
                 "any site may join");
        return PST_OK;
    }
    if (!cfg->fed.key[0] || !cfg->fed.allowed_keys[0])
        return pst_err_set(err, PST_EINVAL,
                           "fed.key and fed.allowed_keys: the server needs its key pair "
                           "(pstrain fed keygen) and the sites' public keys, or fed.insecure: "
                           "true on a trusted network");
    int rc = pst_fedkey_read_pair(cfg->fed.key, kp, err);
    if (rc == PST_OK)
        rc = pst_fedkey_list_load(allowed, cfg->fed.allowed_keys, err);
    return rc;
}

static int serve_session(pst_session_t *s, const fed_args_t *a, const pst_fedserve_net_t *net,
                         pst_err_t *err)
{
    pst_fedserve_t fs;
    int rc = pst_session_open_rundir(s, a->plan.out, err);
    if (rc == PST_OK)
        rc = pst_fedserve_open(&fs, s, net, err);
    if (rc != PST_OK)
        return rc;
    if (net->key)
        printf("fed server: listening on %s, public key %s, %zu site key(s) admitted\n",
               fs.endpoint, net->key->public_key, net->allowed->n);
    fflush(stdout);
    serving = &fs;
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    rc = pst_fedserve_run(&fs, err);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    serving = NULL;
    bool stopped = rc == PST_ESTATE;
    if (rc == PST_OK || stopped) {
        pst_err_t fin = {0};
        int frc = pst_session_finish(s, &fin);
        if (frc != PST_OK)
            rc = (*err = fin, frc);
    }
    pst_fedserve_close(&fs);
    return rc;
}

static int serve(const pst_config_t *cfg, const fed_args_t *a)
{
    pst_err_t err = {0};
    pst_fedkey_pair_t kp;
    pst_fedkey_list_t allowed = {0};
    pst_session_t s;
    memset(&s, 0, sizeof s);
    int rc = server_keys(cfg, &kp, &allowed, &err);
    if (rc == PST_OK)
        rc = pst_session_prepare(&s, cfg, true, &err);
    if (rc == PST_OK) {
        pst_fedserve_net_t net = {.endpoint = cfg->fed.listen,
                                  .key = cfg->fed.insecure ? NULL : &kp,
                                  .allowed = cfg->fed.insecure ? NULL : &allowed,
                                  .expected_sites = (int)cfg->fed.sites};
        rc = serve_session(&s, a, &net, &err);
    }
    memset(kp.secret_key, 0, sizeof kp.secret_key);
    if (rc != PST_OK)
        pst_app_error("%s%s", err.msg[0] ? err.msg : pst_strerror(rc),
                      rc == PST_ESTATE ? " (report.json and model.pst cover the rounds run)" : "");
    pst_fedkey_list_fini(&allowed);
    pst_session_fini(&s);
    return rc == PST_OK ? 0 : 1;
}

/* ---- keygen ---- */

static int keygen(int argc, char **argv)
{
    if (argc == 3 && pst_is_help(argv[2])) {
        pst_usage_fed(stdout);
        return 0;
    }
    if (argc != 3 || argv[2][0] == '-') {
        pst_app_error("fed keygen: give one PREFIX (writes PREFIX.key and PREFIX.pub; see "
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
        pst_app_error("fed keygen: %s", err.msg[0] ? err.msg : pst_strerror(rc));
        return 1;
    }
    printf("wrote %s.key (secret, mode 0600) and %s.pub\npublic key: %s\n", argv[2], argv[2],
           kp.public_key);
    return 0;
}

/* ---- dispatch ---- */

static int load_checked(pst_config_t *cfg, const fed_args_t *a)
{
    pst_err_t err = {0};
    int rc = pst_plan_config(cfg, &a->plan, &err);
    if (rc == PST_OK)
        rc = pst_fedconf_check(cfg, NULL, &err);
    if (a->plan.quiet)
        pst_log_set_level(PST_LOG_ERROR);
    if (rc != PST_OK && pst_cluster_is_first_rank())
        pst_app_error("%s", err.msg);
    return rc;
}

int pst_cmd_fed(int argc, char **argv)
{
    if (argc < 2 || pst_is_help(argv[1])) {
        pst_usage_fed(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "keygen") == 0)
        return keygen(argc, argv);
    bool sim = strcmp(sub, "simulate") == 0, srv = strcmp(sub, "serve") == 0,
         join = strcmp(sub, "join") == 0;
    if (!sim && !srv && !join) {
        pst_app_error("fed: unknown subcommand '%s' (simulate, serve, join or keygen)", sub);
        return 2;
    }
    fed_args_t a;
    int status = parse_fed_args(&a, sub, argc, argv);
    if (status != 0)
        return status == 1 ? 0 : status;
    pst_config_t cfg;
    if (load_checked(&cfg, &a) != PST_OK) {
        pst_config_fini(&cfg);
        return 1;
    }
    bool launched = pst_cluster_launched();
    if (sim)
        status = launched ? pst_fedsim_mpi(&cfg, &(pst_train_args_t){.out = a.plan.out})
                          : simulate(&cfg, &a);
    else if (launched && join)
        status = pst_fedjoin_mpi(&cfg, &(pst_fedjoin_args_t){a.server, a.site, a.plan.out});
    else if (launched) {
        pst_app_error("fed serve runs as one process; under mpirun use 'fed simulate'");
        status = 2;
    } else if (srv)
        status = serve(&cfg, &a);
    else
        status = pst_fedjoin_run(&cfg, &(pst_fedjoin_args_t){a.server, a.site, a.plan.out});
    pst_config_fini(&cfg);
    return status;
}
