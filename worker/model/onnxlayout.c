/* Weight layouts for ONNX: conv2d filters, and the gate order and W/R/B split of lstm and gru. */
#include "worker/model/onnxlayout.h"

#include <string.h>

void pst_onnx_conv_dims(int out_channels, int in_channels, int kernel, int64_t dims[4])
{
    dims[0] = out_channels;
    dims[1] = in_channels;
    dims[2] = kernel;
    dims[3] = kernel;
}

/* For each ONNX gate slot, the pstrain gate that fills it. */
static const int LSTM_FROM[4] = {0, 3, 1, 2}; /* i, o, f, c <- i, f, g, o */
static const int GRU_FROM[3] = {1, 0, 2};     /* z, r, h <- r, z, n */

/* Splits W (gates * H, F + H) into w_onnx (gates * H, F) and r_onnx (gates * H, H), the gate
 * blocks reordered by from. */
static void split_gates(const float *w, int features, int units, int gates, const int *from,
                        float *w_onnx, float *r_onnx)
{
    size_t F = (size_t)features, H = (size_t)units, ld = F + H;
    for (int slot = 0; slot < gates; slot++)
        for (size_t j = 0; j < H; j++) {
            const float *row = w + ((size_t)from[slot] * H + j) * ld;
            size_t to = (size_t)slot * H + j;
            memcpy(w_onnx + to * F, row, F * sizeof(float));
            memcpy(r_onnx + to * H, row + F, H * sizeof(float));
        }
}

void pst_onnx_lstm_layout(const float *w, const float *b, int features, int units, float *w_onnx,
                          float *r_onnx, float *b_onnx)
{
    size_t H = (size_t)units;
    split_gates(w, features, units, 4, LSTM_FROM, w_onnx, r_onnx);
    for (int slot = 0; slot < 4; slot++)
        memcpy(b_onnx + slot * H, b + (size_t)LSTM_FROM[slot] * H, H * sizeof(float));
    memset(b_onnx + 4 * H, 0, 4 * H * sizeof(float));
}

void pst_onnx_gru_layout(const float *w, const float *b, int features, int units, float *w_onnx,
                         float *r_onnx, float *b_onnx)
{
    size_t H = (size_t)units;
    split_gates(w, features, units, 3, GRU_FROM, w_onnx, r_onnx);
    for (int slot = 0; slot < 3; slot++)
        memcpy(b_onnx + slot * H, b + (size_t)GRU_FROM[slot] * H, H * sizeof(float));
    memset(b_onnx + 3 * H, 0, 2 * H * sizeof(float));
    memcpy(b_onnx + 5 * H, b + 3 * H, H * sizeof(float)); /* the reset gate scales it */
}
