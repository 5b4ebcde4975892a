/* Folds by dealing shuffled rows round-robin or placing whole groups greedily; bootstrap draws. */
#include "common/sample/folds.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/sample/resample.h"
#include "common/rng.h"

/* Row buckets: order holds row indices bucket after bucket, start[b] the first position of
 * bucket b, start[n_buckets] = n_rows. */
typedef struct buckets {
    size_t *order; // (n_rows)
    size_t *start; // (n_buckets + 1)
    size_t n_buckets;
} buckets_t;

/* A group waiting for a fold: its size, its place in a seeded order (ties), its number. */
typedef struct group_entry {
    size_t size;
    size_t rank;
    size_t group;
} group_entry_t;

/* A row and its group id, to number groups by sorting. */
typedef struct group_row {
    int64_t id;
    size_t row;
} group_row_t;

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

static int cmp_group_row(const void *a, const void *b)
{
    const group_row_t *x = a, *y = b;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return (x->row > y->row) - (x->row < y->row);
}

/* Largest group first; equal sizes in seeded rank order. */
static int cmp_group_entry(const void *a, const void *b)
{
    const group_entry_t *x = a, *y = b;
    if (x->size != y->size)
        return x->size > y->size ? -1 : 1;
    return (x->rank > y->rank) - (x->rank < y->rank);
}

static int check_kfold_args(const pst_dataset_t *ds, int k, int repeats, bool by_class,
                            const int64_t *groups, pst_err_t *err)
{
    if (k < 2)
        return pst_err_set(err, PST_EINVAL, "k-fold: k = %d, need at least 2 folds", k);
    if ((size_t)k > ds->n_rows)
        return pst_err_set(err, PST_EINVAL, "k-fold: k = %d folds but the dataset has %zu rows", k,
                           ds->n_rows);
    if (repeats < 1)
        return pst_err_set(err, PST_EINVAL, "k-fold: repeats = %d, need at least 1", repeats);
    if (by_class && groups != NULL)
        return pst_err_set(err, PST_EINVAL,
                           "k-fold: stratified folds with groups are not supported; "
                           "use one or the other");
    size_t folds = (size_t)repeats * (size_t)k;
    if (folds > (size_t)INT32_MAX || ds->n_rows > SIZE_MAX / sizeof(size_t) / folds)
        return pst_err_set(err, PST_EINVAL,
                           "k-fold: %d repeats of %d folds over %zu rows is too many", repeats, k,
                           ds->n_rows);
    return PST_OK;
}

static void buckets_fini(buckets_t *b)
{
    free(b->order);
    free(b->start);
    memset(b, 0, sizeof *b);
}

/* Buckets rows by class (one bucket when by_class is false); warns about classes with fewer
 * rows than folds. */
static int bucket_rows(const pst_dataset_t *ds, bool by_class, int k, buckets_t *b, pst_err_t *err)
{
    b->n_buckets = by_class ? (size_t)ds->n_classes : 1;
    b->order = malloc(ds->n_rows * sizeof *b->order);
    b->start = calloc(b->n_buckets + 1, sizeof *b->start);
    size_t *fill = malloc(b->n_buckets * sizeof *fill);
    int rc = PST_OK;
    if (b->order == NULL || b->start == NULL || fill == NULL)
        rc = pst_err_set(err, PST_ENOMEM, "k-fold: out of memory for %zu rows", ds->n_rows);
    else if (by_class && (rc = pst_class_counts(ds, NULL, ds->n_rows, b->start + 1, err)) != PST_OK)
        pst_err_prefix(err, rc, "k-fold: ");
    else if (!by_class)
        b->start[1] = ds->n_rows;
    for (size_t c = 0; rc == PST_OK && c < b->n_buckets; c++) {
        if (by_class && b->start[c + 1] > 0 && b->start[c + 1] < (size_t)k)
            pst_warn("k-fold: class %zu has %zu rows, fewer than the %d folds", c, b->start[c + 1],
                     k);
        b->start[c + 1] += b->start[c];
        fill[c] = b->start[c];
    }
    for (size_t i = 0; rc == PST_OK && i < ds->n_rows; i++)
        b->order[fill[by_class ? (size_t)ds->y[i] : 0]++] = i;
    free(fill);
    return rc;
}

