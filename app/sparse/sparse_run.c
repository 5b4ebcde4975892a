/* A sparse training run: the job, its data, the loop over this process's share of the rows,
 * per-epoch evaluation (log-loss, ROC-AUC, calibration) and the report. */
#include "app/sparse/sparse_run.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/evalcurves.h"
#include "app/shardload.h"
#include "common/clock.h"
#include "common/log.h"

void pst_sparse_run_init(pst_sparse_run_t *run, const pst_config_t *cfg, bool lead)
{
    memset(run, 0, sizeof *run);
    run->cfg = cfg;
    run->lead = lead;
    pst_early_stop_init(&run->stop, 0, 0.0);
    pst_binary_metrics_none(&run->val);
    pst_binary_metrics_none(&run->test);
    run->sparse = (pst_sparse_stats_t){NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN};
}

void pst_sparse_run_fini(pst_sparse_run_t *run)
{
    pst_rundir_close(&run->rundir);
    pst_click_data_fini(&run->data);
    pst_sparse_loop_fini(&run->loop);
    free(run->test_prob);
    run->test_prob = NULL;
    cJSON_Delete(run->comm);
    run->comm = NULL;
    cJSON_Delete(run->elastic);
    run->elastic = NULL;
    cJSON_Delete(run->epochs_json);
    run->epochs_json = NULL;
}

int pst_sparse_run_prepare(pst_sparse_run_t *run, pst_err_t *err)
{
    const pst_config_t *cfg = run->cfg;
    if (pst_shardload_is_pattern(cfg->data.train))
        return pst_err_set(err, PST_EINVAL,
                           "data.train: one file per worker (%s) is for dense models; model.type "
                           "%s reads one LIBSVM file",
                           PST_WORKER_PATTERN, cfg->model.type);
    double t0 = pst_clock_seconds();
    int rc = pst_sparse_job_from_config(cfg, &run->job, err);
    if (rc == PST_OK && cfg->data.buffer_rows > 0)
        rc = pst_click_data_open_stream(cfg, &run->job, &run->data, err);
    else if (rc == PST_OK)
        rc = pst_click_data_load(cfg, &run->job, &run->data, err);
    if (rc != PST_OK)
        return rc;
    run->load_seconds = pst_clock_seconds() - t0;
    run->shuffle_seed = run->job.shuffle_seed;
    pst_early_stop_init(&run->stop, run->job.patience, run->job.min_delta);
    if (run->job.patience > 0 && run->data.val->n_rows == 0)
        return pst_err_set(err, PST_EINVAL,
                           "train.patience %d: early stopping needs validation rows: set "
                           "data.val_fraction above 0%s",
                           run->job.patience,
                           run->data.stream != NULL ? " and data.buffer_rows: 0 (a streamed "
                                                      "data.train carves no validation rows)"
                                                    : "");
    if (run->data.stream != NULL)
        return PST_OK; /* rows, entries and features are known after the first epoch */
    const pst_dataset_t *tr = run->data.train;
    run->n_train_rows = tr->n_rows;
    run->nnz_per_row = (double)pst_click_data_nnz(tr) / (double)tr->n_rows;
    run->steps_per_epoch = (long)((tr->n_rows + run->job.batch - 1) / run->job.batch);
    return PST_OK;
}

static void log_start(const pst_sparse_run_t *run)
{
    const pst_click_data_t *d = &run->data;
    const pst_sparse_job_t *j = &run->job;
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

/* One pass over data.train (its stream, or this process's share); *loss = mean batch loss. The
 * first pass of a stream also counts its rows, entries and features. */
static int train_epoch(pst_sparse_run_t *run, int epoch, double *loss, pst_err_t *err)
{
    pst_sparse_epoch_t e;
    pst_sparse_stream_t *s = run->data.stream;
    int rc = s != NULL ? pst_sparse_loop_stream_epoch(&run->loop, s, epoch, &e, err)
                       : pst_sparse_loop_epoch(&run->loop, run->data.train, epoch, &e, err);
    if (rc != PST_OK)
        return rc;
    run->rows_trained += e.rows;
    if (s != NULL && epoch == 1) {
        pst_sparse_stream_stats_t st;
        pst_sparse_stream_stats(s, &st);
        run->n_train_rows = e.rows;
        run->nnz_per_row = e.rows > 0 ? (double)e.nnz / (double)e.rows : 0.0;
        run->data.train->n_features = st.n_features;
        if (e.rows == 0)
            return pst_err_set(err, PST_EINVAL, "%s: no rows to train on", run->cfg->data.train);
    }
    *loss = e.loss;
    return PST_OK;
}

static void log_epoch_line(pst_sparse_run_t *run, int epoch, double seconds, double rate,
                           bool improved)
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
    pst_rundir_log_line(&run->rundir, line);
    cJSON_Delete(line);
}

