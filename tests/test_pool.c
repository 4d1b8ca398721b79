/* base/pool and base/context: the thread pool, par_for / par_dynamic, and
 * the execution context bound per thread. A deadlock shows as this program
 * timing out in tests/run. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/context.h"
#include "base/pool.h"
#include "test.h"

#define MAX_TASKS 64

/* Each task counts its runs and checks the n_tasks it was given. */
typedef struct {
    atomic_int runs[MAX_TASKS];
    atomic_int bad_n; /* tasks that saw a wrong n_tasks or index */
    int n_tasks;
} count_job;

static void count_task(void *a, int t, int n_tasks)
{
    count_job *j = a;
    if (n_tasks != j->n_tasks || t < 0 || t >= n_tasks)
        atomic_fetch_add(&j->bad_n, 1);
    else
        atomic_fetch_add(&j->runs[t], 1);
}

/* Runs regions of 1..max_tasks tasks `rounds` times; every task exactly once. */
static void check_each_task_once(qkv_pool *p, int max_tasks, int rounds, const char *what)
{
    for (int r = 0; r < rounds; r++)
        for (int n = 1; n <= max_tasks; n++) {
            count_job j;
            memset(&j, 0, sizeof j);
            j.n_tasks = n;
            pool_run(p, n, count_task, &j);
            CHECK(atomic_load(&j.bad_n) == 0, "%s: round %d, %d tasks: %d calls with a wrong index or n_tasks",
                  what, r, n, atomic_load(&j.bad_n));
            for (int t = 0; t < n; t++)
                if (atomic_load(&j.runs[t]) != 1) {
                    CHECK(0, "%s: round %d, %d tasks: task %d ran %d times", what, r, n, t,
                          atomic_load(&j.runs[t]));
                    return;
                }
        }
}

static void test_each_task_once(void)
{
    int threads[] = {1, 2, 3, 4, 8};
    for (int i = 0; i < 5; i++) {
        qkv_pool *p = pool_new(threads[i]);
        CHECK(p, "pool_new(%d) failed", threads[i]);
        if (!p)
            return;
        CHECK(pool_threads(p) == threads[i], "pool_threads %d, want %d", pool_threads(p), threads[i]);
        char what[64];
        snprintf(what, sizeof what, "%d threads", threads[i]);
        /* up to 3x the threads: a thread runs t, t + T, ... */
        check_each_task_once(p, 3 * threads[i], 50, what);
        pool_free(p);
    }
    check_each_task_once(NULL, 5, 2, "NULL pool");
    count_job j;
    memset(&j, 0, sizeof j);
    pool_run(NULL, 0, count_task, &j);
    pool_run(NULL, -3, count_task, &j);
    CHECK(atomic_load(&j.runs[0]) == 0 && atomic_load(&j.bad_n) == 0, "n_tasks <= 0 ran a task");
}

/* The futex paths: sleeping at once, spinning forever, and the default, with
 * pauses between regions so workers fall asleep. */
static void test_wait_policies(void)
{
    const char *spins[] = {"0", "-1", "1", NULL};
    for (int i = 0; i < 4; i++) {
        if (spins[i])
            setenv("QKV_SPIN_US", spins[i], 1);
        else
            unsetenv("QKV_SPIN_US");
        /* spinning forever with more threads than cores would crawl */
        int threads = i == 1 ? 2 : 3;
        qkv_pool *p = pool_new(threads);
        CHECK(p, "pool_new(%d) failed with QKV_SPIN_US=%s", threads, spins[i] ? spins[i] : "(unset)");
        if (!p)
            continue;
        char what[64];
        snprintf(what, sizeof what, "QKV_SPIN_US=%s", spins[i] ? spins[i] : "(unset)");
        for (int k = 0; k < 5; k++) {
            check_each_task_once(p, threads, 50, what);
            nanosleep(&(struct timespec){0, 2000000}, NULL); /* 2 ms: past the spin bound */
        }
        pool_free(p);
    }
    unsetenv("QKV_SPIN_US");
    int bad;
    setenv("QKV_SPIN_US", "12", 1);
    CHECK(pool_spin_us(&bad) == 12 && !bad, "QKV_SPIN_US=12 read as %ld (bad %d)", pool_spin_us(NULL), bad);
    setenv("QKV_SPIN_US", "fast", 1);
    CHECK(pool_spin_us(&bad) == POOL_SPIN_US && bad, "QKV_SPIN_US=fast: %ld, bad %d", pool_spin_us(NULL), bad);
    qkv_context *c = NULL;
    qkv_status s = qkv_context_new(NULL, &c);
    CHECK(s == QKV_ERR_CONFIG && !c && strstr(qkv_last_error(), "QKV_SPIN_US='fast'"),
          "context with QKV_SPIN_US=fast: status %d, message '%s'", s, qkv_last_error());
    qkv_context_free(c);
    unsetenv("QKV_SPIN_US");
    CHECK(pool_spin_us(&bad) == POOL_SPIN_US && !bad, "unset QKV_SPIN_US: %ld", pool_spin_us(NULL));
}

