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

int pst_train_rejoin_epoch(uint64_t jump, long steps, long *first_step)
{
    /* the epoch jump falls in; a jump onto an epoch's end belongs to that epoch (its end is
     * still to come), so jump - 1 */
    uint64_t before = (jump - 1) / (uint64_t)steps;
    *first_step = (long)(jump - before * (uint64_t)steps);
    return (int)before + 1;
}
