/* Pieces, trie, lattices and the lattice cache of the unigram trainer
 * (see train_lattice.h). Lattice algorithms as in sentencepiece's
 * unigram_model.cc (PopulateNodes, PopulateMarginal, Viterbi). */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#ifdef _OPENMP
#include <omp.h>
#endif
#include "text/train_lattice.h"


static inline size_t trie_home(uint64_t key, size_t cap) { return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1); }

static inline const trie_slot *trie_step(const cp_trie *t, int node, uint32_t c)
{
    if (node == 0 && c < TRIE_ROOT_DIRECT)
        return t->root[c].key ? &t->root[c] : NULL;
    uint64_t key = ((uint64_t)node << 21 | c) + 1;
    for (size_t i = trie_home(key, t->cap);; i = (i + 1) & (t->cap - 1)) {
        const trie_slot *s = &t->slot[i];
        if (s->key == key)
            return s;
        if (!s->key)
            return NULL;
    }
}




void ulm_pieces_free(ulm_pieces *p)
{
    train_strset_free(&p->set);
    free(p->trie.slot);
    free(p->trie.root);
    free(p->score);
    free(p->cache.off);
    free(p->cache.piece);
    free(p->cache.pos);
    memset(p, 0, sizeof *p);
}

/* Builds the trie over the current pieces. */
/* Doubles the edge table and re-inserts every edge. */
static int trie_grow(cp_trie *t)
{
    size_t cap = t->cap * 2;
    trie_slot *slot = calloc(cap, sizeof *slot);
    if (!slot)
        return 0;
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->slot[i].key)
            continue;
        size_t j = trie_home(t->slot[i].key, cap);
        while (slot[j].key)
            j = (j + 1) & (cap - 1);
        slot[j] = t->slot[i];
    }
    free(t->slot);
    t->slot = slot;
    t->cap = cap;
    return 1;
}

qkv_status ulm_pieces_index(ulm_pieces *p)
{
    cp_trie *t = &p->trie;
    free(t->slot);
    t->cap = 1024; /* grown to keep the load at most 1/2 */
    while (t->cap < 2 * (size_t)p->set.n)
        t->cap <<= 1;
    t->slot = calloc(t->cap, sizeof *t->slot);
    if (!t->root)
        t->root = malloc(TRIE_ROOT_DIRECT * sizeof *t->root);
    t->n_nodes = 1;
    size_t n_edges = 0;
    if (!t->slot || !t->root)
        return qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory indexing %d pieces", p->set.n);
    memset(t->root, 0, TRIE_ROOT_DIRECT * sizeof *t->root);
    p->min_score = DBL_MAX;
    for (int i = 0; i < p->set.n; i++) {
        const uint32_t *s = train_strset_key(&p->set, i);
        int len = p->set.len[i], node = 0;
        if (p->score[i] < p->min_score)
            p->min_score = p->score[i];
        for (int k = 0; k < len; k++) {
            uint64_t key = ((uint64_t)node << 21 | s[k]) + 1;
            trie_slot *e;
            if (node == 0 && s[k] < TRIE_ROOT_DIRECT) {
                e = &t->root[s[k]];
            } else {
                if ((n_edges + 1) * 2 > t->cap && !trie_grow(t))
                    return qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory indexing %d pieces", p->set.n);
                size_t j = trie_home(key, t->cap);
                while (t->slot[j].key && t->slot[j].key != key)
                    j = (j + 1) & (t->cap - 1);
                e = &t->slot[j];
                n_edges += !e->key;
            }
            if (!e->key) {
                e->key = key;
                e->child = t->n_nodes++;
                e->piece = -1;
            }
            if (k == len - 1)
                e->piece = i;
            node = e->child;
        }
    }
    return QKV_OK;
}

/* ---- lattice ---------------------------------------------------------------- */


void ulm_lattice_free(ulm_lattice *l)
{
    free(l->first);
    free(l->start);
    free(l->end);
    free(l->piece);
    free(l->score);
    free(l->alpha);
    free(l->beta);
    free(l->back);
    memset(l, 0, sizeof *l);
}

