/* Tests for common/idx: real Fashion-MNIST, gzip and plain files, and every malformed header. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "common/data/dataload.h"
#include "common/data/idx.h"

#define FMNIST "/usr/share/datasets/fashion-mnist/"

static char tmp_dir[64];

static int make_dir(void **state)
{
    strcpy(tmp_dir, "/tmp/pst_idx_test_XXXXXX");
    return mkdtemp(tmp_dir) == NULL ? -1 : 0;
}

static int remove_dir(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Writes bytes to tmp_dir/name, gzip-compressed when gz; returns the path in a static slot. */
static const char *write_file(const char *name, const unsigned char *bytes, size_t len, int gz)
{
    static char paths[4][256];
    static int next;
    char *path = paths[next++ % 4];
    snprintf(path, 256, "%s/%s", tmp_dir, name);
    if (gz) {
        gzFile f = gzopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(gzwrite(f, bytes, (unsigned)len), (int)len);
        gzclose(f);
    } else {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(bytes, 1, len, f), len);
        fclose(f);
    }
    return path;
}

/* An images file of n images of 2x3 pixels: pixel k of image i is 10 * i + k. */
static size_t images_bytes(unsigned char *buf, uint32_t magic, uint32_t n, size_t keep_pixels)
{
    put_be32(buf, magic);
    put_be32(buf + 4, n);
    put_be32(buf + 8, 2);
    put_be32(buf + 12, 3);
    size_t len = 16;
    for (uint32_t i = 0; i < n; i++)
        for (int k = 0; k < 6; k++)
            buf[len++] = (unsigned char)(10 * i + k);
    return len - (6 * n - keep_pixels);
}

static size_t labels_bytes(unsigned char *buf, uint32_t n, const unsigned char *labels)
{
    put_be32(buf, PST_IDX_LABELS_MAGIC);
    put_be32(buf + 4, n);
    memcpy(buf + 8, labels, n);
    return 8 + n;
}

/* Reads images+labels written with the given names; returns the code, error in *err. */
static int read_pair(const char *images, const char *labels, int n_classes, pst_dataset_t **d,
                     pst_err_t *err)
{
    pst_data_spec_t spec = {.path = images, .labels_path = labels, .n_classes = n_classes};
    pst_err_clear(err);
    return pst_idx_read(&spec, d, err);
}

static void real_t10k_set(void **state)
{
    pst_data_spec_t spec = {.path = FMNIST "t10k-images-idx3-ubyte.gz"};
    pst_dataset_t *d = NULL;
    pst_err_t err = {0};
    assert_int_equal(pst_data_load(&spec, &d, &err), PST_OK);
    assert_int_equal(d->n_rows, 10000);
    assert_int_equal(d->n_features, 784);
    assert_int_equal(d->task, PST_TASK_CLASSIFICATION);
    assert_int_equal(d->n_classes, 10);
    assert_false(pst_dataset_is_sparse(d));
    int hist[10] = {0};
    for (size_t i = 0; i < d->n_rows; i++)
        hist[(int)d->y[i]]++;
    for (int c = 0; c < 10; c++) {
        assert_int_equal(hist[c], 1000);
        assert_true(d->class_values[c] == c);
    }
    /* Reference values from numpy reading the same gzip files. */
    static const int first_labels[10] = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
    for (int i = 0; i < 10; i++)
        assert_int_equal((int)d->y[i], first_labels[i]);
    static const float row0[6] = {115, 114, 106, 137, 168, 153};
    for (int k = 0; k < 6; k++)
        assert_true(d->x[350 + k] == row0[k]);
    double row0_sum = 0, last_sum = 0, total = 0;
    for (size_t j = 0; j < 784; j++) {
        row0_sum += d->x[j];
        last_sum += d->x[9999 * 784 + j];
    }
    for (size_t k = 0; k < 10000 * 784; k++)
        total += d->x[k];
    assert_true(row0_sum == 33456);
    assert_true(last_sum == 24390);
    assert_true(total == 573469082.0);
    pst_dataset_destroy(&d);
}

