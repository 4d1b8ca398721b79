/* Subword segmentation of normalized text: unigram Viterbi and BPE merges,
 * then byte fallback. Matches sentencepiece 0.1.97 (unigram_model.cc's
 * EncodeOptimized, bpe_model.cc's Encode, sentencepiece_processor.cc). */
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "text/spm.h"
#include "text/utf8.h"

static void bpe_work_free(struct spm_bpe_work *w);

void spm_state_free(spm_state *st)
{
    bpe_work_free(st->bpe);
    spm_str_free(&st->normalized);
    free(st->tok);
    free(st->work);
    memset(st, 0, sizeof *st);
}

static qkv_status work_reserve(spm_state *st, size_t bytes)
{
    if (bytes <= st->work_cap)
        return QKV_OK;
    size_t nc = st->work_cap ? st->work_cap : 4096;
    while (nc < bytes)
        nc *= 2;
    void *p = realloc(st->work, nc);
    if (!p)
        return qkv_fail(QKV_ERR_NOMEM, "out of memory encoding (%zu bytes)", nc);
    st->work = p;
    st->work_cap = nc;
    return QKV_OK;
}

static qkv_status tok_push(spm_state *st, int id, size_t off, size_t len)
{
    if (st->n_tok == st->tok_cap) {
        size_t nc = st->tok_cap ? st->tok_cap * 2 : 256;
        spm_token *t = realloc(st->tok, nc * sizeof *t);
        if (!t)
            return qkv_fail(QKV_ERR_NOMEM, "out of memory encoding");
        st->tok = t;
        st->tok_cap = nc;
    }
    st->tok[st->n_tok++] = (spm_token){id, (uint32_t)off, (uint32_t)len};
    return QKV_OK;
}

/* ---- unigram -------------------------------------------------------------- */

typedef struct {
    float score; /* best path score of text[0..i) */
    int start;   /* where the last piece of that path starts, -1: unreached */
    int id;
} vnode;

qkv_status spm_encode_unigram(const qkv_vocab *v, spm_state *st, const char *s, size_t len)
{
    if (!len)
        return QKV_OK;
    if (len > INT32_MAX / 2)
        return qkv_fail(QKV_ERR_ARG, "input of %zu bytes is too long to encode", len);
    QKV_TRY(work_reserve(st, (len + 1) * sizeof(vnode)));
    vnode *best = st->work;
    for (size_t i = 0; i <= len; i++)
        best[i] = (vnode){0, -1, -1};
    best[0].start = 0;
    const spm_trie *t = &v->pieces;
    const spm_piece *pc = v->m.pieces;
    /* sentencepiece mixes float scores with a double constant (the 0.1 of
     * user-defined symbols), so candidates are compared in double and stored
     * in float; doing the same keeps ties and roundings identical. */
    const double unk_score = (double)(v->min_score - 10.0f);
    for (size_t start = 0; start < len;) {
        size_t mblen = utf8_lead_len((unsigned char)s[start]);
        if (mblen > len - start)
            mblen = len - start;
        const float here = best[start].score;
        int has_single = 0, node = 0;
        for (size_t k = start; k < len;) {
            node = spm_trie_child(t, node, (unsigned char)s[k]);
            if (node < 0)
                break;
            k++;
            int id = t->value[node];
            if (id < 0 || pc[id].type == SPM_UNUSED)
                continue;
            size_t plen = k - start;
            double score = pc[id].type == SPM_USER_DEFINED ? (double)((float)plen * v->max_score) - 0.1
                                                           : (double)pc[id].score;
            double cand = score + (double)here;
            vnode *tn = &best[k];
            if (tn->start == -1 || cand > (double)tn->score) {
                tn->score = (float)cand;
                tn->start = (int)start;
                tn->id = id;
            }
            if (plen == mblen)
                has_single = 1;
        }
        if (!has_single) {
            vnode *tn = &best[start + mblen];
            double cand = unk_score + (double)here;
            if (tn->start == -1 || cand > (double)tn->score) {
                tn->score = (float)cand;
                tn->start = (int)start;
                tn->id = v->unk_id;
            }
        }
        start += mblen;
    }
    /* backtrack, then reverse in place */
    size_t first = st->n_tok;
    for (size_t end = len; end > 0;) {
        const vnode *n = &best[end];
        QKV_TRY(tok_push(st, n->id, (size_t)n->start, end - (size_t)n->start));
        end = (size_t)n->start;
    }
    for (size_t i = first, j = st->n_tok - 1; i < j; i++, j--) {
        spm_token x = st->tok[i];
        st->tok[i] = st->tok[j];
        st->tok[j] = x;
    }
    return QKV_OK;
}

