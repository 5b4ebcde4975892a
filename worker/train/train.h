/* The training loop: shuffled mini-batches, penalties, clipping, scheduled optimizer steps (local)
 * or pull/push through hooks (distributed), validation each epoch, early stopping. */
#ifndef PST_WORKER_TRAIN_TRAIN_H
#define PST_WORKER_TRAIN_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "common/data/augment.h"
#include "common/data/dataset.h"
#include "common/err.h"
#include "common/optim/optim.h"
#include "common/data/preprocess.h"
#include "common/optim/sched.h"
#include "worker/model/fakequant.h"
#include "worker/model/loss.h"
#include "worker/model/model.h"
#include "worker/train/dpsgd.h"
#include "worker/train/distill.h"
#include "worker/train/prune.h"

/* Rows of a dataset as training and evaluation see them: all rows or an index list (repeats
 * allowed), with preprocessing applied as rows are gathered, so folds and bootstrap samples are
 * index lists over one loaded dataset rather than copies. */
typedef struct pst_rows {
    const pst_dataset_t *ds; /* dense */
    const size_t *idx;       /* (n) row numbers of ds; NULL: rows 0..n-1 */
    size_t n;
    const pst_preproc_t *preproc; /* applied to gathered rows; NULL: ds is ready to use */
    const size_t *cols;           /* (n_cols) feature columns the model sees; NULL: all */
    size_t n_cols;
} pst_rows_t;

/* Features per gathered row of a view. */
static inline size_t pst_rows_width(const pst_rows_t *r)
{
    return r->cols ? r->n_cols : r->ds->n_features;
}

/* All rows of a ready dataset (NULL gives an empty view). */
pst_rows_t pst_rows_all(const pst_dataset_t *ds);

/* Copies n rows of the view into the contiguous buffers x (n, width) and y (n), applying the
 * view's preprocessing. Row i is view position pos[i], or first + i when pos is NULL. */
int pst_rows_gather(const pst_rows_t *rows, const size_t *pos, size_t first, size_t n, float *x,
                    float *y, pst_err_t *err);

typedef struct pst_train_opts {
    int epochs;
    int batch_size;
    uint64_t seed; /* shuffling and dropout stream of this worker */
    bool shuffle;
    pst_loss_kind_t loss;
    bool fused_output; /* loss gradient taken at the logits of a softmax/sigmoid output */
    float huber_delta;
    float l1, l2;
    double clip_norm; /* 0: off */
    float clip_value; /* 0: off */
    int patience;     /* early stopping; 0: off */
    double min_delta;
    bool restore_best;
    pst_optim_cfg_t optim;
    pst_sched_cfg_t sched;
    long steps_per_epoch;        /* 0: ceil(n_train / batch); distributed runs agree on one value */
    uint64_t start_clock;        /* clocks already done (resume) */
    const double *class_weights; /* (n_classes) weight of each class's rows in the gradient, or
                                    NULL; the reported loss stays unweighted */
    pst_augment_t augment;       /* applied to every training batch; n_ops 0: none */
    pst_dp_opts_t dp;            /* DP-SGD (worker/train/dpsgd.h); dp.clip 0: off */
    pst_prune_t *prune;          /* gradual magnitude pruning (caller owns), or NULL: the mask
                                    grows at epoch ends and holds weights and gradients at zero */
    pst_distill_t *distill;      /* distillation teacher (caller owns), or NULL; needs a fused
                                    softmax output */
    pst_fakequant_t *qat;        /* quantisation-aware training attached to the model (caller
                                    owns), or NULL; not with DP-SGD */
} pst_train_opts_t;

typedef struct pst_epoch_stats {
    int epoch; /* 1-based */
    int epochs;
    double train_loss; /* mean over this worker's batches */
    double val_loss;   /* NaN without validation data */
    double val_metric; /* accuracy (classification) or R^2... here: accuracy or MSE */
    const char *val_metric_name;
    double lr;
    double seconds;       /* wall time of the epoch's training steps */
    double samples_per_s; /* this worker's training rows per second */
    bool improved;
    double epsilon; /* DP-SGD: epsilon spent after this epoch; NaN: off */
} pst_epoch_stats_t;

/* Progress inside an epoch, for a live display. */
typedef struct pst_step_progress {
    int epoch, epochs;
    long step, steps;
    double loss; /* running mean of the epoch */
    double samples_per_s;
} pst_step_progress_t;

