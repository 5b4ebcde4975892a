/* Attributions through the layer stack: exact linear contributions and integrated gradients. */
#include "app/explain/attributions.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"

static const char *const method_names[] = {"auto", "ig", "linear", "kernel_shap"};

int pst_attr_method_parse(const char *name, pst_attr_method_t *out)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, method_names[i]) == 0) {
            *out = (pst_attr_method_t)i;
            return PST_OK;
        }
    return PST_EINVAL;
}

const char *pst_attr_method_name(pst_attr_method_t method)
{
    return (unsigned)method < 4 ? method_names[method] : "?";
}

/* One dense layer, then at most a sigmoid or softmax: the logits are W z + b. */
static bool is_linear(const pst_modelfile_t *mf)
{
    if (mf->n_layers < 1 || mf->n_layers > 2 || mf->layers[0].kind != PST_LAYER_DENSE)
        return false;
    return mf->n_layers == 1 || mf->layers[1].kind == PST_LAYER_SIGMOID ||
           mf->layers[1].kind == PST_LAYER_SOFTMAX;
}

int pst_attr_resolve(const pst_explainer_t *ex, pst_attr_method_t *method, pst_err_t *err)
{
    if (*method == PST_ATTR_AUTO)
        *method = !ex->mf             ? PST_ATTR_KERNEL_SHAP
                  : is_linear(ex->mf) ? PST_ATTR_LINEAR
                                      : PST_ATTR_IG;
    if (*method == PST_ATTR_KERNEL_SHAP)
        return PST_OK;
    if (!ex->mf)
        return pst_err_set(err, PST_EINVAL,
                           "method %s needs a single model's layers; an ensemble is explained "
                           "with kernel_shap",
                           pst_attr_method_name(*method));
    if (*method == PST_ATTR_LINEAR && !is_linear(ex->mf))
        return pst_err_set(err, PST_EINVAL,
                           "method linear needs a linear model (one dense layer); this one has "
                           "%d layers: use ig or kernel_shap",
                           ex->mf->n_layers);
    return PST_OK;
}

void pst_attributions_fini(pst_attributions_t *at)
{
    free(at->phi);
    free(at->fx);
    free(at->fbase);
    free(at->cls);
    memset(at, 0, sizeof *at);
}

float *pst_attr_background(const pst_explainer_t *ex, int b, uint64_t seed, pst_err_t *err)
{
    size_t n = ex->data->n_rows, d = ex->data->n_features;
    float *bg = malloc((size_t)b * d * sizeof(float));
    if (!bg || n == 0) {
        free(bg);
        pst_err_set(err, n ? PST_ENOMEM : PST_EINVAL, n ? "out of memory" : "no rows");
        return NULL;
    }
    pst_rng_t rng;
    pst_rng_init(&rng, pst_rng_derive(seed, 1));
    for (int i = 0; i < b; i++) /* with replacement only when asked for more rows than exist */
        memcpy(bg + (size_t)i * d,
               ex->data->x + ((size_t)b <= n
                                  ? (size_t)i * (n / (size_t)b) + pst_rng_below(&rng, n / (size_t)b)
                                  : pst_rng_below(&rng, n)) *
                                 d,
               d * sizeof(float));
    return bg;
}

/* The baseline as the layer stack sees it: the one given, or the mean of the background rows.
 * zbar (model inputs). */
static int model_baseline(const pst_explainer_t *ex, const pst_attr_opts_t *o, double *zbar,
                          pst_err_t *err)
{
    int width = pst_model_n_inputs(ex->model);
    memset(zbar, 0, (size_t)width * sizeof(double));
    if (o->baseline) {
        memcpy(zbar, o->baseline, (size_t)width * sizeof(double));
        return PST_OK;
    }
    float *bg = pst_attr_background(ex, o->background, o->seed, err), *z = NULL;
    int rc = bg ? pst_explainer_to_model(ex, bg, (size_t)o->background, &z, err)
                : pst_err_code(err, PST_ENOMEM);
    for (int i = 0; rc == PST_OK && i < o->background; i++)
        for (int j = 0; j < width; j++)
            zbar[j] += z[(size_t)i * (size_t)width + (size_t)j] / o->background;
    free(bg);
    free(z);
    return rc;
}

/* The explained output c . logits of model-space row z (width). */
static double stack_output(pst_model_t *model, const float *z, const float *c)
{
    int n_out = pst_model_n_outputs(model);
    pst_model_forward(model, z, 1, false, NULL);
    const float *pre = pst_model_pre_output(model);
    double s = 0;
    for (int o = 0; o < n_out; o++)
        s += (double)c[o] * pre[o];
    return s;
}

/* c . (W z + b) moves by sum_j (c . W[:, j]) (z_j - zbar_j) from the baseline. */
static void linear_row(const pst_explainer_t *ex, const float *z, const double *zbar,
                       const float *c, double *phi)
{
    pst_model_t *model = ex->model;
    int width = pst_model_n_inputs(model), n_out = pst_model_n_outputs(model);
    const float *w = pst_model_params(model) + pst_model_tensor(model, 0)->offset; // (out, in)
    for (int j = 0; j < width; j++) {
        double wj = 0;
        for (int o = 0; o < n_out; o++)
            wj += (double)c[o] * w[(size_t)o * (size_t)width + (size_t)j];
        phi[ex->input_group[j]] += wj * ((double)z[j] - zbar[j]);
    }
}

/* Integrated gradients: (z - zbar) times the mean gradient of c . logits at the midpoints of
 * `steps` equal segments of the straight path from zbar to z. */
