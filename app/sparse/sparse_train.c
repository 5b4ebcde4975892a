/* Sparse training runs: click data kept in CSR, a local or parameter-server trainer behind one
 * step/predict interface, per-epoch evaluation (log-loss, ROC-AUC, calibration) and the report. */
#include "app/sparse/sparse_train.h"

#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/console.h"
#include "app/mpi/remote.h"
#include "app/rundir.h"
#include "app/session.h"
#include "app/shardload.h"
#include "app/sparse/sparse_tsv.h"
#include "app/sparse/sparse_wd.h"
#include "common/clock.h"
#include "common/data/dataload.h"
#include "common/log.h"
#include "common/optim/optim.h"
#include "common/rng.h"
#include "common/sample/split.h"
#include "worker/psclient.h"
#include "worker/model/sparse_model.h"
#include "common/data/sparsestream.h"

/* Rows scored per predict call when evaluating. */
enum { EVAL_ROWS = 512 };

bool pst_sparse_train_selected(const pst_config_t *cfg)
{
    return cfg->model.type != NULL && strcmp(cfg->model.type, "dense") != 0;
}

/* realloc of *p to n elements of elem bytes; *p is kept on failure. */
static int grow(void **p, size_t n, size_t elem)
{
    void *q = realloc(*p, (n > 0 ? n : 1) * elem);
    if (q == NULL)
        return PST_ENOMEM;
    *p = q;
    return PST_OK;
}

/* ---- the job the configuration describes ---- */

/* FTRL's beta, l1, l2 and AdaGrad's eps and L2 are per example: they apply to gradients summed
 * over a batch, so results do not depend on the batch size through them. The servers see summed
 * gradients (workers scale their batch means); the local model steps on batch means, so its
 * constants are divided by the batch size (common/ftrl.h: scaling g and them alike is neutral). */
typedef struct job {
    const char *type;
    pst_sparse_spec_t spec;
    bool ftrl;             /* else adagrad */
    pst_optim_cfg_t optim; /* the servers' optimizer, per example */
    float lr;              /* FTRL alpha or AdaGrad lr */
    float init_scale;
    uint64_t init_seed, shuffle_seed;
    int epochs;
    size_t batch;
    bool shuffle;
    bool wide_deep;       /* rows are [w | embedding] (spec: FM of embedding_dim factors) */
    pst_wd_job_t wd;      /* wide_deep */
    bool tsv;             /* the data files read as hashed Criteo-style TSV */
    pst_hash_spec_t hash; /* tsv */
} job_t;

static int job_from_config(const pst_config_t *cfg, job_t *j, pst_err_t *err)
{
    memset(j, 0, sizeof *j);
    j->type = cfg->model.type;
    bool fm = strcmp(cfg->model.type, "fm") == 0;
    j->wide_deep = strcmp(cfg->model.type, "wide_deep") == 0;
    j->spec.kind = fm || j->wide_deep ? PST_SPARSE_FM : PST_SPARSE_LR;
    j->spec.n_factors = fm             ? (uint32_t)cfg->model.factors
                        : j->wide_deep ? (uint32_t)cfg->model.embedding_dim
                                       : 0;
    const char *opt = cfg->optimizer.name;
    if (strcmp(opt, "ftrl") != 0 && strcmp(opt, "adagrad") != 0)
        return pst_err_set(err, PST_EINVAL,
                           "model.type %s trains with optimizer.name ftrl or adagrad, not %s",
                           j->type, opt);
    if (!(cfg->optimizer.lr > 0))
        return pst_err_set(err, PST_EINVAL, "optimizer.lr must be above 0 for model.type %s",
                           j->type);
    j->ftrl = strcmp(opt, "ftrl") == 0;
    pst_session_optim_cfg(cfg, &j->optim);
    /* The servers' own check of the optimizer settings, made here so a local run meets it too. */
    pst_optim_t *probe = pst_optim_new(&j->optim, 1, err);
    if (probe == NULL)
        return err != NULL && err->code != 0 ? err->code : PST_EINVAL;
    pst_optim_destroy(&probe);
    j->lr = (float)cfg->optimizer.lr;
    j->init_scale = fm || j->wide_deep ? (float)cfg->model.init_scale : 0.0f;
    j->init_seed = pst_rng_derive((uint64_t)cfg->seed, 0);
    j->shuffle_seed = pst_rng_derive((uint64_t)cfg->seed, 100);
    j->epochs = (int)cfg->train.epochs;
    j->batch = (size_t)cfg->train.batch_size;
    j->shuffle = cfg->train.shuffle;
    if (!j->wide_deep && (cfg->model.hidden.n > 0 || cfg->model.layers.n > 0))
        pst_warn("model.type %s: model.hidden and model.layers are not used", j->type);
    if (strcmp(cfg->schedule.name, "constant") != 0 || cfg->train.patience > 0)
        pst_warn("model.type %s: the learning rate stays constant and every epoch runs "
                 "(schedule.* and train.patience are not used)",
                 j->type);
    j->tsv = pst_click_is_tsv(cfg, cfg->data.train);
    int rc = j->tsv ? pst_click_hash_spec(cfg, j->wide_deep, &j->hash, err) : PST_OK;
    if (rc == PST_OK && j->wide_deep)
        rc = pst_wd_job_from_config(cfg, j->tsv ? &j->hash : NULL, j->batch, &j->wd, err);
    return rc == PST_OK ? pst_sparse_spec_check(&j->spec, err) : rc;
}

/* Options of the in-process model: the job's constants per batch mean. */
static void local_opts(const job_t *j, pst_sparse_train_opts_t *o)
{
    pst_sparse_train_opts_defaults(o, j->spec.kind);
    float per_row = 1.0f / (float)j->batch;
    o->spec = j->spec;
    o->optimizer = j->ftrl ? PST_SPARSE_OPT_FTRL : PST_SPARSE_OPT_ADAGRAD;
    o->ftrl = (pst_ftrl_cfg_t){.alpha = j->lr,
                               .beta = j->optim.ftrl_beta * per_row,
                               .l1 = j->optim.ftrl_l1 * per_row,
                               .l2 = j->optim.ftrl_l2 * per_row};
    o->adagrad = (pst_ftrl_adagrad_cfg_t){
        .lr = j->lr, .eps = j->optim.eps * per_row, .l2 = j->optim.weight_decay * per_row};
    o->init_scale = j->init_scale;
    o->init_seed = j->init_seed;
    o->epochs = 1;
    o->batch_size = j->batch;
    o->shuffle = false;
    o->seed = j->shuffle_seed;
}

/* The deep part's optimizer in this process: the servers' rule with its per-example constants
 * per batch mean, as local_opts sets the rows'. */
static void local_dense_opts(const job_t *j, pst_optim_cfg_t *o)
{
    float per_row = 1.0f / (float)j->batch;
    *o = j->optim;
    o->ftrl_beta *= per_row;
    o->ftrl_l1 *= per_row;
    o->ftrl_l2 *= per_row;
    o->eps *= per_row;
    o->weight_decay *= per_row;
}

/* ---- click data: LIBSVM files in CSR, labels 0/1 ---- */

typedef struct click_data {
    pst_dataset_t *train, *val, *test; /* CSR; val and test may have no rows */
    bool from_cache;                   /* data.train was read from its binary cache */
    pst_sparse_stream_t *stream;       /* data.buffer_rows > 0: data.train, read every epoch */
} click_data_t;

static void click_data_fini(click_data_t *d)
{
    pst_sparse_stream_destroy(&d->stream);
    pst_dataset_destroy(&d->train);
    pst_dataset_destroy(&d->val);
    pst_dataset_destroy(&d->test);
}

