/* Tests for app/explain: exact linear contributions, integrated gradients' completeness on an
 * MLP, Kernel SHAP against the exact Shapley values of linear models and of an ensemble of them,
 * permutation importance finding a planted feature and ranking a dead one last, determinism by
 * seed, the CSV files, and the errors (a method that does not fit, data of the wrong width). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "app/explain/attributions.h"
#include "app/explain/explain_write.h"
#include "app/explain/importance.h"
#include "common/log.h"
#include "common/rng.h"
#include "scratch.h"

#define N_ROWS 200
#define MAX_IN 8

/* A model file held in memory: its layers, parameters and preprocessing. */
typedef struct tmodel {
    pst_layer_spec_t layers[8];
    float params[4096];
    float shift[MAX_IN], scale[MAX_IN], fill[MAX_IN];
    pst_modelfile_t mf;
} tmodel_t;

static void finish(tmodel_t *t, int n_in, int n_layers, pst_task_t task, int n_classes,
                   pst_loss_kind_t loss)
{
    t->mf = (pst_modelfile_t){.n_inputs = n_in,
                              .n_layers = n_layers,
                              .layers = t->layers,
                              .loss = loss,
                              .task = task,
                              .n_classes = n_classes,
                              .params = t->params};
    pst_err_t err = {0};
    pst_model_t *model = pst_model_new(n_in, t->layers, n_layers, 4, &err);
    assert_non_null(model);
    t->mf.n_params = pst_model_n_params(model);
    assert_true(t->mf.n_params <= 4096);
    pst_model_destroy(&model);
}

/* y = w . z + b on z = (x - shift) * scale (or on x when shift is NULL), one dense layer. */
static void make_linear(tmodel_t *t, int n_in, const float *w, float b, const float *shift,
                        const float *scale)
{
    memset(t, 0, sizeof *t);
    t->layers[0] = (pst_layer_spec_t){.kind = PST_LAYER_DENSE, .units = 1};
    finish(t, n_in, 1, PST_TASK_REGRESSION, 0, PST_LOSS_MSE);
    memcpy(t->params, w, (size_t)n_in * sizeof(float)); /* tensor 0: (1, n_in), then the bias */
    t->params[n_in] = b;
    if (shift) {
        memcpy(t->shift, shift, (size_t)n_in * sizeof(float));
        memcpy(t->scale, scale, (size_t)n_in * sizeof(float));
        t->mf.shift = t->shift;
        t->mf.scale = t->scale;
        t->mf.fill = t->fill;
        t->mf.pixel_scale = 1;
    }
}

/* n_in -> 8 tanh -> 8 relu -> 3 softmax, weights drawn from seed. */
static void make_mlp(tmodel_t *t, int n_in, uint64_t seed)
{
    memset(t, 0, sizeof *t);
    t->layers[0] = (pst_layer_spec_t){.kind = PST_LAYER_DENSE, .units = 8};
    t->layers[1] = (pst_layer_spec_t){.kind = PST_LAYER_TANH};
    t->layers[2] = (pst_layer_spec_t){.kind = PST_LAYER_DENSE, .units = 8};
    t->layers[3] = (pst_layer_spec_t){.kind = PST_LAYER_RELU};
    t->layers[4] = (pst_layer_spec_t){.kind = PST_LAYER_DENSE, .units = 3};
    t->layers[5] = (pst_layer_spec_t){.kind = PST_LAYER_SOFTMAX};
    finish(t, n_in, 6, PST_TASK_CLASSIFICATION, 3, PST_LOSS_SOFTMAX_CE);
    pst_err_t err = {0};
    pst_model_t *model = pst_model_new(n_in, t->layers, 6, 4, &err);
    pst_rng_t rng;
    pst_rng_init(&rng, seed);
    pst_model_init_params(model, &rng);
    float *p = pst_model_params(model);
    for (size_t i = 0; i < t->mf.n_params; i++) /* biases too, so no unit is dead everywhere */
        t->params[i] = p[i] + 0.1f * (float)pst_rng_normal(&rng);
    pst_model_destroy(&model);
}

/* n rows of d standard normal features (seeded); y = w . x + b + noise, or a class from the
 * sign of x0 + x1 when classes > 0. */
