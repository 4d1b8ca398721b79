/* Protected spans: finding, masking, unmasking (see protect.h). */
#include "text/protect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_alnum(char c) { return is_alpha(c) || is_digit(c); }

/* "N$" at s: returns its length or 0 */
static size_t dollar(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && is_digit(s[i]))
        i++;
    return i > 0 && i < n && s[i] == '$' && s[0] != '0' ? i + 1 : 0;
}

/* A LibreOffice variable at s[0] == '%': %PRODUCTNAME, %MOD1 (an upper-case
 * letter, then at least two more of A-Z 0-9 _): its length, else 0. It comes
 * before printf, whose %E, %X, %C would otherwise take its first letter. */
static size_t scan_variable(const char *s, size_t n)
{
    if (n < 4 || !(s[1] >= 'A' && s[1] <= 'Z'))
        return 0;
    size_t i = 2;
    while (i < n && ((s[i] >= 'A' && s[i] <= 'Z') || is_digit(s[i]) || s[i] == '_'))
        i++;
    /* "%Xh", "%Ests": a conversion followed by lower-case text, not a name */
    if (i < 4 || (i < n && (s[i] >= 'a' && s[i] <= 'z')))
        return 0;
    return i;
}

/* A printf or Qt conversion starting at s[0] == '%': its length, 0 when
 * malformed. *kind receives its family: printf first, then Qt. The space flag is left out: "50% done"
 * must not read as "% d". */
static size_t scan_percent(const char *s, size_t n, protect_kind *kind)
{
    *kind = PROTECT_PRINTF;
    if (n >= 2 && s[1] == '%')
        return 2;
    size_t i = 1;
    i += dollar(s + i, n - i);
    while (i < n && strchr("-+#0'", s[i]))
        i++;
    if (i < n && s[i] == '*') {
        i++;
        i += dollar(s + i, n - i);
    } else {
        while (i < n && is_digit(s[i]))
            i++;
    }
    if (i < n && s[i] == '.') {
        i++;
        if (i < n && s[i] == '*') {
            i++;
            i += dollar(s + i, n - i);
        } else {
            while (i < n && is_digit(s[i]))
                i++;
        }
    }
    if (i + 1 < n && ((s[i] == 'h' && s[i + 1] == 'h') || (s[i] == 'l' && s[i + 1] == 'l')))
        i += 2;
    else if (i < n && strchr("hlLqjzt", s[i]))
        i++;
    if (i < n && s[i] && strchr("diouxXeEfFgGaAcspnmC", s[i]))
        return i + 1;
    /* not printf: Qt / KDE %1 .. %99, %L1 ("%1d" stays printf) */
    size_t q = 1 + (n > 1 && s[1] == 'L');
    if (q < n && is_digit(s[q]) && s[q] != '0') {
        size_t j = q;
        while (j < n && is_digit(s[j]) && j - q < 2)
            j++;
        *kind = PROTECT_QT;
        return j;
    }
    return 0;
}

/* {name}, {0}, {}, {0.attr}, {x[1]}, {0!r}, {0:>8}: length or 0 ({{ is an escape) */
static size_t scan_brace(const char *s, size_t n)
{
    size_t i = 1;
    if (i < n && s[i] == '{')
        return 0;
    while (i < n && (is_alnum(s[i]) || s[i] == '_' || s[i] == '.' || s[i] == '[' || s[i] == ']'))
        i++;
    if (i + 1 < n && s[i] == '!' && strchr("rsa", s[i + 1]))
        i += 2;
    if (i < n && s[i] == ':')
        while (i < n && s[i] != '}' && s[i] != '{' && s[i] != '\n')
            i++;
    return i < n && s[i] == '}' ? i + 1 : 0;
}

/* A tag at s[0] == '<': its length (0 when it is no tag or never closes;
 * *malformed set for the latter). name/name_len: the element name, *close
 * for </x>, *self for <x/> and comments. */
