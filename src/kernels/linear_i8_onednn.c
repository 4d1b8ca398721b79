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
 * Blocks of rows go to the context's threads, each an onednn_matmul on
 * its thread alone followed by the store of its rows. */
#include <omp.h>
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
/* At most this many bytes of a block's sums (fewer rows per block for
 * wide outputs, 32 at least), so that they are stored from cache. */
#define I8_ONEDNN_SUMS_BYTES (512u << 10)

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

/* The weight in oneDNN's layout: the one its matmul picks for u8 x s8
 * -> s32 at these C and OC (asked with I8_ONEDNN_ROWS_STEP rows; the
 * layout follows the weight's shape), reordered from the plain rows once
 * when the model loads, so that a call does not repack it. */
struct i8_onednn_weight {
    dnnl_memory_desc_t md;
    void *data;
};

i8_onednn_weight *linear_i8_onednn_pack(const int8_t *wrows, int C, int OC)
{
    dnnl_engine_t eng = onednn_engine();
    i8_onednn_weight *w = calloc(1, sizeof *w);
    if (!eng || !w || C <= 0 || OC <= 0) {
        free(w);
        return NULL;
    }
    dnnl_memory_desc_t amd, bmd, cmd, plain;
    dnnl_dims_t ad = {I8_ONEDNN_ROWS_STEP, C}, bd = {C, OC}, cd = {I8_ONEDNN_ROWS_STEP, OC};
    dnnl_dims_t as = {C, 1}, bs = {1, C}, cs = {OC, 1};
    dnnl_matmul_desc_t mmd;
    dnnl_primitive_desc_t pd = NULL, rpd = NULL;
    dnnl_primitive_t reorder = NULL;
    dnnl_memory_t src = NULL, dst = NULL;
    dnnl_stream_t st = onednn_stream();
    /* on this thread alone, as the matmuls (oneDNN fixes a primitive's
     * threads when it makes it): an OpenMP team made here would spin
     * beside qkv's own threads */
    int prev = omp_get_max_threads();
    omp_set_num_threads(1);
    int ok = st && dnnl_memory_desc_init_by_strides(&amd, 2, ad, dnnl_u8, as) == dnnl_success &&
             dnnl_memory_desc_init_by_tag(&bmd, 2, bd, dnnl_s8, dnnl_format_tag_any) == dnnl_success &&
             dnnl_memory_desc_init_by_strides(&cmd, 2, cd, dnnl_s32, cs) == dnnl_success &&
             dnnl_memory_desc_init_by_strides(&plain, 2, bd, dnnl_s8, bs) == dnnl_success &&
             dnnl_matmul_desc_init(&mmd, &amd, &bmd, NULL, &cmd) == dnnl_success &&
             dnnl_primitive_desc_create(&pd, &mmd, NULL, eng, NULL) == dnnl_success && onednn_pd_fast(pd);
    if (ok) {
        w->md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
        w->data = aligned_alloc(64, (dnnl_memory_desc_get_size(&w->md) + 63) & ~(size_t)63);
        ok = w->data && dnnl_memory_create(&src, &plain, eng, (void *)wrows) == dnnl_success &&
             dnnl_memory_create(&dst, &w->md, eng, w->data) == dnnl_success &&
             dnnl_reorder_primitive_desc_create(&rpd, &plain, eng, &w->md, eng, NULL) == dnnl_success &&
             dnnl_primitive_create(&reorder, rpd) == dnnl_success;
    }
    if (ok) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}};
        ok = dnnl_primitive_execute(reorder, st, 2, args) == dnnl_success && dnnl_stream_wait(st) == dnnl_success;
    }
    dnnl_primitive_destroy(reorder);
    dnnl_primitive_desc_destroy(rpd);
    dnnl_primitive_desc_destroy(pd);
    dnnl_memory_destroy(src), dnnl_memory_destroy(dst);
    omp_set_num_threads(prev);
    if (!ok) {
        linear_i8_onednn_weight_free(w);
        return NULL;
    }
    return w;
}

