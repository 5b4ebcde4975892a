/* Federated simulation under mpirun: a server rank and site-playing ranks over loopback (or the
 * cluster interface when ranks span hosts). MPI carries the endpoint and the final join only. */
#include "app/fed/fedsim_mpi.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/console.h"
#include "app/fed/fedconf.h"
#include "app/fed/fedserve.h"
#include "app/fed/fedsim.h"
#include "worker/fed/fedtrain.h"
#include "common/net/netaddr.h"
#include "app/mpi/mpijob.h"
#include "app/mpi/ranks.h"
#include "common/log.h"
#include "worker/fed/fedsite.h"

typedef struct simrank {
    const pst_config_t *cfg;
    pst_mpijob_t job;
    pst_ranks_t ranks;
    pst_session_t s;
    pst_fedsim_sites_t sites;
    char run_dir[1024];
} simrank_t;

/* ---- rank 0: the server ---- */

static int open_server(simrank_t *r, pst_fedserve_t *fs, pst_hello_t *hello, pst_err_t *err)
{
    char ip[64], why[128], endpoint[128];
    int rc = pst_session_open_rundir(&r->s, r->run_dir, err);
    if (rc == PST_OK)
        rc = pst_netaddr_choose(r->cfg->cluster.interface, r->ranks.one_host, ip, sizeof ip, why,
                                sizeof why, err);
    if (rc != PST_OK)
        return rc;
    snprintf(endpoint, sizeof endpoint, "tcp://%s:*", ip);
    pst_fedserve_net_t net = {.endpoint = endpoint, .expected_sites = r->sites.n};
    rc = pst_fedserve_open(fs, &r->s, &net, err);
    if (rc == PST_OK)
        snprintf(hello->endpoint, sizeof hello->endpoint, "%s", fs->endpoint);
    return rc;
}

static int run_server(simrank_t *r, bool prepared, pst_err_t *err)
{
    pst_fedserve_t fs;
    memset(&fs, 0, sizeof fs);
    pst_hello_t hello = {0};
    int rc = prepared ? open_server(r, &fs, &hello, err) : PST_ESTATE;
    hello.ok = rc == PST_OK;
    if (prepared && rc != PST_OK)
        pst_app_error("fed server: %s", err->msg);
    if (!pst_ranks_exchange(&r->ranks, &hello)) {
        pst_fedserve_close(&fs);
        return PST_ESTATE;
    }
    rc = pst_fedserve_run(&fs, err);
    if (rc == PST_OK) {
        cJSON *fed = cJSON_GetObjectItem(r->s.extra, "fed");
        pst_fedsim_describe(&r->sites, r->cfg, fed);
        pst_json_add_number(fed, "ranks", r->ranks.size);
    }
    pst_fedserve_close(&fs);
    return rc;
}

/* ---- ranks 1..N-1: the sites ---- */

typedef struct player {
    pst_fedtrainer_t trainer;
    pst_fedtrain_site_t *plays; /* (n) */
    pst_fedsite_t **sites;      /* (n) */
    int n;
} player_t;

static int check_welcome(void *ctx, pst_fedsite_t *site, const uint8_t *contract, size_t len,
                         size_t n_params, pst_err_t *err)
{
    (void)site, (void)contract, (void)len;
    const pst_fedtrain_site_t *play = ctx;
    if (n_params != play->trainer->n_params)
        return pst_err_set(err, PST_EPROTO, "the server's model has %zu parameters, this %zu",
                           n_params, play->trainer->n_params);
    return PST_OK;
}

static int player_open(player_t *p, simrank_t *r, const char *endpoint, pst_err_t *err)
{
    pst_session_t *s = &r->s;
    int players = r->ranks.size - 1, me = r->ranks.rank - 1;
    int rc = pst_fedtrainer_init(&p->trainer, &s->spec, pst_model_n_inputs(s->model), &s->opts,
                                 r->cfg, err);
    if (rc != PST_OK)
        return rc;
    int mine = r->sites.n / players + (me < r->sites.n % players);
    p->plays = calloc((size_t)mine + 1, sizeof *p->plays);
    p->sites = calloc((size_t)mine + 1, sizeof *p->sites);
    if (!p->plays || !p->sites)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    for (int i = me; i < r->sites.n; i += players) {
        pst_fedtrain_site_t *play = &p->plays[p->n];
        play->trainer = &p->trainer;
        play->rows = pst_fedsim_site_rows(&r->sites, s, i);
        pst_fedsite_cfg_t sc = {.site = r->sites.ids[i],
                                .endpoint = endpoint,
                                .heartbeat = r->cfg->fed.heartbeat,
                                .server_timeout = r->cfg->fed.server_timeout};
        pst_fedsite_hooks_t hooks = {
            .ctx = play, .welcome = check_welcome, .train = pst_fedtrain_hook};
        if (!(p->sites[p->n] = pst_fedsite_new(&sc, &hooks, err)))
            return err->code;
        p->n++;
    }
    return PST_OK;
}

