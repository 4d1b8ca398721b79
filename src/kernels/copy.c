/* Memory moves the model needs in bulk: zeroing, copying, gathering and
 * scattering rows (threaded like the other kernels, so model code runs no
 * loops of its own). */
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/parallel.h"

#define COPY_CHUNK 4096 /* floats per item */

typedef struct {
    float *dst;
    const float *src;
    const int *idx;
    size_t n;
    int C;
} copy_args;

static void zero_chunks(void *arg, long i0, long i1)
{
    const copy_args *a = arg;
    for (long c = i0; c < i1; c++) {
        size_t j = (size_t)c * COPY_CHUNK;
        memset(a->dst + j, 0, (a->n - j < COPY_CHUNK ? a->n - j : COPY_CHUNK) * sizeof(float));
    }
}

static void copy_chunks(void *arg, long i0, long i1)
{
    const copy_args *a = arg;
    for (long c = i0; c < i1; c++) {
        size_t j = (size_t)c * COPY_CHUNK;
        memcpy(a->dst + j, a->src + j, (a->n - j < COPY_CHUNK ? a->n - j : COPY_CHUNK) * sizeof(float));
    }
}

void floats_zero(float *dst, size_t n)
{
    copy_args a = {dst, NULL, NULL, n, 0};
    kpar_for((long)((n + COPY_CHUNK - 1) / COPY_CHUNK), (double)n, 1 << 18, zero_chunks, &a);
}

void floats_copy(float *dst, const float *src, size_t n)
{
    copy_args a = {dst, src, NULL, n, 0};
    kpar_for((long)((n + COPY_CHUNK - 1) / COPY_CHUNK), (double)n, 1 << 18, copy_chunks, &a);
}

static void gather(void *arg, long i0, long i1)
{
    const copy_args *a = arg;
    for (long i = i0; i < i1; i++)
        memcpy(a->dst + (size_t)i * a->C, a->src + (size_t)a->idx[i] * a->C, (size_t)a->C * sizeof(float));
}

static void scatter(void *arg, long i0, long i1)
{
    const copy_args *a = arg;
    for (long r = i0; r < i1; r++) {
        if (a->idx[r] >= 0)
            memcpy(a->dst + (size_t)r * a->C, a->src + (size_t)a->idx[r] * a->C, (size_t)a->C * sizeof(float));
        else
            memset(a->dst + (size_t)r * a->C, 0, (size_t)a->C * sizeof(float));
    }
}

void rows_gather(float *out, const float *x, const int *rows, int n, int C)
{
    copy_args a = {out, x, rows, 0, C};
    kpar_for(n, (double)n * C, PAR_MIN, gather, &a);
}

void rows_scatter(float *out, const float *x, const int *where, int N, int C)
{
    copy_args a = {out, x, where, 0, C};
    kpar_for(N, (double)N * C, PAR_MIN, scatter, &a);
}
