/* Gradual magnitude pruning of dense and conv2d weights (see prune.h). */
#include "worker/train/prune.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One prunable weight tensor: a slice of the arena. */
typedef struct prune_range {
    size_t offset, size; /* floats */
    int k;               /* index among the layers with parameters */
} prune_range_t;

struct pst_prune {
    pst_prune_opts_t opts;
    size_t n_params;
    uint8_t *keep; // (n_params) 1: trained, 0: held at zero; 1 outside the prunable ranges
    prune_range_t *ranges;
    int n_ranges;
    size_t n_prunable;
};

/* A candidate for pruning: its rank key and its place in the arena. */
typedef struct prune_rank {
    float key; /* |w|, or -1 for a weight already pruned, so it is chosen first */
    uint32_t idx;
} prune_rank_t;

int pst_prune_scope_parse(const char *name, pst_prune_scope_t *scope)
{
    if (strcmp(name, "global") == 0)
        *scope = PST_PRUNE_GLOBAL;
    else if (strcmp(name, "layer") == 0)
        *scope = PST_PRUNE_LAYER;
    else
        return PST_EINVAL;
    return PST_OK;
}

double pst_prune_target(const pst_prune_opts_t *opts, int epoch)
{
    if (opts->sparsity <= 0 || epoch < opts->start)
        return 0.0;
    if (epoch >= opts->end)
        return opts->sparsity;
    double f = (double)(epoch - opts->start + 1) / (double)(opts->end - opts->start + 1);
    double rest = 1.0 - f;
    return opts->sparsity * (1.0 - rest * rest * rest);
}

static bool prunable_kind(pst_layer_kind_t kind)
{
    return kind == PST_LAYER_DENSE || kind == PST_LAYER_CONV2D;
}

static bool has_params(pst_layer_kind_t kind)
{
    return prunable_kind(kind) || kind == PST_LAYER_BATCHNORM;
}

pst_prune_t *pst_prune_new(const pst_model_t *model, const pst_prune_opts_t *opts, pst_err_t *err)
{
    pst_prune_t *p = calloc(1, sizeof *p);
    int n_layers = pst_model_n_layers(model);
    if (p) {
        p->opts = *opts;
        p->n_params = pst_model_n_params(model);
        p->keep = malloc(p->n_params ? p->n_params : 1);
        p->ranges = calloc((size_t)n_layers + 1, sizeof *p->ranges);
    }
    if (!p || !p->keep || !p->ranges || p->n_params > UINT32_MAX) {
        pst_prune_destroy(&p);
        pst_err_set(err, PST_ENOMEM, "train.prune: out of memory for the mask");
        return NULL;
    }
    memset(p->keep, 1, p->n_params);
    for (int i = 0, k = 0; i < n_layers; i++) {
        pst_layer_kind_t kind = pst_model_layer(model, i)->kind;
        if (!has_params(kind))
            continue;
        if (prunable_kind(kind)) {
            const pst_tensor_info_t *t = pst_model_tensor(model, 2 * k);
            p->ranges[p->n_ranges++] = (prune_range_t){t->offset, t->size, k};
            p->n_prunable += t->size;
        }
        k++;
    }
    return p;
}

void pst_prune_destroy(pst_prune_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->keep);
    free((*self_p)->ranges);
    free(*self_p);
    *self_p = NULL;
}

static int compare_rank(const void *a, const void *b)
{
    const prune_rank_t *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Prunes the round(sparsity * n) smallest of the given ranges, keeps the rest. */
static void prune_group(pst_prune_t *p, const prune_range_t *ranges, int n_ranges,
                        const float *params, double sparsity, prune_rank_t *rank)
{
    size_t n = 0;
    for (int r = 0; r < n_ranges; r++)
        for (size_t i = ranges[r].offset; i < ranges[r].offset + ranges[r].size; i++)
            rank[n++] = (prune_rank_t){p->keep[i] ? fabsf(params[i]) : -1.0f, (uint32_t)i};
    size_t n_pruned = (size_t)llround(sparsity * (double)n);
    if (n > 0 && n_pruned >= n) /* a scope keeps one weight: a layer of zeros passes nothing */
        n_pruned = n - 1;
    qsort(rank, n, sizeof *rank, compare_rank);
    for (size_t j = 0; j < n; j++)
        p->keep[rank[j].idx] = j >= n_pruned;
}

int pst_prune_update(pst_prune_t *self, const float *params, double sparsity, pst_err_t *err)
{
    if (!(sparsity >= 0 && sparsity < 1))
        return pst_err_set(err, PST_EINVAL, "train.prune: sparsity %g outside [0, 1)", sparsity);
    prune_rank_t *rank = malloc((self->n_prunable ? self->n_prunable : 1) * sizeof *rank);
    if (!rank)
        return pst_err_set(err, PST_ENOMEM, "train.prune: out of memory ranking %zu weights",
                           self->n_prunable);
    if (self->opts.scope == PST_PRUNE_GLOBAL)
        prune_group(self, self->ranges, self->n_ranges, params, sparsity, rank);
    else
        for (int r = 0; r < self->n_ranges; r++)
            prune_group(self, &self->ranges[r], 1, params, sparsity, rank);
    free(rank);
    return PST_OK;
}

int pst_prune_epoch_end(pst_prune_t *self, const float *params, int epoch, bool *changed,
                        pst_err_t *err)
{
    *changed = false;
    if (epoch < self->opts.start || epoch > self->opts.end)
        return PST_OK;
    *changed = true;
    return pst_prune_update(self, params, pst_prune_target(&self->opts, epoch), err);
}

static void apply_range(const pst_prune_t *self, const prune_range_t *r, float *arena)
{
    const uint8_t *keep = self->keep + r->offset;
    float *a = arena + r->offset;
    for (size_t i = 0; i < r->size; i++)
        if (!keep[i])
            a[i] = 0.0f;
}

void pst_prune_apply(const pst_prune_t *self, float *arena)
{
    for (int r = 0; r < self->n_ranges; r++)
        apply_range(self, &self->ranges[r], arena);
}

void pst_prune_apply_layer(const pst_prune_t *self, float *arena, int k)
{
    for (int r = 0; r < self->n_ranges; r++)
        if (self->ranges[r].k == k)
            apply_range(self, &self->ranges[r], arena);
}

double pst_prune_mask_sparsity(const pst_prune_t *self)
{
    size_t pruned = 0;
    for (int r = 0; r < self->n_ranges; r++)
        for (size_t i = 0; i < self->ranges[r].size; i++)
            pruned += !self->keep[self->ranges[r].offset + i];
    return self->n_prunable ? (double)pruned / (double)self->n_prunable : 0.0;
}

const pst_prune_opts_t *pst_prune_opts(const pst_prune_t *self)
{
    return &self->opts;
}

double pst_prune_zero_share(const pst_prune_t *self, const float *params)
{
    size_t zeros = 0;
    for (int r = 0; r < self->n_ranges; r++)
        for (size_t i = 0; i < self->ranges[r].size; i++)
            zeros += params[self->ranges[r].offset + i] == 0.0f;
    return self->n_prunable ? (double)zeros / (double)self->n_prunable : 0.0;
}
