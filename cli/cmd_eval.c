/* qkv score-bleu and qkv eval: sacreBLEU-compatible BLEU and chrF of a
 * hypothesis file against one or more reference files.
 *
 * Files are read as sacreBLEU's command line reads them: lines end at '\n'
 * only, trailing whitespace is stripped, a final line without '\n' counts. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/io.h"
#include "commands.h"
#include "qkv.h"

#define MAX_REFS 16

typedef struct {
    char *data;    /* the file, split in place */
    char **lines;
    int n;
    const char *name;
} text_lines;

static void lines_free(text_lines *t)
{
    free(t->data);
    free(t->lines);
}

static int split_lines(text_lines *t, char *data, size_t len, const char *name)
{
    t->data = data;
    t->name = name;
    t->n = 0;
    size_t cap = 1;
    for (size_t i = 0; i < len; i++)
        cap += data[i] == '\n';
    t->lines = malloc(cap * sizeof *t->lines);
    if (!t->lines)
        return cli_error("%s: out of memory", name);
    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && data[j] != '\n')
            j++;
        if (memchr(data + i, 0, j - i))
            return cli_error("%s: line %d contains a NUL byte", name, t->n + 1);
        size_t e = j;
        while (e > i && (data[e - 1] == ' ' || (data[e - 1] >= '\t' && data[e - 1] <= '\r')))
            e--;
        data[e] = 0;
        t->lines[t->n++] = data + i;
        i = j + 1;
    }
    return 0;
}

static int read_lines(text_lines *t, const char *path)
{
    memset(t, 0, sizeof *t);
    char *data = NULL;
    size_t len = 0;
    if (!path || !strcmp(path, "-")) {
        size_t cap = 1 << 16;
        data = malloc(cap);
        for (size_t got; data && (got = fread(data + len, 1, cap - len - 1, stdin)) > 0;) {
            len += got;
            if (len + 1 == cap) {
                char *p = realloc(data, cap *= 2);
                if (!p)
                    free(data);
                data = p;
            }
        }
        if (!data)
            return cli_error("stdin: out of memory");
        data[len] = 0;
        path = "stdin";
    } else if (qkv_read_file(path, &data, &len) != QKV_OK) {
        return cli_error("%s", qkv_last_error());
    }
    return split_lines(t, data, len, path);
}

typedef struct {
    const char *refs[MAX_REFS];
    int n_refs;
    const char *hyp;
    qkv_bleu_options bleu;
    int json, sentence_level;
} eval_args;

static int parse_args(int argc, char **argv, eval_args *a, int positional_hyp, const char *usage)
{
    memset(a, 0, sizeof *a);
    a->bleu = qkv_bleu_default_options();
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        int has_val = i + 1 < argc;
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            fputs(usage, stdout);
            return -1;
        } else if ((!strcmp(s, "--ref") || !strcmp(s, "-r")) && has_val) {
            if (a->n_refs == MAX_REFS)
                return cli_error("at most %d --ref files", MAX_REFS);
            a->refs[a->n_refs++] = argv[++i];
        } else if (!strcmp(s, "--tokenize") && has_val) {
            if (qkv_bleu_tokenizer_parse(argv[++i], &a->bleu.tokenize) != QKV_OK)
                return cli_error("--tokenize: %s", qkv_last_error());
        } else if (!strcmp(s, "--lowercase") || !strcmp(s, "-lc")) {
            a->bleu.lowercase = 1;
        } else if ((!strcmp(s, "--sentence-level") || !strcmp(s, "-sl")) && positional_hyp) {
            a->sentence_level = 1;
            a->bleu.effective_order = 1; /* as sacreBLEU does for sentence BLEU */
        } else if (!strcmp(s, "--json") && !positional_hyp) {
            a->json = 1;
        } else if (!strcmp(s, "--hyp") && has_val && !positional_hyp) {
            a->hyp = argv[++i];
        } else if (positional_hyp && !a->hyp && (s[0] != '-' || !strcmp(s, "-"))) {
            a->hyp = s;
        } else {
            return cli_error("unexpected argument '%s'\n%s", s, usage);
        }
    }
    if (!a->n_refs)
        return cli_error("at least one --ref file is needed\n%s", usage);
    if (!positional_hyp && !a->hyp)
        return cli_error("--hyp is needed\n%s", usage);
    return 0;
}

