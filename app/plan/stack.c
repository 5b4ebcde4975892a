/* Stacking, blending and voting: the bases' configurations and fits, the meta model or vote on
 * top, and the ensemble's report and model file. */
#include "app/plan/stack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/console.h"
#include "app/mpi/cluster.h"
#include "app/plan/ensemble.h"
#include "app/rundir.h"
#include "common/sample/folds.h"
#include "common/sample/split.h"

static const char *const method_names[] = {"stacking", "blending", "soft_vote", "hard_vote"};

int pst_stack_method_parse(const char *name, pst_stack_method_t *out)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, method_names[i]) == 0) {
            *out = (pst_stack_method_t)i;
            return PST_OK;
        }
    return PST_EINVAL;
}

/* ---- configurations ------------------------------------------------------------------------ */

/* Applies "k=v;k=v" to cfg; errors name the assignment. */
static int apply_overrides(pst_config_t *cfg, const char *overrides, pst_err_t *err)
{
    char *copy = strdup(overrides), *save = NULL;
    if (!copy)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    int rc = PST_OK;
    for (char *tok = strtok_r(copy, ";", &save); tok && rc == PST_OK;
         tok = strtok_r(NULL, ";", &save)) {
        while (*tok == ' ')
            tok++;
        size_t len = strlen(tok);
        while (len > 0 && tok[len - 1] == ' ')
            tok[--len] = '\0';
        if (len > 0)
            rc = pst_config_set(cfg, tok, err);
    }
    free(copy);
    return rc;
}

/* CONFIG with the --set keys, then the defaults of the role, then its own overrides. */
static int model_config(pst_config_t *cfg, const pst_stack_opts_t *a, const char *defaults,
                        const char *overrides, pst_err_t *err)
{
    int rc = pst_plan_config(cfg, &a->plan, err);
    if (rc == PST_OK && defaults)
        rc = apply_overrides(cfg, defaults, err);
    if (rc == PST_OK && overrides)
        rc = apply_overrides(cfg, overrides, err);
    if (rc == PST_OK)
        rc = pst_config_validate(cfg, err);
    return rc;
}

typedef struct stack_configs {
    pst_config_t base[PST_STACK_MAX_BASES];
    pst_config_t meta;
    int n_loaded; /* base configs initialised, then the meta one */
} stack_configs_t;

static void configs_fini(stack_configs_t *c, int n_bases)
{
    for (int b = 0; b < c->n_loaded && b < n_bases; b++)
        pst_config_fini(&c->base[b]);
    if (c->n_loaded > n_bases)
        pst_config_fini(&c->meta);
}

/* Loads every model's configuration before anything runs: a bad override is a usage error. */
static int load_configs(stack_configs_t *c, const pst_stack_opts_t *a)
{
    pst_err_t err = {0};
    for (int b = 0; b <= a->n_bases; b++) {
        bool meta = b == a->n_bases;
        pst_config_t *cfg = meta ? &c->meta : &c->base[b];
        int rc = model_config(cfg, a, meta ? "model.hidden=[];model.layers=[]" : NULL,
                              meta ? a->meta : a->base[b], &err);
        c->n_loaded++;
        if (rc == PST_OK)
            continue;
        if (meta)
            pst_app_error("stack: --meta: %s", err.msg);
        else
            pst_app_error("stack: --base %d: %s", b + 1, err.msg);
        return rc == PST_EINVAL || rc == PST_ENOTFOUND || rc == PST_EFORMAT ? 2 : 1;
    }
    return 0;
}

/* ---- the plan ------------------------------------------------------------------------------ */

typedef struct stack_plan {
    const pst_stack_opts_t *opts;
    const stack_configs_t *cfgs;
    pst_ens_rows_t rows;
    pst_folds_t folds;   /* stacking: folds over positions of rows.pool */
    size_t **fold_train; // (k) stacking: each fold's training rows of the data
    size_t **fold_test;  // (k) each fold's held-out rows of the data
    size_t *fit_rows;    // (n_fit) blending: rows the bases train on
    size_t n_fit;
    size_t *eval_rows; // (n_eval_rows) blending: held-out rows then test rows
    size_t n_holdout;
    int n_bases, k, n_tasks;
} stack_plan_t;

