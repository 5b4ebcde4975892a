/* pstrain info --cost: what a dense model costs to deploy, as float and as int8 (and the zeros
 * of a pruned model): parameters, bytes, FLOPs per row, single-row latency and batch throughput,
 * measured here. */
#ifndef PST_APP_COST_H
#define PST_APP_COST_H

#include <stdio.h>

#include "common/err.h"
#include "worker/model/modelfile.h"

#define PST_COST_BATCH 256

typedef struct pst_cost {
    const char *variant;   /* "float", "int8" */
    size_t params;         /* parameters of the arena */
    size_t bytes;          /* the model file's bytes (on disk, or packed in memory) */
    double weight_zeros;   /* share of dense and conv2d weights that are exactly 0 */
    double flops;          /* per row: 2 x the multiply-adds of dense and conv2d layers */
    double p50_us, p99_us; /* single-row forward latency */
    double rows_per_s;     /* forwards of PST_COST_BATCH rows */
} pst_cost_t;

typedef struct pst_cost_opts {
    const char *model;
    const char *data;  /* rows to time and to calibrate an in-memory int8 model on; NULL: rows
                          drawn from N(0, 1) (standardised inputs) */
    int single_rows;   /* single-row forwards timed (0: 2000) */
    double batch_secs; /* time spent on batch forwards (0: 0.5 s) */
} pst_cost_opts_t;

/* FLOPs per row of mf's layers: 2 x multiply-adds of dense and conv2d layers (element-wise
 * layers, pools and the softmax are left out: under 1% for these models). */
double pst_cost_flops(const pst_modelfile_t *mf, pst_err_t *err);

/* Measures mf as it is (float, or int8 when quantised) on the n_rows rows of x (preprocessed):
 * every field but variant and bytes. */
int pst_cost_measure(const pst_modelfile_t *mf, const float *x, size_t n_rows,
                     const pst_cost_opts_t *o, pst_cost_t *cost, pst_err_t *err);

/* Measures the float and int8 variants of the model file (quantising in memory when the file is
 * float, restoring float weights cannot be done for an int8 file: its float row shows the
 * dequantised weights run in float) and prints them as a table on out. */
int pst_cost_report(const pst_cost_opts_t *o, FILE *out, pst_err_t *err);

/* The quantisation line of `pstrain info` for an int8 model. */
void pst_cost_print_quant(const pst_modelfile_t *mf, const char *indent, FILE *out);

#endif
