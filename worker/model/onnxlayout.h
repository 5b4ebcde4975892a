/* pstrain's weight layouts rewritten as the ONNX operators take them: conv2d filters as OIHW,
 * lstm and gru weights as the W, R and B inputs of ONNX's LSTM and GRU (one direction). */
#ifndef PST_WORKER_MODEL_ONNXLAYOUT_H
#define PST_WORKER_MODEL_ONNXLAYOUT_H

#include <stdint.h>

/* conv2d: pstrain's W (out_channels, in_channels * k * k) keeps column (c * k + ky) * k + kx,
 * which is ONNX's OIHW order already; *dims receives (out_channels, in_channels, k, k) and the
 * weights travel unchanged. */
void pst_onnx_conv_dims(int out_channels, int in_channels, int kernel, int64_t dims[4]);

/* The recurrent layers' gates, in pstrain's order and in ONNX's:
 *   lstm  pstrain i, f, g, o         ONNX i, o, f, c (c is pstrain's g)
 *   gru   pstrain r, z, n            ONNX z, r, h (h is pstrain's n)
 * pstrain keeps W (G, features + units): each gate's input weights in the first columns and its
 * recurrent ones after them; b (4 units): lstm per gate, gru r, z, n on the input side and then
 * n on the recurrent side (inside the reset gate's product, as ONNX's linear_before_reset = 1). */

/* lstm of units H over features F: w_onnx (4H, F), r_onnx (4H, H), b_onnx (8H) = input-side
 * biases then recurrent-side ones (all 0: pstrain has one bias per gate). */
void pst_onnx_lstm_layout(const float *w, const float *b, int features, int units, float *w_onnx,
                          float *r_onnx, float *b_onnx);

/* gru: w_onnx (3H, F), r_onnx (3H, H), b_onnx (6H) = (Wb_z, Wb_r, Wb_h, Rb_z, Rb_r, Rb_h) with
 * Rb_z = Rb_r = 0 and Rb_h pstrain's recurrent n bias. */
void pst_onnx_gru_layout(const float *w, const float *b, int features, int units, float *w_onnx,
                         float *r_onnx, float *b_onnx);

#endif
