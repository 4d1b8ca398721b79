/* qkv plot LOG -o curves.svg: training and dev curves from a JSONL log. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "qkv.h"

static const char usage[] =
    "usage: qkv plot LOG.jsonl -o CURVES.svg [--title TEXT]\n"
    "  draws every numeric key of the log (loss, lr, tgt_tokens_per_s, dev_bleu, ...) against step,\n"
    "  one panel per key\n";

int cmd_plot(int argc, char **argv);
int cmd_plot(int argc, char **argv)
{
    const char *log = NULL, *out = NULL, *title = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return 0;
        } else if ((!strcmp(argv[i], "-o") || !strcmp(argv[i], "--out")) && i + 1 < argc) {
            out = argv[++i];
        } else if (!strcmp(argv[i], "--title") && i + 1 < argc) {
            title = argv[++i];
        } else if (argv[i][0] != '-' && !log) {
            log = argv[i];
        } else {
            fprintf(stderr, "%s", usage);
            return cli_error("unexpected argument '%s'", argv[i]);
        }
    }
    if (!log || !out) {
        fprintf(stderr, "%s", usage);
        return cli_error("%s", !log ? "a LOG file is needed" : "-o CURVES.svg is needed");
    }
    int skipped = 0;
    if (qkv_viz_plot_log(log, out, title ? title : log, &skipped) != QKV_OK)
        return cli_error("%s", qkv_last_error());
    if (skipped)
        fprintf(stderr, "qkv plot: %d line%s without a numeric \"step\" skipped\n", skipped, skipped == 1 ? "" : "s");
    fprintf(stderr, "qkv plot: wrote %s\n", out);
    return 0;
}
