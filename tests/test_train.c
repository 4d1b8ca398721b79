/* train/trainer: the loop learns, resumes bit-identically, stops cleanly. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/io.h"
#include "model/model.h"
#include "train/checkpoint.h"
#include "train/trainer.h"
#include "test.h"

/* Ids 4..: one per lowercase letter (0 pad, 1 bos, 2 eos, 3 unk). */
static int letters(void *ctx, const char *text, size_t len, int *ids, int max_ids)
{
    (void)ctx;
    int n = 0;
    for (size_t i = 0; i < len; i++) {
        int id = text[i] >= 'a' && text[i] <= 'z' ? 4 + (text[i] - 'a') : 3;
        if (n < max_ids)
            ids[n] = id;
        n++;
    }
    return n;
}

/* The task: reverse a short word (needs attention over the source). */
static void make_corpus(qkv_parallel *c, int n, uint64_t seed)
{
    size_t cap = (size_t)n * 12;
    char *src = calloc(cap, 1), *tgt = calloc(cap, 1);
    size_t a = 0, b = 0;
    uint64_t x = seed;
    for (int i = 0; i < n; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        int len = 2 + (int)((x >> 33) % 5);
        char w[8];
        for (int k = 0; k < len; k++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            w[k] = (char)('a' + (x >> 33) % 6);
        }
        for (int k = 0; k < len; k++) {
            src[a++] = w[k];
            tgt[b++] = w[len - 1 - k];
        }
        src[a++] = '\n';
        tgt[b++] = '\n';
    }
    qkv_parallel_options o = qkv_parallel_default_options();
    o.encode_src = o.encode_tgt = letters;
    o.src_eos = 2;
    o.tgt_bos = 1;
    o.tgt_eos = 2;
    o.src_vocab_size = o.tgt_vocab_size = 30;
    CHECK(qkv_parallel_read_text(c, src, a, "src", tgt, b, "tgt", &o, NULL) == QKV_OK, "corpus: %s",
          qkv_last_error());
    free(src);
    free(tgt);
}

static qkv_model *tiny_model(void)
{
    qkv_model_config cfg = qkv_model_default_config();
    cfg.src_vocab_size = cfg.tgt_vocab_size = 30;
    cfg.d_model = 32;
    cfg.encoder_heads = cfg.decoder_heads = 4;
    cfg.encoder_d_ff = cfg.decoder_d_ff = 64;
    cfg.encoder_layers = cfg.decoder_layers = 1;
    cfg.norm = QKV_NORM_PRE;
    cfg.final_norm = 1;
    cfg.max_positions = 32;
    cfg.dropout = 0.1f;
    qkv_model *m = NULL;
    CHECK(qkv_model_new(&cfg, 7, &m) == QKV_OK, "model: %s", qkv_last_error());
    return m;
}

static qkv_train_options options(int64_t steps)
{
    qkv_train_options o = qkv_train_default_options();
    o.schedule.kind = QKV_LR_INVERSE_SQRT;
    o.schedule.peak_lr = 3e-3;
    o.schedule.warmup_steps = 20;
    o.max_steps = steps;
    o.keep_checkpoints = 0;
    o.accum = 2;
    return o;
}

static qkv_batcher_options batching(void)
{
    qkv_batcher_options b = qkv_batcher_default_options();
    b.batch_tokens = 200;
    b.pad_id = 0;
    return b;
}

static void tmpdir(char *buf, size_t n, const char *tag)
{
    snprintf(buf, n, "/tmp/qkv_test_train_%ld_%s", (long)getpid(), tag);
}

