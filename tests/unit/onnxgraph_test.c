/* Tests for common/onnx/onnxgraph and onnxprep: a packed graph decodes (with the protoc-c code of
 * onnx.proto) to the nodes, attributes, shapes and bit-exact constants that were added; names
 * stay unique; the numeric block emits each fitted step in pst_preproc's order and leaves out
 * the absent ones; the string one-hot prototype (LabelEncoder + OneHot + Flatten, with or without
 * the "other" slot) carries the categories and slots; bad category lists are refused; and a
 * hand-made graph of a numeric block and a one-hot string column, concatenated, runs in
 * onnxruntime (onnxruntime-node through tests/e2e/onnx_run.js; skipped when it is not installed)
 * to the features computed by hand, unseen strings in the "other" slot or all zeros; outlier
 * clipping (Greater, Less, Where) and ordinal codes (LabelEncoder, Cast), as nodes and run in
 * onnxruntime; a table of numeric, one-hot, ordinal and boolean columns, each its own graph
 * input, then the numeric block, as nodes and run in onnxruntime. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <unistd.h>

#include "common/atomicfile.h"
#include "common/log.h"
#include "common/onnx/onnxgraph.h"
#include "common/onnx/onnxprep.h"
#include "onnx/onnx.pb-c.h"
#include "onnx_check.h"
#include "scratch.h"

static void packed_graph_decodes_to_what_was_built(void **state)
{
    pst_err_t err = {0};
    pst_onnx_graph_t *g = pst_onnx_graph_new("g", &err);
    assert_non_null(g);
    const int64_t in_dims[2] = {PST_ONNX_BATCH, 3}, w_dims[2] = {2, 3}, c_dims[1] = {2};
    const float w[6] = {0.1f, -2.5f, 3.0e-7f, NAN, INFINITY, -0.0f};
    const int64_t codes[2] = {-7, INT64_MAX};
    const double levels[2] = {0.1, -1e300};
    const char *const words[2] = {"é", ""};
    assert_int_equal(pst_onnx_graph_input(g, "x", PST_ONNX_FLOAT, 2, in_dims, "rows"), PST_OK);
    assert_int_equal(pst_onnx_graph_floats(g, "w", 2, w_dims, w), PST_OK);
    assert_int_equal(pst_onnx_graph_int64s(g, "codes", 1, c_dims, codes), PST_OK);
    assert_int_equal(pst_onnx_graph_doubles(g, "levels", 1, c_dims, levels), PST_OK);
    assert_int_equal(pst_onnx_graph_strings(g, "words", 1, c_dims, words), PST_OK);
    const char *in[] = {"x", "w", NULL};
    pst_onnx_node_t *node = pst_onnx_graph_op(g, "MatMul", "y", in);
    assert_non_null(node);
    assert_int_equal(pst_onnx_attr_int(g, node, "i", -3), PST_OK);
    assert_int_equal(pst_onnx_attr_float(g, node, "f", 0.25f), PST_OK);
    assert_int_equal(pst_onnx_attr_ints(g, node, "is", 2, codes), PST_OK);
    assert_int_equal(pst_onnx_attr_strings(g, node, "ss", 2, words), PST_OK);
    assert_int_equal(pst_onnx_graph_output(g, "y", PST_ONNX_FLOAT, 2, in_dims, "out"), PST_OK);
    assert_int_equal(pst_onnx_graph_opset(g, PST_ONNX_ML_DOMAIN, 2), PST_OK);
    assert_int_equal(pst_onnx_graph_opset(g, PST_ONNX_ML_DOMAIN, 1), PST_OK);
    assert_int_equal(pst_onnx_graph_metadata(g, "k", "v"), PST_OK);

    Onnx__ModelProto *m = round_trip(g);
    assert_int_equal(m->ir_version, PST_ONNX_IR_VERSION);
    assert_int_equal(m->n_opset_import, 2);
    assert_string_equal(m->opset_import[0]->domain, "");
    assert_int_equal(m->opset_import[0]->version, PST_ONNX_OPSET);
    assert_string_equal(m->opset_import[1]->domain, PST_ONNX_ML_DOMAIN);
    assert_int_equal(m->opset_import[1]->version, 1); /* the second call updated it */
    assert_string_equal(m->metadata_props[0]->key, "k");
    const Onnx__GraphProto *gp = m->graph;
    assert_string_equal(gp->input[0]->name, "x");
    const Onnx__TensorShapeProto *shape = gp->input[0]->type->tensor_type->shape;
    assert_int_equal(shape->n_dim, 2);
    assert_string_equal(shape->dim[0]->dim_param, "N");
    assert_int_equal(shape->dim[1]->dim_value, 3);
    const Onnx__TensorProto *t = initializer(gp, "w");
    assert_int_equal(t->data_type, PST_ONNX_FLOAT);
    assert_int_equal(t->n_dims, 2);
    assert_int_equal(t->n_float_data, 6);
    assert_memory_equal(t->float_data, w, sizeof w); /* NaN, infinity and -0 bit for bit */
    assert_memory_equal(initializer(gp, "codes")->int64_data, codes, sizeof codes);
    assert_memory_equal(initializer(gp, "levels")->double_data, levels, sizeof levels);
    const Onnx__TensorProto *s = initializer(gp, "words");
    assert_int_equal(s->string_data[0].len, strlen("é"));
    assert_memory_equal(s->string_data[0].data, "é", strlen("é"));
    assert_int_equal(s->string_data[1].len, 0);
    const Onnx__NodeProto *n = gp->node[0];
    assert_string_equal(n->op_type, "MatMul");
    assert_int_equal(n->n_input, 2);
    assert_string_equal(n->input[1], "w");
    assert_int_equal(attr(n, "i")->i, -3);
    assert_true(attr(n, "f")->f == 0.25f);
    assert_int_equal(attr(n, "is")->ints[1], INT64_MAX);
    assert_int_equal(attr(n, "ss")->n_strings, 2);
    onnx__model_proto__free_unpacked(m, NULL);
    pst_onnx_graph_destroy(&g);
    assert_null(g);
    pst_onnx_graph_destroy(&g);
}

