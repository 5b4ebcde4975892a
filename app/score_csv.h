/* Scoring a CSV file by column name with one model: rows streamed in chunks through the
 * model's encoder, preprocessing and layers; predictions written as they come, or collected with
 * the labels for metrics. */
#ifndef PST_APP_SCORE_CSV_H
#define PST_APP_SCORE_CSV_H

#include <stdio.h>

#include "worker/model/modelfile.h"

/* The model's named inputs: mf->encoder, or for an older CSV model all-numeric inputs named by
 * its feature names (caller destroys *owned). NULL when the model has no input names. */
const pst_encoder_t *pst_score_inputs(const pst_modelfile_t *mf, pst_encoder_t **owned);

/* Writes a class's label: its text name, its numeric value, or its index. */
void pst_score_write_label(FILE *f, const pst_modelfile_t *mf, int k);

typedef struct pst_score_csv {
    const pst_modelfile_t *mf;
    const char *data;      /* the CSV file */
    const char *target;    /* label column name */
    const char *id_column; /* predict: copied to the output first; NULL or "" = none */
    const char *out;       /* predict: the output file (written atomically), NULL = stdout */
} pst_score_csv_t;

/* Predictions for every row of the file (no labels needed), streamed. */
int pst_score_csv_predict(const pst_score_csv_t *s, pst_err_t *err);

/* Model outputs (*out: (n, *n_out)) and labels (*y: (n)) of every row; the file must hold the
 * target column. Caller frees *out and *y. */
int pst_score_csv_collect(const pst_score_csv_t *s, float **out, int *n_out, float **y, size_t *n,
                          pst_err_t *err);

#endif
