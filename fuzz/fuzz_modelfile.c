/* Fuzz target: model and ensemble files, with or without their checksum trailer. Whatever unpacks
 * must either build or be refused with an error, and a model that builds must predict on a batch of
 * rows without faults. */
#include <stdlib.h>

#include "common/data/dataset.h"
#include "common/filesum.h"
#include "fuzz/fuzz.h"
#include "worker/model/ensemble.h"
#include "worker/model/modelfile.h"

enum { ROWS = 2, MAX_INPUTS = 1 << 16 };

/* Two raw rows of zeros as wide as the file's inputs, or NULL when that is too wide to bother. */
static pst_dataset_t *zero_rows(int n_inputs)
{
    if (n_inputs <= 0 || n_inputs > MAX_INPUTS)
        return NULL;
    pst_dataset_t *ds = pst_dataset_new(ROWS, (size_t)n_inputs, PST_TASK_CLASSIFICATION);
    pst_fuzz_check(ds != NULL, "allocation");
    return ds;
}

static void try_model(const uint8_t *data, size_t size)
{
    pst_modelfile_t mf;
    pst_err_t err = {0};
    if (pst_modelfile_unpack(&mf, data, size, "fuzz", &err) != PST_OK) {
        pst_fuzz_check(err.msg[0] != '\0', "a refused model file says why");
        return;
    }
    pst_model_t *model = pst_modelfile_build(&mf, ROWS, &err);
    pst_dataset_t *ds = model ? zero_rows(mf.n_inputs) : NULL;
    if (ds != NULL && pst_modelfile_preprocess(&mf, ds, &err) == PST_OK) {
        pst_fuzz_check((int)ds->n_features == pst_model_n_inputs(model), "preprocessed width");
        const float *out = pst_model_forward(model, ds->x, ROWS, false, NULL);
        pst_fuzz_check(out != NULL, "forward returns outputs");
    }
    pst_dataset_destroy(&ds);
    pst_model_destroy(&model);
    pst_modelfile_fini(&mf);
}

static void try_ensemble(const uint8_t *data, size_t size)
{
    pst_ensemble_t e;
    pst_err_t err = {0};
    if (pst_ensemble_unpack(&e, data, size, "fuzz", &err) != PST_OK) {
        pst_fuzz_check(err.msg[0] != '\0', "a refused ensemble file says why");
        return;
    }
    pst_dataset_t *ds = zero_rows(e.members[0].n_inputs);
    if (ds != NULL) {
        int width = pst_ensemble_width(e.members[0].task, e.members[0].n_classes);
        pst_fuzz_check(width >= 1, "ensemble output width");
        float *out = malloc((size_t)width * ROWS * sizeof *out);
        pst_fuzz_check(out != NULL, "allocation");
        (void)pst_ensemble_apply(&e, ds, out, &err);
        free(out);
    }
    pst_dataset_destroy(&ds);
    pst_ensemble_fini(&e);
}

/* Files end in a checksum trailer (common/filesum): a file that passes it is decoded without it;
 * anything else is tried as the bare message too, so both layers are fuzzed. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t content = size;
    pst_err_t err = {0};
    if (pst_filesum_check(data, size, "fuzz", &content, &err) != PST_OK) {
        pst_fuzz_check(err.msg[0] != '\0', "a refused trailer says why");
        content = size;
    } else {
        pst_fuzz_check(content + PST_FILESUM_TRAILER == size, "the trailer is 8 bytes");
    }
    try_model(data, content);
    try_ensemble(data, content);
    return 0;
}
