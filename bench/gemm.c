/* GEMM side by side: OpenBLAS cblas_sgemm against oneDNN dnnl_sgemm on the
 * products of one training step of a base Transformer (d_model 512, d_ff
 * 2048, 8k vocabulary, 4096 tokens per batch, 8 heads of 64, T = 64), at 1
 * and 2 threads. Prints GFLOP/s of each, their ratio, and a measured FMA
 * peak of the machine for scale. Not a test: run by hand.
 *
 *     make bench && build/bench/gemm [repeats [only]]
 *     build/bench/gemm bf16 [repeats [only]]
 *
 * (only: run just the products whose label contains that word, e.g. attn,
 * or "interleaved" for the last measure alone)
 *
 * Columns: OpenBLAS threading itself; oneDNN; and qkv's gemm (gemm.c:
 * single-threaded OpenBLAS on blocks of C split over the OpenMP team). All
 * on the same buffers, best of `repeats` runs (default 3) of >= 0.2 s each.
 * Batched (attention) products: OpenBLAS is called in a loop (it threads
 * inside each call, but not below ~64^3); oneDNN inside an OpenMP loop over
 * the batch (its own threading then stays serial, as OpenMP does not nest by
 * default); also single-threaded OpenBLAS in an OpenMP loop. Last, a GEMM
 * followed by an OpenMP layer norm, repeated, as a training step runs them:
 * there the two pools of OpenBLAS-with-pthreads and OpenMP meet.
 *
 * "bf16": the training products (not the attention ones, which stay fp32)
 * through qkv's gemm (fp32) and gemm_bf16 with each of its two kernels
 * forced (own vdpbf16ps microkernel, oneDNN matmul), on a qkv context of 1
 * and 2 threads, conversions to bf16 included; the kernel gemm_bf16 picks
 * by itself is shown last. This is the measurement behind gemm_bf16.c's
 * choice. */
#include <cblas.h>
#include <dnnl.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/kernels.h"
#include "base/context.h"

void openblas_set_num_threads(int n);

typedef struct {
    const char *what;
    int ta, tb, M, N, K, count;
} shape;

static const shape shapes[] = {
    {"qkv/out proj fwd  X W^T", 0, 1, 4096, 512, 512, 1},
    {"ffn up fwd        X W^T", 0, 1, 4096, 2048, 512, 1},
    {"ffn down fwd      X W^T", 0, 1, 4096, 512, 2048, 1},
    {"vocab proj fwd    X E^T", 0, 1, 4096, 8000, 512, 1},
    {"proj bwd dX   dY W     ", 0, 0, 4096, 512, 512, 1},
    {"proj bwd dW   dY^T X   ", 1, 0, 512, 512, 4096, 1},
    {"ffn up bwd dX dY W     ", 0, 0, 4096, 512, 2048, 1},
    {"ffn up bwd dW dY^T X   ", 1, 0, 2048, 512, 4096, 1},
    {"ffn dn bwd dX dY W     ", 0, 0, 4096, 2048, 512, 1},
    {"ffn dn bwd dW dY^T X   ", 1, 0, 512, 2048, 4096, 1},
    {"vocab bwd dX  dY E     ", 0, 0, 4096, 512, 8000, 1},
    {"vocab bwd dE  dY^T X   ", 1, 0, 8000, 512, 4096, 1},
    {"attn Q K^T   (512x)    ", 0, 1, 64, 64, 64, 512},
    {"attn P V     (512x)    ", 0, 0, 64, 64, 64, 512},
    {"attn dP^T dO (512x)    ", 1, 0, 64, 64, 64, 512},
};

/* bf16 mode adds the demo/small presets' products (d_model 256, d_ff 1024,
 * ~1500 tokens a batch, 4000-piece vocabulary) and the tiny preset's
 * (d_model 64, ~1000 tokens) */
