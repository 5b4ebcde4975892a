/* Elastic sparse jobs: the epoch-end agreement through server 0 and the report of drops. */
#include "app/sparse/sparse_elastic.h"

#include <stdlib.h>

#include "app/mpi/elastic.h"
#include "common/log.h"

/* What each worker adds at an epoch's end. */
enum { AGREE_FAILED, AGREE_STOP, N_AGREE };

int pst_sparse_elastic_agree(pst_remote_t *link, uint64_t clock, int rc, bool *stop, pst_err_t *err)
{
    double v[N_AGREE] = {[AGREE_FAILED] = rc != PST_OK, [AGREE_STOP] = *stop ? 1.0 : 0.0};
    pst_err_t scratch = {0};
    int reduced = pst_elastic_reduce_at(link, clock, v, N_AGREE, &scratch);
    if (rc != PST_OK)
        return rc;
    if (reduced == PST_ESTATE) { /* long gone: the servers' clock is the one to go on from */
        pst_info("%s", scratch.msg);
        *stop = false;
        return PST_OK;
    }
    if (reduced != PST_OK)
        return pst_err_set(err, reduced, "the agreement after clock %llu: %s",
                           (unsigned long long)clock, scratch.msg);
    if (v[AGREE_FAILED] > 0)
        return pst_err_set(err, PST_ESTATE, "another worker failed (its log says why)");
    *stop = v[AGREE_STOP] > 0;
    return PST_OK;
}

void pst_sparse_elastic_report(pst_sparse_run_t *run, const pst_remote_t *link, int n,
                               uint64_t final_clock)
{
    int n_workers = link->n_workers;
    long *share = calloc((size_t)(n_workers > 0 ? n_workers : 1), sizeof *share);
    if (share == NULL)
        return;
    /* row i of the training split is worker i mod W's */
    for (int w = 0; w < n_workers; w++)
        share[w] = ((long)run->n_train_rows - w + n_workers - 1) / n_workers;
    enum { MAX_DROPS = 64 };
    pst_elastic_drop_t drops[MAX_DROPS];
    int n_drops = pst_elastic_drops(link, n, share, run->steps_per_epoch, (long)run->job.batch,
                                    final_clock, drops, MAX_DROPS);
    free(share);
    if (n_drops == 0)
        return;
    cJSON *extra = cJSON_CreateObject();
    if (extra == NULL)
        return;
    pst_elastic_report(extra, drops, n_drops);
    cJSON_Delete(run->elastic);
    run->elastic = cJSON_DetachItemFromObject(extra, "elastic");
    cJSON_Delete(extra);
}
