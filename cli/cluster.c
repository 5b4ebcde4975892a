/* Distributed runs under mpirun: the first cluster.servers ranks serve parameters, the others
 * train on rank-strided shares of the rows. MPI bootstraps (endpoint exchange, readiness), reduces
 * the few numbers every worker must agree on at epoch ends, and joins; parameters travel over
 * ZeroMQ. */
#include "cli/cluster.h"

#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/netaddr.h"
#include "cli/session.h"
#include "common/log.h"
#include "common/split.h"
#include "ps/server.h"
#include "worker/psclient.h"

#define ENDPOINT_LEN 256

/* What every rank tells every other rank once, at start-up. */
typedef struct rank_hello {
    int32_t ok;
    char endpoint[ENDPOINT_LEN]; /* servers: where to connect */
    char host[64];
} rank_hello_t;

typedef struct cluster {
    const pst_config_t *cfg;
    const pst_train_args_t *args;
    int rank, size, n_servers, n_workers;
    MPI_Comm workers; /* worker ranks only (MPI_COMM_NULL on servers) */
    char run_dir[1024], ckpt_dir[1100];
    rank_hello_t *hellos; /* (size) */
} cluster_t;

static int env_int(const char *name)
{
    const char *v = getenv(name);
    return v ? atoi(v) : 0;
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
    return !r || atoi(r) == 0;
}

/* Everybody learns everybody's hello; returns true when every rank is ok. */
static bool exchange_hellos(cluster_t *c, const rank_hello_t *mine)
{
    MPI_Allgather(mine, (int)sizeof *mine, MPI_BYTE, c->hellos, (int)sizeof *mine, MPI_BYTE,
                  MPI_COMM_WORLD);
    for (int i = 0; i < c->size; i++)
        if (!c->hellos[i].ok)
            return false;
    return true;
}

static bool single_host(cluster_t *c)
{
    char host[64] = "";
    gethostname(host, sizeof host - 1);
    char *all = calloc((size_t)c->size, sizeof host);
    MPI_Allgather(host, (int)sizeof host, MPI_BYTE, all, (int)sizeof host, MPI_BYTE,
                  MPI_COMM_WORLD);
    bool same = true;
    for (int i = 1; i < c->size; i++)
        same = same && strncmp(all, all + (size_t)i * sizeof host, sizeof host) == 0;
    free(all);
    return same;
}

/* ---- server ranks ------------------------------------------------------------------------ */

static int server_config(cluster_t *c, pst_server_cfg_t *sc, pst_err_t *err)
{
    const pst_config_t *cfg = c->cfg;
    pst_server_cfg_defaults(sc);
    sc->server_index = (uint32_t)c->rank;
    sc->n_servers = (uint32_t)c->n_servers;
    sc->n_workers = (uint32_t)c->n_workers;
    if (pst_consistency_parse(cfg->cluster.consistency, &sc->consistency) != PST_OK)
        return pst_err_set(err, PST_EINVAL, "cluster.consistency: '%s'", cfg->cluster.consistency);
    sc->staleness = (uint32_t)cfg->cluster.staleness;
    sc->heartbeat_timeout_ms = (int)(cfg->cluster.heartbeat_timeout * 1000);
    pst_session_optim_cfg(cfg, &sc->optim);
    if (cfg->cluster.checkpoint_every > 0 || c->args->resume) {
        sc->checkpoint_dir = c->ckpt_dir;
        sc->checkpoint_every = (uint64_t)cfg->cluster.checkpoint_every;
    }
    return PST_OK;
}

