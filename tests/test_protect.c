/* Protected spans (src/text/protect.c): each family, adjacent, nested and
 * malformed ones, masking and unmasking. */
#include <stdlib.h>
#include <string.h>

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
    TEST(test_overflow),
};

int main(int argc, char **argv) { return test_main(argc, argv, cases, TEST_COUNT(cases)); }
