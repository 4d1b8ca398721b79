/* Multi-head split/merge and scaled dot-product attention.
 *
 * Attention runs as three passes over all B*H heads at once: a batched GEMM
 * for the scores, one threaded pass of masked softmax over the rows, a
 * batched GEMM for the values. The backward mirrors it. The row loops and
 * the one-position attention of decoding steps are the dispatch table's
 * (impl/rows.inc). */
#include <math.h>
#include <string.h>

#include "kernels/isa.h"
#include "kernels/kernels.h"

/* heads split/merge: items are (b, h) pairs, each a [T, D] copy or add */
typedef struct {
    float *dst;
    const float *src;
    int H, T, D, ld;
} heads_args;

static void split_fwd(void *arg, long i0, long i1)
{
    const heads_args *a = arg;
    for (long bh = i0; bh < i1; bh++) {
        long b = bh / a->H, h = bh % a->H;
        for (int t = 0; t < a->T; t++)
            memcpy(a->dst + ((size_t)bh * a->T + t) * a->D, a->src + ((size_t)b * a->T + t) * a->ld + (size_t)h * a->D,
                   (size_t)a->D * sizeof(float));
    }
}

static void split_bwd(void *arg, long i0, long i1)
{
    const heads_args *a = arg;
    for (long bh = i0; bh < i1; bh++) {
        long b = bh / a->H, h = bh % a->H;
        for (int t = 0; t < a->T; t++) {
            float *d = a->dst + ((size_t)b * a->T + t) * a->ld + (size_t)h * a->D;
            const float *g = a->src + ((size_t)bh * a->T + t) * a->D;
            for (int i = 0; i < a->D; i++)
                d[i] += g[i];
        }
    }
}

static void merge_fwd(void *arg, long i0, long i1)
{
    const heads_args *a = arg;
    size_t C = (size_t)a->H * a->D;
    for (long bh = i0; bh < i1; bh++) {
        long b = bh / a->H, h = bh % a->H;
        for (int t = 0; t < a->T; t++)
            memcpy(a->dst + ((size_t)b * a->T + t) * C + (size_t)h * a->D, a->src + ((size_t)bh * a->T + t) * a->D,
                   (size_t)a->D * sizeof(float));
    }
}

static void merge_bwd(void *arg, long i0, long i1)
{
    const heads_args *a = arg;
    size_t C = (size_t)a->H * a->D;
    for (long bh = i0; bh < i1; bh++) {
        long b = bh / a->H, h = bh % a->H;
        for (int t = 0; t < a->T; t++) {
            float *d = a->dst + ((size_t)bh * a->T + t) * a->D;
            const float *g = a->src + ((size_t)b * a->T + t) * C + (size_t)h * a->D;
            for (int i = 0; i < a->D; i++)
                d[i] += g[i];
        }
    }
}

static void heads_run(kpar_fn fn, float *dst, const float *src, int B, int T, int H, int D, int ld)
{
    heads_args a = {dst, src, H, T, D, ld};
    kpar_for((long)B * H, (double)B * H * T * D, PAR_MIN, fn, &a);
}

void heads_split_forward(float *out, const float *inp, int B, int T, int H, int D, int ld)
{
    heads_run(split_fwd, out, inp, B, T, H, D, ld);
}

void heads_split_backward(float *dinp, const float *dout, int B, int T, int H, int D, int ld)
{
    heads_run(split_bwd, dinp, dout, B, T, H, D, ld);
}

void heads_merge_forward(float *out, const float *inp, int B, int T, int H, int D)
{
    heads_run(merge_fwd, out, inp, B, T, H, D, H * D);
}

void heads_merge_backward(float *dinp, const float *dout, int B, int T, int H, int D)
{
    heads_run(merge_bwd, dinp, dout, B, T, H, D, H * D);
}

