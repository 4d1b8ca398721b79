/* Pooling, normalisation, row add and top-k (contracts in pooling.h). Rows
 * are independent, so threads split whole rows (kpar_for): the same bits for
 * any thread count. One version for every instruction set: these loops are
 * a small share of an encoder's time, next to its GEMMs. */
#include "kernels/pooling.h"

#include <math.h>
#include <string.h>

#include "kernels/parallel.h"

typedef struct {
    float *out;
    const float *inp, *row;
    const int *len;
    int T, C;
    pool_kind kind;
} pool_args;

static void pool_rows(void *arg, long b0, long b1)
{
    const pool_args *a = arg;
    const float *inp = a->inp;
    float *out = a->out;
    const int *len = a->len;
    int T = a->T, C = a->C;
    pool_kind kind = a->kind;
    for (long b = b0; b < b1; b++) {
        const float *x = inp + (size_t)b * T * C;
        float *o = out + (size_t)b * C;
        int n = len[b];
        memcpy(o, x, (size_t)C * sizeof *o);
        if (kind == POOL_CLS)
            continue;
        for (int t = 1; t < n; t++) {
            const float *r = x + (size_t)t * C;
            if (kind == POOL_MAX) {
                for (int c = 0; c < C; c++)
                    o[c] = r[c] > o[c] ? r[c] : o[c];
            } else {
                for (int c = 0; c < C; c++)
                    o[c] += r[c];
            }
        }
        if (kind == POOL_MEAN) {
            float inv = 1.0f / (float)n;
            for (int c = 0; c < C; c++)
                o[c] *= inv;
        }
    }
}

void pool_forward(float *out, const float *inp, const int *len, int B, int T, int C, pool_kind kind)
{
    pool_args a = {.out = out, .inp = inp, .len = len, .T = T, .C = C, .kind = kind};
    kpar_for(B, (double)B * T * C, PAR_MIN, pool_rows, &a);
}

void pool_forward_ref(float *out, const float *inp, const int *len, int B, int T, int C, pool_kind kind)
{
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            double acc = kind == POOL_MAX ? -INFINITY : 0;
            int n = kind == POOL_CLS ? 1 : len[b];
            for (int t = 0; t < n; t++) {
                double v = inp[((size_t)b * T + t) * C + c];
                acc = kind == POOL_MAX ? (v > acc ? v : acc) : acc + v;
            }
            out[(size_t)b * C + c] = (float)(kind == POOL_MEAN ? acc / n : acc);
        }
}

static void l2_rows(void *arg, long n0, long n1)
{
    const pool_args *a = arg;
    const float *inp = a->inp;
    float *out = a->out;
    int C = a->C;
    for (long n = n0; n < n1; n++) {
        const float *x = inp + (size_t)n * C;
        float *o = out + (size_t)n * C;
        float s = 0;
        for (int c = 0; c < C; c++)
            s += x[c] * x[c];
        float norm = sqrtf(s);
        float inv = 1.0f / (norm > 1e-12f ? norm : 1e-12f);
        for (int c = 0; c < C; c++)
            o[c] = x[c] * inv;
    }
}

void l2_normalize_forward(float *out, const float *inp, int N, int C)
{
    pool_args a = {.out = out, .inp = inp, .C = C};
    kpar_for(N, (double)N * C, PAR_MIN, l2_rows, &a);
}

void l2_normalize_forward_ref(float *out, const float *inp, int N, int C)
{
    for (int n = 0; n < N; n++) {
        double s = 0;
        for (int c = 0; c < C; c++)
            s += (double)inp[(size_t)n * C + c] * inp[(size_t)n * C + c];
        double norm = sqrt(s);
        if (norm < 1e-12)
            norm = 1e-12;
        for (int c = 0; c < C; c++)
            out[(size_t)n * C + c] = (float)(inp[(size_t)n * C + c] / norm);
    }
}

static void add_rows(void *arg, long n0, long n1)
{
    const pool_args *a = arg;
    for (long n = n0; n < n1; n++) {
        float *o = a->out + (size_t)n * a->C;
        for (int c = 0; c < a->C; c++)
            o[c] += a->row[c];
    }
}

void add_row_forward(float *out, const float *row, int N, int C)
{
    pool_args a = {.out = out, .row = row, .C = C};
    kpar_for(N, (double)N * C, PAR_MIN, add_rows, &a);
}

void add_row_forward_ref(float *out, const float *row, int N, int C)
{
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            out[(size_t)n * C + c] += row[c];
}

/* a ranks before b: larger score, then lower index */
static int before(float va, int ia, float vb, int ib) { return va > vb || (va == vb && ia < ib); }

typedef struct {
    int *idx;
    float *val;
    const float *scores;
    int N, k;
} topk_args;

static void topk_rows(void *arg, long q0, long q1)
{
    const topk_args *a = arg;
    int N = a->N, k = a->k;
    const float *scores = a->scores;
    int *idx = a->idx;
    float *val = a->val;
    for (long q = q0; q < q1; q++) {
        const float *s = scores + (size_t)q * N;
        int *ix = idx + (size_t)q * k;
        float *vx = val + (size_t)q * k;
        int m = 0; /* a sorted list of the best m so far (insertion; k is small) */
        for (int j = 0; j < N; j++) {
            float v = s[j];
            if (m == k && !before(v, j, vx[m - 1], ix[m - 1]))
                continue;
            int p = m < k ? m++ : k - 1;
            while (p > 0 && before(v, j, vx[p - 1], ix[p - 1])) {
                vx[p] = vx[p - 1];
                ix[p] = ix[p - 1];
                p--;
            }
            vx[p] = v;
            ix[p] = j;
        }
    }
}

void topk_forward(int *idx, float *val, const float *scores, int Q, int N, int k)
{
    topk_args a = {.idx = idx, .val = val, .scores = scores, .N = N, .k = k > N ? N : k};
    kpar_for(Q, (double)Q * N, PAR_MIN, topk_rows, &a);
}

void topk_forward_ref(int *idx, float *val, const float *scores, int Q, int N, int k)
{
    if (k > N)
        k = N;
    for (int q = 0; q < Q; q++) {
        const float *s = scores + (size_t)q * N;
        for (int r = 0; r < k; r++) { /* the r-th best: the best not yet taken */
            int best = -1;
            for (int j = 0; j < N; j++) {
                int taken = 0;
                for (int t = 0; t < r; t++)
                    taken |= idx[(size_t)q * k + t] == j;
                if (!taken && (best < 0 || before(s[j], j, s[best], best)))
                    best = j;
            }
            idx[(size_t)q * k + r] = best;
            val[(size_t)q * k + r] = s[best];
        }
    }
}
