/* Protected spans (src/text/protect.c): each family, adjacent, nested and
 * malformed ones, masking and unmasking. */
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "test.h"
#include "text/protect.h"

/* Checks that text's spans are exactly the '|'-separated list want and
 * that malformed candidates number want_bad. */
static void expect(const char *text, const char *want, int want_bad)
{
    protect_spans sp;
    protect_find(text, strlen(text), &sp);
    char got[512] = "";
    for (int k = 0; k < sp.n; k++) {
        if (k)
            strcat(got, "|");
        strncat(got, text + sp.span[k].start, sp.span[k].len);
    }
    CHECK(!strcmp(got, want), "\"%s\": spans \"%s\", want \"%s\"", text, got, want);
    CHECK(sp.malformed == want_bad, "\"%s\": %d malformed, want %d", text, sp.malformed, want_bad);
}

static void test_printf(void)
{
    expect("Open %s now", "%s", 0);
    expect("%-*s|%ld|%lld|%5.2f|%#06x|%zu|%hhd", "%-*s|%ld|%lld|%5.2f|%#06x|%zu|%hhd", 0);
    expect("%1$s of %2$d", "%1$s|%2$d", 0);
    expect("100%% done", "%%", 0);
    expect("%*2$d and %.*3$s", "%*2$d|%.*3$s", 0);
    expect("%'d items, %+d", "%'d|%+d", 0);
}

static void test_qt(void)
{
    expect("Copy %1 to %2", "%1|%2", 0);
    expect("%L1 files", "%L1", 0);
    expect("%10 and %99", "%10|%99", 0);
}

static void test_brace(void)
{
    expect("Hello {name}, you have {0} new", "{name}|{0}", 0);
    expect("{} {0:>8} {x.y} {a[1]} {0!r}", "{}|{0:>8}|{x.y}|{a[1]}|{0!r}", 0);
    expect("literal {{braces}} here", "", 0);
    expect("half { open", "", 0);
}

static void test_tags_entities(void)
{
    expect("<b>bold</b> and <br/> <img src=\"a>b.png\">", "<b>|</b>|<br/>|<img src=\"a>b.png\">", 0);
    expect("Tom &amp; Jerry &#38; &#x26; &lt;", "&amp;|&#38;|&#x26;|&lt;", 0);
    expect("&File and R&D", "", 0);
    expect("a < b > c", "", 0);
    expect("<!-- note --><p>x</p>", "<!-- note -->|<p>|</p>", 0);
}

static void test_adjacent_nested(void)
{
    expect("%s%s%d", "%s|%s|%d", 0);
    expect("<b><i>%s</i></b>", "<b>|<i>|%s|</i>|</b>", 0);
    expect("<a href=\"{url}\">%1</a>", "<a href=\"{url}\">|%1|</a>", 0);
}

static void test_malformed(void)
{
    expect("50% ", "", 1);
    expect("%", "", 1);
    expect("%z", "", 1);
    expect("%s and %z", "%s", 1);
    expect("<b>unclosed", "", 1);
    expect("stray</i> end", "", 1);
    expect("<b><i>x</b></i>", "<i>|</i>", 2); /* the crossing <b> pair */
    expect("<b never closes", "", 1);
    expect("<b>ok</b> <i>not", "<b>|</b>", 1);
}

static void test_mask_unmask(void)
{
    const char *text = "Open <b>%s</b> in {app}";
    protect_spans sp;
    protect_find(text, strlen(text), &sp);
    CHECK(sp.n == 4, "%d spans, want 4", sp.n);
    char *m = protect_mask(text, &sp);
    const char *want = "Open \xee\x80\x80\xee\x80\x81\xee\x80\x82 in \xee\x80\x83";
    CHECK(m && !strcmp(m, want), "masked \"%s\"", m ? m : "(null)");
    int counts[PROTECT_MAX], stray;
    /* a translation that reorders, repeats sentinel 1 and adds sentinel 9 */
    char *u = protect_unmask("\xee\x80\x83 \xee\x80\x80\xee\x80\x81\xee\x80\x82 \xee\x80\x81\xee\x80\x89", text, &sp,
                             counts, &stray);
    CHECK(u && !strcmp(u, "{app} <b>%s</b> %s"), "unmasked \"%s\"", u ? u : "(null)");
    CHECK(counts[0] == 1 && counts[1] == 2 && counts[2] == 1 && counts[3] == 1, "counts %d %d %d %d", counts[0],
          counts[1], counts[2], counts[3]);
    CHECK(stray == 1, "stray %d, want 1", stray);
    free(m);
    free(u);
    char *back = protect_unmask(want, text, &sp, NULL, NULL);
    CHECK(back && !strcmp(back, text), "round trip \"%s\"", back ? back : "(null)");
    free(back);
    char s0[4];
    protect_sentinel(31, s0);
    CHECK(protect_sentinel_at(s0) == 31, "sentinel 31 reads back as %d", protect_sentinel_at(s0));
    const char *sym = protect_symbols();
    CHECK(strlen(sym) == PROTECT_MAX * 4 - 1, "symbols list of %zu bytes", strlen(sym));
}