static void rmdir_all(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

typedef struct {
    double first, last;
    int64_t n;
} loss_track;

static void track(void *ctx, const qkv_train_report *r)
{
    loss_track *t = ctx;
    if (r->is_validation)
        return;
    if (t->n++ == 0)
        t->first = r->loss;
    t->last = r->loss;
}

static void test_loss_decreases_and_files(void)
{
    qkv_parallel train, dev;
    memset(&train, 0, sizeof train);
    memset(&dev, 0, sizeof dev);
    make_corpus(&train, 400, 1);
    make_corpus(&dev, 40, 2);
    qkv_model *m = tiny_model();
    char dir[256];
    tmpdir(dir, sizeof dir, "learn");
    qkv_train_options o = options(150);
    o.valid_every = 50;
    qkv_batcher_options bo = batching();
    qkv_vocab_blobs vb = {NULL, 0, NULL, 0};
    qkv_trainer *t = NULL;
    CHECK(m && qkv_trainer_new(&t, m, &train, &dev, &bo, &o, &vb, dir) == QKV_OK, "trainer: %s", qkv_last_error());
    loss_track lt = {0, 0, 0};
    qkv_train_hooks h = {&lt, track, NULL, NULL};
    CHECK(t && qkv_trainer_run(t, &h) == QKV_OK, "run: %s", qkv_last_error());
    CHECK(lt.n == 150, "%lld steps reported", (long long)lt.n);
    CHECK(lt.last < 0.6 * lt.first, "loss went from %g to %g only", lt.first, lt.last);
    char path[300];
    const char *files[] = {"model.qkv", "checkpoint.qkv", "log.jsonl"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        CHECK(access(path, R_OK) == 0, "%s missing", path);
    }
    /* One JSON line per step plus one per validation, with the keys users rely on. */
    snprintf(path, sizeof path, "%s/log.jsonl", dir);
    char *log;
    size_t len;
    CHECK(qkv_read_file(path, &log, &len) == QKV_OK, "log");
    int lines = 0, valid = 0;
    for (char *p = log; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        lines++;
        valid += strncmp(p, "{\"step\": ", 9) == 0 && strstr(p, "\"valid\": true") != NULL &&
                 strstr(p, "\"valid\": true") < strchr(p, '\n');
    }
    CHECK(lines == 153 && valid == 3, "log has %d lines, %d validations", lines, valid);
    CHECK(strstr(log, "\"tgt_tokens_per_s\"") && strstr(log, "\"lr\"") && strstr(log, "\"elapsed_s\""),
          "log keys missing");
    free(log);
    qkv_trainer_free(t);
    qkv_model_free(m);
    qkv_parallel_free(&train);
    qkv_parallel_free(&dev);
    rmdir_all(dir);
}

static void run_steps(const char *dir, int64_t steps, int resume, float *params_out)
{
    qkv_parallel train;
    memset(&train, 0, sizeof train);
    make_corpus(&train, 300, 5);
    qkv_model *m = tiny_model();
    qkv_train_options o = options(steps);
    qkv_batcher_options bo = batching();
    qkv_vocab_blobs vb = {NULL, 0, NULL, 0};
    qkv_trainer *t = NULL;
    CHECK(m && qkv_trainer_new(&t, m, &train, NULL, &bo, &o, &vb, dir) == QKV_OK, "trainer: %s",
          qkv_last_error());
    if (t && resume) {
        char path[300];
        snprintf(path, sizeof path, "%s/checkpoint.qkv", dir);
        CHECK(qkv_trainer_resume(t, path) == QKV_OK, "resume: %s", qkv_last_error());
    }
    CHECK(t && qkv_trainer_run(t, NULL) == QKV_OK, "run: %s", qkv_last_error());
    if (m && params_out)
        memcpy(params_out, qkv_model_params(m), qkv_model_num_params(m) * sizeof(float));
    qkv_trainer_free(t);
    qkv_model_free(m);
    qkv_parallel_free(&train);
}

static void test_resume_bit_identical(void)
{
    qkv_model *probe = tiny_model();
    if (!probe)
        return;
    size_t n = qkv_model_num_params(probe);
    qkv_model_free(probe);
    float *whole = malloc(n * sizeof *whole), *split = malloc(n * sizeof *split);
    char a[256], b[256];
    tmpdir(a, sizeof a, "whole");
    tmpdir(b, sizeof b, "split");
    run_steps(a, 40, 0, whole);
    run_steps(b, 17, 0, NULL);
    run_steps(b, 40, 1, split);
    size_t diff = 0;
    for (size_t i = 0; i < n; i++)
        diff += memcmp(&whole[i], &split[i], sizeof(float)) != 0;
    CHECK(diff == 0, "%zu of %zu parameters differ after stop at 17 and resume to 40", diff, n);
    free(whole);
    free(split);
    rmdir_all(a);
    rmdir_all(b);
}

static void test_stop_flag_saves(void)
{
    qkv_parallel train;
    memset(&train, 0, sizeof train);
    make_corpus(&train, 100, 9);
    qkv_model *m = tiny_model();
    char dir[256];
    tmpdir(dir, sizeof dir, "stop");
    qkv_train_options o = options(0); /* no step limit: only the flag stops it */
    qkv_batcher_options bo = batching();
    qkv_vocab_blobs vb = {NULL, 0, NULL, 0};
    qkv_trainer *t = NULL;
    volatile sig_atomic_t stop = 1;
    CHECK(m && qkv_trainer_new(&t, m, &train, NULL, &bo, &o, &vb, dir) == QKV_OK, "trainer");
    qkv_train_hooks h = {NULL, NULL, NULL, &stop};
    CHECK(t && qkv_trainer_run(t, &h) == QKV_OK, "run: %s", qkv_last_error());
    CHECK(t && qkv_trainer_step(t) == 0, "ran %lld steps despite the stop flag", (long long)qkv_trainer_step(t));
    char path[300];
    snprintf(path, sizeof path, "%s/checkpoint.qkv", dir);
    ckpt_file f;
    CHECK(ckpt_read(path, &f) == QKV_OK, "no checkpoint after stop: %s", qkv_last_error());
    CHECK(ckpt_find(&f, "adam_m") && ckpt_find(&f, "train"), "checkpoint lacks the training state");
    ckpt_free(&f);
    qkv_trainer_free(t);
    qkv_model_free(m);
    qkv_parallel_free(&train);
    rmdir_all(dir);
}

static void test_bad_options(void)
{
    qkv_train_options o = qkv_train_default_options();
    o.accum = 0;
    CHECK(qkv_train_validate_options(&o) == QKV_ERR_CONFIG && strstr(qkv_last_error(), "accum"), "accum: %s",
          qkv_last_error());
    o = qkv_train_default_options();
    o.beta2 = 1.0f;
    CHECK(qkv_train_validate_options(&o) == QKV_ERR_CONFIG && strstr(qkv_last_error(), "beta2"), "beta2: %s",
          qkv_last_error());
    o = qkv_train_default_options();
    o.schedule.peak_lr = -1;
    CHECK(qkv_train_validate_options(&o) == QKV_ERR_CONFIG, "negative lr accepted");
}

static const test_case cases[] = {
    TEST(test_loss_decreases_and_files),
    TEST(test_resume_bit_identical),
    TEST(test_stop_flag_saves),
    TEST(test_bad_options),
};

int main(int argc, char **argv) { return test_main(argc, argv, cases, TEST_COUNT(cases)); }
