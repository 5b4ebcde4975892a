/* pstrain info --cost: parameters, bytes, FLOPs per row, single-row latency percentiles and batch
 * throughput of a dense model as float and as int8, measured on this machine. */
#include "app/cost.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "app/quantize.h"
#include "common/clock.h"
#include "common/rng.h"

#define DEFAULT_SINGLE_ROWS 2000
#define DEFAULT_BATCH_SECS 0.5
#define SYNTHETIC_ROWS 256
#define DATA_ROWS 2048

static bool has_params(pst_layer_kind_t k)
{
    return k == PST_LAYER_DENSE || k == PST_LAYER_CONV2D || k == PST_LAYER_BATCHNORM;
}

/* Multiply-adds and weight zeros of a built model, walking its W tensors in layer order. */
static void count_model(const pst_model_t *m, double *macs, double *zeros, double *weights)
{
    *macs = *zeros = *weights = 0.0;
    const float *p = pst_model_params((pst_model_t *)m);
    int t = 0;
    for (int i = 0; i < pst_model_n_layers(m); i++) {
        pst_layer_kind_t k = pst_model_layer(m, i)->kind;
        if (!has_params(k))
            continue;
        const pst_tensor_info_t *w = pst_model_tensor(m, t);
        t += 2;
        if (k == PST_LAYER_BATCHNORM)
            continue;
        int shape[3];
        pst_model_shape(m, i, shape);
        double positions = k == PST_LAYER_CONV2D ? (double)shape[1] * shape[2] : 1.0;
        *macs += (double)w->size * positions;
        *weights += (double)w->size;
        for (size_t j = 0; j < w->size; j++)
            *zeros += p[w->offset + j] == 0.0f;
    }
}

