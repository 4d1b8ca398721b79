/* kpar_for / kpar_dynamic over OpenMP (parallel.h). */
#include "kernels/parallel.h"

#include <omp.h>

void kpar_for(long n, double work, double min_work, kpar_fn fn, void *arg)
{
    if (n <= 0)
        return;
    int T = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (n < 2 || T < 2 || work < min_work) {
        fn(arg, 0, n);
        return;
    }
    if (T > n)
        T = (int)n;
#pragma omp parallel num_threads(T)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        long i0 = n * t / nt, i1 = n * (t + 1) / nt;
        if (i1 > i0)
            fn(arg, i0, i1);
    }
}

void kpar_dynamic(long n, double work, double min_work, kpar_fn fn, void *arg)
{
    if (n <= 0)
        return;
    int T = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (n < 2 || T < 2 || work < min_work) {
        fn(arg, 0, n);
        return;
    }
    if (T > n)
        T = (int)n;
#pragma omp parallel for schedule(dynamic, 1) num_threads(T)
    for (long i = 0; i < n; i++)
        fn(arg, i, i + 1);
}
