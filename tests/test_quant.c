/* int8 and bf16 linear layers (kernels/quant.h), once per kernel path, and
 * on the avx512 path once per variant the CPU has (VNNI / no VNNI, BF16 /
 * widened); a variant the CPU lacks is printed as skipped.
 *
 * Tolerances:
 *   - int8 kernel vs linear_i8_forward_ref: equal bits (exact integer sums,
 *     the same dequantizing expression);
 *   - int8 vs float (linear_forward_ref): the quantization bound
 *     sum_c (|x_c| dw + |w_c| dx + dx dw) with dx = xs / 2, dw = ws / 2
 *     (half a step each: xs = (max(0, max x) - min(0, min x)) / 127 for the
 *     7-bit activations, ws = max |w| / 127), plus 1e-5 relative;
 *   - bf16 kernel vs linear_bf16_forward_ref (exact products summed in
 *     double): C * 2^-23 * sum_c |x_c w_c| + 2^-23 |ref| (fp32 summation);
 *   - bf16 vs float: 2^-7 * sum_c |x_c w_c| (two roundings of at most 2^-8) plus
 *     the same summation term.
 * Shapes: every row count 1..17, odd C (not a multiple of 4 or 2) and OC
 * (not a multiple of 16), the decoder's shapes, 1 and 2 threads. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "kernels/isa.h"
#include "kernels/kernels_ref.h"
#include "kernels/onednn.h"
#include "kernels/quant.h"
#include "qkv.h"
#include "test.h"

static qkv_rng rng;

static float *rnd(size_t n, float range)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    if (!p)
        abort();
    for (size_t i = 0; i < n; i++)
        p[i] = range * (2 * qkv_rng_uniform(&rng) - 1);
    return p;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        abort();
    return p;
}

static float row_max(const float *x, int C)
{
    float m = 0;
    for (int c = 0; c < C; c++)
        m = fabsf(x[c]) > m ? fabsf(x[c]) : m;
    return m;
}

/* max(0, max x) - min(0, min x): the range of a row's 7-bit activations */
static float row_range(const float *x, int C)
{
    float hi = 0, lo = 0;
    for (int c = 0; c < C; c++) {
        hi = x[c] > hi ? x[c] : hi;
        lo = x[c] < lo ? x[c] : lo;
    }
    return hi - lo;
}

static void check_i8(int N, int C, int OC, int with_bias, int threads, const char *variant)
{
    float *x = rnd((size_t)N * C, 2.0f), *w = rnd((size_t)OC * C, 0.5f), *b = with_bias ? rnd(OC, 1) : NULL;
    if (N > 2)
        memset(x + C, 0, (size_t)C * sizeof(float)); /* a row of zeros: scale 0 */
    int8_t *wq = xmalloc(linear_i8_weight_bytes(C, OC));
    float *ws = xmalloc(linear_i8_panel_floats(OC) * sizeof(float));
    int32_t *wsum = xmalloc(linear_i8_panel_floats(OC) * sizeof(int32_t));
    void *scratch = xmalloc(linear_i8_scratch_bytes(N, C));
    float *got = xmalloc((size_t)N * OC * sizeof(float)), *want = xmalloc((size_t)N * OC * sizeof(float));
    float *fl = xmalloc((size_t)N * OC * sizeof(float));
    test_set_threads(threads);
    linear_i8_pack(wq, ws, wsum, w, C, OC);
    linear_i8_forward(got, x, wq, ws, wsum, b, N, C, OC, scratch);
    linear_i8_forward_ref(want, x, w, b, N, C, OC);
    linear_forward_ref(fl, x, w, b, N, C, OC);
    int bad = 0;
    for (int n = 0; n < N && bad < 3; n++) {
        float xr = row_range(x + (size_t)n * C, C);
        for (int o = 0; o < OC && bad < 3; o++) {
            size_t i = (size_t)n * OC + o;
            if (memcmp(&got[i], &want[i], sizeof(float)) != 0) {
                CHECK(0, "%s N %d C %d OC %d bias %d threads %d: out[%d, %d] = %.9g, ref %.9g (expected equal bits)",
                      variant, N, C, OC, with_bias, threads, n, o, got[i], want[i]);
                bad++;
            }
            float wm = row_max(w + (size_t)o * C, C);
            double dx = xr / 127.0 / 2, dw = wm / 127.0 / 2, bound = 0;
            for (int c = 0; c < C; c++)
                bound += fabs(x[(size_t)n * C + c]) * dw + fabs(w[(size_t)o * C + c]) * dx + dx * dw;
            bound += 1e-5 * (fabs(fl[i]) + 1e-3);
            if (fabs((double)got[i] - fl[i]) > bound) {
                CHECK(0, "%s N %d C %d OC %d: out[%d, %d] = %.9g, float %.9g (bound %g)", variant, N, C, OC, n, o,
                      got[i], fl[i], bound);
                bad++;
            }
        }
    }
    free(x), free(w), free(b), free(wq), free(ws), free(wsum), free(scratch), free(got), free(want), free(fl);
}

