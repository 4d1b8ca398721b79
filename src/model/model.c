/* The whole model: encoder and decoder stacks, output projection and
 * loss, forward and backward (the workspace they use: state.c).
 *
 * A stack is a chain of blocks; each block is a sublayer (self-attention,
 * cross-attention or feed-forward) with its layer norm and residual:
 *   post-norm: y = LN(x + drop(sub(x)))      pre-norm: y = x + drop(sub(LN(x)))
 * block_acts keeps, per block, ln (post: the block output; pre: the
 * sublayer input), its mean and rstd, and res (the residual sum; pre: the
 * block output).
 *
 * Dropout (training only): on each sublayer output before the residual
 * add and on the embedding sum (token * scale + position) of each stack, as
 * in the paper and in Marian / Hugging Face, at rate `dropout`; on attention
 * probabilities at `attention_dropout`; after the FFN activation at
 * `activation_dropout`. Masks are never kept: each site (stack, layer,
 * block, kind) has a seed derived from the call's seed, and backward
 * regenerates the mask from it (the kernels' dropout is counter-based). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "base/status.h"
#include "model/layers.h"
#include "model/rows.h"
#include "model/state.h"

/* the config's activation is passed to the kernels by value */
_Static_assert((int)QKV_ACT_RELU == (int)ACT_RELU && (int)QKV_ACT_GELU == (int)ACT_GELU &&
                   (int)QKV_ACT_SWISH == (int)ACT_SWISH,
               "qkv_activation and activation_kind must agree");

enum { STACK_ENC = 0, STACK_DEC = 1 };
enum { SITE_RESIDUAL = 0, SITE_ATTENTION = 1, SITE_ACTIVATION = 2 };

model_forward_options model_default_forward_options(void)
{
    model_forward_options o = {0.0f, 0, 0, 1.0f};
    return o;
}


/* The output projection of every position of the last decoder run. */
static void full_logits(model_state *s)
{
    const qkv_model *m = s->m;
    linear_forward(s->logits, s->dec_out, m->params + m->out_w, m->out_b != NO_PARAM ? m->params + m->out_b : NULL,
                   s->B * s->T, m->cfg.d_model, m->cfg.tgt_vocab_size);
    s->logits_ready = 1;
}

const float *model_logits(const model_state *s)
{
    /* A forward with labels projects only the labelled rows; the full logits
     * are made here on first request. The state is never const at its
     * creation, so writing through the cast is defined; a state is used by
     * one thread at a time, as every call on it requires. */
    if (s->decoded && !s->logits_ready)
        full_logits((model_state *)s);
    return s->logits;
}
const float *model_encoder_output(const model_state *s) { return s->enc_out; }

const float *model_attention(const model_state *s, model_attention_kind kind, int layer)
{
    const qkv_model_config *c = &s->m->cfg;
    if (s->shared_layers) /* the last layer's probabilities overwrote the others' */
        return NULL;
    if (kind == ATTN_ENCODER_SELF)
        return layer >= 0 && layer < c->encoder_layers && s->encoded ? s->enc[layer].self.probs : NULL;
    if (layer < 0 || layer >= c->decoder_layers || !s->decoded)
        return NULL;
    return kind == ATTN_DECODER_SELF ? s->dec[layer].self.probs : s->dec[layer].cross.probs;
}

qkv_status model_attention_qkv(const model_state *s, model_attention_kind kind, int layer, const float **q,
                               const float **k, const float **v)
{
    if (!model_attention(s, kind, layer))
        return qkv_fail(QKV_ERR_ARG, "model: no attention of kind %d in layer %d", (int)kind, layer);
    const attn_acts *a = kind == ATTN_ENCODER_SELF   ? &s->enc[layer].self
                         : kind == ATTN_DECODER_SELF ? &s->dec[layer].self
                                                     : &s->dec[layer].cross;
    *q = a->q;
    *k = a->k;
    *v = a->v;
    return QKV_OK;
}

/* ---- checks on a batch ---------------------------------------------------- */