/* Loads the hypotheses and references; checks that line counts agree. */
static int load_all(const eval_args *a, text_lines *hyp, text_lines *refs, const char *const **ref_lines)
{
    if (read_lines(hyp, a->hyp))
        return 1;
    for (int k = 0; k < a->n_refs; k++) {
        if (read_lines(&refs[k], a->refs[k]))
            return 1;
        if (refs[k].n != hyp->n)
            return cli_error("%s has %d lines but %s has %d", refs[k].name, refs[k].n, hyp->name, hyp->n);
        ref_lines[k] = (const char *const *)refs[k].lines;
    }
    return 0;
}

/* Library messages number sentences and references ("reference 2 of
 * sentence 7"); name the files they stand for. */
static int score_error(const eval_args *a, const char *hyp_name)
{
    char files[1024];
    int at = snprintf(files, sizeof files, "hypotheses: %s", hyp_name);
    for (int k = 0; k < a->n_refs && at < (int)sizeof files; k++)
        at += snprintf(files + at, sizeof files - at, "; reference %d: %s", k + 1, a->refs[k]);
    return cli_error("%s (sentence = line number; %s)", qkv_last_error(), files);
}

static const char score_usage[] =
    "usage: qkv score-bleu --ref REF [--ref REF2 ...] [--tokenize 13a|zh|intl|char|none] [--lowercase]\n"
    "                      [--sentence-level] [HYP|-]\n"
    "  corpus BLEU as sacreBLEU 2.x computes it (default tokenizer 13a; use zh for Chinese);\n"
    "  the hypotheses come from HYP or standard input, one sentence per line;\n"
    "  --sentence-level prints one line per sentence (effective order, as sacreBLEU -sl)\n";

int cmd_score_bleu(int argc, char **argv);
int cmd_score_bleu(int argc, char **argv)
{
    eval_args a;
    int rc = parse_args(argc, argv, &a, 1, score_usage);
    if (rc)
        return rc < 0 ? 0 : 2;
    text_lines hyp = {0}, refs[MAX_REFS] = {{0}};
    const char *const *ref_lines[MAX_REFS];
    rc = load_all(&a, &hyp, refs, ref_lines);
    qkv_bleu_result r;
    /* the corpus pass first, also in sentence mode: its errors carry the
     * sentence's line number, which the one-sentence calls cannot know */
    if (!rc && qkv_bleu((const char *const *)hyp.lines, ref_lines, hyp.n, a.n_refs, &a.bleu, &r) != QKV_OK)
        rc = score_error(&a, hyp.name);
    for (int i = 0; !rc && a.sentence_level && i < hyp.n; i++) {
        const char *one[MAX_REFS];
        const char *const *one_refs[MAX_REFS];
        for (int k = 0; k < a.n_refs; k++)
            one[k] = ref_lines[k][i], one_refs[k] = &one[k];
        if (qkv_bleu((const char *const *)hyp.lines + i, one_refs, 1, a.n_refs, &a.bleu, &r) != QKV_OK) {
            rc = score_error(&a, hyp.name);
            break;
        }
        char line[512];
        qkv_bleu_format(line, sizeof line, &r, &a.bleu, 1);
        puts(line);
    }
    if (!rc && !a.sentence_level) {
        char line[512];
        qkv_bleu_format(line, sizeof line, &r, &a.bleu, 1);
        puts(line);
    }
    lines_free(&hyp);
    for (int k = 0; k < a.n_refs; k++)
        lines_free(&refs[k]);
    return rc;
}

static void add_array(cJSON *o, const char *key, const double *v, int n)
{
    cJSON *arr = cJSON_AddArrayToObject(o, key);
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateNumber(v[i]));
}

