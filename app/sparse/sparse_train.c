/* pstrain train for sparse models: the local run in this process, and the worker ranks of a
 * distributed run against parameter servers that create rows on first touch. */
#include "app/sparse/sparse_train.h"

#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "app/console.h"
#include "app/mpi/mpijob.h"
#include "app/mpi/remote.h"
#include "app/mpi/steptime.h"
#include "app/sparse/sparse_run.h"
#include "app/sparse/sparse_wd.h"
#include "common/log.h"
#include "common/rng.h"
#include "common/sample/split.h"
#include "worker/psclient.h"
#include "worker/train/sparse_remote.h"

bool pst_sparse_train_selected(const pst_config_t *cfg)
{
    return cfg->model.type != NULL && strcmp(cfg->model.type, "dense") != 0;
}

static int train_local(pst_sparse_run_t *run, const char *out, pst_err_t *err)
{
    int rc = pst_sparse_run_prepare(run, err);
    if (rc != PST_OK)
        return rc;
    pst_sparse_train_opts_t opts;
    pst_sparse_job_local_opts(&run->job, &opts);
    pst_sparse_model_t *model = NULL;
    pst_wd_local_t *wd = NULL;
    if (run->job.wide_deep) {
        pst_optim_cfg_t dense;
        pst_sparse_job_local_dense_opts(&run->job, &dense);
        wd = pst_wd_job_local(&run->job.wd, &opts, &dense, run->job.lr, run->job.init_seed,
                              pst_rng_derive((uint64_t)run->cfg->seed, 200), err);
        run->trainer = (pst_sparse_trainer_t){wd, pst_wd_local_step_cb, pst_wd_local_predict_cb};
    } else {
        model = pst_sparse_model_new(&opts, err);
        run->trainer = pst_sparse_trainer_local(model);
    }
    if (run->trainer.ctx == NULL)
        return err->code ? err->code : PST_ENOMEM;
    rc = pst_rundir_open(&run->rundir, run->cfg, out, err);
    if (rc == PST_OK)
        rc = pst_sparse_run_train(run, err);
    if (rc == PST_OK &&
        (rc = pst_sparse_evaluate(&run->trainer, run->data.test, &run->test, err)) != PST_OK)
        pst_err_prefix(err, rc, "test: ");
    const pst_sparse_model_t *rows = wd ? pst_wd_local_rows(wd) : model;
    run->sparse.keys = (double)pst_sparse_model_n_keys(rows);
    run->sparse.model_bytes = (double)pst_sparse_model_bytes(rows);
    if (rc == PST_OK)
        rc = pst_sparse_run_finish(run, err);
    pst_sparse_model_destroy(&model);
    pst_wd_local_destroy(&wd);
    return rc;
}

int pst_sparse_train_local(const pst_config_t *cfg, const char *out, const char *resume)
{
    if (resume != NULL) {
        pst_app_error("--resume: model.type %s runs do not resume", cfg->model.type);
        return 2;
    }
    pst_sparse_run_t run;
    pst_err_t err = {0};
    pst_sparse_run_init(&run, cfg, true);
    int rc = train_local(&run, out, &err);
    if (rc != PST_OK)
        pst_app_error("%s", err.msg[0] ? err.msg : pst_strerror(rc));
    pst_sparse_run_fini(&run);
    return rc == PST_OK ? 0 : 1;
}

/* ---- distributed runs ---- */

/* A worker's link to the servers and the trainer that steps through it. */
typedef struct worker {
    pst_remote_t link;
    pst_sparse_remote_t remote;
    pst_psclient_stats_t at_start; /* the link's counters before the first step */
    double step[PST_STEPTIME_N];   /* this worker's training figures */
} worker_t;

static void worker_fini(worker_t *r)
{
    pst_remote_close(&r->link);
    pst_sparse_remote_fini(&r->remote);
}

/* Connects and registers; every worker of the run must have registered before anyone pushes. */
static int remote_begin(worker_t *r, pst_ranks_t *ranks, const pst_config_t *cfg, pst_err_t *err)
{
    int rc = pst_remote_connect(&r->link, ranks, cfg, ranks->role, err);
    r->remote.client = r->link.client;
    if (rc == PST_OK)
        rc = pst_sparse_remote_register(&r->remote, err);
    if (pst_mpijob_agree(ranks->role, rc) != PST_OK && rc == PST_OK)
        rc = pst_err_set(err, PST_ESTATE, "another worker failed to register the model");
    return rc;
}

/* Keeps this worker's rank-strided share of the training rows (row i goes to worker i mod W);
 * every worker takes as many steps per epoch as the smallest share needs, so BSP clocks meet. */
