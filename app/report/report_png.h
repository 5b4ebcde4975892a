/* The report's plots as PNG files (pstrain report --png DIR): each inline SVG plot of the page,
 * rendered by librsvg onto a cairo image, so the pictures are the very plots of the page. An
 * optional dependency: without librsvg the build still works and the option is refused. */
#ifndef PST_APP_REPORT_REPORT_PNG_H
#define PST_APP_REPORT_REPORT_PNG_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

#define PST_REPORT_PNG_SCALE 2 /* pixels per SVG unit: sharp in print */

/* Whether this build renders PNG files. */
bool pst_report_png_available(void);

/* Writes each <svg class="plot..."> element of page (len bytes) to DIR/NN-TITLE.png (NN from 01
 * in page order, TITLE the plot's title in lower case letters, digits and dashes), each file
 * atomically; creates DIR (one level) if needed. *n_written (may be NULL) gets the count.
 * PST_ESTATE naming the missing library in a build without librsvg; PST_EFORMAT naming the plot
 * when librsvg refuses one; PST_EIO naming DIR when it cannot be made. */
int pst_report_png_write(const char *page, size_t len, const char *dir, int *n_written,
                         pst_err_t *err);

#endif
