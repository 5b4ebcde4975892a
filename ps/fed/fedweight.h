/* How much each answered site's update weighs in a round's mean (fed.weighting): a site's sample
 * count is its own claim, so the server decides how far to believe it. */
#ifndef PST_PS_FED_FEDWEIGHT_H
#define PST_PS_FED_FEDWEIGHT_H

typedef enum {
    PST_FEDWEIGHT_SAMPLES = 0, /* by the claimed rows (FedAvg) */
    PST_FEDWEIGHT_EQUAL,       /* every answered site alike */
    PST_FEDWEIGHT_CAPPED,      /* by the claimed rows, each capped at a multiple of the median */
} pst_fedweight_t;

/* capped: no claim counts for more than this many times the round's lower median claim (the
 * middle one of an odd count, the lower middle of an even one: of two sites, the smaller), so one
 * site can take at most this multiple of a typical site's weight. */
#define PST_FEDWEIGHT_MEDIAN_MULTIPLE 2.0

/* Parses "samples", "equal", "capped". */
int pst_fedweight_parse(const char *name, pst_fedweight_t *out);
const char *pst_fedweight_name(pst_fedweight_t w);

/* Turns the answered sites' claimed rows counts[0..k) into their weights, in place. Returns how
 * many were lowered (capped). */
int pst_fedweight_apply(pst_fedweight_t w, double *counts, int k);

#endif
