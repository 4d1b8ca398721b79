/* data/corpus: each cleaning rule on its own, then the whole builder on the
 * small package tree tests/golden/formats/corpus (made by
 * scripts/golden/formats.py with msgfmt). No network. */
#include <cjson/cJSON.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/io.h"
#include "base/rng.h"
#include "data/corpus.h"
#include "data/labels.h"
#include "test.h"

/* ---- accelerators ---------------------------------------------------------- */

static void check_accel(const char *src, const char *tgt, const char *want_src, const char *want_tgt, int want_changed)
{
    char s[256], t[256];
    snprintf(s, sizeof s, "%s", src);
    snprintf(t, sizeof t, "%s", tgt);
    int changed = corpus_strip_accelerators(s, t);
    CHECK(!strcmp(s, want_src) && !strcmp(t, want_tgt) && changed == want_changed,
          "('%s', '%s') -> ('%s', '%s') changed %d, want ('%s', '%s') changed %d", src, tgt, s, t, changed, want_src,
          want_tgt, want_changed);
}

static void test_accelerators_gtk_underscore(void)
{
    check_accel("_File", "文件(_F)", "File", "文件", 1);
    check_accel("Save _As", "另存为(_A)", "Save As", "另存为", 1);
    check_accel("E_xit", "退出(_X)", "Exit", "退出", 1);
    check_accel("_Open…", "打开(_O)…", "Open…", "打开…", 1);
    check_accel("_Open", "打开 (_O)", "Open", "打开", 1);
    check_accel("_Open", "打开（_O）", "Open", "打开", 1); /* full-width parentheses */
    /* cases met in Debian's catalogs: the word kept untranslated keeps its mark */
    check_accel("_URL:", "_URL:", "URL:", "URL:", 1);
    check_accel("_Java runtime", "已安装的 _Java 运行时", "Java runtime", "已安装的 Java 运行时", 1);
    check_accel("Export _URLs relative", "导出相对的 _URL 地址", "Export URLs relative", "导出相对的 URL 地址", 1);
    check_accel("_Serif", "衬线字体(_Serif)", "Serif", "衬线字体(Serif)", 1);
    check_accel("Do _Not Send", "不发送(~N)", "Do Not Send", "不发送", 1); /* mixed kinds */
    check_accel("~Mozilla profile name", "~Mozilla 配置文件名称", "Mozilla profile name", "Mozilla 配置文件名称", 1);
    check_accel("_File", "_Datei", "File", "Datei", 1);        /* German: the mark moves in the word */
    check_accel("E_xit", "_Beenden", "Exit", "Beenden", 1);
    check_accel("_Über", "_About", "Über", "About", 1);      /* non-ASCII letter after the mark */
    check_accel("_File", "文件", "File", "文件", 1);           /* translator dropped it: word-initial is enough */
    check_accel("_File", "文件(F)", "File", "文件", 1);        /* "(F)" with the source's letter */
}

static void test_accelerators_other_marks(void)
{
    check_accel("&Open", "打开(&O)", "Open", "打开", 1);
    check_accel("Save ~As", "另存为(~A)", "Save As", "另存为", 1);
    check_accel("~Edit", "编辑(~E)", "Edit", "编辑", 1);
    check_accel("Op&en", "打开(&E)", "Open", "打开", 1);
    check_accel("File", "文件(_F)", "File", "文件", 1); /* source without a mark: the suffix still goes */
    check_accel("File", "_Datei", "File", "Datei", 1);
    check_accel("Same value for both", "Bei_de Seiten gleich", "Same value for both", "Beide Seiten gleich", 1);
    check_accel("Reverse direction", "Richtun_g umkehren", "Reverse direction", "Richtung umkehren", 1);
}

static void test_accelerators_left_alone(void)
{
    check_accel("max_connections must be positive", "max_connections 必须为正", "max_connections must be positive",
                "max_connections 必须为正", 0);
    check_accel("use __init__", "使用 __init__", "use __init__", "使用 __init__", 0);
    check_accel("Tom &amp; Jerry", "汤姆 &amp; 杰瑞", "Tom &amp; Jerry", "汤姆 &amp; 杰瑞", 0);
    check_accel("Fish && Chips", "鱼和薯条", "Fish && Chips", "鱼和薯条", 0);
    check_accel("Fish & Chips", "鱼 & 薯条", "Fish & Chips", "鱼 & 薯条", 0);
    check_accel("Q&A", "Q&A 问答", "Q&A", "Q&A 问答", 0);
    check_accel("AT&T syntax", "AT&T 语法", "AT&T syntax", "AT&T 语法", 0);
    check_accel("~/.config", "~/.config", "~/.config", "~/.config", 0);
    check_accel("a_b_c and d_e", "甲", "a_b_c and d_e", "甲", 0); /* several marks: identifiers */
    check_accel("file(s)", "文件(s)", "file(s)", "文件(s)", 0);  /* "(s)" is no accelerator without one in the source */
    check_accel("Plain text", "纯文本", "Plain text", "纯文本", 0);
    check_accel("add SCRIPTFILE", "SKRIPT_DATEI hinzufügen", "add SCRIPTFILE", "SKRIPT_DATEI hinzufügen", 0);
    check_accel("ignore the titlebar-font option", "Option (»titlebar_font«) ignoriert",
                "ignore the titlebar-font option", "Option (»titlebar_font«) ignoriert", 0);
    check_accel("Toolbar Style", "Werte: \"both_horiz\"", "Toolbar Style", "Werte: \"both_horiz\"", 0);
    check_accel("Date and time", "Datum&Zeit", "Date and time", "Datum&Zeit", 0); /* '&' mid-word: no */
}

