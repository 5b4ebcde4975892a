/* Sweep results: CSV and JSON tables of trials, resuming from them, and the best trial's YAML. */
#include "app/sweep/sweep.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomicfile.h"
#include "common/numparse.h"

#define RESULTS_MAX_BYTES (256u << 20)

/* ---- writing ---- */

static void csv_cell(FILE *out, const char *text)
{
    bool quote = text[0] == ' ' || (text[0] && text[strlen(text) - 1] == ' ') ||
                 strpbrk(text, ",\"\r\n") != NULL;
    if (!quote) {
        fputs(text, out);
        return;
    }
    fputc('"', out);
    for (const char *c = text; *c; c++) {
        if (*c == '"')
            fputc('"', out);
        fputc(*c, out);
    }
    fputc('"', out);
}

static void csv_number(FILE *out, double v)
{
    if (isfinite(v))
        fprintf(out, ",%.17g", v);
    else
        fputs(",nan", out);
}

static double final_metric(const pst_sweep_sched_t *s, int trial)
{
    return pst_sweep_trial_metric(s, trial, pst_sweep_trial_rungs_done(s, trial) - 1);
}

static void csv_header(const pst_sweep_sched_t *s, FILE *out)
{
    const pst_sweep_space_t *sp = pst_sweep_sched_space(s);
    fputs("trial,state,epochs_spent,final", out);
    for (int k = 0; k < pst_sweep_n_rungs(s); k++) {
        char label[300];
        snprintf(label, sizeof label, "%s@%ld", sp->metric, pst_sweep_rung_epochs(s, k));
        fputc(',', out);
        csv_cell(out, label);
    }
    for (int p = 0; p < sp->n_params; p++) {
        fputc(',', out);
        csv_cell(out, sp->params[p].key);
    }
    fputc('\n', out);
}

static void csv_row(const pst_sweep_sched_t *s, int t, FILE *out)
{
    const pst_sweep_space_t *sp = pst_sweep_sched_space(s);
    int done = pst_sweep_trial_rungs_done(s, t);
    fprintf(out, "%d,%s,%ld", t, pst_sweep_state_name(pst_sweep_trial_state(s, t)),
            pst_sweep_trial_epochs(s, t));
    if (done > 0)
        csv_number(out, final_metric(s, t));
    else
        fputc(',', out);
    for (int k = 0; k < pst_sweep_n_rungs(s); k++) {
        if (k < done)
            csv_number(out, pst_sweep_trial_metric(s, t, k));
        else
            fputc(',', out);
    }
    for (int p = 0; p < sp->n_params; p++) {
        const char *v = pst_sweep_trial_value(pst_sweep_get_trial(s, t), sp->params[p].key);
        fputc(',', out);
        csv_cell(out, v ? v : "");
    }
    fputc('\n', out);
}

