/* Tests for worker/model/onnxmodel: hand-made model files emitted as ONNX graphs decode to the
 * expected interface (input, label, probabilities or value, with shapes), node sequence
 * (preprocessing, column Gather, Gemm per dense layer with its weights bit for bit, activations,
 * no dropout node), label values (int64, or double for non-integral classes), the sigmoid case
 * (probabilities [1 - p, p] and p >= 0.5) and metadata. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/log.h"
#include "onnx/onnx.pb-c.h"
#include "onnx_check.h"
#include "worker/model/onnxmodel.h"

#define N_IN 3

typedef struct fixture {
    pst_modelfile_t mf;
    pst_layer_spec_t layers[6];
    float shift[N_IN], scale[N_IN], fill[N_IN];
    size_t columns[2];
    double classes[3];
    char *names[N_IN];
    float *params;
} fixture_t;

/* Fills mf with the layers and parameters params[i] = (i - 7) / 16 (exact in float). */
static void make(fixture_t *f, const pst_layer_spec_t *layers, int n_layers, int width)
{
    memset(f, 0, sizeof *f);
    memcpy(f->layers, layers, (size_t)n_layers * sizeof *layers);
    pst_model_t *model = pst_model_new(width, f->layers, n_layers, 1, NULL);
    assert_non_null(model);
    f->mf.n_params = pst_model_n_params(model);
    pst_model_destroy(&model);
    f->params = malloc(f->mf.n_params * sizeof *f->params);
    for (size_t i = 0; i < f->mf.n_params; i++)
        f->params[i] = ((float)i - 7) / 16;
    f->mf.params = f->params;
    f->mf.layers = f->layers;
    f->mf.n_layers = n_layers;
    f->mf.n_inputs = N_IN;
}

static Onnx__ModelProto *emit(const pst_modelfile_t *mf)
{
    pst_err_t err = {0};
    pst_onnx_graph_t *g = pst_onnx_graph_new("m", &err);
    assert_int_equal(pst_onnx_emit_model(g, mf, &err), PST_OK);
    Onnx__ModelProto *m = round_trip(g);
    pst_onnx_graph_destroy(&g);
    return m;
}

static const Onnx__NodeProto *node_writing(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_node; i++)
        if (strcmp(g->node[i]->output[0], name) == 0)
            return g->node[i];
    fail_msg("no node writes %s", name);
    return NULL;
}

static void check_value_info(const Onnx__ValueInfoProto *v, const char *name, int type, int n_dims,
                             int64_t last_dim)
{
    assert_string_equal(v->name, name);
    assert_int_equal(v->type->tensor_type->elem_type, type);
    const Onnx__TensorShapeProto *shape = v->type->tensor_type->shape;
    assert_int_equal(shape->n_dim, n_dims);
    assert_string_equal(shape->dim[0]->dim_param, "N");
    if (n_dims == 2)
        assert_int_equal(shape->dim[1]->dim_value, last_dim);
}

