/* Running one fit of a plan: rows in, trained model and predictions out. */
#include "app/plan/fit.h"
#include "app/plan/history.h"

#include <stdlib.h>
#include <string.h>

#include "app/session.h"
#include "app/tabular.h"
#include "common/clock.h"
#include "common/sample/resample.h"
#include "worker/model/modelfile.h"

/* The rows a task trains and validates on, after the split and the imbalance handling. */
typedef struct fit_rows {
    size_t *train, *val;
    size_t n_train, n_val;
    pst_dataset_t *with_synthetic; /* SMOTE: the training rows followed by synthetic ones */
    double *class_weights;
} fit_rows_t;

static void fit_rows_fini(fit_rows_t *r)
{
    free(r->train);
    free(r->val);
    free(r->class_weights);
    pst_dataset_destroy(&r->with_synthetic);
}

/* Holds out cfg data.val_fraction of the training rows for early stopping (seeded). */
static int carve_validation(const pst_fit_t *t, fit_rows_t *r, pst_err_t *err)
{
    size_t n = t->n_train;
    size_t n_val = t->cfg->train.patience > 0 ? (size_t)(t->cfg->data.val_fraction * (double)n) : 0;
    size_t *order = malloc(n * sizeof *order);
    r->train = malloc((n ? n : 1) * sizeof(size_t));
    r->val = malloc((n_val ? n_val : 1) * sizeof(size_t));
    if (!order || !r->train || !r->val) {
        free(order);
        return pst_err_set(err, PST_ENOMEM, "task rows: out of memory");
    }
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    pst_rng_t rng;
    pst_rng_init(&rng, pst_rng_derive(t->seed, 31));
    if (n_val)
        pst_rng_shuffle(&rng, order, n);
    for (size_t i = 0; i < n; i++) {
        if (i < n_val)
            r->val[r->n_val++] = t->train[order[i]];
        else
            r->train[r->n_train++] = t->train[order[i]];
    }
    free(order);
    return PST_OK;
}

/* Appends SMOTE rows: the task then trains on a copy of its rows plus the synthetic ones. */
static int add_smote(const pst_fit_t *t, fit_rows_t *r, pst_err_t *err)
{
    pst_dataset_t *syn = NULL;
    int rc = pst_smote(t->data, r->train, r->n_train, (int)t->cfg->train.smote_k,
                       pst_rng_derive(t->seed, 32), &syn, err);
    if (rc != PST_OK)
        return rc;
    size_t n = r->n_train + syn->n_rows;
    pst_dataset_t *all = pst_dataset_take_rows(t->data, r->train, r->n_train);
    rc = all ? pst_dataset_append_rows(all, syn, err)
             : pst_err_set(err, PST_ENOMEM, "SMOTE rows: out of memory");
    pst_dataset_destroy(&syn);
    if (rc != PST_OK) {
        pst_dataset_destroy(&all);
        return rc;
    }
    r->with_synthetic = all;
    size_t *idx = realloc(r->train, n * sizeof(size_t));
    if (!idx)
        return pst_err_set(err, PST_ENOMEM, "SMOTE rows: out of memory");
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    r->train = idx;
    r->n_train = n;
    return PST_OK;
}

static int handle_imbalance(const pst_fit_t *t, fit_rows_t *r, pst_err_t *err)
{
    const char *how = t->cfg->train.imbalance;
    if (strcmp(how, "none") == 0)
        return PST_OK;
    if (t->data->task != PST_TASK_CLASSIFICATION)
        return pst_err_set(err, PST_EINVAL, "train.imbalance: %s needs a classification task", how);
    uint64_t seed = pst_rng_derive(t->seed, 33);
    size_t *idx = NULL, n = 0;
    int rc;
    if (strcmp(how, "class_weight") == 0) {
        if (!(r->class_weights = calloc((size_t)t->data->n_classes, sizeof(double))))
            return pst_err_set(err, PST_ENOMEM, "out of memory");
        return pst_class_weights_balanced(t->data, r->train, r->n_train, r->class_weights, err);
    }
    if (strcmp(how, "smote") == 0)
        return add_smote(t, r, err);
    rc = strcmp(how, "oversample") == 0
             ? pst_oversample_random(t->data, r->train, r->n_train, seed, &idx, &n, err)
             : pst_undersample_random(t->data, r->train, r->n_train, seed, &idx, &n, err);
    if (rc != PST_OK)
        return rc;
    free(r->train);
    r->train = idx;
    r->n_train = n;
    return PST_OK;
}