/* Everything one pst_kfold call holds while it works. */
typedef struct kfold_work {
    int k;
    size_t *label; // (k) fold labels in a seeded order, so which folds get extra rows varies
    size_t *load;  // (k) rows placed in each fold so far (groups)
    int *fold_of;  // (n_rows) test fold of each row in the current repeat
    buckets_t buckets;
    size_t *group_of; // (n_rows) dense group number of each row, or NULL
    size_t *group_size;
    size_t n_groups;
    group_entry_t *entry; // (n_groups)
    size_t *perm;         // (n_groups)
    int *fold_of_group;   // (n_groups)
} kfold_work_t;

static void shuffle_labels(kfold_work_t *w, pst_rng_t *rng)
{
    for (int f = 0; f < w->k; f++)
        w->label[f] = (size_t)f;
    pst_rng_shuffle(rng, w->label, (size_t)w->k);
}

/* One repeat of plain or stratified folds: every bucket shuffled, then all rows dealt
 * round-robin with one running counter. */
static void deal_rows(kfold_work_t *w, pst_rng_t *rng)
{
    buckets_t *b = &w->buckets;
    shuffle_labels(w, rng);
    size_t turn = 0;
    for (size_t c = 0; c < b->n_buckets; c++) {
        size_t *rows = b->order + b->start[c], m = b->start[c + 1] - b->start[c];
        pst_rng_shuffle(rng, rows, m);
        for (size_t i = 0; i < m; i++)
            w->fold_of[rows[i]] = (int)w->label[turn++ % (size_t)w->k];
    }
}

/* Dense group numbers: group_of[row] in 0..*n_groups-1 and *size (caller frees) rows per group. */
static int number_groups(const int64_t *groups, size_t n, size_t *group_of, size_t **size,
                         size_t *n_groups, pst_err_t *err)
{
    group_row_t *pairs = malloc(n * sizeof *pairs);
    *size = calloc(n, sizeof **size);
    if (pairs == NULL || *size == NULL) {
        free(pairs);
        return pst_err_set(err, PST_ENOMEM, "k-fold: out of memory for %zu group ids", n);
    }
    for (size_t i = 0; i < n; i++)
        pairs[i] = (group_row_t){.id = groups[i], .row = i};
    qsort(pairs, n, sizeof *pairs, cmp_group_row);
    size_t g = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && pairs[i].id != pairs[i - 1].id)
            g++;
        group_of[pairs[i].row] = g;
        (*size)[g]++;
    }
    *n_groups = g + 1;
    free(pairs);
    return PST_OK;
}

/* The fold with the fewest rows so far, lowest index on ties. */
static int lightest_fold(const size_t *load, int k)
{
    int best = 0;
    for (int f = 1; f < k; f++)
        if (load[f] < load[best])
            best = f;
    return best;
}

/* One repeat of group folds: groups largest first (ties in a seeded order), each to the fold
 * holding the fewest rows so far, then fold labels shuffled. */
static void place_groups(kfold_work_t *w, size_t n, pst_rng_t *rng)
{
    for (size_t g = 0; g < w->n_groups; g++)
        w->perm[g] = g;
    pst_rng_shuffle(rng, w->perm, w->n_groups);
    for (size_t r = 0; r < w->n_groups; r++)
        w->entry[r] =
            (group_entry_t){.size = w->group_size[w->perm[r]], .rank = r, .group = w->perm[r]};
    qsort(w->entry, w->n_groups, sizeof *w->entry, cmp_group_entry);
    shuffle_labels(w, rng);
    memset(w->load, 0, (size_t)w->k * sizeof *w->load);
    for (size_t r = 0; r < w->n_groups; r++) {
        int f = lightest_fold(w->load, w->k);
        w->load[f] += w->entry[r].size;
        w->fold_of_group[w->entry[r].group] = (int)w->label[f];
    }
    for (size_t i = 0; i < n; i++)
        w->fold_of[i] = w->fold_of_group[w->group_of[i]];
}

/* Fills the k folds of one repeat from fold_of; block is (k, n) of the arena. */
static void build_lists(const int *fold_of, size_t n, int k, size_t *block, pst_fold_t *fold)
{
    for (int f = 0; f < k; f++) {
        size_t *test = block + (size_t)f * n, n_test = 0;
        for (size_t i = 0; i < n; i++)
            n_test += fold_of[i] == f;
        size_t *train = test + n_test, n_train = 0;
        n_test = 0;
        for (size_t i = 0; i < n; i++) {
            if (fold_of[i] == f)
                test[n_test++] = i;
            else
                train[n_train++] = i;
        }
        fold[f] = (pst_fold_t){.train = train, .test = test, .n_train = n_train, .n_test = n_test};
    }
}

