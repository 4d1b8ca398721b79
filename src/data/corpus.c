/* The corpus builder: catalogs -> cleaned, de-duplicated, split parallel text.
 * The steps and their order are listed in corpus.h; keep that list, the
 * counters of corpus_report and corpus_report_json in sync. */
#include "data/corpus.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "base/io.h"
#include "base/status.h"
#include "data/labels.h"
#include "formats/mo.h"

corpus_options corpus_default_options(void)
{
    corpus_options o = {0};
    o.lang = "zh_CN";
    o.max_chars = 200;
    o.dev_size = 1000;
    o.test_size = 1000;
    o.download = 1;
    o.label_min_pairs = 1000;
    return o;
}

#define COMMON_PACKAGES                                                                                       \
    "libgtk-3-common", "libgtk2.0-common", "libglib2.0-data", "libc-l10n", "gnupg-l10n", "gettext",           \
        "binutils-common", "xkb-data", "gsettings-desktop-schemas", "appstream", "shared-mime-info",          \
        "libgstreamer1.0-0", "libgphoto2-l10n", "postgresql-client-15", "postgresql-15"
static const char *const packages_zh[] = {"libreoffice-l10n-zh-cn", COMMON_PACKAGES, NULL};
static const char *const packages_de[] = {"libreoffice-l10n-de", COMMON_PACKAGES, NULL};
static const char *const packages_other[] = {COMMON_PACKAGES, NULL};

const char *const *corpus_default_packages(const char *lang)
{
    if (!strcmp(lang, "zh_CN"))
        return packages_zh;
    if (!strcmp(lang, "de"))
        return packages_de;
    return packages_other;
}

void corpus_report_free(corpus_report *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n_packages; i++)
        free(r->packages[i].name);
    free(r->packages);
    r->packages = NULL;
    r->n_packages = 0;
}

void corpus_log(const corpus_options *o, const char *fmt, ...)
{
    if (!o->log)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    o->log(o->log_ctx, msg);
}

/* ---- finding catalogs ----------------------------------------------------- */

typedef struct {
    char *path;
    int pkg;
} catalog;

typedef struct {
    catalog *c;
    int n, cap;
} catalog_list;

static qkv_status add_catalog(catalog_list *c, const char *path, int pkg)
{
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 64;
        catalog *nc = realloc(c->c, (size_t)cap * sizeof *nc);
        if (!nc)
            return qkv_fail(QKV_ERR_NOMEM, "out of memory listing catalogs");
        c->c = nc;
        c->cap = cap;
    }
    if (!(c->c[c->n].path = strdup(path)))
        return qkv_fail(QKV_ERR_NOMEM, "out of memory listing catalogs");
    c->c[c->n++].pkg = pkg;
    return QKV_OK;
}

static int cmp_catalog(const void *a, const void *b)
{
    return strcmp(((const catalog *)a)->path, ((const catalog *)b)->path);
}

/* Catalogs are <anything>/<lang>/LC_MESSAGES/<name>.mo: the gettext layout
 * (usr/share/locale/...) and LibreOffice's (usr/lib/libreoffice/program/resource/...). */
static int is_catalog(const char *path, const char *lang)
{
    size_t n = strlen(path), ll = strlen(lang);
    if (n < 4 || strcmp(path + n - 3, ".mo"))
        return 0;
    const char *slash = strrchr(path, '/');
    if (!slash || slash - path < 13 + (long)ll || strncmp(slash - 12, "/LC_MESSAGES", 12))
        return 0;
    const char *l = slash - 12 - ll;
    return !strncmp(l, lang, ll) && l[-1] == '/';
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted entries of a directory (without . and ..). */
static qkv_status list_dir(const char *dir, char ***names, int *n)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return qkv_fail(QKV_ERR_IO, "%s: cannot open directory", dir);
    int cap = 0;
    struct dirent *e;
    qkv_status s = QKV_OK;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 32;
            char **nn = realloc(*names, (size_t)cap * sizeof *nn);
            if (!nn) {
                s = qkv_fail(QKV_ERR_NOMEM, "%s: out of memory", dir);
                break;
            }
            *names = nn;
        }
        if (!((*names)[*n] = strdup(e->d_name))) {
            s = qkv_fail(QKV_ERR_NOMEM, "%s: out of memory", dir);
            break;
        }
        (*n)++;
    }
    closedir(d);
    if (*n)
        qsort(*names, (size_t)*n, sizeof **names, cmp_str);
    return s;
}

