/* Attention and feed-forward sublayers: forward / backward over the kernels.
 * Gradient scratch is zeroed here before each accumulating kernel, because
 * every kernel backward adds into its outputs. */
#include "model/layers.h"

#include <string.h>

void zero_floats(float *p, size_t n) { floats_zero(p, n); }

/* linear_backward (add 1) or linear_backward_set (add 0) */
static void linear_backward_to(int add, float *dinp, float *dweight, float *dbias, const float *dout,
                               const float *inp, const float *weight, int N, int C, int OC)
{
    if (add)
        linear_backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
    else
        linear_backward_set(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
}

/* Between the input and output projections of self-attention: the heads
 * split from qkv_tmp [N, 3C], attention, the heads merged into a->merged. */
static void self_attention_core(attn_acts *a, const float *qkv_tmp, const int *key_len, int causal,
                                const float *dropmask, int B, int T, int C, int H)
{
    int D = C / H;
    heads_split_forward(a->q, qkv_tmp, B, T, H, D, 3 * C);
    heads_split_forward(a->k, qkv_tmp + C, B, T, H, D, 3 * C);
    heads_split_forward(a->v, qkv_tmp + 2 * C, B, T, H, D, 3 * C);
    attention_forward(a->atty, a->probs, a->q, a->k, a->v, key_len, causal, dropmask, B, H, T, T, D);
    heads_merge_forward(a->merged, a->atty, B, T, H, D);
}

void self_attention_forward(float *out, attn_acts *a, float *qkv_tmp, const float *x, const float *P,
                            const attn_offsets *o, const int *key_len, int causal, const float *dropmask, int B,
                            int T, int C, int H)
{
    int N = B * T;
    /* one GEMM for q, k and v: their weights are consecutive rows */
    linear_forward(qkv_tmp, x, P + o->qkv_w, P + o->qkv_b, N, C, 3 * C);
    self_attention_core(a, qkv_tmp, key_len, causal, dropmask, B, T, C, H);
    linear_forward(out, a->merged, P + o->out_w, P + o->out_b, N, C, C);
}

void self_attention_forward_typed(float *out, attn_acts *a, float *qkv_tmp, const float *x, const float *P,
                                  const attn_offsets *o, const qlinear *wqkv, const qlinear *wout, void *qscratch,
                                  const int *key_len, int B, int T, int C, int H)
{
    int N = B * T;
    qlinear_forward(qkv_tmp, x, wqkv, P + o->qkv_b, N, qscratch);
    self_attention_core(a, qkv_tmp, key_len, 0, NULL, B, T, C, H);
    qlinear_forward(out, a->merged, wout, P + o->out_b, N, qscratch);
}

/* From d(out) to the gradients with respect to q, k, v in head layout:
 * the part common to self and cross attention. */
static void attention_core_backward(float *G, const float *dout, const float *P, const attn_offsets *o,
                                    const attn_acts *a, const float *dropmask, const sublayer_scratch *w, int B,
                                    int Tq, int Tk, int C, int H)
{
    int Nq = B * Tq, D = C / H;
    size_t nq = (size_t)Nq * C, nk = (size_t)B * Tk * C;
    linear_backward_set(w->d_merged, G + o->out_w, G + o->out_b, dout, a->merged, P + o->out_w, Nq, C, C);
    /* heads_merge_backward into zeros is a copy into head layout: the split */
    heads_split_forward(w->d_atty, w->d_merged, B, Tq, H, D, C);
    zero_floats(w->dq, nq);
    zero_floats(w->dk, nk);
    zero_floats(w->dv, nk);
    attention_backward(w->dq, w->dk, w->dv, w->att, w->d_atty, a->probs, a->q, a->k, a->v, dropmask, B, H, Tq, Tk,
                       D);
}

void self_attention_backward(float *dx, int dx_add, float *G, const float *dout, const float *x, const float *P,
                             const attn_offsets *o, const attn_acts *a, const float *dropmask,
                             const sublayer_scratch *w, int B, int T, int C, int H)
{
    int N = B * T, D = C / H;
    attention_core_backward(G, dout, P, o, a, dropmask, w, B, T, T, C, H);
    float *dqkv = w->d_proj; /* [N, 3C] */
    zero_floats(dqkv, (size_t)N * 3 * C);
    heads_split_backward(dqkv, w->dq, B, T, H, D, 3 * C);
    heads_split_backward(dqkv + C, w->dk, B, T, H, D, 3 * C);
    heads_split_backward(dqkv + 2 * C, w->dv, B, T, H, D, 3 * C);
    linear_backward_to(dx_add, dx, G + o->qkv_w, G + o->qkv_b, dqkv, x, P + o->qkv_w, N, C, 3 * C);
}

void cross_attention_forward(float *out, attn_acts *a, float *kv_tmp, const float *x, const float *enc,
                             const float *P, const attn_offsets *o, const int *src_len, const float *dropmask,
                             int B, int T, int S, int C, int H)
{
    int Nt = B * T, Ns = B * S, D = C / H;
    size_t CC = (size_t)C * C;
    /* q into the merged buffer as a [Nt, C] temporary: it is overwritten by
     * heads_merge_forward below, after q has been split into heads */
    linear_forward(a->merged, x, P + o->qkv_w, P + o->qkv_b, Nt, C, C);
    heads_split_forward(a->q, a->merged, B, T, H, D, C);
    linear_forward(kv_tmp, enc, P + o->qkv_w + CC, P + o->qkv_b + C, Ns, C, 2 * C);
    heads_split_forward(a->k, kv_tmp, B, S, H, D, 2 * C);
    heads_split_forward(a->v, kv_tmp + C, B, S, H, D, 2 * C);
    attention_forward(a->atty, a->probs, a->q, a->k, a->v, src_len, 0, dropmask, B, H, T, S, D);
    heads_merge_forward(a->merged, a->atty, B, T, H, D);
    linear_forward(out, a->merged, P + o->out_w, P + o->out_b, Nt, C, C);
}

void cross_attention_backward(float *dx, int dx_add, float *denc, float *G, const float *dout, const float *x,
                              const float *enc, const float *P, const attn_offsets *o, const attn_acts *a,
                              const float *dropmask, const sublayer_scratch *w, int B, int T, int S, int C, int H)
{
    int Nt = B * T, Ns = B * S, D = C / H;
    size_t CC = (size_t)C * C;
    attention_core_backward(G, dout, P, o, a, dropmask, w, B, T, S, C, H);
    float *dkv = w->d_proj;                     /* [Ns, 2C] */
    float *dq = w->d_proj + (size_t)Ns * 2 * C; /* [Nt, C] */
    zero_floats(dkv, (size_t)Ns * 2 * C);
    zero_floats(dq, (size_t)Nt * C);
    heads_split_backward(dq, w->dq, B, T, H, D, C);
    heads_split_backward(dkv, w->dk, B, S, H, D, 2 * C);
    heads_split_backward(dkv + C, w->dv, B, S, H, D, 2 * C);
    linear_backward_to(dx_add, dx, G + o->qkv_w, G + o->qkv_b, dq, x, P + o->qkv_w, Nt, C, C);
    linear_backward(denc, G + o->qkv_w + CC, G + o->qkv_b + C, dkv, enc, P + o->qkv_w + CC, Ns, C, 2 * C);
}

void ffn_forward(float *out, ffn_acts *f, const float *x, const float *P, const layer_offsets *L,
                 activation_kind act, float p, uint64_t seed, float *mask, int N, int C, int F)
{
    size_t n = (size_t)N * F;
    linear_forward(f->pre, x, P + L->fc1_w, P + L->fc1_b, N, C, F);
    activation_forward(f->act, f->pre, n, act);
    if (p > 0.0f)
        dropout_forward(f->act, mask, f->act, n, p, seed);
    linear_forward(out, f->act, P + L->fc2_w, P + L->fc2_b, N, F, C);
}

void ffn_forward_typed(float *out, ffn_acts *f, const float *x, const float *P, const layer_offsets *L,
                       const qlinear *w1, const qlinear *w2, void *qscratch, activation_kind act, int N, int F)
{
    qlinear_forward(f->pre, x, w1, P + L->fc1_b, N, qscratch);
    activation_forward(f->act, f->pre, (size_t)N * F, act);
    qlinear_forward(out, f->act, w2, P + L->fc2_b, N, qscratch);
}

void ffn_backward(float *dx, int dx_add, float *G, const float *dout, const float *x, const float *P,
                  const layer_offsets *L, const ffn_acts *f, activation_kind act, float p, uint64_t seed,
                  const sublayer_scratch *w, int N, int C, int F)
{
    size_t n = (size_t)N * F;
    /* d_act: gradient of fc2's input (the activation after dropout) */
    linear_backward_set(w->d_act, G + L->fc2_w, G + L->fc2_b, dout, f->act, P + L->fc2_w, N, F, C);
    float *d_out_act = w->d_act, *d_pre = w->d_pre;
    if (p > 0.0f) {
        /* through the dropout, with the mask regenerated from its seed */
        dropout_forward(w->d_pre, w->mask, w->d_act, n, p, seed); /* d_pre = d_act * mask */
        d_out_act = w->d_pre;
        d_pre = w->d_act;
    }
    zero_floats(d_pre, n);
    activation_backward(d_pre, d_out_act, f->pre, n, act);
    linear_backward_to(dx_add, dx, G + L->fc1_w, G + L->fc1_b, d_pre, x, P + L->fc1_w, N, C, F);
}