static void test_placeholders_kept(void)
{
    check_accel("Copy %s to %s", "将 %1$s 复制到 %2$s", "Copy %s to %s", "将 %1$s 复制到 %2$s", 0);
    check_accel("_Replace %1 with %2", "用 %2 替换 %1(_R)", "Replace %1 with %2", "用 %2 替换 %1", 1);
    check_accel("Size: %ld_%d bytes", "大小：%ld_%d 字节", "Size: %ld_%d bytes", "大小：%ld_%d 字节", 0);
    check_accel("_Skip %s", "跳过 %s(_S)", "Skip %s", "跳过 %s", 1);
    char s[64] = "%s\n%d\t%1$s  %%";
    corpus_join_lines(s);
    CHECK(!strcmp(s, "%s %d %1$s %%"), "join: '%s'", s);
}

static int count_char(const char *s, char c)
{
    int n = 0;
    for (; *s; s++)
        n += *s == c;
    return n;
}

/* Random strings over the pieces the rules look at: cleaning only shrinks,
 * never touches '%' (placeholders), never breaks UTF-8, never crashes. */
static void test_cleaning_invariants_random(void)
{
    static const char *const pieces[] = {"_", "&", "~", "a", "B", "%s", "%1$s", "%ld", "%2", " ", "\n", "\t",
                                         "(", ")", "\xef\xbc\x88", "\xef\xbc\x89", "\xe4\xb8\xad", "&amp;",
                                         "&#38;", "x", "Z", "__", "&&"};
    const size_t n_pieces = sizeof pieces / sizeof pieces[0];
    qkv_rng rng;
    qkv_rng_seed(&rng, 8);
    int failures = 0;
    for (int iter = 0; iter < 20000 && failures < 5; iter++) {
        char in[2][128] = {"", ""}, out[2][128];
        for (int side = 0; side < 2; side++) {
            int k = (int)qkv_rng_below(&rng, 12);
            for (int j = 0; j < k; j++)
                strcat(in[side], pieces[qkv_rng_below(&rng, n_pieces)]);
            strcpy(out[side], in[side]);
        }
        corpus_strip_accelerators(out[0], out[1]);
        for (int side = 0; side < 2; side++) {
            corpus_join_lines(out[side]);
            int ok = strlen(out[side]) <= strlen(in[side]) && count_char(out[side], '%') == count_char(in[side], '%') &&
                     corpus_utf8_valid(out[side], strlen(out[side]));
            if (!ok && failures++ < 5)
                CHECK(0, "side %d: '%s' -> '%s' grew, lost a '%%' or broke UTF-8", side, in[side], out[side]);
        }
    }
}

/* ---- whitespace ------------------------------------------------------------ */

static void check_join(const char *in, const char *want, int want_joined)
{
    char s[256];
    snprintf(s, sizeof s, "%s", in);
    int j = corpus_join_lines(s);
    CHECK(!strcmp(s, want) && j == want_joined, "join('%s') = '%s' (%d), want '%s' (%d)", in, s, j, want, want_joined);
}

static void test_join_lines(void)
{
    check_join("Line one\nline two", "Line one line two", 1);
    check_join("  lead and trail  ", "lead and trail", 0);
    check_join("a \t b\n\n c", "a b c", 1);
    check_join("第一行\n第二行", "第一行第二行", 1);   /* no space between CJK across a line break */
    check_join("第一行 第二行", "第一行 第二行", 0);   /* a space the translator typed stays */
    check_join("中文\nEnglish", "中文 English", 1);
    check_join("\n\n", "", 1);
    check_join("", "", 0);
    check_join("x\r\ny", "x y", 1);
}

