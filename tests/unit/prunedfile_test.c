/* Tests for worker/model/prunedfile and the sparse forward of pruned dense layers: the model
 * file round trip of a pruned model is bit-exact and smaller, predictions over compressed rows
 * equal the dense model's, and damaged pruned tensors are refused before anything is allocated. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/log.h"
#include "pstrain.pb-c.h"
#include "worker/model/modelfile.h"
#include "worker/model/prunedfile.h"

#define N_IN 20

static pst_layer_spec_t layers[] = {{.kind = PST_LAYER_DENSE, .units = 32},
                                    {.kind = PST_LAYER_RELU},
                                    {.kind = PST_LAYER_DENSE, .units = 5},
                                    {.kind = PST_LAYER_SOFTMAX}};

/* A model file of the 20-32-5 stack with every weight but one in keep_every zeroed (biases
 * kept), one pruned weight stored as -0.0. */
static void make_file(pst_modelfile_t *mf, float *params, int keep_every)
{
    pst_model_t *m = pst_model_new(N_IN, layers, 4, 1, NULL);
    pst_rng_t rng;
    pst_rng_init(&rng, 3);
    pst_model_init_params(m, &rng);
    size_t n = pst_model_n_params(m);
    memcpy(params, pst_model_params(m), n * sizeof(float));
    for (int t = 0; t < 4; t++) {
        const pst_tensor_info_t *ti = pst_model_tensor(m, t);
        for (size_t i = 0; i < ti->size; i++)
            if (ti->is_bias)
                params[ti->offset + i] += 0.1f;
            else if (i % (size_t)keep_every != 0)
                params[ti->offset + i] = 0.0f;
    }
    params[pst_model_tensor(m, 0)->offset + 1] = -0.0f;
    *mf = (pst_modelfile_t){.n_inputs = N_IN,
                            .n_layers = 4,
                            .layers = layers,
                            .loss = PST_LOSS_SOFTMAX_CE,
                            .task = PST_TASK_CLASSIFICATION,
                            .n_classes = 5,
                            .params = params,
                            .n_params = n};
    pst_model_destroy(&m);
}

static float params_a[1024], params_b[1024];

static void round_trip_is_exact_and_smaller(void **state)
{
    (void)state;
    pst_modelfile_t sparse, dense, back;
    make_file(&sparse, params_a, 5); /* 80% zeros */
    make_file(&dense, params_b, 1);  /* no zeros but the -0.0 */
    pst_err_t err;
    uint8_t *buf_s, *buf_d;
    size_t len_s, len_d;
    assert_int_equal(pst_modelfile_pack(&sparse, &buf_s, &len_s, &err), PST_OK);
    assert_int_equal(pst_modelfile_pack(&dense, &buf_d, &len_d, &err), PST_OK);
    /* 800 weights: 640 zeros leave 640 * 4 bytes out, the bitmaps cost 100 bytes */
    assert_true(len_s + 640 * 4 - 100 - 64 <= len_d && len_d <= len_s + 640 * 4 - 100 + 64);
    Pst__Model *msg = pst__model__unpack(NULL, len_s, buf_s);
    assert_non_null(msg->pruned);
    assert_int_equal(msg->pruned->n_tensors, 2);
    assert_int_equal(msg->params.len, (size_t)(32 + 5) * 4); /* the biases */
    pst__model__free_unpacked(msg, NULL);
    msg = pst__model__unpack(NULL, len_d, buf_d);
    assert_null(msg->pruned);
    pst__model__free_unpacked(msg, NULL);
    assert_int_equal(pst_modelfile_unpack(&back, buf_s, len_s, "mem", &err), PST_OK);
    assert_int_equal(back.n_params, sparse.n_params);
    assert_memory_equal(back.params, params_a, sparse.n_params * sizeof(float)); /* -0.0 too */
    pst_modelfile_fini(&back);
    free(buf_s);
    free(buf_d);
}

