/* Training curves as SVG small multiples: one panel per series, each with
 * its own y range, in a grid two panels wide. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/status.h"
#include "viz/svg.h"

#define PW 380.0 /* panel size and plot-area margins */
#define PH 230.0
#define ML 62.0
#define MR 16.0
#define MT 28.0
#define MB 40.0

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"};

/* (v - lo) / (hi - lo), halved first so that ranges near DBL_MAX do not
 * overflow to inf / inf. */
static double frac(double v, double lo, double hi) { return (0.5 * v - 0.5 * lo) / (0.5 * hi - 0.5 * lo); }

static void draw_series(svg_buf *b, const qkv_viz_series *s, int idx, double x0, double y0, const char *x_label)
{
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    int finite = 0;
    for (int i = 0; i < s->n; i++) {
        if (!isfinite(s->x[i]) || !isfinite(s->y[i]))
            continue;
        finite++;
        xlo = fmin(xlo, s->x[i]), xhi = fmax(xhi, s->x[i]);
        ylo = fmin(ylo, s->y[i]), yhi = fmax(yhi, s->y[i]);
    }
    svg_printf(b, "<g class=\"panel\" transform=\"translate(%.1f,%.1f)\">\n", x0, y0);
    svg_printf(b, "<text class=\"ptitle\" x=\"%.1f\" y=\"18\">", ML);
    svg_text(b, s->name);
    svg_printf(b, "</text>\n");
    double w = PW - ML - MR, h = PH - MT - MB;
    svg_printf(b, "<rect class=\"plot\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>\n", ML, MT, w, h);
    if (!finite) {
        svg_printf(b, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\">no data</text>\n</g>\n", ML + w / 2 - 20, MT + h / 2);
        return;
    }
    double xt[16], yt[16];
    int nx = svg_nice_ticks(&xlo, &xhi, 6, xt), ny = svg_nice_ticks(&ylo, &yhi, 5, yt);
#define PX(v) (ML + frac(v, xlo, xhi) * w)
#define PY(v) (MT + h - frac(v, ylo, yhi) * h)
    char num[32];
    for (int k = 0; k < nx; k++) {
        svg_fmt_num(num, sizeof num, xt[k]);
        svg_printf(b, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", PX(xt[k]), MT, PX(xt[k]),
                   MT + h);
        svg_printf(b, "<text class=\"tick xt\" x=\"%.1f\" y=\"%.1f\">%s</text>\n", PX(xt[k]), MT + h + 14, num);
    }
    for (int k = 0; k < ny; k++) {
        svg_fmt_num(num, sizeof num, yt[k]);
        svg_printf(b, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", ML, PY(yt[k]), ML + w,
                   PY(yt[k]));
        svg_printf(b, "<text class=\"tick yt\" x=\"%.1f\" y=\"%.1f\">%s</text>\n", ML - 5, PY(yt[k]) + 3.5, num);
    }
    svg_printf(b, "<text class=\"xlabel\" x=\"%.1f\" y=\"%.1f\">", ML + w / 2, PH - 6);
    svg_text(b, x_label ? x_label : "step");
    svg_printf(b, "</text>\n");
    const char *colour = palette[idx % (int)(sizeof palette / sizeof palette[0])];
    /* one polyline per run of finite points: NaN leaves a gap */
    int open = 0;
    for (int i = 0; i < s->n; i++) {
        int ok = isfinite(s->x[i]) && isfinite(s->y[i]);
        if (ok && !open) {
            svg_printf(b, "<polyline class=\"line\" stroke=\"%s\" points=\"", colour);
            open = 1;
        } else if (!ok && open) {
            svg_printf(b, "\"/>\n");
            open = 0;
        }
        if (ok)
            svg_printf(b, "%.1f,%.1f ", PX(s->x[i]), PY(s->y[i]));
    }
    if (open)
        svg_printf(b, "\"/>\n");
    if (finite <= 60) /* sparse series (dev scores) get markers */
        for (int i = 0; i < s->n; i++)
            if (isfinite(s->x[i]) && isfinite(s->y[i]))
                svg_printf(b, "<circle class=\"pt\" cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>\n", PX(s->x[i]),
                           PY(s->y[i]), colour);
#undef PX
#undef PY
    svg_printf(b, "</g>\n");
}

qkv_status qkv_viz_curves_svg(const char *path, const qkv_viz_series *series, int n_series, const char *x_label,
                              const char *title)
{
    if (!path || !series || n_series < 1)
        return qkv_fail(QKV_ERR_ARG, "curves picture %s: need at least one series (got %d)", path ? path : "(null)",
                        n_series);
    for (int i = 0; i < n_series; i++)
        if (series[i].n < 0 || (series[i].n > 0 && (!series[i].x || !series[i].y)))
            return qkv_fail(QKV_ERR_ARG, "curves picture %s: series %d has no data arrays", path, i);
    int cols = n_series < 2 ? 1 : 2, rows = (n_series + cols - 1) / cols;
    double top = title ? 34 : 6, W = cols * PW + 10, H = top + rows * PH + 6;
    svg_buf b = {0};
    svg_printf(&b,
               "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\">\n",
               W, H, W, H);
    svg_printf(&b, "<style>text{font-family:'Noto Sans','DejaVu Sans',sans-serif;fill:#222}"
                   ".title{font-size:16px;font-weight:bold}.ptitle{font-size:13px;font-weight:bold}"
                   ".tick{font-size:10px}.xt{text-anchor:middle}.yt{text-anchor:end}"
                   ".xlabel{font-size:11px;text-anchor:middle}.plot{fill:#fafafa;stroke:#888}"
                   ".grid{stroke:#e2e2e2;stroke-width:1}.line{fill:none;stroke-width:1.6}</style>\n");
    svg_printf(&b, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    if (title) {
        svg_printf(&b, "<text class=\"title\" x=\"10\" y=\"22\">");
        svg_text(&b, title);
        svg_printf(&b, "</text>\n");
    }
    for (int i = 0; i < n_series; i++)
        draw_series(&b, &series[i], i, 5 + (i % cols) * PW, top + (i / cols) * PH, x_label);
    svg_printf(&b, "</svg>\n");
    return svg_commit(&b, path);
}
