/* qkv translate / score / attn end to end, on a checkpoint written here
 * (a random-weight model with a 200-piece SentencePiece vocabulary from
 * tests/golden/spm/ and max_positions 24, so that long lines are cut):
 * empty lines, over-long lines, invalid UTF-8, input order, n-best format,
 * attention JSON, scores against the model computed directly. The program
 * is ./qkv (or $QKV_BIN), run from the repository root. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/io.h"
#include "base/rng.h"
#include "model/model.h"
#include "test.h"
#include "train/trainer.h"

static char dir[64];
static char ckpt[128];

static const char *qkv_bin(void) { return getenv("QKV_BIN") ? getenv("QKV_BIN") : "./qkv"; }

/* Writes the checkpoint once; returns 0 when that failed. */
static int setup(void)
{
    if (ckpt[0])
        return 1;
    snprintf(dir, sizeof dir, "/tmp/qkv_translate_XXXXXX");
    if (!mkdtemp(dir))
        return 0;
    char path[512];
    snprintf(path, sizeof path, "%s/spm/bpe_200_suffix.model", test_golden_dir());
    char *spm;
    size_t spm_len;
    if (qkv_read_file(path, &spm, &spm_len) != QKV_OK)
        return 0;
    qkv_model_config c = qkv_model_default_config();
    c.src_vocab_size = c.tgt_vocab_size = 201; /* 200 pieces + pad */
    c.shared_vocab = 1;
    c.d_model = 16;
    c.encoder_heads = c.decoder_heads = 2;
    c.encoder_d_ff = c.decoder_d_ff = 32;
    c.encoder_layers = 2;
    c.decoder_layers = 2;
    c.max_positions = 24;
    c.output_bias = 1;
    c.pad_id = 200;
    c.bos_id = 1;
    c.eos_id = 2;
    c.decoder_start_id = 1;
    qkv_model *m = NULL;
    int ok = qkv_model_new(&c, 5, &m) == QKV_OK;
    if (ok) {
        /* sharper output and an EOS that wins sometimes: varied lengths */
        qkv_tensor_info info;
        float *emb = qkv_model_find(m, "decoder.embed_tokens.weight", &info);
        for (size_t i = 0; emb && i < info.size; i++)
            emb[i] *= 6.0f;
        float *bias = qkv_model_find(m, "final_logits_bias", &info);
        qkv_rng r;
        qkv_rng_seed(&r, 9);
        for (size_t i = 0; bias && i < info.size; i++)
            bias[i] = qkv_rng_normal(&r);
        if (bias)
            bias[2] = 2.5f;
        snprintf(ckpt, sizeof ckpt, "%s/model.qkv", dir);
        qkv_vocab_blobs vb = {spm, spm_len, NULL, 0};
        ok = qkv_checkpoint_save_model(ckpt, m, &vb) == QKV_OK;
    }
    qkv_model_free(m);
    free(spm);
    if (!ok)
        ckpt[0] = 0;
    return ok;
}


static int split_lines(char *s, char **lines, int max)
{
    int n = 0;
    while (*s && n < max) {
        lines[n++] = s;
        char *nl = strchr(s, '\n');
        if (!nl)
            break;
        *nl = 0;
        s = nl + 1;
    }
    return n;
}

enum { NIN = 8 };
static const char *const INPUT[NIN] = {
    "the cat sat on the mat",
    "",
    "open the file",
    /* far longer than max_positions 24 */
    "a long line a long line a long line a long line a long line a long line a long line a long line a long line",
    "bad \xff\xfe utf8 \xc3 here",
    "   ",
    "open the file",
    "the end",
};

static void write_input(const char *path)
{
    FILE *f = fopen(path, "wb");
    for (int i = 0; i < NIN; i++)
        fprintf(f, "%s\n", INPUT[i]);
    fclose(f);
}

