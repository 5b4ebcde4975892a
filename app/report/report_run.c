/* Loading a run directory's JSON files for the report. */
#include "app/report/report_run.h"

#include <errno.h>
#include <stdbool.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/atomicfile.h"

#define MAX_FILE (512u << 20) /* a metrics.jsonl of a very long run still fits */

/* Reads and parses path; *doc NULL when the file does not exist. */
static int load_json(const char *path, cJSON **doc, pst_err_t *err)
{
    *doc = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return PST_OK;
    unsigned char *text;
    size_t len;
    int rc = pst_read_file(path, MAX_FILE, &text, &len, err);
    if (rc != PST_OK)
        return rc;
    *doc = cJSON_Parse((const char *)text);
    free(text);
    return *doc ? PST_OK : pst_err_set(err, PST_EFORMAT, "%s: not valid JSON", path);
}

/* metrics.jsonl: one JSON object a line; a bad line is an error naming file:line. */
static int load_lines(const char *path, cJSON *lines, pst_err_t *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? PST_OK
                               : pst_err_set(err, PST_EIO, "%s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0, n = 0;
    int rc = PST_OK;
    while (rc == PST_OK && getline(&line, &cap, f) >= 0) {
        n++;
        if (line[strspn(line, " \t\r\n")] == '\0')
            continue;
        cJSON *obj = cJSON_Parse(line);
        if (!cJSON_IsObject(obj)) {
            cJSON_Delete(obj);
            rc = pst_err_set(err, PST_EFORMAT, "%s:%zu: not a JSON object", path, n);
        } else {
            cJSON_AddItemToArray(lines, obj);
        }
    }
    free(line);
    fclose(f);
    return rc;
}

int pst_report_run_load(pst_report_run_t *run, const char *dir, pst_err_t *err)
{
    memset(run, 0, sizeof *run);
    snprintf(run->dir, sizeof run->dir, "%s", dir);
    run->lines = cJSON_CreateArray();
    char path[1200];
    snprintf(path, sizeof path, "%s/report.json", dir);
    int rc = load_json(path, &run->report, err);
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    if (rc == PST_OK)
        rc = load_lines(path, run->lines, err);
    snprintf(path, sizeof path, "%s/sweep_results.json", dir);
    if (rc == PST_OK)
        rc = load_json(path, &run->sweep, err);
    if (rc == PST_OK && !run->report && cJSON_GetArraySize(run->lines) == 0)
        rc = pst_err_set(err, PST_ENOTFOUND,
                         "%s: no report.json or metrics.jsonl: not a run "
                         "directory",
                         dir);
    const cJSON *name = run->report ? cJSON_GetObjectItem(run->report, "name") : NULL;
    const char *base = strrchr(dir, '/');
    snprintf(run->name, sizeof run->name, "%s",
             cJSON_IsString(name) ? name->valuestring
             : base && base[1]    ? base + 1
                                  : dir);
    return rc;
}

void pst_report_run_fini(pst_report_run_t *run)
{
    cJSON_Delete(run->report);
    cJSON_Delete(run->lines);
    cJSON_Delete(run->sweep);
    memset(run, 0, sizeof *run);
}

static bool is_curve_line(const cJSON *l)
{
    return !cJSON_GetObjectItem(l, "task") && !cJSON_GetObjectItem(l, "step");
}

const char *pst_report_run_axis(const pst_report_run_t *run)
{
    const cJSON *l;
    cJSON_ArrayForEach(l, run->lines)
    {
        if (!is_curve_line(l))
            continue;
        if (cJSON_IsNumber(cJSON_GetObjectItem(l, "epoch")))
            return "epoch";
        if (cJSON_IsNumber(cJSON_GetObjectItem(l, "round")))
            return "round";
    }
    return NULL;
}

int pst_report_run_series(const pst_report_run_t *run, const char *key, double **x, double **y)
{
    *x = *y = NULL;
    const char *axis = pst_report_run_axis(run);
    int cap = cJSON_GetArraySize(run->lines), n = 0;
    if (!axis || cap == 0 || !(*x = malloc((size_t)cap * sizeof **x)) ||
        !(*y = malloc((size_t)cap * sizeof **y))) {
        free(*x);
        *x = NULL;
        return 0;
    }
    const cJSON *l;
    cJSON_ArrayForEach(l, run->lines)
    {
        const cJSON *a = cJSON_GetObjectItem(l, axis), *v = cJSON_GetObjectItem(l, key);
        if (is_curve_line(l) && cJSON_IsNumber(a) && cJSON_IsNumber(v)) {
            (*x)[n] = a->valuedouble;
            (*y)[n++] = v->valuedouble;
        }
    }
    if (n == 0) {
        free(*x);
        free(*y);
        *x = *y = NULL;
    }
    return n;
}

double pst_report_num(const cJSON *obj, ...)
{
    va_list ap;
    va_start(ap, obj);
    for (const char *k = va_arg(ap, const char *); k && obj; k = va_arg(ap, const char *))
        obj = cJSON_GetObjectItem(obj, k);
    va_end(ap);
    return cJSON_IsNumber(obj) ? obj->valuedouble : NAN;
}