/* Binds and restores; the hello carries the endpoint. */
static int server_start(cluster_t *c, pst_server_t **srv, rank_hello_t *hello, bool one_host,
                        pst_err_t *err)
{
    pst_server_cfg_t sc;
    int rc = server_config(c, &sc, err);
    if (rc != PST_OK)
        return rc;
    char ip[64], why[160], endpoint[128];
    if ((rc = pst_netaddr_choose(c->cfg->cluster.interface, one_host, ip, sizeof ip, why,
                                 sizeof why, err)) != PST_OK)
        return rc;
    if (!(*srv = pst_server_new(&sc, err)))
        return err->code ? err->code : PST_ENOMEM;
    snprintf(endpoint, sizeof endpoint, "tcp://%s:*", ip);
    if ((rc = pst_server_bind(*srv, endpoint, hello->endpoint, sizeof hello->endpoint, err)))
        return rc;
    pst_info("server %d of %d listening on %s (%s)", c->rank, c->n_servers, hello->endpoint, why);
    if (c->args->resume) {
        uint64_t clock = 0;
        if ((rc = pst_server_restore(*srv, &clock, err)) != PST_OK)
            return pst_err_prefix(err, "--resume %s: ", c->args->resume);
        pst_info("server %d restored its slices at clock %llu", c->rank, (unsigned long long)clock);
    }
    return PST_OK;
}

static int run_server(cluster_t *c, bool one_host)
{
    pst_err_t err = {0};
    pst_server_t *srv = NULL;
    rank_hello_t hello = {0};
    int rc = server_start(c, &srv, &hello, one_host, &err);
    hello.ok = rc == PST_OK;
    if (rc != PST_OK)
        pst_error("server %d: %s", c->rank, err.msg);
    if (!exchange_hellos(c, &hello)) {
        pst_server_destroy(&srv);
        return 1;
    }
    rc = pst_server_run(srv, &err);
    if (rc != PST_OK)
        pst_error("server %d: %s", c->rank, err.msg);
    uint64_t counters[PST_STAT_COUNT];
    pst_server_stats(srv, counters);
    if (counters[PST_STAT_BAD_FRAMES] > 0)
        pst_warn("server %d dropped %llu malformed messages", c->rank,
                 (unsigned long long)counters[PST_STAT_BAD_FRAMES]);
    pst_server_destroy(&srv);
    return rc == PST_OK ? 0 : 1;
}

/* ---- worker ranks ------------------------------------------------------------------------ */

typedef struct worker {
    cluster_t *c;
    pst_session_t s;
    pst_psclient_t *client;
    int tensor;
    int index; /* worker index 0..n_workers-1 */
    bool push_pending;
    pst_ticket_t push_ticket;
} worker_t;

/* Waits for the last push's acknowledgements, if any are outstanding. */
static int finish_push(worker_t *w, pst_err_t *err)
{
    if (!w->push_pending)
        return PST_OK;
    w->push_pending = false;
    return pst_psclient_wait(w->client, w->push_ticket, err);
}

/* The pull for the next clock goes out before the previous push is waited on, so the two
 * transfers overlap. The pushed gradient stays untouched until then: the next backward pass
 * comes after this pull. */
static int hook_pull(void *ctx, float *params, uint64_t clock, pst_err_t *err)
{
    worker_t *w = ctx;
    pst_ticket_t t;
    int rc = pst_psclient_pull(w->client, w->tensor, params, clock, &t, err);
    int push_rc = finish_push(w, err);
    if (rc != PST_OK)
        return rc;
    rc = pst_psclient_wait(w->client, t, err);
    return push_rc != PST_OK ? push_rc : rc;
}

static int hook_push(void *ctx, const float *grads, uint64_t clock, float lr, pst_err_t *err)
{
    worker_t *w = ctx;
    int rc = finish_push(w, err);
    if (rc == PST_OK)
        rc = pst_psclient_push(w->client, w->tensor, grads, clock, lr, &w->push_ticket, err);
    w->push_pending = rc == PST_OK;
    return rc;
}

