/* Starting and ending MPI once per job, and agreeing on failure in one collective. */
#include "app/mpi/mpijob.h"

#include <limits.h>
#include <string.h>
#include <time.h>

/* The plan runner serves parameters from a thread beside the coordinating main thread, and
 * ZeroMQ runs its own I/O threads: MPI is called from the main thread only. */
#define THREAD_LEVEL MPI_THREAD_FUNNELED

_Static_assert(sizeof(long) >= 8, "an agreement key needs 64 bits");

int pst_mpijob_begin(pst_mpijob_t *job, pst_err_t *err)
{
    memset(job, 0, sizeof *job);
    int started = 0;
    MPI_Initialized(&started);
    if (started)
        MPI_Query_thread(&job->thread_level);
    else if (MPI_Init_thread(NULL, NULL, THREAD_LEVEL, &job->thread_level) != MPI_SUCCESS)
        return pst_err_set(err, PST_EIO, "MPI did not start");
    job->owns_mpi = !started;
    job->begun = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &job->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &job->size);
    return PST_OK;
}

/* One MPI_MAXLOC reduction carries the whole agreement. Each rank's key orders its failure: the
 * weight in the high half (0 for success), then the lower rank first in the low half. Keys are
 * unique, so the pair's index is exactly the code of the rank with the largest key. */
int pst_mpijob_agree_ranked(MPI_Comm comm, int rc, int weight, int *winner)
{
    int rank = 0;
    MPI_Comm_rank(comm, &rank);
    long w = rc == PST_OK ? 0 : weight < 1 ? 1 : weight;
    struct {
        long key;
        int code;
    } mine = {(w << 32) | (long)(INT_MAX - rank), rc}, best;
    MPI_Allreduce(&mine, &best, 1, MPI_LONG_INT, MPI_MAXLOC, comm);
    if (winner)
        *winner = best.code == PST_OK ? -1 : INT_MAX - (int)(best.key & 0xffffffffL);
    return best.code;
}

int pst_mpijob_agree(MPI_Comm comm, int rc)
{
    return pst_mpijob_agree_ranked(comm, rc, 1, NULL);
}

int pst_mpijob_agree_err(MPI_Comm comm, int rc, int weight, pst_err_t *err)
{
    int winner = -1;
    int code = pst_mpijob_agree_ranked(comm, rc, weight, &winner);
    if (code == PST_OK)
        return PST_OK;
    pst_err_t shared = {0};
    int rank = 0;
    MPI_Comm_rank(comm, &rank);
    if (rank == winner && err)
        shared = *err;
    MPI_Bcast(&shared, (int)sizeof shared, MPI_BYTE, winner, comm);
    shared.code = code;
    if (err)
        *err = shared;
    return code;
}

int pst_mpijob_end(pst_mpijob_t *job, int status)
{
    return pst_mpijob_end_within(job, status, 0, NULL);
}

/* Every rank joins with the same non-blocking reduction (blocking and non-blocking collectives do
 * not match), tested until it completes or the time is up. */
int pst_mpijob_end_within(pst_mpijob_t *job, int status, double seconds, bool *timed_out)
{
    if (timed_out)
        *timed_out = false;
    if (!job->begun)
        return status;
    int worst = status, done = 0;
    MPI_Request req;
    MPI_Iallreduce(&status, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD, &req);
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        MPI_Test(&req, &done, MPI_STATUS_IGNORE);
        if (done)
            break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        double waited =
            (double)(now.tv_sec - t0.tv_sec) + 1e-9 * (double)(now.tv_nsec - t0.tv_nsec);
        if (seconds > 0 && waited > seconds) {
            if (timed_out)
                *timed_out = true;
            return status;
        }
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    if (job->owns_mpi)
        MPI_Finalize();
    job->begun = false;
    return worst;
}
