/* Multi-head split/merge and scaled dot-product attention.
 *
 * Attention runs as three passes over all B*H heads at once: a batched GEMM
 * for the scores, one threaded pass of masked softmax over the rows, a
 * batched GEMM for the values. The backward mirrors it. */
/* No FP-exception semantics: lets GCC turn vexpf's clamps into selects and
 * vectorise the loops that call it (we never read the FP status flags). */
#pragma GCC optimize("no-trapping-math")

#include <math.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/parallel.h"
#include "kernels/vmath.h"

void heads_split_forward(float *out, const float *inp, int B, int T, int H, int D, int ld)
{
#pragma omp parallel for collapse(2) schedule(static) if ((long)B * H * T * D > PAR_MIN)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++)
                memcpy(out + (((size_t)b * H + h) * T + t) * D, inp + ((size_t)b * T + t) * ld + (size_t)h * D,
                       (size_t)D * sizeof(float));
}

void heads_split_backward(float *dinp, const float *dout, int B, int T, int H, int D, int ld)
{
#pragma omp parallel for collapse(2) schedule(static) if ((long)B * H * T * D > PAR_MIN)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++) {
                float *d = dinp + ((size_t)b * T + t) * ld + (size_t)h * D;
                const float *g = dout + (((size_t)b * H + h) * T + t) * D;
#pragma omp simd
                for (int i = 0; i < D; i++)
                    d[i] += g[i];
            }
}

void heads_merge_forward(float *out, const float *inp, int B, int T, int H, int D)
{
#pragma omp parallel for collapse(2) schedule(static) if ((long)B * H * T * D > PAR_MIN)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++)
                memcpy(out + ((size_t)b * T + t) * H * D + (size_t)h * D, inp + (((size_t)b * H + h) * T + t) * D,
                       (size_t)D * sizeof(float));
}

void heads_merge_backward(float *dinp, const float *dout, int B, int T, int H, int D)
{
#pragma omp parallel for collapse(2) schedule(static) if ((long)B * H * T * D > PAR_MIN)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++) {
                float *d = dinp + (((size_t)b * H + h) * T + t) * D;
                const float *g = dout + ((size_t)b * T + t) * H * D + (size_t)h * D;
#pragma omp simd
                for (int i = 0; i < D; i++)
                    d[i] += g[i];
            }
}

/* Keys [0, n) are visible to query i of batch b: the padding bound, then
 * the causal one (query i sits at key position i + Tk - Tq). */
static inline int visible_keys(const int *key_len, int causal, int b, int i, int Tq, int Tk)
{
    int n = key_len ? (key_len[b] < Tk ? key_len[b] : Tk) : Tk;
    if (causal && i + (Tk - Tq) + 1 < n)
        n = i + (Tk - Tq) + 1;
    return n < 0 ? 0 : n;
}

/* In place: p[0, n) = softmax(p[0, n)), p[n, Tk) = 0 (n = 0: all zeros). */
static inline void masked_softmax_row(float *p, int n, int Tk)
{
    if (n > 0) {
        float mx = -INFINITY, sum = 0;
#pragma omp simd reduction(max : mx)
        for (int j = 0; j < n; j++)
            mx = p[j] > mx ? p[j] : mx;
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j < n; j++) {
            p[j] = vexpf(p[j] - mx);
            sum += p[j];
        }
        float inv = 1.0f / sum;
#pragma omp simd
        for (int j = 0; j < n; j++)
            p[j] *= inv;
    }
    for (int j = n; j < Tk; j++)
        p[j] = 0;
}