static void free_names(char **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static qkv_status walk(const char *dir, int depth, const char *lang, int pkg, catalog_list *c)
{
    if (depth > 24)
        return QKV_OK; /* deeper than any package tree: a link loop or a trap */
    char **names;
    int n;
    QKV_TRY(list_dir(dir, &names, &n));
    qkv_status s = QKV_OK;
    for (int i = 0; i < n && s == QKV_OK; i++) {
        size_t len = strlen(dir) + strlen(names[i]) + 2;
        char *p = malloc(len);
        if (!p) {
            s = qkv_fail(QKV_ERR_NOMEM, "out of memory");
            break;
        }
        snprintf(p, len, "%s/%s", dir, names[i]);
        struct stat st;
        if (lstat(p, &st) == 0) { /* links are not followed */
            if (S_ISDIR(st.st_mode))
                s = walk(p, depth + 1, lang, pkg, c);
            else if (S_ISREG(st.st_mode) && is_catalog(p, lang))
                s = add_catalog(c, p, pkg);
        }
        free(p);
    }
    free_names(names, n);
    return s;
}

/* ---- the pairs ------------------------------------------------------------- */

typedef struct {
    char *src, *tgt;
    int pkg;
    uint64_t hash;
    char split; /* 0 train, 1 dev, 2 test */
} pair;

typedef struct {
    pair *p;
    size_t n, cap;
    int32_t *slot; /* open addressing on source hash: index + 1, 0 empty */
    size_t n_slots;
} pair_set;

static qkv_status set_grow(pair_set *s)
{
    size_t ns = s->n_slots ? 2 * s->n_slots : 1024;
    int32_t *slot = calloc(ns, sizeof *slot);
    if (!slot)
        return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < s->n; i++) {
        size_t h = (size_t)s->p[i].hash & (ns - 1);
        while (slot[h])
            h = (h + 1) & (ns - 1);
        slot[h] = (int32_t)i + 1;
    }
    free(s->slot);
    s->slot = slot;
    s->n_slots = ns;
    return QKV_OK;
}

/* Adds the pair (taking ownership of src, tgt) unless its source is there
 * already; *dup tells which. */
static qkv_status set_add(pair_set *s, char *src, char *tgt, int pkg, int *dup)
{
    if (2 * (s->n + 1) > s->n_slots)
        QKV_TRY(set_grow(s));
    uint64_t hash = corpus_fnv1a64(src);
    size_t h = (size_t)hash & (s->n_slots - 1);
    for (; s->slot[h]; h = (h + 1) & (s->n_slots - 1)) {
        const pair *q = &s->p[s->slot[h] - 1];
        if (q->hash == hash && !strcmp(q->src, src)) {
            *dup = 1;
            free(src);
            free(tgt);
            return QKV_OK;
        }
    }
    *dup = 0;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 1024;
        pair *np = realloc(s->p, cap * sizeof *np);
        if (!np)
            return qkv_fail(QKV_ERR_NOMEM, "out of memory");
        s->p = np;
        s->cap = cap;
    }
    if (s->n >= INT32_MAX - 1)
        return qkv_fail(QKV_ERR_UNSUPPORTED, "more than 2^31 pairs");
    s->p[s->n] = (pair){src, tgt, pkg, hash, 0};
    s->slot[h] = (int32_t)++s->n;
    return QKV_OK;
}

static void set_free(pair_set *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->p[i].src);
        free(s->p[i].tgt);
    }
    free(s->p);
    free(s->slot);
}

static int utf8_charset(const char *cs)
{
    return !*cs || !strcasecmp(cs, "UTF-8") || !strcasecmp(cs, "UTF8") || !strcasecmp(cs, "ASCII") ||
           !strcasecmp(cs, "US-ASCII") || !strcasecmp(cs, "CHARSET"); /* msginit's placeholder, ASCII-only files */
}

