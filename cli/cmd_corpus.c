/* qkv corpus: builds an English-to-X parallel corpus from the translation
 * catalogs of Debian packages (src/data/corpus.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/io.h"
#include "commands.h"
#include "data/cedict.h"
#include "data/corpus.h"
#include "text/utf8.h"

static const char usage[] =
    "usage: qkv corpus [--lang zh_CN|de] [--cache DIR] [--out DIR] [options]\n"
    "\n"
    "Downloads Debian packages (apt-get download, nothing is installed), unpacks\n"
    "them (dpkg-deb -x), reads every <lang>/LC_MESSAGES/*.mo catalog with qkv's\n"
    "own .mo reader, cleans the English/translation pairs and writes\n"
    "OUT/{train,dev,test}.{en,XX} and OUT/report.json (XX: zh, de, ...).\n"
    "It also writes the package-classification task of `qkv classify`, the English\n"
    "side labelled with its package, on the same split, for the packages with at\n"
    "least --label-min pairs: OUT/labels.tsv (header split<TAB>label<TAB>text, then\n"
    "train|dev|test<TAB>PACKAGE<TAB>TEXT rows) and, as before, the per-split\n"
    "OUT/{train,dev,test}.labels.tsv (PACKAGE<TAB>TEXT).\n"
    "Re-running with a complete cache downloads and unpacks nothing.\n"
    "\n"
    "options:\n"
    "  --lang L          locale directory of the target language (default zh_CN)\n"
    "  --cache DIR       downloaded .deb files and unpacked trees\n"
    "                    (default out/cache/debian)\n"
    "  --out DIR         where the corpus goes (default out/corpus/<lang>)\n"
    "  --max-chars N     drop pairs longer than N characters on either side (200)\n"
    "  --dev N           pairs in the dev split (1000)\n"
    "  --test N          pairs in the test split (1000)\n"
    "  --packages A,B    packages to use instead of the default list\n"
    "  --label-min N     pairs a package needs to be in the labels files (1000)\n"
    "  --no-download     use only what the cache holds\n"
    "  --add-cedict      append CC-CEDICT pairs (gloss -> headword) to the training split\n"
    "                    (out/cache/cedict/cedict.txt, from scripts/fetch-cedict; never dev or\n"
    "                    test sources); rules counted in OUT/cedict.json\n"
    "  --cedict FILE     the same from another CC-CEDICT text file\n"
    "  --cedict-all-characters  also entries whose headword has a character the corpus's\n"
    "                    training targets lack (by default skipped: CC-CEDICT has some 5,500 of\n"
    "                    them, more than a 4,000-piece vocabulary holds)\n"
    "  -q, --quiet       no progress lines\n"
    "\n"
    "Cleaning (each step counted in the report): drop the header and\n"
    "untranslated entries, strip contexts, keep the singular of plurals, remove\n"
    "keyboard accelerators (_File, &Open, Save ~As, (_F)) on both sides, join\n"
    "lines, drop empty and over-long pairs, keep the first of duplicate sources\n"
    "(catalogs in path order), split by FNV-1a hash of the source.\n";

static void log_line(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "qkv corpus: %s\n", msg);
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int parse_int(const char *s, int *v, int min)
{
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (errno || end == s || *end || x < min || x > 1000000000)
        return 0;
    *v = (int)x;
    return 1;
}

static int mkdirs(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return -1;
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || !*p) {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return -1;
            *p = c;
            if (!c)
                return 0;
        }
    }
}

static void print_report(const corpus_report *r, const char *out)
{
    fprintf(stderr, "\ncorpus %s -> %s\n", r->lang, out);
    fprintf(stderr, "  %-34s %8s %8s %8s\n", "package", "catalogs", "entries", "pairs");
    for (int i = 0; i < r->n_packages; i++)
        fprintf(stderr, "  %-34s %8d %8ld %8ld\n", r->packages[i].name, r->packages[i].catalogs,
                r->packages[i].entries, r->packages[i].pairs);
    /* keep in sync with corpus_report_json */
    fprintf(stderr, "  catalogs read                 %8d\n", r->catalogs);
    fprintf(stderr, "  catalogs skipped (not UTF-8)  %8d\n", r->catalogs_not_utf8);
    fprintf(stderr, "  entries read                  %8ld\n", r->entries);
    fprintf(stderr, "  headers dropped               %8ld\n", r->headers);
    fprintf(stderr, "  untranslated dropped          %8ld\n", r->untranslated);
    fprintf(stderr, "  fuzzy dropped                 %8ld  (msgfmt keeps them out of .mo files)\n", r->fuzzy);
    fprintf(stderr, "  invalid UTF-8 dropped         %8ld\n", r->invalid_utf8);
    fprintf(stderr, "  contexts stripped             %8ld\n", r->contexts_stripped);
    fprintf(stderr, "  plurals -> singular           %8ld\n", r->plurals_singular);
    fprintf(stderr, "  accelerators removed          %8ld\n", r->accelerators);
    fprintf(stderr, "  multi-line entries joined     %8ld\n", r->lines_joined);
    fprintf(stderr, "  empty dropped                 %8ld\n", r->empty);
    fprintf(stderr, "  over %3d characters dropped   %8ld\n", r->max_chars, r->too_long);
    fprintf(stderr, "  duplicate sources dropped     %8ld\n", r->duplicates);
    fprintf(stderr, "  train / dev / test            %8ld %8ld %8ld\n", r->train, r->dev, r->test);
}