size_t linear_i8_onednn_weight_bytes(const i8_onednn_weight *w) { return w ? dnnl_memory_desc_get_size(&w->md) : 0; }

void linear_i8_onednn_weight_free(i8_onednn_weight *w)
{
    if (w) {
        free(w->data);
        free(w);
    }
}

/* acc [n, OC] = xq [n, C] (row stride ldx) x the weight, on this thread
 * alone */
static int matmul(int32_t *acc, const uint8_t *xq, int ldx, const i8_onednn_weight *w, int n, int C, int OC)
{
    dnnl_memory_desc_t amd, cmd;
    dnnl_dims_t ad = {n, C}, cd = {n, OC};
    dnnl_dims_t as = {ldx, 1}, cs = {OC, 1};
    return dnnl_memory_desc_init_by_strides(&amd, 2, ad, dnnl_u8, as) == dnnl_success &&
           dnnl_memory_desc_init_by_strides(&cmd, 2, cd, dnnl_s32, cs) == dnnl_success &&
           onednn_matmul(&amd, xq, &w->md, w->data, &cmd, acc, 1.0f, 0.0f, 1);
}

typedef struct {
    float *out;
    const uint8_t *xq;
    const float *xs;
    const int32_t *xz;
    const i8_onednn_weight *w;
    const float *ws;
    const int32_t *wsum;
    const float *bias;
    int ldx, N, C, OC, bs;
    _Atomic int failed;
} blocks_args;

/* Items: blocks of bs rows, each summed into this thread's buffer and
 * stored from it while it is in cache; a short last block runs as bs rows
 * (zero rows past N, their sums dropped). */
static void blocks(void *arg, long b0, long b1)
{
    blocks_args *a = arg;
    int32_t *acc = thread_buf(TBUF_I8_SUMS, (size_t)a->bs * a->OC * sizeof(int32_t));
    for (long b = b0; b < b1 && !a->failed; b++) {
        int r0 = (int)b * a->bs, n = a->N - r0 < a->bs ? a->N - r0 : a->bs;
        const uint8_t *x = a->xq + (size_t)r0 * a->ldx;
        int ok = acc != NULL;
        if (ok && n < a->bs) {
            uint8_t *px = thread_buf(TBUF_I8_PAD_X, (size_t)a->bs * a->ldx);
            ok = px != NULL;
            if (ok) {
                memcpy(px, x, (size_t)n * a->ldx);
                memset(px + (size_t)n * a->ldx, 0, (size_t)(a->bs - n) * a->ldx);
                x = px;
            }
        }
        ok = ok && matmul(acc, x, a->ldx, a->w, a->bs, a->C, a->OC);
        if (!ok) {
            a->failed = 1;
            break;
        }
        sums_args s = {a->out + (size_t)r0 * a->OC, acc, a->xs + r0, a->xz + r0, a->ws, a->wsum, a->bias, a->OC};
        kernq->store_sums(&s, 0, n);
    }
}

int linear_i8_onednn(float *out, const uint8_t *xq, int ldx, const float *xs, const int32_t *xz,
                     const i8_onednn_weight *w, const float *ws, const int32_t *wsum, const float *bias, int N, int C,
                     int OC)
{
    if (!onednn_engine())
        return 0;
    const qkv_context *cx = ctx_current();
    int threads = cx ? cx->threads : 1, step = I8_ONEDNN_ROWS_STEP;
    int bs = ((N + threads - 1) / threads + step - 1) / step * step;
    int cap = (int)(I8_ONEDNN_SUMS_BYTES / ((size_t)OC * sizeof(int32_t))) / step * step;
    if (bs > cap)
        bs = cap > step ? cap : step;
    blocks_args a = {out, xq, xs, xz, w, ws, wsum, bias, ldx, N, C, OC, bs, 0};
    long nb = (N + bs - 1) / bs;
    if (nb == 1)
        blocks(&a, 0, 1);
    else
        kpar_dynamic(nb, (double)N * C * OC, 0, blocks, &a);
    return !a.failed;
}
