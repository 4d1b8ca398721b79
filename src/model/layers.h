/* Sublayers of the Transformer (attention, feed-forward) as forward /
 * backward pairs over the kernels, with the activations each keeps for its
 * backward. Internal to src/model/. */
#ifndef QKV_MODEL_LAYERS_H
#define QKV_MODEL_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels.h"
#include "kernels/qlinear.h"
#include "model/model.h"

/* Kept by an attention sublayer for backward (and for showing attention).
 * q: [B, H, Tq, D]   k, v: [B, H, Tk, D]   probs: [B, H, Tq, Tk]
 * atty: [B, H, Tq, D] (forward scratch: backward does not read it)
 * merged: [B, Tq, C] (input of out_proj) */
typedef struct {
    float *q, *k, *v, *probs, *atty, *merged;
} attn_acts;

/* Kept by a feed-forward sublayer. pre: [N, F] (fc1 output)
 * act: [N, F] (activation after dropout: the input of fc2) */
typedef struct {
    float *pre, *act;
} ffn_acts;

/* Backward scratch shared by all sublayers; contents never survive a call.
 * d_merged: [N, C]   d_atty, dq: [B, H, Tq, D]   dk, dv: [B, H, Tk, D]
 * d_proj: [max(3 N_q, N_q + 2 N_k) * C] (projection-space gradients)
 * att: [B, H, Tq, Tk]   d_pre, d_act: [N, F]   mask: dropout masks */
typedef struct {
    float *d_merged, *d_atty, *dq, *dk, *dv, *d_proj, *att, *d_pre, *d_act, *mask;
} sublayer_scratch;

/* p[0, n) = 0, threaded: a [3000, 1024] gradient buffer is 12 MB, and a
 * lone memset would leave the other cores idle while it streams. */
void zero_floats(float *p, size_t n);

/* Self-attention: out = out_proj(MHA(x, x, x)).
 * out: [B*T, C]   qkv_tmp: [B*T, 3C] scratch   x: [B*T, C]
 * key_len: [B] or NULL; causal for the decoder; dropmask [B, H, T, T] or NULL */
void self_attention_forward(float *out, attn_acts *a, float *qkv_tmp, const float *x, const float *P,
                            const attn_offsets *o, const int *key_len, int causal, const float *dropmask, int B,
                            int T, int C, int H);
/* The same for inference (no causal mask, no dropout) with the two
 * projections through typed packed weights (kernels/qlinear.h: wqkv [3C,
 * C], wout [C, C]); qscratch: qlinear_scratch_bytes for B*T rows of C. */
void self_attention_forward_typed(float *out, attn_acts *a, float *qkv_tmp, const float *x, const float *P,
                                  const attn_offsets *o, const qlinear *wqkv, const qlinear *wout, void *qscratch,
                                  const int *key_len, int B, int T, int C, int H);
/* dx += d(loss)/dx (dx_add 1) or dx = d(loss)/dx (dx_add 0, which saves
 * zeroing dx first); grads G += parameter gradients. dout: [B*T, C] */
void self_attention_backward(float *dx, int dx_add, float *G, const float *dout, const float *x, const float *P,
                             const attn_offsets *o, const attn_acts *a, const float *dropmask,
                             const sublayer_scratch *w, int B, int T, int C, int H);

/* Cross-attention: queries from the decoder x [B*T, C], keys and values from
 * the encoder output enc [B*S, C], padded source keys masked by src_len.
 * kv_tmp: [B*S, 2C] scratch */
void cross_attention_forward(float *out, attn_acts *a, float *kv_tmp, const float *x, const float *enc,
                             const float *P, const attn_offsets *o, const int *src_len, const float *dropmask,
                             int B, int T, int S, int C, int H);
/* dx += d/dx (or = with dx_add 0), denc += d/denc, G += parameter gradients. */
void cross_attention_backward(float *dx, int dx_add, float *denc, float *G, const float *dout, const float *x,
                              const float *enc, const float *P, const attn_offsets *o, const attn_acts *a,
                              const float *dropmask, const sublayer_scratch *w, int B, int T, int S, int C, int H);

/* Feed-forward: out = fc2(dropout(act(fc1(x)))). out, x: [N, C].
 * mask: [N, F] scratch for the activation dropout (p = 0: none). */
void ffn_forward(float *out, ffn_acts *f, const float *x, const float *P, const layer_offsets *L,
                 activation_kind act, float p, uint64_t seed, float *mask, int N, int C, int F);
/* The same for inference (no dropout) through typed packed weights w1 [F,
 * C], w2 [C, F]; qscratch for N rows of max(C, F). */
void ffn_forward_typed(float *out, ffn_acts *f, const float *x, const float *P, const layer_offsets *L,
                       const qlinear *w1, const qlinear *w2, void *qscratch, activation_kind act, int N, int F);
/* dx += d/dx (or = with dx_add 0), G += parameter gradients. */
void ffn_backward(float *dx, int dx_add, float *G, const float *dout, const float *x, const float *P,
                  const layer_offsets *L, const ffn_acts *f, activation_kind act, float p, uint64_t seed,
                  const sublayer_scratch *w, int N, int C, int F);

#endif
