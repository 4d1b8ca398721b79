/* GEMM with bfloat16 operands and fp32 accumulation (kernels.h: gemm_bf16),
 * and gemm_mixed, which picks it or gemm() from the bound context.
 *
 * Both operands are rounded to bf16 (nearest even) into buffers of this
 * thread, then one of two products runs, chosen per shape (choose_path;
 * bench/gemm.c "bf16" measured both):
 *   - own: the bf16 linear layer's microkernel (quant.h: vdpbf16ps with
 *     AVX512-BF16, pairs widened to fp32 elsewhere) on op(A) as rows and
 *     op(B)^T packed into panels of 16 columns; threads take groups of
 *     panels, each over all rows;
 *   - oneDNN: dnnl_matmul (bf16 source and weights, f32 destination; it
 *     dispatches to AVX512-BF16 or AMX-BF16 itself) on blocks of C cut
 *     from the shape alone (BF_BLOCK_MIN), each block run by one thread
 *     (oneDNN's OpenMP team held at one thread while it runs). The linear
 *     layer's backward pair rounds its output gradient once for both.
 * Either way every element of C is computed by one thread in an order
 * fixed by the shape, so the bits do not depend on the thread count.
 * bf16 x bf16 products are exact in fp32; the paths differ only in the
 * order of the fp32 additions. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/context.h"
#include "kernels/isa.h"
#include "kernels/kernels.h"
#include "kernels/onednn.h"
#include "kernels/quant.h"
#include "kernels/thread_buf.h"
#include "qkv.h"

/* Blocks of C for oneDNN, as gemm.c cuts them (at most 8 along the longer
 * side of C, from the shape alone) but of at least 64 rows or columns, not
 * 256: the weight gradients of a d_model 256 model (256 x 256, 768 x 256)
 * would otherwise be one block, or three, for two threads. */
#define BF_SPLIT_MIN 1048576.0
#define BF_BLOCK_MIN 64
#define BF_MAX_BLOCKS 8

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int engine_ok; /* an engine, and it makes bf16 matmuls on this CPU */

/* Whether oneDNN makes a bf16 x bf16 -> f32 matmul here: oneDNN 2.6 has none
 * on a CPU without AVX-512 (an AVX2-only one refuses the primitive). */
static int onednn_makes_bf16(void)
{
    dnnl_engine_t engine = onednn_engine();
    dnnl_memory_desc_t amd, bmd, cmd;
    dnnl_dims_t d = {1, 1}, st = {1, 1};
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd = NULL;
    int ok = engine && dnnl_memory_desc_init_by_strides(&amd, 2, d, dnnl_bf16, st) == dnnl_success &&
             dnnl_memory_desc_init_by_strides(&bmd, 2, d, dnnl_bf16, st) == dnnl_success &&
             dnnl_memory_desc_init_by_strides(&cmd, 2, d, dnnl_f32, st) == dnnl_success &&
             dnnl_matmul_desc_init(&md, &amd, &bmd, NULL, &cmd) == dnnl_success &&
             dnnl_primitive_desc_create(&pd, &md, NULL, engine, NULL) == dnnl_success;
    dnnl_primitive_desc_destroy(pd);
    return ok;
}

static void init(void) { engine_ok = onednn_makes_bf16(); }

int gemm_bf16_onednn_ok(void)
{
    pthread_once(&once, init);
    return engine_ok;
}

/* ---- the path ---- */

static int forced = -1;

void gemm_bf16_force(int path) { forced = path; }

/* bench/gemm.c bf16 on an AMD EPYC (Zen 4: AVX512-BF16, no AMX), 1 thread,
 * conversions included, GFLOP/s own / oneDNN: base-model shapes 47/81
 * (X W^T 4096x512x512), 29/71 (dY^T X 512x512x4096), 69/93 (dY E
 * 4096x512x8000); demo-model shapes 121/174, 21/56; the tiny model's
 * 1000x64x64 42/39 (within the noise of a shared machine). oneDNN wins
 * every training shape, by 1.3x to 2.7x, so it runs them all where the CPU
 * has native bf16 products. The own kernel runs where it does not (its
 * widened-pair fallback: only tests get there, since the trainer refuses
 * bf16 on such CPUs) and when oneDNN has no engine. */
