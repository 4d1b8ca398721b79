/* GEMM behind one interface: the only file that knows which BLAS runs.
 *
 * OpenBLAS's cblas_sgemm (bench/gemm.c found oneDNN no faster here), always
 * single-threaded, with the threading done here by the OpenMP team that runs
 * every other kernel: the threads take blocks of rows (or columns) of C.
 * Two reasons: one pool of threads instead of two (OpenBLAS's pthreads would
 * spin between calls while the OpenMP team runs the layer norm or softmax
 * that follows each product; bench/gemm.c "interleaved" measures that), and
 * results that do not depend on the thread count (blocks below). */
#include <cblas.h>
#include <omp.h>
#include <pthread.h>

#include "kernels/kernels.h"

/* From OpenBLAS; declared here so only this file knows which BLAS runs. */
void openblas_set_num_threads(int n);

/* Products of at least GEMM_SPLIT_MIN multiply-adds are cut along the
 * longer side of C into at most GEMM_MAX_BLOCKS blocks of at least
 * GEMM_BLOCK_MIN rows (or columns), sized from the shape alone: the result is
 * then the same bits for any thread count, and a thread that the OS preempts
 * holds up one block, not half the product. Few blocks, because each call
 * packs the other operand again (the 8000-word output layer would otherwise
 * repack its 4096 x 512 input 32 times; 8 blocks keep 2 to 8 threads busy).
 * Blocks of 128 were tried for the d_model 256 weight gradients (256 x 256
 * over 3000 tokens, left whole on one thread by blocks of 256): each block
 * repacks the 3000 x 256 operand, and on a shared machine (one core free)
 * the product took 6.8 ms instead of 5.1 ms (gemm() timed alone). */
#define GEMM_SPLIT_MIN 1048576.0
#define GEMM_BLOCK_MIN 256
#define GEMM_MAX_BLOCKS 8

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static void blas_single_threaded(void) { openblas_set_num_threads(1); }

/* C = beta C, without reading C when beta == 0 (BLAS rule). */
static void scale_c(int M, int N, float beta, float *C, int ldc)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++)
            C[(size_t)i * ldc + j] = beta == 0 ? 0 : beta * C[(size_t)i * ldc + j];
}

