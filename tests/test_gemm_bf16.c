/* gemm_bf16 (kernels.h), once per kernel path, each of its two kernels
 * (own microkernel, oneDNN matmul) forced in turn.
 *
 * Tolerances, with S[i,j] = sum_k |op(A)[i,k]| |op(B)[k,j]|:
 *   - against the product of the bf16-rounded operands summed in double:
 *     K 2^-23 S + 2^-23 |ref| (fp32 summation only: the products of two
 *     bf16 are exact in fp32);
 *   - against the exact product of the fp32 operands: (2^-7 + 2^-16) S
 *     (each operand rounded by at most 2^-8 relative, bf16's epsilon) plus
 *     the summation term above.
 * beta C adds 2^-23 |beta C| to both. Shapes: odd M, N, K (1, not multiples
 * of 2 or 16), row strides above the minimum, all four transposes (the
 * trainer uses NT forward, NN and TN backward), beta 0, 1 and 0.25 with
 * alpha 0.5; one shape large enough to be cut into blocks, whose bits must
 * not change between 1 and 2 threads. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/context.h"
#include "base/rng.h"
#include "kernels/isa.h"
#include "kernels/kernels.h"
#include "kernels/quant.h"
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

static float bf(float x)
{
    uint16_t b;
    float_to_bf16(&b, &x, 1);
    bf16_to_float(&x, &b, 1);
    return x;
}

static const char *path_name(int p) { return p == GEMM_BF16_OWN ? "own" : "onednn"; }

/* The kernels to test: oneDNN only where it makes bf16 matmuls (reported
 * skipped elsewhere, not passed as the own kernel it falls back to). */
static int n_paths(const char *test)
{
    if (gemm_bf16_onednn_ok())
        return 2;
    printf("skip %s[onednn]: oneDNN makes no bf16 matmul on this CPU (no AVX-512)\n", test);
    return 1;
}

/* One product against both references; returns failures. */
static int check(int path, int ta, int tb, int M, int N, int K, float alpha, float beta)
{
    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
    float *A = rnd(na), *B = rnd(nb), *C = rnd(nc), *C0 = malloc(nc * sizeof(float));
    if (!C0)
        abort();
    memcpy(C0, C, nc * sizeof(float));
    gemm_bf16_force(path);
    gemm_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    gemm_bf16_force(-1);
    int before = test_failures();
    for (int i = 0; i < M && test_failures() == before; i++)
        for (int j = 0; j < N; j++) {
            double r16 = 0, r32 = 0, S = 0;
            for (int k = 0; k < K; k++) {
                float a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                float b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                r16 += (double)bf(a) * bf(b);
                r32 += (double)a * b;
                S += fabs((double)a * b);
            }
            double c0 = beta != 0 ? (double)beta * C0[(size_t)i * ldc + j] : 0;
            r16 = alpha * r16 + c0, r32 = alpha * r32 + c0, S *= fabs(alpha);
            double got = C[(size_t)i * ldc + j], sum_tol = K * 0x1p-23 * S + 0x1p-23 * (fabs(r16) + fabs(c0));
            double tol16 = sum_tol, tol32 = (0x1p-7 + 0x1p-16) * S + sum_tol;
            CHECK(fabs(got - r16) <= tol16,
                  "%s ta %d tb %d M %d N %d K %d beta %g: C[%d,%d] = %.9g, bf16-operand reference %.9g, "
                  "tolerance %.3g", path_name(path), ta, tb, M, N, K, beta, i, j, got, r16, tol16);
            CHECK(fabs(got - r32) <= tol32,
                  "%s ta %d tb %d M %d N %d K %d: C[%d,%d] = %.9g, fp32-operand reference %.9g, tolerance %.3g",
                  path_name(path), ta, tb, M, N, K, i, j, got, r32, tol32);
            if (test_failures() != before)
                break;
        }
    /* the padding past N in each row of C is not touched */
    for (int i = 0; i < M; i++)
        for (int j = N; j < ldc; j++)
            if (C[(size_t)i * ldc + j] != C0[(size_t)i * ldc + j]) {
                CHECK(0, "%s: C[%d,%d] past N written", path_name(path), i, j);
                i = M;
                break;
            }
    free(A), free(B), free(C), free(C0);
    return test_failures() - before;
}

