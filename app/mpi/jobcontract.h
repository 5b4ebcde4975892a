/* The model contract of an mpirun job: the tensors the workers will INIT, declared by every worker
 * from its own configuration and model and handed to the servers over MPI before they serve. */
#ifndef PST_APP_MPI_JOBCONTRACT_H
#define PST_APP_MPI_JOBCONTRACT_H

#include <stdbool.h>

#include "app/mpi/ranks.h"
#include "common/config.h"
#include "ps/contract.h"
#include "worker/model/model.h"
#include "worker/model/wide_deep.h"

/* Whether a dense model travels as one tensor per dense layer (transport.prefetch on a model
 * large enough for the overlap to pay, or any frozen layer) rather than as one tensor. */
bool pst_jobcontract_layered(const pst_config_t *cfg, pst_model_t *model);

/* The tensors of model_id a dense training of model INITs: the one tensor of every parameter, or
 * one per dense layer that is not frozen (pst_remote_begin / pst_remote_begin_layers). */
int pst_jobcontract_dense(const pst_config_t *cfg, pst_model_t *model, uint32_t model_id,
                          pst_contract_t *c, pst_err_t *err);

/* The tensors of a sparse_lr or fm training (worker/train/sparse_remote): the rows of model 0's
 * tensor 0, row_width floats each, every key below key_bound (hashed TSV: the feature index space;
 * 0: no bound, LIBSVM ids), and the one-float bias of its tensor 1. */
int pst_jobcontract_sparse(uint32_t row_width, uint64_t key_bound, pst_contract_t *c,
                           pst_err_t *err);

/* The tensors of a wide_deep training (worker/train/wide_deep_remote): model 0's tensor 0, the
 * embedding and wide rows (1 + spec->dim floats each; with hashed fields, field << field_shift |
 * bucket, every key below n_fields << field_shift), and its tensor 1, the deep stack's n_dense
 * parameters. LIBSVM ids (field_shift 0) have no key bound. */
int pst_jobcontract_wide_deep(const pst_wide_deep_spec_t *spec, size_t n_dense, pst_contract_t *c,
                              pst_err_t *err);

/* Collective over MPI_COMM_WORLD, before the hello exchange. Workers pass the contract they
 * declare (NULL: none; failed: this worker's preparation failed and the hello exchange will end
 * the job), servers NULL. On a server, *has tells whether the workers declared one
 * and *agreed receives it: worker 0's, which every other worker must have declared alike (a
 * worker declaring another is PST_EINVAL naming it: a bug, or a rank not to trust). When no worker
 * declares one, *has is false and the servers are bounded by cluster.server_memory only. */
int pst_jobcontract_share(const pst_ranks_t *r, bool failed, const pst_contract_t *mine,
                          pst_contract_t *agreed, bool *has, pst_err_t *err);

/* A server's side of both: the workers' contract shared and set on srv (when srv is not NULL and
 * rc_so_far is PST_OK). Returns rc_so_far, or the sharing's error. */
int pst_jobcontract_serve(const pst_ranks_t *r, pst_server_t *srv, int rc_so_far, pst_err_t *err);

#endif
