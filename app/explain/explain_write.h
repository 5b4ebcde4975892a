/* What `pstrain explain` leaves behind: importance.csv, attributions.csv and explain.html, each
 * written atomically. */
#ifndef PST_APP_EXPLAIN_EXPLAIN_WRITE_H
#define PST_APP_EXPLAIN_EXPLAIN_WRITE_H

#include "app/explain/attributions.h"
#include "app/explain/importance.h"

/* rank,column,metric,mean_drop,std_drop,drop_1..drop_R: one line per column, most important
 * first. */
int pst_explain_write_importance(const char *path, const pst_explainer_t *ex,
                                 const pst_importance_t *imp, pst_err_t *err);

/* row[,id_name],class,output,baseline,<one column per input>: one line per explained row; ids
 * (at->n_rows) or NULL. */
int pst_explain_write_attributions(const char *path, const pst_explainer_t *ex,
                                   const pst_attributions_t *at, const char *id_name,
                                   char *const *ids, pst_err_t *err);

/* An HTML page of the importance (with its spread) and of the mean absolute attribution per
 * input, drawn with the report's SVG helpers. Either part may be NULL. */
int pst_explain_write_html(const char *path, const pst_explainer_t *ex, const pst_importance_t *imp,
                           const pst_attributions_t *at, pst_err_t *err);

#endif
