/* kpar_for / kpar_dynamic over the pool of the calling thread's execution
 * context (parallel.h, base/context.h). */
#include "kernels/parallel.h"

#include "base/context.h"
#include "base/pool.h"

/* The pool to use, or NULL to run on the calling thread. */
static qkv_pool *pool_for(long n, double work, double min_work)
{
    if (n < 2 || work < min_work || pool_in_task())
        return NULL;
    qkv_pool *p = ctx_pool();
    return pool_threads(p) > 1 ? p : NULL;
}

void kpar_for(long n, double work, double min_work, kpar_fn fn, void *arg)
{
    if (n <= 0)
        return;
    qkv_pool *p = pool_for(n, work, min_work);
    if (!p)
        fn(arg, 0, n);
    else
        par_for(p, n, 1, fn, arg);
}

void kpar_dynamic(long n, double work, double min_work, kpar_fn fn, void *arg)
{
    if (n <= 0)
        return;
    qkv_pool *p = pool_for(n, work, min_work);
    if (!p)
        fn(arg, 0, n);
    else
        par_dynamic(p, n, 1, fn, arg);
}
