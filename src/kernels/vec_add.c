#include "kernels/vec_add.h"

void vec_add(float *restrict acc, const float *restrict x, size_t n)
{
    /* restrict lets the compiler vectorise; the adds stay elementwise */
    for (size_t i = 0; i < n; i++)
        acc[i] += x[i];
}

void vec_add_ref(float *acc, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        acc[i] = acc[i] + x[i];
}
