/* Vocabulary training (src/text/train_*.c): valid models, exact sizes,
 * special ids, coverage, byte fallback, determinism, and models trained by
 * qkv that sentencepiece loads and encodes exactly as qkv does
 * (fixtures from scripts/golden/vocab_train.py). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/io.h"
#include "base/rng.h"
#include "text/spm_model.h"
#include "text/train.h"
#include "text/utf8.h"
#include "test.h"

/* The committed models' options: keep in sync with MODELS in
 * scripts/golden/vocab_train.py. */
static const char *const user_symbols[] = {"<sep>", "[MASK]"};

static qkv_vocab_train_options unigram_options(void)
{
    qkv_vocab_train_options o = qkv_vocab_train_default_options();
    o.vocab_size = 1200;
    o.byte_fallback = 1;
    o.character_coverage = 0.995f;
    o.user_defined_symbols = user_symbols;
    o.n_user_defined_symbols = 2;
    o.threads = 1;
    return o;
}

static qkv_vocab_train_options bpe_options(void)
{
    qkv_vocab_train_options o = qkv_vocab_train_default_options();
    o.type = QKV_VOCAB_BPE;
    o.vocab_size = 1200;
    o.normalization = "identity";
    o.unk_id = 1;
    o.eos_id = 0;
    o.bos_id = -1;
    o.pad_id = 2;
    o.character_coverage = 0.995f;
    o.threads = 1;
    return o;
}

static const char *golden(const char *name)
{
    static char path[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(path[k], sizeof path[k], "%s/vocab_train/%s", test_golden_dir(), name);
    return path[k];
}

/* Splits a file into lines (modifies and keeps data; caller frees both). */
static char **read_lines(const char *path, int *n, char **data)
{
    size_t len;
    *n = 0;
    if (qkv_read_file(path, data, &len) != QKV_OK) {
        test_fail(__FILE__, __LINE__, "cannot read %s: %s", path, qkv_last_error());
        return NULL;
    }
    int cap = 1;
    for (size_t i = 0; i < len; i++)
        cap += (*data)[i] == '\n';
    char **lines = malloc((size_t)cap * sizeof *lines);
    char *p = *data, *end = *data + len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl)
            *nl = 0;
        lines[(*n)++] = p;
        p = nl ? nl + 1 : end;
    }
    return lines;
}

static qkv_vocab *load_model(const spm_model *m)
{
    uint8_t *bytes;
    size_t len;
    qkv_vocab *v = NULL;
    if (spm_model_serialize(m, &bytes, &len) != QKV_OK) {
        test_fail(__FILE__, __LINE__, "serialize: %s", qkv_last_error());
        return NULL;
    }
    if (qkv_vocab_load_memory(bytes, len, &v) != QKV_OK)
        test_fail(__FILE__, __LINE__, "qkv_vocab_load_memory of a trained model: %s", qkv_last_error());
    free(bytes);
    return v;
}

static int train(spm_model *m, const qkv_vocab_train_options *o)
{
    const char *in[1] = {golden("train.txt")};
    qkv_status s = train_vocab_model(m, o, in, 1);
    CHECK(s == QKV_OK, "training failed: %s", qkv_last_error());
    return s == QKV_OK;
}

/* Checks the structure every trained model must have. */
static void check_structure(const spm_model *m, const qkv_vocab_train_options *o, int n_bytes)
{
    CHECK(m->n_pieces == o->vocab_size, "%d pieces, asked %d", m->n_pieces, o->vocab_size);
    const int ids[4] = {o->unk_id, o->bos_id, o->eos_id, o->pad_id};
    const char *names[4] = {"<unk>", "<s>", "</s>", "<pad>"};
    for (int i = 0; i < 4; i++) {
        if (ids[i] < 0) {
            for (int k = 0; k < m->n_pieces; k++)
                CHECK(strcmp(m->pieces[k].piece, names[i]), "%s present at %d though its id is -1", names[i], k);
            continue;
        }
        CHECK(!strcmp(m->pieces[ids[i]].piece, names[i]), "id %d is '%s', expected %s", ids[i],
              m->pieces[ids[i]].piece, names[i]);
        spm_piece_type want = i == 0 ? SPM_UNKNOWN : SPM_CONTROL;
        CHECK(m->pieces[ids[i]].type == want, "%s has type %d, expected %d", names[i], m->pieces[ids[i]].type, want);
    }
    int bytes = 0, users = 0;
    for (int k = 0; k < m->n_pieces; k++) {
        const spm_piece *p = &m->pieces[k];
        bytes += p->type == SPM_BYTE;
        if (p->type == SPM_USER_DEFINED) {
            CHECK(users < o->n_user_defined_symbols && !strcmp(p->piece, o->user_defined_symbols[users]),
                  "user-defined piece %d '%s' out of order", k, p->piece);
            users++;
        }
        if (p->type == SPM_BYTE) {
            char want[8];
            snprintf(want, sizeof want, "<0x%02X>", bytes - 1);
            CHECK(!strcmp(p->piece, want), "byte piece %d is '%s', expected %s", k, p->piece, want);
        }
        CHECK(p->type != SPM_NORMAL || (p->piece[0] && strlen(p->piece) <= 64), "piece %d '%s' has a bad length", k,
              p->piece);
    }
    CHECK(bytes == n_bytes, "%d byte pieces, expected %d", bytes, n_bytes);
    CHECK(users == o->n_user_defined_symbols, "%d user-defined pieces, expected %d", users,
          o->n_user_defined_symbols);
    /* no duplicates */
    for (int a = 0; a < m->n_pieces; a++)
        for (int b = a + 1; b < m->n_pieces; b++)
            if (!strcmp(m->pieces[a].piece, m->pieces[b].piece)) {
                CHECK(0, "piece '%s' at ids %d and %d", m->pieces[a].piece, a, b);
                return;
            }
}