/* Labels 0/1 (or -1/+1) become y in {0, 1}; anything else is an error naming the labels. */
static int to_clicks(pst_dataset_t *d, const char *path, const char *type, pst_err_t *err)
{
    bool zero_one = true, plus_minus = true;
    for (int c = 0; c < d->n_classes; c++) {
        double v = d->class_values[c];
        zero_one = zero_one && (v == 0.0 || v == 1.0);
        plus_minus = plus_minus && (v == -1.0 || v == 1.0);
    }
    if (d->task != PST_TASK_CLASSIFICATION || d->class_values == NULL ||
        !(zero_one || plus_minus)) {
        char seen[160] = "";
        for (int c = 0; c < d->n_classes && c < 6 && d->class_values; c++)
            snprintf(seen + strlen(seen), sizeof seen - strlen(seen), "%s%g", c ? ", " : "",
                     d->class_values[c]);
        return pst_err_set(err, PST_EFORMAT,
                           "%s: model.type %s needs click labels 0/1 (or -1/+1), but the file "
                           "has %d distinct labels: %s%s",
                           path, type, d->n_classes, seen, d->n_classes > 6 ? ", ..." : "");
    }
    for (size_t i = 0; i < d->n_rows; i++)
        d->y[i] = d->class_values[(size_t)d->y[i]] > 0.0 ? 1.0f : 0.0f;
    double *binary = realloc(d->class_values, 2 * sizeof *binary);
    if (binary == NULL)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    binary[0] = 0.0;
    binary[1] = 1.0;
    d->class_values = binary;
    d->n_classes = 2;
    return PST_OK;
}

/* The reader of path: hashed TSV (job->hash) or LIBSVM. */
static pst_sparse_source_t click_source(const job_t *job, const char *path)
{
    return (pst_sparse_source_t){.path = path,
                                 .format = job->tsv ? PST_SPARSE_TSV_HASHED : PST_SPARSE_LIBSVM,
                                 .hash = job->hash};
}

/* *from_cache (may be NULL): whether the read used a valid FILE.pstcache. */
static int load_click_file(const pst_config_t *cfg, const job_t *job, const char *path,
                           pst_dataset_t **out, bool *from_cache, pst_err_t *err)
{
    pst_data_spec_t spec = {.path = path,
                            .format = strcmp(cfg->data.format, "auto") ? cfg->data.format : NULL,
                            .task = PST_DATA_TASK_CLASSIFICATION};
    const char *format = "libsvm";
    int rc = job->tsv ? PST_OK : pst_data_infer_format(&spec, &format, err);
    if (rc == PST_OK && strcmp(format, "libsvm") != 0)
        return pst_err_set(err, PST_EFORMAT,
                           "%s: model.type %s reads LIBSVM data (\"label index:value ...\"), but "
                           "this file reads as %s",
                           path, cfg->model.type, format);
    /* the streaming reader's loader: integers parse without strtod */
    pst_sparse_source_t src = click_source(job, path);
    pst_err_t scratch = {0};
    if (from_cache != NULL)
        *from_cache = cfg->data.cache && pst_sparse_cache_check(&src, &scratch) == PST_OK;
    if (rc == PST_OK)
        rc = pst_sparse_load(&src, cfg->data.cache, &spec, out, err);
    if (rc == PST_OK && (rc = to_clicks(*out, path, cfg->model.type, err)) != PST_OK)
        pst_dataset_destroy(out);
    return rc;
}

static int take(const pst_dataset_t *all, const size_t *idx, size_t n, pst_dataset_t **out,
                pst_err_t *err)
{
    *out = pst_dataset_take_rows(all, idx, n);
    return *out ? PST_OK : pst_err_set(err, PST_ENOMEM, "out of memory splitting the data");
}

/* data.train split as a dense run splits it: 70/20/10 (the data.*_fraction keys), or with
 * data.test a validation share carved from data.train. */
static int load_click_data(const pst_config_t *cfg, const job_t *job, click_data_t *d,
                           pst_err_t *err)
{
    memset(d, 0, sizeof *d);
    pst_dataset_t *all = NULL;
    pst_split_t s = {0};
    bool has_test = cfg->data.test[0] != '\0';
    int rc = load_click_file(cfg, job, cfg->data.train, &all, &d->from_cache, err);
    if (rc == PST_OK && has_test)
        rc = load_click_file(cfg, job, cfg->data.test, &d->test, NULL, err);
    if (rc == PST_OK)
        rc = has_test ? pst_split_two(all, cfg->data.val_fraction, cfg->data.stratify,
                                      (uint64_t)cfg->seed, &s, err)
                      : pst_split_three(all, cfg->data.train_fraction, cfg->data.val_fraction,
                                        cfg->data.test_fraction, cfg->data.stratify,
                                        (uint64_t)cfg->seed, &s, err);
    if (rc == PST_OK && (rc = take(all, s.train, s.n_train, &d->train, err)) == PST_OK &&
        (rc = take(all, s.val, s.n_val, &d->val, err)) == PST_OK && !has_test)
        rc = take(all, s.test, s.n_test, &d->test, err);
    pst_split_fini(&s);
    pst_dataset_destroy(&all);
    if (rc == PST_OK && d->train->n_rows == 0)
        rc = pst_err_set(err, PST_EINVAL, "%s: no rows left for training after the split",
                         cfg->data.train);
    if (rc != PST_OK)
        click_data_fini(d);
    return rc;
}

/* Streamed data.train (data.buffer_rows > 0): the rows stay in the file and pass through the
 * shuffle buffer every epoch. No validation share is carved (that would hold rows in memory);
 * train and val are empty sets, test is data.test. */
static int open_click_stream(const pst_config_t *cfg, const job_t *job, click_data_t *d,
                             pst_err_t *err)
{
    memset(d, 0, sizeof *d);
    if (cfg->data.test[0] == '\0')
        return pst_err_set(err, PST_EINVAL,
                           "data.buffer_rows %ld streams data.train, which needs data.test: the "
                           "70/20/10 split of one file needs all its rows in memory",
                           cfg->data.buffer_rows);
    if (cfg->data.format[0] != '\0' && strcmp(cfg->data.format, "auto") != 0 &&
        strcmp(cfg->data.format, "libsvm") != 0 && !job->tsv)
        return pst_err_set(err, PST_EINVAL,
                           "data.buffer_rows streams LIBSVM or criteo files, not %s",
                           cfg->data.format);
    if (cfg->data.val_fraction > 0)
        pst_warn("data.buffer_rows: data.val_fraction is not used (no validation rows are carved "
                 "from a streamed data.train)");
    int rc = load_click_file(cfg, job, cfg->data.test, &d->test, NULL, err);
    pst_sparse_source_t src = click_source(job, cfg->data.train);
    pst_sparse_stream_opts_t opts = {.batch_rows = job->batch,
                                     .buffer_rows = (size_t)cfg->data.buffer_rows,
                                     .seed = job->shuffle_seed,
                                     .use_cache = cfg->data.cache};
    if (rc == PST_OK)
        rc = pst_sparse_stream_open(&src, &opts, &d->stream, err);
    if (rc == PST_OK && ((d->train = pst_dataset_take_rows(d->test, NULL, 0)) == NULL ||
                         (d->val = pst_dataset_take_rows(d->test, NULL, 0)) == NULL))
        rc = pst_err_set(err, PST_ENOMEM, "out of memory");
    if (rc == PST_OK) {
        pst_sparse_stream_stats_t st;
        pst_sparse_stream_stats(d->stream, &st);
        d->from_cache = st.from_cache;
    }
    if (rc != PST_OK)
        click_data_fini(d);
    return rc;
}

