/* TensorBoard HParams plugin summaries: the experiment (which hyperparameters and metrics a sweep
 * has) and each trial's session start (its values) and end (its status), so trials compare in
 * TensorBoard's HParams view. The plugin data is proto/tensorboard_hparams.proto, packed by
 * protoc-c and carried by pst_tbwriter_plugin. */
#ifndef PST_TB_TBHPARAMS_H
#define PST_TB_TBHPARAMS_H

#include <stdbool.h>

#include "common/tb/tbwriter.h"

typedef enum {
    PST_TB_HPARAM_NUMBER,
    PST_TB_HPARAM_STRING,
    PST_TB_HPARAM_BOOL
} pst_tb_hparam_kind_t;

typedef struct pst_tb_hparam {
    const char *name;
    pst_tb_hparam_kind_t kind;
    double number;
    const char *string;
    bool boolean;
} pst_tb_hparam_t;

/* Writes the experiment summary (tag "_hparams_/experiment") into w, the writer of the sweep's
 * top directory: the hyperparameters of hp (names and kinds) and the metric tags. */
int pst_tbhparams_experiment(pst_tbwriter_t *w, const pst_tb_hparam_t *hp, int n_hp,
                             const char *const *metric_tags, int n_metrics, pst_err_t *err);

/* A trial's session start ("_hparams_/session_start_info") with its values, in the trial's own
 * writer (its own TensorBoard run). */
int pst_tbhparams_session_start(pst_tbwriter_t *w, const pst_tb_hparam_t *hp, int n_hp,
                                pst_err_t *err);

/* The trial's session end ("_hparams_/session_end_info"): success or failure. */
int pst_tbhparams_session_end(pst_tbwriter_t *w, bool success, pst_err_t *err);

#endif