/* ---- BPE ------------------------------------------------------------------ */

typedef struct {
    uint32_t off, len;
    int prev, next;
    int freeze; /* a user-defined symbol: never merged */
    int node;   /* trie node spelling the symbol, -1: no piece starts so */
} bsym;

typedef struct {
    int left, right;
    float score;
    uint32_t size;
    int node; /* trie node of the merged string */
} bpair;

typedef struct { /* how an unused piece was formed, for resegmentation */
    int id;
    uint32_t loff, llen, roff, rlen;
} brev;

struct spm_bpe_work {
    bsym *sym;
    bpair *pair;
    int *heap;
    brev *rev;
    size_t n_sym, n_pair, n_heap, n_rev, cap_sym, cap_pair, cap_heap, cap_rev;
};

static void bpe_work_free(struct spm_bpe_work *w)
{
    if (!w)
        return;
    free(w->sym);
    free(w->pair);
    free(w->heap);
    free(w->rev);
    free(w);
}

typedef struct spm_bpe_work bpe_work;

/* pair a ranks above pair b: higher score, then leftmost (sentencepiece's
 * agenda order) */
static int pair_above(const bpair *a, const bpair *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void heap_push(bpe_work *w, int p)
{
    size_t i = w->n_heap++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!pair_above(&w->pair[p], &w->pair[w->heap[up]]))
            break;
        w->heap[i] = w->heap[up];
        i = up;
    }
    w->heap[i] = p;
}

static int heap_pop(bpe_work *w)
{
    int top = w->heap[0], last = w->heap[--w->n_heap];
    size_t i = 0, n = w->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && pair_above(&w->pair[w->heap[c + 1]], &w->pair[w->heap[c]]))
            c++;
        if (!pair_above(&w->pair[w->heap[c]], &w->pair[last]))
            break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n)
        w->heap[i] = last;
    return top;
}

static qkv_status grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return QKV_OK;
    size_t nc = *cap ? *cap * 2 : 64;
    while (nc < need)
        nc *= 2;
    void *np = realloc(*p, nc * elem);
    if (!np)
        return qkv_fail(QKV_ERR_NOMEM, "out of memory encoding");
    *p = np;
    *cap = nc;
    return QKV_OK;
}

/* The pair (left, right) goes on the agenda when their concatenation is a
 * piece. The walk starts at left's trie node, so only right's bytes are
 * looked up. */
static qkv_status maybe_add_pair(const qkv_vocab *v, bpe_work *w, const char *s, int left, int right)
{
    if (left < 0 || right < 0)
        return QKV_OK;
    const bsym *l = &w->sym[left], *r = &w->sym[right];
    if (l->freeze || r->freeze || l->node < 0)
        return QKV_OK;
    int node = l->node;
    for (uint32_t k = 0; k < r->len && node >= 0; k++)
        node = spm_trie_child(&v->pieces, node, (unsigned char)s[r->off + k]);
    int id = node >= 0 ? v->pieces.value[node] : -1;
    if (id < 0)
        return QKV_OK;
    QKV_TRY(grow((void **)&w->pair, &w->cap_pair, w->n_pair + 1, sizeof(bpair)));
    QKV_TRY(grow((void **)&w->heap, &w->cap_heap, w->n_heap + 1, sizeof(int)));
    int p = (int)w->n_pair++;
    w->pair[p] = (bpair){left, right, v->m.pieces[id].score, l->len + r->len, node};
    heap_push(w, p);
    if (v->m.pieces[id].type == SPM_UNUSED) {
        QKV_TRY(grow((void **)&w->rev, &w->cap_rev, w->n_rev + 1, sizeof(brev)));
        w->rev[w->n_rev++] = (brev){id, l->off, l->len, r->off, r->len};
    }
    return QKV_OK;
}

