/* Lower-precision linear layers: int8 and bfloat16 weights, packed once.
 *
 * int8: weights symmetric per output row (as CTranslate2's int8),
 * activations asymmetric per row in 7 bits (u8 in [0, 127], a zero point):
 *   weight row o:      ws[o] = max_c |w[o, c]| / 127,  wq[o, c] = round(w[o, c] / ws[o])
 *   activation row n:  lo = min(0, min_c x), hi = max(0, max_c x),
 *                      xs[n] = (hi - lo) / 127,  xz[n] = round(-lo / xs[n]),
 *                      xq[n, c] = clamp(round(x[n, c] / xs[n]) + xz[n], 0, 127)
 *   out[n, o] = (float)(sum_c xq[n, c] wq[o, c] - xz[n] wsum[o]) * (xs[n] * ws[o]) (+ bias[o])
 *               with wsum[o] = sum_c wq[o, c]
 * (round is round(v * (127 / max)) or round(v * (127 / (hi - lo))), ties
 * to even; a row of zeros has scale 0). A row of one sign keeps the 127
 * steps of a symmetric 8-bit scale (ReLU outputs: the same values); a
 * row of both signs has (hi - lo) / 127 steps, at most one bit coarser.
 * The 7 bits are for AVX2: vpmaddubsw adds pairs of u8 x s8 products into
 * saturating 16-bit sums, and with u8 <= 127 a pair is at most
 * 2 * 127^2 < 2^15, so the unsigned activations go in straight (three
 * instructions per 32 products; an exact 8-bit scheme needs |x| and x's
 * sign on the weight, five, and ran 1.4x slower on AMD Zen 3). Every path
 * uses the one scheme, so every path gives the same bits as
 * linear_i8_forward_ref (the integer sums are exact: |sum| <= 127^2 C <
 * 2^31 for C below 133,000):
 *   - AVX512-VNNI: vpdpbusd (u8 x s8 into s32);
 *   - AVX2 and AVX-512 without VNNI: vpmaddubsw then vpmaddwd by ones;
 *   - generic: plain integer C;
 *   - oneDNN's matmul for the integer sums of products of 64 rows or more
 *     where the CPU has AMX-INT8 (linear_i8_onednn.c; $QKV_INT8_ONEDNN=0
 *     turns it off, 1 on for any CPU), with the store of the own paths.
 * Layout, panels of LQ_PANEL = 16 output rows, C rounded up to Cp (a
 * multiple of 4, zeros past C):
 *     wq[p][c / 4][j][c % 4] = wq[p * 16 + j][c]      (64 bytes per p, c/4)
 * so one 64-byte load holds 4 input columns of 16 outputs: one zmm for
 * vpdpbusd, two ymm on AVX2. ws and wsum are padded to whole panels.
 *
 * bfloat16 (weights only; activations are rounded to bf16 at run time):
 *     wb[p][c / 2][j][c % 2] = bf16(w[p * 16 + j][c])  (Cp2: C rounded up to 2)
 *   out[n, o] = sum_c bf16(x[n, c]) wb[o, c] in fp32 (+ bias[o]).
 * With AVX512-BF16 the pairs go through vdpbf16ps; elsewhere the pairs
 * are widened to fp32 in registers (exact) and multiplied with FMA, so
 * the weight traffic is halved either way. bf16 x bf16 products are exact
 * in fp32, so paths differ only in the order of the fp32 additions.
 *
 * Threads take groups of output panels; a row's result does not depend on
 * the other rows, the thread count or the path (int8: to the bit). */
#ifndef QKV_KERNELS_QUANT_H
#define QKV_KERNELS_QUANT_H

#include <stddef.h>
#include <stdint.h>

#define LQ_PANEL 16

/* ---- quantize / dequantize rows (the scheme above) ---- */

/* Symmetric, as the weights: q: [N, ldq] (columns C .. ldq-1 set to 0)
 * scale: [N] (max|x| / 127)   x: [N, C] */
void quantize_rows_s8(int8_t *q, float *scale, const float *x, int N, int C, int ldq);

/* x[n, c] = q[n, c] * scale[n].   x: [N, C]   q: [N, ldq] */
void dequantize_rows_s8(float *x, const int8_t *q, const float *scale, int N, int C, int ldq);

/* Activations, 7 bits with a zero point: q: [N, ldq] in [0, 127] (columns
 * C .. ldq-1 set to 0)   scale: [N] ((hi - lo) / 127)   zero: [N] in [0, 127]
 * x: [N, C]. NaNs are skipped when the range is taken and quantize as 0.0,
 * as do infinities (whose range, and so scale, is infinite). A row whose
 * range is below QU7_MIN_RANGE quantizes as a row of zeros (scale 0). */
#define QU7_MIN_RANGE 0x1p-100f
void quantize_rows_u7(uint8_t *q, float *scale, int32_t *zero, const float *x, int N, int C, int ldq);

/* x[n, c] = (q[n, c] - zero[n]) * scale[n] */
void dequantize_rows_u7(float *x, const uint8_t *q, const float *scale, const int32_t *zero, int N, int C, int ldq);

/* float -> bf16 (round to nearest even; NaN stays NaN) and back. */
void float_to_bf16(uint16_t *dst, const float *src, size_t n);
void bf16_to_float(float *dst, const uint16_t *src, size_t n);

