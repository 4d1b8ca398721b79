/* qkv embed -m MODEL: one vector per input line, in input order. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/io.h"
#include "commands.h"
#include "embed_args.h"
#include "qkv.h"

static const char usage[] =
    "usage: qkv embed -m MODEL [OPTIONS] < sentences > vectors\n"
    "  MODEL is a Hugging Face BERT-family directory (config.json, model.safetensors, vocab.txt and, as\n"
    "  sentence-transformers saves one, modules.json, 1_Pooling/, sentence_bert_config.json), a Hugging\n"
    "  Face Marian directory or a qkv checkpoint (the translation encoder, masked mean over its output).\n"
    "  One vector per input line, in order. An empty (or all-whitespace) line gives a zero vector and is\n"
    "  counted on stderr; malformed UTF-8 bytes are dropped and counted; lines longer than the model's\n"
    "  maximum are cut (counted).\n"
    "\n"
    "  --input F, -i F        read F instead of stdin\n"
    "  --output F, -o F       write F (atomically) instead of stdout\n"
    "  --format tsv|jsonl|npy tsv (default): numbers separated by tabs; jsonl: one JSON array per line;\n"
    "                         npy: one float32 [lines, dim] NumPy array (needs --output or a pipe)\n"
    "  --pooling mean|cls|max default: the model's (1_Pooling/config.json; mean otherwise)\n"
    "  --normalize            unit-length vectors (default: as the model, a listed Normalize module)\n"
    "  --no-normalize         raw pooled vectors\n"
    "  --max-length N         tokens per line, [CLS] and [SEP] included (default: max_seq_length)\n"
    "  --batch-size N         sentences run together (default 32)\n"
    "  --threads N            kernel threads (default: $QKV_THREADS or all cores)\n"
    "  --timing               one JSON line on stderr at the end: {\"load_s\", \"embed_s\", \"sentences\"}\n"
    "                         (load_s: the model and the input; embed_s: tokenizing and the encoder, no output)\n";

void cli_lines_free(cli_lines *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->lines[i]);
    free(l->lines);
    l->lines = NULL;
    l->n = 0;
}

int cli_read_lines(FILE *fp, const char *name, cli_lines *out)
{
    out->lines = NULL;
    out->n = 0;
    int cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, fp)) >= 0) {
        if (len && line[len - 1] == '\n')
            line[--len] = '\0';
        if (len && line[len - 1] == '\r')
            line[--len] = '\0';
        if (out->n == cap) {
            cap = cap ? 2 * cap : 1024;
            char **p = realloc(out->lines, (size_t)cap * sizeof *p);
            if (!p) {
                free(line);
                cli_lines_free(out);
                return cli_error("%s: out of memory", name), 0;
            }
            out->lines = p;
        }
        out->lines[out->n] = strdup(line);
        if (!out->lines[out->n]) {
            free(line);
            cli_lines_free(out);
            return cli_error("%s: out of memory", name), 0;
        }
        out->n++;
    }
    free(line);
    if (ferror(fp)) {
        cli_lines_free(out);
        return cli_error("%s: read error", name), 0;
    }
    return 1;
}

int cli_read_lines_path(const char *path, cli_lines *out)
{
    if (!strcmp(path, "-"))
        return cli_read_lines(stdin, "stdin", out);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return cli_error("%s: cannot open: %s", path, strerror(errno)), 0;
    int ok = cli_read_lines(fp, path, out);
    fclose(fp);
    return ok;
}

static int parse_int(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < -2147483647L || v > 2147483647L)
        return 0;
    *out = (int)v;
    return 1;
}

int cli_embed_option(qkv_embed_options *o, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    if (!strcmp(a, "--normalize")) {
        o->normalize = 1;
        return 1;
    }
    if (!strcmp(a, "--no-normalize")) {
        o->normalize = 0;
        return 1;
    }
    int takes = !strcmp(a, "--pooling") || !strcmp(a, "--batch-size") || !strcmp(a, "--threads") ||
                !strcmp(a, "--max-length");
    if (!takes)
        return 0;
    if (*i + 1 >= argc)
        return cli_error("%s needs a value", a), -1;
    const char *v = argv[++*i];
    int ok = 1;
    if (!strcmp(a, "--pooling")) {
        if (!strcmp(v, "mean"))
            o->pooling = QKV_POOL_MEAN;
        else if (!strcmp(v, "cls"))
            o->pooling = QKV_POOL_CLS;
        else if (!strcmp(v, "max"))
            o->pooling = QKV_POOL_MAX;
        else
            ok = 0;
    } else if (!strcmp(a, "--batch-size")) {
        ok = parse_int(v, &o->batch_size) && o->batch_size >= 1;
    } else if (!strcmp(a, "--threads")) {
        ok = parse_int(v, &o->threads) && o->threads >= 1;
    } else {
        ok = parse_int(v, &o->max_length) && o->max_length >= 2;
    }
    if (!ok)
        return cli_error("%s: invalid value '%s'%s", a, v,
                         !strcmp(a, "--pooling") ? " (mean, cls or max)" : " (expected a positive integer)"),
               -1;
    return 1;
}

float *cli_embed_lines(const qkv_embedder *e, const cli_lines *l, const qkv_embed_options *o, const char *command)
{
    int dim = qkv_embedder_dim(e);
    float *v = malloc(((size_t)l->n * dim + 1) * sizeof *v);
    if (!v)
        return cli_error("out of memory for %d vectors", l->n), NULL;
    qkv_embed_stats st;
    if (qkv_embed(e, (const char *const *)l->lines, l->n, o, v, &st) != QKV_OK) {
        free(v);
        return cli_error("%s", qkv_last_error()), NULL;
    }
    if (st.empty)
        fprintf(stderr, "qkv %s: %d empty line%s gave zero vectors\n", command, st.empty, st.empty == 1 ? "" : "s");
    if (st.truncated)
        fprintf(stderr, "qkv %s: %d line%s cut to the model's maximum length\n", command, st.truncated,
                st.truncated == 1 ? "" : "s");
    if (st.invalid_bytes)
        fprintf(stderr, "qkv %s: %ld malformed UTF-8 byte%s dropped\n", command, st.invalid_bytes,
                st.invalid_bytes == 1 ? "" : "s");
    return v;
}

static int write_npy(FILE *fp, const float *v, int n, int dim)
{
    char header[128];
    int hl = snprintf(header, sizeof header, "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", n, dim);
    int total = 10 + hl + 1;
    int pad = (64 - total % 64) % 64;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
    int hlen = hl + pad + 1;
    pre[8] = (unsigned char)(hlen & 0xff);
    pre[9] = (unsigned char)(hlen >> 8);
    fwrite(pre, 1, 10, fp);
    fwrite(header, 1, (size_t)hl, fp);
    for (int i = 0; i < pad; i++)
        fputc(' ', fp);
    fputc('\n', fp);
    /* little-endian float32, as x86 and ARM hold them */
    fwrite(v, sizeof *v, (size_t)n * dim, fp);
    return !ferror(fp);
}

