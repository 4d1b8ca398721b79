/* Attention heatmaps as self-contained SVG.
 *
 * Layout of one panel (all panels of a picture share it):
 *
 *        panel title
 *         / / / /        source tokens, rotated 60 degrees
 *   tgt0 [][][][]
 *   tgt1 [][][][]        one cell per (target, source) weight
 *
 * Panels are laid out in a grid (layers down, heads across, the mean last),
 * with a colour legend on the right. One colour scale (0 to the largest
 * weight) serves every panel so that panels compare. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/status.h"
#include "viz/svg.h"

#define SIN60 0.8660254
#define COS60 0.5

typedef struct {
    double cs, fs;          /* cell size, label font size */
    double left, top, right; /* label margins inside a panel */
    double title_h, pw, ph; /* panel title height, panel size */
} panel_layout;

static panel_layout layout(const char *const *src, int n_src, const char *const *tgt, int n_tgt)
{
    panel_layout L;
    int n = n_src > n_tgt ? n_src : n_tgt;
    L.cs = floor(720.0 / n);
    L.cs = L.cs < 6 ? 6 : L.cs > 24 ? 24 : L.cs;
    L.fs = L.cs * 0.6 < 7 ? 7 : L.cs * 0.6 > 12 ? 12 : L.cs * 0.6;
    double cw = L.fs * 0.62, sw = 0, tw = 0; /* average glyph width */
    for (int i = 0; i < n_src; i++) {
        double w = svg_text_width(src[i]);
        sw = w > sw ? w : sw;
    }
    for (int i = 0; i < n_tgt; i++) {
        double w = svg_text_width(tgt[i]);
        tw = w > tw ? w : tw;
    }
    sw = sw > 40 ? 40 : sw; /* very long tokens overflow rather than dwarf the grid */
    tw = tw > 40 ? 40 : tw;
    L.title_h = 18;
    L.left = tw * cw + 8;
    L.top = sw * cw * SIN60 + 8;
    double over = sw * cw * COS60 - (n_src - 0.5) * L.cs; /* labels running past the grid's right edge */
    L.right = (over > 0 ? over : 0) + 12;
    L.pw = L.left + n_src * L.cs + L.right;
    L.ph = L.title_h + L.top + n_tgt * L.cs + 12;
    return L;
}

static void draw_panel(svg_buf *b, const panel_layout *L, double x0, double y0, const char *name,
                       const char *const *src, int n_src, const char *const *tgt, int n_tgt, const float *w,
                       double vmax)
{
    svg_printf(b, "<g class=\"panel\" transform=\"translate(%.1f,%.1f)\">\n", x0, y0);
    svg_printf(b, "<text class=\"ptitle\" x=\"%.1f\" y=\"13\">", L->left);
    svg_text(b, name);
    svg_printf(b, "</text>\n");
    double gx = L->left, gy = L->title_h + L->top;
    for (int s = 0; s < n_src; s++) {
        double x = gx + (s + 0.5) * L->cs, y = gy - 4;
        svg_printf(b, "<text class=\"src\" x=\"%.1f\" y=\"%.1f\" transform=\"rotate(-60 %.1f %.1f)\">", x, y, x, y);
        svg_text(b, src[s]);
        svg_printf(b, "</text>\n");
    }
    for (int t = 0; t < n_tgt; t++) {
        svg_printf(b, "<text class=\"tgt\" x=\"%.1f\" y=\"%.1f\">", gx - 4, gy + (t + 0.5) * L->cs);
        svg_text(b, tgt[t]);
        svg_printf(b, "</text>\n");
    }
    for (int t = 0; t < n_tgt; t++)
        for (int s = 0; s < n_src; s++) {
            double v = w[(size_t)t * n_src + s];
            int rgb[3] = {214, 39, 40}; /* non-finite weights stand out in red */
            if (isfinite(v))
                svg_ramp(v / vmax, rgb);
            svg_printf(b,
                       "<rect class=\"cell\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                       "fill=\"#%02x%02x%02x\"><title>%.4f</title></rect>\n",
                       gx + s * L->cs, gy + t * L->cs, L->cs, L->cs, rgb[0], rgb[1], rgb[2], v);
        }
    svg_printf(b, "<rect class=\"frame\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>\n", gx, gy,
               n_src * L->cs, n_tgt * L->cs);
    svg_printf(b, "</g>\n");
}