static void ig_row(const pst_explainer_t *ex, const float *z, const double *zbar, const float *c,
                   int steps, float *path, float *dout, double *phi)
{
    pst_model_t *model = ex->model;
    int width = pst_model_n_inputs(model), n_out = pst_model_n_outputs(model);
    for (int s = 0; s < steps; s++) {
        double alpha = (s + 0.5) / steps;
        for (int j = 0; j < width; j++)
            path[(size_t)s * (size_t)width + (size_t)j] =
                (float)(zbar[j] + alpha * ((double)z[j] - zbar[j]));
    }
    for (int s = 0; s < steps; s++)
        memcpy(dout + (size_t)s * (size_t)n_out, c, (size_t)n_out * sizeof(float));
    pst_model_forward(model, path, steps, false, NULL);
    /* fused: dout is taken at the logits, so the trailing sigmoid or softmax is skipped */
    const float *grad = pst_model_backward_input(model, dout, steps, true);
    for (int j = 0; j < width; j++) {
        double g = 0;
        for (int s = 0; s < steps; s++)
            g += grad[(size_t)s * (size_t)width + (size_t)j];
        phi[ex->input_group[j]] += ((double)z[j] - zbar[j]) * g / steps;
    }
}

static int through_layers(const pst_explainer_t *ex, const pst_attr_opts_t *o,
                          pst_attributions_t *at, pst_err_t *err)
{
    int width = pst_model_n_inputs(ex->model), n_out = pst_model_n_outputs(ex->model);
    double *zbar = malloc((size_t)width * sizeof(double));
    float *zb = malloc((size_t)width * sizeof(float)), *z = NULL;
    float *path = malloc((size_t)o->steps * (size_t)width * sizeof(float));
    float *dout = malloc((size_t)o->steps * (size_t)n_out * sizeof(float));
    float *c = malloc((size_t)n_out * sizeof(float));
    int rc = zbar && zb && path && dout && c ? model_baseline(ex, o, zbar, err)
                                             : pst_err_set(err, PST_ENOMEM, "out of memory");
    if (rc == PST_OK)
        rc = pst_explainer_to_model(ex, ex->data->x, at->n_rows, &z, err);
    for (int j = 0; rc == PST_OK && j < width; j++)
        zb[j] = (float)zbar[j];
    for (size_t i = 0; rc == PST_OK && i < at->n_rows; i++) {
        const float *zi = z + i * (size_t)width;
        double *phi = at->phi + i * (size_t)at->n_groups;
        pst_explainer_logit_weights(ex, at->cls[i], c);
        at->fx[i] = stack_output(ex->model, zi, c);
        at->fbase[i] = stack_output(ex->model, zb, c);
        if (at->method == PST_ATTR_LINEAR)
            linear_row(ex, zi, zbar, c, phi);
        else
            ig_row(ex, zi, zbar, c, o->steps, path, dout, phi);
    }
    free(c);
    free(zbar);
    free(zb);
    free(z);
    free(path);
    free(dout);
    return rc;
}

static double completeness_error(const pst_attributions_t *at)
{
    double worst = 0;
    for (size_t i = 0; i < at->n_rows; i++) {
        double sum = 0;
        for (int g = 0; g < at->n_groups; g++)
            sum += at->phi[i * (size_t)at->n_groups + (size_t)g];
        double e = fabs(sum - (at->fx[i] - at->fbase[i]));
        if (!(e <= worst)) /* a NaN is the worst */
            worst = e;
    }
    return worst;
}

static int check_opts(const pst_explainer_t *ex, const pst_attr_opts_t *o, pst_err_t *err)
{
    if (o->background < 1 && (o->method == PST_ATTR_KERNEL_SHAP || !o->baseline))
        return pst_err_set(err, PST_EINVAL, "background must be at least 1 row");
    if (o->method == PST_ATTR_IG && (o->steps < 1 || o->steps > PST_EXPLAIN_BATCH))
        return pst_err_set(err, PST_EINVAL, "steps must be in 1..%d", PST_EXPLAIN_BATCH);
    if (o->method == PST_ATTR_KERNEL_SHAP && o->coalitions < 2 * ex->n_groups)
        return pst_err_set(err, PST_EINVAL,
                           "coalitions must be at least twice the %d input columns", ex->n_groups);
    if (ex->data->n_rows == 0)
        return pst_err_set(err, PST_EINVAL, "no rows to explain");
    return PST_OK;
}

int pst_attributions_compute(const pst_explainer_t *ex, const pst_attr_opts_t *opts,
                             pst_attributions_t *at, pst_err_t *err)
{
    memset(at, 0, sizeof *at);
    pst_attr_opts_t o = *opts;
    int rc = pst_attr_resolve(ex, &o.method, err);
    if (rc == PST_OK)
        rc = check_opts(ex, &o, err);
    if (rc != PST_OK)
        return rc;
    size_t n = ex->data->n_rows;
    at->method = o.method;
    at->n_rows = o.rows > 0 && o.rows < n ? o.rows : n;
    at->n_groups = ex->n_groups;
    at->phi = calloc(at->n_rows * (size_t)at->n_groups, sizeof(double));
    at->fx = calloc(at->n_rows, sizeof(double));
    at->fbase = calloc(at->n_rows, sizeof(double));
    int *all = calloc(n, sizeof(int));
    if (!at->phi || !at->fx || !at->fbase || !all)
        rc = pst_err_set(err, PST_ENOMEM, "out of memory");
    if (rc == PST_OK)
        rc = pst_explainer_classes(ex, all, err);
    at->cls = all; /* only the first n_rows are read */
    if (rc == PST_OK)
        rc = o.method == PST_ATTR_KERNEL_SHAP ? pst_attr_kernel_shap(ex, &o, at, err)
                                              : through_layers(ex, &o, at, err);
    if (rc == PST_OK)
        at->worst_error = completeness_error(at);
    else
        pst_attributions_fini(at);
    return rc;
}
