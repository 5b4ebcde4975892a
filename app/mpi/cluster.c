/* Distributed training under mpirun: the first cluster.servers ranks serve parameters, the others
 * train on rank-strided shares of the rows (or on one file each). MPI bootstraps (endpoints,
 * readiness), reduces the few numbers every worker must agree on at epoch ends, and joins;
 * parameters travel over ZeroMQ. */
#include "app/mpi/cluster.h"

#include <limits.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/console.h"
#include "app/mpi/elastic.h"
#include "app/mpi/jobcontract.h"
#include "app/mpi/mpijob.h"
#include "app/mpi/ranks.h"
#include "app/mpi/remote.h"
#include "app/mpi/workerstate.h"
#include "app/rundir.h"
#include "app/mpi/steptime.h"
#include "app/mpi/watchdog.h"
#include "app/session.h"
#include "app/session_dp.h"
#include "app/sparse/sparse_train.h"
#include "common/log.h"
#include "common/numparse.h"
#include "common/sample/split.h"

/* Seconds a rank whose training failed waits for the others at the end: they are failing too, and
 * only the few reductions of a failed run remain. */
#define FAILED_END_S 10.0

typedef struct cluster {
    const pst_config_t *cfg;
    const pst_train_args_t *args;
    pst_mpijob_t job;
    pst_watchdog_t *watchdog; /* bounds the wait for the others at the end */
    pst_ranks_t ranks;
    char run_dir[1024], ckpt_dir[1100];
    bool missing; /* this worker's run succeeded without a worker that did not come back */
} cluster_t;

static int env_int(const char *name)
{
    const char *v = getenv(name);
    long n;
    return v && pst_parse_decimal(v, &n) == PST_OK && n >= 0 && n <= INT_MAX ? (int)n : 0;
}

bool pst_cluster_launched(void)
{
    /* mpirun (Open MPI), a PMI launcher (MPICH hydra), or srun with PMIx under Slurm. */
    return env_int("OMPI_COMM_WORLD_SIZE") > 1 || env_int("PMI_SIZE") > 1 ||
           (getenv("PMIX_RANK") && env_int("SLURM_STEP_NUM_TASKS") > 1);
}

bool pst_cluster_is_first_rank(void)
{
    const char *r = getenv("OMPI_COMM_WORLD_RANK");
    if (!r)
        r = getenv("PMI_RANK");
    if (!r)
        r = getenv("PMIX_RANK");
    long n;
    return !r || pst_parse_decimal(r, &n) != PST_OK || n == 0;
}

/* ---- server ranks ------------------------------------------------------------------------ */

/* From here on this rank only waits for the others: bounded, so that a hung or stopped rank ends
 * the job with a message instead of holding it forever. */
static void arm_end(cluster_t *c, bool failed)
{
    pst_watchdog_arm(c->watchdog, failed ? FAILED_END_S : c->cfg->cluster.timeout,
                     "the end of the job (every rank's final reductions and join)");
}

static int run_server(cluster_t *c)
{
    pst_err_t err = {0};
    pst_server_t *srv = NULL;
    pst_hello_t hello = {0};
    bool checkpoints = c->cfg->cluster.checkpoint_every > 0 || c->args->resume;
    int rc = pst_ranks_open_server(&c->ranks, c->cfg, checkpoints ? c->ckpt_dir : NULL,
                                   c->args->resume != NULL, &srv, &hello, &err);
    rc = pst_jobcontract_serve(&c->ranks, srv, rc, &err);
    hello.ok = rc == PST_OK;
    if (rc != PST_OK)
        pst_error("server %d: %s%s", c->ranks.rank, c->args->resume ? "--resume: " : "", err.msg);
    if (!pst_ranks_exchange(&c->ranks, &hello)) {
        pst_server_destroy(&srv);
        return 1;
    }
    rc = pst_server_run(srv, &err);
    uint32_t missing = pst_server_workers_missing(srv);
    arm_end(c, rc != PST_OK);
    /* A dropped worker that never came back cannot join: the workers end the job without it
     * (pst_cluster_train) once their bounded join runs out; this rank waits longer than that. */
    if (rc == PST_OK && missing > 0)
        pst_watchdog_arm(c->watchdog, 2 * c->cfg->cluster.timeout + FAILED_END_S,
                         "the end of the job without a dropped worker");
    if (rc != PST_OK)
        pst_error("server %d: %s", c->ranks.rank, err.msg);
    uint64_t counters[PST_STAT_COUNT];
    pst_server_stats(srv, counters);
    if (counters[PST_STAT_BAD_FRAMES] > 0)
        pst_warn("server %d dropped %llu malformed messages", c->ranks.rank,
                 (unsigned long long)counters[PST_STAT_BAD_FRAMES]);
    pst_server_destroy(&srv);
    return rc == PST_OK ? 0 : 1;
}