static void check_bf16(int N, int C, int OC, int with_bias, int threads, const char *variant)
{
    float *x = rnd((size_t)N * C, 2.0f), *w = rnd((size_t)OC * C, 0.5f), *b = with_bias ? rnd(OC, 1) : NULL;
    uint16_t *wb = xmalloc(linear_bf16_weight_elems(C, OC) * 2);
    void *scratch = xmalloc(linear_bf16_scratch_bytes(N, C));
    float *got = xmalloc((size_t)N * OC * sizeof(float)), *want = xmalloc((size_t)N * OC * sizeof(float));
    float *fl = xmalloc((size_t)N * OC * sizeof(float));
    test_set_threads(threads);
    linear_bf16_pack(wb, w, C, OC);
    linear_bf16_forward(got, x, wb, b, N, C, OC, scratch);
    linear_bf16_forward_ref(want, x, w, b, N, C, OC);
    linear_forward_ref(fl, x, w, b, N, C, OC);
    const double u = ldexp(1.0, -23);
    int bad = 0;
    for (int n = 0; n < N && bad < 3; n++)
        for (int o = 0; o < OC && bad < 3; o++) {
            size_t i = (size_t)n * OC + o;
            double sabs = 0;
            for (int c = 0; c < C; c++)
                sabs += fabs((double)x[(size_t)n * C + c] * w[(size_t)o * C + c]);
            double tol = C * u * sabs + u * fabs(want[i]) + 1e-30;
            if (fabs((double)got[i] - want[i]) > tol) {
                CHECK(0, "%s N %d C %d OC %d bias %d threads %d: out[%d, %d] = %.9g, ref %.9g (tolerance %g)",
                      variant, N, C, OC, with_bias, threads, n, o, got[i], want[i], tol);
                bad++;
            }
            double tolf = ldexp(sabs, -7) * 1.01 + tol;
            if (fabs((double)got[i] - fl[i]) > tolf) {
                CHECK(0, "%s N %d C %d OC %d: out[%d, %d] = %.9g, float %.9g (tolerance %g)", variant, N, C, OC, n,
                      o, got[i], fl[i], tolf);
                bad++;
            }
        }
    free(x), free(w), free(b), free(wb), free(scratch), free(got), free(want), free(fl);
}

/* Runs fn on each variant of the current path: on avx512, with and
 * without VNNI / BF16 (those the CPU has). */
static void each_variant(void (*fn)(const char *variant), int bf16)
{
    if (kern->isa != ISA_AVX512) {
        fn(bf16 ? linear_bf16_path() : linear_i8_path());
        return;
    }
    kern_extras_t saved = kern_extras;
    for (int with = 1; with >= 0; with--) {
        int ok = bf16 ? kern_select_extras(saved.vnni, with) : kern_select_extras(with, saved.bf16);
        if (!ok) {
            printf("skip %s variant of the avx512 path: this CPU lacks %s\n", bf16 ? "bf16" : "vnni",
                   bf16 ? "avx512_bf16" : "avx512_vnni");
            continue;
        }
        fn(bf16 ? linear_bf16_path() : linear_i8_path());
    }
    kern_extras = saved;
}

static const int shapes[][3] = {{1, 1, 1},      {1, 256, 768}, {2, 256, 1024}, {7, 1024, 256}, {1, 64, 4001},
                                {128, 256, 250}, {3, 5, 17},    {64, 33, 65},   {5, 255, 129}, {32, 512, 2048}};