static void write_text(FILE *fp, const float *v, int n, int dim, int jsonl)
{
    for (int i = 0; i < n; i++) {
        const float *r = v + (size_t)i * dim;
        if (jsonl)
            fputc('[', fp);
        for (int c = 0; c < dim; c++)
            fprintf(fp, c ? (jsonl ? ", %.9g" : "\t%.9g") : "%.9g", (double)r[c]);
        fputs(jsonl ? "]\n" : "\n", fp);
    }
}

int cmd_embed(int argc, char **argv)
{
    const char *model = NULL, *input = NULL, *output = NULL, *format = "tsv";
    qkv_embed_options o = qkv_embed_default_options();
    int timing = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        if (!strcmp(a, "--timing")) {
            timing = 1;
            continue;
        }
        int r = cli_embed_option(&o, argc, argv, &i);
        if (r < 0)
            return 1;
        if (r)
            continue;
        const char **dst = !strcmp(a, "-m") || !strcmp(a, "--model")    ? &model
                           : !strcmp(a, "-i") || !strcmp(a, "--input")  ? &input
                           : !strcmp(a, "-o") || !strcmp(a, "--output") ? &output
                           : !strcmp(a, "--format")                     ? &format
                                                                        : NULL;
        if (!dst)
            return cli_error("embed: unknown option '%s' (see qkv embed --help)", a);
        if (i + 1 >= argc)
            return cli_error("%s needs a value", a);
        *dst = argv[++i];
    }
    if (!model)
        return cli_error("embed: -m MODEL is required (see qkv embed --help)");
    int fmt = !strcmp(format, "tsv") ? 0 : !strcmp(format, "jsonl") ? 1 : !strcmp(format, "npy") ? 2 : -1;
    if (fmt < 0)
        return cli_error("--format: '%s' is not tsv, jsonl or npy", format);
    qkv_embedder *e;
    struct timespec t0, t1, t2;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (qkv_embedder_load(model, &e) != QKV_OK)
        return cli_error("%s", qkv_last_error());
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cli_lines l;
    if (!cli_read_lines_path(input ? input : "-", &l))
        return qkv_embedder_free(e), 1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    float *v = cli_embed_lines(e, &l, &o, "embed");
    clock_gettime(CLOCK_MONOTONIC, &t2);
    if (timing)
        fprintf(stderr, "{\"load_s\": %.4f, \"embed_s\": %.4f, \"sentences\": %d}\n",
                (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec),
                (double)(t2.tv_sec - t1.tv_sec) + 1e-9 * (double)(t2.tv_nsec - t1.tv_nsec), l.n);
    int dim = qkv_embedder_dim(e), rc = 0;
    if (v) {
        qkv_afile af;
        FILE *fp = stdout;
        if (output && qkv_afile_open(&af, output) != QKV_OK)
            rc = cli_error("%s", qkv_last_error());
        else if (output)
            fp = af.fp;
        if (!rc) {
            if (fmt == 2)
                write_npy(fp, v, l.n, dim);
            else
                write_text(fp, v, l.n, dim, fmt == 1);
            if (output && qkv_afile_commit(&af) != QKV_OK)
                rc = cli_error("%s", qkv_last_error());
            else if (!output && (fflush(stdout) || ferror(stdout)))
                rc = cli_error("stdout: write error");
        }
    } else {
        rc = 1;
    }
    free(v);
    cli_lines_free(&l);
    qkv_embedder_free(e);
    return rc;
}
