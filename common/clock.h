/* Monotonic time for timings and timeouts. */
#ifndef PST_CLOCK_H
#define PST_CLOCK_H

/* Seconds on a monotonic clock (an arbitrary origin: only differences mean anything). */
double pst_clock_seconds(void);

#endif
