/* Tests for worker/model/onnxlayers.c: the nodes each layer kind becomes, read back from the packed
 * graph: the operators in order, the reshapes between flat rows and (N, C, H, W), the Conv and
 * pool attributes, the weights and running statistics bit for bit, the recurrent operators'
 * attributes and converted weights. (tests/e2e/onnx_layers_test.sh runs such graphs in
 * onnxruntime against pstrain predict.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "tests/unit/onnx_check.h"
#include "worker/model/model_internal.h"
#include "worker/model/onnxlayers.h"
#include "worker/model/onnxlayout.h"

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static pst_model_t *model_with(int n_inputs, const pst_layer_spec_t *layers, int n_layers)
{
    pst_err_t err = {0};
    pst_model_t *m = pst_model_new(n_inputs, layers, n_layers, 2, &err);
    assert_non_null(m);
    float *p = pst_model_params(m);
    for (size_t i = 0; i < pst_model_n_params(m); i++)
        p[i] = (float)((int)(i * 29) % 97) / 97.0f - 0.5f;
    float *s = pst_model_state(m);
    for (size_t i = 0; i < pst_model_n_state(m); i++)
        s[i] = 0.25f + (float)i;
    return m;
}

/* The stack of m over a float (N, n_inputs) input, packed and decoded again. */
static Onnx__ModelProto *emit(pst_model_t *m)
{
    pst_err_t err = {0};
    pst_onnx_graph_t *g = pst_onnx_graph_new("layers", &err);
    assert_non_null(g);
    int64_t in_dims[2] = {PST_ONNX_BATCH, pst_model_n_inputs(m)};
    int64_t out_dims[2] = {PST_ONNX_BATCH, pst_model_n_outputs(m)};
    const char *out = NULL;
    assert_int_equal(pst_onnx_graph_input(g, "input", PST_ONNX_FLOAT, 2, in_dims, "rows"), PST_OK);
    assert_int_equal(pst_onnx_emit_stack(g, m, "input", &out, &err), PST_OK);
    assert_int_equal(pst_onnx_graph_output(g, out, PST_ONNX_FLOAT, 2, out_dims, "out"), PST_OK);
    Onnx__ModelProto *model = round_trip(g);
    pst_onnx_graph_destroy(&g);
    return model;
}

static const Onnx__NodeProto *first_of(const Onnx__GraphProto *g, const char *op)
{
    for (size_t i = 0; i < g->n_node; i++)
        if (strcmp(g->node[i]->op_type, op) == 0)
            return g->node[i];
    fail_msg("no %s node", op);
    return NULL;
}

static void check_ints(const Onnx__AttributeProto *a, int n, const int64_t *want)
{
    assert_int_equal(a->n_ints, n);
    for (int k = 0; k < n; k++)
        assert_int_equal(a->ints[k], want[k]);
}

static void check_floats(const Onnx__TensorProto *t, const float *want, size_t n)
{
    assert_int_equal(t->n_float_data, n);
    assert_memory_equal(t->float_data, want, n * sizeof(float));
}

static const float *tensor_of(pst_model_t *m, int i)
{
    return pst_model_params(m) + pst_model_tensor(m, i)->offset;
}

