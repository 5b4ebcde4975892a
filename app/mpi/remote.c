/* Push/pull hooks over the psclient, and the group reductions a training run needs. */
#include "app/mpi/remote.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "app/mpi/mpijob.h"
#include "app/rundir.h"

#include "common/log.h"

int pst_remote_connect(pst_remote_t *r, const pst_ranks_t *ranks, const pst_config_t *cfg,
                       MPI_Comm group, pst_err_t *err)
{
    memset(r, 0, sizeof *r);
    r->group = group;
    r->tensor = -1;
    const char *endpoints[ranks->n_servers];
    pst_ranks_endpoints(ranks, endpoints);
    pst_psclient_cfg_t pc;
    pst_psclient_cfg_defaults(&pc);
    pc.endpoints = endpoints;
    pc.n_servers = (uint32_t)ranks->n_servers;
    pc.worker_id = (uint32_t)ranks->worker;
    pc.timeout_ms = (int)(cfg->cluster.timeout * 1000);
    const char *pull = strcmp(cfg->transport.pull_codec, "same") ? cfg->transport.pull_codec
                                                                 : cfg->transport.codec;
    if (pst_codec_parse(cfg->transport.codec, &pc.push_codec) != PST_OK ||
        pst_codec_parse(pull, &pc.pull_codec) != PST_OK)
        return pst_err_set(err, PST_EINVAL, "transport.codec: unknown codec");
    if (!(r->client = pst_psclient_new(&pc, err)))
        return err->code ? err->code : PST_ENOMEM;
    return PST_OK;
}

int pst_remote_begin(pst_remote_t *r, uint32_t model_id, const float *params, size_t n,
                     uint64_t *clock, pst_err_t *err)
{
    r->tensor = pst_psclient_register_dense(r->client, model_id, 0, n, err);
    int rc = r->tensor < 0 ? r->tensor
                           : pst_psclient_init_on_servers(r->client, r->tensor, params, clock, err);
    /* Every worker of the group must have registered before anyone pushes; a worker that failed
     * still joins the reduction, or the others would wait in it forever. */
    if (pst_mpijob_agree(r->group, rc) != PST_OK && rc == PST_OK)
        rc = pst_err_set(err, PST_ESTATE, "another worker of the group failed to register");
    return rc;
}

int pst_remote_flush(pst_remote_t *r, pst_err_t *err)
{
    if (!r->push_pending)
        return PST_OK;
    r->push_pending = false;
    return pst_psclient_wait(r->client, r->push_ticket, err);
}

int pst_remote_drop(pst_remote_t *r, uint32_t model_id, pst_err_t *err)
{
    int rc = pst_remote_flush(r, err);
    int drop_rc = pst_psclient_drop(r->client, model_id, rc == PST_OK ? err : NULL);
    r->tensor = -1;
    return rc != PST_OK ? rc : drop_rc;
}

/* The pull for the next clock goes out before the previous push is waited on, so the two
 * transfers overlap. The pushed gradient stays untouched until then: the next backward pass
 * comes after this pull. */
static int hook_pull(void *ctx, float *params, uint64_t clock, pst_err_t *err)
{
    pst_remote_t *r = ctx;
    pst_ticket_t t;
    int rc = pst_psclient_pull(r->client, r->tensor, params, clock, &t, err);
    int push_rc = pst_remote_flush(r, err);
    if (rc != PST_OK)
        return rc;
    rc = pst_psclient_wait(r->client, t, err);
    return push_rc != PST_OK ? push_rc : rc;
}

static int hook_push(void *ctx, const float *grads, uint64_t clock, float lr, pst_err_t *err)
{
    pst_remote_t *r = ctx;
    int rc = pst_remote_flush(r, err);
    if (rc == PST_OK)
        rc = pst_psclient_push(r->client, r->tensor, grads, clock, lr, &r->push_ticket, err);
    r->push_pending = rc == PST_OK;
    return rc;
}

static int hook_allreduce(void *ctx, double *vals, int n, pst_err_t *err)
{
    pst_remote_t *r = ctx;
    if (MPI_Allreduce(MPI_IN_PLACE, vals, n, MPI_DOUBLE, MPI_SUM, r->group) != MPI_SUCCESS)
        return pst_err_set(err, PST_EIO, "MPI_Allreduce of epoch metrics failed");
    return PST_OK;
}

void pst_remote_hooks(pst_remote_t *r, pst_train_hooks_t *hooks)
{
    hooks->ctx = r;
    hooks->pull = hook_pull;
    hooks->push = hook_push;
    hooks->allreduce_sum = hook_allreduce;
}

void pst_remote_close(pst_remote_t *r)
{
    if (!r->client)
        return;
    pst_err_t err;
    pst_remote_flush(r, &err);
    if (pst_psclient_shutdown(r->client, &err) != PST_OK)
        pst_warn("shutdown: %s", err.msg);
    pst_psclient_destroy(&r->client);
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
