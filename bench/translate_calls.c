/* What a library call costs besides its decoding: N one-sentence
 * qkv_translate calls on one translator against one call with the same N
 * sentences (batch size 1, so both decode the same batches of one
 * sentence), and the decoder weight packings each run made
 * (model_decoder_pack_count: 0 per call once the translator has packed).
 * For comparison, the same N sentences through search_run one at a time,
 * which allocates its state and packs the weights per call, as every
 * qkv_translate did before translators kept them; and the time of one
 * packing alone.
 *
 *   build/bench/translate_calls [-m MODEL] [--input F] [--sentences N]
 *                               [--beam N] [--threads N]
 *
 * MODEL defaults to the Marian fixture tests/golden/marian/opus_tiny and F
 * to tests/golden/marian/sentences.txt (both in the repository, offline);
 * lines are repeated to N (1000). For a model of the demo's shape: run
 * `build/bench/translate --make-model /tmp/small.qkv` and pass
 * -m /tmp/small.qkv --input tests/golden/spm/test.txt. Run from the
 * repository root after `make bench`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/io.h"
#include "decode/translator.h"
#include "model/model.h"
#include "qkv.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* CPU seconds of this process: on a shared machine, wall time mostly
 * measures the other jobs; with one thread CPU time is the call's cost. */
