/* PNG files of the report's SVG plots, rendered with librsvg and cairo. */
#include "app/report/report_png.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/atomicfile.h"

#ifdef PST_HAVE_RSVG
#include <cairo.h>
#include <librsvg/rsvg.h>
#endif

bool pst_report_png_available(void)
{
#ifdef PST_HAVE_RSVG
    return true;
#else
    return false;
#endif
}

#ifdef PST_HAVE_RSVG
/* NN-title.png from the plot's title (the text after its first bold font weight) up to a colon. */
static void file_name(const char *svg, size_t len, int index, char *name, size_t cap)
{
    const char *marker = "font-weight=\"bold\">";
    const char *t = strstr(svg, marker);
    size_t at = (size_t)snprintf(name, cap, "%02d-", index);
    if (t && (size_t)(t - svg) < len) {
        bool dash = false;
        for (t += strlen(marker); *t && *t != '<' && *t != ':' && at + 6 < cap && at < 72; t++) {
            if (isalnum((unsigned char)*t)) {
                if (dash && name[at - 1] != '-')
                    name[at++] = '-';
                name[at++] = (char)tolower((unsigned char)*t);
                dash = false;
            } else {
                dash = true;
            }
        }
    }
    snprintf(name + at, cap - at, ".png");
}

static int make_dir(const char *dir, pst_err_t *err)
{
    struct stat sb;
    if (stat(dir, &sb) == 0)
        return S_ISDIR(sb.st_mode)
                   ? PST_OK
                   : pst_err_set(err, PST_EIO, "%s: exists and is not a directory", dir);
    if (mkdir(dir, 0777) != 0)
        return pst_err_set(err, PST_EIO, "%s: %s", dir, strerror(errno));
    return PST_OK;
}

typedef struct png_buf {
    unsigned char *data;
    size_t len, cap;
} png_buf_t;

static cairo_status_t png_append(void *ctx, const unsigned char *data, unsigned int n)
{
    png_buf_t *b = ctx;
    if (b->len + n > b->cap) {
        size_t cap = (b->len + n) * 2;
        unsigned char *p = realloc(b->data, cap);
        if (!p)
            return CAIRO_STATUS_NO_MEMORY;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    return CAIRO_STATUS_SUCCESS;
}

/* Renders one SVG document on white into a PNG at path. */
static int render(const char *svg, size_t len, const char *path, pst_err_t *err)
{
    GError *gerr = NULL;
    RsvgHandle *h = rsvg_handle_new_from_data((const guint8 *)svg, len, &gerr);
    double w = 0, hgt = 0;
    if (h && !rsvg_handle_get_intrinsic_size_in_pixels(h, &w, &hgt))
        w = hgt = 0;
    if (!h || w < 1 || hgt < 1 || w > 10000 || hgt > 10000) {
        int rc = pst_err_set(err, PST_EFORMAT, "%s: the plot's SVG cannot be rendered%s%s", path,
                             gerr ? ": " : " (no usable size)", gerr ? gerr->message : "");
        if (gerr)
            g_error_free(gerr);
        if (h)
            g_object_unref(h);
        return rc;
    }
    int s = PST_REPORT_PNG_SCALE;
    cairo_surface_t *surf =
        cairo_image_surface_create(CAIRO_FORMAT_RGB24, (int)(w + 0.5) * s, (int)(hgt + 0.5) * s);
    cairo_t *cr = cairo_create(surf);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_scale(cr, s, s);
    RsvgRectangle viewport = {0, 0, w, hgt};
    gboolean ok = rsvg_handle_render_document(h, cr, &viewport, &gerr);
    png_buf_t buf = {0};
    int rc = PST_OK;
    if (!ok)
        rc = pst_err_set(err, PST_EFORMAT, "%s: rendering the plot failed: %s", path,
                         gerr ? gerr->message : "librsvg gave no reason");
    else if (cairo_surface_write_to_png_stream(surf, png_append, &buf) != CAIRO_STATUS_SUCCESS)
        rc = pst_err_set(err, PST_ENOMEM, "%s: encoding the PNG failed", path);
    else
        rc = pst_write_file_atomic(path, buf.data, buf.len, err);
    free(buf.data);
    if (gerr)
        g_error_free(gerr);
    cairo_destroy(cr);
    cairo_surface_destroy(surf);
    g_object_unref(h);
    return rc;
}
#endif

int pst_report_png_write(const char *page, size_t len, const char *dir, int *n_written,
                         pst_err_t *err)
{
    if (n_written)
        *n_written = 0;
#ifndef PST_HAVE_RSVG
    (void)page;
    (void)len;
    (void)dir;
    return pst_err_set(err, PST_ESTATE,
                       "report --png: this pstrain was built without librsvg (install "
                       "librsvg2-dev, e.g. with scripts/setup.sh, and rebuild)");
#else
    int rc = make_dir(dir, err);
    const char *end = page + len, *at = page;
    int n = 0;
    while (rc == PST_OK && (at = strstr(at, "<svg class=\"plot")) != NULL && at < end) {
        const char *close = strstr(at, "</svg>");
        if (!close)
            return pst_err_set(err, PST_EFORMAT, "plot %d: no closing </svg>", n + 1);
        close += strlen("</svg>");
        char name[96], path[1200];
        file_name(at, (size_t)(close - at), ++n, name, sizeof name);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        rc = render(at, (size_t)(close - at), path, err);
        if (rc == PST_OK && n_written)
            *n_written = n;
        at = close;
    }
    return rc;
#endif
}