void attention_forward(float *out, float *probs, const float *q, const float *k, const float *v,
                       const int *key_len, int causal, const float *dropmask, int B, int H, int Tq, int Tk, int D)
{
    int BH = B * H;
    long rows = (long)BH * Tq;
    size_t sq = (size_t)Tq * D, sk = (size_t)Tk * D, sp = (size_t)Tq * Tk;
    /* probs[bh] = q[bh] k[bh]^T / sqrt(D)   [Tq, Tk] */
    gemm_batched(0, 1, Tq, Tk, D, 1.0f / sqrtf((float)D), q, D, sq, k, D, sk, 0.0f, probs, Tk, sp, BH);
    att_softmax_args sa = {probs, key_len, causal, H, Tq, Tk};
    kpar_for(rows, (double)rows * Tk, PAR_MIN, kern->att_softmax, &sa);
    if (!dropmask) {
        /* out[bh] = probs[bh] v[bh]   [Tq, D] */
        gemm_batched(0, 0, Tq, D, Tk, 1.0f, probs, Tk, sp, v, D, sk, 0.0f, out, D, sq, BH);
        return;
    }
    /* probs must keep the undropped softmax for backward and there is no
     * scratch here, so the dropped weights are applied on the fly. */
    att_av_args av = {out, probs, dropmask, v, Tq, Tk, D};
    kpar_for(rows, (double)rows * Tk * D, PAR_MIN, kern->att_dropped_av, &av);
}

typedef struct {
    float *dst;
    const float *p, *m;
    int Tk;
} mul_rows_args;

static void mul_rows(void *arg, long i0, long i1)
{
    const mul_rows_args *a = arg;
    for (size_t i = (size_t)i0 * a->Tk; i < (size_t)i1 * a->Tk; i++)
        a->dst[i] = a->p[i] * a->m[i];
}

void attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout, const float *probs,
                        const float *q, const float *k, const float *v, const float *dropmask, int B, int H,
                        int Tq, int Tk, int D)
{
    int BH = B * H;
    size_t sq = (size_t)Tq * D, sk = (size_t)Tk * D, sp = (size_t)Tq * Tk;
    long rows = (long)BH * Tq;
    const float *pd = probs;
    if (dropmask) {
        mul_rows_args ma = {scratch, probs, dropmask, Tk};
        kpar_for(rows, (double)rows * Tk, PAR_MIN, mul_rows, &ma);
        pd = scratch;
    }
    /* dv[bh] += (probs .* mask)^T dout   [Tk, D] */
    gemm_batched(1, 0, Tk, D, Tq, 1.0f, pd, Tk, sp, dout, D, sq, 1.0f, dv, D, sk, BH);
    /* scratch = dout v^T: the gradient of the dropped probabilities   [Tq, Tk] */
    gemm_batched(0, 1, Tq, Tk, D, 1.0f, dout, D, sq, v, D, sk, 0.0f, scratch, Tk, sp, BH);
    att_bwd_args ba = {scratch, probs, dropmask, Tk};
    kpar_for(rows, (double)rows * Tk, PAR_MIN, kern->att_softmax_bwd, &ba);
    float scale = 1.0f / sqrtf((float)D);
    /* dq[bh] += ds k / sqrt(D);  dk[bh] += ds^T q / sqrt(D) */
    gemm_batched(0, 0, Tq, D, Tk, scale, scratch, Tk, sp, k, D, sk, 1.0f, dq, D, sq, BH);
    gemm_batched(1, 0, Tk, D, Tq, scale, scratch, Tk, sp, q, D, sq, 1.0f, dk, D, sk, BH);
}

void attention_step_self(float *out, const float *qkv, const float *k, const float *v, const int *hist, int B,
                         int H, int D, int Tm, int Bm, int t)
{
    step_self_args a = {out, qkv, k, v, hist, H, D, Tm, Bm, t + 1};
    kpar_for((long)B * H, (double)B * H * (t + 1) * D * 2, PAR_MIN, kern->step_self_attention, &a);
}

void attention_step_cross(float *out, float *probs, const float *q, const float *k, const float *v,
                          const int *src_row, const int *src_len, int B, int H, int D, int S)
{
    step_cross_args a = {out, probs, q, k, v, src_row, src_len, H, D, S};
    kpar_for((long)B * H, (double)B * H * S * D * 2, PAR_MIN, kern->step_cross_attention, &a);
}
