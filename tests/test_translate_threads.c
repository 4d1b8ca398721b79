/* One translator, many calls and threads: qkv_translate from several
 * threads at once on ONE translator gives what generate() gave on the
 * Marian fixture (tests/golden/marian/opus_tiny, its beam-4 defaults), line
 * for line, whatever the order and size of the calls; the decoder weights
 * are packed once for all of them; a state reused after bigger and
 * smaller calls decodes as a new one. */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/io.h"
#include "decode/translator.h"
#include "model/model.h"
#include "test.h"

#define N_THREADS 4
#define MAX_LINES 128

static char *want[MAX_LINES]; /* generate()'s beam-4 text per sentence */
static char *lines[MAX_LINES];
static int n_lines;

/* sentences.txt and the beam4 records of opus_tiny.generate.jsonl, in order */
static int load_fixture(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/marian/opus_tiny.generate.jsonl", test_golden_dir());
    char *data;
    size_t len;
    if (qkv_read_file(path, &data, &len) != QKV_OK)
        return 0;
    int n = 0;
    for (char *line = strtok(data, "\n"); line && n < MAX_LINES; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        if (!j)
            continue;
        const cJSON *set = cJSON_GetObjectItem(j, "setting"), *tx = cJSON_GetObjectItem(j, "text");
        if (cJSON_IsString(set) && !strcmp(set->valuestring, "beam4") && cJSON_IsString(tx))
            want[n++] = strdup(tx->valuestring);
        cJSON_Delete(j);
    }
    free(data);
    snprintf(path, sizeof path, "%s/marian/sentences.txt", test_golden_dir());
    if (qkv_read_file(path, &data, &len) != QKV_OK)
        return 0;
    int k = 0;
    for (char *p = data; *p && k < MAX_LINES;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = 0;
        lines[k++] = strdup(p);
        if (!nl)
            break;
        p = nl + 1;
    }
    free(data);
    n_lines = k < n ? k : n;
    return n_lines;
}

static void free_fixture(void)
{
    for (int i = 0; i < MAX_LINES; i++) {
        free(want[i]);
        free(lines[i]);
        want[i] = lines[i] = NULL;
    }
}

typedef struct {
    const qkv_translator *t;
    int id;
    char *got[MAX_LINES]; /* this thread's text per sentence */
    int errors;
    char err[256];
} job;

/* Each thread: every sentence alone, starting at a different one, then
 * all of them in one call of batch 16 (the second pass overwrites the
 * first only where they agree; a disagreement is counted). */
static void *worker(void *arg)
{
    job *j = arg;
    qkv_translate_options o = qkv_translator_default_options(j->t);
    for (int k = 0; k < n_lines; k++) {
        int i = (k + j->id * 7) % n_lines;
        const char *in[1] = {lines[i]};
        qkv_translation *r;
        if (qkv_translate(j->t, in, 1, &o, &r) != QKV_OK) {
            snprintf(j->err, sizeof j->err, "sentence %d: %s", i, qkv_last_error());
            j->errors++;
            return NULL;
        }
        j->got[i] = strdup(r[0].n_hyps ? r[0].hyps[0].text : "");
        qkv_translations_free(r, 1);
    }
    o.batch_size = 16;
    qkv_translation *r;
    if (qkv_translate(j->t, (const char *const *)lines, n_lines, &o, &r) != QKV_OK) {
        snprintf(j->err, sizeof j->err, "all sentences: %s", qkv_last_error());
        j->errors++;
        return NULL;
    }
    for (int i = 0; i < n_lines; i++)
        if (strcmp(j->got[i], r[i].n_hyps ? r[i].hyps[0].text : "")) {
            if (!j->errors)
                snprintf(j->err, sizeof j->err, "sentence %d: alone '%s', in a batch '%s'", i, j->got[i],
                         r[i].n_hyps ? r[i].hyps[0].text : "");
            j->errors++;
        }
    qkv_translations_free(r, n_lines);
    return NULL;
}

