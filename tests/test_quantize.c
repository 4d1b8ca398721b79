/* qkv quantize: checkpoints with int8 or bf16 decoder weights
 * (train/model_quant.c). What is stored equals what --compute-type makes
 * at load time, so a quantized file translates to the bit as its float32
 * source with that compute type; the float32 buffer it loads into holds the
 * dequantized weights; the file is smaller; bad files get errors naming the
 * section. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/io.h"
#include "kernels/quant.h"
#include "model/model.h"
#include "train/model_io.h"
#include "test.h"

/* A model on the 1,000-piece fixture vocabulary: tied (the output
 * projection is the target embedding, kept in float32 too) or untied. */
static qkv_model *vocab_model(int tied, int pre_norm, uint64_t seed)
{
    qkv_model_config c = qkv_model_default_config();
    c.src_vocab_size = c.tgt_vocab_size = 1000;
    c.shared_vocab = 1;
    c.tie_encoder_decoder_embeddings = c.tie_output_embeddings = tied;
    c.d_model = 32;
    c.encoder_heads = c.decoder_heads = 4;
    c.encoder_d_ff = c.decoder_d_ff = 48;
    c.encoder_layers = 1;
    c.decoder_layers = 2;
    c.max_positions = 40;
    c.norm = pre_norm ? QKV_NORM_PRE : QKV_NORM_POST;
    c.final_norm = pre_norm;
    c.eos_id = 2;
    c.pad_id = 3;
    c.bos_id = 1;
    c.decoder_start_id = 1;
    qkv_model *m = NULL;
    CHECK(qkv_model_new(&c, seed, &m) == QKV_OK, "model: %s", qkv_last_error());
    return m;
}

static long file_size(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 ? (long)sb.st_size : -1;
}

/* Loaded parameters: every tensor outside the decoder's products is the
 * original to the bit; each product tensor is its dequantized self (or the
 * original, when a float32 path reads it too). */
static void check_params(const qkv_model *orig, const qkv_model *q, int int8, const char *what)
{
    int n = model_decoder_product_count(orig);
    model_product_tensor *t = malloc((size_t)n * sizeof *t);
    model_decoder_product_tensors(orig, t);
    size_t np = orig->num_params, bad = 0, first = 0;
    unsigned char *in_product = calloc(np, 1);
    for (int i = 0; i < n; i++) {
        size_t e = (size_t)t[i].rows * t[i].cols;
        const float *w = orig->params + t[i].offset, *got = q->params + t[i].offset;
        float *want = malloc(e * sizeof(float));
        if (t[i].fp32_too) {
            memcpy(want, w, e * sizeof(float));
        } else if (int8) {
            int8_t *qq = malloc(e);
            float *sc = malloc((size_t)t[i].rows * sizeof(float));
            quantize_rows_s8(qq, sc, w, t[i].rows, t[i].cols, t[i].cols);
            dequantize_rows_s8(want, qq, sc, t[i].rows, t[i].cols, t[i].cols);
            free(qq);
            free(sc);
        } else {
            uint16_t *b = malloc(e * sizeof(uint16_t));
            float_to_bf16(b, w, e);
            bf16_to_float(want, b, e);
            free(b);
        }
        for (size_t k = 0; k < e; k++) {
            in_product[t[i].offset + k] = 1;
            if (memcmp(&want[k], &got[k], sizeof(float)) && !bad++)
                first = t[i].offset + k;
        }
        free(want);
    }
    for (size_t k = 0; k < np; k++)
        if (!in_product[k] && memcmp(&orig->params[k], &q->params[k], sizeof(float)) && !bad++)
            first = k;
    CHECK(bad == 0, "%s: %zu parameters differ from what the quantization stores, first at %zu: %g, loaded %g", what,
          bad, first, orig->params[first], q->params[first]);
    free(in_product);
    free(t);
}