static void test_mask_pair(void)
{
    char *s, *t;
    int matched;
    CHECK(protect_mask_pair("Copy %s to %d<br>", "将 %s 复制到 %d %x", &s, &t, &matched) == 0, "out of memory");
    CHECK(!strcmp(s, "Copy \xee\x80\x80 to \xee\x80\x81\xee\x80\x82"), "source \"%s\"", s);
    CHECK(!strcmp(t, "将 \xee\x80\x80 复制到 \xee\x80\x81 %x"), "target \"%s\"", t);
    CHECK(matched == 2, "matched %d, want 2", matched);
    free(s);
    free(t);
    /* Qt spans (2 bytes) grow to 3-byte sentinels */
    CHECK(protect_mask_pair("%1%2%1", "%2%1%1", &s, &t, &matched) == 0, "out of memory");
    CHECK(!strcmp(t, "\xee\x80\x81\xee\x80\x80\xee\x80\x82"), "target \"%s\"", t);
    free(s);
    free(t);
}

/* Checks the text of the malformed candidates recorded in bad[]. */
static void expect_bad(const char *text, const char *want)
{
    protect_spans sp;
    protect_find(text, strlen(text), &sp);
    char got[256] = "";
    for (int k = 0; k < sp.n_bad; k++) {
        if (k)
            strcat(got, "|");
        strncat(got, text + sp.bad[k].start, sp.bad[k].len);
    }
    CHECK(!strcmp(got, want), "\"%s\": malformed text \"%s\", want \"%s\"", text, got, want);
    CHECK(sp.n_bad == sp.malformed, "\"%s\": %d recorded of %d malformed", text, sp.n_bad, sp.malformed);
}

static void test_variables(void)
{
    expect("Restart %PRODUCTNAME now", "%PRODUCTNAME", 0);
    expect("%MOD1+%MOD2 and %EXTENSION_NAME", "%MOD1|%MOD2|%EXTENSION_NAME", 0);
    /* printf's upper-case conversions stay printf */
    expect("%X%C: %s", "%X|%C|%s", 0);
    expect("%Xh %Ests %XY", "%X|%E|%X", 0);
    protect_spans sp;
    const char *t = "%PRODUCTNAME %s";
    protect_find(t, strlen(t), &sp);
    CHECK(sp.n == 2 && sp.span[0].kind == PROTECT_VARIABLE && sp.span[1].kind == PROTECT_PRINTF, "kinds %d %d",
          sp.span[0].kind, sp.span[1].kind);
}

static void test_malformed_text(void)
{
    expect_bad("50% done", "%");
    expect_bad("%z and %Tx %s", "%z|%Tx");
    expect_bad("--stack <size> Set size", "<size>");
    expect_bad("<b never closes", "<b");
    expect_bad("<b><i>x</b></i>", "<b>|</b>");
    expect_bad("<b>ok</b> {x}", "");
}

static void test_printf_args(void)
{
    protect_spans sp;
    int argi[PROTECT_MAX];
    const char *t = "%s %% %d %m {x} %lu";
    protect_find(t, strlen(t), &sp);
    CHECK(protect_printf_args(t, &sp, argi) == 1, "\"%s\": not renumbered", t);
    CHECK(sp.n == 6 && argi[0] == 1 && argi[1] == 0 && argi[2] == 2 && argi[3] == 0 && argi[4] == 0 && argi[5] == 3,
          "argi %d %d %d %d %d %d", argi[0], argi[1], argi[2], argi[3], argi[4], argi[5]);
    const char *p = "%1$s %s", *w = "%*d %s";
    protect_find(p, strlen(p), &sp);
    CHECK(protect_printf_args(p, &sp, argi) == 0 && argi[0] == 0 && argi[1] == 0, "\"%s\" renumbered", p);
    protect_find(w, strlen(w), &sp);
    CHECK(protect_printf_args(w, &sp, argi) == 0, "\"%s\" renumbered", w);
    /* keys: "%s" as argument 2 is "%2$s" */
    char k1[32], k2[32], k3[32];
    protect_span a = {0, 2, PROTECT_PRINTF}, b = {0, 4, PROTECT_PRINTF}, c = {0, 4, PROTECT_BRACE};
    CHECK(protect_span_key("%s", &a, 2, k1, sizeof k1) == 0 && protect_span_key("%2$s", &b, 0, k2, sizeof k2) == 0 &&
              !strcmp(k1, k2),
          "keys \"%s\" and \"%s\" differ", k1, k2);
    CHECK(protect_span_key("{ab}", &c, 0, k3, sizeof k3) == 0 && !strcmp(k3, "{ab}"), "brace key \"%s\"", k3);
    CHECK(protect_span_key("%2$s", &b, 0, k3, 3) == -1, "a key that does not fit was accepted");
}

