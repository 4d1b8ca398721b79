/* eval/: chrF and chrF++ against sacreBLEU 2.x (fixtures from
 * scripts/golden/sacrebleu.py). Statistics (hypothesis, reference and
 * matching n-grams per order) are compared exactly, scores within 1e-9
 * absolute (same float operations in the same order; the tolerance absorbs
 * only last-bit libm differences). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/io.h"
#include "qkv.h"
#include "test.h"

#define TOL 1e-9

static cJSON *load_fixture(void)
{
    static cJSON *doc;
    if (doc)
        return doc;
    char path[512], *text = NULL;
    size_t len;
    snprintf(path, sizeof path, "%s/eval/sacrebleu.json", test_golden_dir());
    if (qkv_read_file(path, &text, &len) != QKV_OK) {
        CHECK(0, "cannot read fixture: %s", qkv_last_error());
        return NULL;
    }
    doc = cJSON_Parse(text);
    free(text);
    CHECK(doc != NULL, "%s: not JSON", path);
    return doc;
}

/* A corpus from the fixture: hyps[i], refs[k][i] (NULL where missing). With
 * sent >= 0, only that sentence and the references it has. */
typedef struct {
    const char **hyps;
    const char ***refs;
    int n_sent, n_refs;
} corpus;

static void corpus_free(corpus *c)
{
    for (int k = 0; k < c->n_refs; k++)
        free(c->refs[k]);
    free(c->refs);
    free(c->hyps);
}

static const char *str_or_null(const cJSON *j) { return cJSON_IsString(j) ? j->valuestring : NULL; }

static int corpus_get(corpus *c, const cJSON *doc, const char *case_name)
{
    char name[128];
    snprintf(name, sizeof name, "%s", case_name);
    char *slash = strchr(name, '/');
    int sent = -1;
    if (slash) {
        *slash = 0;
        if (!strncmp(slash + 1, "sent", 4))
            sent = atoi(slash + 5);
    }
    const cJSON *cj = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "corpora"), name);
    if (!cj)
        return 0;
    const cJSON *hyps = cJSON_GetObjectItem(cj, "hyps"), *refs = cJSON_GetObjectItem(cj, "refs");
    int n = cJSON_GetArraySize(hyps), nr = cJSON_GetArraySize(refs);
    memset(c, 0, sizeof *c);
    c->n_sent = sent >= 0 ? 1 : n;
    c->hyps = calloc(c->n_sent, sizeof *c->hyps);
    c->refs = calloc(nr, sizeof *c->refs);
    for (int i = 0; i < c->n_sent; i++)
        c->hyps[i] = cJSON_GetArrayItem(hyps, sent >= 0 ? sent : i)->valuestring;
    for (int k = 0; k < nr; k++) {
        const cJSON *stream = cJSON_GetArrayItem(refs, k);
        if (sent >= 0) {
            const char *r = str_or_null(cJSON_GetArrayItem(stream, sent));
            if (!r)
                continue; /* sacreBLEU's sentence case lists only existing references */
            c->refs[c->n_refs] = calloc(1, sizeof(char *));
            c->refs[c->n_refs++][0] = r;
        } else {
            c->refs[c->n_refs] = calloc(n, sizeof(char *));
            for (int i = 0; i < n; i++)
                c->refs[c->n_refs][i] = str_or_null(cJSON_GetArrayItem(stream, i));
            c->n_refs++;
        }
    }
    return 1;
}

static qkv_chrf_options opts_from_json(const cJSON *o)
{
    qkv_chrf_options c = qkv_chrf_default_options();
    const cJSON *j;
    if ((j = cJSON_GetObjectItem(o, "word_order")))
        c.word_order = j->valueint;
    if ((j = cJSON_GetObjectItem(o, "char_order")))
        c.char_order = j->valueint;
    if ((j = cJSON_GetObjectItem(o, "beta")))
        c.beta = j->valueint;
    if ((j = cJSON_GetObjectItem(o, "lowercase")))
        c.lowercase = cJSON_IsTrue(j);
    if ((j = cJSON_GetObjectItem(o, "whitespace")))
        c.whitespace = cJSON_IsTrue(j);
    if ((j = cJSON_GetObjectItem(o, "eps_smoothing")))
        c.eps_smoothing = cJSON_IsTrue(j);
    return c;
}

