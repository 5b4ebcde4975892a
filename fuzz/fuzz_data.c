/* Fuzz target: the data readers. Input: a selector byte, then the file (IDX: two frames, images
 * and labels, as pst_fuzz_split_frames cuts them). The selector picks the reader and the task. */
#include <string.h>

#include "common/data/dataload.h"
#include "fuzz/fuzz.h"

static void check_dataset(const pst_dataset_t *d)
{
    pst_fuzz_check(d->y != NULL || d->n_rows == 0, "labels are there");
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
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
    pst_dataset_t *d = NULL;
    pst_err_t err = {0};
    int rc = pst_data_load(&spec, &d, &err);
    if (rc == PST_OK) {
        check_dataset(d);
        pst_dataset_destroy(&d);
    } else {
        pst_fuzz_check(err.msg[0] != '\0', "a refused file says why");
    }
    return 0;
}