static void unique_names_skip_every_taken_name(void **state)
{
    pst_onnx_graph_t *g = pst_onnx_graph_new("g", NULL);
    const int64_t dims[1] = {1};
    const float one = 1;
    assert_string_equal(pst_onnx_graph_unique(g, "scale"), "scale");
    assert_int_equal(pst_onnx_graph_floats(g, "scale", 1, dims, &one), PST_OK);
    assert_int_equal(pst_onnx_graph_input(g, "scale_2", PST_ONNX_FLOAT, 1, dims, NULL), PST_OK);
    assert_string_equal(pst_onnx_graph_unique(g, "scale"), "scale_3");
    const char *in[] = {"scale", NULL};
    assert_non_null(pst_onnx_graph_op(g, "Identity", "scale_3", in));
    assert_string_equal(pst_onnx_graph_unique(g, "scale"), "scale_4");
    pst_onnx_graph_destroy(&g);
}

static void numeric_block_applies_each_fitted_step_in_order(void **state)
{
    pst_onnx_graph_t *g = pst_onnx_graph_new("g", NULL);
    const float fill[2] = {0.5f, -1.25f}, shift[2] = {0.25f, 3.0f}, scale[2] = {2.0f, 1.0f / 3};
    pst_onnx_numeric_t spec = {2, 1.0f / 255, fill, shift, scale};
    const char *out = NULL;
    pst_err_t err = {0};
    assert_int_equal(pst_onnx_prep_numeric(g, "x", &spec, &out, &err), PST_OK);
    Onnx__ModelProto *m = round_trip(g);
    char ops[256];
    op_list(m->graph, ops, sizeof ops);
    assert_string_equal(ops, "Mul IsNaN Where Sub Mul");
    Onnx__NodeProto **n = m->graph->node;
    assert_string_equal(n[0]->input[0], "x");
    float factor = initializer(m->graph, n[0]->input[1])->float_data[0];
    assert_memory_equal(&factor, &spec.pixel_scale, sizeof factor);
    /* Where(missing, fill, v): the fill where the pixel-scaled cell is NaN, else the cell. */
    assert_string_equal(n[2]->input[0], n[1]->output[0]);
    assert_memory_equal(initializer(m->graph, n[2]->input[1])->float_data, fill, sizeof fill);
    assert_string_equal(n[2]->input[2], n[0]->output[0]);
    assert_memory_equal(initializer(m->graph, n[3]->input[1])->float_data, shift, sizeof shift);
    assert_memory_equal(initializer(m->graph, n[4]->input[1])->float_data, scale, sizeof scale);
    assert_string_equal(n[4]->input[0], n[3]->output[0]);
    assert_string_equal(out, n[4]->output[0]);
    onnx__model_proto__free_unpacked(m, NULL);
    pst_onnx_graph_destroy(&g);
}

