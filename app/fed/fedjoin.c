/* A federated site: security, the server's contract, the site's data under the contract's
 * preprocessing, local training rounds, and the site's own outputs. */
#include "app/fed/fedjoin.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/console.h"
#include "worker/fed/fedtrain.h"
#include "worker/model/modelspec.h"
#include "app/pipeline.h"
#include "app/rundir.h"
#include "app/session.h"
#include "common/fed/fedkeys.h"
#include "common/log.h"
#include "worker/fed/fedsite.h"
#include "worker/model/modelfile.h"

typedef struct join {
    const pst_config_t *cfg; /* the site's own */
    char site[PST_FEDKEY_NAME_MAX + 1];
    const char *server;
    const pst_fedjoin_ext_t *ext; /* the other ranks of an mpirun site, or NULL */
    bool have_contract;
    pst_fedjoin_model_t m;
    pst_fedtrain_site_t play;
    pst_rundir_t rundir;
    pst_fedsite_t *fs;
    bool got_final;
    uint64_t rounds;
} join_t;

/* The site id a configuration gives (fed.site, else the host name made a valid id) into buf. */
static int site_id(const pst_config_t *cfg, const char *override, char *buf, size_t cap,
                   pst_err_t *err)
{
    const char *id = override ? override : cfg->fed.site;
    char host[256] = "";
    if (id == NULL || id[0] == '\0') {
        if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0')
            return pst_err_set(err, PST_EINVAL, "fed.site: no site id, and no host name to use");
        for (char *c = host; *c; c++)
            if (!pst_fedkey_site_char(*c))
                *c = '-';
        id = host;
    }
    size_t n = strlen(id);
    if (!pst_fedkey_site_valid(id) || n >= cap)
        return pst_err_set(err, PST_EINVAL,
                           "fed.site: '%.80s' is not 1 to %d letters, digits, '-', '_' or '.'", id,
                           PST_FEDKEY_NAME_MAX);
    memcpy(buf, id, n + 1);
    return PST_OK;
}

/* ---- the contract ---- */

/* The server's configuration, with this site's data keys in place of the server's. */
static int contract_config(pst_fedjoin_model_t *m, const pst_config_t *cfg, pst_err_t *err)
{
    pst_config_init(&m->run_cfg);
    if (!m->mf.config_yaml)
        return pst_err_set(err, PST_EPROTO, "the server's contract carries no configuration");
    int rc = pst_config_load_string(&m->run_cfg, m->mf.config_yaml, "the server's contract", err);
    if (rc == PST_OK)
        rc = pst_config_copy_prefix(&m->run_cfg, cfg, "data.", err);
    return rc;
}

/* Loads the site's rows with the classes and preprocessing of the contract. */
static int load_site_data(pst_fedjoin_model_t *m, const pst_config_t *cfg, pst_err_t *err)
{
    const pst_modelfile_t *mf = &m->mf;
    /* The reader names the file in its errors; what follows it does not. */
    int rc = pst_pipeline_load_for(&m->run_cfg, cfg->data.train, cfg->data.train_labels, mf, true,
                                   &m->data, err);
    if (rc != PST_OK)
        return rc;
    rc = pst_dataset_densify(m->data, (size_t)mf->n_inputs, err);
    if (rc == PST_OK)
        rc = pst_modelfile_preprocess(mf, m->data, err);
    if (rc == PST_OK && m->data->n_rows == 0)
        rc = pst_err_set(err, PST_EFORMAT, "no rows");
    return rc == PST_OK ? rc : pst_err_prefix(err, rc, "%s: ", cfg->data.train);
}

int pst_fedjoin_model_open(pst_fedjoin_model_t *m, const pst_config_t *cfg, const uint8_t *contract,
                           size_t len, pst_err_t *err)
{
    int rc = pst_modelfile_unpack(&m->mf, contract, len, "the server's contract", err);
    return rc == PST_OK ? contract_config(m, cfg, err) : rc;
}

int pst_fedjoin_model_load(pst_fedjoin_model_t *m, const pst_config_t *cfg, size_t n,
                           pst_err_t *err)
{
    int rc = pst_modelspec_build(&m->spec, &m->run_cfg, m->mf.task, m->mf.n_classes, err);
    if (rc == PST_OK)
        rc = load_site_data(m, cfg, err);
    if (rc != PST_OK)
        return rc;
    pst_train_opts_t opts;
    pst_session_train_opts(&m->run_cfg, &m->spec, &opts);
    rc = pst_fedtrainer_init(&m->trainer, &m->spec, (size_t)pst_modelfile_width(&m->mf), &opts,
                             &m->run_cfg, err);
    if (rc != PST_OK)
        return rc;
    if (m->trainer.n_params != n || m->mf.n_params != n)
        return pst_err_set(err, PST_EPROTO,
                           "the contract's model has %zu parameters, the server announced %zu",
                           m->trainer.n_params, n);
    return PST_OK;
}

