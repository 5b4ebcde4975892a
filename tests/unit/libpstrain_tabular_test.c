/* Tests for lib/ on a model with typed inputs: an encoder fitted on tests/data/customers.csv (text
 * categories, yes/no booleans, dates, a number; text class labels) under a small MLP. The
 * library, given the file's cells as strings in another order, predicts bit for bit what
 * pstrain predict's path gives (the row reader's encoding, the model file's preprocessing,
 * pst_predict in 256-row chunks), also from several threads at once; it describes the inputs
 * with their real types; unseen categories share the "other" slot; numbers stand for booleans
 * and categories as documented; bad cells are refused naming column and row; an ensemble whose
 * members encode differently is refused. */
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

#include "common/data/csv.h"
#include "common/data/csvtok.h"
#include "common/data/rowreader.h"
#include "common/data/table.h"
#include "common/log.h"
#include "common/rng.h"
#include "include/pstrain.h"
#include "tests/unit/scratch.h"
#include "worker/model/ensemble.h"
#include "worker/model/modelfile.h"
#include "worker/train/train.h"

#define CUSTOMERS PST_TEST_DATA "/customers.csv"
#define MAX_ROWS 1024
#define MAX_COLS 16
#define N_THREADS 4

/* The file's cells as text, column by column. */
typedef struct cells {
    size_t n_rows;
    int n_cols;
    char *names[MAX_COLS];
    char *text[MAX_COLS][MAX_ROWS];
} cells_t;

static cells_t *read_cells(void)
{
    pst_err_t err = {0};
    pst_csvtok_t *t = pst_csvtok_open(CUSTOMERS, &err);
    assert_non_null(t);
    cells_t *c = calloc(1, sizeof *c);
    const pst_csv_record_t *rec;
    assert_int_equal(pst_csvtok_next(t, &rec, &err), 1);
    c->n_cols = (int)rec->n_fields;
    assert_true(c->n_cols <= MAX_COLS);
    for (int j = 0; j < c->n_cols; j++)
        c->names[j] = strdup(rec->fields[j]);
    while (pst_csvtok_next(t, &rec, &err) == 1) {
        assert_true(c->n_rows < MAX_ROWS);
        for (int j = 0; j < c->n_cols; j++)
            c->text[j][c->n_rows] = strdup(rec->fields[j]);
        c->n_rows++;
    }
    pst_csvtok_destroy(&t);
    return c;
}

static void free_cells(cells_t *c)
{
    for (int j = 0; j < c->n_cols; j++) {
        free(c->names[j]);
        for (size_t i = 0; i < c->n_rows; i++)
            free(c->text[j][i]);
    }
    free(c);
}

/* An MLP over an encoder fitted on customers.csv (note dropped), standardised on the encoded
 * rows, with the file's text class labels; saved to a scratch file. */
static const char *save_model_as(const char *file, pst_outliers_t outliers)
{
    static char paths[3][256];
    char *path = paths[outliers];
    pst_err_t err = {0};
    const char *drop[] = {"note"};
    pst_table_opts_t to = {.drop = drop, .n_drop = 1, .id_column = "customer_id"};
    pst_dataset_t *raw = NULL;
    assert_int_equal(
        pst_csv_read(&(pst_data_spec_t){.path = CUSTOMERS, .target = "churned", .table = &to}, &raw,
                     &err),
        PST_OK);
    pst_encoder_opts_t eo = {
        .max_categories = 32, .beyond = PST_ENC_ONEHOT, .hash_slots = 8, .outliers = outliers};
    pst_encoder_t *enc = NULL;
    pst_dataset_t *ds = NULL;
    assert_int_equal(pst_encoder_fit(raw, NULL, raw->n_rows, &eo, &enc, &err), PST_OK);
    assert_int_equal(pst_encoder_apply(enc, raw, &ds, &err), PST_OK);
    int d = (int)enc->n_features;
    float *shift = calloc((size_t)d, sizeof(float)), *scale = calloc((size_t)d, sizeof(float));
    float *fill = calloc((size_t)d, sizeof(float));
    for (int f = 0; f < d; f++) {
        double sum = 0, sq = 0;
        size_t n = 0;
        for (size_t i = 0; i < ds->n_rows; i++) {
            float v = ds->x[i * (size_t)d + (size_t)f];
            if (!isnan(v))
                sum += v, sq += (double)v * v, n++;
        }
        double mean = n ? sum / (double)n : 0, var = n ? sq / (double)n - mean * mean : 0;
        shift[f] = (float)mean;
        scale[f] = var > 1e-12 ? (float)(1 / sqrt(var)) : 1.0f;
        fill[f] = (float)mean;
    }
    pst_layer_spec_t layers[4] = {{.kind = PST_LAYER_DENSE, .units = 8},
                                  {.kind = PST_LAYER_RELU},
                                  {.kind = PST_LAYER_DENSE, .units = 2},
                                  {.kind = PST_LAYER_SOFTMAX}};
    pst_model_t *model = pst_model_new(d, layers, 4, 8, &err);
    assert_non_null(model);
    pst_rng_t rng;
    pst_rng_init(&rng, 3);
    pst_model_init_params(model, &rng);
    assert_non_null(raw->class_names);
    assert_int_equal(raw->n_classes, 2);
    pst_modelfile_t mf = {.n_inputs = d,
                          .n_layers = 4,
                          .layers = layers,
                          .loss = PST_LOSS_SOFTMAX_CE,
                          .task = PST_TASK_CLASSIFICATION,
                          .n_classes = 2,
                          .shift = shift,
                          .scale = scale,
                          .fill = fill,
                          .pixel_scale = 1,
                          .params = pst_model_params(model),
                          .n_params = pst_model_n_params(model),
                          .encoder = enc,
                          .class_names = raw->class_names};
    assert_int_equal(pst_modelfile_save(&mf, pst_scratch_path(path, file), &err), PST_OK);
    pst_model_destroy(&model);
    pst_encoder_destroy(&enc);
    pst_dataset_destroy(&ds);
    pst_dataset_destroy(&raw);
    free(shift), free(scale), free(fill);
    return path;
}

