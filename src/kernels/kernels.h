/* Changes to this contract since commit 1 (signatures kept): added
 * adamw_update and global_norm_sq (optimiser math), attention_step_self /
 * attention_step_cross (decoding steps, from model/incremental.c) and the
 * memory moves of copy.c; attention_forward's comment no longer mentions
 * a scratch it does not take.
 *
 * Kernels: the numerical ops of the Transformer, each a *_forward /
 * *_backward pair in the style of llm.c.
 *
 *   - outputs first, then inputs, then sizes; shapes in the comment above,
 *     in the order of the names;
 *   - every backward ACCUMULATES (+=) into its gradient outputs; zeroing is a
 *     separate step done by the caller;
 *   - all tensors are row-major, float32, contiguous unless a stride is given;
 *   - kernels know nothing of models, files or text, never allocate, never
 *     print; non-GEMM loops are threaded with OpenMP at this level only.
 *
 * Each optimised kernel has a plain *_ref twin in kernels_ref.h that the
 * tests compare it with. Instruction sets: each loop is compiled once per
 * path (generic, AVX2, AVX-512) and the path is chosen at start-up
 * (kernels/isa.h). Threads: the pool of the execution context bound to the
 * calling thread runs everything, GEMMs included (gemm.c keeps the BLAS
 * single-threaded and splits C over the pool); loops below ~32k elements
 * stay on the calling thread (kernels/parallel.h), and so does everything
 * when no context is bound or inside a pool task. Work is cut
 * along boundaries that do not depend on the thread count (fixed GEMM
 * blocks, whole rows, and sums over rows either by column blocks or by
 * fixed row chunks added in order), so every kernel gives the same bits
 * with any number of threads. */
#ifndef QKV_KERNELS_H
#define QKV_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* ---- GEMM (gemm.c: the one place that knows which BLAS runs) ---------- */

/* C[M,N] = alpha * op(A) * op(B) + beta * C, row-major.
 * op(A) is [M,K]: A is [M,K] (lda >= K) or, transposed, [K,M] (lda >= M).
 * op(B) is [K,N]: B is [K,N] (ldb >= N) or, transposed, [N,K] (ldb >= K). */
void gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
          const float *B, int ldb, float beta, float *C, int ldc);

/* Batched GEMM: count independent products with constant strides between
 * consecutive A, B and C matrices (attention's per-head products). */
void gemm_batched(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                  size_t stride_a, const float *B, int ldb, size_t stride_b, float beta, float *C,
                  int ldc, size_t stride_c, int count);

/* The same product with bf16 operands (gemm_bf16.c): op(A) and op(B) are
 * rounded to bfloat16 (nearest even), their products (exact in fp32) are
 * summed in fp32. Against the exact product of the fp32 operands,
 *   |C - C_exact| <= (2^-8 + K 2^-23) sum_k |op(A)[i,k]| |op(B)[k,j]|
 * (each operand's rounding is at most 2^-9 relative). Bits do not depend
 * on the thread count. Which kernel runs (own AVX512-BF16 microkernel or
 * oneDNN's matmul) is chosen per shape inside. Unlike the other kernels it
 * allocates: bf16 copies of the operands in buffers of the calling thread,
 * grown to the largest product seen and freed when the thread ends (out of
 * memory: the fp32 gemm instead). */
void gemm_bf16(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc);

/* gemm_bf16 when the bound context asks for bf16 (the trainer's, under
 * --precision bf16), else gemm. The linear layers use it. */
void gemm_mixed(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                const float *B, int ldb, float beta, float *C, int ldc);

/* The linear layer's two backward products through gemm_mixed:
 *   dinp[N, C] = dout[N, OC] weight[OC, C] + beta dinp   (skipped when dinp is NULL)
 *   dweight[OC, C] += dout^T[OC, N] inp[N, C]
 * In bf16 on oneDNN, dout is rounded to bf16 once for both; the bits are
 * those of the two gemm_mixed calls. */
void gemm_mixed_linear_backward(float *dinp, float beta, float *dweight, const float *dout, const float *inp,
                                const float *weight, int N, int C, int OC);

/* Tests and benchmarks: GEMM_BF16_OWN or GEMM_BF16_ONEDNN for every
 * product, -1: by shape (the default). Not while products run. Forcing
 * oneDNN where it makes no bf16 matmul runs the own kernel. */
enum { GEMM_BF16_OWN = 0, GEMM_BF16_ONEDNN = 1 };
void gemm_bf16_force(int path);
/* 1 when oneDNN makes bf16 matmuls on this CPU (none without AVX-512). */
int gemm_bf16_onednn_ok(void);
/* "own" or "onednn": the kernel gemm_bf16 runs for this shape. */
const char *gemm_bf16_path_name(int trans_a, int trans_b, int M, int N, int K);

/* ---- linear layer (PyTorch layout: weight [OC, C]) ---------------------- */

/* out: [N, OC]   inp: [N, C]   weight: [OC, C]   bias: [OC] or NULL */
void linear_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int C,
                    int OC);
