/* A training job end to end: prepare, train, evaluate, write the run directory. */
#include "app/session.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/console.h"
#include "app/drift/driftfit.h"
#include "app/evalcurves.h"
#include "app/session_dp.h"
#include "app/session_compress.h"
#include "app/session_tb.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/eval/metrics.h"
#include "worker/model/modelfile.h"

void pst_session_optim_cfg(const pst_config_t *cfg, pst_optim_cfg_t *out)
{
    pst_optim_kind_t kind = PST_OPT_ADAM; /* the config already checked the name */
    pst_optim_kind_parse(cfg->optimizer.name, &kind);
    pst_optim_cfg_defaults(out, kind);
    out->momentum = (float)cfg->optimizer.momentum;
    out->beta1 = (float)cfg->optimizer.beta1;
    out->beta2 = (float)cfg->optimizer.beta2;
    if (cfg->optimizer.eps > 0)
        out->eps = (float)cfg->optimizer.eps;
    out->weight_decay = (float)cfg->optimizer.weight_decay;
    out->lookahead_k = (int)cfg->optimizer.lookahead_k;
    out->lookahead_alpha = (float)cfg->optimizer.lookahead_alpha;
    out->ftrl_beta = (float)cfg->optimizer.ftrl_beta;
    out->ftrl_l1 = (float)cfg->optimizer.ftrl_l1;
    out->ftrl_l2 = (float)cfg->optimizer.ftrl_l2;
}

void pst_session_train_opts(const pst_config_t *cfg, const pst_modelspec_t *spec,
                            pst_train_opts_t *o)
{
    pst_train_opts_defaults(o);
    o->epochs = (int)cfg->train.epochs;
    o->batch_size = (int)cfg->train.batch_size;
    o->seed = pst_rng_derive((uint64_t)cfg->seed, 100);
    o->shuffle = cfg->train.shuffle;
    o->loss = spec->loss;
    o->fused_output = spec->fused_output;
    o->huber_delta = (float)cfg->model.huber_delta;
    o->l1 = (float)cfg->train.l1;
    o->l2 = (float)cfg->train.l2;
    o->clip_norm = cfg->train.clip_norm;
    o->clip_value = (float)cfg->train.clip_value;
    o->patience = (int)cfg->train.patience;
    o->min_delta = cfg->train.min_delta;
    o->restore_best = cfg->train.restore_best;
    pst_session_optim_cfg(cfg, &o->optim);
    pst_sched_kind_parse(cfg->schedule.name, &o->sched.kind);
    pst_augment_parse(&o->augment, cfg->data.augment.items, cfg->data.augment.n, NULL);
    o->sched.base_lr = (float)cfg->optimizer.lr;
    o->sched.gamma = (float)cfg->schedule.gamma;
    o->sched.step_size = (int)cfg->schedule.step_size;
    o->sched.total_epochs = (int)cfg->train.epochs;
    o->sched.min_lr = (float)cfg->schedule.min_lr;
    o->sched.warmup_steps = cfg->schedule.warmup_steps;
    o->sched.factor = (float)cfg->schedule.factor;
    o->sched.patience = (int)cfg->schedule.patience;
    o->sched.threshold = (float)cfg->schedule.threshold;
    o->dp.clip = cfg->train.dp.clip;
    o->dp.noise = cfg->train.dp.noise;
    o->dp.delta = cfg->train.dp.delta;
    o->dp.epsilon_budget = cfg->train.dp.epsilon_budget;
}

void pst_session_augment_shape(pst_train_opts_t *o, const pst_config_t *cfg,
                               const pst_model_t *model)
{
    int shape[3] = {0, 0, 0};
    const pst_int_list_t *is = &cfg->data.image_shape;
    if (pst_model_n_layers(model) > 0 && pst_model_layer(model, 0)->kind == PST_LAYER_INPUT) {
        pst_model_shape(model, 0, shape);
    } else if (is->n == 2 || is->n == 3) {
        shape[0] = is->n == 3 ? (int)is->items[0] : 1;
        shape[1] = (int)is->items[is->n - 2];
        shape[2] = (int)is->items[is->n - 1];
    }
    o->augment.channels = shape[0];
    o->augment.height = shape[1];
    o->augment.width = shape[2];
}

