/* pstrain datagen: synthetic data generators (click logs for the sparse models). */
#ifndef PST_CLI_DATAGEN_H
#define PST_CLI_DATAGEN_H

#include <stdio.h>

/* `pstrain datagen KIND [OPTIONS]`; argv[0] is "datagen". Returns the exit status:
 * 0 success, 1 failure (nothing half-written is left), 2 usage error. */
int pst_cmd_datagen(int argc, char **argv);

void pst_usage_datagen(FILE *out);

#endif