static void conv_and_pool_layers(void **state)
{
    (void)state;
    const pst_layer_spec_t layers[] = {
        {.kind = PST_LAYER_INPUT, .channels = 2, .height = 5, .width = 6},
        {.kind = PST_LAYER_CONV2D, .channels = 3, .kernel = 3, .stride = 2, .pad = 1},
        {.kind = PST_LAYER_RELU},
        {.kind = PST_LAYER_AVGPOOL2D, .kernel = 2, .stride = 1},
        {.kind = PST_LAYER_FLATTEN},
        {.kind = PST_LAYER_DENSE, .units = 4},
        {.kind = PST_LAYER_SOFTMAX}};
    pst_model_t *m = model_with(60, layers, N_OF(layers));
    Onnx__ModelProto *p = emit(m);
    const Onnx__GraphProto *g = p->graph;
    char ops[256];
    op_list(g, ops, sizeof ops);
    assert_string_equal(ops, "Reshape Conv Relu AveragePool Flatten Gemm Softmax");
    const int64_t image[4] = {0, 2, 5, 6}; /* 0: the batch dimension kept */
    const Onnx__TensorProto *shape = initializer(g, g->node[0]->input[1]);
    assert_int_equal(shape->n_int64_data, 4);
    assert_memory_equal(shape->int64_data, image, sizeof image);
    const Onnx__NodeProto *conv = g->node[1];
    const int64_t k3[2] = {3, 3}, s2[2] = {2, 2}, pads[4] = {1, 1, 1, 1}, k2[2] = {2, 2},
                  s1[2] = {1, 1}, oihw[4] = {3, 2, 3, 3};
    check_ints(attr(conv, "kernel_shape"), 2, k3);
    check_ints(attr(conv, "strides"), 2, s2);
    check_ints(attr(conv, "pads"), 4, pads);
    assert_int_equal(attr(conv, "group")->i, 1);
    const Onnx__TensorProto *w = initializer(g, conv->input[1]);
    assert_int_equal(w->n_dims, 4);
    assert_memory_equal(w->dims, oihw, sizeof oihw);
    check_floats(w, tensor_of(m, 0), 54);
    check_floats(initializer(g, conv->input[2]), tensor_of(m, 1), 3);
    const Onnx__NodeProto *pool = g->node[3];
    check_ints(attr(pool, "kernel_shape"), 2, k2);
    check_ints(attr(pool, "strides"), 2, s1);
    for (size_t a = 0; a < pool->n_attribute; a++) /* windows that fit: no padding */
        assert_string_not_equal(pool->attribute[a]->name, "pads");
    assert_int_equal(attr(g->node[4], "axis")->i, 1);
    /* conv (3, 3, 3), pool (3, 2, 2): the dense layer takes 12 */
    const Onnx__TensorProto *dw = initializer(g, g->node[5]->input[1]);
    assert_int_equal(dw->dims[0], 4);
    assert_int_equal(dw->dims[1], 12);
    check_floats(dw, tensor_of(m, 2), 48);
    onnx__model_proto__free_unpacked(p, NULL);
    pst_model_destroy(&m);
}

static void global_pool_is_flattened_for_dense(void **state)
{
    (void)state;
    const pst_layer_spec_t layers[] = {{.kind = PST_LAYER_INPUT}, /* a square 1x5x5 image */
                                       {.kind = PST_LAYER_CONV2D, .channels = 2, .kernel = 2},
                                       {.kind = PST_LAYER_MAXPOOL2D, .kernel = 2},
                                       {.kind = PST_LAYER_GLOBAL_AVGPOOL},
                                       {.kind = PST_LAYER_DENSE, .units = 1},
                                       {.kind = PST_LAYER_SIGMOID}};
    pst_model_t *m = model_with(25, layers, N_OF(layers));
    Onnx__ModelProto *p = emit(m);
    char ops[256];
    op_list(p->graph, ops, sizeof ops);
    assert_string_equal(ops, "Reshape Conv MaxPool GlobalAveragePool Flatten Gemm Sigmoid");
    const int64_t image[4] = {0, 1, 5, 5}, k2[2] = {2, 2};
    assert_memory_equal(initializer(p->graph, p->graph->node[0]->input[1])->int64_data, image,
                        sizeof image);
    check_ints(attr(p->graph->node[2], "strides"), 2, k2); /* a pool's stride is its kernel */
    onnx__model_proto__free_unpacked(p, NULL);
    pst_model_destroy(&m);
}

static void batchnorm_after_dense_uses_running_statistics(void **state)
{
    (void)state;
    const pst_layer_spec_t layers[] = {{.kind = PST_LAYER_DENSE, .units = 3},
                                       {.kind = PST_LAYER_BATCHNORM},
                                       {.kind = PST_LAYER_RELU},
                                       {.kind = PST_LAYER_DENSE, .units = 2}};
    pst_model_t *m = model_with(4, layers, N_OF(layers));
    Onnx__ModelProto *p = emit(m);
    const Onnx__GraphProto *g = p->graph;
    char ops[256];
    op_list(g, ops, sizeof ops);
    assert_string_equal(ops, "Gemm Reshape BatchNormalization Relu Flatten Gemm");
    const int64_t features[4] = {0, 3, 1, 1};
    assert_memory_equal(initializer(g, g->node[1]->input[1])->int64_data, features,
                        sizeof features);
    const Onnx__NodeProto *bn = first_of(g, "BatchNormalization");
    assert_int_equal(bn->n_input, 5);
    check_floats(initializer(g, bn->input[1]), tensor_of(m, 2), 3); /* gamma */
    check_floats(initializer(g, bn->input[2]), tensor_of(m, 3), 3); /* beta */
    const float *running = pst_model_state(m);
    check_floats(initializer(g, bn->input[3]), running, 3);     /* running mean */
    check_floats(initializer(g, bn->input[4]), running + 3, 3); /* running variance */
    assert_true(attr(bn, "epsilon")->f == PST_BATCHNORM_EPS);
    onnx__model_proto__free_unpacked(p, NULL);
    pst_model_destroy(&m);
}

