/* Optimiser math: the AdamW step and the squared gradient norm. */
#include <math.h>

#include "kernels/kernels.h"
#include "kernels/parallel.h"

void adamw_update(float *param, float *m, float *v, const float *grad, size_t n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int step)
{
    /* Scalars in double, then float element-wise math in PyTorch's order
     * (mul_, add_, addcmul_, sqrt / bc2_sqrt + eps, addcdiv_). */
    double bc1 = 1.0 - pow(beta1, step), bc2 = 1.0 - pow(beta2, step);
    float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    float decay = (float)(1.0 - (double)lr * weight_decay);
    float a1 = (float)(1.0 - beta1), a2 = (float)(1.0 - beta2);
#pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float g = grad[i];
        float p = param[i] * decay;
        float mi = m[i] * beta1 + a1 * g;
        float vi = v[i] * beta2 + a2 * g * g;
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        param[i] = p - step_size * (mi / denom);
        m[i] = mi;
        v[i] = vi;
    }
}

/* At most this many partial sums, in chunks whose size depends on n only,
 * added in order: the same bits for any thread count (an OpenMP reduction
 * would add per-thread partials, whose boundaries move with the count). */
#define NORM_PARTS 256

double global_norm_sq(const float *g, size_t n)
{
    double part[NORM_PARTS];
    size_t chunk = (n + NORM_PARTS - 1) / NORM_PARTS;
    chunk = chunk < 16384 ? 16384 : chunk;
    int parts = (int)((n + chunk - 1) / chunk);
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int c = 0; c < parts; c++) {
        size_t i0 = (size_t)c * chunk, i1 = n - i0 < chunk ? n : i0 + chunk;
        double s = 0;
#pragma omp simd reduction(+ : s)
        for (size_t i = i0; i < i1; i++)
            s += (double)g[i] * g[i];
        part[c] = s;
    }
    double s = 0;
    for (int c = 0; c < parts; c++)
        s += part[c];
    return s;
}
