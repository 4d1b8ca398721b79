/* Packing the rows of a [N, C] activation that carry a label, so that the
 * output projection and the loss skip the rest. A row whose label is pad
 * adds zero to the loss and gets a zero gradient, so leaving it out changes
 * no result; in a token-bucketed batch it is about 15% of the target cells
 * (more in batches of short sentences), and the output layer is a quarter
 * of a step's FLOPs with an 8k vocabulary. Internal to src/model/. */
#ifndef QKV_MODEL_ROWS_H
#define QKV_MODEL_ROWS_H

/* The rows whose label is not pad, in order: rows[n] (their indices),
 * ids[n] (their labels), where[N] (the packed index of each row, -1 for a
 * skipped one). Returns n. */
int label_rows(int *rows, int *ids, int *where, const int *labels, int N, int pad);

/* xp[i, :] = x[rows[i], :].   xp: [n, C]   x: [N, C] */
void gather_rows(float *xp, const float *x, const int *rows, int n, int C);

/* dx[r, :] = dxp[where[r], :], or zeros where where[r] < 0 (OVERWRITES dx).
 * dx: [N, C]   dxp: [n, C] */
void scatter_rows(float *dx, const float *dxp, const int *where, int N, int C);

#endif
