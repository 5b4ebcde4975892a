/* Drift profile <-> pst.DriftProfile: views for writing, a full check of what a file holds. */
#include "common/drift/profile_proto.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Most bins or categories a stored distribution may have: above what training writes, so that
 * later versions may keep more, and small enough to bound what a corrupt file can allocate. */
#define MAX_STORED_BINS 4096
/* Counts above this cannot come from a real file and would overflow their sums. */
#define MAX_COUNT ((uint64_t)1 << 53)

Pst__DriftDist *pst_drift_dist_to_proto(const pst_drift_dist_t *d)
{
    Pst__DriftDist *m = malloc(sizeof *m);
    if (m == NULL)
        return NULL;
    pst__drift_dist__init(m);
    m->name = d->name;
    m->kind = (char *)pst_drift_kind_name(d->kind);
    m->edges = d->edges;
    m->n_edges = d->n_edges;
    m->counts = d->counts;
    m->n_counts = d->n_bins;
    m->categories = d->categories;
    m->n_categories = d->n_categories;
    m->n_missing = d->n_missing;
    m->min = d->min;
    m->max = d->max;
    return m;
}

int pst_drift_to_proto(const pst_drift_profile_t *p, Pst__DriftProfile *msg, pst_err_t *err)
{
    msg->features = calloc(p->n_features ? p->n_features : 1, sizeof *msg->features);
    bool ok = msg->features != NULL;
    for (size_t j = 0; ok && j < p->n_features; j++, msg->n_features++)
        ok = (msg->features[j] = pst_drift_dist_to_proto(&p->features[j])) != NULL;
    if (ok && p->has_prediction)
        ok = (msg->prediction = pst_drift_dist_to_proto(&p->prediction)) != NULL;
    if (ok && p->has_label)
        ok = (msg->label = pst_drift_dist_to_proto(&p->label)) != NULL;
    msg->prediction_rows = p->prediction_rows ? p->prediction_rows : "";
    msg->n_inputs = (uint32_t)p->n_inputs;
    if (!ok) {
        pst_drift_proto_free(msg);
        return pst_err_set(err, PST_ENOMEM, "drift profile: out of memory");
    }
    return PST_OK;
}

void pst_drift_proto_free(Pst__DriftProfile *msg)
{
    for (size_t j = 0; msg->features && j < msg->n_features; j++)
        free(msg->features[j]);
    free(msg->features);
    free(msg->prediction);
    free(msg->label);
    msg->features = NULL;
    msg->n_features = 0;
    msg->prediction = msg->label = NULL;
}

/* The shape of one stored distribution: what, where wrong. */
static int check_dist(const Pst__DriftDist *m, const char *origin, const char *what,
                      pst_drift_kind_t *kind, pst_err_t *err)
{
    if (!m->name || !m->name[0])
        return pst_err_set(err, PST_EFORMAT, "%s: drift profile: %s has no name", origin, what);
    bool numeric = m->kind && strcmp(m->kind, "numeric") == 0;
    if (!numeric && !(m->kind && strcmp(m->kind, "categorical") == 0))
        return pst_err_set(err, PST_EFORMAT, "%s: drift profile: %s '%s': unknown kind '%s'",
                           origin, what, m->name, m->kind ? m->kind : "");
    *kind = numeric ? PST_DRIFT_NUMERIC : PST_DRIFT_CATEGORICAL;
    size_t n_parts = numeric ? m->n_edges : m->n_categories;
    if (n_parts > MAX_STORED_BINS || (numeric ? m->n_categories : m->n_edges) != 0)
        return pst_err_set(err, PST_EFORMAT,
                           "%s: drift profile: %s '%s': %zu edges and %zu categories for a %s "
                           "distribution (at most %d %s)",
                           origin, what, m->name, m->n_edges, m->n_categories, m->kind,
                           MAX_STORED_BINS, numeric ? "edges, no categories" : "categories");
    if (m->n_counts != n_parts + 1)
        return pst_err_set(err, PST_EFORMAT, "%s: drift profile: %s '%s': %zu counts for %zu bins",
                           origin, what, m->name, m->n_counts, n_parts + 1);
    for (size_t k = 0; k < m->n_edges; k++)
        if (!isfinite(m->edges[k]) || (k > 0 && !(m->edges[k] > m->edges[k - 1])))
            return pst_err_set(err, PST_EFORMAT,
                               "%s: drift profile: %s '%s': edge %zu (%g) is not finite and above "
                               "the one before",
                               origin, what, m->name, k, m->edges[k]);
    for (size_t k = 0; k < m->n_counts; k++)
        if (m->counts[k] > MAX_COUNT)
            return pst_err_set(err, PST_EFORMAT, "%s: drift profile: %s '%s': count %zu is %llu",
                               origin, what, m->name, k, (unsigned long long)m->counts[k]);
    if (m->n_missing > MAX_COUNT)
        return pst_err_set(err, PST_EFORMAT, "%s: drift profile: %s '%s': %llu missing cells",
                           origin, what, m->name, (unsigned long long)m->n_missing);
    return PST_OK;
}

