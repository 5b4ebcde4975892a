/* Ensemble files (bagging, voting, stacking, blending): a protobuf pst.Ensemble of member models
 * with magic PSTE, written atomically and read back with every field checked; and how the
 * members' outputs combine into the ensemble's. */
#ifndef PST_WORKER_MODEL_ENSEMBLE_H
#define PST_WORKER_MODEL_ENSEMBLE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/data/dataset.h"
#include "common/err.h"
#include "worker/model/modelfile.h"

#define PST_ENSEMBLE_MAGIC 0x50535445u /* "PSTE" */
#define PST_ENSEMBLE_VERSION 1u

typedef enum { PST_VOTE_SOFT = 0, PST_VOTE_HARD = 1 } pst_voting_t;

typedef enum {
    PST_ENSEMBLE_BAGGING = 0,  /* members on bootstrap samples, voted */
    PST_ENSEMBLE_VOTING = 1,   /* members on the same rows, voted */
    PST_ENSEMBLE_STACKING = 2, /* a meta model on the members' out-of-fold outputs */
    PST_ENSEMBLE_BLENDING = 3  /* a meta model on the members' outputs for held-out rows */
} pst_ensemble_method_t;

/* An ensemble; the arrays are owned by the struct (pst_ensemble_fini) once loaded. Every member
 * reads the same raw input columns (n_inputs) and has the same task and classes. */
typedef struct pst_ensemble {
    pst_ensemble_method_t method;
    pst_voting_t voting;      /* bagging, voting */
    int n_members;            /* >= 1 */
    pst_modelfile_t *members; // (n_members)
    float *weights;           // (n_members) voting weights, or NULL: equal
    pst_modelfile_t *meta;    /* stacking, blending: inputs (n_members * width), else NULL */
} pst_ensemble_t;

const char *pst_ensemble_method_name(pst_ensemble_method_t method);
int pst_ensemble_method_parse(const char *name, pst_ensemble_method_t *out);
const char *pst_voting_name(pst_voting_t voting);
int pst_voting_parse(const char *name, pst_voting_t *out);

/* Frees the members, weights and meta model and zeroes *e; safe twice. */
void pst_ensemble_fini(pst_ensemble_t *e);

/* Checks e is consistent (members agree, weights, meta inputs); errors name origin. */
int pst_ensemble_check(const pst_ensemble_t *e, const char *origin, pst_err_t *err);
/* Writes e to path via a temporary file, fsync and rename. e is only read. */
int pst_ensemble_save(const pst_ensemble_t *e, const char *path, pst_err_t *err);
/* Reads and validates an ensemble file; e is filled and owned by the caller. A model file is
 * refused with a message saying so. */
int pst_ensemble_load(pst_ensemble_t *e, const char *path, pst_err_t *err);
/* Decodes serialised pst.Ensemble bytes (origin names them in errors). */
int pst_ensemble_unpack(pst_ensemble_t *e, const unsigned char *buf, size_t len, const char *origin,
                        pst_err_t *err);
/* Sets *is_ensemble when path holds an ensemble (magic PSTE); false for a model file or
 * anything else. Fails only when the file cannot be read. */
int pst_ensemble_probe(const char *path, bool *is_ensemble, pst_err_t *err);

/* Columns of an output row of the ensemble: n_classes (classification) or 1 (regression). */
int pst_ensemble_width(pst_task_t task, int n_classes);

/* A model's outputs (n, n_out) as (n, width) rows: a single sigmoid output p of a two-class
 * model becomes (1 - p, p); otherwise the rows are copied. */
void pst_ensemble_outputs_to_probs(const float *out, size_t n, int n_out, int width, float *probs);

/* Combines member rows member[m] (n, width) into out (n, width) with weights (n_members, or
 * NULL: equal; non-negative, positive sum):
 * - soft: the weighted mean of the rows (classification and regression);
 * - hard (classification only): each member votes its argmax class with its weight; a row's
 *   output is the share of the total weight each class received, so its argmax is the weighted
 *   majority, ties going to the lower class index. */
int pst_ensemble_vote(pst_voting_t voting, bool classify, const float *const *member,
                      const float *weights, int n_members, size_t n, int width, float *out,
                      pst_err_t *err);

/* The meta model's input rows (n, n_members * width): member 0's row, then member 1's, ... */
void pst_ensemble_stack_features(const float *const *member, int n_members, size_t n, int width,
                                 float *features);

/* The ensemble's output rows (n_rows, width) for the raw rows of a dense dataset with the
 * members' n_inputs columns (each member applies its own preprocessing and columns); raw is not
 * changed. */
int pst_ensemble_apply(const pst_ensemble_t *e, const pst_dataset_t *raw, float *out,
                       pst_err_t *err);

#endif
