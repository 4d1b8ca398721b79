/* The text <-> model-id layer (src/text/tokenizer.c) against transformers'
 * MarianTokenizer (fixtures of scripts/golden/marian.py) and, for qkv's own
 * spm-id mode, against sentencepiece (fixtures of scripts/golden/spm.py). */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/io.h"
#include "test.h"
#include "text/tokenizer.h"

static const char *const FIXTURES[] = {"opus_tiny", "sep_f16"};

static char *golden(const char *rel)
{
    static char buf[4][512];
    static int k;
    char *b = buf[k++ & 3];
    snprintf(b, 512, "%s/%s", test_golden_dir(), rel);
    return b;
}

static int *json_ids(const cJSON *a, size_t *n)
{
    *n = (size_t)cJSON_GetArraySize(a);
    int *ids = malloc((*n ? *n : 1) * sizeof *ids);
    size_t i = 0;
    for (const cJSON *e = a->child; e; e = e->next)
        ids[i++] = (int)e->valuedouble;
    return ids;
}

static void check_ids(const char *what, const char *text, const int *got, size_t ng, const int *want, size_t nw)
{
    size_t i = 0;
    while (i < ng && i < nw && got[i] == want[i])
        i++;
    if (i == ng && i == nw)
        return;
    CHECK(0, "%s \"%s\": ids differ at index %zu (got %d of %zu ids, want %d of %zu)", what, text, i,
          i < ng ? got[i] : -1, ng, i < nw ? want[i] : -1, nw);
}

/* Runs every line of NAME.tokens.jsonl; returns the number of lines of
 * each kind in counts[3]. */
static void run_tokens_fixture(const char *name, int counts[3])
{
    char dir[512], path[512];
    snprintf(dir, sizeof dir, "%s/marian/%s", test_golden_dir(), name);
    snprintf(path, sizeof path, "%s/marian/%s.tokens.jsonl", test_golden_dir(), name);
    qkv_tokenizer *t = NULL;
    qkv_status s = qkv_tokenizer_load_marian(dir, &t);
    CHECK(s == QKV_OK, "load %s: %s", dir, qkv_last_error());
    if (s != QKV_OK)
        return;
    char *data;
    size_t len;
    s = qkv_read_file(path, &data, &len);
    CHECK(s == QKV_OK, "%s", qkv_last_error());
    if (s != QKV_OK) {
        qkv_tokenizer_free(t);
        return;
    }
    int lineno = 0;
    for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) {
        lineno++;
        cJSON *j = cJSON_Parse(line);
        CHECK(j != NULL, "%s:%d: bad JSON", path, lineno);
        if (!j)
            continue;
        const cJSON *text = cJSON_GetObjectItem(j, "text"), *ids = cJSON_GetObjectItem(j, "ids");
        const cJSON *ttext = cJSON_GetObjectItem(j, "target_text"), *dids = cJSON_GetObjectItem(j, "decode_ids");
        size_t nw, ng;
        int *got = NULL;
        if (dids) {
            int *in = json_ids(dids, &nw);
            char *out = NULL;
            s = qkv_tokenizer_decode_target(t, in, nw, &out, &ng);
            CHECK(s == QKV_OK, "%s:%d: decode: %s", path, lineno, qkv_last_error());
            if (s == QKV_OK)
                CHECK(!strcmp(out, text->valuestring) && ng == strlen(out), "%s:%d: decode gives \"%s\", want \"%s\"",
                      path, lineno, out, text->valuestring);
            free(out);
            free(in);
            counts[2]++;
        } else {
            const char *src = ttext ? ttext->valuestring : text->valuestring;
            int *want = json_ids(ids, &nw);
            s = ttext ? qkv_tokenizer_encode_target(t, src, strlen(src), &got, &ng)
                      : qkv_tokenizer_encode_source(t, src, strlen(src), &got, &ng);
            CHECK(s == QKV_OK, "%s:%d: encode: %s", path, lineno, qkv_last_error());
            if (s == QKV_OK)
                check_ids(ttext ? "target" : "source", src, got, ng, want, nw);
            free(got);
            free(want);
            counts[ttext ? 1 : 0]++;
        }
        cJSON_Delete(j);
    }
    free(data);
    qkv_tokenizer_free(t);
}

