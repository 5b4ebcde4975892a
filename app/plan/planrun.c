/* Executing plans of fits: sequentially here, or through a coordinator and worker groups. */
#include "app/plan/planrun.h"

#include <math.h>
#include <mpi.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "app/mpi/cluster.h"
#include "app/mpi/mpijob.h"
#include "app/mpi/ranks.h"
#include "app/mpi/remote.h"
#include "app/plan/plancontract.h"
#include "common/clock.h"
#include "common/log.h"

#define TAG_REQUEST 71 /* group leader -> coordinator: a result and/or a request for work */
#define TAG_TASK 72    /* coordinator -> group leader: a task id, or -1 when there is none */
#define TAG_PAYLOAD 73 /* coordinator -> group leader: the task's text, after its id */

typedef struct pst_planrun_cluster {
    pst_ranks_t ranks;
    int n_groups, group;
    MPI_Comm group_comm; /* this worker's group */
    bool group_leader;
    pst_server_t *server;
    pthread_t server_thread;
    bool server_running;
    int server_rc;
    pst_remote_t remote;
    pst_plancontract_t contract; /* the tasks' namespaces, declared as they start */
    double idle_s;  /* group leader: between sending a result and receiving the next task */
    int tasks_done; /* group leader: tasks its group ran */
    struct rank_stats *stats; /* (ranks.size) rank 0, once the plan ran */
} planrun_cluster_t;

/* What each rank reports at the end of a plan, gathered on rank 0. */
typedef struct rank_stats {
    double peak_rss_kb; /* the process's high-water mark (VmHWM) */
    double idle_s;
    double tasks;
    double group; /* -1: a server rank */
    double leader;
} rank_stats_t;

/* ---- setup ------------------------------------------------------------------------------ */

static void *serve(void *arg)
{
    planrun_cluster_t *c = arg;
    pst_err_t err = {0};
    c->server_rc = pst_server_run(c->server, &err);
    if (c->server_rc != PST_OK)
        pst_error("server: %s", err.msg);
    return NULL;
}

/* Roles, groups, servers (their loop in a thread, so rank 0's main thread can coordinate). */
static int cluster_begin(pst_planrun_t *run, pst_err_t *err)
{
    /* Allocated before MPI starts: a rank without it ends before any collective, and mpirun
     * ends the job, rather than the other ranks wait for it in one. */
    planrun_cluster_t *c = calloc(1, sizeof *c);
    if (!c)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    int rc = pst_mpijob_begin(&run->mpi, err);
    if (rc != PST_OK) {
        free(c);
        return rc;
    }
    run->cluster = c;
    c->group_comm = MPI_COMM_NULL;
    rc = pst_ranks_init(&c->ranks, &run->cfg, err);
    if (pst_mpijob_agree(MPI_COMM_WORLD, rc) != PST_OK)
        return rc != PST_OK ? rc : pst_err_set(err, PST_ESTATE, "another rank failed");
    int w = c->ranks.n_workers;
    c->n_groups = (int)run->cfg.cluster.groups < w ? (int)run->cfg.cluster.groups : w;
    if (c->ranks.worker >= 0) {
        c->group = c->ranks.worker * c->n_groups / w;
        MPI_Comm_split(c->ranks.role, c->group, c->ranks.worker, &c->group_comm);
        int group_rank;
        MPI_Comm_rank(c->group_comm, &group_rank);
        c->group_leader = group_rank == 0;
    }
    run->lead = c->ranks.rank == 0;
    return PST_OK;
}

/* Servers bind and start serving; workers connect. Everyone learns whether all are ready. */
static int cluster_connect(pst_planrun_t *run, int data_rc, pst_err_t *err)
{
    planrun_cluster_t *c = run->cluster;
    pst_hello_t hello = {.ok = data_rc == PST_OK};
    int rc = data_rc;
    if (rc == PST_OK && c->ranks.worker < 0)
        rc = pst_ranks_open_server(&c->ranks, &run->cfg, NULL, false, &c->server, &hello, err);
    if (rc == PST_OK)
        rc = pst_plancontract_begin(&c->contract, &c->ranks, c->server, (size_t)c->n_groups, err);
    hello.ok = rc == PST_OK;
    if (!pst_ranks_exchange(&c->ranks, &hello))
        return rc != PST_OK ? rc : pst_err_set(err, PST_ESTATE, "another rank failed to start");
    if (c->ranks.worker < 0) {
        if (pthread_create(&c->server_thread, NULL, serve, c) != 0)
            return pst_err_set(err, PST_EIO, "cannot start the server thread");
        c->server_running = true;
        return PST_OK;
    }
    return pst_remote_connect(&c->remote, &c->ranks, &run->cfg, c->group_comm, err);
}