static void mlp_with_preprocessing_and_columns(void **state)
{
    const pst_layer_spec_t layers[] = {{.kind = PST_LAYER_DENSE, .units = 4, .rate = 0},
                                       {.kind = PST_LAYER_RELU, .units = 0, .rate = 0},
                                       {.kind = PST_LAYER_DROPOUT, .units = 0, .rate = 0.5f},
                                       {.kind = PST_LAYER_DENSE, .units = 3, .rate = 0},
                                       {.kind = PST_LAYER_SOFTMAX, .units = 0, .rate = 0}};
    fixture_t f;
    make(&f, layers, 5, 2);
    f.mf.task = PST_TASK_CLASSIFICATION;
    f.mf.n_classes = 3;
    f.classes[0] = 2, f.classes[1] = 5, f.classes[2] = -9;
    f.mf.class_values = f.classes;
    for (int j = 0; j < N_IN; j++)
        f.shift[j] = (float)j, f.scale[j] = 0.5f, f.fill[j] = 1;
    f.mf.shift = f.shift, f.mf.scale = f.scale, f.mf.fill = f.fill;
    f.mf.pixel_scale = 0; /* none: no Mul node */
    f.columns[0] = 2, f.columns[1] = 0;
    f.mf.columns = f.columns, f.mf.n_columns = 2;
    f.names[0] = "a", f.names[1] = "b,c", f.names[2] = "c";
    f.mf.feature_names = f.names;
    f.mf.target_name = "kind";

    Onnx__ModelProto *m = emit(&f.mf);
    const Onnx__GraphProto *g = m->graph;
    char ops[256];
    op_list(g, ops, sizeof ops);
    assert_string_equal(ops,
                        "IsNaN Where Sub Mul Gather Gemm Relu Gemm Softmax ArgMax Identity Gather");
    assert_int_equal(g->n_input, 1);
    check_value_info(g->input[0], PST_ONNX_INPUT_NAME, PST_ONNX_FLOAT, 2, N_IN);
    assert_int_equal(g->n_output, 2);
    check_value_info(g->output[0], PST_ONNX_LABEL_NAME, PST_ONNX_INT64, 1, 0);
    check_value_info(g->output[1], PST_ONNX_PROBABILITIES_NAME, PST_ONNX_FLOAT, 2, 3);

    const Onnx__NodeProto *gather = g->node[4];
    const Onnx__TensorProto *cols = initializer(g, gather->input[1]);
    assert_int_equal(cols->int64_data[0], 2);
    assert_int_equal(cols->int64_data[1], 0);
    assert_int_equal(gather->attribute[0]->i, 1); /* axis 1: columns */
    /* Layer 0: W (4, 2) = params[0..8), b = params[8..12); layer 1: W (3, 4), b (3). */
    const Onnx__TensorProto *w0 = initializer(g, g->node[5]->input[1]);
    assert_int_equal(w0->dims[0], 4);
    assert_int_equal(w0->dims[1], 2);
    assert_memory_equal(w0->float_data, f.params, 8 * sizeof(float));
    assert_memory_equal(initializer(g, g->node[5]->input[2])->float_data, f.params + 8,
                        4 * sizeof(float));
    assert_string_equal(g->node[5]->attribute[0]->name, "transB");
    assert_int_equal(g->node[5]->attribute[0]->i, 1);
    assert_string_equal(g->node[7]->input[0], g->node[6]->output[0]); /* no dropout between */
    assert_memory_equal(initializer(g, g->node[7]->input[1])->float_data, f.params + 12,
                        12 * sizeof(float));
    assert_memory_equal(initializer(g, g->node[7]->input[2])->float_data, f.params + 24,
                        3 * sizeof(float));
    assert_int_equal(g->node[8]->attribute[0]->i, 1); /* softmax over the classes */
    const Onnx__NodeProto *label = node_writing(g, PST_ONNX_LABEL_NAME);
    const Onnx__TensorProto *classes = initializer(g, label->input[0]);
    assert_int_equal(classes->n_int64_data, 3);
    assert_int_equal(classes->int64_data[2], -9);
    assert_string_equal(label->input[1], g->node[9]->output[0]); /* ArgMax */
    assert_string_equal(m->metadata_props[0]->key, "feature_names");
    assert_string_equal(m->metadata_props[0]->value, "[\"a\",\"b,c\",\"c\"]");
    assert_string_equal(m->metadata_props[1]->value, "kind");
    onnx__model_proto__free_unpacked(m, NULL);
    free(f.params);
}

static void sigmoid_output_gives_two_probabilities(void **state)
{
    const pst_layer_spec_t layers[] = {{.kind = PST_LAYER_DENSE, .units = 1, .rate = 0},
                                       {.kind = PST_LAYER_SIGMOID, .units = 0, .rate = 0}};
    fixture_t f;
    make(&f, layers, 2, N_IN);
    f.mf.task = PST_TASK_CLASSIFICATION;
    f.mf.n_classes = 2;
    f.classes[0] = 0.5, f.classes[1] = 1.5;
    f.mf.class_values = f.classes;
    Onnx__ModelProto *m = emit(&f.mf);
    const Onnx__GraphProto *g = m->graph;
    char ops[256];
    op_list(g, ops, sizeof ops);
    assert_string_equal(ops, "Gemm Sigmoid Sub Concat GreaterOrEqual Cast Reshape Gather");
    check_value_info(g->output[0], PST_ONNX_LABEL_NAME, PST_ONNX_DOUBLE, 1, 0);
    check_value_info(g->output[1], PST_ONNX_PROBABILITIES_NAME, PST_ONNX_FLOAT, 2, 2);
    const Onnx__NodeProto *sub = g->node[2], *ge = g->node[4];
    assert_true(initializer(g, sub->input[0])->float_data[0] == 1.0f);
    assert_string_equal(sub->input[1], g->node[1]->output[0]);
    const Onnx__NodeProto *cat = node_writing(g, PST_ONNX_PROBABILITIES_NAME);
    assert_string_equal(cat->input[0], sub->output[0]); /* [1 - p, p] */
    assert_string_equal(cat->input[1], g->node[1]->output[0]);
    assert_true(initializer(g, ge->input[1])->float_data[0] == 0.5f);
    const Onnx__TensorProto *classes = initializer(g, g->node[7]->input[0]);
    assert_int_equal(classes->n_double_data, 2);
    assert_true(classes->double_data[1] == 1.5);
    onnx__model_proto__free_unpacked(m, NULL);
    free(f.params);
}

