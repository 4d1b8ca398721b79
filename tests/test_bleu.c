/* eval/: BLEU against sacreBLEU 2.x (fixtures from scripts/golden/sacrebleu.py).
 * Tokenization is compared string for string, n-gram counts and lengths
 * exactly, floating-point results within 1e-9 absolute: qkv performs
 * sacreBLEU's float operations in the same order on the same libm, so the
 * numbers normally agree to the bit; the tolerance only absorbs a different
 * libm's last-bit differences in log/exp. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

static qkv_bleu_options opts_from_json(const cJSON *o)
{
    qkv_bleu_options b = qkv_bleu_default_options();
    const cJSON *j;
    if ((j = cJSON_GetObjectItem(o, "tokenize")))
        CHECK(qkv_bleu_tokenizer_parse(j->valuestring, &b.tokenize) == QKV_OK, "tokenizer %s", j->valuestring);
    if ((j = cJSON_GetObjectItem(o, "lowercase")))
        b.lowercase = cJSON_IsTrue(j);
    if ((j = cJSON_GetObjectItem(o, "effective_order")))
        b.effective_order = cJSON_IsTrue(j);
    if ((j = cJSON_GetObjectItem(o, "max_ngram_order")))
        b.max_ngram_order = j->valueint;
    if ((j = cJSON_GetObjectItem(o, "smooth_method"))) {
        const char *m = j->valuestring;
        b.smooth = !strcmp(m, "none")    ? QKV_SMOOTH_NONE
                   : !strcmp(m, "floor") ? QKV_SMOOTH_FLOOR
                   : !strcmp(m, "add-k") ? QKV_SMOOTH_ADD_K
                                         : QKV_SMOOTH_EXP;
    }
    return b;
}

static void test_tokenize_matches_sacrebleu(void)
{
    cJSON *doc = load_fixture();
    if (!doc)
        return;
    const cJSON *t;
    int n = 0, bad = 0;
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(doc, "tokenize"))
    {
        const char *text = cJSON_GetObjectItem(t, "text")->valuestring;
        const char *tokname = cJSON_GetObjectItem(t, "tok")->valuestring;
        const char *want = cJSON_GetObjectItem(t, "out")->valuestring;
        int lc = cJSON_IsTrue(cJSON_GetObjectItem(t, "lc"));
        qkv_bleu_tokenizer tok;
        CHECK(qkv_bleu_tokenizer_parse(tokname, &tok) == QKV_OK, "tokenizer %s", tokname);
        char *got = NULL;
        qkv_status s = qkv_bleu_tokenize(text, tok, lc, &got);
        CHECK(s == QKV_OK, "tokenize: %s", qkv_last_error());
        if (s == QKV_OK && strcmp(got, want) && bad++ < 8)
            CHECK(0, "case %d tok %s lc %d text [%s]: got [%s] want [%s]", n, tokname, lc, text, got, want);
        free(got);
        n++;
    }
    CHECK(bad == 0, "%d of %d tokenizations differ", bad, n);
    CHECK(n > 500, "only %d tokenization cases in the fixture", n);
}

static void test_bleu_matches_sacrebleu(void)
{
    cJSON *doc = load_fixture();
    if (!doc)
        return;
    const cJSON *b;
    int n = 0;
    double worst = 0;
    const char *worst_case = "";
    cJSON_ArrayForEach(b, cJSON_GetObjectItem(doc, "bleu"))
    {
        const char *name = cJSON_GetObjectItem(b, "name")->valuestring;
        corpus c;
        if (!corpus_get(&c, doc, name)) {
            CHECK(0, "%s: corpus missing from fixture", name);
            continue;
        }
        qkv_bleu_options o = opts_from_json(cJSON_GetObjectItem(b, "opts"));
        qkv_bleu_result r;
        qkv_status s = qkv_bleu(c.hyps, (const char *const *const *)c.refs, c.n_sent, c.n_refs, &o, &r);
        CHECK(s == QKV_OK, "%s: %s", name, qkv_last_error());
        if (s == QKV_OK) {
            double d = fabs(r.score - cJSON_GetObjectItem(b, "score")->valuedouble);
            if (d > worst)
                worst = d, worst_case = name;
            CHECK(d <= TOL, "%s: score %.17g want %.17g (tol %g)", name, r.score,
                  cJSON_GetObjectItem(b, "score")->valuedouble, TOL);
            double bp = cJSON_GetObjectItem(b, "bp")->valuedouble, ratio = cJSON_GetObjectItem(b, "ratio")->valuedouble;
            CHECK(fabs(r.bp - bp) <= TOL, "%s: bp %.17g want %.17g", name, r.bp, bp);
            CHECK(fabs(r.ratio - ratio) <= TOL, "%s: ratio %.17g want %.17g", name, r.ratio, ratio);
            long long sl = (long long)cJSON_GetObjectItem(b, "sys_len")->valuedouble;
            long long rl = (long long)cJSON_GetObjectItem(b, "ref_len")->valuedouble;
            CHECK(r.sys_len == sl && r.ref_len == rl, "%s: sys_len %lld ref_len %lld want %lld %lld", name,
                  (long long)r.sys_len, (long long)r.ref_len, sl, rl);
            /* add-k reports counts with k already added; qkv reports raw counts */
            int addk = o.smooth == QKV_SMOOTH_ADD_K;
            for (int k = 0; k < o.max_ngram_order; k++) {
                double wc = cJSON_GetArrayItem(cJSON_GetObjectItem(b, "counts"), k)->valuedouble;
                double wt = cJSON_GetArrayItem(cJSON_GetObjectItem(b, "totals"), k)->valuedouble;
                double wp = cJSON_GetArrayItem(cJSON_GetObjectItem(b, "precisions"), k)->valuedouble;
                if (!addk) {
                    CHECK(r.counts[k] == (int64_t)wc, "%s: counts[%d] %lld want %g", name, k, (long long)r.counts[k], wc);
                    CHECK(r.totals[k] == (int64_t)wt, "%s: totals[%d] %lld want %g", name, k, (long long)r.totals[k], wt);
                }
                CHECK(fabs(r.precisions[k] - wp) <= TOL, "%s: precisions[%d] %.17g want %.17g", name, k,
                      r.precisions[k], wp);
            }
            char line[512];
            qkv_bleu_format(line, sizeof line, &r, &o, 0);
            const char *want = cJSON_GetObjectItem(b, "line")->valuestring;
            CHECK(!strcmp(line, want), "%s: line\n  got  %s\n  want %s", name, line, want);
            /* the signature equals sacreBLEU's but for the version field */
            qkv_bleu_format(line, sizeof line, &r, &o, 1);
            char wsig[256];
            snprintf(wsig, sizeof wsig, "BLEU|%s", cJSON_GetObjectItem(b, "signature")->valuestring);
            char *v = strstr(wsig, "|version:");
            size_t m = v ? (size_t)(v - wsig) : strlen(wsig);
            CHECK(!strncmp(line, wsig, m) && !strncmp(line + m, "|version:qkv-", 13), "%s: signature\n  got  %s\n  want %s",
                  name, line, wsig);
        }
        corpus_free(&c);
        n++;
    }
    CHECK(n > 100, "only %d BLEU cases in the fixture", n);
    printf("     %d BLEU cases, largest |score - sacreBLEU| %.3g (%s)\n", n, worst, worst_case);
}