static const char *save_customers_model(void)
{
    return save_model_as("customers.pst", PST_OUTLIERS_NONE);
}

/* pstrain predict's path over the whole file: (n_rows, 2) probabilities. */
static double *reference(const char *path, size_t *n_rows)
{
    pst_modelfile_t mf;
    pst_err_t err = {0};
    assert_int_equal(pst_modelfile_load(&mf, path, &err), PST_OK);
    pst_rowreader_opts_t ro = {.encoder = mf.encoder,
                               .target = "churned",
                               .task = mf.task,
                               .n_classes = mf.n_classes,
                               .class_names = (const char *const *)mf.class_names};
    pst_rowreader_t *r = pst_rowreader_open(CUSTOMERS, &ro, &err);
    assert_non_null(r);
    pst_dataset_t *ds = pst_dataset_new(MAX_ROWS, mf.encoder->n_features, mf.task);
    assert_int_equal(pst_rowreader_next(r, MAX_ROWS, ds->x, ds->y, NULL, n_rows, &err), PST_OK);
    ds->n_rows = *n_rows;
    assert_int_equal(pst_modelfile_preprocess(&mf, ds, &err), PST_OK);
    pst_model_t *model = pst_modelfile_build(&mf, 256, &err);
    float *out = malloc(sizeof(float) * 2 * *n_rows);
    assert_int_equal(pst_predict(model, ds, 256, out, &err), PST_OK);
    double *expected = malloc(sizeof(double) * 2 * *n_rows);
    for (size_t i = 0; i < 2 * *n_rows; i++)
        expected[i] = out[i];
    free(out);
    pst_model_destroy(&model);
    pst_dataset_destroy(&ds);
    pst_rowreader_destroy(&r);
    pst_modelfile_fini(&mf);
    return expected;
}

/* The file's columns as strings, last column first (id, target and note included: the library
 * ignores what the model does not take). */
static void columns_of(const cells_t *c, pstrain_column *cols)
{
    for (int j = 0; j < c->n_cols; j++)
        cols[c->n_cols - 1 - j] =
            (pstrain_column){c->names[j], NULL, (const char *const *)c->text[j]};
}

static int col_index(const cells_t *c, const char *name)
{
    for (int j = 0; j < c->n_cols; j++)
        if (strcmp(c->names[j], name) == 0)
            return c->n_cols - 1 - j;
    fail();
    return -1;
}

typedef struct worker {
    const pstrain_model *m;
    const pstrain_column *cols;
    int n_cols;
    size_t n_rows;
    const double *expected;
    int mismatches, failures;
} worker_t;

static void *predict_repeatedly(void *arg)
{
    worker_t *w = arg;
    double *got = malloc(sizeof(double) * 2 * w->n_rows);
    for (int r = 0; r < 20; r++) {
        pstrain_error err;
        if (pstrain_predict(w->m, w->cols, w->n_cols, w->n_rows, got, NULL, &err) != PSTRAIN_OK)
            w->failures++;
        else if (memcmp(got, w->expected, sizeof(double) * 2 * w->n_rows) != 0)
            w->mismatches++;
    }
    free(got);
    return NULL;
}

