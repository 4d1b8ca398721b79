/* Linear layer from a prepacked weight, for few rows (see linear_packed.h).
 *
 * The block kernel keeps an MR x (NP * 16) block of outputs in registers
 * and walks c once: per c it loads NP panels' 16 floats and broadcasts MR
 * inputs. MR x NP is chosen from the number of rows: 6 x 1 (12 vector
 * accumulators, the classic AVX2 shape) for many rows; 2 x 2 or 1 x 4 for
 * one or two rows, so that a 1-row product still runs 8 independent FMA
 * chains while it streams the weight. */
#include <math.h>

#include "kernels/linear_packed.h"
#include "kernels/parallel.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define LP_AVX 1
#endif

#define LP_MR 6 /* most rows in a block */
#define LP_NP 4 /* most panels in a block */

size_t linear_packed_floats(int C, int OC)
{
    return (size_t)((OC + LINEAR_PANEL - 1) / LINEAR_PANEL) * (size_t)C * LINEAR_PANEL;
}

void linear_pack(float *wp, const float *weight, int C, int OC)
{
    int P = (OC + LINEAR_PANEL - 1) / LINEAR_PANEL;
#pragma omp parallel for schedule(static) if ((long)OC * C > PAR_MIN)
    for (int p = 0; p < P; p++)
        for (int c = 0; c < C; c++)
            for (int j = 0; j < LINEAR_PANEL; j++) {
                int o = p * LINEAR_PANEL + j;
                wp[((size_t)p * C + c) * LINEAR_PANEL + j] = o < OC ? weight[(size_t)o * C + c] : 0.0f;
            }
}

/* Writes the block's sums (acc: mr rows of np * 16, row stride LP_NP * 16)
 * to out rows, columns o0 .. o0 + np * 16 that exist, adding the bias. */
static void store_block(float *out, const float *acc, const float *bias, int mr, int np, int o0, int OC)
{
    int w = OC - o0 < np * LINEAR_PANEL ? OC - o0 : np * LINEAR_PANEL;
    for (int i = 0; i < mr; i++) {
        const float *a = acc + i * LP_NP * LINEAR_PANEL;
        float *o = out + (size_t)i * OC + o0;
        if (bias)
            for (int j = 0; j < w; j++)
                o[j] = a[j] + bias[o0 + j];
        else
            for (int j = 0; j < w; j++)
                o[j] = a[j];
    }
}

#ifdef LP_AVX
/* 6 rows (a, row stride C) x 1 panel: 12 accumulators in named registers
 * (an indexed array of them ends up in memory). */
static void kernel_6x16(float *tmp, const float *a, const float *w, int C)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    const float *a0 = a, *a1 = a + C, *a2 = a + 2 * (size_t)C, *a3 = a + 3 * (size_t)C, *a4 = a + 4 * (size_t)C,
                *a5 = a + 5 * (size_t)C;
    for (int c = 0; c < C; c++) {
        __m256 b0 = _mm256_loadu_ps(w + (size_t)c * LINEAR_PANEL), b1 = _mm256_loadu_ps(w + (size_t)c * LINEAR_PANEL + 8);
        __m256 x;
#define ROW(i)                                   \
    x = _mm256_broadcast_ss(a##i + c);           \
    c##i##0 = _mm256_fmadd_ps(x, b0, c##i##0);   \
    c##i##1 = _mm256_fmadd_ps(x, b1, c##i##1);
        ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5)
#undef ROW
    }
    const int s = LP_NP * LINEAR_PANEL;
    _mm256_storeu_ps(tmp, c00), _mm256_storeu_ps(tmp + 8, c01);
    _mm256_storeu_ps(tmp + s, c10), _mm256_storeu_ps(tmp + s + 8, c11);
    _mm256_storeu_ps(tmp + 2 * s, c20), _mm256_storeu_ps(tmp + 2 * s + 8, c21);
    _mm256_storeu_ps(tmp + 3 * s, c30), _mm256_storeu_ps(tmp + 3 * s + 8, c31);
    _mm256_storeu_ps(tmp + 4 * s, c40), _mm256_storeu_ps(tmp + 4 * s + 8, c41);
    _mm256_storeu_ps(tmp + 5 * s, c50), _mm256_storeu_ps(tmp + 5 * s + 8, c51);
}

/* 1 row x 4 panels (ps: panel stride): 8 independent chains while the
 * weight streams by. */
