/* SVG line plots and heat maps: nice ticks, a palette, legends. */
#include "app/report/svgplot.h"

#include <math.h>
#include <string.h>

#define W 640
#define H 340
#define ML 64 /* margins: left, right, top, bottom */
#define MR 170
#define MT 34
#define MB 46

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                      "#9467bd", "#8c564b", "#e377c2", "#17becf"};
#define N_COLOURS (int)(sizeof palette / sizeof palette[0])

void pst_html_escape(FILE *out, const char *text)
{
    for (const char *p = text ? text : ""; *p; p++) {
        switch (*p) {
        case '&':
            fputs("&amp;", out);
            break;
        case '<':
            fputs("&lt;", out);
            break;
        case '>':
            fputs("&gt;", out);
            break;
        case '"':
            fputs("&quot;", out);
            break;
        default:
            fputc(*p, out);
        }
    }
}

typedef struct range {
    double lo, hi;
} range_t;

static void widen(range_t *r, double v)
{
    if (!isfinite(v))
        return;
    r->lo = v < r->lo ? v : r->lo;
    r->hi = v > r->hi ? v : r->hi;
}

/* A tick step of 1, 2 or 5 times a power of ten giving about five ticks over the range. */
static double tick_step(double span)
{
    double raw = span / 5, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

/* Pads an empty or flat range so it has a width, then rounds it out to whole ticks. */
static double settle(range_t *r)
{
    if (r->lo > r->hi)
        r->lo = 0, r->hi = 1;
    if (r->hi - r->lo < 1e-12 * (fabs(r->hi) + 1))
        r->lo -= 0.5 * (fabs(r->lo) + 1e-3), r->hi += 0.5 * (fabs(r->hi) + 1e-3);
    double step = tick_step(r->hi - r->lo);
    r->lo = floor(r->lo / step) * step;
    r->hi = ceil(r->hi / step) * step;
    return step;
}

static double sx(const range_t *r, double x)
{
    return ML + (x - r->lo) / (r->hi - r->lo) * (W - ML - MR);
}

static double sy(const range_t *r, double y)
{
    return H - MB - (y - r->lo) / (r->hi - r->lo) * (H - MT - MB);
}

static void draw_axes(FILE *out, const pst_svg_axes_t *a, const range_t *xr, double xstep,
                      const range_t *yr, double ystep)
{
    fprintf(out,
            "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#fff\" "
            "stroke=\"#999\"/>\n",
            ML, MT, W - ML - MR, H - MT - MB);
    for (double y = yr->lo; y <= yr->hi + ystep / 2; y += ystep) {
        double py = sy(yr, y);
        fprintf(out,
                "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>"
                "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\">%.4g</text>\n",
                ML, W - MR, py, py, ML - 4, py + 4, fabs(y) < ystep * 1e-9 ? 0 : y);
    }
    if (a->xticks) {
        for (int i = 0; i < a->n_xticks; i++) {
            fprintf(out, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" font-size=\"11\">",
                    sx(xr, i), H - MB + 15);
            pst_html_escape(out, a->xticks[i]);
            fputs("</text>\n", out);
        }
    } else {
        for (double x = xr->lo; x <= xr->hi + xstep / 2; x += xstep)
            fprintf(out,
                    "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" font-size=\"11\">"
                    "%.4g</text>\n",
                    sx(xr, x), H - MB + 15, fabs(x) < xstep * 1e-9 ? 0 : x);
    }
    fprintf(out, "<text x=\"%d\" y=\"20\" font-size=\"14\" font-weight=\"bold\">", ML);
    pst_html_escape(out, a->title);
    fprintf(out, "</text>\n<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"12\">",
            (W - MR + ML) / 2, H - 8);
    pst_html_escape(out, a->xlabel);
    fprintf(out,
            "</text>\n<text x=\"14\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\" "
            "transform=\"rotate(-90 14 %d)\">",
            (H - MB + MT) / 2, (H - MB + MT) / 2);
    pst_html_escape(out, a->ylabel);
    fputs("</text>\n", out);
}

static void draw_series(FILE *out, const pst_svg_series_t *s, int i, const range_t *xr,
                        const range_t *yr)
{
    const char *colour = s->colour ? s->colour : palette[i % N_COLOURS];
    if (!s->points) {
        fprintf(out, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%s\"%s points=\"",
                colour, s->emphasis ? "3.2" : "1.8", s->dashed ? " stroke-dasharray=\"5 3\"" : "");
        for (int k = 0; k < s->n; k++)
            if (isfinite(s->x[k]) && isfinite(s->y[k]))
                fprintf(out, "%.1f,%.1f ", sx(xr, s->x[k]), sy(yr, s->y[k]));
        fputs("\"/>\n", out);
    }
    for (int k = 0; k < s->n && !(s->bare && !s->points); k++)
        if (isfinite(s->x[k]) && isfinite(s->y[k]))
            fprintf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%s\" fill=\"%s\"/>\n",
                    sx(xr, s->x[k]), sy(yr, s->y[k]), s->points ? "3.5" : "2", colour);
    int ly = MT + 14 + 18 * i;
    fprintf(out,
            "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"%s/>"
            "<text x=\"%d\" y=\"%d\" font-size=\"11\">",
            W - MR + 10, W - MR + 30, ly - 4, ly - 4, colour,
            s->dashed ? " stroke-dasharray=\"5 3\"" : "", W - MR + 34, ly);
    pst_html_escape(out, s->name);
    fputs("</text>\n", out);
}

