/* qkv_translator_attention: every attention of one sentence pair, with its
 * queries, keys and values, from one forced-decoding pass of the model
 * (model_encode + model_decode_logits keep them all for backward, so
 * nothing is recomputed). Serves the attention explorer of `qkv serve`. */
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "decode/translator.h"
#include "model/model.h"

void qkv_attention_map_free(qkv_attention_map *m)
{
    if (!m)
        return;
    for (int i = 0; m->src_tokens && i < m->n_src; i++)
        free(m->src_tokens[i]);
    for (int i = 0; m->dec_tokens && i < m->n_tgt; i++)
        free(m->dec_tokens[i]);
    for (int i = 0; m->tgt_tokens && i < m->n_tgt; i++)
        free(m->tgt_tokens[i]);
    free(m->src_tokens);
    free(m->dec_tokens);
    free(m->tgt_tokens);
    free(m->text);
    float *bufs[] = {m->enc_self, m->dec_self, m->cross, m->enc_q, m->enc_k, m->enc_v, m->dec_q,
                     m->dec_k, m->dec_v, m->cross_q, m->cross_k, m->cross_v};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(bufs[i]);
    free(m);
}

/* dst [L][H][n][w] <- layer l of src [1, H, rows, w] (rows >= n), for l < L. */
static void copy_rows(float *dst, const float *src, int l, int H, int n, int rows, int w)
{
    for (int h = 0; h < H; h++)
        memcpy(dst + ((size_t)l * H + h) * n * w, src + (size_t)h * rows * w, (size_t)n * w * sizeof(float));
}

/* Target ids (EOS included when the translation ended): given text, or the
 * best translation. */
static qkv_status target_ids(const qkv_translator *t, const char *src, const char *tgt,
                             const qkv_translate_options *o, int **ids, int *n, char **text)
{
    const qkv_model_config *cfg = qkv_model_get_config(t->model);
    int *tid = NULL, nt = 0, ended = 1;
    if (tgt) {
        QKV_TRY(translator_encode_target(t, tgt, &tid, &nt));
        *text = strdup(tgt);
    } else {
        qkv_translation *r = NULL;
        qkv_translate_options def = qkv_translator_default_options(t), oo = o ? *o : def;
        oo.attention = 0;
        oo.n_best = 1;
        if (oo.sample)
            oo.num_samples = 1;
        QKV_TRY(qkv_translate(t, &src, 1, &oo, &r));
        if (r[0].n_hyps > 0) {
            qkv_hypothesis *h = &r[0].hyps[0];
            tid = malloc((size_t)(h->n_ids + 1) * sizeof(int));
            if (tid)
                memcpy(tid, h->ids, (size_t)h->n_ids * sizeof(int));
            nt = h->n_ids;
            ended = h->ended;
            *text = strdup(h->text ? h->text : "");
        }
        qkv_translations_free(r, 1);
        if (!tid)
            return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    }
    int *all = realloc(tid, (size_t)(nt + 1) * sizeof(int));
    if (!all || !*text) {
        free(all ? all : tid);
        return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    }
    if (ended)
        all[nt++] = cfg->eos_id;
    *ids = all;
    *n = nt;
    return QKV_OK;
}

