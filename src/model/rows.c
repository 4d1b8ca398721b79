/* Packing labelled rows (rows.h). */
#include "model/rows.h"

#include "kernels/kernels.h"

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

void gather_rows(float *xp, const float *x, const int *rows, int n, int C) { rows_gather(xp, x, rows, n, C); }

void scatter_rows(float *dx, const float *dxp, const int *where, int N, int C)
{
    rows_scatter(dx, dxp, where, N, C);
}
