/* Seed pieces of the unigram trainer (sentencepiece's MakeSeedSentencePieces):
 * every character, plus the substrings that a suffix tree of the text has as
 * internal nodes (occurring twice or more, followed by at least two different
 * characters), scored frequency x length; the best seed_pieces are kept and
 * all scores turned into log-probabilities.
 *
 * The suffix tree is not built: the suffixes of the distinct words only are
 * sorted (weighted by the words' counts), each compared on at most
 * max_piece_length + 1 code points and ended by what followed the word (▁ or
 * the end of the sentence). The lcp-intervals of depth <= max_piece_length of
 * that sorted list are exactly the suffix tree's internal nodes of those
 * depths, since pieces never span a ▁ other than their first character. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "text/train.h"

/* ---- seeds ---------------------------------------------------------------- */

typedef struct {
    uint64_t head; /* the key's first three units, 21 bits each (see head_of) */
    int word, off;
} suffix_ref;

typedef struct {
    const train_words *w;
    int maxk; /* compared length: max_piece_length + 1 */
} suffix_ctx;

/* Code point k of the suffix key: the word's characters, then one unit for
 * what followed it (▁ or 0), then nothing (-1). */
static inline int64_t key_at(const train_words *w, suffix_ref r, int k)
{
    size_t len = w->offset[r.word + 1] - w->offset[r.word];
    size_t pos = (size_t)r.off + (size_t)k;
    if (pos < len)
        return w->chars[w->offset[r.word] + pos];
    if (pos == len)
        return w->ws_after[r.word] ? TRAIN_WS : 0;
    return -1;
}

/* The first three key units as one integer, each as unit + 1 (0: past the
 * end), so that comparing heads orders suffixes as comparing keys does and
 * most comparisons never touch the text. */
static uint64_t head_of(const train_words *w, suffix_ref r, int maxk)
{
    uint64_t h = 0;
    for (int k = 0; k < 3; k++)
        h = h << 21 | (uint64_t)((k < maxk ? key_at(w, r, k) : -1) + 1);
    return h;
}

static int cmp_suffix(const void *a, const void *b, void *ctx)
{
    const suffix_ctx *c = ctx;
    const suffix_ref *x = a, *y = b;
    if (x->head != y->head)
        return x->head < y->head ? -1 : 1;
    int from = (x->head & 0x1FFFFF) ? 3 : c->maxk; /* equal heads that ended: equal keys */
    for (int k = from; k < c->maxk; k++) {
        int64_t p = key_at(c->w, *x, k), q = key_at(c->w, *y, k);
        if (p != q)
            return p < q ? -1 : 1;
        if (p < 0)
            break;
    }
    if (x->word != y->word) /* ties in a fixed order, for repeatable seeds */
        return x->word < y->word ? -1 : 1;
    return x->off < y->off ? -1 : x->off > y->off;
}

typedef struct {
    suffix_ref at;
    int len;
    int64_t score;
} seed_cand;

static int cmp_seed(const void *a, const void *b)
{
    const seed_cand *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    if (x->at.word != y->at.word)
        return x->at.word < y->at.word ? -1 : 1;
    if (x->at.off != y->at.off)
        return x->at.off < y->at.off ? -1 : 1;
    return x->len < y->len ? -1 : x->len > y->len;
}

