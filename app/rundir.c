/* Run directory creation, metrics lines and JSON reports. */
#include "app/rundir.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/atomicfile.h"

const char *pst_rundir_file(const pst_rundir_t *rd, const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", rd->path, name);
    return buf;
}

int pst_rundir_check_new(const char *out, bool force, pst_err_t *err)
{
    if (!out || !out[0] || force)
        return PST_OK;
    DIR *d = opendir(out);
    if (!d)
        return PST_OK;
    bool empty = true;
    for (struct dirent *e; empty && (e = readdir(d));)
        empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(d);
    return empty ? PST_OK
                 : pst_err_set(err, PST_ESTATE,
                               "--out %s: the directory exists and is not empty; choose another "
                               "or pass --force to write into it",
                               out);
}

int pst_rundir_choose(const pst_config_t *cfg, const char *out, char *path, size_t cap,
                      pst_err_t *err)
{
    if (out && out[0]) {
        snprintf(path, cap, "%s", out);
        return PST_OK;
    }
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    for (int i = 1; i < 1000; i++) {
        if (i == 1)
            snprintf(path, cap, "runs/%s-%s", cfg->name, stamp);
        else
            snprintf(path, cap, "runs/%s-%s-%d", cfg->name, stamp, i);
        struct stat sb;
        if (stat(path, &sb) != 0)
            return PST_OK;
    }
    return pst_err_set(err, PST_EIO, "cannot find a free run directory name under runs/");
}

int pst_rundir_open(pst_rundir_t *rd, const pst_config_t *cfg, const char *out, pst_err_t *err)
{
    bool append = rd->append;
    memset(rd, 0, sizeof *rd);
    rd->append = append;
    int rc = pst_rundir_choose(cfg, out, rd->path, sizeof rd->path, err);
    if (rc != PST_OK)
        return rc;
    if ((rc = pst_mkdir_p(rd->path, err)) != PST_OK)
        return rc;
    char *yaml = pst_config_to_string(cfg);
    if (!yaml)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    char file[1100];
    rc = pst_write_file_atomic(pst_rundir_file(rd, "config.yaml", file, sizeof file), yaml,
                               strlen(yaml), err);
    free(yaml);
    if (rc != PST_OK)
        return rc;
    rd->metrics =
        fopen(pst_rundir_file(rd, "metrics.jsonl", file, sizeof file), rd->append ? "a" : "w");
    if (!rd->metrics)
        return pst_err_set(err, PST_EIO, "%s: cannot create: %s", file, strerror(errno));
    return cfg->output.tensorboard ? pst_rundir_tb_open(&rd->tb, rd->path, err) : PST_OK;
}

void pst_rundir_close(pst_rundir_t *rd)
{
    if (rd->metrics)
        fclose(rd->metrics);
    rd->metrics = NULL;
    pst_rundir_tb_close(&rd->tb);
}

void pst_json_add_number(cJSON *obj, const char *name, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(obj, name, v);
    else
        cJSON_AddNullToObject(obj, name);
}

/* Appends line to metrics.jsonl as one JSON line, mirrors it to the event files (in the sub-run
 * of label, or the root run) and frees it. */
static void write_line(pst_rundir_t *rd, const char *label, cJSON *line)
{
    char *text = cJSON_PrintUnformatted(line);
    if (text) {
        fprintf(rd->metrics, "%s\n", text);
        fflush(rd->metrics);
        /* cJSON may print a number with 15 digits that reads back a hair off the double; the
         * events carry the value as metrics.jsonl states it, so they are read back from it. */
        cJSON *written = cJSON_Parse(text);
        if (written)
            pst_rundir_tb_line(&rd->tb, label, written);
        cJSON_Delete(written);
    }
    free(text);
    cJSON_Delete(line);
}

void pst_rundir_log_line(pst_rundir_t *rd, const cJSON *line)
{
    if (rd->metrics)
        write_line(rd, NULL, cJSON_Duplicate(line, true));
}

#define METRICS_MAX_BYTES ((size_t)1 << 30)

/* Whether one line of metrics.jsonl is an epoch's, at or past first_epoch. */
static bool replayed_line(const char *line, size_t len, long first_epoch)
{
    cJSON *doc = cJSON_ParseWithLength(line, len);
    const cJSON *epoch = doc ? cJSON_GetObjectItemCaseSensitive(doc, "epoch") : NULL;
    bool replayed = cJSON_IsNumber(epoch) && epoch->valuedouble >= (double)first_epoch;
    cJSON_Delete(doc);
    return replayed;
}

int pst_rundir_keep_epochs_before(pst_rundir_t *rd, long first_epoch, pst_err_t *err)
{
    if (!rd->metrics)
        return PST_OK;
    fclose(rd->metrics);
    rd->metrics = NULL;
    char file[1100];
    pst_rundir_file(rd, "metrics.jsonl", file, sizeof file);
    unsigned char *text;
    size_t len;
    int rc = pst_read_file(file, METRICS_MAX_BYTES, &text, &len, err);
    if (rc != PST_OK)
        return rc;
    /* Kept lines are compacted in place, then written over the file at once. */
    size_t kept = 0;
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(text + at, '\n', len - at);
        if (!nl)
            break; /* a last line without its newline was torn by the interruption: dropped */
        size_t end = (size_t)((const unsigned char *)nl - text) + 1;
        if (!replayed_line((const char *)text + at, end - at, first_epoch)) {
            memmove(text + kept, text + at, end - at);
            kept += end - at;
        }
        at = end;
    }
    rc = pst_write_file_atomic(file, text, kept, err);
    free(text);
    if (rc == PST_OK && !(rd->metrics = fopen(file, "a")))
        rc = pst_err_set(err, PST_EIO, "%s: cannot reopen: %s", file, strerror(errno));
    return rc;
}