static void test_chrf_matches_sacrebleu(void)
{
    cJSON *doc = load_fixture();
    if (!doc)
        return;
    const cJSON *b;
    int n = 0;
    double worst = 0;
    const char *worst_case = "";
    cJSON_ArrayForEach(b, cJSON_GetObjectItem(doc, "chrf"))
    {
        const char *name = cJSON_GetObjectItem(b, "name")->valuestring;
        corpus c;
        if (!corpus_get(&c, doc, name)) {
            CHECK(0, "%s: corpus missing from fixture", name);
            continue;
        }
        qkv_chrf_options o = opts_from_json(cJSON_GetObjectItem(b, "opts"));
        qkv_chrf_result r;
        qkv_status s = qkv_chrf(c.hyps, (const char *const *const *)c.refs, c.n_sent, c.n_refs, &o, &r);
        CHECK(s == QKV_OK, "%s: %s", name, qkv_last_error());
        if (s == QKV_OK) {
            double want = cJSON_GetObjectItem(b, "score")->valuedouble, d = fabs(r.score - want);
            if (d > worst)
                worst = d, worst_case = name;
            CHECK(d <= TOL, "%s: score %.17g want %.17g (tol %g)", name, r.score, want, TOL);
            const cJSON *st = cJSON_GetObjectItem(b, "stats");
            int order = o.char_order + o.word_order;
            CHECK(cJSON_GetArraySize(st) == 3 * order, "%s: fixture has %d stats, want %d", name,
                  cJSON_GetArraySize(st), 3 * order);
            for (int k = 0; k < 3 * order && k < cJSON_GetArraySize(st); k++) {
                long long w = (long long)cJSON_GetArrayItem(st, k)->valuedouble;
                CHECK(r.stats[k] == w, "%s: stats[%d] (order %d, %s) %lld want %lld", name, k, k / 3 + 1,
                      k % 3 == 0 ? "hyp" : k % 3 == 1 ? "ref" : "match", (long long)r.stats[k], w);
            }
            char line[512];
            qkv_chrf_format(line, sizeof line, &r, &o, 0);
            const char *wl = cJSON_GetObjectItem(b, "line")->valuestring;
            CHECK(!strcmp(line, wl), "%s: line\n  got  %s\n  want %s", name, line, wl);
            qkv_chrf_format(line, sizeof line, &r, &o, 1);
            char wsig[256];
            snprintf(wsig, sizeof wsig, "%.*s|%s", (int)strcspn(wl, " "), wl,
                     cJSON_GetObjectItem(b, "signature")->valuestring);
            char *v = strstr(wsig, "|version:");
            size_t m = v ? (size_t)(v - wsig) : strlen(wsig);
            CHECK(!strncmp(line, wsig, m) && !strncmp(line + m, "|version:qkv-", 13),
                  "%s: signature\n  got  %s\n  want %s", name, line, wsig);
        }
        corpus_free(&c);
        n++;
    }
    CHECK(n > 50, "only %d chrF cases in the fixture", n);
    printf("     %d chrF cases, largest |score - sacreBLEU| %.3g (%s)\n", n, worst, worst_case);
}

static void test_chrf_properties(void)
{
    const char *h[] = {"Die Katze sitzt auf der Matte.", "Noch ein Satz, mit Komma!"};
    const char *const *refs[] = {h};
    qkv_chrf_result r;
    qkv_chrf_options o = qkv_chrf_default_options();
    CHECK(qkv_chrf(h, refs, 2, 1, &o, &r) == QKV_OK, "%s", qkv_last_error());
    CHECK(fabs(r.score - 100) < 1e-12, "identical text: chrF %.17g", r.score);
    o.word_order = 2;
    CHECK(qkv_chrf(h, refs, 2, 1, &o, &r) == QKV_OK && fabs(r.score - 100) < 1e-12, "identical text: chrF++ %.17g",
          r.score);
    /* whitespace is removed before character n-grams: spacing cannot matter */
    const char *sp[] = {"Die  Katze sitzt\tauf der Matte .", "Noch einSatz, mit Komma!"};
    o.word_order = 0;
    CHECK(qkv_chrf(sp, refs, 2, 1, &o, &r) == QKV_OK && fabs(r.score - 100) < 1e-12, "respaced text: chrF %.17g",
          r.score);
    /* two references: the better one is used per sentence */
    const char *bad[] = {"voellig anders", "ganz anderes hier"};
    const char *const *two[] = {bad, h};
    CHECK(qkv_chrf(h, two, 2, 2, &o, &r) == QKV_OK && fabs(r.score - 100) < 1e-12 && r.n_refs == 2,
          "best reference not chosen: %.17g", r.score);
    char line[256];
    qkv_chrf_format(line, sizeof line, &r, &o, 1);
    CHECK(!strncmp(line, "chrF2|nrefs:2|case:mixed|eff:yes|nc:6|nw:0|space:no|version:qkv-", 64), "%s", line);
}

static void test_chrf_errors(void)
{
    const char *h[] = {"ok", "\xff"};
    const char *const *refs[] = {h};
    qkv_chrf_result r;
    qkv_status s = qkv_chrf(h, refs, 2, 1, NULL, &r);
    CHECK(s == QKV_ERR_FORMAT && strstr(qkv_last_error(), "hypothesis 2"), "invalid UTF-8: %d %s", s,
          qkv_last_error());
    qkv_chrf_options o = qkv_chrf_default_options();
    o.char_order = 0;
    o.word_order = 0;
    CHECK(qkv_chrf(h, refs, 1, 1, &o, &r) == QKV_ERR_CONFIG, "order 0 accepted");
    o.char_order = 20;
    CHECK(qkv_chrf(h, refs, 1, 1, &o, &r) == QKV_ERR_CONFIG, "order 20 accepted");
    const char *none[] = {NULL};
    const char *const *nrefs[] = {none};
    CHECK(qkv_chrf(h, nrefs, 1, 1, NULL, &r) == QKV_ERR_ARG, "sentence without reference accepted");
}

static const test_case cases[] = {
    TEST(test_chrf_matches_sacrebleu),
    TEST(test_chrf_properties),
    TEST(test_chrf_errors),
};

int main(int argc, char **argv)
{
    int rc = test_main(argc, argv, cases, TEST_COUNT(cases));
    cJSON_Delete(load_fixture());
    return rc;
}
