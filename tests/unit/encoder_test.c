/* Tests for common/data/encoder (and the typed CSV columns it reads): type detection, dates,
 * fitting on training rows only (a category seen only in other rows goes to "other"), one-hot,
 * hash and ordinal codes, outlier bounds, text cells encoded exactly as the raw table, and the
 * model-file round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/data/csv.h"
#include "common/data/encoder.h"
#include "common/data/encoder_proto.h"
#include "common/data/table.h"
#include "common/log.h"
#include "scratch.h"

static pst_dataset_t *read_csv(const char *text, const pst_table_opts_t *opts)
{
    pst_data_spec_t spec = {.path = pst_scratch_file(".csv", text), .target = "y", .table = opts};
    pst_dataset_t *d = NULL;
    pst_err_t err = {0};
    if (pst_csv_read(&spec, &d, &err) != PST_OK)
        fail_msg("%s", err.msg);
    return d;
}

static const char *shop = "when,color,size,member,price,y\n"
                          "2024-02-29,red,S,yes,10.5,0\n"
                          "2024/03/01,blue,M,no,12,1\n"
                          "2023-12-31T23:59:00,red,L,true,,0\n"
                          "2024-01-01 08:00,,M,n,9,1\n"
                          "2024-01-02,green,S,Y,11,0\n"
                          "2024-01-03,purple,XL,no,1000,1\n";

static void detects_types(void **state)
{
    (void)state;
    pst_dataset_t *d = read_csv(shop, NULL);
    assert_non_null(d->table);
    assert_int_equal(d->table->n_cols, 5);
    pst_col_type_t want[] = {PST_COL_DATE, PST_COL_CATEGORICAL, PST_COL_CATEGORICAL,
                             PST_COL_BOOLEAN, PST_COL_NUMERIC};
    for (int j = 0; j < 5; j++)
        assert_int_equal(d->table->cols[j].type, want[j]);
    /* categories: codes in first-appearance order, missing as "" */
    const pst_table_col_t *color = &d->table->cols[1];
    assert_int_equal(color->n_vocab, 5);
    assert_string_equal(color->vocab[0], "red");
    assert_string_equal(color->vocab[2], "");
    assert_true(d->x[3 * 5 + 1] == 2.0f);
    assert_true(d->x[0 * 5 + 3] == 1.0f && d->x[3 * 5 + 3] == 0.0f); /* yes, n */
    assert_true(isnan(d->x[2 * 5 + 4]));
    pst_dataset_destroy(&d);
}

static void overrides_and_selection(void **state)
{
    (void)state;
    const char *cat[] = {"price", 0}, *drop[] = {"size"};
    pst_table_opts_t o = {
        .categorical = cat, .n_categorical = 1, .drop = drop, .n_drop = 1, .drop_dates = true};
    pst_dataset_t *d = read_csv(shop, &o);
    assert_int_equal(d->n_features, 3);
    assert_string_equal(d->feature_names[0], "color");
    assert_string_equal(d->feature_names[2], "price");
    assert_int_equal(d->table->cols[2].type, PST_COL_CATEGORICAL);
    pst_dataset_destroy(&d);

    const char *feats[] = {"member", "nope"};
    pst_table_opts_t bad = {.features = feats, .n_features = 2};
    pst_data_spec_t spec = {.path = pst_scratch_file(".csv", shop), .target = "y", .table = &bad};
    pst_err_t err = {0};
    assert_int_equal(pst_csv_read(&spec, &d, &err), PST_ENOTFOUND);
    assert_non_null(strstr(err.msg, "data.features column 'nope' not found"));
    assert_int_equal(
        pst_csv_read(
            &(pst_data_spec_t){.path = pst_scratch_file(".csv", "a,a,y\n1,2,0\n"), .target = "y"},
            &d, &err),
        PST_EFORMAT);
    assert_non_null(strstr(err.msg, "column 'a' appears 2 times"));
}

