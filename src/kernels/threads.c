#include "qkv.h"

#include <stdlib.h>
#include <omp.h>
#include <unistd.h>

/* One pool: the OpenMP team runs every kernel, GEMMs included (gemm.c keeps
 * the BLAS single-threaded and splits products over this team). */
static int qkv_threads;

void qkv_set_threads(int n)
{
    if (n <= 0) {
        const char *env = getenv("QKV_THREADS");
        n = env ? atoi(env) : 0;
    }
    if (n <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n = cores > 0 ? (int)cores : 1;
    }
    qkv_threads = n;
    omp_set_num_threads(n);
}

int qkv_get_threads(void)
{
    if (qkv_threads == 0)
        qkv_set_threads(0);
    return qkv_threads;
}
