/* Linear layer, token embedding with scale and positions, and the
 * sinusoidal position table. */
#include <assert.h>
#include <math.h>
#include <string.h>

#include "kernels/isa.h"
#include "kernels/kernels.h"

/* dst[c] += sum_n src[n, c].   dst: [C]   src: [N, C] */
static void column_sums_add(float *dst, const float *src, int N, int C)
{
    colsum_args a = {dst, src, N, C};
    kpar_for((C + COL_BLOCK - 1) / COL_BLOCK, (double)N * C, PAR_MIN, kern->column_sums, &a);
}

typedef struct {
    float *out;
    const float *bias;
    int OC;
} bias_rows_args;

static void bias_rows(void *arg, long i0, long i1)
{
    const bias_rows_args *a = arg;
    for (long n = i0; n < i1; n++)
        memcpy(a->out + (size_t)n * a->OC, a->bias, (size_t)a->OC * sizeof(float));
}

void linear_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int C, int OC)
{
    if (bias) {
        bias_rows_args a = {out, bias, OC};
        kpar_for(N, (double)N * OC, PAR_MIN, bias_rows, &a);
    }
    /* out[N, OC] = inp[N, C] weight[OC, C]^T (+ out holding the bias) */
    gemm_mixed(0, 1, N, OC, C, 1.0f, inp, C, weight, C, bias ? 1.0f : 0.0f, out, OC);
}

/* dinp[N, C] = dout[N, OC] weight[OC, C] + beta dinp; dweight[OC, C] += dout^T[OC, N] inp[N, C] */
static void backward(float beta, float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, int N, int C, int OC)
{
    gemm_mixed_linear_backward(dinp, beta, dweight, dout, inp, weight, N, C, OC);
    if (dbias)
        column_sums_add(dbias, dout, N, OC);
}

void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, int N, int C, int OC)
{
    backward(1.0f, dinp, dweight, dbias, dout, inp, weight, N, C, OC);
}

void linear_backward_set(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                         const float *weight, int N, int C, int OC)
{
    backward(0.0f, dinp, dweight, dbias, dout, inp, weight, N, C, OC);
}

void embedding_forward(float *out, const int *ids, const float *table, const float *pos, int B, int T, int C,
                       int pos_offset, float scale)
{
    emb_args a = {.out = out, .table = table, .pos = pos, .ids = ids, .T = T, .C = C, .pos_offset = pos_offset,
                  .BT = B * T, .scale = scale};
    kpar_for((long)B * T, (double)B * T * C, PAR_MIN, kern->embedding, &a);
}

void embedding_backward(float *dtable, float *dpos, const float *dout, const int *ids, int B, int T, int C,
                        int pos_offset, float scale)
{
    emb_args a = {.out = dtable, .dpos = dpos, .table = dout, .ids = ids, .T = T, .C = C, .pos_offset = pos_offset,
                  .BT = B * T, .scale = scale};
    kpar_for((C + COL_BLOCK - 1) / COL_BLOCK, (double)B * T * C, PAR_MIN, kern->embedding_bwd, &a);
}

void sinusoidal_positions(float *table, int P, int C)
{
    assert(C % 2 == 0);
    int half = C / 2;
    /* In double and rounded once, as Hugging Face builds it with numpy.
     * Made once per model: serial. */
    for (int p = 0; p < P; p++)
        for (int j = 0; j < half; j++) {
            double angle = p / pow(10000.0, 2.0 * j / C);
            table[(size_t)p * C + j] = (float)sin(angle);
            table[(size_t)p * C + half + j] = (float)cos(angle);
        }
}
