/* qkv protect: protected spans (src/text/protect.h) for training data and
 * for measuring.
 *   --symbols                          the sentinel pieces, comma-separated,
 *                                      for qkv vocab train --user-defined-symbols
 *   --src A --tgt B --out-src X --out-tgt Y   masks a parallel corpus
 *   --kept --src A --hyp H [--show]    lines whose placeholders H keeps exactly,
 *                                      and those that keep the malformed ones
 *                                      (left as text) as text */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/io.h"
#include "commands.h"
#include "protect_args.h"
#include "qkv.h"
#include "text/protect.h"

static const char usage[] =
    "usage: qkv protect --symbols\n"
    "       qkv protect --src A --tgt B --out-src X --out-tgt Y\n"
    "       qkv protect --kept --src A --hyp H [--show]\n"
    "Placeholders (printf %s %1$s %%, Qt %1, {name}, LibreOffice %PRODUCTNAME) and XML/HTML tags\n"
    "and entities.\n"
    "  --symbols     print the sentinel pieces for qkv vocab train --user-defined-symbols\n"
    "  --src/--tgt   mask a parallel corpus into --out-src/--out-tgt: each span of a source\n"
    "                becomes a sentinel; the same span in the target takes the same sentinel\n"
    "  --kept        count the lines of --src with protected spans and those whose --hyp line\n"
    "                has exactly the same spans (as a multiset; printf arguments by number, so\n"
    "                \"%s %s\" and \"%2$s %1$s\" are the same, as msgfmt --check sees them); then\n"
    "                the malformed candidates that protection leaves as text (\"%z\", \"<b\",\n"
    "                an unpaired \"<b>\"; no guarantee covers them) and the lines whose --hyp\n"
    "                has the same ones\n"
    "  --show        with --kept: each line that differs, on stderr\n";

static int read_line(FILE *f, char **buf, size_t *cap)
{
    ssize_t n = getline(buf, cap, f);
    if (n < 0)
        return -1;
    while (n > 0 && ((*buf)[n - 1] == '\n' || (*buf)[n - 1] == '\r'))
        (*buf)[--n] = 0;
    return 0;
}

/* Is the set of s1 (n1 entries) that of s2? Shows the line when not. */
static int same_set(const char *what, long line, const char *hyp, const char *s1, int n1, const char *s2, int n2,
                    int show)
{
    int ok = s1 && s2 && n1 == n2 && !strcmp(s1, s2);
    if (!ok && show && s1 && s2) {
        fprintf(stderr, "line %ld: %s differ: source {", line, what);
        for (const char *p = s1; *p; p++)
            fputs(*p == '\n' ? (p[1] ? " " : "") : (char[2]){*p, 0}, stderr);
        fputs("} output {", stderr);
        for (const char *p = s2; *p; p++)
            fputs(*p == '\n' ? (p[1] ? " " : "") : (char[2]){*p, 0}, stderr);
        fprintf(stderr, "}: %s\n", hyp);
    }
    return ok;
}

static int kept(const char *src, const char *hyp, int show)
{
    FILE *a = fopen(src, "rb"), *h = a ? fopen(hyp, "rb") : NULL;
    if (!a || !h) {
        int e = errno;
        if (a)
            fclose(a);
        return cli_error("%s: %s", a ? hyp : src, strerror(e));
    }
    char *b1 = NULL, *b2 = NULL;
    size_t c1 = 0, c2 = 0;
    long line = 0, with = 0, same = 0, with_bad = 0, bad = 0, same_bad = 0;
    int rc = 0;
    while (read_line(a, &b1, &c1) == 0) {
        line++;
        if (read_line(h, &b2, &c2) != 0) {
            rc = cli_error("%s: line %ld: missing (the source has more lines)", hyp, line);
            break;
        }
        for (int b = 0; b < 2 && !rc; b++) {
            int n1, n2;
            char *s1 = protect_keys(b1, b, &n1), *s2 = protect_keys(b2, b, &n2);
            if (!s1 || !s2)
                rc = cli_error("out of memory");
            if (n1 > 0 && !rc) {
                int ok = same_set(b ? "malformed text" : "protected spans", line, b2, s1, n1, s2, n2, show);
                with += !b, same += !b && ok;
                with_bad += b, bad += b ? n1 : 0, same_bad += b && ok;
            }
            free(s1);
            free(s2);
        }
    }
    if (!rc) {
        printf("placeholders kept: %ld of %ld lines with protected spans (%.1f%%)\n", same, with,
               with ? 100.0 * (double)same / (double)with : 100.0);
        printf("malformed left as text: %ld in %ld lines, the same in %ld of them (%.1f%%)\n", bad, with_bad,
               same_bad, with_bad ? 100.0 * (double)same_bad / (double)with_bad : 100.0);
    }
    free(b1);
    free(b2);
    fclose(a);
    fclose(h);
    return rc;
}