/* ---- the fit environment of a worker group ------------------------------------------------ */

static int env_begin(void *ctx, uint32_t model_id, const float *params, size_t n,
                     pst_train_hooks_t *hooks, pst_err_t *err)
{
    planrun_cluster_t *c = ctx;
    int rc = pst_plancontract_remote_begin(&c->contract, &c->remote, c->group_leader, model_id,
                                           params, n, err);
    if (rc == PST_OK)
        pst_remote_hooks(&c->remote, hooks);
    return rc;
}

static int env_end(void *ctx, pst_err_t *err)
{
    planrun_cluster_t *c = ctx;
    return pst_remote_flush(&c->remote, err);
}

/* ---- one task --------------------------------------------------------------------------- */

/* Runs task t; the lead of its run (or group) scores it into *metrics and keeps *pred. */
/* What a finished task hands to the lead. */
typedef struct task_result {
    cJSON *metrics;
    float *pred;
    size_t n_pred;
    int n_out;
    uint8_t *model;
    size_t model_len;
} task_result_t;

static void task_result_fini(task_result_t *r)
{
    cJSON_Delete(r->metrics);
    free(r->pred);
    free(r->model);
    memset(r, 0, sizeof *r);
}

/* Moves a result into the run's tables (lead). */
static void store_result(pst_planrun_t *run, int t, task_result_t *r)
{
    run->task_metrics[t] = r->metrics;
    run->pred[t] = r->pred;
    run->n_outs[t] = run->n_out = r->n_out;
    run->models[t] = r->model;
    run->model_len[t] = r->model_len;
    memset(r, 0, sizeof *r);
}

static int run_task(pst_planrun_t *run, const pst_planrun_kind_t *kind, int t,
                    const pst_fit_env_t *env, task_result_t *res, pst_err_t *err)
{
    pst_config_t own;
    bool has_own = kind->config != NULL;
    if (has_own) {
        pst_config_init(&own);
        int rc = kind->config(kind->ctx, t, &own, err);
        if (rc != PST_OK) {
            pst_config_fini(&own);
            return rc;
        }
    }
    pst_fit_t fit = {.cfg = has_own ? &own : &run->cfg,
                     .data = run->data,
                     .fit_preproc = true,
                     .images = strcmp(run->format, "idx") == 0,
                     .seed = pst_rng_derive((uint64_t)run->cfg.seed, 1000 + (uint64_t)t),
                     .model_id = (uint32_t)t + 1};
    kind->describe(kind->ctx, t, run->data, &fit);
    pst_fit_out_t out;
    int rc = pst_fit_run(&fit, env, &out, err);
    if (rc == PST_OK && (!env || env->lead)) {
        cJSON *m = res->metrics = cJSON_CreateObject();
        rc = pst_plan_score(run->data, fit.eval, fit.n_eval, out.pred, out.n_out, m, err);
        pst_json_add_number(m, "fit_seconds", out.fit_seconds);
        pst_json_add_number(m, "score_seconds", out.score_seconds);
        pst_json_add_number(m, "epochs", out.result.epochs_run);
        if (out.history) {
            cJSON_AddItemToObject(m, "history", out.history);
            out.history = NULL;
        }
        res->n_out = out.n_out;
        res->pred = out.pred;
        res->n_pred = fit.n_eval * (size_t)out.n_out;
        out.pred = NULL;
        if (rc == PST_OK && kind->keep_models && t >= kind->keep_from)
            rc = pst_fit_model_pack(&fit, &out, &res->model, &res->model_len, err);
    }
    pst_fit_out_fini(&out);
    if (has_own)
        pst_config_fini(&own);
    return rc;
}