static int lattice_reserve(ulm_lattice *l, int n, int nodes)
{
    if (n + 1 > l->pos_cap) {
        int cap = (n + 1) * 2;
        int *f = realloc(l->first, (size_t)cap * sizeof *f);
        if (f)
            l->first = f;
        double *a = realloc(l->alpha, (size_t)cap * sizeof *a);
        if (a)
            l->alpha = a;
        double *b = realloc(l->beta, (size_t)cap * sizeof *b);
        if (b)
            l->beta = b;
        int *bk = realloc(l->back, (size_t)cap * sizeof *bk);
        if (bk)
            l->back = bk;
        if (!f || !a || !b || !bk)
            return 0;
        l->pos_cap = cap;
    }
    if (nodes > l->node_cap) {
        int cap = nodes * 2;
        int *e = realloc(l->end, (size_t)cap * sizeof *e);
        if (e)
            l->end = e;
        int *st = realloc(l->start, (size_t)cap * sizeof *st);
        if (st)
            l->start = st;
        int *p = realloc(l->piece, (size_t)cap * sizeof *p);
        if (p)
            l->piece = p;
        double *s = realloc(l->score, (size_t)cap * sizeof *s);
        if (s)
            l->score = s;
        if (!e || !st || !p || !s)
            return 0;
        l->node_cap = cap;
    }
    return 1;
}

/* Every piece occurring in w[0..n), plus an unknown node for a character no
 * single-character piece covers. skip_piece (or -1) is left out when it
 * spans the whole of w (pruning's "second best"). Returns 0 when out of memory. */
int ulm_lattice_build(ulm_lattice *l, const ulm_pieces *p, const uint32_t *w, int n, int skip_piece)
{
    if (!lattice_reserve(l, n, n * 4 + 16))
        return 0;
    l->n_nodes = 0;
    for (int i = 0; i < n; i++) {
        l->first[i] = l->n_nodes;
        int single = 0, node = 0;
        for (int k = i; k < n; k++) {
            const trie_slot *e = trie_step(&p->trie, node, w[k]);
            if (!e)
                break;
            node = e->child;
            int pc = e->piece;
            if (pc < 0)
                continue;
            if (pc == skip_piece && i == 0 && k == n - 1) {
                single |= k == i; /* a skipped character still needs no unknown node */
                continue;
            }
            if (l->n_nodes == l->node_cap && !lattice_reserve(l, n, l->node_cap + 1))
                return 0;
            l->start[l->n_nodes] = i;
            l->end[l->n_nodes] = k + 1;
            l->piece[l->n_nodes] = pc;
            l->score[l->n_nodes] = p->score[pc];
            l->n_nodes++;
            single |= k == i;
        }
        if (!single) {
            if (l->n_nodes == l->node_cap && !lattice_reserve(l, n, l->node_cap + 1))
                return 0;
            l->start[l->n_nodes] = i;
            l->end[l->n_nodes] = i + 1;
            l->piece[l->n_nodes] = -1;
            l->score[l->n_nodes] = p->min_score - UNK_PENALTY;
            l->n_nodes++;
        }
    }
    l->first[n] = l->n_nodes;
    return 1;
}

static inline double log_add(double a, double b)
{
    if (a == -INFINITY)
        return b;
    if (b == -INFINITY)
        return a;
    return a > b ? a + log1p(exp(b - a)) : b + log1p(exp(a - b));
}

/* Forward-backward: adds freq x marginal of every node to expected[piece],
 * in fixed point (EXPECTED_ONE = 1): integer sums do not depend on the order
 * of addition, so the result is the same for any number of threads.
 * Returns log Z. */
double ulm_lattice_marginal(ulm_lattice *l, int n, double freq, int64_t *expected)
{
    for (int i = 0; i <= n; i++)
        l->alpha[i] = -INFINITY;
    l->alpha[0] = 0;
    for (int i = 0; i < n; i++) {
        if (l->alpha[i] == -INFINITY)
            continue;
        for (int k = l->first[i]; k < l->first[i + 1]; k++)
            l->alpha[l->end[k]] = log_add(l->alpha[l->end[k]], l->alpha[i] + l->score[k]);
    }
    l->beta[n] = 0;
    for (int i = n - 1; i >= 0; i--) {
        double b = -INFINITY;
        for (int k = l->first[i]; k < l->first[i + 1]; k++)
            b = log_add(b, l->score[k] + l->beta[l->end[k]]);
        l->beta[i] = b;
    }
    double z = l->alpha[n];
    for (int i = 0; i < n; i++)
        for (int k = l->first[i]; k < l->first[i + 1]; k++)
            if (l->piece[k] >= 0)
                expected[l->piece[k]] +=
                    llround(EXPECTED_ONE * freq * exp(l->alpha[i] + l->score[k] + l->beta[l->end[k]] - z));
    return z;
}

