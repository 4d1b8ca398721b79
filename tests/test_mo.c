/* formats/mo: catalogs written by msgfmt (fixtures from scripts/golden/formats.py)
 * in both byte orders, with and without fuzzy entries, and corrupt files. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/io.h"
#include "formats/mo.h"
#include "test.h"

static char *golden_path(const char *rel)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/formats/%s", test_golden_dir(), rel);
    return p;
}

static cJSON *load_expected(void)
{
    char *text;
    size_t len;
    if (qkv_read_file(golden_path("mo/expected.json"), &text, &len) != QKV_OK) {
        CHECK(0, "%s", qkv_last_error());
        return NULL;
    }
    cJSON *j = cJSON_Parse(text);
    free(text);
    CHECK(j != NULL, "expected.json does not parse");
    return j;
}

/* The script writes "%<PRIu64>" as in the .po; the reader expands it with
 * this platform's <inttypes.h>, as libintl does. */
static void expand_sysdep(char *out, size_t cap, const char *s)
{
    static const char *const seg[][2] = {{"<PRIu64>", PRIu64}, {"<PRId64>", PRId64}};
    size_t k = 0;
    while (*s && k + 1 < cap) {
        int hit = 0;
        for (size_t i = 0; i < 2 && !hit; i++) {
            size_t n = strlen(seg[i][0]);
            if (!strncmp(s, seg[i][0], n)) {
                k += (size_t)snprintf(out + k, cap - k, "%s", seg[i][1]);
                s += n;
                hit = 1;
            }
        }
        if (!hit)
            out[k++] = *s++;
    }
    out[k < cap ? k : cap - 1] = '\0';
}

static const char *js(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int same(const char *a, const char *b) { return (!a && !b) || (a && b && !strcmp(a, b)); }

static const mo_entry *find_entry(const mo_file *f, const char *ctx, const char *msgid)
{
    for (int i = 0; i < mo_count(f); i++) {
        const mo_entry *e = mo_get(f, i);
        if (same(e->context, ctx) && !strcmp(e->msgid, msgid))
            return e;
    }
    return NULL;
}

/* Checks f against expected.json; fuzzy entries are expected iff with_fuzzy. */
static void check_against_expected(const char *file, int with_fuzzy)
{
    cJSON *j = load_expected();
    if (!j)
        return;
    mo_file *f;
    CHECK(mo_open(&f, golden_path(file)) == QKV_OK, "open: %s", qkv_last_error());
    if (!f) {
        cJSON_Delete(j);
        return;
    }
    const cJSON *entries = cJSON_GetObjectItemCaseSensitive(j, "entries"), *e;
    int want = 0;
    cJSON_ArrayForEach(e, entries)
    {
        int fuzzy = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "fuzzy"));
        int sysdep = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "sysdep"));
        char msgid[512], plural[512], form[512];
        expand_sysdep(msgid, sizeof msgid, js(e, "msgid"));
        const mo_entry *m = find_entry(f, js(e, "context"), msgid);
        if (fuzzy && !with_fuzzy) {
            CHECK(m == NULL, "%s: fuzzy entry '%s' present", file, msgid);
            continue;
        }
        want++;
        CHECK(m != NULL, "%s: entry '%s' (context %s) missing", file, msgid, js(e, "context") ? js(e, "context") : "none");
        if (!m)
            continue;
        CHECK(m->sysdep == sysdep, "%s: '%s' sysdep %d, want %d", file, msgid, m->sysdep, sysdep);
        if (js(e, "msgid_plural")) {
            /* msgfmt stores msgid_plural literally, segments unexpanded */
            snprintf(plural, sizeof plural, "%s", js(e, "msgid_plural"));
            CHECK(m->msgid_plural && !strcmp(m->msgid_plural, plural), "%s: '%s' plural '%s', want '%s'", file, msgid,
                  m->msgid_plural ? m->msgid_plural : "(none)", plural);
        } else {
            CHECK(m->msgid_plural == NULL, "%s: '%s' has a plural '%s'", file, msgid, m->msgid_plural);
        }
        const cJSON *strs = cJSON_GetObjectItemCaseSensitive(e, "msgstr");
        CHECK(m->n_msgstr == cJSON_GetArraySize(strs), "%s: '%s' has %d forms, want %d", file, msgid, m->n_msgstr,
              cJSON_GetArraySize(strs));
        for (int k = 0; k < m->n_msgstr && k < cJSON_GetArraySize(strs); k++) {
            expand_sysdep(form, sizeof form, cJSON_GetArrayItem(strs, k)->valuestring);
            CHECK(!strcmp(m->msgstr[k], form), "%s: '%s' msgstr[%d] = '%s', want '%s'", file, msgid, k, m->msgstr[k],
                  form);
        }
    }
    CHECK(mo_count(f) == want, "%s: %d entries, want %d", file, mo_count(f), want);
    CHECK(mo_header(f) && !strcmp(mo_header(f), js(j, "header")), "%s: header '%s'", file,
          mo_header(f) ? mo_header(f) : "(none)");
    CHECK(!strcmp(mo_charset(f), "UTF-8"), "%s: charset '%s'", file, mo_charset(f));
    char pf[128];
    CHECK(mo_header_field(f, "Plural-Forms", pf, sizeof pf) && !strcmp(pf, "nplurals=2; plural=(n != 1);"),
          "%s: Plural-Forms '%s'", file, pf);
    CHECK(!mo_header_field(f, "Plural", pf, sizeof pf) && pf[0] == '\0', "%s: a field prefix matched", file);
    CHECK(mo_revision(f) == 1, "%s: revision 0x%x, want 1 (system-dependent strings present)", file,
          mo_revision(f));
    CHECK(mo_skipped(f) == 0, "%s: %d strings skipped", file, mo_skipped(f));
    mo_close(f);
    cJSON_Delete(j);
}

