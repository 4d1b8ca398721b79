/* Protected spans: the placeholders and markup of a software string that a
 * translation must carry over unchanged.
 *
 *   "Open <b>%s</b> in {app}"
 *        │   │  │     └ brace field      sentinel 3
 *        │   │  └ closing tag            sentinel 2
 *        │   └ printf conversion         sentinel 1
 *        └ opening tag                   sentinel 0
 *   masked: "Open \uE000\uE001\uE002 in \uE003"
 *
 * Families: printf (%s, %-*s, %1$s, %ld, %%, %*2$d), Qt/KDE (%1, %L1), brace
 * fields ({name}, {0}, {0:>8}), XML/HTML tags (<b>, </b>, <br/>, <a href="x">,
 * <!-- -->) and entities (&amp;, &#38;, &#x26;). Accelerator markers (_File,
 * &File) are not protected: the corpus removes them before training
 * (src/data/corpus_clean.c), so no model learns to place them.
 *
 * Malformed ones pass through untouched and are counted: a '%' that starts
 * no conversion ("%", "%z", "100% "), a '<' + letter that never closes, and
 * tags whose open/close do not pair up ("<b>x", "x</i>", "<b><i></b></i>"
 * leaves the crossing pair unprotected).
 *
 * Sentinel k (0 <= k < PROTECT_MAX) is the private-use code point U+E000 + k,
 * one user-defined piece of the vocabulary (keep in sync with
 * protect_symbols()). A leaf module: no model, no files. */
#ifndef QKV_TEXT_PROTECT_H
#define QKV_TEXT_PROTECT_H

#include <stddef.h>

#define PROTECT_MAX 32

typedef enum {
    PROTECT_PRINTF,
    PROTECT_QT,
    PROTECT_BRACE,
    PROTECT_TAG,
    PROTECT_ENTITY,
    PROTECT_N_KINDS
} protect_kind;

typedef struct {
    size_t start, len; /* bytes of the source text */
    protect_kind kind;
} protect_span;

typedef struct {
    int n;                         /* spans found (at most PROTECT_MAX masked) */
    protect_span span[PROTECT_MAX];
    int overflow;                  /* spans past PROTECT_MAX, left as text */
    int malformed;                 /* malformed candidates left as text */
} protect_spans;

/* Finds the protected spans of text[0..len), in order, non-overlapping. */
void protect_find(const char *text, size_t len, protect_spans *out);

/* The UTF-8 of sentinel k (3 bytes + NUL) into buf[4]. */
void protect_sentinel(int k, char buf[4]);
/* Sentinel index of the 3 bytes at s (at least 3 readable when s[0] is
 * 0xEE), or -1. */
int protect_sentinel_at(const char *s);
/* "\uE000,\uE001,..." (n sentinels) for --user-defined-symbols; static. */
const char *protect_symbols(void);

/* Masked copy of text (malloc'ed, NULL when out of memory): each span of sp
 * replaced by its sentinel. */
char *protect_mask(const char *text, const protect_spans *sp);

/* Unmasks a translation: each sentinel k < sp->n becomes text's span k;
 * sentinels past sp->n are dropped. counts[k] (may be NULL, PROTECT_MAX
 * ints) receives how often sentinel k occurred. malloc'ed, NULL when out of
 * memory. */
char *protect_unmask(const char *masked, const char *text, const protect_spans *sp, int *counts, int *stray);

/* Masks a training pair: the source as protect_mask; each span of the
 * target whose text equals a not yet used source span gets that span's
 * sentinel (first match in order), others stay as text. *src_out, *tgt_out
 * malloc'ed. Returns 0, or -1 when out of memory. *matched = target spans
 * masked. */
int protect_mask_pair(const char *src, const char *tgt, char **src_out, char **tgt_out, int *matched);

#endif
