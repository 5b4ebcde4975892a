/* A deadline for the collective end of an mpirun job: MPI collectives wait forever for a rank that
 * hangs or is stopped, so a rank whose work is done arms a watchdog before it joins them; if the
 * join has not happened by the deadline, the watchdog says what was waited for and ends this
 * process, and mpirun then ends the whole job (as it does when a rank dies). */
#ifndef PST_APP_MPI_WATCHDOG_H
#define PST_APP_MPI_WATCHDOG_H

typedef struct pst_watchdog pst_watchdog_t;

/* Caller owns the result (NULL when the thread cannot start: the job then runs unguarded). */
pst_watchdog_t *pst_watchdog_new(void);
/* Gives the rank seconds from now to reach pst_watchdog_disarm; what names what it waits for,
 * for the error message (copied). Arming again moves the deadline. Safe on NULL. */
void pst_watchdog_arm(pst_watchdog_t *w, double seconds, const char *what);
void pst_watchdog_disarm(pst_watchdog_t *w);
/* Stops the thread and frees the watchdog; *self_p becomes NULL. Safe twice and on NULL. */
void pst_watchdog_destroy(pst_watchdog_t **self_p);

#endif
