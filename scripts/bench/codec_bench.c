/* transport.codec auto against raw, push + pull through one BSP server, on three payloads: dense
 * float32 gradients, sparse keys + rows, and floats on int8 levels (a quantised gradient). The two
 * codecs run in alternation, so both see the same machine load. */
#include "scripts/bench/bench_util.h"

#include <math.h>
#include <string.h>

#include "common/log.h"
#include "common/rng.h"
#include "worker/psclient.h"

#define N_DENSE (1u << 20) /* floats of the dense payloads (4 MiB) */
#define N_KEYS (1u << 16)  /* sparse: keys per request */
#define WIDTH 8u           /* sparse: floats per row (2 MiB of rows) */

typedef enum { DENSE, SPARSE, INT8_LEVELS, N_KINDS } kind_t;
static const char *kind_names[N_KINDS] = {"dense float32", "sparse keys+rows", "int8 levels"};

typedef struct payload {
    float *grad; /* (N_DENSE) or (N_KEYS, WIDTH) */
    float *dst;
    uint64_t *keys; /* sparse: (N_KEYS) sorted unique */
} payload_t;

typedef struct runner {
    kind_t kind;
    pst_codec_t codec;
    pst_psclient_t *client;
    int tensor;
    uint64_t clock;
    double *gbs; /* (reps) */
} runner_t;

static void check(int rc, const pst_err_t *err)
{
    if (rc != PST_OK)
        bench_die("client", err->msg);
}

static void make_payload(kind_t kind, payload_t *p, pst_rng_t *rng)
{
    size_t n = kind == SPARSE ? (size_t)N_KEYS * WIDTH : N_DENSE;
    p->grad = malloc(n * sizeof(float));
    p->dst = malloc(n * sizeof(float));
    p->keys = kind == SPARSE ? malloc(N_KEYS * sizeof(uint64_t)) : NULL;
    for (size_t i = 0; i < n; i++)
        p->grad[i] = (float)(1e-3 * pst_rng_normal(rng));
    if (kind == INT8_LEVELS) {
        /* What int8 with per-block scales leaves of a gradient: q * scale, q in [-127, 127]. */
        for (size_t b = 0; b < n; b += 256) {
            float scale = 0;
            for (size_t i = b; i < b + 256; i++)
                scale = fmaxf(scale, fabsf(p->grad[i]));
            scale /= 127.0f;
            for (size_t i = b; i < b + 256; i++)
                p->grad[i] = roundf(p->grad[i] / scale) * scale;
        }
    }
    for (size_t i = 0; kind == SPARSE && i < N_KEYS; i++)
        p->keys[i] = i * 977 + pst_rng_below(rng, 977); /* sorted, unique, hashed-looking gaps */
}

static void runner_open(runner_t *r, const char *endpoint, uint32_t tensor_id, int reps)
{
    const char *endpoints[1] = {endpoint};
    pst_psclient_cfg_t cfg;
    pst_psclient_cfg_defaults(&cfg);
    cfg.endpoints = endpoints;
    cfg.n_servers = 1;
    cfg.push_codec = r->codec;
    cfg.pull_codec = r->codec;
    pst_err_t err = {0};
    r->client = pst_psclient_new(&cfg, &err);
    if (r->client == NULL)
        bench_die("client", err.msg);
    if (r->kind == SPARSE)
        r->tensor = pst_psclient_register_sparse(r->client, 0, tensor_id, WIDTH, 0.01f, 1, &err);
    else
        r->tensor = pst_psclient_register_dense(r->client, 0, tensor_id, N_DENSE, &err);
    float *init = r->kind == SPARSE ? NULL : calloc(N_DENSE, sizeof(float));
    check(r->tensor < 0 ? r->tensor
                        : pst_psclient_init_on_servers(r->client, r->tensor, init, NULL, &err),
          &err);
    free(init);
    r->gbs = calloc((size_t)reps, sizeof *r->gbs);
}

/* One training step's traffic: push the gradient of clock c, pull the weights of clock c + 1. */
static void runner_step(runner_t *r, payload_t *p)
{
    pst_err_t err = {0};
    pst_ticket_t push, pull;
    if (r->kind == SPARSE) {
        check(pst_psclient_push_sparse(r->client, r->tensor, p->keys, N_KEYS, p->grad, r->clock,
                                       1e-6f, &push, &err),
              &err);
        check(pst_psclient_pull_sparse(r->client, r->tensor, p->keys, N_KEYS, p->dst, r->clock + 1,
                                       &pull, &err),
              &err);
    } else {
        check(pst_psclient_push(r->client, r->tensor, p->grad, r->clock, 1e-6f, &push, &err), &err);
        check(pst_psclient_pull(r->client, r->tensor, p->dst, r->clock + 1, &pull, &err), &err);
    }
    check(pst_psclient_wait(r->client, push, &err), &err);
    check(pst_psclient_wait(r->client, pull, &err), &err);
    r->clock++;
}