static size_t dataset_nnz(const pst_dataset_t *d)
{
    return d->n_rows > 0 && d->row_ptr ? d->row_ptr[d->n_rows] - d->row_ptr[0] : 0;
}

/* Rows [start, start + n) of a CSR set as a batch, without copying. */
static pst_sparse_batch_t window(const pst_dataset_t *d, size_t start, size_t n)
{
    return (pst_sparse_batch_t){.n_rows = n,
                                .row_ptr = d->row_ptr + start,
                                .col32 = d->col_idx,
                                .val = d->val,
                                .y = d->y + start};
}

/* ---- mini-batches of arbitrary rows ---- */

typedef struct batcher {
    size_t rows_cap, nnz_cap;
    size_t *row_ptr; // (rows_cap + 1)
    uint32_t *col;   // (nnz_cap)
    float *val;      // (nnz_cap)
    float *y;        // (rows_cap)
} batcher_t;

static void batcher_fini(batcher_t *g)
{
    free(g->row_ptr);
    free(g->col);
    free(g->val);
    free(g->y);
    memset(g, 0, sizeof *g);
}

static int batcher_reserve(batcher_t *g, size_t n_rows, size_t nnz)
{
    int rc = PST_OK;
    if (n_rows > g->rows_cap) {
        rc = grow((void **)&g->row_ptr, n_rows + 1, sizeof(size_t));
        if (rc == PST_OK)
            rc = grow((void **)&g->y, n_rows, sizeof(float));
        if (rc == PST_OK)
            g->rows_cap = n_rows;
    }
    if (rc == PST_OK && nnz > g->nnz_cap) {
        rc = grow((void **)&g->col, nnz, sizeof(uint32_t));
        if (rc == PST_OK)
            rc = grow((void **)&g->val, nnz, sizeof(float));
        if (rc == PST_OK)
            g->nnz_cap = nnz;
    }
    return rc;
}

/* Rows ahead of the one being copied whose offsets (ROW_AHEAD) and entries (DATA_AHEAD) are
 * prefetched: shuffled rows are scattered over the whole CSR arrays. */
enum { ROW_AHEAD = 16, DATA_AHEAD = 4 };

/* Rows idx[0..n) of d copied into one batch. */
static int batcher_gather(batcher_t *g, const pst_dataset_t *d, const size_t *idx, size_t n,
                          pst_sparse_batch_t *out, pst_err_t *err)
{
    size_t nnz = 0;
    for (size_t i = 0; i < n; i++) {
        if (i + ROW_AHEAD < n)
            __builtin_prefetch(&d->row_ptr[idx[i + ROW_AHEAD]]);
        nnz += d->row_ptr[idx[i] + 1] - d->row_ptr[idx[i]];
    }
    if (batcher_reserve(g, n, nnz) != PST_OK)
        return pst_err_set(err, PST_ENOMEM, "out of memory for a batch of %zu entries", nnz);
    size_t at = 0;
    g->row_ptr[0] = 0;
    for (size_t i = 0; i < n; i++) {
        if (i + DATA_AHEAD < n) {
            size_t ahead = d->row_ptr[idx[i + DATA_AHEAD]];
            __builtin_prefetch(d->col_idx + ahead);
            __builtin_prefetch(d->val + ahead);
            __builtin_prefetch(&d->y[idx[i + DATA_AHEAD]]);
        }
        size_t begin = d->row_ptr[idx[i]], count = d->row_ptr[idx[i] + 1] - begin;
        memcpy(g->col + at, d->col_idx + begin, count * sizeof *g->col);
        memcpy(g->val + at, d->val + begin, count * sizeof *g->val);
        at += count;
        g->row_ptr[i + 1] = at;
        g->y[i] = d->y[idx[i]];
    }
    *out = (pst_sparse_batch_t){
        .n_rows = n, .row_ptr = g->row_ptr, .col32 = g->col, .val = g->val, .y = g->y};
    return PST_OK;
}

/* ---- metrics ---- */

typedef struct click_metrics {
    size_t n;
    double log_loss, roc_auc;
    double mean_pred, observed; /* calibration: mean probability against the click rate */
} click_metrics_t;

static void click_metrics_none(click_metrics_t *m)
{
    *m = (click_metrics_t){0, NAN, NAN, NAN, NAN};
}

/* Log-loss clipped to [1e-15, 1 - 1e-15] as scikit-learn does. */
static void click_metrics_compute(click_metrics_t *m, const float *prob, const float *y, size_t n)
{
    double loss = 0.0, pred = 0.0, clicks = 0.0;
    for (size_t i = 0; i < n; i++) {
        double p = fmin(fmax(prob[i], 1e-15), 1.0 - 1e-15);
        loss -= y[i] * log(p) + (1.0 - y[i]) * log(1.0 - p);
        pred += prob[i];
        clicks += y[i];
    }
    m->n = n;
    m->log_loss = loss / (double)n;
    m->roc_auc = pst_roc_auc(prob, y, n);
    m->mean_pred = pred / (double)n;
    m->observed = clicks / (double)n;
}

static void click_metrics_json(cJSON *obj, const click_metrics_t *m)
{
    pst_json_add_number(obj, "n", (double)m->n);
    pst_json_add_number(obj, "log_loss", m->log_loss);
    pst_json_add_number(obj, "roc_auc", m->roc_auc);
    cJSON *cal = cJSON_AddObjectToObject(obj, "calibration");
    pst_json_add_number(cal, "mean_pred", m->mean_pred);
    pst_json_add_number(cal, "observed", m->observed);
}

/* ---- trainers: one interface over the local model and the parameter servers ---- */

typedef struct trainer {
    void *ctx;
    /* One optimizer step on a labelled batch; *loss = its mean log-loss before the step. */
    int (*step)(void *ctx, const pst_sparse_batch_t *b, double *loss, pst_err_t *err);
    /* prob (n_rows) of a batch under the current weights; keys never trained count as zero. */
    int (*predict)(void *ctx, const pst_sparse_batch_t *b, float *prob, pst_err_t *err);
} trainer_t;

static int local_step(void *ctx, const pst_sparse_batch_t *b, double *loss, pst_err_t *err)
{
    return pst_sparse_model_update(ctx, b, loss, err);
}

static int local_predict(void *ctx, const pst_sparse_batch_t *b, float *prob, pst_err_t *err)
{
    return pst_sparse_model_predict(ctx, b, prob, err);
}

static int evaluate(const trainer_t *t, const pst_dataset_t *d, click_metrics_t *m, pst_err_t *err)
{
    click_metrics_none(m);
    if (d->n_rows == 0)
        return PST_OK;
    float *prob = malloc(d->n_rows * sizeof *prob);
    if (prob == NULL)
        return pst_err_set(err, PST_ENOMEM, "out of memory scoring %zu rows", d->n_rows);
    int rc = PST_OK;
    for (size_t start = 0; start < d->n_rows && rc == PST_OK; start += EVAL_ROWS) {
        size_t len = d->n_rows - start < EVAL_ROWS ? d->n_rows - start : EVAL_ROWS;
        pst_sparse_batch_t b = window(d, start, len);
        rc = t->predict(t->ctx, &b, prob + start, err);
    }
    if (rc == PST_OK)
        click_metrics_compute(m, prob, d->y, d->n_rows);
    free(prob);
    return rc;
}

/* ---- the run: epochs over this process's share of the training rows ---- */

typedef struct sparse_stats {
    double keys;              /* distinct keys trained */
    double keys_per_step;     /* mean unique keys a step pulls and pushes (distributed) */
    double bytes_per_example; /* training traffic on the wire per training row (distributed) */
    double raw_bytes_per_example;
    double model_bytes;     /* local: the model's rows, state and index */
    double server_rows;     /* distributed: sparse rows the servers hold, summed */
    double server_bytes;    /* distributed: bytes the servers' stores allocated, summed */
    double server_peak_rss; /* distributed: the largest server process's peak RSS, bytes */
} sparse_stats_t;

