/* Tests for app/evalcurves: the curves report.json keeps for a binary and a three-class task (the
 * AUC bit for bit the metrics' roc_auc, the macro average, the reliability table of the right
 * probability), outputs that do not match the classes, and test_predictions.csv's rows and cap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/evalcurves.h"
#include "common/atomicfile.h"
#include "common/eval/metrics.h"
#include "scratch.h"

static double num(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(obj, key);
    assert_non_null(v);
    return v->valuedouble;
}

static void binary_curves_carry_the_reported_auc(void **state)
{
    (void)state;
    const float out[6] = {0.9f, 0.8f, 0.8f, 0.6f, 0.4f, 0.3f};
    const float y[6] = {1, 1, 0, 1, 0, 0};
    pst_class_metrics_t m;
    assert_int_equal(pst_class_metrics_from_outputs(&m, 2, 6, out, 1, y, NULL), PST_OK);
    cJSON *obj = cJSON_CreateObject();
    assert_int_equal(pst_evalcurves_add(obj, 2, 6, out, 1, y, NULL), PST_OK);
    const cJSON *curves = cJSON_GetObjectItem(obj, "curves");
    const cJSON *classes = cJSON_GetObjectItem(curves, "classes");
    assert_int_equal(cJSON_GetArraySize(classes), 1);
    const cJSON *c1 = cJSON_GetArrayItem(classes, 0);
    assert_true(num(c1, "class") == 1 && num(c1, "positives") == 3);
    assert_true(num(c1, "auc") == m.roc_auc); /* the very number report.json's roc_auc holds */
    assert_true(fabs(num(c1, "average_precision") - 29.0 / 36) < 1e-12);
    const cJSON *fpr = cJSON_GetObjectItem(cJSON_GetObjectItem(c1, "roc"), "fpr");
    assert_int_equal(cJSON_GetArraySize(fpr), 6);
    assert_int_equal(
        cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(c1, "pr"), "recall")), 6);
    assert_null(cJSON_GetObjectItem(curves, "macro"));
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(curves, "thinned")));
    const cJSON *cal = cJSON_GetObjectItem(curves, "calibration");
    assert_string_equal(cJSON_GetObjectItem(cal, "of")->valuestring, "p(class 1)");
    double brier = 0;
    for (int i = 0; i < 6; i++)
        brier += ((double)out[i] - y[i]) * ((double)out[i] - y[i]);
    assert_true(fabs(num(cal, "brier") - brier / 6) < 1e-12);
    const cJSON *count = cJSON_GetObjectItem(cal, "count");
    assert_int_equal(cJSON_GetArraySize(count), 10);
    assert_true(cJSON_GetArrayItem(count, 8)->valuedouble == 3); /* 0.9f, 0.8f, 0.8f */

    /* the same task as two softmax outputs gives the same curves */
    float out2[12];
    for (int i = 0; i < 6; i++)
        out2[2 * i] = 1 - out[i], out2[2 * i + 1] = out[i];
    cJSON *obj2 = cJSON_CreateObject();
    assert_int_equal(pst_evalcurves_add(obj2, 2, 6, out2, 2, y, NULL), PST_OK);
    const cJSON *c2 =
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(obj2, "curves"), "classes"), 0);
    assert_true(num(c2, "auc") == m.roc_auc);
    pst_class_metrics_fini(&m);
    cJSON_Delete(obj);
    cJSON_Delete(obj2);
}

