/* Optimised kernels against their plain float *_ref twins (kernels_ref.h)
 * on random shapes, odd sizes included, with padding and causal masks.
 * Gradients are pre-filled with random values before every backward in both
 * versions, so these tests also check that backward accumulates. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "kernels/kernels.h"
#include "kernels/kernels_ref.h"
#include "kernels/vmath.h"
#include "qkv.h"
#include "test.h"

/* Tolerances, relative to the largest reference magnitude (test_close_f32):
 * the optimised kernels reorder float sums (BLAS blocking, SIMD lanes) and
 * use vexpf/verff, so they differ from the plain loops by a few ulp per
 * term. */
#define TOL_EXACT 0.0
#define TOL_F32 2e-6
#define TOL_SUM 1e-5 /* results of long (K >= 100) float sums */

static qkv_rng rng;

/* Allocations of the current case, freed by free_all(). */
static void *allocs[256];
static int nallocs;

static float *alloc_f(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p)
        abort();
    allocs[nallocs++] = p;
    return p;
}

static float *rnd(size_t n, float scale)
{
    float *p = alloc_f(n);
    for (size_t i = 0; i < n; i++)
        p[i] = scale * (2 * qkv_rng_uniform(&rng) - 1);
    return p;
}

static float *dup(const float *src, size_t n)
{
    float *p = alloc_f(n);
    memcpy(p, src, n * sizeof(float));
    return p;
}

static void free_all(void)
{
    while (nallocs > 0)
        free(allocs[--nallocs]);
}

static void test_vmath_accuracy(void)
{
    double worst_exp = 0, worst_erf = 0;
    float at_exp = 0, at_erf = 0;
    for (int i = 0; i <= 200000; i++) {
        float x = -87.0f + 175.0f * i / 200000;
        double e = fabs((double)vexpf(x) - exp((double)x)) / exp((double)x);
        if (e > worst_exp) {
            worst_exp = e;
            at_exp = x;
        }
        float y = -6.0f + 12.0f * i / 200000;
        double d = fabs((double)verff(y) - erf((double)y));
        if (d > worst_erf) {
            worst_erf = d;
            at_erf = y;
        }
    }
    CHECK(worst_exp < 4e-7, "vexpf relative error %.3g at x = %.9g", worst_exp, at_exp);
    CHECK(worst_erf < 4e-7, "verff absolute error %.3g at x = %.9g", worst_erf, at_erf);
    CHECK(vexpf(-INFINITY) == 0 && vexpf(-100.0f) == 0, "vexpf(-inf) = %g", vexpf(-INFINITY));
    CHECK(isnan(vexpf(NAN)), "vexpf(NaN) = %g", vexpf(NAN));
    CHECK(isfinite(vexpf(1000.0f)), "vexpf(1000) = %g", vexpf(1000.0f));
    CHECK(vexpf(0) == 1.0f, "vexpf(0) = %.9g", vexpf(0));
}

static void check_gemm(int ta, int tb, int M, int N, int K, float alpha, float beta, int pad)
{
    int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    int arows = ta ? K : M, brows = tb ? N : K;
    float *A = rnd((size_t)arows * lda, 1), *B = rnd((size_t)brows * ldb, 1);
    float *C = rnd((size_t)M * ldc, 1);
    if (beta == 0)
        for (size_t i = 0; i < (size_t)M * ldc; i++)
            C[i] = NAN; /* beta = 0 must not read C */
    float *C2 = dup(C, (size_t)M * ldc), *C0 = dup(C, (size_t)M * ldc);
    gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    gemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C2, ldc);
    /* The rounding error of a float sum of K products is at most
     * (K + 2) eps sum_k |a b| (+ the beta term): a bound that holds whatever
     * order the BLAS of this CPU sums in, where a tolerance relative to the
     * result fails on sums that cancel. */
    float *Aa = dup(A, (size_t)arows * lda), *Ba = dup(B, (size_t)brows * ldb), *Cb = alloc_f((size_t)M * ldc);
    for (size_t i = 0; i < (size_t)arows * lda; i++)
        Aa[i] = fabsf(Aa[i]);
    for (size_t i = 0; i < (size_t)brows * ldb; i++)
        Ba[i] = fabsf(Ba[i]);
    gemm_ref(ta, tb, M, N, K, fabsf(alpha), Aa, lda, Ba, ldb, 0.0f, Cb, ldc);
    int bad = 0;
    for (int i = 0; i < M && bad < 3; i++)
        for (int j = 0; j < N && bad < 3; j++) {
            size_t at = (size_t)i * ldc + j;
            double bound = (K + 2) * (double)FLT_EPSILON * (Cb[at] + (beta ? fabs(beta * C0[at]) : 0)) + 1e-30;
            if (!(fabs((double)C[at] - C2[at]) <= bound)) {
                CHECK(0, "gemm ta=%d tb=%d M=%d N=%d K=%d beta=%g: C[%d,%d] = %.9g, ref %.9g (bound %.3g)", ta, tb, M,
                      N, K, beta, i, j, C[at], C2[at], bound);
                bad++;
            }
        }
    free_all();
}

static void test_gemm(void)
{
    /* the last two are large enough for gemm.c to cut C in blocks (of 256),
     * by rows (M >= N) and by columns, with a partial last block */
    static const int sizes[][3] = {{1, 1, 1},   {3, 7, 5},    {33, 65, 17}, {64, 64, 64},
                                   {7, 1, 130}, {129, 33, 3}, {600, 70, 30}, {33, 600, 70}};
    int threads = test_threads();
    test_set_threads(2);
    for (int s = 0; s < 8; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                check_gemm(ta, tb, sizes[s][0], sizes[s][1], sizes[s][2], 1.0f, 0.0f, 0);
                check_gemm(ta, tb, sizes[s][0], sizes[s][1], sizes[s][2], 0.5f, 1.0f, 3);
            }
    /* K = 0: C = beta C */
    float c[4] = {1, 2, 3, 4};
    gemm(0, 0, 2, 2, 0, 1.0f, NULL, 0, NULL, 0, 2.0f, c, 2);
    CHECK(c[0] == 2 && c[3] == 8, "K=0 gave %g %g", c[0], c[3]);
    test_set_threads(threads);
    free_all();
}

static void test_gemm_batched(void)
{
    /* small products (threads take whole products) and large ones (one by
     * one, threaded inside the BLAS) take different paths in gemm.c */
    static const int sizes[][4] = {{7, 9, 5, 6}, {70, 71, 72, 3}};
    for (int s = 0; s < 2; s++) {
        int M = sizes[s][0], N = sizes[s][1], K = sizes[s][2], count = sizes[s][3];
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                size_t sa = (size_t)M * K + 3, sb = (size_t)K * N + 1, sc = (size_t)M * N + 2;
                float *A = rnd(sa * count, 1), *B = rnd(sb * count, 1), *C = rnd(sc * count, 1);
                float *C2 = dup(C, sc * count);
                gemm_batched(ta, tb, M, N, K, 0.7f, A, ta ? M : K, sa, B, tb ? K : N, sb, 1.0f, C, N, sc, count);
                for (int i = 0; i < count; i++)
                    gemm_ref(ta, tb, M, N, K, 0.7f, A + i * sa, ta ? M : K, B + i * sb, tb ? K : N, 1.0f,
                             C2 + i * sc, N);
                CHECK_CLOSE_F32(C, C2, sc * count, TOL_SUM, "gemm_batched");
            }
    }
    free_all();
}

