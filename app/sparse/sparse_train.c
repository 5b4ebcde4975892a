/* pstrain train for sparse models: the local run in this process, and the worker ranks of a
 * distributed run against parameter servers that create rows on first touch. */
#include "app/sparse/sparse_train.h"

#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "app/console.h"
#include "app/mpi/elastic.h"
#include "app/mpi/jobcontract.h"
#include "app/mpi/mpijob.h"
#include "app/mpi/remote.h"
#include "app/mpi/steptime.h"
#include "app/sparse/sparse_elastic.h"
#include "app/sparse/sparse_run.h"
#include "app/sparse/sparse_save.h"
#include "app/sparse/sparse_wd.h"
#include "common/log.h"
#include "common/rng.h"
#include "common/sample/split.h"
#include "worker/psclient.h"
#include "worker/train/sparse_remote.h"
#include "worker/train/wide_deep_remote.h"

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
                              run->job.wd.dropout_seed, err);
        run->trainer =
            (pst_sparse_trainer_t){wd, pst_wd_local_step_cb, pst_wd_local_predict_cb, NULL, NULL};
    } else {
        model = pst_sparse_model_new(&opts, err);
        run->trainer = pst_sparse_trainer_local(model);
    }
    if (run->trainer.ctx == NULL)
        return err->code ? err->code : PST_ENOMEM;
    pst_sparse_best_t best;
    if (wd != NULL)
        pst_sparse_best_init_wd(&best, wd);
    else
        pst_sparse_best_init_local(&best, model);
    run->best = pst_sparse_run_wants_best(run) ? &best : NULL;
    rc = pst_rundir_open(&run->rundir, run->cfg, out, err);
    if (rc == PST_OK)
        rc = pst_sparse_run_train(run, err);
    if (rc == PST_OK && (rc = pst_sparse_evaluate_keep(&run->trainer, run->data.test, &run->test,
                                                       &run->test_prob, err)) != PST_OK)
        pst_err_prefix(err, rc, "test: ");
    const pst_sparse_model_t *rows = wd ? pst_wd_local_rows(wd) : model;
    run->sparse.keys = (double)pst_sparse_model_n_keys(rows);
    run->sparse.model_bytes = (double)pst_sparse_model_bytes(rows);
    if (rc == PST_OK)
        rc = pst_sparse_save_model(run, rows, model ? pst_sparse_model_bias(model) : 0.0f,
                                   wd ? pst_wd_local_model(wd) : NULL, err);
    if (rc == PST_OK)
        rc = pst_sparse_run_finish(run, err);
    run->best = NULL;
    pst_sparse_best_fini(&best);
    pst_sparse_model_destroy(&model);
    pst_wd_local_destroy(&wd);
    return rc;
}