static int fill_opts(pst_session_t *s, pst_err_t *err)
{
    const pst_config_t *cfg = s->cfg;
    pst_session_train_opts(cfg, &s->spec, &s->opts);
    pst_session_augment_shape(&s->opts, cfg, s->model);
    if (s->opts.optim.kind != PST_OPT_ADAMW && cfg->optimizer.weight_decay > 0 && cfg->train.l2 > 0)
        pst_warn("optimizer.weight_decay and train.l2 both penalise the weights");
    return pst_session_compress_setup(s, err);
}

/* model.init_from: the weights of a saved model, all of them or all but the output layer's. */
static int start_from_file(pst_session_t *s, const char *path, pst_err_t *err)
{
    pst_modelfile_t mf;
    int rc = pst_modelfile_load(&mf, path, err);
    if (rc != PST_OK)
        return pst_err_prefix(err, rc, "model.init_from: ");
    bool kept_output = false;
    rc = pst_modelfile_transfer(&mf, s->model, &kept_output, err);
    pst_modelfile_fini(&mf);
    if (rc != PST_OK)
        return pst_err_prefix(err, rc, "model.init_from: %s: ", path);
    if (s->lead)
        pst_info("model: starting from %s (%s)", path,
                 kept_output ? "all layers but the output layer" : "all layers");
    return PST_OK;
}

/* Builds and initialises the model for the loaded data, and the training options. */
static int prepare_model(pst_session_t *s, pst_err_t *err)
{
    const pst_config_t *cfg = s->cfg;
    const pst_dataset_t *tr = s->data.train;
    int rc = pst_modelspec_build(&s->spec, cfg, tr->task, tr->n_classes, err);
    if (rc != PST_OK)
        return rc;
    int max_batch = (int)cfg->train.batch_size;
    s->model = pst_model_new((int)tr->n_features, s->spec.layers, s->spec.n_layers, max_batch, err);
    if (!s->model)
        return pst_err_prefix(err, pst_err_code(err, PST_ENOMEM), "model: ");
    pst_rng_t init_rng;
    pst_rng_init(&init_rng, pst_rng_derive((uint64_t)cfg->seed, 0));
    pst_model_init_params(s->model, &init_rng);
    if (cfg->model.init_from[0] && (rc = start_from_file(s, cfg->model.init_from, err)) != PST_OK)
        return rc;
    return fill_opts(s, err);
}

static void session_init(pst_session_t *s, const pst_config_t *cfg, bool lead)
{
    memset(s, 0, sizeof *s);
    s->cfg = cfg;
    s->lead = lead;
    s->n_workers = 1;
    const char *p = cfg->train.progress;
    s->progress_bar = lead && (strcmp(p, "bar") == 0 || (strcmp(p, "auto") == 0 && isatty(2)));
}

int pst_session_prepare(pst_session_t *s, const pst_config_t *cfg, bool lead, pst_err_t *err)
{
    session_init(s, cfg, lead);
    double t0 = pst_clock_seconds();
    int rc = pst_pipeline_load(&s->data, cfg, err);
    s->load_seconds = pst_clock_seconds() - t0;
    if (rc == PST_OK)
        rc = prepare_model(s, err);
    return rc ? rc : pst_session_imbalance(s, NULL, err);
}

int pst_session_imbalance(pst_session_t *s, const pst_reducer_t *reduce, pst_err_t *err)
{
    int rc = pst_imbalance_apply(&s->imbalance, s->cfg, s->data.train, reduce, err);
    s->opts.class_weights = s->imbalance.class_weights;
    return rc;
}

int pst_session_prepare_shard(pst_session_t *s, const pst_config_t *cfg, bool lead, int worker,
                              const pst_reducer_t *reduce, pst_err_t *err)
{
    session_init(s, cfg, lead);
    double t0 = pst_clock_seconds();
    int rc = pst_shardload(&s->data, cfg, worker, reduce, err);
    s->load_seconds = pst_clock_seconds() - t0;
    return rc ? rc : prepare_model(s, err);
}

