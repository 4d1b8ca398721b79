/* qkv train as a user runs it: a short run, resume, and bad input (each a
 * clear error and a non-zero exit, no checkpoint written). Needs ./qkv. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qkv.h"
#include "test.h"

static char dir[256], vocab[512];


static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void write_text(const char *name, const char *text)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* Source and target: lines of the committed vocabulary-training text. */
static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/qkv_test_train_cli_%ld", (long)getpid());
    mkdir(dir, 0777);
    snprintf(vocab, sizeof vocab, "tests/golden/vocab_train/unigram.model");
    FILE *in = fopen("tests/golden/vocab_train/train.txt", "r");
    char p[600], line[4096];
    snprintf(p, sizeof p, "%s/a.txt", dir);
    FILE *a = fopen(p, "w");
    snprintf(p, sizeof p, "%s/b.txt", dir);
    FILE *b = fopen(p, "w");
    int i = 0;
    while (in && a && b && fgets(line, sizeof line, in) && i < 400)
        fputs(line, i++ % 2 ? b : a);
    if (in)
        fclose(in);
    if (a)
        fclose(a);
    if (b)
        fclose(b);
}

#define CMD(buf, ...) snprintf(buf, sizeof buf, __VA_ARGS__)
#define TRAIN "./qkv train --src %s/a.txt --tgt %s/b.txt --preset tiny --src-vocab %s --tgt-vocab %s "

static void test_short_run_and_resume(void)
{
    char cmd[2048], path[600], *out = NULL;
    CMD(cmd, TRAIN "--out %s/run --max-steps 3 2>&1", dir, dir, vocab, vocab, dir);
    int rc = test_run(cmd, &out);
    CHECK(rc == 0, "train exited %d: %s", rc, out);
    free(out);
    const char *files[] = {"model.qkv", "checkpoint.qkv", "log.jsonl"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/run/%s", dir, files[i]);
        CHECK(exists(path), "%s missing", path);
    }
    /* missing parents of --out are made, as mkdir -p */
    CMD(cmd, TRAIN "--out %s/new/deeper/run --max-steps 1 2>&1", dir, dir, vocab, vocab, dir);
    rc = test_run(cmd, &out);
    snprintf(path, sizeof path, "%s/new/deeper/run/model.qkv", dir);
    CHECK(rc == 0 && exists(path), "--out with missing parents: exit %d: %s", rc, out);
    free(out);
    /* A second run into the same directory must say how to continue. */
    rc = test_run(cmd, &out);
    CHECK(rc != 0 && strstr(out, "--resume"), "rerun without --resume: exit %d: %s", rc, out);
    free(out);
    CMD(cmd, TRAIN "--out %s/run --max-steps 5 --resume 2>&1", dir, dir, vocab, vocab, dir);
    rc = test_run(cmd, &out);
    CHECK(rc == 0 && strstr(out, "resuming") && strstr(out, "at step 5"), "resume: exit %d: %s", rc, out);
    free(out);
    CMD(cmd, "./qkv info %s/run/checkpoint.qkv 2>&1", dir);
    rc = test_run(cmd, &out);
    CHECK(rc == 0 && strstr(out, "\"step\":\t5") && strstr(out, "resumable"), "info: exit %d: %s", rc, out);
    free(out);
    CMD(cmd, "head -3 %s/a.txt | ./qkv translate -m %s/run/model.qkv --max-length 6 --beam-size 2 2>&1", dir, dir);
    rc = test_run(cmd, &out);
    int lines = 0;
    for (char *p = out; p && *p; p++)
        lines += *p == '\n';
    CHECK(rc == 0 && lines == 3, "translate with the trained model: exit %d, %d lines: %s", rc, lines, out);
    free(out);
}

