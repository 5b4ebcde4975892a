/* Server-side weighting of the sites' updates: claimed rows, equal, or claims capped at a
 * multiple of the round's median claim. */
#include "ps/fed/fedweight.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"

static const char *const names[] = {"samples", "equal", "capped"};

int pst_fedweight_parse(const char *name, pst_fedweight_t *out)
{
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
        if (name != NULL && strcmp(name, names[i]) == 0) {
            *out = (pst_fedweight_t)i;
            return PST_OK;
        }
    return PST_EINVAL;
}

const char *pst_fedweight_name(pst_fedweight_t w)
{
    return (unsigned)w < sizeof names / sizeof names[0] ? names[w] : "?";
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The lower median of counts[0..k), k >= 1; a copy is sorted (a few dozen sites a round). */
static double lower_median(const double *counts, int k, double *scratch)
{
    memcpy(scratch, counts, (size_t)k * sizeof *scratch);
    qsort(scratch, (size_t)k, sizeof *scratch, by_value);
    return scratch[(k - 1) / 2];
}

int pst_fedweight_apply(pst_fedweight_t w, double *counts, int k)
{
    if (k < 1 || w == PST_FEDWEIGHT_SAMPLES)
        return 0;
    if (w == PST_FEDWEIGHT_EQUAL) {
        for (int i = 0; i < k; i++)
            counts[i] = 1.0;
        return 0;
    }
    double stack[64], *scratch = k <= 64 ? stack : malloc((size_t)k * sizeof *scratch);
    if (scratch == NULL) { /* no memory to find the median: every site alike, never a hostile one */
        for (int i = 0; i < k; i++)
            counts[i] = 1.0;
        return k;
    }
    double cap = PST_FEDWEIGHT_MEDIAN_MULTIPLE * lower_median(counts, k, scratch);
    if (scratch != stack)
        free(scratch);
    int lowered = 0;
    for (int i = 0; i < k; i++)
        if (counts[i] > cap) {
            counts[i] = cap;
            lowered++;
        }
    return lowered;
}
