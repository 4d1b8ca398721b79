/* qkv_translate_protected (src/decode/protected.c) on a random-weight model
 * whose vocabulary holds the sentinels: such a model drops, repeats and
 * invents sentinels at will, so every repair rule runs, and the guarantee
 * (each protected span of a source exactly once in each output) must hold
 * all the same. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/model.h"
#include "test.h"
#include "text/protect.h"
#include "train/trainer.h"

static char dir[64], ckpt[160];

static int setup(void)
{
    if (ckpt[0])
        return 1;
    snprintf(dir, sizeof dir, "/tmp/qkv_protect_XXXXXX");
    if (!mkdtemp(dir))
        return 0;
    char text[128], prefix[128], model_path[160];
    snprintf(text, sizeof text, "%s/text.txt", dir);
    FILE *f = fopen(text, "w");
    if (!f)
        return 0;
    static const char *const words[] = {"open", "file", "save", "the", "cannot", "read", "window", "print", "to"};
    for (int i = 0; i < 200; i++) {
        char s0[4];
        protect_sentinel(i % 3, s0);
        fprintf(f, "%s %s %s %s\n", words[i % 9], words[(i * 7 + 3) % 9], s0, words[(i * 5 + 1) % 9]);
        /* placeholders as plain text too, so that the model can spell them
         * out instead of using a sentinel (the rule that drops them) */
        if (i % 4 == 0)
            fprintf(f, "%s %%s <b> %%2$d {x} %s\n", words[(i * 3) % 9], words[(i + 4) % 9]);
    }
    fclose(f);
    const char *sym[PROTECT_MAX];
    char buf[PROTECT_MAX][4];
    for (int k = 0; k < PROTECT_MAX; k++) {
        protect_sentinel(k, buf[k]);
        sym[k] = buf[k];
    }
    qkv_vocab_train_options vo = qkv_vocab_train_default_options();
    vo.vocab_size = 70;
    vo.pad_id = 3;
    vo.user_defined_symbols = sym;
    vo.n_user_defined_symbols = PROTECT_MAX;
    vo.threads = 1;
    const char *in[1] = {text};
    snprintf(prefix, sizeof prefix, "%s/v", dir);
    if (qkv_vocab_train(&vo, in, 1, prefix) != QKV_OK) {
        fprintf(stderr, "vocab: %s\n", qkv_last_error());
        return 0;
    }
    snprintf(model_path, sizeof model_path, "%s.model", prefix);
    char *spm;
    size_t spm_len;
    FILE *mf = fopen(model_path, "rb");
    if (!mf)
        return 0;
    fseek(mf, 0, SEEK_END);
    spm_len = (size_t)ftell(mf);
    fseek(mf, 0, SEEK_SET);
    spm = malloc(spm_len);
    int ok = spm && fread(spm, 1, spm_len, mf) == spm_len;
    fclose(mf);
    qkv_model_config c = qkv_model_default_config();
    c.src_vocab_size = c.tgt_vocab_size = 70;
    c.shared_vocab = 1;
    c.d_model = 16;
    c.encoder_heads = c.decoder_heads = 2;
    c.encoder_d_ff = c.decoder_d_ff = 32;
    c.encoder_layers = c.decoder_layers = 1;
    c.max_positions = 48;
    c.pad_id = 3;
    c.bos_id = 1;
    c.eos_id = 2;
    c.decoder_start_id = 3;
    qkv_model *m = NULL;
    ok = ok && qkv_model_new(&c, 11, &m) == QKV_OK;
    if (ok) {
        qkv_tensor_info info;
        float *emb = qkv_model_find(m, "decoder.embed_tokens.weight", &info);
        for (size_t i = 0; emb && i < info.size; i++)
            emb[i] *= 4.0f;
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

/* The sorted keys of text's spans (protect_span_key: printf arguments by
 * number, so "%s %s" equals "%2$s %1$s"), joined by ' ' into buf. */
static void span_keys(const char *text, char *buf, size_t cap)
{
    protect_spans sp;
    int argi[PROTECT_MAX];
    char key[PROTECT_MAX][64];
    protect_find(text, strlen(text), &sp);
    protect_printf_args(text, &sp, argi);
    for (int k = 0; k < sp.n; k++)
        if (protect_span_key(text, &sp.span[k], argi[k], key[k], sizeof key[k]) != 0)
            key[k][0] = 0;
    qsort(key, (size_t)sp.n, sizeof key[0], (int (*)(const void *, const void *))strcmp);
    buf[0] = 0;
    for (int k = 0; k < sp.n; k++)
        snprintf(buf + strlen(buf), cap - strlen(buf), "%s%s", k ? " " : "", key[k]);
}

/* 1 when out has exactly the spans of src, none missing, none more */
static int same_spans(const char *src, const char *out, char *why, size_t cap)
{
    char a[1024], b[1024];
    span_keys(src, a, sizeof a);
    span_keys(out, b, sizeof b);
    if (strcmp(a, b)) {
        snprintf(why, cap, "spans {%.50s}, want {%.50s}", b, a);
        return 0;
    }
    return 1;
}

static void test_every_span_once(void)
{
    CHECK(setup(), "could not write the test model");
    if (!ckpt[0])
        return;
    qkv_translator *t = NULL;
    CHECK(qkv_translator_load(ckpt, &t) == QKV_OK, "load: %s", qkv_last_error());
    if (!t)
        return;
    CHECK(qkv_translator_protects(t), "the model with sentinel pieces does not protect");
    const char *lines[] = {
        "open %s to save %d", "<b>print</b> the {name} file", "%1 cannot read %2 &amp; %3",
        "read the window",    "save %1$s %2$s %%",            "to <i>%s</i>%s%s %z",
        "",                   "open file %lu of %lu in {0} and {1} with &lt;x&gt;",
        "save %s to %s as %d", "%PRODUCTNAME cannot print %s",
    };
    int n = (int)(sizeof lines / sizeof lines[0]);
    for (int beam = 1; beam <= 3; beam += 2) {
        qkv_translate_options o = qkv_translator_default_options(t);
        o.beam_size = beam;
        o.n_best = beam;
        o.max_length = 30;
        o.max_length_ratio = 0;
        qkv_protect_stats st = {0};
        qkv_translation *r = NULL;
        CHECK(qkv_translate_protected(t, lines, n, &o, &st, &r) == QKV_OK, "translate: %s", qkv_last_error());
        if (!r)
            continue;
        for (int i = 0; i < n; i++)
            for (int h = 0; h < r[i].n_hyps; h++) {
                char why[128] = "";
                CHECK(same_spans(lines[i], r[i].hyps[h].text, why, sizeof why), "beam %d line %d hyp %d \"%s\": %s",
                      beam, i, h, r[i].hyps[h].text, why);
                for (const char *p = r[i].hyps[h].text; *p; p++)
                    CHECK(protect_sentinel_at(p) < 0, "line %d: a sentinel left in \"%s\"", i, r[i].hyps[h].text);
            }
        CHECK(st.lines == 8 && st.spans == 28, "beam %d: %ld lines, %ld spans; want 8, 28", beam, st.lines, st.spans);
        CHECK(st.malformed == 1, "beam %d: %ld malformed, want 1 (%%z)", beam, st.malformed);
        /* an untrained model misses sentinels: insertion must have run */
        CHECK(st.inserted > 0, "beam %d: no sentinel inserted (exact %ld, repeats %ld, strays %ld)", beam, st.exact,
              st.duplicates, st.strays);
        fprintf(stderr, "# beam %d: exact %ld, repeats %ld, strays %ld, inserted %ld, written as text %ld, reordered %ld\n",
                beam, st.exact, st.duplicates, st.strays, st.inserted, st.literals, st.reordered);
        qkv_translations_free(r, n);
    }
    qkv_translator_free(t);
}

static void test_unprotected_model_refused(void)
{
    /* the 200-piece test vocabulary has no sentinels */
    char path[512], out[160];
    snprintf(path, sizeof path, "%s/spm/bpe_200_suffix.model", test_golden_dir());
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL, "%s missing", path);
    if (!f || !setup()) {
        if (f)
            fclose(f);
        return;
    }
    static char spm[1 << 16];
    size_t len = fread(spm, 1, sizeof spm, f);
    fclose(f);
    qkv_model_config c = qkv_model_default_config();
    c.src_vocab_size = c.tgt_vocab_size = 201;
    c.shared_vocab = 1;
    c.d_model = 8;
    c.encoder_heads = c.decoder_heads = 2;
    c.encoder_d_ff = c.decoder_d_ff = 16;
    c.encoder_layers = c.decoder_layers = 1;
    c.pad_id = 200;
    c.bos_id = 1;
    c.eos_id = 2;
    qkv_model *m = NULL;
    snprintf(out, sizeof out, "%s/plain.qkv", dir);
    qkv_vocab_blobs vb = {spm, len, NULL, 0};
    CHECK(qkv_model_new(&c, 1, &m) == QKV_OK && qkv_checkpoint_save_model(out, m, &vb) == QKV_OK, "save: %s",
          qkv_last_error());
    qkv_model_free(m);
    qkv_translator *t = NULL;
    CHECK(qkv_translator_load(out, &t) == QKV_OK, "load: %s", qkv_last_error());
    if (!t)
        return;
    CHECK(!qkv_translator_protects(t), "a model without sentinel pieces claims to protect");
    qkv_translate_options o = qkv_translator_default_options(t);
    const char *line = "open %s";
    qkv_translation *r = NULL;
    CHECK(qkv_translate_protected(t, &line, 1, &o, NULL, &r) != QKV_OK && r == NULL,
          "protected translation with a model that has no sentinels succeeded");
    CHECK(strstr(qkv_last_error(), "--no-protect") != NULL, "message \"%s\" does not name --no-protect",
          qkv_last_error());
    qkv_translator_free(t);
}

