/* Push/pull hooks over the psclient, and the group reductions a training run needs. */
#include "app/mpi/remote.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "app/mpi/elastic.h"
#include "app/mpi/mpijob.h"
#include "app/rundir.h"

#include "common/clock.h"
#include "common/log.h"

int pst_remote_connect(pst_remote_t *r, const pst_ranks_t *ranks, const pst_config_t *cfg,
                       MPI_Comm group, pst_err_t *err)
{
    memset(r, 0, sizeof *r);
    r->group = group;
    const char *endpoints[ranks->n_servers];
    pst_ranks_endpoints(ranks, endpoints);
    pst_psclient_cfg_t pc;
    pst_psclient_cfg_defaults(&pc);
    pc.endpoints = endpoints;
    const char *server_keys[ranks->n_servers];
    if (ranks->curve) {
        pst_ranks_server_keys(ranks, server_keys);
        pc.curve_key = &ranks->key;
        pc.server_keys = server_keys;
    } else if (ranks->token) {
        pc.token = ranks->key.secret_key;
    }
    pc.n_servers = (uint32_t)ranks->n_servers;
    pc.worker_id = (uint32_t)ranks->worker;
    pc.timeout_ms = (int)(cfg->cluster.timeout * 1000);
    pc.push_acks = cfg->transport.push_acks;
    pc.coalesce = cfg->transport.coalesce;
    const char *pull = strcmp(cfg->transport.pull_codec, "same") ? cfg->transport.pull_codec
                                                                 : cfg->transport.codec;
    if (pst_codec_parse(cfg->transport.codec, &pc.push_codec) != PST_OK ||
        pst_codec_parse(pull, &pc.pull_codec) != PST_OK)
        return pst_err_set(err, PST_EINVAL, "transport.codec: unknown codec");
    if (!(r->client = pst_psclient_new(&pc, err)))
        return err->code ? err->code : PST_ENOMEM;
    return PST_OK;
}

/* Registers and initialises tensors 0..n_parts-1 of model_id over params' ranges (the parts are
 * r->parts, already set), then agrees with the group. *clock: the least clock of the parts. */
static int begin_parts(pst_remote_t *r, uint32_t model_id, const float *params, uint64_t *clock,
                       pst_err_t *err)
{
    int rc = PST_OK;
    uint64_t least = UINT64_MAX;
    for (int k = 0; k < r->n_parts && rc == PST_OK; k++) {
        pst_remote_part_t *p = &r->parts[k];
        uint64_t c = 0;
        if (p->frozen) {
            p->tensor = -1;
            continue;
        }
        p->tensor = pst_psclient_register_dense(r->client, model_id, (uint32_t)k, p->len, err);
        rc = p->tensor < 0
                 ? p->tensor
                 : pst_psclient_init_on_servers(r->client, p->tensor, params + p->off, &c, err);
        least = c < least ? c : least;
    }
    if (rc == PST_OK && clock != NULL)
        *clock = least;
    /* Every worker of the group must have registered before anyone pushes; a worker that failed
     * still joins the reduction, or the others would wait in it forever. */
    if (pst_mpijob_agree(r->group, rc) != PST_OK && rc == PST_OK)
        rc = pst_err_set(err, PST_ESTATE, "another worker of the group failed to register");
    return rc;
}

/* n_parts zeroed parts (any previous ones freed); NULL when out of memory. */
static pst_remote_part_t *parts_new(pst_remote_t *r, int n_parts)
{
    free(r->parts);
    r->parts = calloc((size_t)n_parts, sizeof *r->parts);
    r->n_parts = r->parts != NULL ? n_parts : 0;
    return r->parts;
}

int pst_remote_begin(pst_remote_t *r, uint32_t model_id, const float *params, size_t n,
                     uint64_t *clock, pst_err_t *err)
{
    r->layered = false;
    if (parts_new(r, 1) == NULL)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    r->parts[0].len = n;
    return begin_parts(r, model_id, params, clock, err);
}

