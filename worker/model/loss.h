/* Losses over a mini-batch of model outputs, returning the mean loss and its gradient. */
#ifndef PST_WORKER_MODEL_LOSS_H
#define PST_WORKER_MODEL_LOSS_H

#include <stdbool.h>

typedef enum {
    PST_LOSS_SOFTMAX_CE = 0, /* y = class index; expects probabilities from a softmax output */
    PST_LOSS_BCE,            /* y in {0,1}; expects a probability from a sigmoid output (1 unit) */
    PST_LOSS_MSE,
    PST_LOSS_MAE,
    PST_LOSS_HUBER,
} pst_loss_kind_t;

int pst_loss_kind_parse(const char *name, pst_loss_kind_t *kind);
const char *pst_loss_kind_name(pst_loss_kind_t kind);

/* Mean loss over batch rows. out is the model output (batch, n_out); y is (batch) class indices
 * or targets (regression with n_out == 1). If dout is non-NULL it receives the gradient of the
 * mean loss: for softmax CE and BCE with fused == true that is (p - onehot(y)) / batch, the
 * gradient with respect to the logits; otherwise the gradient with respect to out.
 * huber_delta is used by PST_LOSS_HUBER only. Probabilities are clamped to [1e-7, 1 - 1e-7]
 * inside the log. */
double pst_loss_eval(pst_loss_kind_t kind, const float *out, const float *y, int batch, int n_out,
                     float huber_delta, bool fused, float *dout);

/* Penalty added to the loss: l1 * sum|w| + l2/2 * sum w^2 over non-bias tensors, and its gradient
 * added into grads. Declared here, implemented against the model's tensor table. */
struct pst_model;
double pst_loss_penalty(struct pst_model *model, float l1, float l2, bool add_grad);

#endif
