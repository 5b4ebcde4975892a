/* Early stopping: the best validation loss so far and the epochs since. */
#include "worker/train/early_stop.h"

#include <math.h>
#include <stddef.h>

void pst_early_stop_init(pst_early_stop_t *es, int patience, double min_delta)
{
    *es = (pst_early_stop_t){.patience = patience, .min_delta = min_delta, .best_loss = INFINITY};
}

bool pst_early_stop_observe(pst_early_stop_t *es, int epoch, double val_loss, bool *improved)
{
    bool better = false;
    if (!isnan(val_loss)) {
        better = val_loss < es->best_loss - es->min_delta;
        if (better) {
            es->best_loss = val_loss;
            es->best_epoch = epoch;
            es->since_best = 0;
        } else {
            es->since_best++;
        }
    }
    if (improved != NULL)
        *improved = better;
    es->stopped = es->patience > 0 && es->since_best >= es->patience;
    return es->stopped;
}