static qkv_status check_ids(const char *what, const int *ids, const int *len, int B, int T, int V, int L)
{
    if (B <= 0 || T <= 0)
        return qkv_fail(QKV_ERR_ARG, "model: %s shape %d x %d must be positive", what, B, T);
    if (T > L)
        return qkv_fail(QKV_ERR_ARG, "model: %s length %d exceeds %d (max_positions or the state's size)", what, T, L);
    for (int b = 0; b < B; b++) {
        if (len[b] < 0 || len[b] > T)
            return qkv_fail(QKV_ERR_ARG, "model: %s length of row %d is %d, outside [0, %d]", what, b, len[b], T);
        for (int t = 0; t < T; t++) {
            int id = ids[(size_t)b * T + t];
            if (id < 0 || id >= V)
                return qkv_fail(QKV_ERR_ARG, "model: %s[%d][%d] = %d is outside the vocabulary [0, %d)", what, b, t,
                                id, V);
        }
    }
    return QKV_OK;
}

/* ---- blocks ---------------------------------------------------------------- */

static uint64_t site_seed(const model_state *s, int stack, int layer, int block, int kind)
{
    uint64_t site = ((((uint64_t)stack * 4096 + (uint64_t)(layer + 1)) * 4 + (uint64_t)block) * 4) + (uint64_t)kind;
    return qkv_splitmix64(s->opt.seed ^ qkv_splitmix64(site + 0x51ed27a3c9f1b0e5ull));
}

static float drop_p(const model_state *s, float p) { return s->opt.dropout ? p : 0.0f; }


/* Returns the sublayer's input: LN(x) for pre-norm, x for post-norm. */
static const float *block_in(const model_state *s, block_acts *b, const float *x, ln_offsets ln, int N)
{
    const qkv_model_config *c = &s->m->cfg;
    const float *P = s->m->params;
    if (c->norm == QKV_NORM_POST)
        return x;
    layernorm_forward(b->ln, b->mean, b->rstd, x, P + ln.w, P + ln.b, N, c->d_model, c->layer_norm_eps);
    return b->ln;
}

/* h (the sublayer output, dropped out in place) joins the residual stream;
 * returns the block output. */
static const float *block_out(model_state *s, block_acts *b, const float *x, float *h, ln_offsets ln, int N,
                              uint64_t seed)
{
    const qkv_model_config *c = &s->m->cfg;
    const float *P = s->m->params;
    size_t n = (size_t)N * c->d_model;
    float p = drop_p(s, c->dropout);
    if (p > 0.0f)
        dropout_forward(h, s->mask, h, n, p, seed);
    residual_forward(b->res, x, h, n);
    if (c->norm == QKV_NORM_PRE)
        return b->res;
    layernorm_forward(b->ln, b->mean, b->rstd, b->res, P + ln.w, P + ln.b, N, c->d_model, c->layer_norm_eps);
    return b->ln;
}

static const float *block_output(const model_state *s, const block_acts *b)
{
    return s->m->cfg.norm == QKV_NORM_PRE ? b->res : b->ln;
}

/* Backward through the norm, residual and dropout of a block, up to the
 * sublayer. dcur: gradient of the block output; dnext: a free buffer. Gives
 * the gradient of the sublayer output in *dh, where the sublayer puts its
 * input gradient in *dsub, adding (*dsub_add 1) or overwriting (0), and
 * returns the buffer that ends up with the block input's gradient:
 *   pre-norm: dcur, in place (the residual passes it through; bottom adds
 *   the norm's share): no copy, no zeroing; the sublayer overwrites d_tmp;
 *   post-norm: dnext, the residual share, which the sublayer adds to. */
static float *block_backward_top(model_state *s, const block_acts *b, float *dcur, float *dnext, ln_offsets ln,
                                 int N, uint64_t seed, const float **dh, float **dsub, int *dsub_add)
{
    const qkv_model_config *c = &s->m->cfg;
    const float *P = s->m->params;
    float *G = s->grads;
    size_t n = (size_t)N * c->d_model;
    const float *dres = dcur;
    float *din = dcur;
    if (c->norm == QKV_NORM_POST) {
        zero_floats(s->d_tmp, n);
        layernorm_backward(s->d_tmp, G + ln.w, G + ln.b, dcur, b->res, P + ln.w, b->mean, b->rstd, N, c->d_model);
        dres = s->d_tmp;
        floats_copy(dnext, dres, n);
        *dsub = din = dnext;
        *dsub_add = 1;
    } else {
        *dsub = s->d_tmp;
        *dsub_add = 0;
    }
    float p = drop_p(s, c->dropout);
    *dh = dres;
    if (p > 0.0f) {
        /* d_h = dres * mask, the mask regenerated from its seed (the mask
         * buffer is written on the way, as dropout_forward does) */
        dropout_forward(s->d_h, s->mask, dres, n, p, seed);
        *dh = s->d_h;
    }
    return din;
}