static void dates_expand(void **state)
{
    (void)state;
    long days;
    float f[PST_DATE_PARTS];
    assert_true(pst_cell_date("2024-02-29", 10, &days));
    pst_date_expand((double)days, f);
    /* 2024-02-29 was a Thursday, day 60 of the year */
    assert_true(f[0] == 2024 && f[1] == 2 && f[2] == 3 && f[3] == 60);
    assert_true(pst_cell_date("1970/01/01", 10, &days) && days == 0);
    pst_date_expand(0, f);
    assert_true(f[2] == 3 && f[3] == 1);
    assert_true(pst_cell_date("2023-12-31T23:59:00Z", 20, &days));
    pst_date_expand((double)days, f);
    assert_true(f[0] == 2023 && f[1] == 12 && f[2] == 6 && f[3] == 365);
    assert_false(pst_cell_date("2023-02-29", 10, &days));
    assert_false(pst_cell_date("2023-13-01", 10, &days));
    assert_false(pst_cell_date("2023-1-01", 9, &days));
    assert_false(pst_cell_date("2023-01-01x", 11, &days));
    /* a day count no long can hold (a number given for a date column) expands as missing */
    const double huge[] = {-3.55556e20, 1e300, INFINITY, -1.0000001e8};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        pst_date_expand(huge[i], f);
        assert_true(isnan(f[0]) && isnan(f[1]) && isnan(f[2]) && isnan(f[3]));
    }
    pst_date_expand(-1e8, f); /* the bound itself is a date, year -271,821 or so */
    assert_true(f[0] < -270000 && f[1] >= 1 && f[1] <= 12);
}

static pst_encoder_t *fit(const pst_dataset_t *d, const size_t *rows, size_t n, size_t max_cat,
                          pst_enc_kind_t beyond, pst_outliers_t outliers)
{
    pst_encoder_opts_t o = {
        .max_categories = max_cat, .beyond = beyond, .hash_slots = 8, .outliers = outliers};
    pst_encoder_t *e = NULL;
    pst_err_t err = {0};
    if (pst_encoder_fit(d, rows, n, &o, &e, &err) != PST_OK)
        fail_msg("%s", err.msg);
    return e;
}

static long feature(const pst_encoder_t *e, const char *name)
{
    char buf[128];
    for (size_t f = 0; f < e->n_features; f++) {
        pst_encoder_feature_name(e, f, buf, sizeof buf);
        if (strcmp(buf, name) == 0)
            return (long)f;
    }
    return -1;
}

/* Fitted on rows 0..3 only: green and purple (rows 4, 5) are unseen and go to "other". */
static void fits_on_training_rows_only(void **state)
{
    (void)state;
    pst_dataset_t *d = read_csv(shop, NULL);
    size_t train[] = {0, 1, 2, 3};
    pst_encoder_t *e = fit(d, train, 4, 32, PST_ENC_ONEHOT, PST_OUTLIERS_NONE);
    const pst_enc_input_t *color = &e->inputs[1];
    assert_int_equal(color->kind, PST_ENC_ONEHOT);
    assert_int_equal(color->n_vocab, 3); /* "", blue, red: sorted */
    assert_string_equal(color->vocab[0], "");
    assert_string_equal(color->vocab[1], "blue");
    assert_int_equal(e->n_features, 4 + 4 + 4 + 1 + 1); /* date 4, color 3+1, size 3+1, ... */
    assert_true(feature(e, "color=<other>") >= 0 && feature(e, "color=<missing>") >= 0);
    assert_int_equal(feature(e, "color=green"), -1);
    pst_dataset_t *x = NULL;
    pst_err_t err = {0};
    assert_int_equal(pst_encoder_apply(e, d, &x, &err), PST_OK);
    long other = feature(e, "color=<other>"), red = feature(e, "color=red");
    size_t w = e->n_features;
    assert_true(x->x[4 * w + other] == 1.0f && x->x[5 * w + other] == 1.0f);
    assert_true(x->x[0 * w + red] == 1.0f && x->x[0 * w + other] == 0.0f);
    assert_true(x->x[3 * w + feature(e, "color=<missing>")] == 1.0f);
    assert_true(x->x[0 * w + feature(e, "when_doy")] == 60.0f);
    assert_true(x->x[0 * w + feature(e, "member")] == 1.0f);
    assert_string_equal(x->feature_names[red], "color=red");
    assert_null(x->table);

    /* text cells as predict reads them encode to the same features */
    const pst_enc_cell_t row[5] = {
        {"2024-01-03", 0}, {"purple", 0}, {"XL", 0}, {"no", 0}, {"1000", 0}};
    float *f = calloc(w, sizeof *f);
    assert_int_equal(pst_encoder_encode(e, row, 1, f, &err), PST_OK);
    assert_memory_equal(f, x->x + 5 * w, w * sizeof *f);
    const pst_enc_cell_t bad[5] = {{"2024-01-03", 0}, {"red", 0}, {"S", 0}, {"maybe", 0}, {"1", 0}};
    assert_int_equal(pst_encoder_encode(e, bad, 1, f, &err), PST_EFORMAT);
    assert_non_null(strstr(err.msg, "column 'member': 'maybe' is not a boolean"));
    free(f);
    pst_dataset_destroy(&x);
    pst_encoder_destroy(&e);
    pst_dataset_destroy(&d);
}

