/* Inference timing of a model file for scripts/bench/prune.sh: single-row latency (p50, p99) and
 * batch throughput with the dense path (sgemm) and with the compressed sparse rows of pruned
 * layers, on the same rows. Prints one JSON line. */
#include "scripts/bench/bench_util.h"

#include <math.h>
#include <string.h>

#include "worker/model/modelfile.h"

#define BATCH 256

typedef struct timing {
    double p50_us, p99_us, rows_per_s;
} timing_t;

/* Single rows one by one, then whole batches, over the n rows of x. */
static timing_t time_model(pst_model_t *m, const float *x, int n, int width, int reps)
{
    double *lat = malloc((size_t)n * reps * sizeof *lat);
    float sink = 0;
    for (int i = 0; i < 200; i++) /* warm caches and the allocator */
        sink += pst_model_forward(m, x + (size_t)(i % n) * width, 1, false, NULL)[0];
    for (int r = 0, k = 0; r < reps; r++)
        for (int i = 0; i < n; i++, k++) {
            double t0 = bench_now();
            sink += pst_model_forward(m, x + (size_t)i * width, 1, false, NULL)[0];
            lat[k] = bench_now() - t0;
        }
    int total = n * reps;
    qsort(lat, (size_t)total, sizeof *lat, bench_cmp_double);
    timing_t t = {lat[total / 2] * 1e6, lat[(int)(total * 0.99)] * 1e6, 0};
    double best = INFINITY;
    for (int r = 0; r < 5; r++) {
        double t0 = bench_now();
        for (int i = 0; i + BATCH <= n; i += BATCH)
            sink += pst_model_forward(m, x + (size_t)i * width, BATCH, false, NULL)[0];
        double s = bench_now() - t0;
        best = s < best ? s : best;
    }
    t.rows_per_s = (double)(n / BATCH * BATCH) / best;
    free(lat);
    if (sink == 12345.678f)
        puts("");
    return t;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        bench_die("usage", "prune_latency MODEL.pst");
    pst_modelfile_t mf;
    pst_err_t err;
    if (pst_modelfile_load(&mf, argv[1], &err) != PST_OK)
        bench_die(argv[1], err.msg);
    int width = pst_modelfile_width(&mf), n = 4096;
    pst_model_t *m = pst_modelfile_build(&mf, BATCH, &err);
    if (!m)
        bench_die(argv[1], err.msg);
    int auto_layers = pst_model_n_sparse_layers(m);
    float *x = malloc((size_t)n * width * sizeof(float));
    pst_rng_t rng;
    pst_rng_init(&rng, 1);
    for (size_t i = 0; i < (size_t)n * width; i++)
        x[i] = (float)pst_rng_uniform(&rng);
    /* the program's own choice, then dense only, then every dense layer compressed for all rows */
    timing_t chosen = time_model(m, x, n, width, 3);
    pst_model_use_sparse(m, 0, 0, NULL);
    timing_t dense = time_model(m, x, n, width, 3);
    pst_model_use_sparse(m, 1.0, BATCH, NULL);
    timing_t sparse = time_model(m, x, n, width, 3);
    size_t zeros = 0;
    for (size_t i = 0; i < mf.n_params; i++)
        zeros += mf.params[i] == 0.0f;
    printf("{\"params\": %zu, \"zeros\": %zu, \"auto_sparse_layers\": %d, "
           "\"auto_p50_us\": %.2f, \"auto_p99_us\": %.2f, \"auto_rows_per_s\": %.0f, "
           "\"dense_p50_us\": %.2f, \"dense_p99_us\": %.2f, \"dense_rows_per_s\": %.0f, "
           "\"sparse_p50_us\": %.2f, \"sparse_p99_us\": %.2f, \"sparse_rows_per_s\": %.0f}\n",
           mf.n_params, zeros, auto_layers, chosen.p50_us, chosen.p99_us, chosen.rows_per_s,
           dense.p50_us, dense.p99_us, dense.rows_per_s, sparse.p50_us, sparse.p99_us,
           sparse.rows_per_s);
    pst_model_destroy(&m);
    pst_modelfile_fini(&mf);
    free(x);
    return 0;
}