/* ---- worker ranks ------------------------------------------------------------------------ */

typedef struct worker {
    cluster_t *c;
    pst_session_t s;
    pst_remote_t remote;
    pst_psclient_stats_t at_start; /* the link's counters before the first step */
    int index;                     /* worker index 0..n_workers-1 */
    long *share_rows;              /* (n_workers) every worker's training rows per epoch */
    bool missing;                  /* a worker was dropped and did not come back */
} worker_t;

static int reduce_sum(void *ctx, double *vals, int n, pst_err_t *err)
{
    if (MPI_Allreduce(MPI_IN_PLACE, vals, n, MPI_DOUBLE, MPI_SUM, *(MPI_Comm *)ctx) != MPI_SUCCESS)
        return pst_err_set(err, PST_EIO, "MPI_Allreduce failed");
    return PST_OK;
}

static int reduce_max(void *ctx, double *vals, int n, pst_err_t *err)
{
    if (MPI_Allreduce(MPI_IN_PLACE, vals, n, MPI_DOUBLE, MPI_MAX, *(MPI_Comm *)ctx) != MPI_SUCCESS)
        return pst_err_set(err, PST_EIO, "MPI_Allreduce failed");
    return PST_OK;
}

/* Loads this worker's rows: its own file when data.train is a {worker} pattern, else its
 * rank-strided share of the common split. Returns the smallest share over workers. */
static int load_rows(worker_t *w, size_t *smallest, pst_err_t *err)
{
    cluster_t *c = w->c;
    pst_session_t *s = &w->s;
    MPI_Comm *workers = &c->ranks.role;
    int n_workers = c->ranks.n_workers, rc;
    if (pst_shardload_is_pattern(c->cfg->data.train)) {
        pst_reducer_t reduce = {workers, reduce_sum, reduce_max};
        rc = pst_session_prepare_shard(s, c->cfg, w->index == 0, w->index, &reduce, err);
        /* One more reduction that every worker reaches, failed or not: the smallest share. */
        double v[2] = {rc != PST_OK, rc == PST_OK ? -(double)s->data.train->n_rows : 0};
        pst_err_t scratch;
        if (reduce_max(workers, v, 2, &scratch) != PST_OK && rc == PST_OK)
            rc = pst_err_set(err, PST_EIO, "%s", scratch.msg);
        if (rc == PST_OK && v[0] > 0)
            rc = pst_err_set(err, PST_ESTATE, "another worker failed to prepare");
        *smallest = rc == PST_OK ? (size_t)-v[1] : 0;
        /* Every worker has its rows now: class weights from the counts of all of them. */
        return rc == PST_OK ? pst_session_imbalance(s, &reduce, err) : rc;
    }
    if ((rc = pst_session_prepare(s, c->cfg, w->index == 0, err)) != PST_OK)
        return rc;
    /* Every worker resampled the same rows with the same seed: it takes its share of that list. */
    const size_t *list = s->imbalance.rows;
    size_t n_train = list ? s->imbalance.n_rows : s->data.train->n_rows;
    if (n_train < (size_t)n_workers)
        return pst_err_set(err, PST_EINVAL, "%zu training rows cannot feed %d workers", n_train,
                           n_workers);
    if ((rc = pst_partition_rows(n_train, w->index, n_workers, &s->train_share, &s->n_train_share,
                                 err)) ||
        (rc = pst_partition_rows(s->data.val->n_rows, w->index, n_workers, &s->val_share,
                                 &s->n_val_share, err)))
        return rc;
    for (size_t i = 0; list && i < s->n_train_share; i++)
        s->train_share[i] = list[s->train_share[i]];
    *smallest = n_train / (size_t)n_workers; /* shares differ by at most one row */
    return PST_OK;
}

