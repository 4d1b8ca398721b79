/* The AVX2 path of the int8 and bf16 linear layers (quant.h).
 *
 * A 64-byte step of a packed panel is two ymm (outputs 0-7 and 8-15).
 * Blocks of 4 rows x 1 panel, or 1 row x 4 panels below 4 rows: 8
 * accumulators either way.
 *   - int8: vpmaddubsw(xq, wq) then vpmaddwd by 1 (xq in [0, 127], so the
 *     16-bit pair sums stay below 2^15: no saturation);
 *   - bf16: the pairs are widened to fp32 (a shift and a mask) and go
 *     through two FMAs. */
#pragma GCC optimize("no-trapping-math")

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels/isa.h"
#include "kernels/quant.h"
#include "kernels/impl/lq_store.inc"
#include "kernels/impl/quant_rows.inc"

#define MANY_R 4
#define MANY_P 1
#define FEW_P 4

#define AI __attribute__((always_inline)) static inline

static inline int32_t ld32(const void *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

#define BLOCK_BODY(STEP)                                                                       \
    __m256i acc[4][8];                                                                         \
    for (int r = 0; r < R; r++)                                                                \
        for (int p = 0; p < 2 * P; p++)                                                        \
            acc[r][p] = _mm256_setzero_si256();                                                \
    for (int k = 0; k < K4; k++) {                                                             \
        __m256i b[8];                                                                          \
        for (int p = 0; p < P; p++) {                                                          \
            b[2 * p] = _mm256_loadu_si256((const void *)(w + (size_t)p * ps + (size_t)k * 64)); \
            b[2 * p + 1] = _mm256_loadu_si256((const void *)(w + (size_t)p * ps + (size_t)k * 64 + 32)); \
        }                                                                                      \
        for (int r = 0; r < R; r++) {                                                          \
            __m256i a = _mm256_set1_epi32(ld32(x + (size_t)r * ldx + 4 * (size_t)k));         \
            for (int p = 0; p < 2 * P; p++)                                                    \
                STEP(acc[r][p], a, b[p]);                                                      \
        }                                                                                      \
    }                                                                                          \
    for (int r = 0; r < R; r++)                                                                \
        for (int p = 0; p < 2 * P; p++)                                                        \
            _mm256_storeu_si256((void *)(tmp + (size_t)r * 128 + p * 8), acc[r][p]);

#define STEP_I8(c, a, b) \
    c = _mm256_add_epi32(c, _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), ones))
#define STEP_WIDEN(c, a, b)                                                                         \
    c = _mm256_castps_si256(_mm256_fmadd_ps(                                                        \
        _mm256_castsi256_ps(_mm256_and_si256(a, hi)), _mm256_castsi256_ps(_mm256_and_si256(b, hi)), \
        _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(a, 16)),                              \
                        _mm256_castsi256_ps(_mm256_slli_epi32(b, 16)), _mm256_castsi256_ps(c))))

AI void blk_i8(int32_t *tmp, const uint8_t *x, size_t ldx, const uint8_t *w, size_t ps, int K4, int R, int P)
{
    const __m256i ones = _mm256_set1_epi16(1);
    BLOCK_BODY(STEP_I8)
}

AI void blk_widen(float *tmp, const uint8_t *x, size_t ldx, const uint8_t *w, size_t ps, int K4, int R, int P)
{
    const __m256i hi = _mm256_set1_epi32((int)0xffff0000u);
    BLOCK_BODY(STEP_WIDEN)
}

