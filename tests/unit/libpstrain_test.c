/* Tests for lib/ (libpstrain, through its public header and shared library): a model's inputs and
 * outputs described, predictions by column name equal bit for bit to the program's own path
 * (modelfile preprocessing + pst_predict) whatever the column order, numbers and strings alike,
 * concurrent predictions on one model equal the single-threaded ones, and hostile input (missing
 * column, text cell, infinity, unimputable NaN, corrupt or absent file) refused with a code and a
 * message naming the place. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/atomicfile.h"
#include "common/log.h"
#include "common/rng.h"
#include "include/pstrain.h"
#include "tests/unit/scratch.h"
#include "worker/model/modelfile.h"
#include "worker/train/train.h"

#define N_IN 5
#define N_CLASSES 3
#define N_ROWS 600 /* more than one 256-row chunk */
#define N_THREADS 4

static const char *names[N_IN] = {"alcohol", "ash", "hue", "proline", "color"};
static const double class_values[N_CLASSES] = {1, 2, 7};

/* An MLP (dense:16 relu dense:3 softmax) with standardisation and mean imputation, saved to a
 * scratch file; with_preproc false leaves it without (no imputation). */
static const char *save_model(const char *file, bool with_preproc)
{
    pst_layer_spec_t layers[4] = {{.kind = PST_LAYER_DENSE, .units = 16},
                                  {.kind = PST_LAYER_RELU},
                                  {.kind = PST_LAYER_DENSE, .units = N_CLASSES},
                                  {.kind = PST_LAYER_SOFTMAX}};
    pst_err_t err = {0};
    pst_model_t *model = pst_model_new(N_IN, layers, 4, 8, &err);
    assert_non_null(model);
    pst_rng_t rng;
    pst_rng_init(&rng, 11);
    pst_model_init_params(model, &rng);
    float shift[N_IN] = {13, 2.3f, 1, 750, 5}, scale[N_IN] = {1.2f, 3.6f, 4.4f, 0.003f, 0.43f};
    float fill[N_IN] = {13.1f, 2.2f, 0.9f, 740, 5.2f};
    pst_modelfile_t mf = {.n_inputs = N_IN,
                          .n_layers = 4,
                          .layers = layers,
                          .loss = PST_LOSS_SOFTMAX_CE,
                          .task = PST_TASK_CLASSIFICATION,
                          .n_classes = N_CLASSES,
                          .class_values = (double *)class_values,
                          .params = pst_model_params(model),
                          .n_params = pst_model_n_params(model),
                          .feature_names = (char **)names};
    if (with_preproc) {
        mf.shift = shift, mf.scale = scale, mf.fill = fill, mf.pixel_scale = 1;
    }
    static char path[2][256];
    char *p = path[with_preproc];
    pst_scratch_path(p, file);
    assert_int_equal(pst_modelfile_save(&mf, p, &err), PST_OK);
    pst_model_destroy(&model);
    return p;
}

/* Raw rows (N_ROWS, N_IN) near the model's scale, a few of them missing (NaN). */
static void make_rows(float *x)
{
    pst_rng_t rng;
    pst_rng_init(&rng, 5);
    const float centre[N_IN] = {13, 2.3f, 1, 750, 5}, spread[N_IN] = {1, 0.3f, 0.2f, 300, 2};
    for (size_t i = 0; i < N_ROWS; i++)
        for (int j = 0; j < N_IN; j++)
            x[i * N_IN + j] = centre[j] + spread[j] * (float)pst_rng_normal(&rng);
    x[3 * N_IN + 2] = NAN;
    x[400 * N_IN + 0] = NAN;
}