static pst_dataset_t *make_data(int d, const float *w, float b, int classes, uint64_t seed)
{
    pst_dataset_t *ds =
        pst_dataset_new(N_ROWS, (size_t)d, classes ? PST_TASK_CLASSIFICATION : PST_TASK_REGRESSION);
    assert_non_null(ds);
    ds->n_classes = classes;
    pst_rng_t rng;
    pst_rng_init(&rng, seed);
    for (size_t i = 0; i < N_ROWS; i++) {
        float *x = ds->x + i * (size_t)d;
        double y = b;
        for (int j = 0; j < d; j++) {
            x[j] = (float)pst_rng_normal(&rng);
            y += w ? (double)w[j] * x[j] : 0;
        }
        ds->y[i] = classes ? (float)((x[0] + x[1] > 0.5f) + (x[0] - x[1] > 0.5f))
                           : (float)(y + 0.05 * pst_rng_normal(&rng));
    }
    return ds;
}

static double column_mean(const pst_dataset_t *ds, int j)
{
    double s = 0;
    for (size_t i = 0; i < ds->n_rows; i++)
        s += ds->x[i * ds->n_features + (size_t)j];
    return s / (double)ds->n_rows;
}

static const float w4[] = {2.0f, -1.0f, 0.5f, 0.0f};
static const float shift4[] = {0.5f, -1.0f, 2.0f, 0.0f}, scale4[] = {2.0f, 0.5f, 1.0f, 3.0f};

/* Attributions whose background is every row in order: the baseline is the data's mean. */
static pst_attr_opts_t all_rows_opts(pst_attr_method_t method)
{
    return (pst_attr_opts_t){.method = method,
                             .rows = 20,
                             .background = N_ROWS,
                             .steps = 50,
                             .coalitions = 2048,
                             .seed = 3};
}

/* phi_j = w_j scale_j (x_j - mean_j): the exact contribution, and the exact Shapley value of a
 * linear model when the background is the whole data. */
static void assert_linear_exact(const pst_explainer_t *ex, const pst_attributions_t *at,
                                const tmodel_t *t, double tol)
{
    double mean[4];
    for (int j = 0; j < 4; j++)
        mean[j] = column_mean(ex->data, j);
    for (size_t i = 0; i < at->n_rows; i++) {
        const float *x = ex->data->x + i * 4;
        double fx = t->params[4];
        for (int j = 0; j < 4; j++) {
            double scale = t->mf.scale ? t->mf.scale[j] : 1, shift = t->mf.shift ? shift4[j] : 0;
            double want = (double)w4[j] * scale * ((double)x[j] - mean[j]);
            assert_true(fabs(at->phi[i * 4 + (size_t)j] - want) <= tol);
            fx += (double)w4[j] * scale * ((double)x[j] - shift);
        }
        assert_true(fabs(at->fx[i] - fx) <= 1e-4);
    }
    assert_true(at->worst_error <= 1e-4);
}

static void linear_contributions_are_exact(void **state)
{
    (void)state;
    tmodel_t t;
    make_linear(&t, 4, w4, 0.25f, shift4, scale4);
    pst_explainer_t ex;
    pst_err_t err = {0};
    assert_int_equal(pst_explainer_init_model(&ex, &t.mf, make_data(4, w4, 0, 0, 1), true, &err),
                     PST_OK);
    pst_attr_opts_t o = all_rows_opts(PST_ATTR_AUTO);
    pst_attributions_t at;
    assert_int_equal(pst_attributions_compute(&ex, &o, &at, &err), PST_OK);
    assert_int_equal(at.method, PST_ATTR_LINEAR);
    assert_int_equal(at.n_rows, 20);
    assert_linear_exact(&ex, &at, &t, 1e-4);
    /* the dead column gets exactly nothing */
    for (size_t i = 0; i < at.n_rows; i++)
        assert_true(at.phi[i * 4 + 3] == 0.0);
    pst_attributions_fini(&at);
    /* a baseline given as the layer stack sees it */
    static const double zbar[] = {0.5, -1.0, 2.0, 4.0};
    o.baseline = zbar;
    o.background = 0; /* not needed then */
    assert_int_equal(pst_attributions_compute(&ex, &o, &at, &err), PST_OK);
    for (size_t i = 0; i < at.n_rows; i++) {
        const float *x = ex.data->x + i * 4;
        for (int j = 0; j < 4; j++) {
            double z = ((double)x[j] - shift4[j]) * scale4[j];
            assert_true(fabs(at.phi[i * 4 + (size_t)j] - w4[j] * (z - zbar[j])) <= 1e-4);
        }
        assert_true(fabs(at.fbase[i] - (0.25 + 2.0 * 0.5 + 1.0 + 0.5 * 2.0)) <= 1e-5);
    }
    pst_attributions_fini(&at);
    o = all_rows_opts(PST_ATTR_AUTO);
    /* the gradient of a linear model is its weights: integrated gradients agree */
    o.method = PST_ATTR_IG;
    o.steps = 3;
    assert_int_equal(pst_attributions_compute(&ex, &o, &at, &err), PST_OK);
    assert_linear_exact(&ex, &at, &t, 1e-4);
    pst_attributions_fini(&at);
    pst_explainer_fini(&ex);
}

