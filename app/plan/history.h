/* A fit's per-epoch record (losses, validation metric, learning rate), kept with its task's
 * metrics so that a plan's report can draw each fold's curves. */
#ifndef PST_APP_PLAN_HISTORY_H
#define PST_APP_PLAN_HISTORY_H

#include <cjson/cJSON.h>

#include "worker/train/train.h"

/* Appends es to *history, an object of equal-length arrays {"epoch": [...], "train_loss": [...],
 * "val_loss": [...], "val_METRIC": [...], "lr": [...]} (created on the first call; a figure that
 * is not finite is null). Use as a training observer: ctx is the cJSON ** to fill. */
void pst_history_on_epoch(void *ctx, const pst_epoch_stats_t *es);

#endif
