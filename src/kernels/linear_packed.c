/* Linear layer from a prepacked weight, for few rows (see linear_packed.h).
 * The block kernels are per instruction set (avx2/, avx512/, generic/
 * kernels.c); threads take groups of output panels. */
#include <math.h>

#include "kernels/isa.h"
#include "kernels/linear_packed.h"

size_t linear_packed_floats(int C, int OC)
{
    return (size_t)((OC + LINEAR_PANEL - 1) / LINEAR_PANEL) * (size_t)C * LINEAR_PANEL;
}

typedef struct {
    float *wp;
    const float *weight;
    int C, OC;
} pack_args;

static void pack_panels(void *arg, long p0, long p1)
{
    const pack_args *a = arg;
    for (long p = p0; p < p1; p++)
        for (int c = 0; c < a->C; c++)
            for (int j = 0; j < LINEAR_PANEL; j++) {
                long o = p * LINEAR_PANEL + j;
                a->wp[((size_t)p * a->C + c) * LINEAR_PANEL + j] = o < a->OC ? a->weight[(size_t)o * a->C + c] : 0.0f;
            }
}

void linear_pack(float *wp, const float *weight, int C, int OC)
{
    pack_args a = {wp, weight, C, OC};
    kpar_for((OC + LINEAR_PANEL - 1) / LINEAR_PANEL, (double)OC * C, PAR_MIN, pack_panels, &a);
}

/* Multiply-adds below which the product stays on the calling thread:
 * waking the team costs microseconds, a 256 x 256 product for one row
 * about as much. */
#define LP_PAR_MIN 300000.0

void linear_packed_forward(float *out, const float *inp, const float *wp, const float *bias, int N, int C, int OC)
{
    if (N <= 0 || OC <= 0)
        return;
    lp_args a = {out, inp, wp, bias, N, C, OC};
    kpar_for(kern->linear_packed_groups(N, OC), (double)N * C * OC, LP_PAR_MIN, kern->linear_packed, &a);
}

void linear_packed_forward_ref(float *out, const float *inp, const float *weight, const float *bias, int N, int C,
                               int OC)
{
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            float s = 0;
            for (int c = 0; c < C; c++)
                s = fmaf(inp[(size_t)n * C + c], weight[(size_t)o * C + c], s);
            out[(size_t)n * OC + o] = bias ? s + bias[o] : s;
        }
}