static void typed_inputs_predict_as_pstrain_predict(void **state)
{
    const char *path = save_customers_model();
    size_t n = 0;
    double *expected = reference(path, &n);
    cells_t *c = read_cells();
    assert_int_equal(n, c->n_rows);
    assert_int_equal(n, 400); /* 445 lines: quoted fields hold line ends */
    pstrain_model *m = NULL;
    pstrain_error err;
    assert_int_equal(pstrain_model_load(path, &m, &err), PSTRAIN_OK);
    /* The raw columns with their types, the text class labels. */
    const char *want[][2] = {{"signup_date", "3"},   {"plan", "1"},          {"region", "1"},
                             {"monthly_spend", "0"}, {"support_calls", "0"}, {"autopay", "2"}};
    assert_int_equal(pstrain_model_n_inputs(m), 6);
    for (int i = 0; i < 6; i++) {
        assert_string_equal(pstrain_model_input_name(m, i), want[i][0]);
        assert_int_equal(pstrain_model_input_type(m, i), atoi(want[i][1]));
    }
    assert_int_equal(pstrain_model_n_classes(m), 2);
    assert_string_equal(pstrain_model_class_name(m, 0), "no");
    assert_string_equal(pstrain_model_class_name(m, 1), "yes");
    pstrain_column cols[MAX_COLS];
    columns_of(c, cols);
    double *got = malloc(sizeof(double) * 2 * n);
    int *classes = malloc(sizeof(int) * n);
    assert_int_equal(pstrain_predict(m, cols, c->n_cols, n, got, classes, &err), PSTRAIN_OK);
    assert_memory_equal(got, expected, sizeof(double) * 2 * n);
    int yes = 0;
    for (size_t i = 0; i < n; i++)
        yes += classes[i];
    assert_true(yes > 0 && yes < (int)n); /* a model that tells rows apart */
    /* The same from several threads at once. */
    pthread_t threads[N_THREADS];
    worker_t workers[N_THREADS];
    for (int t = 0; t < N_THREADS; t++) {
        workers[t] = (worker_t){m, cols, c->n_cols, n, expected, 0, 0};
        assert_int_equal(pthread_create(&threads[t], NULL, predict_repeatedly, &workers[t]), 0);
    }
    for (int t = 0; t < N_THREADS; t++) {
        pthread_join(threads[t], NULL);
        assert_int_equal(workers[t].failures, 0);
        assert_int_equal(workers[t].mismatches, 0);
    }
    pstrain_model_free(m);
    free(classes);
    free(got);
    free(expected);
    free_cells(c);
}

/* Predictions for one row with plan set to each of values, into out (n_values, 2). */
static void plan_values(const pstrain_model *m, const cells_t *c, const char *const *values,
                        int n_values, double *out)
{
    pstrain_column cols[MAX_COLS];
    pstrain_error err;
    columns_of(c, cols);
    int plan = col_index(c, "plan");
    for (int v = 0; v < n_values; v++) {
        cols[plan].strings = &values[v];
        assert_int_equal(pstrain_predict(m, cols, c->n_cols, 1, out + 2 * v, NULL, &err),
                         PSTRAIN_OK);
    }
}