int pst_remote_begin_layers(pst_remote_t *r, uint32_t model_id, pst_model_t *model, uint64_t *clock,
                            pst_err_t *err)
{
    int n_layers = pst_model_n_tensors(model) / 2;
    r->layered = true;
    if (n_layers < 1 || parts_new(r, n_layers) == NULL)
        return pst_err_set(err, n_layers < 1 ? PST_EINVAL : PST_ENOMEM,
                           n_layers < 1 ? "the model has no dense layer" : "out of memory");
    for (int k = 0; k < n_layers; k++) {
        const pst_tensor_info_t *w = pst_model_tensor(model, 2 * k);
        const pst_tensor_info_t *b = pst_model_tensor(model, 2 * k + 1);
        r->parts[k].off = w->offset;
        r->parts[k].len = b->offset + b->size - w->offset;
        r->parts[k].frozen = w->frozen;
    }
    return begin_parts(r, model_id, pst_model_params(model), clock, err);
}

/* pst_psclient_wait, the time blocked added to *waited. */
static int timed_wait(pst_remote_t *r, pst_ticket_t t, double *waited, pst_err_t *err)
{
    double t0 = pst_clock_seconds();
    int rc = pst_psclient_wait(r->client, t, err);
    *waited += pst_clock_seconds() - t0;
    return rc;
}

int pst_remote_flush(pst_remote_t *r, pst_err_t *err)
{
    pst_err_t scratch;
    int rc = PST_OK;
    for (int k = 0; k < r->n_parts; k++) {
        pst_remote_part_t *p = &r->parts[k];
        if (!p->push_pending)
            continue;
        p->push_pending = false;
        int one = timed_wait(r, p->push_ticket, &r->push_wait_s, rc == PST_OK ? err : &scratch);
        rc = rc != PST_OK ? rc : one;
    }
    return rc;
}

int pst_remote_drop(pst_remote_t *r, uint32_t model_id, pst_err_t *err)
{
    int rc = pst_remote_flush(r, err);
    int drop_rc = pst_psclient_drop(r->client, model_id, rc == PST_OK ? err : NULL);
    free(r->parts);
    r->parts = NULL;
    r->n_parts = 0;
    return rc != PST_OK ? rc : drop_rc;
}

/* Sends part p's pull for clock into params, unless that very pull is on its way already (sent
 * ahead); a pending pull of another clock is waited for first. */
static int send_pull(pst_remote_t *r, pst_remote_part_t *p, float *params, uint64_t clock,
                     pst_err_t *err)
{
    if (p->frozen || (p->pull_pending && p->pull_clock == clock))
        return PST_OK;
    int rc = PST_OK;
    if (p->pull_pending) {
        p->pull_pending = false;
        rc = timed_wait(r, p->pull_ticket, &r->pull_wait_s, err);
    }
    if (rc == PST_OK)
        rc = pst_psclient_pull(r->client, p->tensor, params + p->off, clock, &p->pull_ticket, err);
    p->pull_pending = rc == PST_OK;
    p->pull_clock = clock;
    return rc;
}

/* Sends every part's pull for clock, then waits for the previous pushes: the transfers overlap,
 * and the pushed gradients stay untouched until acknowledged (the next backward pass comes after
 * this). */
static int hook_pull_start(void *ctx, float *params, uint64_t clock, pst_err_t *err)
{
    pst_remote_t *r = ctx;
    int rc = PST_OK;
    r->clock = clock;
    for (int k = 0; k < r->n_parts && rc == PST_OK; k++)
        rc = send_pull(r, &r->parts[k], params, clock, err);
    int push_rc = pst_remote_flush(r, rc == PST_OK ? err : NULL);
    return rc != PST_OK ? rc : push_rc;
}

/* The next step's pulls, sent right behind this step's pushes, the first layer first (its
 * forward needs it first). Each server handles a worker's requests in order, so every reply holds
 * this worker's pushes; bsp answers them once the clock before is applied, as it would later. */
static int hook_pull_ahead(void *ctx, float *params, uint64_t clock, pst_err_t *err)
{
    pst_remote_t *r = ctx;
    int rc = PST_OK;
    for (int k = 0; k < r->n_parts && rc == PST_OK; k++)
        rc = send_pull(r, &r->parts[k], params, clock, err);
    return rc == PST_OK ? pst_psclient_flush(r->client, err) : rc;
}

static int hook_pull_wait(void *ctx, int k, pst_err_t *err)
{
    pst_remote_t *r = ctx;
    if (k < 0 || k >= r->n_parts)
        return pst_err_set(err, PST_EINVAL, "no layer %d among %d", k, r->n_parts);
    pst_remote_part_t *p = &r->parts[k];
    if (!p->pull_pending)
        return PST_OK;
    p->pull_pending = false;
    return timed_wait(r, p->pull_ticket, &r->pull_wait_s, err);
}