/* The lead's record of an epoch in report.json. */
static void add_epoch_json(pst_sparse_run_t *run, int epoch, bool improved)
{
    if (run->epochs_json == NULL && (run->epochs_json = cJSON_CreateArray()) == NULL)
        return;
    cJSON *e = cJSON_CreateObject();
    if (e == NULL)
        return;
    cJSON_AddNumberToObject(e, "epoch", epoch);
    pst_json_add_number(e, "train_loss", run->train_loss);
    pst_json_add_number(e, "val_loss", run->val.log_loss);
    pst_json_add_number(e, "val_roc_auc", run->val.roc_auc);
    cJSON_AddBoolToObject(e, "improved", improved);
    cJSON_AddItemToArray(run->epochs_json, e);
}

static void print_epoch(pst_sparse_run_t *run, int epoch, double seconds, double rate,
                        bool improved)
{
    add_epoch_json(run, epoch, improved);
    log_epoch_line(run, epoch, seconds, rate, improved);
    if (strcmp(run->cfg->train.progress, "none") == 0)
        return;
    int width = run->job.epochs >= 100 ? 3 : run->job.epochs >= 10 ? 2 : 1;
    printf("epoch %*d/%d  loss %.4f", width, epoch, run->job.epochs, run->train_loss);
    if (isfinite(run->val.log_loss))
        printf("  val_loss %.4f  val_auc %.4f  val_mean_pred %.4f (observed %.4f)",
               run->val.log_loss, run->val.roc_auc, run->val.mean_pred, run->val.observed);
    printf("  lr %.3g  %.0f samples/s  %.1fs%s\n", run->job.lr, rate, seconds,
           improved ? "  *" : "");
    fflush(stdout);
}

bool pst_sparse_run_wants_best(const pst_sparse_run_t *run)
{
    return run->job.patience > 0 && run->job.restore_best && run->data.val != NULL &&
           run->data.val->n_rows > 0;
}

/* Lead, after an epoch: validation, the early-stopping decision, the best weights kept, the
 * epoch's line. */
static int lead_epoch_end(pst_sparse_run_t *run, int epoch, double seconds, uint64_t rows,
                          bool *stop, pst_err_t *err)
{
    int rc = pst_sparse_evaluate(&run->trainer, run->data.val, &run->val, err);
    if (rc != PST_OK)
        return pst_err_prefix(err, rc, "validation: ");
    bool improved = false;
    *stop = pst_early_stop_observe(&run->stop, epoch, run->val.log_loss, &improved);
    if (improved) {
        run->best_val = run->val;
        if (run->best != NULL && (rc = pst_sparse_best_save(run->best, epoch, err)) != PST_OK)
            return pst_err_prefix(err, rc, "keeping the weights of epoch %d: ", epoch);
    }
    print_epoch(run, epoch, seconds, seconds > 0 ? (double)rows / seconds : 0.0, improved);
    return PST_OK;
}

/* Lead, after the last epoch: the best epoch's weights back in place of the last ones. */
static int restore_best(pst_sparse_run_t *run, pst_err_t *err)
{
    if (run->best == NULL || run->best->epoch == 0 || run->best->epoch == run->epochs_run)
        return PST_OK; /* the last epoch was the best: its weights are already the final ones */
    int rc = pst_sparse_best_restore(run->best, &run->trainer, err);
    if (rc != PST_OK)
        return pst_err_prefix(err, rc, "restoring the weights of epoch %d: ", run->best->epoch);
    run->restored = true;
    run->val = run->best_val;
    if (run->lead)
        pst_info("restored the weights of epoch %d (validation log-loss %.6f)", run->best->epoch,
                 run->stop.best_loss);
    return PST_OK;
}

/* Every epoch: train, then (lead) evaluate validation, print and log; every worker stops at the
 * epoch the lead's early stopping chose. */
int pst_sparse_run_train(pst_sparse_run_t *run, pst_err_t *err)
{
    pst_sparse_loop_opts_t opts = {.batch_size = run->job.batch,
                                   .shuffle = run->job.shuffle,
                                   .seed = run->shuffle_seed,
                                   .steps_per_epoch = run->steps_per_epoch,
                                   .source = run->cfg->data.train,
                                   .model_type = run->job.type,
                                   .skip_steps = run->start_clock,
                                   .ahead = (int)run->cfg->transport.prefetch_depth};
    pst_sparse_loop_fini(&run->loop);
    pst_sparse_loop_init(&run->loop, run->trainer, &opts);
    if (run->lead)
        log_start(run);
    int rc = PST_OK;
    /* a resumed run continues in the epoch of its servers' clock */
    long first_epoch = run->steps_per_epoch > 0
                           ? (long)(run->start_clock / (uint64_t)run->steps_per_epoch) + 1
                           : 1;
    for (int epoch = 1; epoch <= run->job.epochs && rc == PST_OK; epoch++) {
        uint64_t rows_before = run->rows_trained;
        double t0 = pst_clock_seconds();
        bool stop = false;
        rc = train_epoch(run, epoch, &run->train_loss, err);
        double seconds = pst_clock_seconds() - t0;
        run->seconds += seconds;
        run->epochs_run = epoch;
        if (rc == PST_OK && epoch < first_epoch)
            continue; /* the servers' checkpoint holds it: passed over, neither scored nor logged */
        if (rc == PST_OK && run->lead)
            rc = lead_epoch_end(run, epoch, seconds, run->rows_trained - rows_before, &stop, err);
        if (run->agree != NULL)
            rc = run->agree(run->agree_ctx, rc, &stop, err);
        if (rc == PST_OK && stop && epoch < run->job.epochs) {
            run->stopped_early = true;
            if (run->lead)
                pst_info("early stopping: no improvement of the validation log-loss for %d "
                         "epochs; the best was epoch %d",
                         run->job.patience, run->stop.best_epoch);
            break;
        }
    }
    return rc == PST_OK && run->lead ? restore_best(run, err) : rc;
}

