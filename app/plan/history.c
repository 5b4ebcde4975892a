/* Per-epoch history of a fit, as arrays in a JSON object. */
#include "app/plan/history.h"

#include <math.h>
#include <stdio.h>

static void append(cJSON *history, const char *key, double v)
{
    cJSON *a = cJSON_GetObjectItem(history, key);
    if (!a)
        a = cJSON_AddArrayToObject(history, key);
    cJSON_AddItemToArray(a, isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull());
}

void pst_history_on_epoch(void *ctx, const pst_epoch_stats_t *es)
{
    cJSON **history = ctx;
    if (!*history && !(*history = cJSON_CreateObject()))
        return;
    char metric[64];
    snprintf(metric, sizeof metric, "val_%s", es->val_metric_name ? es->val_metric_name : "metric");
    append(*history, "epoch", es->epoch);
    append(*history, "train_loss", es->train_loss);
    append(*history, "val_loss", es->val_loss);
    append(*history, metric, es->val_metric);
    append(*history, "lr", es->lr);
}
