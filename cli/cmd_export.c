/* qkv export --format hf MODEL DIR: writes a model as a Hugging Face Marian
 * directory that transformers' MarianMTModel and MarianTokenizer load.
 * MODEL is a qkv checkpoint (src/train/checkpoint.h; a quantized one is
 * written dequantized, in float32) or a Marian directory (re-exported). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/status.h"
#include "commands.h"
#include "formats/marian.h"
#include "qkv.h"
#include "text/tokenizer.h"
#include "train/model_io.h"

static const char usage[] = "usage: qkv export --format hf MODEL DIR\n"
                            "  MODEL  a qkv checkpoint file or a Hugging Face Marian directory\n"
                            "  DIR    the Marian directory to write (created if absent)\n";

/* A qkv checkpoint: config, vocabularies (model ids = spm ids), parameters
 * (a quantized checkpoint's dequantized: the export is float32). */
static qkv_status load_checkpoint(const char *path, qkv_model **m, qkv_tokenizer **t)
{
    *t = NULL;
    qkv_vocab_blobs vb;
    void *h = NULL;
    QKV_TRY(qkv_checkpoint_load_model(path, m, &vb, &h));
    qkv_status s;
    if (!vb.src) {
        s = qkv_fail(QKV_ERR_FORMAT, "%s: missing section 'src_vocab'", path);
    } else {
        s = qkv_tokenizer_load_spm_memory(vb.src, vb.src_len, vb.tgt, vb.tgt_len, t);
    }
    qkv_checkpoint_release(h);
    if (s != QKV_OK) {
        qkv_model_free(*m);
        *m = NULL;
    }
    return s;
}

int cmd_export(int argc, char **argv)
{
    const char *format = NULL, *model = NULL, *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(argv[i], "--format") && i + 1 < argc) {
            format = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_error("export: unknown option '%s'\n%s", argv[i], usage);
        } else if (!model) {
            model = argv[i];
        } else if (!dir) {
            dir = argv[i];
        } else {
            return cli_error("export: unexpected argument '%s'\n%s", argv[i], usage);
        }
    }
    if (!format || !model || !dir)
        return cli_error("export: needs --format, MODEL and DIR\n%s", usage);
    if (strcmp(format, "hf"))
        return cli_error("export: format '%s' is not known (expected hf)", format);
    struct stat st;
    qkv_model *m = NULL;
    qkv_tokenizer *t = NULL;
    marian_generation g;
    int have_gen = 0;
    qkv_status s;
    if (stat(model, &st) == 0 && S_ISDIR(st.st_mode)) {
        s = marian_load(model, &m, &t, &g);
        have_gen = s == QKV_OK;
    } else {
        s = load_checkpoint(model, &m, &t);
    }
    if (s != QKV_OK)
        return cli_error("%s", qkv_last_error());
    s = marian_export(m, t, have_gen ? &g : NULL, dir);
    if (have_gen)
        marian_generation_free(&g);
    qkv_model_free(m);
    qkv_tokenizer_free(t);
    if (s != QKV_OK)
        return cli_error("%s", qkv_last_error());
    return 0;
}
