/* One row of scores at a time: generate()'s logits processors, top-k
 * selection without sorting the vocabulary, and the sampling warpers.
 * Definitions follow transformers 4.39 (generation/logits_process.py). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "decode/search.h"
#include "kernels/kernels.h"

double search_length_penalty(qkv_length_penalty_kind k, float alpha, int len)
{
    /* transformers: sum_logprobs / (generated_len ** length_penalty), in
     * Python doubles; GNMT (Wu et al. 2016): ((5 + len) / 6) ** alpha. */
    if (k == QKV_LENGTH_PENALTY_GNMT)
        return pow((5.0 + len) / 6.0, (double)alpha);
    return pow((double)len, (double)alpha);
}

/* Bad word sequence [a_1..a_m] bans a_m when the sequence ends with
 * a_1..a_{m-1}; a single id is always banned. */
static void ban_bad_words(float *x, int V, const int *seq, int len, const search_params *p)
{
    int i = 0;
    while (i < p->n_bad) {
        int j = i;
        while (j < p->n_bad && p->bad[j] >= 0)
            j++;
        int m = j - i; /* sequence p->bad[i..j) */
        if (m > 0 && m - 1 <= len) {
            int match = 1;
            for (int q = 0; q < m - 1 && match; q++)
                match = seq[len - (m - 1) + q] == p->bad[i + q];
            int last = p->bad[j - 1];
            if (match && last < V)
                x[last] = -INFINITY;
        }
        i = j + 1;
    }
}

void search_process_row(float *x, int V, const int *seq, int len, const search_params *p, int max_length,
                        unsigned char *mark)
{
    if (p->repetition_penalty != 1.0f) {
        /* torch gathers then scatters: a repeated token is penalised once */
        float pen = p->repetition_penalty;
        for (int i = 0; i < len; i++) {
            int t = seq[i];
            if (t < 0 || t >= V || mark[t])
                continue;
            mark[t] = 1;
            x[t] = x[t] < 0 ? x[t] * pen : x[t] / pen;
        }
        for (int i = 0; i < len; i++)
            if (seq[i] >= 0 && seq[i] < V)
                mark[seq[i]] = 0;
    }
    int n = p->no_repeat_ngram_size;
    if (n > 0 && len + 1 >= n) {
        /* ban every token that would complete an n-gram already in seq */
        const int *tail = seq + len - (n - 1);
        for (int i = 0; i + n <= len; i++) {
            if (n > 1 && memcmp(seq + i, tail, (size_t)(n - 1) * sizeof(int)) != 0)
                continue;
            int t = seq[i + n - 1];
            if (t >= 0 && t < V)
                x[t] = -INFINITY;
        }
    }
    if (p->n_bad > 0)
        ban_bad_words(x, V, seq, len, p);
    if (len < p->min_length)
        x[p->eos_id] = -INFINITY;
    if (p->forced_eos && len == max_length - 1) {
        for (int v = 0; v < V; v++)
            x[v] = -INFINITY;
        x[p->eos_id] = 0;
    }
}

/* a before b in the ranking: larger value, then smaller index */
static int ranks_before(float va, int ia, float vb, int ib) { return va > vb || (va == vb && ia < ib); }

/* Inserts (xv, v) into the ranked list vals/idx of n <= k entries. */
static inline void topk_insert(float xv, int v, int k, int *n, float *vals, int *idx)
{
    int j = *n < k ? (*n)++ : k - 1;
    while (j > 0 && ranks_before(xv, v, vals[j - 1], idx[j - 1])) {
        vals[j] = vals[j - 1];
        idx[j] = idx[j - 1];
        j--;
    }
    vals[j] = xv;
    idx[j] = v;
}

#define TOPK_BLOCK 16

typedef float topk_f4 __attribute__((vector_size(16)));
typedef int topk_i4 __attribute__((vector_size(16)));

/* whether any of x[0..TOPK_BLOCK) + off is above t (NaN is not), four
 * floats to a vector (SSE2, which every x86-64 has) */
static inline int block_above(const float *x, float off, int add, float t)
{
    topk_i4 any = {0};
    for (int i = 0; i < TOPK_BLOCK; i += 4) {
        topk_f4 v;
        memcpy(&v, x + i, sizeof v);
        if (add)
            v = v + off;
        any |= v > t;
    }
    return (any[0] | any[1] | any[2] | any[3]) != 0;
}

/* The top k of x[v] (+ off when add, in float). Once the list is full, a
 * value enters only above the last entry (ties keep the earlier index),
 * so a block of values none of which is above it is passed over whole;
 * the others go through the element test in order, as without blocks. */
static int topk(const float *x, int V, float off, int add, int k, float *vals, int *idx)
{
    if (k > V)
        k = V;
    if (k <= 0)
        return 0;
    int n = 0, v = 0;
    for (; v < V && n < k; v++) {
        float xv = add ? x[v] + off : x[v];
        if (xv == xv) /* NaN never enters; -inf does while the list is not full */
            topk_insert(xv, v, k, &n, vals, idx);
    }
    for (; v < V; v++) {
        if (v % TOPK_BLOCK == 0 && v + TOPK_BLOCK <= V && !block_above(x + v, off, add, vals[k - 1])) {
            v += TOPK_BLOCK - 1;
            continue;
        }
        float xv = add ? x[v] + off : x[v];
        if (xv > vals[k - 1])
            topk_insert(xv, v, k, &n, vals, idx);
    }
    return n;
}