/* Stacking tasks: base b's fold f is b * k + f; base b's refit on all rows is n_bases * k + b. */
static void stack_describe(void *ctx, int task, const pst_dataset_t *ds, pst_fit_t *fit)
{
    (void)ds;
    stack_plan_t *p = ctx;
    const pst_ens_rows_t *r = &p->rows;
    int oof_tasks = p->opts->method == PST_STACK_STACKING ? p->n_bases * p->k : 0;
    int base = task < oof_tasks ? task / p->k : task - oof_tasks;
    fit->cfg = &p->cfgs->base[base];
    if (task < oof_tasks) {
        const pst_fold_t *f = &p->folds.fold[task % p->k];
        fit->train = p->fold_train[task % p->k];
        fit->n_train = f->n_train;
        fit->eval = p->fold_test[task % p->k];
        fit->n_eval = f->n_test;
    } else if (p->opts->method == PST_STACK_BLENDING) {
        fit->train = p->fit_rows;
        fit->n_train = p->n_fit;
        fit->eval = p->eval_rows;
        fit->n_eval = p->n_holdout + r->n_test;
    } else {
        fit->train = r->pool;
        fit->n_train = r->n_pool;
        fit->eval = r->test;
        fit->n_eval = r->n_test;
    }
}

static void stack_label(void *ctx, int task, char *buf, size_t cap)
{
    stack_plan_t *p = ctx;
    int oof_tasks = p->opts->method == PST_STACK_STACKING ? p->n_bases * p->k : 0;
    if (task < oof_tasks)
        snprintf(buf, cap, "base %d fold %d", task / p->k + 1, task % p->k + 1);
    else
        snprintf(buf, cap, "base %d", task - oof_tasks + 1);
}

/* The pool's rows as a dataset of their own, for folds and splits over pool positions. */
static pst_dataset_t *pool_view(const pst_planrun_t *run, const stack_plan_t *p, pst_err_t *err)
{
    pst_dataset_t *view = pst_dataset_take_rows(run->data, p->rows.pool, p->rows.n_pool);
    if (!view)
        pst_err_set(err, PST_ENOMEM, "out of memory");
    return view;
}

static size_t *map_rows(const size_t *pool, const size_t *pos, size_t n)
{
    size_t *rows = malloc((n ? n : 1) * sizeof *rows);
    for (size_t i = 0; rows && i < n; i++)
        rows[i] = pool[pos[i]];
    return rows;
}

static int plan_stacking(stack_plan_t *p, const pst_dataset_t *view, uint64_t seed, pst_err_t *err)
{
    int rc = pst_kfold(view, p->k, view->task == PST_TASK_CLASSIFICATION, 1,
                       pst_rng_derive(seed, 4000), NULL, &p->folds, err);
    if (rc != PST_OK)
        return rc;
    p->fold_train = calloc((size_t)p->k, sizeof(size_t *));
    p->fold_test = calloc((size_t)p->k, sizeof(size_t *));
    if (!p->fold_train || !p->fold_test)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    for (int f = 0; f < p->k; f++) {
        const pst_fold_t *fold = &p->folds.fold[f];
        p->fold_train[f] = map_rows(p->rows.pool, fold->train, fold->n_train);
        p->fold_test[f] = map_rows(p->rows.pool, fold->test, fold->n_test);
        if (!p->fold_train[f] || !p->fold_test[f])
            return pst_err_set(err, PST_ENOMEM, "out of memory");
    }
    p->n_tasks = p->n_bases * (p->k + 1);
    return PST_OK;
}