/* Viterbi: fills l->back; returns the best path's score (-inf if none). */
double ulm_lattice_viterbi(ulm_lattice *l, int n)
{
    for (int i = 0; i <= n; i++) {
        l->alpha[i] = -INFINITY;
        l->back[i] = -1;
    }
    l->alpha[0] = 0;
    for (int i = 0; i < n; i++) {
        if (l->alpha[i] == -INFINITY)
            continue;
        for (int k = l->first[i]; k < l->first[i + 1]; k++) {
            double s = l->alpha[i] + l->score[k];
            if (s > l->alpha[l->end[k]]) {
                l->alpha[l->end[k]] = s;
                l->back[l->end[k]] = k;
            }
        }
    }
    return l->alpha[n];
}

/* ---- lattice cache ---------------------------------------------------------- */

/* Finds every word's nodes once with the trie: each thread takes a
 * contiguous range of words into its own segment, and the segments are
 * joined in order. Leaves the cache inactive when it would be too large. */
qkv_status ulm_cache_build(ulm_pieces *p, const train_corpus *c)
{
    const train_words *w = &c->words;
    lattice_cache *lc = &p->cache;
    memset(lc, 0, sizeof *lc);
    for (int i = 0; i < w->n; i++)
        if (w->offset[i + 1] - w->offset[i] >= CACHE_MAX_WORD)
            return QKV_OK;
    int nt = c->opt->threads > 0 ? c->opt->threads : 1;
    struct segment {
        int32_t *piece;
        uint32_t *pos;
        size_t n, cap;
        int lo, hi;
    } *seg = calloc((size_t)nt, sizeof *seg);
    lc->off = malloc(((size_t)w->n + 1) * sizeof *lc->off);
    if (!lc->off || !seg) {
        free(seg);
        free(lc->off);
        lc->off = NULL;
        return qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory");
    }
    int fail = 0, used = 1;
#pragma omp parallel num_threads(nt) reduction(| : fail)
    {
        int t = 0, T = 1;
#ifdef _OPENMP
        t = omp_get_thread_num();
        T = omp_get_num_threads();
#endif
#pragma omp single
        used = T;
        struct segment *sg = &seg[t];
        sg->lo = (int)((int64_t)w->n * t / T);
        sg->hi = (int)((int64_t)w->n * (t + 1) / T);
        ulm_lattice l = {0};
        for (int i = sg->lo; i < sg->hi && !fail; i++) {
            int len = (int)(w->offset[i + 1] - w->offset[i]);
            if (!ulm_lattice_build(&l, p, w->chars + w->offset[i], len, -1)) {
                fail = 1;
                break;
            }
            if (sg->n + (size_t)l.n_nodes > sg->cap) {
                size_t cap = sg->cap ? sg->cap * 2 : 65536;
                while (cap < sg->n + (size_t)l.n_nodes)
                    cap *= 2;
                int32_t *pc = realloc(sg->piece, cap * sizeof *pc);
                if (pc)
                    sg->piece = pc;
                uint32_t *ps = realloc(sg->pos, cap * sizeof *ps);
                if (ps)
                    sg->pos = ps;
                if (!pc || !ps) {
                    fail = 1;
                    break;
                }
                sg->cap = cap;
            }
            for (int j = 0; j < l.n_nodes; j++) {
                if (l.piece[j] < 0)
                    continue;
                sg->piece[sg->n] = l.piece[j];
                sg->pos[sg->n++] = (uint32_t)l.start[j] << 10 | (uint32_t)(l.end[j] - l.start[j]);
            }
            lc->off[i + 1] = sg->n; /* within the segment, for now */
        }
        ulm_lattice_free(&l);
    }
    size_t total = 0;
    for (int t = 0; t < used; t++)
        total += seg[t].n;
    int keep = !fail && total <= CACHE_MAX_NODES;
    if (keep) {
        lc->piece = malloc((total + 1) * sizeof *lc->piece);
        lc->pos = malloc((total + 1) * sizeof *lc->pos);
        fail = !lc->piece || !lc->pos;
        keep = !fail;
    }
    if (keep) {
        size_t base = 0;
        lc->off[0] = 0;
        for (int t = 0; t < used; t++) {
            if (seg[t].n) {
                memcpy(lc->piece + base, seg[t].piece, seg[t].n * sizeof *lc->piece);
                memcpy(lc->pos + base, seg[t].pos, seg[t].n * sizeof *lc->pos);
            }
            for (int i = seg[t].lo; i < seg[t].hi; i++)
                lc->off[i + 1] += base;
            base += seg[t].n;
        }
        lc->n_words = w->n;
        lc->active = 1;
    }
    for (int t = 0; t < nt; t++) {
        free(seg[t].piece);
        free(seg[t].pos);
    }
    free(seg);
    if (!keep) {
        free(lc->off);
        free(lc->piece);
        free(lc->pos);
        memset(lc, 0, sizeof *lc);
    }
    if (fail)
        return qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory caching lattices");
    if (keep)
        train_progress(c->opt, "%zu lattice nodes cached", total);
    return QKV_OK;
}

