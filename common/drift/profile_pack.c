/* Drift profile <-> pst.DriftProfilePacked: numeric inputs on a power-of-two grid, exactly. */
#include "common/drift/profile_pack.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/drift/profile_proto.h"

/* Grid values stay within +-2^53, where every integer is exact in a double. */
#define GRID_MAX ((int64_t)1 << 53)
/* Grid exponents a double can need (its lowest bit is at least 2^-1074). */
#define GRID_EXP_MIN (-1074)
#define GRID_EXP_MAX 1023

/* Exponent of the lowest set bit of v (finite, not 0): v = odd * 2^result. */
static int low_exp(double v)
{
    int e;
    double f = frexp(fabs(v), &e);       /* f in [0.5, 1) */
    uint64_t m = (uint64_t)ldexp(f, 53); /* the 53-bit significand, exact */
    return e - 53 + __builtin_ctzll(m);
}

/* Value k of d's grid: its edges, then min, then max. */
static double grid_value(const pst_drift_dist_t *d, size_t k)
{
    return k < d->n_edges ? d->edges[k] : k == d->n_edges ? d->min : d->max;
}

/* The grid exponent that holds d's edges and range exactly, or false when there is none (a
 * categorical distribution, no edges, no range, or values too far apart in magnitude). A -0.0
 * comes back as 0.0, which bins alike (as the plain form, whose proto3 doubles drop it too). */
static bool grid_of(const pst_drift_dist_t *d, int *exp_out)
{
    if (d->kind != PST_DRIFT_NUMERIC || d->n_edges == 0 || !isfinite(d->min) || !isfinite(d->max))
        return false;
    int e = INT_MAX;
    for (size_t k = 0; k < d->n_edges + 2; k++) {
        double v = grid_value(d, k);
        if (v != 0 && low_exp(v) < e)
            e = low_exp(v);
    }
    e = e == INT_MAX ? 0 : e;
    for (size_t k = 0; k < d->n_edges + 2; k++)
        if (!(fabs(ldexp(grid_value(d, k), -e)) <= (double)GRID_MAX))
            return false;
    *exp_out = e;
    return true;
}

static bool is_default_name(const char *name, size_t j)
{
    char buf[32];
    snprintf(buf, sizeof buf, "f%zu", j);
    return strcmp(name, buf) == 0;
}

/* A new message for feature j (d), or NULL without memory. */
static Pst__DriftPackedDist *pack_dist(const pst_drift_dist_t *d, size_t j)
{
    Pst__DriftPackedDist *m = malloc(sizeof *m);
    if (m == NULL)
        return NULL;
    pst__drift_packed_dist__init(m);
    int e;
    if (!grid_of(d, &e)) {
        if ((m->plain = pst_drift_dist_to_proto(d)) == NULL) {
            free(m);
            return NULL;
        }
        return m;
    }
    int64_t *steps = malloc(d->n_edges * sizeof *steps);
    if (steps == NULL) {
        free(m);
        return NULL;
    }
    m->name = is_default_name(d->name, j) ? "" : d->name;
    m->grid_exp = e;
    int64_t prev = 0, first = (int64_t)ldexp(d->edges[0], -e);
    for (size_t k = 0; k < d->n_edges; k++) {
        int64_t at = (int64_t)ldexp(d->edges[k], -e);
        steps[k] = k == 0 ? at : at - prev;
        prev = at;
    }
    m->edges = steps;
    m->n_edges = d->n_edges;
    m->counts = d->counts;
    m->n_counts = d->n_bins;
    m->n_missing = d->n_missing;
    m->below = first - (int64_t)ldexp(d->min, -e);
    m->above = (int64_t)ldexp(d->max, -e) - prev;
    return m;
}

int pst_drift_to_packed(const pst_drift_profile_t *p, Pst__DriftProfilePacked *msg, pst_err_t *err)
{
    msg->features = calloc(p->n_features ? p->n_features : 1, sizeof *msg->features);
    bool ok = msg->features != NULL;
    for (size_t j = 0; ok && j < p->n_features; j++, msg->n_features++)
        ok = (msg->features[j] = pack_dist(&p->features[j], j)) != NULL;
    if (ok && p->has_prediction)
        ok = (msg->prediction = pst_drift_dist_to_proto(&p->prediction)) != NULL;
    if (ok && p->has_label)
        ok = (msg->label = pst_drift_dist_to_proto(&p->label)) != NULL;
    msg->prediction_rows = p->prediction_rows ? p->prediction_rows : "";
    msg->n_inputs = (uint32_t)p->n_inputs;
    if (!ok) {
        pst_drift_packed_free(msg);
        return pst_err_set(err, PST_ENOMEM, "drift profile: out of memory");
    }
    return PST_OK;
}

void pst_drift_packed_free(Pst__DriftProfilePacked *msg)
{
    for (size_t j = 0; msg->features && j < msg->n_features; j++) {
        free(msg->features[j]->plain);
        free(msg->features[j]->edges);
        free(msg->features[j]);
    }
    free(msg->features);
    free(msg->prediction);
    free(msg->label);
    msg->features = NULL;
    msg->n_features = 0;
    msg->prediction = msg->label = NULL;
}