/* Pre-norm: from the sublayer input's gradient (in d_tmp) through LN, added
 * into din (block_backward_top's return). */
static void block_backward_bottom(model_state *s, const block_acts *b, const float *x, float *din, ln_offsets ln,
                                  int N)
{
    const qkv_model_config *c = &s->m->cfg;
    if (c->norm == QKV_NORM_POST)
        return;
    layernorm_backward(din, s->grads + ln.w, s->grads + ln.b, s->d_tmp, x, s->m->params + ln.w, b->mean, b->rstd, N,
                       c->d_model);
}

/* The sublayer's input as forward saw it. */
static const float *sub_input(const model_state *s, const block_acts *b, const float *x)
{
    return s->m->cfg.norm == QKV_NORM_PRE ? b->ln : x;
}

static const float *attention_mask(model_state *s, size_t n, uint64_t seed)
{
    float p = drop_p(s, s->m->cfg.attention_dropout);
    if (p <= 0.0f)
        return NULL;
    dropout_mask(s->mask, n, p, seed);
    return s->mask;
}

static float embed_scale(const qkv_model_config *c) { return c->scale_embedding ? sqrtf((float)c->d_model) : 1.0f; }

/* ---- encoder ---------------------------------------------------------------- */

/* tl: the layers' typed weights (model_encode_typed), or NULL for the
 * float32 parameters. */
static void encoder_forward(model_state *s, const model_typed_enc_layer *tl)
{
    const qkv_model *m = s->m;
    const qkv_model_config *c = &m->cfg;
    const float *P = m->params;
    int B = s->B, S = s->S, C = c->d_model, N = B * S, H = c->encoder_heads;
    const float *pos = m->enc_pos != NO_PARAM ? P + m->enc_pos : m->sin_table;
    embedding_forward(s->enc_x0, s->src, P + m->enc_embed, pos, B, S, C, 0, embed_scale(c));
    float p = drop_p(s, c->dropout);
    if (p > 0.0f)
        dropout_forward(s->enc_x0, s->mask, s->enc_x0, (size_t)N * C, p, site_seed(s, STACK_ENC, -1, 0, 0));
    const float *x = s->enc_x0;
    for (int l = 0; l < c->encoder_layers; l++) {
        layer_acts *A = &s->enc[l];
        const layer_offsets *L = &m->enc_layers[l];
        const float *in = block_in(s, &A->blk[0], x, L->ln[0], N);
        const float *dm = attention_mask(s, (size_t)B * H * S * S, site_seed(s, STACK_ENC, l, 0, SITE_ATTENTION));
        if (tl)
            self_attention_forward_typed(s->h, &A->self, s->proj_tmp, in, P, &L->self, &tl[l].qkv, &tl[l].out,
                                         s->qscratch, s->src_len, B, S, C, H);
        else
            self_attention_forward(s->h, &A->self, s->proj_tmp, in, P, &L->self, s->src_len, 0, dm, B, S, C, H);
        x = block_out(s, &A->blk[0], x, s->h, L->ln[0], N, site_seed(s, STACK_ENC, l, 0, SITE_RESIDUAL));
        in = block_in(s, &A->blk[2], x, L->ln[2], N);
        if (tl)
            ffn_forward_typed(s->h, &A->ffn, in, P, L, &tl[l].fc1, &tl[l].fc2, s->qscratch,
                              (activation_kind)c->activation, N, c->encoder_d_ff);
        else
            ffn_forward(s->h, &A->ffn, in, P, L, (activation_kind)c->activation, drop_p(s, c->activation_dropout),
                        site_seed(s, STACK_ENC, l, 2, SITE_ACTIVATION), s->mask, N, C, c->encoder_d_ff);
        x = block_out(s, &A->blk[2], x, s->h, L->ln[2], N, site_seed(s, STACK_ENC, l, 2, SITE_RESIDUAL));
    }
    if (c->final_norm) {
        layernorm_forward(s->enc_fin, s->enc_fmean, s->enc_frstd, x, P + m->enc_final.w, P + m->enc_final.b, N, C,
                          c->layer_norm_eps);
        x = s->enc_fin;
    }
    s->enc_out = x;
}

