/* The federated jobs: simulate, serve (with its keys and signals), join, keygen. */
#include "app/fed/fedcmd.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "app/console.h"
#include "app/fed/fedconf.h"
#include "app/fed/fedjoin.h"
#include "app/fed/fedjoin_mpi.h"
#include "app/fed/fedresume.h"
#include "app/fed/fedserve.h"
#include "app/fed/fedsim.h"
#include "app/fed/fedsim_mpi.h"
#include "app/mpi/cluster.h"
#include "app/session.h"
#include "common/fed/fedkeys.h"
#include "common/log.h"

/* ---- simulate ---- */

static int simulate(const pst_config_t *cfg, const pst_fedcmd_opts_t *a)
{
    pst_session_t s;
    pst_err_t err = {0};
    int rc = pst_rundir_check_new(a->plan.out, a->plan.force, &err);
    if (rc != PST_OK) {
        pst_app_error("%s", err.msg);
        return 1;
    }
    rc = pst_session_prepare(&s, cfg, true, &err);
    if (rc == PST_OK)
        rc = pst_fedsim_check_config(cfg, s.data.train, &err);
    if (rc == PST_OK)
        rc = pst_session_open_rundir(&s, a->plan.out, &err);
    if (rc == PST_OK)
        rc = pst_fedsim_run(&s, &err);
    return pst_session_end(&s, rc, &err);
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

static int serve_session(pst_session_t *s, const pst_fedcmd_opts_t *a,
                         const pst_fedserve_net_t *net, pst_err_t *err)
{
    pst_fedserve_t fs;
    /* a server started again on the same --out carries on after its last round */
    bool resume = pst_fedresume_found(a->plan.out);
    s->rundir.append = resume;
    int rc = pst_session_open_rundir(s, a->plan.out, err);
    if (rc == PST_OK)
        rc = pst_fedserve_open(&fs, s, net, err);
    if (rc != PST_OK)
        return rc;
    fs.checkpoint = true;
    uint64_t round = 0;
    if (resume && (rc = pst_fedresume_restore(&fs, &round, err)) != PST_OK) {
        pst_fedserve_close(&fs);
        return rc;
    }
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

static int serve(const pst_config_t *cfg, const pst_fedcmd_opts_t *a)
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

int pst_fedcmd_keygen(const char *prefix)
{
    pst_fedkey_pair_t kp;
    pst_err_t err = {0};
    int rc = pst_fedkey_generate(&kp, &err);
    if (rc == PST_OK)
        rc = pst_fedkey_write(&kp, prefix, &err);
    memset(kp.secret_key, 0, sizeof kp.secret_key);
    if (rc != PST_OK) {
        pst_app_error("fed keygen: %s", err.msg[0] ? err.msg : pst_strerror(rc));
        return 1;
    }
    printf("wrote %s.key (secret, mode 0600) and %s.pub\npublic key: %s\n", prefix, prefix,
           kp.public_key);
    return 0;
}

/* ---- dispatch ---- */

static int load_checked(pst_config_t *cfg, const pst_fedcmd_opts_t *a)
{
    pst_err_t err = {0};
    int rc = pst_plan_config(cfg, &a->plan, &err);
    /* A federated model describes no one's data: its sites keep their distributions. */
    cfg->drift.profile = false;
    if (rc == PST_OK)
        rc = pst_fedconf_check(cfg, NULL, &err);
    if (rc != PST_OK && pst_cluster_is_first_rank())
        pst_app_error("%s", err.msg);
    return rc;
}

/* Runs the loaded configuration's job: in this process, or this rank's part under mpirun. */
static int run_job(const pst_config_t *cfg, const pst_fedcmd_opts_t *o)
{
    pst_fedjoin_args_t join = {o->server, o->site, o->plan.out};
    bool launched = pst_cluster_launched();
    if (o->kind == PST_FEDCMD_SIMULATE)
        return launched ? pst_fedsim_mpi(
                              cfg, &(pst_train_args_t){.out = o->plan.out, .force = o->plan.force})
                        : simulate(cfg, o);
    if (launched && o->kind == PST_FEDCMD_JOIN)
        return pst_fedjoin_mpi(cfg, &join);
    if (launched) {
        pst_app_error("fed serve runs as one process; under mpirun use 'fed simulate'");
        return 2;
    }
    return o->kind == PST_FEDCMD_SERVE ? serve(cfg, o) : pst_fedjoin_run(cfg, &join);
}

int pst_fedcmd_run(const pst_fedcmd_opts_t *o)
{
    pst_config_t cfg;
    int status = load_checked(&cfg, o) == PST_OK ? run_job(&cfg, o) : 1;
    pst_config_fini(&cfg);
    return status;
}