int pst_session_open_rundir(pst_session_t *s, const char *out, pst_err_t *err)
{
    return pst_rundir_open(&s->rundir, s->cfg, out, err);
}

void pst_session_print_epoch(pst_session_t *s, const pst_epoch_stats_t *es)
{
    if (!s->lead)
        return;
    pst_rundir_log_epoch(&s->rundir, es);
    pst_session_log_histograms(s, es->epoch);
    if (strcmp(s->cfg->train.progress, "none") == 0)
        return;
    if (s->progress_bar)
        fprintf(stderr, "\r\033[K");
    printf("epoch %*d/%d  loss %.4f",
           es->epochs >= 100  ? 3
           : es->epochs >= 10 ? 2
                              : 1,
           es->epoch, es->epochs, es->train_loss);
    if (isfinite(es->val_loss))
        printf("  val_loss %.4f  val_%s %.4f", es->val_loss, es->val_metric_name, es->val_metric);
    if (isfinite(es->epsilon))
        printf("  epsilon %.4f", es->epsilon);
    if (s->n_workers > 1) /* every worker takes the same steps: the lead's rate times workers */
        printf("  lr %.3g  %d workers, %.0f samples/s  %.1fs%s\n", es->lr, s->n_workers,
               es->samples_per_s * s->n_workers, es->seconds, es->improved ? "  *" : "");
    else
        printf("  lr %.3g  %.0f samples/s  %.1fs%s\n", es->lr, es->samples_per_s, es->seconds,
               es->improved ? "  *" : "");
    fflush(stdout);
}

void pst_session_print_progress(pst_session_t *s, const pst_step_progress_t *p)
{
    if (!s->progress_bar)
        return;
    int width = 30, done = (int)(width * p->step / (p->steps ? p->steps : 1));
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < done ? '=' : (i == done ? '>' : ' ');
    bar[width] = '\0';
    fprintf(stderr, "\r\033[Kepoch %d/%d [%s] %ld/%ld  loss %.4f  %.0f samples/s", p->epoch,
            p->epochs, bar, p->step, p->steps, p->loss, p->samples_per_s);
    fflush(stderr);
}

static void on_epoch(void *ctx, const pst_epoch_stats_t *es)
{
    pst_session_print_epoch(ctx, es);
}

static void on_progress(void *ctx, const pst_step_progress_t *p)
{
    pst_session_print_progress(ctx, p);
}

static void on_step(void *ctx, const pst_step_progress_t *p)
{
    pst_session_log_step(ctx, p);
}

void pst_session_hooks(pst_session_t *s, pst_train_hooks_t *hooks)
{
    hooks->observer_ctx = s;
    hooks->on_epoch = on_epoch;
    hooks->on_progress = on_progress;
    if (s->lead && s->cfg->output.log_steps > 0) {
        hooks->on_step = on_step;
        hooks->step_every = s->cfg->output.log_steps;
    }
}

int pst_session_train(pst_session_t *s, pst_train_hooks_t *hooks, pst_err_t *err)
{
    if (s->lead) {
        const pst_pipeline_t *d = &s->data;
        pst_info("data: %zu train, %zu validation, %zu test rows, %zu features, %d classes",
                 d->train->n_rows, d->val->n_rows, d->test->n_rows, d->train->n_features,
                 d->train->n_classes);
        pst_info("model: %zu parameters, loss %s, optimizer %s lr %g, batch %d, %d epochs",
                 pst_model_n_params(s->model), pst_loss_kind_name(s->spec.loss),
                 s->cfg->optimizer.name, s->cfg->optimizer.lr, s->opts.batch_size, s->opts.epochs);
    }
    pst_rows_t train = pst_rows_all(s->data.train), val = pst_rows_all(s->data.val);
    if (s->train_share) {
        train.idx = s->train_share;
        train.n = s->n_train_share;
        val.idx = s->val_share;
        val.n = s->n_val_share;
    } else if (s->imbalance.rows) {
        train.idx = s->imbalance.rows;
        train.n = s->imbalance.n_rows;
    }
    return pst_train_rows(s->model, &train, &val, &s->opts, hooks, &s->result, err);
}