void pst_svg_plot(FILE *out, const pst_svg_axes_t *a, const pst_svg_series_t *series, int n_series)
{
    range_t xr = {INFINITY, -INFINITY}, yr = {INFINITY, -INFINITY};
    for (int i = 0; i < n_series; i++)
        for (int k = 0; k < series[i].n; k++)
            if (isfinite(series[i].x[k]) && isfinite(series[i].y[k]))
                widen(&xr, series[i].x[k]), widen(&yr, series[i].y[k]);
    if (isfinite(a->mark_x))
        widen(&xr, a->mark_x);
    bool whole = true; /* epochs and rounds: no tick between two of them */
    for (int i = 0; i < n_series && whole; i++)
        for (int k = 0; k < series[i].n && whole; k++)
            whole = !isfinite(series[i].x[k]) || series[i].x[k] == floor(series[i].x[k]);
    double xstep = 1;
    if (a->xticks)
        xr.lo = -0.5, xr.hi = a->n_xticks - 0.5;
    else if ((xstep = settle(&xr)) < 1 && whole)
        xstep = 1;
    double ystep = settle(&yr);
    fprintf(out,
            "<svg class=\"plot\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
            "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n",
            W, H, W, H);
    draw_axes(out, a, &xr, xstep, &yr, ystep);
    if (isfinite(a->mark_x)) {
        double px = sx(&xr, a->mark_x);
        fprintf(out,
                "<line class=\"marker\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" "
                "stroke=\"#555\" stroke-dasharray=\"2 3\"/><text x=\"%.1f\" y=\"%d\" "
                "font-size=\"11\" fill=\"#555\">",
                px, px, MT, H - MB, px + 3, MT + 12);
        pst_html_escape(out, a->mark_label);
        fputs("</text>\n", out);
    }
    for (int i = 0; i < n_series; i++)
        draw_series(out, &series[i], i, &xr, &yr);
    fputs("</svg>\n", out);
}

void pst_svg_heatmap(FILE *out, const char *title, const double *m, int k, const char *const *names)
{
    int cell = k <= 4 ? 64 : k <= 10 ? 42 : 24, left = 110, top = 40;
    int w = left + cell * k + 20, h = top + cell * k + 50;
    fprintf(out,
            "<svg class=\"plot heatmap\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
            "height=\"%d\" font-family=\"sans-serif\">\n<text x=\"10\" y=\"20\" "
            "font-size=\"14\" font-weight=\"bold\">",
            w, h);
    pst_html_escape(out, title);
    fputs("</text>\n", out);
    for (int i = 0; i < k; i++) {
        double row = 0;
        for (int j = 0; j < k; j++)
            row += m[i * k + j];
        for (int j = 0; j < k; j++) {
            double share = row > 0 ? m[i * k + j] / row : 0;
            int shade = 255 - (int)(share * 200);
            fprintf(out,
                    "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
                    "fill=\"rgb(%d,%d,255)\" stroke=\"#fff\"/><text x=\"%d\" y=\"%d\" "
                    "text-anchor=\"middle\" font-size=\"%d\" fill=\"%s\">%.0f</text>\n",
                    left + j * cell, top + i * cell, cell, cell, shade, shade,
                    left + j * cell + cell / 2, top + i * cell + cell / 2 + 4, cell > 30 ? 12 : 9,
                    share > 0.6 ? "#fff" : "#000", m[i * k + j]);
        }
        fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" font-size=\"11\">", left - 6,
                top + i * cell + cell / 2 + 4);
        pst_html_escape(out, names[i]);
        fprintf(out, "</text><text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"11\">",
                left + i * cell + cell / 2, top + k * cell + 16);
        pst_html_escape(out, names[i]);
        fputs("</text>\n", out);
    }
    fprintf(out,
            "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"12\">predicted"
            "</text><text x=\"10\" y=\"%d\" font-size=\"12\">true</text>\n</svg>\n",
            left + cell * k / 2, top + k * cell + 38, top - 6);
}