#define S0 "\xee\x80\x80"
#define S1 "\xee\x80\x81"
#define S2 "\xee\x80\x82"

static void test_reordered(void)
{
    const char *text = "Copy %s to %d in {dir}";
    protect_spans sp;
    protect_find(text, strlen(text), &sp);
    int re = -1;
    char *u = protect_unmask_args("把 " S0 " 复制到 " S2 " 的 " S1, text, &sp, &re);
    CHECK(u && !strcmp(u, "把 %s 复制到 {dir} 的 %d") && re == 0, "in order: \"%s\" reordered %d", u, re);
    free(u);
    u = protect_unmask_args(S2 " 的 " S1 " 是 " S0, text, &sp, &re);
    CHECK(u && !strcmp(u, "{dir} 的 %2$d 是 %1$s") && re == 1, "reordered: \"%s\" reordered %d", u, re);
    free(u);
    /* already positional: left as it is */
    const char *pos = "%1$s to %2$s";
    protect_find(pos, strlen(pos), &sp);
    u = protect_unmask_args(S1 " " S0, pos, &sp, &re);
    CHECK(u && !strcmp(u, "%2$s %1$s") && re == 0, "positional: \"%s\" reordered %d", u, re);
    free(u);
    /* training: a target that reorders with %N$ takes the source's sentinels */
    char *s, *t;
    int matched;
    CHECK(protect_mask_pair("Copy %s to %lu", "将 %2$lu 复制到 %1$s %3$s", &s, &t, &matched) == 0, "out of memory");
    CHECK(t && !strcmp(t, "将 " S1 " 复制到 " S0 " %3$s") && matched == 2, "target \"%s\", matched %d", t, matched);
    free(s);
    free(t);
    /* %2$d does not match a source %s */
    CHECK(protect_mask_pair("Copy %s to %s", "将 %2$d 复制到 %1$s", &s, &t, &matched) == 0, "out of memory");
    CHECK(t && !strcmp(t, "将 %2$d 复制到 " S0) && matched == 1, "target \"%s\", matched %d", t, matched);
    free(s);
    free(t);
}

static void test_drop_literals(void)
{
    char m1[] = "打开 " S0 " 的 %2$s 文件", m2[] = "<a title=\"" S1 "\">x</a>" S0, m3[] = "50% 完成 %z <b>",
         m4[] = "%s";
    CHECK(protect_drop_literals(m1) == 1 && !strcmp(m1, "打开 " S0 " 的 文件"), "\"%s\"", m1);
    CHECK(protect_drop_literals(m2) == 2 && !strcmp(m2, S1 "x" S0), "sentinel inside: \"%s\"", m2);
    CHECK(protect_drop_literals(m3) == 0 && !strcmp(m3, "50% 完成 %z <b>"), "malformed dropped: \"%s\"", m3);
    CHECK(protect_drop_literals(m4) == 1 && !strcmp(m4, ""), "\"%s\"", m4);
}

#define S3 "\xee\x80\x83"

/* protect_finish on masked (copied) for the source text: want the output */
static void expect_finish(const char *text, const char *masked, const char *want, int nested, int scrubbed)
{
    protect_spans sp;
    protect_find(text, strlen(text), &sp);
    char *m = strdup(masked);
    protect_finish_info fi;
    char *u = m ? protect_finish(m, text, &sp, &fi) : NULL;
    CHECK(u && !strcmp(u, want), "\"%s\": \"%s\", want \"%s\"", text, u ? u : "(null)", want);
    CHECK(u && fi.nested == nested && fi.scrubbed == scrubbed && !fi.unverified,
          "\"%s\": nested %d scrubbed %d unverified %d, want %d %d 0", text, fi.nested, fi.scrubbed, fi.unverified,
          nested, scrubbed);
    free(m);
    free(u);
}