static void real_train_set_reads_whole(void **state)
{
    pst_data_spec_t spec = {.path = FMNIST "train-images-idx3-ubyte.gz", .n_classes = 10};
    pst_dataset_t *d = NULL;
    pst_err_t err = {0};
    assert_int_equal(pst_idx_read(&spec, &d, &err), PST_OK);
    assert_int_equal(d->n_rows, 60000);
    static const int first_labels[10] = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5};
    for (int i = 0; i < 10; i++)
        assert_int_equal((int)d->y[i], first_labels[i]);
    double last_sum = 0;
    for (size_t j = 0; j < 784; j++)
        last_sum += d->x[59999 * 784 + j];
    assert_true(last_sum == 16684);
    pst_dataset_destroy(&d);
}

static void plain_and_gzip_read_the_same(void **state)
{
    unsigned char img[64], lab[16];
    const unsigned char labels[3] = {2, 0, 1};
    size_t ilen = images_bytes(img, PST_IDX_IMAGES_MAGIC, 3, 18);
    size_t llen = labels_bytes(lab, 3, labels);
    for (int gz = 0; gz <= 1; gz++) {
        const char *ip =
            write_file(gz ? "g-images-idx3-ubyte.gz" : "p-images-idx3-ubyte", img, ilen, gz);
        write_file(gz ? "g-labels-idx1-ubyte.gz" : "p-labels-idx1-ubyte", lab, llen, gz);
        pst_dataset_t *d = NULL;
        pst_err_t err;
        /* labels path derived from the images name */
        assert_int_equal(read_pair(ip, NULL, 0, &d, &err), PST_OK);
        assert_int_equal(d->n_rows, 3);
        assert_int_equal(d->n_features, 6);
        assert_int_equal(d->n_classes, 3);
        for (int i = 0; i < 3; i++) {
            assert_true(d->y[i] == labels[i]);
            for (int k = 0; k < 6; k++)
                assert_true(d->x[i * 6 + k] == (float)(10 * i + k));
        }
        pst_dataset_destroy(&d);
    }
}

static void expected_class_count_and_out_of_range(void **state)
{
    unsigned char img[64], lab[16];
    const unsigned char labels[3] = {0, 5, 1};
    const char *ip = write_file("r-images", img, images_bytes(img, PST_IDX_IMAGES_MAGIC, 3, 18), 0);
    const char *lp = write_file("r-labels", lab, labels_bytes(lab, 3, labels), 0);
    pst_dataset_t *d = NULL;
    pst_err_t err;
    assert_int_equal(read_pair(ip, lp, 0, &d, &err), PST_OK);
    assert_int_equal(d->n_classes, 6); /* max label + 1 */
    pst_dataset_destroy(&d);
    assert_int_equal(read_pair(ip, lp, 10, &d, &err), PST_OK);
    assert_int_equal(d->n_classes, 10);
    pst_dataset_destroy(&d);
    static const double train_classes[4] = {0, 1, 2, 3};
    pst_data_spec_t spec = {
        .path = ip, .labels_path = lp, .class_values = train_classes, .n_class_values = 4};
    assert_int_equal(pst_idx_read(&spec, &d, &err), PST_ERANGE); /* label 5 of 4 classes */
    assert_non_null(strstr(err.msg, "(4 classes)"));
    assert_int_equal(read_pair(ip, lp, 5, &d, &err), PST_ERANGE);
    assert_null(d);
    assert_non_null(strstr(err.msg, "label 5 out of range"));
    assert_non_null(strstr(err.msg, "byte 9")); /* 8-byte header + index 1 */
    assert_non_null(strstr(err.msg, lp));
}

static void truncated_images(void **state)
{
    unsigned char img[64], lab[16];
    const unsigned char labels[3] = {0, 1, 2};
    size_t ilen = images_bytes(img, PST_IDX_IMAGES_MAGIC, 3, 15); /* 3 pixels short */
    const char *ip = write_file("t-images", img, ilen, 1);
    const char *lp = write_file("t-labels", lab, labels_bytes(lab, 3, labels), 0);
    pst_dataset_t *d = NULL;
    pst_err_t err;
    assert_int_equal(read_pair(ip, lp, 0, &d, &err), PST_EFORMAT);
    assert_null(d);
    assert_non_null(strstr(err.msg, "truncated"));
    assert_non_null(strstr(err.msg, "byte 31")); /* 16 + 15 pixels read */
    assert_non_null(strstr(err.msg, ip));
    /* the same uncompressed: caught from the file size before reading */
    ip = write_file("tp-images", img, ilen, 0);
    assert_int_equal(read_pair(ip, lp, 0, &d, &err), PST_EFORMAT);
    assert_non_null(strstr(err.msg, "byte 31: truncated file: 18 pixel bytes expected, got 15"));
    /* a header cut short */
    ip = write_file("h-images", img, 10, 0);
    assert_int_equal(read_pair(ip, lp, 0, &d, &err), PST_EFORMAT);
    assert_non_null(strstr(err.msg, "truncated"));
}

