/* Chronological split of a time series and its cutting into windows, part by part. */
#include "app/seqsplit.h"

#include <math.h>

#include "common/data/seqwin.h"

/* The windows of rows [first, first + n), or an empty part of the training windows' width when
 * the range is empty on purpose (a fraction of 0). */
static int cut_part(const pst_seqwin_t *w, const pst_dataset_t *src, size_t first, size_t n,
                    const char *part, const pst_dataset_t *like, pst_dataset_t **out,
                    pst_err_t *err)
{
    if (n == 0 && like != NULL) {
        *out = pst_dataset_take_rows(like, NULL, 0);
        return *out ? PST_OK : pst_err_set(err, PST_ENOMEM, "out of memory");
    }
    return pst_seqwin_cut(w, src, first, n, part, out, err);
}

static int seqwin_of(const pst_config_t *cfg, const pst_dataset_t *all, pst_seqwin_t *w,
                     pst_err_t *err)
{
    return pst_seqwin_init(w, all, (int)cfg->data.window, (int)cfg->data.horizon,
                           (const char *const *)cfg->data.sequence_columns.items,
                           cfg->data.sequence_columns.n, cfg->data.target, err);
}

int pst_seqsplit_whole(const pst_config_t *cfg, pst_dataset_t **ds, const char *path, bool open_end,
                       pst_err_t *err)
{
    pst_seqwin_t w;
    pst_dataset_t *windows = NULL;
    int rc = seqwin_of(cfg, *ds, &w, err);
    w.open_end = open_end;
    if (rc == PST_OK)
        rc = pst_seqwin_cut(&w, *ds, 0, (*ds)->n_rows, "scored", &windows, err);
    if (rc != PST_OK)
        return pst_err_prefix(err, rc, "%s: ", path);
    pst_dataset_destroy(ds);
    *ds = windows;
    return PST_OK;
}

int pst_seqsplit(pst_pipeline_t *p, const pst_config_t *cfg, const pst_dataset_t *all,
                 pst_err_t *err)
{
    pst_seqwin_t w;
    int rc = seqwin_of(cfg, all, &w, err);
    if (rc != PST_OK)
        return rc;
    size_t n = all->n_rows, n_val = (size_t)llround((double)n * cfg->data.val_fraction);
    bool test_file = cfg->data.test[0] != '\0';
    size_t n_train = test_file ? n - n_val : (size_t)llround((double)n * cfg->data.train_fraction);
    if (n_train + n_val > n)
        n_val = n - n_train;
    size_t n_test = test_file ? 0 : n - n_train - n_val;
    if ((rc = pst_seqwin_cut(&w, all, 0, n_train, "training", &p->train, err)) != PST_OK ||
        (rc = cut_part(&w, all, n_train, n_val, "validation", p->train, &p->val, err)) != PST_OK)
        return pst_err_prefix(err, rc, "%s: ", cfg->data.train);
    if (test_file) {
        pst_dataset_t *windows = NULL;
        if ((rc = pst_seqwin_cut(&w, p->test, 0, p->test->n_rows, "test", &windows, err)) != PST_OK)
            return pst_err_prefix(err, rc, "%s: ", cfg->data.test);
        pst_dataset_destroy(&p->test);
        p->test = windows;
        return PST_OK;
    }
    rc = cut_part(&w, all, n_train + n_val, n_test, "test", p->train, &p->test, err);
    return rc == PST_OK ? rc : pst_err_prefix(err, rc, "%s: ", cfg->data.train);
}