static const shape small_shapes[] = {
    {"demo qkv fwd      X W^T", 0, 1, 1500, 768, 256, 1},
    {"demo ffn up fwd   X W^T", 0, 1, 1500, 1024, 256, 1},
    {"demo ffn dn fwd   X W^T", 0, 1, 1500, 256, 1024, 1},
    {"demo vocab fwd    X E^T", 0, 1, 1500, 4000, 256, 1},
    {"demo ffn bwd dX   dY W ", 0, 0, 1500, 256, 1024, 1},
    {"demo ffn bwd dW  dY^T X", 1, 0, 1024, 256, 1500, 1},
    {"demo proj bwd dW dY^T X", 1, 0, 256, 256, 1500, 1},
    {"tiny proj fwd     X W^T", 0, 1, 1000, 64, 64, 1},
    {"tiny ffn bwd dW  dY^T X", 1, 0, 256, 64, 1000, 1},
};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static float *fill(size_t n)
{
    float *p = aligned_alloc(64, ((n * sizeof(float)) + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    return p;
}

/* lib 0: OpenBLAS threading itself, 1: oneDNN, 2: single-threaded OpenBLAS
 * called from an OpenMP loop over the batch, 3: qkv's gemm / gemm_batched
 * (whatever gemm.c does: now single-threaded OpenBLAS on blocks of C split
 * over the OpenMP team). */
static void run(int lib, const shape *s, const float *A, const float *B, float *C)
{
    int lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N, ldc = s->N;
    size_t sa = (size_t)s->M * s->K, sb = (size_t)s->K * s->N, sc = (size_t)s->M * s->N;
    if (lib == 3) {
        gemm_batched(s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, lda, sa, B, ldb, sb, 0.0f, C, ldc, sc, s->count);
    } else if (lib == 2) {
#pragma omp parallel for schedule(static)
        for (int i = 0; i < s->count; i++)
            cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans, s->tb ? CblasTrans : CblasNoTrans, s->M,
                        s->N, s->K, 1.0f, A + i * sa, lda, B + i * sb, ldb, 0.0f, C + i * sc, ldc);
    } else if (lib == 0) {
        for (int i = 0; i < s->count; i++)
            cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans, s->tb ? CblasTrans : CblasNoTrans, s->M,
                        s->N, s->K, 1.0f, A + i * sa, lda, B + i * sb, ldb, 0.0f, C + i * sc, ldc);
    } else if (s->count == 1) {
        dnnl_sgemm(s->ta ? 'T' : 'N', s->tb ? 'T' : 'N', s->M, s->N, s->K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc);
    } else {
#pragma omp parallel for schedule(static)
        for (int i = 0; i < s->count; i++)
            dnnl_sgemm(s->ta ? 'T' : 'N', s->tb ? 'T' : 'N', s->M, s->N, s->K, 1.0f, A + i * sa, lda, B + i * sb,
                       ldb, 0.0f, C + i * sc, ldc);
    }
}

static int bench_threads = 1;

/* OpenBLAS threads itself only in column "openblas"; in "ob-omp" and
 * qkv's gemm it must stay on its caller's thread. */
static void set_blas_threads(int lib) { openblas_set_num_threads(lib == 0 ? bench_threads : 1); }

/* Best GFLOP/s over `repeats` timed runs of >= 0.2 s each. */
static double gflops(int lib, const shape *s, const float *A, const float *B, float *C, int repeats)
{
    double flop = 2.0 * s->M * s->N * s->K * s->count, best = 0;
    set_blas_threads(lib);
    run(lib, s, A, B, C); /* warm-up: page faults, library init */
    for (int r = 0; r < repeats; r++) {
        int iters = 0;
        double t0 = now(), t;
        do {
            run(lib, s, A, B, C);
            iters++;
            t = now() - t0;
        } while (t < 0.2);
        double g = flop * iters / t / 1e9;
        best = g > best ? g : best;
    }
    return best;
}

/* Measured FMA throughput: 12 independent chains of 8-float vectors per
 * thread (enough to cover FMA latency x ports on current x86 cores). */
typedef float v8 __attribute__((vector_size(32)));
static double peak_gflops(int threads)
{
    double t0 = now();
    long iters = 20000000;
    float sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    {
        v8 acc[12], a = {1.0001f, 1.0001f, 1.0001f, 1.0001f, 1.0001f, 1.0001f, 1.0001f, 1.0001f}, b = a * 1e-7f;
        for (int j = 0; j < 12; j++)
            acc[j] = a * (float)j;
        for (long i = 0; i < iters; i++)
            for (int j = 0; j < 12; j++)
                acc[j] = acc[j] * a + b;
        for (int j = 0; j < 12; j++)
            for (int l = 0; l < 8; l++)
                sink += acc[j][l];
    }
    double t = now() - t0;
    if (sink == 12345)
        printf(" ");
    return 2.0 * 8 * 12 * iters * threads / t / 1e9;
}