/* The program's path: the model file loaded, preprocessed rows, pst_predict in 256-row chunks. */
static void reference_outputs(const char *path, const float *x, double *expected)
{
    pst_modelfile_t mf;
    pst_err_t err = {0};
    assert_int_equal(pst_modelfile_load(&mf, path, &err), PST_OK);
    pst_dataset_t *ds = pst_dataset_new(N_ROWS, N_IN, PST_TASK_CLASSIFICATION);
    memcpy(ds->x, x, sizeof(float) * N_ROWS * N_IN);
    assert_int_equal(pst_modelfile_preprocess(&mf, ds, &err), PST_OK);
    pst_model_t *model = pst_modelfile_build(&mf, 256, &err);
    float *out = malloc(sizeof(float) * N_ROWS * N_CLASSES);
    assert_int_equal(pst_predict(model, ds, 256, out, &err), PST_OK);
    for (size_t i = 0; i < N_ROWS * N_CLASSES; i++)
        expected[i] = out[i];
    free(out);
    pst_model_destroy(&model);
    pst_dataset_destroy(&ds);
    pst_modelfile_fini(&mf);
}

/* The caller's batch: the model's columns in another order, "ash" and "proline" as text
 * (printed exactly), an extra column the model does not take. */
typedef struct batch {
    double numbers[N_IN][N_ROWS];
    char text[N_IN][N_ROWS][32];
    const char *strings[N_IN][N_ROWS];
    double extra[N_ROWS];
    pstrain_column cols[N_IN + 1];
} batch_t;

static batch_t *make_batch(const float *x)
{
    batch_t *b = calloc(1, sizeof *b);
    const int order[N_IN] = {4, 1, 3, 0, 2};
    for (int c = 0; c < N_IN; c++) {
        int j = order[c];
        bool text = j == 1 || j == 3;
        for (size_t i = 0; i < N_ROWS; i++) {
            float v = x[i * N_IN + j];
            b->numbers[c][i] = v;
            if (isnan(v))
                snprintf(b->text[c][i], 32, "%s", i % 2 ? "" : "NA");
            else
                snprintf(b->text[c][i], 32, " %.9g", v);
            b->strings[c][i] = b->text[c][i];
        }
        b->cols[c + 1] =
            (pstrain_column){names[j], text ? NULL : b->numbers[c], text ? b->strings[c] : NULL};
    }
    b->cols[0] = (pstrain_column){"target", b->extra, NULL};
    return b;
}

static int find_col(batch_t *b, const char *name)
{
    for (int c = 0; c < N_IN + 1; c++)
        if (strcmp(b->cols[c].name, name) == 0)
            return c;
    fail();
    return -1;
}

static void describes_inputs_and_outputs(void **state)
{
    pstrain_model *m = NULL;
    pstrain_error err;
    assert_int_equal(pstrain_model_load(save_model("d.pst", true), &m, &err), PSTRAIN_OK);
    assert_int_equal(pstrain_model_n_inputs(m), N_IN);
    for (int i = 0; i < N_IN; i++) {
        assert_string_equal(pstrain_model_input_name(m, i), names[i]);
        assert_int_equal(pstrain_model_input_type(m, i), PSTRAIN_NUMERIC);
    }
    assert_null(pstrain_model_input_name(m, N_IN));
    assert_int_equal(pstrain_model_task(m), PSTRAIN_CLASSIFICATION);
    assert_int_equal(pstrain_model_n_classes(m), N_CLASSES);
    assert_int_equal(pstrain_model_n_outputs(m), N_CLASSES);
    assert_string_equal(pstrain_model_class_name(m, 0), "1");
    assert_string_equal(pstrain_model_class_name(m, 2), "7");
    assert_null(pstrain_model_class_name(m, 3));
    pstrain_model_free(m);
}

