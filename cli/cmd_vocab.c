/* qkv vocab encode / qkv vocab decode: SentencePiece models on text streams,
 * line for line and byte for byte as sentencepiece's spm_encode/spm_decode:
 *
 *   qkv vocab encode --model M.model [--output-format piece|id]
 *                    [--extra-options bos:eos:reverse] [FILE...]
 *   qkv vocab decode --model M.model [--input-format piece|id] [FILE...]
 *
 * Input is stdin unless files are named; one output line per input line
 * (empty lines included), tokens separated by single spaces. Defaults are
 * spm_encode's (pieces). Malformed UTF-8 is read as U+FFFD, as sentencepiece
 * does, and counted in one warning on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "qkv.h"
#include "text/spm.h"

int cmd_vocab_encode(int argc, char **argv);
int cmd_vocab_decode(int argc, char **argv);

typedef struct {
    const char *model;
    const char *format; /* "id" or "piece" */
    char ops[16]; /* extra options in order: 'b'os, 'e'os, 'r'everse */
    int n_ops;
    char **files;
    int n_files;
} vocab_args;

/* Accepts "--name value", "--name=value", and sentencepiece's underscore
 * spellings (--output_format) so spm_encode command lines work unchanged. */
static int match_opt(const char *arg, const char *name, char **argv, int *i, int argc, const char **val)
{
    size_t n = strlen(name);
    char alt[64];
    snprintf(alt, sizeof alt, "%s", name);
    for (char *p = alt + 2; *p; p++)
        if (*p == '-')
            *p = '_';
    const char *hit = !strncmp(arg, name, n) ? arg + n : !strncmp(arg, alt, n) ? arg + n : NULL;
    if (!hit)
        return 0;
    if (*hit == '=') {
        *val = hit + 1;
        return 1;
    }
    if (*hit)
        return 0;
    if (*i + 1 >= argc) {
        *val = NULL;
        return 1;
    }
    *val = argv[++*i];
    return 1;
}

static int parse(int argc, char **argv, vocab_args *a, const char *fmt_opt, const char *usage)
{
    memset(a, 0, sizeof *a);
    a->format = "piece";
    a->files = calloc((size_t)argc + 1, sizeof *a->files);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *val;
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            printf("%s", usage);
            return 0;
        }
        if (match_opt(arg, "--model", argv, &i, argc, &val)) {
            if (!val)
                return cli_error("--model needs a value"), -1;
            a->model = val;
        } else if (match_opt(arg, fmt_opt, argv, &i, argc, &val)) {
            if (!val || (strcmp(val, "id") && strcmp(val, "piece")))
                return cli_error("%s must be 'id' or 'piece'", fmt_opt), -1;
            a->format = val;
        } else if (match_opt(arg, "--extra-options", argv, &i, argc, &val) && !strcmp(fmt_opt, "--output-format")) {
            if (!val)
                return cli_error("--extra-options needs a value"), -1;
            char *opts = strdup(val), *save = NULL;
            for (char *t = strtok_r(opts, ":", &save); t; t = strtok_r(NULL, ":", &save)) {
                if (a->n_ops == (int)sizeof a->ops)
                    ;
                else if (!strcmp(t, "bos"))
                    a->ops[a->n_ops++] = 'b';
                else if (!strcmp(t, "eos"))
                    a->ops[a->n_ops++] = 'e';
                else if (!strcmp(t, "reverse"))
                    a->ops[a->n_ops++] = 'r';
                else {
                    cli_error("unknown extra option '%s' (expected bos, eos or reverse)", t);
                    free(opts);
                    return -1;
                }
            }
            free(opts);
        } else if (arg[0] == '-' && arg[1]) {
            return cli_error("unknown option '%s' (try --help)", arg), -1;
        } else {
            a->files[a->n_files++] = argv[i];
        }
    }
    if (!a->model)
        return cli_error("--model is required (try --help)"), -1;
    return 1;
}

/* Buffered stdout: one fwrite per megabyte. */
typedef struct {
    char *p;
    size_t len, cap;
} outbuf;

static void out_flush(outbuf *o)
{
    if (o->len)
        fwrite(o->p, 1, o->len, stdout);
    o->len = 0;
}

static int out_put(outbuf *o, const char *s, size_t n)
{
    if (o->len + n > o->cap) {
        out_flush(o);
        if (n > o->cap) {
            char *np = realloc(o->p, n);
            if (!np)
                return 0;
            o->p = np;
            o->cap = n;
        }
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    return 1;
}

static int out_int(outbuf *o, int v)
{
    char t[16];
    int n = 0;
    unsigned u = v < 0 ? 0u - (unsigned)v : (unsigned)v;
    do
        t[15 - n++] = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0)
        t[15 - n++] = '-';
    return out_put(o, t + 16 - n, (size_t)n);
}

