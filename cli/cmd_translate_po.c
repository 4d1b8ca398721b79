/* qkv translate-po IN.po -o OUT.po: machine translation of a gettext
 * catalog, as a translator's tool would offer it: only entries that need it,
 * marked fuzzy for review, everything else byte for byte (src/formats/po.h).
 * A .pot (template) becomes a .po for --lang. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "formats/po.h"
#include "text/protect.h"
#include "translate_args.h"

static const char usage[] =
    "usage: qkv translate-po -m MODEL IN.po -o OUT.po [options]\n"
    "  translates the untranslated entries (and, unless --only-untranslated, the fuzzy ones) of a\n"
    "  gettext catalog; header, comments, flags, contexts, obsolete entries and every other entry are\n"
    "  kept byte for byte. Plurals: msgstr[0..N-1] for the header's Plural-Forms (N = 1: the plural\n"
    "  form's translation; otherwise [0] from msgid, the rest from msgid_plural). A c-format entry whose\n"
    "  translation does not keep msgid's placeholders is left untranslated (counted), so the output\n"
    "  passes msgfmt --check.\n"
    "  -o, --output FILE        the translated catalog (written atomically)\n"
    "  --only-untranslated      leave fuzzy entries as they are\n"
    "  --fuzzy                  mark machine translations '#, fuzzy' (the default)\n"
    "  --no-fuzzy               do not mark them\n"
    "  --lang L                 a template's target language (default zh_CN)\n"
    "  --plural-forms S         a template's Plural-Forms (default for zh, ja, ko, vi, th, id:\n"
    "                           \"nplurals=1; plural=0;\", else \"nplurals=2; plural=(n != 1);\")\n"
    "  --no-protect             translate placeholders and tags as text\n"
    "  and the search options of qkv translate (--beam-size N, --batch-size N, --threads N, ...)\n";

/* Replaces the first "from" in s by "to" (s malloc'ed; returns the new one). */
static char *replace(char *s, const char *from, const char *to)
{
    char *p = s ? strstr(s, from) : NULL;
    if (!p)
        return s;
    size_t a = (size_t)(p - s), fl = strlen(from), tl = strlen(to), n = strlen(s);
    char *o = malloc(n - fl + tl + 1);
    if (!o)
        return s;
    memcpy(o, s, a);
    memcpy(o + a, to, tl);
    memcpy(o + a + tl, p + fl, n - a - fl + 1);
    free(s);
    return o;
}

/* The header of a template made into a catalog's header for lang. */
static char *header_for(const char *h, const char *lang, const char *plural_forms)
{
    char buf[256];
    char *s = strdup(h);
    s = replace(s, "charset=CHARSET", "charset=UTF-8");
    snprintf(buf, sizeof buf, "Plural-Forms: %s\n", plural_forms);
    if (s && strstr(s, "Plural-Forms:")) {
        char *p = strstr(s, "Plural-Forms:"), *e = strchr(p, '\n');
        size_t tail = e ? strlen(e + 1) : 0;
        char *o = malloc((size_t)(p - s) + strlen(buf) + tail + 1);
        if (o) {
            memcpy(o, s, (size_t)(p - s));
            strcpy(o + (p - s), buf);
            if (e)
                strcat(o, e + 1);
            free(s);
            s = o;
        }
    } else if (s) {
        size_t n = strlen(s);
        char *o = malloc(n + strlen(buf) + 1);
        if (o) {
            memcpy(o, s, n);
            strcpy(o + n, buf);
            free(s);
            s = o;
        }
    }
    snprintf(buf, sizeof buf, "Language: %s\n", lang);
    s = replace(s, "Language: \n", buf);
    return s;
}

static int cjk_like(const char *lang)
{
    static const char *const one[] = {"zh", "ja", "ko", "vi", "th", "id", "ms", "lo", "my"};
    for (size_t k = 0; k < sizeof one / sizeof one[0]; k++)
        if (!strncmp(lang, one[k], 2))
            return 1;
    return 0;
}

static int key_cmp(const void *a, const void *b) { return strcmp((const char *)a, (const char *)b); }

/* The printf arguments of s as a key (for c-format), as msgfmt --check sees
 * them: each argument's number and conversion ("1$%s 2$%d"), sorted, so that
 * "%s %d" and a reordered "%2$d %1$s" compare equal and "%d %s" does not. */
static void printf_key(const char *s, char *out, size_t cap)
{
    protect_spans sp;
    protect_find(s, strlen(s), &sp);
    int argi[PROTECT_MAX], n = 0;
    char v[PROTECT_MAX][64];
    protect_printf_args(s, &sp, argi);
    for (int k = 0; k < sp.n; k++)
        if (sp.span[k].kind == PROTECT_PRINTF && protect_span_key(s, &sp.span[k], argi[k], v[n], sizeof v[n]) == 0)
            n++;
    qsort(v, (size_t)n, sizeof v[0], key_cmp);
    out[0] = 0;
    for (int k = 0; k < n; k++)
        if (strlen(out) + strlen(v[k]) + 2 < cap) {
            strcat(out, v[k]);
            strcat(out, " ");
        }
}