/* Input of block j of layer l of a stack (the previous block's output). */
static const float *block_input(const model_state *s, int stack, int l, int j)
{
    const layer_acts *A = stack == STACK_ENC ? s->enc : s->dec;
    int first = 0, prev_last = 2;
    if (j == first)
        return l == 0 ? (stack == STACK_ENC ? s->enc_x0 : s->dec_x0) : block_output(s, &A[l - 1].blk[prev_last]);
    int pj = stack == STACK_ENC ? 0 : j - 1;
    return block_output(s, &A[l].blk[pj]);
}

/* dcur: gradient of the stack's last block output (d_a); returns the gradient
 * of the embedding output (one of d_a, d_b). */
static float *encoder_backward_layers(model_state *s, float *dcur)
{
    const qkv_model *m = s->m;
    const qkv_model_config *c = &m->cfg;
    const float *P = m->params;
    float *G = s->grads;
    int B = s->B, S = s->S, C = c->d_model, N = B * S, H = c->encoder_heads;
    float *dnext = dcur == s->d_a ? s->d_b : s->d_a;
    const float *dh;
    float *dsub;
    int add;
    for (int l = c->encoder_layers - 1; l >= 0; l--) {
        const layer_acts *A = &s->enc[l];
        const layer_offsets *L = &m->enc_layers[l];
        static const int blocks[2] = {2, 0};
        for (int bi = 0; bi < 2; bi++) {
            int j = blocks[bi];
            const float *x = block_input(s, STACK_ENC, l, j);
            float *din = block_backward_top(s, &A->blk[j], dcur, dnext, L->ln[j], N,
                                            site_seed(s, STACK_ENC, l, j, SITE_RESIDUAL), &dh, &dsub, &add);
            const float *in = sub_input(s, &A->blk[j], x);
            if (j == 2) {
                ffn_backward(dsub, add, G, dh, in, P, L, &A->ffn, (activation_kind)c->activation,
                             drop_p(s, c->activation_dropout), site_seed(s, STACK_ENC, l, 2, SITE_ACTIVATION), &s->sw,
                             N, C, c->encoder_d_ff);
            } else {
                const float *dm = attention_mask(s, (size_t)B * H * S * S, site_seed(s, STACK_ENC, l, 0, SITE_ATTENTION));
                self_attention_backward(dsub, add, G, dh, in, P, &L->self, &A->self, dm, &s->sw, B, S, C, H);
            }
            block_backward_bottom(s, &A->blk[j], x, din, L->ln[j], N);
            if (din != dcur) {
                dnext = dcur;
                dcur = din;
            }
        }
        if (s->grads_ready)
            s->grads_ready(s->grads_ready_ctx, L->begin, L->end);
    }
    return dcur;
}

static void embedding_backward_stack(model_state *s, int stack, const float *dx0)
{
    const qkv_model *m = s->m;
    const qkv_model_config *c = &m->cfg;
    int B = s->B, T = stack == STACK_ENC ? s->S : s->T, C = c->d_model;
    size_t n = (size_t)B * T * C;
    float p = drop_p(s, c->dropout);
    if (p > 0.0f) {
        /* d_h = dx0 * mask: the mask regenerated (and written) in one pass */
        dropout_forward(s->d_h, s->mask, dx0, n, p, site_seed(s, stack, -1, 0, 0));
        dx0 = s->d_h;
    }
    size_t table = stack == STACK_ENC ? m->enc_embed : m->dec_embed;
    size_t pos = stack == STACK_ENC ? m->enc_pos : m->dec_pos;
    embedding_backward(s->grads + table, pos != NO_PARAM ? s->grads + pos : NULL, dx0,
                       stack == STACK_ENC ? s->src : s->tgt, B, T, C, 0, embed_scale(c));
}

