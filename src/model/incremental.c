/* Incremental decoding: one target position per call, with the keys and
 * values of earlier positions kept in a cache instead of recomputed.
 *
 * Self-attention cache, per layer: [max_T, max_B, C], slot (t, i) holding
 * the key (value) that row i computed at step t. Rows are never moved when
 * beams are reselected or finished sentences leave: model_cache_select and
 * model_cache_reorder only record which old row each new row continues
 * (par), and a step follows those links back to find, for each row, the
 * slot of each earlier position (hist). Reselection costs O(rows), not
 * O(rows x length x C) copies per step.
 *
 * Cross-attention keys and values: once per source ([n, H, S, D]), shared
 * by the source's beams through src_row; never copied.
 *
 * Every linear layer of a step multiplies few rows (the running
 * hypotheses) by a weight: the weights are packed for qlinear_forward
 * (kernels/qlinear.h: float32 panels, or int8 / bf16 for the lower compute
 * types) instead of being repacked by the BLAS on every call. The packed
 * weights are their own object (model_decoder_weights),
 * immutable once made, so one packing serves every cache and thread of a
 * translator; a cache made without one packs its own. Same block structure
 * as model.c (pre- or post-norm, residuals, optional final norm), without
 * dropout. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "kernels/qlinear.h"
#include "model/layers.h"

/* A decoder layer's weights, packed in the weights' compute type. */
typedef struct {
    qlinear self_qkv, self_out, cross_q, cross_kv, cross_out, fc1, fc2;
} packed_layer;

struct model_decoder_weights {
    const qkv_model *m;
    qlinear_type type;
    packed_layer *pl;   /* per decoder layer */
    model_typed_enc_layer *el; /* per encoder layer (int8, bf16), else NULL */
    qlinear out_packed; /* output projection [V, C] */
    size_t bytes;       /* what the packed weights hold */
};

/* Packings done in this process (model_decoder_pack_count). */
static atomic_long pack_count;

struct model_decoder_cache {
    const qkv_model *m;
    const model_decoder_weights *w; /* shared, or own_w */
    model_decoder_weights *own_w;
    int max_B, max_S, max_T;
    int B, S, len, started;
    float **k_self, **v_self;   /* per layer [max_T, max_B, C] */
    float **k_cross, **v_cross; /* per layer [max_B sources, H, S, D] */
    float **p_cross;            /* per layer: last step's cross-attention [B, H, S] */
    int *par;                   /* [max_T, max_B]: row i at step t continues row par[t][i] of step t - 1 */
    int *pend;                  /* [max_B]: what par[len] will be (selections since the last step) */
    int *hist;                  /* [max_B, max_T]: slot row of each position of each row, this step */
    int *src_row, *src_len, *rows_tmp; /* [max_B]: source of each row, its length */
    void *qscratch;             /* the int8 / bf16 products' scratch (NULL for float32) */
    /* one step's scratch: [B, C] unless noted */
    float *x, *a, *res, *qkv /* [B, 3C] */, *q, *atty, *h, *mean, *rstd;
    float *ff_pre, *ff_act; /* [B, F] */
    float *logits;          /* [B, V] */
    float *kv_tmp;          /* [max_B * S, 2C]: cross keys and values before the head split */
};

static void *alloc_floats(size_t n) { return aligned_alloc(64, ((n ? n : 1) * sizeof(float) + 63) & ~(size_t)63); }