static void test_linear(void)
{
    static const int shapes[][3] = {{1, 1, 1}, {3, 7, 5}, {33, 65, 17}, {65, 33, 130}, {8, 512, 7}};
    for (int s = 0; s < 5; s++) {
        int N = shapes[s][0], C = shapes[s][1], OC = shapes[s][2];
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            float *inp = rnd((size_t)N * C, 1), *w = rnd((size_t)OC * C, 1), *b = with_bias ? rnd(OC, 1) : NULL;
            float *out = alloc_f((size_t)N * OC), *out2 = alloc_f((size_t)N * OC);
            linear_forward(out, inp, w, b, N, C, OC);
            linear_forward_ref(out2, inp, w, b, N, C, OC);
            CHECK_CLOSE_F32(out, out2, (size_t)N * OC, TOL_SUM, "linear forward");
            float *dout = rnd((size_t)N * OC, 1);
            float *dinp = rnd((size_t)N * C, 1), *dw = rnd((size_t)OC * C, 1), *db = rnd(OC, 1);
            float *dinp2 = dup(dinp, (size_t)N * C), *dw2 = dup(dw, (size_t)OC * C), *db2 = dup(db, OC);
            linear_backward(dinp, dw, with_bias ? db : NULL, dout, inp, w, N, C, OC);
            linear_backward_ref(dinp2, dw2, with_bias ? db2 : NULL, dout, inp, w, N, C, OC);
            CHECK_CLOSE_F32(dinp, dinp2, (size_t)N * C, TOL_SUM, "linear dinp");
            CHECK_CLOSE_F32(dw, dw2, (size_t)OC * C, TOL_SUM, "linear dweight");
            CHECK_CLOSE_F32(db, db2, OC, TOL_SUM, "linear dbias");
            /* dinp NULL: weights still get their gradient */
            float *dw3 = dup(dw, (size_t)OC * C);
            linear_backward(NULL, dw3, NULL, dout, inp, w, N, C, OC);
            linear_backward_ref(NULL, dw2, NULL, dout, inp, w, N, C, OC);
            CHECK_CLOSE_F32(dw3, dw2, (size_t)OC * C, TOL_SUM, "linear dweight (dinp NULL)");
        }
    }
    free_all();
}

static void test_embedding(void)
{
    int B = 3, T = 7, C = 130, V = 11, P = 12, off = 4;
    int ids[21];
    for (int i = 0; i < B * T; i++)
        ids[i] = (int)qkv_rng_below(&rng, 4); /* many repeats */
    ids[5] = V - 1;
    float *table = rnd((size_t)V * C, 1), *pos = rnd((size_t)P * C, 1);
    for (int with_pos = 0; with_pos < 2; with_pos++) {
        float *out = alloc_f((size_t)B * T * C), *out2 = alloc_f((size_t)B * T * C);
        embedding_forward(out, ids, table, with_pos ? pos : NULL, B, T, C, off, 22.6f);
        embedding_forward_ref(out2, ids, table, with_pos ? pos : NULL, B, T, C, off, 22.6f);
        CHECK_CLOSE_F32(out, out2, (size_t)B * T * C, TOL_EXACT, "embedding forward");
        float *dout = rnd((size_t)B * T * C, 1);
        float *dt = rnd((size_t)V * C, 1), *dp = rnd((size_t)P * C, 1);
        float *dt2 = dup(dt, (size_t)V * C), *dp2 = dup(dp, (size_t)P * C);
        embedding_backward(dt, with_pos ? dp : NULL, dout, ids, B, T, C, off, 22.6f);
        embedding_backward_ref(dt2, with_pos ? dp2 : NULL, dout, ids, B, T, C, off, 22.6f);
        CHECK_CLOSE_F32(dt, dt2, (size_t)V * C, TOL_F32, "embedding dtable");
        CHECK_CLOSE_F32(dp, dp2, (size_t)P * C, TOL_F32, "embedding dpos");
    }
    free_all();
}

static void test_sinusoidal(void)
{
    int P = 67, C = 34;
    float *t = alloc_f((size_t)P * C), *t2 = alloc_f((size_t)P * C);
    sinusoidal_positions(t, P, C);
    sinusoidal_positions_ref(t2, P, C);
    CHECK_CLOSE_F32(t, t2, (size_t)P * C, TOL_EXACT, "sinusoidal");
    /* position 0: sin 0 = 0 in the first half, cos 0 = 1 in the second */
    CHECK(t[0] == 0 && t[C / 2] == 1 && t[C - 1] == 1, "row 0: %g %g %g", t[0], t[C / 2], t[C - 1]);
    /* p = 1, j = 0: sin(1) */
    CHECK(fabsf(t[C] - sinf(1)) < 1e-7f, "table[1,0] = %.9g", t[C]);
    free_all();
}

static void test_layernorm(void)
{
    /* 70 rows: more than one chunk of the one-pass backward; C = 4100:
     * wider than it takes, so the two-pass one runs */
    static const int shapes[][2] = {{1, 1}, {3, 7}, {33, 65}, {70, 512}, {2, 1031}, {9, 4100}};
    for (int s = 0; s < 6; s++) {
        int N = shapes[s][0], C = shapes[s][1];
        float *inp = rnd((size_t)N * C, 2);
        for (size_t i = 0; i < (size_t)C; i++)
            inp[i] += 100; /* a row with |mean| >> std */
        float *w = rnd(C, 1), *b = rnd(C, 1);
        float *out = alloc_f((size_t)N * C), *mean = alloc_f(N), *rstd = alloc_f(N);
        float *out2 = alloc_f((size_t)N * C), *mean2 = alloc_f(N), *rstd2 = alloc_f(N);
        layernorm_forward(out, mean, rstd, inp, w, b, N, C, 1e-5f);
        layernorm_forward_ref(out2, mean2, rstd2, inp, w, b, N, C, 1e-5f);
        CHECK_CLOSE_F32(out, out2, (size_t)N * C, TOL_SUM, "layernorm out");
        CHECK_CLOSE_F32(mean, mean2, N, TOL_F32, "layernorm mean");
        CHECK_CLOSE_F32(rstd, rstd2, N, TOL_SUM, "layernorm rstd");
        float *dout = rnd((size_t)N * C, 1);
        float *dinp = rnd((size_t)N * C, 1), *dw = rnd(C, 1), *db = rnd(C, 1);
        float *dinp2 = dup(dinp, (size_t)N * C), *dw2 = dup(dw, C), *db2 = dup(db, C);
        layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, C);
        layernorm_backward_ref(dinp2, dw2, db2, dout, inp, w, mean2, rstd2, N, C);
        CHECK_CLOSE_F32(dinp, dinp2, (size_t)N * C, TOL_SUM, "layernorm dinp");
        CHECK_CLOSE_F32(dw, dw2, C, TOL_SUM, "layernorm dweight");
        CHECK_CLOSE_F32(db, db2, C, TOL_SUM, "layernorm dbias");
    }
    free_all();
}