static void test_utf8_and_hash(void)
{
    CHECK(corpus_utf8_chars("中文ab") == 4, "chars %zu", corpus_utf8_chars("中文ab"));
    CHECK(corpus_utf8_valid("中文", 6) && !corpus_utf8_valid("\xe4\xb8", 2) && !corpus_utf8_valid("\xc0\xaf", 2) &&
              !corpus_utf8_valid("\xed\xa0\x80", 3) && !corpus_utf8_valid("a\0b", 3),
          "utf8 validity");
    /* FNV-1a 64 reference values */
    CHECK(corpus_fnv1a64("") == 0xcbf29ce484222325ull, "fnv('') %llx", (unsigned long long)corpus_fnv1a64(""));
    CHECK(corpus_fnv1a64("a") == 0xaf63dc4c8601ec8cull, "fnv('a') %llx", (unsigned long long)corpus_fnv1a64("a"));
    CHECK(corpus_fnv1a64("foobar") == 0x85944171f73967e8ull, "fnv('foobar') %llx",
          (unsigned long long)corpus_fnv1a64("foobar"));
}

/* ---- the whole builder ------------------------------------------------------ */

typedef struct {
    char *lines[64];
    int n;
} lines;

static void read_lines(const char *dir, const char *name, lines *l)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *text;
    size_t len;
    l->n = 0;
    if (qkv_read_file(path, &text, &len) != QKV_OK) {
        CHECK(0, "%s", qkv_last_error());
        return;
    }
    CHECK(len == 0 || text[len - 1] == '\n', "%s does not end with a newline", name);
    for (char *save = NULL, *t = strtok_r(text, "\n", &save); t && l->n < 64; t = strtok_r(NULL, "\n", &save))
        l->lines[l->n++] = strdup(t);
    free(text);
}

static void free_lines(lines *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->lines[i]);
    l->n = 0;
}

static const char *lookup(const lines *src, const lines *tgt, const char *s)
{
    for (int i = 0; i < src->n && i < tgt->n; i++)
        if (!strcmp(src->lines[i], s))
            return tgt->lines[i];
    return NULL;
}

static char out_dir[256];

static int build(corpus_report *r, int dev, int test, int max_chars)
{
    snprintf(out_dir, sizeof out_dir, "/tmp/qkv_test_corpus_%ld", (long)getpid());
    mkdir(out_dir, 0755);
    char root[512];
    snprintf(root, sizeof root, "%s/formats/corpus", test_golden_dir());
    corpus_options o = corpus_default_options();
    o.dev_size = dev;
    o.test_size = test;
    o.max_chars = max_chars;
    qkv_status s = corpus_build(root, NULL, out_dir, &o, r);
    CHECK(s == QKV_OK, "build: %s", qkv_last_error());
    return s == QKV_OK;
}

static void remove_outputs(void)
{
    const char *names[] = {"train.en",     "train.zh",         "dev.en",          "dev.zh",
                           "test.en",      "test.zh",          "report.json",     "labels.tsv",
                           "train.labels.tsv", "dev.labels.tsv", "test.labels.tsv"};
    char p[512];
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++) {
        snprintf(p, sizeof p, "%s/%s", out_dir, names[i]);
        remove(p);
    }
    rmdir(out_dir);
}

/* The fixture's expected pairs after cleaning, in corpus order (catalogs by
 * path: pkg-a/.../a.mo, pkg-b/usr/lib/libreoffice/..., pkg-b/usr/share/...).
 * Keep in sync with CORPUS_CATALOGS in scripts/golden/formats.py. */
static const char *const expected[][2] = {
    {"%d file", "%d 个文件"},
    {"Open", "打开"},
    {"100% done", "完成 100%"},
    {"Copy %s to %s", "将 %1$s 复制到 %2$s"},
    {"Line one line two end", "第一行第二行结束"},
    {"Replace %1 with %2", "用 %2 替换 %1"},
    {"Save As", "另存为"},
    {"Size: %ld bytes", "大小：%ld 字节"},
    {"File", "文件"},
    {"Quit", "退出"},
    {"Fish && Chips", "鱼和薯条"},
    {"Edit", "编辑"},
    {"Help", "帮助"},
    {"Fine", "好"},
};
#define N_EXPECTED ((int)(sizeof expected / sizeof expected[0]))

