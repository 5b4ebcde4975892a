/* Synthetic click data from known true weights, written as LIBSVM with its truth. */
#ifndef PST_COMMON_GEN_CLICKGEN_H
#define PST_COMMON_GEN_CLICKGEN_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* The data-generating process. Feature ids are ranked by popularity: id j (0-based) is drawn
 * with probability proportional to (j + 1)^-zipf_exponent, so id 0 is the most frequent.
 * Each row holds nnz distinct ids (repeated draws are redrawn, i.e. sampling without
 * replacement), all with value 1; its click probability is p = sigmoid(bias + sum of w[id]),
 * and its label is 1 with probability p. The weights are w[j] ~ N(0, sigma), stored as float;
 * the bias is set so that the mean p over rows is click_rate (solved on a pilot sample of
 * 50,000 rows from the same process, so the realised rate is close to, not exactly, the
 * target). The same configuration gives the same rows on every run. */
typedef struct pst_clickgen {
    uint64_t rows;
    uint32_t n_features; /* F, 2..2^28 */
    uint32_t nnz;        /* K ids per row, 1..F/2 (near F/2, many repeats are redrawn: slow) */
    uint64_t seed;
    double click_rate;    /* target mean click probability, in (0, 1); default 0.03 */
    double zipf_exponent; /* popularity exponent, in (0, 10]; default 1.1 */
    double sigma;         /* standard deviation of the true weights, in [0, 100]; default 0.25 */
} pst_clickgen_t;

/* Fills the defaults: 0 rows, F = 1,000,000, K = 30, seed 1, rate 0.03, exponent 1.1,
 * sigma 0.25. */
void pst_clickgen_defaults(pst_clickgen_t *cfg);

/* PST_OK, or PST_EINVAL naming the bad field. */
int pst_clickgen_check(const pst_clickgen_t *cfg, pst_err_t *err);

/* The bias b with mean sigmoid(b + s_i) = rate over pilot logits s[0..n) (bisection; the mean
 * is increasing in b). */
double pst_clickgen_solve_bias(const double *s, size_t n, double rate);

/* ---- The process as an object, to draw rows in memory. ---- */

typedef struct pst_clickgen_state pst_clickgen_state_t;

/* Draws the weights, builds the popularity alias table (8 bytes per feature, plus 4 for the
 * weight; 12 more while building) and solves the bias. Caller owns *out. */
int pst_clickgen_state_new(const pst_clickgen_t *cfg, pst_clickgen_state_t **out, pst_err_t *err);
void pst_clickgen_state_destroy(pst_clickgen_state_t **self_p);

const float *pst_clickgen_weights(const pst_clickgen_state_t *g); // (n_features)
double pst_clickgen_bias(const pst_clickgen_state_t *g);

/* The next row: ids[0..nnz) 0-based and increasing, its true click probability and label.
 * Rows are drawn in file order: row r of the file is the (r+1)-th call after state_new. */
void pst_clickgen_next_row(pst_clickgen_state_t *g, uint32_t *ids, double *p, int *label);

/* ---- Files ---- */

/* What was generated. The Bayes figures are those of the true p on the rows generated:
 * AUC exact (ties count one half), log-loss the mean of -log p or -log(1 - p). */
typedef struct pst_clickgen_truth {
    double bias;
    uint64_t positives;
    double click_rate; /* positives / rows */
    double mean_p;     /* mean true probability */
    double bayes_auc;  /* NaN if a class is absent */
    double bayes_log_loss;
    double weight_mean, weight_std; /* of the F weights as stored */
} pst_clickgen_truth_t;

/* Where to write; NULL skips a file. Every file is written atomically (temporary, fsync,
 * rename): on failure none is left half-written.
 * data: LIBSVM lines "label id:1 id:1 ...", label 0/1, ids 1-based and increasing.
 * truth_json: {"generator", "seed", "rows", "features", "nnz", "sigma", "zipf_exponent",
 *   "click_rate_target", "bias", "positives", "click_rate", "mean_p", "bayes_auc",
 *   "bayes_log_loss", "weight_mean", "weight_std", "weights_file"}; numbers printed exactly
 *   (bias with 17 significant digits).
 * truth_weights: the F weights as little-endian float32, weight of 1-based id i at index i-1
 *   (numpy: np.fromfile(path, "<f4")); p = sigmoid(bias + sum of the row's weights, summed in
 *   double in increasing id order). */
typedef struct pst_clickgen_files {
    const char *data;
    const char *truth_json;
    const char *truth_weights;
} pst_clickgen_files_t;

/* Streams cfg->rows rows to files->data (never holding rows in memory except one float p and
 * one label per row for the AUC), then writes the truth files. *truth (may be NULL) receives
 * the figures. */
int pst_clickgen_write(const pst_clickgen_t *cfg, const pst_clickgen_files_t *files,
                       pst_clickgen_truth_t *truth, pst_err_t *err);

#endif
