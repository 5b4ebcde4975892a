/* Federated server side: contract, coordinator, network server, per-round reports. */
#include "app/fed/fedserve.h"

#include <stdlib.h>
#include <string.h>

#include "app/fed/fedconf.h"
#include "app/fed/fedresume.h"
#include "app/rundir.h"
#include "common/log.h"

int pst_fedserve_open(pst_fedserve_t *fs, pst_session_t *s, const pst_fedserve_net_t *net,
                      pst_err_t *err)
{
    memset(fs, 0, sizeof *fs);
    fs->s = s;
    const pst_config_t *cfg = s->cfg;
    int rc = pst_fedconf_check(cfg, s->data.train, err);
    if (rc != PST_OK)
        return rc;
    pst_fedcoord_cfg_t cc;
    pst_fedconf_coord(cfg, &cc);
    size_t n = pst_model_n_params(s->model);
    fs->coord = pst_fedcoord_new(&cc, pst_model_params(s->model), n, err);
    if (!fs->coord)
        return pst_err_prefix(err, pst_err_code(err, PST_ENOMEM), "fed: ");
    uint8_t *contract = NULL;
    size_t contract_len = 0;
    if ((rc = pst_session_pack_model(s, &contract, &contract_len, err)) != PST_OK)
        return rc;
    pst_fedserver_cfg_t sc = {
        .endpoint = net->endpoint,
        .key = net->key,
        .allowed = net->allowed,
        .down_codec = pst_fedconf_down_codec(cfg),
        .up_codec = pst_fedconf_up_codec(cfg),
        .contract = contract,
        .contract_len = contract_len,
        .seed = (uint64_t)cfg->seed,
        .expected_sites = net->expected_sites,
        .start_timeout = cfg->fed.start_timeout,
        .heartbeat_timeout = cfg->fed.heartbeat_timeout,
        .max_sites = (int)cfg->fed.max_sites,
    };
    fs->srv = pst_fedserver_new(&sc, fs->coord, fs->endpoint, sizeof fs->endpoint, err);
    free(contract);
    if (!fs->srv)
        return err ? err->code : PST_EIO;
    pst_fedreport_init(&fs->report, s, cfg->fed.dp.clip > 0);
    pst_info("fed server: listening on %s (%s), model %zu parameters (%zu bytes), %s", fs->endpoint,
             net->key ? "CURVE" : "plaintext", n, 4 * n, cfg->fed.aggregator);
    return PST_OK;
}

static int on_round(void *ctx, const pst_fedcoord_round_t *r, const pst_fedtraffic_t *traffic,
                    double seconds, pst_err_t *err)
{
    pst_fedserve_t *fs = ctx;
    int rc =
        pst_fedreport_round(&fs->report, r, pst_fedcoord_global(fs->coord), traffic, seconds, err);
    /* after the round's line: a restart finds the metrics of every round its checkpoint holds */
    return rc == PST_OK && fs->checkpoint ? pst_fedresume_save(fs, err) : rc;
}

static cJSON *server_section(pst_fedserve_t *fs)
{
    cJSON *fed = pst_fedreport_section(&fs->report, fs->s->cfg, fs->coord);
    pst_fedserver_stats_t st;
    pst_fedserver_stats(fs->srv, &st);
    cJSON *srv = cJSON_AddObjectToObject(fed, "server");
    pst_json_add_number(srv, "registrations", (double)st.registrations);
    pst_json_add_number(srv, "rejoins", (double)st.rejoins);
    pst_json_add_number(srv, "refused_registrations", (double)st.refused_registrations);
    pst_json_add_number(srv, "impostors", (double)st.impostors);
    pst_json_add_number(srv, "lowered_claims", (double)st.lowered_claims);
    pst_json_add_number(srv, "bad_frames", (double)st.bad_frames);
    pst_json_add_number(srv, "bad_updates", (double)st.bad_updates);
    pst_json_add_number(srv, "declined", (double)st.declined);
    pst_json_add_number(srv, "silent_drops", (double)st.heartbeat_drops);
    pst_json_add_number(srv, "unreachable", (double)st.unreachable);
    pst_json_add_number(srv, "auth_admitted", (double)st.auth_admitted);
    pst_json_add_number(srv, "auth_refused", (double)st.auth_refused);
    pst_fedround_t *reg = pst_fedcoord_sites(fs->coord);
    cJSON *ids = cJSON_AddArrayToObject(fed, "site_ids");
    for (int i = 0; i < pst_fedround_n_sites(reg); i++)
        cJSON_AddItemToArray(ids, cJSON_CreateString(pst_fedround_site(reg, i)));
    return fed;
}

int pst_fedserve_run(pst_fedserve_t *fs, pst_err_t *err)
{
    pst_fedserver_hooks_t hooks = {.ctx = fs, .on_round = on_round};
    int rc = pst_fedserver_run(fs->srv, &hooks, err);
    pst_session_t *s = fs->s;
    s->result.epochs_run = fs->report.rounds_run;
    s->result.clock = (uint64_t)fs->report.rounds_run;
    memcpy(pst_model_params(s->model), pst_fedcoord_global(fs->coord),
           pst_model_n_params(s->model) * sizeof(float));
    if (rc == PST_OK || rc == PST_ESTATE) {
        if (!s->extra)
            s->extra = cJSON_CreateObject();
        cJSON *fed = server_section(fs);
        cJSON_AddBoolToObject(fed, "stopped_early", rc == PST_ESTATE);
        cJSON_AddItemToObject(s->extra, "fed", fed);
    }
    return rc;
}

void pst_fedserve_stop(pst_fedserve_t *fs)
{
    if (fs->srv)
        pst_fedserver_stop(fs->srv);
}

void pst_fedserve_close(pst_fedserve_t *fs)
{
    pst_fedserver_destroy(&fs->srv);
    pst_fedcoord_destroy(&fs->coord);
}
