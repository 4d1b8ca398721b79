/* The qkv half of bench/train_vs_pytorch (run that driver, not this).
 *
 *   train_vs_pytorch batches --src F --tgt F --src-vocab M --tgt-vocab M
 *                    --count N [--batch-tokens 3000] [--max-len 128] [--seed 1] --out FILE
 *       reads the corpus with qkv's parallel reader and batcher (shuffled,
 *       length-bucketed, as `qkv train` does) and writes the first N batches
 *       to FILE, the format below, so PyTorch trains on exactly these.
 *   train_vs_pytorch train --batches FILE --model small|base --threads T
 *                    --warmup W --steps N [--seed 1] [--dropout 0.1] [--init-out FILE]
 *                    [--precision fp32|bf16]
 *       builds the model, writes its initial parameters to --init-out (the
 *       PyTorch side starts from them), measures a 2048^3 product at T
 *       threads in fp32 (gemm) and in bf16 (gemm_bf16) - the peaks MFU is
 *       taken against, that of the precision in use - then trains W
 *       untimed + N timed steps the way the trainer does (forward,
 *       backward, global-norm clipping, Adam, inverse-sqrt schedule; bf16:
 *       the linear layers' products with bf16 operands, as qkv train
 *       --precision bf16) and prints one JSON object on stdout.
 *
 * Batch file (little-endian int32 throughout):
 *   "QKVTB001", n_batches, src_vocab, tgt_vocab, pad, bos, eos, decoder_start,
 *   then per batch: B, S, T, src[B*S], src_len[B], tgt_in[B*T], tgt_len[B],
 *   labels[B*T].
 * Parameter file: "QKVTP001", n_tensors, then per tensor: name_len, name
 *   bytes, ndim, shape[2], float32 data. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "base/context.h"
#include "base/io.h"
#include "base/rng.h"
#include "data/batch.h"
#include "data/parallel.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "qkv.h"
#include "train/schedule.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

static const char *arg(int argc, char **argv, const char *name, const char *def)
{
    for (int i = 2; i + 1 < argc; i++)
        if (!strcmp(argv[i], name))
            return argv[i + 1];
    return def;
}

/* Options come in "--name value" pairs; a misspelt one must not silently
 * leave a default in place. */
static int check_args(int argc, char **argv, const char *const *known)
{
    for (int i = 2; i < argc; i += 2) {
        int ok = 0;
        for (const char *const *k = known; *k; k++)
            ok |= !strcmp(argv[i], *k);
        if (!ok || i + 1 >= argc) {
            fprintf(stderr, "train_vs_pytorch %s: %s '%s'\n", argv[1], ok ? "no value after" : "unknown option",
                    argv[i]);
            return 1;
        }
    }
    return 0;
}

static int fail(const char *what)
{
    fprintf(stderr, "train_vs_pytorch: %s: %s\n", what, qkv_last_error());
    return 1;
}

/* ---- batches ---------------------------------------------------------------- */

static int encode_cb(void *ctx, const char *text, size_t len, int *ids, int max_ids)
{
    int *out = NULL;
    size_t n = 0;
    if (qkv_vocab_encode(ctx, text, len, &out, &n, NULL) != QKV_OK)
        return -1;
    for (size_t i = 0; i < n && (int)i < max_ids; i++)
        ids[i] = out[i];
    free(out);
    return (int)n;
}

static void put_ints(FILE *f, const int *x, size_t n) { fwrite(x, sizeof(int32_t), n, f); }