static void test_heads(void)
{
    int B = 2, T = 5, H = 3, D = 7, ld = H * D + 4;
    size_t n = (size_t)B * H * T * D;
    float *inp = rnd((size_t)B * T * ld, 1);
    float *o = alloc_f(n), *o2 = alloc_f(n);
    heads_split_forward(o, inp, B, T, H, D, ld);
    heads_split_forward_ref(o2, inp, B, T, H, D, ld);
    CHECK_CLOSE_F32(o, o2, n, TOL_EXACT, "split forward");
    float *g = rnd(n, 1), *d = rnd((size_t)B * T * ld, 1), *d2 = dup(d, (size_t)B * T * ld);
    heads_split_backward(d, g, B, T, H, D, ld);
    heads_split_backward_ref(d2, g, B, T, H, D, ld);
    CHECK_CLOSE_F32(d, d2, (size_t)B * T * ld, TOL_EXACT, "split backward");
    float *m = alloc_f(n), *m2 = alloc_f(n);
    heads_merge_forward(m, o, B, T, H, D);
    heads_merge_forward_ref(m2, o, B, T, H, D);
    CHECK_CLOSE_F32(m, m2, n, TOL_EXACT, "merge forward");
    /* merge undoes split when ld = H*D */
    float *x = rnd(n, 1), *y = alloc_f(n), *z = alloc_f(n);
    heads_split_forward(y, x, B, T, H, D, H * D);
    heads_merge_forward(z, y, B, T, H, D);
    CHECK_CLOSE_F32(z, x, n, TOL_EXACT, "merge(split(x))");
    float *dm = rnd(n, 1), *dm2 = dup(dm, n);
    heads_merge_backward(dm, g, B, T, H, D);
    heads_merge_backward_ref(dm2, g, B, T, H, D);
    CHECK_CLOSE_F32(dm, dm2, n, TOL_EXACT, "merge backward");
    free_all();
}

/* One attention configuration: forward and backward against the ref. */
static void check_attention(int B, int H, int Tq, int Tk, int D, const int *key_len, int causal, int drop)
{
    size_t nq = (size_t)B * H * Tq * D, nk = (size_t)B * H * Tk * D, np = (size_t)B * H * Tq * Tk;
    float *q = rnd(nq, 1.5f), *k = rnd(nk, 1.5f), *v = rnd(nk, 1);
    float *mask = NULL;
    if (drop) {
        mask = alloc_f(np);
        dropout_mask(mask, np, 0.3f, 99);
    }
    float *out = alloc_f(nq), *probs = alloc_f(np), *out2 = alloc_f(nq), *probs2 = alloc_f(np);
    attention_forward(out, probs, q, k, v, key_len, causal, mask, B, H, Tq, Tk, D);
    attention_forward_ref(out2, probs2, q, k, v, key_len, causal, mask, B, H, Tq, Tk, D);
    char what[128];
    snprintf(what, sizeof what, "attention B=%d H=%d Tq=%d Tk=%d D=%d pad=%d causal=%d drop=%d", B, H, Tq, Tk, D,
             key_len != NULL, causal, drop);
    CHECK_CLOSE_F32(probs, probs2, np, TOL_F32, what);
    CHECK_CLOSE_F32(out, out2, nq, TOL_F32, what);
    float *dout = rnd(nq, 1), *scratch = alloc_f(np), *scratch2 = alloc_f(np);
    float *dq = rnd(nq, 1), *dk = rnd(nk, 1), *dv = rnd(nk, 1);
    float *dq2 = dup(dq, nq), *dk2 = dup(dk, nk), *dv2 = dup(dv, nk);
    attention_backward(dq, dk, dv, scratch, dout, probs, q, k, v, mask, B, H, Tq, Tk, D);
    attention_backward_ref(dq2, dk2, dv2, scratch2, dout, probs2, q, k, v, mask, B, H, Tq, Tk, D);
    CHECK_CLOSE_F32(dq, dq2, nq, TOL_SUM, what);
    CHECK_CLOSE_F32(dk, dk2, nk, TOL_SUM, what);
    CHECK_CLOSE_F32(dv, dv2, nk, TOL_SUM, what);
}

static void test_attention(void)
{
    static const int shapes[][5] = {{1, 1, 1, 1, 1}, {2, 3, 7, 7, 5}, {3, 2, 33, 33, 16},
                                    {2, 2, 5, 9, 8},  {1, 4, 1, 65, 64}, {2, 1, 9, 4, 3}};
    for (int s = 0; s < 6; s++) {
        int B = shapes[s][0], H = shapes[s][1], Tq = shapes[s][2], Tk = shapes[s][3], D = shapes[s][4];
        int key_len[3];
        for (int b = 0; b < B; b++)
            key_len[b] = Tk - (int)qkv_rng_below(&rng, (uint64_t)Tk); /* 1..Tk */
        for (int pad = 0; pad < 2; pad++)
            for (int causal = 0; causal < 2; causal++)
                for (int drop = 0; drop < 2; drop++)
                    check_attention(B, H, Tq, Tk, D, pad ? key_len : NULL, causal, drop);
        free_all();
    }
}

