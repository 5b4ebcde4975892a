/* Click data of a sparse run (model.type sparse_lr, fm, wide_deep): train, validation and test
 * sets in CSR with labels 0/1, or a streamed data.train. */
#ifndef PST_APP_SPARSE_CLICK_DATA_H
#define PST_APP_SPARSE_CLICK_DATA_H

#include <stdbool.h>
#include <stddef.h>

#include "app/sparse/sparse_job.h"
#include "common/config.h"
#include "common/data/dataset.h"
#include "common/data/sparsestream.h"
#include "common/err.h"

typedef struct pst_click_data {
    pst_dataset_t *train, *val, *test; /* CSR; val and test may have no rows */
    bool from_cache;                   /* data.train was read from its binary cache */
    pst_sparse_stream_t *stream;       /* data.buffer_rows > 0: data.train, read every epoch */
} pst_click_data_t;

void pst_click_data_fini(pst_click_data_t *d);

/* data.train split as a dense run splits it: 70/20/10 (the data.*_fraction keys), or with
 * data.test a validation share carved from data.train. Labels 0/1 or -1/+1 become 0/1. */
int pst_click_data_load(const pst_config_t *cfg, const pst_sparse_job_t *job, pst_click_data_t *d,
                        pst_err_t *err);

/* Streamed data.train (data.buffer_rows > 0): the rows stay in the file and pass through the
 * shuffle buffer every epoch. train and val are empty sets, test is data.test. */
int pst_click_data_open_stream(const pst_config_t *cfg, const pst_sparse_job_t *job,
                               pst_click_data_t *d, pst_err_t *err);

/* *out = rows idx[0..n) of all (a new set). */
int pst_click_data_take(const pst_dataset_t *all, const size_t *idx, size_t n, pst_dataset_t **out,
                        pst_err_t *err);

/* Entries of a CSR set. */
size_t pst_click_data_nnz(const pst_dataset_t *d);

#endif