static int choose_path(int trans_a, int trans_b, int M, int N, int K)
{
    (void)trans_a, (void)trans_b, (void)M, (void)N, (void)K;
    if (forced >= 0)
        return engine_ok ? forced : GEMM_BF16_OWN;
    if (!engine_ok || !qkv_bf16_native(NULL))
        return GEMM_BF16_OWN;
    return GEMM_BF16_ONEDNN;
}

const char *gemm_bf16_path_name(int trans_a, int trans_b, int M, int N, int K)
{
    pthread_once(&once, init);
    return choose_path(trans_a, trans_b, M, N, K) == GEMM_BF16_ONEDNN ? "onednn" : "own";
}

/* ---- own path ---- */

/* xb[m, k] = bf16(A[k, m]) for op(A) = A^T: A [K, M] (lda), xb [M, Kp].
 * Items: blocks of 16 rows m, columns k in tiles of 64 (cache). */
typedef struct {
    uint16_t *xb;
    const float *A;
    int lda, M, K, Kp;
} tconv_args;

static void conv_transposed(void *arg, long b0, long b1)
{
    const tconv_args *a = arg;
    for (long b = b0; b < b1; b++) {
        int m0 = (int)b * 16, m1 = m0 + 16 < a->M ? m0 + 16 : a->M;
        for (int k0 = 0; k0 < a->Kp; k0 += 64)
            for (int m = m0; m < m1; m++) {
                uint16_t *row = a->xb + (size_t)m * a->Kp;
                int k1 = k0 + 64 < a->Kp ? k0 + 64 : a->Kp;
                for (int k = k0; k < k1; k++) {
                    float v = k < a->K ? a->A[(size_t)k * a->lda + m] : 0.0f;
                    float_to_bf16(row + k, &v, 1);
                }
            }
    }
}

static int own_product(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                       const float *B, int ldb, float beta, float *C, int ldc)
{
    int Kp = linear_bf16_cp(K);
    uint16_t *xb = thread_buf(TBUF_BF16_A, (size_t)M * Kp * 2);
    uint16_t *wb = thread_buf(TBUF_BF16_B, linear_bf16_weight_elems(K, N) * 2);
    if (!xb || !wb)
        return 0;
    if (trans_a) {
        tconv_args c = {xb, A, lda, M, K, Kp};
        kpar_for((M + 15) / 16, (double)M * K, PAR_MIN, conv_transposed, &c);
    } else {
        br_args r = {xb, A, K, Kp, lda};
        kpar_for(M, (double)M * K, PAR_MIN, kernq->bf16_rows, &r);
    }
    bf16_pack_panels(wb, B, ldb, !trans_b, K, N);
    int accum = beta != 0.0f;
    if (accum && beta != 1.0f)
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++)
                C[(size_t)i * ldc + j] *= beta;
    lb_args a = {C, xb, wb, NULL, M, Kp, N, ldc, accum, alpha};
    kpar_for(kernq->linear_bf16_groups(M, N), (double)M * N * K, BF_SPLIT_MIN / 4, kernq->linear_bf16, &a);
    return 1;
}

/* ---- oneDNN path ---- */

typedef struct {
    int trans_a, trans_b, M, N, K;
    float alpha, beta;
    const uint16_t *A; /* op(A) storage, bf16, rows of ca */
    const uint16_t *B; /* op(B) storage, bf16, rows of cb */
    int ca, cb;
    float *C;
    int ldc, split_m, bs, len;
    const float *Af, *Bf; /* the fp32 operands (lda, ldb): a block oneDNN refuses runs on them */
    int lda, ldb;
} dnnl_args;

