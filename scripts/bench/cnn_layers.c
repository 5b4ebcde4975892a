/* Times training steps (forward and backward) of the fashion_cnn layer stack on random data,
 * in thread CPU time, and prints each parameter layer's GEMM rate in GFLOP/s and as a share of
 * the sgemm rate measured the same way on the CNN's largest product. usage: cnn_layers [STEPS] */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/rng.h"
#include "worker/model/model.h"

#define BATCH 64
#define N_PARAM_LAYERS 4

/* The thread's CPU seconds: other work on a loaded machine does not count against a step. */
static double cpu_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Seconds spent from one parameter layer's hook to the next: layer k's forward group runs from
 * before_forward(k) to before_forward(k + 1) (or the forward's end); its backward group from
 * after_backward(k + 1) (or the backward's start) to after_backward(k). */
typedef struct timing {
    double mark;
    double fwd[N_PARAM_LAYERS], bwd[N_PARAM_LAYERS];
    int last;
} timing_t;

static void before_forward(void *ctx, int k)
{
    timing_t *t = ctx;
    double now = cpu_seconds();
    if (k > 0)
        t->fwd[k - 1] += now - t->mark;
    t->mark = now;
}

static void after_backward(void *ctx, int k)
{
    timing_t *t = ctx;
    double now = cpu_seconds();
    t->bwd[k] += now - t->mark;
    t->mark = now;
}

/* GFLOP/s of cblas_sgemm on the second convolution's forward product over a batch of 64
 * (64 x 288 times 288 x 12544), in thread CPU time, the best of 5 rounds of 5. */
static double sgemm_rate(void)
{
    enum { M = 64, N = 12544, K = 288 };
    float *a = calloc((size_t)M * K, sizeof(float)), *b = calloc((size_t)K * N, sizeof(float));
    float *c = calloc((size_t)M * N, sizeof(float));
    double best = 0.0;
    for (size_t i = 0; a && b && c && i < (size_t)K * N; i++)
        b[i] = 0.25f, a[i % ((size_t)M * K)] = 0.5f;
    for (int round = 0; a && b && c && round < 5; round++) {
        double t0 = cpu_seconds();
        for (int r = 0; r < 5; r++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, a, K, b, N, 0.0f,
                        c, N);
        double rate = 5 * 2.0 * M * N * K / (cpu_seconds() - t0) / 1e9;
        best = rate > best ? rate : best;
    }
    free(a);
    free(b);
    free(c);
    return best;
}

int main(int argc, char **argv)
{
    int steps = argc > 1 ? atoi(argv[1]) : 100;
    if (steps < 1 || argc > 2) {
        fprintf(stderr, "usage: cnn_layers [STEPS]\n");
        return 2;
    }
    double ceiling = sgemm_rate();
    pst_layer_spec_t spec[] = {
        {.kind = PST_LAYER_INPUT, .channels = 1, .height = 28, .width = 28},
        {.kind = PST_LAYER_CONV2D, .channels = 32, .kernel = 3, .stride = 1, .pad = 1},
        {.kind = PST_LAYER_RELU},
        {.kind = PST_LAYER_MAXPOOL2D, .kernel = 2, .stride = 2},
        {.kind = PST_LAYER_CONV2D, .channels = 64, .kernel = 3, .stride = 1, .pad = 1},
        {.kind = PST_LAYER_RELU},
        {.kind = PST_LAYER_MAXPOOL2D, .kernel = 2, .stride = 2},
        {.kind = PST_LAYER_FLATTEN},
        {.kind = PST_LAYER_DENSE, .units = 128},
        {.kind = PST_LAYER_RELU},
        {.kind = PST_LAYER_DENSE, .units = 10},
        {.kind = PST_LAYER_SOFTMAX}};
    pst_err_t err = {0};
    pst_model_t *m = pst_model_new(784, spec, (int)(sizeof spec / sizeof spec[0]), BATCH, &err);
    if (m == NULL) {
        fprintf(stderr, "cnn_layers: %s\n", err.msg);
        return 1;
    }
    pst_rng_t rng;
    pst_rng_init(&rng, 1);
    float *params = pst_model_params(m);
    for (size_t i = 0; i < pst_model_n_params(m); i++)
        params[i] = 0.1f * ((float)pst_rng_uniform(&rng) - 0.5f);
    static float x[BATCH * 784], dout[BATCH * 10];
    for (int i = 0; i < BATCH * 784; i++)
        x[i] = (float)pst_rng_uniform(&rng);
    for (int i = 0; i < BATCH * 10; i++)
        dout[i] = (float)pst_rng_uniform(&rng) - 0.5f;

    timing_t t = {0};
    pst_model_layer_hooks_t hooks = {.ctx = &t, before_forward, after_backward};
    for (int warm = 0; warm < 5; warm++) {
        pst_model_forward(m, x, BATCH, true, &rng);
        pst_model_backward(m, dout, BATCH, true);
    }
    pst_model_set_layer_hooks(m, &hooks);
    memset(&t, 0, sizeof t);
    double t0 = cpu_seconds();
    for (int s = 0; s < steps; s++) {
        t.mark = cpu_seconds();
        pst_model_forward(m, x, BATCH, true, &rng);
        double now = cpu_seconds();
        t.fwd[N_PARAM_LAYERS - 1] += now - t.mark;
        t.mark = now;
        pst_model_backward(m, dout, BATCH, true);
    }
    double total = cpu_seconds() - t0;

    /* GEMM flops per sample (multiply-add = 2) of each parameter layer's forward, and its
     * backward: the weight gradient, plus the input gradient for every layer but the first. */
    const double fwd_flop[N_PARAM_LAYERS] = {2.0 * 32 * 9 * 784, 2.0 * 64 * 288 * 196,
                                             2.0 * 3136 * 128, 2.0 * 128 * 10};
    const char *name[N_PARAM_LAYERS] = {"conv1 + relu + pool", "conv2 + relu + pool",
                                        "dense 128 + relu", "dense 10 + softmax"};
    printf("%d steps of batch %d, thread CPU time: %.2f ms a step, %.0f samples/s\n", steps, BATCH,
           1e3 * total / steps, steps * BATCH / total);
    printf("sgemm 64 x 288 x 12544 on this core, thread CPU time: %.1f GFLOP/s (the 100%% below)\n",
           ceiling);
    printf("%-22s %8s %8s %12s %12s\n", "layer group", "fwd ms", "bwd ms", "fwd GFLOP/s",
           "bwd GFLOP/s");
    for (int k = 0; k < N_PARAM_LAYERS; k++) {
        double bwd_flop = fwd_flop[k] * (k == 0 ? 1 : 2);
        double fwd_rate = fwd_flop[k] * BATCH * steps / t.fwd[k] / 1e9;
        double bwd_rate = bwd_flop * BATCH * steps / t.bwd[k] / 1e9;
        printf("%-22s %8.3f %8.3f %12.1f %12.1f", name[k], 1e3 * t.fwd[k] / steps,
               1e3 * t.bwd[k] / steps, fwd_rate, bwd_rate);
        printf("   (%3.0f%% and %3.0f%%)\n", 100 * fwd_rate / ceiling, 100 * bwd_rate / ceiling);
    }
    pst_model_destroy(&m);
    return 0;
}
