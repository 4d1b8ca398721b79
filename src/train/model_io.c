/* Model files: a qkv checkpoint reduced to what translation needs
 * (config, vocabularies, params), loading any checkpoint's model, and
 * averaging several. The container format is train/checkpoint.h. */
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "model/model.h"
#include "train/checkpoint.h"
#include "train/model_io.h"

int ckpt_add_vocab_sections(ckpt_section *sec, int n, const qkv_vocab_blobs *vocab)
{
    if (vocab && vocab->src) {
        sec[n++] = (ckpt_section){"src_vocab", (void *)vocab->src, vocab->src_len};
        if (vocab->tgt)
            sec[n++] = (ckpt_section){"tgt_vocab", (void *)vocab->tgt, vocab->tgt_len};
    }
    return n;
}

qkv_status qkv_checkpoint_save_model(const char *path, const qkv_model *m, const qkv_vocab_blobs *vocab)
{
    char *cfg;
    QKV_TRY(qkv_config_to_json(qkv_model_get_config(m), &cfg));
    ckpt_section sec[4];
    int n = 0;
    sec[n++] = (ckpt_section){"config", cfg, strlen(cfg)};
    n = ckpt_add_vocab_sections(sec, n, vocab);
    sec[n++] = (ckpt_section){"params", m->params, m->num_params * sizeof(float)};
    qkv_status s = ckpt_write(path, sec, n);
    free(cfg);
    return s;
}

qkv_status qkv_checkpoint_load_model(const char *path, qkv_model **model, qkv_vocab_blobs *vocab,
                                     void **file_handle)
{
    *model = NULL;
    *file_handle = NULL;
    memset(vocab, 0, sizeof *vocab);
    ckpt_file *f = calloc(1, sizeof *f);
    if (!f)
        return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    qkv_status s = ckpt_read(path, f);
    if (s != QKV_OK) {
        free(f);
        return s;
    }
    const ckpt_section *cs = ckpt_find(f, "config"), *ps = ckpt_find(f, "params"), *qs = ckpt_find(f, "quant");
    if (!cs || (!ps && !qs)) {
        s = qkv_fail(QKV_ERR_FORMAT, "%s: checkpoint lacks the '%s' section", path, cs ? "params" : "config");
        goto fail;
    }
    char *json = malloc(cs->nbytes + 1);
    if (!json) {
        s = qkv_fail(QKV_ERR_NOMEM, "out of memory");
        goto fail;
    }
    memcpy(json, cs->data, cs->nbytes);
    json[cs->nbytes] = '\0';
    qkv_model_config cfg;
    s = qkv_config_from_json(json, &cfg);
    free(json);
    if (s != QKV_OK) {
        qkv_fail_context(s, "%s: section 'config'", path);
        goto fail;
    }
    if ((s = qkv_model_new(&cfg, 0, model)) != QKV_OK)
        goto fail;
    size_t want = qkv_model_num_params(*model) * sizeof(float);
    if (qs) {
        if ((s = model_io_fill_quantized(path, f, *model)) != QKV_OK)
            goto fail;
    } else if (ps->nbytes != want) {
        s = qkv_fail(QKV_ERR_FORMAT, "%s: section 'params' has %zu bytes, the config needs %zu", path, ps->nbytes,
                     want);
        goto fail;
    } else {
        ckpt_section_copy(f, qkv_model_params(*model), ps);
    }
    const ckpt_section *sv = ckpt_find(f, "src_vocab"), *tv = ckpt_find(f, "tgt_vocab");
    if (sv) {
        vocab->src = sv->data;
        vocab->src_len = sv->nbytes;
    }
    if (tv) {
        vocab->tgt = tv->data;
        vocab->tgt_len = tv->nbytes;
    }
    *file_handle = f;
    return QKV_OK;
fail:
    qkv_model_free(*model);
    *model = NULL;
    ckpt_free(f);
    free(f);
    return s;
}

void qkv_checkpoint_release(void *file_handle)
{
    if (file_handle) {
        ckpt_free(file_handle);
        free(file_handle);
    }
}

qkv_status qkv_checkpoint_average(const char *const *paths, int n, const char *out_path)
{
    if (n < 1)
        return qkv_fail(QKV_ERR_ARG, "average: no checkpoints given");
    qkv_model *acc = NULL;
    qkv_vocab_blobs vocab;
    void *first = NULL;
    QKV_TRY(qkv_checkpoint_load_model(paths[0], &acc, &vocab, &first));
    size_t np = qkv_model_num_params(acc);
    double *sum = calloc(np, sizeof *sum);
    qkv_status s = sum ? QKV_OK : qkv_fail(QKV_ERR_NOMEM, "out of memory");
    float *p = qkv_model_params(acc);
    for (size_t i = 0; sum && i < np; i++)
        sum[i] = p[i];
    for (int k = 1; k < n && s == QKV_OK; k++) {
        qkv_model *m = NULL;
        qkv_vocab_blobs vb;
        void *h = NULL;
        if ((s = qkv_checkpoint_load_model(paths[k], &m, &vb, &h)) != QKV_OK)
            break;
        if (qkv_model_num_params(m) != np) {
            s = qkv_fail(QKV_ERR_ARG, "average: %s has %zu parameters, %s has %zu", paths[k],
                         qkv_model_num_params(m), paths[0], np);
        } else {
            const float *q = qkv_model_params(m);
            for (size_t i = 0; i < np; i++)
                sum[i] += q[i];
        }
        qkv_model_free(m);
        qkv_checkpoint_release(h);
    }
    if (s == QKV_OK) {
        for (size_t i = 0; i < np; i++)
            p[i] = (float)(sum[i] / n);
        s = qkv_checkpoint_save_model(out_path, acc, &vocab);
    }
    free(sum);
    qkv_model_free(acc);
    qkv_checkpoint_release(first);
    return s;
}