/* C[m, n] block = alpha op(A) op(B) (+ beta C) on this thread alone. */
static int dnnl_block(const dnnl_args *g, int m, int n, const uint16_t *A, const uint16_t *B, float *C)
{
    if (!engine_ok)
        return 0;
    dnnl_memory_desc_t amd, bmd, cmd;
    dnnl_dims_t ad = {m, g->K}, bd = {g->K, n}, cd = {m, n};
    dnnl_dims_t as = {g->trans_a ? 1 : g->ca, g->trans_a ? g->ca : 1};
    dnnl_dims_t bs = {g->trans_b ? 1 : g->cb, g->trans_b ? g->cb : 1};
    dnnl_dims_t cs = {g->ldc, 1};
    return dnnl_memory_desc_init_by_strides(&amd, 2, ad, dnnl_bf16, as) == dnnl_success &&
           dnnl_memory_desc_init_by_strides(&bmd, 2, bd, dnnl_bf16, bs) == dnnl_success &&
           dnnl_memory_desc_init_by_strides(&cmd, 2, cd, dnnl_f32, cs) == dnnl_success &&
           onednn_matmul(&amd, A, &bmd, B, &cmd, C, g->alpha, g->beta, 0);
}

static void dnnl_blocks(void *arg, long b0, long b1)
{
    dnnl_args *g = arg;
    for (long blk = b0; blk < b1; blk++) {
        int i0 = (int)blk * g->bs, n = g->len - i0 < g->bs ? g->len - i0 : g->bs;
        /* rows i0.. of op(A) and C, or columns i0.. of op(B) and C */
        int m = g->split_m ? n : g->M, nn = g->split_m ? g->N : n;
        size_t ao = g->split_m ? (g->trans_a ? (size_t)i0 : (size_t)i0 * g->ca) : 0;
        size_t bo = g->split_m ? 0 : g->trans_b ? (size_t)i0 * g->cb : (size_t)i0;
        float *C = g->C + (g->split_m ? (size_t)i0 * g->ldc : (size_t)i0);
        if (dnnl_block(g, m, nn, g->A + ao, g->B + bo, C))
            continue;
        /* refused (out of memory, or only a reference implementation
         * offered): this block in fp32, deterministically so; the fp32
         * operands have strides lda, ldb instead of ca, cb */
        size_t afo = g->split_m ? (g->trans_a ? (size_t)i0 : (size_t)i0 * g->lda) : 0;
        size_t bfo = g->split_m ? 0 : g->trans_b ? (size_t)i0 * g->ldb : (size_t)i0;
        gemm(g->trans_a, g->trans_b, m, nn, g->K, g->alpha, g->Af + afo, g->lda, g->Bf + bfo, g->ldb, g->beta, C,
             g->ldc);
    }
}

/* dst [rows, cols] (dense) = bf16(src [rows, cols], ld), rows in parallel */
static void to_bf16(uint16_t *dst, const float *src, int rows, int cols, int ld)
{
    br_args r = {dst, src, cols, cols, ld};
    kpar_for(rows, (double)rows * cols, PAR_MIN, kernq->bf16_rows, &r);
}

/* The product on operands already rounded: ab holds op(A)'s storage (rows
 * of ca), bb op(B)'s (rows of cb); A, B are the fp32 operands, for a
 * block oneDNN refuses. C is cut into blocks along its longer side, sized
 * from the shape alone. */