/* ---- --add-cedict: dictionary pairs appended to the training split ------ */

typedef struct {
    FILE *en, *zh;
    char **exclude; /* sorted dev and test sources */
    size_t n_exclude;
    unsigned char *known; /* bitmap of the code points of the corpus's training targets */
    long excluded, unknown_chars, written;
} cedict_sink;

/* 1 when every character of zh occurs in the corpus's training targets */
static int known_chars(const cedict_sink *s, const char *zh)
{
    for (size_t i = 0, len = strlen(zh), n; i < len; i += n ? n : 1) {
        int valid;
        uint32_t cp = utf8_decode(zh + i, len - i, &n, &valid);
        if (!valid || cp >= 0x110000 || !(s->known[cp >> 3] & (1u << (cp & 7))))
            return 0;
    }
    return 1;
}

static int str_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void cedict_emit(void *ctx, const char *en, const char *zh)
{
    cedict_sink *s = ctx;
    if (s->n_exclude && bsearch(&en, s->exclude, s->n_exclude, sizeof(char *), str_cmp)) {
        s->excluded++; /* a dev or test source: never trained on */
        return;
    }
    /* A headword with a character the corpus never uses would force it into
     * the target vocabulary: CC-CEDICT has some 5,500 such characters, more
     * than the demo's 4,000 pieces hold (vocabulary training then fails). */
    if (s->known && !known_chars(s, zh)) {
        s->unknown_chars++;
        return;
    }
    fprintf(s->en, "%s\n", en);
    fprintf(s->zh, "%s\n", zh);
    s->written++;
}

static int load_lines(const char *path, char ***v, size_t *n)
{
    char *data;
    size_t len;
    if (qkv_read_file(path, &data, &len) != QKV_OK)
        return -1;
    for (char *p = data, *save = NULL, *t = strtok_r(p, "\n", &save); t; t = strtok_r(NULL, "\n", &save)) {
        char **w = realloc(*v, (*n + 1) * sizeof(char *));
        if (!w || !(w[*n] = strdup(t))) {
            free(data);
            if (w)
                *v = w;
            return -1;
        }
        *v = w;
        (*n)++;
    }
    free(data);
    return 0;
}

