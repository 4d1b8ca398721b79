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
 * Blocks of rows go to the context's threads one each, oneDNN's OpenMP
 * team held at one thread while it runs (as gemm_bf16.c). */
#include <dnnl.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/context.h"
#include "kernels/cpu.h"
#include "kernels/isa.h"
#include "kernels/parallel.h"
#include "kernels/quant.h"

/* Rows from which a product goes to oneDNN where it is wanted: below, the
 * call's fixed cost (the primitive from oneDNN's cache, memory objects)
 * weighs more than the tiles save; a decoding step of beam 4 batch 32 has
 * 128 rows, the encoder hundreds. The Xeon measured oneDNN's AMX
 * u8 x s8 at 2,296 GFLOP/s for 32 x 1024 x 256 (2 threads), several times
 * what a VNNI kernel reaches. */
#define I8_ONEDNN_MIN_ROWS 64
/* Rows per block handed to one thread: at least this many, and as many
 * blocks as threads. */
#define I8_ONEDNN_BLOCK_MIN 32

typedef struct {
    dnnl_stream_t stream;
    void *scratch;
    size_t n_scratch;
    int32_t *acc;
    size_t n_acc;
} tls_t;

static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static dnnl_engine_t engine;
static int engine_ok;
static int forced = -1;

static void tls_free(void *v)
{
    tls_t *t = v;
    if (t->stream)
        dnnl_stream_destroy(t->stream);
    free(t->scratch);
    free(t->acc);
    free(t);
}

static int env_choice = -1; /* $QKV_INT8_ONEDNN: 0 never, 1 from 64 rows on any CPU */

static void init(void)
{
    pthread_key_create(&key, tls_free);
    engine_ok = dnnl_engine_create(&engine, dnnl_cpu, 0) == dnnl_success;
    const char *e = getenv("QKV_INT8_ONEDNN");
    if (e && (!strcmp(e, "0") || !strcmp(e, "1")))
        env_choice = e[0] - '0';
    else if (e && *e)
        fprintf(stderr, "qkv: warning: QKV_INT8_ONEDNN=%s: expected 0 or 1; ignored\n", e);
}

static tls_t *tls(void)
{
    pthread_once(&once, init);
    tls_t *t = pthread_getspecific(key);
    if (!t && (t = calloc(1, sizeof *t)) && pthread_setspecific(key, t) != 0) {
        free(t);
        t = NULL;
    }
    return t;
}

static void *grow(void **p, size_t *n, size_t bytes)
{
    if (*n < bytes) {
        free(*p);
        size_t m = (bytes + 4095) / 4096 * 4096;
        *p = aligned_alloc(64, m);
        *n = *p ? m : 0;
    }
    return *p;
}

void linear_i8_onednn_force(int on) { forced = on; }

int linear_i8_onednn_wanted(void)
{
    pthread_once(&once, init);
    if (!engine_ok)
        return 0;
    if (forced >= 0)
        return forced;
    if (env_choice >= 0)
        return env_choice;
    const cpu_features *f = cpu_get_features();
    return f->amx_int8 && f->amx_granted && kern->isa >= ISA_AVX512;
}

int linear_i8_onednn_use(int N) { return linear_i8_onednn_wanted() && (forced == 1 || N >= I8_ONEDNN_MIN_ROWS); }

