/* The generic path: baseline x86-64 (SSE2), no FMA. Everything from the
 * shared loops (impl/rows.inc), plus linear_packed in plain C.
 *
 * Without FMA the packed linear rounds each product before adding it, so
 * it is not bit-equal to linear_packed_forward_ref (one fused chain per
 * output) but within float rounding of it; the test says which. */
#pragma GCC optimize("no-trapping-math")

#define KFN(name) name##_generic
#define KERN_ISA ISA_GENERIC

#include <stddef.h>

#include "kernels/isa.h"
#include "kernels/linear_packed.h"
#include "kernels/impl/lp_store.inc"

#define GEN_NP 4 /* panels per group: 64 sums per row, the inner loop the compiler vectorises */

static int lp_groups_generic(int N, int OC)
{
    (void)N;
    int P = (OC + LINEAR_PANEL - 1) / LINEAR_PANEL;
    return (P + GEN_NP - 1) / GEN_NP;
}

static void lp_forward_generic(void *arg, long g0, long g1)
{
    const lp_args *a = arg;
    int C = a->C, OC = a->OC, P = (OC + LINEAR_PANEL - 1) / LINEAR_PANEL;
    size_t ps = (size_t)C * LINEAR_PANEL;
    for (long g = g0; g < g1; g++) {
        int p0 = (int)g * GEN_NP, np = P - p0 < GEN_NP ? P - p0 : GEN_NP;
        for (int m = 0; m < a->N; m++) {
            const float *x = a->inp + (size_t)m * C;
            float acc[GEN_NP * LINEAR_PANEL] = {0};
            for (int q = 0; q < np; q++) {
                const float *w = a->wp + (size_t)(p0 + q) * ps;
                float *s = acc + q * LINEAR_PANEL;
                for (int c = 0; c < C; c++) {
                    float xc = x[c];
                    const float *wc = w + (size_t)c * LINEAR_PANEL;
#pragma omp simd
                    for (int j = 0; j < LINEAR_PANEL; j++)
                        s[j] += xc * wc[j];
                }
            }
            lp_store(a->out + (size_t)m * OC, acc, 0, a->bias, 1, np * LINEAR_PANEL, p0 * LINEAR_PANEL, OC);
        }
    }
}

#define LP_FORWARD lp_forward_generic
#define LP_GROUPS lp_groups_generic
#include "kernels/impl/rows.inc"
