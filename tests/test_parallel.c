/* data/parallel: reading aligned text into id pairs (errors, filters,
 * counts). The tokenizer is faked: one id per whitespace-separated number
 * (numbers_text.h), or one id per byte. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/rng.h"
#include "base/status.h"
#include "data/parallel.h"
#include "numbers_text.h"
#include "test.h"

/* ---- more fake encoders -------------------------------------------------------- */

/* One id per byte: byte + 3 (so 0, 1 and 2 stay special). */
static int encode_bytes(void *ctx, const char *text, size_t len, int *ids, int max_ids)
{
    (void)ctx;
    for (size_t i = 0; i < len && i < (size_t)max_ids; i++)
        ids[i] = (unsigned char)text[i] + 3;
    return (int)len;
}

/* Three ids per byte: more ids than bytes, to reach the reader's retry with
 * a larger buffer. */
static int encode_triple(void *ctx, const char *text, size_t len, int *ids, int max_ids)
{
    (void)ctx;
    for (size_t i = 0; i < 3 * len && i < (size_t)max_ids; i++)
        ids[i] = (unsigned char)text[i / 3] + 3 + (int)(i % 3);
    return (int)(3 * len);
}

/* encode_numbers that counts its calls in *(int *)ctx. */
static int encode_counting(void *ctx, const char *text, size_t len, int *ids, int max_ids)
{
    ++*(int *)ctx;
    return encode_numbers(NULL, text, len, ids, max_ids);
}

/* encode_triple that stops counting at max_ids + 1, as the contract allows. */
static int encode_triple_early(void *ctx, const char *text, size_t len, int *ids, int max_ids)
{
    int n = encode_triple(ctx, text, len, ids, max_ids);
    return n > max_ids ? max_ids + 1 : n;
}

/* Checks that pair i holds exactly the given source and target ids. */
static void check_pair(const char *file, int line, const qkv_parallel *c, int64_t i, const int *x, int nx, const int *y,
                       int ny)
{
    if (i >= c->n_pairs) {
        test_fail(file, line, "pair %lld missing (%lld pairs)", (long long)i, (long long)c->n_pairs);
        return;
    }
    if (c->pairs[i].src_len != nx || c->pairs[i].tgt_len != ny) {
        test_fail(file, line, "pair %lld lengths (%d, %d), want (%d, %d)", (long long)i, c->pairs[i].src_len,
                  c->pairs[i].tgt_len, nx, ny);
        return;
    }
    for (int k = 0; k < nx; k++)
        if (qkv_parallel_src(c, i)[k] != x[k])
            test_fail(file, line, "pair %lld source id %d is %d, want %d", (long long)i, k, qkv_parallel_src(c, i)[k], x[k]);
    for (int k = 0; k < ny; k++)
        if (qkv_parallel_tgt(c, i)[k] != y[k])
            test_fail(file, line, "pair %lld target id %d is %d, want %d", (long long)i, k, qkv_parallel_tgt(c, i)[k], y[k]);
}
#define CHECK_PAIR(c, i, x, y) \
    check_pair(__FILE__, __LINE__, (c), (i), (x), (int)(sizeof(x) / sizeof(int)), (y), (int)(sizeof(y) / sizeof(int)))

/* ---- parallel reader ----------------------------------------------------------- */