static size_t scan_tag(const char *s, size_t n, int *malformed, const char **name, size_t *name_len, int *close,
                       int *self)
{
    *malformed = 0;
    *close = 0;
    *self = 0;
    *name_len = 0;
    if (n >= 4 && !memcmp(s, "<!--", 4)) {
        for (size_t i = 4; i + 2 < n; i++)
            if (!memcmp(s + i, "-->", 3)) {
                *self = 1;
                return i + 3;
            }
        *malformed = 1;
        return 0;
    }
    size_t i = 1;
    if (i < n && s[i] == '/') {
        *close = 1;
        i++;
    }
    if (!(i < n && is_alpha(s[i])))
        return 0;
    *name = s + i;
    while (i < n && (is_alnum(s[i]) || s[i] == ':' || s[i] == '_' || s[i] == '-'))
        i++;
    *name_len = (size_t)(s + i - *name);
    /* after the name: whitespace, '/', '>' or attributes; anything else
     * ("<b,", "<html5") is not a tag */
    if (i < n && !(s[i] == ' ' || s[i] == '\t' || s[i] == '/' || s[i] == '>'))
        return 0;
    while (i < n && s[i] != '>' && s[i] != '<') {
        if (s[i] == '"' || s[i] == '\'') {
            char qc = s[i++];
            while (i < n && s[i] != qc)
                i++;
            if (i >= n)
                break;
        }
        i++;
    }
    if (i < n && s[i] == '>') {
        *self = s[i - 1] == '/';
        return i + 1;
    }
    *malformed = 1;
    return 0;
}

static size_t scan_entity(const char *s, size_t n)
{
    size_t i = 1;
    if (i < n && s[i] == '#') {
        i++;
        int hex = i < n && (s[i] == 'x' || s[i] == 'X');
        i += hex;
        size_t d = i;
        while (i < n && (is_digit(s[i]) || (hex && strchr("abcdefABCDEF", s[i]))))
            i++;
        if (i == d)
            return 0;
    } else {
        size_t d = i;
        while (i < n && is_alnum(s[i]) && i - d < 32)
            i++;
        if (i == d || !is_alpha(s[d]))
            return 0;
    }
    return i < n && s[i] == ';' ? i + 1 : 0;
}