char *pst_sweep_results_csv(const pst_sweep_sched_t *s)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    if (!out)
        return NULL;
    csv_header(s, out);
    for (int t = 0; t < pst_sweep_n_created(s); t++)
        csv_row(s, t, out);
    bool failed = ferror(out) != 0;
    fclose(out);
    if (failed) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* A metric with 17 significant digits (cJSON's own printing may drop the last bit). */
static cJSON *json_number(double v)
{
    char text[40];
    if (!isfinite(v))
        return cJSON_CreateNull();
    snprintf(text, sizeof text, "%.17g", v);
    return cJSON_CreateRaw(text);
}

static cJSON *json_trial(const pst_sweep_sched_t *s, int t)
{
    const pst_sweep_trial_t *trial = pst_sweep_get_trial(s, t);
    int done = pst_sweep_trial_rungs_done(s, t);
    cJSON *obj = cJSON_CreateObject();
    cJSON_AddNumberToObject(obj, "trial", t);
    cJSON_AddStringToObject(obj, "state", pst_sweep_state_name(pst_sweep_trial_state(s, t)));
    cJSON *params = cJSON_AddObjectToObject(obj, "params");
    for (int i = 0; i < trial->n_overrides; i++)
        cJSON_AddStringToObject(params, trial->overrides[i].key, trial->overrides[i].value);
    cJSON *rungs = cJSON_AddArrayToObject(obj, "rungs");
    for (int k = 0; k < done; k++)
        cJSON_AddItemToArray(rungs, json_number(pst_sweep_trial_metric(s, t, k)));
    cJSON_AddItemToObject(obj, "final", json_number(done > 0 ? final_metric(s, t) : NAN));
    cJSON_AddNumberToObject(obj, "epochs_spent", (double)pst_sweep_trial_epochs(s, t));
    return obj;
}

static cJSON *json_best(const pst_sweep_sched_t *s)
{
    int trial;
    double metric;
    if (pst_sweep_best(s, &trial, &metric) != PST_OK)
        return cJSON_CreateNull();
    cJSON *best = cJSON_CreateObject();
    cJSON_AddNumberToObject(best, "trial", trial);
    cJSON_AddItemToObject(best, "metric", json_number(metric));
    return best;
}

char *pst_sweep_results_json(const pst_sweep_sched_t *s)
{
    const pst_sweep_space_t *sp = pst_sweep_sched_space(s);
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "method", pst_sweep_method_name(sp->method));
    cJSON_AddStringToObject(doc, "metric", sp->metric);
    cJSON_AddStringToObject(doc, "mode", sp->maximize ? "max" : "min");
    cJSON_AddNumberToObject(doc, "seed", (double)sp->seed);
    cJSON *rungs = cJSON_AddArrayToObject(doc, "rung_epochs");
    for (int k = 0; k < pst_sweep_n_rungs(s); k++)
        cJSON_AddItemToArray(rungs, cJSON_CreateNumber((double)pst_sweep_rung_epochs(s, k)));
    cJSON_AddNumberToObject(doc, "epochs_spent", (double)pst_sweep_epochs_spent(s));
    cJSON_AddNumberToObject(doc, "full_epochs", (double)pst_sweep_full_epochs(s));
    cJSON_AddItemToObject(doc, "best", json_best(s));
    cJSON *trials = cJSON_AddArrayToObject(doc, "trials");
    for (int t = 0; t < pst_sweep_n_created(s); t++)
        cJSON_AddItemToArray(trials, json_trial(s, t));
    char *text = cJSON_Print(doc);
    cJSON_Delete(doc);
    return text;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

int pst_sweep_write_results(const pst_sweep_sched_t *s, const char *path, pst_err_t *err)
{
    bool json = ends_with(path, ".json");
    char *text = json ? pst_sweep_results_json(s) : pst_sweep_results_csv(s);
    if (!text)
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", path);
    size_t len = strlen(text);
    if (json && len > 0 && text[len - 1] != '\n') {
        char *grown = realloc(text, len + 2);
        if (grown) {
            text = grown;
            strcpy(text + len++, "\n");
        }
    }
    int rc = pst_write_file_atomic(path, text, len, err);
    free(text);
    return rc;
}

/* ---- reading ---- */

/* Checks a results row's parameter values (values[p], NULL: unset) against the trial's own. */
static int match_params(pst_sweep_sched_t *s, int t, const char *const *values, const char *where,
                        pst_err_t *err)
{
    const pst_sweep_space_t *sp = pst_sweep_sched_space(s);
    if (t < 0 || t >= pst_sweep_n_trials(s))
        return pst_err_set(err, PST_ERANGE, "%s: trial %d: the sweep has %d trials", where, t,
                           pst_sweep_n_trials(s));
    int rc = pst_sweep_adopt(s, t, values, err);
    if (rc != PST_OK)
        return pst_err_prefix(err, rc, "%s: ", where);
    const pst_sweep_trial_t *trial = pst_sweep_get_trial(s, t);
    for (int p = 0; p < sp->n_params; p++) {
        const char *mine = pst_sweep_trial_value(trial, sp->params[p].key);
        const char *theirs = values[p];
        if (mine && theirs ? strcmp(mine, theirs) == 0 : mine == theirs)
            continue;
        return pst_err_set(err, PST_EINVAL,
                           "%s: trial %d: %s is '%s' in the results but '%s' in the sweep "
                           "(the sweep file changed?)",
                           where, t, sp->params[p].key, theirs ? theirs : "", mine ? mine : "");
    }
    return PST_OK;
}

static bool parse_metric(const char *text, double *out)
{
    return pst_parse_double(text, 0, out) == PST_OK;
}

static bool parse_count(const char *text, long *out)
{
    return pst_parse_decimal(text, out) == PST_OK && *out >= 0;
}

/* One CSV record: fields split on commas, quotes per RFC 4180. */
typedef struct csv_record {
    int n, cap;
    char **fields;
    size_t line;
} csv_record_t;

static void record_clear(csv_record_t *r)
{
    for (int i = 0; i < r->n; i++)
        free(r->fields[i]);
    r->n = 0;
}

static int record_push(csv_record_t *r, const char *text, size_t len)
{
    if (r->n == r->cap) {
        int cap = r->cap ? 2 * r->cap : 16;
        char **fields = realloc(r->fields, (size_t)cap * sizeof *fields);
        if (!fields)
            return PST_ENOMEM;
        r->fields = fields;
        r->cap = cap;
    }
    if (!(r->fields[r->n] = malloc(len + 1)))
        return PST_ENOMEM;
    memcpy(r->fields[r->n], text, len);
    r->fields[r->n++][len] = '\0';
    return PST_OK;
}

/* Reads one field at *p into buf (unquoted). Returns the character that ended it. */
static char read_field(const char **p, char *buf, size_t *len, size_t *line)
{
    const char *c = *p;
    *len = 0;
    bool quoted = *c == '"';
    c += quoted;
    for (; *c; c++) {
        if (quoted && *c == '"' && c[1] == '"') {
            buf[(*len)++] = *c++;
        } else if (quoted && *c == '"') {
            quoted = false;
        } else if (!quoted && (*c == ',' || *c == '\n' || *c == '\r')) {
            break;
        } else {
            *line += *c == '\n';
            buf[(*len)++] = *c;
        }
    }
    char end = *c;
    if (end == '\r' && c[1] == '\n')
        c++;
    *p = end ? c + 1 : c;
    return end == '\r' ? '\n' : end;
}

/* Reads the next non-empty record. Returns false at the end of the text. */
static bool read_record(const char **p, char *buf, csv_record_t *r, size_t *line, int *rc)
{
    record_clear(r);
    while (**p == '\n' || **p == '\r')
        *line += *(*p)++ == '\n';
    if (!**p)
        return false;
    r->line = *line;
    char end;
    do {
        size_t len;
        end = read_field(p, buf, &len, line);
        if ((*rc = record_push(r, buf, len)) != PST_OK)
            return false;
    } while (end == ',');
    *line += 1;
    return true;
}

/* Column positions of a CSV results table. */
typedef struct csv_columns {
    int trial, epochs;
    int rung[PST_SWEEP_MAX_RUNGS];
    int *param; /* (n_params) */
} csv_columns_t;

static int find_column(const csv_record_t *header, const char *name)
{
    for (int i = 0; i < header->n; i++)
        if (strcmp(header->fields[i], name) == 0)
            return i;
    return -1;
}

static int map_columns(const pst_sweep_sched_t *s, const csv_record_t *h, csv_columns_t *c,
                       const char *origin, pst_err_t *err)
{
    const pst_sweep_space_t *sp = pst_sweep_sched_space(s);
    char label[300];
    c->trial = find_column(h, "trial");
    c->epochs = find_column(h, "epochs_spent");
    if (c->trial < 0 || c->epochs < 0)
        return pst_err_set(err, PST_EFORMAT, "%s:1: no trial or epochs_spent column", origin);
    int known = 4; /* trial, state, epochs_spent, final */
    for (int k = 0; k < pst_sweep_n_rungs(s); k++, known++) {
        snprintf(label, sizeof label, "%s@%ld", sp->metric, pst_sweep_rung_epochs(s, k));
        if ((c->rung[k] = find_column(h, label)) < 0)
            return pst_err_set(err, PST_EFORMAT,
                               "%s:1: no column '%s' (another metric or "
                               "other rungs?)",
                               origin, label);
    }
    for (int p = 0; p < sp->n_params; p++, known++)
        if ((c->param[p] = find_column(h, sp->params[p].key)) < 0)
            return pst_err_set(err, PST_EFORMAT, "%s:1: no column for parameter '%s'", origin,
                               sp->params[p].key);
    if (h->n != known)
        return pst_err_set(err, PST_EFORMAT, "%s:1: %d columns, the sweep has %d", origin, h->n,
                           known);
    return PST_OK;
}

static int restore_csv_row(pst_sweep_sched_t *s, const csv_record_t *r, const csv_columns_t *c,
                           const char **values, const char *origin, pst_err_t *err)
{
    const pst_sweep_space_t *sp = pst_sweep_sched_space(s);
    char where[300];
    snprintf(where, sizeof where, "%s:%zu", origin, r->line);
    long trial, epochs;
    if (r->n <= c->trial || r->n <= c->epochs)
        return pst_err_set(err, PST_EFORMAT, "%s: %d cells, expected more", where, r->n);
    if (!parse_count(r->fields[c->trial], &trial) || !parse_count(r->fields[c->epochs], &epochs))
        return pst_err_set(err, PST_EFORMAT, "%s: bad trial or epochs_spent", where);
    for (int p = 0; p < sp->n_params; p++) {
        const char *cell = c->param[p] < r->n ? r->fields[c->param[p]] : "";
        values[p] = cell[0] ? cell : NULL;
    }
    int rc = match_params(s, (int)trial, values, where, err);
    double metrics[PST_SWEEP_MAX_RUNGS];
    int done = 0;
    for (; rc == PST_OK && done < pst_sweep_n_rungs(s); done++) {
        const char *cell = c->rung[done] < r->n ? r->fields[c->rung[done]] : "";
        if (!cell[0])
            break;
        if (!parse_metric(cell, &metrics[done]))
            return pst_err_set(err, PST_EFORMAT, "%s: bad metric '%s'", where, cell);
    }
    if (rc == PST_OK)
        rc = pst_sweep_restore(s, (int)trial, done, metrics, epochs, err);
    return rc == PST_OK ? PST_OK : pst_err_prefix(err, rc, "%s: ", where);
}

static int load_csv(pst_sweep_sched_t *s, const char *text, const char *origin, pst_err_t *err)
{
    const pst_sweep_space_t *sp = pst_sweep_sched_space(s);
    csv_record_t r = {0};
    csv_columns_t c = {0};
    size_t line = 1;
    int rc = PST_OK;
    char *buf = malloc(strlen(text) + 1);
    const char **values = calloc((size_t)sp->n_params + 1, sizeof *values);
    c.param = calloc((size_t)sp->n_params + 1, sizeof *c.param);
    if (!buf || !values || !c.param)
        rc = pst_err_set(err, PST_ENOMEM, "%s: out of memory", origin);
    if (rc == PST_OK && !read_record(&text, buf, &r, &line, &rc))
        rc = rc != PST_OK ? rc : pst_err_set(err, PST_EFORMAT, "%s: empty results table", origin);
    if (rc == PST_OK)
        rc = map_columns(s, &r, &c, origin, err);
    while (rc == PST_OK && read_record(&text, buf, &r, &line, &rc))
        rc = restore_csv_row(s, &r, &c, values, origin, err);
    record_clear(&r);
    free(r.fields);
    free(c.param);
    free(values);
    free(buf);
    return rc;
}

static int json_check_header(const pst_sweep_sched_t *s, const cJSON *doc, const char *origin,
                             pst_err_t *err)
{
    const pst_sweep_space_t *sp = pst_sweep_sched_space(s);
    const cJSON *metric = cJSON_GetObjectItemCaseSensitive(doc, "metric");
    if (!cJSON_IsString(metric) || strcmp(metric->valuestring, sp->metric) != 0)
        return pst_err_set(err, PST_EINVAL, "%s: the results hold another metric than '%s'", origin,
                           sp->metric);
    const cJSON *rungs = cJSON_GetObjectItemCaseSensitive(doc, "rung_epochs");
    bool same = cJSON_IsArray(rungs) && cJSON_GetArraySize(rungs) == pst_sweep_n_rungs(s);
    for (int k = 0; same && k < pst_sweep_n_rungs(s); k++) {
        const cJSON *e = cJSON_GetArrayItem(rungs, k);
        same = cJSON_IsNumber(e) && e->valuedouble == (double)pst_sweep_rung_epochs(s, k);
    }
    if (!same)
        return pst_err_set(err, PST_EINVAL, "%s: the results have other rungs than the sweep",
                           origin);
    return PST_OK;
}

static int json_restore_trial(pst_sweep_sched_t *s, const cJSON *obj, const char **values,
                              const char *origin, pst_err_t *err)
{
    const pst_sweep_space_t *sp = pst_sweep_sched_space(s);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(obj, "trial");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(obj, "params");
    const cJSON *rungs = cJSON_GetObjectItemCaseSensitive(obj, "rungs");
    const cJSON *epochs = cJSON_GetObjectItemCaseSensitive(obj, "epochs_spent");
    if (!cJSON_IsNumber(id) || !cJSON_IsObject(params) || !cJSON_IsArray(rungs) ||
        !cJSON_IsNumber(epochs) || cJSON_GetArraySize(rungs) > PST_SWEEP_MAX_RUNGS)
        return pst_err_set(err, PST_EFORMAT,
                           "%s: a trial lacks trial, params, rungs or "
                           "epochs_spent",
                           origin);
    int trial = id->valueint, n_set = 0;
    for (int p = 0; p < sp->n_params; p++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(params, sp->params[p].key);
        values[p] = cJSON_IsString(v) ? v->valuestring : NULL;
        n_set += values[p] != NULL;
    }
    char where[300];
    snprintf(where, sizeof where, "%s: trial %d", origin, trial);
    if (n_set != cJSON_GetArraySize(params))
        return pst_err_set(err, PST_EINVAL, "%s: parameters the sweep does not have", where);
    int rc = match_params(s, trial, values, origin, err);
    if (rc != PST_OK)
        return rc;
    double metrics[PST_SWEEP_MAX_RUNGS];
    int done = cJSON_GetArraySize(rungs);
    for (int k = 0; k < done; k++) {
        const cJSON *m = cJSON_GetArrayItem(rungs, k);
        metrics[k] = cJSON_IsNumber(m) ? m->valuedouble : NAN;
    }
    rc = pst_sweep_restore(s, trial, done, metrics, (long)epochs->valuedouble, err);
    return rc == PST_OK ? rc : pst_err_prefix(err, rc, "%s: ", origin);
}

static int load_json(pst_sweep_sched_t *s, const char *text, const char *origin, pst_err_t *err)
{
    cJSON *doc = cJSON_Parse(text);
    if (!doc)
        return pst_err_set(err, PST_EFORMAT, "%s: not valid JSON", origin);
    const pst_sweep_space_t *sp = pst_sweep_sched_space(s);
    const cJSON *trials = cJSON_GetObjectItemCaseSensitive(doc, "trials");
    const char **values = calloc((size_t)sp->n_params + 1, sizeof *values);
    int rc = values ? json_check_header(s, doc, origin, err)
                    : pst_err_set(err, PST_ENOMEM, "%s: out of memory", origin);
    if (rc == PST_OK && !cJSON_IsArray(trials))
        rc = pst_err_set(err, PST_EFORMAT, "%s: no trials array", origin);
    const cJSON *obj;
    if (rc == PST_OK) {
        cJSON_ArrayForEach(obj, trials)
        {
            if ((rc = json_restore_trial(s, obj, values, origin, err)) != PST_OK)
                break;
        }
    }
    free(values);
    cJSON_Delete(doc);
    return rc;
}

int pst_sweep_load_results_text(pst_sweep_sched_t *s, const char *text, const char *origin,
                                pst_err_t *err)
{
    for (int t = 0; t < pst_sweep_n_created(s); t++)
        if (pst_sweep_trial_state(s, t) != PST_SWEEP_PENDING || pst_sweep_trial_epochs(s, t))
            return pst_err_set(err, PST_ESTATE, "%s: results load into a fresh sweep only", origin);
    const char *c = text;
    while (*c == ' ' || *c == '\t' || *c == '\n' || *c == '\r')
        c++;
    return *c == '{' ? load_json(s, text, origin, err) : load_csv(s, text, origin, err);
}

int pst_sweep_load_results(pst_sweep_sched_t *s, const char *path, pst_err_t *err)
{
    unsigned char *data;
    size_t len;
    int rc = pst_read_file(path, RESULTS_MAX_BYTES, &data, &len, err);
    if (rc != PST_OK)
        return rc;
    rc = pst_sweep_load_results_text(s, (char *)data, path, err);
    free(data);
    return rc;
}

/* ---- best configuration ---- */

static void write_best_header(const pst_sweep_sched_t *s, int trial, double metric, FILE *out)
{
    const pst_sweep_space_t *sp = pst_sweep_sched_space(s);
    const pst_sweep_trial_t *t = pst_sweep_get_trial(s, trial);
    fprintf(out, "# Best trial %d of sweep %s: %s %.9g.\n# %s with:", trial, sp->origin, sp->metric,
            metric, sp->base);
    for (int i = 0; i < t->n_overrides; i++)
        fprintf(out, " %s=%s", t->overrides[i].key, t->overrides[i].value);
    if (sp->rungs)
        fprintf(out, " train.epochs=%ld", sp->max_epochs);
    fputc('\n', out);
}

int pst_sweep_write_best_config(const pst_sweep_sched_t *s, pst_config_t *cfg, const char *path,
                                pst_err_t *err)
{
    const pst_sweep_space_t *sp = pst_sweep_sched_space(s);
    int trial;
    double metric;
    if (pst_sweep_best(s, &trial, &metric) != PST_OK)
        return pst_err_set(err, PST_ENOTFOUND, "%s: no trial has a result yet", path);
    pst_sweep_job_t job = {.trial = trial, .epochs = sp->max_epochs};
    int rc = sp->rungs ? pst_sweep_job_apply(s, &job, cfg, err)
                       : pst_sweep_trial_apply(pst_sweep_get_trial(s, trial), cfg, err);
    if (rc != PST_OK)
        return rc;
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    if (!out)
        return pst_err_set(err, PST_ENOMEM, "%s: out of memory", path);
    write_best_header(s, trial, metric, out);
    rc = pst_config_write(cfg, out);
    fclose(out);
    if (rc == PST_OK)
        rc = pst_write_file_atomic(path, buf, len, err);
    else
        pst_err_set(err, rc, "%s: cannot format the configuration", path);
    free(buf);
    return rc;
}
