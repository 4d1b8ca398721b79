/* int8 and bf16 linear layers: packing, activation quantization, the
 * threaded drivers and the plain twins (quant.h). The products are per
 * instruction set (generic/, avx2/, avx512/ quant.c). */
#include <float.h>
#include <math.h>
#include <string.h>

#include "kernels/isa.h"
#include "kernels/quant.h"

static int panels(int OC) { return (OC + LQ_PANEL - 1) / LQ_PANEL; }

/* round(v * inv) to nearest even, in the expressions of the paths'
 * quant_rows (impl/quant_rows.inc) */
static inline int8_t q8(float v, float inv) { return (int8_t)(int)((v * inv + 12582912.0f) - 12582912.0f); }

/* scale and 127 / max|row| of one row (0 and 0 for a row of zeros) */
static void row_scale(const float *x, int C, float *scale, float *inv)
{
    float m = 0;
    for (int c = 0; c < C; c++) {
        float a = fabsf(x[c]);
        m = a > m ? a : m;
    }
    *scale = m / 127.0f;
    *inv = m > 0 ? 127.0f / m : 0.0f;
}

void quantize_rows_s8(int8_t *q, float *scale, const float *x, int N, int C, int ldq)
{
    for (int n = 0; n < N; n++) {
        const float *r = x + (size_t)n * C;
        int8_t *o = q + (size_t)n * ldq;
        float inv;
        row_scale(r, C, &scale[n], &inv);
        for (int c = 0; c < C; c++)
            o[c] = q8(r[c], inv);
        for (int c = C; c < ldq; c++)
            o[c] = 0;
    }
}

void dequantize_rows_s8(float *x, const int8_t *q, const float *scale, int N, int C, int ldq)
{
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            x[(size_t)n * C + c] = (float)q[(size_t)n * ldq + c] * scale[n];
}

void quantize_rows_u7(uint8_t *q, float *scale, int32_t *zero, const float *x, int N, int C, int ldq)
{
    for (int n = 0; n < N; n++) {
        const float *r = x + (size_t)n * C;
        uint8_t *o = q + (size_t)n * ldq;
        float hi = 0, lo = 0; /* NaNs fail both comparisons */
        for (int c = 0; c < C; c++) {
            if (r[c] > hi)
                hi = r[c];
            if (r[c] < lo)
                lo = r[c];
        }
        float nlo = lo < 0 ? -lo : 0.0f, range = hi + nlo, inv = range >= QU7_MIN_RANGE ? 127.0f / range : 0.0f;
        /* the rounding of impl/quant_rows.inc: (v + 1.5 2^23) - 1.5 2^23 */
        float z = (nlo * inv + 12582912.0f) - 12582912.0f, off = 12582912.0f - z;
        scale[n] = inv > 0 ? range / 127.0f : 0.0f;
        zero[n] = (int32_t)z;
        for (int c = 0; c < C; c++) {
            float v = fabsf(r[c]) <= FLT_MAX ? r[c] : 0.0f;
            int32_t i = (int32_t)((v * inv + 12582912.0f) - off);
            o[c] = (uint8_t)(i < 127 ? i : 127);
        }
        for (int c = C; c < ldq; c++)
            o[c] = 0;
    }
}

void dequantize_rows_u7(float *x, const uint8_t *q, const float *scale, const int32_t *zero, int N, int C, int ldq)
{
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            x[(size_t)n * C + c] = (float)((int32_t)q[(size_t)n * ldq + c] - zero[n]) * scale[n];
}

static inline uint16_t bf16_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep it quiet, not Inf */
        return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

