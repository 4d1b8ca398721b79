/* Waiting policies of a thread pool on many short parallel regions.
 *
 * Each region is W us of pure arithmetic (no memory traffic) split evenly
 * over the threads, followed by G us of serial work on the caller, as a
 * decoding step issues dozens of small kernels with bookkeeping between them.
 * Workloads (W, G): 10/2, 50/10, a "step" of 30 regions of 20 us followed by
 * 300 us serial (so workers must stay awake across a longer gap), and
 * 2000/200 (long regions, as training).
 *
 * Modes: serial (one thread: the baseline), qkv's pool with a spin bound of
 * S us (pool:S; 0 = passive: sleep at once, -1 = active: spin forever), and
 * libgomp's `#pragma omp parallel` (its waiting follows OMP_WAIT_POLICY,
 * which libgomp reads at start-up: run the program again with the variable
 * set to compare). Every cell is the median of `reps` runs of about `ms`
 * milliseconds. Printed per cell: wall us per region, speed-up over serial,
 * and CPU us per region (process CPU time: what the waiting costs others).
 *
 * Usage: build/bench/pool [--threads 2] [--modes serial,pool:0,pool:-1,pool:100,omp]
 *                         [--ms 300] [--reps 3]
 * bench/pool.sh runs it on the machine as it is and beside two busy loops. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "base/pool.h"

static double iters_per_us;
static volatile double sink;

/* A dependent chain: ~4 cycles per iteration whatever the vector width. */
static void burn(long iters)
{
    double x = 1.0;
    for (long i = 0; i < iters; i++) {
        x = x * 0.9999999 + 1e-7;
        __asm__ __volatile__("" : "+x"(x)); /* keeps the compiler from folding the loop */
    }
    sink = x;
}

static double now_us(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

static void calibrate(void)
{
    double best = 1e30;
    long n = 2000000;
    for (int r = 0; r < 5; r++) {
        double t0 = now_us(CLOCK_MONOTONIC);
        burn(n);
        double t = now_us(CLOCK_MONOTONIC) - t0;
        if (t < best)
            best = t;
    }
    iters_per_us = n / best;
}

typedef struct {
    const char *name;
    double work_us, gap_us;
    int step_regions;    /* > 0: after this many regions, step_gap_us of serial work */
    double step_gap_us;
} workload;

static const workload workloads[] = {
    {"10 us, 2 us gap", 10, 2, 0, 0},
    {"50 us, 10 us gap", 50, 10, 0, 0},
    {"step: 30 x 20 us, 300 us serial", 20, 1, 30, 300},
    {"2000 us, 200 us gap", 2000, 200, 0, 0},
};

typedef struct {
    long iters; /* per task */
} job;

static void task(void *a, int t, int n)
{
    burn(((job *)a)->iters);
}

/* Runs `regions` regions in `mode` and returns wall and CPU us per region. */
static void run(const char *mode, qkv_pool *p, int threads, const workload *w, long regions, double *wall,
                double *cpu)
{
    long total = (long)(w->work_us * iters_per_us), gap = (long)(w->gap_us * iters_per_us);
    long step_gap = (long)(w->step_gap_us * iters_per_us);
    job j = {total / threads};
    int serial = strcmp(mode, "serial") == 0, omp = strcmp(mode, "omp") == 0;
    double t0 = now_us(CLOCK_MONOTONIC), c0 = now_us(CLOCK_PROCESS_CPUTIME_ID);
    for (long r = 0; r < regions; r++) {
        if (serial)
            burn(total);
        else if (omp) {
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
            burn(total / omp_get_num_threads());
#endif
        } else
            pool_run(p, threads, task, &j);
        burn(gap);
        if (w->step_regions && (r + 1) % w->step_regions == 0)
            burn(step_gap);
    }
    *wall = (now_us(CLOCK_MONOTONIC) - t0) / regions;
    *cpu = (now_us(CLOCK_PROCESS_CPUTIME_ID) - c0) / regions;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int threads = 2, reps = 3;
    double ms = 300;
    const char *modes = "serial,pool:0,pool:-1,pool:20,pool:100,pool:300,pool:1000,omp";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--modes") && i + 1 < argc)
            modes = argv[++i];
        else if (!strcmp(argv[i], "--ms") && i + 1 < argc)
            ms = atof(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--threads N] [--modes serial,pool:S,omp,...] [--ms MS] [--reps N]\n",
                    argv[0]);
            return 2;
        }
    }
    if (threads < 1 || reps < 1 || reps > 99 || ms <= 0) {
        fprintf(stderr, "pool: --threads, --reps (1..99) and --ms must be positive\n");
        return 2;
    }
#ifndef _OPENMP
    if (strstr(modes, "omp"))
        fprintf(stderr, "pool: built without OpenMP: omp rows skipped\n");
#endif
    calibrate();
    const char *wp = getenv("OMP_WAIT_POLICY");
    printf("threads %d, %.0f iterations/us, OMP_WAIT_POLICY=%s, median of %d runs of ~%.0f ms\n\n", threads,
           iters_per_us, wp ? wp : "(unset)", reps, ms);
    printf("| workload | mode | us/region | vs serial | CPU us/region |\n|---|---|---|---|---|\n");
    for (size_t wi = 0; wi < sizeof workloads / sizeof *workloads; wi++) {
        const workload *w = &workloads[wi];
        double per_region = w->work_us + w->gap_us + (w->step_regions ? w->step_gap_us / w->step_regions : 0);
        long regions = (long)(ms * 1000 / per_region);
        if (regions < 10)
            regions = 10;
        double serial_wall = 0;
        char list[256];
        snprintf(list, sizeof list, "%s", modes);
        for (char *save, *mode = strtok_r(list, ",", &save); mode; mode = strtok_r(NULL, ",", &save)) {
            qkv_pool *p = NULL;
            int is_pool = strncmp(mode, "pool:", 5) == 0;
#ifndef _OPENMP
            if (!strcmp(mode, "omp"))
                continue;
#endif
            if (is_pool) {
                setenv("QKV_SPIN_US", mode + 5, 1);
                p = pool_new(threads);
                if (!p) {
                    fprintf(stderr, "pool: could not start %d threads\n", threads);
                    return 1;
                }
            } else if (strcmp(mode, "serial") && strcmp(mode, "omp")) {
                fprintf(stderr, "pool: unknown mode '%s' (serial, pool:S, omp)\n", mode);
                return 2;
            }
            double wall[99], cpu[99];
            run(mode, p, threads, w, regions / 10, &wall[0], &cpu[0]); /* warm-up */
            for (int r = 0; r < reps; r++)
                run(mode, p, threads, w, regions, &wall[r], &cpu[r]);
            pool_free(p);
            qsort(wall, reps, sizeof *wall, cmp_double);
            qsort(cpu, reps, sizeof *cpu, cmp_double);
            double mw = wall[reps / 2], mc = cpu[reps / 2];
            if (!strcmp(mode, "serial"))
                serial_wall = mw;
            char speed[32] = "";
            if (serial_wall > 0)
                snprintf(speed, sizeof speed, "%.2fx", serial_wall / mw);
            printf("| %s | %s | %.1f | %s | %.1f |\n", w->name, mode, mw, speed, mc);
            fflush(stdout);
        }
    }
    unsetenv("QKV_SPIN_US");
    return 0;
}