static int cmd_batches(int argc, char **argv)
{
    static const char *const known[] = {"--src", "--tgt", "--src-vocab", "--tgt-vocab", "--out", "--count",
                                        "--batch-tokens", "--max-len", "--seed", NULL};
    if (check_args(argc, argv, known))
        return 2;
    const char *src = arg(argc, argv, "--src", NULL), *tgt = arg(argc, argv, "--tgt", NULL);
    const char *sv_path = arg(argc, argv, "--src-vocab", NULL), *tv_path = arg(argc, argv, "--tgt-vocab", NULL);
    const char *out = arg(argc, argv, "--out", NULL);
    int count = atoi(arg(argc, argv, "--count", "0"));
    int batch_tokens = atoi(arg(argc, argv, "--batch-tokens", "3000"));
    int max_len = atoi(arg(argc, argv, "--max-len", "128"));
    uint64_t seed = strtoull(arg(argc, argv, "--seed", "1"), NULL, 10);
    if (!src || !tgt || !sv_path || !tv_path || !out || count <= 0) {
        fprintf(stderr, "usage: train_vs_pytorch batches --src F --tgt F --src-vocab M --tgt-vocab M --count N "
                        "[--batch-tokens 3000] [--max-len 128] [--seed 1] --out FILE\n");
        return 2;
    }
    qkv_vocab *sv = NULL, *tv = NULL;
    if (qkv_vocab_load(sv_path, &sv) != QKV_OK || qkv_vocab_load(tv_path, &tv) != QKV_OK)
        return fail("loading the vocabularies");
    /* special ids as `qkv train` takes them: from the target vocabulary */
    int pad = qkv_vocab_pad_id(tv), bos = qkv_vocab_bos_id(tv), eos = qkv_vocab_eos_id(tv);
    if (pad < 0 || eos < 0 || qkv_vocab_eos_id(sv) < 0) {
        fprintf(stderr, "train_vs_pytorch: the vocabularies need <pad> and </s> (train them with --pad-id 3)\n");
        return 1;
    }
    int start = pad; /* as qkv train: the decoder starts from pad (Marian's convention, cli/cmd_train.c) */
    qkv_parallel_options po = qkv_parallel_default_options();
    po.encode_src = encode_cb;
    po.src_ctx = sv;
    po.encode_tgt = encode_cb;
    po.tgt_ctx = tv;
    po.src_eos = qkv_vocab_eos_id(sv);
    po.tgt_bos = start;
    po.tgt_eos = eos;
    po.max_len = max_len;
    po.src_vocab_size = qkv_vocab_size(sv);
    po.tgt_vocab_size = qkv_vocab_size(tv);
    qkv_parallel corpus;
    qkv_parallel_stats st;
    memset(&corpus, 0, sizeof corpus);
    if (qkv_parallel_read(&corpus, src, tgt, &po, &st) != QKV_OK)
        return fail("reading the corpus");
    qkv_batcher_options bo = qkv_batcher_default_options();
    bo.batch_tokens = batch_tokens;
    bo.pad_id = pad;
    bo.seed = seed;
    qkv_batcher *b = NULL;
    if (qkv_batcher_new(&b, &corpus, &bo) != QKV_OK)
        return fail("planning batches");
    qkv_afile f;
    if (qkv_afile_open(&f, out) != QKV_OK)
        return fail("opening the batch file");
    int head[7] = {count, qkv_vocab_size(sv), qkv_vocab_size(tv), pad, bos, eos, start};
    fwrite("QKVTB001", 1, 8, f.fp);
    put_ints(f.fp, head, 7);
    int64_t tgt_tokens = 0;
    for (int i = 0; i < count; i++) {
        qkv_batch x;
        if (!qkv_batcher_next(b, &x) && !qkv_batcher_next(b, &x)) {
            fprintf(stderr, "train_vs_pytorch: the batcher gave no batch\n");
            qkv_afile_abort(&f);
            return 1;
        }
        int shape[3] = {x.B, x.S, x.T};
        put_ints(f.fp, shape, 3);
        put_ints(f.fp, x.src, (size_t)x.B * x.S);
        put_ints(f.fp, x.src_len, (size_t)x.B);
        put_ints(f.fp, x.tgt_in, (size_t)x.B * x.T);
        put_ints(f.fp, x.tgt_len, (size_t)x.B);
        put_ints(f.fp, x.labels, (size_t)x.B * x.T);
        tgt_tokens += x.tgt_tokens;
    }
    if (qkv_afile_commit(&f) != QKV_OK)
        return fail("writing the batch file");
    fprintf(stderr, "train_vs_pytorch: %lld pairs kept of %lld lines; %d batches of <= %d tokens "
                    "(%lld target tokens) -> %s\n",
            (long long)st.kept, (long long)st.lines, count, batch_tokens, (long long)tgt_tokens, out);
    qkv_batcher_free(b);
    qkv_parallel_free(&corpus);
    qkv_vocab_free(sv);
    qkv_vocab_free(tv);
    return 0;
}