/* ---- int8 linear ---- */

/* Cp: C rounded up to 4. Bytes of the packed weight; floats of ws and
 * int32s of wsum (both panels * 16). */
int linear_i8_cp(int C);
size_t linear_i8_weight_bytes(int C, int OC);
size_t linear_i8_panel_floats(int OC);

/* Quantizes and packs weight [OC, C]. wq: linear_i8_weight_bytes
 * ws, wsum: linear_i8_panel_floats(OC) each (wsum[o] = sum_c wq[o, c]) */
void linear_i8_pack(int8_t *wq, float *ws, int32_t *wsum, const float *weight, int C, int OC);
/* The same from weights already quantized by the scheme above (q: [OC, C]
 * row-major, scale: [OC]), e.g. read from a quantized checkpoint: nothing
 * is re-quantized, so the packing equals linear_i8_pack of the weights q
 * came from. scale may be ws itself. */
void linear_i8_pack_quantized(int8_t *wq, float *ws, int32_t *wsum, const int8_t *q, const float *scale, int C,
                              int OC);

/* Bytes of the scratch linear_i8_forward needs for N rows (64-aligned
 * pointer not required). */
size_t linear_i8_scratch_bytes(int N, int C);

/* out: [N, OC]   inp: [N, C]   wq, ws, wsum: from linear_i8_pack
 * bias: [OC] or NULL   scratch: linear_i8_scratch_bytes(N, C) */
void linear_i8_forward(float *out, const float *inp, const int8_t *wq, const float *ws, const int32_t *wsum,
                       const float *bias, int N, int C, int OC, void *scratch);

/* The weight in oneDNN's own layout for the int8 sums (linear_i8_onednn.c),
 * made once from the plain rows [OC, C] (the rows linear_i8_pack
 * quantized): NULL when oneDNN has no engine or refused, or out of memory. */
typedef struct i8_onednn_weight i8_onednn_weight;
i8_onednn_weight *linear_i8_onednn_pack(const int8_t *wrows, int C, int OC);
size_t linear_i8_onednn_weight_bytes(const i8_onednn_weight *w);
void linear_i8_onednn_weight_free(i8_onednn_weight *w);

/* linear_i8_forward with the weight also in oneDNN's layout (wd; NULL:
 * none), which lets the integer sums go to oneDNN's matmul where
 * linear_i8_onednn_use says so; the same bits either way. */
void linear_i8_forward_rows(float *out, const float *inp, const int8_t *wq, const float *ws, const int32_t *wsum,
                            const i8_onednn_weight *wd, const float *bias, int N, int C, int OC, void *scratch);

/* oneDNN for the int8 sums: whether packed weights should also be made in
 * oneDNN's layout (oneDNN has an engine and the CPU has AMX-INT8 with the
 * tile state granted, or forced), whether a call of N rows goes there
 * (from 64 rows; every call when forced), and the product itself: out
 * [N, OC] by the own paths' store from oneDNN's sums of the quantized
 * rows xq [N, ldx] (scales xs, zero points xz) and the weight. Returns 0
 * when oneDNN refused (out is then partly written; the caller runs its
 * own kernel). Tests force the path on (1), off (0) or back to the CPU's
 * rule (-1). */
int linear_i8_onednn_wanted(void);
int linear_i8_onednn_use(int N);
int linear_i8_onednn(float *out, const uint8_t *xq, int ldx, const float *xs, const int32_t *xz,
                     const i8_onednn_weight *wd, const float *ws, const int32_t *wsum, const float *bias, int N, int C,
                     int OC);
void linear_i8_onednn_force(int on);

/* The plain twin on the unpacked float weight (quantizes both sides
 * itself, the weights with quantize_rows_s8, the activations with
 * quantize_rows_u7): equal to linear_i8_forward to the bit. */
void linear_i8_forward_ref(float *out, const float *inp, const float *weight, const float *bias, int N, int C,
                           int OC);

/* ---- bfloat16 linear ---- */

int linear_bf16_cp(int C); /* C rounded up to 2 */
size_t linear_bf16_weight_elems(int C, int OC);
void linear_bf16_pack(uint16_t *wb, const float *weight, int C, int OC);
/* The same packing of W [N, K] (K as C, N as OC) read with a row stride:
 * W[n, k] = src[n * ld + k], or src[k * ld + n] when kn (src is then
 * [K, N], as gemm's untransposed B). wb: linear_bf16_weight_elems(K, N).
 * Threaded by panels on the bound context. */
void bf16_pack_panels(uint16_t *wb, const float *src, int ld, int kn, int K, int N);
size_t linear_bf16_scratch_bytes(int N, int C);

/* out: [N, OC]   inp: [N, C]   wb: from linear_bf16_pack   bias: [OC] or NULL */
void linear_bf16_forward(float *out, const float *inp, const uint16_t *wb, const float *bias, int N, int C, int OC,
                         void *scratch);

/* Twin: bf16(x) bf16(w) summed in double, then rounded (+ bias in float);
 * the kernels are within fp32 summation rounding of it. */
void linear_bf16_forward_ref(float *out, const float *inp, const float *weight, const float *bias, int N, int C,
                             int OC);

/* What the product path is ("avx512-vnni", "avx2 vpmaddubsw", ...). */
const char *linear_i8_path(void);
const char *linear_bf16_path(void);

#endif