static void kernel_shap_equals_exact_shap_on_linear(void **state)
{
    (void)state;
    tmodel_t t;
    make_linear(&t, 4, w4, 0.25f, shift4, scale4);
    pst_explainer_t ex;
    pst_err_t err = {0};
    assert_int_equal(pst_explainer_init_model(&ex, &t.mf, make_data(4, w4, 0, 0, 2), true, &err),
                     PST_OK);
    pst_attr_opts_t o = all_rows_opts(PST_ATTR_KERNEL_SHAP);
    pst_attributions_t at;
    assert_int_equal(pst_attributions_compute(&ex, &o, &at, &err), PST_OK);
    assert_true(at.exhaustive);
    assert_linear_exact(&ex, &at, &t, 1e-4);
    pst_attributions_fini(&at);
    /* sampled coalitions (8 of the 14) still pin a linear model's values exactly */
    o.coalitions = 8;
    assert_int_equal(pst_attributions_compute(&ex, &o, &at, &err), PST_OK);
    assert_false(at.exhaustive);
    assert_linear_exact(&ex, &at, &t, 1e-4);
    pst_attributions_fini(&at);
    pst_explainer_fini(&ex);
}

static void kernel_shap_on_an_ensemble_of_linear_models(void **state)
{
    (void)state;
    static const float w_other[] = {-1.0f, 3.0f, 0.0f, 1.0f};
    tmodel_t a, b;
    make_linear(&a, 4, w4, 0.25f, NULL, NULL);
    make_linear(&b, 4, w_other, -0.5f, NULL, NULL);
    pst_modelfile_t members[2] = {a.mf, b.mf};
    float weights[2] = {3, 1};
    pst_ensemble_t e = {.method = PST_ENSEMBLE_VOTING,
                        .voting = PST_VOTE_SOFT,
                        .n_members = 2,
                        .members = members,
                        .weights = weights};
    pst_explainer_t ex;
    pst_err_t err = {0};
    assert_int_equal(pst_explainer_init_ensemble(&ex, &e, make_data(4, w4, 0, 0, 4), true, &err),
                     PST_OK);
    pst_attr_opts_t o = all_rows_opts(PST_ATTR_AUTO);
    pst_attributions_t at;
    assert_int_equal(pst_attributions_compute(&ex, &o, &at, &err), PST_OK);
    assert_int_equal(at.method, PST_ATTR_KERNEL_SHAP);
    for (size_t i = 0; i < at.n_rows; i++)
        for (int j = 0; j < 4; j++) {
            double w = (3.0 * w4[j] + w_other[j]) / 4.0;
            double want = w * ((double)ex.data->x[i * 4 + (size_t)j] - column_mean(ex.data, j));
            assert_true(fabs(at.phi[i * 4 + (size_t)j] - want) <= 1e-4);
        }
    assert_true(at.worst_error <= 1e-6);
    pst_attributions_fini(&at);
    /* gradients need one model's layers */
    o.method = PST_ATTR_IG;
    assert_int_equal(pst_attributions_compute(&ex, &o, &at, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "kernel_shap"));
    pst_explainer_fini(&ex);
}

