/* Execution contexts in use: two translators on contexts with different
 * thread counts translate at the same time in two threads, and one
 * translator serves several threads at once; every output equals what the
 * same translator gives alone. Model: the Marian fixture (beam 4, so the
 * decoder and the encoder both run threaded kernels). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qkv.h"
#include "test.h"

#define MAX_LINES 64
#define ROUNDS 3

static char *lines[MAX_LINES];
static int n_lines;

static int read_sentences(void)
{
    if (n_lines)
        return 1;
    char path[512];
    snprintf(path, sizeof path, "%s/marian/sentences.txt", test_golden_dir());
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char buf[4096];
    while (n_lines < MAX_LINES && fgets(buf, sizeof buf, f)) {
        buf[strcspn(buf, "\n")] = 0;
        lines[n_lines++] = strdup(buf);
    }
    fclose(f);
    return n_lines > 0;
}

static qkv_translator *load(qkv_context *ctx)
{
    char path[512];
    snprintf(path, sizeof path, "%s/marian/opus_tiny", test_golden_dir());
    qkv_translator *t = NULL;
    CHECK(qkv_translator_load_ctx(path, ctx, &t) == QKV_OK, "load: %s", qkv_last_error());
    return t;
}

/* All lines' best translations joined by newlines (malloc'ed), or NULL. */
static char *translate_all(qkv_translator *t, int batch)
{
    qkv_translate_options o = qkv_translator_default_options(t);
    o.beam_size = 4;
    o.batch_size = batch;
    qkv_translation *r = NULL;
    if (qkv_translate(t, (const char *const *)lines, n_lines, &o, &r) != QKV_OK)
        return NULL;
    size_t cap = 1, n = 0;
    for (int i = 0; i < n_lines; i++)
        cap += (r[i].n_hyps ? strlen(r[i].hyps[0].text) : 0) + 1;
    char *s = malloc(cap);
    for (int i = 0; s && i < n_lines; i++) {
        const char *x = r[i].n_hyps ? r[i].hyps[0].text : "";
        memcpy(s + n, x, strlen(x));
        n += strlen(x);
        s[n++] = '\n';
    }
    if (s)
        s[n] = 0;
    qkv_translations_free(r, n_lines);
    return s;
}

typedef struct {
    qkv_translator *t;
    const char *want;
    int batch, mismatches, errors;
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    for (int r = 0; r < ROUNDS; r++) {
        char *got = translate_all(j->t, j->batch);
        if (!got)
            j->errors++;
        else if (strcmp(got, j->want))
            j->mismatches++;
        free(got);
    }
    return NULL;
}

static void test_two_translators_two_thread_counts(void)
{
    if (!read_sentences()) {
        CHECK(0, "cannot read the fixture sentences");
        return;
    }
    qkv_context_options o1 = qkv_context_default_options(), o2 = o1;
    o1.threads = 1;
    o2.threads = 2;
    qkv_context *c1 = NULL, *c2 = NULL;
    CHECK(qkv_context_new(&o1, &c1) == QKV_OK && qkv_context_new(&o2, &c2) == QKV_OK, "context: %s",
          qkv_last_error());
    CHECK(qkv_context_threads(c1) == 1 && qkv_context_threads(c2) == 2, "thread counts %d, %d",
          qkv_context_threads(c1), qkv_context_threads(c2));
    qkv_translator *t1 = load(c1), *t2 = load(c2);
    if (t1 && t2) {
        /* alone first: the reference of each */
        char *want1 = translate_all(t1, 32), *want2 = translate_all(t2, 32);
        CHECK(want1 && want2 && strlen(want1) > (size_t)n_lines, "translations failed: %s", qkv_last_error());
        /* the kernels give the same bits for any thread count */
        CHECK(want1 && want2 && !strcmp(want1, want2), "1 and 2 threads translate differently");
        job j1 = {t1, want1, 32, 0, 0}, j2 = {t2, want2, 32, 0, 0};
        pthread_t a, b;
        pthread_create(&a, NULL, run_job, &j1);
        pthread_create(&b, NULL, run_job, &j2);
        pthread_join(a, NULL);
        pthread_join(b, NULL);
        CHECK(!j1.errors && !j2.errors, "errors: %d, %d", j1.errors, j2.errors);
        CHECK(!j1.mismatches && !j2.mismatches,
              "at the same time, %d (1 thread) and %d (2 threads) of %d rounds differ from alone", j1.mismatches,
              j2.mismatches, ROUNDS);
        free(want1);
        free(want2);
    }
    qkv_translator_free(t1);
    qkv_translator_free(t2);
    qkv_context_free(c1);
    qkv_context_free(c2);
}

static void test_one_translator_many_threads(void)
{
    if (!read_sentences()) {
        CHECK(0, "cannot read the fixture sentences");
        return;
    }
    qkv_context_options o = qkv_context_default_options();
    o.threads = 2;
    qkv_context *c = NULL;
    CHECK(qkv_context_new(&o, &c) == QKV_OK, "context: %s", qkv_last_error());
    qkv_translator *t = load(c);
    if (t) {
        char *want = translate_all(t, 32);
        CHECK(want != NULL, "translate: %s", qkv_last_error());
        enum { N = 3 };
        job j[N];
        pthread_t th[N];
        for (int i = 0; i < N; i++) {
            j[i] = (job){t, want, i == 0 ? 32 : i == 1 ? 1 : 5, 0, 0};
            pthread_create(&th[i], NULL, run_job, &j[i]);
        }
        for (int i = 0; i < N; i++) {
            pthread_join(th[i], NULL);
            CHECK(!j[i].errors && !j[i].mismatches, "thread %d (batch %d): %d errors, %d of %d rounds differ", i,
                  j[i].batch, j[i].errors, j[i].mismatches, ROUNDS);
        }
        free(want);
    }
    qkv_translator_free(t);
    qkv_context_free(c);
}

static void test_context_options(void)
{
    qkv_context_options o = qkv_context_default_options();
    o.threads = -3;
    qkv_context *c = NULL;
    CHECK(qkv_context_new(&o, &c) != QKV_OK && c == NULL, "threads = -3 accepted");
    CHECK(strstr(qkv_last_error(), "threads"), "message does not name the field: %s", qkv_last_error());
    o.threads = 0;
    CHECK(qkv_context_new(&o, &c) == QKV_OK && qkv_context_threads(c) >= 1, "default context: %s",
          qkv_last_error());
    qkv_context_free(c);
}

static const test_case cases[] = {
    TEST(test_two_translators_two_thread_counts),
    TEST(test_one_translator_many_threads),
    TEST(test_context_options),
};

int main(int argc, char **argv)
{
    int rc = test_main(argc, argv, cases, TEST_COUNT(cases));
    for (int i = 0; i < n_lines; i++)
        free(lines[i]);
    return rc;
}