/* An unused piece is split back into the two pieces it was merged from. */
static qkv_status resegment(const qkv_vocab *v, spm_state *st, const bpe_work *w, const char *s, uint32_t off,
                            uint32_t len, int depth)
{
    int id = spm_piece_id(v, s + off, len);
    if (v->m.pieces[id].type == SPM_UNUSED && depth < 64) {
        for (size_t i = w->n_rev; i-- > 0;) {
            const brev *r = &w->rev[i];
            if (r->id != id)
                continue;
            /* the recorded halves may come from another occurrence of the
             * same string: only their lengths matter */
            QKV_TRY(resegment(v, st, w, s, off, r->llen, depth + 1));
            return resegment(v, st, w, s, off + r->llen, r->rlen, depth + 1);
        }
    }
    return tok_push(st, id, off, len);
}

qkv_status spm_encode_bpe(const qkv_vocab *v, spm_state *st, const char *s, size_t len)
{
    if (!len)
        return QKV_OK;
    if (len > INT32_MAX / 2)
        return qkv_fail(QKV_ERR_ARG, "input of %zu bytes is too long to encode", len);
    if (!st->bpe && !(st->bpe = calloc(1, sizeof *st->bpe)))
        return qkv_fail(QKV_ERR_NOMEM, "out of memory encoding");
    bpe_work *w = st->bpe;
    w->n_sym = w->n_pair = w->n_heap = w->n_rev = 0;
    const spm_trie *t = &v->pieces;
    for (size_t i = 0; i < len;) {
        size_t m = v->has_users ? spm_trie_longest_prefix(&v->users, s + i, len - i) : 0;
        int freeze = m > 0;
        if (!m) {
            m = utf8_lead_len((unsigned char)s[i]);
            if (m > len - i)
                m = len - i;
        }
        QKV_TRY(grow((void **)&w->sym, &w->cap_sym, w->n_sym + 1, sizeof(bsym)));
        int node = 0;
        for (size_t k = 0; k < m && node >= 0; k++)
            node = spm_trie_child(t, node, (unsigned char)s[i + k]);
        int idx = (int)w->n_sym++;
        w->sym[idx] = (bsym){(uint32_t)i, (uint32_t)m, idx - 1, i + m < len ? idx + 1 : -1, freeze, node};
        i += m;
    }
    for (size_t i = 1; i < w->n_sym; i++)
        QKV_TRY(maybe_add_pair(v, w, s, (int)i - 1, (int)i));
    while (w->n_heap) {
        bpair top = w->pair[heap_pop(w)];
        bsym *l = &w->sym[top.left], *r = &w->sym[top.right];
        if (!l->len || !r->len || l->len + r->len != top.size)
            continue; /* stale: one side was merged since */
        l->len += r->len;
        l->node = top.node;
        l->next = r->next;
        if (r->next >= 0)
            w->sym[r->next].prev = top.left;
        r->len = 0;
        QKV_TRY(maybe_add_pair(v, w, s, l->prev, top.left));
        QKV_TRY(maybe_add_pair(v, w, s, top.left, l->next));
    }
    for (int i = 0; i != -1; i = w->sym[i].next) {
        const bsym *b = &w->sym[i];
        if (!w->n_rev && !v->reserved_shadows && b->node >= 0 && t->value[b->node] >= 0 && v->m.pieces[t->value[b->node]].type != SPM_UNUSED) {
            /* the common case: a known piece, its id at hand */
            QKV_TRY(tok_push(st, t->value[b->node], b->off, b->len));
            continue;
        }
        QKV_TRY(resegment(v, st, w, s, b->off, b->len, 0));
    }
    return QKV_OK;
}

