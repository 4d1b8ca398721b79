/* qkv quantize MODEL.qkv --compute-type int8|bfloat16 -o OUT.qkv: the
 * checkpoint with the decoder's product weights stored in that type
 * (train/model_quant.c), smaller and loaded without re-quantizing. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"
#include "qkv.h"
#include "train/model_io.h"

static const char usage[] =
    "usage: qkv quantize MODEL.qkv --compute-type int8|bfloat16 -o OUT.qkv\n"
    "  Writes MODEL with its linear layers (the encoder's and the decoder's attention projections\n"
    "  and feed-forward layers, the output projection) stored in the compute type: int8 per output row\n"
    "  (symmetric, scale max|w|/127; int8_float32 and int8_bfloat16 are accepted and store int8)\n"
    "  or bfloat16. Everything else stays float32. OUT translates as MODEL does with\n"
    "  --compute-type TYPE, and that type is its default; qkv info shows it.\n"
    "  qkv export --format hf OUT writes the dequantized weights as float32.\n";

int cmd_quantize(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *type = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        if (!strcmp(a, "-o") || !strcmp(a, "--output") || !strcmp(a, "--compute-type")) {
            if (++i >= argc)
                return cli_error("%s needs a value", a);
            if (!strcmp(a, "--compute-type"))
                type = argv[i];
            else
                out = argv[i];
        } else if (a[0] == '-' && a[1]) {
            return cli_error("%s: unknown option (see qkv quantize --help)", a);
        } else if (!in) {
            in = a;
        } else {
            return cli_error("quantize: one model at a time (got %s and %s)", in, a);
        }
    }
    if (!in || !out || !type) {
        fputs(usage, stderr);
        return 2;
    }
    struct stat sb;
    if (stat(in, &sb) == 0 && S_ISDIR(sb.st_mode))
        return cli_error("%s: a directory (Hugging Face Marian?): qkv quantize reads qkv checkpoints; a Marian "
                         "directory is quantized when it loads (qkv translate -m DIR --compute-type %s)",
                         in, type);
    if (qkv_checkpoint_quantize(in, out, type) != QKV_OK)
        return cli_error("%s", qkv_last_error());
    struct stat a, b;
    if (stat(in, &a) == 0 && stat(out, &b) == 0)
        fprintf(stderr, "qkv quantize: %s (%.1f MiB) -> %s (%.1f MiB, %s)\n", in, a.st_size / 1048576.0, out,
                b.st_size / 1048576.0, type);
    return 0;
}