/* The next task of the plan: in order, or from the plan's own scheduler. */
static int next_task(pst_planrun_t *run, const pst_planrun_kind_t *kind, int *next, int *task)
{
    if (kind->next)
        return kind->next(kind->ctx, task);
    if (*next >= run->n_tasks)
        return PST_PLAN_DONE;
    *task = (*next)++;
    return PST_PLAN_RUN;
}

static void print_task(pst_planrun_t *run, const pst_planrun_kind_t *kind, int t, const cJSON *m)
{
    if (kind->own_log)
        return;
    char label[64];
    kind->label(kind->ctx, t, label, sizeof label);
    /* metrics.jsonl keeps a line of figures per task; the epochs stay in report.json */
    cJSON *history = cJSON_DetachItemFromObject((cJSON *)m, "history");
    pst_rundir_log_task(&run->rundir, label, m);
    if (history)
        cJSON_AddItemToObject((cJSON *)m, "history", history);
    if (run->quiet)
        return;
    const char *keys[] = {"accuracy", "f1_macro", "roc_auc", "mse", "r2", "fit_seconds"};
    printf("%-18s", label);
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        const cJSON *v = cJSON_GetObjectItem(m, keys[k]);
        if (v && cJSON_IsNumber(v))
            printf("  %s %.4f", keys[k], v->valuedouble);
    }
    printf("\n");
    fflush(stdout);
}

/* ---- coordinator and groups ---------------------------------------------------------------- */

/* Hand-offs between tasks wait in naps of 50 us rather than pst_ranks_nap's millisecond: a
 * plan of many short tasks would otherwise spend a good part of its time asleep between them,
 * and a nap this short still leaves the core to the ranks that train. */
static void short_nap(void)
{
    struct timespec ts = {0, 50000};
    nanosleep(&ts, NULL);
}

static void wait_handoff(MPI_Request *req)
{
    int done = 0;
    for (MPI_Test(req, &done, MPI_STATUS_IGNORE); !done; MPI_Test(req, &done, MPI_STATUS_IGNORE))
        short_nap();
}

/* The group leader's task number reaches every member of the group. */
static void share_task(int *task, MPI_Comm group)
{
    MPI_Request req;
    MPI_Ibcast(task, 1, MPI_INT, 0, group, &req);
    wait_handoff(&req);
}

/* The leader receives its next task from the coordinator. */
static void receive_task(int *task)
{
    MPI_Request req;
    MPI_Irecv(task, 1, MPI_INT, 0, TAG_TASK, MPI_COMM_WORLD, &req);
    wait_handoff(&req);
}

/* Every member of the group is done with task's namespace; then each drops it, so the servers
 * hold only the namespaces of running tasks however many run (each member drops it once, as
 * that is also how its client forgets the task's tensors). */
static void drop_task_namespace(planrun_cluster_t *c, int task)
{
    MPI_Request req;
    MPI_Ibarrier(c->group_comm, &req);
    wait_handoff(&req);
    pst_err_t err = {0};
    if (pst_remote_drop(&c->remote, (uint32_t)task + 1, &err) != PST_OK)
        pst_warn("group %d: task %d: dropping its namespace: %s", c->group, task, err.msg);
}

/* A group leader's message: [task, json bytes, n floats, n_out, model bytes], then the JSON text,
 * the floats and the model file. */
static int send_result(int task, const task_result_t *r)
{
    char *json = r->metrics ? cJSON_PrintUnformatted(r->metrics) : NULL;
    int64_t head[5] = {task, json ? (int64_t)strlen(json) : 0, (int64_t)r->n_pred, r->n_out,
                       (int64_t)r->model_len};
    size_t len = sizeof head + (size_t)head[1] + r->n_pred * sizeof(float) + r->model_len;
    char *buf = malloc(len), *at = buf + sizeof head;
    if (!buf) {
        free(json);
        return PST_ENOMEM;
    }
    memcpy(buf, head, sizeof head);
    if (json)
        memcpy(at, json, (size_t)head[1]);
    at += head[1];
    if (r->n_pred)
        memcpy(at, r->pred, r->n_pred * sizeof(float));
    at += r->n_pred * sizeof(float);
    if (r->model_len)
        memcpy(at, r->model, r->model_len);
    MPI_Send(buf, (int)len, MPI_BYTE, 0, TAG_REQUEST, MPI_COMM_WORLD);
    free(buf);
    free(json);
    return PST_OK;
}

