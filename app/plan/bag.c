/* Bagging: members' bootstrap rows, the plan of their fits, and the voted ensemble's scores. */
#include "app/plan/bag.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/console.h"
#include "app/mpi/cluster.h"
#include "app/plan/ensemble.h"
#include "app/rundir.h"
#include "common/sample/folds.h"

/* ---- the plan: one fit per member ------------------------------------------------------- */

typedef struct bag_member {
    size_t *train; // (n_train) the bootstrap draw, rows of the data
    size_t n_train;
    size_t *eval; // (n_oob + n_test) out-of-bag rows, then the test rows
    size_t n_oob;
    size_t *cols; // (n_cols) feature subset, or NULL
    size_t n_cols;
} bag_member_t;

typedef struct bag_plan {
    const pst_bag_opts_t *opts;
    pst_ens_rows_t rows;
    bag_member_t *member; // (n_members)
    int n_members;
} bag_plan_t;

static void bag_describe(void *ctx, int task, const pst_dataset_t *ds, pst_fit_t *fit)
{
    (void)ds;
    bag_plan_t *p = ctx;
    const bag_member_t *m = &p->member[task];
    fit->train = m->train;
    fit->n_train = m->n_train;
    fit->eval = m->eval;
    fit->n_eval = m->n_oob + p->rows.n_test;
    fit->cols = m->cols;
    fit->n_cols = m->n_cols;
}

static void bag_label(void *ctx, int task, char *buf, size_t cap)
{
    (void)ctx;
    snprintf(buf, cap, "member %d", task + 1);
}

/* Member m's rows: its bootstrap draw over the pool and the pool rows it left out. */
static int build_member(bag_plan_t *p, int m, size_t n_features, uint64_t seed, pst_err_t *err)
{
    const pst_ens_rows_t *r = &p->rows;
    bag_member_t *bm = &p->member[m];
    pst_bootstrap_t b;
    int rc = pst_bootstrap(r->n_pool, p->opts->max_samples,
                           pst_rng_derive(seed, 2000 + (uint64_t)m), &b, err);
    if (rc != PST_OK)
        return rc;
    bm->train = malloc(b.n_sample * sizeof(size_t));
    bm->eval = malloc((b.n_oob + r->n_test) * sizeof(size_t));
    if (bm->train && bm->eval) {
        for (size_t i = 0; i < b.n_sample; i++)
            bm->train[i] = r->pool[b.sample[i]];
        for (size_t i = 0; i < b.n_oob; i++)
            bm->eval[i] = r->pool[b.oob[i]];
        memcpy(bm->eval + b.n_oob, r->test, r->n_test * sizeof(size_t));
        bm->n_train = b.n_sample;
        bm->n_oob = b.n_oob;
    } else {
        rc = pst_err_set(err, PST_ENOMEM, "out of memory");
    }
    pst_bootstrap_fini(&b);
    if (rc == PST_OK && p->opts->max_features < 1.0)
        rc = pst_feature_subset(n_features, p->opts->max_features,
                                pst_rng_derive(seed, 3000 + (uint64_t)m), &bm->cols, &bm->n_cols,
                                err);
    return rc;
}

static int build_plan(bag_plan_t *p, const pst_planrun_t *run, pst_err_t *err)
{
    p->member = calloc((size_t)p->opts->members, sizeof *p->member);
    if (!p->member)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    p->n_members = p->opts->members;
    int rc = PST_OK;
    for (int m = 0; m < p->n_members && rc == PST_OK; m++)
        rc = build_member(p, m, run->data->n_features, (uint64_t)run->cfg.seed, err);
    return rc;
}

static void bag_plan_fini(bag_plan_t *p)
{
    for (int m = 0; p->member && m < p->n_members; m++) {
        free(p->member[m].train);
        free(p->member[m].eval);
        free(p->member[m].cols);
    }
    free(p->member);
    pst_ens_rows_fini(&p->rows);
}