int search_topk(const float *x, int V, int k, float *vals, int *idx) { return topk(x, V, 0.0f, 0, k, vals, idx); }

int search_topk_offset(const float *x, int V, float off, int k, float *vals, int *idx)
{
    return topk(x, V, off, 1, k, vals, idx);
}

static const float *sort_keys;
static int cmp_desc(const void *a, const void *b)
{
    int ia = *(const int *)a, ib = *(const int *)b;
    float va = sort_keys[ia], vb = sort_keys[ib];
    if (ranks_before(va, ia, vb, ib))
        return -1;
    return ranks_before(vb, ib, va, ia) ? 1 : 0;
}

int search_topk_ref(const float *x, int V, int k, float *vals, int *idx)
{
    int *all = malloc((size_t)(V > 0 ? V : 1) * sizeof(int));
    if (!all)
        return 0;
    int n = 0;
    for (int v = 0; v < V; v++)
        if (x[v] == x[v])
            all[n++] = v;
    sort_keys = x; /* tests only: not thread-safe */
    qsort(all, (size_t)n, sizeof(int), cmp_desc);
    if (k > n)
        k = n;
    for (int i = 0; i < k; i++) {
        idx[i] = all[i];
        vals[i] = x[all[i]];
    }
    free(all);
    return k < 0 ? 0 : k;
}

float search_logsumexp(const float *x, int V)
{
    float lse;
    logsumexp_rows(&lse, x, 1, V);
    return lse;
}

int search_argmax(const float *x, int V)
{
    int best = 0;
    for (int v = 1; v < V; v++)
        if (x[v] > x[best])
            best = v;
    return best;
}

/* order[0..n) sorted by decreasing x (ties: smaller index); heap-free:
 * qsort of the n finite entries, which sampling with top-p needs anyway. */
static int sort_desc(const float *x, int V, int *order)
{
    int n = 0;
    for (int v = 0; v < V; v++)
        if (x[v] > -INFINITY)
            order[n++] = v;
    /* insertion into a sorted array would be O(n^2); qsort with a static key
     * is not reentrant, so use a local merge sort */
    int *tmp = malloc((size_t)(n > 0 ? n : 1) * sizeof(int));
    if (!tmp)
        return n; /* unsorted: top-p then keeps a valid (if larger) set */
    for (int w = 1; w < n; w *= 2) {
        for (int lo = 0; lo < n; lo += 2 * w) {
            int mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int a = lo, b = mid, o = lo;
            while (a < mid && b < hi)
                tmp[o++] = ranks_before(x[order[b]], order[b], x[order[a]], order[a]) ? order[b++] : order[a++];
            while (a < mid)
                tmp[o++] = order[a++];
            while (b < hi)
                tmp[o++] = order[b++];
        }
        memcpy(order, tmp, (size_t)n * sizeof(int));
    }
    free(tmp);
    return n;
}

int search_sample_row(float *x, int V, const search_params *p, qkv_rng *rng, int *order)
{
    if (p->temperature != 1.0f)
        for (int v = 0; v < V; v++)
            x[v] /= p->temperature;
    if (p->top_k > 0 && p->top_k < V) {
        /* keep every score >= the k-th largest (ties kept, as torch) */
        float *vals = malloc((size_t)p->top_k * sizeof(float));
        int *idx = malloc((size_t)p->top_k * sizeof(int));
        if (vals && idx && search_topk(x, V, p->top_k, vals, idx) == p->top_k) {
            float kth = vals[p->top_k - 1];
            for (int v = 0; v < V; v++)
                if (x[v] < kth)
                    x[v] = -INFINITY;
        }
        free(vals);
        free(idx);
    }
    float lse = search_logsumexp(x, V);
    if (lse == -INFINITY)
        return p->eos_id; /* everything masked: nothing to draw from */
    if (p->top_p < 1.0f) {
        /* transformers removes a token when the probability mass of it and
         * every smaller one is <= 1 - top_p: in decreasing order, a token is
         * kept while the mass strictly before it is < top_p (and the first
         * always). */
        int n = sort_desc(x, V, order);
        double before = 0;
        int i = 0;
        for (; i < n; i++) {
            if (i > 0 && before >= p->top_p)
                break;
            before += exp((double)x[order[i]] - lse);
        }
        for (; i < n; i++)
            x[order[i]] = -INFINITY;
        lse = search_logsumexp(x, V);
    }
    double u = qkv_rng_uniform(rng), acc = 0;
    int last = -1;
    for (int v = 0; v < V; v++) {
        if (!(x[v] > -INFINITY))
            continue;
        last = v;
        acc += exp((double)x[v] - lse);
        if (u < acc)
            return v;
    }
    return last; /* rounding left u above the total mass */
}