static int void_element(const char *name, size_t len)
{
    static const char *const v[] = {"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "wbr"};
    for (size_t k = 0; k < sizeof v / sizeof v[0]; k++)
        if (strlen(v[k]) == len && !strncmp(v[k], name, len))
            return 1;
    return 0;
}

/* Records a malformed candidate (the first PROTECT_MAX with their text). */
static void add_bad(protect_spans *out, size_t start, size_t len)
{
    if (out->n_bad < PROTECT_MAX)
        out->bad[out->n_bad++] = (protect_span){start, len, PROTECT_N_KINDS};
    out->malformed++;
}

typedef struct {
    size_t start, len;
    protect_kind kind;
    const char *name; /* tags: element name, or NULL when self-contained */
    size_t name_len;
    int close;
    int keep;
} cand;

void protect_find(const char *text, size_t len, protect_spans *out)
{
    memset(out, 0, sizeof *out);
    /* every candidate fits in len / 2 + 1 (each takes at least 2 bytes) */
    size_t cap = len / 2 + 1, nc = 0;
    cand *c = malloc(cap * sizeof *c);
    size_t *stack = malloc(cap * sizeof *stack);
    if (!c || !stack) {
        free(c);
        free(stack);
        return; /* nothing protected: the text passes through as it is */
    }
    for (size_t i = 0; i < len;) {
        const char *s = text + i;
        size_t n = len - i, l = 0;
        cand k = {0};
        if (*s == '%') {
            k.kind = PROTECT_VARIABLE;
            l = scan_variable(s, n);
            if (!l)
                l = scan_percent(s, n, &k.kind);
            if (!l) {
                size_t e = 1; /* "%", "%z", "%zz9": the '%' and the word it starts */
                while (e < n && (is_alnum(s[e]) || s[e] == '_'))
                    e++;
                add_bad(out, i, e);
            }
        } else if (*s == '{') {
            l = scan_brace(s, n);
            k.kind = PROTECT_BRACE;
            if (!l && n >= 2 && s[1] == '{')
                l = 0, i++; /* "{{": skip both */
        } else if (*s == '<') {
            int bad, self;
            l = scan_tag(s, n, &bad, &k.name, &k.name_len, &k.close, &self);
            k.kind = PROTECT_TAG;
            if (bad) /* "<b never closes": the '<' and the name */
                add_bad(out, i, k.name_len ? (size_t)(k.name + k.name_len - s) : 1);
            if (self || (k.name_len && void_element(k.name, k.name_len)))
                k.name = NULL, k.name_len = 0;
        } else if (*s == '&') {
            l = scan_entity(s, n);
            k.kind = PROTECT_ENTITY;
        }
        if (l) {
            k.start = i;
            k.len = l;
            k.keep = 1;
            c[nc++] = k;
            i += l;
        } else {
            i++;
        }
    }
    /* pair the tags: a close matches the nearest open of the same name when
     * it is on top of the stack; everything left unpaired is malformed */
    size_t sp = 0;
    for (size_t j = 0; j < nc; j++) {
        if (c[j].kind != PROTECT_TAG || !c[j].name_len)
            continue;
        if (!c[j].close) {
            c[j].keep = 0;
            stack[sp++] = j;
            continue;
        }
        if (sp > 0 && c[stack[sp - 1]].name_len == c[j].name_len &&
            !strncmp(c[stack[sp - 1]].name, c[j].name, c[j].name_len)) {
            c[stack[--sp]].keep = 1;
        } else {
            c[j].keep = 0;
        }
    }
    /* every tag left unpaired is malformed */
    for (size_t j = 0; j < nc; j++) {
        if (c[j].kind == PROTECT_TAG && !c[j].keep)
            add_bad(out, c[j].start, c[j].len);
        if (!c[j].keep)
            continue;
        if (out->n == PROTECT_MAX) {
            out->overflow++;
            continue;
        }
        out->span[out->n++] = (protect_span){c[j].start, c[j].len, c[j].kind};
    }
    free(c);
    free(stack);
}

int protect_printf_args(const char *text, const protect_spans *sp, int *argi)
{
    int next = 1, ok = 1;
    for (int k = 0; k < sp->n; k++) {
        argi[k] = 0;
        const char *s = text + sp->span[k].start;
        size_t l = sp->span[k].len;
        /* %% and glibc's %m take no argument */
        if (sp->span[k].kind != PROTECT_PRINTF || s[1] == '%' || s[l - 1] == 'm')
            continue;
        if (dollar(s + 1, l - 1) || memchr(s, '*', l))
            ok = 0;
        argi[k] = next++;
    }
    if (!ok)
        memset(argi, 0, (size_t)sp->n * sizeof *argi);
    return ok;
}

/* "%N$rest" at s (printf span of length l): N, and *rest the offset of rest
 * (so that "%" + rest is the conversion without its position); else 0. */
static int position_of(const char *s, size_t l, size_t *rest)
{
    size_t d = dollar(s + 1, l - 1);
    if (!d || l < d + 2 || memchr(s + 1 + d, '$', l - 1 - d))
        return 0;
    *rest = 1 + d;
    return atoi(s + 1);
}

int protect_span_key(const char *text, const protect_span *span, int argi, char *buf, size_t cap)
{
    const char *s = text + span->start;
    size_t l = span->len, rest = 1;
    int n = argi;
    if (span->kind == PROTECT_PRINTF && !n)
        n = position_of(s, l, &rest);
    if (!n)
        return snprintf(buf, cap, "%.*s", (int)l, s) < (int)cap ? 0 : -1;
    return snprintf(buf, cap, "%d$%%%.*s", n, (int)(l - rest), s + rest) < (int)cap ? 0 : -1;
}

void protect_sentinel(int k, char buf[4])
{
    unsigned cp = 0xE000u + (unsigned)k;
    buf[0] = (char)(0xE0 | (cp >> 12));
    buf[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    buf[2] = (char)(0x80 | (cp & 0x3F));
    buf[3] = 0;
}

int protect_sentinel_at(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    if (u[0] != 0xEE || u[1] != 0x80 || (u[2] & 0xC0) != 0x80)
        return -1;
    int k = u[2] & 0x3F;
    return k < PROTECT_MAX ? k : -1;
}

const char *protect_symbols(void)
{
    static char buf[PROTECT_MAX * 4 + 1];
    if (!buf[0]) {
        char *p = buf;
        for (int k = 0; k < PROTECT_MAX; k++) {
            if (k)
                *p++ = ',';
            protect_sentinel(k, p);
            p += 3;
        }
        *p = 0;
    }
    return buf;
}

char *protect_mask(const char *text, const protect_spans *sp)
{
    size_t len = strlen(text);
    char *o = malloc(len + 1 + 3 * (size_t)sp->n), *p = o;
    if (!o)
        return NULL;
    size_t at = 0;
    for (int k = 0; k < sp->n; k++) {
        memcpy(p, text + at, sp->span[k].start - at);
        p += sp->span[k].start - at;
        protect_sentinel(k, p);
        p += 3;
        at = sp->span[k].start + sp->span[k].len;
    }
    memcpy(p, text + at, len - at);
    p[len - at] = 0;
    return o;
}

char *protect_unmask(const char *masked, const char *text, const protect_spans *sp, int *counts, int *stray)
{
    size_t need = 1;
    for (const char *m = masked; *m; m++) {
        int k = protect_sentinel_at(m);
        need += k >= 0 && k < sp->n ? sp->span[k].len : 1;
    }
    if (counts)
        memset(counts, 0, PROTECT_MAX * sizeof(int));
    if (stray)
        *stray = 0;
    char *o = malloc(need), *p = o;
    if (!o)
        return NULL;
    for (const char *m = masked; *m;) {
        int k = protect_sentinel_at(m);
        if (k < 0) {
            *p++ = *m++;
            continue;
        }
        if (k < sp->n) {
            memcpy(p, text + sp->span[k].start, sp->span[k].len);
            p += sp->span[k].len;
            if (counts)
                counts[k]++;
        } else if (stray) {
            (*stray)++;
        }
        m += 3;
    }
    *p = 0;
    return o;
}

char *protect_unmask_args(const char *masked, const char *text, const protect_spans *sp, int *reordered)
{
    int argi[PROTECT_MAX], last = 0;
    *reordered = 0;
    if (protect_printf_args(text, sp, argi))
        for (const char *m = masked; *m; m++) {
            int k = protect_sentinel_at(m);
            if (k < 0 || k >= sp->n || !argi[k])
                continue;
            if (argi[k] < last)
                *reordered = 1;
            last = argi[k];
        }
    if (!*reordered)
        return protect_unmask(masked, text, sp, NULL, NULL);
    /* each argument gets "N$" after its '%': at most 3 + 1 more bytes */
    size_t need = 1;
    for (const char *m = masked; *m; m++) {
        int k = protect_sentinel_at(m);
        need += k >= 0 && k < sp->n ? sp->span[k].len + 4 : 1;
    }
    char *o = malloc(need), *p = o;
    if (!o)
        return NULL;
    for (const char *m = masked; *m;) {
        int k = protect_sentinel_at(m);
        if (k < 0) {
            *p++ = *m++;
            continue;
        }
        if (k < sp->n) {
            const char *t = text + sp->span[k].start;
            if (argi[k]) {
                p += sprintf(p, "%%%d$", argi[k]);
                memcpy(p, t + 1, sp->span[k].len - 1);
                p += sp->span[k].len - 1;
            } else {
                memcpy(p, t, sp->span[k].len);
                p += sp->span[k].len;
            }
        }
        m += 3;
    }
    *p = 0;
    return o;
}

int protect_drop_literals(char *m)
{
    protect_spans lit;
    size_t len = strlen(m), at = 0, w = 0;
    protect_find(m, len, &lit);
    if (lit.overflow)
        return 0; /* more than PROTECT_MAX: leave the line as the model wrote it */
    for (int k = 0; k < lit.n; k++) {
        size_t a = lit.span[k].start, b = a + lit.span[k].len;
        memmove(m + w, m + at, a - at);
        w += a - at;
        int kept = 0; /* a sentinel inside ("<a title=\uE001>") stays */
        for (size_t j = a; j + 2 < b; j++)
            if (protect_sentinel_at(m + j) >= 0) {
                memmove(m + w, m + j, 3);
                w += 3;
                j += 2;
                kept = 1;
            }
        if (!kept && w > 0 && m[w - 1] == ' ' && (b >= len || m[b] == ' '))
            w--;
        at = b;
    }
    memmove(m + w, m + at, len - at + 1);
    return lit.n;
}

static int key_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

char *protect_keys(const char *text, int malformed, int *n)
{
    protect_spans sp;
    protect_find(text, strlen(text), &sp);
    int argi[PROTECT_MAX] = {0}, m = malformed ? sp.n_bad : sp.n, ok = 1;
    if (!malformed)
        protect_printf_args(text, &sp, argi);
    char *v[PROTECT_MAX];
    size_t total = 1;
    for (int k = 0; k < m; k++) {
        const protect_span *x = malformed ? &sp.bad[k] : &sp.span[k];
        size_t cap = x->len + 16;
        if ((v[k] = malloc(cap)) && protect_span_key(text, x, argi[k], v[k], cap) != 0)
            v[k][0] = 0;
        ok = ok && v[k];
        total += cap + 1;
    }
    char *o = ok ? malloc(total) : NULL;
    if (o) {
        qsort(v, (size_t)m, sizeof v[0], key_cmp);
        o[0] = 0;
        for (int k = 0; k < m; k++) {
            strcat(o, v[k]);
            strcat(o, "\n");
        }
    }
    for (int k = 0; k < m; k++)
        free(v[k]);
    *n = m;
    return o;
}

/* 1 for an opening tag that pairs with a closing one ("<b>", not "<br>",
 * "<x/>", "<!-- -->"), 2 for a closing tag, 0 for anything else */
static int tag_side(const char *text, const protect_span *s)
{
    const char *t = text + s->start;
    if (s->kind != PROTECT_TAG || s->len < 3 || t[1] == '!')
        return 0;
    if (t[1] == '/')
        return 2;
    if (t[s->len - 2] == '/')
        return 0;
    size_t e = 1;
    while (e < s->len && (is_alnum(t[e]) || t[e] == ':' || t[e] == '_' || t[e] == '-'))
        e++;
    return void_element(t + 1, e - 1) ? 0 : 1;
}

/* Puts the paired tags' sentinels of masked back into a nesting order when
 * the translation crossed or inverted them ("</b> x <b>", "<b><i></b></i>"):
 * the slots they took stay, and they fill them in the source's order, which
 * nests. A nesting order, even another than the source's, is left alone.
 * Returns 1 when it reordered. */
static int nest_tags(char *masked, const char *text, const protect_spans *sp)
{
    int partner[PROTECT_MAX], side[PROTECT_MAX], stack[PROTECT_MAX], sn = 0;
    for (int k = 0; k < sp->n; k++) {
        partner[k] = -1;
        side[k] = tag_side(text, &sp->span[k]);
        if (side[k] == 1)
            stack[sn++] = k;
        else if (side[k] == 2 && sn > 0) {
            partner[k] = stack[--sn];
            partner[stack[sn]] = k;
        }
    }
    size_t at[PROTECT_MAX];
    int seq[PROTECT_MAX], n = 0, nested = 1;
    sn = 0;
    for (size_t i = 0; masked[i]; i++) {
        int k = protect_sentinel_at(masked + i);
        if (k < 0 || k >= sp->n || partner[k] < 0)
            continue;
        if (n == PROTECT_MAX)
            return 0; /* repeats: not this function's input */
        at[n] = i;
        seq[n++] = k;
        if (side[k] == 1)
            stack[sn++] = k;
        else if (sn > 0 && stack[sn - 1] == partner[k])
            sn--;
        else
            nested = 0;
        i += 2;
    }
    if (nested && sn == 0)
        return 0;
    for (int a = 1; a < n; a++) /* insertion sort: at most 32 */
        for (int b = a; b > 0 && seq[b - 1] > seq[b]; b--) {
            int x = seq[b];
            seq[b] = seq[b - 1];
            seq[b - 1] = x;
        }
    for (int j = 0; j < n; j++) {
        char b[4]; /* 3 bytes and a NUL that must not land in masked */
        protect_sentinel(seq[j], b);
        memcpy(masked + at[j], b, 3);
    }
    return 1;
}

/* The fallback when unmasking made text and spans run together ("%" before
 * the sentinel of "%1" reads "%%1"; "%1" then "2" reads "%12"): every '%',
 * '{', '<', '&' of the model's own text goes, and so do the letters, digits,
 * '_' and '$' right after a Qt or LibreOffice sentinel. No span can then
 * start in the text or grow past its sentinel. */
static void scrub(char *m, const protect_spans *sp)
{
    size_t w = 0;
    int after = 0; /* just after a Qt or variable sentinel */
    for (size_t i = 0; m[i];) {
        int k = protect_sentinel_at(m + i);
        if (k >= 0) {
            memmove(m + w, m + i, 3);
            w += 3;
            i += 3;
            after = k < sp->n && (sp->span[k].kind == PROTECT_QT || sp->span[k].kind == PROTECT_VARIABLE);
            continue;
        }
        char c = m[i++];
        /* a removed character does not end the run: "%1" "<" "2" */
        if (strchr("%{<&", c) || (after && (is_alnum(c) || c == '_' || c == '$')))
            continue;
        after = 0;
        m[w++] = c;
    }
    m[w] = 0;
}

char *protect_finish(char *masked, const char *text, const protect_spans *sp, protect_finish_info *info)
{
    memset(info, 0, sizeof *info);
    if (!sp->overflow)
        info->literals = protect_drop_literals(masked);
    info->nested = nest_tags(masked, text, sp);
    char *plain = protect_unmask_args(masked, text, sp, &info->reordered);
    if (!plain || sp->overflow)
        return plain;
    int n1, n2;
    char *want = protect_keys(text, 0, &n1), *got = protect_keys(plain, 0, &n2);
    int same = want && got && !strcmp(want, got);
    if (want && got && !same) {
        scrub(masked, sp);
        info->scrubbed = 1;
        free(plain);
        free(got);
        plain = protect_unmask_args(masked, text, sp, &info->reordered);
        got = plain ? protect_keys(plain, 0, &n2) : NULL;
        same = got && !strcmp(want, got);
        info->unverified = got && !same;
    }
    if (!want || (plain && !got)) { /* out of memory */
        free(plain);
        plain = NULL;
    }
    free(want);
    free(got);
    return plain;
}

int protect_mask_pair(const char *src, const char *tgt, char **src_out, char **tgt_out, int *matched)
{
    protect_spans s, t;
    *matched = 0;
    protect_find(src, strlen(src), &s);
    protect_find(tgt, strlen(tgt), &t);
    *src_out = protect_mask(src, &s);
    /* target: spans that match a source span take its sentinel */
    protect_spans tm = {0};
    int used[PROTECT_MAX] = {0}, which[PROTECT_MAX], argi[PROTECT_MAX];
    protect_printf_args(src, &s, argi);
    for (int j = 0; j < t.n; j++) {
        const char *ts = tgt + t.span[j].start;
        size_t tl = t.span[j].len, rest = 0;
        /* "%2$s" in a target that reorders the source's "%s ... %s" is
         * its second argument: the sentinel's order carries the position,
         * and unmasking writes it back (protect_unmask_args) */
        int pos = t.span[j].kind == PROTECT_PRINTF ? position_of(ts, tl, &rest) : 0;
        for (int k = 0; k < s.n; k++) {
            const char *ss = src + s.span[k].start;
            size_t sl = s.span[k].len;
            int same = sl == tl && !memcmp(ss, ts, tl);
            if (!same && pos && argi[k] == pos)
                same = sl == tl - rest + 1 && !memcmp(ss + 1, ts + rest, sl - 1);
            if (!used[k] && same) {
                used[k] = 1;
                which[tm.n] = k;
                tm.span[tm.n++] = t.span[j];
                break;
            }
        }
    }
    *matched = tm.n;
    size_t len = strlen(tgt);
    char *o = malloc(len + 1 + 3 * (size_t)tm.n), *p = o;
    if (o) {
        size_t at = 0;
        for (int j = 0; j < tm.n; j++) {
            memcpy(p, tgt + at, tm.span[j].start - at);
            p += tm.span[j].start - at;
            protect_sentinel(which[j], p);
            p += 3;
            at = tm.span[j].start + tm.span[j].len;
        }
        memcpy(p, tgt + at, len - at);
        p[len - at] = 0;
    }
    *tgt_out = o;
    if (!*src_out || !*tgt_out) {
        free(*src_out);
        free(*tgt_out);
        *src_out = *tgt_out = NULL;
        return -1;
    }
    return 0;
}
