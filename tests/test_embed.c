/* embed/: sentence embeddings against sentence-transformers (a small random
 * BertModel saved by scripts/golden/bert.py, every pooling mode, with and
 * without Normalize, lines past max_seq_length), the Marian encoder's masked
 * mean against transformers, empty lines, and bad model directories. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/io.h"
#include "formats/safetensors.h"
#include "qkv.h"
#include "test.h"

#define MAX_LINES 64

static char path_buf[512];
static const char *golden(const char *name)
{
    snprintf(path_buf, sizeof path_buf, "%s/%s", test_golden_dir(), name);
    return path_buf;
}

static int read_lines(const char *path, char **blob, char *lines[MAX_LINES])
{
    size_t len;
    if (qkv_read_file(path, blob, &len) != QKV_OK)
        return 0;
    int n = 0;
    char *p = *blob;
    for (char *nl; n < MAX_LINES && (nl = strchr(p, '\n')); p = nl + 1) {
        *nl = '\0';
        lines[n++] = p;
    }
    return n;
}

/* want: [n, dim] from the fixture tensor name */
static void compare(const char *fixture, const char *tensor, const float *got, int n, int dim, double tol)
{
    st_file *f;
    CHECK(st_open(&f, golden(fixture)) == QKV_OK, "%s", qkv_last_error());
    if (!f)
        return;
    float *want = malloc(sizeof(float) * n * dim);
    CHECK(st_read_f32(f, tensor, want, (size_t)n * dim) == QKV_OK, "%s: %s", tensor, qkv_last_error());
    for (int i = 0; i < n; i++) {
        char what[96];
        snprintf(what, sizeof what, "%s '%s' sentence %d", fixture, tensor, i + 1);
        CHECK_CLOSE_F32(got + (size_t)i * dim, want + (size_t)i * dim, (size_t)dim, tol, what);
    }
    free(want);
    st_close(f);
}

static void test_bert_matches_sentence_transformers(void)
{
    qkv_embedder *e;
    CHECK(qkv_embedder_load(golden("bert/tiny"), &e) == QKV_OK, "%s", qkv_last_error());
    if (!e)
        return;
    CHECK(qkv_embedder_dim(e) == 32 && !strcmp(qkv_embedder_kind(e), "bert"), "dim %d kind %s",
          qkv_embedder_dim(e), qkv_embedder_kind(e));
    char *blob, *lines[MAX_LINES];
    int n = read_lines(golden("bert/sentences.txt"), &blob, lines);
    CHECK(n == 14, "%d sentences", n);
    float *out = malloc(sizeof(float) * n * 32);
    qkv_embed_options o = qkv_embed_default_options();
    qkv_embed_stats st;
    o.batch_size = 3;
    CHECK(qkv_embed(e, (const char *const *)lines, n, &o, out, &st) == QKV_OK, "%s", qkv_last_error());
    compare("bert/tiny.embeddings.safetensors", "default", out, n, 32, 2e-5);
    CHECK(st.truncated >= 1 && st.empty == 0, "truncated %d empty %d", st.truncated, st.empty);
    const char *modes[] = {"mean", "cls", "max"};
    for (int k = 0; k < 3; k++) {
        o.pooling = (qkv_pooling)(QKV_POOL_MEAN + k);
        o.normalize = 0;
        o.batch_size = 1 + 4 * k;
        CHECK(qkv_embed(e, (const char *const *)lines, n, &o, out, NULL) == QKV_OK, "%s", qkv_last_error());
        compare("bert/tiny.embeddings.safetensors", modes[k], out, n, 32, 2e-5);
    }
    free(out);
    free(blob);
    qkv_embedder_free(e);
}

