/* Push/pull throughput: plain ZeroMQ round trips against a worker's push + pull through a server,
 * measured in alternation so that both see the same machine load. */
#include "scripts/bench/bench_util.h"

#include <stdbool.h>
#include <string.h>

#include <zmq.h>

#include "common/log.h"
#include "common/rng.h"
#include "worker/psclient.h"

/* Every round trip moves 2 x 4 MiB: there and back, or push and pull. */
#define N_FLOATS (1u << 20)
#define BYTES ((size_t)N_FLOATS * sizeof(float))
#define MAX_CODECS 8
#define TARGET_VS_ZERO_COPY 0.80

enum { ZMQ_COPY = 0, ZMQ_ZERO_COPY = 1 }; /* the two plain ZeroMQ baselines */

typedef struct bench_cfg {
    int reps;  /* repetitions; medians are printed */
    int iters; /* round trips per repetition */
    pst_codec_t codecs[MAX_CODECS];
    int n_codecs;
} bench_cfg_t;

/* ---- (a) plain ZeroMQ: a ROUTER answering every message with its payload ---- */

typedef struct echo {
    void *ctx, *router, *dealer_ctx, *dealer;
    char endpoint[256];
    pthread_t thread;
    float *array; /* the echo side's own copy in copying mode */
} echo_t;

/* Frames: [identity] [mode byte] [payload]. An empty mode frame stops the thread. */
static void *echo_main(void *arg)
{
    echo_t *e = arg;
    bench_pin(1, "echo");
    for (;;) {
        zmq_msg_t id, mode, body;
        zmq_msg_init(&id);
        zmq_msg_init(&mode);
        if (zmq_msg_recv(&id, e->router, 0) < 0 || zmq_msg_recv(&mode, e->router, 0) < 0)
            bench_die("echo", zmq_strerror(zmq_errno()));
        if (zmq_msg_size(&mode) == 0) {
            zmq_msg_close(&id);
            zmq_msg_close(&mode);
            return NULL;
        }
        int copy = *(const char *)zmq_msg_data(&mode) == ZMQ_COPY;
        zmq_msg_send(&id, e->router, ZMQ_SNDMORE);
        zmq_msg_send(&mode, e->router, ZMQ_SNDMORE);
        if (copy) {
            /* Like an application: the floats land in its array and leave from there. */
            if (zmq_recv(e->router, e->array, BYTES, 0) != (int)BYTES)
                bench_die("echo", "short message");
            zmq_send(e->router, e->array, BYTES, 0);
        } else {
            /* Forwarding the received message sends it back without a copy. */
            zmq_msg_init(&body);
            zmq_msg_recv(&body, e->router, 0);
            zmq_msg_send(&body, e->router, 0);
        }
    }
}

static void echo_start(echo_t *e)
{
    e->ctx = zmq_ctx_new();
    e->router = zmq_socket(e->ctx, ZMQ_ROUTER);
    if (zmq_bind(e->router, "tcp://127.0.0.1:*") != 0)
        bench_die("bind", zmq_strerror(zmq_errno()));
    size_t len = sizeof e->endpoint;
    zmq_getsockopt(e->router, ZMQ_LAST_ENDPOINT, e->endpoint, &len);
    e->array = malloc(BYTES);
    memset(e->array, 0, BYTES);
    pthread_create(&e->thread, NULL, echo_main, e);
}

/* The echo's client side: created by the thread that will use it (after it is pinned), like the
 * psclients. */
static void echo_connect(echo_t *e)
{
    e->dealer_ctx = zmq_ctx_new();
    e->dealer = zmq_socket(e->dealer_ctx, ZMQ_DEALER);
    zmq_connect(e->dealer, e->endpoint);
}