void model_cache_free(model_decoder_cache *c)
{
    if (!c)
        return;
    int L = c->m->cfg.decoder_layers;
    for (int l = 0; l < L; l++) {
        if (c->k_self)
            free(c->k_self[l]);
        if (c->v_self)
            free(c->v_self[l]);
        if (c->k_cross)
            free(c->k_cross[l]);
        if (c->v_cross)
            free(c->v_cross[l]);
        if (c->p_cross)
            free(c->p_cross[l]);
    }
    free(c->p_cross);
    free(c->k_self);
    free(c->v_self);
    free(c->k_cross);
    free(c->v_cross);
    free(c->par);
    free(c->pend);
    free(c->hist);
    free(c->src_row);
    free(c->src_len);
    free(c->rows_tmp);
    model_decoder_weights_free(c->own_w);
    free(c->qscratch);
    float *bufs[] = {c->x,  c->a,    c->res,    c->qkv,    c->q,      c->atty,
                     c->h,  c->mean, c->rstd,   c->ff_pre, c->ff_act, c->logits, c->kv_tmp};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(bufs[i]);
    free(c);
}

void model_decoder_weights_free(model_decoder_weights *w)
{
    if (!w)
        return;
    for (int l = 0; w->pl && l < w->m->cfg.decoder_layers; l++) {
        packed_layer *pl = &w->pl[l];
        qlinear *q[] = {&pl->self_qkv, &pl->self_out, &pl->cross_q, &pl->cross_kv, &pl->cross_out, &pl->fc1, &pl->fc2};
        for (size_t i = 0; i < sizeof q / sizeof q[0]; i++)
            qlinear_free(q[i]);
    }
    for (int l = 0; w->el && l < w->m->cfg.encoder_layers; l++) {
        qlinear_free(&w->el[l].qkv);
        qlinear_free(&w->el[l].out);
        qlinear_free(&w->el[l].fc1);
        qlinear_free(&w->el[l].fc2);
    }
    qlinear_free(&w->out_packed);
    free(w->pl);
    free(w->el);
    free(w);
}

long model_decoder_pack_count(void) { return atomic_load(&pack_count); }

int model_decoder_weights_type(const model_decoder_weights *w) { return (int)w->type; }

size_t model_decoder_weights_bytes(const model_decoder_weights *w) { return w->bytes; }

int model_decoder_product_count(const qkv_model *m)
{
    return 6 * m->cfg.decoder_layers + 1 + 4 * m->cfg.encoder_layers;
}

const model_typed_enc_layer *model_decoder_weights_encoder(const model_decoder_weights *w) { return w->el; }

/* keep in sync with pack_weights' order */
void model_decoder_product_tensors(const qkv_model *m, model_product_tensor *out)
{
    const qkv_model_config *cfg = &m->cfg;
    int C = cfg->d_model, F = cfg->decoder_d_ff, V = cfg->tgt_vocab_size, n = 0;
    for (int l = 0; l < cfg->decoder_layers; l++) {
        const layer_offsets *lo = &m->dec_layers[l];
        out[n++] = (model_product_tensor){lo->self.qkv_w, 3 * C, C, 0};
        out[n++] = (model_product_tensor){lo->self.out_w, C, C, 0};
        out[n++] = (model_product_tensor){lo->cross.qkv_w, 3 * C, C, 0};
        out[n++] = (model_product_tensor){lo->cross.out_w, C, C, 0};
        out[n++] = (model_product_tensor){lo->fc1_w, F, C, 0};
        out[n++] = (model_product_tensor){lo->fc2_w, C, F, 0};
    }
    out[n++] = (model_product_tensor){m->out_w, V, C, m->out_w == m->dec_embed || m->out_w == m->enc_embed};
    int FE = cfg->encoder_d_ff;
    for (int l = 0; l < cfg->encoder_layers; l++) {
        const layer_offsets *lo = &m->enc_layers[l];
        out[n++] = (model_product_tensor){lo->self.qkv_w, 3 * C, C, 0};
        out[n++] = (model_product_tensor){lo->self.out_w, C, C, 0};
        out[n++] = (model_product_tensor){lo->fc1_w, FE, C, 0};
        out[n++] = (model_product_tensor){lo->fc2_w, C, FE, 0};
    }
}

/* Packs rows [row0, row0 + out) of product tensor k (an [out, in] weight at
 * params + off) into dst: from the int8 tensors when given, else from the
 * float32 parameters in type t. */
