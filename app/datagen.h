/* Synthetic data as the program writes it: click logs (LIBSVM) and Criteo-style TSV, with the
 * truth behind them, and a line saying what was written. */
#ifndef PST_APP_DATAGEN_H
#define PST_APP_DATAGEN_H

#include "common/gen/clickgen.h"
#include "common/gen/criteogen.h"

/* Writes the click data cfg describes (checked by pst_clickgen_check) to files and prints the
 * rows, speed and truth; errors go to stderr. Returns the exit status: 0 success, 1 failure. */
int pst_datagen_clicks(const pst_clickgen_t *cfg, const pst_clickgen_files_t *files);
/* Writes the Criteo-style data cfg describes (checked by pst_criteogen_check) to out, and its
 * truth as JSON to truth (or NULL); prints and returns as pst_datagen_clicks. */
int pst_datagen_criteo(const pst_criteogen_t *cfg, const char *out, const char *truth);

#endif