static int worker_prepare(worker_t *w, pst_err_t *err)
{
    pst_session_t *s = &w->s;
    size_t smallest = 0;
    int rc = load_rows(w, &smallest, err);
    if (rc != PST_OK)
        return rc;
    if (smallest == 0)
        return pst_err_set(err, PST_EINVAL, "a worker has no training rows");
    s->n_workers = w->c->ranks.n_workers;
    /* Every worker's rows, for the rows a dropped worker did not see (all ranks live here). */
    long mine = (long)(s->train_share ? s->n_train_share : s->data.train->n_rows);
    if (!(w->share_rows = calloc((size_t)s->n_workers, sizeof *w->share_rows)))
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    MPI_Allgather(&mine, 1, MPI_LONG, w->share_rows, 1, MPI_LONG, w->c->ranks.role);
    s->opts.dp.worker = w->index; /* DP-SGD: this worker's own sample and noise streams */
    /* Every worker takes the same number of steps per epoch, or BSP clocks would not meet: the
     * smallest share decides. */
    size_t b = (size_t)s->opts.batch_size;
    s->opts.steps_per_epoch = (long)((smallest + b - 1) / b);
    if (s->lead) {
        s->rundir.append = w->c->args->resume != NULL;
        rc = pst_session_open_rundir(s, w->c->run_dir, err);
    }
    return rc;
}

/* The figures every worker adds to the final agreement: whether it failed, its communication
 * counters, rows, steps and waits, and its per-step times. */
enum {
    SUM_FAILED,
    SUM_COMM,
    SUM_ROWS = SUM_COMM + PST_COMM_N,
    SUM_STEPS,
    SUM_SECONDS,
    SUM_PULL_WAIT,
    SUM_PUSH_WAIT,
    SUM_STEPTIME,
    N_SUMS = SUM_STEPTIME + PST_STEPTIME_N
};

static void final_values(worker_t *w, int rc, double v[N_SUMS])
{
    pst_psclient_stats_t st = {0};
    if (w->remote.client)
        pst_psclient_stats(w->remote.client, &st);
    pst_train_result_t *r = &w->s.result;
    v[SUM_FAILED] = rc != PST_OK;
    pst_comm_counters(&st, v + SUM_COMM);
    v[SUM_ROWS] = (double)r->rows_trained;
    v[SUM_STEPS] = (double)(r->clock - w->s.opts.start_clock);
    v[SUM_SECONDS] = r->seconds;
    v[SUM_PULL_WAIT] = w->remote.pull_wait_s;
    v[SUM_PUSH_WAIT] = w->remote.push_wait_s;
    /* A dense step is one push; evaluation pulls between epochs count as waiting (a few against
     * every epoch's steps). */
    pst_steptime_worker(&w->at_start, &st, (double)(st.pushes - w->at_start.pushes),
                        w->s.result.seconds, v + SUM_STEPTIME);
}

