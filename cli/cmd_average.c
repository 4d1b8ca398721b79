/* qkv average -o OUT.qkv CKPT...: the mean of several checkpoints'
 * parameters (e.g. the last step-<N>.qkv files of a run). */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "qkv.h"
#include "train/model_io.h"


int cmd_average(int argc, char **argv)
{
    const char *out = NULL;
    const char *paths[256];
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            puts("usage: qkv average -o OUT.qkv CHECKPOINT.qkv...");
            return 0;
        }
        if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) {
            if (++i >= argc)
                return cli_error("%s needs a file name", argv[i - 1]);
            out = argv[i];
        } else if (n < 256) {
            paths[n++] = argv[i];
        } else {
            return cli_error("average: at most 256 checkpoints");
        }
    }
    if (!out || n < 1)
        return cli_error("usage: qkv average -o OUT.qkv CHECKPOINT.qkv...");
    if (qkv_checkpoint_average(paths, n, out) != QKV_OK)
        return cli_error("%s", qkv_last_error());
    fprintf(stderr, "qkv average: %d checkpoints -> %s\n", n, out);
    return 0;
}