static int take_share(pst_sparse_run_t *run, int worker, int n_workers, pst_err_t *err)
{
    size_t n_train = run->data.train->n_rows, *share = NULL, n_share = 0;
    if (n_train < (size_t)n_workers)
        return pst_err_set(err, PST_EINVAL, "%zu training rows cannot feed %d workers", n_train,
                           n_workers);
    int rc = pst_partition_rows(n_train, worker, n_workers, &share, &n_share, err);
    pst_dataset_t *mine = NULL;
    if (rc == PST_OK)
        rc = pst_click_data_take(run->data.train, share, n_share, &mine, err);
    free(share);
    if (rc != PST_OK)
        return rc;
    pst_dataset_destroy(&run->data.train);
    run->data.train = mine;
    size_t smallest = n_train / (size_t)n_workers;
    run->steps_per_epoch = (long)((smallest + run->job.batch - 1) / run->job.batch);
    run->shuffle_seed = pst_rng_derive(run->job.shuffle_seed, (uint64_t)worker);
    return PST_OK;
}

static int worker_prepare(pst_sparse_run_t *run, worker_t *r, pst_ranks_t *ranks,
                          const char *run_dir, bool resume, pst_err_t *err)
{
    if (resume)
        return pst_err_set(err, PST_EINVAL, "--resume: model.type %s runs do not resume",
                           run->cfg->model.type);
    if (run->cfg->data.buffer_rows > 0)
        return pst_err_set(err, PST_EINVAL,
                           "data.buffer_rows %ld: streaming data.train is for local runs; under "
                           "mpirun set data.buffer_rows: 0 (each worker reads the file whole)",
                           run->cfg->data.buffer_rows);
    if (strcmp(run->cfg->model.type, "wide_deep") == 0)
        return pst_err_set(err, PST_EINVAL,
                           "model.type wide_deep trains in one process: run it without mpirun "
                           "(its deep part has no server tensors yet)");
    int rc = pst_sparse_run_prepare(run, err);
    const pst_sparse_job_t *j = &run->job;
    pst_sparse_remote_opts_t opts = {.spec = j->spec,
                                     .lr = j->lr,
                                     .init_scale = j->init_scale,
                                     .init_seed = j->init_seed,
                                     .n_workers = (uint32_t)ranks->n_workers};
    pst_sparse_remote_init(&r->remote, NULL, &opts);
    size_t keys = 0;
    if (rc == PST_OK && run->lead &&
        (rc = pst_sparse_remote_mark_trained(&r->remote, run->data.train, &keys, err)) == PST_OK)
        run->sparse.keys = (double)keys;
    if (rc == PST_OK)
        rc = take_share(run, ranks->worker, ranks->n_workers, err);
    if (rc == PST_OK && run->lead)
        rc = pst_rundir_open(&run->rundir, run->cfg, run_dir, err);
    run->trainer = pst_sparse_remote_trainer(&r->remote);
    return rc;
}

/* Lead, after every worker finished training: the rows and memory the servers hold. A server that
 * does not answer leaves the figures unknown (NaN) rather than low. */
static void server_memory(pst_sparse_run_t *run, worker_t *r, int n_servers)
{
    double rows = 0, bytes = 0, rss = 0;
    for (int i = 0; i < n_servers; i++) {
        uint64_t c[PST_STAT_COUNT];
        pst_err_t err = {0};
        if (pst_psclient_server_stats(r->link.client, (uint32_t)i, c, &err) != PST_OK) {
            pst_warn("server %d: no statistics: %s", i, err.msg);
            return;
        }
        rows += (double)c[PST_STAT_SPARSE_ROWS];
        bytes += (double)c[PST_STAT_STORE_BYTES];
        rss = fmax(rss, (double)c[PST_STAT_PEAK_RSS]);
    }
    run->sparse.server_rows = rows;
    run->sparse.server_bytes = bytes;
    run->sparse.server_peak_rss = rss > 0 ? rss : NAN;
}

/* Sums the workers' traffic and rows into the lead's report (collective). train_wire and
 * train_raw: this worker's bytes of the training steps. */
