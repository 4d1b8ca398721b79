/* qkv embed / similarity / search end to end on the small BERT fixture
 * (tests/golden/bert/tiny): the three output formats against the library,
 * empty lines, similarity of pairs, search with a saved and reloaded index,
 * a damaged index, bad arguments, and classify on a labels.tsv. The program is ./qkv (or $QKV_BIN),
 * run from the repository root. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/io.h"
#include "qkv.h"
#include "test.h"

static char dir[64];

static const char *qkv_bin(void) { return getenv("QKV_BIN") ? getenv("QKV_BIN") : "./qkv"; }

static const char *const lines[] = {"Open File", "", "Save the document", "Print", "Cancel the print job"};
#define N_LINES 5

static int setup(void)
{
    if (dir[0])
        return 1;
    snprintf(dir, sizeof dir, "/tmp/qkv_embed_cli_XXXXXX");
    if (!mkdtemp(dir))
        return 0;
    char path[128], text[512] = "";
    for (int i = 0; i < N_LINES; i++)
        strcat(strcat(text, lines[i]), "\n");
    snprintf(path, sizeof path, "%s/in.txt", dir);
    return qkv_write_file(path, text, strlen(text)) == QKV_OK;
}

static void library_vectors(float *out)
{
    char model[512];
    snprintf(model, sizeof model, "%s/bert/tiny", test_golden_dir());
    qkv_embedder *e;
    CHECK(qkv_embedder_load(model, &e) == QKV_OK, "%s", qkv_last_error());
    if (!e)
        return;
    CHECK(qkv_embed(e, lines, N_LINES, NULL, out, NULL) == QKV_OK, "%s", qkv_last_error());
    qkv_embedder_free(e);
}

static void test_embed_formats(void)
{
    CHECK(setup(), "setup");
    float want[N_LINES * 32], got[N_LINES * 32];
    library_vectors(want);
    char cmd[1024], *out;
    const char *fmts[] = {"tsv", "jsonl"};
    for (int f = 0; f < 2; f++) {
        snprintf(cmd, sizeof cmd, "%s embed -m %s/bert/tiny --format %s -i %s/in.txt 2>%s/err.txt", qkv_bin(),
                 test_golden_dir(), fmts[f], dir, dir);
        CHECK(test_run(cmd, &out) == 0, "'%s' failed", cmd);
        if (!out)
            continue;
        int k = 0, rows = 0;
        for (char *p = out; *p && k < N_LINES * 32;) {
            if (*p == '[' || *p == ',' || *p == ']' || *p == ' ' || *p == '\t' || *p == '\n') {
                rows += *p == '\n';
                p++;
                continue;
            }
            char *end;
            got[k++] = strtof(p, &end);
            if (end == p)
                break;
            p = end;
        }
        CHECK(k == N_LINES * 32, "%s: %d numbers, want %d", fmts[f], k, N_LINES * 32);
        /* ./qkv is the optimised build; this program may be the sanitizer one,
         * whose float operations round differently */
        CHECK_CLOSE_F32(got, want, N_LINES * 32, 1e-5, fmts[f]);
        free(out);
        char path[128], *err;
        size_t len;
        snprintf(path, sizeof path, "%s/err.txt", dir);
        CHECK(qkv_read_file(path, &err, &len) == QKV_OK && strstr(err, "1 empty line gave zero vectors"),
              "stderr does not count the empty line");
        free(err);
    }
    snprintf(cmd, sizeof cmd, "%s embed -m %s/bert/tiny --format npy -o %s/e.npy < %s/in.txt 2>/dev/null", qkv_bin(),
             test_golden_dir(), dir, dir);
    CHECK(test_run(cmd, NULL) == 0, "'%s' failed", cmd);
    char path[128], *npy;
    size_t len;
    snprintf(path, sizeof path, "%s/e.npy", dir);
    if (qkv_read_file(path, &npy, &len) == QKV_OK) {
        CHECK(len >= 128 && !memcmp(npy, "\x93NUMPY\x01\x00", 8), "not an npy v1 file");
        size_t hl = (unsigned char)npy[8] | (size_t)(unsigned char)npy[9] << 8;
        CHECK((10 + hl) % 64 == 0 && len == 10 + hl + sizeof got, "npy sizes: header %zu, file %zu", hl, len);
        CHECK(strstr(npy + 10, "'shape': (5, 32)") != NULL, "npy shape missing");
        if (len == 10 + hl + sizeof got) {
            memcpy(got, npy + 10 + hl, sizeof got);
            CHECK_CLOSE_F32(got, want, N_LINES * 32, 1e-5, "npy");
        }
        free(npy);
    } else {
        CHECK(0, "%s", qkv_last_error());
    }
}