/* y[i] = f(i), item by item, and the chunks par_for made. */
typedef struct {
    double *y;
    atomic_int chunks;
    atomic_long covered;
    atomic_long min_chunk; /* smallest chunk seen */
} fill_job;

static double f_of(long i) { return (double)i * 0.5 + (double)(i % 7) * 3.0; }

static void fill_range(void *a, long i0, long i1)
{
    fill_job *j = a;
    atomic_fetch_add(&j->chunks, 1);
    atomic_fetch_add(&j->covered, i1 - i0);
    long len = i1 - i0, m = atomic_load(&j->min_chunk);
    while (len < m && !atomic_compare_exchange_weak(&j->min_chunk, &m, len)) {
    }
    for (long i = i0; i < i1; i++)
        j->y[i] += f_of(i) + 1.0; /* += : an item done twice shows */
}

static void test_par_for_equals_serial(void)
{
    long ns[] = {0, 1, 2, 3, 7, 100, 1001, 100000};
    long mins[] = {0, 1, 16, 1000};
    int threads[] = {1, 2, 4, 7};
    for (int ti = 0; ti < 4; ti++) {
        qkv_pool *p = pool_new(threads[ti]);
        CHECK(p, "pool_new failed");
        if (!p)
            return;
        for (int ni = 0; ni < 8; ni++)
            for (int mi = 0; mi < 4; mi++) {
                long n = ns[ni], mn = mins[mi] < 1 ? 1 : mins[mi];
                fill_job j;
                memset(&j, 0, sizeof j);
                atomic_store(&j.min_chunk, n + 1);
                j.y = calloc(n + 1, sizeof *j.y);
                par_for(p, n, mins[mi], fill_range, &j);
                long want_chunks = n / mn + (n % mn != 0);
                if (want_chunks > threads[ti])
                    want_chunks = threads[ti];
                CHECK(atomic_load(&j.chunks) == want_chunks, "%d threads, n %ld, min %ld: %d chunks, want %ld",
                      threads[ti], n, mins[mi], atomic_load(&j.chunks), want_chunks);
                CHECK(atomic_load(&j.covered) == n, "%d threads, n %ld: chunks cover %ld items", threads[ti], n,
                      atomic_load(&j.covered));
                if (want_chunks > 1)
                    CHECK(atomic_load(&j.min_chunk) >= n / want_chunks,
                          "%d threads, n %ld, min %ld: a chunk of %ld items", threads[ti], n, mins[mi],
                          atomic_load(&j.min_chunk));
                for (long i = 0; i < n; i++)
                    if (j.y[i] != f_of(i) + 1.0) {
                        CHECK(0, "%d threads, n %ld, min %ld: y[%ld] = %g, serial gives %g", threads[ti], n,
                              mins[mi], i, j.y[i], f_of(i) + 1.0);
                        break;
                    }
                free(j.y);
            }
        pool_free(p);
    }
}

static void test_par_dynamic_each_item_once(void)
{
    long ns[] = {0, 1, 5, 1000, 33333};
    long grains[] = {0, 1, 7, 64, 100000};
    qkv_pool *p = pool_new(3);
    CHECK(p, "pool_new failed");
    if (!p)
        return;
    for (int ni = 0; ni < 5; ni++)
        for (int gi = 0; gi < 5; gi++) {
            long n = ns[ni], g = grains[gi] < 1 ? 1 : grains[gi];
            fill_job j;
            memset(&j, 0, sizeof j);
            atomic_store(&j.min_chunk, n + 1);
            j.y = calloc(n + 1, sizeof *j.y);
            par_dynamic(p, n, grains[gi], fill_range, &j);
            long ranges = n / g + (n % g != 0);
            CHECK(atomic_load(&j.covered) == n, "n %ld, grain %ld: ranges cover %ld items", n, g,
                  atomic_load(&j.covered));
            CHECK(atomic_load(&j.chunks) == ranges,
                  "n %ld, grain %ld: %d ranges, want %ld", n, g, atomic_load(&j.chunks), ranges);
            for (long i = 0; i < n; i++)
                if (j.y[i] != f_of(i) + 1.0) {
                    CHECK(0, "n %ld, grain %ld: y[%ld] = %g, want %g", n, g, i, j.y[i], f_of(i) + 1.0);
                    break;
                }
            free(j.y);
        }
    pool_free(p);
}

