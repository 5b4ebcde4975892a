/* An example of libpstrain: loads a model file, reads a CSV file whose header names its columns,
 * predicts every row and prints the predictions as `pstrain predict` does. Build it with
 *   cc predict.c $(pkg-config --cflags --libs pstrain) -o predict
 * and run it as ./predict MODEL DATA.csv [ID_COLUMN]. With ID_COLUMN, each output row starts
 * with that column's cell (as `pstrain predict --id COL`). The CSV reader takes RFC 4180 files:
 * quoted fields (commas, line ends, doubled quotes inside), a UTF-8 byte order mark, CRLF line
 * ends; blanks around an unquoted field are dropped, as pstrain's own reader drops them. Every cell
 * goes to the library as a string: it parses numbers, booleans and dates and encodes categories
 * itself. */
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

/* The whole file, NUL-terminated, or NULL. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return NULL;
    }
    size_t len = 0, cap = 1 << 16;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len - 1 == 0)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

/* One record from *p (advanced past it) into fields (at most max, each malloc'd); returns the
 * field count, 0 at the end of the text, -1 for an unterminated quote. */
static int next_record(const char **p, char **fields, int max)
{
    const char *s = *p;
    if (*s == '\0')
        return 0;
    int n = 0;
    for (;;) {
        size_t cap = 64, len = 0;
        char *f = malloc(cap);
        int quoted = *s == '"';
        if (quoted) {
            for (s++;; s++) {
                if (*s == '\0') {
                    free(f);
                    return -1;
                }
                if (*s == '"' && s[1] != '"')
                    break;
                if (*s == '"')
                    s++;
                if (len + 2 > cap)
                    f = realloc(f, cap *= 2);
                f[len++] = *s;
            }
            s++;
        }
        for (; *s && *s != ',' && *s != '\n' && *s != '\r'; s++) {
            if (len + 2 > cap)
                f = realloc(f, cap *= 2);
            f[len++] = *s;
        }
        f[len] = '\0';
        if (!quoted) { /* blanks around an unquoted field are not part of it */
            size_t skip = strspn(f, " \t");
            while (len > skip && (f[len - 1] == ' ' || f[len - 1] == '\t'))
                f[--len] = '\0';
            memmove(f, f + skip, len - skip + 1);
        }
        if (n < max)
            fields[n++] = f;
        else
            free(f);
        if (*s != ',')
            break;
        s++;
    }
    if (*s == '\r')
        s++;
    if (*s == '\n')
        s++;
    *p = s;
    return n;
}

static int read_table(const char *path, table *t)
{
    char *text = slurp(path), *fields[4096];
    if (!text)
        return -1;
    memset(t, 0, sizeof *t);
    const char *p = text;
    if (strncmp(p, "\xef\xbb\xbf", 3) == 0)
        p += 3;
    t->n_cols = next_record(&p, fields, 4096);
    if (t->n_cols <= 0) {
        fprintf(stderr, "%s: no header\n", path);
        free(text);
        return -1;
    }
    t->names = malloc((size_t)t->n_cols * sizeof(char *));
    memcpy(t->names, fields, (size_t)t->n_cols * sizeof(char *));
    size_t cap = 0;
    int n;
    while ((n = next_record(&p, fields, 4096)) != 0) {
        if (n == 1 && fields[0][0] == '\0') { /* a blank line */
            free(fields[0]);
            continue;
        }
        if (n != t->n_cols) {
            fprintf(stderr, "%s: row %zu: %d fields, the header has %d\n", path, t->n_rows + 1, n,
                    t->n_cols);
            free(text);
            return -1;
        }
        if (t->n_rows == cap) {
            cap = cap ? 2 * cap : 256;
            t->cells = realloc(t->cells, cap * (size_t)t->n_cols * sizeof(char *));
        }
        memcpy(t->cells + t->n_rows * (size_t)t->n_cols, fields, (size_t)n * sizeof(char *));
        t->n_rows++;
    }
    free(text);
    return 0;
}

/* Writes s as one CSV field, quoted when it holds a comma, a quote or a line end. */
static void print_field(const char *s)
{
    if (strpbrk(s, ",\"\r\n") == NULL) {
        fputs(s, stdout);
        return;
    }
    putchar('"');
    for (; *s; s++) {
        if (*s == '"')
            putchar('"');
        putchar(*s);
    }
    putchar('"');
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: %s MODEL DATA.csv [ID_COLUMN]\n", argv[0]);
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
    int id = -1;
    for (int j = 0; argc == 4 && j < t.n_cols; j++)
        if (strcmp(t.names[j], argv[3]) == 0)
            id = j;
    if (argc == 4 && id < 0) {
        fprintf(stderr, "%s: no column '%s'\n", argv[2], argv[3]);
        return 1;
    }
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
    if (id >= 0) {
        print_field(t.names[id]);
        putchar(',');
    }
    printf("prediction");
    for (int k = 0; k < n_classes; k++) {
        printf(",p_");
        print_field(pstrain_model_class_name(model, k));
    }
    printf("\n");
    for (size_t i = 0; i < t.n_rows; i++) {
        const double *row = out + i * (size_t)width;
        if (id >= 0) {
            print_field(t.cells[i * (size_t)t.n_cols + (size_t)id]);
            putchar(',');
        }
        if (pstrain_model_task(model) == PSTRAIN_REGRESSION) {
            printf("%.9g\n", row[0]);
            continue;
        }
        print_field(pstrain_model_class_name(model, classes[i]));
        for (int k = 0; k < n_classes; k++)
            printf(",%.6g", row[k]);
        printf("\n");
    }
    pstrain_model_free(model);
    return 0;
}