static int plan_blending(stack_plan_t *p, const pst_dataset_t *view, const pst_config_t *cfg,
                         pst_err_t *err)
{
    pst_split_t s;
    bool stratify = cfg->data.stratify && view->task == PST_TASK_CLASSIFICATION;
    int rc = pst_split_two(view, p->opts->holdout, stratify,
                           pst_rng_derive((uint64_t)cfg->seed, 4001), &s, err);
    if (rc != PST_OK)
        return rc;
    if (s.n_train == 0 || s.n_val == 0) {
        pst_split_fini(&s);
        return pst_err_set(err, PST_EINVAL, "--holdout %g leaves %zu rows to fit and %zu held out",
                           p->opts->holdout, s.n_train, s.n_val);
    }
    p->fit_rows = map_rows(p->rows.pool, s.train, s.n_train);
    p->n_fit = s.n_train;
    p->eval_rows = malloc((s.n_val + p->rows.n_test) * sizeof(size_t));
    if (p->eval_rows) {
        for (size_t i = 0; i < s.n_val; i++)
            p->eval_rows[i] = p->rows.pool[s.val[i]];
        memcpy(p->eval_rows + s.n_val, p->rows.test, p->rows.n_test * sizeof(size_t));
    }
    p->n_holdout = s.n_val;
    pst_split_fini(&s);
    if (!p->fit_rows || !p->eval_rows)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    p->n_tasks = p->n_bases;
    return PST_OK;
}

static int build_plan(stack_plan_t *p, const pst_planrun_t *run, pst_err_t *err)
{
    p->n_bases = p->opts->n_bases;
    p->k = p->opts->folds;
    if (p->opts->method == PST_STACK_SOFT_VOTE || p->opts->method == PST_STACK_HARD_VOTE) {
        p->n_tasks = p->n_bases;
        return PST_OK;
    }
    pst_dataset_t *view = pool_view(run, p, err);
    if (!view)
        return PST_ENOMEM;
    int rc = p->opts->method == PST_STACK_STACKING
                 ? plan_stacking(p, view, (uint64_t)run->cfg.seed, err)
                 : plan_blending(p, view, &run->cfg, err);
    pst_dataset_destroy(&view);
    return rc;
}

static void stack_plan_fini(stack_plan_t *p)
{
    for (int f = 0; f < p->k && p->fold_train; f++)
        free(p->fold_train[f]);
    for (int f = 0; f < p->k && p->fold_test; f++)
        free(p->fold_test[f]);
    free(p->fold_train);
    free(p->fold_test);
    free(p->fit_rows);
    free(p->eval_rows);
    pst_folds_fini(&p->folds);
    pst_ens_rows_fini(&p->rows);
}

/* ---- results ------------------------------------------------------------------------------ */

typedef struct stack_results {
    float *base_test[PST_STACK_MAX_BASES];  // (n_test, width) each base's test probabilities
    float *base_train[PST_STACK_MAX_BASES]; // (n_meta_train, width) what the meta model learns from
    const size_t *meta_rows;                // (n_meta_train) data rows of those training rows
    size_t n_meta_train;
    pst_dataset_t *meta_data; /* meta training rows, then the test rows */
    pst_fit_out_t meta;
    bool has_meta;
    float *ensemble; // (n_test, width)
} stack_results_t;

static void stack_results_fini(stack_results_t *r)
{
    for (int b = 0; b < PST_STACK_MAX_BASES; b++) {
        free(r->base_test[b]);
        free(r->base_train[b]);
    }
    pst_dataset_destroy(&r->meta_data);
    if (r->has_meta)
        pst_fit_out_fini(&r->meta);
    free(r->ensemble);
}

/* Base b's out-of-fold probabilities in pool order, from its k fold tasks. */
static int gather_oof(const pst_planrun_t *run, const pst_ens_exec_t *ex, const stack_plan_t *p,
                      int b, int width, float **out, pst_err_t *err)
{
    size_t w = (size_t)width;
    if (!(*out = malloc(p->rows.n_pool * w * sizeof(float))))
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    for (int f = 0; f < p->k; f++) {
        const pst_fold_t *fold = &p->folds.fold[f];
        float *probs;
        int rc = pst_ens_task_probs(run, b * p->k + f, 0, fold->n_test, width, &probs, err);
        if (rc != PST_OK)
            return rc;
        for (size_t i = 0; i < fold->n_test; i++)
            memcpy(*out + fold->test[i] * w, probs + i * w, w * sizeof(float));
        free(probs);
    }
    return PST_OK;
}

