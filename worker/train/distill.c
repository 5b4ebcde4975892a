/* Knowledge distillation from a model or ensemble teacher (see distill.h). */
#include "worker/train/distill.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "worker/model/ensemble.h"
#include "worker/model/model.h"
#include "worker/model/modelfile.h"
#include "worker/train/distill_cache.h"

/* Teacher probabilities are floored here before their logarithm. */
#define PROB_FLOOR 1e-12

/* One network of the teacher: its model and the map from student features to its inputs. */
typedef struct teacher_net {
    pst_model_t *model;
    int width;    /* inputs the layers take */
    size_t *cols; // (width) source column of each input, or NULL: 0..width-1
    float *a, *b; // (n_source) input = a x + b per source column
    int n_source; /* columns before selection */
} teacher_net_t;

struct pst_distill {
    pst_ensemble_t ens;  /* the file: one member without meta for a single model */
    teacher_net_t *nets; // (n_members)
    teacher_net_t meta;  /* stacking, blending; model NULL otherwise */
    int n_classes, n_inputs, max_batch;
    double temperature, alpha;
    float *member_probs; // (n_members, max_batch, n_classes)
    float *stack;        // (max_batch, n_members * n_classes) meta inputs
    float *in;           // (max_batch, widest input) one network's mapped inputs
    float *probs;        // (max_batch, n_classes) the teacher's output
    float *scores;       // (max_batch, n_classes) its soft-target scores (see teacher_scores)
    pst_distill_cache_t *cache; /* scores of the rows seen, by content */
    float *miss_x;              // (max_batch, n_inputs) rows of a batch the cache lacks
    int *miss_at;               // (max_batch) their places in the batch
    float *batch_scores;        // (max_batch, n_classes) a batch's scores, cached or not
    size_t teacher_rows;        /* rows the teacher ran on */
};

/* x_pixel = x_pre / scale + shift undoes a preprocessing (fill only concerns missing cells). */
static void affine_from(const pst_preproc_t *pp, size_t j, double *to_pixel_a, double *to_pixel_b,
                        double *pixel_scale)
{
    *to_pixel_a = pp ? 1.0 / pp->scale[j] : 1.0;
    *to_pixel_b = pp ? pp->shift[j] : 0.0;
    *pixel_scale = pp ? pp->pixel_scale : 1.0;
}

/* The map from source features (student space, or raw for a meta model when src is NULL) to
 * mf's preprocessed inputs, and its column selection. */
static int net_init(teacher_net_t *t, const pst_modelfile_t *mf, const pst_preproc_t *src,
                    int max_batch, pst_err_t *err)
{
    t->n_source = mf->n_inputs;
    t->width = pst_modelfile_width(mf);
    t->a = malloc((size_t)t->n_source * sizeof(float));
    t->b = malloc((size_t)t->n_source * sizeof(float));
    if (!t->a || !t->b)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    for (int j = 0; j < t->n_source; j++) {
        double sa, sb, sps;
        affine_from(src, (size_t)j, &sa, &sb, &sps);
        double tps = mf->pixel_scale > 0 ? mf->pixel_scale : 1.0;
        double r = tps / sps;
        double tsh = mf->shift ? mf->shift[j] : 0.0, tsc = mf->scale ? mf->scale[j] : 1.0;
        t->a[j] = (float)(sa * r * tsc);
        t->b[j] = (float)((sb * r - tsh) * tsc);
    }
    if (mf->n_columns > 0) {
        t->cols = malloc((size_t)mf->n_columns * sizeof *t->cols);
        if (!t->cols)
            return pst_err_set(err, PST_ENOMEM, "out of memory");
        memcpy(t->cols, mf->columns, (size_t)mf->n_columns * sizeof *t->cols);
    }
    t->model = pst_modelfile_build(mf, max_batch, err);
    return t->model ? PST_OK : pst_err_code(err, PST_EFORMAT);
}

static void net_fini(teacher_net_t *t)
{
    pst_model_destroy(&t->model);
    free(t->cols);
    free(t->a);
    free(t->b);
    memset(t, 0, sizeof *t);
}