static int fit_preproc(const pst_fit_t *t, const fit_rows_t *r, pst_fit_out_t *out, pst_err_t *err)
{
    if (!t->fit_preproc)
        return PST_OK;
    const pst_config_t *cfg = t->cfg;
    pst_preproc_opts_t po = {
        .scaler = PST_SCALER_STANDARD, .impute = PST_IMPUTE_MEAN, .pixel_scale = t->images};
    if (strcmp(cfg->data.scaler, "none") == 0 ||
        (strcmp(cfg->data.scaler, "auto") == 0 && t->images))
        po.scaler = PST_SCALER_NONE;
    else if (strcmp(cfg->data.scaler, "minmax") == 0)
        po.scaler = PST_SCALER_MINMAX;
    if (strcmp(cfg->data.impute, "median") == 0)
        po.impute = PST_IMPUTE_MEDIAN;
    else if (strcmp(cfg->data.impute, "most_frequent") == 0)
        po.impute = PST_IMPUTE_MOST_FREQUENT;
    const pst_dataset_t *src = r->with_synthetic ? r->with_synthetic : t->data;
    return pst_preproc_fit_rows(src, r->train, r->n_train, &po, &out->preproc, err);
}

static int build_model(const pst_fit_t *t, pst_fit_out_t *out, pst_err_t *err)
{
    const pst_dataset_t *d = t->data;
    int rc = pst_modelspec_build(&out->spec, t->cfg, d->task, d->n_classes, err);
    if (rc != PST_OK)
        return rc;
    int width = (int)(t->cols ? t->n_cols : d->n_features);
    out->model = pst_model_new(width, out->spec.layers, out->spec.n_layers,
                               (int)t->cfg->train.batch_size, err);
    if (!out->model)
        return pst_err_prefix(err, pst_err_code(err, PST_ENOMEM), "model: ");
    pst_rng_t rng;
    pst_rng_init(&rng, pst_rng_derive(t->seed, 0));
    pst_model_init_params(out->model, &rng);
    out->n_out = pst_model_n_outputs(out->model);
    return PST_OK;
}

/* Keeps positions share, share + n_shares, ... of rows[0..*n) in place. */
static void keep_share(size_t *rows, size_t *n, int share, int n_shares)
{
    size_t kept = 0;
    for (size_t i = (size_t)share; i < *n; i += (size_t)n_shares)
        rows[kept++] = rows[i];
    *n = kept;
}

static int train_and_predict(const pst_fit_t *t, fit_rows_t *r, const pst_fit_env_t *env,
                             pst_fit_out_t *out, pst_err_t *err)
{
    pst_train_opts_t opts;
    pst_session_train_opts(t->cfg, &out->spec, &opts);
    if (opts.dp.clip >
        0) /* a member's overrides too: the fits' privacy would compose unaccounted */
        return pst_err_set(err, PST_EINVAL, "train.dp.clip: DP-SGD runs in pstrain train only");
    pst_session_augment_shape(&opts, t->cfg, out->model);
    opts.seed = pst_rng_derive(t->seed, 100);
    opts.class_weights = r->class_weights;
    if (env && env->n_shares > 1) {
        /* Every member takes as many steps as the smallest share allows. */
        size_t smallest = r->n_train / (size_t)env->n_shares, b = (size_t)opts.batch_size;
        if (smallest == 0)
            return pst_err_set(err, PST_EINVAL, "%zu training rows cannot feed %d workers",
                               r->n_train, env->n_shares);
        opts.steps_per_epoch = (long)((smallest + b - 1) / b);
        keep_share(r->train, &r->n_train, env->share_index, env->n_shares);
        keep_share(r->val, &r->n_val, env->share_index, env->n_shares);
    }
    const pst_dataset_t *src = r->with_synthetic ? r->with_synthetic : t->data;
    pst_rows_t train = {src, r->train, r->n_train, out->preproc, t->cols, t->n_cols};
    pst_rows_t val = {t->data, r->val, r->n_val, out->preproc, t->cols, t->n_cols};
    pst_train_hooks_t hooks = {.on_epoch = pst_history_on_epoch, .observer_ctx = &out->history};
    int rc = PST_OK;
    if (env)
        rc = env->begin(env->ctx, t->model_id, pst_model_params(out->model),
                        pst_model_n_params(out->model), &hooks, err);
    double t0 = pst_clock_seconds();
    if (rc == PST_OK)
        rc = pst_train_rows(out->model, &train, &val, &opts, &hooks, &out->result, err);
    if (env) {
        pst_err_t end_err;
        int end_rc = env->end(env->ctx, rc == PST_OK ? err : &end_err);
        rc = rc != PST_OK ? rc : end_rc;
    }
    out->fit_seconds = pst_clock_seconds() - t0;
    if (rc != PST_OK)
        return rc;
    t0 = pst_clock_seconds();
    pst_rows_t eval = {t->data, t->eval, t->n_eval, out->preproc, t->cols, t->n_cols};
    out->pred = malloc((t->n_eval ? t->n_eval : 1) * (size_t)out->n_out * sizeof(float));
    if (!out->pred)
        return pst_err_set(err, PST_ENOMEM, "predictions: out of memory");
    rc = pst_predict_rows(out->model, &eval, opts.batch_size, out->pred, err);
    out->score_seconds = pst_clock_seconds() - t0;
    return rc;
}

