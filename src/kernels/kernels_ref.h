/* Plain, obviously-correct twins of every kernel in kernels.h, for tests.
 *
 * Each op exists twice, from one source (ref_impl.inc, included twice by
 * ref.c): *_ref in float, to compare the optimised kernels with, and
 * *_ref_f64 in double, for finite-difference gradient checks. Same argument
 * order, shapes and accumulate-into-gradients rule as kernels.h; masks,
 * ids and sizes stay int. Single-threaded loops, no SIMD, libm math. */
#ifndef QKV_KERNELS_REF_H
#define QKV_KERNELS_REF_H

#include "kernels/kernels.h"

#define REF_REAL float
#define REF_NAME(name) name##_ref
#include "kernels/ref_api.inc"
#undef REF_REAL
#undef REF_NAME

#define REF_REAL double
#define REF_NAME(name) name##_ref_f64
#include "kernels/ref_api.inc"
#undef REF_REAL
#undef REF_NAME

#endif