static void sgemm1(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                   const float *B, int ldb, float beta, float *C, int ldc)
{
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K,
                alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
          int ldb, float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0)
        return;
    if (K <= 0) {
        /* BLAS would reject lda = 0 with a message on stderr. */
        scale_c(M, N, beta, C, ldc);
        return;
    }
    pthread_once(&blas_once, blas_single_threaded);
    int split_m = M >= N;
    int len = split_m ? M : N;
    if ((double)M * N * K < GEMM_SPLIT_MIN || len < 2 * GEMM_BLOCK_MIN) {
        sgemm1(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    int bs = (len + GEMM_MAX_BLOCKS - 1) / GEMM_MAX_BLOCKS;
    bs = bs < GEMM_BLOCK_MIN ? GEMM_BLOCK_MIN : (bs + 15) / 16 * 16; /* whole 16-wide panels */
    int blocks = (len + bs - 1) / bs;
#pragma omp parallel for schedule(dynamic, 1)
    for (int blk = 0; blk < blocks; blk++) {
        int i0 = blk * bs, n = len - i0 < bs ? len - i0 : bs;
        if (split_m) /* rows i0.. of op(A) and C */
            sgemm1(trans_a, trans_b, n, N, K, alpha, trans_a ? A + i0 : A + (size_t)i0 * lda, lda, B, ldb, beta,
                   C + (size_t)i0 * ldc, ldc);
        else /* columns i0.. of op(B) and C */
            sgemm1(trans_a, trans_b, M, n, K, alpha, A, lda, trans_b ? B + (size_t)i0 * ldb : B + i0, ldb, beta,
                   C + i0, ldc);
    }
}

/* Products this small (and at most this wide) skip the BLAS in gemm_batched:
 * attention's per-head products (a 20 x 20 x 64 score block, or 3 x 3 x 64
 * in a batch of 1,000 short rows) cost OpenBLAS more in call setup and
 * packing than in arithmetic (measured: ~3 us a call, ~8 GFLOP/s on a
 * training step's 56k such calls). */
#define SMALL_MAX_FLOPS 4096.0 /* M N K: up to ~8 x 8 x 64 (bench/: BLAS wins above) */
#define SMALL_MAX_DIM 256        /* N and K: the row buffers below */

/* One small product, C = alpha op(A) op(B) + beta C, in plain loops. Each
 * element sums over k in order, so the bits depend on the shape only. */
static void gemm_small(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                       const float *B, int ldb, float beta, float *C, int ldc)
{
    float acc[SMALL_MAX_DIM], arow[SMALL_MAX_DIM];
    for (int i = 0; i < M; i++) {
        const float *a = A + (size_t)i * lda;
        if (trans_a) { /* row i of op(A) is column i of A */
            for (int k = 0; k < K; k++)
                arow[k] = A[(size_t)k * lda + i];
            a = arow;
        }
        float *c = C + (size_t)i * ldc;
        if (trans_b) {
            /* dot form: B is [N, K], rows contiguous in k; four at a time */
            int j = 0;
            for (; j + 4 <= N; j += 4) {
                const float *b0 = B + (size_t)j * ldb, *b1 = b0 + ldb, *b2 = b1 + ldb, *b3 = b2 + ldb;
                float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
                for (int k = 0; k < K; k++) {
                    s0 += a[k] * b0[k];
                    s1 += a[k] * b1[k];
                    s2 += a[k] * b2[k];
                    s3 += a[k] * b3[k];
                }
                acc[j] = s0;
                acc[j + 1] = s1;
                acc[j + 2] = s2;
                acc[j + 3] = s3;
            }
            for (; j < N; j++) {
                const float *b0 = B + (size_t)j * ldb;
                float s0 = 0;
#pragma omp simd reduction(+ : s0)
                for (int k = 0; k < K; k++)
                    s0 += a[k] * b0[k];
                acc[j] = s0;
            }
        } else {
            /* axpy form: rows of B, contiguous in j. A zero weight (a masked
             * or causal attention probability) adds exactly nothing to a
             * finite row, so it is skipped. */
            int j0 = 0;
            for (; j0 + 16 <= N; j0 += 16) { /* 16 columns: two registers of sums */
                float s16[16] = {0};
                for (int k = 0; k < K; k++) {
                    float w = a[k];
                    if (w == 0)
                        continue;
                    const float *b = B + (size_t)k * ldb + j0;
#pragma omp simd
                    for (int j = 0; j < 16; j++)
                        s16[j] += w * b[j];
                }
                for (int j = 0; j < 16; j++)
                    acc[j0 + j] = s16[j];
            }
            for (int j = j0; j < N; j++)
                acc[j] = 0;
            for (int k = 0; k < K && j0 < N; k++) {
                float w = a[k];
                if (w == 0)
                    continue;
                const float *b = B + (size_t)k * ldb;
                for (int j = j0; j < N; j++)
                    acc[j] += w * b[j];
            }
        }
        if (beta == 0) {
#pragma omp simd
            for (int j = 0; j < N; j++)
                c[j] = alpha * acc[j];
        } else {
#pragma omp simd
            for (int j = 0; j < N; j++)
                c[j] = alpha * acc[j] + beta * c[j];
        }
    }
}

void gemm_batched(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                  size_t stride_a, const float *B, int ldb, size_t stride_b, float beta, float *C, int ldc,
                  size_t stride_c, int count)
{
    if (count == 1 || (double)M * N * K >= GEMM_SPLIT_MIN) {
        /* few or large products: one at a time, each split by gemm() */
        for (int i = 0; i < count; i++)
            gemm(trans_a, trans_b, M, N, K, alpha, A + i * stride_a, lda, B + i * stride_b, ldb, beta,
                 C + i * stride_c, ldc);
        return;
    }
    /* attention's many small per-head products: threads take whole ones */
    int small = (double)M * N * K <= SMALL_MAX_FLOPS && N <= SMALL_MAX_DIM && K <= SMALL_MAX_DIM && K > 0;
#pragma omp parallel for schedule(dynamic, 4) if ((double)M * N * K * count > GEMM_SPLIT_MIN / 4)
    for (int i = 0; i < count; i++) {
        if (small)
            gemm_small(trans_a, trans_b, M, N, K, alpha, A + i * stride_a, lda, B + i * stride_b, ldb, beta,
                       C + i * stride_c, ldc);
        else
            gemm(trans_a, trans_b, M, N, K, alpha, A + i * stride_a, lda, B + i * stride_b, ldb, beta,
                 C + i * stride_c, ldc);
    }
}