static void test_bleu_identity_and_order(void)
{
    const char *h[] = {"The quick brown fox jumps over the lazy dog.", "A second, longer sentence - with punctuation!",
                       "Third one"};
    const char *const *refs[] = {h};
    qkv_bleu_result r, r2;
    CHECK(qkv_bleu(h, refs, 3, 1, NULL, &r) == QKV_OK, "%s", qkv_last_error());
    CHECK(fabs(r.score - 100.0) < 1e-12, "identical text scores %.17g, want 100", r.score);
    /* corpus statistics are sums: sentence order cannot matter */
    const char *hp[] = {h[2], h[0], h[1]};
    const char *rp0[] = {"Third one", "The quick brown fox jumped over a lazy dog.", "A second sentence"};
    const char *rq0[] = {"The quick brown fox jumped over a lazy dog.", "A second sentence", "Third one"};
    const char *const *rp[] = {rp0}, *const *rq[] = {rq0};
    CHECK(qkv_bleu(hp, rp, 3, 1, NULL, &r) == QKV_OK, "%s", qkv_last_error());
    CHECK(qkv_bleu(h, rq, 3, 1, NULL, &r2) == QKV_OK, "%s", qkv_last_error());
    CHECK(r.score == r2.score, "reordered corpus: %.17g vs %.17g", r.score, r2.score);
    CHECK(r.score > 0 && r.score < 100, "score %g", r.score);
}

