/* An mpirun site: worker 0 holds the connection to the federated server (the one-process join of
 * app/fed/fedjoin.c, extended); the contract goes from it to every rank; the site's parameter
 * servers start with the contract's optimizer; each round the workers train together and worker 0
 * sends the update.
 *
 * MPI carries what the ranks must agree on: the contract (every rank), each round's command, seed
 * and global weights (the workers), and the outcome of each step with the message of its most
 * telling failure, so an error anywhere is printed once, by worker 0, and every rank stops.
 * Parameters travel over ZeroMQ between the workers and the site's servers. Ranks that wait for
 * worker 0 (between rounds, possibly for minutes) sleep between polls rather than spin.
 *
 * Namespaces: round r trains model namespace r on the site's servers, registered from the round's
 * global weights, so the optimizer state starts empty every round as the one-process site's does.
 * Once every worker is done with it, each worker drops it (OP_DROP): the servers hold one round's
 * model at a time however many rounds run. One drop would do on the servers, but dropping is also
 * how a worker's client forgets the round's tensor and frees it, so each worker drops it once. A
 * worker whose training fails drops it at once instead, so the others' pulls and pushes fail at
 * once rather than wait for cluster.timeout; training passes through no MPI collective (the epoch
 * losses are summed after the round), so every worker then reaches the round's agreement. A fresh
 * id each round, rather than one id reused, means a drop can only ever name its own round's
 * namespace. */
#include "app/fed/fedjoin_mpi.h"

#include <limits.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/console.h"
#include "app/mpi/cluster.h"
#include "app/mpi/mpijob.h"
#include "app/mpi/ranks.h"
#include "app/mpi/remote.h"
#include "app/rundir.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/sample/split.h"

/* Worker 0's first word to every rank: the contract's size (0: the site got none; stop) and the
 * model's parameters. The contract's bytes follow. */
typedef struct start {
    uint64_t contract_len, n_params;
} start_t;

enum { CMD_TRAIN = 1, CMD_STOP = 2 };

/* Worker 0's word to the workers before each round; CMD_TRAIN is followed by the weights. */
typedef struct command {
    int32_t cmd;
    uint64_t round, seed;
} command_t;

/* Numbers summed over the workers after each round. */
enum { SUM_LOSS = PST_COMM_N, SUM_ROWS, SUM_N };

typedef struct sitempi {
    const pst_config_t *cfg; /* the site's own */
    pst_ranks_t ranks;
    pst_fedjoin_model_t own; /* the model of a rank without the connection */
    pst_fedjoin_model_t *m;  /* this rank's: own, or worker 0's in app/fed/fedjoin.c */
    bool started;            /* worker 0 sent the contract */
    bool ready;              /* every rank set it up: workers wait for commands, servers serve */
    size_t *share, n_share;  /* a worker's positions in the site's rows */
    uint64_t *worker_rows;   /* (n_workers) every worker's n_share */
    pst_rows_t rows;
    pst_remote_t remote;
    float *global;        /* (n_params) a worker's copy of the round's weights */
    float *scratch;       /* (n_params) the unused delta of the workers other than worker 0 */
    pst_server_t *server; /* a server rank's */
    /* worker 0's figures for report.json */
    uint64_t rounds_trained;
    double sums[SUM_N]; /* communication counters summed over workers and rounds */
    bool round_failed;  /* a round failed (and so the run): some server may not answer */
} sitempi_t;

static bool is_lead(const sitempi_t *x)
{
    return x->ranks.worker == 0;
}

/* The world rank of worker 0, which holds the connection: the first after the servers. */
static int lead_rank(const sitempi_t *x)
{
    return x->ranks.n_servers;
}

/* ---- agreement ---- */

/* How telling a rank's failure is, for choosing the one outcome and message every rank reports
 * (pst_mpijob_agree_err: the heaviest failure wins, the first rank among equals). A failure of a
 * worker's own in a round ends the run even when another worker's training diverged in it, so its
 * message must win; a divergence only declines the round, and wins over the failures that follow
 * from the diverged worker's drop. */
enum {
    FAIL_FOLLOWS = 1, /* most likely the consequence of another rank's failure (see train_round) */
    FAIL_DIVERGED,    /* a diverged training: the round is declined, not the run ended */
    FAIL_OWN          /* anything else: the run ends with this message */
};

/* A failure of this rank, named for the message every rank may end up printing. */
static int own_failure(const sitempi_t *x, int rc, pst_err_t *err)
{
    if (rc == PST_OK)
        return rc;
    if (x->ranks.worker < 0)
        pst_err_prefix(err, rc, "parameter server %d: ", x->ranks.rank);
    else
        pst_err_prefix(err, rc, "worker %d: ", x->ranks.worker);
    return rc;
}

