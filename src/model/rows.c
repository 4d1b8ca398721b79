/* Packing labelled rows (rows.h). */
#include "model/rows.h"

#include <string.h>

#include "kernels/parallel.h"

int label_rows(int *rows, int *ids, int *where, const int *labels, int N, int pad)
{
    int n = 0;
    for (int r = 0; r < N; r++) {
        where[r] = labels[r] == pad ? -1 : n;
        if (labels[r] != pad) {
            rows[n] = r;
            ids[n++] = labels[r];
        }
    }
    return n;
}

void gather_rows(float *xp, const float *x, const int *rows, int n, int C)
{
#pragma omp parallel for schedule(static) if ((long)n * C > PAR_MIN)
    for (int i = 0; i < n; i++)
        memcpy(xp + (size_t)i * C, x + (size_t)rows[i] * C, (size_t)C * sizeof *xp);
}

void scatter_rows(float *dx, const float *dxp, const int *where, int N, int C)
{
#pragma omp parallel for schedule(static) if ((long)N * C > PAR_MIN)
    for (int r = 0; r < N; r++) {
        if (where[r] >= 0)
            memcpy(dx + (size_t)r * C, dxp + (size_t)where[r] * C, (size_t)C * sizeof *dx);
        else
            memset(dx + (size_t)r * C, 0, (size_t)C * sizeof *dx);
    }
}