static void sparse_forward_matches_dense(void **state)
{
    (void)state;
    pst_modelfile_t mf;
    make_file(&mf, params_a, 5);
    pst_err_t err;
    pst_model_t *fast = pst_modelfile_build(&mf, 16, &err),
                *plain = pst_modelfile_build(&mf, 16, &err);
    assert_non_null(fast);
    assert_int_equal(pst_model_n_sparse_layers(fast), 2); /* 20% dense <= the threshold */
    assert_int_equal(pst_model_use_sparse(plain, 0.35, 0, &err), PST_OK);
    assert_int_equal(pst_model_n_sparse_layers(plain), 0);
    float x[16 * N_IN], a[16 * 5], b[16 * 5];
    pst_rng_t rng;
    pst_rng_init(&rng, 11);
    for (int i = 0; i < 16 * N_IN; i++)
        x[i] = (float)pst_rng_normal(&rng);
    /* one row at a time: the compressed rows; the sum order differs, so to rounding */
    for (int r = 0; r < 16; r++) {
        memcpy(a + r * 5, pst_model_forward(fast, x + r * N_IN, 1, false, NULL), 5 * sizeof(float));
        memcpy(b + r * 5, pst_model_forward(plain, x + r * N_IN, 1, false, NULL),
               5 * sizeof(float));
    }
    for (int i = 0; i < 16 * 5; i++)
        assert_true(fabsf(a[i] - b[i]) <= 1e-6f * fmaxf(1.0f, fabsf(b[i])));
    /* a whole batch goes to sgemm on both: bit for bit */
    memcpy(a, pst_model_forward(fast, x, 16, false, NULL), sizeof a);
    memcpy(b, pst_model_forward(plain, x, 16, false, NULL), sizeof b);
    assert_memory_equal(a, b, sizeof a);
    /* a dense model is left to sgemm */
    pst_modelfile_t dense;
    make_file(&dense, params_b, 1);
    pst_model_t *d = pst_modelfile_build(&dense, 4, &err);
    assert_int_equal(pst_model_n_sparse_layers(d), 0);
    pst_model_destroy(&d);
    pst_model_destroy(&fast);
    pst_model_destroy(&plain);
}

/* Packs a damaged copy of a pruned model: damage edits the decoded message. */
static void expect_refused(void (*damage)(Pst__Model *m), const char *text)
{
    pst_modelfile_t mf, back;
    make_file(&mf, params_a, 5);
    uint8_t *buf;
    size_t len;
    pst_err_t err;
    assert_int_equal(pst_modelfile_pack(&mf, &buf, &len, &err), PST_OK);
    Pst__Model *m = pst__model__unpack(NULL, len, buf);
    damage(m);
    size_t len2 = pst__model__get_packed_size(m);
    uint8_t *buf2 = malloc(len2);
    pst__model__pack(m, buf2);
    memset(&err, 0, sizeof err);
    assert_int_equal(pst_modelfile_unpack(&back, buf2, len2, "bad.pst", &err), PST_EFORMAT);
    if (!strstr(err.msg, text) || !strstr(err.msg, "bad.pst"))
        fail_msg("message '%s' lacks '%s'", err.msg, text);
    pst__model__free_unpacked(m, NULL);
    free(buf);
    free(buf2);
}

static void short_bitmap(Pst__Model *m)
{
    m->pruned->tensors[0]->keep.len--;
}
static void huge_size(Pst__Model *m)
{
    m->pruned->tensors[1]->size = UINT64_MAX / 2;
}
static void missing_value(Pst__Model *m)
{
    m->pruned->tensors[1]->values.len -= 4;
}
static void tail_bit(Pst__Model *m)
{
    /* 5 x 32 = 160 weights fill their bytes: make the tensor 3 shorter instead */
    m->pruned->tensors[1]->size -= 3;
    m->pruned->tensors[1]->keep.data[m->pruned->tensors[1]->keep.len - 1] |= 0x80;
}
static void overlap(Pst__Model *m)
{
    m->pruned->tensors[1]->offset = m->pruned->tensors[0]->offset + 1;
}
static void past_end(Pst__Model *m)
{
    m->pruned->tensors[1]->offset += 1000;
}
static void lost_biases(Pst__Model *m)
{
    m->params.len -= 8;
}

static void damaged_tensors_refused(void **state)
{
    (void)state;
    expect_refused(short_bitmap, "pruned tensor 1: 79 bitmap bytes for 640 values");
    expect_refused(huge_size, "pruned tensor 2");
    expect_refused(missing_value, "pruned tensor 2:");
    expect_refused(tail_bit, "bits set past its end");
    expect_refused(overlap, "overlaps another");
    expect_refused(past_end, "ends past");
    expect_refused(lost_biases, "parameters stored, its layers need");
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_is_exact_and_smaller),
        cmocka_unit_test(sparse_forward_matches_dense),
        cmocka_unit_test(damaged_tensors_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
