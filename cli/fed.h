/* pstrain fed: federated learning commands. */
#ifndef PST_FED_H
#define PST_FED_H

#include <stdio.h>

/* `pstrain fed simulate CONFIG [--set KEY=VALUE]... [--out DIR]`; returns the exit status. */
int pst_cmd_fed(int argc, char **argv);
void pst_usage_fed(FILE *out);

#endif
