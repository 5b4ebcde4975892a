/* Tests for worker/model/sparsefile and sparsescore: a trained model's rows round trip bit for
 * bit, all-zero rows are left out, the scorer predicts exactly as the trained model, and
 * truncated, corrupt and hostile files are refused with clear errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "pstrain.pb-c.h"
#include "tests/unit/scratch.h"
#include "worker/model/modelfile.h"
#include "worker/model/sparsefile.h"
#include "worker/model/sparsescore.h"

/* 64 rows of 5 features among 40 ids; labels follow feature 3 and feature 17. */
enum { ROWS = 64, PER_ROW = 5 };
static size_t row_ptr[ROWS + 1];
static uint32_t cols[ROWS * PER_ROW];
static float vals[ROWS * PER_ROW], labels[ROWS];

static pst_sparse_batch_t make_batch(void)
{
    for (size_t r = 0; r < ROWS; r++) {
        row_ptr[r] = r * PER_ROW;
        for (size_t j = 0; j < PER_ROW; j++) {
            cols[r * PER_ROW + j] = (uint32_t)((r * 7 + j * 13 + j * j) % 40) * 3 + (uint32_t)j;
            vals[r * PER_ROW + j] = 1.0f + 0.25f * (float)j;
        }
        labels[r] = (r % 3 == 0) ? 1.0f : 0.0f;
    }
    row_ptr[ROWS] = ROWS * PER_ROW;
    return (pst_sparse_batch_t){
        .n_rows = ROWS, .row_ptr = row_ptr, .col32 = cols, .val = vals, .y = labels};
}

/* An FM of 3 factors (or LR) after 5 FTRL steps with the given L1. */
static pst_sparse_model_t *trained(pst_sparse_kind_t kind, float l1)
{
    pst_sparse_train_opts_t o;
    pst_sparse_train_opts_defaults(&o, kind);
    if (kind == PST_SPARSE_FM)
        o.spec.n_factors = 3;
    o.ftrl.l1 = l1;
    pst_sparse_model_t *m = pst_sparse_model_new(&o, NULL);
    assert_non_null(m);
    pst_sparse_batch_t b = make_batch();
    for (int s = 0; s < 5; s++)
        assert_int_equal(pst_sparse_model_update(m, &b, NULL, NULL), PST_OK);
    return m;
}

static void file_of(pst_sparsefile_t *sf, pst_sparse_model_t *m, pst_sparse_kind_t kind)
{
    memset(sf, 0, sizeof *sf);
    sf->type = kind == PST_SPARSE_FM ? PST_SPARSEFILE_FM : PST_SPARSEFILE_LR;
    sf->spec = (pst_sparse_spec_t){kind, kind == PST_SPARSE_FM ? 3 : 0};
    sf->format = PST_SPARSE_TSV_HASHED;
    sf->hash = (pst_hash_spec_t){2, 3, 10, 77, PST_NUMERIC_BUCKET, false};
    sf->bias = pst_sparse_model_bias(m);
    assert_int_equal(pst_sparsefile_take_rows(sf, m, NULL), PST_OK);
}

static void pack(const pst_sparsefile_t *sf, uint8_t **buf, size_t *len)
{
    assert_int_equal(pst_sparsefile_pack(sf, buf, len, NULL), PST_OK);
}

static void fm_round_trip_is_bit_exact_and_scores_as_trained(void **state)
{
    (void)state;
    pst_sparse_model_t *m = trained(PST_SPARSE_FM, 0.0f);
    pst_sparsefile_t sf, back;
    file_of(&sf, m, PST_SPARSE_FM);
    assert_int_equal(sf.n_rows, pst_sparse_model_n_keys(m)); /* FM rows start random: none zero */
    char path[256];
    pst_scratch_path(path, "fm.pst");
    size_t bytes = 0;
    assert_int_equal(pst_sparsefile_save(&sf, path, &bytes, NULL), PST_OK);
    assert_true(bytes > sf.n_rows * 4 * sizeof(float));
    pst_err_t err = {0};
    assert_int_equal(pst_sparsefile_load(&back, path, &err), PST_OK);
    assert_int_equal(back.type, PST_SPARSEFILE_FM);
    assert_int_equal(back.spec.n_factors, 3);
    assert_int_equal(back.format, PST_SPARSE_TSV_HASHED);
    assert_int_equal(back.hash.bits, 10);
    assert_int_equal(back.hash.seed, 77);
    assert_int_equal(back.hash.numeric, PST_NUMERIC_BUCKET);
    assert_int_equal(back.n_rows, sf.n_rows);
    assert_memory_equal(back.keys, sf.keys, sf.n_rows * sizeof(uint64_t));
    assert_memory_equal(back.rows, sf.rows, sf.n_rows * 4 * sizeof(float));
    assert_memory_equal(&back.bias, &sf.bias, sizeof(float));
    for (size_t i = 1; i < back.n_rows; i++)
        assert_true(back.keys[i] > back.keys[i - 1]);
    /* the file's scorer and the trained model give the same bits, unknown keys included */
    pst_sparse_batch_t b = make_batch();
    cols[0] = 100000; /* never trained */
    float want[ROWS], got[ROWS];
    assert_int_equal(pst_sparse_model_predict(m, &b, want, NULL), PST_OK);
    pst_sparse_scorer_t *sc = pst_sparse_scorer_new(&back, NULL);
    assert_non_null(sc);
    assert_int_equal(pst_sparse_scorer_predict(sc, &b, got, NULL), PST_OK);
    assert_memory_equal(got, want, sizeof want);
    pst_sparse_scorer_destroy(&sc);
    pst_sparsefile_fini(&back);
    pst_sparsefile_fini(&sf);
    pst_sparse_model_destroy(&m);
}

