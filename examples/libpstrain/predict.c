/* An example of libpstrain: loads a model file, reads a CSV file whose header names its columns,
 * predicts every row and prints the predictions as `pstrain predict` does. Build it with
 *   cc predict.c $(pkg-config --cflags --libs pstrain) -o predict
 * and run it as ./predict MODEL DATA.csv. The CSV reading is deliberately simple (comma-separated,
 * no quoted fields); the cells go to the library as strings, and it parses them. */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include <pstrain.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct table {
    char **names; /* (n_cols) */
    char **cells; /* (n_rows, n_cols), row-major */
    int n_cols;
    size_t n_rows;
} table;

/* Splits line (modified in place) at commas into at most max fields; returns their count. */
static int split(char *line, char **fields, int max)
{
    line[strcspn(line, "\r\n")] = '\0';
    int n = 0;
    for (char *p = line; n < max; p++) {
        fields[n++] = p;
        p = strchr(p, ',');
        if (!p)
            break;
        *p = '\0';
    }
    return n;
}

static int read_table(const char *path, table *t)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return -1;
    }
    char line[65536], *fields[4096];
    memset(t, 0, sizeof *t);
    if (!fgets(line, sizeof line, f)) {
        fprintf(stderr, "%s: empty file\n", path);
        fclose(f);
        return -1;
    }
    t->n_cols = split(line, fields, 4096);
    t->names = malloc((size_t)t->n_cols * sizeof(char *));
    for (int j = 0; j < t->n_cols; j++)
        t->names[j] = strdup(fields[j]);
    size_t cap = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '\n' || line[0] == '\r')
            continue;
        int n = split(line, fields, 4096);
        if (n != t->n_cols) {
            fprintf(stderr, "%s:%zu: %d fields, the header has %d\n", path, t->n_rows + 2, n,
                    t->n_cols);
            fclose(f);
            return -1;
        }
        if (t->n_rows == cap) {
            cap = cap ? 2 * cap : 256;
            t->cells = realloc(t->cells, cap * (size_t)t->n_cols * sizeof(char *));
        }
        for (int j = 0; j < n; j++)
            t->cells[t->n_rows * (size_t)t->n_cols + (size_t)j] = strdup(fields[j]);
        t->n_rows++;
    }
    fclose(f);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL DATA.csv\n", argv[0]);
        return 2;
    }
    pstrain_error err;
    pstrain_model *model;
    if (pstrain_model_load(argv[1], &model, &err) != PSTRAIN_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    table t;
    if (read_table(argv[2], &t) != 0)
        return 1;
    /* Column-major string views of the table, each under its header name. */
    pstrain_column *cols = calloc((size_t)t.n_cols, sizeof *cols);
    const char **strings = malloc((t.n_rows ? t.n_rows : 1) * (size_t)t.n_cols * sizeof(char *));
    for (int j = 0; j < t.n_cols; j++) {
        for (size_t i = 0; i < t.n_rows; i++)
            strings[(size_t)j * t.n_rows + i] = t.cells[i * (size_t)t.n_cols + (size_t)j];
        cols[j].name = t.names[j];
        cols[j].strings = strings + (size_t)j * t.n_rows;
    }
    int width = pstrain_model_n_outputs(model);
    double *out = malloc((t.n_rows ? t.n_rows : 1) * (size_t)width * sizeof(double));
    int *classes = malloc((t.n_rows ? t.n_rows : 1) * sizeof(int));
    if (pstrain_predict(model, cols, t.n_cols, t.n_rows, out, classes, &err) != PSTRAIN_OK) {
        fprintf(stderr, "%s: %s\n", argv[2], err.message);
        return 1;
    }
    int n_classes = pstrain_model_n_classes(model);
    printf("prediction");
    for (int k = 0; k < n_classes; k++)
        printf(",p_%s", pstrain_model_class_name(model, k));
    printf("\n");
    for (size_t i = 0; i < t.n_rows; i++) {
        const double *row = out + i * (size_t)width;
        if (pstrain_model_task(model) == PSTRAIN_REGRESSION) {
            printf("%.9g\n", row[0]);
            continue;
        }
        printf("%s", pstrain_model_class_name(model, classes[i]));
        for (int k = 0; k < n_classes; k++)
            printf(",%.6g", row[k]);
        printf("\n");
    }
    pstrain_model_free(model);
    return 0;
}