static void test_marian_ids_match_transformers(void)
{
    for (int f = 0; f < 2; f++) {
        int counts[3] = {0, 0, 0};
        run_tokens_fixture(FIXTURES[f], counts);
        /* the fixture must hold what it promises: >= 50 sentences */
        CHECK(counts[0] >= 50 && counts[1] >= 10 && counts[2] >= 20, "%s: only %d/%d/%d cases", FIXTURES[f],
              counts[0], counts[1], counts[2]);
    }
}

static void test_marian_special_ids(void)
{
    qkv_tokenizer *t;
    qkv_status s = qkv_tokenizer_load_marian(golden("marian/opus_tiny"), &t);
    CHECK(s == QKV_OK, "%s", qkv_last_error());
    if (s != QKV_OK)
        return;
    /* OPUS-MT layout: </s> 0, <unk> 1, <pad> last and the decoder start */
    int V = qkv_tokenizer_src_vocab_size(t);
    CHECK(qkv_tokenizer_eos_id(t) == 0, "eos %d", qkv_tokenizer_eos_id(t));
    CHECK(qkv_tokenizer_unk_id(t) == 1, "unk %d", qkv_tokenizer_unk_id(t));
    CHECK(qkv_tokenizer_pad_id(t) == V - 1, "pad %d, V %d", qkv_tokenizer_pad_id(t), V);
    CHECK(qkv_tokenizer_decoder_start_id(t) == V - 1, "start %d", qkv_tokenizer_decoder_start_id(t));
    CHECK(qkv_tokenizer_tgt_vocab_size(t) == V && qkv_tokenizer_shared_vocab(t) && qkv_tokenizer_is_marian(t),
          "joint vocabulary expected");
    CHECK(!strcmp(qkv_tokenizer_target_piece(t, 0), "</s>"), "piece 0 is %s", qkv_tokenizer_target_piece(t, 0));
    CHECK(qkv_tokenizer_target_piece(t, V) == NULL && qkv_tokenizer_target_piece(t, -1) == NULL, "out of range");
    /* an id no piece has reads "<unk>" literally, as _convert_id_to_token */
    int ids[] = {V + 5, 0};
    char *out;
    s = qkv_tokenizer_decode_target(t, ids, 2, &out, NULL);
    CHECK(s == QKV_OK && !strcmp(out, "<unk>"), "decode of an unmapped id: \"%s\"", s == QKV_OK ? out : "");
    if (s == QKV_OK)
        free(out);
    /* invalid UTF-8 and lone code markers encode (as U+FFFD / pieces), eos last */
    static const char *const odd[] = {"\xff\xfe abc \xe4\xb8", ">>", ">><<", ">>x<", "<<>>a<<", "\n>>a\n<<"};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        int *enc;
        size_t n;
        s = qkv_tokenizer_encode_source(t, odd[i], strlen(odd[i]), &enc, &n);
        CHECK(s == QKV_OK && n >= 1 && enc[n - 1] == 0, "odd input %zu: %s", i, s == QKV_OK ? "no eos" : qkv_last_error());
        if (s == QKV_OK)
            free(enc);
    }
    qkv_tokenizer_free(t);

    s = qkv_tokenizer_load_marian(golden("marian/sep_f16"), &t);
    CHECK(s == QKV_OK, "%s", qkv_last_error());
    if (s != QKV_OK)
        return;
    CHECK(!qkv_tokenizer_shared_vocab(t), "sep_f16 has separate vocabularies");
    CHECK(qkv_tokenizer_pad_id(t) == 2 && qkv_tokenizer_decoder_start_id(t) == 2, "pad %d", qkv_tokenizer_pad_id(t));
    CHECK(qkv_tokenizer_src_vocab_size(t) != qkv_tokenizer_tgt_vocab_size(t), "sizes %d %d",
          qkv_tokenizer_src_vocab_size(t), qkv_tokenizer_tgt_vocab_size(t));
    qkv_tokenizer_free(t);
}

