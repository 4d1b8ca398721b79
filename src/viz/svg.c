#include "viz/svg.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/io.h"
#include "base/status.h"

static int reserve(svg_buf *b, size_t extra)
{
    if (b->failed)
        return 0;
    if (b->n + extra + 1 <= b->cap)
        return 1;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + extra + 1)
        cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) {
        b->failed = 1;
        return 0;
    }
    b->s = s;
    b->cap = cap;
    return 1;
}

void svg_printf(svg_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (need < 0 || !reserve(b, (size_t)need))
        return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->n, (size_t)need + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)need;
}

static void put(svg_buf *b, const char *s, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

/* Length of the valid UTF-8 sequence at p (0 when invalid). */
static int utf8_len(const unsigned char *p)
{
    unsigned c = p[0];
    int len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (!len)
        return 0;
    unsigned long cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
    for (int k = 1; k < len; k++) {
        if ((p[k] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[k] & 0x3F);
    }
    static const unsigned long min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000) || cp == 0xFFFE || cp == 0xFFFF)
        return 0;
    return len;
}

void svg_text(svg_buf *b, const char *text)
{
    const unsigned char *p = (const unsigned char *)(text ? text : "");
    while (*p) {
        int len = utf8_len(p);
        if (!len) {
            put(b, "\xEF\xBF\xBD", 3);
            p++;
            continue;
        }
        switch (*p) {
        case '&': put(b, "&amp;", 5); break;
        case '<': put(b, "&lt;", 4); break;
        case '>': put(b, "&gt;", 4); break;
        case '"': put(b, "&quot;", 6); break;
        case '\'': put(b, "&#39;", 5); break;
        default:
            /* XML 1.0 forbids C0 controls other than tab, newline, return */
            if (*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r')
                put(b, "\xEF\xBF\xBD", 3);
            else
                put(b, (const char *)p, (size_t)len);
        }
        p += len;
    }
}

qkv_status svg_commit(svg_buf *b, const char *path)
{
    if (b->failed) {
        svg_free(b);
        return qkv_fail(QKV_ERR_NOMEM, "%s: out of memory while drawing", path);
    }
    qkv_status s = qkv_write_file(path, b->s, b->n);
    svg_free(b);
    return s;
}

void svg_free(svg_buf *b)
{
    free(b->s);
    memset(b, 0, sizeof *b);
}

void svg_ramp(double t, int rgb[3])
{
    /* ColorBrewer "Blues" (9 classes), light to dark */
    static const int stops[9][3] = {{247, 251, 255}, {222, 235, 247}, {198, 219, 239}, {158, 202, 225}, {107, 174, 214},
                                    {66, 146, 198},  {33, 113, 181},  {8, 81, 156},    {8, 48, 107}};
    if (!(t > 0))
        t = 0;
    if (t > 1)
        t = 1;
    double x = t * 8;
    int i = (int)x;
    if (i > 7)
        i = 7;
    double f = x - i;
    for (int k = 0; k < 3; k++)
        rgb[k] = (int)lround(stops[i][k] + f * (stops[i + 1][k] - stops[i][k]));
}

double svg_text_width(const char *text)
{
    const unsigned char *p = (const unsigned char *)(text ? text : "");
    double w = 0;
    while (*p) {
        int len = utf8_len(p);
        if (!len)
            len = 1;
        w += len >= 3 && *p >= 0xE1 ? 2.0 : 1.0; /* U+1000 and up: mostly wide scripts */
        p += len;
    }
    return w;
}

int svg_nice_ticks(double *lo, double *hi, int max_ticks, double *ticks)
{
    double a = *lo, z = *hi;
    if (!(z > a)) {
        double pad = fabs(a) > 0 ? fabs(a) * 0.1 : 1.0;
        a -= pad;
        z += pad;
    }
    double raw = (z - a) / (max_ticks > 2 ? max_ticks - 1 : 1);
    if (!isfinite(raw) || raw <= 0) { /* ranges near DBL_MAX: just the ends */
        ticks[0] = *lo = a;
        ticks[1] = *hi = z > a ? z : a + 1;
        return 2;
    }
    double mag = pow(10, floor(log10(raw)));
    double steps[] = {1, 2, 2.5, 5, 10};
    double step = 10 * mag;
    for (int k = 0; k < 5; k++)
        if (steps[k] * mag >= raw) {
            step = steps[k] * mag;
            break;
        }
    double first = floor(a / step) * step, last = ceil(z / step) * step;
    int n = 0;
    for (double v = first; v <= last + step * 0.5 && n < max_ticks + 2; v += step)
        ticks[n++] = fabs(v) < step * 1e-9 ? 0.0 : v;
    *lo = first;
    *hi = ticks[n - 1];
    return n;
}

void svg_fmt_num(char *buf, size_t size, double v)
{
    double a = fabs(v);
    if (a != 0 && (a < 1e-3 || a >= 1e7))
        snprintf(buf, size, "%.3g", v);
    else if (a >= 1000) /* tokens per second, steps: whole numbers read best */
        snprintf(buf, size, "%.0f", v);
    else
        snprintf(buf, size, "%.4g", v);
}