static void round_trip(int tied, int pre_norm)
{
    qkv_model *m = vocab_model(tied, pre_norm, 17 + tied);
    char *blob = NULL;
    size_t blen = 0;
    char vpath[512];
    snprintf(vpath, sizeof vpath, "%s/spm/bpe_1000.model", test_golden_dir());
    CHECK(qkv_read_file(vpath, &blob, &blen) == QKV_OK, "read %s: %s", vpath, qkv_last_error());
    if (!m || !blob) {
        qkv_model_free(m);
        free(blob);
        return;
    }
    char f32[256], q8[256], qb[256];
    snprintf(f32, sizeof f32, "/tmp/qkv_test_quant_%ld_f32.qkv", (long)getpid());
    snprintf(q8, sizeof q8, "/tmp/qkv_test_quant_%ld_i8.qkv", (long)getpid());
    snprintf(qb, sizeof qb, "/tmp/qkv_test_quant_%ld_bf16.qkv", (long)getpid());
    qkv_vocab_blobs vb = {blob, blen, NULL, 0};
    CHECK(qkv_checkpoint_save_model(f32, m, &vb) == QKV_OK, "save: %s", qkv_last_error());
    CHECK(qkv_checkpoint_quantize(f32, q8, "int8") == QKV_OK, "quantize int8: %s", qkv_last_error());
    CHECK(qkv_checkpoint_quantize(f32, qb, "bfloat16") == QKV_OK, "quantize bf16: %s", qkv_last_error());
    long s32 = file_size(f32), s8 = file_size(q8), s16 = file_size(qb);
    printf("    tied %d: float32 %ld bytes, int8 %ld, bfloat16 %ld\n", tied, s32, s8, s16);
    CHECK(s8 > 0 && s16 > 0 && s8 < s32 && s16 < s32, "sizes: float32 %ld, int8 %ld, bf16 %ld: expected both below "
          "float32", s32, s8, s16);
    const char *paths[2] = {q8, qb};
    for (int k = 0; k < 2; k++) {
        qkv_model *l = NULL;
        qkv_vocab_blobs lb;
        void *h = NULL;
        CHECK(qkv_checkpoint_load_model(paths[k], &l, &lb, &h) == QKV_OK, "load %s: %s", paths[k], qkv_last_error());
        if (l) {
            CHECK(!strcmp(qkv_checkpoint_compute_type(h), k ? "bfloat16" : "int8"), "stored type %s",
                  qkv_checkpoint_compute_type(h));
            CHECK(lb.src && lb.src_len == blen && !memcmp(lb.src, blob, blen), "vocabulary not kept");
            check_params(m, l, k == 0, paths[k]);
        }
        qkv_model_free(l);
        qkv_checkpoint_release(h);
    }
    /* translations: the quantized file (its own type by default) against the
     * float32 file with that compute type, to the bit */
    qkv_translator *a = NULL, *b8 = NULL, *b16 = NULL;
    CHECK(qkv_translator_load(f32, &a) == QKV_OK, "%s", qkv_last_error());
    CHECK(qkv_translator_load(q8, &b8) == QKV_OK, "%s", qkv_last_error());
    CHECK(qkv_translator_load(qb, &b16) == QKV_OK, "%s", qkv_last_error());
    const char *src[] = {"I love you", "The chicken crossed the road carelessly", "Open the file", "Print"};
    const char *types[] = {"int8", "bfloat16"};
    qkv_translator *q[] = {b8, b16};
    for (int k = 0; a && b8 && b16 && k < 2; k++) {
        for (int beam = 1; beam <= 4; beam += 3) {
            qkv_translate_options o = qkv_translator_default_options(a);
            o.beam_size = beam;
            o.max_length = 20;
            qkv_translate_options oq = o;
            o.compute_type = types[k];
            qkv_translation *ra = NULL, *rb = NULL;
            CHECK(qkv_translate(a, src, 4, &o, &ra) == QKV_OK, "%s", qkv_last_error());
            CHECK(qkv_translate(q[k], src, 4, &oq, &rb) == QKV_OK, "%s", qkv_last_error());
            if (k == 0) {
                /* the stored int8 rows reordered for oneDNN (its sums forced
                 * on): the same bits */
                linear_i8_onednn_force(1);
                qkv_translator *d = NULL;
                qkv_translation *rd = NULL;
                int have = linear_i8_onednn_wanted();
                CHECK(!have || qkv_translator_load(q8, &d) == QKV_OK, "%s", qkv_last_error());
                CHECK(!d || qkv_translate(d, src, 4, &oq, &rd) == QKV_OK, "%s", qkv_last_error());
                for (int i = 0; rd && rb && i < 4; i++)
                    CHECK(rd[i].n_hyps && rb[i].n_hyps && !strcmp(rd[i].hyps[0].text, rb[i].hyps[0].text) &&
                              rd[i].hyps[0].logprob == rb[i].hyps[0].logprob,
                          "beam %d line %d: the quantized file gives '%s' with oneDNN's sums, '%s' without", beam,
                          i + 1, rd[i].n_hyps ? rd[i].hyps[0].text : "", rb[i].n_hyps ? rb[i].hyps[0].text : "");
                if (rd)
                    qkv_translations_free(rd, 4);
                qkv_translator_free(d);
                linear_i8_onednn_force(-1);
            }
            for (int i = 0; ra && rb && i < 4; i++) {
                const qkv_hypothesis *x = &ra[i].hyps[0], *y = &rb[i].hyps[0];
                CHECK(ra[i].n_hyps && rb[i].n_hyps && !strcmp(x->text, y->text) && x->logprob == y->logprob,
                      "%s beam %d line %d: float32 file with --compute-type %s gives '%s' (%.7f), the quantized file "
                      "'%s' (%.7f)",
                      types[k], beam, i + 1, types[k], x->text, x->logprob, y->text, y->logprob);
            }
            qkv_translations_free(ra, 4);
            qkv_translations_free(rb, 4);
        }
    }
    qkv_translator_free(a);
    qkv_translator_free(b8);
    qkv_translator_free(b16);
    unlink(f32);
    unlink(q8);
    unlink(qb);
    free(blob);
    qkv_model_free(m);
}