static void log_model(const pst_fedjoin_model_t *m, const pst_config_t *cfg, const char *site)
{
    pst_info("fed site %s: %zu rows of %s; from the server: %d local epoch(s), %s lr %g, batch "
             "%ld, %s",
             site, m->data->n_rows, cfg->data.train, m->trainer.opts.epochs,
             m->run_cfg.optimizer.name, m->run_cfg.optimizer.lr, m->run_cfg.train.batch_size,
             m->run_cfg.fed.aggregator);
}

void pst_fedjoin_model_fini(pst_fedjoin_model_t *m)
{
    pst_fedtrainer_fini(&m->trainer);
    pst_dataset_destroy(&m->data);
    pst_modelfile_fini(&m->mf);
    pst_config_fini(&m->run_cfg);
}

static int take_contract(join_t *j, const uint8_t *contract, size_t len, size_t n, pst_err_t *err)
{
    int rc = j->ext ? j->ext->contract(j->ext->ctx, &j->m, contract, len, n, err)
                    : pst_fedjoin_model_open(&j->m, j->cfg, contract, len, err);
    if (rc == PST_OK && !j->ext)
        rc = pst_fedjoin_model_load(&j->m, j->cfg, n, err);
    if (rc != PST_OK)
        return rc;
    j->play = (pst_fedtrain_site_t){.trainer = &j->m.trainer, .rows = pst_rows_all(j->m.data)};
    j->have_contract = true;
    log_model(&j->m, j->cfg, j->site);
    return PST_OK;
}

static int on_welcome(void *ctx, pst_fedsite_t *site, const uint8_t *contract, size_t len, size_t n,
                      pst_err_t *err)
{
    (void)site;
    join_t *j = ctx;
    if (j->have_contract) /* registered again: the same run goes on */
        return n == j->m.trainer.n_params
                   ? PST_OK
                   : pst_err_set(err, PST_EPROTO, "the server's model changed size");
    int rc = take_contract(j, contract, len, n, err);
    return rc == PST_OK ? rc : pst_err_prefix(err, rc, "fed site %s: ", j->site);
}

static int on_train(void *ctx, pst_fedsite_t *site, const pst_fedsite_task_t *task, float *delta,
                    double *samples, double *loss, pst_err_t *err)
{
    join_t *j = ctx;
    if (j->ext)
        return j->ext->train(j->ext->ctx, &j->play, task, delta, samples, loss, err);
    return pst_fedtrain_hook(&j->play, site, task, delta, samples, loss, err);
}

/* ---- the end of the run ---- */

/* The final model scored on the site's own rows. */
static void local_metrics(join_t *j, cJSON *doc)
{
    pst_eval_sums_t sums;
    pst_train_opts_t *o = &j->m.trainer.opts;
    pst_rows_t rows = pst_rows_all(j->m.data);
    if (pst_eval_sums_rows(j->m.trainer.local, &rows, o->batch_size, o->loss, o->huber_delta, &sums,
                           NULL) != PST_OK ||
        sums.n <= 0)
        return;
    cJSON *local = cJSON_AddObjectToObject(doc, "local");
    pst_json_add_number(local, "rows", sums.n);
    pst_json_add_number(local, "loss", sums.loss_sum / sums.n);
    if (j->m.mf.task == PST_TASK_CLASSIFICATION)
        pst_json_add_number(local, "accuracy", sums.correct / sums.n);
    else
        pst_json_add_number(local, "mse", sums.sq_err_sum / sums.n);
}

static int write_report(join_t *j, pst_err_t *err)
{
    pst_fedsite_stats_t st;
    pst_fedsite_stats(j->fs, &st);
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "site", j->site);
    cJSON_AddStringToObject(doc, "server", j->server);
    pst_json_add_number(doc, "rounds", (double)j->rounds);
    cJSON_AddBoolToObject(doc, "completed", j->got_final);
    pst_json_add_number(doc, "rounds_trained", (double)st.rounds_trained);
    pst_json_add_number(doc, "rounds_declined", (double)st.rounds_declined);
    pst_json_add_number(doc, "rows_trained", (double)j->play.rows_trained);
    pst_json_add_number(doc, "train_seconds", j->play.seconds);
    pst_json_add_number(doc, "bytes_up_raw", (double)st.bytes_up_raw);
    pst_json_add_number(doc, "bytes_up_wire", (double)st.bytes_up_wire);
    pst_json_add_number(doc, "bytes_down_raw", (double)st.bytes_down_raw);
    pst_json_add_number(doc, "bytes_down_wire", (double)st.bytes_down_wire);
    pst_json_add_number(doc, "reconnects", (double)st.reconnects);
    if (j->got_final)
        local_metrics(j, doc);
    if (j->ext)
        j->ext->report(j->ext->ctx, doc);
    int rc = pst_rundir_write_json(&j->rundir, "report.json", doc, err);
    cJSON_Delete(doc);
    return rc;
}

