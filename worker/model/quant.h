/* Post-training int8 quantisation of a layer stack: symmetric per-output-channel weights,
 * activation scales calibrated on sample rows, and the int8 inference a model switches to once a
 * plan is attached (int8 x int8 products summed in int32, then requantised to float). */
#ifndef PST_WORKER_MODEL_QUANT_H
#define PST_WORKER_MODEL_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "worker/model/model.h"

#define PST_QUANT_MAX 127       /* symmetric range [-127, 127]: no -128, so |a * b| <= 127^2 */
#define PST_QUANT_MIN_WINDOW 32 /* conv2d layers with fewer values per window stay float */

/* One quantised weight tensor: w[r][c] ~ q[r][c] * w_scale[r]. */
typedef struct pst_quant_layer {
    int layer;      /* index in the stack: a dense or conv2d layer */
    size_t offset;  /* floats from the arena's start to its W */
    int rows, cols; /* W (rows, cols): dense (out, in), conv2d (out channels, in channels*k*k) */
    int8_t *w;      // (rows, cols)
    float *w_scale; // (rows) > 0
    float in_scale; /* the layer's input: x_q = clamp(round(x / in_scale), -127, 127) */
} pst_quant_layer_t;

typedef struct pst_quant {
    int n_layers;
    pst_quant_layer_t *layers; // (n_layers) in stack order
    char rule[16];             /* calibration rule: "max" or "pP" (the P-th percentile of |x|) */
    size_t calib_rows;
} pst_quant_t;

/* Scale of a row or tensor whose largest magnitude is max_abs: max_abs / 127 (1 for all zeros, so
 * that dividing by it is always defined). */
float pst_quant_scale(float max_abs);

/* w (n) -> q (n) with *scale = pst_quant_scale(max |w|): q = round(w / scale). */
void pst_quant_row(const float *w, size_t n, int8_t *q, float *scale);

/* x (n) -> q (n): round(x / scale) clamped into [-127, 127]. */
void pst_quant_values(const float *x, size_t n, float scale, int8_t *q);

/* Whether pst_quant_new quantises layer i of m: a dense layer, or a conv2d layer of at least
 * PST_QUANT_MIN_WINDOW values per window. */
bool pst_quant_layer_quantizable(const pst_model_t *m, int i);

/* Quantises the dense layers of model, and its conv2d layers of at least PST_QUANT_MIN_WINDOW
 * values per window (per output channel), and calibrates each one's input scale on the n_rows rows
 * of x (n_rows, n_inputs): percentile 100 takes the largest |x| seen, below 100 that percentile of
 * |x| (a 4096-bin histogram over [0, max]). Runs float forwards of up to the model's max_batch
 * rows. Caller owns the result. */
pst_quant_t *pst_quant_new(pst_model_t *model, const float *x, size_t n_rows, double percentile,
                           pst_err_t *err);
void pst_quant_destroy(pst_quant_t **self_p);

/* A deep copy of q, or NULL when out of memory. */
pst_quant_t *pst_quant_copy(const pst_quant_t *q);

/* Writes each quantised W of q dequantised (q * scale) into params at its offset. */
void pst_quant_dequantize(const pst_quant_t *q, float *params);

/* Makes model's inference forwards (training = false) run q's layers in int8; q is copied, so it
 * need not outlive the model. Checks that every layer of q is a dense or conv2d layer of model
 * with the same shape and offset, an error naming the first that is not. */
int pst_model_attach_quant(pst_model_t *model, const pst_quant_t *q, pst_err_t *err);

/* True when model runs an int8 plan. */
bool pst_model_is_quantized(const pst_model_t *model);

/* c (m, n) = a (m, k) b (n, k)^T in int8 x int8 -> int32, exact for entries in [-127, 127],
 * with the best kernel the processor runs: AVX-VNNI, AVX2, else a loop the compiler vectorises. */
void pst_qgemm(const int8_t *a, const int8_t *b, int32_t *c, int m, int n, int k);

typedef enum { PST_QGEMM_PLAIN = 0, PST_QGEMM_AVX2, PST_QGEMM_VNNI } pst_qgemm_kernel_t;
/* Whether this processor runs kernel; pst_qgemm_with runs that one (tests compare them all). */
bool pst_qgemm_has(pst_qgemm_kernel_t kernel);
void pst_qgemm_with(pst_qgemm_kernel_t kernel, const int8_t *a, const int8_t *b, int32_t *c, int m,
                    int n, int k);

#endif
