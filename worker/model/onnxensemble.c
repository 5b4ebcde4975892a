/* An ensemble file as one ONNX graph: members' rows, then the vote or the meta model. */
#include "worker/model/onnxensemble.h"

#include <stdint.h>
#include <stdlib.h>

#include "common/onnx/onnxprep.h"
#include "worker/model/onnxcolumns.h"
#include "worker/model/onnxmodel.h"

/* A member's vote (N, width): share * rows (soft), or share at its predicted class (hard). */
static const char *member_vote(pst_onnx_graph_t *g, pst_voting_t voting, const char *rows,
                               float share, int width)
{
    if (voting == PST_VOTE_SOFT) {
        const char *factor = pst_onnx_graph_unique(g, "share");
        const char *vote = pst_onnx_graph_unique(g, "vote");
        const char *in[] = {rows, factor, NULL};
        if (pst_onnx_graph_floats(g, factor, 0, NULL, &share) != PST_OK ||
            !pst_onnx_graph_op(g, "Mul", vote, in))
            return NULL;
        return vote;
    }
    const char *cls = pst_onnx_graph_unique(g, "member_class");
    const char *rows_in[] = {rows, NULL};
    pst_onnx_node_t *arg = pst_onnx_graph_op(g, "ArgMax", cls, rows_in);
    if (pst_onnx_attr_int(g, arg, "axis", 1) != PST_OK ||
        pst_onnx_attr_int(g, arg, "keepdims", 0) != PST_OK)
        return NULL;
    const char *depth = pst_onnx_graph_unique(g, "depth");
    const char *values = pst_onnx_graph_unique(g, "no_share");
    const int64_t depth_value = width, values_dims[1] = {2};
    const float no_share[2] = {0, share};
    const char *vote = pst_onnx_graph_unique(g, "vote");
    const char *hot_in[] = {cls, depth, values, NULL};
    if (pst_onnx_graph_int64s(g, depth, 0, NULL, &depth_value) != PST_OK ||
        pst_onnx_graph_floats(g, values, 1, values_dims, no_share) != PST_OK)
        return NULL;
    pst_onnx_node_t *hot = pst_onnx_graph_op(g, "OneHot", vote, hot_in);
    return pst_onnx_attr_int(g, hot, "axis", -1) == PST_OK ? vote : NULL;
}

/* The votes summed in member order: the float additions of pst_ensemble_vote, from zero. */
static int emit_vote(pst_onnx_graph_t *g, const pst_ensemble_t *e, const char *const *rows,
                     int width, const char **out, pst_err_t *err)
{
    double total = 0;
    for (int m = 0; m < e->n_members; m++)
        total += e->weights ? e->weights[m] : 1.0;
    if (!(total > 0))
        return pst_err_set(err, PST_EINVAL, "voting needs members with a positive total weight");
    const char *sum = NULL;
    for (int m = 0; m < e->n_members; m++) {
        float share = (float)((e->weights ? e->weights[m] : 1.0) / total);
        const char *vote = member_vote(g, e->voting, rows[m], share, width);
        if (vote && sum) {
            const char *next = pst_onnx_graph_unique(g, "votes");
            const char *in[] = {sum, vote, NULL};
            vote = pst_onnx_graph_op(g, "Add", next, in) ? next : NULL;
        }
        if (!(sum = vote))
            return pst_err_set(err, PST_ENOMEM, "ONNX vote: out of memory");
    }
    *out = sum;
    return PST_OK;
}

int pst_onnx_emit_ensemble(pst_onnx_graph_t *g, const pst_ensemble_t *e, pst_err_t *err)
{
    const pst_modelfile_t *first = &e->members[0];
    int width = pst_ensemble_width(first->task, first->n_classes);
    if (e->voting == PST_VOTE_HARD && !e->meta && first->task != PST_TASK_CLASSIFICATION)
        return pst_err_set(err, PST_EINVAL, "hard voting needs a classification task");
    const char **rows = calloc((size_t)e->n_members, sizeof *rows);
    if (!rows)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    /* The graph inputs are member 1's; each member encodes them with its own fitted encoder. */
    int rc = PST_OK;
    for (int m = 1; m < e->n_members && rc == PST_OK; m++)
        if (!pst_onnx_columns_compatible(first->encoder, e->members[m].encoder))
            rc = pst_err_set(err, PST_EINVAL,
                             "member %d takes other input columns than member 1: such an "
                             "ensemble has no single set of ONNX inputs",
                             m + 1);
    const char *input = NULL;
    if (rc == PST_OK)
        rc = pst_onnx_emit_input(g, first, &input, err);
    for (int m = 0; m < e->n_members && rc == PST_OK; m++)
        if ((rc = pst_onnx_emit_rows(g, &e->members[m], input, width, &rows[m], err)) != PST_OK)
            pst_err_prefix(err, rc, "member %d: ", m + 1);
    const char *out = NULL;
    if (rc == PST_OK && e->meta) {
        const char *stacked = NULL;
        rc = pst_onnx_prep_concat(g, e->n_members, rows, &stacked, err);
        if (rc == PST_OK && (rc = pst_onnx_emit_rows(g, e->meta, stacked, width, &out, err)))
            pst_err_prefix(err, rc, "meta model: ");
    } else if (rc == PST_OK) {
        rc = emit_vote(g, e, rows, width, &out, err);
    }
    if (rc == PST_OK &&
        pst_onnx_graph_metadata(g, "ensemble", pst_ensemble_method_name(e->method)) != PST_OK)
        rc = pst_err_set(err, PST_ENOMEM, "out of memory");
    free(rows);
    return rc == PST_OK ? pst_onnx_emit_outputs(g, first, out, width, err) : rc;
}