static void wrong_magic(void **state)
{
    unsigned char img[64], lab[16];
    const unsigned char labels[3] = {0, 1, 2};
    size_t llen = labels_bytes(lab, 3, labels);
    const char *ip = write_file("m-images", img, images_bytes(img, 0x00000801, 3, 18), 0);
    const char *lp = write_file("m-labels", lab, llen, 0);
    pst_dataset_t *d = NULL;
    pst_err_t err;
    assert_int_equal(read_pair(ip, lp, 0, &d, &err), PST_EFORMAT);
    assert_non_null(strstr(err.msg, "wrong magic 0x00000801"));
    assert_non_null(strstr(err.msg, ip));
    /* the labels file given where the images are expected, and the other way round */
    ip = write_file("m2-images", img, images_bytes(img, PST_IDX_IMAGES_MAGIC, 3, 18), 0);
    assert_int_equal(read_pair(ip, ip, 0, &d, &err), PST_EFORMAT);
    assert_non_null(strstr(err.msg, "wrong magic 0x00000803"));
}

static void count_mismatch_and_empty(void **state)
{
    unsigned char img[64], lab[16];
    const unsigned char labels[2] = {0, 1};
    const char *ip = write_file("c-images", img, images_bytes(img, PST_IDX_IMAGES_MAGIC, 3, 18), 0);
    const char *lp = write_file("c-labels", lab, labels_bytes(lab, 2, labels), 0);
    pst_dataset_t *d = NULL;
    pst_err_t err;
    assert_int_equal(read_pair(ip, lp, 0, &d, &err), PST_EFORMAT);
    assert_non_null(strstr(err.msg, "2 labels but"));
    assert_non_null(strstr(err.msg, "holds 3 images"));
    ip = write_file("e-images", img, images_bytes(img, PST_IDX_IMAGES_MAGIC, 0, 0), 0);
    assert_int_equal(read_pair(ip, lp, 0, &d, &err), PST_EFORMAT);
    assert_non_null(strstr(err.msg, "0 images"));
}

static void labels_path_derivation(void **state)
{
    char *p = pst_idx_labels_path("/d/train-images-idx3-ubyte.gz");
    assert_string_equal(p, "/d/train-labels-idx1-ubyte.gz");
    free(p);
    assert_null(pst_idx_labels_path("/d/pixels.bin"));
    pst_data_spec_t spec = {.path = "/d/pixels-ubyte"};
    pst_dataset_t *d = NULL;
    pst_err_t err = {0};
    assert_int_equal(pst_idx_read(&spec, &d, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "labels_path"));
    spec.path = FMNIST "t10k-images-idx3-ubyte.gz";
    spec.task = PST_DATA_TASK_REGRESSION;
    assert_int_equal(pst_idx_read(&spec, &d, &err), PST_EINVAL);
    spec.task = PST_DATA_TASK_AUTO;
    spec.path = "/nonexistent/x-images-idx3-ubyte";
    assert_int_equal(pst_idx_read(&spec, &d, &err), PST_EIO);
    assert_non_null(strstr(err.msg, "/nonexistent/x-images-idx3-ubyte"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(real_t10k_set),
        cmocka_unit_test(real_train_set_reads_whole),
        cmocka_unit_test(plain_and_gzip_read_the_same),
        cmocka_unit_test(expected_class_count_and_out_of_range),
        cmocka_unit_test(truncated_images),
        cmocka_unit_test(wrong_magic),
        cmocka_unit_test(count_mismatch_and_empty),
        cmocka_unit_test(labels_path_derivation),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