/* ---- hand-made directories ------------------------------------------------ */

static void copy_file(const char *from, const char *to)
{
    char *data;
    size_t len;
    if (qkv_read_file(from, &data, &len) == QKV_OK) {
        CHECK(qkv_write_file(to, data, len) == QKV_OK, "write %s", to);
        free(data);
    }
}

static void put_file(const char *dir, const char *name, const char *text)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    CHECK(qkv_write_file(p, text, strlen(text)) == QKV_OK, "write %s", p);
}

/* A directory with opus_tiny's spm models and the given vocab.json. */
static char *make_dir(const char *vocab_json)
{
    static char dir[64];
    strcpy(dir, "/tmp/qkv_tok_XXXXXX");
    if (!mkdtemp(dir))
        return NULL;
    char p[1024];
    snprintf(p, sizeof p, "%s/source.spm", dir);
    copy_file(golden("marian/opus_tiny/source.spm"), p);
    snprintf(p, sizeof p, "%s/target.spm", dir);
    copy_file(golden("marian/opus_tiny/target.spm"), p);
    if (vocab_json)
        put_file(dir, "vocab.json", vocab_json);
    return dir;
}

static void expect_error(const char *dir, qkv_status want, const char *needle)
{
    qkv_tokenizer *t = (qkv_tokenizer *)1;
    qkv_status s = qkv_tokenizer_load_marian(dir, &t);
    CHECK(s == want, "status %s, want %s (%s)", qkv_status_name(s), qkv_status_name(want), qkv_last_error());
    CHECK(t == NULL, "out pointer not cleared");
    CHECK(strstr(qkv_last_error(), needle) != NULL, "message \"%s\" lacks \"%s\"", qkv_last_error(), needle);
    if (s == QKV_OK)
        qkv_tokenizer_free(t);
}

static void test_marian_malformed_vocab(void)
{
    char *dir = make_dir(NULL);
    CHECK(dir != NULL, "mkdtemp");
    if (!dir)
        return;
    expect_error(dir, QKV_ERR_IO, "vocab.json");
    put_file(dir, "vocab.json", "{\"</s>\": 0, \"<pad>\": 1, \"a\": 2}");
    expect_error(dir, QKV_ERR_FORMAT, "<unk>");
    put_file(dir, "vocab.json", "{\"</s>\": 0, \"<unk>\": 1, \"a\": 2}");
    expect_error(dir, QKV_ERR_FORMAT, "<pad>");
    put_file(dir, "vocab.json", "{\"</s>\": 0, \"<unk>\": 1, \"<pad>\": 2.5}");
    expect_error(dir, QKV_ERR_FORMAT, "\"<pad>\": expected a non-negative integer id");
    put_file(dir, "vocab.json", "{\"</s>\": 0, \"<unk>\": -1, \"<pad>\": 2}");
    expect_error(dir, QKV_ERR_FORMAT, "<unk>");
    put_file(dir, "vocab.json", "{\"</s>\": 0, \"<unk>\": 1,");
    expect_error(dir, QKV_ERR_FORMAT, "invalid JSON");
    put_file(dir, "vocab.json", "[1, 2]");
    expect_error(dir, QKV_ERR_FORMAT, "expected a JSON object");
    put_file(dir, "vocab.json", "{\"</s>\": 0, \"<unk>\": 1, \"<pad>\": 2}");
    put_file(dir, "tokenizer_config.json", "{\"separate_vocabs\": true}");
    expect_error(dir, QKV_ERR_IO, "target_vocab.json");
    put_file(dir, "tokenizer_config.json", "{\"separate_vocabs\": \"yes\"}");
    expect_error(dir, QKV_ERR_FORMAT, "separate_vocabs");
    test_rm_dir(dir);
}

/* Language codes and added tokens, on a hand-made vocabulary:
 * ids follow vocab.json, not the spm. */