static qkv_status read_catalog(const char *path, int pkg, const corpus_options *o, corpus_report *r, pair_set *set)
{
    mo_file *f;
    QKV_TRY(mo_open(&f, path));
    r->catalogs++;
    r->packages[pkg].catalogs++;
    if (!utf8_charset(mo_charset(f))) {
        r->catalogs_not_utf8++;
        corpus_log(o, "skipping %s: charset %s", path, mo_charset(f));
        mo_close(f);
        return QKV_OK;
    }
    r->headers += mo_header(f) != NULL;
    qkv_status s = QKV_OK;
    for (int i = 0; i < mo_count(f) && s == QKV_OK; i++) {
        const mo_entry *e = mo_get(f, i);
        r->entries++;
        r->packages[pkg].entries++;
        if (!e->msgstr[0][0]) {
            r->untranslated++;
            continue;
        }
        if (!corpus_utf8_valid(e->msgid, strlen(e->msgid)) ||
            !corpus_utf8_valid(e->msgstr[0], strlen(e->msgstr[0]))) {
            r->invalid_utf8++;
            continue;
        }
        r->contexts_stripped += e->context != NULL;
        r->plurals_singular += e->msgid_plural != NULL;
        char *src = strdup(e->msgid), *tgt = strdup(e->msgstr[0]);
        if (!src || !tgt) {
            free(src);
            free(tgt);
            s = qkv_fail(QKV_ERR_NOMEM, "out of memory");
            break;
        }
        r->accelerators += corpus_strip_accelerators(src, tgt);
        int j1 = corpus_join_lines(src), j2 = corpus_join_lines(tgt);
        r->lines_joined += j1 || j2;
        int drop = 0;
        if (!*src || !*tgt) {
            r->empty++;
            drop = 1;
        } else if (corpus_utf8_chars(src) > (size_t)o->max_chars || corpus_utf8_chars(tgt) > (size_t)o->max_chars) {
            r->too_long++;
            drop = 1;
        }
        if (drop) {
            free(src);
            free(tgt);
            continue;
        }
        int dup = 0;
        s = set_add(set, src, tgt, pkg, &dup);
        r->duplicates += dup;
    }
    mo_close(f);
    if (s != QKV_OK)
        qkv_fail_context(s, "%s", path);
    return s;
}

/* ---- split and output ------------------------------------------------------ */

static int cmp_hash(const void *a, const void *b, void *ctx)
{
    const pair *p = ctx, *x = &p[*(const int32_t *)a], *y = &p[*(const int32_t *)b];
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return strcmp(x->src, y->src);
}

static qkv_status write_split(const char *out_dir, const char *name, const char *ext, const pair_set *set, int split,
                              int target_side)
{
    size_t len = strlen(out_dir) + strlen(name) + strlen(ext) + 3;
    char *path = malloc(len);
    if (!path)
        return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    snprintf(path, len, "%s/%s.%s", out_dir, name, ext);
    qkv_afile af;
    qkv_status s = qkv_afile_open(&af, path);
    free(path);
    if (s != QKV_OK)
        return s;
    for (size_t i = 0; i < set->n; i++)
        if (set->p[i].split == split) {
            fputs(target_side ? set->p[i].tgt : set->p[i].src, af.fp);
            fputc('\n', af.fp);
        }
    return qkv_afile_commit(&af);
}

/* The package-classification task of `qkv classify`: the pairs whose package
 * contributes at least o->label_min_pairs pairs to the corpus, labelled with
 * the package. split 0..2 writes NAME.labels.tsv, "package<TAB>English text"
 * for that split (the two-column form of data/labels.h); split -1 writes
 * labels.tsv, the header then the rows of train, dev and test, each split
 * in corpus order. Tabs in the text become spaces. */
static qkv_status write_labels(const char *out_dir, const pair_set *set, int split, const corpus_report *r,
                               const corpus_options *o)
{
    static const char *const split_names[] = {"train", "dev", "test"};
    size_t len = strlen(out_dir) + 32;
    char *path = malloc(len);
    if (!path)
        return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    if (split < 0)
        snprintf(path, len, "%s/labels.tsv", out_dir);
    else
        snprintf(path, len, "%s/%s.labels.tsv", out_dir, split_names[split]);
    qkv_afile af;
    qkv_status s = qkv_afile_open(&af, path);
    if (s != QKV_OK) {
        free(path);
        return s;
    }
    if (split < 0)
        fputs(LABELS_HEADER "\n", af.fp);
    for (int k = split < 0 ? 0 : split; s == QKV_OK && k < (split < 0 ? 3 : split + 1); k++)
        for (size_t i = 0; s == QKV_OK && i < set->n; i++) {
            const pair *p = &set->p[i];
            if (p->split != k || r->packages[p->pkg].pairs < o->label_min_pairs)
                continue;
            if (split < 0) {
                s = labels_write_row(af.fp, split_names[k], r->packages[p->pkg].name, p->src);
                continue;
            }
            fputs(r->packages[p->pkg].name, af.fp);
            fputc('\t', af.fp);
            for (const char *c = p->src; *c; c++)
                fputc(*c == '\t' ? ' ' : *c, af.fp);
            fputc('\n', af.fp);
        }
    if (s != QKV_OK) {
        qkv_afile_abort(&af);
        s = qkv_fail_context(s, "%s", path);
    } else {
        s = qkv_afile_commit(&af);
    }
    free(path);
    return s;
}