static void i8_rows(const char *v)
{
    qkv_rng_seed(&rng, 1);
    for (int N = 1; N <= 17; N++)
        check_i8(N, 37, 16 * 9 + 3, N % 2, 1, v);
}

static void i8_shapes(const char *v)
{
    qkv_rng_seed(&rng, 2);
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int threads = 1; threads <= 2; threads++)
            check_i8(shapes[i][0], shapes[i][1], shapes[i][2], (int)i % 2, threads, v);
}

static void bf16_rows(const char *v)
{
    qkv_rng_seed(&rng, 3);
    for (int N = 1; N <= 17; N++)
        check_bf16(N, 37, 16 * 9 + 3, N % 2, 1, v);
}

static void bf16_shapes(const char *v)
{
    qkv_rng_seed(&rng, 4);
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int threads = 1; threads <= 2; threads++)
            check_bf16(shapes[i][0], shapes[i][1], shapes[i][2], (int)i % 2, threads, v);
}

static void test_i8_every_row_count(void) { each_variant(i8_rows, 0); }
static void test_i8_odd_and_model_shapes(void) { each_variant(i8_shapes, 0); }
static void test_bf16_every_row_count(void) { each_variant(bf16_rows, 1); }
static void test_bf16_odd_and_model_shapes(void) { each_variant(bf16_shapes, 1); }

/* |x - dequant(quant(x))| <= scale / 2 per element; the largest element
 * maps to +-127 exactly; a zero row has scale 0 and dequantizes to zeros. */
static void test_i8_round_trip(void)
{
    qkv_rng_seed(&rng, 5);
    int N = 4, C = 51, ldq = 56;
    float *x = rnd((size_t)N * C, 3.0f), *y = xmalloc((size_t)N * C * sizeof(float)), sc[4];
    memset(x + 2 * C, 0, (size_t)C * sizeof(float));
    x[5] = -7.5f; /* row 0's max */
    int8_t *q = xmalloc((size_t)N * ldq);
    quantize_rows_s8(q, sc, x, N, C, ldq);
    dequantize_rows_s8(y, q, sc, N, C, ldq);
    CHECK(q[5] == -127, "q of the row maximum -7.5 is %d, expected -127", q[5]);
    CHECK(sc[0] == 7.5f / 127.0f, "scale of row 0 is %.9g, expected %.9g", sc[0], 7.5f / 127.0f);
    CHECK(sc[2] == 0.0f, "scale of a zero row is %g", sc[2]);
    for (int n = 0; n < N; n++) {
        for (int c = C; c < ldq; c++)
            CHECK(q[(size_t)n * ldq + c] == 0, "padding q[%d, %d] = %d, expected 0", n, c, q[(size_t)n * ldq + c]);
        for (int c = 0; c < C; c++) {
            size_t i = (size_t)n * C + c;
            double e = fabs((double)x[i] - y[i]), tol = sc[n] / 2 * (1 + 1e-6);
            if (e > tol) {
                CHECK(0, "round trip x[%d, %d] = %.9g -> %.9g (error %g > %g)", n, c, x[i], y[i], e, tol);
                break;
            }
        }
    }
    free(x), free(y), free(q);
}

/* 7-bit activations: |x - dequant(quant(x))| <= scale / 2; 0 maps to the
 * zero point exactly; a row of one sign keeps the symmetric 8-bit steps
 * (its largest |x| maps to 127 or 0); a zero row has scale 0; the
 * values and padding stay in [0, 127] and 0. */
