/* Shard store: the slice of every tensor this server owns, and the optimizer state beside it. */
#ifndef PST_SHARD_H
#define PST_SHARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/keymap.h"
#include "common/optim/optim.h"
#include "common/net/wire.h"

/* Placement (which server owns which range or key) is part of the protocol: see
 * pst_wire_shard_range and pst_wire_key_server in common/net/wire.h. */

/* One tensor's slice on this server. Read the public fields; change them only through the
 * functions below. */
struct pst_values_block;

/* A sparse FTRL slice's blocks of rows stepped together (ps/shard_ftrl.h); zeroed = empty. */
typedef struct pst_slice_ftrl {
    float *block; // (cap, 4): the weights, z, n and gradients of the rows stepped together
    size_t cap;   /* floats per part */
    float alpha;  /* the alpha every row was last stepped with; 0: not known yet */
    bool mixed;   /* rows stepped with different alphas: each is stepped on its own */
} pst_slice_ftrl_t;

typedef struct pst_slice {
    uint32_t model_id, tensor_id;
    bool sparse;
    uint64_t clock; /* clocks completed; kept here for checkpoints, advanced by the server */
    /* dense */
    uint64_t total;       /* elements of the whole tensor */
    uint64_t offset, len; /* this server's range */
    float *values;        /* (len); moves to a new block when lent values are updated */
    /* sparse */
    uint32_t row_width;
    uint64_t key_bound; /* every key below it (the server's model contract); 0: any key */
    float init_scale;   /* new rows: uniform in [-init_scale, init_scale], 0 = zeros */
    uint64_t seed;
    size_t n_rows;
    uint64_t *row_keys; /* (n_rows) in order of first touch */
    float *rows;        /* (n_rows, row_width) */
    /* the store's own */
    pst_optim_cfg_t optim_cfg;
    pst_optim_t *optim;   /* dense: over values; sparse: shared by all rows if stateless */
    uint32_t state_width; /* sparse: optimizer state floats per row (0: stateless) */
    float *row_state;     /* sparse, stateful: (rows_cap, state_width), zeros until stepped */
    uint64_t *row_steps;  /* sparse, stateful: (rows_cap) steps each row took, 0 = never */
    size_t rows_cap;
    pst_keymap_t keymap;            /* sparse: key -> row */
    struct pst_values_block *block; /* dense: owner of values, shared with lent messages */
    float *acc;                     /* BSP accumulator: dense (len); sparse (rows_cap, row_width) */
    bool acc_filled;                /* dense: acc holds a contribution of the open clock */
    const float *acc_held;          /* dense: the open clock's only contribution, not yet copied */
    uint32_t *touched;              /* sparse: rows in acc this clock; (rows_cap) */
    uint8_t *is_touched;            /* (rows_cap) */
    size_t n_touched;
    pst_slice_ftrl_t ftrl; /* sparse FTRL: blocks for pst_slice_ftrl_block_step */
} pst_slice_t;

typedef struct pst_shard pst_shard_t;

/* The store of server `server` of n_servers; every slice gets an optimizer made from optim.
 * Caller owns the result. */
pst_shard_t *pst_shard_new(uint32_t server, uint32_t n_servers, const pst_optim_cfg_t *optim,
                           pst_err_t *err);
void pst_shard_destroy(pst_shard_t **self_p);

uint32_t pst_shard_server(const pst_shard_t *self);
uint32_t pst_shard_n_servers(const pst_shard_t *self);

/* Adds this server's range of a dense tensor of total elements; init holds the range's initial
 * values (len floats) or NULL for zeros. Returns the slice index (>= 0) or an error; a tensor
 * already present is PST_ESTATE. */
int pst_shard_add_dense(pst_shard_t *self, uint32_t model_id, uint32_t tensor_id, uint64_t total,
                        const float *init, pst_err_t *err);
/* Adds an empty sparse tensor whose rows are created on first touch. Returns the index. */
int pst_shard_add_sparse(pst_shard_t *self, uint32_t model_id, uint32_t tensor_id,
                         uint32_t row_width, float init_scale, uint64_t seed, pst_err_t *err);