static int on_done(void *ctx, pst_fedsite_t *site, const float *final, size_t n, uint64_t rounds,
                   pst_err_t *err)
{
    (void)site;
    join_t *j = ctx;
    j->rounds = rounds;
    if (final == NULL || !j->have_contract)
        return PST_OK;
    j->got_final = true;
    memcpy(j->m.mf.params, final, n * sizeof *final);
    memcpy(pst_model_params(j->m.trainer.local), final, n * sizeof *final);
    char path[1100];
    return pst_modelfile_save(&j->m.mf, pst_rundir_file(&j->rundir, "model.pst", path, sizeof path),
                              err);
}

/* ---- running a site ---- */

static int load_keys(const pst_config_t *cfg, pst_fedkey_pair_t *kp, char *server_public,
                     pst_err_t *err)
{
    if (!cfg->fed.key[0] || !cfg->fed.server_key[0])
        return pst_err_set(err, PST_EINVAL,
                           "fed.key and fed.server_key: a site needs its key pair (pstrain fed "
                           "keygen) and the server's public key, or fed.insecure: true on a "
                           "trusted network");
    int rc = pst_fedkey_read_pair(cfg->fed.key, kp, err);
    if (rc == PST_OK)
        rc = pst_fedkey_read_public(cfg->fed.server_key, server_public, err);
    return rc;
}

static int join_run(join_t *j, const pst_fedjoin_args_t *args, pst_err_t *err)
{
    const pst_config_t *cfg = j->cfg;
    pst_fedkey_pair_t kp;
    char server_public[PST_FEDKEY_Z85 + 1];
    int rc = cfg->fed.insecure ? PST_OK : load_keys(cfg, &kp, server_public, err);
    if (rc == PST_OK && access(cfg->data.train, R_OK) != 0)
        rc = pst_err_set(err, PST_EIO, "data.train: cannot read '%s'", cfg->data.train);
    if (rc == PST_OK)
        rc = pst_rundir_open(&j->rundir, cfg, args->out, err);
    if (rc != PST_OK)
        return rc;
    pst_fedsite_cfg_t sc = {.site = j->site,
                            .endpoint = j->server,
                            .key = cfg->fed.insecure ? NULL : &kp,
                            .server_public = cfg->fed.insecure ? NULL : server_public,
                            .heartbeat = cfg->fed.heartbeat,
                            .server_timeout = cfg->fed.server_timeout};
    pst_fedsite_hooks_t hooks = {
        .ctx = j, .welcome = on_welcome, .train = on_train, .done = on_done};
    j->fs = pst_fedsite_new(&sc, &hooks, err);
    memset(kp.secret_key, 0, sizeof kp.secret_key);
    if (!j->fs)
        return err->code;
    pst_info("fed site %s: connecting to %s (%s)", j->site, j->server,
             cfg->fed.insecure ? "plaintext" : "CURVE");
    rc = pst_fedsite_run(&j->fs, 1, err);
    if (rc == PST_OK || j->have_contract) {
        pst_err_t report_err = {0};
        if (write_report(j, &report_err) != PST_OK && rc == PST_OK)
            rc = (*err = report_err, report_err.code);
    }
    if (rc == PST_OK && !j->got_final)
        rc = pst_err_set(err, PST_ESTATE,
                         "the server stopped the run early after round %llu (no final model)",
                         (unsigned long long)j->rounds);
    return rc;
}

int pst_fedjoin_run(const pst_config_t *cfg, const pst_fedjoin_args_t *args)
{
    return pst_fedjoin_run_ext(cfg, args, NULL);
}

int pst_fedjoin_run_ext(const pst_config_t *cfg, const pst_fedjoin_args_t *args,
                        const pst_fedjoin_ext_t *ext)
{
    join_t *j = calloc(1, sizeof *j);
    if (!j) {
        pst_app_error("out of memory");
        return 1;
    }
    j->cfg = cfg;
    j->ext = ext;
    j->server = args->server ? args->server : cfg->fed.server;
    pst_err_t err = {0};
    int rc = site_id(cfg, args->site, j->site, sizeof j->site, &err);
    if (rc == PST_OK && (!j->server || !j->server[0]))
        rc = pst_err_set(&err, PST_EINVAL,
                         "fed join: no server: give --server tcp://HOST:PORT or fed.server");
    if (rc == PST_OK)
        rc = join_run(j, args, &err);
    if (rc != PST_OK)
        pst_app_error("%s", err.msg);
    else
        printf("fed site %s: done after %llu rounds; model and report in %s\n", j->site,
               (unsigned long long)j->rounds, j->rundir.path);
    pst_fedsite_destroy(&j->fs);
    pst_rundir_close(&j->rundir);
    pst_fedtrain_site_fini(&j->play);
    pst_fedjoin_model_fini(&j->m);
    free(j);
    return rc == PST_OK ? 0 : 1;
}