static void numeric_block_leaves_out_absent_steps(void **state)
{
    pst_onnx_graph_t *g = pst_onnx_graph_new("g", NULL);
    const float shift[1] = {1};
    pst_onnx_numeric_t only_shift = {1, 1.0f, NULL, shift, NULL},
                       nothing = {1, 0, NULL, NULL, NULL};
    const char *out = NULL;
    assert_int_equal(pst_onnx_prep_numeric(g, "x", &nothing, &out, NULL), PST_OK);
    assert_string_equal(out, "x");
    assert_int_equal(pst_onnx_prep_numeric(g, "x", &only_shift, &out, NULL), PST_OK);
    Onnx__ModelProto *m = round_trip(g);
    char ops[256];
    op_list(m->graph, ops, sizeof ops);
    assert_string_equal(ops, "Sub");
    assert_string_equal(out, m->graph->node[0]->output[0]);
    onnx__model_proto__free_unpacked(m, NULL);
    pst_onnx_graph_destroy(&g);
}

/* The one-hot of column "color" with slots red, green, blue (+ other); checks the nodes. */
static void check_one_hot(bool other)
{
    pst_onnx_graph_t *g = pst_onnx_graph_new("g", NULL);
    const char *const cats[3] = {"red", "green", "blue"};
    pst_onnx_onehot_t spec = {3, cats, other};
    const char *out = NULL;
    assert_int_equal(pst_onnx_prep_onehot(g, "color", &spec, &out, NULL), PST_OK);
    Onnx__ModelProto *m = round_trip(g);
    char ops[256];
    op_list(m->graph, ops, sizeof ops);
    assert_string_equal(ops, other ? "LabelEncoder OneHot Flatten"
                                   : "LabelEncoder OneHot Flatten Slice");
    assert_string_equal(m->opset_import[1]->domain, PST_ONNX_ML_DOMAIN);
    const Onnx__NodeProto *enc = m->graph->node[0];
    assert_string_equal(enc->domain, PST_ONNX_ML_DOMAIN);
    assert_string_equal(enc->input[0], "color");
    const Onnx__AttributeProto *keys = attr(enc, "keys_strings"),
                               *vals = attr(enc, "values_int64s");
    assert_int_equal(keys->n_strings, 3);
    for (int i = 0; i < 3; i++) {
        assert_memory_equal(keys->strings[i].data, cats[i], strlen(cats[i]));
        assert_int_equal(vals->ints[i], i);
    }
    assert_int_equal(attr(enc, "default_int64")->i, 3); /* unknown values: the last slot */
    const Onnx__NodeProto *hot = m->graph->node[1];
    assert_int_equal(initializer(m->graph, hot->input[1])->int64_data[0], 4);
    const float off_on[2] = {0, 1};
    assert_memory_equal(initializer(m->graph, hot->input[2])->float_data, off_on, sizeof off_on);
    assert_int_equal(attr(m->graph->node[2], "axis")->i, 1);
    if (!other) { /* columns [0, 3) of the (N, 4) block: the other slot dropped */
        const Onnx__NodeProto *slice = m->graph->node[3];
        assert_int_equal(initializer(m->graph, slice->input[1])->int64_data[0], 0);
        assert_int_equal(initializer(m->graph, slice->input[2])->int64_data[0], 3);
        assert_int_equal(initializer(m->graph, slice->input[3])->int64_data[0], 1);
    }
    assert_string_equal(out, m->graph->node[m->graph->n_node - 1]->output[0]);
    onnx__model_proto__free_unpacked(m, NULL);
    pst_onnx_graph_destroy(&g);
}

static void one_hot_of_strings_with_an_other_slot(void **state)
{
    check_one_hot(true);
}

static void one_hot_of_strings_without_an_other_slot(void **state)
{
    check_one_hot(false);
}

static void one_hot_refuses_bad_category_lists(void **state)
{
    pst_onnx_graph_t *g = pst_onnx_graph_new("g", NULL);
    const char *const cats[3] = {"a", "b", "a"};
    pst_onnx_onehot_t twice = {3, cats, true}, none = {0, cats, true};
    const char *out = NULL;
    pst_err_t err = {0};
    assert_int_equal(pst_onnx_prep_onehot(g, "col", &twice, &out, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "'col'"));
    assert_non_null(strstr(err.msg, "'a' appears twice"));
    assert_int_equal(pst_onnx_prep_onehot(g, "col", &none, &out, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "no categories"));
    pst_onnx_graph_destroy(&g);
}