int pst_sparse_train_local(const pst_config_t *cfg, const char *out, const char *resume)
{
    if (resume != NULL) {
        pst_app_error("--resume restarts a distributed run from its servers' checkpoints; run "
                      "model.type %s under mpirun with cluster.checkpoint_every",
                      cfg->model.type);
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

/* A worker's link to the servers and the trainer that steps through it: wd for model.type
 * wide_deep, else remote. */
typedef struct worker {
    pst_remote_t link;
    pst_sparse_remote_t remote;
    pst_wd_remote_t *wd;
    pst_sparse_best_t best;        /* lead: the best epoch's model, pulled from the servers */
    MPI_Comm comm;                 /* the workers */
    const pst_sparse_run_t *run;   /* its epochs and steps tag the elastic agreements */
    pst_psclient_stats_t at_start; /* the link's counters before the first step */
    double step[PST_STEPTIME_N];   /* this worker's training figures */
} worker_t;

static void worker_fini(worker_t *r)
{
    pst_remote_close(&r->link);
    pst_sparse_best_fini(&r->best);
    pst_sparse_remote_fini(&r->remote);
    pst_wd_remote_destroy(&r->wd);
}

/* The trainer's counters, whichever it is. */
static void worker_counts(const worker_t *r, pst_wd_remote_stats_t *out)
{
    if (r->wd != NULL) {
        pst_wd_remote_stats(r->wd, out);
        return;
    }
    *out = (pst_wd_remote_stats_t){.steps = r->remote.clock,
                                   .keys_pushed = r->remote.keys_pushed,
                                   .eval_wire = r->remote.eval_wire,
                                   .eval_raw = r->remote.eval_raw};
}

static int worker_flush(worker_t *r, pst_err_t *err)
{
    if (r->link.client == NULL)
        return PST_OK;
    return r->wd != NULL ? pst_wd_remote_flush(r->wd, err)
                         : pst_sparse_remote_flush(&r->remote, err);
}

/* After every epoch: whether every worker succeeded (the winning failure's message reaches
 * every worker), and the lead's early-stopping decision for all. */
static int agree_epoch(void *ctx, int rc, bool *stop, pst_err_t *err)
{
    worker_t *r = ctx;
    /* coalesced requests go before the reduction: another worker's evaluation may wait on them */
    int flushed = r->link.client != NULL ? pst_psclient_flush(r->link.client, err) : PST_OK;
    rc = rc != PST_OK ? rc : flushed;
    if (r->link.elastic)
        return pst_sparse_elastic_agree(
            &r->link, (uint64_t)r->run->epochs_run * (uint64_t)r->run->steps_per_epoch, rc, stop,
            err);
    int failed = pst_mpijob_agree_err(r->comm, rc, 1, err);
    if (rc == PST_OK && failed != PST_OK)
        pst_err_prefix(err, failed, "another worker failed: ");
    int flag = *stop;
    MPI_Bcast(&flag, 1, MPI_INT, 0, r->comm);
    *stop = flag != 0;
    return failed;
}

/* Connects and registers; every worker of the run must have registered before anyone pushes. */
static int remote_begin(pst_sparse_run_t *run, worker_t *r, pst_ranks_t *ranks, bool resume,
                        pst_err_t *err)
{
    int rc = pst_remote_connect(&r->link, ranks, run->cfg, ranks->role, err);
    r->remote.client = r->link.client;
    /* an agreement waits for a worker until the servers declare it dead, then for the others */
    r->link.reduce_timeout_s = run->cfg->cluster.timeout + run->cfg->cluster.heartbeat_timeout;
    r->link.n_workers = ranks->n_workers;
    r->link.elastic = run->cfg->cluster.elastic;
    if (rc == PST_OK && resume && r->wd != NULL)
        rc = pst_err_set(err, PST_EINVAL,
                         "--resume: wide_deep runs cannot resume yet; sparse_lr and fm runs can");
    else if (rc == PST_OK && resume)
        rc = pst_sparse_remote_resume(&r->remote, &run->start_clock, err);
    else if (rc == PST_OK)
        rc = r->wd != NULL ? pst_wd_remote_register(r->wd, r->link.client, err)
                           : pst_sparse_remote_register(&r->remote, err);
    if (rc == PST_OK && resume && run->lead) {
        uint64_t epoch = run->start_clock / (uint64_t)run->steps_per_epoch + 1;
        pst_info("resuming at clock %llu (epoch %llu, step %llu)",
                 (unsigned long long)run->start_clock, (unsigned long long)epoch,
                 (unsigned long long)(run->start_clock % (uint64_t)run->steps_per_epoch + 1));
        /* The epochs from the checkpoint's on are trained again, and logged again. */
        rc = pst_rundir_keep_epochs_before(&run->rundir, (long)epoch, err);
    }
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
    /* one worker shuffles as the local run does, so the two runs take the same steps */
    if (n_workers > 1)
        run->shuffle_seed = pst_rng_derive(run->job.shuffle_seed, (uint64_t)worker);
    return PST_OK;
}

/* A new local model of the run's spec, to hold the servers' weights: *wd for wide_deep, else
 * *model. */
static int local_copy(const pst_sparse_run_t *run, pst_sparse_model_t **model, pst_wd_local_t **wd,
                      pst_err_t *err)
{
    const pst_sparse_job_t *j = &run->job;
    pst_sparse_train_opts_t opts;
    pst_sparse_job_local_opts(j, &opts);
    if (j->wide_deep) {
        pst_optim_cfg_t dense;
        pst_sparse_job_local_dense_opts(j, &dense);
        *wd = pst_wd_job_local(&j->wd, &opts, &dense, j->lr, j->init_seed, j->wd.dropout_seed, err);
        return *wd != NULL ? PST_OK : pst_err_code(err, PST_ENOMEM);
    }
    *model = pst_sparse_model_new(&opts, err);
    return *model != NULL ? PST_OK : pst_err_code(err, PST_ENOMEM);
}

/* Lead: keeps the best epoch's weights by pulling them from the servers into a local copy. */
static int best_begin(pst_sparse_run_t *run, worker_t *r, pst_err_t *err)
{
    int rc;
    if (r->wd != NULL) {
        pst_wd_local_t *copy = NULL;
        if ((rc = local_copy(run, NULL, &copy, err)) != PST_OK)
            return rc;
        pst_sparse_trainer_t scorer = {copy, pst_wd_local_step_cb, pst_wd_local_predict_cb, NULL,
                                       NULL};
        pst_sparse_best_init_wd_remote(&r->best, r->wd, copy, scorer);
    } else {
        pst_sparse_train_opts_t local;
        pst_sparse_job_local_opts(&run->job, &local);
        if ((rc = pst_sparse_best_init_remote(&r->best, &r->remote, &local, err)) != PST_OK)
            return rc;
    }
    run->best = &r->best;
    return PST_OK;
}

static int worker_prepare(pst_sparse_run_t *run, worker_t *r, pst_ranks_t *ranks,
                          const char *run_dir, bool resume, pst_err_t *err)
{
    if (run->cfg->data.buffer_rows > 0)
        return pst_err_set(err, PST_EINVAL,
                           "data.buffer_rows %ld: streaming data.train is for local runs; under "
                           "mpirun set data.buffer_rows: 0 (each worker reads the file whole)",
                           run->cfg->data.buffer_rows);
    int rc = pst_sparse_run_prepare(run, err);
    const pst_sparse_job_t *j = &run->job;
    pst_sparse_remote_opts_t opts = {.spec = j->spec,
                                     .lr = j->lr,
                                     .init_scale = j->init_scale,
                                     .init_seed = j->init_seed,
                                     .n_workers = (uint32_t)ranks->n_workers,
                                     .prefetch = run->cfg->transport.prefetch,
                                     .prefetch_depth = (int)run->cfg->transport.prefetch_depth,
                                     .pushes_now =
                                         strcmp(run->cfg->cluster.consistency, "asp") != 0};
    pst_sparse_remote_init(&r->remote, NULL, &opts);
    if (rc == PST_OK && j->wide_deep)
        r->wd = pst_wd_job_remote(&j->wd, j->lr, j->init_scale, j->init_seed,
                                  (uint32_t)ranks->n_workers, (uint32_t)ranks->worker, err);
    if (rc == PST_OK && j->wide_deep && r->wd == NULL)
        rc = pst_err_code(err, PST_ENOMEM);
    size_t keys = 0;
    if (rc == PST_OK && run->lead) {
        rc = r->wd != NULL
                 ? pst_wd_remote_mark_trained(r->wd, run->data.train, &keys, err)
                 : pst_sparse_remote_mark_trained(&r->remote, run->data.train, &keys, err);
        run->sparse.keys = (double)keys;
    }
    if (rc == PST_OK)
        rc = take_share(run, ranks->worker, ranks->n_workers, err);
    run->rundir.append = resume;
    if (rc == PST_OK && run->lead)
        rc = pst_rundir_open(&run->rundir, run->cfg, run_dir, err);
    if (rc == PST_OK && run->lead && pst_sparse_run_wants_best(run))
        rc = best_begin(run, r, err);
    run->trainer =
        r->wd != NULL ? pst_wd_remote_trainer(r->wd) : pst_sparse_remote_trainer(&r->remote);
    if (!run->cfg->cluster.elastic) /* the MPI agreements hold every worker: none is left behind */
        run->trainer.rejoin = NULL;
    r->comm = ranks->role;
    r->run = run;
    run->agree = agree_epoch;
    run->agree_ctx = r;
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

/* The figures every worker adds up at the end: whether it failed, its link's counters, rows,
 * training wire and raw bytes, keys pushed, waits, steps and step times. */
enum {
    SUM_FAILED,
    SUM_COMM,
    SUM_ROWS = SUM_COMM + PST_COMM_N,
    SUM_TRAIN_WIRE,
    SUM_TRAIN_RAW,
    SUM_KEYS,
    SUM_PULL_WAIT,
    SUM_PUSH_WAIT,
    SUM_STEP,
    SUM_STEPS,
    SUM_STEPTIME,
    N_SUMS = SUM_STEPTIME + PST_STEPTIME_N
};

/* This worker's figures. train_wire and train_raw: its bytes of the training steps. */
static void final_values(const pst_sparse_run_t *run, const worker_t *r, int rc, double train_wire,
                         double train_raw, double v[N_SUMS])
{
    pst_psclient_stats_t st = {0};
    if (r->link.client != NULL)
        pst_psclient_stats(r->link.client, &st);
    pst_wd_remote_stats_t counts;
    worker_counts(r, &counts);
    v[SUM_FAILED] = rc != PST_OK;
    pst_comm_counters(&st, v + SUM_COMM);
    v[SUM_ROWS] = (double)run->rows_trained;
    v[SUM_TRAIN_WIRE] = train_wire;
    v[SUM_TRAIN_RAW] = train_raw;
    v[SUM_KEYS] = (double)counts.keys_pushed;
    /* the wide & deep trainer does not time its waits: unknown rather than zero */
    v[SUM_PULL_WAIT] = r->wd != NULL ? NAN : r->remote.times.pull_wait;
    v[SUM_PUSH_WAIT] = r->wd != NULL ? NAN : r->remote.times.push_wait;
    v[SUM_STEP] = r->wd != NULL ? NAN : r->remote.times.total;
    v[SUM_STEPS] = (double)counts.steps;
    memcpy(v + SUM_STEPTIME, r->step, sizeof r->step);
}

/* Lead: the workers' traffic and rows, summed, into the report. */
static void report_comm(pst_sparse_run_t *run, worker_t *r, pst_ranks_t *ranks,
                        const double sum[N_SUMS])
{
    double all_steps = sum[SUM_STEPS];
    run->rows_trained = (uint64_t)sum[SUM_ROWS];
    run->sparse.bytes_per_example = sum[SUM_ROWS] > 0 ? sum[SUM_TRAIN_WIRE] / sum[SUM_ROWS] : NAN;
    run->sparse.raw_bytes_per_example =
        sum[SUM_ROWS] > 0 ? sum[SUM_TRAIN_RAW] / sum[SUM_ROWS] : NAN;
    run->sparse.keys_per_step = all_steps > 0 ? sum[SUM_KEYS] / all_steps : NAN;
    cJSON *comm = run->comm = cJSON_CreateObject();
    pst_comm_json(comm, ranks, run->cfg, sum + SUM_COMM);
    pst_comm_codec_json(comm, r->link.client);
    pst_json_add_number(comm, "train_bytes_wire", sum[SUM_TRAIN_WIRE]);
    /* Per training step, mean over workers: blocked on pulls, on push acknowledgements, the rest */
    double per_step_ms = all_steps > 0 ? 1e3 / all_steps : NAN;
    pst_json_add_number(comm, "step_pull_wait_ms", sum[SUM_PULL_WAIT] * per_step_ms);
    pst_json_add_number(comm, "step_push_wait_ms", sum[SUM_PUSH_WAIT] * per_step_ms);
    pst_json_add_number(comm, "step_compute_ms",
                        (sum[SUM_STEP] - sum[SUM_PULL_WAIT] - sum[SUM_PUSH_WAIT]) * per_step_ms);
    pst_steptime_json(comm, sum + SUM_STEPTIME);
    if (r->link.client != NULL) {
        server_memory(run, r, ranks->n_servers);
        pst_steptime_query_servers(comm, r->link.client, ranks->n_servers, all_steps);
    }
}

/* The end of a worker's run (collective): every worker's figures summed into the lead's report
 * and whether any failed, through server 0 with cluster.elastic (a worker dropped and not back is
 * not waited for: *missing says there was one) or MPI; the link closed. Returns whether the run
 * failed. */
static bool finish_together(pst_sparse_run_t *run, worker_t *r, pst_ranks_t *ranks, int rc,
                            double train_wire, double train_raw, bool *missing)
{
    double v[N_SUMS], sum[N_SUMS];
    final_values(run, r, rc, train_wire, train_raw, v);
    if (run->cfg->cluster.elastic) {
        bool failed = pst_elastic_finish(&r->link, rc, v, N_SUMS, ranks->worker, missing);
        if (!failed && run->lead) {
            pst_wd_remote_stats_t counts; /* the lead's steps: the run's last clock */
            worker_counts(r, &counts);
            report_comm(run, r, ranks, v);
            pst_sparse_elastic_report(run, &r->link, N_SUMS, counts.steps);
        }
        worker_fini(r);
        return failed;
    }
    MPI_Reduce(v, sum, N_SUMS, MPI_DOUBLE, MPI_SUM, 0, ranks->role);
    if (run->lead)
        report_comm(run, r, ranks, sum);
    worker_fini(r);
    return pst_mpijob_agree(ranks->role, rc) != PST_OK;
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

/* The model the lead writes to model.pst: the servers' final weights, or the best epoch's copy
 * when early stopping restored it (the weights the test figures were scored with). */
typedef struct pulled {
    pst_sparse_model_t *model;
    pst_wd_local_t *wd;
} pulled_t;

static void pulled_fini(pulled_t *p)
{
    pst_sparse_model_destroy(&p->model);
    pst_wd_local_destroy(&p->wd);
}

static int pull_model(pst_sparse_run_t *run, worker_t *r, pulled_t *out, pst_err_t *err)
{
    if (r->best.epoch > 0) { /* restored: take the copy over from best */
        out->model = r->best.copy;
        out->wd = r->best.wd_copy;
        r->best.copy = NULL;
        r->best.wd_copy = NULL;
        return PST_OK;
    }
    int rc = local_copy(run, &out->model, &out->wd, err);
    if (rc == PST_OK)
        rc = r->wd != NULL ? pst_wd_remote_pull_model(r->wd, out->wd, err)
                           : pst_sparse_remote_pull_model(&r->remote, out->model, err);
    if (rc != PST_OK)
        pulled_fini(out);
    return rc;
}

static int save_pulled(pst_sparse_run_t *run, const pulled_t *p, pst_err_t *err)
{
    if (p->wd != NULL)
        return pst_sparse_save_model(run, pst_wd_local_rows(p->wd), 0.0f, pst_wd_local_model(p->wd),
                                     err);
    return pst_sparse_save_model(run, p->model, pst_sparse_model_bias(p->model), NULL, err);
}

/* Trains, then (lead) scores the test rows on the final global weights and pulls them into
 * *pulled. *train_wire and *train_raw receive this worker's training traffic. */
static int worker_train(pst_sparse_run_t *run, worker_t *r, pst_ranks_t *ranks, bool resume,
                        double *train_wire, double *train_raw, pulled_t *pulled, pst_err_t *err)
{
    int rc = remote_begin(run, r, ranks, resume, err);
    if (rc == PST_OK) {
        pst_psclient_stats(r->link.client, &r->at_start);
        rc = pst_sparse_run_train(run, err);
    }
    int flush_rc = worker_flush(r, rc == PST_OK ? err : NULL);
    rc = rc != PST_OK ? rc : flush_rc;
    pst_psclient_stats_t st = {0};
    if (r->link.client != NULL)
        pst_psclient_stats(r->link.client, &st);
    pst_wd_remote_stats_t counts;
    worker_counts(r, &counts);
    *train_wire = (double)(st.bytes_wire - counts.eval_wire);
    *train_raw = (double)(st.bytes_raw - counts.eval_raw);
    step_figures(r, &st, run->seconds);
    if (rc == PST_OK && run->lead &&
        (rc = pst_sparse_evaluate_keep(&run->trainer, run->data.test, &run->test, &run->test_prob,
                                       err)) != PST_OK)
        pst_err_prefix(err, rc, "test: ");
    if (rc == PST_OK && run->lead)
        rc = pull_model(run, r, pulled, err);
    return rc;
}

/* The job's model contract: wide_deep's rows and deep stack, or the rows and bias of the others. */
static int sparse_contract(const pst_sparse_run_t *run, const worker_t *r, pst_contract_t *c,
                           pst_err_t *err)
{
    if (r->wd == NULL)
        return pst_jobcontract_sparse(
            r->remote.width, run->job.tsv ? pst_hash_spec_n_features(&run->job.hash) : 0, c, err);
    pst_wide_deep_spec_t spec;
    pst_wd_job_spec(&run->job.wd, &spec);
    size_t n_dense = pst_wd_job_dense_params(&run->job.wd, err);
    return n_dense > 0 ? pst_jobcontract_wide_deep(&spec, n_dense, c, err)
                       : pst_err_code(err, PST_EINVAL);
}

int pst_sparse_train_worker(pst_ranks_t *ranks, const pst_config_t *cfg, const char *run_dir,
                            bool resume, bool *missing)
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
    /* The servers create only the tensors the workers declare. */
    pst_contract_t mine;
    pst_contract_init(&mine);
    bool declares = rc == PST_OK;
    if (declares && (rc = sparse_contract(&run, &r, &mine, &err)) != PST_OK)
        pst_app_error("%s", err.msg);
    hello.ok = rc == PST_OK;
    pst_jobcontract_share(ranks, rc != PST_OK, declares ? &mine : NULL, NULL, NULL, NULL);
    pst_contract_fini(&mine);
    if (!pst_ranks_exchange(ranks, &hello)) {
        pst_sparse_run_fini(&run);
        worker_fini(&r);
        return 1;
    }
    double train_wire = 0, train_raw = 0;
    pulled_t pulled = {0};
    rc = worker_train(&run, &r, ranks, resume, &train_wire, &train_raw, &pulled, &err);
    if (rc != PST_OK)
        pst_app_error("worker %d: %s", index, err.msg[0] ? err.msg : pst_strerror(rc));
    /* Every worker must agree the run succeeded before the lead writes its report. */
    bool any_failed = finish_together(&run, &r, ranks, rc, train_wire, train_raw, missing);
    if (!any_failed && run.lead &&
        ((rc = save_pulled(&run, &pulled, &err)) != PST_OK ||
         (rc = pst_sparse_run_finish(&run, &err)) != PST_OK))
        pst_app_error("%s", err.msg);
    pulled_fini(&pulled);
    pst_sparse_run_fini(&run);
    return rc == PST_OK && !any_failed ? 0 : 1;
}
