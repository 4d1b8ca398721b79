/* qkv's own thread pool (pthreads + Linux futex, no OpenMP).
 *
 * A pool of `threads` threads: threads - 1 workers plus the caller, which
 * runs task 0 itself. One parallel region is one pool_run(); it returns when
 * every task has finished. Idle workers spin for POOL_SPIN_US microseconds
 * and then sleep on a futex, so back-to-back small regions (a decoding step
 * issues dozens of 10-50 us ones) find the workers awake, while a pool left
 * idle costs no CPU (bench/README.md, "Thread pool": the measurements that
 * chose this bound).
 *
 * Concurrency contract:
 *   - pool_run may be called from any thread. If the pool is already running
 *     a region for another thread, or the calling thread is itself inside a
 *     pool task (of any pool), the tasks run serially on the caller, in
 *     order 0..n_tasks-1: always correct, never a deadlock, never nested
 *     threads.
 *   - A NULL pool is a valid serial pool of one thread.
 *   - pool_free needs an idle pool (no pool_run in progress). */
#ifndef QKV_BASE_POOL_H
#define QKV_BASE_POOL_H

typedef struct qkv_pool qkv_pool;

/* How long an idle worker (or the caller waiting for the workers) spins
 * before it sleeps, in microseconds. $QKV_SPIN_US, read by pool_new,
 * overrides it for experiments: 0 sleeps at once, -1 spins forever. */
#define POOL_SPIN_US 100

/* Starts threads - 1 workers (threads < 1 counts as 1). NULL when memory or
 * a thread could not be had. Workers block every signal, so handlers run on
 * the program's own threads. */
qkv_pool *pool_new(int threads);
/* Stops and joins the workers. The pool must be idle; NULL is fine. */
void pool_free(qkv_pool *p);
/* The pool's thread count, 1 for NULL. */
int pool_threads(const qkv_pool *p);
/* The spin bound pool_new would use now, in microseconds (-1: forever):
 * $QKV_SPIN_US when it is an integer >= -1, else POOL_SPIN_US. With bad
 * (non-NULL) it sets *bad to 1 when $QKV_SPIN_US is set but invalid. */
long pool_spin_us(int *bad);

/* Runs fn(arg, task, n_tasks) for task = 0..n_tasks-1 and returns when all
 * have returned. Task 0 runs on the caller; the others go to whichever of
 * the pool's threads (the caller included) claims them first, so a worker
 * that is slow to wake is not waited for: its tasks run on the caller.
 * Which thread runs a task varies from run to run, never what it computes.
 * Everything fn wrote is visible to the caller on return. n_tasks <= 0 does
 * nothing. */
typedef void (*pool_task_fn)(void *arg, int task, int n_tasks);
void pool_run(qkv_pool *p, int n_tasks, pool_task_fn fn, void *arg);

/* 1 while the calling thread runs a pool task (any pool, serial fallback
 * included): a pool_run from here runs serially. */
int pool_in_task(void);

/* Item ranges [i0, i1) of [0, n). */
typedef void (*pool_range_fn)(void *arg, long i0, long i1);

/* Splits [0, n) into contiguous chunks, one per task: min(threads,
 * ceil(n / min_items_per_task)) of them (min_items_per_task < 1 counts as 1),
 * sizes differing by at most one. Inside a pool task, fn(arg, 0, n) is called
 * once. The boundaries depend on the thread count: fn must compute each item
 * independently of where its chunk starts (no running sums across a chunk,
 * no per-chunk reductions whose rounding depends on the split), so that the
 * result is the same for any thread count. */
void par_for(qkv_pool *p, long n, long min_items_per_task, pool_range_fn fn, void *arg);

/* Hands out [0, n) in ranges of `grain` items (< 1 counts as 1), the next one
 * to whichever thread asks first (an atomic counter): for items of uneven
 * cost. Which thread runs which range, and in what order, varies from run to
 * run: the same rule as par_for holds, item by item. n + threads * grain
 * must fit in a long. */
void par_dynamic(qkv_pool *p, long n, long grain, pool_range_fn fn, void *arg);

#endif