static void ig_is_complete_on_an_mlp(void **state)
{
    (void)state;
    tmodel_t t;
    make_mlp(&t, 5, 7);
    pst_explainer_t ex;
    pst_err_t err = {0};
    assert_int_equal(pst_explainer_init_model(&ex, &t.mf, make_data(5, NULL, 0, 3, 5), true, &err),
                     PST_OK);
    pst_attr_opts_t o = all_rows_opts(PST_ATTR_AUTO);
    double worst[2], spread = 0;
    int steps[2] = {4, 128};
    for (int s = 0; s < 2; s++) {
        o.steps = steps[s];
        pst_attributions_t at;
        assert_int_equal(pst_attributions_compute(&ex, &o, &at, &err), PST_OK);
        assert_int_equal(at.method, PST_ATTR_IG);
        for (size_t i = 0; i < at.n_rows; i++)
            spread = fmax(spread, fabs(at.fx[i] - at.fbase[i]));
        assert_true(spread > 0.1); /* the rows really differ from the baseline */
        worst[s] = at.worst_error;
        pst_attributions_fini(&at);
    }
    /* the midpoint rule converges (at first order past the ReLU kinks): 128 steps leave under 1%
     * of the largest change of a logit, and a small fraction of what 4 steps leave */
    assert_true(worst[1] < 0.01 * spread);
    assert_true(worst[1] < worst[0] / 10);
    /* linear contributions refuse a deeper model */
    o.method = PST_ATTR_LINEAR;
    pst_attributions_t at;
    assert_int_equal(pst_attributions_compute(&ex, &o, &at, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "linear model"));
    pst_explainer_fini(&ex);
}

/* v(S): the mean output over the background rows bg (b, 5) with the columns of mask from x. */
static double coalition_value(const pst_explainer_t *ex, const float *x, const float *bg, int b,
                              unsigned mask, int cls)
{
    float rows[10 * 5];
    int classes[10];
    double out[10], v = 0;
    for (int i = 0; i < b; i++) {
        for (int j = 0; j < 5; j++)
            rows[i * 5 + j] = (mask >> j) & 1 ? x[j] : bg[i * 5 + j];
        classes[i] = cls;
    }
    pst_err_t err = {0};
    assert_int_equal(pst_explainer_output(ex, rows, (size_t)b, classes, out, &err), PST_OK);
    for (int i = 0; i < b; i++)
        v += out[i] / b;
    return v;
}

/* On a non-linear model, Kernel SHAP over every coalition is the Shapley value itself:
 * phi_i = sum over S without i of |S|! (M - |S| - 1)! / M! (v(S + i) - v(S)), by brute force. */
static void kernel_shap_is_the_shapley_value_of_an_mlp(void **state)
{
    (void)state;
    tmodel_t t;
    make_mlp(&t, 5, 13);
    pst_explainer_t ex;
    pst_err_t err = {0};
    assert_int_equal(pst_explainer_init_model(&ex, &t.mf, make_data(5, NULL, 0, 3, 14), true, &err),
                     PST_OK);
    pst_attr_opts_t o = {
        .method = PST_ATTR_KERNEL_SHAP, .rows = 4, .background = 10, .coalitions = 30, .seed = 2};
    pst_attributions_t at;
    assert_int_equal(pst_attributions_compute(&ex, &o, &at, &err), PST_OK);
    assert_true(at.exhaustive);
    float *bg = pst_attr_background(&ex, 10, 2, &err);
    assert_non_null(bg);
    static const double fact[] = {1, 1, 2, 6, 24, 120};
    for (size_t r = 0; r < at.n_rows; r++) {
        const float *x = ex.data->x + r * 5;
        for (int i = 0; i < 5; i++) {
            double phi = 0;
            for (unsigned s = 0; s < 32; s++) {
                if ((s >> i) & 1)
                    continue;
                int size = __builtin_popcount(s);
                phi += fact[size] * fact[5 - size - 1] / fact[5] *
                       (coalition_value(&ex, x, bg, 10, s | (1u << i), at.cls[r]) -
                        coalition_value(&ex, x, bg, 10, s, at.cls[r]));
            }
            assert_true(fabs(at.phi[r * 5 + (size_t)i] - phi) <= 1e-6 * (1 + fabs(phi)));
        }
        assert_true(fabs(at.fbase[r] - coalition_value(&ex, x, bg, 10, 0, at.cls[r])) <= 1e-9);
    }
    free(bg);
    pst_attributions_fini(&at);
    pst_explainer_fini(&ex);
}