static void test_similarity_and_search(void)
{
    CHECK(setup(), "setup");
    char cmd[1024], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s similarity -m %s/bert/tiny %s/in.txt %s/in.txt 2>/dev/null", qkv_bin(),
             test_golden_dir(), dir, dir);
    CHECK(test_run(cmd, &out) == 0, "'%s' failed", cmd);
    CHECK(out && !strcmp(out, "1.000000\n0.000000\n1.000000\n1.000000\n1.000000\n"), "similarity printed '%s'",
          out ? out : "");
    free(out);
    /* search: each corpus line is its own nearest neighbour; an index gives the same */
    snprintf(cmd, sizeof cmd, "printf 'Print\\nOpen File\\n' | %s search -m %s/bert/tiny --corpus %s/in.txt --top-k 2 "
             "--save-index %s/ix 2>/dev/null", qkv_bin(), test_golden_dir(), dir, dir);
    CHECK(test_run(cmd, &out) == 0, "'%s' failed", cmd);
    CHECK(out && !strncmp(out, "0\t1\t1.000000\t3\tPrint\n0\t2\t", 24), "search printed '%s'", out ? out : "");
    CHECK(out && strstr(out, "1\t1\t1.000000\t0\tOpen File\n"), "search printed '%s'", out ? out : "");
    char *again = NULL;
    snprintf(cmd, sizeof cmd, "printf 'Print\\nOpen File\\n' | %s search --index %s/ix --top-k 2 2>/dev/null", qkv_bin(),
             dir);
    CHECK(test_run(cmd, &again) == 0, "'%s' failed", cmd);
    CHECK(out && again && !strcmp(out, again), "index search printed '%s', corpus search '%s'", again ? again : "",
          out ? out : "");
    free(out);
    free(again);
    /* a damaged index is refused with a message */
    char path[128], *data;
    size_t len;
    snprintf(path, sizeof path, "%s/ix", dir);
    if (qkv_read_file(path, &data, &len) == QKV_OK) {
        data[60] ^= 1;
        CHECK(qkv_write_file(path, data, len) == QKV_OK, "rewrite");
        free(data);
        snprintf(cmd, sizeof cmd, "echo x | %s search --index %s/ix 2>&1", qkv_bin(), dir);
        CHECK(test_run(cmd, &out) == 1, "damaged index accepted");
        CHECK(out && strstr(out, "checksum"), "message '%s'", out ? out : "");
        free(out);
        CHECK(qkv_write_file(path, "QKVINDEX", 8) == QKV_OK, "rewrite");
        CHECK(test_run(cmd, &out) == 1, "truncated index accepted");
        free(out);
    }
}

static void test_bad_arguments(void)
{
    CHECK(setup(), "setup");
    const char *bad[] = {
        "embed -m /nonexistent/model < /dev/null",
        "embed -m tests/golden/bert/tiny --pooling sum < /dev/null",
        "embed -m tests/golden/bert/tiny --format csv < /dev/null",
        "embed < /dev/null",
        "similarity -m tests/golden/bert/tiny tests/golden/bert/sentences.txt tests/golden/wordpiece/lines.txt",
        "search -m tests/golden/bert/tiny < /dev/null",
        "search -m tests/golden/bert/tiny --corpus /dev/null < /dev/null",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char cmd[1024], *out = NULL;
        snprintf(cmd, sizeof cmd, "%s %s 2>&1", qkv_bin(), bad[i]);
        int rc = test_run(cmd, &out);
        CHECK(rc == 1, "'%s' exited %d, want 1", bad[i], rc);
        CHECK(out && strstr(out, "qkv: error: "), "'%s' printed '%s'", bad[i], out ? out : "");
        free(out);
    }
}

static int write_text(const char *name, const char *text)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return qkv_write_file(path, text, strlen(text)) == QKV_OK;
}

static char golden_abs[PATH_MAX];

/* Runs `qkv ARGS 2>&1` in dir; returns the exit status, *out what it printed. */
static int run_qkv(const char *args, char **out)
{
    char bin[PATH_MAX], cmd[2 * PATH_MAX + 8192];
    *out = NULL;
    if (!realpath(qkv_bin(), bin)) {
        CHECK(0, "%s: not found", qkv_bin());
        return -1;
    }
    snprintf(cmd, sizeof cmd, "cd %s && %s %s 2>&1", dir, bin, args);
    return test_run(cmd, out);
}

/* classify train/eval on a labels.tsv (header, split column) and on the
 * two-column form: each flag reads its split, --split overrides, and the
 * errors name the file and the line. */
