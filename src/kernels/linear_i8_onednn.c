/* int8 products through oneDNN's matmul (quant.h: linear_i8_onednn), for
 * CPUs with AMX-INT8, where oneDNN runs u8 x s8 -> s32 on the tiles
 * (it asks the kernel for the tile state itself; cpu.c asked first).
 *
 * What oneDNN computes is only the integer sums of the scheme in quant.h,
 * [N, OC] s32 from the 7-bit activations and the weight rows (kept plain,
 * [OC, C], beside the panels); the zero point, the scales and the bias
 * are applied by linear_i8_forward_rows with the own paths' store. Integer
 * sums are exact on every oneDNN kernel (AMX and VNNI accumulate in s32;
 * on AVX2 `vpmaddubsw` cannot saturate on 7-bit u8), so the results equal
 * the own kernels' to the bit, which the tests check with the path forced
 * on any CPU.
 *
 * Blocks of rows go to the context's threads one each, each an
 * onednn_matmul on its thread alone. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/context.h"
#include "kernels/cpu.h"
#include "kernels/isa.h"
#include "kernels/onednn.h"
#include "kernels/parallel.h"
#include "kernels/quant.h"
#include "kernels/thread_buf.h"

/* Rows from which a product goes to oneDNN where it is wanted: below, the
 * call's fixed cost (the primitive from oneDNN's cache, memory objects)
 * weighs more than the tiles save; a decoding step of beam 4 batch 32 has
 * 128 rows, the encoder hundreds. oneDNN 2.6's AMX u8 x s8 was measured
 * for this project at 2,296 GFLOP/s for 32 x 1024 x 256 on 2 cores of an
 * Intel Xeon with AMX, several times what a VNNI kernel reaches. */
#define I8_ONEDNN_MIN_ROWS 64
/* Rows per block handed to one thread: a multiple of this, and as many
 * blocks as threads. Every block runs that many rows (the last one padded
 * with zero rows, its extra sums dropped), so that a translation meets a
 * few shapes, whose primitives oneDNN's cache keeps, instead of one per
 * row count (each new shape is a kernel generated at run time). */
#define I8_ONEDNN_ROWS_STEP 32

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int forced = -1;
static int env_choice = -1; /* $QKV_INT8_ONEDNN: 0 never, 1 from 64 rows on any CPU */

static void init(void)
{
    const char *e = getenv("QKV_INT8_ONEDNN");
    if (e && (!strcmp(e, "0") || !strcmp(e, "1")))
        env_choice = e[0] - '0';
    else if (e && *e)
        fprintf(stderr, "qkv: warning: QKV_INT8_ONEDNN=%s: expected 0 or 1; ignored\n", e);
}

void linear_i8_onednn_force(int on) { forced = on; }

int linear_i8_onednn_wanted(void)
{
    pthread_once(&once, init);
    if (!onednn_engine())
        return 0;
    if (forced >= 0)
        return forced;
    if (env_choice >= 0)
        return env_choice;
    const cpu_features *f = cpu_get_features();
    return f->amx_int8 && f->amx_granted && kern->isa >= ISA_AVX512;
}

int linear_i8_onednn_use(int N) { return linear_i8_onednn_wanted() && (forced == 1 || N >= I8_ONEDNN_MIN_ROWS); }

/* acc [n, OC] = xq [n, C] (row stride ldx) x wrows^T on this thread alone */
static int matmul(int32_t *acc, const uint8_t *xq, int ldx, const int8_t *wrows, int n, int C, int OC)
{
    dnnl_memory_desc_t amd, bmd, cmd;
    dnnl_dims_t ad = {n, C}, bd = {C, OC}, cd = {n, OC};
    dnnl_dims_t as = {ldx, 1}, bs = {1, C}, cs = {OC, 1};
    return dnnl_memory_desc_init_by_strides(&amd, 2, ad, dnnl_u8, as) == dnnl_success &&
           dnnl_memory_desc_init_by_strides(&bmd, 2, bd, dnnl_s8, bs) == dnnl_success &&
           dnnl_memory_desc_init_by_strides(&cmd, 2, cd, dnnl_s32, cs) == dnnl_success &&
           onednn_matmul(&amd, xq, &bmd, wrows, &cmd, acc, NULL);
}

typedef struct {
    int32_t *acc;
    const uint8_t *xq;
    const int8_t *wrows;
    int ldx, N, C, OC, bs;
    _Atomic int failed;
} blocks_args;

/* Items: blocks of bs rows; a short last block runs as bs rows through
 * this thread's padded buffers. */
static void blocks(void *arg, long b0, long b1)
{
    blocks_args *a = arg;
    for (long b = b0; b < b1; b++) {
        int r0 = (int)b * a->bs, n = a->N - r0 < a->bs ? a->N - r0 : a->bs, ok;
        int32_t *acc = a->acc + (size_t)r0 * a->OC;
        const uint8_t *x = a->xq + (size_t)r0 * a->ldx;
        if (n == a->bs) {
            ok = matmul(acc, x, a->ldx, a->wrows, n, a->C, a->OC);
        } else {
            uint8_t *px = thread_buf(TBUF_I8_PAD_X, (size_t)a->bs * a->ldx);
            int32_t *pa = thread_buf(TBUF_I8_PAD_SUMS, (size_t)a->bs * a->OC * sizeof(int32_t));
            ok = px && pa;
            if (ok) {
                memcpy(px, x, (size_t)n * a->ldx);
                memset(px + (size_t)n * a->ldx, 0, (size_t)(a->bs - n) * a->ldx);
                ok = matmul(pa, px, a->ldx, a->wrows, a->bs, a->C, a->OC);
                if (ok)
                    memcpy(acc, pa, (size_t)n * a->OC * sizeof(int32_t));
            }
        }
        if (!ok)
            a->failed = 1;
    }
}

int32_t *linear_i8_onednn(const uint8_t *xq, int ldx, const int8_t *wrows, int N, int C, int OC)
{
    int32_t *acc = thread_buf(TBUF_I8_SUMS, (size_t)N * OC * sizeof(int32_t));
    if (!acc || !onednn_engine())
        return NULL;
    const qkv_context *cx = ctx_current();
    int threads = cx ? cx->threads : 1, bs = (N + threads - 1) / threads;
    bs = (bs + I8_ONEDNN_ROWS_STEP - 1) / I8_ONEDNN_ROWS_STEP * I8_ONEDNN_ROWS_STEP;
    blocks_args a = {acc, xq, wrows, ldx, N, C, OC, bs, 0};
    long nb = (N + bs - 1) / bs;
    if (nb == 1)
        blocks(&a, 0, 1);
    else
        kpar_dynamic(nb, (double)N * C * OC, 0, blocks, &a);
    return a.failed ? NULL : acc;
}
