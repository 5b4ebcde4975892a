/* Mirrors metrics.jsonl lines into TensorBoard event files, one writer per run. */
#include "app/rundir_tb.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

#define MAX_SCALARS 256

int pst_rundir_tb_open(pst_rundir_tb_t *tb, const char *dir, pst_err_t *err)
{
    memset(tb, 0, sizeof *tb);
    snprintf(tb->dir, sizeof tb->dir, "%s", dir);
    tb->root = pst_tbwriter_new(dir, err);
    return tb->root ? PST_OK : pst_err_code(err, PST_EIO);
}

void pst_rundir_tb_close(pst_rundir_tb_t *tb)
{
    pst_tbwriter_destroy(&tb->root);
    for (int i = 0; i < tb->n_runs; i++)
        pst_tbwriter_destroy(&tb->runs[i].w);
    free(tb->runs);
    tb->runs = NULL;
    tb->n_runs = 0;
}

pst_tbwriter_t *pst_rundir_tb_run(pst_rundir_tb_t *tb, const char *name, pst_err_t *err)
{
    for (int i = 0; i < tb->n_runs; i++)
        if (strcmp(tb->runs[i].name, name) == 0)
            return tb->runs[i].w;
    pst_rundir_tb_run_t *grown = realloc(tb->runs, (size_t)(tb->n_runs + 1) * sizeof *grown);
    if (!grown) {
        pst_err_set(err, PST_ENOMEM, "out of memory");
        return NULL;
    }
    tb->runs = grown;
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/%s", tb->dir, name);
    pst_tbwriter_t *w = pst_tbwriter_new(dir, err);
    if (!w)
        return NULL;
    pst_rundir_tb_run_t *r = &tb->runs[tb->n_runs++];
    snprintf(r->name, sizeof r->name, "%s", name);
    r->w = w;
    return w;
}

void pst_rundir_tb_task_run(const char *label, const cJSON *metrics, char *name, size_t cap,
                            long *step)
{
    const char *at = strstr(label, " @");
    size_t len = at ? (size_t)(at - label) : strlen(label);
    size_t j = 0;
    for (size_t i = 0; i < len && j + 1 < cap; i++)
        name[j++] = isalnum((unsigned char)label[i]) || label[i] == '-' ? label[i] : '_';
    name[j] = '\0';
    const cJSON *epochs = metrics ? cJSON_GetObjectItem(metrics, "epochs") : NULL;
    if (at)
        *step = atol(at + 2);
    else
        *step = cJSON_IsNumber(epochs) ? (long)epochs->valuedouble : 0;
}

/* Appends the numbers of obj (recursively, "prefix/key") to tags/values. */
static void collect(const cJSON *obj, bool top, const char *prefix, char (*tags)[128],
                    double *values, int *n)
{
    for (const cJSON *it = obj->child; it && *n < MAX_SCALARS; it = it->next) {
        if (!it->string ||
            (top && (strcmp(it->string, "step") == 0 || strcmp(it->string, "epoch") == 0 ||
                     strcmp(it->string, "round") == 0)))
            continue;
        char tag[128];
        snprintf(tag, sizeof tag, "%s%s%s", prefix, prefix[0] ? "/" : "", it->string);
        if (cJSON_IsNumber(it)) {
            snprintf(tags[*n], sizeof tags[*n], "%s", tag);
            values[(*n)++] = it->valuedouble;
        } else if (cJSON_IsObject(it)) {
            collect(it, false, tag, tags, values, n);
        }
    }
}

/* The line's step: its "step", "epoch" or "round", else the next of a running count. */
static long line_step(pst_rundir_tb_t *tb, const cJSON *line)
{
    const char *keys[] = {"step", "epoch", "round"};
    for (int k = 0; k < 3; k++) {
        const cJSON *v = cJSON_GetObjectItem(line, keys[k]);
        if (cJSON_IsNumber(v))
            return (long)v->valuedouble;
    }
    return tb->next_step++;
}

static void write_scalars(pst_rundir_tb_t *tb, pst_tbwriter_t *w, long step, const cJSON *line)
{
    char tags[MAX_SCALARS][128];
    double values[MAX_SCALARS];
    const char *tag_p[MAX_SCALARS];
    int n = 0;
    /* Step records share names with the epoch lines but count steps: a tag group of their own
     * keeps the two x axes apart. */
    collect(line, true, cJSON_GetObjectItem(line, "step") ? "step" : "", tags, values, &n);
    for (int i = 0; i < n; i++)
        tag_p[i] = tags[i];
    pst_err_t err = {0};
    if (pst_tbwriter_scalars(w, step, tag_p, values, n, &err) != PST_OK && !tb->warned) {
        pst_warn("TensorBoard events: %s", err.msg);
        tb->warned = true;
    }
}

void pst_rundir_tb_line(pst_rundir_tb_t *tb, const char *label, const cJSON *line)
{
    if (!tb->root)
        return;
    if (!label) {
        write_scalars(tb, tb->root, line_step(tb, line), line);
        return;
    }
    char name[64];
    long step;
    pst_rundir_tb_task_run(label, line, name, sizeof name, &step);
    pst_err_t err = {0};
    pst_tbwriter_t *w = pst_rundir_tb_run(tb, name, &err);
    if (w)
        write_scalars(tb, w, step, line);
    else if (!tb->warned) {
        pst_warn("TensorBoard events: %s", err.msg);
        tb->warned = true;
    }
}
