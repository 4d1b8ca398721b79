/* A growing NUL-terminated byte string for writers that build text in
 * memory (JSON headers, .po files, HTTP replies). An allocation failure
 * sets oom and turns later calls into no-ops, so a writer checks once at
 * the end. */
#ifndef QKV_BASE_STRBUF_H
#define QKV_BASE_STRBUF_H

#include <stddef.h>

#include "base/status.h"

typedef struct {
    char *p; /* NUL-terminated once anything was added; NULL before */
    size_t n, cap;
    int oom;
} sbuf;

/* Appends s[0, n). */
void sb_add(sbuf *b, const char *s, size_t n);
/* Appends a NUL-terminated string. */
void sb_str(sbuf *b, const char *s);
/* Appends printf output (any length). */
void sb_printf(sbuf *b, const char *fmt, ...) QKV_PRINTF(2, 3);
/* The string ("" when nothing was added), owned by the caller; NULL (and
 * the buffer freed) after an allocation failure. */
char *sb_take(sbuf *b);

#endif