static void test_u7_round_trip(void)
{
    qkv_rng_seed(&rng, 8);
    int N = 5, C = 51, ldq = 56;
    float *x = rnd((size_t)N * C, 3.0f), *y = xmalloc((size_t)N * C * sizeof(float)), sc[5];
    int32_t z[5];
    memset(x + 2 * C, 0, (size_t)C * sizeof(float));
    x[5] = -7.5f, x[6] = 0.0f; /* row 0: min -7.5, a zero */
    for (int c = 0; c < C; c++) {
        x[3 * C + c] = fabsf(x[3 * C + c]); /* row 3: >= 0 (a ReLU output) */
        x[4 * C + c] = -fabsf(x[4 * C + c]); /* row 4: <= 0 */
    }
    x[3 * C + 9] = 4.0f, x[4 * C + 9] = -4.0f;
    x[C + 3] = NAN; /* row 1: quantized as 0.0 */
    uint8_t *q = xmalloc((size_t)N * ldq);
    quantize_rows_u7(q, sc, z, x, N, C, ldq);
    dequantize_rows_u7(y, q, sc, z, N, C, ldq);
    CHECK(q[5] == 0, "q of the row minimum -7.5 is %d, expected 0", q[5]);
    CHECK(q[6] == z[0], "q of 0.0 is %d, expected the zero point %d", q[6], z[0]);
    CHECK(q[ldq + 3] == z[1], "q of NaN is %d, expected the zero point %d", q[ldq + 3], z[1]);
    CHECK(y[6] == 0.0f, "0.0 dequantizes to %g", y[6]);
    CHECK(sc[0] == row_range(x, C) / 127.0f, "scale of row 0 is %.9g, expected %.9g", sc[0], row_range(x, C) / 127.0f);
    CHECK(sc[2] == 0.0f && z[2] == 0, "zero row: scale %g, zero point %d", sc[2], z[2]);
    CHECK(z[3] == 0 && sc[3] == 4.0f / 127.0f && q[3 * ldq + 9] == 127,
          "row >= 0: zero point %d, scale %.9g, q(max) %d; expected 0, %.9g, 127", z[3], sc[3], q[3 * ldq + 9],
          4.0f / 127.0f);
    CHECK(z[4] == 127 && sc[4] == 4.0f / 127.0f && q[4 * ldq + 9] == 0,
          "row <= 0: zero point %d, scale %.9g, q(min) %d; expected 127, %.9g, 0", z[4], sc[4], q[4 * ldq + 9],
          4.0f / 127.0f);
    for (int n = 0; n < N; n++) {
        CHECK(z[n] >= 0 && z[n] <= 127, "zero point of row %d is %d", n, z[n]);
        for (int c = C; c < ldq; c++)
            CHECK(q[(size_t)n * ldq + c] == 0, "padding q[%d, %d] = %d, expected 0", n, c, q[(size_t)n * ldq + c]);
        for (int c = 0; c < C; c++) {
            size_t i = (size_t)n * C + c;
            CHECK(q[(size_t)n * ldq + c] <= 127, "q[%d, %d] = %d > 127", n, c, q[(size_t)n * ldq + c]);
            if (isnan(x[i]))
                continue;
            double e = fabs((double)x[i] - y[i]), tol = sc[n] / 2 * (1 + 1e-5);
            if (e > tol) {
                CHECK(0, "round trip x[%d, %d] = %.9g -> %.9g (error %g > %g)", n, c, x[i], y[i], e, tol);
                break;
            }
        }
    }
    free(x), free(y), free(q);
}

static void test_bf16_round_trip(void)
{
    qkv_rng_seed(&rng, 6);
    size_t n = 1000;
    float *x = rnd(n, 100.0f), *y = xmalloc(n * sizeof(float)), *z = xmalloc(n * sizeof(float));
    uint16_t *b = xmalloc(n * 2), *b2 = xmalloc(n * 2);
    float_to_bf16(b, x, n);
    bf16_to_float(y, b, n);
    float_to_bf16(b2, y, n);
    bf16_to_float(z, b2, n);
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)x[i] - y[i]), tol = ldexp(fabs(x[i]), -8) * 1.0001; /* half a step of 8 bits */
        CHECK(e <= tol, "bf16(%.9g) = %.9g, error %g > %g", x[i], y[i], e, tol);
        CHECK(b[i] == b2[i], "bf16 of the bf16 value %.9g changed: %04x -> %04x", y[i], b[i], b2[i]);
        if (e > tol || b[i] != b2[i])
            break;
    }
    /* ties go to even: 1 + 2^-8 is halfway between 1 and 1 + 2^-7 */
    float t[3] = {1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, NAN};
    uint16_t tb[3];
    float_to_bf16(tb, t, 3);
    CHECK(tb[0] == 0x3f80, "bf16(1 + 2^-8) = %04x, expected 3f80 (tie to even)", tb[0]);
    CHECK(tb[1] == 0x3f82, "bf16(1 + 3 2^-8) = %04x, expected 3f82 (tie to even)", tb[1]);
    float back;
    bf16_to_float(&back, &tb[2], 1);
    CHECK(isnan(back), "bf16 of NaN is %04x, not a NaN", tb[2]);
    free(x), free(y), free(z), free(b), free(b2);
}