/* A recurrent layer of 3 units over 4 steps of 2 features, then dense 1. */
static Onnx__ModelProto *recurrent(pst_layer_kind_t kind, bool sequences, pst_model_t **m)
{
    const pst_layer_spec_t layers[] = {
        {.kind = kind, .units = 3, .steps = 4, .sequences = sequences},
        {.kind = PST_LAYER_DENSE, .units = 1}};
    *m = model_with(8, layers, N_OF(layers));
    return emit(*m);
}

static void check_recurrent_weights(const Onnx__GraphProto *g, const Onnx__NodeProto *node,
                                    pst_model_t *m, bool lstm)
{
    enum { F = 2, H = 3 };
    int G = (lstm ? 4 : 3) * H;
    float W[4 * H * F], R[4 * H * H], B[8 * H];
    if (lstm)
        pst_onnx_lstm_layout(tensor_of(m, 0), tensor_of(m, 1), F, H, W, R, B);
    else
        pst_onnx_gru_layout(tensor_of(m, 0), tensor_of(m, 1), F, H, W, R, B);
    assert_int_equal(attr(node, "hidden_size")->i, H);
    const Onnx__TensorProto *w = initializer(g, node->input[1]);
    const int64_t w_dims[3] = {1, G, F}, r_dims[3] = {1, G, H}, b_dims[2] = {1, 2 * G};
    assert_memory_equal(w->dims, w_dims, sizeof w_dims);
    check_floats(w, W, (size_t)G * F);
    const Onnx__TensorProto *r = initializer(g, node->input[2]);
    assert_memory_equal(r->dims, r_dims, sizeof r_dims);
    check_floats(r, R, (size_t)G * H);
    const Onnx__TensorProto *b = initializer(g, node->input[3]);
    assert_memory_equal(b->dims, b_dims, sizeof b_dims);
    check_floats(b, B, 2 * (size_t)G);
}

static void lstm_sequence_output(void **state)
{
    (void)state;
    pst_model_t *m = NULL;
    Onnx__ModelProto *p = recurrent(PST_LAYER_LSTM, true, &m);
    const Onnx__GraphProto *g = p->graph;
    char ops[256];
    op_list(g, ops, sizeof ops);
    assert_string_equal(ops, "Reshape Transpose LSTM Transpose Reshape Gemm");
    const int64_t seq[3] = {0, 4, 2}, step_major[3] = {1, 0, 2}, batch_major[4] = {2, 0, 1, 3};
    const int64_t flat[2] = {0, 12};
    assert_memory_equal(initializer(g, g->node[0]->input[1])->int64_data, seq, sizeof seq);
    check_ints(attr(g->node[1], "perm"), 3, step_major);
    const Onnx__NodeProto *lstm = g->node[2];
    check_recurrent_weights(g, lstm, m, true);
    assert_string_equal(g->node[3]->input[0], lstm->output[0]); /* Y, every step */
    check_ints(attr(g->node[3], "perm"), 4, batch_major);
    assert_memory_equal(initializer(g, g->node[4]->input[1])->int64_data, flat, sizeof flat);
    onnx__model_proto__free_unpacked(p, NULL);
    pst_model_destroy(&m);
}

static void gru_last_state(void **state)
{
    (void)state;
    pst_model_t *m = NULL;
    Onnx__ModelProto *p = recurrent(PST_LAYER_GRU, false, &m);
    const Onnx__GraphProto *g = p->graph;
    char ops[256];
    op_list(g, ops, sizeof ops);
    assert_string_equal(ops, "Reshape Transpose GRU Squeeze Gemm");
    const Onnx__NodeProto *gru = g->node[2];
    check_recurrent_weights(g, gru, m, false);
    assert_int_equal(attr(gru, "linear_before_reset")->i, 1);
    assert_string_equal(g->node[3]->input[0], gru->output[1]); /* Y_h (1, N, units) */
    assert_int_equal(initializer(g, g->node[3]->input[1])->int64_data[0], 0);
    onnx__model_proto__free_unpacked(p, NULL);
    pst_model_destroy(&m);
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conv_and_pool_layers),
        cmocka_unit_test(global_pool_is_flattened_for_dense),
        cmocka_unit_test(batchnorm_after_dense_uses_running_statistics),
        cmocka_unit_test(lstm_sequence_output),
        cmocka_unit_test(gru_last_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
