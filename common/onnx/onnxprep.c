/* The fitted preprocessing as ONNX operators: numeric blocks, one-hot columns, their concatenation.
 */
#include "common/onnx/onnxprep.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A (n) float constant named after prefix; its name, or NULL on failure. */
static const char *vector(pst_onnx_graph_t *g, const char *prefix, size_t n, const float *values)
{
    const char *name = pst_onnx_graph_unique(g, prefix);
    int64_t dims[1] = {(int64_t)n};
    return pst_onnx_graph_floats(g, name, 1, dims, values) == PST_OK ? name : NULL;
}

/* out = op(a, b) for a fresh out named after prefix; NULL on failure. */
static const char *binary(pst_onnx_graph_t *g, const char *op, const char *prefix, const char *a,
                          const char *b)
{
    const char *out = pst_onnx_graph_unique(g, prefix);
    const char *inputs[] = {a, b, NULL};
    return pst_onnx_graph_op(g, op, out, inputs) ? out : NULL;
}

static int failed(pst_err_t *err, const char *what)
{
    return pst_err_set(err, PST_ENOMEM, "ONNX %s: out of memory", what);
}

int pst_onnx_prep_numeric(pst_onnx_graph_t *g, const char *input, const pst_onnx_numeric_t *spec,
                          const char **out, pst_err_t *err)
{
    const char *v = input;
    size_t n = spec->n_columns;
    if (spec->pixel_scale != 0 && spec->pixel_scale != 1) {
        const char *factor = vector(g, "pixel_scale", 1, &spec->pixel_scale);
        if (!factor || !(v = binary(g, "Mul", "pixels", v, factor)))
            return failed(err, "pixel scaling");
    }
    if (spec->fill) {
        const char *fill = vector(g, "fill", n, spec->fill);
        const char *missing = pst_onnx_graph_unique(g, "missing");
        const char *nan_in[] = {v, NULL};
        if (!fill || !pst_onnx_graph_op(g, "IsNaN", missing, nan_in))
            return failed(err, "imputation");
        const char *imputed = pst_onnx_graph_unique(g, "imputed");
        const char *where_in[] = {missing, fill, v, NULL};
        if (!pst_onnx_graph_op(g, "Where", imputed, where_in))
            return failed(err, "imputation");
        v = imputed;
    }
    if (spec->shift) {
        const char *shift = vector(g, "shift", n, spec->shift);
        if (!shift || !(v = binary(g, "Sub", "centred", v, shift)))
            return failed(err, "scaling");
    }
    if (spec->scale) {
        const char *scale = vector(g, "scale", n, spec->scale);
        if (!scale || !(v = binary(g, "Mul", "scaled", v, scale)))
            return failed(err, "scaling");
    }
    *out = v;
    return PST_OK;
}

static int check_categories(size_t n, const char *const *categories, const char *input,
                            pst_err_t *err)
{
    if (n == 0)
        return pst_err_set(err, PST_EINVAL, "ONNX encoding of '%s': no categories", input);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(categories[i], categories[j]) == 0)
                return pst_err_set(err, PST_EINVAL,
                                   "ONNX encoding of '%s': category '%s' appears twice", input,
                                   categories[i]);
    return PST_OK;
}

/* LabelEncoder(input): first + the category's index, other for any other string (int64). */
static const char *code_of(pst_onnx_graph_t *g, const char *input, size_t k,
                           const char *const *categories, int64_t first, int64_t other)
{
    int64_t *index = malloc((k ? k : 1) * sizeof *index);
    if (!index)
        return NULL;
    for (size_t i = 0; i < k; i++)
        index[i] = first + (int64_t)i;
    const char *code = pst_onnx_graph_unique(g, "code");
    pst_onnx_node_t *node =
        pst_onnx_graph_node(g, "LabelEncoder", PST_ONNX_ML_DOMAIN, 1, &input, 1, &code);
    int rc = pst_onnx_attr_strings(g, node, "keys_strings", k, categories);
    if (rc == PST_OK)
        rc = pst_onnx_attr_ints(g, node, "values_int64s", k, index);
    if (rc == PST_OK)
        rc = pst_onnx_attr_int(g, node, "default_int64", other);
    free(index);
    return rc == PST_OK ? code : NULL;
}

