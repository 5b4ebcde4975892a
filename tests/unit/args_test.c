/* Tests for cli/args: the argv skeleton every command uses (options, values, --set, --help). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cli/args.h"

static int usage_calls;

static void usage(FILE *out)
{
    (void)out;
    usage_calls++;
}

typedef struct demo {
    const char *name;
    bool flag;
    int count;
} demo_t;

static int parse_count(void *ctx, const char *name, const char *value)
{
    if (strcmp(value, "bad") == 0)
        return 2;
    ((demo_t *)ctx)->count = atoi(value);
    return 0;
}

/* A command like cv: CONFIG, the common options, --name TEXT, --flag, --count N. */
static int parse(demo_t *d, pst_args_t *a, int argc, char **argv)
{
    const pst_args_opt_t opts[] = {{"--name", .text = &d->name},
                                   {"--flag", .flag = &d->flag},
                                   {"--count", .parse = parse_count},
                                   {NULL}};
    pst_args_spec_t spec = {.usage = usage,
                            .common = PST_ARGS_SET | PST_ARGS_OUT | PST_ARGS_QUIET,
                            .opts = opts,
                            .ctx = d,
                            .first = 1,
                            .max_positional = 1,
                            .unknown = "demo: unknown or incomplete option '%s'",
                            .unexpected = "demo: unexpected argument '%s'"};
    memset(d, 0, sizeof *d);
    usage_calls = 0;
    return pst_args_parse(a, &spec, argc, argv);
}

#define ARGV(...) ((char *[]){"demo", __VA_ARGS__})
#define ARGC(...) ((int)(sizeof((char *[]){"demo", __VA_ARGS__}) / sizeof(char *)))
#define PARSE(d, a, ...) parse(d, a, ARGC(__VA_ARGS__), ARGV(__VA_ARGS__))

static void parses_common_and_table_options(void **state)
{
    demo_t d;
    pst_args_t a;
    assert_int_equal(
        PARSE(&d, &a, "cfg.yaml", "--out", "dir", "-q", "--name", "x", "--flag", "--count", "7"),
        PST_ARGS_RUN);
    assert_int_equal(a.n_positional, 1);
    assert_string_equal(a.positional[0], "cfg.yaml");
    assert_string_equal(a.out, "dir");
    assert_true(a.quiet);
    assert_null(a.resume);
    assert_string_equal(d.name, "x");
    assert_true(d.flag);
    assert_int_equal(d.count, 7);
}

static void unknown_option_is_a_usage_error(void **state)
{
    demo_t d;
    pst_args_t a;
    assert_int_equal(PARSE(&d, &a, "cfg.yaml", "--bogus"), 2);
    /* --resume is not among this command's common options */
    assert_int_equal(PARSE(&d, &a, "cfg.yaml", "--resume", "dir"), 2);
    assert_int_equal(usage_calls, 0);
}

static void missing_value_is_a_usage_error(void **state)
{
    demo_t d;
    pst_args_t a;
    assert_int_equal(PARSE(&d, &a, "cfg.yaml", "--out"), 2);
    assert_int_equal(PARSE(&d, &a, "cfg.yaml", "--name"), 2);
    assert_null(d.name);
    assert_int_equal(PARSE(&d, &a, "cfg.yaml", "--set"), 2);
    assert_int_equal(a.n_sets, 0);
}

static void extra_positional_is_unexpected(void **state)
{
    demo_t d;
    pst_args_t a;
    assert_int_equal(PARSE(&d, &a, "one.yaml", "two.yaml"), 2);
    assert_int_equal(PARSE(&d, &a, "--flag"), PST_ARGS_RUN);
    assert_int_equal(a.n_positional, 0);
}

static void repeated_set_keeps_every_override_in_order(void **state)
{
    demo_t d;
    pst_args_t a;
    assert_int_equal(
        PARSE(&d, &a, "--set", "a=1", "cfg.yaml", "--set", "b=2", "--set=c=3", "--set", "a=4"),
        PST_ARGS_RUN);
    assert_int_equal(a.n_sets, 4);
    assert_string_equal(a.sets[0], "a=1");
    assert_string_equal(a.sets[1], "b=2");
    assert_string_equal(a.sets[2], "c=3");
    assert_string_equal(a.sets[3], "a=4");
    assert_string_equal(a.positional[0], "cfg.yaml");
}

