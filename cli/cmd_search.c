/* qkv similarity (cosine of line pairs) and qkv search (nearest corpus
 * lines of each query); the products and the top-k are the library's. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "embed_args.h"
#include "qkv.h"

static const char sim_usage[] =
    "usage: qkv similarity -m MODEL [OPTIONS] FILE_A FILE_B\n"
    "  The cosine similarity of line i of FILE_A and line i of FILE_B, one per line (6 decimals). The\n"
    "  files must have as many lines. An empty line has a zero vector: its cosine is 0.\n"
    "  Embedding options as qkv embed: --pooling, --normalize, --no-normalize, --max-length,\n"
    "  --batch-size, --threads.\n";

static const char search_usage[] =
    "usage: qkv search -m MODEL --corpus FILE [OPTIONS] < queries\n"
    "       qkv search --index F [OPTIONS] < queries\n"
    "  For each query line, the K nearest corpus lines by cosine of their embeddings, best first, one\n"
    "  line each: QUERY<TAB>RANK<TAB>COSINE<TAB>CORPUS_LINE<TAB>TEXT (QUERY and CORPUS_LINE count from\n"
    "  0, RANK from 1). The corpus is embedded once, in batches; neighbours come from matrix products\n"
    "  and a top-k.\n"
    "\n"
    "  --corpus FILE       the lines to search\n"
    "  --top-k K           neighbours per query (default 10; at most the corpus size)\n"
    "  --save-index F      also write the corpus embeddings, lines and model path to F\n"
    "  --index F           search a saved index instead of --corpus (-m defaults to its model)\n"
    "  --input F, -i F     queries from F instead of stdin\n"
    "  Embedding options as qkv embed: --pooling, --normalize, --no-normalize, --max-length,\n"
    "  --batch-size, --threads.\n";

int cmd_similarity(int argc, char **argv)
{
    const char *model = NULL, *files[2] = {NULL, NULL};
    int nf = 0;
    qkv_embed_options o = qkv_embed_default_options();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(sim_usage, stdout);
            return 0;
        }
        int r = cli_embed_option(&o, argc, argv, &i);
        if (r < 0)
            return 1;
        if (r)
            continue;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (i + 1 >= argc)
                return cli_error("%s needs a value", a);
            model = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            return cli_error("similarity: unknown option '%s' (see qkv similarity --help)", a);
        } else if (nf < 2) {
            files[nf++] = a;
        } else {
            return cli_error("similarity: expected two files, got a third: '%s'", a);
        }
    }
    if (!model || nf != 2)
        return cli_error("similarity: needs -m MODEL FILE_A FILE_B (see qkv similarity --help)");
    cli_lines la, lb;
    if (!cli_read_lines_path(files[0], &la))
        return 1;
    if (!cli_read_lines_path(files[1], &lb))
        return cli_lines_free(&la), 1;
    if (la.n != lb.n) {
        cli_error("similarity: %s has %d lines, %s has %d", files[0], la.n, files[1], lb.n);
        cli_lines_free(&la), cli_lines_free(&lb);
        return 1;
    }
    qkv_embedder *e;
    if (qkv_embedder_load(model, &e) != QKV_OK) {
        cli_error("%s", qkv_last_error());
        cli_lines_free(&la), cli_lines_free(&lb);
        return 1;
    }
    int rc = 1;
    float *va = cli_embed_lines(e, &la, &o, "similarity"), *vb = va ? cli_embed_lines(e, &lb, &o, "similarity") : NULL;
    float *cos = malloc(((size_t)la.n + 1) * sizeof *cos);
    if (va && vb && cos) {
        if (qkv_embed_cosine_pairs(va, vb, la.n, qkv_embedder_dim(e), cos) != QKV_OK) {
            cli_error("%s", qkv_last_error());
        } else {
            for (int i = 0; i < la.n; i++)
                printf("%.6f\n", (double)cos[i]);
            rc = fflush(stdout) || ferror(stdout) ? cli_error("stdout: write error") : 0;
        }
    }
    free(va), free(vb), free(cos);
    cli_lines_free(&la), cli_lines_free(&lb);
    qkv_embedder_free(e);
    return rc;
}

int cmd_search(int argc, char **argv)
{
    const char *model = NULL, *corpus = NULL, *save = NULL, *index = NULL, *input = NULL;
    int k = 10;
    qkv_embed_options o = qkv_embed_default_options();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(search_usage, stdout);
            return 0;
        }
        int r = cli_embed_option(&o, argc, argv, &i);
        if (r < 0)
            return 1;
        if (r)
            continue;
        if (!strcmp(a, "--top-k")) {
            char *end;
            if (i + 1 >= argc)
                return cli_error("%s needs a value", a);
            errno = 0;
            long v = strtol(argv[++i], &end, 10);
            if (errno || *end || end == argv[i] || v < 1 || v > 1000000)
                return cli_error("--top-k: invalid value '%s' (expected a positive integer)", argv[i]);
            k = (int)v;
            continue;
        }
        const char **dst = !strcmp(a, "-m") || !strcmp(a, "--model")   ? &model
                           : !strcmp(a, "--corpus")                    ? &corpus
                           : !strcmp(a, "--save-index")                ? &save
                           : !strcmp(a, "--index")                     ? &index
                           : !strcmp(a, "-i") || !strcmp(a, "--input") ? &input
                                                                       : NULL;
        if (!dst)
            return cli_error("search: unknown option '%s' (see qkv search --help)", a);
        if (i + 1 >= argc)
            return cli_error("%s needs a value", a);
        *dst = argv[++i];
    }
    if (!!corpus == !!index)
        return cli_error("search: give exactly one of --corpus FILE and --index F (see qkv search --help)");
    if (corpus && !model)
        return cli_error("search: --corpus needs -m MODEL");
    if (index && save)
        return cli_error("search: --save-index goes with --corpus, not --index");
    qkv_embed_index ix = {0};
    cli_lines cl = {0};
    int rc = 1;
    qkv_embedder *e = NULL;
    float *cv = NULL, *qv = NULL, *score = NULL;
    int *idx = NULL;
    cli_lines ql = {0};
    if (index) {
        if (qkv_embed_index_load(index, &ix) != QKV_OK) {
            cli_error("%s", qkv_last_error());
            goto done;
        }
        if (!model)
            model = ix.model;
    }
    if (qkv_embedder_load(model, &e) != QKV_OK) {
        cli_error("%s", qkv_last_error());
        goto done;
    }
    int dim = qkv_embedder_dim(e);
    if (index && ix.dim != dim) {
        cli_error("%s: vectors of dim %d, but %s gives %d", index, ix.dim, model, dim);
        goto done;
    }
    if (corpus) {
        if (!cli_read_lines_path(corpus, &cl))
            goto done;
        if (!(cv = cli_embed_lines(e, &cl, &o, "search")))
            goto done;
        ix = (qkv_embed_index){.n = cl.n, .dim = dim, .vectors = cv, .lines = cl.lines, .model = (char *)model,
                               .normalized = 0};
        if (save && qkv_embed_index_save(save, &ix) != QKV_OK) {
            cli_error("%s", qkv_last_error());
            goto done;
        }
    }
    if (ix.n == 0) {
        cli_error("search: the corpus is empty");
        goto done;
    }
    if (k > ix.n)
        k = ix.n;
    if (!cli_read_lines_path(input ? input : "-", &ql))
        goto done;
    if (!(qv = cli_embed_lines(e, &ql, &o, "search")))
        goto done;
    idx = malloc(((size_t)ql.n * k + 1) * sizeof *idx);
    score = malloc(((size_t)ql.n * k + 1) * sizeof *score);
    if (!idx || !score) {
        cli_error("out of memory");
        goto done;
    }
    if (qkv_embed_search(qv, ql.n, ix.vectors, ix.n, dim, k, idx, score) != QKV_OK) {
        cli_error("%s", qkv_last_error());
        goto done;
    }
    for (int q = 0; q < ql.n; q++)
        for (int r = 0; r < k; r++) {
            int j = idx[(size_t)q * k + r];
            printf("%d\t%d\t%.6f\t%d\t%s\n", q, r + 1, (double)score[(size_t)q * k + r], j, ix.lines[j]);
        }
    rc = fflush(stdout) || ferror(stdout) ? cli_error("stdout: write error") : 0;
done:
    if (corpus) {
        free(cv);
        cli_lines_free(&cl);
    } else {
        qkv_embed_index_free(&ix);
    }
    free(qv), free(idx), free(score);
    cli_lines_free(&ql);
    qkv_embedder_free(e);
    return rc;
}