/* acc rows [r0, r0 + n) on this thread alone */
static int block(int32_t *acc, const uint8_t *xq, int ldx, const int8_t *wrows, int n, int C, int OC)
{
    tls_t *t = tls();
    if (!t || !engine_ok)
        return 0;
    int prev = omp_get_max_threads();
    omp_set_num_threads(1);
    dnnl_memory_desc_t amd, bmd, cmd;
    dnnl_dims_t ad = {n, C}, bd = {C, OC}, cd = {n, OC};
    dnnl_dims_t as = {ldx, 1}, bs = {1, C}, cs = {OC, 1};
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_memory_t ma = NULL, mb = NULL, mc = NULL, ms = NULL;
    dnnl_matmul_desc_t md;
    int ok = dnnl_memory_desc_init_by_strides(&amd, 2, ad, dnnl_u8, as) == dnnl_success &&
             dnnl_memory_desc_init_by_strides(&bmd, 2, bd, dnnl_s8, bs) == dnnl_success &&
             dnnl_memory_desc_init_by_strides(&cmd, 2, cd, dnnl_s32, cs) == dnnl_success &&
             dnnl_matmul_desc_init(&md, &amd, &bmd, NULL, &cmd) == dnnl_success &&
             dnnl_primitive_attr_create(&attr) == dnnl_success &&
             dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) == dnnl_success &&
             dnnl_primitive_desc_create(&pd, &md, attr, engine, NULL) == dnnl_success &&
             dnnl_primitive_create(&prim, pd) == dnnl_success;
    const dnnl_memory_desc_t *smd = ok ? dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0) : NULL;
    size_t sbytes = smd ? dnnl_memory_desc_get_size(smd) : 0;
    void *sp = sbytes ? grow(&t->scratch, &t->n_scratch, sbytes) : NULL;
    ok = ok && (!sbytes || sp);
    if (ok && !t->stream)
        ok = dnnl_stream_create(&t->stream, engine, dnnl_stream_default_flags) == dnnl_success;
    ok = ok && dnnl_memory_create(&ma, &amd, engine, (void *)xq) == dnnl_success &&
         dnnl_memory_create(&mb, &bmd, engine, (void *)wrows) == dnnl_success &&
         dnnl_memory_create(&mc, &cmd, engine, acc) == dnnl_success &&
         (!sbytes || dnnl_memory_create(&ms, smd, engine, sp) == dnnl_success);
    if (ok) {
        dnnl_exec_arg_t args[4] = {
            {DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}, {DNNL_ARG_SCRATCHPAD, ms}};
        ok = dnnl_primitive_execute(prim, t->stream, sbytes ? 4 : 3, args) == dnnl_success &&
             dnnl_stream_wait(t->stream) == dnnl_success;
    }
    dnnl_memory_destroy(ma), dnnl_memory_destroy(mb), dnnl_memory_destroy(mc), dnnl_memory_destroy(ms);
    dnnl_primitive_destroy(prim);
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_attr_destroy(attr);
    omp_set_num_threads(prev);
    return ok;
}

typedef struct {
    int32_t *acc;
    const uint8_t *xq;
    const int8_t *wrows;
    int ldx, N, C, OC, bs;
    _Atomic int failed;
} blocks_args;

static void blocks(void *arg, long b0, long b1)
{
    blocks_args *a = arg;
    for (long b = b0; b < b1; b++) {
        int r0 = (int)b * a->bs, n = a->N - r0 < a->bs ? a->N - r0 : a->bs;
        if (!block(a->acc + (size_t)r0 * a->OC, a->xq + (size_t)r0 * a->ldx, a->ldx, a->wrows, n, a->C, a->OC))
            a->failed = 1;
    }
}

int32_t *linear_i8_onednn(const uint8_t *xq, int ldx, const int8_t *wrows, int N, int C, int OC)
{
    tls_t *t = tls();
    int32_t *acc = t ? grow((void **)&t->acc, &t->n_acc, (size_t)N * OC * sizeof(int32_t)) : NULL;
    if (!acc || !engine_ok)
        return NULL;
    const qkv_context *cx = ctx_current();
    int threads = cx ? cx->threads : 1, bs = (N + threads - 1) / threads;
    bs = bs < I8_ONEDNN_BLOCK_MIN ? I8_ONEDNN_BLOCK_MIN : (bs + 15) / 16 * 16;
    blocks_args a = {acc, xq, wrows, ldx, N, C, OC, bs, 0};
    long nb = (N + bs - 1) / bs;
    if (nb == 1)
        blocks(&a, 0, 1);
    else
        kpar_dynamic(nb, (double)N * C * OC, 0, blocks, &a);
    return a.failed ? NULL : acc;
}
