/* The corpus builder: parallel text from the gettext catalogs that Debian
 * packages ship (English msgid -> translated msgstr).
 *
 *   corpus_fetch   apt-get download + dpkg-deb -x into CACHE/debs, CACHE/root/<pkg>
 *   corpus_build   every CACHE/root/<pkg>/.../<lang>/LC_MESSAGES/NAME.mo, read with
 *                  formats/mo.h, cleaned, de-duplicated, split, written to OUT
 *
 * Cleaning, in this order, each step counted in corpus_report:
 *   - the header entry and untranslated entries (empty msgstr) are dropped;
 *     fuzzy entries never reach a .mo (msgfmt leaves them out);
 *   - catalogs whose charset is not UTF-8 (or ASCII) are skipped, entries
 *     that are not valid UTF-8 dropped;
 *   - message contexts are stripped, plural entries give their singular
 *     (msgid, msgstr[0]);
 *   - keyboard accelerators are removed on both sides together
 *     (corpus_strip_accelerators);
 *   - line breaks and tabs become spaces, runs of spaces one space (none
 *     between two CJK characters that a line break separated);
 *   - pairs empty on either side, or longer than max_chars code points on
 *     either side, are dropped;
 *   - duplicates of an earlier source are dropped (catalogs in path order,
 *     entries in file order: the first wins);
 *   - the pairs whose sources have the smallest FNV-1a 64 hashes form the
 *     test split (test_size of them), the next ones dev, the rest train;
 *     each split keeps corpus order.
 * printf placeholders (%s, %1$s, %ld) and %1-style ones are never touched. */
#ifndef QKV_DATA_CORPUS_H
#define QKV_DATA_CORPUS_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "qkv.h"

typedef struct {
    const char *lang;    /* locale directory name: "zh_CN", "de" */
    int max_chars;       /* longest side kept, in code points (200) */
    int dev_size;        /* 1000 */
    int test_size;       /* 1000 */
    int download;        /* corpus_fetch: 0 = use only what the cache holds */
    long label_min_pairs; /* packages with fewer pairs stay out of the labels files (1000) */
    /* progress lines (no newline); NULL for none */
    void (*log)(void *ctx, const char *msg);
    void *log_ctx;
} corpus_options;

corpus_options corpus_default_options(void);

/* The Debian packages whose catalogs make the corpus for lang ("zh_CN" adds
 * libreoffice-l10n-zh-cn, "de" libreoffice-l10n-de). NULL-terminated, static. */
const char *const *corpus_default_packages(const char *lang);

typedef struct {
    char *name;
    int catalogs;
    long entries; /* read from its catalogs, header excluded */
    long pairs;   /* in the final corpus (after de-duplication) */
} corpus_package;

typedef struct {
    corpus_package *packages;
    int n_packages;
    int catalogs;
    int catalogs_not_utf8;      /* skipped whole */
    long entries;               /* entries read, headers excluded */
    long headers;               /* header entries dropped */
    long untranslated;          /* dropped: empty msgstr */
    long fuzzy;                 /* always 0: .mo files hold none (see above) */
    long invalid_utf8;          /* dropped */
    long contexts_stripped;
    long plurals_singular;      /* plural entries reduced to their singular */
    long accelerators;          /* pairs whose accelerator marks were removed */
    long lines_joined;          /* pairs whose line breaks or tabs were joined */
    long empty;                 /* dropped: empty after cleaning */
    long too_long;              /* dropped: over max_chars */
    long duplicates;            /* dropped: source seen before */
    long train, dev, test;
    int max_chars;
    char lang[32];
} corpus_report;

void corpus_report_free(corpus_report *r);

/* Formats one progress line and hands it to o->log (nothing when NULL). */
void corpus_log(const corpus_options *o, const char *fmt, ...) QKV_PRINTF(2, 3);

/* Makes sure CACHE/root/<pkg> holds each package unpacked: skips those whose
 * marker CACHE/root/<pkg>/.qkv-unpacked exists, downloads missing .deb files
 * into CACHE/debs with `apt-get download` (unless !o->download), unpacks with
 * `dpkg-deb -x` into a temporary directory renamed into place. Both programs'
 * output goes to CACHE/fetch.log; a failure names the package, the command,
 * its exit status and the log's last line. *n_fetched: packages downloaded or
 * unpacked this time (0: the cache was complete). */
qkv_status corpus_fetch(const char *cache_dir, const char *const *packages, const corpus_options *o,
                        int *n_fetched);

/* Builds the corpus from the unpacked packages under root_dir (one directory
 * per package, as corpus_fetch leaves them: CACHE/root) into out_dir:
 * {train,dev,test}.{en,<xx>} (xx: lang up to '_': "zh", "de"), the
 * package-classification task (the English side labelled with its package,
 * for the packages with at least o->label_min_pairs pairs, same split) as
 * labels.tsv (all splits, data/labels.h) and {train,dev,test}.labels.tsv
 * (LABEL<TAB>TEXT per split), and report.json, all written atomically. packages (NULL-terminated) names the
 * package directories to read; NULL reads every directory of root_dir.
 * out_dir must exist. On failure r holds nothing to free. */
qkv_status corpus_build(const char *root_dir, const char *const *packages, const char *out_dir,
                        const corpus_options *o, corpus_report *r);

/* report.json's text (malloc'ed), also used by the CLI. */
char *corpus_report_json(const corpus_report *r);

/* ---- cleaning steps, exposed for tests (src/data/corpus_clean.c) ---------- */

/* Removes keyboard accelerators from a source/translation pair, in place.
 * A mark is '_', '&' or '~' before a letter or digit, not doubled (GTK "__",
 * Qt "&&" are literal) and, for '&', not an entity ("&amp;", "&#38;").
 *   - Source: the only mark of its kind goes if it starts a word ("_File",
 *     "Save ~As") or the translation carries an accelerator too ("E_xit" /
 *     "退出(_X)"). A mid-word '_' or '&' whose word the translation repeats
 *     is a literal and stays ("max_connections", "AT&T"); '~' always goes.
 *   - Translation: a CJK-style suffix "(_F)" "(&F)" "(~F)" (full-width
 *     parentheses too, spaces before it included) goes, as does "(F)" when F
 *     is the source's accelerator letter; else a single mark of the source's
 *     kind ("_Datei"); else, when the source has none, a single word-initial
 *     mark, or a '_'/'~' inside a plain word ("Richtun_g", not SKRIPT_DATEI
 *     nor »titlebar_font«).
 * '%' is never removed, so placeholders stay intact. Returns 1 if anything
 * was removed. */
int corpus_strip_accelerators(char *src, char *tgt);

/* Replaces line breaks and tabs by one space (by nothing between two CJK
 * characters), collapses runs of spaces and trims, in place. Returns 1 if a
 * line break or tab was replaced. */
int corpus_join_lines(char *s);

/* Number of code points of a valid UTF-8 string. */
size_t corpus_utf8_chars(const char *s);
/* 1 if s (len bytes) is valid UTF-8 (no overlongs, surrogates or NULs). */
int corpus_utf8_valid(const char *s, size_t len);

uint64_t corpus_fnv1a64(const char *s);

#endif
