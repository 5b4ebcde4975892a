/* model.pst of a sparse run: the job's hashing, the nonzero rows, the bias or the deep stack. */
#include "app/sparse/sparse_save.h"

#include <stdlib.h>

#include "worker/model/sparsefile.h"

/* The layout the job trained with: type, rows, input format and hashing, configuration. */
static int describe_job(const pst_sparse_run_t *run, pst_sparsefile_t *sf, pst_err_t *err)
{
    const pst_sparse_job_t *j = &run->job;
    if (pst_sparsefile_type_parse(j->type, &sf->type) != PST_OK)
        return pst_err_set(err, PST_EINVAL, "model.type %s has no sparse model file", j->type);
    sf->spec = j->spec;
    sf->format = j->tsv ? PST_SPARSE_TSV_HASHED : PST_SPARSE_LIBSVM;
    if (j->tsv)
        sf->hash = j->hash;
    sf->config_yaml = pst_config_to_string(run->cfg);
    return sf->config_yaml ? PST_OK : pst_err_set(err, PST_ENOMEM, "out of memory");
}

int pst_sparse_save_model(pst_sparse_run_t *run, const pst_sparse_model_t *rows, float bias,
                          pst_wide_deep_t *wd, pst_err_t *err)
{
    pst_sparsefile_t sf = {0};
    int rc = describe_job(run, &sf, err);
    if (rc == PST_OK && wd != NULL)
        rc = pst_sparsefile_take_wide_deep(&sf, wd, err);
    else
        sf.bias = bias;
    if (rc == PST_OK)
        rc = pst_sparsefile_take_rows(&sf, rows, err);
    char path[1100];
    size_t bytes = 0;
    if (rc == PST_OK)
        rc = pst_sparsefile_save(&sf, pst_rundir_file(&run->rundir, "model.pst", path, sizeof path),
                                 &bytes, err);
    if (rc == PST_OK) {
        run->sparse.nonzero_rows = (double)sf.n_rows;
        run->sparse.model_file_bytes = (double)bytes;
    }
    pst_sparsefile_fini(&sf);
    return rc;
}
