/* Synthetic Criteo-style click data (label, numeric counts, categorical tokens) as TSV, drawn
 * from a known model with pairwise interactions between fields, and its truth. */
#ifndef PST_COMMON_GEN_CRITEOGEN_H
#define PST_COMMON_GEN_CRITEOGEN_H

#include <stdint.h>

#include "common/err.h"

enum { PST_CRITEOGEN_MAX_FIELDS = 64, PST_CRITEOGEN_RANK = 4 };

/* The data-generating process. Categorical field c draws token t in [0, vocab) with
 * probability proportional to (t + 1)^-zipf_exponent; the token has a weight w_ct ~ N(0, sigma)
 * and a factor vector u_ct of PST_CRITEOGEN_RANK entries ~ N(0, s), s chosen so the pairwise
 * term below has standard deviation `interaction` on rows with every field present. Numeric
 * column i holds a count x_i = floor(exp(N(1, 1))) with weight a_i ~ N(0, sigma). A cell is
 * empty (missing) with probability `missing` and then adds nothing. A row's logit is
 *   z = bias + sum_i a_i ln(1 + x_i) + sum_c w_c + sum over field pairs c < d of <u_c, u_d>
 * and its label is 1 with probability sigmoid(z); the bias is solved on a pilot sample so the
 * mean click probability is near click_rate. Tokens are written as 8 hex digits (a hash of
 * field and token), counts as integers. The same configuration gives the same bytes. */
typedef struct pst_criteogen {
    uint64_t rows;
    uint32_t n_numeric;     /* 0..PST_CRITEOGEN_MAX_FIELDS (default 13) */
    uint32_t n_categorical; /* 1..PST_CRITEOGEN_MAX_FIELDS (default 26) */
    uint32_t vocab;         /* tokens per categorical field, 2..2^24 (default 1000) */
    uint64_t seed;          /* default 1 */
    double click_rate;      /* in (0, 1), default 0.25 */
    double sigma;           /* weight standard deviation, [0, 10], default 0.5 */
    double interaction;     /* standard deviation of the pairwise term, [0, 10], default 1 */
    double missing;         /* probability a cell is empty, [0, 1), default 0.05 */
    double zipf_exponent;   /* token popularity, (0, 10], default 1.1 */
    const char *main_probs; /* NULL, or a file for each row's sigmoid(bias + main effects), the
                               probability without the pairwise term, as float32 */
} pst_criteogen_t;

void pst_criteogen_defaults(pst_criteogen_t *cfg);

/* PST_OK, or PST_EINVAL naming the bad field. */
int pst_criteogen_check(const pst_criteogen_t *cfg, pst_err_t *err);

/* Of the rows written: Bayes figures are those of the true probabilities. */
typedef struct pst_criteogen_truth {
    double bias;
    uint64_t positives;
    double click_rate;
    double bayes_auc; /* NaN if a class is absent */
    double bayes_log_loss;
    double main_effects_auc; /* AUC of the logit without the pairwise term: what a model of
                                main effects alone could reach at best (roughly) */
} pst_criteogen_truth_t;

/* Writes cfg->rows TSV lines to data_path and (truth_path may be NULL) a JSON object with the
 * configuration and the truth figures; both atomically. *truth (may be NULL) receives them. */
int pst_criteogen_write(const pst_criteogen_t *cfg, const char *data_path, const char *truth_path,
                        pst_criteogen_truth_t *truth, pst_err_t *err);

#endif