/* a row alone gives the same bits as inside a batch (int8), whatever the
 * block it falls in */
static void test_i8_row_independent_of_batch(void)
{
    qkv_rng_seed(&rng, 7);
    int N = 9, C = 48, OC = 70;
    float *x = rnd((size_t)N * C, 1), *w = rnd((size_t)OC * C, 1), *b = rnd(OC, 1);
    int8_t *wq = xmalloc(linear_i8_weight_bytes(C, OC));
    float *ws = xmalloc(linear_i8_panel_floats(OC) * sizeof(float));
    int32_t *wsum = xmalloc(linear_i8_panel_floats(OC) * sizeof(int32_t));
    void *scratch = xmalloc(linear_i8_scratch_bytes(N, C));
    float *all = xmalloc((size_t)N * OC * sizeof(float)), *one = xmalloc((size_t)OC * sizeof(float));
    linear_i8_pack(wq, ws, wsum, w, C, OC);
    linear_i8_forward(all, x, wq, ws, wsum, b, N, C, OC, scratch);
    for (int n = 0; n < N; n++) {
        linear_i8_forward(one, x + (size_t)n * C, wq, ws, wsum, b, 1, C, OC, scratch);
        CHECK(memcmp(one, all + (size_t)n * OC, (size_t)OC * sizeof(float)) == 0,
              "row %d alone differs from the same row in a batch of %d", n, N);
    }
    free(x), free(w), free(b), free(wq), free(ws), free(wsum), free(scratch), free(all), free(one);
}

/* Activation rows whose scale comes from edge values: all negative, -0.0
 * and subnormals, magnitudes near FLT_MAX / 127, one large negative, a
 * NaN, a range below QU7_MIN_RANGE (the vector paths take the range on
 * the bits): the same bits as the twin, and finite outputs where the
 * input row is finite. */
static void test_i8_special_rows(void)
{
    qkv_rng_seed(&rng, 11);
    int N = 6, C = 37, OC = 21;
    float *x = rnd((size_t)N * C, 1), *w = rnd((size_t)OC * C, 1);
    for (int c = 0; c < C; c++) {
        x[c] = -fabsf(x[c]);                               /* row 0: all negative */
        x[C + c] = c % 3 == 0 ? -0.0f : (float)c * 1e-41f; /* row 1: -0 and subnormals */
        x[2 * C + c] *= 2e36f;                             /* row 2: huge */
    }
    x[3 * C + 5] = -7.25f; /* row 3: one large negative among small values */
    x[4 * C + 7] = NAN;    /* row 4: a NaN (skipped in the range, quantized as 0.0) */
    for (int c = 0; c < C; c++)
        x[5 * C + c] *= 1e-31f; /* row 5: a range below QU7_MIN_RANGE: zeros */
    int8_t *wq = xmalloc(linear_i8_weight_bytes(C, OC));
    float *ws = xmalloc(linear_i8_panel_floats(OC) * sizeof(float));
    int32_t *wsum = xmalloc(linear_i8_panel_floats(OC) * sizeof(int32_t));
    void *scratch = xmalloc(linear_i8_scratch_bytes(N, C));
    float *got = xmalloc((size_t)N * OC * sizeof(float)), *want = xmalloc((size_t)N * OC * sizeof(float));
    linear_i8_pack(wq, ws, wsum, w, C, OC);
    linear_i8_forward(got, x, wq, ws, wsum, NULL, N, C, OC, scratch);
    linear_i8_forward_ref(want, x, w, NULL, N, C, OC);
    for (int i = 0; i < N * OC; i++)
        if (memcmp(&got[i], &want[i], sizeof(float)) != 0 || !isfinite(got[i])) {
            CHECK(0, "row %d out %d: %.9g, ref %.9g (expected equal finite bits)", i / OC, i % OC, got[i], want[i]);
            break;
        }
    for (int o = 0; o < OC; o++)
        CHECK(got[5 * OC + o] == 0.0f, "a row of range 1e-31: out %d = %g, expected 0", o, got[5 * OC + o]);
    free(x), free(w), free(wq), free(ws), free(wsum), free(scratch), free(got), free(want);
}

