/* FTRL steps of many sparse rows at once: the rows gathered into blocks, stepped by the
 * branch-free pst_ftrl_update_kept and written back: the same bits as one step per row, without
 * a call chain and a division-bound loop per row. */
#ifndef PST_PS_SHARD_FTRL_H
#define PST_PS_SHARD_FTRL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ps/shard.h"

void pst_slice_ftrl_fini(pst_slice_ftrl_t *f);

/* Rows were written from outside (a checkpoint): whether they hold the weights of their state is
 * checked again before the next block step. */
void pst_slice_ftrl_forget(pst_slice_ftrl_t *f);

/* Steps rows[0..n) of sparse slice s, row i with the gradient at g + i * row_width (acc: at
 * s->acc + rows[i] * row_width) times scale (skipped when 1), with alpha lr. Done only when the
 * block step gives the bits of one step per row: an FTRL optimizer without lookahead, lr > 0 and
 * every row's weights those of its state under lr (lr as in every earlier step; checked once over
 * all rows when not known), and memory for the blocks. Returns true when done (each row's step
 * count advanced), false with nothing changed: the caller steps the rows one by one. */
bool pst_slice_ftrl_block_step(pst_slice_t *s, const uint32_t *rows, size_t n, const float *g,
                               bool acc, float scale, float lr);

#endif