/* ---- report ---- */

static void metrics_json(cJSON *obj, const pst_binary_metrics_t *m)
{
    pst_json_add_number(obj, "n", (double)m->n);
    pst_json_add_number(obj, "log_loss", m->log_loss);
    pst_json_add_number(obj, "roc_auc", m->roc_auc);
    cJSON *cal = cJSON_AddObjectToObject(obj, "calibration");
    pst_json_add_number(cal, "mean_pred", m->mean_pred);
    pst_json_add_number(cal, "observed", m->observed);
}

static cJSON *build_report(const pst_sparse_run_t *run)
{
    const pst_click_data_t *d = &run->data;
    const pst_sparse_job_t *j = &run->job;
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
    pst_json_add_number(train, "batch_size", (double)j->batch);
    pst_json_add_number(train, "patience", j->patience);
    pst_json_add_number(train, "best_epoch", run->stop.best_epoch);
    pst_json_add_number(train, "best_val_loss", run->stop.best_loss);
    cJSON_AddBoolToObject(train, "stopped_early", run->stopped_early);
    cJSON_AddBoolToObject(train, "restored_best", run->restored);
    if (run->epochs_json != NULL)
        cJSON_AddItemReferenceToObject(train, "history", run->epochs_json);
    if (d->val->n_rows > 0)
        metrics_json(cJSON_AddObjectToObject(doc, "val"), &run->val);
    if (d->test->n_rows > 0) {
        cJSON *test = cJSON_AddObjectToObject(doc, "test");
        metrics_json(test, &run->test);
        if (run->test_prob) /* curves to draw; left out (not fatal) only when memory runs out */
            pst_evalcurves_add(test, 2, d->test->n_rows, run->test_prob, 1, d->test->y, NULL);
    }
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
    pst_json_add_number(sparse, "nonzero_rows", run->sparse.nonzero_rows);
    pst_json_add_number(sparse, "model_file_bytes", run->sparse.model_file_bytes);
    if (run->comm != NULL)
        cJSON_AddItemReferenceToObject(doc, "comm", run->comm);
    if (run->elastic != NULL)
        cJSON_AddItemReferenceToObject(doc, "elastic", run->elastic);
    return doc;
}

static void print_metrics_line(const char *name, const pst_binary_metrics_t *m)
{
    if (m->n == 0)
        return;
    printf("%-10s  roc_auc %.4f  log_loss %.4f  mean_pred %.4f  observed %.4f\n", name, m->roc_auc,
           m->log_loss, m->mean_pred, m->observed);
}

int pst_sparse_run_finish(pst_sparse_run_t *run, pst_err_t *err)
{
    cJSON *doc = build_report(run);
    int rc = pst_rundir_write_json(&run->rundir, "report.json", doc, err);
    cJSON_Delete(doc);
    if (rc != PST_OK)
        return rc;
    printf("\ntrained %d epoch%s in %.1fs (%.0f samples/s), %.0f keys\n", run->epochs_run,
           run->epochs_run == 1 ? "" : "s", run->seconds,
           run->seconds > 0 ? (double)run->rows_trained / run->seconds : 0.0, run->sparse.keys);
    if (run->stopped_early || run->restored)
        printf("%s%sbest epoch %d (validation log-loss %.4f)%s\n",
               run->stopped_early ? "stopped early" : "", run->stopped_early ? "; " : "",
               run->stop.best_epoch, run->stop.best_loss,
               run->restored ? ": its weights are the final ones" : "");
    if (isfinite(run->sparse.model_file_bytes))
        printf("model.pst: %.0f nonzero rows, %.0f bytes\n", run->sparse.nonzero_rows,
               run->sparse.model_file_bytes);
    print_metrics_line("validation", &run->val);
    print_metrics_line("test", &run->test);
    printf("run directory: %s\n", run->rundir.path);
    return PST_OK;
}