/* What a training step does: a GEMM, then an OpenMP pass over its output
 * (here a layer norm), again and again. OpenBLAS's pthreads and the OpenMP
 * team are two pools that may spin while the other works; oneDNN runs on
 * the OpenMP team itself. Milliseconds per (gemm + layernorm) pair. */
static double interleaved_ms(int lib, const float *A, const float *B, float *C, float *Y, float *mean, float *rstd,
                             const float *w, const float *b)
{
    const shape s = {"", 0, 1, 4096, 512, 512, 1};
    double best = 1e30;
    set_blas_threads(lib);
    for (int r = 0; r < 3; r++) {
        double t0 = now();
        for (int i = 0; i < 10; i++) {
            run(lib, &s, A, B, C);
            layernorm_forward(Y, mean, rstd, C, w, b, 4096, 512, 1e-5f);
        }
        double t = (now() - t0) / 10 * 1e3;
        best = t < best ? t : best;
    }
    return best;
}

/* best GFLOP/s of fn-style product `which` (0 fp32 gemm, 1 bf16 own, 2 bf16
 * oneDNN) on the bound context */
static double gflops_q(int which, const shape *s, const float *A, const float *B, float *C, int repeats)
{
    int lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N, ldc = s->N;
    double flop = 2.0 * s->M * s->N * s->K, best = 0;
    if (which)
        gemm_bf16_force(which == 1 ? GEMM_BF16_OWN : GEMM_BF16_ONEDNN);
    for (int r = -1; r < repeats; r++) {
        int iters = 0;
        double t0 = now(), t;
        do {
            if (which)
                gemm_bf16(s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc);
            else
                gemm(s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc);
            iters++;
            t = now() - t0;
        } while (t < 0.2);
        double g = flop * iters / t / 1e9;
        if (r >= 0) /* r = -1: warm-up (buffers, oneDNN's kernels) */
            best = g > best ? g : best;
    }
    gemm_bf16_force(-1);
    return best;
}