static void high_cardinality(void **state)
{
    (void)state;
    pst_dataset_t *d = read_csv(shop, NULL);
    /* top: the 2 most frequent colors (red 2x, then "" < blue by text among the 1x) */
    pst_encoder_t *e = fit(d, NULL, 6, 2, PST_ENC_ONEHOT, PST_OUTLIERS_NONE);
    assert_int_equal(e->inputs[1].n_vocab, 2);
    assert_string_equal(e->inputs[1].vocab[0], "");
    assert_string_equal(e->inputs[1].vocab[1], "red");
    pst_encoder_destroy(&e);
    e = fit(d, NULL, 2, 2, PST_ENC_ORDINAL, PST_OUTLIERS_NONE);
    assert_int_equal(e->inputs[1].kind, PST_ENC_ONEHOT); /* 2 training rows: 2 values */
    pst_encoder_destroy(&e);
    e = fit(d, NULL, 6, 2, PST_ENC_ORDINAL, PST_OUTLIERS_NONE);
    pst_enc_cell_t cells[5] = {{"2024-01-01", 0}, {"purple", 0}, {"S", 0}, {"no", 0}, {"1", 0}};
    float f[32];
    assert_int_equal(pst_encoder_encode(e, cells, 1, f, NULL), PST_OK);
    /* sorted: "", blue, green, purple, red -> purple is 4; unseen -> 0 */
    assert_true(f[e->inputs[1].offset] == 4.0f);
    cells[1].text = "teal";
    assert_int_equal(pst_encoder_encode(e, cells, 1, f, NULL), PST_OK);
    assert_true(f[e->inputs[1].offset] == 0.0f);
    pst_encoder_destroy(&e);
    e = fit(d, NULL, 6, 2, PST_ENC_HASH, PST_OUTLIERS_NONE);
    assert_int_equal(e->inputs[1].width, 8);
    assert_int_equal(pst_encoder_encode(e, cells, 1, f, NULL), PST_OK);
    size_t slot = pst_encoder_hash_slot(e, &e->inputs[1], "teal", 4);
    for (size_t k = 0; k < 8; k++)
        assert_true(f[e->inputs[1].offset + k] == (k == slot ? 1.0f : 0.0f));
    pst_encoder_destroy(&e);
    pst_dataset_destroy(&d);
}