/* ---- decoder ------------------------------------------------------------------ */

static void decoder_forward(model_state *s)
{
    const qkv_model *m = s->m;
    const qkv_model_config *c = &m->cfg;
    const float *P = m->params;
    int B = s->B, S = s->S, T = s->T, C = c->d_model, N = B * T, H = c->decoder_heads;
    const float *pos = m->dec_pos != NO_PARAM ? P + m->dec_pos : m->sin_table;
    embedding_forward(s->dec_x0, s->tgt, P + m->dec_embed, pos, B, T, C, 0, embed_scale(c));
    float p = drop_p(s, c->dropout);
    if (p > 0.0f)
        dropout_forward(s->dec_x0, s->mask, s->dec_x0, (size_t)N * C, p, site_seed(s, STACK_DEC, -1, 0, 0));
    const float *x = s->dec_x0;
    for (int l = 0; l < c->decoder_layers; l++) {
        layer_acts *A = &s->dec[l];
        const layer_offsets *L = &m->dec_layers[l];
        const float *in = block_in(s, &A->blk[0], x, L->ln[0], N);
        const float *dm = attention_mask(s, (size_t)B * H * T * T, site_seed(s, STACK_DEC, l, 0, SITE_ATTENTION));
        self_attention_forward(s->h, &A->self, s->proj_tmp, in, P, &L->self, s->tgt_len, 1, dm, B, T, C, H);
        x = block_out(s, &A->blk[0], x, s->h, L->ln[0], N, site_seed(s, STACK_DEC, l, 0, SITE_RESIDUAL));
        in = block_in(s, &A->blk[1], x, L->ln[1], N);
        dm = attention_mask(s, (size_t)B * H * T * S, site_seed(s, STACK_DEC, l, 1, SITE_ATTENTION));
        cross_attention_forward(s->h, &A->cross, s->proj_tmp, in, s->enc_out, P, &L->cross, s->src_len, dm, B, T, S,
                                C, H);
        x = block_out(s, &A->blk[1], x, s->h, L->ln[1], N, site_seed(s, STACK_DEC, l, 1, SITE_RESIDUAL));
        in = block_in(s, &A->blk[2], x, L->ln[2], N);
        ffn_forward(s->h, &A->ffn, in, P, L, (activation_kind)c->activation, drop_p(s, c->activation_dropout),
                    site_seed(s, STACK_DEC, l, 2, SITE_ACTIVATION), s->mask, N, C, c->decoder_d_ff);
        x = block_out(s, &A->blk[2], x, s->h, L->ln[2], N, site_seed(s, STACK_DEC, l, 2, SITE_RESIDUAL));
    }
    if (c->final_norm) {
        layernorm_forward(s->dec_fin, s->dec_fmean, s->dec_frstd, x, P + m->dec_final.w, P + m->dec_final.b, N, C,
                          c->layer_norm_eps);
        x = s->dec_fin;
    }
    s->dec_out = x;
}

static float *decoder_backward_layers(model_state *s, float *dcur)
{
    const qkv_model *m = s->m;
    const qkv_model_config *c = &m->cfg;
    const float *P = m->params;
    float *G = s->grads;
    int B = s->B, S = s->S, T = s->T, C = c->d_model, N = B * T, H = c->decoder_heads;
    float *dnext = dcur == s->d_a ? s->d_b : s->d_a;
    const float *dh;
    float *dsub;
    int add;
    for (int l = c->decoder_layers - 1; l >= 0; l--) {
        const layer_acts *A = &s->dec[l];
        const layer_offsets *L = &m->dec_layers[l];
        for (int j = 2; j >= 0; j--) {
            const float *x = block_input(s, STACK_DEC, l, j);
            float *din = block_backward_top(s, &A->blk[j], dcur, dnext, L->ln[j], N,
                                            site_seed(s, STACK_DEC, l, j, SITE_RESIDUAL), &dh, &dsub, &add);
            const float *in = sub_input(s, &A->blk[j], x);
            if (j == 2) {
                ffn_backward(dsub, add, G, dh, in, P, L, &A->ffn, (activation_kind)c->activation,
                             drop_p(s, c->activation_dropout), site_seed(s, STACK_DEC, l, 2, SITE_ACTIVATION), &s->sw,
                             N, C, c->decoder_d_ff);
            } else if (j == 1) {
                const float *dm = attention_mask(s, (size_t)B * H * T * S, site_seed(s, STACK_DEC, l, 1, SITE_ATTENTION));
                cross_attention_backward(dsub, add, s->d_enc, G, dh, in, s->enc_out, P, &L->cross, &A->cross, dm,
                                         &s->sw, B, T, S, C, H);
            } else {
                const float *dm = attention_mask(s, (size_t)B * H * T * T, site_seed(s, STACK_DEC, l, 0, SITE_ATTENTION));
                self_attention_backward(dsub, add, G, dh, in, P, &L->self, &A->self, dm, &s->sw, B, T, C, H);
            }
            block_backward_bottom(s, &A->blk[j], x, din, L->ln[j], N);
            if (din != dcur) {
                dnext = dcur;
                dcur = din;
            }
        }
        if (s->grads_ready)
            s->grads_ready(s->grads_ready_ctx, L->begin, L->end);
    }
    return dcur;
}

