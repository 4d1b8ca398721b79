/* oneDNN's matmul, one call (onednn.h); its scratchpad is thread_buf's. */
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>

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

/* the thread's stream, made on first use; NULL when oneDNN refuses one */
static dnnl_stream_t stream(void)
{
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

int onednn_matmul(const dnnl_memory_desc_t *amd, const void *A, const dnnl_memory_desc_t *bmd, const void *B,
                  const dnnl_memory_desc_t *cmd, void *C, dnnl_primitive_attr_t attr)
{
    pthread_once(&once, init);
    if (!engine)
        return 0;
    int prev = omp_get_max_threads();
    omp_set_num_threads(1);
    dnnl_primitive_attr_t own = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_memory_t ma = NULL, mb = NULL, mc = NULL, ms = NULL;
    dnnl_matmul_desc_t md;
    int ok = dnnl_matmul_desc_init(&md, amd, bmd, NULL, cmd) == dnnl_success &&
             (attr || dnnl_primitive_attr_create(&own) == dnnl_success);
    if (!attr)
        attr = own;
    /* the primitive itself comes from oneDNN's primitive cache after the
     * first call of a shape */
    ok = ok && dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) == dnnl_success &&
         dnnl_primitive_desc_create(&pd, &md, attr, engine, NULL) == dnnl_success &&
         dnnl_primitive_create(&prim, pd) == dnnl_success;
    const dnnl_memory_desc_t *smd = ok ? dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0) : NULL;
    size_t sbytes = smd ? dnnl_memory_desc_get_size(smd) : 0;
    void *sp = sbytes ? thread_buf(TBUF_ONEDNN, sbytes) : NULL;
    dnnl_stream_t st = ok ? stream() : NULL;
    ok = ok && (!sbytes || sp) && st;
    ok = ok && dnnl_memory_create(&ma, amd, engine, (void *)A) == dnnl_success &&
         dnnl_memory_create(&mb, bmd, engine, (void *)B) == dnnl_success &&
         dnnl_memory_create(&mc, cmd, engine, C) == dnnl_success &&
         (!sbytes || dnnl_memory_create(&ms, smd, engine, sp) == dnnl_success);
    if (ok) {
        dnnl_exec_arg_t args[4] = {
            {DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}, {DNNL_ARG_SCRATCHPAD, ms}};
        ok = dnnl_primitive_execute(prim, st, sbytes ? 4 : 3, args) == dnnl_success &&
             dnnl_stream_wait(st) == dnnl_success;
    }
    dnnl_memory_destroy(ma), dnnl_memory_destroy(mb), dnnl_memory_destroy(mc), dnnl_memory_destroy(ms);
    dnnl_primitive_destroy(prim);
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_attr_destroy(own);
    omp_set_num_threads(prev);
    return ok;
}
