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
#include <pthread.h>

#include "kernels/isa.h"
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

typedef struct {
    int trans_a, trans_b, M, N, K;
    float alpha;
    const float *A;
    int lda;
    const float *B;
    int ldb;
    float beta;
    float *C;
    int ldc, split_m, bs, len;
} gemm_args;

/* Items: blocks of bs rows (split_m) or columns of C. */
static void gemm_blocks(void *arg, long b0, long b1)
{
    const gemm_args *g = arg;
    for (long blk = b0; blk < b1; blk++) {
        int i0 = (int)blk * g->bs, n = g->len - i0 < g->bs ? g->len - i0 : g->bs;
        if (g->split_m) /* rows i0.. of op(A) and C */
            sgemm1(g->trans_a, g->trans_b, n, g->N, g->K, g->alpha,
                   g->trans_a ? g->A + i0 : g->A + (size_t)i0 * g->lda, g->lda, g->B, g->ldb, g->beta,
                   g->C + (size_t)i0 * g->ldc, g->ldc);
        else /* columns i0.. of op(B) and C */
            sgemm1(g->trans_a, g->trans_b, g->M, n, g->K, g->alpha, g->A, g->lda,
                   g->trans_b ? g->B + (size_t)i0 * g->ldb : g->B + i0, g->ldb, g->beta, g->C + i0, g->ldc);
    }
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
    gemm_args ga = {trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, split_m, bs, len};
    kpar_dynamic(blocks, 2.0 * GEMM_SPLIT_MIN, GEMM_SPLIT_MIN, gemm_blocks, &ga);
}

/* Products this small (and at most this wide) skip the BLAS in gemm_batched
 * for the dispatch table's gemm_small:
 * attention's per-head products (a 20 x 20 x 64 score block, or 3 x 3 x 64
 * in a batch of 1,000 short rows) cost OpenBLAS more in call setup and
 * packing than in arithmetic (measured: ~3 us a call, ~8 GFLOP/s on a
 * training step's 56k such calls). */
#define SMALL_MAX_FLOPS 4096.0 /* M N K: up to ~8 x 8 x 64 (bench/: BLAS wins above) */
#define SMALL_MAX_DIM 256        /* N and K: gemm_small's row buffers (impl/rows.inc) */

typedef struct {
    int trans_a, trans_b, M, N, K;
    float alpha;
    const float *A;
    int lda;
    size_t stride_a;
    const float *B;
    int ldb;
    size_t stride_b;
    float beta;
    float *C;
    int ldc;
    size_t stride_c;
    int small;
} batched_args;

/* Items: whole products (gemm() inside runs on this thread). */
static void batched_items(void *arg, long i0, long i1)
{
    const batched_args *g = arg;
    for (long i = i0; i < i1; i++) {
        const float *A = g->A + i * g->stride_a, *B = g->B + i * g->stride_b;
        float *C = g->C + i * g->stride_c;
        if (g->small)
            kern->gemm_small(g->trans_a, g->trans_b, g->M, g->N, g->K, g->alpha, A, g->lda, B, g->ldb, g->beta, C,
                             g->ldc);
        else
            gemm(g->trans_a, g->trans_b, g->M, g->N, g->K, g->alpha, A, g->lda, B, g->ldb, g->beta, C, g->ldc);
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
    batched_args ba = {trans_a, trans_b, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C, ldc, stride_c,
                       (double)M * N * K <= SMALL_MAX_FLOPS && N <= SMALL_MAX_DIM && K <= SMALL_MAX_DIM && K > 0};
    kpar_for(count, (double)M * N * K * count, GEMM_SPLIT_MIN / 4, batched_items, &ba);
}
