/* Tests for worker/model/onnxensemble: hand-made ensembles of two softmax regressions emitted as
 * ONNX graphs decode to each member's Gemm over the shared input, then soft voting (Mul by each
 * member's share of the weights, Add in member order), hard voting (ArgMax, OneHot with values
 * [0, share]) or stacking (Concat, the meta model's Gemm), and the ensemble's label and
 * probabilities; hard voting of a regression is refused. */
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
#include "worker/model/onnxensemble.h"
#include "worker/model/onnxmodel.h"

#define N_IN 2
#define N_CLASSES 3

typedef struct fixture {
    pst_layer_spec_t layers[2];
    float params[2][N_CLASSES * (N_IN * 2) + N_CLASSES];
    pst_modelfile_t members[2], meta;
    float weights[2];
    pst_ensemble_t e;
} fixture_t;

/* A softmax regression over n_inputs raw columns, no preprocessing. */
static void make_member(fixture_t *f, pst_modelfile_t *mf, float *params, int n_inputs,
                        pst_task_t task)
{
    int n_out = task == PST_TASK_CLASSIFICATION ? N_CLASSES : 1;
    f->layers[0] = (pst_layer_spec_t){.kind = PST_LAYER_DENSE, .units = n_out};
    f->layers[1] = (pst_layer_spec_t){.kind = PST_LAYER_SOFTMAX};
    memset(mf, 0, sizeof *mf);
    mf->n_inputs = n_inputs;
    mf->layers = f->layers;
    mf->n_layers = task == PST_TASK_CLASSIFICATION ? 2 : 1;
    mf->task = task;
    mf->n_classes = task == PST_TASK_CLASSIFICATION ? N_CLASSES : 0;
    mf->n_params = (size_t)n_out * (size_t)(n_inputs + 1);
    for (size_t i = 0; i < mf->n_params; i++)
        params[i] = (float)i / 8;
    mf->params = params;
}

static void make(fixture_t *f, pst_ensemble_method_t method, pst_voting_t voting, pst_task_t task)
{
    memset(f, 0, sizeof *f);
    make_member(f, &f->members[0], f->params[0], N_IN, task);
    make_member(f, &f->members[1], f->params[1], N_IN, task);
    f->weights[0] = 1, f->weights[1] = 3;
    f->e = (pst_ensemble_t){method, voting, 2, f->members, f->weights, NULL};
    if (method == PST_ENSEMBLE_STACKING) {
        static float meta_params[N_CLASSES * (2 * N_CLASSES + 1)];
        make_member(f, &f->meta, meta_params, 2 * N_CLASSES, task);
        f->e.meta = &f->meta;
    }
}

static Onnx__ModelProto *emit(const pst_ensemble_t *e)
{
    pst_err_t err = {0};
    pst_onnx_graph_t *g = pst_onnx_graph_new("e", &err);
    assert_int_equal(pst_onnx_emit_ensemble(g, e, &err), PST_OK);
    Onnx__ModelProto *m = round_trip(g);
    pst_onnx_graph_destroy(&g);
    return m;
}

static void soft_vote_is_the_weighted_sum_in_member_order(void **state)
{
    fixture_t f;
    make(&f, PST_ENSEMBLE_BAGGING, PST_VOTE_SOFT, PST_TASK_CLASSIFICATION);
    Onnx__ModelProto *m = emit(&f.e);
    const Onnx__GraphProto *g = m->graph;
    char ops[256];
    op_list(g, ops, sizeof ops);
    assert_string_equal(ops, "Gemm Softmax Gemm Softmax Mul Mul Add ArgMax Identity Gather");
    assert_string_equal(g->node[0]->input[0], PST_ONNX_INPUT_NAME);
    assert_string_equal(g->node[2]->input[0], PST_ONNX_INPUT_NAME);
    assert_memory_equal(initializer(g, g->node[2]->input[1])->float_data, f.params[1],
                        N_CLASSES * N_IN * sizeof(float));
    const Onnx__NodeProto *mul0 = g->node[4], *mul1 = g->node[5], *add = g->node[6];
    assert_string_equal(mul0->input[0], g->node[1]->output[0]);
    assert_true(initializer(g, mul0->input[1])->float_data[0] == 0.25f);
    assert_string_equal(mul1->input[0], g->node[3]->output[0]);
    assert_true(initializer(g, mul1->input[1])->float_data[0] == 0.75f);
    assert_string_equal(add->input[0], mul0->output[0]);
    assert_string_equal(add->input[1], mul1->output[0]);
    assert_string_equal(g->node[7]->input[0], add->output[0]);
    assert_string_equal(g->output[1]->name, PST_ONNX_PROBABILITIES_NAME);
    onnx__model_proto__free_unpacked(m, NULL);
}

