/* The AVX2 + FMA path: the shared loops (impl/rows.inc) compiled for
 * 256-bit vectors, and linear_packed in intrinsics.
 *
 * linear_packed keeps an MR x (NP * 16) block of outputs in registers and
 * walks c once: per c it loads NP panels' 16 floats and broadcasts MR
 * inputs. 6 x 1 panel (12 accumulators, the classic AVX2 shape) for 6 rows
 * or more; below, each row against 4 panels (8 independent FMA chains while
 * the weight streams by). Every output is one FMA chain over c, so the
 * result equals linear_packed_forward_ref to the bit. */
#pragma GCC optimize("no-trapping-math")

#define KFN(name) name##_avx2
#define KERN_ISA ISA_AVX2

#include <immintrin.h>
#include <stddef.h>

#include "kernels/isa.h"
#include "kernels/linear_packed.h"
#include "kernels/impl/lp_store.inc"

#define LP_MR 6 /* rows of the many-row block */
#define LP_NP 4 /* panels of the few-row block */

/* 6 rows (a, row stride C) x 1 panel: 12 accumulators in named registers
 * (an indexed array of them ends up in memory). tmp: [6][16] */
static void kernel_6x16(float *tmp, const float *a, const float *w, int C)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    const float *a0 = a, *a1 = a + C, *a2 = a + 2 * (size_t)C, *a3 = a + 3 * (size_t)C, *a4 = a + 4 * (size_t)C,
                *a5 = a + 5 * (size_t)C;
    for (int c = 0; c < C; c++) {
        __m256 b0 = _mm256_loadu_ps(w + (size_t)c * LINEAR_PANEL), b1 = _mm256_loadu_ps(w + (size_t)c * LINEAR_PANEL + 8);
        __m256 x;
#define ROW(i)                                 \
    x = _mm256_broadcast_ss(a##i + c);         \
    c##i##0 = _mm256_fmadd_ps(x, b0, c##i##0); \
    c##i##1 = _mm256_fmadd_ps(x, b1, c##i##1);
        ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5)
#undef ROW
    }
    _mm256_storeu_ps(tmp, c00), _mm256_storeu_ps(tmp + 8, c01);
    _mm256_storeu_ps(tmp + 16, c10), _mm256_storeu_ps(tmp + 24, c11);
    _mm256_storeu_ps(tmp + 32, c20), _mm256_storeu_ps(tmp + 40, c21);
    _mm256_storeu_ps(tmp + 48, c30), _mm256_storeu_ps(tmp + 56, c31);
    _mm256_storeu_ps(tmp + 64, c40), _mm256_storeu_ps(tmp + 72, c41);
    _mm256_storeu_ps(tmp + 80, c50), _mm256_storeu_ps(tmp + 88, c51);
}

/* 1 row x 4 panels (ps: panel stride). tmp: [64] */
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

/* 1 row x 1 panel, for the panels left after the groups of 4. tmp: [16] */
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

/* Groups: 4 panels when fewer than 6 rows (the group stays in L2 for the
 * next row), else 1 panel. */
static int lp_groups_avx2(int N, int OC)
{
    int P = (OC + LINEAR_PANEL - 1) / LINEAR_PANEL, np = N < LP_MR ? LP_NP : 1;
    return (P + np - 1) / np;
}

static void lp_forward_avx2(void *arg, long g0, long g1)
{
    const lp_args *a = arg;
    int N = a->N, C = a->C, OC = a->OC, P = (OC + LINEAR_PANEL - 1) / LINEAR_PANEL;
    int few = N < LP_MR, np = few ? LP_NP : 1;
    size_t ps = (size_t)C * LINEAR_PANEL;
    float tmp[LP_MR * LINEAR_PANEL > LP_NP * LINEAR_PANEL ? LP_MR * LINEAR_PANEL : LP_NP * LINEAR_PANEL];
    for (long g = g0; g < g1; g++) {
        int p0 = (int)g * np, n_p = P - p0 < np ? P - p0 : np, o0 = p0 * LINEAR_PANEL;
        const float *w = a->wp + (size_t)p0 * ps;
        if (few) {
            for (int m = 0; m < N; m++) {
                const float *x = a->inp + (size_t)m * C;
                if (n_p == LP_NP)
                    kernel_1x64(tmp, x, w, ps, C);
                else
                    for (int q = 0; q < n_p; q++)
                        kernel_1x16(tmp + q * LINEAR_PANEL, x, w + q * ps, C);
                lp_store(a->out + (size_t)m * OC, tmp, 0, a->bias, 1, n_p * LINEAR_PANEL, o0, OC);
            }
        } else {
            /* the last block of rows overlaps the one before (its outputs
             * are recomputed to the same bits) instead of a short block */
            for (int m0 = 0; m0 < N; m0 += LP_MR) {
                int m = N - m0 < LP_MR ? N - LP_MR : m0;
                kernel_6x16(tmp, a->inp + (size_t)m * C, w, C);
                lp_store(a->out + (size_t)m * OC, tmp, LINEAR_PANEL, a->bias, LP_MR, LINEAR_PANEL, o0, OC);
            }
        }
    }
}

#define LP_FORWARD lp_forward_avx2
#define LP_GROUPS lp_groups_avx2
#include "kernels/impl/rows.inc"