/* The network's output rows as class probabilities (batch, n_classes). */
static void net_probs(teacher_net_t *t, const float *x, int batch, float *in, int n_classes,
                      float *probs)
{
    for (int i = 0; i < batch; i++) {
        const float *row = x + (size_t)i * t->n_source;
        float *dst = in + (size_t)i * t->width;
        for (int c = 0; c < t->width; c++) {
            size_t j = t->cols ? t->cols[c] : (size_t)c;
            dst[c] = t->a[j] * row[j] + t->b[j];
        }
    }
    const float *out = pst_model_forward(t->model, in, batch, false, NULL);
    pst_ensemble_outputs_to_probs(out, (size_t)batch, pst_model_n_outputs(t->model), n_classes,
                                  probs);
}

static int load_teacher(pst_ensemble_t *e, const char *path, pst_err_t *err)
{
    bool is_ensemble = false;
    int rc = pst_ensemble_probe(path, &is_ensemble, err);
    if (rc != PST_OK || is_ensemble)
        return rc ? rc : pst_ensemble_load(e, path, err);
    memset(e, 0, sizeof *e);
    e->members = calloc(1, sizeof *e->members);
    if (!e->members)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    if ((rc = pst_modelfile_load(&e->members[0], path, err)) != PST_OK)
        return rc;
    e->n_members = 1;
    return PST_OK;
}

/* The teacher must classify the student's classes from the student's columns. */
static int check_teacher(const pst_ensemble_t *e, const pst_distill_student_t *s, const char *path,
                         pst_err_t *err)
{
    const pst_modelfile_t *first = &e->members[0];
    if (first->task != PST_TASK_CLASSIFICATION)
        return pst_err_set(err, PST_EINVAL, "%s: the teacher is not a classifier", path);
    int width = pst_ensemble_width(first->task, first->n_classes);
    if (width != s->n_classes)
        return pst_err_set(err, PST_EINVAL, "%s: the teacher has %d classes, the model %d outputs",
                           path, width, s->n_classes);
    for (int m = 0; m < e->n_members; m++)
        if (e->members[m].n_inputs != s->n_inputs)
            return pst_err_set(err, PST_EINVAL,
                               "%s: the teacher takes %d input features, the training data has %d",
                               path, e->members[m].n_inputs, s->n_inputs);
    return PST_OK;
}

static int distill_init(pst_distill_t *d, const char *path, const pst_distill_student_t *s,
                        pst_err_t *err)
{
    int rc = load_teacher(&d->ens, path, err);
    if (rc == PST_OK)
        rc = check_teacher(&d->ens, s, path, err);
    if (rc != PST_OK)
        return rc;
    int n = d->ens.n_members, k = s->n_classes, widest = s->n_inputs;
    d->nets = calloc(n > 0 ? (size_t)n : 1, sizeof *d->nets);
    if (!d->nets)
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", path);
    for (int m = 0; m < n && rc == PST_OK; m++)
        rc = net_init(&d->nets[m], &d->ens.members[m], s->pp, d->max_batch, err);
    if (rc == PST_OK && d->ens.meta) {
        rc = net_init(&d->meta, d->ens.meta, NULL, d->max_batch, err);
        widest = widest > n * k ? widest : n * k;
    }
    size_t b = (size_t)d->max_batch;
    d->member_probs = malloc((size_t)n * b * (size_t)k * sizeof(float));
    d->stack = malloc(b * (size_t)(n * k) * sizeof(float));
    d->in = malloc(b * (size_t)widest * sizeof(float));
    d->probs = malloc(b * (size_t)k * sizeof(float));
    d->scores = malloc(b * (size_t)k * sizeof(float));
    d->cache = pst_distill_cache_new(s->n_inputs, k, 0);
    d->miss_x = malloc(b * (size_t)s->n_inputs * sizeof(float));
    d->miss_at = malloc(b * sizeof *d->miss_at);
    d->batch_scores = malloc(b * (size_t)k * sizeof(float));
    if (rc == PST_OK && (!d->member_probs || !d->stack || !d->in || !d->probs || !d->scores ||
                         !d->cache || !d->miss_x || !d->miss_at || !d->batch_scores))
        rc = pst_err_set(err, PST_ENOMEM, "out of memory");
    return rc == PST_OK ? rc : pst_err_prefix(err, rc, "%s: ", path);
}

