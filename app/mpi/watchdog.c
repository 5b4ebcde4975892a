/* The end-of-job watchdog: a thread that waits for a deadline and ends the process when it passes
 * while armed. It calls no MPI (the job's MPI is funneled through the main thread): exiting
 * without MPI_Finalize is what makes mpirun end the other ranks. */
#include "app/mpi/watchdog.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "app/console.h"

struct pst_watchdog {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool armed, stop;
    double seconds;
    struct timespec deadline; /* CLOCK_MONOTONIC */
    char what[160];
};

static void *watch_main(void *arg)
{
    pst_watchdog_t *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        int rc = w->armed ? pthread_cond_timedwait(&w->cv, &w->mu, &w->deadline)
                          : pthread_cond_wait(&w->cv, &w->mu);
        if (rc == ETIMEDOUT && w->armed && !w->stop) {
            pst_app_error("%s did not happen within %g s: a rank is hung or stopped; ending the "
                          "job",
                          w->what, w->seconds);
            fflush(stderr);
            _exit(1);
        }
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

pst_watchdog_t *pst_watchdog_new(void)
{
    pst_watchdog_t *w = calloc(1, sizeof *w);
    if (w == NULL)
        return NULL;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return NULL;
    }
    return w;
}

void pst_watchdog_arm(pst_watchdog_t *w, double seconds, const char *what)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    clock_gettime(CLOCK_MONOTONIC, &w->deadline);
    long long ns = (long long)(seconds * 1e9) + w->deadline.tv_nsec;
    w->deadline.tv_sec += (time_t)(ns / 1000000000);
    w->deadline.tv_nsec = (long)(ns % 1000000000);
    w->seconds = seconds;
    snprintf(w->what, sizeof w->what, "%s", what);
    w->armed = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void pst_watchdog_disarm(pst_watchdog_t *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->armed = false;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void pst_watchdog_destroy(pst_watchdog_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    pst_watchdog_t *w = *self_p;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
    *self_p = NULL;
}
