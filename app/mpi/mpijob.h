/* An mpirun job's life: MPI started once, agreements on whether any rank failed, the final join. */
#ifndef PST_APP_MPI_MPIJOB_H
#define PST_APP_MPI_MPIJOB_H

#include <mpi.h>
#include <stdbool.h>

#include "common/err.h"

typedef struct pst_mpijob {
    int rank, size;   /* in MPI_COMM_WORLD */
    int thread_level; /* what MPI provides */
    bool begun;       /* between pst_mpijob_begin and pst_mpijob_end */
    bool owns_mpi;    /* this job started MPI, so it finalizes it */
} pst_mpijob_t;

/* Starts MPI with the thread level pstrain needs (only the main thread calls MPI, other threads
 * may run beside it) and reads the world rank and size. MPI already started elsewhere is used as
 * it is and left running by pst_mpijob_end. */
int pst_mpijob_begin(pst_mpijob_t *job, pst_err_t *err);

/* Agreements on the outcome of a step that every rank of comm took. Each is one collective that
 * every rank of comm must reach, failed or not, and returns the same on every rank: PST_OK when
 * every rank's rc was PST_OK, else the code of the failure that wins. The failure with the
 * highest weight wins; among equal weights, the one of the lowest rank. */

/* Every failure weighs the same: the failure of the lowest failing rank wins. */
int pst_mpijob_agree(MPI_Comm comm, int rc);
/* weight (>= 1) says how telling this rank's failure would be; ignored when rc is PST_OK.
 * *winner (may be NULL): the rank in comm whose failure won, or -1 when none failed. */
int pst_mpijob_agree_ranked(MPI_Comm comm, int rc, int weight, int *winner);
/* As pst_mpijob_agree_ranked, and when a rank failed, every rank's err receives the code and
 * message of the winning failure (a broadcast from its rank: one more collective). */
int pst_mpijob_agree_err(MPI_Comm comm, int rc, int weight, pst_err_t *err);

/* The final join and the end of MPI: every rank gives its exit status and gets the highest one of
 * any rank, then MPI is finalized. Every rank calls it, also after a failure. Without a begun job
 * (begin never reached, or end called already) it only returns status. */
int pst_mpijob_end(pst_mpijob_t *job, int status);
/* pst_mpijob_end waiting at most seconds (<= 0: no limit) for the other ranks: a rank that never
 * comes (a worker stopped and dropped from the job) cannot be joined. On timeout *timed_out is
 * set, MPI is left running and status is returned: the caller ends the job (MPI_Abort). */
int pst_mpijob_end_within(pst_mpijob_t *job, int status, double seconds, bool *timed_out);

#endif
