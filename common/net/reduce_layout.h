/* Reductions among the workers of a job made through server 0 instead of an MPI collective, so
 * that a worker the servers declared dead holds nobody up: the request is a BARRIER whose blob
 * holds doubles, answered once every live worker sent the same reduction. */
#ifndef PST_COMMON_NET_REDUCE_LAYOUT_H
#define PST_COMMON_NET_REDUCE_LAYOUT_H

/* Request: header.clock and header.offset name the reduction (the worker's clock, and the how
 * many-th reduction at that clock), header.count = n, blob: n doubles (little-endian hosts).
 * Reply: the same header fields, flags PST_WIRE_FLAG_STALE when the reduction had completed
 * before this worker's values came (they are not in the sums), blob: the n sums over the workers
 * that contributed, then PST_REDUCE_WORKER_FIELDS doubles per worker of the job. */
#define PST_REDUCE_MAX_VALUES (1u << 22) /* doubles in one reduction */
#define PST_REDUCE_MAX_DROPS 4           /* drops of one worker remembered (the latest) */

enum {
    PST_REDUCE_CONTRIBUTED, /* 1 when the worker's values are in the sums */
    PST_REDUCE_N_DROPS,     /* times the worker was declared dead */
    PST_REDUCE_DROPS        /* then per drop (dropped_at, rejoined_at): the first clock it missed,
                             * the clock it came back at, -1 while it is away */
};
#define PST_REDUCE_WORKER_FIELDS (PST_REDUCE_DROPS + 2 * PST_REDUCE_MAX_DROPS)

#endif