/* ---- entry points ---------------------------------------------------------------- */

static qkv_status load_src(model_state *s, const int *src, const int *src_len, int B, int S)
{
    const qkv_model_config *c = &s->m->cfg;
    if (B > s->max_B)
        return qkv_fail(QKV_ERR_ARG, "model: batch size %d exceeds the state's %d", B, s->max_B);
    if ((size_t)B * (size_t)S > s->max_src_cells)
        return qkv_fail(QKV_ERR_ARG, "model: source batch %d x %d exceeds the state's %zu cells", B, S,
                        s->max_src_cells);
    int lim = s->max_S < c->max_positions ? s->max_S : c->max_positions;
    QKV_TRY(check_ids("src", src, src_len, B, S, c->src_vocab_size, lim));
    memcpy(s->src, src, (size_t)B * S * sizeof(int));
    memcpy(s->src_len, src_len, (size_t)B * sizeof(int));
    s->B = B;
    s->S = S;
    return QKV_OK;
}

static qkv_status load_tgt(model_state *s, const int *tgt, const int *tgt_len, int T)
{
    const qkv_model_config *c = &s->m->cfg;
    if ((size_t)s->B * (size_t)T > s->max_tgt_cells)
        return qkv_fail(QKV_ERR_ARG, "model: target batch %d x %d exceeds the state's %zu cells", s->B, T,
                        s->max_tgt_cells);
    int lim = s->max_T < c->max_positions ? s->max_T : c->max_positions;
    QKV_TRY(check_ids("tgt_in", tgt, tgt_len, s->B, T, c->tgt_vocab_size, lim));
    memcpy(s->tgt, tgt, (size_t)s->B * T * sizeof(int));
    memcpy(s->tgt_len, tgt_len, (size_t)s->B * sizeof(int));
    s->T = T;
    return QKV_OK;
}

qkv_status model_encode(model_state *s, const int *src, const int *src_len, int B, int S)
{
    s->encoded = s->decoded = s->have_labels = s->logits_ready = 0;
    s->opt = model_default_forward_options();
    QKV_TRY(load_src(s, src, src_len, B, S));
    encoder_forward(s, NULL);
    s->encoded = 1;
    return QKV_OK;
}

qkv_status model_encode_typed(model_state *s, const model_decoder_weights *w, const int *src, const int *src_len,
                              int B, int S)
{
    const model_typed_enc_layer *tl = w ? model_decoder_weights_encoder(w) : NULL;
    if (!tl)
        return model_encode(s, src, src_len, B, S);
    const qkv_model_config *c = &s->m->cfg;
    s->encoded = s->decoded = s->have_labels = s->logits_ready = 0;
    s->opt = model_default_forward_options();
    QKV_TRY(load_src(s, src, src_len, B, S));
    int N = B * S, F = c->encoder_d_ff > c->d_model ? c->encoder_d_ff : c->d_model;
    size_t need = qlinear_scratch_bytes(tl[0].qkv.type, N, F);
    if (need > s->qscratch_bytes) { /* once per state and larger batch, not per layer */
        free(s->qscratch);
        s->qscratch = malloc(need);
        s->qscratch_bytes = s->qscratch ? need : 0;
        if (!s->qscratch)
            return qkv_fail(QKV_ERR_NOMEM, "model: out of memory for the encoder's %d x %d typed products", N, F);
    }
    encoder_forward(s, tl);
    s->encoded = 1;
    return QKV_OK;
}