static int bf16_main(int repeats, const char *only)
{
    size_t mx = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        size_t a = (size_t)shapes[i].M * shapes[i].K, b = (size_t)shapes[i].K * shapes[i].N,
               c = (size_t)shapes[i].M * shapes[i].N;
        mx = a > mx ? a : mx, mx = b > mx ? b : mx, mx = c > mx ? c : mx;
    }
    float *A = fill(mx), *B = fill(mx), *C = fill(mx);
    char info[2048];
    qkv_system_info(info, sizeof info);
    printf("%sbest of %d runs >= 0.2 s, conversions to bf16 included\n", info, repeats);
    if (!gemm_bf16_onednn_ok())
        printf("oneDNN makes no bf16 matmul on this CPU: the \"bf16 dnnl\" column runs the own kernel\n");
    for (int threads = 1; threads <= 2; threads++) {
        qkv_context_options co = qkv_context_default_options();
        co.threads = threads;
        qkv_context *ctx;
        if (qkv_context_new(&co, &ctx) != QKV_OK)
            return 1;
        qkv_context *prev = ctx_bind(ctx);
        printf("\n%d thread%s\n%-24s %5s %5s %5s  %9s %9s %9s  %s\n", threads, threads > 1 ? "s" : "",
               "product (GFLOP/s)", "M", "N", "K", "fp32", "bf16 own", "bf16 dnnl", "picked");
        double t32 = 0, town = 0, tdn = 0;
        size_t n_big = sizeof shapes / sizeof shapes[0], n_small = sizeof small_shapes / sizeof small_shapes[0];
        for (size_t i = 0; i < n_big + n_small; i++) {
            const shape *s = i < n_big ? &shapes[i] : &small_shapes[i - n_big];
            if (s->count > 1 || (only && !strstr(s->what, only)))
                continue;
            double flop = 2.0 * s->M * s->N * s->K;
            double g0 = gflops_q(0, s, A, B, C, repeats), g1 = gflops_q(1, s, A, B, C, repeats),
                   g2 = gflops_q(2, s, A, B, C, repeats);
            t32 += flop / g0, town += flop / g1, tdn += flop / g2;
            printf("%-24s %5d %5d %5d  %9.1f %9.1f %9.1f  %s\n", s->what, s->M, s->N, s->K, g0, g1, g2,
                   gemm_bf16_path_name(s->ta, s->tb, s->M, s->N, s->K));
            fflush(stdout);
        }
        printf("%-24s %17s  %8.3fs %8.3fs %8.3fs  (seconds for one of each)\n", "total", "", t32 / 1e9,
               town / 1e9, tdn / 1e9);
        ctx_bind(prev);
        qkv_context_free(ctx);
    }
    free(A), free(B), free(C);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "bf16"))
        return bf16_main(argc > 2 ? atoi(argv[2]) : 3, argc > 3 ? argv[3] : NULL);
    int repeats = argc > 1 ? atoi(argv[1]) : 3;
    const char *only = argc > 2 ? argv[2] : NULL;
    size_t maxa = 0, maxb = 0, maxc = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const shape *s = &shapes[i];
        size_t a = (size_t)s->M * s->K * s->count, b = (size_t)s->K * s->N * s->count,
               c = (size_t)s->M * s->N * s->count;
        maxa = a > maxa ? a : maxa;
        maxb = b > maxb ? b : maxb;
        maxc = c > maxc ? c : maxc;
    }
    float *A = fill(maxa), *B = fill(maxb), *C = fill(maxc);
    dnnl_version_t const *dv = dnnl_version();
    printf("%s| oneDNN %d.%d.%d | best of %d runs >= 0.2 s\n", OPENBLAS_VERSION, dv->major, dv->minor,
           dv->patch, repeats);
    for (int threads = 1; threads <= 2; threads++) {
        bench_threads = threads;
        omp_set_num_threads(threads);
        printf("\n%d thread%s: measured FMA peak %.1f GFLOP/s\n", threads, threads > 1 ? "s" : "",
               peak_gflops(threads));
        printf("%-24s %5s %5s %5s %5s  %9s %9s %6s %9s\n", "product (GFLOP/s)", "M", "N", "K", "count", "openblas",
               "onednn", "dnnl/ob", "qkv gemm");
        double tob = 0, tdn = 0, tqkv = 0;
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
            const shape *s = &shapes[i];
            if (only && !strstr(s->what, only))
                continue;
            double g0 = gflops(0, s, A, B, C, repeats), g1 = gflops(1, s, A, B, C, repeats);
            double flop = 2.0 * s->M * s->N * s->K * s->count;
            tob += flop / g0;
            tdn += flop / g1;
            double g3 = gflops(3, s, A, B, C, repeats);
            tqkv += flop / g3;
            printf("%-24s %5d %5d %5d %5d  %9.1f %9.1f %6.2f %9.1f", s->what, s->M, s->N, s->K, s->count, g0, g1,
                   g1 / g0, g3);
            if (s->count > 1)
                printf("   (OpenBLAS in an OpenMP loop: %.1f)", gflops(2, s, A, B, C, repeats));
            printf("\n");
        }
        printf("%-24s %29s  %8.3fs %8.3fs %6.2f %8.3fs  (seconds for one of each)\n", "total", "", tob / 1e9,
               tdn / 1e9, tob / tdn, tqkv / 1e9);
        if (!only || strcmp(only, "interleaved") == 0) {
            float *Y = fill((size_t)4096 * 512), *mean = fill(4096), *rstd = fill(4096), *w = fill(512),
                  *b = fill(512);
            double i0 = interleaved_ms(0, A, B, C, Y, mean, rstd, w, b);
            double i1 = interleaved_ms(1, A, B, C, Y, mean, rstd, w, b);
            double i3 = interleaved_ms(3, A, B, C, Y, mean, rstd, w, b);
            printf("%-54s %8.2fms %8.2fms %6.2f %8.2fms  (ms per pair)\n",
                   "interleaved [4096x512]x[512x512]^T + layernorm", i0, i1, i0 / i1, i3);
            free(Y), free(mean), free(rstd), free(w), free(b);
        }
    }
    free(A);
    free(B);
    free(C);
    return 0;
}