/* block = Flatten(OneHot(slot, depth k + 1)): (N, 1) indices to (N, k + 1) floats. */
static const char *one_hot(pst_onnx_graph_t *g, const char *slot, size_t k)
{
    const char *depth = pst_onnx_graph_unique(g, "depth");
    const char *values = pst_onnx_graph_unique(g, "off_on");
    const int64_t depth_value = (int64_t)k + 1, values_dims[1] = {2};
    const float off_on[2] = {0, 1};
    if (pst_onnx_graph_int64s(g, depth, 0, NULL, &depth_value) != PST_OK ||
        pst_onnx_graph_floats(g, values, 1, values_dims, off_on) != PST_OK)
        return NULL;
    const char *hot = pst_onnx_graph_unique(g, "one_hot");
    const char *hot_in[] = {slot, depth, values, NULL};
    pst_onnx_node_t *node = pst_onnx_graph_op(g, "OneHot", hot, hot_in);
    if (pst_onnx_attr_int(g, node, "axis", -1) != PST_OK)
        return NULL;
    const char *block = pst_onnx_graph_unique(g, "one_hot_block");
    const char *flat_in[] = {hot, NULL};
    node = pst_onnx_graph_op(g, "Flatten", block, flat_in);
    return pst_onnx_attr_int(g, node, "axis", 1) == PST_OK ? block : NULL;
}

/* The first k columns of block (the "other" slot dropped). */
static const char *first_columns(pst_onnx_graph_t *g, const char *block, size_t k)
{
    const char *starts = pst_onnx_graph_unique(g, "slice_start");
    const char *ends = pst_onnx_graph_unique(g, "slice_end");
    const char *axes = pst_onnx_graph_unique(g, "slice_axis");
    const int64_t one[1] = {1}, start = 0, end = (int64_t)k, axis = 1;
    if (pst_onnx_graph_int64s(g, starts, 1, one, &start) != PST_OK ||
        pst_onnx_graph_int64s(g, ends, 1, one, &end) != PST_OK ||
        pst_onnx_graph_int64s(g, axes, 1, one, &axis) != PST_OK)
        return NULL;
    const char *out = pst_onnx_graph_unique(g, "categories");
    const char *in[] = {block, starts, ends, axes, NULL};
    return pst_onnx_graph_op(g, "Slice", out, in) ? out : NULL;
}

int pst_onnx_prep_onehot(pst_onnx_graph_t *g, const char *input, const pst_onnx_onehot_t *spec,
                         const char **out, pst_err_t *err)
{
    size_t k = spec->n_categories;
    int rc = check_categories(k, spec->categories, input, err);
    if (rc != PST_OK)
        return rc;
    if (pst_onnx_graph_opset(g, PST_ONNX_ML_DOMAIN, PST_ONNX_ML_OPSET) != PST_OK)
        return failed(err, "one-hot");
    const char *slot = code_of(g, input, k, spec->categories, 0, (int64_t)k);
    const char *block = slot ? one_hot(g, slot, spec->n_categories) : NULL;
    if (block && !spec->other)
        block = first_columns(g, block, spec->n_categories);
    if (!block)
        return failed(err, "one-hot");
    *out = block;
    return PST_OK;
}

int pst_onnx_prep_ordinal(pst_onnx_graph_t *g, const char *input, size_t n_categories,
                          const char *const *categories, const char **out, pst_err_t *err)
{
    int rc = check_categories(n_categories, categories, input, err);
    if (rc != PST_OK)
        return rc;
    if (pst_onnx_graph_opset(g, PST_ONNX_ML_DOMAIN, PST_ONNX_ML_OPSET) != PST_OK)
        return failed(err, "ordinal code");
    const char *code = code_of(g, input, n_categories, categories, 1, 0);
    const char *value = pst_onnx_graph_unique(g, "ordinal");
    const char *in[] = {code, NULL};
    if (!code || pst_onnx_attr_int(g, pst_onnx_graph_op(g, "Cast", value, in), "to",
                                   PST_ONNX_FLOAT) != PST_OK)
        return failed(err, "ordinal code");
    *out = value;
    return PST_OK;
}