static void test_threads_share_one_translator(void)
{
    CHECK(load_fixture() >= 50, "fixture: %d sentences with beam-4 references, expected >= 50", n_lines);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/marian/opus_tiny", test_golden_dir());
    qkv_translator *t = NULL;
    CHECK(qkv_translator_load(dir, &t) == QKV_OK, "%s", qkv_last_error());
    if (!t || n_lines == 0) {
        qkv_translator_free(t);
        free_fixture();
        return;
    }
    long packs0 = model_decoder_pack_count();
    static job jobs[N_THREADS];
    pthread_t th[N_THREADS];
    for (int k = 0; k < N_THREADS; k++) {
        memset(&jobs[k], 0, sizeof jobs[k]);
        jobs[k].t = t;
        jobs[k].id = k;
        CHECK(pthread_create(&th[k], NULL, worker, &jobs[k]) == 0, "cannot start thread %d", k);
    }
    for (int k = 0; k < N_THREADS; k++)
        pthread_join(th[k], NULL);
    for (int k = 0; k < N_THREADS; k++) {
        job *j = &jobs[k];
        CHECK(j->errors == 0, "thread %d: %d errors, first: %s", k, j->errors, j->err);
        int diff = 0;
        for (int i = 0; i < n_lines; i++) {
            const char *g = j->got[i] ? j->got[i] : "(none)";
            if (strcmp(g, want[i]) && diff++ < 3)
                CHECK(0, "thread %d sentence %d: '%s', generate() '%s'", k, i, g, want[i]);
            free(j->got[i]);
        }
        CHECK(diff == 0, "thread %d: %d of %d sentences differ from generate()", k, diff, n_lines);
    }
    long packs = model_decoder_pack_count() - packs0;
    CHECK(packs == 1, "%ld packings of the decoder weights for %d calls in %d threads, expected 1", packs,
          N_THREADS * (n_lines + 1), N_THREADS);
    qkv_translator_free(t);
    free_fixture();
}

/* One translator, calls of changing shape (greedy, beam 5, sampling; one
 * sentence, all of them, one again): each equals the same call on a fresh
 * translator, ids and scores to the bit. */
static void test_reused_state_equals_fresh(void)
{
    CHECK(load_fixture() >= 50, "fixture: %d sentences", n_lines);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/marian/opus_tiny", test_golden_dir());
    qkv_translator *t = NULL;
    CHECK(qkv_translator_load(dir, &t) == QKV_OK, "%s", qkv_last_error());
    if (!t || n_lines == 0) {
        qkv_translator_free(t);
        free_fixture();
        return;
    }
    struct {
        int beam, sample, n, first;
    } calls[] = {{1, 0, 1, 3}, {5, 0, 0, 0}, {1, 0, 1, 3}, {1, 1, 0, 0}, {4, 0, 2, 10}, {5, 0, 1, 20}, {1, 1, 3, 5}};
    for (size_t c = 0; c < sizeof calls / sizeof calls[0]; c++) {
        int n = calls[c].n ? calls[c].n : n_lines, first = calls[c].first;
        qkv_translate_options o = qkv_translator_default_options(t);
        o.beam_size = calls[c].beam;
        o.n_best = calls[c].sample ? 0 : 1;
        o.sample = calls[c].sample;
        o.num_samples = calls[c].sample ? 3 : 1;
        o.top_k = 10;
        o.batch_size = 8;
        qkv_translator *fresh = NULL;
        qkv_translation *got = NULL, *ref = NULL;
        CHECK(qkv_translator_load(dir, &fresh) == QKV_OK, "%s", qkv_last_error());
        CHECK(qkv_translate(t, (const char *const *)lines + first, n, &o, &got) == QKV_OK, "call %zu: %s", c,
              qkv_last_error());
        if (fresh)
            CHECK(qkv_translate(fresh, (const char *const *)lines + first, n, &o, &ref) == QKV_OK, "call %zu: %s",
                  c, qkv_last_error());
        for (int i = 0; got && ref && i < n; i++) {
            CHECK(got[i].n_hyps == ref[i].n_hyps, "call %zu sentence %d: %d hypotheses, fresh %d", c, i,
                  got[i].n_hyps, ref[i].n_hyps);
            for (int h = 0; h < got[i].n_hyps && h < ref[i].n_hyps; h++) {
                const qkv_hypothesis *a = &got[i].hyps[h], *b = &ref[i].hyps[h];
                int same = a->n_ids == b->n_ids && !memcmp(a->ids, b->ids, (size_t)a->n_ids * sizeof(int)) &&
                           a->score == b->score && a->logprob == b->logprob;
                CHECK(same, "call %zu sentence %d hyp %d: '%s' (%d ids, score %.9g), fresh translator '%s' (%d ids, "
                      "score %.9g)", c, i, h, a->text, a->n_ids, a->score, b->text, b->n_ids, b->score);
            }
        }
        qkv_translations_free(got, n);
        qkv_translations_free(ref, n);
        qkv_translator_free(fresh);
    }
    qkv_translator_free(t);
    free_fixture();
}