static void test_unigram_model_structure(void)
{
    qkv_vocab_train_options o = unigram_options();
    spm_model m;
    if (!train(&m, &o))
        return;
    check_structure(&m, &o, 256);
    CHECK(m.trainer.model_type == SPM_UNIGRAM && m.trainer.byte_fallback == 1, "trainer spec type %d byte_fallback %d",
          m.trainer.model_type, m.trainer.byte_fallback);
    CHECK(m.normalizer.name && !strcmp(m.normalizer.name, "nmt_nfkc"), "normalizer '%s'",
          m.normalizer.name ? m.normalizer.name : "(null)");
    CHECK(m.normalizer.precompiled_charsmap_len > 100000, "charsmap of %zu bytes", m.normalizer.precompiled_charsmap_len);
    /* normal pieces: log-probabilities, best first */
    float prev = 0;
    int first = 1;
    for (int k = 0; k < m.n_pieces; k++) {
        if (m.pieces[k].type != SPM_NORMAL)
            continue;
        CHECK(m.pieces[k].score < 0, "piece %d '%s' score %g is not a log-probability", k, m.pieces[k].piece,
              (double)m.pieces[k].score);
        CHECK(first || m.pieces[k].score <= prev, "piece %d score %g after %g: not sorted", k,
              (double)m.pieces[k].score, (double)prev);
        prev = m.pieces[k].score;
        first = 0;
    }
    spm_model_free(&m);
}

static void test_bpe_model_structure(void)
{
    qkv_vocab_train_options o = bpe_options();
    spm_model m;
    if (!train(&m, &o))
        return;
    check_structure(&m, &o, 0);
    CHECK(m.trainer.model_type == SPM_BPE, "model type %d", m.trainer.model_type);
    CHECK(m.normalizer.precompiled_charsmap_len == 0, "identity has a charsmap of %zu bytes",
          m.normalizer.precompiled_charsmap_len);
    /* scores are minus the merge rank: 0, -1, -2, ... over the normal pieces */
    int rank = 0;
    for (int k = 0; k < m.n_pieces; k++) {
        if (m.pieces[k].type != SPM_NORMAL)
            continue;
        CHECK(m.pieces[k].score == (float)-rank, "piece %d '%s' score %g, expected %d", k, m.pieces[k].piece,
              (double)m.pieces[k].score, -rank);
        rank++;
    }
    spm_model_free(&m);
}

/* Every line of the training text encodes without <unk> when byte fallback
 * is on; with it off, only characters outside the coverage give <unk>. */
static void test_byte_fallback_never_unk(void)
{
    qkv_vocab_train_options o = unigram_options();
    spm_model m;
    if (!train(&m, &o))
        return;
    qkv_vocab *v = load_model(&m);
    int n;
    char *data;
    char **lines = read_lines(golden("train.txt"), &n, &data);
    for (int i = 0; v && lines && i < n; i++) {
        int *ids;
        size_t k;
        if (qkv_vocab_encode(v, lines[i], strlen(lines[i]), &ids, &k, NULL) != QKV_OK) {
            CHECK(0, "encode line %d: %s", i + 1, qkv_last_error());
            break;
        }
        for (size_t j = 0; j < k; j++)
            CHECK(ids[j] != o.unk_id, "training line %d token %zu is <unk>: '%s'", i + 1, j, lines[i]);
        free(ids);
    }
    free(lines);
    free(data);
    qkv_vocab_free(v);
    spm_model_free(&m);
}

/* With full coverage, every training character is a piece of its own. */
static void test_full_coverage_chars(void)
{
    qkv_vocab_train_options o = qkv_vocab_train_default_options();
    o.vocab_size = 1500;
    o.character_coverage = 1.0f;
    o.threads = 2;
    spm_model m;
    if (!train(&m, &o))
        return;
    check_structure(&m, &o, 0);
    qkv_vocab *v = load_model(&m);
    int n;
    char *data;
    char **lines = read_lines(golden("train.txt"), &n, &data);
    int unk = 0;
    for (int i = 0; v && lines && i < n; i++) {
        int *ids;
        size_t k;
        if (qkv_vocab_encode(v, lines[i], strlen(lines[i]), &ids, &k, NULL) != QKV_OK)
            break;
        for (size_t j = 0; j < k; j++)
            unk += ids[j] == o.unk_id;
        free(ids);
    }
    CHECK(unk == 0, "%d <unk> tokens in the training text at coverage 1.0", unk);
    free(lines);
    free(data);
    qkv_vocab_free(v);
    spm_model_free(&m);
}

/* sentencepiece loads the committed qkv-trained models; its encodings of the
 * test lines (fixture) equal qkv's. */
