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
 * <!-- -->), entities (&amp;, &#38;, &#x26;) and LibreOffice's variables
 * (%PRODUCTNAME, %MOD1: '%', an upper-case letter and two or more of A-Z, 0-9,
 * _, not followed by a lower-case letter). Accelerator markers (_File,
 * &File) are not protected: the corpus removes them before training
 * (src/data/corpus_clean.c), so no model learns to place them.
 *
 * Malformed ones pass through untouched and are counted: a '%' that starts
 * no conversion ("%", "%z", "100% "), a '<' + letter that never closes, and
 * tags whose open/close do not pair up ("<b>x", "x</i>", "<b><i></b></i>"
 * leaves the crossing pair unprotected). Their text is recorded in bad[], so
 * that a check can see whether a translation kept them as text: a '%' with
 * the word it starts ("%z"), a '<' with its name ("<b"), a whole unpaired tag.
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
    PROTECT_VARIABLE, /* LibreOffice's %PRODUCTNAME, %MOD1 */
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
    int n_bad;                     /* the first PROTECT_MAX of them: */
    protect_span bad[PROTECT_MAX]; /* "%z", "<b" (never closes), "<b>" (unpaired) */
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

/* The printf arguments of text's spans: argi[k] (sp->n ints) = 1, 2, ... for
 * each conversion that takes an argument, in order; 0 for others (%%, %m,
 * other families). Returns 1, or 0 with every argi 0 when a conversion is
 * positional ("%1$s") or has a '*' (then nothing is renumbered). */
int protect_printf_args(const char *text, const protect_spans *sp, int *argi);

/* A span as a comparison key into buf[cap] (0, or -1 when it does not fit):
 * its text, except that a printf argument is "N$%rest" (argi = N from
 * protect_printf_args, or the N of a positional "%N$rest" when argi is 0), so
 * that "%s %s" and "%2$s %1$s" compare equal as sets, as msgfmt --check
 * compares them. */
int protect_span_key(const char *text, const protect_span *span, int argi, char *buf, size_t cap);

/* protect_unmask, except when the printf arguments of text (protect_printf_args
 * returns 1) come out of their source order: then each is written in its
 * positional form ("%s" as "%2$s" for the second argument) so that the
 * program's arguments still land where the source puts them; *reordered = 1.
 * malloc'ed, NULL when out of memory. */
char *protect_unmask_args(const char *masked, const char *text, const protect_spans *sp, int *reordered);

/* Drops from a masked translation m, in place, the placeholders and tags
 * written as plain text ("%1$s" spelled out in pieces instead of a sentinel):
 * they are not the source's, and a translation with an extra %s fails
 * msgfmt --check or crashes the program. The parser that found the source's
 * spans finds them, so what it leaves to the source as text (malformed "%z",
 * an unpaired "<b>") stays here too; sentinels inside a dropped span stay;
 * one of two spaces around a dropped span goes with it. Nothing is dropped
 * when m holds more than PROTECT_MAX spans. Returns how many were dropped. */
int protect_drop_literals(char *m);

/* The keys (protect_span_key) of text's protected spans, or with malformed
 * set the text of its malformed candidates (bad[]), sorted, each followed by
 * '\n'; *n their count. malloc'ed, NULL when out of memory. Two texts keep
 * the same placeholders when their keys are equal. */
char *protect_keys(const char *text, int malformed, int *n);

typedef struct {
    int literals;   /* placeholders written as text, dropped */
    int nested;     /* 1: crossed or inverted tags put back in nesting order */
    int reordered;  /* 1: printf arguments written positionally */
    int scrubbed;   /* 1: text ran into the spans; the fallback ran */
    int unverified; /* 1: still not the source's spans (not expected) */
} protect_finish_info;

/* Unmasks a repaired translation (masked: each sentinel of sp at most once;
 * modified in place) into a malloc'ed text (NULL when out of memory) whose
 * protected spans are exactly the source text's, as protect_keys compares
 * them: drops placeholders written as text (protect_drop_literals), puts
 * paired tags that cross back into nesting order, unmasks with
 * protect_unmask_args, checks, and when text and spans ran together removes
 * the '%', '{', '<', '&' of the model's text (and what follows a Qt or
 * LibreOffice sentinel) and unmasks again. With sp->overflow, nothing is
 * dropped or checked. */
char *protect_finish(char *masked, const char *text, const protect_spans *sp, protect_finish_info *info);

/* Masks a training pair: the source as protect_mask; each span of the
 * target whose text equals a not yet used source span gets that span's
 * sentinel (first match in order), and so does a positional "%N$rest" of the
 * target when the source's argument N is "%rest" (the target reorders); others
 * stay as text. *src_out, *tgt_out
 * malloc'ed. Returns 0, or -1 when out of memory. *matched = target spans
 * masked. */
int protect_mask_pair(const char *src, const char *tgt, char **src_out, char **tgt_out, int *matched);

#endif