static void test_classify_labels_tsv(void)
{
    CHECK(setup(), "setup");
    CHECK(write_text("labels.tsv", "split\tlabel\ttext\n"
                                   "train\topen\topen the file\ntrain\topen\topen a file now\n"
                                   "train\tprint\tprint the page\ntrain\tprint\tprint now\n"
                                   "train\topen\tfile open\ntrain\tprint\tpage print\n"
                                   "dev\topen\topen file dialog\ndev\tprint\tprint dialog page\n"
                                   "test\topen\tsave the file\ntest\tprint\tprint the file\ntest\topen\topen print\n") &&
              write_text("test2.tsv", "open\tsave the file\nprint\tprint the file\n") &&
              write_text("nodev.tsv", "split\tlabel\ttext\ntrain\topen\topen it\ntrain\tprint\tprint it\n") &&
              write_text("badsplit.tsv", "split\tlabel\ttext\ntrain\topen\topen it\nvalid\tprint\tprint it\n") &&
              write_text("badrow.tsv", "split\tlabel\ttext\ntrain\topen\topen it\ntrain print it\n"),
          "writing the fixtures");
    if (!realpath(test_golden_dir(), golden_abs)) {
        CHECK(0, "%s: not found", test_golden_dir());
        return;
    }
    char args[PATH_MAX + 256], *out = NULL;
    snprintf(args, sizeof args, "classify train -m %s/bert/tiny --train labels.tsv --dev labels.tsv --out clf.qkv "
             "--epochs 40 --lr 0.1 --head-batch 2", golden_abs);
    int rc = run_qkv(args, &out);
    CHECK(rc == 0, "'%s' exited %d: %s", args, rc, out ? out : "");
    /* 6 training examples, 2 dev ones: the per-epoch lines say which set was scored */
    CHECK(out && strstr(out, "dev accuracy") && strstr(out, "2 labels, wrote clf.qkv"), "train printed '%s'",
          out ? out : "");
    free(out);
    const struct {
        const char *args, *want;
    } evals[] = {
        {"classify eval -m clf.qkv --test labels.tsv", "examples\t3\n"},
        {"classify eval -m clf.qkv --test labels.tsv --split train", "examples\t6\n"},
        {"classify eval -m clf.qkv --split dev < labels.tsv", "examples\t2\n"},
        {"classify eval -m clf.qkv --test test2.tsv", "examples\t2\n"},
    };
    for (size_t i = 0; i < sizeof evals / sizeof evals[0]; i++) {
        rc = run_qkv(evals[i].args, &out);
        CHECK(rc == 0 && out && !strncmp(out, evals[i].want, strlen(evals[i].want)) && strstr(out, "macro_f1\t"),
              "'%s' exited %d, printed '%s', want '%s...'", evals[i].args, rc, out ? out : "", evals[i].want);
        free(out);
    }
    snprintf(args, sizeof args, "classify train -m %s/bert/tiny --train labels.tsv --split dev --out dev.qkv -q "
             "--epochs 2", golden_abs);
    rc = run_qkv(args, &out);
    CHECK(rc == 0, "'%s' exited %d: %s", args, rc, out ? out : "");
    free(out);

    char tiny[PATH_MAX + 64];
    snprintf(tiny, sizeof tiny, "-m %s/bert/tiny --out x.qkv -q --epochs 1", golden_abs);
    const struct {
        const char *args, *want;
    } bad[] = {
        {"classify eval -m clf.qkv --test test2.tsv --split test", "test2.tsv: --split test, but the file has no splits"},
        {"classify eval -m clf.qkv --test labels.tsv --split valid", "--split wants train, dev or test, got 'valid'"},
        {"classify eval -m clf.qkv --test nodev.tsv", "nodev.tsv: no row of split 'test'"},
        {"classify eval -m clf.qkv --test badsplit.tsv", "badsplit.tsv: line 3: unknown split 'valid'"},
        {"classify eval -m clf.qkv --test badrow.tsv", "badrow.tsv: line 3: expected SPLIT<TAB>LABEL<TAB>TEXT"},
        {"classify train TINY --train nodev.tsv --dev nodev.tsv", "nodev.tsv: no row of split 'dev'"},
        {"classify train TINY --train badrow.tsv", "badrow.tsv: line 3: expected SPLIT<TAB>LABEL<TAB>TEXT"},
        {"classify eval -m clf.qkv --test missing.tsv", "missing.tsv"},
        {"classify predict -m clf.qkv --split test < test2.tsv", "unknown option '--split'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char a[PATH_MAX + 512];
        const char *t = strstr(bad[i].args, "TINY");
        if (t)
            snprintf(a, sizeof a, "%.*s%s%s", (int)(t - bad[i].args), bad[i].args, tiny, t + 4);
        else
            snprintf(a, sizeof a, "%s", bad[i].args);
        rc = run_qkv(a, &out);
        CHECK(rc == 1 && out && strstr(out, "qkv: error: ") && strstr(out, bad[i].want),
              "'%s' exited %d, printed '%s', want '%s'", a, rc, out ? out : "", bad[i].want);
        free(out);
    }
}

static void test_cleanup(void)
{
    if (dir[0])
        test_rm_dir(dir);
}

static const test_case cases[] = {
    TEST(test_embed_formats),
    TEST(test_similarity_and_search),
    TEST(test_bad_arguments),
    TEST(test_classify_labels_tsv),
    TEST(test_cleanup),
};

int main(int argc, char **argv) { return test_main(argc, argv, cases, TEST_COUNT(cases)); }