/* Unpacks a result message into r; returns the task field. */
static int unpack_result(const char *buf, task_result_t *r)
{
    int64_t head[5];
    memcpy(head, buf, sizeof head);
    const char *at = buf + sizeof head;
    char *json = strndup(at, (size_t)head[1]);
    r->metrics = json ? cJSON_Parse(json) : NULL;
    free(json);
    at += head[1];
    r->n_pred = (size_t)head[2];
    r->pred = malloc((r->n_pred ? r->n_pred : 1) * sizeof(float));
    if (r->pred)
        memcpy(r->pred, at, r->n_pred * sizeof(float));
    at += r->n_pred * sizeof(float);
    r->n_out = (int)head[3];
    r->model_len = (size_t)head[4];
    if (r->model_len && (r->model = malloc(r->model_len)))
        memcpy(r->model, at, r->model_len);
    return (int)head[0];
}

/* Receives one group leader's message; stores and reports its result. Returns the sender. */
static int receive_result(pst_planrun_t *run, const pst_planrun_kind_t *kind, int *failed,
                          bool *had_task)
{
    MPI_Status st;
    int ready = 0;
    for (MPI_Iprobe(MPI_ANY_SOURCE, TAG_REQUEST, MPI_COMM_WORLD, &ready, &st); !ready;
         MPI_Iprobe(MPI_ANY_SOURCE, TAG_REQUEST, MPI_COMM_WORLD, &ready, &st))
        pst_plancontract_idle(&run->cluster->contract);
    int len;
    MPI_Get_count(&st, MPI_BYTE, &len);
    char *buf = malloc((size_t)len);
    MPI_Recv(buf, len, MPI_BYTE, st.MPI_SOURCE, TAG_REQUEST, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    task_result_t r = {0};
    int task = unpack_result(buf, &r);
    *had_task = task != -1;
    if (task <= -2 && kind->report && -task - 2 < run->n_tasks)
        kind->report(kind->ctx, -task - 2, NULL);
    *failed |= task <= -2 && !kind->report;
    if (task >= 0 && task < run->n_tasks) {
        store_result(run, task, &r);
        print_task(run, kind, task, run->task_metrics[task]);
        if (kind->report)
            kind->report(kind->ctx, task, run->task_metrics[task]);
    }
    task_result_fini(&r);
    free(buf);
    return st.MPI_SOURCE;
}

/* The task's text follows its id to the group leader (an empty text when there is none). */
static void send_payload(const pst_planrun_kind_t *kind, int task, int dest)
{
    char *text = kind->payload(kind->ctx, task);
    MPI_Send(text ? text : "", text ? (int)strlen(text) + 1 : 1, MPI_CHAR, dest, TAG_PAYLOAD,
             MPI_COMM_WORLD);
    free(text);
}

/* The leader receives the task's text and every member of the group gets it. Caller frees. */
static char *share_payload(bool leader, MPI_Comm group)
{
    int len = 0;
    char *text = NULL;
    if (leader) {
        MPI_Status st;
        int ready = 0;
        for (MPI_Iprobe(0, TAG_PAYLOAD, MPI_COMM_WORLD, &ready, &st); !ready;
             MPI_Iprobe(0, TAG_PAYLOAD, MPI_COMM_WORLD, &ready, &st))
            short_nap();
        MPI_Get_count(&st, MPI_CHAR, &len);
        text = malloc((size_t)len + 1);
        MPI_Recv(text, len, MPI_CHAR, 0, TAG_PAYLOAD, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    }
    MPI_Request req;
    MPI_Ibcast(&len, 1, MPI_INT, 0, group, &req);
    wait_handoff(&req);
    if (!leader)
        text = malloc((size_t)len + 1);
    MPI_Ibcast(text, len, MPI_CHAR, 0, group, &req);
    wait_handoff(&req);
    text[len > 0 ? len - 1 : 0] = '\0';
    return text;
}

/* Rank 0: hands tasks to free groups and collects their results. A group asking while the plan
 * must wait for results is answered when one arrives. */
static int coordinate(pst_planrun_t *run, const pst_planrun_kind_t *kind, pst_err_t *err)
{
    planrun_cluster_t *c = run->cluster;
    int next = 0, finished_groups = 0, failed = 0, running = 0, n_waiting = 0;
    int *waiting = calloc((size_t)c->n_groups, sizeof(int));
    if (!waiting)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    while (finished_groups < c->n_groups) {
        bool had_task;
        int source = receive_result(run, kind, &failed, &had_task);
        running -= had_task;
        waiting[n_waiting++] = source;
        /* Serve the waiting groups while the plan has work for them. */
        while (n_waiting > 0) {
            int task = -1;
            int action = failed ? PST_PLAN_DONE : next_task(run, kind, &next, &task);
            if (action == PST_PLAN_WAIT && running > 0)
                break;
            int dest = waiting[--n_waiting];
            if (action != PST_PLAN_RUN)
                task = -1;
            MPI_Send(&task, 1, MPI_INT, dest, TAG_TASK, MPI_COMM_WORLD);
            if (task >= 0 && kind->payload)
                send_payload(kind, task, dest);
            if (task < 0)
                finished_groups++;
            else
                running++;
        }
        if (kind->persist)
            kind->persist(kind->ctx, finished_groups == c->n_groups);
    }
    free(waiting);
    return failed ? pst_err_set(err, PST_ESTATE, "a worker group failed a task") : PST_OK;
}

/* Workers: the group leader asks for tasks (each request carrying the last result: the task
 * id, -2 - id when it failed, -1 for none); the group trains each task together. */
static int work(pst_planrun_t *run, const pst_planrun_kind_t *kind, pst_err_t *err)
{
    planrun_cluster_t *c = run->cluster;
    int share, n_shares;
    MPI_Comm_rank(c->group_comm, &share);
    MPI_Comm_size(c->group_comm, &n_shares);
    pst_fit_env_t env = {c, env_begin, env_end, c->group_leader, share, n_shares};
    int code = -1, task = -1, final_rc = PST_OK;
    task_result_t res = {0};
    for (;;) {
        if (c->group_leader) {
            double asked = pst_clock_seconds();
            send_result(code, &res);
            receive_task(&task);
            c->idle_s += pst_clock_seconds() - asked;
        }
        task_result_fini(&res);
        share_task(&task, c->group_comm);
        if (task < 0)
            break;
        int rc = PST_OK;
        if (kind->payload) {
            char *text = share_payload(c->group_leader, c->group_comm);
            rc = kind->receive(kind->ctx, task, text, err);
            free(text);
        }
        if (rc == PST_OK)
            rc = run_task(run, kind, task, &env, &res, err);
        drop_task_namespace(c, task);
        c->tasks_done++;
        code = rc == PST_OK ? task : -2 - task;
        if (rc != PST_OK) {
            pst_error("group %d, task %d: %s", c->group, task, err->msg);
            /* A plan with its own scheduler records the failure and goes on. */
            if (!kind->report)
                final_rc = rc;
        }
    }
    return final_rc;
}

/* Once every rank is done (so a server's high-water mark covers every task), rank 0 gathers
 * each rank's peak memory and each group's idle time and task count. */
static void gather_stats(pst_planrun_t *run)
{
    planrun_cluster_t *c = run->cluster;
    MPI_Request req;
    MPI_Ibarrier(MPI_COMM_WORLD, &req);
    pst_plancontract_wait(&c->contract, &req);
    struct rusage ru;
    rank_stats_t mine = {.peak_rss_kb =
                             getrusage(RUSAGE_SELF, &ru) == 0 ? (double)ru.ru_maxrss : 0, /* KiB */
                         .idle_s = c->idle_s,
                         .tasks = c->tasks_done,
                         .group = c->ranks.worker >= 0 ? c->group : -1,
                         .leader = c->group_leader};
    if (c->ranks.rank == 0)
        c->stats = calloc((size_t)c->ranks.size, sizeof *c->stats);
    MPI_Gather(&mine, (int)sizeof mine, MPI_BYTE, c->stats, (int)sizeof mine, MPI_BYTE, 0,
               MPI_COMM_WORLD);
}

/* report.json's cluster section: ranks, tasks per second, each group's idle time, peak memory. */
static void cluster_json(const pst_planrun_t *run, cJSON *r)
{
    const planrun_cluster_t *c = run->cluster;
    cJSON *cl = cJSON_AddObjectToObject(r, "cluster");
    cJSON_AddNumberToObject(cl, "servers", c->ranks.n_servers);
    cJSON_AddNumberToObject(cl, "workers", c->ranks.n_workers);
    cJSON_AddNumberToObject(cl, "groups", c->n_groups);
    if (!c->stats)
        return;
    cJSON *groups = cJSON_AddArrayToObject(cl, "group_stats");
    cJSON *servers = cJSON_CreateArray(), *workers = cJSON_CreateArray();
    double tasks = 0;
    for (int i = 0; i < c->ranks.size; i++) {
        const rank_stats_t *st = &c->stats[i];
        cJSON_AddItemToArray(st->group < 0 ? servers : workers,
                             cJSON_CreateNumber(st->peak_rss_kb / 1024.0));
        if (!st->leader)
            continue;
        cJSON *g = cJSON_CreateObject();
        cJSON_AddNumberToObject(g, "group", st->group);
        cJSON_AddNumberToObject(g, "tasks", st->tasks);
        pst_json_add_number(g, "idle_seconds", st->idle_s);
        pst_json_add_number(g, "idle_fraction", run->seconds > 0 ? st->idle_s / run->seconds : 0);
        cJSON_AddItemToArray(groups, g);
        tasks += st->tasks;
    }
    pst_json_add_number(cl, "tasks_per_second", run->seconds > 0 ? tasks / run->seconds : 0);
    cJSON *rss = cJSON_AddObjectToObject(cl, "peak_rss_mib");
    cJSON_AddItemToObject(rss, "servers", servers);
    cJSON_AddItemToObject(rss, "workers", workers);
}

/* ---- public ------------------------------------------------------------------------------ */

int pst_planrun_begin(pst_planrun_t *run, const pst_plan_args_t *args, const char *group_column,
                      pst_err_t *err)
{
    memset(run, 0, sizeof *run);
    run->lead = true;
    run->quiet = args->quiet;
    run->report = cJSON_CreateObject();
    int rc = pst_plan_config(&run->cfg, args, err);
    if (rc == PST_OK)
        rc = pst_rundir_check_new(args->out, args->force, err);
    run->distributed = pst_cluster_launched();
    if (rc != PST_OK)
        return rc;
    if (run->distributed && (rc = cluster_begin(run, err)) != PST_OK)
        return rc;
    rc = pst_plan_load(&run->cfg, group_column, &run->data, &run->groups, &run->format, err);
    if (run->distributed)
        rc = cluster_connect(run, rc, err);
    if (rc == PST_OK && run->lead)
        rc = pst_rundir_open(&run->rundir, &run->cfg, args->out, err);
    return rc;
}

int pst_planrun_execute(pst_planrun_t *run, const pst_planrun_kind_t *kind, int n_tasks,
                        pst_err_t *err)
{
    run->n_tasks = n_tasks;
    run->task_metrics = calloc((size_t)n_tasks, sizeof *run->task_metrics);
    run->pred = calloc((size_t)n_tasks, sizeof *run->pred);
    run->n_outs = calloc((size_t)n_tasks, sizeof *run->n_outs);
    run->models = calloc((size_t)n_tasks, sizeof *run->models);
    run->model_len = calloc((size_t)n_tasks, sizeof *run->model_len);
    if (!run->task_metrics || !run->pred || !run->n_outs || !run->models || !run->model_len)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    double t0 = pst_clock_seconds();
    int rc = PST_OK;
    if (run->distributed && run->cluster->ranks.rank == 0)
        rc = coordinate(run, kind, err);
    else if (run->distributed && run->cluster->ranks.worker >= 0)
        rc = work(run, kind, err);
    int next = 0, t;
    while (!run->distributed && rc == PST_OK) {
        int action = next_task(run, kind, &next, &t);
        if (action == PST_PLAN_DONE)
            break;
        if (action == PST_PLAN_WAIT) {
            rc = pst_err_set(err, PST_ESTATE, "the plan waits for a result while nothing runs");
            break;
        }
        task_result_t res = {0};
        rc = run_task(run, kind, t, NULL, &res, err);
        if (rc == PST_OK) {
            store_result(run, t, &res);
            print_task(run, kind, t, run->task_metrics[t]);
        }
        task_result_fini(&res);
        if (kind->report) {
            if (rc != PST_OK)
                pst_error("task %d: %s", t, err->msg);
            kind->report(kind->ctx, t, rc == PST_OK ? run->task_metrics[t] : NULL);
            rc = PST_OK;
        }
        if (kind->persist)
            kind->persist(kind->ctx, false);
    }
    if (!run->distributed && kind->persist)
        kind->persist(kind->ctx, true);
    if (run->distributed)
        gather_stats(run);
    run->seconds = pst_clock_seconds() - t0;
    return rc;
}

int pst_planrun_model(const pst_planrun_t *run, int task, pst_modelfile_t *mf, pst_err_t *err)
{
    if (task < 0 || task >= run->n_tasks || !run->models || !run->models[task])
        return pst_err_set(err, PST_ESTATE, "task %d kept no model", task + 1);
    return pst_modelfile_unpack(mf, run->models[task], run->model_len[task], "a trained task", err);
}

int pst_planrun_take_model(pst_planrun_t *run, int task, uint8_t **buf, size_t *len)
{
    if (task < 0 || task >= run->n_tasks || !run->models)
        return PST_ENOTFOUND;
    free(run->pred[task]);
    run->pred[task] = NULL;
    *buf = run->models[task];
    *len = run->model_len[task];
    run->models[task] = NULL;
    run->model_len[task] = 0;
    return *buf ? PST_OK : PST_ENOTFOUND;
}

int pst_planrun_finish(pst_planrun_t *run, const char *command, pst_err_t *err)
{
    cJSON *r = run->report;
    cJSON_AddStringToObject(r, "command", command);
    cJSON_AddStringToObject(r, "name", run->cfg.name);
    pst_json_add_number(r, "seconds", run->seconds);
    if (run->distributed)
        cluster_json(run, r);
    cJSON *tasks = cJSON_AddArrayToObject(r, "tasks");
    for (int t = 0; t < run->n_tasks; t++)
        cJSON_AddItemToArray(tasks, run->task_metrics[t]
                                        ? cJSON_Duplicate(run->task_metrics[t], true)
                                        : cJSON_CreateNull());
    int rc = pst_rundir_write_json(&run->rundir, "report.json", r, err);
    if (rc == PST_OK) {
        printf("run directory: %s\n", run->rundir.path);
        fflush(stdout);
    }
    return rc;
}

static void cluster_end(pst_planrun_t *run)
{
    planrun_cluster_t *c = run->cluster;
    if (c->ranks.worker >= 0)
        pst_remote_close(&c->remote);
    if (c->server_running) {
        pthread_join(c->server_thread, NULL);
        pst_server_destroy(&c->server);
    } else if (c->server) {
        pst_server_destroy(&c->server);
    }
    if (c->group_comm != MPI_COMM_NULL)
        MPI_Comm_free(&c->group_comm);
    pst_ranks_fini(&c->ranks);
    free(c->stats);
    free(c);
    run->cluster = NULL;
}

int pst_planrun_end(pst_planrun_t *run, int rc)
{
    if (run->cluster)
        cluster_end(run);
    /* The final join, when MPI began: a configuration error under mpirun ends the plan before. */
    int status = pst_mpijob_end(&run->mpi, rc == PST_OK ? 0 : 1);
    pst_rundir_close(&run->rundir);
    for (int t = 0; t < run->n_tasks; t++) {
        cJSON_Delete(run->task_metrics ? run->task_metrics[t] : NULL);
        free(run->pred ? run->pred[t] : NULL);
        free(run->models ? run->models[t] : NULL);
    }
    free(run->task_metrics);
    free(run->pred);
    free(run->n_outs);
    free(run->models);
    free(run->model_len);
    cJSON_Delete(run->report);
    pst_dataset_destroy(&run->data);
    free(run->groups);
    pst_config_fini(&run->cfg);
    return status;
}
