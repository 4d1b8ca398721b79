/* Linear layer, token embedding with scale and positions, and the
 * sinusoidal position table. */
#include <assert.h>
#include <math.h>

#include "kernels/kernels.h"
#include "kernels/parallel.h"

/* dst[c] += sum_n src[n, c].   dst: [C]   src: [N, C] */
static void column_sums_add(float *dst, const float *src, int N, int C)
{
#pragma omp parallel for schedule(static) if ((long)N * C > PAR_MIN)
    for (int c0 = 0; c0 < C; c0 += COL_BLOCK) {
        int w = C - c0 < COL_BLOCK ? C - c0 : COL_BLOCK;
        float acc[COL_BLOCK] = {0};
        for (int n = 0; n < N; n++) {
            const float *row = src + (size_t)n * C + c0;
#pragma omp simd
            for (int c = 0; c < w; c++)
                acc[c] += row[c];
        }
        for (int c = 0; c < w; c++)
            dst[c0 + c] += acc[c];
    }
}

void linear_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int C, int OC)
{
    if (bias) {
#pragma omp parallel for schedule(static) if ((long)N * OC > PAR_MIN)
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++)
                out[(size_t)n * OC + o] = bias[o];
    }
    /* out[N, OC] = inp[N, C] weight[OC, C]^T (+ out holding the bias) */
    gemm(0, 1, N, OC, C, 1.0f, inp, C, weight, C, bias ? 1.0f : 0.0f, out, OC);
}

void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, int N, int C, int OC)
{
    /* dinp[N, C] += dout[N, OC] weight[OC, C] */
    if (dinp)
        gemm(0, 0, N, C, OC, 1.0f, dout, OC, weight, C, 1.0f, dinp, C);
    /* dweight[OC, C] += dout^T[OC, N] inp[N, C] */
    gemm(1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dweight, C);
    if (dbias)
        column_sums_add(dbias, dout, N, OC);
}

void embedding_forward(float *out, const int *ids, const float *table, const float *pos, int B, int T, int C,
                       int pos_offset, float scale)
{
#pragma omp parallel for schedule(static) if ((long)B * T * C > PAR_MIN)
    for (int bt = 0; bt < B * T; bt++) {
        const float *e = table + (size_t)ids[bt] * C;
        float *o = out + (size_t)bt * C;
        if (pos) {
            const float *p = pos + (size_t)(bt % T + pos_offset) * C;
#pragma omp simd
            for (int c = 0; c < C; c++)
                o[c] = e[c] * scale + p[c];
        } else {
#pragma omp simd
            for (int c = 0; c < C; c++)
                o[c] = e[c] * scale;
        }
    }
}

void embedding_backward(float *dtable, float *dpos, const float *dout, const int *ids, int B, int T, int C,
                        int pos_offset, float scale)
{
    /* Repeated ids hit the same row, so threads split the columns instead of
     * the tokens: no atomics, and the order of the sums is fixed. */
#pragma omp parallel for schedule(static) if ((long)B * T * C > PAR_MIN)
    for (int c0 = 0; c0 < C; c0 += COL_BLOCK) {
        int w = C - c0 < COL_BLOCK ? C - c0 : COL_BLOCK;
        for (int bt = 0; bt < B * T; bt++) {
            const float *g = dout + (size_t)bt * C + c0;
            float *d = dtable + (size_t)ids[bt] * C + c0;
#pragma omp simd
            for (int c = 0; c < w; c++)
                d[c] += g[c] * scale;
            if (dpos) {
                float *dp = dpos + (size_t)(bt % T + pos_offset) * C + c0;
#pragma omp simd
                for (int c = 0; c < w; c++)
                    dp[c] += g[c];
            }
        }
    }
}

void sinusoidal_positions(float *table, int P, int C)
{
    assert(C % 2 == 0);
    int half = C / 2;
    /* In double and rounded once, as Hugging Face builds it with numpy. */
#pragma omp parallel for schedule(static)
    for (int p = 0; p < P; p++)
        for (int j = 0; j < half; j++) {
            double angle = p / pow(10000.0, 2.0 * j / C);
            table[(size_t)p * C + j] = (float)sin(angle);
            table[(size_t)p * C + half + j] = (float)cos(angle);
        }
}