typedef int (*line_fn)(const qkv_vocab *v, const vocab_args *a, const char *line, size_t len, outbuf *o,
                       void *state);

/* Runs fn on every line of every input (stdin when none). */
static int for_lines(const qkv_vocab *v, const vocab_args *a, line_fn fn, void *state, outbuf *o)
{
    int n = a->n_files ? a->n_files : 1;
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;
    for (int f = 0; f < n && !rc; f++) {
        FILE *fp = stdin;
        if (a->n_files && strcmp(a->files[f], "-")) {
            fp = fopen(a->files[f], "rb");
            if (!fp) {
                rc = cli_error("%s: cannot open", a->files[f]);
                break;
            }
        }
        if (fp != stdin || f == 0) /* before the stream's first read only */
            setvbuf(fp, NULL, _IOFBF, 1 << 20);
        ssize_t len;
        while (!rc && (len = getline(&line, &cap, fp)) >= 0) {
            if (len && line[len - 1] == '\n')
                len--;
            rc = fn(v, a, line, (size_t)len, o, state);
        }
        if (!rc && ferror(fp))
            rc = cli_error("%s: read error", a->n_files ? a->files[f] : "stdin");
        if (fp != stdin)
            fclose(fp);
    }
    free(line);
    return rc;
}

typedef struct {
    spm_state st;
    size_t invalid_bytes, invalid_lines;
    int bos_id, eos_id;
    long *items; /* output order: token index, or -1 bos, -2 eos */
    size_t items_cap;
} encode_state;

static int encode_line(const qkv_vocab *v, const vocab_args *a, const char *line, size_t len, outbuf *o,
                       void *state)
{
    encode_state *es = state;
    spm_state *st = &es->st;
    if (spm_encode(v, st, line, len) != QKV_OK)
        return cli_error("%s", qkv_last_error());
    if (st->n_invalid) {
        es->invalid_bytes += st->n_invalid;
        es->invalid_lines++;
    }
    size_t n = st->n_tok;
    int piece = a->format[0] == 'p';
    if (a->n_ops) {
        /* sentencepiece applies the extra options in the order given */
        if (n + (size_t)a->n_ops > es->items_cap) {
            size_t nc = 2 * (n + (size_t)a->n_ops);
            long *it = realloc(es->items, nc * sizeof *it);
            if (!it)
                return cli_error("out of memory");
            es->items = it;
            es->items_cap = nc;
        }
        size_t m = n;
        for (size_t i = 0; i < n; i++)
            es->items[i] = (long)i;
        for (int k = 0; k < a->n_ops; k++) {
            if (a->ops[k] == 'b' && es->bos_id >= 0) {
                memmove(es->items + 1, es->items, m * sizeof *es->items);
                es->items[0] = -1;
                m++;
            } else if (a->ops[k] == 'e' && es->eos_id >= 0) {
                es->items[m++] = -2;
            } else if (a->ops[k] == 'r') {
                for (size_t i = 0, j = m ? m - 1 : 0; i < j; i++, j--) {
                    long x = es->items[i];
                    es->items[i] = es->items[j];
                    es->items[j] = x;
                }
            }
        }
        for (size_t i = 0; i < m; i++) {
            if (i)
                out_put(o, " ", 1);
            long it = es->items[i];
            int id = it == -1 ? es->bos_id : it == -2 ? es->eos_id : st->tok[it].id;
            if (!piece) {
                out_int(o, id);
            } else if (it < 0) {
                out_put(o, qkv_vocab_piece(v, id), strlen(qkv_vocab_piece(v, id)));
            } else {
                size_t pl;
                const char *p = spm_token_piece(v, st, (size_t)it, &pl);
                out_put(o, p, pl);
            }
        }
        return out_put(o, "\n", 1) ? 0 : cli_error("out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        if (i)
            out_put(o, " ", 1);
        if (piece) {
            size_t pl;
            const char *p = spm_token_piece(v, st, i, &pl);
            out_put(o, p, pl);
        } else {
            out_int(o, st->tok[i].id);
        }
    }
    return out_put(o, "\n", 1) ? 0 : cli_error("out of memory");
}

typedef struct {
    int *ids;
    const char **pieces;
    size_t *lens;
    size_t cap;
    spm_str text;
    size_t line_no;
} decode_state;

/* spm_decode reads ids with atoi: leading blanks, a sign, digits, and 0 for
 * anything else. */
static int atoi_like(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && (s[i] == '\t' || s[i] == '\v' || s[i] == '\f' || s[i] == '\r'))
        i++;
    int neg = 0;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    long long v = 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
        if (v < 1LL << 40)
            v = v * 10 + (s[i] - '0');
    if (neg)
        v = -v;
    return v > 2147483647LL ? 2147483647 : v < -2147483647LL ? -2147483647 : (int)v;
}

