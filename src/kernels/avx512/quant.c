/* The AVX-512 path of the int8 and bf16 linear layers (quant.h).
 *
 * One 64-byte load of the packed weight is 4 int8 (or 2 bf16) input
 * columns of a panel of 16 outputs: one zmm. A block is R rows x P panels
 * of accumulators (4 x 4 from 4 rows on, else 1 x 8 for the decoder's
 * single rows); each input-column step broadcasts 4 bytes (2 bf16) of a
 * row and multiplies them into every panel.
 *   - int8 with AVX512-VNNI (function-level target, picked when
 *     kern_extras.vnni): vpdpbusd on the u8 activations (7 bits) and the
 *     s8 weights, the zero point's compensation subtracted in the store;
 *   - int8 without it: vpmaddubsw(xq, wq) then vpmaddwd by 1 (xq <= 127:
 *     no saturation);
 *   - bf16 with AVX512-BF16: vdpbf16ps; without it, the pairs are widened
 *     to fp32 (a shift and a mask) and go through two FMAs. */
#pragma GCC optimize("no-trapping-math")

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels/isa.h"
#include "kernels/quant.h"
#include "kernels/impl/quant_rows.inc"

#define MANY_R 8 /* rows of the many-row block */
#define MANY_P 2 /* its panels (= panels of a group) */
#define FEW_P 8  /* panels of a group below MANY_R rows */

#define AI __attribute__((always_inline)) static inline

static inline int32_t ld32(const void *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* lq_store / lb_store (impl/lq_store.inc) in vectors: the same operations
 * in the same order, so the same bits. */
static inline void lq_store_512(float *out, const int32_t *acc, float xs, int32_t xz, const float *ws,
                                const int32_t *wsum, const float *bias, int w)
{
    __m512 s = _mm512_set1_ps(xs);
    __m512i z = _mm512_set1_epi32(xz);
    for (int j = 0; j < w; j += 16) {
        __mmask16 k = w - j >= 16 ? 0xffff : (__mmask16)((1u << (w - j)) - 1);
        __m512i a = _mm512_maskz_loadu_epi32(k, acc + j);
        a = _mm512_sub_epi32(a, _mm512_mullo_epi32(z, _mm512_maskz_loadu_epi32(k, wsum + j)));
        __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(a), _mm512_mul_ps(s, _mm512_maskz_loadu_ps(k, ws + j)));
        if (bias)
            v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, bias + j));
        _mm512_mask_storeu_ps(out + j, k, v);
    }
}

static inline void lb_store_512(float *out, const float *acc, const float *bias, int w, float alpha, int accum)
{
    for (int j = 0; j < w; j += 16) {
        __mmask16 k = w - j >= 16 ? 0xffff : (__mmask16)((1u << (w - j)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(k, acc + j);
        if (alpha != 1.0f)
            v = _mm512_mul_ps(_mm512_set1_ps(alpha), v);
        if (accum)
            v = _mm512_add_ps(_mm512_maskz_loadu_ps(k, out + j), v);
        if (bias)
            v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, bias + j));
        _mm512_mask_storeu_ps(out + j, k, v);
    }
}

/* The R x P block over all K4 steps: tmp[r][p * 16 + j] (int32 or float
 * bits). x: row 0 (stride ldx bytes); w: panel 0 (stride ps bytes). STEP
 * multiplies broadcast a into weight vector b, accumulating into acc. */
#define BLOCK_BODY(STEP, INIT, STORE)                                         \
    __m512i acc[MANY_R][FEW_P];                                                      \
    for (int r = 0; r < R; r++)                                               \
        for (int p = 0; p < P; p++)                                           \
            acc[r][p] = INIT;                                                 \
    for (int k = 0; k < K4; k++) {                                            \
        __m512i b[8];                                                         \
        for (int p = 0; p < P; p++)                                           \
            b[p] = _mm512_loadu_si512(w + (size_t)p * ps + (size_t)k * 64);  \
        for (int r = 0; r < R; r++) {                                         \
            __m512i a = _mm512_set1_epi32(ld32(x + (size_t)r * ldx + 4 * (size_t)k)); \
            for (int p = 0; p < P; p++)                                       \
                STEP(acc[r][p], a, b[p]);                                     \
        }                                                                     \
    }                                                                         \
    for (int r = 0; r < R; r++)                                               \
        for (int p = 0; p < P; p++)                                           \
            STORE((void *)(tmp + (size_t)r * 128 + p * 16), acc[r][p]);

