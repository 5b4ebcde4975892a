/* Running statistics of a distributed worker, saved and restored beside the checkpoints. */
#include "app/mpi/workerstate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomicfile.h"
#include "common/log.h"
#include "worker/train/statefile.h"

/* The previous file stays as DIR/worker-W.state.prev: a worker may save clock c before the
 * servers' checkpoint of c is written, and a crash in between resumes from the one before. */
static void prev_path(const pst_workerstate_t *ws, char *path, size_t n)
{
    snprintf(path, n, "%s.prev", ws->path);
}

static int save_at_checkpoint(void *ctx, uint64_t clock, pst_err_t *err)
{
    pst_workerstate_t *ws = ctx;
    if (clock % (uint64_t)ws->every != 0)
        return PST_OK;
    char prev[sizeof ws->path + 8];
    prev_path(ws, prev, sizeof prev);
    rename(ws->path, prev); /* none yet at the first checkpoint */
    return pst_statefile_save(ws->path, clock, pst_model_state(ws->model),
                              pst_model_n_state(ws->model), err);
}

void pst_workerstate_hooks(pst_workerstate_t *ws, pst_model_t *model, const char *ckpt_dir,
                           int worker, long every, pst_train_hooks_t *hooks)
{
    memset(ws, 0, sizeof *ws);
    ws->model = model;
    ws->every = every;
    pst_statefile_path(ws->path, sizeof ws->path, ckpt_dir, worker);
    if (pst_model_n_state(model) > 0 && every > 0 && pst_mkdir_p(ckpt_dir, NULL) == PST_OK) {
        hooks->on_clock = save_at_checkpoint;
        hooks->clock_ctx = ws;
    }
}

/* The workers' mean, as the epoch's end of training computes it. */
static int average(pst_model_t *model, const pst_train_hooks_t *hooks, pst_err_t *err)
{
    size_t n = pst_model_n_state(model);
    double *v = malloc((n + 1) * sizeof *v);
    if (v == NULL)
        return pst_err_set(err, PST_ENOMEM, "out of memory for %zu running statistics", n);
    float *state = pst_model_state(model);
    for (size_t i = 0; i < n; i++)
        v[i] = state[i];
    v[n] = 1.0;
    int rc = hooks->allreduce_sum(hooks->ctx, v, (int)n + 1, err);
    for (size_t i = 0; rc == PST_OK && i < n; i++)
        state[i] = (float)(v[i] / v[n]);
    free(v);
    return rc;
}

int pst_workerstate_resume(pst_workerstate_t *ws, uint64_t clock, long steps_per_epoch,
                           const pst_train_hooks_t *hooks, pst_err_t *err)
{
    size_t n = pst_model_n_state(ws->model);
    if (clock == 0 || n == 0)
        return PST_OK;
    uint64_t file_clock;
    pst_err_t why = {0};
    int rc = pst_statefile_load(ws->path, clock, pst_model_state(ws->model), n, &file_clock, &why);
    if (rc == PST_ENOTFOUND) {
        char prev[sizeof ws->path + 8];
        prev_path(ws, prev, sizeof prev);
        pst_err_t why_prev = {0};
        if (pst_statefile_load(prev, clock, pst_model_state(ws->model), n, &file_clock,
                               &why_prev) == PST_OK)
            rc = PST_OK;
    }
    if (rc == PST_ENOTFOUND)
        pst_warn("running statistics start afresh: %s", why.msg);
    else if (rc != PST_OK)
        return pst_err_set(err, rc, "%s", why.msg);
    if (rc == PST_OK && steps_per_epoch > 0 && clock % (uint64_t)steps_per_epoch == 0 &&
        hooks->allreduce_sum != NULL)
        return average(ws->model, hooks, err);
    return PST_OK;
}
