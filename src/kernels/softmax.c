/* Row-wise softmax, log-softmax and the label-smoothed cross-entropy, all
 * max-subtracted so that no exp overflows. Rows are long (an 8k vocabulary),
 * so the sums of exps accumulate in double: a float sum of 8000 terms is off
 * by ~1e-5 relative when the compiler does not split it into SIMD lanes
 * (-O1, sanitizer builds), and the conversion costs little beside exp. */
/* No FP-exception semantics: lets GCC turn vexpf's clamps into selects and
 * vectorise the loops that call it (we never read the FP status flags). */
#pragma GCC optimize("no-trapping-math")

#include <assert.h>
#include <math.h>

#include "kernels/kernels.h"
#include "kernels/parallel.h"
#include "kernels/vmath.h"

static inline float row_max(const float *x, int V)
{
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int v = 0; v < V; v++)
        mx = x[v] > mx ? x[v] : mx;
    return mx;
}

void softmax_forward(float *out, const float *inp, int N, int V)
{
#pragma omp parallel for schedule(static) if ((long)N * V > PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * V;
        float *o = out + (size_t)n * V;
        float mx = row_max(x, V);
        double sum = 0;
#pragma omp simd reduction(+ : sum)
        for (int v = 0; v < V; v++) {
            o[v] = vexpf(x[v] - mx);
            sum += o[v];
        }
        float inv = (float)(1.0 / sum);
#pragma omp simd
        for (int v = 0; v < V; v++)
            o[v] *= inv;
    }
}

void log_softmax_forward(float *out, const float *inp, int N, int V)
{
#pragma omp parallel for schedule(static) if ((long)N * V > PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * V;
        float *o = out + (size_t)n * V;
        float mx = row_max(x, V);
        double sum = 0;
#pragma omp simd reduction(+ : sum)
        for (int v = 0; v < V; v++)
            sum += vexpf(x[v] - mx);
        float lse = mx + (float)log(sum);
#pragma omp simd
        for (int v = 0; v < V; v++)
            o[v] = x[v] - lse;
    }
}

void crossentropy_forward(float *loss, float *probs, const float *logits, const int *targets, int N, int V,
                          float eps, int ignore_index)
{
#pragma omp parallel for schedule(static) if ((long)N * V > PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * V;
        float *p = probs + (size_t)n * V;
        int t = targets[n];
        assert(t == ignore_index || (t >= 0 && t < V));
        float mx = row_max(x, V);
        float xt = t == ignore_index ? 0 : x[t]; /* read before p (maybe x) is written */
        double sum = 0, sumx = 0;
#pragma omp simd reduction(+ : sum, sumx)
        for (int v = 0; v < V; v++) {
            float xv = x[v];
            p[v] = vexpf(xv - mx);
            sum += p[v];
            sumx += xv;
        }
        float lse = mx + (float)log(sum), inv = (float)(1.0 / sum);
#pragma omp simd
        for (int v = 0; v < V; v++)
            p[v] *= inv;
        /* -log p_v = lse - x_v, so the smoothing term mean_v(-log p_v) is
         * lse - mean(x). */
        loss[n] = t == ignore_index ? 0 : (1 - eps) * (lse - xt) + eps * (lse - (float)(sumx / V));
    }
}

void crossentropy_backward(float *dlogits, const float *probs, const int *targets, const float *dloss, int N,
                           int V, float eps, int ignore_index)
{
    int overwrite = dlogits == probs;
#pragma omp parallel for schedule(static) if ((long)N * V > PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *p = probs + (size_t)n * V;
        float *d = dlogits + (size_t)n * V;
        int t = targets[n];
        if (t == ignore_index) {
            if (overwrite)
                for (int v = 0; v < V; v++)
                    d[v] = 0;
            continue;
        }
        float g = dloss[n], off = eps / V;
        /* saved first: d may be p, and p_t - (1 - eps) must be formed
         * before scaling by g, or it cancels when p_t is near 1 */
        float pt = p[t], dt = overwrite ? 0 : d[t];
        if (overwrite) {
#pragma omp simd
            for (int v = 0; v < V; v++)
                d[v] = g * (p[v] - off);
        } else {
#pragma omp simd
            for (int v = 0; v < V; v++)
                d[v] += g * (p[v] - off);
        }
        d[t] = dt + g * (pt - (1 - eps) - off);
    }
}
