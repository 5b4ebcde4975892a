/* Rejoining a BSP run at the servers' clock. */
#include "worker/train/rejoin.h"

#include "common/log.h"

uint64_t pst_train_rejoin_after(const pst_train_hooks_t *hooks, uint64_t clock, int rc,
                                const pst_err_t *err)
{
    if (rc != PST_ESTATE || hooks == NULL || hooks->push == NULL || hooks->rejoin_clock == NULL)
        return 0;
    uint64_t to = hooks->rejoin_clock(hooks->ctx, clock);
    if (to <= clock)
        return 0;
    if (err != NULL)
        pst_info("%s", err->msg);
    return to;
}

uint64_t pst_train_rejoin_servers_clock(pst_psclient_t *client, uint64_t clock)
{
    uint64_t to = pst_psclient_take_stale_clock(client);
    if (to <= clock)
        return clock;
    pst_warn("the servers went on without this worker (declared dead at clock %llu or later): "
             "it rejoins at clock %llu",
             (unsigned long long)clock, (unsigned long long)to);
    return to;
}

uint64_t pst_train_rejoin_steps(pst_psclient_t *client, uint64_t *clock,
                                int (*flush)(void *ctx, pst_err_t *err), void *ctx)
{
    uint64_t to = pst_train_rejoin_servers_clock(client, *clock);
    if (to <= *clock)
        return 0;
    pst_err_t scratch;
    if (flush(ctx, &scratch) != PST_OK)
        pst_warn("rejoining: %s", scratch.msg);
    uint64_t behind = to - *clock;
    *clock = to;
    return behind;
}

int pst_train_rejoin_epoch(uint64_t jump, long steps, long *first_step)
{
    /* the epoch jump falls in; a jump onto an epoch's end belongs to that epoch (its end is
     * still to come), so jump - 1 */
    uint64_t before = (jump - 1) / (uint64_t)steps;
    *first_step = (long)(jump - before * (uint64_t)steps);
    return (int)before + 1;
}
