/* CC-CEDICT -> short pairs (see cedict.h). */
#include "data/cedict.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/io.h"
#include "base/status.h"

/* Next code point of s (advancing *s), or -1 for invalid UTF-8. */
static long next_cp(const unsigned char **s)
{
    const unsigned char *p = *s;
    long c;
    int n;
    if (p[0] < 0x80)
        c = p[0], n = 1;
    else if ((p[0] & 0xE0) == 0xC0)
        c = p[0] & 0x1F, n = 2;
    else if ((p[0] & 0xF0) == 0xE0)
        c = p[0] & 0x0F, n = 3;
    else if ((p[0] & 0xF8) == 0xF0)
        c = p[0] & 0x07, n = 4;
    else
        return -1;
    for (int k = 1; k < n; k++) {
        if ((p[k] & 0xC0) != 0x80)
            return -1;
        c = (c << 6) | (p[k] & 0x3F);
    }
    *s = p + n;
    return c;
}

static int is_han(long c)
{
    return (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0xF900 && c <= 0xFAFF) ||
           (c >= 0x20000 && c <= 0x2FFFF);
}

/* 1 all Han, 0 otherwise; *n code points */
static int all_han(const char *s, size_t len, int *n)
{
    const unsigned char *p = (const unsigned char *)s, *e = p + len;
    *n = 0;
    while (p < e) {
        long c = next_cp(&p);
        if (c < 0 || !is_han(c))
            return 0;
        (*n)++;
    }
    return 1;
}

static int reference(const char *g)
{
    static const char *const pre[] = {"variant of", "old variant of", "see ", "see also", "CL:", "abbr. for",
                                      "abbr. of", "surname ", "used in", "Japanese variant", "erhua variant",
                                      "also written", "also pr.", "same as", "archaic variant", "(old)"};
    for (size_t k = 0; k < sizeof pre / sizeof pre[0]; k++)
        if (!strncmp(g, pre[k], strlen(pre[k])))
            return 1;
    return strchr(g, '[') || strchr(g, '|');
}

/* A simple open-addressing set of glosses (FNV-1a). */
typedef struct {
    char **slot;
    size_t cap, n;
} str_set;

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* 1 when added, 0 when present, -1 out of memory */
static int set_add(str_set *t, const char *s)
{
    if (2 * (t->n + 1) > t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 1024;
        char **v = calloc(cap, sizeof *v);
        if (!v)
            return -1;
        for (size_t i = 0; i < t->cap; i++)
            if (t->slot[i]) {
                size_t j = fnv(t->slot[i]) & (cap - 1);
                while (v[j])
                    j = (j + 1) & (cap - 1);
                v[j] = t->slot[i];
            }
        free(t->slot);
        t->slot = v;
        t->cap = cap;
    }
    size_t j = fnv(s) & (t->cap - 1);
    while (t->slot[j]) {
        if (!strcmp(t->slot[j], s))
            return 0;
        j = (j + 1) & (t->cap - 1);
    }
    if (!(t->slot[j] = strdup(s)))
        return -1;
    t->n++;
    return 1;
}

static void set_free(str_set *t)
{
    for (size_t i = 0; i < t->cap; i++)
        free(t->slot[i]);
    free(t->slot);
}

/* gloss g[0..n) cleaned into out (notes in parentheses removed, spaces
 * squeezed); returns its word count, or -1 when it is a reference */
