/* Tests for common/clickgen: determinism, click rate, power-law popularity, the truth files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/atomicfile.h"
#include "common/gen/clickgen.h"
#include "common/data/dataload.h"
#include "common/data/libsvm.h"
#include "scratch.h"

static pst_clickgen_t config(uint64_t rows, uint32_t f, uint32_t k, uint64_t seed)
{
    pst_clickgen_t cfg;
    pst_clickgen_defaults(&cfg);
    cfg.rows = rows;
    cfg.n_features = f;
    cfg.nnz = k;
    cfg.seed = seed;
    return cfg;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    unsigned char *data;
    pst_err_t err;
    if (pst_read_file(path, (size_t)1 << 32, &data, len, &err) != PST_OK)
        fail_msg("%s", err.msg);
    return data;
}

static void write_data(const pst_clickgen_t *cfg, const char *path)
{
    pst_clickgen_files_t files = {.data = path};
    pst_err_t err;
    if (pst_clickgen_write(cfg, &files, NULL, &err) != PST_OK)
        fail_msg("%s", err.msg);
}

/* The file holds exactly the rows the in-memory generator draws, as "label id:1 ..." lines. */
static void assert_file_matches_generator(const pst_clickgen_t *cfg, const char *text, size_t len)
{
    pst_clickgen_state_t *g;
    pst_err_t err;
    assert_int_equal(pst_clickgen_state_new(cfg, &g, &err), PST_OK);
    uint32_t *ids = malloc(cfg->nnz * sizeof *ids);
    char line[4096];
    const char *p = text;
    for (uint64_t r = 0; r < cfg->rows; r++) {
        double prob;
        int label;
        pst_clickgen_next_row(g, ids, &prob, &label);
        assert_true(prob > 0 && prob < 1);
        int n = snprintf(line, sizeof line, "%d", label);
        for (uint32_t i = 0; i < cfg->nnz; i++) {
            assert_true(ids[i] < cfg->n_features);
            if (i > 0)
                assert_true(ids[i] > ids[i - 1]);
            n += snprintf(line + n, sizeof line - (size_t)n, " %u:1", ids[i] + 1);
        }
        line[n++] = '\n';
        assert_true(p + n <= text + len);
        assert_memory_equal(p, line, (size_t)n);
        p += n;
    }
    assert_ptr_equal(p, text + len);
    free(ids);
    pst_clickgen_state_destroy(&g);
    pst_clickgen_state_destroy(&g);
}

static void same_seed_same_bytes(void **state)
{
    char a[256], b[256], c[256];
    pst_clickgen_t cfg = config(5000, 5000, 12, 3);
    write_data(&cfg, pst_scratch_path(a, "a.svm"));
    write_data(&cfg, pst_scratch_path(b, "b.svm"));
    cfg.seed = 4;
    write_data(&cfg, pst_scratch_path(c, "c.svm"));
    size_t la, lb, lc;
    unsigned char *da = slurp(a, &la), *db = slurp(b, &lb), *dc = slurp(c, &lc);
    assert_true(la > 5000 * 12 * 4);
    assert_int_equal(la, lb);
    assert_memory_equal(da, db, la);
    assert_true(la != lc || memcmp(da, dc, la) != 0);
    cfg.seed = 3;
    assert_file_matches_generator(&cfg, (const char *)da, la);
    free(da);
    free(db);
    free(dc);
}

