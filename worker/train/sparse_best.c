/* The best epoch's weights of a sparse trainer: snapshots of local models, pulls of remote ones. */
#include "worker/train/sparse_best.h"

#include <stdlib.h>
#include <string.h>

void pst_sparse_best_init_local(pst_sparse_best_t *best, pst_sparse_model_t *model)
{
    memset(best, 0, sizeof *best);
    best->model = model;
}

void pst_sparse_best_init_wd(pst_sparse_best_t *best, pst_wd_local_t *wd)
{
    memset(best, 0, sizeof *best);
    best->wd = wd;
}

int pst_sparse_best_init_remote(pst_sparse_best_t *best, pst_sparse_remote_t *remote,
                                const pst_sparse_train_opts_t *opts, pst_err_t *err)
{
    memset(best, 0, sizeof *best);
    best->remote = remote;
    best->copy = pst_sparse_model_new(opts, err);
    return best->copy != NULL ? PST_OK : pst_err_code(err, PST_ENOMEM);
}

void pst_sparse_best_init_wd_remote(pst_sparse_best_t *best, pst_wd_remote_t *remote,
                                    pst_wd_local_t *copy, pst_sparse_trainer_t scorer)
{
    memset(best, 0, sizeof *best);
    best->wd_remote = remote;
    best->wd_copy = copy;
    best->wd_scorer = scorer;
}

void pst_sparse_best_fini(pst_sparse_best_t *best)
{
    pst_sparse_snapshot_fini(&best->snap);
    free(best->dense);
    pst_sparse_model_destroy(&best->copy);
    pst_wd_local_destroy(&best->wd_copy);
    memset(best, 0, sizeof *best);
}

/* The dense stack's parameters into best->dense. */
static int save_dense(pst_sparse_best_t *best, pst_err_t *err)
{
    pst_model_t *mlp = pst_wide_deep_mlp(pst_wd_local_model(best->wd));
    size_t n = pst_model_n_params(mlp);
    if (best->dense == NULL) {
        if ((best->dense = malloc((n > 0 ? n : 1) * sizeof(float))) == NULL)
            return pst_err_set(err, PST_ENOMEM, "out of memory keeping %zu dense weights", n);
        best->n_dense = n;
    }
    memcpy(best->dense, pst_model_params(mlp), n * sizeof(float));
    return PST_OK;
}

int pst_sparse_best_save(pst_sparse_best_t *best, int epoch, pst_err_t *err)
{
    int rc;
    if (best->remote != NULL)
        rc = pst_sparse_remote_pull_model(best->remote, best->copy, err);
    else if (best->wd_remote != NULL)
        rc = pst_wd_remote_pull_model(best->wd_remote, best->wd_copy, err);
    else if (best->wd != NULL) {
        rc = pst_sparse_model_snapshot(pst_wd_local_rows(best->wd), &best->snap, err);
        if (rc == PST_OK)
            rc = save_dense(best, err);
    } else {
        rc = pst_sparse_model_snapshot(best->model, &best->snap, err);
    }
    if (rc == PST_OK)
        best->epoch = epoch;
    return rc;
}

int pst_sparse_best_restore(pst_sparse_best_t *best, pst_sparse_trainer_t *trainer, pst_err_t *err)
{
    if (best->epoch == 0)
        return PST_OK;
    if (best->remote != NULL) {
        *trainer = pst_sparse_trainer_local(best->copy);
        return PST_OK;
    }
    if (best->wd_remote != NULL) {
        *trainer = best->wd_scorer;
        return PST_OK;
    }
    if (best->model != NULL)
        return pst_sparse_model_restore(best->model, &best->snap, err);
    int rc = pst_sparse_model_restore(pst_wd_local_rows(best->wd), &best->snap, err);
    if (rc == PST_OK) {
        pst_model_t *mlp = pst_wide_deep_mlp(pst_wd_local_model(best->wd));
        memcpy(pst_model_params(mlp), best->dense, best->n_dense * sizeof(float));
    }
    return rc;
}
