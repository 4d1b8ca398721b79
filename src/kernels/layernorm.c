/* Layer norm over the last dimension (loops: impl/rows.inc). Forward and
 * dinp by rows; dweight and dbias by column blocks, each column summed
 * over the rows in order, so the bits do not depend on the thread count. */
#include "kernels/isa.h"
#include "kernels/kernels.h"

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                       const float *bias, int N, int C, float eps)
{
    ln_args a = {out, mean, rstd, inp, weight, bias, C, eps};
    kpar_for(N, (double)N * C, PAR_MIN, kern->layernorm, &a);
}

void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                        const float *weight, const float *mean, const float *rstd, int N, int C)
{
    ln_bwd_args a = {dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C};
    kpar_for(N, (double)N * C, PAR_MIN, kern->layernorm_bwd_dx, &a);
    kpar_for((C + COL_BLOCK - 1) / COL_BLOCK, (double)N * C, PAR_MIN, kern->layernorm_bwd_dw, &a);
}