static void check_parity(const char *name)
{
    char model[64], ids_name[64];
    snprintf(model, sizeof model, "%s.model", name);
    snprintf(ids_name, sizeof ids_name, "%s.ids", name);
    qkv_vocab *v;
    if (qkv_vocab_load(golden(model), &v) != QKV_OK) {
        CHECK(0, "load %s: %s", model, qkv_last_error());
        return;
    }
    int n, ne;
    char *data, *edata;
    char **lines = read_lines(golden("test.txt"), &n, &data);
    char **want = read_lines(golden(ids_name), &ne, &edata);
    CHECK(lines && want && n == ne, "%d test lines but %d expected encodings", n, ne);
    int bad = 0;
    for (int i = 0; lines && want && i < n && i < ne && bad < 5; i++) {
        int *ids;
        size_t k;
        if (qkv_vocab_encode(v, lines[i], strlen(lines[i]), &ids, &k, NULL) != QKV_OK) {
            CHECK(0, "encode line %d: %s", i + 1, qkv_last_error());
            break;
        }
        char got[65536];
        size_t pos = 0;
        got[0] = 0;
        for (size_t j = 0; j < k && pos + 16 < sizeof got; j++)
            pos += (size_t)snprintf(got + pos, sizeof got - pos, j ? " %d" : "%d", ids[j]);
        if (strcmp(got, want[i])) {
            bad++;
            CHECK(0, "%s line %d '%.60s': qkv [%.200s] sentencepiece [%.200s]", name, i + 1, lines[i], got, want[i]);
        }
        free(ids);
    }
    free(lines);
    free(data);
    free(want);
    free(edata);
    qkv_vocab_free(v);
}

static void test_sentencepiece_parity_unigram(void) { check_parity("unigram"); }
static void test_sentencepiece_parity_bpe(void) { check_parity("bpe"); }

/* Training again with the committed options gives the committed bytes. */
static void check_reproduces(const char *name, qkv_vocab_train_options o)
{
    spm_model m;
    if (!train(&m, &o))
        return;
    char model[64];
    snprintf(model, sizeof model, "%s.model", name);
    uint8_t *got;
    size_t len, want_len;
    char *want;
    if (spm_model_serialize(&m, &got, &len) != QKV_OK || qkv_read_file(golden(model), &want, &want_len) != QKV_OK) {
        CHECK(0, "%s: %s", model, qkv_last_error());
        spm_model_free(&m);
        return;
    }
    size_t i = 0;
    while (i < len && i < want_len && got[i] == (uint8_t)want[i])
        i++;
    CHECK(len == want_len && i == len, "%s: retrained model differs from the committed one at byte %zu (%zu vs %zu bytes)",
          model, i, len, want_len);
    free(got);
    free(want);
    spm_model_free(&m);
}

static void test_reproduces_committed_unigram(void) { check_reproduces("unigram", unigram_options()); }
static void test_reproduces_committed_bpe(void) { check_reproduces("bpe", bpe_options()); }

static void test_deterministic_with_sampling(void)
{
    qkv_vocab_train_options o = qkv_vocab_train_default_options();
    o.vocab_size = 600;
    o.max_sentences = 300;
    o.seed = 7;
    o.threads = 2;
    uint8_t *a = NULL, *b = NULL;
    size_t la = 0, lb = 0;
    spm_model m;
    for (int r = 0; r < 2; r++) {
        if (!train(&m, &o))
            break;
        CHECK(spm_model_serialize(&m, r ? &b : &a, r ? &lb : &la) == QKV_OK, "serialize: %s", qkv_last_error());
        spm_model_free(&m);
    }
    CHECK(a && b && la == lb && !memcmp(a, b, la), "two runs with seed 7 differ (%zu vs %zu bytes)", la, lb);
    free(a);
    free(b);
    a = b = NULL;
    /* the thread count does not change the result either */
    for (int r = 0; r < 2; r++) {
        o.threads = r ? 3 : 1;
        if (!train(&m, &o))
            break;
        CHECK(spm_model_serialize(&m, r ? &b : &a, r ? &lb : &la) == QKV_OK, "serialize: %s", qkv_last_error());
        spm_model_free(&m);
    }
    CHECK(a && b && la == lb && !memcmp(a, b, la), "1 and 3 threads differ (%zu vs %zu bytes)", la, lb);
    free(a);
    free(b);
}

static void test_written_model_reads_back(void)
{
    qkv_vocab_train_options o = unigram_options();
    o.vocab_size = 1100;
    char prefix[] = "/tmp/qkv_vocab_train_XXXXXX";
    int fd = mkstemp(prefix);
    CHECK(fd >= 0, "mkstemp failed");
    if (fd < 0)
        return;
    close(fd);
    const char *in[1] = {golden("train.txt")};
    qkv_status s = qkv_vocab_train(&o, in, 1, prefix);
    CHECK(s == QKV_OK, "qkv_vocab_train: %s", qkv_last_error());
    char path[600];
    snprintf(path, sizeof path, "%s.model", prefix);
    spm_model back, fresh;
    s = spm_model_read(&back, path);
    CHECK(s == QKV_OK, "read back %s: %s", path, qkv_last_error());
    if (s == QKV_OK && train(&fresh, &o)) {
        CHECK(back.n_pieces == fresh.n_pieces, "%d pieces read back, %d trained", back.n_pieces, fresh.n_pieces);
        for (int i = 0; i < back.n_pieces && i < fresh.n_pieces; i++) {
            if (strcmp(back.pieces[i].piece, fresh.pieces[i].piece) || back.pieces[i].score != fresh.pieces[i].score ||
                back.pieces[i].type != fresh.pieces[i].type) {
                CHECK(0, "piece %d: read back '%s' %g type %d, trained '%s' %g type %d", i, back.pieces[i].piece,
                      (double)back.pieces[i].score, back.pieces[i].type, fresh.pieces[i].piece,
                      (double)fresh.pieces[i].score, fresh.pieces[i].type);
                break;
            }
        }
        CHECK(back.normalizer.precompiled_charsmap_len == fresh.normalizer.precompiled_charsmap_len &&
                  !memcmp(back.normalizer.precompiled_charsmap, fresh.normalizer.precompiled_charsmap,
                          fresh.normalizer.precompiled_charsmap_len),
              "charsmap differs after reading back");
        CHECK(back.trainer.byte_fallback == 1 && back.trainer.unk_id == 0 && back.trainer.bos_id == 1 &&
                  back.trainer.eos_id == 2 && back.trainer.pad_id == -1,
              "trainer spec read back: byte_fallback %d ids %d %d %d %d", back.trainer.byte_fallback,
              back.trainer.unk_id, back.trainer.bos_id, back.trainer.eos_id, back.trainer.pad_id);
        spm_model_free(&fresh);
    }
    spm_model_free(&back);
    /* PREFIX.vocab: one "piece<TAB>score" line per piece, in id order */
    snprintf(path, sizeof path, "%s.vocab", prefix);
    int n;
    char *data;
    char **lines = read_lines(path, &n, &data);
    CHECK(lines && n == o.vocab_size, "%d lines in %s, expected %d", n, path, o.vocab_size);
    if (lines && n > 3) {
        CHECK(!strcmp(lines[0], "<unk>\t0") && !strcmp(lines[1], "<s>\t0") && !strcmp(lines[2], "</s>\t0"),
              "vocab starts '%s' '%s' '%s'", lines[0], lines[1], lines[2]);
        CHECK(!strcmp(lines[3], "<sep>\t0"), "line 4 is '%s', expected the user-defined <sep>", lines[3]);
        CHECK(strchr(lines[n - 1], '\t') != NULL, "last line '%s' has no TAB", lines[n - 1]);
    }
    free(lines);
    free(data);
    unlink(prefix);
    unlink(path);
    snprintf(path, sizeof path, "%s.model", prefix);
    unlink(path);
}