static int clean_gloss(const char *g, size_t n, char *out, size_t cap, int *had_note)
{
    char raw[512];
    if (n >= sizeof raw)
        n = sizeof raw - 1;
    memcpy(raw, g, n);
    raw[n] = 0;
    /* "to love; to be fond of; to like": the first of the alternatives */
    char *semi = strchr(raw, ';');
    if (semi) {
        *semi = 0;
        n = (size_t)(semi - raw);
    }
    if (reference(raw))
        return -1;
    size_t w = 0;
    int depth = 0, words = 0, in_word = 0;
    *had_note = 0;
    for (size_t i = 0; i < n && w + 1 < cap; i++) {
        char c = raw[i];
        if (c == '(') {
            depth++;
            *had_note = 1;
            continue;
        }
        if (c == ')') {
            depth -= depth > 0;
            continue;
        }
        if (depth)
            continue;
        if (c == ' ' || c == '\t') {
            in_word = 0;
            continue;
        }
        if (!in_word) {
            if (w > 0)
                out[w++] = ' ';
            words++;
            in_word = 1;
        }
        if (w + 1 < cap)
            out[w++] = c;
    }
    out[w] = 0;
    return words;
}

qkv_status cedict_parse(const char *text, cedict_report *r, void (*emit)(void *ctx, const char *en, const char *zh),
                        void *ctx)
{
    memset(r, 0, sizeof *r);
    str_set seen = {0};
    qkv_status st = QKV_OK;
    for (const char *p = text; *p && st == QKV_OK;) {
        const char *nl = strchr(p, '\n'), *e = nl ? nl : p + strlen(p);
        const char *line = p;
        p = nl ? nl + 1 : e;
        while (e > line && (e[-1] == '\r' || e[-1] == ' '))
            e--;
        if (e == line)
            continue;
        r->lines++;
        if (line[0] == '#') {
            r->comments++;
            continue;
        }
        const char *sp1 = memchr(line, ' ', (size_t)(e - line));
        const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(e - sp1 - 1)) : NULL;
        const char *lb = sp2 ? memchr(sp2, '[', (size_t)(e - sp2)) : NULL;
        const char *rb = lb ? memchr(lb, ']', (size_t)(e - lb)) : NULL;
        const char *sl = rb ? memchr(rb, '/', (size_t)(e - rb)) : NULL;
        if (!sl || e[-1] != '/' || sl == e - 1) {
            r->malformed++;
            continue;
        }
        const char *simp = sp1 + 1;
        size_t simp_len = (size_t)(sp2 - simp);
        int nchar;
        if (!all_han(simp, simp_len, &nchar)) {
            r->not_han++;
            continue;
        }
        if (nchar > 4) {
            r->too_long_headword++;
            continue;
        }
        if (lb[1] >= 'A' && lb[1] <= 'Z') {
            r->proper_nouns++;
            continue;
        }
        char best[256] = "";
        for (const char *g = sl + 1; g < e - 1;) {
            const char *ge = memchr(g, '/', (size_t)(e - g));
            if (!ge)
                break;
            char out[256];
            int note;
            int words = clean_gloss(g, (size_t)(ge - g), out, sizeof out, &note);
            g = ge + 1;
            if (words < 0) {
                r->reference_glosses++;
                continue;
            }
            r->notes_removed += note;
            if (words == 0 || words > 4) {
                r->long_glosses += words > 4;
                continue;
            }
            strcpy(best, out);
            break;
        }
        if (!best[0]) {
            r->no_gloss_left++;
            continue;
        }
        int added = set_add(&seen, best);
        if (added < 0) {
            st = qkv_fail(QKV_ERR_NOMEM, "out of memory");
            break;
        }
        if (!added) {
            r->duplicate_glosses++;
            continue;
        }
        char zh[64];
        snprintf(zh, sizeof zh, "%.*s", (int)simp_len, simp);
        emit(ctx, best, zh);
        r->pairs++;
    }
    set_free(&seen);
    return st;
}

qkv_status cedict_read(const char *path, cedict_report *r, void (*emit)(void *ctx, const char *en, const char *zh),
                       void *ctx)
{
    char *data;
    size_t len;
    qkv_status s = qkv_read_file(path, &data, &len);
    if (s != QKV_OK)
        return qkv_fail_context(s, "CC-CEDICT (scripts/fetch-cedict writes it)");
    s = cedict_parse(data, r, emit, ctx);
    free(data);
    return s;
}