static void all_zero_rows_are_left_out(void **state)
{
    (void)state;
    pst_sparse_model_t *plain = trained(PST_SPARSE_LR, 0.0f);
    pst_sparse_model_t *sparse = trained(PST_SPARSE_LR, 0.2f);
    pst_sparsefile_t a, b;
    file_of(&a, plain, PST_SPARSE_LR);
    file_of(&b, sparse, PST_SPARSE_LR);
    size_t zeros = 0;
    for (size_t i = 0; i < pst_sparse_model_n_keys(sparse); i++)
        zeros += pst_sparse_model_entry(sparse, i, NULL)[0] == 0.0f;
    assert_true(zeros > 0);
    assert_int_equal(a.n_rows, pst_sparse_model_n_keys(plain));
    assert_int_equal(b.n_rows, pst_sparse_model_n_keys(sparse) - zeros);
    for (size_t i = 0; i < b.n_rows; i++)
        assert_true(b.rows[i] != 0.0f);
    /* the smaller file still scores exactly as the L1 model */
    pst_sparse_batch_t batch = make_batch();
    float want[ROWS], got[ROWS];
    assert_int_equal(pst_sparse_model_predict(sparse, &batch, want, NULL), PST_OK);
    pst_sparse_scorer_t *sc = pst_sparse_scorer_new(&b, NULL);
    assert_int_equal(pst_sparse_scorer_predict(sc, &batch, got, NULL), PST_OK);
    assert_memory_equal(got, want, sizeof want);
    pst_sparse_scorer_destroy(&sc);
    pst_sparsefile_fini(&a);
    pst_sparsefile_fini(&b);
    pst_sparse_model_destroy(&plain);
    pst_sparse_model_destroy(&sparse);
}

static void every_truncation_is_refused(void **state)
{
    (void)state;
    pst_sparse_model_t *m = trained(PST_SPARSE_FM, 0.0f);
    pst_sparsefile_t sf, back;
    file_of(&sf, m, PST_SPARSE_FM);
    uint8_t *buf;
    size_t len;
    pack(&sf, &buf, &len);
    for (size_t cut = 0; cut < len; cut++) {
        pst_err_t err = {0};
        if (pst_sparsefile_unpack(&back, buf, cut, "cut.pst", &err) == PST_OK)
            fail_msg("a file cut to %zu of %zu bytes was accepted", cut, len);
        assert_non_null(strstr(err.msg, "cut.pst: "));
    }
    free(buf);
    pst_sparsefile_fini(&sf);
    pst_sparse_model_destroy(&m);
}

static void a_flipped_weight_fails_the_checksum(void **state)
{
    (void)state;
    pst_sparse_model_t *m = trained(PST_SPARSE_LR, 0.0f);
    pst_sparsefile_t sf, back;
    file_of(&sf, m, PST_SPARSE_LR);
    uint8_t *buf;
    size_t len;
    pack(&sf, &buf, &len);
    /* the first row's float follows the keys: find it by its bytes */
    uint8_t *at = NULL;
    for (size_t i = 0; at == NULL && i + 2 * sizeof(float) <= len; i++)
        if (memcmp(buf + i, sf.rows, 2 * sizeof(float)) == 0)
            at = buf + i;
    assert_non_null(at);
    at[1] ^= 0x10;
    pst_err_t err = {0};
    assert_int_equal(pst_sparsefile_unpack(&back, buf, len, "flip.pst", &err), PST_EFORMAT);
    assert_string_equal(err.msg, "flip.pst: checksum mismatch (the file is corrupt)");
    free(buf);
    pst_sparsefile_fini(&sf);
    pst_sparse_model_destroy(&m);
}