typedef struct run {
    const pst_config_t *cfg;
    job_t job;
    click_data_t data;
    bool lead; /* prints, evaluates, writes the run directory */
    pst_rundir_t rundir;
    trainer_t trainer;
    size_t n_train_rows; /* of the whole training split (a worker keeps its share in data.train) */
    double nnz_per_row;  /* of the whole training split */
    double load_seconds; /* reading and splitting the files */
    size_t *order;       // (data.train rows) this epoch's order; NULL: as stored (already shuffled)
    long steps_per_epoch;
    batcher_t batcher;
    pst_rng_t rng;
    /* results */
    int epochs_run;
    double seconds, train_loss, best_val_loss;
    uint64_t rows_trained;
    click_metrics_t val, test;
    sparse_stats_t sparse;
    cJSON *comm; /* distributed: the comm section, owned */
} run_t;

static void run_init(run_t *run, const pst_config_t *cfg, bool lead)
{
    memset(run, 0, sizeof *run);
    run->cfg = cfg;
    run->lead = lead;
    run->best_val_loss = INFINITY;
    click_metrics_none(&run->val);
    click_metrics_none(&run->test);
    run->sparse = (sparse_stats_t){NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN};
}

static void run_fini(run_t *run)
{
    pst_rundir_close(&run->rundir);
    click_data_fini(&run->data);
    batcher_fini(&run->batcher);
    free(run->order);
    run->order = NULL;
    cJSON_Delete(run->comm);
    run->comm = NULL;
}

/* Reads the job and the data. */
static int run_prepare(run_t *run, pst_err_t *err)
{
    const pst_config_t *cfg = run->cfg;
    if (pst_shardload_is_pattern(cfg->data.train))
        return pst_err_set(err, PST_EINVAL,
                           "data.train: one file per worker (%s) is for dense models; model.type "
                           "%s reads one LIBSVM file",
                           PST_WORKER_PATTERN, cfg->model.type);
    double t0 = pst_clock_seconds();
    int rc = job_from_config(cfg, &run->job, err);
    if (rc == PST_OK && cfg->data.buffer_rows > 0)
        rc = open_click_stream(cfg, &run->job, &run->data, err);
    else if (rc == PST_OK)
        rc = load_click_data(cfg, &run->job, &run->data, err);
    if (rc != PST_OK)
        return rc;
    run->load_seconds = pst_clock_seconds() - t0;
    pst_rng_init(&run->rng, run->job.shuffle_seed);
    if (run->data.stream != NULL)
        return PST_OK; /* rows, entries and features are known after the first epoch */
    const pst_dataset_t *tr = run->data.train;
    run->n_train_rows = tr->n_rows;
    run->nnz_per_row = (double)dataset_nnz(tr) / (double)tr->n_rows;
    run->steps_per_epoch = (long)((tr->n_rows + run->job.batch - 1) / run->job.batch);
    return PST_OK;
}

static void log_start(const run_t *run)
{
    const click_data_t *d = &run->data;
    const job_t *j = &run->job;
    const pst_optim_cfg_t *o = &j->optim;
    if (d->stream != NULL)
        pst_info("data: %s streamed through a %ld-row shuffle buffer%s, %zu test rows",
                 run->cfg->data.train, run->cfg->data.buffer_rows,
                 d->from_cache ? " from its cache" : "", d->test->n_rows);
    else
        pst_info(
            "data: %zu train, %zu validation, %zu test rows, features up to %zu, %.1f per row, "
            "read in %.1fs",
            run->n_train_rows, d->val->n_rows, d->test->n_rows, d->train->n_features,
            run->nnz_per_row, run->load_seconds);
    if (d->from_cache)
        pst_info("data: %s read from its cache", run->cfg->data.train);
    if (j->ftrl)
        pst_info("model: %s, rows of %u floats; ftrl alpha %g beta %g l1 %g l2 %g (per example), "
                 "batch %zu, %d epochs",
                 j->type, pst_sparse_row_width(&j->spec), j->lr, o->ftrl_beta, o->ftrl_l1,
                 o->ftrl_l2, j->batch, j->epochs);
    else
        pst_info("model: %s, rows of %u floats; adagrad lr %g, batch %zu, %d epochs", j->type,
                 pst_sparse_row_width(&j->spec), j->lr, j->batch, j->epochs);
}

/* The row order of epoch (1-based): the training split comes in a seeded random order, so the
 * first epoch reads it as stored (windows, no copies); later epochs reshuffle. */
static int epoch_order(run_t *run, int epoch, pst_err_t *err)
{
    if (!run->job.shuffle || epoch == 1)
        return PST_OK;
    size_t n = run->data.train->n_rows;
    if (run->order == NULL) {
        if ((run->order = malloc((n > 0 ? n : 1) * sizeof *run->order)) == NULL)
            return pst_err_set(err, PST_ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++)
            run->order[i] = i;
    }
    pst_rng_shuffle(&run->rng, run->order, n);
    return PST_OK;
}

/* A streamed batch as a model batch, labels mapped to {0, 1} in the batcher's y. */
static int stream_batch(run_t *run, const pst_sparse_stream_batch_t *sb, pst_sparse_batch_t *b,
                        pst_err_t *err)
{
    batcher_t *g = &run->batcher;
    if (batcher_reserve(g, sb->n_rows, 0) != PST_OK)
        return pst_err_set(err, PST_ENOMEM, "out of memory for a batch of %zu rows", sb->n_rows);
    for (size_t i = 0; i < sb->n_rows; i++) {
        float y = sb->y[i];
        if (y != 0.0f && y != 1.0f && y != -1.0f)
            return pst_err_set(err, PST_EFORMAT,
                               "%s: data row %llu: model.type %s needs click labels 0/1 (or "
                               "-1/+1), not %g",
                               run->cfg->data.train, (unsigned long long)sb->row_id[i] + 1,
                               run->job.type, (double)y);
        g->y[i] = y > 0.0f ? 1.0f : 0.0f;
    }
    *b = (pst_sparse_batch_t){.n_rows = sb->n_rows,
                              .row_ptr = sb->row_ptr,
                              .col32 = sb->col_idx,
                              .val = sb->val,
                              .y = g->y};
    return PST_OK;
}

/* One pass of the streamed data.train (rewound after the first epoch); the first pass also
 * counts the rows, entries and features. */
static int train_stream_epoch(run_t *run, int epoch, double *loss, pst_err_t *err)
{
    pst_sparse_stream_t *s = run->data.stream;
    int rc = epoch > 1 ? pst_sparse_stream_rewind(s, err) : PST_OK;
    double sum = 0.0;
    size_t steps = 0, rows = 0, nnz = 0;
    for (;;) {
        const pst_sparse_stream_batch_t *sb = NULL;
        pst_sparse_batch_t b;
        double batch_loss = 0.0;
        if (rc == PST_OK)
            rc = pst_sparse_stream_next(s, &sb, err);
        if (rc != PST_OK || sb->n_rows == 0)
            break;
        rc = stream_batch(run, sb, &b, err);
        if (rc == PST_OK)
            rc = run->trainer.step(run->trainer.ctx, &b, &batch_loss, err);
        sum += batch_loss;
        steps++;
        rows += sb->n_rows;
        nnz += sb->nnz;
    }
    if (rc != PST_OK)
        return rc;
    run->rows_trained += rows;
    if (epoch == 1) {
        pst_sparse_stream_stats_t st;
        pst_sparse_stream_stats(s, &st);
        run->n_train_rows = rows;
        run->nnz_per_row = rows > 0 ? (double)nnz / (double)rows : 0.0;
        run->data.train->n_features = st.n_features;
        if (rows == 0)
            return pst_err_set(err, PST_EINVAL, "%s: no rows to train on", run->cfg->data.train);
    }
    *loss = steps > 0 ? sum / (double)steps : NAN;
    return PST_OK;
}

