/* Per-thread scratch buffers for kernels that need more than a caller's
 * scratch: one buffer per slot and thread, grown on demand, freed when the
 * thread ends. */
#ifndef QKV_KERNELS_THREAD_BUF_H
#define QKV_KERNELS_THREAD_BUF_H

#include <stddef.h>

enum {
    TBUF_BF16_A,      /* gemm_bf16.c: op(A) in bf16 */
    TBUF_BF16_B,      /* gemm_bf16.c: op(B) in bf16 or packed */
    TBUF_ONEDNN,      /* onednn.c: a primitive's scratchpad */
    TBUF_I8_SUMS,     /* linear_i8_onednn.c: a block's int32 sums */
    TBUF_I8_PAD_X,    /* linear_i8_onednn.c: a padded block's activations */
    TBUF_COUNT
};

/* This thread's buffer of slot, at least bytes (64-aligned; earlier
 * contents are not kept when it grows); NULL when out of memory. */
void *thread_buf(int slot, size_t bytes);

#endif