pst_distill_t *pst_distill_new(const char *path, const pst_distill_student_t *student,
                               double temperature, double alpha, int max_batch, pst_err_t *err)
{
    pst_distill_t *d = calloc(1, sizeof *d);
    if (!d) {
        pst_err_set(err, PST_ENOMEM, "train.teacher: out of memory");
        return NULL;
    }
    d->n_classes = student->n_classes;
    d->n_inputs = student->n_inputs;
    d->max_batch = max_batch;
    d->temperature = temperature;
    d->alpha = alpha;
    int rc = distill_init(d, path, student, err);
    if (rc != PST_OK) {
        pst_err_prefix(err, rc, "train.teacher: ");
        pst_distill_destroy(&d);
    }
    return d;
}

void pst_distill_destroy(pst_distill_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pst_distill_t *d = *self_p;
    for (int m = 0; d->nets && m < d->ens.n_members; m++)
        net_fini(&d->nets[m]);
    net_fini(&d->meta);
    free(d->nets);
    pst_ensemble_fini(&d->ens);
    free(d->member_probs);
    free(d->stack);
    free(d->in);
    pst_distill_cache_destroy(&d->cache);
    free(d->miss_x);
    free(d->miss_at);
    free(d->batch_scores);
    free(d->probs);
    free(d->scores);
    free(d);
    *self_p = NULL;
}

const float *pst_distill_teacher_probs(pst_distill_t *d, const float *x, int batch)
{
    d->teacher_rows += (size_t)batch;
    int n = d->ens.n_members, k = d->n_classes;
    size_t block = (size_t)d->max_batch * (size_t)k;
    const float *member[n];
    for (int m = 0; m < n; m++) {
        float *p = d->member_probs + (size_t)m * block;
        net_probs(&d->nets[m], x, batch, d->in, k, p);
        member[m] = p;
    }
    if (d->meta.model) {
        pst_ensemble_stack_features(member, n, (size_t)batch, k, d->stack);
        net_probs(&d->meta, d->stack, batch, d->in, k, d->probs);
    } else if (n == 1) {
        memcpy(d->probs, member[0], (size_t)batch * (size_t)k * sizeof(float));
    } else {
        /* the combination cannot fail: the file's weights and voting were checked on load */
        pst_ensemble_vote(d->ens.voting, true, member, d->ens.weights, n, (size_t)batch, k,
                          d->probs, NULL);
    }
    return d->probs;
}

/* softmax(v / t) of one row into out; v may be logits or log-probabilities. */
static void soft_row(const double *v, int k, double t, double *out)
{
    double top = v[0];
    for (int j = 1; j < k; j++)
        top = v[j] > top ? v[j] : top;
    double sum = 0;
    for (int j = 0; j < k; j++)
        sum += out[j] = exp((v[j] - top) / t);
    for (int j = 0; j < k; j++)
        out[j] /= sum;
}

/* True when the teacher is one network ending in a softmax over the classes: its logits are then
 * at hand, and the soft targets come from them rather than from rounded probabilities. */
static bool has_logits(const pst_distill_t *d)
{
    if (d->ens.n_members != 1 || d->meta.model)
        return false;
    const pst_model_t *m = d->nets[0].model;
    int last = pst_model_n_layers(m) - 1;
    return pst_model_n_outputs(m) == d->n_classes &&
           pst_model_layer(m, last)->kind == PST_LAYER_SOFTMAX;
}

const float *pst_distill_teacher_scores(pst_distill_t *d, const float *x, int batch)
{
    const float *p = pst_distill_teacher_probs(d, x, batch);
    size_t n = (size_t)batch * (size_t)d->n_classes;
    if (has_logits(d)) { /* the forward just run left them before the softmax */
        memcpy(d->scores, pst_model_pre_output(d->nets[0].model), n * sizeof(float));
        return d->scores;
    }
    for (size_t i = 0; i < n; i++) /* softmax(log p / T) is p^(1/T) renormalised */
        d->scores[i] = (float)log(p[i] > PROB_FLOOR ? p[i] : PROB_FLOOR);
    return d->scores;
}