/* Batches of few rows, or many batches, go to a context's threads one batch
 * each: a 2- and a 3-thread translator give the 1-thread one's hypotheses
 * to the bit, at batch 1 to 4, greedy and beam 4, in float32 and int8, and
 * as generate() at beam 4 batch 1. */
static void test_batches_on_threads_equal_one_thread(void)
{
    CHECK(load_fixture() >= 50, "fixture: %d sentences", n_lines);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/marian/opus_tiny", test_golden_dir());
    qkv_context *ctx[3] = {0};
    qkv_translator *t[3] = {0};
    for (int k = 0; k < 3; k++) {
        qkv_context_options co = qkv_context_default_options();
        co.threads = k + 1;
        CHECK(qkv_context_new(&co, &ctx[k]) == QKV_OK, "%s", qkv_last_error());
        CHECK(qkv_translator_load_ctx(dir, ctx[k], &t[k]) == QKV_OK, "%s", qkv_last_error());
    }
    static const struct {
        int beam, batch;
        const char *type;
    } cfg[] = {{1, 1, "float32"}, {4, 1, "float32"}, {4, 2, "int8"}, {1, 3, "int8"},
               /* 16 rows, but 4 batches a thread or more: on the threads too */
               {4, 4, "int8"}, {4, 4, "float32"}};
    for (size_t c = 0; t[0] && t[1] && t[2] && c < sizeof cfg / sizeof cfg[0]; c++) {
        qkv_translation *r[3] = {0};
        for (int k = 0; k < 3; k++) {
            qkv_translate_options o = qkv_translator_default_options(t[k]);
            o.beam_size = cfg[c].beam;
            o.batch_size = cfg[c].batch;
            o.compute_type = cfg[c].type;
            CHECK(qkv_translate(t[k], (const char *const *)lines, n_lines, &o, &r[k]) == QKV_OK, "%s",
                  qkv_last_error());
        }
        for (int i = 0; r[0] && r[1] && r[2] && i < n_lines && !test_failures(); i++)
            for (int k = 1; k < 3; k++) {
                const qkv_hypothesis *a = &r[0][i].hyps[0], *b = &r[k][i].hyps[0];
                CHECK(r[k][i].n_hyps == r[0][i].n_hyps && a->n_ids == b->n_ids &&
                          !memcmp(a->ids, b->ids, (size_t)a->n_ids * sizeof(int)) && a->logprob == b->logprob,
                      "beam %d batch %d %s sentence %d: %d threads '%s' (%.9g), 1 thread '%s' (%.9g)", cfg[c].beam,
                      cfg[c].batch, cfg[c].type, i, k + 1, b->text, b->logprob, a->text, a->logprob);
            }
        if (cfg[c].beam == 4 && !strcmp(cfg[c].type, "float32"))
            for (int i = 0; r[1] && i < n_lines; i++)
                CHECK(!strcmp(r[1][i].hyps[0].text, want[i]), "beam 4 batch 1, 2 threads, sentence %d: '%s', "
                      "generate() '%s'", i, r[1][i].hyps[0].text, want[i]);
        for (int k = 0; k < 3; k++)
            qkv_translations_free(r[k], n_lines);
    }
    for (int k = 0; k < 3; k++) {
        qkv_translator_free(t[k]);
        qkv_context_free(ctx[k]);
    }
    free_fixture();
}

static const test_case cases[] = {
    TEST(test_threads_share_one_translator),
    TEST(test_reused_state_equals_fresh),
    TEST(test_batches_on_threads_equal_one_thread),
};

int main(int argc, char **argv) { return test_main(argc, argv, cases, TEST_COUNT(cases)); }