static int hook_allreduce(void *ctx, double *vals, int n, pst_err_t *err)
{
    worker_t *w = ctx;
    if (MPI_Allreduce(MPI_IN_PLACE, vals, n, MPI_DOUBLE, MPI_SUM, w->c->workers) != MPI_SUCCESS)
        return pst_err_set(err, PST_EIO, "MPI_Allreduce of epoch metrics failed");
    return PST_OK;
}

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
    int rc;
    if (pst_shardload_is_pattern(c->cfg->data.train)) {
        pst_reducer_t reduce = {&c->workers, reduce_sum, reduce_max};
        rc = pst_session_prepare_shard(s, c->cfg, w->index == 0, w->index, &reduce, err);
        /* One more reduction that every worker reaches, failed or not: the smallest share. */
        double v[2] = {rc != PST_OK, rc == PST_OK ? -(double)s->data.train->n_rows : 0};
        pst_err_t scratch;
        if (reduce_max(&c->workers, v, 2, &scratch) != PST_OK && rc == PST_OK)
            rc = pst_err_set(err, PST_EIO, "%s", scratch.msg);
        if (rc == PST_OK && v[0] > 0)
            rc = pst_err_set(err, PST_ESTATE, "another worker failed to prepare");
        *smallest = rc == PST_OK ? (size_t)-v[1] : 0;
        return rc;
    }
    if ((rc = pst_session_prepare(s, c->cfg, w->index == 0, err)) != PST_OK)
        return rc;
    size_t n_train = s->data.train->n_rows;
    if (n_train < (size_t)c->n_workers)
        return pst_err_set(err, PST_EINVAL, "%zu training rows cannot feed %d workers", n_train,
                           c->n_workers);
    if ((rc = pst_partition_rows(n_train, w->index, c->n_workers, &s->train_share,
                                 &s->n_train_share, err)) ||
        (rc = pst_partition_rows(s->data.val->n_rows, w->index, c->n_workers, &s->val_share,
                                 &s->n_val_share, err)))
        return rc;
    *smallest = n_train / (size_t)c->n_workers; /* shares differ by at most one row */
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

static int worker_connect(worker_t *w, pst_err_t *err)
{
    cluster_t *c = w->c;
    const pst_config_t *cfg = c->cfg;
    const char *endpoints[c->n_servers];
    for (int i = 0; i < c->n_servers; i++)
        endpoints[i] = c->hellos[i].endpoint;
    pst_psclient_cfg_t pc;
    pst_psclient_cfg_defaults(&pc);
    pc.endpoints = endpoints;
    pc.n_servers = (uint32_t)c->n_servers;
    pc.worker_id = (uint32_t)w->index;
    pc.timeout_ms = (int)(cfg->cluster.timeout * 1000);
    const char *pull = strcmp(cfg->transport.pull_codec, "same") ? cfg->transport.pull_codec
                                                                 : cfg->transport.codec;
    if (pst_codec_parse(cfg->transport.codec, &pc.push_codec) != PST_OK ||
        pst_codec_parse(pull, &pc.pull_codec) != PST_OK)
        return pst_err_set(err, PST_EINVAL, "transport.codec: unknown codec");
    if (!(w->client = pst_psclient_new(&pc, err)))
        return err->code ? err->code : PST_ENOMEM;
    size_t n = pst_model_n_params(w->s.model);
    if ((w->tensor = pst_psclient_register_dense(w->client, 0, 0, n, err)) < 0)
        return w->tensor;
    uint64_t clock = 0;
    int rc = pst_psclient_init(w->client, w->tensor, pst_model_params(w->s.model), &clock, err);
    if (rc == PST_OK)
        rc = pst_psclient_barrier(w->client, err);
    w->s.opts.start_clock = clock;
    if (rc == PST_OK && clock > 0 && w->index == 0)
        pst_info("resuming at clock %llu (epoch %llu, step %llu)", (unsigned long long)clock,
                 (unsigned long long)(clock / (uint64_t)w->s.opts.steps_per_epoch + 1),
                 (unsigned long long)(clock % (uint64_t)w->s.opts.steps_per_epoch + 1));
    return rc;
}