static void concat_joins_blocks_on_the_feature_axis(void **state)
{
    pst_onnx_graph_t *g = pst_onnx_graph_new("g", NULL);
    const char *const blocks[2] = {"numbers", "colors"};
    const char *out = NULL;
    assert_int_equal(pst_onnx_prep_concat(g, 1, blocks, &out, NULL), PST_OK);
    assert_string_equal(out, "numbers");
    assert_int_equal(pst_onnx_prep_concat(g, 2, blocks, &out, NULL), PST_OK);
    Onnx__ModelProto *m = round_trip(g);
    const Onnx__NodeProto *n = m->graph->node[0];
    assert_string_equal(n->op_type, "Concat");
    assert_string_equal(n->input[0], "numbers");
    assert_string_equal(n->input[1], "colors");
    assert_int_equal(attr(n, "axis")->i, 1);
    assert_string_equal(out, n->output[0]);
    onnx__model_proto__free_unpacked(m, NULL);
    assert_int_equal(pst_onnx_prep_concat(g, 0, blocks, &out, NULL), PST_EINVAL);
    pst_onnx_graph_destroy(&g);
}

/* The onnxruntime-node module scripts/setup_onnxruntime.sh installs, or NULL when it is absent. */
static const char *runtime_module(char *buf, size_t size)
{
    const char *dir = getenv("PST_ONNXRUNTIME_DIR"), *cache = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    if (dir)
        snprintf(buf, size, "%s/node_modules/onnxruntime-node", dir);
    else if (cache)
        snprintf(buf, size, "%s/pstrain/onnxruntime-node/node_modules/onnxruntime-node", cache);
    else
        snprintf(buf, size, "%s/.cache/pstrain/onnxruntime-node/node_modules/onnxruntime-node",
                 home ? home : "");
    char package[600];
    snprintf(package, sizeof package, "%s/package.json", buf);
    return access(package, R_OK) == 0 && system("node --version >/dev/null 2>&1") == 0 ? buf : NULL;
}

/* Packs g, runs it in onnxruntime on the inputs of input_json (onnx_run.js's format) and
 * returns its outputs (caller deletes). Destroys g. */
static cJSON *run_in_runtime(const char *module, pst_onnx_graph_t **g, const char *input_json)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(pst_onnx_graph_pack(*g, &buf, &len, NULL), PST_OK);
    pst_onnx_graph_destroy(g);
    char model[256], out[256], cmd[2048];
    assert_int_equal(pst_write_file_atomic(pst_scratch_path(model, "run.onnx"), buf, len, NULL),
                     PST_OK);
    free(buf);
    const char *input = pst_scratch_file(".json", input_json);
    snprintf(cmd, sizeof cmd, "node %s/../e2e/onnx_run.js %s %s %s %s", PST_TEST_DATA, module,
             model, input, pst_scratch_path(out, "run_out.json"));
    assert_int_equal(system(cmd), 0);
    FILE *f = fopen(out, "r");
    assert_non_null(f);
    char text[4096];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    cJSON *doc = cJSON_Parse(text);
    assert_non_null(doc);
    return doc;
}

/* Features of x (2 numeric columns: fill 9 and 8, shift 1 and 2, scale 0.5 and 2) and color
 * (red, green, blue, + other when other), run in onnxruntime on three rows. */
