/* oneDNN's matmul for the kernels that hand it products (gemm_bf16.c,
 * linear_i8_onednn.c): one CPU engine per process and, per thread, a
 * stream and a scratchpad, freed when the thread ends. */
#ifndef QKV_KERNELS_ONEDNN_H
#define QKV_KERNELS_ONEDNN_H

#include <dnnl.h>

/* The process's CPU engine, NULL when oneDNN has none. */
dnnl_engine_t onednn_engine(void);

/* This thread's stream, made on first use; NULL when oneDNN refuses one. */
dnnl_stream_t onednn_stream(void);

/* Whether the primitive descriptor is one of oneDNN's optimised
 * implementations: its reference ones ("ref:any", "ref_int8:any", one
 * scalar loop per element, for layouts nothing else takes) are orders of
 * magnitude slower than qkv's own kernels, so callers refuse them. */
int onednn_pd_fast(const_dnnl_primitive_desc_t pd);

/* C = alpha A B + beta C by a matmul primitive on this thread alone
 * (oneDNN's OpenMP team held at one thread while it runs): the descriptors
 * and data of A, B and C. keep: the primitive of the shape (descriptors,
 * alpha, beta) is made once and kept for the process, for callers that
 * meet few shapes; else made for the call. Returns 0 when oneDNN
 * refused the primitive or offered only a reference implementation (C
 * untouched in both cases), or ran out of memory: the caller then takes
 * its own kernels. */
int onednn_matmul(const dnnl_memory_desc_t *amd, const void *A, const dnnl_memory_desc_t *bmd, const void *B,
                  const dnnl_memory_desc_t *cmd, void *C, float alpha, float beta, int keep);

#endif