static void test_options_errors(void)
{
    spm_model m;
    const char *in[1] = {golden("train.txt")};
    qkv_vocab_train_options o = qkv_vocab_train_default_options();
    o.vocab_size = 50; /* fewer than the alphabet */
    qkv_status s = train_vocab_model(&m, &o, in, 1);
    CHECK(s == QKV_ERR_CONFIG && strstr(qkv_last_error(), "required characters"), "too small: %d '%s'", s,
          qkv_last_error());
    o = qkv_vocab_train_default_options();
    o.vocab_size = 200000; /* more pieces than the text has */
    o.type = QKV_VOCAB_BPE;
    s = train_vocab_model(&m, &o, in, 1);
    CHECK(s == QKV_ERR_CONFIG && strstr(qkv_last_error(), "too high"), "too large: %d '%s'", s, qkv_last_error());
    o.type = QKV_VOCAB_UNIGRAM;
    s = train_vocab_model(&m, &o, in, 1);
    CHECK(s == QKV_ERR_CONFIG && strstr(qkv_last_error(), "too high"), "unigram too large: %d '%s'", s,
          qkv_last_error());
    o = qkv_vocab_train_default_options();
    o.eos_id = 0;
    s = train_vocab_model(&m, &o, in, 1);
    CHECK(s == QKV_ERR_CONFIG && strstr(qkv_last_error(), "both 0"), "same ids: %d '%s'", s, qkv_last_error());
    o = qkv_vocab_train_default_options();
    o.normalization = "nfkc_cf";
    s = train_vocab_model(&m, &o, in, 1);
    CHECK(s == QKV_ERR_CONFIG && strstr(qkv_last_error(), "nfkc_cf"), "normalization: %d '%s'", s, qkv_last_error());
    o = qkv_vocab_train_default_options();
    const char *missing[1] = {"/nonexistent/qkv/train.txt"};
    s = train_vocab_model(&m, &o, missing, 1);
    CHECK(s == QKV_ERR_IO && strstr(qkv_last_error(), "/nonexistent/qkv/train.txt"), "missing file: %d '%s'", s,
          qkv_last_error());
}

static void test_valid_piece_rules(void)
{
    qkv_vocab_train_options o = qkv_vocab_train_default_options();
    struct {
        uint32_t s[4];
        int len, want;
    } cases[] = {
        {{0x2581, 'a', 'b'}, 3, 1},   /* ▁ab */
        {{'a', 0x2581}, 2, 0},        /* ▁ only in front */
        {{'a', '1'}, 2, 0},           /* Latin + digit (Common) */
        {{'1', ',', '0'}, 3, 1},      /* all Common */
        {{0x4E2D, 0x6587}, 2, 1},     /* 中文 */
        {{0x4E2D, 0x30AB}, 2, 1},     /* Han + Katakana: one script for sentencepiece */
        {{0x30AB, 0x30FC}, 2, 1},     /* カー */
        {{'a', 0x4E2D}, 2, 0},        /* Latin + Han */
        {{'e', 0x301}, 2, 1},         /* combining accent inherits */
        {{'a', 0x2585}, 2, 0},        /* ▅ never */
        {{'a', 0x09}, 2, 0},          /* boundary never */
        {{0x3B1, 0x3B2}, 2, 1},       /* Greek */
        {{0x3B1, 'a'}, 2, 0},         /* Greek + Latin */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int got = train_valid_piece(&o, cases[i].s, cases[i].len);
        CHECK(got == cases[i].want, "case %zu (U+%04X U+%04X): valid=%d, expected %d", i, cases[i].s[0],
              cases[i].s[1], got, cases[i].want);
    }
    uint32_t long_piece[17];
    for (int i = 0; i < 17; i++)
        long_piece[i] = 'a';
    CHECK(train_valid_piece(&o, long_piece, 16) && !train_valid_piece(&o, long_piece, 17),
          "max piece length 16 not enforced");
    o.split_digits = 1;
    CHECK(!train_valid_piece(&o, (const uint32_t[]){'1', '2'}, 2) && train_valid_piece(&o, (const uint32_t[]){'7'}, 1),
          "split_digits not enforced");
}


