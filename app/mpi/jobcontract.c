/* The job's model contract: declared by the workers from their model, shared with the servers over
 * MPI (which strangers cannot join) before any INIT is served. */
#include "app/mpi/jobcontract.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

/* What a rank declares in the count it shares. */
enum { DECLARES_NONE = -1, DECLARES_FAILED = -2 };

/* Per-layer transfers hide only what takes time: below this many floats a message's fixed costs
 * (and a quantising codec's per-block scales) outweigh the overlap. */
enum { LAYERED_MIN_PARAMS = 4096 };

bool pst_jobcontract_layered(const pst_config_t *cfg, pst_model_t *model)
{
    bool pays = pst_model_n_tensors(model) >= 4 && pst_model_n_params(model) >= LAYERED_MIN_PARAMS;
    return (cfg->transport.prefetch && pays) || cfg->train.freeze.n > 0;
}

int pst_jobcontract_dense(const pst_config_t *cfg, pst_model_t *model, uint32_t model_id,
                          pst_contract_t *c, pst_err_t *err)
{
    if (!pst_jobcontract_layered(cfg, model))
        return pst_contract_add_dense(c, model_id, 0, pst_model_n_params(model), err);
    for (int k = 0; k < pst_model_n_tensors(model) / 2; k++) {
        const pst_tensor_info_t *w = pst_model_tensor(model, 2 * k);
        const pst_tensor_info_t *b = pst_model_tensor(model, 2 * k + 1);
        if (w->frozen)
            continue;
        int rc =
            pst_contract_add_dense(c, model_id, (uint32_t)k, b->offset + b->size - w->offset, err);
        if (rc != PST_OK)
            return rc;
    }
    return PST_OK;
}

int pst_jobcontract_sparse(uint32_t row_width, uint64_t key_bound, pst_contract_t *c,
                           pst_err_t *err)
{
    int rc = key_bound > 0 ? pst_contract_add_sparse_keys(c, 0, 0, row_width, key_bound, err)
                           : pst_contract_add_sparse(c, 0, 0, row_width, err);
    return rc == PST_OK ? pst_contract_add_dense(c, 0, 1, 1, err) : rc;
}

int pst_jobcontract_wide_deep(const pst_wide_deep_spec_t *spec, size_t n_dense, pst_contract_t *c,
                              pst_err_t *err)
{
    uint32_t width = 1 + spec->dim;
    int rc;
    if (spec->field_shift > 0 && spec->field_shift < 64 &&
        spec->n_fields <= UINT64_MAX >> spec->field_shift)
        rc = pst_contract_add_sparse_keys(c, 0, 0, width,
                                          (uint64_t)spec->n_fields << spec->field_shift, err);
    else
        rc = pst_contract_add_sparse(c, 0, 0, width, err);
    return rc == PST_OK ? pst_contract_add_dense(c, 0, 1, n_dense, err) : rc;
}

/* The contract of worker w out of the gathered entries; NULL when it declared none. */
static int worker_contract(const pst_ranks_t *r, const long long *counts, const int *displs,
                           const pst_contract_tensor_t *all, int w, pst_contract_t *out,
                           pst_err_t *err)
{
    int rank = r->n_servers + w;
    pst_contract_fini(out);
    for (long long i = 0; i < counts[rank]; i++) {
        const pst_contract_tensor_t *t = &all[(size_t)displs[rank] / sizeof *t + (size_t)i];
        int rc = pst_contract_add(out, t, err);
        if (rc != PST_OK)
            return pst_err_prefix(err, rc, "worker %d: ", w);
    }
    return PST_OK;
}