/* The lead's report sections from the sums over workers: communication, step times, drops. */
static void report_comm(worker_t *w, const double sum[N_SUMS])
{
    pst_train_result_t *r = &w->s.result;
    /* The run's throughput is every worker's rows over the lead's training time. */
    r->rows_trained = (long)sum[SUM_ROWS];
    r->samples_per_s = r->seconds > 0 ? sum[SUM_ROWS] / r->seconds : 0;
    cJSON *extra = cJSON_CreateObject();
    cJSON *comm = cJSON_AddObjectToObject(extra, "comm");
    pst_comm_json(comm, &w->c->ranks, w->c->cfg, sum + SUM_COMM);
    pst_comm_codec_json(comm, w->remote.client);
    double per_step_ms = sum[SUM_STEPS] > 0 ? 1e3 / sum[SUM_STEPS] : NAN;
    pst_json_add_number(comm, "step_pull_wait_ms", sum[SUM_PULL_WAIT] * per_step_ms);
    pst_json_add_number(comm, "step_push_wait_ms", sum[SUM_PUSH_WAIT] * per_step_ms);
    pst_json_add_number(comm, "step_compute_ms",
                        (sum[SUM_SECONDS] - sum[SUM_PULL_WAIT] - sum[SUM_PUSH_WAIT]) * per_step_ms);
    pst_steptime_json(comm, sum + SUM_STEPTIME);
    if (w->remote.client)
        pst_steptime_query_servers(comm, w->remote.client, w->c->ranks.n_servers,
                                   sum[SUM_STEPTIME + PST_STEPTIME_STEPS]);
    pst_elastic_drop_t drops[64];
    int n_drops = pst_elastic_drops(&w->remote, N_SUMS, w->share_rows, w->s.opts.steps_per_epoch,
                                    w->s.opts.batch_size, r->clock, drops, 64);
    if (n_drops > 0)
        pst_elastic_report(extra, drops, n_drops);
    w->s.extra = extra;
}

/* The final agreement through server 0: every live worker's figures summed, and whether any of
 * them failed. A worker dropped and not back is not waited for (w->missing says there was one).
 * Returns whether the run failed (here, or anywhere it could not learn otherwise). */
static bool finish_together(worker_t *w, int rc)
{
    double v[N_SUMS];
    final_values(w, rc, v);
    bool failed;
    if (w->c->cfg->cluster.elastic) {
        failed = pst_elastic_finish(&w->remote, rc, v, N_SUMS, w->index, &w->missing);
    } else { /* every worker joins, failed or not */
        if (MPI_Allreduce(MPI_IN_PLACE, v, N_SUMS, MPI_DOUBLE, MPI_SUM, w->c->ranks.role) !=
            MPI_SUCCESS)
            return true;
        failed = v[SUM_FAILED] > 0;
    }
    if (!failed && w->index == 0)
        report_comm(w, v);
    return failed;
}

static int worker_train(worker_t *w, pst_err_t *err)
{
    int rc = pst_remote_connect(&w->remote, &w->c->ranks, w->c->cfg, w->c->ranks.role, err);
    w->remote.watchdog = w->c->watchdog;
    /* a reduction waits for a worker until the servers declare it dead, then for the others */
    w->remote.reduce_timeout_s = w->c->cfg->cluster.timeout + w->c->cfg->cluster.heartbeat_timeout;
    w->remote.elastic = w->c->cfg->cluster.elastic;
    w->remote.n_workers = w->c->ranks.n_workers;
    uint64_t clock = 0;
    size_t n = rc == PST_OK ? pst_model_n_params(w->s.model) : 0;
    /* transport.prefetch: a tensor per dense layer, pulled and pushed layer by layer; frozen
     * layers (train.freeze) need that split to stay off the servers */
    if (rc == PST_OK && pst_jobcontract_layered(w->c->cfg, w->s.model))
        rc = pst_remote_begin_layers(&w->remote, 0, w->s.model, &clock, err);
    else if (rc == PST_OK)
        rc = pst_remote_begin(&w->remote, 0, pst_model_params(w->s.model), n, &clock, err);
    if (rc != PST_OK)
        return rc;
    pst_psclient_stats(w->remote.client, &w->at_start);
    pst_session_t *s = &w->s;
    s->opts.start_clock = clock;
    w->remote.clock = clock;
    uint64_t epoch = clock / (uint64_t)s->opts.steps_per_epoch + 1;
    if (clock > 0 && w->index == 0)
        pst_info("resuming at clock %llu (epoch %llu, step %llu)", (unsigned long long)clock,
                 (unsigned long long)epoch,
                 (unsigned long long)(clock % (uint64_t)s->opts.steps_per_epoch + 1));
    /* The epochs from the checkpoint's on are trained again, and logged again. */
    if (s->lead && w->c->args->resume != NULL &&
        (rc = pst_rundir_keep_epochs_before(&s->rundir, (long)epoch, err)) != PST_OK)
        return rc;
    pst_train_hooks_t hooks = {0};
    pst_remote_hooks(&w->remote, &hooks);
    pst_session_hooks(s, &hooks);
    /* the weights come back from the servers' checkpoints, the running statistics from ours */
    pst_workerstate_t ws;
    pst_workerstate_hooks(&ws, s->model, w->c->ckpt_dir, w->index,
                          w->c->cfg->cluster.checkpoint_every, &hooks);
    if ((rc = pst_workerstate_resume(&ws, clock, s->opts.steps_per_epoch, &hooks, err)) != PST_OK)
        return rc;
    rc = pst_session_train(s, &hooks, err);
    int flush_rc = pst_remote_flush(&w->remote, rc == PST_OK ? err : NULL);
    return rc != PST_OK ? rc : flush_rc;
}