static void categories_booleans_and_numbers(void **state)
{
    const char *path = save_customers_model();
    cells_t *c = read_cells();
    pstrain_model *m = NULL;
    pstrain_error err;
    assert_int_equal(pstrain_model_load(path, &m, &err), PSTRAIN_OK);
    /* Unseen values share the "other" slot. A missing plan (NULL or "NA") is the category ""
     * of its own, which the training rows had (three customers without a plan), not "other". */
    const char *values[] = {"enterprise", "platinum", "basic", "premium", NULL, "NA"};
    double out[6][2];
    plan_values(m, c, values, 6, &out[0][0]);
    assert_memory_equal(out[0], out[1], sizeof out[0]);
    assert_memory_not_equal(out[0], out[2], sizeof out[0]);
    assert_memory_not_equal(out[2], out[3], sizeof out[0]);
    assert_memory_equal(out[4], out[5], sizeof out[0]);
    assert_memory_not_equal(out[4], out[0], sizeof out[0]);
    assert_memory_not_equal(out[4], out[2], sizeof out[0]);

    /* Booleans as numbers 1 and 0 equal "yes" and "no"; 2 is refused. Numbers for a category
     * are their shortest decimal text. */
    pstrain_column cols[MAX_COLS];
    columns_of(c, cols);
    int autopay = col_index(c, "autopay"), region = col_index(c, "region");
    const char *yes = "yes", *three = "3";
    double one = 1, two = 2, three_n = 3, by_text[2], by_number[2];
    cols[autopay].strings = &yes;
    assert_int_equal(pstrain_predict(m, cols, c->n_cols, 1, by_text, NULL, &err), PSTRAIN_OK);
    cols[autopay] = (pstrain_column){"autopay", &one, NULL};
    assert_int_equal(pstrain_predict(m, cols, c->n_cols, 1, by_number, NULL, &err), PSTRAIN_OK);
    assert_memory_equal(by_text, by_number, sizeof by_text);
    cols[autopay].numbers = &two;
    assert_int_equal(pstrain_predict(m, cols, c->n_cols, 1, by_number, NULL, &err), PSTRAIN_ETYPE);
    assert_string_equal(err.message,
                        "column 'autopay', row 0: boolean column given 2 (0 or 1 expected)");
    cols[autopay].numbers = &one;
    cols[region].strings = &three;
    assert_int_equal(pstrain_predict(m, cols, c->n_cols, 1, by_text, NULL, &err), PSTRAIN_OK);
    cols[region] = (pstrain_column){"region", &three_n, NULL};
    assert_int_equal(pstrain_predict(m, cols, c->n_cols, 1, by_number, NULL, &err), PSTRAIN_OK);
    assert_memory_equal(by_text, by_number, sizeof by_text);

    /* Text that is not of its column's type names the column and row. */
    columns_of(c, cols);
    char *saved = c->text[c->n_cols - 1 - col_index(c, "signup_date")][5];
    c->text[c->n_cols - 1 - col_index(c, "signup_date")][5] = (char *)"soon";
    double *big = malloc(sizeof(double) * 2 * c->n_rows);
    assert_int_equal(pstrain_predict(m, cols, c->n_cols, c->n_rows, big, NULL, &err),
                     PSTRAIN_ETYPE);
    assert_string_equal(err.message, "row 5: column 'signup_date': 'soon' is not a date");
    c->text[c->n_cols - 1 - col_index(c, "signup_date")][5] = saved;
    char **spend = c->text[c->n_cols - 1 - col_index(c, "monthly_spend")];
    saved = spend[9];
    spend[9] = (char *)"lots";
    assert_int_equal(pstrain_predict(m, cols, c->n_cols, c->n_rows, big, NULL, &err),
                     PSTRAIN_ETYPE);
    assert_string_equal(err.message,
                        "row 9: column 'monthly_spend': 'lots' is not a finite number");
    spend[9] = saved;
    /* A missing required column is named. */
    cols[autopay] = cols[c->n_cols - 1];
    assert_int_equal(pstrain_predict(m, cols, c->n_cols - 1, c->n_rows, big, NULL, &err),
                     PSTRAIN_EMISSING);
    assert_string_equal(err.message, "missing input column: 'autopay'");
    free(big);
    pstrain_model_free(m);
    free_cells(c);
}

/* An ensemble whose members encode the columns differently (numbers clipped at fitted Tukey
 * fences, or not clipped) is refused, naming the file and the members. */
static void ensemble_of_differing_encoders_is_refused(void **state)
{
    const char *paths[2] = {save_model_as("plain.pst", PST_OUTLIERS_NONE),
                            save_model_as("clipped.pst", PST_OUTLIERS_CLIP_IQR)};
    pst_modelfile_t members[2];
    pst_err_t e = {0};
    for (int k = 0; k < 2; k++)
        assert_int_equal(pst_modelfile_load(&members[k], paths[k], &e), PST_OK);
    pst_ensemble_t ens = {.method = PST_ENSEMBLE_BAGGING, .n_members = 2, .members = members};
    char path[256];
    assert_int_equal(pst_ensemble_save(&ens, pst_scratch_path(path, "mixed.pste"), &e), PST_OK);
    pstrain_model *m = (pstrain_model *)&m;
    pstrain_error err;
    assert_int_equal(pstrain_model_load(path, &m, &err), PSTRAIN_EUNSUPPORTED);
    assert_null(m);
    assert_non_null(strstr(err.message, "mixed.pste: members 1 and 2 of the ensemble encode"));
    /* The same member twice shares one encoding: loaded, inputs typed. */
    pst_modelfile_t same[2] = {members[0], members[0]};
    ens.members = same;
    assert_int_equal(pst_ensemble_save(&ens, path, &e), PST_OK);
    assert_int_equal(pstrain_model_load(path, &m, &err), PSTRAIN_OK);
    assert_int_equal(pstrain_model_input_type(m, 1), PSTRAIN_CATEGORICAL);
    pstrain_model_free(m);
    for (int k = 0; k < 2; k++)
        pst_modelfile_fini(&members[k]);
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(typed_inputs_predict_as_pstrain_predict),
        cmocka_unit_test(categories_booleans_and_numbers),
        cmocka_unit_test(ensemble_of_differing_encoders_is_refused),
    };
    return cmocka_run_group_tests(tests, pst_scratch_make, pst_scratch_remove);
}
