/* Fuzz target: sparse model files. Whatever unpacks must either be refused with an error or score
 * a batch of rows (keys the file holds and keys it does not) without faults. */
#include <stdlib.h>

#include "fuzz/fuzz.h"
#include "worker/model/sparsefile.h"
#include "worker/model/sparsescore.h"

enum { ROWS = 3, PER_ROW = 4 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pst_sparsefile_t sf;
    pst_err_t err = {0};
    if (pst_sparsefile_unpack(&sf, data, size, "fuzz", &err) != PST_OK) {
        pst_fuzz_check(err.msg[0] != '\0', "a refused sparse model file says why");
        return 0;
    }
    pst_sparse_scorer_t *scorer = pst_sparse_scorer_new(&sf, &err);
    if (scorer == NULL) {
        pst_fuzz_check(err.msg[0] != '\0', "a refused deep stack says why");
        pst_sparsefile_fini(&sf);
        return 0;
    }
    /* each row: two of the file's keys (if any), a small id and a large one */
    uint64_t keys[ROWS * PER_ROW];
    size_t row_ptr[ROWS + 1];
    for (size_t r = 0; r < ROWS; r++) {
        row_ptr[r] = r * PER_ROW;
        for (size_t j = 0; j < PER_ROW; j++) {
            size_t k = r * PER_ROW + j;
            keys[k] = j < 2 && sf.n_rows > 0 ? sf.keys[(k * 7) % sf.n_rows] : k * 977 + (j << 40);
        }
    }
    row_ptr[ROWS] = ROWS * PER_ROW;
    pst_sparse_batch_t b = {.n_rows = ROWS, .row_ptr = row_ptr, .col64 = keys};
    float prob[ROWS];
    if (pst_sparse_scorer_predict(scorer, &b, prob, &err) == PST_OK)
        for (int r = 0; r < ROWS; r++)
            pst_fuzz_check(prob[r] >= 0.0f && prob[r] <= 1.0f, "a probability");
    pst_sparse_scorer_destroy(&scorer);
    pst_sparsefile_fini(&sf);
    return 0;
}
