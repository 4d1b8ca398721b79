/* gettext .po reader and writer (src/formats/po.c): byte-for-byte round
 * trips of a real catalog (msgunfmt of Debian's gettext-tools .mo, cut and
 * partly blanked by hand) and of one crafted with every construct; changed
 * entries (fuzzy marks, plurals, multi-line) pass msgfmt --check while the
 * others stay byte-identical; malformed input names its line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/io.h"
#include "formats/po.h"
#include "test.h"

static const char *const fixtures[] = {"crafted.po", "gettext-tools-part.po"};

static int load(const char *name, po_file *f)
{
    char path[512];
    snprintf(path, sizeof path, "%s/po/%s", test_golden_dir(), name);
    qkv_status s = po_read(path, f);
    CHECK(s == QKV_OK, "%s: %s", path, qkv_last_error());
    return s == QKV_OK;
}

static void test_round_trip(void)
{
    for (size_t k = 0; k < sizeof fixtures / sizeof fixtures[0]; k++) {
        po_file f;
        if (!load(fixtures[k], &f))
            continue;
        char *o;
        size_t n;
        CHECK(po_render(&f, &o, &n) == QKV_OK, "render: %s", qkv_last_error());
        size_t i = 0;
        while (i < n && i < f.len && o[i] == f.data[i])
            i++;
        CHECK(n == f.len && i == n, "%s: output differs from the input at byte %zu (%zu vs %zu bytes)", fixtures[k], i,
              n, f.len);
        free(o);
        po_free(&f);
    }
}

static void test_crafted_fields(void)
{
    po_file f;
    if (!load("crafted.po", &f))
        return;
    CHECK(f.n == 12, "%d entries, want 12", f.n);
    CHECK(po_nplurals(&f) == 1, "nplurals %d, want 1", po_nplurals(&f));
    if (f.n == 12) {
        CHECK(po_is_header(&f.e[0]) && f.e[0].line == 1, "entry 0 is not the header at line 1 (line %d)", f.e[0].line);
        CHECK(f.e[1].c_format && !f.e[1].fuzzy && !strcmp(f.e[1].msgid, "Open %s") && !strcmp(f.e[1].msgstr[0], "打开 %s"),
              "entry 1: c-format %d msgid '%s'", f.e[1].c_format, f.e[1].msgid);
        CHECK(po_untranslated(&f.e[2]) && !po_untranslated(&f.e[1]), "untranslated flags");
        CHECK(f.e[3].msgctxt && !strcmp(f.e[3].msgctxt, "menu"), "msgctxt of entry 3");
        CHECK(f.e[4].msgid_plural && !strcmp(f.e[4].msgid_plural, "%d files") && f.e[4].n_msgstr == 1,
              "plural of entry 4");
        CHECK(!strcmp(f.e[5].msgid, "Usage: qkv [OPTION]...\nTranslate text with a \"model\".\n"),
              "multi-line msgid '%s'", f.e[5].msgid);
        CHECK(f.e[6].fuzzy && f.e[6].c_format, "flags of entry 6");
        CHECK(!strcmp(f.e[7].msgid, "Tabs\tand \\ backslash and octal A"), "escapes: '%s'", f.e[7].msgid);
        CHECK(f.e[10].obsolete && f.e[11].obsolete && !f.e[9].obsolete, "obsolete entries");
    }
    po_free(&f);
}

/* Gives every untranslated entry a translation that keeps its msgid
 * (placeholders included), marks it fuzzy, writes, and checks msgfmt and
 * the untouched entries. */