/* Column 0 carries most of the signal, column 3 none: shuffling it changes nothing at all. */
static void importance_finds_the_planted_feature(void **state)
{
    (void)state;
    tmodel_t t;
    make_linear(&t, 4, w4, 0.0f, NULL, NULL);
    pst_explainer_t ex;
    pst_err_t err = {0};
    assert_int_equal(pst_explainer_init_model(&ex, &t.mf, make_data(4, w4, 0, 0, 6), true, &err),
                     PST_OK);
    pst_importance_t imp;
    assert_int_equal(pst_importance_compute(&ex, PST_IMPORTANCE_AUTO, 10, 9, &imp, &err), PST_OK);
    assert_int_equal(imp.metric, PST_IMPORTANCE_MSE);
    assert_int_equal(imp.order[0], 0);
    assert_int_equal(imp.order[1], 1);
    assert_int_equal(imp.order[3], 3);
    assert_true(imp.mean[3] == 0.0 && imp.std[3] == 0.0);
    /* shuffling an independent column adds 2 w^2 var(x) to the squared error on average */
    assert_true(fabs(imp.mean[0] - 2 * 4.0) < 0.25 * 8.0);
    assert_true(imp.std[0] > 0);
    pst_importance_fini(&imp);
    /* accuracy is for classifiers */
    assert_int_equal(pst_importance_compute(&ex, PST_IMPORTANCE_ACCURACY, 2, 9, &imp, &err),
                     PST_EINVAL);
    pst_explainer_fini(&ex);
}

static void same_seed_same_figures(void **state)
{
    (void)state;
    tmodel_t t;
    make_mlp(&t, 5, 11);
    pst_explainer_t ex;
    pst_err_t err = {0};
    assert_int_equal(pst_explainer_init_model(&ex, &t.mf, make_data(5, NULL, 0, 3, 8), true, &err),
                     PST_OK);
    pst_importance_t a, b, c;
    assert_int_equal(pst_importance_compute(&ex, PST_IMPORTANCE_LOG_LOSS, 3, 42, &a, &err), PST_OK);
    assert_int_equal(pst_importance_compute(&ex, PST_IMPORTANCE_LOG_LOSS, 3, 42, &b, &err), PST_OK);
    assert_int_equal(pst_importance_compute(&ex, PST_IMPORTANCE_LOG_LOSS, 3, 43, &c, &err), PST_OK);
    assert_memory_equal(a.drops, b.drops, 15 * sizeof(double));
    assert_memory_not_equal(a.drops, c.drops, 15 * sizeof(double));
    pst_importance_fini(&a);
    pst_importance_fini(&b);
    pst_importance_fini(&c);
    pst_attr_opts_t o = {.method = PST_ATTR_KERNEL_SHAP,
                         .rows = 5,
                         .background = 10,
                         .coalitions = 12, /* sampled: 30 exist */
                         .seed = 5};
    pst_attributions_t x, y, z;
    assert_int_equal(pst_attributions_compute(&ex, &o, &x, &err), PST_OK);
    assert_int_equal(pst_attributions_compute(&ex, &o, &y, &err), PST_OK);
    o.seed = 6;
    assert_int_equal(pst_attributions_compute(&ex, &o, &z, &err), PST_OK);
    assert_memory_equal(x.phi, y.phi, 25 * sizeof(double));
    assert_memory_not_equal(x.phi, z.phi, 25 * sizeof(double));
    pst_attributions_fini(&x);
    pst_attributions_fini(&y);
    pst_attributions_fini(&z);
    pst_explainer_fini(&ex);
}

/* Reads line `line` (0-based) of a small file into buf. */
static void read_line(const char *path, int line, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    for (int i = 0; i <= line; i++)
        assert_non_null(fgets(buf, (int)cap, f));
    fclose(f);
}