/* 200,000 rows: realised click rate near the target, and power-law popularity. */
static void click_rate_and_popularity(void **state)
{
    enum { ROWS = 200000, F = 100000, K = 30 };
    pst_clickgen_t cfg = config(ROWS, F, K, 21);
    pst_clickgen_state_t *g;
    pst_err_t err;
    assert_int_equal(pst_clickgen_state_new(&cfg, &g, &err), PST_OK);
    unsigned *count = calloc(F, sizeof *count);
    uint32_t ids[K];
    double sum_p = 0, clicks = 0;
    for (int r = 0; r < ROWS; r++) {
        double p;
        int label;
        pst_clickgen_next_row(g, ids, &p, &label);
        sum_p += p;
        clicks += label;
        for (int i = 0; i < K; i++)
            count[ids[i]]++;
    }
    /* binomial sd of the rate is 0.00038; the bias is solved on a pilot sample */
    assert_true(fabs(clicks / ROWS - 0.03) < 0.002);
    assert_true(fabs(sum_p / ROWS - 0.03) < 0.001);

    /* the most popular 1% of features carry most occurrences (uniform: 1%) */
    double head = 0;
    for (int j = 0; j < F / 100; j++)
        head += count[j];
    assert_true(head / ((double)ROWS * K) > 0.5);
    for (int j = 1; j < F / 100; j++) /* ids are ranked by popularity */
        assert_true(count[j] <= count[j - 1] + 2000);
    /* mid ranks follow rank^-1.1: occurrences of ids 1000..1999 over ids 100..199 */
    double mid = 0, low = 0, want_mid = 0, want_low = 0;
    for (int j = 100; j < 200; j++) {
        low += count[j];
        want_low += pow(j + 1.0, -1.1);
    }
    for (int j = 1000; j < 2000; j++) {
        mid += count[j];
        want_mid += pow(j + 1.0, -1.1);
    }
    assert_true(fabs((mid / low) / (want_mid / want_low) - 1) < 0.03);
    free(count);
    pst_clickgen_state_destroy(&g);

    cfg.click_rate = 0.2;
    cfg.rows = 50000;
    pst_clickgen_truth_t t;
    pst_clickgen_files_t none = {0};
    assert_int_equal(pst_clickgen_write(&cfg, &none, &t, &err), PST_OK);
    assert_true(fabs(t.click_rate - 0.2) < 0.01);
    assert_true(fabs(t.mean_p - 0.2) < 0.005);
}

static double json_number(const cJSON *o, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsNumber(item))
        fail_msg("truth file lacks number '%s'", name);
    return item->valuedouble;
}

typedef struct scored {
    float p;
    int label;
} scored_t;

static int by_p(const void *a, const void *b)
{
    float x = ((const scored_t *)a)->p, y = ((const scored_t *)b)->p;
    return (x > y) - (x < y);
}

/* Mann-Whitney AUC: mean rank of the positives, ties given their average rank. */
static double rank_auc(scored_t *s, size_t n)
{
    qsort(s, n, sizeof *s, by_p);
    double rank_sum = 0, pos = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && s[j].p == s[i].p)
            j++;
        double avg_rank = (double)(i + 1 + j) / 2;
        for (size_t k = i; k < j; k++)
            if (s[k].label) {
                rank_sum += avg_rank;
                pos++;
            }
        i = j;
    }
    double neg = (double)n - pos;
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg);
}

/* The truth file's Bayes AUC and log-loss, recomputed from the data, weights and bias. */
static void truth_recomputed_from_weights(void **state)
{
    enum { ROWS = 100000, F = 20000, K = 20 };
    char data[256], json[256], weights[256];
    pst_clickgen_t cfg = config(ROWS, F, K, 11);
    pst_clickgen_files_t files = {pst_scratch_path(data, "d.svm"), pst_scratch_path(json, "t.json"),
                                  pst_scratch_path(weights, "w.f32")};
    pst_clickgen_truth_t t;
    pst_err_t err;
    assert_int_equal(pst_clickgen_write(&cfg, &files, &t, &err), PST_OK);

    size_t len;
    char *text = (char *)slurp(json, &len);
    cJSON *o = cJSON_ParseWithLength(text, len);
    assert_non_null(o);
    assert_string_equal(cJSON_GetObjectItem(o, "generator")->valuestring, "clicks");
    assert_string_equal(cJSON_GetObjectItem(o, "weights_file")->valuestring, weights);
    assert_true(json_number(o, "seed") == 11 && json_number(o, "features") == F);
    assert_true(json_number(o, "rows") == ROWS && json_number(o, "nnz") == K);
    assert_true(json_number(o, "sigma") == 0.25 && json_number(o, "click_rate_target") == 0.03);
    double bias = json_number(o, "bias");
    assert_true(bias == t.bias);

    float *w = (float *)slurp(weights, &len);
    assert_int_equal(len, 4 * F);
    double mean = 0, var = 0;
    for (int j = 0; j < F; j++)
        mean += (double)w[j] / F;
    for (int j = 0; j < F; j++)
        var += (w[j] - mean) * (w[j] - mean) / F;
    assert_true(fabs(sqrt(var) - 0.25) < 0.01 && fabs(mean) < 0.01);
    assert_true(fabs(json_number(o, "weight_std") - sqrt(var)) < 1e-9);

    pst_data_spec_t spec = {.path = data, .task = PST_DATA_TASK_CLASSIFICATION};
    pst_dataset_t *d;
    assert_int_equal(pst_libsvm_read(&spec, &d, &err), PST_OK);
    assert_int_equal(d->n_rows, ROWS);
    assert_true(d->class_values[0] == 0 && d->class_values[1] == 1);
    scored_t *s = malloc(ROWS * sizeof *s);
    double loss = 0, positives = 0;
    for (size_t r = 0; r < ROWS; r++) {
        assert_int_equal(d->row_ptr[r + 1] - d->row_ptr[r], K);
        double z = bias;
        for (size_t e = d->row_ptr[r]; e < d->row_ptr[r + 1]; e++)
            z += w[d->col_idx[e]];
        double p = 1 / (1 + exp(-z));
        s[r].p = (float)p;
        s[r].label = d->y[r] == 1;
        positives += s[r].label;
        loss -= s[r].label ? log(p) : log1p(-p);
    }
    assert_true(json_number(o, "positives") == positives);
    assert_true(fabs(json_number(o, "click_rate") - positives / ROWS) < 1e-12);
    assert_true(fabs(json_number(o, "bayes_log_loss") - loss / ROWS) < 1e-9);
    double auc = rank_auc(s, ROWS);
    assert_true(fabs(json_number(o, "bayes_auc") - auc) < 1e-9);
    assert_true(auc > 0.7 && auc < 0.9); /* sigma 0.25, 20 features: a learnable signal */
    free(s);
    free(w);
    free(text);
    cJSON_Delete(o);
    pst_dataset_destroy(&d);
}