static int run_worker(cluster_t *c)
{
    worker_t w = {.c = c, .index = c->ranks.worker};
    pst_err_t err = {0};
    pst_hello_t hello = {0};
    int rc = worker_prepare(&w, &err);
    hello.ok = rc == PST_OK;
    /* With a common file every worker meets the same error and worker 0 reports it; with one
     * file per worker, the worker whose file failed reports its own. */
    bool own_file = pst_shardload_is_pattern(c->cfg->data.train);
    if (rc != PST_OK &&
        (w.index == 0 ? !(own_file && rc == PST_ESTATE) : own_file && rc != PST_ESTATE))
        pst_app_error("worker %d: %s", w.index, err.msg);
    /* The servers create only the tensors every worker declares from its model. */
    pst_contract_t mine;
    pst_contract_init(&mine);
    if (rc == PST_OK && (rc = pst_jobcontract_dense(c->cfg, w.s.model, 0, &mine, &err)) != PST_OK)
        pst_app_error("worker %d: %s", w.index, err.msg);
    hello.ok = rc == PST_OK;
    pst_jobcontract_share(&c->ranks, rc != PST_OK, &mine, NULL, NULL, NULL);
    pst_contract_fini(&mine);
    if (!pst_ranks_exchange(&c->ranks, &hello)) {
        pst_session_fini(&w.s);
        return 1;
    }
    rc = worker_train(&w, &err);
    arm_end(c, rc != PST_OK);
    if (rc != PST_OK)
        pst_app_error("worker %d: %s", w.index, err.msg);
    /* A server silent past cluster.timeout cannot join the end: the job ends now, not after the
     * final join's bound. */
    if (rc == PST_ETIMEOUT) {
        pst_app_error("worker %d: a parameter server is silent: ending the job", w.index);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    /* Every live worker must agree the run succeeded before the lead writes its report. */
    bool any_failed = finish_together(&w, rc);
    /* Tell the servers this worker is gone, whatever happened, so nobody waits for it. */
    pst_remote_close(&w.remote);
    if (!any_failed && w.s.lead && (rc = pst_session_finish(&w.s, &err)) != PST_OK)
        pst_app_error("%s", err.msg);
    pst_session_fini(&w.s);
    free(w.share_rows);
    c->missing = w.missing && !any_failed;
    return rc == PST_OK && !any_failed ? 0 : 1;
}

/* The final join when a dropped worker never came back (it is stopped, or gone): the others wait
 * cluster.timeout for it, then end the job with their own status; MPI_Abort is what ends a rank
 * that cannot run, and with status 0 mpirun then exits 0. */
static int end_without_dropped(cluster_t *c, int status)
{
    double bound = c->cfg->cluster.timeout;
    pst_watchdog_arm(c->watchdog, bound + FAILED_END_S,
                     "the end of the job without a dropped worker");
    bool timed_out = false;
    int worst = pst_mpijob_end_within(&c->job, status, bound, &timed_out);
    if (!timed_out)
        return worst;
    pst_warn("a dropped worker did not come back within %g s: the job ends without it", bound);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, status);
    return status;
}