/* Each base's test probabilities, and for a meta model what it trains on. */
static int gather_bases(const pst_planrun_t *run, const pst_ens_exec_t *ex, const stack_plan_t *p,
                        stack_results_t *r, pst_err_t *err)
{
    int width = pst_ens_width(run), method = p->opts->method;
    int oof_tasks = method == PST_STACK_STACKING ? p->n_bases * p->k : 0;
    size_t test_first = method == PST_STACK_BLENDING ? p->n_holdout : 0;
    r->meta_rows = method == PST_STACK_STACKING ? p->rows.pool : p->eval_rows;
    r->n_meta_train = method == PST_STACK_STACKING ? p->rows.n_pool : p->n_holdout;
    int rc = PST_OK;
    for (int b = 0; b < p->n_bases && rc == PST_OK; b++) {
        rc = pst_ens_task_probs(run, oof_tasks + b, test_first, p->rows.n_test, width,
                                &r->base_test[b], err);
        if (rc == PST_OK && method == PST_STACK_STACKING)
            rc = gather_oof(run, ex, p, b, width, &r->base_train[b], err);
        if (rc == PST_OK && method == PST_STACK_BLENDING)
            rc = pst_ens_task_probs(run, b, 0, p->n_holdout, width, &r->base_train[b], err);
    }
    return rc;
}

/* The meta model's data: the bases' probabilities for its training rows, then the test rows. */
static int build_meta_data(const pst_planrun_t *run, const stack_plan_t *p, stack_results_t *r,
                           pst_err_t *err)
{
    const pst_dataset_t *ds = run->data;
    int width = pst_ens_width(run);
    size_t n_train = r->n_meta_train, n_test = p->rows.n_test;
    size_t d = (size_t)p->n_bases * (size_t)width;
    pst_dataset_t *meta = r->meta_data = pst_dataset_new(n_train + n_test, d, ds->task);
    if (!meta)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    meta->n_classes = ds->n_classes;
    if (ds->class_values) {
        if (!(meta->class_values = malloc((size_t)ds->n_classes * sizeof(double))))
            return pst_err_set(err, PST_ENOMEM, "out of memory");
        memcpy(meta->class_values, ds->class_values, (size_t)ds->n_classes * sizeof(double));
    }
    pst_ensemble_stack_features((const float *const *)r->base_train, p->n_bases, n_train, width,
                                meta->x);
    pst_ensemble_stack_features((const float *const *)r->base_test, p->n_bases, n_test, width,
                                meta->x + n_train * d);
    for (size_t i = 0; i < n_train; i++)
        meta->y[i] = ds->y[r->meta_rows[i]];
    for (size_t i = 0; i < n_test; i++)
        meta->y[n_train + i] = ds->y[p->rows.test[i]];
    return PST_OK;
}

/* Trains the meta model here (it is small) and predicts the test rows with it. */
static int fit_meta(const pst_planrun_t *run, const stack_plan_t *p, stack_results_t *r,
                    pst_err_t *err)
{
    int rc = build_meta_data(run, p, r, err);
    size_t n_train = r->n_meta_train, n_test = p->rows.n_test;
    size_t *train = malloc(n_train * sizeof(size_t)), *eval = malloc(n_test * sizeof(size_t));
    if (rc == PST_OK && (!train || !eval))
        rc = pst_err_set(err, PST_ENOMEM, "out of memory");
    for (size_t i = 0; rc == PST_OK && i < n_train; i++)
        train[i] = i;
    for (size_t i = 0; rc == PST_OK && i < n_test; i++)
        eval[i] = n_train + i;
    pst_fit_t fit = {.cfg = &p->cfgs->meta,
                     .data = r->meta_data,
                     .fit_preproc = true,
                     .train = train,
                     .n_train = n_train,
                     .eval = eval,
                     .n_eval = n_test,
                     .seed = pst_rng_derive((uint64_t)run->cfg.seed, 5000)};
    if (rc == PST_OK && (rc = pst_fit_run(&fit, NULL, &r->meta, err)) != PST_OK)
        pst_err_prefix(err, rc, "meta model: ");
    r->has_meta = true;
    int width = pst_ens_width(run);
    if (rc == PST_OK && !(r->ensemble = malloc(n_test * (size_t)width * sizeof(float))))
        rc = pst_err_set(err, PST_ENOMEM, "out of memory");
    if (rc == PST_OK)
        pst_ensemble_outputs_to_probs(r->meta.pred, n_test, r->meta.n_out, width, r->ensemble);
    free(train);
    free(eval);
    return rc;
}