static int pack_one(model_decoder_weights *dw, qlinear *dst, const model_i8_tensor *i8, int k, size_t off, int row0,
                    int in, int out)
{
    qlinear_type t = dw->type;
    if (i8) {
        int ok = qlinear_make_i8(dst, i8[k].q + (size_t)row0 * in, i8[k].scale + row0, in, out);
        dw->bytes += ok ? qlinear_held_bytes(dst) : 0;
        return ok;
    }
    int ok = qlinear_make(dst, dw->m->params + off + (size_t)row0 * in, in, out, t);
    dw->bytes += ok ? qlinear_held_bytes(dst) : 0;
    /* the float32 rows just packed are read again only by float32
     * whole-sequence passes (scoring, attention maps): a mapped model's
     * pages of them leave memory until then, one weight at a time, so that
     * packing never holds all of them */
    model_release_params(dw->m, off + (size_t)row0 * in, (size_t)out * in);
    return ok;
}

/* Packs every decoder weight a step multiplies by, in the compute type. */
static qkv_status pack_weights(const qkv_model *m, qlinear_type t, const model_i8_tensor *i8,
                               model_decoder_weights **out)
{
    *out = NULL;
    const qkv_model_config *cfg = &m->cfg;
    int L = cfg->decoder_layers, C = cfg->d_model, F = cfg->decoder_d_ff, V = cfg->tgt_vocab_size;
    model_decoder_weights *dw = calloc(1, sizeof *dw);
    if (dw) {
        dw->m = m;
        dw->type = t;
        dw->pl = calloc((size_t)L, sizeof *dw->pl);
    }
    int ok = dw && dw->pl;
    for (int l = 0; ok && l < L; l++) {
        const layer_offsets *lo = &m->dec_layers[l];
        packed_layer *pl = &dw->pl[l];
        int k = 6 * l;
        ok = pack_one(dw, &pl->self_qkv, i8, k, lo->self.qkv_w, 0, C, 3 * C) &&
             pack_one(dw, &pl->self_out, i8, k + 1, lo->self.out_w, 0, C, C) &&
             pack_one(dw, &pl->cross_q, i8, k + 2, lo->cross.qkv_w, 0, C, C) &&      /* the q rows of [3C, C] */
             pack_one(dw, &pl->cross_kv, i8, k + 2, lo->cross.qkv_w, C, C, 2 * C) && /* k and v rows */
             pack_one(dw, &pl->cross_out, i8, k + 3, lo->cross.out_w, 0, C, C) &&
             pack_one(dw, &pl->fc1, i8, k + 4, lo->fc1_w, 0, C, F) &&
             pack_one(dw, &pl->fc2, i8, k + 5, lo->fc2_w, 0, F, C);
    }
    ok = ok && pack_one(dw, &dw->out_packed, i8, 6 * L, m->out_w, 0, C, V);
    if (ok) {
        int LE = cfg->encoder_layers, FE = cfg->encoder_d_ff;
        dw->el = calloc((size_t)LE, sizeof *dw->el);
        ok = dw->el != NULL;
        for (int l = 0; ok && l < LE; l++) {
            const layer_offsets *lo = &m->enc_layers[l];
            model_typed_enc_layer *el = &dw->el[l];
            int k = 6 * L + 1 + 4 * l;
            ok = pack_one(dw, &el->qkv, i8, k, lo->self.qkv_w, 0, C, 3 * C) &&
                 pack_one(dw, &el->out, i8, k + 1, lo->self.out_w, 0, C, C) &&
                 pack_one(dw, &el->fc1, i8, k + 2, lo->fc1_w, 0, C, FE) &&
                 pack_one(dw, &el->fc2, i8, k + 3, lo->fc2_w, 0, FE, C);
        }
    }
    if (!ok) {
        model_decoder_weights_free(dw);
        return qkv_fail(QKV_ERR_NOMEM, "model: cannot allocate the decoder's packed weights");
    }
    atomic_fetch_add(&pack_count, 1);
    *out = dw;
    return QKV_OK;
}

