/* The generic path of the int8 and bf16 linear layers (quant.h): plain C
 * over the packed layouts (baseline x86-64; the compiler vectorises the
 * 16-output inner loops with SSE2). bf16 is widened to fp32 per element;
 * the bf16 sums are a plain multiply then add (no FMA on this path). */
#pragma GCC optimize("no-trapping-math")

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels/isa.h"
#include "kernels/quant.h"
#include "kernels/impl/lq_store.inc"
#include "kernels/impl/quant_rows.inc"

#define GEN_NP 4 /* panels per group */

static void li8_generic(void *arg, long g0, long g1)
{
    const lq_args *a = arg;
    int OC = a->OC, P = (OC + LQ_PANEL - 1) / LQ_PANEL, K4 = a->Cp / 4;
    size_t ps = (size_t)K4 * 64;
    for (long g = g0; g < g1; g++)
        for (int q = (int)g * GEN_NP; q < P && q < (int)(g + 1) * GEN_NP; q++) {
            const int8_t *w = a->wq + (size_t)q * ps;
            int o0 = q * LQ_PANEL, width = OC - o0 < LQ_PANEL ? OC - o0 : LQ_PANEL;
            for (int n = 0; n < a->N; n++) {
                const uint8_t *x = a->xq + (size_t)n * a->Cp;
                int32_t acc[LQ_PANEL] = {0};
                for (int k = 0; k < K4; k++) {
                    const int8_t *wk = w + (size_t)k * 64;
                    const uint8_t *xk = x + 4 * (size_t)k;
                    for (int j = 0; j < LQ_PANEL; j++)
                        acc[j] += xk[0] * wk[4 * j] + xk[1] * wk[4 * j + 1] + xk[2] * wk[4 * j + 2] +
                                  xk[3] * wk[4 * j + 3];
                }
                lq_store(a->out + (size_t)n * OC + o0, acc, a->xs[n], a->xz[n], a->ws + o0, a->wsum + o0,
                         a->bias ? a->bias + o0 : NULL, width);
            }
        }
}

static inline float f_of(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void lb_generic(void *arg, long g0, long g1)
{
    const lb_args *a = arg;
    int OC = a->OC, P = (OC + LQ_PANEL - 1) / LQ_PANEL, K2 = a->Cp2 / 2;
    size_t ps = (size_t)K2 * 32;
    for (long g = g0; g < g1; g++)
        for (int q = (int)g * GEN_NP; q < P && q < (int)(g + 1) * GEN_NP; q++) {
            const uint16_t *w = a->wb + (size_t)q * ps;
            int o0 = q * LQ_PANEL, width = OC - o0 < LQ_PANEL ? OC - o0 : LQ_PANEL;
            for (int n = 0; n < a->N; n++) {
                const uint16_t *x = a->xb + (size_t)n * a->Cp2;
                float acc[LQ_PANEL] = {0};
                for (int k = 0; k < K2; k++) {
                    const uint16_t *wk = w + (size_t)k * 32;
                    float x0 = f_of(x[2 * k]), x1 = f_of(x[2 * k + 1]);
                    for (int j = 0; j < LQ_PANEL; j++) {
                        acc[j] += x0 * f_of(wk[2 * j]);
                        acc[j] += x1 * f_of(wk[2 * j + 1]);
                    }
                }
                lb_store(a->out + (size_t)n * a->ldc + o0, acc, a->bias ? a->bias + o0 : NULL, width, a->alpha, a->accum);
            }
        }
}

static int groups_generic(int N, int OC)
{
    (void)N;
    int P = (OC + LQ_PANEL - 1) / LQ_PANEL;
    return (P + GEN_NP - 1) / GEN_NP;
}

static void store_sums(void *arg, long r0, long r1)
{
    const sums_args *a = arg;
    for (long n = r0; n < r1; n++)
        lq_store(a->out + (size_t)n * a->OC, a->acc + (size_t)n * a->OC, a->xs[n], a->xz[n], a->ws, a->wsum, a->bias,
                 a->OC);
}

static const char *i8_name(void) { return "generic C"; }
static const char *bf16_name(void) { return "generic C (bf16 widened to fp32)"; }

const kernq_table kernq_generic = {
    .isa = ISA_GENERIC,
    .quant_rows = quant_rows,
    .bf16_rows = bf16_rows,
    .store_sums = store_sums,
    .linear_i8 = li8_generic,
    .linear_i8_groups = groups_generic,
    .linear_bf16 = lb_generic,
    .linear_bf16_groups = groups_generic,
    .i8_name = i8_name,
    .bf16_name = bf16_name,
};
