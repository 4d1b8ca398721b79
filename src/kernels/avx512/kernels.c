/* The AVX-512 (F/BW/VL/DQ) path: the shared loops (impl/rows.inc)
 * compiled for 512-bit vectors, and linear_packed in intrinsics.
 *
 * A 16-float panel is one zmm register. linear_packed: 8 rows x 2 panels
 * (16 accumulators of the 32 registers) for 8 rows or more; below, each row
 * against 8 panels (8 independent FMA chains). Every output is one FMA
 * chain over c, so the result equals linear_packed_forward_ref to the bit,
 * as on the AVX2 path. */
#pragma GCC optimize("no-trapping-math")

#define KFN(name) name##_avx512
#define KERN_ISA ISA_AVX512

#include <immintrin.h>
#include <stddef.h>

#include "kernels/isa.h"
#include "kernels/linear_packed.h"
#include "kernels/impl/lp_store.inc"

#define LP_MR 8  /* rows of the many-row block */
#define LP_MP 2  /* panels of the many-row block */
#define LP_NP 8  /* panels of the few-row block */

/* 8 rows (row stride C) x 2 panels. tmp: [8][32] */
static void kernel_8x32(float *tmp, const float *a, const float *w, size_t ps, int C)
{
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    __m512 c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
    const float *a0 = a, *a1 = a + C, *a2 = a + 2 * (size_t)C, *a3 = a + 3 * (size_t)C, *a4 = a + 4 * (size_t)C,
                *a5 = a + 5 * (size_t)C, *a6 = a + 6 * (size_t)C, *a7 = a + 7 * (size_t)C;
    const float *w0 = w, *w1 = w + ps;
    for (int c = 0; c < C; c++) {
        __m512 b0 = _mm512_loadu_ps(w0 + (size_t)c * LINEAR_PANEL), b1 = _mm512_loadu_ps(w1 + (size_t)c * LINEAR_PANEL);
        __m512 x;
#define ROW(i)                                 \
    x = _mm512_set1_ps(a##i[c]);               \
    c##i##0 = _mm512_fmadd_ps(x, b0, c##i##0); \
    c##i##1 = _mm512_fmadd_ps(x, b1, c##i##1);
        ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5) ROW(6) ROW(7)
#undef ROW
    }
#define OUT(i) _mm512_storeu_ps(tmp + 32 * i, c##i##0), _mm512_storeu_ps(tmp + 32 * i + 16, c##i##1);
    OUT(0) OUT(1) OUT(2) OUT(3) OUT(4) OUT(5) OUT(6) OUT(7)
#undef OUT
}

/* 8 rows x 1 panel (the last panel of an odd count). tmp: [8][32] (first 16 used) */
static void kernel_8x16(float *tmp, const float *a, const float *w, int C)
{
    __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
    for (int c = 0; c < C; c++) {
        __m512 b = _mm512_loadu_ps(w + (size_t)c * LINEAR_PANEL);
        c0 = _mm512_fmadd_ps(_mm512_set1_ps(a[c]), b, c0);
        c1 = _mm512_fmadd_ps(_mm512_set1_ps(a[C + c]), b, c1);
        c2 = _mm512_fmadd_ps(_mm512_set1_ps(a[2 * (size_t)C + c]), b, c2);
        c3 = _mm512_fmadd_ps(_mm512_set1_ps(a[3 * (size_t)C + c]), b, c3);
        c4 = _mm512_fmadd_ps(_mm512_set1_ps(a[4 * (size_t)C + c]), b, c4);
        c5 = _mm512_fmadd_ps(_mm512_set1_ps(a[5 * (size_t)C + c]), b, c5);
        c6 = _mm512_fmadd_ps(_mm512_set1_ps(a[6 * (size_t)C + c]), b, c6);
        c7 = _mm512_fmadd_ps(_mm512_set1_ps(a[7 * (size_t)C + c]), b, c7);
    }
    _mm512_storeu_ps(tmp, c0), _mm512_storeu_ps(tmp + 32, c1), _mm512_storeu_ps(tmp + 64, c2);
    _mm512_storeu_ps(tmp + 96, c3), _mm512_storeu_ps(tmp + 128, c4), _mm512_storeu_ps(tmp + 160, c5);
    _mm512_storeu_ps(tmp + 192, c6), _mm512_storeu_ps(tmp + 224, c7);
}