static void three_classes_one_against_the_rest_and_macro(void **state)
{
    (void)state;
    /* rows of classes 0, 1, 2, 0, 1, 2 */
    const float out[18] = {0.7f, 0.2f, 0.1f, 0.2f, 0.6f, 0.2f, 0.1f, 0.3f, 0.6f,
                           0.3f, 0.4f, 0.3f, 0.5f, 0.3f, 0.2f, 0.2f, 0.2f, 0.6f};
    const float y[6] = {0, 1, 2, 0, 1, 2};
    cJSON *obj = cJSON_CreateObject();
    assert_int_equal(pst_evalcurves_add(obj, 3, 6, out, 3, y, NULL), PST_OK);
    const cJSON *curves = cJSON_GetObjectItem(obj, "curves");
    const cJSON *classes = cJSON_GetObjectItem(curves, "classes");
    assert_int_equal(cJSON_GetArraySize(classes), 3);
    double sum = 0;
    for (int c = 0; c < 3; c++) {
        float score[6], hit[6];
        for (int i = 0; i < 6; i++)
            score[i] = out[3 * i + c], hit[i] = y[i] == c;
        const cJSON *e = cJSON_GetArrayItem(classes, c);
        assert_true(num(e, "class") == c);
        assert_true(num(e, "auc") == pst_roc_auc(score, hit, 6));
        sum += num(e, "auc");
    }
    /* class 0: scores 0.7 0.3 (pos) against 0.2 0.1 0.5 0.2: 4 + 3 of 8 pairs */
    assert_true(fabs(num(cJSON_GetArrayItem(classes, 0), "auc") - 7.0 / 8) < 1e-12);
    const cJSON *macro = cJSON_GetObjectItem(curves, "macro");
    assert_true(fabs(num(macro, "auc") - sum / 3) < 1e-15);
    const cJSON *tpr = cJSON_GetObjectItem(cJSON_GetObjectItem(macro, "roc"), "tpr");
    assert_int_equal(cJSON_GetArraySize(tpr), PST_EVALCURVES_GRID);
    assert_true(cJSON_GetArrayItem(tpr, PST_EVALCURVES_GRID - 1)->valuedouble == 1);
    const cJSON *cal = cJSON_GetObjectItem(curves, "calibration");
    assert_string_equal(cJSON_GetObjectItem(cal, "of")->valuestring, "top-class probability");
    /* top classes 0 1 2 1 0 2: right on rows 0 1 2 5; confidences 0.7 0.6 0.6 0.4 0.5 0.6.
     * As float32, 0.6f and 0.4f lie just above the edges 0.6 and 0.4, 0.7f just below 0.7. */
    const cJSON *count = cJSON_GetObjectItem(cal, "count");
    assert_true(cJSON_GetArrayItem(count, 6)->valuedouble == 4);
    assert_true(cJSON_GetArrayItem(count, 4)->valuedouble == 2);
    const cJSON *observed = cJSON_GetObjectItem(cal, "observed");
    assert_true(cJSON_GetArrayItem(observed, 6)->valuedouble == 1);
    assert_true(cJSON_GetArrayItem(observed, 4)->valuedouble == 0);
    assert_true(cJSON_IsNull(cJSON_GetArrayItem(observed, 0)));
    cJSON_Delete(obj);
}

static void outputs_that_do_not_fit_add_nothing(void **state)
{
    (void)state;
    const float out[6] = {0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f};
    const float y[3] = {0, 1, 2};
    cJSON *obj = cJSON_CreateObject();
    assert_int_equal(pst_evalcurves_add(obj, 3, 3, out, 2, y, NULL), PST_OK);
    assert_int_equal(pst_evalcurves_add(obj, 1, 3, out, 1, y, NULL), PST_OK);
    assert_int_equal(pst_evalcurves_add(obj, 2, 0, out, 1, y, NULL), PST_OK);
    assert_null(cJSON_GetObjectItem(obj, "curves"));
    cJSON_Delete(obj);
}

static char *read_text(const char *path)
{
    unsigned char *text = NULL;
    size_t len;
    assert_int_equal(pst_read_file(path, 1 << 20, &text, &len, NULL), PST_OK);
    char *s = malloc(len + 1);
    memcpy(s, text, len);
    s[len] = '\0';
    free(text);
    return s;
}

static void predictions_file_is_capped(void **state)
{
    (void)state;
    const float out[6] = {0.25f, 0.75f, 0.1f, 0.9f, 1.0f / 3, 2.0f / 3};
    const float y[3] = {1, 1, 0};
    char path[256];
    pst_scratch_path(path, "pred.csv");
    assert_int_equal(pst_evalcurves_write_predictions(path, 3, out, 2, y, true, 2, NULL), PST_OK);
    char *s = read_text(path);
    assert_string_equal(s, "label,p0,p1\n1,0.25,0.75\n1,0.100000001,0.899999976\n");
    free(s);
    assert_int_equal(pst_evalcurves_write_predictions(path, 3, out, 1, y, false, 10, NULL), PST_OK);
    s = read_text(path);
    assert_string_equal(s, "target,prediction\n1,0.25\n1,0.75\n0,0.100000001\n");
    free(s);
    pst_scratch_path(path, "none.csv");
    assert_int_equal(pst_evalcurves_write_predictions(path, 3, out, 1, y, true, 0, NULL), PST_OK);
    FILE *f = fopen(path, "r");
    assert_null(f);
    pst_err_t err = {0};
    assert_int_not_equal(
        pst_evalcurves_write_predictions("/nonexistent/dir/p.csv", 3, out, 1, y, true, 5, &err),
        PST_OK);
    assert_non_null(strstr(err.msg, "/nonexistent/dir"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(binary_curves_carry_the_reported_auc),
        cmocka_unit_test(three_classes_one_against_the_rest_and_macro),
        cmocka_unit_test(outputs_that_do_not_fit_add_nothing),
        cmocka_unit_test(predictions_file_is_capped),
    };
    return cmocka_run_group_tests(tests, pst_scratch_make, pst_scratch_remove);
}
