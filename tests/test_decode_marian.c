/* Decoding parity with transformers' generate() (4.39) on the Marian
 * fixture of scripts/golden/marian.py: a random-weight MarianMTModel
 * directory and, per setting (greedy; beams 4 and 5; length penalties 0.6
 * and 1.0; early stopping; no-repeat-n-gram 3; min and max length) and per
 * sentence, generate()'s output ids and score. The directory's generation
 * defaults (num_beams 4, max_length 40, bad_words_ids [[pad]], forced EOS)
 * apply as they do in generate(); the settings' arguments override them.
 * All sentences of a setting are decoded as one batch (sorted, compacted),
 * so this also checks batching against transformers' one-at-a-time runs. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/io.h"
#include "decode/translator.h"
#include "model/model.h"
#include "test.h"

typedef struct {
    char setting[64];
    char *text;
    cJSON *args;
    int *src, n_src, *out, n_out;
    double score;
} record;

static int ids_of(const cJSON *a, int **ids)
{
    int n = cJSON_GetArraySize(a);
    *ids = malloc((size_t)(n > 0 ? n : 1) * sizeof(int));
    for (int i = 0; i < n; i++)
        (*ids)[i] = cJSON_GetArrayItem(a, i)->valueint;
    return n;
}

static int load_records(const char *path, record **out)
{
    char *data;
    size_t len;
    if (qkv_read_file(path, &data, &len) != QKV_OK)
        return -1;
    int n = 0, cap = 0;
    record *r = NULL;
    for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        if (!j)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            r = realloc(r, (size_t)cap * sizeof *r);
        }
        record *x = &r[n++];
        snprintf(x->setting, sizeof x->setting, "%s", cJSON_GetObjectItem(j, "setting")->valuestring);
        x->args = cJSON_Duplicate(cJSON_GetObjectItem(j, "args"), 1);
        x->n_src = ids_of(cJSON_GetObjectItem(j, "src"), &x->src);
        x->n_out = ids_of(cJSON_GetObjectItem(j, "out"), &x->out);
        x->score = cJSON_GetObjectItem(j, "score")->valuedouble;
        const cJSON *tx = cJSON_GetObjectItem(j, "text");
        x->text = strdup(cJSON_IsString(tx) ? tx->valuestring : "");
        cJSON_Delete(j);
    }
    free(data);
    *out = r;
    return n;
}

static void apply_args(qkv_translate_options *o, const cJSON *args)
{
    const cJSON *v;
    if ((v = cJSON_GetObjectItem(args, "num_beams")))
        o->beam_size = v->valueint;
    if ((v = cJSON_GetObjectItem(args, "length_penalty")))
        o->length_penalty = (float)v->valuedouble;
    if ((v = cJSON_GetObjectItem(args, "early_stopping")))
        o->early_stopping = cJSON_IsTrue(v) ? QKV_EARLY_STOPPING_TRUE : QKV_EARLY_STOPPING_HEURISTIC;
    if ((v = cJSON_GetObjectItem(args, "no_repeat_ngram_size")))
        o->no_repeat_ngram_size = v->valueint;
    if ((v = cJSON_GetObjectItem(args, "min_length")))
        o->min_length = v->valueint;
    if ((v = cJSON_GetObjectItem(args, "max_length")))
        o->max_length = v->valueint;
    if ((v = cJSON_GetObjectItem(args, "repetition_penalty")))
        o->repetition_penalty = (float)v->valuedouble;
}

static void generate_parity(const char *name)
{
    char dir[512], path[512];
    snprintf(dir, sizeof dir, "%s/marian/%s", test_golden_dir(), name);
    snprintf(path, sizeof path, "%s/marian/%s.generate.jsonl", test_golden_dir(), name);
    record *rec = NULL;
    int n = load_records(path, &rec);
    CHECK(n >= 50 * 12, "%s: %d records, expected 12 settings x >= 50 sentences", path, n);
    if (n <= 0)
        return;
    qkv_translator *t = NULL;
    CHECK(qkv_translator_load(dir, &t) == QKV_OK, "%s", qkv_last_error());
    if (!t)
        goto done;
    int eos = qkv_model_get_config(t->model)->eos_id, settings = 0, total_ok = 0;
    double worst = 0;
    for (int i0 = 0; i0 < n;) {
        int i1 = i0;
        while (i1 < n && !strcmp(rec[i1].setting, rec[i0].setting))
            i1++;
        int m = i1 - i0;
        settings++;
        qkv_translate_options o = qkv_translator_default_options(t);
        apply_args(&o, rec[i0].args);
        o.batch_size = 16;
        search_params p;
        int *owned = NULL;
        CHECK(translator_resolve(t, &o, NULL, 0, &p, &owned) == QKV_OK, "%s: %s", rec[i0].setting, qkv_last_error());
        const int **src = malloc((size_t)m * sizeof *src);
        int *len = malloc((size_t)m * sizeof *len);
        for (int k = 0; k < m; k++) {
            src[k] = rec[i0 + k].src;
            len[k] = rec[i0 + k].n_src;
        }
        search_result *res = calloc((size_t)m, sizeof *res);
        CHECK(search_run(t->model, &p, src, len, m, res) == QKV_OK, "%s: %s", rec[i0].setting, qkv_last_error());
        int mismatches = 0, score_bad = 0;
        double setting_worst = 0;
        for (int k = 0; k < m; k++) {
            const record *r = &rec[i0 + k];
            if (res[k].n_hyps < 1) {
                CHECK(0, "%s sentence %d: no hypothesis", r->setting, k);
                continue;
            }
            const search_hyp *h = &res[k].hyps[0];
            /* generate(): decoder start, the ids, EOS when it ended */
            int want_n = r->n_out - 1, want_ended = want_n > 0 && r->out[r->n_out - 1] == eos;
            want_n -= want_ended;
            int d = 0;
            while (d < want_n && d < h->n && h->ids[d] == r->out[1 + d])
                d++;
            int same = h->n == want_n && d == want_n && h->ended == want_ended;
            if (!same && mismatches++ < 5)
                CHECK(0, "%s sentence %d: %d ids (ended %d), generate() %d (ended %d); first difference at %d: %d vs %d",
                      r->setting, k, h->n, h->ended, want_n, want_ended, d, d < h->n ? h->ids[d] : -1,
                      d < want_n ? r->out[1 + d] : -1);
            double got = p.beam_size > 1 ? h->score : h->logprob;
            if (same && fabs(got - r->score) > worst)
                worst = fabs(got - r->score);
            if (same && fabs(got - r->score) > setting_worst)
                setting_worst = fabs(got - r->score);
            if (same && fabs(got - r->score) > 1e-4) {
                score_bad++;
                CHECK(0, "%s sentence %d: score %.7f, generate() %.7f (tolerance 1e-4)", r->setting, k, got,
                      r->score);
                same = 0;
            }
            total_ok += same;
        }
        CHECK(mismatches == 0, "%s: %d of %d sentences differ", rec[i0].setting, mismatches, m);
        if (mismatches || score_bad)
            printf("# %s %s: %d of %d differ in ids, %d more in score (largest score difference %.3g)\n", name,
                   rec[i0].setting, mismatches, m, score_bad, setting_worst);
        search_results_free(res, m);
        free(res);
        free(src);
        free(len);
        free(owned);
        i0 = i1;
    }
    CHECK(settings == 12, "%d settings in the fixture, expected 12", settings);
    CHECK(total_ok == n, "%d of %d (setting, sentence) pairs agree with generate()", total_ok, n);
    printf("# %s: %d of %d (setting, sentence) pairs equal to generate(); largest score difference %.2g\n", name,
           total_ok, n, worst);
