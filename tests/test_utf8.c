/* UTF-8 decoding with sentencepiece's replacement rule, checked against a
 * plain transcription of the Unicode Standard's Table 3-7 (well-formed byte
 * sequences) and by round trips over every code point. */
#include <string.h>

#include "test.h"
#include "text/utf8.h"

/* Length of the well-formed sequence starting s[0..len), 0 if ill-formed. */
static size_t table_3_7(const unsigned char *s, size_t len)
{
    static const struct {
        unsigned char lo[4], hi[4];
        size_t n;
    } rows[] = {
        {{0x00}, {0x7F}, 1},
        {{0xC2, 0x80}, {0xDF, 0xBF}, 2},
        {{0xE0, 0xA0, 0x80}, {0xE0, 0xBF, 0xBF}, 3},
        {{0xE1, 0x80, 0x80}, {0xEC, 0xBF, 0xBF}, 3},
        {{0xED, 0x80, 0x80}, {0xED, 0x9F, 0xBF}, 3},
        {{0xEE, 0x80, 0x80}, {0xEF, 0xBF, 0xBF}, 3},
        {{0xF0, 0x90, 0x80, 0x80}, {0xF0, 0xBF, 0xBF, 0xBF}, 4},
        {{0xF1, 0x80, 0x80, 0x80}, {0xF3, 0xBF, 0xBF, 0xBF}, 4},
        {{0xF4, 0x80, 0x80, 0x80}, {0xF4, 0x8F, 0xBF, 0xBF}, 4},
    };
    for (size_t r = 0; r < sizeof rows / sizeof *rows; r++) {
        if (rows[r].n > len)
            continue;
        size_t k = 0;
        while (k < rows[r].n && s[k] >= rows[r].lo[k] && s[k] <= rows[r].hi[k])
            k++;
        if (k == rows[r].n)
            return k;
    }
    return 0;
}

static void test_against_table(void)
{
    static const unsigned char tail[] = {0x00, 0x41, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF};
    const size_t nt = sizeof tail;
    unsigned char s[4];
    for (int a = 0; a < 256; a++)
        for (int b = 0; b < 256; b++)
            for (size_t c = 0; c < nt; c++)
                for (size_t d = 0; d < nt; d++)
                    for (size_t len = 1; len <= 4; len++) {
                        s[0] = (unsigned char)a, s[1] = (unsigned char)b, s[2] = tail[c], s[3] = tail[d];
                        size_t n, want = table_3_7(s, len);
                        int valid;
                        uint32_t cp = utf8_decode((const char *)s, len, &n, &valid);
                        if (valid != (want > 0) || (valid ? n != want : n != 1 || cp != UTF8_REPLACEMENT)) {
                            CHECK(0, "%02X %02X %02X %02X (len %zu): valid %d n %zu cp %X, table says length %zu", a,
                                  b, tail[c], tail[d], len, valid, n, cp, want);
                            return;
                        }
                        if (len == 1 && d == 0 && c == 0 && b == 0)
                            CHECK(utf8_lead_len(s[0]) == (s[0] < 0xC0 ? 1u : s[0] < 0xE0 ? 2u : s[0] < 0xF0 ? 3u : 4u),
                                  "lead length of %02X: %zu", a, utf8_lead_len(s[0]));
                    }
}

static void test_every_code_point(void)
{
    char buf[4];
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        if (cp >= 0xD800 && cp < 0xE000)
            continue;
        size_t len = utf8_encode(buf, cp), n;
        int valid;
        uint32_t got = utf8_decode(buf, len, &n, &valid);
        if (!valid || got != cp || n != len || table_3_7((unsigned char *)buf, len) != len) {
            CHECK(0, "U+%04X: encoded in %zu bytes, decoded as U+%04X in %zu (valid %d)", cp, len, got, n, valid);
            return;
        }
        /* a cut sequence is malformed at its first byte */
        if (len > 1) {
            utf8_decode(buf, len - 1, &n, &valid);
            CHECK(!valid && n == 1, "U+%04X cut to %zu bytes: valid %d n %zu", cp, len - 1, valid, n);
        }
    }
}

static void test_count_invalid(void)
{
    const struct {
        const char *s;
        size_t bad;
    } c[] = {
        {"", 0},          {"plain ascii", 0},   {"\xE4\xBD\xA0\xE5\xA5\xBD", 0}, {"\xFF\xFE", 2},
        {"\xE4\xBD", 2},  {"\xED\xBF\xBF", 3},  {"\xF0\x9F\x98\x80\x80", 1},    {"\xEF\xBF\xBD", 0},
        {"a\xC3", 1},
    };
    for (size_t i = 0; i < sizeof c / sizeof *c; i++)
        CHECK(utf8_count_invalid(c[i].s, strlen(c[i].s)) == c[i].bad, "case %zu: %zu invalid, want %zu", i,
              utf8_count_invalid(c[i].s, strlen(c[i].s)), c[i].bad);
}

static const test_case cases[] = {
    TEST(test_against_table),
    TEST(test_every_code_point),
    TEST(test_count_invalid),
};

int main(int argc, char **argv) { return test_main(argc, argv, cases, TEST_COUNT(cases)); }