static void test_rewrite_passes_msgfmt(void)
{
    char dir[] = "/tmp/qkv_po_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    for (size_t k = 0; k < sizeof fixtures / sizeof fixtures[0]; k++) {
        po_file f, g;
        if (!load(fixtures[k], &f))
            continue;
        int changed = 0;
        for (int i = 0; i < f.n; i++) {
            po_entry *e = &f.e[i];
            if (!e->has_msgid || e->obsolete || po_is_header(e) || !(po_untranslated(e) || e->fuzzy))
                continue;
            int n = e->msgid_plural ? po_nplurals(&f) : 1;
            e->new_msgstr = calloc((size_t)n, sizeof(char *));
            for (int j = 0; j < n; j++) {
                const char *src = e->msgid_plural ? e->msgid_plural : e->msgid;
                size_t len = strlen(src);
                e->new_msgstr[j] = malloc(len + 8);
                /* "译" before the first character keeps leading and trailing newlines */
                snprintf(e->new_msgstr[j], len + 8, "%s%s", src[0] == '\n' ? "\n译" : "译", src + (src[0] == '\n'));
            }
            e->n_new = n;
            e->mark_fuzzy = 1;
            changed++;
        }
        CHECK(changed > 0, "%s: nothing to change", fixtures[k]);
        char out[600], cmd[800];
        snprintf(out, sizeof out, "%s/%s", dir, fixtures[k]);
        CHECK(po_write(&f, out) == QKV_OK, "write: %s", qkv_last_error());
        snprintf(cmd, sizeof cmd, "msgfmt --check -o /dev/null '%s' 2>&1", out);
        char *msg = NULL;
        int rc = test_run(cmd, &msg);
        CHECK(rc == 0, "%s: msgfmt --check failed (%d): %s", fixtures[k], rc, msg ? msg : "");
        free(msg);
        CHECK(po_read(out, &g) == QKV_OK, "re-read: %s", qkv_last_error());
        CHECK(g.n == f.n, "%s: %d entries after writing, %d before", fixtures[k], g.n, f.n);
        for (int i = 0; i < f.n && i < g.n; i++) {
            const po_entry *a = &f.e[i], *b = &g.e[i];
            if (a->n_new) {
                CHECK(b->fuzzy && !po_untranslated(b), "%s:%d: changed entry not fuzzy/translated", fixtures[k], a->line);
                CHECK(!strcmp(a->msgid, b->msgid), "%s:%d: msgid changed", fixtures[k], a->line);
                continue;
            }
            size_t la = a->raw_end - a->raw_start, lb = b->raw_end - b->raw_start;
            CHECK(la == lb && !memcmp(f.data + a->raw_start, g.data + b->raw_start, la),
                  "%s:%d: an entry not translated is not byte-identical", fixtures[k], a->line);
        }
        /* a fuzzy flag joins an existing "#," line */
        if (k == 0)
            CHECK(strstr(g.data, "#, fuzzy, c-format\nmsgid \"Cannot read file") != NULL,
                  "crafted.po: fuzzy not added to the c-format flags line");
        po_free(&g);
        po_free(&f);
        unlink(out);
    }
    rmdir(dir);
}

static void expect_error(const char *text, const char *want)
{
    po_file f;
    qkv_status s = po_parse("bad.po", text, strlen(text), &f);
    CHECK(s == QKV_ERR_FORMAT, "accepted: %s", text);
    if (s == QKV_OK)
        po_free(&f);
    else
        CHECK(strstr(qkv_last_error(), want) != NULL, "error \"%s\", want it to contain \"%s\"", qkv_last_error(),
              want);
}

static void test_malformed(void)
{
    expect_error("msgid \"a\"\nmsgstr \"b\n", "bad.po:2: unterminated string");
    expect_error("msgid \"a\\q\"\nmsgstr \"\"\n", "bad.po:1: bad escape '\\q'");
    expect_error("\nmsgid \"a\"\nmsgstr[1] \"x\"\n", "bad.po:3: msgstr[1] in an entry without msgid_plural");
    expect_error("msgid \"a\"\n", "bad.po:1: entry without msgstr");
    expect_error("msgid \"a\"\nmsgstr \"\"\nbogus \"x\"\n", "bad.po:3: expected a comment, a keyword");
    expect_error("msgid \"a\"\nmsgid_plural \"as\"\nmsgstr \"\"\n", "bad.po:3: plain msgstr");
    expect_error("\"orphan\"\n", "bad.po:1: string continuation without a keyword");
    expect_error("msgid \"a\" x\nmsgstr \"\"\n", "bad.po:1: text after the closing");
}

static const test_case cases[] = {TEST(test_round_trip), TEST(test_crafted_fields), TEST(test_rewrite_passes_msgfmt),
                                  TEST(test_malformed)};

int main(int argc, char **argv) { return test_main(argc, argv, cases, TEST_COUNT(cases)); }
