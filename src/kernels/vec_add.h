/* Elementwise sum of gradient buffers, for accumulating micro-batches and
 * reducing across ranks in a fixed order. Each element is one IEEE add, so
 * the result depends only on the order of the calls, never on the
 * vectorisation: acc = ((g0 + g1) + g2) ... whoever computes it. */
#ifndef QKV_KERNELS_VEC_ADD_H
#define QKV_KERNELS_VEC_ADD_H

#include <stddef.h>

/* acc[i] += x[i].   acc, x: [n] (they may not overlap) */
void vec_add(float *acc, const float *x, size_t n);
void vec_add_ref(float *acc, const float *x, size_t n);

#endif