static void test_attention_fully_masked(void)
{
    /* key_len 0 for batch 1, and causal with Tq > Tk: query rows 0..Tq-Tk-1
     * see no key at all. Those rows must give zeros, never NaN. */
    int B = 2, H = 2, Tq = 6, Tk = 4, D = 3, key_len[2] = {4, 0};
    size_t nq = (size_t)B * H * Tq * D, nk = (size_t)B * H * Tk * D, np = (size_t)B * H * Tq * Tk;
    float *q = rnd(nq, 1), *k = rnd(nk, 1), *v = rnd(nk, 1), *out = alloc_f(nq), *probs = alloc_f(np);
    attention_forward(out, probs, q, k, v, key_len, 1, NULL, B, H, Tq, Tk, D);
    for (int h = 0; h < H; h++)
        for (int i = 0; i < Tq; i++) {
            const float *p0 = probs + ((size_t)h * Tq + i) * Tk;
            const float *p1 = probs + ((size_t)(H + h) * Tq + i) * Tk;
            float s0 = 0;
            for (int j = 0; j < Tk; j++) {
                CHECK(p1[j] == 0, "batch 1 (key_len 0) h=%d i=%d j=%d: prob %g", h, i, j, p1[j]);
                CHECK(j <= i - (Tq - Tk) || p0[j] == 0, "causal: h=%d i=%d sees key %d (%g)", h, i, j, p0[j]);
                s0 += p0[j];
            }
            float want = i < Tq - Tk ? 0 : 1;
            CHECK(fabsf(s0 - want) < 1e-6f, "h=%d row %d sums to %g, want %g", h, i, s0, want);
        }
    for (size_t i = 0; i < nq; i++)
        CHECK(isfinite(out[i]), "out[%zu] = %g", i, out[i]);
    float *dout = rnd(nq, 1), *scratch = alloc_f(np);
    float *dq = alloc_f(nq), *dk = alloc_f(nk), *dv = alloc_f(nk);
    attention_backward(dq, dk, dv, scratch, dout, probs, q, k, v, NULL, B, H, Tq, Tk, D);
    for (size_t i = 0; i < nk; i++)
        CHECK(isfinite(dk[i]) && isfinite(dv[i]), "dk/dv[%zu] = %g %g", i, dk[i], dv[i]);
    /* batch 1 sees nothing, so nothing flows into its k and v */
    for (size_t i = nk / 2; i < nk; i++)
        CHECK(dk[i] == 0 && dv[i] == 0, "batch 1 dk/dv[%zu] = %g %g", i, dk[i], dv[i]);
    free_all();
}

static void test_edge_cases(void)
{
    /* key_len above Tk counts as Tk */
    int B = 1, H = 1, T = 4, D = 2, big[1] = {100};
    float *q = rnd(8, 1), *k = rnd(8, 1), *v = rnd(8, 1);
    float *o = alloc_f(8), *p = alloc_f(16), *o2 = alloc_f(8), *p2 = alloc_f(16);
    attention_forward(o, p, q, k, v, big, 0, NULL, B, H, T, T, D);
    attention_forward(o2, p2, q, k, v, NULL, 0, NULL, B, H, T, T, D);
    CHECK(memcmp(o, o2, 8 * sizeof(float)) == 0, "key_len 100 > Tk = 4 differs from no padding");
    /* Tq > Tk without causal: every query sees every key */
    check_attention(2, 1, 5, 3, 4, NULL, 0, 0);
    /* D = 1 */
    check_attention(1, 2, 3, 3, 1, NULL, 1, 0);

    /* dropout p = 1: everything dropped, nothing infinite */
    float x[5] = {1, 2, 3, 4, 5}, m[5], y[5];
    dropout_forward(y, m, x, 5, 1.0f, 9);
    for (int i = 0; i < 5; i++)
        CHECK(y[i] == 0 && m[i] == 0, "p=1: out[%d] = %g, mask %g", i, y[i], m[i]);

    /* every row ignored: zero losses, and no gradient */
    int t[2] = {-1, -1};
    float lg[6] = {1, 2, 3, 4, 5, 6}, loss[2] = {7, 7}, pr[6], d[6] = {0}, dl[2] = {1, 1};
    crossentropy_forward(loss, pr, lg, t, 2, 3, 0.1f, -1);
    crossentropy_backward(d, pr, t, dl, 2, 3, 0.1f, -1);
    CHECK(loss[0] == 0 && loss[1] == 0, "ignored rows: loss %g %g", loss[0], loss[1]);
    for (int i = 0; i < 6; i++)
        CHECK(d[i] == 0, "ignored rows: dlogits[%d] = %g", i, d[i]);

    /* huge logits: softmax and the loss stay finite */
    float hl[4] = {1e30f, -1e30f, 88.0f, 0}, hp[4], hloss;
    int ht = 1;
    crossentropy_forward(&hloss, hp, hl, &ht, 1, 4, 0.0f, -100);
    CHECK(isfinite(hloss) && hloss > 1e29f, "loss of a 2e30 logit gap: %g", hloss);
    CHECK(hp[0] == 1 && hp[1] == 0, "probs %g %g", hp[0], hp[1]);
    free_all();
}

/* Outputs cannot depend on keys/values they must not see. */
static void test_attention_mask_invariance(void)
{
    int B = 2, H = 2, T = 9, D = 8, key_len[2] = {5, 9};
    size_t n = (size_t)B * H * T * D, np = (size_t)B * H * T * T;
    float *q = rnd(n, 1), *k = rnd(n, 1), *v = rnd(n, 1);
    float *out = alloc_f(n), *probs = alloc_f(np), *out2 = alloc_f(n), *probs2 = alloc_f(np);
    for (int causal = 0; causal < 2; causal++) {
        attention_forward(out, probs, q, k, v, key_len, causal, NULL, B, H, T, T, D);
        /* padding: batch 0, keys 5..8 */
        float *k2 = dup(k, n), *v2 = dup(v, n);
        for (int h = 0; h < H; h++)
            for (int j = key_len[0]; j < T; j++)
                for (int d = 0; d < D; d++) {
                    k2[((size_t)h * T + j) * D + d] += 3;
                    v2[((size_t)h * T + j) * D + d] -= 5;
                }
        attention_forward(out2, probs2, q, k2, v2, key_len, causal, NULL, B, H, T, T, D);
        for (size_t i = 0; i < n; i++)
            if (out[i] != out2[i]) {
                CHECK(0, "causal=%d: padded keys changed out[%zu]: %g -> %g", causal, i, out[i], out2[i]);
                break;
            }
        /* sanity: a visible key does change something */
        k2[0] += 1;
        attention_forward(out2, probs2, q, k2, v2, key_len, causal, NULL, B, H, T, T, D);
        CHECK(memcmp(out, out2, n * sizeof(float)) != 0, "changing a visible key changed nothing");
    }
    /* causal: changing key/value 6 of batch 1 leaves queries 0..5 alone */
    attention_forward(out, probs, q, k, v, key_len, 1, NULL, B, H, T, T, D);
    float *k3 = dup(k, n), *v3 = dup(v, n);
    for (int h = 0; h < H; h++)
        for (int d = 0; d < D; d++) {
            k3[((size_t)(H + h) * T + 6) * D + d] *= -2;
            v3[((size_t)(H + h) * T + 6) * D + d] += 1;
        }
    attention_forward(out2, probs2, q, k3, v3, key_len, 1, NULL, B, H, T, T, D);
    for (int h = 0; h < H; h++)
        for (int i = 0; i < T; i++) {
            const float *a = out + ((size_t)(H + h) * T + i) * D, *b = out2 + ((size_t)(H + h) * T + i) * D;
            int same = memcmp(a, b, D * sizeof(float)) == 0;
            CHECK(i < 6 ? same : !same, "causal: query %d (head %d) %s after changing key 6", i, h,
                  same ? "unchanged" : "changed");
        }
    free_all();
}

