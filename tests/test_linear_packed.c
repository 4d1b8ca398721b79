/* linear_packed_forward (prepacked weight, few rows: incremental decoding)
 * against its plain twin, to the bit (both are one fused multiply-add
 * chain per output), and against linear_forward_ref within float
 * rounding (on the generic path, which has no FMA, only the latter);
 * once per kernel path the CPU has; every row count from 1 to 17 (each block shape and its
 * tails), output widths that are not multiples of the panel, with and
 * without bias, 1 and 2 threads. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "kernels/isa.h"
#include "kernels/kernels_ref.h"
#include "kernels/linear_packed.h"
#include "qkv.h"
#include "test.h"

static qkv_rng rng;

static float *rnd(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    if (!p)
        abort();
    for (size_t i = 0; i < n; i++)
        p[i] = 2 * qkv_rng_uniform(&rng) - 1;
    return p;
}

static void check_shape(int N, int C, int OC, int with_bias, int threads)
{
    float *x = rnd((size_t)N * C), *w = rnd((size_t)OC * C), *b = with_bias ? rnd(OC) : NULL;
    float *wp = malloc(linear_packed_floats(C, OC) * sizeof(float));
    float *got = malloc((size_t)N * OC * sizeof(float)), *want = malloc((size_t)N * OC * sizeof(float));
    float *blas = malloc((size_t)N * OC * sizeof(float));
    if (!wp || !got || !want || !blas)
        abort();
    test_set_threads(threads);
    linear_pack(wp, w, C, OC);
    linear_packed_forward(got, x, wp, b, N, C, OC);
    linear_packed_forward_ref(want, x, w, b, N, C, OC);
    linear_forward_ref(blas, x, w, b, N, C, OC);
    int bad = 0;
    for (size_t i = 0; i < (size_t)N * OC && bad < 3; i++) {
        /* the generic path has no FMA: within rounding only (below) */
        if (kern->isa != ISA_GENERIC && memcmp(&got[i], &want[i], sizeof(float)) != 0) {
            CHECK(0, "N %d C %d OC %d bias %d threads %d: out[%zu] = %.9g, ref %.9g (expected equal bits)", N, C,
                  OC, with_bias, threads, i, got[i], want[i]);
            bad++;
        }
        /* sums of C products of values in [-1, 1]: rounding grows with C */
        double tol = 1e-6 * C;
        if (fabs((double)got[i] - blas[i]) > tol) {
            CHECK(0, "N %d C %d OC %d: out[%zu] = %.9g, linear_forward_ref %.9g (tolerance %g)", N, C, OC, i,
                  got[i], blas[i], tol);
            bad++;
        }
    }
    free(x);
    free(w);
    free(b);
    free(wp);
    free(got);
    free(want);
    free(blas);
}

static void test_every_row_count(void)
{
    qkv_rng_seed(&rng, 1);
    for (int N = 1; N <= 17; N++)
        check_shape(N, 37, 16 * 9 + 3, N % 2, 1);
}

static void test_odd_and_model_shapes(void)
{
    qkv_rng_seed(&rng, 2);
    static const int shapes[][3] = {{1, 1, 1}, {1, 256, 768}, {2, 256, 1024}, {7, 1024, 256},
                                    {1, 64, 4001}, {128, 256, 250}, {3, 5, 17}, {64, 33, 65}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int threads = 1; threads <= 2; threads++)
            check_shape(shapes[i][0], shapes[i][1], shapes[i][2], (int)i % 2, threads);
}

/* the same row gives the same bits alone and inside a batch */
static void test_row_independent_of_batch(void)
{
    qkv_rng_seed(&rng, 3);
    int N = 9, C = 48, OC = 70;
    float *x = rnd((size_t)N * C), *w = rnd((size_t)OC * C), *b = rnd(OC);
    float *wp = malloc(linear_packed_floats(C, OC) * sizeof(float));
    float *all = malloc((size_t)N * OC * sizeof(float)), *one = malloc((size_t)OC * sizeof(float));
    if (!wp || !all || !one)
        abort();
    linear_pack(wp, w, C, OC);
    linear_packed_forward(all, x, wp, b, N, C, OC);
    for (int n = 0; n < N; n++) {
        linear_packed_forward(one, x + (size_t)n * C, wp, b, 1, C, OC);
        CHECK(memcmp(one, all + (size_t)n * OC, (size_t)OC * sizeof(float)) == 0,
              "row %d alone differs from the same row in a batch of %d", n, N);
    }
    free(x);
    free(w);
    free(b);
    free(wp);
    free(all);
    free(one);
}

static const test_case cases[] = {
    TEST(test_every_row_count),
    TEST(test_odd_and_model_shapes),
    TEST(test_row_independent_of_batch),
};

int main(int argc, char **argv) { return test_main_per_isa(argc, argv, cases, TEST_COUNT(cases)); }
