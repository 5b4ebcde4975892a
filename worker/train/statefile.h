/* A worker's running statistics (batchnorm moments) at a clock, beside the servers' checkpoints:
 * the servers hold the weights, each worker its own moments, so a resumed run gets both back. */
#ifndef PST_WORKER_TRAIN_STATEFILE_H
#define PST_WORKER_TRAIN_STATEFILE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* DIR/worker-W.state for worker W into path (size n). */
void pst_statefile_path(char *path, size_t n, const char *dir, int worker);

/* Writes state (n_state floats) at clock to path atomically: magic, clock, count, floats,
 * CRC-32C of all that. */
int pst_statefile_save(const char *path, uint64_t clock, const float *state, size_t n_state,
                       pst_err_t *err);

/* Reads path into state when it holds n_state floats at clock. PST_ENOTFOUND: no file, or one of
 * another clock (*file_clock says which); PST_EFORMAT: a damaged file or another count (the
 * message names the file). */
int pst_statefile_load(const char *path, uint64_t clock, float *state, size_t n_state,
                       uint64_t *file_clock, pst_err_t *err);

#endif