static void test_round_trip_tied(void) { round_trip(1, 1); }
static void test_round_trip_untied(void) { round_trip(0, 0); }

/* Damaged files: each names the file and the section. */
static void test_bad_files(void)
{
    qkv_model *m = vocab_model(1, 1, 5);
    if (!m)
        return;
    char f32[256], q8[256], bad[256];
    snprintf(f32, sizeof f32, "/tmp/qkv_test_quantb_%ld_f32.qkv", (long)getpid());
    snprintf(q8, sizeof q8, "/tmp/qkv_test_quantb_%ld_i8.qkv", (long)getpid());
    snprintf(bad, sizeof bad, "/tmp/qkv_test_quantb_%ld_bad.qkv", (long)getpid());
    const char blob[] = "vocabulary bytes";
    qkv_vocab_blobs vb = {blob, sizeof blob, NULL, 0};
    CHECK(qkv_checkpoint_save_model(f32, m, &vb) == QKV_OK, "save: %s", qkv_last_error());
    CHECK(qkv_checkpoint_quantize(f32, q8, "int4") == QKV_ERR_ARG && strstr(qkv_last_error(), "int4"),
          "int4 accepted or not named: %s", qkv_last_error());
    CHECK(qkv_checkpoint_quantize(f32, q8, "float32") == QKV_ERR_ARG, "float32 accepted as a quantized type");
    CHECK(qkv_checkpoint_quantize(f32, q8, "int8") == QKV_OK, "%s", qkv_last_error());
    ckpt_file f;
    CHECK(ckpt_read(q8, &f) == QKV_OK, "%s", qkv_last_error());
    if (test_failures())
        goto done;
    /* rewrite with one section altered at a time */
    static const char *const cases[][2] = {
        {"qweights", "section 'qweights'"}, {"params_rest", "section 'params_rest'"}, {"quant", "section 'quant'"}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ckpt_section sec[8];
        int n = 0;
        for (int i = 0; i < f.n_sections && n < 8; i++) {
            sec[n] = f.sections[i];
            if (!strcmp(sec[n].tag, cases[c][0])) {
                if (!strcmp(cases[c][0], "quant")) {
                    static char js[] = "{\"compute_type\": \"int4\", \"tensors\": 13}";
                    sec[n].data = js;
                    sec[n].nbytes = strlen(js);
                } else {
                    sec[n].nbytes -= 4;
                }
            }
            n++;
        }
        CHECK(ckpt_write(bad, sec, n) == QKV_OK, "%s", qkv_last_error());
        qkv_model *l = NULL;
        qkv_vocab_blobs lb;
        void *h = NULL;
        qkv_status s = qkv_checkpoint_load_model(bad, &l, &lb, &h);
        CHECK(s == QKV_ERR_FORMAT && strstr(qkv_last_error(), cases[c][1]) && strstr(qkv_last_error(), bad),
              "damaged %s: status %d, message '%s' (expected the file and %s)", cases[c][0], s, qkv_last_error(),
              cases[c][1]);
        qkv_model_free(l);
        qkv_checkpoint_release(h);
    }
    ckpt_free(&f);
done:
    unlink(f32);
    unlink(q8);
    unlink(bad);
    qkv_model_free(m);
}

/* The command: quantize, info shows the type, export writes float32, a
 * directory and a bad type are refused. */