static int count_temp_files(void)
{
    int n = 0;
    DIR *d = opendir(pst_scratch_dir());
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

static void bad_configs_and_paths(void **state)
{
    pst_err_t err;
    pst_clickgen_t ok = config(10, 100, 5, 1), cfg;
    assert_int_equal(pst_clickgen_check(&ok, &err), PST_OK);
    cfg = ok;
    cfg.nnz = 51;
    assert_int_equal(pst_clickgen_check(&cfg, &err), PST_EINVAL);
    assert_non_null(strstr(err.msg, "nnz"));
    cfg = ok;
    cfg.nnz = 0;
    assert_int_equal(pst_clickgen_check(&cfg, &err), PST_EINVAL);
    cfg = ok;
    cfg.n_features = 1;
    assert_int_equal(pst_clickgen_check(&cfg, &err), PST_EINVAL);
    cfg = ok;
    cfg.click_rate = 1;
    assert_int_equal(pst_clickgen_check(&cfg, &err), PST_EINVAL);
    cfg.click_rate = NAN;
    assert_int_equal(pst_clickgen_check(&cfg, &err), PST_EINVAL);
    cfg = ok;
    cfg.zipf_exponent = 0;
    assert_int_equal(pst_clickgen_check(&cfg, &err), PST_EINVAL);
    cfg = ok;
    cfg.sigma = -1;
    assert_int_equal(pst_clickgen_check(&cfg, &err), PST_EINVAL);

    pst_clickgen_files_t files = {.data = "/nonexistent-dir/clicks.svm"};
    assert_int_equal(pst_clickgen_write(&ok, &files, NULL, &err), PST_EIO);
    assert_int_equal(access("/nonexistent-dir/clicks.svm", F_OK), -1);

    char data[256];
    files.data = pst_scratch_path(data, "ok.svm");
    assert_int_equal(pst_clickgen_write(&ok, &files, NULL, &err), PST_OK);
    assert_int_equal(count_temp_files(), 0);
    /* K = F/2: every row draws half of all features, still distinct */
    cfg = config(2000, 20, 10, 5);
    cfg.click_rate = 0.3;
    pst_clickgen_truth_t t;
    assert_int_equal(pst_clickgen_write(&cfg, &files, &t, &err), PST_OK);
    assert_true(t.positives > 0 && t.positives < 2000);
    assert_true(t.bayes_auc > 0.5 && t.bayes_auc <= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(same_seed_same_bytes, pst_scratch_make, pst_scratch_remove),
        cmocka_unit_test(click_rate_and_popularity),
        cmocka_unit_test_setup_teardown(truth_recomputed_from_weights, pst_scratch_make,
                                        pst_scratch_remove),
        cmocka_unit_test_setup_teardown(bad_configs_and_paths, pst_scratch_make,
                                        pst_scratch_remove),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
