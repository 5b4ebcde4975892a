/* A session's model compression while training: train.prune.* (gradual magnitude pruning) and
 * train.teacher (knowledge distillation) and train.qat (quantisation-aware training), set up for
 * the training loop and reported. */
#ifndef PST_APP_SESSION_COMPRESS_H
#define PST_APP_SESSION_COMPRESS_H

#include <cjson/cJSON.h>

#include "app/session.h"

/* Creates the pruning mask, the teacher and the fake quantisation the configuration asks for and
 * points s->opts at them (the session owns them: pst_session_compress_fini). Errors name the key.
 */
int pst_session_compress_setup(pst_session_t *s, pst_err_t *err);
/* Adds "prune", "distill" and "qat" sections to report, when those ran. */
void pst_session_compress_report(const pst_session_t *s, cJSON *report);
void pst_session_compress_fini(pst_session_t *s);

#endif