/* The int8 sums through oneDNN's matmul (forced on, whatever the CPU):
 * the same bits as the twin, at odd shapes and the decoder's; skipped
 * when oneDNN has no engine. */
static void test_i8_onednn_sums(void)
{
    linear_i8_onednn_force(1);
    if (!linear_i8_onednn_wanted()) {
        printf("skip test_i8_onednn_sums: oneDNN has no CPU engine here\n");
        linear_i8_onednn_force(-1);
        return;
    }
    qkv_rng_seed(&rng, 13);
    /* the last: a wide output, in blocks of 32 rows (the last padded) */
    static const int sh[][3] = {{1, 37, 21}, {5, 33, 65}, {64, 256, 250}, {130, 255, 129}, {7, 1024, 256}, {100, 64, 5000}};
    for (size_t i = 0; i < sizeof sh / sizeof sh[0]; i++)
        for (int threads = 1; threads <= 2; threads++) {
            int N = sh[i][0], C = sh[i][1], OC = sh[i][2];
            test_set_threads(threads);
            float *x = rnd((size_t)N * C, 2.0f), *w = rnd((size_t)OC * C, 0.5f), *b = rnd(OC, 1);
            for (int c = 0; c < C; c++)
                x[c] = fabsf(x[c]); /* a row of one sign */
            int8_t *wq = xmalloc(linear_i8_weight_bytes(C, OC)), *rows = xmalloc((size_t)OC * C);
            float *ws = xmalloc(linear_i8_panel_floats(OC) * sizeof(float)), *sc = xmalloc(OC * sizeof(float));
            int32_t *wsum = xmalloc(linear_i8_panel_floats(OC) * sizeof(int32_t));
            void *scratch = xmalloc(linear_i8_scratch_bytes(N, C));
            float *got = xmalloc((size_t)N * OC * sizeof(float)), *want = xmalloc((size_t)N * OC * sizeof(float));
            linear_i8_pack(wq, ws, wsum, w, C, OC);
            quantize_rows_s8(rows, sc, w, OC, C, C);
            /* the sums themselves come from oneDNN (not a fallback) */
            uint8_t *xq = xmalloc((size_t)N * C);
            float *xs = xmalloc(N * sizeof(float));
            int32_t *xz = xmalloc(N * sizeof(int32_t));
            quantize_rows_u7(xq, xs, xz, x, N, C, C);
            i8_onednn_weight *wd = linear_i8_onednn_pack(rows, C, OC);
            CHECK(wd != NULL, "oneDNN refused to reorder the weight of C %d OC %d into its layout", C, OC);
            CHECK(linear_i8_onednn_weight_bytes(wd) >= (size_t)OC * C, "oneDNN's layout holds %zu bytes for %d x %d",
                  linear_i8_onednn_weight_bytes(wd), OC, C);
            /* with unit scales and no zero points the store gives the sums
             * themselves, exact in float (|sum| <= 127^2 C < 2^24) */
            float *one = xmalloc(OC * sizeof(float)), *sums = xmalloc((size_t)N * OC * sizeof(float));
            int32_t *zero = xmalloc((N > OC ? N : OC) * sizeof(int32_t));
            memset(zero, 0, (N > OC ? N : OC) * sizeof(int32_t));
            for (int o = 0; o < OC; o++)
                one[o] = 1;
            float *xone = xmalloc(N * sizeof(float));
            for (int n = 0; n < N; n++)
                xone[n] = 1;
            int ran = wd && linear_i8_onednn(sums, xq, C, xone, zero, wd, one, zero, NULL, N, C, OC);
            CHECK(ran, "oneDNN refused the u8 x s8 sums of N %d C %d OC %d", N, C, OC);
            for (int j = 0; ran && j < N * OC; j++) {
                int32_t e = 0;
                for (int c = 0; c < C; c++)
                    e += (int32_t)xq[(size_t)(j / OC) * C + c] * rows[(size_t)(j % OC) * C + c];
                if (sums[j] != (float)e) {
                    CHECK(0, "oneDNN sum [%d, %d] = %.0f, expected %d", j / OC, j % OC, sums[j], e);
                    break;
                }
            }
            free(one), free(sums), free(zero), free(xone);
            free(xq), free(xs), free(xz);
            linear_i8_forward_rows(got, x, wq, ws, wsum, wd, i % 2 ? NULL : b, N, C, OC, scratch);
            linear_i8_onednn_weight_free(wd);
            linear_i8_forward_ref(want, x, w, i % 2 ? NULL : b, N, C, OC);
            for (int j = 0; j < N * OC; j++)
                if (memcmp(&got[j], &want[j], sizeof(float)) != 0) {
                    CHECK(0, "oneDNN sums, N %d C %d OC %d threads %d: out[%d, %d] = %.9g, ref %.9g (expected equal bits)",
                          N, C, OC, threads, j / OC, j % OC, got[j], want[j]);
                    break;
                }
            free(x), free(w), free(b), free(wq), free(rows), free(ws), free(sc), free(wsum), free(scratch), free(got),
                free(want);
        }
    linear_i8_onednn_force(-1);
}