/* One text to translate: a line of a msgid or msgid_plural. */
typedef struct {
    int entry, form; /* form: 0 msgid, 1 msgid_plural */
} seg_owner;

typedef struct {
    char **text;
    seg_owner *who;
    int n, cap;
} seg_list;

static int seg_add(seg_list *l, char *t, int entry, int form)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 256;
        char **a = realloc(l->text, (size_t)cap * sizeof *a);
        if (a)
            l->text = a;
        seg_owner *b = realloc(l->who, (size_t)cap * sizeof *b);
        if (b)
            l->who = b;
        if (!a || !b) {
            free(t);
            return -1;
        }
        l->cap = cap;
    }
    l->text[l->n] = t;
    l->who[l->n++] = (seg_owner){entry, form};
    return 0;
}

/* Splits s at '\n' into lines (the separators are put back on assembly);
 * blank lines are not translated. */
static int add_segments(seg_list *l, const char *s, int entry, int form)
{
    for (const char *p = s;;) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (p[strspn(p, " \t")] != '\n' && n > strspn(p, " \t")) {
            char *t = strndup(p, n);
            if (!t || seg_add(l, t, entry, form))
                return -1;
        }
        if (!e)
            return 0;
        p = e + 1;
    }
}

/* Rebuilds s with its non-blank lines replaced by the next translations
 * (*next advanced). NULL when a translation is empty. */
static char *assemble(const char *s, char **tr, int *next)
{
    size_t cap = 1;
    const char *p = s;
    int k = *next;
    for (;;) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (p[strspn(p, " \t")] != '\n' && n > strspn(p, " \t")) {
            if (!tr[k] || !tr[k][0])
                return NULL;
            cap += strlen(tr[k++]);
        } else {
            cap += n;
        }
        cap += 1;
        if (!e)
            break;
        p = e + 1;
    }
    char *o = malloc(cap), *w = o;
    if (!o)
        return NULL;
    for (p = s;;) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (p[strspn(p, " \t")] != '\n' && n > strspn(p, " \t")) {
            size_t tl = strlen(tr[*next]);
            memcpy(w, tr[(*next)++], tl);
            w += tl;
        } else {
            memcpy(w, p, n);
            w += n;
        }
        if (!e)
            break;
        *w++ = '\n';
        p = e + 1;
    }
    *w = 0;
    return o;
}