static void test_marian_encoder_mean(void)
{
    qkv_embedder *e;
    CHECK(qkv_embedder_load(golden("marian/opus_tiny"), &e) == QKV_OK, "%s", qkv_last_error());
    if (!e)
        return;
    CHECK(!strcmp(qkv_embedder_kind(e), "translation-encoder"), "kind %s", qkv_embedder_kind(e));
    char *blob, *lines[MAX_LINES];
    int n = read_lines(golden("bert/sentences.txt"), &blob, lines), d = qkv_embedder_dim(e);
    float *out = malloc(sizeof(float) * n * d);
    qkv_embed_options o = qkv_embed_default_options();
    o.batch_size = 4;
    CHECK(qkv_embed(e, (const char *const *)lines, n, &o, out, NULL) == QKV_OK, "%s", qkv_last_error());
    compare("bert/marian.embeddings.safetensors", "mean", out, n, d, 2e-5);
    free(out);
    free(blob);
    qkv_embedder_free(e);
}

/* Batches on several threads (each thread whole batches): the vectors are
 * the one-thread ones to the bit, for a BERT and a translation encoder. */
static void test_threads_equal_one_thread(void)
{
    const char *models[] = {"bert/tiny", "marian/opus_tiny"};
    for (int m = 0; m < 2; m++) {
        qkv_embedder *e;
        CHECK(qkv_embedder_load(golden(models[m]), &e) == QKV_OK, "%s", qkv_last_error());
        if (!e)
            continue;
        char *blob, *lines[MAX_LINES];
        int n = read_lines(golden("bert/sentences.txt"), &blob, lines), d = qkv_embedder_dim(e);
        float *a = malloc(sizeof(float) * n * d), *b = malloc(sizeof(float) * n * d);
        for (int th = 2; th <= 3; th++) {
            qkv_embed_options o = qkv_embed_default_options();
            o.batch_size = 2;
            o.threads = 1;
            CHECK(qkv_embed(e, (const char *const *)lines, n, &o, a, NULL) == QKV_OK, "%s", qkv_last_error());
            o.threads = th;
            CHECK(qkv_embed(e, (const char *const *)lines, n, &o, b, NULL) == QKV_OK, "%s", qkv_last_error());
            int bad = -1;
            for (int i = 0; i < n * d && bad < 0; i++)
                if (memcmp(&a[i], &b[i], sizeof(float)))
                    bad = i;
            CHECK(bad < 0, "%s, %d threads: element %d is %.9g, one thread %.9g", models[m], th, bad,
                  bad >= 0 ? b[bad] : 0, bad >= 0 ? a[bad] : 0);
        }
        free(a);
        free(b);
        free(blob);
        qkv_embedder_free(e);
    }
}

static void test_empty_lines_give_zero_vectors(void)
{
    qkv_embedder *e;
    CHECK(qkv_embedder_load(golden("bert/tiny"), &e) == QKV_OK, "%s", qkv_last_error());
    if (!e)
        return;
    const char *lines[] = {"Hello, world!", "", "  \t", "Open File", "bad \xff utf-8", ""};
    float out[6 * 32], one[2 * 32];
    qkv_embed_stats st;
    CHECK(qkv_embed(e, lines, 6, NULL, out, &st) == QKV_OK, "%s", qkv_last_error());
    CHECK(st.empty == 3, "empty %d, want 3", st.empty);
    CHECK(st.invalid_bytes == 1, "invalid bytes %ld, want 1", st.invalid_bytes);
    for (int i = 0; i < 6; i++) {
        double s = 0;
        for (int c = 0; c < 32; c++)
            s += out[i * 32 + c] * out[i * 32 + c];
        int empty = i == 1 || i == 2 || i == 5;
        CHECK(empty ? s == 0 : fabs(s - 1) < 1e-5, "line %d: squared norm %g", i + 1, s);
    }
    /* batching and order do not change a sentence's vector */
    const char *two[] = {"Open File", "Hello, world!"};
    CHECK(qkv_embed(e, two, 2, NULL, one, NULL) == QKV_OK, "%s", qkv_last_error());
    CHECK_CLOSE_F32(one, out + 3 * 32, 32, 1e-6, "Open File alone vs in a batch");
    CHECK_CLOSE_F32(one + 32, out, 32, 1e-6, "Hello alone vs in a batch");
    qkv_embedder_free(e);
}

/* ---- bad directories ------------------------------------------------------ */

static char tmpdir[256];

static void copy_tiny(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/qkv_test_embed_%ld", (long)getpid());
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "rm -rf %s && cp -r %s %s", tmpdir, golden("bert/tiny"), tmpdir);
    CHECK(system(cmd) == 0, "copy the fixture");
}