static void predicts_by_name_as_the_program_does(void **state)
{
    const char *path = save_model("p.pst", true);
    float *x = malloc(sizeof(float) * N_ROWS * N_IN);
    make_rows(x);
    double *expected = malloc(sizeof(double) * N_ROWS * N_CLASSES);
    double *got = malloc(sizeof(double) * N_ROWS * N_CLASSES);
    int *classes = malloc(sizeof(int) * N_ROWS);
    reference_outputs(path, x, expected);
    batch_t *b = make_batch(x);
    pstrain_model *m = NULL;
    pstrain_error err;
    assert_int_equal(pstrain_model_load(path, &m, &err), PSTRAIN_OK);
    assert_int_equal(pstrain_predict(m, b->cols, N_IN + 1, N_ROWS, got, classes, &err), PSTRAIN_OK);
    assert_int_equal(err.code, PSTRAIN_OK);
    assert_memory_equal(got, expected, sizeof(double) * N_ROWS * N_CLASSES);
    for (size_t i = 0; i < N_ROWS; i++) {
        float row[N_CLASSES];
        for (int k = 0; k < N_CLASSES; k++)
            row[k] = (float)expected[i * N_CLASSES + k];
        assert_int_equal(classes[i], pst_predicted_class(row, N_CLASSES));
    }
    /* The same rows as numbers only, and the columns reversed: the same bits. */
    for (int c = 0; c < N_IN + 1; c++)
        if (b->cols[c].strings) {
            b->cols[c].numbers = b->numbers[c - 1];
            b->cols[c].strings = NULL;
        }
    pstrain_column reversed[N_IN + 1];
    for (int c = 0; c < N_IN + 1; c++)
        reversed[c] = b->cols[N_IN - c];
    memset(got, 0, sizeof(double) * N_ROWS * N_CLASSES);
    assert_int_equal(pstrain_predict(m, reversed, N_IN + 1, N_ROWS, got, NULL, &err), PSTRAIN_OK);
    assert_memory_equal(got, expected, sizeof(double) * N_ROWS * N_CLASSES);
    pstrain_model_free(m);
    free(b);
    free(classes);
    free(got);
    free(expected);
    free(x);
}

typedef struct worker {
    const pstrain_model *m;
    const pstrain_column *cols;
    const double *expected;
    int mismatches, failures;
} worker_t;

static void *predict_repeatedly(void *arg)
{
    worker_t *w = arg;
    double *got = malloc(sizeof(double) * N_ROWS * N_CLASSES);
    for (int r = 0; r < 25; r++) {
        pstrain_error err;
        if (pstrain_predict(w->m, w->cols, N_IN + 1, N_ROWS, got, NULL, &err) != PSTRAIN_OK)
            w->failures++;
        else if (memcmp(got, w->expected, sizeof(double) * N_ROWS * N_CLASSES) != 0)
            w->mismatches++;
    }
    free(got);
    return NULL;
}

static void concurrent_predictions_equal_single_threaded(void **state)
{
    const char *path = save_model("t.pst", true);
    float *x = malloc(sizeof(float) * N_ROWS * N_IN);
    make_rows(x);
    batch_t *b = make_batch(x);
    pstrain_model *m = NULL;
    pstrain_error err;
    assert_int_equal(pstrain_model_load(path, &m, &err), PSTRAIN_OK);
    double *single = malloc(sizeof(double) * N_ROWS * N_CLASSES);
    assert_int_equal(pstrain_predict(m, b->cols, N_IN + 1, N_ROWS, single, NULL, &err), PSTRAIN_OK);
    pthread_t threads[N_THREADS];
    worker_t workers[N_THREADS];
    for (int t = 0; t < N_THREADS; t++) {
        workers[t] = (worker_t){m, b->cols, single, 0, 0};
        assert_int_equal(pthread_create(&threads[t], NULL, predict_repeatedly, &workers[t]), 0);
    }
    for (int t = 0; t < N_THREADS; t++) {
        pthread_join(threads[t], NULL);
        assert_int_equal(workers[t].failures, 0);
        assert_int_equal(workers[t].mismatches, 0);
    }
    pstrain_model_free(m);
    free(single);
    free(b);
    free(x);
}