static void test_parallel_reads_pairs(void)
{
    /* CRLF endings and a last line without a newline. */
    const char *src = "5 6 7\n8\r\n9 10";
    const char *tgt = "11\n12 13 14 15\r\n16 17\n";
    qkv_parallel c;
    qkv_parallel_stats st;
    qkv_parallel_options o = numbers_options(0);
    CHECK(read_str(&c, src, tgt, &o, &st) == QKV_OK, "read: %s", qkv_last_error());
    CHECK(c.n_pairs == 3, "%lld pairs, want 3", (long long)c.n_pairs);
    static const int x0[] = {5, 6, 7}, y0[] = {11}, x1[] = {8}, y1[] = {12, 13, 14, 15}, x2[] = {9, 10}, y2[] = {16, 17};
    CHECK_PAIR(&c, 0, x0, y0);
    CHECK_PAIR(&c, 1, x1, y1);
    CHECK_PAIR(&c, 2, x2, y2);
    for (int i = 0; i < 3 && i < c.n_pairs; i++)
        CHECK(c.pairs[i].line == i + 1, "pair %d from line %lld", i, (long long)c.pairs[i].line);
    CHECK(st.lines == 3 && st.kept == 3 && st.empty == 0 && st.too_long == 0 && st.invalid_utf8 == 0,
          "stats lines %lld kept %lld empty %lld too_long %lld invalid %lld", (long long)st.lines, (long long)st.kept,
          (long long)st.empty, (long long)st.too_long, (long long)st.invalid_utf8);
    CHECK(st.src_tokens == 6 && st.tgt_tokens == 7, "token counts %lld, %lld; want 6, 7", (long long)st.src_tokens,
          (long long)st.tgt_tokens);
    CHECK(c.n_ids == 13, "%zu ids stored, want 13 (one buffer, no specials)", c.n_ids);
    CHECK(qkv_parallel_src_padded(&c, 0) == 4 && qkv_parallel_tgt_padded(&c, 0) == 2, "padded lengths %d, %d",
          qkv_parallel_src_padded(&c, 0), qkv_parallel_tgt_padded(&c, 0));
    qkv_parallel_free(&c);

    /* Without a source </s> the padded source is the bare one. */
    o.src_eos = -1;
    CHECK(read_str(&c, src, tgt, &o, NULL) == QKV_OK, "read without src eos: %s", qkv_last_error());
    CHECK(c.n_pairs == 3 && qkv_parallel_src_padded(&c, 0) == 3, "padded source %d, want 3",
          c.n_pairs ? qkv_parallel_src_padded(&c, 0) : -1);
    qkv_parallel_free(&c);

    /* Two empty texts: zero pairs, no error (the batcher refuses them later). */
    CHECK(read_str(&c, "", "", &o, &st) == QKV_OK && c.n_pairs == 0 && st.lines == 0, "empty texts: %s",
          qkv_last_error());
    qkv_parallel_free(&c);
}

static char tmpdir[64];

static void make_tmpdir(void)
{
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/qkv_test_parallel_XXXXXX");
        if (!mkdtemp(tmpdir))
            tmpdir[0] = 0;
    }
}