/* Metrics of the model on ds into obj (with the curves of a classification); the first rows'
 * outputs into the run directory's file predictions when it is not NULL. */
static int evaluate_into(pst_session_t *s, const pst_dataset_t *ds, cJSON *obj,
                         const char *predictions, pst_err_t *err)
{
    if (ds->n_rows == 0)
        return PST_OK;
    int n_out = pst_model_n_outputs(s->model);
    float *out = malloc(ds->n_rows * (size_t)n_out * sizeof(float));
    if (!out)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    int rc = pst_predict(s->model, ds, s->opts.batch_size, out, err);
    if (rc == PST_OK)
        pst_json_add_number(obj, "loss",
                            pst_loss_eval(s->opts.loss, out, ds->y, (int)ds->n_rows, n_out,
                                          s->opts.huber_delta, false, NULL));
    if (rc == PST_OK && ds->task == PST_TASK_CLASSIFICATION) {
        pst_class_metrics_t m;
        rc = pst_class_metrics_from_outputs(&m, ds->n_classes, ds->n_rows, out, n_out, ds->y, err);
        if (rc == PST_OK)
            pst_json_add_class_metrics(obj, &m);
        pst_class_metrics_fini(&m);
        if (rc == PST_OK)
            rc = pst_evalcurves_add(obj, ds->n_classes, ds->n_rows, out, n_out, ds->y, err);
    } else if (rc == PST_OK) {
        pst_reg_metrics_t m;
        pst_reg_metrics_compute(&m, ds->n_rows, out, ds->y);
        pst_json_add_reg_metrics(obj, &m);
    }
    char path[1100];
    if (rc == PST_OK && predictions && s->cfg->output.test_predictions > 0)
        rc = pst_evalcurves_write_predictions(
            pst_rundir_file(&s->rundir, predictions, path, sizeof path), ds->n_rows, out, n_out,
            ds->y, ds->task == PST_TASK_CLASSIFICATION, (size_t)s->cfg->output.test_predictions,
            err);
    free(out);
    return rc;
}

/* The model file of the session's model; config_yaml is allocated (free it). */
static pst_modelfile_t session_modelfile(const pst_session_t *s)
{
    const pst_dataset_t *tr = s->data.train;
    const pst_preproc_t *pp = s->data.preproc;
    pst_modelfile_t mf = {
        .n_inputs = (int)tr->n_features,
        .n_layers = s->spec.n_layers,
        .layers = (pst_layer_spec_t *)s->spec.layers,
        .loss = s->spec.loss,
        .task = tr->task,
        .n_classes = tr->n_classes,
        .class_values = tr->class_values,
        .shift = pp->shift,
        .scale = pp->scale,
        .fill = pp->fill,
        .pixel_scale = pp->pixel_scale,
        .params = pst_model_params(s->model),
        .n_params = pst_model_n_params(s->model),
        .state = pst_model_state(s->model),
        .n_state = pst_model_n_state(s->model),
        .config_yaml = pst_config_to_string(s->cfg),
        .target_name = tr->target_name,
        .feature_names = tr->feature_names,
        .encoder = s->data.encoder,
        .class_names = tr->class_names,
        .drift = s->data.drift,
    };
    return mf;
}

int pst_session_pack_model(const pst_session_t *s, uint8_t **buf, size_t *len, pst_err_t *err)
{
    pst_modelfile_t mf = session_modelfile(s);
    int rc = pst_modelfile_pack(&mf, buf, len, err);
    free(mf.config_yaml);
    return rc;
}