static int combine(const pst_planrun_t *run, const stack_plan_t *p, stack_results_t *r,
                   pst_err_t *err)
{
    pst_stack_method_t method = p->opts->method;
    if (method == PST_STACK_STACKING || method == PST_STACK_BLENDING)
        return fit_meta(run, p, r, err);
    int width = pst_ens_width(run);
    if (!(r->ensemble = malloc(p->rows.n_test * (size_t)width * sizeof(float))))
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    return pst_ensemble_vote(method == PST_STACK_HARD_VOTE ? PST_VOTE_HARD : PST_VOTE_SOFT,
                             run->data->task == PST_TASK_CLASSIFICATION,
                             (const float *const *)r->base_test, NULL, p->n_bases, p->rows.n_test,
                             width, r->ensemble, err);
}

static int report_stack(pst_planrun_t *run, const stack_plan_t *p, const stack_results_t *r,
                        pst_err_t *err)
{
    const pst_ens_rows_t *rows = &p->rows;
    int width = pst_ens_width(run);
    const char *key = run->data->task == PST_TASK_CLASSIFICATION ? "accuracy" : "r2";
    cJSON *stack = cJSON_AddObjectToObject(run->report, "stack");
    cJSON_AddStringToObject(stack, "method", method_names[p->opts->method]);
    if (p->opts->method == PST_STACK_STACKING)
        cJSON_AddNumberToObject(stack, "folds", p->k);
    if (p->opts->method == PST_STACK_BLENDING)
        pst_json_add_number(stack, "holdout_rows", (double)p->n_holdout);
    pst_json_add_number(stack, "train_rows", (double)rows->n_pool);
    pst_json_add_number(stack, "test_rows", (double)rows->n_test);
    cJSON *test =
        pst_ens_score(run->data, rows->test, rows->n_test, r->ensemble, width, stack, "test", err);
    cJSON *bases = cJSON_AddArrayToObject(stack, "bases");
    for (int b = 0; test && b < p->n_bases; b++) {
        cJSON *base = cJSON_CreateObject();
        cJSON_AddItemToArray(bases, base);
        cJSON_AddStringToObject(base, "overrides", p->opts->base[b]);
        cJSON *bt = pst_ens_score(run->data, rows->test, rows->n_test, r->base_test[b], width, base,
                                  "test", err);
        if (!bt)
            return err->code;
        printf("base %-3d test %s %.4f  (%s)\n", b + 1, key, pst_ens_number(bt, key),
               p->opts->base[b]);
        pst_ens_log(run, "base", base);
    }
    if (!test)
        return err->code;
    if (r->has_meta) {
        cJSON *meta = cJSON_AddObjectToObject(stack, "meta");
        cJSON_AddStringToObject(meta, "overrides", p->opts->meta ? p->opts->meta : "");
        pst_json_add_number(meta, "train_rows", (double)r->n_meta_train);
        pst_json_add_number(meta, "inputs", (double)r->meta_data->n_features);
        pst_json_add_number(meta, "fit_seconds", r->meta.fit_seconds);
    }
    printf("stack (%s): test %s %.4f\n", method_names[p->opts->method], key,
           pst_ens_number(test, key));
    fflush(stdout);
    return pst_ens_write_predictions(run, "test_predictions.csv", rows->test, rows->n_test,
                                     r->ensemble, width, err);
}

