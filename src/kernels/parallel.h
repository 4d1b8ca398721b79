/* Thresholds shared by the kernels' OpenMP loops (internal to kernels/). */
#ifndef QKV_KERNELS_PARALLEL_H
#define QKV_KERNELS_PARALLEL_H

/* Elements of work below which a loop stays on the calling thread: waking
 * the team costs microseconds, more than the loop itself when decoding one
 * token at a time. */
#define PAR_MIN 32768

/* Columns per task when a sum runs over rows (bias and embedding
 * gradients, wide layer norms): each thread owns whole columns, so the sums
 * need no atomics and come out the same for any thread count. */
#define COL_BLOCK 64

#endif