static void test_activations(void)
{
    static const char *names[] = {"relu", "gelu", "swish"};
    size_t sizes[] = {1, 7, 33, 100003};
    for (int a = 0; a < 3; a++)
        for (int s = 0; s < 4; s++) {
            size_t n = sizes[s];
            float *x = rnd(n, 6);
            x[0] = a == 0 ? 0.5f : -20; /* tails */
            float *o = alloc_f(n), *o2 = alloc_f(n);
            activation_forward(o, x, n, (activation_kind)a);
            activation_forward_ref(o2, x, n, (activation_kind)a);
            char what[64];
            snprintf(what, sizeof what, "%s forward n=%zu", names[a], n);
            CHECK_CLOSE_F32(o, o2, n, TOL_F32, what);
            float *g = rnd(n, 1), *d = rnd(n, 1), *d2 = dup(d, n);
            activation_backward(d, g, x, n, (activation_kind)a);
            activation_backward_ref(d2, g, x, n, (activation_kind)a);
            snprintf(what, sizeof what, "%s backward n=%zu", names[a], n);
            CHECK_CLOSE_F32(d, d2, n, TOL_F32, what);
        }
    /* in place */
    float x[3] = {-1, 0.5f, 2}, y[3];
    activation_forward_ref(y, x, 3, ACT_GELU);
    activation_forward(x, x, 3, ACT_GELU);
    CHECK_CLOSE_F32(x, y, 3, TOL_F32, "gelu in place");
    free_all();
}

static void test_residual(void)
{
    size_t n = 70001;
    float *a = rnd(n, 1), *b = rnd(n, 1), *o = alloc_f(n), *o2 = alloc_f(n);
    residual_forward(o, a, b, n);
    residual_forward_ref(o2, a, b, n);
    CHECK_CLOSE_F32(o, o2, n, TOL_EXACT, "residual forward");
    float *g = rnd(n, 1), *da = rnd(n, 1), *db = rnd(n, 1), *da2 = dup(da, n), *db2 = dup(db, n);
    residual_backward(da, db, g, n);
    residual_backward_ref(da2, db2, g, n);
    CHECK_CLOSE_F32(da, da2, n, TOL_EXACT, "residual da");
    CHECK_CLOSE_F32(db, db2, n, TOL_EXACT, "residual db");
    residual_forward(a, a, b, n); /* out aliases a */
    CHECK_CLOSE_F32(a, o2, n, TOL_EXACT, "residual in place");
    free_all();
}

static void test_dropout(void)
{
    size_t n = 100000;
    float p = 0.25f;
    float *x = rnd(n, 1), *o = alloc_f(n), *m = alloc_f(n), *o2 = alloc_f(n), *m2 = alloc_f(n);
    dropout_forward(o, m, x, n, p, 1234);
    dropout_forward_ref(o2, m2, x, n, p, 1234);
    CHECK_CLOSE_F32(m, m2, n, TOL_EXACT, "dropout mask");
    CHECK_CLOSE_F32(o, o2, n, TOL_EXACT, "dropout out");
    size_t dropped = 0;
    for (size_t i = 0; i < n; i++) {
        dropped += m[i] == 0;
        CHECK(m[i] == 0 || m[i] == 1.0f / (1.0f - p), "mask[%zu] = %g", i, m[i]);
    }
    CHECK(fabs((double)dropped / n - p) < 0.01, "dropped %zu of %zu, p = %g", dropped, n, p);
    /* the same mask with one thread: counter-based */
    int threads = test_threads();
    test_set_threads(1);
    float *m3 = alloc_f(n);
    dropout_mask(m3, n, p, 1234);
    test_set_threads(threads);
    CHECK_CLOSE_F32(m3, m, n, TOL_EXACT, "dropout mask with 1 thread");
    dropout_mask(m3, n, p, 1235);
    CHECK(memcmp(m3, m, n * sizeof(float)) != 0, "seeds 1234 and 1235 give the same mask");
    /* p = 0: identity, all ones; in place */
    float *x2 = dup(x, n);
    dropout_forward(x2, m3, x2, n, 0.0f, 5);
    CHECK_CLOSE_F32(x2, x, n, TOL_EXACT, "dropout p=0");
    for (size_t i = 0; i < n; i++)
        if (m3[i] != 1) {
            CHECK(0, "p=0 mask[%zu] = %g", i, m3[i]);
            break;
        }
    float *g = rnd(n, 1), *d = rnd(n, 1), *d2 = dup(d, n);
    dropout_backward(d, g, m, n);
    dropout_backward_ref(d2, g, m, n);
    CHECK_CLOSE_F32(d, d2, n, TOL_EXACT, "dropout backward");
    free_all();
}

static void test_softmax(void)
{
    static const int shapes[][2] = {{1, 1}, {3, 7}, {33, 65}, {4, 8000}};
    for (int s = 0; s < 4; s++) {
        int N = shapes[s][0], V = shapes[s][1];
        size_t n = (size_t)N * V;
        float *x = rnd(n, 10);
        x[0] = 1000; /* no overflow */
        float *o = alloc_f(n), *o2 = alloc_f(n);
        softmax_forward(o, x, N, V);
        softmax_forward_ref(o2, x, N, V);
        CHECK_CLOSE_F32(o, o2, n, TOL_F32, "softmax");
        log_softmax_forward(o, x, N, V);
        log_softmax_forward_ref(o2, x, N, V);
        CHECK_CLOSE_F32(o, o2, n, TOL_F32, "log_softmax");
        float *y = dup(x, n);
        softmax_forward(y, y, N, V);
        softmax_forward_ref(o2, x, N, V);
        CHECK_CLOSE_F32(y, o2, n, TOL_F32, "softmax in place");
    }
    free_all();
}