static void test_cli(void)
{
    qkv_model *m = vocab_model(1, 0, 9); /* post-norm: what a Marian directory holds */
    char *blob = NULL;
    size_t blen = 0;
    char vpath[512];
    snprintf(vpath, sizeof vpath, "%s/spm/bpe_1000.model", test_golden_dir());
    CHECK(qkv_read_file(vpath, &blob, &blen) == QKV_OK, "read %s", vpath);
    if (!m || !blob) {
        qkv_model_free(m);
        free(blob);
        return;
    }
    char f32[256], q8[256], hf[256], cmd[1400];
    snprintf(f32, sizeof f32, "/tmp/qkv_test_quantc_%ld.qkv", (long)getpid());
    snprintf(q8, sizeof q8, "/tmp/qkv_test_quantc_%ld_i8.qkv", (long)getpid());
    snprintf(hf, sizeof hf, "/tmp/qkv_test_quantc_%ld_hf", (long)getpid());
    qkv_vocab_blobs vb = {blob, blen, NULL, 0};
    CHECK(qkv_checkpoint_save_model(f32, m, &vb) == QKV_OK, "save: %s", qkv_last_error());
    char *out = NULL;
    snprintf(cmd, sizeof cmd, "./qkv quantize %s --compute-type int8 -o %s 2>&1", f32, q8);
    int rc = test_run(cmd, &out);
    CHECK(rc == 0 && file_size(q8) > 0, "%s: exit %d: %s", cmd, rc, out ? out : "");
    free(out);
    snprintf(cmd, sizeof cmd, "./qkv info %s", q8);
    rc = test_run(cmd, &out);
    CHECK(rc == 0 && out && strstr(out, "compute type: int8"), "%s: exit %d, no 'compute type: int8' in:\n%s", cmd,
          rc, out ? out : "");
    free(out);
    snprintf(cmd, sizeof cmd, "./qkv info %s", f32);
    rc = test_run(cmd, &out);
    CHECK(rc == 0 && out && strstr(out, "compute type: float32"), "%s: no 'compute type: float32'", cmd);
    free(out);
    snprintf(cmd, sizeof cmd, "echo 'I love you' | ./qkv translate -m %s --max-length 8 && echo 'I love you' | "
             "./qkv translate -m %s --compute-type int8 --max-length 8", q8, f32);
    rc = test_run(cmd, &out);
    char *nl = out ? strchr(out, '\n') : NULL;
    CHECK(rc == 0 && nl && !strncmp(out, nl + 1, (size_t)(nl - out + 1)),
          "quantized file and --compute-type int8 translate differently:\n%s", out ? out : "");
    free(out);
    test_rm_dir(hf);
    snprintf(cmd, sizeof cmd, "./qkv export --format hf %s %s 2>&1 && grep -c F32 %s/model.safetensors", q8, hf, hf);
    rc = test_run(cmd, &out);
    CHECK(rc == 0, "%s: exit %d: %s", cmd, rc, out ? out : "");
    free(out);
    snprintf(cmd, sizeof cmd, "grep -c -e BF16 -e '\"I8\"' %s/model.safetensors", hf);
    rc = test_run(cmd, &out);
    CHECK(rc == 1, "the exported safetensors has BF16 or I8 tensors: %s", out ? out : "");
    free(out);
    test_rm_dir(hf);
    snprintf(cmd, sizeof cmd, "./qkv quantize %s --compute-type int4 -o %s.x 2>&1", f32, q8);
    rc = test_run(cmd, &out);
    CHECK(rc != 0 && out && strstr(out, "int4") && file_size("x") < 0, "int4: exit %d: %s", rc, out ? out : "");
    free(out);
    snprintf(cmd, sizeof cmd, "./qkv quantize %s/marian/opus_tiny --compute-type int8 -o %s.x 2>&1",
             test_golden_dir(), q8);
    rc = test_run(cmd, &out);
    CHECK(rc != 0 && out && strstr(out, "directory"), "a Marian directory: exit %d: %s", rc, out ? out : "");
    free(out);
    snprintf(cmd, sizeof cmd, "%s.x", q8);
    CHECK(file_size(cmd) < 0, "a refused quantize left %s", cmd);
    unlink(f32);
    unlink(q8);
    free(blob);
    qkv_model_free(m);
}

static const test_case cases[] = {
    TEST(test_round_trip_tied),
    TEST(test_round_trip_untied),
    TEST(test_bad_files),
    TEST(test_cli),
};

int main(int argc, char **argv) { return test_main_per_isa(argc, argv, cases, TEST_COUNT(cases)); }
