#include "base/context.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/status.h"

#define CTX_MAX_THREADS 1024

/* Per thread, so two threads can run under two contexts at once. */
static _Thread_local qkv_context *ctx_cur;

qkv_context *ctx_bind(qkv_context *c)
{
    qkv_context *prev = ctx_cur;
    ctx_cur = c;
    return prev;
}

qkv_context *ctx_current(void)
{
    return ctx_cur;
}

qkv_pool *ctx_pool(void)
{
    return ctx_cur ? ctx_cur->pool : NULL;
}

int ctx_bf16(void)
{
    return ctx_cur ? ctx_cur->bf16 : 0;
}

qkv_status ctx_default_threads(int *threads)
{
    const char *env = getenv("QKV_THREADS");
    if (env) {
        char *end;
        errno = 0;
        long n = strtol(env, &end, 10);
        if (end == env || *end || errno || n < 1 || n > CTX_MAX_THREADS)
            return qkv_fail(QKV_ERR_CONFIG, "QKV_THREADS='%s': expected an integer from 1 to %d", env,
                            CTX_MAX_THREADS);
        *threads = (int)n;
        return QKV_OK;
    }
    cpu_set_t set;
    int n = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        n = CPU_COUNT(&set);
    if (n <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n = cores > 0 ? (int)cores : 1;
    }
    *threads = n < CTX_MAX_THREADS ? n : CTX_MAX_THREADS;
    return QKV_OK;
}

qkv_context_options qkv_context_default_options(void)
{
    return (qkv_context_options){.threads = 0};
}

qkv_status qkv_context_new(const qkv_context_options *o, qkv_context **out)
{
    if (!out)
        return qkv_fail(QKV_ERR_ARG, "qkv_context_new: out is NULL");
    *out = NULL;
    qkv_context_options d = qkv_context_default_options();
    if (!o)
        o = &d;
    if (o->threads < 0 || o->threads > CTX_MAX_THREADS)
        return qkv_fail(QKV_ERR_CONFIG, "context option threads: expected 0 (default) or 1 to %d, got %d",
                        CTX_MAX_THREADS, o->threads);
    int threads = o->threads;
    if (threads == 0)
        QKV_TRY(ctx_default_threads(&threads));
    int bad;
    pool_spin_us(&bad);
    if (bad)
        return qkv_fail(QKV_ERR_CONFIG,
                        "QKV_SPIN_US='%s': expected microseconds as an integer (0: sleep at once, -1: spin forever)",
                        getenv("QKV_SPIN_US"));
    qkv_context *c = calloc(1, sizeof *c);
    if (!c)
        return qkv_fail(QKV_ERR_NOMEM, "qkv_context_new: out of memory");
    c->threads = threads;
    c->pool = pool_new(threads);
    if (!c->pool) {
        free(c);
        return qkv_fail(QKV_ERR_NOMEM, "qkv_context_new: could not start %d threads", threads);
    }
    *out = c;
    return QKV_OK;
}

void qkv_context_free(qkv_context *c)
{
    if (!c)
        return;
    pool_free(c->pool);
    free(c);
}

int qkv_context_threads(const qkv_context *c)
{
    return c ? c->threads : 1;
}