static void test_bleu_errors(void)
{
    const char *bad[] = {"fine", "caf\xc3"};
    const char *good[] = {"fine", "cafe"};
    const char *const *refs[] = {good};
    qkv_bleu_result r;
    qkv_status s = qkv_bleu(bad, refs, 2, 1, NULL, &r);
    CHECK(s == QKV_ERR_FORMAT, "truncated UTF-8 gave status %d", s);
    CHECK(strstr(qkv_last_error(), "hypothesis 2") && strstr(qkv_last_error(), "byte 3"), "message: %s",
          qkv_last_error());
    const char *overlong[] = {"\xc0\xaf", "x"};
    CHECK(qkv_bleu(overlong, refs, 2, 1, NULL, &r) == QKV_ERR_FORMAT, "overlong UTF-8 accepted");
    const char *surrogate[] = {"\xed\xa0\x80", "x"};
    CHECK(qkv_bleu(surrogate, refs, 2, 1, NULL, &r) == QKV_ERR_FORMAT, "surrogate accepted");
    const char *none[] = {NULL, "x"};
    const char *const *refs_none[] = {none};
    s = qkv_bleu(good, refs_none, 2, 1, NULL, &r);
    CHECK(s == QKV_ERR_ARG && strstr(qkv_last_error(), "sentence 1"), "missing reference: %d %s", s,
          qkv_last_error());
    qkv_bleu_options o = qkv_bleu_default_options();
    o.max_ngram_order = 0;
    CHECK(qkv_bleu(good, refs, 2, 1, &o, &r) == QKV_ERR_CONFIG, "order 0 accepted");
    qkv_bleu_tokenizer t;
    CHECK(qkv_bleu_tokenizer_parse("zh", &t) == QKV_OK && t == QKV_TOK_ZH, "zh");
    CHECK(qkv_bleu_tokenizer_parse("ja-mecab", &t) == QKV_ERR_CONFIG && strstr(qkv_last_error(), "ja-mecab"),
          "unknown tokenizer: %s", qkv_last_error());
    for (int k = QKV_TOK_13A; k <= QKV_TOK_NONE; k++)
        CHECK(qkv_bleu_tokenizer_parse(qkv_bleu_tokenizer_name(k), &t) == QKV_OK && (int)t == k, "name %d", k);
}

/* Empty corpus and long lines: no crash, sensible numbers. */
static void test_bleu_edges(void)
{
    qkv_bleu_result r;
    const char *const *refs0[] = {NULL};
    const char *e[] = {""};
    refs0[0] = e;
    CHECK(qkv_bleu(e, refs0, 0, 1, NULL, &r) == QKV_OK && r.score == 0 && r.sys_len == 0, "empty corpus");
    size_t n = 200000;
    char *big = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        big[i] = i % 7 == 6 ? ' ' : (char)('a' + (i * 2654435761u >> 7) % 3);
    big[n] = 0;
    const char *h[] = {big};
    const char *const *refs[] = {h};
    CHECK(qkv_bleu(h, refs, 1, 1, NULL, &r) == QKV_OK, "%s", qkv_last_error());
    CHECK(fabs(r.score - 100) < 1e-9 && r.sys_len == (int64_t)((n + 6) / 7), "long line: score %.17g len %lld", r.score,
          (long long)r.sys_len);
    free(big);
}

/* The command line end to end (needs ./qkv, which `make` and `make test`
 * build): the score line, then the errors users meet first. */
