/* A session's records beyond the epoch line: step records (output.log_steps) in metrics.jsonl
 * and the event files, and per-layer weight and gradient histograms (output.histograms). */
#ifndef PST_APP_SESSION_TB_H
#define PST_APP_SESSION_TB_H

#include "app/session.h"

/* One step record: step (global), epoch, train_loss (the epoch's running mean), samples_per_s
 * and grad_norm (L2 norm of this step's gradient). Lead only. */
void pst_session_log_step(pst_session_t *s, const pst_step_progress_t *p);

/* Histograms of every tensor's weights and last gradients at step epoch, tagged
 * weights/layerI/kernel|bias and gradients/layerI/kernel|bias. Lead only. */
void pst_session_log_histograms(pst_session_t *s, int epoch);

/* The communication figures of a distributed run (report.json's "comm": bytes on the wire,
 * push and pull waits, staleness, the servers' own figures) as comm/NAME scalars at the last
 * epoch, in the event files only. Lead only; nothing without them. */
void pst_session_log_comm(pst_session_t *s);

#endif