/* One pass: steps_per_epoch batches of data.train; *loss = mean batch loss. */
static int train_epoch(run_t *run, int epoch, double *loss, pst_err_t *err)
{
    if (run->data.stream != NULL)
        return train_stream_epoch(run, epoch, loss, err);
    int rc = epoch_order(run, epoch, err);
    if (rc != PST_OK)
        return rc;
    const pst_dataset_t *tr = run->data.train;
    size_t bs = run->job.batch, n = tr->n_rows;
    double sum = 0.0;
    long steps = 0;
    for (size_t start = 0; steps < run->steps_per_epoch && start < n; start += bs, steps++) {
        size_t len = n - start < bs ? n - start : bs;
        pst_sparse_batch_t b = window(tr, start, len);
        double batch_loss = 0.0;
        if (run->order != NULL)
            rc = batcher_gather(&run->batcher, tr, run->order + start, len, &b, err);
        if (rc == PST_OK)
            rc = run->trainer.step(run->trainer.ctx, &b, &batch_loss, err);
        if (rc != PST_OK)
            return rc;
        sum += batch_loss;
        run->rows_trained += len;
    }
    *loss = steps > 0 ? sum / (double)steps : NAN;
    return PST_OK;
}

static void log_epoch_line(run_t *run, int epoch, double seconds, double rate, bool improved)
{
    if (run->rundir.metrics == NULL)
        return;
    cJSON *line = cJSON_CreateObject();
    cJSON_AddNumberToObject(line, "epoch", epoch);
    pst_json_add_number(line, "train_loss", run->train_loss);
    pst_json_add_number(line, "val_loss", run->val.log_loss);
    pst_json_add_number(line, "val_roc_auc", run->val.roc_auc);
    pst_json_add_number(line, "val_mean_pred", run->val.mean_pred);
    pst_json_add_number(line, "val_observed", run->val.observed);
    pst_json_add_number(line, "lr", run->job.lr);
    pst_json_add_number(line, "seconds", seconds);
    pst_json_add_number(line, "samples_per_s", rate);
    cJSON_AddBoolToObject(line, "improved", improved);
    char *text = cJSON_PrintUnformatted(line);
    if (text != NULL) {
        fprintf(run->rundir.metrics, "%s\n", text);
        fflush(run->rundir.metrics);
    }
    free(text);
    cJSON_Delete(line);
}

static void print_epoch(run_t *run, int epoch, double seconds, double rate)
{
    bool improved = isfinite(run->val.log_loss) && run->val.log_loss < run->best_val_loss;
    if (improved)
        run->best_val_loss = run->val.log_loss;
    int width = run->job.epochs >= 100 ? 3 : run->job.epochs >= 10 ? 2 : 1;
    printf("epoch %*d/%d  loss %.4f", width, epoch, run->job.epochs, run->train_loss);
    if (isfinite(run->val.log_loss))
        printf("  val_loss %.4f  val_auc %.4f  val_mean_pred %.4f (observed %.4f)",
               run->val.log_loss, run->val.roc_auc, run->val.mean_pred, run->val.observed);
    printf("  lr %.3g  %.0f samples/s  %.1fs%s\n", run->job.lr, rate, seconds,
           improved ? "  *" : "");
    fflush(stdout);
    log_epoch_line(run, epoch, seconds, rate, improved);
}

/* Every epoch: train, then (lead) evaluate validation, print and log. */
static int run_train(run_t *run, pst_err_t *err)
{
    if (run->lead)
        log_start(run);
    for (int epoch = 1; epoch <= run->job.epochs; epoch++) {
        uint64_t rows_before = run->rows_trained;
        double t0 = pst_clock_seconds();
        int rc = train_epoch(run, epoch, &run->train_loss, err);
        double seconds = pst_clock_seconds() - t0;
        if (rc != PST_OK)
            return rc;
        run->seconds += seconds;
        run->epochs_run = epoch;
        if (!run->lead)
            continue;
        if ((rc = evaluate(&run->trainer, run->data.val, &run->val, err)) != PST_OK)
            return pst_err_prefix(err, rc, "validation: ");
        double rate = seconds > 0 ? (double)(run->rows_trained - rows_before) / seconds : 0.0;
        print_epoch(run, epoch, seconds, rate);
    }
    return PST_OK;
}

/* ---- report ---- */

static cJSON *build_report(const run_t *run)
{
    const click_data_t *d = &run->data;
    const job_t *j = &run->job;
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "name", run->cfg->name);
    cJSON_AddStringToObject(doc, "task", "classification");
    cJSON *data = cJSON_AddObjectToObject(doc, "data");
    cJSON_AddStringToObject(data, "format", j->tsv ? "criteo" : "libsvm");
    pst_json_add_number(data, "train_rows", (double)run->n_train_rows);
    pst_json_add_number(data, "val_rows", (double)d->val->n_rows);
    pst_json_add_number(data, "test_rows", (double)d->test->n_rows);
    pst_json_add_number(data, "features", (double)d->train->n_features);
    pst_json_add_number(data, "nnz_per_row", run->nnz_per_row);
    pst_json_add_number(data, "load_seconds", run->load_seconds);
    cJSON_AddBoolToObject(data, "from_cache", d->from_cache);
    pst_json_add_number(data, "buffer_rows", (double)run->cfg->data.buffer_rows);
    if (d->stream != NULL) {
        pst_sparse_stream_stats_t st;
        pst_sparse_stream_stats(d->stream, &st);
        pst_json_add_number(data, "max_rows_held", (double)st.max_rows_held);
        pst_json_add_number(data, "caches_written", st.caches_written);
    }
    cJSON *model = cJSON_AddObjectToObject(doc, "model");
    cJSON_AddStringToObject(model, "type", j->type);
    double dense_params = 1.0; /* the bias */
    if (j->wide_deep) {
        dense_params = (double)pst_wd_job_dense_params(&j->wd, NULL);
        pst_json_add_number(model, "embedding_dim", j->wd.spec.dim);
        pst_json_add_number(model, "fields", j->wd.spec.n_fields);
        pst_json_add_number(model, "deep_parameters", dense_params);
    } else if (j->spec.kind == PST_SPARSE_FM) {
        pst_json_add_number(model, "factors", j->spec.n_factors);
    }
    pst_json_add_number(model, "row_width", pst_sparse_row_width(&j->spec));
    pst_json_add_number(model, "parameters",
                        run->sparse.keys * pst_sparse_row_width(&j->spec) + dense_params);
    cJSON_AddStringToObject(model, "optimizer", j->ftrl ? "ftrl" : "adagrad");
    cJSON *train = cJSON_AddObjectToObject(doc, "train");
    pst_json_add_number(train, "epochs", run->epochs_run);
    pst_json_add_number(train, "seconds", run->seconds);
    pst_json_add_number(train, "samples_per_s",
                        run->seconds > 0 ? (double)run->rows_trained / run->seconds : 0.0);
    pst_json_add_number(train, "rows", (double)run->rows_trained);
    pst_json_add_number(train, "final_loss", run->train_loss);
    if (d->val->n_rows > 0)
        click_metrics_json(cJSON_AddObjectToObject(doc, "val"), &run->val);
    if (d->test->n_rows > 0)
        click_metrics_json(cJSON_AddObjectToObject(doc, "test"), &run->test);
    cJSON *sparse = cJSON_AddObjectToObject(doc, "sparse");
    pst_json_add_number(sparse, "keys", run->sparse.keys);
    pst_json_add_number(sparse, "keys_per_step", run->sparse.keys_per_step);
    pst_json_add_number(sparse, "bytes_per_example", run->sparse.bytes_per_example);
    pst_json_add_number(sparse, "raw_bytes_per_example", run->sparse.raw_bytes_per_example);
    pst_json_add_number(sparse, "model_bytes", run->sparse.model_bytes);
    pst_json_add_number(sparse, "server_rows", run->sparse.server_rows);
    pst_json_add_number(sparse, "server_bytes", run->sparse.server_bytes);
    pst_json_add_number(
        sparse, "server_bytes_per_row",
        run->sparse.server_rows > 0 ? run->sparse.server_bytes / run->sparse.server_rows : NAN);
    pst_json_add_number(sparse, "server_peak_rss_bytes", run->sparse.server_peak_rss);
    if (run->comm != NULL)
        cJSON_AddItemReferenceToObject(doc, "comm", run->comm);
    return doc;
}