static void test_reads_msgfmt_output(void) { check_against_expected("mo/basic.mo", 0); }
static void test_reads_big_endian(void) { check_against_expected("mo/basic-be.mo", 0); }
static void test_fuzzy_only_with_use_fuzzy(void) { check_against_expected("mo/basic-fuzzy.mo", 1); }

static void test_both_byte_orders_agree(void)
{
    mo_file *a, *b;
    CHECK(mo_open(&a, golden_path("mo/basic.mo")) == QKV_OK, "%s", qkv_last_error());
    CHECK(mo_open(&b, golden_path("mo/basic-be.mo")) == QKV_OK, "%s", qkv_last_error());
    if (a && b) {
        CHECK(mo_count(a) == mo_count(b), "%d vs %d entries", mo_count(a), mo_count(b));
        for (int i = 0; i < mo_count(a) && i < mo_count(b); i++) {
            const mo_entry *x = mo_get(a, i), *y = mo_get(b, i);
            CHECK(same(x->context, y->context) && !strcmp(x->msgid, y->msgid) &&
                      same(x->msgid_plural, y->msgid_plural) && x->n_msgstr == y->n_msgstr,
                  "entry %d differs: '%s' vs '%s'", i, x->msgid, y->msgid);
            for (int k = 0; k < x->n_msgstr && k < y->n_msgstr; k++)
                CHECK(!strcmp(x->msgstr[k], y->msgstr[k]), "entry %d form %d: '%s' vs '%s'", i, k, x->msgstr[k],
                      y->msgstr[k]);
        }
    }
    CHECK(mo_get(a, -1) == NULL && mo_get(a, mo_count(a)) == NULL, "mo_get out of range gave an entry");
    mo_close(a);
    mo_close(b);
    mo_close(NULL);
}

static void test_revision_0_catalog(void)
{
    mo_file *f;
    const char *p = golden_path("corpus/pkg-b/usr/share/locale/zh_CN/LC_MESSAGES/b.mo");
    CHECK(mo_open(&f, p) == QKV_OK, "%s", qkv_last_error());
    if (!f)
        return;
    CHECK(mo_revision(f) == 0, "revision 0x%x", mo_revision(f));
    const mo_entry *e = find_entry(f, NULL, "Help");
    CHECK(e && e->n_msgstr == 1 && !strcmp(e->msgstr[0], "帮助"), "Help -> %s", e ? e->msgstr[0] : "(missing)");
    CHECK(mo_count(f) == 3, "%d entries", mo_count(f));
    mo_close(f);
}

/* ---- hand-made and corrupt files ------------------------------------------ */