/* ---- char and word models ------------------------------------------------- */

/* char: one piece per character (user-defined symbols kept whole). */
static qkv_status encode_char(const qkv_vocab *v, spm_state *st, const char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        size_t m = v->has_users ? spm_trie_longest_prefix(&v->users, s + i, len - i) : 0;
        if (!m) {
            m = utf8_lead_len((unsigned char)s[i]);
            if (m > len - i)
                m = len - i;
        }
        QKV_TRY(tok_push(st, spm_piece_id(v, s + i, m), i, m));
        i += m;
    }
    return QKV_OK;
}

/* word: a word starts at each U+2581, as sentencepiece's SplitIntoWords.
 * sentencepiece 0.1.97's word model splits so even when whitespace is
 * treated as a suffix ("a\u2581b\u2581" gives a, \u2581b, \u2581). */
static qkv_status encode_word(const qkv_vocab *v, spm_state *st, const char *s, size_t len)
{
    size_t start = 0;
    for (size_t i = 0; i < len;) {
        size_t m = utf8_lead_len((unsigned char)s[i]);
        if (m > len - i)
            m = len - i;
        if (m == 3 && i > start && !memcmp(s + i, "\xE2\x96\x81", 3)) {
            QKV_TRY(tok_push(st, spm_piece_id(v, s + start, i - start), start, i - start));
            start = i;
        }
        i += m;
    }
    if (start < len)
        QKV_TRY(tok_push(st, spm_piece_id(v, s + start, len - start), start, len - start));
    return QKV_OK;
}

/* ---- the whole pipeline --------------------------------------------------- */

qkv_status spm_encode(const qkv_vocab *v, spm_state *st, const char *text, size_t len)
{
    st->n_tok = 0;
    QKV_TRY(spm_normalize(&v->norm, &st->normalized, text, len, &st->n_invalid));
    const char *s = st->normalized.p;
    size_t n = st->normalized.len;
    if (n > INT32_MAX / 2) /* token offsets are 32-bit */
        return qkv_fail(QKV_ERR_ARG, "input of %zu bytes is too long to encode", len);
    switch (v->m.trainer.model_type) {
    case SPM_BPE: QKV_TRY(spm_encode_bpe(v, st, s, n)); break;
    case SPM_CHAR: QKV_TRY(encode_char(v, st, s, n)); break;
    case SPM_WORD: QKV_TRY(encode_word(v, st, s, n)); break;
    default: QKV_TRY(spm_encode_unigram(v, st, s, n));
    }
    /* sentencepiece reports a run of unknown characters as one unknown
     * piece (its surface spans them all). */
    size_t w = 0, n_unk = 0, extra = 0;
    for (size_t i = 0; i < st->n_tok; i++) {
        spm_token t = st->tok[i];
        if (t.id == v->unk_id && w > 0 && st->tok[w - 1].id == v->unk_id &&
            st->tok[w - 1].off + st->tok[w - 1].len == t.off) {
            st->tok[w - 1].len += t.len;
            extra += t.len;
            continue;
        }
        if (t.id == v->unk_id) {
            n_unk++;
            extra += t.len - 1;
        }
        st->tok[w++] = t;
    }
    st->n_tok = w;
    if (!v->m.trainer.byte_fallback || !n_unk)
        return QKV_OK;
    /* An unknown piece becomes one byte piece per UTF-8 byte of its text. */
    size_t old = st->n_tok;
    for (size_t i = 0; i < extra; i++)
        QKV_TRY(tok_push(st, 0, 0, 0));
    for (size_t i = old, j = st->n_tok; i-- > 0;) {
        spm_token t = st->tok[i];
        if (t.id != v->unk_id) {
            st->tok[--j] = t;
            continue;
        }
        for (uint32_t b = t.len; b-- > 0;)
            st->tok[--j] = (spm_token){v->byte_id[(unsigned char)s[t.off + b]], t.off + b, 1};
    }
    return QKV_OK;
}