static cJSON *run_mixed_graph(const char *module, bool other)
{
    pst_onnx_graph_t *g = pst_onnx_graph_new("mixed", NULL);
    const int64_t x_dims[2] = {PST_ONNX_BATCH, 2}, s_dims[2] = {PST_ONNX_BATCH, 1};
    const int64_t y_dims[2] = {PST_ONNX_BATCH, other ? 6 : 5};
    assert_int_equal(pst_onnx_graph_input(g, "x", PST_ONNX_FLOAT, 2, x_dims, NULL), PST_OK);
    assert_int_equal(pst_onnx_graph_input(g, "color", PST_ONNX_STRING, 2, s_dims, NULL), PST_OK);
    const float fill[2] = {9, 8}, shift[2] = {1, 2}, scale[2] = {0.5f, 2};
    pst_onnx_numeric_t numbers = {2, 0, fill, shift, scale};
    const char *const cats[3] = {"red", "green", "blue"};
    pst_onnx_onehot_t colors = {3, cats, other};
    const char *blocks[2], *features;
    assert_int_equal(pst_onnx_prep_numeric(g, "x", &numbers, &blocks[0], NULL), PST_OK);
    assert_int_equal(pst_onnx_prep_onehot(g, "color", &colors, &blocks[1], NULL), PST_OK);
    assert_int_equal(pst_onnx_prep_concat(g, 2, blocks, &features, NULL), PST_OK);
    const char *in[] = {features, NULL};
    assert_non_null(pst_onnx_graph_op(g, "Identity", "y", in));
    assert_int_equal(pst_onnx_graph_output(g, "y", PST_ONNX_FLOAT, 2, y_dims, NULL), PST_OK);
    return run_in_runtime(module, &g,
                          "[{\"name\": \"x\", \"type\": \"float32\", \"dims\": [3, 2],"
                          " \"data\": [3, null, null, 4, 1, 2]},"
                          " {\"name\": \"color\", \"type\": \"string\", \"dims\": [3, 1],"
                          " \"data\": [\"blue\", \"purple\", \"red\"]}]");
}

static void check_features(cJSON *doc, const float *expect, int n_rows, int width)
{
    cJSON *y = cJSON_GetObjectItem(doc, "y");
    assert_non_null(y);
    cJSON *dims = cJSON_GetObjectItem(y, "dims"), *data = cJSON_GetObjectItem(y, "data");
    assert_int_equal(cJSON_GetArrayItem(dims, 0)->valuedouble, n_rows);
    assert_int_equal(cJSON_GetArrayItem(dims, 1)->valuedouble, width);
    assert_int_equal(cJSON_GetArraySize(data), n_rows * width);
    for (int i = 0; i < n_rows * width; i++)
        assert_true((float)cJSON_GetArrayItem(data, i)->valuedouble == expect[i]);
}

static void mixed_graph_runs_in_onnxruntime(void **state)
{
    char buf[512];
    const char *module = runtime_module(buf, sizeof buf);
    if (!module) {
        printf("onnxruntime-node is not installed (scripts/setup_onnxruntime.sh): skipped\n");
        skip();
    }
    /* Rows: x (3, NaN) blue; (NaN, 4) purple (unseen); (1, 2) red. (v - shift) * scale after
     * NaN -> fill, then the color's slot. */
    const float with_other[3 * 6] = {1, 12, 0, 0, 1, 0, 4, 4, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0};
    const float without[3 * 5] = {1, 12, 0, 0, 1, 4, 4, 0, 0, 0, 0, 0, 1, 0, 0};
    cJSON *doc = run_mixed_graph(module, true);
    check_features(doc, with_other, 3, 6);
    cJSON_Delete(doc);
    doc = run_mixed_graph(module, false);
    check_features(doc, without, 3, 5);
    cJSON_Delete(doc);
}

/* Clipping to [-1, 2] and [0, inf), and the ordinal code of a size column. */
static pst_onnx_graph_t *clip_and_ordinal_graph(void)
{
    pst_onnx_graph_t *g = pst_onnx_graph_new("codes", NULL);
    const int64_t x_dims[2] = {PST_ONNX_BATCH, 2}, s_dims[2] = {PST_ONNX_BATCH, 1};
    const int64_t y_dims[2] = {PST_ONNX_BATCH, 3};
    assert_int_equal(pst_onnx_graph_input(g, "x", PST_ONNX_FLOAT, 2, x_dims, NULL), PST_OK);
    assert_int_equal(pst_onnx_graph_input(g, "size", PST_ONNX_STRING, 2, s_dims, NULL), PST_OK);
    const float lo[2] = {-1, 0}, hi[2] = {2, INFINITY};
    const char *const sizes[3] = {"L", "M", "S"};
    const char *blocks[2], *features;
    assert_int_equal(pst_onnx_prep_clip(g, "x", 2, lo, hi, &blocks[0], NULL), PST_OK);
    assert_int_equal(pst_onnx_prep_ordinal(g, "size", 3, sizes, &blocks[1], NULL), PST_OK);
    assert_int_equal(pst_onnx_prep_concat(g, 2, blocks, &features, NULL), PST_OK);
    const char *in[] = {features, NULL};
    assert_non_null(pst_onnx_graph_op(g, "Identity", "y", in));
    assert_int_equal(pst_onnx_graph_output(g, "y", PST_ONNX_FLOAT, 2, y_dims, NULL), PST_OK);
    return g;
}

