/* The dispatch table: the kernels written once per instruction set
 * (internal to kernels/).
 *
 *   src/kernels/impl/ (.inc)    the loops, written once in plain C that the
 *                               compiler vectorises for the target
 *   src/kernels/generic/        compiled for baseline x86-64 (SSE2)
 *   src/kernels/avx2/           compiled with -mavx2 -mfma -mf16c
 *   src/kernels/avx512/         compiled with -mavx512f/bw/vl/dq
 *                               (+ hand-written intrinsics where the
 *                               compiler does worse: linear_packed)
 *
 * Each folder defines one kern_table. dispatch.c picks one at start-up from
 * cpuid and XCR0 (cpu.h), capped by $QKV_ISA; nothing else in qkv is
 * compiled with flags above the baseline, so the binary runs on any
 * x86-64. The public kernels (kernels.h) fill an argument struct and hand
 * the table's range function to the thread pool (parallel.h): the ISA code
 * is single-threaded and knows nothing of threads.
 *
 * A range function computes items [i0, i1) (rows, elements, column blocks,
 * heads...) of one call; items are independent, so the result does not
 * depend on how the range is cut. */
#ifndef QKV_KERNELS_ISA_H
#define QKV_KERNELS_ISA_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/cpu.h"
#include "kernels/parallel.h"

/* rows of softmax / log-softmax: out, inp [rows, V] (logsumexp: out [rows]) */
typedef struct {
    float *out;
    const float *inp;
    int V;
} rows_args;

/* rows of the label-smoothed cross-entropy (kernels.h) */
typedef struct {
    float *loss, *probs;
    const float *logits;
    const int *targets;
    int V;
    float eps;
    int ignore;
} ce_args;

typedef struct {
    float *dlogits;
    const float *probs, *dloss;
    const int *targets;
    int V;
    float eps;
    int ignore;
} ce_bwd_args;

/* layer norm: forward and dx by rows; dweight/dbias by column blocks of
 * COL_BLOCK over all N rows */
typedef struct {
    float *out, *mean, *rstd;
    const float *inp, *w, *b;
    int C;
    float eps;
} ln_args;

typedef struct {
    float *dx, *dw, *db;
    const float *g, *x, *w, *mean, *rstd;
    int N, C;
} ln_bwd_args;

/* element-wise ops over [i0, i1): the meaning of each field is given by
 * the op (kernels/elementwise.c) */
typedef struct {
    float *out, *out2;
    const float *a, *b;
    int act;
    float p, keep;
    uint64_t seed;
} ew_args;

typedef struct {
    float *param, *m, *v;
    const float *grad;
    float lr, beta1, beta2, eps, decay, a1, a2, step_size, bc2_sqrt, grad_scale;
} adamw_args;

/* sums of squares of chunks of g, one part per item */
typedef struct {
    const float *g;
    size_t n, chunk;
    double *part;
} sumsq_args;

/* attention rows r = (b h, i) of [B H Tq, Tk] */
typedef struct {
    float *probs;
    const int *key_len;
    int causal, H, Tq, Tk;
} att_softmax_args;

typedef struct {
    float *s; /* [rows, Tk] in: d(probs after dropout), out: d(scores) */
    const float *p, *m;
    int Tk;
} att_bwd_args;

typedef struct {
    float *out;
    const float *probs, *mask, *v;
    int Tq, Tk, D;
} att_av_args;

/* one decoding step's attention, items bh = b * H + h (model/incremental.c) */
typedef struct {
    float *out;
    const float *qkv, *k, *v; /* qkv: [B, 3C]; k, v: [Tm, Bm, C] slots */
    const int *hist;          /* [B, Tm] */
    int H, D, Tm, Bm, n;      /* n = t + 1 positions */
} step_self_args;

typedef struct {
    float *out, *probs;
    const float *q, *k, *v; /* q: [B, C]; k, v: [n_src, H, S, D] */
    const int *src_row, *src_len;
    int H, D, S;
} step_cross_args;

/* embedding rows bt (forward) or column blocks (backward) */
typedef struct {
    float *out, *dpos;
    const float *table, *pos;
    const int *ids;
    int T, C, pos_offset, BT;
    float scale;
} emb_args;

/* dst[c] += sum_n src[n, c] by column blocks */
typedef struct {
    float *dst;
    const float *src;
    int N, C;
} colsum_args;