/* qkv translate-po end to end with the protecting model: the crafted
 * catalog and a template made from it; msgfmt --check passes on both, and
 * the entries left alone are byte-identical (tests/test_po.c checks the
 * reader and writer on their own). */
static void test_translate_po_cli(void)
{
    CHECK(setup(), "could not write the test model");
    if (!ckpt[0])
        return;
    const char *bin = getenv("QKV_BIN") ? getenv("QKV_BIN") : "./qkv";
    char cmd[2048], *msg = NULL, out[200], pot[200];
    snprintf(out, sizeof out, "%s/out.po", dir);
    snprintf(cmd, sizeof cmd, "%s translate-po -m %s %s/po/crafted.po -o %s --beam-size 2 --max-length 20 2>&1", bin,
             ckpt, test_golden_dir(), out);
    int rc = test_run(cmd, &msg);
    CHECK(rc == 0 && msg && strstr(msg, "translated (marked fuzzy)"), "translate-po failed (%d): %s", rc,
          msg ? msg : "");
    free(msg);
    snprintf(cmd, sizeof cmd, "msgfmt --check -o /dev/null %s 2>&1", out);
    rc = test_run(cmd, &msg);
    CHECK(rc == 0, "msgfmt --check on translate-po output (%d): %s", rc, msg ? msg : "");
    free(msg);
    /* the already translated entries survive byte for byte */
    snprintf(cmd, sizeof cmd, "grep -c -e '^msgstr \"打开 %%s\"$' -e '^msgstr \"取消\"$' -e '^#~ msgstr \"旧字符串\"$' %s", out);
    rc = test_run(cmd, &msg);
    CHECK(rc == 0 && msg && atoi(msg) == 3, "kept entries: grep found %s", msg ? msg : "(nothing)");
    free(msg);
    /* a template: msgstr blanked, header with CHARSET and INTEGER */
    snprintf(pot, sizeof pot, "%s/t.pot", dir);
    snprintf(cmd, sizeof cmd,
             "msgfilter -i %s/po/crafted.po --keep-header -o - sed d 2>/dev/null | sed -e 's/charset=UTF-8/charset=CHARSET/' "
             "-e 's/nplurals=1; plural=0;/nplurals=INTEGER; plural=EXPRESSION;/' -e 's/^\"Language: zh_CN/\"Language: /' > %s",
             test_golden_dir(), pot);
    CHECK(test_run(cmd, NULL) == 0, "could not make a template with msgfilter");
    snprintf(cmd, sizeof cmd, "%s translate-po -m %s %s -o %s/t.po --lang zh_CN --no-fuzzy --max-length 20 2>&1 && "
             "msgfmt --check -o /dev/null %s/t.po 2>&1 && grep -c '^\"Plural-Forms: nplurals=1; plural=0;' %s/t.po",
             bin, ckpt, pot, dir, dir, dir);
    rc = test_run(cmd, &msg);
    CHECK(rc == 0, "template: translate-po or msgfmt --check failed (%d): %s", rc, msg ? msg : "");
    free(msg);
    /* malformed input names the line */
    snprintf(cmd, sizeof cmd, "printf 'msgid \"a\"\\nmsgstr[1] \"\"\\n' > %s/bad.po; %s translate-po -m %s %s/bad.po -o %s/x.po 2>&1",
             dir, bin, ckpt, dir, dir);
    rc = test_run(cmd, &msg);
    CHECK(rc != 0 && msg && strstr(msg, "bad.po:2: msgstr[1]"), "bad .po (%d): %s", rc, msg ? msg : "");
    free(msg);
}