static inline float float_of(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

void float_to_bf16(uint16_t *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = bf16_of(src[i]);
}

void bf16_to_float(float *dst, const uint16_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = float_of(src[i]);
}

/* ---- int8 ---- */

int linear_i8_cp(int C) { return (C + 3) & ~3; }

size_t linear_i8_weight_bytes(int C, int OC) { return (size_t)panels(OC) * LQ_PANEL * (size_t)linear_i8_cp(C); }

size_t linear_i8_panel_floats(int OC) { return (size_t)panels(OC) * LQ_PANEL; }

/* Puts quantized row o (C values) into its panel; returns the row's sum. */
static int32_t pack_i8_row(int8_t *wq, int Cp, int o, const int8_t *row, int C)
{
    int32_t s = 0;
    int p = o / LQ_PANEL, j = o % LQ_PANEL;
    for (int c = 0; c < C; c++) {
        s += row[c];
        wq[(((size_t)p * (Cp / 4) + c / 4) * LQ_PANEL + j) * 4 + c % 4] = row[c];
    }
    return s;
}

void linear_i8_pack_quantized(int8_t *wq, float *ws, int32_t *wsum, const int8_t *q, const float *scale, int C,
                              int OC)
{
    int P = panels(OC), Cp = linear_i8_cp(C);
    memset(wq, 0, linear_i8_weight_bytes(C, OC));
    for (int o = 0; o < P * LQ_PANEL; o++) {
        ws[o] = o < OC ? scale[o] : 0;
        wsum[o] = o < OC ? pack_i8_row(wq, Cp, o, q + (size_t)o * C, C) : 0;
    }
}

void linear_i8_pack(int8_t *wq, float *ws, int32_t *wsum, const float *weight, int C, int OC)
{
    int P = panels(OC), Cp = linear_i8_cp(C);
    int8_t row[C > 0 ? C : 1];
    memset(wq, 0, linear_i8_weight_bytes(C, OC));
    for (int o = 0; o < P * LQ_PANEL; o++) {
        ws[o] = 0;
        wsum[o] = 0;
        if (o >= OC)
            continue;
        quantize_rows_s8(row, &ws[o], weight + (size_t)o * C, 1, C, C);
        wsum[o] = pack_i8_row(wq, Cp, o, row, C);
    }
}

size_t linear_i8_scratch_bytes(int N, int C)
{
    return (size_t)N * (size_t)linear_i8_cp(C) + (size_t)N * (sizeof(float) + sizeof(int32_t)) + 64;
}

/* Multiply-adds below which a product stays on the calling thread (as
 * linear_packed.c). */
#define LQ_PAR_MIN 300000.0

void linear_i8_forward(float *out, const float *inp, const int8_t *wq, const float *ws, const int32_t *wsum,
                       const float *bias, int N, int C, int OC, void *scratch)
{
    linear_i8_forward_rows(out, inp, wq, ws, wsum, NULL, bias, N, C, OC, scratch);
}

void linear_i8_forward_rows(float *out, const float *inp, const int8_t *wq, const float *ws, const int32_t *wsum,
                            const i8_onednn_weight *wd, const float *bias, int N, int C, int OC, void *scratch)
{
    if (N <= 0 || OC <= 0)
        return;
    int Cp = linear_i8_cp(C);
    float *xs = scratch;
    int32_t *xz = (int32_t *)(xs + N);
    uint8_t *xq = (uint8_t *)(xz + N);
    qr_args q = {xq, xs, xz, inp, C, Cp};
    kpar_for(N, (double)N * C, PAR_MIN, kernq->quant_rows, &q);
    if (wd && linear_i8_onednn_use(N) && linear_i8_onednn(out, xq, Cp, xs, xz, wd, ws, wsum, bias, N, C, OC))
        return;
    lq_args a = {out, xq, xs, xz, wq, ws, wsum, bias, N, Cp, OC};
    kpar_for(kernq->linear_i8_groups(N, OC), (double)N * C * OC, LQ_PAR_MIN, kernq->linear_i8, &a);
}

void linear_i8_forward_ref(float *out, const float *inp, const float *weight, const float *bias, int N, int C,
                           int OC)
{
    uint8_t xq[C > 0 ? C : 1];
    int8_t wq[C > 0 ? C : 1];
    for (int n = 0; n < N; n++) {
        float xs;
        int32_t xz;
        quantize_rows_u7(xq, &xs, &xz, inp + (size_t)n * C, 1, C, C);
        for (int o = 0; o < OC; o++) {
            float wsc;
            quantize_rows_s8(wq, &wsc, weight + (size_t)o * C, 1, C, C);
            int32_t s = 0, wsum = 0;
            for (int c = 0; c < C; c++) {
                s += (int32_t)xq[c] * wq[c];
                wsum += wq[c];
            }
            float v = (float)(s - xz * wsum) * (xs * wsc);
            out[(size_t)n * OC + o] = bias ? v + bias[o] : v;
        }
    }
}

/* ---- bf16 ---- */

int linear_bf16_cp(int C) { return (C + 1) & ~1; }

size_t linear_bf16_weight_elems(int C, int OC) { return (size_t)panels(OC) * LQ_PANEL * (size_t)linear_bf16_cp(C); }

typedef struct {
    uint16_t *wb;
    const float *src;
    int ld, kn, K, N;
} pack_args;

/* items: panels */
static void pack_panels(void *arg, long p0, long p1)
{
    const pack_args *a = arg;
    int Kp = linear_bf16_cp(a->K);
    for (long p = p0; p < p1; p++)
        for (int c = 0; c < Kp; c++)
            for (int j = 0; j < LQ_PANEL; j++) {
                int o = (int)p * LQ_PANEL + j;
                float v = 0.0f;
                if (o < a->N && c < a->K)
                    v = a->kn ? a->src[(size_t)c * a->ld + o] : a->src[(size_t)o * a->ld + c];
                a->wb[(((size_t)p * (Kp / 2) + c / 2) * LQ_PANEL + j) * 2 + c % 2] = bf16_of(v);
            }
}

void bf16_pack_panels(uint16_t *wb, const float *src, int ld, int kn, int K, int N)
{
    pack_args a = {wb, src, ld, kn, K, N};
    kpar_for(panels(N), (double)N * K, PAR_MIN, pack_panels, &a);
}

void linear_bf16_pack(uint16_t *wb, const float *weight, int C, int OC) { bf16_pack_panels(wb, weight, C, 0, C, OC); }

size_t linear_bf16_scratch_bytes(int N, int C) { return (size_t)N * (size_t)linear_bf16_cp(C) * 2 + 64; }

void linear_bf16_forward(float *out, const float *inp, const uint16_t *wb, const float *bias, int N, int C, int OC,
                         void *scratch)
{
    if (N <= 0 || OC <= 0)
        return;
    int Cp = linear_bf16_cp(C);
    uint16_t *xb = scratch;
    br_args r = {xb, inp, C, Cp, C};
    kpar_for(N, (double)N * C, PAR_MIN, kernq->bf16_rows, &r);
    lb_args a = {out, xb, wb, bias, N, Cp, OC, OC, 0, 1.0f};
    kpar_for(kernq->linear_bf16_groups(N, OC), (double)N * C * OC, LQ_PAR_MIN, kernq->linear_bf16, &a);
}

void linear_bf16_forward_ref(float *out, const float *inp, const float *weight, const float *bias, int N, int C,
                             int OC)
{
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = 0;
            for (int c = 0; c < C; c++)
                s += (double)float_of(bf16_of(inp[(size_t)n * C + c])) *
                     float_of(bf16_of(weight[(size_t)o * C + c]));
            float v = (float)s;
            out[(size_t)n * OC + o] = bias ? v + bias[o] : v;
        }
}

const char *linear_i8_path(void) { return kernq->i8_name(); }
const char *linear_bf16_path(void) { return kernq->bf16_name(); }