static int save_model(pst_session_t *s, pst_err_t *err)
{
    int rc = PST_OK;
    if (s->data.drift)
        rc = pst_driftfit_predictions(s->data.drift, s->model, s->data.train, s->data.val,
                                      s->opts.batch_size, err);
    if (rc != PST_OK)
        return rc;
    pst_modelfile_t mf = session_modelfile(s);
    char path[1100];
    rc = pst_modelfile_save(&mf, pst_rundir_file(&s->rundir, "model.pst", path, sizeof path), err);
    free(mf.config_yaml);
    return rc;
}

static cJSON *build_report(pst_session_t *s)
{
    const pst_dataset_t *tr = s->data.train;
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "name", s->cfg->name);
    cJSON_AddStringToObject(doc, "task",
                            tr->task == PST_TASK_CLASSIFICATION ? "classification" : "regression");
    cJSON *data = cJSON_AddObjectToObject(doc, "data");
    cJSON_AddStringToObject(data, "format", s->data.format);
    pst_json_add_number(data, "train_rows", (double)(tr->n_rows - s->imbalance.n_synthetic));
    pst_json_add_number(data, "val_rows", (double)s->data.val->n_rows);
    pst_json_add_number(data, "test_rows", (double)s->data.test->n_rows);
    pst_json_add_number(data, "features", (double)tr->n_features);
    pst_json_add_number(data, "classes", tr->n_classes);
    if (tr->class_names) {
        /* Text labels: the class order of per_class and confusion in the metrics. */
        cJSON *names = cJSON_AddArrayToObject(data, "class_names");
        for (int k = 0; names && k < tr->n_classes; k++)
            cJSON_AddItemToArray(names, cJSON_CreateString(tr->class_names[k]));
    }
    pst_json_add_number(data, "duplicates_dropped", (double)s->data.n_duplicates);
    cJSON *model = cJSON_AddObjectToObject(doc, "model");
    pst_json_add_number(model, "parameters", (double)pst_model_n_params(s->model));
    cJSON_AddStringToObject(model, "loss", pst_loss_kind_name(s->spec.loss));
    cJSON *train = cJSON_AddObjectToObject(doc, "train");
    const pst_train_result_t *r = &s->result;
    pst_json_add_number(train, "epochs", r->epochs_run);
    pst_json_add_number(train, "best_epoch", r->best_epoch);
    cJSON_AddBoolToObject(train, "stopped_early", r->stopped_early);
    pst_json_add_number(train, "seconds", r->seconds);
    pst_json_add_number(train, "samples_per_s", r->samples_per_s);
    pst_json_add_number(train, "rows", (double)r->rows_trained);
    pst_json_add_number(train, "clock", (double)r->clock);
    if (s->imbalance.class_rows)
        pst_imbalance_json(&s->imbalance, cJSON_AddObjectToObject(train, "imbalance"));
    pst_session_dp_json(s, train);
    cJSON *t = cJSON_AddObjectToObject(doc, "timings");
    pst_json_add_number(t, "load_seconds", s->load_seconds);
    pst_json_add_number(t, "train_seconds", r->seconds);
    pst_json_add_number(t, "eval_seconds", s->eval_seconds);
    return doc;
}