/* qkv protect --kept: arguments by number, malformed spans apart, --show */
static void test_kept_cli(void)
{
    CHECK(setup(), "could not write the test model");
    if (!dir[0])
        return;
    const char *bin = getenv("QKV_BIN") ? getenv("QKV_BIN") : "./qkv";
    char cmd[2048], *msg = NULL;
    snprintf(cmd, sizeof cmd,
             "printf 'Copy %%%%s to %%%%s\\nOpen <b>%%%%d</b>\\nStack <size> of %%%%PRODUCTNAME\\nno spans\\n' > %s/k.en && "
             "printf '复制 %%%%2$s 到 %%%%1$s\\n打开 %%%%d\\n<size> 的 %%%%PRODUCTNAME\\nx\\n' > %s/k.zh && "
             "%s protect --kept --src %s/k.en --hyp %s/k.zh --show 2>&1",
             dir, dir, bin, dir, dir);
    int rc = test_run(cmd, &msg);
    CHECK(rc == 0 && msg && strstr(msg, "placeholders kept: 2 of 3 lines with protected spans (66.7%)") &&
              strstr(msg, "malformed left as text: 1 in 1 lines, the same in 1 of them (100.0%)") &&
              strstr(msg, "line 2: protected spans differ"),
          "protect --kept (%d): %s", rc, msg ? msg : "");
    free(msg);
}

static void cleanup(void)
{
    if (dir[0])
        test_rm_dir(dir);
}

static const test_case cases[] = {TEST(test_every_span_once), TEST(test_unprotected_model_refused),
                                  TEST(test_translate_po_cli), TEST(test_kept_cli)};

int main(int argc, char **argv)
{
    int rc = test_main(argc, argv, cases, TEST_COUNT(cases));
    cleanup();
    return rc;
}