char *corpus_report_json(const corpus_report *r)
{
    cJSON *j = cJSON_CreateObject(), *steps = cJSON_CreateObject(), *splits = cJSON_CreateObject(),
          *pk = cJSON_CreateArray();
    cJSON_AddStringToObject(j, "lang", r->lang);
    cJSON_AddNumberToObject(j, "max_chars", r->max_chars);
    cJSON_AddNumberToObject(j, "catalogs", r->catalogs);
    /* keep in sync with corpus_report and the CLI's printout */
    const struct {
        const char *k;
        long v;
    } st[] = {
        {"entries_read", r->entries},
        {"catalogs_not_utf8_skipped", r->catalogs_not_utf8},
        {"headers_dropped", r->headers},
        {"untranslated_dropped", r->untranslated},
        {"fuzzy_dropped", r->fuzzy},
        {"invalid_utf8_dropped", r->invalid_utf8},
        {"contexts_stripped", r->contexts_stripped},
        {"plurals_to_singular", r->plurals_singular},
        {"accelerators_removed", r->accelerators},
        {"lines_joined", r->lines_joined},
        {"empty_dropped", r->empty},
        {"too_long_dropped", r->too_long},
        {"duplicates_dropped", r->duplicates},
    };
    for (size_t i = 0; i < sizeof st / sizeof st[0]; i++)
        cJSON_AddNumberToObject(steps, st[i].k, (double)st[i].v);
    cJSON_AddItemToObject(j, "steps", steps);
    cJSON_AddStringToObject(j, "fuzzy_note", "msgfmt leaves fuzzy entries out of .mo files, so none reach the reader");
    cJSON_AddNumberToObject(splits, "train", (double)r->train);
    cJSON_AddNumberToObject(splits, "dev", (double)r->dev);
    cJSON_AddNumberToObject(splits, "test", (double)r->test);
    cJSON_AddItemToObject(j, "splits", splits);
    for (int i = 0; i < r->n_packages; i++) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "name", r->packages[i].name);
        cJSON_AddNumberToObject(p, "catalogs", r->packages[i].catalogs);
        cJSON_AddNumberToObject(p, "entries", (double)r->packages[i].entries);
        cJSON_AddNumberToObject(p, "pairs", (double)r->packages[i].pairs);
        cJSON_AddItemToArray(pk, p);
    }
    cJSON_AddItemToObject(j, "packages", pk);
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    return text;
}

