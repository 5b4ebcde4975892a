/* Tests for common/filesum (the CRC trailer of model files) and the model file reader's checks
 * that come before any large allocation: a flipped bit, a missing trailer and a parameter count
 * the bytes do not hold are each refused with a message naming the file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/atomicfile.h"
#include "common/filesum.h"
#include "common/log.h"
#include "scratch.h"
#include "worker/model/modelfile.h"
#include "pstrain.pb-c.h"

static void flip_bit(const char *path, size_t at, int bit)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, (long)at, SEEK_SET), 0);
    int c = fgetc(f);
    assert_int_equal(fseek(f, (long)at, SEEK_SET), 0);
    fputc(c ^ (1 << bit), f);
    fclose(f);
}

static void round_trip_and_every_flipped_bit_refused(void **state)
{
    (void)state;
    char path[256];
    pst_scratch_path(path, "sum.bin");
    const char content[] = "parameters: 0.25 0.5 -1";
    pst_err_t err = {0};
    assert_int_equal(pst_filesum_write(path, content, sizeof content, &err), PST_OK);
    unsigned char *data;
    size_t len;
    assert_int_equal(pst_filesum_read(path, 1024, &data, &len, &err), PST_OK);
    assert_int_equal(len, sizeof content);
    assert_memory_equal(data, content, sizeof content);
    free(data);
    /* Each bit of the content and of the CRC, flipped alone, is caught. */
    for (size_t at = 0; at < sizeof content + PST_FILESUM_TRAILER; at++) {
        if (at >= sizeof content && at < sizeof content + 4)
            continue; /* the trailer's magic: tested below */
        for (int bit = 0; bit < 8; bit++) {
            flip_bit(path, at, bit);
            assert_int_equal(pst_filesum_read(path, 1024, &data, &len, &err), PST_EFORMAT);
            assert_non_null(strstr(err.msg, "checksum mismatch"));
            assert_non_null(strstr(err.msg, path));
            assert_null(data);
            flip_bit(path, at, bit);
        }
    }
    flip_bit(path, sizeof content, 0);
    assert_int_equal(pst_filesum_read(path, 1024, &data, &len, &err), PST_EFORMAT);
    assert_non_null(strstr(err.msg, "no checksum trailer"));
    /* A file without a trailer, and one larger than allowed. */
    assert_int_equal(pst_write_file_atomic(path, content, sizeof content, &err), PST_OK);
    assert_int_equal(pst_filesum_read(path, 1024, &data, &len, &err), PST_EFORMAT);
    assert_non_null(strstr(err.msg, "no checksum trailer"));
    assert_int_equal(pst_filesum_read(path, 4, &data, &len, &err), PST_EFORMAT);
    assert_non_null(strstr(err.msg, "larger than"));
}

/* A 2-layer model file that claims a layer of 2^24 units (the most a layer field may say) over
 * 2^20 inputs (2^44 parameters) but holds 4 floats: refused from its counts, at once, before the
 * model is built. */
static void claims_larger_than_the_bytes_are_refused(void **state)
{
    (void)state;
    Pst__Model m = PST__MODEL__INIT;
    Pst__LayerSpec dense = PST__LAYER_SPEC__INIT, out = PST__LAYER_SPEC__INIT;
    dense.kind = "dense";
    dense.units = 1u << 24;
    out.kind = "softmax";
    Pst__LayerSpec *layers[2] = {&dense, &out};
    float params[4] = {1, 2, 3, 4};
    m.magic = PST_MODELFILE_MAGIC;
    m.version = PST_MODELFILE_VERSION;
    m.n_inputs = 1u << 20;
    m.n_layers = 2;
    m.layers = layers;
    m.loss = "softmax_ce";
    m.task = "classification";
    m.n_classes = 2;
    m.params.data = (uint8_t *)params;
    m.params.len = sizeof params;
    m.config_yaml = "";
    m.target_name = "";
    size_t len = pst__model__get_packed_size(&m);
    uint8_t *buf = malloc(len);
    pst__model__pack(&m, buf);
    char path[256];
    pst_scratch_path(path, "claims.pst");
    pst_err_t err = {0};
    assert_int_equal(pst_filesum_write(path, buf, len, &err), PST_OK);
    free(buf);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pst_modelfile_t mf;
    assert_int_equal(pst_modelfile_load(&mf, path, &err), PST_EFORMAT);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_non_null(strstr(err.msg, "4 parameters stored, its layers need 17592202821632"));
    assert_true((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < 500);
    /* Units past the limit are refused by name. */
    dense.units = 1u << 30;
    len = pst__model__get_packed_size(&m);
    buf = malloc(len);
    pst__model__pack(&m, buf);
    assert_int_equal(pst_filesum_write(path, buf, len, &err), PST_OK);
    free(buf);
    assert_int_equal(pst_modelfile_load(&mf, path, &err), PST_EFORMAT);
    assert_non_null(strstr(err.msg, "layer 1 has a size over 16777216"));
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_and_every_flipped_bit_refused),
        cmocka_unit_test(claims_larger_than_the_bytes_are_refused),
    };
    return cmocka_run_group_tests(tests, pst_scratch_make, pst_scratch_remove);
}
