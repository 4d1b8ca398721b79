/* train/model_io: model checkpoints saved, loaded and averaged. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/io.h"
#include "kernels/qlinear.h"
#include "model/model.h"
#include "train/checkpoint.h"
#include "train/model_io.h"
#include "test.h"

/* 1 + 2 layers, 2 heads, d_ff 2 * d_model */
static qkv_model *sized_model(uint64_t seed, int src_vocab, int tgt_vocab, int d_model)
{
    qkv_model_config c = qkv_model_default_config();
    c.src_vocab_size = src_vocab;
    c.tgt_vocab_size = tgt_vocab;
    c.d_model = d_model;
    c.encoder_heads = c.decoder_heads = 2;
    c.encoder_d_ff = c.decoder_d_ff = 2 * d_model;
    c.encoder_layers = 1;
    c.decoder_layers = 2;
    c.max_positions = 32;
    qkv_model *m = NULL;
    CHECK(qkv_model_new(&c, seed, &m) == QKV_OK, "model: %s", qkv_last_error());
    return m;
}

static qkv_model *tiny_model(uint64_t seed) { return sized_model(seed, 30, 40, 16); }

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

/* Read-only loading (translators): parameters used in place from the file's
 * mapping, equal to a copy's, and still equal after packing released their
 * pages; a file without the page-aligned "pad" layout (an older qkv's) is
 * copied instead. */
static void test_readonly_mapped(void)
{
    /* weights of many pages each, so that whole pages of them are moved */
    qkv_model *m = sized_model(5, 300, 200, 128);
    if (!m)
        return;
    char path[256], old[300];
    snprintf(path, sizeof path, "/tmp/qkv_test_mio_ro_%ld.qkv", (long)getpid());
    snprintf(old, sizeof old, "%s.old", path);
    const char blob[] = "vocab bytes";
    qkv_vocab_blobs vb = {blob, sizeof blob, NULL, 0};
    CHECK(qkv_checkpoint_save_model(path, m, &vb) == QKV_OK, "save: %s", qkv_last_error());
    size_t np = qkv_model_num_params(m);
    const float *want = qkv_model_params(m);
    qkv_model *r = NULL;
    qkv_vocab_blobs lb;
    void *h = NULL;
    CHECK(qkv_checkpoint_load_model_readonly(path, &r, &lb, &h) == QKV_OK, "load: %s", qkv_last_error());
    if (r) {
        CHECK(r->map != NULL, "a page-aligned float32 checkpoint was copied, not mapped");
        /* the product weights' whole pages are pages of the file */
        FILE *mp = fopen("/proc/self/maps", "r");
        char line[512];
        int file_vmas = 0;
        uintptr_t lo = (uintptr_t)r->map, hi = lo + r->map_len;
        while (mp && fgets(line, sizeof line, mp)) {
            unsigned long a, b;
            if (sscanf(line, "%lx-%lx", &a, &b) == 2 && a >= lo && b <= hi && strstr(line, path))
                file_vmas++;
        }
        if (mp)
            fclose(mp);
        CHECK(file_vmas >= model_decoder_product_count(r) - 1, "%d of the parameters' mappings are the file's",
              file_vmas);
        CHECK(memcmp(qkv_model_params(r), want, np * sizeof(float)) == 0, "mapped parameters differ");
        CHECK(lb.src && lb.src_len == sizeof blob && !memcmp(lb.src, blob, sizeof blob), "vocab blob");
        /* allocations made after loading (large ones are mappings of their
         * own) survive the file's release: the holes the moved pages left in
         * its mapping are not handed out meanwhile */
        enum { NBIG = 48, BIG = 160 << 10 };
        unsigned char *big[NBIG];
        for (int i = 0; i < NBIG; i++)
            if ((big[i] = malloc(BIG)))
                memset(big[i], i + 1, BIG);
        qkv_checkpoint_release(h); /* the model's parameters do not need the file's mapping */
        int intact = 1;
        for (int i = 0; i < NBIG; i++) {
            for (int j = 0; big[i] && j < BIG; j += 4096)
                intact &= big[i][j] == (unsigned char)(i + 1);
            free(big[i]);
        }
        CHECK(intact, "an allocation made after loading changed when the file was released");
        CHECK(memcmp(qkv_model_params(r), want, np * sizeof(float)) == 0, "parameters differ without the file");
        model_decoder_weights *w = NULL;
        CHECK(model_decoder_weights_new_typed(r, QLIN_INT8, &w) == QKV_OK, "%s", qkv_last_error());
        model_decoder_weights_free(w);
        CHECK(memcmp(qkv_model_params(r), want, np * sizeof(float)) == 0, "parameters differ after release");
        qkv_model_free(r);
    }
    /* the same file without its pad section, as qkv wrote them before */
    char *d;
    size_t len;
    CHECK(qkv_read_file(path, &d, &len) == QKV_OK, "%s", qkv_last_error());
    ckpt_file f;
    CHECK(ckpt_parse(d, len, path, &f) == QKV_OK, "%s", qkv_last_error());
    int pad = -1;
    for (int i = 0; i < f.n_sections; i++)
        if (!strcmp(f.sections[i].tag, "pad"))
            pad = i;
    CHECK(pad >= 0, "no pad section");
    if (pad >= 0) {
        ckpt_section keep[8];
        int n = 0;
        for (int i = 0; i < f.n_sections && n < 8; i++)
            if (i != pad)
                keep[n++] = f.sections[i];
        /* written by hand: ckpt_write would pad again */
        size_t pos = 16;
        char *o = malloc(len);
        memcpy(o, d, 16);
        o[12] = (char)n, o[13] = o[14] = o[15] = 0;
        for (int i = 0; i < n; i++) {
            memset(o + pos, 0, CKPT_TAG_LEN);
            memcpy(o + pos, keep[i].tag, strlen(keep[i].tag));
            for (int b = 0; b < 8; b++)
                o[pos + CKPT_TAG_LEN + b] = (char)(keep[i].nbytes >> (8 * b));
            pos += CKPT_TAG_LEN + 8;
            memcpy(o + pos, keep[i].data, keep[i].nbytes);
            pos += keep[i].nbytes;
        }
        uint64_t hsum = ckpt_fnv1a64(o, pos, CKPT_FNV_OFFSET);
        for (int b = 0; b < 8; b++)
            o[pos + b] = (char)(hsum >> (8 * b));
        CHECK(qkv_write_file(old, o, pos + 8) == QKV_OK, "%s", qkv_last_error());
        free(o);
        r = NULL;
        CHECK(qkv_checkpoint_load_model_readonly(old, &r, &lb, &h) == QKV_OK, "old layout: %s", qkv_last_error());
        if (r) {
            CHECK(r->map == NULL, "parameters off a page boundary were mapped");
            CHECK(memcmp(qkv_model_params(r), want, np * sizeof(float)) == 0, "copied parameters differ");
            qkv_model_free(r);
            qkv_checkpoint_release(h);
        }
    }
    ckpt_free(&f);
    free(d);
    remove(path), remove(old);
    qkv_model_free(m);
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
    TEST(test_readonly_mapped),
};

int main(int argc, char **argv) { return test_main(argc, argv, cases, TEST_COUNT(cases)); }
