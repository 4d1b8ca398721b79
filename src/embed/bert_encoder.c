/* BertModel forward (contract in bert_encoder.h). Per layer, as
 * transformers' BertLayer with post-norm:
 *   a = LN1(x + Wo attention(Wq x, Wk x, Wv x))
 *   x = LN2(a + W2 gelu(W1 a))
 * after x = LN(word[ids] + pos[t] + type[0]). */
#include "embed/bert_encoder.h"

#include <stdlib.h>

#include "base/status.h"
#include "kernels/kernels.h"
#include "kernels/pooling.h"

struct bert_workspace {
    int max_B, max_T;
    float *x, *tmp, *q, *k, *v, *qh, *kh, *vh, *ah, *probs, *ff, *mean, *rstd;
    float *block;
};

void bert_workspace_free(bert_workspace *w)
{
    if (!w)
        return;
    free(w->block);
    free(w);
}

qkv_status bert_workspace_new(const bert_model *m, int max_B, int max_T, bert_workspace **out)
{
    *out = NULL;
    const bert_config *c = &m->cfg;
    size_t N = (size_t)max_B * max_T, H = (size_t)c->hidden;
    size_t sizes[13] = {N * H, N * H, N * H, N * H, N * H, N * H, N * H, N * H, N * H,
                        (size_t)max_B * c->heads * max_T * max_T, N * (size_t)c->intermediate, N, N};
    size_t total = 0;
    for (int i = 0; i < 13; i++)
        total += sizes[i];
    bert_workspace *w = calloc(1, sizeof *w);
    float *b = w ? malloc(total * sizeof *b) : NULL;
    if (!b) {
        free(w);
        return qkv_fail(QKV_ERR_NOMEM, "bert: out of memory for a workspace of %d x %d tokens", max_B, max_T);
    }
    w->block = b;
    w->max_B = max_B;
    w->max_T = max_T;
    float **slots[13] = {&w->x, &w->tmp, &w->q, &w->k, &w->v, &w->qh, &w->kh, &w->vh, &w->ah,
                         &w->probs, &w->ff, &w->mean, &w->rstd};
    for (int i = 0; i < 13; i++) {
        *slots[i] = b;
        b += sizes[i];
    }
    *out = w;
    return QKV_OK;
}

qkv_status bert_forward(const bert_model *m, bert_workspace *w, const int *ids, const int *len, int B, int T,
                        const float **hidden)
{
    const bert_config *c = &m->cfg;
    if (B < 1 || T < 1 || B > w->max_B || T > w->max_T)
        return qkv_fail(QKV_ERR_ARG, "bert: batch %d x %d exceeds the workspace's %d x %d", B, T, w->max_B,
                        w->max_T);
    if (T > c->max_positions)
        return qkv_fail(QKV_ERR_ARG, "bert: %d tokens, more than max_position_embeddings %d", T, c->max_positions);
    for (int i = 0; i < B * T; i++)
        if (ids[i] < 0 || ids[i] >= c->vocab_size)
            return qkv_fail(QKV_ERR_ARG, "bert: id %d outside the vocabulary of %d", ids[i], c->vocab_size);
    for (int b = 0; b < B; b++)
        if (len[b] < 1 || len[b] > T)
            return qkv_fail(QKV_ERR_ARG, "bert: sentence %d has length %d, expected 1..%d", b, len[b], T);
    const float *P = m->params;
    int N = B * T, H = c->hidden, nh = c->heads, D = H / nh, I = c->intermediate;
    float eps = c->layer_norm_eps;
    embedding_forward(w->tmp, ids, P + m->word, P + m->pos, B, T, H, 0, 1.0f);
    add_row_forward(w->tmp, P + m->type, N, H);
    layernorm_forward(w->x, w->mean, w->rstd, w->tmp, P + m->ln_w, P + m->ln_b, N, H, eps);
    for (int l = 0; l < c->layers; l++) {
        const bert_layer_offsets *L = &m->layer[l];
        linear_forward(w->q, w->x, P + L->q_w, P + L->q_b, N, H, H);
        linear_forward(w->k, w->x, P + L->k_w, P + L->k_b, N, H, H);
        linear_forward(w->v, w->x, P + L->v_w, P + L->v_b, N, H, H);
        heads_split_forward(w->qh, w->q, B, T, nh, D, H);
        heads_split_forward(w->kh, w->k, B, T, nh, D, H);
        heads_split_forward(w->vh, w->v, B, T, nh, D, H);
        attention_forward(w->ah, w->probs, w->qh, w->kh, w->vh, len, 0, NULL, B, nh, T, T, D);
        heads_merge_forward(w->q, w->ah, B, T, nh, D);
        linear_forward(w->tmp, w->q, P + L->o_w, P + L->o_b, N, H, H);
        residual_forward(w->tmp, w->tmp, w->x, (size_t)N * H);
        layernorm_forward(w->x, w->mean, w->rstd, w->tmp, P + L->ln1_w, P + L->ln1_b, N, H, eps);
        linear_forward(w->ff, w->x, P + L->i_w, P + L->i_b, N, H, I);
        activation_forward(w->ff, w->ff, (size_t)N * I, ACT_GELU);
        linear_forward(w->tmp, w->ff, P + L->f_w, P + L->f_b, N, I, H);
        residual_forward(w->tmp, w->tmp, w->x, (size_t)N * H);
        layernorm_forward(w->x, w->mean, w->rstd, w->tmp, P + L->ln2_w, P + L->ln2_b, N, H, eps);
    }
    *hidden = w->x;
    return QKV_OK;
}