static int prepare_groups(const int64_t *groups, size_t n, int k, kfold_work_t *w, pst_err_t *err)
{
    w->group_of = malloc(n * sizeof *w->group_of);
    if (w->group_of == NULL)
        return pst_err_set(err, PST_ENOMEM, "k-fold: out of memory for %zu rows", n);
    int rc = number_groups(groups, n, w->group_of, &w->group_size, &w->n_groups, err);
    if (rc != PST_OK)
        return rc;
    if (w->n_groups < (size_t)k)
        return pst_err_set(err, PST_EINVAL, "k-fold: %zu distinct groups, fewer than the %d folds",
                           w->n_groups, k);
    w->entry = malloc(w->n_groups * sizeof *w->entry);
    w->perm = malloc(w->n_groups * sizeof *w->perm);
    w->fold_of_group = malloc(w->n_groups * sizeof *w->fold_of_group);
    if (w->entry == NULL || w->perm == NULL || w->fold_of_group == NULL)
        return pst_err_set(err, PST_ENOMEM, "k-fold: out of memory for %zu groups", w->n_groups);
    return PST_OK;
}

static int prepare(const pst_dataset_t *ds, int k, bool by_class, const int64_t *groups,
                   kfold_work_t *w, pst_err_t *err)
{
    w->k = k;
    w->label = malloc((size_t)k * sizeof *w->label);
    w->load = malloc((size_t)k * sizeof *w->load);
    w->fold_of = malloc(ds->n_rows * sizeof *w->fold_of);
    if (w->label == NULL || w->load == NULL || w->fold_of == NULL)
        return pst_err_set(err, PST_ENOMEM, "k-fold: out of memory for %zu rows", ds->n_rows);
    if (groups != NULL)
        return prepare_groups(groups, ds->n_rows, k, w, err);
    return bucket_rows(ds, by_class, k, &w->buckets, err);
}

static void work_fini(kfold_work_t *w)
{
    free(w->label);
    free(w->load);
    free(w->fold_of);
    buckets_fini(&w->buckets);
    free(w->group_of);
    free(w->group_size);
    free(w->entry);
    free(w->perm);
    free(w->fold_of_group);
}

static int alloc_folds(pst_folds_t *out, size_t n, int k, int repeats, pst_err_t *err)
{
    out->n_folds = repeats * k;
    out->k = k;
    out->repeats = repeats;
    out->n_rows = n;
    out->fold = calloc((size_t)out->n_folds, sizeof *out->fold);
    out->arena = malloc((size_t)out->n_folds * n * sizeof *out->arena);
    if (out->fold == NULL || out->arena == NULL)
        return pst_err_set(err, PST_ENOMEM, "k-fold: out of memory for %d folds of %zu rows",
                           out->n_folds, n);
    return PST_OK;
}

int pst_kfold(const pst_dataset_t *ds, int k, bool stratified, int repeats, uint64_t seed,
              const int64_t *groups, pst_folds_t *out, pst_err_t *err)
{
    memset(out, 0, sizeof *out);
    bool by_class = stratified && ds->task == PST_TASK_CLASSIFICATION && ds->n_classes > 0;
    int rc = check_kfold_args(ds, k, repeats, by_class, groups, err);
    if (rc != PST_OK)
        return rc;
    kfold_work_t w = {0};
    rc = prepare(ds, k, by_class, groups, &w, err);
    if (rc == PST_OK)
        rc = alloc_folds(out, ds->n_rows, k, repeats, err);
    for (int r = 0; rc == PST_OK && r < repeats; r++) {
        pst_rng_t rng;
        pst_rng_init(&rng, pst_rng_derive(seed, (uint64_t)r));
        if (groups != NULL)
            place_groups(&w, ds->n_rows, &rng);
        else
            deal_rows(&w, &rng);
        size_t first = (size_t)r * (size_t)k;
        build_lists(w.fold_of, ds->n_rows, k, out->arena + first * ds->n_rows, out->fold + first);
    }
    work_fini(&w);
    if (rc != PST_OK)
        pst_folds_fini(out);
    return rc;
}