static void test_cli_lines_in_order(void)
{
    CHECK(setup(), "could not write the test checkpoint: %s", qkv_last_error());
    if (!ckpt[0])
        return;
    char in[256], cmd[1024], *out = NULL, *out1 = NULL;
    snprintf(in, sizeof in, "%s/in.txt", dir);
    write_input(in);
    snprintf(cmd, sizeof cmd, "%s translate -m %s --input %s --beam-size 3 2>%s/err.txt", qkv_bin(), ckpt, in, dir);
    CHECK(test_run(cmd, &out) == 0, "'%s' failed", cmd);
    snprintf(cmd, sizeof cmd, "%s translate -m %s --beam-size 3 --batch-size 1 --threads 1 < %s 2>/dev/null",
             qkv_bin(), ckpt, in);
    CHECK(test_run(cmd, &out1) == 0, "'%s' failed", cmd);
    if (!out || !out1)
        goto done;
    char *a[64], *b[64];
    int na = split_lines(out, a, 64), nb = split_lines(out1, b, 64);
    CHECK(na == NIN && nb == NIN, "%d and %d output lines for %d input lines", na, nb, NIN);
    for (int i = 0; i < na && i < nb && i < NIN; i++) {
        CHECK(!strcmp(a[i], b[i]), "line %d: batch 32 gives '%s', batch 1 gives '%s'", i + 1, a[i], b[i]);
        int empty_in = i == 1 || i == 5;
        CHECK(empty_in == (a[i][0] == 0), "line %d: input '%s', output '%s'", i + 1, INPUT[i], a[i]);
    }
    if (na == NIN)
        CHECK(!strcmp(a[2], a[6]), "the same input gave '%s' and '%s' on lines 3 and 7", a[2], a[6]);
    /* the library on each line alone gives the same text */
    qkv_translator *t = NULL;
    CHECK(qkv_translator_load(ckpt, &t) == QKV_OK, "%s", qkv_last_error());
    for (int i = 0; t && i < NIN && i < na; i++) {
        qkv_translate_options o = qkv_translator_default_options(t);
        o.beam_size = 3;
        qkv_translation *r = NULL;
        CHECK(qkv_translate(t, &INPUT[i], 1, &o, &r) == QKV_OK, "%s", qkv_last_error());
        if (!r)
            continue;
        const char *txt = r[0].n_hyps ? r[0].hyps[0].text : "";
        CHECK(!strcmp(txt, a[i]), "line %d alone: '%s', in the file: '%s'", i + 1, txt, a[i]);
        CHECK((i == 3) == (r[0].truncated > 0), "line %d: truncated %d", i + 1, r[0].truncated);
        qkv_translations_free(r, 1);
    }
    qkv_translator_free(t);
    char errp[256], *err = NULL;
    size_t el;
    snprintf(errp, sizeof errp, "%s/err.txt", dir);
    if (qkv_read_file(errp, &err, &el) == QKV_OK) {
        CHECK(strstr(err, "warning: 1 line longer") != NULL, "stderr lacks the truncation warning: '%s'", err);
        free(err);
    }
done:
    free(out);
    free(out1);
}

static void test_cli_nbest_and_scores(void)
{
    if (!setup())
        return;
    char in[256], cmd[1024], *out = NULL;
    snprintf(in, sizeof in, "%s/in.txt", dir);
    write_input(in);
    snprintf(cmd, sizeof cmd, "%s translate -m %s --input %s --beam-size 4 --n-best 2>/dev/null", qkv_bin(), ckpt, in);
    CHECK(test_run(cmd, &out) == 0, "'%s' failed", cmd);
    if (!out)
        return;
    char *l[128];
    int n = split_lines(out, l, 128), per[NIN] = {0};
    for (int i = 0; i < n; i++) {
        long idx;
        char text[512];
        double f0, total;
        int k = sscanf(l[i], "%ld ||| %511[^|]||| F0= %lf ||| %lf", &idx, text, &f0, &total);
        int empty = k == 1 || (k == 2 && 0);
        if (k != 4) {
            /* an empty translation: "N |||  ||| F0= x ||| y" */
            k = sscanf(l[i], "%ld |||  ||| F0= %lf ||| %lf", &idx, &f0, &total);
            empty = k == 3;
        }
        CHECK(k == 4 || empty, "n-best line %d is not 'N ||| text ||| F0= x ||| y': '%s'", i + 1, l[i]);
        if (idx >= 0 && idx < NIN)
            per[idx]++;
        CHECK(f0 <= 0 && total <= 0 && isfinite(f0), "n-best line %d: F0 %g, score %g", i + 1, f0, total);
    }
    for (int i = 0; i < NIN; i++)
        CHECK(per[i] == ((i == 1 || i == 5) ? 1 : 4), "input %d has %d n-best lines", i, per[i]);
    free(out);
    out = NULL;
    snprintf(cmd, sizeof cmd, "%s translate -m %s --input %s --beam-size 2 --scores 2>/dev/null", qkv_bin(), ckpt, in);
    CHECK(test_run(cmd, &out) == 0, "'%s' failed", cmd);
    if (out) {
        n = split_lines(out, l, 128);
        CHECK(n == NIN, "--scores: %d lines", n);
        for (int i = 0; i < n; i++) {
            double s;
            CHECK(sscanf(l[i], "%lf |||", &s) == 1 && s <= 0, "--scores line %d: '%s'", i + 1, l[i]);
        }
    }
    free(out);
}

