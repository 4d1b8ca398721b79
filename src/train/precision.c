/* Which precision a training run takes (qkv_train_options.precision):
 * the check behind --precision bf16 and the measurement behind auto. */
#include "train/precision.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "base/context.h"
#include "base/status.h"
#include "kernels/kernels.h"

const char *qkv_precision_name(qkv_precision p)
{
    switch (p) {
    case QKV_PRECISION_AUTO:
        return "auto";
    case QKV_PRECISION_FP32:
        return "fp32";
    case QKV_PRECISION_BF16:
        return "bf16";
    }
    return "?";
}

qkv_status train_precision_check(qkv_precision want)
{
    if (want != QKV_PRECISION_AUTO && want != QKV_PRECISION_FP32 && want != QKV_PRECISION_BF16)
        return qkv_fail(QKV_ERR_CONFIG, "training option 'precision': %d, expected auto, fp32 or bf16", (int)want);
    const char *why;
    if (want == QKV_PRECISION_BF16 && !qkv_bf16_native(&why))
        return qkv_fail(QKV_ERR_CONFIG,
                        "training option 'precision' bf16: this CPU has no native bf16 products (%s; bf16 needs "
                        "AVX512-BF16 or AMX-BF16): use fp32 or auto",
                        why);
    return QKV_OK;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef void (*gemm_fn)(int, int, int, int, int, float, const float *, int, const float *, int, float, float *,
                        int);

/* Seconds of the feed-forward block's three products, best of 3 after a
 * warm-up: forward X W^T [N, F] from [N, C] x [F, C]^T, input gradient
 * dY W [N, C], weight gradient dY^T X [F, C] over N. */
static double ffn_seconds(gemm_fn g, const float *x, const float *w, const float *dy, float *out, int N, int C,
                          int F)
{
    double best = 1e30;
    for (int r = 0; r < 4; r++) {
        double t0 = now_s();
        g(0, 1, N, F, C, 1.0f, x, C, w, C, 0.0f, out, F);
        g(0, 0, N, C, F, 1.0f, dy, F, w, C, 0.0f, out, C);
        g(1, 0, F, C, N, 1.0f, dy, F, x, C, 0.0f, out, C);
        double t = now_s() - t0;
        if (r > 0 && t < best)
            best = t;
    }
    return best;
}

qkv_status train_precision_auto(int d_model, int d_ff, int tokens, qkv_precision *used, char *why, size_t n)
{
    const char *miss;
    if (!qkv_bf16_native(&miss)) {
        *used = QKV_PRECISION_FP32;
        snprintf(why, n, "auto: fp32 (no native bf16 products here: %s)", miss);
        return QKV_OK;
    }
    /* at most 1024 tokens: the choice costs well under a second on the base model */
    int N = tokens < 64 ? 64 : tokens > 1024 ? 1024 : tokens, C = d_model, F = d_ff;
    float *x = malloc((size_t)N * C * sizeof(float)), *w = malloc((size_t)F * C * sizeof(float));
    float *dy = malloc((size_t)N * F * sizeof(float));
    float *out = malloc((size_t)(N > F ? N : F) * (size_t)(C > F ? C : F) * sizeof(float));
    if (!x || !w || !dy || !out) {
        free(x), free(w), free(dy), free(out);
        return qkv_fail(QKV_ERR_NOMEM, "precision auto: out of memory for the timing products (%d x %d x %d)", N,
                        F, C);
    }
    /* values of an activation's and a weight's size (the timing does not
     * depend on them, but denormals or NaN would) */
    for (size_t i = 0; i < (size_t)N * C; i++)
        x[i] = (float)((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
    for (size_t i = 0; i < (size_t)F * C; i++)
        w[i] = (float)((i * 40503u) % 1000) * 1e-4f - 0.05f;
    for (size_t i = 0; i < (size_t)N * F; i++)
        dy[i] = (float)((i * 2246822519u) % 1000) * 1e-6f - 5e-4f;
    double t32 = ffn_seconds(gemm, x, w, dy, out, N, C, F);
    double t16 = ffn_seconds(gemm_bf16, x, w, dy, out, N, C, F);
    free(x), free(w), free(dy), free(out);
    *used = t16 <= 0.9 * t32 ? QKV_PRECISION_BF16 : QKV_PRECISION_FP32;
    snprintf(why, n, "auto: %s (feed-forward products %dx%dx%d: bf16 %.2f ms, fp32 %.2f ms; bf16 needs to be 10%% "
                     "faster)", qkv_precision_name(*used), N, F, C, 1e3 * t16, 1e3 * t32);
    return QKV_OK;
}