static void test_crossentropy(void)
{
    static const int shapes[][2] = {{1, 1}, {3, 7}, {33, 65}, {17, 8000}};
    int targets[33];
    for (int s = 0; s < 4; s++)
        for (int e = 0; e < 2; e++) {
            int N = shapes[s][0], V = shapes[s][1];
            float eps = e ? 0.1f : 0.0f;
            size_t n = (size_t)N * V;
            for (int i = 0; i < N; i++)
                targets[i] = (int)qkv_rng_below(&rng, (uint64_t)V);
            if (N > 2)
                targets[1] = -100; /* ignored */
            float *x = rnd(n, 8);
            float *loss = alloc_f(N), *p = alloc_f(n), *loss2 = alloc_f(N), *p2 = alloc_f(n);
            crossentropy_forward(loss, p, x, targets, N, V, eps, -100);
            crossentropy_forward_ref(loss2, p2, x, targets, N, V, eps, -100);
            char what[64];
            snprintf(what, sizeof what, "crossentropy N=%d V=%d eps=%g", N, V, eps);
            CHECK_CLOSE_F32(loss, loss2, N, TOL_F32, what);
            CHECK_CLOSE_F32(p, p2, n, TOL_F32, what);
            if (N > 2)
                CHECK(loss[1] == 0, "ignored row has loss %g", loss[1]);
            float *dl = rnd(N, 1), *d = rnd(n, 1), *d2 = dup(d, n);
            crossentropy_backward(d, p, targets, dl, N, V, eps, -100);
            crossentropy_backward_ref(d2, p2, targets, dl, N, V, eps, -100);
            CHECK_CLOSE_F32(d, d2, n, TOL_F32, what);
            /* aliased: probs overwritten by the gradient, ignored rows zero */
            float *pa = dup(p, n), *pb = dup(p, n);
            crossentropy_backward(pa, pa, targets, dl, N, V, eps, -100);
            crossentropy_backward_ref(pb, pb, targets, dl, N, V, eps, -100);
            CHECK_CLOSE_F32(pa, pb, n, TOL_F32, "crossentropy backward in place");
            if (N > 2)
                CHECK(pa[V] == 0 && pa[2 * V - 1] == 0, "ignored row not zeroed in place: %g", pa[V]);
            /* probs aliasing logits */
            float *xa = dup(x, n);
            crossentropy_forward(loss, xa, xa, targets, N, V, eps, -100);
            CHECK_CLOSE_F32(loss, loss2, N, TOL_F32, "crossentropy, probs aliasing logits");
        }
    free_all();
}

static void test_adamw(void)
{
    size_t n = 40001;
    float *p = rnd(n, 1), *g = rnd(n, 1), *m = alloc_f(n), *v = alloc_f(n);
    float *p2 = dup(p, n), *m2 = alloc_f(n), *v2 = alloc_f(n);
    for (int wd = 0; wd < 2; wd++)
        for (int step = 1; step <= 5; step++) {
            for (size_t i = 0; i < n; i++)
                g[i] = 2 * qkv_rng_uniform(&rng) - 1;
            adamw_update(p, m, v, g, n, 1e-3f, 0.9f, 0.98f, 1e-9f, wd ? 0.01f : 0.0f, step);
            adamw_update_ref(p2, m2, v2, g, n, 1e-3f, 0.9f, 0.98f, 1e-9f, wd ? 0.01f : 0.0f, step);
            CHECK_CLOSE_F32(m, m2, n, TOL_F32, "adamw m");
            CHECK_CLOSE_F32(v, v2, n, TOL_F32, "adamw v");
            CHECK_CLOSE_F32(p, p2, n, TOL_F32, "adamw param");
        }
    /* First Adam step moves every weight by lr * sign(g) (m/sqrt(v) = sign). */
    float w[3] = {1, 1, 1}, mm[3] = {0}, vv[3] = {0}, gg[3] = {0.5f, -2, 1e-3f};
    adamw_update(w, mm, vv, gg, 3, 0.1f, 0.9f, 0.999f, 1e-12f, 0, 1);
    CHECK(fabsf(w[0] - 0.9f) < 1e-6f && fabsf(w[1] - 1.1f) < 1e-6f && fabsf(w[2] - 0.9f) < 1e-5f,
          "first step: %.7g %.7g %.7g, want 0.9 1.1 0.9", w[0], w[1], w[2]);
    /* decay alone: g = 0, w *= 1 - lr wd */
    float w2 = 2, m0 = 0, v0 = 0, g0 = 0;
    adamw_update(&w2, &m0, &v0, &g0, 1, 0.5f, 0.9f, 0.999f, 1e-8f, 0.1f, 1);
    CHECK(fabsf(w2 - 1.9f) < 1e-6f, "pure decay gave %.7g, want 1.9", w2);
    /* the scaled update: the bits of scaling the gradient first */
    float *p3 = dup(p, n), *m3 = dup(m, n), *v3 = dup(v, n), *gs = dup(g, n);
    for (size_t i = 0; i < n; i++)
        gs[i] *= 0.37f;
    adamw_update_scaled(p, m, v, g, 0.37f, n, 1e-3f, 0.9f, 0.98f, 1e-9f, 0.01f, 6);
    adamw_update(p3, m3, v3, gs, n, 1e-3f, 0.9f, 0.98f, 1e-9f, 0.01f, 6);
    CHECK(!memcmp(p, p3, n * 4) && !memcmp(m, m3, n * 4) && !memcmp(v, v3, n * 4),
          "adamw_update_scaled differs from adamw_update on the scaled gradient");
    free_all();
}

static void test_global_norm_sq(void)
{
    size_t n = 123457;
    float *g = rnd(n, 3);
    double got = global_norm_sq(g, n), want = global_norm_sq_ref(g, n);
    CHECK(fabs(got - want) <= 1e-12 * want, "global_norm_sq %.17g, want %.17g", got, want);
    int before = test_threads();
    test_set_threads(1);
    double one = global_norm_sq(g, n);
    test_set_threads(2);
    double two = global_norm_sq(g, n);
    test_set_threads(before);
    CHECK(one == two, "global_norm_sq with 1 thread %.17g, with 2 threads %.17g", one, two);
    CHECK(global_norm_sq(g, 0) == 0, "empty norm %g", global_norm_sq(g, 0));
    float ones[5] = {1, 1, 1, 1, 2};
    CHECK(global_norm_sq(ones, 5) == 8, "norm of {1,1,1,1,2}^2 = %g", global_norm_sq(ones, 5));
    free_all();
}

/* The threaded reductions split columns, not rows, and GEMMs are cut in
 * blocks of a fixed size: any thread count gives the same bits. */