static void test_build_fixture_tree(void)
{
    corpus_report r;
    if (!build(&r, 2, 3, 200))
        return;
    CHECK(r.catalogs == 5, "%d catalogs (the German one must be ignored)", r.catalogs);
    CHECK(r.catalogs_not_utf8 == 1, "%d catalogs not in UTF-8 (latin1.mo)", r.catalogs_not_utf8);
    CHECK(r.headers == 4, "%ld headers", r.headers);
    CHECK(r.entries == 19, "%ld entries read", r.entries);
    CHECK(r.invalid_utf8 == 1, "%ld invalid UTF-8 (utf8.mo 'Broken')", r.invalid_utf8);
    CHECK(r.untranslated == 0, "%ld untranslated (msgfmt already dropped the one in the .po)", r.untranslated);
    CHECK(r.contexts_stripped == 1, "%ld contexts", r.contexts_stripped);
    CHECK(r.plurals_singular == 1, "%ld plurals", r.plurals_singular);
    CHECK(r.accelerators == 5, "%ld accelerators", r.accelerators);
    CHECK(r.lines_joined == 1, "%ld joined", r.lines_joined);
    CHECK(r.empty == 1, "%ld empty ('   ')", r.empty);
    CHECK(r.too_long == 1, "%ld too long", r.too_long);
    CHECK(r.duplicates == 2, "%ld duplicates ('Open', '_File' in pkg-b)", r.duplicates);
    CHECK(r.train == N_EXPECTED - 5 && r.dev == 2 && r.test == 3, "splits %ld/%ld/%ld", r.train, r.dev, r.test);
    CHECK(r.n_packages == 3 && r.packages[0].pairs == 10 && r.packages[1].pairs == 3 && r.packages[2].pairs == 1 &&
              r.packages[0].catalogs == 1 && r.packages[1].catalogs == 2 && r.packages[2].catalogs == 2,
          "per package: %ld pairs in %d catalogs, %ld in %d", r.n_packages > 0 ? r.packages[0].pairs : -1,
          r.n_packages > 0 ? r.packages[0].catalogs : -1, r.n_packages > 1 ? r.packages[1].pairs : -1,
          r.n_packages > 1 ? r.packages[1].catalogs : -1);

    /* every expected pair is in exactly one split, aligned line by line;
     * test holds the smallest source hashes, dev the next */
    const char *splits[] = {"train", "dev", "test"};
    lines src[3], tgt[3];
    int found = 0;
    uint64_t max_test = 0, min_dev = UINT64_MAX, max_dev = 0, min_train = UINT64_MAX;
    for (int k = 0; k < 3; k++) {
        char a[32], b[32];
        snprintf(a, sizeof a, "%s.en", splits[k]);
        snprintf(b, sizeof b, "%s.zh", splits[k]);
        read_lines(out_dir, a, &src[k]);
        read_lines(out_dir, b, &tgt[k]);
        CHECK(src[k].n == tgt[k].n, "%s: %d English lines, %d Chinese", splits[k], src[k].n, tgt[k].n);
        for (int i = 0; i < src[k].n; i++) {
            uint64_t h = corpus_fnv1a64(src[k].lines[i]);
            if (k == 2 && h > max_test)
                max_test = h;
            if (k == 1 && h < min_dev)
                min_dev = h;
            if (k == 1 && h > max_dev)
                max_dev = h;
            if (k == 0 && h < min_train)
                min_train = h;
        }
    }
    CHECK(max_test < min_dev && max_dev < min_train, "splits not ordered by source hash");
    for (int e = 0; e < N_EXPECTED; e++) {
        int hits = 0;
        for (int k = 0; k < 3; k++) {
            const char *t = lookup(&src[k], &tgt[k], expected[e][0]);
            if (t) {
                hits++;
                CHECK(!strcmp(t, expected[e][1]), "'%s' -> '%s', want '%s'", expected[e][0], t, expected[e][1]);
            }
        }
        found += hits == 1;
        CHECK(hits == 1, "'%s' is in %d splits", expected[e][0], hits);
    }
    CHECK(src[0].n + src[1].n + src[2].n == N_EXPECTED, "%d pairs written, want %d", src[0].n + src[1].n + src[2].n,
          N_EXPECTED);
    /* within a split, corpus order */
    int last = -1, ordered = 1;
    for (int i = 0; i < src[0].n; i++)
        for (int e = 0; e < N_EXPECTED; e++)
            if (!strcmp(src[0].lines[i], expected[e][0])) {
                ordered &= e > last;
                last = e;
            }
    CHECK(ordered, "train is not in corpus order");
    for (int k = 0; k < 3; k++) {
        free_lines(&src[k]);
        free_lines(&tgt[k]);
    }

    /* report.json carries the same counts */
    char path[512], *text;
    size_t len;
    snprintf(path, sizeof path, "%s/report.json", out_dir);
    CHECK(qkv_read_file(path, &text, &len) == QKV_OK, "%s", qkv_last_error());
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(j, "steps");
    const cJSON *dup = cJSON_GetObjectItemCaseSensitive(steps, "duplicates_dropped");
    const cJSON *train = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "splits"), "train");
    CHECK(cJSON_IsNumber(dup) && dup->valueint == 2 && cJSON_IsNumber(train) && train->valueint == r.train,
          "report.json counts differ from the report");
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "packages")) == 3, "report.json packages");
    cJSON_Delete(j);
    corpus_report_free(&r);
    remove_outputs();
}

