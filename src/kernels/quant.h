/* Lower-precision linear layers: int8 and bfloat16 weights, packed once.
 *
 * int8 (symmetric, per output row, as CTranslate2's int8):
 *   weight row o:      ws[o] = max_c |w[o, c]| / 127,  wq[o, c] = round(w[o, c] / ws[o])
 *   activation row n:  xs[n] = max_c |x[n, c]| / 127,  xq[n, c] = round(x[n, c] / xs[n])
 *   out[n, o] = (float)(sum_c xq[n, c] wq[o, c]) * (xs[n] * ws[o]) (+ bias[o])
 * (quantized as round(v * (127 / max)), ties to even; a row of zeros has
 * scale 0). The integer sum is exact (|sum| <= 127^2 C < 2^31 for C below
 * 133,000), so every path gives the same bits as linear_i8_forward_ref:
 *   - AVX512-VNNI: vpdpbusd multiplies unsigned by signed bytes, so the
 *     activations go in as u8 = xq + 128 and the packed weight carries
 *     wsum[o] = 128 sum_c wq[o, c], subtracted after the chain;
 *   - AVX2 and AVX-512 without VNNI: vpmaddubsw on |xq| and wq with xq's
 *     sign (|xq| <= 127: a pair sums to at most 2 * 127^2 < 2^15, so the
 *     16-bit sums never saturate), then vpmaddwd by ones into s32;
 *   - generic: plain integer C.
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

/* q: [N, ldq] (columns C .. ldq-1 set to 0)   scale: [N] (max|x| / 127)
 * x: [N, C] */
void quantize_rows_s8(int8_t *q, float *scale, const float *x, int N, int C, int ldq);

/* x[n, c] = q[n, c] * scale[n].   x: [N, C]   q: [N, ldq] */
void dequantize_rows_s8(float *x, const int8_t *q, const float *scale, int N, int C, int ldq);

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
 * ws, wsum: linear_i8_panel_floats(OC) each */
void linear_i8_pack(int8_t *wq, float *ws, int32_t *wsum, const float *weight, int C, int OC);
/* The same from weights already quantized by the scheme above (q: [OC, C]
 * row-major, scale: [OC]), e.g. read from a quantized checkpoint: nothing
 * is re-quantized, so the packing equals linear_i8_pack of the weights q
 * came from. */
void linear_i8_pack_quantized(int8_t *wq, float *ws, int32_t *wsum, const int8_t *q, const float *scale, int C,
                              int OC);

/* Bytes of the scratch linear_i8_forward needs for N rows (64-aligned
 * pointer not required). */
size_t linear_i8_scratch_bytes(int N, int C);

/* out: [N, OC]   inp: [N, C]   wq, ws, wsum: from linear_i8_pack
 * bias: [OC] or NULL   scratch: linear_i8_scratch_bytes(N, C) */
void linear_i8_forward(float *out, const float *inp, const int8_t *wq, const float *ws, const int32_t *wsum,
                       const float *bias, int N, int C, int OC, void *scratch);

/* The plain twin on the unpacked float weight (quantizes both sides
 * itself): equal to linear_i8_forward to the bit. */
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