qkv_status corpus_build(const char *root_dir, const char *const *packages, const char *out_dir,
                        const corpus_options *o, corpus_report *r)
{
    memset(r, 0, sizeof *r);
    snprintf(r->lang, sizeof r->lang, "%s", o->lang);
    r->max_chars = o->max_chars;
    if (o->max_chars <= 0 || o->dev_size < 0 || o->test_size < 0 || o->label_min_pairs < 0 || !o->lang[0] ||
        strchr(o->lang, '/'))
        return qkv_fail(QKV_ERR_CONFIG, "corpus: bad options (lang '%s', max_chars %d, dev %d, test %d, "
                        "label_min_pairs %ld)", o->lang, o->max_chars, o->dev_size, o->test_size, o->label_min_pairs);
    char **pkgs = NULL;
    int n_pkgs = 0;
    if (packages) {
        while (packages[n_pkgs])
            n_pkgs++;
        pkgs = calloc((size_t)n_pkgs + 1, sizeof *pkgs);
        for (int i = 0; pkgs && i < n_pkgs; i++)
            if (!(pkgs[i] = strdup(packages[i]))) {
                free_names(pkgs, i);
                pkgs = NULL;
            }
        if (!pkgs)
            return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    } else {
        QKV_TRY(list_dir(root_dir, &pkgs, &n_pkgs));
        int k = 0; /* "<pkg>.tmp": an unpacking interrupted by a crash (corpus_fetch) */
        for (int i = 0; i < n_pkgs; i++) {
            size_t nl = strlen(pkgs[i]);
            if (nl > 4 && !strcmp(pkgs[i] + nl - 4, ".tmp"))
                free(pkgs[i]);
            else
                pkgs[k++] = pkgs[i];
        }
        n_pkgs = k;
    }
    r->packages = calloc((size_t)n_pkgs + 1, sizeof *r->packages);
    if (!r->packages) {
        free_names(pkgs, n_pkgs);
        return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    }
    r->n_packages = n_pkgs;
    catalog_list cats = {0};
    pair_set set = {0};
    qkv_status s = QKV_OK;
    for (int i = 0; i < n_pkgs && s == QKV_OK; i++) {
        r->packages[i].name = pkgs[i];
        pkgs[i] = NULL;
        size_t len = strlen(root_dir) + strlen(r->packages[i].name) + 2;
        char *dir = malloc(len);
        if (!dir) {
            s = qkv_fail(QKV_ERR_NOMEM, "out of memory");
            break;
        }
        snprintf(dir, len, "%s/%s", root_dir, r->packages[i].name);
        struct stat st;
        if (packages && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)))
            s = qkv_fail(QKV_ERR_IO, "%s: package directory missing (run the download first)", dir);
        else if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
            s = walk(dir, 0, o->lang, i, &cats);
        free(dir);
    }
    free_names(pkgs, n_pkgs);
    /* catalogs in path order (packages are the first component): the first
     * occurrence of a source wins deterministically */
    if (cats.n)
        qsort(cats.c, (size_t)cats.n, sizeof *cats.c, cmp_catalog);
    if (s == QKV_OK && cats.n == 0)
        s = qkv_fail(QKV_ERR_IO, "%s: no catalogs for language '%s' (looked for */%s/LC_MESSAGES/*.mo)", root_dir,
                     o->lang, o->lang);
    if (s == QKV_OK)
        corpus_log(o, "reading %d catalogs for %s", cats.n, o->lang);
    for (int i = 0; i < cats.n && s == QKV_OK; i++)
        s = read_catalog(cats.c[i].path, cats.c[i].pkg, o, r, &set);
    for (int i = 0; i < cats.n; i++)
        free(cats.c[i].path);
    free(cats.c);

    if (s == QKV_OK) {
        int32_t *order = malloc((set.n + 1) * sizeof *order);
        if (!order) {
            s = qkv_fail(QKV_ERR_NOMEM, "out of memory");
        } else {
            for (size_t i = 0; i < set.n; i++)
                order[i] = (int32_t)i;
            qsort_r(order, set.n, sizeof *order, cmp_hash, set.p);
            size_t n_test = (size_t)o->test_size < set.n ? (size_t)o->test_size : set.n;
            size_t n_dev = (size_t)o->dev_size < set.n - n_test ? (size_t)o->dev_size : set.n - n_test;
            for (size_t k = 0; k < set.n; k++)
                set.p[order[k]].split = k < n_test ? 2 : k < n_test + n_dev ? 1 : 0;
            free(order);
            r->test = (long)n_test;
            r->dev = (long)n_dev;
            r->train = (long)(set.n - n_test - n_dev);
            for (size_t i = 0; i < set.n; i++)
                r->packages[set.p[i].pkg].pairs++;
        }
    }
    if (s == QKV_OK) {
        char ext[32];
        snprintf(ext, sizeof ext, "%s", o->lang);
        ext[strcspn(ext, "_-@.")] = '\0';
        static const char *const split_names[] = {"train", "dev", "test"};
        for (int k = 0; k < 3 && s == QKV_OK; k++) {
            s = write_split(out_dir, split_names[k], "en", &set, k, 0);
            if (s == QKV_OK)
                s = write_split(out_dir, split_names[k], ext, &set, k, 1);
            if (s == QKV_OK)
                s = write_labels(out_dir, &set, k, r, o);
        }
        if (s == QKV_OK)
            s = write_labels(out_dir, &set, -1, r, o);
    }
    set_free(&set);
    if (s == QKV_OK) {
        char *text = corpus_report_json(r);
        size_t len = strlen(out_dir) + 16;
        char *path = malloc(len);
        if (!text || !path) {
            s = qkv_fail(QKV_ERR_NOMEM, "out of memory");
        } else {
            snprintf(path, len, "%s/report.json", out_dir);
            s = qkv_write_file(path, text, strlen(text));
        }
        free(text);
        free(path);
    }
    if (s != QKV_OK)
        corpus_report_free(r);
    return s;
}
