/* Optimiser math: the AdamW step and the squared gradient norm (loops:
 * impl/rows.inc). */
#include <math.h>

#include "kernels/isa.h"
#include "kernels/kernels.h"

void adamw_update(float *param, float *m, float *v, const float *grad, size_t n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int step)
{
    adamw_update_scaled(param, m, v, grad, 1.0f, n, lr, beta1, beta2, eps, weight_decay, step);
}

void adamw_update_scaled(float *param, float *m, float *v, const float *grad, float grad_scale, size_t n,
                         float lr, float beta1, float beta2, float eps, float weight_decay, int step)
{
    /* scalars in double, as PyTorch forms them */
    double bc1 = 1.0 - pow(beta1, step), bc2 = 1.0 - pow(beta2, step);
    adamw_args a = {param, m, v, grad, lr, beta1, beta2, eps,
                    .decay = (float)(1.0 - (double)lr * weight_decay),
                    .a1 = (float)(1.0 - beta1),
                    .a2 = (float)(1.0 - beta2),
                    .step_size = (float)(lr / bc1),
                    .bc2_sqrt = (float)sqrt(bc2),
                    .grad_scale = grad_scale};
    kpar_for((long)n, (double)n, PAR_MIN, kern->adamw, &a);
}

/* At most this many partial sums, in chunks whose size depends on n only,
 * added in order: the same bits for any thread count. */
#define NORM_PARTS 256

double global_norm_sq(const float *g, size_t n)
{
    double part[NORM_PARTS];
    size_t chunk = (n + NORM_PARTS - 1) / NORM_PARTS;
    chunk = chunk < 16384 ? 16384 : chunk;
    int parts = (int)((n + chunk - 1) / chunk);
    sumsq_args a = {g, n, chunk, part};
    kpar_for(parts, (double)n, PAR_MIN, kern->sumsq, &a);
    double s = 0;
    for (int c = 0; c < parts; c++)
        s += part[c];
    return s;
}
