/* The thread pool (pool.h). How a region travels:
 *
 *   caller                                  worker k
 *   take busy (CAS 0 -> 1)
 *   write job (fn, arg); done = 0
 *   claim = (seq + 1, n_tasks, next 1)      (task 0 is the caller's)
 *   for k < T-1: ++gen[k]  (seq_cst) ──────►  sees gen[k] change
 *               wake k if it sleeps           loop: CAS claim next -> next + 1
 *   runs task 0, then claims tasks                  (acquire), runs that task,
 *   the same way until none is left                 ++done (seq_cst)
 *   done += tasks it ran                      until next == n_tasks
 *   waits for done == n_tasks (acquire) ◄───  wakes the caller if it sleeps
 *   release busy
 *
 * Tasks are claimed, not assigned: a worker that is slow to wake (a loaded
 * machine, a descheduled thread) leaves its share to the caller, which
 * never waits for a worker that has not started; it waits only for tasks
 * already claimed. The claim word packs the region's sequence number with
 * its task count and next task, so a worker that read a stale word cannot
 * claim anything once a newer region has replaced it (its CAS fails). A
 * worker reads the job only after a successful claim: the claim's acquire
 * pairs with the caller's seq_cst store that published the job, and the
 * region cannot end (nor the job be rewritten) before that claimed task is
 * counted in done. Results travel back through done: each increment
 * releases what its task wrote, the caller's acquire load of n_tasks
 * receives them all (a release sequence of RMWs on one atomic).
 *
 * Each worker has its own futex word (gen) to sleep on, so a region of
 * fewer tasks than threads wakes only the workers it can use.
 *
 * Sleeping without a lost wake-up (the two "sleeping" flags): the sleeper
 * stores sleeping = 1, then loads the word it waits on; the waker changes
 * the word, then loads sleeping. All four are seq_cst, so at least one side
 * sees the other's store: either the sleeper sees the new word and does not
 * sleep, or the waker sees sleeping = 1 and calls futex_wake. FUTEX_WAIT
 * itself rechecks the word in the kernel, so a wake that comes between the
 * sleeper's load and its FUTEX_WAIT is not lost either. The flags only save
 * the waker a syscall when nobody sleeps. */
#include "base/pool.h"

#include <assert.h>
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif

/* One cache line per worker: the caller writes gen, the worker sleeping. */
typedef struct {
    _Alignas(64) atomic_uint gen; /* futex word: bumped once per region handed to this worker */
    atomic_int sleeping;          /* 1 while the worker is in (or entering) FUTEX_WAIT on gen */
    int id;                       /* thread number 1..threads-1 */
    qkv_pool *pool;
    pthread_t thread;
} pool_worker;

struct qkv_pool {
    int threads;
    int n_workers;    /* started: threads - 1 once pool_new succeeded */
    long spin_ns;     /* < 0: spin forever */
    pool_worker *workers;
    atomic_int busy;  /* 1 while a caller owns the pool */
    /* The job: plain fields, written by the owner before it bumps a worker's
     * gen and read by that worker after (see the top of the file). */
    pool_task_fn fn;
    void *arg;
    atomic_int stop; /* a worker may test it while the owner moves on: atomic */
    unsigned seq; /* regions run so far (the owner's; wraps) */
    /* Claimed by every thread of a region: its own line. */
    _Alignas(64) atomic_ullong claim; /* CLAIM(seq, n_tasks, next task) */
    _Alignas(64) atomic_int done;     /* tasks of this region finished; futex word */
    atomic_int caller_sleeping;       /* 1 while the owner is in (or entering) FUTEX_WAIT on done */
};

/* The claim word: 24 bits of region sequence, 20 of task count, 20 of the
 * next task to hand out. */
#define CLAIM_BITS 20
#define CLAIM_MAX_TASKS ((1 << CLAIM_BITS) - 1)
#define CLAIM(seq, n, next) \
    ((((unsigned long long)(seq) & 0xffffff) << (2 * CLAIM_BITS)) | ((unsigned long long)(n) << CLAIM_BITS) | (next))
