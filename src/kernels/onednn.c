/* oneDNN's matmul, one call (onednn.h). */
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>

#include "kernels/onednn.h"

typedef struct {
    dnnl_stream_t stream;
    void *scratch;
    size_t n_scratch;
} tls_t;

static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static dnnl_engine_t engine;

static void tls_free(void *v)
{
    tls_t *t = v;
    if (t->stream)
        dnnl_stream_destroy(t->stream);
    free(t->scratch);
    free(t);
}

static void init(void)
{
    pthread_key_create(&key, tls_free);
    if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success)
        engine = NULL;
}

dnnl_engine_t onednn_engine(void)
{
    pthread_once(&once, init);
    return engine;
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

/* the thread's scratchpad of at least bytes (64-aligned), NULL when out of memory */
static void *scratch(tls_t *t, size_t bytes)
{
    if (t->n_scratch < bytes) {
        free(t->scratch);
        size_t n = (bytes + 4095) / 4096 * 4096;
        t->scratch = aligned_alloc(64, n);
        t->n_scratch = t->scratch ? n : 0;
    }
    return t->scratch;
}

int onednn_matmul(const dnnl_memory_desc_t *amd, const void *A, const dnnl_memory_desc_t *bmd, const void *B,
                  const dnnl_memory_desc_t *cmd, void *C, dnnl_primitive_attr_t attr)
{
    tls_t *t = tls();
    if (!t || !engine)
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
    void *sp = sbytes ? scratch(t, sbytes) : NULL;
    ok = ok && (!sbytes || sp);
    if (ok && !t->stream)
        ok = dnnl_stream_create(&t->stream, engine, dnnl_stream_default_flags) == dnnl_success;
    ok = ok && dnnl_memory_create(&ma, amd, engine, (void *)A) == dnnl_success &&
         dnnl_memory_create(&mb, bmd, engine, (void *)B) == dnnl_success &&
         dnnl_memory_create(&mc, cmd, engine, C) == dnnl_success &&
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
    dnnl_primitive_attr_destroy(own);
    omp_set_num_threads(prev);
    return ok;
}