int pst_rundir_check_resume(const char *dir, pst_err_t *err)
{
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return pst_err_set(err, PST_ENOTFOUND,
                           "--resume %s: no such run directory (--resume continues a run; it "
                           "never starts one)",
                           dir);
    char ckpt[1100];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoints", dir);
    if (stat(ckpt, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return pst_err_set(err, PST_ENOTFOUND,
                           "--resume %s: the run has no checkpoints to resume from (%s is "
                           "missing; set cluster.checkpoint_every)",
                           dir, ckpt);
    return PST_OK;
}

void pst_rundir_log_epoch(pst_rundir_t *rd, const pst_epoch_stats_t *es)
{
    if (!rd->metrics)
        return;
    cJSON *line = cJSON_CreateObject();
    cJSON_AddNumberToObject(line, "epoch", es->epoch);
    pst_json_add_number(line, "train_loss", es->train_loss);
    pst_json_add_number(line, "val_loss", es->val_loss);
    char name[64];
    snprintf(name, sizeof name, "val_%s", es->val_metric_name);
    pst_json_add_number(line, name, es->val_metric);
    pst_json_add_number(line, "lr", es->lr);
    pst_json_add_number(line, "seconds", es->seconds);
    pst_json_add_number(line, "samples_per_s", es->samples_per_s);
    cJSON_AddBoolToObject(line, "improved", es->improved);
    if (isfinite(es->epsilon))
        pst_json_add_number(line, "epsilon", es->epsilon);
    write_line(rd, NULL, line);
}

void pst_rundir_log_task(pst_rundir_t *rd, const char *label, const cJSON *metrics)
{
    if (!rd->metrics)
        return;
    cJSON *line = cJSON_Duplicate(metrics, true);
    cJSON_AddStringToObject(line, "task", label);
    write_line(rd, label, line);
}

int pst_rundir_write_json(const pst_rundir_t *rd, const char *name, const cJSON *doc,
                          pst_err_t *err)
{
    char *text = cJSON_Print(doc);
    if (!text)
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    char file[1100];
    size_t len = strlen(text);
    text[len] = '\n';
    int rc =
        pst_write_file_atomic(pst_rundir_file(rd, name, file, sizeof file), text, len + 1, err);
    free(text);
    return rc;
}

static cJSON *double_array(const double *v, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(a, isfinite(v[i]) ? cJSON_CreateNumber(v[i]) : cJSON_CreateNull());
    return a;
}

void pst_json_add_class_metrics(cJSON *obj, const pst_class_metrics_t *m)
{
    int k = m->n_classes;
    pst_json_add_number(obj, "n", (double)m->n);
    pst_json_add_number(obj, "accuracy", m->accuracy);
    pst_json_add_number(obj, "precision_macro", m->precision_macro);
    pst_json_add_number(obj, "recall_macro", m->recall_macro);
    pst_json_add_number(obj, "f1_macro", m->f1_macro);
    pst_json_add_number(obj, "specificity_macro", m->specificity_macro);
    pst_json_add_number(obj, "precision_micro", m->precision_micro);
    pst_json_add_number(obj, "recall_micro", m->recall_micro);
    pst_json_add_number(obj, "f1_micro", m->f1_micro);
    pst_json_add_number(obj, "specificity_micro", m->specificity_micro);
    pst_json_add_number(obj, "log_loss", m->log_loss);
    if (k == 2)
        pst_json_add_number(obj, "roc_auc", m->roc_auc);
    cJSON *per = cJSON_AddObjectToObject(obj, "per_class");
    cJSON_AddItemToObject(per, "precision", double_array(m->precision, k));
    cJSON_AddItemToObject(per, "recall", double_array(m->recall, k));
    cJSON_AddItemToObject(per, "f1", double_array(m->f1, k));
    cJSON_AddItemToObject(per, "specificity", double_array(m->specificity, k));
    cJSON *conf = cJSON_AddArrayToObject(obj, "confusion");
    for (int i = 0; i < k; i++) {
        cJSON *row = cJSON_CreateArray();
        for (int j = 0; j < k; j++)
            cJSON_AddItemToArray(row, cJSON_CreateNumber((double)m->confusion[i * k + j]));
        cJSON_AddItemToArray(conf, row);
    }
}

void pst_json_add_reg_metrics(cJSON *obj, const pst_reg_metrics_t *m)
{
    pst_json_add_number(obj, "n", (double)m->n);
    pst_json_add_number(obj, "mse", m->mse);
    pst_json_add_number(obj, "mae", m->mae);
    pst_json_add_number(obj, "r2", m->r2);
}