/* The features of raw columns t->cols: every feature of the encoder input of each. */
static int encoded_cols(const pst_fit_t *t, pst_fit_out_t *out, pst_err_t *err)
{
    const pst_encoder_t *e = out->encoder;
    if ((out->cols = malloc((e->n_features ? e->n_features : 1) * sizeof *out->cols)) == NULL)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    for (size_t i = 0; i < t->n_cols; i++) {
        const pst_enc_input_t *in = &e->inputs[t->cols[i]];
        for (size_t k = 0; k < in->width; k++)
            out->cols[out->n_cols++] = in->offset + k;
    }
    return PST_OK;
}

/* Typed CSV data: the task's own encoding, fitted on its training rows only; *local is t with
 * the encoded data (and columns) in place of the raw ones. */
static int encode_task(const pst_fit_t *t, pst_fit_t *local, pst_fit_out_t *out, pst_err_t *err)
{
    *local = *t;
    if (t->data->table == NULL)
        return PST_OK;
    pst_encoder_opts_t opts;
    pst_tabular_encoder_opts(t->cfg, &opts);
    int rc = pst_encoder_fit(t->data, t->train, t->n_train, &opts, &out->encoder, err);
    if (rc == PST_OK)
        rc = pst_encoder_apply(out->encoder, t->data, &out->encoded, err);
    if (rc == PST_OK && t->cols)
        rc = encoded_cols(t, out, err);
    local->data = out->encoded;
    local->cols = out->cols;
    local->n_cols = out->n_cols;
    return rc;
}

int pst_fit_run(const pst_fit_t *task, const pst_fit_env_t *env, pst_fit_out_t *out, pst_err_t *err)
{
    memset(out, 0, sizeof *out);
    fit_rows_t r = {0};
    pst_fit_t local;
    const pst_fit_t *t = &local;
    int rc = encode_task(task, &local, out, err);
    if (rc == PST_OK)
        rc = carve_validation(t, &r, err);
    if (rc == PST_OK)
        rc = handle_imbalance(t, &r, err);
    if (rc == PST_OK)
        rc = fit_preproc(t, &r, out, err);
    if (rc == PST_OK)
        rc = build_model(t, out, err);
    if (rc == PST_OK)
        rc = train_and_predict(t, &r, env, out, err);
    if (r.with_synthetic)
        out->n_synthetic = r.n_train - t->n_train + r.n_val;
    fit_rows_fini(&r);
    return rc;
}

void pst_fit_out_fini(pst_fit_out_t *out)
{
    free(out->pred);
    pst_model_destroy(&out->model);
    pst_preproc_destroy(&out->preproc);
    pst_encoder_destroy(&out->encoder);
    pst_dataset_destroy(&out->encoded);
    free(out->cols);
    cJSON_Delete(out->history);
    memset(out, 0, sizeof *out);
}

int pst_fit_model_pack(const pst_fit_t *fit, const pst_fit_out_t *out, uint8_t **buf, size_t *len,
                       pst_err_t *err)
{
    const pst_dataset_t *ds = out->encoded ? out->encoded : fit->data;
    const pst_preproc_t *pp = out->preproc;
    pst_modelfile_t mf = {
        .n_inputs = (int)ds->n_features,
        .n_layers = out->spec.n_layers,
        .layers = (pst_layer_spec_t *)out->spec.layers,
        .loss = out->spec.loss,
        .task = ds->task,
        .n_classes = ds->n_classes,
        .class_values = ds->class_values,
        .shift = pp ? pp->shift : NULL,
        .scale = pp ? pp->scale : NULL,
        .fill = pp ? pp->fill : NULL,
        .pixel_scale = pp ? pp->pixel_scale : 0,
        .params = pst_model_params(out->model),
        .n_params = pst_model_n_params(out->model),
        .state = pst_model_state(out->model),
        .n_state = pst_model_n_state(out->model),
        .config_yaml = pst_config_to_string(fit->cfg),
        .target_name = ds->target_name,
        .feature_names = ds->feature_names,
        .columns = (size_t *)(out->encoded ? out->cols : fit->cols),
        .n_columns = (int)(out->encoded ? out->n_cols : fit->n_cols),
        .encoder = out->encoder,
        .class_names = ds->class_names,
    };
    int rc = mf.config_yaml ? pst_modelfile_pack(&mf, buf, len, err)
                            : pst_err_set(err, PST_ENOMEM, "out of memory");
    free(mf.config_yaml);
    return rc;
}
