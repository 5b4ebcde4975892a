/* The model contract of a plan under mpirun (cv folds, bag members, stack models, sweep trials):
 * each task's namespace is declared to every server by its group's leader over MPI when the task
 * starts, before any INIT, and its DROP at the task's end frees it. */
#ifndef PST_APP_PLAN_PLANCONTRACT_H
#define PST_APP_PLAN_PLANCONTRACT_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "app/mpi/ranks.h"
#include "app/mpi/remote.h"
#include "ps/contract.h"
#include "ps/server.h"

typedef struct pst_plancontract {
    const pst_ranks_t *ranks;
    pst_server_t *server; /* a server rank's server; NULL on workers */
    uint64_t n_declared;  /* server: declarations accepted */
    uint64_t n_refused;   /* server: declarations refused (a bug of the declarer) */
} pst_plancontract_t;

/* Every rank, before the servers serve: srv (a server rank's, else NULL) admits INIT only in
 * declared namespaces, at most max_live at once (the worker groups). */
int pst_plancontract_begin(pst_plancontract_t *pc, const pst_ranks_t *r, pst_server_t *srv,
                           size_t max_live, pst_err_t *err);

/* A server rank's main thread while it waits: handles every declaration that arrived (each
 * answered to its declarer), then naps 50 us. Nothing on a worker rank. */
void pst_plancontract_idle(pst_plancontract_t *pc);
/* Completes req (the plan's closing barrier), handling declarations meanwhile
 * (pst_plancontract_idle); a server then logs how many namespaces were declared. */
void pst_plancontract_wait(pst_plancontract_t *pc, MPI_Request *req);

/* Collective over group (every worker of a task's group): the leader declares namespace
 * model_id's tensors (ns, every entry of model_id) to every server and waits for each answer;
 * every member returns the outcome, PST_OK once every server accepted (then INIT may follow). */
int pst_plancontract_declare(pst_plancontract_t *pc, MPI_Comm group, bool leader, uint32_t model_id,
                             const pst_contract_t *ns, pst_err_t *err);
/* A task's start on the servers: one dense tensor 0 of n elements declared for model_id by the
 * group's leader (pst_plancontract_declare over remote's group), then pst_remote_begin. */
int pst_plancontract_remote_begin(pst_plancontract_t *pc, pst_remote_t *remote, bool leader,
                                  uint32_t model_id, const float *params, size_t n, pst_err_t *err);

#endif
