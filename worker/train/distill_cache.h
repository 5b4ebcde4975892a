/* The teacher's scores of training rows kept by the rows' content, so that distillation runs a
 * teacher (deterministic: no dropout, batchnorm at its running statistics) once per distinct row
 * instead of once per row and epoch: a CNN teacher otherwise costs more than the student.
 *
 * A row is known by two independent 64-bit hashes of its bytes: the first finds it, the second
 * confirms it (a false match needs both to collide). The cache holds at most a fixed number of
 * rows (PST_DISTILL_CACHE_BYTES of scores and keys); rows beyond it, such as the endless new rows
 * of data augmentation, are simply not kept and their teacher runs each time. */
#ifndef PST_WORKER_TRAIN_DISTILL_CACHE_H
#define PST_WORKER_TRAIN_DISTILL_CACHE_H

#include <stdbool.h>
#include <stddef.h>

#define PST_DISTILL_CACHE_BYTES ((size_t)256 << 20)

typedef struct pst_distill_cache pst_distill_cache_t;

/* A cache for rows of n_inputs floats and n_classes scores each, holding at most max_rows rows
 * (0: as many as PST_DISTILL_CACHE_BYTES allows). NULL without memory. Caller owns. */
pst_distill_cache_t *pst_distill_cache_new(int n_inputs, int n_classes, size_t max_rows);
void pst_distill_cache_destroy(pst_distill_cache_t **self_p);

/* The n_classes scores kept for row (n_inputs floats), or NULL. Valid until the cache is
 * destroyed. */
const float *pst_distill_cache_find(const pst_distill_cache_t *c, const float *row);

/* Keeps scores for row; false when it is full, out of memory, or the row's first hash is taken
 * by another row (the row is then not kept). */
bool pst_distill_cache_put(pst_distill_cache_t *c, const float *row, const float *scores);

/* Rows kept. */
size_t pst_distill_cache_size(const pst_distill_cache_t *c);

#endif
