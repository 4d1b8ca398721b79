/* Incremental decoding: one target position per call, with the keys and
 * values of earlier positions kept in a cache instead of recomputed.
 *
 * The self-attention cache of a layer is [B, H, max_T, D]; a step attends
 * over all max_T slots with key_len = t + 1 for every row, so the kernel's
 * padding mask hides the slots not yet written (they are zeroed at start so
 * 0 * garbage can never make a NaN). Causality is then automatic: a step
 * only sees earlier positions. Cross-attention keys and values come from
 * the encoder output once per batch. Same block structure as model.c
 * (pre- or post-norm, residuals, optional final norm), without dropout. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "model/layers.h"

struct model_decoder_cache {
    const qkv_model *m;
    int max_B, max_S, max_T;
    int B, S, len, started;
    float **k_self, **v_self, **k_cross, **v_cross; /* per decoder layer */
    float **p_cross;                                 /* per layer: last step's cross-attention [B, H, S] */
    int *src_len, *key_len, *rows_tmp;
    /* one step's scratch: [B, C] unless noted */
    float *x, *a, *res, *qkv /* [B, 3C] */, *q, *atty, *merged, *h, *mean, *rstd;
    float *probs;  /* [B, H, max_T]: self-attention of the step */
    float *ff_pre, *ff_act; /* [B, F] */
    float *logits;          /* [B, V] */
    float *kv_tmp;          /* [B*S, 2C] and the reorder buffer */
    size_t kv_tmp_floats;
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
    free(c->src_len);
    free(c->key_len);
    free(c->rows_tmp);
    float *bufs[] = {c->x,     c->a,    c->res,    c->qkv,    c->q,      c->atty,   c->merged, c->h,
                     c->mean,  c->rstd, c->probs,  c->ff_pre, c->ff_act, c->logits, c->kv_tmp};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(bufs[i]);
    free(c);
}

qkv_status model_cache_new(const qkv_model *m, int max_B, int max_S, int max_T, model_decoder_cache **out)
{
    *out = NULL;
    const qkv_model_config *cfg = &m->cfg;
    if (max_B <= 0 || max_S <= 0 || max_T <= 0)
        return qkv_fail(QKV_ERR_ARG, "model: cache shape %d x (%d, %d) must be positive", max_B, max_S, max_T);
    if (max_T > cfg->max_positions)
        return qkv_fail(QKV_ERR_ARG, "model: cache length %d exceeds max_positions %d", max_T, cfg->max_positions);
    model_decoder_cache *c = calloc(1, sizeof *c);
    if (!c)
        return qkv_fail(QKV_ERR_NOMEM, "model: out of memory");
    c->m = m;
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
    c->src_len = malloc(B * sizeof(int));
    c->key_len = malloc(B * sizeof(int));
    c->rows_tmp = malloc(B * sizeof(int));
    c->x = alloc_floats(B * C);
    c->a = alloc_floats(B * C);
    c->res = alloc_floats(B * C);
    c->qkv = alloc_floats(3 * B * C);
    c->q = alloc_floats(B * C);
    c->atty = alloc_floats(B * C);
    c->merged = alloc_floats(B * C);
    c->h = alloc_floats(B * C);
    c->mean = alloc_floats(B);
    c->rstd = alloc_floats(B);
    c->probs = alloc_floats(B * H * (size_t)max_T);
    c->ff_pre = alloc_floats(B * F);
    c->ff_act = alloc_floats(B * F);
    c->logits = alloc_floats(B * (size_t)cfg->tgt_vocab_size);
    c->kv_tmp_floats = 2 * cross_n > self_n ? 2 * cross_n : self_n;
    c->kv_tmp = alloc_floats(c->kv_tmp_floats);
    ok = ok && c->src_len && c->key_len && c->rows_tmp && c->x && c->a && c->res && c->qkv && c->q && c->atty &&
         c->merged && c->h && c->mean && c->rstd && c->probs && c->ff_pre && c->ff_act && c->logits && c->kv_tmp;
    if (!ok) {
        model_cache_free(c);
        return qkv_fail(QKV_ERR_NOMEM, "model: cannot allocate a decoder cache for %d x (%d, %d)", max_B, max_S,
                        max_T);
    }
    *out = c;
    return QKV_OK;
}

int model_cache_length(const model_decoder_cache *c) { return c->len; }

const float *model_cache_cross_attention(const model_decoder_cache *c, int layer)
{
    if (!c->started || c->len == 0 || layer < 0 || layer >= c->m->cfg.decoder_layers)
        return NULL;
    return c->p_cross[layer];
}

/* Row i of a [B, row] buffer becomes row i / beams, in place: going down,
 * each source row (i / beams <= i) is still untouched when it is read. */
