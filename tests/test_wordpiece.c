/* text/wordpiece: ids identical to transformers' BertTokenizer on the test
 * set of scripts/golden/wordpiece.py (English, Chinese, accents, emoji,
 * control characters, invalid UTF-8, long words, lines past the maximum),
 * on MiniLM's uncased vocabulary and a cased one without accent stripping;
 * and the errors of bad vocabularies and configs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/io.h"
#include "text/wordpiece.h"
#include "test.h"

static char path_buf[512];

static const char *golden(const char *name)
{
    snprintf(path_buf, sizeof path_buf, "%s/wordpiece/%s", test_golden_dir(), name);
    return path_buf;
}

/* Splits a file into lines at '\n' (in place); returns the count. */
static int split_lines(char *data, size_t len, char ***lines, size_t **lens)
{
    int n = 0;
    for (size_t i = 0; i < len; i++)
        n += data[i] == '\n';
    *lines = malloc((size_t)(n + 1) * sizeof **lines);
    *lens = malloc((size_t)(n + 1) * sizeof **lens);
    int k = 0;
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        if (data[i] != '\n')
            continue;
        data[i] = '\0';
        (*lines)[k] = data + start;
        (*lens)[k] = i - start;
        k++;
        start = i + 1;
    }
    return k;
}

static void check_vocab(const char *dir, const char *ids_file, int max_length)
{
    char vdir[512];
    snprintf(vdir, sizeof vdir, "%s/wordpiece/%s", test_golden_dir(), dir);
    qkv_wordpiece *w;
    CHECK(wp_load_dir(vdir, &w) == QKV_OK, "load %s: %s", vdir, qkv_last_error());
    if (!w)
        return;
    char *text, *want;
    size_t tlen, wlen;
    CHECK(qkv_read_file(golden("lines.txt"), &text, &tlen) == QKV_OK, "%s", qkv_last_error());
    CHECK(qkv_read_file(golden(ids_file), &want, &wlen) == QKV_OK, "%s", qkv_last_error());
    char **lines, **wlines;
    size_t *lens, *wlens;
    int n = split_lines(text, tlen, &lines, &lens), nw = split_lines(want, wlen, &wlines, &wlens);
    CHECK(n == nw && n > 300, "%d test lines, %d id lines", n, nw);
    int bad = 0, truncated_lines = 0;
    for (int i = 0; i < n && i < nw; i++) {
        int *ids;
        size_t m, invalid;
        int truncated;
        if (wp_encode(w, lines[i], lens[i], 1, max_length, &ids, &m, &invalid, &truncated) != QKV_OK) {
            CHECK(0, "line %d: %s", i + 1, qkv_last_error());
            continue;
        }
        truncated_lines += truncated;
        size_t k = 0;
        int same = 1;
        for (char *p = wlines[i]; *p;) {
            char *end;
            long id = strtol(p, &end, 10);
            if (end == p)
                break;
            if (k >= m || ids[k] != id) {
                same = 0;
                if (bad < 5)
                    CHECK(0, "%s line %d: id %zu is %d, BertTokenizer gives %ld (line '%.60s')", dir, i + 1, k,
                          k < m ? ids[k] : -1, id, lines[i]);
                break;
            }
            k++;
            p = end;
        }
        if (same && k != m) {
            same = 0;
            if (bad < 5)
                CHECK(0, "%s line %d: %zu ids, BertTokenizer gives %zu", dir, i + 1, m, k);
        }
        bad += !same;
        free(ids);
    }
    CHECK(bad == 0, "%s: %d of %d lines differ", dir, bad, n);
    CHECK(truncated_lines >= 2, "%s: only %d lines were truncated; the set has lines past the maximum", dir,
          truncated_lines);
    free(lines);
    free(lens);
    free(wlines);
    free(wlens);
    free(text);
    free(want);
    wp_free(w);
}

static void test_minilm_vocab(void) { check_vocab("minilm", "minilm_ids.txt", 256); }
static void test_cased_vocab(void) { check_vocab("cased", "cased_ids.txt", 64); }

static void test_config_flags(void)
{
    char vdir[512];
    snprintf(vdir, sizeof vdir, "%s/wordpiece/cased", test_golden_dir());
    qkv_wordpiece *w;
    CHECK(wp_load_dir(vdir, &w) == QKV_OK, "%s", qkv_last_error());
    if (!w)
        return;
    const wp_options *o = wp_get_options(w);
    CHECK(!o->do_lower_case && o->strip_accents == 0 && !o->tokenize_chinese_chars, "flags %d %d %d",
          o->do_lower_case, o->strip_accents, o->tokenize_chinese_chars);
    CHECK(wp_model_max_length(w) == 64, "model_max_length %d", wp_model_max_length(w));
    CHECK(wp_cls_id(w) == 2 && wp_sep_id(w) == 3 && wp_pad_id(w) == 0 && wp_unk_id(w) == 1, "specials %d %d %d %d",
          wp_cls_id(w), wp_sep_id(w), wp_pad_id(w), wp_unk_id(w));
    wp_free(w);
}

