/* Fuzz target: the data readers. Input: a selector byte, then the file (IDX: two frames, images
 * and labels, as pst_fuzz_split_frames cuts them). The selector picks the reader and the task. */
#include <string.h>

#include "common/data/dataload.h"
#include "common/data/table.h"
#include "common/data/textfile.h"
#include "fuzz/fuzz.h"

static void check_dataset(const pst_dataset_t *d)
{
    pst_fuzz_check(d->y != NULL || d->n_rows == 0, "labels are there");
    /* a typed CSV's category codes index their column's vocabulary */
    for (size_t j = 0; d->table && j < d->table->n_cols; j++)
        for (size_t i = 0; d->table->cols[j].type == PST_COL_CATEGORICAL && i < d->n_rows; i++)
            pst_fuzz_check(d->x[i * d->n_features + j] >= 0 &&
                               d->x[i * d->n_features + j] < (float)d->table->cols[j].n_vocab,
                           "category code within the vocabulary");
    if (d->task == PST_TASK_CLASSIFICATION)
        for (size_t i = 0; i < d->n_rows; i++)
            pst_fuzz_check(d->y[i] >= 0 && d->y[i] < (float)d->n_classes, "class index in range");
    if (pst_dataset_is_sparse(d)) {
        pst_fuzz_check(d->row_ptr[0] == 0, "CSR starts at 0");
        for (size_t i = 0; i < d->n_rows; i++)
            pst_fuzz_check(d->row_ptr[i + 1] >= d->row_ptr[i], "CSR rows in order");
        for (size_t k = 0; k < d->row_ptr[d->n_rows]; k++)
            pst_fuzz_check(d->col_idx[k] < d->n_features, "column index within the width");
    }
}

/* spec read again on 3 byte ranges gives the serial result (rc, message or rows) exactly. The
 * ranges are parsed one after another on this thread (pst_text_set_inline): the same ranges and
 * join, without starting two threads for every input. */
static void check_same_as_serial(pst_data_spec_t *spec, int rc, const pst_dataset_t *d,
                                 const pst_err_t *err)
{
    spec->read_threads = 3;
    pst_dataset_t *p = NULL;
    pst_err_t perr = {0};
    pst_fuzz_check(pst_data_load(spec, &p, &perr) == rc, "the same code on 3 ranges");
    if (rc != PST_OK) {
        pst_fuzz_check(strcmp(perr.msg, err->msg) == 0, "the same message on 3 ranges");
        return;
    }
    pst_fuzz_check(p->n_rows == d->n_rows && p->n_features == d->n_features &&
                       p->n_classes == d->n_classes &&
                       pst_dataset_is_sparse(p) == pst_dataset_is_sparse(d),
                   "the same shape on 3 ranges");
    pst_fuzz_check(memcmp(p->y, d->y, d->n_rows * sizeof *d->y) == 0, "the same labels");
    if (!pst_dataset_is_sparse(d)) {
        pst_fuzz_check(memcmp(p->x, d->x, d->n_rows * d->n_features * sizeof *d->x) == 0,
                       "the same cells on 3 ranges");
    } else {
        size_t nnz = d->row_ptr[d->n_rows];
        pst_fuzz_check(p->row_ptr[p->n_rows] == nnz &&
                           memcmp(p->row_ptr, d->row_ptr, (d->n_rows + 1) * sizeof *d->row_ptr) ==
                               0 &&
                           memcmp(p->col_idx, d->col_idx, nnz * sizeof *d->col_idx) == 0 &&
                           memcmp(p->val, d->val, nnz * sizeof *d->val) == 0,
                       "the same rows on 3 ranges");
    }
    pst_dataset_destroy(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    pst_text_set_inline(true);
    static const char *const formats[] = {"csv", "libsvm", "idx"};
    static const char *const suffixes[] = {".csv", ".svm", "-images-idx3-ubyte"};
    int which = data[0] % 3;
    pst_data_spec_t spec;
    memset(&spec, 0, sizeof spec);
    spec.format = formats[which];
    spec.task = (pst_data_task_t)((data[0] >> 2) % 3);
    spec.target = (data[0] & 0x20) ? "y" : NULL;
    char images[512];
    if (which == 2) {
        pst_fuzz_frame_t frames[2];
        int n = pst_fuzz_split_frames(data + 1, size - 1, frames, 2, NULL);
        if (n < 2)
            return 0;
        spec.labels_path =
            pst_fuzz_scratch_file(frames[1].data, frames[1].len, "-labels-idx1-ubyte");
        char labels[512];
        strncpy(labels, spec.labels_path, sizeof labels - 1);
        labels[sizeof labels - 1] = '\0';
        strncpy(images, pst_fuzz_scratch_file(frames[0].data, frames[0].len, suffixes[2]),
                sizeof images - 1);
        images[sizeof images - 1] = '\0';
        spec.path = images;
        spec.labels_path = labels;
        pst_dataset_t *d = NULL;
        pst_err_t err = {0};
        if (pst_data_load(&spec, &d, &err) == PST_OK) {
            check_dataset(d);
            pst_dataset_destroy(&d);
        }
        return 0;
    }
    spec.path = pst_fuzz_scratch_file(data + 1, size - 1, suffixes[which]);
    spec.read_threads = 1;
    pst_dataset_t *d = NULL;
    pst_err_t err = {0};
    int rc = pst_data_load(&spec, &d, &err);
    if (rc == PST_OK)
        check_dataset(d);
    else
        pst_fuzz_check(err.msg[0] != '\0', "a refused file says why");
    if (which == 1 && size > 8) /* LIBSVM on byte ranges: the serial reader's result exactly */
        check_same_as_serial(&spec, rc, d, &err);
    pst_dataset_destroy(&d);
    return 0;
}