/* model.pst: the bases trained on the training rows (and the meta model) as an ensemble file. */
static int save_ensemble(const pst_planrun_t *run, const stack_plan_t *p, const pst_ens_exec_t *ex,
                         const stack_results_t *r, pst_err_t *err)
{
    static const pst_ensemble_method_t kinds[] = {PST_ENSEMBLE_STACKING, PST_ENSEMBLE_BLENDING,
                                                  PST_ENSEMBLE_VOTING, PST_ENSEMBLE_VOTING};
    pst_ensemble_t e = {.method = kinds[p->opts->method],
                        .voting =
                            p->opts->method == PST_STACK_HARD_VOTE ? PST_VOTE_HARD : PST_VOTE_SOFT};
    pst_modelfile_t members[PST_STACK_MAX_BASES] = {0}, meta = {0};
    int rc = PST_OK;
    for (int b = 0; b < p->n_bases && rc == PST_OK; b++)
        rc = pst_ens_member(run, ex->keep_from + b, &members[b], err);
    if (rc == PST_OK && r->has_meta)
        rc = pst_ens_member_fit(&p->cfgs->meta, r->meta_data, &r->meta, &meta, err);
    e.members = members;
    e.n_members = p->n_bases;
    e.meta = r->has_meta ? &meta : NULL;
    char path[1100];
    if (rc == PST_OK)
        rc = pst_ensemble_save(&e, pst_rundir_file(&run->rundir, "model.pst", path, sizeof path),
                               err);
    for (int b = 0; b < p->n_bases; b++)
        pst_modelfile_fini(&members[b]);
    pst_modelfile_fini(&meta);
    return rc;
}

static int stack_results(pst_planrun_t *run, const stack_plan_t *p, const pst_ens_exec_t *ex,
                         pst_err_t *err)
{
    stack_results_t r = {0};
    int rc = gather_bases(run, ex, p, &r, err);
    if (rc == PST_OK)
        rc = combine(run, p, &r, err);
    if (rc == PST_OK)
        rc = report_stack(run, p, &r, err);
    if (rc == PST_OK)
        rc = save_ensemble(run, p, ex, &r, err);
    stack_results_fini(&r);
    return rc;
}

int pst_stack_run(const pst_stack_opts_t *o)
{
    stack_configs_t cfgs = {0};
    int status = load_configs(&cfgs, o);
    if (status != 0) {
        configs_fini(&cfgs, o->n_bases);
        return status;
    }
    stack_plan_t p = {.opts = o, .cfgs = &cfgs};
    pst_ens_exec_t ex = {0};
    pst_planrun_t run;
    pst_planrun_kind_t kind = {
        .name = "stack", .describe = stack_describe, .label = stack_label, .ctx = &p};
    pst_err_t err = {0};
    int rc = pst_planrun_begin(&run, &o->plan, NULL, &err);
    if (rc == PST_OK && o->method == PST_STACK_HARD_VOTE &&
        run.data->task != PST_TASK_CLASSIFICATION)
        rc = pst_err_set(&err, PST_EINVAL, "stack: hard_vote needs a classification task");
    if (rc == PST_OK)
        rc = pst_ens_rows(&run, &p.rows, &err);
    if (rc == PST_OK)
        rc = build_plan(&p, &run, &err);
    ex.keep_from = o->method == PST_STACK_STACKING ? p.n_bases * p.k : 0;
    if (rc == PST_OK)
        rc = pst_ens_execute(&run, &kind, p.n_tasks, &ex, &err);
    if (rc == PST_OK && run.lead)
        rc = stack_results(&run, &p, &ex, &err);
    if (rc == PST_OK && run.lead)
        rc = pst_planrun_finish(&run, "stack", &err);
    if (rc != PST_OK && (run.lead || !pst_cluster_launched()))
        pst_app_error("%s", err.msg[0] ? err.msg : pst_strerror(rc));
    stack_plan_fini(&p);
    status = pst_planrun_end(&run, rc);
    configs_fini(&cfgs, o->n_bases);
    return status;
}
