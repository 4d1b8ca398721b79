/* The reference kernels, instantiated in float (*_ref) and in double
 * (*_ref_f64) from one source so that both say the same thing. */
#include <tgmath.h>

#include "base/rng.h"
#include "kernels/kernels_ref.h"

#define REF_REAL float
#define REF_NAME(name) name##_ref
#include "kernels/ref_impl.inc"
#undef REF_REAL
#undef REF_NAME

#define REF_REAL double
#define REF_NAME(name) name##_ref_f64
#include "kernels/ref_impl.inc"
#undef REF_REAL
#undef REF_NAME