static void clip_and_ordinal_nodes(void **state)
{
    pst_onnx_graph_t *g = clip_and_ordinal_graph();
    Onnx__ModelProto *m = round_trip(g);
    char ops[256];
    op_list(m->graph, ops, sizeof ops);
    assert_string_equal(ops, "Greater Where Less Where LabelEncoder Cast Concat Identity");
    Onnx__NodeProto **n = m->graph->node;
    const float hi[2] = {2, INFINITY}, lo[2] = {-1, 0};
    assert_memory_equal(initializer(m->graph, n[0]->input[1])->float_data, hi, sizeof hi);
    assert_string_equal(n[1]->input[1], n[0]->input[1]); /* Where(x > hi, hi, x) */
    assert_string_equal(n[1]->input[2], "x");
    assert_memory_equal(initializer(m->graph, n[2]->input[1])->float_data, lo, sizeof lo);
    assert_string_equal(n[2]->input[0], n[1]->output[0]);
    assert_int_equal(attr(n[4], "values_int64s")->ints[0], 1);
    assert_int_equal(attr(n[4], "values_int64s")->ints[2], 3);
    assert_int_equal(attr(n[4], "default_int64")->i, 0);
    assert_int_equal(attr(n[5], "to")->i, PST_ONNX_FLOAT);
    onnx__model_proto__free_unpacked(m, NULL);
    pst_onnx_graph_destroy(&g);
}

static void clip_and_ordinal_run_in_onnxruntime(void **state)
{
    char buf[512];
    const char *module = runtime_module(buf, sizeof buf);
    if (!module) {
        printf("onnxruntime-node is not installed (scripts/setup_onnxruntime.sh): skipped\n");
        skip();
    }
    pst_onnx_graph_t *g = clip_and_ordinal_graph();
    cJSON *doc = run_in_runtime(module, &g,
                                "[{\"name\": \"x\", \"type\": \"float32\", \"dims\": [4, 2],"
                                " \"data\": [-5, -5, 0.5, 1e30, 7, null, null, 0.25]},"
                                " {\"name\": \"size\", \"type\": \"string\", \"dims\": [4, 1],"
                                " \"data\": [\"S\", \"XL\", \"L\", \"\"]}]");
    /* x < lo ? lo : x > hi ? hi : x per column (NaN stays NaN, checked apart); 1 + index. */
    cJSON *data = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "y"), "data");
    const float expect[12] = {-1, 0, 3, 0.5f, 1e30f, 0, 2, NAN, 1, NAN, 0.25f, 0};
    assert_int_equal(cJSON_GetArraySize(data), 12);
    for (int i = 0; i < 12; i++) {
        cJSON *v = cJSON_GetArrayItem(data, i);
        if (isnan(expect[i]))
            assert_true(cJSON_IsNull(v)); /* NaN travels as null in JSON */
        else
            assert_true((float)v->valuedouble == expect[i]);
    }
    cJSON_Delete(doc);
}

/* A table of four columns: age (clipped to [0, 100]), color (one-hot), size (ordinal), member
 * (a boolean); then the numeric block over the 7 features and the features as output y. */
static pst_onnx_graph_t *table_graph(void)
{
    pst_onnx_graph_t *g = pst_onnx_graph_new("table", NULL);
    const char *const colors[2] = {"", "red"}, *const sizes[3] = {"L", "M", "S"};
    const pst_onnx_column_t cols[4] = {
        {"age", PST_ONNX_COLUMN_NUMBER, 0, 100, 0, NULL},
        {"color", PST_ONNX_COLUMN_ONEHOT, 0, 0, 2, colors},
        {"size", PST_ONNX_COLUMN_ORDINAL, 0, 0, 3, sizes},
        {"member", PST_ONNX_COLUMN_NUMBER, -INFINITY, INFINITY, 0, NULL},
    };
    const char *raw = NULL, *features = NULL;
    assert_int_equal(pst_onnx_prep_columns(g, cols, 4, &raw, NULL), PST_OK);
    const float fill[6] = {50, 0, 0, 0, 0, 1}, shift[6] = {40, 0, 0, 0, 1, 0};
    const float scale[6] = {0.5f, 1, 1, 1, 1, 1};
    pst_onnx_numeric_t numbers = {6, 0, fill, shift, scale};
    assert_int_equal(pst_onnx_prep_numeric(g, raw, &numbers, &features, NULL), PST_OK);
    const char *in[] = {features, NULL};
    const int64_t y_dims[2] = {PST_ONNX_BATCH, 6};
    assert_non_null(pst_onnx_graph_op(g, "Identity", "y", in));
    assert_int_equal(pst_onnx_graph_output(g, "y", PST_ONNX_FLOAT, 2, y_dims, NULL), PST_OK);
    return g;
}