static void test_thread_count_independent(void)
{
    /* blocks of 256, of 256 with a partial one, and 8 blocks of 576 */
    static const int gs[][4] = {{1100, 300, 64, 1}, {300, 1100, 64, 0}, {512, 520, 300, 1}, {4600, 40, 8, 0}};
    for (int s = 0; s < 4; s++) {
        int M = gs[s][0], N = gs[s][1], K = gs[s][2], tb = gs[s][3];
        float *A = rnd((size_t)M * K, 1), *Bm = rnd((size_t)K * N, 1);
        float *C1 = alloc_f((size_t)M * N), *C2 = alloc_f((size_t)M * N);
        int before = test_threads();
        test_set_threads(1);
        gemm(0, tb, M, N, K, 1.0f, A, K, Bm, tb ? K : N, 0.0f, C1, N);
        test_set_threads(2);
        gemm(0, tb, M, N, K, 1.0f, A, K, Bm, tb ? K : N, 0.0f, C2, N);
        test_set_threads(before);
        size_t diff = 0;
        for (size_t i = 0; i < (size_t)M * N; i++)
            diff += C1[i] != C2[i];
        CHECK(diff == 0, "gemm %dx%dx%d: %zu of %zu elements differ between 1 and 2 threads", M, N, K, diff,
              (size_t)M * N);
    }

    int N = 150, C = 300, V = 5, OC = 300; /* N * C above PAR_MIN */
    int ids[150];
    for (int i = 0; i < N; i++)
        ids[i] = i % V;
    float *g = rnd((size_t)N * C, 1), *inp = rnd((size_t)N * C, 1), *w = rnd(C, 1), *b = rnd(C, 1);
    float *mean = alloc_f(N), *rstd = alloc_f(N), *out = alloc_f((size_t)N * C);
    layernorm_forward(out, mean, rstd, inp, w, b, N, C, 1e-5f);
    float *res[2][4];
    int threads = test_threads();
    for (int t = 0; t < 2; t++) {
        test_set_threads(t ? 2 : 1);
        float *dt = alloc_f((size_t)V * C), *dw = alloc_f(C), *db = alloc_f(C), *dbl = alloc_f(OC);
        float *dx = alloc_f((size_t)N * C);
        embedding_backward(dt, NULL, g, ids, 1, N, C, 0, 2.0f);
        layernorm_backward(dx, dw, db, g, inp, w, mean, rstd, N, C);
        float *dwl = alloc_f((size_t)OC * C);
        linear_backward(NULL, dwl, dbl, g, inp, NULL, N, C, OC); /* g: [N, OC = C] */
        res[t][0] = dt;
        res[t][1] = dw;
        res[t][2] = db;
        res[t][3] = dbl;
    }
    test_set_threads(threads);
    CHECK(memcmp(res[0][0], res[1][0], (size_t)V * C * 4) == 0, "embedding dtable differs with 1 and 2 threads");
    CHECK(memcmp(res[0][1], res[1][1], (size_t)C * 4) == 0, "layernorm dweight differs with 1 and 2 threads");
    CHECK(memcmp(res[0][2], res[1][2], (size_t)C * 4) == 0, "layernorm dbias differs with 1 and 2 threads");
    CHECK(memcmp(res[0][3], res[1][3], (size_t)OC * 4) == 0, "linear dbias differs with 1 and 2 threads");

    /* attention forward and backward, big enough to be threaded */
    int AB = 4, AH = 4, AT = 48, AD = 32, key_len[4] = {48, 30, 5, 47};
    size_t nq = (size_t)AB * AH * AT * AD, np = (size_t)AB * AH * AT * AT;
    float *q = rnd(nq, 1), *k = rnd(nq, 1), *v = rnd(nq, 1), *go = rnd(nq, 1), *mask = alloc_f(np);
    dropout_mask(mask, np, 0.1f, 5);
    float *ares[2][5];
    for (int t = 0; t < 2; t++) {
        test_set_threads(t ? 2 : 1);
        float *o = alloc_f(nq), *p = alloc_f(np), *sc = alloc_f(np);
        float *dq = alloc_f(nq), *dk = alloc_f(nq), *dv = alloc_f(nq);
        attention_forward(o, p, q, k, v, key_len, 1, mask, AB, AH, AT, AT, AD);
        attention_backward(dq, dk, dv, sc, go, p, q, k, v, mask, AB, AH, AT, AT, AD);
        ares[t][0] = o, ares[t][1] = p, ares[t][2] = dq, ares[t][3] = dk, ares[t][4] = dv;
    }
    test_set_threads(threads);
    static const char *anames[] = {"out", "probs", "dq", "dk", "dv"};
    for (int i = 0; i < 5; i++)
        CHECK(memcmp(ares[0][i], ares[1][i], (i == 1 ? np : nq) * sizeof(float)) == 0,
              "attention %s differs with 1 and 2 threads", anames[i]);
    free_all();
}

/* Shapes above PAR_MIN (src/kernels/parallel.h), so that the threaded
 * paths run (the small shapes above stay on one thread), with 2 threads
 * whatever the machine. */
static void test_threaded_paths(void)
{
    int threads = test_threads();
    test_set_threads(2);
    int key_len[4] = {48, 17, 1, 40};
    check_attention(4, 4, 48, 48, 32, key_len, 1, 1);
    check_attention(4, 4, 48, 48, 32, key_len, 0, 0);
    free_all();

    int N = 80, C = 513, OC = 130;
    float *inp = rnd((size_t)N * C, 1), *w = rnd(C, 1), *b = rnd(C, 1), *dout = rnd((size_t)N * C, 1);
    float *out = alloc_f((size_t)N * C), *mean = alloc_f(N), *rstd = alloc_f(N);
    float *out2 = alloc_f((size_t)N * C), *mean2 = alloc_f(N), *rstd2 = alloc_f(N);
    layernorm_forward(out, mean, rstd, inp, w, b, N, C, 1e-5f);
    layernorm_forward_ref(out2, mean2, rstd2, inp, w, b, N, C, 1e-5f);
    CHECK_CLOSE_F32(out, out2, (size_t)N * C, TOL_SUM, "layernorm out (threaded)");
    float *dx = rnd((size_t)N * C, 1), *dw = rnd(C, 1), *db = rnd(C, 1);
    float *dx2 = dup(dx, (size_t)N * C), *dw2 = dup(dw, C), *db2 = dup(db, C);
    layernorm_backward(dx, dw, db, dout, inp, w, mean, rstd, N, C);
    layernorm_backward_ref(dx2, dw2, db2, dout, inp, w, mean2, rstd2, N, C);
    CHECK_CLOSE_F32(dx, dx2, (size_t)N * C, TOL_SUM, "layernorm dinp (threaded)");
    CHECK_CLOSE_F32(dw, dw2, C, TOL_SUM, "layernorm dweight (threaded)");
    CHECK_CLOSE_F32(db, db2, C, TOL_SUM, "layernorm dbias (threaded)");

    float *lw = rnd((size_t)OC * C, 1), *lb = rnd(OC, 1), *lo = alloc_f((size_t)N * OC), *lo2 = alloc_f((size_t)N * OC);
    linear_forward(lo, inp, lw, lb, N, C, OC);
    linear_forward_ref(lo2, inp, lw, lb, N, C, OC);
    CHECK_CLOSE_F32(lo, lo2, (size_t)N * OC, TOL_SUM, "linear out (threaded)");
    float *ldo = rnd((size_t)N * OC, 1), *ldb = rnd(OC, 1), *ldb2 = dup(ldb, OC), *ldw = alloc_f((size_t)OC * C);
    float *ldw2 = alloc_f((size_t)OC * C);
    linear_backward(NULL, ldw, ldb, ldo, inp, lw, N, C, OC);
    linear_backward_ref(NULL, ldw2, ldb2, ldo, inp, lw, N, C, OC);
    CHECK_CLOSE_F32(ldb, ldb2, OC, TOL_SUM, "linear dbias (threaded)");

    int B = 2, T = 40, V = 9, ids[80];
    for (int i = 0; i < B * T; i++)
        ids[i] = (int)qkv_rng_below(&rng, V);
    float *table = rnd((size_t)V * C, 1), *pos = rnd((size_t)T * C, 1);
    float *eo = alloc_f((size_t)B * T * C), *eo2 = alloc_f((size_t)B * T * C);
    embedding_forward(eo, ids, table, pos, B, T, C, 0, 3.0f);
    embedding_forward_ref(eo2, ids, table, pos, B, T, C, 0, 3.0f);
    CHECK_CLOSE_F32(eo, eo2, (size_t)B * T * C, TOL_EXACT, "embedding forward (threaded)");
    float *dt = rnd((size_t)V * C, 1), *dp = rnd((size_t)T * C, 1), *dt2 = dup(dt, (size_t)V * C);
    float *dp2 = dup(dp, (size_t)T * C);
    embedding_backward(dt, dp, dout, ids, B, T, C, 0, 3.0f);
    embedding_backward_ref(dt2, dp2, dout, ids, B, T, C, 0, 3.0f);
    CHECK_CLOSE_F32(dt, dt2, (size_t)V * C, TOL_F32, "embedding dtable (threaded)");
    CHECK_CLOSE_F32(dp, dp2, (size_t)T * C, TOL_F32, "embedding dpos (threaded)");

    int H = 4, D = 16; /* 8 * T * H * D = 40960 elements */
    size_t nh = (size_t)8 * T * H * D;
    float *hx = rnd(nh, 1), *hy = alloc_f(nh), *hy2 = alloc_f(nh), *hz = alloc_f(nh);
    heads_split_forward(hy, hx, 8, T, H, D, H * D);
    heads_split_forward_ref(hy2, hx, 8, T, H, D, H * D);
    CHECK_CLOSE_F32(hy, hy2, nh, TOL_EXACT, "split (threaded)");
    heads_merge_forward(hz, hy, 8, T, H, D);
    CHECK_CLOSE_F32(hz, hx, nh, TOL_EXACT, "merge(split) (threaded)");

    int SN = 9, SV = 4001;
    float *sx = rnd((size_t)SN * SV, 5), *so = alloc_f((size_t)SN * SV), *so2 = alloc_f((size_t)SN * SV);
    softmax_forward(so, sx, SN, SV);
    softmax_forward_ref(so2, sx, SN, SV);
    CHECK_CLOSE_F32(so, so2, (size_t)SN * SV, TOL_F32, "softmax (threaded)");
    test_set_threads(threads);
    free_all();
}