static int decode_line(const qkv_vocab *v, const vocab_args *a, const char *line, size_t len, outbuf *o,
                       void *state)
{
    decode_state *ds = state;
    size_t n = 0;
    ds->line_no++;
    for (size_t i = 0; i < len;) {
        if (line[i] == ' ') {
            i++;
            continue;
        }
        const char *sp = memchr(line + i, ' ', len - i);
        size_t end = sp ? (size_t)(sp - line) : len;
        if (n == ds->cap) {
            size_t nc = ds->cap ? 2 * ds->cap : 256;
            int *ids = realloc(ds->ids, nc * sizeof *ids);
            if (ids)
                ds->ids = ids;
            const char **ps = realloc(ds->pieces, nc * sizeof *ps);
            if (ps)
                ds->pieces = ps;
            size_t *ls = realloc(ds->lens, nc * sizeof *ls);
            if (ls)
                ds->lens = ls;
            if (!ids || !ps || !ls)
                return cli_error("out of memory");
            ds->cap = nc;
        }
        if (a->format[0] == 'i') {
            ds->ids[n] = atoi_like(line + i, end - i);
            ds->pieces[n] = NULL;
        } else {
            ds->ids[n] = spm_piece_id(v, line + i, end - i);
            ds->pieces[n] = line + i;
            ds->lens[n] = end - i;
        }
        n++;
        i = end;
    }
    ds->text.len = 0;
    if (spm_decode(v, &ds->text, ds->ids, ds->pieces, ds->lens, n) != QKV_OK)
        return cli_error("line %zu: %s", ds->line_no, qkv_last_error());
    out_put(o, ds->text.p ? ds->text.p : "", ds->text.len);
    return out_put(o, "\n", 1) ? 0 : cli_error("out of memory");
}

static const char encode_usage[] =
    "usage: qkv vocab encode --model M.model [--output-format piece|id]\n"
    "                        [--extra-options bos:eos:reverse] [FILE...]\n"
    "Encodes each input line (stdin by default) into pieces or ids separated by\n"
    "single spaces, one output line per input line, as spm_encode does.\n";

static const char decode_usage[] =
    "usage: qkv vocab decode --model M.model [--input-format piece|id] [FILE...]\n"
    "Decodes each input line of space-separated pieces or ids (stdin by default)\n"
    "into text, one output line per input line, as spm_decode does.\n";

static int run(int argc, char **argv, int encode)
{
    vocab_args a;
    int p = parse(argc, argv, &a, encode ? "--output-format" : "--input-format", encode ? encode_usage : decode_usage);
    if (p <= 0) {
        free(a.files);
        return p < 0 ? 1 : 0;
    }
    qkv_vocab *v;
    if (qkv_vocab_load(a.model, &v) != QKV_OK) {
        free(a.files);
        return cli_error("%s", qkv_last_error());
    }
    outbuf o = {malloc(1 << 20), 0, 1 << 20};
    int rc;
    if (encode) {
        encode_state es = {.bos_id = qkv_vocab_bos_id(v), .eos_id = qkv_vocab_eos_id(v)};
        rc = for_lines(v, &a, encode_line, &es, &o);
        spm_state_free(&es.st);
        free(es.items);
        if (es.invalid_bytes)
            fprintf(stderr, "qkv: warning: %zu invalid UTF-8 byte%s in %zu line%s read as U+FFFD\n",
                    es.invalid_bytes, es.invalid_bytes == 1 ? "" : "s", es.invalid_lines,
                    es.invalid_lines == 1 ? "" : "s");
    } else {
        decode_state ds = {0};
        rc = for_lines(v, &a, decode_line, &ds, &o);
        free(ds.ids);
        free(ds.pieces);
        free(ds.lens);
        spm_str_free(&ds.text);
    }
    out_flush(&o);
    if (fflush(stdout))
        rc = rc ? rc : cli_error("write error on stdout");
    free(o.p);
    free(a.files);
    qkv_vocab_free(v);
    return rc;
}

int cmd_vocab_encode(int argc, char **argv) { return run(argc, argv, 1); }
int cmd_vocab_decode(int argc, char **argv) { return run(argc, argv, 0); }