static void expect_error(const char *what, const char *cmd, const char *needle, const char *no_file)
{
    char *out = NULL;
    int rc = test_run(cmd, &out);
    CHECK(rc != 0, "%s: exit 0: %s", what, out);
    CHECK(strstr(out, "qkv: error:") && strstr(out, needle), "%s: message lacks '%s': %s", what, needle, out);
    CHECK(!no_file || !exists(no_file), "%s: %s was written", what, no_file);
    free(out);
}

static void test_bad_input(void)
{
    char cmd[2048], ck[600];
    write_text("short.txt", "one line\ntwo lines\n");
    CMD(cmd, "./qkv train --src %s/a.txt --tgt %s/short.txt --preset tiny --src-vocab %s --tgt-vocab %s "
             "--out %s/bad1 --max-steps 2 2>&1", dir, dir, vocab, vocab, dir);
    CMD(ck, "%s/bad1/checkpoint.qkv", dir);
    expect_error("different line counts", cmd, "short.txt has 2;", ck);
    CMD(cmd, "./qkv train --src %s/missing.txt --tgt %s/b.txt --preset tiny --src-vocab %s --tgt-vocab %s "
             "--out %s/bad2 --max-steps 2 2>&1", dir, dir, vocab, vocab, dir);
    CMD(ck, "%s/bad2/checkpoint.qkv", dir);
    expect_error("missing file", cmd, "missing.txt", ck);
    CMD(cmd, TRAIN "--out /proc/qkv_cannot_be_here --max-steps 2 2>&1", dir, dir, vocab, vocab);
    expect_error("unwritable output directory", cmd, "/proc/qkv_cannot_be_here", NULL);
    CMD(cmd, TRAIN "--out %s/a.txt/run --max-steps 2 2>&1", dir, dir, vocab, vocab, dir);
    expect_error("output directory under a file", cmd, "Not a directory", NULL);
    CMD(cmd, "./qkv train --src %s/a.txt --tgt %s/b.txt --preset huge --out %s/bad3 2>&1", dir, dir, dir);
    expect_error("unknown preset", cmd, "huge", NULL);
    CMD(cmd, TRAIN "--out %s/bad4 --resume 2>&1", dir, dir, vocab, vocab, dir);
    expect_error("resume without a checkpoint", cmd, "does not exist", NULL);
    CMD(cmd, "./qkv train --src %s/a.txt --tgt %s/b.txt --out %s/bad5 --src-vocab %s/a.txt --tgt-vocab %s 2>&1",
        dir, dir, dir, dir, vocab);
    expect_error("a vocabulary that is not a SentencePiece model", cmd, "a.txt", NULL);
    CMD(cmd, TRAIN "--out %s/bad6 --max-steps x 2>&1", dir, dir, vocab, vocab, dir);
    expect_error("non-numeric option", cmd, "--max-steps", NULL);
    const char *marks[][2] = {{"10,5", "must increase"}, {"1,x", "expected numbers"}, {"-1", "expected numbers"},
                              {"1,,2", "expected numbers"}, {"", "expected numbers"}};
    for (int i = 0; i < 5; i++) {
        CMD(cmd, TRAIN "--out %s/bad7 --max-steps 2 --snapshot-minutes '%s' 2>&1", dir, dir, vocab, vocab, dir,
            marks[i][0]);
        CMD(ck, "%s/bad7/checkpoint.qkv", dir);
        expect_error("bad --snapshot-minutes", cmd, marks[i][1], ck);
    }
}

/* --snapshot-minutes 0 writes the initial model and says so; a mark the run
 * does not reach is reported, not written. */