static void hostile_cells_name_column_and_row(void **state)
{
    float *x = malloc(sizeof(float) * N_ROWS * N_IN);
    make_rows(x);
    batch_t *b = make_batch(x);
    double *got = malloc(sizeof(double) * N_ROWS * N_CLASSES);
    pstrain_model *m = NULL, *bare = NULL;
    pstrain_error err;
    assert_int_equal(pstrain_model_load(save_model("h.pst", true), &m, &err), PSTRAIN_OK);
    /* Two model columns left out: both named. */
    pstrain_column some[3] = {b->cols[0], b->cols[find_col(b, "alcohol")],
                              b->cols[find_col(b, "color")]};
    assert_int_equal(pstrain_predict(m, some, 3, N_ROWS, got, NULL, &err), PSTRAIN_EMISSING);
    assert_int_equal(err.code, PSTRAIN_EMISSING);
    assert_non_null(strstr(err.message, "'ash'"));
    assert_non_null(strstr(err.message, "'hue'"));
    assert_non_null(strstr(err.message, "'proline'"));
    assert_null(strstr(err.message, "'alcohol'"));
    /* Text in a numeric column. */
    int ash = find_col(b, "ash");
    snprintf(b->text[ash - 1][7], 32, "red");
    assert_int_equal(pstrain_predict(m, b->cols, N_IN + 1, N_ROWS, got, NULL, &err), PSTRAIN_ETYPE);
    assert_string_equal(err.message, "column 'ash', row 7: non-numeric value 'red'");
    snprintf(b->text[ash - 1][7], 32, "1e999");
    assert_int_equal(pstrain_predict(m, b->cols, N_IN + 1, N_ROWS, got, NULL, &err),
                     PSTRAIN_ENUMERIC);
    assert_non_null(strstr(err.message, "column 'ash', row 7"));
    snprintf(b->text[ash - 1][7], 32, "2.5");
    /* Infinity among numbers; a column given twice; neither numbers nor strings. */
    int hue = find_col(b, "hue");
    b->numbers[hue - 1][9] = INFINITY;
    assert_int_equal(pstrain_predict(m, b->cols, N_IN + 1, N_ROWS, got, NULL, &err),
                     PSTRAIN_ENUMERIC);
    assert_non_null(strstr(err.message, "column 'hue', row 9"));
    b->numbers[hue - 1][9] = 1;
    pstrain_column twice[N_IN + 2];
    memcpy(twice, b->cols, sizeof b->cols);
    twice[N_IN + 1] = b->cols[hue];
    assert_int_equal(pstrain_predict(m, twice, N_IN + 2, N_ROWS, got, NULL, &err), PSTRAIN_EINVAL);
    assert_string_equal(err.message, "column 'hue' is given twice");
    twice[N_IN + 1] = (pstrain_column){"other", NULL, NULL};
    assert_int_equal(pstrain_predict(m, twice, N_IN + 2, N_ROWS, got, NULL, &err), PSTRAIN_EINVAL);
    assert_int_equal(pstrain_predict(m, b->cols, N_IN + 1, N_ROWS, got, NULL, &err), PSTRAIN_OK);
    /* A missing value is imputed when the model stores a fill, refused when it does not. */
    assert_int_equal(pstrain_model_load(save_model("bare.pst", false), &bare, &err), PSTRAIN_OK);
    assert_int_equal(pstrain_predict(bare, b->cols, N_IN + 1, N_ROWS, got, NULL, &err),
                     PSTRAIN_ENUMERIC);
    assert_string_equal(err.message, "column 'alcohol', row 400: missing value, and the model "
                                     "stores no value to impute it with");
    pstrain_model_free(bare);
    pstrain_model_free(m);
    free(got);
    free(b);
    free(x);
}

static void missing_value_takes_the_stored_fill(void **state)
{
    pstrain_model *m = NULL;
    pstrain_error err;
    assert_int_equal(pstrain_model_load(save_model("f.pst", true), &m, &err), PSTRAIN_OK);
    double row[N_IN] = {13.5, 2.0, 1.1, 800, 4.0}, fills[N_IN] = {13.1f, 2.2f, 0.9f, 740, 5.2f};
    pstrain_column cols[N_IN];
    double with_nan[N_CLASSES], with_fill[N_CLASSES];
    for (int j = 0; j < N_IN; j++)
        cols[j] = (pstrain_column){names[j], &row[j], NULL};
    row[2] = NAN;
    assert_int_equal(pstrain_predict(m, cols, N_IN, 1, with_nan, NULL, &err), PSTRAIN_OK);
    row[2] = fills[2];
    assert_int_equal(pstrain_predict(m, cols, N_IN, 1, with_fill, NULL, &err), PSTRAIN_OK);
    assert_memory_equal(with_nan, with_fill, sizeof with_nan);
    row[2] = 3.0;
    assert_int_equal(pstrain_predict(m, cols, N_IN, 1, with_fill, NULL, &err), PSTRAIN_OK);
    assert_memory_not_equal(with_nan, with_fill, sizeof with_nan);
    pstrain_model_free(m);
}