int corpus_add_cedict(const char *cedict, const char *out, const char *lang, int all_chars)
{
    if (strncmp(lang, "zh", 2))
        return cli_error("corpus: --add-cedict gives Chinese headwords; --lang is %s", lang);
    char p_en[4096], p_zh[4096], p_dev[4096], p_test[4096], p_rep[4096];
    snprintf(p_en, sizeof p_en, "%s/train.en", out);
    snprintf(p_zh, sizeof p_zh, "%s/train.zh", out);
    snprintf(p_dev, sizeof p_dev, "%s/dev.en", out);
    snprintf(p_test, sizeof p_test, "%s/test.en", out);
    snprintf(p_rep, sizeof p_rep, "%s/cedict.json", out);
    cedict_sink s = {0};
    if (load_lines(p_dev, &s.exclude, &s.n_exclude) || load_lines(p_test, &s.exclude, &s.n_exclude)) {
        for (size_t k = 0; k < s.n_exclude; k++)
            free(s.exclude[k]);
        free(s.exclude);
        return cli_error("corpus: %s", qkv_last_error());
    }
    qsort(s.exclude, s.n_exclude, sizeof(char *), str_cmp);
    if (!all_chars) {
        char *data = NULL;
        size_t len = 0;
        if (!(s.known = calloc(0x110000 / 8, 1)) || qkv_read_file(p_zh, &data, &len) != QKV_OK) {
            for (size_t k = 0; k < s.n_exclude; k++)
                free(s.exclude[k]);
            free(s.exclude);
            free(s.known);
            return cli_error("corpus: %s", s.known ? qkv_last_error() : "out of memory");
        }
        for (size_t i = 0, n; i < len; i += n ? n : 1) {
            int valid;
            uint32_t cp = utf8_decode(data + i, len - i, &n, &valid);
            if (valid && cp < 0x110000)
                s.known[cp >> 3] |= (unsigned char)(1u << (cp & 7));
        }
        free(data);
    }
    s.en = fopen(p_en, "ab");
    s.zh = fopen(p_zh, "ab");
    int rc = 0;
    cedict_report r;
    if (!s.en || !s.zh)
        rc = cli_error("corpus: cannot append to %s: %s", s.en ? p_zh : p_en, strerror(errno));
    else if (cedict_read(cedict, &r, cedict_emit, &s) != QKV_OK)
        rc = cli_error("corpus: %s", qkv_last_error());
    if (s.en && fclose(s.en) != 0 && !rc)
        rc = cli_error("corpus: %s: write failed", p_en);
    if (s.zh && fclose(s.zh) != 0 && !rc)
        rc = cli_error("corpus: %s: write failed", p_zh);
    for (size_t k = 0; k < s.n_exclude; k++)
        free(s.exclude[k]);
    free(s.exclude);
    free(s.known);
    if (rc)
        return rc;
    char json[2048];
    snprintf(json, sizeof json,
             "{\n  \"source\": \"%s\",\n  \"license\": \"CC BY-SA 4.0 (CC-CEDICT)\",\n  \"lines\": %ld,\n"
             "  \"comments\": %ld,\n  \"malformed\": %ld,\n  \"proper_nouns_skipped\": %ld,\n"
             "  \"headwords_not_han_skipped\": %ld,\n  \"headwords_longer_than_4_skipped\": %ld,\n"
             "  \"reference_glosses_dropped\": %ld,\n  \"notes_removed\": %ld,\n"
             "  \"glosses_longer_than_4_words_dropped\": %ld,\n  \"entries_without_gloss_skipped\": %ld,\n"
             "  \"duplicate_glosses_dropped\": %ld,\n  \"pairs\": %ld,\n  \"dev_test_sources_excluded\": %ld,\n"
             "  \"headwords_with_characters_not_in_corpus_skipped\": %ld,\n"
             "  \"pairs_appended_to_train\": %ld\n}\n",
             cedict, r.lines, r.comments, r.malformed, r.proper_nouns, r.not_han, r.too_long_headword,
             r.reference_glosses, r.notes_removed, r.long_glosses, r.no_gloss_left, r.duplicate_glosses, r.pairs,
             s.excluded, s.unknown_chars, s.written);
    if (qkv_write_file(p_rep, json, strlen(json)) != QKV_OK)
        return cli_error("corpus: %s", qkv_last_error());
    fprintf(stderr,
            "  CC-CEDICT: %ld lines -> %ld pairs (%ld excluded as dev/test sources, %ld with characters the "
            "corpus lacks), %ld appended to %s; rules counted in %s\n",
            r.lines, r.pairs, s.excluded, s.unknown_chars, s.written, p_en, p_rep);
    return 0;
}

