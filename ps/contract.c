/* A job's model contract: the tensors its servers may create, and the check an INIT must pass. */
#include "ps/contract.h"

#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

void pst_contract_init(pst_contract_t *c)
{
    memset(c, 0, sizeof *c);
}

void pst_contract_fini(pst_contract_t *c)
{
    free(c->tensors);
    memset(c, 0, sizeof *c);
}

static const pst_contract_tensor_t *find_exact(const pst_contract_t *c, uint32_t model_id,
                                               uint32_t tensor_id)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->tensors[i].model_id == model_id && c->tensors[i].tensor_id == tensor_id)
            return &c->tensors[i];
    return NULL;
}

static int add(pst_contract_t *c, const pst_contract_tensor_t *t, pst_err_t *err)
{
    if (find_exact(c, t->model_id, t->tensor_id) != NULL)
        return pst_err_set(err, PST_EINVAL, "model contract: tensor %u/%u declared twice",
                           t->model_id, t->tensor_id);
    if (c->n >= PST_CONTRACT_MAX_TENSORS)
        return pst_err_set(err, PST_ERANGE, "model contract: more than %d tensors",
                           PST_CONTRACT_MAX_TENSORS);
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 8;
        if (pst_array_resize((void **)&c->tensors, cap, sizeof *c->tensors) != PST_OK)
            return pst_err_set(err, PST_ENOMEM, "out of memory");
        c->cap = cap;
    }
    c->tensors[c->n++] = *t;
    return PST_OK;
}

int pst_contract_add_dense(pst_contract_t *c, uint32_t model_id, uint32_t tensor_id, uint64_t total,
                           pst_err_t *err)
{
    if (total == 0)
        return pst_err_set(err, PST_EINVAL, "model contract: dense tensor %u/%u of 0 elements",
                           model_id, tensor_id);
    pst_contract_tensor_t t = {.model_id = model_id, .tensor_id = tensor_id, .total = total};
    return add(c, &t, err);
}

int pst_contract_add_sparse(pst_contract_t *c, uint32_t model_id, uint32_t tensor_id,
                            uint32_t row_width, pst_err_t *err)
{
    if (row_width == 0)
        return pst_err_set(err, PST_EINVAL, "model contract: sparse tensor %u/%u with rows of 0",
                           model_id, tensor_id);
    pst_contract_tensor_t t = {
        .model_id = model_id, .tensor_id = tensor_id, .sparse = 1, .row_width = row_width};
    return add(c, &t, err);
}

int pst_contract_add_sparse_keys(pst_contract_t *c, uint32_t model_id, uint32_t tensor_id,
                                 uint32_t row_width, uint64_t key_bound, pst_err_t *err)
{
    if (key_bound == 0)
        return pst_err_set(err, PST_EINVAL, "model contract: sparse tensor %u/%u of no key",
                           model_id, tensor_id);
    int rc = pst_contract_add_sparse(c, model_id, tensor_id, row_width, err);
    if (rc == PST_OK)
        c->tensors[c->n - 1].total = key_bound;
    return rc;
}

int pst_contract_add(pst_contract_t *c, const pst_contract_tensor_t *t, pst_err_t *err)
{
    if (!t->sparse)
        return pst_contract_add_dense(c, t->model_id, t->tensor_id, t->total, err);
    if (t->total == 0)
        return pst_contract_add_sparse(c, t->model_id, t->tensor_id, t->row_width, err);
    return pst_contract_add_sparse_keys(c, t->model_id, t->tensor_id, t->row_width, t->total, err);
}

int pst_contract_copy(pst_contract_t *dst, const pst_contract_t *src, pst_err_t *err)
{
    pst_contract_fini(dst);
    for (size_t i = 0; i < src->n; i++) {
        int rc = add(dst, &src->tensors[i], err);
        if (rc != PST_OK)
            return rc;
    }
    return PST_OK;
}

bool pst_contract_equal(const pst_contract_t *a, const pst_contract_t *b)
{
    return a->n == b->n &&
           (a->n == 0 || memcmp(a->tensors, b->tensors, a->n * sizeof *a->tensors) == 0);
}

const pst_contract_tensor_t *pst_contract_find(const pst_contract_t *c, uint32_t model_id,
                                               uint32_t tensor_id)
{
    const pst_contract_tensor_t *t = find_exact(c, model_id, tensor_id);
    return t != NULL ? t : find_exact(c, PST_CONTRACT_ANY_MODEL, tensor_id);
}

bool pst_contract_has_model(const pst_contract_t *c, uint32_t model_id)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->tensors[i].model_id == model_id)
            return true;
    return false;
}

size_t pst_contract_remove_model(pst_contract_t *c, uint32_t model_id)
{
    size_t kept = 0;
    for (size_t i = 0; i < c->n; i++)
        if (c->tensors[i].model_id != model_id)
            c->tensors[kept++] = c->tensors[i];
    size_t removed = c->n - kept;
    c->n = kept;
    return removed;
}

int pst_contract_admit(const pst_contract_t *c, uint32_t model_id, uint32_t tensor_id, bool sparse,
                       uint64_t total, uint32_t row_width, pst_err_t *err)
{
    const pst_contract_tensor_t *t = pst_contract_find(c, model_id, tensor_id);
    if (t == NULL)
        return pst_err_set(err, PST_EINVAL, "tensor %u/%u is not in the job's model contract",
                           model_id, tensor_id);
    if (sparse != (t->sparse != 0))
        return pst_err_set(err, PST_EINVAL, "tensor %u/%u is %s in the job's model contract",
                           model_id, tensor_id, t->sparse ? "sparse" : "dense");
    if (sparse && row_width != t->row_width)
        return pst_err_set(err, PST_EINVAL,
                           "tensor %u/%u: INIT with rows of %u floats; the job's model contract "
                           "declares %u",
                           model_id, tensor_id, row_width, t->row_width);
    if (!sparse && total != t->total)
        return pst_err_set(err, PST_EINVAL,
                           "tensor %u/%u: INIT of %llu elements; the job's model contract "
                           "declares %llu",
                           model_id, tensor_id, (unsigned long long)total,
                           (unsigned long long)t->total);
    return PST_OK;
}