int pst_drift_dist_from_proto(const Pst__DriftDist *m, pst_drift_dist_t *d, const char *origin,
                              const char *what, pst_err_t *err)
{
    pst_drift_kind_t kind = PST_DRIFT_NUMERIC;
    int rc = check_dist(m, origin, what, &kind, err);
    if (rc != PST_OK)
        return rc;
    pst_drift_dist_t view = {.name = m->name,
                             .kind = kind,
                             .edges = m->edges,
                             .n_edges = m->n_edges,
                             .counts = m->counts,
                             .n_bins = m->n_counts,
                             .categories = m->categories,
                             .n_categories = m->n_categories,
                             .n_missing = m->n_missing,
                             .min = m->min,
                             .max = m->max};
    return pst_drift_dist_copy(d, &view, err);
}

static int read_profile(pst_drift_profile_t *p, const Pst__DriftProfile *msg, size_t n_inputs,
                        const char *origin, pst_err_t *err)
{
    size_t want = n_inputs < PST_DRIFT_MAX_FEATURES ? n_inputs : PST_DRIFT_MAX_FEATURES;
    if (msg->n_inputs != n_inputs || msg->n_features != want)
        return pst_err_set(err, PST_EFORMAT,
                           "%s: drift profile: %zu features of %u inputs, but the model takes %zu "
                           "inputs (%zu profiled)",
                           origin, msg->n_features, msg->n_inputs, n_inputs, want);
    p->n_inputs = n_inputs;
    if (!(p->features = calloc(want ? want : 1, sizeof *p->features)))
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", origin);
    int rc = PST_OK;
    for (size_t j = 0; j < want && rc == PST_OK; j++)
        if ((rc = pst_drift_dist_from_proto(msg->features[j], &p->features[j], origin, "feature",
                                            err)) == PST_OK)
            p->n_features++;
    if (rc == PST_OK && msg->prediction &&
        (rc = pst_drift_dist_from_proto(msg->prediction, &p->prediction, origin, "prediction",
                                        err)) == PST_OK)
        p->has_prediction = true;
    if (rc == PST_OK && msg->label &&
        (rc = pst_drift_dist_from_proto(msg->label, &p->label, origin, "label", err)) == PST_OK)
        p->has_label = true;
    if (rc == PST_OK && msg->prediction_rows && msg->prediction_rows[0] &&
        !(p->prediction_rows = strdup(msg->prediction_rows)))
        rc = pst_err_set(err, PST_ENOMEM, "%s: out of memory", origin);
    return rc;
}

int pst_drift_from_proto(const Pst__DriftProfile *msg, size_t n_inputs, const char *origin,
                         pst_drift_profile_t **out, pst_err_t *err)
{
    pst_drift_profile_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", origin);
    int rc = read_profile(p, msg, n_inputs, origin, err);
    if (rc != PST_OK)
        pst_drift_profile_destroy(&p);
    *out = p;
    return rc;
}