/* ---- results ------------------------------------------------------------------------------ */

/* Every member's test rows as probabilities, and its own report entry (test and oob metrics). */
typedef struct bag_results {
    float **test;    // (n_members) each (n_test, width)
    double *oob_sum; // (n_rows, width) summed out-of-bag probabilities per data row
    int *oob_votes;  // (n_rows) members that scored each row out of bag
} bag_results_t;

static void bag_results_fini(bag_results_t *r, int n_members)
{
    for (int m = 0; r->test && m < n_members; m++)
        free(r->test[m]);
    free(r->test);
    free(r->oob_sum);
    free(r->oob_votes);
}

/* Replaces member m's task metrics (scored on out-of-bag and test rows together) by separate
 * test and out-of-bag metrics, and adds its out-of-bag outputs to the sums. */
static int score_member(pst_planrun_t *run, const pst_ens_exec_t *ex, const bag_plan_t *p, int m,
                        bag_results_t *res, pst_err_t *err)
{
    const bag_member_t *bm = &p->member[m];
    int width = pst_ens_width(run);
    float *oob = NULL;
    int rc = pst_ens_task_probs(run, m, bm->n_oob, p->rows.n_test, width, &res->test[m], err);
    if (rc == PST_OK)
        rc = pst_ens_task_probs(run, m, 0, bm->n_oob, width, &oob, err);
    cJSON *old = run->task_metrics[m], *entry = cJSON_CreateObject();
    run->task_metrics[m] = entry;
    if (rc == PST_OK && !pst_ens_score(run->data, p->rows.test, p->rows.n_test, res->test[m], width,
                                       entry, "test", err))
        rc = err->code;
    if (rc == PST_OK && bm->n_oob &&
        !pst_ens_score(run->data, bm->eval, bm->n_oob, oob, width, entry, "oob", err))
        rc = err->code;
    const char *copy[] = {"fit_seconds", "score_seconds", "epochs"};
    for (size_t i = 0; i < 3; i++)
        pst_json_add_number(entry, copy[i], pst_ens_number(old, copy[i]));
    pst_json_add_number(entry, "train_rows", (double)bm->n_train);
    pst_json_add_number(entry, "oob_rows", (double)bm->n_oob);
    if (bm->cols)
        pst_json_add_number(entry, "features", (double)bm->n_cols);
    cJSON_Delete(old);
    for (size_t i = 0; rc == PST_OK && i < bm->n_oob; i++) {
        res->oob_votes[bm->eval[i]]++;
        for (int k = 0; k < width; k++)
            res->oob_sum[bm->eval[i] * (size_t)width + (size_t)k] += oob[i * (size_t)width + k];
    }
    free(oob);
    return rc;
}

/* bag.oob: training rows scored by the soft vote of the members that left them out. */
static int score_oob(const pst_planrun_t *run, const bag_plan_t *p, const bag_results_t *res,
                     cJSON *bag, pst_err_t *err)
{
    int width = pst_ens_width(run);
    size_t n = 0, *idx = malloc(p->rows.n_pool * sizeof(size_t));
    float *probs = malloc(p->rows.n_pool * (size_t)width * sizeof(float));
    int rc = idx && probs ? PST_OK : pst_err_set(err, PST_ENOMEM, "out of memory");
    for (size_t i = 0; rc == PST_OK && i < p->rows.n_pool; i++) {
        size_t row = p->rows.pool[i];
        if (res->oob_votes[row] == 0)
            continue;
        for (int k = 0; k < width; k++)
            probs[n * (size_t)width + (size_t)k] =
                (float)(res->oob_sum[row * (size_t)width + (size_t)k] / res->oob_votes[row]);
        idx[n++] = row;
    }
    pst_json_add_number(bag, "oob_rows", (double)n);
    pst_json_add_number(bag, "oob_skipped", (double)(p->rows.n_pool - n));
    cJSON *oob =
        rc == PST_OK && n ? pst_ens_score(run->data, idx, n, probs, width, bag, "oob", err) : NULL;
    if (rc == PST_OK && n && !oob)
        rc = err->code;
    if (oob && run->data->task == PST_TASK_CLASSIFICATION)
        pst_json_add_number(bag, "oob_accuracy", pst_ens_number(oob, "accuracy"));
    else if (oob)
        pst_json_add_number(bag, "oob_r2", pst_ens_number(oob, "r2"));
    free(idx);
    free(probs);
    return rc;
}