/* A task that calls pool_run again (on its own pool and on another): the
 * inner regions run serially on the task's thread. */
typedef struct {
    qkv_pool *outer, *other;
    atomic_int inner_runs, wrong_thread, not_in_task;
} nest_job;

typedef struct {
    nest_job *n;
    pthread_t self;
} inner_job;

static void inner_task(void *a, int t, int n_tasks)
{
    inner_job *ij = a;
    atomic_fetch_add(&ij->n->inner_runs, 1);
    if (!pthread_equal(pthread_self(), ij->self))
        atomic_fetch_add(&ij->n->wrong_thread, 1);
}

static void inner_range(void *a, long i0, long i1)
{
    inner_job *ij = a;
    atomic_fetch_add(&ij->n->inner_runs, (int)(i1 - i0));
    if (!pthread_equal(pthread_self(), ij->self))
        atomic_fetch_add(&ij->n->wrong_thread, 1);
}

static void outer_task(void *a, int t, int n_tasks)
{
    nest_job *n = a;
    if (!pool_in_task())
        atomic_fetch_add(&n->not_in_task, 1);
    inner_job ij = {n, pthread_self()};
    pool_run(n->outer, 4, inner_task, &ij);
    pool_run(n->other, 4, inner_task, &ij);
    par_for(n->outer, 100, 1, inner_range, &ij);
    par_dynamic(n->other, 100, 3, inner_range, &ij);
}

static void test_nested_runs_serially(void)
{
    nest_job n;
    memset(&n, 0, sizeof n);
    n.outer = pool_new(4);
    n.other = pool_new(4);
    CHECK(n.outer && n.other, "pool_new failed");
    if (n.outer && n.other)
        for (int r = 0; r < 100; r++)
            pool_run(n.outer, 4, outer_task, &n);
    CHECK(atomic_load(&n.inner_runs) == 100 * 4 * (4 + 4 + 100 + 100), "inner runs %d, want %d",
          atomic_load(&n.inner_runs), 100 * 4 * 208);
    CHECK(atomic_load(&n.wrong_thread) == 0, "%d inner tasks ran on another thread than their caller",
          atomic_load(&n.wrong_thread));
    CHECK(atomic_load(&n.not_in_task) == 0, "pool_in_task() was 0 inside %d tasks", atomic_load(&n.not_in_task));
    CHECK(!pool_in_task(), "pool_in_task() is 1 after the regions");
    pool_free(n.outer);
    pool_free(n.other);
}

/* Several threads hammering pools: sums of i over [0, n) by par_for and
 * par_dynamic, checked exactly (integers). */
typedef struct {
    long *part; /* [n] partial per item, summed by the caller: item-independent work */
} sum_job;

static void sum_range(void *a, long i0, long i1)
{
    sum_job *j = a;
    for (long i = i0; i < i1; i++)
        j->part[i] = i * 3 + 1;
}

typedef struct {
    qkv_pool *pool;
    qkv_context *ctx; /* bound instead when set */
    int rounds;
    int errors;
    int max_tasks_seen;
} hammer_arg;

static void max_task(void *a, int t, int n_tasks)
{
    hammer_arg *h = a;
    if (t == 0 && n_tasks > h->max_tasks_seen)
        h->max_tasks_seen = n_tasks; /* task 0 runs on the caller */
}

static void *hammer(void *a)
{
    hammer_arg *h = a;
    qkv_context *prev = NULL;
    if (h->ctx) {
        prev = ctx_bind(h->ctx);
        if (ctx_current() != h->ctx)
            h->errors++;
    }
    long part[257];
    for (int r = 0; r < h->rounds; r++) {
        qkv_pool *p = h->ctx ? ctx_pool() : h->pool;
        long n = 1 + r % 257;
        sum_job j = {part};
        memset(part, 0, sizeof part);
        if (r & 1)
            par_for(p, n, 1 + r % 5, sum_range, &j);
        else
            par_dynamic(p, n, 1 + r % 9, sum_range, &j);
        long s = 0;
        for (long i = 0; i < n; i++)
            s += part[i];
        if (s != 3 * n * (n - 1) / 2 + n)
            h->errors++;
        pool_run(p, pool_threads(p), max_task, h);
    }
    if (h->ctx)
        ctx_bind(prev);
    return NULL;
}

