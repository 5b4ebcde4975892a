/* pst_lib_threads MODEL DATA.csv: loads MODEL with libpstrain, predicts every row of DATA.csv (its
 * cells as strings, columns by header name) once, then from four threads at once, ten times each,
 * on the one loaded model; exits 0 when every concurrent result equals the first bit for bit.
 * libpstrain_example_test.sh runs it on a model trained by pstrain train. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/data/csvtok.h"
#include "include/pstrain.h"

enum { N_THREADS = 4, REPEATS = 10, MAX_COLS = 256 };

typedef struct job {
    const pstrain_model *m;
    const pstrain_column *cols;
    int n_cols;
    size_t n_rows, n_out;
    const double *first;
    int bad;
} job_t;

static void *run(void *arg)
{
    job_t *j = arg;
    double *out = malloc(j->n_rows * j->n_out * sizeof(double));
    for (int r = 0; r < REPEATS && out; r++) {
        pstrain_error err;
        if (pstrain_predict(j->m, j->cols, j->n_cols, j->n_rows, out, NULL, &err) != PSTRAIN_OK ||
            memcmp(out, j->first, j->n_rows * j->n_out * sizeof(double)) != 0)
            j->bad++;
    }
    free(out);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL DATA.csv\n", argv[0]);
        return 2;
    }
    pstrain_error err;
    pstrain_model *m;
    if (pstrain_model_load(argv[1], &m, &err) != PSTRAIN_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    pst_err_t e = {0};
    pst_csvtok_t *t = pst_csvtok_open(argv[2], &e);
    const pst_csv_record_t *rec;
    if (!t || pst_csvtok_next(t, &rec, &e) != 1 || rec->n_fields > MAX_COLS) {
        fprintf(stderr, "%s: no header (%s)\n", argv[2], e.msg);
        return 1;
    }
    int n_cols = (int)rec->n_fields;
    pstrain_column cols[MAX_COLS];
    char **cells[MAX_COLS];
    size_t n_rows = 0, cap = 1024;
    for (int c = 0; c < n_cols; c++) {
        cols[c].name = strdup(rec->fields[c]);
        cells[c] = malloc(cap * sizeof(char *));
    }
    while (pst_csvtok_next(t, &rec, &e) == 1 && (int)rec->n_fields == n_cols) {
        if (n_rows == cap) {
            cap *= 2;
            for (int c = 0; c < n_cols; c++)
                cells[c] = realloc(cells[c], cap * sizeof(char *));
        }
        for (int c = 0; c < n_cols; c++)
            cells[c][n_rows] = strdup(rec->fields[c]);
        n_rows++;
    }
    pst_csvtok_destroy(&t);
    for (int c = 0; c < n_cols; c++) {
        cols[c].numbers = NULL;
        cols[c].strings = (const char *const *)cells[c];
    }
    size_t n_out = (size_t)pstrain_model_n_outputs(m);
    double *first = malloc((n_rows ? n_rows : 1) * n_out * sizeof(double));
    if (pstrain_predict(m, cols, n_cols, n_rows, first, NULL, &err) != PSTRAIN_OK) {
        fprintf(stderr, "%s: %s\n", argv[2], err.message);
        return 1;
    }
    pthread_t threads[N_THREADS];
    job_t jobs[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        jobs[i] = (job_t){m, cols, n_cols, n_rows, n_out, first, 0};
        pthread_create(&threads[i], NULL, run, &jobs[i]);
    }
    int bad = 0;
    for (int i = 0; i < N_THREADS; i++) {
        pthread_join(threads[i], NULL);
        bad += jobs[i].bad;
    }
    printf("%zu rows, %d threads x %d predictions: %d differ from the single-threaded result\n",
           n_rows, N_THREADS, REPEATS, bad);
    pstrain_model_free(m);
    return bad ? 1 : 0;
}
