/* Tests for common/data/rowreader: columns matched to an encoder's inputs by name (any order,
 * extra columns listed, every missing one named), labels by class name or value, the id column,
 * chunks, and errors with FILE:LINE. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/data/rowreader.h"
#include "common/log.h"
#include "scratch.h"

/* Inputs: size (numeric), color (one-hot: blue, red), member (boolean). */
static pst_encoder_t *make_encoder(void)
{
    pst_encoder_t *e = pst_encoder_new(3);
    e->inputs[0].name = strdup("size");
    e->inputs[1].name = strdup("color");
    e->inputs[1].type = PST_COL_CATEGORICAL;
    e->inputs[1].kind = PST_ENC_ONEHOT;
    e->inputs[1].vocab = calloc(2, sizeof(char *));
    e->inputs[1].vocab[0] = strdup("blue");
    e->inputs[1].vocab[1] = strdup("red");
    e->inputs[1].n_vocab = 2;
    e->inputs[2].name = strdup("member");
    e->inputs[2].type = PST_COL_BOOLEAN;
    pst_encoder_layout(e);
    return e;
}

static const char *class_names[] = {"no", "yes"};

static pst_rowreader_t *open_text(const char *text, const pst_encoder_t *e, bool need_target,
                                  const char *id, pst_err_t *err)
{
    pst_rowreader_opts_t o = {.encoder = e,
                              .target = "label",
                              .need_target = need_target,
                              .task = PST_TASK_CLASSIFICATION,
                              .n_classes = 2,
                              .class_names = class_names,
                              .id_column = id};
    return pst_rowreader_open(pst_scratch_file(".csv", text), &o, err);
}

static void matches_by_name(void **state)
{
    (void)state;
    pst_encoder_t *e = make_encoder();
    assert_int_equal(e->n_features, 5);
    pst_err_t err = {0};
    pst_rowreader_t *r = open_text("extra,member,label,color,id,size\n"
                                   "x,yes,no,red,a1,2.5\n"
                                   "y,no,yes,green,\"a,2\",\n"
                                   "z,n,yes,,a3,7\n",
                                   e, true, "id", &err);
    assert_non_null(r);
    assert_string_equal(pst_rowreader_ignored(r), "extra");
    assert_true(pst_rowreader_has_target(r));
    float x[2 * 5], y[2] = {-1, -1};
    char *ids[2] = {NULL, NULL};
    size_t n;
    assert_int_equal(pst_rowreader_next(r, 2, x, y, ids, &n, &err), PST_OK);
    assert_int_equal(n, 2);
    const float row0[5] = {2.5f, 0, 1, 0, 1};
    assert_memory_equal(x, row0, sizeof row0);
    assert_true(isnan(x[5]) && x[6] == 0 && x[7] == 0 && x[8] == 1 && x[9] == 0); /* green: other */
    assert_true(y[0] == 0 && y[1] == 1);
    assert_string_equal(ids[0], "a1");
    assert_string_equal(ids[1], "a,2");
    free(ids[0]);
    free(ids[1]);
    assert_int_equal(pst_rowreader_next(r, 2, x, y, NULL, &n, &err), PST_OK);
    assert_int_equal(n, 1);
    assert_true(x[0] == 7 && x[3] == 1 && x[4] == 0); /* missing color: other (not in vocab) */
    assert_int_equal(pst_rowreader_next(r, 2, x, y, NULL, &n, &err), PST_OK);
    assert_int_equal(n, 0);
    pst_rowreader_destroy(&r);
    assert_null(r);
    pst_encoder_destroy(&e);
}

static void unlabelled_and_missing(void **state)
{
    (void)state;
    pst_encoder_t *e = make_encoder();
    pst_err_t err = {0};
    pst_rowreader_t *r = open_text("color,size,member\nred,1,yes\n", e, false, NULL, &err);
    assert_non_null(r);
    assert_false(pst_rowreader_has_target(r));
    assert_null(pst_rowreader_ignored(r));
    pst_rowreader_destroy(&r);
    assert_null(open_text("color,size,member\nred,1,yes\n", e, true, NULL, &err));
    assert_non_null(strstr(err.msg, ":1: no target column 'label'"));
    assert_null(open_text("colour,label\nred,no\n", e, false, NULL, &err));
    assert_non_null(strstr(err.msg, ":1: 3 columns of the model are missing: size, color, member"));
    assert_null(open_text("size,color,member,size\n1,red,no,2\n", e, false, NULL, &err));
    assert_non_null(strstr(err.msg, "column 'size' appears twice"));
    assert_null(open_text("size,color,member\n1,red,no\n", e, false, "row_id", &err));
    assert_non_null(strstr(err.msg, "no id column 'row_id'"));
    pst_encoder_destroy(&e);
}

static void bad_rows(void **state)
{
    (void)state;
    pst_encoder_t *e = make_encoder();
    pst_err_t err = {0};
    float x[5], y[1];
    size_t n;
    const char *cases[][2] = {
        {"size,color,member,label\n1,red,no,maybe\n", ":2: label 'maybe' is not one of the 2"},
        {"size,color,member,label\n1,red,perhaps,no\n",
         ":2: column 'member': 'perhaps' is not a boolean"},
        {"size,color,member,label\nbig,red,no,no\n",
         ":2: column 'size': 'big' is not a finite number"},
        {"size,color,member,label\n1,red,no\n", ":2: ragged row: 3 fields, the header has 4"},
        {"size,color,member,label\n1,red,no,\n", ":2: column 'label': missing target value"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        pst_rowreader_t *r = open_text(cases[k][0], e, true, NULL, &err);
        assert_non_null(r);
        assert_true(pst_rowreader_next(r, 1, x, y, NULL, &n, &err) < 0);
        if (strstr(err.msg, cases[k][1]) == NULL)
            fail_msg("case %zu: '%s' lacks '%s'", k, err.msg, cases[k][1]);
        pst_rowreader_destroy(&r);
    }
    pst_encoder_destroy(&e);
}

int main(void)
{
    pst_log_set_level(PST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matches_by_name),
        cmocka_unit_test(unlabelled_and_missing),
        cmocka_unit_test(bad_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