qkv_status model_decode_logits(model_state *s, const int *tgt_in, const int *tgt_len, int T, const float **logits)
{
    if (!s->encoded)
        return qkv_fail(QKV_ERR_ARG, "model: model_decode_logits needs model_encode first");
    s->decoded = s->have_labels = s->logits_ready = 0;
    QKV_TRY(load_tgt(s, tgt_in, tgt_len, T));
    decoder_forward(s);
    s->decoded = 1;
    full_logits(s);
    if (logits)
        *logits = s->logits;
    return QKV_OK;
}

qkv_status model_forward(model_state *s, const model_batch *batch, const model_forward_options *opt, float *loss)
{
    const qkv_model_config *c = &s->m->cfg;
    s->encoded = s->decoded = s->have_labels = s->logits_ready = 0;
    s->opt = opt ? *opt : model_default_forward_options();
    int B = batch->B, T = batch->T;
    QKV_TRY(load_src(s, batch->src, batch->src_len, B, batch->S));
    QKV_TRY(load_tgt(s, batch->tgt_in, batch->tgt_len, T));
    size_t N = (size_t)B * T;
    double count = 0;
    if (batch->labels) {
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                int y = batch->labels[(size_t)b * T + t];
                if (y == c->pad_id)
                    continue;
                if (y < 0 || y >= c->tgt_vocab_size)
                    return qkv_fail(QKV_ERR_ARG, "model: labels[%d][%d] = %d is outside the vocabulary [0, %d)", b, t,
                                    y, c->tgt_vocab_size);
                if (t >= batch->tgt_len[b])
                    return qkv_fail(QKV_ERR_ARG, "model: labels[%d][%d] = %d lies beyond tgt_len %d (expected pad_id %d)",
                                    b, t, y, batch->tgt_len[b], c->pad_id);
                count++;
            }
        memcpy(s->labels, batch->labels, N * sizeof(int));
    }
    encoder_forward(s, NULL);
    s->encoded = 1;
    decoder_forward(s);
    s->decoded = 1;
    float L = 0.0f;
    if (!batch->labels)
        full_logits(s);
    else {
        /* the labelled rows only (rows.h): logits into probs, softmax in place */
        int n = s->n_lab = label_rows(s->lab_rows, s->lab_ids, s->lab_where, s->labels, (int)N, c->pad_id);
        const float *P = s->m->params;
        gather_rows(s->out_x, s->dec_out, s->lab_rows, n, c->d_model);
        linear_forward(s->probs, s->out_x, P + s->m->out_w, s->m->out_b != NO_PARAM ? P + s->m->out_b : NULL, n,
                       c->d_model, c->tgt_vocab_size);
        crossentropy_forward(s->row_loss, s->probs, s->probs, s->lab_ids, n, c->tgt_vocab_size,
                             s->opt.label_smoothing, c->pad_id);
        double sum = 0;
        for (int i = 0; i < n; i++)
            sum += s->row_loss[i];
        L = count > 0 ? (float)(sum / count) : 0.0f;
        s->have_labels = 1;
        s->count = count;
    }
    if (loss)
        *loss = L;
    return QKV_OK;
}

void model_set_grads_ready(model_state *s, void (*ready)(void *ctx, size_t begin, size_t end), void *ctx)
{
    s->grads_ready = ready;
    s->grads_ready_ctx = ctx;
}

