/* Early stopping on a validation loss: train.patience epochs without an improvement of at least
 * train.min_delta end the training; the best epoch is the one whose weights are kept. */
#ifndef PST_WORKER_TRAIN_EARLY_STOP_H
#define PST_WORKER_TRAIN_EARLY_STOP_H

#include <stdbool.h>

typedef struct pst_early_stop {
    int patience;     /* 0: never stop early (the best epoch is still tracked) */
    double min_delta; /* an epoch improves when its loss < best - min_delta */
    double best_loss; /* INFINITY before the first finite loss */
    int best_epoch;   /* 0 before the first improvement */
    int since_best;   /* epochs observed since the best one */
    bool stopped;
} pst_early_stop_t;

void pst_early_stop_init(pst_early_stop_t *es, int patience, double min_delta);

/* Records the validation loss of epoch (NaN: no validation data, which never improves nor
 * counts towards patience). *improved (may be NULL): this epoch is the new best. Returns true
 * when training should stop after this epoch. */
bool pst_early_stop_observe(pst_early_stop_t *es, int epoch, double val_loss, bool *improved);

#endif