/* 1 row x 8 panels. tmp: [128] */
static void kernel_1x128(float *tmp, const float *a, const float *w, size_t ps, int C)
{
    __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
    const float *w0 = w, *w1 = w + ps, *w2 = w + 2 * ps, *w3 = w + 3 * ps;
    const float *w4 = w + 4 * ps, *w5 = w + 5 * ps, *w6 = w + 6 * ps, *w7 = w + 7 * ps;
    for (int c = 0; c < C; c++) {
        __m512 x = _mm512_set1_ps(a[c]);
        size_t k = (size_t)c * LINEAR_PANEL;
        c0 = _mm512_fmadd_ps(x, _mm512_loadu_ps(w0 + k), c0);
        c1 = _mm512_fmadd_ps(x, _mm512_loadu_ps(w1 + k), c1);
        c2 = _mm512_fmadd_ps(x, _mm512_loadu_ps(w2 + k), c2);
        c3 = _mm512_fmadd_ps(x, _mm512_loadu_ps(w3 + k), c3);
        c4 = _mm512_fmadd_ps(x, _mm512_loadu_ps(w4 + k), c4);
        c5 = _mm512_fmadd_ps(x, _mm512_loadu_ps(w5 + k), c5);
        c6 = _mm512_fmadd_ps(x, _mm512_loadu_ps(w6 + k), c6);
        c7 = _mm512_fmadd_ps(x, _mm512_loadu_ps(w7 + k), c7);
    }
    _mm512_storeu_ps(tmp, c0), _mm512_storeu_ps(tmp + 16, c1), _mm512_storeu_ps(tmp + 32, c2);
    _mm512_storeu_ps(tmp + 48, c3), _mm512_storeu_ps(tmp + 64, c4), _mm512_storeu_ps(tmp + 80, c5);
    _mm512_storeu_ps(tmp + 96, c6), _mm512_storeu_ps(tmp + 112, c7);
}

/* 1 row x 2 panels and 1 row x 1 panel, for the panels left after the
 * groups of 8. */
static void kernel_1x32(float *tmp, const float *a, const float *w, size_t ps, int C)
{
    __m512 c0 = _mm512_setzero_ps(), c1 = c0;
    for (int c = 0; c < C; c++) {
        __m512 x = _mm512_set1_ps(a[c]);
        c0 = _mm512_fmadd_ps(x, _mm512_loadu_ps(w + (size_t)c * LINEAR_PANEL), c0);
        c1 = _mm512_fmadd_ps(x, _mm512_loadu_ps(w + ps + (size_t)c * LINEAR_PANEL), c1);
    }
    _mm512_storeu_ps(tmp, c0), _mm512_storeu_ps(tmp + 16, c1);
}

static void kernel_1x16(float *tmp, const float *a, const float *w, int C)
{
    __m512 c0 = _mm512_setzero_ps();
    for (int c = 0; c < C; c++)
        c0 = _mm512_fmadd_ps(_mm512_set1_ps(a[c]), _mm512_loadu_ps(w + (size_t)c * LINEAR_PANEL), c0);
    _mm512_storeu_ps(tmp, c0);
}

static int lp_groups_avx512(int N, int OC)
{
    int P = (OC + LINEAR_PANEL - 1) / LINEAR_PANEL, np = N < LP_MR ? LP_NP : LP_MP;
    return (P + np - 1) / np;
}

static void lp_forward_avx512(void *arg, long g0, long g1)
{
    const lp_args *a = arg;
    int N = a->N, C = a->C, OC = a->OC, P = (OC + LINEAR_PANEL - 1) / LINEAR_PANEL;
    int few = N < LP_MR, np = few ? LP_NP : LP_MP;
    size_t ps = (size_t)C * LINEAR_PANEL;
    float tmp[LP_MR * LP_MP * LINEAR_PANEL];
    for (long g = g0; g < g1; g++) {
        int p0 = (int)g * np, n_p = P - p0 < np ? P - p0 : np, o0 = p0 * LINEAR_PANEL;
        const float *w = a->wp + (size_t)p0 * ps;
        if (few) {
            for (int m = 0; m < N; m++) {
                const float *x = a->inp + (size_t)m * C;
                if (n_p == LP_NP)
                    kernel_1x128(tmp, x, w, ps, C);
                else {
                    int q = 0;
                    for (; q + 2 <= n_p; q += 2)
                        kernel_1x32(tmp + q * LINEAR_PANEL, x, w + q * ps, ps, C);
                    if (q < n_p)
                        kernel_1x16(tmp + q * LINEAR_PANEL, x, w + q * ps, C);
                }
                lp_store(a->out + (size_t)m * OC, tmp, 0, a->bias, 1, n_p * LINEAR_PANEL, o0, OC);
            }
        } else {
            /* the last block of rows overlaps the one before (its outputs
             * are recomputed to the same bits) instead of a short block */
            for (int m0 = 0; m0 < N; m0 += LP_MR) {
                int m = N - m0 < LP_MR ? N - LP_MR : m0;
                const float *x = a->inp + (size_t)m * C;
                if (n_p == LP_MP)
                    kernel_8x32(tmp, x, w, ps, C);
                else
                    kernel_8x16(tmp, x, w, C);
                lp_store(a->out + (size_t)m * OC, tmp, LP_MP * LINEAR_PANEL, a->bias, LP_MR, n_p * LINEAR_PANEL, o0,
                         OC);
            }
        }
    }
}

#define LP_FORWARD lp_forward_avx512
#define LP_GROUPS lp_groups_avx512
#include "kernels/impl/rows.inc"