qkv_status model_decoder_weights_new(const qkv_model *m, model_decoder_weights **out)
{
    return pack_weights(m, QLIN_F32, NULL, out);
}

qkv_status model_decoder_weights_new_typed(const qkv_model *m, int wtype, model_decoder_weights **out)
{
    return pack_weights(m, (qlinear_type)wtype, NULL, out);
}

qkv_status model_decoder_weights_new_i8(const qkv_model *m, const model_i8_tensor *t, model_decoder_weights **out)
{
    return pack_weights(m, QLIN_INT8, t, out);
}

qkv_status model_cache_new_shared(const model_decoder_weights *w, int max_B, int max_S, int max_T,
                                  model_decoder_cache **out)
{
    *out = NULL;
    const qkv_model *m = w->m;
    const qkv_model_config *cfg = &m->cfg;
    if (max_B <= 0 || max_S <= 0 || max_T <= 0)
        return qkv_fail(QKV_ERR_ARG, "model: cache shape %d x (%d, %d) must be positive", max_B, max_S, max_T);
    if (max_T > cfg->max_positions)
        return qkv_fail(QKV_ERR_ARG, "model: cache length %d exceeds max_positions %d", max_T, cfg->max_positions);
    model_decoder_cache *c = calloc(1, sizeof *c);
    if (!c)
        return qkv_fail(QKV_ERR_NOMEM, "model: out of memory");
    c->m = m;
    c->w = w;
    c->max_B = max_B;
    c->max_S = max_S;
    c->max_T = max_T;
    int L = cfg->decoder_layers, ok = 1;
    size_t B = max_B, C = cfg->d_model, H = cfg->decoder_heads, F = cfg->decoder_d_ff;
    size_t self_n = B * max_T * C, cross_n = B * max_S * C;
    c->k_self = calloc(L, sizeof(float *));
    c->v_self = calloc(L, sizeof(float *));
    c->k_cross = calloc(L, sizeof(float *));
    c->v_cross = calloc(L, sizeof(float *));
    c->p_cross = calloc(L, sizeof(float *));
    ok = c->k_self && c->v_self && c->k_cross && c->v_cross && c->p_cross;
    for (int l = 0; ok && l < L; l++) {
        c->k_self[l] = alloc_floats(self_n);
        c->v_self[l] = alloc_floats(self_n);
        c->k_cross[l] = alloc_floats(cross_n);
        c->v_cross[l] = alloc_floats(cross_n);
        c->p_cross[l] = alloc_floats(B * H * (size_t)max_S);
        ok = c->k_self[l] && c->v_self[l] && c->k_cross[l] && c->v_cross[l] && c->p_cross[l];
    }
    c->par = malloc(B * max_T * sizeof(int));
    c->pend = malloc(B * sizeof(int));
    c->hist = malloc(B * max_T * sizeof(int));
    c->src_row = malloc(B * sizeof(int));
    c->src_len = malloc(B * sizeof(int));
    c->rows_tmp = malloc(B * sizeof(int));
    c->x = alloc_floats(B * C);
    c->a = alloc_floats(B * C);
    c->res = alloc_floats(B * C);
    c->qkv = alloc_floats(3 * B * C);
    c->q = alloc_floats(B * C);
    c->atty = alloc_floats(B * C);
    c->h = alloc_floats(B * C);
    c->mean = alloc_floats(B);
    c->rstd = alloc_floats(B);
    c->ff_pre = alloc_floats(B * F);
    c->ff_act = alloc_floats(B * F);
    c->logits = alloc_floats(B * (size_t)cfg->tgt_vocab_size);
    c->kv_tmp = alloc_floats(2 * cross_n);
    if (w->type != QLIN_F32) { /* rows: the cross keys' max_B * max_S, or a step's max_B of up to F or C */
        size_t s1 = qlinear_scratch_bytes(w->type, (int)(B * max_S), (int)C),
               s2 = qlinear_scratch_bytes(w->type, max_B, (int)(F > C ? F : C));
        c->qscratch = malloc(s1 > s2 ? s1 : s2);
        ok = ok && c->qscratch;
    }
    ok = ok && c->par && c->pend && c->hist && c->src_row && c->src_len && c->rows_tmp && c->x && c->a && c->res &&
         c->qkv && c->q && c->atty && c->h && c->mean && c->rstd && c->ff_pre && c->ff_act && c->logits && c->kv_tmp;
    if (!ok) {
        model_cache_free(c);
        return qkv_fail(QKV_ERR_NOMEM, "model: cannot allocate a decoder cache for %d x (%d, %d)", max_B, max_S,
                        max_T);
    }
    *out = c;
    return QKV_OK;
}

