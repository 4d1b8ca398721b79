/* oneDNN's matmul, one call (onednn.h): primitives kept per shape, the
 * scratchpad thread_buf's. */
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/onednn.h"
#include "kernels/thread_buf.h"

static pthread_key_t key; /* the thread's stream */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static dnnl_engine_t engine;

static void stream_free(void *v) { dnnl_stream_destroy(v); }

static void init(void)
{
    pthread_key_create(&key, stream_free);
    if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success)
        engine = NULL;
}

dnnl_engine_t onednn_engine(void)
{
    pthread_once(&once, init);
    return engine;
}

dnnl_stream_t onednn_stream(void)
{
    if (!onednn_engine())
        return NULL;
    dnnl_stream_t st = pthread_getspecific(key);
    if (st)
        return st;
    if (dnnl_stream_create(&st, engine, dnnl_stream_default_flags) != dnnl_success)
        return NULL;
    if (pthread_setspecific(key, st) != 0) {
        dnnl_stream_destroy(st);
        return NULL;
    }
    return st;
}

/* Primitives kept for the process, for callers whose shapes are few (the
 * int8 sums: blocks of whole 32 rows of a model's few weight shapes):
 * making the primitive descriptor again costs about 1 us a call, 10% of a
 * 64 x 256 x 256 product (oneDNN's own cache keeps the generated code, not
 * the descriptor). A primitive runs on any thread at once with a user
 * scratchpad. Past CACHE_MAX shapes, a call makes and drops its own, as
 * every call of a caller with shapes that follow the data (training's
 * batches) does. */
#define CACHE_MAX 256

typedef struct {
    dnnl_memory_desc_t a, b, c;
    float alpha, beta;
    dnnl_primitive_t prim;
    dnnl_memory_desc_t scratch;
} cached;

static cached cache[CACHE_MAX];
static int ncache;
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;

static const cached *lookup(const dnnl_memory_desc_t *amd, const dnnl_memory_desc_t *bmd,
                            const dnnl_memory_desc_t *cmd, float alpha, float beta)
{
    const cached *hit = NULL;
    pthread_mutex_lock(&cache_mu);
    for (int i = 0; i < ncache && !hit; i++) {
        const cached *e = &cache[i];
        if (e->alpha == alpha && e->beta == beta && dnnl_memory_desc_equal(&e->a, amd) &&
            dnnl_memory_desc_equal(&e->c, cmd) && dnnl_memory_desc_equal(&e->b, bmd))
            hit = e;
    }
    pthread_mutex_unlock(&cache_mu);
    return hit;
}

int onednn_pd_fast(const_dnnl_primitive_desc_t pd)
{
    const char *impl = NULL;
    return pd && dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl &&
           strncmp(impl, "ref", 3) != 0;
}

/* A new primitive for the shape: into the cache when kept and there is
 * room (the entry is returned, and *own stays empty), else the caller's to
 * destroy (*own). NULL when oneDNN refused, or offered only a reference
 * implementation: that refusal is kept too (an entry without primitive),
 * so a kept shape asks oneDNN once. */
static const cached *make(const dnnl_memory_desc_t *amd, const dnnl_memory_desc_t *bmd, const dnnl_memory_desc_t *cmd,
                          float alpha, float beta, int keep, cached *own)
{
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_matmul_desc_t md;
    cached e = {*amd, *bmd, *cmd, alpha, beta, NULL, {0}};
    int ok = dnnl_matmul_desc_init(&md, amd, bmd, NULL, cmd) == dnnl_success &&
             dnnl_primitive_attr_create(&attr) == dnnl_success &&
             dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) == dnnl_success;
    if (ok && alpha != 1.0f)
        ok = dnnl_primitive_attr_set_output_scales(attr, 1, 0, &alpha) == dnnl_success;
    if (ok && beta != 0.0f)
        ok = dnnl_post_ops_create(&po) == dnnl_success && dnnl_post_ops_append_sum(po, beta) == dnnl_success &&
             dnnl_primitive_attr_set_post_ops(attr, po) == dnnl_success;
    ok = ok && dnnl_primitive_desc_create(&pd, &md, attr, engine, NULL) == dnnl_success;
    int slow = ok && !onednn_pd_fast(pd);
    ok = ok && !slow && dnnl_primitive_create(&e.prim, pd) == dnnl_success;
    if (ok)
        e.scratch = *dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    dnnl_primitive_desc_destroy(pd);
    dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    if (!ok && !slow)
        return NULL;
    const cached *r = NULL;
    pthread_mutex_lock(&cache_mu);
    if (keep && ncache < CACHE_MAX) {
        cache[ncache] = e;
        r = &cache[ncache++];
    }
    pthread_mutex_unlock(&cache_mu);
    if (slow)
        return NULL;
    if (r)
        return r;
    *own = e;
    return own;
}

int onednn_matmul(const dnnl_memory_desc_t *amd, const void *A, const dnnl_memory_desc_t *bmd, const void *B,
                  const dnnl_memory_desc_t *cmd, void *C, float alpha, float beta, int keep)
{
    pthread_once(&once, init);
    if (!engine)
        return 0;
    int prev = omp_get_max_threads();
    omp_set_num_threads(1);
    cached own = {0};
    const cached *p = keep ? lookup(amd, bmd, cmd, alpha, beta) : NULL;
    if (!p)
        p = make(amd, bmd, cmd, alpha, beta, keep, &own);
    else if (!p->prim)
        p = NULL; /* refused when first asked */
    dnnl_memory_t ma = NULL, mb = NULL, mc = NULL, ms = NULL;
    size_t sbytes = p ? dnnl_memory_desc_get_size(&p->scratch) : 0;
    void *sp = sbytes ? thread_buf(TBUF_ONEDNN, sbytes) : NULL;
    dnnl_stream_t st = p ? onednn_stream() : NULL;
    int ok = p && (!sbytes || sp) && st && dnnl_memory_create(&ma, amd, engine, (void *)A) == dnnl_success &&
             dnnl_memory_create(&mb, bmd, engine, (void *)B) == dnnl_success &&
             dnnl_memory_create(&mc, cmd, engine, C) == dnnl_success &&
             (!sbytes || dnnl_memory_create(&ms, &p->scratch, engine, sp) == dnnl_success);
    if (ok) {
        dnnl_exec_arg_t args[4] = {
            {DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}, {DNNL_ARG_SCRATCHPAD, ms}};
        ok = dnnl_primitive_execute(p->prim, st, sbytes ? 4 : 3, args) == dnnl_success &&
             dnnl_stream_wait(st) == dnnl_success;
    }
    dnnl_memory_destroy(ma), dnnl_memory_destroy(mb), dnnl_memory_destroy(mc), dnnl_memory_destroy(ms);
    dnnl_primitive_destroy(own.prim);
    omp_set_num_threads(prev);
    return ok;
}