static void draw_legend(svg_buf *b, double x, double y, double h, double vmax)
{
    svg_printf(b, "<defs><linearGradient id=\"ramp\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">\n");
    for (int k = 0; k <= 8; k++) {
        int rgb[3];
        svg_ramp(k / 8.0, rgb);
        svg_printf(b, "<stop offset=\"%.3f\" stop-color=\"#%02x%02x%02x\"/>\n", k / 8.0, rgb[0], rgb[1], rgb[2]);
    }
    svg_printf(b, "</linearGradient></defs>\n");
    svg_printf(b, "<g class=\"legend\" transform=\"translate(%.1f,%.1f)\">\n", x, y);
    svg_printf(b, "<text class=\"ptitle\" x=\"0\" y=\"-8\">weight</text>\n");
    svg_printf(b, "<rect x=\"0\" y=\"0\" width=\"16\" height=\"%.1f\" fill=\"url(#ramp)\" stroke=\"#555\"/>\n", h);
    for (int k = 0; k <= 4; k++) {
        double v = vmax * k / 4, ty = h - h * k / 4;
        char num[32];
        svg_fmt_num(num, sizeof num, v);
        svg_printf(b, "<line x1=\"16\" y1=\"%.1f\" x2=\"20\" y2=\"%.1f\" stroke=\"#555\"/>", ty, ty);
        svg_printf(b, "<text class=\"tick\" x=\"23\" y=\"%.1f\">%s</text>\n", ty + 4, num);
    }
    svg_printf(b, "</g>\n");
}

static qkv_status check(const char *path, const char *const *src, int n_src, const char *const *tgt, int n_tgt,
                        const float *w, int n_layers, int n_heads)
{
    if (!path || !src || !tgt || !w || n_src < 1 || n_tgt < 1 || n_layers < 1 || n_heads < 1)
        return qkv_fail(QKV_ERR_ARG,
                        "attention picture %s: need tokens and weights (n_src %d, n_tgt %d, layers %d, heads %d)",
                        path ? path : "(null)", n_src, n_tgt, n_layers, n_heads);
    return QKV_OK;
}

qkv_status qkv_viz_attention_layers_svg(const char *path, const char *const *src, int n_src,
                                        const char *const *tgt, int n_tgt, const float *weights, int n_layers,
                                        int n_heads, const char *title)
{
    QKV_TRY(check(path, src, n_src, tgt, n_tgt, weights, n_layers, n_heads));
    size_t plane = (size_t)n_tgt * n_src;
    float *mean = malloc(plane * sizeof *mean);
    if (!mean)
        return qkv_fail(QKV_ERR_NOMEM, "%s: out of memory", path);
    double vmax = 0;
    for (size_t i = 0; i < plane * n_layers * n_heads; i++)
        if (isfinite(weights[i]) && weights[i] > vmax)
            vmax = weights[i];
    if (vmax <= 0)
        vmax = 1;

    panel_layout L = layout(src, n_src, tgt, n_tgt);
    int n_panels = n_heads + (n_heads > 1), cols = n_panels, rows = n_layers;
    if (n_layers == 1 && n_panels > 1) { /* one layer: wrap the heads into a roughly 1600-px-wide grid */
        cols = (int)(1600 / L.pw);
        cols = cols < 1 ? 1 : cols > n_panels ? n_panels : cols;
        rows = (n_panels + cols - 1) / cols;
    }
    double head_w = n_layers > 1 ? 70 : 0, title_h = title ? 34 : 10;
    double legend_x = head_w + cols * L.pw + 10, legend_h = 200;
    double W = legend_x + 70, H = title_h + rows * L.ph + 10;
    if (H < title_h + legend_h + 40)
        H = title_h + legend_h + 40;

    svg_buf b = {0};
    svg_printf(&b,
               "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\">\n",
               W, H, W, H);
    svg_printf(&b,
               "<style>text{font-family:'Noto Sans','Noto Sans CJK SC','DejaVu Sans',sans-serif;fill:#222}"
               ".src{font-size:%.1fpx}.tgt{font-size:%.1fpx;text-anchor:end;dominant-baseline:central}"
               ".ptitle{font-size:12px;font-weight:bold}.title{font-size:16px;font-weight:bold}"
               ".tick{font-size:10px}.frame{fill:none;stroke:#888;stroke-width:0.5}</style>\n",
               L.fs, L.fs);
    svg_printf(&b, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    if (title) {
        svg_printf(&b, "<text class=\"title\" x=\"10\" y=\"22\">");
        svg_text(&b, title);
        svg_printf(&b, "</text>\n");
    }
    char name[64];
    for (int l = 0; l < n_layers; l++) {
        const float *lw = weights + (size_t)l * n_heads * plane;
        for (size_t i = 0; i < plane; i++) {
            double sum = 0;
            for (int h = 0; h < n_heads; h++)
                sum += lw[(size_t)h * plane + i];
            mean[i] = (float)(sum / n_heads);
        }
        if (n_layers > 1)
            svg_printf(&b, "<text class=\"ptitle\" x=\"10\" y=\"%.1f\">layer %d</text>\n",
                       title_h + l * L.ph + L.title_h + L.top + 12, l + 1);
        for (int p = 0; p < n_panels; p++) {
            int r = n_layers > 1 ? l : p / cols, c = n_layers > 1 ? p : p % cols;
            const float *pw = p < n_heads ? lw + (size_t)p * plane : mean;
            if (p < n_heads)
                snprintf(name, sizeof name, "head %d", p + 1);
            else
                snprintf(name, sizeof name, "mean of %d heads", n_heads);
            draw_panel(&b, &L, head_w + c * L.pw, title_h + r * L.ph, name, src, n_src, tgt, n_tgt, pw, vmax);
        }
    }
    draw_legend(&b, legend_x, title_h + 30, legend_h, vmax);
    svg_printf(&b, "</svg>\n");
    free(mean);
    return svg_commit(&b, path);
}

qkv_status qkv_viz_attention_svg(const char *path, const char *const *src, int n_src, const char *const *tgt,
                                 int n_tgt, const float *weights, int n_heads, const char *title)
{
    return qkv_viz_attention_layers_svg(path, src, n_src, tgt, n_tgt, weights, 1, n_heads, title);
}