qkv_status model_cache_new(const qkv_model *m, int max_B, int max_S, int max_T, model_decoder_cache **out)
{
    *out = NULL;
    model_decoder_weights *w;
    QKV_TRY(model_decoder_weights_new(m, &w));
    qkv_status s = model_cache_new_shared(w, max_B, max_S, max_T, out);
    if (s != QKV_OK) {
        model_decoder_weights_free(w);
        return s;
    }
    (*out)->own_w = w;
    return QKV_OK;
}

int model_cache_fits(const model_decoder_cache *c, int max_B, int max_S, int max_T)
{
    return max_B <= c->max_B && max_S <= c->max_S && max_T <= c->max_T;
}

int model_cache_length(const model_decoder_cache *c) { return c->len; }

const float *model_cache_cross_attention(const model_decoder_cache *c, int layer)
{
    if (!c->started || c->len == 0 || layer < 0 || layer >= c->m->cfg.decoder_layers)
        return NULL;
    return c->p_cross[layer];
}

qkv_status model_cache_start_beams(model_decoder_cache *c, const float *enc, const int *src_len, int n, int S,
                                   int beams)
{
    const qkv_model *m = c->m;
    const qkv_model_config *cfg = &m->cfg;
    const float *P = m->params;
    if (n <= 0 || beams <= 0 || (size_t)n * beams > (size_t)c->max_B || S <= 0 || S > c->max_S)
        return qkv_fail(QKV_ERR_ARG, "model: batch %d x %d beams x %d outside the cache's %d x %d", n, beams, S,
                        c->max_B, c->max_S);
    for (int b = 0; b < n; b++)
        if (src_len[b] < 0 || src_len[b] > S)
            return qkv_fail(QKV_ERR_ARG, "model: src_len[%d] = %d outside [0, %d]", b, src_len[b], S);
    int B = n * beams, C = cfg->d_model, H = cfg->decoder_heads, D = C / H;
    c->B = B;
    c->S = S;
    c->len = 0;
    for (int i = 0; i < B; i++) {
        c->src_row[i] = i / beams;
        c->src_len[i] = src_len[i / beams];
        c->pend[i] = i;
    }
    for (int l = 0; l < cfg->decoder_layers; l++) {
        const attn_offsets *o = &m->dec_layers[l].cross;
        /* keys and values once per source, shared by its beams */
        qlinear_forward(c->kv_tmp, enc, &c->w->pl[l].cross_kv, P + o->qkv_b + C, n * S, c->qscratch);
        heads_split_forward(c->k_cross[l], c->kv_tmp, n, S, H, D, 2 * C);
        heads_split_forward(c->v_cross[l], c->kv_tmp + C, n, S, H, D, 2 * C);
    }
    c->started = 1;
    return QKV_OK;
}

qkv_status model_cache_start(model_decoder_cache *c, const float *enc, const int *src_len, int B, int S)
{
    return model_cache_start_beams(c, enc, src_len, B, S, 1);
}