#define STORE_I(dst, v) _mm512_storeu_si512(dst, v)
#define STORE_F(dst, v) _mm512_storeu_ps(dst, _mm512_castsi512_ps(v))

#define STEP_VNNI(c, a, b) c = _mm512_dpbusd_epi32(c, a, b)
#define STEP_BW(c, a, b) c = _mm512_add_epi32(c, _mm512_madd_epi16(_mm512_maddubs_epi16(a, b), ones))
#define STEP_DPBF(c, a, b) \
    c = _mm512_castps_si512(_mm512_dpbf16_ps(_mm512_castsi512_ps(c), (__m512bh)(a), (__m512bh)(b)))
#define STEP_WIDEN(c, a, b)                                                                               \
    c = _mm512_castps_si512(_mm512_fmadd_ps(                                                              \
        _mm512_castsi512_ps(_mm512_and_si512(a, hi)), _mm512_castsi512_ps(_mm512_and_si512(b, hi)),       \
        _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(a, 16)),                                    \
                        _mm512_castsi512_ps(_mm512_slli_epi32(b, 16)), _mm512_castsi512_ps(c))))

__attribute__((target("avx512vnni"))) AI void blk_vnni(int32_t *tmp, const uint8_t *x, size_t ldx, const uint8_t *w,
                                                      size_t ps, int K4, int R, int P)
{
    BLOCK_BODY(STEP_VNNI, _mm512_setzero_si512(), STORE_I)
}

AI void blk_bw(int32_t *tmp, const uint8_t *x, size_t ldx, const uint8_t *w, size_t ps, int K4, int R, int P)
{
    const __m512i ones = _mm512_set1_epi16(1);
    BLOCK_BODY(STEP_BW, _mm512_setzero_si512(), STORE_I)
}

__attribute__((target("avx512bf16"))) AI void blk_dpbf(float *tmp, const uint8_t *x, size_t ldx, const uint8_t *w,
                                                      size_t ps, int K4, int R, int P)
{
    BLOCK_BODY(STEP_DPBF, _mm512_setzero_si512(), STORE_F)
}

AI void blk_widen(float *tmp, const uint8_t *x, size_t ldx, const uint8_t *w, size_t ps, int K4, int R, int P)
{
    const __m512i hi = _mm512_set1_epi32((int)0xffff0000u);
    BLOCK_BODY(STEP_WIDEN, _mm512_setzero_si512(), STORE_I)
}

/* One range function per variant: groups of panels; rows in blocks of
 * MANY_R (the last one shorter: each output is stored once, as
 * gemm_bf16's accumulating stores need) or one at a time below MANY_R. */
#define RANGE_FN(name, BLK, T, ATTR, ARGS, XBYTES, KSTEP, STORE_ROW)                                          \
    ATTR static void name(void *arg, long g0, long g1)                                                        \
    {                                                                                                          \
        const ARGS *a = arg;                                                                                   \
        int N = a->N, OC = a->OC, P = (OC + LQ_PANEL - 1) / LQ_PANEL, K4 = a->KSTEP;                          \
        int few = N < MANY_R, np = few ? FEW_P : MANY_P;                                                       \
        size_t ldx = (size_t)K4 * 4, ps = (size_t)K4 * 64;                                               \
        const uint8_t *xb = (const uint8_t *)a->XBYTES, *wb = (const uint8_t *)a->WBYTES;                      \
        T tmp[MANY_R * 128];                                                                                   \
        for (long g = g0; g < g1; g++) {                                                                       \
            int p0 = (int)g * np, n_p = P - p0 < np ? P - p0 : np, o0 = p0 * LQ_PANEL;                         \
            int width = OC - o0 < n_p * LQ_PANEL ? OC - o0 : n_p * LQ_PANEL;                                   \
            const uint8_t *w = wb + (size_t)p0 * ps;                                                           \
            if (few) {                                                                                         \
                for (int m = 0; m < N; m++) {                                                                  \
                    const uint8_t *x = xb + (size_t)m * ldx;                                                   \
                    if (n_p == FEW_P)                                                                          \
                        BLK(tmp, x, ldx, w, ps, K4, 1, FEW_P);                                                 \
                    else                                                                                       \
                        for (int q = 0; q < n_p; q++)                                                          \
                            BLK(tmp + q * 16, x, ldx, w + q * ps, ps, K4, 1, 1);                               \
                    STORE_ROW(m, 0);                                                                           \
                }                                                                                              \
            } else {                                                                                           \
                for (int m = 0; m < N; m += MANY_R) {                                                          \
                    const uint8_t *x = xb + (size_t)m * ldx;                                                   \
                    int R = N - m < MANY_R ? N - m : MANY_R; /* a row's sums do not depend on R */             \
                    if (R == MANY_R && n_p == MANY_P)                                                          \
                        BLK(tmp, x, ldx, w, ps, K4, MANY_R, MANY_P);                                           \
                    else if (R == MANY_R)                                                                      \
                        for (int q = 0; q < n_p; q++)                                                          \
                            BLK(tmp + q * 16, x, ldx, w + q * ps, ps, K4, MANY_R, 1);                          \
                    else                                                                                       \
                        for (int q = 0; q < n_p; q++)                                                          \
                            BLK(tmp + q * 16, x, ldx, w + q * ps, ps, K4, R, 1);                               \
                    for (int r = 0; r < R; r++)                                                                \
                        STORE_ROW(m + r, r);                                                                   \
                }                                                                                              \
            }                                                                                                  \
        }                                                                                                      \
    }

