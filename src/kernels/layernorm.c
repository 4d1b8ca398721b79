/* Layer norm over the last dimension. Two passes (mean, then the variance
 * of the centred values) rather than E[x^2] - E[x]^2, which cancels badly
 * when |mean| >> std; float sums in SIMD lanes. */
#include <math.h>

#include "kernels/kernels.h"
#include "kernels/parallel.h"

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                       const float *bias, int N, int C, float eps)
{
#pragma omp parallel for schedule(static) if ((long)N * C > PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *o = out + (size_t)n * C;
        /* Summing x - x[0] keeps the terms near the spread, not the mean:
         * float sums of 512 values near 100 would lose ~1e-5 of the std. */
        float s = 0, x0 = x[0];
#pragma omp simd reduction(+ : s)
        for (int c = 0; c < C; c++)
            s += x[c] - x0;
        float m = x0 + s / C;
        float v = 0;
#pragma omp simd reduction(+ : v)
        for (int c = 0; c < C; c++)
            v += (x[c] - m) * (x[c] - m);
        float r = 1.0f / sqrtf(v / C + eps);
#pragma omp simd
        for (int c = 0; c < C; c++)
            o[c] = (x[c] - m) * r * weight[c] + bias[c];
        mean[n] = m;
        rstd[n] = r;
    }
}

/* Rows per task in the one-pass backward, and the widest row it handles
 * (its partial sums of dweight and dbias live on the stack: 2 * 16 KB). */
#define LN_ROWS 32
#define LN_MAX_C 4096

/* dx = rstd (g w - mean(g w) - xhat mean(g w xhat)), xhat = (x - mean) rstd;
 * dweight += sum_rows g xhat; dbias += sum_rows g. */
static void backward_rows(float *dx, float *dw, float *db, const float *g, const float *x, const float *weight,
                          float m, float r, int C)
{
    float sd = 0, sdx = 0;
#pragma omp simd reduction(+ : sd, sdx)
    for (int c = 0; c < C; c++) {
        float gw = g[c] * weight[c];
        sd += gw;
        sdx += gw * (x[c] - m) * r;
    }
    sd /= C;
    sdx /= C;
#pragma omp simd
    for (int c = 0; c < C; c++) {
        float xhat = (x[c] - m) * r;
        dx[c] += r * (g[c] * weight[c] - sd - xhat * sdx);
        dw[c] += g[c] * xhat;
        db[c] += g[c];
    }
}

void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                        const float *weight, const float *mean, const float *rstd, int N, int C)
{
    if (C <= LN_MAX_C) {
        /* One pass over the rows, in chunks of LN_ROWS; each chunk's sums of
         * dweight and dbias are added in chunk order (ordered), so the bits
         * do not depend on the thread count. */
        int chunks = (N + LN_ROWS - 1) / LN_ROWS;
#pragma omp parallel for ordered schedule(static, 1) if ((long)N * C > PAR_MIN)
        for (int ch = 0; ch < chunks; ch++) {
            float dw[LN_MAX_C], db[LN_MAX_C];
            for (int c = 0; c < C; c++)
                dw[c] = db[c] = 0;
            int n1 = (ch + 1) * LN_ROWS < N ? (ch + 1) * LN_ROWS : N;
            for (int n = ch * LN_ROWS; n < n1; n++)
                backward_rows(dinp + (size_t)n * C, dw, db, dout + (size_t)n * C, inp + (size_t)n * C, weight,
                              mean[n], rstd[n], C);
#pragma omp ordered
            for (int c = 0; c < C; c++) {
                dweight[c] += dw[c];
                dbias[c] += db[c];
            }
        }
        return;
    }
    /* Wide rows: dinp row by row, then dweight and dbias by column blocks
     * (threads own whole columns). */
#pragma omp parallel for schedule(static) if ((long)N * C > PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *g = dout + (size_t)n * C;
        float *dx = dinp + (size_t)n * C;
        float m = mean[n], r = rstd[n], sd = 0, sdx = 0;
#pragma omp simd reduction(+ : sd, sdx)
        for (int c = 0; c < C; c++) {
            float gw = g[c] * weight[c];
            sd += gw;
            sdx += gw * (x[c] - m) * r;
        }
        sd /= C;
        sdx /= C;
#pragma omp simd
        for (int c = 0; c < C; c++)
            dx[c] += r * (g[c] * weight[c] - sd - (x[c] - m) * r * sdx);
    }
#pragma omp parallel for schedule(static) if ((long)N * C > PAR_MIN)
    for (int c0 = 0; c0 < C; c0 += COL_BLOCK) {
        int w = C - c0 < COL_BLOCK ? C - c0 : COL_BLOCK;
        float dw[COL_BLOCK] = {0}, db[COL_BLOCK] = {0};
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C + c0, *g = dout + (size_t)n * C + c0;
            float m = mean[n], r = rstd[n];
#pragma omp simd
            for (int c = 0; c < w; c++) {
                dw[c] += g[c] * (x[c] - m) * r;
                db[c] += g[c];
            }
        }
        for (int c = 0; c < w; c++) {
            dweight[c0 + c] += dw[c];
            dbias[c0 + c] += db[c];
        }
    }
}