/* Removes every slice of model_id with its values, optimizer state and accumulators (values
 * still lent to a message are freed once it is sent). The other slices keep their order, so the
 * indices after a removed slice move down. Returns the number of slices removed. */
size_t pst_shard_drop_model(pst_shard_t *self, uint32_t model_id);

/* Index of a tensor's slice, or -1. */
int pst_shard_find(const pst_shard_t *self, uint32_t model_id, uint32_t tensor_id);
size_t pst_shard_count(const pst_shard_t *self);
pst_slice_t *pst_shard_slice(pst_shard_t *self, size_t index);

/* ---- dense slices ---- */

/* One optimizer step with gradient g (len floats). */
int pst_slice_dense_step(pst_slice_t *s, const float *g, float lr, pst_err_t *err);

/* BSP accumulation. add: acc += g, or acc = g for the first contribution of a clock; with hold,
 * a first contribution is only remembered, not copied, and the caller must call settle before g
 * goes away (an apply in between uses g directly). */
int pst_slice_dense_acc_add(pst_slice_t *s, const float *g, bool hold, pst_err_t *err);
int pst_slice_dense_acc_settle(pst_slice_t *s, pst_err_t *err);
/* One optimizer step with acc * scale; the accumulator is empty afterwards. No-op when empty. */
int pst_slice_dense_apply(pst_slice_t *s, float scale, float lr, pst_err_t *err);

/* Lends the values for a zero-copy send: *release(values, *hint) must be called once when done.
 * Later updates copy the values first if they are still lent, so a lent buffer never changes. */
const float *pst_slice_lend(pst_slice_t *s, void (**release)(void *data, void *hint), void **hint);

/* pst_checksum of the whole slice's values, computed once per version of them: every worker
 * pulling the same clock gets the same sum without another pass. Whoever writes s->values other
 * than through pst_slice_dense_step calls pst_slice_values_changed. */
uint32_t pst_slice_checksum(pst_slice_t *s);
void pst_slice_values_changed(pst_slice_t *s);

/* ---- sparse slices ---- */

/* Row indices of n keys, creating (initialising) rows on first touch. */
int pst_slice_rows(pst_slice_t *s, const uint64_t *keys, size_t n, uint32_t *rows, pst_err_t *err);
/* out (n, row_width) = the rows' values. */
void pst_slice_gather(const pst_slice_t *s, const uint32_t *rows, size_t n, float *out);
/* One optimizer step per row with g (n, row_width). */
int pst_slice_sparse_step(pst_slice_t *s, const uint32_t *rows, size_t n, const float *g, float lr,
                          pst_err_t *err);
/* Adds g (n, row_width) to the rows' accumulators. */
int pst_slice_sparse_acc_add(pst_slice_t *s, const uint32_t *rows, size_t n, const float *g,
                             pst_err_t *err);
/* Steps every row touched this clock with acc * scale, then empties the accumulator. */
int pst_slice_sparse_apply(pst_slice_t *s, float scale, float lr, pst_err_t *err);

/* Checkpoint support: a row's optimizer state (*n_state floats) and its step count, NULL when the
 * optimizer is stateless or the row was never stepped; and restoring a row with its values and,
 * when state != NULL, its optimizer state and step counter. */
const float *pst_slice_row_state(const pst_slice_t *s, size_t row, size_t *n_state,
                                 uint64_t *steps);
int pst_slice_restore_row(pst_slice_t *s, uint64_t key, const float *values, const float *state,
                          size_t n_state, uint64_t steps, pst_err_t *err);
/* Whether the slice's optimizer keeps per-parameter state. */
bool pst_slice_stateful(const pst_slice_t *s);

/* Bytes the store holds for its slices: values, optimizer state, sparse keys, tables and
 * accumulators, counted from what is allocated (capacities), not from what is used. */
uint64_t pst_slice_bytes(const pst_slice_t *s);
uint64_t pst_shard_bytes(const pst_shard_t *self);
/* Sparse rows held, over every sparse slice. */
uint64_t pst_shard_sparse_rows(const pst_shard_t *self);

#endif
