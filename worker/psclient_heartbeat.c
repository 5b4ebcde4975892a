/* Heartbeats: a background thread with its own DEALERs tells every server this worker lives. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "worker/psclient_internal.h"

static void send_heartbeats(pst_psclient_t *c)
{
    for (uint32_t s = 0; s < c->cfg.n_servers; s++) {
        Pst__Header h = PST__HEADER__INIT;
        h.op = PST__OP__OP_HEARTBEAT;
        h.sender = c->cfg.worker_id;
        /* A full queue (server gone) just skips this beat. */
        pst_wire_send(c->hb_wire, c->hb_socks[s], NULL, 0, &h, NULL, NULL);
    }
}

static void *heartbeat_main(void *arg)
{
    pst_psclient_t *c = arg;
    pthread_mutex_lock(&c->hb_mu);
    while (!c->hb_stop) {
        struct timespec at;
        clock_gettime(CLOCK_MONOTONIC, &at);
        int64_t ns = at.tv_nsec + (int64_t)c->cfg.heartbeat_ms * 1000000;
        at.tv_sec += ns / 1000000000;
        at.tv_nsec = ns % 1000000000;
        while (!c->hb_stop && pthread_cond_timedwait(&c->hb_cv, &c->hb_mu, &at) != ETIMEDOUT) {
        }
        if (c->hb_stop)
            break;
        pthread_mutex_unlock(&c->hb_mu);
        send_heartbeats(c);
        pthread_mutex_lock(&c->hb_mu);
    }
    pthread_mutex_unlock(&c->hb_mu);
    return NULL;
}

int pst_psclient_start_heartbeats(pst_psclient_t *c, pst_err_t *err)
{
    uint32_t S = c->cfg.n_servers;
    c->hb_socks = calloc(S, sizeof *c->hb_socks);
    c->hb_wire = pst_wire_new(PST_WIRE_DEALER, 0, err);
    if (c->hb_socks == NULL || c->hb_wire == NULL)
        return pst_err_set(err, PST_ENOMEM, "client: out of memory");
    for (uint32_t s = 0; s < S; s++) {
        if ((c->hb_socks[s] = pst_psclient_connect_dealer(c, s, 0, err)) == NULL)
            return err ? err->code : PST_EIO;
    }
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&c->hb_mu, NULL);
    pthread_cond_init(&c->hb_cv, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&c->hb_thread, NULL, heartbeat_main, c) != 0) {
        pthread_cond_destroy(&c->hb_cv);
        pthread_mutex_destroy(&c->hb_mu);
        return pst_err_set(err, PST_EIO, "client: cannot start the heartbeat thread");
    }
    c->hb_running = true;
    return PST_OK;
}

void pst_psclient_stop_heartbeats(pst_psclient_t *c)
{
    if (!c->hb_running)
        return;
    pthread_mutex_lock(&c->hb_mu);
    c->hb_stop = true;
    pthread_cond_signal(&c->hb_cv);
    pthread_mutex_unlock(&c->hb_mu);
    pthread_join(c->hb_thread, NULL);
    pthread_cond_destroy(&c->hb_cv);
    pthread_mutex_destroy(&c->hb_mu);
    c->hb_running = false;
}