#define I8_ROW(n, r) \
    lq_store_512(a->out + (size_t)(n) * OC + o0, tmp + (r) * 128, a->xs[n], a->xz[n], a->ws + o0, a->wsum + o0, \
                 a->bias ? a->bias + o0 : NULL, width)
#define BF_ROW(n, r) \
    lb_store_512(a->out + (size_t)(n) * a->ldc + o0, tmp + (r) * 128, a->bias ? a->bias + o0 : NULL, width, a->alpha, a->accum)

/* int8: K steps of 4 bytes; bf16: K steps of 2 bf16 (4 bytes): Cp / 4 and
 * Cp2 / 2 */
#define WBYTES wq
#define Cp4 Cp / 4
RANGE_FN(li8_vnni, blk_vnni, int32_t, __attribute__((target("avx512vnni"))), lq_args, xq, Cp4, I8_ROW)
RANGE_FN(li8_bw, blk_bw, int32_t, , lq_args, xq, Cp4, I8_ROW)
#undef WBYTES
#define WBYTES wb
#define Cp2h Cp2 / 2
RANGE_FN(lb_dpbf, blk_dpbf, float, __attribute__((target("avx512bf16"))), lb_args, xb, Cp2h, BF_ROW)
RANGE_FN(lb_widen, blk_widen, float, , lb_args, xb, Cp2h, BF_ROW)

static void li8_avx512(void *arg, long g0, long g1)
{
    if (kern_extras.vnni)
        li8_vnni(arg, g0, g1);
    else
        li8_bw(arg, g0, g1);
}

static void lb_avx512(void *arg, long g0, long g1)
{
    if (kern_extras.bf16)
        lb_dpbf(arg, g0, g1);
    else
        lb_widen(arg, g0, g1);
}

static int groups_avx512(int N, int OC)
{
    int P = (OC + LQ_PANEL - 1) / LQ_PANEL, np = N < MANY_R ? FEW_P : MANY_P;
    return (P + np - 1) / np;
}

static void store_sums(void *arg, long r0, long r1)
{
    const sums_args *a = arg;
    for (long n = r0; n < r1; n++)
        lq_store_512(a->out + (size_t)n * a->OC, a->acc + (size_t)n * a->OC, a->xs[n], a->xz[n], a->ws, a->wsum, a->bias,
                     a->OC);
}

static const char *i8_name(void) { return kern_extras.vnni ? "avx512-vnni vpdpbusd" : "avx512bw vpmaddubsw"; }
static const char *bf16_name(void)
{
    return kern_extras.bf16 ? "avx512-bf16 vdpbf16ps" : "avx512 (bf16 widened to fp32 in registers)";
}

const kernq_table kernq_avx512 = {
    .isa = ISA_AVX512,
    .quant_rows = quant_rows,
    .bf16_rows = bf16_rows,
    .store_sums = store_sums,
    .linear_i8 = li8_avx512,
    .linear_i8_groups = groups_avx512,
    .linear_bf16 = lb_avx512,
    .linear_bf16_groups = groups_avx512,
    .i8_name = i8_name,
    .bf16_name = bf16_name,
};