/* dinp: [N, C] (may be NULL: not needed)   dweight: [OC, C]   dbias: [OC] or NULL
 * dout: [N, OC]   inp: [N, C]   weight: [OC, C]. Accumulates. */
void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, int N, int C, int OC);
/* linear_backward with dinp OVERWRITTEN rather than accumulated (dweight
 * and dbias still accumulate): the product writes it with beta = 0, which
 * saves zeroing it first and reading the zeros back (0 + x is x). */
void linear_backward_set(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                         const float *weight, int N, int C, int OC);

/* ---- embedding with scale and position ---------------------------------- */

/* out[b,t,:] = table[ids[b,t], :] * scale + (pos ? pos[t + pos_offset, :] : 0)
 * out: [B, T, C]   ids: [B, T]   table: [V, C]   pos: [P, C] or NULL
 * Requires 0 <= ids < V and T + pos_offset <= P (checked by the caller). */
void embedding_forward(float *out, const int *ids, const float *table, const float *pos, int B, int T,
                       int C, int pos_offset, float scale);
/* dtable: [V, C]   dpos: [P, C] or NULL (learned positions)   dout: [B, T, C]
 * Accumulates; rows of repeated ids add up. */
void embedding_backward(float *dtable, float *dpos, const float *dout, const int *ids, int B, int T, int C,
                        int pos_offset, float scale);

/* Fixed sinusoidal position table, Marian / Hugging Face layout:
 * table[p, j] = sin(p / 10000^(2j/C)) for j < C/2 and
 * table[p, C/2 + j] = cos(p / 10000^(2j/C)) for j < C/2 (C even).
 * table: [P, C] */
void sinusoidal_positions(float *table, int P, int C);

/* ---- layer norm ---------------------------------------------------------- */

/* out, mean, rstd: [N, C], [N], [N]   inp: [N, C]   weight, bias: [C] */
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                       const float *bias, int N, int C, float eps);
/* Accumulates into dinp, dweight, dbias. */
void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                        const float *weight, const float *mean, const float *rstd, int N, int C);

/* ---- multi-head split and merge ----------------------------------------- */

/* out: [B, H, T, D]   inp: [B, T, H*D] (row stride ld >= H*D) */
void heads_split_forward(float *out, const float *inp, int B, int T, int H, int D, int ld);
/* dinp: [B, T, H*D] (row stride ld)   dout: [B, H, T, D]. Accumulates. */
void heads_split_backward(float *dinp, const float *dout, int B, int T, int H, int D, int ld);
/* out: [B, T, H*D]   inp: [B, H, T, D] */
void heads_merge_forward(float *out, const float *inp, int B, int T, int H, int D);
/* dinp: [B, H, T, D]   dout: [B, T, H*D]. Accumulates. */
void heads_merge_backward(float *dinp, const float *dout, int B, int T, int H, int D);

/* ---- scaled dot-product attention --------------------------------------- */

/* For each batch b and head h:
 *   scores = q k^T / sqrt(D), masked to -inf where key j >= key_len[b]
 *            and, if causal, where j > i + (Tk - Tq) (query i sits at the
 *            end of the keys, which also covers incremental decoding);
 *   probs  = softmax(scores) over keys (a row with every key masked gives
 *            zeros, never NaN);
 *   out    = (probs .* dropmask) v      (dropmask NULL: no dropout;
 *            masked keys get weight 0, so their k and v must be finite
 *            but are otherwise never seen)
 * out: [B, H, Tq, D]   probs: [B, H, Tq, Tk] (kept for backward and for
 * showing attention)   q: [B, H, Tq, D]   k, v: [B, H, Tk, D]
 * key_len: [B] or NULL (no padding; values above Tk count as Tk)
 * dropmask: [B, H, Tq, Tk] of 0 or 1/(1-p), or NULL. Needs no scratch:
 * with a dropmask the product with v is taken row by row so that probs
 * keeps the undropped softmax, which the backward needs at dropped
 * positions too. */
void attention_forward(float *out, float *probs, const float *q, const float *k, const float *v,
                       const int *key_len, int causal, const float *dropmask, int B, int H, int Tq, int Tk,
                       int D);
/* dq: [B, H, Tq, D]   dk, dv: [B, H, Tk, D]   scratch: [B, H, Tq, Tk]
 * dout: [B, H, Tq, D]   probs, q, k, v, dropmask as in forward. Accumulates
 * into dq, dk, dv; scratch is overwritten. */
void attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                        const float *probs, const float *q, const float *k, const float *v,
                        const float *dropmask, int B, int H, int Tq, int Tk, int D);

/* One decoding step's self-attention: the new position t of each row
 * against its positions 0..t, whose keys and values sit in slot rows of a
 * cache (beams reselected without copying).
 * out: [B, H*D] (heads side by side)   qkv: [B, 3 H*D] (q first; k and v
 * of the new position already written to the cache)   k, v: [Tm, Bm, H*D]
 * hist: [B, Tm], hist[b, j] the slot row holding position j of row b. */
void attention_step_self(float *out, const float *qkv, const float *k, const float *v, const int *hist, int B,
                         int H, int D, int Tm, int Bm, int t);