/* ---- the contract on every rank ---- */

static void share_start(sitempi_t *x, start_t *st, uint8_t **contract)
{
    MPI_Request req;
    MPI_Ibcast(st, (int)sizeof *st, MPI_BYTE, lead_rank(x), MPI_COMM_WORLD, &req);
    pst_ranks_wait(&req);
    if (st->contract_len == 0)
        return;
    if (!is_lead(x) && !(*contract = malloc(st->contract_len))) {
        pst_app_error("rank %d: no memory for the contract (%llu bytes)", x->ranks.rank,
                      (unsigned long long)st->contract_len);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    MPI_Ibcast(*contract, (int)st->contract_len, MPI_BYTE, lead_rank(x), MPI_COMM_WORLD, &req);
    pst_ranks_wait(&req);
}

/* The contract as every rank reads it; the site's own cluster.* and transport.* keys describe
 * its job, as data.* its rows. */
static int open_contract(sitempi_t *x, const uint8_t *contract, const start_t *st, pst_err_t *err)
{
    int rc = pst_fedjoin_model_open(x->m, x->cfg, contract, st->contract_len, err);
    if (rc == PST_OK)
        rc = pst_config_copy_prefix(&x->m->run_cfg, x->cfg, "cluster.", err);
    if (rc == PST_OK)
        rc = pst_config_copy_prefix(&x->m->run_cfg, x->cfg, "transport.", err);
    return rc;
}

/* A worker's rows: every worker loads the site's file and trains its rank-strided share, row i
 * going to worker i mod W, as `pstrain train` under mpirun does. Every worker must see the same
 * rows. Collective over the workers, whatever rc. */
static int take_share(sitempi_t *x, int rc, pst_err_t *err)
{
    size_t n = rc == PST_OK ? x->m->data->n_rows : 0;
    int W = x->ranks.n_workers;
    double range[2] = {rc == PST_OK ? (double)n : INFINITY, rc == PST_OK ? -(double)n : INFINITY};
    MPI_Allreduce(MPI_IN_PLACE, range, 2, MPI_DOUBLE, MPI_MIN, x->ranks.role);
    if (rc != PST_OK)
        return rc;
    if (range[0] != -range[1] && isfinite(range[1]))
        return pst_err_set(err, PST_EINVAL,
                           "%s: the workers read %.0f to %.0f rows; every rank of the site must "
                           "read the same file",
                           x->cfg->data.train, range[0], -range[1]);
    if (n < (size_t)W)
        return pst_err_set(err, PST_EINVAL, "%s: %zu rows cannot feed %d workers",
                           x->cfg->data.train, n, W);
    rc = pst_partition_rows(n, x->ranks.worker, W, &x->share, &x->n_share, err);
    if (rc != PST_OK)
        return rc;
    x->rows = pst_rows_all(x->m->data);
    x->rows.idx = x->share;
    x->rows.n = x->n_share;
    return PST_OK;
}

/* Every worker learns every share's size; each takes the steps of the smallest share, so the BSP
 * clocks meet. Collective over the workers, once every rank is set up. */
static void count_shares(sitempi_t *x)
{
    uint64_t mine = x->n_share, smallest = mine;
    MPI_Allgather(&mine, 1, MPI_UINT64_T, x->worker_rows, 1, MPI_UINT64_T, x->ranks.role);
    for (int w = 0; w < x->ranks.n_workers; w++)
        if (x->worker_rows[w] < smallest)
            smallest = x->worker_rows[w];
    pst_train_opts_t *o = &x->m->trainer.opts;
    uint64_t b = (uint64_t)o->batch_size;
    o->steps_per_epoch = (long)((smallest + b - 1) / b);
}

static int worker_setup(sitempi_t *x, const uint8_t *contract, const start_t *st, pst_err_t *err)
{
    int rc = open_contract(x, contract, st, err);
    if (rc == PST_OK)
        rc = pst_fedjoin_model_load(x->m, x->cfg, st->n_params, err);
    if (rc == PST_OK && x->m->trainer.keep_state)
        rc = pst_err_set(err, PST_EINVAL,
                         "fed.local_state: the server asks keep, but a site that is an mpirun "
                         "job runs its optimizer on its parameter servers, fresh every round");
    rc = take_share(x, rc, err);
    size_t n = st->n_params, W = (size_t)x->ranks.n_workers;
    if (rc == PST_OK && !(x->worker_rows = malloc(W * sizeof *x->worker_rows)))
        rc = pst_err_set(err, PST_ENOMEM, "out of memory");
    if (rc == PST_OK && !(x->global = malloc(n * sizeof *x->global)))
        rc = pst_err_set(err, PST_ENOMEM, "out of memory");
    if (rc == PST_OK && !is_lead(x) && !(x->scratch = malloc(n * sizeof *x->scratch)))
        rc = pst_err_set(err, PST_ENOMEM, "out of memory");
    return rc;
}

/* Every rank's part once the contract arrived: servers start, endpoints are exchanged, workers
 * connect; then every rank learns whether all went well. */
static int setup(sitempi_t *x, const uint8_t *contract, const start_t *st, pst_err_t *err)
{
    bool server = x->ranks.worker < 0;
    int rc = server ? open_contract(x, contract, st, err) : worker_setup(x, contract, st, err);
    pst_hello_t hello = {0};
    if (rc == PST_OK && server)
        rc = pst_ranks_open_server(&x->ranks, &x->m->run_cfg, NULL, false, &x->server, &hello, err);
    hello.ok = rc == PST_OK;
    if (pst_ranks_exchange(&x->ranks, &hello) && !server)
        rc = pst_remote_connect(&x->remote, &x->ranks, &x->m->run_cfg, x->ranks.role, err);
    rc = pst_mpijob_agree_err(MPI_COMM_WORLD, own_failure(x, rc, err), FAIL_OWN, err);
    if (rc == PST_OK && !server)
        count_shares(x);
    x->ready = rc == PST_OK;
    return rc;
}

/* The contract hook of worker 0's join: hands the contract to every rank and sets it up. */
static int lead_contract(void *ctx, pst_fedjoin_model_t *m, const uint8_t *contract, size_t len,
                         size_t n_params, pst_err_t *err)
{
    sitempi_t *x = ctx;
    x->m = m;
    if (len == 0 || len > INT_MAX)
        return pst_err_set(err, PST_EPROTO, "a contract of %zu bytes", len);
    start_t st = {len, n_params};
    uint8_t *bytes = (uint8_t *)contract; /* sent, not changed */
    share_start(x, &st, &bytes);
    x->started = true;
    int rc = setup(x, contract, &st, err);
    if (rc == PST_OK)
        pst_info("%d worker(s) train each round with %d parameter server(s): shares of %zu "
                 "rows, %ld steps per local epoch",
                 x->ranks.n_workers, x->ranks.n_servers, m->data->n_rows,
                 m->trainer.opts.steps_per_epoch);
    return rc;
}

/* ---- rounds ---- */

/* Worker 0 sums the workers' figures of a round (every worker calls it). */
static void sum_round(sitempi_t *x, const pst_fedtrain_result_t *res, double *sums)
{
    pst_psclient_stats_t st;
    pst_psclient_stats(x->remote.client, &st);
    double v[SUM_N];
    pst_comm_counters(&st, v);
    v[SUM_LOSS] = res->loss;
    v[SUM_ROWS] = (double)res->rows_trained;
    MPI_Reduce(v, sums, SUM_N, MPI_DOUBLE, MPI_SUM, 0, x->ranks.role);
}

/* One round on every worker: the round's namespace registered from the global weights, this
 * worker's share trained through the servers, the namespace dropped. Returns the agreed outcome;
 * delta gets the update (servers' final weights minus global), sums worker 0's round figures. */
static int train_round(sitempi_t *x, const command_t *c, const float *global, float *delta,
                       double *sums, pst_err_t *err)
{
    pst_fedtrainer_t *t = &x->m->trainer;
    uint32_t model = (uint32_t)c->round;
    pst_fedtrain_result_t res = {.loss = NAN};
    int rc = pst_remote_begin(&x->remote, model, global, t->n_params, NULL, err);
    if (rc == PST_OK) {
        pst_train_hooks_t hooks = {0};
        pst_remote_hooks(&x->remote, &hooks);
        rc = pst_fedtrainer_run(t, &x->rows, global, c->round, c->seed, &hooks, delta, &res, err);
        if (rc == PST_OK && !res.ok)
            rc = PST_ENUMERIC; /* the message is in err */
    }
    bool dropped = rc != PST_OK;
    if (dropped) /* the others must not wait for this worker's pushes */
        pst_remote_drop(&x->remote, model, NULL);
    /* A worker whose peer failed and dropped the namespace hears so from the servers: the
     * tensor was dropped (PST_ESTATE) or is unknown (PST_ENOTFOUND); so does one whose peer
     * could not register (PST_ESTATE from pst_remote_begin). The peer's message says more. */
    int weight = rc == PST_ENUMERIC                        ? FAIL_DIVERGED
                 : rc == PST_ESTATE || rc == PST_ENOTFOUND ? FAIL_FOLLOWS
                                                           : FAIL_OWN;
    rc = pst_mpijob_agree_err(x->ranks.role, own_failure(x, rc, err), weight, err);
    /* Every worker is done with the namespace: drop it, unless this worker did already (then the
     * round failed, and no drop is agreed on). */
    pst_err_t drop_err = {0};
    int drop_rc =
        dropped ? PST_OK : own_failure(x, pst_remote_drop(&x->remote, model, &drop_err), &drop_err);
    if (rc == PST_OK &&
        (rc = pst_mpijob_agree_err(x->ranks.role, drop_rc, FAIL_OWN, &drop_err)) != PST_OK)
        *err = drop_err;
    sum_round(x, &res, sums);
    return rc;
}

static void share_command(sitempi_t *x, command_t *c)
{
    MPI_Request req;
    MPI_Ibcast(c, (int)sizeof *c, MPI_BYTE, 0, x->ranks.role, &req);
    pst_ranks_wait(&req);
}

static void share_weights(sitempi_t *x, float *w)
{
    MPI_Request req;
    MPI_Ibcast(w, (int)x->m->trainer.n_params, MPI_FLOAT, 0, x->ranks.role, &req);
    pst_ranks_wait(&req);
}

/* Worker 0 keeps the workers' figures of a trained round for report.json. */
static void record_round(sitempi_t *x, const double *sums)
{
    for (int i = 0; i < PST_COMM_N; i++) /* the clients' counters grow over the run */
        x->sums[i] = sums[i];
    x->sums[SUM_ROWS] += sums[SUM_ROWS];
    x->rounds_trained++;
}

/* The train hook of worker 0's join: the round goes to every worker, and they train it. */
static int lead_train(void *ctx, pst_fedtrain_site_t *play, const pst_fedsite_task_t *task,
                      float *delta, double *samples, double *loss, pst_err_t *err)
{
    sitempi_t *x = ctx;
    int rc = pst_fedtrain_site_begin(play, task, err);
    if (rc != PST_OK)
        return rc;
    command_t c = {CMD_TRAIN, task->round, task->seed};
    share_command(x, &c);
    memcpy(x->global, task->global, task->n * sizeof *x->global);
    share_weights(x, x->global);
    double sums[SUM_N] = {0}, t0 = pst_clock_seconds();
    rc = train_round(x, &c, x->global, delta, sums, err);
    x->round_failed = rc != PST_OK && rc != PST_ENUMERIC;
    if (rc == PST_OK)
        record_round(x, sums);
    pst_fedtrain_result_t res = {.ok = rc == PST_OK,
                                 .rows = (double)x->m->data->n_rows,
                                 .loss = sums[SUM_LOSS] / x->ranks.n_workers,
                                 .rows_trained = (long)sums[SUM_ROWS],
                                 .seconds = pst_clock_seconds() - t0};
    return pst_fedtrain_site_end(play, rc, &res, samples, loss);
}

/* The other workers: rounds as worker 0 sends them, until it says stop. */
static int follow_rounds(sitempi_t *x)
{
    int status = 0;
    for (;;) {
        command_t c;
        share_command(x, &c);
        if (c.cmd != CMD_TRAIN)
            return status;
        share_weights(x, x->global);
        double sums[SUM_N];
        pst_err_t err = {0};
        int rc = train_round(x, &c, x->global, x->scratch, sums, &err);
        /* Worker 0 reports it: a diverged round is declined, anything else ends the run. */
        if (rc != PST_OK && rc != PST_ENUMERIC)
            status = 1;
    }
}

/* ---- report ---- */

/* The servers' holdings, summed: once the last round's namespace is dropped, nothing of it should
 * be left. */
static void add_server_holdings(sitempi_t *x, cJSON *mpi)
{
    uint64_t tensors = 0, bytes = 0;
    for (int s = 0; s < x->ranks.n_servers; s++) {
        uint64_t c[PST_STAT_COUNT];
        pst_err_t err = {0};
        if (pst_psclient_server_stats(x->remote.client, (uint32_t)s, c, &err) != PST_OK) {
            pst_warn("parameter server %d: stats: %s", s, err.msg);
            continue;
        }
        tensors += c[PST_STAT_TENSORS];
        bytes += c[PST_STAT_STORE_BYTES];
    }
    pst_json_add_number(mpi, "server_tensors", (double)tensors);
    pst_json_add_number(mpi, "server_store_bytes", (double)bytes);
}

static void lead_report(void *ctx, cJSON *doc)
{
    sitempi_t *x = ctx;
    const pst_ranks_t *r = &x->ranks;
    cJSON *mpi = cJSON_AddObjectToObject(doc, "mpi");
    pst_json_add_number(mpi, "ranks", r->size);
    pst_json_add_number(mpi, "servers", r->n_servers);
    pst_json_add_number(mpi, "workers", r->n_workers);
    pst_json_add_number(mpi, "rounds_trained", (double)x->rounds_trained);
    if (!x->ready)
        return;
    const pst_config_t *cfg = &x->m->run_cfg;
    cJSON_AddStringToObject(mpi, "consistency", cfg->cluster.consistency);
    cJSON *rows = cJSON_AddArrayToObject(mpi, "worker_rows");
    for (int w = 0; w < r->n_workers; w++)
        cJSON_AddItemToArray(rows, cJSON_CreateNumber((double)x->worker_rows[w]));
    pst_json_add_number(mpi, "steps_per_epoch", (double)x->m->trainer.opts.steps_per_epoch);
    pst_json_add_number(mpi, "worker_rows_trained", x->sums[SUM_ROWS]);
    /* Asked now, while the other workers wait for the stop; not after a failed round, which
     * may have been a server's, lest the report wait cluster.timeout for every one gone. */
    if (!x->round_failed)
        add_server_holdings(x, mpi);
    pst_comm_json(cJSON_AddObjectToObject(mpi, "comm"), r, cfg, x->sums);
}

/* ---- ranks ---- */

static int run_lead(sitempi_t *x, const pst_fedjoin_args_t *args)
{
    pst_fedjoin_ext_t ext = {
        .ctx = x, .contract = lead_contract, .train = lead_train, .report = lead_report};
    int status = pst_fedjoin_run_ext(x->cfg, args, &ext);
    if (!x->started) { /* no contract came: the other ranks are waiting for one */
        start_t none = {0, 0};
        share_start(x, &none, NULL);
    } else if (x->ready) {
        command_t stop = {CMD_STOP, 0, 0};
        share_command(x, &stop);
    }
    return status;
}

/* A rank without the connection: the contract from worker 0, then its role. */
static int run_follower(sitempi_t *x)
{
    start_t st;
    uint8_t *contract = NULL;
    share_start(x, &st, &contract);
    if (st.contract_len == 0)
        return 0; /* worker 0 says why */
    x->m = &x->own;
    pst_err_t err = {0};
    int rc = setup(x, contract, &st, &err);
    free(contract);
    if (rc != PST_OK)
        return 1;
    if (x->ranks.worker >= 0)
        return follow_rounds(x);
    rc = pst_server_run(x->server, &err);
    if (rc != PST_OK)
        pst_app_error("parameter server %d: %s", x->ranks.rank, err.msg);
    return rc == PST_OK ? 0 : 1;
}

static void finish(sitempi_t *x)
{
    /* A connected worker says goodbye, so the servers stop; after a failed setup the servers
     * are gone and nobody would answer. */
    if (x->ready)
        pst_remote_close(&x->remote);
    else
        pst_psclient_destroy(&x->remote.client);
    pst_server_destroy(&x->server);
    pst_fedjoin_model_fini(&x->own);
    free(x->share);
    free(x->worker_rows);
    free(x->global);
    free(x->scratch);
}

int pst_fedjoin_mpi(const pst_config_t *cfg, const pst_fedjoin_args_t *args)
{
    pst_mpijob_t job;
    pst_err_t err = {0};
    if (pst_mpijob_begin(&job, &err) != PST_OK) {
        pst_app_error("fed join: %s", err.msg);
        return 2;
    }
    sitempi_t *x = calloc(1, sizeof *x);
    int rc = x ? pst_ranks_init(&x->ranks, cfg, &err) : PST_ENOMEM, status = 0;
    if (pst_mpijob_agree(MPI_COMM_WORLD, rc) != PST_OK) {
        if (pst_cluster_is_first_rank())
            pst_app_error("fed join: %s", x ? err.msg : "out of memory");
        status = 2;
    } else {
        x->cfg = cfg;
        status = is_lead(x) ? run_lead(x, args) : run_follower(x);
        finish(x);
    }
    if (x)
        pst_ranks_fini(&x->ranks);
    free(x);
    /* The final join: every rank exits with the worst status of any rank. */
    return pst_mpijob_end(&job, status);
}