/* linear_packed_forward: items are groups of output panels */
typedef struct {
    float *out;
    const float *inp, *wp, *bias;
    int N, C, OC;
} lp_args;

typedef void (*gemm_small_fn)(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                              const float *B, int ldb, float beta, float *C, int ldc);

typedef struct {
    qkv_isa isa;
    kpar_fn softmax, log_softmax, logsumexp, crossentropy, crossentropy_bwd;
    kpar_fn layernorm, layernorm_bwd_dx, layernorm_bwd_dw;
    kpar_fn relu, gelu, swish, relu_bwd, gelu_bwd, swish_bwd;
    kpar_fn add, add_both, mul_add, dropout_mask, dropout, adamw, sumsq;
    kpar_fn att_softmax, att_softmax_bwd, att_dropped_av;
    kpar_fn step_self_attention, step_cross_attention;
    kpar_fn embedding, embedding_bwd, column_sums;
    kpar_fn linear_packed;
    int (*linear_packed_groups)(int N, int OC); /* items of linear_packed */
    gemm_small_fn gemm_small;
} kern_table;

extern const kern_table kern_generic, kern_avx2, kern_avx512;

/* The table in use (dispatch.c); set before main() runs. */
extern const kern_table *kern;

/* Tests only: switch to another path the CPU supports (not while kernels
 * run). Returns 0 when the CPU lacks it. */
int kern_select(qkv_isa isa);

/* ---- lower-precision linear layers (quant.h), a second table ----
 * Items are groups of output panels, as for linear_packed. */
typedef struct {
    float *out;
    const uint8_t *xq;  /* [N, Cp] in [0, 127] */
    const float *xs;    /* [N] */
    const int32_t *xz;  /* [N] zero points */
    const int8_t *wq;   /* packed */
    const float *ws;    /* [panels * 16] */
    const int32_t *wsum; /* [panels * 16]: sum_c wq[o, c] */
    const float *bias;
    int N, Cp, OC;
} lq_args;

typedef struct {
    float *out;
    const uint16_t *xb; /* [N, Cp2] bf16 */
    const uint16_t *wb; /* packed */
    const float *bias;
    int N, Cp2, OC;
    /* out[n, o] at out + n * ldc + o; out = alpha sum (+ out when accum)
     * (+ bias): linear_bf16_forward has ldc = OC, alpha 1, accum 0, and
     * gemm_bf16 uses the rest */
    int ldc, accum;
    float alpha;
} lb_args;

/* rows of activations to 7 bits (quantize_rows_u7 in quant.h): q: [N, ldq],
 * scale, zero: [N], x: [N, C] */
typedef struct {
    uint8_t *q;
    float *scale;
    int32_t *zero;
    const float *x;
    int C, ldq;
} qr_args;

/* rows of activations to bf16: q: [N, ldq], x: [N, C] (row stride ldx) */
typedef struct {
    uint16_t *q;
    const float *x;
    int C, ldq, ldx;
} br_args;

/* rows of int8 sums from oneDNN through the int8 store (lq_store.inc):
 * out [N, OC] from acc [N, OC] */
typedef struct {
    float *out;
    const int32_t *acc;
    const float *xs;
    const int32_t *xz;
    const float *ws;
    const int32_t *wsum;
    const float *bias;
    int OC;
} sums_args;

typedef struct {
    qkv_isa isa;
    kpar_fn quant_rows, bf16_rows;
    kpar_fn store_sums; /* items: rows (sums_args) */
    kpar_fn linear_i8;
    int (*linear_i8_groups)(int N, int OC);
    kpar_fn linear_bf16;
    int (*linear_bf16_groups)(int N, int OC);
    const char *(*i8_name)(void);
    const char *(*bf16_name)(void);
} kernq_table;

extern const kernq_table kernq_generic, kernq_avx2, kernq_avx512;

/* The table in use, switched with kern (dispatch.c). */
extern const kernq_table *kernq;

/* Features within a path that its kernels may use (dispatch.c sets them
 * from cpu.h; tests lower them to run the fallbacks). */
typedef struct {
    int vnni; /* AVX512-VNNI (vpdpbusd) in the avx512 path */
    int bf16; /* AVX512-BF16 (vdpbf16ps) in the avx512 path */
} kern_extras_t;
extern kern_extras_t kern_extras;

/* Tests only: set the extras (each capped by what the CPU has). Returns 0
 * when the CPU lacks one that was asked for. */
int kern_select_extras(int vnni, int bf16);

#endif
