/* Fuzz target: libpstrain, the prediction library, as a program embedding it uses it: a model file
 * loaded with pstrain_model_load, then rows of cells predicted through the library's row reader
 * (lib/cells.c: cells matched by column name, read as `pstrain predict` reads CSV fields). Input:
 * a control byte, then two frames (pst_fuzz_split_frames): the model or ensemble file, and the
 * cells as comma-separated text. Control bit 0 gives the cells as numbers (parsed from the text)
 * instead of strings; bit 1 leaves the model's last input out, which must be refused. Each input
 * column takes ROWS cells from the text in turn. Whatever loads must predict or refuse with a
 * message, and a prediction names classes the model has. */
#include <stdlib.h>
#include <string.h>

#include "fuzz/fuzz.h"
#include "pstrain.h"

enum { ROWS = 3, MAX_CELLS = 64, MAX_COLUMNS = 256 };

/* Splits text (len bytes, no NUL needed) at commas into at most MAX_CELLS NUL-ended copies in
 * store; returns how many. */
static int split_cells(const uint8_t *text, size_t len, char *store, char **cells)
{
    int n = 0;
    size_t at = 0;
    cells[n++] = store;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ',' && n < MAX_CELLS) {
            store[at++] = '\0';
            cells[n++] = store + at;
        } else {
            store[at++] = text[i] == '\0' ? ' ' : (char)text[i];
        }
    }
    store[at] = '\0';
    return n;
}

static void predict(const pstrain_model *m, int control, const uint8_t *text, size_t len)
{
    int n_inputs = pstrain_model_n_inputs(m), n_out = pstrain_model_n_outputs(m);
    pst_fuzz_check(n_inputs >= 0 && n_out >= 1, "a loaded model has inputs and outputs");
    if (n_inputs > MAX_COLUMNS)
        return;
    char *store = malloc(len + 1), *cells[MAX_CELLS];
    pst_fuzz_check(store != NULL, "allocation");
    int n_cells = split_cells(text, len, store, cells);
    pstrain_column cols[MAX_COLUMNS];
    const char *strings[MAX_COLUMNS][ROWS];
    double numbers[MAX_COLUMNS][ROWS];
    int k = 0;
    for (int i = 0; i < n_inputs; i++) {
        const char *name = pstrain_model_input_name(m, i);
        pst_fuzz_check(name != NULL, "every input has a name");
        for (int r = 0; r < ROWS; r++, k++) {
            strings[i][r] = cells[k % n_cells];
            numbers[i][r] = strtod(cells[k % n_cells], NULL);
        }
        cols[i] = (pstrain_column){.name = name};
        if (control & 1)
            cols[i].numbers = numbers[i];
        else
            cols[i].strings = strings[i];
    }
    int n_cols = (control & 2) && n_inputs > 0 ? n_inputs - 1 : n_inputs;
    double *out = malloc((size_t)n_out * ROWS * sizeof *out);
    int classes[ROWS];
    pst_fuzz_check(out != NULL, "allocation");
    pstrain_error err = {0};
    int rc = pstrain_predict(m, cols, n_cols, ROWS, out, classes, &err);
    if (n_cols < n_inputs)
        pst_fuzz_check(rc != PSTRAIN_OK, "a missing input is refused");
    if (rc != PSTRAIN_OK) {
        pst_fuzz_check(err.message[0] != '\0', "a refused prediction says why");
    } else if (pstrain_model_task(m) == PSTRAIN_CLASSIFICATION) {
        for (int r = 0; r < ROWS; r++)
            pst_fuzz_check(classes[r] >= 0 && classes[r] < pstrain_model_n_classes(m),
                           "a predicted class the model has");
    }
    free(out);
    free(store);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    pst_fuzz_frame_t frames[2];
    int n = pst_fuzz_split_frames(data + 1, size - 1, frames, 2, NULL);
    if (n < 1)
        return 0;
    const char *path = pst_fuzz_scratch_file(frames[0].data, frames[0].len, ".pst");
    pstrain_model *m = NULL;
    pstrain_error err = {0};
    if (pstrain_model_load(path, &m, &err) != PSTRAIN_OK) {
        pst_fuzz_check(m == NULL && err.message[0] != '\0', "a refused model file says why");
        return 0;
    }
    const uint8_t *text = n > 1 ? frames[1].data : (const uint8_t *)"";
    predict(m, data[0], text, n > 1 ? frames[1].len : 0);
    pstrain_model_free(m);
    return 0;
}