static char tmpdir[256];

static void write_dir(const char *vocab, size_t vlen, const char *config)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/qkv_test_wp_%ld", (long)getpid());
    test_rm_dir(tmpdir);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", tmpdir);
    CHECK(system(cmd) == 0, "mkdir");
    char *p = qkv_path_join(tmpdir, "vocab.txt");
    if (vocab)
        CHECK(qkv_write_file(p, vocab, vlen) == QKV_OK, "%s", qkv_last_error());
    free(p);
    if (config) {
        p = qkv_path_join(tmpdir, "tokenizer_config.json");
        CHECK(qkv_write_file(p, config, strlen(config)) == QKV_OK, "%s", qkv_last_error());
        free(p);
    }
}

static void expect_error(qkv_status want, const char *needle, const char *what)
{
    qkv_wordpiece *w = NULL;
    qkv_status s = wp_load_dir(tmpdir, &w);
    CHECK(s == want, "%s: status %s, want %s (%s)", what, qkv_status_name(s), qkv_status_name(want),
          qkv_last_error());
    CHECK(w == NULL, "%s: a tokenizer was returned", what);
    CHECK(strstr(qkv_last_error(), needle) != NULL, "%s: message '%s' lacks '%s'", what, qkv_last_error(), needle);
    wp_free(w);
}

static void test_bad_vocabularies(void)
{
    const char *good = "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n##s\n";
    write_dir(NULL, 0, NULL);
    expect_error(QKV_ERR_IO, "vocab.txt", "missing vocab.txt");
    write_dir("", 0, NULL);
    expect_error(QKV_ERR_FORMAT, "empty", "empty vocab.txt");
    write_dir("[PAD]\n[UNK]\n[CLS]\n[SEP]\nbad\xff\n", 29, NULL);
    expect_error(QKV_ERR_FORMAT, "line 5", "invalid UTF-8");
    write_dir("[PAD]\n[CLS]\n[SEP]\nhello\n", 24, NULL);
    expect_error(QKV_ERR_FORMAT, "[UNK]", "no [UNK]");
    write_dir(good, strlen(good), "{\"tokenizer_class\": \"XLMRobertaTokenizer\"}");
    expect_error(QKV_ERR_UNSUPPORTED, "tokenizer_class", "another tokenizer");
    write_dir(good, strlen(good), "{\"do_lower_case\": \"yes\"}");
    expect_error(QKV_ERR_CONFIG, "do_lower_case", "string flag");
    write_dir(good, strlen(good), "{\"do_lower_case\": true,");
    expect_error(QKV_ERR_FORMAT, "tokenizer_config.json", "malformed JSON");
    write_dir(good, strlen(good), "{\"do_basic_tokenize\": false}");
    expect_error(QKV_ERR_UNSUPPORTED, "do_basic_tokenize", "no basic tokenizer");

    /* \r\n and \r end lines as in Python; a repeated token takes its last id */
    write_dir("[PAD]\r\n[UNK]\r[CLS]\n[SEP]\nhello\n##s\nhello\n", 41, NULL);
    qkv_wordpiece *w;
    CHECK(wp_load_dir(tmpdir, &w) == QKV_OK, "%s", qkv_last_error());
    if (w) {
        CHECK(wp_vocab_size(w) == 7, "size %d", wp_vocab_size(w));
        CHECK(wp_token_id(w, "[UNK]") == 1 && wp_token_id(w, "[CLS]") == 2, "ids %d %d", wp_token_id(w, "[UNK]"),
              wp_token_id(w, "[CLS]"));
        CHECK(wp_token_id(w, "hello") == 6, "repeated token id %d, want 6", wp_token_id(w, "hello"));
        int *ids;
        size_t n, inv;
        CHECK(wp_encode(w, "Hellos  x\xff", 10, 1, 0, &ids, &n, &inv, NULL) == QKV_OK, "%s", qkv_last_error());
        int want[] = {2, 6, 5, 1, 3};
        CHECK(n == 5 && !memcmp(ids, want, sizeof want), "ids differ (n %zu)", n);
        CHECK(inv == 1, "invalid bytes %zu, want 1", inv);
        free(ids);
        CHECK(wp_encode(w, "hello hello hello", 17, 1, 3, &ids, &n, NULL, NULL) == QKV_OK, "%s", qkv_last_error());
        CHECK(n == 3 && ids[0] == 2 && ids[1] == 6 && ids[2] == 3, "truncated to %zu", n);
        free(ids);
        wp_free(w);
    }
    test_rm_dir(tmpdir);
}

static const test_case cases[] = {
    TEST(test_minilm_vocab),
    TEST(test_cased_vocab),
    TEST(test_config_flags),
    TEST(test_bad_vocabularies),
};

int main(int argc, char **argv) { return test_main(argc, argv, cases, TEST_COUNT(cases)); }