double pst_cost_flops(const pst_modelfile_t *mf, pst_err_t *err)
{
    pst_model_t *m = pst_modelfile_build(mf, 1, err);
    if (!m)
        return -1.0;
    double macs, zeros, weights;
    count_model(m, &macs, &zeros, &weights);
    pst_model_destroy(&m);
    return 2.0 * macs;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* p50 and p99 of single-row forward times, rows taken in turn from x. */
static int time_single(pst_model_t *m, const float *x, size_t n_rows, int reps, pst_cost_t *c)
{
    double *us = malloc((size_t)reps * sizeof(double));
    if (!us)
        return PST_ENOMEM;
    size_t d = (size_t)pst_model_n_inputs(m);
    for (int i = 0; i < reps / 10; i++) /* warm the caches and the branch predictors */
        pst_model_forward(m, x + (size_t)i % n_rows * d, 1, false, NULL);
    for (int i = 0; i < reps; i++) {
        double t0 = pst_clock_seconds();
        pst_model_forward(m, x + (size_t)i % n_rows * d, 1, false, NULL);
        us[i] = (pst_clock_seconds() - t0) * 1e6;
    }
    qsort(us, (size_t)reps, sizeof *us, by_value);
    c->p50_us = us[reps / 2];
    c->p99_us = us[(size_t)reps * 99 / 100];
    free(us);
    return PST_OK;
}

/* Rows per second of forwards of min(n_rows, PST_COST_BATCH) rows for about secs seconds. */
static void time_batch(pst_model_t *m, const float *x, size_t n_rows, double secs, pst_cost_t *c)
{
    int batch = n_rows < PST_COST_BATCH ? (int)n_rows : PST_COST_BATCH;
    pst_model_forward(m, x, batch, false, NULL);
    double t0 = pst_clock_seconds(), elapsed = 0.0;
    size_t rows = 0;
    while (elapsed < secs) {
        pst_model_forward(m, x, batch, false, NULL);
        rows += (size_t)batch;
        elapsed = pst_clock_seconds() - t0;
    }
    c->rows_per_s = (double)rows / elapsed;
}

int pst_cost_measure(const pst_modelfile_t *mf, const float *x, size_t n_rows,
                     const pst_cost_opts_t *o, pst_cost_t *c, pst_err_t *err)
{
    if (n_rows == 0)
        return pst_err_set(err, PST_EINVAL, "cost: no rows to time");
    pst_model_t *m = pst_modelfile_build(mf, PST_COST_BATCH, err);
    if (!m)
        return pst_err_code(err, PST_EFORMAT);
    double macs, zeros, weights;
    count_model(m, &macs, &zeros, &weights);
    c->params = pst_model_n_params(m);
    c->flops = 2.0 * macs;
    c->weight_zeros = weights > 0 ? zeros / weights : 0.0;
    int rc =
        time_single(m, x, n_rows, o->single_rows > 0 ? o->single_rows : DEFAULT_SINGLE_ROWS, c);
    if (rc == PST_OK)
        time_batch(m, x, n_rows, o->batch_secs > 0 ? o->batch_secs : DEFAULT_BATCH_SECS, c);
    else
        pst_err_set(err, rc, "cost: out of memory");
    pst_model_destroy(&m);
    return rc;
}

/* SYNTHETIC_ROWS rows of N(0, 1) values: what standardised inputs look like. */
static pst_dataset_t *synthetic_rows(const pst_modelfile_t *mf, pst_err_t *err)
{
    size_t d = (size_t)pst_modelfile_width(mf);
    pst_dataset_t *ds = pst_dataset_new(SYNTHETIC_ROWS, d, mf->task);
    if (!ds) {
        pst_err_set(err, PST_ENOMEM, "cost: out of memory");
        return NULL;
    }
    pst_rng_t rng;
    pst_rng_init(&rng, 1);
    for (size_t i = 0; i < SYNTHETIC_ROWS * d; i++)
        ds->x[i] = (float)pst_rng_normal(&rng);
    return ds;
}

static int packed_bytes(const pst_modelfile_t *mf, size_t *bytes, pst_err_t *err)
{
    uint8_t *buf;
    int rc = pst_modelfile_pack(mf, &buf, bytes, err);
    free(buf);
    return rc;
}

static void print_row(FILE *out, const pst_cost_t *c)
{
    fprintf(out, "%-8s %10zu %12zu %12.3f %10.1f %10.1f %12.0f\n", c->variant, c->params, c->bytes,
            c->flops / 1e6, c->p50_us, c->p99_us, c->rows_per_s);
}

static void print_table(FILE *out, const pst_cost_opts_t *o, size_t n_rows, const pst_cost_t *f,
                        const pst_cost_t *q)
{
    fprintf(out, "cost of %s (timed on %zu rows of %s; batch %d; this process, one thread)\n",
            o->model, n_rows, o->data ? o->data : "N(0, 1) values", PST_COST_BATCH);
    fprintf(out, "%-8s %10s %12s %12s %10s %10s %12s\n", "variant", "params", "bytes", "MFLOPs/row",
            "p50_us", "p99_us", "rows/s");
    print_row(out, f);
    print_row(out, q);
    fprintf(out, "int8/float: bytes %.3fx, p50 latency %.3fx, throughput %.3fx\n",
            (double)q->bytes / (double)f->bytes, q->p50_us / f->p50_us,
            q->rows_per_s / f->rows_per_s);
    if (f->weight_zeros >= 0.05)
        fprintf(out,
                "pruned: %.1f%% of the weights are zero; both paths multiply them (no "
                "sparse kernel), so the rows above are the pruned model's costs\n",
                f->weight_zeros * 100.0);
    else
        fprintf(out, "pruned: no (%.2f%% of the weights are zero)\n", f->weight_zeros * 100.0);
}

/* Float then int8 costs of mf; file_bytes is the file's size, given to the variant it holds. */
static int measure_both(pst_modelfile_t *mf, const pst_dataset_t *ds, const pst_cost_opts_t *o,
                        size_t file_bytes, pst_cost_t *f, pst_cost_t *q, pst_err_t *err)
{
    bool was_int8 = mf->quant != NULL;
    pst_quant_t *saved = mf->quant;
    mf->quant = NULL; /* an int8 file's float row runs its dequantised weights in float */
    *f = (pst_cost_t){.variant = "float"};
    int rc = pst_cost_measure(mf, ds->x, ds->n_rows, o, f, err);
    if (rc == PST_OK)
        rc = was_int8 ? packed_bytes(mf, &f->bytes, err) : (f->bytes = file_bytes, PST_OK);
    mf->quant = saved;
    if (rc == PST_OK && !was_int8)
        rc = pst_quantize_modelfile(mf, ds, 100.0, err);
    *q = (pst_cost_t){.variant = "int8"};
    if (rc == PST_OK)
        rc = pst_cost_measure(mf, ds->x, ds->n_rows, o, q, err);
    if (rc == PST_OK)
        rc = was_int8 ? (q->bytes = file_bytes, PST_OK) : packed_bytes(mf, &q->bytes, err);
    return rc;
}

int pst_cost_report(const pst_cost_opts_t *o, FILE *out, pst_err_t *err)
{
    pst_modelfile_t mf;
    struct stat sb;
    if (stat(o->model, &sb) != 0)
        return pst_err_set(err, PST_EIO, "%s: cannot open", o->model);
    int rc = pst_quantize_load_float(o->model, &mf, err);
    if (rc != PST_OK)
        return rc;
    pst_dataset_t *ds = NULL;
    if (o->data)
        rc = pst_quantize_load_rows(&mf, o->model, o->data, DATA_ROWS, &ds, err);
    else if (!(ds = synthetic_rows(&mf, err)))
        rc = pst_err_code(err, PST_ENOMEM);
    pst_cost_t f, q;
    if (rc == PST_OK)
        rc = measure_both(&mf, ds, o, (size_t)sb.st_size, &f, &q, err);
    if (rc == PST_OK)
        print_table(out, o, ds->n_rows, &f, &q);
    pst_dataset_destroy(&ds);
    pst_modelfile_fini(&mf);
    return rc;
}

void pst_cost_print_quant(const pst_modelfile_t *mf, const char *indent, FILE *out)
{
    if (!mf->quant)
        return;
    size_t weights = 0;
    for (int j = 0; j < mf->quant->n_layers; j++)
        weights += (size_t)mf->quant->layers[j].rows * (size_t)mf->quant->layers[j].cols;
    fprintf(out,
            "%squantized: int8, %d layers (%zu weights, per output channel), activations "
            "calibrated by %s on %zu rows\n",
            indent, mf->quant->n_layers, weights, mf->quant->rule, mf->quant->calib_rows);
}
