/* Index splits: rows grouped by class, shuffled per group, cut by largest remainders. */
#include "common/sample/split.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"

enum { N_PARTS = 3 };

/* Sizes of the parts of a group of m rows: floor(m * frac) each, the leftover rows going to the
 * parts with the largest fractional remainders (earlier part first on ties). */
static void part_sizes(size_t m, const double frac[N_PARTS], size_t size[N_PARTS])
{
    double rest[N_PARTS];
    size_t total = 0;
    for (int p = 0; p < N_PARTS; p++) {
        double exact = (double)m * frac[p];
        size[p] = (size_t)floor(exact);
        rest[p] = exact - floor(exact);
        total += size[p];
    }
    while (total > m) { /* rounding pushed a floor over: take back from the largest part */
        int big = size[0] >= size[1] ? (size[0] >= size[2] ? 0 : 2) : (size[1] >= size[2] ? 1 : 2);
        size[big]--;
        total--;
    }
    while (total < m) {
        int best = 0;
        for (int p = 1; p < N_PARTS; p++)
            if (rest[p] > rest[best])
                best = p;
        size[best]++;
        rest[best] = -1.0;
        total++;
    }
}

/* Groups rows by class (or one group): order holds row indices group after group, start[g] the
 * first position of group g, start[n_groups] = n_rows. */
static int group_rows(const pst_dataset_t *ds, bool by_class, size_t *order, size_t *start,
                      size_t n_groups, pst_err_t *err)
{
    memset(start, 0, (n_groups + 1) * sizeof *start);
    for (size_t i = 0; i < ds->n_rows; i++) {
        size_t g = 0;
        if (by_class) {
            float y = ds->y[i];
            if (!(y >= 0 && y < (float)n_groups && y == floorf(y)))
                return pst_err_set(err, PST_ERANGE,
                                   "split: row %zu has label %g, not a class "
                                   "index below %zu",
                                   i + 1, (double)y, n_groups);
            g = (size_t)y;
        }
        start[g + 1]++;
    }
    for (size_t g = 0; g < n_groups; g++)
        start[g + 1] += start[g];
    size_t *fill = malloc((n_groups ? n_groups : 1) * sizeof *fill);
    if (fill == NULL)
        return pst_err_set(err, PST_ENOMEM, "split: out of memory");
    memcpy(fill, start, n_groups * sizeof *fill);
    for (size_t i = 0; i < ds->n_rows; i++)
        order[fill[by_class ? (size_t)ds->y[i] : 0]++] = i;
    free(fill);
    return PST_OK;
}

static int alloc_parts(pst_split_t *out, size_t n)
{
    memset(out, 0, sizeof *out);
    out->train = malloc(n * sizeof *out->train);
    out->val = malloc(n * sizeof *out->val);
    out->test = malloc(n * sizeof *out->test);
    return out->train && out->val && out->test ? PST_OK : PST_ENOMEM;
}

/* Shuffles each group, cuts it by part_sizes and appends the pieces to the parts. */
static void deal_groups(size_t *order, const size_t *start, size_t n_groups,
                        const double frac[N_PARTS], pst_rng_t *rng, pst_split_t *out)
{
    size_t *part[N_PARTS] = {out->train, out->val, out->test};
    size_t *count[N_PARTS] = {&out->n_train, &out->n_val, &out->n_test};
    for (size_t g = 0; g < n_groups; g++) {
        size_t m = start[g + 1] - start[g], size[N_PARTS];
        size_t *rows = order + start[g];
        pst_rng_shuffle(rng, rows, m);
        part_sizes(m, frac, size);
        for (int p = 0; p < N_PARTS; p++) {
            memcpy(part[p] + *count[p], rows, size[p] * sizeof *rows);
            *count[p] += size[p];
            rows += size[p];
        }
    }
    for (int p = 0; p < N_PARTS; p++)
        pst_rng_shuffle(rng, part[p], *count[p]);
}