/* A hand-made message with the given counts over a few bytes. */
static void pack_hostile(uint64_t n_rows, uint32_t row_width, const char *type, uint8_t **buf,
                         size_t *len)
{
    static uint8_t keys[16], rows[8];
    Pst__Model m = PST__MODEL__INIT;
    Pst__SparseModel s = PST__SPARSE_MODEL__INIT;
    s.type = (char *)type;
    s.row_width = row_width;
    s.n_rows = n_rows;
    s.keys = (ProtobufCBinaryData){sizeof keys, keys};
    s.rows = (ProtobufCBinaryData){sizeof rows, rows};
    /* the checksum as the writer computes it, so the counts are what is refused */
    pst_sparsefile_t ok = {.type = PST_SPARSEFILE_LR,
                           .spec = {PST_SPARSE_LR, 0},
                           .n_rows = 2,
                           .keys = (uint64_t *)keys,
                           .rows = (float *)rows};
    uint8_t *ref;
    size_t ref_len;
    keys[8] = 1; /* ascending */
    assert_int_equal(pst_sparsefile_pack(&ok, &ref, &ref_len, NULL), PST_OK);
    Pst__Model *parsed = pst__model__unpack(NULL, ref_len, ref);
    s.checksum = parsed->sparse->checksum;
    pst__model__free_unpacked(parsed, NULL);
    free(ref);
    m.magic = PST_MODELFILE_MAGIC;
    m.version = PST_MODELFILE_VERSION_SPARSE;
    m.sparse = &s;
    *len = pst__model__get_packed_size(&m);
    *buf = malloc(*len);
    pst__model__pack(&m, *buf);
}