static void bad_files_are_refused_with_a_message(void **state)
{
    pstrain_model *m = (pstrain_model *)&m;
    pstrain_error err;
    char absent[256];
    assert_int_equal(pstrain_model_load(pst_scratch_path(absent, "absent.pst"), &m, &err),
                     PSTRAIN_EIO);
    assert_null(m);
    assert_non_null(strstr(err.message, "absent.pst"));
    const char *path = save_model("c.pst", true);
    FILE *f = fopen(path, "rb");
    unsigned char buf[8192];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_true(len > 200 && len < sizeof buf);
    pst_err_t e;
    /* Cut short, and the magic number changed. */
    assert_int_equal(pst_write_file_atomic(path, buf, len / 2, &e), PST_OK);
    assert_int_equal(pstrain_model_load(path, &m, &err), PSTRAIN_EFORMAT);
    assert_true(err.message[0] != '\0');
    buf[1] ^= 0x5a;
    assert_int_equal(pst_write_file_atomic(path, buf, len, &e), PST_OK);
    assert_int_equal(pstrain_model_load(path, &m, &err), PSTRAIN_EFORMAT);
    assert_true(err.message[0] != '\0');
    assert_int_equal(pst_write_file_atomic(path, "hello, world\n", 13, &e), PST_OK);
    assert_int_equal(pstrain_model_load(path, &m, &err), PSTRAIN_EFORMAT);
    assert_null(m);
    assert_int_equal(pstrain_model_load(NULL, &m, &err), PSTRAIN_EINVAL);
    assert_string_equal(pstrain_strerror(PSTRAIN_EMISSING), "an input column is missing");
}

/* A regression on 80 inputs given none of them: the message lists what fits and counts them. */
static void many_missing_columns_are_counted(void **state)
{
    enum { WIDE = 80 };
    char *wide_names[WIDE], path[256];
    for (int i = 0; i < WIDE; i++) {
        wide_names[i] = malloc(32);
        snprintf(wide_names[i], 32, "measurement_%02d", i);
    }
    pst_layer_spec_t layer = {.kind = PST_LAYER_DENSE, .units = 1};
    float params[WIDE + 1] = {0};
    pst_modelfile_t mf = {.n_inputs = WIDE,
                          .n_layers = 1,
                          .layers = &layer,
                          .loss = PST_LOSS_MSE,
                          .task = PST_TASK_REGRESSION,
                          .params = params,
                          .n_params = WIDE + 1,
                          .feature_names = wide_names};
    pst_err_t e = {0};
    assert_int_equal(pst_modelfile_save(&mf, pst_scratch_path(path, "wide.pst"), &e), PST_OK);
    pstrain_model *m = NULL;
    pstrain_error err;
    assert_int_equal(pstrain_model_load(path, &m, &err), PSTRAIN_OK);
    assert_int_equal(pstrain_model_task(m), PSTRAIN_REGRESSION);
    assert_int_equal(pstrain_model_n_classes(m), 0);
    assert_int_equal(pstrain_model_n_outputs(m), 1);
    double one = 1, out;
    pstrain_column other = {"measurement", &one, NULL};
    assert_int_equal(pstrain_predict(m, &other, 1, 1, &out, NULL, &err), PSTRAIN_EMISSING);
    assert_non_null(strstr(err.message, "80 missing input columns: 'measurement_00', "));
    assert_string_equal(err.message + strlen(err.message) - 3, "...");
    pstrain_model_free(m);
    for (int i = 0; i < WIDE; i++)
        free(wide_names[i]);
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(describes_inputs_and_outputs),
        cmocka_unit_test(predicts_by_name_as_the_program_does),
        cmocka_unit_test(concurrent_predictions_equal_single_threaded),
        cmocka_unit_test(hostile_cells_name_column_and_row),
        cmocka_unit_test(missing_value_takes_the_stored_fill),
        cmocka_unit_test(bad_files_are_refused_with_a_message),
        cmocka_unit_test(many_missing_columns_are_counted),
    };
    return cmocka_run_group_tests(tests, pst_scratch_make, pst_scratch_remove);
}
