/* Tests for worker/model/onnxcolumns: a hand-made encoder's columns become graph inputs named
 * after them with the right types (string for categories, float for numbers and booleans), its
 * encoding the expected operators (LabelEncoder with the vocabulary as keys and the "other" slot
 * as default, OneHot, ordinal Cast, clipping only for a clipped number) concatenated in feature
 * order; hashed, date and output-named columns are refused naming the column; and which
 * encoders can share one set of inputs. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "onnx/onnx.pb-c.h"
#include "onnx_check.h"
#include "worker/model/onnxcolumns.h"

static char **words(size_t n, const char *const *list)
{
    char **out = calloc(n, sizeof *out);
    for (size_t k = 0; k < n; k++)
        out[k] = strdup(list[k]);
    return out;
}

/* plan: one-hot of {"", basic, premium}; spend: numeric clipped to [0, 100]; autopay: boolean;
 * region: ordinal of {north, south}. */
static pst_encoder_t *make(void)
{
    static const char *const plans[] = {"", "basic", "premium"}, *const regions[] = {"north",
                                                                                     "south"};
    pst_encoder_t *e = pst_encoder_new(4);
    assert_non_null(e);
    e->inputs[0] = (pst_enc_input_t){.name = strdup("plan"),
                                     .type = PST_COL_CATEGORICAL,
                                     .kind = PST_ENC_ONEHOT,
                                     .vocab = words(3, plans),
                                     .n_vocab = 3};
    e->inputs[1] = (pst_enc_input_t){
        .name = strdup("spend"), .kind = PST_ENC_VALUE, .clip_lo = 0, .clip_hi = 100};
    e->inputs[2] = (pst_enc_input_t){.name = strdup("autopay"),
                                     .type = PST_COL_BOOLEAN,
                                     .kind = PST_ENC_VALUE,
                                     .clip_lo = -INFINITY,
                                     .clip_hi = INFINITY};
    e->inputs[3] = (pst_enc_input_t){.name = strdup("region"),
                                     .type = PST_COL_CATEGORICAL,
                                     .kind = PST_ENC_ORDINAL,
                                     .vocab = words(2, regions),
                                     .n_vocab = 2};
    pst_encoder_layout(e);
    return e;
}

static Onnx__ModelProto *emit(const pst_encoder_t *e)
{
    pst_err_t err = {0};
    pst_onnx_graph_t *g = pst_onnx_graph_new("m", &err);
    const char *out = NULL;
    assert_int_equal(pst_onnx_declare_columns(g, e, &err), PST_OK);
    assert_int_equal(pst_onnx_encode_columns(g, e, &out, &err), PST_OK);
    const int64_t dims[2] = {PST_ONNX_BATCH, (int64_t)e->n_features};
    assert_int_equal(pst_onnx_graph_output(g, out, PST_ONNX_FLOAT, 2, dims, "features"), PST_OK);
    Onnx__ModelProto *m = round_trip(g);
    pst_onnx_graph_destroy(&g);
    return m;
}

static size_t count_ops(const Onnx__GraphProto *g, const char *op)
{
    size_t n = 0;
    for (size_t i = 0; i < g->n_node; i++)
        n += strcmp(g->node[i]->op_type, op) == 0;
    return n;
}

