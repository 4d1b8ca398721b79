/* Pooling, normalisation, row add and top-k (contracts in pooling.h). Rows
 * are independent, so threads split whole rows: the same bits for any
 * thread count. */
#include "kernels/pooling.h"

#include <math.h>
#include <string.h>

#include "kernels/parallel.h"

void pool_forward(float *out, const float *inp, const int *len, int B, int T, int C, pool_kind kind)
{
#pragma omp parallel for schedule(static) if ((long)B * T * C > PAR_MIN)
    for (int b = 0; b < B; b++) {
        const float *x = inp + (size_t)b * T * C;
        float *o = out + (size_t)b * C;
        int n = len[b];
        memcpy(o, x, (size_t)C * sizeof *o);
        if (kind == POOL_CLS)
            continue;
        for (int t = 1; t < n; t++) {
            const float *r = x + (size_t)t * C;
            if (kind == POOL_MAX) {
#pragma omp simd
                for (int c = 0; c < C; c++)
                    o[c] = r[c] > o[c] ? r[c] : o[c];
            } else {
#pragma omp simd
                for (int c = 0; c < C; c++)
                    o[c] += r[c];
            }
        }
        if (kind == POOL_MEAN) {
            float inv = 1.0f / (float)n;
#pragma omp simd
            for (int c = 0; c < C; c++)
                o[c] *= inv;
        }
    }
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

void l2_normalize_forward(float *out, const float *inp, int N, int C)
{
#pragma omp parallel for schedule(static) if ((long)N * C > PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *o = out + (size_t)n * C;
        float s = 0;
#pragma omp simd reduction(+ : s)
        for (int c = 0; c < C; c++)
            s += x[c] * x[c];
        float norm = sqrtf(s);
        float inv = 1.0f / (norm > 1e-12f ? norm : 1e-12f);
#pragma omp simd
        for (int c = 0; c < C; c++)
            o[c] = x[c] * inv;
    }
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

void add_row_forward(float *out, const float *row, int N, int C)
{
#pragma omp parallel for schedule(static) if ((long)N * C > PAR_MIN)
    for (int n = 0; n < N; n++) {
        float *o = out + (size_t)n * C;
#pragma omp simd
        for (int c = 0; c < C; c++)
            o[c] += row[c];
    }
}

void add_row_forward_ref(float *out, const float *row, int N, int C)
{
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            out[(size_t)n * C + c] += row[c];
}

/* a ranks before b: larger score, then lower index */
static int before(float va, int ia, float vb, int ib) { return va > vb || (va == vb && ia < ib); }

void topk_forward(int *idx, float *val, const float *scores, int Q, int N, int k)
{
    if (k > N)
        k = N;
#pragma omp parallel for schedule(static) if ((long)Q * N > PAR_MIN)
    for (int q = 0; q < Q; q++) {
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
