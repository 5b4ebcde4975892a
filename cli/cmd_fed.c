/* pstrain fed: argv of the federated commands, run by app/fed/fedcmd. */
#include <stdio.h>
#include <string.h>

#include "app/console.h"
#include "app/fed/fedcmd.h"
#include "cli/args.h"
#include "cli/fed.h"

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
        "          Started again on the same --out, it carries on after the last round it\n"
        "          checkpointed (DIR/checkpoints/fed-server.ckpt); the sites reconnect.\n"
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

/* Parses the options after `pstrain fed SUBCOMMAND`. */
static int parse_fed_args(pst_fedcmd_opts_t *o, const char *sub, int argc, char **argv)
{
    const pst_args_opt_t join_opts[] = {
        {"--server", .text = &o->server}, {"--site", .text = &o->site}, {NULL}};
    char unknown[160];
    snprintf(unknown, sizeof unknown,
             "fed %s: unknown, incomplete or unexpected argument '%%s' (see 'pstrain fed --help')",
             sub);
    pst_args_spec_t spec = {.usage = pst_usage_fed,
                            .common = PST_ARGS_SET | PST_ARGS_OUT | PST_ARGS_QUIET,
                            .opts = o->kind == PST_FEDCMD_JOIN ? join_opts : NULL,
                            .first = 2,
                            .max_positional = 1,
                            .unknown = unknown};
    pst_args_t a;
    int parsed = pst_args_parse(&a, &spec, argc, argv);
    if (parsed != PST_ARGS_RUN)
        return parsed;
    char no_config[96];
    snprintf(no_config, sizeof no_config, "fed %s: no CONFIG file given (see 'pstrain fed --help')",
             sub);
    return pst_args_to_plan(&a, &o->plan, no_config);
}

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
    return pst_fedcmd_keygen(argv[2]);
}

/* The job a subcommand names: 0, or 2 when it names none. */
static int parse_kind(const char *sub, pst_fedcmd_kind_t *kind)
{
    static const char *const names[] = {"simulate", "serve", "join"};
    for (int k = 0; k < 3; k++)
        if (strcmp(sub, names[k]) == 0)
            return *kind = (pst_fedcmd_kind_t)k, 0;
    pst_app_error("fed: unknown subcommand '%s' (simulate, serve, join or keygen)", sub);
    return 2;
}

int pst_cmd_fed(int argc, char **argv)
{
    if (argc < 2 || pst_is_help(argv[1])) {
        pst_usage_fed(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "keygen") == 0)
        return keygen(argc, argv);
    pst_fedcmd_opts_t o = {0};
    int parsed = parse_kind(argv[1], &o.kind);
    if (parsed == 0)
        parsed = parse_fed_args(&o, argv[1], argc, argv);
    return parsed == PST_ARGS_RUN ? pst_fedcmd_run(&o) : pst_args_status(parsed);
}