/* bag.member_mean and bag.member_std: each test metric over the members. */
static void summarise_members(const pst_planrun_t *run, int n_members, cJSON *bag)
{
    cJSON **tests = calloc((size_t)n_members, sizeof *tests);
    cJSON *summary = cJSON_CreateObject();
    for (int m = 0; tests && m < n_members; m++)
        tests[m] = cJSON_GetObjectItem(run->task_metrics[m], "test");
    if (tests)
        pst_plan_summarise(tests, n_members, summary);
    cJSON *mean = cJSON_AddObjectToObject(bag, "member_mean");
    cJSON *std = cJSON_AddObjectToObject(bag, "member_std");
    for (cJSON *item = summary->child; item; item = item->next) {
        pst_json_add_number(mean, item->string, pst_ens_number(item, "mean"));
        pst_json_add_number(std, item->string, pst_ens_number(item, "std"));
    }
    cJSON_Delete(summary);
    free(tests);
}

static void print_results(const pst_planrun_t *run, const cJSON *bag, int n_members)
{
    const char *key = run->data->task == PST_TASK_CLASSIFICATION ? "accuracy" : "r2";
    for (int m = 0; m < n_members; m++) {
        const cJSON *e = run->task_metrics[m];
        printf("member %-4d test %s %.4f  oob %s %.4f\n", m + 1, key,
               pst_ens_number(cJSON_GetObjectItem(e, "test"), key), key,
               pst_ens_number(cJSON_GetObjectItem(e, "oob"), key));
    }
    printf("bag: test %s %.4f (members' mean %.4f), oob %s %.4f over %.0f rows (%.0f never out "
           "of bag)\n",
           key, pst_ens_number(cJSON_GetObjectItem(bag, "test"), key),
           pst_ens_number(cJSON_GetObjectItem(bag, "member_mean"), key), key,
           pst_ens_number(cJSON_GetObjectItem(bag, "oob"), key), pst_ens_number(bag, "oob_rows"),
           pst_ens_number(bag, "oob_skipped"));
    fflush(stdout);
}

/* model.pst: the members as an ensemble file. */
static int save_ensemble(const pst_planrun_t *run, const pst_bag_opts_t *a,
                         const pst_ens_exec_t *ex, pst_err_t *err)
{
    pst_ensemble_t e = {.method = PST_ENSEMBLE_BAGGING, .voting = a->voting};
    e.members = calloc((size_t)ex->n_tasks, sizeof *e.members);
    int rc = e.members ? PST_OK : pst_err_set(err, PST_ENOMEM, "out of memory");
    for (int m = 0; m < ex->n_tasks && rc == PST_OK; m++)
        if ((rc = pst_ens_member(run, m, &e.members[m], err)) == PST_OK)
            e.n_members++;
    char path[1100];
    if (rc == PST_OK)
        rc = pst_ensemble_save(&e, pst_rundir_file(&run->rundir, "model.pst", path, sizeof path),
                               err);
    for (int m = 0; e.members && m < ex->n_tasks; m++)
        pst_modelfile_fini(&e.members[m]);
    free(e.members);
    return rc;
}