/* On a server: worker 0's contract, checked against every other worker's. */
static int agree(const pst_ranks_t *r, const long long *counts, const int *displs,
                 const pst_contract_tensor_t *all, pst_contract_t *agreed, bool *has,
                 pst_err_t *err)
{
    long long first = counts[r->n_servers];
    *has = first >= 0;
    if (first == DECLARES_FAILED)
        return PST_OK; /* the hello exchange ends the job */
    pst_contract_t other;
    pst_contract_init(&other);
    int rc = *has ? worker_contract(r, counts, displs, all, 0, agreed, err) : PST_OK;
    for (int w = 1; w < r->n_workers && rc == PST_OK; w++) {
        long long n = counts[r->n_servers + w];
        if (n == DECLARES_FAILED)
            continue;
        if ((n >= 0) != *has)
            rc = pst_err_set(err, PST_EINVAL, "worker %d declares %s model contract; worker 0 %s",
                             w, n >= 0 ? "a" : "no", *has ? "does" : "does not");
        else if (*has && (rc = worker_contract(r, counts, displs, all, w, &other, err)) == PST_OK &&
                 !pst_contract_equal(&other, agreed))
            rc = pst_err_set(err, PST_EINVAL,
                             "worker %d declares another model contract than worker 0 "
                             "(%zu tensors against %zu)",
                             w, other.n, agreed->n);
    }
    pst_contract_fini(&other);
    return rc;
}

int pst_jobcontract_share(const pst_ranks_t *r, bool failed, const pst_contract_t *mine,
                          pst_contract_t *agreed, bool *has, pst_err_t *err)
{
    long long count = failed ? DECLARES_FAILED : mine != NULL ? (long long)mine->n : DECLARES_NONE;
    if (r->worker < 0)
        count = 0; /* servers declare nothing; their count is not read */
    long long *counts = calloc((size_t)r->size, sizeof *counts);
    int *sizes = calloc((size_t)r->size, sizeof *sizes);
    int *displs = calloc((size_t)r->size, sizeof *displs);
    if (counts == NULL || sizes == NULL || displs == NULL) {
        /* a rank that cannot join the collectives below would hold every other one in them */
        pst_error("out of memory for the model contract of %d ranks", r->size);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    int rc = PST_OK;
    MPI_Allgather(&count, 1, MPI_LONG_LONG, counts, 1, MPI_LONG_LONG, MPI_COMM_WORLD);
    size_t total = 0;
    for (int i = 0; i < r->size; i++) {
        long long n = counts[i] > 0 && counts[i] <= PST_CONTRACT_MAX_TENSORS ? counts[i] : 0;
        if (counts[i] > PST_CONTRACT_MAX_TENSORS)
            counts[i] = DECLARES_FAILED;
        sizes[i] = (int)((size_t)n * sizeof(pst_contract_tensor_t));
        displs[i] = (int)total;
        total += (size_t)sizes[i];
    }
    pst_contract_tensor_t *all = malloc(total > 0 ? total : 1);
    int my_size = count > 0 && count <= PST_CONTRACT_MAX_TENSORS ? sizes[r->rank] : 0;
    /* every rank joins the gather, whatever its memory said, or the others would wait in it */
    MPI_Allgatherv(mine != NULL && my_size > 0 ? mine->tensors : NULL, my_size, MPI_BYTE, all,
                   sizes, displs, MPI_BYTE, MPI_COMM_WORLD);
    if (has != NULL)
        *has = false;
    if (all == NULL)
        rc = pst_err_set(err, PST_ENOMEM, "out of memory for the model contract");
    else if (r->worker < 0 && agreed != NULL && has != NULL)
        rc = agree(r, counts, displs, all, agreed, has, err);
    free(all);
    free(displs);
    free(sizes);
    free(counts);
    return rc;
}

int pst_jobcontract_serve(const pst_ranks_t *r, pst_server_t *srv, int rc_so_far, pst_err_t *err)
{
    pst_contract_t agreed;
    pst_contract_init(&agreed);
    bool has = false;
    pst_err_t own = {0};
    int rc = pst_jobcontract_share(r, false, NULL, &agreed, &has, &own);
    if (rc_so_far == PST_OK && rc == PST_OK && has && srv != NULL)
        rc = pst_server_set_contract(srv, &agreed, &own);
    if (rc_so_far == PST_OK && rc == PST_OK && has)
        pst_info("server %d accepts INIT only for the %zu tensors of the job's model contract",
                 r->rank, agreed.n);
    pst_contract_fini(&agreed);
    if (rc_so_far != PST_OK)
        return rc_so_far;
    if (rc != PST_OK)
        return pst_err_set(err, rc, "%s", own.msg);
    return PST_OK;
}