static void run_hammers(hammer_arg *h, int n)
{
    pthread_t th[8];
    for (int i = 0; i < n; i++)
        CHECK(pthread_create(&th[i], NULL, hammer, &h[i]) == 0, "pthread_create %d failed", i);
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < n; i++)
        CHECK(h[i].errors == 0, "thread %d: %d of %d rounds gave a wrong sum", i, h[i].errors, h[i].rounds);
}

static void test_two_pools_two_threads(void)
{
    qkv_pool *a = pool_new(2), *b = pool_new(3);
    CHECK(a && b, "pool_new failed");
    hammer_arg h[2] = {{.pool = a, .rounds = 2000}, {.pool = b, .rounds = 2000}};
    if (a && b)
        run_hammers(h, 2);
    pool_free(a);
    pool_free(b);
}

static void test_one_pool_four_threads(void)
{
    qkv_pool *p = pool_new(3);
    CHECK(p, "pool_new failed");
    hammer_arg h[4];
    for (int i = 0; i < 4; i++)
        h[i] = (hammer_arg){.pool = p, .rounds = 2000};
    if (p)
        run_hammers(h, 4);
    /* the pool is still whole after the contention */
    check_each_task_once(p, 6, 20, "after 4 threads");
    pool_free(p);
}

static void noop_task(void *a, int t, int n_tasks)
{
    atomic_fetch_add((atomic_long *)a, 1);
}

static void test_many_tiny_jobs(void)
{
    qkv_pool *p = pool_new(2);
    CHECK(p, "pool_new failed");
    atomic_long calls = 0;
    for (int r = 0; r < 100000; r++)
        pool_run(p, 2, noop_task, &calls);
    CHECK(atomic_load(&calls) == 200000, "100000 regions of 2 tasks made %ld calls", atomic_load(&calls));
    pool_free(p);
}

static void test_free_while_idle(void)
{
    for (int threads = 1; threads <= 5; threads++) {
        pool_free(pool_new(threads)); /* never used: workers may not have started waiting */
        qkv_pool *p = pool_new(threads);
        CHECK(p, "pool_new(%d) failed", threads);
        check_each_task_once(p, threads, 1, "before free");
        nanosleep(&(struct timespec){0, 3000000}, NULL); /* workers asleep on the futex */
        pool_free(p);
    }
    pool_free(NULL);
    qkv_pool *p = pool_new(0);
    CHECK(pool_threads(p) == 1, "pool_new(0) has %d threads, want 1", pool_threads(p));
    pool_free(p);
}

static void test_context_options(void)
{
    qkv_context_options o = qkv_context_default_options();
    CHECK(o.threads == 0, "default threads %d", o.threads);
    qkv_context *c = NULL;
    unsetenv("QKV_THREADS");
    CHECK(qkv_context_new(NULL, &c) == QKV_OK, "default context: %s", qkv_last_error());
    CHECK(c && qkv_context_threads(c) >= 1 && pool_threads(c->pool) == qkv_context_threads(c),
          "default context: %d threads, pool %d", qkv_context_threads(c), c ? pool_threads(c->pool) : -1);
    qkv_context_free(c);

    setenv("QKV_THREADS", "3", 1);
    CHECK(qkv_context_new(&o, &c) == QKV_OK && qkv_context_threads(c) == 3, "QKV_THREADS=3 gave %d threads",
          qkv_context_threads(c));
    qkv_context_free(c);
    o.threads = 2; /* the option wins over the variable */
    CHECK(qkv_context_new(&o, &c) == QKV_OK && qkv_context_threads(c) == 2, "threads 2 gave %d",
          qkv_context_threads(c));
    qkv_context_free(c);

    const char *bad_env[] = {"abc", "0", "-2", "3x", "", "99999"};
    o.threads = 0;
    for (int i = 0; i < 6; i++) {
        setenv("QKV_THREADS", bad_env[i], 1);
        c = (qkv_context *)1;
        qkv_status s = qkv_context_new(&o, &c);
        CHECK(s == QKV_ERR_CONFIG && c == NULL && strstr(qkv_last_error(), "QKV_THREADS"),
              "QKV_THREADS='%s': status %d, message '%s'", bad_env[i], s, qkv_last_error());
    }
    unsetenv("QKV_THREADS");
    int bad_opt[] = {-1, 1025};
    for (int i = 0; i < 2; i++) {
        o.threads = bad_opt[i];
        qkv_status s = qkv_context_new(&o, &c);
        CHECK(s == QKV_ERR_CONFIG && c == NULL && strstr(qkv_last_error(), "threads"),
              "threads %d: status %d, message '%s'", bad_opt[i], s, qkv_last_error());
    }
    CHECK(qkv_context_new(NULL, NULL) == QKV_ERR_ARG, "NULL out accepted");
    qkv_context_free(NULL);
    CHECK(qkv_context_threads(NULL) == 1, "threads of NULL context");
}