static void dnnl_run(int trans_a, int trans_b, int M, int N, int K, float alpha, const uint16_t *ab,
                     const uint16_t *bb, const float *A, int lda, const float *B, int ldb, float beta, float *C,
                     int ldc)
{
    int ca = trans_a ? M : K, cb = trans_b ? K : N;
    int split_m = M >= N, len = split_m ? M : N, bsz = len, blocks = 1;
    if ((double)M * N * K >= BF_SPLIT_MIN && len >= 2 * BF_BLOCK_MIN) {
        bsz = (len + BF_MAX_BLOCKS - 1) / BF_MAX_BLOCKS;
        bsz = bsz < BF_BLOCK_MIN ? BF_BLOCK_MIN : (bsz + 15) / 16 * 16;
        blocks = (len + bsz - 1) / bsz;
    }
    dnnl_args g = {trans_a, trans_b, M, N, K, alpha, beta, ab, bb, ca, cb, C, ldc, split_m, bsz, len,
                   A, B, lda, ldb};
    kpar_dynamic(blocks, 2.0 * BF_SPLIT_MIN, BF_SPLIT_MIN, dnnl_blocks, &g);
}

static int dnnl_product(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                        const float *B, int ldb, float beta, float *C, int ldc)
{
    int ra = trans_a ? K : M, ca = trans_a ? M : K, rb = trans_b ? N : K, cb = trans_b ? K : N;
    uint16_t *ab = thread_buf(TBUF_BF16_A, (size_t)ra * ca * 2), *bb = thread_buf(TBUF_BF16_B, (size_t)rb * cb * 2);
    if (!ab || !bb || !engine_ok)
        return 0;
    to_bf16(ab, A, ra, ca, lda);
    to_bf16(bb, B, rb, cb, ldb);
    dnnl_run(trans_a, trans_b, M, N, K, alpha, ab, bb, A, lda, B, ldb, beta, C, ldc);
    return 1;
}

void gemm_bf16(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
               int ldb, float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0)
        return;
    if (K <= 0) {
        gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    pthread_once(&once, init);
    int path = choose_path(trans_a, trans_b, M, N, K);
    if (path == GEMM_BF16_ONEDNN &&
        dnnl_product(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc))
        return;
    if (own_product(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc))
        return;
    /* out of memory for the bf16 copies: the fp32 product, which needs none */
    gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_mixed(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                const float *B, int ldb, float beta, float *C, int ldc)
{
    if (ctx_bf16())
        gemm_bf16(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else
        gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_mixed_linear_backward(float *dinp, float beta, float *dweight, const float *dout, const float *inp,
                                const float *weight, int N, int C, int OC)
{
    /* dout [N, OC] is op(A)'s storage in both products (as is, then
     * transposed): on the oneDNN path it is rounded once, into the A buffer,
     * and each product rounds only its B */
    int shared = ctx_bf16() && N > 0 && C > 0 && OC > 0;
    if (shared) {
        pthread_once(&once, init);
        shared = choose_path(0, 0, N, C, OC) == GEMM_BF16_ONEDNN && choose_path(1, 0, OC, C, N) == GEMM_BF16_ONEDNN;
    }
    size_t wbytes = dinp ? (size_t)OC * C * 2 : 0, ibytes = (size_t)N * C * 2;
    uint16_t *ab = shared ? thread_buf(TBUF_BF16_A, (size_t)N * OC * 2) : NULL;
    uint16_t *bb = ab ? thread_buf(TBUF_BF16_B, wbytes > ibytes ? wbytes : ibytes) : NULL;
    if (!bb) {
        if (dinp)
            gemm_mixed(0, 0, N, C, OC, 1.0f, dout, OC, weight, C, beta, dinp, C);
        gemm_mixed(1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dweight, C);
        return;
    }
    to_bf16(ab, dout, N, OC, OC);
    if (dinp) {
        to_bf16(bb, weight, OC, C, C);
        dnnl_run(0, 0, N, C, OC, 1.0f, ab, bb, dout, OC, weight, C, beta, dinp, C);
    }
    to_bf16(bb, inp, N, C, C);
    dnnl_run(1, 0, OC, C, N, 1.0f, ab, bb, dout, OC, inp, C, 1.0f, dweight, C);
}