/* Pre-norm: LN(x) into c->a; post-norm: x itself. */
static const float *step_in(model_decoder_cache *c, const float *x, ln_offsets ln)
{
    const qkv_model_config *cfg = &c->m->cfg;
    if (cfg->norm == QKV_NORM_POST)
        return x;
    const float *P = c->m->params;
    layernorm_forward(c->a, c->mean, c->rstd, x, P + ln.w, P + ln.b, c->B, cfg->d_model, cfg->layer_norm_eps);
    return c->a;
}

/* x = x + h, then LN for post-norm; the result is left in c->x. */
static void step_out(model_decoder_cache *c, ln_offsets ln)
{
    const qkv_model_config *cfg = &c->m->cfg;
    const float *P = c->m->params;
    size_t n = (size_t)c->B * cfg->d_model;
    if (cfg->norm == QKV_NORM_PRE) {
        residual_forward(c->x, c->x, c->h, n);
        return;
    }
    residual_forward(c->res, c->x, c->h, n);
    layernorm_forward(c->x, c->mean, c->rstd, c->res, P + ln.w, P + ln.b, c->B, cfg->d_model, cfg->layer_norm_eps);
}

/* The slot row of every position of every row: position t is the row
 * itself, each earlier one the row its successor continued (par). */
static void trace_history(model_decoder_cache *c, int t)
{
    int B = c->B, Tm = c->max_T, Bm = c->max_B;
    for (int i = 0; i < B; i++) {
        int *h = c->hist + (size_t)i * Tm, r = i;
        h[t] = r;
        for (int j = t; j > 0; j--)
            h[j - 1] = r = c->par[(size_t)j * Bm + r];
    }
}

qkv_status model_decode_step(model_decoder_cache *c, const int *tokens, const float **logits)
{
    const qkv_model *m = c->m;
    const qkv_model_config *cfg = &m->cfg;
    const float *P = m->params;
    if (!c->started)
        return qkv_fail(QKV_ERR_ARG, "model: model_decode_step needs model_cache_start first");
    if (c->len >= c->max_T)
        return qkv_fail(QKV_ERR_ARG, "model: decoder cache full (%d positions)", c->max_T);
    int B = c->B, S = c->S, C = cfg->d_model, H = cfg->decoder_heads, D = C / H, Tm = c->max_T, t = c->len;
    int V = cfg->tgt_vocab_size, F = cfg->decoder_d_ff, Bm = c->max_B;
    for (int b = 0; b < B; b++)
        if (tokens[b] < 0 || tokens[b] >= V)
            return qkv_fail(QKV_ERR_ARG, "model: token[%d] = %d is outside the vocabulary [0, %d)", b, tokens[b], V);
    memcpy(c->par + (size_t)t * Bm, c->pend, (size_t)B * sizeof(int));
    for (int i = 0; i < B; i++)
        c->pend[i] = i;
    trace_history(c, t);
    const float *pos = m->dec_pos != NO_PARAM ? P + m->dec_pos : m->sin_table;
    float scale = cfg->scale_embedding ? sqrtf((float)C) : 1.0f;
    embedding_forward(c->x, tokens, P + m->dec_embed, pos, B, 1, C, t, scale);
    for (int l = 0; l < cfg->decoder_layers; l++) {
        const layer_offsets *L = &m->dec_layers[l];
        const packed_layer *pl = &c->w->pl[l];
        /* self-attention over the cached positions and this one */
        const float *in = step_in(c, c->x, L->ln[0]);
        qlinear_forward(c->qkv, in, &pl->self_qkv, P + L->self.qkv_b, B, c->qscratch);
        float *ks = c->k_self[l] + (size_t)t * Bm * C, *vs = c->v_self[l] + (size_t)t * Bm * C;
        for (int b = 0; b < B; b++) {
            memcpy(ks + (size_t)b * C, c->qkv + (size_t)b * 3 * C + C, C * sizeof(float));
            memcpy(vs + (size_t)b * C, c->qkv + (size_t)b * 3 * C + 2 * C, C * sizeof(float));
        }
        attention_step_self(c->atty, c->qkv, c->k_self[l], c->v_self[l], c->hist, B, H, D, Tm, Bm, t);
        qlinear_forward(c->h, c->atty, &pl->self_out, P + L->self.out_b, B, c->qscratch);
        step_out(c, L->ln[0]);
        /* cross-attention over the cached source keys and values */
        in = step_in(c, c->x, L->ln[1]);
        qlinear_forward(c->q, in, &pl->cross_q, P + L->cross.qkv_b, B, c->qscratch);
        attention_step_cross(c->atty, c->p_cross[l], c->q, c->k_cross[l], c->v_cross[l], c->src_row, c->src_len, B,
                             H, D, S);
        qlinear_forward(c->h, c->atty, &pl->cross_out, P + L->cross.out_b, B, c->qscratch);
        step_out(c, L->ln[1]);
        /* feed-forward */
        in = step_in(c, c->x, L->ln[2]);
        qlinear_forward(c->ff_pre, in, &pl->fc1, P + L->fc1_b, B, c->qscratch);
        activation_forward(c->ff_act, c->ff_pre, (size_t)B * F, (activation_kind)cfg->activation);
        qlinear_forward(c->h, c->ff_act, &pl->fc2, P + L->fc2_b, B, c->qscratch);
        step_out(c, L->ln[2]);
    }
    const float *y = c->x;
    if (cfg->final_norm) {
        layernorm_forward(c->a, c->mean, c->rstd, c->x, P + m->dec_final.w, P + m->dec_final.b, B, C,
                          cfg->layer_norm_eps);
        y = c->a;
    }
    qlinear_forward(c->logits, y, &c->w->out_packed, m->out_b != NO_PARAM ? P + m->out_b : NULL, B, c->qscratch);
    c->len = t + 1;
    *logits = c->logits;
    return QKV_OK;
}