/* --resume auto: the run in --out DIR resumes when DIR holds a checkpoint of server 0, else it
 * starts there. Rank 0 looks and every rank follows its answer. */
static int resolve_auto_resume(cluster_t *c, pst_train_args_t *resolved, pst_err_t *err)
{
    if (resolved->resume == NULL || strcmp(resolved->resume, PST_RESUME_AUTO) != 0)
        return PST_OK;
    if (resolved->out == NULL || resolved->out[0] == '\0')
        return pst_err_set(err, PST_EINVAL, "--resume auto needs --out DIR: the run to continue");
    int found = 0;
    if (c->ranks.rank == 0) {
        char path[1200];
        snprintf(path, sizeof path, "%s/checkpoints/server-0.ckpt", resolved->out);
        found = access(path, R_OK) == 0;
    }
    MPI_Bcast(&found, 1, MPI_INT, 0, MPI_COMM_WORLD);
    resolved->resume = found ? resolved->out : NULL;
    if (c->ranks.rank == 0)
        pst_info("--resume auto: %s %s",
                 found ? "resuming the run in" : "no checkpoint yet; starting", resolved->out);
    return PST_OK;
}

int pst_cluster_train(const pst_config_t *cfg, const pst_train_args_t *given)
{
    pst_train_args_t resolved = *given;
    const pst_train_args_t *args = &resolved;
    cluster_t c = {.cfg = cfg, .args = args};
    pst_err_t err = {0};
    if (pst_mpijob_begin(&c.job, &err) != PST_OK) {
        pst_app_error("%s", err.msg);
        return 2;
    }
    int rc = pst_ranks_init(&c.ranks, cfg, &err), status = 0;
    if (rc == PST_OK)
        rc = pst_session_dp_check(cfg, true, &err);
    if (rc == PST_OK)
        rc = resolve_auto_resume(&c, &resolved, &err);
    if (rc == PST_OK && c.ranks.rank == 0 && args->resume)
        rc = pst_rundir_check_resume(args->resume, &err);
    if (rc == PST_OK && c.ranks.rank == 0)
        rc = pst_rundir_choose(cfg, args->resume ? args->resume : args->out, c.run_dir,
                               sizeof c.run_dir, &err);
    if (pst_mpijob_agree(MPI_COMM_WORLD, rc) != PST_OK) {
        if (c.ranks.rank == 0)
            pst_app_error("%s", err.msg);
        pst_ranks_fini(&c.ranks);
        return pst_mpijob_end(&c.job, 2);
    }
    MPI_Bcast(c.run_dir, (int)sizeof c.run_dir, MPI_CHAR, 0, MPI_COMM_WORLD);
    snprintf(c.ckpt_dir, sizeof c.ckpt_dir, "%s/checkpoints", c.run_dir);
    c.watchdog = pst_watchdog_new();
    if (c.ranks.worker < 0) {
        status = run_server(&c);
    } else if (pst_sparse_train_selected(cfg)) {
        status =
            pst_sparse_train_worker(&c.ranks, cfg, c.run_dir, args->resume != NULL, &c.missing);
        arm_end(&c, status != 0);
    } else {
        status = run_worker(&c); /* armed once its training ended */
    }
    pst_ranks_fini(&c.ranks);
    /* The final join: every rank exits with the worst status of any rank. */
    if (c.missing) {
        status = end_without_dropped(&c, status);
    } else {
        status = pst_mpijob_end(&c.job, status);
    }
    pst_watchdog_destroy(&c.watchdog);
    return status;
}
