/* Seeded train/validation/test index splits, stratified by class, and worker row partitions. */
#ifndef PST_COMMON_SAMPLE_SPLIT_H
#define PST_COMMON_SAMPLE_SPLIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/data/dataset.h"
#include "common/err.h"

/* Row indices of each part, each array in a seeded random order. An empty part has NULL. */
typedef struct pst_split {
    size_t *train; // (n_train)
    size_t *val;   // (n_val)
    size_t *test;  // (n_test)
    size_t n_train, n_val, n_test;
} pst_split_t;

/* Splits ds's rows into train/val/test in the given fractions (each in [0, 1], summing to 1;
 * e.g. 0.7/0.2/0.1). With stratify on a classification set each class is split on its own, so
 * every class lands in each part within one row of its exact share; otherwise the whole set is
 * (each part within one row of n * frac). Every row lands in exactly one part. The same seed
 * gives the same split. Fills *out (release with pst_split_fini). */
int pst_split_three(const pst_dataset_t *ds, double train_frac, double val_frac, double test_frac,
                    bool stratify, uint64_t seed, pst_split_t *out, pst_err_t *err);

/* Carves a validation part from a training file: train = 1 - val_frac, no test part. */
int pst_split_two(const pst_dataset_t *ds, double val_frac, bool stratify, uint64_t seed,
                  pst_split_t *out, pst_err_t *err);

/* Frees the index arrays and zeroes *s; safe twice. */
void pst_split_fini(pst_split_t *s);

/* The positions 0..n_rows-1 that worker `rank` of n_parts owns: rank, rank + n_parts, ...
 * (position i goes to part i % n_parts). Positions index the rows of a dataset, or an index array
 * such as pst_split_t.train. *idx is a new array (caller frees; never NULL on success). */
int pst_partition_rows(size_t n_rows, int rank, int n_parts, size_t **idx, size_t *n,
                       pst_err_t *err);

#endif