void pst_folds_fini(pst_folds_t *f)
{
    if (f == NULL)
        return;
    free(f->fold);
    free(f->arena);
    memset(f, 0, sizeof *f);
}

/* The rows never drawn, ascending, into b->oob (NULL when every row was drawn). */
static int collect_oob(pst_bootstrap_t *b, pst_err_t *err)
{
    for (size_t i = 0; i < b->n_rows; i++)
        b->n_oob += b->counts[i] == 0;
    if (b->n_oob == 0)
        return PST_OK;
    b->oob = malloc(b->n_oob * sizeof *b->oob);
    if (b->oob == NULL)
        return pst_err_set(err, PST_ENOMEM, "bootstrap: out of memory for %zu rows", b->n_oob);
    size_t at = 0;
    for (size_t i = 0; i < b->n_rows; i++)
        if (b->counts[i] == 0)
            b->oob[at++] = i;
    return PST_OK;
}

int pst_bootstrap(size_t n_rows, double max_samples, uint64_t seed, pst_bootstrap_t *out,
                  pst_err_t *err)
{
    memset(out, 0, sizeof *out);
    if (!(max_samples > 0 && max_samples <= 1))
        return pst_err_set(err, PST_EINVAL, "bootstrap: max_samples = %g is outside (0, 1]",
                           max_samples);
    double draws = round(max_samples * (double)n_rows);
    if (draws < 1)
        return pst_err_set(err, PST_EINVAL,
                           "bootstrap: max_samples = %g of %zu rows is a sample of no rows",
                           max_samples, n_rows);
    if (draws > (double)UINT32_MAX)
        return pst_err_set(err, PST_ERANGE, "bootstrap: %.0f draws overflow the row counts", draws);
    out->n_rows = n_rows;
    out->n_sample = (size_t)draws;
    out->sample = malloc(out->n_sample * sizeof *out->sample);
    out->counts = calloc(n_rows, sizeof *out->counts);
    int rc = PST_OK;
    if (out->sample == NULL || out->counts == NULL)
        rc = pst_err_set(err, PST_ENOMEM, "bootstrap: out of memory for %zu rows", n_rows);
    if (rc == PST_OK) {
        pst_rng_t rng;
        pst_rng_init(&rng, seed);
        for (size_t s = 0; s < out->n_sample; s++) {
            size_t row = (size_t)pst_rng_below(&rng, n_rows);
            out->sample[s] = row;
            out->counts[row]++;
        }
        rc = collect_oob(out, err);
    }
    if (rc != PST_OK)
        pst_bootstrap_fini(out);
    return rc;
}

void pst_bootstrap_fini(pst_bootstrap_t *b)
{
    if (b == NULL)
        return;
    free(b->sample);
    free(b->counts);
    free(b->oob);
    memset(b, 0, sizeof *b);
}

int pst_feature_subset(size_t n_features, double max_features, uint64_t seed, size_t **cols,
                       size_t *n_cols, pst_err_t *err)
{
    if (n_features == 0)
        return pst_err_set(err, PST_EINVAL, "feature subset: there are no features");
    if (!(max_features > 0 && max_features <= 1))
        return pst_err_set(err, PST_EINVAL, "feature subset: max_features = %g is outside (0, 1]",
                           max_features);
    size_t m = (size_t)round(max_features * (double)n_features);
    if (m < 1)
        m = 1;
    size_t *all = malloc(n_features * sizeof *all);
    if (all == NULL)
        return pst_err_set(err, PST_ENOMEM, "feature subset: out of memory for %zu columns",
                           n_features);
    for (size_t j = 0; j < n_features; j++)
        all[j] = j;
    pst_rng_t rng;
    pst_rng_init(&rng, seed);
    for (size_t j = 0; j < m; j++) { /* partial Fisher-Yates: all[0..m) is a uniform draw */
        size_t pick = j + (size_t)pst_rng_below(&rng, n_features - j), t = all[j];
        all[j] = all[pick];
        all[pick] = t;
    }
    qsort(all, m, sizeof *all, cmp_size);
    size_t *shrunk = realloc(all, m * sizeof *all);
    *cols = shrunk ? shrunk : all;
    *n_cols = m;
    return PST_OK;
}
