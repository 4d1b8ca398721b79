/* The execution context inside the library (public half in include/qkv.h).
 *
 * Kernels do not take a context argument: the code that owns one (a
 * translator call, a training step) binds it to its thread for the duration
 * of the call, and kernels ask for the current one:
 *
 *     qkv_context *prev = ctx_bind(c);
 *     ... kernels call par_for(ctx_pool(), ...) ...
 *     ctx_bind(prev);
 *
 * With no context bound, ctx_pool() is NULL and par_for / pool_run run
 * serially on the calling thread. A context may be bound on several threads
 * at once: its pool serves one of them at a time, the others run serially
 * (pool.h). */
#ifndef QKV_BASE_CONTEXT_H
#define QKV_BASE_CONTEXT_H

#include "base/pool.h"
#include "qkv.h"

struct qkv_context {
    int threads;    /* >= 1 */
    qkv_pool *pool; /* threads threads, the caller included */
    /* 1: the large products (gemm_mixed: the linear layers) take bf16
     * operands with fp32 sums. Set by the trainer on its own copy of the
     * caller's context (same pool), never on the caller's. */
    int bf16;
};

/* Makes c (may be NULL) the calling thread's current context and returns
 * the previous one, for restoring. */
qkv_context *ctx_bind(qkv_context *c);
/* The calling thread's current context, NULL when none is bound. */
qkv_context *ctx_current(void);
/* The current context's pool, NULL (serial) when none is bound. */
qkv_pool *ctx_pool(void);
/* Whether the current context asks for bf16 products (0 when none is bound). */
int ctx_bf16(void);

/* The default thread count: $QKV_THREADS if set (QKV_ERR_CONFIG when it is
 * not an integer in 1..1024), else the number of CPUs this process may run
 * on (sched_getaffinity, so taskset and cpusets count), at least 1. */
qkv_status ctx_default_threads(int *threads);

#endif
