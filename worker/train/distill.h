/* Knowledge distillation: a teacher (a model file, or a bag/voting/stacking ensemble file) run on
 * each training batch, and the loss alpha T^2 KL(teacher_T || student_T) + (1 - alpha) CE(labels)
 * with its gradient at the student's logits. */
#ifndef PST_WORKER_TRAIN_DISTILL_H
#define PST_WORKER_TRAIN_DISTILL_H

#include "common/data/preprocess.h"
#include "common/err.h"

typedef struct pst_distill pst_distill_t;

/* What the student sees: rows of n_inputs features already preprocessed by pp (NULL: raw), and
 * n_classes softmax outputs. */
typedef struct pst_distill_student {
    int n_inputs;
    int n_classes;
    const pst_preproc_t *pp;
} pst_distill_student_t;

/* Loads the teacher from path (model or ensemble file) for batches of up to max_batch rows. The
 * teacher must be a classifier of the student's classes over the same input columns; its own
 * preprocessing is reached from the student's by a per-column affine map (exact when the two
 * were fitted on the same data). Errors name the file and what does not match. Caller owns. */
pst_distill_t *pst_distill_new(const char *path, const pst_distill_student_t *student,
                               double temperature, double alpha, int max_batch, pst_err_t *err);
void pst_distill_destroy(pst_distill_t **self_p);

/* The teacher's class probabilities for batch rows of x (batch, n_inputs) in student space;
 * returns a (batch, n_classes) block owned by d, valid until the next call. */
const float *pst_distill_teacher_probs(pst_distill_t *d, const float *x, int batch);

/* The teacher's soft-target scores for batch rows of x: softmax(scores / T) is the softened
 * teacher. A single network ending in a softmax gives its logits (exact at any temperature); an
 * ensemble, which has no logits, the log of its probabilities. (batch, n_classes), owned by d,
 * valid until the next call. */
const float *pst_distill_teacher_scores(pst_distill_t *d, const float *x, int batch);

/* pst_distill_teacher_scores through the cache of rows seen (worker/train/distill_cache.h): the
 * teacher runs only on the rows of x it has not scored before. (batch, n_classes), owned by d,
 * valid until the next call. */
const float *pst_distill_cached_scores(pst_distill_t *d, const float *x, int batch);

/* Rows the teacher has run on so far (each network of an ensemble counts a row once). */
size_t pst_distill_teacher_rows(const pst_distill_t *d);

/* Mean distillation loss of a batch, alpha T^2 KL(softmax(scores/T) || softmax(logits/T)) +
 * (1 - alpha) CE(y, softmax(logits)), from the teacher's scores (batch, n_classes), the student's
 * logits (batch, n_classes) and labels y (batch); dlogits, when not NULL, receives its gradient
 * with respect to the logits: (alpha T (softmax(logits/T) - softmax(scores/T)) + (1 - alpha)
 * (softmax(logits) - onehot(y))) / batch. */
double pst_distill_loss_scores(double temperature, double alpha, const float *scores,
                               const float *logits, const float *y, int batch, int n_classes,
                               float *dlogits);

/* The same from the teacher's probabilities (batch, n_classes), floored before their log. */
double pst_distill_loss_probs(double temperature, double alpha, const float *teacher,
                              const float *logits, const float *y, int batch, int n_classes,
                              float *dlogits);

/* The two together: the teacher on x (through the cache), then the loss, with d's temperature
 * and alpha. */
double pst_distill_loss(pst_distill_t *d, const float *x, const float *logits, const float *y,
                        int batch, float *dlogits);

#endif