/* Row i of the new batch continues old row rows[i]: the links the next
 * step follows, and each row's source. */
static void select_rows(model_decoder_cache *c, const int *rows, int n)
{
    for (int i = 0; i < n; i++)
        c->rows_tmp[i] = c->pend[rows[i]];
    memcpy(c->pend, c->rows_tmp, (size_t)n * sizeof(int));
    for (int i = 0; i < n; i++)
        c->rows_tmp[i] = c->src_row[rows[i]];
    memcpy(c->src_row, c->rows_tmp, (size_t)n * sizeof(int));
    for (int i = 0; i < n; i++)
        c->rows_tmp[i] = c->src_len[rows[i]];
    memcpy(c->src_len, c->rows_tmp, (size_t)n * sizeof(int));
    c->B = n;
}

qkv_status model_cache_reorder(model_decoder_cache *c, const int *rows)
{
    if (!c->started)
        return qkv_fail(QKV_ERR_ARG, "model: model_cache_reorder needs model_cache_start first");
    int B = c->B;
    for (int i = 0; i < B; i++)
        if (rows[i] < 0 || rows[i] >= B)
            return qkv_fail(QKV_ERR_ARG, "model: reorder row[%d] = %d outside [0, %d)", i, rows[i], B);
    select_rows(c, rows, B);
    return QKV_OK;
}

qkv_status model_cache_select(model_decoder_cache *c, const int *rows, int n)
{
    if (!c->started)
        return qkv_fail(QKV_ERR_ARG, "model: model_cache_select needs model_cache_start first");
    if (n <= 0 || n > c->max_B)
        return qkv_fail(QKV_ERR_ARG, "model: cache selection of %d rows outside [1, %d]", n, c->max_B);
    int B = c->B;
    for (int i = 0; i < n; i++)
        if (rows[i] < 0 || rows[i] >= B)
            return qkv_fail(QKV_ERR_ARG, "model: selected row[%d] = %d outside [0, %d)", i, rows[i], B);
    select_rows(c, rows, n);
    return QKV_OK;
}