static void hard_vote_gives_each_member_its_share_at_its_class(void **state)
{
    fixture_t f;
    make(&f, PST_ENSEMBLE_VOTING, PST_VOTE_HARD, PST_TASK_CLASSIFICATION);
    f.e.weights = NULL; /* equal: a half each */
    Onnx__ModelProto *m = emit(&f.e);
    const Onnx__GraphProto *g = m->graph;
    char ops[256];
    op_list(g, ops, sizeof ops);
    assert_string_equal(
        ops, "Gemm Softmax Gemm Softmax ArgMax OneHot ArgMax OneHot Add ArgMax Identity Gather");
    const Onnx__NodeProto *hot = g->node[5];
    assert_string_equal(hot->input[0], g->node[4]->output[0]);
    assert_int_equal(initializer(g, hot->input[1])->int64_data[0], N_CLASSES);
    const float values[2] = {0, 0.5f};
    assert_memory_equal(initializer(g, hot->input[2])->float_data, values, sizeof values);
    onnx__model_proto__free_unpacked(m, NULL);
}

static void stacking_feeds_the_members_rows_to_the_meta_model(void **state)
{
    fixture_t f;
    make(&f, PST_ENSEMBLE_STACKING, PST_VOTE_SOFT, PST_TASK_CLASSIFICATION);
    Onnx__ModelProto *m = emit(&f.e);
    const Onnx__GraphProto *g = m->graph;
    char ops[256];
    op_list(g, ops, sizeof ops);
    assert_string_equal(ops,
                        "Gemm Softmax Gemm Softmax Concat Gemm Softmax ArgMax Identity Gather");
    const Onnx__NodeProto *cat = g->node[4], *meta = g->node[5];
    assert_string_equal(cat->input[0], g->node[1]->output[0]);
    assert_string_equal(cat->input[1], g->node[3]->output[0]);
    assert_string_equal(meta->input[0], cat->output[0]);
    const Onnx__TensorProto *w = initializer(g, meta->input[1]);
    assert_int_equal(w->dims[0], N_CLASSES);
    assert_int_equal(w->dims[1], 2 * N_CLASSES);
    assert_memory_equal(w->float_data, f.meta.params, 2 * N_CLASSES * N_CLASSES * sizeof(float));
    onnx__model_proto__free_unpacked(m, NULL);
}

static void hard_vote_of_a_regression_is_refused(void **state)
{
    fixture_t f;
    make(&f, PST_ENSEMBLE_BAGGING, PST_VOTE_HARD, PST_TASK_REGRESSION);
    pst_err_t err = {0};
    pst_onnx_graph_t *g = pst_onnx_graph_new("e", &err);
    assert_int_equal(pst_onnx_emit_ensemble(g, &f.e, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "hard voting needs a classification task"));
    pst_onnx_graph_destroy(&g);
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(soft_vote_is_the_weighted_sum_in_member_order),
        cmocka_unit_test(hard_vote_gives_each_member_its_share_at_its_class),
        cmocka_unit_test(stacking_feeds_the_members_rows_to_the_meta_model),
        cmocka_unit_test(hard_vote_of_a_regression_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
