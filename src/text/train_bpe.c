/* BPE vocabulary training, after sentencepiece's bpe_model_trainer.cc:
 * start from characters, repeatedly merge the adjacent pair of symbols that
 * occurs most often in the (count-weighted) distinct words, until the
 * vocabulary is full. Piece scores are minus the merge rank, so the encoder
 * replays the merges in order; the required characters come last.
 *
 * As in sentencepiece: a pair whose merge would not be a valid piece (two
 * scripts, ▁ inside, longer than max_piece_length, ▅) is never counted; when
 * a merge spells a piece already made by another pair ("aaa" = "aa"+"a" =
 * "a"+"aa"), that pair is dropped instead of merged.
 *
 * Counting: each pair keeps its count and the words it occurs in; a merge
 * re-counts only those words (subtract their pairs, merge, add back). The
 * best pair comes from a max-heap of (count, pair) with stale entries
 * skipped; ties are broken as sentencepiece breaks them (see heap_less). */
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "base/status.h"
#include "text/train.h"

typedef struct {
    int left, right; /* symbol ids */
    int merged;      /* symbol id of the merged string once known, else -1 */
    int valid, dead;
    int touched; /* the merge that last changed its count */
    int64_t count;
    int *words; /* words it occurred in (may repeat or be stale) */
    int n_words, cap_words;
} bpe_pair;

typedef struct {
    int64_t count;
    int pair;
} heap_entry;

typedef struct {
    const train_corpus *c;
    train_strset sym; /* symbol strings */
    bpe_pair *pairs;
    int n_pairs, cap_pairs;
    uint64_t *pkey; /* open addressing: (left << 32 | right) + 1, 0 empty */
    int32_t *pidx;
    size_t pcap;
    heap_entry *heap;
    size_t n_heap, cap_heap;
    int **seq; /* per word: its current symbols */
    int *seq_len;
    int *stamp; /* per word: last merge that visited it */
    int merge;  /* merges done so far */
    int *touched; /* pairs whose count changed in this merge */
    int n_touched, cap_touched;
    int oom;
} bpe;

/* Order of the candidates, as sentencepiece chooses the best symbol: higher
 * count, then the shorter merged piece, then the smaller one in code-point
 * (= UTF-8 byte) order. */
static int heap_less(const bpe *b, const heap_entry *x, const heap_entry *y)
{
    if (x->count != y->count)
        return x->count < y->count;
    if (x->pair == y->pair)
        return 0;
    const bpe_pair *p = &b->pairs[x->pair], *q = &b->pairs[y->pair];
    int lpl = b->sym.len[p->left], lql = b->sym.len[q->left];
    int lp = lpl + b->sym.len[p->right], lq = lql + b->sym.len[q->right];
    if (lp != lq)
        return lp > lq;
    for (int k = 0; k < lp; k++) {
        uint32_t cp = k < lpl ? train_strset_key(&b->sym, p->left)[k] : train_strset_key(&b->sym, p->right)[k - lpl];
        uint32_t cq = k < lql ? train_strset_key(&b->sym, q->left)[k] : train_strset_key(&b->sym, q->right)[k - lql];
        if (cp != cq)
            return cp > cq;
    }
    return x->pair > y->pair; /* the same string from two pairs: the earlier pair first */
}

static void heap_push(bpe *b, int64_t count, int pair)
{
    if (b->n_heap == b->cap_heap) {
        size_t cap = b->cap_heap ? b->cap_heap * 2 : 4096;
        heap_entry *h = realloc(b->heap, cap * sizeof *h);
        if (!h) {
            b->oom = 1;
            return;
        }
        b->heap = h;
        b->cap_heap = cap;
    }
    size_t i = b->n_heap++;
    b->heap[i] = (heap_entry){count, pair};
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!heap_less(b, &b->heap[up], &b->heap[i]))
            break;
        heap_entry t = b->heap[up];
        b->heap[up] = b->heap[i];
        b->heap[i] = t;
        i = up;
    }
}

static heap_entry heap_pop(bpe *b)
{
    heap_entry top = b->heap[0];
    b->heap[0] = b->heap[--b->n_heap];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < b->n_heap && heap_less(b, &b->heap[m], &b->heap[l]))
            m = l;
        if (r < b->n_heap && heap_less(b, &b->heap[m], &b->heap[r]))
            m = r;
        if (m == i)
            break;
        heap_entry t = b->heap[m];
        b->heap[m] = b->heap[i];
        b->heap[i] = t;
        i = m;
    }
    return top;
}

