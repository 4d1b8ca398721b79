#include "train/recipe.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/status.h"

static const qkv_train_preset presets[] = {
    {"tiny", 64, 2, 256, 2, 1, 1000, 3e-3, 100, 1000, 0.1f},
    {"small", 256, 4, 1024, 3, 1, 8000, 1e-3, 400, 3000, 0.1f},
    {"base", 512, 8, 2048, 6, 0, 8000, 0 /* the paper's */, 4000, 4096, 0.1f},
    /* make demo: the small model with a recipe for minutes of CPU time
     * (smaller vocabularies, higher peak rate, short warmup; see README) */
    {"demo", 256, 4, 1024, 3, 1, 4000, 2e-3, 150, 1500, 0.0f},
};

const qkv_train_preset *qkv_train_find_preset(const char *name)
{
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (!strcmp(presets[i].name, name))
            return &presets[i];
    return NULL;
}

qkv_model_config qkv_train_preset_config(const qkv_train_preset *pr)
{
    qkv_model_config cfg = qkv_model_default_config();
    cfg.d_model = pr->d_model;
    cfg.encoder_heads = cfg.decoder_heads = pr->heads;
    cfg.encoder_d_ff = cfg.decoder_d_ff = pr->d_ff;
    cfg.encoder_layers = cfg.decoder_layers = pr->layers;
    cfg.norm = pr->pre_norm ? QKV_NORM_PRE : QKV_NORM_POST;
    cfg.final_norm = pr->pre_norm;
    cfg.activation = QKV_ACT_RELU;
    cfg.positions = QKV_POS_SINUSOIDAL;
    cfg.scale_embedding = 1;
    cfg.tie_output_embeddings = 1;
    cfg.dropout = pr->dropout;
    return cfg;
}

qkv_status qkv_train_vocab_policy(const qkv_vocab *sv, const qkv_vocab *tv, const char *src_path,
                                  const char *tgt_path, qkv_train_vocab_ids *out)
{
    memset(out, 0, sizeof *out);
    int eos = qkv_vocab_eos_id(tv), src_eos = qkv_vocab_eos_id(sv);
    if (eos < 0 || src_eos < 0)
        return qkv_fail(QKV_ERR_FORMAT, "%s: the vocabulary has no </s> piece; train it with an eos id",
                        eos < 0 ? tgt_path : src_path);
    int src_size = qkv_vocab_size(sv), tgt_size = qkv_vocab_size(tv);
    int pad = qkv_vocab_pad_id(tv);
    if (pad < 0) {
        pad = src_size > tgt_size ? src_size : tgt_size;
        tgt_size = pad + 1;
    }
    if (src_size <= pad)
        src_size = pad + 1;
    int bos = qkv_vocab_bos_id(tv);
    out->src_vocab_size = src_size;
    out->tgt_vocab_size = tgt_size;
    out->pad_id = pad;
    out->eos_id = eos;
    out->bos_id = bos >= 0 ? bos : pad;
    out->src_eos_id = src_eos;
    out->shared = sv == tv;
    return QKV_OK;
}

void qkv_train_apply_vocab_ids(qkv_model_config *cfg, const qkv_train_vocab_ids *ids)
{
    cfg->src_vocab_size = ids->src_vocab_size;
    cfg->tgt_vocab_size = ids->tgt_vocab_size;
    cfg->shared_vocab = ids->shared;
    cfg->pad_id = ids->pad_id;
    cfg->eos_id = ids->eos_id;
    cfg->bos_id = ids->bos_id;
    cfg->decoder_start_id = ids->pad_id;
}

qkv_status qkv_make_dirs(const char *dir)
{
    char p[4096];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p)
        return qkv_fail(QKV_ERR_IO, "%s: cannot create the directory: %s", dir, strerror(ENAMETOOLONG));
    for (char *c = p + 1; *c; c++)
        if (*c == '/') {
            *c = '\0';
            if (mkdir(p, 0777) != 0 && errno != EEXIST)
                return qkv_fail(QKV_ERR_IO, "%s: cannot create the directory %s: %s", dir, p, strerror(errno));
            *c = '/';
        }
    if (mkdir(p, 0777) != 0 && errno != EEXIST)
        return qkv_fail(QKV_ERR_IO, "%s: cannot create the directory: %s", dir, strerror(errno));
    struct stat st;
    if (stat(p, &st) != 0)
        return qkv_fail(QKV_ERR_IO, "%s: cannot create the directory: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return qkv_fail(QKV_ERR_IO, "%s: cannot create the directory: %s", dir, strerror(ENOTDIR));
    return QKV_OK;
}