/* out = Where(op(x, bound), bound, x) for op Less (lower bounds) or Greater (upper bounds). */
static const char *bound_side(pst_onnx_graph_t *g, const char *op, const char *x, size_t n,
                              const float *bound)
{
    const char *b = vector(g, op[0] == 'L' ? "clip_lo" : "clip_hi", n, bound);
    const char *beyond = b ? binary(g, op, "beyond", x, b) : NULL;
    const char *out = pst_onnx_graph_unique(g, "clipped");
    const char *in[] = {beyond, b, x, NULL};
    return beyond && pst_onnx_graph_op(g, "Where", out, in) ? out : NULL;
}

int pst_onnx_prep_clip(pst_onnx_graph_t *g, const char *input, size_t n, const float *lo,
                       const float *hi, const char **out, pst_err_t *err)
{
    /* x < lo ? lo : (x > hi ? hi : x): the upper side first, the lower side over it. */
    const char *upper = bound_side(g, "Greater", input, n, hi);
    const char *both = upper ? bound_side(g, "Less", upper, n, lo) : NULL;
    if (!both)
        return failed(err, "outlier clipping");
    *out = both;
    return PST_OK;
}

int pst_onnx_prep_concat(pst_onnx_graph_t *g, int n, const char *const *blocks, const char **out,
                         pst_err_t *err)
{
    if (n < 1)
        return pst_err_set(err, PST_EINVAL, "ONNX features: no input column groups");
    if (n == 1) {
        *out = blocks[0];
        return PST_OK;
    }
    const char *features = pst_onnx_graph_unique(g, "features");
    pst_onnx_node_t *node = pst_onnx_graph_node(g, "Concat", NULL, n, blocks, 1, &features);
    if (pst_onnx_attr_int(g, node, "axis", 1) != PST_OK)
        return failed(err, "concatenation");
    *out = features;
    return PST_OK;
}

/* One column's graph input and block. */
static int emit_column(pst_onnx_graph_t *g, const pst_onnx_column_t *c, const char **block,
                       pst_err_t *err)
{
    const int64_t dims[2] = {PST_ONNX_BATCH, 1};
    bool number = c->kind == PST_ONNX_COLUMN_NUMBER;
    if (pst_onnx_graph_input(g, c->name, number ? PST_ONNX_FLOAT : PST_ONNX_STRING, 2, dims,
                             number ? "a number (a boolean as 0 or 1), NaN when missing"
                                    : "a category's text, \"\" when missing") != PST_OK)
        return failed(err, "column input");
    if (c->kind == PST_ONNX_COLUMN_ONEHOT) {
        pst_onnx_onehot_t spec = {c->n_categories, c->categories, true};
        return pst_onnx_prep_onehot(g, c->name, &spec, block, err);
    }
    if (c->kind == PST_ONNX_COLUMN_ORDINAL)
        return pst_onnx_prep_ordinal(g, c->name, c->n_categories, c->categories, block, err);
    *block = c->name;
    if (isinf(c->clip_lo) && isinf(c->clip_hi))
        return PST_OK;
    return pst_onnx_prep_clip(g, c->name, 1, &c->clip_lo, &c->clip_hi, block, err);
}

int pst_onnx_prep_columns(pst_onnx_graph_t *g, const pst_onnx_column_t *cols, size_t n,
                          const char **out, pst_err_t *err)
{
    const char **blocks = calloc(n ? n : 1, sizeof *blocks);
    if (!blocks)
        return failed(err, "columns");
    int rc = PST_OK;
    for (size_t j = 0; j < n && rc == PST_OK; j++)
        if ((rc = emit_column(g, &cols[j], &blocks[j], err)) != PST_OK)
            pst_err_prefix(err, rc, "column '%s': ", cols[j].name);
    if (rc == PST_OK)
        rc = pst_onnx_prep_concat(g, (int)n, blocks, out, err);
    free(blocks);
    return rc;
}