/* Empty parts become NULL so that the struct says what it holds. */
static void drop_empty_parts(pst_split_t *out)
{
    if (out->n_train == 0) {
        free(out->train);
        out->train = NULL;
    }
    if (out->n_val == 0) {
        free(out->val);
        out->val = NULL;
    }
    if (out->n_test == 0) {
        free(out->test);
        out->test = NULL;
    }
}

static int check_fractions(double frac[N_PARTS], pst_err_t *err)
{
    double sum = 0;
    for (int p = 0; p < N_PARTS; p++) {
        if (!(frac[p] >= 0 && frac[p] <= 1))
            return pst_err_set(err, PST_EINVAL, "split: fraction %g is outside [0, 1]", frac[p]);
        sum += frac[p];
    }
    if (fabs(sum - 1.0) > 1e-6)
        return pst_err_set(err, PST_EINVAL,
                           "split: fractions %g + %g + %g must sum to 1 (they sum to %g)", frac[0],
                           frac[1], frac[2], sum);
    for (int p = 0; p < N_PARTS; p++)
        frac[p] /= sum;
    return PST_OK;
}

int pst_split_three(const pst_dataset_t *ds, double train_frac, double val_frac, double test_frac,
                    bool stratify, uint64_t seed, pst_split_t *out, pst_err_t *err)
{
    memset(out, 0, sizeof *out);
    double frac[N_PARTS] = {train_frac, val_frac, test_frac};
    int rc = check_fractions(frac, err);
    if (rc != PST_OK)
        return rc;
    if (ds->n_rows == 0)
        return pst_err_set(err, PST_EINVAL, "split: the dataset has no rows");
    bool by_class = stratify && ds->task == PST_TASK_CLASSIFICATION && ds->n_classes > 0;
    size_t n_groups = by_class ? (size_t)ds->n_classes : 1;
    size_t *order = malloc(ds->n_rows * sizeof *order);
    size_t *start = malloc((n_groups + 1) * sizeof *start);
    rc = order && start ? alloc_parts(out, ds->n_rows) : PST_ENOMEM;
    if (rc != PST_OK)
        rc = pst_err_set(err, rc, "split: out of memory for %zu rows", ds->n_rows);
    if (rc == PST_OK)
        rc = group_rows(ds, by_class, order, start, n_groups, err);
    if (rc == PST_OK) {
        pst_rng_t rng;
        pst_rng_init(&rng, seed);
        deal_groups(order, start, n_groups, frac, &rng, out);
        drop_empty_parts(out);
    }
    free(order);
    free(start);
    if (rc != PST_OK)
        pst_split_fini(out);
    return rc;
}

int pst_split_two(const pst_dataset_t *ds, double val_frac, bool stratify, uint64_t seed,
                  pst_split_t *out, pst_err_t *err)
{
    if (!(val_frac >= 0 && val_frac <= 1)) {
        memset(out, 0, sizeof *out);
        return pst_err_set(err, PST_EINVAL, "split: validation fraction %g is outside [0, 1]",
                           val_frac);
    }
    return pst_split_three(ds, 1.0 - val_frac, val_frac, 0.0, stratify, seed, out, err);
}

void pst_split_fini(pst_split_t *s)
{
    if (s == NULL)
        return;
    free(s->train);
    free(s->val);
    free(s->test);
    memset(s, 0, sizeof *s);
}

int pst_partition_rows(size_t n_rows, int rank, int n_parts, size_t **idx, size_t *n,
                       pst_err_t *err)
{
    if (n_parts <= 0 || rank < 0 || rank >= n_parts)
        return pst_err_set(err, PST_EINVAL, "partition: rank %d of %d parts", rank, n_parts);
    size_t r = (size_t)rank, parts = (size_t)n_parts;
    size_t count = r < n_rows ? (n_rows - r - 1) / parts + 1 : 0;
    size_t *out = malloc((count ? count : 1) * sizeof *out);
    if (out == NULL)
        return pst_err_set(err, PST_ENOMEM, "partition: out of memory for %zu rows", count);
    for (size_t k = 0; k < count; k++)
        out[k] = r + k * parts;
    *idx = out;
    *n = count;
    return PST_OK;
}