/* at + step into *out, or false when the step or the result leaves the grid (a corrupt file). */
static bool grid_add(int64_t at, int64_t step, int64_t *out)
{
    if (step > 2 * GRID_MAX || step < -2 * GRID_MAX)
        return false;
    int64_t v = at + step; /* |at| <= 2^53, |step| <= 2^54: no overflow */
    if (v > GRID_MAX || v < -GRID_MAX)
        return false;
    *out = v;
    return true;
}

/* The grid of packed feature j as a plain view in out: its edges into edges (room for
 * m->n_edges), a default name into name. The view is checked in full afterwards. */
static int unpack_grid(const Pst__DriftPackedDist *m, size_t j, Pst__DriftDist *out, double *edges,
                       char *name, size_t cap, const char *origin, pst_err_t *err)
{
    if (m->name && m->name[0]) {
        out->name = m->name;
    } else {
        snprintf(name, cap, "f%zu", j);
        out->name = name;
    }
    if (m->n_edges == 0 || m->grid_exp < GRID_EXP_MIN || m->grid_exp > GRID_EXP_MAX)
        return pst_err_set(err, PST_EFORMAT,
                           "%s: drift profile: feature '%s': %zu packed edges on a grid of 2^%d",
                           origin, out->name, m->n_edges, (int)m->grid_exp);
    int64_t first = 0, at = 0;
    for (size_t k = 0; k < m->n_edges; k++) {
        if ((k > 0 && m->edges[k] <= 0) || !grid_add(at, m->edges[k], &at))
            return pst_err_set(err, PST_EFORMAT,
                               "%s: drift profile: feature '%s': edge %zu: step %lld is not "
                               "positive or leaves the grid",
                               origin, out->name, k, (long long)m->edges[k]);
        first = k == 0 ? at : first;
        edges[k] = ldexp((double)at, m->grid_exp);
    }
    int64_t lo = 0, hi = 0;
    bool range_ok = m->below >= -2 * GRID_MAX && m->below <= 2 * GRID_MAX &&
                    grid_add(first, -m->below, &lo) && grid_add(at, m->above, &hi);
    out->kind = "numeric";
    out->edges = edges;
    out->n_edges = m->n_edges;
    out->counts = m->counts;
    out->n_counts = m->n_counts;
    out->n_missing = m->n_missing;
    out->min = ldexp((double)lo, m->grid_exp);
    out->max = ldexp((double)hi, m->grid_exp);
    if (!range_ok || !isfinite(out->min) || !isfinite(out->max))
        return pst_err_set(err, PST_EFORMAT,
                           "%s: drift profile: feature '%s': range %lld below and %lld above the "
                           "edges leaves the grid",
                           origin, out->name, (long long)m->below, (long long)m->above);
    return PST_OK;
}

static int unpack_dist(const Pst__DriftPackedDist *m, size_t j, Pst__DriftDist *out, double *edges,
                       char *name, size_t cap, const char *origin, pst_err_t *err)
{
    if (m->plain == NULL)
        return unpack_grid(m, j, out, edges, name, cap, origin, err);
    if (m->n_edges || m->n_counts || m->grid_exp || m->below || m->above || m->n_missing ||
        (m->name && m->name[0]))
        return pst_err_set(err, PST_EFORMAT,
                           "%s: drift profile: feature %zu is stored both plain and packed", origin,
                           j);
    *out = *m->plain;
    return PST_OK;
}

int pst_drift_from_packed(const Pst__DriftProfilePacked *msg, size_t n_inputs, const char *origin,
                          pst_drift_profile_t **out, pst_err_t *err)
{
    enum { NAME_CAP = 32 };
    *out = NULL;
    size_t n = msg->n_features, n_edges = 0;
    for (size_t j = 0; j < n; j++)
        n_edges += msg->features[j]->n_edges; /* bounded by the message's own size */
    Pst__DriftDist *dists = calloc(n ? n : 1, sizeof *dists);
    Pst__DriftDist **views = calloc(n ? n : 1, sizeof *views);
    double *edges = malloc((n_edges ? n_edges : 1) * sizeof *edges);
    char *names = malloc((n ? n : 1) * NAME_CAP);
    int rc = dists && views && edges && names
                 ? PST_OK
                 : pst_err_set(err, PST_ENOMEM, "%s: out of memory", origin);
    for (size_t j = 0, at = 0; rc == PST_OK && j < n; at += msg->features[j]->n_edges, j++) {
        pst__drift_dist__init(&dists[j]);
        views[j] = &dists[j];
        rc = unpack_dist(msg->features[j], j, &dists[j], edges + at, names + j * NAME_CAP, NAME_CAP,
                         origin, err);
    }
    Pst__DriftProfile view = PST__DRIFT_PROFILE__INIT;
    view.features = views;
    view.n_features = n;
    view.prediction = msg->prediction;
    view.label = msg->label;
    view.prediction_rows = msg->prediction_rows;
    view.n_inputs = msg->n_inputs;
    if (rc == PST_OK)
        rc = pst_drift_from_proto(&view, n_inputs, origin, out, err);
    free(dists);
    free(views);
    free(edges);
    free(names);
    return rc;
}
