/* Cross-validation folds, bootstrap samples and feature subsets as index lists over one dataset. */
#ifndef PST_COMMON_SAMPLE_FOLDS_H
#define PST_COMMON_SAMPLE_FOLDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/data/dataset.h"
#include "common/err.h"

/* One fold: the rows to train on and the rows to test on, each list ascending, disjoint, and
 * together every row of the dataset once. The lists point into the owning pst_folds_t. */
typedef struct pst_fold {
    const size_t *train; // (n_train)
    const size_t *test;  // (n_test)
    size_t n_train, n_test;
} pst_fold_t;

/* repeats * k folds over a dataset of n_rows rows. */
typedef struct pst_folds {
    pst_fold_t *fold; // (n_folds) fold f of repeat r at index r * k + f
    int n_folds;      /* repeats * k */
    int k;
    int repeats;
    size_t n_rows;
    size_t *arena; // (n_folds, n_rows) every fold's test list then train list, one block
} pst_folds_t;

/* Splits ds's rows into k folds, `repeats` times; every row is in exactly one test fold of each
 * repeat, and a fold trains on all the other rows. Each repeat shuffles with its own stream
 * derived from seed, so the same seed gives the same folds and repeats differ.
 *
 * - plain: test folds hold n / k rows within one.
 * - stratified (classification sets; a regression set is folded plainly, as pst_split_three
 *   does): each class's shuffled rows are dealt round-robin, one counter running through all
 *   classes, so every fold holds each class within one row of count_c / k and n / k rows within
 *   one overall. A class with fewer than k rows is logged as a warning and still dealt.
 * - groups (n_rows group ids, any int64 values): rows of one group share a test fold. Groups are
 *   taken largest first (equal sizes in a seeded order) and each goes to the currently smallest
 *   fold; the fold numbering is shuffled per repeat. The partition is the greedy balanced one, so
 *   repeats differ only where group sizes tie. Stratified together with groups is PST_EINVAL.
 *
 * Errors (PST_EINVAL): k < 2, k > n_rows, repeats < 1, fewer distinct groups than k; a label
 * that is not a class index is PST_ERANGE. Fills *out (release with pst_folds_fini; *out is
 * zeroed on failure). Memory: repeats * k * n_rows indices. */
int pst_kfold(const pst_dataset_t *ds, int k, bool stratified, int repeats, uint64_t seed,
              const int64_t *groups /* (n_rows) or NULL */, pst_folds_t *out, pst_err_t *err);

/* Frees every list and zeroes *f; safe twice. */
void pst_folds_fini(pst_folds_t *f);

/* A bootstrap sample of n_rows rows: round(max_samples * n_rows) draws with replacement. */
typedef struct pst_bootstrap {
    size_t *sample; // (n_sample) drawn rows in draw order, repeats included
    size_t n_sample;
    uint32_t *counts; // (n_rows) how often each row was drawn; usable as sample weights
    size_t n_rows;
    size_t *oob; // (n_oob) rows drawn zero times (out of bag), ascending; NULL when none
    size_t n_oob;
} pst_bootstrap_t;

/* Draws a bootstrap sample. max_samples is a fraction in (0, 1]; a sample that rounds to zero
 * rows is PST_EINVAL. The same seed gives the same sample. Fills *out (release with
 * pst_bootstrap_fini; zeroed on failure). */
int pst_bootstrap(size_t n_rows, double max_samples /* fraction, (0,1] */, uint64_t seed,
                  pst_bootstrap_t *out, pst_err_t *err);

/* Frees the lists and zeroes *b; safe twice. */
void pst_bootstrap_fini(pst_bootstrap_t *b);

/* max(1, round(max_features * n_features)) distinct columns drawn without replacement, returned
 * ascending in *cols (caller frees). max_features is a fraction in (0, 1]. */
int pst_feature_subset(size_t n_features, double max_features, uint64_t seed, size_t **cols,
                       size_t *n_cols, pst_err_t *err);

#endif
