/* A small SVG writer: a growable text buffer, XML escaping of UTF-8 text,
 * a sequential colour ramp and "nice" axis ticks. */
#ifndef QKV_VIZ_SVG_H
#define QKV_VIZ_SVG_H

#include <stddef.h>

#include "qkv.h"

#if defined(__GNUC__)
#define VIZ_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define VIZ_PRINTF(a, b)
#endif

typedef struct {
    char *s;
    size_t n, cap;
    int failed; /* an allocation failed; later calls do nothing */
} svg_buf;

void svg_printf(svg_buf *b, const char *fmt, ...) VIZ_PRINTF(2, 3);
/* Appends text escaped for XML character data and attribute values:
 * & < > " ' as entities, control characters and invalid UTF-8 as U+FFFD. */
void svg_text(svg_buf *b, const char *text);
/* Writes the buffer atomically to path and releases it. */
qkv_status svg_commit(svg_buf *b, const char *path);
void svg_free(svg_buf *b);

/* Colour for t in [0, 1] on a light-to-dark blue ramp whose luminance falls
 * strictly with t (so darker always means more weight). */
void svg_ramp(double t, int rgb[3]);

/* Display width of UTF-8 text in units of an average Latin character
 * (CJK and other wide characters count 2), for layout. */
double svg_text_width(const char *text);

/* Up to max_ticks "nice" tick values (1, 2 or 5 times a power of ten) that
 * cover [lo, hi]; returns the count and widens *lo, *hi to the outer ticks. */
int svg_nice_ticks(double *lo, double *hi, int max_ticks, double *ticks);

/* A short tick label: whole numbers from 1000 up, 4 significant digits
 * below, exponent form only for very small or very large values. */
void svg_fmt_num(char *buf, size_t size, double v);

#endif