int cmd_corpus(int argc, char **argv)
{
    corpus_options o = corpus_default_options();
    const char *cache = "out/cache/debian", *out = NULL, *pkg_arg = NULL, *cedict = NULL;
    int cedict_all_chars = 0;
    int quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--cedict-all-characters")) {
            cedict_all_chars = 1;
        } else if (!strcmp(a, "--add-cedict")) {
            cedict = cedict ? cedict : "out/cache/cedict/cedict.txt";
        } else if (!strcmp(a, "--cedict") && v) {
            cedict = v, i++;
        } else if (!strcmp(a, "--no-download")) {
            o.download = 0;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (!v) {
            return cli_error("corpus: option %s needs a value (see qkv corpus --help)", a);
        } else if (!strcmp(a, "--lang")) {
            o.lang = v, i++;
        } else if (!strcmp(a, "--cache")) {
            cache = v, i++;
        } else if (!strcmp(a, "--out")) {
            out = v, i++;
        } else if (!strcmp(a, "--packages")) {
            pkg_arg = v, i++;
        } else if (!strcmp(a, "--max-chars")) {
            if (!parse_int(v, &o.max_chars, 1))
                return cli_error("corpus: --max-chars wants a positive integer, got '%s'", v);
            i++;
        } else if (!strcmp(a, "--label-min")) {
            int m;
            if (!parse_int(v, &m, 0))
                return cli_error("corpus: --label-min wants a non-negative integer, got '%s'", v);
            o.label_min_pairs = m;
            i++;
        } else if (!strcmp(a, "--dev")) {
            if (!parse_int(v, &o.dev_size, 0))
                return cli_error("corpus: --dev wants a non-negative integer, got '%s'", v);
            i++;
        } else if (!strcmp(a, "--test")) {
            if (!parse_int(v, &o.test_size, 0))
                return cli_error("corpus: --test wants a non-negative integer, got '%s'", v);
            i++;
        } else {
            return cli_error("corpus: unknown option '%s' (see qkv corpus --help)", a);
        }
    }
    if (!o.lang[0] || strlen(o.lang) > 24 || strchr(o.lang, '/'))
        return cli_error("corpus: --lang wants a locale directory name such as zh_CN or de, got '%s'", o.lang);
    char out_buf[256];
    if (!out) {
        snprintf(out_buf, sizeof out_buf, "out/corpus/%s", o.lang);
        out = out_buf;
    }
    if (!quiet)
        o.log = log_line;

    /* package list: the default for the language, or --packages split at commas */
    const char *const *packages = corpus_default_packages(o.lang);
    char *pkg_copy = NULL;
    const char **pkg_list = NULL;
    if (pkg_arg) {
        pkg_copy = strdup(pkg_arg);
        pkg_list = calloc(strlen(pkg_arg) + 2, sizeof *pkg_list);
        if (!pkg_copy || !pkg_list)
            return cli_error("corpus: out of memory");
        int n = 0;
        for (char *save = NULL, *t = strtok_r(pkg_copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
            pkg_list[n++] = t;
        if (!n) {
            free(pkg_copy);
            free(pkg_list);
            return cli_error("corpus: --packages is empty");
        }
        packages = pkg_list;
    }

    int rc = 0;
    double t0 = now();
    int fetched = 0;
    char root[4096];
    snprintf(root, sizeof root, "%s/root", cache);
    if (corpus_fetch(cache, packages, &o, &fetched) != QKV_OK) {
        rc = cli_error("corpus: %s", qkv_last_error());
        goto done;
    }
    double t1 = now();
    if (mkdirs(out) != 0) {
        rc = cli_error("corpus: cannot create %s: %s", out, strerror(errno));
        goto done;
    }
    corpus_report r;
    if (corpus_build(root, packages, out, &o, &r) != QKV_OK) {
        rc = cli_error("corpus: %s", qkv_last_error());
        goto done;
    }
    double t2 = now();
    print_report(&r, out);
    fprintf(stderr, "  time: %.1f s fetching (%d packages %s), %.1f s building\n", t1 - t0, fetched,
            fetched ? "downloaded or unpacked" : "fetched: cache complete", t2 - t1);
    fprintf(stderr, "  wrote %s/{train,dev,test}.{en,...}, %s/labels.tsv ({train,dev,test}.labels.tsv) and "
            "%s/report.json\n", out, out, out);
    corpus_report_free(&r);
    if (cedict && corpus_add_cedict(cedict, out, o.lang, cedict_all_chars))
        rc = 1;
done:
    free(pkg_copy);
    free(pkg_list);
    return rc;
}