/* Word i's lattice: from the cache (same nodes, same order as ulm_lattice_build),
 * or built with the trie when there is no cache. */
int ulm_word_lattice(ulm_lattice *l, const ulm_pieces *p, const train_words *w, int i)
{
    int n = (int)(w->offset[i + 1] - w->offset[i]);
    const lattice_cache *lc = &p->cache;
    if (!lc->active)
        return ulm_lattice_build(l, p, w->chars + w->offset[i], n, -1);
    size_t b = lc->off[i], e = lc->off[i + 1];
    if (!lattice_reserve(l, n, (int)(e - b) + n + 1))
        return 0;
    l->n_nodes = 0;
    size_t k = b;
    for (int pos = 0; pos < n; pos++) {
        l->first[pos] = l->n_nodes;
        int single = 0;
        for (; k < e && (int)(lc->pos[k] >> 10) == pos; k++) {
            int len = (int)(lc->pos[k] & 1023), pc = lc->piece[k];
            l->start[l->n_nodes] = pos;
            l->end[l->n_nodes] = pos + len;
            l->piece[l->n_nodes] = pc;
            l->score[l->n_nodes] = p->score[pc];
            l->n_nodes++;
            single |= len == 1;
        }
        if (!single) {
            l->start[l->n_nodes] = pos;
            l->end[l->n_nodes] = pos + 1;
            l->piece[l->n_nodes] = -1;
            l->score[l->n_nodes] = p->min_score - UNK_PENALTY;
            l->n_nodes++;
        }
    }
    l->first[n] = l->n_nodes;
    return 1;
}

/* Replaces the pieces by keep[0..n) (indices into the current ones) with the
 * given scores. */
qkv_status ulm_pieces_select(ulm_pieces *p, const int *keep, const double *score, int n)
{
    ulm_pieces q = {0};
    QKV_TRY(train_strset_init(&q.set, (size_t)n));
    q.score = malloc(((size_t)n + 1) * sizeof *q.score);
    if (!q.score) {
        ulm_pieces_free(&q);
        return qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory");
    }
    for (int i = 0; i < n; i++) {
        int id, k = keep[i];
        const uint32_t *s = train_strset_key(&p->set, k);
        qkv_status st = train_strset_add(&q.set, s, p->set.len[k], train_hash(s, p->set.len[k]), &id, NULL);
        if (st != QKV_OK) {
            ulm_pieces_free(&q);
            return st;
        }
        q.score[id] = score[i];
    }
    if (p->cache.active) { /* renumber the cached nodes, dropping removed pieces */
        int *inv = malloc(((size_t)p->set.n + 1) * sizeof *inv);
        if (!inv) {
            ulm_pieces_free(&q);
            return qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory");
        }
        for (int i = 0; i < p->set.n; i++)
            inv[i] = -1;
        for (int i = 0; i < n; i++)
            inv[keep[i]] = i;
        lattice_cache *c = &p->cache;
        size_t w = 0;
        for (int word = 0; word < c->n_words; word++) {
            size_t b = c->off[word], e = c->off[word + 1];
            c->off[word] = w;
            for (size_t k = b; k < e; k++)
                if (inv[c->piece[k]] >= 0) {
                    c->piece[w] = inv[c->piece[k]];
                    c->pos[w++] = c->pos[k];
                }
        }
        c->off[c->n_words] = w;
        free(inv);
        q.cache = *c;
        memset(c, 0, sizeof *c);
    }
    ulm_pieces_free(p);
    *p = q;
    return ulm_pieces_index(p);
}
