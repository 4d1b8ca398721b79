/* A linear layer for products with few rows (incremental decoding: one row
 * per running hypothesis, 1 to a few hundred), from a weight repacked once.
 *
 * Why not gemm(): a BLAS call packs the [OC, C] weight into its own panels
 * on every call, and with few rows that copy costs as much as the product
 * (a 1-row step of the output layer reads the weight twice). Here the
 * weight is packed once, when a decoder cache is made, into panels of
 * LINEAR_PANEL output columns:
 *
 *     wp[p][c][j] = weight[p * LINEAR_PANEL + j][c]   (0 past OC)
 *     wp: [ceil(OC / LINEAR_PANEL), C, LINEAR_PANEL]
 *
 * so a step streams each panel once for a block of rows. Every output is
 * one chain of fused multiply-adds over c = 0 .. C-1 (then + bias), the
 * same in the vector and the scalar code and for any number of rows,
 * threads or blocks: a row's result does not depend on what else is in
 * the batch. */
#ifndef QKV_KERNELS_LINEAR_PACKED_H
#define QKV_KERNELS_LINEAR_PACKED_H

#include <stddef.h>

#define LINEAR_PANEL 16

/* Floats of a packed [OC, C] weight. */
size_t linear_packed_floats(int C, int OC);

/* wp: linear_packed_floats(C, OC)   weight: [OC, C] */
void linear_pack(float *wp, const float *weight, int C, int OC);

/* out[n, o] = sum_c inp[n, c] weight[o, c] (+ bias[o])
 * out: [N, OC]   inp: [N, C]   wp: packed weight   bias: [OC] or NULL
 * Threads (when called outside a parallel region) take blocks of output
 * columns. */
void linear_packed_forward(float *out, const float *inp, const float *wp, const float *bias, int N, int C, int OC);

/* The plain twin on the unpacked weight, the same fused chain per output
 * (so equal to the bit). */
void linear_packed_forward_ref(float *out, const float *inp, const float *weight, const float *bias, int N, int C,
                               int OC);

#endif
