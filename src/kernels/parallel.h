/* How kernels use threads (internal to kernels/).
 *
 * A kernel cuts its work into independent items (rows, column blocks,
 * GEMM blocks) and hands a range function to kpar_for, which runs it on the
 * threads of the execution context bound to the calling thread. Items are
 * independent and each is computed the same way whatever range holds it,
 * so results do not depend on the thread count. */
#ifndef QKV_KERNELS_PARALLEL_H
#define QKV_KERNELS_PARALLEL_H

/* Elements of work below which a loop stays on the calling thread: waking
 * the team costs microseconds, more than the loop itself when decoding one
 * token at a time. */
#define PAR_MIN 32768

/* Columns per task when a sum runs over rows (bias and embedding
 * gradients, layer norm): each thread owns whole columns, so the sums need
 * no atomics and come out the same for any thread count. */
#define COL_BLOCK 64

/* Computes items [i0, i1) of a kernel call described by arg. */
typedef void (*kpar_fn)(void *arg, long i0, long i1);

/* fn over items [0, n), in contiguous ranges, one per thread; on the
 * calling thread alone when work (elements touched, a cost estimate) is
 * below min_work, when n < 2, or when no context with threads is bound. */
void kpar_for(long n, double work, double min_work, kpar_fn fn, void *arg);

/* The same, handing out one item at a time (items of uneven cost, or few
 * large ones such as GEMM blocks). */
void kpar_dynamic(long n, double work, double min_work, kpar_fn fn, void *arg);

#endif
