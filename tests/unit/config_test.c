/* Tests for common/config: defaults, YAML nesting, overrides, unknown keys and bad values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "common/config.h"

static void defaults_are_documented_values(void **state)
{
    pst_config_t cfg;
    assert_int_equal(pst_config_init(&cfg), PST_OK);
    assert_string_equal(cfg.optimizer.name, "adam");
    assert_true(cfg.optimizer.lr == 0.001);
    assert_int_equal(cfg.train.epochs, 10);
    assert_int_equal(cfg.train.batch_size, 64);
    assert_true(cfg.data.stratify);
    assert_string_equal(cfg.data.test, "");
    assert_int_equal(cfg.model.hidden.n, 0);
    for (const pst_config_key_t *k = pst_config_keys(); k->key; k++)
        assert_true(k->help && strlen(k->help) > 5);
    pst_config_fini(&cfg);
}

static void nested_yaml_and_lists(void **state)
{
    pst_config_t cfg;
    pst_err_t err;
    pst_config_init(&cfg);
    const char *yaml = "name: fm\n"
                       "data:\n  train: a.csv\n  target: label\n"
                       "model:\n  hidden: [256, 128]\n  layers: []\n"
                       "optimizer: {name: sgd, lr: 0.5}\n"
                       "train.epochs: 3\n";
    assert_int_equal(pst_config_load_string(&cfg, yaml, "t.yaml", &err), PST_OK);
    assert_string_equal(cfg.name, "fm");
    assert_string_equal(cfg.data.train, "a.csv");
    assert_int_equal(cfg.model.hidden.n, 2);
    assert_int_equal(cfg.model.hidden.items[1], 128);
    assert_string_equal(cfg.optimizer.name, "sgd");
    assert_true(cfg.optimizer.lr == 0.5);
    assert_int_equal(cfg.train.epochs, 3);
    pst_config_fini(&cfg);
}

static void unknown_key_is_named_with_line(void **state)
{
    pst_config_t cfg;
    pst_err_t err;
    pst_config_init(&cfg);
    int rc = pst_config_load_string(&cfg, "train:\n  epochs: 3\n  epoks: 4\n", "c.yaml", &err);
    assert_int_equal(rc, PST_EINVAL);
    assert_non_null(strstr(err.msg, "train.epoks"));
    assert_non_null(strstr(err.msg, "c.yaml:3"));
    pst_config_fini(&cfg);
}

static void bad_values_are_errors(void **state)
{
    pst_config_t cfg;
    pst_err_t err;
    pst_config_init(&cfg);
    assert_int_equal(pst_config_set(&cfg, "train.epochs=ten", &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "train.epochs"));
    assert_int_equal(pst_config_set(&cfg, "train.epochs=2.5", &err), PST_EINVAL);
    assert_int_equal(pst_config_set(&cfg, "train.epochs=0", &err), PST_EINVAL);
    assert_int_equal(pst_config_set(&cfg, "optimizer.name=adamax", &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "adamw"));
    assert_int_equal(pst_config_set(&cfg, "optimizer.lr=nan", &err), PST_EINVAL);
    assert_int_equal(pst_config_load_string(&cfg, "optimizer:\n  lr: '  '\n", "blank.yaml", &err),
                     PST_EINVAL); /* a blank number is no number, not 0 */
    assert_non_null(strstr(err.msg, "is not a number"));
    assert_int_equal(pst_config_set(&cfg, "data.stratify=maybe", &err), PST_EINVAL);
    assert_int_equal(pst_config_set(&cfg, "nosuch.key=1", &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "nosuch.key"));
    assert_int_equal(pst_config_set(&cfg, "novalue", &err), PST_EINVAL);
    assert_int_equal(pst_config_load_string(&cfg, "train: [1, 2\n", "broken.yaml", &err),
                     PST_EFORMAT);
    assert_non_null(strstr(err.msg, "broken.yaml"));
    /* Nothing above changed the defaults. */
    assert_int_equal(cfg.train.epochs, 10);
    assert_string_equal(cfg.optimizer.name, "adam");
    pst_config_fini(&cfg);
}

static void overrides_and_round_trip(void **state)
{
    pst_config_t cfg, back;
    pst_err_t err;
    pst_config_init(&cfg);
    assert_int_equal(pst_config_set(&cfg, "model.hidden=[32, 16]", &err), PST_OK);
    assert_int_equal(pst_config_set(&cfg, "data.train=/tmp/with space: colon.csv", &err),
                     PST_EFORMAT);
    assert_int_equal(pst_config_set(&cfg, "data.train=\"/tmp/with space: colon.csv\"", &err),
                     PST_OK);
    assert_int_equal(pst_config_set(&cfg, "model.layers=[dense:8, relu]", &err), PST_OK);
    assert_int_equal(pst_config_set(&cfg, "optimizer.lr=3e-4", &err), PST_OK);
    char *text = pst_config_to_string(&cfg);
    assert_non_null(text);
    pst_config_init(&back);
    assert_int_equal(pst_config_load_string(&back, text, "dump", &err), PST_OK);
    assert_string_equal(back.data.train, "/tmp/with space: colon.csv");
    assert_int_equal(back.model.hidden.n, 2);
    assert_int_equal(back.model.hidden.items[0], 32);
    assert_string_equal(back.model.layers.items[0], "dense:8");
    assert_true(back.optimizer.lr == 3e-4);
    free(text);
    pst_config_fini(&back);
    pst_config_fini(&cfg);
}

/* Strings YAML would fold, trim or read as structure dump to text that loads back byte for byte
 * (the fuzz target config found carriage returns folded on the way back). */