static void test_shapes(void)
{
    static const int shapes[][3] = {{1, 1, 1}, {1, 17, 5}, {7, 13, 5}, {33, 17, 65}, {9, 40, 31}, {64, 48, 128},
                                    {130, 33, 257}};
    int paths = n_paths("test_shapes");
    for (int path = 0; path < paths; path++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int t = 0; t < 4; t++) {
                const int *d = shapes[s];
                if (check(path, t >> 1, t & 1, d[0], d[1], d[2], 1.0f, (s + t) % 2 ? 1.0f : 0.0f))
                    return;
            }
    check(GEMM_BF16_OWN, 0, 1, 21, 19, 23, 0.5f, 0.25f);
    if (paths == 2)
        check(GEMM_BF16_ONEDNN, 1, 0, 21, 19, 23, 0.5f, 0.25f);
}

/* Large enough for gemm_bf16 to cut C into blocks (>= 2^20 multiply-adds,
 * >= 512 rows): the trainer's three transposes, 1 and 2 threads, same bits. */
static void test_blocks_and_threads(void)
{
    static const int tr[3][2] = {{0, 1}, {0, 0}, {1, 0}};
    int M = 600, N = 72, K = 50, paths = n_paths("test_blocks_and_threads");
    for (int path = 0; path < paths; path++)
        for (int t = 0; t < 3; t++) {
            int ta = tr[t][0], tb = tr[t][1];
            int lda = ta ? M : K, ldb = tb ? K : N;
            float *A = rnd((size_t)M * K), *B = rnd((size_t)K * N), *C1 = rnd((size_t)M * N),
                  *C2 = malloc((size_t)M * N * sizeof(float));
            if (!C2)
                abort();
            memcpy(C2, C1, (size_t)M * N * sizeof(float));
            int was = test_threads();
            gemm_bf16_force(path);
            test_set_threads(1);
            gemm_bf16(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 1.0f, C1, N);
            test_set_threads(2);
            gemm_bf16(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 1.0f, C2, N);
            gemm_bf16_force(-1);
            test_set_threads(was);
            CHECK(memcmp(C1, C2, (size_t)M * N * sizeof(float)) == 0,
                  "%s ta %d tb %d: 1 and 2 threads give different bits", path_name(path), ta, tb);
            free(A), free(B), free(C1), free(C2);
            if (test_failures())
                return;
        }
    check(GEMM_BF16_OWN, 0, 1, 600, 72, 50, 1.0f, 1.0f);
    if (paths == 2)
        check(GEMM_BF16_ONEDNN, 1, 0, 600, 72, 50, 1.0f, 0.0f);
}

/* gemm_mixed follows the bound context: fp32 gemm's bits without bf16, the
 * bf16 product's with it. */
static void test_mixed(void)
{
    int M = 37, N = 29, K = 45;
    float *A = rnd((size_t)M * K), *B = rnd((size_t)N * K), *C1 = malloc((size_t)M * N * 4),
          *C2 = malloc((size_t)M * N * 4);
    if (!C1 || !C2)
        abort();
    gemm_mixed(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, C1, N);
    gemm(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, C2, N);
    CHECK(memcmp(C1, C2, (size_t)M * N * 4) == 0, "gemm_mixed without bf16 differs from gemm");
    free(A), free(B), free(C1), free(C2);
}

/* The linear layer's backward pair in a bf16 context (the output gradient
 * rounded once for both products): the bits of the two gemm_mixed calls,
 * with dinp accumulated (beta 1), overwritten (beta 0) and not wanted, on
 * each kernel path and on a shape cut into blocks. */
