/* pstrain quantize: argv of turning a float model file into an int8 one, run by app/quantize. */
#include <stdio.h>
#include <string.h>

#include "app/console.h"
#include "app/quantize.h"
#include "cli/args.h"
#include "cli/quantize.h"
#include "common/numparse.h"

void pst_usage_quantize(FILE *out)
{
    fprintf(out,
            "usage: pstrain quantize MODEL -o OUT.pst --calibration DATA [--calibration-rows N]\n"
            "                        [--percentile P]\n\n"
            "Post-training int8 quantisation of a dense model (MLP, linear, CNN): the weights of\n"
            "each dense layer (and conv2d layer of 32 or more values per window) become int8,\n"
            "symmetric, with one scale per output channel (max |w| / 127), and each such\n"
            "layer's input gets an int8 scale calibrated on the first N rows of\n"
            "DATA, read as the model's training data was (training or validation rows; labels\n"
            "are not needed). The calibration rule is the largest |x| seen (--percentile 100,\n"
            "the default), or the P-th percentile of |x| to clip rare outliers. Biases and\n"
            "other layers stay float. OUT stores the int8 weights and scales (about a quarter\n"
            "of the float file); pstrain eval, predict and libpstrain run it in int8 (int8 x\n"
            "int8 products summed in int32). Prints the sizes and how far the int8 outputs are\n"
            "from the float ones on the calibration rows.\n\n"
            "options:\n"
            "  -o FILE                 the int8 model file (written atomically); required\n"
            "  --calibration DATA      calibration rows; required\n"
            "  --calibration-rows N    use the first N rows of DATA (default %d)\n"
            "  --percentile P          calibration rule: percentile of |x| in (0, 100]\n"
            "                          (default 100: the maximum)\n",
            PST_QUANTIZE_DEFAULT_ROWS);
}

static int parse_number(void *ctx, const char *name, const char *value)
{
    pst_quantize_opts_t *o = ctx;
    if (strcmp(name, "--calibration-rows") == 0) {
        long rows;
        if (pst_parse_long(value, 1, 100000000, &rows) == PST_OK) {
            o->calibration_rows = (size_t)rows;
            return 0;
        }
        pst_app_error("quantize: --calibration-rows takes a whole number from 1 to 100000000, "
                      "not '%s'",
                      value);
        return 2;
    }
    double p;
    if (pst_parse_double(value, PST_NUM_FINITE, &p) == PST_OK && p > 0.0 && p <= 100.0) {
        o->percentile = p;
        return 0;
    }
    pst_app_error("quantize: --percentile takes a number in (0, 100], not '%s'", value);
    return 2;
}

int pst_cmd_quantize(int argc, char **argv)
{
    pst_quantize_opts_t o = {.percentile = 100.0};
    const pst_args_opt_t opts[] = {{"-o", .text = &o.out},
                                   {"--calibration", .text = &o.calibration},
                                   {"--calibration-rows", .parse = parse_number},
                                   {"--percentile", .parse = parse_number},
                                   {NULL}};
    pst_args_spec_t spec = {.usage = pst_usage_quantize,
                            .opts = opts,
                            .ctx = &o,
                            .first = 1,
                            .max_positional = 1,
                            .unknown = "quantize: unknown or incomplete option '%s'",
                            .unexpected = "quantize: unexpected argument '%s'"};
    pst_args_t a;
    int parsed = pst_args_parse(&a, &spec, argc, argv);
    if (parsed != PST_ARGS_RUN)
        return pst_args_status(parsed);
    if (a.n_positional < 1 || !o.out) {
        pst_app_error("quantize: %s",
                      a.n_positional < 1 ? "MODEL is missing" : "-o OUT is missing");
        pst_usage_quantize(stderr);
        return 2;
    }
    o.model = a.positional[0];
    pst_err_t err = {0};
    pst_quantize_result_t res;
    if (pst_quantize_run(&o, &res, &err) != PST_OK) {
        pst_app_error("%s", err.msg);
        return 1;
    }
    printf("quantized %d layers to int8 (per output channel), activations calibrated on "
           "%zu rows (rule: ",
           res.n_layers, res.rows);
    if (o.percentile >= 100.0)
        printf("max |x|)\n");
    else
        printf("percentile %g of |x|)\n", o.percentile);
    printf("size: float %zu bytes, int8 %zu bytes (%.3fx)\n", res.float_bytes, res.int8_bytes,
           res.float_bytes ? (double)res.int8_bytes / (double)res.float_bytes : 0.0);
    printf("calibration rows: max |float - int8| output %.6g", res.max_abs_diff);
    if (res.classify)
        printf(", same predicted class on %.4f of rows", res.agreement);
    printf("\nwrote %s\n", o.out);
    return 0;
}
