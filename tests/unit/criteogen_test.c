/* Tests for common/criteogen: same bytes for the same configuration, the TSV layout the hashed
 * reader expects, truth figures that reflect the interactions, bad configurations refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/gen/criteogen.h"
#include "common/data/dataset.h"
#include "common/data/hashing.h"
#include "scratch.h"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(*len + 1);
    assert_int_equal(fread(buf, 1, *len, f), *len);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static void small_config(pst_criteogen_t *c)
{
    pst_criteogen_defaults(c);
    c->rows = 3000;
    c->n_numeric = 3;
    c->n_categorical = 5;
    c->vocab = 50;
    c->seed = 4;
}

static void same_config_same_bytes(void **state)
{
    pst_criteogen_t c;
    small_config(&c);
    char a[256], b[256], t[256];
    pst_err_t err;
    pst_criteogen_truth_t truth;
    assert_int_equal(pst_criteogen_write(&c, pst_scratch_path(a, "a.tsv"),
                                         pst_scratch_path(t, "a.json"), &truth, &err),
                     PST_OK);
    assert_int_equal(pst_criteogen_write(&c, pst_scratch_path(b, "b.tsv"), NULL, NULL, &err),
                     PST_OK);
    size_t la, lb;
    char *x = slurp(a, &la), *y = slurp(b, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(x, y, la);
    c.seed = 5;
    assert_int_equal(pst_criteogen_write(&c, b, NULL, NULL, &err), PST_OK);
    free(y);
    y = slurp(b, &lb);
    assert_true(la != lb || memcmp(x, y, la) != 0);
    size_t lt;
    char *json = slurp(t, &lt);
    assert_non_null(strstr(json, "\"bayes_auc\""));
    assert_non_null(strstr(json, "\"main_effects_auc\""));
    free(x);
    free(y);
    free(json);
}

/* Every line has 1 + 3 + 5 columns, and the hashed reader takes the file whole. */
static void lines_read_as_hashed_tsv(void **state)
{
    pst_criteogen_t c;
    small_config(&c);
    char path[256];
    pst_err_t err;
    pst_criteogen_truth_t truth;
    assert_int_equal(pst_criteogen_write(&c, pst_scratch_path(path, "c.tsv"), NULL, &truth, &err),
                     PST_OK);
    size_t len, lines = 0, tabs = 0;
    char *text = slurp(path, &len);
    for (size_t i = 0; i < len; i++) {
        tabs += text[i] == '\t';
        if (text[i] == '\n') {
            assert_int_equal(tabs, 8);
            tabs = 0;
            lines++;
        }
    }
    assert_int_equal(lines, 3000);
    free(text);
    pst_dataset_t *d = NULL;
    assert_int_equal(pst_tsv_hashed_read(path, 3, 5, 16, 1, PST_NUMERIC_LOG, &d, &err), PST_OK);
    assert_int_equal(d->n_rows, 3000);
    double clicks = 0;
    for (size_t i = 0; i < d->n_rows; i++)
        clicks += d->y[i];
    assert_int_equal((uint64_t)clicks, truth.positives);
    assert_true(fabs(truth.click_rate - 0.25) < 0.04);
    pst_dataset_destroy(&d);
}

/* The interactions carry information the main effects lack; without them the two AUCs agree. */
static void truth_reflects_interactions(void **state)
{
    pst_criteogen_t c;
    small_config(&c);
    c.rows = 20000;
    c.interaction = 1.5;
    char path[256];
    pst_err_t err;
    pst_criteogen_truth_t with, without;
    pst_scratch_path(path, "d.tsv");
    assert_int_equal(pst_criteogen_write(&c, path, NULL, &with, &err), PST_OK);
    c.interaction = 0;
    assert_int_equal(pst_criteogen_write(&c, path, NULL, &without, &err), PST_OK);
    if (!(with.bayes_auc > with.main_effects_auc + 0.03))
        fail_msg("Bayes AUC %.4f, main effects %.4f", with.bayes_auc, with.main_effects_auc);
    assert_float_equal(without.bayes_auc, without.main_effects_auc, 1e-9);
    assert_true(with.bayes_log_loss > 0 && with.bayes_log_loss < log(2.0));
}

static void bad_configs_are_refused(void **state)
{
    pst_criteogen_t c;
    small_config(&c);
    pst_err_t err;
    assert_int_equal(pst_criteogen_check(&c, &err), PST_OK);
    c.n_categorical = 0;
    assert_int_equal(pst_criteogen_check(&c, &err), PST_EINVAL);
    small_config(&c);
    c.vocab = 1;
    assert_int_equal(pst_criteogen_check(&c, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "vocabulary"));
    small_config(&c);
    c.click_rate = 1;
    assert_int_equal(pst_criteogen_check(&c, &err), PST_EINVAL);
    small_config(&c);
    c.missing = NAN;
    assert_int_equal(pst_criteogen_check(&c, &err), PST_EINVAL);
    small_config(&c);
    c.rows = 0;
    char path[256];
    assert_int_equal(pst_criteogen_write(&c, pst_scratch_path(path, "e.tsv"), NULL, NULL, &err),
                     PST_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(same_config_same_bytes, pst_scratch_remove),
        cmocka_unit_test_teardown(lines_read_as_hashed_tsv, pst_scratch_remove),
        cmocka_unit_test_teardown(truth_reflects_interactions, pst_scratch_remove),
        cmocka_unit_test(bad_configs_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