static void test_cli_attention_json(void)
{
    if (!setup())
        return;
    char in[256], cmd[1024], js[256];
    snprintf(in, sizeof in, "%s/in.txt", dir);
    snprintf(js, sizeof js, "%s/attn.json", dir);
    write_input(in);
    snprintf(cmd, sizeof cmd, "%s translate -m %s --input %s --attention %s >/dev/null 2>&1", qkv_bin(), ckpt, in, js);
    CHECK(test_run(cmd, NULL) == 0, "'%s' failed", cmd);
    char *data;
    size_t len;
    if (qkv_read_file(js, &data, &len) != QKV_OK) {
        CHECK(0, "%s", qkv_last_error());
        return;
    }
    cJSON *a = cJSON_Parse(data);
    free(data);
    CHECK(cJSON_IsArray(a) && cJSON_GetArraySize(a) == NIN, "attention JSON: not an array of %d", NIN);
    for (int i = 0; a && i < cJSON_GetArraySize(a); i++) {
        cJSON *e = cJSON_GetArrayItem(a, i);
        if (i == 1 || i == 5) {
            CHECK(cJSON_IsNull(e), "entry %d (empty line) is not null", i);
            continue;
        }
        int ns = cJSON_GetArraySize(cJSON_GetObjectItem(e, "source"));
        int nt = cJSON_GetArraySize(cJSON_GetObjectItem(e, "target"));
        cJSON *att = cJSON_GetObjectItem(e, "attention");
        CHECK(cJSON_GetObjectItem(e, "index")->valueint == i, "entry %d has index %d", i,
              cJSON_GetObjectItem(e, "index")->valueint);
        CHECK(cJSON_GetArraySize(att) == 2, "entry %d: %d layers", i, cJSON_GetArraySize(att));
        CHECK(i != 3 || ns == 24, "the cut line has %d source tokens, expected max_positions 24", ns);
        for (int l = 0; l < cJSON_GetArraySize(att); l++) {
            cJSON *layer = cJSON_GetArrayItem(att, l);
            CHECK(cJSON_GetArraySize(layer) == 2, "entry %d layer %d: %d heads", i, l, cJSON_GetArraySize(layer));
            for (int h = 0; h < cJSON_GetArraySize(layer); h++) {
                cJSON *rows = cJSON_GetArrayItem(layer, h);
                CHECK(cJSON_GetArraySize(rows) == nt, "entry %d: %d rows for %d target tokens", i,
                      cJSON_GetArraySize(rows), nt);
                for (int t = 0; t < cJSON_GetArraySize(rows); t++) {
                    cJSON *row = cJSON_GetArrayItem(rows, t);
                    double sum = 0;
                    for (int s = 0; s < cJSON_GetArraySize(row); s++)
                        sum += cJSON_GetArrayItem(row, s)->valuedouble;
                    CHECK(cJSON_GetArraySize(row) == ns && fabs(sum - 1) < 1e-4,
                          "entry %d layer %d head %d row %d: %d weights summing to %g", i, l, h, t,
                          cJSON_GetArraySize(row), sum);
                }
            }
        }
    }
    cJSON_Delete(a);
}

/* qkv score against the model run directly: encoder, full decoder,
 * log-softmax, sum over the reference + EOS. */