static void put32(unsigned char *p, uint32_t v, int big)
{
    for (int i = 0; i < 4; i++)
        p[big ? 3 - i : i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void expect_fail(const char *what, const unsigned char *buf, size_t len, qkv_status want, const char *needle)
{
    mo_file *f = (mo_file *)1;
    qkv_status s = mo_open_memory(&f, buf, len, "bad.mo");
    CHECK(s == want, "%s: status %s, want %s (%s)", what, qkv_status_name(s), qkv_status_name(want), qkv_last_error());
    CHECK(f == NULL || s == QKV_OK, "%s: *out set on failure", what);
    if (s == QKV_OK)
        mo_close(f);
    else
        CHECK(!strncmp(qkv_last_error(), "bad.mo: ", 8) && (!needle || strstr(qkv_last_error(), needle)),
              "%s: message '%s' lacks '%s'", what, qkv_last_error(), needle ? needle : "");
}

static void test_hand_made_minimal(void)
{
    /* one entry with a context and no header, big-endian, revision 0 */
    unsigned char b[64] = {0};
    put32(b, MO_MAGIC, 1);
    put32(b + 8, 1, 1);
    put32(b + 12, 28, 1);
    put32(b + 16, 36, 1);
    put32(b + 28, 4, 1); /* "c\x04id" */
    put32(b + 32, 44, 1);
    put32(b + 36, 2, 1); /* "tr" */
    put32(b + 40, 50, 1);
    memcpy(b + 44, "c\x04id\0\0tr\0", 10);
    mo_file *f;
    CHECK(mo_open_memory(&f, b, 60, "min.mo") == QKV_OK, "%s", qkv_last_error());
    if (f) {
        CHECK(mo_count(f) == 1 && mo_header(f) == NULL && !strcmp(mo_charset(f), ""), "count %d", mo_count(f));
        const mo_entry *e = mo_get(f, 0);
        CHECK(e && same(e->context, "c") && !strcmp(e->msgid, "id") && !e->msgid_plural && e->n_msgstr == 1 &&
                  !strcmp(e->msgstr[0], "tr"),
              "entry parsed wrong");
        mo_close(f);
    }
    /* the same with the terminating NUL of the translation replaced */
    b[52] = 'x';
    expect_fail("translation without NUL", b, 60, QKV_ERR_FORMAT, "entry 0: translation");
    b[52] = 0;
    put32(b + 36, 200, 1);
    expect_fail("translation past the end", b, 60, QKV_ERR_FORMAT, "entry 0: translation");
    put32(b + 36, 2, 1);
    put32(b + 32, 0xfffffff0u, 1);
    expect_fail("original offset near 2^32", b, 60, QKV_ERR_FORMAT, "entry 0: original");
    put32(b + 32, 44, 1);
    put32(b + 8, 0x20000000u, 1);
    expect_fail("huge string count", b, 60, QKV_ERR_FORMAT, "table of originals");
    put32(b + 8, 1, 1);
    put32(b + 16, 56, 1);
    expect_fail("translation table past the end", b, 60, QKV_ERR_FORMAT, "table of translations");
    put32(b + 16, 36, 1);
    put32(b + 20, 10, 1);
    put32(b + 24, 40, 1);
    expect_fail("hash table past the end", b, 60, QKV_ERR_FORMAT, "hash table");
    put32(b + 20, 0, 1);
    put32(b + 4, 2u << 16, 1);
    expect_fail("major revision 2", b, 60, QKV_ERR_UNSUPPORTED, "major revision 2");
    put32(b + 4, 1, 1);
    expect_fail("minor revision 1 without sysdep fields", b, 40, QKV_ERR_FORMAT, NULL);
    put32(b + 4, 0, 1);
    expect_fail("short header", b, 27, QKV_ERR_FORMAT, "too short");
    b[0] ^= 1;
    expect_fail("bad magic", b, 60, QKV_ERR_FORMAT, "magic");
    expect_fail("empty file", b, 0, QKV_ERR_FORMAT, "too short");
}

/* N entries whose translations all point at one run of NULs: honest files
 * never share bytes, and a reader that trusted this one would allocate
 * N * run pointers. It must refuse it, naming the entry. */
static void test_shared_translations_refused(void)
{
    enum { N = 200, RUN = 2000 };
    size_t len = 28 + 16 * N + 2 + RUN + 1;
    unsigned char *b = calloc(len, 1);
    put32(b, MO_MAGIC, 0);
    put32(b + 8, N, 0);
    put32(b + 12, 28, 0);
    put32(b + 16, 28 + 8 * N, 0);
    size_t strings = 28 + 16 * N;
    b[strings] = 'a'; /* every original is "a" (the reader does not need them sorted) */
    for (uint32_t i = 0; i < N; i++) {
        put32(b + 28 + 8 * i, 1, 0);
        put32(b + 28 + 8 * i + 4, (uint32_t)strings, 0);
        put32(b + 28 + 8 * N + 8 * i, RUN, 0);
        put32(b + 28 + 8 * N + 8 * i + 4, (uint32_t)strings + 2, 0);
    }
    expect_fail("translations sharing a run of NULs", b, len, QKV_ERR_FORMAT, "overlap");
    free(b);
}

static void test_corrupt_sysdep(void)
{
    char *buf;
    size_t len;
    CHECK(qkv_read_file(golden_path("mo/basic.mo"), &buf, &len) == QKV_OK, "%s", qkv_last_error());
    if (!buf)
        return;
    unsigned char *b = (unsigned char *)buf;
    uint32_t n_segs = get32(b + 28), seg_tab = get32(b + 32), n_str = get32(b + 36), orig_tab = get32(b + 40);
    CHECK(n_segs == 2 && n_str == 2, "fixture has %u segments, %u sysdep strings", n_segs, n_str);
    unsigned char *c = malloc(len);
    /* a string referring to a segment that does not exist */
    memcpy(c, b, len);
    uint32_t d = get32(c + orig_tab);
    put32(c + d + 8, 7, 0);
    expect_fail("segment reference out of range", c, len, QKV_ERR_FORMAT, "refers to segment 7 of 2");
    /* the segment list never ends */
    memcpy(c, b, len);
    for (uint32_t p = d + 4; p + 8 <= len; p += 8)
        put32(c + p + 4, 0, 0);
    expect_fail("unterminated segment list", c, len, QKV_ERR_FORMAT, "system-dependent entry 0");
    /* a segment name outside the file */
    memcpy(c, b, len);
    put32(c + seg_tab + 4, (uint32_t)len, 0);
    expect_fail("segment name past the end", c, len, QKV_ERR_FORMAT, "segment 0");
    /* an unknown segment name: the strings using it are skipped, as libintl does */
    memcpy(c, b, len);
    uint32_t name_off = get32(c + seg_tab + 4);
    c[name_off] = 'Q';
    mo_file *f;
    CHECK(mo_open_memory(&f, c, len, "unknown-seg.mo") == QKV_OK, "%s", qkv_last_error());
    if (f) {
        CHECK(mo_skipped(f) == 1, "%d skipped, want 1", mo_skipped(f));
        CHECK(mo_count(f) == 7, "%d entries, want 7", mo_count(f));
        mo_close(f);
    }
    free(c);
    free(buf);
}

/* Every prefix and every single-byte substitution of a real catalog gives a
 * clean status, never a crash or an out-of-bounds read (the sanitizer build
 * watches); accepted files still have NUL-terminated strings. */
static void test_truncations_and_byte_flips(void)
{
    char *buf;
    size_t len;
    CHECK(qkv_read_file(golden_path("mo/basic.mo"), &buf, &len) == QKV_OK, "%s", qkv_last_error());
    if (!buf)
        return;
    for (size_t k = 0; k < len; k++) {
        mo_file *f;
        qkv_status s = mo_open_memory(&f, buf, k, "t");
        mo_close(f);
        /* the file ends with a string's NUL, so no prefix is a whole catalog */
        if (s != QKV_ERR_FORMAT) {
            CHECK(0, "prefix of %zu of %zu bytes: status %s", k, len, qkv_status_name(s));
            break;
        }
    }
    static const unsigned char subst[] = {0, 1, 0x04, 0x7f, 0x80, 0xff};
    int accepted = 0, rejected = 0;
    unsigned char *c = malloc(len);
    for (size_t k = 0; k < len; k++)
        for (size_t j = 0; j < sizeof subst; j++) {
            memcpy(c, buf, len);
            c[k] = subst[j];
            mo_file *f = NULL;
            qkv_status s = mo_open_memory(&f, c, len, "t");
            if (s == QKV_OK) {
                accepted++;
                size_t total = 0;
                for (int i = 0; i < mo_count(f); i++) {
                    const mo_entry *e = mo_get(f, i);
                    total += strlen(e->msgid) + (e->context ? strlen(e->context) : 0);
                    for (int m = 0; m < e->n_msgstr; m++)
                        total += strlen(e->msgstr[m]);
                }
                CHECK(total < 100 * len, "implausible total length %zu", total);
                mo_close(f);
            } else {
                rejected++;
                CHECK(s == QKV_ERR_FORMAT || s == QKV_ERR_UNSUPPORTED, "byte %zu -> 0x%02x: status %s", k, subst[j],
                      qkv_status_name(s));
            }
        }
    CHECK(accepted > 0 && rejected > 0, "%d accepted, %d rejected", accepted, rejected);
    free(c);
    free(buf);
}

static void test_missing_file(void)
{
    mo_file *f = (mo_file *)1;
    CHECK(mo_open(&f, "/nonexistent-dir/x.mo") == QKV_ERR_IO && f == NULL, "missing file: %s", qkv_last_error());
}

static const test_case cases[] = {
    TEST(test_reads_msgfmt_output),
    TEST(test_reads_big_endian),
    TEST(test_fuzzy_only_with_use_fuzzy),
    TEST(test_both_byte_orders_agree),
    TEST(test_revision_0_catalog),
    TEST(test_hand_made_minimal),
    TEST(test_shared_translations_refused),
    TEST(test_corrupt_sysdep),
    TEST(test_truncations_and_byte_flips),
    TEST(test_missing_file),
};

int main(int argc, char **argv) { return test_main(argc, argv, cases, TEST_COUNT(cases)); }