static void print_summary(const pst_session_t *s, const cJSON *doc)
{
    const cJSON *test = cJSON_GetObjectItem(doc, "test");
    const cJSON *val = cJSON_GetObjectItem(doc, "val");
    const char *keys[] = {"accuracy", "f1_macro", "roc_auc", "log_loss", "mse", "mae", "r2"};
    const cJSON *fed = s->extra ? cJSON_GetObjectItem(s->extra, "fed") : NULL;
    const pst_train_result_t *r = &s->result;
    if (fed == NULL) {
        printf("\ntrained %d epoch%s in %.1fs (%.0f samples/s", r->epochs_run,
               r->epochs_run == 1 ? "" : "s", r->seconds, r->samples_per_s);
        if (s->n_workers > 1)
            printf(", %d workers", s->n_workers);
        printf("); loading %.1fs, evaluation %.1fs\n", s->load_seconds, s->eval_seconds);
        if (r->stopped_early)
            printf("stopped early: no validation improvement for %d epochs\n", s->opts.patience);
        pst_session_print_dp(s);
        if (s->opts.patience > 0 && s->opts.restore_best && r->best_epoch > 0 &&
            r->best_epoch < r->epochs_run)
            printf("restored the weights of epoch %d (best validation loss %.4f)\n", r->best_epoch,
                   r->best_val_loss);
    } else if (s->result.rows_trained > 0)
        printf("\n%d federated rounds; the sites trained %ld rows in %.1fs (%.0f samples/s)\n",
               s->result.epochs_run, s->result.rows_trained, s->result.seconds,
               s->result.samples_per_s);
    else
        printf("\n%d federated rounds\n", s->result.epochs_run);
    const cJSON *parts[2] = {val, test};
    const char *names[2] = {"validation", "test"};
    for (int p = 0; p < 2; p++) {
        if (!parts[p] || !cJSON_GetObjectItem(parts[p], "n"))
            continue;
        printf("%-10s", names[p]);
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            const cJSON *v = cJSON_GetObjectItem(parts[p], keys[k]);
            if (v && cJSON_IsNumber(v))
                printf("  %s %.4f", keys[k], v->valuedouble);
        }
        printf("\n");
    }
    printf("run directory: %s\n", s->rundir.path);
}

int pst_session_finish(pst_session_t *s, pst_err_t *err)
{
    if (!s->lead)
        return PST_OK;
    double t0 = pst_clock_seconds();
    cJSON *val = cJSON_CreateObject(), *test = cJSON_CreateObject();
    int rc = evaluate_into(s, s->data.val, val, NULL, err);
    if (rc == PST_OK)
        rc = evaluate_into(s, s->data.test, test, "test_predictions.csv", err);
    s->eval_seconds = pst_clock_seconds() - t0;
    cJSON *doc = build_report(s);
    cJSON_AddItemToObject(doc, "val", val);
    cJSON_AddItemToObject(doc, "test", test);
    pst_session_compress_report(s, doc);
    if (rc == PST_OK && s->extra) {
        for (cJSON *it = s->extra->child; it; it = it->next)
            cJSON_AddItemReferenceToObject(doc, it->string, it);
    }
    if (rc == PST_OK)
        rc = save_model(s, err);
    if (rc == PST_OK)
        rc = pst_rundir_write_json(&s->rundir, "report.json", doc, err);
    if (rc == PST_OK) {
        pst_session_log_comm(s);
        print_summary(s, doc);
    }
    cJSON_Delete(doc);
    return rc;
}

void pst_session_fini(pst_session_t *s)
{
    pst_rundir_close(&s->rundir);
    pst_session_compress_fini(s);
    pst_model_destroy(&s->model);
    free(s->train_share);
    free(s->val_share);
    pst_imbalance_fini(&s->imbalance);
    pst_pipeline_fini(&s->data);
    cJSON_Delete(s->extra);
    s->extra = NULL;
}

int pst_session_end(pst_session_t *s, int rc, pst_err_t *err)
{
    if (rc == PST_OK)
        rc = pst_session_finish(s, err);
    if (rc != PST_OK)
        pst_app_error("%s", err->msg[0] ? err->msg : pst_strerror(rc));
    pst_session_fini(s);
    return rc == PST_OK ? 0 : 1;
}

int pst_load_config(pst_config_t *cfg, const char *path, const char *const *sets, int n_sets,
                    pst_err_t *err)
{
    pst_config_init(cfg);
    int rc = path ? pst_config_load_file(cfg, path, err) : PST_OK;
    for (int i = 0; i < n_sets && rc == PST_OK; i++)
        rc = pst_config_set(cfg, sets[i], err);
    if (rc == PST_OK) {
        pst_log_level_t level = PST_LOG_INFO;
        if (strcmp(cfg->log_level, "debug") == 0)
            level = PST_LOG_DEBUG;
        else if (strcmp(cfg->log_level, "warning") == 0)
            level = PST_LOG_WARN;
        else if (strcmp(cfg->log_level, "error") == 0)
            level = PST_LOG_ERROR;
        pst_log_set_level(level);
    }
    return rc;
}