#define RANGE_FN(name, BLK, T, ARGS, XBYTES, WBYTES, KSTEP, STORE_ROW)                            \
    static void name(void *arg, long g0, long g1)                                                 \
    {                                                                                             \
        const ARGS *a = arg;                                                                      \
        int N = a->N, OC = a->OC, P = (OC + LQ_PANEL - 1) / LQ_PANEL, K4 = a->KSTEP;             \
        int few = N < MANY_R, np = few ? FEW_P : MANY_P;                                          \
        size_t ldx = (size_t)K4 * 4, ps = (size_t)K4 * 64;                                        \
        const uint8_t *xb = (const uint8_t *)a->XBYTES, *wb = (const uint8_t *)a->WBYTES;         \
        T tmp[MANY_R * 128];                                                                      \
        for (long g = g0; g < g1; g++) {                                                          \
            int p0 = (int)g * np, n_p = P - p0 < np ? P - p0 : np, o0 = p0 * LQ_PANEL;            \
            int width = OC - o0 < n_p * LQ_PANEL ? OC - o0 : n_p * LQ_PANEL;                      \
            const uint8_t *w = wb + (size_t)p0 * ps;                                              \
            if (few) {                                                                            \
                for (int m = 0; m < N; m++) {                                                     \
                    const uint8_t *x = xb + (size_t)m * ldx;                                      \
                    if (n_p == FEW_P)                                                             \
                        BLK(tmp, x, ldx, w, ps, K4, 1, FEW_P);                                    \
                    else                                                                          \
                        for (int q = 0; q < n_p; q++)                                             \
                            BLK(tmp + q * 16, x, ldx, w + q * ps, ps, K4, 1, 1);                  \
                    STORE_ROW(m, 0);                                                              \
                }                                                                                 \
            } else {                                                                              \
                for (int m = 0; m < N; m += MANY_R) {                                             \
                    int R = N - m < MANY_R ? N - m : MANY_R; /* a row's sums do not depend on R */ \
                    if (R == MANY_R)                                                              \
                        BLK(tmp, xb + (size_t)m * ldx, ldx, w, ps, K4, MANY_R, 1);                \
                    else                                                                          \
                        BLK(tmp, xb + (size_t)m * ldx, ldx, w, ps, K4, R, 1);                     \
                    for (int r = 0; r < R; r++)                                                   \
                        STORE_ROW(m + r, r);                                                      \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
    }

#define I8_ROW(n, r) \
    lq_store(a->out + (size_t)(n) * OC + o0, tmp + (r) * 128, a->xs[n], a->xz[n], a->ws + o0, a->wsum + o0, \
             a->bias ? a->bias + o0 : NULL, width)
#define BF_ROW(n, r) \
    lb_store(a->out + (size_t)(n) * a->ldc + o0, tmp + (r) * 128, a->bias ? a->bias + o0 : NULL, width, a->alpha, a->accum)
#define Cp4 Cp / 4
#define Cp2h Cp2 / 2

RANGE_FN(li8_avx2, blk_i8, int32_t, lq_args, xq, wq, Cp4, I8_ROW)
RANGE_FN(lb_avx2, blk_widen, float, lb_args, xb, wb, Cp2h, BF_ROW)

static int groups_avx2(int N, int OC)
{
    int P = (OC + LQ_PANEL - 1) / LQ_PANEL, np = N < MANY_R ? FEW_P : MANY_P;
    return (P + np - 1) / np;
}

static void store_sums(void *arg, long r0, long r1)
{
    const sums_args *a = arg;
    for (long n = r0; n < r1; n++)
        lq_store(a->out + (size_t)n * a->OC, a->acc + (size_t)n * a->OC, a->xs[n], a->xz[n], a->ws, a->wsum, a->bias,
                 a->OC);
}

static const char *i8_name(void) { return "avx2 vpmaddubsw"; }
static const char *bf16_name(void) { return "avx2 (bf16 widened to fp32 in registers)"; }

const kernq_table kernq_avx2 = {
    .isa = ISA_AVX2,
    .quant_rows = quant_rows,
    .bf16_rows = bf16_rows,
    .store_sums = store_sums,
    .linear_i8 = li8_avx2,
    .linear_i8_groups = groups_avx2,
    .linear_bf16 = lb_avx2,
    .linear_bf16_groups = groups_avx2,
    .i8_name = i8_name,
    .bf16_name = bf16_name,
};