static int hook_pull(void *ctx, float *params, uint64_t clock, pst_err_t *err)
{
    pst_remote_t *r = ctx;
    int rc = hook_pull_start(ctx, params, clock, err);
    pst_err_t scratch;
    for (int k = 0; k < r->n_parts; k++) {
        int one = hook_pull_wait(ctx, k, rc == PST_OK ? err : &scratch);
        rc = rc != PST_OK ? rc : one;
    }
    return rc;
}

static int hook_push_layer(void *ctx, int k, const float *grads, uint64_t clock, float lr,
                           pst_err_t *err)
{
    pst_remote_t *r = ctx;
    if (k < 0 || k >= r->n_parts)
        return pst_err_set(err, PST_EINVAL, "no layer %d among %d", k, r->n_parts);
    pst_remote_part_t *p = &r->parts[k];
    int rc = PST_OK;
    r->clock = clock + 1;
    if (p->frozen)
        return PST_OK;
    if (p->push_pending) {
        p->push_pending = false;
        rc = timed_wait(r, p->push_ticket, &r->push_wait_s, err);
    }
    if (rc == PST_OK)
        rc = pst_psclient_push(r->client, p->tensor, grads + p->off, clock, lr, &p->push_ticket,
                               err);
    p->push_pending = rc == PST_OK;
    /* In every mode the push leaves at once: held back for the next step's pulls (as a sparse
     * step's small pushes are under asp) a layer's gradient would travel only after backward, in
     * front of those pulls, and the next step would first wait for ZeroMQ to let go of it. */
    if (rc == PST_OK)
        rc = pst_psclient_flush(r->client, err);
    return rc;
}

/* Every part, the last first (the order backward produces them). */
static int hook_push(void *ctx, const float *grads, uint64_t clock, float lr, pst_err_t *err)
{
    pst_remote_t *r = ctx;
    int rc = PST_OK;
    for (int k = r->n_parts - 1; k >= 0 && rc == PST_OK; k--)
        rc = hook_push_layer(ctx, k, grads, clock, lr, err);
    return rc;
}

static int hook_allreduce(void *ctx, double *vals, int n, pst_err_t *err)
{
    pst_remote_t *r = ctx;
    /* requests still coalesced go first: another worker may be waiting on them */
    int flushed = pst_psclient_flush(r->client, err);
    if (flushed != PST_OK)
        return flushed;
    if (r->elastic)
        return pst_elastic_reduce(r, vals, n, err);
    pst_watchdog_arm(r->watchdog, r->reduce_timeout_s,
                     "the epoch-end reduction with every worker of the group");
    int rc = MPI_Allreduce(MPI_IN_PLACE, vals, n, MPI_DOUBLE, MPI_SUM, r->group);
    pst_watchdog_disarm(r->watchdog);
    if (rc != MPI_SUCCESS)
        return pst_err_set(err, PST_EIO, "MPI_Allreduce of epoch metrics failed");
    return PST_OK;
}

void pst_remote_hooks(pst_remote_t *r, pst_train_hooks_t *hooks)
{
    hooks->ctx = r;
    hooks->pull = hook_pull;
    hooks->push = hook_push;
    hooks->allreduce_sum = hook_allreduce;
    if (r->elastic)
        hooks->rejoin_clock = pst_elastic_rejoin_clock;
    if (r->layered) {
        hooks->pull_start = hook_pull_start;
        hooks->pull_wait = hook_pull_wait;
        hooks->push_layer = hook_push_layer;
        hooks->pull_ahead = hook_pull_ahead;
    }
}

void pst_remote_close(pst_remote_t *r)
{
    if (r->client) {
        pst_err_t err;
        pst_remote_flush(r, &err);
        if (pst_psclient_shutdown(r->client, &err) != PST_OK)
            pst_warn("shutdown: %s", err.msg);
        pst_psclient_destroy(&r->client);
    }
    free(r->parts);
    r->parts = NULL;
    r->n_parts = 0;
    free(r->reduce_buf);
    r->reduce_buf = NULL;
    r->reduce_cap = r->reduce_got = 0;
}