static int pair_grow(bpe *b)
{
    size_t cap = b->pcap ? b->pcap * 2 : 65536;
    uint64_t *k = calloc(cap, sizeof *k);
    int32_t *v = malloc(cap * sizeof *v);
    if (!k || !v) {
        free(k);
        free(v);
        return 0;
    }
    for (size_t i = 0; i < b->pcap; i++) {
        if (!b->pkey[i])
            continue;
        size_t j = (size_t)qkv_splitmix64(b->pkey[i]) & (cap - 1);
        while (k[j])
            j = (j + 1) & (cap - 1);
        k[j] = b->pkey[i];
        v[j] = b->pidx[i];
    }
    free(b->pkey);
    free(b->pidx);
    b->pkey = k;
    b->pidx = v;
    b->pcap = cap;
    return 1;
}

/* The pair (left, right), created on first sight (-1 when out of memory). */
static int pair_get(bpe *b, int left, int right)
{
    if ((size_t)(b->n_pairs + 1) * 2 > b->pcap && !pair_grow(b))
        return -1;
    uint64_t key = ((uint64_t)(uint32_t)left << 32 | (uint32_t)right) + 1;
    size_t j = (size_t)qkv_splitmix64(key) & (b->pcap - 1);
    while (b->pkey[j]) {
        if (b->pkey[j] == key)
            return b->pidx[j];
        j = (j + 1) & (b->pcap - 1);
    }
    if (b->n_pairs == b->cap_pairs) {
        int cap = b->cap_pairs ? b->cap_pairs * 2 : 65536;
        bpe_pair *p = realloc(b->pairs, (size_t)cap * sizeof *p);
        if (!p)
            return -1;
        b->pairs = p;
        b->cap_pairs = cap;
    }
    bpe_pair *p = &b->pairs[b->n_pairs];
    memset(p, 0, sizeof *p);
    p->left = left;
    p->right = right;
    p->merged = -1;
    int ll = b->sym.len[left], lr = b->sym.len[right];
    if (ll + lr <= b->c->opt->max_piece_length) {
        uint32_t buf[1040];
        memcpy(buf, train_strset_key(&b->sym, left), (size_t)ll * sizeof *buf);
        memcpy(buf + ll, train_strset_key(&b->sym, right), (size_t)lr * sizeof *buf);
        p->valid = train_valid_piece(b->c->opt, buf, ll + lr);
    }
    b->pkey[j] = key;
    b->pidx[j] = b->n_pairs;
    return b->n_pairs++;
}

/* Adds sign x freq to every valid pair of word w (recording the word). */
static void count_word(bpe *b, int w, int sign)
{
    int64_t f = b->c->words.freq[w] * sign;
    for (int i = 0; i + 1 < b->seq_len[w]; i++) {
        int p = pair_get(b, b->seq[w][i], b->seq[w][i + 1]);
        if (p < 0) {
            b->oom = 1;
            return;
        }
        bpe_pair *q = &b->pairs[p];
        if (!q->valid || q->dead)
            continue;
        q->count += f;
        if (q->touched != b->merge + 1) {
            q->touched = b->merge + 1;
            if (b->n_touched == b->cap_touched) {
                int cap = b->cap_touched ? b->cap_touched * 2 : 4096;
                int *t = realloc(b->touched, (size_t)cap * sizeof *t);
                if (!t) {
                    b->oom = 1;
                    return;
                }
                b->touched = t;
                b->cap_touched = cap;
            }
            b->touched[b->n_touched++] = p;
        }
        if (sign > 0) {
            if (q->n_words == q->cap_words) {
                int cap = q->cap_words ? q->cap_words * 2 : 4;
                int *ws = realloc(q->words, (size_t)cap * sizeof *ws);
                if (!ws) {
                    b->oom = 1;
                    return;
                }
                q->words = ws;
                q->cap_words = cap;
            }
            if (q->n_words == 0 || q->words[q->n_words - 1] != w)
                q->words[q->n_words++] = w;
        }
    }
}

static void bpe_free(bpe *b)
{
    train_strset_free(&b->sym);
    for (int i = 0; i < b->n_pairs; i++)
        free(b->pairs[i].words);
    free(b->pairs);
    free(b->pkey);
    free(b->pidx);
    free(b->heap);
    for (int i = 0; b->seq && i < b->c->words.n; i++)
        free(b->seq[i]);
    free(b->seq);
    free(b->seq_len);
    free(b->stamp);
    free(b->touched);
}

/* Gives every pair whose count changed a heap entry with its new count. */
static void push_touched(bpe *b)
{
    for (int i = 0; i < b->n_touched; i++) {
        bpe_pair *q = &b->pairs[b->touched[i]];
        if (q->valid && !q->dead && q->count > 0)
            heap_push(b, q->count, b->touched[i]);
    }
    b->n_touched = 0;
}