/* ---- train ------------------------------------------------------------------ */

typedef struct {
    int n, head[7];
    model_batch *b;
    int *ids; /* one block holding every batch's arrays */
} batch_file;

static int read_batches(const char *path, batch_file *bf)
{
    char *data;
    size_t len;
    if (qkv_read_file(path, &data, &len) != QKV_OK)
        return fail("reading the batch file");
    if (len < 8 + 7 * 4 || memcmp(data, "QKVTB001", 8) || (len - 8) % 4) {
        fprintf(stderr, "train_vs_pytorch: %s: not a batch file (magic QKVTB001)\n", path);
        return 1;
    }
    size_t n_ints = (len - 8) / 4;
    bf->ids = malloc(n_ints * sizeof(int));
    memcpy(bf->ids, data + 8, n_ints * 4);
    free(data);
    memcpy(bf->head, bf->ids, sizeof bf->head);
    bf->n = bf->head[0];
    bf->b = calloc((size_t)bf->n, sizeof *bf->b);
    size_t at = 7;
    for (int i = 0; i < bf->n; i++) {
        if (at + 3 > n_ints)
            goto truncated;
        model_batch *m = &bf->b[i];
        m->B = bf->ids[at];
        m->S = bf->ids[at + 1];
        m->T = bf->ids[at + 2];
        at += 3;
        size_t need = (size_t)m->B * m->S + 2 * (size_t)m->B * m->T + 2 * (size_t)m->B;
        if (m->B <= 0 || m->S <= 0 || m->T <= 0 || at + need > n_ints)
            goto truncated;
        m->src = bf->ids + at;
        at += (size_t)m->B * m->S;
        m->src_len = bf->ids + at;
        at += m->B;
        m->tgt_in = bf->ids + at;
        at += (size_t)m->B * m->T;
        m->tgt_len = bf->ids + at;
        at += m->B;
        m->labels = bf->ids + at;
        at += (size_t)m->B * m->T;
    }
    return 0;
truncated:
    fprintf(stderr, "train_vs_pytorch: %s: truncated or malformed batch file\n", path);
    return 1;
}

static int write_params(const char *path, qkv_model *m)
{
    qkv_afile f;
    if (qkv_afile_open(&f, path) != QKV_OK)
        return fail("opening the parameter file");
    int n = qkv_model_num_tensors(m);
    fwrite("QKVTP001", 1, 8, f.fp);
    fwrite(&n, 4, 1, f.fp);
    const float *p = qkv_model_params(m);
    for (int i = 0; i < n; i++) {
        qkv_tensor_info t;
        if (qkv_model_tensor(m, i, &t) != QKV_OK)
            return fail("listing tensors");
        int rec[4] = {(int)strlen(t.name), t.ndim, t.shape[0], t.ndim > 1 ? t.shape[1] : 1};
        fwrite(&rec[0], 4, 1, f.fp);
        fwrite(t.name, 1, strlen(t.name), f.fp);
        fwrite(&rec[1], 4, 3, f.fp);
        fwrite(p + t.offset, sizeof(float), t.size, f.fp);
    }
    if (qkv_afile_commit(&f) != QKV_OK)
        return fail("writing the parameter file");
    return 0;
}

/* sgemm of 2048^3 through gemm() at the current thread count, best of 3:
 * the peak the step's FLOP rate is measured against, in GFLOP per second of
 * wall time and (*per_cpu_s) per CPU-second of the process. On a shared
 * machine the wall rate moves with the load; the CPU-time rate much less.
 * Called before and after training, keeping the better of each: a peak
 * taken while another process held the core would flatter the MFU. */