static void print_metrics_line(const char *name, const click_metrics_t *m)
{
    if (m->n == 0)
        return;
    printf("%-10s  roc_auc %.4f  log_loss %.4f  mean_pred %.4f  observed %.4f\n", name, m->roc_auc,
           m->log_loss, m->mean_pred, m->observed);
}

static int finish_report(run_t *run, pst_err_t *err)
{
    cJSON *doc = build_report(run);
    int rc = pst_rundir_write_json(&run->rundir, "report.json", doc, err);
    cJSON_Delete(doc);
    if (rc != PST_OK)
        return rc;
    printf("\ntrained %d epochs in %.1fs (%.0f samples/s), %.0f keys\n", run->epochs_run,
           run->seconds, run->seconds > 0 ? (double)run->rows_trained / run->seconds : 0.0,
           run->sparse.keys);
    print_metrics_line("validation", &run->val);
    print_metrics_line("test", &run->test);
    printf("run directory: %s\n", run->rundir.path);
    return PST_OK;
}

/* ---- local runs ---- */

static int train_local(run_t *run, const char *out, pst_err_t *err)
{
    int rc = run_prepare(run, err);
    if (rc != PST_OK)
        return rc;
    pst_sparse_train_opts_t opts;
    local_opts(&run->job, &opts);
    pst_sparse_model_t *model = NULL;
    pst_wd_local_t *wd = NULL;
    if (run->job.wide_deep) {
        pst_optim_cfg_t dense;
        local_dense_opts(&run->job, &dense);
        wd = pst_wd_job_local(&run->job.wd, &opts, &dense, run->job.lr, run->job.init_seed,
                              pst_rng_derive((uint64_t)run->cfg->seed, 200), err);
        run->trainer = (trainer_t){wd, pst_wd_local_step_cb, pst_wd_local_predict_cb};
    } else {
        model = pst_sparse_model_new(&opts, err);
        run->trainer = (trainer_t){model, local_step, local_predict};
    }
    if (run->trainer.ctx == NULL)
        return err->code ? err->code : PST_ENOMEM;
    rc = pst_rundir_open(&run->rundir, run->cfg, out, err);
    if (rc == PST_OK)
        rc = run_train(run, err);
    if (rc == PST_OK && (rc = evaluate(&run->trainer, run->data.test, &run->test, err)) != PST_OK)
        pst_err_prefix(err, rc, "test: ");
    const pst_sparse_model_t *rows = wd ? pst_wd_local_rows(wd) : model;
    run->sparse.keys = (double)pst_sparse_model_n_keys(rows);
    run->sparse.model_bytes = (double)pst_sparse_model_bytes(rows);
    if (rc == PST_OK)
        rc = finish_report(run, err);
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
    run_t run;
    pst_err_t err = {0};
    run_init(&run, cfg, true);
    int rc = train_local(&run, out, &err);
    if (rc != PST_OK)
        pst_app_error("%s", err.msg[0] ? err.msg : pst_strerror(rc));
    run_fini(&run);
    return rc == PST_OK ? 0 : 1;
}

/* ---- distributed runs: the parameter-server trainer ---- */

/* What one step holds while its push is in flight; steps alternate between two. */
typedef struct step_buf {
    size_t cap;         /* entries the arrays hold */
    uint64_t *keys;     // (cap) the batch's unique keys, ascending
    uint32_t *slot;     // (cap) key index of every entry
    float *rows, *grad; // (cap, row_width)
    float bias, bias_grad;
    bool pending;
    pst_ticket_t push_rows, push_bias;
} step_buf_t;

typedef struct remote_trainer {
    pst_remote_t link;
    const job_t *job;
    uint32_t width;
    int rows_tensor, bias_tensor;
    float n_workers;
    uint64_t clock; /* steps pushed */
    step_buf_t buf[2], eval;
    uint64_t *pull_keys; // (pull_cap) evaluation: the trained keys of a chunk
    uint32_t *pull_at;   // (pull_cap) their index among the chunk's keys
    size_t pull_cap;
    uint64_t keys_pushed;
    uint64_t eval_wire, eval_raw; /* evaluation traffic, kept out of the per-example figure */
    uint8_t *trained;             /* lead: trained[k] != 0 when key k occurs in training rows */
    size_t n_trained;
} remote_trainer_t;

static void step_buf_fini(step_buf_t *b)
{
    free(b->keys);
    free(b->slot);
    free(b->rows);
    free(b->grad);
    memset(b, 0, sizeof *b);
}

static int step_buf_reserve(step_buf_t *b, size_t nnz, uint32_t width, pst_err_t *err)
{
    if (nnz <= b->cap)
        return PST_OK;
    int rc = grow((void **)&b->keys, nnz, sizeof(uint64_t));
    if (rc == PST_OK)
        rc = grow((void **)&b->slot, nnz, sizeof(uint32_t));
    if (rc == PST_OK)
        rc = grow((void **)&b->rows, nnz, width * sizeof(float));
    if (rc == PST_OK)
        rc = grow((void **)&b->grad, nnz, width * sizeof(float));
    if (rc != PST_OK)
        return pst_err_set(err, PST_ENOMEM, "out of memory for a batch of %zu entries", nnz);
    b->cap = nnz;
    return PST_OK;
}

/* Waits for a step's pushes to be acknowledged. */
static int step_buf_flush(remote_trainer_t *r, step_buf_t *b, pst_err_t *err)
{
    if (!b->pending)
        return PST_OK;
    b->pending = false;
    pst_err_t scratch;
    int rc = pst_psclient_wait(r->link.client, b->push_rows, err);
    int bias_rc = pst_psclient_wait(r->link.client, b->push_bias, rc == PST_OK ? err : &scratch);
    return rc != PST_OK ? rc : bias_rc;
}

static int remote_flush(remote_trainer_t *r, pst_err_t *err)
{
    pst_err_t scratch;
    int rc = step_buf_flush(r, &r->buf[0], err);
    int rc2 = step_buf_flush(r, &r->buf[1], rc == PST_OK ? err : &scratch);
    return rc != PST_OK ? rc : rc2;
}

/* Pulls keys[0..n) into rows and the bias for the current clock, while `prev` (may be NULL)
 * has its pushes acknowledged. */