static const char *write_tmp(const char *name, const char *text)
{
    static char paths[8][128];
    static int next;
    make_tmpdir();
    char *p = paths[next++ % 8];
    snprintf(p, 128, "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    return p;
}

static void test_parallel_reads_files(void)
{
    const char *src = "1 2 3\n4 5\n\n6\n", *tgt = "7\n8 9\n10\n11 12 13\n";
    const char *ps = write_tmp("a.src", src), *pt = write_tmp("a.tgt", tgt);
    qkv_parallel a, b;
    qkv_parallel_stats sa, sb;
    qkv_parallel_options o = numbers_options(0);
    CHECK(qkv_parallel_read(&a, ps, pt, &o, &sa) == QKV_OK, "read files: %s", qkv_last_error());
    CHECK(read_str(&b, src, tgt, &o, &sb) == QKV_OK, "read text: %s", qkv_last_error());
    CHECK(a.n_pairs == 3 && b.n_pairs == 3, "pairs %lld (files) and %lld (text), want 3", (long long)a.n_pairs,
          (long long)b.n_pairs);
    CHECK(a.n_ids == b.n_ids && !memcmp(a.ids, b.ids, a.n_ids * sizeof(int)), "files and text give different ids");
    CHECK(!memcmp(&sa, &sb, sizeof sa), "files and text give different stats");
    CHECK(sa.empty == 1 && a.n_pairs == 3 && a.pairs[2].line == 4, "empty %lld, third pair from line %lld",
          (long long)sa.empty, a.n_pairs == 3 ? (long long)a.pairs[2].line : -1LL);
    qkv_parallel_free(&a);
    qkv_parallel_free(&b);
    unlink(ps);
    unlink(pt);
}

static void test_parallel_line_count_mismatch(void)
{
    const char *ps = write_tmp("m.src", "1\n2\n3\n4\n5\n"), *pt = write_tmp("m.tgt", "1\n2\n3\n");
    qkv_parallel c;
    qkv_parallel_options o = numbers_options(0);
    char want[300];
    CHECK(qkv_parallel_read(&c, ps, pt, &o, NULL) == QKV_ERR_FORMAT, "5 vs 3 lines accepted");
    snprintf(want, sizeof want, "%s has 5 lines but %s has 3", ps, pt);
    CHECK(strstr(qkv_last_error(), want), "message '%s' lacks '%s'", qkv_last_error(), want);
    CHECK(c.n_pairs == 0, "a partial corpus of %lld pairs was kept", (long long)c.n_pairs);
    qkv_parallel_free(&c);
    /* Files are counted before anything is encoded: a long encoding run does
     * not end in this error. */
    int calls = 0;
    o.encode_src = o.encode_tgt = encode_counting;
    o.src_ctx = o.tgt_ctx = &calls;
    CHECK(qkv_parallel_read(&c, ps, pt, &o, NULL) == QKV_ERR_FORMAT && calls == 0,
          "the encoder ran %d times before the line counts were compared", calls);
    qkv_parallel_free(&c);
    o = numbers_options(0);
    /* The other way round, and with a last line that lacks its newline. */
    const char *pt2 = write_tmp("m2.tgt", "1\n2\n3\n4\n5\n6\n7");
    CHECK(qkv_parallel_read(&c, ps, pt2, &o, NULL) == QKV_ERR_FORMAT, "5 vs 7 lines accepted");
    snprintf(want, sizeof want, "%s has 5 lines but %s has 7", ps, pt2);
    CHECK(strstr(qkv_last_error(), want), "message '%s' lacks '%s'", qkv_last_error(), want);
    qkv_parallel_free(&c);
    unlink(ps);
    unlink(pt);
    unlink(pt2);
}

/* A path that reads text through a pipe (not seekable, so not counted ahead:
 * the reader must still notice different line counts at the end). */
static const char *pipe_path(const char *text, int *fd_out)
{
    static char paths[2][64];
    static int next;
    int fds[2];
    if (pipe(fds) != 0)
        return "/nonexistent/pipe";
    if (write(fds[1], text, strlen(text)) != (ssize_t)strlen(text))
        test_fail(__FILE__, __LINE__, "short write to a pipe");
    close(fds[1]);
    *fd_out = fds[0];
    char *p = paths[next++ % 2];
    snprintf(p, 64, "/proc/self/fd/%d", fds[0]);
    return p;
}

static void test_parallel_pipes(void)
{
    qkv_parallel c;
    qkv_parallel_stats st;
    qkv_parallel_options o = numbers_options(0);
    int fa, fb;
    const char *pa = pipe_path("1\n2\n3\n", &fa), *pb = pipe_path("4\n5\n6", &fb);
    CHECK(qkv_parallel_read(&c, pa, pb, &o, &st) == QKV_OK && c.n_pairs == 3, "pipes: %s", qkv_last_error());
    qkv_parallel_free(&c);
    close(fa), close(fb);
    const char *file = write_tmp("p.tgt", "1\n2\n");
    pa = pipe_path("1\n2\n3\n4", &fa);
    char want[200];
    CHECK(qkv_parallel_read(&c, pa, file, &o, NULL) == QKV_ERR_FORMAT, "pipe of 4 lines and file of 2 accepted");
    snprintf(want, sizeof want, "%s has 4 lines but %s has 2", pa, file);
    CHECK(strstr(qkv_last_error(), want), "message '%s' lacks '%s'", qkv_last_error(), want);
    CHECK(c.n_pairs == 0, "a partial corpus of %lld pairs was kept", (long long)c.n_pairs);
    qkv_parallel_free(&c);
    close(fa);
    pa = pipe_path("1\n", &fa);
    CHECK(qkv_parallel_read(&c, file, pa, &o, NULL) == QKV_ERR_FORMAT, "file of 2 lines and pipe of 1 accepted");
    snprintf(want, sizeof want, "%s has 2 lines but %s has 1", file, pa);
    CHECK(strstr(qkv_last_error(), want), "message '%s' lacks '%s'", qkv_last_error(), want);
    qkv_parallel_free(&c);
    close(fa);
    unlink(file);
}

static void test_parallel_unreadable_files(void)
{
    qkv_parallel c;
    qkv_parallel_options o = numbers_options(0);
    const char *ok = write_tmp("ok.txt", "1\n");
    CHECK(qkv_parallel_read(&c, "/nonexistent/qkv.src", ok, &o, NULL) == QKV_ERR_IO, "missing source accepted");
    CHECK(strstr(qkv_last_error(), "/nonexistent/qkv.src"), "message lacks the path: %s", qkv_last_error());
    qkv_parallel_free(&c);
    CHECK(qkv_parallel_read(&c, ok, "/nonexistent/qkv.tgt", &o, NULL) == QKV_ERR_IO, "missing target accepted");
    CHECK(strstr(qkv_last_error(), "/nonexistent/qkv.tgt"), "message lacks the path: %s", qkv_last_error());
    qkv_parallel_free(&c);
    /* A directory opens but cannot be read. */
    make_tmpdir();
    CHECK(qkv_parallel_read(&c, ok, tmpdir, &o, NULL) == QKV_ERR_IO, "a directory as target accepted");
    CHECK(strstr(qkv_last_error(), tmpdir), "message lacks the path: %s", qkv_last_error());
    qkv_parallel_free(&c);
    unlink(ok);
}

static void test_parallel_empty_and_too_long(void)
{
    /* max_len 4: source x + </s> and target [start] + y must be <= 4. */
    const char *src = "1 2 3\n\n4\n   \n1 2 3 4\n5\n6\n7 8\n";
    const char *tgt = "1 2 3\n9\n\n9\n9\n1 2 3 4\n   \n9\n";
    /* lines: ok (3+1, 3+1) | empty src | empty tgt | blank src (no ids) | src 4+1 too long |
     *        tgt 4+1 too long | blank tgt | ok */
    qkv_parallel c;
    qkv_parallel_stats st;
    qkv_parallel_options o = numbers_options(4);
    CHECK(read_str(&c, src, tgt, &o, &st) == QKV_OK, "read: %s", qkv_last_error());
    CHECK(st.lines == 8 && st.kept == 2 && st.empty == 4 && st.too_long == 2,
          "lines %lld kept %lld empty %lld too_long %lld; want 8, 2, 4, 2", (long long)st.lines, (long long)st.kept,
          (long long)st.empty, (long long)st.too_long);
    CHECK(c.n_pairs == 2 && c.pairs[0].line == 1 && c.pairs[1].line == 8, "kept lines %lld, %lld; want 1, 8",
          c.n_pairs > 0 ? (long long)c.pairs[0].line : -1LL, c.n_pairs > 1 ? (long long)c.pairs[1].line : -1LL);
    static const int x1[] = {7, 8}, y1[] = {9};
    CHECK_PAIR(&c, 1, x1, y1);
    qkv_parallel_free(&c);
    /* One more position keeps the two long pairs. */
    o.max_len = 5;
    CHECK(read_str(&c, src, tgt, &o, &st) == QKV_OK && st.kept == 4 && st.too_long == 0,
          "max_len 5: kept %lld too_long %lld; want 4, 0", (long long)st.kept, (long long)st.too_long);
    qkv_parallel_free(&c);
    /* Without a source </s> the source may hold max_len ids. */
    o.max_len = 4;
    o.src_eos = -1;
    CHECK(read_str(&c, src, tgt, &o, &st) == QKV_OK && st.kept == 3 && st.too_long == 1,
          "no src eos: kept %lld too_long %lld; want 3, 1", (long long)st.kept, (long long)st.too_long);
    qkv_parallel_free(&c);
}

static void test_parallel_invalid_utf8(void)
{
    /* Bad: overlong "/", a UTF-16 surrogate, a byte that never occurs, a
     * truncated 3-byte sequence, a stray continuation byte. Good: ASCII,
     * Chinese, an emoji (4 bytes), U+10FFFF. */
    const char *bad[] = {"a\xC0\xAF", "\xED\xA0\x80", "x\xF5\x80\x80\x80", "\xE4\xB8", "\x80"};
    const char *good[] = {"plain", "\xE4\xBD\xA0\xE5\xA5\xBD", "\xF0\x9F\x98\x80", "\xF4\x8F\xBF\xBF"};
    char src[256] = "", tgt[256] = "";
    for (int i = 0; i < 5; i++) {
        strcat(src, bad[i]), strcat(src, "\n");
        strcat(tgt, "ok\n");
    }
    for (int i = 0; i < 4; i++) {
        strcat(src, "ok\n");
        strcat(tgt, good[i]), strcat(tgt, "\n");
    }
    strcat(src, "\xFF\n"), strcat(tgt, "\xFE\n"); /* both sides bad: two lines counted */
    qkv_parallel c;
    qkv_parallel_stats st;
    qkv_parallel_options o = numbers_options(0);
    o.encode_src = o.encode_tgt = encode_bytes;
    CHECK(read_str(&c, src, tgt, &o, &st) == QKV_OK, "read: %s", qkv_last_error());
    CHECK(st.invalid_utf8 == 7, "invalid_utf8 %lld, want 7", (long long)st.invalid_utf8);
    /* Counted, not dropped: the encoder decides what invalid bytes become. */
    CHECK(st.kept == 10 && c.n_pairs == 10, "kept %lld, want 10", (long long)st.kept);
    static const int x1[] = {0xED + 3, 0xA0 + 3, 0x80 + 3}, y1[] = {'o' + 3, 'k' + 3};
    CHECK_PAIR(&c, 1, x1, y1);
    qkv_parallel_free(&c);
}

/* UTF-8 validity by decoding the code point (a method unlike the reader's
 * table of allowed second bytes). */
static int ref_utf8_valid(const unsigned char *s, int n)
{
    for (int i = 0; i < n;) {
        unsigned c = s[i], cp;
        int k;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0)
            k = 1, cp = c & 0x1F;
        else if ((c & 0xF0) == 0xE0)
            k = 2, cp = c & 0x0F;
        else if ((c & 0xF8) == 0xF0)
            k = 3, cp = c & 0x07;
        else
            return 0;
        if (i + k >= n) /* truncated */
            return 0;
        for (int j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        static const unsigned min_cp[4] = {0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += k + 1;
    }
    return 1;
}

/* What the reader counts for one source line of n bytes. */
static int reader_utf8_valid(const unsigned char *bytes, int n)
{
    char line[16];
    memcpy(line, bytes, (size_t)n);
    line[n] = '\n';
    qkv_parallel c;
    qkv_parallel_stats st;
    qkv_parallel_options o = numbers_options(0);
    o.encode_src = o.encode_tgt = encode_bytes;
    qkv_status s = qkv_parallel_read_text(&c, line, (size_t)n + 1, "u.src", "a\n", 2, "u.tgt", &o, &st);
    qkv_parallel_free(&c);
    return s == QKV_OK && st.lines == 1 ? st.invalid_utf8 == 0 : -1;
}

static void test_parallel_utf8_exhaustive(void)
{
    /* Every 1- and 2-byte line, 3-byte lines over every lead and second byte,
     * 4-byte lines over every lead and second byte, and random lines of up to
     * 8 bytes; '\n' cannot occur inside a line and a final '\r' is removed. */
    int checked = 0, failures = 0;
    unsigned char b[8];
    qkv_rng r;
    qkv_rng_seed(&r, 21);
    static const unsigned char tails[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF};
    static const unsigned char last[] = {0x41, 0x80, 0xBF};
    const long nt = (long)sizeof tails, n1 = 256, n2 = n1 + 65536, n3 = n2 + 16 * 256 * nt,
               n4 = n3 + 8 * 256 * nt * 3, n5 = n4 + 100000;
    for (long k = 0; k < n5 && failures < 5; k++) {
        int n;
        if (k < n1)
            n = 1, b[0] = (unsigned char)k;
        else if (k < n2)
            n = 2, b[0] = (unsigned char)((k - n1) >> 8), b[1] = (unsigned char)(k - n1);
        else if (k < n3) { /* leads E0..EF */
            long m = k - n2;
            n = 3, b[0] = (unsigned char)(0xE0 + m / (256 * nt)), b[1] = (unsigned char)(m / nt % 256),
            b[2] = tails[m % nt];
        } else if (k < n4) { /* leads F0..F7 */
            long m = k - n3;
            n = 4, b[0] = (unsigned char)(0xF0 + m / (256 * nt * 3)), b[1] = (unsigned char)(m / (nt * 3) % 256),
            b[2] = tails[m / 3 % nt], b[3] = last[m % 3];
        } else {
            n = 1 + (int)qkv_rng_below(&r, 8);
            for (int i = 0; i < n; i++)
                b[i] = (unsigned char)(qkv_rng_below(&r, 4) ? 0x80 + qkv_rng_below(&r, 0x80) : qkv_rng_below(&r, 0x80));
        }
        if (memchr(b, '\n', (size_t)n) || b[n - 1] == '\r')
            continue;
        int want = ref_utf8_valid(b, n), got = reader_utf8_valid(b, n);
        checked++;
        if (got != want) {
            failures++;
            CHECK(0, "line of %d bytes %02x %02x %02x %02x: reader says %s, decoding says %s", n, b[0],
                  n > 1 ? b[1] : 0, n > 2 ? b[2] : 0, n > 3 ? b[3] : 0, got < 0 ? "error" : got ? "valid" : "invalid",
                  want ? "valid" : "invalid");
        }
    }
    CHECK(checked > 250000, "only %d lines checked", checked);
}

static void test_parallel_encoder_failure(void)
{
    qkv_parallel c;
    qkv_parallel_options o = numbers_options(0);
    CHECK(read_str(&c, "1\n2\n3\n", "1\n2 FAIL\n3\n", &o, NULL) == QKV_ERR_FORMAT, "encoder failure ignored");
    CHECK(strstr(qkv_last_error(), "tgt.txt:2") && strstr(qkv_last_error(), "asked to fail"),
          "message lacks the place or the encoder's reason: %s", qkv_last_error());
    CHECK(c.n_pairs == 0, "a partial corpus of %lld pairs was kept", (long long)c.n_pairs);
    qkv_parallel_free(&c);
    /* An id outside the declared vocabulary. */
    o.src_vocab_size = 100;
    CHECK(read_str(&c, "1\n2 100\n", "1\n2\n", &o, NULL) == QKV_ERR_FORMAT, "id 100 of a 100-id vocabulary accepted");
    CHECK(strstr(qkv_last_error(), "src.txt:2") && strstr(qkv_last_error(), "id 100"), "message: %s",
          qkv_last_error());
    qkv_parallel_free(&c);
}

static void test_parallel_long_encodings(void)
{
    /* More ids than bytes, no limit: the reader grows its buffer and asks again. */
    char line[2001];
    memset(line, 'q', 2000);
    line[2000] = 0;
    char src[2100];
    snprintf(src, sizeof src, "ab\n%s\n", line);
    qkv_parallel c;
    qkv_parallel_stats st;
    qkv_parallel_options o = numbers_options(0);
    o.encode_src = encode_triple;
    CHECK(read_str(&c, src, "1\n2\n", &o, &st) == QKV_OK, "read: %s", qkv_last_error());
    CHECK(c.n_pairs == 2 && c.pairs[1].src_len == 6000, "second source has %d ids, want 6000",
          c.n_pairs == 2 ? c.pairs[1].src_len : -1);
    if (c.n_pairs == 2) {
        const int *x = qkv_parallel_src(&c, 1);
        int bad = -1;
        for (int i = 0; i < 6000 && bad < 0; i++)
            if (x[i] != 'q' + 3 + i % 3)
                bad = i;
        CHECK(bad < 0, "id %d is %d, want %d", bad, bad >= 0 ? x[bad] : 0, bad >= 0 ? 'q' + 3 + bad % 3 : 0);
        CHECK(qkv_parallel_tgt(&c, 1)[0] == 2, "target after a long source: %d", qkv_parallel_tgt(&c, 1)[0]);
    }
    qkv_parallel_free(&c);
    /* An encoder that stops counting early gets a growing buffer until it fits. */
    o.encode_src = encode_triple_early;
    CHECK(read_str(&c, src, "1\n2\n", &o, &st) == QKV_OK && c.n_pairs == 2 && c.pairs[1].src_len == 6000,
          "early-stopping encoder: %s, %d ids", qkv_last_error(), c.n_pairs == 2 ? c.pairs[1].src_len : -1);
    qkv_parallel_free(&c);
    /* The same line with a limit is dropped as too long, not truncated. */
    o.max_len = 100;
    CHECK(read_str(&c, src, "1\n2\n", &o, &st) == QKV_OK && st.kept == 1 && st.too_long == 1,
          "limit 100: kept %lld too_long %lld", (long long)st.kept, (long long)st.too_long);
    qkv_parallel_free(&c);
}

static void test_parallel_options(void)
{
    qkv_parallel c;
    qkv_parallel_options o = numbers_options(0);
    o.encode_tgt = NULL;
    CHECK(read_str(&c, "1\n", "1\n", &o, NULL) == QKV_ERR_CONFIG && strstr(qkv_last_error(), "encode_tgt"),
          "missing encoder: %s", qkv_last_error());
    qkv_parallel_free(&c);
    o = numbers_options(1);
    CHECK(qkv_parallel_validate(&o) == QKV_ERR_CONFIG && strstr(qkv_last_error(), "max_len"), "max_len 1: %s",
          qkv_last_error());
    o = numbers_options(0);
    o.tgt_bos = -1;
    CHECK(qkv_parallel_validate(&o) == QKV_ERR_CONFIG && strstr(qkv_last_error(), "tgt_bos"), "tgt_bos -1: %s",
          qkv_last_error());
    o = numbers_options(0);
    o.tgt_vocab_size = 2; /* eos 2 is outside */
    CHECK(qkv_parallel_validate(&o) == QKV_ERR_CONFIG && strstr(qkv_last_error(), "tgt_eos"), "eos outside: %s",
          qkv_last_error());
}

static void test_cleanup(void)
{
    if (tmpdir[0])
        CHECK(rmdir(tmpdir) == 0, "temporary directory %s not empty", tmpdir);
}

static const test_case cases[] = {
    TEST(test_parallel_reads_pairs),
    TEST(test_parallel_reads_files),
    TEST(test_parallel_line_count_mismatch),
    TEST(test_parallel_unreadable_files),
    TEST(test_parallel_pipes),
    TEST(test_parallel_empty_and_too_long),
    TEST(test_parallel_invalid_utf8),
    TEST(test_parallel_utf8_exhaustive),
    TEST(test_parallel_encoder_failure),
    TEST(test_parallel_long_encodings),
    TEST(test_parallel_options),
    TEST(test_cleanup),
};

int main(int argc, char **argv) { return test_main(argc, argv, cases, TEST_COUNT(cases)); }