/* One decoding step's cross-attention of each row over its source's keys:
 * src_row[b] picks the source, src_len[b] its length (0: zeros).
 * out: [B, H*D]   probs: [B, H, S] (0 past src_len)   q: [B, H*D]
 * k, v: [n_src, H, S, D] */
void attention_step_cross(float *out, float *probs, const float *q, const float *k, const float *v,
                          const int *src_row, const int *src_len, int B, int H, int D, int S);

/* ---- activations and the feed-forward block ------------------------------ */

typedef enum { ACT_RELU = 0, ACT_GELU = 1, ACT_SWISH = 2 } activation_kind;

/* GELU is the exact erf form x * 0.5 * (1 + erf(x / sqrt(2))); swish is
 * x * sigmoid(x) (SiLU).   out, inp: [n] */
void activation_forward(float *out, const float *inp, size_t n, activation_kind act);
/* dinp += dout * act'(inp). */
void activation_backward(float *dinp, const float *dout, const float *inp, size_t n, activation_kind act);

/* ---- residual add -------------------------------------------------------- */

/* out = a + b   out, a, b: [n] (out may alias a or b) */
void residual_forward(float *out, const float *a, const float *b, size_t n);
/* da += dout; db += dout. */
void residual_backward(float *da, float *db, const float *dout, size_t n);

/* ---- dropout (counter-based, so any thread count gives the same mask) ---- */

/* mask[i] = (qkv_hash_uniform(seed, i) >= p) ? 1/(1-p) : 0; out = inp * mask.
 * p == 0 gives out = inp and mask all ones. out may alias inp.
 * out, mask, inp: [n] */
void dropout_forward(float *out, float *mask, const float *inp, size_t n, float p, uint64_t seed);
/* Fills mask only (for attention dropout). */
void dropout_mask(float *mask, size_t n, float p, uint64_t seed);
/* dinp += dout * mask. */
void dropout_backward(float *dinp, const float *dout, const float *mask, size_t n);

/* ---- softmax and the loss ------------------------------------------------ */

/* Row-wise softmax and log-softmax.   out, inp: [N, V] (out may alias inp) */
void softmax_forward(float *out, const float *inp, int N, int V);
void log_softmax_forward(float *out, const float *inp, int N, int V);
/* out[n] = log sum_v exp(inp[n, v]); -inf entries count as 0 and a row of
 * -inf gives -inf (a fully masked row in decoding).   out: [N]   inp: [N, V] */
void logsumexp_rows(float *out, const float *inp, int N, int V);

/* Softmax cross-entropy with label smoothing eps (PyTorch's definition):
 *   loss[i] = (1 - eps) * -log p[i, target[i]] + eps * mean_v(-log p[i, v]),
 * and loss[i] = 0 where target[i] == ignore_index.
 * loss: [N]   probs: [N, V] (softmax, kept for backward; may alias logits)
 * logits: [N, V]   targets: [N] */
void crossentropy_forward(float *loss, float *probs, const float *logits, const int *targets, int N, int V,
                          float eps, int ignore_index);
/* dlogits[i, :] += dloss[i] * (probs[i, :] - (1 - eps) * onehot(target) - eps / V),
 * nothing for ignored rows. dlogits may alias probs (then it is overwritten
 * rather than accumulated, ignored rows becoming zeros: the caller's choice
 * to save [N, V] floats).
 * dlogits: [N, V]   probs: [N, V]   targets, dloss: [N] */
void crossentropy_backward(float *dlogits, const float *probs, const int *targets, const float *dloss, int N,
                           int V, float eps, int ignore_index);

/* ---- optimiser math ------------------------------------------------------ */

/* One AdamW step with PyTorch's semantics (torch.optim.AdamW, 1.13):
 *   param *= 1 - lr * weight_decay                  (decoupled decay)
 *   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
 *   param -= lr / (1 - beta1^step) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)
 * step counts from 1; weight_decay 0 gives Adam.   param, m, v, grad: [n] */
void adamw_update(float *param, float *m, float *v, const float *grad, size_t n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int step);
/* adamw_update on g = grad[i] * grad_scale (float), the bits of scaling grad
 * in place first, without that pass over it (gradient clipping). */
void adamw_update_scaled(float *param, float *m, float *v, const float *grad, float grad_scale, size_t n,
                         float lr, float beta1, float beta2, float eps, float weight_decay, int step);

/* Sum of squares of g[n], accumulated in double (for gradient-norm clipping). */
double global_norm_sq(const float *g, size_t n);

/* ---- memory moves (copy.c) ----------------------------------------------- */

/* dst[0, n) = 0 */
void floats_zero(float *dst, size_t n);
/* dst[0, n) = src[0, n) (no overlap) */
void floats_copy(float *dst, const float *src, size_t n);
/* out[i, :] = x[rows[i], :]   out: [n, C]   x: [*, C] */
void rows_gather(float *out, const float *x, const int *rows, int n, int C);
/* out[r, :] = where[r] >= 0 ? x[where[r], :] : 0   out: [N, C] */
void rows_scatter(float *out, const float *x, const int *where, int N, int C);

#endif