static void regression_gives_a_value_and_no_label(void **state)
{
    const pst_layer_spec_t layers[] = {{.kind = PST_LAYER_DENSE, .units = 5, .rate = 0},
                                       {.kind = PST_LAYER_TANH, .units = 0, .rate = 0},
                                       {.kind = PST_LAYER_DENSE, .units = 1, .rate = 0}};
    fixture_t f;
    make(&f, layers, 3, N_IN);
    f.mf.task = PST_TASK_REGRESSION;
    Onnx__ModelProto *m = emit(&f.mf);
    const Onnx__GraphProto *g = m->graph;
    char ops[256];
    op_list(g, ops, sizeof ops);
    assert_string_equal(ops, "Gemm Tanh Gemm Identity");
    assert_string_equal(g->node[0]->input[0], PST_ONNX_INPUT_NAME); /* no preprocessing */
    assert_int_equal(g->n_output, 1);
    check_value_info(g->output[0], PST_ONNX_VALUE_NAME, PST_ONNX_FLOAT, 2, 1);
    onnx__model_proto__free_unpacked(m, NULL);
    free(f.params);
}

static void classes_without_values_are_their_indices(void **state)
{
    const pst_layer_spec_t layers[] = {{.kind = PST_LAYER_DENSE, .units = 3, .rate = 0},
                                       {.kind = PST_LAYER_SOFTMAX, .units = 0, .rate = 0}};
    fixture_t f;
    make(&f, layers, 2, N_IN);
    f.mf.task = PST_TASK_CLASSIFICATION;
    f.mf.n_classes = 3;
    Onnx__ModelProto *m = emit(&f.mf);
    const Onnx__NodeProto *label = node_writing(m->graph, PST_ONNX_LABEL_NAME);
    const Onnx__TensorProto *classes = initializer(m->graph, label->input[0]);
    const int64_t expect[3] = {0, 1, 2};
    assert_memory_equal(classes->int64_data, expect, sizeof expect);
    onnx__model_proto__free_unpacked(m, NULL);
    free(f.params);
}

static void outputs_that_do_not_fit_the_classes_are_refused(void **state)
{
    const pst_layer_spec_t layers[] = {{.kind = PST_LAYER_DENSE, .units = 4, .rate = 0},
                                       {.kind = PST_LAYER_SOFTMAX, .units = 0, .rate = 0}};
    fixture_t f;
    make(&f, layers, 2, N_IN);
    f.mf.task = PST_TASK_CLASSIFICATION;
    f.mf.n_classes = 3;
    pst_err_t err = {0};
    pst_onnx_graph_t *g = pst_onnx_graph_new("m", &err);
    assert_int_equal(pst_onnx_emit_model(g, &f.mf, &err), PST_EFORMAT);
    assert_non_null(strstr(err.msg, "4 outputs for 3 classes"));
    pst_onnx_graph_destroy(&g);
    free(f.params);
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mlp_with_preprocessing_and_columns),
        cmocka_unit_test(sigmoid_output_gives_two_probabilities),
        cmocka_unit_test(regression_gives_a_value_and_no_label),
        cmocka_unit_test(classes_without_values_are_their_indices),
        cmocka_unit_test(outputs_that_do_not_fit_the_classes_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
