/* Rejoining a BSP run (train.h's rejoin_clock hook): where a worker that the servers went on
 * without carries on, when a stale push or a reduction long gone tells it their clock. */
#ifndef PST_WORKER_TRAIN_REJOIN_H
#define PST_WORKER_TRAIN_REJOIN_H

#include <stdint.h>

#include "common/err.h"
#include "worker/psclient.h"
#include "worker/train/train.h"

/* After an epoch-end exchange at clock failed with rc: the clock to rejoin at when its reduction
 * was long gone (PST_ESTATE while hooks->rejoin_clock names a later clock: the servers went on
 * while this worker was away and the epoch's end was the others'), else 0 (rc stands). */
uint64_t pst_train_rejoin_after(const pst_train_hooks_t *hooks, uint64_t clock, int rc,
                                const pst_err_t *err);

/* The epoch (from 1) and its first step (0-based; steps when it starts at the epoch's end) of
 * clock jump > 0, in epochs of steps. */
int pst_train_rejoin_epoch(uint64_t jump, long steps, long *first_step);

/* A trainer at clock: the later clock a stale push (or a reduction long gone) revealed since it
 * last asked (pst_psclient_take_stale_clock), with a warning that it rejoins there; else clock. */
uint64_t pst_train_rejoin_servers_clock(pst_psclient_t *client, uint64_t clock);
/* A sparse trainer's rejoin hook (sparse_loop.h): when the servers are past *clock, flush(ctx)
 * waits for the requests in flight (a failure is logged: they belong to steps now passed over),
 * *clock becomes the servers' and the steps between are returned; else 0. */
uint64_t pst_train_rejoin_steps(pst_psclient_t *client, uint64_t *clock,
                                int (*flush)(void *ctx, pst_err_t *err), void *ctx);

#endif
