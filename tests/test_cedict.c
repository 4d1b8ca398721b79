/* CC-CEDICT -> pairs (src/data/cedict.c): every rule on crafted lines in
 * the dictionary's format, each counted once. */
#include <stdio.h>
#include <string.h>

#include "data/cedict.h"
#include "test.h"

static char got[2048];

static void emit(void *ctx, const char *en, const char *zh)
{
    (void)ctx;
    size_t n = strlen(got);
    snprintf(got + n, sizeof got - n, "%s=%s|", en, zh);
}

static void test_rules(void)
{
    const char *text = "# CC-CEDICT\n"
                       "# comment\n"
                       "愛 爱 [ai4] /to love; to be fond of; to like/affection/\n"
                       "我 我 [wo3] /I; me; my/\n"
                       "北京 北京 [Bei3 jing1] /Beijing, capital of China/\n"
                       "AA制 AA制 [A A zhi4] /to split the bill/\n"
                       "中華人民共和國 中华人民共和国 [Zhong1 hua2 Ren2 min2 Gong4 he2 guo2] /PRC/\n"
                       "一二三四五 一二三四五 [yi1 er4 san1 si4 wu3] /one two three four five/\n"
                       "於 于 [yu2] /variant of 於|于[yu2]/\n"
                       "文件 文件 [wen2 jian4] /document (file)/file/\n"
                       "檔案 档案 [dang4 an4] /file/record/\n"
                       "長 长 [chang2] /a gloss that has far too many words/\n"
                       "broken line without brackets\n"
                       "\n";
    got[0] = 0;
    cedict_report r;
    CHECK(cedict_parse(text, &r, emit, NULL) == QKV_OK, "parse: %s", qkv_last_error());
    CHECK(!strcmp(got, "to love=爱|I=我|document=文件|file=档案|"), "pairs \"%s\"", got);
    CHECK(r.lines == 13 && r.comments == 2 && r.malformed == 1, "lines %ld comments %ld malformed %ld", r.lines,
          r.comments, r.malformed);
    CHECK(r.proper_nouns == 1, "proper nouns %ld, want 1 (北京)", r.proper_nouns);
    CHECK(r.not_han == 1 && r.too_long_headword == 2, "not Han %ld, too long %ld", r.not_han, r.too_long_headword);
    CHECK(r.reference_glosses == 1 && r.no_gloss_left == 2, "references %ld, no gloss %ld", r.reference_glosses,
          r.no_gloss_left);
    CHECK(r.notes_removed == 1 && r.long_glosses == 1, "notes %ld, long %ld", r.notes_removed, r.long_glosses);
    CHECK(r.duplicate_glosses == 0 && r.pairs == 4, "duplicates %ld, pairs %ld", r.duplicate_glosses, r.pairs);
}

static void test_duplicates(void)
{
    got[0] = 0;
    cedict_report r;
    CHECK(cedict_parse("愛 爱 [ai4] /to love/\n寵 宠 [chong3] /to love/to pamper/\n", &r, emit, NULL) == QKV_OK,
          "parse");
    CHECK(!strcmp(got, "to love=爱|") && r.duplicate_glosses == 1, "pairs \"%s\", duplicates %ld", got,
          r.duplicate_glosses);
}

static void test_missing_file(void)
{
    cedict_report r;
    CHECK(cedict_read("/nonexistent/cedict.txt", &r, emit, NULL) != QKV_OK, "a missing file was read");
    CHECK(strstr(qkv_last_error(), "fetch-cedict") != NULL, "message \"%s\" does not say how to get it",
          qkv_last_error());
}

static const test_case cases[] = {TEST(test_rules), TEST(test_duplicates), TEST(test_missing_file)};

int main(int argc, char **argv) { return test_main(argc, argv, cases, TEST_COUNT(cases)); }