static int pull_weights(remote_trainer_t *r, const uint64_t *keys, size_t n, float *rows,
                        float *bias, step_buf_t *prev, pst_err_t *err)
{
    pst_psclient_t *c = r->link.client;
    pst_ticket_t rows_t, bias_t;
    int rc = pst_psclient_pull_sparse(c, r->rows_tensor, keys, n, rows, r->clock, &rows_t, err);
    if (rc == PST_OK)
        rc = pst_psclient_pull(c, r->bias_tensor, bias, r->clock, &bias_t, err);
    if (rc != PST_OK)
        return rc;
    pst_err_t scratch;
    rc = prev != NULL ? step_buf_flush(r, prev, err) : PST_OK;
    int rows_rc = pst_psclient_wait(c, rows_t, rc == PST_OK ? err : &scratch);
    rc = rc != PST_OK ? rc : rows_rc;
    int bias_rc = pst_psclient_wait(c, bias_t, rc == PST_OK ? err : &scratch);
    return rc != PST_OK ? rc : bias_rc;
}

/* Batch-mean gradients become sums over the batch (the servers' constants are per example);
 * the servers average the workers' pushes (BSP) or scale each by 1/W (SSP, ASP), so the
 * workers' count is multiplied in as well. */
static void scale_gradient(remote_trainer_t *r, step_buf_t *cur, size_t n_keys, size_t n_rows)
{
    float scale = (float)n_rows * r->n_workers;
    size_t n = n_keys * r->width;
    for (size_t i = 0; i < n; i++)
        cur->grad[i] *= scale;
    cur->bias_grad *= scale;
}

static int remote_step(void *ctx, const pst_sparse_batch_t *b, double *loss, pst_err_t *err)
{
    remote_trainer_t *r = ctx;
    step_buf_t *cur = &r->buf[r->clock & 1], *prev = &r->buf[(r->clock + 1) & 1];
    size_t n_keys = 0;
    int rc = step_buf_reserve(cur, pst_sparse_batch_nnz(b), r->width, err);
    if (rc == PST_OK)
        rc = pst_sparse_batch_keys(b, cur->keys, &n_keys, cur->slot, err);
    if (rc == PST_OK)
        rc = pull_weights(r, cur->keys, n_keys, cur->rows, &cur->bias, prev, err);
    pst_sparse_weights_t w = {.rows = cur->rows, .n_keys = n_keys, .bias = cur->bias};
    pst_sparse_grad_t g = {.rows = cur->grad};
    if (rc == PST_OK)
        rc = pst_sparse_step(&r->job->spec, b, cur->slot, &w, &g, err);
    if (rc != PST_OK)
        return rc;
    cur->bias_grad = g.bias;
    scale_gradient(r, cur, n_keys, b->n_rows);
    pst_psclient_t *c = r->link.client;
    rc = pst_psclient_push_sparse(c, r->rows_tensor, cur->keys, n_keys, cur->grad, r->clock,
                                  r->job->lr, &cur->push_rows, err);
    if (rc == PST_OK)
        rc = pst_psclient_push(c, r->bias_tensor, &cur->bias_grad, r->clock, r->job->lr,
                               &cur->push_bias, err);
    if (rc != PST_OK)
        return rc;
    cur->pending = true;
    r->clock++;
    r->keys_pushed += n_keys;
    *loss = g.loss;
    return PST_OK;
}

/* The chunk's keys that occur in training rows go into pull_keys; *n their count. */
static int select_trained(remote_trainer_t *r, size_t n_keys, size_t *n, pst_err_t *err)
{
    if (n_keys > r->pull_cap) {
        if (grow((void **)&r->pull_keys, n_keys, sizeof(uint64_t)) != PST_OK ||
            grow((void **)&r->pull_at, n_keys, sizeof(uint32_t)) != PST_OK)
            return pst_err_set(err, PST_ENOMEM, "out of memory for %zu keys", n_keys);
        r->pull_cap = n_keys;
    }
    size_t m = 0;
    for (size_t i = 0; i < n_keys; i++) {
        uint64_t key = r->eval.keys[i];
        if (key < r->n_trained && r->trained[key]) {
            r->pull_keys[m] = key;
            r->pull_at[m++] = (uint32_t)i;
        }
    }
    *n = m;
    return PST_OK;
}

/* Scores a chunk on the global weights of the current clock. Only keys that occur in training
 * rows are pulled (a pull creates rows on the servers); the others count as zero rows, as in
 * a local model. */
static int remote_predict(void *ctx, const pst_sparse_batch_t *b, float *prob, pst_err_t *err)
{
    remote_trainer_t *r = ctx;
    step_buf_t *e = &r->eval;
    int rc = remote_flush(r, err);
    pst_psclient_stats_t before, after;
    pst_psclient_stats(r->link.client, &before);
    size_t n_keys = 0, n_pull = 0, w = r->width;
    if (rc == PST_OK)
        rc = step_buf_reserve(e, pst_sparse_batch_nnz(b), w, err);
    if (rc == PST_OK)
        rc = pst_sparse_batch_keys(b, e->keys, &n_keys, e->slot, err);
    if (rc == PST_OK)
        rc = select_trained(r, n_keys, &n_pull, err);
    /* e->grad holds the pulled rows, compacted */
    if (rc == PST_OK)
        rc = pull_weights(r, r->pull_keys, n_pull, e->grad, &e->bias, NULL, err);
    if (rc != PST_OK)
        return rc;
    memset(e->rows, 0, n_keys * w * sizeof(float));
    for (size_t j = 0; j < n_pull; j++)
        memcpy(e->rows + (size_t)r->pull_at[j] * w, e->grad + j * w, w * sizeof(float));
    pst_psclient_stats(r->link.client, &after);
    r->eval_wire += after.bytes_wire - before.bytes_wire;
    r->eval_raw += after.bytes_raw - before.bytes_raw;
    pst_sparse_weights_t weights = {.rows = e->rows, .n_keys = n_keys, .bias = e->bias};
    return pst_sparse_predict(&r->job->spec, b, e->slot, &weights, prob, err);
}

static void remote_fini(remote_trainer_t *r)
{
    pst_remote_close(&r->link);
    step_buf_fini(&r->buf[0]);
    step_buf_fini(&r->buf[1]);
    step_buf_fini(&r->eval);
    free(r->pull_keys);
    free(r->pull_at);
    free(r->trained);
    r->trained = NULL;
}

/* Registers the rows tensor (0) and the bias tensor (1) of model 0 on every server. */
static int register_tensors(remote_trainer_t *r, pst_err_t *err)
{
    pst_psclient_t *c = r->link.client;
    const job_t *j = r->job;
    r->rows_tensor =
        pst_psclient_register_sparse(c, 0, 0, r->width, j->init_scale, j->init_seed, err);
    if (r->rows_tensor < 0)
        return r->rows_tensor;
    r->bias_tensor = pst_psclient_register_dense(c, 0, 1, 1, err);
    if (r->bias_tensor < 0)
        return r->bias_tensor;
    const float zero = 0.0f;
    uint64_t rows_clock = 0, bias_clock = 0;
    int rc = pst_psclient_init_on_servers(c, r->rows_tensor, NULL, &rows_clock, err);
    if (rc == PST_OK)
        rc = pst_psclient_init_on_servers(c, r->bias_tensor, &zero, &bias_clock, err);
    if (rc == PST_OK && (rows_clock != 0 || bias_clock != 0))
        rc = pst_err_set(err, PST_ESTATE, "the servers already hold clock %llu of this model",
                         (unsigned long long)rows_clock);
    return rc;
}

/* Connects and registers; every worker of the run must have registered before anyone pushes. */
static int remote_begin(remote_trainer_t *r, pst_ranks_t *ranks, const pst_config_t *cfg,
                        pst_err_t *err)
{
    int rc = pst_remote_connect(&r->link, ranks, cfg, ranks->role, err);
    if (rc == PST_OK)
        rc = register_tensors(r, err);
    int failed = rc != PST_OK, any = 0;
    MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, ranks->role);
    if (rc == PST_OK && any)
        rc = pst_err_set(err, PST_ESTATE, "another worker failed to register the model");
    return rc;
}

