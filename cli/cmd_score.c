/* qkv score -m MODEL --src F --tgt F: the log-probability the model gives
 * each reference translation (forced decoding), one number per line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "qkv.h"
#include "translate_args.h"


static const char usage[] =
    "usage: qkv score -m MODEL --src SOURCES --tgt TRANSLATIONS [--normalize] [--batch-size N] [--threads N]\n"
    "  prints, per line pair, log P(translation + EOS | source) under the model (natural log, no length\n"
    "  penalty, no search constraints); --normalize divides it by the number of target tokens (EOS\n"
    "  included). An empty source line scores 0. Both files must have the same number of lines.\n";

/* All lines of a file (without "\n" / "\r\n"); NULL on error (printed). */
static char **read_lines(const char *path, int *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        cli_error("%s: %s", path, strerror(errno));
        return NULL;
    }
    char **v = NULL, *buf = NULL;
    size_t cap = 0;
    int cnt = 0, vcap = 0;
    ssize_t len;
    while ((len = getline(&buf, &cap, f)) >= 0) {
        if (len > 0 && buf[len - 1] == '\n')
            buf[--len] = '\0';
        if (len > 0 && buf[len - 1] == '\r')
            buf[--len] = '\0';
        if (cnt == vcap) {
            vcap = vcap ? 2 * vcap : 256;
            char **nv = realloc(v, (size_t)vcap * sizeof *v);
            if (!nv)
                break;
            v = nv;
        }
        v[cnt++] = strdup(buf);
    }
    free(buf);
    fclose(f);
    *n = cnt;
    return v ? v : calloc(1, sizeof *v);
}

static void free_lines(char **v, int n)
{
    for (int i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

int cmd_score(int argc, char **argv);
int cmd_score(int argc, char **argv)
{
    int normalize = 0, rc = 1, *bad_ids = NULL, ns = 0, nt = 0;
    const char *model, *src_path = NULL, *tgt_path = NULL;
    int done = translate_model_arg(argc, argv, usage, &model);
    if (done >= 0)
        return done;
    qkv_translate_options o = qkv_translate_default_options();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = translate_parse_option(&o, argc, argv, &i, &bad_ids);
        if (r < 0)
            goto out;
        if (r > 0)
            continue;
        if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && i + 1 < argc)
            i++;
        else if (!strcmp(a, "--src") && i + 1 < argc)
            src_path = argv[++i];
        else if (!strcmp(a, "--tgt") && i + 1 < argc)
            tgt_path = argv[++i];
        else if (!strcmp(a, "--normalize"))
            normalize = 1;
        else {
            fputs(usage, stderr);
            cli_error("unexpected argument '%s'", a);
            goto out;
        }
    }
    if (!src_path || !tgt_path) {
        fputs(usage, stderr);
        cli_error("--src and --tgt are needed");
        goto out;
    }
    char **src = read_lines(src_path, &ns), **tgt = src ? read_lines(tgt_path, &nt) : NULL;
    qkv_translator *tr = NULL;
    double *lp = NULL;
    int *ntok = NULL;
    if (!src || !tgt)
        goto done;
    if (ns != nt) {
        cli_error("%s has %d lines, %s has %d", src_path, ns, tgt_path, nt);
        goto done;
    }
    if (translate_load(model, argc, argv, &tr))
        goto done;
    lp = calloc((size_t)(ns > 0 ? ns : 1), sizeof *lp);
    ntok = calloc((size_t)(ns > 0 ? ns : 1), sizeof *ntok);
    if (!lp || !ntok) {
        cli_error("out of memory");
        goto done;
    }
    if (qkv_translate_score(tr, (const char *const *)src, (const char *const *)tgt, ns, &o, lp, ntok, NULL) !=
        QKV_OK) {
        cli_error("%s", qkv_last_error());
        goto done;
    }
    for (int i = 0; i < ns; i++)
        printf("%.6f\n", normalize && ntok[i] > 0 ? lp[i] / ntok[i] : lp[i]);
    rc = fflush(stdout) != 0;
done:
    free(lp);
    free(ntok);
    translate_unload(tr);
    free_lines(src, ns);
    free_lines(tgt, nt);
out:
    free(bad_ids);
    return rc;
}