/* Raw bytes one step moves: values both ways, plus the keys both ways for sparse. */
static double step_bytes(kind_t kind)
{
    if (kind == SPARSE)
        return 2.0 * N_KEYS * (WIDTH * sizeof(float) + sizeof(uint64_t));
    return 2.0 * N_DENSE * sizeof(float);
}

static double time_step(runner_t *r, payload_t *p)
{
    double t0 = bench_now();
    runner_step(r, p);
    return bench_now() - t0;
}

/* The push choice auto made on the server's link, as report.json states it. */
static void print_choice(const runner_t *r)
{
    pst_psclient_codec_choice_t c[4];
    size_t n = pst_psclient_codec_choices(r->client, c, 4);
    for (size_t i = 0; i < n && i < 4; i++) {
        const pst_wire_auto_choice_t *a = &c[i].choice;
        printf("      auto chose %s (%s): %s ratio %.3f, encode %.0f MB/s, decode %.0f MB/s, "
               "link %.0f MB/s\n",
               pst_codec_name(a->chosen), pst_codec_auto_why_name(a->why),
               pst_codec_name(a->candidate), a->ratio, a->encode_bps / 1e6, a->decode_bps / 1e6,
               a->link_bps / 1e6);
    }
}

int main(int argc, char **argv)
{
    int reps = 5, iters = 20;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc)
            iters = atoi(argv[++i]);
        else
            reps = 0;
    }
    if (reps <= 0 || iters <= 0) {
        fprintf(stderr, "usage: codec_bench [--reps R] [--iters N]\n");
        return 2;
    }
    pst_log_set_level(PST_LOG_WARN);
    printf("codec_bench: auto against raw, push + pull through one BSP server on TCP loopback, "
           "median of %d repetitions x %d steps, step by step in turn\n",
           reps, iters);
    bench_server_t srv;
    bench_server_start(&srv, 1);
    bench_pin(0, "worker");
    pst_rng_t rng;
    pst_rng_init(&rng, 3);
    payload_t payloads[N_KINDS];
    runner_t runners[2 * N_KINDS];
    for (int k = 0; k < N_KINDS; k++) {
        make_payload((kind_t)k, &payloads[k], &rng);
        for (int c = 0; c < 2; c++) {
            runner_t *r = &runners[2 * k + c];
            *r = (runner_t){.kind = (kind_t)k, .codec = c ? PST_CODEC_AUTO : PST_CODEC_RAW};
            runner_open(r, srv.endpoint, (uint32_t)(2 * k + c), reps);
        }
    }
    /* Step by step in turn, so raw and auto see the same moments of the machine's load. */
    for (int rep = -1; rep < reps; rep++) {
        int n = rep < 0 ? 3 : iters; /* rep -1 warms up (and lets auto measure) */
        double seconds[2 * N_KINDS] = {0};
        for (int s = 0; s < n; s++) {
            for (int i = 0; i < 2 * N_KINDS; i++)
                seconds[i] += time_step(&runners[i], &payloads[runners[i].kind]);
        }
        for (int i = 0; rep >= 0 && i < 2 * N_KINDS; i++)
            runners[i].gbs[rep] = step_bytes(runners[i].kind) * n / seconds[i] / 1e9;
    }
    printf("    payload            raw GB/s  auto GB/s  auto/raw  raw spread  auto never slower\n");
    int failures = 0;
    double *paired = calloc((size_t)reps, sizeof(double));
    for (int k = 0; k < N_KINDS; k++) {
        runner_t *raw = &runners[2 * k], *aut = &runners[2 * k + 1];
        /* auto/raw within each repetition (the two ran step by step in turn), then the median. */
        for (int rep = 0; rep < reps; rep++)
            paired[rep] = aut->gbs[rep] / raw->gbs[rep];
        double ratio = bench_median(paired, reps);
        double a = bench_median(aut->gbs, reps), r = bench_median(raw->gbs, reps);
        double lo = raw->gbs[0], hi = raw->gbs[reps - 1]; /* sorted by the median */
        /* Slower only beyond the spread of raw's own repetitions counts as slower. */
        double spread = (hi - lo) / r;
        bool met = ratio >= 1.0 - spread;
        failures += !met;
        printf("    %-17s  %8.2f  %9.2f  %8.3f  %9.1f%%  %s\n", kind_names[k], r, a, ratio,
               100.0 * spread, met ? "met" : "NOT met");
        print_choice(aut);
    }
    free(paired);
    pst_err_t err = {0};
    for (int i = 0; i < 2 * N_KINDS; i++) {
        if (i + 1 == 2 * N_KINDS)
            check(pst_psclient_shutdown(runners[i].client, &err), &err);
        pst_psclient_destroy(&runners[i].client);
        free(runners[i].gbs);
    }
    pthread_join(srv.thread, NULL);
    pst_server_destroy(&srv.srv);
    for (int k = 0; k < N_KINDS; k++) {
        free(payloads[k].grad);
        free(payloads[k].dst);
        free(payloads[k].keys);
    }
    return failures == 0 ? 0 : 3;
}