static void test_linear_backward_pair(void)
{
    static const int shapes[2][3] = {{37, 29, 45}, {600, 72, 50}}; /* N, C, OC */
    int paths = n_paths("test_linear_backward_pair");
    qkv_context *c = ctx_current(), bf = *c;
    bf.bf16 = 1;
    for (int path = 0; path < paths; path++)
        for (int sh = 0; sh < 2; sh++)
            for (int mode = 0; mode < 3; mode++) {
                int N = shapes[sh][0], C = shapes[sh][1], OC = shapes[sh][2];
                float beta = mode == 1 ? 0.0f : 1.0f;
                float *dout = rnd((size_t)N * OC), *inp = rnd((size_t)N * C), *w = rnd((size_t)OC * C);
                float *di1 = rnd((size_t)N * C), *dw1 = rnd((size_t)OC * C);
                float *di2 = malloc((size_t)N * C * 4), *dw2 = malloc((size_t)OC * C * 4);
                if (!di2 || !dw2)
                    abort();
                memcpy(di2, di1, (size_t)N * C * 4), memcpy(dw2, dw1, (size_t)OC * C * 4);
                float *dw3 = malloc((size_t)OC * C * 4);
                if (!dw3)
                    abort();
                memcpy(dw3, dw1, (size_t)OC * C * 4);
                gemm(1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dw3, C); /* fp32 */
                gemm_bf16_force(path);
                ctx_bind(&bf);
                float *di = mode == 2 ? NULL : di1;
                gemm_mixed_linear_backward(di, beta, dw1, dout, inp, w, N, C, OC);
                if (di)
                    gemm_mixed(0, 0, N, C, OC, 1.0f, dout, OC, w, C, beta, di2, C);
                gemm_mixed(1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dw2, C);
                ctx_bind(c);
                gemm_bf16_force(-1);
                CHECK(memcmp(di1, di2, (size_t)N * C * 4) == 0, "%s N %d mode %d: dinp differs from gemm_mixed's",
                      path_name(path), N, mode);
                CHECK(memcmp(dw1, dw2, (size_t)OC * C * 4) == 0,
                      "%s N %d mode %d: dweight differs from gemm_mixed's", path_name(path), N, mode);
                CHECK(memcmp(dw1, dw3, (size_t)OC * C * 4) != 0, "%s N %d mode %d: fp32's bits: bf16 did not run",
                      path_name(path), N, mode);
                free(dw3);
                free(dout), free(inp), free(w), free(di1), free(dw1), free(di2), free(dw2);
                if (test_failures())
                    return;
            }
}

/* Whether the products run natively: reported, never silently passed. */
static void test_native(void)
{
    if (kern->isa != ISA_AVX512 || !kern_extras.bf16) {
        printf("skip gemm_bf16 native products: the %s path here has no AVX512-BF16 (bf16 pairs are widened to "
               "fp32; the cases above ran that way)\n", cpu_isa_name(kern->isa));
        return;
    }
    CHECK(strstr(linear_bf16_path(), "vdpbf16ps") != NULL, "native bf16 expected, path is %s", linear_bf16_path());
    CHECK(!strcmp(gemm_bf16_path_name(0, 1, 512, 512, 512), "onednn"), "with native bf16 gemm_bf16 picks %s",
          gemm_bf16_path_name(0, 1, 512, 512, 512));
    /* AMX-BF16 is oneDNN's to use (qkv has no AMX kernel of its own): the
     * cases above ran on it where the CPU has it */
    const cpu_features *f = cpu_get_features();
    if (!(f->amx_bf16 && f->amx_granted))
        printf("skip gemm_bf16 on AMX-BF16: this CPU has none (or the OS did not grant tile state)\n");
}

static const test_case cases[] = {
    TEST(test_shapes),
    TEST(test_blocks_and_threads),
    TEST(test_mixed),
    TEST(test_linear_backward_pair),
    TEST(test_native),
};

int main(int argc, char **argv)
{
    qkv_rng_seed(&rng, 20261203);
    return test_main_per_isa(argc, argv, cases, TEST_COUNT(cases));
}