static void test_contexts_on_two_threads(void)
{
    qkv_context_options o = qkv_context_default_options();
    qkv_context *c1 = NULL, *c3 = NULL;
    o.threads = 1;
    CHECK(qkv_context_new(&o, &c1) == QKV_OK, "context 1: %s", qkv_last_error());
    o.threads = 3;
    CHECK(qkv_context_new(&o, &c3) == QKV_OK, "context 3: %s", qkv_last_error());
    if (!c1 || !c3)
        return;
    hammer_arg h[2] = {{.ctx = c1, .rounds = 2000}, {.ctx = c3, .rounds = 2000}};
    run_hammers(h, 2);
    CHECK(h[0].max_tasks_seen == 1, "1-thread context ran a region of %d tasks", h[0].max_tasks_seen);
    CHECK(h[1].max_tasks_seen == 3, "3-thread context: widest region %d tasks, want 3", h[1].max_tasks_seen);
    /* one context bound on four threads at once */
    hammer_arg s[4];
    for (int i = 0; i < 4; i++)
        s[i] = (hammer_arg){.ctx = c3, .rounds = 1000};
    run_hammers(s, 4);
    CHECK(ctx_current() == NULL, "the main thread's context changed to %p", (void *)ctx_current());
    qkv_context_free(c1);
    qkv_context_free(c3);
}

static void *read_current(void *a)
{
    *(qkv_context **)a = ctx_current();
    return NULL;
}

static void test_ctx_bind_restore(void)
{
    qkv_context *a = NULL, *b = NULL;
    qkv_context_options o = qkv_context_default_options();
    o.threads = 2;
    CHECK(qkv_context_new(&o, &a) == QKV_OK && qkv_context_new(&o, &b) == QKV_OK, "context: %s",
          qkv_last_error());
    CHECK(ctx_current() == NULL && ctx_pool() == NULL, "a context is bound before any ctx_bind");
    CHECK(ctx_bind(a) == NULL, "first bind returned a previous context");
    CHECK(ctx_current() == a && ctx_pool() == a->pool, "current is not a after binding a");
    qkv_context *seen = (qkv_context *)1;
    pthread_t th;
    pthread_create(&th, NULL, read_current, &seen);
    pthread_join(th, NULL);
    CHECK(seen == NULL, "another thread sees the binding (%p)", (void *)seen);
    qkv_context *prev = ctx_bind(b);
    CHECK(prev == a && ctx_current() == b, "bind b: previous %p (want a), current %p", (void *)prev,
          (void *)ctx_current());
    CHECK(ctx_bind(prev) == b && ctx_current() == a, "restore to a failed");
    CHECK(ctx_bind(NULL) == a && ctx_current() == NULL && ctx_pool() == NULL, "unbind failed");
    qkv_context_free(a);
    qkv_context_free(b);
}

static const test_case cases[] = {
    TEST(test_each_task_once),
    TEST(test_wait_policies),
    TEST(test_par_for_equals_serial),
    TEST(test_par_dynamic_each_item_once),
    TEST(test_nested_runs_serially),
    TEST(test_two_pools_two_threads),
    TEST(test_one_pool_four_threads),
    TEST(test_many_tiny_jobs),
    TEST(test_free_while_idle),
    TEST(test_context_options),
    TEST(test_contexts_on_two_threads),
    TEST(test_ctx_bind_restore),
};

int main(int argc, char **argv) { return test_main(argc, argv, cases, TEST_COUNT(cases)); }