static qkv_status add_piece(train_pieces *out, int cap, const uint32_t *s, int len)
{
    if (out->n >= cap)
        return qkv_fail(QKV_ERR_ARG, "vocab train: internal error: too many BPE pieces");
    out->piece[out->n] = train_utf8_string(s, len);
    if (!out->piece[out->n])
        return qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory");
    out->score[out->n] = -(float)out->n;
    out->n++;
    return QKV_OK;
}

qkv_status train_bpe(train_pieces *out, const train_corpus *c)
{
    memset(out, 0, sizeof *out);
    const train_words *w = &c->words;
    int n_merges = c->opt->vocab_size - c->n_meta - c->n_req;
    if (n_merges < 0)
        return qkv_fail(QKV_ERR_CONFIG,
                        "vocab train: vocabulary size %d is smaller than the %d required characters plus %d "
                        "special, user-defined and byte pieces",
                        c->opt->vocab_size, c->n_req, c->n_meta);
    int cap = n_merges + c->n_req;
    bpe b;
    memset(&b, 0, sizeof b);
    b.c = c;
    qkv_status st = train_strset_init(&b.sym, (size_t)cap + 1024);
    out->piece = calloc((size_t)cap + 1, sizeof *out->piece);
    out->score = calloc((size_t)cap + 1, sizeof *out->score);
    b.seq = calloc((size_t)w->n + 1, sizeof *b.seq);
    b.seq_len = calloc((size_t)w->n + 1, sizeof *b.seq_len);
    b.stamp = calloc((size_t)w->n + 1, sizeof *b.stamp);
    if (st == QKV_OK && (!out->piece || !out->score || !b.seq || !b.seq_len || !b.stamp))
        st = qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory for %d words", w->n);
    for (int i = 0; i < w->n && st == QKV_OK; i++) {
        int len = (int)(w->offset[i + 1] - w->offset[i]);
        b.seq[i] = malloc(((size_t)len + 1) * sizeof **b.seq);
        if (!b.seq[i]) {
            st = qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory");
            break;
        }
        b.seq_len[i] = len;
        for (int k = 0; k < len && st == QKV_OK; k++) {
            const uint32_t *ch = w->chars + w->offset[i] + k;
            st = train_strset_add(&b.sym, ch, 1, train_hash(ch, 1), &b.seq[i][k], NULL);
        }
        b.stamp[i] = -1;
    }
    for (int i = 0; i < w->n && st == QKV_OK; i++)
        count_word(&b, i, +1);
    push_touched(&b);
    if (st == QKV_OK && b.oom)
        st = qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory counting pairs");
    uint32_t buf[1040];
    int merges = 0;
    while (st == QKV_OK && merges < n_merges && b.n_heap > 0) {
        heap_entry e = heap_pop(&b);
        bpe_pair *best = &b.pairs[e.pair];
        if (best->dead || e.count != best->count || best->count <= 0)
            continue; /* stale entry */
        int ll = b.sym.len[best->left], lr = b.sym.len[best->right];
        memcpy(buf, train_strset_key(&b.sym, best->left), (size_t)ll * sizeof *buf);
        memcpy(buf + ll, train_strset_key(&b.sym, best->right), (size_t)lr * sizeof *buf);
        int id, added;
        st = train_strset_add(&b.sym, buf, ll + lr, train_hash(buf, ll + lr), &id, &added);
        if (st != QKV_OK)
            break;
        best->dead = 1;
        if (!added) /* the same string made by another pair earlier: drop this pair */
            continue;
        st = add_piece(out, cap, buf, ll + lr);
        merges++;
        b.merge = merges;
        int left = best->left, right = best->right;
        /* best may move when pairs grow: copy the word list first */
        int nw = best->n_words, *ws = best->words;
        best->words = NULL;
        best->n_words = best->cap_words = 0;
        for (int k = 0; k < nw && st == QKV_OK; k++) {
            int wi = ws[k];
            if (b.stamp[wi] == merges)
                continue;
            b.stamp[wi] = merges;
            count_word(&b, wi, -1);
            int *s = b.seq[wi], n = b.seq_len[wi], m = 0;
            for (int i = 0; i < n; i++) {
                if (i + 1 < n && s[i] == left && s[i + 1] == right) {
                    s[m++] = id;
                    i++;
                } else {
                    s[m++] = s[i];
                }
            }
            b.seq_len[wi] = m;
            count_word(&b, wi, +1);
        }
        free(ws);
        push_touched(&b);
        if (b.oom)
            st = qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory merging");
        if (st == QKV_OK && merges % 1000 == 0)
            train_progress(c->opt, "BPE: %d of %d merges", merges, n_merges);
    }
    for (int i = 0; i < c->n_req && st == QKV_OK; i++)
        st = add_piece(out, cap, &c->req_chars[i], 1);
    bpe_free(&b);
    if (st != QKV_OK)
        train_pieces_free(out);
    return st;
}