static void report_comm(pst_sparse_run_t *run, worker_t *r, pst_ranks_t *ranks, double train_wire,
                        double train_raw)
{
    pst_psclient_stats_t st = {0};
    if (r->link.client != NULL)
        pst_psclient_stats(r->link.client, &st);
    /* The link's counters, then rows, training wire and raw bytes, keys pushed. */
    enum { ROWS = PST_COMM_N, TRAIN_WIRE, TRAIN_RAW, KEYS, N_SUMS };
    double v[N_SUMS], sum[N_SUMS], steps = (double)r->remote.clock, all_steps = 0;
    pst_comm_counters(&st, v);
    v[ROWS] = (double)run->rows_trained;
    v[TRAIN_WIRE] = train_wire;
    v[TRAIN_RAW] = train_raw;
    v[KEYS] = (double)r->remote.keys_pushed;
    MPI_Reduce(v, sum, N_SUMS, MPI_DOUBLE, MPI_SUM, 0, ranks->role);
    MPI_Reduce(&steps, &all_steps, 1, MPI_DOUBLE, MPI_SUM, 0, ranks->role);
    double step_sum[PST_STEPTIME_N];
    MPI_Reduce(r->step, step_sum, PST_STEPTIME_N, MPI_DOUBLE, MPI_SUM, 0, ranks->role);
    if (!run->lead)
        return;
    run->rows_trained = (uint64_t)sum[ROWS];
    run->sparse.bytes_per_example = sum[ROWS] > 0 ? sum[TRAIN_WIRE] / sum[ROWS] : NAN;
    run->sparse.raw_bytes_per_example = sum[ROWS] > 0 ? sum[TRAIN_RAW] / sum[ROWS] : NAN;
    run->sparse.keys_per_step = all_steps > 0 ? sum[KEYS] / all_steps : NAN;
    cJSON *comm = run->comm = cJSON_CreateObject();
    pst_comm_json(comm, ranks, run->cfg, sum);
    pst_json_add_number(comm, "train_bytes_wire", sum[TRAIN_WIRE]);
    pst_steptime_json(comm, step_sum);
    if (r->link.client != NULL) {
        server_memory(run, r, ranks->n_servers);
        pst_steptime_query_servers(comm, r->link.client, ranks->n_servers, all_steps);
    }
}

/* This worker's per-step figures from its link counters st after training, without the
 * validation pulls between epochs (the lead's). */
static void step_figures(worker_t *r, const pst_psclient_stats_t *st, double seconds)
{
    pst_psclient_stats_t train = *st;
    const pst_sparse_remote_t *m = &r->remote;
    train.pull_wait_ms -= m->eval_pull_wait_ms;
    train.bytes_wire_sent -= m->eval_wire_sent;
    train.bytes_wire_received -= m->eval_wire - m->eval_wire_sent;
    pst_steptime_worker(&r->at_start, &train, (double)m->clock, seconds, r->step);
}

/* Trains, then (lead) scores the test rows on the final global weights. *train_wire and
 * *train_raw receive this worker's training traffic. */
static int worker_train(pst_sparse_run_t *run, worker_t *r, pst_ranks_t *ranks,
                        const pst_config_t *cfg, double *train_wire, double *train_raw,
                        pst_err_t *err)
{
    int rc = remote_begin(r, ranks, cfg, err);
    if (rc == PST_OK) {
        pst_psclient_stats(r->link.client, &r->at_start);
        rc = pst_sparse_run_train(run, err);
    }
    int flush_rc = r->link.client != NULL
                       ? pst_sparse_remote_flush(&r->remote, rc == PST_OK ? err : NULL)
                       : PST_OK;
    rc = rc != PST_OK ? rc : flush_rc;
    pst_psclient_stats_t st = {0};
    if (r->link.client != NULL)
        pst_psclient_stats(r->link.client, &st);
    *train_wire = (double)(st.bytes_wire - r->remote.eval_wire);
    *train_raw = (double)(st.bytes_raw - r->remote.eval_raw);
    step_figures(r, &st, run->seconds);
    if (rc == PST_OK && run->lead &&
        (rc = pst_sparse_evaluate(&run->trainer, run->data.test, &run->test, err)) != PST_OK)
        pst_err_prefix(err, rc, "test: ");
    return rc;
}

int pst_sparse_train_worker(pst_ranks_t *ranks, const pst_config_t *cfg, const char *run_dir,
                            bool resume)
{
    pst_sparse_run_t run;
    worker_t r;
    memset(&r, 0, sizeof r);
    pst_err_t err = {0};
    pst_hello_t hello = {0};
    int index = ranks->worker;
    pst_sparse_run_init(&run, cfg, index == 0);
    int rc = worker_prepare(&run, &r, ranks, run_dir, resume, &err);
    hello.ok = rc == PST_OK;
    /* Every worker reads the same files and meets the same error: worker 0 reports it. */
    if (rc != PST_OK && index == 0)
        pst_app_error("%s", err.msg[0] ? err.msg : pst_strerror(rc));
    if (!pst_ranks_exchange(ranks, &hello)) {
        pst_sparse_run_fini(&run);
        worker_fini(&r);
        return 1;
    }
    double train_wire = 0, train_raw = 0;
    rc = worker_train(&run, &r, ranks, cfg, &train_wire, &train_raw, &err);
    if (rc != PST_OK)
        pst_app_error("worker %d: %s", index, err.msg[0] ? err.msg : pst_strerror(rc));
    report_comm(&run, &r, ranks, train_wire, train_raw);
    worker_fini(&r);
    /* Every worker must agree the run succeeded before the lead writes its report. */
    bool any_failed = pst_mpijob_agree(ranks->role, rc) != PST_OK;
    if (!any_failed && run.lead && (rc = pst_sparse_run_finish(&run, &err)) != PST_OK)
        pst_app_error("%s", err.msg);
    pst_sparse_run_fini(&run);
    return rc == PST_OK && !any_failed ? 0 : 1;
}
