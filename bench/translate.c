/* Translation speed of one configuration, one process (so that the peak RSS
 * printed is this configuration's). bench/translate.sh runs the matrix.
 *
 *   build/bench/translate --make-model OUT.qkv
 *       writes a random-weight model (d_model 256, 4 heads, FFN 1024,
 *       3 + 3 layers, the 1000-piece unigram vocabulary of tests/golden/spm)
 *   build/bench/translate -m MODEL --input F [--beam N] [--batch N]
 *                         [--threads N] [--repeat R] [--max-length N]
 *       translates F (R times) and prints one table row; unless --max-length
 *       is given, target lengths are capped at 1.5 x source tokens + 5 (a
 *       random model rarely picks EOS: this keeps lengths realistic):
 *       beam batch threads sentences tgt_tokens seconds sent/s tok/s peak_RSS_MB */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "base/io.h"
#include "base/rng.h"
#include "qkv.h"
#include "train/model_io.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int make_model(const char *out)
{
    char *spm;
    size_t n;
    if (qkv_read_file("tests/golden/spm/uni_1000.model", &spm, &n) != QKV_OK) {
        fprintf(stderr, "%s\n", qkv_last_error());
        return 1;
    }
    qkv_model_config c = qkv_model_default_config();
    c.src_vocab_size = c.tgt_vocab_size = 1001; /* + pad */
    c.shared_vocab = 1;
    c.d_model = 256;
    c.encoder_heads = c.decoder_heads = 4;
    c.encoder_d_ff = c.decoder_d_ff = 1024;
    c.encoder_layers = c.decoder_layers = 3;
    c.max_positions = 128;
    c.output_bias = 1;
    c.pad_id = 1000;
    c.bos_id = 1;
    c.eos_id = 2;
    c.decoder_start_id = 1;
    qkv_model *m;
    if (qkv_model_new(&c, 1, &m) != QKV_OK) {
        fprintf(stderr, "%s\n", qkv_last_error());
        return 1;
    }
    /* a logit bias that lets EOS win after a while: realistic lengths */
    float *bias = qkv_model_find(m, "final_logits_bias", NULL);
    qkv_rng r;
    qkv_rng_seed(&r, 3);
    for (int i = 0; i < 1001; i++)
        bias[i] = qkv_rng_normal(&r);
    bias[2] = 3.0f;
    qkv_vocab_blobs vb = {spm, n, NULL, 0};
    qkv_status s = qkv_checkpoint_save_model(out, m, &vb);
    qkv_model_free(m);
    free(spm);
    if (s != QKV_OK)
        fprintf(stderr, "%s\n", qkv_last_error());
    return s != QKV_OK;
}

int main(int argc, char **argv)
{
    const char *model = NULL, *input = NULL;
    int beam = 1, batch = 32, threads = 1, repeat = 1, max_length = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--make-model") && i + 1 < argc)
            return make_model(argv[i + 1]);
        else if (!strcmp(argv[i], "-m") && i + 1 < argc)
            model = argv[++i];
        else if (!strcmp(argv[i], "--input") && i + 1 < argc)
            input = argv[++i];
        else if (!strcmp(argv[i], "--beam") && i + 1 < argc)
            beam = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--repeat") && i + 1 < argc)
            repeat = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--max-length") && i + 1 < argc)
            max_length = atoi(argv[++i]);
        else {
            fprintf(stderr, "unexpected argument %s\n", argv[i]);
            return 2;
        }
    }
    if (!model || !input) {
        fprintf(stderr, "usage: translate -m MODEL --input F [--beam N] [--batch N] [--threads N] [--repeat R]\n");
        return 2;
    }
    char *text;
    size_t len;
    qkv_translator *t;
    qkv_context *ctx;
    qkv_context_options co = qkv_context_default_options();
    co.threads = threads;
    if (qkv_read_file(input, &text, &len) != QKV_OK || qkv_context_new(&co, &ctx) != QKV_OK ||
        qkv_translator_load_ctx(model, ctx, &t) != QKV_OK) {
        fprintf(stderr, "%s\n", qkv_last_error());
        return 1;
    }
    int n = 0;
    char **lines = malloc((len + 1) * sizeof(char *));
    for (char *p = text; *p;) {
        lines[n++] = p;
        char *nl = strchr(p, '\n');
        if (!nl)
            break;
        *nl = 0;
        p = nl + 1;
    }
    qkv_translate_options o = qkv_translator_default_options(t);
    o.beam_size = beam;
    o.batch_size = batch;
    if (max_length) {
        o.max_length = max_length;
    } else {
        o.max_length_ratio = 1.5f;
        o.max_length_offset = 5;
    }
    long tokens = 0, sents = 0;
    double t0 = now();
    for (int rep = 0; rep < repeat; rep++) {
        qkv_translation *r;
        if (qkv_translate(t, (const char *const *)lines, n, &o, &r) != QKV_OK) {
            fprintf(stderr, "%s\n", qkv_last_error());
            return 1;
        }
        for (int i = 0; i < n; i++)
            if (r[i].n_hyps) {
                sents++;
                tokens += r[i].hyps[0].n_ids + r[i].hyps[0].ended;
            }
        qkv_translations_free(r, n);
    }
    double dt = now() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("%4d %5d %7d %9ld %10ld %8.2f %8.1f %9.1f %11.1f\n", beam, batch, threads, sents, tokens, dt, sents / dt,
           tokens / dt, ru.ru_maxrss / 1024.0);
    qkv_translator_free(t);
    free(lines);
    free(text);
    return 0;
}
