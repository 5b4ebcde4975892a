/* Shared declarations of the pstrain program's subcommands. */
#ifndef PST_CLI_H
#define PST_CLI_H

#include <stdio.h>

/* Each subcommand returns the process exit status: 0 success, 1 failure, 2 usage error. */
int pst_cmd_train(int argc, char **argv);
int pst_cmd_eval(int argc, char **argv);
int pst_cmd_predict(int argc, char **argv);
int pst_cmd_info(int argc, char **argv);
int pst_cmd_cv(int argc, char **argv);
int pst_cmd_bag(int argc, char **argv);
int pst_cmd_stack(int argc, char **argv);
int pst_cmd_sweep(int argc, char **argv);
int pst_cmd_export(int argc, char **argv);
int pst_cmd_report(int argc, char **argv);
int pst_cmd_embed(int argc, char **argv);
int pst_cmd_explain(int argc, char **argv);
int pst_cmd_supervise(int argc, char **argv);
int pst_cmd_drift(int argc, char **argv);

void pst_usage_train(FILE *out);
void pst_usage_eval(FILE *out);
void pst_usage_predict(FILE *out);
void pst_usage_info(FILE *out);
void pst_usage_cv(FILE *out);
void pst_usage_bag(FILE *out);
void pst_usage_stack(FILE *out);
void pst_usage_sweep(FILE *out);
void pst_usage_export(FILE *out);
void pst_usage_report(FILE *out);
void pst_usage_embed(FILE *out);
void pst_usage_explain(FILE *out);
void pst_usage_supervise(FILE *out);
void pst_usage_drift(FILE *out);

#endif