static int run_cli(const char *cmd, char *out, size_t size)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = fread(out, 1, size - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_cli_score_bleu(void)
{
    if (access("./qkv", X_OK) != 0) {
        CHECK(0, "./qkv not built (run make from the repository root)");
        return;
    }
    char hyp[128], ref[128], shortf[128], cmd[600], out[4096];
    snprintf(hyp, sizeof hyp, "/tmp/qkv_test_bleu_%d.hyp", (int)getpid());
    snprintf(ref, sizeof ref, "/tmp/qkv_test_bleu_%d.ref", (int)getpid());
    snprintf(shortf, sizeof shortf, "/tmp/qkv_test_bleu_%d.short", (int)getpid());
    const char *h[] = {"The cat sat on the mat.", "It's 3.14, isn't it?", "\xe6\x88\x91\xe4\xbb\xac\xe5\xa5\xbd"};
    const char *r0[] = {"The cat sat on a mat.", "It is 3.14, isn't it?", "\xe6\x88\x91\xe4\xbb\xac\xe5\xbe\x88\xe5\xa5\xbd"};
    /* CRLF line ends and trailing blanks are stripped as sacreBLEU strips them */
    char htext[256], rtext[256];
    snprintf(htext, sizeof htext, "%s\r\n%s  \n%s", h[0], h[1], h[2]);
    snprintf(rtext, sizeof rtext, "%s\n%s\n%s\n", r0[0], r0[1], r0[2]);
    CHECK(qkv_write_file(hyp, htext, strlen(htext)) == QKV_OK && qkv_write_file(ref, rtext, strlen(rtext)) == QKV_OK &&
              qkv_write_file(shortf, "one line\n", 9) == QKV_OK,
          "%s", qkv_last_error());
    const char *const *refs[] = {r0};
    qkv_bleu_options o = qkv_bleu_default_options();
    o.tokenize = QKV_TOK_ZH;
    qkv_bleu_result r;
    CHECK(qkv_bleu(h, refs, 3, 1, &o, &r) == QKV_OK, "%s", qkv_last_error());
    char want[512];
    qkv_bleu_format(want, sizeof want, &r, &o, 1);
    snprintf(cmd, sizeof cmd, "./qkv score-bleu --ref %s --tokenize zh %s 2>&1", ref, hyp);
    int rc = run_cli(cmd, out, sizeof out);
    CHECK(rc == 0 && !strncmp(out, want, strlen(want)), "%s: exit %d\n  got  %s\n  want %s", cmd, rc, out, want);
    snprintf(cmd, sizeof cmd, "./qkv score-bleu --ref %s --tokenize zh < %s 2>&1", ref, hyp);
    rc = run_cli(cmd, out, sizeof out);
    CHECK(rc == 0 && !strncmp(out, want, strlen(want)), "stdin: exit %d, got %s", rc, out);
    /* sentence level: one line per sentence, effective order on */
    o.effective_order = 1;
    const char *const *ref1[] = {r0 + 1};
    CHECK(qkv_bleu(h + 1, ref1, 1, 1, &o, &r) == QKV_OK, "%s", qkv_last_error());
    qkv_bleu_format(want, sizeof want, &r, &o, 1);
    snprintf(cmd, sizeof cmd, "./qkv score-bleu -sl --ref %s --tokenize zh %s 2>&1", ref, hyp);
    rc = run_cli(cmd, out, sizeof out);
    const char *second = strchr(out, '\n');
    CHECK(rc == 0 && second && !strncmp(second + 1, want, strlen(want)) && strstr(out, "eff:yes"),
          "%s: exit %d\n  got  %s\n  want line 2 %s", cmd, rc, out, want);
    /* eval: BLEU (13a), chrF and chrF++ lines as the library formats them */
    qkv_bleu_options bo = qkv_bleu_default_options();
    qkv_chrf_options co = qkv_chrf_default_options(), cpo = co;
    cpo.word_order = 2;
    qkv_chrf_result cr, cpr;
    char bl[512], cl[256], cpl[256], all[1100];
    CHECK(qkv_bleu(h, refs, 3, 1, &bo, &r) == QKV_OK && qkv_chrf(h, refs, 3, 1, &co, &cr) == QKV_OK &&
              qkv_chrf(h, refs, 3, 1, &cpo, &cpr) == QKV_OK,
          "%s", qkv_last_error());
    qkv_bleu_format(bl, sizeof bl, &r, &bo, 1);
    qkv_chrf_format(cl, sizeof cl, &cr, &co, 1);
    qkv_chrf_format(cpl, sizeof cpl, &cpr, &cpo, 1);
    snprintf(all, sizeof all, "%s\n%s\n%s\n", bl, cl, cpl);
    snprintf(cmd, sizeof cmd, "./qkv eval --ref %s --hyp %s 2>&1", ref, hyp);
    rc = run_cli(cmd, out, sizeof out);
    CHECK(rc == 0 && !strcmp(out, all), "%s: exit %d\n  got  %s\n  want %s", cmd, rc, out, all);
    snprintf(cmd, sizeof cmd, "./qkv eval --ref %s --hyp %s --json 2>&1", ref, hyp);
    rc = run_cli(cmd, out, sizeof out);
    CHECK(rc == 0 && strstr(out, "\"bleu\"") && strstr(out, "\"chrf++\""), "eval --json: exit %d, got %s", rc, out);
    snprintf(cmd, sizeof cmd, "./qkv eval --ref %s --hyp %s 2>&1", ref, shortf);
    rc = run_cli(cmd, out, sizeof out);
    CHECK(rc == 1 && strstr(out, "has 3 lines") && strstr(out, "has 1"), "line counts: exit %d, got %s", rc, out);
    snprintf(cmd, sizeof cmd, "./qkv score-bleu --ref %s.missing %s 2>&1", ref, hyp);
    rc = run_cli(cmd, out, sizeof out);
    CHECK(rc == 1 && strstr(out, ".missing") && strstr(out, "qkv: error:"), "missing file: exit %d, got %s", rc, out);
    unlink(hyp);
    unlink(ref);
    unlink(shortf);
}

static const test_case cases[] = {
    TEST(test_tokenize_matches_sacrebleu), TEST(test_bleu_matches_sacrebleu), TEST(test_bleu_identity_and_order),
    TEST(test_bleu_errors), TEST(test_bleu_edges), TEST(test_cli_score_bleu),
};

int main(int argc, char **argv)
{
    int rc = test_main(argc, argv, cases, TEST_COUNT(cases));
    cJSON_Delete(load_fixture());
    return rc;
}