static double gemm_peak_gflops(int bf16, double *per_cpu_s)
{
    void (*g)(int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int) =
        bf16 ? gemm_bf16 : gemm;
    int n = 2048;
    float *a = malloc((size_t)n * n * sizeof(float)), *b = malloc((size_t)n * n * sizeof(float)),
          *c = malloc((size_t)n * n * sizeof(float));
    for (size_t i = 0; i < (size_t)n * n; i++) {
        a[i] = (float)(i % 7) * 0.01f;
        b[i] = (float)(i % 5) * 0.01f;
    }
    g(0, 1, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    double best = 1e30, best_cpu = 1e30;
    for (int r = 0; r < 3; r++) {
        double t0 = now(), c0 = cpu_now();
        g(0, 1, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double t = now() - t0, tc = cpu_now() - c0;
        best = t < best ? t : best;
        best_cpu = tc < best_cpu ? tc : best_cpu;
    }
    free(a);
    free(b);
    free(c);
    double flops = 2.0 * n * n * (double)n;
    *per_cpu_s = flops / best_cpu / 1e9;
    return flops / best / 1e9;
}

/* The bench's two model sizes; the recipe is preset small's for both (the
 * base-sized model keeps pre-norm so only the size differs). */
static int model_config(const char *name, const int head[7], qkv_model_config *c)
{
    *c = qkv_model_default_config();
    if (!strcmp(name, "small")) {
        c->d_model = 256;
        c->encoder_heads = c->decoder_heads = 4;
        c->encoder_d_ff = c->decoder_d_ff = 1024;
        c->encoder_layers = c->decoder_layers = 3;
    } else if (!strcmp(name, "base")) {
        c->d_model = 512;
        c->encoder_heads = c->decoder_heads = 8;
        c->encoder_d_ff = c->decoder_d_ff = 2048;
        c->encoder_layers = c->decoder_layers = 6;
    } else {
        fprintf(stderr, "train_vs_pytorch: --model: expected small or base, got '%s'\n", name);
        return 1;
    }
    c->norm = QKV_NORM_PRE;
    c->final_norm = 1;
    c->activation = QKV_ACT_RELU;
    c->positions = QKV_POS_SINUSOIDAL;
    c->scale_embedding = 1;
    c->tie_output_embeddings = 1;
    c->dropout = 0.1f;
    c->src_vocab_size = head[1];
    c->tgt_vocab_size = head[2];
    c->pad_id = head[3];
    c->bos_id = head[4] >= 0 ? head[4] : head[3];
    c->eos_id = head[5];
    c->decoder_start_id = head[6];
    return 0;
}

static int cmd_train(int argc, char **argv)
{
    static const char *const known[] = {"--batches", "--model", "--init-out", "--threads", "--warmup",
                                        "--steps", "--seed", "--dropout", "--precision", NULL};
    if (check_args(argc, argv, known))
        return 2;
    const char *path = arg(argc, argv, "--batches", NULL), *name = arg(argc, argv, "--model", "small");
    const char *init_out = arg(argc, argv, "--init-out", NULL);
    int threads = atoi(arg(argc, argv, "--threads", "1"));
    int warmup = atoi(arg(argc, argv, "--warmup", "2")), steps = atoi(arg(argc, argv, "--steps", "10"));
    uint64_t seed = strtoull(arg(argc, argv, "--seed", "1"), NULL, 10);
    float dropout = (float)atof(arg(argc, argv, "--dropout", "0.1"));
    const char *precision = arg(argc, argv, "--precision", "fp32");
    int bf16 = !strcmp(precision, "bf16");
    const char *why;
    if (!bf16 && strcmp(precision, "fp32")) {
        fprintf(stderr, "train_vs_pytorch: --precision: expected fp32 or bf16, got '%s'\n", precision);
        return 2;
    }
    if (bf16 && !qkv_bf16_native(&why)) {
        fprintf(stderr, "train_vs_pytorch: --precision bf16: no native bf16 products here (%s)\n", why);
        return 3;
    }
    if (!path || threads <= 0 || warmup < 0 || steps <= 0) {
        fprintf(stderr, "usage: train_vs_pytorch train --batches FILE --model small|base --threads T --warmup W "
                        "--steps N [--seed 1] [--dropout 0.1] [--init-out FILE]\n");
        return 2;
    }
    batch_file bf;
    memset(&bf, 0, sizeof bf);
    if (read_batches(path, &bf))
        return 1;
    if (bf.n < warmup + steps) {
        fprintf(stderr, "train_vs_pytorch: %s holds %d batches, %d needed\n", path, bf.n, warmup + steps);
        return 1;
    }
    qkv_model_config cfg;
    if (model_config(name, bf.head, &cfg))
        return 1;
    cfg.dropout = dropout;
    qkv_context *ctx = NULL;
    qkv_context_options co = qkv_context_default_options();
    co.threads = threads;
    if (qkv_context_new(&co, &ctx) != QKV_OK)
        return fail("creating the context");
    ctx->bf16 = bf16; /* what the trainer's context view does under --precision bf16 */
    ctx_bind(ctx);
    qkv_model *m = NULL;
    if (qkv_model_new(&cfg, seed, &m) != QKV_OK)
        return fail("creating the model");
    if (init_out && write_params(init_out, m))
        return 1;
    model_state_limits lim = {0, 0, 0, 0, 0};
    for (int i = 0; i < warmup + steps; i++) {
        const model_batch *b = &bf.b[i];
        lim.max_B = b->B > lim.max_B ? b->B : lim.max_B;
        lim.max_S = b->S > lim.max_S ? b->S : lim.max_S;
        lim.max_T = b->T > lim.max_T ? b->T : lim.max_T;
        if ((int64_t)b->B * b->S > lim.max_src_cells)
            lim.max_src_cells = (int64_t)b->B * b->S;
        if ((int64_t)b->B * b->T > lim.max_tgt_cells)
            lim.max_tgt_cells = (int64_t)b->B * b->T;
    }
    model_state *s = NULL;
    if (model_state_new_limits(m, &lim, 1, &s) != QKV_OK)
        return fail("allocating the workspace");
    size_t n = qkv_model_num_params(m);
    float *mom = calloc(n, sizeof(float)), *vel = calloc(n, sizeof(float)), *grads = model_grads(s);
    float *params = qkv_model_params(m);
    /* both peaks, in the same process; MFU against the one in use */
    double peak_cpu_other, peak_other = gemm_peak_gflops(!bf16, &peak_cpu_other);
    double peak_cpu, peak = gemm_peak_gflops(bf16, &peak_cpu);
    double peak_wall_before = peak;

    qkv_schedule_options sch = qkv_schedule_default_options();
    sch.peak_lr = 1e-3;
    sch.warmup_steps = 400;
    cJSON *losses = cJSON_CreateArray();
    /* flops_done: flops_timed less the output projection and loss of the
     * padded target positions, which qkv skips (src/model/rows.h) and
     * PyTorch computes: the FLOPs qkv actually performs */
    double t_timed = 0, cpu_timed = 0, flops_timed = 0, flops_done = 0, rss_after_warmup = 0;
    int64_t tok_timed = 0;
    float loss = 0;
    for (int i = 0; i < warmup + steps; i++) {
        const model_batch *b = &bf.b[i];
        int64_t step = i + 1;
        double t0 = now(), c0 = cpu_now();
        model_forward_options fo = model_default_forward_options();
        fo.label_smoothing = 0.1f;
        fo.dropout = 1;
        fo.seed = qkv_splitmix64(seed ^ qkv_splitmix64((uint64_t)step * 1024));
        model_zero_grads(s);
        if (model_forward(s, b, &fo, &loss) != QKV_OK || model_backward(s) != QKV_OK)
            return fail("training step");
        model_zero_pad_rows(m, grads); /* as the trainer */
        double norm = sqrt(global_norm_sq(grads, n));
        /* clipped as the trainer does and torch's clip_grad_norm_ */
        float k = norm > 1.0 ? (float)(1.0 / (norm + 1e-6)) : 1.0f;
        adamw_update_scaled(params, mom, vel, grads, k, n, (float)qkv_schedule_lr(&sch, step), 0.9f, 0.98f, 1e-9f,
                            0.0f, (int)step);
        double dt = now() - t0, dc = cpu_now() - c0;
        cJSON_AddItemToArray(losses, cJSON_CreateNumber(loss));
        if (i == warmup - 1 || (warmup == 0 && i == 0))
            rss_after_warmup = peak_rss_mb();
        if (i >= warmup) {
            int64_t tok = 0;
            for (int r = 0; r < b->B; r++)
                tok += b->tgt_len[r];
            t_timed += dt;
            cpu_timed += dc;
            tok_timed += tok;
            flops_timed += 3.0 * model_forward_flops(&cfg, b->B, b->S, b->T);
            int64_t unlabelled = 0;
            for (int64_t r = 0; r < (int64_t)b->B * b->T; r++)
                unlabelled += b->labels[r] == cfg.pad_id;
            flops_done += 3.0 * (model_forward_flops(&cfg, b->B, b->S, b->T) -
                                 2.0 * (double)unlabelled * cfg.d_model * cfg.tgt_vocab_size);
        }
        fprintf(stderr, "  qkv %s %s t=%d step %lld: B=%d S=%d T=%d loss %.4f %.3f s%s\n", name, precision, threads,
                (long long)step, b->B, b->S, b->T, (double)loss, dt, i < warmup ? " (warm-up)" : "");
    }
    double peak_cpu2, peak2 = gemm_peak_gflops(bf16, &peak_cpu2);
    peak = peak2 > peak ? peak2 : peak;
    peak_cpu = peak_cpu2 > peak_cpu ? peak_cpu2 : peak_cpu;
    double peak_cpu_other2, peak_other2 = gemm_peak_gflops(!bf16, &peak_cpu_other2);
    peak_other = peak_other2 > peak_other ? peak_other2 : peak_other;
    peak_cpu_other = peak_cpu_other2 > peak_cpu_other ? peak_cpu_other2 : peak_cpu_other;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "impl", "qkv");
    cJSON_AddStringToObject(o, "model", name);
    cJSON_AddStringToObject(o, "precision", precision);
    cJSON_AddNumberToObject(o, "threads", qkv_context_threads(ctx_current()));
    cJSON_AddNumberToObject(o, "params", (double)n);
    cJSON_AddNumberToObject(o, "warmup", warmup);
    cJSON_AddNumberToObject(o, "steps", steps);
    cJSON_AddNumberToObject(o, "dropout", dropout);
    cJSON_AddNumberToObject(o, "seconds", t_timed);
    cJSON_AddNumberToObject(o, "cpu_seconds", cpu_timed);
    cJSON_AddNumberToObject(o, "tgt_tokens", (double)tok_timed);
    cJSON_AddNumberToObject(o, "tok_per_s", tok_timed / t_timed);
    cJSON_AddNumberToObject(o, "flops_timed", flops_timed);
    cJSON_AddNumberToObject(o, "flops_per_step", flops_timed / steps);
    cJSON_AddNumberToObject(o, "gemm_peak_gflops", peak);
    cJSON_AddNumberToObject(o, "gemm_peak_gflops_before", peak_wall_before);
    cJSON_AddNumberToObject(o, "gemm_peak_gflops_after", peak2);
    cJSON_AddNumberToObject(o, "gemm_peak_gflops_per_cpu_s", peak_cpu);
    cJSON_AddNumberToObject(o, bf16 ? "gemm_peak_gflops_fp32" : "gemm_peak_gflops_bf16", peak_other);
    cJSON_AddNumberToObject(o, bf16 ? "gemm_peak_gflops_bf16" : "gemm_peak_gflops_fp32", peak);
    cJSON_AddNumberToObject(o, bf16 ? "gemm_peak_gflops_per_cpu_s_fp32" : "gemm_peak_gflops_per_cpu_s_bf16",
                            peak_cpu_other);
    cJSON_AddNumberToObject(o, "mfu", flops_timed / t_timed / 1e9 / peak);
    cJSON_AddNumberToObject(o, "mfu_cpu", flops_timed / cpu_timed / 1e9 / peak_cpu);
    cJSON_AddNumberToObject(o, "flops_done", flops_done);
    cJSON_AddNumberToObject(o, "mfu_cpu_done", flops_done / cpu_timed / 1e9 / peak_cpu);
    cJSON_AddNumberToObject(o, "rss_after_warmup_mb", rss_after_warmup);
    cJSON_AddNumberToObject(o, "peak_rss_mb", peak_rss_mb());
    cJSON_AddNumberToObject(o, "last_loss", loss);
    cJSON_AddItemToObject(o, "losses", losses);
    char *js = cJSON_PrintUnformatted(o);
    printf("%s\n", js);
    free(js);
    cJSON_Delete(o);
    free(mom);
    free(vel);
    model_state_free(s);
    qkv_model_free(m);
    free(bf.b);
    free(bf.ids);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "batches"))
        return cmd_batches(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "train"))
        return cmd_train(argc, argv);
    fprintf(stderr, "usage: train_vs_pytorch batches|train ... (see bench/train_vs_pytorch.c; run the driver "
                    "bench/train_vs_pytorch)\n");
    return 2;
}