static const char eval_usage[] =
    "usage: qkv eval --ref REF [--ref REF2 ...] --hyp HYP [--tokenize 13a|zh|intl|char|none] [--lowercase] [--json]\n"
    "  BLEU (sacreBLEU 2.x, default tokenizer 13a), chrF and chrF++ of HYP against the references;\n"
    "  --lowercase applies to all three; --json prints one JSON object\n";

int cmd_eval(int argc, char **argv);
int cmd_eval(int argc, char **argv)
{
    eval_args a;
    int rc = parse_args(argc, argv, &a, 0, eval_usage);
    if (rc)
        return rc < 0 ? 0 : 2;
    text_lines hyp = {0}, refs[MAX_REFS] = {{0}};
    const char *const *ref_lines[MAX_REFS];
    rc = load_all(&a, &hyp, refs, ref_lines);
    qkv_bleu_result b;
    qkv_chrf_result c, cpp;
    qkv_chrf_options co = qkv_chrf_default_options(), cppo = co;
    co.lowercase = cppo.lowercase = a.bleu.lowercase;
    cppo.word_order = 2;
    const char *const *h = (const char *const *)hyp.lines;
    if (!rc && (qkv_bleu(h, ref_lines, hyp.n, a.n_refs, &a.bleu, &b) != QKV_OK ||
                qkv_chrf(h, ref_lines, hyp.n, a.n_refs, &co, &c) != QKV_OK ||
                qkv_chrf(h, ref_lines, hyp.n, a.n_refs, &cppo, &cpp) != QKV_OK))
        rc = score_error(&a, hyp.name);
    char bl[512], cl[256], cppl[256];
    if (!rc) {
        qkv_bleu_format(bl, sizeof bl, &b, &a.bleu, 1);
        qkv_chrf_format(cl, sizeof cl, &c, &co, 1);
        qkv_chrf_format(cppl, sizeof cppl, &cpp, &cppo, 1);
    }
    if (!rc && !a.json) {
        printf("%s\n%s\n%s\n", bl, cl, cppl);
    } else if (!rc) {
        cJSON *root = cJSON_CreateObject(), *jb = cJSON_AddObjectToObject(root, "bleu");
        cJSON_AddNumberToObject(root, "sentences", hyp.n);
        cJSON_AddNumberToObject(jb, "score", b.score);
        double counts[QKV_BLEU_MAX_ORDER], totals[QKV_BLEU_MAX_ORDER];
        for (int n = 0; n < b.max_ngram_order; n++)
            counts[n] = (double)b.counts[n], totals[n] = (double)b.totals[n];
        add_array(jb, "counts", counts, b.max_ngram_order);
        add_array(jb, "totals", totals, b.max_ngram_order);
        add_array(jb, "precisions", b.precisions, b.max_ngram_order);
        cJSON_AddNumberToObject(jb, "bp", b.bp);
        cJSON_AddNumberToObject(jb, "ratio", b.ratio);
        cJSON_AddNumberToObject(jb, "hyp_len", (double)b.sys_len);
        cJSON_AddNumberToObject(jb, "ref_len", (double)b.ref_len);
        cJSON_AddStringToObject(jb, "line", bl);
        const qkv_chrf_result *cr[2] = {&c, &cpp};
        const char *names[2] = {"chrf", "chrf++"}, *lines[2] = {cl, cppl};
        for (int k = 0; k < 2; k++) {
            cJSON *jc = cJSON_AddObjectToObject(root, names[k]);
            cJSON_AddNumberToObject(jc, "score", cr[k]->score);
            cJSON_AddStringToObject(jc, "line", lines[k]);
        }
        char *txt = cJSON_Print(root);
        if (txt)
            puts(txt);
        else
            rc = cli_error("out of memory");
        free(txt);
        cJSON_Delete(root);
    }
    lines_free(&hyp);
    for (int k = 0; k < a.n_refs; k++)
        lines_free(&refs[k]);
    return rc;
}
