/* qkv export --format hf MODEL DIR: writes a model as a Hugging Face Marian
 * directory that transformers' MarianMTModel and MarianTokenizer load.
 * MODEL is a qkv checkpoint (sections "config", "src_vocab", "tgt_vocab",
 * "params": src/train/checkpoint.h) or a Marian directory (re-exported). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"
#include "formats/marian.h"
#include "qkv.h"
#include "text/tokenizer.h"
#include "train/checkpoint.h"

static const char usage[] = "usage: qkv export --format hf MODEL DIR\n"
                            "  MODEL  a qkv checkpoint file or a Hugging Face Marian directory\n"
                            "  DIR    the Marian directory to write (created if absent)\n";

/* A qkv checkpoint: config, vocabularies (model ids = spm ids), parameters. */
static qkv_status load_checkpoint(const char *path, qkv_model **m, qkv_tokenizer **t)
{
    ckpt_file f;
    *m = NULL;
    *t = NULL;
    qkv_status rs = ckpt_read(path, &f);
    if (rs != QKV_OK)
        return rs;
    const ckpt_section *cfg = ckpt_find(&f, "config"), *sv = ckpt_find(&f, "src_vocab");
    const ckpt_section *tv = ckpt_find(&f, "tgt_vocab"), *pr = ckpt_find(&f, "params");
    qkv_status s = QKV_OK;
    char *json = NULL;
    qkv_model_config c;
    if (!cfg || !sv || !pr) {
        s = QKV_ERR_FORMAT;
        cli_error("%s: missing section '%s'", path, !cfg ? "config" : !sv ? "src_vocab" : "params");
        goto done;
    }
    json = malloc(cfg->nbytes + 1);
    if (!json) {
        s = QKV_ERR_NOMEM;
        goto done;
    }
    memcpy(json, cfg->data, cfg->nbytes);
    json[cfg->nbytes] = 0;
    if ((s = qkv_config_from_json(json, &c)) != QKV_OK || (s = qkv_model_new(&c, 0, m)) != QKV_OK)
        goto done;
    if (pr->nbytes != qkv_model_num_params(*m) * sizeof(float)) {
        s = QKV_ERR_FORMAT;
        cli_error("%s: section 'params' has %zu bytes, the config needs %zu", path, pr->nbytes,
                  qkv_model_num_params(*m) * sizeof(float));
        goto done;
    }
    memcpy(qkv_model_params(*m), pr->data, pr->nbytes);
    s = qkv_tokenizer_load_spm_memory(sv->data, sv->nbytes, tv ? tv->data : NULL, tv ? tv->nbytes : 0, t);
done:
    free(json);
    ckpt_free(&f);
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