static void test_cli_score(void)
{
    if (!setup())
        return;
    const char *src[3] = {"the cat sat", "open the file", ""};
    const char *tgt[3] = {"the mat", "a file is open", "anything"};
    char sp[256], tp[256], cmd[1024], *out = NULL;
    snprintf(sp, sizeof sp, "%s/src.txt", dir);
    snprintf(tp, sizeof tp, "%s/tgt.txt", dir);
    FILE *f = fopen(sp, "w"), *g = fopen(tp, "w");
    for (int i = 0; i < 3; i++) {
        fprintf(f, "%s\n", src[i]);
        fprintf(g, "%s\n", tgt[i]);
    }
    fclose(f);
    fclose(g);
    snprintf(cmd, sizeof cmd, "%s score -m %s --src %s --tgt %s 2>/dev/null", qkv_bin(), ckpt, sp, tp);
    CHECK(test_run(cmd, &out) == 0, "'%s' failed", cmd);
    if (!out)
        return;
    char *l[8];
    int n = split_lines(out, l, 8);
    CHECK(n == 3, "qkv score printed %d lines for 3 pairs", n);
    qkv_model *m = NULL;
    qkv_vocab_blobs vb;
    void *h = NULL;
    qkv_vocab *v = NULL;
    CHECK(qkv_checkpoint_load_model(ckpt, &m, &vb, &h) == QKV_OK, "%s", qkv_last_error());
    if (m && qkv_vocab_load_memory(vb.src, vb.src_len, &v) == QKV_OK) {
        for (int i = 0; i < 2 && i < n; i++) {
            int *s, *t;
            size_t ns, nt;
            qkv_vocab_encode(v, src[i], strlen(src[i]), &s, &ns, NULL);
            qkv_vocab_encode(v, tgt[i], strlen(tgt[i]), &t, &nt, NULL);
            int S = (int)ns + 1, T = (int)nt + 1, V = 201;
            int *sx = malloc((size_t)S * sizeof(int)), *tin = malloc((size_t)T * sizeof(int));
            memcpy(sx, s, ns * sizeof(int));
            sx[ns] = 2;
            tin[0] = 1;
            memcpy(tin + 1, t, nt * sizeof(int));
            model_state *st = NULL;
            const float *lg;
            double want = 0;
            if (model_state_new(m, 1, S, T, 0, &st) == QKV_OK && model_encode(st, sx, &S, 1, S) == QKV_OK &&
                model_decode_logits(st, tin, &T, T, &lg) == QKV_OK) {
                for (int j = 0; j < T; j++) {
                    int y = j < (int)nt ? t[j] : 2;
                    const float *row = lg + (size_t)j * V;
                    double mx = row[0], z = 0;
                    for (int k = 1; k < V; k++)
                        mx = row[k] > mx ? row[k] : mx;
                    for (int k = 0; k < V; k++)
                        z += exp(row[k] - mx);
                    want += row[y] - mx - log(z);
                }
            }
            double got = atof(l[i]);
            CHECK(fabs(got - want) < 1e-4 * (1 + fabs(want)), "pair %d: qkv score %s, direct %.6f", i + 1, l[i], want);
            model_state_free(st);
            free(sx);
            free(tin);
            free(s);
            free(t);
        }
        CHECK(n < 3 || atof(l[2]) == 0, "an empty source scores '%s', expected 0", n >= 3 ? l[2] : "");
    }
    qkv_vocab_free(v);
    qkv_model_free(m);
    qkv_checkpoint_release(h);
    free(out);
}

static void test_cli_attn_svg(void)
{
    if (!setup())
        return;
    char svg[256], cmd[1024], *out = NULL;
    snprintf(svg, sizeof svg, "%s/a.svg", dir);
    for (int forced = 0; forced < 2; forced++) {
        unlink(svg);
        snprintf(cmd, sizeof cmd, "%s attn -m %s \"the cat sat\" %s -o %s 2>/dev/null", qkv_bin(), ckpt,
                 forced ? "\"the mat\"" : "", svg);
        CHECK(test_run(cmd, &out) == 0, "'%s' failed", cmd);
        free(out);
        out = NULL;
        char *data;
        size_t len;
        if (qkv_read_file(svg, &data, &len) != QKV_OK) {
            CHECK(0, "%s: %s", cmd, qkv_last_error());
            continue;
        }
        CHECK(strstr(data, "<svg") != NULL && strstr(data, "</svg>") != NULL, "%s: not an SVG document", svg);
        CHECK(!forced || (strstr(data, ">ma<") && strstr(data, "&lt;/s&gt;")), "forced target pieces (ma, </s>) missing from the SVG");
        free(data);
    }
    /* errors: a missing model, a bad option value */
    snprintf(cmd, sizeof cmd, "%s translate -m %s/nope.qkv </dev/null 2>/dev/null", qkv_bin(), dir);
    CHECK(test_run(cmd, NULL) != 0, "a missing model was accepted");
    snprintf(cmd, sizeof cmd, "%s translate -m %s --beam-size 0 </dev/null 2>/dev/null", qkv_bin(), ckpt);
    CHECK(test_run(cmd, NULL) != 0, "--beam-size 0 was accepted");
}

static const test_case cases[] = {
    TEST(test_cli_lines_in_order), TEST(test_cli_nbest_and_scores), TEST(test_cli_attention_json),
    TEST(test_cli_score),          TEST(test_cli_attn_svg),
};

int main(int argc, char **argv)
{
    int rc = test_main(argc, argv, cases, TEST_COUNT(cases));
    if (dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0)
            rc = rc ? rc : 0;
    }
    return rc;
}