void attention_forward(float *out, float *probs, const float *q, const float *k, const float *v,
                       const int *key_len, int causal, const float *dropmask, int B, int H, int Tq, int Tk, int D)
{
    int BH = B * H;
    size_t sq = (size_t)Tq * D, sk = (size_t)Tk * D, sp = (size_t)Tq * Tk;
    /* probs[bh] = q[bh] k[bh]^T / sqrt(D)   [Tq, Tk] */
    gemm_batched(0, 1, Tq, Tk, D, 1.0f / sqrtf((float)D), q, D, sq, k, D, sk, 0.0f, probs, Tk, sp, BH);
#pragma omp parallel for schedule(static) if ((long)BH * Tq * Tk > PAR_MIN)
    for (long r = 0; r < (long)BH * Tq; r++) {
        int b = (int)(r / ((long)H * Tq)), i = (int)(r % Tq);
        masked_softmax_row(probs + (size_t)r * Tk, visible_keys(key_len, causal, b, i, Tq, Tk), Tk);
    }
    if (!dropmask) {
        /* out[bh] = probs[bh] v[bh]   [Tq, D] */
        gemm_batched(0, 0, Tq, D, Tk, 1.0f, probs, Tk, sp, v, D, sk, 0.0f, out, D, sq, BH);
        return;
    }
    /* probs must keep the undropped softmax for backward and there is no
     * scratch here, so the dropped weights are applied on the fly. */
#pragma omp parallel for schedule(static) if ((long)BH * Tq * Tk * D > PAR_MIN)
    for (long r = 0; r < (long)BH * Tq; r++) {
        const float *p = probs + (size_t)r * Tk, *m = dropmask + (size_t)r * Tk;
        const float *vb = v + (size_t)(r / Tq) * sk;
        float *o = out + (size_t)r * D;
        for (int d = 0; d < D; d++)
            o[d] = 0;
        for (int j = 0; j < Tk; j++) {
            float w = p[j] * m[j];
            if (w == 0)
                continue;
            const float *vj = vb + (size_t)j * D;
#pragma omp simd
            for (int d = 0; d < D; d++)
                o[d] += w * vj[d];
        }
    }
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
#pragma omp parallel for schedule(static) if (rows * Tk > PAR_MIN)
        for (long r = 0; r < rows; r++)
            for (int j = 0; j < Tk; j++)
                scratch[(size_t)r * Tk + j] = probs[(size_t)r * Tk + j] * dropmask[(size_t)r * Tk + j];
        pd = scratch;
    }
    /* dv[bh] += (probs .* mask)^T dout   [Tk, D] */
    gemm_batched(1, 0, Tk, D, Tq, 1.0f, pd, Tk, sp, dout, D, sq, 1.0f, dv, D, sk, BH);
    /* scratch = dout v^T: the gradient of the dropped probabilities   [Tq, Tk] */
    gemm_batched(0, 1, Tq, Tk, D, 1.0f, dout, D, sq, v, D, sk, 0.0f, scratch, Tk, sp, BH);
    /* Softmax backward, row by row: dp = mask .* scratch,
     * ds = p .* (dp - sum_j p_j dp_j). Masked keys have p = 0, so ds = 0. */
#pragma omp parallel for schedule(static) if (rows * Tk > PAR_MIN)
    for (long r = 0; r < rows; r++) {
        const float *p = probs + (size_t)r * Tk;
        const float *m = dropmask ? dropmask + (size_t)r * Tk : NULL;
        float *s = scratch + (size_t)r * Tk;
        if (m) {
#pragma omp simd
            for (int j = 0; j < Tk; j++)
                s[j] *= m[j];
        }
        float c = 0;
#pragma omp simd reduction(+ : c)
        for (int j = 0; j < Tk; j++)
            c += p[j] * s[j];
#pragma omp simd
        for (int j = 0; j < Tk; j++)
            s[j] = p[j] * (s[j] - c);
    }
    float scale = 1.0f / sqrtf((float)D);
    /* dq[bh] += ds k / sqrt(D);  dk[bh] += ds^T q / sqrt(D) */
    gemm_batched(0, 0, Tq, D, Tk, scale, scratch, Tk, sp, k, D, sk, 1.0f, dq, D, sq, BH);
    gemm_batched(1, 0, Tk, D, Tq, scale, scratch, Tk, sp, q, D, sq, 1.0f, dk, D, sk, BH);
}
