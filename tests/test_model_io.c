/* train/model_io: model checkpoints saved, loaded and averaged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/model.h"
#include "train/model_io.h"
#include "test.h"

static qkv_model *tiny_model(uint64_t seed)
{
    qkv_model_config c = qkv_model_default_config();
    c.src_vocab_size = 30;
    c.tgt_vocab_size = 40;
    c.d_model = 16;
    c.encoder_heads = c.decoder_heads = 2;
    c.encoder_d_ff = c.decoder_d_ff = 32;
    c.encoder_layers = 1;
    c.decoder_layers = 2;
    c.max_positions = 32;
    qkv_model *m = NULL;
    CHECK(qkv_model_new(&c, seed, &m) == QKV_OK, "model: %s", qkv_last_error());
    return m;
}

static void test_save_load(void)
{
    qkv_model *m = tiny_model(3);
    if (!m)
        return;
    char path[256];
    snprintf(path, sizeof path, "/tmp/qkv_test_mio_%ld.qkv", (long)getpid());
    const char blob[] = "not really a spm model";
    qkv_vocab_blobs vb = {blob, sizeof blob, NULL, 0};
    CHECK(qkv_checkpoint_save_model(path, m, &vb) == QKV_OK, "save: %s", qkv_last_error());
    qkv_model *l = NULL;
    qkv_vocab_blobs lb;
    void *h = NULL;
    CHECK(qkv_checkpoint_load_model(path, &l, &lb, &h) == QKV_OK, "load: %s", qkv_last_error());
    if (l) {
        size_t n = qkv_model_num_params(m);
        CHECK(qkv_model_num_params(l) == n, "parameter counts differ");
        CHECK(memcmp(qkv_model_params(l), qkv_model_params(m), n * sizeof(float)) == 0, "parameters differ");
        CHECK(qkv_model_get_config(l)->decoder_layers == 2 && qkv_model_get_config(l)->tgt_vocab_size == 40,
              "config not restored");
        CHECK(lb.src_len == sizeof blob && memcmp(lb.src, blob, sizeof blob) == 0 && lb.tgt == NULL,
              "vocabulary blobs not restored");
    }
    qkv_model_free(l);
    qkv_checkpoint_release(h);
    remove(path);
    qkv_model_free(m);
}

static void test_average(void)
{
    qkv_model *a = tiny_model(1), *b = tiny_model(2), *c = tiny_model(99);
    if (!a || !b || !c)
        return;
    char pa[256], pb[256], pc[256], po[256];
    long pid = (long)getpid();
    snprintf(pa, sizeof pa, "/tmp/qkv_test_avg_%ld_a.qkv", pid);
    snprintf(pb, sizeof pb, "/tmp/qkv_test_avg_%ld_b.qkv", pid);
    snprintf(pc, sizeof pc, "/tmp/qkv_test_avg_%ld_c.qkv", pid);
    snprintf(po, sizeof po, "/tmp/qkv_test_avg_%ld_o.qkv", pid);
    qkv_vocab_blobs vb = {NULL, 0, NULL, 0};
    CHECK(qkv_checkpoint_save_model(pa, a, &vb) == QKV_OK, "save a");
    CHECK(qkv_checkpoint_save_model(pb, b, &vb) == QKV_OK, "save b");
    CHECK(qkv_checkpoint_save_model(pc, c, &vb) == QKV_OK, "save c");
    const char *paths[3] = {pa, pb, pc};
    CHECK(qkv_checkpoint_average(paths, 3, po) == QKV_OK, "average: %s", qkv_last_error());
    qkv_model *o = NULL;
    qkv_vocab_blobs ob;
    void *h = NULL;
    CHECK(qkv_checkpoint_load_model(po, &o, &ob, &h) == QKV_OK, "load average: %s", qkv_last_error());
    if (o) {
        size_t n = qkv_model_num_params(a);
        const float *x = qkv_model_params(a), *y = qkv_model_params(b), *z = qkv_model_params(c);
        float *want = malloc(n * sizeof *want);
        for (size_t i = 0; i < n; i++)
            want[i] = (float)(((double)x[i] + y[i] + z[i]) / 3.0);
        CHECK_CLOSE_F32(qkv_model_params(o), want, n, 1e-6, "averaged parameters");
        free(want);
    }
    qkv_model_free(o);
    qkv_checkpoint_release(h);
    /* A checkpoint of another shape is refused, naming it. */
    qkv_model_config cc = *qkv_model_get_config(a);
    cc.d_model = 32;
    qkv_model *d = NULL;
    CHECK(qkv_model_new(&cc, 1, &d) == QKV_OK, "model d");
    CHECK(qkv_checkpoint_save_model(pc, d, &vb) == QKV_OK, "save d");
    CHECK(qkv_checkpoint_average(paths, 3, po) == QKV_ERR_ARG && strstr(qkv_last_error(), pc),
          "different shapes: %s", qkv_last_error());
    qkv_model_free(d);
    remove(pa);
    remove(pb);
    remove(pc);
    remove(po);
    qkv_model_free(a);
    qkv_model_free(b);
    qkv_model_free(c);
}

static void test_load_errors(void)
{
    qkv_model *m = NULL;
    qkv_vocab_blobs vb;
    void *h = NULL;
    CHECK(qkv_checkpoint_load_model("/nonexistent.qkv", &m, &vb, &h) == QKV_ERR_IO, "missing file");
    char path[256];
    snprintf(path, sizeof path, "/tmp/qkv_test_mio_bad_%ld.qkv", (long)getpid());
    ckpt_section sec[2] = {{"config", "{\"src_vocab_size\": 10, \"tgt_vocab_size\": 10, \"d_model\": 8, "
                                      "\"heads\": 2, \"d_ff\": 8, \"encoder_layers\": 1, \"decoder_layers\": 1}",
                            0},
                           {"params", "abcd", 4}};
    sec[0].nbytes = strlen(sec[0].data);
    CHECK(ckpt_write(path, sec, 2) == QKV_OK, "write");
    CHECK(qkv_checkpoint_load_model(path, &m, &vb, &h) == QKV_ERR_FORMAT && strstr(qkv_last_error(), "params"),
          "short params accepted: %s", qkv_last_error());
    CHECK(m == NULL && h == NULL, "outputs set on failure");
    remove(path);
}

static const test_case cases[] = {
    TEST(test_save_load),
    TEST(test_average),
    TEST(test_load_errors),
};

int main(int argc, char **argv) { return test_main(argc, argv, cases, TEST_COUNT(cases)); }
