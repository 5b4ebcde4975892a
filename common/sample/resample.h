/* Class-imbalance handling on a training index list: class counts and weights, random over- and
 * under-sampling, SMOTE. */
#ifndef PST_COMMON_SAMPLE_RESAMPLE_H
#define PST_COMMON_SAMPLE_RESAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "common/data/dataset.h"
#include "common/err.h"

/* Every function here reads the rows idx[0..n) of a classification set: the TRAINING list of a
 * fold or bag, never validation or test rows. idx may repeat rows (a bootstrap sample); a
 * repeated row counts once per occurrence. An index >= ds->n_rows or a label that is not a class
 * index 0..n_classes-1 is PST_ERANGE; a regression set or an empty list is PST_EINVAL. */

/* Rows of each class among idx[0..n) (idx NULL: rows 0..n-1) into counts (ds->n_classes). */
int pst_class_counts(const pst_dataset_t *ds, const size_t *idx, size_t n, size_t *counts,
                     pst_err_t *err);

/* scikit-learn's "balanced" weights: weights[c] = n / (n_present * count_c), where n_present is
 * the number of classes that occur in idx (all of them, as scikit-learn requires, in the usual
 * case), so the weights of the n rows sum to n. A class absent from idx gets 0.
 * weights: (ds->n_classes). */
int pst_class_weights_balanced(const pst_dataset_t *ds, const size_t *idx, size_t n,
                               double *weights, pst_err_t *err);
/* The same weights from class counts (n_classes): for counts summed over several holders of
 * rows (workers with a file each). */
void pst_class_weights_from_counts(const size_t *counts, int n_classes, double *weights);

/* Random over-sampling: idx[0..n) in its order, followed by rows drawn with replacement from each
 * smaller class's rows in idx until every class present has the majority count. Classes absent
 * from idx stay absent. *out is a new list of *n_out rows (caller frees). */
int pst_oversample_random(const pst_dataset_t *ds, const size_t *idx, size_t n, uint64_t seed,
                          size_t **out, size_t *n_out, pst_err_t *err);

/* Random under-sampling: every class present keeps minority-count of its rows, chosen without
 * replacement; the kept rows stay in their idx order. *out is a new list (caller frees). */
int pst_undersample_random(const pst_dataset_t *ds, const size_t *idx, size_t n, uint64_t seed,
                           size_t **out, size_t *n_out, pst_err_t *err);

/* SMOTE (Chawla et al. 2002) on a dense set. For each class present in idx with fewer rows than
 * the majority class, generates rows until it has the majority count: each one is
 * x_i + u * (x_nn - x_i) with x_i a uniformly chosen distinct row of the class in idx, x_nn one
 * of x_i's k_neighbors nearest (Euclidean; equal distances: lower row index first) distinct rows
 * of the SAME class IN idx, and u uniform in [0, 1). k_neighbors (typically 5) shrinks to
 * (distinct rows - 1) for a smaller class, with a warning.
 *
 * Brute-force search: O(m * d) per base row whose neighbours are needed, computed once each, so
 * at most O(m^2 * d) per class of m distinct rows and d features; fine for classes of up to a
 * few thousand rows.
 *
 * *synthetic (caller owns) is a new dense dataset holding only the generated rows, class by
 * class, with their labels and ds's metadata (n_classes, class values, names), to append to the
 * training rows; it has 0 rows when idx is already balanced. Errors: sparse set or k_neighbors
 * < 1 (PST_EINVAL), a class needing rows with fewer than 2 distinct rows (PST_EINVAL), a missing
 * or infinite value in such a class (PST_ENUMERIC; impute first). */
int pst_smote(const pst_dataset_t *ds /* dense */, const size_t *idx, size_t n,
              int k_neighbors /* 5 */, uint64_t seed, pst_dataset_t **synthetic, pst_err_t *err);

#endif
