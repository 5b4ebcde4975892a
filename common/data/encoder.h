/* Encoder: a model's input columns by name and type, and how rows of raw cells become its
 * feature vector. Fitted on training rows only, stored in the model file, read-only afterwards.
 *
 * A model trained on a CSV file takes n_inputs named columns and sees n_features numbers:
 *
 *   input kind    features                        value of each feature
 *   VALUE         1 (numeric or boolean)          the number (boolean: 1 or 0), clamped into
 *                                                 [clip_lo, clip_hi]; missing: NaN
 *   DATE          4: _year _month _dow _doy       see pst_date_expand; missing: four NaNs
 *   ONEHOT        n_vocab + 1                     1 at the value's index in vocab, or at the
 *                                                 last ("other") slot for a value not in vocab
 *   HASH          n_slots                         1 at pst_encoder_hash_slot of the text
 *   ORDINAL       1                               1 + the value's index in vocab; 0 if not in it
 *
 * A missing categorical cell is the value "" (its own category). NaN features are then filled
 * and scaled by the model's preprocessing (common/data/preprocess.h), which follows the encoder.
 * Every function is safe to call from several threads on one encoder. */
#ifndef PST_COMMON_DATA_ENCODER_H
#define PST_COMMON_DATA_ENCODER_H

#include <stddef.h>
#include <stdint.h>

#include "common/data/cells.h"
#include "common/data/dataset.h"
#include "common/err.h"

/* Stored in model files: append only. */
typedef enum {
    PST_ENC_VALUE = 0,
    PST_ENC_DATE = 1,
    PST_ENC_ONEHOT = 2,
    PST_ENC_HASH = 3,
    PST_ENC_ORDINAL = 4
} pst_enc_kind_t;

typedef struct pst_enc_input {
    char *name;          /* the column's name in the file */
    pst_col_type_t type; /* as detected or configured on the training file */
    pst_enc_kind_t kind;
    size_t offset; /* its features are [offset, offset + width) of the feature vector */
    size_t width;
    char **vocab; // (n_vocab) ONEHOT, ORDINAL: training values, sorted by strcmp; "" = missing
    size_t n_vocab;
    size_t n_slots;         /* HASH: slots (= width) */
    float clip_lo, clip_hi; /* VALUE: fitted outlier bounds; -inf, +inf when off */
} pst_enc_input_t;

typedef struct pst_encoder {
    size_t n_inputs;
    pst_enc_input_t *inputs; // (n_inputs), in the training file's column order
    size_t n_features;
    uint64_t hash_seed; /* HASH slots */
} pst_encoder_t;

/* A raw cell: text as a CSV file holds it (empty, "NA", "?" and the like are missing), or, with
 * text NULL, a number (NaN = missing; a boolean 0 or 1; a date as days since 1970-01-01; a
 * category written as its shortest decimal form). */
typedef struct pst_enc_cell {
    const char *text;
    double number;
} pst_enc_cell_t;

/* Encodes n_rows rows of cells, each n_inputs cells in the encoder's input order, into out
 * (n_rows, n_features). Fails with PST_EFORMAT naming the row (1-based), the column and the cell
 * for text that is not of the column's type (a number, a boolean, a date). */
int pst_encoder_encode(const pst_encoder_t *e, const pst_enc_cell_t *cells, size_t n_rows,
                       float *out, pst_err_t *err);

/* Index of the input named name, or -1. */
long pst_encoder_find_input(const pst_encoder_t *e, const char *name);

/* Name of feature f ("age", "when_month", "color=red", "color=<other>", "city#7") into buf. */
void pst_encoder_feature_name(const pst_encoder_t *e, size_t f, char *buf, size_t cap);

/* The HASH slot of a category's text. */
size_t pst_encoder_hash_slot(const pst_encoder_t *e, const pst_enc_input_t *in, const char *text,
                             size_t len);

/* Index of text in in->vocab, or -1 (ONEHOT and ORDINAL). */
long pst_encoder_vocab_index(const pst_enc_input_t *in, const char *text);

/* Lays out offsets, widths and n_features from each input's kind, vocab and n_slots. */
void pst_encoder_layout(pst_encoder_t *e);

pst_encoder_t *pst_encoder_new(size_t n_inputs);
pst_encoder_t *pst_encoder_clone(const pst_encoder_t *e);
void pst_encoder_destroy(pst_encoder_t **self_p);

/* ---- fitting (training side) ---- */

typedef enum {
    PST_OUTLIERS_NONE = 0,
    PST_OUTLIERS_CLIP_IQR,
    PST_OUTLIERS_CLIP_ZSCORE
} pst_outliers_t;

typedef struct pst_encoder_opts {
    size_t max_categories;    /* categorical: one-hot of at most this many values */
    pst_enc_kind_t beyond;    /* a column with more values: ONEHOT (the most frequent ones, the
                                 rest "other"), HASH or ORDINAL */
    size_t hash_slots;        /* HASH */
    pst_outliers_t outliers;  /* numeric columns: clamp at bounds fitted on the training rows */
    double outlier_threshold; /* IQR multiple (Tukey fences) or z-score; 0 = 1.5 or 3 */
    uint64_t hash_seed;
} pst_encoder_opts_t;

/* Fits an encoder on rows[0..n) (NULL: the first n rows) of a raw dataset (raw->table set):
 * categories and outlier bounds come from those rows only. Caller owns *out. */
int pst_encoder_fit(const pst_dataset_t *raw, const size_t *rows, size_t n,
                    const pst_encoder_opts_t *opts, pst_encoder_t **out, pst_err_t *err);

/* A new dense dataset of e's features for every row of raw (columns matched by name), with raw's
 * targets, classes and names. Caller owns *out. */
int pst_encoder_apply(const pst_encoder_t *e, const pst_dataset_t *raw, pst_dataset_t **out,
                      pst_err_t *err);

#endif
