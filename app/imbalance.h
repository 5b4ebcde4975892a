/* train.imbalance in a training job (pstrain train, locally and under mpirun): balanced class
 * weights for the loss, or the resampled list of training rows the trainer draws its epochs
 * from. Under mpirun every worker computes the same list from the whole training set (same rows,
 * same seed) and takes its rank-strided share of it, so the workers' shares together are exactly
 * the local run's list; with one file per worker ({worker}) only class_weight applies, with
 * weights from the class counts summed over the workers. */
#ifndef PST_APP_IMBALANCE_H
#define PST_APP_IMBALANCE_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "app/shardload.h"
#include "common/config.h"
#include "common/data/dataset.h"

/* Classes a job with train.imbalance may have (the per-worker count reduction is this wide). */
#define PST_IMBALANCE_MAX_CLASSES 4096

typedef struct pst_imbalance {
    const char *method; /* train.imbalance; "none": nothing below is set */
    size_t *rows;       // (n_rows) training rows of an epoch after resampling, or NULL: each once
    size_t n_rows;
    double *class_weights; // (n_classes) the loss's weight of each class, or NULL
    size_t *class_rows;    // (n_classes) rows of each class the trainer draws from, all workers
    int n_classes;
    size_t n_synthetic; /* SMOTE rows appended to the training set */
} pst_imbalance_t;

/* Applies cfg's train.imbalance to the preprocessed training set *train: SMOTE appends its
 * synthetic rows to *train; over- and under-sampling fill ib->rows; class_weight fills
 * ib->class_weights. reduce (NULL: this process holds every training row) sums class counts over
 * workers that each hold their own rows, which only class_weight accepts. Every worker calls it
 * with the same configuration, so a refusal is the same everywhere. */
int pst_imbalance_apply(pst_imbalance_t *ib, const pst_config_t *cfg, pst_dataset_t *train,
                        const pst_reducer_t *reduce, pst_err_t *err);
void pst_imbalance_fini(pst_imbalance_t *ib);

/* The report's "imbalance" section: method, class_rows, class_weights, synthetic_rows. */
void pst_imbalance_json(const pst_imbalance_t *ib, cJSON *obj);

#endif
