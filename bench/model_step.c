/* Forward + backward time of one training step of a base-sized Transformer
 * (d_model 512, 8 heads, d_ff 2048, 6 + 6 layers, 8k vocabularies), with
 * the GEMM FLOPs it performs and the rate achieved, beside the rate of one
 * large sgemm through the same gemm() interface measured in the same run.
 *
 *   make bench && build/bench/model_step [B S T steps]   (default 64 64 64 3)
 *   /usr/bin/python3 bench/model_step_torch.py [B S T steps]   (the PyTorch peer)
 *
 * Threads: $QKV_THREADS or every core. Try OMP_WAIT_POLICY=passive: with
 * OpenBLAS's pthreads beside libgomp's spinning pool, it halved the step
 * time on a 2-core machine. Not part of the tests. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "base/context.h"
#include "base/rng.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "qkv.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* CPU seconds of the whole process (all threads): on a shared machine it
 * shows how much of the wall time this run actually had the cores. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static double gemm_peak(void)
{
    int n = 2048;
    float *a = malloc((size_t)n * n * sizeof(float)), *b = malloc((size_t)n * n * sizeof(float)),
          *c = malloc((size_t)n * n * sizeof(float));
    for (size_t i = 0; i < (size_t)n * n; i++) {
        a[i] = (float)(i % 7) * 0.01f;
        b[i] = (float)(i % 5) * 0.01f;
    }
    gemm(0, 1, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n); /* warm up */
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
        double t0 = now();
        gemm(0, 1, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double t = now() - t0;
        if (t < best)
            best = t;
    }
    free(a);
    free(b);
    free(c);
    return 2.0 * n * n * (double)n / best / 1e9;
}

int main(int argc, char **argv)
{
    int B = argc > 1 ? atoi(argv[1]) : 64, S = argc > 2 ? atoi(argv[2]) : 64, T = argc > 3 ? atoi(argv[3]) : 64;
    int steps = argc > 4 ? atoi(argv[4]) : 3;
    if (B <= 0 || S <= 0 || T <= 0 || steps <= 0) {
        fprintf(stderr, "usage: model_step [B S T steps]\n");
        return 2;
    }
    qkv_context *ctx = NULL;
    if (qkv_context_new(NULL, &ctx) != QKV_OK)
        return fprintf(stderr, "%s\n", qkv_last_error()), 1;
    ctx_bind(ctx);
    qkv_model_config c = qkv_model_default_config();
    c.src_vocab_size = c.tgt_vocab_size = 8000;
    qkv_model *m = NULL;
    model_state *s = NULL;
    if (qkv_model_new(&c, 1, &m) != QKV_OK || model_state_new(m, B, S, T, 1, &s) != QKV_OK) {
        fprintf(stderr, "model_step: %s\n", qkv_last_error());
        return 1;
    }
    int *src = malloc((size_t)B * S * sizeof(int)), *tgt = malloc((size_t)B * T * sizeof(int)),
        *lab = malloc((size_t)B * T * sizeof(int)), *sl = malloc(B * sizeof(int)), *tl = malloc(B * sizeof(int));
    qkv_rng r;
    qkv_rng_seed(&r, 3);
    for (int b = 0; b < B; b++) {
        sl[b] = S;
        tl[b] = T;
        for (int t = 0; t < S; t++)
            src[b * S + t] = 3 + (int)qkv_rng_below(&r, 7997);
        for (int t = 0; t < T; t++) {
            tgt[b * T + t] = 3 + (int)qkv_rng_below(&r, 7997);
            lab[b * T + t] = 3 + (int)qkv_rng_below(&r, 7997);
        }
    }
    model_batch batch = {B, S, T, src, sl, tgt, tl, lab};
    model_forward_options o = model_default_forward_options();
    o.label_smoothing = 0.1f;
    o.dropout = 1;

    double peak = gemm_peak();
    double flops_f = model_forward_flops(&c, B, S, T), flops = 3.0 * flops_f;
    printf("model_step: d_model %d, heads %d, d_ff %d, layers %d+%d, vocab %d/%d, %zu parameters\n", c.d_model,
           c.encoder_heads, c.encoder_d_ff, c.encoder_layers, c.decoder_layers, c.src_vocab_size, c.tgt_vocab_size,
           qkv_model_num_params(m));
    printf("batch B=%d S=%d T=%d (%d source + %d target tokens), dropout on, %d threads, workspace %.0f MB\n", B, S,
           T, B * S, B * T, qkv_context_threads(ctx_current()), model_state_workspace_bytes(s) / 1048576.0);
    /* libgomp reads this at load time; with OpenBLAS's own pthreads an
     * "active" (spinning) OpenMP pool competes with the GEMM threads */
    const char *wait = getenv("OMP_WAIT_POLICY");
    printf("OMP_WAIT_POLICY=%s (passive is much faster here when cores are scarce)\n", wait ? wait : "(unset)");
    printf("GEMM FLOPs per step: forward %.1f G, forward+backward %.1f G (backward = 2 x forward)\n",
           flops_f / 1e9, flops / 1e9);
    double tf_best = 1e30, tb_best = 1e30;
    for (int i = 0; i <= steps; i++) { /* step 0 warms up */
        float loss;
        o.seed = (uint64_t)i + 1;
        double c0 = cpu_now(), t0 = now();
        if (model_forward(s, &batch, &o, &loss) != QKV_OK) {
            fprintf(stderr, "model_step: %s\n", qkv_last_error());
            return 1;
        }
        double t1 = now();
        model_zero_grads(s);
        model_backward(s);
        double t2 = now(), c2 = cpu_now();
        if (i > 0) {
            tf_best = t1 - t0 < tf_best ? t1 - t0 : tf_best;
            tb_best = t2 - t1 < tb_best ? t2 - t1 : tb_best;
        }
        printf("  step %d: loss %.4f  forward %.3f s  backward %.3f s  (cpu %.3f s over %d threads)%s\n", i,
               (double)loss, t1 - t0, t2 - t1, c2 - c0, qkv_context_threads(ctx_current()), i == 0 ? " (warm-up)" : "");
    }
    double step = tf_best + tb_best;
    printf("best step: %.3f s (forward %.3f s, backward %.3f s), %.0f target tokens/s\n", step, tf_best, tb_best,
           B * T / step);
    printf("achieved: %.1f GFLOP/s overall (forward %.1f, backward %.1f)\n", flops / step / 1e9,
           flops_f / tf_best / 1e9, 2 * flops_f / tb_best / 1e9);
    printf("sgemm 2048^3 peak in this run: %.1f GFLOP/s -> step reaches %.0f%% of it\n", peak,
           100.0 * flops / step / 1e9 / peak);
    model_state_free(s);
    qkv_model_free(m);
    free(src);
    free(tgt);
    free(lab);
    free(sl);
    free(tl);
    return 0;
}
