/* A client with no credentials for a job's parameter servers: it tries a ZMTP handshake (plain,
 * or "guess": PLAIN as worker 0 with a made-up token), then STATS, PULL, INIT and SHUTDOWN in the
 * workers' names, and prints for each whether a server answered. The security test runs it
 * against a live job. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "common/log.h"
#include "worker/psclient.h"

#define WAIT_MS 1500

/* What the monitor of a DEALER connecting to endpoint reports first about its handshake: a plain
 * one, or with guess a PLAIN client claiming to be worker 0 with a token it made up. */
static const char *handshake(const char *endpoint, bool guess)
{
    void *ctx = zmq_ctx_new();
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    if (guess) {
        const char *token = "0123456789abcdefghijABCDEFGHIJ0123456789";
        zmq_setsockopt(sock, ZMQ_PLAIN_USERNAME, "0", 1);
        zmq_setsockopt(sock, ZMQ_PLAIN_PASSWORD, token, strlen(token));
    }
    void *mon = zmq_socket(ctx, ZMQ_PAIR);
    int linger = 0, timeout = WAIT_MS;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(mon, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(mon, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    const char *verdict = "no event";
    if (zmq_socket_monitor(sock, "inproc://stranger-monitor", ZMQ_EVENT_ALL) == 0 &&
        zmq_connect(mon, "inproc://stranger-monitor") == 0 && zmq_connect(sock, endpoint) == 0) {
        for (;;) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, mon, 0) < 0) {
                zmq_msg_close(&m);
                break;
            }
            uint16_t event = 0;
            if (zmq_msg_size(&m) >= 2)
                memcpy(&event, zmq_msg_data(&m), 2);
            bool more = zmq_msg_more(&m);
            zmq_msg_close(&m);
            while (more) { /* the address frame */
                zmq_msg_init(&m);
                zmq_msg_recv(&m, mon, 0);
                more = zmq_msg_more(&m);
                zmq_msg_close(&m);
            }
            if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
                verdict = "succeeded";
                break;
            }
            if (event & (ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                         ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)) {
                verdict = "failed";
                break;
            }
        }
    }
    zmq_close(sock);
    zmq_close(mon);
    zmq_ctx_term(ctx);
    return verdict;
}

static pst_psclient_t *client_as(const char *endpoint, uint32_t worker)
{
    const char *endpoints[1] = {endpoint};
    pst_psclient_cfg_t cfg;
    pst_psclient_cfg_defaults(&cfg);
    cfg.endpoints = endpoints;
    cfg.n_servers = 1;
    cfg.worker_id = worker;
    cfg.heartbeat_ms = 0;
    cfg.timeout_ms = WAIT_MS;
    pst_err_t err = {0};
    pst_psclient_t *c = pst_psclient_new(&cfg, &err);
    if (c == NULL)
        fprintf(stderr, "pst_stranger: %s\n", err.msg);
    return c;
}

static void report(const char *what, int rc, const pst_err_t *err)
{
    if (rc == PST_ETIMEOUT)
        printf("%s: no answer\n", what);
    else
        printf("%s: answered (%s%s%s)\n", what, pst_strerror(rc), err->msg[0] ? ": " : "",
               err->msg);
}

/* One attempt named op on a fresh connection as worker 0. */
static int attempt(const char *endpoint, const char *op)
{
    pst_psclient_t *c = client_as(endpoint, 0);
    if (c == NULL)
        return 1;
    pst_err_t err = {0};
    int rc = PST_EINVAL;
    if (strcmp(op, "stats") == 0) {
        uint64_t counters[PST_STAT_COUNT];
        rc = pst_psclient_server_stats(c, 0, counters, &err);
    } else if (strcmp(op, "counters") == 0) {
        uint64_t counters[PST_STAT_COUNT];
        rc = pst_psclient_server_stats(c, 0, counters, &err);
        if (rc == PST_OK) {
            printf("counters: contract=%llu tensors=%llu\n",
                   (unsigned long long)counters[PST_STAT_CONTRACT],
                   (unsigned long long)counters[PST_STAT_TENSORS]);
            pst_psclient_destroy(&c);
            return 0;
        }
    } else if (strcmp(op, "pull") == 0 || strcmp(op, "init") == 0 || strcmp(op, "init0") == 0 ||
               strcmp(op, "init1") == 0) {
        /* 1 Mi floats of a model the job does not have (init0: of the job's own tensor 0/0, with
         * another size; init1: of a plan's first task, 1/0): a pull of model 0 would need its
         * size. */
        enum { LEN = 1 << 20 };
        float *values = calloc(LEN, sizeof *values);
        uint32_t model = strcmp(op, "init") == 0 ? 99 : strcmp(op, "init1") == 0 ? 1 : 0;
        int t = values ? pst_psclient_register_dense(c, model, 0, LEN, &err) : -1;
        uint64_t clock = 0;
        pst_ticket_t ticket;
        if (t >= 0 && op[0] == 'p' && (rc = pst_psclient_pull(c, t, values, 0, &ticket, &err)) == 0)
            rc = pst_psclient_wait(c, ticket, &err);
        else if (t >= 0 && op[0] == 'i')
            rc = pst_psclient_init_on_servers(c, t, values, &clock, &err);
        free(values);
    } else if (strcmp(op, "shutdown") == 0) {
        rc = pst_psclient_shutdown(c, &err);
    } else {
        fprintf(stderr, "pst_stranger: unknown attempt '%s'\n", op);
        pst_psclient_destroy(&c);
        return 2;
    }
    report(op, rc, &err);
    pst_psclient_destroy(&c);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: pst_stranger ENDPOINT "
                        "[handshake|guess|stats|counters|pull|init|init0|init1|shutdown]...\n");
        return 2;
    }
    pst_log_set_level(PST_LOG_ERROR);
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "handshake") == 0) {
            printf("handshake: %s\n", handshake(argv[1], false));
            continue;
        }
        if (strcmp(argv[i], "guess") == 0) {
            printf("guess: %s\n", handshake(argv[1], true));
            continue;
        }
        int rc = attempt(argv[1], argv[i]);
        if (rc != 0)
            return rc;
    }
    fflush(stdout);
    return 0;
}
