/* What `pstrain info` adds for a model trained on a table: its classes, input columns with type
 * and encoding, preprocessing, training configuration and the test metrics of its run. */
#ifndef PST_APP_SCORE_INFO_H
#define PST_APP_SCORE_INFO_H

#include "worker/model/modelfile.h"

/* Prints the classes (names or values) and each input column: type, encoding and what was
 * fitted (categories, slots, clip bounds), then the scaling of the features. */
void pst_info_print_inputs(const pst_modelfile_t *mf, const char *indent);

/* Prints the training keys of the stored configuration (model.*, optimizer.*, train.*, the
 * data.* keys that shape the inputs). */
void pst_info_print_training(const pst_modelfile_t *mf, const char *indent);

/* Prints the test metrics of report.json beside model_path (a run directory), if it is there. */
void pst_info_print_metrics(const char *model_path);

#endif
