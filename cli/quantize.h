/* pstrain quantize: a float model file to an int8 one. */
#ifndef PST_CLI_QUANTIZE_H
#define PST_CLI_QUANTIZE_H

#include <stdio.h>

/* `pstrain quantize MODEL -o OUT --calibration DATA ...`; returns the exit status. */
int pst_cmd_quantize(int argc, char **argv);
void pst_usage_quantize(FILE *out);

#endif
