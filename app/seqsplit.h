/* The data pipeline's split for sequence windows (data.window): time order, no leakage. */
#ifndef PST_APP_SEQSPLIT_H
#define PST_APP_SEQSPLIT_H

#include "app/pipeline.h"

/* Splits the time-ordered rows of all into train, validation and test ranges in file order (the
 * fractions of data.*_fraction; with data.test, the test file is the test part and the last
 * data.val_fraction of all validates) and cuts each range into its own windows, so no window
 * and no target crosses from one part into another. Fills p->train, p->val and p->test (a test
 * part p already holds, read from data.test, is replaced by its windows). */
int pst_seqsplit(pst_pipeline_t *p, const pst_config_t *cfg, const pst_dataset_t *all,
                 pst_err_t *err);

/* A file scored by a model trained on windows (eval, predict): *ds, time-ordered, is replaced by
 * all its windows, cut as the model's configuration says; open_end (predict) adds the windows
 * whose targets lie past the file's end, the forecasts proper. */
int pst_seqsplit_whole(const pst_config_t *cfg, pst_dataset_t **ds, const char *path, bool open_end,
                       pst_err_t *err);

#endif