qkv_status model_backward(model_state *s)
{
    const qkv_model *m = s->m;
    const qkv_model_config *c = &m->cfg;
    const float *P = m->params;
    float *G = s->grads;
    if (!s->with_grads)
        return qkv_fail(QKV_ERR_ARG, "model: model_backward on a state made without gradients");
    if (!s->have_labels)
        return qkv_fail(QKV_ERR_ARG, "model: model_backward needs a model_forward with labels first");
    s->have_labels = 0; /* the loss gradient overwrites probs below */
    int B = s->B, S = s->S, T = s->T, C = c->d_model, V = c->tgt_vocab_size;
    int Nt = B * T, Ns = B * S, n = s->n_lab;
    if (s->count == 0)
        return QKV_OK;
    float g = (float)(s->opt.loss_scale / s->count);
    for (int i = 0; i < n; i++)
        s->dloss[i] = g;
    /* on the labelled rows (the others have zero gradient): dlogits
     * overwrite probs (the kernel's aliasing mode); the gradient of their
     * decoder outputs goes through d_h, then to its rows, zeros elsewhere */
    crossentropy_backward(s->probs, s->probs, s->lab_ids, s->dloss, n, V, s->opt.label_smoothing, c->pad_id);
    float *d_out = c->final_norm ? s->d_tmp : s->d_a;
    linear_backward_set(s->d_h, G + m->out_w, m->out_b != NO_PARAM ? G + m->out_b : NULL, s->probs, s->out_x,
                        P + m->out_w, n, C, V);
    scatter_rows(d_out, s->d_h, s->lab_where, Nt, C);
    const float *x_last = block_output(s, &s->dec[c->decoder_layers - 1].blk[2]);
    if (c->final_norm) {
        zero_floats(s->d_a, (size_t)Nt * C);
        layernorm_backward(s->d_a, G + m->dec_final.w, G + m->dec_final.b, s->d_tmp, x_last, P + m->dec_final.w,
                           s->dec_fmean, s->dec_frstd, Nt, C);
    }
    /* The pad_id row of each token table gets no gradient from lookups, as
     * with PyTorch's padding_idx in Marian and fairseq: where decoding starts
     * with pad (Marian) the row stays as loaded. Padded positions give it
     * exactly zero anyway; the output projection (when tied) still does.
     * Saved before the embedding backward passes, restored after. */
    float *pad_dec = G + m->dec_embed + (size_t)c->pad_id * C, *pad_enc = G + m->enc_embed + (size_t)c->pad_id * C;
    memcpy(s->pad_rows, pad_dec, (size_t)C * sizeof(float));
    memcpy(s->pad_rows + C, pad_enc, (size_t)C * sizeof(float));
    zero_floats(s->d_enc, (size_t)Ns * C);
    float *dx0 = decoder_backward_layers(s, s->d_a);
    embedding_backward_stack(s, STACK_DEC, dx0);

    x_last = block_output(s, &s->enc[c->encoder_layers - 1].blk[2]);
    if (c->final_norm) {
        zero_floats(s->d_a, (size_t)Ns * C);
        layernorm_backward(s->d_a, G + m->enc_final.w, G + m->enc_final.b, s->d_enc, x_last, P + m->enc_final.w,
                           s->enc_fmean, s->enc_frstd, Ns, C);
    } else {
        memcpy(s->d_a, s->d_enc, (size_t)Ns * C * sizeof(float));
    }
    dx0 = encoder_backward_layers(s, s->d_a);
    embedding_backward_stack(s, STACK_ENC, dx0);
    memcpy(pad_enc, s->pad_rows + C, (size_t)C * sizeof(float));
    memcpy(pad_dec, s->pad_rows, (size_t)C * sizeof(float)); /* last: right when the tables are one */
    return QKV_OK;
}

double model_forward_flops(const qkv_model_config *c, int B, int S, int T)
{
    double C = c->d_model, Ns = (double)B * S, Nt = (double)B * T, V = c->tgt_vocab_size;
    /* encoder layer: q,k,v,out projections 4 N C^2, FFN 2 N C F, scores and
     * weighted sum 2 B S^2 C (summed over heads); 2 flops per multiply-add */
    double enc = 2.0 * (4 * Ns * C * C + 2 * Ns * C * c->encoder_d_ff + 2.0 * B * S * S * C);
    double dec = 2.0 * (4 * Nt * C * C                             /* self q,k,v,out */
                        + 2 * Nt * C * C + 2 * Ns * C * C          /* cross q,out; k,v of the source */
                        + 2 * Nt * C * c->decoder_d_ff             /* FFN */
                        + 2.0 * B * T * T * C + 2.0 * B * T * S * C); /* attention products */
    return enc * c->encoder_layers + dec * c->decoder_layers + 2.0 * Nt * C * V;
}