int cmd_translate_po(int argc, char **argv)
{
    const char *model, *in = NULL, *out = NULL, *lang = "zh_CN", *plural_forms = NULL;
    int only_untranslated = 0, fuzzy = 1, protect = 1, rc = 1, *bad_ids = NULL;
    int done = translate_model_arg(argc, argv, usage, &model);
    if (done >= 0)
        return done;
    qkv_translator *tr = NULL;
    po_file po = {0};
    seg_list segs = {0};
    char **hyp = NULL;
    if (qkv_translator_load(model, &tr) != QKV_OK)
        return cli_error("%s", qkv_last_error());
    qkv_translate_options o = qkv_translator_default_options(tr);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = translate_parse_option(&o, argc, argv, &i, &bad_ids);
        if (r < 0)
            goto done;
        if (r > 0)
            continue;
        if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && i + 1 < argc)
            i++;
        else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && i + 1 < argc)
            out = argv[++i];
        else if (!strcmp(a, "--lang") && i + 1 < argc)
            lang = argv[++i];
        else if (!strcmp(a, "--plural-forms") && i + 1 < argc)
            plural_forms = argv[++i];
        else if (!strcmp(a, "--only-untranslated"))
            only_untranslated = 1;
        else if (!strcmp(a, "--fuzzy"))
            fuzzy = 1;
        else if (!strcmp(a, "--no-fuzzy"))
            fuzzy = 0;
        else if (!strcmp(a, "--no-protect"))
            protect = 0;
        else if (a[0] != '-' && !in)
            in = a;
        else {
            fputs(usage, stderr);
            cli_error("unexpected argument '%s'", a);
            goto done;
        }
    }
    if (!in || !out) {
        fputs(usage, stderr);
        cli_error("translate-po needs IN.po and -o OUT.po");
        goto done;
    }
    if (qkv_translate_validate_options(&o) != QKV_OK) {
        cli_error("%s", qkv_last_error());
        goto done;
    }
    protect = protect && qkv_translator_protects(tr);
    if (po_read(in, &po) != QKV_OK) {
        cli_error("%s", qkv_last_error());
        goto done;
    }
    int nplurals = po_nplurals(&po), template = 0;
    if (!nplurals) {
        template = 1;
        if (!plural_forms)
            plural_forms = cjk_like(lang) ? "nplurals=1; plural=0;" : "nplurals=2; plural=(n != 1);";
        const char *p = strstr(plural_forms, "nplurals=");
        nplurals = p ? atoi(p + 9) : 0;
        if (nplurals < 1 || nplurals > 6) {
            cli_error("--plural-forms '%s': expected nplurals=N (1..6); plural=...;", plural_forms);
            goto done;
        }
    }
    long want = 0, kept = 0, obsolete = 0;
    for (int i = 0; i < po.n; i++) {
        po_entry *e = &po.e[i];
        obsolete += e->obsolete;
        if (!e->has_msgid || e->obsolete)
            continue;
        if (po_is_header(e)) {
            if (template && e->n_msgstr == 1) {
                char *h = header_for(e->msgstr[0], lang, plural_forms);
                e->new_msgstr = malloc(sizeof(char *));
                if (!h || !e->new_msgstr) {
                    free(h);
                    cli_error("out of memory");
                    goto done;
                }
                e->new_msgstr[0] = h;
                e->n_new = 1;
            }
            continue;
        }
        int needs = po_untranslated(e) || (e->fuzzy && !only_untranslated);
        if (!needs) {
            kept++;
            continue;
        }
        want++;
        int forms = e->msgid_plural ? (nplurals == 1 ? 1 : 2) : 1;
        for (int f = 0; f < forms; f++) {
            const char *src = e->msgid_plural && (nplurals == 1 || f == 1) ? e->msgid_plural : e->msgid;
            if (add_segments(&segs, src, i, f)) {
                cli_error("out of memory");
                goto done;
            }
        }
    }
    hyp = calloc((size_t)(segs.n > 0 ? segs.n : 1), sizeof(char *));
    qkv_protect_stats ps = {0};
    if (!hyp) {
        cli_error("out of memory");
        goto done;
    }
    enum { CHUNK = 512 };
    for (int i0 = 0; i0 < segs.n; i0 += CHUNK) {
        int n = segs.n - i0 < CHUNK ? segs.n - i0 : CHUNK;
        qkv_translation *r = NULL;
        qkv_status s = protect ? qkv_translate_protected(tr, (const char *const *)segs.text + i0, n, &o, &ps, &r)
                               : qkv_translate(tr, (const char *const *)segs.text + i0, n, &o, &r);
        if (s != QKV_OK) {
            cli_error("%s", qkv_last_error());
            goto done;
        }
        for (int k = 0; k < n; k++)
            if (r[k].n_hyps > 0) {
                hyp[i0 + k] = r[k].hyps[0].text;
                r[k].hyps[0].text = NULL;
            }
        qkv_translations_free(r, n);
    }
    /* assemble, entry by entry, in the order the segments were added */
    long translated = 0, skipped_format = 0, skipped_empty = 0;
    for (int k = 0; k < segs.n;) {
        int i = segs.who[k].entry;
        po_entry *e = &po.e[i];
        int forms = e->msgid_plural ? (nplurals == 1 ? 1 : 2) : 1, ok = 1, empty = 0;
        char *v[2] = {NULL, NULL};
        for (int f = 0; f < forms; f++) {
            const char *src = e->msgid_plural && (nplurals == 1 || f == 1) ? e->msgid_plural : e->msgid;
            v[f] = assemble(src, hyp, &k);
            if (!v[f]) {
                /* skip this form's segments */
                while (k < segs.n && segs.who[k].entry == i && segs.who[k].form == f)
                    k++;
                ok = 0;
                empty = 1;
                continue;
            }
            if (ok && e->c_format) {
                char a[512], b[512];
                printf_key(src, a, sizeof a);
                printf_key(v[f], b, sizeof b);
                ok = !strcmp(a, b);
            }
        }
        while (k < segs.n && segs.who[k].entry == i)
            k++;
        if (!ok) {
            skipped_empty += empty;
            skipped_format += !empty;
            free(v[0]);
            free(v[1]);
            continue;
        }
        int n_new = e->msgid_plural ? nplurals : 1;
        e->new_msgstr = calloc((size_t)n_new, sizeof(char *));
        if (!e->new_msgstr) {
            free(v[0]);
            free(v[1]);
            cli_error("out of memory");
            goto done;
        }
        for (int j = 0; j < n_new; j++)
            e->new_msgstr[j] = j == 0 ? v[0] : (j == 1 ? v[1] : strdup(v[1]));
        e->n_new = n_new;
        e->mark_fuzzy = fuzzy;
        translated++;
    }
    if (po_write(&po, out) != QKV_OK) {
        cli_error("%s", qkv_last_error());
        goto done;
    }
    fprintf(stderr,
            "qkv translate-po: %s -> %s: %d entries; %ld needed translation, %ld translated%s, %ld left for "
            "placeholders that did not survive (c-format), %ld left for an empty translation; %ld already "
            "translated and %ld obsolete kept as they were\n",
            in, out, po.n, want, translated, fuzzy ? " (marked fuzzy)" : "", skipped_format, skipped_empty, kept,
            obsolete);
    if (protect)
        translate_print_protect_stats(&ps);
    rc = 0;
done:
    for (int k = 0; k < segs.n; k++) {
        free(segs.text[k]);
        if (hyp)
            free(hyp[k]);
    }
    free(segs.text);
    free(segs.who);
    free(hyp);
    po_free(&po);
    qkv_translator_free(tr);
    free(bad_ids);
    return rc;
}
