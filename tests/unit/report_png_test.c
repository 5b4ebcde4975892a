/* Tests for app/report/report_png: a page's plots become numbered PNG files named by their
 * titles (and only the plots), a plot librsvg cannot read is refused naming its file, a path that
 * is a file is refused naming it; a build without librsvg refuses saying so. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "app/report/report_png.h"
#include "scratch.h"

static const char *const PAGE =
    "<html><body><svg class=\"plot\" xmlns=\"http://www.w3.org/2000/svg\" width=\"60\" "
    "height=\"40\"><text font-weight=\"bold\">ROC curve (test): AUC</text>"
    "<rect x=\"5\" y=\"5\" width=\"20\" height=\"20\" fill=\"#1f77b4\"/></svg>\n"
    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"></svg>\n"
    "<svg class=\"plot heatmap\" xmlns=\"http://www.w3.org/2000/svg\" width=\"30\" "
    "height=\"20\"><text font-weight=\"bold\">Confusion matrix</text></svg></body></html>";

/* Width and height from a PNG file's IHDR chunk; 0 when it is not a PNG. */
static void png_size(const char *path, unsigned *w, unsigned *h)
{
    unsigned char b[24] = {0};
    FILE *f = fopen(path, "rb");
    *w = *h = 0;
    if (!f)
        return;
    size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    if (n == sizeof b && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0 && memcmp(b + 12, "IHDR", 4) == 0) {
        *w = (unsigned)b[16] << 24 | b[17] << 16 | b[18] << 8 | b[19];
        *h = (unsigned)b[20] << 24 | b[21] << 16 | b[22] << 8 | b[23];
    }
}

static void plots_become_numbered_files(void **state)
{
    (void)state;
    char path[512];
    const char *dir = pst_scratch_dir(); /* an existing directory; its files are removed */
    int n = -1;
    pst_err_t err = {0};
    int rc = pst_report_png_write(PAGE, strlen(PAGE), dir, &n, &err);
    if (!pst_report_png_available()) {
        assert_int_equal(rc, PST_ESTATE);
        assert_non_null(strstr(err.msg, "built without librsvg"));
        skip();
    }
    assert_int_equal(rc, PST_OK);
    assert_int_equal(n, 2);
    unsigned w, h;
    snprintf(path, sizeof path, "%s/01-roc-curve-test.png", dir);
    png_size(path, &w, &h);
    assert_int_equal(w, 60 * PST_REPORT_PNG_SCALE);
    assert_int_equal(h, 40 * PST_REPORT_PNG_SCALE);
    snprintf(path, sizeof path, "%s/02-confusion-matrix.png", dir);
    png_size(path, &w, &h);
    assert_int_equal(w, 30 * PST_REPORT_PNG_SCALE);
    snprintf(path, sizeof path, "%s/03-confusion-matrix.png", dir);
    struct stat sb;
    assert_int_not_equal(stat(path, &sb), 0);
}

static void bad_plots_and_paths_are_named(void **state)
{
    (void)state;
    if (!pst_report_png_available())
        skip();
    char file[256];
    const char *dir = pst_scratch_dir();
    const char *broken = "<svg class=\"plot\" width=\"10\"><text font-weight=\"bold\">Oops</svg>";
    pst_err_t err = {0};
    assert_int_equal(pst_report_png_write(broken, strlen(broken), dir, NULL, &err), PST_EFORMAT);
    assert_non_null(strstr(err.msg, "/01-oops.png"));
    pst_scratch_path(file, "not_a_dir");
    FILE *f = fopen(file, "w");
    fclose(f);
    memset(&err, 0, sizeof err);
    assert_int_equal(pst_report_png_write(PAGE, strlen(PAGE), file, NULL, &err), PST_EIO);
    assert_non_null(strstr(err.msg, "not_a_dir: exists and is not a directory"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plots_become_numbered_files),
        cmocka_unit_test(bad_plots_and_paths_are_named),
    };
    return cmocka_run_group_tests(tests, pst_scratch_make, pst_scratch_remove);
}