static void echo_stop(echo_t *e)
{
    zmq_send(e->dealer, "", 0, 0);
    pthread_join(e->thread, NULL);
    int linger = 0;
    zmq_setsockopt(e->dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(e->dealer);
    zmq_ctx_term(e->dealer_ctx);
    zmq_close(e->router);
    zmq_ctx_term(e->ctx);
    free(e->array);
}

/* One round trip of 4 MiB. Copying: from src into ZeroMQ, back into dst. Zero-copy: sent from
 * src as it is, the answer left in ZeroMQ's buffer. */
static void echo_round_trip(echo_t *e, char mode, const float *src, float *dst)
{
    zmq_send(e->dealer, &mode, 1, ZMQ_SNDMORE);
    if (mode == ZMQ_COPY) {
        zmq_send(e->dealer, src, BYTES, 0);
    } else {
        zmq_msg_t out;
        zmq_msg_init_data(&out, (void *)src, BYTES, NULL, NULL);
        zmq_msg_send(&out, e->dealer, 0);
    }
    char echoed;
    zmq_recv(e->dealer, &echoed, 1, 0);
    if (mode == ZMQ_COPY) {
        if (zmq_recv(e->dealer, dst, BYTES, 0) != (int)BYTES)
            bench_die("echo", "short message");
        return;
    }
    zmq_msg_t in;
    zmq_msg_init(&in);
    if (zmq_msg_recv(&in, e->dealer, 0) != (int)BYTES)
        bench_die("echo", "short message");
    zmq_msg_close(&in);
}

/* ---- (b) psclient push + pull through one BSP server ---- */

static void check(int rc, const pst_err_t *err)
{
    if (rc != PST_OK)
        bench_die("client", err->msg);
}

/* A worker of one codec and one way of stepping, with its own tensor on the server. */
typedef struct runner {
    pst_codec_t codec;
    bool pipelined; /* push and pull in flight together, as a training step issues them */
    pst_psclient_t *client;
    int tensor;
    uint64_t clock;
    double *gbs; /* (reps) */
    pst_psclient_stats_t before;
} runner_t;

static void runner_open(runner_t *r, const char *endpoint, uint32_t tensor_id, const float *init,
                        int reps)
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
    r->tensor = pst_psclient_register_dense(r->client, 0, tensor_id, N_FLOATS, &err);
    check(r->tensor < 0 ? r->tensor
                        : pst_psclient_init_on_servers(r->client, r->tensor, init, NULL, &err),
          &err);
    r->gbs = calloc((size_t)reps, sizeof *r->gbs);
}

/* One step: push the gradient of clock c, pull the weights of clock c + 1 (BSP answers the pull
 * once clock c is applied). */
static void runner_step(runner_t *r, const float *grad, float *w)
{
    pst_err_t err = {0};
    pst_ticket_t push, pull;
    check(pst_psclient_push(r->client, r->tensor, grad, r->clock, 1e-6f, &push, &err), &err);
    if (!r->pipelined)
        check(pst_psclient_wait(r->client, push, &err), &err);
    check(pst_psclient_pull(r->client, r->tensor, w, r->clock + 1, &pull, &err), &err);
    if (r->pipelined)
        check(pst_psclient_wait(r->client, push, &err), &err);
    check(pst_psclient_wait(r->client, pull, &err), &err);
    r->clock++;
}

/* ---- the run ---- */

static int parse_args(int argc, char **argv, bench_cfg_t *cfg)
{
    cfg->reps = 5;
    cfg->iters = 20;
    cfg->n_codecs = 0;
    for (int i = 1; i < argc; i++) {
        int rc = PST_OK;
        if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            cfg->reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc)
            cfg->iters = atoi(argv[++i]);
        else if (strcmp(argv[i], "--codec") == 0 && i + 1 < argc && cfg->n_codecs < MAX_CODECS)
            rc = pst_codec_parse(argv[++i], &cfg->codecs[cfg->n_codecs++]);
        else
            rc = -1;
        if (rc != PST_OK)
            return -1;
    }
    if (cfg->n_codecs == 0) {
        const pst_codec_t all[] = {PST_CODEC_RAW, PST_CODEC_LZ4, PST_CODEC_FP16, PST_CODEC_INT8};
        memcpy(cfg->codecs, all, sizeof all);
        cfg->n_codecs = 4;
    }
    return cfg->reps > 0 && cfg->iters > 0 ? 0 : -1;
}

/* Seconds of one round trip of the echo, or of one step of a runner. */
static double time_echo(echo_t *e, char mode, const float *src, float *dst)
{
    double t0 = bench_now();
    echo_round_trip(e, mode, src, dst);
    return bench_now() - t0;
}

static double time_runner(runner_t *r, const float *grad, float *w)
{
    double t0 = bench_now();
    runner_step(r, grad, w);
    return bench_now() - t0;
}

/* *best_raw: the raw codec's best (b)/a2, or left as it is without a raw runner. */
static void report(const bench_cfg_t *cfg, double *zmq_gbs[2], runner_t *runners, int n_runners,
                   double *best_raw)
{
    double copy = bench_median(zmq_gbs[ZMQ_COPY], cfg->reps);
    double zero = bench_median(zmq_gbs[ZMQ_ZERO_COPY], cfg->reps);
    printf("(a) ZeroMQ DEALER/ROUTER, 4 MiB there and back:\n");
    printf("    a1 zmq_send/zmq_recv between float arrays         %6.2f GB/s\n", copy);
    printf("    a2 zero-copy send, answer left in ZeroMQ's buffer %6.2f GB/s\n", zero);
    printf("(b) psclient push + pull of 1M floats, one BSP server (SGD):\n");
    printf("    codec       step         GB/s  (b)/a1  (b)/a2  wire/raw  push ms  pull ms\n");
    for (int k = 0; k < n_runners; k++) {
        runner_t *r = &runners[k];
        pst_psclient_stats_t after;
        pst_psclient_stats(r->client, &after);
        double wire = (double)(after.bytes_wire - r->before.bytes_wire) /
                      (double)(after.bytes_raw - r->before.bytes_raw);
        double gbs = bench_median(r->gbs, cfg->reps);
        printf("    %-10s  %-10s  %6.2f  %6.2f  %6.2f  %8.3f  %7.2f  %7.2f\n",
               pst_codec_name(r->codec), r->pipelined ? "pipelined" : "sequential", gbs, gbs / copy,
               gbs / zero, wire, after.push_latency_ms, after.pull_latency_ms);
        if (r->codec == PST_CODEC_RAW && gbs / zero > *best_raw)
            *best_raw = gbs / zero;
    }
}