/* oneDNN's reference implementations are refused: a u8 operand with an
 * element stride of 2, which only "ref_int8:any" takes, returns 0 and
 * leaves C as it was, asked twice (the second from the kept refusal);
 * the same product on dense rows runs, exactly. Skipped without an
 * engine. */
static void test_onednn_refuses_reference(void)
{
    if (!onednn_engine()) {
        printf("skip test_onednn_refuses_reference: oneDNN has no CPU engine here\n");
        return;
    }
    enum { M = 40, K = 48, N = 24 };
    static uint8_t a[M * K * 2];
    static int8_t b[K * N];
    static int32_t c[M * N];
    for (int i = 0; i < M * K * 2; i++)
        a[i] = (uint8_t)(i * 7 % 128);
    for (int i = 0; i < K * N; i++)
        b[i] = (int8_t)(i * 5 % 255 - 127);
    dnnl_memory_desc_t amd, dense, bmd, cmd;
    dnnl_dims_t ad = {M, K}, bd = {K, N}, cd = {M, N};
    dnnl_dims_t as = {2 * K, 2}, ds = {K, 1}, bs = {N, 1}, cs = {N, 1};
    CHECK(dnnl_memory_desc_init_by_strides(&amd, 2, ad, dnnl_u8, as) == dnnl_success &&
              dnnl_memory_desc_init_by_strides(&dense, 2, ad, dnnl_u8, ds) == dnnl_success &&
              dnnl_memory_desc_init_by_strides(&bmd, 2, bd, dnnl_s8, bs) == dnnl_success &&
              dnnl_memory_desc_init_by_strides(&cmd, 2, cd, dnnl_s32, cs) == dnnl_success,
          "memory descriptors");
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < M * N; i++)
            c[i] = -7;
        CHECK(!onednn_matmul(&amd, a, &bmd, b, &cmd, c, 1.0f, 0.0f, 1),
              "a u8 operand of element stride 2 (reference implementation only): ran, expected refused (ask %d)", k + 1);
        int same = 1;
        for (int i = 0; i < M * N; i++)
            same &= c[i] == -7;
        CHECK(same, "a refused product wrote C (ask %d)", k + 1);
    }
    CHECK(onednn_matmul(&dense, a, &bmd, b, &cmd, c, 1.0f, 0.0f, 1), "oneDNN refused dense u8 x s8 rows");
    for (int i = 0; i < M * N; i++) {
        int32_t e = 0;
        for (int j = 0; j < K; j++)
            e += (int32_t)a[(i / N) * K + j] * b[j * N + i % N];
        if (c[i] != e) {
            CHECK(0, "dense u8 x s8: C[%d, %d] = %d, expected %d", i / N, i % N, c[i], e);
            break;
        }
    }
}

static const test_case cases[] = {
    TEST(test_i8_round_trip),
    TEST(test_u7_round_trip),
    TEST(test_bf16_round_trip),
    TEST(test_i8_every_row_count),
    TEST(test_i8_odd_and_model_shapes),
    TEST(test_i8_row_independent_of_batch),
    TEST(test_i8_special_rows),
    TEST(test_i8_onednn_sums),
    TEST(test_onednn_refuses_reference),
    TEST(test_bf16_every_row_count),
    TEST(test_bf16_odd_and_model_shapes),
};

int main(int argc, char **argv) { return test_main_per_isa(argc, argv, cases, TEST_COUNT(cases)); }