static void test_marian_language_code_and_added_tokens(void)
{
    char *dir = make_dir("{\"</s>\": 0, \"<unk>\": 1, \">>zho<<\": 2, \"\\u2581the\": 3, \"\\u2581file\": 4, "
                         "\"<pad>\": 5}");
    CHECK(dir != NULL, "mkdtemp");
    if (!dir)
        return;
    put_file(dir, "tokenizer_config.json", "{\"clean_up_tokenization_spaces\": false, \"added_tokens_decoder\": "
                                           "{\"6\": {\"content\": \"<sep>\"}}}");
    qkv_tokenizer *t;
    qkv_status s = qkv_tokenizer_load_marian(dir, &t);
    CHECK(s == QKV_OK, "%s", qkv_last_error());
    if (s == QKV_OK) {
        static const struct {
            const char *text;
            int ids[8], n;
        } cases[] = {
            {">>zho<< the file", {2, 3, 4, 0}, 4},
            {"the >>zho<< file", {3, 4, 0}, 3}, /* removed, not a token, away from the start */
            {">>fr<< the", {1, 3, 0}, 3},       /* unknown code: <unk> */
            {"the</s>file", {3, 0, 4, 0}, 4},    /* added tokens are split out first */
            {"the <pad> file", {3, 5, 4, 0}, 4},
            {"", {0}, 1},
        };
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            int *ids;
            size_t n;
            s = qkv_tokenizer_encode_source(t, cases[c].text, strlen(cases[c].text), &ids, &n);
            CHECK(s == QKV_OK, "%s", qkv_last_error());
            if (s == QKV_OK) {
                check_ids("source", cases[c].text, ids, n, cases[c].ids, (size_t)cases[c].n);
                free(ids);
            }
        }
        /* no clean-up: " ." stays; <unk> (1) is skipped like eos and pad */
        int ids[] = {5, 3, 1, 4, 0, 5};
        char *out;
        s = qkv_tokenizer_decode_target(t, ids, 6, &out, NULL);
        CHECK(s == QKV_OK && !strcmp(out, "the file"), "decode: \"%s\"", s == QKV_OK ? out : qkv_last_error());
        if (s == QKV_OK)
            free(out);
        qkv_tokenizer_free(t);
    }
    test_rm_dir(dir);
}


/* transformers' decode on a hand-made vocabulary (expected strings printed
 * by MarianTokenizer 4.39 on this directory): clean_up_tokenization on and
 * off, pieces the target spm lacks (kept as written, U+2581 -> space), an
 * id without a piece ("<unk>" literally, then a space). */
static void test_marian_decode_cleanup(void)
{
    char *dir = make_dir("{\"</s>\": 0, \"<unk>\": 1, \"\\u2581it\": 2, \"'s\": 3, \"\\u2581,\": 4, "
                         "\"\\u2581.\": 5, \"\\u2581don\": 6, \"\\u2581n't\": 7, \"\\u2581'\": 8, "
                         "\"\\u2581?\": 9, \"\\u2581x\\u2581y\": 10, \"<pad>\": 11}");
    CHECK(dir != NULL, "mkdtemp");
    if (!dir)
        return;
    static const struct {
        int ids[4], n;
        const char *clean, *raw;
    } cases[] = {
        {{2, 3, 4, 5}, 4, "it's,.", "it's , ."},
        {{6, 7, 9}, 3, "donn't?", "don n't ?"},
        {{2, 8, 2, 5}, 4, "it'it.", "it ' it ."},
        {{10, 11, 2, 0}, 4, "x y it", "x y it"},
        {{2, 40, 5}, 3, "it<unk> .", "it<unk>  ."},
        {{5, 5}, 2, "..", ". ."},
    };
    for (int cleanup = 1; cleanup >= 0; cleanup--) {
        put_file(dir, "tokenizer_config.json",
                 cleanup ? "{\"clean_up_tokenization_spaces\": true}" : "{\"clean_up_tokenization_spaces\": false}");
        qkv_tokenizer *t;
        qkv_status s = qkv_tokenizer_load_marian(dir, &t);
        CHECK(s == QKV_OK, "%s", qkv_last_error());
        if (s != QKV_OK)
            continue;
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            char *out;
            const char *want = cleanup ? cases[c].clean : cases[c].raw;
            s = qkv_tokenizer_decode_target(t, cases[c].ids, (size_t)cases[c].n, &out, NULL);
            CHECK(s == QKV_OK && !strcmp(out, want), "case %zu cleanup %d: \"%s\", want \"%s\"", c, cleanup,
                  s == QKV_OK ? out : qkv_last_error(), want);
            if (s == QKV_OK)
                free(out);
        }
        qkv_tokenizer_free(t);
    }
    test_rm_dir(dir);
}