/* One decoding step's attention (self over slot rows of a cache, cross over
 * per-row sources with padding) against the reference, including a row
 * with no source keys (zeros) and heads big enough to be threaded. */
static void test_attention_step(void)
{
    static const int shapes[][4] = {{3, 2, 8, 5}, {5, 4, 64, 17}, {16, 8, 64, 40}};
    for (int s = 0; s < 3; s++) {
        int B = shapes[s][0], H = shapes[s][1], D = shapes[s][2], T = shapes[s][3], C = H * D;
        int Tm = T + 2, Bm = B + 1, t = T - 1, S = T + 3;
        float *qkv = rnd((size_t)B * 3 * C, 1), *k = rnd((size_t)Tm * Bm * C, 1), *v = rnd((size_t)Tm * Bm * C, 1);
        int *hist = malloc((size_t)B * Tm * sizeof(int));
        for (int b = 0; b < B; b++)
            for (int j = 0; j < Tm; j++)
                hist[(size_t)b * Tm + j] = (b * 7 + j * 3) % Bm;
        float *o1 = alloc_f((size_t)B * C), *o2 = alloc_f((size_t)B * C);
        attention_step_self(o1, qkv, k, v, hist, B, H, D, Tm, Bm, t);
        attention_step_self_ref(o2, qkv, k, v, hist, B, H, D, Tm, Bm, t);
        CHECK_CLOSE_F32(o1, o2, (size_t)B * C, 2e-6, "attention_step_self out");

        int n_src = 2, src_row[16], src_len[16];
        for (int b = 0; b < B; b++) {
            src_row[b] = b % n_src;
            src_len[b] = b == 1 ? 0 : S - (b % 4);
        }
        float *q = rnd((size_t)B * C, 1), *kc = rnd((size_t)n_src * H * S * D, 1), *vc = rnd((size_t)n_src * H * S * D, 1);
        float *p1 = alloc_f((size_t)B * H * S), *p2 = alloc_f((size_t)B * H * S);
        for (size_t i = 0; i < (size_t)B * H * S; i++)
            p1[i] = 7; /* must be overwritten with 0 past src_len */
        attention_step_cross(o1, p1, q, kc, vc, src_row, src_len, B, H, D, S);
        attention_step_cross_ref(o2, p2, q, kc, vc, src_row, src_len, B, H, D, S);
        CHECK_CLOSE_F32(o1, o2, (size_t)B * C, 2e-6, "attention_step_cross out");
        CHECK_CLOSE_F32(p1, p2, (size_t)B * H * S, 2e-6, "attention_step_cross probs");
        free(hist);
    }
    free_all();
}

/* logsumexp by rows, with masked (-inf) entries and a fully masked row */
static void test_logsumexp(void)
{
    int N = 5, V = 8003;
    float *x = rnd((size_t)N * V, 8), *o1 = alloc_f(N), *o2 = alloc_f(N);
    for (int v = 0; v < V; v += 3)
        x[V + v] = -INFINITY;
    for (int v = 0; v < V; v++)
        x[2 * (size_t)V + v] = -INFINITY;
    logsumexp_rows(o1, x, N, V);
    logsumexp_rows_ref(o2, x, N, V);
    CHECK(o1[2] == -INFINITY, "fully masked row gives %g, expected -inf", o1[2]);
    o1[2] = o2[2] = 0;
    CHECK_CLOSE_F32(o1, o2, N, 1e-6, "logsumexp_rows");
    free_all();
}

static const test_case cases[] = {
    TEST(test_vmath_accuracy),
    TEST(test_gemm),
    TEST(test_gemm_batched),
    TEST(test_linear),
    TEST(test_embedding),
    TEST(test_sinusoidal),
    TEST(test_layernorm),
    TEST(test_heads),
    TEST(test_attention),
    TEST(test_attention_fully_masked),
    TEST(test_attention_mask_invariance),
    TEST(test_edge_cases),
    TEST(test_activations),
    TEST(test_residual),
    TEST(test_dropout),
    TEST(test_softmax),
    TEST(test_crossentropy),
    TEST(test_adamw),
    TEST(test_global_norm_sq),
    TEST(test_thread_count_independent),
    TEST(test_threaded_paths),
    TEST(test_attention_step),
    TEST(test_logsumexp),
};

int main(int argc, char **argv)
{
    qkv_rng_seed(&rng, 20240601);
    return test_main_per_isa(argc, argv, cases, TEST_COUNT(cases));
}