static void csv_files_hold_the_figures(void **state)
{
    (void)state;
    tmodel_t t;
    make_linear(&t, 4, w4, 0.25f, NULL, NULL);
    pst_explainer_t ex;
    pst_err_t err = {0};
    pst_dataset_t *ds = make_data(4, w4, 0, 0, 10);
    const char *names[] = {"age", "dose, mg", "weight", "noise"};
    ds->feature_names = calloc(4, sizeof(char *));
    for (int j = 0; j < 4; j++)
        ds->feature_names[j] = strdup(names[j]);
    assert_int_equal(pst_explainer_init_model(&ex, &t.mf, ds, true, &err), PST_OK);
    pst_importance_t imp;
    assert_int_equal(pst_importance_compute(&ex, PST_IMPORTANCE_MSE, 2, 1, &imp, &err), PST_OK);
    pst_attr_opts_t o = all_rows_opts(PST_ATTR_LINEAR);
    pst_attributions_t at;
    assert_int_equal(pst_attributions_compute(&ex, &o, &at, &err), PST_OK);
    char imp_path[256], attr_path[256], html_path[256], line[1024];
    pst_scratch_path(imp_path, "importance.csv");
    pst_scratch_path(attr_path, "attributions.csv");
    pst_scratch_path(html_path, "explain.html");
    assert_int_equal(pst_explain_write_importance(imp_path, &ex, &imp, &err), PST_OK);
    char *ids[20] = {0};
    ids[0] = "r-1";
    assert_int_equal(pst_explain_write_attributions(attr_path, &ex, &at, "id", ids, &err), PST_OK);
    assert_int_equal(pst_explain_write_html(html_path, &ex, &imp, &at, &err), PST_OK);
    read_line(imp_path, 0, line, sizeof line);
    assert_string_equal(line, "rank,column,metric,mean_drop,std_drop,drop_1,drop_2\n");
    read_line(imp_path, 1, line, sizeof line);
    char want[256];
    snprintf(want, sizeof want, "1,age,mse,%.9g,%.9g,", imp.mean[0], imp.std[0]);
    assert_memory_equal(line, want, strlen(want));
    read_line(imp_path, 4, line, sizeof line);
    assert_memory_equal(line, "4,noise,mse,0,0,0,0\n", 20);
    read_line(attr_path, 0, line, sizeof line);
    assert_string_equal(line, "row,id,class,output,baseline,age,\"dose, mg\",weight,noise\n");
    read_line(attr_path, 1, line, sizeof line);
    snprintf(want, sizeof want, "1,r-1,,%.9g,%.9g,%.9g,%.9g,%.9g,0\n", at.fx[0], at.fbase[0],
             at.phi[0], at.phi[1], at.phi[2]);
    assert_string_equal(line, want);
    read_line(html_path, 0, line, sizeof line);
    assert_string_equal(line, "<!DOCTYPE html>\n");
    pst_importance_fini(&imp);
    pst_attributions_fini(&at);
    pst_explainer_fini(&ex);
}

static void bad_input_is_refused(void **state)
{
    (void)state;
    tmodel_t t;
    make_linear(&t, 4, w4, 0.25f, NULL, NULL);
    pst_explainer_t ex;
    pst_err_t err = {0};
    assert_int_equal(pst_explainer_init_model(&ex, &t.mf, make_data(5, NULL, 0, 0, 1), true, &err),
                     PST_EINVAL);
    assert_string_equal(err.msg, "the data has 5 features, the model takes 4");
    pst_explainer_fini(&ex);
    pst_attr_method_t m;
    assert_int_equal(pst_attr_method_parse("shapley", &m), PST_EINVAL);
    assert_int_equal(pst_attr_method_parse("kernel_shap", &m), PST_OK);
    assert_int_equal(m, PST_ATTR_KERNEL_SHAP);
    pst_importance_metric_t metric;
    assert_int_equal(pst_importance_metric_parse("auc", &metric), PST_EINVAL);
    /* too few coalitions, too many steps */
    assert_int_equal(pst_explainer_init_model(&ex, &t.mf, make_data(4, w4, 0, 0, 1), true, &err),
                     PST_OK);
    pst_attr_opts_t o = all_rows_opts(PST_ATTR_KERNEL_SHAP);
    o.coalitions = 7;
    pst_attributions_t at;
    assert_int_equal(pst_attributions_compute(&ex, &o, &at, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "coalitions"));
    o = all_rows_opts(PST_ATTR_IG);
    o.steps = 1000;
    assert_int_equal(pst_attributions_compute(&ex, &o, &at, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "steps"));
    pst_explainer_fini(&ex);
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(linear_contributions_are_exact),
        cmocka_unit_test(kernel_shap_equals_exact_shap_on_linear),
        cmocka_unit_test(kernel_shap_on_an_ensemble_of_linear_models),
        cmocka_unit_test(ig_is_complete_on_an_mlp),
        cmocka_unit_test(kernel_shap_is_the_shapley_value_of_an_mlp),
        cmocka_unit_test(importance_finds_the_planted_feature),
        cmocka_unit_test(same_seed_same_figures),
        cmocka_unit_test(csv_files_hold_the_figures),
        cmocka_unit_test(bad_input_is_refused),
    };
    return cmocka_run_group_tests(tests, pst_scratch_make, pst_scratch_remove);
}