static void test_snapshot_minutes(void)
{
    char cmd[2048], path[600], *out = NULL;
    CMD(cmd, TRAIN "--out %s/snap --max-steps 2 --snapshot-minutes 0,600 2>&1", dir, dir, vocab, vocab, dir);
    int rc = test_run(cmd, &out);
    CHECK(rc == 0, "train exited %d: %s", rc, out);
    CHECK(strstr(out, "snapshot minute-0.qkv: step 0"), "no snapshot report: %s", out);
    CHECK(strstr(out, "training ended before 600 minutes"), "unreached mark not reported: %s", out);
    free(out);
    snprintf(path, sizeof path, "%s/snap/minute-0.qkv", dir);
    CHECK(exists(path), "%s missing", path);
    snprintf(path, sizeof path, "%s/snap/minute-600.qkv", dir);
    CHECK(!exists(path), "%s written", path);
    rc = test_run("./qkv train --help", &out);
    CHECK(rc == 0 && strstr(out, "--snapshot-minutes"), "--help lacks --snapshot-minutes: %s", out);
    free(out);
}

/* Empty lines and invalid UTF-8 are counted and reported, not fatal. */
static void test_counted_handling(void)
{
    char cmd[2048], *out = NULL;
    write_text("e.src", "hello world\n\nbad \xff\xfe bytes\nfine\n");
    write_text("e.tgt", "bonjour\nvide\nmauvais\n\n");
    CMD(cmd, "./qkv train --src %s/e.src --tgt %s/e.tgt --preset tiny --src-vocab %s --tgt-vocab %s "
             "--out %s/counted --max-steps 1 2>&1", dir, dir, vocab, vocab, dir);
    int rc = test_run(cmd, &out);
    CHECK(rc == 0, "exit %d: %s", rc, out);
    CHECK(strstr(out, "2 pairs kept of 4 lines (2 empty"), "empty lines not counted: %s", out);
    CHECK(strstr(out, "1 lines hold invalid UTF-8"), "invalid UTF-8 not reported: %s", out);
    free(out);
}

/* Separate vocabularies without <pad>, of different sizes, either way
 * round: the pad id goes past both (no real piece shares the frozen pad
 * row), and the target ids that have no piece are never generated. */
static void test_separate_vocabs_without_pad(void)
{
    const char *sizes[2][2] = {{"500", "400"}, {"400", "500"}};
    for (int k = 0; k < 2; k++) {
        char cmd[4096], path[600], *out = NULL;
        CMD(cmd,
            "./qkv vocab train --input %s/a.txt --vocab-size %s --out %s/sv%d --pad-id -1 --character-coverage 0.9 "
            "2>&1 && ./qkv vocab train --input %s/b.txt --vocab-size %s --out %s/tv%d --pad-id -1 "
            "--character-coverage 0.9 2>&1 && "
                 "./qkv train --src %s/a.txt --tgt %s/b.txt --preset tiny --src-vocab %s/sv%d.model "
                 "--tgt-vocab %s/tv%d.model --out %s/sep%d --max-steps 2 2>&1",
            dir, sizes[k][0], dir, k, dir, sizes[k][1], dir, k, dir, dir, dir, k, dir, k, dir, k);
        int rc = test_run(cmd, &out);
        CHECK(rc == 0, "sizes %s/%s: exit %d: %s", sizes[k][0], sizes[k][1], rc, out);
        free(out);
        snprintf(path, sizeof path, "%s/sep%d/model.qkv", dir, k);
        qkv_translator *t = NULL;
        if (rc != 0 || qkv_translator_load(path, &t) != QKV_OK) {
            CHECK(rc != 0, "load %s: %s", path, qkv_last_error());
            continue;
        }
        const qkv_model_config *c = qkv_model_get_config(qkv_translator_model(t));
        int pieces = atoi(sizes[k][1]), big = atoi(sizes[k][0]) > pieces ? atoi(sizes[k][0]) : pieces;
        CHECK(c->pad_id == big && c->src_vocab_size == big + 1 && c->tgt_vocab_size == big + 1,
              "sizes %s/%s: pad %d, vocabularies %d/%d; want pad %d, both %d", sizes[k][0], sizes[k][1], c->pad_id,
              c->src_vocab_size, c->tgt_vocab_size, big, big + 1);
        const char *lines[] = {"the file could not be opened", "print", "open the window and close it",
                               "a long sentence with many words in it, to give the search time to wander"};
        qkv_translate_options o = qkv_translator_default_options(t);
        o.sample = 1; /* an untrained model samples nearly uniformly: every id gets its chance */
        o.seed = 5;
        o.max_length = 40;
        o.forced_eos = 0;
        qkv_translation *r = NULL;
        CHECK(qkv_translate(t, lines, 4, &o, &r) == QKV_OK, "translate: %s", qkv_last_error());
        int n_ids = 0, bad = 0;
        for (int i = 0; r && i < 4; i++)
            for (int j = 0; r[i].n_hyps && j < r[i].hyps[0].n_ids; j++, n_ids++)
                bad += r[i].hyps[0].ids[j] >= pieces;
        CHECK(n_ids > 0 && bad == 0, "sizes %s/%s: %d of %d generated ids have no target piece", sizes[k][0],
              sizes[k][1], bad, n_ids);
        qkv_translations_free(r, r ? 4 : 0);
        qkv_translator_free(t);
    }
}