static void table_columns_are_inputs_of_their_own(void **state)
{
    pst_onnx_graph_t *g = table_graph();
    Onnx__ModelProto *m = round_trip(g);
    const Onnx__GraphProto *gp = m->graph;
    assert_int_equal(gp->n_input, 4);
    const char *names[4] = {"age", "color", "size", "member"};
    const int types[4] = {PST_ONNX_FLOAT, PST_ONNX_STRING, PST_ONNX_STRING, PST_ONNX_FLOAT};
    for (int j = 0; j < 4; j++) {
        assert_string_equal(gp->input[j]->name, names[j]);
        assert_int_equal(gp->input[j]->type->tensor_type->elem_type, types[j]);
    }
    char ops[256];
    op_list(gp, ops, sizeof ops);
    /* member has no bounds: no clipping nodes for it */
    assert_string_equal(ops, "Greater Where Less Where LabelEncoder OneHot Flatten LabelEncoder "
                             "Cast Concat IsNaN Where Sub Mul Identity");
    const Onnx__NodeProto *cat = gp->node[9];
    assert_int_equal(cat->n_input, 4);
    assert_string_equal(cat->input[3], "member");
    onnx__model_proto__free_unpacked(m, NULL);
    pst_onnx_graph_destroy(&g);
}

static void table_runs_in_onnxruntime(void **state)
{
    char buf[512];
    const char *module = runtime_module(buf, sizeof buf);
    if (!module) {
        printf("onnxruntime-node is not installed (scripts/setup_onnxruntime.sh): skipped\n");
        skip();
    }
    pst_onnx_graph_t *g = table_graph();
    cJSON *doc = run_in_runtime(
        module, &g,
        "[{\"name\": \"age\", \"type\": \"float32\", \"dims\": [3, 1], \"data\": [130, null, 42]},"
        " {\"name\": \"color\", \"type\": \"string\", \"dims\": [3, 1],"
        " \"data\": [\"red\", \"\", \"blue\"]},"
        " {\"name\": \"size\", \"type\": \"string\", \"dims\": [3, 1],"
        " \"data\": [\"M\", \"XS\", \"S\"]},"
        " {\"name\": \"member\", \"type\": \"float32\", \"dims\": [3, 1],"
        " \"data\": [1, 0, null]}]");
    /* Raw features: age clipped (100, NaN, 42); color: "" slot 0, red slot 1, other 2; size
     * 1 + index; member. Then NaN -> fill and (v - shift) * scale. */
    const float expect[3 * 6] = {30, 0, 1, 0, 1, 1, 5, 1, 0, 0, -1, 0, 1, 0, 0, 1, 2, 1};
    check_features(doc, expect, 3, 6);
    cJSON_Delete(doc);
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(packed_graph_decodes_to_what_was_built),
        cmocka_unit_test(unique_names_skip_every_taken_name),
        cmocka_unit_test(numeric_block_applies_each_fitted_step_in_order),
        cmocka_unit_test(numeric_block_leaves_out_absent_steps),
        cmocka_unit_test(one_hot_of_strings_with_an_other_slot),
        cmocka_unit_test(one_hot_of_strings_without_an_other_slot),
        cmocka_unit_test(one_hot_refuses_bad_category_lists),
        cmocka_unit_test(concat_joins_blocks_on_the_feature_axis),
        cmocka_unit_test(mixed_graph_runs_in_onnxruntime),
        cmocka_unit_test(clip_and_ordinal_nodes),
        cmocka_unit_test(clip_and_ordinal_run_in_onnxruntime),
        cmocka_unit_test(table_columns_are_inputs_of_their_own),
        cmocka_unit_test(table_runs_in_onnxruntime),
    };
    return cmocka_run_group_tests(tests, pst_scratch_make, pst_scratch_remove);
}