static void hostile_counts_are_refused_before_allocating(void **state)
{
    (void)state;
    struct {
        uint64_t n_rows;
        uint32_t width;
        const char *type, *msg;
    } cases[] = {
        {2, 1, "sparse_lr", NULL},
        {(uint64_t)1 << 40, 1, "sparse_lr", "h.pst: 1099511627776 rows declared, 16 bytes of keys"},
        {3, 1, "sparse_lr", "h.pst: 3 rows declared, 16 bytes of keys"},
        {2, 2, "sparse_lr", "h.pst: row width 2 for model type sparse_lr"},
        {2, 4, "fm", "h.pst: 2 rows of 4 floats declared, 8 bytes of rows"},
        {2, 100000, "fm", "h.pst: row width 100000 for model type fm"},
        {2, 1, "tree", "h.pst: unknown sparse model type 'tree'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *buf;
        size_t len;
        pack_hostile(cases[i].n_rows, cases[i].width, cases[i].type, &buf, &len);
        pst_sparsefile_t sf;
        pst_err_t err = {0};
        int rc = pst_sparsefile_unpack(&sf, buf, len, "h.pst", &err);
        if (cases[i].msg == NULL) {
            assert_int_equal(rc, PST_OK);
            assert_int_equal(sf.n_rows, 2);
            pst_sparsefile_fini(&sf);
        } else {
            assert_int_equal(rc, PST_EFORMAT);
            assert_string_equal(err.msg, cases[i].msg);
        }
        free(buf);
    }
}

static void dense_and_sparse_readers_refuse_each_other(void **state)
{
    (void)state;
    pst_sparse_model_t *m = trained(PST_SPARSE_LR, 0.0f);
    pst_sparsefile_t sf;
    file_of(&sf, m, PST_SPARSE_LR);
    uint8_t *buf;
    size_t len;
    pack(&sf, &buf, &len);
    pst_modelfile_t mf;
    pst_err_t err = {0};
    assert_int_equal(pst_modelfile_unpack(&mf, buf, len, "s.pst", &err), PST_EFORMAT);
    assert_non_null(strstr(err.msg, "s.pst: a sparse model file (model.type sparse_lr)"));
    free(buf);
    /* a dense model file read as sparse */
    pst_layer_spec_t layer = {.kind = PST_LAYER_DENSE, .units = 1};
    float params[3] = {1, 2, 3};
    pst_modelfile_t dense = {.n_inputs = 2,
                             .n_layers = 1,
                             .layers = &layer,
                             .n_params = 3,
                             .params = params,
                             .n_classes = 2};
    assert_int_equal(pst_modelfile_pack(&dense, &buf, &len, NULL), PST_OK);
    pst_sparsefile_t back;
    assert_int_equal(pst_sparsefile_unpack(&back, buf, len, "d.pst", &err), PST_EFORMAT);
    assert_string_equal(err.msg, "d.pst: model file version 1 is not a sparse model (version 2)");
    free(buf);
    /* the probe tells them apart without loading */
    char path[256];
    bool is_sparse = true;
    pst_scratch_path(path, "d.pst");
    assert_int_equal(pst_modelfile_save(&dense, path, NULL), PST_OK);
    assert_int_equal(pst_sparsefile_probe(path, &is_sparse, NULL), PST_OK);
    assert_false(is_sparse);
    pst_scratch_path(path, "s.pst");
    assert_int_equal(pst_sparsefile_save(&sf, path, NULL, NULL), PST_OK);
    assert_int_equal(pst_sparsefile_probe(path, &is_sparse, NULL), PST_OK);
    assert_true(is_sparse);
    pst_sparsefile_fini(&sf);
    pst_sparse_model_destroy(&m);
}

static void wide_deep_round_trip_scores_as_the_model(void **state)
{
    (void)state;
    static const pst_layer_spec_t hidden[2] = {{.kind = PST_LAYER_DENSE, .units = 4},
                                               {.kind = PST_LAYER_RELU, .units = 0}};
    pst_wide_deep_spec_t spec = {
        .n_fields = 5, .dim = 3, .hidden = hidden, .n_hidden = 2, .max_batch = ROWS};
    pst_wide_deep_t *wd = pst_wide_deep_new(&spec, NULL);
    assert_non_null(wd);
    pst_wide_deep_init_dense(wd, 11);
    pst_sparse_model_t *rows = trained(PST_SPARSE_FM, 0.0f); /* 3 factors = dim */
    pst_sparsefile_t sf = {.format = PST_SPARSE_LIBSVM}, back;
    assert_int_equal(pst_sparsefile_take_wide_deep(&sf, wd, NULL), PST_OK);
    assert_int_equal(pst_sparsefile_take_rows(&sf, rows, NULL), PST_OK);
    uint8_t *buf;
    size_t len;
    pack(&sf, &buf, &len);
    assert_int_equal(pst_sparsefile_unpack(&back, buf, len, "wd.pst", NULL), PST_OK);
    assert_int_equal(back.type, PST_SPARSEFILE_WIDE_DEEP);
    assert_int_equal(back.wd.n_fields, 5);
    assert_int_equal(back.wd.n_hidden, 2);
    assert_int_equal(back.hidden[0].units, 4);
    assert_int_equal(back.n_dense, pst_model_n_params(pst_wide_deep_mlp(wd)));
    assert_memory_equal(back.dense, pst_model_params(pst_wide_deep_mlp(wd)),
                        back.n_dense * sizeof(float));
    /* scores as the model on rows looked up from the trained store */
    pst_sparse_batch_t b = make_batch();
    const float *r;
    const uint32_t *slot;
    size_t n_keys;
    float want[ROWS], got[ROWS];
    assert_int_equal(pst_sparse_model_lookup(rows, &b, false, &r, &slot, &n_keys, NULL), PST_OK);
    assert_int_equal(pst_wide_deep_predict(wd, &b, slot, r, n_keys, want, NULL), PST_OK);
    pst_sparse_scorer_t *sc = pst_sparse_scorer_new(&back, NULL);
    assert_non_null(sc);
    assert_int_equal(pst_sparse_scorer_predict(sc, &b, got, NULL), PST_OK);
    assert_memory_equal(got, want, sizeof want);
    /* a deep stack whose parameter count does not match its bytes */
    Pst__Model *msg = pst__model__unpack(NULL, len, buf);
    msg->sparse->hidden[0]->units = 5;
    size_t len2 = pst__model__get_packed_size(msg);
    uint8_t *buf2 = malloc(len2);
    pst__model__pack(msg, buf2);
    pst_err_t err = {0};
    pst_sparsefile_t bad;
    assert_int_equal(pst_sparsefile_unpack(&bad, buf2, len2, "wd.pst", &err), PST_EFORMAT);
    assert_non_null(strstr(err.msg, "wd.pst: the deep stack needs 86 parameters"));
    pst__model__free_unpacked(msg, NULL);
    free(buf2);
    free(buf);
    pst_sparse_scorer_destroy(&sc);
    pst_sparsefile_fini(&back);
    pst_sparsefile_fini(&sf);
    pst_sparse_model_destroy(&rows);
    pst_wide_deep_destroy(&wd);
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fm_round_trip_is_bit_exact_and_scores_as_trained),
        cmocka_unit_test(all_zero_rows_are_left_out),
        cmocka_unit_test(every_truncation_is_refused),
        cmocka_unit_test(a_flipped_weight_fails_the_checksum),
        cmocka_unit_test(hostile_counts_are_refused_before_allocating),
        cmocka_unit_test(dense_and_sparse_readers_refuse_each_other),
        cmocka_unit_test(wide_deep_round_trip_scores_as_the_model),
    };
    return cmocka_run_group_tests(tests, pst_scratch_make, pst_scratch_remove);
}