/* --precision: bf16 where the CPU has native bf16 products, recorded in the
 * log and the checkpoint; without them (QKV_ISA=avx2 caps the path below
 * AVX-512, so also here) a clear error before anything is written, and
 * auto says it took fp32. */
static void test_precision(void)
{
    char cmd[2048], ck[600], *out = NULL;
    CMD(cmd, "QKV_ISA=avx2 " TRAIN "--out %s/p16x --max-steps 2 --precision bf16 2>&1", dir, dir, vocab, vocab,
        dir);
    CMD(ck, "%s/p16x/checkpoint.qkv", dir);
    expect_error("--precision bf16 without native bf16", cmd, "no native bf16 products", ck);
    CMD(cmd, TRAIN "--out %s/pbad --max-steps 2 --precision fp16 2>&1", dir, dir, vocab, vocab, dir);
    expect_error("unknown --precision", cmd, "expected auto, fp32 or bf16", NULL);
    CMD(cmd, "QKV_ISA=avx2 " TRAIN "--out %s/pauto --max-steps 2 --precision auto 2>&1", dir, dir, vocab, vocab,
        dir);
    int rc = test_run(cmd, &out);
    CHECK(rc == 0 && strstr(out, "precision fp32 (auto: fp32 (no native bf16"), "auto under QKV_ISA=avx2: exit %d: %s",
          rc, out);
    free(out);
    const char *why;
    if (!qkv_bf16_native(&why)) {
        printf("skip test_train_cli/test_precision bf16 run: no native bf16 products here (%s)\n", why);
        return;
    }
    CMD(cmd, TRAIN "--out %s/p16 --max-steps 3 --precision bf16 2>&1", dir, dir, vocab, vocab, dir);
    rc = test_run(cmd, &out);
    CHECK(rc == 0 && strstr(out, "precision bf16 (bf16 as asked)"), "bf16 run: exit %d: %s", rc, out);
    free(out);
    CMD(cmd, "grep -c '\"precision\": \"bf16\"' %s/p16/log.jsonl", dir);
    rc = test_run(cmd, &out);
    CHECK(rc == 0 && atoi(out) == 1, "log.jsonl: %d precision lines: %s", rc, out);
    free(out);
    CMD(cmd, "./qkv info %s/p16/checkpoint.qkv 2>&1", dir);
    rc = test_run(cmd, &out);
    CHECK(rc == 0 && strstr(out, "\"precision\":\t\"bf16\""), "info lacks the precision: exit %d: %s", rc, out);
    free(out);
}

static void test_cleanup(void)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "cleanup");
}

static const test_case cases[] = {
    TEST(test_short_run_and_resume),
    TEST(test_bad_input),
    TEST(test_snapshot_minutes),
    TEST(test_counted_handling),
    TEST(test_separate_vocabs_without_pad),
    TEST(test_precision),
    TEST(test_cleanup),
};

int main(int argc, char **argv)
{
    setup();
    return test_main(argc, argv, cases, TEST_COUNT(cases));
}
