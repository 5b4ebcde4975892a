/* A job's model contract: the tensors its servers may create. With a contract, an INIT of any other
 * tensor, or of a declared tensor with another shape, is refused before anything is allocated. */
#ifndef PST_CONTRACT_H
#define PST_CONTRACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Most tensors one contract may declare: a model has a few per layer. */
#define PST_CONTRACT_MAX_TENSORS 4096
/* model_id of an entry that every namespace may create (one architecture, several fits). */
#define PST_CONTRACT_ANY_MODEL UINT32_MAX

/* One declared tensor. A plain struct of fixed-width fields: it travels over MPI as bytes. */
typedef struct pst_contract_tensor {
    uint32_t model_id; /* or PST_CONTRACT_ANY_MODEL */
    uint32_t tensor_id;
    uint32_t sparse;    /* 1: rows created on first touch, row_width floats each */
    uint32_t row_width; /* sparse only; 0 for dense */
    uint64_t total;     /* dense: elements of the whole tensor; sparse: its key bound (every key
                         * below it; 0: any key) */
} pst_contract_tensor_t;

typedef struct pst_contract {
    pst_contract_tensor_t *tensors; // (n)
    size_t n, cap;
} pst_contract_t;

void pst_contract_init(pst_contract_t *c);
void pst_contract_fini(pst_contract_t *c);

/* Declares a tensor; declaring the same (model, tensor) twice is PST_EINVAL, so is a dense
 * tensor of 0 elements or a sparse one with rows of 0. */
int pst_contract_add_dense(pst_contract_t *c, uint32_t model_id, uint32_t tensor_id, uint64_t total,
                           pst_err_t *err);
int pst_contract_add_sparse(pst_contract_t *c, uint32_t model_id, uint32_t tensor_id,
                            uint32_t row_width, pst_err_t *err);

/* A sparse tensor whose keys all lie below key_bound (> 0): a row of any other key is refused
 * before it is created, so the tensor holds at most key_bound rows. */
int pst_contract_add_sparse_keys(pst_contract_t *c, uint32_t model_id, uint32_t tensor_id,
                                 uint32_t row_width, uint64_t key_bound, pst_err_t *err);
/* Declares a copy of *t (either kind, checked as above): how a received contract is rebuilt. */
int pst_contract_add(pst_contract_t *c, const pst_contract_tensor_t *t, pst_err_t *err);

/* dst = a copy of src (dst initialised or empty). */
int pst_contract_copy(pst_contract_t *dst, const pst_contract_t *src, pst_err_t *err);
/* Whether a and b declare the same tensors in the same order. */
bool pst_contract_equal(const pst_contract_t *a, const pst_contract_t *b);

/* The entry declaring (model_id, tensor_id): its own namespace's first, then an any-model one;
 * NULL when the contract does not declare it. */
const pst_contract_tensor_t *pst_contract_find(const pst_contract_t *c, uint32_t model_id,
                                               uint32_t tensor_id);

/* Whether the contract declares any tensor of namespace model_id (its own entries, not any-model
 * ones). */
bool pst_contract_has_model(const pst_contract_t *c, uint32_t model_id);
/* Removes every entry of namespace model_id; returns how many there were. */
size_t pst_contract_remove_model(pst_contract_t *c, uint32_t model_id);

/* PST_OK when the contract allows an INIT of tensor model_id/tensor_id with this shape (dense:
 * total elements; sparse: rows of row_width); otherwise PST_EINVAL with the reason in err. */
int pst_contract_admit(const pst_contract_t *c, uint32_t model_id, uint32_t tensor_id, bool sparse,
                       uint64_t total, uint32_t row_width, pst_err_t *err);

#endif