int protect_mask_files(const char *src, const char *tgt, const char *out_src, const char *out_tgt)
{
    FILE *a = fopen(src, "rb"), *b = a ? fopen(tgt, "rb") : NULL;
    if (!a || !b) {
        int e = errno;
        if (a)
            fclose(a);
        return cli_error("%s: %s", a ? tgt : src, strerror(e));
    }
    qkv_afile oa = {0}, ob = {0};
    int have_a = qkv_afile_open(&oa, out_src) == QKV_OK, have_b = have_a && qkv_afile_open(&ob, out_tgt) == QKV_OK;
    int rc = 0;
    if (!have_b)
        rc = cli_error("%s", qkv_last_error());
    char *b1 = NULL, *b2 = NULL;
    size_t c1 = 0, c2 = 0;
    long line = 0, lines_with = 0, spans = 0, matched = 0, malformed = 0;
    while (!rc && read_line(a, &b1, &c1) == 0) {
        line++;
        if (read_line(b, &b2, &c2) != 0) {
            rc = cli_error("%s: line %ld: missing (%s has more lines)", tgt, line, src);
            break;
        }
        protect_spans sp;
        protect_find(b1, strlen(b1), &sp);
        lines_with += sp.n > 0;
        spans += sp.n;
        malformed += sp.malformed;
        char *ms, *mt;
        int m;
        if (protect_mask_pair(b1, b2, &ms, &mt, &m) != 0) {
            rc = cli_error("out of memory");
            break;
        }
        matched += m;
        fprintf(oa.fp, "%s\n", ms);
        fprintf(ob.fp, "%s\n", mt);
        free(ms);
        free(mt);
    }
    if (!rc && read_line(b, &b2, &c2) == 0)
        rc = cli_error("%s: line %ld: extra line (%s has %ld)", tgt, line + 1, src, line);
    if (!rc && (ferror(a) || ferror(b)))
        rc = cli_error("%s: read failed", ferror(a) ? src : tgt);
    if (have_b) {
        if (rc) {
            qkv_afile_abort(&oa);
            qkv_afile_abort(&ob);
        } else if (qkv_afile_commit(&oa) != QKV_OK || qkv_afile_commit(&ob) != QKV_OK) {
            rc = cli_error("%s", qkv_last_error());
        }
    } else if (have_a) {
        qkv_afile_abort(&oa);
    }
    if (!rc)
        fprintf(stderr,
                "qkv protect: %ld pairs, %ld with protected spans; %ld source spans, %ld matched in the target; "
                "%ld malformed left as text\n",
                line, lines_with, spans, matched, malformed);
    free(b1);
    free(b2);
    fclose(a);
    fclose(b);
    return rc;
}

int cmd_protect(int argc, char **argv)
{
    const char *src = NULL, *tgt = NULL, *out_src = NULL, *out_tgt = NULL, *hyp = NULL;
    int symbols = 0, check = 0, show = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = !strcmp(a, "--src")       ? &src
                           : !strcmp(a, "--tgt")     ? &tgt
                           : !strcmp(a, "--out-src") ? &out_src
                           : !strcmp(a, "--out-tgt") ? &out_tgt
                           : !strcmp(a, "--hyp")     ? &hyp
                                                     : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--symbols")) {
            symbols = 1;
        } else if (!strcmp(a, "--kept")) {
            check = 1;
        } else if (!strcmp(a, "--show")) {
            show = 1;
        } else if (dst) {
            if (++i >= argc)
                return cli_error("%s needs a file name", a);
            *dst = argv[i];
        } else {
            fputs(usage, stderr);
            return cli_error("unexpected argument '%s'", a);
        }
    }
    if (symbols) {
        printf("%s\n", protect_symbols());
        return 0;
    }
    if (check) {
        if (!src || !hyp)
            return cli_error("protect --kept needs --src and --hyp");
        return kept(src, hyp, show);
    }
    if (!src || !tgt || !out_src || !out_tgt) {
        fputs(usage, stderr);
        return cli_error("protect needs --symbols, --kept, or --src, --tgt, --out-src and --out-tgt");
    }
    return protect_mask_files(src, tgt, out_src, out_tgt);
}
