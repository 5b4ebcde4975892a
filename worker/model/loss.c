/* Mini-batch losses (cross-entropy, regression losses) with their gradients, and the L1/L2 penalty.
 */
#include "worker/model/loss.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "common/err.h"
#include "worker/model/model.h"

#define P_MIN 1e-7
#define P_MAX (1.0 - 1e-7)

static const struct {
    const char *name;
    pst_loss_kind_t kind;
} LOSS_NAMES[] = {
    {"softmax_ce", PST_LOSS_SOFTMAX_CE},
    {"cross_entropy", PST_LOSS_SOFTMAX_CE},
    {"bce", PST_LOSS_BCE},
    {"mse", PST_LOSS_MSE},
    {"mae", PST_LOSS_MAE},
    {"huber", PST_LOSS_HUBER},
};
#define N_LOSS_NAMES (sizeof(LOSS_NAMES) / sizeof(LOSS_NAMES[0]))

int pst_loss_kind_parse(const char *name, pst_loss_kind_t *kind)
{
    for (size_t i = 0; name != NULL && i < N_LOSS_NAMES; i++) {
        if (strcmp(name, LOSS_NAMES[i].name) == 0) {
            *kind = LOSS_NAMES[i].kind;
            return PST_OK;
        }
    }
    return PST_EINVAL;
}

const char *pst_loss_kind_name(pst_loss_kind_t kind)
{
    switch (kind) {
    case PST_LOSS_SOFTMAX_CE:
        return "softmax_ce";
    case PST_LOSS_BCE:
        return "bce";
    case PST_LOSS_MSE:
        return "mse";
    case PST_LOSS_MAE:
        return "mae";
    case PST_LOSS_HUBER:
        return "huber";
    }
    return "unknown";
}

static double clamp_prob(double p)
{
    return p < P_MIN ? P_MIN : (p > P_MAX ? P_MAX : p);
}

/* Class index stored in a float label, or -1 when it is not an integer in [0, n_classes). */
static int class_index(float label, int n_classes)
{
    if (!(label >= 0.0f && label < (float)n_classes) || label != floorf(label))
        return -1;
    return (int)label;
}

/* -mean log p[y]. Fused gradient (p - onehot(y)) / batch is w.r.t. the softmax input. */
static double softmax_ce(const float *out, const float *y, int batch, int n_out, bool fused,
                         float *dout)
{
    double total = 0.0;
    float inv_batch = 1.0f / (float)batch;
    for (int r = 0; r < batch; r++) {
        const float *p = out + (size_t)r * n_out;
        int c = class_index(y[r], n_out);
        if (c < 0)
            return NAN;
        double pc = clamp_prob(p[c]);
        total -= log(pc);
        if (dout == NULL)
            continue;
        float *d = dout + (size_t)r * n_out;
        if (fused) {
            for (int j = 0; j < n_out; j++)
                d[j] = p[j] * inv_batch;
            d[c] -= inv_batch;
        } else {
            memset(d, 0, (size_t)n_out * sizeof(float));
            d[c] = (float)(-1.0 / (pc * batch));
        }
    }
    return total / batch;
}

/* -mean [y log p + (1-y) log(1-p)] for one sigmoid output per row. */
static double bce(const float *out, const float *y, int batch, bool fused, float *dout)
{
    double total = 0.0;
    for (int r = 0; r < batch; r++) {
        double p = clamp_prob(out[r]), t = y[r];
        if (!(t >= 0.0 && t <= 1.0))
            return NAN;
        total -= t * log(p) + (1.0 - t) * log(1.0 - p);
        if (dout != NULL) {
            double g = fused ? out[r] - t : (p - t) / (p * (1.0 - p));
            dout[r] = (float)(g / batch);
        }
    }
    return total / batch;
}

/* Per-row loss of the residual d = out - y, and its derivative w.r.t. out. */
static double regression_term(pst_loss_kind_t kind, double d, double delta, double *grad)
{
    double a = fabs(d), sign = d > 0 ? 1.0 : (d < 0 ? -1.0 : 0.0);
    switch (kind) {
    case PST_LOSS_MSE:
        *grad = 2.0 * d;
        return d * d;
    case PST_LOSS_MAE:
        *grad = sign;
        return a;
    default: /* Huber: quadratic within delta, linear beyond */
        if (a <= delta) {
            *grad = d;
            return 0.5 * d * d;
        }
        *grad = delta * sign;
        return delta * (a - 0.5 * delta);
    }
}

static double regression(pst_loss_kind_t kind, const float *out, const float *y, int batch,
                         float delta, float *dout)
{
    double total = 0.0;
    for (int r = 0; r < batch; r++) {
        double grad;
        total += regression_term(kind, (double)out[r] - y[r], delta, &grad);
        if (dout != NULL)
            dout[r] = (float)(grad / batch);
    }
    return total / batch;
}

/* Returns NaN for arguments the loss cannot be computed on (a label that is not a class index,
 * a BCE target outside [0, 1], a regression loss or BCE with n_out != 1, huber_delta <= 0), so
 * the training loop's finiteness check reports it. */
double pst_loss_eval(pst_loss_kind_t kind, const float *out, const float *y, int batch, int n_out,
                     float huber_delta, bool fused, float *dout)
{
    if (batch <= 0 || n_out <= 0)
        return NAN;
    switch (kind) {
    case PST_LOSS_SOFTMAX_CE:
        return softmax_ce(out, y, batch, n_out, fused, dout);
    case PST_LOSS_BCE:
        return n_out == 1 ? bce(out, y, batch, fused, dout) : NAN;
    case PST_LOSS_HUBER:
        if (!(huber_delta > 0.0f))
            return NAN;
        /* fall through */
    case PST_LOSS_MSE:
    case PST_LOSS_MAE:
        return n_out == 1 ? regression(kind, out, y, batch, huber_delta, dout) : NAN;
    }
    return NAN;
}

/* l1 * sum|w| + l2/2 * sum w^2 over one tensor; adds l1 sign(w) + l2 w into g when g != NULL. */
static double tensor_penalty(const float *w, float *g, size_t n, float l1, float l2)
{
    double abs_sum = 0.0, sq_sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        abs_sum += fabsf(w[i]);
        sq_sum += (double)w[i] * w[i];
    }
    if (g != NULL) {
        for (size_t i = 0; i < n; i++) {
            float sign = (float)(w[i] > 0.0f) - (float)(w[i] < 0.0f);
            g[i] += l1 * sign + l2 * w[i];
        }
    }
    return l1 * abs_sum + 0.5 * l2 * sq_sum;
}

double pst_loss_penalty(struct pst_model *model, float l1, float l2, bool add_grad)
{
    if (l1 == 0.0f && l2 == 0.0f)
        return 0.0;
    const float *params = pst_model_params(model);
    float *grads = add_grad ? pst_model_grads(model) : NULL;
    double total = 0.0;
    for (int t = 0; t < pst_model_n_tensors(model); t++) {
        const pst_tensor_info_t *info = pst_model_tensor(model, t);
        if (info->is_bias || info->frozen)
            continue;
        total += tensor_penalty(params + info->offset, grads ? grads + info->offset : NULL,
                                info->size, l1, l2);
    }
    return total;
}