static int bag_results(pst_planrun_t *run, const bag_plan_t *p, const pst_ens_exec_t *ex,
                       pst_err_t *err)
{
    int width = pst_ens_width(run), n = p->n_members;
    size_t n_rows = run->data->n_rows;
    bag_results_t res = {calloc((size_t)n, sizeof(float *)),
                         calloc(n_rows * (size_t)width, sizeof(double)),
                         calloc(n_rows, sizeof(int))};
    int rc = res.test && res.oob_sum && res.oob_votes
                 ? PST_OK
                 : pst_err_set(err, PST_ENOMEM, "out of memory");
    for (int m = 0; m < n && rc == PST_OK; m++)
        rc = score_member(run, ex, p, m, &res, err);
    cJSON *bag = cJSON_AddObjectToObject(run->report, "bag");
    float *vote = malloc(p->rows.n_test * (size_t)width * sizeof(float));
    if (rc == PST_OK && !vote)
        rc = pst_err_set(err, PST_ENOMEM, "out of memory");
    if (rc == PST_OK)
        rc = pst_ensemble_vote(p->opts->voting, run->data->task == PST_TASK_CLASSIFICATION,
                               (const float *const *)res.test, NULL, n, p->rows.n_test, width, vote,
                               err);
    if (rc == PST_OK &&
        !pst_ens_score(run->data, p->rows.test, p->rows.n_test, vote, width, bag, "test", err))
        rc = err->code;
    if (rc == PST_OK)
        rc = score_oob(run, p, &res, bag, err);
    if (rc == PST_OK) {
        summarise_members(run, n, bag);
        cJSON_AddNumberToObject(bag, "members", n);
        pst_json_add_number(bag, "max_samples", p->opts->max_samples);
        pst_json_add_number(bag, "max_features", p->opts->max_features);
        cJSON_AddStringToObject(bag, "voting", pst_voting_name(p->opts->voting));
        pst_json_add_number(bag, "train_rows", (double)p->rows.n_pool);
        pst_json_add_number(bag, "test_rows", (double)p->rows.n_test);
        for (int m = 0; m < n; m++) {
            char label[32];
            snprintf(label, sizeof label, "member %d", m + 1);
            pst_ens_log(run, label, run->task_metrics[m]);
        }
        print_results(run, bag, n);
        rc = pst_ens_write_predictions(run, "test_predictions.csv", p->rows.test, p->rows.n_test,
                                       vote, width, err);
    }
    if (rc == PST_OK)
        rc = save_ensemble(run, p->opts, ex, err);
    free(vote);
    bag_results_fini(&res, n);
    return rc;
}

int pst_bag_run(const pst_bag_opts_t *o)
{
    bag_plan_t p = {.opts = o};
    pst_ens_exec_t ex = {.keep_from = 0};
    pst_planrun_t run;
    pst_planrun_kind_t kind = {
        .name = "bag", .describe = bag_describe, .label = bag_label, .ctx = &p, .own_log = true};
    pst_err_t err = {0};
    int rc = pst_planrun_begin(&run, &o->plan, NULL, &err);
    if (rc == PST_OK && o->voting == PST_VOTE_HARD && run.data->task != PST_TASK_CLASSIFICATION)
        rc = pst_err_set(&err, PST_EINVAL, "bag: --voting hard needs a classification task");
    if (rc == PST_OK)
        rc = pst_ens_rows(&run, &p.rows, &err);
    if (rc == PST_OK)
        rc = build_plan(&p, &run, &err);
    if (rc == PST_OK)
        rc = pst_ens_execute(&run, &kind, p.n_members, &ex, &err);
    if (rc == PST_OK && run.lead)
        rc = bag_results(&run, &p, &ex, &err);
    if (rc == PST_OK && run.lead)
        rc = pst_planrun_finish(&run, "bag", &err);
    if (rc != PST_OK && (run.lead || !pst_cluster_launched()))
        pst_app_error("%s", err.msg[0] ? err.msg : pst_strerror(rc));
    bag_plan_fini(&p);
    return pst_planrun_end(&run, rc);
}