static void expand_rows(float *buf, int B, int beams, size_t row)
{
    for (int i = B - 1; i > 0; i--)
        if (i / beams != i)
            memcpy(buf + (size_t)i * row, buf + (size_t)(i / beams) * row, row * sizeof(float));
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
    for (int i = 0; i < B; i++)
        c->src_len[i] = src_len[i / beams];
    size_t CC = (size_t)C * C, row = (size_t)S * C;
    for (int l = 0; l < cfg->decoder_layers; l++) {
        const attn_offsets *o = &m->dec_layers[l].cross;
        /* keys and values once per source, then copied to its beams */
        linear_forward(c->kv_tmp, enc, P + o->qkv_w + CC, P + o->qkv_b + C, n * S, C, 2 * C);
        heads_split_forward(c->k_cross[l], c->kv_tmp, n, S, H, D, 2 * C);
        heads_split_forward(c->v_cross[l], c->kv_tmp + C, n, S, H, D, 2 * C);
        if (beams > 1) {
            expand_rows(c->k_cross[l], B, beams, row);
            expand_rows(c->v_cross[l], B, beams, row);
        }
        memset(c->k_self[l], 0, (size_t)B * c->max_T * C * sizeof(float));
        memset(c->v_self[l], 0, (size_t)B * c->max_T * C * sizeof(float));
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

/* Self-attention of the new position over the n = t + 1 cached ones:
 * out, q: [B, H, 1, D]   k, v: [B, H, Tm, D] (first n slots valid)
 * probs: [B, H, >= n] scratch. Only the n written slots are read, so the
 * cost grows with the decoded length, not with the cache's capacity. */
static void step_self_attention(float *out, float *probs, const float *q, const float *k, const float *v, int B,
                                int H, int Tm, int n, int D)
{
    float scale = 1.0f / sqrtf((float)D);
#pragma omp parallel for schedule(static) if ((long)B * H * n * D > 32768)
    for (int bh = 0; bh < B * H; bh++) {
        const float *qb = q + (size_t)bh * D, *kb = k + (size_t)bh * Tm * D, *vb = v + (size_t)bh * Tm * D;
        float *p = probs + (size_t)bh * Tm, *o = out + (size_t)bh * D, mx = -INFINITY;
        for (int j = 0; j < n; j++) {
            float sc = 0;
            for (int d = 0; d < D; d++)
                sc += qb[d] * kb[(size_t)j * D + d];
            p[j] = sc * scale;
            mx = p[j] > mx ? p[j] : mx;
        }
        float sum = 0;
        for (int j = 0; j < n; j++) {
            p[j] = expf(p[j] - mx);
            sum += p[j];
        }
        float inv = 1.0f / sum;
        for (int d = 0; d < D; d++)
            o[d] = 0;
        for (int j = 0; j < n; j++) {
            float w = p[j] * inv;
            const float *vj = vb + (size_t)j * D;
            for (int d = 0; d < D; d++)
                o[d] += w * vj[d];
        }
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
    int V = cfg->tgt_vocab_size, F = cfg->decoder_d_ff;
    for (int b = 0; b < B; b++) {
        if (tokens[b] < 0 || tokens[b] >= V)
            return qkv_fail(QKV_ERR_ARG, "model: token[%d] = %d is outside the vocabulary [0, %d)", b, tokens[b], V);
        c->key_len[b] = t + 1;
    }
    const float *pos = m->dec_pos != NO_PARAM ? P + m->dec_pos : m->sin_table;
    float scale = cfg->scale_embedding ? sqrtf((float)C) : 1.0f;
    embedding_forward(c->x, tokens, P + m->dec_embed, pos, B, 1, C, t, scale);
    for (int l = 0; l < cfg->decoder_layers; l++) {
        const layer_offsets *L = &m->dec_layers[l];
        /* self-attention over the cached positions and this one */
        const float *in = step_in(c, c->x, L->ln[0]);
        linear_forward(c->qkv, in, P + L->self.qkv_w, P + L->self.qkv_b, B, C, 3 * C);
        heads_split_forward(c->q, c->qkv, B, 1, H, D, 3 * C);
        for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++) {
                size_t dst = (((size_t)b * H + h) * Tm + t) * D;
                const float *row = c->qkv + (size_t)b * 3 * C + (size_t)h * D;
                memcpy(c->k_self[l] + dst, row + C, D * sizeof(float));
                memcpy(c->v_self[l] + dst, row + 2 * C, D * sizeof(float));
            }
        step_self_attention(c->atty, c->probs, c->q, c->k_self[l], c->v_self[l], B, H, Tm, t + 1, D);
        heads_merge_forward(c->merged, c->atty, B, 1, H, D);
        linear_forward(c->h, c->merged, P + L->self.out_w, P + L->self.out_b, B, C, C);
        step_out(c, L->ln[0]);
        /* cross-attention over the cached source keys and values */
        in = step_in(c, c->x, L->ln[1]);
        linear_forward(c->merged, in, P + L->cross.qkv_w, P + L->cross.qkv_b, B, C, C);
        heads_split_forward(c->q, c->merged, B, 1, H, D, C);
        attention_forward(c->atty, c->p_cross[l], c->q, c->k_cross[l], c->v_cross[l], c->src_len, 0, NULL, B, H, 1, S,
                          D);
        heads_merge_forward(c->merged, c->atty, B, 1, H, D);
        linear_forward(c->h, c->merged, P + L->cross.out_w, P + L->cross.out_b, B, C, C);
        step_out(c, L->ln[1]);
        /* feed-forward */
        in = step_in(c, c->x, L->ln[2]);
        linear_forward(c->ff_pre, in, P + L->fc1_w, P + L->fc1_b, B, C, F);
        activation_forward(c->ff_act, c->ff_pre, (size_t)B * F, (activation_kind)cfg->activation);
        linear_forward(c->h, c->ff_act, P + L->fc2_w, P + L->fc2_b, B, F, C);
        step_out(c, L->ln[2]);
    }
    const float *y = c->x;
    if (cfg->final_norm) {
        layernorm_forward(c->a, c->mean, c->rstd, c->x, P + m->dec_final.w, P + m->dec_final.b, B, C,
                          cfg->layer_norm_eps);
        y = c->a;
    }
    linear_forward(c->logits, y, P + m->out_w, m->out_b != NO_PARAM ? P + m->out_b : NULL, B, C, V);
    c->len = t + 1;
    *logits = c->logits;
    return QKV_OK;
}

/* Gathers rows of a [B, row] buffer: row i <- old row rows[i]. */
static void gather_rows(float *buf, float *tmp, const int *rows, int B, size_t row)
{
    memcpy(tmp, buf, (size_t)B * row * sizeof(float));
    for (int i = 0; i < B; i++)
        memcpy(buf + (size_t)i * row, tmp + (size_t)rows[i] * row, row * sizeof(float));
}

qkv_status model_cache_reorder(model_decoder_cache *c, const int *rows)
{
    if (!c->started)
        return qkv_fail(QKV_ERR_ARG, "model: model_cache_reorder needs model_cache_start first");
    const qkv_model_config *cfg = &c->m->cfg;
    int B = c->B;
    for (int i = 0; i < B; i++)
        if (rows[i] < 0 || rows[i] >= B)
            return qkv_fail(QKV_ERR_ARG, "model: reorder row[%d] = %d outside [0, %d)", i, rows[i], B);
    size_t C = cfg->d_model, self_row = (size_t)c->max_T * C, cross_row = (size_t)c->S * C;
    for (int l = 0; l < cfg->decoder_layers; l++) {
        /* a row of the [B, H, T, D] layout is H*T*D contiguous floats */
        gather_rows(c->k_self[l], c->kv_tmp, rows, B, self_row);
        gather_rows(c->v_self[l], c->kv_tmp, rows, B, self_row);
        gather_rows(c->k_cross[l], c->kv_tmp, rows, B, cross_row);
        gather_rows(c->v_cross[l], c->kv_tmp, rows, B, cross_row);
    }
    for (int i = 0; i < B; i++)
        c->rows_tmp[i] = c->src_len[rows[i]];
    memcpy(c->src_len, c->rows_tmp, (size_t)B * sizeof(int));
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
    const qkv_model_config *cfg = &c->m->cfg;
    int H = cfg->decoder_heads, C = cfg->d_model, D = C / H, Tm = c->max_T, len = c->len;
    int moved = 0;
    for (int i = 0; i < n; i++)
        moved += rows[i] != i;
    size_t seg = (size_t)len * D, cross_row = (size_t)c->S * C;
    for (int l = 0; moved && l < cfg->decoder_layers; l++) {
        float *self[2] = {c->k_self[l], c->v_self[l]};
        for (int q = 0; q < 2 && len > 0; q++) {
            /* the decoded slots of every old row into [B, H, len, D], then
             * back into the rows that change */
            for (int b = 0; b < B; b++)
                for (int h = 0; h < H; h++)
                    memcpy(c->kv_tmp + ((size_t)b * H + h) * seg, self[q] + ((size_t)b * H + h) * Tm * D,
                           seg * sizeof(float));
            for (int i = 0; i < n; i++)
                if (rows[i] != i)
                    for (int h = 0; h < H; h++)
                        memcpy(self[q] + ((size_t)i * H + h) * Tm * D, c->kv_tmp + ((size_t)rows[i] * H + h) * seg,
                               seg * sizeof(float));
        }
        float *cross[2] = {c->k_cross[l], c->v_cross[l]};
        for (int q = 0; q < 2; q++) {
            size_t k = 0;
            for (int i = 0; i < n; i++)
                if (rows[i] != i)
                    memcpy(c->kv_tmp + cross_row * k++, cross[q] + cross_row * rows[i], cross_row * sizeof(float));
            k = 0;
            for (int i = 0; i < n; i++)
                if (rows[i] != i)
                    memcpy(cross[q] + cross_row * i, c->kv_tmp + cross_row * k++, cross_row * sizeof(float));
        }
    }
    for (int i = 0; i < n; i++)
        c->rows_tmp[i] = c->src_len[rows[i]];
    memcpy(c->src_len, c->rows_tmp, (size_t)n * sizeof(int));
    c->B = n;
    return QKV_OK;
}