static void too_many_sets_is_a_usage_error(void **state)
{
    char *argv[1 + 2 * (PST_MAX_SETS + 1)];
    int argc = 0;
    argv[argc++] = "demo";
    for (int i = 0; i <= PST_MAX_SETS; i++) {
        argv[argc++] = "--set";
        argv[argc++] = "a=1";
    }
    demo_t d;
    pst_args_t a;
    assert_int_equal(parse(&d, &a, 1 + 2 * PST_MAX_SETS, argv), PST_ARGS_RUN);
    assert_int_equal(a.n_sets, PST_MAX_SETS);
    assert_int_equal(parse(&d, &a, argc, argv), 2);
}

static void help_prints_usage_wherever_it_stands(void **state)
{
    demo_t d;
    pst_args_t a;
    assert_int_equal(PARSE(&d, &a, "--help"), PST_ARGS_HELP);
    assert_int_equal(usage_calls, 1);
    assert_int_equal(PARSE(&d, &a, "cfg.yaml", "--set", "a=1", "-h"), PST_ARGS_HELP);
    assert_int_equal(usage_calls, 1);
    assert_int_equal(pst_args_status(PST_ARGS_HELP), 0);
    /* a value that looks like --help is the option's value */
    assert_int_equal(PARSE(&d, &a, "cfg.yaml", "--name", "--help"), PST_ARGS_RUN);
    assert_string_equal(d.name, "--help");
    assert_int_equal(usage_calls, 0);
    /* an error before --help wins */
    assert_int_equal(PARSE(&d, &a, "--bogus", "--help"), 2);
    assert_int_equal(usage_calls, 0);
}

static void parse_errors_stop_the_parse(void **state)
{
    demo_t d;
    pst_args_t a;
    assert_int_equal(PARSE(&d, &a, "cfg.yaml", "--count", "bad", "--flag"), 2);
    assert_false(d.flag);
}

static int parse_pair(void *ctx, const char *name, const char *value)
{
    demo_t *d = ctx;
    d->count++;
    d->name = value;
    return 0;
}

static void pairs_mode_takes_option_value_pairs_only(void **state)
{
    const pst_args_opt_t opts[] = {{"--rows", .parse = parse_pair}, {NULL}};
    demo_t d = {0};
    pst_args_spec_t spec = {.usage = usage,
                            .opts = opts,
                            .ctx = &d,
                            .first = 1,
                            .unknown = "unknown '%s'",
                            .unexpected = "unexpected '%s'",
                            .pairs = true,
                            .missing_value = "%s needs a value"};
    pst_args_t a;
    assert_int_equal(pst_args_parse(&a, &spec, 3, ARGV("--rows", "5")), PST_ARGS_RUN);
    assert_int_equal(d.count, 1);
    assert_string_equal(d.name, "5");
    assert_int_equal(pst_args_parse(&a, &spec, 2, ARGV("--rows")), 2);
    assert_int_equal(pst_args_parse(&a, &spec, 3, ARGV("--cols", "5")), 2);
    assert_int_equal(pst_args_parse(&a, &spec, 3, ARGV("-r", "5")), 2);
    assert_int_equal(pst_args_parse(&a, &spec, 2, ARGV("rows")), 2);
    assert_int_equal(d.count, 1);
}

static void plan_options_carry_over(void **state)
{
    demo_t d;
    pst_args_t a;
    assert_int_equal(PARSE(&d, &a, "cfg.yaml", "--set", "a=1", "--set", "b=2", "--out", "o", "-q"),
                     PST_ARGS_RUN);
    pst_plan_args_t plan;
    assert_int_equal(pst_args_to_plan(&a, &plan, "no CONFIG"), PST_ARGS_RUN);
    assert_string_equal(plan.config, "cfg.yaml");
    assert_int_equal(plan.n_sets, 2);
    assert_string_equal(plan.sets[1], "b=2");
    assert_string_equal(plan.out, "o");
    assert_true(plan.quiet);
    assert_int_equal(PARSE(&d, &a, "--out", "o"), PST_ARGS_RUN);
    assert_int_equal(pst_args_to_plan(&a, &plan, "no CONFIG"), 2);
    assert_int_equal(pst_args_to_plan(&a, &plan, NULL), PST_ARGS_RUN);
    assert_null(plan.config);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_common_and_table_options),
        cmocka_unit_test(unknown_option_is_a_usage_error),
        cmocka_unit_test(missing_value_is_a_usage_error),
        cmocka_unit_test(extra_positional_is_unexpected),
        cmocka_unit_test(repeated_set_keeps_every_override_in_order),
        cmocka_unit_test(too_many_sets_is_a_usage_error),
        cmocka_unit_test(help_prints_usage_wherever_it_stands),
        cmocka_unit_test(parse_errors_stop_the_parse),
        cmocka_unit_test(pairs_mode_takes_option_value_pairs_only),
        cmocka_unit_test(plan_options_carry_over),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