static void columns_become_inputs_and_features(void **state)
{
    (void)state;
    pst_encoder_t *e = make();
    assert_int_equal(e->n_features, 4 + 1 + 1 + 1);
    Onnx__ModelProto *m = emit(e);
    const Onnx__GraphProto *g = m->graph;
    static const char *const names[] = {"plan", "spend", "autopay", "region"};
    static const int types[] = {
        ONNX__TENSOR_PROTO__DATA_TYPE__STRING, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT,
        ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, ONNX__TENSOR_PROTO__DATA_TYPE__STRING};
    assert_int_equal(g->n_input, 4);
    for (int j = 0; j < 4; j++) {
        assert_string_equal(g->input[j]->name, names[j]);
        assert_int_equal(g->input[j]->type->tensor_type->elem_type, types[j]);
    }
    /* plan's LabelEncoder: its vocabulary as keys, 0..2, unknown values to slot 3 ("other") */
    const Onnx__NodeProto *plan = NULL;
    for (size_t i = 0; i < g->n_node && !plan; i++)
        if (strcmp(g->node[i]->op_type, "LabelEncoder") == 0 &&
            strcmp(g->node[i]->input[0], "plan") == 0)
            plan = g->node[i];
    assert_non_null(plan);
    const Onnx__AttributeProto *keys = attr(plan, "keys_strings");
    assert_int_equal(keys->n_strings, 3);
    assert_int_equal(keys->strings[0].len, 0);
    assert_memory_equal(keys->strings[2].data, "premium", 7);
    assert_int_equal(attr(plan, "default_int64")->i, 3);
    assert_int_equal(count_ops(g, "LabelEncoder"), 2); /* plan and region */
    assert_int_equal(count_ops(g, "OneHot"), 1);       /* plan only */
    assert_int_equal(count_ops(g, "Greater"), 1);      /* spend only: autopay is not clipped */
    assert_int_equal(count_ops(g, "Less"), 1);
    assert_int_equal(count_ops(g, "Concat"), 1);
    const Onnx__NodeProto *cat = g->node[g->n_node - 1];
    assert_string_equal(cat->op_type, "Concat");
    assert_int_equal(cat->n_input, 4);
    assert_string_equal(cat->input[2], "autopay"); /* an unclipped number is its own input */
    onnx__model_proto__free_unpacked(m, NULL);
    pst_encoder_destroy(&e);
}

static void refused(pst_encoder_t *e, const char *message)
{
    pst_err_t err = {0};
    pst_onnx_graph_t *g = pst_onnx_graph_new("m", &err);
    assert_int_equal(pst_onnx_declare_columns(g, e, &err), PST_EINVAL);
    if (!strstr(err.msg, message))
        fail_msg("message '%s' lacks '%s'", err.msg, message);
    pst_onnx_graph_destroy(&g);
}

static void hashed_date_and_output_names_refused(void **state)
{
    (void)state;
    pst_encoder_t *e = make();
    e->inputs[3].kind = PST_ENC_HASH;
    refused(e, "column 'region' cannot be exported to ONNX: it is a hashed category");
    e->inputs[3].kind = PST_ENC_ORDINAL;
    e->inputs[1].kind = PST_ENC_DATE;
    refused(e, "column 'spend' cannot be exported to ONNX: it is a date column");
    e->inputs[1].kind = PST_ENC_VALUE;
    free(e->inputs[2].name);
    e->inputs[2].name = strdup("probabilities");
    refused(e, "column 'probabilities' cannot be exported to ONNX: its name is the name of an "
               "output");
    pst_encoder_destroy(&e);
}

static void which_encoders_share_inputs(void **state)
{
    (void)state;
    pst_encoder_t *a = make(), *b = make();
    assert_true(pst_onnx_columns_typed(a));
    assert_true(pst_onnx_columns_compatible(a, b));
    /* other categories and bounds: each member encodes the same inputs its own way */
    b->inputs[0].n_vocab = 2;
    b->inputs[1].clip_hi = 50;
    assert_true(pst_onnx_columns_compatible(a, b));
    b->inputs[3].kind = PST_ENC_ONEHOT; /* still a string input */
    assert_true(pst_onnx_columns_compatible(a, b));
    b->inputs[3].kind = PST_ENC_VALUE; /* a float input now */
    assert_false(pst_onnx_columns_compatible(a, b));
    b->inputs[3].kind = PST_ENC_ORDINAL;
    free(b->inputs[1].name);
    b->inputs[1].name = strdup("spent");
    assert_false(pst_onnx_columns_compatible(a, b));
    assert_false(pst_onnx_columns_compatible(a, NULL));
    assert_true(pst_onnx_columns_compatible(NULL, NULL));
    b->inputs[0].n_vocab = 3;
    pst_encoder_destroy(&b);
    /* numbers only: one float input, whatever the bounds */
    pst_encoder_t *n = pst_encoder_new(1);
    n->inputs[0] =
        (pst_enc_input_t){.name = strdup("x"), .kind = PST_ENC_VALUE, .clip_lo = 1, .clip_hi = 2};
    pst_encoder_layout(n);
    assert_false(pst_onnx_columns_typed(n));
    assert_true(pst_onnx_columns_compatible(n, NULL));
    assert_false(pst_onnx_columns_compatible(n, a));
    pst_encoder_destroy(&n);
    pst_encoder_destroy(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(columns_become_inputs_and_features),
        cmocka_unit_test(hashed_date_and_output_names_refused),
        cmocka_unit_test(which_encoders_share_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