double pst_distill_loss_scores(double temperature, double alpha, const float *scores,
                               const float *logits, const float *y, int batch, int n_classes,
                               float *dlogits)
{
    int k = n_classes;
    double v[k], q[k], ps_t[k], ps[k], total = 0, t = temperature;
    for (int i = 0; i < batch; i++) {
        const float *tz = scores + (size_t)i * k, *z = logits + (size_t)i * k;
        for (int j = 0; j < k; j++)
            v[j] = tz[j];
        soft_row(v, k, t, q); /* the teacher softened */
        for (int j = 0; j < k; j++)
            v[j] = z[j];
        soft_row(v, k, t, ps_t);
        soft_row(v, k, 1.0, ps);
        double kl = 0;
        for (int j = 0; j < k; j++)
            if (q[j] > 0)
                kl += q[j] * (log(q[j]) - log(ps_t[j] > 1e-300 ? ps_t[j] : 1e-300));
        int label = (int)y[i];
        double ce = -log(ps[label] > 1e-300 ? ps[label] : 1e-300);
        total += alpha * t * t * kl + (1.0 - alpha) * ce;
        if (!dlogits)
            continue;
        /* d/dz of T^2 KL is T (ps_t - q); of CE it is ps - onehot */
        for (int j = 0; j < k; j++)
            dlogits[(size_t)i * k + j] =
                (float)((alpha * t * (ps_t[j] - q[j]) + (1.0 - alpha) * (ps[j] - (j == label))) /
                        batch);
    }
    return batch > 0 ? total / batch : 0.0;
}

double pst_distill_loss_probs(double temperature, double alpha, const float *teacher,
                              const float *logits, const float *y, int batch, int n_classes,
                              float *dlogits)
{
    int k = n_classes;
    double total = 0;
    for (int i = 0; i < batch; i++) { /* row by row: no buffer for the scores of a whole batch */
        float v[k];
        for (int j = 0; j < k; j++) {
            float p = teacher[(size_t)i * k + j];
            v[j] = (float)log(p > PROB_FLOOR ? p : PROB_FLOOR);
        }
        total += pst_distill_loss_scores(temperature, alpha, v, logits + (size_t)i * k, y + i, 1, k,
                                         dlogits ? dlogits + (size_t)i * k : NULL);
    }
    if (dlogits)
        for (size_t j = 0; j < (size_t)batch * (size_t)k; j++)
            dlogits[j] /= (float)batch;
    return batch > 0 ? total / batch : 0.0;
}

const float *pst_distill_cached_scores(pst_distill_t *d, const float *x, int batch)
{
    int k = d->n_classes, n_miss = 0;
    size_t row = (size_t)d->n_inputs, kb = (size_t)k * sizeof(float);
    for (int i = 0; i < batch; i++) {
        const float *hit = pst_distill_cache_find(d->cache, x + (size_t)i * row);
        if (hit) {
            memcpy(d->batch_scores + (size_t)i * k, hit, kb);
        } else {
            memcpy(d->miss_x + (size_t)n_miss * row, x + (size_t)i * row, row * sizeof(float));
            d->miss_at[n_miss++] = i;
        }
    }
    if (n_miss == 0)
        return d->batch_scores;
    const float *s = pst_distill_teacher_scores(d, d->miss_x, n_miss);
    for (int m = 0; m < n_miss; m++) {
        memcpy(d->batch_scores + (size_t)d->miss_at[m] * k, s + (size_t)m * k, kb);
        /* a full cache only means this row's teacher runs again next time */
        (void)pst_distill_cache_put(d->cache, d->miss_x + (size_t)m * row, s + (size_t)m * k);
    }
    return d->batch_scores;
}

size_t pst_distill_teacher_rows(const pst_distill_t *d)
{
    return d->teacher_rows;
}

double pst_distill_loss(pst_distill_t *d, const float *x, const float *logits, const float *y,
                        int batch, float *dlogits)
{
    const float *scores = pst_distill_cached_scores(d, x, batch);
    return pst_distill_loss_scores(d->temperature, d->alpha, scores, logits, y, batch, d->n_classes,
                                   dlogits);
}