static void edit_file(const char *name, const char *from, const char *to)
{
    char *p = qkv_path_join(tmpdir, name), *text;
    size_t len;
    CHECK(qkv_read_file(p, &text, &len) == QKV_OK, "%s", qkv_last_error());
    char *at = strstr(text, from);
    CHECK(at != NULL, "%s lacks '%s'", name, from);
    if (at) {
        size_t fl = strlen(from), tl = strlen(to);
        char *o = malloc(len - fl + tl + 1);
        memcpy(o, text, (size_t)(at - text));
        memcpy(o + (at - text), to, tl);
        memcpy(o + (at - text) + tl, at + fl, len - (size_t)(at - text) - fl);
        CHECK(qkv_write_file(p, o, len - fl + tl) == QKV_OK, "%s", qkv_last_error());
        free(o);
    }
    free(text);
    free(p);
}

static void expect_load_error(qkv_status want, const char *needle, const char *what)
{
    qkv_embedder *e = NULL;
    qkv_status s = qkv_embedder_load(tmpdir, &e);
    CHECK(s == want, "%s: status %s, want %s (%s)", what, qkv_status_name(s), qkv_status_name(want),
          qkv_last_error());
    CHECK(e == NULL, "%s: an embedder was returned", what);
    CHECK(strstr(qkv_last_error(), needle) != NULL, "%s: message '%s' lacks '%s'", what, qkv_last_error(), needle);
    qkv_embedder_free(e);
}

static void test_bad_directories(void)
{
    copy_tiny();
    edit_file("config.json", "\"gelu\"", "\"gelu_new\"");
    expect_load_error(QKV_ERR_UNSUPPORTED, "hidden_act", "unknown activation");
    copy_tiny();
    edit_file("config.json", "\"BertModel\"", "\"RobertaModel\"");
    expect_load_error(QKV_ERR_UNSUPPORTED, "architectures", "another architecture");
    copy_tiny();
    edit_file("config.json", "\"absolute\"", "\"relative_key\"");
    expect_load_error(QKV_ERR_UNSUPPORTED, "position_embedding_type", "relative positions");
    copy_tiny();
    edit_file("config.json", "\"hidden_size\": 32", "\"hidden_size\": 30");
    expect_load_error(QKV_ERR_CONFIG, "not a multiple", "hidden not divisible by heads");
    copy_tiny();
    edit_file("config.json", "\"intermediate_size\": 48", "\"intermediate_size\": 64");
    expect_load_error(QKV_ERR_FORMAT, "intermediate.dense.weight", "shape against config");
    copy_tiny();
    edit_file("modules.json", "models.Normalize", "models.Dense");
    expect_load_error(QKV_ERR_UNSUPPORTED, "models.Dense", "unsupported module");
    copy_tiny();
    edit_file("1_Pooling/config.json", "\"pooling_mode_mean_sqrt_len_tokens\": false",
              "\"pooling_mode_mean_sqrt_len_tokens\": true");
    expect_load_error(QKV_ERR_UNSUPPORTED, "mean_sqrt_len", "unsupported pooling");
    copy_tiny();
    char *p = qkv_path_join(tmpdir, "vocab.txt");
    unlink(p);
    free(p);
    expect_load_error(QKV_ERR_IO, "vocab.txt", "missing vocab.txt");
    copy_tiny();
    p = qkv_path_join(tmpdir, "model.safetensors");
    CHECK(truncate(p, 1000) == 0, "truncate");
    free(p);
    expect_load_error(QKV_ERR_FORMAT, "model.safetensors", "truncated safetensors");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    CHECK(system(cmd) == 0, "cleanup");
}

static const test_case cases[] = {
    TEST(test_bert_matches_sentence_transformers),
    TEST(test_marian_encoder_mean),
    TEST(test_threads_equal_one_thread),
    TEST(test_empty_lines_give_zero_vectors),
    TEST(test_bad_directories),
};

int main(int argc, char **argv) { return test_main(argc, argv, cases, TEST_COUNT(cases)); }