done:
    qkv_translator_free(t);
    for (int i = 0; i < n; i++) {
        cJSON_Delete(rec[i].args);
        free(rec[i].text);
        free(rec[i].src);
        free(rec[i].out);
    }
    free(rec);
}

/* `qkv translate -m DIR` without options follows the directory's
 * generation defaults (num_beams 4, max_length 40, bad words, forced EOS):
 * its lines equal generate()'s decoded beam-4 outputs, text for text
 * (tokenization, search and detokenization end to end). */
static void test_cli_marian_defaults(void)
{
    char dir[512], path[512], sent[512], cmd[2048];
    snprintf(dir, sizeof dir, "%s/marian/opus_tiny", test_golden_dir());
    snprintf(path, sizeof path, "%s/marian/opus_tiny.generate.jsonl", test_golden_dir());
    snprintf(sent, sizeof sent, "%s/marian/sentences.txt", test_golden_dir());
    record *rec = NULL;
    int n = load_records(path, &rec), k = 0;
    const char *bin = getenv("QKV_BIN") ? getenv("QKV_BIN") : "./qkv";
    snprintf(cmd, sizeof cmd, "%s translate -m %s --input %s", bin, dir, sent);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL, "cannot run '%s'", cmd);
    if (!p)
        n = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int mism = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(rec[i].setting, "beam4"))
            continue;
        if ((len = getline(&line, &cap, p)) < 0) {
            CHECK(0, "'%s' ended after %d lines", cmd, k);
            break;
        }
        if (len > 0 && line[len - 1] == '\n')
            line[len - 1] = 0;
        if (strcmp(line, rec[i].text) && mism++ < 5)
            CHECK(0, "line %d: qkv '%s', generate() '%s'", k + 1, line, rec[i].text);
        k++;
    }
    CHECK(k >= 50 && mism == 0, "%d lines compared, %d differ", k, mism);
    if (p)
        CHECK(pclose(p) == 0, "'%s' failed", cmd);
    free(line);
    for (int i = 0; i < n; i++) {
        cJSON_Delete(rec[i].args);
        free(rec[i].text);
        free(rec[i].src);
        free(rec[i].out);
    }
    free(rec);
}

/* OPUS-MT's layout: joint vocabulary, tied embeddings, swish, F32. */
static void test_generate_parity_opus_tiny(void) { generate_parity("opus_tiny"); }

/* Another shape: encoder and decoder differ in heads, FFN and layers;
 * separate vocabularies, untied embeddings, gelu, F16 weights,
 * generation_config.json overriding config.json. */
static void test_generate_parity_sep_f16(void) { generate_parity("sep_f16"); }

static const test_case cases[] = {
    TEST(test_generate_parity_opus_tiny),
    TEST(test_generate_parity_sep_f16),
    TEST(test_cli_marian_defaults),
};

int main(int argc, char **argv) { return test_main(argc, argv, cases, TEST_COUNT(cases)); }