#define CLAIM_N(c) ((int)(((c) >> CLAIM_BITS) & CLAIM_MAX_TASKS))
#define CLAIM_NEXT(c) ((int)((c) & CLAIM_MAX_TASKS))

/* Depth of pool tasks on this thread: 1 for a worker's whole life, and
 * raised by the caller while it runs tasks. */
static _Thread_local int pool_depth;

static void futex_wait(void *word, int val)
{
    /* EAGAIN (the word already moved) and EINTR both send the caller back
     * to its loop, which rechecks the word. */
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake(void *word)
{
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* Spins while *word == old for at most spin_ns (forever when < 0). Returns 1
 * when the word moved, 0 when the bound ran out. For the first
 * POOL_PAUSE_US it only pauses (the wake-up is then a cache-line transfer,
 * well under a microsecond); after that it yields the core between checks,
 * so that on a loaded machine a runnable thread (ours or another program's)
 * gets it. The clock is read once per 32 pauses, and after every yield. */
#ifndef POOL_PAUSE_US
#define POOL_PAUSE_US 5
#endif
static int spin_while(atomic_int *word, int old, long spin_ns)
{
    if (spin_ns == 0)
        return atomic_load_explicit(word, memory_order_acquire) != old;
    long t0 = now_ns(), pause_ns = POOL_PAUSE_US < 0 ? -1 : POOL_PAUSE_US * 1000L;
    int yield = 0;
    for (unsigned i = 1;; i++) {
        if (atomic_load_explicit(word, memory_order_acquire) != old)
            return 1;
        if (yield)
            sched_yield();
        else
            cpu_relax();
        if (yield || (i & 31) == 0) {
            long dt = now_ns() - t0;
            if (spin_ns > 0 && dt > spin_ns)
                return 0;
            yield = pause_ns >= 0 && dt > pause_ns;
        }
    }
}

/* Returns once *word != old: spins, then sleeps on the futex. */
static void wait_while(atomic_int *word, int old, atomic_int *sleeping, long spin_ns)
{
    if (spin_while(word, old, spin_ns))
        return;
    for (;;) {
        atomic_store_explicit(sleeping, 1, memory_order_seq_cst);
        if (atomic_load_explicit(word, memory_order_seq_cst) != old)
            break;
        futex_wait(word, old);
    }
    /* Relaxed: the next reader of the flag is the waker of a later region,
     * which is ordered after this point through gen/pending. */
    atomic_store_explicit(sleeping, 0, memory_order_relaxed);
}

static void run_tasks(pool_task_fn fn, void *arg, int first, int stride, int n_tasks)
{
    for (int t = first; t < n_tasks; t += stride)
        fn(arg, t, n_tasks);
}

/* Claims and runs the current region's unclaimed tasks; returns how many it
 * ran. A worker (worker = 1) counts each in done as it finishes it and wakes
 * the owner after the last one; the owner counts its own at the end. */
static int run_claimed(qkv_pool *p, int worker)
{
    int ran = 0;
    unsigned long long c = atomic_load_explicit(&p->claim, memory_order_acquire);
    for (;;) {
        int n = CLAIM_N(c), k = CLAIM_NEXT(c);
        if (k >= n)
            return ran;
        /* Acquire on success: the job fields are this region's. */
        if (!atomic_compare_exchange_weak_explicit(&p->claim, &c, c + 1, memory_order_acquire,
                                                   memory_order_acquire))
            continue;
        p->fn(p->arg, k, n);
        ran++;
        if (worker) {
            /* seq_cst: releases the task's results to the owner, and is one
             * side of the caller_sleeping handshake. */
            if (atomic_fetch_add_explicit(&p->done, 1, memory_order_seq_cst) + 1 == n &&
                atomic_load_explicit(&p->caller_sleeping, memory_order_seq_cst))
                futex_wake(&p->done);
        }
        c = atomic_load_explicit(&p->claim, memory_order_acquire);
    }
}

static void *worker_main(void *a)
{
    pool_worker *w = a;
    qkv_pool *p = w->pool;
    pool_depth = 1;
    int seen = 0;
    for (;;) {
        /* gen is an atomic_uint used as an int futex word: same size, and
         * only equality matters (it may wrap). */
        wait_while((atomic_int *)&w->gen, seen, &w->sleeping, p->spin_ns);
        /* Acquire: pairs with the increment, so that stop is seen. */
        seen = (int)atomic_load_explicit(&w->gen, memory_order_acquire);
        if (atomic_load_explicit(&p->stop, memory_order_acquire))
            break;
        run_claimed(p, 1);
    }
    return NULL;
}

long pool_spin_us(int *bad)
{
    const char *env = getenv("QKV_SPIN_US");
    if (bad)
        *bad = 0;
    if (!env)
        return POOL_SPIN_US;
    char *end;
    errno = 0;
    long us = strtol(env, &end, 10);
    if (end == env || *end || errno || us < -1 || us > 60L * 1000 * 1000) {
        if (bad)
            *bad = 1;
        return POOL_SPIN_US;
    }
    return us;
}

qkv_pool *pool_new(int threads)
{
    if (threads < 1)
        threads = 1;
    qkv_pool *p = aligned_alloc(64, sizeof *p);
    if (!p)
        return NULL;
    memset(p, 0, sizeof *p);
    p->threads = threads;
    long us = pool_spin_us(NULL);
    p->spin_ns = us < 0 ? -1 : us * 1000;
    atomic_init(&p->busy, 0);
    atomic_init(&p->stop, 0);
    atomic_init(&p->claim, 0);
    atomic_init(&p->done, 0);
    atomic_init(&p->caller_sleeping, 0);
    if (threads == 1)
        return p;
    size_t bytes = (size_t)(threads - 1) * sizeof(pool_worker); /* a multiple of 64 */
    p->workers = aligned_alloc(64, bytes);
    if (!p->workers) {
        free(p);
        return NULL;
    }
    memset(p->workers, 0, bytes);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* inherited by the workers */
    for (int k = 0; k < threads - 1; k++) {
        pool_worker *w = &p->workers[k];
        atomic_init(&w->gen, 0);
        atomic_init(&w->sleeping, 0);
        w->id = k + 1;
        w->pool = p;
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
            break;
        p->n_workers = k + 1;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (p->n_workers != threads - 1) {
        pool_free(p);
        return NULL;
    }
    return p;
}

void pool_free(qkv_pool *p)
{
    if (!p)
        return;
    assert(atomic_load_explicit(&p->busy, memory_order_relaxed) == 0 && "pool_free on a busy pool");
    atomic_store_explicit(&p->stop, 1, memory_order_release);
    for (int k = 0; k < p->n_workers; k++) {
        atomic_fetch_add_explicit(&p->workers[k].gen, 1, memory_order_seq_cst);
        futex_wake(&p->workers[k].gen);
    }
    for (int k = 0; k < p->n_workers; k++)
        pthread_join(p->workers[k].thread, NULL);
    free(p->workers);
    free(p);
}

int pool_threads(const qkv_pool *p)
{
    return p ? p->threads : 1;
}

int pool_in_task(void)
{
    return pool_depth > 0;
}

void pool_run(qkv_pool *p, int n_tasks, pool_task_fn fn, void *arg)
{
    if (n_tasks <= 0)
        return;
    int idle = 0;
    /* Acquire on success: the previous owner's region (and its release of
     * busy) happens before ours, so the job fields are ours to write. */
    if (!p || p->threads == 1 || n_tasks == 1 || pool_depth > 0 ||
        !atomic_compare_exchange_strong_explicit(&p->busy, &idle, 1, memory_order_acquire,
                                                 memory_order_relaxed)) {
        pool_depth++;
        run_tasks(fn, arg, 0, 1, n_tasks);
        pool_depth--;
        return;
    }
    if (n_tasks > CLAIM_MAX_TASKS) { /* more than the claim word counts: serially */
        pool_depth++;
        run_tasks(fn, arg, 0, 1, n_tasks);
        pool_depth--;
        atomic_store_explicit(&p->busy, 0, memory_order_release);
        return;
    }
    int used = n_tasks < p->threads ? n_tasks : p->threads;
    p->fn = fn;
    p->arg = arg;
    p->seq++;
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    atomic_store_explicit(&p->caller_sleeping, 0, memory_order_relaxed);
    /* seq_cst (hence release): publishes the job with the claim word; task
     * 0 is already ours */
    atomic_store_explicit(&p->claim, CLAIM(p->seq, n_tasks, 1), memory_order_seq_cst);
    for (int k = 0; k < used - 1; k++) {
        pool_worker *w = &p->workers[k];
        atomic_fetch_add_explicit(&w->gen, 1, memory_order_seq_cst);
        if (atomic_load_explicit(&w->sleeping, memory_order_seq_cst))
            futex_wake(&w->gen);
    }
    pool_depth++;
    fn(arg, 0, n_tasks);
    int mine = 1 + run_claimed(p, 0);
    pool_depth--;
    /* Wait for done == n_tasks; each load is acquire, so the workers'
     * results are visible once it reads n_tasks. */
    int d = atomic_fetch_add_explicit(&p->done, mine, memory_order_acq_rel) + mine;
    while (d != n_tasks) {
        wait_while(&p->done, d, &p->caller_sleeping, p->spin_ns);
        d = atomic_load_explicit(&p->done, memory_order_acquire);
    }
    atomic_store_explicit(&p->busy, 0, memory_order_release);
}

/* ---- par_for, par_dynamic ------------------------------------------------- */

typedef struct {
    pool_range_fn fn;
    void *arg;
    long n;
} par_for_job;

static void par_for_task(void *a, int t, int n_tasks)
{
    const par_for_job *j = a;
    long base = j->n / n_tasks, rem = j->n % n_tasks;
    long i0 = t * base + (t < rem ? t : rem);
    j->fn(j->arg, i0, i0 + base + (t < rem));
}

void par_for(qkv_pool *p, long n, long min_items_per_task, pool_range_fn fn, void *arg)
{
    if (n <= 0)
        return;
    if (min_items_per_task < 1)
        min_items_per_task = 1;
    long chunks = n / min_items_per_task + (n % min_items_per_task != 0);
    int threads = pool_threads(p);
    if (chunks > threads)
        chunks = threads;
    if (chunks <= 1 || pool_depth > 0) {
        fn(arg, 0, n);
        return;
    }
    par_for_job j = {fn, arg, n};
    pool_run(p, (int)chunks, par_for_task, &j);
}

typedef struct {
    pool_range_fn fn;
    void *arg;
    long n, grain;
    atomic_long next; /* first item not yet handed out */
} par_dynamic_job;

static void par_dynamic_task(void *a, int t, int n_tasks)
{
    par_dynamic_job *j = a;
    for (;;) {
        /* Relaxed: the counter only divides the items; the results reach
         * the caller through pool_run's own synchronisation. */
        long i0 = atomic_fetch_add_explicit(&j->next, j->grain, memory_order_relaxed);
        if (i0 >= j->n)
            break;
        long i1 = j->n - i0 < j->grain ? j->n : i0 + j->grain;
        j->fn(j->arg, i0, i1);
    }
}

void par_dynamic(qkv_pool *p, long n, long grain, pool_range_fn fn, void *arg)
{
    if (n <= 0)
        return;
    if (grain < 1)
        grain = 1;
    long ranges = n / grain + (n % grain != 0);
    int threads = pool_threads(p);
    int tasks = ranges < threads ? (int)ranges : threads;
    if (tasks <= 1 || pool_depth > 0) {
        fn(arg, 0, n);
        return;
    }
    par_dynamic_job j = {fn, arg, n, grain, 0};
    pool_run(p, tasks, par_dynamic_task, &j);
}
