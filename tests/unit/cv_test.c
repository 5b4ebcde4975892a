/* Tests for app/plan/cv: a whole cross-validation run in this process on iris, and its errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <cjson/cJSON.h>

#include "app/plan/cv.h"
#include "common/atomicfile.h"
#include "scratch.h"

static const char *iris_config = "name: cv-iris\n"
                                 "seed: 3\n"
                                 "data:\n"
                                 "  target: target\n"
                                 "  task: classification\n"
                                 "  scaler: standard\n"
                                 "model:\n"
                                 "  hidden: []\n"
                                 "optimizer:\n"
                                 "  name: adam\n"
                                 "  lr: 0.05\n"
                                 "train:\n"
                                 "  epochs: 8\n"
                                 "  batch_size: 16\n";

/* Removes dir and everything under it. */
static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    for (struct dirent *e = d ? readdir(d) : NULL; e; e = readdir(d)) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) != 0)
            remove_tree(path);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

static char *read_text(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unsigned char *data = NULL;
    size_t len = 0;
    pst_err_t err = {0};
    assert_int_equal(pst_read_file(path, 1 << 24, &data, &len, &err), PST_OK);
    char *text = realloc(data, len + 1);
    assert_non_null(text);
    text[len] = '\0';
    return text;
}

static double summary_mean(const cJSON *cv, const char *metric)
{
    const cJSON *m = cJSON_GetObjectItem(cv, metric);
    assert_non_null(m);
    const cJSON *mean = cJSON_GetObjectItem(m, "mean");
    assert_true(cJSON_IsNumber(mean));
    return mean->valuedouble;
}

/* Three stratified folds of iris: report.json summarises three folds with a logistic
 * regression's accuracy, and every row has exactly one out-of-fold prediction. */
static void cross_validates_iris_in_process(void **state)
{
    char out[256];
    pst_scratch_path(out, "cv-iris");
    pst_cv_opts_t o = {.plan = {.config = pst_scratch_file(".yaml", iris_config),
                                .sets = {"data.train=" PST_TEST_DATA "/iris.csv"},
                                .n_sets = 1,
                                .out = out,
                                .quiet = true},
                       .folds = 3,
                       .repeats = 1,
                       .stratified = true};
    assert_int_equal(pst_cv_run(&o), 0);

    char *text = read_text(out, "report.json");
    cJSON *report = cJSON_Parse(text);
    assert_non_null(report);
    const cJSON *cv = cJSON_GetObjectItem(report, "cv");
    assert_non_null(cv);
    assert_int_equal(cJSON_GetObjectItem(cv, "folds")->valueint, 3);
    assert_int_equal(cJSON_GetObjectItem(cv, "repeats")->valueint, 1);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cv, "stratified")));
    assert_true(summary_mean(cv, "accuracy") > 0.8);
    assert_int_equal(
        cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(cv, "accuracy"), "values")), 3);
    cJSON_Delete(report);
    free(text);

    text = read_text(out, "oof_predictions.csv");
    int seen[150] = {0}, lines = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"), lines++)
        if (lines > 0) {
            int row = atoi(line);
            assert_true(row >= 0 && row < 150);
            seen[row]++;
        }
    assert_int_equal(lines, 151);
    for (int i = 0; i < 150; i++)
        assert_int_equal(seen[i], 1);
    free(text);
    remove_tree(out);
}

static void missing_config_fails(void **state)
{
    char out[256];
    pst_cv_opts_t o = {.plan = {.config = pst_scratch_path(out, "no-such.yaml"), .quiet = true},
                       .folds = 3,
                       .repeats = 1};
    assert_int_equal(pst_cv_run(&o), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cross_validates_iris_in_process),
        cmocka_unit_test(missing_config_fails),
    };
    return cmocka_run_group_tests(tests, pst_scratch_make, pst_scratch_remove);
}