static void test_finish(void)
{
    /* inverted and crossed tags are put back in nesting order */
    expect_finish("<b>bold</b> and %1", S1 "粗" S0 " 和 " S2, "<b>粗</b> 和 %1", 1, 0);
    expect_finish("<b><i>x</i></b>", S0 S1 S3 S2, "<b><i></i></b>", 1, 0);
    /* another order that nests is the translator's choice */
    expect_finish("<b>a</b> <i>b</i>", S2 "乙" S3 S0 "甲" S1, "<i>乙</i><b>甲</b>", 0, 0);
    /* the model's text ran into a span: "%" + "%1" + "2" */
    expect_finish("Copy %1 files", "复制 %" S0 "2 个", "复制 %1 个", 0, 1);
    expect_finish("%PRODUCTNAME", S0 "X", "%PRODUCTNAME", 0, 1);
    expect_finish("Copy %1 files", "复制 " S0 "$s<2 个", "复制 %1 个", 0, 1);
    /* a '<' that makes no span is the model's text, and stays */
    expect_finish("<b>%s</b>", "<" S0 S1 S2, "<<b>%s</b>", 0, 0);
    /* written as text, dropped; reordered, made positional */
    expect_finish("%s of %d", S1 " 的 %s " S0, "%2$d 的 %1$s", 0, 0);
}

/* Whatever a model writes around the sentinels (noise from the characters
 * that make spans, sentinels in any order), protect_finish gives exactly the
 * source's spans. */
static void test_finish_any_model(void)
{
    static const char *const src[] = {"Copy %s to %d", "<b>%1</b> of {n} &amp; %PRODUCTNAME", "%%s %-*s %1$s",
                                      "<a href=\"x\"><i>%s</i></a>%2", "{0}{1}%L1 <br/> <!-- c -->"};
    static const char *const noise[] = {"%", "{", "}", "<", ">", "/", "&", ";", "$", "1", "2", "s", "d", "b",
                                        "i", "X", "_", " ", "字", "%s", "<b>", "</b>", "{x}", "&lt;", "%1$s"};
    qkv_rng r;
    qkv_rng_seed(&r, 17);
    for (int trial = 0; trial < 4000; trial++) {
        const char *text = src[trial % 5];
        protect_spans sp;
        protect_find(text, strlen(text), &sp);
        int order[PROTECT_MAX];
        for (int k = 0; k < sp.n; k++)
            order[k] = k;
        for (int k = sp.n - 1; k > 0; k--) {
            int j = (int)qkv_rng_below(&r, (uint64_t)k + 1), x = order[k];
            order[k] = order[j];
            order[j] = x;
        }
        char m[512] = "";
        for (int k = 0; k <= sp.n; k++) {
            int w = (int)qkv_rng_below(&r, 4);
            for (int j = 0; j < w; j++)
                strcat(m, noise[qkv_rng_below(&r, sizeof noise / sizeof noise[0])]);
            if (k < sp.n) {
                char b[4];
                protect_sentinel(order[k], b);
                strcat(m, b);
            }
        }
        protect_finish_info fi;
        char *u = protect_finish(m, text, &sp, &fi);
        int n1, n2;
        char *a = protect_keys(text, 0, &n1), *b = u ? protect_keys(u, 0, &n2) : NULL;
        CHECK(u && a && b && !strcmp(a, b) && !fi.unverified, "trial %d \"%s\": \"%s\" has other spans", trial, text,
              u ? u : "(null)");
        free(a);
        free(b);
        free(u);
        if (test_failures() > 0)
            return;
    }
}

static void test_overflow(void)
{
    char text[200] = "";
    for (int k = 0; k < PROTECT_MAX + 3; k++)
        strcat(text, "%s");
    protect_spans sp;
    protect_find(text, strlen(text), &sp);
    CHECK(sp.n == PROTECT_MAX && sp.overflow == 3, "n %d overflow %d", sp.n, sp.overflow);
}

static const test_case cases[] = {
    TEST(test_printf),     TEST(test_qt),        TEST(test_brace),    TEST(test_tags_entities),
    TEST(test_adjacent_nested), TEST(test_malformed), TEST(test_mask_unmask), TEST(test_mask_pair),
    TEST(test_overflow),   TEST(test_variables),  TEST(test_malformed_text), TEST(test_printf_args),
    TEST(test_reordered),  TEST(test_drop_literals), TEST(test_finish), TEST(test_finish_any_model),
};

int main(int argc, char **argv) { return test_main(argc, argv, cases, TEST_COUNT(cases)); }