static void test_build_is_deterministic(void)
{
    corpus_report r;
    char *a[6] = {0}, *b[6] = {0};
    size_t la[6], lb[6];
    const char *names[] = {"train.en", "train.zh", "dev.en", "dev.zh", "test.en", "test.zh"};
    for (int run = 0; run < 2; run++) {
        if (!build(&r, 1, 1, 200))
            return;
        corpus_report_free(&r);
        for (int i = 0; i < 6; i++) {
            char p[512];
            snprintf(p, sizeof p, "%s/%s", out_dir, names[i]);
            CHECK(qkv_read_file(p, run ? &b[i] : &a[i], run ? &lb[i] : &la[i]) == QKV_OK, "%s", qkv_last_error());
        }
    }
    for (int i = 0; i < 6; i++) {
        CHECK(a[i] && b[i] && la[i] == lb[i] && !memcmp(a[i], b[i], la[i]), "%s differs between runs", names[i]);
        free(a[i]);
        free(b[i]);
    }
    remove_outputs();
}

/* labels.tsv: the header, then the rows of train, dev and test, each the
 * split its source went to, labelled with its package, packages under
 * label_min_pairs left out; the per-split files hold the same rows, and the
 * reader gives each split back. */
static void test_labels_files(void)
{
    snprintf(out_dir, sizeof out_dir, "/tmp/qkv_test_corpus_%ld", (long)getpid());
    mkdir(out_dir, 0755);
    char root[512];
    snprintf(root, sizeof root, "%s/formats/corpus", test_golden_dir());
    corpus_options o = corpus_default_options();
    CHECK(o.label_min_pairs == 1000, "default label_min_pairs %ld", o.label_min_pairs);
    o.dev_size = 2;
    o.test_size = 3;
    o.label_min_pairs = 3; /* pkg-a (10 pairs) and pkg-b (3) in, pkg-c (1) out */
    corpus_report r;
    if (corpus_build(root, NULL, out_dir, &o, &r) != QKV_OK) {
        CHECK(0, "build: %s", qkv_last_error());
        return;
    }
    const char *splits[] = {"train", "dev", "test"};
    lines en[3], all;
    for (int k = 0; k < 3; k++) {
        char name[32];
        snprintf(name, sizeof name, "%s.en", splits[k]);
        read_lines(out_dir, name, &en[k]);
    }
    read_lines(out_dir, "labels.tsv", &all);
    CHECK(all.n > 0 && !strcmp(all.lines[0], LABELS_HEADER), "labels.tsv starts with '%s'", all.n ? all.lines[0] : "");
    int rows[3] = {0}, last_split = 0, in_order = 1;
    for (int i = 1; i < all.n; i++) {
        char buf[512], *f[3] = {buf, NULL, NULL};
        snprintf(buf, sizeof buf, "%s", all.lines[i]);
        for (int j = 1; j < 3; j++)
            if (f[j - 1] && (f[j] = strchr(f[j - 1], '\t')) != NULL)
                *f[j]++ = '\0';
        if (!f[1] || !f[2]) {
            CHECK(0, "labels.tsv line %d: '%s' has not three fields", i + 1, all.lines[i]);
            continue;
        }
        int k = !strcmp(f[0], "train") ? 0 : !strcmp(f[0], "dev") ? 1 : !strcmp(f[0], "test") ? 2 : -1;
        CHECK(k >= 0, "labels.tsv line %d: split '%s'", i + 1, f[0]);
        if (k < 0)
            continue;
        in_order &= k >= last_split;
        last_split = k;
        rows[k]++;
        CHECK(!strcmp(f[1], "pkg-a") || !strcmp(f[1], "pkg-b"), "labels.tsv line %d: package '%s'", i + 1, f[1]);
        int found = 0;
        for (int j = 0; j < en[k].n; j++)
            found |= !strcmp(en[k].lines[j], f[2]);
        CHECK(found, "labels.tsv line %d: '%s' is not in %s.en", i + 1, f[2], splits[k]);
    }
    CHECK(in_order, "labels.tsv: splits not in the order train, dev, test");
    CHECK(rows[0] + rows[1] + rows[2] == 13, "labels.tsv has %d rows, want the 13 of pkg-a and pkg-b",
          rows[0] + rows[1] + rows[2]);
    free_lines(&all);
    for (int k = 0; k < 3; k++) {
        char name[32];
        snprintf(name, sizeof name, "%s.labels.tsv", splits[k]);
        char path[512];
        snprintf(path, sizeof path, "%s/%s", out_dir, name);
        labels_set one, from_all;
        if (labels_read(&one, path, "train") != QKV_OK) {
            CHECK(0, "%s", qkv_last_error());
            continue;
        }
        CHECK(!one.has_splits && one.n == rows[k], "%s: %d rows (splits %d), labels.tsv has %d", name, one.n,
              one.has_splits, rows[k]);
        snprintf(path, sizeof path, "%s/labels.tsv", out_dir);
        if (rows[k] == 0) {
            CHECK(labels_read(&from_all, path, splits[k]) == QKV_ERR_FORMAT, "empty split %s read", splits[k]);
        } else if (labels_read(&from_all, path, splits[k]) == QKV_OK) {
            CHECK(from_all.has_splits && from_all.n == one.n, "split %s of labels.tsv: %d rows, %s %d", splits[k],
                  from_all.n, name, one.n);
            for (int i = 0; i < one.n && i < from_all.n; i++)
                CHECK(!strcmp(one.labels[i], from_all.labels[i]) && !strcmp(one.texts[i], from_all.texts[i]),
                      "%s row %d: '%s' '%s' in labels.tsv, '%s' '%s' in %s", splits[k], i + 1, from_all.labels[i],
                      from_all.texts[i], one.labels[i], one.texts[i], name);
            labels_free(&from_all);
        } else {
            CHECK(0, "%s", qkv_last_error());
        }
        labels_free(&one);
        free_lines(&en[k]);
    }
    corpus_report_free(&r);
    remove_outputs();
}

