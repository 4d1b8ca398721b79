/* See spm_normalizer.h. The order of the rules follows sentencepiece's
 * normalizer.cc (0.1.97), which this must match byte for byte. */
#include "text/spm_normalizer.h"

#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "text/utf8.h"

#define SPACE_SYMBOL "\xE2\x96\x81" /* U+2581 */

qkv_status spm_str_reserve(spm_str *s, size_t cap)
{
    if (cap <= s->cap)
        return QKV_OK;
    size_t nc = s->cap ? s->cap : 256;
    while (nc < cap)
        nc *= 2;
    char *np = realloc(s->p, nc);
    if (!np)
        return qkv_fail(QKV_ERR_NOMEM, "out of memory (%zu bytes)", nc);
    s->p = np;
    s->cap = nc;
    return QKV_OK;
}

void spm_str_free(spm_str *s)
{
    free(s->p);
    memset(s, 0, sizeof *s);
}

static inline void str_put(spm_str *s, const char *d, size_t n)
{
    /* callers reserve the worst case first */
    memcpy(s->p + s->len, d, n);
    s->len += n;
}

qkv_status spm_normalizer_init(spm_normalizer *n, const spm_normalizer_spec *spec, int treat_whitespace_as_suffix,
                               const spm_trie *user_symbols)
{
    memset(n, 0, sizeof *n);
    n->spec = spec;
    n->treat_whitespace_as_suffix = treat_whitespace_as_suffix;
    n->user_symbols = user_symbols;
    const uint8_t *b = spec->precompiled_charsmap;
    size_t len = spec->precompiled_charsmap_len;
    if (!len)
        return QKV_OK;
    if (len <= 4)
        return qkv_fail(QKV_ERR_FORMAT, "NormalizerSpec.precompiled_charsmap: %zu bytes, expected more than 4", len);
    uint32_t tsize = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    if (tsize > len - 4 || tsize % 4)
        return qkv_fail(QKV_ERR_FORMAT,
                        "NormalizerSpec.precompiled_charsmap: trie size %u does not fit the %zu-byte map "
                        "(expected a multiple of 4 below %zu)",
                        tsize, len, len - 4);
    n->trie_units = tsize / 4;
    if (n->trie_units) {
        n->trie = malloc(tsize);
        if (!n->trie)
            return qkv_fail(QKV_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < n->trie_units; i++) {
            const uint8_t *u = b + 4 + 4 * i;
            n->trie[i] = (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
        }
    }
    n->strings = (const char *)b + 4 + tsize;
    n->strings_len = len - 4 - tsize;
    return QKV_OK;
}

void spm_normalizer_free(spm_normalizer *n)
{
    free(n->trie);
    memset(n, 0, sizeof *n);
}

/* Darts-clone unit fields. */
static inline uint32_t da_offset(uint32_t u) { return (u >> 10) << ((u & (1u << 9)) >> 6); }
static inline uint32_t da_label(uint32_t u) { return u & ((1u << 31) | 0xFF); }
static inline int da_has_leaf(uint32_t u) { return (u >> 8) & 1; }
static inline uint32_t da_value(uint32_t u) { return u & ((1u << 31) - 1); }

/* Longest charsmap rule matching a prefix of s: its length (0: none) and the
 * replacement. Mirrors Darts' commonPrefixSearch with bounds checks, since
 * the trie comes from a file; an out-of-range index ends the search. */
static size_t charsmap_match(const spm_normalizer *n, const char *s, size_t len, const char **rep,
                             size_t *rep_len)
{
    const uint32_t *a = n->trie;
    size_t units = n->trie_units, best = 0;
    uint32_t best_value = 0;
    if (!units)
        return 0;
    size_t pos = da_offset(a[0]);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        pos ^= c;
        if (pos >= units)
            break;
        uint32_t u = a[pos];
        if (da_label(u) != c)
            break;
        pos ^= da_offset(u);
        if (da_has_leaf(u)) {
            if (pos >= units)
                break;
            best = i + 1; /* later matches are longer */
            best_value = da_value(a[pos]);
        }
    }
    if (!best)
        return 0;
    if (best_value >= n->strings_len) {
        *rep = "";
        *rep_len = 0;
    } else {
        *rep = n->strings + best_value;
        *rep_len = strnlen(*rep, n->strings_len - best_value);
    }
    return best;
}

/* One normalization step (sentencepiece's NormalizePrefix): the replacement
 * for the start of s and how many input bytes it consumes. */