static double cpu(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int fail(void)
{
    fprintf(stderr, "translate_calls: %s\n", qkv_last_error());
    return 1;
}

int main(int argc, char **argv)
{
    const char *model = "tests/golden/marian/opus_tiny", *input = "tests/golden/marian/sentences.txt";
    int n = 1000, beam = 1, threads = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-m") && i + 1 < argc)
            model = argv[++i];
        else if (!strcmp(argv[i], "--input") && i + 1 < argc)
            input = argv[++i];
        else if (!strcmp(argv[i], "--sentences") && i + 1 < argc)
            n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--beam") && i + 1 < argc)
            beam = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: translate_calls [-m MODEL] [--input F] [--sentences N] [--beam N] [--threads N]\n");
            return 2;
        }
    }
    char *text;
    size_t len;
    qkv_translator *t;
    qkv_context *ctx;
    qkv_context_options co = qkv_context_default_options();
    co.threads = threads;
    if (n <= 0 || qkv_read_file(input, &text, &len) != QKV_OK || qkv_context_new(&co, &ctx) != QKV_OK ||
        qkv_translator_load_ctx(model, ctx, &t) != QKV_OK)
        return fail();
    char **src_lines = malloc((len + 1) * sizeof(char *)), **lines = malloc((size_t)n * sizeof(char *));
    int k = 0;
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = 0;
        if (*p)
            src_lines[k++] = p;
        if (!nl)
            break;
        p = nl + 1;
    }
    if (k == 0) {
        fprintf(stderr, "translate_calls: %s has no lines\n", input);
        return 1;
    }
    for (int i = 0; i < n; i++)
        lines[i] = src_lines[i % k];
    qkv_translate_options o = qkv_translator_default_options(t);
    o.beam_size = beam;
    o.batch_size = 1;
    qkv_translation *r, *r1;
    /* warm-up: the first call packs the weights and makes a state */
    long p0 = model_decoder_pack_count();
    double w0 = now();
    if (qkv_translate(t, (const char *const *)lines, 1, &o, &r) != QKV_OK)
        return fail();
    double first = now() - w0;
    qkv_translations_free(r, 1);
    long p_first = model_decoder_pack_count() - p0;

    /* one call, n sentences, batch 1 */
    p0 = model_decoder_pack_count();
    double t0 = now(), c0 = cpu();
    if (qkv_translate(t, (const char *const *)lines, n, &o, &r) != QKV_OK)
        return fail();
    double one_call = now() - t0, one_call_cpu = cpu() - c0;
    long p_one = model_decoder_pack_count() - p0;

    /* n calls of one sentence */
    p0 = model_decoder_pack_count();
    long tokens = 0;
    int differ = 0;
    t0 = now();
    c0 = cpu();
    for (int i = 0; i < n; i++) {
        if (qkv_translate(t, (const char *const *)lines + i, 1, &o, &r1) != QKV_OK)
            return fail();
        if (r1[0].n_hyps && r[i].n_hyps) {
            tokens += r1[0].hyps[0].n_ids + r1[0].hyps[0].ended;
            differ += strcmp(r1[0].hyps[0].text, r[i].hyps[0].text) != 0;
        }
        qkv_translations_free(r1, 1);
    }
    double calls = now() - t0, calls_cpu = cpu() - c0;
    long p_calls = model_decoder_pack_count() - p0;
    qkv_translations_free(r, n);

    /* before: search_run per sentence (new state, weights packed per call) */
    search_params sp;
    int *owned = NULL;
    if (translator_resolve(t, &o, NULL, 0, &sp, &owned) != QKV_OK)
        return fail();
    p0 = model_decoder_pack_count();
    t0 = now();
    c0 = cpu();
    for (int i = 0; i < n; i++) {
        int *ids, m, trunc;
        search_result res;
        if (translator_encode_source(t, lines[i], &ids, &m, &trunc) != QKV_OK ||
            search_run(t->model, &sp, (const int *const *)&ids, &m, 1, &res) != QKV_OK)
            return fail();
        search_results_free(&res, 1);
        free(ids);
    }
    double fresh = now() - t0, fresh_cpu = cpu() - c0;
    long p_fresh = model_decoder_pack_count() - p0;
    free(owned);

    /* one packing alone */
    int reps = 20;
    t0 = now();
    for (int i = 0; i < reps; i++) {
        model_decoder_weights *w;
        if (model_decoder_weights_new(t->model, &w) != QKV_OK)
            return fail();
        model_decoder_weights_free(w);
    }
    double pack = (now() - t0) / reps;

    const qkv_model_config *c = qkv_model_get_config(t->model);
    printf("model %s (d_model %d, %d+%d layers, vocabulary %d), %d sentences of %s, beam %d, %d thread(s), load ",
           model, c->d_model, c->encoder_layers, c->decoder_layers, c->tgt_vocab_size, n, input, beam, threads);
    FILE *la = fopen("/proc/loadavg", "r");
    char lbuf[64] = "";
    if (la && fgets(lbuf, sizeof lbuf, la))
        printf("%s", lbuf);
    else
        printf("\n");
    if (la)
        fclose(la);
    printf("%-46s %10s %10s %14s %8s\n", "run", "wall_ms", "cpu_ms", "cpu_ms/sentence", "packings");
    printf("%-46s %10.1f %10s %14s %8ld\n", "first call (1 sentence)", first * 1e3, "-", "-", p_first);
    printf("%-46s %10.1f %10.1f %14.3f %8ld\n", "1 call x all sentences (batch 1)", one_call * 1e3,
           one_call_cpu * 1e3, one_call_cpu * 1e3 / n, p_one);
    printf("%-46s %10.1f %10.1f %14.3f %8ld\n", "one-sentence qkv_translate calls", calls * 1e3, calls_cpu * 1e3,
           calls_cpu * 1e3 / n, p_calls);
    printf("%-46s %10.1f %10.1f %14.3f %8ld\n", "search_run per sentence (state+pack per call)", fresh * 1e3,
           fresh_cpu * 1e3, fresh_cpu * 1e3 / n, p_fresh);
    printf("per-call overhead (CPU, one-sentence calls - one call, per sentence): %.3f ms; with state and packing "
           "per call: %.3f ms\n",
           (calls_cpu - one_call_cpu) * 1e3 / n, (fresh_cpu - one_call_cpu) * 1e3 / n);
    printf("one packing of the decoder weights: %.3f ms; target tokens per pass %ld; lines that differ between the "
           "two runs: %d\n",
           pack * 1e3, tokens, differ);
    qkv_translator_free(t);
    qkv_context_free(ctx);
    free(lines);
    free(src_lines);
    free(text);
    return differ != 0;
}