/* Sums the workers' communication counters into the lead's report. */
static void report_comm(worker_t *w)
{
    pst_psclient_stats_t st = {0};
    if (w->client)
        pst_psclient_stats(w->client, &st);
    double v[9] = {(double)st.bytes_raw,
                   (double)st.bytes_wire,
                   (double)st.pushes,
                   (double)st.pulls,
                   st.push_latency_ms * (double)st.pushes,
                   st.pull_latency_ms * (double)st.pulls,
                   (double)st.stale_pushes,
                   (double)st.errors,
                   (double)w->s.result.rows_trained};
    double sum[9];
    MPI_Reduce(v, sum, 9, MPI_DOUBLE, MPI_SUM, 0, w->c->workers);
    if (w->index != 0)
        return;
    /* The run's throughput is every worker's rows over the lead's training time. */
    pst_train_result_t *r = &w->s.result;
    r->rows_trained = (long)sum[8];
    r->samples_per_s = r->seconds > 0 ? sum[8] / r->seconds : 0;
    const pst_config_t *cfg = w->c->cfg;
    cJSON *extra = cJSON_CreateObject();
    cJSON *comm = cJSON_AddObjectToObject(extra, "comm");
    cJSON_AddNumberToObject(comm, "servers", w->c->n_servers);
    cJSON_AddNumberToObject(comm, "workers", w->c->n_workers);
    cJSON_AddStringToObject(comm, "consistency", cfg->cluster.consistency);
    cJSON_AddStringToObject(comm, "codec", cfg->transport.codec);
    cJSON_AddStringToObject(comm, "pull_codec",
                            strcmp(cfg->transport.pull_codec, "same") ? cfg->transport.pull_codec
                                                                      : cfg->transport.codec);
    pst_json_add_number(comm, "bytes_raw", sum[0]);
    pst_json_add_number(comm, "bytes_wire", sum[1]);
    pst_json_add_number(comm, "wire_ratio", sum[1] > 0 ? sum[0] / sum[1] : NAN);
    pst_json_add_number(comm, "pushes", sum[2]);
    pst_json_add_number(comm, "pulls", sum[3]);
    pst_json_add_number(comm, "push_latency_ms", sum[2] > 0 ? sum[4] / sum[2] : NAN);
    pst_json_add_number(comm, "pull_latency_ms", sum[3] > 0 ? sum[5] / sum[3] : NAN);
    pst_json_add_number(comm, "stale_pushes", sum[6]);
    pst_json_add_number(comm, "errors", sum[7]);
    w->s.extra = extra;
}

static void hook_epoch(void *ctx, const pst_epoch_stats_t *es)
{
    pst_session_print_epoch(&((worker_t *)ctx)->s, es);
}

static void hook_progress(void *ctx, const pst_step_progress_t *p)
{
    pst_session_print_progress(&((worker_t *)ctx)->s, p);
}

static int worker_train(worker_t *w, pst_err_t *err)
{
    pst_train_hooks_t hooks = {.ctx = w,
                               .pull = hook_pull,
                               .push = hook_push,
                               .allreduce_sum = hook_allreduce,
                               .on_epoch = hook_epoch,
                               .on_progress = hook_progress};
    int rc = worker_connect(w, err);
    if (rc == PST_OK)
        rc = pst_session_train(&w->s, &hooks, err);
    int push_rc = finish_push(w, rc == PST_OK ? err : NULL);
    return rc != PST_OK ? rc : push_rc;
}