static size_t normalize_prefix(const spm_normalizer *n, const char *s, size_t len, const char **rep,
                               size_t *rep_len, size_t *n_invalid)
{
    if (n->user_symbols) {
        size_t m = spm_trie_longest_prefix(n->user_symbols, s, len);
        if (m) {
            *rep = s;
            *rep_len = m;
            return m;
        }
    }
    size_t m = charsmap_match(n, s, len, rep, rep_len);
    if (m)
        return m;
    if ((unsigned char)s[0] < 0x80) {
        *rep = s;
        *rep_len = 1;
        return 1;
    }
    int valid;
    utf8_decode(s, len, &m, &valid);
    if (!valid) {
        *rep = "\xEF\xBF\xBD";
        *rep_len = 3;
        ++*n_invalid;
        return 1;
    }
    *rep = s;
    *rep_len = m;
    return m;
}

qkv_status spm_normalize(const spm_normalizer *n, spm_str *out, const char *in, size_t len, size_t *n_invalid)
{
    const spm_normalizer_spec *spec = n->spec;
    size_t bad = 0;
    const char *rep;
    size_t rep_len;
    out->len = 0;
    if (n_invalid)
        *n_invalid = 0;
    if (spec->remove_extra_whitespaces) {
        size_t counted_later = 0; /* the main loop counts the first non-space */
        while (len) {
            size_t m = normalize_prefix(n, in, len, &rep, &rep_len, &counted_later);
            if (rep_len != 1 || rep[0] != ' ')
                break;
            in += m;
            len -= m;
        }
    }
    if (!len) {
        if (n_invalid)
            *n_invalid = bad;
        return QKV_OK;
    }
    /* Worst growth: a 1-byte input becoming a long replacement; reserve
     * as we go instead, with 3x for spaces turning into U+2581. */
    const char *space = spec->escape_whitespaces ? SPACE_SYMBOL : " ";
    size_t space_len = spec->escape_whitespaces ? 3 : 1;
    QKV_TRY(spm_str_reserve(out, 3 * len + 16));
    if (!n->treat_whitespace_as_suffix && spec->add_dummy_prefix)
        str_put(out, space, space_len);
    int prev_space = spec->remove_extra_whitespaces;
    while (len) {
        size_t m = normalize_prefix(n, in, len, &rep, &rep_len, &bad);
        if (prev_space)
            while (rep_len && rep[0] == ' ')
                rep++, rep_len--;
        if (rep_len) {
            QKV_TRY(spm_str_reserve(out, out->len + 3 * rep_len + 3 * len + 16));
            for (size_t i = 0; i < rep_len; i++) {
                if (rep[i] == ' ' && spec->escape_whitespaces)
                    str_put(out, SPACE_SYMBOL, 3);
                else
                    out->p[out->len++] = rep[i];
            }
            prev_space = rep[rep_len - 1] == ' ';
        }
        in += m;
        len -= m;
        if (!spec->remove_extra_whitespaces)
            prev_space = 0;
    }
    if (spec->remove_extra_whitespaces)
        while (out->len >= space_len && !memcmp(out->p + out->len - space_len, space, space_len))
            out->len -= space_len;
    if (n->treat_whitespace_as_suffix && spec->add_dummy_prefix) {
        QKV_TRY(spm_str_reserve(out, out->len + space_len + 1));
        str_put(out, space, space_len);
    }
    QKV_TRY(spm_str_reserve(out, out->len + 1));
    out->p[out->len] = 0;
    if (n_invalid)
        *n_invalid = bad;
    return QKV_OK;
}

qkv_status spm_normalize_text(const spm_model *m, const char *in, size_t len, char **out, size_t *out_len,
                              size_t *n_invalid)
{
    spm_trie users;
    spm_trie_init(&users);
    qkv_status s = QKV_OK;
    int any = 0, added;
    for (int i = 0; i < m->n_pieces && s == QKV_OK; i++)
        if (m->pieces[i].type == SPM_USER_DEFINED) {
            s = spm_trie_add(&users, m->pieces[i].piece, strlen(m->pieces[i].piece), i, &added);
            any = 1;
        }
    spm_normalizer n;
    spm_str buf = {0};
    if (s == QKV_OK)
        s = spm_normalizer_init(&n, &m->normalizer, m->trainer.treat_whitespace_as_suffix, any ? &users : NULL);
    if (s == QKV_OK) {
        s = spm_normalize(&n, &buf, in, len, n_invalid);
        spm_normalizer_free(&n);
    }
    spm_trie_free(&users);
    if (s == QKV_OK && !buf.p)
        s = spm_str_reserve(&buf, 1), buf.p ? (void)(buf.p[0] = 0) : (void)0;
    if (s != QKV_OK) {
        spm_str_free(&buf);
        return s;
    }
    *out = buf.p;
    *out_len = buf.len;
    return QKV_OK;
}