static qkv_status parse(labels_set *l, const char *text, const char *split)
{
    char *copy = strdup(text);
    return copy ? labels_parse(l, copy, strlen(copy), "x.tsv", split) : QKV_ERR_NOMEM;
}

static void check_parse_error(const char *text, const char *split, qkv_status want, const char *want_msg)
{
    labels_set l;
    qkv_status s = parse(&l, text, split);
    CHECK(s == want && strstr(qkv_last_error(), want_msg) && !l.labels && !l.buf,
          "'%s' (split %s): status %d '%s', want %d '%s'", text, split ? split : "NULL", s, qkv_last_error(), want,
          want_msg);
    if (s == QKV_OK)
        labels_free(&l);
}

static void test_labels_parse(void)
{
    static const char file[] = "split\tlabel\ttext\r\n"
                               "train\tgtk\tOpen File\n"
                               "dev\tpg\tSELECT\ta tab\n"
                               "train\tpg\t\n"
                               "test\tgtk\tQuit";
    const char *splits[] = {"train", "dev", "test"};
    const int want_n[] = {2, 1, 1};
    const char *want_first[][2] = {{"gtk", "Open File"}, {"pg", "SELECT\ta tab"}, {"gtk", "Quit"}};
    for (int k = 0; k < 3; k++) {
        labels_set l;
        if (parse(&l, file, splits[k]) != QKV_OK) {
            CHECK(0, "split %s: %s", splits[k], qkv_last_error());
            continue;
        }
        CHECK(l.has_splits && l.rows == 4 && l.n == want_n[k], "split %s: %d rows of %d, splits %d", splits[k], l.n,
              l.rows, l.has_splits);
        if (l.n > 0)
            CHECK(!strcmp(l.labels[0], want_first[k][0]) && !strcmp(l.texts[0], want_first[k][1]),
                  "split %s: first row '%s' '%s', want '%s' '%s'", splits[k], l.labels[0], l.texts[0],
                  want_first[k][0], want_first[k][1]);
        if (k == 0 && l.n == 2)
            CHECK(!strcmp(l.labels[1], "pg") && !strcmp(l.texts[1], ""), "an empty text: '%s' '%s'", l.labels[1],
                  l.texts[1]);
        labels_free(&l);
    }
    /* without the exact header: the two-column form, every row, split unused */
    labels_set l;
    if (parse(&l, "gtk\tOpen\r\npg\tSELECT x\n", "dev") == QKV_OK) {
        CHECK(!l.has_splits && l.n == 2 && !strcmp(l.labels[1], "pg") && !strcmp(l.texts[0], "Open"),
              "two-column file: %d rows, splits %d", l.n, l.has_splits);
        labels_free(&l);
    } else {
        CHECK(0, "%s", qkv_last_error());
    }
    if (parse(&l, "split\tlabel\ttext \ntrain\tgtk\tOpen\n", "test") == QKV_OK) {
        CHECK(!l.has_splits && l.n == 2 && !strcmp(l.labels[0], "split") && !strcmp(l.labels[1], "train"),
              "a near-header is no header: %d rows, splits %d", l.n, l.has_splits);
        labels_free(&l);
    } else {
        CHECK(0, "%s", qkv_last_error());
    }
    if (parse(&l, "", "train") == QKV_OK) {
        CHECK(!l.has_splits && l.n == 0, "empty file: %d rows", l.n);
        labels_free(&l);
    } else {
        CHECK(0, "%s", qkv_last_error());
    }
    /* errors name the file and the line */
    check_parse_error("split\tlabel\ttext\ntrain\tgtk\tOpen\ntrain gtk Open\n", "train", QKV_ERR_FORMAT,
                      "x.tsv: line 3: expected SPLIT<TAB>LABEL<TAB>TEXT");
    check_parse_error("split\tlabel\ttext\ntrain\tgtk Open\n", "train", QKV_ERR_FORMAT,
                      "x.tsv: line 2: expected SPLIT<TAB>LABEL<TAB>TEXT");
    check_parse_error("split\tlabel\ttext\ntrain\tgtk\tOpen\nvalid\tgtk\tQuit\n", "train", QKV_ERR_FORMAT,
                      "x.tsv: line 3: unknown split 'valid'");
    check_parse_error("split\tlabel\ttext\ntrain\t\tOpen\n", "train", QKV_ERR_FORMAT, "x.tsv: line 2: empty label");
    check_parse_error("split\tlabel\ttext\ntrain\tgtk\tOpen\ndev\tpg\tQuit\n", "test", QKV_ERR_FORMAT,
                      "x.tsv: no row of split 'test' (2 rows");
    check_parse_error("split\tlabel\ttext\n", "train", QKV_ERR_FORMAT, "x.tsv: no row of split 'train' (0 rows");
    check_parse_error("split\tlabel\ttext\ntrain\tgtk\tOpen\n", "validation", QKV_ERR_ARG, "split 'validation'");
    check_parse_error("gtk\tOpen\nno tab here\n", "train", QKV_ERR_FORMAT, "x.tsv: line 2: expected LABEL<TAB>TEXT");
    check_parse_error("gtk\tOpen\n\tOpen\n", "train", QKV_ERR_FORMAT, "x.tsv: line 2: empty label");
    CHECK(labels_read(&l, "/nonexistent/labels.tsv", "train") == QKV_ERR_IO && !l.buf, "a missing file was read");

    /* the writer's rows read back; tabs and line breaks in the text became spaces */
    char path[128];
    snprintf(path, sizeof path, "/tmp/qkv_test_labels_%ld.tsv", (long)getpid());
    FILE *fp = fopen(path, "wb");
    CHECK(fp != NULL, "cannot write %s", path);
    if (!fp)
        return;
    fputs(LABELS_HEADER "\n", fp);
    CHECK(labels_write_row(fp, "test", "pkg", "a\tb\nc\rd") == QKV_OK, "%s", qkv_last_error());
    CHECK(labels_write_row(fp, "valid", "pkg", "x") == QKV_ERR_ARG, "split 'valid' written");
    CHECK(labels_write_row(fp, "dev", "p\tq", "x") == QKV_ERR_ARG, "a label with a tab written");
    CHECK(labels_write_row(fp, "dev", "", "x") == QKV_ERR_ARG, "an empty label written");
    fclose(fp);
    if (labels_read(&l, path, "test") == QKV_OK) {
        CHECK(l.n == 1 && l.rows == 1 && !strcmp(l.labels[0], "pkg") && !strcmp(l.texts[0], "a b c d"),
              "written row read back as %d rows, '%s' '%s'", l.n, l.n ? l.labels[0] : "", l.n ? l.texts[0] : "");
        labels_free(&l);
    } else {
        CHECK(0, "%s", qkv_last_error());
    }
    unlink(path);
}