/* ---- spm-id mode: qkv's own checkpoints ------------------------------------ */

static void test_spm_mode_matches_sentencepiece(void)
{
    qkv_tokenizer *t;
    qkv_status s = qkv_tokenizer_load_spm(golden("spm/uni_1000.model"), NULL, &t);
    CHECK(s == QKV_OK, "%s", qkv_last_error());
    if (s != QKV_OK)
        return;
    CHECK(!qkv_tokenizer_is_marian(t) && qkv_tokenizer_shared_vocab(t), "spm mode, one model");
    int eos = qkv_tokenizer_eos_id(t);
    CHECK(eos >= 0, "uni_1000 has an eos piece");
    char *text, *ids_txt, *dec;
    size_t a, b, c;
    s = qkv_read_file(golden("spm/test.txt"), &text, &a);
    CHECK(s == QKV_OK, "%s", qkv_last_error());
    s = qkv_read_file(golden("spm/uni_1000.ids"), &ids_txt, &b);
    CHECK(s == QKV_OK, "%s", qkv_last_error());
    s = qkv_read_file(golden("spm/uni_1000.decoded"), &dec, &c);
    CHECK(s == QKV_OK, "%s", qkv_last_error());
    if (test_failures()) {
        qkv_tokenizer_free(t);
        return;
    }
    char *tp = text, *ip = ids_txt, *dp = dec;
    int lines = 0;
    while (*tp && *ip && *dp) {
        char *te = strchr(tp, '\n'), *ie = strchr(ip, '\n'), *de = strchr(dp, '\n');
        if (!te || !ie || !de)
            break;
        *te = *ie = *de = 0;
        int want[8192];
        size_t nw = 0;
        for (char *q = ip; *q && nw < 8191;) {
            want[nw++] = (int)strtol(q, &q, 10);
            while (*q == ' ')
                q++;
        }
        want[nw++] = eos;
        int *got;
        size_t ng;
        s = qkv_tokenizer_encode_source(t, tp, (size_t)(te - tp), &got, &ng);
        CHECK(s == QKV_OK, "%s", qkv_last_error());
        if (s == QKV_OK) {
            check_ids("spm source", tp, got, ng, want, nw);
            char *out;
            s = qkv_tokenizer_decode_target(t, got, ng, &out, NULL);
            CHECK(s == QKV_OK && !strcmp(out, dp), "line %d: decode \"%s\", want \"%s\"", lines + 1,
                  s == QKV_OK ? out : qkv_last_error(), dp);
            if (s == QKV_OK)
                free(out);
            free(got);
        }
        lines++;
        tp = te + 1, ip = ie + 1, dp = de + 1;
    }
    CHECK(lines >= 50, "only %d lines compared", lines);
    int bad = 100000;
    char *out = NULL;
    s = qkv_tokenizer_decode_target(t, &bad, 1, &out, NULL);
    CHECK(s == QKV_ERR_ARG, "an id out of range must fail, got %s", qkv_status_name(s));
    free(out);
    free(text);
    free(ids_txt);
    free(dec);
    qkv_tokenizer_free(t);
    s = qkv_tokenizer_load_spm("/nonexistent/x.model", NULL, &t);
    CHECK(s == QKV_ERR_IO && t == NULL, "missing model: %s", qkv_status_name(s));
}

static const test_case cases[] = {
    TEST(test_marian_ids_match_transformers),
    TEST(test_marian_special_ids),
    TEST(test_marian_malformed_vocab),
    TEST(test_marian_language_code_and_added_tokens),
    TEST(test_marian_decode_cleanup),
    TEST(test_spm_mode_matches_sentencepiece),
};

int main(int argc, char **argv) { return test_main(argc, argv, cases, TEST_COUNT(cases)); }