static void awkward_strings_round_trip(void **state)
{
    static const char *const values[] = {
        "a\r\rb",      "line\nbreak",  "tab\there",
        "\x01ctl\x7f", "nel\xc2\x85x", "ls\xe2\x80\xa8ps\xe2\x80\xa9",
        "trailing ",   "- item",       "? key",
        "caf\xc3\xa9", "c1\xc2\x87x",  "bom\xef\xbb\xbfx\xef\xbf\xbe"};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        pst_config_t cfg, back;
        pst_err_t err;
        pst_config_init(&cfg);
        free(cfg.data.train);
        cfg.data.train = strdup(values[i]);
        char *text = pst_config_to_string(&cfg);
        assert_non_null(text);
        pst_config_init(&back);
        assert_int_equal(pst_config_load_string(&back, text, "dump", &err), PST_OK);
        assert_string_equal(back.data.train, values[i]);
        free(text);
        pst_config_fini(&back);
        pst_config_fini(&cfg);
    }
}

static void validation_checks_fractions(void **state)
{
    pst_config_t cfg;
    pst_err_t err;
    pst_config_init(&cfg);
    assert_int_equal(pst_config_validate(&cfg, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "data.train"));
    pst_config_set(&cfg, "data.train=x.csv", &err);
    assert_int_equal(pst_config_validate(&cfg, &err), PST_OK);
    pst_config_set(&cfg, "data.val_fraction=0.5", &err);
    assert_int_equal(pst_config_validate(&cfg, &err), PST_EINVAL);
    pst_config_set(&cfg, "data.test=y.csv", &err);
    assert_int_equal(pst_config_validate(&cfg, &err), PST_OK);
    pst_config_fini(&cfg);
}

static void repeated_keys_are_errors(void **state)
{
    (void)state;
    pst_config_t cfg;
    pst_config_init(&cfg);
    pst_err_t err = {0};
    assert_int_equal(pst_config_load_string(&cfg, "seed: 1\nname: a\nseed: 2\n", "c.yaml", &err),
                     PST_EINVAL);
    assert_string_equal(err.msg, "c.yaml:3: key 'seed' is repeated");
    /* A section given twice, even with different keys in each. */
    assert_int_equal(
        pst_config_load_string(&cfg, "data: {train: a.csv}\ndata: {test: b.csv}\n", "c.yaml", &err),
        PST_EINVAL);
    assert_string_equal(err.msg, "c.yaml:2: key 'data' is repeated");
    assert_int_equal(
        pst_config_load_string(&cfg, "train:\n  epochs: 3\n  epochs: 4\n", "c.yaml", &err),
        PST_EINVAL);
    assert_string_equal(err.msg, "c.yaml:3: key 'train.epochs' is repeated");
    pst_config_fini(&cfg);
}

/* Deep nesting is refused at the limit, quickly: 100k '[' take milliseconds, not seconds. */
static void deep_nesting_and_aliases_are_refused(void **state)
{
    (void)state;
    pst_config_t cfg;
    pst_config_init(&cfg);
    pst_err_t err = {0};
    enum { DEEP = 100000 };
    char *text = malloc(DEEP + 16);
    memcpy(text, "seed: ", 6);
    memset(text + 6, '[', DEEP);
    text[6 + DEEP] = '\0';
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(pst_config_load_string(&cfg, text, "deep.yaml", &err), PST_EFORMAT);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_string_equal(err.msg, "deep.yaml:1: nested deeper than 16 levels");
    assert_true((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < 1000);
    free(text);
    assert_int_equal(pst_config_load_string(&cfg, "name: &n x\noutput_dir: *n\n", "a.yaml", &err),
                     PST_EFORMAT);
    assert_string_equal(err.msg, "a.yaml:2: YAML aliases are not supported");
    pst_config_fini(&cfg);
}

/* A run name becomes a directory under runs/: it cannot hold a path. */
static void run_names_cannot_leave_runs(void **state)
{
    (void)state;
    pst_config_t cfg;
    pst_config_init(&cfg);
    pst_err_t err = {0};
    const char *bad[] = {"a/../../../../tmp/evil", "..", ".hidden", "a/b", "", "x y"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char set[64];
        snprintf(set, sizeof set, "name=%s", bad[i]);
        assert_int_equal(pst_config_set(&cfg, set, &err), PST_EINVAL);
        assert_non_null(strstr(err.msg, "name: '"));
    }
    assert_string_equal(cfg.name, "run");
    assert_int_equal(pst_config_set(&cfg, "name=fold-3_v1.2", &err), PST_OK);
    assert_string_equal(cfg.name, "fold-3_v1.2");
    pst_config_fini(&cfg);
}

/* /dev/zero as a configuration: refused after the size limit, not read forever. */
static void endless_file_is_refused(void **state)
{
    (void)state;
    pst_config_t cfg;
    pst_config_init(&cfg);
    pst_err_t err = {0};
    assert_int_equal(pst_config_load_file(&cfg, "/dev/zero", &err), PST_EFORMAT);
    assert_string_equal(err.msg, "/dev/zero: larger than 1048576 bytes: not a configuration");
    pst_config_fini(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_are_documented_values),
        cmocka_unit_test(nested_yaml_and_lists),
        cmocka_unit_test(unknown_key_is_named_with_line),
        cmocka_unit_test(bad_values_are_errors),
        cmocka_unit_test(overrides_and_round_trip),
        cmocka_unit_test(validation_checks_fractions),
        cmocka_unit_test(repeated_keys_are_errors),
        cmocka_unit_test(deep_nesting_and_aliases_are_refused),
        cmocka_unit_test(endless_file_is_refused),
        cmocka_unit_test(run_names_cannot_leave_runs),
        cmocka_unit_test(awkward_strings_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