static void test_length_limit_and_small_corpus(void)
{
    corpus_report r;
    /* max 8 characters: only the short pairs survive; dev+test larger than the corpus */
    if (!build(&r, 100, 100, 8))
        return;
    long kept = r.train + r.dev + r.test;
    CHECK(kept == 8, "%ld pairs of at most 8 characters, want 8", kept);
    CHECK(r.too_long == 7, "%ld too long at 8 characters, want 7", r.too_long);
    CHECK(r.test == kept && r.dev == 0 && r.train == 0, "splits %ld/%ld/%ld of %ld", r.train, r.dev, r.test, kept);
    corpus_report_free(&r);
    remove_outputs();
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void copy_file(const char *from, const char *to)
{
    char *data;
    size_t len;
    CHECK(qkv_read_file(from, &data, &len) == QKV_OK, "%s", qkv_last_error());
    if (data)
        CHECK(qkv_write_file(to, data, len) == QKV_OK, "%s", qkv_last_error());
    free(data);
}

/* corpus_fetch on a cache that already holds the .deb (no network):
 * unpacks once, then finds the cache complete; a stray half-unpacked
 * "<pkg>.tmp" directory is never read. Needs dpkg-deb (Debian). */
static void test_fetch_unpacks_once(void)
{
    CHECK(access("/usr/bin/dpkg-deb", X_OK) == 0, "dpkg-deb is missing: this test needs Debian's dpkg");
    char cache[64], p[512], q[512];
    snprintf(cache, sizeof cache, "/tmp/qkv_test_corpus_fetch_%ld", (long)getpid());
    snprintf(p, sizeof p, "%s/debs", cache);
    mkdir(cache, 0755);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/debs/qkv-test-catalogs_1.0_all.deb", cache);
    snprintf(q, sizeof q, "%s/formats/debs/qkv-test-catalogs_1.0_all.deb", test_golden_dir());
    copy_file(q, p);
    corpus_options o = corpus_default_options();
    o.download = 0;
    o.dev_size = o.test_size = 1;
    const char *const pk[] = {"qkv-test-catalogs", NULL};
    int fetched = -1;
    CHECK(corpus_fetch(cache, pk, &o, &fetched) == QKV_OK, "first fetch: %s", qkv_last_error());
    CHECK(fetched == 1, "first fetch unpacked %d packages", fetched);
    snprintf(p, sizeof p, "%s/root/qkv-test-catalogs/.qkv-unpacked", cache);
    CHECK(access(p, F_OK) == 0, "no marker %s", p);
    CHECK(corpus_fetch(cache, pk, &o, &fetched) == QKV_OK && fetched == 0, "second fetch: %d fetched (%s)", fetched,
          qkv_last_error());

    /* an interrupted unpacking left this behind: corpus_build must skip it */
    snprintf(p, sizeof p, "%s/root/qkv-test-catalogs.tmp/usr/share/locale/zh_CN/LC_MESSAGES", cache);
    for (char *s = p + strlen(cache) + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            mkdir(p, 0755);
            *s = '/';
        }
    mkdir(p, 0755);
    strcat(p, "/a.mo");
    snprintf(q, sizeof q, "%s/formats/corpus/pkg-a/usr/share/locale/zh_CN/LC_MESSAGES/a.mo", test_golden_dir());
    copy_file(q, p);

    char root[300];
    snprintf(root, sizeof root, "%s/root", cache);
    snprintf(out_dir, sizeof out_dir, "%s/out", cache);
    mkdir(out_dir, 0755);
    corpus_report r;
    CHECK(corpus_build(root, NULL, out_dir, &o, &r) == QKV_OK, "build: %s", qkv_last_error());
    CHECK(r.catalogs == 1 && r.train + r.dev + r.test == 3, "%d catalogs, %ld pairs (want b.mo's 3)", r.catalogs,
          r.train + r.dev + r.test);
    CHECK(r.n_packages == 1 && !strcmp(r.packages[0].name, "qkv-test-catalogs"), "%d packages in the report",
          r.n_packages);
    corpus_report_free(&r);
    CHECK(nftw(cache, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0, "cannot remove %s", cache);
}

static void test_build_errors(void)
{
    corpus_options o = corpus_default_options();
    corpus_report r;
    char root[512];
    snprintf(root, sizeof root, "%s/formats/corpus", test_golden_dir());
    o.lang = "xx";
    CHECK(corpus_build(root, NULL, "/tmp", &o, &r) == QKV_ERR_IO && strstr(qkv_last_error(), "no catalogs"),
          "unknown language: %s", qkv_last_error());
    o = corpus_default_options();
    const char *const missing[] = {"pkg-a", "pkg-zzz", NULL};
    CHECK(corpus_build(root, missing, "/tmp", &o, &r) == QKV_ERR_IO && strstr(qkv_last_error(), "pkg-zzz"),
          "missing package: %s", qkv_last_error());
    o.max_chars = 0;
    CHECK(corpus_build(root, NULL, "/tmp", &o, &r) == QKV_ERR_CONFIG, "max_chars 0 accepted");
    o = corpus_default_options();
    CHECK(corpus_build(root, NULL, "/nonexistent-dir/out", &o, &r) == QKV_ERR_IO, "unwritable output accepted");
    /* fetching without downloading from an empty cache names the package */
    o.download = 0;
    int fetched;
    char cache[256];
    snprintf(cache, sizeof cache, "/tmp/qkv_test_corpus_cache_%ld", (long)getpid());
    const char *const pk[] = {"some-package", NULL};
    CHECK(corpus_fetch(cache, pk, &o, &fetched) == QKV_ERR_IO && strstr(qkv_last_error(), "some-package"),
          "no-download fetch: %s", qkv_last_error());
    const char *const bad[] = {"../etc", NULL};
    CHECK(corpus_fetch(cache, bad, &o, &fetched) == QKV_ERR_ARG, "path as package name accepted");
    char p[300];
    snprintf(p, sizeof p, "%s/debs", cache);
    rmdir(p);
    snprintf(p, sizeof p, "%s/root", cache);
    rmdir(p);
    rmdir(cache);
}

static const test_case cases[] = {
    TEST(test_accelerators_gtk_underscore),
    TEST(test_accelerators_other_marks),
    TEST(test_accelerators_left_alone),
    TEST(test_placeholders_kept),
    TEST(test_cleaning_invariants_random),
    TEST(test_join_lines),
    TEST(test_utf8_and_hash),
    TEST(test_build_fixture_tree),
    TEST(test_build_is_deterministic),
    TEST(test_labels_files),
    TEST(test_labels_parse),
    TEST(test_length_limit_and_small_corpus),
    TEST(test_fetch_unpacks_once),
    TEST(test_build_errors),
};

int main(int argc, char **argv) { return test_main(argc, argv, cases, TEST_COUNT(cases)); }