/* The lead's map of the keys that occur in training rows, and their count. */
static int mark_trained(run_t *run, remote_trainer_t *r, pst_err_t *err)
{
    const pst_dataset_t *tr = run->data.train;
    uint8_t *trained = calloc(tr->n_features > 0 ? tr->n_features : 1, 1);
    if (trained == NULL)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    size_t nnz = dataset_nnz(tr), keys = 0;
    for (size_t k = 0; k < nnz; k++) {
        uint32_t key = tr->col_idx[tr->row_ptr[0] + k];
        keys += trained[key] == 0;
        trained[key] = 1;
    }
    r->trained = trained;
    r->n_trained = tr->n_features;
    run->sparse.keys = (double)keys;
    return PST_OK;
}

/* Keeps this worker's rank-strided share of the training rows (row i goes to worker i mod W);
 * every worker takes as many steps per epoch as the smallest share needs, so BSP clocks meet. */
static int take_share(run_t *run, int worker, int n_workers, pst_err_t *err)
{
    size_t n_train = run->data.train->n_rows, *share = NULL, n_share = 0;
    if (n_train < (size_t)n_workers)
        return pst_err_set(err, PST_EINVAL, "%zu training rows cannot feed %d workers", n_train,
                           n_workers);
    int rc = pst_partition_rows(n_train, worker, n_workers, &share, &n_share, err);
    pst_dataset_t *mine = NULL;
    if (rc == PST_OK)
        rc = take(run->data.train, share, n_share, &mine, err);
    free(share);
    if (rc != PST_OK)
        return rc;
    pst_dataset_destroy(&run->data.train);
    run->data.train = mine;
    size_t smallest = n_train / (size_t)n_workers;
    run->steps_per_epoch = (long)((smallest + run->job.batch - 1) / run->job.batch);
    pst_rng_init(&run->rng, pst_rng_derive(run->job.shuffle_seed, (uint64_t)worker));
    return PST_OK;
}

static int worker_prepare(run_t *run, remote_trainer_t *r, pst_ranks_t *ranks, const char *run_dir,
                          bool resume, pst_err_t *err)
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
    int rc = run_prepare(run, err);
    if (rc == PST_OK && run->lead)
        rc = mark_trained(run, r, err);
    if (rc == PST_OK)
        rc = take_share(run, ranks->worker, ranks->n_workers, err);
    if (rc == PST_OK && run->lead)
        rc = pst_rundir_open(&run->rundir, run->cfg, run_dir, err);
    r->job = &run->job;
    r->width = pst_sparse_row_width(&run->job.spec);
    r->n_workers = (float)ranks->n_workers;
    run->trainer = (trainer_t){r, remote_step, remote_predict};
    return rc;
}

/* Lead, after every worker finished training: the rows and memory the servers hold. A server that
 * does not answer leaves the figures unknown (NaN) rather than low. */
static void server_memory(run_t *run, remote_trainer_t *r, int n_servers)
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
static void report_comm(run_t *run, remote_trainer_t *r, pst_ranks_t *ranks, double train_wire,
                        double train_raw)
{
    pst_psclient_stats_t st = {0};
    if (r->link.client != NULL)
        pst_psclient_stats(r->link.client, &st);
    /* The link's counters, then rows, training wire and raw bytes, keys pushed. */
    enum { ROWS = PST_COMM_N, TRAIN_WIRE, TRAIN_RAW, KEYS, N_SUMS };
    double v[N_SUMS], sum[N_SUMS], steps = (double)r->clock, all_steps = 0;
    pst_comm_counters(&st, v);
    v[ROWS] = (double)run->rows_trained;
    v[TRAIN_WIRE] = train_wire;
    v[TRAIN_RAW] = train_raw;
    v[KEYS] = (double)r->keys_pushed;
    MPI_Reduce(v, sum, N_SUMS, MPI_DOUBLE, MPI_SUM, 0, ranks->role);
    MPI_Reduce(&steps, &all_steps, 1, MPI_DOUBLE, MPI_SUM, 0, ranks->role);
    if (!run->lead)
        return;
    run->rows_trained = (uint64_t)sum[ROWS];
    run->sparse.bytes_per_example = sum[ROWS] > 0 ? sum[TRAIN_WIRE] / sum[ROWS] : NAN;
    run->sparse.raw_bytes_per_example = sum[ROWS] > 0 ? sum[TRAIN_RAW] / sum[ROWS] : NAN;
    run->sparse.keys_per_step = all_steps > 0 ? sum[KEYS] / all_steps : NAN;
    cJSON *comm = run->comm = cJSON_CreateObject();
    pst_comm_json(comm, ranks, run->cfg, sum);
    pst_json_add_number(comm, "train_bytes_wire", sum[TRAIN_WIRE]);
    if (r->link.client != NULL)
        server_memory(run, r, ranks->n_servers);
}

/* Trains, then (lead) scores the test rows on the final global weights. *train_wire and
 * *train_raw receive this worker's training traffic. */
static int worker_train(run_t *run, remote_trainer_t *r, pst_ranks_t *ranks,
                        const pst_config_t *cfg, double *train_wire, double *train_raw,
                        pst_err_t *err)
{
    int rc = remote_begin(r, ranks, cfg, err);
    if (rc == PST_OK)
        rc = run_train(run, err);
    int flush_rc = r->link.client != NULL ? remote_flush(r, rc == PST_OK ? err : NULL) : PST_OK;
    rc = rc != PST_OK ? rc : flush_rc;
    pst_psclient_stats_t st = {0};
    if (r->link.client != NULL)
        pst_psclient_stats(r->link.client, &st);
    *train_wire = (double)(st.bytes_wire - r->eval_wire);
    *train_raw = (double)(st.bytes_raw - r->eval_raw);
    if (rc == PST_OK && run->lead &&
        (rc = evaluate(&run->trainer, run->data.test, &run->test, err)) != PST_OK)
        pst_err_prefix(err, rc, "test: ");
    return rc;
}

int pst_sparse_train_worker(pst_ranks_t *ranks, const pst_config_t *cfg, const char *run_dir,
                            bool resume)
{
    run_t run;
    remote_trainer_t r;
    memset(&r, 0, sizeof r);
    pst_err_t err = {0};
    pst_hello_t hello = {0};
    int index = ranks->worker;
    run_init(&run, cfg, index == 0);
    int rc = worker_prepare(&run, &r, ranks, run_dir, resume, &err);
    hello.ok = rc == PST_OK;
    /* Every worker reads the same files and meets the same error: worker 0 reports it. */
    if (rc != PST_OK && index == 0)
        pst_app_error("%s", err.msg[0] ? err.msg : pst_strerror(rc));
    if (!pst_ranks_exchange(ranks, &hello)) {
        run_fini(&run);
        remote_fini(&r);
        return 1;
    }
    double train_wire = 0, train_raw = 0;
    rc = worker_train(&run, &r, ranks, cfg, &train_wire, &train_raw, &err);
    if (rc != PST_OK)
        pst_app_error("worker %d: %s", index, err.msg[0] ? err.msg : pst_strerror(rc));
    report_comm(&run, &r, ranks, train_wire, train_raw);
    remote_fini(&r);
    /* Every worker must agree the run succeeded before the lead writes its report. */
    int failed = rc != PST_OK, any_failed = 0;
    MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, ranks->role);
    if (!any_failed && run.lead && (rc = finish_report(&run, &err)) != PST_OK)
        pst_app_error("%s", err.msg);
    run_fini(&run);
    return rc == PST_OK && !any_failed ? 0 : 1;
}
