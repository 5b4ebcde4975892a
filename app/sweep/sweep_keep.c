/* The best jobs' models of a sweep: a small ranked table, written to top_models/. */
#include "app/sweep/sweep_keep.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/atomicfile.h"
#include "common/filesum.h"

typedef struct kept {
    int trial, rung;
    double key; /* smaller is better */
    uint8_t *model;
    size_t len;
    bool written;
} kept_t;

struct pst_sweep_keep {
    int k, n;
    bool maximize;
    kept_t *slots; /* (k) best first */
    int *on_disk;  /* (n_on_disk) trials whose file exists */
    int n_on_disk, cap_on_disk;
};

pst_sweep_keep_t *pst_sweep_keep_new(int k, bool maximize)
{
    pst_sweep_keep_t *keep = calloc(1, sizeof *keep);
    if (!keep || !(keep->slots = calloc((size_t)k + 1, sizeof *keep->slots))) {
        free(keep);
        return NULL;
    }
    keep->k = k;
    keep->maximize = maximize;
    return keep;
}

void pst_sweep_keep_destroy(pst_sweep_keep_t **keep_p)
{
    pst_sweep_keep_t *keep = *keep_p;
    if (!keep)
        return;
    for (int i = 0; i < keep->n; i++)
        free(keep->slots[i].model);
    free(keep->slots);
    free(keep->on_disk);
    free(keep);
    *keep_p = NULL;
}

/* Whether a ranks before b. */
static bool before(const kept_t *a, const kept_t *b)
{
    if (a->rung != b->rung)
        return a->rung > b->rung;
    if (a->key != b->key)
        return a->key < b->key;
    return a->trial < b->trial;
}

static void remove_slot(pst_sweep_keep_t *keep, int i)
{
    free(keep->slots[i].model);
    memmove(&keep->slots[i], &keep->slots[i + 1], (size_t)(keep->n - i - 1) * sizeof *keep->slots);
    keep->n--;
}

void pst_sweep_keep_offer(pst_sweep_keep_t *keep, int trial, int rung, double metric,
                          uint8_t *model, size_t len)
{
    if (!isfinite(metric)) {
        free(model);
        return;
    }
    for (int i = 0; i < keep->n; i++)
        if (keep->slots[i].trial == trial) {
            remove_slot(keep, i);
            break;
        }
    kept_t job = {trial, rung, keep->maximize ? -metric : metric, model, len, false};
    int at = 0;
    while (at < keep->n && before(&keep->slots[at], &job))
        at++;
    if (at >= keep->k) {
        free(model);
        return;
    }
    if (keep->n == keep->k)
        remove_slot(keep, keep->n - 1);
    memmove(&keep->slots[at + 1], &keep->slots[at], (size_t)(keep->n - at) * sizeof *keep->slots);
    keep->slots[at] = job;
    keep->n++;
}

static bool is_kept(const pst_sweep_keep_t *keep, int trial)
{
    for (int i = 0; i < keep->n; i++)
        if (keep->slots[i].trial == trial)
            return true;
    return false;
}

static int note_on_disk(pst_sweep_keep_t *keep, int trial)
{
    for (int i = 0; i < keep->n_on_disk; i++)
        if (keep->on_disk[i] == trial)
            return PST_OK;
    if (keep->n_on_disk == keep->cap_on_disk) {
        int cap = keep->cap_on_disk ? 2 * keep->cap_on_disk : 16;
        int *grown = realloc(keep->on_disk, (size_t)cap * sizeof *grown);
        if (!grown)
            return PST_ENOMEM;
        keep->on_disk = grown;
        keep->cap_on_disk = cap;
    }
    keep->on_disk[keep->n_on_disk++] = trial;
    return PST_OK;
}

int pst_sweep_keep_write(pst_sweep_keep_t *keep, const char *dir, pst_err_t *err)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/top_models", dir);
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        return pst_err_set(err, PST_EIO, "%s: %s", path, strerror(errno));
    for (int i = 0; i < keep->n; i++) {
        kept_t *s = &keep->slots[i];
        if (s->written)
            continue;
        snprintf(path, sizeof path, "%s/top_models/trial_%d.pst", dir, s->trial);
        int rc = pst_filesum_write(path, s->model, s->len, err);
        if (rc == PST_OK)
            rc = note_on_disk(keep, s->trial);
        if (rc != PST_OK)
            return rc;
        s->written = true;
    }
    int kept = 0;
    for (int i = 0; i < keep->n_on_disk; i++) {
        if (is_kept(keep, keep->on_disk[i])) {
            keep->on_disk[kept++] = keep->on_disk[i];
            continue;
        }
        snprintf(path, sizeof path, "%s/top_models/trial_%d.pst", dir, keep->on_disk[i]);
        if (remove(path) != 0 && errno != ENOENT)
            return pst_err_set(err, PST_EIO, "%s: %s", path, strerror(errno));
    }
    keep->n_on_disk = kept;
    return PST_OK;
}

int pst_sweep_keep_trials(const pst_sweep_keep_t *keep, int *ids, int cap)
{
    int n = keep->n < cap ? keep->n : cap;
    for (int i = 0; i < n; i++)
        ids[i] = keep->slots[i].trial;
    return n;
}