static char *write_tmp(const char *content, size_t len)
{
    static char path[64];
    strcpy(path, "/tmp/qkv_vt_text_XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, content, len) != (ssize_t)len) {
        test_fail(__FILE__, __LINE__, "cannot write a temporary file");
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    close(fd);
    return path;
}

static int find_word(const train_words *w, const char *utf8, int ws_after)
{
    for (int i = 0; i < w->n; i++) {
        char *s = train_utf8_string(w->chars + w->offset[i], (int)(w->offset[i + 1] - w->offset[i]));
        int same = s && !strcmp(s, utf8) && w->ws_after[i] == ws_after;
        free(s);
        if (same)
            return i;
    }
    return -1;
}

/* Words, counts, empty lines and the alphabet's order on a tiny text. */
static void test_corpus_words(void)
{
    static const char text[] = "hello world\r\nhello  there\n\n   \n\tworld\n";
    char *path = write_tmp(text, sizeof text - 1);
    if (!path)
        return;
    qkv_vocab_train_options o = qkv_vocab_train_default_options();
    o.threads = 1;
    train_corpus c;
    const char *in[1] = {path};
    qkv_status s = train_corpus_load(&c, &o, in, 1);
    CHECK(s == QKV_OK, "load: %s", qkv_last_error());
    if (s == QKV_OK) {
        /* empty lines are not read; whitespace-only ones vanish in normalization */
        CHECK(c.n_lines == 4 && c.n_sentences == 3, "%lld lines, %lld sentences; expected 4 and 3", (long long)c.n_lines,
              (long long)c.n_sentences);
        CHECK(c.words.n == 3, "%d distinct (word, follower) pairs, expected 3", c.words.n);
        int a = find_word(&c.words, "\xe2\x96\x81hello", 1), b = find_word(&c.words, "\xe2\x96\x81world", 0),
            d = find_word(&c.words, "\xe2\x96\x81there", 0);
        CHECK(a >= 0 && c.words.freq[a] == 2, "▁hello (followed by ▁): index %d count %lld", a,
              a >= 0 ? (long long)c.words.freq[a] : -1LL);
        CHECK(b >= 0 && c.words.freq[b] == 2, "▁world at the end: index %d count %lld", b,
              b >= 0 ? (long long)c.words.freq[b] : -1LL);
        CHECK(d >= 0 && c.words.freq[d] == 1, "▁there: index %d", d);
        /* l: 6, ▁: 5, e: 4, o: 4 (equal counts: lower code point first) */
        CHECK(c.n_req == 9 && c.req_chars[0] == 'l' && c.req_freq[0] == 6, "%d chars, first U+%04X x%lld", c.n_req,
              c.n_req ? c.req_chars[0] : 0, c.n_req ? (long long)c.req_freq[0] : 0LL);
        CHECK(c.n_req > 3 && c.req_chars[1] == 0x2581 && c.req_chars[2] == 'e' && c.req_chars[3] == 'o',
              "2nd, 3rd chars U+%04X U+%04X",
              c.n_req > 2 ? c.req_chars[1] : 0, c.n_req > 2 ? c.req_chars[2] : 0);
        train_corpus_free(&c);
    }
    unlink(path);
}

/* Invalid UTF-8 is read as U+FFFD (counted), never a crash. */
static void test_invalid_utf8_counted(void)
{
    static const char text[] = "ab\xff\xfe" "cd\nok \xe4\xb8\n\xc0\xaf end\n";
    char *path = write_tmp(text, sizeof text - 1);
    if (!path)
        return;
    qkv_vocab_train_options o = qkv_vocab_train_default_options();
    o.threads = 1;
    train_corpus c;
    const char *in[1] = {path};
    qkv_status s = train_corpus_load(&c, &o, in, 1);
    CHECK(s == QKV_OK, "load: %s", qkv_last_error());
    if (s == QKV_OK) {
        CHECK(c.n_invalid_utf8 == 6, "%lld invalid bytes counted, expected 6", (long long)c.n_invalid_utf8);
        int found = 0;
        for (int i = 0; i < c.n_req; i++)
            found |= c.req_chars[i] == 0xFFFD;
        CHECK(found, "U+FFFD is not in the alphabet");
        train_corpus_free(&c);
    }
    unlink(path);
}

/* Lines over max_sentence_bytes and lines holding the reserved ▅ are skipped. */
static void test_skipped_lines(void)
{
    char text[6000];
    memset(text, 'x', 5000);
    strcpy(text + 5000, "\nshort line\nhas \xe2\x96\x85 reserved\nanother\n");
    char *path = write_tmp(text, strlen(text));
    if (!path)
        return;
    qkv_vocab_train_options o = qkv_vocab_train_default_options();
    o.threads = 1;
    train_corpus c;
    const char *in[1] = {path};
    qkv_status s = train_corpus_load(&c, &o, in, 1);
    CHECK(s == QKV_OK, "load: %s", qkv_last_error());
    if (s == QKV_OK) {
        CHECK(c.n_skipped_long == 1 && c.n_skipped_reserved == 1 && c.n_sentences == 2,
              "skipped %lld long, %lld with U+2585; %lld sentences kept (expected 1, 1, 2)",
              (long long)c.n_skipped_long, (long long)c.n_skipped_reserved, (long long)c.n_sentences);
        train_corpus_free(&c);
    }
    o.max_sentence_bytes = 6000;
    s = train_corpus_load(&c, &o, in, 1);
    CHECK(s == QKV_OK && c.n_skipped_long == 0 && c.n_sentences == 3, "with a 6000-byte limit: %lld long, %lld kept",
          s == QKV_OK ? (long long)c.n_skipped_long : -1LL, s == QKV_OK ? (long long)c.n_sentences : -1LL);
    if (s == QKV_OK)
        train_corpus_free(&c);
    unlink(path);
}

/* --max-sentences keeps exactly that many lines, a different sample per seed. */
static void test_sampling_count(void)
{
    qkv_vocab_train_options o = qkv_vocab_train_default_options();
    o.threads = 1;
    o.max_sentences = 100;
    train_corpus a, b;
    const char *in[1] = {golden("train.txt")};
    qkv_status s = train_corpus_load(&a, &o, in, 1);
    CHECK(s == QKV_OK, "load: %s", qkv_last_error());
    if (s != QKV_OK)
        return;
    o.seed = 2;
    s = train_corpus_load(&b, &o, in, 1);
    CHECK(s == QKV_OK, "load: %s", qkv_last_error());
    if (s == QKV_OK) {
        CHECK(a.n_sentences == 100 && b.n_sentences == 100, "%lld and %lld sentences sampled, expected 100",
              (long long)a.n_sentences, (long long)b.n_sentences);
        CHECK(a.n_lines == 810, "%lld lines seen, expected 810", (long long)a.n_lines);
        CHECK(a.words.n != b.words.n || a.n_req != b.n_req ||
                  memcmp(a.words.chars, b.words.chars, a.words.offset[a.words.n] * sizeof *a.words.chars),
              "seeds 1 and 2 sampled the same sentences");
        train_corpus_free(&b);
    }
    train_corpus_free(&a);
}

/* Chinese without spaces: multi-character Han pieces, never across scripts. */
static void test_chinese_pieces(void)
{
    int n;
    char *data;
    char **lines = read_lines(golden("train.txt"), &n, &data);
    if (!lines)
        return;
    size_t cap = 1 << 16, len = 0;
    char *zh = malloc(cap);
    for (int i = 1; i < n && i < 800; i += 2) { /* odd lines are the Chinese side */
        size_t l = strlen(lines[i]);
        if (len + l + 2 > cap)
            zh = realloc(zh, cap *= 2);
        memcpy(zh + len, lines[i], l);
        len += l;
        zh[len++] = '\n';
    }
    char *path = write_tmp(zh, len);
    free(zh);
    free(lines);
    free(data);
    if (!path)
        return;
    qkv_vocab_train_options o = qkv_vocab_train_default_options();
    o.vocab_size = 1000;
    o.threads = 2;
    spm_model m;
    const char *in[1] = {path};
    qkv_status s = train_vocab_model(&m, &o, in, 1);
    CHECK(s == QKV_OK, "train: %s", qkv_last_error());
    if (s == QKV_OK) {
        int multi_han = 0;
        for (int k = 0; k < m.n_pieces; k++) {
            if (m.pieces[k].type != SPM_NORMAL)
                continue;
            uint32_t *cp;
            int ncp;
            int64_t bad = 0;
            if (train_decode_utf8(m.pieces[k].piece, strlen(m.pieces[k].piece), &cp, &ncp, &bad) != QKV_OK)
                break;
            int off = cp[0] == 0x2581;
            CHECK(train_valid_piece(&o, cp, ncp), "piece %d '%s' breaks the piece rules", k, m.pieces[k].piece);
            int han = ncp - off >= 2;
            for (int j = off; j < ncp; j++)
                han &= train_script(cp[j]) == 2;
            multi_han += han;
            free(cp);
        }
        CHECK(multi_han > 100, "only %d pieces of two or more Han characters", multi_han);
        spm_model_free(&m);
    }
    unlink(path);
}

/* How many of qkv's pieces sentencepiece's own trainer also chose, with the
 * same options on the same text (fixture <name>.spm_pieces). */
static void check_shared_pieces(const char *name, qkv_vocab_train_options o, int min_shared)
{
    spm_model m;
    if (!train(&m, &o))
        return;
    char file[64];
    snprintf(file, sizeof file, "%s.spm_pieces", name);
    int n;
    char *data;
    char **ref = read_lines(golden(file), &n, &data);
    int shared = 0;
    for (int i = 0; ref && i < m.n_pieces; i++)
        for (int k = 0; k < n; k++)
            if (!strcmp(m.pieces[i].piece, ref[k])) {
                shared++;
                break;
            }
    CHECK(ref && n == o.vocab_size, "%d pieces in %s, expected %d", n, file, o.vocab_size);
    CHECK(shared >= min_shared, "%s: only %d of %d pieces shared with sentencepiece's vocabulary (want >= %d)", name,
          shared, m.n_pieces, min_shared);
    free(ref);
    free(data);
    spm_model_free(&m);
}

/* measured: unigram 1181 of 1200, BPE 1200 of 1200 (scripts/golden/vocab_train.py) */
static void test_unigram_pieces_like_sentencepiece(void) { check_shared_pieces("unigram", unigram_options(), 1140); }
static void test_bpe_pieces_like_sentencepiece(void) { check_shared_pieces("bpe", bpe_options(), 1188); }

/* Random bytes (invalid UTF-8, NUL, control characters) train without a
 * crash into a model whose pieces are all non-empty, valid UTF-8 strings. */
static void test_random_bytes_input(void)
{
    qkv_rng r;
    qkv_rng_seed(&r, 99);
    size_t len = 0;
    char *text = malloc(40000);
    for (int line = 0; line < 400; line++) {
        int n = 1 + (int)qkv_rng_below(&r, 60);
        for (int i = 0; i < n; i++) {
            uint64_t kind = qkv_rng_below(&r, 4);
            char ch = kind == 0 ? (char)qkv_rng_below(&r, 256) : kind == 1 ? ' ' : (char)('a' + qkv_rng_below(&r, 6));
            text[len++] = ch == '\n' ? 'n' : ch;
        }
        text[len++] = '\n';
    }
    char *path = write_tmp(text, len);
    free(text);
    if (!path)
        return;
    for (int norm = 0; norm < 2; norm++) {
        qkv_vocab_train_options o = qkv_vocab_train_default_options();
        o.vocab_size = 700;
        o.byte_fallback = 1;
        o.threads = 2;
        o.normalization = norm ? "identity" : "nmt_nfkc";
        spm_model m;
        const char *in[1] = {path};
        qkv_status s = train_vocab_model(&m, &o, in, 1);
        CHECK(s == QKV_OK, "%s: %s", o.normalization, qkv_last_error());
        if (s != QKV_OK)
            continue;
        for (int k = 0; k < m.n_pieces; k++) {
            const char *pc = m.pieces[k].piece;
            size_t pl = strlen(pc), at = 0;
            int ok = pl > 0;
            while (ok && at < pl) {
                size_t used;
                int valid;
                utf8_decode(pc + at, pl - at, &used, &valid);
                ok = valid;
                at += used;
            }
            CHECK(ok, "%s: piece %d is empty or not valid UTF-8", o.normalization, k);
        }
        qkv_vocab *v = load_model(&m);
        CHECK(v != NULL, "%s: the model does not load", o.normalization);
        qkv_vocab_free(v);
        spm_model_free(&m);
    }
    unlink(path);
}

/* A user-defined symbol is cut out of the text: however frequent, no normal
 * piece contains it or spans across it, and it encodes as its own id. */
static void test_user_symbols_cut_out(void)
{
    char text[20000];
    size_t len = 0;
    static const char *const words[] = {"alpha", "beta", "gamma", "delta", "omega"};
    for (int i = 0; i < 300; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "%s<sep>%s <sep> %s\n", words[i % 5],
                                words[(i / 5) % 5], words[(i / 25) % 5]);
    char *path = write_tmp(text, len);
    if (!path)
        return;
    static const char *const syms[] = {"<sep>"};
    qkv_vocab_train_options o = qkv_vocab_train_default_options();
    o.vocab_size = 21;
    o.user_defined_symbols = syms;
    o.n_user_defined_symbols = 1;
    o.threads = 1;
    spm_model m;
    const char *in[1] = {path};
    qkv_status s = train_vocab_model(&m, &o, in, 1);
    CHECK(s == QKV_OK, "train: %s", qkv_last_error());
    if (s == QKV_OK) {
        CHECK(m.pieces[3].type == SPM_USER_DEFINED && !strcmp(m.pieces[3].piece, "<sep>"), "id 3 is '%s' type %d",
              m.pieces[3].piece, m.pieces[3].type);
        for (int k = 0; k < m.n_pieces; k++)
            if (m.pieces[k].type == SPM_NORMAL)
                CHECK(!strstr(m.pieces[k].piece, "sep") && !strchr(m.pieces[k].piece, '<'),
                      "normal piece %d '%s' overlaps the user-defined <sep>", k, m.pieces[k].piece);
        qkv_vocab *v = load_model(&m);
        int *ids = NULL;
        size_t n = 0;
        if (v && qkv_vocab_encode(v, "beta<sep>alpha", 14, &ids, &n, NULL) == QKV_OK) {
            int found = 0;
            for (size_t j = 0; j < n; j++)
                found += ids[j] == 3;
            CHECK(found == 1, "'beta<sep>alpha' encodes to %zu ids with %d <sep>", n, found);
        }
        free(ids);
        qkv_vocab_free(v);
        spm_model_free(&m);
    }
    unlink(path);
}

/* The smallest vocabulary: the alphabet plus the special pieces. */
static void test_minimal_vocab(void)
{
    static const char text[] = "abc cab\nbca abc\n";
    char *path = write_tmp(text, sizeof text - 1);
    if (!path)
        return;
    for (int type = 0; type < 2; type++) {
        qkv_vocab_train_options o = qkv_vocab_train_default_options();
        o.type = type ? QKV_VOCAB_BPE : QKV_VOCAB_UNIGRAM;
        o.vocab_size = 7; /* ▁ a b c + <unk> <s> </s> */
        o.threads = 8;    /* more threads than words */
        spm_model m;
        const char *in[1] = {path};
        qkv_status s = train_vocab_model(&m, &o, in, 1);
        CHECK(s == QKV_OK, "type %d: %s", type, qkv_last_error());
        if (s != QKV_OK)
            continue;
        check_structure(&m, &o, 0);
        qkv_vocab *v = load_model(&m);
        int *ids = NULL;
        size_t n = 0;
        if (v && qkv_vocab_encode(v, "cab", 3, &ids, &n, NULL) == QKV_OK)
            CHECK(n == 4, "type %d: 'cab' gives %zu pieces, expected 4 (▁ c a b)", type, n);
        free(ids);
        qkv_vocab_free(v);
        spm_model_free(&m);
        o.vocab_size = 6;
        s = train_vocab_model(&m, &o, in, 1);
        CHECK(s == QKV_ERR_CONFIG, "type %d: vocab 6 below the alphabet gave %d", type, s);
    }
    unlink(path);
}

/* Special pieces anywhere: the normal pieces fill the other ids in order. */
static void test_special_ids_anywhere(void)
{
    qkv_vocab_train_options o = bpe_options();
    o.unk_id = 10;
    o.bos_id = -1;
    o.eos_id = 1199;
    o.pad_id = 0;
    spm_model m;
    if (!train(&m, &o))
        return;
    check_structure(&m, &o, 0);
    qkv_vocab *v = load_model(&m);
    if (v) {
        CHECK(qkv_vocab_unk_id(v) == 10 && qkv_vocab_eos_id(v) == 1199 && qkv_vocab_pad_id(v) == 0 &&
                  qkv_vocab_bos_id(v) == -1,
              "loaded ids unk %d eos %d pad %d bos %d", qkv_vocab_unk_id(v), qkv_vocab_eos_id(v), qkv_vocab_pad_id(v),
              qkv_vocab_bos_id(v));
        qkv_vocab_free(v);
    }
    /* normal pieces keep their merge order around the specials: scores 0, -1, ... by id */
    int rank = 0;
    for (int k = 0; k < m.n_pieces; k++)
        if (m.pieces[k].type == SPM_NORMAL) {
            CHECK(m.pieces[k].score == (float)-rank, "id %d score %g, expected %d", k, (double)m.pieces[k].score,
                  -rank);
            rank++;
        }
    spm_model_free(&m);
}

/* Several input files read as their concatenation. */
static void test_several_inputs(void)
{
    int n;
    char *data;
    char **lines = read_lines(golden("train.txt"), &n, &data);
    if (!lines)
        return;
    char *paths[2] = {NULL, NULL};
    for (int half = 0; half < 2; half++) {
        size_t len = 0, cap = 1 << 16;
        char *buf = malloc(cap);
        for (int i = half ? n / 2 : 0; i < (half ? n : n / 2); i++) {
            size_t l = strlen(lines[i]);
            if (len + l + 2 > cap)
                buf = realloc(buf, cap *= 2);
            memcpy(buf + len, lines[i], l);
            len += l;
            buf[len++] = '\n';
        }
        char *p = write_tmp(buf, len);
        paths[half] = p ? strdup(p) : NULL;
        free(buf);
    }
    free(lines);
    free(data);
    if (paths[0] && paths[1]) {
        qkv_vocab_train_options o = unigram_options();
        spm_model a, b;
        const char *two[2] = {paths[0], paths[1]};
        if (train(&a, &o)) {
            qkv_status s = train_vocab_model(&b, &o, two, 2);
            CHECK(s == QKV_OK, "two files: %s", qkv_last_error());
            if (s == QKV_OK) {
                uint8_t *x, *y;
                size_t lx, ly;
                CHECK(spm_model_serialize(&a, &x, &lx) == QKV_OK && spm_model_serialize(&b, &y, &ly) == QKV_OK,
                      "serialize: %s", qkv_last_error());
                CHECK(lx == ly && !memcmp(x, y, lx), "one file and the same lines in two files differ (%zu vs %zu bytes)",
                      lx, ly);
                free(x);
                free(y);
                spm_model_free(&b);
            }
            spm_model_free(&a);
        }
    }
    for (int i = 0; i < 2; i++)
        if (paths[i]) {
            unlink(paths[i]);
            free(paths[i]);
        }
}

/* --split-digits: no piece longer than one character holds a digit. */
static void test_split_digits_model(void)
{
    char text[30000];
    size_t len = 0;
    for (int i = 0; i < 400; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "version %d.%d build %d of 2024\n", i % 7, i % 13,
                                1000 + i * 37);
    char *path = write_tmp(text, len);
    if (!path)
        return;
    qkv_vocab_train_options o = qkv_vocab_train_default_options();
    o.vocab_size = 27;
    o.split_digits = 1;
    o.threads = 2;
    spm_model m;
    const char *in[1] = {path};
    qkv_status s = train_vocab_model(&m, &o, in, 1);
    CHECK(s == QKV_OK, "train: %s", qkv_last_error());
    if (s == QKV_OK) {
        CHECK(m.trainer.split_digits == 1, "split_digits not recorded in the trainer spec");
        for (int k = 0; k < m.n_pieces; k++) {
            const char *pc = m.pieces[k].piece;
            if (m.pieces[k].type != SPM_NORMAL || strlen(pc) < 2)
                continue;
            CHECK(!strpbrk(pc, "0123456789"), "piece %d '%s' holds a digit", k, pc);
        }
        spm_model_free(&m);
    }
    unlink(path);
}

static const test_case cases[] = {
    TEST(test_split_digits_model),
    TEST(test_minimal_vocab),
    TEST(test_special_ids_anywhere),
    TEST(test_several_inputs),
    TEST(test_user_symbols_cut_out),
    TEST(test_random_bytes_input),
    TEST(test_unigram_pieces_like_sentencepiece),
    TEST(test_bpe_pieces_like_sentencepiece),
    TEST(test_corpus_words),
    TEST(test_invalid_utf8_counted),
    TEST(test_skipped_lines),
    TEST(test_sampling_count),
    TEST(test_chinese_pieces),
    TEST(test_valid_piece_rules),
    TEST(test_unigram_model_structure),
    TEST(test_bpe_model_structure),
    TEST(test_byte_fallback_never_unk),
    TEST(test_full_coverage_chars),
    TEST(test_sentencepiece_parity_unigram),
    TEST(test_sentencepiece_parity_bpe),
    TEST(test_reproduces_committed_unigram),
    TEST(test_reproduces_committed_bpe),
    TEST(test_deterministic_with_sampling),
    TEST(test_written_model_reads_back),
    TEST(test_options_errors),
};

int main(int argc, char **argv) { return test_main(argc, argv, cases, TEST_COUNT(cases)); }
