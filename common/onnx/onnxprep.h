/* The fitted preprocessing as ONNX operators, one group of input columns at a time: each group
 * reads one graph input and yields a float block (N, width) of model features; the blocks are
 * concatenated in the model's feature order.
 *
 * Numeric block (float input): x * pixel_scale, NaN replaced by the fitted fill (IsNaN + Where),
 * then (v - shift) * scale: the same float operations in the same order as
 * pst_preproc_apply_block, so the features are bit-for-bit the ones pstrain computes.
 *
 * Categorical column (string input, (N, 1)), how an encoder's one-hot maps to ONNX: ai.onnx.ml
 * LabelEncoder turns each string into its slot (keys_strings = the fitted categories, values
 * 0..k-1), every other string (rarer, unseen, or the missing value if it has no slot of its own)
 * into default_int64 = k, the "other" slot; ai.onnx OneHot (depth k + 1, values [0, 1]) and
 * Flatten give the (N, k + 1) float block; without an "other" slot the last column is dropped
 * (Slice), so an unknown value encodes as all zeros. Measured in onnxruntime 1.31: Equal on
 * strings is refused at opset 13 (it takes strings from opset 19), and ai.onnx.ml OneHotEncoder
 * has no slot for unknown values; LabelEncoder + OneHot runs.
 *
 * How the kinds of a fitted column encoder map (one graph input per column, named after it;
 * pst_onnx_prep_columns emits a table of them from a pst_onnx_column_t per column):
 *   numeric or boolean value   float (N, 1) (a boolean as 0 or 1); fitted outlier bounds as
 *                              pst_onnx_prep_clip, then the numeric block
 *   one-hot category           string (N, 1), pst_onnx_prep_onehot with other = true, the missing
 *                              value being the category "" when it was fitted as one
 *   ordinal code               string (N, 1), pst_onnx_prep_ordinal (1 + index, 0 if unknown)
 *   hashed category            no ONNX operator hashes strings: such a model cannot be exported
 *   date                       ONNX operators cannot parse text dates, and the four parts
 *                              (year, month, day of week, day of year) of a day count need the
 *                              civil calendar as integer Div/Mod chains, not emitted: refuse a
 *                              model with an expanded date column (data.dates: drop exports).
 * The column blocks are concatenated in the encoder's feature order (pst_onnx_prep_concat) and
 * the numeric block (fill, shift, scale) then applies to the whole feature vector. */
#ifndef PST_COMMON_ONNX_ONNXPREP_H
#define PST_COMMON_ONNX_ONNXPREP_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "common/onnx/onnxgraph.h"

/* A numeric block of n_columns; NULL statistics (or pixel_scale 0 or 1) leave that step out. */
typedef struct pst_onnx_numeric {
    size_t n_columns;
    float pixel_scale;
    const float *fill;  // (n_columns) NaN replacement, in pixel-scaled units
    const float *shift; // (n_columns) subtracted
    const float *scale; // (n_columns) then multiplied
} pst_onnx_numeric_t;

/* A categorical column one-hot encoded into n_categories slots (+ 1 with other). */
typedef struct pst_onnx_onehot {
    size_t n_categories;
    const char *const *categories; // (n_categories) the value of each slot, in slot order
    bool other;                    // a last slot for every value not listed
} pst_onnx_onehot_t;

/* Emits the numeric block over input (float (N, n_columns)); *out names its (N, n_columns)
 * result (input itself when every step is left out). */
int pst_onnx_prep_numeric(pst_onnx_graph_t *g, const char *input, const pst_onnx_numeric_t *spec,
                          const char **out, pst_err_t *err);

/* Emits the one-hot encoding of input (string (N, 1)); *out names the float (N, width) block.
 * Imports ai.onnx.ml. An empty category list or a repeated category is PST_EINVAL. */
int pst_onnx_prep_onehot(pst_onnx_graph_t *g, const char *input, const pst_onnx_onehot_t *spec,
                         const char **out, pst_err_t *err);

/* Clamps each column j of input (float (N, n)) into [lo[j], hi[j]] as x < lo ? lo : x > hi ? hi
 * : x does (NaN stays NaN): Less, Greater and Where. Leaves nothing out; *out names the result. */
int pst_onnx_prep_clip(pst_onnx_graph_t *g, const char *input, size_t n, const float *lo,
                       const float *hi, const char **out, pst_err_t *err);

/* The ordinal code of input (string (N, 1)): 1 + the value's index in categories, 0 for any
 * other value, as float (N, 1). Imports ai.onnx.ml; the category list is checked as for one-hot. */
int pst_onnx_prep_ordinal(pst_onnx_graph_t *g, const char *input, size_t n_categories,
                          const char *const *categories, const char **out, pst_err_t *err);

/* An input column of a table: a graph input of its own, named after it. */
typedef enum {
    PST_ONNX_COLUMN_NUMBER = 0, /* float (N, 1); a boolean as 0 or 1 */
    PST_ONNX_COLUMN_ONEHOT,     /* string (N, 1); n_categories + 1 features, "other" last */
    PST_ONNX_COLUMN_ORDINAL,    /* string (N, 1); 1 feature, 1 + index or 0 */
} pst_onnx_column_kind_t;

typedef struct pst_onnx_column {
    const char *name;
    pst_onnx_column_kind_t kind;
    float clip_lo, clip_hi;        /* NUMBER: fitted bounds; -inf and +inf when off */
    size_t n_categories;           /* ONEHOT, ORDINAL */
    const char *const *categories; // (n_categories) in slot order
} pst_onnx_column_t;

/* Declares a graph input per column and emits its block (clipping only for finite bounds);
 * *out names the (N, width) concatenation in column order, the raw feature vector that the
 * numeric block (fill, shift, scale) then takes. */
int pst_onnx_prep_columns(pst_onnx_graph_t *g, const pst_onnx_column_t *cols, size_t n,
                          const char **out, pst_err_t *err);

/* Concatenates n blocks along the feature axis into *out (blocks[0] itself when n is 1). */
int pst_onnx_prep_concat(pst_onnx_graph_t *g, int n, const char *const *blocks, const char **out,
                         pst_err_t *err);

#endif