static void kernel_1x64(float *tmp, const float *a, const float *w, size_t ps, int C)
{
    __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
    const float *w0 = w, *w1 = w + ps, *w2 = w + 2 * ps, *w3 = w + 3 * ps;
    for (int c = 0; c < C; c++) {
        __m256 x = _mm256_broadcast_ss(a + c);
        size_t k = (size_t)c * LINEAR_PANEL;
        c0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(w0 + k), c0);
        c1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(w0 + k + 8), c1);
        c2 = _mm256_fmadd_ps(x, _mm256_loadu_ps(w1 + k), c2);
        c3 = _mm256_fmadd_ps(x, _mm256_loadu_ps(w1 + k + 8), c3);
        c4 = _mm256_fmadd_ps(x, _mm256_loadu_ps(w2 + k), c4);
        c5 = _mm256_fmadd_ps(x, _mm256_loadu_ps(w2 + k + 8), c5);
        c6 = _mm256_fmadd_ps(x, _mm256_loadu_ps(w3 + k), c6);
        c7 = _mm256_fmadd_ps(x, _mm256_loadu_ps(w3 + k + 8), c7);
    }
    _mm256_storeu_ps(tmp, c0), _mm256_storeu_ps(tmp + 8, c1), _mm256_storeu_ps(tmp + 16, c2);
    _mm256_storeu_ps(tmp + 24, c3), _mm256_storeu_ps(tmp + 32, c4), _mm256_storeu_ps(tmp + 40, c5);
    _mm256_storeu_ps(tmp + 48, c6), _mm256_storeu_ps(tmp + 56, c7);
}


/* 1 row x 1 panel, for the panels left after the groups of 4. */
static void kernel_1x16(float *tmp, const float *a, const float *w, int C)
{
    __m256 c0 = _mm256_setzero_ps(), c1 = c0;
    for (int c = 0; c < C; c++) {
        __m256 x = _mm256_broadcast_ss(a + c);
        c0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(w + (size_t)c * LINEAR_PANEL), c0);
        c1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(w + (size_t)c * LINEAR_PANEL + 8), c1);
    }
    _mm256_storeu_ps(tmp, c0), _mm256_storeu_ps(tmp + 8, c1);
}
#endif

/* One block: mr == LP_MR rows x 1 panel, or 1 row x np <= LP_NP panels. */
static void block(float *out, const float *a, const float *w, const float *bias, int mr, int np, int C, int o0,
                  int OC)
{
    float tmp[LP_MR * LP_NP * LINEAR_PANEL];
    size_t ps = (size_t)C * LINEAR_PANEL;
#ifdef LP_AVX
    if (mr == LP_MR && np == 1) {
        kernel_6x16(tmp, a, w, C);
        store_block(out, tmp, bias, mr, np, o0, OC);
        return;
    }
    if (mr == 1) {
        if (np == LP_NP)
            kernel_1x64(tmp, a, w, ps, C);
        else
            for (int q = 0; q < np; q++)
                kernel_1x16(tmp + q * LINEAR_PANEL, a, w + q * ps, C);
        store_block(out, tmp, bias, mr, np, o0, OC);
        return;
    }
#endif
    /* scalar: the same fused chain per output */
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < np * LINEAR_PANEL; j++) {
            const float *wj = w + (j / LINEAR_PANEL) * ps + j % LINEAR_PANEL;
            float s = 0;
            for (int c = 0; c < C; c++)
                s = fmaf(a[(size_t)i * C + c], wj[(size_t)c * LINEAR_PANEL], s);
            tmp[i * LP_NP * LINEAR_PANEL + j] = s;
        }
    store_block(out, tmp, bias, mr, np, o0, OC);
}

/* Multiply-adds below which the product stays on the calling thread:
 * waking the team costs microseconds, a 256 x 256 product for one row
 * about as much. */
#define LP_PAR_MIN 300000L

void linear_packed_forward(float *out, const float *inp, const float *wp, const float *bias, int N, int C, int OC)
{
    if (N <= 0 || OC <= 0)
        return;
    int P = (OC + LINEAR_PANEL - 1) / LINEAR_PANEL;
    /* fewer than 6 rows: each row against 4 panels at a time (the group
     * stays in L2 for the next row); else 6 rows x 1 panel, the last block
     * of rows overlapping the one before (its outputs are recomputed to
     * the same bits) instead of a short block */
    int few = N < LP_MR, np = few ? LP_NP : 1, groups = (P + np - 1) / np;
    size_t ps = (size_t)C * LINEAR_PANEL;
#pragma omp parallel for schedule(static) if ((long)N * C * OC >= LP_PAR_MIN)
    for (int g = 0; g < groups; g++) {
        int p0 = g * np, n_p = P - p0 < np ? P - p0 : np;
        const float *w = wp + p0 * ps;
        int o0 = p0 * LINEAR_PANEL;
        if (few)
            for (int m = 0; m < N; m++)
                block(out + (size_t)m * OC, inp + (size_t)m * C, w, bias, 1, n_p, C, o0, OC);
        else
            for (int m0 = 0; m0 < N; m0 += LP_MR) {
                int m = N - m0 < LP_MR ? N - LP_MR : m0;
                block(out + (size_t)m * OC, inp + (size_t)m * C, w, bias, LP_MR, 1, C, o0, OC);
            }
    }
}

void linear_packed_forward_ref(float *out, const float *inp, const float *weight, const float *bias, int N, int C,
                               int OC)
{
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            float s = 0;
            for (int c = 0; c < C; c++)
                s = fmaf(inp[(size_t)n * C + c], weight[(size_t)o * C + c], s);
            out[(size_t)n * OC + o] = bias ? s + bias[o] : s;
        }
}