qkv_status qkv_translator_attention(const qkv_translator *t, const char *src, const char *tgt,
                                    const qkv_translate_options *o, qkv_attention_map **out)
{
    *out = NULL;
    if (!t || !src)
        return qkv_fail(QKV_ERR_ARG, "qkv_translator_attention: no translator or source");
    const qkv_model_config *cfg = qkv_model_get_config(t->model);
    int *sid = NULL, ns = 0, trunc = 0, *tid = NULL, nt = 0;
    QKV_TRY(translator_encode_source(t, src, &sid, &ns, &trunc));
    if (ns == 0) {
        free(sid);
        return qkv_fail(QKV_ERR_ARG, "attention: the source is empty");
    }
    qkv_attention_map *m = calloc(1, sizeof *m);
    if (!m) {
        free(sid);
        return qkv_fail(QKV_ERR_NOMEM, "out of memory");
    }
    qkv_status st = target_ids(t, src, tgt, o, &tid, &nt, &m->text);
    if (st == QKV_OK && (nt < 1 || nt > cfg->max_positions))
        st = qkv_fail(QKV_ERR_ARG, "attention: a target of %d tokens (EOS included) does not fit max_positions %d",
                      nt, cfg->max_positions);
    int Le = cfg->encoder_layers, He = cfg->encoder_heads, Ld = cfg->decoder_layers, Hd = cfg->decoder_heads;
    int De = cfg->d_model / He, Dd = cfg->d_model / Hd, S = ns, T = nt;
    int *tin = NULL;
    model_state *ms = NULL;
    if (st == QKV_OK) {
        m->n_src = S;
        m->n_tgt = T;
        m->enc_layers = Le;
        m->enc_heads = He;
        m->dec_layers = Ld;
        m->dec_heads = Hd;
        m->enc_head_dim = De;
        m->dec_head_dim = Dd;
        size_t e_att = (size_t)Le * He * S * S, d_att = (size_t)Ld * Hd * T * T, c_att = (size_t)Ld * Hd * T * S;
        size_t e_vec = (size_t)Le * He * S * De, d_vec = (size_t)Ld * Hd * T * Dd, c_vec = (size_t)Ld * Hd * S * Dd;
        m->enc_self = malloc(e_att * sizeof(float));
        m->dec_self = malloc(d_att * sizeof(float));
        m->cross = malloc(c_att * sizeof(float));
        m->enc_q = malloc(e_vec * sizeof(float));
        m->enc_k = malloc(e_vec * sizeof(float));
        m->enc_v = malloc(e_vec * sizeof(float));
        m->dec_q = malloc(d_vec * sizeof(float));
        m->dec_k = malloc(d_vec * sizeof(float));
        m->dec_v = malloc(d_vec * sizeof(float));
        m->cross_q = malloc(d_vec * sizeof(float));
        m->cross_k = malloc(c_vec * sizeof(float));
        m->cross_v = malloc(c_vec * sizeof(float));
        m->src_tokens = calloc((size_t)S, sizeof(char *));
        m->dec_tokens = calloc((size_t)T, sizeof(char *));
        m->tgt_tokens = calloc((size_t)T, sizeof(char *));
        tin = malloc((size_t)T * sizeof(int));
        if (!m->enc_self || !m->dec_self || !m->cross || !m->enc_q || !m->enc_k || !m->enc_v || !m->dec_q ||
            !m->dec_k || !m->dec_v || !m->cross_q || !m->cross_k || !m->cross_v || !m->src_tokens ||
            !m->dec_tokens || !m->tgt_tokens || !tin)
            st = qkv_fail(QKV_ERR_NOMEM, "out of memory");
    }
    if (st == QKV_OK) {
        int V = cfg->tgt_vocab_size;
        for (int j = 0; j < T; j++) {
            int v = j == 0 ? cfg->decoder_start_id : tid[j - 1];
            tin[j] = v < V ? v : cfg->eos_id;
        }
        for (int i = 0; i < S; i++)
            m->src_tokens[i] = translator_piece(t, 1, sid[i]);
        for (int j = 0; j < T; j++) {
            m->dec_tokens[j] = translator_piece(t, 0, tin[j]);
            m->tgt_tokens[j] = translator_piece(t, 0, tid[j]);
        }
        st = model_state_new(t->model, 1, S, T, 0, &ms);
    }
    const float *logits = NULL;
    int tl = T;
    if (st == QKV_OK)
        st = model_encode(ms, sid, &ns, 1, S);
    if (st == QKV_OK)
        st = model_decode_logits(ms, tin, &tl, T, &logits);
    for (int l = 0; st == QKV_OK && l < Le; l++) {
        const float *q, *k, *v;
        st = model_attention_qkv(ms, ATTN_ENCODER_SELF, l, &q, &k, &v);
        if (st != QKV_OK)
            break;
        copy_rows(m->enc_self, model_attention(ms, ATTN_ENCODER_SELF, l), l, He, S * S, S * S, 1);
        copy_rows(m->enc_q, q, l, He, S, S, De);
        copy_rows(m->enc_k, k, l, He, S, S, De);
        copy_rows(m->enc_v, v, l, He, S, S, De);
    }
    for (int l = 0; st == QKV_OK && l < Ld; l++) {
        const float *q, *k, *v;
        st = model_attention_qkv(ms, ATTN_DECODER_SELF, l, &q, &k, &v);
        if (st != QKV_OK)
            break;
        copy_rows(m->dec_self, model_attention(ms, ATTN_DECODER_SELF, l), l, Hd, T * T, T * T, 1);
        copy_rows(m->dec_q, q, l, Hd, T, T, Dd);
        copy_rows(m->dec_k, k, l, Hd, T, T, Dd);
        copy_rows(m->dec_v, v, l, Hd, T, T, Dd);
        st = model_attention_qkv(ms, ATTN_DECODER_CROSS, l, &q, &k, &v);
        if (st != QKV_OK)
            break;
        copy_rows(m->cross, model_attention(ms, ATTN_DECODER_CROSS, l), l, Hd, T * S, T * S, 1);
        copy_rows(m->cross_q, q, l, Hd, T, T, Dd);
        copy_rows(m->cross_k, k, l, Hd, S, S, Dd);
        copy_rows(m->cross_v, v, l, Hd, S, S, Dd);
    }
    model_state_free(ms);
    free(sid);
    free(tid);
    free(tin);
    if (st != QKV_OK) {
        qkv_attention_map_free(m);
        return st;
    }
    *out = m;
    return QKV_OK;
}