/* How a distributed run reaches the parameter servers; all NULL for local training. */
typedef struct pst_train_hooks {
    void *ctx;
    /* Fills params with the global weights for clock (BSP: after clock-1 was applied). */
    int (*pull)(void *ctx, float *params, uint64_t clock, pst_err_t *err);
    /* Sends this worker's gradient for clock, with the learning rate the server applies. */
    int (*push)(void *ctx, const float *grads, uint64_t clock, float lr, pst_err_t *err);
    /* Optional, all three or none: the weights held per dense layer (k counts the model's dense
     * layers from 0; see pst_model_layer_hooks_t). A step then sends every layer's pull with
     * pull_start, gathers its batch, waits for layer k's weights with pull_wait just before that
     * layer's forward, and pushes layer k's gradient with push_layer as soon as backward produced
     * it, the last layer first (after the whole backward when a penalty or clipping still
     * changes the gradients). pull and push above still serve whole-model transfers. */
    int (*pull_start)(void *ctx, float *params, uint64_t clock, pst_err_t *err);
    int (*pull_wait)(void *ctx, int k, pst_err_t *err);
    int (*push_layer)(void *ctx, int k, const float *grads, uint64_t clock, float lr,
                      pst_err_t *err);
    /* Optional, with the three above: called once a step's last layer was pushed when the next
     * step of the same epoch follows, to send that step's pulls (clock) at once, the first layer
     * first; pull_start of that clock then sends only what is not already on its way. Between
     * this call and that step's pull_wait nothing else reads params. */
    int (*pull_ahead)(void *ctx, float *params, uint64_t clock, pst_err_t *err);
    /* Sums vals[0..n) over all workers in place, so every worker takes the same decisions. */
    int (*allreduce_sum)(void *ctx, double *vals, int n, pst_err_t *err);
    /* Optional (BSP): asked after each step's pull, and when an epoch-end exchange fails with
     * PST_ESTATE (its reduction long gone), the clock to train at: clock itself, or a later one
     * when the servers went on without this worker (declared dead while it was stopped);
     * training then carries on from there, the steps and epoch ends between not taken. */
    uint64_t (*rejoin_clock)(void *ctx, uint64_t clock);
    /* Observers; they receive observer_ctx (or ctx when that is NULL). */
    void (*on_epoch)(void *ctx, const pst_epoch_stats_t *stats);
    void (*on_progress)(void *ctx, const pst_step_progress_t *progress);
    /* Every step_every steps (by clock, so a resumed run keeps its cadence): the step's
     * progress, while the model still holds that step's gradients. */
    void (*on_step)(void *ctx, const pst_step_progress_t *progress);
    long step_every;
    void *observer_ctx;
    /* Optional: after every step, with the clocks now completed; a failure stops training (a
     * worker saving its running statistics beside the servers' checkpoints). */
    int (*on_clock)(void *clock_ctx, uint64_t clock, pst_err_t *err);
    void *clock_ctx;
} pst_train_hooks_t;

typedef struct pst_train_result {
    int epochs_run;
    int best_epoch;
    double best_val_loss;
    double seconds;       /* training steps only, all epochs */
    double samples_per_s; /* this worker's rows trained per second of step time */
    long rows_trained;
    uint64_t clock; /* clocks completed */
    bool stopped_early;
    /* DP-SGD (NaN when off): sampling rate, noise multiplier, epsilon spent at the end, and
     * whether the run stopped because the next epoch would pass the budget (epsilon_next). */
    double dp_q, dp_sigma, epsilon, epsilon_next;
    bool stopped_at_budget;
} pst_train_result_t;

/* Fills opts with defaults (adam 1e-3, batch 64, 10 epochs, softmax CE). */
void pst_train_opts_defaults(pst_train_opts_t *opts);

/* Trains model in place on train (dense); val may be NULL. With hooks == NULL or hooks->push ==
 * NULL the optimizer runs locally. On return the model holds the final weights (or the best
 * epoch's when early stopping restored them). */
int pst_train_run(pst_model_t *model, const pst_dataset_t *train, const pst_dataset_t *val,
                  const pst_train_opts_t *opts, const pst_train_hooks_t *hooks,
                  pst_train_result_t *result, pst_err_t *err);
/* The same over row views; val may be NULL or empty. */
int pst_train_rows(pst_model_t *model, const pst_rows_t *train, const pst_rows_t *val,
                   const pst_train_opts_t *opts, const pst_train_hooks_t *hooks,
                   pst_train_result_t *result, pst_err_t *err);

/* Evaluation sums over a dataset: loss sum, correct count (classification) and rows. Uses the
 * model's forward in inference mode, in chunks no larger than the model's max batch. */
typedef struct pst_eval_sums {
    double loss_sum;
    double correct;
    double sq_err_sum;
    double n;
} pst_eval_sums_t;

int pst_eval_sums(pst_model_t *model, const pst_dataset_t *ds, int chunk, pst_loss_kind_t loss,
                  float huber_delta, pst_eval_sums_t *sums, pst_err_t *err);
int pst_eval_sums_rows(pst_model_t *model, const pst_rows_t *rows, int chunk, pst_loss_kind_t loss,
                       float huber_delta, pst_eval_sums_t *sums, pst_err_t *err);

/* Model outputs for every row of ds into out (n_rows, n_outputs), chunk rows per forward pass
 * (at most the model's max batch). */
int pst_predict(pst_model_t *model, const pst_dataset_t *ds, int chunk, float *out, pst_err_t *err);
int pst_predict_rows(pst_model_t *model, const pst_rows_t *rows, int chunk, float *out,
                     pst_err_t *err);

/* Predicted class of one output row: argmax, or p >= 0.5 for a single sigmoid output. */
int pst_predicted_class(const float *out_row, int n_out);

#endif