int main(int argc, char **argv)
{
    bench_cfg_t cfg;
    if (parse_args(argc, argv, &cfg) != 0) {
        fprintf(stderr, "usage: pushpull_bench [--reps R] [--iters N] [--codec NAME]...\n");
        return 2;
    }
    pst_log_set_level(PST_LOG_WARN);
    float *init = malloc(BYTES), *grad = malloc(BYTES), *w = malloc(BYTES);
    pst_rng_t rng;
    pst_rng_init(&rng, 1);
    for (size_t i = 0; i < N_FLOATS; i++) {
        init[i] = (float)(0.05 * pst_rng_normal(&rng));
        grad[i] = (float)(1e-3 * pst_rng_normal(&rng));
    }
    printf("pushpull_bench: %u floats (%.1f MiB) per message, TCP loopback, median of %d "
           "repetitions x %d round trips, each contender's round trips in turn\n",
           N_FLOATS, BYTES / 1048576.0, cfg.reps, cfg.iters);

    /* The server side on CPU 1, the worker side (this thread, its ZeroMQ threads) on CPU 0. */
    echo_t echo;
    echo_start(&echo);
    bench_server_t srv;
    bench_server_start(&srv, 1);
    bench_pin(0, "worker");
    echo_connect(&echo);
    /* Raw both ways of stepping, the other codecs pipelined. */
    runner_t runners[MAX_CODECS + 1];
    int n_runners = 0;
    for (int k = 0; k < cfg.n_codecs; k++) {
        if (cfg.codecs[k] == PST_CODEC_RAW)
            runners[n_runners++] = (runner_t){.codec = PST_CODEC_RAW, .pipelined = false};
        runners[n_runners++] = (runner_t){.codec = cfg.codecs[k], .pipelined = true};
    }
    for (int k = 0; k < n_runners; k++)
        runner_open(&runners[k], srv.endpoint, (uint32_t)k, init, cfg.reps);

    double *zmq_gbs[2] = {calloc((size_t)cfg.reps, sizeof(double)),
                          calloc((size_t)cfg.reps, sizeof(double))};
    /* Round trip by round trip in turn, so that every contender sees the same moments of the
     * machine's load; a repetition's GB/s is its bytes over its summed time. */
    double echo_s[2], *runner_s = calloc((size_t)n_runners, sizeof(double));
    for (int r = -1; r < cfg.reps; r++) {
        int n = r < 0 ? 3 : cfg.iters; /* r = -1 warms everything up */
        echo_s[0] = echo_s[1] = 0;
        for (int k = 0; k < n_runners; k++) {
            runner_s[k] = 0;
            if (r == 0)
                pst_psclient_stats(runners[k].client, &runners[k].before);
        }
        for (int i = 0; i < n; i++) {
            for (int mode = ZMQ_COPY; mode <= ZMQ_ZERO_COPY; mode++)
                echo_s[mode] += time_echo(&echo, (char)mode, grad, w);
            for (int k = 0; k < n_runners; k++)
                runner_s[k] += time_runner(&runners[k], grad, w);
        }
        for (int mode = ZMQ_COPY; r >= 0 && mode <= ZMQ_ZERO_COPY; mode++)
            zmq_gbs[mode][r] = 2.0 * BYTES * n / echo_s[mode] / 1e9;
        for (int k = 0; r >= 0 && k < n_runners; k++)
            runners[k].gbs[r] = 2.0 * BYTES * n / runner_s[k] / 1e9;
    }
    free(runner_s);
    double best_raw = -1;
    report(&cfg, zmq_gbs, runners, n_runners, &best_raw);
    if (best_raw >= 0)
        printf("target: raw push + pull >= %.2f x a2 (ZeroMQ's zero-copy echo, same run): %.2f x: "
               "%s\n",
               TARGET_VS_ZERO_COPY, best_raw, best_raw >= TARGET_VS_ZERO_COPY ? "met" : "NOT met");

    pst_err_t err = {0};
    for (int k = 0; k < n_runners; k++) {
        if (k + 1 == n_runners) /* all share worker id 0: the last one says goodbye */
            check(pst_psclient_shutdown(runners[k].client, &err), &err);
        pst_psclient_destroy(&runners[k].client);
        free(runners[k].gbs);
    }
    pthread_join(srv.thread, NULL);
    pst_server_destroy(&srv.srv);
    echo_stop(&echo);
    free(zmq_gbs[0]);
    free(zmq_gbs[1]);
    free(init);
    free(grad);
    free(w);
    return 0;
}