void pst_comm_counters(const pst_psclient_stats_t *st, double out[PST_COMM_N])
{
    out[PST_COMM_BYTES_RAW] = (double)st->bytes_raw;
    out[PST_COMM_BYTES_WIRE] = (double)st->bytes_wire;
    out[PST_COMM_PUSHES] = (double)st->pushes;
    out[PST_COMM_PULLS] = (double)st->pulls;
    out[PST_COMM_PUSH_MS] = st->push_latency_ms * (double)st->pushes;
    out[PST_COMM_PULL_MS] = st->pull_latency_ms * (double)st->pulls;
    out[PST_COMM_STALE] = (double)st->stale_pushes;
    out[PST_COMM_ERRORS] = (double)st->errors;
}

void pst_comm_json(cJSON *comm, const pst_ranks_t *ranks, const pst_config_t *cfg,
                   const double sum[PST_COMM_N])
{
    double raw = sum[PST_COMM_BYTES_RAW], wire = sum[PST_COMM_BYTES_WIRE];
    double pushes = sum[PST_COMM_PUSHES], pulls = sum[PST_COMM_PULLS];
    cJSON_AddNumberToObject(comm, "servers", ranks->n_servers);
    cJSON_AddNumberToObject(comm, "workers", ranks->n_workers);
    cJSON_AddStringToObject(comm, "consistency", cfg->cluster.consistency);
    cJSON_AddStringToObject(comm, "codec", cfg->transport.codec);
    cJSON_AddStringToObject(comm, "pull_codec",
                            strcmp(cfg->transport.pull_codec, "same") ? cfg->transport.pull_codec
                                                                      : cfg->transport.codec);
    pst_json_add_number(comm, "bytes_raw", raw);
    pst_json_add_number(comm, "bytes_wire", wire);
    pst_json_add_number(comm, "wire_ratio", wire > 0 ? raw / wire : NAN);
    pst_json_add_number(comm, "pushes", pushes);
    pst_json_add_number(comm, "pulls", pulls);
    pst_json_add_number(comm, "push_latency_ms", pushes > 0 ? sum[PST_COMM_PUSH_MS] / pushes : NAN);
    pst_json_add_number(comm, "pull_latency_ms", pulls > 0 ? sum[PST_COMM_PULL_MS] / pulls : NAN);
    pst_json_add_number(comm, "stale_pushes", sum[PST_COMM_STALE]);
    pst_json_add_number(comm, "errors", sum[PST_COMM_ERRORS]);
}

/* Bytes per second as MB/s, NaN kept (JSON null). */
static double mbps(double bps)
{
    return bps / 1e6;
}

void pst_comm_codec_json(cJSON *comm, const pst_psclient_t *client)
{
    if (client == NULL)
        return;
    size_t n = pst_psclient_codec_choices(client, NULL, 0);
    pst_psclient_codec_choice_t *all = n > 0 ? malloc(n * sizeof *all) : NULL;
    if (n > 0 && all == NULL)
        return;
    n = pst_psclient_codec_choices(client, all, n);
    cJSON *list = cJSON_AddArrayToObject(comm, "codec_choices");
    for (size_t i = 0; list != NULL && i < n; i++) {
        const pst_wire_auto_choice_t *c = &all[i].choice;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "model_id", c->model_id);
        cJSON_AddNumberToObject(o, "tensor_id", c->tensor_id);
        cJSON_AddNumberToObject(o, "server", all[i].server);
        cJSON_AddStringToObject(o, "direction", pst_wire_op_name(c->op));
        cJSON_AddStringToObject(o, "chosen", pst_codec_name(c->chosen));
        cJSON_AddStringToObject(o, "why", pst_codec_auto_why_name(c->why));
        cJSON_AddStringToObject(o, "compressor", pst_codec_name(c->candidate));
        pst_json_add_number(o, "ratio", c->ratio);
        pst_json_add_number(o, "codec_encode_mb_s", mbps(c->encode_bps));
        pst_json_add_number(o, "codec_decode_mb_s", mbps(c->decode_bps));
        pst_json_add_number(o, "link_mb_s", mbps(c->link_bps));
        pst_json_add_number(o, "payloads", (double)c->payloads);
        pst_json_add_number(o, "changes", (double)c->decisions);
        cJSON_AddItemToArray(list, o);
    }
    free(all);
}