static int run_worker(cluster_t *c)
{
    worker_t w = {.c = c, .index = c->rank - c->n_servers};
    pst_err_t err = {0};
    rank_hello_t hello = {0};
    int rc = worker_prepare(&w, &err);
    hello.ok = rc == PST_OK;
    /* With a common file every worker meets the same error and worker 0 reports it; with one
     * file per worker, the worker whose file failed reports its own. */
    bool own_file = pst_shardload_is_pattern(c->cfg->data.train);
    if (rc != PST_OK &&
        (w.index == 0 ? !(own_file && rc == PST_ESTATE) : own_file && rc != PST_ESTATE))
        pst_cli_error("worker %d: %s", w.index, err.msg);
    if (!exchange_hellos(c, &hello)) {
        pst_session_fini(&w.s);
        return 1;
    }
    rc = worker_train(&w, &err);
    if (rc != PST_OK)
        pst_cli_error("worker %d: %s", w.index, err.msg);
    /* Whatever happened, tell the servers this worker is gone so nobody waits for it. */
    pst_err_t shutdown_err;
    if (w.client && pst_psclient_shutdown(w.client, &shutdown_err) != PST_OK)
        pst_warn("worker %d: shutdown: %s", w.index, shutdown_err.msg);
    report_comm(&w);
    /* Every worker must agree the run succeeded before the lead writes its report. */
    int failed = rc != PST_OK, any_failed = 0;
    MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, c->workers);
    if (!any_failed && w.s.lead && (rc = pst_session_finish(&w.s, &err)) != PST_OK)
        pst_cli_error("%s", err.msg);
    pst_psclient_destroy(&w.client);
    pst_session_fini(&w.s);
    return rc == PST_OK && !any_failed ? 0 : 1;
}

static int setup(cluster_t *c, pst_err_t *err)
{
    const pst_config_t *cfg = c->cfg;
    MPI_Comm_rank(MPI_COMM_WORLD, &c->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &c->size);
    c->n_servers = (int)cfg->cluster.servers;
    c->n_workers = c->size - c->n_servers;
    if (c->n_workers < 1)
        return pst_err_set(err, PST_EINVAL,
                           "cluster.servers=%d leaves no worker among %d ranks; start more ranks "
                           "(mpirun -np %d) or lower cluster.servers",
                           c->n_servers, c->size, c->n_servers + 1);
    int rc = PST_OK;
    if (c->rank == 0)
        rc = pst_rundir_choose(cfg, c->args->resume ? c->args->resume : c->args->out, c->run_dir,
                               sizeof c->run_dir, err);
    MPI_Bcast(c->run_dir, (int)sizeof c->run_dir, MPI_CHAR, 0, MPI_COMM_WORLD);
    snprintf(c->ckpt_dir, sizeof c->ckpt_dir, "%s/checkpoints", c->run_dir);
    char tag[32];
    bool server = c->rank < c->n_servers;
    snprintf(tag, sizeof tag, "%s %d", server ? "server" : "worker",
             server ? c->rank : c->rank - c->n_servers);
    pst_log_set_tag(tag);
    return rc;
}

int pst_cluster_train(const pst_config_t *cfg, const pst_train_args_t *args)
{
    MPI_Init(NULL, NULL);
    cluster_t c = {.cfg = cfg, .args = args, .workers = MPI_COMM_NULL};
    pst_err_t err = {0};
    int rc = setup(&c, &err), status = 0, worst = 0;
    int setup_failed = rc != PST_OK, any = 0;
    MPI_Allreduce(&setup_failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (any) {
        if (c.rank == 0)
            pst_cli_error("%s", err.msg);
        MPI_Finalize();
        return 2;
    }
    c.hellos = calloc((size_t)c.size, sizeof *c.hellos);
    bool server = c.rank < c.n_servers;
    MPI_Comm_split(MPI_COMM_WORLD, server ? 0 : 1, c.rank, &c.workers);
    bool one_host = single_host(&c);
    status = server ? run_server(&c, one_host) : run_worker(&c);
    /* The final join: every rank exits with the worst status of any rank. */
    MPI_Allreduce(&status, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Comm_free(&c.workers);
    free(c.hellos);
    MPI_Finalize();
    return worst;
}