qkv_status train_unigram_seeds(train_strset *set, double **score_out, const train_corpus *c)
{
    const qkv_vocab_train_options *opt = c->opt;
    const train_words *w = &c->words;
    size_t n = w->offset[w->n];
    suffix_ref *refs = malloc((n + 1) * sizeof *refs);
    int64_t *cum = malloc((n + 2) * sizeof *cum);
    int *lcp = malloc((n + 1) * sizeof *lcp);
    seed_cand *cand = NULL;
    size_t n_cand = 0, cand_cap = 0;
    qkv_status st = QKV_OK;
    if (!refs || !cum || !lcp) {
        st = qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory for %zu suffixes", n);
        goto done;
    }
    suffix_ctx ctx = {w, opt->max_piece_length + 1};
    size_t k = 0;
    for (int i = 0; i < w->n; i++)
        for (size_t o = 0; o < w->offset[i + 1] - w->offset[i]; o++) {
            refs[k] = (suffix_ref){0, i, (int)o};
            refs[k].head = head_of(w, refs[k], ctx.maxk);
            k++;
        }
    train_progress(opt, "sorting %zu suffixes for seed pieces", n);
    qsort_r(refs, n, sizeof *refs, cmp_suffix, &ctx);
    cum[0] = 0;
    for (size_t i = 0; i < n; i++)
        cum[i + 1] = cum[i] + w->freq[refs[i].word];
    lcp[0] = 0;
    for (size_t i = 1; i < n; i++) {
        int l = 0;
        while (l < ctx.maxk) {
            int64_t a = key_at(w, refs[i - 1], l), b = key_at(w, refs[i], l);
            if (a != b || a < 0)
                break;
            l++;
        }
        lcp[i] = l;
    }
    /* lcp-intervals by the usual stack walk; an interval [lb, rb] of depth d
     * is a suffix-tree node whose string occurs cum[rb+1]-cum[lb] times */
    struct {
        int depth;
        size_t lb;
    } *stack = malloc((size_t)(ctx.maxk + 2) * sizeof *stack);
    if (!stack) {
        st = qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory");
        goto done;
    }
    int top = 0;
    stack[0].depth = 0;
    stack[0].lb = 0;
    uint32_t buf[520];
    for (size_t i = 1; i <= n && st == QKV_OK; i++) {
        int cur = i < n ? lcp[i] : 0;
        size_t lb = i - 1;
        while (cur < stack[top].depth) {
            int d = stack[top].depth;
            size_t l = stack[top].lb, rb = i - 1;
            top--;
            lb = l;
            if (d >= 2 && d <= opt->max_piece_length) {
                for (int j = 0; j < d; j++)
                    buf[j] = (uint32_t)key_at(w, refs[l], j);
                if (train_valid_piece(opt, buf, d)) {
                    if (n_cand == cand_cap) {
                        size_t nc = cand_cap ? cand_cap * 2 : 65536;
                        seed_cand *c2 = realloc(cand, nc * sizeof *c2);
                        if (!c2) {
                            st = qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory for seed pieces");
                            break;
                        }
                        cand = c2;
                        cand_cap = nc;
                    }
                    cand[n_cand++] = (seed_cand){refs[l], d, (cum[rb + 1] - cum[l]) * d};
                }
            }
        }
        if (cur > stack[top].depth) {
            top++;
            stack[top].depth = cur;
            stack[top].lb = lb;
        }
    }
    free(stack);
    if (st != QKV_OK)
        goto done;
    if (n_cand > 1)
        qsort(cand, n_cand, sizeof *cand, cmp_seed);
    if (n_cand > (size_t)opt->seed_pieces)
        n_cand = (size_t)opt->seed_pieces;
    /* characters first, then substrings; scores to log-probabilities */
    size_t total = (size_t)c->n_req + n_cand;
    double *score = malloc((total + 1) * sizeof *score);
    *score_out = score;
    if (!score) {
        st = qkv_fail(QKV_ERR_NOMEM, "vocab train: out of memory");
        goto done;
    }
    st = train_strset_init(set, total);
    double sum = 0;
    for (int i = 0; i < c->n_req && st == QKV_OK; i++) {
        int id;
        st = train_strset_add(set, &c->req_chars[i], 1, train_hash(&c->req_chars[i], 1), &id, NULL);
        score[id] = (double)c->req_freq[i];
        sum += (double)c->req_freq[i];
    }
    for (size_t i = 0; i < n_cand && st == QKV_OK; i++) {
        for (int j = 0; j < cand[i].len; j++)
            buf[j] = (uint32_t)key_at(w, cand[i].at, j);
        int id, added;
        st = train_strset_add(set, buf, cand[i].len, train_hash(buf, cand[i].len), &id, &added);
        if (st == QKV_OK && added) {
            score[id] = (double)cand[i].score;
            sum += (double)cand[i].score;
        }
    }
    if (st == QKV_OK) {
        double logsum = log(sum);
        for (int i = 0; i < (*set).n; i++)
            score[i] = log(score[i]) - logsum;
        train_progress(opt, "%d seed pieces (%d characters, %zu substrings)", (*set).n, c->n_req, n_cand);
    }
done:
    free(refs);
    free(cum);
    free(lcp);
    free(cand);
    return st;
}