static void outlier_bounds(void **state)
{
    (void)state;
    pst_dataset_t *d = read_csv(shop, NULL);
    /* prices 10.5, 12, 9, 11, 1000 (one missing): quartiles 10.5 and 12 (numpy linear) */
    pst_encoder_t *e = fit(d, NULL, 6, 32, PST_ENC_ONEHOT, PST_OUTLIERS_CLIP_IQR);
    const pst_enc_input_t *price = &e->inputs[4];
    assert_true(price->clip_lo == (float)(10.5 - 1.5 * 1.5));
    assert_true(price->clip_hi == (float)(12 + 1.5 * 1.5));
    pst_enc_cell_t cells[5] = {{"2024-01-01", 0}, {"red", 0}, {"S", 0}, {"no", 0}, {"1000", 0}};
    float f[32];
    assert_int_equal(pst_encoder_encode(e, cells, 1, f, NULL), PST_OK);
    assert_true(f[price->offset] == price->clip_hi);
    pst_encoder_destroy(&e);
    e = fit(d, NULL, 6, 32, PST_ENC_ONEHOT, PST_OUTLIERS_CLIP_ZSCORE);
    double mean = (10.5 + 12 + 9 + 11 + 1000) / 5, var = 0;
    double v[] = {10.5, 12, 9, 11, 1000};
    for (int i = 0; i < 5; i++)
        var += (v[i] - mean) * (v[i] - mean) / 5;
    assert_true(e->inputs[4].clip_hi == (float)(mean + 3 * sqrt(var)));
    pst_encoder_destroy(&e);
    pst_dataset_destroy(&d);
}

static void proto_round_trip(void **state)
{
    (void)state;
    pst_dataset_t *d = read_csv(shop, NULL);
    pst_encoder_t *e = fit(d, NULL, 6, 2, PST_ENC_HASH, PST_OUTLIERS_CLIP_IQR);
    Pst__Encoder msg = PST__ENCODER__INIT;
    assert_int_equal(pst_encoder_to_proto(e, &msg, NULL), PST_OK);
    size_t len = pst__encoder__get_packed_size(&msg);
    uint8_t *buf = malloc(len);
    pst__encoder__pack(&msg, buf);
    pst_encoder_proto_free(&msg);
    Pst__Encoder *back = pst__encoder__unpack(NULL, len, buf);
    pst_encoder_t *e2 = NULL;
    assert_int_equal(pst_encoder_from_proto(back, "m.pst", &e2, NULL), PST_OK);
    assert_int_equal(e2->n_features, e->n_features);
    for (size_t j = 0; j < e->n_inputs; j++) {
        assert_string_equal(e2->inputs[j].name, e->inputs[j].name);
        assert_int_equal(e2->inputs[j].kind, e->inputs[j].kind);
        assert_int_equal(e2->inputs[j].n_vocab, e->inputs[j].n_vocab);
        assert_true(e2->inputs[j].clip_hi == e->inputs[j].clip_hi);
    }
    /* a corrupted file is refused, naming it */
    back->n_features++;
    pst_err_t err = {0};
    pst_encoder_t *e3 = NULL;
    assert_int_equal(pst_encoder_from_proto(back, "m.pst", &e3, &err), PST_EFORMAT);
    assert_non_null(strstr(err.msg, "m.pst: encoder inputs make"));
    pst__encoder__free_unpacked(back, NULL);
    free(buf);
    pst_encoder_destroy(&e2);
    pst_encoder_destroy(&e);
    pst_dataset_destroy(&d);
}

static void text_labels_and_training_checks(void **state)
{
    (void)state;
    pst_dataset_t *d = read_csv("a,y\n1,yes\n2,no\n3,yes\n", NULL);
    assert_int_equal(d->n_classes, 2);
    assert_string_equal(d->class_names[0], "no");
    assert_string_equal(d->class_names[1], "yes");
    assert_true(d->y[0] == 1 && d->y[1] == 0);
    pst_dataset_destroy(&d);
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(detects_types),    cmocka_unit_test(overrides_and_selection),
        cmocka_unit_test(dates_expand),     cmocka_unit_test(fits_on_training_rows_only),
        cmocka_unit_test(high_cardinality), cmocka_unit_test(outlier_bounds),
        cmocka_unit_test(proto_round_trip), cmocka_unit_test(text_labels_and_training_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