static void player_close(player_t *p, simrank_t *r)
{
    for (int i = 0; i < p->n; i++) {
        r->s.result.rows_trained += p->plays[i].rows_trained;
        r->s.result.seconds += p->plays[i].seconds;
        pst_fedsite_destroy(&p->sites[i]);
        pst_fedtrain_site_fini(&p->plays[i]);
    }
    free(p->sites);
    free(p->plays);
    pst_fedtrainer_fini(&p->trainer);
}

static int run_sites(simrank_t *r, bool prepared, pst_err_t *err)
{
    pst_hello_t hello = {.ok = prepared};
    if (!pst_ranks_exchange(&r->ranks, &hello))
        return PST_ESTATE;
    const char *endpoints[1];
    pst_ranks_endpoints(&r->ranks, endpoints);
    player_t p;
    memset(&p, 0, sizeof p);
    int rc = player_open(&p, r, endpoints[0], err);
    if (rc == PST_OK && p.n > 0)
        rc = pst_fedsite_run(p.sites, p.n, err);
    if (rc != PST_OK)
        pst_app_error("rank %d: %s", r->ranks.rank, err->msg);
    player_close(&p, r);
    return rc;
}

/* ---- every rank ---- */

/* The rows and trained seconds of every site, summed into rank 0's session. */
static void gather_throughput(simrank_t *r)
{
    double v[2] = {(double)r->s.result.rows_trained, r->s.result.seconds}, sum[2] = {0, 0};
    MPI_Reduce(v, sum, 2, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
    if (r->ranks.rank != 0)
        return;
    r->s.result.rows_trained = (long)sum[0];
    r->s.result.seconds = sum[1];
    r->s.result.samples_per_s = sum[1] > 0 ? sum[0] / sum[1] : 0;
}

static int prepare(simrank_t *r, pst_err_t *err)
{
    int rc = pst_session_prepare(&r->s, r->cfg, r->ranks.rank == 0, err);
    if (rc == PST_OK)
        rc = pst_fedsim_check_config(r->cfg, r->s.data.train, err);
    if (rc == PST_OK && strcmp(r->cfg->fed.attack, "none") != 0)
        rc = pst_err_set(err, PST_EINVAL,
                         "fed.attack: attacking sites are simulated in one process only (run "
                         "pstrain fed simulate without mpirun)");
    if (rc == PST_OK)
        rc = pst_fedsim_sites_init(&r->sites, &r->s, err);
    return rc;
}

static int begin(simrank_t *r, const pst_train_args_t *args, pst_err_t *err)
{
    /* Rank 0 serves, every other rank plays sites: one "server" in the ranks' terms. */
    pst_config_t one_server = *r->cfg;
    one_server.cluster.servers = 1;
    int rc = pst_ranks_init(&r->ranks, &one_server, err);
    if (rc == PST_OK && r->ranks.rank == 0)
        rc = pst_rundir_check_new(args->out, args->force, err);
    if (rc == PST_OK && r->ranks.rank == 0)
        rc = pst_rundir_choose(r->cfg, args->out, r->run_dir, sizeof r->run_dir, err);
    if (pst_mpijob_agree(MPI_COMM_WORLD, rc) != PST_OK)
        return rc != PST_OK ? rc : PST_ESTATE;
    MPI_Bcast(r->run_dir, (int)sizeof r->run_dir, MPI_CHAR, 0, MPI_COMM_WORLD);
    return PST_OK;
}

int pst_fedsim_mpi(const pst_config_t *cfg, const pst_train_args_t *args)
{
    simrank_t r;
    memset(&r, 0, sizeof r);
    r.cfg = cfg;
    pst_err_t err = {0};
    if (pst_mpijob_begin(&r.job, &err) != PST_OK) {
        pst_app_error("%s", err.msg);
        return 2;
    }
    int rc = begin(&r, args, &err);
    if (rc != PST_OK) {
        if (r.ranks.rank == 0 && err.msg[0])
            pst_app_error("%s", err.msg);
        pst_ranks_fini(&r.ranks);
        return pst_mpijob_end(&r.job, 2);
    }
    char tag[32];
    snprintf(tag, sizeof tag, r.ranks.rank == 0 ? "fed server" : "sites %d", r.ranks.rank);
    pst_log_set_tag(tag);
    rc = prepare(&r, &err);
    /* Every rank meets the same data and configuration errors: rank 0 reports them. */
    if (rc != PST_OK && r.ranks.rank == 0)
        pst_app_error("%s", err.msg);
    bool prepared = rc == PST_OK;
    rc = r.ranks.rank == 0 ? run_server(&r, prepared, &err) : run_sites(&r, prepared, &err);
    gather_throughput(&r);
    if (r.ranks.rank == 0 && rc == PST_OK && (rc = pst_session_finish(&r.s, &err)) != PST_OK)
        pst_app_error("%s", err.msg);
    else if (r.ranks.rank == 0 && rc != PST_OK && rc != PST_ESTATE)
        pst_app_error("%s", err.msg);
    pst_fedsim_sites_fini(&r.sites);
    pst_session_fini(&r.s);
    pst_ranks_fini(&r.ranks);
    /* The final join: every rank exits with the worst status of any rank. */
    return pst_mpijob_end(&r.job, rc == PST_OK ? 0 : 1);
}
